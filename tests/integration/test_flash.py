"""FLASH is never stuck behind routine traffic: the urgent band on a real broker.

The module's hub runs its router (and retry relay, with 1 s and 2 s delays); each
test uses its own recipient so tests do not see each other's messages.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest

from consumers import Consumer
from liaison.adapters.connections import connection_parameters
from liaison.adapters.pipelined import publish_pipelined
from liaison.credentials import participant_url
from liaison.devtools.bench.flash import run_flash
from liaison.settings import Settings
from schemas import wire
from schemas.correspondence import Letter
from schemas.envelope import Envelope, new_envelope
from schemas.examples import example_payload
from schemas.types import Precedence
from tests.conftest import Broker
from tests.integration.harness import blocking, depth, publish_as, running, take, wait_for
from tests.integration.sdk_support import TEST_DELAYS_MS, hub_vhost, participant, running_consumer

BACKLOG = 2_000
SENDER = "gs"


@pytest.fixture(scope="module")
def hub(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A hub with short delay queues and its router (and retry relay), for the module."""
    base: Path = tmp_path_factory.mktemp("flash")
    with (
        hub_vhost(broker, base, retry_delays_ms=TEST_DELAYS_MS) as settings,
        running(settings, "serve", log_path=str(base / "router.log")),
    ):
        yield settings


def _letter(to: str, precedence: Precedence) -> Envelope[Letter]:
    letter = example_payload("correspondence.letter", 1)
    assert isinstance(letter, Letter)
    return new_envelope(letter, sender=SENDER, recipients=[to], precedence=precedence)


def _backlog(settings: Settings, to: str, count: int) -> None:
    """``count`` ROUTINE letters for ``to`` through the router, waiting in its routine inbox."""
    props = pika.BasicProperties(
        content_type=wire.CONTENT_TYPE, delivery_mode=2, user_id=settings.user_for(SENDER)
    )
    messages = [
        ("correspondence.letter", _letter(to, Precedence.ROUTINE).encode(), props)
        for _ in range(count)
    ]
    publish_pipelined(
        connection_parameters(settings, participant_url(settings, SENDER)),
        wire.INGRESS_EXCHANGE,
        messages,
    )
    wait_for(
        lambda: depth(settings, wire.inbox_queue(to)) >= count,
        timeout=120,
        what=f"{count} letters in {wire.inbox_queue(to)}",
    )


class _Recorder:
    """The precedences a consumer's handler saw, in order; 1 ms of work each."""

    def __init__(self) -> None:
        self.order: list[tuple[Precedence, str]] = []
        self.lock = threading.Lock()

    def __call__(self, envelope: Envelope[Any]) -> None:
        with self.lock:
            self.order.append((envelope.precedence, str(envelope.message_id)))
        time.sleep(0.001)

    def position(self, message_id: str) -> int | None:
        with self.lock:
            ids = [mid for _p, mid in self.order]
        return ids.index(message_id) if message_id in ids else None

    def routine(self) -> int:
        with self.lock:
            return sum(1 for p, _mid in self.order if p is Precedence.ROUTINE)


def test_waiting_flash_is_handled_before_the_backlog(hub: Settings) -> None:
    """2,000 ROUTINE letters wait, then a FLASH one: the SDK consumer hands the FLASH first."""
    to = "gs-archives"
    _backlog(hub, to, BACKLOG)
    flash = _letter(to, Precedence.FLASH)
    publish_as(hub, SENDER, flash)
    wait_for(lambda: depth(hub, wire.urgent_inbox_queue(to)) == 1, what="the FLASH copy")
    recorder = _Recorder()
    with Consumer(participant(hub, to)) as consumer:
        consumer.register("correspondence.letter", recorder)
        consumer.drain(
            timeout=30, until=lambda: recorder.position(str(flash.message_id)) is not None
        )
    position = recorder.position(str(flash.message_id))
    assert position is not None, "the FLASH letter never reached the handler"
    # Within the first few handled (at most a routine delivery already on the wire can
    # go first), not after the 2,000 waiting ahead of it in time.
    assert position < 5, recorder.order[:10]
    assert depth(hub, wire.inbox_queue(to)) > BACKLOG - 100


def test_flash_sent_mid_backlog_overtakes_it(hub: Settings) -> None:
    """While the consumer works through the backlog, a FLASH sent then is handled next."""
    to = "dir-political"
    _backlog(hub, to, BACKLOG)
    recorder = _Recorder()
    consumer = Consumer(participant(hub, to))
    consumer.register("correspondence.letter", recorder)
    flash = _letter(to, Precedence.FLASH)
    with running_consumer(consumer):
        wait_for(lambda: recorder.routine() >= 200, what="the consumer in the backlog")
        before = recorder.routine()
        publish_as(hub, SENDER, flash)
        wait_for(
            lambda: recorder.position(str(flash.message_id)) is not None,
            what="the FLASH letter handled",
        )
        at_flash = recorder.routine()
    # Only what the consumer handled while the router routed the FLASH letter (a few
    # milliseconds, 1 ms a letter); the backlog was far from done.
    assert at_flash - before < 300, (before, at_flash)
    assert at_flash < BACKLOG - 1_000


def test_plain_pika_reads_the_flash_copy_from_the_urgent_band(hub: Settings) -> None:
    """As the participant's own user, with pika alone: FLASH in .urgent, ROUTINE in the other."""
    to = "gs-legal"
    routine, flash = _letter(to, Precedence.ROUTINE), _letter(to, Precedence.FLASH)
    publish_as(hub, SENDER, routine)
    publish_as(hub, SENDER, flash)
    wait_for(
        lambda: depth(hub, wire.urgent_inbox_queue(to)) == 1 and depth(hub, wire.inbox_queue(to)),
        what="both copies",
    )
    connection = blocking(participant_url(hub, to))
    try:
        channel = connection.channel()
        got = {}
        for queue in wire.inbox_queues(to):
            method, props, _body = channel.basic_get(queue, auto_ack=True)
            assert method is not None, queue
            assert props.user_id == hub.hub_user
            got[queue] = props.message_id
    finally:
        connection.close()
    assert got == {
        wire.urgent_inbox_queue(to): str(flash.message_id),
        wire.inbox_queue(to): str(routine.message_id),
    }


def test_retried_flash_copy_comes_back_to_the_urgent_band(hub: Settings) -> None:
    """A FLASH copy the participant parks for a 1 s retry returns to inbox.<code>.urgent."""
    to = "dir-european"
    flash = _letter(to, Precedence.FLASH)
    publish_as(hub, SENDER, flash)
    ((props, body),) = take(hub, wire.urgent_inbox_queue(to), 1)
    connection = blocking(participant_url(hub, to))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            wire.RETRY_EXCHANGE,
            to,
            body,
            pika.BasicProperties(
                content_type=wire.CONTENT_TYPE,
                delivery_mode=2,
                message_id=props.message_id,
                user_id=hub.user_for(to),
                headers={wire.H_DELAY: "1s", wire.H_ATTEMPT: 1},
            ),
            mandatory=True,
        )
    finally:
        connection.close()
    ((again, again_body),) = take(hub, wire.urgent_inbox_queue(to), 1, timeout=30)
    assert again_body == body
    assert (again.headers or {})[wire.H_OWN_RETRY] == to
    assert depth(hub, wire.inbox_queue(to)) == 0


def test_flash_copy_without_an_urgent_inbox_is_dead_lettered_for_its_code(hub: Settings) -> None:
    """Topology not yet applied for the urgent band: unroutable, naming the participant."""
    to = "dir-economic"
    connection = blocking(hub.amqp_url)
    try:
        connection.channel().queue_delete(wire.urgent_inbox_queue(to))
    finally:
        connection.close()
    flash = _letter(to, Precedence.FLASH)
    publish_as(hub, SENDER, flash)
    dead = [
        (props, body)
        for props, body in take(hub, wire.DEAD_QUEUE, 1, timeout=30)
        if props.message_id == str(flash.message_id)
    ]
    assert len(dead) == 1
    headers = dead[0][0].headers
    assert headers[wire.H_REASON] == "unroutable"
    assert headers[wire.H_RECIPIENT] == to  # the code, as `dlq retry` needs it
    assert headers[wire.H_ORIGINAL_ROUTING_KEY] == f"{to}.urgent"


def test_bench_flash_smoke(settings: Settings) -> None:
    """``bench flash`` with a small backlog: every FLASH timed, finite, the backlog still there."""
    # 20 ms of work a letter: 300 letters last 6 s, past the 1 s warm-up and 1 s of FLASH.
    result = run_flash(settings, backlog=300, rate=10, seconds=1.0, handler_ms=20.0)
    assert result.backlog_filled_via == "hub"
    assert result.flash_sent == result.flash_handled == 10
    assert 0 < result.flash_p50_ms <= result.flash_p99_ms <= result.flash_max_ms
    assert math.isfinite(result.flash_max_ms)
    assert result.backlog_remaining_at_last_flash > 0
    assert result.routine_handled_before_last_flash >= result.routine_handled_before_first_flash
    assert result.backlog_remaining_at_last_flash == 300 - result.routine_handled_before_last_flash
