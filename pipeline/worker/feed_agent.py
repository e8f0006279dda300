"""The feed agent: camera frames re-keyed by area, and the camera path's backlog reports
(:mod:`pipeline.worker.camera_backlog`)."""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
import msgspec

from pipeline import topics
from pipeline.deadletter import Reason, dead_letter
from pipeline.metrics import MESSAGES
from pipeline.worker.batching import (
    Metrics,
    count_dead_letter,
    json_encoder,
    raw_topic,
    wall_ms,
)
from pipeline.worker.camera_backlog import (
    REPEAT_S,
    REPORT_TICK_S,
    ConsumerView,
    PartitionBacklog,
    cameras_behind,
)
from pipeline.worker.observe import observe_batch
from schemas import records

log = logging.getLogger(__name__)


def _register_feed(app: faust.App, site: Any) -> None:
    metrics: Metrics = app.shorewatch_metrics  # type: ignore[attr-defined]
    frame_dec = msgspec.json.Decoder(records.CameraFrame)
    fusion = raw_topic(app, topics.FUSION_INPUT)
    dead = raw_topic(app, topics.DEADLETTER)
    cameras = {c.id for c in site.cameras}
    area = site.name
    n_parts = topics.CAMERA_DETECTION.partitions
    camera_parts = {c: topics.partition_of(c.encode(), n_parts) for c in sorted(cameras)}
    backlog = PartitionBacklog()
    view = ConsumerView.of_faust(app, topics.CAMERA_DETECTION.name)
    last: dict[str, Any] = {"report": None, "sent_ms": 0}
    from pipeline.worker.radar_feed_agent import _register_radar_feed

    _register_radar_feed(app, site)  # the radar's reports take the same way to the area

    async def send_dead(key: bytes, record: records.DeadLetter) -> None:
        count_dead_letter(record)
        MESSAGES.labels(source="camera", outcome=record.reason).inc()
        await dead.send(key=key, value=json_encoder.encode(record))

    @app.agent(raw_topic(app, topics.CAMERA_DETECTION), name="shorewatch.feed")
    async def feed(stream: faust.StreamT) -> None:
        async for event in stream.events():
            msg = event.message
            if backlog.report_due_before(msg.partition):
                # a partition just assigned: the area hears that its cameras are behind
                # before the first of its frames (in order, on the same partition)
                await report(wall_ms(), force=True)
                backlog.sent_report([msg.partition])  # tried once, whatever it named
            await forward(event.value)
            # after the frame went to the producer: a report saying that its partition is
            # caught up comes behind it on fusion.input
            backlog.forwarded(msg.partition, msg.offset)
            hw, poll, _ = view.state(msg.tp)
            backlog.observe(msg.partition, wall_ms(), hw, poll)

    @app.timer(interval=REPORT_TICK_S)
    async def feed_backlog() -> None:
        # which of this worker's cameras have frames waiting unread: the area waits for
        # them instead of counting them offline
        await report(wall_ms())

    async def report(now: int, force: bool = False) -> None:
        """Send the area the cameras of the assigned partitions and those behind, when
        that changed, every :data:`REPEAT_S`, or with ``force``."""
        tps = view.assigned()
        backlog.keep(tp.partition for tp in tps)
        for tp in tps:
            hw, poll, read = view.state(tp)
            backlog.observe(tp.partition, now, hw, poll, read)
        cams, behind = cameras_behind(camera_parts, (tp.partition for tp in tps), backlog, now)
        if not cams:
            return
        said = (cams, behind)
        if not force and said == last["report"] and now - last["sent_ms"] < REPEAT_S * 1000:
            return
        if behind != (last["report"] or ([], []))[1]:  # one line per change
            if behind:
                log.warning(
                    "camera backlog: %s behind (partition not read to its end): waited for",
                    ", ".join(behind),
                )
            elif last["report"] is not None:
                log.warning("camera backlog: every camera's partition read to its end")
        last["report"], last["sent_ms"] = said, now
        rec = records.CameraBacklog(cameras=cams, behind=behind)
        await fusion.send(
            key=area.encode(),
            value=json_encoder.encode(records.FusionInput(area=area, backlog=rec)),
        )
        backlog.sent_report(tp.partition for tp in tps)

    async def forward(value: bytes) -> None:
        started = time.perf_counter()
        try:
            frame = frame_dec.decode(value)
        except msgspec.DecodeError as exc:
            metrics.add({"camera.undecodable": 1})
            await send_dead(
                b"camera.detection",
                dead_letter(
                    Reason.UNDECODABLE_RECORD,
                    source="camera.detection",
                    stage="camera.detection",
                    detail=str(exc),
                    raw=value,
                    rx_t_ms=wall_ms(),
                ),
            )
            observe_batch("feed", 1, started)
            return
        if frame.camera_id not in cameras:
            metrics.add({"camera.unknown_camera": 1})
            await send_dead(
                frame.camera_id.encode(),
                dead_letter(
                    Reason.UNKNOWN_CAMERA,
                    source="camera.detection",
                    stage="camera.detection",
                    detail=f"camera {frame.camera_id!r} is not in site {area!r}",
                    raw=value,
                    rx_t_ms=wall_ms(),
                ),
            )
            observe_batch("feed", 1, started)
            return
        await fusion.send(
            key=area.encode(),
            value=json_encoder.encode(records.FusionInput(area=area, frame=frame)),
        )
        MESSAGES.labels(source="camera", outcome="forwarded").inc()
        observe_batch("feed", 1, started, frame.t_ms)
