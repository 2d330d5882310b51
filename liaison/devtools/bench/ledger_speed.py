"""How fast the ledger is on this machine: durable appends, recovery, verification.

The events imitate the hub's traffic: per message, ``received`` with the full
envelope (about 1 KB), then ``routed`` and ``delivered`` without it. Building
the events is not timed; everything the ledger does with them is, fsyncs
included.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liaison.core.events import AuditEvent, EventKind, make_event
from liaison.ledger.segments import list_segments
from liaison.ledger.store import Ledger
from liaison.ledger.verify import verify_directory

_KINDS = (EventKind.RECEIVED, EventKind.ROUTED, EventKind.DELIVERED)


def sample_events(n: int, *, first: int = 0) -> list[AuditEvent]:
    """``n`` events about ``n / 3`` messages, one in three carrying its envelope."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    events = []
    for i in range(first, first + n):
        message_id = str(UUID(int=i // 3))
        at = start + timedelta(milliseconds=i)
        envelope: dict[str, Any] | None = None
        if i % 3 == 0:
            envelope = {
                "message_id": message_id,
                "type": "correspondence.letter",
                "schema_version": 1,
                "sender": "MAEE",
                "recipients": ["CHAMBRE", "GOUV"],
                "created_at": at.isoformat(),
                "classification": "INTERNAL",
                "precedence": "ROUTINE",
                "payload": {
                    "subject": "Transmission du projet de loi portant approbation du traité",
                    "registry_ref": f"MAEE/2025/{i:06d}",
                    "body": "Monsieur le Président, " + "texte de la lettre " * 40,
                },
            }
        events.append(
            make_event(
                _KINDS[i % 3],
                message_id,
                at=at,
                type="correspondence.letter",
                sender="MAEE",
                recipients=("CHAMBRE", "GOUV"),
                envelope=envelope,
            )
        )
    return events


def bench_audit(tmp_dir: Path, n: int = 100_000, *, batch: int = 500) -> dict[str, Any]:
    """Append ``n`` events in fsynced batches of ``batch`` under ``tmp_dir``, reopen, verify."""
    directory = tmp_dir / "audit-bench"
    key = Ed25519PrivateKey.generate()
    events = sample_events(n)

    started = time.perf_counter()
    with Ledger.open(directory, key=key) as ledger:
        for i in range(0, n, batch):
            ledger.append(events[i : i + batch])
            if (i // batch) % 20 == 19:
                ledger.checkpoint()
        ledger.checkpoint()
    append_s = time.perf_counter() - started

    started = time.perf_counter()
    Ledger.open(directory, key=key).close()
    open_s = time.perf_counter() - started

    result = verify_directory(directory, key.public_key())
    if not result.ok:
        raise AssertionError(f"benchmark ledger failed verification: {result.failure}")
    size = sum(p.stat().st_size for p in list_segments(directory))
    return {
        "records": n,
        "batch": batch,
        "bytes_per_record": round(size / n),
        "append_per_s": round(n / append_s),
        "recover_per_s": round(n / open_s),
        "verify_per_s": round(result.rate),
        "checkpoints": result.checkpoints,
    }


#: Records after the last checkpoint in a start-up ledger: what a writer stopped
#: between two checkpoints leaves (``checkpoint_every`` is 1,000 by default).
STARTUP_TAIL = 1_000


def build_ledger(directory: Path, records: int, key: Ed25519PrivateKey) -> None:
    """A ledger of ``records`` sample records, signed up to ``records - STARTUP_TAIL``."""
    signed = max(0, records - STARTUP_TAIL)
    chunk = 50_000
    with Ledger.open(directory, key=key) as ledger:
        done = ledger.size
        while done < records:
            stop = signed if done < signed else records
            count = min(chunk, stop - done)
            ledger.append(sample_events(count, first=done), sync=False)
            ledger.flush()
            done += count
            if done <= signed and (done % 1_000_000 < chunk or done == signed):
                ledger.checkpoint()
