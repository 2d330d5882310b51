"""The edge SDK's participant settings: environment, credentials files, TLS, signing key."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from producers import ParticipantSettings, SdkConfigError, TlsOptions
from producers.settings import parse_env_file

URL = "amqp://t-gs:s3cr%40t@broker.example:5672/liaison"


def _pem(key: object, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())  # type: ignore[attr-defined]
    )
    return path


class TestParticipantSettings:
    def test_user_comes_from_the_url(self) -> None:
        """The user_id sent is the (unquoted) user of the URL unless set explicitly."""
        settings = ParticipantSettings(code="gs", amqp_url=URL)
        assert settings.rabbit_user == "t-gs"
        assert settings.with_changes(user="other").rabbit_user == "other"

    def test_repr_and_safe_url_hide_the_password(self) -> None:
        """Settings end up in logs: the password never does."""
        settings = ParticipantSettings(code="gs", amqp_url=URL)
        assert "s3cr" not in repr(settings)
        assert settings.safe_url == "amqp://t-gs:***@broker.example:5672/liaison"

    @pytest.mark.parametrize("code", ["GS", "g", "gs_legal", "-gs"])
    def test_refuses_a_code_that_is_not_a_directory_code(self, code: str) -> None:
        """A typo in the code fails at start-up, not as a refusal at the router."""
        with pytest.raises(SdkConfigError, match="directory code"):
            ParticipantSettings(code=code, amqp_url=URL)

    def test_refuses_a_url_that_is_not_amqp(self) -> None:
        """Only amqp:// and amqps:// URLs with a host are accepted."""
        with pytest.raises(SdkConfigError, match="amqp"):
            ParticipantSettings(code="gs", amqp_url="http://broker/")

    def test_from_env(self, tmp_path: Path) -> None:
        """Every LIAISON_* variable of the SDK lands in its field; overrides win."""
        env = {
            "LIAISON_PARTICIPANT": "gs",
            "LIAISON_AMQP_URL": URL.replace("amqp://", "amqps://"),
            "LIAISON_TLS_CA_FILE": "/etc/ca.pem",
            "LIAISON_TLS_CERT_FILE": "/etc/cert.pem",
            "LIAISON_TLS_KEY_FILE": "/etc/key.pem",
            "LIAISON_TLS_VERIFY_HOSTNAME": "false",
            "LIAISON_SIGNING_KEY": str(tmp_path / "gs.pem"),
        }
        settings = ParticipantSettings.from_env(env)
        assert settings.code == "gs"
        assert settings.tls == TlsOptions(
            Path("/etc/ca.pem"), Path("/etc/cert.pem"), Path("/etc/key.pem"), False
        )
        assert settings.signing_key_path == tmp_path / "gs.pem"
        assert ParticipantSettings.from_env(env, code="gs-legal").code == "gs-legal"

    @pytest.mark.parametrize("missing", ["LIAISON_PARTICIPANT", "LIAISON_AMQP_URL"])
    def test_from_env_names_the_missing_variable(self, missing: str) -> None:
        """A missing variable is named in the error."""
        env = {"LIAISON_PARTICIPANT": "gs", "LIAISON_AMQP_URL": URL}
        del env[missing]
        with pytest.raises(SdkConfigError, match=missing):
            ParticipantSettings.from_env(env)

    def test_from_credentials_file(self, tmp_path: Path) -> None:
        """The <code>.env file `topology apply` writes is enough: code from its name."""
        path = tmp_path / "gs-legal.env"
        path.write_text(f"LIAISON_AMQP_URL={URL}\n", encoding="utf-8")
        settings = ParticipantSettings.from_credentials(path, environ={"LIAISON_PARTICIPANT": "gs"})
        assert settings.code == "gs-legal"
        assert settings.amqp_url == URL

    def test_parse_env_file(self) -> None:
        """Comments, blanks, ``export`` and quotes are tolerated."""
        text = "# comment\n\nexport A=1\nB='two'\nC=\"3=3\"\nnot a line\n"
        assert parse_env_file(text) == {"A": "1", "B": "two", "C": "3=3"}


class TestTls:
    def test_plain_amqp_has_no_tls(self) -> None:
        """amqp:// connects without TLS options."""
        settings = ParticipantSettings(code="gs", amqp_url=URL)
        assert settings.ssl_options() is None
        assert "ssl" not in settings.connection_options()

    def test_amqps_verifies_the_broker_and_presents_a_client_certificate(self) -> None:
        """amqps:// requires a valid certificate, checks the host name, sends cert and key."""
        tls = TlsOptions(Path("ca.pem"), Path("cert.pem"), Path("key.pem"))
        settings = ParticipantSettings(
            code="gs", amqp_url=URL.replace("amqp://", "amqps://"), tls=tls
        )
        assert settings.ssl_options() == {
            "cert_reqs": ssl.CERT_REQUIRED,
            "ca_certs": "ca.pem",
            "certfile": "cert.pem",
            "keyfile": "key.pem",
            "server_hostname": "broker.example",
        }

    def test_hostname_check_can_be_turned_off(self) -> None:
        """Without verify_hostname no server_hostname is passed (py-amqp then skips the check)."""
        settings = ParticipantSettings(
            code="gs",
            amqp_url=URL.replace("amqp://", "amqps://"),
            tls=TlsOptions(verify_hostname=False),
        )
        options = settings.ssl_options()
        assert options is not None
        assert "server_hostname" not in options
        assert options["cert_reqs"] == ssl.CERT_REQUIRED


class TestSigningKey:
    def test_no_key_configured(self) -> None:
        """Without a key path nothing is signed."""
        assert ParticipantSettings(code="gs", amqp_url=URL).signing_key() is None

    def test_loads_an_ed25519_pem(self, tmp_path: Path) -> None:
        """A PKCS#8 PEM Ed25519 key loads."""
        path = _pem(Ed25519PrivateKey.generate(), tmp_path / "k.pem")
        key = ParticipantSettings(code="gs", amqp_url=URL, signing_key_path=path).signing_key()
        assert isinstance(key, Ed25519PrivateKey)

    def test_refuses_another_kind_of_key(self, tmp_path: Path) -> None:
        """An RSA key is not a signing key for the hub."""
        path = _pem(generate_private_key(65537, 2048), tmp_path / "rsa.pem")
        settings = ParticipantSettings(code="gs", amqp_url=URL, signing_key_path=path)
        with pytest.raises(SdkConfigError, match="not an Ed25519 key"):
            settings.signing_key()

    def test_missing_file_is_a_config_error(self, tmp_path: Path) -> None:
        """A missing key file is reported with its path."""
        settings = ParticipantSettings(
            code="gs", amqp_url=URL, signing_key_path=tmp_path / "nope.pem"
        )
        with pytest.raises(SdkConfigError, match=r"nope\.pem"):
            settings.signing_key()
