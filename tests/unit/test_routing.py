"""The routing decision, without a broker: what gets delivered, refused and audited."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liaison.core.decide import Decision, Incoming, RoutingContext, decide
from liaison.core.events import EventKind, decode_batch, encode_batch
from liaison.core.rules import Rules
from liaison.core.values import amqp_text
from liaison.core.window import IdWindow
from liaison.directory import Directory, load_directory
from schemas import wire
from schemas.catalog import default_registry
from schemas.envelope import canonical_json
from schemas.errors import ReasonCode
from schemas.examples import example_envelope
from schemas.signing import public_key_to_b64, sign
from schemas.types import Classification, Precedence

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HUB = "liaison-hub"
SECRET = b"s" * 32


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


def envelope(type_: str, sender: str, recipients: tuple[str, ...] = (), **kw: object):  # type: ignore[no-untyped-def]
    version = max(default_registry().versions(type_))
    env = example_envelope(type_, version, sender=sender, recipients=recipients, **kw)  # type: ignore[arg-type]
    return env.model_copy(update={"created_at": NOW - timedelta(seconds=1)})


def route(ctx: RoutingContext, body: bytes, user: str | None, **kw: object) -> Decision:
    return decide(Incoming(body=body, user_id=user, routing_key="rk", **kw), ctx, now=NOW)  # type: ignore[arg-type]


def events(decision: Decision) -> list[str]:
    return [e.event.value for e in decision.events]


class TestRouted:
    def test_letter_reaches_its_recipient_untouched(self, ctx: RoutingContext) -> None:
        """A valid letter is delivered once, byte for byte, and audited as received, routed, delivered."""
        body = envelope("correspondence.letter", "gs", ("gs-archives",)).encode()
        decision = route(ctx, body, "gs")
        # gs-procedures: the bundled rules copy every letter to the registry.
        assert [d.routing_key for d in decision.deliveries] == ["gs-archives", "gs-procedures"]
        assert decision.deliveries[0].body == body
        assert decision.deliveries[0].exchange == wire.DELIVER_EXCHANGE
        assert decision.dead_letters == ()
        assert events(decision) == ["received", "routed", "delivered"]
        assert decision.routed and decision.reason is None
        (batch,) = (decode_batch(encode_batch(decision.events[:1])),)
        received = batch[0]
        assert received.envelope is not None
        assert received.envelope["sender"] == "gs"
        assert canonical_json(received.envelope) == body  # kept exactly as it arrived

    def test_every_copy_carries_the_routing_time_of_its_routed_record(
        self, ctx: RoutingContext
    ) -> None:
        """The procedures service dates a copy by it; a rebuild reads the same instant."""
        body = envelope("correspondence.letter", "gs", ("gs-archives",)).encode()
        decision = route(ctx, body, "gs")
        routed = next(e for e in decision.events if e.event is EventKind.ROUTED)
        assert routed.at == NOW
        assert {d.timestamp for d in decision.deliveries} == {int(NOW.timestamp())}

    def test_treaty_messages_are_copied_to_the_legal_service(self, ctx: RoutingContext) -> None:
        """The treaties rule adds gs-legal (and the procedures service's observer copy)."""
        body = envelope("treaty.stage_reached", "gs-treaties", ("council",)).encode()
        decision = route(ctx, body, "gs-treaties")
        expected = ["council", "gs-legal", "gs-procedures"]
        assert [d.routing_key for d in decision.deliveries] == expected
        routed = next(e for e in decision.events if e.event is EventKind.ROUTED)
        assert routed.recipients == tuple(expected)

    def test_flash_cable_also_goes_to_the_duty_officer(self, ctx: RoutingContext) -> None:
        """A FLASH cable reaches the duty officer; a ROUTINE one does not."""
        sender = next(
            p.code for p in ctx.directory if p.can_send("mission.cable") and p.code != "gs"
        )
        flash = envelope("mission.cable", sender, ("gs",), precedence=Precedence.FLASH)
        routine = envelope("mission.cable", sender, ("gs",), precedence=Precedence.ROUTINE)
        assert "duty-officer" in [
            wire.delivery_recipient(d.routing_key)
            for d in route(ctx, flash.encode(), sender).deliveries
        ]
        assert "duty-officer" not in [
            wire.delivery_recipient(d.routing_key)
            for d in route(ctx, routine.encode(), sender).deliveries
        ]

    def test_user_prefix_is_part_of_the_expected_user(self, ctx: RoutingContext) -> None:
        """With a user prefix, the user ``<prefix><sender>`` is the sender's own."""
        prefixed = RoutingContext(**{**vars(ctx), "user_prefix": "t1-"})
        body = envelope("correspondence.letter", "gs", ("gs-archives",)).encode()
        assert route(prefixed, body, "t1-gs").routed
        assert route(prefixed, body, "gs").reason is ReasonCode.SENDER_MISMATCH


class TestRefused:
    def assert_refused(self, decision: Decision, reason: ReasonCode) -> None:
        assert decision.reason is reason
        assert decision.deliveries == ()
        (dead,) = decision.dead_letters
        assert dead.exchange == wire.DEAD_EXCHANGE
        assert dead.headers[wire.H_REASON] == reason.value
        assert dead.headers[wire.H_REASON_TEXT]
        assert events(decision) == ["received", "rejected", "dead_lettered"]
        assert decision.events[1].reason == reason.value

    def test_spoofed_sender(self, ctx: RoutingContext) -> None:
        """An envelope claiming another sender than the publishing user is refused."""
        body = envelope("correspondence.letter", "gs", ("gs-archives",)).encode()
        decision = route(ctx, body, "ona")
        self.assert_refused(decision, ReasonCode.SENDER_MISMATCH)
        assert decision.dead_letters[0].headers[wire.H_ORIGINAL_USER] == "ona"

    def test_missing_user_id(self, ctx: RoutingContext) -> None:
        """Without the broker-validated user_id nobody can vouch for the sender."""
        body = envelope("correspondence.letter", "gs", ("gs-archives",)).encode()
        self.assert_refused(route(ctx, body, None), ReasonCode.SENDER_MISMATCH)

    def test_precedence_above_the_senders_cap(self, ctx: RoutingContext) -> None:
        """Another ministry (capped at PRIORITY) cannot put a letter in the urgent band."""
        minister = ctx.directory.get("min-finance")
        assert minister is not None and minister.max_precedence is Precedence.PRIORITY
        for precedence in (Precedence.FLASH, Precedence.IMMEDIATE):
            body = envelope(
                "correspondence.letter", "min-finance", ("gs",), precedence=precedence
            ).encode()
            decision = route(ctx, body, "min-finance")
            self.assert_refused(decision, ReasonCode.PRECEDENCE_NOT_ALLOWED)
            assert "at most PRIORITY" in decision.dead_letters[0].headers[wire.H_REASON_TEXT]
        allowed = envelope(
            "correspondence.letter", "min-finance", ("gs",), precedence=Precedence.PRIORITY
        ).encode()
        assert route(ctx, allowed, "min-finance").deliveries
        # Uncapped senders keep FLASH.
        flash = envelope(
            "correspondence.letter", "gs", ("gs-archives",), precedence=Precedence.FLASH
        ).encode()
        assert route(ctx, flash, "gs").deliveries

    def test_type_the_sender_may_not_send(self, ctx: RoutingContext) -> None:
        """ONA may not open treaty files."""
        body = envelope("treaty.file_opened", "ona", ("gs",)).encode()
        self.assert_refused(route(ctx, body, "ona"), ReasonCode.TYPE_NOT_ALLOWED)

    def test_unknown_sender(self, ctx: RoutingContext) -> None:
        """A sender the directory does not know is refused even from its own user."""
        body = envelope("correspondence.letter", "nobody-here", ("gs",)).encode()
        self.assert_refused(route(ctx, body, "nobody-here"), ReasonCode.UNKNOWN_SENDER)

    def test_expired(self, ctx: RoutingContext) -> None:
        """A message whose expiry has passed is refused."""
        env = envelope("correspondence.letter", "gs", ("gs-archives",))
        env = env.model_copy(
            update={
                "expires_at": NOW - timedelta(milliseconds=1),
                "created_at": NOW - timedelta(hours=1),
            }
        )
        self.assert_refused(route(ctx, env.encode(), "gs"), ReasonCode.EXPIRED)

    def test_a_message_id_property_that_is_not_utf8_is_text_in_the_dead_letter(
        self, ctx: RoutingContext
    ) -> None:
        """pika hands such a short string over as bytes; the hub writes escaped text back."""
        raw_id, raw_key = b"\xff\xfe-evil", b"letter-\xff" * 30
        incoming = Incoming(b"{not json", "gs", amqp_text(raw_key) or "")
        incoming = replace(incoming, property_message_id=amqp_text(raw_id))
        decision = decide(incoming, ctx, now=NOW)
        (dead,) = decision.dead_letters
        assert dead.message_id == "\\xff\\xfe-evil"
        assert isinstance(dead.routing_key, str)
        assert len(dead.routing_key.encode()) <= 255
        assert dead.routing_key.startswith("letter-\\xff")
        assert amqp_text(None) is None and amqp_text("déjà") == "déjà"

    def test_far_future(self, ctx: RoutingContext) -> None:
        """A created-at beyond the allowed clock skew is refused."""
        env = envelope("correspondence.letter", "gs", ("gs-archives",))
        env = env.model_copy(update={"created_at": NOW + timedelta(days=2)})
        self.assert_refused(route(ctx, env.encode(), "gs"), ReasonCode.FUTURE_DATED)

    def test_unknown_recipient(self, ctx: RoutingContext) -> None:
        """An explicit recipient missing from the directory refuses the whole message."""
        body = envelope("correspondence.letter", "gs", ("gs-archives", "atlantis")).encode()
        self.assert_refused(route(ctx, body, "gs"), ReasonCode.UNKNOWN_RECIPIENT)

    def test_no_recipients(self, ctx: RoutingContext) -> None:
        """No explicit recipient and no rule but the registry's observer copy: nowhere to go."""
        body = envelope("correspondence.letter", "gs").encode()
        self.assert_refused(route(ctx, body, "gs"), ReasonCode.NO_RECIPIENTS)

    def test_not_json(self, ctx: RoutingContext) -> None:
        """Garbage is refused with the decoder's reason and audited under its digest."""
        decision = route(ctx, b"\x00not json", "gs")
        self.assert_refused(decision, ReasonCode.NOT_JSON)
        assert decision.message_id.startswith("sha256:")

    def test_schema_violation_names_the_field(self, ctx: RoutingContext) -> None:
        """A payload that breaks its schema is refused with the field's path."""
        data = envelope("correspondence.letter", "gs", ("gs-archives",)).to_jsonable()
        data["payload"]["subject"] = ""
        from schemas.envelope import canonical_json

        decision = route(ctx, canonical_json(data), "gs")
        self.assert_refused(decision, ReasonCode.SCHEMA_VIOLATION)
        assert decision.dead_letters[0].headers[wire.H_REASON_PATH] == "payload.subject"
        assert decision.sender == "gs"  # salvaged for the audit trail


class TestClearance:
    def test_copy_for_an_uncleared_recipient_is_refused_alone(self, ctx: RoutingContext) -> None:
        """A CONFIDENTIAL letter reaches the cleared recipient; the uncleared one's copy is dead-lettered."""
        low = next(p.code for p in ctx.directory if p.clearance is Classification.INTERNAL)
        body = envelope(
            "correspondence.letter",
            "gs",
            ("gs-archives", low),
            classification=Classification.CONFIDENTIAL,
        ).encode()
        decision = route(ctx, body, "gs")
        assert [d.routing_key for d in decision.deliveries] == ["gs-archives", "gs-procedures"]
        (dead,) = decision.dead_letters
        assert dead.headers[wire.H_REASON] == ReasonCode.CLEARANCE.value
        assert dead.headers[wire.H_RECIPIENT] == low
        assert "rejected" in events(decision) and "delivered" in events(decision)


class TestDuplicates:
    def test_duplicate_is_dropped_and_audited(self, ctx: RoutingContext) -> None:
        """The same bytes from the same sender again are neither delivered nor dead-lettered, only audited."""
        env = envelope("correspondence.letter", "gs", ("gs-archives",))
        window = IdWindow(10)
        first = decide(Incoming(env.encode(), "gs"), ctx, now=NOW, window=window)
        assert first.routed
        decision = decide(Incoming(env.encode(), "gs"), ctx, now=NOW, window=window)
        assert decision.deliveries == () and decision.dead_letters == ()
        assert events(decision) == ["duplicate"]
        assert not decision.routed


class TestSignatures:
    @pytest.fixture
    def signed_ctx(self, ctx: RoutingContext) -> tuple[RoutingContext, Ed25519PrivateKey]:
        key = Ed25519PrivateKey.generate()
        text = f"""
[[participant]]
code = "emb-signing"
name = "An embassy that signs"
kind = "embassy"
clearance = "CONFIDENTIAL"
may_send = ["correspondence.*"]
public_key = "{public_key_to_b64(key.public_key())}"

[[participant]]
code = "gs"
name = "General Secretariat"
kind = "secretariat"
clearance = "CONFIDENTIAL"
may_send = ["*"]
"""
        directory = Directory.from_toml_text(text)
        ctx = RoutingContext(
            default_registry(), directory, Rules((), directory), HUB, receipt_secret=SECRET
        )
        return ctx, key

    def test_signed_message_is_routed(
        self, signed_ctx: tuple[RoutingContext, Ed25519PrivateKey]
    ) -> None:
        """A message signed with the key in the directory is delivered."""
        ctx, key = signed_ctx
        env = sign(envelope("correspondence.letter", "emb-signing", ("gs",)), key)
        assert route(ctx, env.encode(), "emb-signing").routed

    def test_unsigned_message_is_refused(
        self, signed_ctx: tuple[RoutingContext, Ed25519PrivateKey]
    ) -> None:
        """A participant with a key may not send unsigned messages."""
        ctx, _key = signed_ctx
        env = envelope("correspondence.letter", "emb-signing", ("gs",))
        assert route(ctx, env.encode(), "emb-signing").reason is ReasonCode.SIGNATURE_MISSING

    def test_wrong_signature_is_refused(
        self, signed_ctx: tuple[RoutingContext, Ed25519PrivateKey]
    ) -> None:
        """A signature by another key, or over other content, is refused."""
        ctx, key = signed_ctx
        forged = sign(
            envelope("correspondence.letter", "emb-signing", ("gs",)), Ed25519PrivateKey.generate()
        )
        assert route(ctx, forged.encode(), "emb-signing").reason is ReasonCode.SIGNATURE_INVALID
        signed = sign(envelope("correspondence.letter", "emb-signing", ("gs",)), key)
        tampered = signed.model_copy(update={"recipients": ("gs", "emb-signing")})
        assert route(ctx, tampered.encode(), "emb-signing").reason is ReasonCode.SIGNATURE_INVALID
        garbage = signed.with_signature(base64.b64encode(b"\x01" * 64).decode())
        assert route(ctx, garbage.encode(), "emb-signing").reason is ReasonCode.SIGNATURE_INVALID


class TestRelays:
    def test_operator_retry_is_trusted_from_the_hub_user(self, ctx: RoutingContext) -> None:
        """The hub's own user may re-publish another sender's message as a retry, audited as such."""
        env = envelope("correspondence.letter", "gs", ("gs-archives",))
        headers = {
            wire.H_RETRY_OF: str(env.message_id),
            wire.H_ACTOR: "alice",
            wire.H_OPERATION: "op-1",
        }
        decision = route(ctx, env.encode(), HUB, headers=headers)
        assert decision.routed
        assert "retried" in events(decision)
        retried = next(e for e in decision.events if e.event is EventKind.RETRIED)
        assert retried.actor == "alice" and retried.dedupe_key.endswith("op-1")
        assert decision.deliveries[0].headers[wire.H_RETRY_OF] == str(env.message_id)

    def test_replay_to_one_recipient_ignores_expiry(self, ctx: RoutingContext) -> None:
        """A replay goes only to the named recipient, even after the message expired."""
        env = envelope("treaty.stage_reached", "gs-treaties", ("council",))
        env = env.model_copy(
            update={"created_at": NOW - timedelta(days=30), "expires_at": NOW - timedelta(days=1)}
        )
        headers = {
            wire.H_REPLAY_OF: str(env.message_id),
            wire.H_REPLAY_TO: "gs-archives",
            wire.H_OPERATION: "op-2",
            wire.H_ACTOR: "auditor",
        }
        decision = route(ctx, env.encode(), HUB, headers=headers)
        assert [d.routing_key for d in decision.deliveries] == ["gs-archives"]
        assert "replayed" in events(decision)

    def test_a_retry_carries_the_first_arrival_on_a_participant_cannot(
        self, ctx: RoutingContext
    ) -> None:
        """The copies of a retried letter carry when the hub first received it (the dead
        letter's stamp); a participant's own AMQP timestamp is its word, ignored."""
        env = envelope("correspondence.letter", "gs", ("gs-archives",))
        first = int((NOW - timedelta(days=3)).timestamp())
        headers = {wire.H_RETRY_OF: str(env.message_id), wire.H_OPERATION: "op-3"}
        retried = route(ctx, env.encode(), HUB, headers=headers, timestamp=first)
        assert {d.timestamp for d in retried.deliveries} == {first}
        own = route(ctx, env.encode(), "gs", timestamp=first)
        assert {d.timestamp for d in own.deliveries} == {int(NOW.timestamp())}
        ahead = route(ctx, env.encode(), HUB, headers=headers, timestamp=first + 10**6)
        assert {d.timestamp for d in ahead.deliveries} == {int(NOW.timestamp())}

    def test_a_dead_letter_carries_the_first_arrival_for_a_retry(self, ctx: RoutingContext) -> None:
        refused = route(ctx, b"{not json", "gs", timestamp=1)
        assert [d.timestamp for d in refused.dead_letters] == [int(NOW.timestamp())]
        env = envelope("correspondence.letter", "gs", ("nobody-here",))
        first = int((NOW - timedelta(days=3)).timestamp())
        headers = {wire.H_RETRY_OF: str(env.message_id), wire.H_OPERATION: "op-4"}
        again = route(ctx, env.encode(), HUB, headers=headers, timestamp=first)
        assert again.reason is ReasonCode.UNKNOWN_RECIPIENT
        assert [d.timestamp for d in again.dead_letters] == [first]

    def test_relay_headers_from_a_participant_are_ignored(self, ctx: RoutingContext) -> None:
        """Only the hub's user is a relay: a participant claiming a retry is checked as itself."""
        env = envelope("correspondence.letter", "gs", ("gs-archives",))
        decision = route(ctx, env.encode(), "ona", headers={wire.H_RETRY_OF: "x"})
        assert decision.reason is ReasonCode.SENDER_MISMATCH


class TestStartupChecks:
    def test_may_send_typo_is_refused_at_start(self) -> None:
        """A directory entry allowing a type that does not exist stops the hub with a named error."""
        from liaison.bootstrap import check_directory_types
        from liaison.errors import DirectoryError

        directory = Directory.from_toml_text(
            '[[participant]]\ncode = "gs"\nname = "GS"\nkind = "secretariat"\n'
            'clearance = "CONFIDENTIAL"\nmay_send = ["chamber.qestion"]\n'
        )
        with pytest.raises(DirectoryError, match=r"participant 'gs', field 'may_send'"):
            check_directory_types(directory, default_registry())

    def test_bundled_directory_names_only_real_types(self) -> None:
        """Every may_send entry of the bundled directory matches a registered type."""
        from liaison.bootstrap import check_directory_types

        check_directory_types(load_directory(None), default_registry())


class TestTargetedRetry:
    def test_retry_to_names_only_the_failed_recipients(self, ctx: RoutingContext) -> None:
        """A retry naming the recipients whose copies failed goes to those alone, rules not re-applied."""
        env = envelope("treaty.stage_reached", "gs-treaties", ("council", "chamber"))
        headers = {
            wire.H_RETRY_OF: str(env.message_id),
            wire.H_ACTOR: "alice",
            wire.H_OPERATION: "op-3",
            wire.H_RETRY_TO: "chamber",
        }
        decision = route(ctx, env.encode(), HUB, headers=headers)
        assert [d.routing_key for d in decision.deliveries] == ["chamber"]

    def test_retry_to_from_a_participant_is_ignored(self, ctx: RoutingContext) -> None:
        """Only the hub's relay may narrow the recipients."""
        env = envelope("correspondence.letter", "gs", ("gs-archives", "gs-legal"))
        decision = route(ctx, env.encode(), "gs", headers={wire.H_RETRY_TO: "gs-legal"})
        assert [d.routing_key for d in decision.deliveries] == [
            "gs-archives",
            "gs-legal",
            "gs-procedures",
        ]


class TestReceipts:
    def test_receipt_enters_the_original_messages_history(self, ctx: RoutingContext) -> None:
        """A 'registered' receipt is delivered and recorded as a receipt event of the original."""
        from schemas.receipts import ReceiptRegistered

        original = envelope("correspondence.letter", "gs", ("gs-archives",))
        receipt = ReceiptRegistered(
            original_message_id=original.message_id,
            registered_on=NOW.date(),
            registry_number="ARCH/2026/1234",
        )
        from schemas.envelope import new_envelope

        env = new_envelope(receipt, sender="gs-archives", recipients=("gs",), created_at=NOW)
        copies = route(ctx, original.encode(), "gs").deliveries
        (token,) = [
            c.headers[wire.H_RECEIPT_TOKEN] for c in copies if c.routing_key == "gs-archives"
        ]
        decision = route(ctx, env.encode(), "gs-archives", headers={wire.H_RECEIPT_TOKEN: token})
        assert [d.routing_key for d in decision.deliveries] == ["gs", "gs-procedures"]
        (event,) = [e for e in decision.events if e.event is EventKind.RECEIPT]
        assert event.message_id == str(original.message_id)
        assert event.detail is not None
        assert "ARCH/2026/1234" in event.detail
        assert event.sender == "gs-archives"


class TestClosedRecipients:
    def test_a_draft_straight_to_the_website_is_refused_for_that_copy(
        self, ctx: RoutingContext
    ) -> None:
        """The website receives only from the procedures service: the ICC's own copy to it is recipient_closed."""
        body = envelope(
            "icc.press_release", "gs-icc", ("icc-website",), classification=Classification.PUBLIC
        ).encode()
        decision = route(ctx, body, "gs-icc")
        assert "icc-website" not in [d.routing_key for d in decision.deliveries]
        (dead,) = decision.dead_letters
        assert dead.headers[wire.H_REASON] == ReasonCode.RECIPIENT_CLOSED.value
        assert dead.headers[wire.H_RECIPIENT] == "icc-website"

    def test_what_the_procedures_service_released_reaches_the_website(
        self, ctx: RoutingContext
    ) -> None:
        """The one sender the website accepts gets through."""
        body = envelope(
            "icc.release_published",
            "gs-procedures",
            ("icc-website",),
            classification=Classification.PUBLIC,
        ).encode()
        decision = route(ctx, body, "gs-procedures")
        assert "icc-website" in [d.routing_key for d in decision.deliveries]
