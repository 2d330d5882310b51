"""Precedence bands: which inbox (routing key) each copy goes to, and back on a retry."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from liaison.core.retry import Due, RelayContext, Verdict, relay
from liaison.directory import load_directory
from schemas import wire
from schemas.types import Precedence

URGENT = {Precedence.FLASH, Precedence.IMMEDIATE}
_NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("precedence", list(Precedence))
def test_each_precedence_has_one_band(precedence: Precedence) -> None:
    """FLASH and IMMEDIATE go to inbox.<code>.urgent; PRIORITY and ROUTINE to inbox.<code>."""
    urgent = precedence in URGENT
    assert (precedence.value in wire.URGENT_PRECEDENCES) is urgent
    assert (precedence.value in wire.ROUTINE_PRECEDENCES) is not urgent
    key = wire.delivery_key("gs", precedence.value)
    assert key == ("gs.urgent" if urgent else "gs")
    assert wire.delivery_recipient(key) == "gs"


def test_queue_names() -> None:
    """The routine band keeps its old name; the urgent one adds .urgent; urgent is read first."""
    assert wire.inbox_queue("dir-political") == "inbox.dir-political"
    assert wire.urgent_inbox_queue("dir-political") == "inbox.dir-political.urgent"
    assert wire.inbox_queues("gs") == ("inbox.gs.urgent", "inbox.gs")


def test_unknown_precedence_stays_routine() -> None:
    """A value outside the scale (or none) never jumps the queue."""
    assert wire.delivery_key("gs", None) == "gs"
    assert wire.delivery_key("gs", "flash") == "gs"
    assert wire.delivery_key("gs", "URGENT") == "gs"


def test_no_code_reaches_another_codes_urgent_band() -> None:
    """Codes have no dot, so <a>.urgent is never a plain code and maps back to <a> only."""
    codes = load_directory().codes()
    urgent_keys = {wire.delivery_key(code, "FLASH") for code in codes}
    assert urgent_keys.isdisjoint(codes)
    assert {wire.delivery_recipient(key) for key in urgent_keys} == set(codes)


def _cable(precedence: str) -> bytes:
    return json.dumps(
        {"message_id": "m-1", "type": "mission.cable", "precedence": precedence}
    ).encode()


CTX = RelayContext(load_directory(), hub_user="liaison-hub", user_prefix="lx-")


@pytest.mark.parametrize(
    ("own", "header", "key"),
    [
        ("ROUTINE", None, "gs"),
        ("PRIORITY", None, "gs"),
        ("FLASH", None, "gs.urgent"),
        ("IMMEDIATE", None, "gs.urgent"),
        # Delivered FLASH because a routing rule raised it: the retry stays urgent.
        ("ROUTINE", "FLASH", "gs.urgent"),
        # A header outside the scale is ignored: the body's own precedence decides.
        ("ROUTINE", "TOP", "gs"),
    ],
)
def test_retry_returns_to_its_band(own: str, header: str | None, key: str) -> None:
    """A participant's due retry goes back to the band of its effective precedence."""
    headers = {wire.H_DELAY: "5s", wire.H_ATTEMPT: 1}
    if header is not None:
        headers[wire.H_PRECEDENCE] = header
    decision = relay(Due(_cable(own), "lx-gs", headers), CTX, now=_NOW)
    assert decision.verdict is Verdict.RETRY
    assert decision.out.exchange == wire.DELIVER_EXCHANGE
    assert decision.out.routing_key == key
    raised = decision.out.headers.get(wire.H_PRECEDENCE)
    assert raised == (header if header == "FLASH" else None)
