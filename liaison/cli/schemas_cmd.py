"""``liaison schemas``: the message catalogue, and its export as JSON Schema and AsyncAPI.

Neither command needs settings or a broker: they read the default registry only.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import click

from schemas import export
from schemas.catalog import default_registry


@click.group()
def schemas() -> None:
    """The message types the hub knows, and their published contracts."""


@schemas.command("list")
def list_() -> None:
    """Print every registered message type and version."""
    registry = default_registry()
    rows = [
        (type_, str(version), model.__name__, export.summary(model))
        for (type_, version), model in sorted(registry.models.items())
    ]
    header = ("TYPE", "VERSION", "MODEL", "SUMMARY")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        # The summary, last, is not padded: it runs to the end of the line.
        padded = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        click.echo("  ".join([*padded, row[3]]))


@schemas.command("export")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
def export_(directory: Path) -> None:
    """Write one JSON Schema per type and version, and asyncapi.json, into DIR."""
    registry = default_registry()
    files = export.json_schemas(registry)
    document = export.asyncapi_document(registry, version=metadata.version("liaison"))
    texts = {name: export.render(schema) for name, schema in files.items()}
    texts[export.ASYNCAPI_FILENAME] = export.render(document)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            (directory / name).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write into {directory}: {exc}") from None
    click.echo(f"wrote {len(files)} JSON Schemas and {export.ASYNCAPI_FILENAME} to {directory}")
