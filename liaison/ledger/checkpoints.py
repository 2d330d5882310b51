"""Signed checkpoints: the hub's Ed25519 signature over a Merkle root of the ledger.

``checkpoints.jsonl`` holds one checkpoint per line, in canonical JSON::

    {"key_id":"<32 hex>","root":"<64 hex>","signature":"<base64>","tree_size":N,"ts":"..."}

``root`` is the RFC 9162 Merkle root (hex) of records ``0..tree_size-1``; the
signature is Ed25519 over the canonical JSON of ``{"root","tree_size","ts"}``
(sorted keys, no spaces, UTF-8), e.g.
``{"root":"5dc9…","tree_size":1000,"ts":"2025-01-02T03:04:05.000000Z"}``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from liaison.ledger.keys import key_id
from liaison.ledger.records import format_ts
from schemas.envelope import canonical_json
from schemas.errors import LiaisonError

CHECKPOINTS_FILE = "checkpoints.jsonl"
_KEYS = {"key_id", "root", "signature", "tree_size", "ts"}


class CheckpointError(LiaisonError):
    """A checkpoint line that cannot be read."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement: the first ``tree_size`` records have Merkle root ``root``."""

    tree_size: int
    root: str
    ts: str
    signature: str
    key_id: str

    def signed_bytes(self) -> bytes:
        """The bytes the signature covers."""
        return signed_bytes(self.tree_size, self.root, self.ts)

    def to_json(self) -> dict[str, Any]:
        """The checkpoint as JSON data."""
        return {
            "key_id": self.key_id,
            "root": self.root,
            "signature": self.signature,
            "tree_size": self.tree_size,
            "ts": self.ts,
        }

    def line(self) -> bytes:
        """The checkpoint as stored: canonical JSON and a newline."""
        return canonical_json(self.to_json()) + b"\n"

    def signature_valid(self, public_key: Ed25519PublicKey) -> bool:
        """Whether ``public_key`` signed this checkpoint."""
        try:
            public_key.verify(base64.b64decode(self.signature, validate=True), self.signed_bytes())
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    @classmethod
    def from_json(cls, data: Any) -> Checkpoint:
        """A checkpoint from parsed JSON; :class:`CheckpointError` when malformed."""
        if not isinstance(data, dict) or set(data) != _KEYS:
            raise CheckpointError("not a checkpoint (wrong set of keys)")
        size = data["tree_size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise CheckpointError("tree_size must be a non-negative integer")
        for name in ("root", "ts", "signature", "key_id"):
            if not isinstance(data[name], str):
                raise CheckpointError(f"{name} must be a string")
        if not _is_hex_hash(data["root"]):
            raise CheckpointError("root must be 64 hex digits")
        return cls(
            tree_size=size,
            root=data["root"],
            ts=data["ts"],
            signature=data["signature"],
            key_id=data["key_id"],
        )


def _is_hex_hash(value: str) -> bool:
    try:
        return len(bytes.fromhex(value)) == 32 and value == value.lower()
    except ValueError:
        return False


def signed_bytes(tree_size: int, root: str, ts: str) -> bytes:
    """Canonical JSON of ``{"root", "tree_size", "ts"}``: what a checkpoint signature covers."""
    return canonical_json({"root": root, "tree_size": tree_size, "ts": ts})


def sign(
    key: Ed25519PrivateKey, *, tree_size: int, root: bytes, at: datetime | None = None
) -> Checkpoint:
    """A checkpoint of ``tree_size`` records with Merkle ``root``, signed by ``key``."""
    ts = format_ts(at or datetime.now(UTC))
    root_hex = root.hex()
    signature = key.sign(signed_bytes(tree_size, root_hex, ts))
    return Checkpoint(
        tree_size=tree_size,
        root=root_hex,
        ts=ts,
        signature=base64.b64encode(signature).decode("ascii"),
        key_id=key_id(key.public_key()),
    )


def iter_checkpoints(path: Path) -> Iterator[tuple[int, Checkpoint | CheckpointError]]:
    """Each line of a checkpoints file: its line number and the checkpoint or the error.

    A missing file has no checkpoints. A final line without its newline (a crash
    while writing it) is skipped: it was never complete, so nothing relied on it.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    lines = data.split(b"\n")
    # The last element is b"" after a complete final line, or a torn remainder.
    for number, line in enumerate(lines[:-1], start=1):
        try:
            yield number, Checkpoint.from_json(json.loads(line))
        except ValueError as exc:
            yield number, CheckpointError(f"not JSON: {exc}")
        except CheckpointError as exc:
            yield number, exc


def torn_tail(path: Path) -> int:
    """How many bytes follow the last newline of ``path`` (0 when none, or no file)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    return len(data) - (data.rfind(b"\n") + 1)
