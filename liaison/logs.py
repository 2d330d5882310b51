"""Logging set-up for the command line. The library itself never configures logging."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure_logging(*, json: bool | None = None, level: str = "info") -> None:
    """structlog to standard error: JSON lines unless it is a terminal (or ``json`` says)."""
    as_json = (not sys.stderr.isatty()) if json is None else json
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # pika logs connection trouble at WARNING through the standard library: one line
    # each, never a traceback (the error that matters reaches the command, which says
    # it in one line).
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter("%(levelname)s:%(name)s:%(message)s"))
    handler.addFilter(_not_reported_by_caller)
    logging.basicConfig(level=max(numeric, logging.WARNING), handlers=[handler])


#: pika's own log records of a failed connection attempt (logger, start of the message).
#: The error is raised to the caller (or handed to the router's open-error callback),
#: which says it in one line; printed too, they would put five lines of pika before it.
_RAISED_ANYWAY = (
    ("pika.adapters.utils.connection_workflow", ""),
    ("pika.connection", "Connection closed while"),
    ("pika.connection", "Probably incompatible"),
    ("pika.adapters.blocking_connection", "Connection workflow failed"),
    ("pika.adapters.blocking_connection", "Error in _create_connection()"),
    ("pika.adapters.base_connection", "Full-stack connection workflow failed"),
    ("pika.adapters.base_connection", "Self-initiated stack bring-up failed"),
)


def _not_reported_by_caller(record: logging.LogRecord) -> bool:
    message = str(record.msg)
    return not any(
        record.name == name and message.startswith(start) for name, start in _RAISED_ANYWAY
    )


class _OneLineFormatter(logging.Formatter):
    """A standard-library record on one line: the message without a traceback."""

    def formatException(self, ei: Any) -> str:  # noqa: N802 - the standard library's name
        return ""

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - idem
        return ""
