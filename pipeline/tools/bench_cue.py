"""``shorewatch bench cue``: alert on the topic -> PTZ pose reached and snapshot attached.

Runs the cue service (:mod:`pipeline.cue.service`) against the broker
(``KAFKA_BOOTSTRAP_SERVERS``, e.g. ``shorewatch kafka up``) and the ONVIF test device of the
test suite (``tests/peers/onvif_device.py``: real HTTP/SOAP, PTZ moves that take time), one
Hikvision-calibrated camera. Alerts at random positions 1-8 km around the camera are
published one after another, each as soon as the camera is free again (it may still be on
its way home); for each, the time from the alert record's timestamp to the broker's
acknowledgement of the update carrying the snapshot is measured, and the part of it until
``GetStatus`` reported the pose reached.

The device's head slews at ``--pan-speed`` generic units per second (1.0 = 180°/s with this
calibration; real PTZ domes slew at 100-400°/s), tilts at 1.0/s and zooms at 0.5/s (2 s
from wide to tele).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import tempfile
import time
from typing import Any

import numpy as np

from pipeline.settings import REPO_DIR, Settings


def _device_class() -> Any:
    """The test suite's ONVIF device (the bench runs from a source checkout)."""
    sys.path.insert(0, str(REPO_DIR / "tests"))
    from peers.onvif_device import OnvifDevice

    return OnvifDevice


async def _bench(bootstrap: str, n: int, pan_speed: float, seed: int = 7) -> dict[str, Any]:
    from connectors.kafka import RecordProducer
    from pipeline import admin, topics
    from pipeline.core.geo import destination_point
    from pipeline.cue.service import CueService, CueSettings
    from pipeline.site import AxisCalibration, CameraConfig, OnvifConfig, PtzCalibration
    from pipeline.vision.evidence import DirectoryEvidenceStore
    from schemas.records import (
        Alert,
        AlertData,
        AlertEvidence,
        AlertVessel,
        AlertZone,
        GeoPoint,
    )

    await admin.acreate_topics(bootstrap)
    os.environ.setdefault("SHOREWATCH_BENCH_CUE_USER", "admin")
    os.environ.setdefault("SHOREWATCH_BENCH_CUE_PASSWORD", "bench")
    device = await _device_class()(
        os.environ["SHOREWATCH_BENCH_CUE_USER"], os.environ["SHOREWATCH_BENCH_CUE_PASSWORD"],
        pan=0.0, tilt=0.9, zoom=0.0, pan_speed=pan_speed, tilt_speed=1.0, zoom_speed=0.5,
    ).start()  # fmt: skip
    lon0, lat0 = 110.27, 20.03
    cam = CameraConfig(
        id=f"bench-ptz-{os.getpid()}", lat=lat0, lon=lon0, height_m=25.0, heading_deg=10.0,
        tilt_deg=3.0, image_width=1920, image_height=1080, hfov_deg=60.0,
        onvif=OnvifConfig("127.0.0.1", device.port, "SHOREWATCH_BENCH_CUE_USER",
                          "SHOREWATCH_BENCH_CUE_PASSWORD"),
        ptz=PtzCalibration(pan=AxisCalibration(179.87, 179.95), tilt=AxisCalibration(-45.0, 45.0),
                           zoom_hfov=((0.0, 60.0), (0.5, 20.0), (1.0, 3.0))),
    )  # fmt: skip
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as evidence:
        service = CueService(
            [cam], bootstrap=bootstrap, evidence=DirectoryEvidenceStore(evidence),
            settings=CueSettings(dwell_s=0.2, min_interval_s=0.0, tolerance=0.002),
        )  # fmt: skip
        task = asyncio.create_task(service.run())
        producer = RecordProducer(bootstrap, client_id="bench-cue")
        await producer.start()
        try:
            await asyncio.wait_for(service.ready.wait(), 60)
            slot = service.arbiter.slots[cam.id]
            for i in range(n):
                lon, lat = destination_point(lon0, lat0, rng.uniform(0, 360), rng.uniform(1e3, 8e3))
                aid = f"bench-cue-{os.getpid()}-{i}"
                data = AlertData(
                    alert_id=aid, kind="dark_vessel", status="open", severity=60, factors=[],
                    event_time="2026-01-01T00:00:00.000Z",
                    position=GeoPoint(lat=float(lat), lon=float(lon)),
                    vessel=AlertVessel(mmsi=None, name=None, dark=True, track_id="bench"),
                    zone=AlertZone(name=None, kind=None, distance_m=None),
                    evidence=AlertEvidence(), site="bench", seq=1,
                )  # fmt: skip
                alert = Alert(id=f"{aid}/1", source="/shorewatch/bench", time=data.event_time,
                              type="org.shorewatch.alert.dark_vessel", data=data)  # fmt: skip
                done = len(service.timings)
                await producer.send_and_wait(topics.ALERT, aid, alert)
                deadline = time.monotonic() + 60
                while len(service.timings) == done or slot.busy is not None:
                    if time.monotonic() > deadline or task.done():
                        raise RuntimeError(f"cue {i} did not complete: {service.failures}")
                    await asyncio.sleep(0.01)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await producer.stop()
            await device.stop()
    total = np.array([t.total_s for t in service.timings])
    pose = np.array([(t.pose_t_ms - t.alert_t_ms) / 1000.0 for t in service.timings])
    return {
        "cues": len(total),
        "pan_speed": pan_speed,
        "total_p50_s": round(float(np.percentile(total, 50)), 3),
        "total_p95_s": round(float(np.percentile(total, 95)), 3),
        "total_max_s": round(float(total.max()), 3),
        "pose_p50_s": round(float(np.percentile(pose, 50)), 3),
        "pose_p95_s": round(float(np.percentile(pose, 95)), 3),
        "goal_p95_s": 5.0,
    }


def cmd_bench(args: Any) -> int:
    res = asyncio.run(_bench(Settings.from_env().broker(), args.alerts, args.pan_speed))
    if args.json:
        print(json.dumps(res))
    else:
        print(
            f"cue: {res['cues']} alerts, alert on the topic -> pose reached p50 "
            f"{res['pose_p50_s']} s, p95 {res['pose_p95_s']} s; -> snapshot attached p50 "
            f"{res['total_p50_s']} s, p95 {res['total_p95_s']} s (max {res['total_max_s']} s; "
            f"goal p95 < 5 s; pan speed {res['pan_speed']} units/s)"
        )
    return 0 if res["total_p95_s"] < res["goal_p95_s"] else 1
