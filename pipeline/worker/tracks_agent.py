"""The tracks agent: the per-MMSI track table, updated a batch of fixes at a time."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any

import faust
import msgspec

from pipeline import topics
from pipeline.deadletter import Reason, dead_letter
from pipeline.engine.columns import PositionColumns
from pipeline.engine.decode import unpack_fixes
from pipeline.worker.batching import (
    TAKE_MAX,
    TAKE_WITHIN_S,
    BatchSender,
    Metrics,
    TableWriter,
    json_encoder,
    raw_topic,
    wall_ms,
)
from pipeline.worker.observe import observe_batch
from schemas import records

#: the eviction clock never runs further ahead of the wall clock than this, ms: one
#: receiver whose clock is wrong by months must not make every other track look idle
EVICT_CLOCK_AHEAD_MAX_MS = 300_000

log = logging.getLogger(__name__)


class _TableView(Mapping[int, records.Track]):
    """The tracks table as ``Mapping[int, Track]`` for the engine (decoded on access).

    :param table: the Faust table, MMSI text to ``Track`` JSON
    :param live: the Track this worker last wrote for each MMSI, beside the bytes it wrote:
        while the table still holds those very bytes, the row need not be decoded again
    """

    def __init__(self, table: Any, live: dict[int, tuple[bytes, records.Track]]) -> None:
        self._table = table
        self._live = live
        self._dec = msgspec.json.Decoder(records.Track)

    def _decoded(self, mmsi: int, raw: bytes) -> records.Track:
        cached = self._live.get(mmsi)
        if cached is not None and cached[0] is raw:
            return cached[1]
        return self._dec.decode(raw)

    def __getitem__(self, mmsi: int) -> records.Track:
        return self._decoded(mmsi, self._table[str(mmsi).encode()])

    def get(self, mmsi: int, default: Any = None) -> Any:
        raw = self._table.get(str(mmsi).encode())
        return default if raw is None else self._decoded(mmsi, raw)

    def __contains__(self, mmsi: object) -> bool:
        return str(mmsi).encode() in self._table

    def __iter__(self) -> Iterator[int]:
        return (int(k) for k in self._table.keys())

    def __len__(self) -> int:
        return len(self._table)

    def values(self) -> list[records.Track]:  # type: ignore[override]
        return [self._decoded(int(k), v) for k, v in self._table.items()]


class _TracksAgent:
    """What the tracks agent keeps between micro-batches (the table, its writer, the
    batch sender, the engine's driver state, caches) and the steps of one micro-batch."""

    def __init__(self, app: faust.App, site: Any, ais_disorder_ms: int = 5_000) -> None:
        from pipeline.engine.tracks import TrackDriverState, TrackParams, sweep_idle, track_batch

        self.track_batch = track_batch
        self.sweep_idle = sweep_idle
        self.site = site
        self.metrics: Metrics = app.shorewatch_metrics  # type: ignore[attr-defined]
        self.params = TrackParams()
        self.fix_dec = msgspec.json.Decoder(records.FixColumns)
        table = app.Table(
            "shorewatch-tracks",
            key_type=bytes,
            value_type=bytes,  # bytes: raw codec
            partitions=topics.TRACK.partitions,
            use_partitioner=True,
        )
        self.sender = BatchSender(app)
        self.rows = TableWriter(table, self.sender, topics.TRACK.partitions)
        self.area = site.name.encode()
        # the Track this worker last wrote for each MMSI, beside the bytes it wrote
        self.live: dict[int, tuple[bytes, records.Track]] = {}
        self.view = _TableView(table, self.live)
        self.driver = TrackDriverState()  # held statics and the idle sweep, as replay keeps them
        self.keys: dict[int, bytes] = {}  # MMSI -> its decimal text
        self.ais_disorder_ms = ais_disorder_ms
        self.marks_sent: dict[int, int] = {}  # ais.fixes partition -> the watermark last sent
        self.newest_t_ms = -1  # the newest event time of the last micro-batch, ms UTC
        # the AIS path's progress (the decode stage's, carried by the fixes records), the
        # eviction clock's bound: -1 none yet, None while only older records came
        self.progress_t_ms: int | None = None

    async def handle(self, values: list[bytes]) -> None:
        """Step the tracks with one micro-batch of ``ais.fixes`` records and publish."""
        progress: dict[int, int] = {}  # ais.fixes partition -> newest event time of the batch
        pos, sta = self._decode(values, progress)
        self.newest_t_ms = max(progress.values(), default=-1)
        try:
            batch = self.track_batch(self.view, self.driver, pos, sta, self.params, self.site.bbox)
        except Exception as exc:  # noqa: BLE001 - keep the input, keep the agent
            log.exception("track step failed on %d fixes", len(pos) + len(sta))
            self.metrics.add({"tracks.step_failed": 1})
            for v in values:
                self._dead(v, Reason.TRACK_STEP_FAILED, repr(exc))
            await self.sender.flush()
            return
        if batch.orphans_dropped:
            self.metrics.add({"tracks.orphan_statics_dropped": batch.orphans_dropped})
        self.metrics.add(batch.result.counters, prefix="tracks.")
        self._publish(batch.result.updates, batch.area_updates)
        if progress:
            self.progress_t_ms = max(self.progress_t_ms or -1, *progress.values())
        self._evict_idle(batch.result.updates)
        self._send_marks(progress)
        await self.sender.flush()

    def _dead(self, raw: bytes, reason: Reason, detail: str) -> None:
        dead = dead_letter(
            reason,
            source="ais.fixes",
            stage="ais.fixes",
            detail=detail,
            raw=raw,
            rx_t_ms=wall_ms(),
        )
        self.sender.dead(b"ais.fixes", dead)

    def _decode(
        self, values: list[bytes], progress: dict[int, int]
    ) -> tuple[PositionColumns, list[records.AisStatic]]:
        """The positions and statics of the records; undecodable ones dead-lettered. Notes
        in ``progress`` how far each ``ais.fixes`` partition got."""
        from pipeline.engine.watermarks import fixes_progress

        cols: list[PositionColumns] = []
        sta: list[records.AisStatic] = []
        for v in values:
            try:
                fc = self.fix_dec.decode(v)
                cols.append(unpack_fixes(fc))
                if fc.partition >= 0 and self.progress_t_ms is None:  # states its progress
                    self.progress_t_ms = -1
                fixes_progress(progress, fc, cols[-1].t_ms)
            except (msgspec.DecodeError, ValueError) as exc:
                self.metrics.add({"tracks.undecodable": 1})
                self._dead(v, Reason.UNDECODABLE_RECORD, str(exc))
                continue
            sta += fc.statics
        return PositionColumns.concat(cols), sta

    def _publish(self, updates: list[records.Track], area_updates: list[records.Track]) -> None:
        """Write the updated tracks to the table and ``track``, those in the area to
        ``fusion.input``."""
        keys, live, rows, sender = self.keys, self.live, self.rows, self.sender
        track_topic, n_track_parts = topics.TRACK.name, topics.TRACK.partitions
        if len(keys) > 1_000_000:
            keys.clear()
        for tr in updates:
            m = tr.mmsi
            key = keys.get(m) or keys.setdefault(m, str(m).encode())
            body = json_encoder.encode(tr)  # once: the table row and the track record
            rows.set(key, body)
            live[m] = (body, tr)
            sender.append(track_topic, n_track_parts, key, body)
        for tr in area_updates:
            sender.append(
                topics.FUSION_INPUT.name,
                topics.FUSION_INPUT.partitions,
                self.area,
                json_encoder.encode(records.FusionInput(area=self.site.name, track=tr)),
            )

    def _evict_idle(self, updates: list[records.Track]) -> None:
        """Idle tracks leave the table (a tombstone in its changelog) and are published
        once more with ``event="evicted"``."""
        cap = wall_ms() + EVICT_CLOCK_AHEAD_MAX_MS
        for tr in self.sweep_idle(
            self.view, self.driver, updates, self.params, cap, self.progress_t_ms
        ):
            key = str(tr.mmsi).encode()
            self.rows.delete(key)
            self.live.pop(tr.mmsi, None)
            self.sender.append(
                topics.TRACK.name, topics.TRACK.partitions, key, json_encoder.encode(tr)
            )
            self.metrics.add({"tracks.evicted": 1})

    def _send_marks(self, progress: dict[int, int]) -> None:
        """The AIS watermarks of the partitions this batch advanced, to the area."""
        from pipeline.engine.watermarks import ais_marks

        cap = wall_ms() + EVICT_CLOCK_AHEAD_MAX_MS
        for mark in ais_marks(progress, self.marks_sent, self.ais_disorder_ms, cap):
            self.sender.append(
                topics.FUSION_INPUT.name,
                topics.FUSION_INPUT.partitions,
                self.area,
                json_encoder.encode(records.FusionInput(area=self.site.name, watermark=mark)),
            )


def _register_tracks(app: faust.App, site: Any, ais_disorder_ms: int = 5_000) -> None:
    """The tracks agent.

    After each micro-batch it also sends the area the AIS watermark of every ``ais.fixes``
    partition the batch advanced (:func:`pipeline.engine.watermarks.ais_marks`), behind the
    batch's track updates.

    :param ais_disorder_ms: how far AIS may come out of event-time order on a partition, ms
    """
    handler = _TracksAgent(app, site, ais_disorder_ms)

    @app.agent(raw_topic(app, topics.AIS_FIXES), name="shorewatch.tracks")
    async def tracks(stream: faust.StreamT) -> None:
        async for values in stream.take(TAKE_MAX, within=TAKE_WITHIN_S):
            started = time.perf_counter()
            await handler.handle(values)
            observe_batch("tracks", len(values), started, handler.newest_t_ms)
