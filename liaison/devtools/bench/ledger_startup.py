"""The audit writer's start-up, measured in a fresh process: time and resident memory.

``python -m liaison.devtools.bench.ledger_startup DIR KEY_FILE`` opens the ledger in ``DIR`` as
the writer does (lock, recovery, index) and prints one JSON object: seconds to
open, resident and peak memory after it (``/proc``), records, records read.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from liaison.ledger.keys import load_or_create
from liaison.ledger.store import Ledger


def _memory_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def main(argv: list[str]) -> None:
    """Open, measure, close; print the figures."""
    directory, key_file = Path(argv[0]), Path(argv[1])
    key = load_or_create(key_file)
    before = _memory_mb("VmRSS")
    started = time.perf_counter()
    ledger = Ledger.open(directory, key=key)
    seconds = time.perf_counter() - started
    figures = {
        "records": ledger.size,
        "records_read": ledger.recovery.records_read,
        "resumed_from": ledger.recovery.resumed_from,
        "open_s": round(seconds, 3),
        "rss_before_mb": before,
        "rss_mb": _memory_mb("VmRSS"),
        "peak_rss_mb": _memory_mb("VmHWM"),
    }
    ledger.close()
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1:])
