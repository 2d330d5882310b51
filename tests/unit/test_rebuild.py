"""``procedures rebuild`` reads the ledger as the router wrote it: which envelope it folds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liaison.core.decide import Incoming, RoutingContext, decide
from liaison.core.events import EventKind, decode_batch, encode_batch
from liaison.core.rules import Rules
from liaison.ledger.store import Ledger
from liaison.procedures import rebuild
from liaison.procedures.store import Store
from schemas.catalog import default_registry
from tests.unit.test_procedures_core import DIRECTORY, POLICY, letter

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_a_message_sharing_an_id_never_stands_in_for_the_routed_one(tmp_path: Path) -> None:
    """gs's letter is routed; gs-legal's message under the same id (refused) has its
    ``received`` record between gs's ``received`` and ``routed`` (two routers' batches
    interleave): the rebuild registers gs's letter, not gs-legal's words."""
    ctx = RoutingContext(
        default_registry(), DIRECTORY, Rules.load(None, DIRECTORY), "hub", receipt_secret=b"s" * 32
    )
    genuine = letter("gs", ("gs-archives",), at=NOW - timedelta(seconds=1))
    squatter = letter("gs-legal", ("gs-archives",), at=NOW - timedelta(seconds=1)).model_copy(
        update={"message_id": genuine.message_id}
    )
    first = decide(Incoming(genuine.encode(), "gs", "letter"), ctx, now=NOW)
    # Published by gs under gs-legal's name: refused, but its body parsed and is recorded.
    second = decide(Incoming(squatter.encode(), "gs", "letter"), ctx, now=NOW)
    assert first.routed and not second.routed
    received, *after = first.events
    assert received.event is EventKind.RECEIVED
    audit_dir = tmp_path / "audit"
    with Ledger.open(audit_dir, key=Ed25519PrivateKey.generate()) as ledger:
        # As the writer reads them: encoded by the router, decoded from the batch.
        ledger.append(decode_batch(encode_batch([received, *second.events, *after])))
    target = Store.open(f"sqlite:///{tmp_path / 'rebuilt.sqlite3'}", check=False)
    try:
        target.migrate()
        report = rebuild.fold_ledger(audit_dir, POLICY, default_registry(), target)
        assert report.folded == 1
        (row,) = rebuild.snapshot(target)["registry"].values()
        line = dict(zip(rebuild.COMPARED["registry"], row, strict=True))
        assert (line["sender"], line["message_key"]) == ("gs", f"gs/{genuine.message_id}")
    finally:
        target.close()
