"""The operator console's pure core: queue rows, thresholds, tables, dead letters."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from liaison.ops import (
    DeadLetter,
    HubStatus,
    QueueRow,
    dead_letter,
    evaluate,
    fill_gaps,
    format_age,
    group_copies,
    has_gaps,
    hub_queues,
    identity_problem,
    jsonable,
    merge_rows,
    pretty_body,
    render_letter,
    render_letters,
    render_table,
    rows_from_management,
    selector,
    status_json,
    warnings,
)
from liaison.ops._letters import first_arrival
from schemas import wire

AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
NOW = 1_800_000_000.0
QUEUES = hub_queues(["gs", "gs-archives"])


def row(name: str, **figures: Any) -> QueueRow:
    kind = next(q.kind for q in QUEUES if q.name == name)
    return QueueRow(name, kind, **figures)


def status(*changed: QueueRow, source: str = "amqp") -> HubStatus:
    """A clean hub (router, relay and writer consuming, all empty) with ``changed`` rows."""
    rows = {q.name: QueueRow(q.name, q.kind, ready=0, consumers=0) for q in QUEUES}
    rows[wire.INGRESS_QUEUE] = row(wire.INGRESS_QUEUE, ready=0, consumers=1)
    rows[wire.AUDIT_QUEUE] = row(wire.AUDIT_QUEUE, ready=0, consumers=1)
    rows[wire.RETRY_DUE_QUEUE] = row(wire.RETRY_DUE_QUEUE, ready=0, consumers=1)
    for item in changed:
        rows[item.name] = item
    return HubStatus(source, "liaison", AT, tuple(rows.values()))  # type: ignore[arg-type]


class TestHubQueues:
    def test_every_hub_queue_in_reading_order(self) -> None:
        """Ingress first, then two inboxes per participant, dead letters, audit, the retry delays."""
        assert [q.name for q in QUEUES] == [
            "hub.ingress",
            "inbox.gs",
            "inbox.gs.urgent",
            "inbox.gs-archives",
            "inbox.gs-archives.urgent",
            "hub.dead",
            "hub.audit",
            "hub.retry.5s",
            "hub.retry.30s",
            "hub.retry.5m",
            "hub.retry.due",
        ]
        assert {q.kind for q in QUEUES} == {"ingress", "inbox", "dead", "audit", "retry"}

    def test_retry_queues_follow_the_planned_delays(self) -> None:
        """A deployment with other retry delays sees its own delay queues, not the defaults."""
        names = [q.name for q in hub_queues(["gs"], {"1s": 1000})]
        assert names[-2:] == ["hub.retry.1s", "hub.retry.due"] and "hub.retry.5s" not in names


class TestRowsFromManagement:
    def test_figures_rates_and_age_are_read(self) -> None:
        """Ready, unacked, consumers, rates and the head message's age come from the API's fields."""
        listed = [
            {
                "name": "inbox.gs",
                "messages_ready": 4,
                "messages_unacknowledged": 1,
                "consumers": 2,
                "head_message_timestamp": NOW - 90,
                "message_stats": {
                    "publish_details": {"rate": 2.5},
                    "deliver_get_details": {"rate": 1.0},
                },
            }
        ]
        rows = {r.name: r for r in rows_from_management(QUEUES, listed, now=NOW)}
        gs = rows["inbox.gs"]
        assert (gs.ready, gs.unacked, gs.consumers) == (4, 1, 2)
        assert (gs.publish_rate, gs.deliver_rate) == (2.5, 1.0)
        assert gs.oldest_age_s == 90
        assert gs.messages == 5

    def test_missing_queue_and_missing_statistics(self) -> None:
        """A queue the API does not list is missing; one without statistics yet has unknowns."""
        listed = [{"name": "inbox.gs", "head_message_timestamp": None}]
        rows = {r.name: r for r in rows_from_management(QUEUES, listed, now=NOW)}
        assert rows["inbox.gs-archives"].exists is False
        gs = rows["inbox.gs"]
        assert gs.exists and gs.ready is None and gs.oldest_age_s is None
        assert has_gaps(rows.values())

    def test_gaps_are_filled_from_amqp(self) -> None:
        """Unknown depth and consumers are taken from the passive declares; other figures kept."""
        managed = (row("inbox.gs", publish_rate=3.0),)
        exact = (row("inbox.gs", ready=7, consumers=1),)
        (filled,) = fill_gaps(managed, exact)
        assert (filled.ready, filled.consumers, filled.publish_rate) == (7, 1, 3.0)
        assert not has_gaps([filled])

    def test_merge_keeps_exact_depths(self) -> None:
        """The poller's merge keeps AMQP depths and adds the management API's rates and unacked."""
        exact = (row("inbox.gs", ready=7, consumers=1),)
        detailed = (row("inbox.gs", ready=3, unacked=2, consumers=0, deliver_rate=1.5),)
        (merged,) = merge_rows(exact, detailed)
        assert (merged.ready, merged.consumers, merged.unacked, merged.deliver_rate) == (
            7,
            1,
            2,
            1.5,
        )
        assert merge_rows(exact, None) == exact


class TestThresholds:
    def test_clean_hub_breaches_nothing(self) -> None:
        """Router consuming, no dead letters, no old message: no breach, exit code 0."""
        assert evaluate(status(), max_age_s=600) == []
        assert status_json(status(), max_age_s=600)["ok"] is True

    def test_dead_letters_breach(self) -> None:
        """Any dead letter, ready or held by a reader, is a breach naming the count."""
        (breach,) = evaluate(status(row("hub.dead", ready=2, unacked=1)), max_age_s=600)
        assert breach.kind == "dead_letters"
        assert "3 dead letter(s)" in breach.message

    def test_stale_inbox_breaches_only_past_the_limit(self) -> None:
        """An inbox whose oldest message is older than the limit breaches; younger or unknown does not."""
        old = row("inbox.gs", ready=1, consumers=0, oldest_age_s=601)
        young = row("inbox.gs", ready=1, consumers=0, oldest_age_s=599)
        unknown = row("inbox.gs", ready=1, consumers=0)
        (breach,) = evaluate(status(old), max_age_s=600)
        assert breach.kind == "stale_inbox" and breach.queue == "inbox.gs"
        assert "10m01s" in breach.message
        assert evaluate(status(young), max_age_s=600) == []
        assert evaluate(status(unknown), max_age_s=600) == []

    def test_no_router_breaches_but_unknown_does_not(self) -> None:
        """Zero consumers on hub.ingress is a breach; figures not known yet are not."""
        down = row(wire.INGRESS_QUEUE, ready=5, consumers=0)
        (breach,) = evaluate(status(down), max_age_s=600)
        assert breach.kind == "router_down"
        assert status(down).router.lag == 5
        assert evaluate(status(row(wire.INGRESS_QUEUE)), max_age_s=600) == []
        assert status(row(wire.INGRESS_QUEUE)).router.alive is None

    def test_missing_queue_breaches(self) -> None:
        """A hub queue missing on the broker is a breach (deliveries to it are unroutable)."""
        (breach,) = evaluate(status(row("inbox.gs", exists=False)), max_age_s=600)
        assert breach.kind == "missing_queue"

    def test_no_audit_writer_is_a_warning_only(self) -> None:
        """Without an audit writer the events wait: worth a warning, not a breach."""
        idle = status(row(wire.AUDIT_QUEUE, ready=12, consumers=0))
        assert evaluate(idle, max_age_s=600) == []
        assert warnings(idle) == ["no audit writer consumes hub.audit (12 waiting)"]

    def test_no_retry_relay_is_a_warning_only(self) -> None:
        """Without the retry relay, due retries and give-ups wait in hub.retry.due: a warning."""
        idle = status(row(wire.RETRY_DUE_QUEUE, ready=3, consumers=0))
        assert evaluate(idle, max_age_s=600) == []
        assert warnings(idle) == ["no retry relay consumes hub.retry.due (3 waiting)"]


class TestRendering:
    def test_table_lists_every_queue_health_and_breaches(self) -> None:
        """The table has a line per queue, the health lines, the source and each breach."""
        text = render_table(
            status(row("hub.dead", ready=2), row("inbox.gs", ready=3, oldest_age_s=42)),
            max_age_s=600,
        )
        lines = text.splitlines()
        assert lines[0].split() == [
            "QUEUE",
            "READY",
            "UNACKED",
            "CONSUMERS",
            "IN/S",
            "OUT/S",
            "OLDEST",
        ]
        gs = next(line for line in lines if line.startswith("inbox.gs "))
        assert gs.split() == ["inbox.gs", "3", "-", "?", "-", "-", "42s"]
        assert "router:       alive (1 consumer(s)), lag 0" in text
        assert "source:       amqp" in text
        assert "BREACHES (1):" in text and "2 dead letter(s) in hub.dead" in text

    def test_missing_queue_is_shown(self) -> None:
        """A missing queue reads 'missing', not zero."""
        text = render_table(status(row("inbox.gs", exists=False)), max_age_s=600)
        assert next(x for x in text.splitlines() if x.startswith("inbox.gs ")).split()[1] == (
            "missing"
        )

    def test_json_is_serialisable_and_complete(self) -> None:
        """status --json carries the source, every queue, both healths and the breaches."""
        data = status_json(status(row("hub.dead", ready=1), source="management"), max_age_s=60)
        assert json.loads(json.dumps(data)) == data
        assert data["source"] == "management" and data["ok"] is False
        assert {q["name"]: q["ready"] for q in data["queues"]}["hub.dead"] == 1
        assert data["router"] == {"alive": True, "consumers": 1, "lag": 0}
        assert [b["kind"] for b in data["breaches"]] == ["dead_letters"]

    @pytest.mark.parametrize(
        ("seconds", "text"),
        [(None, "-"), (0, "0s"), (59.9, "59s"), (61, "1m01s"), (7260, "2h01m"), (90000, "1d01h")],
    )
    def test_ages(self, seconds: float | None, text: str) -> None:
        """Ages read as the two largest units."""
        assert format_age(seconds) == text


def letter(
    body: bytes = b'{"type": "correspondence.letter", "sender": "gs", "message_id": "m-1"}',
    /,
    user_id: str | None = "hub",
    **headers: Any,
) -> DeadLetter:
    base = {
        wire.H_REASON: "unroutable",
        wire.H_REASON_TEXT: "no inbox",
        wire.H_ORIGINAL_USER: "t-gs",
        wire.H_ORIGINAL_EXCHANGE: wire.INGRESS_EXCHANGE,
        wire.H_ORIGINAL_ROUTING_KEY: "correspondence.letter",
    }
    base.update(headers)
    return dead_letter(
        message_id="m-1",
        type_="correspondence.letter",
        timestamp=1_800_000_000,
        headers={k: v for k, v in base.items() if v is not None},
        body=body,
        hub_user="hub",
        user_prefix="t-",
        user_id=user_id,
    )


class TestDeadLetter:
    def test_a_retry_carries_the_hubs_stamp_never_a_publishers(self) -> None:
        """The router's dead letter (or an inbox copy the broker moved) says when the
        hub first received the message; a letter the broker moved out of ``hub.ingress``
        carries its publisher's own timestamp, which must not date a retried letter."""
        hubs = letter()
        moved = letter(user_id="t-gs")
        assert first_arrival([hubs], "hub") == 1_800_000_000
        assert first_arrival([moved], "hub") is None
        earlier = dataclasses.replace(hubs, timestamp=1_700_000_000)
        assert first_arrival([hubs, earlier, moved], "hub") == 1_700_000_000

    def test_facts_from_headers(self) -> None:
        """Reason, text, recipient and sender come from the router's headers."""
        found = letter(**{wire.H_RECIPIENT: "gs-archives"})
        assert (found.message_id, found.type, found.reason) == (
            "m-1",
            "correspondence.letter",
            "unroutable",
        )
        assert (found.sender, found.recipient, found.routing_key) == (
            "gs",
            "gs-archives",
            "correspondence.letter",
        )
        assert found.summary()["reason_text"] == "no inbox"

    def test_sender_is_the_validated_user_not_the_body(self) -> None:
        """A spoofed body names another sender; the original user (prefix removed) wins."""
        spoof = letter(
            b'{"type": "correspondence.letter", "sender": "gs-legal"}',
            **{wire.H_REASON: "sender_mismatch"},
        )
        assert spoof.sender == "gs"
        assert spoof.claimed_sender == "gs-legal"

    def test_relayed_copy_takes_the_sender_from_the_body(self) -> None:
        """A copy the hub relayed (a retry) names the hub's user; the body tells the sender."""
        assert letter(**{wire.H_ORIGINAL_USER: "hub"}).sender == "gs"

    def test_broker_dead_lettered_copy_uses_the_user_id_property(self) -> None:
        """Without router headers (delivery limit on ingress) the user_id property is the publisher."""
        plain = dead_letter(
            message_id=None,
            type_=None,
            timestamp=None,
            headers={"x-delivery-count": 5},
            body=b"\xff\xfe",
            hub_user="hub",
            user_prefix="t-",
            user_id="t-ona",
        )
        assert plain.sender == "ona"
        assert plain.message_id == plain.digest and plain.digest.startswith("sha256:")
        assert plain.routing_key == "unknown"

    def test_undecodable_body_keeps_the_original_routing_key(self) -> None:
        """Without a type the retry goes back under the routing key the sender used."""
        broken = letter(b"{not json")
        broken = dead_letter(
            message_id=None,
            type_=None,
            timestamp=None,
            headers=broken.headers,
            body=broken.body,
            hub_user="hub",
            user_prefix="t-",
            user_id="hub",
        )
        assert broken.routing_key == "correspondence.letter"
        assert broken.envelope() is None

    def test_identity_is_proven_by_the_routers_own_record(self) -> None:
        """Without x-death the hub wrote the dead letter: its original-user header is proof."""
        problem = identity_problem
        assert problem(letter(), hub_user="hub", user_prefix="t-") is None
        relayed = letter(**{wire.H_ORIGINAL_USER: "hub"})
        assert problem(relayed, hub_user="hub", user_prefix="t-") is None
        spoof = letter(b'{"sender": "gs-legal"}')
        assert "gs-legal" in (problem(spoof, hub_user="hub", user_prefix="t-") or "")
        anonymous = letter(**{wire.H_ORIGINAL_USER: None})
        assert problem(anonymous, hub_user="hub", user_prefix="t-") is not None
        unroutable = letter(
            **{wire.H_ORIGINAL_USER: None, wire.H_ORIGINAL_EXCHANGE: wire.DELIVER_EXCHANGE}
        )
        assert problem(unroutable, hub_user="hub", user_prefix="t-") is None
        assert problem(letter(b"\x00"), hub_user="hub", user_prefix="t-") is None

    def test_letters_parked_by_participants_are_not_the_routers_record(self) -> None:
        """A dead letter without the hub's validated user_id was parked by someone else: not relayed."""
        forged = {wire.H_ORIGINAL_EXCHANGE: wire.DELIVER_EXCHANGE, wire.H_ORIGINAL_USER: "t-gs"}
        for user, why in (("t-gs-it", "'t-gs-it'"), (None, "no validated publisher")):
            found = letter(user_id=user, **forged)
            problem = identity_problem(found, hub_user="hub", user_prefix="t-")
            assert problem is not None
            assert why in problem
            # The headers it wrote are not the router's record: t-gs is nobody's word here.
            assert found.sender == ("gs-it" if user else None)

    def test_identity_of_broker_dead_letters(self) -> None:
        """With x-death: the user_id property proves it; else only a path through inboxes does."""

        def from_broker(queues: list[str], user_id: str | None = None) -> DeadLetter:
            return dead_letter(
                message_id="m-1",
                type_=None,
                timestamp=None,
                headers={"x-death": [{"queue": q, "reason": "expired"} for q in queues]},
                body=b'{"sender": "gs"}',
                hub_user="hub",
                user_prefix="t-",
                user_id=user_id,
            )

        def problem(found: DeadLetter) -> str | None:
            return identity_problem(found, hub_user="hub", user_prefix="t-")

        assert problem(from_broker(["inbox.gs-archives"], user_id="hub")) is None
        assert problem(from_broker(["hub.ingress"], user_id="t-gs")) is None
        assert problem(from_broker(["hub.ingress"], user_id="t-ona")) is not None
        # x-death is only the broker's word on what the hub published: without a
        # validated user, a path "through inboxes" is something anyone can write.
        forged = from_broker(["inbox.gs-archives"])
        assert "no validated publisher" in (problem(forged) or "")
        assert forged.sender is None
        parked = from_broker(["inbox.ona", "hub.retry.5s"])
        assert problem(parked) is not None
        assert problem(from_broker(["inbox.ona", "hub.retry.5s"], user_id="t-gs")) is None

    def test_headers_on_a_participants_own_publish_are_not_the_hubs_record(self) -> None:
        """Moved here by the broker (user_id is a participant's): x-liaison headers are its
        own, so reason, recipient and parker come from nowhere but the broker's x-death."""
        moved = dead_letter(
            message_id="m-1",
            type_=None,
            timestamp=None,
            headers={
                "x-death": [
                    {"queue": "hub.retry.due", "reason": "delivery_limit"},
                    {"queue": "inbox.gs-legal", "reason": "rejected"},
                ],
                wire.H_REASON: "recipient_clearance",
                wire.H_RECIPIENT: "gs-archives",
                wire.H_PARKED_BY: "gs-legal",
                wire.H_ORIGINAL_EXCHANGE: wire.DELIVER_EXCHANGE,
            },
            body=b'{"type": "correspondence.letter", "sender": "gs-it", "message_id": "m-1"}',
            hub_user="hub",
            user_prefix="t-",
            user_id="t-gs-it",
        )
        assert (moved.reason, moved.recipient, moved.parked_by) == ("delivery_limit", None, None)
        assert moved.original_exchange is None
        assert "hub.retry.due" in (moved.reason_text or "")
        assert moved.sender == "gs-it"  # its own message, published as itself

    def test_the_forged_park_of_defect_2_is_neither_relayed_nor_shown_as_its_claim(
        self,
    ) -> None:
        """No user_id, a forged x-death naming an inbox, delivery_limit: not from gs-legal."""
        forged = dead_letter(
            message_id="m-1",
            type_="correspondence.letter",
            timestamp=None,
            headers={
                wire.H_DELAY: "dead",
                "x-death": [
                    {"queue": "inbox.dir-political", "reason": "delivery_limit", "count": 5}
                ],
                wire.H_ORIGINAL_USER: "t-gs-legal",
                wire.H_ORIGINAL_EXCHANGE: wire.DELIVER_EXCHANGE,
            },
            body=b'{"type": "correspondence.letter", "sender": "gs-legal", "message_id": "m-1"}',
            hub_user="hub",
            user_prefix="t-",
            user_id=None,
        )
        assert identity_problem(forged, hub_user="hub", user_prefix="t-") is not None
        assert forged.sender is None
        assert forged.original_user is None
        assert forged.claimed_sender == "gs-legal"

    def test_letters_the_retry_relay_published_are_not_relayed(self) -> None:
        """Parked by a consumer, refused by the relay, or an own retry dead-lettered later:
        the hub published them, but the body is a participant's word."""
        body = b'{"type": "correspondence.letter", "sender": "gs-legal", "message_id": "m-1"}'
        parked = letter(
            body,
            **{
                wire.H_PARKED_BY: "gs-it",
                wire.H_ORIGINAL_USER: None,
                wire.H_ORIGINAL_EXCHANGE: wire.RETRY_EXCHANGE,
            },
        )
        refused = letter(
            body,
            **{wire.H_ORIGINAL_USER: "t-ghost", wire.H_ORIGINAL_EXCHANGE: wire.RETRY_EXCHANGE},
        )
        own_retry = dead_letter(
            message_id="m-1",
            type_=None,
            timestamp=None,
            headers={
                wire.H_OWN_RETRY: "gs-it",
                "x-death": [{"queue": "inbox.gs-it", "reason": "delivery_limit"}],
            },
            body=body,
            hub_user="hub",
            user_prefix="t-",
            user_id="hub",
        )
        problems = [
            identity_problem(found, hub_user="hub", user_prefix="t-")
            for found in (parked, refused, own_retry)
        ]
        assert "parked by gs-it" in (problems[0] or "")
        assert "retry relay" in (problems[1] or "")
        assert "gs-it" in (problems[2] or "")
        assert (parked.sender, parked.parked_by) == (None, "gs-it")
        assert refused.sender == "ghost"
        assert own_retry.sender is None

    def test_header_values_become_json(self) -> None:
        """Bytes, decimals, datetimes and nested tables from pika become JSON data."""
        value = {"a": b"text", "b": b"\xff", "c": Decimal("1.5"), "d": [AT], "e": {"f": 1}}
        assert jsonable(value) == {
            "a": "text",
            "b": "hex:ff",
            "c": 1.5,
            "d": [AT.isoformat()],
            "e": {"f": 1},
        }

    def test_pretty_body(self) -> None:
        """JSON is indented, text shown as is, binary as hex."""
        assert pretty_body(b'{"a":1}') == '{\n  "a": 1\n}'
        assert pretty_body(b"plain") == "plain"
        assert "not UTF-8" in pretty_body(b"\xff")


class TestSelection:
    def test_by_id_reason_all_and_exact_copies(self) -> None:
        """Each way of choosing selects what it says, and reports ids it did not find."""
        one = letter()
        other = letter(b"{}", **{wire.H_REASON: "not_json"})
        by_id = selector(message_ids=["m-1", "nope"])
        assert by_id(one) and by_id(other)  # both carry message id m-1
        assert by_id.missing([one]) == ["nope"]
        assert selector(reason="not_json")(other) and not selector(reason="not_json")(one)
        assert selector(every=True)(one)
        exact = selector(keys=[one.key])
        assert exact(one) and not exact(other)

    def test_copies_of_one_message_are_grouped(self) -> None:
        """Copies refused for two recipients are one message; a different body is another."""
        a1 = letter(**{wire.H_RECIPIENT: "gs"})
        a2 = letter(**{wire.H_RECIPIENT: "gs-archives"})
        b = letter(b"{}")
        assert [len(group) for group in group_copies([a1, b, a2])] == [2, 1]


class TestLetterTables:
    def test_list_table_and_total(self) -> None:
        """dlq list shows one line per letter and says when more exist than are shown."""
        text = render_letters([letter()], total=5)
        assert text.splitlines()[0].split()[:3] == ["MESSAGE", "ID", "TYPE"]
        assert "m-1" in text and "unroutable" in text
        assert text.endswith("(1 of 5 shown; use --limit)")
        assert render_letters([]) == "No dead letters."

    def test_show_has_headers_and_body(self) -> None:
        """dlq show prints the facts, every header and the pretty body."""
        text = render_letter(letter())
        assert "reason:      unroutable" in text
        assert f"  {wire.H_ORIGINAL_USER}: t-gs" in text
        assert '"sender": "gs"' in text


class TestRetryRefusals:
    """What `dlq retry` will not relay, whoever's letter it is."""

    @staticmethod
    def _problem(found: DeadLetter) -> str | None:
        from liaison.ops._deadq import DeadLetterQueue
        from liaison.settings import Settings

        settings = Settings(amqp_url="amqp://hub:x@localhost/v", user_prefix="t-")
        return DeadLetterQueue(settings)._problem("retry", found)

    @pytest.mark.parametrize(
        "reason", ["id_reused", "receipt_not_delivered", "sender_mismatch", "signature_invalid"]
    )
    def test_a_final_refusal_is_not_undone(self, reason: str) -> None:
        """The relay skips the check that refused it, so retrying would deliver it as the hub."""
        problem = self._problem(letter(**{wire.H_REASON: reason}))
        assert problem is not None and reason in problem

    def test_a_receipt_is_not_relayed(self) -> None:
        """A receipt that expired in ingress would skip its token check on a relay."""
        body = b'{"type": "receipt.registered", "sender": "gs", "message_id": "m-1"}'
        problem = self._problem(letter(body, **{wire.H_REASON: "expired"}))
        assert problem is not None and "receipt" in problem

    def test_an_unroutable_letter_from_the_router_is_relayed(self) -> None:
        """The ordinary case stays possible: an inbox that was missing, now there."""
        assert self._problem(letter()) is None


class TestQuestionsOverdue:
    def test_an_overdue_question_is_a_breach(self) -> None:
        """A parliamentary question past its deadline makes `liaison status` breach, naming it."""
        base = status()
        late = dataclasses.replace(
            base,
            questions_overdue=("question 1874 (x) assigned to dir-consular was due 2026-12-01",),
            questions_open=3,
        )
        breaches = evaluate(late, max_age_s=60)
        assert [(b.kind, b.queue) for b in breaches] == [("questions_overdue", "procedures")]
        assert "question 1874" in breaches[0].message
        assert status_json(late, max_age_s=60)["questions"] == {"open": 3, "overdue": 1}
        assert evaluate(dataclasses.replace(late, questions_overdue=()), max_age_s=60) == []
