"""Treaty files: one file per treaty, moving through its ratification stages.

The treaties service opens a file when a treaty is signed, then reports each
stage of the Luxembourg approval procedure as it is reached: submission, the
Government Council's approval, the bill of approval tabled in the Chamber of
Deputies, the Chamber's vote, promulgation by the Grand Duke and, last, the
deposit (or exchange) of the instrument of ratification. The stages are
ordered; :func:`next_stages` gives what is still ahead of a file.

Version 2 of ``treaty.stage_reached`` names the precise step (:class:`TreatyStep`),
which adds what version 1's stages lack: the Council of State's opinion, its
dispensing of the Chamber's second vote (or the second vote held), publication
in the Journal officiel (Mémorial A) and entry into force. ``stage`` stays, in
version 1's words, the last stage of version 1 the step lies at or after, so
that its downgrade to version 1 (dropping the added fields) stays true.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import ClassVar

from pydantic import Field, ValidationInfo, field_validator, model_validator

from schemas.evolution import dropping_added_fields
from schemas.registry import Downgrade
from schemas.types import Line, Note, ParticipantCode, Payload, Reference

MAX_PARTIES = 200
MAX_CONTRIBUTIONS = 32


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


class TreatyStep(StrEnum):
    """A step of the approval procedure, in order (version 2 of the stage vocabulary).

    The two ways past the Chamber's first vote share one rank: the Council of
    State dispenses with the second vote, or (when it refuses) the Chamber holds
    it, at the earliest three months later.
    """

    SUBMITTED = "submitted"
    APPROVED_BY_GOVERNMENT_COUNCIL = "approved_by_government_council"
    BILL_OF_APPROVAL_TABLED = "bill_of_approval_tabled"
    COUNCIL_OF_STATE_OPINION = "council_of_state_opinion"
    APPROVED_BY_CHAMBER = "approved_by_chamber"
    SECOND_VOTE_DISPENSED = "second_vote_dispensed"
    SECOND_VOTE_HELD = "second_vote_held"
    PROMULGATED = "promulgated"
    PUBLISHED_IN_JOURNAL_OFFICIEL = "published_in_journal_officiel"
    INSTRUMENT_DEPOSITED = "instrument_deposited"
    ENTERED_INTO_FORCE = "entered_into_force"

    @property
    def rank(self) -> int:
        """Position in the procedure; the two second-vote steps share one."""
        return _STEP_RANK[self]

    @property
    def stage(self) -> TreatyStage:
        """The version 1 stage this step lies at or after."""
        return _STEP_STAGE[self]

    @classmethod
    def of_stage(cls, stage: TreatyStage) -> TreatyStep:
        """The step a version 1 stage names."""
        return cls(stage.value)


_ORDER: tuple[tuple[TreatyStep, ...], ...] = (
    (TreatyStep.SUBMITTED,),
    (TreatyStep.APPROVED_BY_GOVERNMENT_COUNCIL,),
    (TreatyStep.BILL_OF_APPROVAL_TABLED,),
    (TreatyStep.COUNCIL_OF_STATE_OPINION,),
    (TreatyStep.APPROVED_BY_CHAMBER,),
    (TreatyStep.SECOND_VOTE_DISPENSED, TreatyStep.SECOND_VOTE_HELD),
    (TreatyStep.PROMULGATED,),
    (TreatyStep.PUBLISHED_IN_JOURNAL_OFFICIEL,),
    (TreatyStep.INSTRUMENT_DEPOSITED,),
    (TreatyStep.ENTERED_INTO_FORCE,),
)
_STEP_RANK: dict[TreatyStep, int] = {
    step: rank for rank, steps in enumerate(_ORDER) for step in steps
}
_STEP_STAGE: dict[TreatyStep, TreatyStage] = {
    TreatyStep.SUBMITTED: TreatyStage.SUBMITTED,
    TreatyStep.APPROVED_BY_GOVERNMENT_COUNCIL: TreatyStage.APPROVED_BY_GOVERNMENT_COUNCIL,
    TreatyStep.BILL_OF_APPROVAL_TABLED: TreatyStage.BILL_OF_APPROVAL_TABLED,
    TreatyStep.COUNCIL_OF_STATE_OPINION: TreatyStage.BILL_OF_APPROVAL_TABLED,
    TreatyStep.APPROVED_BY_CHAMBER: TreatyStage.APPROVED_BY_CHAMBER,
    TreatyStep.SECOND_VOTE_DISPENSED: TreatyStage.APPROVED_BY_CHAMBER,
    TreatyStep.SECOND_VOTE_HELD: TreatyStage.APPROVED_BY_CHAMBER,
    TreatyStep.PROMULGATED: TreatyStage.PROMULGATED,
    TreatyStep.PUBLISHED_IN_JOURNAL_OFFICIEL: TreatyStage.PROMULGATED,
    TreatyStep.INSTRUMENT_DEPOSITED: TreatyStage.INSTRUMENT_DEPOSITED,
    TreatyStep.ENTERED_INTO_FORCE: TreatyStage.INSTRUMENT_DEPOSITED,
}
#: Every step at a rank, for who may follow whom.
STEP_RANKS: tuple[tuple[TreatyStep, ...], ...] = _ORDER


class TreatyStageReachedV2(TreatyStageReached):
    """A treaty file reached a step of the procedure (version 2: the precise step).

    ``step`` must lie at ``stage`` (:attr:`TreatyStep.stage`); a publication in the
    Journal officiel needs its ``memorial_reference``. Absent, the message says no
    more than version 1.
    """

    version: ClassVar[int] = 2

    step: TreatyStep | None = None
    memorial_reference: Reference | None = Field(
        default=None, description="Publication in the Mémorial A (Journal officiel): A-2025-512."
    )

    @model_validator(mode="after")
    def _step_at_stage(self) -> TreatyStageReachedV2:
        if self.step is not None and self.step.stage is not self.stage:
            raise ValueError(
                f"step {self.step.value} lies at stage {self.step.stage.value}, "
                f"not {self.stage.value}"
            )
        if self.step is TreatyStep.PUBLISHED_IN_JOURNAL_OFFICIEL and not self.memorial_reference:
            raise ValueError("a publication in the Journal officiel needs its memorial_reference")
        return self

    @property
    def precise_step(self) -> TreatyStep:
        """``step``, or the step ``stage`` names when the sender gave none."""
        return self.step if self.step is not None else TreatyStep.of_stage(self.stage)


class ContributionAsked(Payload):
    """One contribution the bill needs, and who must provide it."""

    #: What is asked: the explanatory memorandum, the financial sheet, the effect on
    #: national law, or any named item.
    item: Line
    from_participant: ParticipantCode


class TreatyContributionsRequested(Payload):
    """The treaties service asks ministries and authorities for what the bill needs."""

    message_type: ClassVar[str] = "treaty.contributions_requested"
    version: ClassVar[int] = 1

    treaty_reference: Reference
    items: tuple[ContributionAsked, ...] = Field(min_length=1, max_length=MAX_CONTRIBUTIONS)
    due_on: date

    @field_validator("items")
    @classmethod
    def _distinct_items(cls, value: tuple[ContributionAsked, ...]) -> tuple[ContributionAsked, ...]:
        keys = [(entry.item, entry.from_participant) for entry in value]
        if len(set(keys)) != len(keys):
            raise ValueError("the same item is asked twice of the same participant")
        return value


class TreatyContributionGiven(Payload):
    """A ministry or authority provides a contribution it was asked for."""

    message_type: ClassVar[str] = "treaty.contribution_given"
    version: ClassVar[int] = 1

    treaty_reference: Reference
    item: Line
    note: Note | None = None


class TreatyContributionWaived(Payload):
    """The treaties service goes ahead without a contribution; the reason is on record."""

    message_type: ClassVar[str] = "treaty.contribution_waived"
    version: ClassVar[int] = 1

    treaty_reference: Reference
    item: Line
    from_participant: ParticipantCode
    reason: Line


MODELS: tuple[type[Payload], ...] = (
    TreatyFileOpened,
    TreatyStageReached,
    TreatyStageReachedV2,
    TreatyContributionsRequested,
    TreatyContributionGiven,
    TreatyContributionWaived,
)
DOWNGRADES: dict[tuple[str, int], Downgrade] = {
    ("treaty.stage_reached", 2): dropping_added_fields(TreatyStageReachedV2, TreatyStageReached)
}

__all__ = [
    "DOWNGRADES",
    "MAX_CONTRIBUTIONS",
    "MODELS",
    "STEP_RANKS",
    "ContributionAsked",
    "TreatyContributionGiven",
    "TreatyContributionWaived",
    "TreatyContributionsRequested",
    "TreatyFileOpened",
    "TreatyKind",
    "TreatyStage",
    "TreatyStageReached",
    "TreatyStageReachedV2",
    "TreatyStep",
    "next_stage",
    "next_stages",
]
