"""Government Council: items the Ministry puts on its agenda, and the decisions taken.

The Ministry submits an agenda item under a reference; the Council's secretariat
answers with the decision on that item, quoting the same reference.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import ClassVar

from pydantic import Field, ValidationInfo, field_validator

from schemas.evolution import dropping_added_fields
from schemas.registry import Downgrade
from schemas.types import Line, Note, Payload, Reference, Text


class Decision(StrEnum):
    """What the Council did with an agenda item."""

    APPROVED = "approved"
    REJECTED = "rejected"
    DEFERRED = "deferred"


class AgendaItemSubmitted(Payload):
    """An item submitted for a meeting of the Government Council."""

    message_type: ClassVar[str] = "council.agenda_item_submitted"
    version: ClassVar[int] = 1

    agenda_item_reference: Reference
    title: Line
    submitted_by: Line = Field(description="The directorate or service that carries the item.")
    requested_meeting_on: date
    summary: Text
    urgent: bool = False


class CouncilDecision(Payload):
    """The Council's decision on an agenda item; a deferral may name the later meeting."""

    message_type: ClassVar[str] = "council.decision"
    version: ClassVar[int] = 1

    agenda_item_reference: Reference
    meeting_on: date
    decision: Decision
    deferred_to: date | None = None
    note: Note | None = None

    @field_validator("deferred_to")
    @classmethod
    def _only_when_deferred(cls, value: date | None, info: ValidationInfo) -> date | None:
        if value is None:
            return value
        if info.data.get("decision") not in (None, Decision.DEFERRED):
            raise ValueError("deferred_to is only for a deferred item")
        meeting = info.data.get("meeting_on")
        if meeting is not None and value <= meeting:
            raise ValueError("deferred_to must be after meeting_on")
        return value


class CouncilDecisionV2(CouncilDecision):
    """The Council's decision (version 2): names the treaty file it moves, if any."""

    version: ClassVar[int] = 2

    treaty_reference: Reference | None = Field(
        default=None, description="The treaty file this decision concerns, when it concerns one."
    )


MODELS: tuple[type[Payload], ...] = (AgendaItemSubmitted, CouncilDecision, CouncilDecisionV2)
DOWNGRADES: dict[tuple[str, int], Downgrade] = {
    ("council.decision", 2): dropping_added_fields(CouncilDecisionV2, CouncilDecision)
}

__all__ = [
    "DOWNGRADES",
    "MODELS",
    "AgendaItemSubmitted",
    "CouncilDecision",
    "CouncilDecisionV2",
    "Decision",
]
