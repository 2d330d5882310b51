"""Process settings shared by the router and the benchmark's baseline.

Kept in one place so that the raw forwarder ``liaison bench`` compares the router
with runs under exactly the same garbage-collector settings as ``liaison serve``.
"""

from __future__ import annotations

import gc


def calm_gc() -> None:
    """Freeze what is loaded so far and collect the young generation less often.

    Everything loaded before the loop starts lives as long as the process: keep it
    out of the collector's way, and let the many short-lived objects of the hot path
    (which form no cycles) accumulate longer between young-generation collections.
    """
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)
