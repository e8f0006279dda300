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
    json_encoder,
    raw_topic,
    wall_ms,
)
from pipeline.worker.input_rewind import InputRewinds
from pipeline.worker.observe import observe_batch
from schemas import records

log = logging.getLogger(__name__)


def _register_area(app: faust.App, site: Any, settings: Settings) -> None:
    """The area agent: steps its area with each micro-batch of track updates, camera
    frames and AIS watermarks (:func:`pipeline.engine.area.area_step`). Time in the area
    moves with its inputs' watermarks only, never with the wall clock: a stalled path
    holds the area back instead of letting it run past input still on its way."""
    handler = _AreaAgent(app, site, settings)
    app.shorewatch_area = handler  # type: ignore[attr-defined]
    app.on_partitions_revoked.connect(handler.on_revoked)  # type: ignore[arg-type]
    app.on_partitions_assigned.connect(handler.on_assigned)  # type: ignore[arg-type]

    @app.agent(raw_topic(app, topics.FUSION_INPUT), name="shorewatch.area")
    async def area(stream: faust.StreamT) -> None:
        async for events in stream.take_events(TAKE_MAX, within=TAKE_WITHIN_S):  # type: ignore[attr-defined]
            started = time.perf_counter()
            await handler.handle(
                [e.value for e in events],
                [(e.message.partition, e.message.offset) for e in events],
            )
            observe_batch("area", len(events), started, handler.newest_t_ms)


class _AreaAgent:
    """What the area agent keeps between micro-batches (the areas table, its writer, the
    batch sender, the decoded states) and its steps."""

    def __init__(self, app: faust.App, site: Any, settings: Settings) -> None:
        from pipeline.engine.area import area_step
        from pipeline.engine.state import AreaContext
        from pipeline.worker.area_store import AreaStore

        self.area_step = area_step
        self.app = app
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
        # crashes the agent when it does not (a fresh app id at start-up). The area's state
        # is kept as rows of bounded size, fenced on revocation (AreaStore)
        self.sender = BatchSender(app)
        self.store = AreaStore(app, self.table, self.sender, self.metrics)
        from pipeline.registry.resolver import IdentityResolver

        # registry identities of each micro-batch's MMSIs; an unreachable registry is
        # retried with backoff and leaves the area running ("registry unavailable")
        self.resolver = IdentityResolver(settings.registry_url)
        self.newest_t_ms = -1  # the newest track or frame time of the last micro-batch, ms UTC
        # input handed past what the area's state applied is read again (input_rewind)
        self.rewinds = InputRewinds()
        self.seeks: dict[int, int] = {}  # fusion.input partition -> offset to seek back to

    async def on_revoked(self, app: Any, revoked: Any, **_: Any) -> None:
        await self.store.on_revoked(revoked)

    async def on_assigned(self, app: Any, assigned: Any, **_: Any) -> None:
        self.store.on_assigned(assigned)
        self.rewinds.assigned()

    async def publish(
        self, name: str, state: Any, out: list, done: dict[int, int] | None = None
    ) -> None:
        """Write the area's changed rows, the input offsets they include and its alerts
        (nothing when the fence is closed) and wait until they are acknowledged."""
        if not self.store.save(name, state, done):
            return
        self.metrics.add(Counter(f"alerts.{a.data.kind}.{a.data.status}" for a in out))
        for a in out:
            ALERTS.labels(kind=a.data.kind, status=a.data.status).inc()
        for a in out:
            self.sender.add(topics.ALERT, a.data.alert_id.encode(), json_encoder.encode(a))
        await self.sender.flush()

    async def handle(
        self, values: list[bytes], positions: list[tuple[int, int]] | None = None
    ) -> None:
        """Step each area with its tracks, frames and watermarks of one micro-batch.

        :param positions: ``(partition, offset)`` of each value on ``fusion.input``: input
            the area's stored state already took in (stepped again after a restart, before
            its offsets were committed) is skipped, so that a restored area resumes where
            its last acknowledged output left off
        """
        by_area: dict[str, list[tuple[Any, tuple[int, int] | None]]] = {}
        for k, v in enumerate(values):
            item = self.in_dec.decode(v)
            by_area.setdefault(item.area, []).append((item, positions[k] if positions else None))
        self.newest_t_ms = max(
            [it.track.t_ms for its in by_area.values() for it, _ in its if it.track is not None]
            + [it.frame.t_ms for its in by_area.values() for it, _ in its if it.frame is not None],
            default=-1,
        )
        async with self.store.lock:  # the revocation fence waits for this step
            for name, items in by_area.items():
                if name != self.ctx.site:
                    self.metrics.add({"area.unknown_area": len(items)})
                    continue
                await self._step(name, items, values)
        await self._seek_back()

    async def _seek_back(self) -> None:
        """Seek the ``fusion.input`` partitions whose input came past a gap back to the
        offset their area's state applied up to."""
        from faust.types import TP

        seeks, self.seeks = self.seeks, {}
        for p, offset in sorted(seeks.items()):
            try:
                await self.app.consumer.seek(TP(topics.FUSION_INPUT.name, p), offset)
            except Exception as exc:  # noqa: BLE001 - revoked meanwhile: its next owner rewinds
                log.warning("fusion.input partition %d not sought back to %d: %r", p, offset, exc)

    def _past_gaps(
        self, name: str, items: list[tuple[Any, tuple[int, int] | None]], done: dict[int, int]
    ) -> list[tuple[Any, tuple[int, int] | None]]:
        """``items`` less those of partitions handed past a gap after ``done``, the offsets
        the area's state applied (:mod:`pipeline.worker.input_rewind`): those partitions
        are sought back to ``done`` once the micro-batch is through."""
        rewind, accepted = self.rewinds.gaps([pos for _, pos in items if pos is not None], done)
        if accepted:
            self.metrics.add({"area.input_gap_accepted": len(accepted)})
            log.error(
                "area %s: fusion.input offsets missing after %s: gap accepted", name, accepted
            )
        if not rewind:
            return items
        kept = [(it, pos) for it, pos in items if pos is None or pos[0] not in rewind]
        self.metrics.add({"area.input_rewound": len(items) - len(kept)})
        seeks = self.rewinds.take_seeks()
        if seeks:  # one line per seek; input queued before it is left out quietly
            log.warning(
                "area %s: fusion.input handed past the offsets its state applied: "
                "sought back to %s",
                name,
                seeks,
            )
        self.seeks.update(seeks)
        return kept

    async def _step(
        self,
        name: str,
        items: list[tuple[Any, tuple[int, int] | None]],
        values: list[bytes],
    ) -> None:
        """Step one area; on failure dead-letter the micro-batch."""
        key = name.encode()
        state = self.store.load(name)
        done = self.store.input_offsets(name)
        restored = self.store.restored_offsets(name)
        trs: list[records.Track] = []
        frs: list[records.CameraFrame] = []
        wms: list[records.Watermark] = []
        rds: list[records.RadarTarget] = []
        bls: list[records.CameraBacklog] = []
        fresh = [
            (it, pos)
            for it, pos in items
            if pos is None
            or (pos[1] >= restored.get(pos[0], -1) and not self.rewinds.resent(pos, done))
        ]
        if len(fresh) < len(items):
            skipped = len(items) - len(fresh)
            self.metrics.add({"area.input_already_applied": skipped})
            log.info("area %s: %d inputs already in the restored state skipped", name, skipped)
        fresh = self._past_gaps(name, fresh, done)
        if not fresh:
            return
        for item, pos in fresh:
            if pos is not None:
                done[pos[0]] = pos[1] + 1
            if item.track is not None:
                trs.append(item.track)
            if item.frame is not None:
                frs.append(item.frame)
            if item.watermark is not None:
                wms.append(item.watermark)
            if item.radar is not None:
                rds.append(item.radar)
            if item.backlog is not None:
                bls.append(item.backlog)
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
                state, trs, frs, self.ctx, wms, radar=rds or (), identities=ids, backlogs=bls
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
            self.store.forget(name)  # the state may be half-updated: reload it
            self.rewinds.account(pos for _, pos in fresh if pos is not None)
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
        await self.publish(name, state, out, done)
