"""The ICC's releases in the procedures database (SQLite and PostgreSQL): held, published once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import feedparser
import pytest

from liaison.procedures import feed, release_store, releases
from liaison.procedures.store import Store
from tests.unit.test_releases import EMBARGO, POLICY, T0, approval, draft, reused, withdrawal


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.open(database_url, check=False)
    s.migrate()
    yield s
    s.close()


def public_entries(store: Store) -> list[feedparser.FeedParserDict]:
    with store.reading() as db:
        parsed = feedparser.parse(feed.render(release_store.public(db)))
    assert parsed.bozo == 0
    return list(parsed.entries)


def sweep(store: Store, at: object) -> int:
    fired = 0
    for deadline in store.due(at):  # type: ignore[arg-type]
        fired += store.fire(POLICY, deadline, stamp=at)  # type: ignore[arg-type]
    return fired


def sent_types(store: Store) -> list[str]:
    return [row.routing_key for row in store.unsent()]


def test_embargoed_release_is_published_once_at_the_embargo_across_a_reopen(
    database_url: str, store: Store
) -> None:
    release = draft()
    approved = approval(release)
    store.consume(POLICY, release, stamp=T0)
    store.consume(POLICY, approved, stamp=T0)
    assert sweep(store, EMBARGO - timedelta(seconds=1)) == 0
    assert public_entries(store) == [] and sent_types(store) == []
    store.close()  # the service stops; its deadline is durable
    again = Store.open(database_url)
    try:
        assert sweep(again, EMBARGO) == 1
        assert sweep(again, EMBARGO + timedelta(minutes=5)) == 0
        [entry] = public_entries(again)
        assert entry.published_parsed[:6] == EMBARGO.timetuple()[:6]
        assert sent_types(again) == ["icc.release_published"]
        # A redelivered approval changes nothing; another approval is refused.
        assert again.consume(POLICY, approved, stamp=EMBARGO) is False
        assert again.consume(POLICY, approval(release), stamp=EMBARGO) is True
        assert len(public_entries(again)) == 1
        assert sent_types(again) == ["icc.release_published", "procedure.refusal"]
    finally:
        again.close()


def test_self_approval_is_refused_and_nothing_is_public(store: Store) -> None:
    release = draft(embargo=None)
    store.consume(POLICY, release, stamp=T0)
    store.consume(POLICY, approval(release, sender="gs-icc"), stamp=T0)
    assert sweep(store, T0 + timedelta(days=10)) == 0
    assert public_entries(store) == []
    assert sent_types(store) == ["procedure.refusal"]
    with store.reading() as db:
        row = release_store.load(db, releases.subject_key(release))
    assert row is not None and row.status == releases.DRAFT


def test_withdrawal_cancels_the_pending_publication(store: Store) -> None:
    release = draft()
    store.consume(POLICY, release, stamp=T0)
    store.consume(POLICY, approval(release), stamp=T0)
    store.consume(POLICY, withdrawal(release, "gs-icc", T0 + timedelta(hours=1)), stamp=T0)
    assert sweep(store, EMBARGO + timedelta(hours=1)) == 0
    assert public_entries(store) == [] and sent_types(store) == []


def test_an_id_reused_with_other_words_is_refused_and_the_words_held_stand(
    store: Store,
) -> None:
    held = draft(body="Le texte que personne n'a relu.")
    shown = reused(held, "Le texte que l'approbateur a lu.")
    assert store.consume(POLICY, held, stamp=T0) is True
    # The other words under the same (author, id): already consumed, but not ignored.
    assert store.consume(POLICY, shown, stamp=T0) is False
    assert store.consume(POLICY, shown, stamp=T0) is False  # redelivered: refused once
    assert store.consume(POLICY, held, stamp=T0) is False  # the same words: nothing
    assert sent_types(store) == ["procedure.refusal"]
    # The approver approves what it read: not the release held, so refused.
    assert store.consume(POLICY, approval(shown), stamp=T0) is True
    assert sweep(store, EMBARGO + timedelta(days=1)) == 0
    assert public_entries(store) == []
    assert sent_types(store) == ["procedure.refusal", "procedure.refusal"]
    with store.reading() as db:
        row = release_store.load(db, releases.subject_key(held))
    assert row is not None and row.status == releases.DRAFT
    assert row.body == "Le texte que personne n'a relu."
    assert row.digest() == held.payload.digest()  # type: ignore[attr-defined]
