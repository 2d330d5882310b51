"""The wire contract: exchange and queue names, AMQP properties and headers.

Systems that do not use the SDK need exactly these names; the README's wire
contract section is written from this module.
"""

from __future__ import annotations

from typing import Final

#: Participants publish here (topic); the routing key is the message type.
INGRESS_EXCHANGE: Final = "liaison.ingress"
INGRESS_QUEUE: Final = "hub.ingress"
#: The router publishes deliveries here (direct); the routing key is the recipient's code
#: for the routine band and ``<code>.urgent`` for the urgent band (see ``delivery_key``).
DELIVER_EXCHANGE: Final = "liaison.deliver"
#: Refused messages, with their reason in headers (fanout).
DEAD_EXCHANGE: Final = "liaison.dead"
DEAD_QUEUE: Final = "hub.dead"
#: Audit events (fanout) into a single-active-consumer quorum queue.
AUDIT_EXCHANGE: Final = "liaison.audit"
AUDIT_QUEUE: Final = "hub.audit"
#: Consumers park a message here for a delayed retry (topic: the routing key must be the
#: participant's own code; the x-liaison-delay header picks the delay queue).
RETRY_EXCHANGE: Final = "liaison.retry"
#: The x-liaison-delay value that parks a message in dead letters instead of delaying it.
PARK_DELAY: Final = "dead"
#: Delay name → milliseconds; one TTL queue each, dead-lettering to RETRY_DUE_EXCHANGE.
RETRY_DELAYS_MS: Final = {"5s": 5_000, "30s": 30_000, "5m": 300_000}
#: Where due retries and parked messages wait for the hub's retry relay (internal fanout
#: into a quorum queue): nothing a participant parks reaches an inbox or the dead letters
#: except re-published by the hub, so routing keys and CC/BCC headers mean nothing here.
RETRY_DUE_EXCHANGE: Final = "liaison.retry.due"
RETRY_DUE_QUEUE: Final = "hub.retry.due"

CONTENT_TYPE: Final = "application/vnd.liaison.envelope+json"

# Headers (all values are strings unless noted).
H_REASON: Final = "x-liaison-reason"  # a ReasonCode value
H_REASON_TEXT: Final = "x-liaison-reason-text"  # human-readable explanation
H_REASON_PATH: Final = "x-liaison-reason-path"  # dotted field path, when known
H_ORIGINAL_EXCHANGE: Final = "x-liaison-original-exchange"
H_ORIGINAL_ROUTING_KEY: Final = "x-liaison-original-routing-key"
H_ORIGINAL_USER: Final = "x-liaison-original-user"
H_ERROR_TYPE: Final = "x-liaison-error-type"  # exception class name, from a consumer
H_DELAY: Final = "x-liaison-delay"  # a RETRY_DELAYS_MS key
H_ATTEMPT: Final = "x-liaison-attempt"  # int: how many times a handler has failed
H_RETRY_OF: Final = "x-liaison-retry-of"  # message id an operator retried
H_REPLAY_OF: Final = "x-liaison-replay-of"  # message id an auditor replayed
H_ACTOR: Final = "x-liaison-actor"  # operator or auditor who asked
H_REPLAY_TO: Final = "x-liaison-replay-to"  # one named recipient for a replay
H_RETRY_TO: Final = "x-liaison-retry-to"  # comma-separated recipients a retry is for
H_OPERATION: Final = "x-liaison-operation"  # id of one retry or replay operation
H_RECIPIENT: Final = "x-liaison-recipient"  # the recipient a dead-lettered copy was for
#: On every copy the router delivers: proof that this recipient received that message.
#: A receipt for it must carry the same value in the same header (see the README).
H_RECEIPT_TOKEN: Final = "x-liaison-receipt-token"  # noqa: S105 - a header name, not a secret
H_OWN_RETRY: Final = "x-liaison-own-retry"  # on a relayed retry: the code whose retry it is
H_PARKED_BY: Final = "x-liaison-parked-by"  # on a relayed park: the code that gave up on it
#: On a delivered copy: the precedence a routing rule raised the message to (e.g. FLASH for a
#: high-severity incident); absent when the envelope's own precedence stands.
H_PRECEDENCE: Final = "x-liaison-precedence"


#: Precedence bands. RabbitMQ quorum queues have no message priorities, so each
#: participant has two inboxes: ``inbox.<code>`` (ROUTINE, PRIORITY) and
#: ``inbox.<code>.urgent`` (FLASH, IMMEDIATE), and consumes the urgent one first. The
#: band of a copy follows its *effective* precedence: the ``x-liaison-precedence`` header
#: when a routing rule raised it, else the envelope's own. Every precedence is in exactly
#: one of these two sets; a value in neither (none exists today) goes to the routine band.
URGENT_PRECEDENCES: Final = frozenset({"FLASH", "IMMEDIATE"})
ROUTINE_PRECEDENCES: Final = frozenset({"PRIORITY", "ROUTINE"})
#: Suffix of the urgent band's queue name and routing key.
URGENT_SUFFIX: Final = ".urgent"


def inbox_queue(code: str) -> str:
    """The inbox queue of the participant ``code`` (the routine band: ROUTINE, PRIORITY)."""
    return f"inbox.{code}"


def urgent_inbox_queue(code: str) -> str:
    """The urgent inbox of the participant ``code`` (FLASH, IMMEDIATE): consume it first."""
    return f"inbox.{code}{URGENT_SUFFIX}"


def inbox_queues(code: str) -> tuple[str, str]:
    """Both inboxes of the participant ``code``: urgent first, then routine."""
    return urgent_inbox_queue(code), inbox_queue(code)


def is_urgent(precedence: str | None) -> bool:
    """Whether a copy at ``precedence`` (a Precedence value) travels in the urgent band."""
    return precedence in URGENT_PRECEDENCES


def delivery_key(code: str, precedence: str | None) -> str:
    """The ``liaison.deliver`` routing key of a copy for ``code`` at ``precedence``.

    ``<code>`` reaches ``inbox.<code>``, ``<code>.urgent`` reaches ``inbox.<code>.urgent``.
    Participant codes have no dot, so no code's key is another's urgent key.
    """
    return f"{code}{URGENT_SUFFIX}" if is_urgent(precedence) else code


def delivery_recipient(routing_key: str) -> str:
    """The participant code a ``liaison.deliver`` routing key is for (either band)."""
    return routing_key.removesuffix(URGENT_SUFFIX)


def retry_queue(delay: str) -> str:
    """The TTL queue holding messages for ``delay`` before redelivery."""
    return f"hub.retry.{delay}"
