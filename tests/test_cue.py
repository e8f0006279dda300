"""Slew-to-cue: the cue service against the real broker and the ONVIF test device (PTZ moves
with travel time, snapshots over HTTP). Alerts are real ``shorewatch.alert.v1`` records."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import msgspec
import pytest
from aiokafka import AIOKafkaConsumer
from peers.onvif_device import OnvifDevice

from connectors.kafka import RecordProducer
from connectors.onvif import PtzPosition, ptz_pose
from pipeline import topics
from pipeline.core.geo import destination_point
from pipeline.core.ptz import PtzModel, aim
from pipeline.cue.arbiter import Arbiter, CueRequest
from pipeline.cue.locks import read_locks
from pipeline.cue.service import CUE_SOURCE, CueService, CueSettings
from pipeline.site import AxisCalibration, CameraConfig, OnvifConfig, PtzCalibration
from pipeline.vision.evidence import DirectoryEvidenceStore
from schemas.records import (
    Alert,
    AlertData,
    AlertEvidence,
    AlertVessel,
    AlertZone,
    CameraStatus,
    GeoPoint,
)

CAM_LON, CAM_LAT = 110.27, 20.03
HOME = (-0.9, 0.9, 0.0)


def ptz_camera(cid: str, port: int = 1, **kw) -> CameraConfig:
    """A Hikvision-calibrated PTZ camera (pan° = 179.87·p + 179.95 from heading 10°)."""
    return CameraConfig(
        id=cid, lat=kw.pop("lat", CAM_LAT), lon=kw.pop("lon", CAM_LON), height_m=25.0,
        heading_deg=10.0, tilt_deg=3.0, image_width=1920, image_height=1080, hfov_deg=60.0,
        onvif=OnvifConfig("127.0.0.1", port, "CUE_TEST_USER", "CUE_TEST_PASSWORD"),
        ptz=PtzCalibration(
            pan=AxisCalibration(179.87, 179.95), tilt=AxisCalibration(-45.0, 45.0),
            zoom_hfov=((0.0, 60.0), (0.5, 20.0), (1.0, 3.0)),
        ),
        **kw,
    )  # fmt: skip


def alert(alert_id: str, severity: int, bearing: float, range_m: float, seq: int = 1) -> Alert:
    lon, lat = destination_point(CAM_LON, CAM_LAT, bearing, range_m)
    data = AlertData(
        alert_id=alert_id, kind="dark_vessel", status="open" if seq == 1 else "update",
        severity=severity, factors=[], event_time="2026-12-05T01:00:00.000Z",
        position=GeoPoint(lat=float(lat), lon=float(lon)),
        vessel=AlertVessel(mmsi=None, name=None, dark=True, track_id="cam:x:1"),
        zone=AlertZone(name=None, kind=None, distance_m=None),
        evidence=AlertEvidence(snapshot_uris=["file:///evidence/frame.jpg"]), site="test", seq=seq,
    )  # fmt: skip
    return Alert(
        id=f"{alert_id}/{seq}", source="/shorewatch/area/test", type="org.shorewatch.alert.dark_vessel",
        time="2026-12-05T01:00:00.000Z", data=data,
    )  # fmt: skip


async def wait_for(cond: Callable[[], bool], timeout_s: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.05)


@pytest.mark.unit
def test_arbiter_nearest_free_preemption_rate_limit_and_locks() -> None:
    near = PtzModel.from_camera(ptz_camera("near"))
    lon2, lat2 = destination_point(CAM_LON, CAM_LAT, 90.0, 6000.0)
    far = PtzModel.from_camera(ptz_camera("far", lon=float(lon2), lat=float(lat2)))
    arb = Arbiter(min_interval_s=3.0)
    arb.add("far", far)
    arb.add("near", near)
    lon, lat = destination_point(CAM_LON, CAM_LAT, 200.0, 2000.0)
    low = CueRequest("a", 30, float(lon), float(lat), 0)
    d = arb.decide(low, 10_000)
    assert (d.camera_id, d.reason) == ("near", "free")
    arb.start(d, low, 10_000)
    high = CueRequest("b", 70, float(lon), float(lat), 0)
    # the nearer camera is busy: the free one farther away takes the higher one
    assert arb.decide(high, 11_000).camera_id == "far"
    arb.slots["far"].locked_until_t_ms = float("inf")
    # only the busy one is left: too soon after its last cue to pre-empt
    d = arb.decide(high, 11_000)
    assert d.camera_id is None and "near rate-limited" in d.reason and "far locked" in d.reason
    d = arb.decide(high, 13_500)
    assert (d.camera_id, d.reason, d.preempted) == ("near", "preempts", low)
    # the same severity never pre-empts
    same = CueRequest("c", 30, float(lon), float(lat), 0)
    assert "busy with severity 30" in arb.decide(same, 20_000).reason
    # out of every camera's reach
    flon, flat = destination_point(CAM_LON, CAM_LAT, 200.0, 60_000.0)
    assert arb.decide(CueRequest("d", 90, float(flon), float(flat), 0), 20_000).reason == (
        "no camera covers the position"
    )


@pytest.fixture
def cue_env(monkeypatch):
    monkeypatch.setenv("CUE_TEST_USER", "admin")
    monkeypatch.setenv("CUE_TEST_PASSWORD", "s3cret")


async def _device(pan_speed: float) -> OnvifDevice:
    return await OnvifDevice(
        "admin", "s3cret", pan=HOME[0], tilt=HOME[1], zoom=HOME[2], pan_speed=pan_speed,
        tilt_speed=1.0, zoom_speed=1.0,
    ).start()  # fmt: skip


class Running:
    """A cue service task over one test device, and a reader of what it publishes."""

    def __init__(self, service: CueService, bootstrap: str):
        self.service = service
        self.bootstrap = bootstrap
        self.updates: list[Alert] = []
        self.statuses: list[CameraStatus] = []

    async def __aenter__(self) -> Running:
        self.task = asyncio.create_task(self.service.run())
        await asyncio.wait_for(self.service.ready.wait(), 60)
        self.consumer = AIOKafkaConsumer(
            topics.ALERT.name, topics.CAMERA_STATUS.name, bootstrap_servers=self.bootstrap,
            group_id=f"t-{uuid.uuid4().hex}", auto_offset_reset="latest", enable_auto_commit=False,
        )  # fmt: skip
        await self.consumer.start()
        await wait_for(lambda: bool(self.consumer.assignment()), 60, "assignment")
        for tp in self.consumer.assignment():
            await self.consumer.position(tp)
        self.reader = asyncio.create_task(self._read())
        self.producer = RecordProducer(self.bootstrap)
        await self.producer.start()
        return self

    async def _read(self) -> None:
        while True:
            for msgs in (await self.consumer.getmany(timeout_ms=200)).values():
                for m in msgs:
                    if m.topic == topics.ALERT.name:
                        a = msgspec.json.decode(m.value, type=Alert)
                        if a.source == CUE_SOURCE:
                            self.updates.append(a)
                    else:
                        self.statuses.append(msgspec.json.decode(m.value, type=CameraStatus))

    async def send(self, a: Alert) -> None:
        await self.producer.send_and_wait(topics.ALERT, a.data.alert_id, a)

    def updates_of(self, alert_id: str) -> list[Alert]:
        return [u for u in self.updates if u.data.alert_id == alert_id]

    async def __aexit__(self, *exc: object) -> None:
        self.task.cancel()
        self.reader.cancel()
        await asyncio.gather(self.task, self.reader, return_exceptions=True)
        await self.consumer.stop()
        await self.producer.stop()


def _service(cams, bootstrap, tmp_path, **kw) -> CueService:
    settings = CueSettings(
        dwell_s=kw.pop("dwell_s", 1.0), min_interval_s=kw.pop("min_interval_s", 1.0),
        move_timeout_s=20.0, tolerance=0.002, offline_retry_s=300.0, **kw,
    )  # fmt: skip
    return CueService(
        cams, bootstrap=bootstrap, evidence=DirectoryEvidenceStore(tmp_path), settings=settings
    )


def _aim(cam: CameraConfig, bearing: float, range_m: float) -> tuple[float, float, float]:
    lon, lat = destination_point(CAM_LON, CAM_LAT, bearing, range_m)
    a = aim(PtzModel.from_camera(cam), lon, lat)
    return float(a.pan[0]), float(a.tilt[0]), float(a.zoom[0])


@pytest.mark.integration
async def test_two_alerts_compete_for_one_camera(kafka_bootstrap, tmp_path, cue_env) -> None:
    dev = await _device(pan_speed=0.3)
    tag = uuid.uuid4().hex[:6]
    cam = ptz_camera(f"cam-{tag}", dev.port)
    try:
        async with Running(_service([cam], kafka_bootstrap, tmp_path), kafka_bootstrap) as run:
            low, high = f"low-{tag}", f"high-{tag}"
            await run.send(alert(low, 40, 200.0, 3500.0))
            await wait_for(lambda: bool(dev.moves), 30, "the first move")
            await run.send(alert(high, 80, 150.0, 2000.0))
            await wait_for(lambda: run.updates_of(high) and run.updates_of(low), 90, "both cues")
    finally:
        await dev.stop()
    aim_low, aim_high = _aim(cam, 200.0, 3500.0), _aim(cam, 150.0, 2000.0)
    moves = [m[1] for m in dev.moves if m[0] == "AbsoluteMove"]
    # the lower severity started, was pre-empted by the higher, and was served after it
    assert moves[0] == pytest.approx(aim_low) and moves[1] == pytest.approx(aim_high)
    assert moves[-1] == pytest.approx(aim_low)
    up_high, up_low = run.updates_of(high)[0], run.updates_of(low)[0]
    assert run.updates.index(up_high) < run.updates.index(up_low)
    for up, want, brg in ((up_high, aim_high, 150.0), (up_low, aim_low, 200.0)):
        d = up.data
        assert d.status == "update" and d.seq == 1 and up.id.startswith(f"{d.alert_id}/1/cue/")
        cue = d.evidence.detections[-1]["cue"]
        assert cue["camera_id"] == cam.id
        assert (cue["pan"], cue["tilt"], cue["zoom"]) == pytest.approx(want, abs=1e-4)
        pose = ptz_pose(cam, PtzPosition(cue["pan"], cue["tilt"], cue["zoom"], 0))
        assert abs((pose.heading_deg - brg + 180) % 360 - 180) < 0.01
        # the detector's evidence is kept, the snapshot added, and it is a real JPEG
        assert d.evidence.snapshot_uris[0] == "file:///evidence/frame.jpg"
        snap = d.evidence.snapshot_uris[-1]
        assert snap == cue["snapshot_uri"] and snap.startswith("file://")
        with open(snap.removeprefix("file://"), "rb") as f:
            assert f.read(2) == b"\xff\xd8"
    # every snapshot was taken standing still at a pose that was asked for
    for pan, tilt, zoom, moving, _ in dev.snapshots:
        assert not moving
        assert any((pan, tilt, zoom) == pytest.approx(m, abs=0.003) for m in (aim_low, aim_high))


@pytest.mark.integration
async def test_an_operator_lock_is_respected(kafka_bootstrap, tmp_path, cue_env) -> None:
    dev = await _device(pan_speed=1.0)
    tag = uuid.uuid4().hex[:6]
    cam = ptz_camera(f"cam-{tag}", dev.port)
    from pipeline.cli import main

    # the operator's command, as typed (it publishes to the compacted lock topic)
    argv = ["cue", "lock", cam.id, "--user", "op1", "--reason", "tracking a ferry"]
    assert await asyncio.to_thread(main, argv) == 0
    assert (await read_locks(kafka_bootstrap))[cam.id].user == "op1"
    try:
        service = _service([cam], kafka_bootstrap, tmp_path)
        async with Running(service, kafka_bootstrap) as run:
            slot = service.arbiter.slots[cam.id]
            assert slot.locked(int(time.time() * 1000))  # read before the service was ready
            aid = f"locked-{tag}"
            await run.send(alert(aid, 90, 120.0, 2500.0))
            await wait_for(lambda: aid in service.seen, 30, "the alert")
            rounds = service.rounds
            await wait_for(lambda: service.rounds >= rounds + 8, 30, "pending retries")
            assert dev.moves == [] and run.updates_of(aid) == []
            assert await asyncio.to_thread(main, ["cue", "unlock", cam.id, "--user", "op1"]) == 0
            await wait_for(lambda: bool(run.updates_of(aid)), 60, "the cue after the release")
    finally:
        await dev.stop()
    assert dev.moves[0][1] == pytest.approx(_aim(cam, 120.0, 2500.0))


@pytest.mark.integration
async def test_a_camera_unreachable_mid_move(kafka_bootstrap, tmp_path, cue_env) -> None:
    dev = await _device(pan_speed=0.05)  # a long move
    tag = uuid.uuid4().hex[:6]
    cam = ptz_camera(f"cam-{tag}", dev.port)
    service = _service([cam], kafka_bootstrap, tmp_path)
    async with Running(service, kafka_bootstrap) as run:
        aid = f"lost-{tag}"
        await run.send(alert(aid, 60, 300.0, 3000.0))
        await wait_for(lambda: bool(dev.moves), 30, "the move")
        await dev.stop()
        await wait_for(lambda: any(s.camera_id == cam.id for s in run.statuses), 60, "status")
        status = next(s for s in run.statuses if s.camera_id == cam.id)
        assert status.status == "offline" and "unreachable" in (status.reason or "").lower()
        assert service.failures and service.failures[0][0] == cam.id
        # the alert is left as it was (no update), and waits for another camera
        assert run.updates_of(aid) == [] and service.timings == []
        assert aid in service.pending


def _track(mmsi: int, lon: float, lat: float, t_ms: int):
    from schemas.records import Track

    return Track(
        mmsi=mmsi, t_ms=t_ms, lon=lon, lat=lat, sog_kn=0.0, cog_deg=0.0, heading_deg=None,
        vel_east_mps=0.0, vel_north_mps=0.0, ais_class="A", n_fixes=10, expected_interval_s=10.0,
        last_gap_s=10.0, max_gap_s=10.0, mmsi_kind="ship", mid=412,
    )  # fmt: skip


@pytest.mark.integration
async def test_a_radar_target_without_ais_is_cued(kafka_bootstrap, tmp_path, cue_env) -> None:
    from schemas.records import RadarTarget

    dev = await _device(pan_speed=1.0)
    tag = uuid.uuid4().hex[:6]
    cam = ptz_camera(f"cam-{tag}", dev.port)
    service = _service([cam], kafka_bootstrap, tmp_path, radar=True)
    now = int(time.time() * 1000)
    ais_lon, ais_lat = destination_point(CAM_LON, CAM_LAT, 100.0, 3000.0)
    dark_lon, dark_lat = destination_point(CAM_LON, CAM_LAT, 250.0, 4000.0)

    def report(n: int, lon, lat, status: str = "tracking") -> RadarTarget:
        return RadarTarget(
            radar_id=f"r-{tag}", target_id=f"r-{tag}:{n}", target_number=n, sentence="TTM",
            t_ms=now, rx_t_ms=now, lon=float(lon), lat=float(lat), range_m=3000.0,
            bearing_deg=0.0, position_sigma_m=40.0, status=status, source="test",
        )  # fmt: skip

    try:
        async with Running(service, kafka_bootstrap) as run:
            mmsi = 412_000_000 + int(tag, 16) % 999_999
            await run.producer.send_and_wait(
                topics.TRACK, str(mmsi), _track(mmsi, float(ais_lon), float(ais_lat), now)
            )
            await wait_for(lambda: mmsi in service._tracks, 30, "the AIS track")
            for r in (report(1, ais_lon, ais_lat), report(2, dark_lon, dark_lat),
                      report(3, dark_lon + 0.01, dark_lat, "acquiring")):  # fmt: skip
                await run.producer.send_and_wait(topics.RADAR_TARGET, r.radar_id, r)
            await wait_for(lambda: bool(service.timings), 60, "the radar cue")
    finally:
        await dev.stop()
    assert service.seen == {f"radar:r-{tag}:2"}  # the AIS vessel and the acquiring plot: not cued
    assert service.timings[0].alert_id == f"radar:r-{tag}:2"
    moves = [m[1] for m in dev.moves if m[0] == "AbsoluteMove"]
    assert moves[0][:2] == pytest.approx(_aim(cam, 250.0, 4000.0)[:2], abs=1e-4)
    assert run.updates == []  # no alert to update
