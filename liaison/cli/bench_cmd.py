"""``liaison bench``: measured figures, hub against raw baseline in one run."""

from __future__ import annotations

import json

import click

from liaison.cli import Context, pass_context


@click.command()
@click.option("--messages", default=20_000, show_default=True, help="Messages per throughput run.")
@click.option("--rate", default=1_000, show_default=True, help="Offered msg/s in the latency run.")
@click.option("--seconds", default=5.0, show_default=True, help="Length of the latency run.")
@click.option("--payload-bytes", default=1024, show_default=True, help="Envelope size to aim for.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_context
def bench(
    obj: Context, messages: int, rate: int, seconds: float, payload_bytes: int, as_json: bool
) -> None:
    """Benchmark the router against a raw pika forwarder on a scratch vhost."""
    from liaison.bench.hub import run_bench  # noqa: PLC0415 - heavy imports only when used

    result = run_bench(
        obj.settings, messages=messages, rate=rate, seconds=seconds, payload_bytes=payload_bytes
    )
    if as_json:
        click.echo(json.dumps(result.as_dict()))
        return
    for key, value in result.as_dict().items():
        click.echo(f"{key:>22}  {value}")
