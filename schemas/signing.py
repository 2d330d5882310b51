"""Ed25519 signatures over the canonical envelope.

The signature is part of the wire contract, so it lives with the contracts: a
participant signs ``envelope.canonical_bytes()`` (the canonical JSON without the
``signature`` field) and puts the base64 signature in ``signature``. The hub
verifies it with the public key from the directory.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from schemas.envelope import Envelope, P, canonical_json


def sign(envelope: Envelope[P], key: Ed25519PrivateKey) -> Envelope[P]:
    """A copy of ``envelope`` carrying its signature by ``key``."""
    signature = key.sign(envelope.canonical_bytes())
    return envelope.with_signature(base64.b64encode(signature).decode("ascii"))


def verify(envelope: Envelope[P], public_key: Ed25519PublicKey) -> bool:
    """Whether the envelope's signature is valid for ``public_key`` (False when absent)."""
    if envelope.signature is None:
        return False
    try:
        public_key.verify(base64.b64decode(envelope.signature), envelope.canonical_bytes())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def verify_data(data: Mapping[str, Any], public_key: Ed25519PublicKey) -> bool:
    """Whether the ``signature`` member of a received JSON envelope is valid.

    The signed bytes are the canonical JSON of the object as it arrived, without
    its ``signature`` member: what the sender put on the wire, not the hub's
    normalised model of it.
    """
    signature = data.get("signature")
    if not isinstance(signature, str):
        return False
    signed = canonical_json({k: v for k, v in data.items() if k != "signature"})
    try:
        public_key.verify(base64.b64decode(signature, validate=True), signed)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def public_key_from_b64(value: str) -> Ed25519PublicKey:
    """An Ed25519 public key from the base64 of its 32 raw bytes (the directory's form)."""
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(value, validate=True))


def public_key_to_b64(key: Ed25519PublicKey) -> str:
    """The base64 of the 32 raw bytes of ``key``, as written in the directory."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: PLC0415

    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")
