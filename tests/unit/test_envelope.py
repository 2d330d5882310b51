"""The envelope: construction, consistency rules and the canonical byte form."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest
from pydantic import ValidationError

from schemas.envelope import Envelope, canonical_json, new_envelope
from schemas.examples import example_payload
from schemas.missions import CableV1, CableV2
from schemas.types import Classification, Precedence

SIGNATURE = "A" * 86 + "=="
CREATED = datetime(2025, 3, 12, 9, 0, tzinfo=UTC)


def _cable() -> CableV1:
    payload = example_payload("mission.cable", 1)
    assert isinstance(payload, CableV1)
    return payload


class TestNewEnvelope:
    def test_type_and_version_come_from_the_payload_model(self) -> None:
        """new_envelope copies message_type and version from the payload's class."""
        envelope = new_envelope(example_payload("mission.cable", 2), sender="mission-bru")
        assert (envelope.type, envelope.schema_version) == ("mission.cable", 2)

    def test_fresh_id_and_aware_creation_time(self) -> None:
        """Each envelope gets its own id and a UTC creation instant."""
        first = new_envelope(_cable(), sender="mission-bru")
        second = new_envelope(_cable(), sender="mission-bru")
        assert first.message_id != second.message_id
        assert first.created_at.tzinfo is not None
        assert first.created_at.utcoffset() == timedelta(0)

    def test_defaults_are_internal_and_routine(self) -> None:
        """Without options a message is INTERNAL and ROUTINE, with no recipients."""
        envelope = new_envelope(_cable(), sender="mission-bru")
        assert envelope.classification is Classification.INTERNAL
        assert envelope.precedence is Precedence.ROUTINE
        assert envelope.recipients == ()

    def test_offsets_are_converted_to_utc(self) -> None:
        """A creation time given in another zone is stored as the same instant in UTC."""
        local = datetime(2025, 3, 12, 10, 0, tzinfo=timezone(timedelta(hours=1)))
        envelope = new_envelope(_cable(), sender="mission-bru", created_at=local)
        assert envelope.created_at == CREATED
        assert envelope.created_at.tzinfo == UTC


class TestConsistency:
    def test_recipients_must_not_repeat(self) -> None:
        """Naming a recipient twice is refused."""
        with pytest.raises(ValidationError, match="recipients must not repeat"):
            new_envelope(_cable(), sender="mission-bru", recipients=("dae", "dae"))

    def test_expiry_must_follow_creation(self) -> None:
        """An envelope cannot expire before (or when) it is created."""
        with pytest.raises(ValidationError, match="expires_at must be after created_at"):
            new_envelope(_cable(), sender="mission-bru", created_at=CREATED, expires_at=CREATED)

    def test_payload_must_match_type_and_version(self) -> None:
        """An envelope that says v1 cannot carry a v2 payload."""
        good = new_envelope(_cable(), sender="mission-bru")
        with pytest.raises(ValidationError, match=re.escape("payload is mission.cable v2")):
            Envelope[CableV2](
                **{
                    **good.model_dump(exclude={"payload"}),
                    "payload": example_payload("mission.cable", 2),
                }
            )

    def test_sender_must_be_a_participant_code(self) -> None:
        """Sender codes are lower-case directory codes."""
        with pytest.raises(ValidationError, match="sender"):
            new_envelope(_cable(), sender="Mission BRU")

    def test_envelopes_are_frozen(self) -> None:
        """An envelope cannot be changed after construction."""
        envelope = new_envelope(_cable(), sender="mission-bru")
        with pytest.raises(ValidationError, match="frozen"):
            envelope.sender = "someone-else"  # type: ignore[misc]


class TestCanonicalForm:
    def test_keys_sorted_compact_utf8(self) -> None:
        """Canonical JSON sorts keys, has no spaces and keeps non-ASCII characters as UTF-8."""
        assert canonical_json({"b": 1, "a": "été"}) == '{"a":"été","b":1}'.encode()

    def test_nan_is_refused(self) -> None:
        """NaN has no JSON form, so the canonical form refuses it."""
        with pytest.raises(ValueError, match="not JSON compliant"):
            canonical_json({"x": float("nan")})

    def test_nulls_are_omitted(self) -> None:
        """Absent optional fields do not appear on the wire."""
        data = json.loads(new_envelope(_cable(), sender="mission-bru").encode())
        assert "correlation_id" not in data
        assert "expires_at" not in data
        assert "signature" not in data

    def test_signature_is_outside_the_signed_bytes(self) -> None:
        """canonical_bytes is the same with or without a signature; encode carries it."""
        envelope = new_envelope(_cable(), sender="mission-bru")
        signed = envelope.with_signature(SIGNATURE)
        assert signed.canonical_bytes() == envelope.canonical_bytes()
        assert json.loads(signed.encode())["signature"] == SIGNATURE
        assert envelope.signature is None

    def test_same_message_same_bytes(self) -> None:
        """Two envelopes built from the same data encode to identical bytes."""
        ident = UUID("5d6c7f1a-0000-4000-8000-000000000001")
        first = new_envelope(_cable(), sender="mission-bru", message_id=ident, created_at=CREATED)
        second = new_envelope(_cable(), sender="mission-bru", message_id=ident, created_at=CREATED)
        assert first.encode() == second.encode()

    def test_creation_time_is_written_in_utc(self) -> None:
        """created_at travels as an ISO 8601 UTC instant."""
        envelope = new_envelope(_cable(), sender="mission-bru", created_at=CREATED)
        assert json.loads(envelope.encode())["created_at"] == "2025-03-12T09:00:00Z"

    def test_malformed_signature_is_refused(self) -> None:
        """A signature must be the base64 of 64 bytes."""
        envelope = new_envelope(_cable(), sender="mission-bru")
        with pytest.raises(ValidationError, match="signature"):
            Envelope[CableV1].model_validate({**envelope.to_jsonable(), "signature": "abc"})
