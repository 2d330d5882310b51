"""Schema evolution: mission.cable v2 reaches v1-only consumers, and the rule holds everywhere."""

from __future__ import annotations

import re
from datetime import date

import pytest

from schemas.catalog import default_registry
from schemas.envelope import Envelope
from schemas.errors import ContractError, ReasonCode
from schemas.examples import example_envelope
from schemas.missions import CableV1, CableV2, downgrade_cable
from schemas.treaties import TreatyStage, TreatyStageReached, TreatyStageReachedV2, TreatyStep
from schemas.types import Payload, Precedence

REGISTRY = default_registry()
SIGNATURE = "B" * 86 + "=="


def _signed_cable(version: int) -> Envelope[Payload]:
    envelope = example_envelope(
        "mission.cable", version, sender="mission-bru", precedence=Precedence.IMMEDIATE
    )
    return envelope.with_signature(SIGNATURE)


class TestAdapt:
    def test_v1_consumer_gets_v1_without_added_fields(self) -> None:
        """A consumer knowing only v1 receives a v1 cable: caveats and references dropped."""
        original = _signed_cable(2)
        adapted = REGISTRY.adapt(original, known=[1])
        assert adapted.schema_version == 1
        assert type(adapted.payload) is CableV1
        assert "caveats" not in adapted.payload.model_dump()
        assert "references" not in adapted.to_jsonable()["payload"]
        assert adapted.payload.model_dump() == original.payload.model_dump(
            exclude={"caveats", "references"}
        )

    def test_downgrade_drops_the_signature(self) -> None:
        """The adapted envelope carries no signature, since it covered the v2 bytes."""
        adapted = REGISTRY.adapt(_signed_cable(2), known=[1])
        assert adapted.signature is None
        assert "signature" not in adapted.to_jsonable()

    def test_downgrade_keeps_the_envelope(self) -> None:
        """Id, sender, precedence and creation time survive the downgrade."""
        original = _signed_cable(2)
        adapted = REGISTRY.adapt(original, known=[1])
        assert adapted.message_id == original.message_id
        assert adapted.sender == original.sender
        assert adapted.precedence is Precedence.IMMEDIATE
        assert adapted.created_at == original.created_at

    def test_adapted_envelope_is_a_valid_v1_message(self) -> None:
        """What a v1 consumer receives decodes as mission.cable v1."""
        adapted = REGISTRY.adapt(_signed_cable(2), known=[1])
        assert REGISTRY.decode(adapted.encode()) == adapted

    @pytest.mark.parametrize("known", [[2], [1, 2], [2, 1, 7]])
    def test_v2_consumer_gets_v2_unchanged(self, known: list[int]) -> None:
        """A consumer that knows v2 receives the very envelope, signature included."""
        original = _signed_cable(2)
        assert REGISTRY.adapt(original, known=known) is original

    def test_v1_message_to_v2_only_consumer_is_unsupported(self) -> None:
        """An older message than any version the consumer knows is unsupported_version."""
        with pytest.raises(ContractError) as caught:
            REGISTRY.adapt(_signed_cable(1), known=[2])
        assert caught.value.reason is ReasonCode.UNSUPPORTED_VERSION
        assert caught.value.path == "schema_version"

    def test_v1_message_to_v1_consumer_is_unchanged(self) -> None:
        """Nothing is adapted when the consumer knows the message's version."""
        original = _signed_cable(1)
        assert REGISTRY.adapt(original, known=[1, 2]) is original

    def test_downgrade_refuses_another_payload(self) -> None:
        """The cable downgrade is only for mission.cable v2."""
        with pytest.raises(TypeError, match=re.escape("expected a mission.cable v2")):
            downgrade_cable(example_envelope("mission.cable", 1, sender="x-y").payload)


class TestEvolutionRule:
    @pytest.mark.parametrize(("type_", "version"), sorted(REGISTRY.downgrades))
    def test_newer_version_only_adds_optional_fields(self, type_: str, version: int) -> None:
        """Version N+1 keeps every field of N unchanged and adds only fields with defaults."""
        older = REGISTRY.models[(type_, version - 1)].model_fields
        newer = REGISTRY.models[(type_, version)].model_fields
        for name, field in older.items():
            assert name in newer, f"{name} removed"
            assert newer[name].annotation == field.annotation, f"{name} retyped"
            assert newer[name].metadata == field.metadata, f"{name} constraints changed"
        for name in newer.keys() - older.keys():
            assert not newer[name].is_required(), f"{name} added as required"

    @pytest.mark.parametrize(
        ("type_", "version"),
        [key for key in sorted(REGISTRY.models) if key[1] > 1],
    )
    def test_every_later_version_has_a_downgrade(self, type_: str, version: int) -> None:
        """No version beyond 1 is registered without its way back."""
        assert (type_, version) in REGISTRY.downgrades

    def test_v1_cable_data_is_a_valid_v2_cable(self) -> None:
        """Since v2 only adds optional fields, any v1 payload is also valid as v2."""
        v1 = example_envelope("mission.cable", 1, sender="mission-bru").payload
        assert (
            CableV2.model_validate(v1.model_dump()).model_dump(exclude={"caveats", "references"})
            == v1.model_dump()
        )


class TestTreatyVersions:
    def test_council_of_state_opinion_reaches_v1_as_the_tabled_stage(self) -> None:
        """A v1 consumer sees a v2 Council of State opinion as the file still at the tabled bill."""
        original = example_envelope("treaty.stage_reached", 2, sender="council-of-state")
        adapted = REGISTRY.adapt(original, known=[1])
        assert adapted.schema_version == 1
        assert type(adapted.payload) is TreatyStageReached
        assert adapted.payload.stage is TreatyStage.BILL_OF_APPROVAL_TABLED
        assert "step" not in adapted.to_jsonable()["payload"]

    def test_step_must_lie_at_its_stage(self) -> None:
        """A step declared at another v1 stage than its own is refused with the reason."""
        with pytest.raises(ValueError, match="lies at stage promulgated"):
            TreatyStageReachedV2(
                treaty_reference="TR-1",
                stage=TreatyStage.SUBMITTED,
                step=TreatyStep.PUBLISHED_IN_JOURNAL_OFFICIEL,
                reached_on=date(2025, 11, 7),
                memorial_reference="A-2025-512",
            )

    def test_publication_needs_its_memorial_reference(self) -> None:
        """A publication in the Journal officiel without its Mémorial reference is refused."""
        with pytest.raises(ValueError, match="memorial_reference"):
            TreatyStageReachedV2(
                treaty_reference="TR-1",
                stage=TreatyStage.PROMULGATED,
                step=TreatyStep.PUBLISHED_IN_JOURNAL_OFFICIEL,
                reached_on=date(2025, 11, 7),
            )

    @pytest.mark.parametrize("type_", ["council.decision", "chamber.vote", "palace.promulgation"])
    def test_treaty_reference_is_dropped_for_v1_consumers(self, type_: str) -> None:
        """The institutions' v2 messages reach v1 consumers without the treaty reference."""
        original = example_envelope(type_, 2, sender="x-y")
        adapted = REGISTRY.adapt(original, known=[1])
        assert "treaty_reference" not in adapted.to_jsonable()["payload"]
        assert REGISTRY.decode(adapted.encode()) == adapted

    def test_every_step_has_a_rank_and_the_second_votes_share_one(self) -> None:
        """The procedure is ordered; dispensation and a held second vote are alternatives."""
        assert TreatyStep.SECOND_VOTE_DISPENSED.rank == TreatyStep.SECOND_VOTE_HELD.rank
        ranks = [step.rank for step in TreatyStep]
        assert ranks == sorted(ranks)
