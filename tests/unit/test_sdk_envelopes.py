"""Envelope building at the edge: new envelopes, signatures, replies, receipts, AMQP properties."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from producers import ParticipantSettings, Publisher, PublishError
from producers.envelopes import (
    publish_properties,
    receipt_classification,
    receipt_payload,
    reply_envelope,
)
from schemas import wire
from schemas.catalog import default_registry
from schemas.envelope import Envelope
from schemas.examples import example_envelope, example_payload
from schemas.legal import OpinionGiven
from schemas.receipts import ReceiptAnswered, ReceiptReceived, ReceiptRegistered
from schemas.signing import verify_data
from schemas.types import Classification, Payload, Precedence

URL = "amqp://t-gs-legal:pw@localhost:5672/liaison"


def _request() -> Envelope[Payload]:
    return example_envelope(
        "legal.opinion_requested",
        1,
        sender="gs",
        recipients=("gs-legal",),
        classification=Classification.CONFIDENTIAL,
        precedence=Precedence.PRIORITY,
    )


def _opinion(request: Envelope[Payload]) -> OpinionGiven:
    return OpinionGiven(
        request_message_id=request.message_id, opinion="Yes.", conclusion="Compatible."
    )


class TestPublisherBuild:
    def test_builds_a_fresh_envelope_from_this_sender(self) -> None:
        """Type and version come from the model, the sender from the settings, ids are new."""
        publisher = Publisher(ParticipantSettings(code="gs-legal", amqp_url=URL))
        payload = example_payload("correspondence.letter", 1)
        first = publisher.build(payload, recipients=["gs"])
        second = publisher.build(payload, recipients=["gs"])
        assert (first.type, first.schema_version, first.sender) == (
            "correspondence.letter",
            1,
            "gs-legal",
        )
        assert first.message_id != second.message_id
        assert first.signature is None

    def test_signs_when_a_key_is_configured(self, tmp_path: Path) -> None:
        """The signature verifies over the wire bytes with the matching public key."""
        key = Ed25519PrivateKey.generate()
        path = tmp_path / "k.pem"
        path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        settings = ParticipantSettings(code="gs-legal", amqp_url=URL, signing_key_path=path)
        envelope = Publisher(settings).build(example_payload("correspondence.note", 1))
        assert envelope.signature is not None
        assert verify_data(json.loads(envelope.encode()), key.public_key())

    def test_refuses_an_envelope_from_another_sender_before_connecting(self) -> None:
        """The hub would refuse it as sender_mismatch; the SDK says so without a broker."""
        publisher = Publisher(ParticipantSettings(code="gs-legal", amqp_url=URL))
        with pytest.raises(PublishError, match="sender_mismatch") as caught:
            publisher.publish_envelope(_request())
        assert caught.value.type == "legal.opinion_requested"


class TestReply:
    def test_reply_goes_back_in_the_same_conversation(self) -> None:
        """To the original sender; correlation = the conversation, causation = the original."""
        request = _request()
        reply = reply_envelope(request, _opinion(request), sender="gs-legal")
        assert reply.recipients == ("gs",)
        assert reply.correlation_id == request.message_id
        assert reply.causation_id == request.message_id
        assert reply.classification is Classification.CONFIDENTIAL
        assert reply.precedence is Precedence.PRIORITY

    def test_reply_keeps_an_existing_conversation_id(self) -> None:
        """A reply to a message that was itself a reply stays in the first conversation."""
        conversation = uuid4()
        request = _request().model_copy(update={"correlation_id": conversation})
        reply = reply_envelope(request, _opinion(request), sender="gs-legal")
        assert reply.correlation_id == conversation
        assert reply.causation_id == request.message_id


class TestReceipts:
    def test_received(self) -> None:
        """A 'received' receipt names the original and the moment."""
        request = _request()
        now = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
        receipt = receipt_payload(request, "received", now=now)
        assert receipt == ReceiptReceived(original_message_id=request.message_id, received_at=now)

    def test_registered_needs_a_registry_number(self) -> None:
        """'registered' carries the number it was filed under, dated today by default."""
        request = _request()
        with pytest.raises(ValueError, match="registry_number"):
            receipt_payload(request, "registered")
        receipt = receipt_payload(
            request, "registered", registry_number="SJ/2025/17", registered_on=date(2025, 3, 2)
        )
        assert isinstance(receipt, ReceiptRegistered)
        assert receipt.registry_number == "SJ/2025/17"

    def test_answered_names_the_answer(self) -> None:
        """'answered' carries the answer's message id."""
        request = _request()
        answer = uuid4()
        with pytest.raises(ValueError, match="answer_message_id"):
            receipt_payload(request, "answered")
        receipt = receipt_payload(request, "answered", answer_message_id=answer)
        assert receipt == ReceiptAnswered(
            original_message_id=request.message_id, answer_message_id=answer
        )

    def test_unknown_kind(self) -> None:
        """Only the three kinds of the receipts family exist."""
        with pytest.raises(ValueError, match="received, registered or answered"):
            receipt_payload(_request(), "lost")  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("original", "expected"),
        [
            (Classification.PUBLIC, Classification.PUBLIC),
            (Classification.INTERNAL, Classification.INTERNAL),
            (Classification.CONFIDENTIAL, Classification.INTERNAL),
        ],
    )
    def test_receipts_are_never_more_than_internal(
        self, original: Classification, expected: Classification
    ) -> None:
        """A receipt says only that a message arrived."""
        request = _request().model_copy(update={"classification": original})
        assert receipt_classification(request) is expected

    def test_every_receipt_validates_in_the_registry(self) -> None:
        """Receipts built here are valid wire messages."""
        request = _request()
        for kind, extra in (
            ("received", {}),
            ("registered", {"registry_number": "SJ/1"}),
            ("answered", {"answer_message_id": uuid4()}),
        ):
            payload = receipt_payload(request, kind, **extra)  # type: ignore[arg-type]
            reply = reply_envelope(request, payload, sender="gs-legal")
            assert default_registry().decode(reply.encode()) == reply


class TestProperties:
    def test_publish_properties(self) -> None:
        """Content type, persistence, id, type, correlation and the RabbitMQ user."""
        request = _request()
        reply = reply_envelope(request, _opinion(request), sender="gs-legal")
        assert publish_properties(reply, user_id="t-gs-legal") == {
            "content_type": wire.CONTENT_TYPE,
            "delivery_mode": 2,
            "message_id": str(reply.message_id),
            "type": "legal.opinion_given",
            "user_id": "t-gs-legal",
            "correlation_id": str(request.message_id),
        }
        assert "correlation_id" not in publish_properties(request, user_id="t-gs")
