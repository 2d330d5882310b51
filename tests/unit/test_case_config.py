"""treaties.toml and questions.toml: bundled files load, mistakes stop the service in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from liaison.directory import load_directory
from liaison.errors import ConfigError
from liaison.procedures.case_config import load_questions, load_treaties
from schemas.treaties import TreatyStep

DIRECTORY = load_directory()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


class TestBundled:
    def test_the_bundled_treaty_rules_load(self) -> None:
        """The Council of State's opinion is expected within 90 days of the tabling."""
        policy = load_treaties(None, DIRECTORY, code="gs-procedures")
        expectation = policy.expectation(TreatyStep.BILL_OF_APPROVAL_TABLED)
        assert expectation is not None and str(expectation.within) == "90 days"
        assert policy.roles.council_of_state == "council-of-state"

    def test_the_bundled_question_rules_load(self) -> None:
        """A consular subject goes to the consular directorate; reminders 7 and 2 days before."""
        policy = load_questions(None, DIRECTORY, code="gs-procedures")
        assert policy.assignee("Aide CONSULAIRE aux frontaliers") == (
            "dir-consular",
            "rule consular",
        )
        assert policy.reminders == (7, 2)


class TestMistakes:
    @pytest.mark.parametrize(
        ("text", "says"),
        [
            ('[roles]\njournal = "nobody-here"\n', "'nobody-here' is not in the directory"),
            ('[[expect]]\nafter = "signed"\nwithin = "3 days"\n', "expect.0.after"),
            ('[[expect]]\nafter = "promulgated"\nwithin = "3 months"\n', "working days"),
            ('[roles]\ntreaties = "gs-treaties"\nextra = 1\n', "roles.extra"),
        ],
    )
    def test_treaty_rules(self, tmp_path: Path, text: str, says: str) -> None:
        """An unknown code, step, unit or key names the file and the field."""
        path = write(tmp_path, "treaties.toml", text)
        with pytest.raises(ConfigError, match=str(path)) as caught:
            load_treaties(path, DIRECTORY, code="gs-procedures")
        assert says in str(caught.value)
        assert "\n" not in str(caught.value)

    @pytest.mark.parametrize(
        ("text", "says"),
        [
            ('[[assign]]\nname = "x"\nsubject = "*"\nto = "dir-nowhere"\n', "assign 'x'"),
            ("reminders = [0]\n", "1 to 60"),
            ('default_assignee = "Not A Code"\n', "default_assignee"),
        ],
    )
    def test_question_rules(self, tmp_path: Path, text: str, says: str) -> None:
        """An unknown directorate or an impossible reminder names the file and the field."""
        path = write(tmp_path, "questions.toml", text)
        with pytest.raises(ConfigError, match=str(path)) as caught:
            load_questions(path, DIRECTORY, code="gs-procedures")
        assert says in str(caught.value)
