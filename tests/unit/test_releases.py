"""The ICC's releases as a pure fold, and the public Atom feed (validated with feedparser)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import feedparser

from liaison.directory import load_directory
from liaison.procedures import core, feed, releases
from liaison.procedures.config import AckRules
from schemas.communication import (
    Language,
    PressRelease,
    ReleaseApproved,
    ReleaseApprovedV2,
    ReleaseWithdrawn,
    release_digest,
)
from schemas.envelope import Envelope, new_envelope
from schemas.types import Payload

DIRECTORY = load_directory()
POLICY = core.Policy("gs-procedures", "MAEE", DIRECTORY, AckRules.load(None, DIRECTORY))
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
EMBARGO = T0 + timedelta(hours=3)


def draft(
    embargo: datetime | None = EMBARGO, body: str = "Texte du communiqué."
) -> Envelope[Payload]:
    payload = PressRelease(
        title="Le Ministre reçoit son homologue slovène",
        body=body,
        embargo_until=embargo,
        languages=(Language.FR, Language.EN),
    )
    return new_envelope(payload, sender="gs-icc", recipients=("gs-dsg",), created_at=T0)


def approval(release: Envelope[Any], sender: str = "gs-dsg", at: datetime = T0) -> Envelope[Any]:
    """The approval of the draft the approver received: it carries that draft's digest."""
    payload = ReleaseApprovedV2.of(release.message_id, release.sender, release.payload)
    return new_envelope(payload, sender=sender, recipients=("gs-icc",), created_at=at)


def reused(release: Envelope[Any], body: str) -> Envelope[Any]:
    """The author's other words under the id of ``release`` (past the router's window)."""
    other = draft(embargo=release.payload.embargo_until, body=body)
    return other.model_copy(update={"message_id": release.message_id})


def withdrawal(release: Envelope[Any], sender: str, at: datetime) -> Envelope[Any]:
    payload = ReleaseWithdrawn(
        release_message_id=release.message_id, author=release.sender, reason="Visite reportée"
    )
    return new_envelope(payload, sender=sender, recipients=("gs-icc",), created_at=at)


class Clock:
    """A controllable clock over the fold: holds the state and the pending deadline."""

    def __init__(self) -> None:
        self.release: releases.Release | None = None
        self.deadline: core.Deadline | None = None
        self.sent: list[Envelope[Any]] = []

    def deliver(self, envelope: Envelope[Payload]) -> releases.ReleaseEffects:
        effects = releases.fold(POLICY, self.release, envelope, stamp=envelope.created_at)
        self._apply(effects)
        return effects

    def advance_to(self, now: datetime) -> None:
        if self.deadline is not None and self.deadline.due_at <= now and self.release:
            self.deadline, effects = None, releases.publish(POLICY, self.release, stamp=now)
            self._apply(effects)

    def _apply(self, effects: releases.ReleaseEffects) -> None:
        if effects.release is not None:
            self.release = effects.release
        if effects.deadline is not None:
            self.deadline = effects.deadline
        if self.deadline is not None and self.deadline.id in effects.cancel:
            self.deadline = None
        self.sent.extend(m.envelope for m in effects.messages)

    def feed(self) -> Any:
        public = [self.release] if self.release and self.release.published_at else []
        return feedparser.parse(feed.render(public))


def types(sent: list[Envelope[Any]]) -> list[str]:
    return [e.type for e in sent]


def test_unapproved_release_never_reaches_the_feed() -> None:
    world = Clock()
    world.deliver(draft(embargo=None))
    world.advance_to(T0 + timedelta(days=30))
    parsed = world.feed()
    assert parsed.bozo == 0 and parsed.entries == []
    assert world.sent == []


def test_self_approval_is_refused_with_a_reason() -> None:
    world = Clock()
    release = draft(embargo=None)
    world.deliver(release)
    effects = world.deliver(approval(release, sender="gs-icc"))
    assert effects.refused == "a release cannot be approved by its own author"
    assert types(world.sent) == ["procedure.refusal"]
    assert world.sent[0].recipients == ("gs-icc",)
    assert world.sent[0].payload.reason == effects.refused  # type: ignore[attr-defined]
    assert world.feed().entries == []


def test_approval_by_someone_without_the_right_is_refused() -> None:
    world = Clock()
    release = draft(embargo=None)
    world.deliver(release)
    effects = world.deliver(approval(release, sender="emb-berlin"))
    assert effects.refused == "emb-berlin does not hold the right to approve releases"
    assert world.feed().entries == []


def test_approval_of_an_unknown_release_is_refused() -> None:
    forged = draft(embargo=None)  # never delivered: the approval names nothing known
    effects = Clock().deliver(approval(forged))
    assert effects.refused is not None and "no press release" in effects.refused


def test_embargoed_release_appears_at_the_embargo_not_before() -> None:
    world = Clock()
    release = draft()
    world.deliver(release)
    world.deliver(approval(release))
    world.advance_to(EMBARGO - timedelta(seconds=1))
    assert world.feed().entries == [] and world.sent == []
    world.advance_to(EMBARGO)
    parsed = world.feed()
    assert parsed.bozo == 0
    [entry] = parsed.entries
    assert entry.title == "Le Ministre reçoit son homologue slovène"
    assert entry.published_parsed[:6] == EMBARGO.timetuple()[:6]
    assert types(world.sent) == ["icc.release_published"]
    world.advance_to(EMBARGO + timedelta(hours=1))
    assert len(world.feed().entries) == 1 and len(world.sent) == 1


def test_approval_after_the_embargo_publishes_at_once() -> None:
    world = Clock()
    release = draft(embargo=T0 - timedelta(hours=1))
    world.deliver(release)
    later = T0 + timedelta(minutes=5)
    world.deliver(approval(release, at=later))
    assert world.release is not None and world.release.published_at == later
    assert len(world.feed().entries) == 1


def test_an_approval_dated_ahead_does_not_publish_before_the_embargo() -> None:
    """Routed 4 minutes before the embargo but dated 2 after it (within the router's
    5 minutes of skew): dated by its routing, it waits for the embargo."""
    world = Clock()
    release = draft()
    world.deliver(release)
    routed = EMBARGO - timedelta(minutes=4)
    ahead = approval(release, at=EMBARGO + timedelta(minutes=2))
    world.deliver(core.dated(ahead, routed, timedelta(minutes=5)))
    assert world.release is not None and world.release.published_at is None
    assert world.deadline is not None and world.deadline.due_at == EMBARGO
    world.advance_to(EMBARGO - timedelta(seconds=1))
    assert world.sent == []
    world.advance_to(EMBARGO)
    assert types(world.sent) == ["icc.release_published"]


def test_withdrawn_before_the_embargo_is_never_published() -> None:
    world = Clock()
    release = draft()
    world.deliver(release)
    world.deliver(approval(release))
    world.deliver(withdrawal(release, "gs-icc", T0 + timedelta(hours=1)))
    world.advance_to(EMBARGO + timedelta(days=1))
    assert world.feed().entries == [] and world.sent == []


def test_withdrawal_after_publication_shows_on_the_feed() -> None:
    world = Clock()
    release = draft(embargo=None)
    world.deliver(release)
    world.deliver(approval(release))
    world.deliver(withdrawal(release, "gs-dsg", T0 + timedelta(hours=2)))
    [entry] = world.feed().entries
    assert entry.title.startswith("Retiré:")
    assert "Visite reportée" in entry.content[0].value
    assert "Texte du communiqué" not in entry.content[0].value
    assert types(world.sent) == ["icc.release_published", "icc.release_retracted"]


def test_a_participant_may_not_withdraw_someone_elses_release() -> None:
    world = Clock()
    release = draft(embargo=None)
    world.deliver(release)
    world.deliver(approval(release))
    effects = world.deliver(withdrawal(release, "emb-paris", T0 + timedelta(hours=2)))
    assert effects.refused == "emb-paris may not withdraw a release of gs-icc"
    assert world.release is not None and world.release.status == releases.PUBLISHED


def test_a_second_approval_is_refused_and_publishes_nothing_more() -> None:
    world = Clock()
    release = draft(embargo=None)
    world.deliver(release)
    world.deliver(approval(release))
    effects = world.deliver(approval(release, at=T0 + timedelta(minutes=1)))
    assert effects.refused == "the release is already published"
    assert types(world.sent) == ["icc.release_published", "procedure.refusal"]


def test_ids_of_what_is_sent_are_derived_so_repeats_are_dropped() -> None:
    a, b = Clock(), Clock()
    release = draft(embargo=None)
    for world in (a, b):
        world.deliver(release)
        world.deliver(approval(release))
    assert [e.message_id for e in a.sent] == [e.message_id for e in b.sent]


def test_the_empty_feed_is_valid_atom() -> None:
    parsed = feedparser.parse(feed.render([]))
    assert parsed.bozo == 0 and parsed.version == "atom10" and parsed.entries == []


def test_the_content_digest_is_the_documented_canonical_json() -> None:
    # The wire contract, written out by hand: keys sorted, compact, UTF-8, embargo in UTC
    # with six fraction digits (an embargo given at +01:00 is the same instant).
    text = (
        '{"body":"Texte du communiqué.","embargo_until":"2026-11-30T12:00:00.000000Z",'
        '"languages":["fr","en"],"title":"Le Ministre reçoit son homologue slovène"}'
    )
    expected = hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert draft().payload.digest() == expected  # type: ignore[attr-defined]
    plus_one = EMBARGO.astimezone(timezone(timedelta(hours=1)))
    assert draft(embargo=plus_one).payload.digest() == expected  # type: ignore[attr-defined]
    no_embargo = json.loads(text) | {"embargo_until": None}
    canonical = json.dumps(no_embargo, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert (
        release_digest(
            "Le Ministre reçoit son homologue slovène",
            "Texte du communiqué.",
            ("fr", "en"),
            None,
        )
        == hashlib.sha256(canonical.encode()).hexdigest()
    )
    # Order of the languages, one character of the body: another digest.
    swapped = PressRelease(
        title="Le Ministre reçoit son homologue slovène",
        body="Texte du communiqué.",
        embargo_until=EMBARGO,
        languages=(Language.EN, Language.FR),
    )
    assert swapped.digest() != expected
    assert draft(body="Texte du communiqué!").payload.digest() != expected  # type: ignore[attr-defined]


def test_an_approval_without_the_content_digest_is_refused() -> None:
    world = Clock()
    release = draft(embargo=None)
    world.deliver(release)
    v1 = ReleaseApproved(release_message_id=release.message_id, author="gs-icc")
    effects = world.deliver(
        new_envelope(v1, sender="gs-dsg", recipients=("gs-icc",), created_at=T0)
    )
    assert effects.refused is not None and "content_digest" in effects.refused
    assert types(world.sent) == ["procedure.refusal"]
    assert world.release is not None and world.release.status == releases.DRAFT
    assert world.feed().entries == []


def test_an_id_reused_with_other_words_gets_neither_text_published() -> None:
    # The author sends the procedures service one text and the approver, under the same
    # id, another: the approver's approval names what it read, which is not what is held.
    world = Clock()
    held = draft(embargo=None, body="Le texte que personne n'a relu.")
    world.deliver(held)
    shown = reused(held, "Le texte que l'approbateur a lu.")
    effects = world.deliver(approval(shown))
    assert effects.refused is not None and "content_digest" in effects.refused
    assert types(world.sent) == ["procedure.refusal"]
    assert world.sent[0].recipients == ("gs-dsg",)
    assert world.release is not None and world.release.status == releases.DRAFT
    world.advance_to(T0 + timedelta(days=1))
    assert world.feed().entries == []
    # The approval of the words held still publishes them.
    world.deliver(approval(held, at=T0 + timedelta(minutes=1)))
    [entry] = world.feed().entries
    assert "personne" in entry.content[0].value


def test_a_second_draft_with_other_words_under_the_same_id_is_refused() -> None:
    world = Clock()
    release = draft()
    world.deliver(release)
    world.deliver(approval(release))
    assert world.release is not None
    held = world.release
    effects = world.deliver(reused(release, "D'autres mots."))
    assert effects.refused is not None and "already has other words" in effects.refused
    assert effects.release is None and world.release == held
    assert types(world.sent) == ["procedure.refusal"]
    assert world.sent[0].recipients == ("gs-icc",)
    # The same words again are a redelivery: nothing is refused, nothing changes.
    assert world.deliver(release) == releases.ReleaseEffects()
    # Each other text is refused under its own notice id (a redelivery gives the same one).
    again = releases.fold(POLICY, held, reused(release, "D'autres mots."), stamp=T0)
    third = releases.fold(POLICY, held, reused(release, "Encore d'autres."), stamp=T0)
    assert again.messages[0].envelope.message_id == world.sent[0].message_id
    assert third.messages[0].envelope.message_id != world.sent[0].message_id
