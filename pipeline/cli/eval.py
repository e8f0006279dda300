"""``shorewatch eval``: score alerts against ground truth, or evaluate a component."""

from __future__ import annotations

import argparse

from pipeline.cli import command_group, lazy
from pipeline.cli._detector import add_clip_detector_args
from pipeline.settings import REPO_DIR, shared_dir


def _add_alerts(sub: argparse._SubParsersAction) -> None:
    """Add ``eval`` (scoring alerts against ground truth) to the command line.

    ``eval`` is a group shared with other modules (``eval camera``, ``eval fusion``): it is
    created here if missing, its sub-commands become optional, and the bare form
    ``shorewatch eval --truth ... --alerts ...`` scores alerts.
    """
    parser = sub.choices.get("eval")
    if parser is None:
        parser = sub.add_parser(
            "eval", help="score alerts against ground truth, or evaluate a component"
        )
        parser.add_subparsers(dest="eval_what", required=False, metavar="WHAT")
    else:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                action.required = False
    parser.add_argument("--truth", help="truth.json written by 'shorewatch simulate'")
    parser.add_argument("--alerts", help="alerts, one Alert CloudEvent per line")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object keyed by alert kind"
    )
    parser.add_argument("--plot", metavar="PNG", help="draw site, tracks and alerts to this file")
    parser.add_argument("--site", help="site folder for --plot (default sites/<site in truth>)")
    parser.set_defaults(func=lazy("pipeline.tools.evaluate", "cmd_eval"))


def _add_all(group: argparse._SubParsersAction) -> None:
    """``eval all`` (``make eval``)."""
    p = group.add_parser(
        "all", help="replay several simulated nights and run one through Kafka; check the goals"
    )
    p.add_argument("--site", default=str(REPO_DIR / "sites" / "haikou"), help="site folder")
    p.add_argument("--seeds", default="1,2,3,4,5", help="replay seeds (default %(default)s)")
    p.add_argument(
        "--noise",
        default="none",
        help="simulator noise levels to replay each seed at, e.g. none,realistic "
        "(default %(default)s; docs/detection-quality.md)",
    )
    p.add_argument("--duration", default="2h", help="replayed night length (default %(default)s)")
    p.add_argument("--start", default="2026-03-08T02:00:00+08:00", help="replayed night start")
    p.add_argument("--fps", type=float, default=1.0, help="camera frames/s of replayed nights")
    p.add_argument("--kafka-seeds", default="1", help="seeds through Kafka (default %(default)s)")
    p.add_argument(
        "--kafka-duration", default="1h", help="Kafka night length (default %(default)s)"
    )
    p.add_argument("--kafka-start", default="2026-03-08T03:00:00+08:00", help="Kafka night start")
    p.add_argument(
        "--kafka-speed", type=float, default=40.0, help="Kafka replay speed, x real time"
    )
    p.add_argument("--kafka-fps", type=float, default=0.5, help="camera frames/s of Kafka nights")
    p.add_argument("--no-kafka", action="store_true", help="replay only")
    p.add_argument(
        "--radar",
        action="store_true",
        help="replay each night with the simulated reports of the site's radars (radars.yaml)",
    )
    p.add_argument("--jobs", type=int, default=1, help="replay processes in parallel (default 1)")
    p.add_argument("--out", default=str(REPO_DIR / "var" / "eval"), help="output folder")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--strict", action="store_true", help="exit 1 when a goal is not met")
    p.set_defaults(func=lazy("pipeline.tools.eval_all", "cmd_eval_all"))


def _add_camera(group: argparse._SubParsersAction) -> None:
    """``eval camera``."""
    shared = shared_dir()
    ev = group.add_parser(
        "camera", help="detector + tracker on a real clip against its ground truth"
    )
    add_clip_detector_args(ev, shared)
    ev.add_argument(
        "--all-frames", action="store_true", help="run on every frame (default: one per second)"
    )
    ev.add_argument("--iou", type=float, default=0.3, help="IoU for a true positive")
    ev.add_argument(
        "--structures",
        default=None,
        help="fixed structures to leave out (a structures YAML file, or 'none'); default the "
        "clip's structures.yaml, else sites/clips/<clip name>.structures.yaml",
    )
    ev.add_argument(
        "--structure-overlap",
        type=float,
        default=0.5,
        help="share of a box inside the outlined structures at which it is left out",
    )
    ev.add_argument(
        "--calibrate",
        action="store_true",
        help="also report the geo error after refining heading/tilt/height from AIS matches "
        "(leave-one-second-out)",
    )
    ev.add_argument(
        "--self-calibrate",
        action="store_true",
        help="also run the online pose self-calibration (detections + the clip's AIS, no "
        "ground truth) and report the prequential geo error: each second scored with the "
        "pose learnt from earlier frames only",
    )
    ev.add_argument(
        "--selfcal-height-ratio-max",
        type=float,
        default=None,
        help="highest learnt camera height as a multiple of the configured one "
        "(default: SelfCalConfig.height_ratio_max, 2)",
    )
    ev.set_defaults(func=lazy("pipeline.tools.eval_camera", "cmd_eval"))


def _add_fusion(group: argparse._SubParsersAction) -> None:
    """``eval fusion``."""
    ev = group.add_parser(
        "fusion", help="AIS-camera association on an FVessel clip, against its ground truth"
    )
    ev.add_argument("--clip", required=True, help="clip folder (camera_para.txt, ais/, GT, mp4)")
    ev.add_argument(
        "--detections",
        choices=("dnn", "gt"),
        default="dnn",
        help="dnn: detector + tracker on the video; gt: the GT boxes",
    )
    ev.add_argument("--fps", type=float, default=5.0, help="analysed frames per second (dnn)")
    ev.add_argument(
        "--model-dir",
        help="Yolo-Fastest folder (default $SHOREWATCH_SHARED/models/yolo-fastest-1.1)",
    )
    ev.add_argument("--json", action="store_true", help="one JSON object")
    ev.set_defaults(func=lazy("pipeline.tools.eval_fusion", "cmd_eval"))


def _add_ocr(group: argparse._SubParsersAction) -> None:
    """``eval ocr``."""
    p = group.add_parser("ocr", help="hull-number OCR on generated renders, by character height")
    p.add_argument("-n", type=int, default=25, help="renders per character height")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--max-deficit",
        type=float,
        default=None,
        help="the reader's grammar margin, natural log (default its own; -1: no grammar)",
    )
    p.add_argument(
        "--no-equalise", action="store_true", help="no second look at crops with no text found"
    )
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=lazy("pipeline.tools.eval_ocr", "cmd_eval"))


def _add_landing(group: argparse._SubParsersAction) -> None:
    """``eval landing-sites``."""
    ev = group.add_parser(
        "landing-sites", help="hidden landing sites found across simulated nights (one seed)"
    )
    ev.add_argument("--site", default=str(REPO_DIR / "sites" / "haikou"), help="site folder")
    ev.add_argument("--seed", type=int, default=1)
    ev.add_argument("--nights", type=int, default=10)
    ev.add_argument("--work", default=None, help="keep the simulated nights and archive here")
    ev.add_argument("--json", action="store_true", help="one JSON object")
    ev.set_defaults(func=lazy("pipeline.tools.eval_landing", "cmd_eval"))


def _add_identity(group: argparse._SubParsersAction) -> None:
    """``eval identity``."""
    ev = group.add_parser(
        "identity", help="identity rules against the simulator's registry (one simulated run)"
    )
    ev.add_argument("--site", default=str(REPO_DIR / "sites" / "haikou"), help="site folder")
    ev.add_argument("--seed", type=int, default=1)
    ev.add_argument("--duration", default="2h", help="simulated time, e.g. 2h, 90m")
    ev.add_argument("--start", default="2026-03-08T02:00:00+08:00", help="ISO 8601 start")
    ev.add_argument("--work", default=None, help="keep the simulated run and registry here")
    ev.add_argument("--json", action="store_true", help="one JSON object")
    ev.set_defaults(func=lazy("pipeline.tools.eval_identity", "cmd_eval"))


def add_commands(sub: argparse._SubParsersAction) -> None:
    _add_alerts(sub)
    group = command_group(sub, "eval", "score alerts against ground truth, or evaluate a component")
    _add_all(group)
    _add_camera(group)
    _add_fusion(group)
    _add_ocr(group)
    _add_landing(group)
    _add_identity(group)
