"""Downgrades that follow the evolution rule: version N+1 only adds optional fields.

A leaf: imports nothing from the families, so each family can build its own
downgrades from it without an import loop.
"""

from __future__ import annotations

from schemas.registry import Downgrade
from schemas.types import Payload


def dropping_added_fields(newer: type[Payload], older: type[Payload]) -> Downgrade:
    """The downgrade from ``newer`` to ``older``: the same payload without the added fields."""

    def downgrade(payload: Payload) -> Payload:
        if not isinstance(payload, newer):
            raise TypeError(
                f"expected a {newer.message_type} v{newer.version}, got {type(payload).__name__}"
            )
        return older.model_validate(payload.model_dump(include=set(older.model_fields)))

    downgrade.__doc__ = f"{newer.message_type} v{newer.version} → v{older.version}."
    return downgrade


__all__ = ["dropping_added_fields"]
