"""Treaty files and parliamentary questions on the real broker, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from liaison.settings import Settings
from schemas import wire
from schemas.chamber import ChamberVoteV2, ParliamentaryAnswer, ParliamentaryQuestion, VoteOutcome
from schemas.council import CouncilDecisionV2, Decision
from schemas.envelope import new_envelope
from schemas.palace import PromulgationV2
from schemas.treaties import (
    ContributionAsked,
    TreatyContributionGiven,
    TreatyContributionsRequested,
    TreatyFileOpened,
    TreatyKind,
    TreatyStageReachedV2,
    TreatyStep,
)
from schemas.types import Payload
from tests.integration.console import cli
from tests.integration.harness import depth, publish_as, running, wait_for
from tests.integration.procedures_support import procedures_env, procedures_settings, take_json

REF = "TR-2026-077"


@pytest.fixture
def proc(hub_settings: Settings, database_url: str, tmp_path: Path) -> Settings:
    settings = procedures_settings(hub_settings, database_url, tmp_path)
    done = cli(settings, "procedures", "migrate", **_extra(settings))
    assert done.code == 0, done.err
    return settings


def _extra(settings: Settings) -> dict[str, str]:
    env = procedures_env(settings)
    return {
        k: v for k, v in env.items() if k.startswith("LIAISON_PROC") or k == "LIAISON_ACKS_PATH"
    }


def _router_and_audit(settings: Settings, tmp_path: Path) -> ExitStack:
    stack = ExitStack()
    stack.enter_context(running(settings, "serve", log_path=str(tmp_path / "router.log")))
    stack.enter_context(
        running(
            settings,
            "audit",
            "run",
            wait_queue=wire.AUDIT_QUEUE,
            log_path=str(tmp_path / "audit.log"),
        )
    )
    return stack


def _procedures(settings: Settings, tmp_path: Path, name: str = "procedures.log") -> Any:
    return running(
        settings,
        "procedures",
        "run",
        wait_queue="inbox.gs-procedures",
        log_path=str(tmp_path / name),
        env=procedures_env(settings),
    )


def send(settings: Settings, code: str, payload: Payload, to: tuple[str, ...]) -> None:
    publish_as(settings, code, new_envelope(payload, sender=code, recipients=to))


def step(s: TreatyStep, **extra: Any) -> TreatyStageReachedV2:
    return TreatyStageReachedV2(
        treaty_reference=REF, stage=s.stage, step=s, reached_on=date.today(), **extra
    )


def _rebuilt(settings: Settings) -> bool:
    done = cli(settings, "procedures", "rebuild", "--json", **_extra(settings))
    return done.code == 0


class TestTreatyFile:
    def test_six_institutions_take_a_file_to_entry_into_force(
        self, proc: Settings, tmp_path: Path
    ) -> None:
        """From signature to entry into force by each institution's own message; the early
        promulgation is an anomaly told once; the ledger rebuilds the same state."""
        today = date.today()
        early = PromulgationV2(
            act_reference="L-77",
            title="Loi portant approbation",
            promulgated_on=today,
            treaty_reference=REF,
        )
        to_treaties = ("gs-treaties",)
        with _router_and_audit(proc, tmp_path), _procedures(proc, tmp_path):
            send(
                proc,
                "gs-treaties",
                TreatyFileOpened(
                    treaty_reference=REF,
                    title="Convention avec le Cap-Vert",
                    kind=TreatyKind.BILATERAL,
                    parties=("Luxembourg", "Cap-Vert"),
                    signed_on=today,
                ),
                ("gs-legal",),
            )
            send(
                proc,
                "gs-treaties",
                TreatyContributionsRequested(
                    treaty_reference=REF,
                    items=(
                        ContributionAsked(item="fiche financière", from_participant="min-finance"),
                    ),
                    due_on=today + timedelta(days=20),
                ),
                ("min-finance",),
            )
            send(proc, "palace", early, to_treaties)  # out of order: nothing is voted yet
            send(
                proc,
                "min-finance",
                TreatyContributionGiven(treaty_reference=REF, item="fiche financière"),
                to_treaties,
            )
            send(proc, "gs-treaties", step(TreatyStep.SUBMITTED), ("gs-legal",))
            send(
                proc,
                "council",
                CouncilDecisionV2(
                    agenda_item_reference="CG-77",
                    meeting_on=today,
                    decision=Decision.APPROVED,
                    treaty_reference=REF,
                ),
                to_treaties,
            )
            send(
                proc,
                "gs-treaties",
                step(TreatyStep.BILL_OF_APPROVAL_TABLED, bill_number="8601"),
                ("gs-legal",),
            )
            send(
                proc,
                "council-of-state",
                step(TreatyStep.COUNCIL_OF_STATE_OPINION, bill_number="8601"),
                to_treaties,
            )
            send(
                proc,
                "chamber",
                ChamberVoteV2(
                    bill_number="8601",
                    title="Projet de loi 8601",
                    votes_for=58,
                    votes_against=0,
                    abstentions=2,
                    outcome=VoteOutcome.ADOPTED,
                    voted_on=today,
                    treaty_reference=REF,
                ),
                to_treaties,
            )
            send(
                proc,
                "council-of-state",
                step(TreatyStep.SECOND_VOTE_DISPENSED, bill_number="8601"),
                to_treaties,
            )
            send(proc, "palace", early, to_treaties)  # the same act, now in its place
            send(
                proc,
                "scl",
                step(
                    TreatyStep.PUBLISHED_IN_JOURNAL_OFFICIEL,
                    bill_number="8601",
                    memorial_reference="A-2026-901",
                ),
                to_treaties,
            )
            for last in (TreatyStep.INSTRUMENT_DEPOSITED, TreatyStep.ENTERED_INTO_FORCE):
                send(
                    proc,
                    "gs-treaties",
                    step(last, bill_number="8601", depositary="Cap-Vert"),
                    ("gs-legal",),
                )

            def in_force() -> bool:
                shown = cli(proc, "treaties", "show", REF, "--json", **_extra(proc))
                return shown.code == 0 and shown.json()["step"] == "entered_into_force"

            wait_for(in_force, timeout=60, what="the file entered into force")
            file = cli(proc, "treaties", "show", REF, "--json", **_extra(proc)).json()
            senders = {e["sender"] for e in file["timeline"] if e["applied"]}
            assert senders == {
                "gs-treaties",
                "min-finance",
                "council",
                "council-of-state",
                "chamber",
                "palace",
                "scl",
            }
            assert file["anomalies"] == 1 and file["waiting_on"] == []
            (refused,) = [e for e in file["timeline"] if not e["applied"]]
            assert refused["sender"] == "palace"
            assert "skips submitted" in refused["what"]

            # The treaties service was told, once, with the reason.
            at_treaties = [d for _, d in take_json(proc, "gs-treaties", 9)]
            notices = [d for d in at_treaties if d["type"] == "procedure.anomaly"]
            assert len(notices) == 1
            assert notices[0]["payload"]["file_reference"] == REF
            assert "skips submitted" in notices[0]["payload"]["reason"]

            listed = cli(
                proc, "treaties", "list", "--stage", "entered_into_force", "--json", **_extra(proc)
            )
            assert [f["reference"] for f in listed.json()] == [REF]
            wait_for(lambda: _rebuilt(proc), timeout=30, what="a rebuild with no difference")


def question(number: str, deadline: date) -> ParliamentaryQuestion:
    return ParliamentaryQuestion(
        question_number=number,
        deputy="Mme C. Schmit",
        subject="Protection consulaire des frontaliers",
        text="Quelles mesures?",
        asked_on=deadline - timedelta(days=30),
        answer_deadline=deadline,
    )


class TestQuestions:
    def test_an_overdue_question_escalates_once_across_a_restart(
        self, proc: Settings, tmp_path: Path
    ) -> None:
        """Past its deadline one escalation reaches the directorate and gs; a restarted
        service sends no second; the late answer closes it; the ledger rebuilds the same."""
        yesterday = datetime.now(UTC).date() - timedelta(days=2)
        on_time = datetime.now(UTC).date() + timedelta(days=40)
        with _router_and_audit(proc, tmp_path):
            with _procedures(proc, tmp_path, "procedures-1.log"):
                send(proc, "chamber", question("3001", yesterday), ("gs",))
                send(proc, "chamber", question("3002", on_time), ("gs",))
                ((_, escalation),) = take_json(proc, "dir-consular", 1, timeout=30)
                assert escalation["type"] == "procedure.escalation"
                assert escalation["payload"]["procedure"] == "question"
                assert escalation["payload"]["waiting_on"] == ["dir-consular"]
                status = cli(proc, "status", "--json", "--source", "amqp", **_extra(proc))
                assert status.code == 2, status.out
                kinds = [b["kind"] for b in status.json()["breaches"]]
                assert kinds == ["questions_overdue"], status.out
            with _procedures(proc, tmp_path, "procedures-2.log"):
                time.sleep(2.0)  # several sweeps of the restarted service
                assert depth(proc, "inbox.dir-consular") == 0
                overdue = cli(proc, "questions", "list", "--overdue", "--json", **_extra(proc))
                assert [q["number"] for q in overdue.json()] == ["3001"]
                answer = ParliamentaryAnswer(
                    question_number="3001",
                    text="Les mesures suivantes ...",
                    answered_on=yesterday + timedelta(days=2),
                )
                send(proc, "gs", answer, ("chamber",))

                def answered() -> bool:
                    shown = cli(proc, "questions", "show", "3001", "--json", **_extra(proc))
                    return shown.json()["answered_on"] is not None

                wait_for(answered, timeout=30, what="the late answer closed the question")
                shown = cli(proc, "questions", "show", "3001", "--json", **_extra(proc)).json()
                assert shown["days_late"] == 2
                still = cli(proc, "questions", "list", "--open", "--json", **_extra(proc)).json()
                assert [q["number"] for q in still] == ["3002"]
                wait_for(
                    lambda: (
                        cli(proc, "status", "--json", "--source", "amqp", **_extra(proc)).code == 0
                    ),
                    timeout=30,
                    what="status back to 0 once the overdue question was answered",
                )
                wait_for(lambda: _rebuilt(proc), timeout=30, what="a rebuild with no difference")
