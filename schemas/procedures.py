"""The procedures service's own messages: reminders and escalations.

The hub-side procedures service (registry, acknowledgements chased) sends these
through the hub like any participant, so they are routed and audited; a rebuild
from the ledger sees from them which deadlines already fired.
"""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import Field

from schemas.types import Line, Note, ParticipantCode, Payload, TypeName, UtcDatetime

MAX_WAITING = 64


class _ProcedureNotice(Payload):
    """What reminders and escalations share: which procedure, about which message."""

    #: The procedure that speaks, e.g. ``acknowledgement``.
    procedure: Line
    #: The message the procedure follows (the original letter or cable).
    subject_message_id: UUID
    subject_type: TypeName
    subject_sender: ParticipantCode
    #: When the deadline fell (or falls) due.
    due_at: UtcDatetime
    #: Who has not done what the procedure waits for.
    waiting_on: tuple[ParticipantCode, ...] = Field(min_length=1, max_length=MAX_WAITING)
    #: What is awaited, e.g. ``receipt.received``.
    awaited: Line
    text: Note = ""


class ProcedureReminder(_ProcedureNotice):
    """A deadline is near: the parties still awaited are reminded."""

    message_type: ClassVar[str] = "procedure.reminder"
    version: ClassVar[int] = 1


class ProcedureEscalation(_ProcedureNotice):
    """A deadline passed: the duty officer and the sender learn who has not acted."""

    message_type: ClassVar[str] = "procedure.escalation"
    version: ClassVar[int] = 1


class ProcedureAnomaly(Payload):
    """A message the procedure did not apply (it would move a file backwards, skip a
    required step, or came from a party not entitled to it), told to whoever follows it."""

    message_type: ClassVar[str] = "procedure.anomaly"
    version: ClassVar[int] = 1

    procedure: Line
    #: The file or case concerned (a treaty reference, a question number).
    file_reference: Line
    subject_message_id: UUID
    subject_type: TypeName
    subject_sender: ParticipantCode
    reason: Note


class ProcedureRefusal(Payload):
    """A procedure refused a message (e.g. a self-approval): the sender learns why."""

    message_type: ClassVar[str] = "procedure.refusal"
    version: ClassVar[int] = 1

    procedure: Line
    subject_message_id: UUID
    subject_type: TypeName
    subject_sender: ParticipantCode
    reason: Line


MODELS: tuple[type[Payload], ...] = (
    ProcedureReminder,
    ProcedureEscalation,
    ProcedureAnomaly,
    ProcedureRefusal,
)

__all__ = [
    "MODELS",
    "ProcedureAnomaly",
    "ProcedureEscalation",
    "ProcedureRefusal",
    "ProcedureReminder",
]
