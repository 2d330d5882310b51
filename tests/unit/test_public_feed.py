"""``/public/feed.atom`` on the hub's web server, from a real procedures database file."""

from __future__ import annotations

from pathlib import Path

import feedparser

from liaison.ops import DeadLetterQueue, hub_queues
from liaison.procedures.feed import render
from liaison.procedures.releases import PUBLISHED, WITHDRAWN, Release
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


class TestFeedText:
    def _release(self, **kw: object) -> Release:
        base: dict[str, object] = {
            "key": "gs-icc/1",
            "message_id": "00000000-0000-4000-8000-000000000001",
            "author": "gs-icc",
            "title": "Titre",
            "body": "Texte",
            "languages": ("fr",),
            "embargo_until": None,
            "received_at": T0,
            "status": PUBLISHED,
            "published_at": T0,
        }
        return Release(**{**base, **kw})  # type: ignore[arg-type]

    def test_a_character_xml_cannot_carry_does_not_break_the_feed(self) -> None:
        """NUL, vertical tab or U+FFFE in a release is replaced; the document stays valid Atom."""
        parsed = feedparser.parse(render([self._release(title="A\x00B\x0bC\ufffe")]))
        assert parsed.bozo == 0
        assert parsed.entries[0].title == "A\ufffdB\ufffdC\ufffd"

    def test_a_withdrawal_shows_no_unapproved_words(self) -> None:
        """The author's own withdrawal reason stays off the public feed: fixed words only."""
        withdrawn = self._release(
            status=WITHDRAWN,
            withdrawn_at=T0,
            withdrawn_by="gs-icc",
            withdrawn_reason="Achetez nos produits",
        )
        parsed = feedparser.parse(render([withdrawn]))
        assert "Achetez" not in parsed.entries[0].content[0].value
        assert parsed.entries[0].title == "Retiré: Titre"
