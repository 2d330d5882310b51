"""Export bundles: a copy of the ledger that an auditor verifies offline.

A bundle has the audit directory's layout (segments, ``checkpoints.jsonl``,
``hub.pub``) plus ``README-AUDITOR.md``, so ``liaison audit verify`` reads either.
The checkpoints are copied before the segments: the writer only ever adds, so
every copied checkpoint covers records that are in the copy, even while the
writer runs. A line being written at that moment is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from liaison.ledger import checkpoints as cp
from liaison.ledger.keys import PUBLIC_KEY_FILE
from liaison.ledger.segments import list_segments
from schemas.errors import LiaisonError

README_NAME = "README-AUDITOR.md"
_CHUNK = 8 * 1024 * 1024

AUDITOR_SCRIPT = r"""
import base64, hashlib, json, pathlib, sys

bundle = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
prev, leaves = "0" * 64, []
for segment in sorted(bundle.glob("segment-*.jsonl")):
    for number, line in enumerate(segment.read_bytes().split(b"\n")[:-1], start=1):
        record = json.loads(line)
        claimed = record.pop("hash")
        body = json.dumps(
            record, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
        where = f"{segment.name} line {number}"
        assert hashlib.sha256(body).hexdigest() == claimed, f"{where}: changed"
        assert record["seq"] == len(leaves), f"{where}: out of sequence"
        assert record["prev"] == prev, f"{where}: chain broken"
        prev = claimed
        leaves.append(hashlib.sha256(b"\x00" + body).digest())


def tree_hash(hashes):  # RFC 9162 Merkle tree hash of leaf hashes
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + tree_hash(hashes[:k]) + tree_hash(hashes[k:])).digest()


checkpoints = (bundle / "checkpoints.jsonl").read_text("utf-8").splitlines()
for line in checkpoints:
    checkpoint = json.loads(line)
    size = checkpoint["tree_size"]
    assert size <= len(leaves), f"truncated: a checkpoint covers {size} records"
    assert tree_hash(leaves[:size]).hex() == checkpoint["root"], f"root differs at {size}"
    signed = json.dumps(
        {name: checkpoint[name] for name in ("root", "tree_size", "ts")},
        sort_keys=True, separators=(",", ":"),
    ).encode("utf-8")
    # Ed25519 signature over `signed`, base64 in checkpoint["signature"], e.g.:
    # from cryptography.hazmat.primitives.serialization import load_pem_public_key
    # load_pem_public_key((bundle / "hub.pub").read_bytes()).verify(
    #     base64.b64decode(checkpoint["signature"]), signed)
print(f"{len(leaves)} records, {len(checkpoints)} checkpoint roots: OK")
"""

README = f"""# Audit bundle: how to verify it

This folder is a copy of the Liaison hub's audit ledger.

- `segment-NNNNNN.jsonl`: the records, one JSON object per line, in order (`seq` 0, 1, …);
- `checkpoints.jsonl`: Merkle roots of the first `tree_size` records, signed by the hub;
- `hub.pub`: the hub's Ed25519 public key (PEM). Compare its key id (printed by
  `liaison audit verify`) with the one the Ministry publishes, or pass the key you
  trust with `--public-key`.

## With the Liaison tool

    liaison audit verify path/to/this/folder [--public-key trusted-hub.pub] [--strict]

It prints `OK: N records, M checkpoints verified`, or `FAILED at seq K: <kind>: <detail>`
with kind one of `changed`, `missing`, `reordered`, `duplicated`, `truncated`,
`bad_signature`, `bad_root`, `bad_chain`, `malformed` (and `unsigned` with `--strict`),
and exits 1. A proof for one message is checked with `liaison audit check-proof FILE`.

## By hand, with Python's hashlib and json

Each record's canonical bytes are the record without its `hash` key, serialised with
sorted keys, `,` and `:` as separators and no other whitespace, non-ASCII characters
kept as UTF-8. Then `hash = sha256(canonical bytes)` in hex; `prev` is the previous
record's `hash` (64 zeros for seq 0); the Merkle leaf hash is
`sha256(0x00 || canonical bytes)`, an interior node `sha256(0x01 || left || right)`
(RFC 9162). Each checkpoint signs, with Ed25519, the canonical JSON of its `root`,
`tree_size` and `ts`. This script checks all of it except the signatures (see the
comment for those):

```python
{AUDITOR_SCRIPT.strip()}
```
"""


class ExportError(LiaisonError):
    """The bundle cannot be written where asked."""


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What went into a bundle."""

    records: int
    segments: int
    checkpoints: int


def export_bundle(
    source: Path, out_dir: Path, *, progress: Callable[[int], None] | None = None
) -> ExportSummary:
    """Copy the ledger in ``source`` to the new or empty folder ``out_dir``."""
    if not source.is_dir():
        raise ExportError(f"{source} is not an audit directory")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ExportError(f"{out_dir} is not empty")
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = _copy_complete_lines(
        source / cp.CHECKPOINTS_FILE, out_dir / cp.CHECKPOINTS_FILE, None
    )
    segments = list_segments(source)
    records = 0
    for segment in segments:
        records += _copy_complete_lines(segment, out_dir / segment.name, progress)
    key = source / PUBLIC_KEY_FILE
    if key.exists():
        (out_dir / PUBLIC_KEY_FILE).write_bytes(key.read_bytes())
    (out_dir / README_NAME).write_text(README, encoding="utf-8")
    return ExportSummary(records=records, segments=len(segments), checkpoints=checkpoints)


def _copy_complete_lines(source: Path, target: Path, progress: Callable[[int], None] | None) -> int:
    """Copy ``source`` up to its last newline; how many lines were copied."""
    if not source.exists():
        return 0
    lines = 0
    rest = b""
    with source.open("rb") as reader, target.open("wb") as writer:
        while chunk := reader.read(_CHUNK):
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            writer.write(data[:cut])
            lines += data.count(b"\n", 0, cut)
            rest = data[cut:]
            if progress is not None:
                progress(len(chunk))
    return lines
