"""The operator console's logic: queue status and thresholds, dead letters and their actions.

- ``_status`` and ``_letters`` are pure: figures, thresholds and tables as values;
- ``_collect`` and ``_deadq`` are the I/O shell (management API and pika).

``liaison status``, ``watch`` and ``dlq`` (``liaison.cli.ops_cmd``) and the hub's
web server (``liaison.web``) are both built on these.
"""

from liaison.ops._collect import Mode, StatusCollector
from liaison.ops._deadq import DeadLetterQueue, Outcome, Peek
from liaison.ops._letters import (
    DeadLetter,
    Selection,
    dead_letter,
    group_copies,
    identity_problem,
    jsonable,
    pretty_body,
    render_letter,
    render_letters,
    selector,
)
from liaison.ops._status import (
    Breach,
    Health,
    HubQueue,
    HubStatus,
    QueueRow,
    evaluate,
    fill_gaps,
    format_age,
    has_gaps,
    hub_queues,
    merge_rows,
    render_table,
    rows_from_management,
    status_json,
    warnings,
)

__all__ = [
    "Breach",
    "DeadLetter",
    "DeadLetterQueue",
    "Health",
    "HubQueue",
    "HubStatus",
    "Mode",
    "Outcome",
    "Peek",
    "QueueRow",
    "Selection",
    "StatusCollector",
    "dead_letter",
    "evaluate",
    "fill_gaps",
    "format_age",
    "group_copies",
    "has_gaps",
    "hub_queues",
    "identity_problem",
    "jsonable",
    "merge_rows",
    "pretty_body",
    "render_letter",
    "render_letters",
    "render_table",
    "rows_from_management",
    "selector",
    "status_json",
    "warnings",
]
