"""Throwaway X.509 material for TLS tests: a CA, server and client certificates.

Everything is generated with ``cryptography`` (already a dependency) into a
directory: no openssl command, nothing reused between runs. Alongside the good
material there is what the refusal tests need: a second, unrelated CA with its own
client certificate, and an expired client certificate from the right CA.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pair:
    """A certificate and its private key, as PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class TlsMaterial:
    """The files a TLS test needs."""

    ca: Path  # the CA the server and the clients trust
    server: Pair  # for DNS name ``localhost`` only: 127.0.0.1 does not match it
    client: Pair  # signed by ``ca``
    other_ca: Path
    foreign_client: Pair  # signed by ``other_ca``, which the server does not trust
    expired_client: Pair  # signed by ``ca``, expired yesterday


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Liaison tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o644)  # the broker runs as another user and must read its key


def _ca(directory: Path, label: str) -> tuple[Path, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{label} CA"))
        .issuer_name(_name(f"{label} CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = directory / f"{label}-ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, cert, key


def _leaf(
    directory: Path,
    label: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    *,
    server: bool,
    expired: bool = False,
) -> Pair:
    ca_cert, ca_key = issuer
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    start, end = (
        (now - dt.timedelta(days=10), now - dt.timedelta(days=1))
        if expired
        else (now - dt.timedelta(hours=1), now + dt.timedelta(days=30))
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(label))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    pair = Pair(directory / f"{label}.pem", directory / f"{label}.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, pair.key)
    return pair


def generate(directory: Path) -> TlsMaterial:
    """A fresh CA, server and client certificates (and the bad ones) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, ca_cert, ca_key = _ca(directory, "liaison")
    other_path, other_cert, other_key = _ca(directory, "other")
    return TlsMaterial(
        ca=ca_path,
        server=_leaf(directory, "server", (ca_cert, ca_key), server=True),
        client=_leaf(directory, "client", (ca_cert, ca_key), server=False),
        other_ca=other_path,
        foreign_client=_leaf(directory, "foreign-client", (other_cert, other_key), server=False),
        expired_client=_leaf(
            directory, "expired-client", (ca_cert, ca_key), server=False, expired=True
        ),
    )


__all__ = ["Pair", "TlsMaterial", "generate"]
