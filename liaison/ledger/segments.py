"""Segment files: their names and order, reading their lines, and durable low-level writes.

Records live in ``segment-000001.jsonl``, ``segment-000002.jsonl``, … in an audit
directory, one record per line; a new segment starts when the current one would
pass ``segment_bytes``. Readers (verify, query, export, proofs) need only this
module; the writer's bookkeeping is in ``store.py``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

_SEGMENT = re.compile(r"^segment-(\d{6,})\.jsonl$")
_CHUNK = 8 * 1024 * 1024


def segment_name(number: int) -> str:
    """The file name of segment ``number`` (from 1)."""
    return f"segment-{number:06d}.jsonl"


def segment_number(path: Path) -> int:
    """The number in a segment file's name (0 if it is not one)."""
    match = _SEGMENT.match(path.name)
    return int(match.group(1)) if match else 0


def list_segments(directory: Path) -> list[Path]:
    """The segment files of ``directory``, in order."""
    found: list[tuple[int, Path]] = []
    with contextlib.suppress(FileNotFoundError):
        for path in directory.iterdir():
            match = _SEGMENT.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


class LineReader:
    """The complete lines of one file, read in large chunks; keeps any torn tail aside."""

    def __init__(
        self, path: Path, *, on_chunk: Callable[[int], None] | None = None, start: int = 0
    ) -> None:
        self.path = path
        self.start = start  # a byte offset where a line begins
        #: Bytes after the last newline (a line cut short), once iteration ended.
        self.torn = b""
        self._on_chunk = on_chunk

    def __iter__(self) -> Iterator[bytes]:
        rest = b""
        with self.path.open("rb") as handle:
            handle.seek(self.start)
            while chunk := handle.read(_CHUNK):
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                yield from lines
                if self._on_chunk is not None:
                    self._on_chunk(len(chunk))
        self.torn = rest


def fsync_dir(directory: Path) -> None:
    """Make a file's creation or removal in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


#: ``fdatasync`` where there is one: the data and the size, not the timestamps.
datasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)
