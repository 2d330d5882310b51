"""The hostile-input corpus: cases as data files, and how each becomes an AMQP publish.

One JSON file per case in ``corpus/`` (the format is in ``corpus/README.md``).
This module turns a case into bytes, properties and the identity to publish
as; it knows nothing about pytest, so the corpus can be rebuilt and inspected by
hand::

    python -m tests.reliability.hostile            # one line per case
"""

from __future__ import annotations

import base64
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liaison.core.events import body_id
from schemas.catalog import default_registry
from schemas.envelope import canonical_json
from schemas.errors import ContractError
from schemas.examples import example_envelope
from schemas.types import Classification, Precedence

CORPUS = Path(__file__).parent / "corpus"
#: The participant added to the directory for the signature cases.
SIGNER = "treaty-depositary"
#: A RabbitMQ user that exists on the broker but not in the directory.
GHOST = "ghost"
OUTCOMES = ("dead_letter", "delivered", "duplicate", "broker_refused", "parked", "own_retry")
#: Where a case is published unless it says otherwise.
INGRESS = "liaison.ingress"
#: Cases published here go to the hub's retry relay, not to the router.
RETRY = "liaison.retry"

_NOW = re.compile(r"^\$now(?:([+-])(\d+)([smhd]))?(\|naive)?$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class Keys:
    """The signer's key (its public half is in the test directory) and a stranger's."""

    signer: Ed25519PrivateKey
    stranger: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> Keys:
        """Fresh keys for one run."""
        return cls(Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate())


@dataclass(frozen=True)
class Built:
    """One case made concrete: what to publish, as whom, and what must happen."""

    name: str
    body: bytes
    publisher: str  # a participant code, "hub" or GHOST
    user_id: str | None  # a participant code, "hub", or None for no user_id property
    routing_key: str
    headers: dict[str, Any]
    #: ``liaison.ingress`` (the router) or ``liaison.retry`` (the retry relay).
    exchange: str
    content_type: str
    outcome: str
    reason: str | None
    reply_code: int | None
    recipients: tuple[str, ...]
    #: A message with the same id to publish (and see delivered) before this one.
    first: bytes | None = None
    #: Who publishes ``first`` (a participant code; default: the case's publisher).
    first_publisher: str = ""
    #: A hub bug this case shows, still open (its tests are expected to fail meanwhile).
    known_issue: str | None = None
    case: dict[str, Any] = field(default_factory=dict, repr=False)

    def audit_id(self) -> str:
        """The message id the router's audit events carry for this body."""
        try:
            return str(default_registry().decode(self.body).message_id)
        except ContractError:
            return body_id(self.body)


def load_cases(directory: Path = CORPUS) -> list[dict[str, Any]]:
    """Every case file, sorted by name."""
    cases = []
    for path in sorted(directory.glob("*.json")):
        case = json.loads(path.read_text(encoding="utf-8"))
        if case.get("name") != path.stem:
            raise ValueError(f"{path.name}: name {case.get('name')!r} is not the file's stem")
        cases.append(case)
    return cases


def build(case: dict[str, Any], keys: Keys, *, now: datetime | None = None) -> Built:
    """The publish for ``case``; ``now`` anchors ``$now`` dates (default: the clock)."""
    at = now or datetime.now(UTC)
    body = make_body(case["body"], keys, at)
    publish = case.get("publish", {})
    expect = case["expect"]
    if expect["outcome"] not in OUTCOMES:
        raise ValueError(f"{case['name']}: unknown outcome {expect['outcome']!r}")
    publisher = publish.get("as", "gs")
    first: bytes | None = None
    setup = case.get("first")
    if setup == "same":
        first = body
    elif setup is not None:
        first = make_body(setup, keys, at)
    return Built(
        name=case["name"],
        body=body,
        publisher=publisher,
        user_id=publish.get("user_id", publisher),
        routing_key=publish.get("routing_key", _type_of(case["body"])),
        headers={k: value(v, at) for k, v in publish.get("headers", {}).items()},
        exchange=publish.get("exchange", INGRESS),
        content_type=publish.get("content_type", "application/vnd.liaison.envelope+json"),
        outcome=expect["outcome"],
        reason=expect.get("reason"),
        reply_code=expect.get("reply_code"),
        recipients=tuple(expect.get("recipients", ())),
        first=first,
        first_publisher=str(case.get("first_as", publisher)),
        known_issue=case.get("known_issue"),
        case=case,
    )


def _type_of(spec: dict[str, Any]) -> str:
    envelope = spec.get("envelope")
    return (
        str(envelope.get("type", "correspondence.letter")) if envelope else "correspondence.letter"
    )


def make_body(spec: dict[str, Any], keys: Keys, now: datetime) -> bytes:
    """The bytes a body spec describes (see corpus/README.md)."""
    if "text" in spec:
        return str(spec["text"]).encode("utf-8")
    if "base64" in spec:
        return base64.b64decode(spec["base64"])
    if "generator" in spec:
        return _generate(spec["generator"], spec.get("params", {}))
    if "envelope" in spec:
        return _envelope(spec, keys, now)
    raise ValueError(f"body spec has no text, base64, generator or envelope: {sorted(spec)}")


def _generate(name: str, params: dict[str, Any]) -> bytes:
    if name == "oversized":
        # A JSON object of exactly ``size`` bytes: {"pad":"xxx…"}.
        size = int(params["size"])
        return b'{"pad":"' + b"x" * (size - 10) + b'"}'
    if name == "nested":
        depth = int(params["depth"])
        return b"[" * depth + b"]" * depth
    raise ValueError(f"unknown generator {name!r}")


def _envelope(spec: dict[str, Any], keys: Keys, now: datetime) -> bytes:
    template = spec["envelope"]
    envelope = example_envelope(
        template.get("type", "correspondence.letter"),
        int(template.get("version", 1)),
        sender=template.get("sender", "gs"),
        recipients=tuple(template.get("recipients", ("gs-archives",))),
        classification=Classification(template.get("classification", "INTERNAL")),
        precedence=Precedence(template.get("precedence", "ROUTINE")),
    )
    data = envelope.to_jsonable()
    data["created_at"] = value("$now-1s", now)
    for path, new in spec.get("set", {}).items():
        _set(data, path, value(new, now))
    for path in spec.get("delete", ()):
        _delete(data, path)
    for n in range(int(spec.get("extra_keys", 0))):
        data[f"k{n}"] = n
    signing = spec.get("sign")
    if signing is not None:
        key = {"valid": keys.signer, "wrong_key": keys.stranger}[signing]
        unsigned = canonical_json({k: v for k, v in data.items() if k != "signature"})
        data["signature"] = base64.b64encode(key.sign(unsigned)).decode("ascii")
    for path, new in spec.get("after_sign_set", {}).items():
        _set(data, path, value(new, now))
    text = _serialise(data, spec.get("format", "canonical"))
    for old, new in spec.get("replace", ()):
        if old not in text:
            raise ValueError(f"replace: {old!r} is not in the serialised envelope")
        text = text.replace(old, _text(new), 1)
    text = str(spec.get("prefix", "")) + text + str(spec.get("suffix", ""))
    encoding = str(spec.get("encoding", "utf-8"))
    raw = text.encode(encoding, errors="surrogatepass")
    if spec.get("bom"):
        raw = "\ufeff".encode(encoding) + raw
    if "truncate" in spec:
        raw = raw[: int(spec["truncate"])]
    return raw


def _serialise(data: dict[str, Any], form: str) -> str:
    if form == "canonical":
        return canonical_json(data).decode("utf-8")
    if form == "pretty":
        return json.dumps(data, indent=2, ensure_ascii=False)
    if form == "reversed":
        # Same object, keys in reverse order, spaces everywhere: not the canonical form.
        return json.dumps(dict(reversed(list(data.items()))), ensure_ascii=True, indent=1)
    raise ValueError(f"unknown format {form!r}")


def _text(new: Any) -> str:
    if isinstance(new, str):
        return new
    return "".join(part if isinstance(part, str) else str(value(part, None)) for part in new)


def value(spec: Any, now: datetime | None) -> Any:
    """A JSON value from the corpus, with its specials (``$now…``, ``$repeat`` …) resolved."""
    if isinstance(spec, str) and spec.startswith("$now"):
        return _time(spec, now)
    if isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in _SPECIALS:
        ((kind, arg),) = spec.items()
        return _SPECIALS[kind](arg, now)
    if isinstance(spec, dict):
        return {k: value(v, now) for k, v in spec.items()}
    if isinstance(spec, list):
        return [value(v, now) for v in spec]
    return spec


def _time(spec: str, now: datetime | None) -> str:
    match = _NOW.fullmatch(spec)
    if match is None or now is None:
        raise ValueError(f"bad time spec {spec!r}")
    sign, amount, unit, naive = match.groups()
    at = now
    if amount:
        delta = timedelta(**{_UNITS[unit]: int(amount)})
        at = now + delta if sign == "+" else now - delta
    if naive:
        return at.replace(tzinfo=None).isoformat()
    return at.isoformat().replace("+00:00", "Z")


def _nest(depth: Any, _now: datetime | None) -> Any:
    nested: Any = []
    for _ in range(int(depth) - 1):
        nested = [nested]
    return nested


#: ``{"$name": argument}`` values: generated rather than stored in the case file.
_SPECIALS: dict[str, Callable[[Any, datetime | None], Any]] = {
    "$repeat": lambda arg, _now: str(arg[0]) * int(arg[1]),
    "$list": lambda arg, now: [value(arg[0], now)] * int(arg[1]),
    "$nest": _nest,
    "$bytes": lambda arg, _now: base64.b64decode(arg),
    "$keys": lambda arg, _now: {f"h{n}": n for n in range(int(arg))},
}


def _steps(path: str) -> list[str | int]:
    return [int(part) if part.isdigit() else part for part in path.split(".")]


def _set(data: Any, path: str, new: Any) -> None:
    *parents, last = _steps(path)
    for step in parents:
        data = data[step]
    data[last] = new


def _delete(data: Any, path: str) -> None:
    *parents, last = _steps(path)
    for step in parents:
        data = data[step]
    del data[last]


def main() -> int:
    """Print one line per case: name, outcome, reason, body size."""
    keys = Keys.generate()
    for case in load_cases():
        built = build(case, keys)
        print(f"{built.name:48} {built.outcome:15} {built.reason or '':22} {len(built.body)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
