"""The procedures store's contract, written once and run on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from liaison.directory import load_directory
from liaison.procedures import core, queries
from liaison.procedures import tables as t
from liaison.procedures.config import AckRules
from liaison.procedures.store import Store, StoreError
from schemas.correspondence import Letter
from schemas.envelope import new_envelope
from schemas.examples import example_payload
from schemas.receipts import ReceiptReceived
from schemas.types import Precedence

DIRECTORY = load_directory()
POLICY = core.Policy("gs-procedures", "MAEE", DIRECTORY, AckRules.load(None, DIRECTORY))
T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def letter(  # type: ignore[no-untyped-def]
    sender: str = "gs",
    *,
    at: datetime = T0,
    subject: str = "Convention de sécurité sociale",
    **kw: object,
):
    payload = Letter(
        registry_reference="GS/1",
        subject=subject,
        body="...",
        addressee="Président",
        signatory="SG",
        **kw,  # type: ignore[arg-type]
    )
    return new_envelope(payload, sender=sender, recipients=("palace",), created_at=at)


def flash(recipients: tuple[str, ...]):  # type: ignore[no-untyped-def]
    return new_envelope(
        example_payload("mission.cable", 2),
        sender="emb-berlin",
        recipients=recipients,
        precedence=Precedence.FLASH,
        created_at=T0,
    )


@pytest.fixture
def store(database_url: str) -> Store:
    s = Store.open(database_url, check=False)
    s.migrate()
    yield s  # type: ignore[misc]
    s.close()


def numbers(store: Store) -> list[str]:
    with store.reading() as db:
        return list(
            db.execute(select(t.registry.c.number).order_by(t.registry.c.sequence)).scalars()
        )


class TestMigrations:
    def test_unmigrated_database_is_refused_in_one_line(self, database_url: str) -> None:
        """The service will not run on a database without the schema it needs."""
        with pytest.raises(StoreError, match="run `liaison procedures migrate`") as caught:
            Store.open(database_url)
        assert "\n" not in str(caught.value)

    def test_migrate_twice_is_idempotent(self, store: Store) -> None:
        """A second migrate changes nothing and the check passes."""
        assert store.migrate() == (store.head(), store.head())
        store.check_migrated()


class TestExactlyOnce:
    def test_same_copy_twice_is_applied_once(self, store: Store) -> None:
        """A redelivered copy registers nothing new and writes no new outbox row."""
        env = letter()
        assert store.consume(POLICY, env, stamp=T0)
        assert not store.consume(POLICY, env, stamp=T0 + timedelta(seconds=5))
        assert numbers(store) == ["MAEE/2026/1"]
        assert len(store.unsent()) == 1

    def test_same_id_from_another_sender_is_another_message(self, store: Store) -> None:
        """A participant reusing someone else's message id cannot have their letter skipped."""
        env = letter("gs")
        forged = letter("chamber").model_copy(update={"message_id": env.message_id})
        assert store.consume(POLICY, forged, stamp=T0)
        assert store.consume(POLICY, env, stamp=T0)
        assert numbers(store) == ["MAEE/2026/1", "MAEE/2026/2"]

    def test_outbox_is_marked_sent(self, store: Store) -> None:
        """Once confirmed, a message leaves the unsent list; the receipt carries the token header."""
        env = letter()
        store.consume(POLICY, env, stamp=T0, token="t-1")
        (row,) = store.unsent(core.message_key(env.sender, env.message_id))
        assert row.routing_key == "receipt.registered"
        assert row.headers == {core.RECEIPT_TOKEN_HEADER: "t-1"}
        store.mark_sent([row.message_id], at=T0)
        assert store.unsent() == []


class TestRegistry:
    def test_sequence_restarts_each_year(self, store: Store) -> None:
        """Numbers count from 1 in each Luxembourg calendar year."""
        store.consume(POLICY, letter(at=datetime(2026, 12, 31, 12, tzinfo=UTC)), stamp=T0)
        store.consume(POLICY, letter(at=datetime(2027, 1, 2, 12, tzinfo=UTC)), stamp=T0)
        store.consume(POLICY, letter(at=datetime(2026, 12, 31, 13, tzinfo=UTC)), stamp=T0)
        assert sorted(numbers(store)) == ["MAEE/2026/1", "MAEE/2026/2", "MAEE/2027/1"]

    def test_reply_records_the_number_it_answers(self, store: Store) -> None:
        """The reply's register line names the letter it answers."""
        first = letter()
        store.consume(POLICY, first, stamp=T0)
        store.consume(POLICY, letter("palace", in_reply_to=first.message_id), stamp=T0)
        with store.reading() as db:
            row = db.execute(select(t.registry).where(t.registry.c.sequence == 2)).one()
        assert row.answers_number == "MAEE/2026/1"

    def test_a_reply_from_outside_the_letter_answers_nothing(self, store: Store) -> None:
        """in_reply_to alone links nothing: the replier must have sent or received it."""
        first = letter()  # gs -> palace
        # Another sender's letter under the same id (ids are only unique per sender).
        same_id = letter("chamber").model_copy(
            update={"message_id": first.message_id, "recipients": ("gs",)}
        )
        store.consume(POLICY, same_id, stamp=T0)  # MAEE/2026/1
        store.consume(POLICY, first, stamp=T0)  # MAEE/2026/2
        to_gs = {"recipients": ("gs",)}
        intruder = letter("council", in_reply_to=first.message_id).model_copy(update=to_gs)
        store.consume(POLICY, intruder, stamp=T0)  # MAEE/2026/3
        reply = letter("palace", in_reply_to=first.message_id).model_copy(update=to_gs)
        store.consume(POLICY, reply, stamp=T0)  # MAEE/2026/4
        with store.reading() as db:
            rows = {
                row.sequence: row
                for row in db.execute(select(t.registry).order_by(t.registry.c.sequence))
            }
            # The intruder is registered, but answers nothing and joins no thread.
            assert rows[3].answers_number is None and rows[3].in_reply_to is None
            # The Palace answers the letter it received, not the chamber's of the same id.
            assert rows[4].answers_number == "MAEE/2026/2"
            assert rows[4].in_reply_to == str(first.message_id)
            assert [line.number for line in queries.thread(db, "MAEE/2026/2")] == [
                "MAEE/2026/2",
                "MAEE/2026/4",
            ]
            assert [line.number for line in queries.thread(db, "MAEE/2026/1")] == ["MAEE/2026/1"]

    def test_concurrent_writers_never_share_or_skip_a_number(
        self, database_url: str, store: Store
    ) -> None:
        """Four threads with their own connections register 200 letters: numbers 1..200."""
        letters = [letter(at=T0 + timedelta(seconds=i)) for i in range(200)]
        errors: list[BaseException] = []

        def work(part: list) -> None:  # type: ignore[type-arg]
            own = Store.open(database_url)
            try:
                for env in part:
                    own.consume(POLICY, env, stamp=T0)
            except BaseException as exc:
                errors.append(exc)
            finally:
                own.close()

        threads = [threading.Thread(target=work, args=(letters[i::4],)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(numbers(store)) == sorted(f"MAEE/2026/{n}" for n in range(1, 201))


class TestDeadlines:
    def test_escalation_fires_once_naming_who_is_missing(self, store: Store) -> None:
        """Two of three acknowledge; at the deadline one escalation names the third, once."""
        cable = flash(("dir-political", "gs", "dir-european"))
        store.consume(POLICY, cable, stamp=T0)
        for code in ("dir-political", "gs"):
            receipt = new_envelope(
                ReceiptReceived(original_message_id=cable.message_id, received_at=T0),
                sender=code,
                recipients=("emb-berlin",),
                created_at=T0 + timedelta(minutes=1),
            )
            assert store.consume(POLICY, receipt, stamp=T0)
        assert store.due(T0 + timedelta(minutes=9)) == []
        (reminder,) = store.due(T0 + timedelta(minutes=10))
        assert reminder.procedure == core.ACK_REMINDER
        assert store.fire(POLICY, reminder, stamp=T0 + timedelta(minutes=10))
        (due,) = store.due(T0 + timedelta(minutes=15))
        assert store.fire(POLICY, due, stamp=T0 + timedelta(minutes=15))
        assert not store.fire(POLICY, due, stamp=T0 + timedelta(minutes=16))
        assert store.due(T0 + timedelta(hours=1)) == []
        reminders = [r for r in store.unsent() if r.routing_key == "procedure.reminder"]
        assert len(reminders) == 1
        assert b'"recipients":["dir-european"]' in reminders[0].body
        escalations = [r for r in store.unsent() if r.routing_key == "procedure.escalation"]
        assert len(escalations) == 1
        assert b'"waiting_on":["dir-european"]' in escalations[0].body

    def test_everyone_acknowledged_nothing_fires(self, store: Store) -> None:
        """The last receipt cancels the deadline."""
        cable = flash(("dir-political",))
        store.consume(POLICY, cable, stamp=T0)
        receipt = new_envelope(
            ReceiptReceived(original_message_id=cable.message_id, received_at=T0),
            sender="dir-political",
            recipients=("emb-berlin",),
            created_at=T0,
        )
        store.consume(POLICY, receipt, stamp=T0)
        assert store.due(T0 + timedelta(days=1)) == []

    def test_two_sweepers_fire_a_deadline_once(self, database_url: str, store: Store) -> None:
        """Two processes racing on the same due deadlines: each fires exactly once."""
        for _ in range(20):
            store.consume(POLICY, flash(("dir-political",)), stamp=T0)
        later = T0 + timedelta(hours=1)
        fired: list[bool] = []

        def sweep() -> None:
            own = Store.open(database_url)
            try:
                fired.extend(own.fire(POLICY, d, stamp=later) for d in own.due(later))
            finally:
                own.close()

        threads = [threading.Thread(target=sweep) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert fired.count(True) == 40  # a reminder and an escalation each
        assert len([r for r in store.unsent() if r.routing_key == "procedure.escalation"]) == 20


class TestRegistryCommands:
    """``liaison registry`` on each backend (full-text search on PostgreSQL)."""

    def _fill(self, store: Store) -> list:  # type: ignore[type-arg]
        first = letter(subject="Convention fiscale avec la Belgique")
        reply = letter("palace", in_reply_to=first.message_id)
        reply = reply.model_copy(
            update={
                "payload": reply.payload.model_copy(
                    update={"subject": "Réponse: convention fiscale"}
                )
            }
        )
        other = letter("chamber").model_copy(
            update={
                "payload": letter().payload.model_copy(update={"subject": "Question écrite 1234"})
            }
        )
        for env in (first, reply, other):
            store.consume(POLICY, env, stamp=T0)
        return [first, reply, other]

    def _run(self, database_url: str, *args: str):  # type: ignore[no-untyped-def]
        from click.testing import CliRunner

        from liaison.cli import main

        return CliRunner().invoke(
            main, list(args), env={"LIAISON_PROCEDURES_DATABASE_URL": database_url}
        )

    def test_show_thread_search_and_export(self, database_url: str, store: Store) -> None:
        """The thread links the reply to its letter; search finds words of the subject; CSV lists the year."""
        import csv
        import io
        import json

        self._fill(store)
        shown = self._run(database_url, "registry", "show", "MAEE/2026/2", "--json")
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.output)["answers_number"] == "MAEE/2026/1"
        thread = self._run(database_url, "registry", "show", "MAEE/2026/1", "--thread", "--json")
        assert [line["number"] for line in json.loads(thread.output)] == [
            "MAEE/2026/1",
            "MAEE/2026/2",
        ]
        found = self._run(database_url, "registry", "search", "--text", "convention", "--json")
        assert [line["number"] for line in json.loads(found.output)] == [
            "MAEE/2026/1",
            "MAEE/2026/2",
        ]
        by_sender = self._run(database_url, "registry", "search", "--sender", "chamber", "--json")
        assert [line["number"] for line in json.loads(by_sender.output)] == ["MAEE/2026/3"]
        exported = self._run(database_url, "registry", "export", "--year", "2026", "--csv")
        rows = list(csv.DictReader(io.StringIO(exported.output)))
        assert [row["number"] for row in rows] == ["MAEE/2026/1", "MAEE/2026/2", "MAEE/2026/3"]
        assert rows[1]["answers_number"] == "MAEE/2026/1"
        missing = self._run(database_url, "registry", "show", "MAEE/2026/99")
        assert missing.exit_code == 1 and "no registry number" in missing.output


class TestCopiesThatCannotBeApplied:
    def test_one_bad_copy_is_refused_alone_and_its_batch_applies(self, store: Store) -> None:
        """A question due in year 9999 breaks the fold: it is refused to its sender, the letters beside it are registered."""
        from schemas.chamber import ParliamentaryQuestion

        question = new_envelope(
            example_payload("chamber.question", 1).model_copy(
                update={"answer_deadline": date(9999, 12, 31)}
            ),
            sender="chamber",
            recipients=("gs",),
            created_at=T0,
        )
        assert isinstance(question.payload, ParliamentaryQuestion)
        before, after = letter(), letter(subject="Accord de siège")
        applied = store.consume_many(
            POLICY, [(before, None), (question, None), (after, None)], stamp=T0
        )
        assert applied == [True, True, True]  # consumed once each: no redelivery loop
        assert numbers(store) == ["MAEE/2026/1", "MAEE/2026/2"]
        with store.reading() as db:
            bodies = list(db.execute(select(t.outbox.c.body)).scalars())
        refusals = [json.loads(b) for b in bodies if b"procedure.refusal" in bytes(b)]
        assert [r["recipients"] for r in refusals] == [["chamber"]]
        assert refusals[0]["payload"]["subject_message_id"] == str(question.message_id)
        # Delivered again (a crash before the ack): nothing applied twice, nothing lost.
        assert store.consume_many(POLICY, [(question, None)], stamp=T0) == [False]
