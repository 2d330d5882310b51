"""Properties of the contracts and the routing decision, for inputs nobody wrote by hand.

Hypothesis generates bytes, JSON values, mutated valid envelopes and valid
envelopes with chosen fields. 200 examples per property in a normal run; 5,000
in long mode (``--long`` or ``LIAISON_PROOF_LONG=1``).
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pika
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from liaison.core.decide import Decision, Incoming, RoutingContext, decide
from liaison.core.events import decode_batch, encode_batch
from liaison.core.rules import Rules
from liaison.core.tokens import receipt_token
from liaison.core.window import IdWindow
from liaison.directory import load_directory
from schemas import wire
from schemas.catalog import default_registry
from schemas.envelope import Envelope, new_envelope
from schemas.errors import ContractError
from schemas.examples import example_keys, example_payload
from schemas.types import Classification, Payload, Precedence

EXAMPLES = 5_000 if os.environ.get("LIAISON_PROOF_LONG") == "1" else 200
budget = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

REGISTRY = default_registry()
DIRECTORY = load_directory(None)
CODES = DIRECTORY.codes()
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CTX = RoutingContext(
    registry=REGISTRY,
    directory=DIRECTORY,
    rules=Rules.load(None, DIRECTORY),
    hub_user="guest",
    receipt_secret=b"k" * 32,
)

# -- strategies --------------------------------------------------------------------------

#: Any code point, lone surrogates included: JSON's \uXXXX escapes can carry them.
any_text = st.text(st.characters(exclude_categories=()), max_size=40)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | any_text
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(any_text, children, max_size=5)
    ),
    max_leaves=30,
)


def dumps(value: Any, ascii_only: bool) -> bytes:
    """JSON text of ``value``; lone surrogates either escaped or written as (invalid) UTF-8."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def senders_of(type_: str) -> list[str]:
    """The participants the directory lets send ``type_`` (all of them if nobody may)."""
    return [p.code for p in DIRECTORY if p.can_send(type_)] or list(CODES)


@st.composite
def example_data(draw: st.DrawFn) -> dict[str, Any]:
    """A valid envelope of any registered type, as JSON data, from a participant allowed to send it."""
    type_, version = draw(st.sampled_from(example_keys()))
    envelope = new_envelope(
        example_payload(type_, version),
        sender=draw(st.sampled_from(senders_of(type_))),
        recipients=draw(st.lists(st.sampled_from(CODES), max_size=3, unique=True)),
        created_at=NOW - timedelta(seconds=1),
    )
    return envelope.to_jsonable()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid envelope after a few random edits: delete, replace or add members anywhere."""
    data = draw(example_data())
    for _ in range(draw(st.integers(1, 3))):
        target: Any = data
        # Walk down a random path of objects and arrays.
        while isinstance(target, dict | list) and target and draw(st.booleans()):
            keys = list(target) if isinstance(target, dict) else list(range(len(target)))
            child = target[draw(st.sampled_from(keys))]
            if not isinstance(child, dict | list):
                break
            target = child
        if isinstance(target, dict):
            action = draw(st.sampled_from(["delete", "replace", "add"]))
            if action != "add" and target:
                key = draw(st.sampled_from(sorted(target)))
                if action == "delete":
                    del target[key]
                else:
                    target[key] = draw(json_values)
            else:
                target[draw(any_text)] = draw(json_values)
        elif isinstance(target, list) and target:
            target[draw(st.integers(0, len(target) - 1))] = draw(json_values)
    return dumps(data, draw(st.booleans()))


#: Every UTC offset a datetime can carry, to the minute (RFC 3339 offsets are ±HH:MM).
any_offset = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
#: Any instant Python can write, at any offset: the first and last days of the
#: calendar are where converting to UTC overflows.
edge_moments = st.datetimes(
    min_value=datetime.min, max_value=datetime.max, timezones=any_offset
) | st.sampled_from(
    [
        datetime.min.replace(tzinfo=timezone(timedelta(hours=14))),
        datetime.max.replace(tzinfo=timezone(-timedelta(hours=23, minutes=59))),
    ]
)


@st.composite
def edge_dated(draw: st.DrawFn) -> bytes:
    """A valid envelope with one datetime member moved anywhere in the calendar, at any offset."""
    data = draw(example_data())
    payload = data["payload"]
    stamps = [k for k, v in payload.items() if isinstance(v, str) and _STAMP.match(v)]
    name = draw(st.sampled_from(["created_at", "expires_at", *(f"payload.{k}" for k in stamps)]))
    target = payload if name.startswith("payload.") else data
    target[name.removeprefix("payload.")] = draw(edge_moments).isoformat()
    return dumps(data, True)


_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")


bodies = (
    st.binary(max_size=2_048)
    | st.builds(dumps, json_values, st.booleans())
    | mutated()
    | edge_dated()
    | st.builds(lambda data: dumps(data, True), example_data())
)


@st.composite
def from_its_sender(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """A valid (or lightly mutated) envelope published by its own sender: reaches routing."""
    data = draw(example_data())
    if draw(st.booleans()):
        data[draw(st.sampled_from(["classification", "precedence", "expires_at"]))] = draw(
            st.sampled_from(["PUBLIC", "CONFIDENTIAL", "FLASH", "2000-01-01T00:00:00Z"])
        )
    return dumps(data, True), str(data["sender"])


header_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=40)
    | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)
header_names = st.sampled_from(
    [wire.H_RETRY_OF, wire.H_REPLAY_OF, wire.H_ACTOR, wire.H_OPERATION, wire.H_REPLAY_TO]
) | st.text(max_size=20)
user_ids = st.none() | st.sampled_from([*CODES, "guest"]) | st.text(max_size=30)
messages = st.tuples(bodies, user_ids) | from_its_sender()

offsets = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets
)
lines = st.text(min_size=1, max_size=300).filter(str.strip)


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope[Payload]:
    """A valid envelope with hypothesis-chosen envelope fields (and letter subject/body)."""
    type_, version = draw(st.sampled_from(example_keys()))
    payload = example_payload(type_, version)
    if type_ == "correspondence.letter":
        payload = payload.model_validate(
            {**payload.model_dump(), "subject": draw(lines), "body": draw(lines)}
        )
    created = draw(moments)
    expires = draw(st.none() | st.timedeltas(timedelta(seconds=1), timedelta(days=3650)))
    return new_envelope(
        payload,
        sender=draw(st.from_regex(r"[a-z][a-z0-9-]{1,39}", fullmatch=True)),
        recipients=draw(st.lists(st.sampled_from(CODES), max_size=5, unique=True)),
        classification=draw(st.sampled_from(Classification)),
        precedence=draw(st.sampled_from(Precedence)),
        correlation_id=draw(st.none() | st.uuids()),
        causation_id=draw(st.none() | st.uuids()),
        expires_at=created + expires if expires is not None else None,
        message_id=draw(st.uuids(version=4)),
        created_at=created,
    )


def decode_or_contract_error(raw: bytes) -> None:
    """``decode`` returns an envelope or raises ContractError; anything else fails the test."""
    try:
        result: Envelope[Payload] | ContractError = REGISTRY.decode(raw)
    except ContractError as exc:
        result = exc
    assert isinstance(result, Envelope | ContractError)


def route(body: bytes, user_id: str | None, headers: dict[str, Any], seen: bool) -> Decision:
    """The routing decision for one message (decided once before when ``seen``); never raises."""
    window = IdWindow(16)
    incoming = Incoming(body=body, user_id=user_id, routing_key="x", headers=headers)
    if seen:
        decide(incoming, CTX, now=NOW, window=window)
    return decide(incoming, CTX, now=NOW, window=window)


# -- properties ----------------------------------------------------------------------------


class TestDecode:
    @budget
    @given(st.binary(max_size=4_096))
    def test_any_bytes(self, raw: bytes) -> None:
        """Any bytes decode to a valid envelope or raise ContractError, nothing else."""
        decode_or_contract_error(raw)

    @budget
    @given(json_values, st.booleans())
    def test_any_json_value(self, value: Any, ascii_only: bool) -> None:
        """Any JSON value (lone surrogates included) decodes or raises ContractError."""
        decode_or_contract_error(dumps(value, ascii_only))

    @budget
    @given(mutated())
    def test_mutated_valid_envelopes(self, raw: bytes) -> None:
        """A valid envelope with random deletions, replacements and additions decodes or raises ContractError."""
        decode_or_contract_error(raw)

    @budget
    @given(edge_dated())
    def test_datetimes_anywhere_in_the_calendar(self, raw: bytes) -> None:
        """A datetime member at any instant and offset (first and last days included) decodes or raises ContractError."""
        decode_or_contract_error(raw)


class TestCanonicalForm:
    @budget
    @given(envelopes())
    def test_round_trip(self, envelope: Envelope[Payload]) -> None:
        """encode then decode gives back an equal envelope."""
        assert REGISTRY.decode(envelope.encode()) == envelope

    @budget
    @given(envelopes())
    def test_canonical_form_is_stable(self, envelope: Envelope[Payload]) -> None:
        """encode(decode(encode(e))) == encode(e), and the canonical bytes are UTF-8 JSON."""
        wire_form = envelope.encode()
        assert REGISTRY.decode(wire_form).encode() == wire_form
        assert json.loads(wire_form.decode("utf-8")) == envelope.to_jsonable()


class TestDecide:
    @budget
    @given(messages, st.dictionaries(header_names, header_values, max_size=4), st.booleans())
    def test_never_raises(
        self, message: tuple[bytes, str | None], headers: dict[str, Any], seen: bool
    ) -> None:
        """decide returns a decision for any body, user id and headers: refused with a reason, dropped, or routed."""
        decision = route(*message, headers, seen)
        assert decision.events
        if decision.reason is not None:
            assert [d.headers[wire.H_REASON] for d in decision.dead_letters] == [
                decision.reason.value
            ]
        assert not (decision.deliveries and decision.reason is not None)

    @budget
    @given(messages, st.booleans())
    @example((b'{"\\ud800":1,"\\ud800":2}', "gs"), False)
    @example((b'{"type":"\\ud800","schema_version":1}', "gs"), False)
    def test_outputs_can_be_sent(self, message: tuple[bytes, str | None], seen: bool) -> None:
        """Everything decide asks the shell to publish encodes: AMQP headers and the audit batch (else the router process dies)."""
        decision = route(*message, {}, seen)
        for out in (*decision.deliveries, *decision.dead_letters):
            pika.BasicProperties(headers=out.headers, message_id=out.message_id).encode()
        assert len(decode_batch(encode_batch(decision.events))) == len(decision.events)

    @budget
    @given(from_its_sender(), st.sampled_from(["", "retry", "replay"]))
    def test_routed_copies_go_where_they_may(
        self, message: tuple[bytes, str | None], relay: str
    ) -> None:
        """A routed message reaches only directory participants cleared for it, from its own sender's user or the hub's relay, each copy with its token."""
        body, sender = message
        headers: dict[str, Any] = {}
        user_id = sender
        if relay:
            user_id = CTX.hub_user
            headers = {wire.H_RETRY_OF if relay == "retry" else wire.H_REPLAY_OF: "x"}
        decision = route(body, user_id, headers, False)
        if not decision.deliveries:
            return
        envelope = REGISTRY.decode(body)
        assert decision.reason is None and decision.routed
        assert decision.sender == envelope.sender
        # Identity: the publishing user is the sender's own, or the hub relaying.
        assert user_id == envelope.sender or (relay and user_id == CTX.hub_user)
        assert DIRECTORY.require(envelope.sender).can_send(envelope.type)
        # The routing key names the recipient and its precedence band (<code>[.urgent]).
        codes = [wire.delivery_recipient(d.routing_key) for d in decision.deliveries]
        assert len(codes) == len(set(codes))
        for code, copy in zip(codes, decision.deliveries, strict=True):
            participant = DIRECTORY.require(code)
            precedence = copy.headers.get(wire.H_PRECEDENCE, envelope.precedence.value)
            assert copy.routing_key == wire.delivery_key(code, precedence)
            assert participant.clearance.rank >= envelope.classification.rank
            assert copy.body == body
            assert copy.headers[wire.H_RECEIPT_TOKEN] == receipt_token(
                CTX.receipt_secret, str(envelope.message_id), code, envelope.sender
            )
        refused = {d.headers[wire.H_RECIPIENT] for d in decision.dead_letters}
        assert refused.isdisjoint(codes)
        assert set(envelope.recipients) <= {*codes, *refused} or relay == "replay"
