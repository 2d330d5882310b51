"""Treaty files as a pure fold: (the file, one envelope) → the file after it, and notices.

The Ministry's words: the treaties service opens a file when a treaty is signed,
gathers from the ministries and authorities what the bill of approval needs,
submits it to the Government Council, and follows it through the Chamber, the
Council of State, the Palace and the Journal officiel to the deposit of the
instrument and the entry into force. The hub's words: each step is a
:class:`~schemas.treaties.TreatyStep`; a message may move a file exactly one rank
forward, and only from the institution that takes that step (or from the
treaties service, which may declare any). Anything else is an *anomaly*: kept on
the file's timeline, not applied, and told to the treaties service with the
reason (``procedure.anomaly``).

Who moves a file, and with what:

- ``treaty.file_opened`` (treaties service): the file, at signature;
- ``treaty.contributions_requested`` / ``contribution_given`` / ``contribution_waived``:
  what the bill needs; submission waits until each is given or waived;
- ``council.decision`` v2 with ``treaty_reference`` (Government Council): approved;
- ``chamber.vote`` v2 with ``treaty_reference`` (Chamber): adopted is the first vote,
  or, when the file is past it (the Council of State refused to dispense), the
  second vote held: at least three months after the first (art. 78(4) of the
  Constitution), or an anomaly;
- ``palace.promulgation`` v2 with ``treaty_reference`` (Palace): promulgated;
- ``treaty.stage_reached`` v2: the Council of State for its opinion and the
  dispensation, the Journal officiel's publisher for the publication, the treaties
  service for any step.

No clock is read: "now" is the message's ``created_at``.

Bounded: a file's timeline keeps at most :data:`MAX_OUTCOMES` deferrals and
rejected votes and :data:`MAX_APPLIED_LINES` applied lines (past either, a line
that would not move the file is refused as an anomaly; the moves themselves, at
most one per step, always go on), and the newest :data:`MAX_ANOMALIES_KEPT`
anomalies: fewer than ``MAX_APPLIED_LINES + len(TreatyStep) + MAX_ANOMALIES_KEPT``
lines.
"""

from __future__ import annotations

import calendar
from dataclasses import replace
from datetime import date, datetime
from uuid import uuid5

from liaison.procedures.calendar import local_date
from liaison.procedures.core import Deadline, Outgoing
from liaison.procedures.questions import end_of_day
from liaison.procedures.treaty_chase import escalate_treaty
from liaison.procedures.treaty_file import (
    FIRST,
    LAST,
    REMINDER_SUFFIX,
    TREATY_PROCEDURE,
    Contribution,
    Entry,
    Expectation,
    Roles,
    TreatyEffects,
    TreatyFile,
    TreatyPolicy,
    contribution_deadline,
    next_steps,
    step_deadline,
)
from schemas.chamber import ChamberVoteV2, VoteOutcome
from schemas.council import CouncilDecisionV2, Decision
from schemas.envelope import Envelope, new_envelope
from schemas.palace import PromulgationV2
from schemas.procedures import ProcedureAnomaly
from schemas.treaties import (
    TreatyContributionGiven,
    TreatyContributionsRequested,
    TreatyContributionWaived,
    TreatyFileOpened,
    TreatyStageReached,
    TreatyStageReachedV2,
    TreatyStep,
)
from schemas.types import Payload


def reference_of(payload: Payload) -> str | None:
    """The treaty file a message concerns, or None when it concerns none."""
    if isinstance(payload, CouncilDecisionV2 | ChamberVoteV2 | PromulgationV2):
        return payload.treaty_reference
    if isinstance(
        payload,
        TreatyFileOpened
        | TreatyStageReached
        | TreatyContributionsRequested
        | TreatyContributionGiven
        | TreatyContributionWaived,
    ):
        return payload.treaty_reference
    return None


#: Refused messages kept on a file's timeline (the newest); ``anomalies`` counts them all.
MAX_ANOMALIES_KEPT = 50
#: Government Council deferrals and rejected Chamber votes a file's timeline takes.
MAX_OUTCOMES = 50
#: Applied lines a file's timeline takes before refusing lines that move nothing.
MAX_APPLIED_LINES = 300
#: The second vote comes at least this many months after the first (art. 78(4)).
SECOND_VOTE_MONTHS = 3
_OUTCOME_PREFIXES = ("Government Council: ", "Chamber vote: ")


class _RefusedError(Exception):
    """A message the procedure does not apply; ``reason`` goes on the file and to the service."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def fold_treaty(
    policy: TreatyPolicy,
    file: TreatyFile | None,
    envelope: Envelope[Payload],
    *,
    stamp: datetime,
) -> TreatyEffects:
    """The effects of one message on the treaty file it names (``file`` as it stands).

    ``stamp`` dates what the service sends (an anomaly notice).
    """
    reference = reference_of(envelope.payload)
    if reference is None:
        return TreatyEffects()
    try:
        return _apply(policy, file, envelope)
    except _RefusedError as refused:
        return _anomaly(policy, reference, file, envelope, refused.reason, stamp)


def _apply(
    policy: TreatyPolicy, file: TreatyFile | None, envelope: Envelope[Payload]
) -> TreatyEffects:
    payload, roles, now = envelope.payload, policy.roles, envelope.created_at
    if isinstance(payload, TreatyFileOpened):
        if file is not None:
            raise _RefusedError("the file is already open")
        if envelope.sender != roles.treaties:
            raise _RefusedError("only the treaties service opens a file")
        opened = TreatyFile(payload.treaty_reference, payload.title, now, None, now)
        return _moved(policy, None, _log(opened, envelope, f"signed on {payload.signed_on}"))
    if file is None:
        raise _RefusedError("no file is open under this reference")
    step = _step_of(file, payload)
    if step is None:
        _check_room(file, payload)
    if isinstance(payload, TreatyContributionsRequested):
        return _requested(policy, file, envelope, payload)
    if isinstance(payload, TreatyContributionGiven):
        return _given(file, envelope, payload)
    if isinstance(payload, TreatyContributionWaived):
        return _waived(policy, file, envelope, payload)
    if step is None:  # a decision or vote that moves nothing: on the timeline only
        return TreatyEffects(file=_log(file, envelope, _outcome(payload)))
    _check(roles, file, envelope.sender, step)
    if step is TreatyStep.SECOND_VOTE_HELD:
        _check_second_vote(file, envelope)
    moved = replace(file, step=step, since=now)
    if step is TreatyStep.APPROVED_BY_CHAMBER:
        moved = replace(moved, first_vote_on=_first_vote_day(file, envelope))
    return _moved(policy, file, _log(moved, envelope, step.value))


def _step_of(file: TreatyFile, payload: Payload) -> TreatyStep | None:
    """The step a message takes the file to, or None when it takes it nowhere."""
    if isinstance(
        payload,
        TreatyContributionsRequested | TreatyContributionGiven | TreatyContributionWaived,
    ):
        return None
    if isinstance(payload, CouncilDecisionV2):
        approved = payload.decision is Decision.APPROVED
        return TreatyStep.APPROVED_BY_GOVERNMENT_COUNCIL if approved else None
    if isinstance(payload, ChamberVoteV2):
        # The Chamber's second vote follows its first when the dispensation was refused.
        second = file.step is TreatyStep.APPROVED_BY_CHAMBER
        vote = TreatyStep.SECOND_VOTE_HELD if second else TreatyStep.APPROVED_BY_CHAMBER
        return vote if payload.outcome is VoteOutcome.ADOPTED else None
    if isinstance(payload, PromulgationV2):
        return TreatyStep.PROMULGATED
    if isinstance(payload, TreatyStageReachedV2):
        return payload.precise_step
    assert isinstance(payload, TreatyStageReached)
    return TreatyStep.of_stage(payload.stage)


def _check_room(file: TreatyFile, payload: Payload) -> None:
    """Refuse a line that moves nothing once the file's timeline holds its bound."""
    applied = [e for e in file.timeline if e.applied]
    if isinstance(payload, CouncilDecisionV2 | ChamberVoteV2):
        outcomes = sum(1 for e in applied if e.what.startswith(_OUTCOME_PREFIXES))
        if outcomes >= MAX_OUTCOMES:
            raise _RefusedError(
                f"the file already records {outcomes} deferrals and rejected votes "
                f"(at most {MAX_OUTCOMES}): not recorded"
            )
    if len(applied) >= MAX_APPLIED_LINES:
        raise _RefusedError(
            f"the file's timeline is full ({len(applied)} lines, at most "
            f"{MAX_APPLIED_LINES}): only a step forward is still recorded"
        )


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months (the last day of a shorter month)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def vote_day(envelope: Envelope[Payload]) -> date:
    """The day (in Luxembourg) a vote message says the vote was held.

    The earlier of the day it was sent and the day it names (``voted_on``, or a
    declared step's ``reached_on``): a message sent some days after the sitting dates
    the vote by the sitting, and a date in the future (which the router cannot refuse
    inside a payload) counts as the day it was sent.
    """
    day = local_date(envelope.created_at)
    payload = envelope.payload
    if isinstance(payload, ChamberVoteV2):
        return min(day, payload.voted_on)
    if isinstance(payload, TreatyStageReached):
        return min(day, payload.reached_on)
    return day


def _first_vote_day(file: TreatyFile, envelope: Envelope[Payload]) -> date:
    # Not before the day the file reached the step the vote follows: a backdated first
    # vote does not bring the second one forward.
    return max(vote_day(envelope), local_date(file.since))


def first_vote_on(file: TreatyFile) -> date:
    """The day of the Chamber's first vote on a file past it.

    Files stored before the day was kept fall back to the day the file reached
    ``approved_by_chamber`` (the vote message's sending day).
    """
    return file.first_vote_on if file.first_vote_on is not None else local_date(file.since)


def second_vote_from(file: TreatyFile) -> date:
    """The first day the second vote may be held: three months after the first vote."""
    return add_months(first_vote_on(file), SECOND_VOTE_MONTHS)


def _check_second_vote(file: TreatyFile, envelope: Envelope[Payload]) -> None:
    held = vote_day(envelope)
    earliest = second_vote_from(file)
    if held < earliest:
        raise _RefusedError(
            f"second_vote_held on {held} is too early: the second vote comes at least "
            f"{SECOND_VOTE_MONTHS} months after the first ({first_vote_on(file)}), "
            f"so not before {earliest}"
        )


def refusal(roles: Roles, file: TreatyFile, sender: str, step: TreatyStep) -> str | None:
    """Why ``sender`` may not take ``file`` to ``step``, or None when it may."""
    try:
        _check(roles, file, sender, step)
    except _RefusedError as refused:
        return refused.reason
    return None


def _check(roles: Roles, file: TreatyFile, sender: str, step: TreatyStep) -> None:
    if sender not in (roles.treaties, roles.actor(step)):
        raise _RefusedError(f"{step.value} is taken by {roles.actor(step)}, not {sender}")
    at = "signature" if file.step is None else file.step.value
    current = -1 if file.step is None else file.step.rank
    if step.rank <= current:
        raise _RefusedError(f"{step.value} would move the file backwards: it is at {at}")
    if step.rank > current + 1:
        skipped = " or ".join(s.value for s in next_steps(file.step))
        raise _RefusedError(f"{step.value} skips {skipped}: the file is at {at}")
    if step is FIRST and file.missing:
        names = ", ".join(f"{c.item} ({c.from_code})" for c in file.missing)
        raise _RefusedError(f"submitted while contributions are missing: {names}")


def _requested(
    policy: TreatyPolicy,
    file: TreatyFile,
    envelope: Envelope[Payload],
    payload: TreatyContributionsRequested,
) -> TreatyEffects:
    if envelope.sender != policy.roles.treaties:
        raise _RefusedError("only the treaties service asks for contributions")
    now, ref = envelope.created_at, file.reference
    due = end_of_day(payload.due_on)  # the whole due date, in Luxembourg
    have = {(c.item, c.from_code) for c in file.contributions}
    added = tuple(
        Contribution(a.item, a.from_participant, now, due)
        for a in payload.items
        if (a.item, a.from_participant) not in have
    )
    asked = ", ".join(f"{c.item} ({c.from_code})" for c in added) or "nothing new"
    changed = replace(file, contributions=file.contributions + added)
    deadlines = tuple(
        Deadline(contribution_deadline(ref, c), TREATY_PROCEDURE, ref, c.due_at) for c in added
    )
    return TreatyEffects(file=_log(changed, envelope, f"asked: {asked}"), deadlines=deadlines)


def _given(
    file: TreatyFile, envelope: Envelope[Payload], payload: TreatyContributionGiven
) -> TreatyEffects:
    sender = envelope.sender
    found = _outstanding(file, payload.item, sender)
    if found is None:
        raise _RefusedError(f"{sender} was not asked for {payload.item!r}, or gave it already")
    updated = tuple(
        replace(c, given_at=envelope.created_at) if c is found else c for c in file.contributions
    )
    changed = _log(replace(file, contributions=updated), envelope, f"given: {payload.item}")
    return TreatyEffects(file=changed, cancel=(contribution_deadline(file.reference, found),))


def _waived(
    policy: TreatyPolicy,
    file: TreatyFile,
    envelope: Envelope[Payload],
    payload: TreatyContributionWaived,
) -> TreatyEffects:
    if envelope.sender != policy.roles.treaties:
        raise _RefusedError("only the treaties service waives a contribution")
    found = _outstanding(file, payload.item, payload.from_participant)
    if found is None:
        raise _RefusedError(f"no outstanding {payload.item!r} from {payload.from_participant}")
    updated = tuple(
        replace(c, waived_by=envelope.sender, waiver_reason=payload.reason) if c is found else c
        for c in file.contributions
    )
    what = f"waived: {payload.item} ({payload.from_participant}): {payload.reason}"
    changed = _log(replace(file, contributions=updated), envelope, what)
    return TreatyEffects(file=changed, cancel=(contribution_deadline(file.reference, found),))


def _outstanding(file: TreatyFile, item: str, from_code: str) -> Contribution | None:
    return next(
        (c for c in file.missing if c.item == item and c.from_code == from_code),
        None,
    )


def _moved(policy: TreatyPolicy, before: TreatyFile | None, after: TreatyFile) -> TreatyEffects:
    cancel: tuple[str, ...] = ()
    if before is not None:
        previous = step_deadline(after.reference, before.step)
        cancel = (previous, previous + REMINDER_SUFFIX)
    deadlines: list[Deadline] = []
    expectation = policy.expectation(after.step) if after.step is not None else None
    if expectation is not None and after.step is not LAST:
        ref, base = after.reference, step_deadline(after.reference, after.step)
        due = expectation.within.after(after.since)
        deadlines.append(Deadline(base, TREATY_PROCEDURE, ref, due))
        if expectation.remind_after is not None:
            remind = expectation.remind_after.after(after.since)
            if remind < due:
                deadlines.append(Deadline(base + REMINDER_SUFFIX, TREATY_PROCEDURE, ref, remind))
    return TreatyEffects(file=after, deadlines=tuple(deadlines), cancel=cancel)


def _log(
    file: TreatyFile, envelope: Envelope[Payload], what: str, *, applied: bool = True
) -> TreatyFile:
    entry = Entry(
        envelope.created_at, envelope.sender, str(envelope.message_id), envelope.type, what, applied
    )
    return replace(file, timeline=(*file.timeline, entry))


def _outcome(payload: Payload) -> str:
    if isinstance(payload, CouncilDecisionV2):
        return f"Government Council: {payload.decision.value}"
    if isinstance(payload, ChamberVoteV2):
        return f"Chamber vote: {payload.outcome.value}"
    return type(payload).__name__


def _anomaly(
    policy: TreatyPolicy,
    reference: str,
    file: TreatyFile | None,
    envelope: Envelope[Payload],
    reason: str,
    stamp: datetime,
) -> TreatyEffects:
    """Not applied: kept on the file (when there is one) and told to the treaties service."""
    notice = new_envelope(
        ProcedureAnomaly(
            procedure=TREATY_PROCEDURE,
            file_reference=reference,
            subject_message_id=envelope.message_id,
            subject_type=envelope.type,
            subject_sender=envelope.sender,
            reason=reason[:1000],
        ),
        sender=policy.code,
        recipients=(policy.roles.treaties,),
        correlation_id=envelope.correlation_id or envelope.message_id,
        causation_id=envelope.message_id,
        message_id=uuid5(policy.id_namespace, f"anomaly:{envelope.sender}/{envelope.message_id}"),
        created_at=stamp,
    )
    changed = None
    if file is not None:
        logged = _log(file, envelope, reason, applied=False)
        refused = [e for e in logged.timeline if not e.applied]
        if len(refused) > MAX_ANOMALIES_KEPT:
            # A participant sending refused messages without end must not grow the file
            # without end: the oldest refused lines go, the count stays exact.
            oldest = refused[0]
            logged = replace(logged, timeline=tuple(e for e in logged.timeline if e is not oldest))
        changed = replace(logged, anomalies=file.anomalies + 1)
    return TreatyEffects(file=changed, messages=(Outgoing(notice),))


__all__ = [
    "FIRST",
    "LAST",
    "MAX_ANOMALIES_KEPT",
    "MAX_APPLIED_LINES",
    "MAX_OUTCOMES",
    "SECOND_VOTE_MONTHS",
    "TREATY_PROCEDURE",
    "Contribution",
    "Entry",
    "Expectation",
    "Roles",
    "TreatyEffects",
    "TreatyFile",
    "TreatyPolicy",
    "add_months",
    "escalate_treaty",
    "first_vote_on",
    "fold_treaty",
    "next_steps",
    "reference_of",
    "refusal",
    "second_vote_from",
    "step_deadline",
    "vote_day",
]
