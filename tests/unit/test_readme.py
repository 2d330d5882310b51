"""The README stays true: its settings, commands and code examples exist."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import click
from click.testing import CliRunner

from liaison.cli import main
from liaison.settings import Settings, TlsSettings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


class TestReadme:
    def test_every_setting_is_documented(self) -> None:
        """Each field of the settings object appears in the configuration table."""
        names = [*Settings.model_fields, *(f"tls.{n}" for n in TlsSettings.model_fields)]
        missing = [name for name in names if f"`{name}`" not in README]
        assert not missing

    def test_documented_commands_exist(self) -> None:
        """Every `liaison <command> [<subcommand>]` the README names exists."""
        commands = set(re.findall(r"`liaison ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?", README))
        assert {"demo", "serve", "bench", "status"} <= {name for name, _ in commands}
        for name, sub in sorted(commands):
            command = main.commands.get(name)
            assert command is not None, f"liaison {name}"
            if isinstance(command, click.Group) and sub:
                assert sub in command.commands, f"liaison {name} {sub}"
        assert CliRunner().invoke(main, ["--help"]).exit_code == 0

    def test_python_example_imports_resolve(self) -> None:
        """The SDK example's imports name real modules and attributes."""
        blocks = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
        assert blocks
        for block in blocks:
            for node in ast.walk(ast.parse(block)):
                if isinstance(node, ast.ImportFrom) and node.module:
                    module = importlib.import_module(node.module)
                    for alias in node.names:
                        assert hasattr(module, alias.name), f"{node.module}.{alias.name}"
