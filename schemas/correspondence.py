"""Official correspondence: letters and notes between institutions, threaded by reference.

Every piece carries the sender's registry reference (the number it was filed
under) and may name the message it answers (``in_reply_to``, a message id) and
the registry reference of the thread it belongs to. Attachments travel by
reference: the hub carries their name, SHA-256 and size, never their content.
"""

from __future__ import annotations

from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from schemas.types import Line, Payload, Reference, Text

MAX_ATTACHMENTS = 20
#: Attachments are described, not carried; 2 GiB is far above any real file.
MAX_ATTACHMENT_BYTES = 2 * 1024**3

#: Lower-case hexadecimal SHA-256 digest.
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$", max_length=64)]


class Attachment(BaseModel):
    """One attached document, identified by its digest so the recipient can check it."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=300)

    name: Line
    sha256: Sha256Hex
    size: int = Field(ge=0, le=MAX_ATTACHMENT_BYTES, strict=True)


class _Correspondence(Payload):
    """Fields shared by letters and notes."""

    registry_reference: Reference
    subject: Line
    body: Text
    in_reply_to: UUID | None = None
    thread_registry_reference: Reference | None = None
    attachments: tuple[Attachment, ...] = Field(default=(), max_length=MAX_ATTACHMENTS)

    @field_validator("attachments")
    @classmethod
    def _distinct_names(cls, value: tuple[Attachment, ...]) -> tuple[Attachment, ...]:
        names = [attachment.name for attachment in value]
        if len(set(names)) != len(names):
            raise ValueError("attachment names must not repeat")
        return value


class Letter(_Correspondence):
    """A signed official letter from one institution to another."""

    message_type: ClassVar[str] = "correspondence.letter"
    version: ClassVar[int] = 1

    addressee: Line
    signatory: Line


class OfficialNote(_Correspondence):
    """A note (internal note or note verbale): unsigned, in the third person."""

    message_type: ClassVar[str] = "correspondence.note"
    version: ClassVar[int] = 1


MODELS: tuple[type[Payload], ...] = (Letter, OfficialNote)

__all__ = ["MODELS", "Attachment", "Letter", "OfficialNote"]
