"""Batched inference across cameras on the real Yolo-Fastest model: the ONNX graph's
dynamic batch, the batcher's latency cap, bounded queue and fairness, and the
execution-provider setting's fallback to the CPU."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from test_adaptive_analysis import clip_dir  # noqa: F401 - fixture
from test_camera_ingest import Collector

from connectors.camera import CameraWorker, analyser_factory
from pipeline import topics
from pipeline.core.adaptive import AnalysisPolicy
from pipeline.errors import ConfigError, InferenceBusy
from pipeline.tools.eval_camera import Clip
from pipeline.tools.fleet_clips import clip_camera, load_clip_frames, memory_reader_factory
from pipeline.vision.batching import InferenceBatcher
from pipeline.vision.darknet import select_providers
from pipeline.vision.detectors import DnnDetector


@pytest.fixture(scope="module")
def detector(yolo_dir: Path) -> DnnDetector:
    return DnnDetector.from_dir(yolo_dir, conf=0.2)


@pytest.fixture(scope="module")
def frames(clip_dir: Path) -> list[np.ndarray]:  # noqa: F811 - the fixture above
    return [f for _, f in Clip(clip_dir).frames(range(0, 250, 50))]


@pytest.mark.unit
def test_the_network_takes_a_dynamic_batch(detector: DnnDetector) -> None:
    assert detector.onnx is not None
    shape = detector.onnx.session.get_inputs()[0].shape
    assert shape[0] == "batch" and shape[1:] == [3, 416, 416]


@pytest.mark.unit
def test_one_run_for_many_frames_gives_what_one_run_each_gives(
    yolo_dir: Path, detector: DnnDetector, frames: list[np.ndarray]
) -> None:
    tiled = DnnDetector.from_dir(
        yolo_dir, conf=0.2, tiles=((0.0, 0.0, 1.0, 1.0), (0.0, 0.35, 0.5, 0.3))
    )
    for det in (detector, tiled):
        one = [det.detect(f) for f in frames]
        many = det.detect_batch(frames)
        assert [len(d) for d in many] == [len(d) for d in one]
        assert sum(len(d) for d in one) >= len(frames)  # the barge, at least, in each
        for a, b in zip(one, many, strict=True):
            np.testing.assert_allclose(b.boxes_xywh, a.boxes_xywh, atol=1e-3)
            np.testing.assert_allclose(b.scores, a.scores, atol=1e-4)
            assert list(b.class_names) == list(a.class_names)


@pytest.mark.unit
def test_batcher_fills_batches_from_many_cameras_with_the_same_results(
    detector: DnnDetector, frames: list[np.ndarray]
) -> None:
    batcher = InferenceBatcher(detector, max_batch=8, max_wait_ms=2000.0)
    try:
        start = threading.Barrier(8)

        def camera(i: int):
            start.wait()
            return batcher.client(f"cam-{i}").detect(frames[i % len(frames)])

        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(camera, range(8)))
    finally:
        batcher.close()
    # eight cameras at once, a batch of eight: one run (the 2 s cap never expires first)
    assert batcher.stats.batches == 1 and batcher.stats.sizes == {8: 1}
    for i, dets in enumerate(got):
        want = detector.detect(frames[i % len(frames)])
        np.testing.assert_allclose(dets.boxes_xywh, want.boxes_xywh, atol=1e-3)


@pytest.mark.unit
def test_batcher_latency_cap_runs_a_partial_batch(
    detector: DnnDetector, frames: list[np.ndarray]
) -> None:
    batcher = InferenceBatcher(detector, max_batch=16, max_wait_ms=30.0)
    try:
        t0 = time.monotonic()
        dets = batcher.client("alone").detect(frames[0])
        waited_s = time.monotonic() - t0
    finally:
        batcher.close()
    assert len(dets) >= 1
    assert batcher.stats.sizes == {1: 1}  # it did not wait for 15 more frames
    assert waited_s >= 0.03


@pytest.mark.unit
def test_batcher_queue_is_bounded_and_fair(detector: DnnDetector, frames: list[np.ndarray]) -> None:
    batcher = InferenceBatcher(
        detector, max_batch=4, max_wait_ms=60_000.0, max_queued=5, max_per_camera=2
    )
    try:
        busy = [batcher.submit("busy", frames[0]) for _ in range(2)]
        with pytest.raises(InferenceBusy, match="queue full"):
            batcher.submit("busy", frames[0])  # its share is full; others still get in
        others = [batcher.submit(c, frames[1]) for c in ("a", "b")]
        # four frames waiting: the batch runs, the quiet cameras served in the first round
        for f in busy + others:
            f.result(60)
        assert batcher.stats.last_batch[:3] == ["busy", "a", "b"]
        assert sorted(batcher.stats.last_batch) == ["a", "b", "busy", "busy"]
    finally:
        batcher.close()
    assert batcher.stats.rejected == 1
    # all cameras together: at most max_queued frames wait
    batcher = InferenceBatcher(detector, max_batch=8, max_wait_ms=60_000.0, max_queued=3)
    try:
        waiting = [batcher.submit(c, frames[2]) for c in ("c", "d", "e")]
        with pytest.raises(InferenceBusy, match="3 frames waiting, at most 3"):
            batcher.submit("f", frames[2])
    finally:
        batcher.close()
    # frames still waiting when the batcher stops fail, they do not hang
    for f in waiting:
        with pytest.raises(InferenceBusy, match="stopped"):
            f.result(10)


@pytest.mark.unit
def test_execution_provider_selection() -> None:
    cpu = ["CPUExecutionProvider"]
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert select_providers("cpu", cpu) == (cpu, None)
    assert select_providers("CUDA", gpu) == (gpu[1:], None)
    assert select_providers("tensorrt", gpu) == (gpu, None)
    chosen, warning = select_providers("tensorrt", gpu[1:])
    assert chosen == gpu[1:] and "TensorrtExecutionProvider" in (warning or "")
    chosen, warning = select_providers("cuda", cpu)
    assert chosen == cpu and "onnxruntime-gpu" in (warning or "")
    with pytest.raises(ConfigError, match="execution_provider"):
        select_providers("gpu", cpu)


@pytest.mark.unit
def test_a_gpu_provider_that_is_not_installed_falls_back_to_the_cpu(
    yolo_dir: Path, frames: list[np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: the fallback cannot be observed here")
    with caplog.at_level(logging.WARNING, logger="pipeline.vision.darknet"):
        det = DnnDetector.from_dir(yolo_dir, conf=0.2, execution_provider="cuda")
    assert det.onnx is not None and det.onnx.provider == "CPUExecutionProvider"
    assert any("CUDAExecutionProvider" in r.getMessage() for r in caplog.records)
    assert len(det.detect(frames[0])) >= 1  # and it still detects


@pytest.mark.integration
async def test_cameras_share_one_batched_detector(
    clip_dir: Path,  # noqa: F811 - the fixture above
    detector: DnnDetector,
) -> None:
    variants = load_clip_frames(clip_dir, fps=5.0)
    ids = [f"cam-{i}" for i in range(4)]
    plan = {cid: (variants["busy"], 7 * i) for i, cid in enumerate(ids)}
    batcher = InferenceBatcher(detector, max_batch=4, max_wait_ms=50.0)
    factory = analyser_factory(None, batcher=batcher)
    sink = Collector()
    pool = ThreadPoolExecutor(5)
    workers = [
        CameraWorker(
            clip_camera(clip_dir, cid, analysis=AnalysisPolicy(adaptive=False)),
            sink,
            factory,
            pool,
            source="memory:" + cid,
            max_fps=2.0,
            reader_factory=memory_reader_factory(plan),
        )
        for cid in ids
    ]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    deadline = time.monotonic() + 90
    try:
        while min(w.counters.frames_published for w in workers) < 3:
            assert time.monotonic() < deadline, "cameras did not publish through the batcher"
            await asyncio.sleep(0.1)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        batcher.close()
        pool.shutdown()
    published = {cid: len(sink.of(topics.CAMERA_DETECTION, cid)) for cid in ids}
    assert all(n >= 3 for n in published.values())
    assert sum(batcher.stats.per_camera.values()) == batcher.stats.frames
    assert batcher.stats.frames >= sum(published.values())
    frames_with_boats = [r for r in sink.of(topics.CAMERA_DETECTION) if r.detections]
    assert len(frames_with_boats) >= sum(published.values()) // 2
