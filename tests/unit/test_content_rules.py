"""Escalation by content: rule conditions on payload fields, checked at start-up, pure at routing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liaison.core.decide import Decision, Incoming, RoutingContext, decide
from liaison.core.rules import Rules
from liaison.directory import load_directory
from liaison.errors import ConfigError
from schemas import wire
from schemas.catalog import default_registry
from schemas.envelope import new_envelope
from schemas.examples import example_payload
from schemas.missions import ConsularCaseKind, Severity
from schemas.types import Precedence

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DIRECTORY = load_directory(None)
CTX = RoutingContext(
    registry=default_registry(),
    directory=DIRECTORY,
    rules=Rules.load(None, DIRECTORY),
    hub_user="liaison-hub",
    receipt_secret=b"s" * 32,
)


def incident(severity: Severity, precedence: Precedence = Precedence.ROUTINE) -> bytes:
    payload = example_payload("mission.security_incident", 1).model_copy(
        update={"severity": severity}
    )
    return new_envelope(
        payload,
        sender="emb-berlin",
        recipients=("gs-security",),
        precedence=precedence,
        created_at=NOW - timedelta(seconds=1),
    ).encode()


def route(body: bytes, user: str) -> Decision:
    return decide(Incoming(body=body, user_id=user, routing_key="rk"), CTX, now=NOW)


def copies(decision: Decision) -> dict[str, Any]:
    return {
        wire.delivery_recipient(d.routing_key): d.headers.get(wire.H_PRECEDENCE)
        for d in decision.deliveries
    }


@pytest.mark.parametrize("severity", [Severity.HIGH, Severity.CRITICAL])
def test_serious_incident_reaches_duty_officer_and_sg_as_flash(severity: Severity) -> None:
    delivered = copies(route(incident(severity), "emb-berlin"))
    assert {"duty-officer", "gs", "gs-security"} <= set(delivered)
    assert set(delivered.values()) == {"FLASH"}
    # Raised to FLASH: every copy travels in its recipient's urgent band.
    keys = {d.routing_key for d in route(incident(severity), "emb-berlin").deliveries}
    assert keys == {f"{code}.urgent" for code in delivered}


@pytest.mark.parametrize("relay", [wire.H_RETRY_OF, wire.H_REPLAY_OF])
def test_a_targeted_retry_or_replay_of_a_serious_incident_is_flash_again(relay: str) -> None:
    """An operator retries the duty officer's failed copy (or replays it to one
    recipient): that copy alone goes, raised to FLASH as the first time."""
    body = incident(Severity.CRITICAL)
    message_id = route(body, "emb-berlin").message_id
    to = wire.H_RETRY_TO if relay == wire.H_RETRY_OF else wire.H_REPLAY_TO
    headers = {relay: message_id, wire.H_OPERATION: "op-1", to: "duty-officer"}
    decision = decide(
        Incoming(body=body, user_id="liaison-hub", routing_key="rk", headers=headers),
        CTX,
        now=NOW,
    )
    assert copies(decision) == {"duty-officer": "FLASH"}
    assert [d.routing_key for d in decision.deliveries] == ["duty-officer.urgent"]


@pytest.mark.parametrize("severity", [Severity.LOW, Severity.MEDIUM])
def test_minor_incident_goes_where_it_always_went(severity: Severity) -> None:
    delivered = copies(route(incident(severity), "emb-berlin"))
    assert set(delivered) == {"gs-security"}
    assert set(delivered.values()) == {None}


def test_precedence_is_never_lowered_by_a_rule() -> None:
    consular = example_payload("mission.consular_case", 1).model_copy(
        update={"kind": ConsularCaseKind.ARREST}
    )
    body = new_envelope(
        consular,
        sender="emb-paris",
        recipients=("dir-consular",),
        precedence=Precedence.FLASH,
        created_at=NOW - timedelta(seconds=1),
    ).encode()
    delivered = copies(route(body, "emb-paris"))
    assert set(delivered) == {"dir-consular", "consular-duty"}
    assert set(delivered.values()) == {None}  # FLASH already: nothing raised


def test_detained_national_goes_to_the_consular_duty_line() -> None:
    for kind, expected in ((ConsularCaseKind.ARREST, True), (ConsularCaseKind.PASSPORT, False)):
        consular = example_payload("mission.consular_case", 1).model_copy(update={"kind": kind})
        body = new_envelope(
            consular,
            sender="emb-paris",
            recipients=("dir-consular",),
            created_at=NOW - timedelta(seconds=1),
        ).encode()
        delivered = copies(route(body, "emb-paris"))
        assert ("consular-duty" in delivered) is expected
        assert (delivered["dir-consular"] == "IMMEDIATE") is expected


def test_a_sender_cannot_set_the_precedence_header_itself() -> None:
    decision = decide(
        Incoming(
            body=incident(Severity.LOW),
            user_id="emb-berlin",
            routing_key="rk",
            headers={wire.H_PRECEDENCE: "FLASH"},
        ),
        CTX,
        now=NOW,
    )
    assert set(copies(decision).values()) == {None}


RULE = """
[[rule]]
name = "{name}"
types = ["{type}"]
when = [{{ field = "{field}", op = "{op}", value = {value} }}]
copy_to = ["duty-officer"]
"""


@pytest.mark.parametrize(
    ("type_", "field", "op", "value", "message"),
    [
        ("mission.security_incident", "severity_level", ">=", '"high"', "has no field"),
        ("mission.security_incident", "severity", ">=", '"severe"', "not a valid value"),
        ("mission.security_incident", "location", ">=", '"x"', "needs a field with an order"),
        ("mission.*", "severity", "==", '"high"', "names its types exactly"),
        ("mission.cable", "severity", "==", '"high"', "mission.cable v1 has no field"),
        ("mission.consular_case", "kind", "in", '"arrest"', "needs a list"),
    ],
)
def test_a_condition_the_type_cannot_satisfy_stops_the_hub_naming_the_rule(
    type_: str, field: str, op: str, value: str, message: str
) -> None:
    text = RULE.format(name="bad-rule", type=type_, field=field, op=op, value=value)
    with pytest.raises(ConfigError, match="rule 'bad-rule'") as info:
        Rules.from_toml_text(text, DIRECTORY)
    assert message in str(info.value)


def test_in_takes_a_list() -> None:
    text = RULE.format(
        name="some-kinds",
        type="mission.consular_case",
        field="kind",
        op="in",
        value='["arrest", "death"]',
    )
    rules = Rules.from_toml_text(text, DIRECTORY)
    assert len(rules) == 1


def test_messages_no_condition_concerns_cost_one_lookup() -> None:
    letter = new_envelope(
        example_payload("correspondence.letter", 1), sender="gs", recipients=("palace",)
    )
    assert CTX.rules.by_content(letter) == ((), False, letter.precedence)


@settings(max_examples=60, deadline=None)
@given(
    severity=st.sampled_from(list(Severity)),
    precedence=st.sampled_from(list(Precedence)),
)
def test_property_raised_iff_serious_and_not_already_flash(
    severity: Severity, precedence: Precedence
) -> None:
    delivered = copies(route(incident(severity, precedence), "emb-berlin"))
    serious = severity in (Severity.HIGH, Severity.CRITICAL)
    assert ({"duty-officer", "gs"} <= set(delivered)) is serious
    assert ("duty-officer" in delivered) is serious
    raised = serious and precedence is not Precedence.FLASH
    assert set(delivered.values()) == ({"FLASH"} if raised else {None})


def test_serve_refuses_to_start_naming_the_rule(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from liaison.cli import main

    rules = tmp_path / "rules.toml"
    rules.write_text(
        RULE.format(
            name="typo-rule",
            type="mission.security_incident",
            field="severty",
            op=">=",
            value='"high"',
        ),
        encoding="utf-8",
    )
    done = CliRunner().invoke(
        main,
        ["serve"],
        env={
            "LIAISON_RULES_PATH": str(rules),
            "LIAISON_HTTP_PORT": "0",
            "LIAISON_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/none",
        },
    )
    assert done.exit_code == 1
    assert "rule 'typo-rule'" in done.output
    assert "has no field 'severty'" in done.output
