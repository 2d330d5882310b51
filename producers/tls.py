"""Why a TLS handshake with the broker failed, in words that name the cause.

Shared by the SDK and the hub (a leaf: standard library and ``cryptography``).
A broker that demands a client certificate (``fail_if_no_peer_cert``) and does not
like ours closes the session with an alert a client often cannot read (with TLS
1.3 it shows only as an EOF): the cause is then inferred from our own TLS
settings: no certificate configured, an expired one, or one the broker's CA did
not sign. A server certificate we do not trust, or that does not carry the host
name we dialled, is reported by our own ``ssl`` module, and said as such.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

#: Every message of :func:`tls_failure` starts so.
PREFIX = "TLS: "


def tls_failure(
    text: str, *, where: str, ca_file: Path | None, cert_file: Path | None
) -> str | None:
    """The cause of a failed ``amqps://`` connection whose error reads ``text``, or ``None``.

    ``None`` when ``text`` does not look like a TLS failure (a refused port, a
    wrong password): the caller says what it would have said anyway.
    """
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return _server_not_verified(text, where, ca_file)
    lowered = text.lower()
    if not any(mark in lowered for mark in ("ssl", "tls", "alert", "eof occurred")):
        return None
    summary = certificate_summary(cert_file)
    expired = (
        f"{PREFIX}the broker at {where} refused the connection: our client certificate "
        f"has expired ({summary})"
    )
    if "certificate expired" in lowered or "certificate_expired" in lowered:
        return expired
    if cert_file is None:
        return (
            f"{PREFIX}the broker at {where} closed the connection during the handshake: it "
            "requires a client certificate and none is configured (set the TLS certificate "
            "and key files)"
        )
    if "expired" in summary:
        return expired
    return (
        f"{PREFIX}the broker at {where} did not accept our client certificate ({summary}): "
        f"it was not issued by a CA the broker trusts, or it was revoked ({text[:200]})"
    )


def _server_not_verified(text: str, where: str, ca_file: Path | None) -> str:
    reason = _verify_reason(text)
    if "mismatch" in reason or "match" in reason:
        return (
            f"{PREFIX}the broker's certificate does not carry the host name we connected "
            f"to ({where}): host name mismatch ({reason}); connect by a name it carries"
        )
    return (
        f"{PREFIX}the broker's certificate at {where} is not trusted by the CA file "
        f"{ca_file}: {reason}"
    )


def _verify_reason(text: str) -> str:
    marker = "certificate verify failed:"
    start = text.find(marker)
    if start < 0:
        return text[:200]
    return text[start + len(marker) :].split("(_ssl.c", maxsplit=1)[0].strip(" .")


def certificate_summary(path: Path | None) -> str:
    """Subject, issuer and validity of the PEM certificate at ``path``, for messages."""
    if path is None:
        return "none configured"
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        return f"{path}: unreadable ({exc})"
    end = cert.not_valid_after_utc
    state = (
        f"expired {end:%Y-%m-%d %H:%M} UTC"
        if end < datetime.now(UTC)
        else f"valid until {end:%Y-%m-%d}"
    )
    subject, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
    return f"{path}: subject {subject}, issuer {issuer}, {state}"


__all__ = ["PREFIX", "certificate_summary", "tls_failure"]
