"""The area agent: association, detectors and alerts of one area."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

import faust
import msgspec

from pipeline import topics
from pipeline.deadletter import Reason, dead_letter
from pipeline.metrics import ALERTS
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
from pipeline.worker.observe import observe_batch
from schemas import records

log = logging.getLogger(__name__)


def _register_area(app: faust.App, site: Any, settings: Settings) -> None:
    """The area agent: steps its area with each micro-batch of track updates, camera
    frames and AIS watermarks (:func:`pipeline.engine.area.area_step`). Time in the area
    moves with its inputs' watermarks only, never with the wall clock: a stalled path
    holds the area back instead of letting it run past input still on its way."""
    handler = _AreaAgent(app, site, settings)

    @app.agent(raw_topic(app, topics.FUSION_INPUT), name="shorewatch.area")
    async def area(stream: faust.StreamT) -> None:
        async for values in stream.take(TAKE_MAX, within=TAKE_WITHIN_S):
            started = time.perf_counter()
            await handler.handle(values)
            observe_batch("area", len(values), started, handler.newest_t_ms)


class _AreaAgent:
    """What the area agent keeps between micro-batches (the areas table, its writer, the
    batch sender, the decoded states) and its steps."""

    def __init__(self, app: faust.App, site: Any, settings: Settings) -> None:
        from pipeline.engine.area import area_step
        from pipeline.engine.state import AreaContext, AreaState

        self.area_step = area_step
        self.state_from_bytes = AreaState.from_bytes
        self.metrics: Metrics = app.shorewatch_metrics  # type: ignore[attr-defined]
        self.ctx = AreaContext.from_site(
            site,
            ais_partitions=topics.AIS_FIXES.partitions,
            camera_disorder_ms=settings.camera_disorder_ms,
            camera_idle_ms=settings.camera_idle_ms,
        )
        self.in_dec = msgspec.json.Decoder(records.FusionInput)
        self.table = app.Table(
            "shorewatch-areas",
            key_type=bytes,
            value_type=bytes,  # bytes: raw codec
            partitions=topics.FUSION_INPUT.partitions,
            use_partitioner=True,
        )
        # rows and alerts go out through record batches, like the tracks table's: Faust's
        # own changelog path needs the producer to know the changelog topic already and
        # crashes the agent when it does not (a fresh app id at start-up)
        self.sender = BatchSender(app)
        self.rows = TableWriter(self.table, self.sender, topics.FUSION_INPUT.partitions)
        # decoded state of each area this worker last wrote, beside the bytes it wrote
        self.live: dict[bytes, tuple[Any, Any]] = {}
        from pipeline.registry.resolver import IdentityResolver

        # registry identities of each micro-batch's MMSIs; an unreachable registry is
        # retried with backoff and leaves the area running ("registry unavailable")
        self.resolver = IdentityResolver(settings.registry_url)
        self.newest_t_ms = -1  # the newest track or frame time of the last micro-batch, ms UTC

    def load(self, key: bytes) -> Any:
        raw = self.table.get(key)
        cached = self.live.get(key)
        if cached is not None and raw is cached[0]:
            return cached[1]  # the table still holds what this worker wrote last
        # first batch, or the table was recovered from its changelog
        return self.state_from_bytes(raw) if raw else None

    async def publish(self, key: bytes, state: Any, out: list) -> None:
        self.rows.set(key, state.to_bytes())
        self.live[key] = (self.table.get(key), state)
        self.metrics.add(Counter(f"alerts.{a.data.kind}.{a.data.status}" for a in out))
        for a in out:
            ALERTS.labels(kind=a.data.kind, status=a.data.status).inc()
        for a in out:
            self.sender.add(topics.ALERT, a.data.alert_id.encode(), json_encoder.encode(a))
        await self.sender.flush()

    async def handle(self, values: list[bytes]) -> None:
        """Step each area with its tracks, frames and watermarks of one micro-batch."""
        by_area: dict[
            str, tuple[list[records.Track], list[records.CameraFrame], list[records.Watermark]]
        ] = {}
        radar: dict[str, list[records.RadarTarget]] = {}
        for v in values:
            item = self.in_dec.decode(v)
            tr, fr, wm = by_area.setdefault(item.area, ([], [], []))
            if item.track is not None:
                tr.append(item.track)
            if item.frame is not None:
                fr.append(item.frame)
            if item.watermark is not None:
                wm.append(item.watermark)
            if item.radar is not None:
                radar.setdefault(item.area, []).append(item.radar)
        self.newest_t_ms = max(
            [x.t_ms for trs, _, _ in by_area.values() for x in trs]
            + [x.t_ms for _, frs, _ in by_area.values() for x in frs],
            default=-1,
        )
        for name, (trs, frs, wms) in by_area.items():
            if name != self.ctx.site:
                self.metrics.add({"area.unknown_area": len(trs) + len(frs) + len(wms)})
                continue
            await self._step(name, trs, frs, wms, values, radar.get(name, []))

    async def _step(
        self,
        name: str,
        trs: list[records.Track],
        frs: list[records.CameraFrame],
        wms: list[records.Watermark],
        values: list[bytes],
        rds: list[records.RadarTarget] | None = None,
    ) -> None:
        """Step one area; on failure dead-letter the micro-batch."""
        key = name.encode()
        state = self.load(key)
        late_before = state.counters.get("late", 0) if state is not None else 0
        released_before = state.released_t_ms if state is not None else -1
        if self.resolver.due():  # a reload may take seconds: off the event loop
            before = self.resolver.failures
            await asyncio.get_running_loop().run_in_executor(None, self.resolver.refresh)
            if self.resolver.failures > before:
                self.metrics.add({"registry.unavailable": 1})
        ids = self.resolver.resolve(trs, frs, refresh=False)
        try:
            state, out = self.area_step(
                state, trs, frs, self.ctx, wms, radar=rds or (), identities=ids
            )
        except Exception as exc:  # noqa: BLE001 - keep the input, keep the agent
            log.exception("area step of %s failed", name)
            self.metrics.add({"area.step_failed": 1})
            for v in values:
                dead = dead_letter(
                    Reason.AREA_STEP_FAILED,
                    source="fusion.input",
                    stage="fusion.input",
                    detail=repr(exc),
                    raw=v,
                    rx_t_ms=wall_ms(),
                )
                self.sender.dead(key, dead)
            await self.sender.flush()
            self.live.pop(key, None)  # the state may be half-updated: reload it
            return
        late = state.counters.get("late", 0) - late_before
        if late > 0:  # a path broke its promise (disorder, or a camera back from idle)
            self.metrics.add({"area.late": late})
            log.warning(
                "area %s: %d inputs older than its watermark %d (oldest track %s, frame %s)",
                name,
                late,
                released_before,
                min((x.t_ms for x in trs), default=None),
                min((x.t_ms for x in frs), default=None),
            )
        await self.publish(key, state, out)
