"""Command-line options shared by the camera commands: which detector, and how."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pipeline.settings import shared_dir

#: the DNN inference backends (:data:`pipeline.vision.detectors.DNN_BACKENDS`)
DNN_BACKENDS = ("onnxruntime", "opencv")


def add_detector_args(p: argparse.ArgumentParser) -> None:
    """The detector options of a camera connector."""
    default_model = os.environ.get(
        "SHOREWATCH_MODEL_DIR", str(shared_dir() / "models" / "yolo-fastest-1.1")
    )
    p.add_argument(
        "--model-dir",
        default=str(default_model),
        help="Darknet model folder; 'none' uses the motion detector",
    )
    p.add_argument("--model-name", default="yolo-fastest-1.1-xl")
    p.add_argument(
        "--conf",
        type=float,
        default=0.2,
        help="minimum detection confidence (as eval camera: recall 0.94 on clip-01)",
    )
    p.add_argument(
        "--backend",
        choices=("onnxruntime", "opencv"),
        default="onnxruntime",
        help="DNN inference: ONNX Runtime (default) or OpenCV's dnn module",
    )
    p.add_argument(
        "--max-fps", type=float, default=5.0, help="most frames analysed per camera per second"
    )
    add_inference_args(p)


def add_inference_args(p: argparse.ArgumentParser) -> None:
    """Where and how the DNN runs: ONNX Runtime provider and batching across cameras."""
    p.add_argument(
        "--execution-provider",
        choices=("cpu", "cuda", "tensorrt"),
        default="cpu",
        help="ONNX Runtime provider; falls back to the CPU with a warning when not installed",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=1,
        help="frames of many cameras per network run through one shared detector (1: none)",
    )
    p.add_argument(
        "--batch-wait-ms",
        type=float,
        default=20.0,
        help="longest a frame waits for its batch to fill, ms",
    )


def add_clip_detector_args(p: argparse.ArgumentParser, shared: Path) -> None:
    """The detector options of the clip evaluation and benchmark, and ``--clip``."""
    default_model = shared / "models" / "yolo-fastest-1.1"
    p.add_argument("--clip", type=Path, default=shared / "data" / "video" / "clip-01")
    p.add_argument(
        "--model-dir",
        default=str(default_model),
        help="Darknet model folder; 'none' uses the motion detector",
    )
    p.add_argument("--model-name", default="yolo-fastest-1.1-xl")
    p.add_argument("--input-size", type=int, default=416, help="network input, pixels")
    p.add_argument(
        "--conf",
        type=float,
        default=0.2,
        help="minimum detection confidence (0.2 reaches recall 0.94 on clip-01; 0.25 gives 0.83)",
    )
    p.add_argument(
        "--backend",
        choices=DNN_BACKENDS,
        default="onnxruntime",
        help="DNN inference: ONNX Runtime on the converted network (default) or OpenCV's dnn",
    )
    p.add_argument(
        "--tiles",
        default=None,
        help="regions as 'x,y,w,h;...' fractions of the frame (default: whole frame)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
