"""The layout is the architecture: which package may import which, read from the source.

- ``liaison.core`` (the routing core) and ``liaison.ledger`` (the audit ledger) are
  pure: no broker client (pika, kombu, httpx), and nothing of the I/O adapters,
  the CLI or the developer tools, neither directly nor through any module of the
  tree they import (a package's ``__init__`` counts: importing ``a.b`` runs ``a``);
- the SDK (``schemas``, ``producers``, ``consumers``) imports nothing of ``liaison``;
- only the CLI (and the tools themselves) import ``liaison.devtools``.

Nothing is imported to find out: every ``.py`` file is parsed with ``ast``; imports
inside functions and ``TYPE_CHECKING`` blocks count. A rule covers whatever modules
exist under its package, so it holds for a package created later the day it lands.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pytest

from tests.unit.test_imports import ALL, _module_name

BROKER_CLIENTS = frozenset({"pika", "kombu", "httpx"})
PURE = ("liaison.core", "liaison.ledger")
OUTER = ("liaison.adapters", "liaison.cli", "liaison.devtools")
SDK = ("schemas", "producers", "consumers")
DEVTOOLS_MAY_BE_IMPORTED_BY = ("liaison.cli", "liaison.devtools")

Graph = Mapping[str, frozenset[str]]


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


GRAPH: Graph = {_module_name(path): frozenset(names) for path, names in ALL.items()}


def _in_tree(name: str, graph: Graph) -> str | None:
    """The module of the tree that ``name`` loads (``a.b.C`` -> ``a.b``), or ``None``."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in graph:
            return ".".join(parts)
        parts.pop()
    return None


def _loads(module: str, graph: Graph) -> set[str]:
    """``module`` and every module of the tree that importing it runs, parents included."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for parent in (".".join(parts[:i]) for i in range(1, len(parts) + 1)):
            if parent in graph and parent not in seen:
                seen.add(parent)
                todo.extend(n for n in (_in_tree(i, graph) for i in graph[parent]) if n)
    return seen


def impure(packages: Iterable[str], graph: Graph) -> list[str]:
    """Why each module under ``packages`` is not pure: a broker client or an outer layer
    it imports, directly or through the tree."""
    found = []
    for module in sorted(m for m in graph if any(_under(m, p) for p in packages)):
        for loaded in sorted(_loads(module, graph)):
            if any(_under(loaded, outer) for outer in OUTER):
                found.append(f"{module} loads {loaded}")
            clients = sorted({n for n in graph[loaded] if n.split(".")[0] in BROKER_CLIENTS})
            found.extend(f"{module} loads {loaded}, which imports {c}" for c in clients)
    return found


def _importers_of(package: str, graph: Graph) -> dict[str, list[str]]:
    return {
        module: sorted(n for n in names if _under(n, package))
        for module, names in graph.items()
        if any(_under(n, package) for n in names)
    }


def test_the_walk_finds_the_packages_it_rules_on() -> None:
    """The rules below are not vacuous: the ledger, the adapters, the tools and the SDK are seen."""
    for package in ("liaison.ledger", "liaison.adapters", "liaison.devtools", *SDK):
        assert [m for m in GRAPH if _under(m, package) and m != package], package
    assert "liaison.ledger.store" in GRAPH and "liaison.adapters.audit_writer" in GRAPH


@pytest.mark.parametrize("package", PURE)
def test_pure_packages_load_no_broker_client_and_no_outer_layer(package: str) -> None:
    """The routing core and the ledger work without a broker: an auditor needs no pika."""
    assert impure([package], GRAPH) == []


def test_the_purity_check_sees_a_violation_through_the_tree() -> None:
    """A pure module that reaches pika through another module, or imports an adapter, is caught."""
    graph: Graph = {
        "liaison": frozenset(),
        "liaison.ledger": frozenset(),
        "liaison.ledger.store": frozenset({"liaison.settings", "hashlib"}),
        "liaison.ledger.bundle": frozenset({"liaison.adapters", "liaison.adapters.replay"}),
        "liaison.settings": frozenset({"pika.exceptions"}),
        "liaison.adapters": frozenset(),
        "liaison.adapters.replay": frozenset({"pika"}),
    }
    assert impure(["liaison.ledger"], graph) == [
        "liaison.ledger.bundle loads liaison.adapters",
        "liaison.ledger.bundle loads liaison.adapters.replay",
        "liaison.ledger.bundle loads liaison.adapters.replay, which imports pika",
        "liaison.ledger.store loads liaison.settings, which imports pika.exceptions",
    ]
    assert impure(["liaison.core"], graph) == []


@pytest.mark.parametrize("package", SDK)
def test_the_sdk_imports_nothing_of_the_hub(package: str) -> None:
    """Institutions install ``schemas``, ``producers`` and ``consumers`` without the hub."""
    bad = {m: n for m, n in _importers_of("liaison", GRAPH).items() if _under(m, package)}
    assert bad == {}


def test_only_the_cli_imports_the_developer_tools() -> None:
    """The demo and the benchmarks hang off the CLI; no part of the hub depends on them."""
    importers = _importers_of("liaison.devtools", GRAPH)
    bad = {
        m: n
        for m, n in importers.items()
        if not any(_under(m, allowed) for allowed in DEVTOOLS_MAY_BE_IMPORTED_BY)
    }
    assert bad == {}
    assert any(_under(m, "liaison.cli") for m in importers)
