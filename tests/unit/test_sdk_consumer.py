"""The consumer's dispatch, one delivery at a time, with stand-ins for kombu and the broker.

The stand-in message records acks and rejects; the publisher is a real
:class:`Publisher` whose wire primitive records instead of publishing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import pytest

from consumers import Consumer, HandlerTable, InMemoryStore, Outcome, RetryPolicy, Waiter
from producers import ParticipantSettings, Publisher, PublishError, SdkConfigError
from schemas import wire
from schemas.catalog import default_registry
from schemas.correspondence import Letter
from schemas.envelope import Envelope
from schemas.errors import ContractError, ReasonCode
from schemas.examples import example_envelope
from schemas.missions import CableV1, CableV2
from schemas.types import Payload

SETTINGS = ParticipantSettings(
    code="gs-archives", amqp_url="amqp://t-gs-archives:pw@localhost/v", hub_user="t-hub"
)


@dataclass
class Delivery:
    """What a kombu message offers the consumer, recording what is done with it."""

    body: bytes | str
    headers: dict[str, Any] = field(default_factory=dict)
    #: Published by the hub, as everything in an inbox is.
    properties: dict[str, Any] = field(default_factory=lambda: {"user_id": "t-hub"})
    content_encoding: str | None = None
    acked: bool = False
    rejected: bool | None = None

    def ack(self) -> None:
        self.acked = True

    def reject(self, requeue: bool = False) -> None:
        self.rejected = requeue


@dataclass
class Sent:
    exchange: str
    routing_key: str
    body: bytes
    properties: Mapping[str, Any]
    headers: Mapping[str, Any]


class RecordingPublisher(Publisher):
    """A publisher whose every publish is recorded instead of sent (or refused, if told)."""

    def __init__(self, *, refuse: bool = False) -> None:
        super().__init__(SETTINGS)
        self.sent: list[Sent] = []
        self.refuse = refuse

    def publish_bytes(
        self,
        body: bytes,
        *,
        exchange: str,
        routing_key: str,
        properties: Mapping[str, Any],
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        if self.refuse:
            raise PublishError("refused for the test", type_=str(properties.get("type")))
        self.sent.append(Sent(exchange, routing_key, body, properties, headers or {}))


def letter() -> Envelope[Payload]:
    return example_envelope("correspondence.letter", 1, sender="gs", recipients=("gs-archives",))


def delivery(envelope: Envelope[Payload], **headers: Any) -> Delivery:
    return Delivery(
        envelope.encode(),
        headers=dict(headers),
        properties={
            "message_id": str(envelope.message_id),
            "type": envelope.type,
            "user_id": "t-hub",
        },
    )


def consumer(**options: Any) -> tuple[Consumer, RecordingPublisher]:
    publisher = RecordingPublisher(refuse=options.pop("refuse", False))
    return Consumer(SETTINGS, publisher=publisher, **options), publisher


class TestHandled:
    def test_typed_handler_runs_then_the_message_is_acked_and_recorded(self) -> None:
        """The handler gets the typed payload; only after it returns is the key recorded and acked."""
        store = InMemoryStore()
        inbox, publisher = consumer(store=store)
        seen: list[Envelope[Letter]] = []

        @inbox.handler(Letter)
        def on_letter(envelope: Envelope[Letter]) -> None:
            assert not store.seen(f"gs/{envelope.message_id}")
            seen.append(envelope)

        message = letter()
        item = delivery(message)
        assert inbox.handle_delivery(item) is Outcome.HANDLED
        assert item.acked
        assert isinstance(seen[0].payload, Letter)
        assert seen[0] == message
        assert store.seen(f"gs/{message.message_id}")
        assert publisher.sent == []

    def test_a_duplicate_is_acked_without_running_the_handler(self) -> None:
        """The same message delivered twice has its effect once."""
        inbox, _ = consumer()
        calls: list[object] = []
        inbox.register("correspondence.letter", calls.append)
        message = letter()
        assert inbox.handle_delivery(delivery(message)) is Outcome.HANDLED
        second = delivery(message)
        assert inbox.handle_delivery(second) is Outcome.DUPLICATE
        assert second.acked
        assert len(calls) == 1

    def test_the_same_id_from_another_sender_is_not_a_duplicate(self) -> None:
        """Keys include the sender: one participant cannot shadow another's message by id."""
        inbox, _ = consumer()
        calls: list[object] = []
        inbox.register("correspondence.letter", calls.append)
        message = letter()
        other = message.model_copy(update={"sender": "gs-legal"})
        inbox.handle_delivery(delivery(message))
        assert inbox.handle_delivery(delivery(other)) is Outcome.HANDLED
        assert len(calls) == 2

    def test_another_senders_copy_under_the_same_id_keeps_the_letters_token(self) -> None:
        """The receipt for gs's letter carries gs's copy's token, whoever reused the id."""
        inbox, _ = consumer()
        inbox.register("correspondence.letter", lambda _e: None)
        message = letter()
        squatter = message.model_copy(update={"sender": "gs-legal"})
        inbox.handle_delivery(delivery(message, **{wire.H_RECEIPT_TOKEN: "a" * 32}))
        inbox.handle_delivery(delivery(squatter, **{wire.H_RECEIPT_TOKEN: "b" * 32}))
        assert inbox.receipt_token(message) == "a" * 32
        assert inbox.receipt_token(squatter) == "b" * 32

    def test_a_body_auto_decoded_to_text_is_still_handled(self) -> None:
        """py-amqp may hand over text when a content encoding is set."""
        inbox, _ = consumer()
        calls: list[object] = []
        inbox.register("correspondence.letter", calls.append)
        item = delivery(letter())
        item.body = bytes(item.body).decode("utf-8")  # type: ignore[arg-type]
        item.content_encoding = "utf-8"
        assert inbox.handle_delivery(item) is Outcome.HANDLED

    def test_a_v1_handler_receives_v2_messages_adapted(self) -> None:
        """Schema evolution: a consumer that knows only v1 gets v2 cables as v1."""
        inbox, _ = consumer()
        got: list[Envelope[CableV1]] = []
        inbox.handler(CableV1)(got.append)
        v2 = example_envelope("mission.cable", 2, sender="emb-berlin", recipients=("gs",))
        assert isinstance(v2.payload, CableV2)
        assert inbox.handle_delivery(delivery(v2)) is Outcome.HANDLED
        assert type(got[0].payload) is CableV1
        assert got[0].schema_version == 1
        assert got[0].message_id == v2.message_id


class TestFailures:
    def test_a_failing_handler_is_retried_after_the_first_delay(self) -> None:
        """Same bytes to liaison.retry under our code, first delay, attempt 1; then acked."""
        inbox, publisher = consumer(retry=RetryPolicy(("1s", "2s")))

        def broken(envelope: Envelope[Any]) -> None:
            raise OSError("registry database unavailable")

        inbox.register("correspondence.letter", broken)
        message = letter()
        item = delivery(message)
        assert inbox.handle_delivery(item) is Outcome.RETRIED
        assert item.acked
        (sent,) = publisher.sent
        assert (sent.exchange, sent.routing_key, sent.body) == (
            wire.RETRY_EXCHANGE,
            "gs-archives",
            message.encode(),
        )
        assert sent.headers[wire.H_DELAY] == "1s"
        assert sent.headers[wire.H_ATTEMPT] == 1
        assert sent.headers[wire.H_ERROR_TYPE] == "OSError"
        assert sent.properties["user_id"] == "t-gs-archives"
        assert sent.properties["message_id"] == str(message.message_id)

    def test_after_the_last_delay_it_is_parked(self) -> None:
        """A message that failed every attempt goes to dead letters with the error."""
        inbox, publisher = consumer(retry=RetryPolicy(("1s", "2s")))

        def broken(envelope: Envelope[Any]) -> None:
            raise ValueError("no such file")

        inbox.register("correspondence.letter", broken)
        item = delivery(letter(), **{wire.H_ATTEMPT: 2, "x-death": [{"count": 1}]})
        assert inbox.handle_delivery(item) is Outcome.PARKED
        headers = publisher.sent[0].headers
        assert headers[wire.H_DELAY] == "dead"
        assert headers[wire.H_ATTEMPT] == 3
        assert headers[wire.H_REASON] == "handler_error"
        assert headers[wire.H_REASON_TEXT] == "ValueError: no such file"
        assert "x-death" not in headers

    def test_the_failed_key_is_not_recorded(self) -> None:
        """A failed attempt must not make the retry look like a duplicate."""
        store = InMemoryStore()
        inbox, _ = consumer(store=store)
        inbox.register("correspondence.letter", lambda e: 1 / 0)
        message = letter()
        inbox.handle_delivery(delivery(message))
        assert not store.seen(f"gs/{message.message_id}")

    def test_when_retrying_cannot_be_published_the_message_is_returned(self) -> None:
        """Never ack what was not safely re-published: reject with requeue instead."""
        inbox, _ = consumer(refuse=True)
        inbox.register("correspondence.letter", lambda e: 1 / 0)
        item = delivery(letter())
        assert inbox.handle_delivery(item) is Outcome.REQUEUED
        assert not item.acked
        assert item.rejected is True


class TestInputNoHandlerTakes:
    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            (b"{not json", "not_json"),
            (b"\xff\xfe", "not_utf8"),
            (b'{"type": "nothing.here", "schema_version": 1}', "unknown_type"),
        ],
    )
    def test_undecodable_input_is_parked_with_the_contract_reason(
        self, body: bytes, reason: str
    ) -> None:
        """The consumer never crashes on input: bad bytes go to dead letters, unchanged."""
        inbox, publisher = consumer()
        item = Delivery(body)
        assert inbox.handle_delivery(item) is Outcome.PARKED
        assert item.acked
        (sent,) = publisher.sent
        assert sent.body == body
        assert sent.headers[wire.H_REASON] == reason
        assert sent.headers[wire.H_DELAY] == "dead"

    def test_a_type_without_handler_is_parked_as_no_handler(self) -> None:
        """Known to the registry but not to this consumer: no_handler."""
        inbox, publisher = consumer()
        inbox.register("correspondence.note", lambda e: None)
        assert inbox.handle_delivery(delivery(letter())) is Outcome.PARKED
        assert publisher.sent[0].headers[wire.H_REASON] == ReasonCode.NO_HANDLER.value

    def test_a_requester_holds_what_it_has_no_handler_for(self) -> None:
        """hold_unhandled leaves the message unacked (it returns to the queue at close)."""
        inbox, publisher = consumer(hold_unhandled=True)
        item = delivery(letter())
        assert inbox.handle_delivery(item) is Outcome.HELD
        assert not item.acked
        assert item.rejected is None
        assert publisher.sent == []


class TestOnlyFromTheHub:
    """Every copy in the inbox must have been published by the hub's user."""

    @pytest.mark.parametrize("user_id", [None, "t-gs-archives", "t-gs-legal", "guest"])
    def test_a_copy_not_published_by_the_hub_is_refused_and_parked(
        self, user_id: str | None
    ) -> None:
        """Not handled, not silently acked: parked as not_from_hub, acked once that is sent."""
        handled: list[Any] = []
        inbox, publisher = consumer()
        inbox.register("correspondence.letter", handled.append)
        item = delivery(letter())
        item.properties["user_id"] = user_id
        assert inbox.handle_delivery(item) is Outcome.PARKED
        assert handled == []
        assert item.acked
        (sent,) = publisher.sent
        assert sent.exchange == wire.RETRY_EXCHANGE
        assert sent.routing_key == "gs-archives"
        assert sent.headers[wire.H_DELAY] == "dead"
        assert sent.headers[wire.H_REASON] == ReasonCode.NOT_FROM_HUB.value
        assert "not by the hub" in sent.headers[wire.H_REASON_TEXT]

    def test_its_own_retry_relayed_by_the_hub_is_handled(self) -> None:
        """A retry the hub relayed back (x-liaison-own-retry = its code) is handled."""
        handled: list[Any] = []
        inbox, publisher = consumer()
        inbox.register("correspondence.letter", handled.append)
        item = delivery(letter(), **{wire.H_OWN_RETRY: "gs-archives", wire.H_ATTEMPT: 1})
        assert inbox.handle_delivery(item) is Outcome.HANDLED
        assert len(handled) == 1
        assert publisher.sent == []

    def test_a_retry_relayed_for_someone_else_is_refused(self) -> None:
        """A hub copy marked as another participant's retry is not this consumer's."""
        inbox, publisher = consumer()
        inbox.register("correspondence.letter", lambda e: None)
        item = delivery(letter(), **{wire.H_OWN_RETRY: "gs-legal"})
        assert inbox.handle_delivery(item) is Outcome.PARKED
        assert publisher.sent[0].headers[wire.H_REASON] == ReasonCode.NOT_FROM_HUB.value

    def test_a_consumer_without_the_hub_user_does_not_start(self) -> None:
        """Fail closed: no hub user configured, no consumer (and the error says what to set)."""
        bare = SETTINGS.with_changes(hub_user=None)
        with pytest.raises(SdkConfigError, match="LIAISON_HUB_USER"):
            Consumer(bare, publisher=RecordingPublisher())


class TestReplies:
    def test_an_answer_goes_to_its_waiter_not_to_the_handler(self) -> None:
        """A message caused by (or correlated with) a pending request answers it."""
        inbox, _ = consumer()
        handled: list[object] = []
        inbox.register("correspondence.letter", handled.append)
        request_id = uuid4()
        answer = letter().model_copy(update={"causation_id": request_id})
        with inbox.expect(request_id) as waiter:
            assert inbox.handle_delivery(delivery(answer)) is Outcome.ANSWER
            assert waiter.done()
            assert waiter.answer == answer
        assert handled == []

    def test_waiter_matches_correlation_or_causation_and_type(self) -> None:
        """Both ids count; a type filter narrows the answers."""
        request_id = uuid4()
        waiter = Waiter(request_id, types={"legal.opinion_given"})
        by_correlation = letter().model_copy(update={"correlation_id": request_id})
        assert not waiter.matches(by_correlation)  # a letter is not the awaited type
        assert Waiter(request_id).matches(by_correlation)
        assert not Waiter(uuid4()).matches(by_correlation)


class TestHandlerTable:
    def test_unknown_type_or_version_is_refused_at_registration(self) -> None:
        """Typos fail when the handler is registered, not when messages arrive."""
        table = HandlerTable(default_registry())
        with pytest.raises(ValueError, match="no message type"):
            table.add("correspondence.leter", print)
        with pytest.raises(ValueError, match="versions"):
            table.add("correspondence.letter", print, version=7)

    def test_one_handler_per_type_and_version(self) -> None:
        """Registering twice is a mistake, said at once."""
        table = HandlerTable(default_registry())
        table.add("mission.cable", print, version=1)
        table.add("mission.cable", print, version=2)
        with pytest.raises(ValueError, match="already has a handler"):
            table.add("mission.cable", print, version=1)
        assert table.types() == ["mission.cable"]

    def test_an_any_version_handler_gets_messages_as_they_arrived(self) -> None:
        """version=None: no adaptation."""
        table = HandlerTable(default_registry())
        table.add("mission.cable", print)
        v2 = example_envelope("mission.cable", 2, sender="emb-berlin", recipients=("gs",))
        resolved = table.resolve(v2)
        assert resolved is not None
        assert resolved[1] is v2

    def test_an_older_message_than_any_known_version_cannot_be_adapted(self) -> None:
        """A v2-only handler cannot read v1: UNSUPPORTED_VERSION (parked by the consumer)."""
        table = HandlerTable(default_registry())
        table.add("mission.cable", print, version=2)
        v1 = example_envelope("mission.cable", 1, sender="emb-berlin", recipients=("gs",))
        with pytest.raises(ContractError) as caught:
            table.resolve(v1)
        assert caught.value.reason is ReasonCode.UNSUPPORTED_VERSION
