"""The dedupe-key scheme: which audit events are the same fact, recorded once.

Every audit event carries a ``dedupe_key``, ``<event>:<message id>[:<discriminator>]``;
the audit writer records an event once per key, so the same event published
twice (a redelivery after a crash) is one record, and two different facts must
never share a key. The discriminators, one function each:

- ``owner``: ``<sender>:<content tag>``, who sent which bytes. Part of every key
  about a message that parsed, so that a message reusing another's id gets
  records of its own; also what the router's id window remembers for an id;
- ``routed``: the owner, and the relay operation (a retry is a new fact);
- ``per_recipient``: one refused copy of a routed message;
- ``receipt``: a receipt's event in the original message's history;
- ``refused``: the owner and the reason (refused again for another reason is a new
  fact), nothing for bytes that never parsed;
- ``unroutable``: the owner, the relay operation and the recipient with no inbox;
- ``operator``: an operator's action on dead letters, per operation;
- ``parked`` and ``relay_refused``: the retry relay's facts, keyed by the body.

The audit query reads the owner back out of a key (its second to fourth parts).
"""

from __future__ import annotations

import hashlib


def event_key(kind: str, message_id: str, discriminator: str = "") -> str:
    """``kind:message_id[:discriminator]``."""
    # Concatenation, not ``kind.value``: a StrEnum member is its value as a str, and
    # the enum's ``value`` descriptor costs more than the rest of the key (hot path).
    return kind + ":" + message_id + (":" + discriminator if discriminator else "")


def body_tag(body: bytes) -> str:
    """A digest of the body (128 bits of SHA-256, in hex), telling apart messages that share an id.

    128 bits, not fewer: a sender able to find two bodies with the same tag
    (a birthday search, 2^32 tries for 64 bits) could make the second one's
    records collide with the first's and vanish from the ledger.
    """
    return hashlib.sha256(body).hexdigest()[:32]


def owner(sender: str, body: bytes) -> str:
    """``<sender>:<content tag>``: who sent which bytes."""
    return f"{sender}:{body_tag(body)}"


def message_of(key: str) -> str:
    """``<message id>:<sender>:<content tag>`` of a key about a message that parsed.

    The inverse the audit query needs: which message (id and bytes) an event is
    about, whatever its kind and discriminator's tail.
    """
    return ":".join(key.split(":")[1:4])


def routed(owner: str, operation: str) -> str:
    """The events of a routed message: its owner, and the relay operation if relayed."""
    return f"{owner}:{operation}" if operation else owner


def per_recipient(key: str, code: str) -> str:
    """One copy of a routed message (``key`` from ``routed``), refused for ``code``."""
    return f"{key}:{code}"


def receipt(receipt_id: str, key: str) -> str:
    """The ``receipt`` event in the original's history: the receipt's id, and its own key."""
    return f"{receipt_id}:{key}"


def refused(owner: str | None, reason: str) -> str:
    """A refused message: the owner and the reason; ``""`` for bytes that never parsed."""
    return f"{owner}:{reason}" if owner is not None else ""


def unroutable(owner: str, operation: str, recipient: str) -> str:
    """A copy the broker returned (no inbox): per owner, relay operation and recipient.

    A retry that fails again is a new fact, not a repeat.
    """
    return ":".join(part for part in (owner, operation, recipient) if part)


def operator(action: str, operation: str) -> str:
    """An operator's action on a dead letter (``retry``, ``purge``), per operation."""
    return f"{action}:{operation}"


def _short(body: bytes) -> str:
    """64 bits of the body's SHA-256, in hex."""
    return hashlib.sha256(body).hexdigest()[:16]


def parked(code: str, attempt: int, body: bytes) -> str:
    """A participant's give-up: one record per park, the same park redelivered is one fact."""
    return f"{code}:{attempt}:{_short(body)}"


def relay_refused(body: bytes) -> str:
    """The retry relay's refusal, apart from the router's ``rejected`` of the same id."""
    return f"retry-relay:{_short(body)}"
