"""The router's integrity rules on the real broker, tried by participants with their own credentials.

Reused message ids, receipts from participants who never received the message,
and a failure of the hub's own while deciding: each refused with its own
reason, dead-lettered and audited, never delivered unrecorded or dropped silently.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pika

from consumers import Consumer, Outcome
from liaison.adapters.pika_router import Router
from liaison.bootstrap import routing_context
from liaison.core.dedupe import body_tag
from liaison.core.rules import Rules
from liaison.credentials import participant_url
from liaison.ledger.query import Filter, search
from liaison.settings import Settings
from schemas import wire
from schemas.correspondence import Letter
from schemas.envelope import Envelope, new_envelope
from schemas.errors import ReasonCode
from schemas.examples import example_envelope
from schemas.receipts import ReceiptRegistered
from schemas.types import Payload
from tests.integration.harness import (
    blocking,
    depth,
    env_for,
    publish_as,
    running,
    take,
    wait_for,
)
from tests.integration.sdk_support import participant


def letter(
    sender: str, subject: str, recipients: tuple[str, ...] = ("gs-archives",), **update: Any
) -> Envelope[Payload]:
    env = example_envelope("correspondence.letter", 1, sender=sender, recipients=recipients)
    payload = env.payload.model_copy(update={"subject": subject})
    return env.model_copy(update={"payload": payload, **update})


class Audit:
    """The router's audit events, collected from ``hub.audit`` as they come."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.events: list[dict[str, Any]] = []

    def collect(self) -> list[dict[str, Any]]:
        n = depth(self._settings, wire.AUDIT_QUEUE)
        for _props, body in take(self._settings, wire.AUDIT_QUEUE, n):
            self.events.extend(json.loads(body)["events"])
        return self.events

    def wait(self, predicate: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """The first event matching ``predicate``; once it is there, the message it is
        about is settled (the router audits only after every publish it caused is confirmed)."""
        wait_for(lambda: any(predicate(e) for e in self.collect()), what=what)
        return next(e for e in self.events if predicate(e))


def publish_together(settings: Settings, code: str, messages: list[Envelope[Payload]]) -> None:
    """Publish ``messages`` as ``code`` on one channel, one right after the other (confirmed)."""
    connection = blocking(participant_url(settings, code))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for message in messages:
            channel.basic_publish(
                wire.INGRESS_EXCHANGE,
                message.type,
                message.encode(),
                pika.BasicProperties(
                    content_type=wire.CONTENT_TYPE,
                    delivery_mode=2,
                    user_id=settings.user_for(code),
                ),
            )
    finally:
        connection.close()


class TestReusedIds:
    def test_reused_ids_are_refused_with_their_content(
        self, hub_settings: Settings, tmp_path: Path
    ) -> None:
        """Another sender's id, the same sender's id on other content (later or back to back): each in dead letters as id_reused and audited with its content; the same bytes again stay a duplicate."""
        s = hub_settings
        audit = Audit(s)
        with running(s, "serve", log_path=str(tmp_path / "router.log")) as router:
            first = letter("gs", "Premier envoi")
            publish_as(s, "gs", first)
            take(s, wire.inbox_queue("gs-archives"), 1)
            # B to C with the id A used: before, C received it and the ledger had nothing.
            other = letter(
                "emb-berlin", "Autre chose", ("dir-political",), message_id=first.message_id
            )
            publish_as(s, "emb-berlin", other)
            # A again, later, with the same id on other content: before, dropped silently.
            later = letter("gs", "Second envoi", message_id=first.message_id)
            publish_as(s, "gs", later)
            # Two of A's with one id, back to back: before, both delivered, one audited.
            x1 = letter("gs", "Version 1")
            x2 = letter("gs", "Version 2", message_id=x1.message_id)
            publish_together(s, "gs", [x1, x2])
            # The very same bytes again: a true duplicate.
            publish_as(s, "gs", first)
            dead = take(s, wire.DEAD_QUEUE, 3)
            (delivered,) = take(s, wire.inbox_queue("gs-archives"), 1)
            # Which of x1 and x2 was first is the broker's business; one of them is refused.
            (winner,) = [m for m in (x1, x2) if m.encode() == delivered[1]]
            loser = x2 if winner is x1 else x1
            refused = {body: props.headers for props, body in dead}
            assert set(refused) == {other.encode(), later.encode(), loser.encode()}
            for headers in refused.values():
                assert headers[wire.H_REASON] == ReasonCode.ID_REUSED.value
                assert headers[wire.H_REASON_PATH] == "message_id"
            duplicate = audit.wait(
                lambda e: e["event"] == "duplicate" and e["message_id"] == str(first.message_id),
                "the duplicate's audit event",
            )
            assert duplicate["sender"] == "gs"
            assert depth(s, wire.inbox_queue("gs-archives")) == 0
            assert depth(s, wire.inbox_queue("dir-political")) == 0
            assert router.stop() == 0
        audit.collect()
        for message in (other, later, loser):
            # Each refused message has records of its own (keyed by sender and content),
            # the content itself in its "received" record.
            tag = body_tag(message.encode())
            mine = [e for e in audit.events if tag in e["dedupe_key"]]
            assert [e["event"] for e in mine] == ["received", "rejected", "dead_lettered"]
            assert mine[0]["envelope"] == json.loads(message.encode())
            assert mine[1]["reason"] == ReasonCode.ID_REUSED.value
            assert {e["sender"] for e in mine} == {message.sender}

    def test_reuse_beyond_the_window_gets_its_own_records(
        self, hub_settings: Settings, tmp_path: Path
    ) -> None:
        """With the window off (as after a restart), a reused id is delivered, and the ledger holds its own received, routed and delivered records with its content."""
        s = hub_settings
        env = env_for(s, LIAISON_DEDUPE_WINDOW="0")
        first = letter("gs", "Premier envoi")
        other = letter("emb-berlin", "Autre chose", ("dir-political",), message_id=first.message_id)
        mid = str(first.message_id)

        def records() -> list[Any]:
            return list(search(s.audit_dir, Filter(message_id=mid)))

        with (
            running(s, "serve", env=env, log_path=str(tmp_path / "router.log")),
            running(
                s,
                "audit",
                "run",
                wait_queue=wire.AUDIT_QUEUE,
                log_path=str(tmp_path / "writer.log"),
            ),
        ):
            publish_as(s, "gs", first)
            take(s, wire.inbox_queue("gs-archives"), 1)
            publish_as(s, "emb-berlin", other)
            take(s, wire.inbox_queue("dir-political"), 1)
            wait_for(
                lambda: sum(r.event == "delivered" for r in records()) == 2,
                what="a delivered record for each message",
            )
        found = {(r.event, r.sender) for r in records()}
        for sender in ("gs", "emb-berlin"):
            assert {("received", sender), ("routed", sender), ("delivered", sender)} <= found
        (received,) = [r for r in records() if r.event == "received" and r.sender == "emb-berlin"]
        assert received.envelope == json.loads(other.encode())


class TestReceipts:
    def test_receipt_only_from_a_participant_it_was_delivered_to(
        self, hub_settings: Settings, tmp_path: Path
    ) -> None:
        """The recipient's SDK receipt reaches the sender and the original's history; one from a participant that never received the message is refused, audited, and reaches neither."""
        s = hub_settings
        audit = Audit(s)
        original = letter("gs", "Demande d'enregistrement")
        with running(s, "serve", log_path=str(tmp_path / "router.log")):
            publish_as(s, "gs", original)
            archives = Consumer(participant(s, "gs-archives"))

            @archives.handler(Letter)
            def register(envelope: Envelope[Letter]) -> None:
                archives.send_receipt(envelope, "registered", registry_number="ARCH/2026/7")

            try:
                archives.drain(timeout=20, until=lambda: archives.counts[Outcome.HANDLED] >= 1)
            finally:
                archives.close()
            assert archives.counts[Outcome.HANDLED] == 1
            forged = new_envelope(
                ReceiptRegistered(
                    original_message_id=original.message_id,
                    registry_number="BER/2026/1",
                    registered_on=date(2026, 11, 30),
                ),
                sender="emb-berlin",
                recipients=("gs",),
            )
            # emb-berlin never received the letter: no token, or one it made up.
            publish_as(s, "emb-berlin", forged)
            made_up = forged.model_copy(update={"message_id": uuid.uuid4()})
            publish_as(s, "emb-berlin", made_up, headers={wire.H_RECEIPT_TOKEN: "0" * 32})
            dead = take(s, wire.DEAD_QUEUE, 2)
            assert {p.headers[wire.H_REASON] for p, _b in dead} == {
                ReasonCode.RECEIPT_NOT_DELIVERED.value
            }
            (genuine,) = take(s, wire.inbox_queue("gs"), 1)
            assert json.loads(genuine[1])["sender"] == "gs-archives"
            for receipt in (forged, made_up):
                audit.wait(
                    lambda e, r=receipt: (
                        e["event"] == "rejected" and e["message_id"] == str(r.message_id)
                    ),
                    "the forged receipt's rejection",
                )
            assert depth(s, wire.inbox_queue("gs")) == 0
        history = [
            e
            for e in audit.collect()
            if e["event"] == "receipt" and e["message_id"] == str(original.message_id)
        ]
        assert [e["sender"] for e in history] == ["gs-archives"]


class _FailsFor(Rules):
    """The bundled rules, with a bug that strikes one sender's messages."""

    def extra_recipients(self, type_: Any, sender: str, *args: Any) -> tuple[str, ...]:
        if sender == "emb-berlin":
            raise RuntimeError("injected failure while deciding")
        return super().extra_recipients(type_, sender, *args)


@contextmanager
def router_in_thread(router: Router) -> Iterator[None]:
    thread = threading.Thread(target=router.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    try:
        wait_for(router.consuming.is_set, what="the router consuming")
        yield
    finally:
        router.stop()
        thread.join(timeout=40)


class TestInternalError:
    def test_failure_while_deciding_is_a_refusal_not_a_retry(self, hub_settings: Settings) -> None:
        """A message whose decision raises lands in dead letters as internal_error, audited with its content, once; the others keep flowing."""
        s = hub_settings
        audit = Audit(s)
        ctx = routing_context(s)
        router = Router(s, replace(ctx, rules=_FailsFor(ctx.rules.rules, ctx.directory)))
        bad = letter("emb-berlin", "Cas limite")
        ok = letter("gs", "Tout va bien")
        with router_in_thread(router):
            publish_as(s, "emb-berlin", bad)
            publish_as(s, "gs", ok)
            ((props, body),) = take(s, wire.DEAD_QUEUE, 1)
            assert body == bad.encode()
            assert props.headers[wire.H_REASON] == ReasonCode.INTERNAL_ERROR.value
            assert "RuntimeError: injected failure" in props.headers[wire.H_REASON_TEXT]
            assert [b for _p, b in take(s, wire.inbox_queue("gs-archives"), 1)] == [ok.encode()]
            rejected = audit.wait(
                lambda e: e["event"] == "rejected" and e["message_id"] == str(bad.message_id),
                "the refusal's audit event",
            )
            assert rejected["reason"] == ReasonCode.INTERNAL_ERROR.value
            (received,) = [
                e
                for e in audit.events
                if e["event"] == "received" and e["message_id"] == str(bad.message_id)
            ]
            assert received["envelope"] == json.loads(bad.encode())  # its content, audited
            assert depth(s, wire.INGRESS_QUEUE) == 0 and depth(s, wire.DEAD_QUEUE) == 0
        assert router.stats.rejected == 1 and router.stats.routed == 1
