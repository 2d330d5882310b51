"""The routing decision's integrity rules, without a broker: reused ids, receipts, its own failures."""

from __future__ import annotations

import hmac
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from liaison.core.decide import Incoming, RoutingContext, decide
from liaison.core.events import decode_batch, encode_batch
from liaison.core.rules import Rules
from liaison.core.tokens import load_or_create_secret, receipt_token
from liaison.core.values import Decision
from liaison.core.window import IdWindow
from liaison.directory import load_directory
from liaison.errors import ConfigError
from schemas import wire
from schemas.catalog import default_registry
from schemas.envelope import Envelope, canonical_json, new_envelope
from schemas.errors import ReasonCode
from schemas.examples import example_envelope
from schemas.receipts import ReceiptRegistered
from schemas.types import Payload

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HUB = "liaison-hub"
SECRET = bytes(range(32))


@pytest.fixture(scope="module")
def ctx() -> RoutingContext:
    directory = load_directory(None)
    return RoutingContext(
        registry=default_registry(),
        directory=directory,
        rules=Rules.load(None, directory),
        hub_user=HUB,
        receipt_secret=SECRET,
    )


def letter(sender: str = "gs", subject: str = "Note verbale", **update: Any) -> Envelope[Payload]:
    env = example_envelope("correspondence.letter", 1, sender=sender, recipients=("gs-archives",))
    payload = env.payload.model_copy(update={"subject": subject})
    return env.model_copy(
        update={"created_at": NOW - timedelta(seconds=1), "payload": payload, **update}
    )


def route(
    ctx: RoutingContext,
    env: Envelope[Payload] | bytes,
    user: str | None,
    window: IdWindow | None = None,
    headers: dict[str, Any] | None = None,
    now: datetime = NOW,
) -> Decision:
    body = env if isinstance(env, bytes) else env.encode()
    return decide(Incoming(body, user, "rk", headers or {}), ctx, now=now, window=window)


def kinds(decision: Decision) -> list[str]:
    return [e.event.value for e in decision.events]


def keys(decision: Decision) -> set[str]:
    return {e.dedupe_key for e in decision.events}


def assert_refused_with_content(decision: Decision, reason: ReasonCode, body: bytes) -> None:
    """Refused, dead-lettered with the bytes, and audited with the envelope as it arrived."""
    assert decision.reason is reason
    assert decision.deliveries == ()
    (dead,) = decision.dead_letters
    assert dead.body == body and dead.headers[wire.H_REASON] == reason.value
    assert kinds(decision) == ["received", "rejected", "dead_lettered"]
    (received,) = decode_batch(encode_batch(decision.events[:1]))
    assert received.envelope == json.loads(body)  # the refused content itself is in the ledger


class TestReusedIds:
    def test_another_sender_reusing_an_id_is_refused(self, ctx: RoutingContext) -> None:
        """B sending with an id A already used is refused as id_reused, dead-lettered and audited with B's content."""
        window = IdWindow(100)
        first = letter("gs")
        assert route(ctx, first, "gs", window).routed
        other = letter("gs-legal", "Autre chose", message_id=first.message_id)
        decision = route(ctx, other, "gs-legal", window)
        assert_refused_with_content(decision, ReasonCode.ID_REUSED, other.encode())
        assert "'gs'" in decision.dead_letters[0].headers[wire.H_REASON_TEXT]

    def test_same_sender_other_content_back_to_back(self, ctx: RoutingContext) -> None:
        """Two messages from one sender with one id, decided before any confirm: the second is refused, not delivered."""
        window = IdWindow(100)
        first = letter(subject="First version")
        second = letter(subject="Second version", message_id=first.message_id)
        assert route(ctx, first, "gs", window).deliveries  # claimed at decision time
        decision = route(ctx, second, "gs", window)
        assert_refused_with_content(decision, ReasonCode.ID_REUSED, second.encode())

    def test_true_duplicate_stays_a_duplicate(self, ctx: RoutingContext) -> None:
        """The same sender's same bytes again: dropped, audited as a duplicate, no dead letter."""
        window = IdWindow(100)
        env = letter()
        first = route(ctx, env, "gs", window)
        again = route(ctx, env, "gs", window)
        assert kinds(again) == ["duplicate"] and not again.dead_letters and not again.deliveries
        assert not again.claimed and first.claimed

    def test_refused_message_does_not_claim_its_id(self, ctx: RoutingContext) -> None:
        """A spoof carrying a genuine message's id (refused) cannot make the genuine one a reuse."""
        window = IdWindow(100)
        env = letter("gs")
        assert route(ctx, env, "ona", window).reason is ReasonCode.SENDER_MISMATCH
        assert route(ctx, env, "gs", window).routed

    def test_released_claim_routes_the_redelivery(self, ctx: RoutingContext) -> None:
        """A message handed back to the broker unacked releases its claim, so its redelivery is routed, not dropped."""
        window = IdWindow(100)
        env = letter()
        decision = route(ctx, env, "gs", window)
        window.release(decision.message_id)
        assert route(ctx, env, "gs", window).deliveries

    def test_reuse_beyond_the_window_gets_its_own_records(self, ctx: RoutingContext) -> None:
        """Past the window (restart, eviction) a reused id is routed, but no audit key of it equals one of the first's."""
        first = letter("gs", "First version")
        same_sender = letter("gs", "Second version", message_id=first.message_id)
        other_sender = letter("gs-legal", "First version", message_id=first.message_id)
        a = route(ctx, first, "gs")
        for later, user in ((same_sender, "gs"), (other_sender, "gs-legal")):
            b = route(ctx, later, user)
            assert b.routed
            assert not keys(a) & keys(b)
            for event in b.events:
                assert later.sender in event.dedupe_key
        # While the very same message keeps its keys: the audit writer records it once.
        assert keys(route(ctx, first, "gs")) == keys(a)


class TestExpiryBoundary:
    def test_expiring_exactly_now_is_expired(self, ctx: RoutingContext) -> None:
        """expires_at == now is refused as expired; a microsecond later it is routed."""
        env = letter(expires_at=NOW)
        assert route(ctx, env, "gs").reason is ReasonCode.EXPIRED
        later = letter(expires_at=NOW + timedelta(microseconds=1))
        assert route(ctx, later, "gs").routed


def receipt_for(original: Envelope[Payload], sender: str, to: tuple[str, ...]) -> Envelope[Any]:
    payload = ReceiptRegistered(
        original_message_id=original.message_id,
        registered_on=NOW.date(),
        registry_number="ARCH/2026/1234",
    )
    return new_envelope(payload, sender=sender, recipients=to, created_at=NOW)


class TestReceiptTokens:
    def test_every_copy_carries_its_recipients_token(self, ctx: RoutingContext) -> None:
        """Each delivered copy (rule copies too) carries the HMAC of (id, recipient, sender)."""
        env = example_envelope(
            "treaty.stage_reached", 1, sender="gs-treaties", recipients=("council",)
        )
        env = env.model_copy(update={"created_at": NOW - timedelta(seconds=1)})
        decision = route(ctx, env, "gs-treaties")
        # gs-legal: a rule; gs-procedures: the treaty file's observer copy
        assert [d.routing_key for d in decision.deliveries] == [
            "council",
            "gs-legal",
            "gs-procedures",
        ]
        for copy in decision.deliveries:
            expected = receipt_token(SECRET, str(env.message_id), copy.routing_key, "gs-treaties")
            assert copy.headers == {wire.H_RECEIPT_TOKEN: expected}
        assert (
            len({d.headers[wire.H_RECEIPT_TOKEN] for d in decision.deliveries}) == 3
        )  # one per recipient

    def test_receipt_with_its_copys_token_is_accepted(self, ctx: RoutingContext) -> None:
        """The recipient's receipt, carrying the token of its copy, is delivered and enters the original's history."""
        original = letter()
        copies = route(ctx, original, "gs").deliveries
        (copy,) = [c for c in copies if c.routing_key == "gs-archives"]
        receipt = receipt_for(original, "gs-archives", ("gs",))
        decision = route(ctx, receipt, "gs-archives", headers=dict(copy.headers))
        # The receipt goes to the letter's sender, and the registry's observer copy.
        assert [d.routing_key for d in decision.deliveries] == ["gs", "gs-procedures"]
        assert "receipt" in kinds(decision)

    @pytest.mark.parametrize(
        ("case", "sender", "to", "token_of"),
        [
            ("no token", "gs-legal", ("gs",), None),
            ("another recipient's token", "gs-legal", ("gs",), "gs-archives"),
            (
                "token, but to another than the original sender",
                "gs-archives",
                ("ona",),
                "gs-archives",
            ),
            ("more than one recipient", "gs-archives", ("gs", "ona"), "gs-archives"),
        ],
    )
    def test_forged_receipt_is_refused(
        self, ctx: RoutingContext, case: str, sender: str, to: tuple[str, ...], token_of: str | None
    ) -> None:
        """A receipt without the token of a copy delivered to its sender is refused, audited, and enters no history."""
        original = letter()
        copies = {d.routing_key: d.headers for d in route(ctx, original, "gs").deliveries}
        receipt = receipt_for(original, sender, to)
        headers = dict(copies[token_of]) if token_of else {}
        decision = route(ctx, receipt, sender, headers=headers)
        assert decision.reason is ReasonCode.RECEIPT_NOT_DELIVERED, case
        assert decision.deliveries == () and len(decision.dead_letters) == 1, case
        assert kinds(decision) == ["received", "rejected", "dead_lettered"], case
        assert all(e.message_id == str(receipt.message_id) for e in decision.events), case

    def test_relayed_receipt_is_trusted(self, ctx: RoutingContext) -> None:
        """A receipt re-published by the hub's user (operator retry) needs no token: relays are trusted."""
        receipt = receipt_for(letter(), "gs-archives", ("gs",))
        headers = {wire.H_RETRY_OF: str(receipt.message_id), wire.H_OPERATION: "op-9"}
        decision = route(ctx, receipt, HUB, headers=headers)
        assert decision.deliveries and "receipt" in kinds(decision)


class _FailingRules(Rules):
    def extra_recipients(self, *args: Any, **kwargs: Any) -> tuple[str, ...]:
        raise RuntimeError("a bug in the rules")


class _FailingRegistry:
    def decode_with_data(self, *args: Any, **kwargs: Any) -> Any:
        raise KeyError("a bug in decoding")


class TestInternalError:
    def test_failure_after_decoding_is_a_refusal_with_the_content(
        self, ctx: RoutingContext
    ) -> None:
        """An exception while deciding is refused as internal_error, dead-lettered and audited with the envelope, never raised."""
        broken = replace(ctx, rules=_FailingRules((), ctx.directory))
        window = IdWindow(10)
        env = letter()
        decision = route(broken, env, "gs", window)
        assert_refused_with_content(decision, ReasonCode.INTERNAL_ERROR, env.encode())
        text = decision.dead_letters[0].headers[wire.H_REASON_TEXT]
        assert "RuntimeError: a bug in the rules" in text  # what and where, for the operator
        assert "test_integrity.py" in text
        assert str(env.message_id) not in window  # a refusal claims no id

    def test_failure_while_decoding_is_a_refusal(self, ctx: RoutingContext) -> None:
        """An exception other than ContractError from the decoder is refused as internal_error under the body's digest."""
        broken = replace(ctx, registry=_FailingRegistry())  # type: ignore[arg-type]
        decision = route(broken, letter(), "gs")
        assert decision.reason is ReasonCode.INTERNAL_ERROR
        assert decision.message_id.startswith("sha256:")
        assert kinds(decision) == ["received", "rejected", "dead_lettered"]
        assert len(decode_batch(encode_batch(decision.events))) == 3

    @pytest.mark.parametrize(
        "created_at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:00-23:59"]
    )
    def test_datetime_beyond_utc_is_a_contract_error(
        self, ctx: RoutingContext, created_at: str
    ) -> None:
        """A created_at that has no UTC equivalent is a schema violation at created_at, not a crash."""
        data = letter().to_jsonable()
        data["created_at"] = created_at
        decision = route(ctx, canonical_json(data), "gs")
        assert decision.reason is ReasonCode.SCHEMA_VIOLATION
        assert decision.dead_letters[0].headers[wire.H_REASON_PATH] == "created_at"


class TestTokenFunction:
    @pytest.mark.parametrize("secret", [bytes(32), b"k" * 64, bytes(range(100))])
    def test_token_is_truncated_hmac_sha256(self, secret: bytes) -> None:
        """The token is the first 16 bytes of HMAC-SHA256 over id, recipient and sender, in hex: what an independent check computes."""
        data = b"fbf4a496-674f-45c2-937c-1bed13ccef4a\ngs-archives\ngs"
        expected = hmac.digest(secret, data, "sha256")[:16].hex()
        got = receipt_token(secret, "fbf4a496-674f-45c2-937c-1bed13ccef4a", "gs-archives", "gs")
        assert got == expected and len(got) == 32

    def test_secret_is_created_once_and_private(self, tmp_path: Path) -> None:
        """The secret file is created 0600 on first use and read back unchanged after."""
        path = tmp_path / "keys" / "receipt.key"
        first = load_or_create_secret(path)
        assert len(first) == 32 and path.stat().st_mode & 0o777 == 0o600
        assert load_or_create_secret(path) == first
        path.write_bytes(b"short")
        with pytest.raises(ConfigError, match="at least 32"):
            load_or_create_secret(path)
