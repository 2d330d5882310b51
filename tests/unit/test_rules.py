"""Routing rules: the bundled ones, how they match, and how a broken file is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from liaison.core.rules import Rules
from liaison.directory import Directory, load_directory
from liaison.errors import ConfigError
from schemas.types import Classification, Precedence

ROUTINE, FLASH = Precedence.ROUTINE, Precedence.FLASH
INTERNAL = Classification.INTERNAL


@pytest.fixture(scope="module")
def directory() -> Directory:
    """The bundled directory."""
    return load_directory()


@pytest.fixture(scope="module")
def rules(directory: Directory) -> Rules:
    """The bundled rules."""
    return Rules.load(None, directory)


class TestBundledRules:
    """The rules shipped with the hub."""

    def test_validate_against_the_directory(self, rules: Rules) -> None:
        """They load, and every code they name is in the directory."""
        assert len(rules) >= 4

    @pytest.mark.parametrize("type_", ["treaty.file_opened", "treaty.stage_reached"])
    def test_treaty_files_copied_to_legal(self, rules: Rules, type_: str) -> None:
        """Every treaty message also goes to the legal service (and the procedures service,
        which follows the file)."""
        extra = rules.extra_recipients(type_, "gs-treaties", ROUTINE, INTERNAL)
        assert extra == ("gs-legal", "gs-procedures")

    def test_flash_cable_to_duty_officer(self, rules: Rules) -> None:
        """A FLASH cable also goes to the duty officer (and the procedures service, to chase it)."""
        extra = rules.extra_recipients("mission.cable", "emb-berlin", FLASH, INTERNAL)
        assert extra == ("duty-officer", "gs-procedures")

    @pytest.mark.parametrize(
        "precedence", [Precedence.ROUTINE, Precedence.PRIORITY, Precedence.IMMEDIATE]
    )
    def test_other_cables_not_to_duty_officer(self, rules: Rules, precedence: Precedence) -> None:
        """Only FLASH wakes the duty officer."""
        assert rules.extra_recipients("mission.cable", "emb-berlin", precedence, INTERNAL) == ()

    def test_security_incident_to_security(self, rules: Rules) -> None:
        """A security incident at a mission also goes to the missions' security service."""
        extra = rules.extra_recipients("mission.security_incident", "emb-paris", ROUTINE, INTERNAL)
        assert extra == ("gs-security",)

    def test_chamber_question_to_gs(self, rules: Rules) -> None:
        """A parliamentary question also goes to the General Secretariat (and the procedures
        service, which follows it to its deadline)."""
        extra = rules.extra_recipients("chamber.question", "chamber", ROUTINE, INTERNAL)
        assert extra == ("gs", "gs-procedures")

    @pytest.mark.parametrize("type_", ["receipt.received", "receipt.answered"])
    def test_receipts_go_only_to_the_procedures_service(self, rules: Rules, type_: str) -> None:
        """Receipts go to their explicit recipients and the procedures service, which chases them."""
        assert rules.extra_recipients(type_, "palace", FLASH, INTERNAL) == ("gs-procedures",)

    def test_registry_copy_alone_does_not_address_a_letter(self, rules: Rules) -> None:
        """The procedures service's copies are observers: they do not make a message deliverable."""
        assert not rules.addresses("correspondence.letter", "gs", ROUTINE, INTERNAL)
        assert rules.addresses("chamber.question", "chamber", ROUTINE, INTERNAL)

    def test_correspondence_is_registered(self, rules: Rules) -> None:
        """Every letter, whoever sends it, gets a copy to the procedures service (the registry)."""
        extra = rules.extra_recipients("correspondence.letter", "palace", ROUTINE, INTERNAL)
        assert extra == ("gs-procedures",)


def _rules(text: str, directory: Directory) -> Rules:
    return Rules.from_toml_text(text, directory, source="rules-test.toml")


class TestMatching:
    """Conditions, order, duplicates and the sender."""

    def test_conditions_all_apply(self, directory: Directory) -> None:
        """Senders, precedence and min_classification must all match."""
        rules = _rules(
            """
            [[rule]]
            name = "secret-cables"
            types = ["mission.*"]
            senders = ["emb-berlin"]
            precedence = ["FLASH", "IMMEDIATE"]
            min_classification = "RESTRICTED"
            copy_to = ["gs"]
            """,
            directory,
        )
        restricted = Classification.RESTRICTED
        assert rules.extra_recipients("mission.cable", "emb-berlin", FLASH, restricted) == ("gs",)
        confidential = Classification.CONFIDENTIAL
        assert rules.extra_recipients("mission.cable", "emb-berlin", FLASH, confidential) == ("gs",)
        assert rules.extra_recipients("mission.cable", "emb-paris", FLASH, restricted) == ()
        assert rules.extra_recipients("mission.cable", "emb-berlin", ROUTINE, restricted) == ()
        assert rules.extra_recipients("mission.cable", "emb-berlin", FLASH, INTERNAL) == ()
        assert rules.extra_recipients("icc.briefing", "emb-berlin", FLASH, restricted) == ()

    def test_ordered_without_repeats_and_never_the_sender(self, directory: Directory) -> None:
        """Copies come in rule order, once each, and never back to the sender."""
        rules = _rules(
            """
            [[rule]]
            name = "first"
            types = ["treaty.*"]
            copy_to = ["gs-legal", "gs"]

            [[rule]]
            name = "second"
            types = ["*"]
            copy_to = ["gs-archives", "gs-legal", "gs-treaties"]
            """,
            directory,
        )
        extra = rules.extra_recipients("treaty.file_opened", "gs-treaties", ROUTINE, INTERNAL)
        assert extra == ("gs-legal", "gs", "gs-archives")


@pytest.mark.parametrize(
    ("text", "rule", "field"),
    [
        pytest.param(
            '[[rule]]\nname = "r"\ntypes = ["treaty.*"]\ncopy_to = ["nobody"]\n',
            "'r'",
            "copy_to",
            id="unknown-copy-to",
        ),
        pytest.param(
            '[[rule]]\nname = "r"\ntypes = ["x.y"]\nsenders = ["ghost"]\ncopy_to = ["gs"]\n',
            "'r'",
            "senders",
            id="unknown-sender",
        ),
        pytest.param(
            '[[rule]]\nname = "r"\ntypes = ["Treaty/*"]\ncopy_to = ["gs"]\n',
            "'r'",
            "types.0",
            id="bad-glob",
        ),
        pytest.param(
            '[[rule]]\nname = "r"\ntypes = ["x.y"]\ncopy_to = ["gs"]\ncolour = 1\n',
            "'r'",
            "colour",
            id="unknown-field",
        ),
        pytest.param(
            '[[rule]]\nname = "r"\ntypes = ["x.y"]\ncopy_to = ["gs"]\nprecedence = ["SOON"]\n',
            "'r'",
            "precedence.0",
            id="bad-precedence",
        ),
        pytest.param(
            '[[rule]]\nname = "r"\ntypes = ["x.y"]\ncopy_to = []\n',
            "'r'",
            "copy_to",
            id="empty-copy-to",
        ),
        pytest.param(
            '[[rule]]\ntypes = ["x.y"]\ncopy_to = ["gs"]\n', "#1", "name", id="missing-name"
        ),
        pytest.param(
            '[[rule]]\nname = "r"\ntypes = ["x.y"]\ncopy_to = ["gs"]\n' * 2,
            "'r'",
            "name",
            id="duplicate-name",
        ),
        pytest.param(
            '[[rule]]\nname = "r"\ntypes = ["x.y"]\ncopy_to = ["ona"]\n'
            'min_classification = "CONFIDENTIAL"\n',
            "'r'",
            "copy_to",
            id="copy-never-cleared",
        ),
    ],
)
def test_broken_rule_names_rule_and_field(
    directory: Directory, text: str, rule: str, field: str
) -> None:
    """A broken rule gives a ConfigError naming the rule and the field."""
    with pytest.raises(ConfigError) as caught:
        _rules(text, directory)
    message = str(caught.value)
    assert f"rule {rule}" in message
    assert f"field {field!r}" in message
    assert "validation error" not in message.lower()


def test_unreadable_or_invalid_file(tmp_path: Path, directory: Directory) -> None:
    """A missing file or broken TOML is a ConfigError naming the file."""
    with pytest.raises(ConfigError, match="cannot read"):
        Rules.load(tmp_path / "missing.toml", directory)
    path = tmp_path / "rules.toml"
    path.write_text("[[rule]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Rules.load(path, directory)
