"""Buffered Parquet writing: rows of each Kafka partition collected in memory, written as
one segment (one file per date and hour of event time) when the buffer reaches its size
or age bound, made visible atomically through the partition's :class:`OffsetLog`.

Nothing here talks to Kafka: the archiver hands over the records of a partition with their
offsets and commits to the consumer group what :meth:`ArchiveWriter.flush_due` reports as
durable.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from pipeline.deadletter import Reason
from pipeline.errors import ArchiveError, DiskFull
from pipeline.history.layout import (
    Table,
    bucket_dir,
    date_hour,
    day_text,
    file_name,
    table_for_topic,
    table_name,
)
from pipeline.history.offsets import OffsetLog, fsync_dir

__all__ = ["ArchiveWriter", "Bounds", "Flushed", "Rejected", "decode_rows", "prune", "write_file"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bounds:
    """When a partition's buffer is written.

    :param max_rows: rows buffered per partition
    :param max_bytes: Arrow bytes buffered per partition
    :param max_age_s: seconds since the buffer's first row (wall clock)
    :param row_group_rows: rows per Parquet row group
    """

    max_rows: int = 1_000_000
    max_bytes: int = 256 << 20
    max_age_s: float = 300.0
    row_group_rows: int = 16_384


@dataclass(frozen=True)
class Rejected:
    """A record that could not be decoded (it becomes a dead letter)."""

    topic: str
    partition: int
    offset: int
    value: bytes
    reason: str
    detail: str


@dataclass(frozen=True)
class Flushed:
    """A partition whose rows up to ``next_offset`` (exclusive) are now in the archive."""

    topic: str
    partition: int
    next_offset: int
    rows: int = 0
    newest_t_ms: int | None = None


_any_json = msgspec.json.Decoder()


def decode_rows(
    table: Table,
    partition: int,
    offsets: Sequence[int],
    timestamps_ms: Sequence[int],
    values: Sequence[bytes],
) -> tuple[pa.Table, list[tuple[int, str]]]:
    """Rows of ``table`` from one partition's record values.

    Records whose event time is missing take the Kafka timestamp.

    :returns: the rows, and (index, detail) of every value that is not a record of the topic
    """
    bad: list[tuple[int, str]] = []
    keep = list(range(len(values)))
    while True:
        vals = [values[i] for i in keep]
        try:
            cols = _columns(table, vals)
            break
        except (pa.ArrowInvalid, msgspec.DecodeError, msgspec.ValidationError, ValueError,
                TypeError, KeyError, AttributeError) as exc:  # fmt: skip
            # find the culprits one by one (rare: producers write schema records)
            good = []
            for i in keep:
                try:
                    _columns(table, [values[i]])
                    good.append(i)
                except Exception as one:  # noqa: BLE001 - each reason becomes a dead letter
                    bad.append((i, f"{type(one).__name__}: {one}"[:500]))
            if len(good) == len(keep):  # the batch fails, no record alone does
                raise ArchiveError(f"cannot decode a batch of {table.name}: {exc}") from exc
            keep = good
    n = len(keep)
    ts = pa.array([timestamps_ms[i] for i in keep], pa.int64())
    t = cols.column("t_ms")
    cols = cols.set_column(cols.schema.get_field_index("t_ms"), "t_ms", pc.coalesce(t, ts))
    cols = cols.append_column("kafka_partition", pa.array(np.full(n, partition, np.int32)))
    cols = cols.append_column("kafka_offset", pa.array([offsets[i] for i in keep], pa.int64()))
    if table.keep_record:
        cols = cols.append_column("record", pa.array(vals, pa.binary()).cast(pa.string()))
    return cols.cast(table.schema), bad


def _columns(table: Table, values: Sequence[bytes]) -> pa.Table:
    if not values:
        return table.flat.empty_table()
    if table.rows is not None:
        return pa.Table.from_pydict(table.rows(values), schema=table.flat)
    for v in values:  # pyarrow's reader accepts some non-objects silently: check each
        if not v.lstrip().startswith(b"{"):
            raise ValueError("not a JSON object")
    data = b"\n".join(v.replace(b"\n", b" ") for v in values)
    return pj.read_json(
        io.BytesIO(data),
        read_options=pj.ReadOptions(block_size=max(1 << 20, len(data) // 4 + 1)),
        parse_options=pj.ParseOptions(
            explicit_schema=table.flat, unexpected_field_behavior="ignore"
        ),
    ).select(table.flat.names)


@dataclass
class _Buffer:
    table: Table
    parts: list[pa.Table] = field(default_factory=list)
    rows: int = 0
    nbytes: int = 0
    first_offset: int = -1
    last_offset: int = -1
    since_s: float = 0.0


class ArchiveWriter:
    """Buffers and writes the rows of the partitions this process archives.

    :param root: archive root directory
    """

    def __init__(self, root: str | os.PathLike[str], bounds: Bounds | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.bounds = bounds or Bounds()
        self.counters: Counter[str] = Counter()
        self._buffers: dict[tuple[str, int], _Buffer] = {}
        self._logs: dict[tuple[str, int], OffsetLog] = {}
        self.disk_full = False

    # ---------------------------------------------------------------- partitions
    def recover(self, topic: str, partition: int) -> int | None:
        """Open a partition: finish its interrupted segment, if any; the offset to resume
        from (``None``: nothing of it archived yet)."""
        key = (topic, partition)
        self._buffers.pop(key, None)
        lg = OffsetLog(self.root, table_name(topic), partition)
        self._logs[key] = lg
        return lg.recover()

    def release(self, topic: str, partition: int) -> None:
        """Forget a partition (after a rebalance took it away); buffered rows are dropped:
        the partition's new owner reads them again from the logged offset."""
        self._buffers.pop((topic, partition), None)
        self._logs.pop((topic, partition), None)

    def next_offset(self, topic: str, partition: int) -> int | None:
        lg = self._logs.get((topic, partition))
        return lg.next_offset if lg else None

    # ---------------------------------------------------------------- rows
    def add(
        self,
        topic: str,
        partition: int,
        offsets: Sequence[int],
        timestamps_ms: Sequence[int],
        values: Sequence[bytes],
    ) -> list[Rejected]:
        """Buffer one partition's records (offsets increasing); returns the rejected ones."""
        if not values:
            return []
        key = (topic, partition)
        if key not in self._logs:
            self.recover(topic, partition)
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = _Buffer(table_for_topic(topic), since_s=time.monotonic())
        rows, bad = decode_rows(buf.table, partition, offsets, timestamps_ms, values)
        if buf.first_offset < 0:
            buf.first_offset = int(offsets[0])
        buf.last_offset = int(offsets[-1])
        if rows.num_rows:
            buf.parts.append(rows)
            buf.rows += rows.num_rows
            buf.nbytes += rows.nbytes
        self.counters["rows"] += rows.num_rows
        self.counters["rejected"] += len(bad)
        return [
            Rejected(topic, partition, int(offsets[i]), values[i], Reason.UNDECODABLE_RECORD, d)
            for i, d in bad
        ]

    def buffered_rows(self) -> int:
        return sum(b.rows for b in self._buffers.values())

    def due(self, now_s: float | None = None) -> list[tuple[str, int]]:
        """Partitions whose buffer reached a bound."""
        now_s = time.monotonic() if now_s is None else now_s
        b = self.bounds
        return [
            key
            for key, buf in self._buffers.items()
            if buf.first_offset >= 0
            and (
                buf.rows >= b.max_rows
                or buf.nbytes >= b.max_bytes
                or now_s - buf.since_s >= b.max_age_s
            )
        ]

    def flush_due(self, force: bool = False) -> tuple[list[Flushed], DiskFull | None]:
        """Write every partition that reached a bound (all of them with ``force``).

        :returns: the partitions written, and the :class:`DiskFull` error if the disk was
            full for some (their rows stay buffered; the call after space returns writes them)
        """
        keys = list(self._buffers) if force else self.due()
        done: list[Flushed] = []
        full: DiskFull | None = None
        for key in keys:
            try:
                f = self.flush(*key)
            except DiskFull as exc:
                full = exc
                continue
            if f is not None:
                done.append(f)
        self.disk_full = full is not None
        return done, full

    def flush(self, topic: str, partition: int) -> Flushed | None:
        """Write one partition's buffer as one segment.

        :raises DiskFull: nothing of the segment was made visible; the rows stay buffered
        """
        key = (topic, partition)
        buf = self._buffers.get(key)
        if buf is None or buf.first_offset < 0:
            return None
        lg = self._logs[key]
        next_offset = buf.last_offset + 1
        rows = buf.rows
        newest = max(
            (int(pc.max(p.column("t_ms")).as_py()) for p in buf.parts if p.num_rows), default=None
        )
        files: list[tuple[Path, Path]] = []
        try:
            if buf.rows:
                self._write_segment(buf, partition, files)
            if files:
                lg.begin(next_offset, files)
        except OSError as exc:
            for tmp, _ in files:
                tmp.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                self.counters["disk_full"] += 1
                raise DiskFull(f"archive {self.root}: {exc.strerror} writing {topic}") from exc
            raise
        del self._buffers[key]
        try:
            if files:
                lg.finish()
            else:  # every record of the segment was rejected: only the offset moves
                lg.next_offset = next_offset
                lg._store()
        except OSError as exc:
            # the files are visible; the log keeps the intent and recovery completes it
            log.warning("offset log of %s[%d] not rewritten: %s", topic, partition, exc)
            self.counters["offset_log_failed"] += 1
            return None
        self.counters["files"] += len(files)
        self.counters["segments"] += 1
        return Flushed(topic, partition, next_offset, rows, newest)

    def _write_segment(self, buf: _Buffer, partition: int, files: list[tuple[Path, Path]]) -> None:
        """Write the temporary files of a segment, appending each to ``files`` before it is
        created (so that a failure can remove them all)."""
        rows = pa.concat_tables(buf.parts)
        day, hour = date_hour(rows.column("t_ms").to_numpy())
        bucket = day * 24 + hour
        name = file_name(partition, buf.first_offset, buf.last_offset)
        order = np.argsort(bucket, kind="stable")
        sorted_b = bucket[order]
        cuts = np.flatnonzero(np.diff(sorted_b)) + 1
        meta = {
            b"shorewatch.topic": buf.table.name.encode(),
            b"kafka.partition": str(partition).encode(),
            b"kafka.first_offset": str(buf.first_offset).encode(),
            b"kafka.last_offset": str(buf.last_offset).encode(),
        }
        for idx in np.split(order, cuts):
            b = int(bucket[idx[0]])
            part = rows.take(pa.array(idx))
            if buf.table.sort_by:
                part = part.sort_by(buf.table.sort_by)
            d = bucket_dir(self.root, buf.table.name, day_text(b // 24), b % 24)
            d.mkdir(parents=True, exist_ok=True)
            final = d / name
            tmp = d / f".{name}.tmp"
            files.append((tmp, final))
            write_file(part.replace_schema_metadata(meta), tmp, self.bounds.row_group_rows)
        for d in {t.parent for t, _ in files}:
            fsync_dir(d)


def write_file(table: pa.Table, path: Path, row_group_rows: int) -> None:
    """Write one data file (zstd, ``row_group_rows`` per row group) and sync it to disk."""
    with open(path, "wb") as f:
        pq.write_table(table, f, compression="zstd", row_group_size=row_group_rows)
        f.flush()
        os.fsync(f.fileno())


def prune(root: str | os.PathLike[str], retention_days: float, now_ms: int) -> list[Path]:
    """Delete every ``date=`` directory older than ``retention_days`` (whole UTC days before
    ``now_ms`` minus the retention), and temporary files left by crashes more than an hour
    ago; returns the directories deleted."""
    root = Path(root)
    cutoff = day_text(int((now_ms - retention_days * 86_400_000) // 86_400_000))
    gone: list[Path] = []
    for tdir in root.glob("topic=*"):
        for ddir in tdir.glob("date=*"):
            if ddir.name.removeprefix("date=") < cutoff:
                shutil.rmtree(ddir, ignore_errors=True)
                gone.append(ddir)
    old = time.time() - 3600
    for tmp in root.glob("topic=*/date=*/hour=*/.part-*.tmp"):
        try:
            if tmp.stat().st_mtime < old:
                tmp.unlink()
        except FileNotFoundError:
            pass
    return gone
