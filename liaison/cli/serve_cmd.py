"""``liaison serve``: run the router."""

from __future__ import annotations

import click

from liaison.cli import Context, pass_context
from liaison.errors import LiaisonError


@click.command()
@pass_context
def serve(obj: Context) -> None:
    """Run the router: consume ingress, validate, authorise, deliver, audit."""
    from liaison.bootstrap import routing_context  # noqa: PLC0415 - keeps --help fast
    from liaison.router import Router  # noqa: PLC0415

    settings = obj.settings
    try:
        context = routing_context(settings)
    except LiaisonError as exc:
        raise click.ClickException(str(exc)) from None
    raise SystemExit(Router(settings, context).run())
