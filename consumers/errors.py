"""The consumer side's errors, grafted onto the project's one root.

A leaf module (it imports only ``schemas.errors``)::

    LiaisonError                     schemas.errors: root of everything the project raises
     ├── ConsumeError                the broker will not let this participant consume its inbox
     └── ReplyTimeout                no correlated answer arrived within the timeout

They were first defined in ``producers.errors``; ``producers`` and ``producers.errors``
still hand them out under the old names, so code catching them there keeps working.
"""

from __future__ import annotations

from schemas.errors import LiaisonError


class ConsumeError(LiaisonError):
    """The inbox cannot be consumed: login refused, no such queue, or no right to read it."""


class ReplyTimeout(LiaisonError):  # noqa: N818 - reads as what happened, like TimeoutError
    """No reply or receipt correlated with a request arrived in time."""

    def __init__(self, message: str, *, request_id: str, timeout: float) -> None:
        self.request_id = request_id
        self.timeout = timeout
        super().__init__(message)


__all__ = ["ConsumeError", "ReplyTimeout"]
