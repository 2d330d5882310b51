"""The treaty fold: every legal step, every refusal, contributions, expectations; no I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from liaison.procedures.calendar import Duration
from liaison.procedures.core import Deadline
from liaison.procedures.treaties import (
    MAX_APPLIED_LINES,
    MAX_OUTCOMES,
    Expectation,
    Roles,
    TreatyEffects,
    TreatyFile,
    TreatyPolicy,
    add_months,
    escalate_treaty,
    first_vote_on,
    fold_treaty,
    next_steps,
    second_vote_from,
    step_deadline,
)
from schemas.chamber import ChamberVoteV2, VoteOutcome
from schemas.council import CouncilDecisionV2, Decision
from schemas.envelope import Envelope, new_envelope
from schemas.palace import PromulgationV2
from schemas.procedures import ProcedureAnomaly, ProcedureEscalation, ProcedureReminder
from schemas.treaties import (
    ContributionAsked,
    TreatyContributionGiven,
    TreatyContributionsRequested,
    TreatyContributionWaived,
    TreatyFileOpened,
    TreatyKind,
    TreatyStageReached,
    TreatyStageReachedV2,
    TreatyStep,
)
from schemas.types import Payload

REF = "TR-2026-001"
T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
POLICY = TreatyPolicy(
    "gs-procedures",
    expectations=(
        Expectation(
            TreatyStep.BILL_OF_APPROVAL_TABLED,
            Duration.parse("90 days"),
            ("gs",),
            Duration.parse("60 days"),
        ),
    ),
)
ROLES = Roles()


def env(payload: Payload, sender: str, at: datetime = T0) -> Envelope[Payload]:
    return new_envelope(payload, sender=sender, recipients=("gs-treaties",), created_at=at)


def opened(at: datetime = T0) -> Envelope[Payload]:
    return env(
        TreatyFileOpened(
            treaty_reference=REF,
            title="Convention avec le Cap-Vert",
            kind=TreatyKind.BILATERAL,
            parties=("Luxembourg", "Cap-Vert"),
            signed_on=date(2026, 11, 2),
        ),
        "gs-treaties",
        at,
    )


def declared(step: TreatyStep, sender: str = "gs-treaties", at: datetime = T0) -> Envelope[Any]:
    extra: dict[str, Any] = {}
    if step.rank >= TreatyStep.BILL_OF_APPROVAL_TABLED.rank:
        extra["bill_number"] = "8512"
    if step.rank >= TreatyStep.INSTRUMENT_DEPOSITED.rank:
        extra["depositary"] = "Cap-Vert"
    if step is TreatyStep.PUBLISHED_IN_JOURNAL_OFFICIEL:
        extra["memorial_reference"] = "A-2026-512"
    payload = TreatyStageReachedV2(
        treaty_reference=REF, stage=step.stage, step=step, reached_on=date(2026, 12, 1), **extra
    )
    return env(payload, sender, at)


def council(decision: Decision = Decision.APPROVED) -> Envelope[Payload]:
    return env(
        CouncilDecisionV2(
            agenda_item_reference="CG-1",
            meeting_on=date(2026, 12, 4),
            decision=decision,
            treaty_reference=REF,
        ),
        "council",
    )


def vote(outcome: VoteOutcome = VoteOutcome.ADOPTED) -> Envelope[Payload]:
    adopted = outcome is VoteOutcome.ADOPTED
    return env(
        ChamberVoteV2(
            bill_number="8512",
            title="Projet de loi 8512",
            votes_for=56 if adopted else 10,
            votes_against=0 if adopted else 40,
            abstentions=4,
            outcome=outcome,
            voted_on=date(2027, 3, 2),
            treaty_reference=REF,
        ),
        "chamber",
    )


def promulgation() -> Envelope[Payload]:
    return env(
        PromulgationV2(
            act_reference="L-2027-1",
            title="Loi portant approbation",
            promulgated_on=date(2027, 3, 20),
            treaty_reference=REF,
        ),
        "palace",
    )


def run(*envelopes: Envelope[Any], file: TreatyFile | None = None) -> TreatyFile | None:
    for envelope in envelopes:
        effects = fold_treaty(POLICY, file, envelope, stamp=T0)
        file = effects.file or file
    return file


def at_step(step: TreatyStep | None) -> TreatyFile:
    file = run(opened())
    assert file is not None
    if step is None:
        return file
    return replace(file, step=step)


def anomaly(effects: TreatyEffects) -> ProcedureAnomaly:
    (notice,) = effects.messages
    assert notice.envelope.recipients == ("gs-treaties",)
    assert isinstance(notice.envelope.payload, ProcedureAnomaly)
    return notice.envelope.payload


#: The message each institution sends for its own step.
FROM_INSTITUTIONS = {
    TreatyStep.APPROVED_BY_GOVERNMENT_COUNCIL: council,
    TreatyStep.COUNCIL_OF_STATE_OPINION: lambda: declared(
        TreatyStep.COUNCIL_OF_STATE_OPINION, "council-of-state"
    ),
    TreatyStep.APPROVED_BY_CHAMBER: vote,
    TreatyStep.SECOND_VOTE_DISPENSED: lambda: declared(
        TreatyStep.SECOND_VOTE_DISPENSED, "council-of-state"
    ),
    TreatyStep.PROMULGATED: promulgation,
    TreatyStep.PUBLISHED_IN_JOURNAL_OFFICIEL: lambda: declared(
        TreatyStep.PUBLISHED_IN_JOURNAL_OFFICIEL, "scl"
    ),
}


class TestLegalSteps:
    def test_a_file_goes_from_signature_to_entry_into_force(self) -> None:
        """Each institution's own message moves the file one step; nothing is refused."""
        file = run(opened())
        for step in TreatyStep:
            if step is TreatyStep.SECOND_VOTE_HELD:
                continue
            message = FROM_INSTITUTIONS.get(step, lambda s=step: declared(s))()
            effects = fold_treaty(POLICY, file, message, stamp=T0)
            assert not effects.messages, f"{step} refused"
            file = effects.file
            assert file is not None and file.step is step
        assert file is not None
        assert file.waiting_on(ROLES) == ()
        assert file.anomalies == 0
        assert len(file.timeline) == 11

    def test_the_second_vote_held_when_the_dispensation_is_refused(self) -> None:
        """After the first vote, a second adopted vote of the Chamber is the second vote held."""
        # The first vote was over three months before (art. 78(4)): see TestSecondVote.
        first = replace(at_step(TreatyStep.APPROVED_BY_CHAMBER), since=T0 - timedelta(days=100))
        file = run(vote(), file=first)
        assert file is not None and file.step is TreatyStep.SECOND_VOTE_HELD
        file = run(promulgation(), file=file)
        assert file is not None and file.step is TreatyStep.PROMULGATED

    def test_a_rejection_or_deferral_is_on_the_timeline_and_moves_nothing(self) -> None:
        """The Government Council deferring and the Chamber rejecting leave the step as it was."""
        file = run(council(Decision.DEFERRED), file=at_step(TreatyStep.SUBMITTED))
        assert file is not None and file.step is TreatyStep.SUBMITTED
        assert file.timeline[-1].what == "Government Council: deferred"
        file = run(vote(VoteOutcome.REJECTED), file=at_step(TreatyStep.COUNCIL_OF_STATE_OPINION))
        assert file is not None and file.step is TreatyStep.COUNCIL_OF_STATE_OPINION

    def test_a_v1_stage_message_moves_the_file_to_the_step_it_names(self) -> None:
        """The treaties service's v1 declarations still work, for the stages v1 knows."""
        payload = TreatyStageReached(
            treaty_reference=REF, stage=TreatyStep.SUBMITTED.stage, reached_on=date(2026, 12, 1)
        )
        file = run(env(payload, "gs-treaties"), file=at_step(None))
        assert file is not None and file.step is TreatyStep.SUBMITTED

    def test_who_is_waited_on_follows_the_step(self) -> None:
        """Each step names the institution that must act next."""
        expected = {
            TreatyStep.SUBMITTED: ("council",),
            TreatyStep.BILL_OF_APPROVAL_TABLED: ("council-of-state",),
            TreatyStep.COUNCIL_OF_STATE_OPINION: ("chamber",),
            TreatyStep.APPROVED_BY_CHAMBER: ("council-of-state", "chamber"),
            TreatyStep.PROMULGATED: ("scl",),
            TreatyStep.INSTRUMENT_DEPOSITED: ("gs-treaties",),
        }
        for step, waiting in expected.items():
            assert at_step(step).waiting_on(ROLES) == waiting


class TestRefusals:
    def test_a_step_backwards_is_an_anomaly(self) -> None:
        """A promulgation for a file already published is recorded, not applied, and told."""
        file = at_step(TreatyStep.PUBLISHED_IN_JOURNAL_OFFICIEL)
        effects = fold_treaty(POLICY, file, promulgation(), stamp=T0)
        assert effects.file is not None
        assert effects.file.step is TreatyStep.PUBLISHED_IN_JOURNAL_OFFICIEL
        assert effects.file.anomalies == 1
        assert not effects.file.timeline[-1].applied
        assert "backwards" in anomaly(effects).reason

    def test_a_skipped_step_is_an_anomaly(self) -> None:
        """The Palace promulgating before the Chamber voted: refused, naming what is skipped."""
        file = at_step(TreatyStep.COUNCIL_OF_STATE_OPINION)
        effects = fold_treaty(POLICY, file, promulgation(), stamp=T0)
        assert effects.file is not None
        assert effects.file.step is TreatyStep.COUNCIL_OF_STATE_OPINION
        assert anomaly(effects).reason == (
            "promulgated skips approved_by_chamber: the file is at council_of_state_opinion"
        )

    def test_a_step_from_another_institution_is_an_anomaly(self) -> None:
        """The Journal officiel's publisher cannot declare the Council of State's opinion."""
        file = at_step(TreatyStep.BILL_OF_APPROVAL_TABLED)
        effects = fold_treaty(
            POLICY, file, declared(TreatyStep.COUNCIL_OF_STATE_OPINION, "scl"), stamp=T0
        )
        assert effects.file is not None and effects.file.step is file.step
        assert "taken by council-of-state, not scl" in anomaly(effects).reason

    def test_a_message_for_no_open_file_is_told(self) -> None:
        """A vote naming an unknown treaty reference is told to the treaties service."""
        effects = fold_treaty(POLICY, None, vote(), stamp=T0)
        assert effects.file is None
        assert anomaly(effects).reason == "no file is open under this reference"

    def test_a_file_opened_twice_or_by_another_is_refused(self) -> None:
        """Only the treaties service opens a file, once."""
        assert anomaly(fold_treaty(POLICY, at_step(None), opened(), stamp=T0)).reason == (
            "the file is already open"
        )
        forged = env(opened().payload, "chamber")
        assert (
            "only the treaties service"
            in anomaly(fold_treaty(POLICY, None, forged, stamp=T0)).reason
        )

    def test_the_anomaly_notice_id_is_derived_from_the_message(self) -> None:
        """A redelivered or rebuilt refusal sends the same notice id (consumers drop repeats)."""
        message = promulgation()
        first = fold_treaty(POLICY, at_step(None), message, stamp=T0)
        again = fold_treaty(POLICY, at_step(None), message, stamp=T0 + timedelta(hours=1))
        assert first.messages[0].envelope.message_id == again.messages[0].envelope.message_id


def request(*items: tuple[str, str]) -> Envelope[Payload]:
    return env(
        TreatyContributionsRequested(
            treaty_reference=REF,
            items=tuple(ContributionAsked(item=i, from_participant=p) for i, p in items),
            due_on=date(2026, 12, 18),
        ),
        "gs-treaties",
    )


class TestContributions:
    def test_submission_waits_for_every_contribution(self) -> None:
        """The file goes to the Government Council only when contributions are in or waived."""
        file = run(
            opened(), request(("fiche financière", "min-finance"), ("exposé", "dir-consular"))
        )
        assert file is not None
        assert file.waiting_on(ROLES) == ("min-finance", "dir-consular")
        refused = fold_treaty(POLICY, file, declared(TreatyStep.SUBMITTED), stamp=T0)
        assert (
            "contributions are missing: fiche financière (min-finance)" in anomaly(refused).reason
        )
        given_ = env(
            TreatyContributionGiven(treaty_reference=REF, item="fiche financière"), "min-finance"
        )
        waived = env(
            TreatyContributionWaived(
                treaty_reference=REF,
                item="exposé",
                from_participant="dir-consular",
                reason="drafted here",
            ),
            "gs-treaties",
        )
        file = run(given_, waived, declared(TreatyStep.SUBMITTED), file=file)
        assert file is not None and file.step is TreatyStep.SUBMITTED
        assert [c.waived_by for c in file.contributions] == [None, "gs-treaties"]

    def test_each_request_is_a_deadline_cancelled_when_answered(self) -> None:
        """A contribution asked is chased until due; the answer cancels its deadline."""
        file = run(opened())
        effects = fold_treaty(POLICY, file, request(("fiche", "min-finance")), stamp=T0)
        (deadline,) = effects.deadlines
        assert deadline.due_at == datetime(2026, 12, 18, 23, 0, tzinfo=UTC)  # its day's end, CET
        answer = env(TreatyContributionGiven(treaty_reference=REF, item="fiche"), "min-finance")
        assert fold_treaty(POLICY, effects.file, answer, stamp=T0).cancel == (deadline.id,)

    def test_a_contribution_from_someone_not_asked_is_refused(self) -> None:
        """Only the participant asked may give the item; a waiver only by the treaties service."""
        file = run(opened(), request(("fiche", "min-finance")))
        intruder = env(TreatyContributionGiven(treaty_reference=REF, item="fiche"), "min-justice")
        assert (
            "min-justice was not asked"
            in anomaly(fold_treaty(POLICY, file, intruder, stamp=T0)).reason
        )
        waiver = env(
            TreatyContributionWaived(
                treaty_reference=REF, item="fiche", from_participant="min-finance", reason="x"
            ),
            "min-finance",
        )
        assert (
            "only the treaties service"
            in anomaly(fold_treaty(POLICY, file, waiver, stamp=T0)).reason
        )

    def test_a_missed_contribution_escalates_naming_who_is_late(self) -> None:
        """At the contribution's deadline, the treaties service and the late ministry hear of it."""
        file = run(opened(), request(("fiche", "min-finance")))
        assert file is not None
        (contribution,) = file.contributions
        deadline = Deadline(
            f"treaty:{REF}:contribution:min-finance:fiche", "treaty", REF, contribution.due_at
        )
        (notice,) = escalate_treaty(POLICY, file, deadline, stamp=T0).messages
        assert isinstance(notice.envelope.payload, ProcedureEscalation)
        assert notice.envelope.payload.waiting_on == ("min-finance",)
        assert set(notice.envelope.recipients) == {"gs-treaties", "min-finance"}


class TestExpectations:
    def test_a_configured_expectation_sets_a_deadline_on_the_step(self) -> None:
        """Tabled bill: the Council of State's opinion is expected within 90 days."""
        file = at_step(TreatyStep.APPROVED_BY_GOVERNMENT_COUNCIL)
        effects = fold_treaty(POLICY, file, declared(TreatyStep.BILL_OF_APPROVAL_TABLED), stamp=T0)
        deadline, reminder = effects.deadlines
        assert deadline.id == step_deadline(REF, TreatyStep.BILL_OF_APPROVAL_TABLED)
        assert deadline.due_at == T0 + timedelta(days=90)
        assert reminder.due_at == T0 + timedelta(days=60)
        opinion = declared(TreatyStep.COUNCIL_OF_STATE_OPINION, "council-of-state")
        cancelled = fold_treaty(POLICY, effects.file, opinion, stamp=T0).cancel
        assert cancelled == (deadline.id, reminder.id)

    def test_the_reminder_goes_to_the_institution_waited_on(self) -> None:
        """60 days after the tabling, the Council of State (and the treaties service) are reminded."""
        effects = fold_treaty(
            POLICY,
            at_step(TreatyStep.APPROVED_BY_GOVERNMENT_COUNCIL),
            declared(TreatyStep.BILL_OF_APPROVAL_TABLED),
            stamp=T0,
        )
        assert effects.file is not None
        _, reminder = effects.deadlines
        (notice,) = escalate_treaty(POLICY, effects.file, reminder, stamp=T0).messages
        assert isinstance(notice.envelope.payload, ProcedureReminder)
        assert notice.envelope.payload.waiting_on == ("council-of-state",)
        assert notice.envelope.payload.due_at == T0 + timedelta(days=90)
        assert notice.envelope.recipients == ("gs-treaties", "council-of-state")

    def test_the_escalation_names_the_institution_waited_on(self) -> None:
        """Past the expectation, the treaties service, the Council of State and gs hear of it."""
        file = at_step(TreatyStep.BILL_OF_APPROVAL_TABLED)
        deadline = Deadline(step_deadline(REF, file.step), "treaty", REF, T0)
        (notice,) = escalate_treaty(POLICY, file, deadline, stamp=T0).messages
        assert isinstance(notice.envelope.payload, ProcedureEscalation)
        assert notice.envelope.payload.waiting_on == ("council-of-state",)
        assert notice.envelope.recipients == ("gs-treaties", "council-of-state", "gs")

    def test_a_file_that_moved_on_does_not_escalate(self) -> None:
        """A stale step deadline is cancelled, not sent."""
        file = at_step(TreatyStep.COUNCIL_OF_STATE_OPINION)
        deadline = Deadline(
            step_deadline(REF, TreatyStep.BILL_OF_APPROVAL_TABLED), "treaty", REF, T0
        )
        effects = escalate_treaty(POLICY, file, deadline, stamp=T0)
        assert effects.messages == () and effects.cancel == (deadline.id,)


STEP_MESSAGES = [
    *(lambda s=s: declared(s) for s in TreatyStep),
    *FROM_INSTITUTIONS.values(),
    lambda: declared(TreatyStep.PROMULGATED, "scl"),
    lambda: vote(VoteOutcome.REJECTED),
    lambda: council(Decision.REJECTED),
]


class TestProperty:
    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.integers(min_value=0, max_value=len(STEP_MESSAGES) - 1), max_size=30))
    def test_any_sequence_leaves_a_reachable_step_never_backwards(self, picks: list[int]) -> None:
        """Whatever arrives, in any order, the file only moves one legal step at a time."""
        file = run(opened())
        assert file is not None
        for pick in picks:
            before = file.step
            effects = fold_treaty(POLICY, file, STEP_MESSAGES[pick](), stamp=T0)
            assert effects.file is not None
            file = effects.file
            if file.step is not before:
                assert file.step in next_steps(before)
                assert not effects.messages
        # Every step the file holds was reached through each rank before it, once.
        steps = {s.value for s in TreatyStep}
        moves = [e.what for e in file.timeline if e.applied and e.what in steps]
        assert [TreatyStep(m).rank for m in moves] == list(range(len(moves)))
        assert (file.step is None) == (not moves)


class TestBounded:
    def test_refused_messages_do_not_grow_a_file_without_end(self) -> None:
        """A participant sending refused messages in a loop: the count is exact, the timeline bounded."""
        from liaison.procedures.treaties import MAX_ANOMALIES_KEPT

        file = run(opened())
        for _ in range(MAX_ANOMALIES_KEPT + 20):
            file = run(promulgation(), file=file)
        assert file is not None
        assert file.anomalies == MAX_ANOMALIES_KEPT + 20
        assert sum(not e.applied for e in file.timeline) == MAX_ANOMALIES_KEPT
        assert file.timeline[0].type == "treaty.file_opened"


def vote_at(at: datetime, voted_on: date) -> Envelope[Payload]:
    adopted = vote()
    payload = adopted.payload.model_copy(update={"voted_on": voted_on})
    return env(payload, "chamber", at)


class TestSecondVote:
    """Art. 78(4): the second vote comes at least three months after the first."""

    FIRST = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # 30 November in Luxembourg

    def first_voted(self) -> TreatyFile:
        return replace(at_step(TreatyStep.APPROVED_BY_CHAMBER), since=self.FIRST)

    def test_three_calendar_months_end_of_month_days_included(self) -> None:
        assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
        assert add_months(date(2027, 11, 30), 3) == date(2028, 2, 29)
        assert add_months(date(2026, 1, 15), 3) == date(2026, 4, 15)
        assert add_months(date(2026, 12, 31), 3) == date(2027, 3, 31)

    def test_a_second_vote_too_early_is_refused_with_the_first_allowed_day(self) -> None:
        file = self.first_voted()
        early = datetime(2027, 2, 27, 10, 0, tzinfo=UTC)
        effects = fold_treaty(POLICY, file, vote_at(early, date(2027, 2, 27)), stamp=early)
        assert effects.file is not None and effects.file.step is TreatyStep.APPROVED_BY_CHAMBER
        assert effects.file.anomalies == 1 and not effects.file.timeline[-1].applied
        assert anomaly(effects).reason == (
            "second_vote_held on 2027-02-27 is too early: the second vote comes at least "
            "3 months after the first (2026-11-30), so not before 2027-02-28"
        )

    def test_a_second_vote_three_months_on_is_held(self) -> None:
        file = self.first_voted()
        on_time = datetime(2027, 2, 28, 10, 0, tzinfo=UTC)
        effects = fold_treaty(POLICY, file, vote_at(on_time, date(2027, 2, 28)), stamp=on_time)
        assert not effects.messages
        assert effects.file is not None and effects.file.step is TreatyStep.SECOND_VOTE_HELD

    def test_a_vote_dated_ahead_or_declared_by_the_service_opens_nothing_early(self) -> None:
        file = self.first_voted()
        sent = datetime(2026, 12, 15, 10, 0, tzinfo=UTC)
        ahead = fold_treaty(POLICY, file, vote_at(sent, date(2027, 6, 1)), stamp=sent)
        assert "too early" in anomaly(ahead).reason
        backdated = datetime(2027, 3, 10, 10, 0, tzinfo=UTC)
        named = fold_treaty(POLICY, file, vote_at(backdated, date(2027, 1, 5)), stamp=backdated)
        assert "second_vote_held on 2027-01-05 is too early" in anomaly(named).reason
        declared_early = declared(TreatyStep.SECOND_VOTE_HELD, at=sent)
        effects = fold_treaty(POLICY, file, declared_early, stamp=sent)
        assert "too early" in anomaly(effects).reason


class TestFirstVoteDay:
    """The three months count from the day the Chamber voted, not the day it said so."""

    OPINION = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # the file reached the opinion

    def at_opinion(self) -> TreatyFile:
        return replace(at_step(TreatyStep.COUNCIL_OF_STATE_OPINION), since=self.OPINION)

    def first_vote(self, sent: datetime, voted_on: date) -> TreatyFile:
        file = self.at_opinion()
        effects = fold_treaty(POLICY, file, vote_at(sent, voted_on), stamp=sent)
        assert not effects.messages and effects.file is not None
        assert effects.file.step is TreatyStep.APPROVED_BY_CHAMBER
        return effects.file

    def test_a_vote_reported_late_counts_from_the_sitting(self) -> None:
        """Voted on 30 November, told on 10 December: the second vote from 28 February."""
        file = self.first_vote(datetime(2026, 12, 10, 9, 0, tzinfo=UTC), date(2026, 11, 30))
        assert file.first_vote_on == date(2026, 11, 30)
        assert second_vote_from(file) == date(2027, 2, 28)
        held = datetime(2027, 2, 28, 10, 0, tzinfo=UTC)
        effects = fold_treaty(POLICY, file, vote_at(held, date(2027, 2, 28)), stamp=held)
        assert not effects.messages
        assert effects.file is not None and effects.file.step is TreatyStep.SECOND_VOTE_HELD

    def test_the_refusal_names_the_day_of_the_sitting(self) -> None:
        file = self.first_vote(datetime(2026, 12, 10, 9, 0, tzinfo=UTC), date(2026, 11, 30))
        early = datetime(2027, 2, 27, 10, 0, tzinfo=UTC)
        effects = fold_treaty(POLICY, file, vote_at(early, date(2027, 2, 27)), stamp=early)
        assert anomaly(effects).reason == (
            "second_vote_held on 2027-02-27 is too early: the second vote comes at least "
            "3 months after the first (2026-11-30), so not before 2027-02-28"
        )

    def test_a_first_vote_dated_ahead_counts_from_the_day_it_was_sent(self) -> None:
        file = self.first_vote(datetime(2026, 11, 30, 15, 0, tzinfo=UTC), date(2027, 1, 20))
        assert file.first_vote_on == date(2026, 11, 30)

    def test_a_backdated_first_vote_does_not_bring_the_second_forward(self) -> None:
        """A vote dated before the Council of State's opinion counts from the opinion's day."""
        file = self.first_vote(datetime(2026, 11, 30, 15, 0, tzinfo=UTC), date(2026, 6, 1))
        assert file.first_vote_on == date(2026, 11, 2)
        assert second_vote_from(file) == date(2027, 2, 2)

    def test_a_first_vote_declared_by_the_service_counts_from_its_reached_on(self) -> None:
        file = self.at_opinion()
        sent = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)  # declared(...) names 1 December
        effects = fold_treaty(
            POLICY, file, declared(TreatyStep.APPROVED_BY_CHAMBER, at=sent), stamp=sent
        )
        assert effects.file is not None and effects.file.first_vote_on == date(2026, 12, 1)

    def test_a_file_stored_before_the_day_was_kept_counts_from_its_since(self) -> None:
        old = replace(at_step(TreatyStep.APPROVED_BY_CHAMBER), since=TestSecondVote.FIRST)
        assert old.first_vote_on is None
        assert first_vote_on(old) == date(2026, 11, 30)


class TestTimelineCap:
    def test_deferrals_and_rejected_votes_stop_at_their_bound(self) -> None:
        """The Government Council deferring without end: recorded up to the bound, then refused."""
        file = at_step(TreatyStep.SUBMITTED)
        for _ in range(MAX_OUTCOMES):
            effects = fold_treaty(POLICY, file, council(Decision.DEFERRED), stamp=T0)
            assert not effects.messages and effects.file is not None
            file = effects.file
        effects = fold_treaty(POLICY, file, council(Decision.DEFERRED), stamp=T0)
        assert anomaly(effects).reason == (
            f"the file already records {MAX_OUTCOMES} deferrals and rejected votes "
            f"(at most {MAX_OUTCOMES}): not recorded"
        )
        rejected = fold_treaty(POLICY, file, vote(VoteOutcome.REJECTED), stamp=T0)
        assert "deferrals and rejected votes" in anomaly(rejected).reason
        assert effects.file is not None
        assert sum(e.applied for e in effects.file.timeline) == MAX_OUTCOMES + 1
        # The approval still moves the file.
        approved = fold_treaty(POLICY, file, council(), stamp=T0)
        assert not approved.messages and approved.file is not None
        assert approved.file.step is TreatyStep.APPROVED_BY_GOVERNMENT_COUNCIL

    def test_a_full_timeline_takes_only_steps_forward(self) -> None:
        file = at_step(None)
        items = (
            ContributionAsked(item=f"pièce {n}", from_participant="dir-legal") for n in range(400)
        )
        for n, asked in enumerate(items):
            request = TreatyContributionsRequested(
                treaty_reference=REF, items=(asked,), due_on=date(2027, 1, 15)
            )
            effects = fold_treaty(POLICY, file, env(request, "gs-treaties"), stamp=T0)
            assert effects.file is not None
            file = effects.file
            if n + 1 < MAX_APPLIED_LINES:  # the opening is the first line
                assert not effects.messages
        applied = [e for e in file.timeline if e.applied]
        assert len(applied) == MAX_APPLIED_LINES
        assert "the file's timeline is full" in file.timeline[-1].what
        assert len(file.timeline) == MAX_APPLIED_LINES + 50  # the newest anomalies kept
