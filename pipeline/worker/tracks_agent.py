"""The tracks agent: the per-MMSI track table, updated a batch of fixes at a time."""

from __future__ import annotations

import logging
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
from schemas import records

#: the eviction clock never runs further ahead of the wall clock than this, ms: one
#: receiver whose clock is wrong by months must not make every other track look idle
EVICT_CLOCK_AHEAD_MAX_MS = 300_000

log = logging.getLogger(__name__)


def _register_tracks(app: faust.App, site: Any) -> None:
    from pipeline.engine.tracks import TrackDriverState, TrackParams, sweep_idle, track_batch

    metrics: Metrics = app.shorewatch_metrics  # type: ignore[attr-defined]
    params = TrackParams()
    track_dec = msgspec.json.Decoder(records.Track)
    fix_dec = msgspec.json.Decoder(records.FixColumns)
    table = app.Table(
        "shorewatch-tracks",
        key_type=bytes,
        value_type=bytes,  # bytes: raw codec
        partitions=topics.TRACK.partitions,
        use_partitioner=True,
    )
    sender = BatchSender(app)
    rows = TableWriter(table, sender, topics.TRACK.partitions)
    area = site.name.encode()

    # the Track this worker last wrote for each MMSI, beside the bytes it wrote: while the
    # table still holds those very bytes, the row need not be decoded again
    live: dict[int, tuple[bytes, records.Track]] = {}

    def _decoded(mmsi: int, raw: bytes) -> records.Track:
        cached = live.get(mmsi)
        if cached is not None and cached[0] is raw:
            return cached[1]
        return track_dec.decode(raw)

    class _TableView(Mapping[int, records.Track]):
        """The table as ``Mapping[int, Track]`` for the engine (decoded on access)."""

        def __getitem__(self, mmsi: int) -> records.Track:
            return _decoded(mmsi, table[str(mmsi).encode()])

        def get(self, mmsi: int, default: Any = None) -> Any:
            raw = table.get(str(mmsi).encode())
            return default if raw is None else _decoded(mmsi, raw)

        def __contains__(self, mmsi: object) -> bool:
            return str(mmsi).encode() in table

        def __iter__(self) -> Iterator[int]:
            return (int(k) for k in table.keys())

        def __len__(self) -> int:
            return len(table)

        def values(self) -> list[records.Track]:  # type: ignore[override]
            return [_decoded(int(k), v) for k, v in table.items()]

    view = _TableView()
    driver = TrackDriverState()  # held statics and the idle sweep, as replay keeps them
    track_topic, fusion_topic = topics.TRACK.name, topics.FUSION_INPUT.name
    n_track_parts, n_fusion_parts = topics.TRACK.partitions, topics.FUSION_INPUT.partitions
    keys: dict[int, bytes] = {}  # MMSI -> its decimal text

    @app.agent(raw_topic(app, topics.AIS_FIXES), name="shorewatch.tracks")
    async def tracks(stream: faust.StreamT) -> None:
        async for values in stream.take(TAKE_MAX, within=TAKE_WITHIN_S):
            cols: list[PositionColumns] = []
            sta: list[records.AisStatic] = []
            for v in values:
                try:
                    fc = fix_dec.decode(v)
                    cols.append(unpack_fixes(fc))
                except (msgspec.DecodeError, ValueError) as exc:
                    metrics.add({"tracks.undecodable": 1})
                    dead = dead_letter(
                        Reason.UNDECODABLE_RECORD,
                        source="ais.fixes",
                        stage="ais.fixes",
                        detail=str(exc),
                        raw=v,
                        rx_t_ms=wall_ms(),
                    )
                    sender.add(topics.DEADLETTER, b"ais.fixes", json_encoder.encode(dead))
                    continue
                sta += fc.statics
            pos = PositionColumns.concat(cols)
            try:
                batch = track_batch(view, driver, pos, sta, params, site.bbox)
            except Exception as exc:  # noqa: BLE001 - keep the input, keep the agent
                log.exception("track step failed on %d fixes", len(pos) + len(sta))
                metrics.add({"tracks.step_failed": 1})
                for v in values:
                    dead = dead_letter(
                        Reason.TRACK_STEP_FAILED,
                        source="ais.fixes",
                        stage="ais.fixes",
                        detail=repr(exc),
                        raw=v,
                        rx_t_ms=wall_ms(),
                    )
                    sender.add(topics.DEADLETTER, b"ais.fixes", json_encoder.encode(dead))
                await sender.flush()
                continue
            if batch.orphans_dropped:
                metrics.add({"tracks.orphan_statics_dropped": batch.orphans_dropped})
            metrics.add(batch.result.counters, prefix="tracks.")
            if len(keys) > 1_000_000:
                keys.clear()
            for tr in batch.result.updates:
                m = tr.mmsi
                key = keys.get(m) or keys.setdefault(m, str(m).encode())
                body = json_encoder.encode(tr)  # once: the table row and the track record
                rows.set(key, body)
                live[m] = (body, tr)
                sender.append(track_topic, n_track_parts, key, body)
            for tr in batch.area_updates:
                sender.append(
                    fusion_topic,
                    n_fusion_parts,
                    area,
                    json_encoder.encode(records.FusionInput(area=site.name, track=tr)),
                )
            # idle tracks leave the table (a tombstone in its changelog) and are published
            # once more with event="evicted"
            cap = wall_ms() + EVICT_CLOCK_AHEAD_MAX_MS
            for tr in sweep_idle(view, driver, batch.result.updates, params, cap):
                key = str(tr.mmsi).encode()
                rows.delete(key)
                live.pop(tr.mmsi, None)
                sender.append(track_topic, n_track_parts, key, json_encoder.encode(tr))
                metrics.add({"tracks.evicted": 1})
            await sender.flush()
