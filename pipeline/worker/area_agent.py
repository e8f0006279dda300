"""The area agent: association, detectors and alerts of one area."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

import faust
import msgspec
from faust.types import TP

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

#: wall time between two runs of the area clock, s
AREA_CLOCK_PERIOD_S = 0.05

log = logging.getLogger(__name__)


def _register_area(app: faust.App, site: Any, settings: Settings) -> None:
    """The area agent, and its clock.

    The clock lets time pass in an area between inputs: every
    :data:`AREA_CLOCK_PERIOD_S` it estimates the event time now as the newest input's
    event time plus the wall time since that input arrived (times
    ``settings.area_clock_rate``, at most ``settings.area_idle_max_ms`` past it) and
    calls :func:`pipeline.engine.area.advance_area`, so a landing's dwell or an AIS silence
    raises its alert when it becomes true, not when the next camera frame arrives.
    """
    handler = _AreaAgent(app, site, settings)

    @app.agent(raw_topic(app, topics.FUSION_INPUT), name="shorewatch.area")
    async def area(stream: faust.StreamT) -> None:
        async for values in stream.take(TAKE_MAX, within=TAKE_WITHIN_S):
            await handler.handle(values)

    if settings.area_clock_rate > 0:

        @app.timer(AREA_CLOCK_PERIOD_S)
        async def area_clock() -> None:
            await handler.tick(app.assignor.assigned_actives())


class _AreaAgent:
    """What the area agent and its clock share (the areas table, its writer, the batch
    sender, the newest input of each area, a lock) and their steps."""

    def __init__(self, app: faust.App, site: Any, settings: Settings) -> None:
        from pipeline.engine.area import advance_area, area_step
        from pipeline.engine.state import AreaContext, AreaState

        self.area_step = area_step
        self.advance_area = advance_area
        self.state_from_bytes = AreaState.from_bytes
        self.settings = settings
        self.metrics: Metrics = app.shorewatch_metrics  # type: ignore[attr-defined]
        self.ctx = AreaContext.from_site(site, lateness_ms=settings.area_lateness_ms)
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
        # per area: (newest input event time, monotonic wall time it arrived)
        self.newest: dict[bytes, tuple[int, float]] = {}
        # the agent and the clock both step an area: one at a time, alerts sent in order
        self.lock = asyncio.Lock()

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
            self.sender.add(topics.ALERT, a.data.alert_id.encode(), json_encoder.encode(a))
        await self.sender.flush()

    async def handle(self, values: list[bytes]) -> None:
        """Step each area with its tracks and frames of one micro-batch."""
        by_area: dict[str, tuple[list[records.Track], list[records.CameraFrame]]] = {}
        for v in values:
            item = self.in_dec.decode(v)
            tr, fr = by_area.setdefault(item.area, ([], []))
            if item.track is not None:
                tr.append(item.track)
            if item.frame is not None:
                fr.append(item.frame)
        for name, (trs, frs) in by_area.items():
            if name != self.ctx.site:
                self.metrics.add({"area.unknown_area": len(trs) + len(frs)})
                continue
            async with self.lock:
                await self._step(name, trs, frs, values)

    async def _step(
        self,
        name: str,
        trs: list[records.Track],
        frs: list[records.CameraFrame],
        values: list[bytes],
    ) -> None:
        """Step one area (the lock held); on failure dead-letter the micro-batch."""
        key = name.encode()
        state = self.load(key)
        try:
            state, out = self.area_step(state, trs, frs, self.ctx)
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
                self.sender.add(topics.DEADLETTER, key, json_encoder.encode(dead))
            await self.sender.flush()
            self.live.pop(key, None)  # the state may be half-updated: reload it
            return
        t_new = max([x.t_ms for x in trs] + [x.t_ms for x in frs])
        if t_new > self.newest.get(key, (-1, 0.0))[0]:
            self.newest[key] = (t_new, time.monotonic())
        await self.publish(key, state, out)

    async def tick(self, owned: Any) -> None:
        """One run of the area clock over the areas of the partitions this worker owns."""
        settings = self.settings
        for key, (t_ms, wall_s) in list(self.newest.items()):
            part = topics.partition_of(key, topics.FUSION_INPUT.partitions)
            if TP(topics.FUSION_INPUT.name, part) not in owned:
                self.newest.pop(key, None)  # moved to another worker: its clock runs there
                continue
            idle_ms = (time.monotonic() - wall_s) * 1000.0 * settings.area_clock_rate
            clock_t_ms = t_ms + int(min(idle_ms, settings.area_idle_max_ms))
            async with self.lock:
                state = self.load(key)
                if state is None:
                    continue
                try:
                    out = self.advance_area(state, self.ctx, clock_t_ms)
                except Exception:  # noqa: BLE001 - the clock must keep running
                    log.exception("advancing area %r failed", key)
                    self.metrics.add({"area.clock_failed": 1})
                    self.live.pop(key, None)
                    continue
                if out:
                    await self.publish(key, state, out)
                else:  # an evaluation without alerts need not be written
                    self.live[key] = (self.table.get(key), state)
