"""Diplomatic and consular missions: cables, security incidents, consular cases.

A cable's precedence (FLASH, IMMEDIATE, PRIORITY, ROUTINE) is not a payload
field: it is the envelope's ``precedence``, set by the sender like the
classification, so the hub can order and alert on it without reading payloads.

``mission.cable`` is the one type with two versions, and shows how every type
evolves (see :class:`CableV2` for the rule and :func:`downgrade_cable` for the
step back).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints

from schemas.registry import Downgrade
from schemas.types import Line, Note, Payload, Reference, Text, UtcDatetime

MAX_TAGS = 20
MAX_CAVEATS = 10
MAX_CABLE_REFERENCES = 50

#: A subject tag in capitals, as on cables: ``PREL``, ``EU``, ``CONS``.
Tag = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9-]{1,15}$", max_length=16)]
#: A handling caveat restricting distribution: ``NOFORN``-like, e.g. ``EXDIS``, ``EU-ONLY``.
Caveat = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9-]{1,23}$", max_length=24)]


class CableV1(Payload):
    """A diplomatic cable from or to a mission (version 1)."""

    message_type: ClassVar[str] = "mission.cable"
    version: ClassVar[int] = 1

    cable_number: Reference
    subject: Line
    text: Text
    tags: tuple[Tag, ...] = Field(default=(), max_length=MAX_TAGS)


class CableV2(CableV1):
    """A diplomatic cable (version 2): adds handling caveats and references to earlier cables.

    Evolution rule: a new version of a message type may only add optional fields
    (each with a default) to the version before it; it never removes, renames,
    retypes or tightens one. Each version N+1 ships a downgrade to version N that
    drops the added fields, registered in its family's ``DOWNGRADES``. A consumer
    receives the highest version it knows that is not newer than the message
    (``Registry.adapt``, one downgrade at a time, the signature dropped because it
    covered the original); a message older than every version the consumer knows
    is refused as ``unsupported_version``, never upgraded by guesswork.

    Downgrading drops ``caveats`` too: a consumer that only reads v1 cannot see
    handling caveats, so caveated cables should only be routed to v2 consumers.
    """

    version: ClassVar[int] = 2

    caveats: tuple[Caveat, ...] = Field(default=(), max_length=MAX_CAVEATS)
    references: tuple[Reference, ...] = Field(
        default=(),
        max_length=MAX_CABLE_REFERENCES,
        description="Cable numbers of earlier cables this one refers to.",
    )


def downgrade_cable(payload: Payload) -> Payload:
    """``mission.cable`` v2 → v1: the same cable without ``caveats`` and ``references``."""
    if not isinstance(payload, CableV2):
        raise TypeError(f"expected a mission.cable v2, got {type(payload).__name__}")
    return CableV1.model_validate(payload.model_dump(include=set(CableV1.model_fields)))


class Severity(StrEnum):
    """How serious a security incident is, lowest first."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class SecurityIncident(Payload):
    """A security incident at or around a mission, reported to mission security."""

    message_type: ClassVar[str] = "mission.security_incident"
    version: ClassVar[int] = 1

    severity: Severity
    occurred_at: UtcDatetime
    location: Line
    description: Text
    measures_taken: Note | None = None


class ConsularCaseKind(StrEnum):
    """What a consular case is about."""

    ASSISTANCE = "assistance"
    ARREST = "arrest"
    DEATH = "death"
    PASSPORT = "passport"
    EVACUATION = "evacuation"


class ConsularCase(Payload):
    """A consular case opened by a mission for a citizen abroad.

    The citizen is named only by a reference into the consular register: no
    personal data travels through the hub.
    """

    message_type: ClassVar[str] = "mission.consular_case"
    version: ClassVar[int] = 1

    case_number: Reference
    kind: ConsularCaseKind
    citizen_reference: Reference
    country: Line
    opened_on: date
    summary: Text


MODELS: tuple[type[Payload], ...] = (CableV1, CableV2, SecurityIncident, ConsularCase)
DOWNGRADES: dict[tuple[str, int], Downgrade] = {("mission.cable", 2): downgrade_cable}

__all__ = [
    "DOWNGRADES",
    "MODELS",
    "CableV1",
    "CableV2",
    "ConsularCase",
    "ConsularCaseKind",
    "SecurityIncident",
    "Severity",
    "downgrade_cable",
]
