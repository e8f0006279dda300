"""The camera fleet benchmark: N cameras from looped real clips through the production
camera workers, adaptive analysis on and off in the same run.

Each camera plays one variant of clip-01 from memory (:mod:`pipeline.tools.fleet_clips`):
``busy`` (the real clip), ``quiet`` (real water, boats frozen) or ``still``; a share of
the cameras is busy, the rest alternate between the two quiet kinds. Every camera is a
:class:`connectors.camera.CameraWorker` with the production analyser
(:class:`pipeline.vision.analyser.FrameAnalyser`: detector, tracker, geo-referencing)
whose detector is one shared :class:`pipeline.vision.batching.InferenceBatcher`.

Reported per phase (adaptive off, then on):

- ``cores_used``: CPU seconds of this process per wall second over the measured window
  (reader threads, change test, analysis, batching, sink): robust to other load on a
  shared machine, unlike wall-clock throughput;
- ``cameras_per_core``: cameras x (share of the configured frame rate the change test
  saw) / ``cores_used``;
- ``analysed_share``: frames analysed / frames seen;
- ``recall``: the labelled clip-01 vessels (seconds 2..9, 16 boxes a loop) on the busy
  cameras: a labelled box counts as found when the camera's most recent published
  record at the labelled frame's capture time, at most ``recall_window_ms`` older,
  has a box with IoU >= 0.3 (one-to-one, Hungarian); with no such record every box of
  that frame is missed;
- ``latency_p95_ms``: capture to the sink's return (``--kafka``: the broker's
  acknowledgement; else a sink that only counts);
- ``frames_behind``: frames never looked at because analysis was behind.

Video decoding is not included (frames are decoded once, up front); see
``docs/camera-fleet.md`` for its cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from connectors.camera import CameraIngest, LatencyStats, analyser_factory, kafka_sink, new_stages
from pipeline import topics
from pipeline.core.adaptive import AnalysisPolicy
from pipeline.errors import ConfigError
from pipeline.tools.eval_camera import Clip, _first, _match
from pipeline.tools.fleet_clips import (
    ClipFrames,
    MemoryReader,
    clip_camera,
    load_clip_frames,
    memory_reader_factory,
    variant_names,
)
from pipeline.topics import TopicSpec
from schemas import records

__all__ = ["run_fleet", "score_recall"]


def score_recall(
    played: dict[int, int],
    published: list[tuple[int, np.ndarray]],
    gt_by_index: dict[int, np.ndarray],
    *,
    since_ms: int,
    until_ms: int,
    window_ms: int = 1000,
    iou_min: float = 0.3,
) -> tuple[int, int]:
    """Labelled boxes found and labelled boxes shown by one busy camera in a time window.

    :param played: capture time, ms -> index of the frame in the original clip
    :param published: ``(t_ms, boxes_xywh)`` of the camera's published records
    :param gt_by_index: clip frame index -> ``(K, 4)`` labelled boxes, pixels
    :param since_ms: first capture time scored, ms
    :param until_ms: last capture time scored, ms
    :param window_ms: a record older than this at the labelled frame does not count, ms
    :returns: ``(found, shown)``
    """
    times = np.array(sorted(t for t, _ in published), dtype=np.int64)
    boxes = dict(published)
    found = shown = 0
    for t_ms, idx in played.items():
        if idx not in gt_by_index or not since_ms <= t_ms <= until_ms:
            continue
        gt = gt_by_index[idx]
        shown += len(gt)
        k = int(np.searchsorted(times, t_ms, side="right")) - 1
        if k < 0 or t_ms - times[k] > window_ms:
            continue
        found += len(_match(gt, boxes[int(times[k])], iou_min))
    return found, shown


def _labels(clip_dir: Path, width: int, height: int) -> dict[int, np.ndarray]:
    """Clip frame index -> labelled boxes, for the labelled seconds the video holds."""
    clip = Clip(clip_dir)
    name = _first(clip.root, "*_gt_detection.txt")
    if name is None:
        raise ConfigError(f"no *_gt_detection.txt in {clip.root}")
    step = int(round(clip.fps()))
    n = clip.frame_count()
    gt = clip.ground_truth(name, width, height)
    return {(k + 1) * step - 1: v[:, 1:5] for k, v in gt.items() if (k + 1) * step - 1 < n}


async def _phase(
    cams: list[Any],
    variants: dict[str, ClipFrames],
    names: list[str],
    detector: Any,
    labels: dict[int, np.ndarray],
    *,
    adaptive: bool,
    max_fps: float,
    duration_s: float,
    warmup_s: float,
    batch: int,
    batch_wait_ms: float,
    producer: Any = None,
) -> dict[str, Any]:
    from pipeline.vision.batching import InferenceBatcher

    n = len(cams)
    plan = {
        c.id: (variants[v], (7 * i) % len(variants[v].frames))
        for i, (c, v) in enumerate(zip(cams, names, strict=True))
    }
    readers: dict[str, MemoryReader] = {}
    busy_ids = {c.id for c, v in zip(cams, names, strict=True) if v == "busy"}
    published: dict[str, list[tuple[int, np.ndarray]]] = {cid: [] for cid in busy_ids}
    inner = kafka_sink(producer) if producer is not None else None

    async def sink(topic: TopicSpec, key: str, record: msgspec.Struct) -> None:
        if inner is not None:
            await inner(topic, key, record)
        if topic is topics.CAMERA_DETECTION and key in published:
            assert isinstance(record, records.CameraFrame)
            b = np.array([d.box_px for d in record.detections], dtype=float).reshape(-1, 4)
            published[key].append((record.t_ms, b))

    batcher = InferenceBatcher(detector, max_batch=batch, max_wait_ms=batch_wait_ms)
    ingest = CameraIngest(
        cams,
        sink,
        analyser_factory(None, batcher=batcher),
        overrides={c.id: f"memory:{c.id}" for c in cams},
        max_fps=max_fps,
        analysis_threads=n + 1,
        adaptive=adaptive,
        reader_factory=memory_reader_factory(plan, readers),
    )
    stop = asyncio.Event()
    runner = asyncio.create_task(ingest.run(stop))
    try:
        await asyncio.sleep(warmup_s)
        ingest.latency = LatencyStats()
        ingest.stages.update(new_stages())
        for w in ingest.workers:
            w.latency = ingest.latency
            w.own_latency = LatencyStats()
            w.stages = ingest.stages

        def snapshot() -> dict[str, int]:
            return {
                "seen": sum(w.scheduler.counters.frames_seen for w in ingest.workers),
                "analysed": sum(w.scheduler.counters.frames_analysed for w in ingest.workers),
                "behind": sum(w.counters.frames_behind for w in ingest.workers),
                "errors": sum(
                    w.counters.frame_errors + w.counters.analysis_errors for w in ingest.workers
                ),
            }

        s0, cpu0, t0 = snapshot(), time.process_time(), time.monotonic()
        since_ms = int(time.time() * 1000)
        await asyncio.sleep(duration_s)
        s1, cpu1, t1 = snapshot(), time.process_time(), time.monotonic()
        until_ms = int(time.time() * 1000)
        reasons: dict[str, int] = {}
        for w in ingest.workers:
            for k, v in w.scheduler.counters.analysed.items():
                reasons[k] = reasons.get(k, 0) + v
        stats = ingest.stats()
    finally:
        stop.set()
        await runner
        batcher.close()
    wall_s = t1 - t0
    cores = (cpu1 - cpu0) / wall_s
    seen = s1["seen"] - s0["seen"]
    analysed = s1["analysed"] - s0["analysed"]
    fps_seen = seen / wall_s / n
    found = shown = 0
    for cid in busy_ids:
        f, s = score_recall(
            readers[cid].played, published[cid], labels, since_ms=since_ms, until_ms=until_ms - 1500
        )
        found, shown = found + f, shown + s
    return {
        "adaptive": adaptive,
        "cameras": n,
        "busy_cameras": len(busy_ids),
        "wall_s": round(wall_s, 1),
        "cores_used": round(cores, 3),
        "fps_seen_per_camera": round(fps_seen, 2),
        "cameras_per_core": round(n * min(1.0, fps_seen / max_fps) / cores, 1) if cores else None,
        "analysed_share": round(analysed / seen, 3) if seen else None,
        "analysed_fps_per_camera": round(analysed / wall_s / n, 3),
        "analysed_by_reason": reasons,
        "recall": round(found / shown, 3) if shown else None,
        "recall_boxes": f"{found}/{shown}",
        "latency_p50_ms": stats["latency"]["p50_ms"],
        "latency_p95_ms": stats["latency"]["p95_ms"],
        **{f"{name}_p95_ms": st["p95_ms"] for name, st in stats["stages"].items()},
        "frames_behind": s1["behind"] - s0["behind"],
        "errors": s1["errors"] - s0["errors"],
        "batching": batcher.stats.summary(),
    }


def run_fleet(
    clip_dir: str | Path,
    model_dir: str | Path,
    *,
    cameras: int = 20,
    busy_share: float = 0.1,
    max_fps: float = 5.0,
    duration_s: float = 30.0,
    warmup_s: float = 5.0,
    phases: tuple[bool, ...] = (False, True),
    batch: int = 4,
    batch_wait_ms: float = 20.0,
    kafka: bool = False,
    model_name: str = "yolo-fastest-1.1-xl",
    **dnn_kwargs: Any,
) -> dict[str, Any]:
    """Run the fleet once per phase (adaptive off / on) and return the figures; blocking.

    :param busy_share: share of the cameras that play the busy clip (at least one)
    :param phases: the ``adaptive`` setting of each phase, in order
    :param dnn_kwargs: further :class:`pipeline.vision.detectors.DnnDetector` settings
    """
    from pipeline.vision.detectors import DnnDetector

    clip_dir = Path(clip_dir)
    detector = DnnDetector.from_dir(model_dir, model_name, **dnn_kwargs)
    variants = load_clip_frames(clip_dir, fps=max_fps, detector=detector)
    h, w = variants["busy"].frames[0].shape[:2]
    labels = _labels(clip_dir, w, h)
    n_busy = max(1, int(round(cameras * busy_share)))
    names = variant_names(n_busy, cameras)
    cams = [
        clip_camera(clip_dir, f"fleet-{i:03d}", width=w, height=h, analysis=AnalysisPolicy())
        for i in range(cameras)
    ]

    async def run() -> list[dict[str, Any]]:
        kw = dict(
            max_fps=max_fps,
            duration_s=duration_s,
            warmup_s=warmup_s,
            batch=batch,
            batch_wait_ms=batch_wait_ms,
        )
        if not kafka:
            return [
                await _phase(cams, variants, names, detector, labels, adaptive=a, **kw)  # type: ignore[arg-type]
                for a in phases
            ]
        from connectors.kafka import RecordProducer

        async with RecordProducer(client_id="shorewatch-bench-camera-fleet") as producer:
            return [
                await _phase(
                    cams,
                    variants,
                    names,
                    detector,
                    labels,
                    adaptive=a,
                    producer=producer,
                    **kw,  # type: ignore[arg-type]
                )
                for a in phases
            ]

    results = asyncio.run(run())
    mix = {v: names.count(v) for v in ("busy", "quiet", "still")}
    return {
        "cameras": cameras,
        "mix": mix,
        "max_fps": max_fps,
        "duration_s": duration_s,
        "batch": batch,
        "sink": "kafka (acks=all)" if kafka else "none (capture + analysis only)",
        "execution_provider": getattr(detector.onnx, "provider", None),
        "phases": results,
    }


def cmd_bench(args: argparse.Namespace) -> int:
    phases = {"both": (False, True), "on": (True,), "off": (False,)}[args.adaptive]
    result = run_fleet(
        args.clip,
        args.model_dir,
        cameras=args.cameras,
        busy_share=args.busy_share,
        max_fps=args.max_fps,
        duration_s=args.duration_s,
        warmup_s=args.warmup_s,
        phases=phases,
        batch=args.batch,
        batch_wait_ms=args.batch_wait_ms,
        kafka=args.kafka,
        model_name=args.model_name,
        conf=args.conf,
        backend=args.backend,
        execution_provider=args.execution_provider,
    )
    if args.json:
        print(json.dumps(result))
        return 0
    for k, v in result.items():
        if k != "phases":
            print(f"{k}: {v}")
    for ph in result["phases"]:
        print(f"--- adaptive {'on' if ph['adaptive'] else 'off'}")
        for k, v in ph.items():
            print(f"  {k}: {v}")
    return 0
