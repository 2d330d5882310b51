"""The hub's Ed25519 signing key: load or create it, export and read the public half.

The private key is a PKCS#8 PEM file readable by its owner only (mode 0600). The
public key travels as a PEM file (``hub.pub``) or as the base64 of its 32 raw
bytes (the directory's form); its *key id* is the first 16 bytes, in hex, of the
SHA-256 of those raw bytes, so an auditor can compare fingerprints by eye.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from liaison.errors import ConfigError

PUBLIC_KEY_FILE = "hub.pub"


def load_or_create(path: Path) -> Ed25519PrivateKey:
    """The key at ``path``, created (mode 0600, parent directories too) if absent."""
    if path.exists():
        return load_private_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    try:
        # O_EXCL: two processes starting at once must not each write their own key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_private_key(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM file ``path``."""
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(f"cannot read hub key {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"hub key {path} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"hub key {path} is not an Ed25519 key")
    return key


def raw_public_bytes(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of ``key``."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_b64(key: Ed25519PublicKey) -> str:
    """The base64 of the 32 raw bytes of ``key``."""
    return base64.b64encode(raw_public_bytes(key)).decode("ascii")


def public_pem(key: Ed25519PublicKey) -> bytes:
    """``key`` as a SubjectPublicKeyInfo PEM block."""
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def key_id(key: Ed25519PublicKey) -> str:
    """The fingerprint written into every checkpoint: 32 hex digits."""
    return hashlib.sha256(raw_public_bytes(key)).hexdigest()[:32]


def write_public_key(key: Ed25519PublicKey, path: Path) -> None:
    """Write ``key`` as PEM to ``path`` (world-readable: it is public)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(public_pem(key))
    tmp.chmod(0o644)
    tmp.replace(path)


def parse_public_key(text: str | bytes) -> Ed25519PublicKey:
    """A public key from PEM or from the base64 of its raw bytes."""
    data = text.encode("ascii", "replace") if isinstance(text, str) else text
    data = data.strip()
    try:
        if data.startswith(b"-----BEGIN"):
            key = load_pem_public_key(data)
            if not isinstance(key, Ed25519PublicKey):
                raise ConfigError("the public key is not an Ed25519 key")
            return key
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(data, validate=True))
    except (ValueError, binascii.Error) as exc:
        raise ConfigError(f"not an Ed25519 public key (PEM or base64): {exc}") from None


def read_public_key(path: Path) -> Ed25519PublicKey:
    """The public key in the file ``path`` (PEM or base64)."""
    try:
        return parse_public_key(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read public key {path}: {exc.strerror}") from None
