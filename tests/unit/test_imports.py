"""Import directions between the packages, read from the source with ``ast``.

``schemas`` (the contracts) needs only pydantic (and its parser, jiter), cryptography
and the standard library; the edge SDK (``producers``, ``consumers``) never imports the hub
(``liaison``), and neither side of it (nor the hub) imports a private (``_name``) module of
the other, so what they share lives in a public module; nothing imports the hub's CLI but the CLI itself and ``python -m
liaison``. Imports inside functions and ``TYPE_CHECKING`` blocks count too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "producers", "consumers", "liaison")
SCHEMAS_MAY_IMPORT = frozenset({"pydantic", "pydantic_core", "jiter", "cryptography", "schemas"})
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, as absolute dotted names (relative ones resolved);
    ``from a import b`` names both ``a`` and ``a.b`` (``b`` may be a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join([*parts, *([node.module] if node.module else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


ALL = {path: _imports(path) for package in PACKAGES for path in _sources(package)}


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _crosses_into_private(importer: str, name: str) -> bool:
    """``importer`` reaches into a private module of the SDK package it is not part of."""
    return (
        _top(name) in {"producers", "consumers"}
        and _top(name) != _top(importer)
        and any(part.startswith("_") for part in name.split(".")[1:])
    )


def _where(path: Path) -> str:
    return str(path.relative_to(ROOT))


class TestImportDirections:
    def test_every_package_is_seen(self) -> None:
        """The walk finds the modules of all four packages (a moved tree would make it vacuous)."""
        for package in PACKAGES:
            assert _sources(package), package
        assert any(p.name == "consumer.py" for p in ALL)

    def test_schemas_imports_only_pydantic_cryptography_and_stdlib(self) -> None:
        """The contracts stand alone: any system can depend on ``schemas`` without the hub."""
        bad = [
            f"{_where(path)} imports {name}"
            for path, names in ALL.items()
            if _module_name(path).startswith("schemas")
            for name in sorted(names)
            if _top(name) not in SCHEMAS_MAY_IMPORT | STDLIB
        ]
        assert bad == []

    @pytest.mark.parametrize("package", ["producers", "consumers"])
    def test_edge_sdk_never_imports_the_hub(self, package: str) -> None:
        """Institutions install the SDK without the hub: no ``liaison`` import anywhere in it."""
        bad = [
            f"{_where(path)} imports {name}"
            for path, names in ALL.items()
            if _module_name(path).startswith(package)
            for name in sorted(names)
            if _top(name) == "liaison"
        ]
        assert bad == []

    def test_no_package_imports_a_private_module_of_the_sdk_from_outside(self) -> None:
        """``consumers`` and the hub use only public modules of ``producers`` (and back)."""
        bad = [
            f"{_where(path)} imports {name}"
            for path, names in ALL.items()
            for name in sorted(names)
            if _crosses_into_private(_module_name(path), name)
        ]
        assert bad == []

    def test_the_private_module_check_sees_a_private_import(self) -> None:
        """The rule above is not vacuous: a private cross import in the source would be caught."""
        assert _crosses_into_private("consumers.consumer", "producers._amqp")
        assert _crosses_into_private("liaison.adapters.connections", "consumers._helpers")
        assert not _crosses_into_private("producers.publisher", "producers._amqp")
        assert not _crosses_into_private("consumers.consumer", "producers.amqp")

    def test_only_the_cli_and_main_import_the_cli(self) -> None:
        """The CLI is the outermost layer: no library module depends on it."""
        bad = [
            f"{_where(path)} imports {name}"
            for path, names in ALL.items()
            if not _module_name(path).startswith("liaison.cli")
            and _module_name(path) != "liaison.__main__"
            for name in sorted(names)
            if name == "liaison.cli" or name.startswith("liaison.cli.")
        ]
        assert bad == []

    def test_plain_pika_example_uses_no_project_module(self) -> None:
        """The example for systems without the SDK can be copied alone: pika, stdlib, cryptography."""
        path = ROOT / "producers" / "examples" / "plain_pika.py"
        names = _imports(path)
        assert {_top(n) for n in names} <= {"pika", "cryptography"} | STDLIB, names


def test_consumer_errors_moved_and_still_answer_to_their_old_names() -> None:
    """``ConsumeError``/``ReplyTimeout`` live in ``consumers.errors``; old imports still work."""
    import consumers
    import consumers.errors
    import producers
    import producers.errors

    for name in ("ConsumeError", "ReplyTimeout"):
        new = getattr(consumers.errors, name)
        assert new.__module__ == "consumers.errors"
        assert getattr(consumers, name) is new
        assert getattr(producers, name) is new
        assert getattr(producers.errors, name) is new
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _ = producers.Nothing
