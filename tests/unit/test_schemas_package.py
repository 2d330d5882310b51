"""The ``schemas`` package's public surface."""

from __future__ import annotations

import importlib

import schemas
from schemas.catalog import FAMILIES

OTHERS = ("catalog", "examples", "export")


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions.
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


class TestPublicApi:
    def test_all_is_sorted(self) -> None:
        """``schemas.__all__`` is sorted, so additions land in one obvious place."""
        assert schemas.__all__ == sorted(schemas.__all__)

    def test_every_name_resolves(self) -> None:
        """Every exported name exists on the package."""
        for name in schemas.__all__:
            assert getattr(schemas, name) is not None, name

    def test_wire_is_the_wire_module(self) -> None:
        """``schemas.wire`` is the module of wire names."""
        assert schemas.wire is importlib.import_module("schemas.wire")

    def test_modules_export_what_they_define(self) -> None:
        """Each family module's ``__all__``, and the catalogue's, sorted and resolving."""
        modules = [*FAMILIES, *(importlib.import_module(f"schemas.{name}") for name in OTHERS)]
        for module in modules:
            assert module.__all__ == sorted(module.__all__, key=_isort_key), module.__name__
            for name in module.__all__:
                assert hasattr(module, name), f"{module.__name__}.{name}"
