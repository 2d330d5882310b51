"""The information and communication cell (ICC): press releases and briefings.

A press release may be under embargo until a given instant and exists in one or
more of the country's working languages; a briefing prepares the Minister or a
spokesperson on a subject, in a few key points.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import Field, field_validator

from schemas.types import Line, Note, ParticipantCode, Payload, Text, UtcDatetime

MAX_KEY_POINTS = 30


class Language(StrEnum):
    """A language a text is published in (ISO 639-1)."""

    FR = "fr"
    DE = "de"
    EN = "en"
    LB = "lb"


class PressRelease(Payload):
    """A press release, optionally embargoed until an instant (UTC)."""

    message_type: ClassVar[str] = "icc.press_release"
    version: ClassVar[int] = 1

    title: Line
    body: Text
    embargo_until: UtcDatetime | None = None
    languages: tuple[Language, ...] = Field(min_length=1, max_length=len(Language))

    @field_validator("languages")
    @classmethod
    def _distinct_languages(cls, value: tuple[Language, ...]) -> tuple[Language, ...]:
        if len(set(value)) != len(value):
            raise ValueError("languages must not repeat")
        return value


class Briefing(Payload):
    """A briefing for the Minister or a spokesperson: key points and background."""

    message_type: ClassVar[str] = "icc.briefing"
    version: ClassVar[int] = 1

    title: Line
    audience: Line = Field(description="Who is briefed: the Minister, a spokesperson, the press.")
    key_points: tuple[Line, ...] = Field(min_length=1, max_length=MAX_KEY_POINTS)
    background: Text | None = None
    delivered_on: date | None = None


class _AboutRelease(Payload):
    """Names one press release: its id is only unique per sender, so its author too."""

    release_message_id: UUID
    author: ParticipantCode


class ReleaseApproved(_AboutRelease):
    """A holder of the approval right (not the author) approves a press release.

    Only an approval lets the procedures service publish the release (at its
    embargo, if any); the approver is the envelope's validated sender.
    """

    message_type: ClassVar[str] = "icc.release_approved"
    version: ClassVar[int] = 1

    note: Note = ""


class ReleaseWithdrawn(_AboutRelease):
    """The author or an approver withdraws a release: never published, or taken down."""

    message_type: ClassVar[str] = "icc.release_withdrawn"
    version: ClassVar[int] = 1

    reason: Line


class ReleasePublished(_AboutRelease):
    """The procedures service published an approved release (sent to its subscribers)."""

    message_type: ClassVar[str] = "icc.release_published"
    version: ClassVar[int] = 1

    title: Line
    body: Text
    languages: tuple[Language, ...] = Field(min_length=1, max_length=len(Language))
    published_at: UtcDatetime
    approved_by: ParticipantCode


class ReleaseRetracted(_AboutRelease):
    """The procedures service took a published release down (it was withdrawn)."""

    message_type: ClassVar[str] = "icc.release_retracted"
    version: ClassVar[int] = 1

    withdrawn_at: UtcDatetime
    withdrawn_by: ParticipantCode
    reason: Line


MODELS: tuple[type[Payload], ...] = (
    PressRelease,
    Briefing,
    ReleaseApproved,
    ReleaseWithdrawn,
    ReleasePublished,
    ReleaseRetracted,
)

__all__ = [
    "MODELS",
    "Briefing",
    "Language",
    "PressRelease",
    "ReleaseApproved",
    "ReleasePublished",
    "ReleaseRetracted",
    "ReleaseWithdrawn",
]
