"""The camera ingest benchmark: N cameras reading a clip, capture-to-topic latency."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import msgspec.structs

from connectors.camera import (
    AnalyserFactory,
    CameraIngest,
    LatencyStats,
    Sink,
    _dnn_kwargs,
    analyser_factory,
    kafka_sink,
    new_stages,
)
from pipeline.errors import ConfigError
from pipeline.topics import TopicSpec


async def measure_ingest(
    cameras: Sequence[Any],
    analyser_factory: AnalyserFactory,
    *,
    duration_s: float = 10.0,
    max_fps: float = 5.0,
    overrides: dict[str, str] | None = None,
    sink: Sink | None = None,
    analysis_threads: int | None = None,
    warmup_s: float = 2.0,
) -> dict[str, Any]:
    """Run cameras for ``duration_s`` and return capture-to-topic latency and throughput.

    Latency samples of the first ``warmup_s`` (stream start, model load) are dropped.

    :param sink: where records go (default: a sink that only counts, i.e. the latency
        of capture + analysis; pass a Kafka sink to include the broker acknowledgement)
    :returns: ``{"cameras", "duration_s", "max_fps", "frames", "fps_per_camera",
        "latency_p50_ms", "latency_p95_ms", "wait_p95_ms", "analyse_p95_ms",
        "publish_p95_ms", "frame_errors", "per_camera"}``
    """

    async def null_sink(topic: TopicSpec, key: str, record: msgspec.Struct) -> None:
        return None

    ingest = CameraIngest(
        cameras,
        sink or null_sink,
        analyser_factory,
        overrides=overrides,
        max_fps=max_fps,
        analysis_threads=analysis_threads,
    )
    stop = asyncio.Event()
    runner = asyncio.create_task(ingest.run(stop))
    await asyncio.sleep(warmup_s)
    ingest.latency = LatencyStats()
    ingest.stages.update(new_stages())
    published0 = {w.camera_id: w.counters.frames_published for w in ingest.workers}
    for w in ingest.workers:
        w.latency = ingest.latency
        w.own_latency = LatencyStats()
        w.stages = ingest.stages
    t0 = time.monotonic()
    await asyncio.sleep(duration_s)
    elapsed = time.monotonic() - t0
    stats = ingest.stats()
    stop.set()
    await runner
    frames = sum(w.counters.frames_published - published0[w.camera_id] for w in ingest.workers)
    return {
        "cameras": len(ingest.workers),
        "duration_s": round(elapsed, 2),
        "max_fps": max_fps,
        "frames": frames,
        "fps_per_camera": round(frames / elapsed / max(1, len(ingest.workers)), 2),
        "latency_p50_ms": stats["latency"]["p50_ms"],
        "latency_p95_ms": stats["latency"]["p95_ms"],
        **{f"{name}_p95_ms": st["p95_ms"] for name, st in stats["stages"].items()},
        "frame_errors": sum(w.counters.frame_errors for w in ingest.workers),
        "per_camera": stats["cameras"],
    }


def bench_ingest(
    source: str | os.PathLike[str],
    *,
    cameras: int = 4,
    max_fps: float = 5.0,
    duration_s: float = 10.0,
    model_dir: str | os.PathLike[str] | None = None,
    model_name: str = "yolo-fastest-1.1-xl",
    kafka: bool = False,
    analysis_threads: int | None = None,
    **dnn_kwargs: Any,
) -> dict[str, Any]:
    """Capture-to-topic latency of ``cameras`` cameras all reading ``source``; blocking.

    What ``shorewatch bench camera-ingest`` prints, for other benches to call
    (e.g. ``bench_ingest(clip, cameras=1)["latency_p95_ms"]``).

    :param source: a video file (read at its own frame rate, looped) or an ``rtsp://`` URL
    :param model_dir: Darknet model folder for the DNN detector; ``None``: motion detector
    :param kafka: publish to the configured broker and wait for each acknowledgement
        (acks=all); otherwise records are handed to a sink that drops them
    :param dnn_kwargs: further :class:`pipeline.vision.detectors.DnnDetector` settings (``conf``,
        ``backend``)
    :returns: :func:`measure_ingest`'s figures plus ``sink``
    """
    source = str(source)
    if "://" not in source and not Path(source).is_file():
        raise ConfigError(f"bench source not found: {source}")
    cams = [_bench_camera(f"bench-{i:02d}") for i in range(cameras)]
    factory = analyser_factory(model_dir, model_name=model_name, **dnn_kwargs)
    kwargs: dict[str, Any] = dict(
        duration_s=duration_s,
        max_fps=max_fps,
        overrides={c.id: source for c in cams},
        analysis_threads=analysis_threads,
    )

    async def run() -> dict[str, Any]:
        if not kafka:
            result = await measure_ingest(cams, factory, **kwargs)
            return {**result, "sink": "none (capture + analysis only)"}
        from connectors.kafka import RecordProducer

        async with RecordProducer(client_id="shorewatch-bench-camera-ingest") as producer:
            result = await measure_ingest(cams, factory, sink=kafka_sink(producer), **kwargs)
        return {**result, "sink": f"kafka {producer.bootstrap} (acks=all)"}

    return asyncio.run(run())


def cmd_bench(args: argparse.Namespace) -> int:
    model_dir = None if str(args.model_dir).lower() == "none" else args.model_dir
    result = bench_ingest(
        args.source,
        cameras=args.cameras,
        max_fps=args.max_fps,
        duration_s=args.duration_s,
        model_dir=model_dir,
        model_name=args.model_name,
        kafka=args.kafka,
        analysis_threads=args.threads,
        **_dnn_kwargs(args, model_dir),
    )
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            if k != "per_camera":
                print(f"{k}: {v}")
    return 0


def _bench_camera(camera_id: str) -> Any:
    """A camera for the bench: the clip-01 geometry (888×500, 60° field of view)."""
    from pipeline.site import CameraConfig

    return CameraConfig(
        id=camera_id,
        lat=30.5,
        lon=114.3,
        height_m=20.0,
        heading_deg=0.0,
        tilt_deg=3.0,
        image_width=888,
        image_height=500,
        hfov_deg=60.0,
    )
