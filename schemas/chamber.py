"""Chamber of Deputies: parliamentary questions to the Minister, answers, and votes.

A question arrives from the Chamber's register with the date by which the
Minister must answer; the answer quotes the question's number. Votes report
the Chamber's public vote on a bill (for the Ministry, chiefly bills approving
treaties).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import ClassVar

from pydantic import Field, ValidationInfo, field_validator, model_validator

from schemas.evolution import dropping_added_fields
from schemas.registry import Downgrade
from schemas.types import Line, Note, ParticipantCode, Payload, Reference, Text

#: The Chamber has 60 deputies; no vote counts more.
CHAMBER_SEATS = 60


class VoteOutcome(StrEnum):
    """Whether the Chamber adopted the bill."""

    ADOPTED = "adopted"
    REJECTED = "rejected"


class ParliamentaryQuestion(Payload):
    """A deputy's question to the Minister, with its answer deadline."""

    message_type: ClassVar[str] = "chamber.question"
    version: ClassVar[int] = 1

    question_number: Reference
    deputy: Line
    subject: Line
    text: Text
    asked_on: date
    answer_deadline: date

    @field_validator("answer_deadline")
    @classmethod
    def _deadline_not_before_question(cls, value: date, info: ValidationInfo) -> date:
        asked = info.data.get("asked_on")
        if asked is not None and value < asked:
            raise ValueError("answer_deadline must not be before asked_on")
        return value


class ParliamentaryAnswer(Payload):
    """The Minister's answer to a parliamentary question."""

    message_type: ClassVar[str] = "chamber.answer"
    version: ClassVar[int] = 1

    question_number: Reference
    text: Text
    answered_on: date


class QuestionAssigned(Payload):
    """The General Secretariat assigns a question to the directorate that prepares the answer.

    It overrides the assignment the routing rules made on the question's subject.
    """

    message_type: ClassVar[str] = "chamber.question_assigned"
    version: ClassVar[int] = 1

    question_number: Reference
    assigned_to: ParticipantCode
    note: Note | None = None


class ChamberVote(Payload):
    """The result of the Chamber's vote on a bill.

    A tie rejects the bill (Constitution), so an adopted bill has more votes for
    than against; abstentions do not count either way.
    """

    message_type: ClassVar[str] = "chamber.vote"
    version: ClassVar[int] = 1

    bill_number: Reference
    title: Line
    votes_for: int = Field(ge=0, le=CHAMBER_SEATS, strict=True)
    votes_against: int = Field(ge=0, le=CHAMBER_SEATS, strict=True)
    abstentions: int = Field(ge=0, le=CHAMBER_SEATS, strict=True)
    outcome: VoteOutcome
    voted_on: date

    @model_validator(mode="after")
    def _consistent_counts(self) -> ChamberVote:
        cast = self.votes_for + self.votes_against + self.abstentions
        if cast > CHAMBER_SEATS:
            raise ValueError(f"{cast} votes from a Chamber of {CHAMBER_SEATS} deputies")
        if self.outcome is VoteOutcome.ADOPTED and self.votes_for <= self.votes_against:
            raise ValueError("an adopted bill needs more votes for than against")
        return self


class ChamberVoteV2(ChamberVote):
    """The Chamber's vote (version 2): names the treaty file a bill of approval belongs to."""

    version: ClassVar[int] = 2

    treaty_reference: Reference | None = Field(
        default=None, description="The treaty file this vote concerns, when it concerns one."
    )


MODELS: tuple[type[Payload], ...] = (
    ParliamentaryQuestion,
    ParliamentaryAnswer,
    QuestionAssigned,
    ChamberVote,
    ChamberVoteV2,
)
DOWNGRADES: dict[tuple[str, int], Downgrade] = {
    ("chamber.vote", 2): dropping_added_fields(ChamberVoteV2, ChamberVote)
}

__all__ = [
    "CHAMBER_SEATS",
    "DOWNGRADES",
    "MODELS",
    "ChamberVote",
    "ChamberVoteV2",
    "ParliamentaryAnswer",
    "ParliamentaryQuestion",
    "QuestionAssigned",
    "VoteOutcome",
]
