"""The information and communication cell (ICC): press releases and briefings.

A press release may be under embargo until a given instant and exists in one or
more of the country's working languages; a briefing prepares the Minister or a
spokesperson on a subject, in a few key points.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import Field, StringConstraints, field_validator

from schemas.envelope import canonical_json
from schemas.evolution import dropping_added_fields
from schemas.registry import Downgrade
from schemas.types import Line, Note, ParticipantCode, Payload, Text, UtcDatetime

MAX_KEY_POINTS = 30
#: A SHA-256 digest in lower-case hex (what :func:`release_digest` returns).
ContentDigest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


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

    def digest(self) -> str:
        """This release's content digest (:func:`release_digest`)."""
        return release_digest(self.title, self.body, tuple(self.languages), self.embargo_until)


def release_digest(
    title: str, body: str, languages: tuple[str, ...], embargo_until: datetime | None
) -> str:
    """The digest of a press release's content: what an approval must carry.

    SHA-256 (lower-case hex) of the canonical JSON (keys sorted, separators ``,`` and
    ``:``, non-ASCII as is, UTF-8) of ``{"body", "embargo_until", "languages",
    "title"}``: the title without surrounding whitespace (as the contract reads it),
    the body as sent, the language codes in the draft's order, and the embargo as
    ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC (six fraction digits) or ``null``.
    """
    embargo = (
        None
        if embargo_until is None
        else embargo_until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    )
    content = {
        "title": title,
        "body": body,
        "languages": [str(code) for code in languages],
        "embargo_until": embargo,
    }
    return hashlib.sha256(canonical_json(content)).hexdigest()


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


class ReleaseApprovedV2(ReleaseApproved):
    """An approval (version 2) that names the content approved, not only the release's id.

    ``content_digest`` is :func:`release_digest` of the draft the approver received
    (:meth:`PressRelease.digest`): the procedures service publishes nothing but the
    words approved, and refuses an approval without it or whose digest is not that of
    the release it holds (an id reused with other words, say).
    """

    version: ClassVar[int] = 2

    content_digest: ContentDigest | None = Field(
        default=None, description="SHA-256 (hex) of the approved draft's content."
    )

    @classmethod
    def of(
        cls, release_message_id: UUID, author: str, draft: PressRelease, note: str = ""
    ) -> ReleaseApprovedV2:
        """The approval of ``draft`` (sent by ``author`` under ``release_message_id``)."""
        return cls(
            release_message_id=release_message_id,
            author=author,
            note=note,
            content_digest=draft.digest(),
        )


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
    ReleaseApprovedV2,
    ReleaseWithdrawn,
    ReleasePublished,
    ReleaseRetracted,
)
DOWNGRADES: dict[tuple[str, int], Downgrade] = {
    ("icc.release_approved", 2): dropping_added_fields(ReleaseApprovedV2, ReleaseApproved)
}

__all__ = [
    "DOWNGRADES",
    "MODELS",
    "Briefing",
    "ContentDigest",
    "Language",
    "PressRelease",
    "ReleaseApproved",
    "ReleaseApprovedV2",
    "ReleasePublished",
    "ReleaseRetracted",
    "ReleaseWithdrawn",
    "release_digest",
]
