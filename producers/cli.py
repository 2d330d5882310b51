"""``liaison send``: publish one message as a participant, from a file or from flags.

The message is validated against the registry before anything is published; an
invalid one is refused with the field path and exit status 2. On success the
message id is printed. Who sends: ``--credentials FILE`` (the ``<code>.env`` that
``topology apply`` writes), else ``LIAISON_PARTICIPANT`` and ``LIAISON_AMQP_URL``;
``--participant`` names the code in either case.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NoReturn
from uuid import UUID

import click

from producers.errors import PublishError, SdkConfigError
from producers.publisher import Publisher
from producers.settings import ENV_AMQP_URL, ENV_PARTICIPANT, ParticipantSettings
from producers.spec import build_envelope, load_spec_file, spec_from_flags
from schemas import wire
from schemas.catalog import default_registry
from schemas.errors import ContractError
from schemas.types import Classification, Precedence

#: Exit status of a message refused before publishing (as click's usage errors).
INVALID = 2


@click.command("send")
@click.option(
    "--file",
    "file_",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Message file (JSON, or TOML when named *.toml): type, version, recipients, payload...",
)
@click.option("--type", "type_", metavar="TYPE", help="Message type, e.g. correspondence.letter.")
@click.option("--version", "version", type=int, help="Schema version (default: the newest).")
@click.option("--to", "recipients", multiple=True, metavar="CODE", help="A recipient (repeat).")
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="KEY=TEXT|KEY:=JSON",
    help="A payload field (repeat); dots nest (attachments:='[...]', addressee=...).",
)
@click.option("--payload-json", metavar="JSON", help="The payload as a JSON object.")
@click.option(
    "--classification",
    type=click.Choice([c.value for c in Classification]),
    help="Overrides the file's (default INTERNAL).",
)
@click.option(
    "--precedence",
    type=click.Choice([p.value for p in Precedence]),
    help="Overrides the file's (default ROUTINE).",
)
@click.option("--correlation-id", type=click.UUID, help="The conversation this belongs to.")
@click.option("--participant", metavar="CODE", help="Send as CODE (else LIAISON_PARTICIPANT).")
@click.option(
    "--credentials",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Credentials file <code>.env with LIAISON_AMQP_URL (from `topology apply`).",
)
@click.option(
    "--receipt-token",
    metavar="TOKEN",
    help="For a receipt: the x-liaison-receipt-token header of the copy it acknowledges.",
)
@click.option("--dry-run", is_flag=True, help="Validate and print the envelope; publish nothing.")
def send(
    file_: Path | None,
    type_: str | None,
    version: int | None,
    recipients: tuple[str, ...],
    fields: tuple[str, ...],
    payload_json: str | None,
    classification: str | None,
    precedence: str | None,
    correlation_id: UUID | None,
    participant: str | None,
    credentials: Path | None,
    receipt_token: str | None,
    dry_run: bool,
) -> None:
    """Publish one message to the hub as a participant; prints its message id."""
    if (file_ is None) == (type_ is None):
        _refuse("give either --file or --type (with --field/--payload-json), not both")
    try:
        if file_ is not None:
            if fields or payload_json:
                _refuse("--field and --payload-json go with --type, not with --file")
            spec = load_spec_file(file_)
            if recipients:
                spec["recipients"] = list(recipients)
        else:
            spec = spec_from_flags(
                type_=type_,
                version=version,
                recipients=recipients,
                fields=fields,
                payload_json=payload_json,
            )
        for key, value in (
            ("version", version if file_ is not None else None),
            ("classification", classification),
            ("precedence", precedence),
            ("correlation_id", str(correlation_id) if correlation_id else None),
        ):
            if value is not None:
                spec[key] = value
        settings = _settings(participant, credentials, need_url=not dry_run)
        envelope = build_envelope(spec, sender=settings.code, registry=default_registry())
    except ContractError as exc:
        where = f" at {exc.path}" if exc.path else ""
        _refuse(f"invalid message{where}: {exc.message} ({exc.reason.value}); nothing was sent")
    except SdkConfigError as exc:
        _refuse(str(exc))
    _check_receipt_token(envelope.type, receipt_token)
    if dry_run:
        click.echo(json.dumps(envelope.to_jsonable(), ensure_ascii=False, indent=2))
        return
    try:
        with Publisher(settings) as publisher:
            headers = {wire.H_RECEIPT_TOKEN: receipt_token} if receipt_token else None
            sent = publisher.publish_envelope(envelope, headers=headers)
    except (PublishError, SdkConfigError) as exc:
        message = str(exc)
        if isinstance(exc, PublishError) and exc.cause == "login_refused":
            source = str(credentials) if credentials is not None else f"${ENV_AMQP_URL}"
            message = f"{message}: the password from {source} is not the broker's"
        raise click.ClickException(message) from None
    click.echo(str(sent.message_id))


def _settings(
    participant: str | None, credentials: Path | None, *, need_url: bool
) -> ParticipantSettings:
    if credentials is not None:
        return ParticipantSettings.from_credentials(credentials, code=participant)
    if need_url:
        return ParticipantSettings.from_env(code=participant)
    # A dry run only needs to know who would send.
    code = participant or os.environ.get(ENV_PARTICIPANT)
    if not code:
        raise SdkConfigError(f"--participant or {ENV_PARTICIPANT} is needed to name the sender")
    return ParticipantSettings(code=code, amqp_url="amqp://dry-run.invalid/")


def _check_receipt_token(type_: str, token: str | None) -> None:
    receipt = type_.startswith("receipt.")
    if receipt and not token:
        _refuse(
            "a receipt needs --receipt-token: the x-liaison-receipt-token header of the copy "
            "it acknowledges (the hub refuses it otherwise); nothing was sent"
        )
    if token and not receipt:
        _refuse("--receipt-token goes with a receipt.* message only")


def _refuse(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(INVALID)


__all__ = ["INVALID", "send"]
