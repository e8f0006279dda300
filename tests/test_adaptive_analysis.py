"""Adaptive analysis per camera: the change test on real clip-01 frames, the scheduler's
rate ladder, the policy in cameras.yaml, and the camera worker's counts and status."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_camera_ingest import Collector

from connectors.camera import CameraWorker, analyser_factory
from pipeline import topics
from pipeline.core.adaptive import (
    AnalysisPolicy,
    AnalysisScheduler,
    ChangeGate,
    keepalive_phase,
    parse_policy,
)
from pipeline.core.camera import CameraModel
from pipeline.errors import ConfigError
from pipeline.site import CameraConfig, load_site
from pipeline.tools.eval_camera import Clip
from pipeline.tools.fleet_clips import clip_camera, load_clip_frames, memory_reader_factory
from pipeline.vision.gate import FrameGate
from schemas import records

WAIT_S = 90.0


@pytest.fixture(scope="module")
def clip_dir(shared: Path) -> Path:
    d = shared / "data" / "video" / "clip-01"
    if not (d / "clip-01.mp4").is_file():
        pytest.skip(f"clip-01 not found in {d}")
    return d


@pytest.fixture(scope="module")
def variants(clip_dir: Path, yolo_dir: Path) -> dict:
    from pipeline.vision.detectors import DnnDetector

    return load_clip_frames(clip_dir, fps=5.0, detector=DnnDetector.from_dir(yolo_dir, conf=0.2))


def _gate(clip_dir: Path) -> FrameGate:
    clip = Clip(clip_dir)
    cam = CameraModel.from_fvessel_params(clip.params, 888, 500, *clip.gt_sensor)
    return FrameGate(AnalysisPolicy(), horizon_v=cam.horizon_v)


# --------------------------------------------------------------------------- change test
@pytest.mark.unit
def test_change_test_fires_on_the_moving_barge_not_on_frozen_or_still_water(
    clip_dir: Path, variants: dict
) -> None:
    fired = {}
    for name in ("busy", "quiet", "still"):
        gate = _gate(clip_dir)
        frames = variants[name].frames
        assert not gate.changed(frames[0])  # the first frame starts the background
        fired[name] = [i for i, f in enumerate(frames[1:30], 1) if gate.changed(f)]
    # the real clip: the barge moves 4.6 px/s, its wake and the labels the clip draws
    # over the water change the water within the first two seconds (10 frames)
    assert fired["busy"] and fired["busy"][0] <= 10
    assert len(fired["busy"]) >= 15
    # the same real water with the boats frozen, and a still frame with sensor noise
    assert fired["quiet"] == []
    assert fired["still"] == []


@pytest.mark.unit
def test_change_test_ignores_a_change_of_the_whole_scenes_brightness(variants: dict) -> None:
    frame = variants["still"].frames[0]
    gate = ChangeGate(AnalysisPolicy())
    grey = frame.mean(axis=2)[::5, ::5]
    gate.update(grey)
    for k in range(5):
        assert gate.update(grey + 2.0 * k) < 0.002  # a cloud, auto exposure
    boat = grey + 0.0
    boat[60:70, 40:70] = 10.0  # a dark hull of 300 px appears (of ~17,800)
    assert gate.update(boat) >= 0.002 * 0.9


@pytest.mark.unit
def test_change_test_stays_inside_the_water_mask() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(120, 2, (90, 160))
    mask = np.zeros((90, 160), bool)
    mask[45:, :] = True  # water below the horizon
    gate = ChangeGate(AnalysisPolicy(), mask)
    gate.update(base)
    sky = base.copy()
    sky[:40, :] = 250  # clouds, birds, the on-screen clock: not water
    assert gate.update(sky) == 0.0
    sea = base.copy()
    sea[60:80, 20:60] = 30
    assert gate.update(sea) == pytest.approx(800 / mask.sum(), rel=0.05)


# --------------------------------------------------------------------------- scheduler
def _run(s: AnalysisScheduler, t0: int, t1: int, step: int = 200, changed=()) -> list:
    return [(t, s.decide(t, changed=t in changed)) for t in range(t0, t1, step)]


@pytest.mark.unit
def test_scheduler_keepalive_when_quiet_then_change_then_back() -> None:
    s = AnalysisScheduler(AnalysisPolicy(keepalive_s=5.0, change_fps=2.0, hold_s=3.0), 5.0)
    quiet = [(t, r) for t, r in _run(s, 0, 10_000) if r]
    assert quiet == [(0, "start"), (5000, "keepalive")]
    assert s.mode == "quiet"
    busy = [(t, r) for t, r in _run(s, 10_000, 20_000, changed={10_000}) if r]
    # the change is analysed at once, then 2 fps for hold_s, then the keep-alive again
    assert busy[0] == (10_000, "change")
    # 2 fps on a 5 fps camera: every 400 or 600 ms, two a second
    changes = [t for t, r in busy if r == "change"]
    assert changes == [10_000, 10_400, 11_000, 11_400, 12_000, 12_400, 13_000]
    assert [r for t, r in busy if t > 13_000] == ["keepalive"]
    c = s.counters
    assert c.frames_seen == 100 and c.frames_analysed == len(quiet) + len(busy)
    assert sum(c.analysed.values()) == c.frames_analysed
    assert sum(c.skipped.values()) == c.frames_seen - c.frames_analysed


@pytest.mark.unit
def test_keepalive_phase_spreads_a_fleet_started_together() -> None:
    policy = AnalysisPolicy(keepalive_s=5.0)
    s = AnalysisScheduler(policy, 5.0, phase=0.5)
    # the first keep-alive comes half a period early (within half a frame of 2.5 s),
    # then every keepalive_s
    assert [(t, r) for t, r in _run(s, 0, 13_000) if r] == [
        (0, "start"),
        (2400, "keepalive"),
        (7400, "keepalive"),
        (12_400, "keepalive"),
    ]
    with pytest.raises(ValueError, match="phase"):
        AnalysisScheduler(policy, 5.0, phase=1.0)
    # 40 cameras started at the same instant: their keep-alives fall in different
    # 200 ms frame slots instead of all in one
    firsts = []
    for i in range(40):
        sc = AnalysisScheduler(policy, 5.0, keepalive_phase(f"fleet-{i:03d}"))
        firsts.append(next(t for t, r in _run(sc, 0, 6000) if r == "keepalive"))
    slots, counts = np.unique(firsts, return_counts=True)
    assert len(slots) >= 15 and counts.max() <= 6


@pytest.mark.unit
def test_scheduler_max_rate_while_a_target_is_near_or_a_cue_is_active() -> None:
    s = AnalysisScheduler(AnalysisPolicy(near_shore_m=500.0, hold_s=2.0), 5.0)
    s.decide(0, changed=False)
    s.observe(0, np.array([2500.0, np.nan]))  # far, and beyond the horizon: no raise
    assert [r for _, r in _run(s, 200, 4000) if r] == []
    s.observe(4000, np.array([2500.0, 420.0]))  # one nearer than 500 m
    near = [r for _, r in _run(s, 4200, 6400)]
    assert near[:10] == ["target_near"] * 10  # every frame at 5 fps for hold_s
    assert near[-1] is None and s.mode == "quiet"
    s.cue(until_t_ms=8000)
    cued = _run(s, 6400, 9000)
    assert [r for t, r in cued if t <= 8000] == ["cue"] * 9
    assert all(r is None for t, r in cued if t > 8000)


@pytest.mark.unit
def test_scheduler_fixed_rate_when_adaptive_is_off() -> None:
    s = AnalysisScheduler(AnalysisPolicy(adaptive=False), 5.0)
    out = _run(s, 0, 2000, step=100)  # a 10 fps source, 5 fps cap
    # every other frame after the first (half a frame of slack takes the 100 ms frame)
    assert [r for _, r in out] == ["start"] + ["fixed_rate", None] * 9 + ["fixed_rate"]
    assert s.counters.skipped == {"rate": 9}


@pytest.mark.unit
def test_policy_in_cameras_yaml(tmp_path: Path) -> None:
    site = Path(__file__).resolve().parents[1] / "sites" / "haikou"
    doc = yaml.safe_load((site / "cameras.yaml").read_text())
    doc["cameras"][0]["analysis"] = {"keepalive_s": 10, "near_shore_m": 800, "adaptive": True}
    for f in site.iterdir():
        if f.is_file():
            (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "cameras.yaml").write_text(yaml.safe_dump(doc))
    cams = load_site(tmp_path).cameras
    assert cams[0].analysis == AnalysisPolicy(keepalive_s=10.0, near_shore_m=800.0)
    assert cams[1].analysis is None
    doc["cameras"][0]["analysis"] = {"keepalive": 10, "change_fps": -1}
    (tmp_path / "cameras.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=r"analysis.*unknown keys \['keepalive'\]"):
        load_site(tmp_path)
    with pytest.raises(ValueError, match="change_fps must be positive"):
        parse_policy({"change_fps": -1})
    doc["cameras"][0].pop("onvif", None)  # the Haikou cameras have one
    doc["cameras"][0]["analysis"] = {"event_driven": True}
    (tmp_path / "cameras.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="event_driven: needs an onvif section"):
        load_site(tmp_path)


# --------------------------------------------------------------------------- worker
def _camera(clip_dir: Path, cid: str, policy: AnalysisPolicy | None) -> CameraConfig:
    return clip_camera(clip_dir, cid, analysis=policy)


async def _wait(cond, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.mark.integration
async def test_worker_analyses_a_quiet_camera_at_the_keepalive_and_says_so(
    clip_dir: Path, yolo_dir: Path, variants: dict
) -> None:
    sink = Collector()
    policy = AnalysisPolicy(keepalive_s=2.0)
    cams = {n: _camera(clip_dir, n, policy) for n in ("quiet", "busy")}
    factory = memory_reader_factory(
        {"quiet": (variants["quiet"], 0), "busy": (variants["busy"], 0)}
    )
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(2)
    workers = {
        cid: CameraWorker(
            cam,
            sink,
            analyser_factory(yolo_dir, conf=0.2),
            pool,
            source="memory:" + cid,
            max_fps=5.0,
            reader_factory=factory,
            reader_kwargs={"status_interval_s": 1.0},
        )
        for cid, cam in cams.items()
    }
    tasks = [asyncio.create_task(w.run()) for w in workers.values()]
    try:
        await _wait(lambda: workers["quiet"].scheduler.counters.frames_seen >= 30, "30 frames")
        await _wait(
            lambda: any(
                isinstance(r, records.CameraStatus) and r.camera_id == "quiet" and r.frames_seen
                for _, _, r in sink.items
            ),
            "a status with the analysis counters",
        )
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        pool.shutdown()
    q, b = workers["quiet"].scheduler.counters, workers["busy"].scheduler.counters
    # quiet: the first frame and one every 2 s; nothing else
    assert set(q.analysed) <= {"start", "keepalive"}
    assert q.frames_analysed <= 2 + q.frames_seen / 10 + 1
    assert q.skipped.get("quiet", 0) == q.frames_seen - q.frames_analysed
    # busy: the barge makes the change test fire, and the rate rises
    assert b.analysed.get("change", 0) >= 5
    assert b.frames_analysed > 2 * q.frames_analysed
    published = [r for t, k, r in sink.items if t == topics.CAMERA_DETECTION.name and k == "quiet"]
    assert len(published) == workers["quiet"].counters.frames_published
    assert len(published) == q.frames_analysed
    statuses = [r for t, k, r in sink.items if isinstance(r, records.CameraStatus) and k == "quiet"]
    last = [s for s in statuses if s.frames_seen is not None][-1]
    assert last.frames_analysed is not None and last.frames_analysed <= last.frames_seen
    assert last.analysis_mode == "quiet"
    assert set(last.analysed_by_reason or {}) <= {"start", "keepalive"}


class _SlowAnalyser:
    """The production analyser behind a delay: analysis slower than the frame rate."""

    def __init__(self, inner, delay_s: float) -> None:
        self.inner, self.delay_s = inner, delay_s

    def analyse(self, frame_bgr, t_ms, *, model=None):
        time.sleep(self.delay_s)
        return self.inner.analyse(frame_bgr, t_ms)


@pytest.mark.integration
async def test_a_camera_whose_analysis_is_behind_says_so_in_its_status(
    clip_dir: Path, variants: dict
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sink = Collector()
    cam = _camera(clip_dir, "slow", AnalysisPolicy(adaptive=False))
    factory = memory_reader_factory({"slow": (variants["busy"], 0)})
    base = analyser_factory(None)
    pool = ThreadPoolExecutor(1)
    worker = CameraWorker(
        cam,
        sink,
        lambda c: _SlowAnalyser(base(c), 0.7),
        pool,
        source="memory:slow",
        max_fps=5.0,
        reader_factory=factory,
        reader_kwargs={"status_interval_s": 1.0},
    )
    task = asyncio.create_task(worker.run())

    def degraded() -> list:
        return [
            r
            for _, _, r in sink.items
            if isinstance(r, records.CameraStatus)
            and r.status == "degraded"
            and (r.reason or "").startswith("analysis_behind")
        ]

    try:
        await _wait(lambda: bool(degraded()), "a degraded status saying the analysis is behind")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        pool.shutdown()
    rec = degraded()[0]
    assert rec.frames_behind and rec.frames_behind > 0
    assert worker.counters.frames_behind >= rec.frames_behind
    # every frame the reader produced is accounted for: seen by the policy or behind
    reader_frames = worker.counters.frames_skipped + worker.scheduler.counters.frames_seen
    assert reader_frames >= worker.scheduler.counters.frames_seen + worker.counters.frames_behind
