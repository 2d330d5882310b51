"""Request and reply over the hub: send a message, wait for the answer on one's own inbox.

An answer is a message whose ``correlation_id`` or ``causation_id`` is the
request's message id: what :meth:`Publisher.reply` and
:meth:`Publisher.send_receipt` produce on the other side.

Where the other messages met while waiting go:

- with ``consumer=`` (a :class:`~consumers.Consumer` with the system's handlers),
  they are handled as usual; if the consumer is running in another thread, it
  delivers the answer to the waiting caller, otherwise the caller drives it;
- without, a temporary consumer borrows the inbox and holds every other message
  unacked until the answer arrives, then returns them to the queue.
  On a quorum queue each return counts towards the delivery limit (5 by
  default), and the held messages use up the prefetch window (``prefetch``):
  fine for a command-line tool, while a system that also consumes its inbox
  should pass its consumer.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from consumers.consumer import Consumer
from consumers.errors import ReplyTimeout
from producers.publisher import Publisher
from schemas.envelope import Envelope
from schemas.types import Classification, Payload, Precedence


def request(
    publisher: Publisher,
    payload: Payload,
    *,
    recipients: Sequence[str],
    timeout: float,
    reply_types: Collection[str] | None = None,
    consumer: Consumer | None = None,
    classification: Classification = Classification.INTERNAL,
    precedence: Precedence = Precedence.ROUTINE,
    expires_at: datetime | None = None,
    prefetch: int = 100,
) -> Envelope[Any]:
    """Publish ``payload`` and return the first answer (of ``reply_types``, if given).

    Raises :class:`~consumers.errors.ReplyTimeout` when none arrives within
    ``timeout`` seconds, and PublishError when the request cannot be published.
    """
    envelope = publisher.build(
        payload,
        recipients=recipients,
        classification=classification,
        precedence=precedence,
        expires_at=expires_at,
    )
    inbox = consumer or Consumer(
        publisher.settings, publisher=publisher, hold_unhandled=True, prefetch=prefetch
    )
    try:
        with inbox.expect(envelope.message_id, reply_types) as waiter:
            publisher.publish_envelope(envelope)
            answer = inbox.wait_for(waiter, timeout)
    finally:
        if consumer is None:
            inbox.close()
    if answer is None:
        wanted = f" of type {', '.join(sorted(reply_types))}" if reply_types else ""
        raise ReplyTimeout(
            f"no answer{wanted} to {envelope.type} {envelope.message_id} from "
            f"{', '.join(recipients) or 'its recipients'} within {timeout:g} s",
            request_id=str(envelope.message_id),
            timeout=timeout,
        )
    return answer


__all__ = ["request"]
