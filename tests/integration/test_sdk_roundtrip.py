"""Every message family through the real router with the SDK: publish, route, consume, typed.

One hub (vhost, topology, router process) serves the whole module; each case
publishes as a participant the directory lets send the type and consumes as a
recipient cleared for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from consumers import Consumer
from liaison.directory import load_directory
from liaison.settings import Settings
from producers import Publisher
from schemas import wire
from schemas.catalog import default_registry
from schemas.envelope import Envelope
from schemas.examples import example_payload
from schemas.missions import CableV1, CableV2
from tests.conftest import Broker
from tests.integration.harness import running
from tests.integration.sdk_support import hub_vhost, participant, routes

ROUTES = routes(load_directory(None))


@pytest.fixture(scope="module")
def hub(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A hub vhost with its router running, for the whole module."""
    base: Path = tmp_path_factory.mktemp("sdk-roundtrip")
    with (
        hub_vhost(broker, base) as settings,
        running(settings, "serve", log_path=str(base / "router.log")),
    ):
        yield settings


def _receive(settings: Settings, code: str, message_id: Any) -> Envelope[Any]:
    """Consume ``code``'s inbox (every type handled) until ``message_id`` arrives."""
    got: list[Envelope[Any]] = []
    with Consumer(participant(settings, code)) as consumer:
        for type_ in default_registry().types():
            consumer.register(type_, got.append)
        consumer.drain(timeout=20, until=lambda: any(e.message_id == message_id for e in got))
    found = [e for e in got if e.message_id == message_id]
    assert found, f"{message_id} never reached {code}"
    return found[0]


def _delivered(settings: Settings, sender: str, recipient: str) -> tuple[UUID, str]:
    """A letter from ``sender`` received by ``recipient``: its id and the copy's receipt token."""
    with Publisher(participant(settings, sender)) as publisher:
        letter = publisher.publish(
            example_payload("correspondence.letter", 1), recipients=[recipient]
        )
    tokens: list[str | None] = []
    with Consumer(participant(settings, recipient)) as consumer:

        def keep(envelope: Envelope[Any]) -> None:
            if envelope.message_id == letter.message_id:
                tokens.append(consumer.receipt_token(envelope))

        for type_ in default_registry().types():
            consumer.register(type_, keep)
        consumer.drain(timeout=20, until=lambda: bool(tokens))
    (token,) = tokens
    assert token is not None
    return letter.message_id, token


@pytest.mark.parametrize(
    ("type_", "version", "sender", "recipient"),
    ROUTES,
    ids=[f"{t}-v{v}" for t, v, _s, _r in ROUTES],
)
def test_every_message_type_round_trips(
    hub: Settings, type_: str, version: int, sender: str, recipient: str
) -> None:
    """A payload of every type and version arrives at the recipient's handler typed and intact."""
    payload = example_payload(type_, version)
    headers = None
    if type_.startswith("receipt."):
        # A receipt counts only for a message delivered to its sender, with that copy's token.
        original, token = _delivered(hub, recipient, sender)
        payload = payload.model_copy(update={"original_message_id": original})
        headers = {wire.H_RECEIPT_TOKEN: token}
    with Publisher(participant(hub, sender)) as publisher:
        envelope = publisher.build(payload, recipients=[recipient])
        sent = publisher.publish_envelope(envelope, headers=headers)
    received = _receive(hub, recipient, sent.message_id)
    assert type(received.payload) is type(payload)
    assert received.payload == payload
    assert (received.type, received.schema_version, received.sender) == (type_, version, sender)
    assert received == sent


def test_a_v1_consumer_receives_a_v2_cable_adapted(hub: Settings) -> None:
    """Schema evolution end to end: a mission that only knows cable v1 still reads v2 cables."""
    with Publisher(participant(hub, "emb-berlin")) as publisher:
        sent = publisher.publish(example_payload("mission.cable", 2), recipients=["dir-political"])
    assert isinstance(sent.payload, CableV2)
    got: list[Envelope[CableV1]] = []
    with Consumer(participant(hub, "dir-political")) as consumer:
        consumer.handler(CableV1)(got.append)
        consumer.drain(timeout=20, until=lambda: bool(got))
    assert type(got[0].payload) is CableV1
    assert got[0].message_id == sent.message_id
    assert got[0].payload.model_dump() == {
        k: v for k, v in sent.payload.model_dump().items() if k in CableV1.model_fields
    }
