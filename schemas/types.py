"""Bounded field types shared by every message family.

Every string and every list in a contract is bounded: these aliases carry the
bounds so that families cannot forget them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, StringConstraints

#: A participant's directory code: lower case, digits and hyphens; also its inbox name.
ParticipantCode = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,39}$", max_length=40)
]
#: A message type: dotted lower-case words, e.g. ``correspondence.letter``.
TypeName = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$", max_length=64)
]
#: One line of text (a title, a subject, a name).
Line = Annotated[str, StringConstraints(min_length=1, max_length=300, strip_whitespace=True)]
#: A short identifier or reference (registry numbers, file references, case numbers).
Reference = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9./_:-]*$")
]
#: Running text (a letter's body, an opinion, a cable).
Text = Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
#: A short free-text note.
Note = Annotated[str, StringConstraints(max_length=2_000)]


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+14:00 is before the first UTC instant Python can hold
        # (and 9999-12-31T23:59-23:59 after the last): a contract error, not a crash.
        raise ValueError(
            f"{value.isoformat()} is outside the range of UTC times "
            "(0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z)"
        ) from None


#: A point in time that must carry a timezone; stored and serialised as UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class Classification(StrEnum):
    """Security classification, lowest first; a recipient's clearance must reach it."""

    PUBLIC = "PUBLIC"
    INTERNAL = "INTERNAL"
    RESTRICTED = "RESTRICTED"
    CONFIDENTIAL = "CONFIDENTIAL"

    @property
    def rank(self) -> int:
        """Position in the order PUBLIC < INTERNAL < RESTRICTED < CONFIDENTIAL."""
        return _CLASSIFICATION_ORDER.index(self)


_CLASSIFICATION_ORDER = list(Classification)


class Precedence(StrEnum):
    """Handling precedence, highest first (the diplomatic cable scale)."""

    FLASH = "FLASH"
    IMMEDIATE = "IMMEDIATE"
    PRIORITY = "PRIORITY"
    ROUTINE = "ROUTINE"

    def outranks(self, other: Precedence) -> bool:
        """Whether this precedence is higher than ``other`` (FLASH outranks the rest)."""
        return _PRECEDENCE_ORDER.index(self) < _PRECEDENCE_ORDER.index(other)


_PRECEDENCE_ORDER = list(Precedence)


class Payload(BaseModel):
    """Base of every message body: frozen, unknown fields refused, strings bounded.

    Subclasses set ``message_type`` and ``version``; the registry keys on them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=100_000)

    message_type: ClassVar[str]
    version: ClassVar[int]


__all__ = [
    "Classification",
    "Line",
    "Note",
    "ParticipantCode",
    "Payload",
    "Precedence",
    "Reference",
    "Text",
    "TypeName",
    "UtcDatetime",
]
