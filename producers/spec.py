"""A message described as data (a JSON or TOML file, or flags), checked before it leaves.

A message file::

    type = "correspondence.letter"          # required
    version = 1                             # optional: the newest version
    recipients = ["gs-archives"]            # optional: the hub's rules decide
    classification = "INTERNAL"             # optional
    precedence = "ROUTINE"                  # optional
    correlation_id = "…"                    # optional; so are causation_id, expires_at
    [payload]                               # required: the message body
    subject = "…"

becomes an envelope from the sender, validated by the registry exactly as the
router will validate it: an error names the field (``payload.subject``). Pure:
reading the file is the only I/O.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from schemas.envelope import Envelope
from schemas.errors import ContractError, ReasonCode
from schemas.registry import Registry
from schemas.types import Payload

#: The keys a message file may have.
SPEC_KEYS = frozenset(
    {
        "type",
        "version",
        "recipients",
        "classification",
        "precedence",
        "payload",
        "correlation_id",
        "causation_id",
        "expires_at",
    }
)


def load_spec_file(path: Path) -> dict[str, Any]:
    """A message file as data: TOML for ``*.toml``, JSON otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError(ReasonCode.NOT_UTF8, f"cannot read {path}: {exc}") from None
    try:
        data: Any = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        raise ContractError(ReasonCode.NOT_JSON, f"{path} is not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise ContractError(ReasonCode.NOT_AN_OBJECT, f"{path} must hold one object")
    return data


def spec_from_flags(
    *,
    type_: str | None,
    version: int | None = None,
    recipients: Sequence[str] = (),
    fields: Iterable[str] = (),
    payload_json: str | None = None,
) -> dict[str, Any]:
    """A message spec from flags: ``--payload-json`` as the base, then each ``--field``."""
    payload: dict[str, Any] = {}
    if payload_json is not None:
        try:
            parsed = json.loads(payload_json)
        except ValueError as exc:
            raise ContractError(
                ReasonCode.NOT_JSON, f"--payload-json is not JSON: {exc}", path="payload"
            ) from None
        if not isinstance(parsed, dict):
            raise ContractError(
                ReasonCode.NOT_AN_OBJECT, "--payload-json must be an object", path="payload"
            )
        payload = parsed
    for field in fields:
        set_field(payload, field)
    spec: dict[str, Any] = {"type": type_, "payload": payload}
    if version is not None:
        spec["version"] = version
    if recipients:
        spec["recipients"] = list(recipients)
    return spec


def set_field(payload: dict[str, Any], assignment: str) -> None:
    """Apply ``key=text`` (a string) or ``key:=json`` (any JSON value); dots nest objects."""
    key, sep, raw = assignment.partition("=")
    if not sep:
        raise ContractError(
            ReasonCode.SCHEMA_VIOLATION,
            f"--field {assignment!r} must be KEY=TEXT or KEY:=JSON",
            path="payload",
        )
    value: Any = raw
    if key.endswith(":"):
        key = key[:-1]
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise ContractError(
                ReasonCode.NOT_JSON, f"--field {key}:= needs JSON: {exc}", path=f"payload.{key}"
            ) from None
    parts = key.strip().split(".")
    if not all(parts):
        raise ContractError(
            ReasonCode.SCHEMA_VIOLATION, f"--field key {key!r} is empty", path="payload"
        )
    target = payload
    for part in parts[:-1]:
        child = target.setdefault(part, {})
        if not isinstance(child, dict):
            raise ContractError(
                ReasonCode.SCHEMA_VIOLATION,
                f"--field {key}: {part} is not an object",
                path=f"payload.{key}",
            )
        target = child
    target[parts[-1]] = value


def envelope_data(
    spec: Mapping[str, Any],
    *,
    sender: str,
    registry: Registry,
    message_id: UUID | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The envelope's JSON data for ``spec``: ids, time, sender and version filled in."""
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise ContractError(
            ReasonCode.UNKNOWN_FIELD,
            f"unknown key {unknown[0]!r}; a message has {', '.join(sorted(SPEC_KEYS))}",
            path=unknown[0],
        )
    type_ = spec.get("type")
    if not isinstance(type_, str) or not type_:
        raise ContractError(ReasonCode.SCHEMA_VIOLATION, "the message type is missing", path="type")
    versions = registry.versions(type_)
    if not versions:
        known = ", ".join(registry.types())
        raise ContractError(
            ReasonCode.UNKNOWN_TYPE, f"no message type {type_!r}; known: {known}", path="type"
        )
    if "payload" not in spec:
        raise ContractError(ReasonCode.SCHEMA_VIOLATION, "the payload is missing", path="payload")
    data: dict[str, Any] = {
        "message_id": str(message_id or uuid4()),
        "type": type_,
        "schema_version": spec.get("version", versions[-1]),
        "sender": sender,
        "recipients": spec.get("recipients", []),
        "created_at": (now or datetime.now(UTC)).isoformat(),
        "payload": spec["payload"],
    }
    for key in ("classification", "precedence", "correlation_id", "causation_id", "expires_at"):
        value = spec.get(key)
        if value is not None:
            data[key] = value.isoformat() if isinstance(value, datetime) else value
    return data


def build_envelope(
    spec: Mapping[str, Any], *, sender: str, registry: Registry
) -> Envelope[Payload]:
    """The validated envelope for ``spec``, or a ContractError naming the field."""
    return registry.validate(envelope_data(spec, sender=sender, registry=registry))


__all__ = [
    "SPEC_KEYS",
    "build_envelope",
    "envelope_data",
    "load_spec_file",
    "set_field",
    "spec_from_flags",
]
