"""What the operator's views (status, dashboard, metrics) learn from the procedures database.

The procedures service is optional: when no database is configured and the default
SQLite file does not exist, there is nothing to report (``None``), not an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from liaison.procedures import case_queries, queries
from liaison.procedures.store import Store
from liaison.settings import Settings


@dataclass(frozen=True)
class AckHealth:
    """Awaited acknowledgements at one moment: every one, and those overdue."""

    awaited: tuple[queries.Awaited, ...]
    #: Parliamentary questions not answered, and one line per overdue one.
    questions_open: int = 0
    questions_overdue: tuple[str, ...] = ()
    #: Treaty files by (step, who they wait on).
    treaties: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def overdue(self) -> tuple[queries.Awaited, ...]:
        """Those past their deadline."""
        return tuple(item for item in self.awaited if item.overdue)

    def overdue_lines(self) -> tuple[str, ...]:
        """One line per overdue message: what, from whom, awaited from whom, since when."""
        return tuple(
            f"{item.type} {item.message_id} from {item.sender}: {item.receipt} from "
            f"{', '.join(item.waiting_on)} was due {item.due_at:%Y-%m-%d %H:%M:%S}Z"
            for item in self.overdue
        )


def deployed(settings: Settings) -> bool:
    """Whether this hub has a procedures database to read."""
    if settings.procedures_database_url is not None:
        return True
    return Path(settings.procedures_url.removeprefix("sqlite:///")).exists()


def read_acks(settings: Settings, now: datetime) -> AckHealth | None:
    """The awaited acknowledgements, or ``None`` when there is no procedures database.

    Raises ``LiaisonError`` when a database is configured but cannot be read.
    """
    if not deployed(settings):
        return None
    store = Store.open(settings.procedures_url)
    try:
        with store.reading() as db:
            overdue = case_queries.question_cases(db, now, overdue_only=True)
            return AckHealth(
                tuple(queries.pending(db, now)),
                questions_open=case_queries.question_counts(db, now)[0],
                questions_overdue=tuple(
                    f"question {c.number} ({c.subject[:80]}) assigned to {c.assigned_to} "
                    f"was due {c.deadline}"
                    for c in overdue
                ),
                treaties=case_queries.treaty_counts(db),
            )
    finally:
        store.close()


__all__ = ["AckHealth", "deployed", "read_acks"]
