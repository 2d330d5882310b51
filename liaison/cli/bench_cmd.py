"""``liaison bench``: measured figures, each against a baseline in the same run."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from liaison.cli import Context, pass_context


def _emit(figures: dict[str, object], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(figures))
        return
    for key, value in figures.items():
        click.echo(f"{key:>22}  {value}")


@click.group(invoke_without_command=True)
@click.option("--messages", default=20_000, show_default=True, help="Messages per throughput run.")
@click.option("--rate", default=1_000, show_default=True, help="Offered msg/s in the latency run.")
@click.option("--seconds", default=5.0, show_default=True, help="Length of the latency run.")
@click.option("--payload-bytes", default=1024, show_default=True, help="Envelope size to aim for.")
@click.option(
    "--rounds", default=2, show_default=True, help="Pairs of runs, alternating which side is first."
)
@click.option(
    "--routers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 16),
    help="Router processes competing for ingress (aggregate and per-router rates).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def bench(
    ctx: click.Context,
    messages: int,
    rate: int,
    seconds: float,
    payload_bytes: int,
    rounds: int,
    routers: int,
    as_json: bool,
) -> None:
    """Benchmark the router against a raw pika forwarder on a scratch vhost."""
    if ctx.invoked_subcommand is not None:
        return
    from liaison.devtools.bench.hub import run_bench  # noqa: PLC0415 - heavy imports only when used

    settings = ctx.find_object(Context)
    assert settings is not None
    result = run_bench(
        settings.settings,
        messages=messages,
        rate=rate,
        seconds=seconds,
        payload_bytes=payload_bytes,
        rounds=rounds,
        routers=routers,
    )
    _emit(result.as_dict(), as_json)


@bench.command("audit")
@click.option("--records", default=100_000, show_default=True, help="Records to append and verify.")
@click.option("--replays", default=20_000, show_default=True, help="Messages to replay.")
@click.option(
    "--startup",
    "startup",
    type=int,
    multiple=True,
    help="Instead: the writer's start-up time and RSS on a ledger of this many records (repeat).",
)
@click.option(
    "--ledger-root",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where --startup builds its ledgers once and reuses them [default: the system's "
    "temporary directory/liaison-startup-ledgers].",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_context
def bench_audit_cmd(
    obj: Context,
    records: int,
    replays: int,
    startup: tuple[int, ...],
    ledger_root: Path | None,
    as_json: bool,
) -> None:
    """Durable appends/s, verification records/s and replay msg/s of the audit ledger."""
    from liaison.devtools.bench.audit import run_audit_bench, run_startup_bench  # noqa: PLC0415

    if startup:
        root = ledger_root or Path(tempfile.gettempdir()) / "liaison-startup-ledgers"
        _emit(run_startup_bench(root, list(startup)), as_json)
        return
    _emit(run_audit_bench(obj.settings, records=records, replays=replays), as_json)


@bench.command("peers")
@click.option("--messages", default=20_000, show_default=True, help="Messages per throughput run.")
@click.option(
    "--sdk-messages", default=5_000, show_default=True, help="Messages per publisher run."
)
@click.option("--payload-bytes", default=1024, show_default=True, help="Envelope size to aim for.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_context
def bench_peers_cmd(
    obj: Context, messages: int, sdk_messages: int, payload_bytes: int, as_json: bool
) -> None:
    """The router against raw pika and FastStream; the producer SDK against raw pika."""
    from liaison.devtools.bench.peers import run_peers  # noqa: PLC0415

    result = run_peers(
        obj.settings, messages=messages, sdk_messages=sdk_messages, payload_bytes=payload_bytes
    )
    _emit(result.as_dict(), as_json)


@bench.command("flash")
@click.option(
    "--backlog", default=50_000, show_default=True, help="ROUTINE letters waiting in the inbox."
)
@click.option("--rate", default=10.0, show_default=True, help="FLASH letters per second.")
@click.option("--seconds", default=10.0, show_default=True, help="How long FLASH letters are sent.")
@click.option(
    "--handler-ms", default=1.0, show_default=True, help="Time the consumer's handler takes."
)
@click.option(
    "--via",
    type=click.Choice(["hub", "direct"]),
    default="hub",
    show_default=True,
    help="Fill the backlog through the router, or straight into the inbox as the hub.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_context
def bench_flash_cmd(
    obj: Context,
    backlog: int,
    rate: float,
    seconds: float,
    handler_ms: float,
    via: str,
    as_json: bool,
) -> None:
    """FLASH publish→handler latency (SDK consumer) behind a backlog of ROUTINE letters."""
    from liaison.devtools.bench.flash import run_flash  # noqa: PLC0415

    result = run_flash(
        obj.settings,
        backlog=backlog,
        rate=rate,
        seconds=seconds,
        handler_ms=handler_ms,
        via=via,
    )
    _emit(result.as_dict(), as_json)


@bench.command("procedures")
@click.option("--messages", default=5_000, show_default=True, help="Letters per run.")
@click.option("--payload-bytes", default=1024, show_default=True, help="Envelope size to aim for.")
@click.option(
    "--postgres-url",
    default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
    show_default=True,
    help="PostgreSQL to measure on (a scratch schema, dropped after); '' to skip.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_context
def bench_procedures_cmd(
    obj: Context, messages: int, payload_bytes: int, postgres_url: str, as_json: bool
) -> None:
    """Letters registered per second (SQLite, PostgreSQL) beside the router's rate."""
    from liaison.devtools.bench.procedures import run_procedures_bench  # noqa: PLC0415

    result = run_procedures_bench(
        obj.settings,
        messages=messages,
        payload_bytes=payload_bytes,
        postgres_url=postgres_url or None,
    )
    _emit(result.as_dict(), as_json)
