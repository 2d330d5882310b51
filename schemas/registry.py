"""The registry of message types, and the one function that turns bytes into a message.

``decode`` raises only :class:`~schemas.errors.ContractError`. Size and nesting are
checked on the raw bytes before any parser runs, so a hostile message costs at
most one linear scan.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jiter
from pydantic import ValidationError

from schemas.envelope import Envelope
from schemas.errors import ContractError, ReasonCode
from schemas.types import Payload

DEFAULT_MAX_BYTES = 256 * 1024
DEFAULT_MAX_DEPTH = 32

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")

#: Turns a payload of version N+1 into version N of the same type.
Downgrade = Callable[[Payload], Payload]


@dataclass(frozen=True)
class Registry:
    """(type, version) → payload model, plus the downgrades between versions."""

    models: Mapping[tuple[str, int], type[Payload]]
    downgrades: Mapping[tuple[str, int], Downgrade] = field(default_factory=dict)

    @classmethod
    def of(
        cls, models: Iterable[type[Payload]], downgrades: Mapping[tuple[str, int], Downgrade] = {}
    ) -> Registry:
        """Build a registry; two models claiming the same (type, version) is an error."""
        table: dict[tuple[str, int], type[Payload]] = {}
        for model in models:
            key = (model.message_type, model.version)
            if key in table:
                raise ValueError(f"{key} registered twice: {table[key]} and {model}")
            table[key] = model
        for type_, version in downgrades:
            if (type_, version) not in table or (type_, version - 1) not in table:
                raise ValueError(f"downgrade from {type_} v{version} has no v{version - 1}")
        return cls(models=table, downgrades=dict(downgrades))

    def __iter__(self) -> Iterator[type[Payload]]:
        return iter(self.models[key] for key in sorted(self.models))

    def types(self) -> list[str]:
        """Every registered message type name, sorted."""
        return sorted({type_ for type_, _ in self.models})

    def versions(self, type_: str) -> list[int]:
        """The versions registered for ``type_``, ascending."""
        return sorted(v for t, v in self.models if t == type_)

    def model(self, type_: str, version: int) -> type[Payload]:
        """The model for (type, version), or a ContractError saying which part is unknown."""
        try:
            return self.models[(type_, version)]
        except KeyError:
            if not self.versions(type_):
                raise ContractError(
                    ReasonCode.UNKNOWN_TYPE, f"no message type {type_!r}", path="type"
                ) from None
            raise ContractError(
                ReasonCode.UNSUPPORTED_VERSION,
                f"{type_} has versions {self.versions(type_)}, not {version}",
                path="schema_version",
            ) from None

    def decode(
        self,
        raw: bytes,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> Envelope[Payload]:
        """Bytes from the wire → a validated envelope with its typed payload."""
        return self.decode_with_data(raw, max_bytes=max_bytes, max_depth=max_depth)[0]

    def decode_with_data(
        self,
        raw: bytes,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> tuple[Envelope[Payload], dict[str, Any]]:
        """Like ``decode``, also returning the JSON object exactly as it arrived.

        Signatures are checked over that object (not over the model, which
        normalises values), and the audit log keeps it for replay.
        """
        data = parse_json(raw, max_bytes=max_bytes, max_depth=max_depth)
        envelope = self.validate(data)
        return envelope, data

    def validate(self, data: Any) -> Envelope[Payload]:
        """Parsed JSON → a validated envelope, or a ContractError with reason and path."""
        if not isinstance(data, dict):
            raise ContractError(ReasonCode.NOT_AN_OBJECT, "the envelope must be a JSON object")
        type_, version = data.get("type"), data.get("schema_version")
        if not isinstance(type_, str):
            raise ContractError(ReasonCode.SCHEMA_VIOLATION, "type must be a string", path="type")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ContractError(
                ReasonCode.SCHEMA_VIOLATION,
                "schema_version must be an integer",
                path="schema_version",
            )
        model = self.model(type_, version)
        try:
            return _envelope_class(model).model_validate(data)
        except ValidationError as exc:
            raise contract_error_from(exc) from None

    def adapt(self, envelope: Envelope[Payload], known: Iterable[int]) -> Envelope[Payload]:
        """The newest version of ``envelope`` that a consumer knowing ``known`` can read.

        The rule: a version N+1 may only add to version N, and ships a downgrade to
        N. A consumer receives the highest version it knows that is not newer than
        the message, reached by applying downgrades one step at a time; the fields
        the newer version added are dropped, and so is the signature, which covered
        the original (the hub verified it on arrival). A message older than every
        version the consumer knows cannot be adapted: UNSUPPORTED_VERSION.
        """
        wanted = [v for v in known if v <= envelope.schema_version]
        if not wanted:
            raise ContractError(
                ReasonCode.UNSUPPORTED_VERSION,
                f"{envelope.type} v{envelope.schema_version} is older than any known version",
                path="schema_version",
            )
        target = max(wanted)
        payload = envelope.payload
        version = envelope.schema_version
        while version > target:
            step = self.downgrades.get((envelope.type, version))
            if step is None:
                raise ContractError(
                    ReasonCode.UNSUPPORTED_VERSION,
                    f"{envelope.type} v{version} has no downgrade to v{version - 1}",
                    path="schema_version",
                )
            payload = step(payload)
            version -= 1
        if version == envelope.schema_version:
            return envelope
        model = self.model(envelope.type, version)
        data = envelope.model_dump(exclude={"payload", "signature"})
        return Envelope[model](  # type: ignore[valid-type]
            **{**data, "schema_version": version, "payload": payload}
        )


@cache
def _envelope_class(model: type[Payload]) -> type[Envelope[Payload]]:
    # Parametrising the generic costs a few microseconds per call; once per model is enough.
    return Envelope[model]  # type: ignore[valid-type]


def parse_json(raw: bytes, *, max_bytes: int, max_depth: int) -> Any:
    """Check size, encoding and nesting on the bytes, then parse strictly.

    The refusals, in this order: ``too_large``, ``not_utf8``, ``too_deep``,
    ``not_json`` (duplicate keys, NaN and Infinity included), ``not_utf8`` for an
    escaped lone surrogate.
    """
    if len(raw) > max_bytes:
        raise ContractError(
            ReasonCode.TOO_LARGE, f"{len(raw)} bytes is over the limit of {max_bytes}"
        )
    # Fewer opening brackets than the limit cannot nest deeper than it: typical
    # messages skip the scan, which costs more than parsing them.
    openings = raw.count(b"{") + raw.count(b"[")
    depth = nesting_depth(raw) if openings > max_depth else 0
    if depth <= max_depth and not _SURROGATE_ESCAPE.search(raw):
        # The fast path: jiter (Rust, the parser inside pydantic) checks UTF-8 and
        # refuses duplicate keys, NaN and Infinity as the strict parser does, and gives
        # equal values for everything both accept, for a third of the time. Whatever
        # it refuses goes on to the strict parser, which finds and words the refusal
        # (reason, text, path) exactly as it always has; so do escaped surrogates,
        # whose handling differs in jiter.
        try:
            return jiter.from_json(raw, catch_duplicate_keys=True, allow_inf_nan=False)
        except ValueError:
            pass
    return _parse_strictly(raw, depth, max_depth)


def _parse_strictly(raw: bytes, depth: int, max_depth: int) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractError(
            ReasonCode.NOT_UTF8, f"not UTF-8 at byte {exc.start}: {exc.reason}"
        ) from None
    if depth > max_depth:
        raise ContractError(
            ReasonCode.TOO_DEEP, f"nested {depth} levels deep, the limit is {max_depth}"
        )
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except ContractError:
        raise
    except (ValueError, RecursionError) as exc:
        raise ContractError(ReasonCode.NOT_JSON, f"not JSON: {exc}") from None
    if _SURROGATE_ESCAPE.search(raw):
        # JSON may escape UTF-16 halves; alone they are no character, and text holding
        # one cannot be encoded again (headers, audit records, replies would all fail).
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ContractError(
                ReasonCode.NOT_UTF8, "an escaped lone surrogate (\\uD800-\\uDFFF) is not text"
            ) from None
    return data


def nesting_depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in ``raw``, ignoring brackets inside strings."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b"", raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ContractError(
                    ReasonCode.DUPLICATE_KEY, f"key {key!r} appears twice", path=key
                )
            seen.add(key)
    return result


def _no_constants(name: str) -> Any:
    raise ContractError(ReasonCode.NOT_JSON, f"{name} is not valid JSON")


def contract_error_from(exc: ValidationError) -> ContractError:
    """The first pydantic error as a ContractError with a specific reason and a dotted path."""
    first = exc.errors(include_url=False)[0]
    path = ".".join(str(part) for part in first["loc"]) or None
    kind = first["type"]
    if kind == "extra_forbidden":
        reason = ReasonCode.UNKNOWN_FIELD
    elif kind == "timezone_aware":
        reason = ReasonCode.MISSING_TIMEZONE
    else:
        reason = ReasonCode.SCHEMA_VIOLATION
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more)" if more else ""
    return ContractError(reason, f"{first['msg']}{suffix}", path=path)
