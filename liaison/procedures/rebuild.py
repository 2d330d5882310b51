"""Rebuild the procedures' state from the audit ledger and compare it with the live database.

The ledger is the source of truth. Walking it in order, every envelope the hub
routed to the procedures service (a ``routed`` record naming it, the envelope
taken from the ``received`` record before it) goes through the same folds into a
scratch database; the service's own escalations in the ledger mark their
deadlines fired, as the sweeper did. Nothing is sent. Every row that differs
from the live database is reported: this is how an operator recovers a lost
database (rebuild into a fresh one) and how an auditor checks the live one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, select

from liaison.core import dedupe
from liaison.ledger.query import iter_records
from liaison.ledger.records import ts_seconds
from liaison.procedures import core, releases, reports
from liaison.procedures import tables as t
from liaison.procedures.store import Store, make_engine
from schemas.communication import ReleasePublished
from schemas.errors import ContractError
from schemas.procedures import ProcedureEscalation
from schemas.registry import Registry

#: Per table, the columns compared (what a fold decides; not when a copy was sent).
COMPARED: Mapping[str, tuple[str, ...]] = {
    "consumed": ("key", "type", "created_at"),
    "registry_counter": ("year", "last"),
    "registry": tuple(c.name for c in t.registry.columns),
    "ack_watch": tuple(c.name for c in t.ack_watch.columns),
    "ack_expected": tuple(c.name for c in t.ack_expected.columns),
    "deadline": tuple(c.name for c in t.deadline.columns),
    "outbox": ("message_id", "source", "routing_key"),
    "treaty_file": tuple(c.name for c in t.treaty_file.columns),
    "question_case": tuple(c.name for c in t.question_case.columns),
    "icc_release": tuple(c.name for c in t.icc_release.columns),
    "committee_meeting": tuple(c.name for c in t.committee_meeting.columns),
    "committee_decision": tuple(c.name for c in t.committee_decision.columns),
    "committee_line": tuple(c.name for c in t.committee_line.columns),
    "committee_entry": tuple(c.name for c in t.committee_entry.columns),
}


@dataclass
class RebuildReport:
    """What the rebuild folded and how it compares with the live database."""

    records: int = 0
    folded: int = 0
    escalations: int = 0
    undecodable: int = 0
    differences: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "records": self.records,
            "folded": self.folded,
            "escalations": self.escalations,
            "undecodable": self.undecodable,
            "differences": self.differences,
            "ok": not self.differences,
        }


def fold_ledger(
    audit_dir: Path, policy: core.Policy, registry: Registry, target: Store
) -> RebuildReport:
    """Fold the ledger's routed envelopes for ``policy.code`` into ``target``."""
    report = RebuildReport()
    # By who sent which bytes under which id (``dedupe.message_of``), not by id alone:
    # another sender's message reusing the id (refused, but recorded with its envelope)
    # may be recorded between a letter's ``received`` and its ``routed``.
    received: dict[str, dict[str, Any]] = {}
    # When the hub first received each message (its first ``received`` record, whole
    # seconds): the live service dates a copy by that, carried on by retries and
    # replays as the copy's ``timestamp`` (``liaison.core.outcomes.arrival``).
    arrived: dict[str, int] = {}
    for record in iter_records(audit_dir):
        report.records += 1
        if record.event == "received" and record.envelope is not None:
            owner = dedupe.message_of(record.dedupe_key)
            received[owner] = record.envelope
            arrived.setdefault(owner, ts_seconds(record.ts))
            continue
        if record.event != "routed":
            continue
        owner = dedupe.message_of(record.dedupe_key)
        data = received.pop(owner, None)
        if data is None:
            continue
        body = json.dumps(data, ensure_ascii=False).encode()
        try:
            envelope = registry.decode(body)
        except ContractError:
            report.undecodable += 1
            continue
        if policy.code in record.recipients:
            # Dated as the live service dated its copy: by the first arrival it carried.
            arrived_at = core.arrived_at_of(arrived.get(owner, ts_seconds(record.ts)))
            envelope = core.dated(envelope, arrived_at, policy.max_clock_skew)
            # The stamp dates only what would be sent, and nothing is.
            target.consume(policy, envelope, stamp=envelope.created_at)
            report.folded += 1
        elif (
            envelope.sender == policy.code
            and isinstance(envelope.payload, ProcedureEscalation)
            and envelope.payload.procedure == reports.REPORT_PROCEDURE
        ):
            report.escalations += _report_fired(target, policy, envelope, envelope.payload)
        elif (
            envelope.sender == policy.code
            and envelope.type in {"procedure.escalation", "procedure.reminder"}
            and target.record_fired(envelope, body, policy.id_namespace)
        ) or (
            envelope.sender == policy.code
            and isinstance(envelope.payload, ReleasePublished)
            and _embargo_fired(target, policy, envelope, envelope.payload)
        ):
            report.escalations += 1
    # The sweeper opens the current month's expected reports; so does the rebuild.
    target.expect_reports(policy, datetime.now(UTC))
    return report


def _report_fired(
    target: Store, policy: core.Policy, envelope: Any, payload: ProcedureEscalation
) -> int:
    for expected in policy.reports:
        deadline_id = reports.subject_of(expected, payload)
        if deadline_id is not None and target.record_report_fired(policy, deadline_id, envelope):
            return 1
    return 0


def _embargo_fired(
    target: Store, policy: core.Policy, envelope: Any, payload: ReleasePublished
) -> bool:
    """The ledger shows an embargoed release published: fire its deadline as the sweeper did."""
    key = core.message_key(payload.author, payload.release_message_id)
    deadline = core.Deadline(
        releases.deadline_id(key), releases.RELEASE_PROCEDURE, key, payload.published_at
    )
    # The sweeper dated the published message with the moment it fired the deadline.
    return target.fire(policy, deadline, stamp=envelope.created_at)


def snapshot(store: Store) -> dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]:
    """Every compared table: primary key → compared columns."""
    result: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = {}
    with store.reading() as db:
        for name, columns in COMPARED.items():
            table: Table = t.metadata.tables[name]
            keys = [c.name for c in table.primary_key.columns]
            rows = db.execute(select(*(table.c[c] for c in columns))).all()
            result[name] = {tuple(row._mapping[k] for k in keys): tuple(row) for row in rows}
    return result


def differences(live: Store, rebuilt: Store) -> list[str]:
    """One line per row that is only on one side or differs."""
    ours, theirs = snapshot(live), snapshot(rebuilt)
    lines: list[str] = []
    for name, columns in COMPARED.items():
        left, right = ours[name], theirs[name]
        for key in sorted(set(left) | set(right), key=repr):
            if key not in right:
                lines.append(f"{name} {_key(key)}: only in the live database")
            elif key not in left:
                lines.append(f"{name} {_key(key)}: only in the ledger's rebuild")
            elif left[key] != right[key]:
                changed = _changed(columns, left[key], right[key])
                lines.append(f"{name} {_key(key)}: {changed}")
    return lines


def _key(key: tuple[Any, ...]) -> str:
    return "/".join(str(part) for part in key)


def _changed(columns: Iterable[str], left: tuple[Any, ...], right: tuple[Any, ...]) -> str:
    return "; ".join(
        f"{column} live={a!r} rebuilt={b!r}"
        for column, a, b in zip(columns, left, right, strict=True)
        if a != b
    )


def rebuild(
    audit_dir: Path,
    policy: core.Policy,
    registry: Registry,
    live: Store,
    *,
    into: str = "sqlite://",
) -> RebuildReport:
    """Fold the ledger into ``into`` (in memory by default) and compare with ``live``."""
    target = Store(make_engine(into))
    try:
        target.migrate()
        report = fold_ledger(audit_dir, policy, registry, target)
        report.differences = differences(live, target)
    finally:
        target.close()
    return report


__all__ = ["COMPARED", "RebuildReport", "differences", "fold_ledger", "rebuild", "snapshot"]
