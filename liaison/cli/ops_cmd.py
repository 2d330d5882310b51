"""``liaison status``, ``watch`` and ``dlq``: the operator console on the command line."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any, cast

import click

from liaison.cli import Context, pass_context
from liaison.cli.options import operator_option
from liaison.errors import LiaisonError
from schemas import wire
from schemas.errors import ReasonCode

if TYPE_CHECKING:
    from liaison.ops import HubQueue, HubStatus, Mode

EXIT_BREACH = 2
_SOURCES = click.Choice(["auto", "management", "amqp"])


def _queues(obj: Context) -> tuple[HubQueue, ...]:
    from liaison.directory import load_directory  # noqa: PLC0415 - keeps --help fast
    from liaison.ops import hub_queues  # noqa: PLC0415

    directory = load_directory(obj.settings.directory_path)
    return hub_queues(directory.codes(), obj.settings.retry_delays_ms)


max_age_option = click.option(
    "--max-age-s",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="Breach when an inbox's oldest message is older than this (when it can be known).",
)
source_option = click.option(
    "--source",
    type=_SOURCES,
    default="auto",
    show_default=True,
    help="Where figures come from; auto falls back to AMQP when the management API is down.",
)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@max_age_option
@source_option
@pass_context
def status(obj: Context, as_json: bool, max_age_s: float, source: str) -> None:
    """Every hub queue, router and audit-writer health; exit 2 when a threshold is breached.

    Breaches: dead letters present, an inbox's oldest message older than
    --max-age-s, no router consuming, a hub queue missing. Exit 0 when none,
    2 when any, 1 when the broker cannot be read at all.
    """
    from liaison.ops import StatusCollector, evaluate, render_table, status_json  # noqa: PLC0415

    queues = _queues(obj)
    with StatusCollector(obj.settings, queues, mode=cast("Mode", source)) as collector:
        current = collector.collect()
    current = _with_acks(obj, current)
    if as_json:
        click.echo(json.dumps(status_json(current, max_age_s=max_age_s), indent=2))
    else:
        click.echo(render_table(current, max_age_s=max_age_s))
    if evaluate(current, max_age_s=max_age_s):
        raise SystemExit(EXIT_BREACH)


def _with_acks(obj: Context, current: HubStatus) -> HubStatus:
    """Overdue acknowledgements (from the procedures database, when there is one) as breaches."""
    import dataclasses  # noqa: PLC0415
    from datetime import UTC, datetime  # noqa: PLC0415

    from liaison.procedures.health import read_acks  # noqa: PLC0415

    acks = read_acks(obj.settings, datetime.now(UTC))
    if acks is None:
        return current
    return dataclasses.replace(
        current,
        acks_overdue=acks.overdue_lines(),
        acks_pending=len(acks.awaited),
        questions_overdue=acks.questions_overdue,
        questions_open=acks.questions_open,
    )


@click.command()
@click.option(
    "--interval",
    type=click.FloatRange(min=0.2),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes.",
)
@click.option(
    "--count",
    type=click.IntRange(min=0),
    default=0,
    hidden=True,
    help="Stop after this many refreshes (0: until Ctrl-C).",
)
@max_age_option
@source_option
@pass_context
def watch(obj: Context, interval: float, count: int, max_age_s: float, source: str) -> None:
    """The status table, refreshed in place until Ctrl-C."""
    from liaison.ops import StatusCollector, render_table  # noqa: PLC0415

    queues = _queues(obj)
    clear = sys.stdout.isatty()
    done = 0
    try:
        with StatusCollector(obj.settings, queues, mode=cast("Mode", source)) as collector:
            while True:
                try:
                    text = render_table(collector.collect(), max_age_s=max_age_s)
                except LiaisonError as exc:
                    text = f"cannot read the broker: {exc}"
                title = f"liaison watch: every {interval:g} s, Ctrl-C to stop"
                # Home and clear-screen (ANSI) only on a terminal; a pipe gets separators.
                prefix = "\x1b[H\x1b[2J" if clear else "-" * 20 + "\n"
                click.echo(f"{prefix}{title}\n\n{text}")
                done += 1
                if count and done >= count:
                    return
                time.sleep(interval)
    except KeyboardInterrupt:
        click.echo("")


@click.group()
def dlq() -> None:
    """Dead letters in hub.dead: list, show, retry through the router, purge."""


@dlq.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@pass_context
def list_(obj: Context, as_json: bool, limit: int) -> None:
    """The dead letters with their reasons; reading leaves every one of them in place."""
    from liaison.ops import DeadLetterQueue, render_letters  # noqa: PLC0415

    peek = DeadLetterQueue(obj.settings).peek(limit)
    if as_json:
        data = {"total": peek.total, "dead_letters": [x.summary() for x in peek.letters]}
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(render_letters(peek.letters, total=peek.total))


@dlq.command()
@click.argument("message_id")
@pass_context
def show(obj: Context, message_id: str) -> None:
    """One dead letter (every copy of it): reason, headers and the pretty-printed body."""
    from liaison.ops import DeadLetterQueue, render_letter  # noqa: PLC0415

    letters = DeadLetterQueue(obj.settings).peek().letters
    found = [x for x in letters if message_id in (x.message_id, x.digest)]
    if not found:
        raise click.ClickException(f"no dead letter with id {message_id!r}")
    click.echo("\n\n".join(render_letter(letter) for letter in found))


def _selection(message_ids: tuple[str, ...], every: bool, reason: str | None) -> Any:
    from liaison.ops import selector  # noqa: PLC0415

    chosen = sum((bool(message_ids), every, reason is not None))
    if chosen != 1:
        raise click.UsageError("give MESSAGE_ID..., --all or --reason (exactly one of them)")
    return selector(message_ids=message_ids, every=every, reason=reason)


@dlq.command()
@click.argument("message_ids", metavar="[MESSAGE_ID]...", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every dead letter.")
@click.option(
    "--reason",
    type=click.Choice([code.value for code in ReasonCode]),
    metavar="CODE",
    help="Every dead letter refused for this reason (an x-liaison-reason value, e.g. unroutable).",
)
@operator_option
@pass_context
def retry(
    obj: Context, message_ids: tuple[str, ...], every: bool, reason: str | None, operator: str
) -> None:
    """Send dead letters through the router again, as the hub, on the operator's behalf.

    One whose cause is still there comes back to the dead letters with its reason.
    The router routes the message afresh, to all its recipients (consumers drop
    copies they already hold by message id). A letter whose sender the hub cannot
    prove (one refused as sender_mismatch, say) stays where it is: relaying it as
    the hub would launder a spoof.
    """
    from liaison.ops import DeadLetterQueue  # noqa: PLC0415

    selection = _selection(message_ids, every, reason)
    outcome = DeadLetterQueue(obj.settings).retry(selection, operator=operator)
    for message_id in outcome.message_ids:
        click.echo(f"retried {message_id} (operation {outcome.operations[message_id]})")
    click.echo(f"{len(outcome.message_ids)} message(s) retried by {operator}.")
    for letter, why in outcome.refused:
        click.echo(f"not retried {letter.message_id}: {why}", err=True)
    missing = selection.missing([*outcome.settled, *(x for x, _ in outcome.refused)])
    if missing:
        click.echo(f"not in {wire.DEAD_QUEUE}: {', '.join(missing)}", err=True)
    if missing or outcome.refused:
        raise SystemExit(1)


@dlq.command()
@click.argument("message_ids", metavar="[MESSAGE_ID]...", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every dead letter.")
@operator_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def purge(
    obj: Context, message_ids: tuple[str, ...], every: bool, operator: str, yes: bool
) -> None:
    """Delete dead letters for good (each one audited as an operator action)."""
    from liaison.ops import DeadLetterQueue, render_letters, selector  # noqa: PLC0415

    selection = _selection(message_ids, every, None)
    queue = DeadLetterQueue(obj.settings)
    candidates = [x for x in queue.peek().letters if selection(x)]
    missing = selection.missing(candidates)
    if missing:
        click.echo(f"not in {wire.DEAD_QUEUE}: {', '.join(missing)}", err=True)
    if not candidates:
        click.echo("Nothing to purge.")
        raise SystemExit(1 if missing else 0)
    click.echo(render_letters(candidates))
    if not yes:
        click.confirm(
            f"Purge these {len(candidates)} dead letter(s) for good?", abort=True, err=True
        )
    # Only the copies shown are purged, not what arrived while the operator read the list.
    exact = selector(keys=[x.key for x in candidates])
    outcome = queue.purge(exact, operator=operator)
    click.echo(f"{len(outcome.settled)} dead letter(s) purged by {operator}.")
    if missing or len(outcome.settled) < len(candidates):
        raise SystemExit(1)


#: The commands this module adds to ``liaison``.
COMMANDS: tuple[click.Command, ...] = (status, watch, dlq)
