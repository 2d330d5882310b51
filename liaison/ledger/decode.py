"""The writer's reading of an audit message: ``decode_batch``, with a faster JSON parser.

:func:`liaison.core.events.decode_batch` is the definition: ``json.loads``, then
the event objects validated against :class:`~liaison.core.events.AuditEvent`'s
bounds. :func:`decode_events` does the same with ``jiter`` (the parser pydantic
ships), which takes about half the time of ``json.loads``; then the same
validation of the same data.

Same results: for every document jiter parses, ``json.loads`` gives the same
value (tests/unit/test_audit_decode.py checks this on generated and hostile
input). Where jiter refuses what ``json.loads`` accepts (a UTF-8 BOM, UTF-16,
nesting deeper than 200), or refuses for another reason than json would,
``decode_batch`` itself decides; so do bodies with an escaped UTF-16 half
(``\\ud800``), whose handling has changed between jiter versions (the router's
parser, ``schemas.registry``, sets them aside the same way). So the messages
accepted and refused are exactly those of ``decode_batch``.
"""

from __future__ import annotations

import re
from typing import Any

import jiter
from pydantic import TypeAdapter

from liaison.core.events import AuditEvent, decode_batch

_BATCH = TypeAdapter(list[AuditEvent])
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def decode_events(body: bytes) -> list[AuditEvent]:
    """The events of one audit message; raises as ``decode_batch`` does on a malformed body."""
    if _SURROGATE_ESCAPE.search(body):
        return decode_batch(body)
    try:
        data = jiter.from_json(body)
    except ValueError:
        return decode_batch(body)  # the definition decides, and says why
    items: Any = data["events"]
    # Objects only: a named tuple would also take an array of positional values.
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValueError("an audit batch holds a list of event objects")
    return _BATCH.validate_python(items)
