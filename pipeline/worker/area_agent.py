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

    from pipeline.engine.area import advance_area, area_step
    from pipeline.engine.state import AreaContext, AreaState

    metrics: Metrics = app.shorewatch_metrics  # type: ignore[attr-defined]
    ctx = AreaContext.from_site(site, lateness_ms=settings.area_lateness_ms)
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
    # per area: (newest input event time, monotonic wall time it arrived)
    newest: dict[bytes, tuple[int, float]] = {}
    # the agent and the clock both step an area: one at a time, alerts sent in order
    lock = asyncio.Lock()

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
            by_area: dict[str, tuple[list[records.Track], list[records.CameraFrame]]] = {}
            for v in values:
                item = in_dec.decode(v)
                tr, fr = by_area.setdefault(item.area, ([], []))
                if item.track is not None:
                    tr.append(item.track)
                if item.frame is not None:
                    fr.append(item.frame)
            for name, (trs, frs) in by_area.items():
                if name != ctx.site:
                    metrics.add({"area.unknown_area": len(trs) + len(frs)})
                    continue
                key = name.encode()
                async with lock:
                    state = load(key)
                    try:
                        state, out = area_step(state, trs, frs, ctx)
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
                    t_new = max([x.t_ms for x in trs] + [x.t_ms for x in frs])
                    if t_new > newest.get(key, (-1, 0.0))[0]:
                        newest[key] = (t_new, time.monotonic())
                    await publish(key, state, out)

    if settings.area_clock_rate > 0:

        @app.timer(AREA_CLOCK_PERIOD_S)
        async def area_clock() -> None:
            owned = app.assignor.assigned_actives()
            for key, (t_ms, wall_s) in list(newest.items()):
                part = topics.partition_of(key, topics.FUSION_INPUT.partitions)
                if TP(topics.FUSION_INPUT.name, part) not in owned:
                    newest.pop(key, None)  # moved to another worker: its clock runs there
                    continue
                idle_ms = (time.monotonic() - wall_s) * 1000.0 * settings.area_clock_rate
                clock_t_ms = t_ms + int(min(idle_ms, settings.area_idle_max_ms))
                async with lock:
                    state = load(key)
                    if state is None:
                        continue
                    try:
                        out = advance_area(state, ctx, clock_t_ms)
                    except Exception:  # noqa: BLE001 - the clock must keep running
                        log.exception("advancing area %r failed", key)
                        metrics.add({"area.clock_failed": 1})
                        live.pop(key, None)
                        continue
                    if out:
                        await publish(key, state, out)
                    else:  # an evaluation without alerts need not be written
                        live[key] = (table.get(key), state)
