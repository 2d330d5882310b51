"""The public Atom feed of the ICC's releases, read from the procedures database.

The router's process serves it; the procedures service writes the rows. The feed
is re-rendered at most every ``max_age_s`` (a feed reader polls; a release is
public from its ``published_at``, so a few seconds' lag only delays, never
advances, what appears). The database is opened on first use, so a hub without
a procedures database still starts (the feed answers 503 until there is one).
"""

from __future__ import annotations

import threading
import time

from liaison.procedures import feed, release_store
from liaison.procedures.store import Store
from liaison.settings import Settings


class PublicFeed:
    """Renders ``/public/feed.atom`` from the released rows, cached briefly."""

    def __init__(self, settings: Settings, *, max_age_s: float = 5.0) -> None:
        self._url = settings.procedures_url
        self._base = f"http://{settings.http_host}:{settings.http_port}"
        self._max_age = max_age_s
        self._lock = threading.Lock()
        self._store: Store | None = None
        self._cached: tuple[float, bytes] | None = None

    def __call__(self) -> bytes:
        """The current Atom document; raises StoreError when the database is unusable."""
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached[0] < self._max_age:
                return self._cached[1]
            if self._store is None:
                self._store = Store.open(self._url)
            with self._store.reading() as db:
                document = feed.render(release_store.public(db), base_url=self._base)
            self._cached = (time.monotonic(), document)
            return document


__all__ = ["PublicFeed"]
