"""The expected ONA report in the procedures database: escalated once when missing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from liaison.procedures.store import Store
from tests.unit.test_reports import POLICY, report

NOV = datetime(2026, 11, 15, 9, 0, tzinfo=UTC)
DUE = datetime(2026, 12, 10, 23, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.open(database_url, check=False)
    s.migrate()
    yield s
    s.close()


def sweep(store: Store, now: datetime) -> list[str]:
    store.expect_reports(POLICY, now)
    for deadline in store.due(now):
        store.fire(POLICY, deadline, stamp=now)
    return [row.routing_key for row in store.unsent()]


def test_missing_report_is_escalated_once_after_its_day(store: Store) -> None:
    assert sweep(store, NOV) == []
    assert sweep(store, DUE - timedelta(seconds=1)) == []
    assert sweep(store, DUE) == ["procedure.escalation"]
    assert sweep(store, DUE + timedelta(days=3)) == ["procedure.escalation"]


def test_report_in_time_cancels_the_escalation(store: Store) -> None:
    sweep(store, NOV)
    store.consume(POLICY, report(date(2026, 11, 1)), stamp=NOV)
    assert sweep(store, DUE + timedelta(days=1)) == []


def test_report_before_the_month_was_swept_still_counts(store: Store) -> None:
    store.consume(POLICY, report(date(2026, 11, 1)), stamp=NOV)
    assert sweep(store, DUE + timedelta(days=1)) == []


def test_rebuild_marks_the_same_report_deadline_fired(database_url: str, store: Store) -> None:
    """From the escalation alone (as the ledger holds it), the rebuild reaches the live rows."""
    from liaison.procedures import rebuild
    from schemas.catalog import default_registry

    sweep(store, NOV)
    sweep(store, DUE)
    [row] = store.unsent()
    escalation = default_registry().decode(row.body)
    target = Store.open("sqlite://", check=False)
    try:
        target.migrate()
        assert rebuild._report_fired(target, POLICY, escalation, escalation.payload) == 1  # type: ignore[arg-type]
        target.expect_reports(POLICY, DUE)
        store.expect_reports(POLICY, DUE)
        assert rebuild.differences(store, target) == []
    finally:
        target.close()
