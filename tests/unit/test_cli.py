"""The command line: its front page, the --operator option, and its one way to fail."""

from __future__ import annotations

import pwd
from pathlib import Path
from typing import Any

import click
import pika.exceptions
import pytest
from click.testing import CliRunner

from liaison.cli import Context, failure_message, main
from liaison.errors import BrokerError
from liaison.settings import Settings


def test_help_lists_every_command_with_a_whole_one_line_purpose() -> None:
    """`liaison --help` (and each group's) names every command, none cut short with '...'."""
    runner = CliRunner()
    groups: list[tuple[list[str], click.Group]] = [([], main)]
    while groups:
        path, group = groups.pop()
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, result.output
        listing = result.output.split("Commands:", 1)[1]
        for name, command in group.commands.items():
            line = next(ln for ln in listing.splitlines() if ln.split()[:1] == [name])
            assert not line.rstrip().endswith("..."), line
            assert len(line.split(maxsplit=1)) == 2, f"{name} has no purpose line"
            if isinstance(command, click.Group):
                groups.append(([*path, name], command))


def _without_login_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make getpass.getuser() fail as in a container whose uid has no passwd entry."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME", "LIAISON_OPERATOR"):
        monkeypatch.delenv(name, raising=False)

    def no_entry(uid: int) -> Any:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)


class TestOperator:
    """--operator is one option: the same default, guard and check on every command."""

    @pytest.mark.parametrize(
        "args",
        [
            ["audit", "replay", "--message-id", "m-1", "--dry-run"],
            ["dlq", "retry", "--all"],
            ["dlq", "purge", "--all", "--yes"],
        ],
    )
    def test_no_login_name_is_a_usage_error(
        self, args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """Without a passwd entry or $LIAISON_OPERATOR: exit 2 asking for --operator, no traceback."""
        _without_login_name(monkeypatch)
        result = CliRunner().invoke(
            main, args, env={"LIAISON_AUDIT_DIR": str(tmp_path), "LIAISON_LOG_JSON": "true"}
        )
        assert result.exit_code == 2, result.output
        assert "--operator" in result.output
        assert "Traceback" not in result.output
        assert isinstance(result.exception, SystemExit)

    def test_replay_takes_the_operator_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """$LIAISON_OPERATOR stands in for the missing login name."""
        _without_login_name(monkeypatch)
        result = CliRunner().invoke(
            main,
            ["audit", "replay", "--message-id", "m-1", "--dry-run", "--dir", str(tmp_path)],
            env={"LIAISON_OPERATOR": "alice", "LIAISON_LOG_JSON": "true"},
        )
        assert result.exit_code == 0, result.output
        assert "nothing to replay" in result.output

    def test_replay_refuses_an_unprintable_name(self, tmp_path: Path) -> None:
        """The same check as dlq's: a name with a control character is refused."""
        result = CliRunner().invoke(
            main,
            ["audit", "replay", "--message-id", "m-1", "--dry-run", "--operator", "a\x1bb"],
            env={"LIAISON_AUDIT_DIR": str(tmp_path)},
        )
        assert result.exit_code == 2
        assert "printable operator name" in result.output


class TestOneWayToFail:
    """Every command's LiaisonError becomes one line on stderr and exit 1, in one place."""

    def test_broken_directory_is_one_line(self, tmp_path: Path) -> None:
        """A broken directory file: exit 1 with the error on one line, no traceback."""
        path = tmp_path / "directory.toml"
        path.write_text('[[participant]]\ncode = "gs"\n', encoding="utf-8")
        for args in (["topology", "diff"], ["topology", "apply"], ["status"]):
            result = CliRunner().invoke(
                main, args, env={"LIAISON_DIRECTORY_PATH": str(path), "LIAISON_LOG_JSON": "true"}
            )
            assert result.exit_code == 1, (args, result.output)
            lines = result.output.strip().splitlines()
            assert len(lines) == 1, result.output
            assert lines[0].startswith("Error: ")
            assert "Traceback" not in result.output

    def test_bad_settings_are_one_line(self) -> None:
        """A setting that cannot be used: exit 1, one line naming it."""
        result = CliRunner().invoke(main, ["serve"], env={"LIAISON_PREFETCH": "0"})
        assert result.exit_code == 1
        assert result.output.strip().splitlines() == [
            next(ln for ln in result.output.splitlines() if ln.startswith("Error: setting"))
        ]
        assert "'prefetch'" in result.output

    def test_login_refused_names_user_and_source(self) -> None:
        """A pika login refusal under a BrokerError becomes a line naming the hub user and where its URL came from."""
        obj = Context(Path("/etc/liaison.toml"))
        obj._settings = Settings(amqp_url="amqp://hub-user:wrong@localhost:5672/liaison")
        cause = pika.exceptions.ProbableAuthenticationError("ACCESS_REFUSED")
        error = BrokerError("cannot connect to the broker")
        error.__cause__ = cause
        message = failure_message(error, obj)
        assert message is not None
        assert "'hub-user'" in message
        assert "/etc/liaison.toml" in message
        assert "wrong" not in message
        assert failure_message(ValueError("a bug"), obj) is None
