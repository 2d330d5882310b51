"""The registry: building it, and decoding bytes with a specific reason for every refusal."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest

from schemas.catalog import default_registry
from schemas.envelope import new_envelope
from schemas.errors import ContractError, ReasonCode
from schemas.examples import example_payload
from schemas.registry import Registry, nesting_depth, parse_json
from schemas.types import Line, Payload

REGISTRY = default_registry()


def _valid() -> dict[str, Any]:
    envelope = new_envelope(
        example_payload("chamber.question", 1), sender="chamber", recipients=("secretariat",)
    )
    return envelope.to_jsonable()


def _refusal(raw: bytes, **limits: int) -> ContractError:
    with pytest.raises(ContractError) as caught:
        REGISTRY.decode(raw, **limits)
    return caught.value


def _refusal_of(data: Any) -> ContractError:
    return _refusal(json.dumps(data).encode())


class _Memo(Payload):
    message_type: ClassVar[str] = "test.memo"
    version: ClassVar[int] = 1

    subject: Line


class _OtherMemo(Payload):
    message_type: ClassVar[str] = "test.memo"
    version: ClassVar[int] = 1

    title: Line


class TestBuilding:
    def test_two_models_for_one_key_is_an_error(self) -> None:
        """Registering the same (type, version) twice fails at build time."""
        with pytest.raises(ValueError, match="registered twice"):
            Registry.of([_Memo, _OtherMemo])

    def test_downgrade_needs_both_versions(self) -> None:
        """A downgrade from a version whose predecessor is unknown is refused."""
        with pytest.raises(ValueError, match="has no v1"):
            Registry.of([_Memo], {("test.memo", 2): lambda payload: payload})

    def test_types_and_versions_are_listed_sorted(self) -> None:
        """types() and versions() list what is registered, sorted."""
        assert REGISTRY.types() == sorted(REGISTRY.types())
        assert REGISTRY.versions("mission.cable") == [1, 2]
        assert REGISTRY.versions("no.such") == []

    def test_iteration_yields_every_model(self) -> None:
        """Iterating a registry yields each model once, in (type, version) order."""
        assert list(REGISTRY) == [REGISTRY.models[key] for key in sorted(REGISTRY.models)]

    def test_default_registry_is_built_once(self) -> None:
        """default_registry() returns the same object every time."""
        assert default_registry() is REGISTRY


class TestDecodeBeforeParsing:
    def test_too_large(self) -> None:
        """Bytes over the size limit are refused before parsing."""
        error = _refusal(b"{}" + b" " * 100, max_bytes=64)
        assert error.reason is ReasonCode.TOO_LARGE

    def test_not_utf8(self) -> None:
        """Bytes that are not UTF-8 are refused with the offending position."""
        error = _refusal(b'{"type": "\xff"}')
        assert error.reason is ReasonCode.NOT_UTF8
        assert "byte 10" in error.message

    def test_too_deep(self) -> None:
        """Nesting beyond the limit is refused before the parser recurses."""
        error = _refusal(b"[" * 40 + b"]" * 40)
        assert error.reason is ReasonCode.TOO_DEEP

    def test_brackets_inside_strings_do_not_count(self) -> None:
        """Depth ignores brackets inside strings, escaped quotes included."""
        assert nesting_depth(b'{"a": "[[[{{{\\"[[["}') == 1


class TestDecodeParsing:
    @pytest.mark.parametrize(
        "raw", [b"{", b"", b"{'a': 1}", b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}']
    )
    def test_not_json(self, raw: bytes) -> None:
        """Malformed JSON, and NaN or Infinity, are not JSON."""
        assert _refusal(raw).reason is ReasonCode.NOT_JSON

    def test_duplicate_key(self) -> None:
        """A key given twice in one object is refused, naming the key."""
        error = _refusal(b'{"type": "chamber.question", "type": "chamber.answer"}')
        assert (error.reason, error.path) == (ReasonCode.DUPLICATE_KEY, "type")

    def test_duplicate_key_in_a_nested_object(self) -> None:
        """Duplicate keys are caught at any depth."""
        error = _refusal(b'{"payload": {"text": "a", "text": "b"}}')
        assert (error.reason, error.path) == (ReasonCode.DUPLICATE_KEY, "text")

    @pytest.mark.parametrize("raw", [b"[]", b'"letter"', b"42", b"null"])
    def test_not_an_object(self, raw: bytes) -> None:
        """The top level must be a JSON object."""
        assert _refusal(raw).reason is ReasonCode.NOT_AN_OBJECT

    def test_parse_json_is_strict_about_constants(self) -> None:
        """parse_json refuses NaN even where Python's json would accept it."""
        with pytest.raises(ContractError, match="NaN"):
            parse_json(b"[NaN]", max_bytes=100, max_depth=5)


class TestDecodeValidation:
    def test_unknown_type(self) -> None:
        """A type nobody registered is unknown_type at path ``type``."""
        error = _refusal_of({**_valid(), "type": "chamber.rumour"})
        assert (error.reason, error.path) == (ReasonCode.UNKNOWN_TYPE, "type")

    def test_unsupported_version(self) -> None:
        """A known type at an unknown version is unsupported_version."""
        error = _refusal_of({**_valid(), "schema_version": 7})
        assert (error.reason, error.path) == (ReasonCode.UNSUPPORTED_VERSION, "schema_version")
        assert "[1]" in error.message

    @pytest.mark.parametrize(("field", "value"), [("type", 3), ("schema_version", "1")])
    def test_type_and_version_must_have_their_json_types(self, field: str, value: Any) -> None:
        """type must be a string and schema_version an integer before lookup."""
        error = _refusal_of({**_valid(), field: value})
        assert (error.reason, error.path) == (ReasonCode.SCHEMA_VIOLATION, field)

    def test_boolean_version_is_not_an_integer(self) -> None:
        """``true`` is not schema version 1."""
        error = _refusal_of({**_valid(), "schema_version": True})
        assert (error.reason, error.path) == (ReasonCode.SCHEMA_VIOLATION, "schema_version")

    def test_unknown_envelope_field(self) -> None:
        """An extra field in the envelope is unknown_field with its name as path."""
        error = _refusal_of({**_valid(), "priority": "high"})
        assert (error.reason, error.path) == (ReasonCode.UNKNOWN_FIELD, "priority")

    def test_unknown_payload_field(self) -> None:
        """An extra field in the payload is unknown_field with its dotted path."""
        data = _valid()
        data["payload"]["answer"] = "yes"
        error = _refusal_of(data)
        assert (error.reason, error.path) == (ReasonCode.UNKNOWN_FIELD, "payload.answer")

    def test_missing_timezone(self) -> None:
        """A creation time without a timezone is missing_timezone at ``created_at``."""
        error = _refusal_of({**_valid(), "created_at": "2025-03-12T09:00:00"})
        assert (error.reason, error.path) == (ReasonCode.MISSING_TIMEZONE, "created_at")

    def test_missing_field(self) -> None:
        """A missing required payload field is schema_violation at its path."""
        data = _valid()
        del data["payload"]["deputy"]
        error = _refusal_of(data)
        assert (error.reason, error.path) == (ReasonCode.SCHEMA_VIOLATION, "payload.deputy")

    def test_wrong_field_type(self) -> None:
        """A date that is not a date is schema_violation at its path."""
        data = _valid()
        data["payload"]["asked_on"] = "last tuesday"
        error = _refusal_of(data)
        assert (error.reason, error.path) == (ReasonCode.SCHEMA_VIOLATION, "payload.asked_on")

    def test_too_long_string(self) -> None:
        """A subject over its bound is schema_violation at its path."""
        data = _valid()
        data["payload"]["subject"] = "x" * 301
        error = _refusal_of(data)
        assert (error.reason, error.path) == (ReasonCode.SCHEMA_VIOLATION, "payload.subject")
        assert "300" in error.message

    def test_too_many_recipients(self) -> None:
        """More recipients than the envelope allows is schema_violation at ``recipients``."""
        error = _refusal_of({**_valid(), "recipients": [f"unit-{i}" for i in range(65)]})
        assert (error.reason, error.path) == (ReasonCode.SCHEMA_VIOLATION, "recipients")

    def test_count_of_further_errors_is_reported(self) -> None:
        """When several fields are wrong the message says how many more there are."""
        data = _valid()
        data["payload"]["deputy"] = ""
        data["payload"]["subject"] = ""
        assert "(and 1 more)" in _refusal_of(data).message


class TestRoundTrip:
    def test_encode_then_decode_is_equal(self) -> None:
        """Decoding an encoded envelope gives back an equal envelope with a typed payload."""
        envelope = new_envelope(example_payload("chamber.question", 1), sender="chamber")
        decoded = REGISTRY.decode(envelope.encode())
        assert decoded == envelope
        assert type(decoded.payload) is type(envelope.payload)

    def test_canonical_form_is_stable(self) -> None:
        """Re-encoding a decoded envelope gives the very same bytes."""
        raw = new_envelope(example_payload("chamber.question", 1), sender="chamber").encode()
        assert REGISTRY.decode(raw).encode() == raw

    def test_key_order_and_whitespace_do_not_matter(self) -> None:
        """A sender's own JSON layout decodes to the same canonical bytes."""
        envelope = new_envelope(example_payload("chamber.question", 1), sender="chamber")
        data = envelope.to_jsonable()
        pretty = json.dumps(dict(reversed(list(data.items()))), indent=4).encode()
        assert REGISTRY.decode(pretty).encode() == envelope.encode()


class TestLoneSurrogates:
    def test_escaped_lone_surrogate_is_refused(self) -> None:
        """A JSON escape of half a UTF-16 pair is no text: refused as not_utf8, never passed on."""
        from schemas.catalog import default_registry
        from schemas.errors import ContractError, ReasonCode

        with pytest.raises(ContractError) as caught:
            default_registry().decode(b'{"type": "x\\ud800"}')
        assert caught.value.reason is ReasonCode.NOT_UTF8

    def test_escaped_surrogate_pair_is_text(self) -> None:
        """A proper escaped pair (an emoji) is decoded as the character it stands for."""
        from schemas.catalog import default_registry
        from schemas.errors import ContractError, ReasonCode

        with pytest.raises(ContractError) as caught:
            default_registry().decode(b'{"type": "\\ud83d\\ude00"}')
        assert caught.value.reason is not ReasonCode.NOT_UTF8
