"""Event-driven cameras: no stream until the camera's ONVIF analytics raise an event (or a
cue arrives); then analysed at max_fps for event_hold_s, then closed again. Against the
real ONVIF test device and the GStreamer RTSP server playing clip-01."""

from __future__ import annotations

import asyncio
import time

import pytest
from peers.onvif_device import OnvifDevice, ScriptedEvent
from test_camera_ingest import Collector, camera, clip_server, gst, reader_kwargs  # noqa: F401

from connectors.camera import EVENT_IDLE, CameraIngest, analyser_factory
from pipeline import topics
from pipeline.core.adaptive import AnalysisPolicy
from pipeline.site import OnvifConfig

WAIT_S = 90.0


async def _until(cond, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.mark.integration
async def test_stream_opens_on_an_analytics_event_and_closes_after_the_hold(
    clip_server,  # noqa: F811 - fixture
    monkeypatch,
):
    device = await OnvifDevice("svc", "pw-e", rtsp_url=clip_server.url).start()
    monkeypatch.setenv("EV_CAM_USER", "svc")
    monkeypatch.setenv("EV_CAM_PASSWORD", "pw-e")
    cam = camera(
        "ev-1",
        onvif=OnvifConfig("127.0.0.1", device.port, "EV_CAM_USER", "EV_CAM_PASSWORD"),
        analysis=AnalysisPolicy(event_driven=True, event_hold_s=2.0),
    )
    sink = Collector()
    ingest = CameraIngest(
        [cam],
        sink,
        analyser_factory(None),
        max_fps=5,
        reader_kwargs=reader_kwargs(),
        event_pull_timeout_s=0.5,
    )
    worker = ingest.workers[0]
    stop = asyncio.Event()
    task = asyncio.create_task(ingest.run(stop))
    try:
        # connected (the stream URI came from ONVIF) and idle: no stream, nothing analysed
        await _until(lambda: worker.source is not None, "the stream URI")
        await _until(
            lambda: any(s.reason == EVENT_IDLE for s in sink.of(topics.CAMERA_STATUS)),
            "the idle status",
        )
        await asyncio.sleep(2.0)
        assert worker.reader is None and worker.counters.event_sessions == 0
        assert sink.of(topics.CAMERA_DETECTION) == []
        # an intrusion that ended does not open the stream; a line crossing does
        device.push_event(
            ScriptedEvent(
                "tns1:RuleEngine/FieldDetector/ObjectsInside",
                {"Rule": "dock"},
                {"IsInside": "false"},
            )
        )
        await _until(lambda: len(sink.of(topics.CAMERA_EVENT)) >= 1, "the ended intrusion")
        await asyncio.sleep(1.0)
        assert worker.counters.event_sessions == 0
        device.push_event(
            ScriptedEvent(
                "tns1:RuleEngine/LineDetector/Crossed", {"Rule": "jetty"}, {"ObjectId": "7"}
            )
        )
        await _until(lambda: len(sink.of(topics.CAMERA_DETECTION)) >= 3, "frames after the event")
        assert worker.counters.event_sessions == 1
        assert set(worker.scheduler.counters.analysed) <= {"start", "cue"}
        # 2 s after the event the stream closes again and the camera says it is idle
        await _until(
            lambda: worker.reader is not None and worker.reader._stop.is_set(), "stream closed"
        )
        n = len(sink.of(topics.CAMERA_DETECTION))
        await asyncio.sleep(1.5)
        assert len(sink.of(topics.CAMERA_DETECTION)) == n  # nothing analysed while closed
        statuses = sink.of(topics.CAMERA_STATUS)
        assert statuses[-1].status == "online" and statuses[-1].reason == EVENT_IDLE
        assert all(s.status != "offline" or s.reason != "stopped" for s in statuses)
        # a cue opens it again
        ingest.cue("ev-1", 1.0)
        await _until(lambda: worker.counters.event_sessions == 2, "a second session on a cue")
        try:
            await _until(lambda: len(sink.of(topics.CAMERA_DETECTION)) > n, "frames after the cue")
        except AssertionError:
            r = worker.reader
            raise AssertionError(
                f"{r.frames_read} read, status {r.status} {r.reason}; "
                f"{[(x.status, x.reason) for x in sink.of(topics.CAMERA_STATUS)][-5:]} "
                f"{worker.scheduler.counters} {worker.counters}"
            ) from None
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        await device.stop()
