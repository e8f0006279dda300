"""The RTSP frame reader against a real RTSP server (GStreamer), and its unit behaviour."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
from peers.launch import RtspServer, free_port, gst_rtsp_missing

from connectors.rtsp import (
    Backoff,
    FrameReader,
    diagnose_rtsp,
    redact,
    with_credentials,
)
from pipeline.errors import FrameError
from pipeline.vision.frames import check_frame
from schemas import records

WAIT_S = 60.0  # generous upper bound for conditions; never an assertion on time


class Recorder:
    """Collects what a reader reports, and lets a test wait for a condition."""

    def __init__(self) -> None:
        self.records: list[object] = []
        self.cond = threading.Condition()

    def __call__(self, record: object) -> None:
        with self.cond:
            self.records.append(record)
            self.cond.notify_all()

    def statuses(self) -> list[records.CameraStatus]:
        with self.cond:
            return [r for r in self.records if isinstance(r, records.CameraStatus)]

    def dead_letters(self) -> list[records.DeadLetter]:
        with self.cond:
            return [r for r in self.records if isinstance(r, records.DeadLetter)]

    def wait_for(self, predicate, timeout_s: float = WAIT_S) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self), timeout_s)


def first_index(statuses, status, after: int = -1, reason_prefix: str | None = None) -> int | None:
    for i, s in enumerate(statuses):
        if (
            i > after
            and s.status == status
            and (reason_prefix is None or (s.reason or "").startswith(reason_prefix))
        ):
            return i
    return None


@pytest.fixture(scope="module")
def gst():
    missing = gst_rtsp_missing()
    if missing:
        pytest.skip(missing)


@pytest.fixture(scope="module")
def clip_path(shared):
    path = shared / "data" / "video" / "clip-01" / "clip-01.mp4"
    if not path.is_file():
        pytest.skip(f"clip not found: {path}")
    return path


# --------------------------------------------------------------------------- unit


@pytest.mark.unit
def test_backoff_grows_to_cap_with_jitter():
    b = Backoff(base_s=0.5, cap_s=8.0, rng=random.Random(1))
    delays = [b.next_delay_s() for _ in range(12)]
    ceilings = [min(8.0, 0.5 * 2**i) for i in range(12)]
    assert all(0.25 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert max(delays[6:]) <= 8.0 and len(set(delays)) == len(delays)  # jittered
    b.reset()
    assert b.next_delay_s() <= 0.5


@pytest.mark.unit
@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (None, "empty_frame"),
        (np.zeros((0, 0, 3), np.uint8), "empty_frame"),
        (np.zeros((10, 10), np.uint8), "bad_shape"),
        (np.zeros((10, 10, 3), np.float32), "bad_dtype"),
        (np.zeros((20, 10, 3), np.uint8), "size_changed"),
    ],
)
def test_check_frame_rejects(image, reason):
    with pytest.raises(FrameError) as info:
        check_frame(image, expected_shape=(10, 10))
    assert info.value.reason == reason


@pytest.mark.unit
def test_with_credentials():
    assert (
        with_credentials("rtsp://h:554/a", "ad min", "p@:ss") == "rtsp://ad%20min:p%40%3Ass@h:554/a"
    )
    assert with_credentials("rtsp://x:y@h/a", "u", "p") == "rtsp://x:y@h/a"
    assert with_credentials("rtsp://h/a", None, None) == "rtsp://h/a"
    assert with_credentials("/videos/a.mp4", "u", "p") == "/videos/a.mp4"


@pytest.mark.integration
def test_rtsp_basic_authentication(gst):
    with RtspServer(
        "--test-pattern",
        "--width",
        "160",
        "--height",
        "120",
        "--user",
        "viewer",
        "--password",
        "pa:ss",
    ) as server:
        rec = Recorder()
        bad = FrameReader(
            "cam-a", with_credentials(server.url, "viewer", "wrong"), rec, backoff=Backoff(30, 30)
        ).start()
        try:
            assert rec.wait_for(
                lambda r: (
                    first_index(r.statuses(), "offline", reason_prefix="open_failed") is not None
                )
            )
        finally:
            bad.stop()
        reasons = [s.reason or "" for s in rec.statuses()]
        assert any(
            "viewer:***@" in r and "RTSP 401" in r and "wrong credentials" in r for r in reasons
        )
        assert diagnose_rtsp(server.url).endswith("credentials required")
        good = FrameReader("cam-a", with_credentials(server.url, "viewer", "pa:ss")).start()
        try:
            frame = good.wait_frame(-1, WAIT_S)
        finally:
            good.stop()
    assert frame is not None and frame.image_bgr.shape == (120, 160, 3)


@pytest.mark.unit
def test_redact_hides_password():
    assert redact("rtsp://admin:s3cret@127.0.0.1:554/a") == "rtsp://admin:***@127.0.0.1:554/a"
    assert redact("rtsp://127.0.0.1/a") == "rtsp://127.0.0.1/a"


class ScriptedCapture:
    """A capture whose frames are scripted: good frames, corrupt ones, then the end."""

    def __init__(self, frames: list[object]):
        self.frames = list(frames)

    def isOpened(self) -> bool:  # noqa: N802 - the cv2.VideoCapture name
        return True

    def read(self):
        if not self.frames:
            return False, None
        return True, self.frames.pop(0)

    def get(self, prop: int) -> float:
        return 0.0

    def set(self, prop: int, value: float) -> bool:
        return True

    def release(self) -> None:
        pass


@pytest.mark.unit
def test_corrupt_frames_are_counted_dead_lettered_and_degrade_status():
    good = np.tile(np.arange(64, dtype=np.uint8)[None, :, None], (48, 1, 3))  # not blank
    script = [good, good, np.zeros((48, 64), np.uint8), np.zeros((96, 64, 3), np.uint8), good]
    rec = Recorder()
    reader = FrameReader(
        "cam-x",
        "rtsp://127.0.0.1:9/none",
        rec,
        status_interval_s=3600,
        capture_factory=lambda src: ScriptedCapture(script),
        backoff=Backoff(60, 60),
    ).start()
    try:
        assert rec.wait_for(
            lambda r: any(
                s.reason == "read_failed: no frame within timeout or stream closed"
                for s in r.statuses()
            )
        )
    finally:
        reader.stop()
    assert reader.frames_read == 3 and reader.frames_corrupt == 2
    letters = rec.dead_letters()
    assert [d.reason for d in letters] == ["bad_shape", "size_changed"]
    assert all(d.stage == "camera.frame" and d.source == "camera:cam-x" for d in letters)
    seq = [(s.status, s.reason) for s in rec.statuses()]
    assert ("online", None) in seq
    assert ("degraded", "corrupt_frames: bad_shape") in seq
    assert reader.latest().image_bgr.shape == (48, 64, 3)


@pytest.mark.unit
def test_missing_file_reports_offline_with_reason(tmp_path):
    rec = Recorder()
    reader = FrameReader("cam-f", str(tmp_path / "nope.mp4"), rec, backoff=Backoff(60, 60)).start()
    try:
        assert rec.wait_for(
            lambda r: first_index(r.statuses(), "offline", reason_prefix="open_failed") is not None
        )
    finally:
        reader.stop()
    s = rec.statuses()[first_index(rec.statuses(), "offline", reason_prefix="open_failed")]
    assert "no such file" in s.reason


@pytest.mark.integration
def test_local_file_is_read_and_looped(clip_path):
    reader = FrameReader("cam-file", str(clip_path), realtime_file=False).start()
    try:
        frame = reader.wait_frame(-1, WAIT_S)
        assert frame is not None and frame.image_bgr.shape == (500, 888, 3)
        # 250 frames in the file: a seq beyond that proves the loop
        while frame is not None and frame.seq <= 300:
            frame = reader.wait_frame(frame.seq, WAIT_S)
        assert frame is not None and frame.seq > 300
    finally:
        reader.stop()


# --------------------------------------------------------------------------- real RTSP server


@pytest.mark.integration
def test_reads_clip_over_rtsp_keeping_only_the_newest_frame(gst, clip_path):
    rec = Recorder()
    with RtspServer("--file", str(clip_path)) as server:
        reader = FrameReader("cam-1", server.url, rec, status_interval_s=0.5).start()
        try:
            first = reader.wait_frame(-1, WAIT_S)
            assert first is not None
            assert first.image_bgr.shape == (500, 888, 3)
            assert first.image_bgr.std() > 5  # real picture content, not a fill
            # A slow consumer: wait for several frames to arrive, then take one.
            assert rec.wait_for(lambda r: reader.frames_read >= first.seq + 5)
            newest = reader.wait_frame(first.seq, WAIT_S)
            assert (
                newest is not None and newest.seq >= first.seq + 5
            )  # the frames between were dropped
            assert newest.capture_t_ms >= first.capture_t_ms
            assert rec.wait_for(lambda r: any(s.fps for s in r.statuses()))
        finally:
            reader.stop()
    statuses = rec.statuses()
    assert statuses[0].status == "offline" and statuses[0].reason == "connecting"
    online = [s for s in statuses if s.status == "online"]
    assert online and any(s.fps and s.fps > 1 for s in online)
    assert any(s.last_frame_t_ms for s in online)


@pytest.mark.integration
def test_recovers_when_the_server_restarts(gst, clip_path):
    rec = Recorder()
    server = RtspServer("--file", str(clip_path)).start()
    reader = FrameReader(
        "cam-r",
        server.url,
        rec,
        open_timeout_ms=3000,
        read_timeout_ms=2000,
        status_interval_s=0.5,
        backoff=Backoff(0.2, 1.0),
    ).start()
    try:
        assert reader.wait_frame(-1, WAIT_S) is not None
        i_online = first_index(rec.statuses(), "online")
        assert i_online is not None

        server.stop()
        assert rec.wait_for(lambda r: first_index(r.statuses(), "offline", i_online) is not None)
        i_off = first_index(rec.statuses(), "offline", i_online)
        assert rec.statuses()[i_off].reason.startswith("read_failed")
        seq_before = reader.latest().seq

        server.start()
        assert rec.wait_for(lambda r: first_index(r.statuses(), "online", i_off) is not None)
        frame = reader.wait_frame(seq_before, WAIT_S)
        assert frame is not None and frame.image_bgr.shape == (500, 888, 3)
        assert reader.reconnects >= 1
    finally:
        reader.stop()
        server.stop()


@pytest.mark.integration
def test_closed_port_reports_offline_with_reason():
    rec = Recorder()
    url = f"rtsp://127.0.0.1:{free_port()}/cam"
    reader = FrameReader(
        "cam-dead", url, rec, open_timeout_ms=2000, backoff=Backoff(0.2, 0.5)
    ).start()
    try:
        assert rec.wait_for(
            lambda r: first_index(r.statuses(), "offline", reason_prefix="open_failed") is not None
        )
        assert reader.latest() is None
    finally:
        reader.stop()
    reasons = [s.reason for s in rec.statuses()]
    assert any(
        r
        and r.startswith("open_failed: cannot open rtsp://127.0.0.1")
        and "(connection refused)" in r
        for r in reasons
    )
    assert reasons[-1] == "stopped"


@pytest.mark.integration
def test_diagnose_unknown_stream_path(gst):
    with RtspServer("--test-pattern", "--width", "160", "--height", "120") as server:
        assert diagnose_rtsp(server.url.replace("/cam", "/nope")) == (
            "RTSP 404 Not Found: no such stream path"
        )
        assert diagnose_rtsp(server.url).startswith("server answers DESCRIBE")


@pytest.mark.integration
def test_test_pattern_stream(gst):
    with RtspServer("--test-pattern", "--width", "320", "--height", "240", "--fps", "15") as server:
        reader = FrameReader("cam-t", server.url).start()
        try:
            frame = reader.wait_frame(-1, WAIT_S)
        finally:
            reader.stop()
    assert frame is not None and frame.image_bgr.shape == (240, 320, 3)
