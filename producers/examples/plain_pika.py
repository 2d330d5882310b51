"""A system without the SDK: publish one letter to the hub and read the inbox, with pika alone.

Everything here follows the wire contract (README, "Wire contract"), using no
module of this project, so it can be copied into any institution's code base:

    LIAISON_AMQP_URL=amqp://<user>:<password>@host:5672/<vhost> \\
    LIAISON_PARTICIPANT=gs LIAISON_HUB_USER=<the hub's user> \\
    python plain_pika.py --to gs-archives [--key signing-key.pem] [--wait 5]

It publishes a ``correspondence.letter`` to ``liaison.ingress`` (routing key =
the type, ``user_id`` = its RabbitMQ user, persistent, mandatory, with publisher
confirms), signed with Ed25519 when ``--key`` is given, prints the message id,
then prints each message of its inboxes as one JSON line and acks it, until they
stay empty for ``--wait`` seconds: ``inbox.<code>.urgent`` (FLASH, IMMEDIATE) is
always read before ``inbox.<code>`` (PRIORITY, ROUTINE). A message the hub did not publish
(``user_id`` other than ``LIAISON_HUB_USER``) is not printed: it is given up on
through ``liaison.retry`` (``x-liaison-delay: dead``, reason ``not_from_hub``),
with properties built afresh, and acked once the broker confirmed that.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import pika

INGRESS_EXCHANGE = "liaison.ingress"
RETRY_EXCHANGE = "liaison.retry"
CONTENT_TYPE = "application/vnd.liaison.envelope+json"


def canonical_json(data: dict[str, Any]) -> bytes:
    """The signed bytes: sorted keys, no spaces, UTF-8 (not ASCII-escaped)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def letter(sender: str, recipients: list[str], subject: str) -> dict[str, Any]:
    """A ``correspondence.letter`` v1 envelope as plain JSON data (null fields left out)."""
    return {
        "message_id": str(uuid.uuid4()),
        "type": "correspondence.letter",
        "schema_version": 1,
        "sender": sender,
        "recipients": recipients,
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "classification": "INTERNAL",
        "precedence": "ROUTINE",
        "payload": {
            "registry_reference": "PLAIN/2025/00001",
            "subject": subject,
            "body": "Sent from a system that only speaks AMQP and JSON.",
            "addressee": "Service des archives et du courrier",
            "signatory": "Le Secrétaire général",
        },
    }


def sign(envelope: dict[str, Any], key_path: str) -> dict[str, Any]:
    """The envelope with ``signature``: base64 Ed25519 over the canonical JSON without it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
    )
    from cryptography.hazmat.primitives.serialization import (  # noqa: PLC0415
        load_pem_private_key,
    )

    with open(key_path, "rb") as handle:
        key = load_pem_private_key(handle.read(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit(f"{key_path} is not an Ed25519 private key")
    unsigned = {k: v for k, v in envelope.items() if k != "signature"}
    signature = key.sign(canonical_json(unsigned))
    return {**unsigned, "signature": base64.b64encode(signature).decode("ascii")}


def publish(channel: Any, envelope: dict[str, Any], user: str) -> None:
    """Publish to ingress with confirms; pika raises if the broker refuses or cannot route."""
    channel.basic_publish(
        exchange=INGRESS_EXCHANGE,
        routing_key=envelope["type"],
        body=canonical_json(envelope),
        properties=pika.BasicProperties(
            content_type=CONTENT_TYPE,
            delivery_mode=2,  # persistent
            message_id=envelope["message_id"],
            type=envelope["type"],
            correlation_id=envelope.get("correlation_id"),
            user_id=user,  # RabbitMQ checks it is the user logged in: the hub trusts it
        ),
        mandatory=True,
    )


def give_up(channel: Any, code: str, user: str, properties: Any, body: bytes, why: str) -> None:
    """Park a delivery in the hub's dead letters through ``liaison.retry``, then return.

    The properties are built afresh: the delivery's carry the hub's ``user_id``, which
    RabbitMQ refuses from this connection (406). The routing key is our own code.
    """
    channel.basic_publish(
        exchange=RETRY_EXCHANGE,
        routing_key=code,
        body=body,
        properties=pika.BasicProperties(
            content_type=CONTENT_TYPE,
            delivery_mode=2,
            message_id=properties.message_id,
            type=properties.type,
            correlation_id=properties.correlation_id,
            user_id=user,
            headers={
                "x-liaison-delay": "dead",
                "x-liaison-reason": "not_from_hub",
                "x-liaison-reason-text": why[:1000],
            },
        ),
        mandatory=True,
    )


def next_delivery(channel: Any, code: str) -> tuple[Any, Any, bytes] | None:
    """The next message for ``code``: ``inbox.<code>.urgent`` first (FLASH, IMMEDIATE),
    then ``inbox.<code>`` (PRIORITY, ROUTINE); ``None`` when both are empty."""
    for queue in (f"inbox.{code}.urgent", f"inbox.{code}"):
        method, properties, body = channel.basic_get(queue)
        if method is not None:
            return method, properties, body
    return None


def read_inbox(channel: Any, code: str, wait: float, *, user: str, hub_user: str) -> int:
    """Print and ack every message of both inboxes, urgent first, until idle for ``wait`` s."""
    count = 0
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < wait:
        delivery = next_delivery(channel, code)
        if delivery is None:
            time.sleep(0.1)
            continue
        idle_since = time.monotonic()
        method, properties, body = delivery
        if properties.user_id != hub_user:
            # Only the hub publishes to an inbox: anything else came through a side door.
            why = f"published by {properties.user_id!r}, not by the hub {hub_user!r}"
            give_up(channel, code, user, properties, body, why)
            print(json.dumps({"refused": why}), flush=True)
            channel.basic_ack(method.delivery_tag)
            continue
        try:
            envelope = json.loads(body)
            summary = {
                "message_id": envelope.get("message_id"),
                "type": envelope.get("type"),
                "sender": envelope.get("sender"),
                "precedence": envelope.get("precedence"),
                "correlation_id": envelope.get("correlation_id"),
                "payload": envelope.get("payload"),
            }
        except ValueError:
            summary = {"message_id": properties.message_id, "undecodable": True}
        print(json.dumps({"received": summary}, ensure_ascii=False), flush=True)
        channel.basic_ack(method.delivery_tag)
        count += 1
    return count


def main() -> int:
    """Publish one letter, then read the inbox; exit 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("LIAISON_AMQP_URL"))
    parser.add_argument("--participant", default=os.environ.get("LIAISON_PARTICIPANT"))
    parser.add_argument("--hub-user", default=os.environ.get("LIAISON_HUB_USER"))
    parser.add_argument("--to", action="append", default=[], help="recipient code (repeat)")
    parser.add_argument("--subject", default="Hello from plain pika")
    parser.add_argument("--key", default=os.environ.get("LIAISON_SIGNING_KEY"))
    parser.add_argument("--wait", type=float, default=5.0, help="idle seconds before leaving")
    args = parser.parse_args()
    if not args.url or not args.participant or not args.hub_user:
        parser.error(
            "--url, --participant and --hub-user "
            "(or LIAISON_AMQP_URL, LIAISON_PARTICIPANT, LIAISON_HUB_USER)"
        )
    user = unquote(urlsplit(args.url).username or "")
    envelope = letter(args.participant, args.to, args.subject)
    if args.key:
        envelope = sign(envelope, args.key)
    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        try:
            publish(channel, envelope, user)
            print(json.dumps({"published": envelope["message_id"]}), flush=True)
            read_inbox(channel, args.participant, args.wait, user=user, hub_user=args.hub_user)
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
            print(f"not delivered to the hub: {exc}", file=sys.stderr)
            return 1
        except pika.exceptions.ChannelClosedByBroker as exc:
            # 403: a type the directory does not let this participant send, or an inbox
            # that is not its own; 406: user_id is not the user logged in.
            print(f"refused by RabbitMQ: {exc.reply_code} {exc.reply_text}", file=sys.stderr)
            return 1
    finally:
        connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
