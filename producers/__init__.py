"""Edge SDK for systems that publish to the hub (kombu).

It imports ``schemas`` and never the hub (``liaison``)::

    from producers import ParticipantSettings, Publisher

    with Publisher(ParticipantSettings.from_env()) as publisher:
        envelope = publisher.publish(letter, recipients=["gs-archives"])
"""

from __future__ import annotations

from producers.envelopes import ReceiptKind, receipt_payload, reply_envelope
from producers.errors import ConsumeError, PublishError, ReplyTimeout, SdkConfigError
from producers.publisher import Publisher
from producers.settings import ParticipantSettings, TlsOptions

__all__ = [
    "ConsumeError",
    "ParticipantSettings",
    "PublishError",
    "Publisher",
    "ReceiptKind",
    "ReplyTimeout",
    "SdkConfigError",
    "TlsOptions",
    "receipt_payload",
    "reply_envelope",
]
