"""record_messages through the writer's own decoder and with the cycle collector paused."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liaison.core.events import EventKind, encode_batch, make_event
from liaison.ledger import store
from liaison.ledger.intake import record_messages
from liaison.ledger.store import Ledger, LedgerError


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(tmp_path / "audit", key=Ed25519PrivateKey.generate()) as opened:
        yield opened


def body(*ids: str) -> bytes:
    return encode_batch(make_event(EventKind.ROUTED, i) for i in ids)


def test_messages_jiter_refuses_are_decided_as_before(ledger: Ledger) -> None:
    """A body behind a UTF-8 BOM was always accepted (json.loads takes it), garbage never."""
    rejected: list[tuple[int, str]] = []
    recorded = record_messages(
        ledger,
        [(1, b"\xef\xbb\xbf" + body("a")), (2, b"{garbage"), (3, body("b"))],
        lambda tag, why: rejected.append((tag, why)),
    )
    assert (recorded.ack, recorded.messages, recorded.records) == (3, 2, 2)
    assert [tag for tag, _ in rejected] == [2]
    assert rejected[0][1].startswith("malformed audit message: Expecting property name")


def test_the_collector_is_back_on_after_a_batch(ledger: Ledger) -> None:
    """The cycle collector is off during a batch only: on again after it, even when the disk failed."""
    assert gc.isenabled()
    states: list[bool] = []
    record_messages(ledger, [(1, body("a"))], lambda _t, _w: None)
    assert gc.isenabled()

    def failing(_fd: int) -> None:
        states.append(gc.isenabled())
        raise OSError("disk gone")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "datasync", failing)
        with pytest.raises(LedgerError):
            record_messages(ledger, [(2, body("b"))], lambda _t, _w: None)
    assert states == [False]
    assert gc.isenabled()


def test_a_collector_turned_off_stays_off(ledger: Ledger) -> None:
    """Whoever turned the collector off keeps it off: the batch does not turn it on."""
    gc.disable()
    try:
        record_messages(ledger, [(1, body("a"))], lambda _t, _w: None)
        assert not gc.isenabled()
    finally:
        gc.enable()
