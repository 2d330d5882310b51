"""Treaty files and question cases in the procedures store, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from liaison.cli import main
from liaison.procedures import case_store, core
from liaison.procedures import tables as t
from liaison.procedures.bootstrap import policy as build_policy
from liaison.procedures.store import Store
from liaison.procedures.treaties import MAX_OUTCOMES
from liaison.settings import Settings
from schemas.catalog import default_registry
from schemas.chamber import ChamberVoteV2, ParliamentaryAnswer, ParliamentaryQuestion, VoteOutcome
from schemas.council import CouncilDecisionV2, Decision
from schemas.envelope import Envelope, new_envelope
from schemas.palace import PromulgationV2
from schemas.procedures import ProcedureAnomaly, ProcedureEscalation
from schemas.registry import Registry
from schemas.treaties import TreatyFileOpened, TreatyKind, TreatyStageReachedV2, TreatyStep
from schemas.types import Payload

POLICY = build_policy(Settings())
REGISTRY: Registry = default_registry()
T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.open(database_url, check=False)
    s.migrate()
    yield s
    s.close()


def env(payload: Payload, sender: str, at: datetime = T0) -> Envelope[Payload]:
    return new_envelope(payload, sender=sender, recipients=("gs",), created_at=at)


def outbox(store: Store) -> list[Envelope[Payload]]:
    return [REGISTRY.decode(row.body) for row in store.unsent()]


def opened(at: datetime = T0) -> Envelope[Payload]:
    return env(
        TreatyFileOpened(
            treaty_reference="TR-9",
            title="Accord",
            kind=TreatyKind.BILATERAL,
            parties=("Luxembourg", "Cap-Vert"),
            signed_on=date(2026, 11, 2),
        ),
        "gs-treaties",
        at,
    )


class TestTreatyFiles:
    def test_a_file_is_kept_and_read_back_whole(self, store: Store) -> None:
        """The file survives the database: step, who is waited on, and its timeline."""
        submitted = TreatyStageReachedV2(
            treaty_reference="TR-9", stage=TreatyStep.SUBMITTED.stage, reached_on=date(2026, 12, 1)
        )
        store.consume_many(
            POLICY, [(opened(), None), (env(submitted, "gs-treaties"), None)], stamp=T0
        )
        with store.reading() as db:
            file = case_store.load_treaty(db, "TR-9")
            row = db.execute(select(t.treaty_file)).one()
        assert file is not None and file.step is TreatyStep.SUBMITTED
        assert [e.what for e in file.timeline] == ["signed on 2026-11-02", "submitted"]
        assert (row.step, row.waiting_on) == ("submitted", "council")

    def test_an_out_of_order_message_is_an_anomaly_told_once(self, store: Store) -> None:
        """A promulgation before the vote: not applied, one notice to the treaties service."""
        promulgated = PromulgationV2(
            act_reference="L-1",
            title="Loi",
            promulgated_on=date(2027, 1, 5),
            treaty_reference="TR-9",
        )
        message = env(promulgated, "palace")
        store.consume_many(POLICY, [(opened(), None), (message, None)], stamp=T0)
        assert store.consume(POLICY, message, stamp=T0) is False  # a redelivery
        (notice,) = outbox(store)
        assert isinstance(notice.payload, ProcedureAnomaly)
        assert notice.recipients == ("gs-treaties",)
        with store.reading() as db:
            file = case_store.load_treaty(db, "TR-9")
        assert file is not None and file.step is None and file.anomalies == 1

    def test_an_expectation_fires_once(self, store: Store) -> None:
        """Past the Government Council's expected month, one escalation, however many sweeps."""
        submitted = TreatyStageReachedV2(
            treaty_reference="TR-9", stage=TreatyStep.SUBMITTED.stage, reached_on=date(2026, 12, 1)
        )
        store.consume_many(
            POLICY, [(opened(), None), (env(submitted, "gs-treaties"), None)], stamp=T0
        )
        later = T0 + timedelta(days=31)
        fired = [store.fire(POLICY, d, stamp=later) for d in store.due(later)]
        assert fired == [True]
        assert store.due(later) == []
        (notice,) = outbox(store)
        assert isinstance(notice.payload, ProcedureEscalation)
        assert notice.payload.waiting_on == ("council",)


def declared(step: TreatyStep, at: datetime = T0) -> Envelope[Payload]:
    bill = {"bill_number": "8601"} if step.rank >= TreatyStep.BILL_OF_APPROVAL_TABLED.rank else {}
    payload = TreatyStageReachedV2(
        treaty_reference="TR-9", stage=step.stage, step=step, reached_on=at.date(), **bill
    )
    return env(payload, "gs-treaties", at)


def chamber_vote(at: datetime, voted_on: date | None = None) -> Envelope[Payload]:
    payload = ChamberVoteV2(
        bill_number="8601",
        title="Projet de loi 8601",
        votes_for=56,
        votes_against=0,
        abstentions=4,
        outcome=VoteOutcome.ADOPTED,
        voted_on=voted_on or at.date(),
        treaty_reference="TR-9",
    )
    return env(payload, "chamber", at)


#: The steps from signature to the Council of State's opinion, as the service declares them.
TO_OPINION = (
    TreatyStep.SUBMITTED,
    TreatyStep.APPROVED_BY_GOVERNMENT_COUNCIL,
    TreatyStep.BILL_OF_APPROVAL_TABLED,
    TreatyStep.COUNCIL_OF_STATE_OPINION,
)


class TestTreatyRules:
    def test_a_first_vote_reported_late_is_stored_with_the_day_of_the_sitting(
        self, store: Store, database_url: str
    ) -> None:
        """Voted on 30 November, told on 10 December: the file keeps 30 November."""
        steps = TO_OPINION
        opinion = T0 - timedelta(days=20)
        store.consume_many(
            POLICY,
            [(opened(opinion), None), *((declared(step, opinion), None) for step in steps)],
            stamp=opinion,
        )
        told = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)
        store.consume(POLICY, chamber_vote(told, voted_on=date(2026, 11, 30)), stamp=told)
        with store.reading() as db:
            file = case_store.load_treaty(db, "TR-9")
        assert file is not None and file.step is TreatyStep.APPROVED_BY_CHAMBER
        assert file.first_vote_on == date(2026, 11, 30)
        shown = CliRunner().invoke(
            main,
            ["treaties", "show", "TR-9"],
            env={"LIAISON_PROCEDURES_DATABASE_URL": database_url},
        )
        assert shown.exit_code == 0, shown.output
        assert (
            "first vote on 2026-11-30: a second vote, if the Council of State does not "
            "dispense with it, not before 2027-02-28"
        ) in shown.output
        on_time = datetime(2027, 2, 28, 10, 0, tzinfo=UTC)
        store.consume(POLICY, chamber_vote(on_time), stamp=on_time)
        with store.reading() as db:
            file = case_store.load_treaty(db, "TR-9")
        assert file is not None and file.step is TreatyStep.SECOND_VOTE_HELD
        assert outbox(store) == []

    def test_a_second_vote_too_early_is_an_anomaly_three_months_on_it_is_held(
        self, store: Store
    ) -> None:
        """Art. 78(4): the first vote on 30 November; the second not before 28 February."""
        steps = [*TO_OPINION, TreatyStep.APPROVED_BY_CHAMBER]
        store.consume_many(
            POLICY, [(opened(), None), *((declared(step), None) for step in steps)], stamp=T0
        )
        early = datetime(2027, 2, 27, 10, 0, tzinfo=UTC)
        store.consume(POLICY, chamber_vote(early), stamp=early)
        (notice,) = outbox(store)
        assert isinstance(notice.payload, ProcedureAnomaly)
        assert notice.payload.reason == (
            "second_vote_held on 2027-02-27 is too early: the second vote comes at least "
            "3 months after the first (2026-11-30), so not before 2027-02-28"
        )
        with store.reading() as db:
            file = case_store.load_treaty(db, "TR-9")
        assert file is not None and file.step is TreatyStep.APPROVED_BY_CHAMBER
        on_time = datetime(2027, 2, 28, 10, 0, tzinfo=UTC)
        store.consume(POLICY, chamber_vote(on_time), stamp=on_time)
        with store.reading() as db:
            file = case_store.load_treaty(db, "TR-9")
        assert file is not None and file.step is TreatyStep.SECOND_VOTE_HELD
        assert len(outbox(store)) == 1

    def test_deferrals_stop_at_their_bound_and_the_file_still_moves(self, store: Store) -> None:
        store.consume_many(
            POLICY, [(opened(), None), (declared(TreatyStep.SUBMITTED), None)], stamp=T0
        )
        deferrals = [
            env(
                CouncilDecisionV2(
                    agenda_item_reference=f"CG-{n}",
                    meeting_on=date(2026, 12, 4),
                    decision=Decision.DEFERRED,
                    treaty_reference="TR-9",
                ),
                "council",
            )
            for n in range(MAX_OUTCOMES + 5)
        ]
        store.consume_many(POLICY, [(d, None) for d in deferrals], stamp=T0)
        notices = outbox(store)
        assert len(notices) == 5
        assert all(isinstance(n.payload, ProcedureAnomaly) for n in notices)
        with store.reading() as db:
            file = case_store.load_treaty(db, "TR-9")
        assert file is not None and file.step is TreatyStep.SUBMITTED
        assert sum(e.applied for e in file.timeline) == 2 + MAX_OUTCOMES
        assert file.anomalies == 5


def question(deadline: date) -> Envelope[Payload]:
    return env(
        ParliamentaryQuestion(
            question_number="2001",
            deputy="M. B. Muller",
            subject="Coopération au Sahel",
            text="?",
            asked_on=date(2026, 11, 30),
            answer_deadline=deadline,
        ),
        "chamber",
    )


class TestQuestionCases:
    def test_the_question_escalates_once_and_the_answer_records_lateness(
        self, store: Store
    ) -> None:
        """Reminders, one escalation at the end of the deadline day, then a late answer."""
        store.consume(POLICY, question(date(2026, 12, 11)), stamp=T0)
        with store.reading() as db:
            case = case_store.load_question(db, "2001")
        assert case is not None and case.assigned_to == "dir-cooperation"
        after = case.due_at + timedelta(minutes=1)
        fired = [store.fire(POLICY, d, stamp=after) for d in store.due(after)]
        assert fired == [True, True, True]  # reminders 7 and 2 working days before, escalation
        assert store.due(after + timedelta(days=3)) == []
        kinds = [m.type for m in outbox(store)]
        assert kinds == ["procedure.reminder", "procedure.reminder", "procedure.escalation"]
        answer = ParliamentaryAnswer(
            question_number="2001", text="...", answered_on=date(2026, 12, 14)
        )
        store.consume(POLICY, env(answer, "gs", after), stamp=after)
        with store.reading() as db:
            closed = case_store.load_question(db, "2001")
        assert closed is not None and not closed.open and closed.days_late == 3


def test_policy_carries_the_bundled_configuration() -> None:
    """The service's policy holds the bundled treaty and question rules."""
    assert isinstance(POLICY, core.Policy)
    assert POLICY.questions is not None and POLICY.questions.reminders == (7, 2)
