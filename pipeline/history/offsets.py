"""The offset log of one Kafka partition of one archived topic.

The archive, not the consumer group, is the record of what has been archived: a restart
seeks every partition to the offset its log names, so no row is lost and none is written
twice. One write of a partition's buffered rows (a *segment*) may span several files (one
per date and hour); it becomes visible as a whole:

1. every file is written under a temporary name (``.part-….parquet.tmp``) and synced;
2. the log records the intent: the segment's files and the offset after it (``pending``);
3. the files are renamed to their final names;
4. the log records the new offset and drops the intent.

The log itself is replaced atomically (written beside, synced, renamed). A crash before
step 2 leaves temporary files only (the rows are read again from Kafka); a crash after it
is rolled forward by :meth:`OffsetLog.recover` (every temporary file was synced before the
intent was written). File names hold the segment's offsets, so rolling forward twice
renames nothing twice.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["OffsetLog", "Pending", "fsync_dir"]


def fsync_dir(path: Path) -> None:
    """Make a rename or creation in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Pending:
    """A segment being made visible: its files as (temporary, final) paths relative to
    the archive root, and the offset after its last row."""

    next_offset: int
    files: tuple[tuple[str, str], ...]


class OffsetLog:
    """``ROOT/_offsets/topic=<table>/partition=<p>.json``.

    :param root: the archive root
    """

    def __init__(self, root: Path, table: str, partition: int):
        self.root = Path(root)
        self.path = self.root / "_offsets" / f"topic={table}" / f"partition={partition}.json"
        self.next_offset: int | None = None
        self.pending: Pending | None = None

    # ---------------------------------------------------------------- persistence
    def _load(self) -> None:
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            self.next_offset, self.pending = None, None
            return
        self.next_offset = doc.get("next_offset")
        p = doc.get("pending")
        self.pending = (
            Pending(int(p["next_offset"]), tuple((a, b) for a, b in p["files"])) if p else None
        )

    def _store(self) -> None:
        doc = {
            "next_offset": self.next_offset,
            "pending": None
            if self.pending is None
            else {
                "next_offset": self.pending.next_offset,
                "files": [list(f) for f in self.pending.files],
            },
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name("." + self.path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(doc, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)

    # ---------------------------------------------------------------- protocol
    def recover(self) -> int | None:
        """Finish or undo a segment left pending by a crash; the offset to resume from
        (``None``: nothing archived yet for this partition).

        :raises OSError: the log cannot be read or rewritten
        """
        self._load()
        p = self.pending
        if p is None:
            return self.next_offset
        present = [
            (self.root / tmp).exists() or (self.root / final).exists() for tmp, final in p.files
        ]
        if all(present):
            self._rename(p)
            self.next_offset = p.next_offset
        else:  # cannot happen when step 1 synced its files; never show half a segment
            for tmp, final in p.files:
                for name in (tmp, final):
                    (self.root / name).unlink(missing_ok=True)
        self.pending = None
        self._store()
        return self.next_offset

    def begin(self, next_offset: int, files: list[tuple[Path, Path]]) -> None:
        """Step 2: record the intent to make ``files`` (temporary, final) visible."""
        rel = tuple(
            (str(t.relative_to(self.root)), str(f.relative_to(self.root))) for t, f in files
        )
        self.pending = Pending(next_offset, rel)
        try:
            self._store()
        except OSError:
            self.pending = None
            raise

    def finish(self) -> None:
        """Steps 3 and 4: rename the pending files and record the new offset. When the log
        cannot be rewritten (full disk) the rename stands and :meth:`recover` (or the next
        :meth:`finish`) completes it.

        :raises OSError: the log could not be rewritten
        """
        p = self.pending
        if p is None:
            return
        self._rename(p)
        self.next_offset = p.next_offset
        self.pending = None
        self._store()

    def _rename(self, p: Pending) -> None:
        dirs = set()
        for tmp, final in p.files:
            src = self.root / tmp
            if src.exists():
                os.replace(src, self.root / final)
                dirs.add(src.parent)
        for d in dirs:
            fsync_dir(d)
