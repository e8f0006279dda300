"""``shorewatch replay``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pipeline.cli import lazy


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``shorewatch replay``."""
    shared = Path(
        os.environ.get("SHOREWATCH_SHARED", Path(__file__).resolve().parents[2] / "shared")
    )
    p = sub.add_parser(
        "replay",
        help="run the engine offline on recorded AIS and camera data, write alerts as JSONL",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("--site", required=True, help="site folder (site.yaml)")
    p.add_argument(
        "--ais", action="append", metavar="FILE", help="AIS file (NMEA, gzip ok); repeatable"
    )
    p.add_argument(
        "--detections", action="append", metavar="FILE", help="CameraFrame JSONL; repeatable"
    )
    p.add_argument(
        "--camera",
        action="append",
        metavar="CAM_ID=VIDEO_FILE",
        help="analyse a video with pipeline.vision as this camera; repeatable",
    )
    p.add_argument(
        "--video-start",
        default=None,
        help="event time of the first video frame (ISO 8601 with zone, or ms)",
    )
    p.add_argument(
        "--camera-fps", type=float, default=1.0, help="frames analysed per second of video"
    )
    p.add_argument(
        "--model-dir",
        default=str(shared / "models" / "yolo-fastest-1.1"),
        help="Darknet model folder for --camera; 'none' uses motion detection",
    )
    p.add_argument("--evidence-dir", default=None, help="write frame and crop JPEGs here")
    p.add_argument("--from-archive", metavar="DIR", help="read inputs from the history archive")
    p.add_argument("--from", dest="from_", metavar="T", help="archive start (ISO 8601 or ms)")
    p.add_argument("--to", metavar="T", help="archive end, exclusive (ISO 8601 or ms)")
    p.add_argument(
        "--radar",
        action="append",
        metavar="[RADAR=]FILE",
        help="recorded radar TTM/TLL lines (e.g. 'shorewatch radar simulate' radar.nmea); "
        "without RADAR= each line's tag block s: names its radar; repeatable",
    )
    p.add_argument("--window-ms", type=int, default=1000, help="event time per micro-batch, ms")
    p.add_argument(
        "--drain-s",
        type=float,
        default=0.0,
        help="let this much event time pass after the last input before the final evaluation, s",
    )
    p.add_argument(
        "--registry-url",
        default=None,
        help="check identities against this vessel registry (SQLAlchemy URL; default: none)",
    )
    p.add_argument("--out", default="-", help="alerts JSONL (default stdout)")
    p.set_defaults(func=lazy("pipeline.replay", "cmd_replay"))
