"""The ICC's releases as a pure fold: drafted, approved by another, held to the embargo.

A press release (``icc.press_release``) reaches the procedures service as a draft:
nothing is public until a holder of the approval right (a participant the
directory lets send ``icc.release_approved``; the broker and the router already
refuse anyone else) who is NOT its author approves it. Then it is published at
``max(approval, embargo_until)``: at once, or by a durable deadline at the
embargo, so a restart of the service neither loses nor advances it.

Publishing is this service's message ``icc.release_published`` (to the author
and the approver; the rules copy it to the subscribers) and a row the public
Atom feed is generated from. Withdrawal by the author or an approver cancels a
pending publication, or retracts a published release (``icc.release_retracted``;
the feed shows it withdrawn). Anything refused is answered with a
``procedure.refusal`` naming the reason, so it is in the ledger too.

Integrity: the author is the release envelope's validated sender; an approval
names (author, release id) because ids are only unique per sender, and the
content it approves by its digest (``icc.release_approved`` v2
``content_digest``, :func:`schemas.communication.release_digest` of the draft
the approver received); an approval by the author, by someone without the
right, of an unknown, withdrawn or already approved release, without a digest
or with the digest of other words than the release held is refused. A second
draft under a release's (author, id) with other words is refused too (the
first stands). Nothing but an approved release's row ever gets a
``published_at``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from liaison.procedures.core import Deadline, Outgoing, Policy, message_key, refusal_notice
from schemas.communication import (
    Language,
    PressRelease,
    ReleaseApproved,
    ReleaseApprovedV2,
    ReleasePublished,
    ReleaseRetracted,
    ReleaseWithdrawn,
    release_digest,
)
from schemas.envelope import Envelope, new_envelope
from schemas.types import Classification, Payload

RELEASE_PROCEDURE = "release"
APPROVAL_TYPE = ReleaseApproved.message_type
DRAFT_TYPE = PressRelease.message_type
#: The types this fold handles (their copies come through the rule icc-releases-to-procedures).
TYPES = frozenset(
    {PressRelease.message_type, ReleaseApproved.message_type, ReleaseWithdrawn.message_type}
)

DRAFT, APPROVED, PUBLISHED, WITHDRAWN = "draft", "approved", "published", "withdrawn"


@dataclass(frozen=True)
class Release:
    """One press release and where it stands."""

    key: str
    message_id: str
    author: str
    title: str
    body: str
    languages: tuple[str, ...]
    embargo_until: datetime | None
    received_at: datetime
    status: str = DRAFT
    approved_by: str | None = None
    approved_at: datetime | None = None
    publish_at: datetime | None = None
    published_at: datetime | None = None
    withdrawn_by: str | None = None
    withdrawn_at: datetime | None = None
    withdrawn_reason: str | None = None

    def digest(self) -> str:
        """The digest of this release's content, as an approval must carry it."""
        return release_digest(self.title, self.body, self.languages, self.embargo_until)


@dataclass(frozen=True)
class ReleaseEffects:
    """What one release message (or its deadline) changes."""

    release: Release | None = None  # the row to insert or replace
    deadline: Deadline | None = None
    cancel: tuple[str, ...] = ()
    messages: tuple[Outgoing, ...] = ()
    refused: str | None = None  # the reason, when the message was refused


def concerns(type_: str) -> bool:
    """Whether a delivered copy of ``type_`` belongs to this fold (a set lookup)."""
    return type_ in TYPES


def subject_key(envelope: Envelope[Payload]) -> str:
    """The key of the release a message is about (what the shell reads before folding)."""
    payload = envelope.payload
    if isinstance(payload, ReleaseApproved | ReleaseWithdrawn):
        return message_key(payload.author, payload.release_message_id)
    return message_key(envelope.sender, envelope.message_id)


def deadline_id(key: str) -> str:
    """The id of the embargo deadline of release ``key``."""
    return f"release:{key}"


def fold(
    policy: Policy, current: Release | None, envelope: Envelope[Payload], *, stamp: datetime
) -> ReleaseEffects:
    """The effects of one release, approval or withdrawal; ``stamp`` dates what is sent."""
    payload = envelope.payload
    if isinstance(payload, PressRelease):
        if current is None:
            return ReleaseEffects(release=_draft(envelope, payload))
        digest = payload.digest()
        if digest == current.digest():
            return ReleaseEffects()  # the same words again: nothing changes
        reason = (
            f"release {envelope.message_id} from {envelope.sender} already has other words "
            f"(it is {current.status}): a new text needs a new message id"
        )
        # Seeded with the digest: each other text is refused once, a redelivery not again.
        return _refuse(policy, envelope, reason, stamp, seed=digest)
    if isinstance(payload, ReleaseApproved):
        return _approve(policy, current, envelope, payload, stamp)
    if isinstance(payload, ReleaseWithdrawn):
        return _withdraw(policy, current, envelope, payload, stamp)
    return ReleaseEffects()


def _draft(envelope: Envelope[Payload], payload: PressRelease) -> Release:
    return Release(
        key=message_key(envelope.sender, envelope.message_id),
        message_id=str(envelope.message_id),
        author=envelope.sender,
        title=payload.title,
        body=payload.body,
        languages=tuple(language.value for language in payload.languages),
        embargo_until=payload.embargo_until,
        received_at=envelope.created_at,
    )


def _approve(
    policy: Policy,
    current: Release | None,
    envelope: Envelope[Payload],
    payload: ReleaseApproved,
    stamp: datetime,
) -> ReleaseEffects:
    approver = envelope.sender
    participant = policy.directory.get(approver)
    reason: str | None = None
    if current is None:
        reason = f"no press release {payload.release_message_id} from {payload.author} is known"
    elif approver == current.author:
        reason = "a release cannot be approved by its own author"
    elif participant is None or not participant.can_send(APPROVAL_TYPE):
        reason = f"{approver} does not hold the right to approve releases"
    elif current.status != DRAFT:
        reason = f"the release is already {current.status}"
    elif not isinstance(payload, ReleaseApprovedV2) or payload.content_digest is None:
        reason = (
            "an approval must name the content approved: icc.release_approved v2 "
            "with the draft's content_digest"
        )
    elif payload.content_digest != current.digest():
        reason = (
            f"the approval's content_digest is not that of release {current.message_id} "
            f"from {current.author}: it approves other words than the release's"
        )
    if reason is not None or current is None:
        return _refuse(policy, envelope, reason or "refused", stamp)
    now = envelope.created_at
    embargo = current.embargo_until
    publish_at = embargo if embargo is not None and embargo > now else now
    approved = replace(
        current, status=APPROVED, approved_by=approver, approved_at=now, publish_at=publish_at
    )
    if publish_at > now:
        due = Deadline(deadline_id(current.key), RELEASE_PROCEDURE, current.key, publish_at)
        return ReleaseEffects(release=approved, deadline=due)
    return publish(policy, approved, stamp=stamp)


def publish(policy: Policy, release: Release, *, stamp: datetime) -> ReleaseEffects:
    """Publish an approved release at its ``publish_at`` (the embargo deadline, or at once)."""
    if release.status != APPROVED or release.publish_at is None or release.approved_by is None:
        return ReleaseEffects()  # withdrawn meanwhile, or never approved: nothing is public
    published = replace(release, status=PUBLISHED, published_at=release.publish_at)
    notice = ReleasePublished(
        release_message_id=UUID(release.message_id),
        author=release.author,
        title=release.title,
        body=release.body,
        languages=tuple(Language(code) for code in release.languages),
        published_at=release.publish_at,
        approved_by=release.approved_by,
    )
    message = _send(
        policy,
        notice,
        (release.author, release.approved_by),
        release,
        f"published:{release.key}",
        stamp,
    )
    return ReleaseEffects(release=published, messages=(message,))


def _withdraw(
    policy: Policy,
    current: Release | None,
    envelope: Envelope[Payload],
    payload: ReleaseWithdrawn,
    stamp: datetime,
) -> ReleaseEffects:
    who = envelope.sender
    participant = policy.directory.get(who)
    may = who == payload.author or (participant is not None and participant.can_send(APPROVAL_TYPE))
    if current is None:
        reason = f"no press release {payload.release_message_id} from {payload.author} is known"
        return _refuse(policy, envelope, reason, stamp)
    if not may:
        return _refuse(
            policy, envelope, f"{who} may not withdraw a release of {current.author}", stamp
        )
    if current.status == WITHDRAWN:
        return ReleaseEffects()
    now = envelope.created_at
    withdrawn = replace(
        current,
        status=WITHDRAWN,
        withdrawn_by=who,
        withdrawn_at=now,
        withdrawn_reason=payload.reason,
    )
    if current.status != PUBLISHED:
        return ReleaseEffects(release=withdrawn, cancel=(deadline_id(current.key),))
    notice = ReleaseRetracted(
        release_message_id=UUID(current.message_id),
        author=current.author,
        withdrawn_at=now,
        withdrawn_by=who,
        reason=payload.reason,
    )
    recipients = tuple(
        dict.fromkeys(code for code in (current.author, current.approved_by) if code)
    )
    message = _send(policy, notice, recipients, current, f"retracted:{current.key}", stamp)
    return ReleaseEffects(release=withdrawn, messages=(message,))


def _send(
    policy: Policy,
    payload: Payload,
    recipients: tuple[str, ...],
    release: Release,
    seed: str,
    stamp: datetime,
) -> Outgoing:
    # Released means public: the subscribers (the website among them) are cleared for PUBLIC.
    envelope: Envelope[Any] = new_envelope(
        payload,
        sender=policy.code,
        recipients=tuple(dict.fromkeys(recipients)),
        correlation_id=UUID(release.message_id),
        causation_id=UUID(release.message_id),
        message_id=uuid5(policy.id_namespace, seed),
        created_at=stamp,
        classification=Classification.PUBLIC,
    )
    return Outgoing(envelope)


def _refuse(
    policy: Policy,
    envelope: Envelope[Payload],
    reason: str,
    stamp: datetime,
    *,
    seed: str | None = None,
) -> ReleaseEffects:
    notice = refusal_notice(policy, envelope, RELEASE_PROCEDURE, reason, stamp, seed=seed)
    return ReleaseEffects(messages=(notice,), refused=reason)


__all__ = [
    "APPROVED",
    "DRAFT",
    "DRAFT_TYPE",
    "PUBLISHED",
    "RELEASE_PROCEDURE",
    "TYPES",
    "WITHDRAWN",
    "Release",
    "ReleaseEffects",
    "concerns",
    "deadline_id",
    "fold",
    "publish",
    "subject_key",
]
