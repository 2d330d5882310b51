"""The parliamentary question fold: case, assignment, reminders, one escalation, the answer."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from liaison.directory import load_directory
from liaison.procedures.case_config import load_questions
from liaison.procedures.core import Deadline
from liaison.procedures.questions import (
    AssignRule,
    QuestionCase,
    QuestionPolicy,
    chase_question,
    end_of_day,
    fold_question,
    overdue_id,
    reminder_id,
    working_days_before,
)
from schemas.chamber import ParliamentaryAnswer, ParliamentaryQuestion, QuestionAssigned
from schemas.envelope import Envelope, new_envelope
from schemas.procedures import ProcedureAnomaly, ProcedureEscalation, ProcedureReminder
from schemas.types import Payload

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)  # Monday
POLICY = QuestionPolicy(
    "gs-procedures",
    rules=(AssignRule("consular", "*consulaire*", "dir-consular"),),
    default_assignee="dir-political",
)


def env(payload: Payload, sender: str, at: datetime = T0) -> Envelope[Payload]:
    return new_envelope(payload, sender=sender, recipients=("gs",), created_at=at)


def question(
    subject: str = "Assistance consulaire au Moyen-Orient", deadline: date = date(2026, 12, 30)
) -> Envelope[Payload]:
    return env(
        ParliamentaryQuestion(
            question_number="1874",
            deputy="Mme A. Weber",
            subject=subject,
            text="Combien?",
            asked_on=date(2026, 11, 30),
            answer_deadline=deadline,
        ),
        "chamber",
    )


def answer(on: date, sender: str = "gs") -> Envelope[Payload]:
    return env(ParliamentaryAnswer(question_number="1874", text="312.", answered_on=on), sender)


def opened(**kw: object) -> QuestionCase:
    effects = fold_question(POLICY, None, question(**kw), stamp=T0)  # type: ignore[arg-type]
    assert effects.case is not None
    return effects.case


def anomaly_reason(case: QuestionCase | None, message: Envelope[Payload]) -> str:
    effects = fold_question(POLICY, case, message, stamp=T0)
    assert effects.case is None
    (notice,) = effects.messages
    assert notice.envelope.recipients == ("gs",)
    assert isinstance(notice.envelope.payload, ProcedureAnomaly)
    return notice.envelope.payload.reason


class TestCase:
    def test_a_question_opens_a_case_assigned_by_its_subject(self) -> None:
        """A consular subject goes to the consular directorate, by the configured rule."""
        case = opened()
        assert (case.assigned_to, case.assigned_by) == ("dir-consular", "rule consular")
        assert case.open and case.deadline == date(2026, 12, 30)

    def test_an_unmatched_subject_goes_to_the_default(self) -> None:
        """No rule matches: the configured default directorate prepares the answer."""
        assert opened(subject="Politique européenne").assigned_to == "dir-political"

    def test_the_secretariat_reassigns_explicitly(self) -> None:
        """An assignment message from the General Secretariat overrides the rule."""
        message = env(QuestionAssigned(question_number="1874", assigned_to="dir-european"), "gs")
        case = fold_question(POLICY, opened(), message, stamp=T0).case
        assert case is not None and case.assigned_to == "dir-european"
        assert case.assigned_by == f"gs/{message.message_id}"

    def test_the_deadline_ends_with_its_day_in_luxembourg(self) -> None:
        """The escalation falls at midnight after the deadline day, Luxembourg time (CET)."""
        assert end_of_day(date(2026, 12, 30)) == datetime(2026, 12, 30, 23, 0, tzinfo=UTC)


class TestDeadlines:
    def test_reminders_fall_working_days_before_the_deadline(self) -> None:
        """7 and 2 working days before 30 December (Christmas and St Stephen's skipped)."""
        effects = fold_question(POLICY, None, question(), stamp=T0)
        due = {d.id: d.due_at for d in effects.deadlines}
        assert working_days_before(date(2026, 12, 30), 7) == date(2026, 12, 18)
        assert due[reminder_id("1874", 7)] == datetime(2026, 12, 18, 8, 0, tzinfo=UTC)
        assert due[reminder_id("1874", 2)] == datetime(2026, 12, 28, 8, 0, tzinfo=UTC)
        assert due[overdue_id("1874")] == datetime(2026, 12, 30, 23, 0, tzinfo=UTC)

    def test_a_reminder_already_past_is_not_scheduled(self) -> None:
        """A question due in three days gets no 7-working-day reminder, only the 2-day one."""
        effects = fold_question(POLICY, None, question(deadline=date(2026, 12, 3)), stamp=T0)
        assert {d.id for d in effects.deadlines} == {
            reminder_id("1874", 2),
            overdue_id("1874"),
        }

    def test_the_reminder_goes_to_the_directorate(self) -> None:
        """A reminder names the assigned directorate and goes to it alone."""
        case = opened()
        deadline = Deadline(reminder_id("1874", 7), "question", "1874", T0)
        (notice,) = chase_question(POLICY, case, deadline, stamp=T0).messages
        assert isinstance(notice.envelope.payload, ProcedureReminder)
        assert notice.envelope.recipients == ("dir-consular",)

    def test_the_escalation_goes_to_the_directorate_and_the_secretariat(self) -> None:
        """Past the deadline: the directorate and the General Secretariat hear of it."""
        case = opened()
        deadline = Deadline(overdue_id("1874"), "question", "1874", case.due_at)
        effects = chase_question(POLICY, case, deadline, stamp=case.due_at)
        (notice,) = effects.messages
        assert isinstance(notice.envelope.payload, ProcedureEscalation)
        assert notice.envelope.recipients == ("dir-consular", "gs")
        again = chase_question(POLICY, case, deadline, stamp=case.due_at)
        assert again.messages[0].envelope.message_id == notice.envelope.message_id
        assert case.overdue(case.due_at) and not case.overdue(T0)

    def test_an_answered_question_is_not_chased(self) -> None:
        """A deadline of an answered case is cancelled, nothing is sent."""
        closed = fold_question(POLICY, opened(), answer(date(2026, 12, 10)), stamp=T0).case
        assert closed is not None
        deadline = Deadline(overdue_id("1874"), "question", "1874", T0)
        assert chase_question(POLICY, closed, deadline, stamp=T0).messages == ()


class TestAnswer:
    def test_an_answer_on_time_closes_the_case(self) -> None:
        """The answer closes the case, cancels its deadlines, and records no lateness."""
        effects = fold_question(POLICY, opened(), answer(date(2026, 12, 30)), stamp=T0)
        assert effects.case is not None and not effects.case.open
        assert effects.case.days_late == 0
        assert set(effects.cancel) == {
            reminder_id("1874", 7),
            reminder_id("1874", 2),
            overdue_id("1874"),
        }

    def test_a_late_answer_closes_the_case_and_records_the_lateness(self) -> None:
        """Answered 5 days after the deadline: closed, 5 days late."""
        case = fold_question(POLICY, opened(), answer(date(2027, 1, 4)), stamp=T0).case
        assert case is not None and case.days_late == 5


class TestRefusals:
    def test_a_question_not_from_the_chamber(self) -> None:
        """Only the Chamber asks questions."""
        forged = env(question().payload, "gs")
        assert anomaly_reason(None, forged) == "questions come from chamber, not gs"

    def test_a_question_asked_twice(self) -> None:
        """A second question under an open number is not applied."""
        assert anomaly_reason(opened(), question()) == "this question number is already open"

    def test_an_answer_to_no_question(self) -> None:
        """An answer quoting an unknown number is told to the General Secretariat."""
        assert anomaly_reason(None, answer(date(2026, 12, 1))) == "no question with this number"

    def test_an_answer_twice(self) -> None:
        """A second answer to an answered question is not applied."""
        closed = fold_question(POLICY, opened(), answer(date(2026, 12, 1)), stamp=T0).case
        reason = anomaly_reason(closed, answer(date(2026, 12, 2)))
        assert reason == "the question is already answered"

    def test_an_assignment_by_another(self) -> None:
        """Only the General Secretariat assigns."""
        message = env(QuestionAssigned(question_number="1874", assigned_to="dir-admin"), "chamber")
        assert "comes from gs, not chamber" in anomaly_reason(opened(), message)

    def test_an_assignment_to_a_code_the_directory_lacks(self) -> None:
        """Its reminders and escalation would be refused whole by the router: refused
        here instead, the question staying with its assignee."""
        policy = replace(POLICY, assignable=frozenset({"dir-consular", "dir-european", "gs"}))
        typo = env(QuestionAssigned(question_number="1874", assigned_to="dir-europeen"), "gs")
        effects = fold_question(policy, opened(), typo, stamp=T0)
        assert effects.case is None
        (notice,) = effects.messages
        assert isinstance(notice.envelope.payload, ProcedureAnomaly)
        assert notice.envelope.payload.reason == (
            "'dir-europeen' is not in the directory: its reminders and the escalation "
            "could not be delivered; the question stays with dir-consular"
        )
        known = env(QuestionAssigned(question_number="1874", assigned_to="dir-european"), "gs")
        moved = fold_question(policy, opened(), known, stamp=T0).case
        assert moved is not None and moved.assigned_to == "dir-european"

    def test_the_bundled_policy_checks_against_the_directory(self) -> None:
        directory = load_directory()
        policy = load_questions(None, directory, code="gs-procedures")
        assert policy.assignable == frozenset(directory.codes())


class TestBackdating:
    def test_a_backdated_answer_is_still_late(self) -> None:
        """An answer sent after the deadline but dated before it counts from when it was sent."""
        sent = datetime(2027, 1, 6, 10, 0, tzinfo=UTC)
        message = env(
            ParliamentaryAnswer(question_number="1874", text="...", answered_on=date(2026, 12, 1)),
            "gs",
            sent,
        )
        case = fold_question(POLICY, opened(), message, stamp=sent).case
        assert case is not None and case.days_late == 7
