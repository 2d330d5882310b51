"""The default registry: every message family of the Ministry, every version.

A new family is one module exporting ``MODELS`` (and ``DOWNGRADES`` when it has
a second version), added to :data:`FAMILIES` below.
"""

from __future__ import annotations

import functools
from types import ModuleType

from schemas import (
    chamber,
    committee,
    communication,
    correspondence,
    council,
    legal,
    missions,
    ona,
    palace,
    procedures,
    receipts,
    treaties,
)
from schemas.registry import Downgrade, Registry
from schemas.types import Payload

#: The family modules, in the order the mandate lists them.
FAMILIES: tuple[ModuleType, ...] = (
    correspondence,
    treaties,
    council,
    chamber,
    palace,
    missions,
    communication,
    legal,
    ona,
    receipts,
    procedures,
    committee,
)


@functools.cache
def default_registry() -> Registry:
    """The registry of every family in :data:`FAMILIES`, built once."""
    models: list[type[Payload]] = []
    downgrades: dict[tuple[str, int], Downgrade] = {}
    for family in FAMILIES:
        models.extend(family.MODELS)
        downgrades.update(getattr(family, "DOWNGRADES", {}))
    return Registry.of(models, downgrades)


__all__ = ["FAMILIES", "default_registry"]
