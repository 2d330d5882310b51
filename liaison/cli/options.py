"""Options shared by several commands, each defined once."""

from __future__ import annotations

import getpass

import click


def _default_operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return ""


def _check_operator(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str:
    name = (value or "").strip()
    if not name or len(name) > 120 or not name.isprintable():
        raise click.BadParameter("give a printable operator name of 1 to 120 characters")
    return name


#: Who is acting (``dlq retry``/``purge``, ``audit replay``): recorded in the audit log.
operator_option = click.option(
    "--operator",
    envvar="LIAISON_OPERATOR",
    default=_default_operator,
    show_default="$LIAISON_OPERATOR or your login name",
    callback=_check_operator,
    help="Who is acting; recorded in the audit log.",
)

__all__ = ["operator_option"]
