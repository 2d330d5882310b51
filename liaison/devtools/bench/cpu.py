"""CPU time of the processes under measurement, read from ``/proc``.

Rates on a shared 2-core machine move with whatever else runs on it; the CPU
each process spends per message moves far less, and it says where the time goes:
the router, the audit writer, the broker. Linux only: elsewhere (or for a process
that is gone, or a broker on another machine) the figures are ``None``. Several
broker nodes on this machine (a local cluster) count together.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from liaison.adapters.management import Management
from liaison.settings import Settings

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds ``pid`` has used so far, or ``None`` if unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: count fields after its closing ")".
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def broker_pids(settings: Settings) -> tuple[int, ...]:
    """The OS pids of the broker's nodes that run on this machine (empty if none do).

    From the management API's node list (``os_pid``), kept only where this machine
    has a ``beam.smp`` process with that pid: a broker elsewhere has no CPU time here.
    """
    try:
        with Management(settings) as api:
            nodes = api.request("GET", "/nodes")
    except Exception:  # no management API: no broker figure, the rest still stands
        return ()
    pids: list[int] = []
    for node in nodes if isinstance(nodes, list) else ():
        pid = str(node.get("os_pid", ""))
        if pid.isdigit() and _command(int(pid)) == "beam.smp":
            pids.append(int(pid))
    return tuple(pids)


def _command(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


class CpuMeter:
    """CPU seconds of named processes spent on the work measured, net of their idle rate.

    ``idle`` first reads what each process spends doing nothing (a broker's
    statistics, a writer's polling) over a short wait; ``start`` and ``stop`` then
    bracket the work, and ``used`` is the CPU between them less that idle rate
    times the time between them. ``excluded`` leaves a stretch out (the
    benchmark's own load publishing, say).
    """

    def __init__(
        self, pids: dict[str, tuple[int, ...]], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        #: Each role's processes (several routers count together); an empty tuple
        #: (no local broker found) gives ``None``.
        self._pids = pids
        self._clock = clock
        self._idle: dict[str, float] = {}
        self._start: dict[str, float | None] = {}
        self._started_at = 0.0
        self._left_out: dict[str, float] = {}
        self._left_out_s = 0.0
        self.used: dict[str, float | None] = {}

    def idle(self, seconds: float = 1.0) -> None:
        """Read each process's CPU per second while nothing is being measured."""
        before, began = self._read_all(), self._clock()
        time.sleep(seconds)
        after, span = self._read_all(), self._clock() - began
        self._idle = {
            role: max(0.0, (after[role] or 0.0) - (before[role] or 0.0)) / span
            for role in self._pids
            if before[role] is not None and after[role] is not None
        }

    def start(self) -> None:
        """Read every process's CPU time now."""
        self._start, self._started_at = self._read_all(), self._clock()

    @contextmanager
    def excluded(self) -> Iterator[None]:
        """Leave what runs inside out of ``used``."""
        before, began = self._read_all(), self._clock()
        try:
            yield
        finally:
            after = self._read_all()
            for role in self._pids:
                if before[role] is not None and after[role] is not None:
                    left_out = (after[role] or 0.0) - (before[role] or 0.0)
                    self._left_out[role] = self._left_out.get(role, 0.0) + left_out
            self._left_out_s += self._clock() - began

    def stop(self) -> None:
        """``used``: each role's CPU since ``start``, net of idle (``None`` if unreadable)."""
        now, elapsed = self._read_all(), self._clock() - self._started_at - self._left_out_s
        for role in self._pids:
            then = self._start.get(role)
            if now[role] is None or then is None:
                self.used[role] = None
                continue
            spent = (now[role] or 0.0) - then - self._left_out.get(role, 0.0)
            self.used[role] = max(0.0, spent - self._idle.get(role, 0.0) * elapsed)

    def per_message_us(self, messages: int) -> dict[str, float | None]:
        """``used`` as microseconds per message."""
        return {
            role: None if used is None or messages <= 0 else round(used / messages * 1e6, 1)
            for role, used in self.used.items()
        }

    def _read_all(self) -> dict[str, float | None]:
        return {role: _read(pids) for role, pids in self._pids.items()}


def _read(pids: tuple[int, ...]) -> float | None:
    times = [cpu_seconds(pid) for pid in pids]
    if not times or any(t is None for t in times):
        return None
    return sum(t for t in times if t is not None)
