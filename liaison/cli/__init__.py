"""The ``liaison`` command: one group, a module per command family.

Settings are built here, once, and passed down through click's context object.
Failing is done here too, once: :class:`LiaisonGroup` turns every ``LiaisonError``
(and a login RabbitMQ refused) into one line on standard error and exit code 1, so
the commands raise the project's errors and never catch them just to reword them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from liaison.errors import LiaisonError, LoginRefusedError
from liaison.logs import configure_logging
from liaison.settings import ENV_PREFIX, Settings, load_settings


class Context:
    """What every command receives: the settings, built lazily from the options."""

    def __init__(self, config_file: Path | None) -> None:
        self._config_file = config_file
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The settings, loaded on first use (so ``--help`` needs no valid configuration)."""
        if self._settings is None:
            self._settings = load_settings(self._config_file)
            configure_logging(json=self._settings.log_json, level=self._settings.log_level)
        return self._settings

    @property
    def loaded(self) -> Settings | None:
        """The settings if a command loaded them, else ``None`` (never loads them)."""
        return self._settings

    def hub_password_source(self) -> str:
        """Where the hub's ``amqp_url`` (and so its password) came from, for error messages."""
        if os.environ.get(f"{ENV_PREFIX}AMQP_URL"):
            return f"the amqp_url setting (${ENV_PREFIX}AMQP_URL)"
        if self._config_file is not None:
            return f"the amqp_url setting ({self._config_file})"
        return "the amqp_url setting (its default; set it in --config or $LIAISON_AMQP_URL)"


pass_context = click.make_pass_decorator(Context)


def failure_message(error: Exception, obj: Context | None) -> str | None:
    """The one line an operator reads for ``error``, or ``None`` if it is not ours to word.

    ``LiaisonError`` says it all already, except where the hub's password came from,
    which only the CLI knows. A refused login that reached here as a pika error (raw,
    or as the cause of a ``BrokerError``) can only have been the hub's own user:
    participants' logins are translated where their credential files are read.
    """
    from liaison.adapters.connections import HUB_URL_SOURCE, login_refused  # noqa: PLC0415 - lazy pika

    settings = obj.loaded if obj is not None else None
    if settings is not None and not isinstance(error, LoginRefusedError):
        cause: BaseException | None = error
        while cause is not None:
            if isinstance(cause, Exception) and (refused := login_refused(settings, cause)):
                error = refused
                break
            cause = cause.__cause__
    if not isinstance(error, LiaisonError):
        return None
    if isinstance(error, LoginRefusedError) and error.source == HUB_URL_SOURCE and obj:
        error = LoginRefusedError(error.user, obj.hub_password_source(), hint=error.hint)
    return str(error)


class LiaisonGroup(click.Group):
    """The root group: the one place where the project's errors become exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a ``LiaisonError`` or a refused login exits 1 with one line."""
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            message = failure_message(exc, ctx.find_object(Context))
            if message is None:
                raise
            raise click.ClickException(message) from None


@click.group(
    cls=LiaisonGroup,
    context_settings={
        "help_option_names": ["-h", "--help"],
        # Wide enough that every command's one-line purpose shows whole.
        "terminal_width": 120,
        "max_content_width": 120,
    },
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
        committee_cmd,
        demo_cmd,
        ops_cmd,
        procedures_cmd,
        questions_cmd,
        schemas_cmd,
        serve_cmd,
        topology_cmd,
        treaties_cmd,
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
    commands.extend(treaties_cmd.COMMANDS)
    commands.extend(questions_cmd.COMMANDS)
    commands.extend(committee_cmd.COMMANDS)
    commands.append(producers_cli.send)
    for command in commands:
        main.add_command(command)


_register()
