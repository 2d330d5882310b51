"""``/public/feed.atom`` on the hub's web server, from a real procedures database file."""

from __future__ import annotations

from pathlib import Path

import feedparser

from liaison.ops import DeadLetterQueue, hub_queues
from liaison.procedures.store import Store
from liaison.settings import Settings
from liaison.web.metrics import HubMetrics
from liaison.web.poller import QueuePoller
from liaison.web.public import PublicFeed
from liaison.web.server import DeadLetterCache, WebApp
from liaison.web.traffic import TrafficLog
from tests.unit.test_releases import POLICY, T0, approval, draft


def web_app(settings: Settings) -> WebApp:
    metrics = HubMetrics()
    return WebApp(
        settings,
        metrics=metrics,
        traffic=TrafficLog(),
        poller=QueuePoller(settings, hub_queues(["gs"]), metrics),
        dead_letters=DeadLetterCache(DeadLetterQueue(settings), lambda: None),
        ready=lambda: True,
        public_feed=PublicFeed(settings, max_age_s=0),
    )


def settings_for(tmp_path: Path) -> Settings:
    return Settings(
        amqp_url="amqp://guest:guest@127.0.0.1:1/none",
        management_url="http://127.0.0.1:1",
        credentials_dir=tmp_path,
        procedures_database_url=f"sqlite:///{tmp_path / 'procedures.sqlite3'}",
    )


def test_feed_shows_only_what_was_approved(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = Store.open(settings.procedures_url, check=False)
    store.migrate()
    published, pending = draft(embargo=None), draft(embargo=None)
    for envelope in (published, pending, approval(published)):
        store.consume(POLICY, envelope, stamp=T0)
    store.close()
    response = web_app(settings).handle("GET", "/public/feed.atom", {}, b"")
    assert response.status == 200
    assert response.content_type.startswith("application/atom+xml")
    parsed = feedparser.parse(response.body)
    assert parsed.bozo == 0 and parsed.version == "atom10"
    assert [e.title for e in parsed.entries] == ["Le Ministre reçoit son homologue slovène"]
    assert parsed.feed.links[0].href.endswith("/public/feed.atom")


def test_unmigrated_database_answers_503_with_the_reason(tmp_path: Path) -> None:
    response = web_app(settings_for(tmp_path)).handle("GET", "/public/feed.atom", {}, b"")
    assert response.status == 503
    assert b"liaison procedures migrate" in response.body
