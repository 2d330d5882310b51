"""Helpers for the edge SDK's broker tests: a hub vhost shared by a module, and participants."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from consumers import Consumer
from liaison.directory import Directory, load_directory
from liaison.settings import Settings
from liaison.topology import apply, credentials_path
from producers import ParticipantSettings
from schemas.examples import example_keys
from schemas.types import Classification
from tests.conftest import Broker, scratch_vhost

#: Short delays for tests; the topology gets matching TTL queues.
TEST_DELAYS_MS = {"1s": 1_000, "2s": 2_000}


@contextmanager
def hub_vhost(broker: Broker, base: Path, **changes: Any) -> Iterator[Settings]:
    """A fresh vhost and user prefix with the bundled directory's topology; removed after."""
    with scratch_vhost(broker, base, prefix="k", **changes) as settings:
        apply(settings, load_directory(settings.directory_path))
        yield settings


def participant(settings: Settings, code: str, **changes: Any) -> ParticipantSettings:
    """The SDK settings of participant ``code``, from the credentials ``apply`` wrote."""
    found = ParticipantSettings.from_credentials(credentials_path(settings, code), environ={})
    return found.with_changes(**changes) if changes else found


def routes(directory: Directory) -> list[tuple[str, int, str, str]]:
    """(type, version, sender, recipient) for every example: a sender allowed to send it,
    another participant as recipient (every one is cleared for INTERNAL)."""
    found = []
    for type_, version in example_keys():
        sender = next(p.code for p in directory if p.can_send(type_))
        recipient = next(
            p.code
            for p in directory
            if p.code != sender and p.clearance.rank >= Classification.INTERNAL.rank
        )
        found.append((type_, version, sender, recipient))
    return found


@contextmanager
def running_consumer(consumer: Consumer) -> Iterator[threading.Thread]:
    """``consumer.run()`` in a thread for the block; stopped and joined after."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            consumer.run(install_signal_handlers=False)
        except BaseException as exc:  # surfaced by the block's exit
            failure.append(exc)

    thread = threading.Thread(target=target, name=f"consumer-{consumer.settings.code}")
    thread.start()
    try:
        yield thread
    finally:
        consumer.stop()
        thread.join(timeout=20)
        consumer.close()
    if failure:
        raise failure[0]
