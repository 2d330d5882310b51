"""The one backoff of the hub's reconnect loops (router, relay, audit writer, procedures)."""

from __future__ import annotations

from liaison.adapters.connections import Backoff
from liaison.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_pauses_double_up_to_the_maximum_while_connections_fail_at_once() -> None:
    """Attempts that fail straight away wait 0.5, 1, 2, 4, then 5 s each time."""
    clock = Clock()
    backoff = Backoff(0.5, 5.0, clock=clock)
    pauses = []
    for _ in range(6):
        backoff.connecting()
        clock.now += 0.1
        pauses.append(backoff.pause())
    assert pauses == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_a_connection_that_lasted_starts_again_from_the_first_pause() -> None:
    """After a connection that held for the healthy period, the next loss waits the initial pause."""
    clock = Clock()
    backoff = Backoff(0.5, 15.0, healthy_s=10.0, clock=clock)
    for _ in range(4):
        backoff.connecting()
        assert backoff.pause() > 0
    backoff.connecting()
    clock.now += 9.9
    assert backoff.pause() == 8.0  # not healthy long enough: still growing
    backoff.connecting()
    clock.now += 10.0
    assert backoff.pause() == 0.5
    backoff.connecting()
    assert backoff.pause() == 1.0


def test_settings_give_the_bounds() -> None:
    """Backoff.of reads reconnect_initial_s and reconnect_max_s; a maximum below the start is the start."""
    clock_backoff = Backoff.of(Settings(reconnect_initial_s=2.0, reconnect_max_s=3.0))
    clock_backoff.connecting()
    assert [clock_backoff.pause() for _ in range(3)] == [2.0, 3.0, 3.0]
    assert Backoff(4.0, 1.0).pause() == 4.0
