"""Receipts: an institution's acknowledgement of a message, routed back to its sender.

Three steps, each naming the original message by its id: received (it arrived),
registered (it was filed under a registry number), answered (the answer went out
as another message, named by its id).
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar
from uuid import UUID

from pydantic import ValidationInfo, field_validator

from schemas.types import Payload, Reference, UtcDatetime


class _Receipt(Payload):
    """What every receipt carries: the id of the message it acknowledges."""

    original_message_id: UUID


class ReceiptReceived(_Receipt):
    """The recipient has the message."""

    message_type: ClassVar[str] = "receipt.received"
    version: ClassVar[int] = 1

    received_at: UtcDatetime


class ReceiptRegistered(_Receipt):
    """The recipient filed the message in its registry."""

    message_type: ClassVar[str] = "receipt.registered"
    version: ClassVar[int] = 1

    registry_number: Reference
    registered_on: date


class ReceiptAnswered(_Receipt):
    """The recipient answered the message; the answer is another message."""

    message_type: ClassVar[str] = "receipt.answered"
    version: ClassVar[int] = 1

    answer_message_id: UUID

    @field_validator("answer_message_id")
    @classmethod
    def _not_the_original(cls, value: UUID, info: ValidationInfo) -> UUID:
        if value == info.data.get("original_message_id"):
            raise ValueError("a message cannot be its own answer")
        return value


MODELS: tuple[type[Payload], ...] = (ReceiptReceived, ReceiptRegistered, ReceiptAnswered)

__all__ = ["MODELS", "ReceiptAnswered", "ReceiptReceived", "ReceiptRegistered"]
