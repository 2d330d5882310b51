"""Grand Ducal Palace: audiences, letters of credence, and promulgation of laws.

The Ministry asks the Palace for audiences, tells it when a foreign ambassador
presents letters of credence to the Grand Duke, and learns from it when an act
(a law approving a treaty, typically) has been promulgated and where it was
published in the Mémorial.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from pydantic import Field, ValidationInfo, field_validator

from schemas.evolution import dropping_added_fields
from schemas.registry import Downgrade
from schemas.types import Line, Payload, Reference, Text

MAX_PREFERRED_DATES = 10


class AudienceRequest(Payload):
    """A request for an audience with the Grand Duke, with preferred dates."""

    message_type: ClassVar[str] = "palace.audience_request"
    version: ClassVar[int] = 1

    requested_for: Line = Field(
        description="Who asks to be received: a minister, an ambassador, a delegation."
    )
    subject: Line
    purpose: Text
    preferred_dates: tuple[date, ...] = Field(min_length=1, max_length=MAX_PREFERRED_DATES)

    @field_validator("preferred_dates")
    @classmethod
    def _distinct_dates(cls, value: tuple[date, ...]) -> tuple[date, ...]:
        if len(set(value)) != len(value):
            raise ValueError("preferred_dates must not repeat")
        return value


class LettersOfCredence(Payload):
    """A foreign ambassador presented letters of credence to the Grand Duke."""

    message_type: ClassVar[str] = "palace.letters_of_credence"
    version: ClassVar[int] = 1

    ambassador_name: Line
    sending_state: Line
    presented_on: date


class Promulgation(Payload):
    """An act was promulgated; the Mémorial reference follows once it is published."""

    message_type: ClassVar[str] = "palace.promulgation"
    version: ClassVar[int] = 1

    act_reference: Reference
    title: Line
    promulgated_on: date
    memorial_reference: Reference | None = Field(
        default=None, description="Publication in the Mémorial (Journal officiel): A-2025-123."
    )
    published_on: date | None = None

    @field_validator("published_on")
    @classmethod
    def _published_after_promulgation(cls, value: date | None, info: ValidationInfo) -> date | None:
        promulgated = info.data.get("promulgated_on")
        if value is not None and promulgated is not None and value < promulgated:
            raise ValueError("published_on must not be before promulgated_on")
        return value


class PromulgationV2(Promulgation):
    """A promulgation (version 2): names the treaty file whose law of approval it is."""

    version: ClassVar[int] = 2

    treaty_reference: Reference | None = Field(
        default=None,
        description="The treaty file whose law of approval this is, when it concerns one.",
    )


MODELS: tuple[type[Payload], ...] = (
    AudienceRequest,
    LettersOfCredence,
    Promulgation,
    PromulgationV2,
)
DOWNGRADES: dict[tuple[str, int], Downgrade] = {
    ("palace.promulgation", 2): dropping_added_fields(PromulgationV2, Promulgation)
}

__all__ = [
    "DOWNGRADES",
    "MODELS",
    "AudienceRequest",
    "LettersOfCredence",
    "Promulgation",
    "PromulgationV2",
]
