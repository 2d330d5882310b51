"""The message families: every example round-trips, every domain rule refuses with a path."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from schemas.catalog import FAMILIES, default_registry
from schemas.envelope import new_envelope
from schemas.errors import ContractError, ReasonCode
from schemas.examples import example_envelope, example_keys, example_payload
from schemas.export import envelope_schema
from schemas.treaties import TreatyStage, next_stage, next_stages

REGISTRY = default_registry()
KEYS = sorted(REGISTRY.models)
ORIGINAL = "0b6f2c1e-3c1a-4a51-9d1e-5f3f0c2a7b10"

Change = Callable[[dict[str, Any]], None]


def _set(**fields: Any) -> Change:
    return lambda payload: payload.update(fields)


def _drop(name: str) -> Change:
    return lambda payload: payload.pop(name)


def _refusal(type_: str, version: int, change: Change) -> ContractError:
    data = example_envelope(type_, version, sender="secretariat").to_jsonable()
    change(data["payload"])
    with pytest.raises(ContractError) as caught:
        REGISTRY.decode(json.dumps(data).encode())
    return caught.value


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


class TestCatalog:
    def test_every_registered_version_has_an_example(self) -> None:
        """The examples cover exactly the registered (type, version) pairs."""
        assert example_keys() == KEYS

    def test_every_family_module_says_what_it_is_for(self) -> None:
        """Each family module has a docstring and exports its models."""
        for family in FAMILIES:
            assert family.__doc__, family.__name__
            assert family.MODELS, family.__name__

    def test_unknown_example_is_a_key_error(self) -> None:
        """Asking for an example that does not exist names it."""
        with pytest.raises(KeyError, match=re.escape("no example for chamber.rumour v1")):
            example_payload("chamber.rumour", 1)


class TestExamples:
    @pytest.mark.parametrize(("type_", "version"), KEYS)
    def test_example_round_trips(self, type_: str, version: int) -> None:
        """The example decodes from its own encoding to an equal, identically typed envelope."""
        envelope = new_envelope(example_payload(type_, version), sender="secretariat")
        decoded = REGISTRY.decode(envelope.encode())
        assert decoded == envelope
        assert type(decoded.payload) is REGISTRY.models[(type_, version)]
        assert decoded.encode() == envelope.encode()

    @pytest.mark.parametrize(("type_", "version"), KEYS)
    def test_strings_and_arrays_are_bounded(self, type_: str, version: int) -> None:
        """Every free string has a maximum length and every array a maximum size."""
        schema = envelope_schema(REGISTRY.models[(type_, version)])
        for node in _walk(schema):
            if node.get("type") == "string" and not {"enum", "const", "format"} & set(node):
                assert "maxLength" in node, node
            if node.get("type") == "array":
                assert "maxItems" in node, node


INVALID: list[tuple[str, int, Change, ReasonCode, str]] = [
    (
        "correspondence.letter",
        1,
        _set(attachments=[{"name": "a.pdf", "sha256": "XYZ", "size": 1}]),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.attachments.0.sha256",
    ),
    (
        "correspondence.letter",
        1,
        _set(
            attachments=[
                {"name": "a.pdf", "sha256": "0" * 64, "size": 1},
                {"name": "a.pdf", "sha256": "1" * 64, "size": 2},
            ]
        ),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.attachments",
    ),
    (
        "correspondence.note",
        1,
        _set(registry_reference="MAEE SG 14"),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.registry_reference",
    ),
    (
        "correspondence.note",
        1,
        _set(in_reply_to="the letter of last week"),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.in_reply_to",
    ),
    (
        "treaty.file_opened",
        1,
        _set(parties=["Luxembourg", "Slovénie", "Croatie"]),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.parties",
    ),
    (
        "treaty.stage_reached",
        1,
        _set(stage="blessed_by_the_pope"),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.stage",
    ),
    (
        "treaty.stage_reached",
        1,
        _drop("bill_number"),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.bill_number",
    ),
    (
        "treaty.stage_reached",
        1,
        _set(stage="instrument_deposited"),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.depositary",
    ),
    (
        "council.agenda_item_submitted",
        1,
        _set(urgent="maybe"),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.urgent",
    ),
    (
        "council.decision",
        1,
        _set(decision="postponed"),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.decision",
    ),
    (
        "council.decision",
        1,
        _set(deferred_to="2025-07-04"),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.deferred_to",
    ),
    (
        "council.decision",
        1,
        _set(decision="deferred", deferred_to="2025-06-13"),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.deferred_to",
    ),
    (
        "chamber.question",
        1,
        _set(answer_deadline="2025-02-02"),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.answer_deadline",
    ),
    (
        "chamber.answer",
        1,
        _set(text=""),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.text",
    ),
    (
        "chamber.vote",
        1,
        _set(votes_against=-1),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.votes_against",
    ),
    (
        "chamber.vote",
        1,
        _set(votes_for="56"),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.votes_for",
    ),
    (
        "chamber.vote",
        1,
        _set(votes_for=30, votes_against=30, abstentions=0),
        ReasonCode.SCHEMA_VIOLATION,
        "payload",
    ),
    (
        "chamber.vote",
        1,
        _set(votes_for=50, votes_against=11, abstentions=0),
        ReasonCode.SCHEMA_VIOLATION,
        "payload",
    ),
    (
        "palace.audience_request",
        1,
        _set(preferred_dates=[]),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.preferred_dates",
    ),
    (
        "palace.letters_of_credence",
        1,
        _drop("sending_state"),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.sending_state",
    ),
    (
        "palace.promulgation",
        1,
        _set(published_on="2025-11-01"),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.published_on",
    ),
    (
        "mission.cable",
        1,
        _set(caveats=["EXDIS"]),
        ReasonCode.UNKNOWN_FIELD,
        "payload.caveats",
    ),
    (
        "mission.cable",
        2,
        _set(tags=["prel"]),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.tags.0",
    ),
    (
        "mission.security_incident",
        1,
        _set(occurred_at="2025-04-02T21:40:00"),
        ReasonCode.MISSING_TIMEZONE,
        "payload.occurred_at",
    ),
    (
        "mission.security_incident",
        1,
        _set(severity="catastrophic"),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.severity",
    ),
    (
        "mission.consular_case",
        1,
        _set(citizen_name="Jean Dupont"),
        ReasonCode.UNKNOWN_FIELD,
        "payload.citizen_name",
    ),
    (
        "icc.press_release",
        1,
        _set(languages=["fr", "it"]),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.languages.1",
    ),
    (
        "icc.press_release",
        1,
        _set(languages=["fr", "fr"]),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.languages",
    ),
    (
        "committee.expense_committed",
        1,
        _set(amount=12.5),  # a JSON number: a float cannot hold a cent exactly
        ReasonCode.SCHEMA_VIOLATION,
        "payload.amount",
    ),
    (
        "committee.expense_paid",
        1,
        _set(amount="12.345"),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.amount",
    ),
    (
        "icc.briefing",
        1,
        _set(key_points=["point"] * 31),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.key_points",
    ),
    (
        "legal.opinion_requested",
        1,
        _set(due_on="2025-02-30"),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.due_on",
    ),
    (
        "legal.opinion_given",
        1,
        _drop("request_message_id"),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.request_message_id",
    ),
    (
        "ona.report",
        1,
        _set(period_end="2024-12-31"),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.period_end",
    ),
    (
        "ona.report",
        1,
        _set(figures=[{"label": "x", "value": 1}, {"label": "x", "value": 2}]),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.figures",
    ),
    (
        "receipt.received",
        1,
        _drop("original_message_id"),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.original_message_id",
    ),
    (
        "receipt.registered",
        1,
        _set(registry_number=""),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.registry_number",
    ),
    (
        "receipt.answered",
        1,
        _set(answer_message_id=ORIGINAL),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.answer_message_id",
    ),
    (
        "procedure.escalation",
        1,
        _set(waiting_on=[]),
        ReasonCode.SCHEMA_VIOLATION,
        "payload.waiting_on",
    ),
    (
        "procedure.reminder",
        1,
        _set(due_at="2025-03-14T17:00:00"),
        ReasonCode.MISSING_TIMEZONE,
        "payload.due_at",
    ),
]


class TestDomainRules:
    @pytest.mark.parametrize(
        ("type_", "version", "change", "reason", "path"),
        INVALID,
        ids=[f"{case[0]}-{case[4]}" for case in INVALID],
    )
    def test_refused_with_reason_and_path(
        self, type_: str, version: int, change: Change, reason: ReasonCode, path: str
    ) -> None:
        """Breaking a family's rule is refused with its specific reason at the field's path."""
        error = _refusal(type_, version, change)
        assert (error.reason, error.path) == (reason, path)

    def test_every_family_has_an_invalid_case(self) -> None:
        """Each family module is exercised by at least one refusal above."""
        covered = {case[0].split(".")[0] for case in INVALID}
        types = {type_.split(".")[0] for type_, _ in KEYS}
        assert covered == types


class TestTreatyStages:
    def test_stages_follow_the_ratification_procedure(self) -> None:
        """From submission to deposit, each stage follows the one before."""
        order = [TreatyStage.SUBMITTED]
        while (following := next_stage(order[-1])) is not None:
            order.append(following)
        assert order == [
            TreatyStage.SUBMITTED,
            TreatyStage.APPROVED_BY_GOVERNMENT_COUNCIL,
            TreatyStage.BILL_OF_APPROVAL_TABLED,
            TreatyStage.APPROVED_BY_CHAMBER,
            TreatyStage.PROMULGATED,
            TreatyStage.INSTRUMENT_DEPOSITED,
        ]

    def test_next_stages_are_those_still_ahead(self) -> None:
        """next_stages lists the remaining stages in order, none after the last."""
        assert next_stages(TreatyStage.APPROVED_BY_CHAMBER) == (
            TreatyStage.PROMULGATED,
            TreatyStage.INSTRUMENT_DEPOSITED,
        )
        assert next_stages(TreatyStage.INSTRUMENT_DEPOSITED) == ()

    def test_rank_orders_stages(self) -> None:
        """A later stage has a higher rank."""
        assert TreatyStage.SUBMITTED.rank == 0
        assert TreatyStage.PROMULGATED.rank > TreatyStage.APPROVED_BY_CHAMBER.rank
