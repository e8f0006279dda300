"""``shorewatch archive``: a Kafka consumer group of its own writing every archived topic to
Parquet (:mod:`pipeline.history.writer`).

Scale with partitions: each archiver process of the group (``shorewatch-archive`` by
default) archives the partitions the group assigns to it. On assignment a partition is
sought to the offset its offset log names (:mod:`pipeline.history.offsets`), not to the
group's committed offset: the archive is the record of what is archived. The group's
offsets are committed after each durable write, for lag monitoring.

A full disk stops writing and committing: the partitions are paused (their rows stay
buffered, Kafka keeps the rest), ``shorewatch_archive_disk_full_total`` goes up and
``shorewatch_archive_paused`` is 1, a warning names the archive, and the write is retried
every ``retry_s`` until it succeeds.

Prometheus metrics (:mod:`pipeline.metrics`, served on ``SHOREWATCH_METRICS_PORT``):
``shorewatch_archive_rows_total{table}``, ``shorewatch_archive_lag_seconds{table}``,
``shorewatch_dead_letters_total{reason,stage="archive"}``, and the two above.

Records that are not records of their topic go to ``shorewatch.deadletter.v1`` (reason
``undecodable_record``, stage ``archive``) and are counted; they never stop the archive.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge

from pipeline import metrics, topics
from pipeline.deadletter import dead_letter
from pipeline.history.layout import default_topics, table_name
from pipeline.history.writer import ArchiveWriter, Bounds, Rejected, prune

__all__ = ["Archiver", "cmd_archive", "run_archiver"]

log = logging.getLogger(__name__)

_enc = msgspec.json.Encoder()

DISK_FULL = PromCounter(
    "shorewatch_archive_disk_full", "Archive writes refused because the disk was full"
)
PAUSED = Gauge("shorewatch_archive_paused", "1 while the archiver waits for disk space")


class _Listener(ConsumerRebalanceListener):
    def __init__(self, archiver: Archiver):
        self.a = archiver

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.a._revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.a._assigned(list(assigned))


class Archiver:
    """One archiver process.

    :param root: archive root directory
    :param retention_days: delete dates older than this (``None``: keep everything)
    :param retry_s: seconds between write attempts while the disk is full
    """

    def __init__(
        self,
        bootstrap: str,
        root: str | os.PathLike[str],
        *,
        topic_names: Sequence[str] | None = None,
        group_id: str = "shorewatch-archive",
        bounds: Bounds | None = None,
        retention_days: float | None = None,
        retry_s: float = 5.0,
        max_records: int = 50_000,
        metrics_file: str | None = None,
    ):
        self.bootstrap = bootstrap
        self.root = Path(root)
        self.topics = list(topic_names or default_topics())
        self.group_id = group_id
        self.writer = ArchiveWriter(self.root, bounds)
        self.retention_days = retention_days
        self.retry_s = retry_s
        self.max_records = max_records
        self.metrics_file = metrics_file
        self.counters: Counter[str] = Counter()
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self._paused = False
        self._next_try_s = 0.0
        #: monotonic time of the first record received (benchmarks measure from it)
        self.first_record_s: float | None = None
        self._stop = asyncio.Event()

    # ---------------------------------------------------------------- rebalance
    async def _revoked(self, tps: list[TopicPartition]) -> None:
        if not tps:
            return
        assert self.consumer is not None
        for tp in tps:
            try:
                f = self.writer.flush(tp.topic, tp.partition)
                if f is not None:
                    await self._commit([f])
            except Exception as exc:  # noqa: BLE001 - the new owner reads the rows again
                log.warning("partition %s[%d] revoked unwritten: %s", tp.topic, tp.partition, exc)
            self.writer.release(tp.topic, tp.partition)

    async def _assigned(self, tps: list[TopicPartition]) -> None:
        assert self.consumer is not None
        fresh = []
        for tp in tps:
            nxt = self.writer.recover(tp.topic, tp.partition)
            if nxt is None:
                fresh.append(tp)
            else:
                self.consumer.seek(tp, nxt)
        if fresh:
            await self.consumer.seek_to_beginning(*fresh)
        if self._paused:
            self.consumer.pause(*tps)
        log.info("archiving %d partition(s): %s", len(tps), sorted(map(str, tps)))

    # ---------------------------------------------------------------- loop
    async def _commit(self, flushed: list[Any]) -> None:
        assert self.consumer is not None
        offsets = {
            TopicPartition(f.topic, f.partition): OffsetAndMetadata(f.next_offset, "")
            for f in flushed
        }
        assignment = self.consumer.assignment()
        offsets = {tp: o for tp, o in offsets.items() if tp in assignment}
        self.counters["segments"] += len(flushed)
        now_s = time.time()
        for f in flushed:
            table = table_name(f.topic)
            metrics.ARCHIVE_ROWS.labels(table).inc(f.rows)
            if f.newest_t_ms is not None:
                metrics.ARCHIVE_LAG.labels(table).set(now_s - f.newest_t_ms / 1000.0)
        if offsets:
            try:
                await self.consumer.commit(offsets)
            except Exception as exc:  # noqa: BLE001 - the archive's own log is the truth
                self.counters["group_commit_failed"] += 1
                log.warning("committing group offsets failed: %s", exc)

    async def _dead_letters(self, rejected: list[Rejected]) -> None:
        assert self.producer is not None
        for r in rejected:
            dl = dead_letter(
                r.reason,
                source=f"{r.topic}[{r.partition}]@{r.offset}",
                stage="archive",
                detail=r.detail,
                raw=r.value,
                rx_t_ms=int(time.time() * 1000),
            )
            await self.producer.send(topics.DEADLETTER.name, _enc.encode(dl), key=b"archive")
            self.counters[f"dead_letters.{r.reason}"] += 1
            metrics.DEAD_LETTERS.labels(str(r.reason), "archive").inc()

    def _flush(self, force: bool = False) -> list[Any]:
        done, full = self.writer.flush_due(force=force)
        assert self.consumer is not None
        if full is not None:
            self.counters["disk_full"] += 1
            DISK_FULL.inc()
            PAUSED.set(1)
            if not self._paused:
                log.warning(
                    "%s; pausing consumption and offset commits, retrying every %g s",
                    full,
                    self.retry_s,
                )
                self.consumer.pause(*self.consumer.assignment())
                self._paused = True
            self._next_try_s = time.monotonic() + self.retry_s
        elif self._paused:
            log.warning("archive %s writable again: resuming", self.root)
            self.consumer.resume(*self.consumer.assignment())
            self._paused = False
            PAUSED.set(0)
            self.counters["disk_full_resumed"] += 1
        return done

    def metrics(self) -> dict[str, float]:
        """Prometheus-style metrics of this process."""
        c, w = self.counters, self.writer.counters
        return {
            "shorewatch_archive_rows_total": w["rows"],
            "shorewatch_archive_files_total": w["files"],
            "shorewatch_archive_segments_total": w["segments"],
            "shorewatch_archive_rejected_total": w["rejected"],
            "shorewatch_archive_disk_full_total": c["disk_full"],
            "shorewatch_archive_paused": 1.0 if self._paused else 0.0,
            "shorewatch_archive_buffered_rows": self.writer.buffered_rows(),
        }

    def _write_metrics(self) -> None:
        if not self.metrics_file:
            return
        text = "".join(f"{k} {v}\n" for k, v in self.metrics().items())
        tmp = self.metrics_file + ".tmp"
        try:
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, self.metrics_file)
        except OSError:
            pass

    def ready(self) -> tuple[bool, str]:
        """``/readyz``: partitions assigned and the disk writable."""
        if self._paused:
            return False, "disk full: waiting for space"
        if self.consumer is None or not self.consumer.assignment():
            return False, "no partitions assigned yet"
        return True, "archiving"

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Archive until :meth:`stop`; on a clean stop every buffer is written."""
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 << 20,
            fetch_max_bytes=64 << 20,
            client_id="shorewatch-archive",
        )
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await self.producer.start()
        await self.consumer.start()
        self.consumer.subscribe(self.topics, listener=_Listener(self))
        last_prune = 0.0
        last_metrics = 0.0
        try:
            while not self._stop.is_set():
                batches = await self.consumer.getmany(timeout_ms=200, max_records=self.max_records)
                if batches and self.first_record_s is None:
                    self.first_record_s = time.monotonic()
                for tp, msgs in batches.items():
                    if not msgs:
                        continue
                    rejected = self.writer.add(
                        tp.topic,
                        tp.partition,
                        [m.offset for m in msgs],
                        [m.timestamp for m in msgs],
                        [m.value or b"" for m in msgs],
                    )
                    if rejected:
                        await self._dead_letters(rejected)
                now = time.monotonic()
                if not self._paused or now >= self._next_try_s:
                    done = self._flush(force=self._paused)
                    if done:
                        await self._commit(done)
                if self.retention_days is not None and now - last_prune > 3600:
                    for d in prune(self.root, self.retention_days, int(time.time() * 1000)):
                        log.info("retention: deleted %s", d)
                    last_prune = now
                if now - last_metrics > 5:
                    self._write_metrics()
                    last_metrics = now
            done, full = self.writer.flush_due(force=True)
            if done:
                await self._commit(done)
            if full is not None:
                log.warning(
                    "stopping with rows unwritten (%s): they are read again on restart", full
                )
        finally:
            self._write_metrics()
            await self.consumer.stop()
            await self.producer.stop()


def run_archiver(archiver: Archiver) -> None:
    """Run until SIGINT or SIGTERM."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, archiver.stop)
        async with metrics.serve_from_env("archive", archiver.ready):
            await archiver.run()

    asyncio.run(main())


def cmd_archive(args: Any) -> int:
    """``shorewatch archive``."""
    from pipeline.settings import Settings

    archiver = Archiver(
        Settings.from_env().broker(),
        args.root,
        topic_names=args.topic or None,
        group_id=args.group,
        bounds=Bounds(
            max_rows=args.max_rows,
            max_bytes=int(args.max_mb * (1 << 20)),
            max_age_s=args.max_age_s,
        ),
        retention_days=args.retention_days,
        retry_s=args.retry_s,
        metrics_file=args.metrics_file,
    )
    run_archiver(archiver)
    return 0
