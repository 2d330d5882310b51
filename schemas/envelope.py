"""The envelope every message travels in, and its canonical byte form.

The canonical form is what gets signed, hashed and put on the wire: JSON with
sorted keys, no insignificant whitespace, UTF-8, ``null`` fields left out and the
``signature`` field excluded. Any language can rebuild it from the wire bytes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID, uuid4

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    StringConstraints,
    model_validator,
)

from schemas.types import (
    Classification,
    ParticipantCode,
    Payload,
    Precedence,
    TypeName,
    UtcDatetime,
)

P = TypeVar("P", bound=Payload)

#: Base64 of a 64-byte Ed25519 signature.
Signature = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{86}==$", min_length=88, max_length=88)
]

MAX_RECIPIENTS = 64


class Envelope(BaseModel, Generic[P]):
    """Addressing, provenance and handling data around one payload."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=1_000)

    message_id: UUID
    type: TypeName
    schema_version: int = Field(ge=1, le=999)
    sender: ParticipantCode
    recipients: tuple[ParticipantCode, ...] = Field(default=(), max_length=MAX_RECIPIENTS)
    correlation_id: UUID | None = None
    causation_id: UUID | None = None
    created_at: UtcDatetime
    expires_at: UtcDatetime | None = None
    classification: Classification = Classification.INTERNAL
    precedence: Precedence = Precedence.ROUTINE
    payload: SerializeAsAny[P]
    signature: Signature | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Envelope[P]:
        if len(set(self.recipients)) != len(self.recipients):
            raise ValueError("recipients must not repeat")
        if self.expires_at is not None and self.expires_at <= self.created_at:
            raise ValueError("expires_at must be after created_at")
        cls = type(self.payload)
        declared = getattr(cls, "message_type", None)
        if declared is not None and (declared, cls.version) != (self.type, self.schema_version):
            raise ValueError(
                f"payload is {declared} v{cls.version}, envelope says "
                f"{self.type} v{self.schema_version}"
            )
        return self

    def canonical_bytes(self) -> bytes:
        """The bytes a signature covers: the canonical form without ``signature``."""
        return canonical_json(self.to_jsonable(include_signature=False))

    def to_jsonable(self, *, include_signature: bool = True) -> dict[str, Any]:
        """The envelope as plain JSON data, ``null`` fields omitted."""
        data = self.model_dump(mode="json", exclude_none=True)
        if not include_signature:
            data.pop("signature", None)
        return data

    def encode(self) -> bytes:
        """The wire form: canonical JSON including the signature when there is one."""
        return canonical_json(self.to_jsonable())

    def with_signature(self, signature: str | None) -> Envelope[P]:
        """A copy carrying ``signature`` (base64 Ed25519 over ``canonical_bytes``)."""
        return self.model_copy(update={"signature": signature})


def canonical_json(data: Any) -> bytes:
    """Sorted keys, compact separators, UTF-8, no NaN: stable across languages."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def new_envelope(
    payload: P,
    *,
    sender: str,
    recipients: tuple[str, ...] | list[str] = (),
    classification: Classification = Classification.INTERNAL,
    precedence: Precedence = Precedence.ROUTINE,
    correlation_id: UUID | None = None,
    causation_id: UUID | None = None,
    expires_at: datetime | None = None,
    message_id: UUID | None = None,
    created_at: datetime | None = None,
) -> Envelope[P]:
    """Wrap ``payload`` in a fresh envelope: new id, now as created-at, type from the model."""
    cls = type(payload)
    return Envelope[cls](  # type: ignore[valid-type]
        message_id=message_id or uuid4(),
        type=cls.message_type,
        schema_version=cls.version,
        sender=sender,
        recipients=tuple(recipients),
        correlation_id=correlation_id,
        causation_id=causation_id,
        created_at=created_at or datetime.now(UTC),
        expires_at=expires_at,
        classification=classification,
        precedence=precedence,
        payload=payload,
    )
