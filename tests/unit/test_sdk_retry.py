"""Retry decisions and headers for failed handlers (no broker)."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.retry import (
    PARK_DELAY,
    RetryPolicy,
    Step,
    attempts_so_far,
    carried_headers,
    error_text,
    error_type,
    failure_headers,
    next_step,
    park_headers,
)
from schemas import wire
from schemas.errors import ReasonCode


class FilingError(Exception):
    """A handler's own error type."""


class TestSchedule:
    def test_default_delays_are_the_topologys(self) -> None:
        """By default the consumer uses exactly the delay queues the hub declares."""
        assert RetryPolicy().delays == tuple(wire.RETRY_DELAYS_MS)
        assert RetryPolicy().max_attempts == len(wire.RETRY_DELAYS_MS) + 1

    @pytest.mark.parametrize(
        ("previous", "expected"),
        [
            (None, Step("5s", 1)),
            (1, Step("30s", 2)),
            (2, Step("5m", 3)),
            (3, Step(PARK_DELAY, 4)),
            (9, Step(PARK_DELAY, 10)),
        ],
    )
    def test_each_failure_takes_the_next_delay_then_parks(
        self, previous: int | None, expected: Step
    ) -> None:
        """Failure n waits delays[n-1]; after the last delay the message is parked."""
        headers = {} if previous is None else {wire.H_ATTEMPT: previous}
        assert next_step(RetryPolicy(), headers) == expected

    def test_custom_schedule(self) -> None:
        """Tests and impatient systems use their own (topology-declared) delays."""
        policy = RetryPolicy(("1s", "2s"))
        assert [next_step(policy, {wire.H_ATTEMPT: n}).delay for n in range(4)] == [
            "1s",
            "2s",
            PARK_DELAY,
            PARK_DELAY,
        ]
        assert next_step(RetryPolicy(()), None).parked

    @pytest.mark.parametrize("bad", ["", PARK_DELAY])
    def test_a_delay_cannot_be_empty_or_the_park_value(self, bad: str) -> None:
        """'dead' parks; it cannot also be a delay."""
        with pytest.raises(ValueError, match="not a delay"):
            RetryPolicy(("1s", bad))

    @pytest.mark.parametrize(
        ("value", "expected"),
        [(2, 2), ("3", 3), (b"4", 4), ("x", 0), (-1, 0), (True, 0), (10**9, 0), (None, 0)],
    )
    def test_attempt_header_is_read_defensively(self, value: Any, expected: int) -> None:
        """A forged or garbled header cannot crash the consumer or skip the schedule."""
        assert attempts_so_far({wire.H_ATTEMPT: value}) == expected


class TestHeaders:
    def test_error_type_and_text(self) -> None:
        """Built-ins by name, others with their module; text is 'Type: message', bounded."""
        assert error_type(ValueError("x")) == "ValueError"
        assert error_type(FilingError("x")) == f"{__name__}.FilingError"
        assert error_text(FilingError("registry closed")) == "FilingError: registry closed"
        assert error_text(KeyError()) == "KeyError"
        assert len(error_text(ValueError("x" * 5000))) == 1000

    def test_broker_headers_are_not_carried(self) -> None:
        """x-death and friends start afresh on a re-publish; the hub's headers stay."""
        headers = {
            "x-death": [{"count": 1}],
            "x-delivery-count": 2,
            "x-first-death-reason": "expired",
            "x-last-death-queue": "hub.retry.5s",
            wire.H_RETRY_OF: "abc",
        }
        assert carried_headers(headers) == {wire.H_RETRY_OF: "abc"}

    def test_retry_headers(self) -> None:
        """A retry names the delay, the attempt, the reason and the exception."""
        headers = failure_headers(
            {wire.H_ATTEMPT: 1}, Step("30s", 2), FilingError("closed"), code="gs-archives"
        )
        assert headers == {
            wire.H_DELAY: "30s",
            wire.H_ATTEMPT: 2,
            wire.H_REASON: ReasonCode.HANDLER_ERROR.value,
            wire.H_REASON_TEXT: "FilingError: closed",
            wire.H_ERROR_TYPE: f"{__name__}.FilingError",
        }

    def test_parked_failure_says_whose_copy_it_was(self) -> None:
        """Parked after the last attempt: the recipient and origin, as the router's dead letters."""
        headers = failure_headers(None, Step(PARK_DELAY, 4), ValueError("no"), code="gs-it")
        assert headers[wire.H_DELAY] == PARK_DELAY
        assert headers[wire.H_RECIPIENT] == "gs-it"
        assert headers[wire.H_ORIGINAL_EXCHANGE] == wire.DELIVER_EXCHANGE
        assert headers[wire.H_ORIGINAL_ROUTING_KEY] == "gs-it"
        assert headers[wire.H_ERROR_TYPE] == "ValueError"

    def test_park_headers_for_input_no_handler_can_take(self) -> None:
        """Undecodable or unhandled messages are parked with the contract's reason and path."""
        headers = park_headers(
            {"x-death": []},
            reason=ReasonCode.NOT_JSON,
            text="not JSON",
            code="gs",
            path="payload",
        )
        assert headers == {
            wire.H_DELAY: PARK_DELAY,
            wire.H_REASON: "not_json",
            wire.H_REASON_TEXT: "not JSON",
            wire.H_REASON_PATH: "payload",
            wire.H_RECIPIENT: "gs",
            wire.H_ORIGINAL_EXCHANGE: wire.DELIVER_EXCHANGE,
            wire.H_ORIGINAL_ROUTING_KEY: "gs",
        }
