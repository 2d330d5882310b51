"""A treaty file and what the treaty fold reads and returns: plain frozen values.

Factored out of :mod:`liaison.procedures.treaties` (the fold) so that the store,
the CLI and the views can use the file without the fold's rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from liaison.procedures.calendar import Duration
from liaison.procedures.core import NAMESPACE, Deadline, Outgoing
from schemas.treaties import TreatyStep

TREATY_PROCEDURE = "treaty"
FIRST = TreatyStep.SUBMITTED
LAST = TreatyStep.ENTERED_INTO_FORCE


@dataclass(frozen=True)
class Roles:
    """Who is who in the procedure: participant codes from the directory."""

    treaties: str = "gs-treaties"
    government_council: str = "council"
    council_of_state: str = "council-of-state"
    chamber: str = "chamber"
    palace: str = "palace"
    journal: str = "scl"

    def actor(self, step: TreatyStep) -> str:
        """The institution that takes ``step``."""
        return {
            TreatyStep.APPROVED_BY_GOVERNMENT_COUNCIL: self.government_council,
            TreatyStep.COUNCIL_OF_STATE_OPINION: self.council_of_state,
            TreatyStep.APPROVED_BY_CHAMBER: self.chamber,
            TreatyStep.SECOND_VOTE_DISPENSED: self.council_of_state,
            TreatyStep.SECOND_VOTE_HELD: self.chamber,
            TreatyStep.PROMULGATED: self.palace,
            TreatyStep.PUBLISHED_IN_JOURNAL_OFFICIEL: self.journal,
        }.get(step, self.treaties)


@dataclass(frozen=True)
class Expectation:
    """Once a file reaches ``after``, the next step is expected ``within``; the party
    waited on is reminded ``remind_after`` reaching it (when set)."""

    after: TreatyStep
    within: Duration
    escalate_to: tuple[str, ...] = ()
    remind_after: Duration | None = None


@dataclass(frozen=True)
class TreatyPolicy:
    """What the treaty fold reads besides the file."""

    code: str
    #: Namespace of the ids derived for what it sends (``core.Policy.id_namespace``).
    id_namespace: UUID = NAMESPACE
    roles: Roles = Roles()
    expectations: tuple[Expectation, ...] = ()

    def expectation(self, after: TreatyStep) -> Expectation | None:
        """The configured expectation once a file is at ``after``, if any."""
        return next((e for e in self.expectations if e.after is after), None)


@dataclass(frozen=True)
class Contribution:
    """One item the bill needs from one participant."""

    item: str
    from_code: str
    requested_at: datetime
    due_at: datetime
    given_at: datetime | None = None
    waived_by: str | None = None
    waiver_reason: str | None = None

    @property
    def outstanding(self) -> bool:
        """Neither given nor waived."""
        return self.given_at is None and self.waived_by is None


@dataclass(frozen=True)
class Entry:
    """One line of a file's timeline: a message, what it did, and whether it applied."""

    at: datetime
    sender: str
    message_id: str
    type: str
    what: str
    applied: bool = True


@dataclass(frozen=True)
class TreatyFile:
    """A treaty's file: where it stands, what it waits for, and its history."""

    reference: str
    title: str
    opened_at: datetime
    step: TreatyStep | None  # None: signed, not yet submitted
    since: datetime
    contributions: tuple[Contribution, ...] = ()
    timeline: tuple[Entry, ...] = ()
    anomalies: int = 0
    #: The day (in Luxembourg) of the Chamber's first vote, once the file is past it;
    #: None on files stored before it was kept (their ``since`` dates the first vote).
    first_vote_on: date | None = None

    @property
    def missing(self) -> tuple[Contribution, ...]:
        """Contributions neither given nor waived."""
        return tuple(c for c in self.contributions if c.outstanding)

    def waiting_on(self, roles: Roles) -> tuple[str, ...]:
        """Who must act next: the missing contributors, else the next step's institution."""
        if self.step is LAST:
            return ()
        if self.step is None and self.missing:
            return tuple(dict.fromkeys(c.from_code for c in self.missing))
        return tuple(dict.fromkeys(roles.actor(s) for s in next_steps(self.step)))


@dataclass(frozen=True)
class TreatyEffects:
    """What one message does to a file; the shell applies it in one transaction."""

    file: TreatyFile | None = None
    deadlines: tuple[Deadline, ...] = ()
    cancel: tuple[str, ...] = ()
    messages: tuple[Outgoing, ...] = ()


def next_steps(step: TreatyStep | None) -> tuple[TreatyStep, ...]:
    """The steps a file at ``step`` may take next (two after the Chamber's first vote)."""
    rank = -1 if step is None else step.rank
    return tuple(s for s in TreatyStep if s.rank == rank + 1)


#: Appended to a step's deadline id for the reminder before it.
REMINDER_SUFFIX = ":reminder"


def contribution_deadline(reference: str, contribution: Contribution) -> str:
    """The id of the deadline that chases one contribution."""
    return f"treaty:{reference}:contribution:{contribution.from_code}:{contribution.item}"


def step_deadline(reference: str, step: TreatyStep | None) -> str:
    """The id of the deadline that chases the step after ``step``."""
    return f"treaty:{reference}:after:{'signature' if step is None else step.value}"


__all__ = [
    "FIRST",
    "LAST",
    "REMINDER_SUFFIX",
    "TREATY_PROCEDURE",
    "Contribution",
    "Entry",
    "Expectation",
    "Roles",
    "TreatyEffects",
    "TreatyFile",
    "TreatyPolicy",
    "contribution_deadline",
    "next_steps",
    "step_deadline",
]
