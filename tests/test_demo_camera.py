"""The demo's RTSP showcase: clip-01 through a real RTSP server, the camera connector and Kafka."""

from __future__ import annotations

import os
import socket
import time

import msgspec
import pytest

from pipeline import topics
from pipeline.tools import demo_camera
from schemas import records


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _read_back(bootstrap: str, since_ms: int, want_frames: int, timeout_s: float = 30.0):
    """This run's clip-01 frames and statuses, read back from the broker."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topics.CAMERA_DETECTION.name,
        topics.CAMERA_STATUS.name,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    frames: list[records.CameraFrame] = []
    statuses: list[records.CameraStatus] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and (len(frames) < want_frames or not statuses):
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, msgs in batch.items():
                for m in msgs:
                    if m.key != demo_camera.CAMERA_ID.encode():
                        continue
                    if tp.topic == topics.CAMERA_DETECTION.name:
                        f = msgspec.json.decode(m.value, type=records.CameraFrame)
                        if f.t_ms >= since_ms:
                            frames.append(f)
                    else:
                        s = msgspec.json.decode(m.value, type=records.CameraStatus)
                        if s.t_ms >= since_ms:
                            statuses.append(s)
    finally:
        await consumer.stop()
    return frames, statuses


@pytest.mark.integration
async def test_rtsp_showcase_publishes_clip_01(kafka_bootstrap, shared, tmp_path):
    missing = demo_camera.gst_rtsp_missing()
    if missing:
        pytest.skip(missing)
    skipped: list[str] = []
    since_ms = int(time.time() * 1000)
    r = await demo_camera.rtsp_showcase(
        kafka_bootstrap, tmp_path, seconds=5.0, shared=shared, on_skip=skipped.append
    )
    assert r is not None, f"showcase skipped although GStreamer is usable: {skipped}"

    assert r["frames_read"] >= r["frames_published"] >= 5
    assert r["frames_with_boats"] >= 5 and r["detections"] >= r["frames_with_boats"]
    assert r["examples"] and all(0.0 <= e["bearing_deg"] < 360.0 for e in r["examples"])
    assert any(s.startswith("online") for s in r["statuses"])
    assert r["latency_p95_ms"] is not None
    assert r["evidence"] and all(p.endswith(".jpg") and os.path.isfile(p) for p in r["evidence"])
    assert all(str(tmp_path / "evidence") in p for p in r["evidence"])

    # the server is gone and its port closed
    port = int(r["url"].rsplit(":", 1)[1].split("/")[0])
    assert r["server_exit"] is not None and not _alive(r["server_pid"])
    assert not _listening(port)

    frames, statuses = await _read_back(kafka_bootstrap, since_ms - 5000, r["frames_published"])
    assert len(frames) >= r["frames_published"]
    assert all(f.camera_id == "clip-01" and f.image_width == 888 for f in frames)
    boats = [d for f in frames for d in f.detections if d.cls == "boat"]
    assert len(boats) >= r["frames_with_boats"]
    # geo-referenced with camera_para.txt: the camera looks north (heading 352°) over the river
    assert all(abs((f.heading_deg - 352.0 + 180.0) % 360.0 - 180.0) < 1.0 for f in frames)
    assert any(d.range_m is not None and d.lat is not None and d.lat > 30.6 for d in boats)
    # the far-bank bridge is outlined: its boxes are counted on the topic, never published
    assert r["masked"] > 0 and sum(f.masked_detections for f in frames) >= r["masked"]
    assert all(d.box_px[1] + d.box_px[3] > 232.0 for d in boats)
    assert statuses[0].status == "offline" and statuses[0].reason == "connecting"
    assert any(s.status == "online" for s in statuses)


@pytest.mark.unit
async def test_showcase_skips_with_a_reason_when_the_clip_is_missing(tmp_path):
    skipped: list[str] = []
    r = await demo_camera.rtsp_showcase(
        "127.0.0.1:9", tmp_path, shared=tmp_path / "nowhere", on_skip=skipped.append
    )
    assert r is None and skipped and "clip-01.mp4 not found" in skipped[0]
