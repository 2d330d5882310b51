"""``liaison dlq``: reading dead letters without losing them, retrying through the router, purging."""

from __future__ import annotations

from pathlib import Path

from liaison.directory import load_directory
from liaison.settings import Settings
from liaison.topology import apply
from schemas import wire
from schemas.errors import ReasonCode
from schemas.examples import example_envelope
from tests.integration.console import audit_events, cli, delete_queue
from tests.integration.harness import depth, publish_as, running, take, wait_for

ARCHIVES = wire.inbox_queue("gs-archives")


def letter(sender: str = "gs", recipient: str = "gs-archives"):  # type: ignore[no-untyped-def]
    return example_envelope("correspondence.letter", 1, sender=sender, recipients=(recipient,))


class TestRetry:
    def test_unroutable_letter_is_retried_once_its_inbox_is_back(
        self, hub_settings: Settings, tmp_path: Path
    ) -> None:
        """A letter to a missing inbox is listed with its reason, comes back while the cause
        remains, and reaches its inbox once the topology is repaired; all of it is audited."""
        s = hub_settings
        delete_queue(s, ARCHIVES)
        message = letter()
        message_id = str(message.message_id)
        with running(s, "serve", log_path=str(tmp_path / "router.log")):
            publish_as(s, "gs", message)
            wait_for(lambda: depth(s, wire.DEAD_QUEUE) == 1, what="the dead letter")

            listed = cli(s, "dlq", "list", "--json")
            assert listed.code == 0, listed.err
            (item,) = listed.json()["dead_letters"]
            assert item["message_id"] == message_id
            assert item["reason"] == ReasonCode.UNROUTABLE.value
            assert item["type"] == "correspondence.letter"
            assert (item["sender"], item["recipient"]) == ("gs", "gs-archives")
            assert "no inbox" in item["reason_text"]
            assert depth(s, wire.DEAD_QUEUE) == 1  # reading took nothing away

            # The cause is still there: the retry comes back with the same reason.
            again = cli(s, "dlq", "retry", message_id, "--operator", "alice")
            assert again.code == 0, again.err
            wait_for(lambda: depth(s, wire.DEAD_QUEUE) == 1, what="the letter back in hub.dead")
            shown = cli(s, "dlq", "show", message_id).out
            assert "reason:      unroutable" in shown
            assert f"  {wire.H_RETRY_OF}: {message_id}" in shown
            assert f"  {wire.H_ACTOR}: alice" in shown

            apply(s, load_directory(None))  # repair: the inbox exists again
            fixed = cli(s, "dlq", "retry", message_id, "--operator", "alice")
            assert fixed.code == 0, fixed.err
            assert f"retried {message_id}" in fixed.out
            ((_props, body),) = take(s, ARCHIVES, 1)
            assert body == message.encode()
            assert depth(s, wire.DEAD_QUEUE) == 0
            wait_for(lambda: depth(s, wire.AUDIT_QUEUE) >= 4, what="audit events")

        events = [e for e in audit_events(s) if e["message_id"] == message_id]
        actions = [e for e in events if e["event"] == "operator_action"]
        assert len(actions) == 2
        assert {(e["actor"], e["detail"], e["reason"]) for e in actions} == {
            ("alice", "dlq retry", ReasonCode.UNROUTABLE.value)
        }
        retried = [e for e in events if e["event"] == "retried"]
        assert len(retried) == 2 and {e["actor"] for e in retried} == {"alice"}
        delivered = [e for e in events if e["event"] == "delivered"]
        assert delivered, "the router audited the successful retry as delivered"

    def test_retry_goes_only_to_the_recipient_whose_copy_failed(
        self, hub_settings: Settings, tmp_path: Path
    ) -> None:
        """A letter delivered to one recipient and dead-lettered for the other is retried to the
        other alone: the first does not get it twice."""
        s = hub_settings
        legal = wire.inbox_queue("gs-legal")
        delete_queue(s, ARCHIVES)
        message = example_envelope(
            "correspondence.letter", 1, sender="gs", recipients=("gs-legal", "gs-archives")
        )
        message_id = str(message.message_id)
        with running(s, "serve", log_path=str(tmp_path / "router.log")):
            publish_as(s, "gs", message)
            wait_for(lambda: depth(s, wire.DEAD_QUEUE) == 1, what="the dead letter")
            take(s, legal, 1)
            apply(s, load_directory(None))
            fixed = cli(s, "dlq", "retry", message_id, "--operator", "alice")
            assert fixed.code == 0, fixed.err
            ((_props, body),) = take(s, ARCHIVES, 1)
            assert body == message.encode()
            wait_for(lambda: depth(s, wire.AUDIT_QUEUE) >= 3, what="audit events")
            assert depth(s, legal) == 0  # no second copy for the recipient that had it
        delivered = [
            e["recipients"]
            for e in audit_events(s)
            if e["message_id"] == message_id and e["event"] == "delivered"
        ]
        # gs-procedures: the bundled rules copy every letter to the registry.
        assert delivered == [["gs-legal", "gs-procedures"], ["gs-archives"]]

    def test_retry_by_reason_and_all(self, hub_settings: Settings) -> None:
        """--reason selects only dead letters refused for that reason; --all takes the rest."""
        s = hub_settings
        publish_as(s, "gs", b"{not json", routing_key="correspondence.letter")
        publish_as(s, "gs", letter(recipient="atlantis"))
        with running(s, "serve", log_path="/dev/null"):
            wait_for(lambda: depth(s, wire.DEAD_QUEUE) == 2, what="two dead letters")
            by_reason = cli(s, "dlq", "retry", "--reason", "not_json", "--operator", "bob")
            assert by_reason.code == 0, by_reason.err
            assert "1 message(s) retried" in by_reason.out
            wait_for(lambda: depth(s, wire.DEAD_QUEUE) == 2, what="the retry back in hub.dead")
            everything = cli(s, "dlq", "retry", "--all", "--operator", "bob")
            assert "2 message(s) retried" in everything.out
            wait_for(lambda: depth(s, wire.DEAD_QUEUE) == 2, what="both back in hub.dead")
        usage = cli(s, "dlq", "retry", "--operator", "bob")
        assert usage.code == 2 and "exactly one" in usage.err

    def test_a_spoofed_letter_is_not_laundered(self, hub_settings: Settings) -> None:
        """A letter refused because its publisher was not its sender cannot be retried as the hub."""
        s = hub_settings
        spoof = letter(sender="gs-legal")
        publish_as(s, "gs", spoof)  # gs claims to be gs-legal
        with running(s, "serve", log_path="/dev/null"):
            wait_for(lambda: depth(s, wire.DEAD_QUEUE) == 1, what="the refused spoof")
            result = cli(s, "dlq", "retry", str(spoof.message_id), "--operator", "mallory")
        assert result.code == 1
        assert "not retried" in result.err and "gs-legal" in result.err
        assert depth(s, wire.DEAD_QUEUE) == 1
        assert depth(s, wire.inbox_queue("gs-archives")) == 0

    def test_unknown_id_is_reported(self, hub_settings: Settings) -> None:
        """Retrying an id that is not in hub.dead says so and exits 1."""
        result = cli(hub_settings, "dlq", "retry", "no-such-id", "--operator", "alice")
        assert result.code == 1
        assert "no-such-id" in result.err


class TestReading:
    def test_list_and_show_keep_order_and_headers(self, hub_settings: Settings) -> None:
        """Reading hub.dead twice gives the same letters in the same order, and show prints one."""
        s = hub_settings
        sent = [letter(recipient="atlantis") for _ in range(3)]
        for message in sent:
            publish_as(s, "gs", message)
        with running(s, "serve", log_path="/dev/null"):
            wait_for(lambda: depth(s, wire.DEAD_QUEUE) == 3, what="three dead letters")
        ids = [str(m.message_id) for m in sent]
        first = cli(s, "dlq", "list", "--json").json()
        second = cli(s, "dlq", "list", "--json").json()
        assert [x["message_id"] for x in first["dead_letters"]] == ids
        assert second == first
        assert first["total"] == 3
        limited = cli(s, "dlq", "list", "--limit", "2")
        assert "(2 of 3 shown; use --limit)" in limited.out
        shown = cli(s, "dlq", "show", ids[1])
        assert shown.code == 0
        assert "reason:      unknown_recipient" in shown.out
        assert f"  {wire.H_ORIGINAL_USER}: {s.user_for('gs')}" in shown.out
        assert '"recipients": [\n    "atlantis"\n  ]' in shown.out
        assert depth(s, wire.DEAD_QUEUE) == 3
        ((props, body),) = take(s, wire.DEAD_QUEUE, 1)
        assert body == sent[0].encode()
        assert props.headers[wire.H_REASON] == ReasonCode.UNKNOWN_RECIPIENT.value
        assert cli(s, "dlq", "show", "nope").code == 1


class TestPurge:
    def test_purge_asks_then_removes_and_audits(self, hub_settings: Settings) -> None:
        """purge shows what it will delete, does nothing on 'no', deletes and audits on 'yes'."""
        s = hub_settings
        publish_as(s, "gs", b"{not json", routing_key="correspondence.letter")
        publish_as(s, "gs", letter(recipient="atlantis"))
        with running(s, "serve", log_path="/dev/null"):
            wait_for(lambda: depth(s, wire.DEAD_QUEUE) == 2, what="two dead letters")
        audit_events(s)  # drop the router's events; only the operator's matter below

        declined = cli(s, "dlq", "purge", "--all", "--operator", "carol", input="n\n")
        assert declined.code == 1
        assert "Purge these 2 dead letter(s) for good?" in declined.err
        assert depth(s, wire.DEAD_QUEUE) == 2

        accepted = cli(s, "dlq", "purge", "--all", "--operator", "carol", input="y\n")
        assert accepted.code == 0, accepted.err
        assert "2 dead letter(s) purged by carol." in accepted.out
        assert depth(s, wire.DEAD_QUEUE) == 0

        actions = audit_events(s)
        assert {(e["event"], e["actor"]) for e in actions} == {("operator_action", "carol")}
        details = sorted(e["detail"] for e in actions)
        assert details[0] == "dlq purge"  # the letter: its envelope is in the event
        assert details[1].startswith("dlq purge; body sha256:")  # the bytes that never parsed
        assert any(e["envelope"] and e["envelope"]["recipients"] == ["atlantis"] for e in actions)

    def test_purge_by_id_with_yes(self, hub_settings: Settings) -> None:
        """--yes skips the question; only the named letter goes."""
        s = hub_settings
        keep, drop = letter(recipient="atlantis"), letter(recipient="atlantis")
        publish_as(s, "gs", keep)
        publish_as(s, "gs", drop)
        with running(s, "serve", log_path="/dev/null"):
            wait_for(lambda: depth(s, wire.DEAD_QUEUE) == 2, what="two dead letters")
        result = cli(s, "dlq", "purge", str(drop.message_id), "--operator", "carol", "--yes")
        assert result.code == 0, result.err
        remaining = cli(s, "dlq", "list", "--json").json()["dead_letters"]
        assert [x["message_id"] for x in remaining] == [str(keep.message_id)]
