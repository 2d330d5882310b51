"""The procedures' folds, with a controllable clock: no database, no broker."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from liaison.directory import load_directory
from liaison.errors import ConfigError
from liaison.procedures import core
from liaison.procedures.calendar import Duration, add_working_days
from liaison.procedures.config import AckRules
from schemas.correspondence import Letter
from schemas.envelope import new_envelope
from schemas.examples import example_payload
from schemas.missions import CableV2
from schemas.procedures import ProcedureEscalation
from schemas.receipts import ReceiptReceived, ReceiptRegistered
from schemas.types import Precedence

DIRECTORY = load_directory()
POLICY = core.Policy("gs-procedures", "MAEE", DIRECTORY, AckRules.load(None, DIRECTORY))
T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)  # a Monday


def letter(
    sender: str = "gs",
    recipients: tuple[str, ...] = ("palace",),
    *,
    at: datetime = T0,
    **kw: object,
):  # type: ignore[no-untyped-def]
    payload = Letter(
        registry_reference="GS/2026/77",
        subject="Audience de S.A.R. le Grand-Duc",
        body="Monsieur le Maréchal, ...",
        addressee="Maréchal de la Cour",
        signatory="Le Secrétaire général",
        **kw,  # type: ignore[arg-type]
    )
    return new_envelope(payload, sender=sender, recipients=recipients, created_at=at)


def flash(recipients: tuple[str, ...], *, at: datetime = T0):  # type: ignore[no-untyped-def]
    payload = example_payload("mission.cable", 2)
    assert isinstance(payload, CableV2)
    return new_envelope(
        payload,
        sender="emb-berlin",
        recipients=recipients,
        precedence=Precedence.FLASH,
        created_at=at,
    )


def received(original, sender: str, *, at: datetime):  # type: ignore[no-untyped-def]
    return new_envelope(
        ReceiptReceived(original_message_id=original.message_id, received_at=at),
        sender=sender,
        recipients=(original.sender,),
        created_at=at,
    )


class TestCalendar:
    def test_durations_say_what_they_count(self) -> None:
        """'2 working days' and '15 minutes' parse; a unitless number is refused with a reason."""
        assert Duration.parse("2 working days") == Duration(2, "working days")
        assert Duration.parse("15 minutes").after(T0) == T0 + timedelta(minutes=15)
        with pytest.raises(ConfigError, match="working days"):
            Duration.parse("15")

    def test_working_days_skip_weekends_and_luxembourg_holidays(self) -> None:
        """Thursday 24 Dec 2026 + 2 working days: Christmas, St Stephen's and the weekend skipped."""
        assert add_working_days(date(2026, 12, 24), 2) == date(2026, 12, 29)
        # National Day, 23 June 2026, a Tuesday.
        assert add_working_days(date(2026, 6, 22), 1) == date(2026, 6, 24)

    def test_working_day_deadline_keeps_the_local_time(self) -> None:
        """Friday 17:00 in Luxembourg + 2 working days is Tuesday 17:00 there."""
        friday = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)  # 17:00 CET
        assert Duration.parse("2 working days").after(friday) == datetime(
            2026, 12, 1, 16, 0, tzinfo=UTC
        )


class TestRegistry:
    def test_letter_gets_the_next_number_and_its_sender_a_receipt(self) -> None:
        """Sequence follows the counter; the receipt carries the number back to the sender."""
        env = letter()
        effects = core.fold(POLICY, core.View(last_sequence=41), env, stamp=T0, token="tok")
        assert effects.register is not None
        assert effects.register.number == "MAEE/2026/42"
        assert effects.counter == (2026, 42)
        (out,) = effects.messages
        assert out.envelope.recipients == ("gs",)
        assert isinstance(out.envelope.payload, ReceiptRegistered)
        assert out.envelope.payload.registry_number == "MAEE/2026/42"
        assert out.envelope.causation_id == env.message_id
        assert out.headers == {core.RECEIPT_TOKEN_HEADER: "tok"}

    def test_same_letter_gives_the_same_receipt_id(self) -> None:
        """A redelivery or a rebuild derives the same outgoing id, whatever the clock."""
        env = letter()
        first = core.fold(POLICY, core.View(), env, stamp=T0).messages[0]
        again = core.fold(POLICY, core.View(), env, stamp=T0 + timedelta(hours=1)).messages[0]
        assert first.envelope.message_id == again.envelope.message_id

    def test_year_follows_luxembourg_calendar(self) -> None:
        """31 Dec 23:30 UTC is already 1 January in Luxembourg: next year's register."""
        env = letter(at=datetime(2026, 12, 31, 23, 30, tzinfo=UTC))
        assert core.needs(env).year == 2027
        effects = core.fold(POLICY, core.View(last_sequence=0), env, stamp=T0)
        assert effects.register is not None and effects.register.number == "MAEE/2027/1"

    def test_reply_is_threaded_to_the_letter_it_answers(self) -> None:
        """in_reply_to names the answered letter; its number is recorded with the reply."""
        original = uuid4()
        env = letter(
            "palace", ("gs",), in_reply_to=original, thread_registry_reference="MAEE/2026/7"
        )
        assert core.needs(env).answers == str(original)
        effects = core.fold(POLICY, core.View(answered_number="MAEE/2026/7"), env, stamp=T0)
        assert effects.register is not None
        assert effects.register.answers_number == "MAEE/2026/7"
        assert effects.register.thread_reference == "MAEE/2026/7"

    def test_a_reply_answers_only_a_letter_its_sender_was_a_party_to(self) -> None:
        """An id alone links nothing: the replier must have sent or been sent the letter."""
        env = letter("chamber", ("gs",), in_reply_to=uuid4())
        assert core.needs(env).replier == "chamber"
        letters = [("MAEE/2026/3", "gs", ("palace",)), ("MAEE/2026/5", "council", ("chamber",))]
        assert core.answered("chamber", letters) == "MAEE/2026/5"
        assert core.answered("palace", letters) == "MAEE/2026/3"
        assert core.answered("gs", letters) == "MAEE/2026/3"  # following up its own letter
        assert core.answered("emb-paris", letters) is None
        assert core.answered("emb-paris", []) is None
        # Not linked: registered as a letter, without the claimed link.
        effects = core.fold(POLICY, core.View(answered_number=None), env, stamp=T0)
        assert effects.register is not None
        assert effects.register.answers_number is None
        assert effects.register.in_reply_to is None


class TestDatedByTheHub:
    """A letter's date is the sender's within the clock skew, the hub's beyond it."""

    SKEW = timedelta(minutes=5)

    def test_a_stamp_within_the_skew_stands(self) -> None:
        sent = letter(at=T0 - timedelta(minutes=4))
        assert core.dated(sent, T0, self.SKEW) is sent

    def test_a_backdated_letter_counts_from_the_routing_time_less_the_skew(self) -> None:
        sent = letter(at=datetime(2025, 12, 31, 12, 0, tzinfo=UTC))
        dated = core.dated(sent, T0, self.SKEW)
        assert dated.created_at == T0 - self.SKEW
        assert (dated.message_id, dated.payload) == (sent.message_id, sent.payload)
        assert core.needs(dated).year == 2026
        effects = core.fold(POLICY, core.View(last_sequence=0), dated, stamp=T0)
        assert effects.register is not None and effects.register.number == "MAEE/2026/1"
        assert effects.register.registered_at == T0 - self.SKEW

    def test_a_letter_dated_after_it_was_routed_counts_from_the_routing_time(self) -> None:
        sent = letter(at=T0 + timedelta(minutes=4))  # a sender's clock ahead, within skew
        assert core.dated(sent, T0, self.SKEW).created_at == T0
        assert core.dated(letter(at=T0), T0, self.SKEW).created_at == T0

    def test_without_a_routing_time_the_envelope_is_as_sent(self) -> None:
        sent = letter(at=datetime(2025, 12, 31, 12, 0, tzinfo=UTC))
        assert core.dated(sent, None, self.SKEW) is sent

    def test_the_routing_time_is_read_from_the_delivery_timestamp(self) -> None:
        assert core.arrived_at_of(int(T0.timestamp())) == T0
        assert core.arrived_at_of(None) is None
        assert core.arrived_at_of(10**20) is None  # not a time: the sender's stamp stands


class TestAcknowledgements:
    def test_letter_to_the_palace_awaits_its_registration_for_two_working_days(self) -> None:
        """Only the Palace is chased, not the other recipients; deadline in working days."""
        effects = core.fold(
            POLICY, core.View(), letter(recipients=("palace", "gs-archives")), stamp=T0
        )
        assert effects.watch is not None and effects.deadline is not None
        assert effects.watch.expected == ("palace",)
        assert effects.watch.receipt == "receipt.registered"
        assert effects.deadline.due_at == T0 + timedelta(days=2)

    def test_flash_cable_three_recipients_two_ack_one_escalation_naming_the_third(self) -> None:
        """At the deadline exactly one escalation names the one who did not acknowledge."""
        cable = flash(("dir-political", "gs", "dir-european"))
        effects = core.fold(POLICY, core.View(), cable, stamp=T0)
        watch = effects.watch
        assert watch is not None and effects.deadline is not None
        assert watch.expected == ("dir-political", "gs", "dir-european")  # not the duty officer
        assert effects.deadline.due_at == T0 + timedelta(minutes=15)
        for code in ("dir-political", "gs"):
            ack = core.fold(
                POLICY,
                core.View(watches=(watch,)),
                received(cable, code, at=T0 + timedelta(minutes=3)),
                stamp=T0,
            )
            assert [a.recipient for a in ack.acks] == [code]
            watch = core.Watch(**{**watch.__dict__, "pending": watch.pending - {code}})
        fired = core.escalate(POLICY, watch, effects.deadline, stamp=T0 + timedelta(minutes=15))
        (out,) = fired.messages
        assert isinstance(out.envelope.payload, ProcedureEscalation)
        assert out.envelope.payload.waiting_on == ("dir-european",)
        assert out.envelope.recipients == ("emb-berlin", "duty-officer")
        assert len(fired.fired) == 1

    def test_receipt_from_someone_not_awaited_counts_for_nothing(self) -> None:
        """A participant the cable was not delivered to cannot acknowledge it."""
        cable = flash(("dir-political",))
        watch = core.fold(POLICY, core.View(), cable, stamp=T0).watch
        assert watch is not None
        forged = received(cable, "emb-paris", at=T0)
        assert core.fold(POLICY, core.View(watches=(watch,)), forged, stamp=T0).acks == ()

    def test_receipt_of_the_wrong_kind_counts_for_nothing(self) -> None:
        """A FLASH cable awaits receipt.received; receipt.registered does not close it."""
        cable = flash(("dir-political",))
        watch = core.fold(POLICY, core.View(), cable, stamp=T0).watch
        assert watch is not None
        other = new_envelope(
            ReceiptRegistered(
                original_message_id=cable.message_id,
                registry_number="X/1",
                registered_on=date(2026, 11, 30),
            ),
            sender="dir-political",
            recipients=("emb-berlin",),
            created_at=T0,
        )
        assert core.fold(POLICY, core.View(watches=(watch,)), other, stamp=T0).acks == ()

    def test_last_ack_cancels_the_deadline(self) -> None:
        """When everyone acknowledged, the deadline is cancelled: no escalation."""
        cable = flash(("dir-political",))
        effects = core.fold(POLICY, core.View(), cable, stamp=T0)
        assert effects.watch is not None
        ack = core.fold(
            POLICY,
            core.View(watches=(effects.watch,)),
            received(cable, "dir-political", at=T0),
            stamp=T0,
        )
        assert ack.cancel == (f"ack:{effects.watch.key}", f"remind:{effects.watch.key}")

    def test_reminder_before_the_deadline_to_those_still_awaited(self) -> None:
        """Bundled FLASH rule: a reminder at 10 minutes to who has not acknowledged, then the escalation."""
        cable = flash(("dir-political", "gs"))
        effects = core.fold(POLICY, core.View(), cable, stamp=T0)
        assert effects.watch is not None and effects.reminder is not None
        assert effects.reminder.due_at == T0 + timedelta(minutes=10)
        watch = core.Watch(**{**effects.watch.__dict__, "pending": frozenset({"gs"})})
        later = T0 + timedelta(minutes=10)
        reminded = core.act(POLICY, watch, effects.reminder, stamp=later)
        (out,) = reminded.messages
        assert out.envelope.type == "procedure.reminder"
        assert out.envelope.recipients == ("gs",)
        assert reminded.fired == ((effects.reminder.id, later, str(out.envelope.message_id)),)
        assert effects.deadline is not None
        escalated = core.act(POLICY, watch, effects.deadline, stamp=later)
        assert escalated.messages[0].envelope.type == "procedure.escalation"

    def test_uncleared_recipient_is_not_expected(self) -> None:
        """Who was not delivered a copy (clearance) is not chased."""
        low = next(p.code for p in DIRECTORY if p.clearance.rank < 3)
        payload = example_payload("mission.cable", 2)
        from schemas.types import Classification

        cable = new_envelope(
            payload,
            sender="emb-berlin",
            recipients=("dir-political", low),
            precedence=Precedence.FLASH,
            classification=Classification.CONFIDENTIAL,
            created_at=T0,
        )
        watch = core.fold(POLICY, core.View(), cable, stamp=T0).watch
        assert watch is not None and watch.expected == ("dir-political",)


class TestAckRules:
    def test_rule_naming_an_unknown_participant_stops_start_up(self) -> None:
        """Validated against the directory, with the rule and field named."""
        text = '[[ack]]\nname="x"\ntypes=["mission.cable"]\nreceipt="receipt.received"\nwithin="1 hours"\nescalate_to=["atlantis"]\n'
        with pytest.raises(ConfigError, match="'x', field 'escalate_to': 'atlantis'"):
            AckRules.from_toml_text(text, DIRECTORY)

    def test_rule_without_a_unit_is_refused(self) -> None:
        """'within' must say calendar or working days."""
        text = (
            '[[ack]]\nname="x"\ntypes=["mission.cable"]\nreceipt="receipt.received"\nwithin="2"\n'
        )
        with pytest.raises(ConfigError, match="field 'within'"):
            AckRules.from_toml_text(text, DIRECTORY)


class TestDerivedIds:
    def test_the_services_ids_come_from_a_secret_namespace(self, tmp_path: Path) -> None:
        """Another hub secret gives other ids: a participant cannot compute an escalation's id ahead."""
        from liaison.procedures.bootstrap import id_namespace
        from liaison.settings import Settings

        first = id_namespace(Settings(hub_key_path=tmp_path / "a" / "hub.key"))
        second = id_namespace(Settings(hub_key_path=tmp_path / "b" / "hub.key"))
        assert first != second != core.NAMESPACE
        assert id_namespace(Settings(hub_key_path=tmp_path / "a" / "hub.key")) == first
