"""The retry relay's I/O shell: consume ``hub.retry.due`` as the hub, publish, audit, ack.

Per message: decide (``liaison.core.retry.relay``), publish the one forward (a
participant's own inbox, or ``liaison.dead``) with ``mandatory`` and publisher
confirms, publish its audit events, confirmed too, and only then ack: at least
once, like the router. A forward the broker returns or nacks is handed back
(``nack``, requeue); past the queue's delivery limit the broker moves the message
to ``liaison.dead``, still carrying the participant's validated ``user_id``.

Retries and parks are a trickle beside ingress traffic, so a BlockingConnection
waiting for each confirm is plenty. It runs inside ``liaison serve``, on its own
thread and connection (see ``start_relay``): operators already run that process,
and every hub that routes needs its retries relayed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import uuid4

import pika
import pika.exceptions
import pika.spec
import structlog
from pika.adapters.blocking_connection import BlockingChannel

from liaison.adapters.connections import Backoff, blocking_connection
from liaison.core.events import CONTENT_TYPE as AUDIT_CONTENT_TYPE
from liaison.core.events import encode_batch
from liaison.core.retry import Due, RelayContext, RelayDecision, relay
from liaison.core.values import Outgoing
from liaison.errors import BrokerError
from liaison.settings import Settings
from schemas import wire

log = structlog.get_logger("liaison.retry_relay")

#: Messages held unacked at once (each waits for two confirms in turn).
PREFETCH = 20
#: How often the consume loop looks at the stop flag, in seconds.
_TICK_S = 0.5


class RetryRelay:
    """Relays due retries and parked messages until ``stop``; reconnects with backoff."""

    def __init__(
        self,
        settings: Settings,
        context: RelayContext,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._ctx = context
        self._clock = clock
        self._stopping = threading.Event()
        #: Set while consuming (tests and health checks wait for it).
        self.consuming = threading.Event()
        self.relayed = 0

    def stop(self) -> None:
        """Ask the loop to return after the message in hand; safe from any thread."""
        self._stopping.set()

    def run(self) -> None:
        """Relay until ``stop``; a lost broker is retried with growing pauses."""
        backoff = Backoff.of(self._settings)
        while not self._stopping.is_set():
            backoff.connecting()
            try:
                self._connect_and_consume()
            except (pika.exceptions.AMQPError, OSError, BrokerError) as exc:
                log.warning("relay.connection_lost", error=str(exc))
            finally:
                self.consuming.clear()
            if self._stopping.is_set():
                break
            self._stopping.wait(backoff.pause())
        log.info("relay.stopped", relayed=self.relayed)

    def _connect_and_consume(self) -> None:
        connection = blocking_connection(self._settings, name="liaison-retry-relay")
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.basic_qos(prefetch_count=PREFETCH)
            self.consuming.set()
            log.info("relay.consuming", queue=wire.RETRY_DUE_QUEUE, vhost=self._settings.vhost)
            for method, properties, body in channel.consume(
                wire.RETRY_DUE_QUEUE, inactivity_timeout=_TICK_S
            ):
                if self._stopping.is_set():
                    break
                if method is None:
                    continue
                self._handle(channel, method, properties, body)
        finally:
            if connection.is_open:
                connection.close()

    def _handle(
        self,
        channel: BlockingChannel,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        due = Due(
            body=body,
            user_id=properties.user_id,
            headers=properties.headers or {},
            message_id=properties.message_id,
            type=properties.type,
            correlation_id=properties.correlation_id,
        )
        try:
            decision = relay(due, self._ctx, now=self._clock())
        except Exception:  # a bug must not stop the relay: the delivery limit parks it
            log.exception("relay.decide_failed")
            channel.basic_nack(method.delivery_tag, requeue=True)
            return
        try:
            self._publish(channel, decision.out)
            if decision.events:
                self._publish_audit(channel, decision)
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
            log.error(  # noqa: TRY400 - the broker's answer is the whole story
                "relay.forward_failed",
                message_id=decision.message_id,
                verdict=decision.verdict.value,
                error=type(exc).__name__,
            )
            channel.basic_nack(method.delivery_tag, requeue=True)
            return
        channel.basic_ack(method.delivery_tag)
        self.relayed += 1
        log.info(
            "relay.forwarded",
            message_id=decision.message_id,
            verdict=decision.verdict.value,
            participant=decision.participant,
        )

    def _publish(self, channel: BlockingChannel, out: Outgoing, content_type: str = "") -> None:
        channel.basic_publish(
            out.exchange,
            out.routing_key,
            out.body,
            pika.BasicProperties(
                content_type=content_type or wire.CONTENT_TYPE,
                delivery_mode=pika.DeliveryMode.Persistent,
                message_id=out.message_id,
                type=out.type,
                correlation_id=out.correlation_id,
                headers=out.headers,
                timestamp=int(time.time()),
                # Validated by RabbitMQ: consumers and operators can tell it is the hub's.
                user_id=self._settings.hub_user,
            ),
            mandatory=True,
        )

    def _publish_audit(self, channel: BlockingChannel, decision: RelayDecision) -> None:
        out = Outgoing(
            wire.AUDIT_EXCHANGE, "", encode_batch(decision.events), {}, uuid4().hex, "audit"
        )
        self._publish(channel, out, AUDIT_CONTENT_TYPE)


def start_relay(relay_: RetryRelay) -> threading.Thread:
    """Run ``relay_`` on a daemon thread of its own (its connection is its own too)."""
    thread = threading.Thread(target=relay_.run, name="liaison-retry-relay", daemon=True)
    thread.start()
    return thread


__all__ = ["PREFETCH", "RetryRelay", "start_relay"]
