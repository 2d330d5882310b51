"""Every command that cannot log in says so in one line naming the user and the file.

Against the real broker: a wrong password for the hub's own user (from
``$LIAISON_AMQP_URL``) and a participant's credential file whose password was
replaced elsewhere, as after a second checkout rotated it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from liaison.adapters.management import Management
from liaison.settings import Settings
from liaison.topology import PARTICIPANT_TAG, credentials_path
from schemas.examples import example_envelope


def _env(settings: Settings, **overrides: str) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "LIAISON_AMQP_URL": settings.amqp_url,
        "LIAISON_MANAGEMENT_URL": settings.management_url,
        "LIAISON_USER_PREFIX": settings.user_prefix,
        "LIAISON_CREDENTIALS_DIR": str(settings.credentials_dir),
        "LIAISON_AUDIT_DIR": str(settings.audit_dir),
        "LIAISON_HUB_KEY_PATH": str(settings.hub_key_path),
        "LIAISON_HTTP_PORT": "0",
        "LIAISON_LOG_JSON": "true",
        "LIAISON_OPERATOR": "tester",
    }
    env.update(overrides)
    return env


def _liaison(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "liaison", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _wrong_password(settings: Settings) -> str:
    parts = urlsplit(settings.amqp_url)
    netloc = f"{parts.username}:not-the-password@{parts.hostname}:{parts.port}"
    return parts._replace(netloc=netloc).geturl()


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["status", "--source", "amqp"],
        ["status", "--source", "management"],
        ["dlq", "list"],
        ["dlq", "retry", "--all"],
        ["topology", "apply"],
        ["topology", "diff"],
        ["audit", "run"],
        ["serve"],
    ],
    ids=" ".join,
)
def test_hub_login_refused_is_one_line(hub_settings: Settings, args: list[str]) -> None:
    """The hub's wrong password: exit 1, one line naming its user and $LIAISON_AMQP_URL."""
    env = _env(hub_settings, LIAISON_AMQP_URL=_wrong_password(hub_settings))
    line = _one_line_error(_liaison(env, *args))
    assert f"refused the login of user {hub_settings.hub_user!r}" in line
    assert "$LIAISON_AMQP_URL" in line
    assert "not-the-password" not in line


class TestStaleParticipantFile:
    """A credential file whose password the broker no longer accepts."""

    @pytest.fixture
    def stale(self, hub_settings: Settings) -> Settings:
        """gs's password replaced on the broker behind this checkout's back."""
        with Management(hub_settings) as api:
            api.put_user(hub_settings.user_for("gs"), "rotated-elsewhere", PARTICIPANT_TAG)
        return hub_settings

    def test_demo_names_user_and_file(self, stale: Settings) -> None:
        """liaison demo stops before starting anything, naming gs's user, its file and the fix."""
        line = _one_line_error(_liaison(_env(stale), "demo", "--exit"))
        assert f"user {stale.user_for('gs')}" in line
        assert str(credentials_path(stale, "gs")) in line
        assert "--rotate gs" in line
        assert not (stale.audit_dir.parent / "logs").exists()

    def test_send_names_user_and_file(self, stale: Settings) -> None:
        """liaison send --credentials FILE: one line naming the user and the file."""
        path = credentials_path(stale, "gs")
        result = _liaison(
            _env(stale),
            "send",
            "--credentials",
            str(path),
            "--type",
            "correspondence.note",
            "--to",
            "gs-archives",
            "--payload-json",
            json.dumps(
                example_envelope("correspondence.note", 1, sender="gs").to_jsonable()["payload"]
            ),
        )
        line = _one_line_error(result)
        assert stale.user_for("gs") in line
        assert str(path) in line
