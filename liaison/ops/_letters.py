"""Dead letters as values: what an operator needs to see, select, retry or purge.

Pure: a :class:`DeadLetter` is built from the AMQP properties and body the router
published to ``liaison.dead`` (reason headers, original user, original bytes);
nothing here talks to the broker.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from liaison.core.events import body_id
from schemas import wire

#: Bodies larger than this are not parsed for display (the hub caps messages anyway).
_PARSE_LIMIT = 1024 * 1024
#: Longest value kept for a type, sender, reason or recipient (the audit event's limit).
_SHORT = 64
#: Longest message id kept as is (the audit event's limit); longer ones use the body digest.
_ID_LIMIT = 80


@dataclass(frozen=True)
class DeadLetter:
    """One message in ``hub.dead``, with why it is there."""

    #: The envelope's id, or ``sha256:<hex>`` of the body when it carries none.
    message_id: str
    type: str | None
    #: The participant who sent it, when the hub can vouch for it (``identity_problem``
    #: finds none), else the publisher RabbitMQ validated, else ``None``: never merely
    #: what the body claims.
    sender: str | None
    reason: str | None
    reason_text: str | None
    reason_path: str | None
    #: The recipient whose copy was refused, when only one copy was.
    recipient: str | None
    #: The publisher the router recorded (``x-liaison-original-user``), else ``user_id``.
    original_user: str | None
    #: The sender the body claims, when it can be read.
    claimed_sender: str | None
    #: The dead letter's own ``user_id`` property: RabbitMQ validated it when these
    #: bytes were published (the router sets none on what it delivers).
    user_id: str | None
    #: The queues named in ``x-death``: empty when the router published the dead letter
    #: itself, else the queues the broker dead-lettered it from.
    death_queues: tuple[str, ...]
    #: ``x-liaison-original-exchange``: where the router took the message from.
    original_exchange: str | None
    #: ``x-liaison-parked-by`` on a letter the hub published: the participant whose
    #: consumer gave up on its copy (the retry relay wrote it, from the validated user).
    parked_by: str | None
    #: The routing key to use when re-publishing to ``liaison.ingress``.
    routing_key: str
    timestamp: int | None
    headers: Mapping[str, Any]
    body: bytes

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of the body."""
        return body_id(self.body)

    @property
    def key(self) -> tuple[str, str]:
        """Copies of one message refused for several recipients share this key."""
        return (self.message_id, self.digest)

    def envelope(self) -> dict[str, Any] | None:
        """The body as JSON data when it is a JSON object, else ``None``."""
        return _json_object(self.body)

    def summary(self) -> dict[str, Any]:
        """The fields of ``dlq list`` and ``/api/dead-letters``, as JSON data."""
        return {
            "message_id": self.message_id,
            "type": self.type,
            "sender": self.sender,
            "claimed_sender": self.claimed_sender,
            "parked_by": self.parked_by,
            "reason": self.reason,
            "reason_text": self.reason_text,
            "reason_path": self.reason_path,
            "recipient": self.recipient,
            "original_user": self.original_user,
            "timestamp": self.timestamp,
            "size": len(self.body),
        }


def first_arrival(copies: Iterable[DeadLetter], hub_user: str) -> int | None:
    """When the hub first received the message of ``copies``, for a retry to carry on.

    Only the hub's own dead letters say it (the router stamps each with the message's
    first arrival; a copy the broker moved out of an inbox keeps the router's stamp):
    a letter the broker moved out of ``hub.ingress`` carries its publisher's own
    ``timestamp``, which would let a participant date its letter back through an
    operator's retry.
    """
    stamps = [
        c.timestamp
        for c in copies
        if c.user_id == hub_user and type(c.timestamp) is int and c.timestamp > 0
    ]
    return min(stamps) if stamps else None


def dead_letter(
    *,
    message_id: str | None,
    type_: str | None,
    timestamp: int | None,
    headers: Mapping[str, Any] | None,
    body: bytes,
    hub_user: str,
    user_prefix: str = "",
    user_id: str | None = None,
) -> DeadLetter:
    """A dead letter from the AMQP properties the hub set and the original body.

    ``user_id`` is the property of the dead letter itself: it still names the
    original publisher when the broker, not the hub, dead-lettered the message
    (``hub.ingress`` past its delivery limit); its ``x-liaison`` headers, if any,
    are then that publisher's, and none of them is read as the hub's record.
    """
    plain = jsonable(dict(headers or {}))
    salvaged = salvage(body)
    from_hub = user_id is not None and user_id == hub_user
    # The property names the original publisher only on letters the broker moved; on
    # the hub's own dead letters it is the hub's user, and then (only then) the
    # x-liaison headers are the hub's record, not a participant's claim.
    publisher = _short(user_id) if not from_hub else None
    # On anything else the x-liaison headers are the publisher's own (a participant's
    # publish the broker moved here): shown under `dlq show`, trusted for nothing.
    hub = plain if from_hub else {}
    deaths = _death_queues(plain.get("x-death"))
    original_user = _short(hub.get(wire.H_ORIGINAL_USER)) or publisher
    type_name = _short(type_) or salvaged.get("type")
    original_key = _short(hub.get(wire.H_ORIGINAL_ROUTING_KEY))
    from_ingress = hub.get(wire.H_ORIGINAL_EXCHANGE) == wire.INGRESS_EXCHANGE
    routing_key = type_name or (original_key if from_ingress else None) or "unknown"
    usable_id = message_id if message_id and len(message_id) <= _ID_LIMIT else None
    reason = _short(hub.get(wire.H_REASON))
    reason_text = _text(hub.get(wire.H_REASON_TEXT))
    if not from_hub and deaths:
        # The broker puts its own entry first in x-death (a participant may have
        # written others after it).
        reason = _short(_first_death_reason(plain.get("x-death")))
        reason_text = f"moved here by RabbitMQ from {deaths[0]} ({reason or '?'})"
    letter = DeadLetter(
        message_id=usable_id or salvaged.get("message_id") or body_id(body),
        type=type_name,
        sender=None,
        reason=reason,
        reason_text=reason_text,
        reason_path=_text(hub.get(wire.H_REASON_PATH)),
        recipient=_short(hub.get(wire.H_RECIPIENT)),
        original_user=original_user,
        claimed_sender=salvaged.get("sender"),
        user_id=_short(user_id),
        death_queues=deaths,
        original_exchange=_short(hub.get(wire.H_ORIGINAL_EXCHANGE)),
        parked_by=_short(hub.get(wire.H_PARKED_BY)),
        routing_key=routing_key,
        timestamp=timestamp,
        headers=plain,
        body=body,
    )
    problem = identity_problem(letter, hub_user=hub_user, user_prefix=user_prefix)
    if problem is None and letter.claimed_sender is not None:
        return replace(letter, sender=letter.claimed_sender)
    if original_user and original_user != hub_user:
        # Who RabbitMQ says published it: shown instead of what the body claims.
        prefixed = original_user.startswith(user_prefix)
        shown = original_user[len(user_prefix) :] if prefixed else original_user
        return replace(letter, sender=shown)
    return letter


def identity_problem(letter: DeadLetter, *, hub_user: str, user_prefix: str = "") -> str | None:
    """Why the hub cannot vouch for who sent ``letter``; ``None`` when it can.

    The router trusts the hub's user as a relay and skips its identity check on a
    retry, so a retry must only relay bytes whose sender is proven, or a spoof
    would be laundered. Identity comes only from the ``user_id`` property (RabbitMQ
    validated it) and from headers the hub wrote, which are those of a letter
    whose ``user_id`` is the hub's; never from ``x-death``, which a participant can
    write on anything it publishes:

    - published by the hub and parked by a consumer (``x-liaison-parked-by``): the
      body is the parker's word, so it is not relayed (re-send from the consumer);
    - published by the hub's retry relay as refused (from ``liaison.retry``): no
      participant identity at all; or as a participant's own retry
      (``x-liaison-own-retry``) that its inbox later dead-lettered: its word;
    - published by the hub and dead-lettered by the broker from a hub queue
      (``x-death``, an inbox past its delivery limit): the router delivered it, so
      it passed the identity check;
    - published by the router as a dead letter: its headers are its record: a copy
      refused after routing (from ``liaison.deliver``) passed the identity check; one
      refused at ingress names the RabbitMQ user that published it;
    - published by anyone else (the broker moved a participant's own publish, e.g.
      ``hub.ingress`` past its delivery limit): the validated ``user_id`` must be the
      claimed sender's; without one nothing is proven.
    """
    claimed = letter.claimed_sender
    if claimed is None:
        return None  # bytes the router cannot read: it refuses them again on its own
    if letter.user_id is None:
        return (
            f"no validated publisher (no user_id property): the hub cannot prove that "
            f"{claimed!r} sent it"
        )
    if letter.user_id != hub_user:
        return _matches(letter.user_id, (user_prefix + claimed,), claimed)
    return _hub_letter_problem(letter, claimed, hub_user, user_prefix)


def _hub_letter_problem(
    letter: DeadLetter, claimed: str, hub_user: str, user_prefix: str
) -> str | None:
    """``identity_problem`` for a letter the hub published (its headers are the hub's)."""
    own_retry = _short(letter.headers.get(wire.H_OWN_RETRY))
    problem: str | None = None
    if letter.parked_by is not None:
        problem = (
            f"parked by {letter.parked_by}'s consumer: the body is {letter.parked_by}'s word, "
            f"and the hub cannot prove that {claimed!r} sent it; re-send it from that side"
        )
    elif own_retry is not None:
        # The relay returned a participant's own retry to its inbox, which then gave
        # up on it past the delivery limit: the bytes are that participant's word.
        problem = (
            f"a retry {own_retry} parked for itself: the body is {own_retry}'s word, and the "
            f"hub cannot prove that {claimed!r} sent it"
        )
    elif letter.original_exchange == wire.RETRY_EXCHANGE:
        problem = (
            "refused by the retry relay (no participant's user published it): the hub "
            f"cannot prove that {claimed!r} sent it"
        )
    elif letter.death_queues or letter.original_exchange == wire.DELIVER_EXCHANGE:
        # The router delivered it (an inbox dead-lettered it past its delivery limit),
        # or refused one copy after routing: either way it passed the identity check.
        problem = None
    else:
        problem = _matches(letter.original_user, (hub_user, user_prefix + claimed), claimed)
    return problem


def _matches(user: str | None, vouched: tuple[str, ...], claimed: str) -> str | None:
    if user is None:
        return f"no validated publisher is recorded; the body claims sender {claimed!r}"
    if user not in vouched:
        return f"published by RabbitMQ user {user!r} but the body claims sender {claimed!r}"
    return None


def _first_death_reason(deaths: Any) -> Any:
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], Mapping):
        return deaths[0].get("reason")
    return None


def _death_queues(deaths: Any) -> tuple[str, ...]:
    if not isinstance(deaths, list):
        return ()
    return tuple(str(d.get("queue")) for d in deaths if isinstance(d, Mapping))


def _short(value: Any) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= _SHORT:
        return value
    return None


def _text(value: Any) -> str | None:
    return value[:2000] if isinstance(value, str) and value else None


def _json_object(body: bytes) -> dict[str, Any] | None:
    if len(body) > _PARSE_LIMIT:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def salvage(body: bytes) -> dict[str, str]:
    """Type, sender and message id from a body that may not be a valid envelope."""
    data = _json_object(body) or {}
    found = {}
    for key in ("type", "sender", "message_id"):
        value = data.get(key)
        if isinstance(value, str) and 0 < len(value) <= _SHORT:
            found[key] = value
    return found


def jsonable(value: Any) -> Any:
    """AMQP header values (bytes, Decimal, datetime, nested tables) as JSON data."""
    if isinstance(value, Mapping):
        result: Any = {str(k): jsonable(v) for k, v in value.items()}
    elif isinstance(value, list | tuple):
        result = [jsonable(v) for v in value]
    elif isinstance(value, bytes):
        try:
            result = value.decode("utf-8")
        except UnicodeDecodeError:
            result = "hex:" + value.hex()
    elif isinstance(value, Decimal):
        result = float(value)
    elif isinstance(value, datetime):
        result = value.isoformat()
    elif value is None or isinstance(value, str | int | float | bool):
        result = value
    else:
        result = str(value)
    return result


def pretty_body(body: bytes) -> str:
    """The body for a human: indented JSON when it parses, text when it decodes, else hex."""
    data = _json_object(body)
    if data is not None:
        return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return f"({len(body)} bytes, not UTF-8) {body[:512].hex()}"


def selector(
    *,
    message_ids: Iterable[str] = (),
    every: bool = False,
    reason: str | None = None,
    keys: Iterable[tuple[str, str]] = (),
) -> Selection:
    """What to take from ``hub.dead``: ids, everything, one reason, or exact copies."""
    return Selection(frozenset(message_ids), every, reason, frozenset(keys))


@dataclass(frozen=True)
class Selection:
    """A predicate on dead letters that remembers which requested ids it matched."""

    message_ids: frozenset[str]
    every: bool = False
    reason: str | None = None
    keys: frozenset[tuple[str, str]] = frozenset()

    def __call__(self, letter: DeadLetter) -> bool:
        return (
            self.every
            or letter.message_id in self.message_ids
            or (self.reason is not None and letter.reason == self.reason)
            or letter.key in self.keys
        )

    def missing(self, taken: Iterable[DeadLetter]) -> list[str]:
        """The requested message ids that matched no dead letter."""
        found = {letter.message_id for letter in taken}
        return sorted(self.message_ids - found)


def group_copies(letters: Iterable[DeadLetter]) -> list[list[DeadLetter]]:
    """Dead letters grouped by message (id and body), first-seen order kept."""
    groups: dict[tuple[str, str], list[DeadLetter]] = {}
    for letter in letters:
        groups.setdefault(letter.key, []).append(letter)
    return list(groups.values())


_COLUMNS = ("MESSAGE ID", "TYPE", "SENDER", "REASON", "RECIPIENT", "TEXT")


def render_letters(letters: Sequence[DeadLetter], *, total: int | None = None) -> str:
    """``dlq list`` as a table, with how many there are in all."""
    if not letters:
        return "No dead letters."
    rows = [_COLUMNS]
    for letter in letters:
        text = (letter.reason_text or "").replace("\n", " ")
        rows.append(
            (
                letter.message_id,
                letter.type or "-",
                letter.sender or "-",
                letter.reason or "-",
                letter.recipient or "-",
                text if len(text) <= 60 else text[:59] + "…",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    lines = [
        "  ".join([*(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])), row[-1]]).rstrip()
        for row in rows
    ]
    shown = len(letters)
    if total is not None and total > shown:
        lines.append(f"({shown} of {total} shown; use --limit)")
    else:
        lines.append(f"({shown} dead letter{'s' if shown != 1 else ''})")
    return "\n".join(lines)


def render_letter(letter: DeadLetter) -> str:
    """``dlq show``: the facts, every header, then the body."""
    when = (
        datetime.fromtimestamp(letter.timestamp, UTC).isoformat()
        if letter.timestamp is not None
        else "-"
    )
    lines = [
        f"message id:  {letter.message_id}",
        f"type:        {letter.type or '-'}",
        f"sender:      {letter.sender or '-'}",
        f"reason:      {letter.reason or '-'}",
        f"text:        {letter.reason_text or '-'}",
        f"field:       {letter.reason_path or '-'}",
        f"recipient:   {letter.recipient or '-'}",
        f"dead since:  {when}",
        f"body:        {len(letter.body)} bytes, {letter.digest}",
        "headers:",
        *(f"  {name}: {value}" for name, value in sorted(letter.headers.items())),
        "",
        pretty_body(letter.body),
    ]
    return "\n".join(lines)
