"""The procedures as pure folds: (their state, one envelope, now) → changes and messages.

No database, no broker, no clock: the shell reads the slice of state a message
needs (:func:`needs`), calls :func:`fold`, and applies the :class:`Effects` in the
same transaction that records the message as consumed. The sweeper calls
:func:`escalate` for a deadline that fell due.

"now" for an incoming message is its envelope's ``created_at`` as :func:`dated`
bounds it by when the hub first received the message: one dated after that counts
from it, and one dated further back than the allowed skew counts from it less the
skew, so that a participant can neither backdate a letter into an earlier registry
year or an acknowledgement deadline already past, nor date an approval ahead to
publish before an embargo. The arrival is the hub's own record (the copy's
``timestamp``, whole seconds, carried on by an operator's retry or replay; in a
rebuild the message's first ``received`` record), so a rebuild reaches the same
registry dates and deadlines. Outgoing message ids are
derived from what caused them (uuid5), so a redelivery or a rebuild produces the
same ids, and consumers and the ledger drop the repeats.

Two procedures live here:

- **the correspondence registry**: every ``correspondence.*`` gets the next number
  ``<prefix>/<year>/<sequence>`` of its Luxembourg calendar year, and its sender a
  ``receipt.registered`` carrying it; a reply is linked to the letter it answers
  (``in_reply_to``) only when its sender sent or was addressed that letter;
- **acknowledgements chased**: a message an :class:`~liaison.procedures.config.AckRule`
  matches opens a watch over the recipients it was delivered to; each matching
  receipt from one of them removes it; at the deadline one escalation names who
  is still missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from liaison.directory import Directory
from liaison.procedures.calendar import local_date
from liaison.procedures.config import AckRules, ExpectedReport
from schemas import wire
from schemas.correspondence import Letter, OfficialNote
from schemas.envelope import Envelope, new_envelope
from schemas.procedures import ProcedureEscalation, ProcedureRefusal, ProcedureReminder
from schemas.receipts import ReceiptAnswered, ReceiptReceived, ReceiptRegistered
from schemas.types import Classification, Payload

if TYPE_CHECKING:  # the case procedures import this module: no import at run time
    from liaison.procedures.questions import QuestionPolicy
    from liaison.procedures.treaty_file import TreatyPolicy

#: Namespace of the ids the procedures service derives for what it sends.
NAMESPACE = UUID("6f1d2b8e-64a4-4f0e-9a57-3c8d0f1b2a90")
#: The hub-written header a receipt must carry (copied from the delivered copy).
RECEIPT_TOKEN_HEADER = wire.H_RECEIPT_TOKEN
ACK_PROCEDURE = "acknowledgement"
#: The deadline kind of a reminder before an acknowledgement's deadline.
ACK_REMINDER = "acknowledgement-reminder"
_RECEIPTS = (ReceiptReceived, ReceiptRegistered, ReceiptAnswered)


def message_key(sender: str, message_id: UUID | str) -> str:
    """A message's identity: its id is only unique per sender (others may reuse it)."""
    return f"{sender}/{message_id}"


@dataclass(frozen=True)
class Policy:
    """What the folds read besides state: fixed at start-up."""

    code: str
    prefix: str
    directory: Directory
    ack_rules: AckRules
    #: Namespace of the ids derived for what the service sends. In service it comes from
    #: a hub secret (``bootstrap.policy``): with a public namespace a participant could
    #: compute an escalation's id in advance, publish something of its own under it, and
    #: have the router refuse the escalation as ``id_reused``.
    id_namespace: UUID = NAMESPACE
    #: Treaty files and parliamentary questions; None: their bundled defaults.
    treaties: TreatyPolicy | None = None
    questions: QuestionPolicy | None = None
    #: Periodic reports expected (``reports.py``); none unless configured.
    reports: tuple[ExpectedReport, ...] = ()
    #: How far an envelope's ``created_at`` may lie before the hub received it
    #: (:func:`dated`); the router's ``max_clock_skew_s``, the bound it sets ahead.
    max_clock_skew: timedelta = timedelta(minutes=5)


def dated(
    envelope: Envelope[Payload], arrived_at: datetime | None, skew: timedelta
) -> Envelope[Payload]:
    """``envelope`` with its ``created_at`` between ``arrived_at - skew`` and ``arrived_at``.

    ``arrived_at`` is when the hub first received the message (None when unknown: the
    envelope as it is). The sender's own stamp stands within the skew before it; a
    letter dated further back counts from ``arrived_at - skew`` (the hub's receipt, not
    the sender's word), and one dated after it (a sender's clock ahead, within the
    router's skew) counts from ``arrived_at``: nothing takes effect before it arrived,
    an approval cannot publish a release ahead of its embargo.
    """
    if arrived_at is None:
        return envelope
    earliest = arrived_at - skew
    if earliest <= envelope.created_at <= arrived_at:
        return envelope
    bounded = min(max(envelope.created_at, earliest), arrived_at)
    return envelope.model_copy(update={"created_at": bounded})


def arrived_at_of(timestamp: int | None) -> datetime | None:
    """When the hub first received a copy's message, from the copy's AMQP ``timestamp``
    (whole seconds, UTC; see ``liaison.core.outcomes.arrival``)."""
    if timestamp is None:
        return None
    try:
        return datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class RegistryEntry:
    """One line of the correspondence register."""

    number: str
    year: int
    sequence: int
    message_key: str
    message_id: str
    type: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    classification: str
    registered_at: datetime
    registered_on: date
    sender_reference: str
    in_reply_to: str | None
    thread_reference: str | None
    answers_number: str | None


@dataclass(frozen=True)
class Watch:
    """An acknowledgement being chased (its pending recipients live beside it)."""

    key: str
    message_id: str
    type: str
    sender: str
    rule: str
    receipt: str
    opened_at: datetime
    due_at: datetime
    escalate_to: tuple[str, ...]
    pending: frozenset[str] = frozenset()
    expected: tuple[str, ...] = ()


@dataclass(frozen=True)
class Deadline:
    """A moment at which a procedure acts unless it was cancelled first."""

    id: str
    procedure: str
    subject_key: str
    due_at: datetime


@dataclass(frozen=True)
class Acknowledged:
    """``recipient`` acknowledged the watched message with receipt ``receipt_id``."""

    watch_key: str
    recipient: str
    at: datetime
    receipt_id: str


@dataclass(frozen=True)
class Outgoing:
    """A message to send through the hub as the procedures service."""

    envelope: Envelope[Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Effects:
    """What one fold changes; the shell applies all of it in one transaction."""

    register: RegistryEntry | None = None
    counter: tuple[int, int] | None = None  # (year, last sequence)
    watch: Watch | None = None
    deadline: Deadline | None = None
    reminder: Deadline | None = None
    acks: tuple[Acknowledged, ...] = ()
    cancel: tuple[str, ...] = ()  # deadline ids no longer needed
    fired: tuple[tuple[str, datetime, str], ...] = ()  # (deadline id, at, message id)
    messages: tuple[Outgoing, ...] = ()


@dataclass(frozen=True)
class Needs:
    """The slice of state a message's fold reads."""

    year: int | None = None
    answers: str | None = None  # message id of the letter this one answers
    replier: str | None = None  # who answers: it must be a party to that letter
    original: str | None = None  # message id a receipt acknowledges


@dataclass(frozen=True)
class View:
    """That slice, read by the shell (under lock) for the fold."""

    last_sequence: int = 0
    answered_number: str | None = None
    watches: tuple[Watch, ...] = ()


def needs(envelope: Envelope[Payload]) -> Needs:
    """What :func:`fold` needs to know about ``envelope`` beyond the envelope itself."""
    payload = envelope.payload
    if isinstance(payload, Letter | OfficialNote):
        answers = str(payload.in_reply_to) if payload.in_reply_to else None
        year = local_date(envelope.created_at).year
        return Needs(year=year, answers=answers, replier=envelope.sender if answers else None)
    if isinstance(payload, _RECEIPTS):
        return Needs(original=str(payload.original_message_id))
    return Needs()


def answered(replier: str, letters: Iterable[tuple[str, str, tuple[str, ...]]]) -> str | None:
    """The register number a reply from ``replier`` answers, among the ``letters``
    registered under its ``in_reply_to`` (number, sender, recipients; oldest first).

    Only a letter ``replier`` sent or was addressed is answered by it: an id alone
    (anyone can copy one; ids are only unique per sender) links nothing.
    """
    for number, sender, recipients in letters:
        if replier == sender or replier in recipients:
            return number
    return None


def fold(
    policy: Policy,
    view: View,
    envelope: Envelope[Payload],
    *,
    stamp: datetime,
    token: str | None = None,
) -> Effects:
    """The effects of one delivered copy; ``stamp`` dates what the service sends.

    ``token`` is the hub-written receipt token of the copy, carried on a receipt.
    """
    now = envelope.created_at
    payload = envelope.payload
    register: RegistryEntry | None = None
    counter: tuple[int, int] | None = None
    messages: list[Outgoing] = []
    if isinstance(payload, Letter | OfficialNote):
        register, receipt = _register(policy, view, envelope, payload, stamp, token)
        counter = (register.year, register.sequence)
        messages.append(receipt)
    if isinstance(payload, _RECEIPTS):
        return _acknowledge(view, envelope, payload)
    watch, deadline, reminder = _open_watch(policy, envelope, now)
    return Effects(
        register=register,
        counter=counter,
        watch=watch,
        deadline=deadline,
        reminder=reminder,
        messages=tuple(messages),
    )


def _register(
    policy: Policy,
    view: View,
    envelope: Envelope[Payload],
    payload: Letter | OfficialNote,
    stamp: datetime,
    token: str | None,
) -> tuple[RegistryEntry, Outgoing]:
    registered_on = local_date(envelope.created_at)
    sequence = view.last_sequence + 1
    number = f"{policy.prefix}/{registered_on.year}/{sequence}"
    key = message_key(envelope.sender, envelope.message_id)
    entry = RegistryEntry(
        number=number,
        year=registered_on.year,
        sequence=sequence,
        message_key=key,
        message_id=str(envelope.message_id),
        type=envelope.type,
        sender=envelope.sender,
        recipients=envelope.recipients,
        subject=payload.subject,
        classification=envelope.classification.value,
        registered_at=envelope.created_at,
        registered_on=registered_on,
        sender_reference=payload.registry_reference,
        # Linked only when the shell found the letter and the replier a party to it.
        in_reply_to=str(payload.in_reply_to) if view.answered_number else None,
        thread_reference=payload.thread_registry_reference,
        answers_number=view.answered_number,
    )
    receipt = new_envelope(
        ReceiptRegistered(
            original_message_id=envelope.message_id,
            registry_number=number,
            registered_on=registered_on,
        ),
        sender=policy.code,
        recipients=(envelope.sender,),
        correlation_id=envelope.correlation_id or envelope.message_id,
        causation_id=envelope.message_id,
        message_id=uuid5(policy.id_namespace, f"registered:{key}"),
        created_at=stamp,
        # A receipt says no more than the letter's existence: the letter's level at most.
        classification=min(envelope.classification, Classification.INTERNAL, key=_rank),
    )
    headers = {RECEIPT_TOKEN_HEADER: token} if token else {}
    return entry, Outgoing(receipt, headers)


def _rank(level: Classification) -> int:
    return level.rank


def delivered_to(directory: Directory, envelope: Envelope[Payload]) -> tuple[str, ...]:
    """The explicit recipients the hub delivers ``envelope`` to (as the routing core does:
    known, and cleared for its classification)."""
    found: list[str] = []
    for code in envelope.recipients:
        participant = directory.get(code)
        if participant is not None and participant.clearance.rank >= envelope.classification.rank:
            found.append(code)
    return tuple(found)


def _open_watch(
    policy: Policy, envelope: Envelope[Payload], now: datetime
) -> tuple[Watch | None, Deadline | None, Deadline | None]:
    rule = policy.ack_rules.first(envelope.type, envelope.precedence, envelope.recipients)
    if rule is None:
        return None, None, None
    expected = tuple(
        code
        for code in delivered_to(policy.directory, envelope)
        if code not in {policy.code, envelope.sender}
        and (rule.recipients is None or code in rule.recipients)
    )
    if not expected:
        return None, None, None
    key = message_key(envelope.sender, envelope.message_id)
    due = rule.duration.after(now)
    watch = Watch(
        key=key,
        message_id=str(envelope.message_id),
        type=envelope.type,
        sender=envelope.sender,
        rule=rule.name,
        receipt=rule.receipt,
        opened_at=now,
        due_at=due,
        escalate_to=rule.escalate_to,
        pending=frozenset(expected),
        expected=expected,
    )
    reminder = None
    if rule.reminder is not None and rule.reminder.after(now) < due:
        reminder = Deadline(f"remind:{key}", ACK_REMINDER, key, rule.reminder.after(now))
    return watch, Deadline(f"ack:{key}", ACK_PROCEDURE, key, due), reminder


def _acknowledge(
    view: View,
    envelope: Envelope[Payload],
    payload: ReceiptReceived | ReceiptRegistered | ReceiptAnswered,
) -> Effects:
    acks: list[Acknowledged] = []
    cancel: list[str] = []
    for watch in view.watches:
        # The receipt must be the awaited kind, from a recipient still awaited, and
        # addressed to the watched message's sender (ids are only unique per sender).
        if (
            watch.receipt != envelope.type
            or envelope.sender not in watch.pending
            or watch.sender not in envelope.recipients
            or watch.message_id != str(payload.original_message_id)
        ):
            continue
        acks.append(
            Acknowledged(watch.key, envelope.sender, envelope.created_at, str(envelope.message_id))
        )
        if watch.pending == {envelope.sender}:
            cancel += [f"ack:{watch.key}", f"remind:{watch.key}"]
    return Effects(acks=tuple(acks), cancel=tuple(cancel))


def escalate(policy: Policy, watch: Watch, deadline: Deadline, *, stamp: datetime) -> Effects:
    """The deadline of ``watch`` fell due: one escalation naming who is still missing."""
    missing = tuple(code for code in watch.expected if code in watch.pending)
    if not missing:
        return Effects(cancel=(deadline.id,))
    recipients = tuple(dict.fromkeys((watch.sender, *watch.escalate_to)))
    recipients = tuple(
        code for code in recipients if code != policy.code and code in policy.directory
    )
    message_id = uuid5(policy.id_namespace, f"escalation:{deadline.id}")
    envelope = new_envelope(
        ProcedureEscalation(
            procedure=ACK_PROCEDURE,
            subject_message_id=UUID(watch.message_id),
            subject_type=watch.type,
            subject_sender=watch.sender,
            due_at=watch.due_at,
            waiting_on=missing,
            awaited=watch.receipt,
            text=(
                f"{watch.receipt} not received by {watch.due_at.isoformat()} from "
                f"{', '.join(missing)} (rule {watch.rule})"
            ),
        ),
        sender=policy.code,
        recipients=recipients,
        correlation_id=UUID(watch.message_id),
        causation_id=UUID(watch.message_id),
        message_id=message_id,
        created_at=stamp,
    )
    return Effects(fired=((deadline.id, stamp, str(message_id)),), messages=(Outgoing(envelope),))


def remind(policy: Policy, watch: Watch, deadline: Deadline, *, stamp: datetime) -> Effects:
    """The reminder of ``watch`` fell due: one reminder to those still awaited."""
    missing = tuple(code for code in watch.expected if code in watch.pending)
    if not missing:
        return Effects(cancel=(deadline.id,))
    message_id = uuid5(policy.id_namespace, f"reminder:{deadline.id}")
    envelope = new_envelope(
        ProcedureReminder(
            procedure=ACK_PROCEDURE,
            subject_message_id=UUID(watch.message_id),
            subject_type=watch.type,
            subject_sender=watch.sender,
            due_at=watch.due_at,
            waiting_on=missing,
            awaited=watch.receipt,
            text=f"{watch.receipt} for {watch.type} from {watch.sender} is due by "
            f"{watch.due_at.isoformat()}",
        ),
        sender=policy.code,
        recipients=missing,
        correlation_id=UUID(watch.message_id),
        causation_id=UUID(watch.message_id),
        message_id=message_id,
        created_at=stamp,
    )
    return Effects(fired=((deadline.id, stamp, str(message_id)),), messages=(Outgoing(envelope),))


def act(policy: Policy, watch: Watch, deadline: Deadline, *, stamp: datetime) -> Effects:
    """What a due deadline of ``watch`` does: remind, or escalate."""
    if deadline.procedure == ACK_REMINDER:
        return remind(policy, watch, deadline, stamp=stamp)
    return escalate(policy, watch, deadline, stamp=stamp)


def refusal_notice(
    policy: Policy,
    envelope: Envelope[Payload],
    procedure: str,
    reason: str,
    stamp: datetime,
    *,
    seed: str | None = None,
) -> Outgoing:
    """A ``procedure.refusal`` telling ``envelope``'s sender why its procedure refused it.

    Its id is derived from the refused message (and ``seed``, when one key can be
    refused for several contents), so a redelivery or a rebuild gives the same notice.
    """
    name = f"refused:{message_key(envelope.sender, envelope.message_id)}"
    refusal: Envelope[Any] = new_envelope(
        ProcedureRefusal(
            procedure=procedure,
            subject_message_id=envelope.message_id,
            subject_type=envelope.type,
            subject_sender=envelope.sender,
            reason=reason,
        ),
        sender=policy.code,
        recipients=(envelope.sender,),
        correlation_id=envelope.correlation_id or envelope.message_id,
        causation_id=envelope.message_id,
        message_id=uuid5(policy.id_namespace, name if seed is None else f"{name}:{seed}"),
        created_at=stamp,
        classification=Classification.INTERNAL,
    )
    return Outgoing(refusal)


__all__ = [
    "ACK_PROCEDURE",
    "ACK_REMINDER",
    "NAMESPACE",
    "RECEIPT_TOKEN_HEADER",
    "Acknowledged",
    "Deadline",
    "Effects",
    "Needs",
    "Outgoing",
    "Policy",
    "RegistryEntry",
    "View",
    "Watch",
    "act",
    "answered",
    "delivered_to",
    "escalate",
    "fold",
    "message_key",
    "needs",
    "refusal_notice",
    "remind",
]
