"""The hub's delivery tokens of the messages a participant received, kept for its receipts.

Every copy the hub delivers carries ``x-liaison-receipt-token``; a receipt for
that message must carry the same value back (the hub refuses a receipt from
anyone the message was not delivered to). The consumer records each token as it
handles a delivery, and the publisher looks it up when it sends a receipt, so
participants using the SDK never handle tokens themselves. A receipt sent long
after (a registration days later, from another process) needs the token kept
with the message: ``Consumer.receipt_token(envelope)`` gives it, and
``send_receipt(..., receipt_token=...)`` takes it.
"""

from __future__ import annotations

from collections import OrderedDict
from uuid import UUID


class DeliveryTokens:
    """The tokens of the last ``size`` messages received, by sender and message id.

    By sender too: a message id is the sender's to choose, so another participant
    reusing a letter's id (which the router refuses only within its duplicate window)
    must not replace the token of the letter the receipt is for.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._tokens: OrderedDict[tuple[str, UUID], str] = OrderedDict()

    def record(self, sender: str, message_id: UUID, token: object) -> None:
        """Remember the token a delivery of ``sender``'s ``message_id`` carried (ignored if
        it is not text)."""
        if isinstance(token, bytes):
            token = token.decode("ascii", "replace")
        if not isinstance(token, str) or not token:
            return
        key = (sender, message_id)
        self._tokens[key] = token
        self._tokens.move_to_end(key)
        while len(self._tokens) > self._size:
            self._tokens.popitem(last=False)

    def get(self, sender: str, message_id: UUID) -> str | None:
        """The token recorded for ``sender``'s ``message_id``, if any."""
        return self._tokens.get((sender, message_id))


__all__ = ["DeliveryTokens"]
