"""The public Atom feed of the ICC's releases, generated with feedgen.

Pure: releases in, bytes out. Only rows with a ``published_at`` are ever given
to it (see ``release_store.public``), so nothing unapproved or still under
embargo can appear. A withdrawn release stays in the feed, marked withdrawn and
without its text, so that readers who saw it learn it was taken down.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import uuid5

from feedgen.feed import FeedGenerator

from liaison.procedures.core import NAMESPACE
from liaison.procedures.releases import WITHDRAWN, Release

FEED_PATH = "/public/feed.atom"
FEED_CONTENT_TYPE = "application/atom+xml; charset=utf-8"
#: The feed's ``updated`` when nothing was ever released (a fixed moment, not "now").
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def entry_id(release: Release) -> str:
    """A stable id for a release's entry (its author and id; not guessable from the title)."""
    return f"urn:uuid:{uuid5(NAMESPACE, f'release:{release.key}')}"


def render(releases: Sequence[Release], *, base_url: str = "http://localhost") -> bytes:
    """The Atom document for ``releases`` (newest first)."""
    feed = FeedGenerator()
    feed.id(f"urn:uuid:{uuid5(NAMESPACE, 'icc-public-feed')}")
    feed.title("Ministère des Affaires étrangères et européennes: communiqués")
    feed.author({"name": "Cellule d'information et de communication"})
    feed.link(href=base_url.rstrip("/") + FEED_PATH, rel="self")
    feed.language("fr")
    moments = [_updated(r) for r in releases]
    feed.updated(max(moments) if moments else _EPOCH)
    # feedgen prepends each new entry: add oldest first so the document reads newest first.
    for release in sorted(releases, key=lambda r: (r.published_at or _EPOCH, r.key)):
        entry = feed.add_entry()
        entry.id(entry_id(release))
        entry.published(release.published_at)
        entry.updated(_updated(release))
        if release.status == WITHDRAWN:
            entry.title(_xml_text(f"Retiré: {release.title}"))
            when = release.withdrawn_at.isoformat() if release.withdrawn_at else ""
            # The reason is shown only when a holder of the approval right withdrew it: an
            # author's own words never reach the public feed unapproved.
            said = release.withdrawn_reason if release.withdrawn_by != release.author else None
            tail = f": {_xml_text(said)}" if said else "."
            entry.content(f"Ce communiqué a été retiré le {when}{tail}")
        else:
            entry.title(_xml_text(release.title))
            entry.content(_xml_text(release.body))
    document: bytes = feed.atom_str(pretty=True)
    return document


def _xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (one would break the whole feed)."""
    return _NOT_XML.sub("\ufffd", text)


#: Characters outside XML 1.0's Char production (C0 controls but tab, CR, LF; surrogates;
#: U+FFFE and U+FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _updated(release: Release) -> datetime:
    moment = release.withdrawn_at if release.status == WITHDRAWN else release.published_at
    return moment or _EPOCH


__all__ = ["FEED_CONTENT_TYPE", "FEED_PATH", "entry_id", "render"]
