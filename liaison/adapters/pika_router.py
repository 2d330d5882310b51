"""The router's I/O shell: pika's asynchronous adapter around ``liaison.core.machine``.

The state machine (``RouterState``) decides what to publish, ack, hand back and
close; this shell feeds it pika's callbacks (deliveries, confirms, returns, a lost
connection, SIGTERM) and carries out the commands it answers with. Many publishes
are in flight at once (pipelined publisher confirms): waiting for each confirm in
turn caps a 2-core machine at about 1,300 msg/s.

After a lost connection the router reconnects with backoff; everything it had not
acked comes back from the broker, and downstream deduplication absorbs the repeats.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from types import FrameType

import pika
import pika.channel
import pika.frame
import pika.spec
import structlog

from liaison.adapters.coalesce import coalesce_writes
from liaison.adapters.connections import (
    TLS_REFUSED,
    Backoff,
    Failover,
    describe_connect_error,
    login_refused,
)
from liaison.adapters.frames import FramePublisher
from liaison.core.decide import RoutingContext
from liaison.core.machine import (
    Ack,
    Close,
    Command,
    DecideFailed,
    Nack,
    Observer,
    Publish,
    Refused,
    Requeued,
    ReturnedElsewhere,
    RouterState,
    RouterStats,
    ScheduleFlush,
    StartDrainTimer,
    StoppingWithInFlight,
)
from liaison.core.values import Incoming, amqp_text
from liaison.errors import LoginRefusedError
from liaison.settings import Settings
from schemas import wire
from schemas.errors import ReasonCode

log = structlog.get_logger("liaison.router")


class Router:
    """Consumes ``hub.ingress`` until stopped; ``run`` returns the exit code."""

    def __init__(
        self,
        settings: Settings,
        context: RoutingContext,
        *,
        observer: Observer | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        # Read once: ``Settings.hub_user`` parses the AMQP URL on every call.
        self._hub_user = settings.hub_user
        self.state = RouterState(
            context,
            dedupe_window=settings.dedupe_window,
            prefetch=settings.prefetch,
            observer=observer,
            clock=clock,
        )
        self._stopping = threading.Event()
        self._nodes = Failover(settings, name="liaison-router")
        self._connected_once = False
        #: Why the router gave up (a TLS refusal at start), or ``None``.
        self.failure: str | None = None
        self._connection: pika.SelectConnection | None = None
        self._channel: pika.channel.Channel | None = None
        #: Writes the router's publishes as frames (``None``: through ``basic_publish``).
        self._frames: FramePublisher | None = None
        self.consuming = threading.Event()
        self._refused: LoginRefusedError | None = None

    @property
    def stats(self) -> RouterStats:
        """The router's counters (kept across reconnections)."""
        return self.state.stats

    # -- lifecycle -----------------------------------------------------------------

    def run(self, *, install_signals: bool = True) -> int:
        """Route until SIGTERM/SIGINT (or ``stop``); reconnect with backoff in between."""
        if install_signals:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        backoff = Backoff.of(self._settings)
        while not self._stopping.is_set():
            backoff.connecting()
            self._connect_and_loop()
            if self._stopping.is_set():
                break
            delay = backoff.pause()
            self.stats.reconnects += 1
            log.warning("router.reconnecting", in_s=round(delay, 2))
            self._stopping.wait(delay)
        if self._refused is not None:
            raise self._refused
        log.info(
            "router.stopped", **{k: v for k, v in vars(self.stats).items() if k != "by_reason"}
        )
        return 0 if self.failure is None else 1

    def stop(self) -> None:
        """Ask the router to stop: stop consuming, finish what is in flight, close."""
        self._stopping.set()
        connection = self._connection
        if connection is not None:
            connection.ioloop.add_callback_threadsafe(self._begin_stop)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("router.signal", signal=signal.Signals(signum).name)
        self.stop()

    def _connect_and_loop(self) -> None:
        # Each (re)connection goes to the next node of amqp_url: not the one just lost.
        params = self._nodes.next()
        log.info("router.connecting", node=self._nodes.describe(params))
        self._channel = None
        self._frames = None
        self._execute(self.state.on_connection_lost())
        connection = pika.SelectConnection(
            params,
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_connection_error,
            on_close_callback=self._on_connection_closed,
        )
        self._connection = connection
        try:
            connection.ioloop.start()
        finally:
            self._connection = None
            self.consuming.clear()

    # -- connection and channel callbacks -------------------------------------------

    def _on_connection_open(self, connection: pika.SelectConnection) -> None:
        self._connected_once = True
        coalesce_writes(connection)
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_connection_error(self, connection: pika.SelectConnection, error: Exception) -> None:
        message = describe_connect_error(self._settings, error)
        log.warning("router.connect_failed", error=message)
        # A password or certificate refused before the first login will not heal by
        # retrying: stop and say so. Refused later (a broker restarting) is worth the
        # reconnect loop.
        refused = login_refused(self._settings, error)
        if refused is not None and not self._connected_once:
            self._refused = refused
            self._stopping.set()
        elif message.startswith(TLS_REFUSED) and not self._connected_once:
            self.failure = message
            self._stopping.set()
        connection.ioloop.stop()

    def _on_connection_closed(self, connection: pika.SelectConnection, reason: Exception) -> None:
        if not self._stopping.is_set():
            log.warning(
                "router.connection_lost", reason=str(reason), in_flight=self.state.in_flight
            )
        connection.ioloop.stop()

    def _on_channel_open(self, channel: pika.channel.Channel) -> None:
        self._channel = channel
        self._frames = FramePublisher.of(channel)
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.add_on_cancel_callback(self._on_cancelled)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_confirm_on)

    def _on_confirm_on(self, _frame: pika.frame.Method) -> None:
        assert self._channel is not None
        self._channel.basic_qos(prefetch_count=self._settings.prefetch, callback=self._on_qos)

    def _on_qos(self, _frame: pika.frame.Method) -> None:
        assert self._channel is not None
        if self._stopping.is_set():
            self._begin_stop()
            return
        self._channel.basic_consume(wire.INGRESS_QUEUE, self._on_message)
        self.consuming.set()
        log.info(
            "router.consuming",
            queue=wire.INGRESS_QUEUE,
            vhost=self._settings.vhost,
            prefetch=self._settings.prefetch,
        )

    def _on_cancelled(self, _frame: pika.frame.Method) -> None:
        # The broker cancels a consumer when its queue is deleted: not ready any more,
        # and reconnecting (with backoff) is how to find out when the queue is back.
        log.error("router.consumer_cancelled", queue=wire.INGRESS_QUEUE)
        self.consuming.clear()
        self._close()

    def _on_channel_closed(self, _channel: pika.channel.Channel, reason: Exception) -> None:
        if not self._stopping.is_set():
            log.error("router.channel_closed", reason=str(reason))
        self._close()

    # -- what the broker tells the state machine ---------------------------------------

    def _on_message(
        self,
        _channel: pika.channel.Channel,
        method: pika.spec.Basic.Deliver,
        properties: pika.spec.BasicProperties,
        body: bytes,
    ) -> None:
        if self._stopping.is_set():
            return  # stopping: left unacked, requeued by the broker when the connection closes
        incoming = Incoming(
            body=body,
            user_id=properties.user_id,
            # pika hands a short string that is not UTF-8 over as bytes: made text here,
            # or a participant's odd bytes would reach the publisher (amqp_text).
            routing_key=amqp_text(method.routing_key) or "",
            headers=properties.headers or {},
            property_message_id=amqp_text(properties.message_id),
            redelivered=bool(method.redelivered),
            timestamp=properties.timestamp,
        )
        self._execute(self.state.on_message(method.delivery_tag, incoming))

    def _on_return(
        self,
        _channel: pika.channel.Channel,
        method: pika.spec.Basic.Return,
        properties: pika.spec.BasicProperties,
        _body: bytes,
    ) -> None:
        self._execute(
            self.state.on_return(
                method.exchange, method.routing_key, properties.message_id, method.reply_text
            )
        )

    def _on_confirm(self, frame: pika.frame.Method) -> None:
        method = frame.method
        acked = isinstance(method, pika.spec.Basic.Ack)
        self._execute(self.state.on_confirm(method.delivery_tag, bool(method.multiple), acked))

    def _flush(self) -> None:
        channel = self._channel
        writable = channel is not None and channel.is_open
        self._execute(self.state.on_flush(writable=writable))

    def _begin_stop(self) -> None:
        channel = self._channel
        if channel is None or not channel.is_open:
            self._close()
            return
        self._execute(self.state.on_stop())

    def _drain_timed_out(self) -> None:
        self._execute(self.state.on_drain_timeout())

    # -- carrying out the state machine's commands --------------------------------------

    def _execute(self, commands: Iterable[Command]) -> None:
        channel = self._channel
        # Every command comes from a callback of the open channel; one closed meanwhile
        # takes its publishes and tags with it (the broker redelivers what is unacked).
        usable = channel is not None and channel.is_open
        for command in commands:
            if isinstance(command, Publish | Ack | Nack):
                if usable:
                    assert channel is not None
                    self._send(channel, command)
            elif isinstance(command, ScheduleFlush):
                if self._connection is not None:
                    self._connection.ioloop.call_later(command.seconds, self._flush)
            elif isinstance(command, StartDrainTimer):
                if self._connection is not None:
                    self._connection.ioloop.call_later(command.seconds, self._drain_timed_out)
            elif isinstance(command, Close):
                self._close()
            else:
                self._report(command)

    def _send(self, channel: pika.channel.Channel, command: Publish | Ack | Nack) -> None:
        if isinstance(command, Ack):
            channel.basic_ack(command.tag, multiple=command.multiple)
            return
        if isinstance(command, Nack):
            channel.basic_nack(command.tag, requeue=True)
            return
        out = command.out
        if self._frames is not None:
            self._frames.publish(
                out.exchange,
                out.routing_key,
                out.body,
                content_type=command.content_type,
                message_id=out.message_id,
                type_=out.type,
                correlation_id=out.correlation_id,
                headers=out.headers,
                timestamp=int(time.time()) if out.timestamp is None else out.timestamp,
                user_id=self._hub_user,
            )
            return
        channel.basic_publish(
            exchange=out.exchange,
            routing_key=out.routing_key,
            body=out.body,
            properties=pika.BasicProperties(
                content_type=command.content_type,
                delivery_mode=pika.DeliveryMode.Persistent,
                message_id=out.message_id,
                type=out.type,
                correlation_id=out.correlation_id,
                headers=out.headers or None,  # an empty table still costs encoding
                timestamp=int(time.time()) if out.timestamp is None else out.timestamp,
                # RabbitMQ validates user_id, so everything the router publishes
                # (deliveries, dead letters, audit) provably comes from the hub.
                user_id=self._hub_user,
            ),
            mandatory=True,
        )

    def _report(
        self,
        report: Refused | DecideFailed | Requeued | ReturnedElsewhere | StoppingWithInFlight,
    ) -> None:
        if isinstance(report, Refused):
            decision = report.decision
            if decision.reason is ReasonCode.INTERNAL_ERROR:
                log.error(
                    "router.internal_error",
                    message_id=decision.message_id,
                    type=decision.type,
                    sender=decision.sender,
                    detail=decision.dead_letters[0].headers.get(wire.H_REASON_TEXT),
                )
            elif decision.reason is not None:
                log.info(
                    "router.rejected",
                    message_id=decision.message_id,
                    type=decision.type,
                    sender=decision.sender,
                    reason=decision.reason.value,
                )
        elif isinstance(report, DecideFailed):
            log.error("router.decide_failed", routing_key=report.routing_key, exc_info=report.error)
        elif isinstance(report, Requeued):
            log.error("router.requeue", message_id=report.message_id, why=report.why)
        elif isinstance(report, ReturnedElsewhere):
            log.error(
                "router.returned",
                exchange=report.exchange,
                routing_key=report.routing_key,
                reply=report.reply,
            )
        else:
            log.warning("router.stop_with_in_flight", count=report.count)

    def _close(self) -> None:
        connection = self._connection
        if connection is not None and connection.is_open:
            connection.close()
