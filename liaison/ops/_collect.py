"""Reading the hub's queue figures: the management API, or AMQP when it does not answer.

pika and the management client's errors become :class:`BrokerError` here. One
collector keeps its connections between calls, so ``watch`` and the hub's
poller do not open one per refresh.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal

import pika
import pika.adapters.blocking_connection
import pika.exceptions

from liaison.adapters.connections import blocking_connection
from liaison.adapters.management import Management
from liaison.errors import BrokerError
from liaison.ops._status import (
    HubQueue,
    HubStatus,
    QueueRow,
    fill_gaps,
    has_gaps,
    merge_rows,
    rows_from_management,
)
from liaison.settings import Settings

#: ``auto``: the management API, AMQP when it does not answer; ``combined``: exact
#: AMQP depths every time, the management API's rates when it answers.
Mode = Literal["auto", "management", "amqp", "combined"]

#: After the management API failed, how long to use AMQP only before asking it again.
MANAGEMENT_RETRY_S = 30.0
#: How long ``combined`` reuses the management API's figures (its statistics tick is 5 s).
MANAGEMENT_REFRESH_S = 5.0
_NOT_FOUND = 404


class StatusCollector:
    """Collects a :class:`HubStatus` on demand; close it (or use ``with``) when done."""

    def __init__(
        self,
        settings: Settings,
        queues: Sequence[HubQueue],
        *,
        mode: Mode = "auto",
        management_timeout: float = 3.0,
    ) -> None:
        self._settings = settings
        self._queues = tuple(queues)
        self._mode = mode
        self._management_timeout = management_timeout
        self._api: Management | None = None
        self._connection: pika.BlockingConnection | None = None
        self._channel: pika.adapters.blocking_connection.BlockingChannel | None = None
        self._management_down_until = 0.0
        self._detailed: tuple[float, tuple[QueueRow, ...]] | None = None

    def __enter__(self) -> StatusCollector:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client and the AMQP connection."""
        if self._api is not None:
            self._api.close()
            self._api = None
        self._drop_connection()

    def collect(self) -> HubStatus:
        """The figures now; raises :class:`BrokerError` when no source answers."""
        if self._mode == "amqp":
            return self._status("amqp", self._amqp_rows())
        if self._mode == "management":
            return self._status("management", self._management_rows())
        if self._mode == "combined":
            return self._status("amqp+management", merge_rows(self._amqp_rows(), self._recent()))
        note = None
        if time.monotonic() >= self._management_down_until:
            try:
                rows = self._management_rows()
            except BrokerError as exc:
                self._management_down_until = time.monotonic() + MANAGEMENT_RETRY_S
                note = f"management API unavailable, fell back to AMQP: {exc}"
            else:
                if has_gaps(rows):
                    rows = fill_gaps(rows, self._amqp_rows())
                return self._status("management", rows)
        else:
            note = "management API unavailable recently; using AMQP"
        return self._status("amqp", self._amqp_rows(), note)

    def _status(
        self,
        source: Literal["management", "amqp", "amqp+management"],
        rows: tuple[QueueRow, ...],
        note: str | None = None,
    ) -> HubStatus:
        return HubStatus(source, self._settings.vhost, datetime.now(UTC), rows, note)

    # -- management API -----------------------------------------------------------------

    def _management_rows(self) -> tuple[QueueRow, ...]:
        if self._api is None:
            self._api = Management(self._settings, timeout=self._management_timeout)
        listed = self._api.queues(self._settings.vhost)
        return rows_from_management(self._queues, listed, now=time.time())

    def _recent(self) -> tuple[QueueRow, ...] | None:
        """The management API's rows, refreshed at most every few seconds; None when down."""
        now = time.monotonic()
        if self._detailed is not None and now - self._detailed[0] < MANAGEMENT_REFRESH_S:
            return self._detailed[1]
        if now < self._management_down_until:
            return None
        try:
            rows = self._management_rows()
        except BrokerError:
            self._management_down_until = now + MANAGEMENT_RETRY_S
            self._detailed = None
            return None
        self._detailed = (now, rows)
        return rows

    # -- AMQP -------------------------------------------------------------------------------

    def _amqp_rows(self) -> tuple[QueueRow, ...]:
        try:
            return tuple(self._declare_passive(queue) for queue in self._queues)
        except pika.exceptions.AMQPError as exc:
            self._drop_connection()
            raise BrokerError(f"cannot read queue depths over AMQP: {exc!r}") from exc

    def _declare_passive(self, queue: HubQueue) -> QueueRow:
        channel = self._open_channel()
        try:
            frame = channel.queue_declare(queue.name, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            # A passive declare of a missing queue closes the channel with 404.
            self._channel = None
            if exc.reply_code == _NOT_FOUND:
                return QueueRow(queue.name, queue.kind, exists=False)
            raise
        return QueueRow(
            queue.name,
            queue.kind,
            ready=int(frame.method.message_count),
            consumers=int(frame.method.consumer_count),
        )

    def _open_channel(self) -> pika.adapters.blocking_connection.BlockingChannel:
        if self._connection is None or not self._connection.is_open:
            self._connection = blocking_connection(self._settings, name="liaison-status")
            self._channel = None
        if self._channel is None or not self._channel.is_open:
            self._channel = self._connection.channel()
        return self._channel

    def _drop_connection(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            # Already going away: nothing is left to release.
            with contextlib.suppress(pika.exceptions.AMQPError):
                connection.close()
