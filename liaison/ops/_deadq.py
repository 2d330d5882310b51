"""``hub.dead`` over AMQP, as the hub's own user: read it without losing anything, retry, purge.

Reading: ``basic.get`` without auto-ack through the whole queue, then every
delivery still held is nacked back (``requeue=True``, ``multiple=True``) on the
same channel, in delivery order. Headers and bodies come back unchanged, except
``x-delivery-count``, which RabbitMQ before 4.3 raises on every return: harmless
because ``hub.dead`` has no delivery limit (see ``topology._plan``). Order: a
quorum queue without a delivery limit puts returned messages at its back
(measured on 3.10, as its documentation says), so only a full pass returned in
order leaves the queue as it was; a partial read would rotate it. Hence every
read is a full pass. A dead letter arriving during a pass lands before the ones
being read. A crash mid-read loses nothing: the broker requeues what a closed
channel held.

Retrying: the original body goes back to ``liaison.ingress`` as the hub's user
with ``x-liaison-retry-of``, ``x-liaison-actor`` and ``x-liaison-operation``
(the router trusts that user as a relay and audits ``retried``); an
``operator_action`` event goes to ``liaison.audit``; only once the broker has
confirmed both is the dead letter acked. Purging audits, then acks. Both are
at-least-once: a crash between the confirm and the ack leaves the dead letter in
place, and retrying it again delivers a duplicate that consumers drop by id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal
from uuid import uuid4

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel as Channel

from liaison.adapters.connections import blocking_connection
from liaison.core import dedupe, relay
from liaison.core.events import CONTENT_TYPE as AUDIT_CONTENT_TYPE
from liaison.core.events import AuditEvent, EventKind, encode_batch, make_event
from liaison.core.relay import Relay
from liaison.errors import BrokerError
from liaison.ops._letters import (
    DeadLetter,
    dead_letter,
    first_arrival,
    group_copies,
    identity_problem,
    salvage,
)
from liaison.settings import Settings
from schemas import wire
from schemas.errors import ReasonCode

Action = Literal["retry", "purge"]
#: Refusals a retry must not undo: the router trusts the hub's relay and skips the checks
#: that made them (identity, the id window, the receipt token), so relaying one would
#: deliver it with the hub's authority.
FINAL_REASONS = frozenset(
    {
        ReasonCode.ID_REUSED.value,
        ReasonCode.RECEIPT_NOT_DELIVERED.value,
        ReasonCode.SENDER_MISMATCH.value,
        ReasonCode.UNKNOWN_SENDER.value,
        ReasonCode.SIGNATURE_MISSING.value,
        ReasonCode.SIGNATURE_INVALID.value,
    }
)
#: Dead letters settled per round of confirms (bounds the memory a big ``--all`` takes).
CHUNK = 200


@dataclass(frozen=True)
class Peek:
    """What ``hub.dead`` held when read: the first letters and how many there were."""

    letters: list[DeadLetter]
    total: int


@dataclass
class Outcome:
    """What a retry or purge did."""

    action: Action
    operator: str
    settled: list[DeadLetter] = field(default_factory=list)
    #: Selected but left in place, with why (a retry the hub cannot vouch for).
    refused: list[tuple[DeadLetter, str]] = field(default_factory=list)
    operations: dict[str, str] = field(default_factory=dict)  # message id -> operation id

    @property
    def message_ids(self) -> list[str]:
        """The distinct message ids settled, in order."""
        return list(dict.fromkeys(letter.message_id for letter in self.settled))


class DeadLetterQueue:
    """Operator actions on ``hub.dead``; each call opens and closes its own connection."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def peek(self, limit: int | None = None) -> Peek:
        """The first ``limit`` dead letters (all when ``None``), all of them left in place."""
        with self._channel() as channel:
            total = int(channel.queue_declare(wire.DEAD_QUEUE, passive=True).method.message_count)
            letters: list[DeadLetter] = []
            held: list[int] = []
            try:
                # Always a full pass, even for a few: hub.dead has no delivery limit, and a
                # quorum queue without one puts returned messages at its back, so a partial
                # read would rotate the queue; returning all of them in order keeps it.
                for tag, letter in self._read(channel):
                    held.append(tag)
                    if limit is None or len(letters) < limit:
                        letters.append(letter)
            finally:
                _give_back(channel, held)
        return Peek(letters, max(total, len(letters)))

    def retry(self, select: Callable[[DeadLetter], bool], *, operator: str) -> Outcome:
        """Re-publish the selected dead letters through the router; ack each once confirmed."""
        return self._act("retry", select, operator)

    def purge(self, select: Callable[[DeadLetter], bool], *, operator: str) -> Outcome:
        """Remove the selected dead letters, each audited as an operator action first."""
        return self._act("purge", select, operator)

    # -- the shared loop ------------------------------------------------------------------

    def _act(self, action: Action, select: Callable[[DeadLetter], bool], operator: str) -> Outcome:
        outcome = Outcome(action, operator)
        with self._channel() as channel:
            held: list[int] = []
            chosen: list[tuple[int, DeadLetter]] = []
            try:
                for tag, letter in self._read(channel):
                    if not select(letter):
                        held.append(tag)
                        continue
                    problem = self._problem(action, letter)
                    if problem is not None:
                        held.append(tag)
                        outcome.refused.append((letter, problem))
                        continue
                    chosen.append((tag, letter))
                    if len(chosen) >= CHUNK:
                        self._settle(channel, action, chosen, outcome)
                        chosen = []
                if chosen:
                    self._settle(channel, action, chosen, outcome)
                    chosen = []
            finally:
                _give_back(channel, [*held, *(tag for tag, _ in chosen)])
        return outcome

    def _problem(self, action: Action, letter: DeadLetter) -> str | None:
        if action != "retry":
            return None
        settings = self._settings
        # Who sent it first: the most specific answer when the hub cannot vouch for it.
        identity = identity_problem(
            letter, hub_user=settings.hub_user, user_prefix=settings.user_prefix
        )
        if identity is not None:
            return identity
        if letter.reason in FINAL_REASONS:
            return (
                f"refused as {letter.reason}: the router's relay skips the check that refused "
                "it, so a retry would deliver what was rightly refused"
            )
        # The body's type, not only the AMQP property: a participant sets the latter.
        types = (letter.type or "", salvage(letter.body).get("type", ""))
        if any(kind.startswith("receipt.") for kind in types):
            # A relayed receipt skips the delivery-token check; the participant that
            # received the original can simply send its receipt again.
            return "a receipt is not relayed: its sender re-sends it, with its delivery token"
        return None

    def _settle(
        self,
        channel: Channel,
        action: Action,
        chosen: list[tuple[int, DeadLetter]],
        outcome: Outcome,
    ) -> None:
        events: list[AuditEvent] = []
        for copies in group_copies(letter for _tag, letter in chosen):
            operation = str(uuid4())
            first = copies[0]
            if action == "retry":
                self._republish(channel, copies, operation, outcome.operator)
            events.append(_operator_event(action, first, operation, outcome.operator))
            outcome.operations[first.message_id] = operation
        self._publish_audit(channel, events)
        for tag, letter in chosen:
            channel.basic_ack(tag)
            outcome.settled.append(letter)

    def _republish(
        self, channel: Channel, copies: list[DeadLetter], operation: str, actor: str
    ) -> None:
        letter = copies[0]
        recipients = {copy.recipient for copy in copies}
        # When every copy names the recipient it failed for (clearance, unroutable), the
        # router retries those alone instead of delivering again to the others.
        headers = relay.request_headers(
            Relay.RETRY,
            letter.message_id,
            actor=actor,
            operation=operation,
            to=sorted(r for r in recipients if r) if None not in recipients else None,
        )
        properties = pika.BasicProperties(
            content_type=wire.CONTENT_TYPE,
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=letter.message_id,
            type=letter.type,
            # RabbitMQ validates user_id: it proves to the router that the hub relays this.
            user_id=self._settings.hub_user,
            timestamp=first_arrival(copies, self._settings.hub_user) or int(time.time()),
            headers=headers,
        )
        _confirmed(channel, wire.INGRESS_EXCHANGE, letter.routing_key, letter.body, properties)

    def _publish_audit(self, channel: Channel, events: list[AuditEvent]) -> None:
        properties = pika.BasicProperties(
            content_type=AUDIT_CONTENT_TYPE,
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=uuid4().hex,
            type="audit",
            user_id=self._settings.hub_user,
            timestamp=int(time.time()),
        )
        _confirmed(channel, wire.AUDIT_EXCHANGE, "", encode_batch(events), properties)

    # -- plumbing ---------------------------------------------------------------------------

    def _read(self, channel: Channel) -> Iterator[tuple[int, DeadLetter]]:
        """Every ready dead letter, each held (unacked) by this channel until settled."""
        settings = self._settings
        while True:
            method, properties, body = channel.basic_get(wire.DEAD_QUEUE, auto_ack=False)
            if method is None:
                return
            letter = dead_letter(
                message_id=properties.message_id,
                type_=properties.type,
                timestamp=properties.timestamp,
                headers=properties.headers,
                body=body,
                hub_user=settings.hub_user,
                user_prefix=settings.user_prefix,
                user_id=properties.user_id,
            )
            yield method.delivery_tag, letter

    @contextmanager
    def _channel(self) -> Iterator[Channel]:
        connection = blocking_connection(self._settings, name="liaison-dlq")
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            yield channel
        except pika.exceptions.ChannelClosedByBroker as exc:
            raise BrokerError(f"the broker closed the channel: {exc.reply_text}") from exc
        except pika.exceptions.AMQPError as exc:
            raise BrokerError(
                f"lost the broker while working on {wire.DEAD_QUEUE}: {exc!r}"
            ) from exc
        finally:
            if connection.is_open:
                connection.close()


def _give_back(channel: Channel, tags: list[int]) -> None:
    """Requeue every delivery still held, oldest first (one ``nack`` with ``multiple``)."""
    if tags and channel.is_open:
        channel.basic_nack(max(tags), multiple=True, requeue=True)


def _confirmed(
    channel: Channel,
    exchange: str,
    routing_key: str,
    body: bytes,
    properties: pika.BasicProperties,
) -> None:
    """Publish with ``mandatory`` and wait for the broker's confirm."""
    try:
        channel.basic_publish(exchange, routing_key, body, properties, mandatory=True)
    except pika.exceptions.UnroutableError as exc:
        raise BrokerError(f"{exchange} routed the message nowhere (topology missing?)") from exc
    except pika.exceptions.NackError as exc:
        raise BrokerError(f"{exchange} refused the message (nack)") from exc


def _operator_event(action: Action, letter: DeadLetter, operation: str, actor: str) -> AuditEvent:
    envelope = letter.envelope() if action == "purge" else None
    detail = f"dlq {action}"
    if action == "purge" and envelope is None:
        detail += f"; body {letter.digest}"
    return make_event(
        EventKind.OPERATOR_ACTION,
        letter.message_id,
        discriminator=dedupe.operator(action, operation),
        type=letter.type,
        sender=letter.sender,
        recipients=(letter.recipient,) if letter.recipient else (),
        reason=letter.reason,
        detail=detail,
        actor=actor,
        envelope=envelope,
    )
