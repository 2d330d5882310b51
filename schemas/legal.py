"""The legal service: requests for a legal opinion, and the opinions given.

An opinion answers one request and names it by the request's message id, so the
requester can match them without a shared register.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar
from uuid import UUID

from schemas.types import Line, Payload, Text


class OpinionRequested(Payload):
    """A directorate or mission asks the legal service for an opinion."""

    message_type: ClassVar[str] = "legal.opinion_requested"
    version: ClassVar[int] = 1

    question: Text
    context: Text
    due_on: date | None = None


class OpinionGiven(Payload):
    """The legal service's opinion on one request, with its conclusion in one line."""

    message_type: ClassVar[str] = "legal.opinion_given"
    version: ClassVar[int] = 1

    request_message_id: UUID
    opinion: Text
    conclusion: Line


MODELS: tuple[type[Payload], ...] = (OpinionRequested, OpinionGiven)

__all__ = ["MODELS", "OpinionGiven", "OpinionRequested"]
