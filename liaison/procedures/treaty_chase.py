"""Chasing a treaty file: the reminder and the escalation when a deadline falls due.

Pure, like the fold: the sweeper claims a due deadline and calls
:func:`escalate_treaty`; a file that moved on meanwhile gets its deadline cancelled.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid5

from liaison.procedures.core import Deadline, Outgoing
from liaison.procedures.treaty_file import (
    REMINDER_SUFFIX,
    TREATY_PROCEDURE,
    Expectation,
    TreatyEffects,
    TreatyFile,
    TreatyPolicy,
    contribution_deadline,
    next_steps,
    step_deadline,
)
from schemas.envelope import new_envelope
from schemas.procedures import ProcedureEscalation, ProcedureReminder


def escalate_treaty(
    policy: TreatyPolicy, file: TreatyFile, deadline: Deadline, *, stamp: datetime
) -> TreatyEffects:
    """A treaty deadline fell due: one escalation naming who the file still waits on."""
    roles = policy.roles
    if ":contribution:" in deadline.id:
        waiting = tuple(
            c.from_code
            for c in file.missing
            if contribution_deadline(file.reference, c) == deadline.id
        )
        awaited = "contribution " + deadline.id.split(":contribution:", 1)[1].split(":", 1)[1]
        escalate_to: tuple[str, ...] = ()
    else:
        base = deadline.id.removesuffix(REMINDER_SUFFIX)
        if base != step_deadline(file.reference, file.step):
            return TreatyEffects(cancel=(deadline.id,))  # the file moved on meanwhile
        waiting = file.waiting_on(roles)
        awaited = " or ".join(s.value for s in next_steps(file.step))
        expectation = policy.expectation(file.step) if file.step is not None else None
        escalate_to = expectation.escalate_to if expectation else ()
        if base != deadline.id and expectation is not None:
            # A reminder: to the party waited on (and the treaties service), before the due date.
            return _remind(policy, file, deadline, waiting, awaited, expectation, stamp)
    if not waiting:
        return TreatyEffects(cancel=(deadline.id,))
    recipients = tuple(dict.fromkeys((roles.treaties, *waiting, *escalate_to)))
    subject = file.timeline[0] if file.timeline else None
    message_id = uuid5(policy.id_namespace, f"escalation:{deadline.id}")
    notice = new_envelope(
        ProcedureEscalation(
            procedure=TREATY_PROCEDURE,
            subject_message_id=UUID(subject.message_id) if subject else message_id,
            subject_type=subject.type if subject else "treaty.file_opened",
            subject_sender=subject.sender if subject else roles.treaties,
            due_at=deadline.due_at,
            waiting_on=waiting,
            awaited=awaited[:300],
            text=f"treaty file {file.reference}: {awaited} awaited from {', '.join(waiting)}",
        ),
        sender=policy.code,
        recipients=tuple(r for r in recipients if r != policy.code),
        message_id=message_id,
        created_at=stamp,
    )
    return TreatyEffects(messages=(Outgoing(notice),))


def _remind(
    policy: TreatyPolicy,
    file: TreatyFile,
    deadline: Deadline,
    waiting: tuple[str, ...],
    awaited: str,
    expectation: Expectation,
    stamp: datetime,
) -> TreatyEffects:
    if not waiting:
        return TreatyEffects(cancel=(deadline.id,))
    subject = file.timeline[0]
    due = expectation.within.after(file.since)
    recipients = tuple(dict.fromkeys((policy.roles.treaties, *waiting)))
    notice = new_envelope(
        ProcedureReminder(
            procedure=TREATY_PROCEDURE,
            subject_message_id=UUID(subject.message_id),
            subject_type=subject.type,
            subject_sender=subject.sender,
            due_at=due,
            waiting_on=waiting,
            awaited=awaited[:300],
            text=f"treaty file {file.reference}: {awaited} expected from {', '.join(waiting)} "
            f"by {due:%Y-%m-%d}",
        ),
        sender=policy.code,
        recipients=tuple(r for r in recipients if r != policy.code),
        message_id=uuid5(policy.id_namespace, f"reminder:{deadline.id}"),
        created_at=stamp,
    )
    return TreatyEffects(messages=(Outgoing(notice),))


__all__ = ["escalate_treaty"]
