"""The feed agent: camera frames re-keyed by area."""

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
    from pipeline.worker.radar_feed_agent import _register_radar_feed

    _register_radar_feed(app, site)  # the radar's reports take the same way to the area

    async def send_dead(key: bytes, record: records.DeadLetter) -> None:
        count_dead_letter(record)
        MESSAGES.labels(source="camera", outcome=record.reason).inc()
        await dead.send(key=key, value=json_encoder.encode(record))

    @app.agent(raw_topic(app, topics.CAMERA_DETECTION), name="shorewatch.feed")
    async def feed(stream: faust.StreamT) -> None:
        async for value in stream:
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
                continue
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
                continue
            await fusion.send(
                key=area.encode(),
                value=json_encoder.encode(records.FusionInput(area=area, frame=frame)),
            )
            MESSAGES.labels(source="camera", outcome="forwarded").inc()
            observe_batch("feed", 1, started, frame.t_ms)
