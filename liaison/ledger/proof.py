"""Inclusion proofs for one message: build them from a ledger, check them offline.

A proof file lets someone who holds only that file and the hub's public key
check that the records of a message are in the signed ledger::

    {
      "format": "liaison-audit-proof/1",
      "message_id": "…",
      "tree_size": N,                       the checkpoint's tree size
      "checkpoint": {…},                    the signed checkpoint (checkpoints.py)
      "public_key": "<base64>",             the hub key, raw 32 bytes (informative:
      "key_id": "<32 hex>",                 check it against the published key)
      "entries": [{"record": {…},           the full record, hash included
                   "leaf_index": seq,
                   "leaf_hash": "<hex>",
                   "inclusion_proof": ["<hex>", …]}],
      "unproven": [seq, …]                  records newer than the checkpoint
    }

Checking an entry: SHA-256 of the record's canonical bytes is its ``hash``;
``sha256(0x00 || canonical bytes)`` is the leaf hash; the RFC 9162 audit path
from that leaf at ``leaf_index`` gives the checkpoint's root; the checkpoint's
signature verifies under the public key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from liaison.errors import ConfigError
from liaison.ledger import checkpoints as cp
from liaison.ledger import merkle
from liaison.ledger.keys import key_id, parse_public_key, public_b64
from liaison.ledger.query import history, iter_lines
from liaison.ledger.records import Record, RecordError, split_line
from schemas.envelope import canonical_json
from schemas.errors import LiaisonError

FORMAT = "liaison-audit-proof/1"


class ProofUnavailableError(LiaisonError):
    """No proof can be built (unknown message, no checkpoint yet, log not matching)."""


def latest_checkpoint(directory: Path, public_key: Ed25519PublicKey) -> cp.Checkpoint:
    """The largest checkpoint of ``directory`` that ``public_key`` signed."""
    best: cp.Checkpoint | None = None
    for _, item in cp.iter_checkpoints(directory / cp.CHECKPOINTS_FILE):
        if (
            isinstance(item, cp.Checkpoint)
            and (best is None or item.tree_size > best.tree_size)
            and item.signature_valid(public_key)
        ):
            best = item
    if best is None:
        raise ProofUnavailableError(f"no valid signed checkpoint in {directory}")
    return best


def build_proof(directory: Path, message_id: str, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """The proof document for every record of ``message_id`` up to the latest checkpoint."""
    records = history(directory, message_id)
    if not records:
        raise ProofUnavailableError(f"no record of message {message_id} in {directory}")
    checkpoint = latest_checkpoint(directory, public_key)
    size = checkpoint.tree_size
    covered = [r for r in records if r.seq < size]
    if not covered:
        raise ProofUnavailableError(
            f"the records of {message_id} are newer than the latest checkpoint "
            f"(tree size {size}); try again after the next checkpoint"
        )
    paths = {r.seq: merkle.inclusion_ranges(r.seq, size) for r in covered}
    roots, leaves, root = _range_roots(iter_lines(directory), size, paths.values(), paths.keys())
    if root.hex() != checkpoint.root:
        raise ProofUnavailableError(
            f"the first {size} records do not match the latest checkpoint's root: "
            "run `liaison audit verify`"
        )
    return {
        "format": FORMAT,
        "message_id": message_id,
        "tree_size": size,
        "checkpoint": checkpoint.to_json(),
        "public_key": public_b64(public_key),
        "key_id": key_id(public_key),
        "entries": [
            {
                "record": r.to_json(),
                "leaf_index": r.seq,
                "leaf_hash": leaves[r.seq].hex(),
                "inclusion_proof": [roots[span].hex() for span in paths[r.seq]],
            }
            for r in covered
        ],
        "unproven": [r.seq for r in records if r.seq >= size],
    }


def _range_roots(
    lines: Iterable[bytes],
    size: int,
    path_ranges: Iterable[list[tuple[int, int]]],
    wanted_leaves: Iterable[int],
) -> tuple[dict[tuple[int, int], bytes], dict[int, bytes], bytes]:
    """Stream the first ``size`` leaves once; roots of the given ranges, some leaves, the root."""
    starts: dict[int, list[tuple[int, int]]] = {}
    for ranges in path_ranges:
        for span in ranges:
            starts.setdefault(span[0], []).append(span)
    want = set(wanted_leaves)
    active: dict[tuple[int, int], merkle.Accumulator] = {}
    roots: dict[tuple[int, int], bytes] = {}
    leaves: dict[int, bytes] = {}
    whole = merkle.Accumulator()
    for index, line in enumerate(lines):
        if index >= size:
            break
        parts = split_line(line)
        if parts is None:
            raise ProofUnavailableError(f"record {index} is malformed: run `liaison audit verify`")
        leaf = merkle.leaf_hash(parts[0])
        whole.append(leaf)
        if index in want:
            leaves[index] = leaf
        for span in starts.pop(index, []):
            active.setdefault(span, merkle.Accumulator())
        for span, acc in list(active.items()):
            acc.append(leaf)
            if span[1] == index + 1:
                roots[span] = acc.root()
                del active[span]
    if whole.size < size:
        raise ProofUnavailableError(f"the log holds {whole.size} records, fewer than {size}")
    return roots, leaves, whole.root()


@dataclass
class ProofCheck:
    """The outcome of :func:`check_proof`."""

    ok: bool = True
    key_id: str = ""
    #: Whether the key came from the proof file itself (then compare its key id).
    embedded_key: bool = False
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        """Record a problem."""
        self.ok = False
        self.problems.append(problem)


def check_proof(doc: Any, public_key: Ed25519PublicKey | None = None) -> ProofCheck:
    """Check a proof document: record hash → leaf → inclusion → checkpoint signature."""
    result = ProofCheck()
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        result.fail(f"not a {FORMAT} document")
        return result
    try:
        checkpoint = cp.Checkpoint.from_json(doc["checkpoint"])
        if public_key is None:
            public_key = parse_public_key(str(doc["public_key"]))
            result.embedded_key = True
        entries = list(doc["entries"])
        tree_size, message_id = doc["tree_size"], doc["message_id"]
    except (KeyError, TypeError, ValueError, cp.CheckpointError, ConfigError) as exc:
        result.fail(f"unreadable proof: {exc}")
        return result
    if not entries:
        result.fail("the proof has no entries")
    result.key_id = key_id(public_key)
    if not checkpoint.signature_valid(public_key):
        result.fail(f"the checkpoint is not signed by key {result.key_id}")
    if checkpoint.tree_size != tree_size:
        result.fail("the proof's tree size differs from its checkpoint's")
    root = bytes.fromhex(checkpoint.root)
    for number, entry in enumerate(entries):
        problem = _check_entry(entry, message_id, checkpoint.tree_size, root)
        if problem:
            result.fail(f"entry {number}: {problem}")
        else:
            result.checked += 1
    return result


def _check_entry(entry: Any, message_id: str, tree_size: int, root: bytes) -> str | None:
    try:
        record = Record.from_json(entry["record"])
        index = entry["leaf_index"]
        proof = [bytes.fromhex(h) for h in entry["inclusion_proof"]]
    except (KeyError, TypeError, ValueError, RecordError) as exc:
        return f"unreadable: {exc}"
    body = canonical_json(record.body())
    if hashlib.sha256(body).hexdigest() != record.hash:
        return f"record {record.seq} does not match its hash"
    if record.message_id != message_id:
        return f"record {record.seq} is about {record.message_id}, not {message_id}"
    if index != record.seq:
        return f"leaf index {index} is not the record's seq {record.seq}"
    try:
        merkle.verify_inclusion(index, tree_size, merkle.leaf_hash(body), proof, root)
    except merkle.ProofError as exc:
        return f"record {record.seq} is not in the signed tree: {exc}"
    return None
