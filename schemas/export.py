"""JSON Schema and AsyncAPI documents generated from a registry, for systems without the SDK.

Pure functions returning JSON-ready dicts; ``liaison schemas export`` writes them.
Each (type, version) gets the JSON Schema of the whole envelope carrying that
payload, with ``type`` and ``schema_version`` pinned. The AsyncAPI 3.0.0
document describes the hub's three faces (ingress, the inboxes, dead letters)
and names every message; the payload schemas' ``$defs`` are lifted into
``components.schemas`` so that every ``$ref`` resolves inside the document.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from schemas import wire
from schemas.envelope import Envelope
from schemas.errors import ReasonCode
from schemas.registry import Registry
from schemas.types import Payload

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ASYNCAPI_VERSION = "3.0.0"
AMQP_BINDING_VERSION = "0.3.0"
ASYNCAPI_FILENAME = "asyncapi.json"
DEAD_LETTER_MESSAGE = "deadLetter"
DEAD_LETTER_HEADERS = "DeadLetterHeaders"

_SCHEMAS = "#/components/schemas/"
_MESSAGES = "#/components/messages/"


def message_key(type_: str, version: int) -> str:
    """The name of (type, version) in file names and AsyncAPI components."""
    return f"{type_}.v{version}"


def schema_filename(type_: str, version: int) -> str:
    """``<type>.v<version>.schema.json``."""
    return f"{message_key(type_, version)}.schema.json"


def summary(model: type[Payload]) -> str:
    """The first line of the model's docstring."""
    return (inspect.getdoc(model) or model.__name__).splitlines()[0]


def envelope_model(model: type[Payload]) -> type[BaseModel]:
    """``Envelope[model]``: the envelope class specialised to one payload model."""
    return Envelope[model]  # type: ignore[valid-type]


def envelope_schema(model: type[Payload]) -> dict[str, Any]:
    """The standalone JSON Schema of an envelope carrying ``model``."""
    schema = envelope_model(model).model_json_schema()
    return {"$schema": JSON_SCHEMA_DIALECT, **_pinned(schema, model)}


def json_schemas(registry: Registry) -> dict[str, dict[str, Any]]:
    """File name → envelope JSON Schema, one per registered (type, version)."""
    return {
        schema_filename(type_, version): envelope_schema(model)
        for (type_, version), model in sorted(registry.models.items())
    }


def asyncapi_document(
    registry: Registry, *, version: str, title: str = "Liaison messaging hub"
) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of the hub for every message in ``registry``."""
    keys = sorted(registry.models)
    envelopes: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (envelope_model(registry.models[key]), "validation") for key in keys
    ]
    refs, top = models_json_schema(envelopes, ref_template=_SCHEMAS + "{model}")
    definitions: dict[str, Any] = dict(top.get("$defs", {}))
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for (type_, ver), envelope in zip(keys, envelopes, strict=True):
        model = registry.models[(type_, ver)]
        key = message_key(type_, ver)
        generated = refs[envelope]["$ref"].removeprefix(_SCHEMAS)
        if key in definitions:
            raise ValueError(f"a payload model is named {key!r}, like a message")
        # Nothing refers to the generated envelope names: rename them after the message.
        schemas[key] = _pinned(definitions.pop(generated), model)
        messages[key] = _message(type_, ver, model, key)
    schemas.update(definitions)
    schemas[DEAD_LETTER_HEADERS] = _dead_letter_headers()
    messages[DEAD_LETTER_MESSAGE] = _dead_letter_message()
    envelope_keys = [message_key(*key) for key in keys]
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": (
                "Messages between the Ministry of Foreign and European Affairs, its "
                "missions and partner institutions, carried by RabbitMQ. Participants "
                "publish envelopes to the ingress exchange and consume their inbox; the "
                "hub validates, authorises, routes and audits every message."
            ),
        },
        "defaultContentType": wire.CONTENT_TYPE,
        "channels": _channels(envelope_keys),
        "operations": _operations(envelope_keys),
        "components": {"schemas": schemas, "messages": messages},
    }


def render(document: dict[str, Any]) -> str:
    """A document as stable, readable JSON text (sorted keys, two-space indent)."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _pinned(schema: dict[str, Any], model: type[Payload]) -> dict[str, Any]:
    properties = dict(schema["properties"])
    properties["type"] = {**properties["type"], "const": model.message_type}
    properties["schema_version"] = {**properties["schema_version"], "const": model.version}
    return {
        **schema,
        "title": f"{model.message_type} v{model.version}",
        "description": f"The Liaison envelope carrying {model.__name__}: {summary(model)}",
        "properties": properties,
    }


def _message(type_: str, version: int, model: type[Payload], key: str) -> dict[str, Any]:
    return {
        "name": type_,
        "title": f"{type_} v{version}",
        "summary": summary(model),
        "contentType": wire.CONTENT_TYPE,
        "payload": {"$ref": _SCHEMAS + key},
        "correlationId": {
            "description": "The conversation this message belongs to, when it has one.",
            "location": "$message.payload#/correlation_id",
        },
        "bindings": {"amqp": {"messageType": type_, "bindingVersion": AMQP_BINDING_VERSION}},
    }


def _refs(keys: list[str], prefix: str) -> dict[str, Any]:
    return {key: {"$ref": prefix + key} for key in keys}


def _queue_binding(name: str) -> dict[str, Any]:
    return {
        "amqp": {
            "is": "queue",
            "queue": {"name": name, "durable": True, "exclusive": False, "autoDelete": False},
            "bindingVersion": AMQP_BINDING_VERSION,
        }
    }


def _channels(keys: list[str]) -> dict[str, Any]:
    inbox = wire.inbox_queue("{participant}")
    urgent = wire.urgent_inbox_queue("{participant}")
    return {
        "ingress": {
            "address": wire.INGRESS_EXCHANGE,
            "title": "Ingress",
            "description": (
                f"Participants publish here (topic exchange {wire.INGRESS_EXCHANGE}, "
                "persistent, with publisher confirms). The routing key is the message type; "
                "the AMQP user id must be the participant's own user."
            ),
            "messages": _refs(keys, _MESSAGES),
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {
                        "name": wire.INGRESS_EXCHANGE,
                        "type": "topic",
                        "durable": True,
                        "autoDelete": False,
                    },
                    "bindingVersion": AMQP_BINDING_VERSION,
                }
            },
        },
        "inbox": {
            "address": inbox,
            "title": "Participant inbox",
            "description": (
                f"One quorum queue per participant, fed by {wire.DELIVER_EXCHANGE} (direct, "
                "routing key = participant code), for copies at ROUTINE or PRIORITY precedence "
                f"(FLASH and IMMEDIATE go to {urgent}, to be consumed first). "
                "Messages arrive unchanged, signature included, "
                f"each copy with the header {wire.H_RECEIPT_TOKEN}: a receipt for the message "
                "must carry it back on its publish, or the hub refuses it."
            ),
            "parameters": {"participant": {"description": "The participant's directory code."}},
            "messages": _refs(keys, _MESSAGES),
            "bindings": {
                "amqp": {
                    "is": "queue",
                    "queue": {
                        "name": inbox,
                        "durable": True,
                        "exclusive": False,
                        "autoDelete": False,
                    },
                    "bindingVersion": AMQP_BINDING_VERSION,
                }
            },
        },
        "urgentInbox": {
            "address": urgent,
            "title": "Participant urgent inbox",
            "description": (
                "The participant's second quorum inbox, for copies at FLASH or IMMEDIATE "
                f"effective precedence (routing key = participant code + "
                f"{wire.URGENT_SUFFIX!r}; header {wire.H_PRECEDENCE} when a routing rule "
                "raised it). Consume it before the routine inbox: quorum queues have no "
                "message priorities."
            ),
            "parameters": {"participant": {"description": "The participant's directory code."}},
            "messages": _refs(keys, _MESSAGES),
            "bindings": _queue_binding(urgent),
        },
        "deadLetters": {
            "address": wire.DEAD_QUEUE,
            "title": "Dead letters",
            "description": (
                f"Refused or undeliverable messages, published to {wire.DEAD_EXCHANGE} "
                f"(fanout) and kept in {wire.DEAD_QUEUE}, with the reason in headers."
            ),
            "messages": _refs([DEAD_LETTER_MESSAGE], _MESSAGES),
            "bindings": {
                "amqp": {
                    "is": "queue",
                    "queue": {
                        "name": wire.DEAD_QUEUE,
                        "durable": True,
                        "exclusive": False,
                        "autoDelete": False,
                    },
                    "bindingVersion": AMQP_BINDING_VERSION,
                }
            },
        },
    }


def _operations(keys: list[str]) -> dict[str, Any]:
    return {
        "sendToIngress": {
            "action": "send",
            "title": "Publish a message",
            "summary": "A participant publishes an envelope; routing key = its type.",
            "channel": {"$ref": "#/channels/ingress"},
            "messages": [{"$ref": f"#/channels/ingress/messages/{key}"} for key in keys],
            "bindings": {"amqp": {"deliveryMode": 2, "bindingVersion": AMQP_BINDING_VERSION}},
        },
        "receiveFromInbox": {
            "action": "receive",
            "title": "Consume an inbox",
            "summary": "A participant consumes its inbox, acknowledging after handling.",
            "channel": {"$ref": "#/channels/inbox"},
            "messages": [{"$ref": f"#/channels/inbox/messages/{key}"} for key in keys],
            "bindings": {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING_VERSION}},
        },
        "receiveFromUrgentInbox": {
            "action": "receive",
            "title": "Consume the urgent inbox",
            "summary": "FLASH and IMMEDIATE copies: consumed before the routine inbox.",
            "channel": {"$ref": "#/channels/urgentInbox"},
            "messages": [{"$ref": f"#/channels/urgentInbox/messages/{key}"} for key in keys],
            "bindings": {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING_VERSION}},
        },
        "receiveDeadLetters": {
            "action": "receive",
            "title": "Consume dead letters",
            "summary": "Operators inspect, retry or park refused messages.",
            "channel": {"$ref": "#/channels/deadLetters"},
            "messages": [{"$ref": f"#/channels/deadLetters/messages/{DEAD_LETTER_MESSAGE}"}],
            "bindings": {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING_VERSION}},
        },
    }


_HEADER_TEXT: dict[str, tuple[str, str]] = {
    wire.H_REASON_TEXT: ("string", "Human-readable explanation of the refusal."),
    wire.H_REASON_PATH: ("string", "Dotted path of the offending field, when known."),
    wire.H_ORIGINAL_EXCHANGE: ("string", "The exchange the message was first published to."),
    wire.H_ORIGINAL_ROUTING_KEY: ("string", "Its routing key there."),
    wire.H_ORIGINAL_USER: ("string", "The RabbitMQ user that published it."),
    wire.H_RECIPIENT: ("string", "The recipient this copy was for, when one delivery failed."),
    wire.H_ERROR_TYPE: ("string", "Exception class name, when a consumer's handler failed."),
    wire.H_ATTEMPT: ("integer", "How many times a handler has failed on it."),
}


def _dead_letter_headers() -> dict[str, Any]:
    properties: dict[str, Any] = {
        wire.H_REASON: {
            "type": "string",
            "enum": [reason.value for reason in ReasonCode],
            "description": "Why the message was refused: a reason code.",
        }
    }
    for name, (kind, text) in _HEADER_TEXT.items():
        properties[name] = {"type": kind, "description": text}
    return {
        "title": "Dead-letter headers",
        "type": "object",
        "properties": properties,
        "required": [wire.H_REASON],
    }


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": "dead_letter",
        "title": "Dead letter",
        "summary": "A refused or undeliverable message, its body untouched.",
        "headers": {"$ref": _SCHEMAS + DEAD_LETTER_HEADERS},
        "payload": {"description": "The original body, byte for byte; it may not even be JSON."},
    }


__all__ = [
    "ASYNCAPI_FILENAME",
    "ASYNCAPI_VERSION",
    "asyncapi_document",
    "envelope_schema",
    "json_schemas",
    "message_key",
    "render",
    "schema_filename",
    "summary",
]
