"""Treaty files: one file per treaty, moving through its ratification stages.

The treaties service opens a file when a treaty is signed, then reports each
stage of the Luxembourg approval procedure as it is reached: submission, the
Government Council's approval, the bill of approval tabled in the Chamber of
Deputies, the Chamber's vote, promulgation by the Grand Duke and, last, the
deposit (or exchange) of the instrument of ratification. The stages are
ordered; :func:`next_stages` gives what is still ahead of a file.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import ClassVar

from pydantic import Field, ValidationInfo, field_validator

from schemas.types import Line, Note, Payload, Reference

MAX_PARTIES = 200


class TreatyKind(StrEnum):
    """Two parties, or more."""

    BILATERAL = "bilateral"
    MULTILATERAL = "multilateral"


class TreatyStage(StrEnum):
    """A ratification stage; members are declared in the order a file goes through them."""

    SUBMITTED = "submitted"
    APPROVED_BY_GOVERNMENT_COUNCIL = "approved_by_government_council"
    BILL_OF_APPROVAL_TABLED = "bill_of_approval_tabled"
    APPROVED_BY_CHAMBER = "approved_by_chamber"
    PROMULGATED = "promulgated"
    INSTRUMENT_DEPOSITED = "instrument_deposited"

    @property
    def rank(self) -> int:
        """Position in the procedure, 0 for SUBMITTED."""
        return _STAGE_ORDER.index(self)


_STAGE_ORDER: tuple[TreatyStage, ...] = tuple(TreatyStage)


def next_stages(stage: TreatyStage) -> tuple[TreatyStage, ...]:
    """The stages still ahead of a file at ``stage``, in order; empty at the last one."""
    return _STAGE_ORDER[stage.rank + 1 :]


def next_stage(stage: TreatyStage) -> TreatyStage | None:
    """The stage that follows ``stage``, or None when the procedure is complete."""
    ahead = next_stages(stage)
    return ahead[0] if ahead else None


class TreatyFileOpened(Payload):
    """The treaties service opened a file for a signed treaty."""

    message_type: ClassVar[str] = "treaty.file_opened"
    version: ClassVar[int] = 1

    treaty_reference: Reference
    title: Line
    kind: TreatyKind
    parties: tuple[Line, ...] = Field(
        min_length=2, max_length=MAX_PARTIES, description="Every party, Luxembourg included."
    )
    signed_on: date

    @field_validator("parties")
    @classmethod
    def _distinct_parties(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("parties must not repeat")
        if info.data.get("kind") is TreatyKind.BILATERAL and len(value) != 2:
            raise ValueError(f"a bilateral treaty has exactly 2 parties, not {len(value)}")
        return value


class TreatyStageReached(Payload):
    """A treaty file reached a ratification stage.

    The bill number is required once the bill of approval is tabled, the
    depositary once the instrument is deposited.
    """

    message_type: ClassVar[str] = "treaty.stage_reached"
    version: ClassVar[int] = 1

    treaty_reference: Reference
    stage: TreatyStage
    reached_on: date
    bill_number: Reference | None = Field(
        default=None,
        validate_default=True,
        description="The Chamber's bill number (numéro du projet de loi).",
    )
    depositary: Line | None = Field(default=None, validate_default=True)
    note: Note | None = None

    @field_validator("bill_number")
    @classmethod
    def _bill_when_tabled(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("stage") is TreatyStage.BILL_OF_APPROVAL_TABLED:
            raise ValueError("a tabled bill of approval needs its bill_number")
        return value

    @field_validator("depositary")
    @classmethod
    def _depositary_when_deposited(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("stage") is TreatyStage.INSTRUMENT_DEPOSITED:
            raise ValueError("a deposited instrument needs its depositary")
        return value


MODELS: tuple[type[Payload], ...] = (TreatyFileOpened, TreatyStageReached)

__all__ = [
    "MODELS",
    "TreatyFileOpened",
    "TreatyKind",
    "TreatyStage",
    "TreatyStageReached",
    "next_stage",
    "next_stages",
]
