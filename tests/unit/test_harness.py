"""The test harness's settle: negative assertions wait for rest, not for a fixed sleep."""

from __future__ import annotations

import itertools
import time

import pytest

from tests.integration.harness import settle


class TestSettle:
    def test_returns_the_value_once_it_stops_changing(self) -> None:
        """A value that moves, then stays, is returned after one quiet window."""
        values = itertools.chain([1, 2, 3], itertools.repeat(4))
        started = time.monotonic()
        assert settle(lambda: next(values), quiet_s=0.3, timeout=5) == 4
        assert time.monotonic() - started >= 0.3

    def test_fails_when_it_never_rests(self) -> None:
        """A value that keeps moving fails within the bound, saying what it waited for."""
        counter = itertools.count()
        with pytest.raises(AssertionError, match=r"inbox\.gs still changing"):
            settle(lambda: next(counter), quiet_s=0.3, timeout=1, what="inbox.gs")
