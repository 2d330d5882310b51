"""Who gets a decoded message: the handler table (with schema evolution) and reply waiters.

Pure: no broker. A handler is a plain callable taking the envelope, whose
``payload`` is the typed model::

    table.add("correspondence.letter", file_letter, version=1)

A handler registered for given versions of a type receives newer versions
adapted down to the newest one it knows (``Registry.adapt``); a handler
registered with ``version=None`` receives every version as it arrived.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from schemas.envelope import Envelope
from schemas.registry import Registry

#: A message handler: called with the (possibly adapted) envelope; its return value is ignored.
Handler = Callable[[Envelope[Any]], object]


@dataclass
class HandlerTable:
    """Message type (and version) → handler, and the choice of handler for an envelope."""

    registry: Registry
    _handlers: dict[str, dict[int | None, Handler]] = field(default_factory=dict)

    def add(self, type_: str, handler: Handler, *, version: int | None = None) -> None:
        """Route ``type_`` (``version``, or every version when ``None``) to ``handler``."""
        versions = self.registry.versions(type_)
        if not versions:
            raise ValueError(f"no message type {type_!r} in the registry")
        if version is not None and version not in versions:
            raise ValueError(f"{type_} has versions {versions}, not {version}")
        slot = self._handlers.setdefault(type_, {})
        if version in slot:
            which = f"v{version}" if version is not None else "every version"
            raise ValueError(f"{type_} ({which}) already has a handler: {slot[version]!r}")
        slot[version] = handler

    def types(self) -> list[str]:
        """The message types that have a handler, sorted."""
        return sorted(self._handlers)

    def resolve(self, envelope: Envelope[Any]) -> tuple[Handler, Envelope[Any]] | None:
        """The handler for ``envelope`` and the envelope it should see; ``None`` if no handler.

        Raises ContractError (UNSUPPORTED_VERSION) when the message is older than
        every version the handlers know, or a newer version cannot be downgraded.
        """
        slot = self._handlers.get(envelope.type)
        if not slot:
            return None
        exact = slot.get(envelope.schema_version)
        if exact is not None:
            return exact, envelope
        if None in slot:
            return slot[None], envelope
        adapted = self.registry.adapt(envelope, [v for v in slot if v is not None])
        return slot[adapted.schema_version], adapted


@dataclass
class Waiter:
    """One request waiting for its answer: a message correlated with ``request_id``.

    A message answers when its ``correlation_id`` or its ``causation_id`` is the
    request's message id (replies and receipts carry both) and, if ``types`` is
    given, its type is one of them.
    """

    request_id: UUID
    types: Collection[str] | None = None
    _event: threading.Event = field(default_factory=threading.Event)
    _answer: Envelope[Any] | None = None

    def matches(self, envelope: Envelope[Any]) -> bool:
        """Whether ``envelope`` answers this request."""
        if self.request_id not in (envelope.correlation_id, envelope.causation_id):
            return False
        return self.types is None or envelope.type in self.types

    def deliver(self, envelope: Envelope[Any]) -> None:
        """Hand over the answer (the first one wins) and wake whoever waits."""
        if self._answer is None:
            self._answer = envelope
        self._event.set()

    def done(self) -> bool:
        """Whether the answer is in."""
        return self._event.is_set()

    def wait(self, timeout: float) -> Envelope[Any] | None:
        """Block up to ``timeout`` seconds for the answer; ``None`` if it did not come."""
        self._event.wait(timeout)
        return self._answer

    @property
    def answer(self) -> Envelope[Any] | None:
        """The answer, once delivered."""
        return self._answer


__all__ = ["Handler", "HandlerTable", "Waiter"]
