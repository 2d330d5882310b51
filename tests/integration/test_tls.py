"""TLS for real: a RabbitMQ node of the test's own that speaks only TLS and demands client certificates.

The test generates a throwaway CA, a server certificate for ``localhost`` and client
certificates (``tests/tls_certs.py``), and starts a node (``tests/rabbit_nodes.py``)
with an ``amqps`` listener (``verify_peer``, ``fail_if_no_peer_cert``) and its
management API over HTTPS; plain AMQP is off. The hub's CLI (topology over HTTPS and
``amqps``), router, audit writer and the SDK then carry a message end to end. The
refusals: no client certificate, one from another CA, an expired one, and a host
name the server certificate does not carry; each must fail quickly with an error
that names the cause.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from consumers import Consumer
from consumers.errors import ConsumeError
from liaison.adapters.connections import blocking_connection
from liaison.adapters.management import Management
from liaison.settings import Settings, TlsSettings
from liaison.topology import credentials_path
from producers import ParticipantSettings, Publisher
from producers.errors import PublishError
from producers.settings import TlsOptions
from schemas import wire
from schemas.correspondence import Letter
from schemas.envelope import Envelope
from tests import rabbit_nodes, tls_certs
from tests.conftest import missing_requirement
from tests.integration.harness import env_for, running, wait_for


@dataclass(frozen=True)
class TlsNode:
    """The TLS node and the certificates around it."""

    node: rabbit_nodes.Node
    certs: tls_certs.TlsMaterial


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsNode]:
    """One TLS-only RabbitMQ node for the module, killed and removed afterwards."""
    why = rabbit_nodes.missing()
    if why is not None:
        missing_requirement(f"extra RabbitMQ nodes cannot start here: {why}")
    certs = tls_certs.generate(tmp_path_factory.mktemp("tls") / "certs")
    with rabbit_nodes.node_base("tls") as base:
        node = rabbit_nodes.new_node(
            base, f"tls{os.getpid()}", 1, tls=(certs.ca, certs.server.cert, certs.server.key)
        )
        with rabbit_nodes.running([node]):
            node.wait_management()
            yield TlsNode(node, certs)


def hub_settings(
    tls: TlsNode, base: Path, *, host: str = "localhost", **tls_changes: object
) -> Settings:
    """The hub's settings for the TLS node: ``amqps://`` and ``https://``, the good client certificate."""
    certs = tls.certs
    material = TlsSettings(
        ca_file=certs.ca, cert_file=certs.client.cert, key_file=certs.client.key
    ).model_copy(update=tls_changes)
    return Settings(
        amqp_url=f"amqps://guest:guest@{host}:{tls.node.amqp_port}/liaison-tls",
        management_url=f"https://{host}:{tls.node.management_port}",
        tls=material,
        credentials_dir=base / "credentials",
        audit_dir=base / "audit",
        hub_key_path=base / "hub.key",
        http_port=0,
        log_json=True,
    )


def tls_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for a subprocess with these settings, TLS files included."""
    env = env_for(settings, **extra)
    for name in ("ca_file", "cert_file", "key_file"):
        value = getattr(settings.tls, name)
        env.pop(f"LIAISON_TLS_{name.upper()}", None)
        if value is not None:
            env[f"LIAISON_TLS_{name.upper()}"] = str(value)
    env["LIAISON_TLS_VERIFY_HOSTNAME"] = str(settings.tls.verify_hostname).lower()
    return env


def liaison(
    settings: Settings, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m liaison ARGS`` with ``settings``; its result."""
    return subprocess.run(
        [sys.executable, "-m", "liaison", *args],
        env=tls_env(settings, LIAISON_LOG_LEVEL="warning"),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ingress_consumers(settings: Settings) -> int:
    """Consumers on hub.ingress, asked over amqps:// with the hub's certificate."""
    connection = blocking_connection(settings, name="tls-test")
    try:
        frame = connection.channel().queue_declare(wire.INGRESS_QUEUE, passive=True)
        return int(frame.method.consumer_count)
    finally:
        connection.close()


def sdk(settings: Settings, code: str) -> ParticipantSettings:
    """Participant ``code``'s SDK settings from its credentials file, with the TLS files."""
    found = ParticipantSettings.from_credentials(credentials_path(settings, code), environ={})
    return found.with_changes(
        tls=TlsOptions(
            ca_file=settings.tls.ca_file,
            cert_file=settings.tls.cert_file,
            key_file=settings.tls.key_file,
        )
    )


@pytest.mark.timeout(600)
def test_cli_router_writer_and_sdk_work_end_to_end_over_amqps(
    tls_node: TlsNode, tmp_path: Path
) -> None:
    """Over amqps:// with client certificates: topology applied (HTTPS management), a letter routed, consumed with the SDK, audited, status read."""
    settings = hub_settings(tls_node, tmp_path)
    with Management(settings) as api:
        api.put_vhost(settings.vhost)
        api.put_permissions(settings.vhost, "guest", configure=".*", write=".*", read=".*")
    applied = liaison(settings, "topology", "apply")
    assert applied.returncode == 0, applied.stderr[-3000:]
    assert "amqps://" in credentials_path(settings, "gs").read_text()

    with (
        running(
            settings,
            "serve",
            wait_queue=None,  # the harness's own check speaks plain AMQP: see below
            log_path=str(tmp_path / "router.log"),
            env=tls_env(settings),
        ),
        running(
            settings,
            "audit",
            "run",
            wait_queue=None,
            log_path=str(tmp_path / "writer.log"),
            env=tls_env(settings),
        ),
    ):
        wait_for(lambda: ingress_consumers(settings) > 0, timeout=60, what="the router to consume")
        letter = Letter(
            registry_reference="TLS/2026/1",
            subject="Over TLS",
            body="Carried over amqps:// with client certificates.",
            addressee="Service des archives",
            signatory="Le Secrétaire général",
        )
        with Publisher(sdk(settings, "gs")) as publisher:
            sent = publisher.publish(letter, recipients=["gs-archives"])
        got: list[Envelope[Letter]] = []
        with Consumer(sdk(settings, "gs-archives")) as consumer:
            consumer.register("correspondence.letter", got.append)
            consumer.drain(timeout=30, until=lambda: bool(got))
        assert [e.message_id for e in got] == [sent.message_id]

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            shown = liaison(settings, "audit", "show", str(sent.message_id))
            if "delivered" in shown.stdout:
                break
            time.sleep(1)
        assert "delivered" in shown.stdout, shown.stdout + shown.stderr

        status = liaison(settings, "status", "--json")
        assert status.returncode in (0, 2), status.stderr[-2000:]  # 2: a threshold, not TLS
        assert '"source": "management"' in status.stdout

    verify = liaison(settings, "audit", "verify", str(settings.audit_dir))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.startswith("OK")


REFUSALS = {
    # case: (host, TLS changes, words the error must contain)
    "no-client-certificate": (
        "localhost",
        {"cert_file": None, "key_file": None},
        "requires a client certificate and none is configured",
    ),
    "certificate-from-another-ca": (
        "localhost",
        {"foreign": True},
        "did not accept our client certificate",
    ),
    "expired-certificate": ("localhost", {"expired": True}, "client certificate has expired"),
    "host-name-mismatch": ("127.0.0.1", {}, "host name mismatch"),
}


def _refused_settings(tls: TlsNode, base: Path, case: str) -> Settings:
    host, changes, _words = REFUSALS[case]
    certs = tls.certs
    update: dict[str, object] = dict(changes)
    if update.pop("foreign", False):
        update.update(cert_file=certs.foreign_client.cert, key_file=certs.foreign_client.key)
    if update.pop("expired", False):
        update.update(cert_file=certs.expired_client.cert, key_file=certs.expired_client.key)
    return hub_settings(tls, base, host=host, **update)


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_cli_refusal_names_the_cause_quickly(tls_node: TlsNode, tmp_path: Path, case: str) -> None:
    """`liaison dlq list` over a refused TLS connection exits 1 within seconds, naming the cause."""
    settings = _refused_settings(tls_node, tmp_path, case)
    started = time.monotonic()
    result = liaison(settings, "dlq", "list", timeout=60)
    took = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    assert "TLS" in result.stderr and REFUSALS[case][2] in result.stderr, result.stderr
    assert took < 30, f"took {took:.1f} s"


@pytest.mark.parametrize("command", [("serve",), ("audit", "run")], ids=["router", "audit-writer"])
@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_hub_process_refusal_stops_with_the_cause(
    tls_node: TlsNode, tmp_path: Path, case: str, command: tuple[str, ...]
) -> None:
    """`liaison serve` and `liaison audit run` refused at start exit 1 naming the cause instead of retrying for ever."""
    settings = _refused_settings(tls_node, tmp_path, case)
    result = liaison(settings, *command, timeout=60)
    assert result.returncode == 1, result.stderr[-2000:]
    assert REFUSALS[case][2] in result.stderr, result.stderr[-2000:]


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_sdk_refusal_names_the_cause(tls_node: TlsNode, tmp_path: Path, case: str) -> None:
    """The SDK publisher refused by TLS raises PublishError naming the cause, within seconds."""
    settings = _refused_settings(tls_node, tmp_path, case)
    url = settings.amqp_url
    participant = ParticipantSettings(
        code="gs",
        amqp_url=url,
        tls=TlsOptions(
            ca_file=settings.tls.ca_file,
            cert_file=settings.tls.cert_file,
            key_file=settings.tls.key_file,
        ),
    )
    letter = Letter(
        registry_reference="TLS/2026/2",
        subject="Refused",
        body="Never sent.",
        addressee="Service des archives",
        signatory="Le Secrétaire général",
    )
    started = time.monotonic()
    with pytest.raises(PublishError) as caught, Publisher(participant, max_retries=1) as publisher:
        publisher.publish(letter, recipients=["gs-archives"])
    assert REFUSALS[case][2] in str(caught.value), str(caught.value)
    assert caught.value.cause == "tls"
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_sdk_consumer_refusal_names_the_cause(tls_node: TlsNode, tmp_path: Path, case: str) -> None:
    """The SDK consumer refused by TLS raises ConsumeError naming the cause instead of reconnecting for ever."""
    settings = _refused_settings(tls_node, tmp_path, case)
    participant = ParticipantSettings(
        code="gs-archives",
        amqp_url=settings.amqp_url,
        hub_user=settings.hub_user,
        tls=TlsOptions(
            ca_file=settings.tls.ca_file,
            cert_file=settings.tls.cert_file,
            key_file=settings.tls.key_file,
        ),
    )
    started = time.monotonic()
    with pytest.raises(ConsumeError) as caught, Consumer(participant) as consumer:
        consumer.drain(timeout=30)
    assert REFUSALS[case][2] in str(caught.value), str(caught.value)
    assert time.monotonic() - started < 30
