"""Systems at the edge on the real hub: plain pika, `liaison send`, signed messages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from consumers import Consumer
from liaison.data import __file__ as data_init
from liaison.settings import Settings
from liaison.topology import credentials_path
from producers import Publisher
from schemas import wire
from schemas.correspondence import Letter
from schemas.envelope import Envelope
from schemas.examples import example_payload
from schemas.signing import public_key_to_b64
from tests.conftest import Broker
from tests.integration.harness import blocking, depth, running
from tests.integration.sdk_support import hub_vhost, participant

ROOT = Path(__file__).resolve().parents[2]
PLAIN_PIKA = ROOT / "producers" / "examples" / "plain_pika.py"
LETTER = {
    "registry_reference": "MAEE/SG/2025/7",
    "subject": "Invitation",
    "body": "Monsieur le Directeur, ...",
    "addressee": "Monsieur le Directeur des archives",
    "signatory": "Le Secrétaire général",
}


@pytest.fixture(scope="module")
def hub(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A hub vhost with its router running, for the whole module."""
    base: Path = tmp_path_factory.mktemp("sdk-edges")
    with (
        hub_vhost(broker, base) as settings,
        running(settings, "serve", log_path=str(base / "router.log")),
    ):
        yield settings


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    env.update(extra)
    return env


def _collect(settings: Settings, code: str, count: int, timeout: float = 20) -> list[Envelope[Any]]:
    """The letters and notes reaching ``code`` until ``count`` arrived (or the timeout)."""
    got: list[Envelope[Any]] = []
    with Consumer(participant(settings, code)) as consumer:
        for type_ in ("correspondence.letter", "correspondence.note"):
            consumer.register(type_, got.append)
        consumer.drain(timeout=timeout, until=lambda: len(got) >= count)
    return got


def _liaison_send(settings: Settings, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "liaison",
            "send",
            "--credentials",
            str(credentials_path(settings, code)),
            *args,
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TestPlainPika:
    def test_publishes_and_reads_its_inbox_without_the_sdk(self, hub: Settings) -> None:
        """The standalone script's letter is routed; it prints what its inbox held."""
        with Publisher(participant(hub, "gs-archives")) as archives:
            waiting = archives.publish(example_payload("correspondence.note", 1), recipients=["gs"])
        gs = participant(hub, "gs")
        result = subprocess.run(
            [sys.executable, str(PLAIN_PIKA), "--to", "gs-archives", "--wait", "2"],
            env=_env(
                LIAISON_AMQP_URL=gs.amqp_url,
                LIAISON_PARTICIPANT="gs",
                LIAISON_HUB_USER=hub.hub_user,
            ),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        published = lines[0]["published"]
        received = [line["received"] for line in lines[1:]]
        assert [r["message_id"] for r in received] == [str(waiting.message_id)]
        assert received[0]["sender"] == "gs-archives"
        (letter,) = _collect(hub, "gs-archives", 1)
        assert str(letter.message_id) == published
        assert isinstance(letter.payload, Letter)
        assert letter.sender == "gs"

    def test_refuses_a_copy_the_hub_did_not_publish(self, hub: Settings) -> None:
        """A copy without the hub's user_id is not printed: it is given up on through
        liaison.retry (fresh properties, no 406) and reaches hub.dead via the relay."""
        stray = example_payload("correspondence.note", 1)
        body = json.dumps(
            {
                "message_id": str(uuid4()),
                "type": "correspondence.note",
                "schema_version": 1,
                "sender": "gs-legal",
                "recipients": ["emb-paris"],
                "created_at": "2026-11-30T03:00:00Z",
                "payload": stray.model_dump(mode="json"),
            }
        ).encode()
        connection = blocking(hub.amqp_url)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.basic_publish(  # no user_id: as if through a side door
                wire.DELIVER_EXCHANGE, "emb-paris", body, mandatory=True
            )
        finally:
            connection.close()
        paris = participant(hub, "emb-paris")
        result = subprocess.run(
            [sys.executable, str(PLAIN_PIKA), "--to", "gs", "--wait", "2"],
            env=_env(
                LIAISON_AMQP_URL=paris.amqp_url,
                LIAISON_PARTICIPANT="emb-paris",
                LIAISON_HUB_USER=hub.hub_user,
            ),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert [next(iter(line)) for line in lines] == ["published", "refused"]
        found = _dead_letter(hub, json.loads(body)["message_id"])
        assert found is not None
        assert found.headers[wire.H_PARKED_BY] == "emb-paris"
        assert found.headers[wire.H_REASON] == "not_from_hub"
        assert found.user_id == hub.hub_user
        (letter,) = _collect(hub, "gs", 1)
        assert letter.sender == "emb-paris"


def _dead_letter(settings: Settings, message_id: str, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    connection = blocking(settings.amqp_url)
    try:
        channel = connection.channel()
        while time.monotonic() < deadline:
            method, properties, _body = channel.basic_get(wire.DEAD_QUEUE)
            if method is None:
                time.sleep(0.2)
                continue
            channel.basic_ack(method.delivery_tag)
            if properties.message_id == message_id:
                return properties
    finally:
        connection.close()
    return None


def _dead_reason(settings: Settings, message_id: str, timeout: float = 15) -> str | None:
    deadline = time.monotonic() + timeout
    connection = blocking(settings.amqp_url)
    try:
        channel = connection.channel()
        while time.monotonic() < deadline:
            method, properties, _body = channel.basic_get(wire.DEAD_QUEUE)
            if method is None:
                time.sleep(0.2)
                continue
            channel.basic_ack(method.delivery_tag)
            if properties.message_id == message_id:
                return str(properties.headers[wire.H_REASON])
    finally:
        connection.close()
    return None


class TestLiaisonSend:
    def test_from_a_json_file(self, hub: Settings, tmp_path: Path) -> None:
        """A JSON message file is published; the id printed is the one delivered."""
        path = tmp_path / "letter.json"
        message = {"type": "correspondence.letter", "recipients": ["gs-legal"], "payload": LETTER}
        path.write_text(json.dumps(message), encoding="utf-8")
        result = _liaison_send(hub, "gs", "--file", str(path))
        assert result.returncode == 0, result.stderr
        message_id = result.stdout.strip()
        (got,) = _collect(hub, "gs-legal", 1)
        assert str(got.message_id) == message_id
        assert got.payload.subject == "Invitation"

    def test_from_flags(self, hub: Settings) -> None:
        """--type, --to and --field publish a message without a file."""
        result = _liaison_send(
            hub,
            "gs",
            "--type",
            "correspondence.note",
            "--to",
            "gs-treaties",
            "--field",
            "registry_reference=MAEE/SG/2025/8",
            "--field",
            "subject=Note",
            "--field",
            "body=Texte de la note.",
            "--precedence",
            "PRIORITY",
        )
        assert result.returncode == 0, result.stderr
        (got,) = _collect(hub, "gs-treaties", 1)
        assert str(got.message_id) == result.stdout.strip()
        assert got.precedence.value == "PRIORITY"

    def test_an_invalid_file_is_refused_before_anything_is_published(
        self, hub: Settings, tmp_path: Path
    ) -> None:
        """Exit 2 with the field path; the recipient receives nothing, nothing is dead-lettered."""
        path = tmp_path / "bad.json"
        payload = {**LETTER, "subject": ""}
        message = {"type": "correspondence.letter", "recipients": ["cciioe"], "payload": payload}
        path.write_text(json.dumps(message), encoding="utf-8")
        before = depth(hub, wire.DEAD_QUEUE)
        result = _liaison_send(hub, "gs", "--file", str(path))
        assert result.returncode == 2
        assert "payload.subject" in result.stderr
        assert _collect(hub, "cciioe", 1, timeout=2) == []
        assert depth(hub, wire.DEAD_QUEUE) == before


class TestSignatures:
    @pytest.fixture
    def signing_hub(self, broker: Broker, tmp_path: Path) -> Iterator[tuple[Settings, Path]]:
        """A hub whose directory gives gs a public key: gs's messages must be signed."""
        key = Ed25519PrivateKey.generate()
        key_path = tmp_path / "gs.pem"
        key_path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        bundled = (Path(data_init).parent / "directory.toml").read_text(encoding="utf-8")
        line = f'public_key = "{public_key_to_b64(key.public_key())}"'
        directory = tmp_path / "directory.toml"
        directory.write_text(
            re.sub(r'^code = "gs"$', f'code = "gs"\n{line}', bundled, count=1, flags=re.M),
            encoding="utf-8",
        )
        with (
            hub_vhost(broker, tmp_path, directory_path=directory) as settings,
            running(settings, "serve", log_path=str(tmp_path / "router.log")),
        ):
            yield settings, key_path

    def test_sdk_and_plain_pika_signatures_verify_at_the_hub(
        self, signing_hub: tuple[Settings, Path]
    ) -> None:
        """Signed by the SDK or by the plain script: delivered; unsigned: signature_missing."""
        settings, key_path = signing_hub
        letter = example_payload("correspondence.letter", 1)
        with Publisher(participant(settings, "gs", signing_key_path=key_path)) as signed:
            by_sdk = signed.publish(letter, recipients=["gs-archives"])
        gs = participant(settings, "gs")
        result = subprocess.run(
            [sys.executable, str(PLAIN_PIKA), "--to", "gs-archives", "--wait", "0.5"],
            env=_env(
                LIAISON_AMQP_URL=gs.amqp_url,
                LIAISON_PARTICIPANT="gs",
                LIAISON_HUB_USER=settings.hub_user,
                LIAISON_SIGNING_KEY=str(key_path),
            ),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        by_script = json.loads(result.stdout.splitlines()[0])["published"]
        with Publisher(gs) as unsigned:
            refused = unsigned.publish(letter, recipients=["gs-archives"])
        got = _collect(settings, "gs-archives", 2)
        assert {str(e.message_id) for e in got} == {str(by_sdk.message_id), by_script}
        assert _dead_reason(settings, str(refused.message_id)) == "signature_missing"
