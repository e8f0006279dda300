"""The area agent: association, detectors and alerts of one area."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import faust
import msgspec

from pipeline import topics
from pipeline.deadletter import Reason, dead_letter
from pipeline.settings import Settings
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

log = logging.getLogger(__name__)


def _register_area(app: faust.App, site: Any, settings: Settings) -> None:
    """The area agent: steps its area with each micro-batch of track updates, camera frames
    and AIS watermarks (:func:`pipeline.engine.area.area_step`). Time in the area moves with
    its inputs' watermarks only, never with the wall clock: a stalled path holds the area
    back instead of letting it run past input still on its way."""

    from pipeline.engine.area import area_step
    from pipeline.engine.state import AreaContext, AreaState

    metrics: Metrics = app.shorewatch_metrics  # type: ignore[attr-defined]
    ctx = AreaContext.from_site(
        site,
        ais_partitions=topics.AIS_FIXES.partitions,
        camera_disorder_ms=settings.camera_disorder_ms,
        camera_idle_ms=settings.camera_idle_ms,
    )
    in_dec = msgspec.json.Decoder(records.FusionInput)
    table = app.Table(
        "shorewatch-areas",
        key_type=bytes,
        value_type=bytes,  # bytes: raw codec
        partitions=topics.FUSION_INPUT.partitions,
        use_partitioner=True,
    )
    # rows and alerts go out through record batches, like the tracks table's: Faust's
    # own changelog path needs the producer to know the changelog topic already and
    # crashes the agent when it does not (a fresh app id at start-up)
    sender = BatchSender(app)
    rows = TableWriter(table, sender, topics.FUSION_INPUT.partitions)
    # decoded state of each area this worker last wrote, beside the bytes it wrote
    live: dict[bytes, tuple[Any, Any]] = {}

    def load(key: bytes) -> Any:
        raw = table.get(key)
        cached = live.get(key)
        if cached is not None and raw is cached[0]:
            return cached[1]  # the table still holds what this worker wrote last
        # first batch, or the table was recovered from its changelog
        return AreaState.from_bytes(raw) if raw else None

    async def publish(key: bytes, state: Any, out: list) -> None:
        rows.set(key, state.to_bytes())
        live[key] = (table.get(key), state)
        metrics.add(Counter(f"alerts.{a.data.kind}.{a.data.status}" for a in out))
        for a in out:
            sender.add(topics.ALERT, a.data.alert_id.encode(), json_encoder.encode(a))
        await sender.flush()

    @app.agent(raw_topic(app, topics.FUSION_INPUT), name="shorewatch.area")
    async def area(stream: faust.StreamT) -> None:
        async for values in stream.take(TAKE_MAX, within=TAKE_WITHIN_S):
            by_area: dict[
                str,
                tuple[list[records.Track], list[records.CameraFrame], list[records.Watermark]],
            ] = {}
            for v in values:
                item = in_dec.decode(v)
                tr, fr, wm = by_area.setdefault(item.area, ([], [], []))
                if item.track is not None:
                    tr.append(item.track)
                if item.frame is not None:
                    fr.append(item.frame)
                if item.watermark is not None:
                    wm.append(item.watermark)
            for name, (trs, frs, wms) in by_area.items():
                if name != ctx.site:
                    metrics.add({"area.unknown_area": len(trs) + len(frs) + len(wms)})
                    continue
                key = name.encode()
                state = load(key)
                try:
                    state, out = area_step(state, trs, frs, ctx, wms)
                except Exception as exc:  # noqa: BLE001 - keep the input, keep the agent
                    log.exception("area step of %s failed", name)
                    metrics.add({"area.step_failed": 1})
                    for v in values:
                        dead = dead_letter(
                            Reason.AREA_STEP_FAILED,
                            source="fusion.input",
                            stage="fusion.input",
                            detail=repr(exc),
                            raw=v,
                            rx_t_ms=wall_ms(),
                        )
                        sender.add(topics.DEADLETTER, key, json_encoder.encode(dead))
                    await sender.flush()
                    live.pop(key, None)  # the state may be half-updated: reload it
                    continue
                await publish(key, state, out)
