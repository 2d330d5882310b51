"""Hostile input: the corpus in ``corpus/`` against the routing decision and the running router.

Each case is a data file naming the body, the AMQP identity and headers to
publish with, and what must happen: dead-lettered with its own reason code,
delivered (odd but valid), dropped as a duplicate, or refused by RabbitMQ before
the router sees it. The offline test checks every expectation against
``routing.decide`` in milliseconds; the broker test publishes the whole corpus,
interleaved with valid messages, through a real router in one go.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pika
import pika.exceptions
import pytest

from liaison.adapters.management import Management
from liaison.bootstrap import routing_context
from liaison.core.decide import Decision, Incoming, decide
from liaison.core.events import EventKind, decode_batch, encode_batch
from liaison.core.retry import Due, RelayContext, RelayDecision, Verdict, relay
from liaison.core.window import IdWindow
from liaison.credentials import participant_url
from liaison.directory import load_directory
from liaison.ops import dead_letter, identity_problem
from liaison.settings import Settings
from liaison.topology import apply
from schemas import wire
from schemas.errors import ReasonCode
from schemas.examples import example_envelope
from schemas.signing import public_key_to_b64, sign
from tests.integration.harness import depth, running, settle_depths, take, wait_for
from tests.reliability.hostile import GHOST, RETRY, SIGNER, Built, Keys, build, load_cases

#: Reasons that no input from a participant can produce at the router's door:
#: a missing inbox (topology), the hub's own failure, the window's drop (an outcome,
#: not a dead letter), and the consumers' own reasons.
NOT_FROM_INPUT = {
    ReasonCode.UNROUTABLE,
    ReasonCode.INTERNAL_ERROR,
    ReasonCode.DUPLICATE,
    ReasonCode.HANDLER_ERROR,
    ReasonCode.NO_HANDLER,
    ReasonCode.NOT_FROM_HUB,
    ReasonCode.DELIVERY_LIMIT,
}
VALID_SENDERS = ("gs", "emb-berlin", "chamber", SIGNER)
VALID_RECIPIENTS = ("gs-archives", "gs-legal", "dir-political")
#: The bundled rules copy every letter to the procedures service (the registry).
REGISTRY = "gs-procedures"


def directory_text(keys: Keys) -> str:
    """The bundled directory plus a participant that signs its messages."""
    bundled = resources.files("liaison.data").joinpath("directory.toml").read_text("utf-8")
    public = public_key_to_b64(keys.signer.public_key())
    return (
        bundled
        + f"""
[[participant]]
code = "{SIGNER}"
name = "Dépositaire des traités (signs every message)"
kind = "service"
clearance = "CONFIDENTIAL"
may_send = ["correspondence.*", "receipt.*", "treaty.*"]
public_key = "{public}"
"""
    )


@pytest.fixture(scope="module")
def keys() -> Keys:
    """The signer's key and a stranger's, for this module."""
    return Keys.generate()


@pytest.fixture(scope="module")
def cases() -> list[dict[str, Any]]:
    """Every corpus file."""
    return load_cases()


def user_of(built: Built, settings: Settings) -> str | None:
    """The AMQP ``user_id`` property a case publishes with."""
    if built.user_id is None:
        return None
    if built.user_id == "hub":
        return settings.hub_user
    return settings.user_for(built.user_id)


#: Cases that reach the router (the broker refuses the others; see the broker test).
ROUTED_CASES = [
    case["name"] for case in load_cases() if case["expect"]["outcome"] != "broker_refused"
]


def _marks(name: str) -> list[pytest.MarkDecorator]:
    issue = next(case.get("known_issue") for case in load_cases() if case["name"] == name)
    return [pytest.mark.xfail(reason=f"known hub bug: {issue}", strict=True)] if issue else []


class TestCorpus:
    def test_size_and_coverage(self, cases: list[dict[str, Any]], keys: Keys) -> None:
        """At least 60 cases, unique bodies, and every reason a participant's input can cause is covered."""
        assert len(cases) >= 60
        built = [build(case, keys) for case in cases]
        bodies = [b.body for b in built if b.outcome != "broker_refused"]
        assert len(bodies) == len(set(bodies))
        covered = {b.reason for b in built if b.outcome == "dead_letter" and not b.known_issue}
        assert covered == {r.value for r in ReasonCode} - {r.value for r in NOT_FROM_INPUT}
        categories = {"decoding", "validation", "authorisation", "headers", "broker"}
        for case in cases:
            assert case["description"].strip(), case["name"]
            assert case["category"] in categories, case["name"]

    @pytest.mark.parametrize(
        "name", [pytest.param(name, marks=_marks(name)) for name in ROUTED_CASES]
    )
    def test_routing_decision(self, name: str, keys: Keys, tmp_path: Path) -> None:
        """Offline: routing.decide gives the case exactly the outcome and reason its file states, and its audit events encode."""
        (case,) = [case for case in load_cases() if case["name"] == name]
        path = tmp_path / "directory.toml"
        path.write_text(directory_text(keys), encoding="utf-8")
        settings = Settings(
            directory_path=path, user_prefix="t-", hub_key_path=tmp_path / "hub.key"
        )
        now = datetime.now(UTC)
        built = build(case, keys, now=now)
        if built.exchange == RETRY:
            _check_relayed(built, settings, now)
            return
        ctx = routing_context(settings)
        window = IdWindow(16)
        if built.first is not None:  # routed first, as the broker test does
            first_user = settings.user_for(built.first_publisher)
            assert decide(Incoming(built.first, first_user), ctx, now=now, window=window).routed
        decision = decide(
            Incoming(
                body=built.body,
                user_id=user_of(built, settings),
                routing_key=built.routing_key,
                headers=built.headers,
            ),
            ctx,
            now=now,
            window=window,
        )
        _check_decision(built, decision)
        # What the router publishes to the audit queue, and the writer reads back.
        assert len(decode_batch(encode_batch(decision.events))) == len(decision.events)


def _check_relayed(built: Built, settings: Settings, now: datetime) -> None:
    """Offline: the retry relay gives a case published to liaison.retry its stated fate."""
    ctx = RelayContext(routing_context(settings).directory, settings.hub_user, "t-")
    user_id = user_of(built, settings)
    decision = relay(Due(built.body, user_id, built.headers), ctx, now=now)
    name, out = built.name, decision.out
    assert decode_batch(encode_batch(decision.events)) == list(decision.events), name
    if built.outcome == "own_retry":
        assert decision.verdict is Verdict.RETRY, name
        assert (out.exchange, out.routing_key) == (wire.DELIVER_EXCHANGE, built.publisher), name
        assert set(out.headers) == {wire.H_OWN_RETRY, wire.H_ATTEMPT}, name
        return
    assert out.exchange == wire.DEAD_EXCHANGE, name
    assert out.headers[wire.H_REASON] == built.reason, name
    assert all(k.startswith("x-liaison-") for k in out.headers), (name, out.headers)
    if built.outcome == "parked":
        assert decision.verdict is Verdict.PARK, name
        assert out.headers[wire.H_PARKED_BY] == built.publisher, name
        assert [e.event for e in decision.events] == [EventKind.PARKED], name
    else:
        assert decision.verdict is Verdict.REFUSED, name
        assert [(e.event, e.reason) for e in decision.events] == [
            (EventKind.REJECTED, built.reason)
        ], name
    _check_operator_view(built, decision, settings)


def _check_operator_view(built: Built, decision: RelayDecision, settings: Settings) -> None:
    """What `dlq list` and `dlq retry` make of the relay's dead letter: never the body's
    claimed sender, never relayed."""
    out = decision.out
    letter = dead_letter(
        message_id=out.message_id,
        type_=out.type,
        timestamp=None,
        headers=out.headers,
        body=out.body,
        hub_user=settings.hub_user,
        user_prefix="t-",
        user_id=settings.hub_user,
    )
    assert identity_problem(letter, hub_user=settings.hub_user, user_prefix="t-"), built.name
    assert letter.sender != letter.claimed_sender, built.name


def _check_decision(built: Built, decision: Decision) -> None:
    name = built.name
    if built.outcome == "duplicate":
        assert [e.event for e in decision.events] == [EventKind.DUPLICATE], name
        assert not decision.dead_letters and not decision.deliveries, name
        return
    delivered = sorted(d.routing_key for d in decision.deliveries)
    assert delivered == sorted(built.recipients), (name, delivered)
    for delivery in decision.deliveries:
        # Nothing a participant put in its headers travels on to the recipient: the
        # copy carries the hub's delivery token only.
        assert set(delivery.headers) == {wire.H_RECEIPT_TOKEN}, (name, delivery.headers)
    if built.outcome == "delivered":
        assert not decision.dead_letters, (name, decision.dead_letters[0].headers)
        return
    reasons = [d.headers[wire.H_REASON] for d in decision.dead_letters]
    assert reasons == [built.reason], (name, reasons)
    rejected = [e for e in decision.events if e.event is EventKind.REJECTED]
    assert [e.reason for e in rejected] == [built.reason], name


# -- through the running router -------------------------------------------------------------


@dataclass
class Hub:
    """The test vhost with the signer's directory applied, and a stale user left behind."""

    settings: Settings
    ghost_url: str


@pytest.fixture
def hub(settings: Settings, tmp_path: Path, keys: Keys) -> Hub:
    """Topology for the directory with the signer, plus the 'ghost' user (in no directory)."""
    path = tmp_path / "directory.toml"
    path.write_text(directory_text(keys), encoding="utf-8")
    s = settings.replace(directory_path=path)
    apply(s, load_directory(path))
    user, password = s.user_for(GHOST), secrets.token_urlsafe(16)
    with Management(s) as api:
        api.put_user(user, password, "")
        api.put_permissions(s.vhost, user, configure="^$", write=r"^liaison\.ingress$", read="^$")
    parts = urlsplit(s.amqp_url)
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname}:{parts.port}"
    return Hub(s, urlunsplit((parts.scheme, netloc, parts.path, "", "")))


class Publishers:
    """One confirming channel per identity; a fresh channel for cases the broker refuses."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._connections: dict[str, pika.BlockingConnection] = {}
        self._channels: dict[str, Any] = {}

    def url(self, publisher: str) -> str:
        s = self._hub.settings
        if publisher == "hub":
            return s.amqp_url
        if publisher == GHOST:
            return self._hub.ghost_url
        return participant_url(s, publisher)

    def connection(self, publisher: str) -> pika.BlockingConnection:
        if publisher not in self._connections:
            self._connections[publisher] = pika.BlockingConnection(
                pika.URLParameters(self.url(publisher))
            )
        return self._connections[publisher]

    def channel(self, publisher: str) -> Any:
        channel = self._channels.get(publisher)
        if channel is None or not channel.is_open:
            channel = self.connection(publisher).channel()
            channel.confirm_delivery()
            self._channels[publisher] = channel
        return channel

    def publish(self, built: Built, body: bytes | None = None, as_: str | None = None) -> None:
        s = self._hub.settings
        user_id = s.user_for(as_) if as_ is not None else user_of(built, s)
        self.channel(as_ or built.publisher).basic_publish(
            wire.INGRESS_EXCHANGE if as_ is not None else built.exchange,
            built.routing_key,
            built.body if body is None else body,
            pika.BasicProperties(
                content_type=built.content_type,
                delivery_mode=2,
                user_id=user_id,
                headers=built.headers or None,
                message_id=f"case:{built.name}",
            ),
            mandatory=True,
        )

    def refused(self, built: Built) -> int:
        """Publish a case the broker must refuse; the reply code it refused with."""
        try:
            self.publish(built)
        except pika.exceptions.ChannelClosedByBroker as exc:
            return int(exc.reply_code)
        return 0

    def close(self) -> None:
        for connection in self._connections.values():
            if connection.is_open:
                connection.close()


@pytest.fixture
def publishers(hub: Hub) -> Iterator[Publishers]:
    """Publishing connections, closed after the test."""
    found = Publishers(hub)
    yield found
    found.close()


def valid_message(n: int, keys: Keys) -> tuple[str, str, bytes]:
    """The n-th valid message of the batch: (sender, recipient, body); the signer's are signed."""
    sender = VALID_SENDERS[n % len(VALID_SENDERS)]
    recipient = VALID_RECIPIENTS[n % len(VALID_RECIPIENTS)]
    envelope = example_envelope("correspondence.letter", 1, sender=sender, recipients=(recipient,))
    if sender == SIGNER:
        envelope = sign(envelope, keys.signer)
    return sender, recipient, envelope.encode()


def drain_all(settings: Settings, queues: list[str]) -> dict[str, list[tuple[Any, bytes]]]:
    """Every message now in ``queues``."""
    return {queue: take(settings, queue, depth(settings, queue)) for queue in queues}


def run_batch(hub: Hub, publishers: Publishers, built: list[Built], keys: Keys, log: Path) -> None:
    """Publish ``built`` interleaved with valid messages through a running router; check all."""
    s = hub.settings
    with running(s, "serve", log_path=str(log)) as router:
        # Duplicates need their first copy routed (and in the window) before them.
        firsts = [b for b in built if b.first is not None]
        for b in firsts:
            publishers.publish(b, b.first, as_=b.first_publisher)
        take(s, wire.inbox_queue("gs-archives"), len(firsts))
        take(s, wire.inbox_queue(REGISTRY), len(firsts))  # the registry's copies of them
        # ... and acked, which puts them in the window: their audit batches stop arriving.
        settle_depths(s, [wire.INGRESS_QUEUE, wire.AUDIT_QUEUE, wire.DEAD_QUEUE])
        valid, refused = publish_interleaved(s, publishers, built, keys)
        dead_cases = [b for b in built if b.outcome in {"dead_letter", "parked"}]
        wait_for(
            lambda: router.popen.poll() is not None or depth(s, wire.DEAD_QUEUE) >= len(dead_cases),
            timeout=120,
            what="every hostile case in dead letters",
        )
        assert router.popen.poll() is None, f"the router died:\n{router.log()[-3000:]}"
        dead = take(s, wire.DEAD_QUEUE, len(dead_cases))
        own = [b for b in built if b.outcome == "own_retry"]
        wait_for(
            lambda: sum(depth(s, wire.inbox_queue(b.publisher)) for b in own) >= len(own),
            what="every own retry back in its inbox",
        )
        wait_for(lambda: depth(s, wire.INGRESS_QUEUE) == 0, what="ingress to empty")
        inboxes = sorted({*VALID_RECIPIENTS, *(r for b in built for r in b.recipients)})
        # Nothing more may arrive: wait until no hub queue or inbox moves any more.
        at_rest = settle_depths(
            s,
            [
                wire.INGRESS_QUEUE,
                wire.DEAD_QUEUE,
                wire.AUDIT_QUEUE,
                *(wire.inbox_queue(code) for code in inboxes),
            ],
        )
        assert at_rest[wire.DEAD_QUEUE] == 0, "more dead letters than hostile cases"
        delivered = drain_all(s, [wire.inbox_queue(code) for code in inboxes])
        assert router.popen.poll() is None, f"the router died:\n{router.log()[-3000:]}"
        assert router.stop() == 0
    audit = take(s, wire.AUDIT_QUEUE, depth(s, wire.AUDIT_QUEUE))
    events = {
        (e["event"], e["message_id"], e.get("reason"))
        for _props, body in audit
        for e in json.loads(body)["events"]
    }
    for b in built:
        if b.outcome == "broker_refused":
            assert refused[b.name] == b.reply_code, (b.name, refused[b.name])
    check_dead_letters(s, dead_cases, dead, events)
    check_deliveries(built, valid, delivered, events)


def publish_interleaved(
    s: Settings, publishers: Publishers, built: list[Built], keys: Keys
) -> tuple[dict[bytes, str], dict[str, int]]:
    """Each case followed by a valid message; (valid body → recipient, refused case → code)."""
    valid: dict[bytes, str] = {}
    refused: dict[str, int] = {}
    for n, b in enumerate(built):
        if b.outcome == "broker_refused":
            refused[b.name] = publishers.refused(b)
        else:
            publishers.publish(b)
        sender, recipient, body = valid_message(n, keys)
        publishers.channel(sender).basic_publish(
            wire.INGRESS_EXCHANGE,
            "correspondence.letter",
            body,
            pika.BasicProperties(
                content_type=wire.CONTENT_TYPE, delivery_mode=2, user_id=s.user_for(sender)
            ),
            mandatory=True,
        )
        valid[body] = recipient
    return valid, refused


def check_dead_letters(
    s: Settings,
    dead_cases: list[Built],
    dead: list[tuple[Any, bytes]],
    events: set[tuple[str, str, str | None]],
) -> None:
    """Each hostile case dead-lettered once, with its own reason, and audited as rejected."""
    by_body = {body: props for props, body in dead}
    for b in dead_cases:
        props = by_body.get(b.body)
        assert props is not None, f"{b.name}: not in dead letters"
        headers = props.headers
        assert headers[wire.H_REASON] == b.reason, (b.name, headers[wire.H_REASON])
        assert headers[wire.H_REASON_TEXT], b.name
        # The dead letter carries the hub's headers only, never the sender's.
        assert all(k.startswith("x-liaison-") for k in headers), (b.name, headers)
        assert props.user_id == s.hub_user, b.name
        if b.outcome == "parked":
            assert headers[wire.H_PARKED_BY] == b.publisher, b.name
            assert ("parked", b.audit_id(), b.reason) in events, f"{b.name}: no parked event"
            continue
        assert headers[wire.H_ORIGINAL_USER] == (user_of(b, s) or ""), b.name
        assert ("rejected", b.audit_id(), b.reason) in events, f"{b.name}: no rejected event"


def check_deliveries(
    built: list[Built],
    valid: dict[bytes, str],
    delivered: dict[str, list[tuple[Any, bytes]]],
    events: set[tuple[str, str, str | None]],
) -> None:
    """Every valid message and odd-but-valid case delivered once, untouched; duplicates dropped."""
    received: dict[bytes, list[tuple[str, Any]]] = {}
    for queue, messages in delivered.items():
        for props, body in messages:
            received.setdefault(body, []).append((queue, props))
    for body, recipient in valid.items():
        # Every letter also reaches the registry (the procedures service's observer copy).
        assert sorted(q for q, _p in received.get(body, [])) == sorted(
            [wire.inbox_queue(recipient), wire.inbox_queue(REGISTRY)]
        )
    for b in built:
        if b.outcome == "duplicate":
            assert b.body not in received, b.name
            assert ("duplicate", b.audit_id(), None) in events, f"{b.name}: no duplicate event"
            continue
        copies = sorted(q for q, _p in received.get(b.body, []))
        assert copies == sorted(wire.inbox_queue(r) for r in b.recipients), (b.name, copies)
        if b.outcome == "own_retry":
            # Only what the relay vouches for; no CC/BCC, no forged relay header.
            for _queue, props in received.get(b.body, []):
                assert set(props.headers) == {wire.H_OWN_RETRY, wire.H_ATTEMPT}, b.name
            continue
        for _queue, props in received.get(b.body, []):
            # The sender's headers stay behind; the hub adds its delivery token only.
            assert set(props.headers or {}) == {wire.H_RECEIPT_TOKEN}, (b.name, props.headers)
        if b.recipients:
            assert ("delivered", b.audit_id(), None) in events, f"{b.name}: no delivered event"
    extra = set(received) - set(valid) - {b.body for b in built}
    assert not extra, f"{len(extra)} unexpected deliveries"


@pytest.mark.timeout(600)
def test_corpus_through_the_router(
    hub: Hub, publishers: Publishers, cases: list[dict[str, Any]], keys: Keys, tmp_path: Path
) -> None:
    """The whole corpus interleaved with valid messages through one running router: each case meets its fate with its own reason, audited; every valid message is delivered; the router survives."""
    built = [build(case, keys) for case in cases if not case.get("known_issue")]
    run_batch(hub, publishers, built, keys, tmp_path / "router.log")
