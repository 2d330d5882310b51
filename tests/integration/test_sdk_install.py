"""The README's SDK-only install, done for real in a clean virtual environment.

``pip install -r requirements-sdk.txt`` then ``pip install --no-deps`` of this checkout:
the SDK imports and builds its objects, and none of the hub's server-side dependencies
is installed or imported. Needs a package index pip can reach (as ``make`` does).
"""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HUB_ONLY = ("sqlalchemy", "alembic", "feedgen", "prometheus_client", "structlog", "pika", "psycopg")

PROBE = f"""
import importlib.util, sys
from producers import ParticipantSettings, Publisher, PublishError, ReplyTimeout
from consumers import Consumer, ConsumeError, InMemoryStore
from schemas.correspondence import Letter
settings = ParticipantSettings.from_env({{
    "LIAISON_PARTICIPANT": "gs-archives",
    "LIAISON_AMQP_URL": "amqp://u:p@localhost:5672/v",
    "LIAISON_HUB_USER": "hub",
}})
Consumer(settings, store=InMemoryStore())
print("loaded", sorted(m for m in {HUB_ONLY!r} + ("liaison",) if m in sys.modules))
print("installed", sorted(m for m in {HUB_ONLY!r} if importlib.util.find_spec(m)))
"""


@pytest.mark.timeout(300)
def test_the_sdk_installs_and_imports_without_the_hub(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"

    def run(*args: str, cwd: Path = ROOT) -> str:
        done = subprocess.run(
            [str(python), *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=240
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    run("-m", "pip", "install", "--quiet", "-r", str(ROOT / "requirements-sdk.txt"))
    run("-m", "pip", "install", "--quiet", "--no-deps", str(ROOT))
    out = run("-c", PROBE, cwd=tmp_path)  # not the checkout: the installed packages
    assert "loaded []" in out, out
    assert "installed []" in out, out
