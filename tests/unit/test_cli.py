"""The command line's front page: every command listed with its whole purpose."""

from __future__ import annotations

import click
from click.testing import CliRunner

from liaison.cli import main


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
