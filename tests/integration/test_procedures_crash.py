"""Exactly once across the two crash points: after the commit, and after the publish, before the ack."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from liaison.procedures import tables as t
from liaison.procedures.bootstrap import policy
from liaison.procedures.service import ProceduresService
from liaison.procedures.store import Store
from liaison.settings import Settings
from schemas.catalog import default_registry
from tests.integration.harness import depth, publish_as, running, wait_for
from tests.integration.procedures_support import procedures_settings, take_json
from tests.integration.test_procedures import letter


class Crashing(ProceduresService):
    """Dies once at ``point``: right after the commit, or after publishing, before the ack."""

    def __init__(self, point: str, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.point = point
        self.crashed = 0

    def flush(self, source: str | None) -> int:
        if source is not None and self.crashed == 0 and self.point == "after_commit":
            self.crashed += 1
            raise OSError("simulated crash after the commit, before the publish")
        sent = super().flush(source)
        if source is not None and self.crashed == 0 and self.point == "before_ack":
            self.crashed += 1
            raise OSError("simulated crash after the publish, before the ack")
        return sent


@pytest.mark.parametrize("point", ["after_commit", "before_ack"])
def test_crash_applies_nothing_twice_and_sends_the_same_receipt(
    point: str, hub_settings: Settings, database_url: str, tmp_path: Path
) -> None:
    """The letter is registered once, its sender gets receipt(s) with one id and one number."""
    settings = procedures_settings(hub_settings, database_url, tmp_path)
    store = Store.open(database_url, check=False)
    store.migrate()
    service = Crashing(point, settings, store, policy(settings), default_registry())
    worker = threading.Thread(target=service.run, kwargs={"install_signals": False})
    sent = letter("gs", ("gs-archives",))
    try:
        with running(settings, "serve", log_path=str(tmp_path / "router.log")):
            worker.start()
            publish_as(settings, "gs", sent)
            ((_, first),) = take_json(settings, "gs", 1)
            wait_for(lambda: depth(settings, "inbox.gs-procedures") == 0, what="the copy acked")
            wait_for(lambda: service.duplicates == 1, what="the redelivered copy seen as applied")
            # A redelivery after "before_ack" re-sends nothing new; "after_commit" sent once.
            extra = depth(settings, "inbox.gs")
            assert extra == 0
    finally:
        service.stop.set()
        worker.join(timeout=30)
    assert service.crashed == 1
    assert first["payload"]["original_message_id"] == str(sent.message_id)
    with store.reading() as db:
        assert db.execute(select(func.count()).select_from(t.registry)).scalar_one() == 1
        assert db.execute(select(func.count()).select_from(t.outbox)).scalar_one() == 1
        assert db.execute(select(t.outbox.c.sent_at)).scalar_one() is not None
    store.close()
