"""The ``liaison`` command: one group, a module per command family.

Settings are built here, once, and passed down through click's context object.
"""

from __future__ import annotations

from pathlib import Path

import click

from liaison.errors import LiaisonError
from liaison.logs import configure_logging
from liaison.settings import Settings, load_settings


class Context:
    """What every command receives: the settings, built lazily from the options."""

    def __init__(self, config_file: Path | None) -> None:
        self._config_file = config_file
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The settings, loaded on first use (so ``--help`` needs no valid configuration)."""
        if self._settings is None:
            try:
                self._settings = load_settings(self._config_file)
            except LiaisonError as exc:
                raise click.ClickException(str(exc)) from None
            configure_logging(json=self._settings.log_json, level=self._settings.log_level)
        return self._settings


pass_context = click.make_pass_decorator(Context)


@click.group(
    context_settings={
        "help_option_names": ["-h", "--help"],
        # Wide enough that every command's one-line purpose shows whole.
        "terminal_width": 120,
        "max_content_width": 120,
    }
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="LIAISON_CONFIG",
    help="Settings file (TOML); LIAISON_* variables override it.",
)
@click.version_option(package_name="liaison")
@click.pass_context
def main(ctx: click.Context, config_file: Path | None) -> None:
    """Liaison: the Ministry's messaging and inter-institution liaison hub."""
    ctx.obj = Context(config_file)


def _register() -> None:
    # Imported here, not at module top, so each command module stays independent.
    from liaison.cli import (  # noqa: PLC0415
        audit_cmd,
        bench_cmd,
        demo_cmd,
        ops_cmd,
        procedures_cmd,
        schemas_cmd,
        serve_cmd,
        topology_cmd,
    )
    from producers import cli as producers_cli  # noqa: PLC0415 - the edge SDK's `send`

    commands: list[click.Command] = []
    commands.append(topology_cmd.topology)
    commands.append(schemas_cmd.schemas)
    commands.append(serve_cmd.serve)
    commands.append(bench_cmd.bench)
    commands.append(demo_cmd.demo)
    commands.append(audit_cmd.audit)
    commands.extend(ops_cmd.COMMANDS)
    commands.extend(procedures_cmd.COMMANDS)
    commands.append(producers_cli.send)
    for command in commands:
        main.add_command(command)


_register()
