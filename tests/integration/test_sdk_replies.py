"""Answers over the real hub: receipts back to the sender, request and reply, timeouts, stopping."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consumers import Consumer, Outcome, ReplyTimeout, request
from liaison.settings import Settings
from producers import Publisher
from schemas.correspondence import Letter
from schemas.envelope import Envelope
from schemas.examples import example_payload
from schemas.legal import OpinionGiven, OpinionRequested
from schemas.receipts import ReceiptReceived, ReceiptRegistered
from tests.conftest import Broker
from tests.integration.harness import depth, running, wait_for
from tests.integration.sdk_support import hub_vhost, participant, running_consumer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hub(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A hub vhost with its router running, for the whole module."""
    base: Path = tmp_path_factory.mktemp("sdk-replies")
    with (
        hub_vhost(broker, base) as settings,
        running(settings, "serve", log_path=str(base / "router.log")),
    ):
        yield settings


def _question() -> OpinionRequested:
    return OpinionRequested(
        question="May the Ministry host the signing ceremony abroad?",
        context="The partner state proposes its capital.",
    )


def _legal_service(settings: Settings) -> Consumer:
    """gs-legal's system: answers every opinion request with an opinion."""
    legal = Consumer(participant(settings, "gs-legal"))

    @legal.handler(OpinionRequested)
    def answer(envelope: Envelope[OpinionRequested]) -> None:
        legal.send_receipt(envelope, "received")
        legal.reply(
            envelope,
            OpinionGiven(
                request_message_id=envelope.message_id,
                opinion="Nothing in the constitution prevents it.",
                conclusion="Possible.",
            ),
        )

    return legal


def test_receipts_reach_the_original_sender_correlated(hub: Settings) -> None:
    """The recipient's receipts come back to the sender, naming and correlated with the letter."""
    letter = example_payload("correspondence.letter", 1)
    with Publisher(participant(hub, "gs")) as publisher:
        sent = publisher.publish(letter, recipients=["gs-archives"])
    with Consumer(participant(hub, "gs-archives")) as archives:

        @archives.handler(Letter)
        def file_it(envelope: Envelope[Letter]) -> None:
            archives.send_receipt(envelope, "received")
            archives.send_receipt(envelope, "registered", registry_number="ARCH/2025/0042")

        archives.drain(timeout=20, until=lambda: archives.counts[Outcome.HANDLED] >= 1)
    receipts: list[Envelope[Any]] = []
    with Consumer(participant(hub, "gs")) as gs:
        gs.register("receipt.received", receipts.append)
        gs.register("receipt.registered", receipts.append)
        gs.drain(timeout=20, until=lambda: len(receipts) >= 2)
    by_type = {e.type: e for e in receipts}
    received, registered = by_type["receipt.received"], by_type["receipt.registered"]
    assert isinstance(received.payload, ReceiptReceived)
    assert isinstance(registered.payload, ReceiptRegistered)
    assert registered.payload.registry_number == "ARCH/2025/0042"
    for receipt in receipts:
        assert receipt.sender == "gs-archives"
        assert receipt.recipients == ("gs",)
        assert receipt.payload.original_message_id == sent.message_id
        assert receipt.correlation_id == sent.message_id
        assert receipt.causation_id == sent.message_id


def test_request_reply_round_trip(hub: Settings) -> None:
    """gs asks the legal service for an opinion and gets it back, matched to its request."""
    with running_consumer(_legal_service(hub)), Publisher(participant(hub, "gs")) as gs:
        answer = request(
            gs,
            _question(),
            recipients=["gs-legal"],
            timeout=20,
            reply_types={"legal.opinion_given"},
        )
    assert isinstance(answer.payload, OpinionGiven)
    assert answer.sender == "gs-legal"
    assert answer.payload.request_message_id == answer.correlation_id
    assert answer.causation_id == answer.correlation_id


def test_other_messages_met_while_waiting_are_not_lost(hub: Settings) -> None:
    """Without a consumer, the requester holds other messages and leaves them in the inbox."""
    with Publisher(participant(hub, "gs-archives")) as archives:
        letter = archives.publish(example_payload("correspondence.letter", 1), recipients=["gs"])
    wait_for(lambda: depth(hub, "inbox.gs") >= 1, what="the letter in inbox.gs")
    with running_consumer(_legal_service(hub)), Publisher(participant(hub, "gs")) as gs:
        request(
            gs,
            _question(),
            recipients=["gs-legal"],
            timeout=20,
            reply_types={"legal.opinion_given"},
        )
    wait_for(lambda: depth(hub, "inbox.gs") >= 1, what="the held letter back in inbox.gs")
    got: list[Envelope[Any]] = []
    with Consumer(participant(hub, "gs")) as inbox:
        inbox.register("correspondence.letter", got.append)
        for type_ in ("receipt.received", "legal.opinion_given"):
            inbox.register(type_, lambda e: None)
        inbox.drain(timeout=10, until=lambda: bool(got))
    assert [e.message_id for e in got] == [letter.message_id]


def test_a_requester_with_a_consumer_handles_other_messages_meanwhile(hub: Settings) -> None:
    """With the system's own consumer, other messages go to their handlers while it waits."""
    with Publisher(participant(hub, "gs-archives")) as archives:
        letter = archives.publish(example_payload("correspondence.letter", 1), recipients=["gs"])
    letters: list[uuid.UUID] = []
    with (
        running_consumer(_legal_service(hub)),
        Consumer(participant(hub, "gs")) as gs_inbox,
        Publisher(participant(hub, "gs")) as gs,
    ):
        gs_inbox.register("correspondence.letter", lambda e: letters.append(e.message_id))
        gs_inbox.register("receipt.received", lambda e: None)
        answer = request(
            gs,
            _question(),
            recipients=["gs-legal"],
            timeout=20,
            consumer=gs_inbox,
            reply_types={"legal.opinion_given"},
        )
        gs_inbox.drain(timeout=10, until=lambda: letter.message_id in letters)
    assert answer.type == "legal.opinion_given"
    assert letters == [letter.message_id]


def test_a_request_nobody_answers_times_out_cleanly(hub: Settings) -> None:
    """ReplyTimeout after the timeout, naming the request; the request itself was delivered."""
    started = time.monotonic()
    with Publisher(participant(hub, "gs")) as gs, pytest.raises(ReplyTimeout) as caught:
        request(gs, _question(), recipients=["gs-treaties"], timeout=2)
    elapsed = time.monotonic() - started
    assert 2 <= elapsed < 10
    assert caught.value.request_id in str(caught.value)
    wait_for(lambda: depth(hub, "inbox.gs-treaties") >= 1, what="the unanswered request")


def test_a_running_consumer_stops_on_sigterm(hub: Settings, tmp_path: Path) -> None:
    """run() in a process: SIGTERM ends it cleanly (exit 0) after the messages in hand."""
    script = tmp_path / "consumer.py"
    script.write_text(
        "import json, sys\n"
        "from consumers import Consumer\n"
        "from producers import ParticipantSettings\n"
        "consumer = Consumer(ParticipantSettings.from_env())\n"
        "consumer.register('correspondence.letter', lambda e: print(json.dumps("
        "{'handled': str(e.message_id)}), flush=True))\n"
        "print(json.dumps({'ready': True}), flush=True)\n"
        "consumer.run()\n"
        "print(json.dumps({'stopped': dict(consumer.counts)}), flush=True)\n",
        encoding="utf-8",
    )
    settings = participant(hub, "dir-european")
    env = {
        "LIAISON_PARTICIPANT": settings.code,
        "LIAISON_AMQP_URL": settings.amqp_url,
        "LIAISON_HUB_USER": settings.hub_user or "",
    }
    with Publisher(participant(hub, "gs")) as gs:
        sent = gs.publish(example_payload("correspondence.letter", 1), recipients=["dir-european"])
    process = subprocess.Popen(
        [sys.executable, str(script)],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines = [json.loads(process.stdout.readline()) for _ in range(2)]
    assert {"handled": str(sent.message_id)} in lines
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    stopped = json.loads(process.stdout.readline())
    assert stopped["stopped"] == {"handled": 1}
    assert depth(hub, "inbox.dir-european") == 0
