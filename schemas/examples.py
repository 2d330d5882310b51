"""One valid, realistic payload per registered (type, version).

Used by the tests (every example must round-trip), by the demo and by the
benchmark. The examples are built on each call, so importing this module
creates nothing; ids and dates are fixed so that runs are reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

from schemas.chamber import (
    ChamberVote,
    ChamberVoteV2,
    ParliamentaryAnswer,
    ParliamentaryQuestion,
    QuestionAssigned,
    VoteOutcome,
)
from schemas.committee import (
    BudgetLineOpened,
    DecisionRecorded,
    ExpenseCommitted,
    ExpensePaid,
    MeetingConvened,
    MinutesAdopted,
    OverspendEscalated,
)
from schemas.communication import (
    Briefing,
    Language,
    PressRelease,
    ReleaseApproved,
    ReleaseApprovedV2,
    ReleasePublished,
    ReleaseRetracted,
    ReleaseWithdrawn,
)
from schemas.correspondence import Attachment, Letter, OfficialNote
from schemas.council import AgendaItemSubmitted, CouncilDecision, CouncilDecisionV2, Decision
from schemas.envelope import Envelope, new_envelope
from schemas.legal import OpinionGiven, OpinionRequested
from schemas.missions import (
    CableV1,
    CableV2,
    ConsularCase,
    ConsularCaseKind,
    SecurityIncident,
    Severity,
)
from schemas.ona import Figure, OnaReport
from schemas.palace import AudienceRequest, LettersOfCredence, Promulgation, PromulgationV2
from schemas.procedures import (
    ProcedureAnomaly,
    ProcedureEscalation,
    ProcedureRefusal,
    ProcedureReminder,
)
from schemas.receipts import ReceiptAnswered, ReceiptReceived, ReceiptRegistered
from schemas.treaties import (
    ContributionAsked,
    TreatyContributionGiven,
    TreatyContributionsRequested,
    TreatyContributionWaived,
    TreatyFileOpened,
    TreatyKind,
    TreatyStage,
    TreatyStageReached,
    TreatyStageReachedV2,
    TreatyStep,
)
from schemas.types import Classification, Payload, Precedence

_ORIGINAL = UUID("0b6f2c1e-3c1a-4a51-9d1e-5f3f0c2a7b10")
_ANSWER = UUID("6a0e8e54-2f7d-4c3b-8f21-9b7d4e1c0a22")

_CABLE_TEXT = (
    "1. Le Conseil des ministres des Affaires étrangères a examiné ce jour la situation "
    "au Proche-Orient. La présidence a présenté un projet de conclusions.\n"
    "2. Plusieurs délégations ont souhaité renforcer le paragraphe humanitaire; "
    "la délégation luxembourgeoise a soutenu cette demande.\n"
    "3. Commentaire: un accord sur le texte paraît probable lors du prochain Coreper."
)


def _letter() -> Letter:
    return Letter(
        registry_reference="MAEE/SG/2025/01432",
        subject="Accord de coopération culturelle avec la République de Slovénie",
        body=(
            "Monsieur le Ministre,\n\nJ'ai l'honneur de vous transmettre le texte paraphé de "
            "l'accord de coopération culturelle, en vue de sa signature lors de la prochaine "
            "commission mixte.\n\nVeuillez agréer, Monsieur le Ministre, l'expression de ma "
            "haute considération."
        ),
        thread_registry_reference="MAEE/DAP/2024/00987",
        attachments=(
            Attachment(
                name="accord-culturel-SI-paraphe.pdf",
                sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                size=284_113,
            ),
        ),
        addressee="Monsieur le Ministre de la Culture",
        signatory="Le Secrétaire général",
    )


def _note() -> OfficialNote:
    return OfficialNote(
        registry_reference="MAEE/PROT/2025/00311",
        subject="Notification of the arrival of the new Defence Attaché",
        body=(
            "The Ministry of Foreign and European Affairs presents its compliments to the "
            "Embassy and has the honour to acknowledge the notification of the arrival of "
            "its new Defence Attaché."
        ),
        in_reply_to=_ORIGINAL,
    )


def _cable_v1() -> CableV1:
    return CableV1(
        cable_number="BRUXELLES-UE/2025/0457",
        subject="Conseil Affaires étrangères: conclusions sur le Proche-Orient",
        text=_CABLE_TEXT,
        tags=("PREL", "EU", "XF"),
    )


def _cable_v2() -> CableV2:
    return CableV2(
        cable_number="BRUXELLES-UE/2025/0458",
        subject="Conseil Affaires étrangères: suite des discussions",
        text=_CABLE_TEXT,
        tags=("PREL", "EU", "XF"),
        caveats=("EXDIS",),
        references=("BRUXELLES-UE/2025/0457",),
    )


def _press_release() -> PressRelease:
    return PressRelease(
        title="Le Ministre reçoit son homologue slovène",
        body="Le Ministre des Affaires étrangères et européennes a reçu ce jour son homologue.",
        embargo_until=datetime(2025, 3, 12, 10, 0, tzinfo=UTC),
        languages=(Language.FR, Language.EN),
    )


_BUILDERS: dict[tuple[str, int], Callable[[], Payload]] = {
    ("correspondence.letter", 1): _letter,
    ("correspondence.note", 1): _note,
    ("treaty.file_opened", 1): lambda: TreatyFileOpened(
        treaty_reference="TR-2025-014",
        title="Convention entre le Grand-Duché de Luxembourg et la République du Cap-Vert "
        "en matière de sécurité sociale",
        kind=TreatyKind.BILATERAL,
        parties=("Grand-Duché de Luxembourg", "République du Cap-Vert"),
        signed_on=date(2025, 3, 12),
    ),
    ("treaty.stage_reached", 1): lambda: TreatyStageReached(
        treaty_reference="TR-2025-014",
        stage=TreatyStage.BILL_OF_APPROVAL_TABLED,
        reached_on=date(2025, 6, 4),
        bill_number="8512",
        note="Projet de loi portant approbation déposé à la Chambre des Députés.",
    ),
    ("treaty.stage_reached", 2): lambda: TreatyStageReachedV2(
        treaty_reference="TR-2025-014",
        stage=TreatyStage.BILL_OF_APPROVAL_TABLED,
        step=TreatyStep.COUNCIL_OF_STATE_OPINION,
        reached_on=date(2025, 9, 23),
        bill_number="8512",
        note="Avis du Conseil d'État (doc. parl. 8512/02).",
    ),
    ("treaty.contributions_requested", 1): lambda: TreatyContributionsRequested(
        treaty_reference="TR-2025-014",
        items=(
            ContributionAsked(item="fiche financière", from_participant="min-finance"),
            ContributionAsked(item="exposé des motifs", from_participant="dir-consular"),
        ),
        due_on=date(2025, 4, 30),
    ),
    ("treaty.contribution_given", 1): lambda: TreatyContributionGiven(
        treaty_reference="TR-2025-014",
        item="fiche financière",
        note="Impact budgétaire: néant.",
    ),
    ("treaty.contribution_waived", 1): lambda: TreatyContributionWaived(
        treaty_reference="TR-2025-014",
        item="exposé des motifs",
        from_participant="dir-consular",
        reason="Rédigé par le Service des traités sur la base du rapport de négociation.",
    ),
    ("council.agenda_item_submitted", 1): lambda: AgendaItemSubmitted(
        agenda_item_reference="CG-2025-06-20/07",
        title="Approbation du projet de loi portant approbation de la Convention avec le Cap-Vert",
        submitted_by="Service des traités",
        requested_meeting_on=date(2025, 6, 20),
        summary="Le Conseil est invité à approuver le projet de loi et à autoriser son dépôt.",
    ),
    ("council.decision", 1): lambda: CouncilDecision(
        agenda_item_reference="CG-2025-06-20/07",
        meeting_on=date(2025, 6, 20),
        decision=Decision.APPROVED,
    ),
    ("council.decision", 2): lambda: CouncilDecisionV2(
        agenda_item_reference="CG-2025-06-20/07",
        meeting_on=date(2025, 6, 20),
        decision=Decision.APPROVED,
        treaty_reference="TR-2025-014",
    ),
    ("chamber.question", 1): lambda: ParliamentaryQuestion(
        question_number="1874",
        deputy="Mme la Députée A. Weber",
        subject="Assistance consulaire aux ressortissants au Moyen-Orient",
        text="Combien de ressortissants ont bénéficié d'une assistance consulaire en 2024?",
        asked_on=date(2025, 2, 3),
        answer_deadline=date(2025, 3, 3),
    ),
    ("chamber.answer", 1): lambda: ParliamentaryAnswer(
        question_number="1874",
        text="En 2024, 312 ressortissants ont bénéficié d'une assistance consulaire.",
        answered_on=date(2025, 2, 27),
    ),
    ("chamber.vote", 1): lambda: ChamberVote(
        bill_number="8512",
        title="Projet de loi portant approbation de la Convention avec le Cap-Vert",
        votes_for=56,
        votes_against=0,
        abstentions=4,
        outcome=VoteOutcome.ADOPTED,
        voted_on=date(2025, 10, 14),
    ),
    ("chamber.vote", 2): lambda: ChamberVoteV2(
        bill_number="8512",
        title="Projet de loi portant approbation de la Convention avec le Cap-Vert",
        votes_for=56,
        votes_against=0,
        abstentions=4,
        outcome=VoteOutcome.ADOPTED,
        voted_on=date(2025, 10, 14),
        treaty_reference="TR-2025-014",
    ),
    ("palace.audience_request", 1): lambda: AudienceRequest(
        requested_for="Le Ministre des Affaires étrangères et européennes",
        subject="Préparation de la visite d'État au Japon",
        purpose="Présenter à S.A.R. le Grand-Duc le programme de la visite d'État.",
        preferred_dates=(date(2025, 9, 8), date(2025, 9, 10)),
    ),
    ("palace.letters_of_credence", 1): lambda: LettersOfCredence(
        ambassador_name="S.E. Mme Ingrid Solberg",
        sending_state="Royaume de Norvège",
        presented_on=date(2025, 5, 21),
    ),
    ("palace.promulgation", 1): lambda: Promulgation(
        act_reference="L-2025-11-03",
        title="Loi du 3 novembre 2025 portant approbation de la Convention avec le Cap-Vert",
        promulgated_on=date(2025, 11, 3),
        memorial_reference="A-2025-512",
        published_on=date(2025, 11, 7),
    ),
    ("palace.promulgation", 2): lambda: PromulgationV2(
        act_reference="L-2025-11-03",
        title="Loi du 3 novembre 2025 portant approbation de la Convention avec le Cap-Vert",
        promulgated_on=date(2025, 11, 3),
        treaty_reference="TR-2025-014",
    ),
    ("mission.cable", 1): _cable_v1,
    ("mission.cable", 2): _cable_v2,
    ("mission.security_incident", 1): lambda: SecurityIncident(
        severity=Severity.MEDIUM,
        occurred_at=datetime(2025, 4, 2, 21, 40, tzinfo=UTC),
        location="Résidence de l'Ambassadeur, entrée principale",
        description="Tentative d'intrusion nocturne; alarme déclenchée, police locale sur place.",
        measures_taken="Renforcement de la garde pour 72 heures.",
    ),
    ("mission.consular_case", 1): lambda: ConsularCase(
        case_number="CONS-DKR-2025-0042",
        kind=ConsularCaseKind.PASSPORT,
        citizen_reference="RC-7F3K9Q",
        country="Sénégal",
        opened_on=date(2025, 7, 15),
        summary="Passeport perdu; délivrance d'un titre de voyage provisoire demandée.",
    ),
    ("icc.press_release", 1): _press_release,
    ("icc.briefing", 1): lambda: Briefing(
        title="Point presse: Conseil Affaires étrangères",
        audience="Porte-parole",
        key_points=(
            "Soutien au renforcement du volet humanitaire",
            "Accord attendu au prochain Coreper",
        ),
        delivered_on=date(2025, 3, 17),
    ),
    ("icc.release_approved", 1): lambda: ReleaseApproved(
        release_message_id=_ORIGINAL, author="gs-icc", note="Approuvé pour publication."
    ),
    ("icc.release_approved", 2): lambda: ReleaseApprovedV2.of(
        _ORIGINAL, "gs-icc", _press_release(), note="Approuvé pour publication."
    ),
    ("icc.release_withdrawn", 1): lambda: ReleaseWithdrawn(
        release_message_id=_ORIGINAL, author="gs-icc", reason="Visite reportée."
    ),
    ("icc.release_published", 1): lambda: ReleasePublished(
        release_message_id=_ORIGINAL,
        author="gs-icc",
        title="Le Ministre reçoit son homologue slovène",
        body="Le Ministre des Affaires étrangères et européennes a reçu ce jour son homologue.",
        languages=(Language.FR, Language.EN),
        published_at=datetime(2025, 3, 12, 10, 0, tzinfo=UTC),
        approved_by="gs-dsg",
    ),
    ("icc.release_retracted", 1): lambda: ReleaseRetracted(
        release_message_id=_ORIGINAL,
        author="gs-icc",
        withdrawn_at=datetime(2025, 3, 12, 11, 0, tzinfo=UTC),
        withdrawn_by="gs-icc",
        reason="Visite reportée.",
    ),
    ("legal.opinion_requested", 1): lambda: OpinionRequested(
        question="La convention requiert-elle une loi d'approbation?",
        context="Convention bilatérale de sécurité sociale signée le 12 mars 2025.",
        due_on=date(2025, 4, 1),
    ),
    ("legal.opinion_given", 1): lambda: OpinionGiven(
        request_message_id=_ORIGINAL,
        opinion="La convention touche aux droits des assurés: l'article 37 s'applique.",
        conclusion="Une loi d'approbation est requise.",
    ),
    ("ona.report", 1): lambda: OnaReport(
        period_start=date(2025, 1, 1),
        period_end=date(2025, 3, 31),
        title="Rapport trimestriel de l'ONA, T1 2025",
        summary="Taux d'occupation stable; ouverture d'une structure d'hébergement.",
        figures=(
            Figure(label="Demandes de protection internationale", value=512),
            Figure(label="Places d'hébergement occupées", value=6_830),
        ),
    ),
    ("receipt.received", 1): lambda: ReceiptReceived(
        original_message_id=_ORIGINAL,
        received_at=datetime(2025, 3, 12, 9, 15, tzinfo=UTC),
    ),
    ("receipt.registered", 1): lambda: ReceiptRegistered(
        original_message_id=_ORIGINAL,
        registry_number="CHD/2025/04471",
        registered_on=date(2025, 3, 12),
    ),
    ("receipt.answered", 1): lambda: ReceiptAnswered(
        original_message_id=_ORIGINAL, answer_message_id=_ANSWER
    ),
    ("procedure.reminder", 1): lambda: ProcedureReminder(
        procedure="acknowledgement",
        subject_message_id=_ORIGINAL,
        subject_type="correspondence.letter",
        subject_sender="gs",
        due_at=datetime(2025, 3, 14, 17, 0, tzinfo=UTC),
        waiting_on=("palace",),
        awaited="receipt.registered",
        text="Accusé d'enregistrement attendu avant le 14 mars 2025 à 18h00.",
    ),
    ("procedure.escalation", 1): lambda: ProcedureEscalation(
        procedure="acknowledgement",
        subject_message_id=_ORIGINAL,
        subject_type="mission.cable",
        subject_sender="emb-berlin",
        due_at=datetime(2025, 3, 12, 9, 30, tzinfo=UTC),
        waiting_on=("dir-political",),
        awaited="receipt.received",
        text="Câble FLASH non accusé dans les 15 minutes.",
    ),
    ("procedure.anomaly", 1): lambda: ProcedureAnomaly(
        procedure="treaty",
        file_reference="TR-2025-014",
        subject_message_id=_ORIGINAL,
        subject_type="palace.promulgation",
        subject_sender="palace",
        reason="promulgated skips approved_by_chamber: the file is at council_of_state_opinion",
    ),
    ("chamber.question_assigned", 1): lambda: QuestionAssigned(
        question_number="1874",
        assigned_to="dir-consular",
        note="Assistance consulaire: la Direction des affaires consulaires prépare la réponse.",
    ),
    ("committee.meeting_convened", 1): lambda: MeetingConvened(
        meeting_reference="CCIIOE-2026-03",
        meeting_on=date(2026, 3, 18),
        place="Hôtel Saint-Maximin",
        agenda_items=("Adoption du procès-verbal", "Locaux de l'Office européen du parquet"),
    ),
    ("committee.minutes_adopted", 1): lambda: MinutesAdopted(
        meeting_reference="CCIIOE-2026-02", adopted_on=date(2026, 3, 18), summary="Adopté."
    ),
    ("committee.decision_recorded", 1): lambda: DecisionRecorded(
        meeting_reference="CCIIOE-2026-03",
        decision_reference="D-2026-07",
        text="Le comité approuve l'aménagement des locaux au Kirchberg.",
    ),
    ("committee.budget_line_opened", 1): lambda: BudgetLineOpened(
        line="6.1.2",
        year=2026,
        label="Aménagement de locaux",
        amount=Decimal("50000.00"),
        currency="EUR",
    ),
    ("committee.expense_committed", 1): lambda: ExpenseCommitted(
        commitment_reference="ENG-2026-014",
        line="6.1.2",
        year=2026,
        amount=Decimal("12500.50"),
        currency="EUR",
        supporting_reference="BC-2026-0147",
        description="Cloisons mobiles",
    ),
    ("committee.expense_paid", 1): lambda: ExpensePaid(
        commitment_reference="ENG-2026-014",
        line="6.1.2",
        year=2026,
        amount=Decimal("12500.50"),
        currency="EUR",
        supporting_reference="FAC-2026-0331",
        paid_on=date(2026, 4, 2),
    ),
    ("committee.overspend_escalated", 1): lambda: OverspendEscalated(
        subject_message_id=_ORIGINAL,
        subject_sender="cciioe",
        subject_type="committee.expense_committed",
        line="6.1.2",
        year=2026,
        currency="EUR",
        amount=Decimal("60000.00"),
        available=Decimal("37499.50"),
        text="L'engagement dépasse le disponible de la ligne 6.1.2 (2026).",
    ),
    ("procedure.refusal", 1): lambda: ProcedureRefusal(
        procedure="release",
        subject_message_id=_ANSWER,
        subject_type="icc.release_approved",
        subject_sender="gs-icc",
        reason="a release cannot be approved by its own author",
    ),
}


def example_keys() -> list[tuple[str, int]]:
    """Every (type, version) that has an example, sorted."""
    return sorted(_BUILDERS)


def example_payload(type_: str, version: int) -> Payload:
    """A fresh valid payload of ``type_`` version ``version``; KeyError when there is none."""
    try:
        builder = _BUILDERS[(type_, version)]
    except KeyError:
        raise KeyError(f"no example for {type_} v{version}") from None
    return builder()


def example_envelope(
    type_: str,
    version: int,
    *,
    sender: str,
    recipients: tuple[str, ...] = (),
    classification: Classification = Classification.INTERNAL,
    precedence: Precedence = Precedence.ROUTINE,
) -> Envelope[Payload]:
    """The example payload of (type, version) in a fresh envelope (new id, created now)."""
    return new_envelope(
        example_payload(type_, version),
        sender=sender,
        recipients=recipients,
        classification=classification,
        precedence=precedence,
    )


__all__ = ["example_envelope", "example_keys", "example_payload"]
