"""Delivery tokens: the hub's proof, on each copy it delivers, of who received what.

A participant may acknowledge a message (``receipt.*``) only if the router
delivered that message to it. The router does not remember its deliveries;
instead every copy carries ``x-liaison-receipt-token`` = the first 16 bytes, in
hex, of HMAC-SHA256 under a hub secret over ``<message id>\\n<recipient>\\n<sender>``.
A receipt must carry that token back on its own publish; the router recomputes
it from the receipt's sender (the recipient), the id it acknowledges and the
receipt's recipient (the original sender). Stateless: it survives restarts and
holds across several routers that share the secret.

The secret is its own file (32 random bytes, mode 0600), not derived from the
hub's Ed25519 signing key: routers need the token secret, only the audit writer
needs the signing key, and a router's host should not hold what signs the ledger.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from functools import lru_cache
from pathlib import Path

from liaison.errors import ConfigError

SECRET_BYTES = 32
#: Hex digits of the token: 128 bits, out of reach of guessing and of birthday searches.
TOKEN_HEX = 32


def receipt_token(secret: bytes, message_id: str, recipient: str, sender: str) -> str:
    """The token the copy of ``message_id`` from ``sender`` to ``recipient`` carries."""
    # HMAC-SHA256 (RFC 2104) from the two padded key states, computed once per secret:
    # one copy and update each per token, about half of hmac.digest's per-call setup.
    inner, outer = _key_states(secret)
    mac = inner.copy()
    mac.update(f"{message_id}\n{recipient}\n{sender}".encode())
    final = outer.copy()
    final.update(mac.digest())
    return final.digest()[: TOKEN_HEX // 2].hex()


@lru_cache(maxsize=4)
def _key_states(secret: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    key = hashlib.sha256(secret).digest() if len(secret) > _BLOCK else secret
    key = key.ljust(_BLOCK, b"\0")
    return (
        hashlib.sha256(bytes(b ^ 0x36 for b in key)),
        hashlib.sha256(bytes(b ^ 0x5C for b in key)),
    )


_BLOCK = 64  # SHA-256's block size in bytes


def token_matches(expected: str, presented: object) -> bool:
    """Whether a header value ``presented`` is the token ``expected`` (constant time)."""
    if isinstance(presented, str):
        presented = presented.encode("utf-8", "backslashreplace")
    if not isinstance(presented, bytes):
        return False
    return hmac.compare_digest(expected.encode("ascii"), presented)


def load_or_create_secret(path: Path) -> bytes:
    """The secret in ``path``, created once (mode 0600, parent directories too) if absent."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: two routers starting at once must not each write their own secret.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(SECRET_BYTES))
                handle.flush()
                os.fsync(handle.fileno())
    for _ in range(40):
        try:
            secret = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the receipt token secret {path}: {exc.strerror}"
            ) from None
        if len(secret) >= SECRET_BYTES:
            break
        time.sleep(0.05)  # another router created it an instant ago and is still writing
    if len(secret) < SECRET_BYTES:
        raise ConfigError(
            f"receipt token secret {path} holds {len(secret)} bytes, at least {SECRET_BYTES} needed"
        )
    return secret
