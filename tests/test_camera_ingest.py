"""The camera ingest runner against real peers: the GStreamer RTSP server and the ONVIF
test device, with the production analyser (motion detector) and a collecting sink."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import msgspec
import pytest
from jsonschema import Draft202012Validator
from peers.launch import RtspServer, free_port, gst_rtsp_missing
from peers.onvif_device import OnvifDevice, ScriptedEvent

from connectors.camera import CameraIngest, LatencyStats, analyser_factory, parse_overrides
from connectors.onvif import PtzPosition, ptz_pose
from connectors.rtsp import Backoff
from pipeline import topics
from pipeline.errors import ConfigError
from pipeline.site import AxisCalibration, CameraConfig, OnvifConfig, PtzCalibration
from schemas import records

WAIT_S = 90.0
FAST_READER = {
    "open_timeout_ms": 3000,
    "read_timeout_ms": 3000,
    "status_interval_s": 1.0,
    "backoff": None,
}


def reader_kwargs() -> dict:
    return {**FAST_READER, "backoff": Backoff(0.2, 1.0)}


SCHEMAS = Path(records.__file__).parent
_validators: dict[str, Draft202012Validator] = {}


def validate(topic, record) -> None:
    """The record, as JSON, against the topic's published JSON Schema."""
    if topic.schema_file not in _validators:
        schema = json.loads((SCHEMAS / topic.schema_file).read_text())
        _validators[topic.schema_file] = Draft202012Validator(schema)
    _validators[topic.schema_file].validate(json.loads(msgspec.json.encode(record)))


class Collector:
    """A sink that checks each record against its topic's JSON Schema, keeps it, and lets
    a test wait for a condition."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, object]] = []
        self.changed = asyncio.Condition()

    async def __call__(self, topic, key, record) -> None:
        assert isinstance(record, topic.value_type)
        validate(topic, record)
        async with self.changed:
            self.items.append((topic.name, key, record))
            self.changed.notify_all()

    def of(self, topic, key: str | None = None) -> list:
        return [r for t, k, r in self.items if t == topic.name and (key is None or k == key)]

    async def wait_for(self, predicate, timeout_s: float = WAIT_S) -> None:
        async def wait() -> None:
            async with self.changed:
                await self.changed.wait_for(lambda: predicate(self))

        await asyncio.wait_for(wait(), timeout_s)


def camera(cam_id: str, **kw) -> CameraConfig:
    base = dict(
        id=cam_id,
        lat=20.03,
        lon=110.27,
        height_m=20.0,
        heading_deg=30.0,
        tilt_deg=3.0,
        image_width=888,
        image_height=500,
        hfov_deg=60.0,
    )
    return CameraConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def gst():
    missing = gst_rtsp_missing()
    if missing:
        pytest.skip(missing)


@pytest.fixture(scope="module")
def clip_server(gst, shared):
    clip = shared / "data" / "video" / "clip-01" / "clip-01.mp4"
    if not clip.is_file():
        pytest.skip(f"clip not found: {clip}")
    with RtspServer("--file", str(clip)) as server:
        yield server


async def run_until(ingest: CameraIngest, sink: Collector, predicate) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(ingest.run(stop))
    try:
        await sink.wait_for(predicate)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


# --------------------------------------------------------------------------- unit


@pytest.mark.unit
def test_parse_overrides(tmp_path):
    f = tmp_path / "v.mp4"
    f.write_bytes(b"x")
    assert parse_overrides(["a=rtsp://127.0.0.1/x", f"b={f}"]) == {
        "a": "rtsp://127.0.0.1/x",
        "b": str(f),
    }
    with pytest.raises(ConfigError, match="CAM_ID=URL_OR_FILE"):
        parse_overrides(["nonsense"])
    with pytest.raises(ConfigError, match="no such file"):
        parse_overrides([f"a={tmp_path / 'missing.mp4'}"])


@pytest.mark.unit
def test_override_of_unknown_camera_is_a_config_error():
    async def sink(topic, key, record):
        pass

    with pytest.raises(ConfigError, match="unknown camera ids"):
        CameraIngest([camera("a")], sink, analyser_factory(None), overrides={"zz": "x.mp4"})


@pytest.mark.unit
def test_latency_stats():
    s = LatencyStats(window=100)
    for v in range(1, 201):
        s.add(float(v))
    assert s.count == 200
    assert s.percentile_ms(50) == pytest.approx(150.5)
    assert s.summary()["p95_ms"] == pytest.approx(195.0, abs=0.1)
    assert LatencyStats().summary()["p95_ms"] is None


# --------------------------------------------------------------------------- real peers


@pytest.mark.integration
async def test_broken_cameras_never_stop_a_working_one(clip_server):
    sink = Collector()
    cams = [
        camera("good", rtsp_url=clip_server.url),
        camera("dead", rtsp_url=f"rtsp://127.0.0.1:{free_port()}/cam"),
        camera("nosource"),
    ]
    ingest = CameraIngest(
        cams, sink, analyser_factory(None), max_fps=5, reader_kwargs=reader_kwargs()
    )

    def done(s: Collector) -> bool:
        dead = [
            st
            for st in s.of(topics.CAMERA_STATUS, "dead")
            if (st.reason or "").startswith("open_failed")
        ]
        return (
            len(s.of(topics.CAMERA_DETECTION, "good")) >= 5
            and bool(dead)
            and bool(s.of(topics.CAMERA_STATUS, "nosource"))
        )

    await run_until(ingest, sink, done)
    frames = sink.of(topics.CAMERA_DETECTION, "good")
    assert all(isinstance(f, records.CameraFrame) for f in frames)
    assert {(f.camera_id, f.image_width, f.image_height) for f in frames} == {("good", 888, 500)}
    assert [f.t_ms for f in frames] == sorted(f.t_ms for f in frames)
    assert all(f.heading_deg == pytest.approx(30.0) for f in frames)
    assert not sink.of(topics.CAMERA_DETECTION, "dead")
    dead = [s for s in sink.of(topics.CAMERA_STATUS, "dead") if s.status == "offline"]
    assert any("cannot open rtsp://127.0.0.1" in (s.reason or "") for s in dead)
    [nosource] = sink.of(topics.CAMERA_STATUS, "nosource")
    assert nosource.status == "offline" and nosource.reason.startswith(
        "config: camera nosource: no rtsp_url"
    )
    assert any(s.status == "online" for s in sink.of(topics.CAMERA_STATUS, "good"))
    stats = ingest.stats()
    assert stats["latency"]["n"] >= 5 and stats["latency"]["p95_ms"] > 0
    assert stats["cameras"]["good"]["frames_published"] >= 5


@pytest.mark.integration
async def test_onvif_camera_events_ptz_pose_and_clock_offset(clip_server, monkeypatch):
    """Stream URI from GetStreamUri, pose from PTZ GetStatus, events from PullPoint."""
    device = await OnvifDevice(
        "svc", "pw-1", clock_skew_s=-120.3, rtsp_url=clip_server.url, pan=0.25, tilt=0.9, zoom=0.5
    ).start()
    monkeypatch.setenv("TEST_CAM_USER", "svc")
    monkeypatch.setenv("TEST_CAM_PASSWORD", "pw-1")
    cam = camera(
        "ptz-1",
        onvif=OnvifConfig("127.0.0.1", device.port, "TEST_CAM_USER", "TEST_CAM_PASSWORD"),
        ptz=PtzCalibration(
            pan=AxisCalibration(179.87, 179.95),
            tilt=AxisCalibration(-45.0, 45.0),
            zoom_hfov=((0.0, 60.0), (1.0, 4.0)),
        ),
    )
    expected = ptz_pose(cam, PtzPosition(0.25, 0.9, 0.5, 0))
    sink = Collector()
    ingest = CameraIngest(
        [cam],
        sink,
        analyser_factory(None),
        max_fps=5,
        reader_kwargs=reader_kwargs(),
        ptz_interval_s=0.5,
        event_pull_timeout_s=0.5,
    )
    device.push_event(
        ScriptedEvent("tns1:RuleEngine/LineDetector/Crossed", {"Rule": "jetty"}, {"ObjectId": "1"})
    )
    try:

        def done(s: Collector) -> bool:
            posed = [
                f
                for f in s.of(topics.CAMERA_DETECTION)
                if f.heading_deg == pytest.approx(expected.heading_deg)
            ]
            return len(posed) >= 2 and len(s.of(topics.CAMERA_EVENT)) >= 1

        await run_until(ingest, sink, done)
    finally:
        await device.stop()
    [event] = sink.of(topics.CAMERA_EVENT, "ptz-1")
    assert (event.kind, event.rule) == ("line_crossed", "jetty")
    posed = [
        f
        for f in sink.of(topics.CAMERA_DETECTION)
        if f.heading_deg == pytest.approx(expected.heading_deg)
    ]
    assert posed[-1].hfov_deg == pytest.approx(expected.hfov_deg)  # 32° at zoom 0.5
    offsets = {
        s.clock_offset_ms for s in sink.of(topics.CAMERA_STATUS) if s.clock_offset_ms is not None
    }
    assert offsets and all(abs(o + 120_300) <= 250 for o in offsets)  # poll + round trips
    assert device.unsubscribed  # the subscription was closed on shutdown


@pytest.mark.integration
async def test_wrong_onvif_password_is_reported_while_video_continues(clip_server, monkeypatch):
    device = await OnvifDevice("svc", "right").start()
    monkeypatch.setenv("CAM_U", "svc")
    monkeypatch.setenv("CAM_P", "wrong")
    cam = camera(
        "authfail",
        rtsp_url=clip_server.url,
        onvif=OnvifConfig("127.0.0.1", device.port, "CAM_U", "CAM_P"),
    )
    sink = Collector()
    ingest = CameraIngest([cam], sink, analyser_factory(None), reader_kwargs=reader_kwargs())
    try:
        await run_until(
            ingest,
            sink,
            lambda s: (
                any((st.reason or "").startswith("auth:") for st in s.of(topics.CAMERA_STATUS))
                and len(s.of(topics.CAMERA_DETECTION)) >= 3
            ),
        )
    finally:
        await device.stop()
    auth = [s for s in sink.of(topics.CAMERA_STATUS) if (s.reason or "").startswith("auth:")]
    assert "refused the credentials" in auth[0].reason
    # Once ONVIF failed, the video's periodic "online" reports say "degraded" with the reason.
    later = sink.of(topics.CAMERA_STATUS)[sink.of(topics.CAMERA_STATUS).index(auth[0]) :]
    assert all(s.status != "online" for s in later)


@pytest.mark.integration
async def test_missing_credentials_env_is_a_config_status(clip_server, monkeypatch):
    monkeypatch.delenv("NOPE_USER", raising=False)
    cam = camera(
        "nocreds",
        rtsp_url=clip_server.url,
        onvif=OnvifConfig("127.0.0.1", free_port(), "NOPE_USER", "NOPE_PASSWORD"),
    )
    sink = Collector()
    ingest = CameraIngest([cam], sink, analyser_factory(None), reader_kwargs=reader_kwargs())
    await run_until(
        ingest,
        sink,
        lambda s: (
            any("config:" in (st.reason or "") for st in s.of(topics.CAMERA_STATUS))
            and len(s.of(topics.CAMERA_DETECTION)) >= 2
        ),
    )
    reasons = [s.reason for s in sink.of(topics.CAMERA_STATUS) if "config:" in (s.reason or "")]
    assert "NOPE_USER" in reasons[0]


@pytest.mark.integration
async def test_corrupt_frames_go_to_dead_letters_and_are_counted(gst):
    """A stream of blank frames (decoder fill): the analyser rejects each with FrameError."""
    with RtspServer(
        "--test-pattern", "--pattern", "black", "--width", "320", "--height", "240"
    ) as server:
        sink = Collector()
        ingest = CameraIngest(
            [camera("blank", rtsp_url=server.url, image_width=320, image_height=240)],
            sink,
            analyser_factory(None),
            reader_kwargs=reader_kwargs(),
        )
        await run_until(ingest, sink, lambda s: len(s.of(topics.DEADLETTER)) >= 3)
    letters = sink.of(topics.DEADLETTER)
    assert {(d.source, d.stage, d.reason) for d in letters} == {
        ("camera:blank", "camera.frame", "blank_frame")
    }
    assert all(d.raw_b64 for d in letters)
    counters = ingest.workers[0].counters
    assert counters.frame_errors >= 3 and counters.by_reason == {
        "blank_frame": counters.frame_errors
    }
    assert not sink.of(topics.CAMERA_DETECTION)


@pytest.mark.integration
async def test_local_file_override(shared, tmp_path):
    clip = shared / "data" / "video" / "clip-01" / "clip-01.mp4"
    if not clip.is_file():
        pytest.skip(f"clip not found: {clip}")
    sink = Collector()
    ingest = CameraIngest(
        [camera("file-cam", rtsp_url="rtsp://127.0.0.1:9/unused")],
        sink,
        analyser_factory(None, evidence_dir=tmp_path / "evidence"),
        overrides=parse_overrides([f"file-cam={clip}"]),
        max_fps=10,
    )
    # Evidence is written for frames with detections (the motion detector finds the
    # moving boats of the clip once its background is learnt).
    await run_until(
        ingest, sink, lambda s: any(f.detections for f in s.of(topics.CAMERA_DETECTION))
    )
    seen = [f for f in sink.of(topics.CAMERA_DETECTION) if f.detections]
    assert seen[0].evidence_uri and seen[0].evidence_uri.startswith("file://")
    assert all(d.crop_uri and d.crop_uri.startswith("file://") for d in seen[0].detections)
    assert (tmp_path / "evidence" / "file-cam").is_dir()


@pytest.mark.unit
def test_ingest_command_rejects_a_malformed_site(tmp_path, capsys):
    from pipeline.cli import main

    (tmp_path / "cameras.yaml").write_text("cameras: [{id: x, lat: 'north'}]\n")
    rc = main(["ingest", "camera", "--site", str(tmp_path), "--model-dir", "none"])
    assert rc == 1
    assert "shorewatch: error:" in capsys.readouterr().err


@pytest.mark.integration
async def test_ingest_command_publishes_to_kafka(kafka_bootstrap, shared, capsys, tmp_path):
    """``shorewatch ingest camera`` on the Haikou site: one camera reads the clip (override),
    the others point at RTSP addresses nobody serves; records reach the real broker."""
    import time

    from aiokafka import AIOKafkaConsumer

    from pipeline.cli import main

    clip = shared / "data" / "video" / "clip-01" / "clip-01.mp4"
    if not clip.is_file():
        pytest.skip(f"clip not found: {clip}")
    import shutil

    site = tmp_path / "haikou"
    shutil.copytree("sites/haikou", site)
    cameras_yaml = site / "cameras.yaml"  # nobody serves these addresses
    cameras_yaml.write_text(
        cameras_yaml.read_text().replace("127.0.0.1:8554", f"127.0.0.1:{free_port()}")
    )
    t0_ms = int(time.time() * 1000)
    argv = [
        "ingest",
        "camera",
        "--site",
        str(site),
        "--model-dir",
        "none",
        "--camera",
        f"hk-west-01={clip}",
        "--duration-s",
        "6",
        "--max-fps",
        "5",
    ]
    rc = await asyncio.to_thread(main, argv)
    assert rc == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert stats["cameras"]["hk-west-01"]["frames_published"] >= 5
    assert stats["latency"]["p95_ms"] is not None

    consumer = AIOKafkaConsumer(
        topics.CAMERA_DETECTION.name,
        topics.CAMERA_STATUS.name,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    frames, statuses = [], {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (len(frames) < 5 or len(statuses) < 6):
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, msgs in batch.items():
                for m in msgs:
                    if tp.topic == topics.CAMERA_DETECTION.name:
                        rec = msgspec.json.decode(m.value, type=records.CameraFrame)
                        if rec.t_ms >= t0_ms and m.key == b"hk-west-01":
                            frames.append(rec)
                    else:
                        st = msgspec.json.decode(m.value, type=records.CameraStatus)
                        if st.t_ms >= t0_ms:
                            statuses.setdefault(m.key.decode(), []).append(st)
    finally:
        await consumer.stop()
    assert len(frames) >= 5 and all(f.camera_id == "hk-west-01" for f in frames)
    assert any(s.status == "online" for s in statuses["hk-west-01"])
    for cam in ("hk-holiday-01", "hk-xiuying-01", "hk-nandu-01"):
        assert any(
            s.status == "offline" and (s.reason or "").startswith("open_failed")
            for s in statuses[cam]
        ), cam


@pytest.mark.integration
async def test_ipycam_without_events_and_with_a_broken_ptz_answer(clip_server, monkeypatch):
    """The emulator has no event service and answers PTZ GetStatus with malformed XML:
    the camera is reported degraded with the reason, and its video keeps flowing."""
    from peers.ipycam_camera import start_ipycam

    peer = start_ipycam("op", "pw", rtsp_port=free_port())
    monkeypatch.setenv("IPY_USER", "op")
    monkeypatch.setenv("IPY_PASSWORD", "pw")
    cam = camera(
        "ipy-1",
        rtsp_url=clip_server.url,
        onvif=OnvifConfig("127.0.0.1", peer.port, "IPY_USER", "IPY_PASSWORD"),
        ptz=PtzCalibration(pan=AxisCalibration(180.0, 0.0)),
    )
    sink = Collector()
    ingest = CameraIngest(
        [cam], sink, analyser_factory(None), reader_kwargs=reader_kwargs(), ptz_interval_s=0.5
    )

    def done(s: Collector) -> bool:
        bad = [st for st in s.of(topics.CAMERA_STATUS) if "BadResponse" in (st.reason or "")]
        return bool(bad) and len(s.of(topics.CAMERA_DETECTION)) >= 3

    try:
        await run_until(ingest, sink, done)
    finally:
        peer.stop()
    bad = [st for st in sink.of(topics.CAMERA_STATUS) if "BadResponse" in (st.reason or "")]
    assert bad[0].reason.startswith("onvif: ") and "GetStatus" in bad[0].reason
    assert not sink.of(topics.CAMERA_EVENT)
    assert all(f.heading_deg == pytest.approx(30.0) for f in sink.of(topics.CAMERA_DETECTION))


@pytest.mark.integration
def test_bench_ingest_reports_latency(shared):
    from pipeline.tools.bench_camera import bench_ingest

    clip = shared / "data" / "video" / "clip-01" / "clip-01.mp4"
    if not clip.is_file():
        pytest.skip(f"clip not found: {clip}")
    result = bench_ingest(clip, cameras=2, duration_s=2.0, model_dir=None)
    assert result["cameras"] == 2 and result["frames"] > 0
    assert result["latency_p95_ms"] >= result["latency_p50_ms"] > 0
    assert result["analyse_p95_ms"] is not None and result["publish_p95_ms"] is not None
    assert set(result["per_camera"]) == {"bench-00", "bench-01"}


@pytest.mark.integration
async def test_stream_uri_from_onvif_opened_with_the_camera_credentials(gst, monkeypatch):
    """GetStreamUri gives a URL without credentials; the RTSP server wants them."""
    with RtspServer(
        "--test-pattern", "--width", "320", "--height", "240", "--user", "svc", "--password", "pw 2"
    ) as server:
        device = await OnvifDevice("svc", "pw 2", rtsp_url=server.url).start()
        monkeypatch.setenv("AUTH_CAM_USER", "svc")
        monkeypatch.setenv("AUTH_CAM_PASSWORD", "pw 2")
        cam = camera(
            "auth-1",
            image_width=320,
            image_height=240,
            onvif=OnvifConfig("127.0.0.1", device.port, "AUTH_CAM_USER", "AUTH_CAM_PASSWORD"),
        )
        sink = Collector()
        ingest = CameraIngest([cam], sink, analyser_factory(None), reader_kwargs=reader_kwargs())
        try:
            await run_until(ingest, sink, lambda s: len(s.of(topics.CAMERA_DETECTION)) >= 2)
        finally:
            await device.stop()
    assert ingest.workers[0].source == server.url.replace("rtsp://", "rtsp://svc:pw%202@")
    assert "GetStreamUri" in device.requests


@pytest.mark.integration
async def test_missing_detector_model_is_a_config_status(tmp_path, clip_server):
    """A camera whose analyser cannot be built reports why; the other camera runs."""
    good_factory = analyser_factory(None)
    broken_factory = analyser_factory(tmp_path / "no-model")

    def factory(cam):
        return (broken_factory if cam.id == "nomodel" else good_factory)(cam)

    sink = Collector()
    cams = [camera("nomodel", rtsp_url=clip_server.url), camera("ok", rtsp_url=clip_server.url)]
    ingest = CameraIngest(cams, sink, factory, reader_kwargs=reader_kwargs())
    await run_until(
        ingest,
        sink,
        lambda s: (
            bool(s.of(topics.CAMERA_STATUS, "nomodel"))
            and len(s.of(topics.CAMERA_DETECTION, "ok")) >= 2
        ),
    )
    [status] = sink.of(topics.CAMERA_STATUS, "nomodel")
    assert status.status == "offline"
    assert status.reason.startswith("config: detector model file not found")


@pytest.mark.unit
def test_analyser_factory_wires_the_ais_source_to_self_calibrating_cameras():
    def source(t_ms, cam):
        return [], [], []

    make = analyser_factory(None, ais_source=source)
    assert make(camera("a", self_calibrate=True)).ais_source is source
    assert make(camera("b")).ais_source is None  # opt-in per camera
    # no source wired: the camera keeps its configured pose
    assert analyser_factory(None)(camera("c", self_calibrate=True)).ais_source is None


# --------------------------------------------------------------------------- self-calibration AIS


def _camera_at_110_3_20_0():
    """A camera at 110.3 E, 20.0 N looking north (888 x 500)."""
    from pipeline.core.camera import CameraModel

    return CameraModel.from_hfov(
        lon_deg=110.3, lat_deg=20.0, height_m=20.0, heading_deg=0.0, tilt_deg=3.0,
        hfov_deg=60.0, image_width=888, image_height=500,
    )  # fmt: skip


def _tracks_of(*fixes: tuple[int, float, float, float, float]) -> list[records.Track]:
    """Tracks after one fix each: ``(mmsi, lon, lat, sog_kn, cog_deg)`` at t = 1_000_000 ms."""
    from pipeline.engine.tracks import track_step

    pos = [
        records.AisPosition(
            mmsi=m, msg_type=1, t_ms=1_000_000, lon=lon, lat=lat, sog_kn=sog, cog_deg=cog,
            heading_deg=None, nav_status=0, accuracy=True, source="t", rx_t_ms=1_000_000,
        )
        for m, lon, lat, sog, cog in fixes
    ]  # fmt: skip
    return sorted(track_step({}, pos, []).updates, key=lambda t: t.mmsi)


@pytest.mark.unit
def test_track_topic_ais_keeps_near_vessels_and_dead_reckons_them():
    from connectors.camera import TrackTopicAis
    from pipeline.core.camera import enu_from_geo

    cam = _camera_at_110_3_20_0()
    src = TrackTopicAis("127.0.0.1:1", [(110.3, 20.0)], keep_range_m=30_000, max_age_ms=60_000)
    near, far, going = _tracks_of(
        (412000001, 110.30, 20.02, 10.0, 0.0),  # 2.2 km north, 10 kn north
        (412000002, 111.50, 20.00, 5.0, 90.0),  # 125 km east
        (412000003, 110.31, 20.00, 0.0, 0.0),  # 1 km east, evicted below
    )
    enc = msgspec.json.Encoder()
    src.add([enc.encode(near), enc.encode(far), enc.encode(going), b"{not json"])
    assert (len(src), src.records, src.bad_records) == (2, 4, 1)
    src.add([enc.encode(msgspec.structs.replace(going, event="evicted"))])
    assert len(src) == 1
    lon, lat, mmsi = src(1_030_000, cam)  # 30 s after the fix
    assert mmsi.tolist() == [412000001]
    e, n = enu_from_geo(110.3, 20.02, lon, lat)
    assert abs(float(n[0]) - 10.0 * 1852 / 3600 * 30) < 2.0 and abs(float(e[0])) < 1.0
    assert src(1_000_000 + 61_000, cam)[2].size == 0  # the fix is too old by then
    assert src(1_000_000 - 61_000, cam)[2].size == 0  # and too new before it


@pytest.mark.integration
def test_track_topic_ais_reads_the_track_topic_of_the_real_broker(kafka_bootstrap):
    from connectors.camera import TrackTopicAis
    from connectors.kafka import RecordProducer

    cam = _camera_at_110_3_20_0()
    near, far = _tracks_of((412000011, 110.30, 20.01, 0.0, 0.0), (412000012, 100.0, 10.0, 0.0, 0.0))

    async def run() -> tuple:
        src = TrackTopicAis(kafka_bootstrap, [(110.3, 20.0)])
        await src.start()
        try:
            async with RecordProducer(kafka_bootstrap) as producer:
                for tr in (near, far):
                    await producer.send(topics.TRACK, str(tr.mmsi), tr)
            deadline = asyncio.get_running_loop().time() + 30.0
            while src.records < 2 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.1)
            return src.records, src(1_000_000, cam)
        finally:
            await src.stop()

    n_records, (lon, lat, mmsi) = asyncio.run(run())
    assert n_records == 2
    assert mmsi.tolist() == [412000011]
    assert abs(float(lat[0]) - 20.01) < 1e-9 and abs(float(lon[0]) - 110.30) < 1e-9


@pytest.mark.unit
async def test_cancel_and_wait_stops_a_task_that_lost_a_cancellation():
    from pipeline.tasks import cancel_and_wait

    swallowed = []

    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed.append(1)  # as a wait_for that lost the cancellation

    async def plain() -> None:
        await asyncio.sleep(10)

    tasks = [asyncio.create_task(stubborn()), asyncio.create_task(plain())]
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(tasks, every_s=0.05), 5.0)
    assert swallowed == [1] and all(t.cancelled() for t in tasks)
