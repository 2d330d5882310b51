"""The treaty and question part of ``liaison demo``, after the registry and the FLASH cable.

1. A treaty file from signature to entry into force, moved by each institution's
   own user: the treaties service, the Ministry of Finance (a contribution), the
   Government Council, the Council of State, the Chamber, the Palace and the
   publisher of the Journal officiel. The Palace's promulgation arrives once too
   early: it is recorded on the file as an anomaly and the treaties service is told.
2. Two parliamentary questions: one answered on time, one already past its
   deadline, which the consular directorate and the General Secretariat hear of.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from liaison.devtools.demo_procedures import Echo, _publish, _take
from liaison.errors import BrokerError
from liaison.procedures import case_store
from liaison.procedures.store import Store
from liaison.settings import Settings
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

REF = "TR-2026-031"
BILL = "8633"


def _send(settings: Settings, sender: str, payload: Payload, to: tuple[str, ...]) -> None:
    _publish(settings, sender, new_envelope(payload, sender=sender, recipients=to))


def _step(step: TreatyStep, **extra: Any) -> TreatyStageReachedV2:
    return TreatyStageReachedV2(
        treaty_reference=REF, stage=step.stage, step=step, reached_on=date.today(), **extra
    )


def _treaty_messages(today: date) -> list[tuple[str, Payload, tuple[str, ...]]]:
    """(sender, payload, recipients), in the order the demo sends them."""
    treaties, legal = ("gs-treaties",), ("gs-legal",)
    promulgation = PromulgationV2(
        act_reference="L-2026-031",
        title="Loi portant approbation de l'Accord avec la République de Corée",
        promulgated_on=today,
        treaty_reference=REF,
    )
    return [
        (
            "gs-treaties",
            TreatyFileOpened(
                treaty_reference=REF,
                title="Accord de vacances-travail avec la République de Corée",
                kind=TreatyKind.BILATERAL,
                parties=("Grand-Duché de Luxembourg", "République de Corée"),
                signed_on=today - timedelta(days=120),
            ),
            legal,
        ),
        (
            "gs-treaties",
            TreatyContributionsRequested(
                treaty_reference=REF,
                items=(ContributionAsked(item="fiche financière", from_participant="min-finance"),),
                due_on=today + timedelta(days=15),
            ),
            ("min-finance",),
        ),
        ("palace", promulgation, treaties),  # too early: recorded as an anomaly
        (
            "min-finance",
            TreatyContributionGiven(treaty_reference=REF, item="fiche financière"),
            treaties,
        ),
        ("gs-treaties", _step(TreatyStep.SUBMITTED), legal),
        (
            "council",
            CouncilDecisionV2(
                agenda_item_reference="CG-2026-031",
                meeting_on=today,
                decision=Decision.APPROVED,
                treaty_reference=REF,
            ),
            treaties,
        ),
        ("gs-treaties", _step(TreatyStep.BILL_OF_APPROVAL_TABLED, bill_number=BILL), legal),
        (
            "council-of-state",
            _step(TreatyStep.COUNCIL_OF_STATE_OPINION, bill_number=BILL),
            treaties,
        ),
        (
            "chamber",
            ChamberVoteV2(
                bill_number=BILL,
                title="Projet de loi portant approbation de l'Accord avec la Corée",
                votes_for=57,
                votes_against=0,
                abstentions=3,
                outcome=VoteOutcome.ADOPTED,
                voted_on=today,
                treaty_reference=REF,
            ),
            treaties,
        ),
        ("council-of-state", _step(TreatyStep.SECOND_VOTE_DISPENSED, bill_number=BILL), treaties),
        ("palace", promulgation, treaties),
        (
            "scl",
            _step(
                TreatyStep.PUBLISHED_IN_JOURNAL_OFFICIEL,
                bill_number=BILL,
                memorial_reference="A-2026-631",
            ),
            treaties,
        ),
        (
            "gs-treaties",
            _step(
                TreatyStep.INSTRUMENT_DEPOSITED, bill_number=BILL, depositary="République de Corée"
            ),
            legal,
        ),
        (
            "gs-treaties",
            _step(
                TreatyStep.ENTERED_INTO_FORCE, bill_number=BILL, depositary="République de Corée"
            ),
            legal,
        ),
    ]


def _wait_until(settings: Settings, reached: Callable[[Connection], bool], what: str) -> None:
    """Poll the procedures database until ``reached`` (60 s at most)."""
    store = Store.open(settings.procedures_url)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with store.reading() as db:
                if reached(db):
                    return
            time.sleep(0.3)
    finally:
        store.close()
    raise BrokerError(f"demo: {what} did not happen within 60 s")


def _in_force(db: Connection) -> bool:
    file = case_store.load_treaty(db, REF)
    return file is not None and file.step is TreatyStep.ENTERED_INTO_FORCE


def _answered_on_time(db: Connection) -> bool:
    case = case_store.load_question(db, "DEMO-1")
    return (
        case is not None
        and case.assigned_to == "dir-economic"
        and not case.open
        and case.days_late == 0
    )


def run_cases_demo(settings: Settings, echo: Echo) -> None:
    """The two scenes above, printed as they happen."""
    today = datetime.now(UTC).date()
    echo("\nA treaty file, from signature to entry into force:")
    for sender, payload, to in _treaty_messages(today):
        _send(settings, sender, payload, to)
    _, anomaly = _take(
        settings,
        "gs-treaties",
        lambda d: d["type"] == "procedure.anomaly" and d["payload"]["file_reference"] == REF,
        60,
    )
    echo(
        f"  {anomaly['payload']['subject_sender']}'s early {anomaly['payload']['subject_type']} "
        f"not applied, gs-treaties told: {anomaly['payload']['reason']}"
    )
    _wait_until(settings, _in_force, f"treaty file {REF} entering into force")
    echo(
        "  gs-treaties, min-finance, council, council-of-state, chamber, palace and scl moved "
        f"{REF} to entered_into_force (`liaison treaties show {REF}`)"
    )

    echo("\nParliamentary questions:")
    on_time = ParliamentaryQuestion(
        question_number="DEMO-1",
        deputy="M. le Député J. Hoffmann",
        subject="Relations économiques avec la Corée",
        text="Quelles retombées pour les entreprises luxembourgeoises?",
        asked_on=today,
        answer_deadline=today + timedelta(days=30),
    )
    late = ParliamentaryQuestion(
        question_number="DEMO-2",
        deputy="Mme la Députée L. Wagner",
        subject="Assistance consulaire aux frontaliers",
        text="Combien de demandes en 2026?",
        asked_on=today - timedelta(days=35),
        answer_deadline=today - timedelta(days=2),
    )
    late_envelope = new_envelope(late, sender="chamber", recipients=("gs",))
    _send(settings, "chamber", on_time, ("gs",))
    _publish(settings, "chamber", late_envelope)
    answer = ParliamentaryAnswer(
        question_number="DEMO-1", text="Les échanges ont progressé de 12 %.", answered_on=today
    )
    _send(settings, "gs", answer, ("chamber",))
    _wait_until(settings, _answered_on_time, "question DEMO-1 answered")
    echo("  DEMO-1 (economic relations) assigned to dir-economic, answered on time")
    _take(
        settings,
        "dir-consular",
        lambda d: (
            d["type"] == "procedure.escalation"
            and d["payload"]["subject_message_id"] == str(late_envelope.message_id)
        ),
        timeout=60,
    )
    echo(
        f"  DEMO-2 (consular assistance) was due {late.answer_deadline}: one escalation to "
        f"dir-consular and gs (`liaison questions list --overdue`)"
    )


__all__ = ["run_cases_demo"]
