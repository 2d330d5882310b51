"""One style of log event names, read from the source with ``ast``.

Every structlog or stdlib logging call in the hub and the edge SDK names its event
``component.event_in_snake_case`` (``router.consuming``, ``audit.reconnecting``) and
gives the facts as key-value pairs: keyword arguments for structlog, ``key=%s``
placeholders after the event for stdlib ``logging`` (the SDK does not depend on
structlog). Prose as the event (``"audit writer lost the broker; reconnecting"``) cannot
be searched or counted, so the scan refuses it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("liaison", "producers", "consumers")
LEVELS = frozenset(
    {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "msg"}
)
EVENT = r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+"
PAIR = r" [a-z][a-z0-9_]*=(?:%[-#0 +]*\d*(?:\.\d+)?[sdrfgi]|[a-z][a-z0-9_]*)"
STYLE = re.compile(rf"{EVENT}(?:{PAIR})*")


def _is_logger(receiver: ast.expr) -> bool:
    """``log``, ``logger``, ``self._log``, ``structlog.get_logger(...)``: a name saying log."""
    return "log" in ast.unparse(receiver).lower()


def _log_events(source: str, filename: str = "<string>") -> list[tuple[int, ast.expr]]:
    """(line, first argument) of every call to a logging method on a logger."""
    found: list[tuple[int, ast.expr]] = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LEVELS
            and _is_logger(node.func.value)
            and node.args
        ):
            found.append((node.lineno, node.args[0]))
    return found


def _offences(source: str, filename: str = "<string>") -> list[str]:
    bad = []
    for line, first in _log_events(source, filename):
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            if not STYLE.fullmatch(first.value):
                bad.append(f"{filename}:{line}: {first.value!r}")
        elif isinstance(first, ast.JoinedStr):
            bad.append(f"{filename}:{line}: an f-string as the event")
    return bad


SOURCES = sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_the_scan_finds_the_log_calls() -> None:
    """Not vacuous: the router's and the SDK's known events are among those seen."""
    seen = {
        first.value
        for path in SOURCES
        for _line, first in _log_events(path.read_text(encoding="utf-8"))
        if isinstance(first, ast.Constant)
    }
    assert "router.consuming" in seen
    assert any(str(event).startswith("consumer.") for event in seen)
    assert any(str(event).startswith("audit.") for event in seen)


def test_every_log_event_is_dotted_snake_case_with_facts_as_pairs() -> None:
    bad = [
        offence
        for path in SOURCES
        for offence in _offences(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert bad == []


@pytest.mark.parametrize(
    "call",
    [
        'log.warning("audit writer lost the broker; reconnecting")',
        'log.info("topology_change", change=line)',
        'self._log.info("Router.Consuming")',
        'log.warning("lost the broker at %s (%s); retrying", url, exc)',
        'log.error("consumer.failed: %s", exc)',
        'logger.info(f"router.{what}")',
    ],
)
def test_the_scan_refuses_prose_and_other_styles(call: str) -> None:
    assert _offences(call) != []


@pytest.mark.parametrize(
    "call",
    [
        'log.info("router.consuming", queue=name)',
        'self._log.warning("audit.reconnecting", error=text, retry_in_s=1.5)',
        'log.warning("consumer.reconnecting url=%s error=%s retry_in_s=%.1f", u, e, p)',
        'log.info("consumer.stopping signal=%s after=message_in_hand", signum)',
        'parser.error("--url is required")',
    ],
)
def test_the_scan_accepts_the_style(call: str) -> None:
    assert _offences(call) == []
