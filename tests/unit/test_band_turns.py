"""The SDK consumer's choice between its two bands: urgent first, never starving routine."""

from __future__ import annotations

from consumers.consumer import URGENT_RUN, urgent_turn


def handled_order(urgent: int, routine: int) -> list[str]:
    """The order in which a consumer with both buffers full hands messages to its handler."""
    order: list[str] = []
    streak = 0
    while True:
        turn = urgent_turn(urgent > 0, routine > 0, streak)
        if turn is None:
            return order
        if turn:
            urgent -= 1
            streak += 1
            order.append("urgent")
        else:
            routine -= 1
            streak = 0
            order.append("routine")


def test_urgent_goes_first_when_a_few_arrive_behind_a_backlog() -> None:
    """Three FLASH behind a routine backlog are handled before any routine message."""
    assert handled_order(3, 5) == ["urgent"] * 3 + ["routine"] * 5


def test_a_flood_of_urgent_lets_routine_through_once_per_run() -> None:
    """A flood of FLASH: one routine message after every URGENT_RUN urgent ones."""
    order = handled_order(3 * URGENT_RUN, 10)
    assert order[:URGENT_RUN] == ["urgent"] * URGENT_RUN
    assert order[URGENT_RUN] == "routine"
    assert order.count("routine") == 10
    assert order.index("routine", URGENT_RUN + 1) == 2 * URGENT_RUN + 1


def test_nothing_waiting_is_no_turn() -> None:
    """With both buffers empty there is nothing to hand over; with one empty the other goes."""
    assert urgent_turn(False, False, 0) is None
    assert urgent_turn(True, False, 10 * URGENT_RUN) is True
    assert urgent_turn(False, True, 0) is False
