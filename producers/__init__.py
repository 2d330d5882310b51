"""Edge SDK for systems that publish to the hub (kombu).

It imports ``schemas`` and never the hub (``liaison``)::

    from producers import ParticipantSettings, Publisher

    with Publisher(ParticipantSettings.from_env()) as publisher:
        envelope = publisher.publish(letter, recipients=["gs-archives"])

The consumer side's errors (``ConsumeError``, ``ReplyTimeout``) live in
``consumers.errors``; importing them from here still works.
"""

from __future__ import annotations

from producers import errors
from producers.envelopes import ReceiptKind, receipt_payload, reply_envelope
from producers.errors import PublishError, SdkConfigError
from producers.publisher import Publisher
from producers.settings import ParticipantSettings, TlsOptions
from schemas.errors import LiaisonError


def __getattr__(name: str) -> type[LiaisonError]:
    """``ConsumeError`` and ``ReplyTimeout``, now in ``consumers.errors``, under their old names."""
    if name in {"ConsumeError", "ReplyTimeout"}:
        moved: type[LiaisonError] = getattr(errors, name)
        return moved
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ParticipantSettings",
    "PublishError",
    "Publisher",
    "ReceiptKind",
    "SdkConfigError",
    "TlsOptions",
    "receipt_payload",
    "reply_envelope",
]
