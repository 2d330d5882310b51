"""``liaison bench procedures``: letters registered per second, beside the router's rate.

On a scratch vhost: N letters are loaded into ingress, the router routes them (its
rate: how fast the recipient's inbox fills), which also fills the procedures
service's inbox with N copies; then ``liaison procedures run`` registers them on a
fresh database (its rate: how fast the register grows, timed from the first number to
the last; each registration is one transaction, an outbox row and a confirmed
receipt publish). Once on SQLite, once on PostgreSQL when a server answers (a scratch
schema, dropped after). Same run, same broker: the ratio is what matters.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy
from sqlalchemy import func, select

from liaison.adapters.connections import connection_parameters
from liaison.adapters.pipelined import publish_pipelined
from liaison.credentials import participant_url
from liaison.devtools.bench.hub import SENDER, _body, _props
from liaison.devtools.bench.load import purge, scratch_vhost, stop_process, watch_drain
from liaison.errors import BrokerError
from liaison.procedures import tables as t
from liaison.procedures.store import Store
from liaison.settings import Settings
from schemas import wire

RECIPIENT = "gs-archives"
PROCEDURES = "gs-procedures"


@dataclass(frozen=True)
class ProceduresBench:
    """The figures of one run (the ``--json`` object); ``None`` where a database was absent."""

    messages: int
    router_msgs_per_s: float
    sqlite_letters_per_s: float
    postgresql_letters_per_s: float | None
    postgresql_note: str

    def as_dict(self) -> dict[str, object]:
        """Plain data for JSON."""
        return asdict(self)


@contextmanager
def _postgres_schema(url: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as db:
            db.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        separator = "&" if "?" in url else "?"
        yield f"{url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as db:
            db.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        engine.dispose()


def _env(settings: Settings) -> dict[str, str]:
    """The environment of a hub process (router, procedures service) under measurement."""
    return {
        **os.environ,
        "LIAISON_AMQP_URL": settings.amqp_url,
        "LIAISON_MANAGEMENT_URL": settings.management_url,
        "LIAISON_USER_PREFIX": settings.user_prefix,
        "LIAISON_HUB_KEY_PATH": str(settings.hub_key_path),
        "LIAISON_LOG_LEVEL": "warning",
        "LIAISON_HTTP_PORT": "0",
    }


def _route(bench: Settings, bodies: list[bytes]) -> float:
    """Load ingress, run the router until the recipient's inbox has them all; its rate."""
    publish_pipelined(
        connection_parameters(bench, participant_url(bench, SENDER)),
        wire.INGRESS_EXCHANGE,
        [("correspondence.letter", b, _props(bench.user_for(SENDER))) for b in bodies],
    )
    router = subprocess.Popen([sys.executable, "-m", "liaison", "serve"], env=_env(bench))
    try:
        rate = watch_drain(connection_parameters(bench), wire.inbox_queue(RECIPIENT), len(bodies))
        watch_drain(connection_parameters(bench), wire.inbox_queue(PROCEDURES), len(bodies))
    finally:
        stop_process(router)
    purge(connection_parameters(bench), wire.inbox_queue(RECIPIENT))
    return rate


def _register(bench: Settings, url: str, expected: int, timeout: float = 600.0) -> float:
    """Run the procedures service on ``url`` until ``expected`` letters are registered."""
    store = Store.open(url, check=False)
    store.migrate()
    env = {
        **_env(bench),
        "LIAISON_PROCEDURES_DATABASE_URL": url,
        "LIAISON_CREDENTIALS_DIR": str(bench.credentials_dir),
    }
    service = subprocess.Popen([sys.executable, "-m", "liaison", "procedures", "run"], env=env)
    try:
        first_at: float | None = None
        first = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if service.poll() is not None:
                raise BrokerError(f"the procedures service exited with {service.returncode}")
            with store.reading() as db:
                count = int(db.execute(select(func.count()).select_from(t.registry)).scalar_one())
            now = time.perf_counter()
            if first_at is None and count > 0:
                first_at, first = now, count
            if count >= expected:
                assert first_at is not None
                elapsed = now - first_at
                return float("inf") if elapsed == 0 else (expected - first) / elapsed
            time.sleep(0.05)
        raise TimeoutError(f"only {count} of {expected} letters registered")
    finally:
        stop_process(service)
        store.close()


def run_procedures_bench(
    settings: Settings, *, messages: int, payload_bytes: int, postgres_url: str | None
) -> ProceduresBench:
    """Router rate, then letters registered per second on SQLite and PostgreSQL."""
    bodies = [_body(payload_bytes, n) for n in range(messages)]
    with scratch_vhost(settings, "procedures") as bench, tempfile.TemporaryDirectory() as tmp:
        router_rate = _route(bench, bodies)
        sqlite_rate = _register(bench, f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", messages)
        pg_rate: float | None = None
        note = ""
        if postgres_url:
            try:
                with _postgres_schema(postgres_url) as url:
                    _route(bench, [_body(payload_bytes, n) for n in range(messages)])
                    pg_rate = _register(bench, url, messages)
            except sqlalchemy.exc.OperationalError as exc:
                note = f"PostgreSQL not reachable: {str(exc).splitlines()[0]}"
        else:
            note = "no --postgres-url given"
    return ProceduresBench(
        messages=messages,
        router_msgs_per_s=round(router_rate, 1),
        sqlite_letters_per_s=round(sqlite_rate, 1),
        postgresql_letters_per_s=None if pg_rate is None else round(pg_rate, 1),
        postgresql_note=note,
    )


__all__ = ["ProceduresBench", "run_procedures_bench"]
