"""Fixtures shared by every test: the broker harness and paths to shared data.

The broker, in order of preference:

1. ``LIAISON_TEST_AMQP_URL`` (and ``LIAISON_TEST_MANAGEMENT_URL``, default
   ``http://<host>:15672``) when set;
2. the local broker on localhost:5672 when it answers;
3. testcontainers' RabbitMQ (3.13 with management) when Docker is available;
4. otherwise broker tests fail with a message saying what is missing: a run that
   skips them proves nothing. ``LIAISON_TEST_ALLOW_SKIP=1`` turns those failures
   (and those of the browser and ``../shared`` fixtures) into skips, for a machine
   that knowingly lacks them.

Each test gets its own vhost and its own user-name prefix, both removed after it,
so tests never see each other's messages or users.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

from liaison.adapters.management import Management
from liaison.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--long``: the long variants of the reliability suite (as ``LIAISON_PROOF_LONG=1``)."""
    parser.addoption("--long", action="store_true", help="run the long (slow) proof variants")


def long_mode(config: pytest.Config) -> bool:
    """Whether the long variants run: ``--long`` or ``LIAISON_PROOF_LONG=1``."""
    return bool(config.getoption("--long")) or os.environ.get("LIAISON_PROOF_LONG") == "1"


def pytest_configure(config: pytest.Config) -> None:
    """Long mode also reaches modules that read it at import time (hypothesis budgets)."""
    if long_mode(config):
        os.environ["LIAISON_PROOF_LONG"] = "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/integration carries ``integration``; ``slow`` needs long mode.

    Long variants are deselected (not skipped) outside long mode: their short twins
    run in every mode, and a skip in CI would read as a test that did not run.
    """
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        if "integration" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.integration)
        if "slow" in item.keywords and not long_mode(config):
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@dataclass(frozen=True)
class Broker:
    """Where the test broker is: an AMQP URL without vhost, and its management API."""

    amqp_root: str  # amqp://user:pass@host:port
    management_url: str

    def url(self, vhost: str) -> str:
        """The AMQP URL of ``vhost`` on this broker."""
        return f"{self.amqp_root}/{quote(vhost, safe='')}"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


#: The one opt-out: set to 1, a missing broker, browser or ``../shared`` skips instead of failing.
ALLOW_SKIP = "LIAISON_TEST_ALLOW_SKIP"


def missing_requirement(message: str) -> NoReturn:
    """Fail the test because something it needs is absent; skip only when opted out.

    A skip reads as "nothing wrong" in a summary line, and a suite whose broker
    tests all skipped proves nothing, so skipping must be asked for explicitly.
    """
    if os.environ.get(ALLOW_SKIP) == "1":
        pytest.skip(message)
    pytest.fail(f"{message} (set {ALLOW_SKIP}=1 to skip such tests instead)", pytrace=False)


def _unavailable(reason: str) -> NoReturn:
    missing_requirement(f"no RabbitMQ for broker tests: {reason}")


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """The broker that integration tests use (see the module docstring for the order)."""
    url = os.environ.get("LIAISON_TEST_AMQP_URL")
    if url:
        parts = urlsplit(url)
        root = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        mgmt = os.environ.get(
            "LIAISON_TEST_MANAGEMENT_URL", f"http://{parts.hostname or 'localhost'}:15672"
        )
        yield Broker(root, mgmt)
        return
    if _answers("localhost", 5672):
        yield Broker(
            "amqp://guest:guest@localhost:5672",
            os.environ.get("LIAISON_TEST_MANAGEMENT_URL", "http://localhost:15672"),
        )
        return
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception as exc:  # any failure means "no Docker here"
        _unavailable(f"LIAISON_TEST_AMQP_URL unset, localhost:5672 closed, Docker: {exc}")
    from testcontainers.rabbitmq import RabbitMqContainer

    with RabbitMqContainer("rabbitmq:3.13-management").with_exposed_ports(15672) as container:
        host = container.get_container_host_ip()
        amqp = f"amqp://guest:guest@{host}:{container.get_exposed_port(5672)}"
        yield Broker(amqp, f"http://{host}:{container.get_exposed_port(15672)}")


@contextmanager
def scratch_vhost(
    broker: Broker, base: Path, *, prefix: str = "t", **changes: Any
) -> Iterator[Settings]:
    """Hub settings on a fresh vhost with a fresh user prefix; both removed afterwards."""
    tag = uuid.uuid4().hex[:10]
    vhost = f"liaison-test-{tag}"
    result = Settings(
        amqp_url=broker.url(vhost),
        management_url=broker.management_url,
        user_prefix=f"{prefix}{tag}-",
        credentials_dir=base / "credentials",
        audit_dir=base / "audit",
        hub_key_path=base / "hub.key",
        http_port=0,
        log_json=True,
        **changes,
    )
    with Management(result) as api:
        if not api.available():
            _unavailable(
                f"management API at {broker.management_url} does not answer "
                "(rabbitmq-plugins enable rabbitmq_management)"
            )
        api.put_vhost(vhost)
        user = result.hub_user
        api.put_permissions(vhost, user, configure=".*", write=".*", read=".*")
        try:
            yield result
        finally:
            api.delete_vhost(vhost)
            for record in api.list_users():
                if record["name"].startswith(result.user_prefix):
                    api.delete_user(record["name"])


@pytest.fixture
def settings(broker: Broker, tmp_path: Path) -> Iterator[Settings]:
    """Hub settings on a fresh vhost with a fresh user prefix; both removed afterwards."""
    with scratch_vhost(broker, tmp_path) as result:
        yield result


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the project; tests that need it fail without it (see ALLOW_SKIP)."""
    if not SHARED.is_dir():
        missing_requirement(f"{SHARED} is not beside this checkout")
    return SHARED


#: The PostgreSQL server of this machine (trust auth); LIAISON_TEST_POSTGRES_URL overrides it.
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema, as a URL whose search_path is that schema; dropped after.

    When the server is missing the test fails (skips only with the opt-out variable).
    """
    import sqlalchemy

    base = os.environ.get("LIAISON_TEST_POSTGRES_URL", POSTGRES_URL)
    schema = f"proc_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(base)
    try:
        with engine.begin() as db:
            db.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except sqlalchemy.exc.OperationalError as exc:
        engine.dispose()
        missing_requirement(f"no PostgreSQL for the procedures tests at {base}: {exc}")
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as db:
            db.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The procedures database on each backend: a SQLite file, and a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'procedures.sqlite3'}"
        return
    with postgres_schema() as url:
        yield url
