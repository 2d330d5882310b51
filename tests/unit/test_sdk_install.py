"""An institution installs the edge SDK without the hub's server-side dependencies.

``requirements-sdk.txt`` lists what ``schemas``, ``producers`` and ``consumers`` need;
the README's command installs it and then the project with ``--no-deps``. Here: its
bounds are the ones ``pyproject.toml`` declares, and the SDK's own imports need nothing
beyond it (``tests/integration/test_sdk_install.py`` installs it in a clean venv).
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Modules the listed distributions provide (py-amqp comes with kombu, pydantic-core with pydantic).
PROVIDED = {"kombu": {"kombu", "amqp"}, "pydantic": {"pydantic", "pydantic_core"}}
#: Part of the packages but not of the library an institution imports: the `liaison send`
#: command (click, installed with the hub) and the copy-alone plain-pika example.
OUTSIDE_THE_LIBRARY = ("producers/cli.py", "producers/examples/")


def _sdk_requirements() -> list[str]:
    lines = (ROOT / "requirements-sdk.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _name(requirement: str) -> str:
    for mark in "<>=!~[ ;":
        requirement = requirement.split(mark, 1)[0]
    return requirement.strip().lower()


def _third_party_imports() -> dict[str, str]:
    """Top-level third-party module -> first SDK file importing it."""
    found: dict[str, str] = {}
    for package in ("schemas", "producers", "consumers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            where = str(path.relative_to(ROOT))
            if where.startswith(OUTSIDE_THE_LIBRARY):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module]
                for name in names:
                    top = name.split(".", 1)[0]
                    if top not in sys.stdlib_module_names and top not in {
                        "__future__",
                        "schemas",
                        "producers",
                        "consumers",
                    }:
                        found.setdefault(top, where)
    return found


def test_sdk_requirements_carry_the_bounds_of_pyproject() -> None:
    """One set of bounds: a change in pyproject.toml without this file fails here."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = set(project["project"]["dependencies"])
    listed = _sdk_requirements()
    assert listed, "requirements-sdk.txt lists nothing"
    assert [r for r in listed if r not in declared] == []


def test_the_sdk_imports_nothing_beyond_its_requirements() -> None:
    """No hub-only dependency (sqlalchemy, structlog, pika, prometheus-client...) in the SDK."""
    allowed = set()
    for requirement in _sdk_requirements():
        name = _name(requirement)
        allowed |= PROVIDED.get(name, {name})
    imported = _third_party_imports()
    assert "kombu" in imported and "pydantic" in imported  # the walk sees the SDK
    assert {top: where for top, where in imported.items() if top not in allowed} == {}
