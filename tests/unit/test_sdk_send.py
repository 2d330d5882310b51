"""``liaison send`` without a broker: message files, flags, validation before anything leaves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from liaison.cli import main
from producers.cli import INVALID, send
from producers.spec import build_envelope, envelope_data, set_field, spec_from_flags
from schemas.catalog import default_registry
from schemas.errors import ContractError, ReasonCode

LETTER = {
    "registry_reference": "MAEE/SG/2025/1",
    "subject": "Accord culturel",
    "body": "Monsieur le Ministre, ...",
    "addressee": "Monsieur le Ministre de la Culture",
    "signatory": "Le Secrétaire général",
}


def _spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": "correspondence.letter",
        "recipients": ["gs-archives"],
        "payload": dict(LETTER),
    }
    spec.update(changes)
    return spec


def _run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(send, list(args), env={"LIAISON_PARTICIPANT": "gs", **(env or {})})


class TestSpec:
    def test_newest_version_by_default(self) -> None:
        """Without a version the newest registered one is used."""
        data = envelope_data(
            {"type": "mission.cable", "payload": {}}, sender="gs", registry=default_registry()
        )
        assert data["schema_version"] == 2

    def test_builds_a_valid_envelope(self) -> None:
        """A correct spec becomes the envelope the router will accept."""
        envelope = build_envelope(_spec(), sender="gs", registry=default_registry())
        assert envelope.sender == "gs"
        assert envelope.recipients == ("gs-archives",)
        assert envelope.payload.model_dump(exclude_none=True, exclude_defaults=True) == LETTER

    @pytest.mark.parametrize(
        ("spec", "reason", "path"),
        [
            (_spec(type="correspondence.leter"), ReasonCode.UNKNOWN_TYPE, "type"),
            (_spec(colour="blue"), ReasonCode.UNKNOWN_FIELD, "colour"),
            (_spec(version=9), ReasonCode.UNSUPPORTED_VERSION, "schema_version"),
            (
                _spec(payload={**LETTER, "subject": ""}),
                ReasonCode.SCHEMA_VIOLATION,
                "payload.subject",
            ),
            (_spec(payload={**LETTER, "seal": 1}), ReasonCode.UNKNOWN_FIELD, "payload.seal"),
            (_spec(recipients=["Not A Code"]), ReasonCode.SCHEMA_VIOLATION, "recipients.0"),
            ({"type": "correspondence.letter"}, ReasonCode.SCHEMA_VIOLATION, "payload"),
        ],
    )
    def test_errors_name_the_field(
        self, spec: dict[str, Any], reason: ReasonCode, path: str
    ) -> None:
        """Every refusal carries the reason and the dotted path of the field at fault."""
        with pytest.raises(ContractError) as caught:
            build_envelope(spec, sender="gs", registry=default_registry())
        assert (caught.value.reason, caught.value.path) == (reason, path)

    def test_fields_text_json_and_nesting(self) -> None:
        """key=text is a string, key:=json any JSON value, dots nest objects."""
        payload: dict[str, Any] = {}
        set_field(payload, "subject=42")
        set_field(payload, "size:=42")
        set_field(payload, "a.b.c=deep=er")
        assert payload == {"subject": "42", "size": 42, "a": {"b": {"c": "deep=er"}}}
        with pytest.raises(ContractError, match="KEY=TEXT"):
            set_field(payload, "no-equals")
        with pytest.raises(ContractError, match="needs JSON"):
            set_field(payload, "x:={oops")

    def test_flags_overlay_payload_json(self) -> None:
        """--field values apply on top of --payload-json."""
        spec = spec_from_flags(
            type_="correspondence.letter",
            recipients=["gs-archives"],
            payload_json=json.dumps({**LETTER, "subject": "old"}),
            fields=["subject=new"],
        )
        assert spec["payload"]["subject"] == "new"
        assert spec["recipients"] == ["gs-archives"]


class TestCommand:
    def test_is_a_liaison_command(self) -> None:
        """`liaison send` is registered on the hub's CLI."""
        assert main.commands["send"] is send

    def test_dry_run_from_a_json_file(self, tmp_path: Path) -> None:
        """A JSON file validates and prints the envelope it would send."""
        path = tmp_path / "letter.json"
        path.write_text(json.dumps(_spec()), encoding="utf-8")
        result = _run("--file", str(path), "--dry-run")
        assert result.exit_code == 0, result.output
        envelope = json.loads(result.output)
        assert envelope["sender"] == "gs"
        assert envelope["payload"]["subject"] == "Accord culturel"

    def test_dry_run_from_a_toml_file_with_overrides(self, tmp_path: Path) -> None:
        """TOML works too; --to and --precedence override the file."""
        path = tmp_path / "letter.toml"
        fields = "\n".join(f'{key} = "{value}"' for key, value in LETTER.items())
        path.write_text(
            f'type = "correspondence.letter"\nrecipients = ["gs"]\n[payload]\n{fields}\n',
            encoding="utf-8",
        )
        result = _run("--file", str(path), "--to", "gs-legal", "--precedence", "FLASH", "--dry-run")
        assert result.exit_code == 0, result.output
        envelope = json.loads(result.output)
        assert envelope["recipients"] == ["gs-legal"]
        assert envelope["precedence"] == "FLASH"

    def test_dry_run_from_flags(self) -> None:
        """--type, --to and --field describe a message without a file."""
        args = ["--type", "correspondence.letter", "--to", "gs-archives", "--dry-run"]
        for key, value in LETTER.items():
            args += ["--field", f"{key}={value}"]
        result = _run(*args)
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["type"] == "correspondence.letter"

    def test_invalid_file_is_refused_with_the_field_path(self, tmp_path: Path) -> None:
        """Exit status 2, the path of the bad field, and nothing sent."""
        path = tmp_path / "bad.json"
        payload = {k: v for k, v in LETTER.items() if k != "addressee"}
        path.write_text(json.dumps(_spec(payload=payload)), encoding="utf-8")
        result = _run("--file", str(path), "--dry-run")
        assert result.exit_code == INVALID
        assert "payload.addressee" in result.output
        assert "nothing was sent" in result.output

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            ([], "either --file or --type"),
            (["--type", "x.y", "--file", "f.json"], "either --file or --type"),
        ],
    )
    def test_usage_errors(self, args: list[str], message: str) -> None:
        """Contradictory or missing message sources are refused with status 2."""
        result = _run(*args, "--dry-run")
        assert result.exit_code == INVALID
        assert message in result.output

    def test_receipt_needs_its_delivery_token(self) -> None:
        """A receipt without --receipt-token is refused before publishing (the hub would refuse it); with one it validates."""
        payload = json.dumps(
            {
                "original_message_id": "fbf4a496-674f-45c2-937c-1bed13ccef4a",
                "received_at": "2026-11-30T03:00:00Z",
            }
        )
        args = ["--type", "receipt.received", "--to", "gs", "--payload-json", payload, "--dry-run"]
        refused = _run(*args)
        assert refused.exit_code == INVALID
        assert "--receipt-token" in refused.output and "nothing was sent" in refused.output
        assert _run(*args, "--receipt-token", "0" * 32).exit_code == 0
        letter = ["--type", "correspondence.letter", "--payload-json", json.dumps(LETTER)]
        misplaced = _run(*letter, "--to", "gs", "--receipt-token", "x", "--dry-run")
        assert misplaced.exit_code == INVALID and "receipt.* message only" in misplaced.output

    def test_missing_participant_settings_are_named(self) -> None:
        """Without credentials or LIAISON_AMQP_URL the error says what to set."""
        args = ["--type", "correspondence.letter", "--payload-json", json.dumps(LETTER)]
        result = CliRunner().invoke(
            send, args, env={"LIAISON_PARTICIPANT": "gs", "LIAISON_AMQP_URL": ""}
        )
        assert result.exit_code == INVALID
        assert "LIAISON_AMQP_URL" in result.output
