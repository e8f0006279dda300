"""The decode agent: raw AIS micro-batches to positions, statics, fixes and dead letters."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import faust
import msgspec
import numpy as np

from pipeline import metrics as prom
from pipeline import topics
from pipeline.deadletter import Reason, dead_letter
from pipeline.engine.columns import PositionColumns
from pipeline.engine.decode import DecodedBatch, pack_fixes
from pipeline.engine.source_progress import SourceProgress
from pipeline.worker.batching import (
    FIX_BATCH_MAX,
    FIX_STATICS_MAX,
    RAW_TAKE_MAX,
    RAW_TAKE_WITHIN_S,
    BatchSender,
    Metrics,
    json_encoder,
    raw_topic,
    wall_ms,
)
from pipeline.worker.observe import observe_batch
from schemas import records

if TYPE_CHECKING:
    from pipeline.core.nmea import Framed

log = logging.getLogger(__name__)


#: how often the decode stage re-states its progress when no input comes, s of wall time
PROGRESS_TICK_S = 1.0


def _register_decode(app: faust.App) -> None:
    handler = _DecodeAgent(app)

    @app.agent(raw_topic(app, topics.AIS_RAW), name="shorewatch.decode")
    async def decode(stream: faust.StreamT) -> None:
        # A micro-batch of raw records at a time, one flush (and wait for the acks) per
        # micro-batch: ack round trips are paid per batch, not per record.
        async for values in stream.take(RAW_TAKE_MAX, within=RAW_TAKE_WITHIN_S):
            started = time.perf_counter()
            await handler.handle(values)
            observe_batch("decode", len(values), started, handler.newest_t_ms)

    @app.timer(interval=PROGRESS_TICK_S)
    async def decode_progress() -> None:
        # a source that stopped sending becomes idle with no input at all: its progress
        # must still reach the fixes partitions, or the area would wait for it forever
        await handler.tick()


def _newest_t_ms(out: DecodedBatch) -> int:
    """The newest event time of a decoded batch's position and static reports, ms UTC
    (-1: none)."""
    cols = out.position_columns
    pos = int(cols.t_ms.max()) if cols is not None and len(cols) else -1
    return max([pos, *(st.t_ms for st in out.statics)])


class _DecodeAgent:
    """What the decode agent keeps between micro-batches (the reassembly and
    de-duplication state, the batch sender, the key cache) and the steps of one."""

    def __init__(self, app: faust.App) -> None:
        from pipeline.core.nmea import Deduplicator, Reassembler
        from pipeline.engine.decode import decode_framed, frame_batch

        self.decode_framed = decode_framed
        self.frame_batch = frame_batch
        self.metrics: Metrics = app.shorewatch_metrics  # type: ignore[attr-defined]
        self.raw_dec = msgspec.json.Decoder(records.RawAisBatch)
        self.sender = BatchSender(app)
        # Fragment and de-duplication state live in the worker: a fragment group that
        # straddles a rebalance is lost (counted as a reassembly timeout), never wrong.
        self.reassembler = Reassembler()
        self.dedup = Deduplicator()
        # MMSI -> (key bytes, partition): the same few thousand vessels come back all the time
        self.keys: dict[int, tuple[bytes, int]] = {}
        self.newest_t_ms = -1  # the newest event time of the last micro-batch, ms UTC
        # the decode stage's progress: the minimum over the sources still sending
        self.sources = SourceProgress()
        self.stated_t_ms = -1
        self.lock = asyncio.Lock()  # a micro-batch and a progress tick never interleave

    def key_of(self, mmsi: int) -> tuple[bytes, int]:
        if len(self.keys) > 1_000_000:
            self.keys.clear()
        key = str(mmsi).encode()
        kp = self.keys[mmsi] = (key, self.sender.partition(key, topics.AIS_FIXES.partitions))
        return kp

    def _decode_failed(self, batch: records.RawAisBatch, value: bytes, exc: Exception) -> None:
        log.error("decoding a raw batch of %s failed", batch.source, exc_info=exc)
        self.metrics.add({"ais.decode_failed": 1})
        dead = dead_letter(
            Reason.DECODE_FAILED,
            source=batch.source,
            stage=batch.source,
            detail=repr(exc),
            raw=value,
            rx_t_ms=wall_ms(),
        )
        self.sender.dead(batch.source.encode(), dead)

    async def handle(self, values: list[bytes]) -> None:
        """Decode one micro-batch of raw records and publish what came out."""
        async with self.lock:
            framed, framed_values = self._frame(values)
            outs = self._decode(framed, framed_values)
            now = wall_ms()
            for src, out in outs:
                self.sources.add(src, _newest_t_ms(out), now)
            self._publish([out for _, out in outs], self.sources.progress(now))
            await self.sender.flush()

    async def tick(self) -> None:
        """State the progress on every ``ais.fixes`` partition (empty records) when it
        advanced without input: a source gone idle no longer holds it back."""
        async with self.lock:
            progress = self.sources.progress(wall_ms())
            if progress > self.stated_t_ms:
                self._publish([], progress)
                await self.sender.flush()

    def _frame(
        self, values: list[bytes]
    ) -> tuple[list[tuple[records.RawAisBatch, Framed]], list[bytes]]:
        """Framing record by record (it updates the reassembly and de-duplication state);
        undecodable records and failed framings are dead-lettered.

        :returns: each framed batch, and the record it came from
        """
        framed: list[tuple[records.RawAisBatch, Framed]] = []
        framed_values: list[bytes] = []
        for value in values:
            try:
                batch = self.raw_dec.decode(value)
            except msgspec.DecodeError as exc:
                self.metrics.add({"ais.raw.undecodable": 1})
                dead = dead_letter(
                    Reason.UNDECODABLE_RECORD,
                    source="ais.raw",
                    stage="ais.raw",
                    detail=str(exc),
                    raw=value,
                    rx_t_ms=wall_ms(),
                )
                self.sender.dead(b"ais.raw", dead)
                continue
            try:
                framed.append((batch, self.frame_batch(batch, self.reassembler, self.dedup)))
                framed_values.append(value)
            except Exception as exc:  # noqa: BLE001 - one bad record never stops the agent
                self._decode_failed(batch, value, exc)
        return framed, framed_values

    def _decode(
        self, framed: list[tuple[records.RawAisBatch, Framed]], framed_values: list[bytes]
    ) -> list[tuple[str, DecodedBatch]]:
        """One vectorised decode of the whole micro-batch; if it fails, record by record
        to find and dead-letter the bad one (decoding holds no state).

        :returns: each decoded batch with its source
        """
        try:
            outs = self.decode_framed(framed, with_columns=True)
            return [(b.source, o) for (b, _), o in zip(framed, outs, strict=True)]
        except Exception:  # noqa: BLE001 - find the bad record: decode_framed has no state
            found = []
            for (batch, fr), value in zip(framed, framed_values, strict=True):
                try:
                    out = self.decode_framed([(batch, fr)], with_columns=True)[0]
                    found.append((batch.source, out))
                except Exception as exc:  # noqa: BLE001
                    self._decode_failed(batch, value, exc)
            return found

    def _publish(self, outs: list[DecodedBatch], progress_t_ms: int | None = None) -> None:
        """Send the positions, statics, dead letters and ``ais.fixes`` records of the
        decoded batches; count their counters.

        :param progress_t_ms: the decode stage's progress over its sources
            (:class:`~pipeline.engine.source_progress.SourceProgress`), stated on every
            ``ais.fixes`` partition (-1: none yet); ``None``: the batch's newest event time
        """
        metrics, keys, key_of = self.metrics, self.keys, self.key_of
        pos_topic, sta_topic = topics.AIS_POSITION.name, topics.AIS_STATIC.name
        n_pos_parts, n_sta_parts = topics.AIS_POSITION.partitions, topics.AIS_STATIC.partitions
        n_fix_parts = topics.AIS_FIXES.partitions
        encode = json_encoder.encode
        append = self.sender.append
        # the partition of every position report (in order), statics by partition
        parts: list[int] = []
        statics: dict[int, list[records.AisStatic]] = {}
        for out in outs:
            for source, counts in out.counters.items():
                metrics.add(counts, prefix=f"ais.{source}.")
                count_messages(counts)
            for r in out.positions:
                key, part = keys.get(r.mmsi) or key_of(r.mmsi)
                append(pos_topic, n_pos_parts, key, encode(r), part)
                parts.append(part)
            for st in out.statics:
                key, part = keys.get(st.mmsi) or key_of(st.mmsi)
                append(sta_topic, n_sta_parts, key, encode(st), part)
                statics.setdefault(part, []).append(st)
            for d in out.dead_letters:
                self.sender.dead(d.source.encode(), d)
        cols = [o.position_columns for o in outs if o.position_columns is not None]
        pos = PositionColumns.concat(cols)
        # the stage's progress goes to every partition, in order with the fixes
        newest = max(
            [-1, *(st.t_ms for sts in statics.values() for st in sts)]
            + ([int(pos.t_ms.max())] if len(pos) else [])
        )
        if newest >= 0:
            self.newest_t_ms = newest
        if progress_t_ms is None:
            progress_t_ms = newest
        if progress_t_ms > self.stated_t_ms:
            self.stated_t_ms = progress_t_ms
            n_empty = n_fix_parts  # progress made: every partition hears of it
        else:
            n_empty = 0
        for part, body in fix_records(
            pos,
            np.asarray(parts, dtype=np.int64),
            statics,
            FIX_BATCH_MAX,
            FIX_STATICS_MAX,
            n_empty,
            progress_t_ms,
        ):
            append(topics.AIS_FIXES.name, n_fix_parts, body[0], body[1], part)


def count_messages(counts: dict[str, int]) -> None:
    """``shorewatch_messages_total{source="ais", outcome}`` from one source's decode
    counters: ``decoded``, and each ``rejected.<reason>`` as its reason."""
    for key, n in counts.items():
        if key == "decoded":
            prom.MESSAGES.labels(source="ais", outcome="decoded").inc(n)
        elif key.startswith("rejected."):
            prom.MESSAGES.labels(source="ais", outcome=key[len("rejected.") :]).inc(n)


def fix_records(
    cols: PositionColumns,
    parts: np.ndarray,
    statics: dict[int, list[records.AisStatic]],
    n: int,
    n_statics: int,
    n_parts: int = 0,
    t_ms: int = -1,
) -> Iterator[tuple[int, tuple[bytes, bytes]]]:
    """The ``ais.fixes`` records of one micro-batch: per partition, its position reports
    (order kept) and static reports, at most ``n`` and ``n_statics`` per record; each as
    (partition, (key, value)), the key being the record's first MMSI (empty for a record
    without fixes). Every record states its partition and the batch's progress ``t_ms``.

    :param parts: the partition of each position report
    :param n_parts: with ``n_parts``, partitions ``0 .. n_parts - 1`` that got no fix get
        an empty record, so each carries the AIS path's progress (its watermark)
    :param t_ms: the newest event time of the micro-batch, ms UTC (-1: not stated)
    """
    for part in sorted(set(np.unique(parts).tolist()) | set(statics) | set(range(n_parts))):
        pc = cols.take(np.flatnonzero(parts == part))
        sts = statics.get(part, [])
        for k in range(max(1, -(-len(pc) // n), -(-len(sts) // n_statics))):
            chunk = pc.take(np.arange(k * n, min((k + 1) * n, len(pc))))
            chunk_sts = sts[k * n_statics : (k + 1) * n_statics]
            first = int(chunk.mmsi[0]) if len(chunk) else chunk_sts[0].mmsi if chunk_sts else None
            rec = pack_fixes(chunk, chunk_sts)
            rec.partition, rec.t_ms = part, t_ms
            body = json_encoder.encode(rec)
            yield part, (b"" if first is None else str(first).encode(), body)
