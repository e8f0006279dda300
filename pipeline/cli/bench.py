"""``shorewatch bench``: the benchmarks of the README's performance table."""

from __future__ import annotations

import argparse

from pipeline.cli import command_group, lazy
from pipeline.cli._detector import add_clip_detector_args, add_detector_args
from pipeline.settings import shared_dir


def _add_ais(bench: argparse._SubParsersAction) -> None:
    """``bench ais``."""
    b = bench.add_parser("ais", help="AIS decode throughput: vectorised vs pyais")
    b.add_argument("--json", action="store_true", help="one JSON object on stdout")
    b.add_argument(
        "--e2e", action="store_true", help="through the Kafka pipeline (pipeline.bench_e2e)"
    )
    b.add_argument(
        "--rate", type=float, default=5000.0, help="with --e2e: sentences/s of the latency phase"
    )
    b.add_argument(
        "--e2e-sentences",
        type=int,
        default=300_000,
        help="with --e2e: sentences of the throughput phase",
    )
    b.add_argument(
        "--workers", type=int, default=1, help="with --e2e: workers in the consumer group"
    )
    b.add_argument("--data", default=str(shared_dir() / "data" / "ais"), help="AIS data folder")
    b.add_argument("-n", type=int, default=200_000, help="position reports per vectorised run")
    b.set_defaults(func=lazy("pipeline.tools.bench_ais", "cmd_bench"))


def _add_fusion(group: argparse._SubParsersAction) -> None:
    """``bench fusion``."""
    be = group.add_parser(
        "fusion", help="one frame of 1,000 tracks x 200 detections vs a plain-Python loop"
    )
    be.add_argument("--tracks", type=int, default=1000)
    be.add_argument("--detections", type=int, default=200)
    be.add_argument("--repeats", type=int, default=100)
    be.add_argument("--naive-repeats", type=int, default=3)
    be.add_argument(
        "--scene",
        choices=("area", "view"),
        default="area",
        help="area: tracks all around the camera (default); view: all inside its view",
    )
    be.add_argument("--json", action="store_true", help="one JSON object")
    be.set_defaults(func=lazy("pipeline.tools.eval_fusion", "cmd_bench"))


def _add_camera(group: argparse._SubParsersAction) -> None:
    """``bench camera``."""
    shared = shared_dir()
    be = group.add_parser("camera", help="frames/s per core of the camera detectors and analyser")
    add_clip_detector_args(be, shared)
    be.add_argument("--frames", type=int, default=50, help="frames to time")
    be.set_defaults(func=lazy("pipeline.tools.eval_camera", "cmd_bench"))


def _add_camera_ingest(group: argparse._SubParsersAction) -> None:
    """``bench camera-ingest``."""
    b = group.add_parser(
        "camera-ingest", help="capture-to-topic latency of N cameras reading a clip"
    )
    add_detector_args(b)
    b.add_argument(
        "--source",
        default=str(shared_dir() / "data/video/clip-01/clip-01.mp4"),
        help="video file or rtsp:// URL every camera reads",
    )
    b.add_argument("--cameras", type=int, default=4)
    b.add_argument("--duration-s", type=float, default=10.0)
    b.add_argument("--threads", type=int, default=None, help="analysis threads (default: cores)")
    b.add_argument(
        "--kafka",
        action="store_true",
        help="publish to the broker and wait for each acknowledgement (default: no sink)",
    )
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=lazy("pipeline.tools.bench_camera", "cmd_bench"))


def _add_camera_fleet(group: argparse._SubParsersAction) -> None:
    """``bench camera-fleet``."""
    b = group.add_parser(
        "camera-fleet",
        help="N cameras from looped clip-01 variants: cameras per core, recall, latency, "
        "adaptive analysis off and on",
    )
    add_detector_args(b)
    b.add_argument(
        "--clip",
        default=str(shared_dir() / "data/video/clip-01"),
        help="clip folder (video, camera_para.txt, ground truth)",
    )
    b.add_argument("--cameras", type=int, default=20)
    b.add_argument("--busy-share", type=float, default=0.1, help="share of busy cameras")
    b.add_argument("--duration-s", type=float, default=30.0, help="measured time per phase")
    b.add_argument("--warmup-s", type=float, default=5.0, help="unmeasured start of a phase")
    b.add_argument(
        "--adaptive", choices=("both", "on", "off"), default="both", help="phases to run"
    )
    b.add_argument(
        "--kafka",
        action="store_true",
        help="publish to the broker and wait for each acknowledgement (default: no sink)",
    )
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=lazy("pipeline.tools.bench_fleet", "cmd_bench"), batch=4)


def _add_alerts(bench: argparse._SubParsersAction) -> None:
    """``bench alerts``."""
    b = bench.add_parser("alerts", help="condition-to-alert latency through the live pipeline")
    b.add_argument("--json", action="store_true", help="one JSON object on stdout")
    b.add_argument(
        "--speed",
        type=float,
        default=20.0,
        help="replay speed of the night between the alerts' real-time windows",
    )
    b.add_argument(
        "--load",
        type=float,
        default=5000.0,
        help="background AIS sentences/s from outside the site",
    )
    b.set_defaults(func=lazy("pipeline.tools.bench_e2e", "run_alerts"))


def _add_registry(bench: argparse._SubParsersAction) -> None:
    """``bench registry``."""
    b = bench.add_parser("registry", help="registry look-ups of one micro-batch of MMSIs")
    b.add_argument("--registry-url", help="database to fill (default: a temporary SQLite file)")
    b.add_argument("--vessels", type=int, default=50_000, help="registered vessels")
    b.add_argument("--batch", type=int, default=4000, help="MMSIs per look-up")
    b.add_argument("--repeats", type=int, default=20)
    b.add_argument("--json", action="store_true", help="one JSON object on stdout")
    b.set_defaults(func=lazy("pipeline.tools.bench_registry", "cmd_bench"))


def _add_history(group: argparse._SubParsersAction) -> None:
    """``bench archive``, ``bench history-generate``, ``bench history-query``."""
    b = group.add_parser("archive", help="archiver throughput through the broker, positions/s")
    b.add_argument("--positions", type=int, default=1_000_000, help="position reports to archive")
    b.add_argument("--partitions", type=int, default=4, help="partitions of the bench topic")
    b.add_argument("--keep", action="store_true", help="keep the archive written")
    b.set_defaults(func=lazy("pipeline.tools.bench_history", "cmd_archive"))
    g = group.add_parser("history-generate", help="write a month of positions into an archive")
    g.add_argument("--root", default="var/bench-history", help="archive directory")
    g.add_argument("--rows", type=int, default=100_000_000, help="position rows")
    g.add_argument("--days", type=int, default=30, help="days covered")
    g.add_argument("--start", default="2026-03-01T00:00:00Z", help="first hour")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--row-group-rows", type=int, default=16_384, help="rows per row group")
    g.add_argument("--force", action="store_true", help="replace an existing directory")
    g.set_defaults(func=lazy("pipeline.tools.bench_history", "cmd_generate"))
    q = group.add_parser("history-query", help="time a point-radius-time query over an archive")
    q.add_argument("--root", default="var/bench-history", help="archive directory")
    q.add_argument("--point", default="110.40,20.085", help="LON,LAT")
    q.add_argument("--radius-m", type=float, default=500.0)
    q.add_argument("--from", dest="from_", default="2026-03-01T00:00:00Z")
    q.add_argument("--to", default="2026-03-31T00:00:00Z")
    q.add_argument("--repeat", type=int, default=5, help="runs (first is reported apart)")
    q.add_argument("--threads", type=int, default=None, help="DuckDB threads")
    q.set_defaults(func=lazy("pipeline.tools.bench_history", "cmd_query"))


def _add_console(bench: argparse._SubParsersAction) -> None:
    """``bench console``."""
    b = bench.add_parser(
        "console", help="console push latency and map update time, measured in Chromium"
    )
    b.add_argument("--bootstrap", default=None, help="Kafka (default: settings)")
    b.add_argument("--site", default="sites/haikou", help="site folder")
    b.add_argument("--ais-rate", type=float, default=5000.0, help="background AIS sentences/s")
    b.add_argument("--alerts", type=int, default=200, help="alerts timed for push latency")
    b.add_argument("--alert-interval-s", type=float, default=0.1, help="between alerts, s")
    b.add_argument("--vessels", type=int, default=5000, help="moving vessels on the map")
    b.add_argument("--open-alerts", type=int, default=1000, help="open alerts on the map")
    b.add_argument("--map-seconds", type=int, default=15, help="seconds of vessel movement")
    b.add_argument("--warmup-s", type=float, default=20.0, help="worker start-up wait, s")
    b.add_argument("--no-worker", dest="worker", action="store_false", help="AIS without a worker")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=lazy("pipeline.tools.bench_console", "cmd_bench"))


def add_commands(sub: argparse._SubParsersAction) -> None:
    group = command_group(sub, "bench", "benchmarks")
    for add in (
        _add_ais,
        _add_fusion,
        _add_camera,
        _add_camera_ingest,
        _add_camera_fleet,
        _add_alerts,
        _add_registry,
        _add_history,
        _add_console,
    ):
        add(group)
    from pipeline.cli.cue import add_bench_cue

    add_bench_cue(group)
