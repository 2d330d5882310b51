"""The values of a routing decision: what came in, what goes out, and why something was refused.

A leaf of the routing core (imports nothing of it), so the decision
(``liaison.core.decide``) and the outcomes it builds (``liaison.core.outcomes``) share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from liaison.core.events import AuditEvent
from schemas.errors import ReasonCode

#: The most UTF-8 bytes an AMQP short string (message id, routing key) carries.
SHORT_STRING_MAX = 255


def amqp_text(value: str | bytes | None) -> str | None:
    """An AMQP short string as text: pika hands one that is not UTF-8 over as bytes.

    Such bytes become text with ``\\xNN`` escapes, cut to what a short string can
    carry, so that whatever the hub writes back from them (a dead letter's message id
    and routing key) is one valid short string: a participant's odd bytes must not
    reach the hub's publisher as a type it cannot write.
    """
    if value is None or isinstance(value, str):
        return value
    text = value.decode("utf-8", "backslashreplace")
    while len(text.encode("utf-8")) > SHORT_STRING_MAX:
        text = text[:-1]
    return text


@dataclass(frozen=True)
class Incoming:
    """One message taken from ``hub.ingress``: its body and the AMQP facts about it."""

    body: bytes
    user_id: str | None
    routing_key: str = ""
    headers: Mapping[str, Any] = field(default_factory=dict)
    property_message_id: str | None = None
    #: The broker's flag: this message was delivered before (to this router or another)
    #: and not acked, so its copies may already be in inboxes. A participant cannot set it.
    redelivered: bool = False
    #: The AMQP ``timestamp`` as published (trusted only from the hub's user: ``arrival``).
    timestamp: int | None = None


@dataclass(frozen=True)
class Outgoing:
    """A publish the shell must have confirmed before it acks the ingress message."""

    exchange: str
    routing_key: str
    body: bytes
    headers: dict[str, Any]
    message_id: str | None
    type: str | None
    correlation_id: str | None = None
    #: The AMQP ``timestamp`` (whole seconds); None: the time of the publish. Deliveries
    #: and dead letters carry their message's arrival at the hub (``outcomes.arrival``).
    timestamp: int | None = None


@dataclass(frozen=True)
class Decision:
    """What to do with one ingress message."""

    message_id: str
    type: str | None
    sender: str | None
    deliveries: tuple[Outgoing, ...]
    dead_letters: tuple[Outgoing, ...]
    events: tuple[AuditEvent, ...]
    #: True when the message was routed (the id enters the duplicate window).
    routed: bool
    #: The refusal's reason when the whole message was refused.
    reason: ReasonCode | None = None
    #: True when the message claimed its id in the router's window: released again if
    #: the message goes back to the broker before it is acked.
    claimed: bool = False


class Refusal(Exception):  # noqa: N818 - control flow inside the routing core only
    def __init__(self, reason: ReasonCode, text: str, path: str | None = None) -> None:
        super().__init__(text)
        # Text and path may quote the input (a duplicate key is its own path): escape
        # what UTF-8 cannot carry, or the header and the audit batch cannot be encoded.
        self.reason, self.text = reason, encodable(text)
        self.path = encodable(path) if path is not None else None


def encodable(text: str) -> str:
    """``text`` with lone surrogates (from JSON ``\\ud800`` escapes) backslash-escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
