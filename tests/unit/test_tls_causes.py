"""The words a failed TLS handshake is reported with: each cause named, nothing else claimed."""

from __future__ import annotations

from pathlib import Path

import pytest

from producers.tls import PREFIX, tls_failure
from tests import tls_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tls_certs.TlsMaterial:
    """A throwaway CA and certificates."""
    return tls_certs.generate(tmp_path_factory.mktemp("certs"))


EOF_TEXT = "IncompatibleProtocolError: StreamLostError: SSLEOFError(8, 'EOF occurred in violation of protocol (_ssl.c:2427)')"


def _say(text: str, ca: Path | None, cert: Path | None) -> str | None:
    return tls_failure(text, where="rabbit:5671", ca_file=ca, cert_file=cert)


def test_host_name_mismatch_is_named(certs: tls_certs.TlsMaterial) -> None:
    """A certificate for another name: 'host name mismatch' and the name dialled."""
    text = "SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: IP address mismatch, certificate is not valid for '127.0.0.1'. (_ssl.c:1006)"
    said = _say(text, certs.ca, certs.client.cert)
    assert said is not None and said.startswith(PREFIX)
    assert "host name mismatch" in said and "127.0.0.1" in said


def test_untrusted_server_names_the_ca_file(certs: tls_certs.TlsMaterial) -> None:
    """A server certificate our CA did not sign: 'not trusted by the CA file' with its path."""
    text = "SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in certificate chain (_ssl.c:1006)"
    said = _say(text, certs.other_ca, certs.client.cert)
    assert said is not None and f"not trusted by the CA file {certs.other_ca}" in said


def test_a_closed_handshake_without_a_certificate_says_one_is_required() -> None:
    """EOF during the handshake and no client certificate configured: 'requires a client certificate'."""
    said = _say(EOF_TEXT, None, None)
    assert said is not None and "requires a client certificate and none is configured" in said


def test_an_expired_certificate_is_named_with_its_date(certs: tls_certs.TlsMaterial) -> None:
    """EOF with an expired client certificate configured: 'has expired' and when."""
    said = _say(EOF_TEXT, certs.ca, certs.expired_client.cert)
    assert said is not None and "client certificate has expired" in said and "expired 20" in said


def test_another_cas_certificate_is_said_not_accepted(certs: tls_certs.TlsMaterial) -> None:
    """EOF with a valid certificate configured: 'did not accept our client certificate', naming its issuer."""
    said = _say(EOF_TEXT, certs.ca, certs.foreign_client.cert)
    assert said is not None and "did not accept our client certificate" in said
    assert "other CA" in said


def test_errors_that_are_not_tls_are_left_to_the_caller(certs: tls_certs.TlsMaterial) -> None:
    """A refused port or a wrong password is not dressed up as a TLS problem."""
    assert _say("ConnectionRefusedError: [Errno 111] Connection refused", certs.ca, None) is None
    assert _say("ProbableAuthenticationError: ACCESS_REFUSED", certs.ca, None) is None
