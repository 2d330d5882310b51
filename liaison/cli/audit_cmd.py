"""``liaison audit``: run the writer; verify, prove, search and export the ledger."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from liaison.cli import Context, pass_context
from liaison.cli.options import operator_option
from liaison.errors import LiaisonError

F = TypeVar("F", bound=Callable[..., Any])

_DIR_OPTION = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Audit directory or export bundle (default: the audit_dir setting).",
)
_KEY_OPTION = click.option(
    "--public-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="The hub's public key (PEM or base64); default: hub.pub in the directory.",
)


def _timestamp(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """An ISO 8601 date or time; without a zone it is taken as UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date or time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def filter_options(func: F) -> F:
    """The record filters shared by ``search`` (and the lead's ``replay``)."""
    options = [
        click.option(
            "--since", callback=_timestamp, help="From this time (inclusive, UTC if no zone)."
        ),
        click.option("--until", callback=_timestamp, help="Before this time (exclusive)."),
        click.option("--sender", help="Sender participant code."),
        click.option("--recipient", help="One of the recipients."),
        click.option("--type", "type_", help="Message type."),
        click.option("--event", help="Event kind (received, routed, delivered, …)."),
        click.option("--message-id", help="One message id."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def make_filter(**criteria: Any) -> Any:
    """A :class:`liaison.ledger.query.Filter` from the ``filter_options`` values."""
    from liaison.ledger.query import Filter  # noqa: PLC0415 - keeps --help fast

    return Filter(
        since=criteria.get("since"),
        until=criteria.get("until"),
        sender=criteria.get("sender"),
        recipient=criteria.get("recipient"),
        type=criteria.get("type_"),
        event=criteria.get("event"),
        message_id=criteria.get("message_id"),
    )


@contextmanager
def _progress(length: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress callback drawing a bar when standard output is a terminal, else ``None``."""
    if not sys.stdout.isatty() or length <= 0:
        yield None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


@click.group()
def audit() -> None:
    """The tamper-evident audit ledger: writer, verification, proofs, search, export."""


@audit.command()
@click.option("--batch-size", default=500, show_default=True, help="Messages per fsync at most.")
@click.option("--batch-ms", default=50, show_default=True, help="Longest wait to fill a batch.")
@pass_context
def run(obj: Context, batch_size: int, batch_ms: int) -> None:
    """Run the audit writer until SIGTERM or SIGINT (then checkpoint and exit 0)."""
    from liaison.adapters.audit_writer import AuditWriter  # noqa: PLC0415

    writer = AuditWriter(obj.settings, batch_size=batch_size, batch_window=batch_ms / 1000)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: writer.stop())
    writer.run()


@audit.command()
@click.argument("path", required=False, type=click.Path(file_okay=False, path_type=Path))
@_KEY_OPTION
@click.option("--strict", is_flag=True, help="Fail when records are not covered by a checkpoint.")
@pass_context
def verify(obj: Context, path: Path | None, public_key: Path | None, strict: bool) -> None:
    """Verify an audit directory or export bundle offline; exit 1 on the first failure."""
    from liaison.ledger.verify import resolve_public_key, total_bytes, verify_directory  # noqa: PLC0415

    path = path or obj.settings.audit_dir
    if not path.is_dir():
        raise click.ClickException(f"{path} is not a directory")
    key, source = resolve_public_key(path, public_key)
    with _progress(total_bytes(path), "verifying") as progress:
        result = verify_directory(path, key, strict=strict, progress=progress)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"key id {result.key_id} (from {source})", err=True)
    if result.failure is not None:
        failure = result.failure
        where = f" at seq {failure.seq}" if failure.seq is not None else ""
        click.echo(f"FAILED{where}: {failure.kind.value}: {failure.detail}")
        raise SystemExit(1)
    click.echo(f"OK: {result.records} records, {result.checkpoints} checkpoints verified")
    if result.unsigned:
        first = result.records - result.unsigned
        click.echo(
            f"warning: records {first}..{result.records - 1} are chained but not yet "
            "covered by a signed checkpoint",
            err=True,
        )


@audit.command()
@click.argument("message_id")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@_DIR_OPTION
@_KEY_OPTION
@pass_context
def prove(
    obj: Context, message_id: str, out: Path | None, directory: Path | None, public_key: Path | None
) -> None:
    """Write a JSON inclusion proof of a message's records against the latest checkpoint."""
    from liaison.ledger.proof import build_proof  # noqa: PLC0415
    from liaison.ledger.verify import resolve_public_key  # noqa: PLC0415

    path = directory or obj.settings.audit_dir
    key, _ = resolve_public_key(path, public_key)
    doc = build_proof(path, message_id, key)
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(
            f"proof of {len(doc['entries'])} record(s) against tree size "
            f"{doc['tree_size']} written to {out}",
            err=True,
        )
    if doc["unproven"]:
        click.echo(
            f"note: {len(doc['unproven'])} newer record(s) are not yet covered by a checkpoint",
            err=True,
        )


@audit.command("check-proof")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@_KEY_OPTION
def check_proof_cmd(file: Path, public_key: Path | None) -> None:
    """Check a proof file offline: record hash, Merkle inclusion, checkpoint signature."""
    from liaison.ledger.keys import read_public_key  # noqa: PLC0415
    from liaison.ledger.proof import check_proof  # noqa: PLC0415

    try:
        key = read_public_key(public_key) if public_key else None
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (LiaisonError, ValueError) as exc:
        raise click.ClickException(f"cannot read: {exc}") from None
    result = check_proof(doc, key)
    if result.embedded_key:
        click.echo(
            f"warning: using the key inside the proof (key id {result.key_id}); "
            "compare it with the hub's published key id, or pass --public-key",
            err=True,
        )
    if not result.ok:
        for problem in result.problems:
            click.echo(f"FAILED: {problem}")
        raise SystemExit(1)
    click.echo(
        f"OK: {result.checked} record(s) of {doc['message_id']} are in the ledger "
        f"signed at tree size {doc['tree_size']} by key {result.key_id}"
    )


def _row(record: Any) -> str:
    route = f"{record.sender or '-'} -> {','.join(record.recipients) or '-'}"
    why = " ".join(part for part in (record.reason, record.detail) if part)
    return (
        f"{record.seq:>8}  {record.ts}  {record.event:<15} {record.actor:<12} "
        f"{record.type or '-':<28} {route}  {why}".rstrip()
    )


_HEADER = f"{'SEQ':>8}  {'TIME (UTC)':<27}  {'EVENT':<15} {'ACTOR':<12} {'TYPE':<28} ROUTE  REASON"


@audit.command()
@click.argument("message_id")
@_DIR_OPTION
@pass_context
def show(obj: Context, message_id: str, directory: Path | None) -> None:
    """Print one message's timeline."""
    from liaison.ledger.query import history  # noqa: PLC0415

    records = history(directory or obj.settings.audit_dir, message_id)
    if not records:
        raise click.ClickException(f"no record of message {message_id}")
    click.echo(_HEADER)
    for record in records:
        click.echo(_row(record))


@audit.command()
@filter_options
@click.option("--json", "as_json", is_flag=True, help="One JSON record per line.")
@click.option("--limit", type=click.IntRange(min=1), help="Stop after this many records.")
@_DIR_OPTION
@pass_context
def search(
    obj: Context, /, as_json: bool, limit: int | None, directory: Path | None, **criteria: Any
) -> None:
    """List the records that match every given filter."""
    from liaison.ledger.query import search as run_search  # noqa: PLC0415

    found = 0
    for record in run_search(directory or obj.settings.audit_dir, make_filter(**criteria)):
        if as_json:
            click.echo(json.dumps(record.to_json(), ensure_ascii=False, sort_keys=True))
        else:
            if not found:
                click.echo(_HEADER)
            click.echo(_row(record))
        found += 1
        if limit is not None and found >= limit:
            break
    if not found:
        click.echo("no matching records", err=True)


@audit.command()
@filter_options
@click.option("--to", "to", help="Deliver only to this participant instead of the originals.")
@operator_option
@click.option("--dry-run", is_flag=True, help="List what would be replayed; publish nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_DIR_OPTION
@pass_context
def replay(
    obj: Context,
    /,
    to: str | None,
    operator: str,
    dry_run: bool,
    yes: bool,
    directory: Path | None,
    **criteria: Any,
) -> None:
    """Re-publish selected messages through the hub, each marked as a replay of its original."""
    from liaison.adapters.replay import plan_replays, publish_replays  # noqa: PLC0415
    from liaison.ledger.query import replay_selection  # noqa: PLC0415

    if not any(criteria.values()):
        raise click.UsageError("give at least one filter (--message-id, --since, --type, …)")
    settings = obj.settings
    actor = operator
    if to is not None:
        from liaison.directory import load_directory  # noqa: PLC0415

        if to not in load_directory(settings.directory_path):
            raise click.BadParameter(f"{to!r} is not in the directory", param_hint="--to")
    source = directory or settings.audit_dir
    plans = plan_replays(replay_selection(source, make_filter(**criteria)), actor=actor, to=to)
    for plan in plans:
        click.echo(
            f"{plan.message_id}  {plan.type:<32} {plan.sender} → {', '.join(plan.recipients)}"
        )
    if not plans:
        click.echo("nothing to replay", err=True)
        return
    if dry_run:
        click.echo(f"{len(plans)} message(s) would be replayed (dry run)", err=True)
        return
    if not yes and sys.stdin.isatty():
        click.confirm(f"Replay {len(plans)} message(s) as {actor}?", abort=True)
    seconds = publish_replays(settings, plans)
    rate = len(plans) / seconds if seconds else float("inf")
    click.echo(f"replayed {len(plans)} message(s) as {actor} ({rate:,.0f} msg/s)", err=True)


@audit.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@_DIR_OPTION
@pass_context
def export(obj: Context, out_dir: Path, directory: Path | None) -> None:
    """Copy the ledger into a bundle an auditor can verify offline."""
    from liaison.ledger.bundle import export_bundle  # noqa: PLC0415
    from liaison.ledger.verify import total_bytes  # noqa: PLC0415

    source = directory or obj.settings.audit_dir
    try:
        with _progress(total_bytes(source), "exporting") as progress:
            summary = export_bundle(source, out_dir, progress=progress)
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"exported {summary.records} records in {summary.segments} segment(s) and "
        f"{summary.checkpoints} checkpoint(s) to {out_dir}"
    )
    click.echo(f"verify with: liaison audit verify {out_dir}")
