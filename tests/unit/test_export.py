"""``liaison schemas export`` and ``list``: JSON Schemas and an AsyncAPI doc that hold together."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from liaison.cli import main
from schemas import wire
from schemas.catalog import default_registry
from schemas.errors import ReasonCode
from schemas.export import ASYNCAPI_FILENAME, message_key, schema_filename

REGISTRY = default_registry()
KEYS = sorted(REGISTRY.models)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(document: Any, ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node = document
    for part in ref[2:].split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"{ref}: {key} is not inside an object"
        assert key in node, f"{ref}: no {key!r}"
        node = node[key]
    return node


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory ``liaison schemas export`` wrote into."""
    directory = tmp_path_factory.mktemp("export") / "contracts"
    result = CliRunner().invoke(main, ["schemas", "export", str(directory)])
    assert result.exit_code == 0, result.output
    return directory


@pytest.fixture(scope="module")
def asyncapi(exported: Path) -> dict[str, Any]:
    """The exported AsyncAPI document, parsed."""
    document: dict[str, Any] = json.loads((exported / ASYNCAPI_FILENAME).read_text("utf-8"))
    return document


class TestJsonSchemas:
    def test_one_file_per_type_and_version(self, exported: Path) -> None:
        """The directory holds one schema per registered (type, version) and the AsyncAPI file."""
        expected = {schema_filename(*key) for key in KEYS} | {ASYNCAPI_FILENAME}
        assert {path.name for path in exported.iterdir()} == expected

    @pytest.mark.parametrize(("type_", "version"), KEYS)
    def test_each_is_a_titled_envelope_schema(
        self, exported: Path, type_: str, version: int
    ) -> None:
        """Each file is a JSON Schema object with a title, pinning its type and version."""
        schema = json.loads((exported / schema_filename(type_, version)).read_text("utf-8"))
        assert schema["$schema"].startswith("https://json-schema.org/")
        assert schema["title"] == f"{type_} v{version}"
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False
        assert schema["properties"]["type"]["const"] == type_
        assert schema["properties"]["schema_version"]["const"] == version
        assert {"message_id", "sender", "created_at", "payload"} <= set(schema["required"])
        for ref in _refs(schema):
            assert isinstance(_resolve(schema, ref), dict)

    def test_export_is_reproducible(self, exported: Path, tmp_path: Path) -> None:
        """Exporting twice writes byte-identical files."""
        result = CliRunner().invoke(main, ["schemas", "export", str(tmp_path)])
        assert result.exit_code == 0, result.output
        for path in exported.iterdir():
            assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


class TestAsyncApi:
    def test_header(self, asyncapi: dict[str, Any]) -> None:
        """The document is AsyncAPI 3.0.0 with a title, the package version and content type."""
        assert asyncapi["asyncapi"] == "3.0.0"
        assert asyncapi["info"]["title"]
        assert asyncapi["info"]["version"] == metadata.version("liaison")
        assert asyncapi["defaultContentType"] == wire.CONTENT_TYPE

    def test_every_ref_resolves_inside_the_document(self, asyncapi: dict[str, Any]) -> None:
        """No $ref dangles: every one points at an object in the same document."""
        refs = list(_refs(asyncapi))
        assert refs
        for ref in refs:
            assert isinstance(_resolve(asyncapi, ref), dict), ref

    def test_every_registered_message_is_named(self, asyncapi: dict[str, Any]) -> None:
        """components.messages has one message per (type, version), naming the type."""
        messages = asyncapi["components"]["messages"]
        for type_, version in KEYS:
            message = messages[message_key(type_, version)]
            assert message["name"] == type_
            assert message["title"] == f"{type_} v{version}"
            payload = _resolve(asyncapi, message["payload"]["$ref"])
            assert payload["properties"]["type"]["const"] == type_

    def test_channels_follow_the_wire_contract(self, asyncapi: dict[str, Any]) -> None:
        """Ingress, the inboxes and dead letters carry the names from schemas.wire."""
        channels = asyncapi["channels"]
        assert channels["ingress"]["address"] == wire.INGRESS_EXCHANGE
        assert channels["ingress"]["bindings"]["amqp"]["exchange"]["type"] == "topic"
        assert channels["inbox"]["address"] == wire.inbox_queue("{participant}")
        assert channels["urgentInbox"]["address"] == wire.urgent_inbox_queue("{participant}")
        assert "FLASH" in channels["urgentInbox"]["description"]
        assert channels["deadLetters"]["address"] == wire.DEAD_QUEUE
        assert wire.DEAD_EXCHANGE in channels["deadLetters"]["description"]
        assert set(channels["ingress"]["messages"]) == {message_key(*key) for key in KEYS}

    def test_address_parameters_are_declared(self, asyncapi: dict[str, Any]) -> None:
        """Every {parameter} in a channel address is declared under parameters, and no other."""
        for name, channel in asyncapi["channels"].items():
            used = set(re.findall(r"\{([^}]+)\}", channel["address"]))
            assert used == set(channel.get("parameters", {})), name

    def test_operations_use_their_channels_messages(self, asyncapi: dict[str, Any]) -> None:
        """Each operation points at a channel and only at messages of that channel."""
        operations = asyncapi["operations"]
        assert {op["action"] for op in operations.values()} == {"send", "receive"}
        assert operations["sendToIngress"]["action"] == "send"
        for name, operation in operations.items():
            channel_ref = operation["channel"]["$ref"]
            _resolve(asyncapi, channel_ref)
            for message in operation["messages"]:
                assert message["$ref"].startswith(channel_ref + "/messages/"), name

    def test_dead_letter_headers_describe_the_reason(self, asyncapi: dict[str, Any]) -> None:
        """Dead letters declare the x-liaison-reason header with every reason code."""
        message = asyncapi["components"]["messages"]["deadLetter"]
        headers = _resolve(asyncapi, message["headers"]["$ref"])
        assert headers["required"] == [wire.H_REASON]
        assert set(headers["properties"][wire.H_REASON]["enum"]) == {r.value for r in ReasonCode}
        assert {wire.H_REASON_TEXT, wire.H_REASON_PATH} <= set(headers["properties"])

    def test_payload_definitions_are_lifted(self, asyncapi: dict[str, Any]) -> None:
        """No $defs remain: nested models live under components.schemas."""
        assert "$defs" not in json.dumps(asyncapi)
        assert "CableV2" in asyncapi["components"]["schemas"]


class TestList:
    def test_lists_every_type_and_version(self) -> None:
        """``liaison schemas list`` prints one row per registered (type, version)."""
        result = CliRunner().invoke(main, ["schemas", "list"])
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines[0].split() == ["TYPE", "VERSION", "MODEL", "SUMMARY"]
        rows = [tuple(line.split()[:2]) for line in lines[1:]]
        assert rows == [(type_, str(version)) for type_, version in KEYS]
