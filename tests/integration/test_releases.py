"""An embargoed ICC release on the real hub: approved, held across a restart, published once."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pika.exceptions
import pytest

from liaison.settings import Settings
from schemas import wire
from schemas.communication import Language, PressRelease, ReleaseApprovedV2
from schemas.envelope import new_envelope
from tests.integration.console import cli
from tests.integration.harness import depth, publish_as, running, wait_for
from tests.integration.procedures_support import (
    procedures_env,
    procedures_service,
    procedures_settings,
    take_json,
)

EMBARGO_S = 15


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def proc(hub_settings: Settings, database_url: str, tmp_path: Path) -> Settings:
    settings = procedures_settings(hub_settings, database_url, tmp_path).replace(
        http_port=_free_port()
    )
    done = cli(settings, "procedures", "migrate", **_extra(settings))
    assert done.code == 0, done.err
    return settings


def _extra(settings: Settings) -> dict[str, str]:
    env = procedures_env(settings)
    return {k: v for k, v in env.items() if k.startswith("LIAISON_PROC")}


def feed(settings: Settings) -> Any:
    response = httpx.get(f"http://127.0.0.1:{settings.http_port}/public/feed.atom", timeout=5)
    assert response.status_code == 200, response.text
    parsed = feedparser.parse(response.content)
    assert parsed.bozo == 0
    return parsed


def test_embargoed_release_appears_once_at_the_embargo_across_a_restart(
    proc: Settings, tmp_path: Path
) -> None:
    """Self-approval refused; the DSG approves; nothing public until the embargo, then one entry."""
    with (
        running(
            proc,
            "serve",
            log_path=str(tmp_path / "router.log"),
            env=procedures_env(proc),
        ),
        running(
            proc, "audit", "run", wait_queue=wire.AUDIT_QUEUE, log_path=str(tmp_path / "audit.log")
        ),
    ):
        with procedures_service(proc, tmp_path):
            embargo = (datetime.now(UTC) + timedelta(seconds=EMBARGO_S)).replace(microsecond=0)
            release = new_envelope(
                PressRelease(
                    title="Le Ministre reçoit son homologue slovène",
                    body="Texte sous embargo.",
                    embargo_until=embargo,
                    languages=(Language.FR,),
                ),
                sender="gs-icc",
                recipients=("gs-dsg",),
            )
            about = ReleaseApprovedV2.of(release.message_id, "gs-icc", release.payload)
            publish_as(proc, "gs-icc", release)
            take_json(proc, "gs-dsg", 1)
            # The ICC does not hold the approval right: the broker itself refuses it.
            own = new_envelope(about, sender="gs-icc", recipients=("gs-dsg",))
            with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="ACCESS_REFUSED"):
                publish_as(proc, "gs-icc", own)
            # The DSG holds it, but not over its own draft: refused, with the reason.
            dsg_draft = new_envelope(release.payload, sender="gs-dsg", recipients=("gs-icc",))
            publish_as(proc, "gs-dsg", dsg_draft)
            self_approval = new_envelope(
                ReleaseApprovedV2.of(dsg_draft.message_id, "gs-dsg", dsg_draft.payload),
                sender="gs-dsg",
                recipients=("gs-icc",),
            )
            publish_as(proc, "gs-dsg", self_approval)
            ((_, refusal),) = take_json(proc, "gs-dsg", 1)
            assert refusal["type"] == "procedure.refusal"
            assert refusal["payload"]["reason"] == "a release cannot be approved by its own author"
            take_json(proc, "gs-icc", 2)  # the DSG's draft and its approval
            approval = new_envelope(about, sender="gs-dsg", recipients=("gs-icc",))
            publish_as(proc, "gs-dsg", approval)
            take_json(proc, "gs-icc", 1)  # the approval's copy
            wait_for(lambda: depth(proc, "inbox.gs-procedures") == 0, what="approval consumed")
            assert datetime.now(UTC) < embargo, "the test took longer than the embargo"
            assert feed(proc).entries == []
        # The procedures service is down when the embargo passes: nothing is published.
        while datetime.now(UTC) < embargo + timedelta(seconds=1):
            time.sleep(0.2)
        assert feed(proc).entries == []
        assert depth(proc, "inbox.icc-website") == 0
        with procedures_service(proc, tmp_path):
            wait_for(lambda: len(feed(proc).entries) == 1, what="the release on the feed")
            ((_, published),) = take_json(proc, "icc-website", 1)
            assert published["type"] == "icc.release_published"
            assert published["sender"] == "gs-procedures"
            assert published["payload"]["published_at"].startswith(embargo.isoformat()[:19])
            [entry] = feed(proc).entries
            assert entry.published_parsed[:6] == embargo.timetuple()[:6]
            time.sleep(2)  # more sweeps publish nothing more
            assert len(feed(proc).entries) == 1
            assert depth(proc, "inbox.icc-website") == 0

            def rebuilt() -> bool:
                return cli(proc, "procedures", "rebuild", **_extra(proc)).code == 0

            wait_for(rebuilt, timeout=30, what="a rebuild from the ledger with no difference")
