"""The retry relay's decision, without a broker: whose message it is, and where it may go."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from liaison.core.events import EventKind, decode_batch, encode_batch
from liaison.core.retry import Due, RelayContext, Verdict, relay
from liaison.directory import load_directory
from schemas import wire
from schemas.examples import example_envelope

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
CTX = RelayContext(load_directory(), hub_user="hub", user_prefix="t-")
#: What a hostile participant writes on its park: other inboxes, a forged broker history.
FORGED: dict[str, Any] = {
    "CC": ["gs-archives"],
    "BCC": ["dir-political"],
    "x-death": [{"queue": "inbox.dir-political", "reason": "delivery_limit", "count": 5}],
    wire.H_RETRY_OF: "x",
    wire.H_ACTOR: "operator",
    wire.H_REPLAY_TO: "gs-archives",
    wire.H_RETRY_TO: "gs-archives",
    wire.H_ORIGINAL_USER: "t-gs-legal",
    wire.H_PARKED_BY: "gs-legal",
    wire.H_OWN_RETRY: "gs-archives",
}


def _body(sender: str = "gs") -> bytes:
    return example_envelope(
        "correspondence.letter", 1, sender=sender, recipients=("gs-it",)
    ).encode()


def _due(user_id: str | None, delay: str = "5s", **headers: Any) -> Due:
    return Due(
        body=_body("gs-legal"),
        user_id=user_id,
        headers={wire.H_DELAY: delay, **FORGED, **headers},
        message_id="property-id",
        type="correspondence.letter",
    )


class TestRetry:
    def test_a_due_retry_goes_back_to_the_participants_own_inbox_only(self) -> None:
        """Routing key = the validated user's code; CC/BCC and every forged header dropped."""
        due = _due("t-gs-it", **{wire.H_ATTEMPT: 2})
        decision = relay(due, CTX, now=NOW)
        assert decision.verdict is Verdict.RETRY
        out = decision.out
        assert (out.exchange, out.routing_key) == (wire.DELIVER_EXCHANGE, "gs-it")
        assert out.headers == {wire.H_OWN_RETRY: "gs-it", wire.H_ATTEMPT: 2}
        assert out.body == due.body
        assert decision.events == ()

    def test_the_copys_delivery_token_comes_back_with_the_retry(self) -> None:
        """A retried message can still be acknowledged: its token returns, cut to size."""
        due = _due("t-gs-it", **{wire.H_RECEIPT_TOKEN: "ab" * 16})
        assert relay(due, CTX, now=NOW).out.headers[wire.H_RECEIPT_TOKEN] == "ab" * 16
        long = _due("t-gs-it", **{wire.H_RECEIPT_TOKEN: "x" * 500})
        assert len(relay(long, CTX, now=NOW).out.headers[wire.H_RECEIPT_TOKEN]) == 64

    @pytest.mark.parametrize("attempt", [-1, 10_000, "many", True, 2.5, None])
    def test_the_attempt_count_is_sanitised(self, attempt: Any) -> None:
        """Anything but a small non-negative integer becomes 0."""
        decision = relay(_due("t-gs-it", **{wire.H_ATTEMPT: attempt}), CTX, now=NOW)
        assert decision.out.headers[wire.H_ATTEMPT] == 0


class TestPark:
    def test_a_park_goes_to_dead_letters_with_hub_written_headers(self) -> None:
        """Who parked it comes from user_id; the reason is kept, cut to length; no forgeries."""
        due = _due(
            "t-gs-it",
            "dead",
            **{
                wire.H_REASON: "handler_error",
                wire.H_REASON_TEXT: "x" * 5000,
                wire.H_ERROR_TYPE: "ValueError",
                wire.H_ATTEMPT: 3,
            },
        )
        decision = relay(due, CTX, now=NOW)
        assert decision.verdict is Verdict.PARK
        out = decision.out
        assert out.exchange == wire.DEAD_EXCHANGE
        assert out.headers == {
            wire.H_REASON: "handler_error",
            wire.H_REASON_TEXT: "x" * 1000,
            wire.H_PARKED_BY: "gs-it",
            wire.H_RECIPIENT: "gs-it",
            wire.H_ORIGINAL_EXCHANGE: wire.RETRY_EXCHANGE,
            wire.H_ORIGINAL_ROUTING_KEY: "gs-it",
            wire.H_ATTEMPT: 3,
            wire.H_ERROR_TYPE: "ValueError",
        }

    def test_a_park_is_audited_under_the_bodys_message_id(self) -> None:
        """One `parked` event in the message's history, naming the participant that gave up."""
        due = _due("t-gs-it", "dead", **{wire.H_REASON: "no_handler"})
        decision = relay(due, CTX, now=NOW)
        (event,) = decision.events
        assert event.event is EventKind.PARKED
        envelope_id = example_id(due.body)
        assert event.message_id == envelope_id == decision.out.message_id
        assert event.actor == "gs-it"
        assert event.recipients == ("gs-it",)
        assert event.reason == "no_handler"
        assert event.sender is None  # the body's sender is the parker's word
        assert decode_batch(encode_batch(decision.events)) == list(decision.events)
        again = relay(due, CTX, now=NOW)
        assert again.events[0].dedupe_key == event.dedupe_key

    def test_an_unknown_reason_code_is_not_passed_off_as_the_hubs(self) -> None:
        """A reason that is no reason code becomes handler_error, the claim kept in the text."""
        due = _due("t-gs-it", "dead", **{wire.H_REASON: "recipient_clearance!"})
        decision = relay(due, CTX, now=NOW)
        assert decision.out.headers[wire.H_REASON] == "handler_error"
        assert "recipient_clearance!" in decision.out.headers[wire.H_REASON_TEXT]


class TestRefused:
    @pytest.mark.parametrize(
        ("user_id", "reason"),
        [(None, "sender_mismatch"), ("hub", "unknown_sender"), ("t-ghost", "unknown_sender")],
    )
    @pytest.mark.parametrize("delay", ["5s", "dead"])
    def test_without_a_participants_user_nothing_is_relayed(
        self, user_id: str | None, reason: str, delay: str
    ) -> None:
        """No user_id, the hub's, or a user in no directory: a hub dead letter, audited."""
        decision = relay(_due(user_id, delay), CTX, now=NOW)
        assert decision.verdict is Verdict.REFUSED
        out = decision.out
        assert out.exchange == wire.DEAD_EXCHANGE
        assert out.headers[wire.H_REASON] == reason
        assert out.headers[wire.H_ORIGINAL_EXCHANGE] == wire.RETRY_EXCHANGE
        assert wire.H_PARKED_BY not in out.headers
        assert set(out.headers) <= {
            wire.H_REASON,
            wire.H_REASON_TEXT,
            wire.H_ORIGINAL_EXCHANGE,
            wire.H_ORIGINAL_USER,
        }
        (event,) = decision.events
        assert event.event is EventKind.REJECTED
        assert event.reason == reason
        assert event.actor == "retry-relay"


def example_id(body: bytes) -> str:
    return str(json.loads(body)["message_id"])
