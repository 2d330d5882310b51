"""Liaison's contracts: the envelope, the message families and the wire names.

It needs only pydantic and the standard library (``schemas.signing`` adds
cryptography), so any system talking to the hub can depend on it alone. The
families live in one module each (``schemas.correspondence``,
``schemas.missions``, ...); :func:`default_registry` knows them all.
"""

from __future__ import annotations

from schemas import wire
from schemas.catalog import default_registry
from schemas.envelope import Envelope, canonical_json, new_envelope
from schemas.errors import ContractError, LiaisonError, ReasonCode
from schemas.registry import Registry
from schemas.types import Classification, Payload, Precedence

__all__ = [
    "Classification",
    "ContractError",
    "Envelope",
    "LiaisonError",
    "Payload",
    "Precedence",
    "ReasonCode",
    "Registry",
    "canonical_json",
    "default_registry",
    "new_envelope",
    "wire",
]
