"""Vessel detection, image tracking and geo-referencing of camera frames (adapter).

This module is the OpenCV side of the camera ring: it turns a BGR frame into a
:class:`schemas.records.CameraFrame`. The pure pieces live in the core
(:mod:`pipeline.core.camera` for geometry, :mod:`pipeline.core.mot` for tracking).

Detectors implement the one-method :class:`Detector` protocol:

- :class:`DnnDetector` runs a Darknet YOLO model (Yolo-Fastest 1.1, COCO class
  ``boat``). By default the network is converted to ONNX in memory when the detector
  starts (:mod:`pipeline.darknet`) and runs on ONNX Runtime, about 2.5 times faster on
  one core than OpenCV's ``dnn`` module, which remains the second backend
  (``backend="opencv"``). **OpenCV is pinned to 4.x**
  (``opencv-python-headless>=4.9,<5``): OpenCV 5 removed ``readNetFromDarknet``, and
  its Darknet importer is the independent reference the conversion is tested against
  (same outputs to within 2e-4 on the real clip). The weights are never committed,
  nor is a converted model: both are read from a configured path
  (``../shared/models/yolo-fastest-1.1`` on developer machines).
- :class:`MotionDetector` is background subtraction restricted to the water
  (below the horizon line and inside an optional ``water_mask`` polygon), for
  cameras with no model configured. It is known to be weak on water (wakes,
  glare); prefer the DNN.

:class:`FrameAnalyser` chains detector, tracker and camera model, and writes
evidence (frame JPEG and box crops) to an :class:`EvidenceStore`.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import shapely
from scipy.optimize import linear_sum_assignment

from pipeline.core.camera import (
    CameraModel,
    PoseCalibrator,
    SelfCalConfig,
    enu_from_geo,
    geo_from_enu,
    refine_pose,
)
from pipeline.core.mot import MultiObjectTracker, iou_xywh
from pipeline.darknet import DarknetOnnx
from pipeline.errors import ConfigError, FrameError
from pipeline.site import CLIP_STRUCTURES_DIR, Structure, read_structures
from schemas.records import CameraDetection, CameraFrame

log = logging.getLogger(__name__)

#: inference backends of :class:`DnnDetector`
DNN_BACKENDS = ("onnxruntime", "opencv")

__all__ = [
    "AisSource",
    "Detections",
    "Detector",
    "DirectoryEvidenceStore",
    "DnnDetector",
    "EvidenceStore",
    "FrameAnalyser",
    "MotionDetector",
    "StructureMask",
    "add_commands",
    "check_frame",
]


# --------------------------------------------------------------------------- detections
@dataclass(frozen=True, slots=True)
class Detections:
    """Boxes found in one frame.

    :param boxes_xywh: ``(N, 4)`` float, ``[x, y, w, h]`` in pixels of the analysed frame
    :param scores: ``(N,)`` confidences in ``[0, 1]``
    :param class_names: ``(N,)`` class names
    """

    boxes_xywh: np.ndarray
    scores: np.ndarray
    class_names: np.ndarray

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=object))

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, index: np.ndarray) -> Detections:
        """The detections picked by a boolean mask or an index array."""
        return Detections(self.boxes_xywh[index], self.scores[index], self.class_names[index])


class Detector(Protocol):
    """Finds vessels in a BGR frame."""

    def detect(self, frame_bgr: np.ndarray) -> Detections: ...


def check_frame(frame_bgr: object) -> np.ndarray:
    """Validate a decoded frame; raise :class:`FrameError` for a corrupt or empty one.

    :param frame_bgr: ``(H, W, 3)`` uint8 BGR image
    :return: the frame, unchanged
    """
    if frame_bgr is None:
        raise FrameError("empty_frame", "no image (decoder returned nothing)")
    if not isinstance(frame_bgr, np.ndarray):
        raise FrameError("bad_frame", f"expected a numpy array, got {type(frame_bgr).__name__}")
    if frame_bgr.size == 0:
        raise FrameError("empty_frame", f"zero-size image {frame_bgr.shape}")
    if frame_bgr.dtype != np.uint8 or frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
        raise FrameError(
            "bad_frame", f"expected HxWx3 uint8 BGR, got {frame_bgr.shape} {frame_bgr.dtype}"
        )
    if frame_bgr.shape[0] < 8 or frame_bgr.shape[1] < 8:
        raise FrameError("bad_frame", f"image too small: {frame_bgr.shape}")
    flat = frame_bgr.reshape(-1, 3)
    if not (flat != flat[0]).any():
        raise FrameError("blank_frame", "every pixel has the same colour (decoder fill)")
    return frame_bgr


def _nms(boxes: np.ndarray, scores: np.ndarray, conf: float, nms: float) -> np.ndarray:
    if len(boxes) == 0:
        return np.zeros(0, dtype=int)
    keep = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), conf, nms)
    return np.asarray(keep, dtype=int).reshape(-1)


def _with_yolo_thresh(cfg_text: str, thresh: float) -> str:
    """The Darknet cfg with ``thresh`` of every ``[yolo]``/``[region]`` section set."""
    out: list[str] = []
    in_head = False
    for line in cfg_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            in_head = stripped in ("[yolo]", "[region]")
            out.append(line)
            if in_head:
                out.append(f"thresh = {thresh:.6g}")
            continue
        if in_head and stripped.replace(" ", "").startswith("thresh="):
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def _not_contained(boxes_sorted: np.ndarray, fraction: float) -> np.ndarray:
    """Mask of boxes (sorted by falling score) not mostly inside an earlier box."""
    b = boxes_sorted
    x1 = np.maximum(b[:, None, 0], b[None, :, 0])
    y1 = np.maximum(b[:, None, 1], b[None, :, 1])
    x2 = np.minimum(b[:, None, 0] + b[:, None, 2], b[None, :, 0] + b[None, :, 2])
    y2 = np.minimum(b[:, None, 1] + b[:, None, 3], b[None, :, 1] + b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    inside = inter / np.maximum(b[:, 2] * b[:, 3], 1e-9)[:, None]  # [i, j]: share of i inside j
    earlier = np.tril(np.ones((len(b), len(b)), dtype=bool), k=-1)  # j ranks above i
    return ~((inside >= fraction) & earlier).any(axis=1)


class DnnDetector:
    """A Darknet YOLO detector (e.g. Yolo-Fastest 1.1) on OpenCV's ``dnn`` module.

    The frame (or each tile of it) is stretched to the network input without
    letterboxing, as Darknet trains these models.

    :param cfg_path: Darknet ``.cfg``
    :param weights_path: Darknet ``.weights`` (never committed: a configured path)
    :param names_path: class names, one a line (COCO: line 9 is ``boat``)
    :param input_size: network input, pixels (square), or ``(width, height)``
    :param conf: minimum confidence (objectness x class probability)
    :param nms: IoU threshold of non-maximum suppression
    :param classes: class names to keep
    :param tiles: regions to run the network on, as ``(x, y, w, h)`` fractions of the
        frame; detections of all tiles are merged by NMS. The default is the whole frame;
        adding a band around the horizon enlarges far, small vessels.
    :param containment: after NMS, drop a box when at least this fraction of its area
        lies inside a higher-scoring box (the model often adds a second box on part of
        a long hull); ``None`` keeps them. A boat fully in front of a larger one can be
        lost this way, so keep the fraction high.
    :param backend: ``"onnxruntime"`` (default: the network converted in memory by
        :mod:`pipeline.darknet`, ~2.5x faster on one core) or ``"opencv"`` (OpenCV's own
        Darknet importer, the reference the conversion is tested against)
    :param threads: ONNX Runtime threads per detector (OpenCV's are set process-wide
        with ``cv2.setNumThreads``)
    """

    def __init__(
        self,
        cfg_path: str | os.PathLike[str],
        weights_path: str | os.PathLike[str],
        names_path: str | os.PathLike[str],
        input_size: int | tuple[int, int] = 416,
        conf: float = 0.25,
        nms: float = 0.4,
        classes: Sequence[str] = ("boat",),
        tiles: Sequence[tuple[float, float, float, float]] = ((0.0, 0.0, 1.0, 1.0),),
        containment: float | None = 0.8,
        backend: str = "onnxruntime",
        threads: int = 1,
    ) -> None:
        if backend not in DNN_BACKENDS:
            raise ConfigError(f"detector backend must be one of {DNN_BACKENDS}, got {backend!r}")
        for p in (cfg_path, weights_path, names_path):
            if not Path(p).is_file():
                raise ConfigError(f"detector model file not found: {p}")
        names = [n.strip() for n in Path(names_path).read_text().splitlines() if n.strip()]
        missing = [c for c in classes if c not in names]
        if missing:
            raise ConfigError(f"classes {missing} not in {names_path}")
        # OpenCV's Darknet YOLO layer zeroes class scores below the cfg's ``thresh``
        # (0.2 when absent): set it to our own threshold so ``conf`` means what it says.
        cfg_text = _with_yolo_thresh(Path(cfg_path).read_text(), float(conf))
        self.input_size = (
            (int(input_size), int(input_size))
            if isinstance(input_size, int)
            else (int(input_size[0]), int(input_size[1]))
        )
        self.backend = backend
        self.onnx: DarknetOnnx | None = None
        if backend == "onnxruntime":
            self.onnx = DarknetOnnx(
                cfg_path, weights_path, self.input_size, threads=threads, cfg_text=cfg_text
            )
        else:
            try:
                self.net = cv2.dnn.readNetFromDarknet(
                    np.frombuffer(cfg_text.encode(), dtype=np.uint8),
                    np.fromfile(str(weights_path), dtype=np.uint8),
                )
            except cv2.error as exc:
                raise ConfigError(f"cannot load Darknet model {cfg_path}: {exc}") from exc
            self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
            self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
            self.out_names = self.net.getUnconnectedOutLayersNames()
        self.names = np.array(names, dtype=object)
        self.class_ids = np.array([names.index(c) for c in classes], dtype=int)
        self.conf = float(conf)
        self.nms = float(nms)
        self.tiles = tuple(tuple(map(float, t)) for t in tiles)
        self.containment = containment

    @classmethod
    def from_dir(
        cls, model_dir: str | os.PathLike[str], name: str = "yolo-fastest-1.1-xl", **kwargs
    ) -> DnnDetector:
        """A detector from ``<dir>/<name>.cfg``, ``<dir>/<name>.weights`` and ``<dir>/coco.names``."""
        d = Path(model_dir)
        return cls(d / f"{name}.cfg", d / f"{name}.weights", d / "coco.names", **kwargs)

    def _run(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        blob = cv2.dnn.blobFromImage(image, 1.0 / 255.0, self.input_size, swapRB=True, crop=False)
        if self.onnx is not None:
            out = self.onnx.decode(self.onnx.forward(blob))
        else:
            self.net.setInput(blob)
            out = np.vstack(self.net.forward(self.out_names))
        # columns: cx, cy, w, h (fractions), objectness, then objectness x class prob
        cls_scores = out[:, 5 + self.class_ids]
        best = cls_scores.argmax(axis=1)
        score = cls_scores[np.arange(len(out)), best]
        keep = score >= self.conf
        h, w = image.shape[:2]
        b = out[keep, :4] * np.array([w, h, w, h], dtype=float)
        b[:, :2] -= b[:, 2:] / 2.0
        return b, score[keep], self.class_ids[best[keep]]

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        """Boxes of the configured classes, after NMS over all tiles."""
        frame = check_frame(frame_bgr)
        fh, fw = frame.shape[:2]
        boxes, scores, cls = [], [], []
        for tx, ty, tw, th in self.tiles:
            x0, y0 = int(round(tx * fw)), int(round(ty * fh))
            x1, y1 = min(fw, int(round((tx + tw) * fw))), min(fh, int(round((ty + th) * fh)))
            b, s, c = self._run(frame[y0:y1, x0:x1])
            b[:, 0] += x0
            b[:, 1] += y0
            boxes.append(b)
            scores.append(s)
            cls.append(c)
        b = np.vstack(boxes)
        s = np.concatenate(scores)
        c = np.concatenate(cls)
        # clip to the frame
        x0 = np.clip(b[:, 0], 0, fw)
        y0 = np.clip(b[:, 1], 0, fh)
        x1 = np.clip(b[:, 0] + b[:, 2], 0, fw)
        y1 = np.clip(b[:, 1] + b[:, 3], 0, fh)
        b = np.column_stack([x0, y0, x1 - x0, y1 - y0])
        ok = (b[:, 2] > 0) & (b[:, 3] > 0)
        b, s, c = b[ok], s[ok], c[ok]
        keep = _nms(b, s, self.conf, self.nms)
        order = keep[np.argsort(-s[keep], kind="stable")]
        if self.containment is not None and len(order) > 1:
            order = order[_not_contained(b[order], self.containment)]
        return Detections(b[order].astype(float), s[order].astype(float), self.names[c[order]])


class MotionDetector:
    """Moving objects on the water by background subtraction (MOG2).

    Foreground is kept only below the horizon line (plus ``horizon_margin_px``) and
    inside ``water_mask``; it is cleaned with a morphological opening and a
    horizontal closing (hulls are long and low), and blobs smaller than
    ``min_area_px`` are dropped.

    :param horizon_v: horizon row, pixels: a number, a function of the column
        (e.g. :meth:`CameraModel.horizon_v`), or ``None`` for no horizon limit
    :param water_mask: ``(K, 2)`` polygon of the water, pixel ``u, v``; ``None`` = everywhere
    :param min_area_px: smallest blob, pixels
    :param history: frames of background memory
    :param var_threshold: MOG2 squared Mahalanobis threshold
    :param warmup_frames: frames used to learn the background before detecting
    :param learning_rate: background learning rate after the warm-up, per frame
    :param close_px: ``(width, height)`` of the closing element that joins the pieces of
        one hull, pixels; default ``(W / 36, H / 70)`` of the frame (24 x 7 at 888 x 500)
    """

    def __init__(
        self,
        *,
        horizon_v: float | Callable[[np.ndarray], np.ndarray] | None = None,
        water_mask: np.ndarray | Sequence[Sequence[float]] | None = None,
        horizon_margin_px: float = 2.0,
        min_area_px: int = 30,
        history: int = 200,
        var_threshold: float = 25.0,
        warmup_frames: int = 5,
        learning_rate: float = 0.005,
        close_px: tuple[int, int] | None = None,
    ) -> None:
        self.horizon_v = horizon_v
        self.water_mask = None if water_mask is None else np.asarray(water_mask, dtype=float)
        self.horizon_margin_px = float(horizon_margin_px)
        self.min_area_px = int(min_area_px)
        self.warmup_frames = int(warmup_frames)
        self.learning_rate = float(learning_rate)
        self._bg = cv2.createBackgroundSubtractorMOG2(
            history=int(history), varThreshold=float(var_threshold), detectShadows=False
        )
        self._mask: np.ndarray | None = None
        self._n = 0
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self.close_px = close_px
        self._close: np.ndarray | None = None

    @classmethod
    def for_camera(cls, model: CameraModel, **kwargs) -> MotionDetector:
        """A motion detector whose horizon comes from the camera model."""
        return cls(horizon_v=model.horizon_v, **kwargs)

    def region_mask(self, height: int, width: int) -> np.ndarray:
        """The ``uint8`` mask (255 = water) used for a frame of this size."""
        if self._mask is not None and self._mask.shape == (height, width):
            return self._mask
        mask = np.full((height, width), 255, dtype=np.uint8)
        if self.horizon_v is not None:
            cols = np.arange(width, dtype=float) + 0.5
            hv = (
                self.horizon_v(cols) if callable(self.horizon_v) else np.full(width, self.horizon_v)
            )
            hv = (
                np.nan_to_num(np.asarray(hv, dtype=float), nan=float(height))
                + self.horizon_margin_px
            )
            rows = np.arange(height, dtype=float)[:, None] + 0.5
            mask[rows < hv[None, :]] = 0
        if self.water_mask is not None:
            poly = np.zeros((height, width), dtype=np.uint8)
            cv2.fillPoly(poly, [np.round(self.water_mask).astype(np.int32)], 255)
            mask &= poly
        self._mask = mask
        return mask

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        """Moving blobs on the water; empty during the warm-up frames."""
        frame = check_frame(frame_bgr)
        h, w = frame.shape[:2]
        self._n += 1
        # learn fast while warming up, then slowly so a hull is not absorbed as it passes
        rate = -1.0 if self._n <= self.warmup_frames else self.learning_rate
        fg = self._bg.apply(frame, learningRate=rate)
        if self._n <= self.warmup_frames:
            return Detections.empty()
        fg = cv2.bitwise_and(fg, self.region_mask(h, w))
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self._open)
        if self._close is None:
            cw, ch = self.close_px or (max(3, w // 36), max(3, h // 70))
            self._close = cv2.getStructuringElement(cv2.MORPH_RECT, (int(cw), int(ch)))
        fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, self._close)
        n, _, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
        st = stats[1:n]
        keep = st[:, cv2.CC_STAT_AREA] >= self.min_area_px
        st = st[keep]
        boxes = st[:, :4].astype(float)
        fill = st[:, cv2.CC_STAT_AREA] / np.maximum(boxes[:, 2] * boxes[:, 3], 1.0)
        order = np.argsort(-st[:, cv2.CC_STAT_AREA], kind="stable")
        return Detections(
            boxes[order], fill[order].astype(float), np.full(len(order), "motion", dtype=object)
        )


# --------------------------------------------------------------------------- evidence
class StructureMask:
    """Fixed structures in a camera's view (bridges, piers, towers): their detections go.

    The COCO detector scores a far bridge's deck and piers as "boat" in every frame;
    they stand in the water, so neither the horizon nor a water mask removes them. A
    detection is dropped when at least ``overlap`` of its box area lies inside the
    union of the outlined structures. A vessel wholly in front of a structure in the
    image is dropped as well, so keep the outlines tight; a vessel passing one is still
    seen as soon as most of its box is outside.

    :param structures: :class:`pipeline.site.Structure` outlines, pixels of a
        ``image_width`` x ``image_height`` image (rescaled to the frame size)
    :param overlap: share of a box's area inside the structures at which it is dropped
    """

    def __init__(
        self,
        structures: Sequence[Structure],
        image_width: int,
        image_height: int,
        overlap: float = 0.5,
    ) -> None:
        if not structures:
            raise ConfigError("a structure mask needs at least one structure")
        if not 0.0 < overlap <= 1.0:
            raise ConfigError(f"structure overlap must be in (0, 1], got {overlap}")
        self.names = np.array([st.name for st in structures], dtype=object)
        self.polygons = [np.asarray(st.polygon_px, dtype=float) for st in structures]
        self.size = (int(image_width), int(image_height))
        self.overlap = float(overlap)
        self._integrals: dict[tuple[int, int], np.ndarray] = {}

    def _integral(self, width: int, height: int) -> np.ndarray:
        """``(K + 1, H + 1, W + 1)`` integral images: the union, then each structure."""
        cached = self._integrals.get((width, height))
        if cached is not None:
            return cached
        scale = np.array([width / self.size[0], height / self.size[1]])
        masks = []
        for poly in self.polygons:
            # a pixel belongs to an outline when its centre lies inside it
            outline = shapely.Polygon(poly * scale)
            x0, y0, x1, y1 = outline.bounds
            c0, r0 = max(0, math.floor(x0)), max(0, math.floor(y0))
            c1, r1 = min(width, math.ceil(x1)), min(height, math.ceil(y1))
            m = np.zeros((height, width), dtype=np.uint8)
            if c1 > c0 and r1 > r0:
                xx, yy = np.meshgrid(np.arange(c0, c1) + 0.5, np.arange(r0, r1) + 0.5)
                m[r0:r1, c0:c1] = shapely.contains_xy(outline, xx, yy)
            masks.append(m)
        union = np.maximum.reduce(masks)
        out = np.stack([cv2.integral(m, sdepth=cv2.CV_32S) for m in (union, *masks)])
        self._integrals[(width, height)] = out
        return out

    def coverage(
        self, boxes_xywh: np.ndarray, width: int, height: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Share of each box inside the structures, and the structure covering most of it.

        :param boxes_xywh: ``(N, 4)`` boxes, pixels of a ``width`` x ``height`` frame
        :return: ``(N,)`` fractions in ``[0, 1]`` and ``(N,)`` structure names
        """
        ii = self._integral(int(width), int(height))
        b = np.asarray(boxes_xywh, dtype=float).reshape(-1, 4)
        x0 = np.clip(np.round(b[:, 0]), 0, width).astype(int)
        y0 = np.clip(np.round(b[:, 1]), 0, height).astype(int)
        x1 = np.clip(np.round(b[:, 0] + b[:, 2]), 0, width).astype(int)
        y1 = np.clip(np.round(b[:, 1] + b[:, 3]), 0, height).astype(int)
        inside = ii[:, y1, x1] - ii[:, y0, x1] - ii[:, y1, x0] + ii[:, y0, x0]  # (K + 1, N)
        area = np.maximum((x1 - x0) * (y1 - y0), 1)
        frac = np.where((x1 > x0) & (y1 > y0), inside[0] / area, 0.0)
        which = self.names[inside[1:].argmax(axis=0)] if len(b) else self.names[:0]
        return frac, which

    def split(self, dets: Detections, width: int, height: int) -> tuple[Detections, Detections]:
        """``(kept, dropped)``: detections outside the structures, and those inside."""
        if not len(dets):
            return dets, dets
        frac, _ = self.coverage(dets.boxes_xywh, width, height)
        inside = frac >= self.overlap
        return dets.select(~inside), dets.select(inside)


class EvidenceStore(Protocol):
    """Where evidence images go; returns a URI for each."""

    def put(self, key: str, data: bytes, content_type: str = "image/jpeg") -> str: ...


class DirectoryEvidenceStore:
    """Evidence files under a root directory; URIs are ``file://`` URIs.

    :param root: directory (created on first write)
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def put(self, key: str, data: bytes, content_type: str = "image/jpeg") -> str:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"evidence key escapes the store: {key!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return path.as_uri()


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise FrameError("encode_failed", "JPEG encoding failed")
    return buf.tobytes()


def _none_if_nan(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


# --------------------------------------------------------------------------- analyser
AisSource = Callable[[int, CameraModel], tuple[np.ndarray, np.ndarray, np.ndarray]]
"""``(t_ms, camera) -> (lon_deg, lat_deg, mmsi)``: the AIS vessels near a camera at an
event time (ms UTC), positions in degrees WGS84, e.g. dead-reckoned tracks."""


class FrameAnalyser:
    """Detect, track and geo-reference one camera's frames.

    :param camera_id: camera id used in records and evidence keys
    :param model: the calibrated camera; rescaled automatically to the frame size
    :param detector: any :class:`Detector`
    :param tracker: the camera's :class:`MultiObjectTracker` (state is kept across frames)
    :param evidence_store: where frame and crop JPEGs go; ``None`` writes no evidence
    :param crop_pad: padding around each crop, as a fraction of the box size
    :param jpeg_quality: JPEG quality 0..100
    :param evidence_when_empty: also store the frame JPEG when nothing was detected
    :param ais_source: turns on self-calibration: every frame's detections and the AIS
        vessels this returns feed a :class:`~pipeline.core.camera.PoseCalibrator`, and
        frames are geo-referenced with the pose it learnt from the earlier frames (not
        while a ``model`` is passed to :meth:`analyse`, i.e. a PTZ pose is in force)
    :param selfcal_config: the calibrator's settings; default :class:`SelfCalConfig` with a
        refit every 25 frames (5 s at 5 fps)
    :param structures: fixed structures in view; detections on them are left out before
        tracking (counted in the record's ``masked_detections`` and in
        :attr:`masked_detections`), except while a PTZ pose is in force (the outlines hold
        at the home position only)
    """

    def __init__(
        self,
        camera_id: str,
        model: CameraModel,
        detector: Detector,
        tracker: MultiObjectTracker | None = None,
        evidence_store: EvidenceStore | None = None,
        *,
        crop_pad: float = 0.25,
        jpeg_quality: int = 85,
        evidence_when_empty: bool = False,
        ais_source: AisSource | None = None,
        selfcal_config: SelfCalConfig | None = None,
        structures: StructureMask | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.model = model
        self.detector = detector
        self.tracker = tracker if tracker is not None else MultiObjectTracker()
        self.evidence_store = evidence_store
        self.crop_pad = float(crop_pad)
        self.jpeg_quality = int(jpeg_quality)
        self.evidence_when_empty = bool(evidence_when_empty)
        self.ais_source = ais_source
        self.selfcal_config = (
            selfcal_config if selfcal_config is not None else SelfCalConfig(refit_every_frames=25)
        )
        self.calibrator: PoseCalibrator | None = None
        self.selfcal_source_errors = 0
        self.structures = structures
        #: detections left out on fixed structures since the start, count
        self.masked_detections = 0

    def _model_for(self, width: int, height: int, model: CameraModel | None) -> CameraModel:
        m = model if model is not None else self.model
        if (m.image_width, m.image_height) != (width, height):
            m = m.scaled(width, height)
            if model is None:
                self.model = m
        return m

    def analyse(
        self, frame_bgr: np.ndarray, t_ms: int, *, model: CameraModel | None = None
    ) -> CameraFrame:
        """One frame to one :class:`CameraFrame` record.

        :param frame_bgr: decoded ``(H, W, 3)`` uint8 BGR frame
        :param t_ms: frame event time, ms UTC (camera clock offset already corrected)
        :param model: camera pose at this frame (PTZ), default the analyser's model
        :raises FrameError: corrupt or empty frame
        """
        frame = check_frame(frame_bgr)
        h, w = frame.shape[:2]
        cam = self._model_for(w, h, model)
        calibrating = self.ais_source is not None and model is None
        if calibrating:
            c = self.calibrator
            if c is None or (c.installed.image_width, c.installed.image_height) != (w, h):
                self.calibrator = PoseCalibrator(cam, self.selfcal_config)
            assert self.calibrator is not None
            cam = self.calibrator.model  # learnt from the earlier frames
        dets = self.detector.detect(frame)
        masked = 0
        if self.structures is not None and model is None:
            dets, dropped = self.structures.split(dets, w, h)
            masked = len(dropped)
            self.masked_detections += masked
        boxes = dets.boxes_xywh
        ids = self.tracker.update(boxes, dets.scores, t_ms / 1000.0)
        u_px, v_px = boxes[:, 0] + boxes[:, 2] / 2.0, boxes[:, 1] + boxes[:, 3]
        geo = cam.pixel_to_geo(u_px, v_px)
        if calibrating and self.calibrator is not None and self.ais_source is not None:
            try:
                lon, lat, mmsi = self.ais_source(int(t_ms), self.calibrator.installed)
            except Exception as exc:  # noqa: BLE001 - a failing AIS source must not cost the frame
                self.selfcal_source_errors += 1
                log.warning(
                    "camera %s: AIS source for self-calibration failed: %r", self.camera_id, exc
                )
            else:
                if self.calibrator.update(int(t_ms), u_px, v_px, lon, lat, mmsi):
                    m = self.calibrator.model
                    log.info(
                        "camera %s: pose learnt from AIS: heading %.2f deg, tilt %.2f deg, "
                        "height %.1f m (%d pairs, median residual %s px)",
                        self.camera_id,
                        m.heading_deg,
                        m.tilt_deg,
                        m.height_m,
                        self.calibrator.n_pairs,
                        self.calibrator.residual_px,
                    )
                    if self.calibrator.at_bounds:
                        log.warning(
                            "camera %s: the learnt %s sits on its self-calibration bound: the "
                            "configured pose is likely off by more than the bounds allow",
                            self.camera_id,
                            " and ".join(self.calibrator.at_bounds),
                        )

        evidence_uri = None
        crop_uris: list[str | None] = [None] * len(dets)
        if self.evidence_store is not None and (len(dets) or self.evidence_when_empty):
            stem = f"{self.camera_id}/{int(t_ms)}"
            evidence_uri = self.evidence_store.put(
                f"{stem}/frame.jpg", _jpeg(frame, self.jpeg_quality)
            )
            pad = boxes[:, 2:] * self.crop_pad
            x0 = np.clip(np.floor(boxes[:, 0] - pad[:, 0]), 0, w).astype(int)
            y0 = np.clip(np.floor(boxes[:, 1] - pad[:, 1]), 0, h).astype(int)
            x1 = np.clip(np.ceil(boxes[:, 0] + boxes[:, 2] + pad[:, 0]), 0, w).astype(int)
            y1 = np.clip(np.ceil(boxes[:, 1] + boxes[:, 3] + pad[:, 1]), 0, h).astype(int)
            for i in range(len(dets)):
                if x1[i] > x0[i] and y1[i] > y0[i]:
                    crop = frame[y0[i] : y1[i], x0[i] : x1[i]]
                    crop_uris[i] = self.evidence_store.put(
                        f"{stem}/crop-{i}-track{int(ids[i])}.jpg", _jpeg(crop, self.jpeg_quality)
                    )

        rows = zip(
            boxes.tolist(),
            dets.scores.tolist(),
            dets.class_names.tolist(),
            ids.tolist(),
            geo.bearing_deg.tolist(),
            geo.bearing_sigma_deg.tolist(),
            geo.range_m.tolist(),
            geo.range_sigma_m.tolist(),
            geo.lon_deg.tolist(),
            geo.lat_deg.tolist(),
            geo.hits_sea.tolist(),
            crop_uris,
            strict=True,
        )
        detections = [
            CameraDetection(
                track_id=int(tid),
                box_px=[float(v) for v in box],
                cls=str(cls),
                confidence=float(score),
                bearing_deg=float(brg),
                bearing_sigma_deg=float(brg_s),
                range_m=_none_if_nan(rng),
                range_sigma_m=_none_if_nan(rng_s),
                lon=_none_if_nan(lon),
                lat=_none_if_nan(lat),
                beyond_horizon=not hits,
                crop_uri=crop,
            )
            for box, score, cls, tid, brg, brg_s, rng, rng_s, lon, lat, hits, crop in rows
        ]
        return CameraFrame(
            camera_id=self.camera_id,
            t_ms=int(t_ms),
            image_width=w,
            image_height=h,
            heading_deg=float(cam.heading_deg),
            hfov_deg=float(cam.hfov_deg),
            detections=detections,
            evidence_uri=evidence_uri,
            masked_detections=masked,
        )


# --------------------------------------------------------------------------- clip evaluation
@dataclass
class Clip:
    """An FVessel-style clip folder: video, ``camera_para.txt``, ``ais/*.csv`` and ground truth.

    :param start_t_ms: time of the first frame, ms UTC (from the first AIS file name)
    :param fps: frame rate, frames/s
    :param gt_sensor: ``(width, height)`` the ground truth and intrinsics refer to
    """

    root: Path
    utc_offset_h: float = 8.0
    gt_sensor: tuple[int, int] = (2560, 1440)
    video: Path = field(init=False)
    params: list[float] = field(init=False)
    start_t_ms: int = field(init=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        videos = sorted(self.root.glob("*.mp4")) + sorted(self.root.glob("*.avi"))
        if not videos:
            raise ConfigError(f"no video in {self.root}")
        self.video = videos[0]
        para = (self.root / "camera_para.txt").read_text().strip().strip("[]")
        self.params = [float(v) for v in para.split(",")]
        names = sorted((self.root / "ais").glob("*.csv"))
        if not names:
            raise ConfigError(f"no AIS files in {self.root / 'ais'}")
        self.start_t_ms = self._file_t_ms(names[0])

    def _file_t_ms(self, path: Path) -> int:
        local = dt.datetime.strptime(path.stem, "%Y_%m_%d_%H_%M_%S")
        utc = local.replace(tzinfo=dt.timezone(dt.timedelta(hours=self.utc_offset_h)))
        return int(utc.timestamp() * 1000)

    def frames(self, indices: Sequence[int] | None = None):
        """Yield ``(index, frame)``; all frames, or only the given indices."""
        cap = cv2.VideoCapture(str(self.video))
        if not cap.isOpened():
            raise ConfigError(f"cannot open {self.video}")
        wanted = None if indices is None else set(indices)
        last = None if indices is None else max(indices)
        i = 0
        try:
            while last is None or i <= last:
                ok, frame = cap.read()
                if not ok:
                    break
                if wanted is None or i in wanted:
                    yield i, frame
                i += 1
        finally:
            cap.release()

    def frame_count(self) -> int:
        """Frames in the video (as the container reports)."""
        cap = cv2.VideoCapture(str(self.video))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        return n

    def fps(self) -> float:
        cap = cv2.VideoCapture(str(self.video))
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        cap.release()
        return float(fps)

    def ground_truth(self, name: str, width: int, height: int) -> dict[int, np.ndarray]:
        """Rows ``[id, x, y, w, h]`` per second of a MOT-format file, scaled to the image."""
        sx, sy = width / self.gt_sensor[0], height / self.gt_sensor[1]
        out: dict[int, list[list[float]]] = {}
        with open(self.root / name, newline="") as fh:
            for row in csv.reader(fh):
                if len(row) < 6:
                    continue
                k = int(float(row[0]))
                x, y, w, h = (float(v) for v in row[2:6])
                out.setdefault(k, []).append([float(row[1]), x * sx, y * sy, w * sx, h * sy])
        return {k: np.array(v) for k, v in out.items()}

    def ais_at(self, t_ms: int) -> dict[int, tuple[float, float]]:
        """Every vessel's position dead-reckoned to ``t_ms`` from the AIS file of that second.

        :return: ``{mmsi: (lon_deg, lat_deg)}``; "not available" positions are left out
        """
        local = dt.datetime.fromtimestamp(
            (t_ms // 1000), tz=dt.timezone(dt.timedelta(hours=self.utc_offset_h))
        )
        path = self.root / "ais" / (local.strftime("%Y_%m_%d_%H_%M_%S") + ".csv")
        if not path.exists():
            return {}
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        mmsi = np.array([int(r["mmsi"]) for r in rows])
        lon = np.array([float(r["lon"]) for r in rows])
        lat = np.array([float(r["lat"]) for r in rows])
        sog = np.array([float(r["speed"]) for r in rows])
        cog = np.array([float(r["course"]) for r in rows])
        ts = np.array([float(r["timestamp"]) for r in rows])
        ok = (lon <= 180.0) & (lat <= 90.0)
        moving = ok & (sog < 102.2) & (cog < 360.0)
        d_m = np.where(moving, sog * 1852.0 / 3600.0 * (t_ms - ts) / 1000.0, 0.0)
        out = {}
        for i in np.flatnonzero(ok):
            lo, la = geo_from_enu(
                lon[i],
                lat[i],
                np.array(d_m[i] * math.sin(math.radians(cog[i]))),
                np.array(d_m[i] * math.cos(math.radians(cog[i]))),
            )
            out[int(mmsi[i])] = (float(lo), float(la))
        return out


def _match(
    gt_xywh: np.ndarray, det_xywh: np.ndarray, iou_min: float
) -> list[tuple[int, int, float]]:
    """One-to-one matches ``(gt_row, det_row, iou)`` with IoU >= ``iou_min`` (Hungarian)."""
    if len(gt_xywh) == 0 or len(det_xywh) == 0:
        return []
    iou = iou_xywh(gt_xywh, det_xywh)
    r, c = linear_sum_assignment(-iou)
    return [
        (int(i), int(j), float(iou[i, j]))
        for i, j in zip(r, c, strict=True)
        if iou[i, j] >= iou_min
    ]


def evaluate_clip(
    clip: Clip,
    detector: Detector,
    *,
    all_frames: bool = False,
    iou_min: float = 0.3,
    seconds: Sequence[int] | None = None,
    tracker: MultiObjectTracker | None = None,
    calibrate: bool = False,
    self_calibrate: bool = False,
    selfcal_config: SelfCalConfig | None = None,
    structures: StructureMask | None = None,
) -> dict:
    """Detection precision/recall and geo error of a detector on a clip with ground truth.

    Frame ``i`` is stamped ``start + (i + 1) / fps`` and ground-truth second ``k`` is the
    frame stamped ``start + (k + 1)`` s, i.e. frame ``(k + 1) * fps - 1``: DeepSORVF, which
    wrote this format, numbers its output seconds from the first whole second after the
    start. Checked on clip-01: with this mapping the barge's detected box edges, fitted
    over all 250 frames, agree with the labelled edges to within 1 px (left and right
    edge alike), while one second earlier both are off by 5 px (the barge moves
    4.6 px/s). On clip-01 (250 frames) seconds 2..9 are in the video: 16 labelled boxes.

    :param seconds: ground-truth seconds to score; default every labelled second whose
        frame is in the video

    :param all_frames: run detector and tracker on every frame (scores still use the
        ground-truth frames only); else only on one frame per second
    :param calibrate: also report the geo error after refining heading, tilt and height
        (:func:`pipeline.core.camera.refine_pose`) on the AIS-matched detections of the
        other seconds (leave-one-second-out; the same vessels, so optimistic)
    :param self_calibrate: also run a :class:`~pipeline.core.camera.PoseCalibrator` through
        the frames run, in time order, fed with the frame's detections and the clip's AIS
        positions at the frame time only (no ground truth), and report the *prequential*
        geo error: each scored second's ground-truth-matched detections geo-referenced with
        the pose learnt from the earlier frames alone
    :param selfcal_config: the calibrator's settings (default :class:`SelfCalConfig`)
    :param structures: the camera's fixed structures: detections on them are left out
        before tracking and scoring, as :class:`FrameAnalyser` does, and listed under
        ``masked`` (with the ground-truth box they would have matched, if any)
    :return: a JSON-ready dict; ``unlabelled`` lists detections on scored frames that
        match no labelled box, ``unscored`` the detections on whole-second frames that
        have no ground truth at all (both for a person to check)
    """
    fps = clip.fps()
    step = int(round(fps))
    if seconds is None:
        det_file = _first(clip.root, "*_gt_detection.txt")
        if det_file is None:
            raise ConfigError(f"no *_gt_detection.txt in {clip.root}")
        labelled = clip.ground_truth(det_file, clip.gt_sensor[0], clip.gt_sensor[1])
        n_frames = clip.frame_count()
        seconds = [k for k in sorted(labelled) if (k + 1) * step - 1 < n_frames]
    if not seconds:
        raise ConfigError(f"no labelled second falls inside {clip.video}")
    gt_frames = {(k + 1) * step - 1: k for k in seconds}
    indices = None if all_frames else sorted({j * step - 1 for j in range(1, max(seconds) + 2)})
    if tracker is None:
        tracker = MultiObjectTracker(
            n_init=2 if not all_frames else 3, max_misses=3 if not all_frames else 25
        )
    tp = n_gt = n_det = 0
    geo_err: dict[int, list[float]] = {}
    row_err: dict[int, list[float]] = {}
    lever: dict[int, list[float]] = {}
    brg_err: list[float] = []
    pairs: list[tuple[int, int, float, float, float, float]] = []
    unlabelled: list[dict] = []
    unscored: list[dict] = []
    masked: list[dict] = []
    detections_out: list[dict] = []
    cam: CameraModel | None = None
    calibrator: PoseCalibrator | None = None
    self_err: dict[int, list[float]] = {}
    self_missing = 0
    self_trace: list[dict] = []
    t_cpu = 0.0
    n_run = 0
    for i, frame in clip.frames(indices):
        h, w = frame.shape[:2]
        if cam is None:
            cam = CameraModel.from_fvessel_params(
                clip.params, w, h, clip.gt_sensor[0], clip.gt_sensor[1]
            )
            det_name = _first(clip.root, "*_gt_detection.txt")
            if det_name is None:
                raise ConfigError(f"no *_gt_detection.txt in {clip.root}")
            gt_det = clip.ground_truth(det_name, w, h)
            fus_name = _first(clip.root, "*_gt_fusion.txt")
            gt_fus = clip.ground_truth(fus_name, w, h) if fus_name else {}
            if self_calibrate:
                calibrator = PoseCalibrator(cam, selfcal_config)
        t0 = time.process_time()
        dets = detector.detect(frame)
        t_ms = clip.start_t_ms + int(round((i + 1) * 1000.0 / fps))
        if structures is not None:
            dets, dropped = structures.split(dets, w, h)
            if i in gt_frames and len(dropped):
                frac, which = structures.coverage(dropped.boxes_xywh, w, h)
                g_all = gt_det.get(gt_frames[i], np.zeros((0, 5)))
                iou_gt = iou_xywh(dropped.boxes_xywh, g_all[:, 1:5]) if len(g_all) else None
                masked.extend(
                    {
                        "second": gt_frames[i],
                        "frame": i,
                        "box_px": [round(v, 1) for v in dropped.boxes_xywh[j].tolist()],
                        "score": round(float(dropped.scores[j]), 3),
                        "structure": str(which[j]),
                        "inside": round(float(frac[j]), 3),
                        "gt_iou": None if iou_gt is None else round(float(iou_gt[j].max()), 3),
                    }
                    for j in range(len(dropped))
                )
        ids = tracker.update(dets.boxes_xywh, dets.scores, t_ms / 1000.0)
        t_cpu += time.process_time() - t0
        n_run += 1
        # the pose learnt from the frames before this one (prequential)
        learnt = calibrator.model if calibrator is not None else None
        if calibrator is not None:
            ais_now = clip.ais_at(t_ms)
            ll_now = np.array(list(ais_now.values()), dtype=float).reshape(-1, 2)
            bx = dets.boxes_xywh
            changed = calibrator.update(
                t_ms,
                bx[:, 0] + bx[:, 2] / 2.0,
                bx[:, 1] + bx[:, 3],
                ll_now[:, 0],
                ll_now[:, 1],
                np.array(list(ais_now.keys()), dtype=np.int64),
            )
            if changed or i in gt_frames:
                m = calibrator.model
                self_trace.append(
                    {
                        "frame": i,
                        "t_ms": t_ms,
                        "changed": changed,
                        **_pose(m),
                        "pairs": calibrator.n_pairs,
                        "residual_px": _round(calibrator.residual_px or math.nan, 2),
                    }
                )
        if i not in gt_frames:
            if (i + 1) % step == 0:  # a whole second outside the ground truth
                unscored.extend(
                    {
                        "frame": i,
                        "t_ms": t_ms,
                        "box_px": [round(v, 1) for v in dets.boxes_xywh[j].tolist()],
                        "score": round(float(dets.scores[j]), 3),
                        "track_id": int(ids[j]),
                    }
                    for j in range(len(dets))
                )
            continue
        k = gt_frames[i]
        g = gt_det.get(k, np.zeros((0, 5)))
        boxes = dets.boxes_xywh
        geo = cam.pixel_to_geo(boxes[:, 0] + boxes[:, 2] / 2.0, boxes[:, 1] + boxes[:, 3])
        matches = _match(g[:, 1:5], boxes, iou_min)
        tp += len(matches)
        n_gt += len(g)
        n_det += len(boxes)
        matched_det = {j for _, j, _ in matches}
        ais = clip.ais_at(clip.start_t_ms + (k + 1) * 1000)
        fus = gt_fus.get(k, np.zeros((0, 5)))
        for gi, j, iou in matches:
            # which AIS vessel this ground-truth box is (same box in the fusion file)
            same = np.flatnonzero(np.all(np.abs(fus[:, 1:5] - g[gi, 1:5]) < 1e-6, axis=1))
            mmsi = int(fus[same[0], 0]) if len(same) else None
            err = b_err = ais_range = m_per_px = None
            ais_px = pixel_error = None
            u_d, v_d = float(boxes[j, 0] + boxes[j, 2] / 2), float(boxes[j, 1] + boxes[j, 3])
            if mmsi in ais:
                lon_a, lat_a = (np.array(v) for v in ais[mmsi])
                e_a, n_a = enu_from_geo(cam.lon_deg, cam.lat_deg, lon_a, lat_a)
                ais_range = float(np.hypot(e_a, n_a))
                ais_brg = math.degrees(math.atan2(float(e_a), float(n_a)))
                b_err = (float(geo.bearing_deg[j]) - ais_brg + 180.0) % 360.0 - 180.0
                brg_err.append(abs(b_err))
                pairs.append((k, mmsi, u_d, v_d, float(lon_a), float(lat_a)))
                if geo.hits_sea[j]:
                    e, n = enu_from_geo(geo.lon_deg[j], geo.lat_deg[j], lon_a, lat_a)
                    err = float(np.hypot(e, n))
                    geo_err.setdefault(mmsi, []).append(err)
                # the same error seen in the image: the waterline point against the AIS
                # position projected with the camera parameters, and what one pixel of
                # row is worth in range there (the error's lever)
                u_a, v_a, _ = cam.geo_to_pixel(lon_a.reshape(1), lat_a.reshape(1))
                ais_px = [round(float(u_a[0]), 1), round(float(v_a[0]), 1)]
                pixel_error = [round(u_d - float(u_a[0]), 1), round(v_d - float(v_a[0]), 1)]
                near = cam.pixel_to_geo(np.array([u_d, u_d]), np.array([v_d, v_d + 1.0]))
                m_per_px = float(near.range_m[0] - near.range_m[1])
                if math.isfinite(v_a[0]):
                    row_err.setdefault(mmsi, []).append(abs(v_d - float(v_a[0])))
                    lever.setdefault(mmsi, []).append(m_per_px)
                if learnt is not None:
                    gl = learnt.pixel_to_geo(np.array([u_d]), np.array([v_d]))
                    if gl.hits_sea[0]:
                        e, n = enu_from_geo(gl.lon_deg[0], gl.lat_deg[0], lon_a, lat_a)
                        self_err.setdefault(mmsi, []).append(float(np.hypot(e, n)[()]))
                    else:
                        self_missing += 1
            detections_out.append(
                {
                    "second": k,
                    "mmsi": mmsi,
                    "iou": round(iou, 3),
                    "box_px": [round(v, 1) for v in boxes[j].tolist()],
                    "score": round(float(dets.scores[j]), 3),
                    "track_id": int(ids[j]),
                    "range_m": _round(geo.range_m[j]),
                    "range_sigma_m": _round(geo.range_sigma_m[j]),
                    "bearing_deg": _round(geo.bearing_deg[j], 2),
                    "geo_error_m": None if err is None else round(err, 1),
                    "ais_px": ais_px,
                    "pixel_error_px": pixel_error,
                    "range_m_per_px": None if m_per_px is None else _round(m_per_px),
                    "ais_range_m": None if ais_range is None else round(ais_range, 1),
                    "bearing_error_deg": None if b_err is None else round(b_err, 2),
                }
            )
        for j in range(len(boxes)):
            if j in matched_det:
                continue
            unlabelled.append(
                {
                    "second": k,
                    "frame": i,
                    "box_px": [round(v, 1) for v in boxes[j].tolist()],
                    "score": round(float(dets.scores[j]), 3),
                    "cls": str(dets.class_names[j]),
                    "track_id": int(ids[j]),
                    "bearing_deg": _round(geo.bearing_deg[j], 2),
                    "range_m": _round(geo.range_m[j]),
                    "beyond_horizon": not bool(geo.hits_sea[j]),
                }
            )
    all_err = [e for v in geo_err.values() for e in v]
    extra: dict[str, object] = {}
    if calibrate and cam is not None and pairs:
        extra = _calibrated_geo_error(cam, np.array(pairs, dtype=float))
    if calibrator is not None:
        flat = [d for ds in self_err.values() for d in ds]
        m = calibrator.model
        extra["geo_error_median_m_selfcal"] = round(float(np.median(flat)), 1) if flat else None
        extra["geo_error_median_m_selfcal_by_mmsi"] = {
            str(k): round(float(np.median(v)), 1) for k, v in sorted(self_err.items())
        }
        extra["selfcal_scored"] = len(flat)
        extra["selfcal_beyond_horizon"] = self_missing
        extra["selfcal_pose"] = {
            **_pose(m),
            "residual_px": _round(calibrator.residual_px or math.nan, 2),
            "pose_updates": calibrator.n_pose_updates,
        }
        extra["selfcal_pairs"] = calibrator.n_pairs
        extra["selfcal_at_bounds"] = list(calibrator.at_bounds)
        extra["selfcal_trace"] = self_trace
    return {
        **extra,
        "clip": str(clip.root),
        "frames": "all" if all_frames else "one per second",
        "frames_run": n_run,
        "seconds": list(seconds),
        "iou_min": iou_min,
        "gt_boxes": n_gt,
        "detections": n_det,
        "true_positives": tp,
        "precision": round(tp / n_det, 4) if n_det else None,
        "recall": round(tp / n_gt, 4) if n_gt else None,
        "geo_error_median_m": round(float(np.median(all_err)), 1) if all_err else None,
        "geo_error_median_m_by_mmsi": {
            str(m): round(float(np.median(v)), 1) for m, v in sorted(geo_err.items())
        },
        "bearing_error_median_deg": round(float(np.median(brg_err)), 2) if brg_err else None,
        # the geo error seen in the image: rows between each matched detection's waterline
        # and its vessel's AIS position projected with the camera parameters (pixels), and
        # the range one row is worth at the detection (m): their product is the range error
        "row_error_median_px_by_mmsi": {
            str(m): round(float(np.median(v)), 1) for m, v in sorted(row_err.items())
        },
        "range_m_per_px_median_by_mmsi": {
            str(m): round(float(np.median(v)), 1) for m, v in sorted(lever.items())
        },
        "cpu_ms_per_frame": round(1000.0 * t_cpu / max(n_run, 1), 1),
        "track_ids_by_mmsi": _track_ids_by_mmsi(detections_out),
        "matched": detections_out,
        "unlabelled": unlabelled,
        # the unlabelled detections whose waterline is on the sea in front of the camera
        # (fusion uses these) and those beyond its horizon (published flagged, not fused)
        "unlabelled_on_water": sum(1 for u in unlabelled if not u["beyond_horizon"]),
        "unlabelled_beyond_horizon": sum(1 for u in unlabelled if u["beyond_horizon"]),
        "unscored": unscored,
        # detections left out on the camera's outlined structures, on scored frames
        "masked": masked,
        "masked_labelled": sum(1 for m in masked if (m["gt_iou"] or 0.0) >= iou_min),
    }


def _pose(cam: CameraModel) -> dict[str, float]:
    """A camera's pose for a report: heading and tilt (degrees), height (m), rounded."""
    return {
        "heading_deg": round(cam.heading_deg, 3),
        "tilt_deg": round(cam.tilt_deg, 3),
        "height_m": round(cam.height_m, 2),
    }


def _calibrated_geo_error(cam: CameraModel, pairs: np.ndarray) -> dict[str, object]:
    """Leave-one-second-out pose refinement on ``[second, mmsi, u, v, lon, lat]`` rows."""
    sec, mmsi, u, v, lon, lat = pairs.T
    errors: dict[int, list[float]] = {}
    for k in np.unique(sec):
        train, test = sec != k, sec == k
        if train.sum() < 2:
            continue
        fitted, _ = refine_pose(cam, u[train], v[train], lon[train], lat[train])
        g = fitted.pixel_to_geo(u[test], v[test])
        e, n = enu_from_geo(cam.lon_deg, cam.lat_deg, g.lon_deg, g.lat_deg)
        ea, na = enu_from_geo(cam.lon_deg, cam.lat_deg, lon[test], lat[test])
        for m, d in zip(mmsi[test], np.hypot(e - ea, n - na), strict=True):
            if np.isfinite(d):
                errors.setdefault(int(m), []).append(float(d))
    full, res = refine_pose(cam, u, v, lon, lat)
    flat = [d for ds in errors.values() for d in ds]
    return {
        "geo_error_median_m_calibrated": round(float(np.median(flat)), 1) if flat else None,
        "geo_error_median_m_calibrated_by_mmsi": {
            str(m): round(float(np.median(ds)), 1) for m, ds in sorted(errors.items())
        },
        "calibrated_pose": {
            **_pose(full),
            "rms_residual_px": round(float(np.sqrt(np.mean(res**2))), 2),
        },
    }


def _track_ids_by_mmsi(matched: list[dict]) -> dict[str, list[int]]:
    """Camera track ids given to each labelled vessel (one id each = no id switch)."""
    out: dict[str, set[int]] = {}
    for m in matched:
        if m["mmsi"] is not None and m["track_id"] >= 0:
            out.setdefault(str(m["mmsi"]), set()).add(m["track_id"])
    return {k: sorted(v) for k, v in sorted(out.items())}


def _round(x: float, nd: int = 1) -> float | None:
    return round(float(x), nd) if math.isfinite(float(x)) else None


def _first(root: Path, pattern: str) -> str | None:
    found = sorted(root.glob(pattern))
    return found[0].name if found else None


# --------------------------------------------------------------------------- benchmark
def bench_clip(clip: Clip, model_dir: Path | None, *, n_frames: int = 50, **dnn_kwargs) -> dict:
    """Frames per second per core of the detectors and of the whole analyser on a clip.

    The DNN detector is timed on both backends (``dnn`` = the one asked for, default
    ONNX Runtime; ``dnn_<other>``); the analyser runs with ``dnn``. Threads are fixed to
    one (``cv2.setNumThreads(1)``); CPU time of this process is measured, so other load
    on the machine does not inflate the figures.
    """
    cv2.setNumThreads(1)
    frames = [f for _, f in clip.frames(range(n_frames))]
    h, w = frames[0].shape[:2]
    cam = CameraModel.from_fvessel_params(clip.params, w, h, *clip.gt_sensor)
    out: dict[str, object] = {"frames": len(frames), "image": [w, h], "threads": 1}

    def timed(fn) -> tuple[float, float]:
        fn(frames[0])  # warm up
        c0, w0 = time.process_time(), time.perf_counter()
        for f in frames:
            fn(f)
        return (time.process_time() - c0) / len(frames), (time.perf_counter() - w0) / len(frames)

    detectors: dict[str, Detector] = {"motion": MotionDetector.for_camera(cam, warmup_frames=1)}
    backend = dnn_kwargs.pop("backend", "onnxruntime")
    if model_dir is not None:
        # ``dnn`` is the backend asked for; the other is timed beside it for comparison
        detectors["dnn"] = DnnDetector.from_dir(model_dir, backend=backend, **dnn_kwargs)
        other = next(b for b in DNN_BACKENDS if b != backend)
        detectors[f"dnn_{other}"] = DnnDetector.from_dir(model_dir, backend=other, **dnn_kwargs)
        out["dnn_backend"] = backend
    for name, det in detectors.items():
        cpu, wall = timed(det.detect)
        out[f"{name}_cpu_ms_per_frame"] = round(1000 * cpu, 2)
        out[f"{name}_wall_ms_per_frame"] = round(1000 * wall, 2)
        out[f"{name}_fps_per_core"] = round(1.0 / cpu, 1)
        out[f"{name}_cameras_at_5fps_per_core"] = int(1.0 / cpu // 5)
    primary = detectors.get("dnn", detectors["motion"])
    analyser = FrameAnalyser("bench", cam, primary, MultiObjectTracker(), None)
    t = [clip.start_t_ms]

    def analyse(f: np.ndarray) -> None:
        t[0] += 200
        analyser.analyse(f, t[0])

    cpu, wall = timed(analyse)
    out["analyser_detector"] = "dnn" if "dnn" in detectors else "motion"
    with tempfile.TemporaryDirectory() as tmp:
        analyser = FrameAnalyser(
            "bench", cam, primary, MultiObjectTracker(), DirectoryEvidenceStore(tmp)
        )
        cpu_ev, _ = timed(analyse)
    out["analyser_with_evidence_cpu_ms_per_frame"] = round(1000 * cpu_ev, 2)
    out["analyser_cpu_ms_per_frame"] = round(1000 * cpu, 2)
    out["analyser_fps_per_core"] = round(1.0 / cpu, 1)
    out["cameras_at_5fps_per_core"] = int(1.0 / cpu // 5)
    out["capture_to_topic_p95_ms"] = None
    return out


# --------------------------------------------------------------------------- CLI
def _shared_dir() -> Path:
    return Path(os.environ.get("SHOREWATCH_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def _group(
    sub: argparse._SubParsersAction, name: str, help_text: str
) -> argparse._SubParsersAction:
    """The sub-command group ``name`` (``eval``, ``bench``), created once and shared."""
    parser = sub.choices.get(name)
    if parser is None:
        parser = sub.add_parser(name, help=help_text)
        # not required: another module may give the group options of its own
        parser.set_defaults(func=lambda _args: parser.print_help() or 2)
        return parser.add_subparsers(dest=f"{name}_what", required=False, metavar="WHAT")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest=f"{name}_what", required=False, metavar="WHAT")


def _parse_tiles(text: str | None) -> tuple[tuple[float, float, float, float], ...]:
    if not text:
        return ((0.0, 0.0, 1.0, 1.0),)
    tiles: list[tuple[float, float, float, float]] = []
    for part in text.split(";"):
        vals = [float(v) for v in part.split(",")]
        if len(vals) != 4:
            raise ConfigError(f"a tile is x,y,w,h fractions, got {part!r}")
        tiles.append((vals[0], vals[1], vals[2], vals[3]))
    return tuple(tiles)


def _detector_from_args(args: argparse.Namespace, cam: CameraModel | None = None) -> Detector:
    if args.model_dir and str(args.model_dir).lower() != "none":
        return DnnDetector.from_dir(
            args.model_dir,
            args.model_name,
            input_size=args.input_size,
            conf=args.conf,
            tiles=_parse_tiles(args.tiles),
            backend=args.backend,
        )
    if cam is None:
        return MotionDetector()
    return MotionDetector.for_camera(cam)


def _add_detector_args(p: argparse.ArgumentParser, shared: Path) -> None:
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


def _cmd_eval(args: argparse.Namespace) -> int:
    clip = Clip(args.clip)
    cam = None
    if str(args.model_dir).lower() == "none":
        _, frame = next(clip.frames([0]))
        cam = CameraModel.from_fvessel_params(clip.params, frame.shape[1], frame.shape[0])
    detector = _detector_from_args(args, cam)
    selfcal_config = SelfCalConfig()
    if args.selfcal_height_ratio_max is not None:
        selfcal_config = replace(selfcal_config, height_ratio_max=args.selfcal_height_ratio_max)
    structures_path = _structures_path(args.structures, clip)
    structures = None
    if structures_path is not None:
        outlines, sw, sh = read_structures(structures_path)
        structures = StructureMask(outlines, sw, sh, overlap=args.structure_overlap)
    res = evaluate_clip(
        clip,
        detector,
        all_frames=args.all_frames,
        iou_min=args.iou,
        calibrate=args.calibrate,
        self_calibrate=args.self_calibrate,
        selfcal_config=selfcal_config,
        structures=structures,
    )
    res["structures"] = (
        None
        if structures is None
        else {
            "file": str(structures_path),
            "names": structures.names.tolist(),
            "overlap": structures.overlap,
        }
    )
    res["detector"] = (
        {"kind": type(detector).__name__}
        if cam is not None
        else {
            "kind": type(detector).__name__,
            "model": args.model_name,
            "input_size": args.input_size,
            "conf": args.conf,
            "backend": args.backend,
            "tiles": [list(t) for t in _parse_tiles(args.tiles)],
        }
    )
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"clip {res['clip']}  ({res['frames']}, {res['frames_run']} frames run)")
    print(f"detector {res['detector']}")
    print(
        f"precision {res['precision']}  recall {res['recall']}  "
        f"(IoU>={res['iou_min']}, {res['true_positives']}/{res['gt_boxes']} GT boxes, "
        f"{res['detections']} detections)"
    )
    print(
        f"geo_error_median_m {res['geo_error_median_m']}  by MMSI {res['geo_error_median_m_by_mmsi']}"
    )
    print(
        "  in the image: rows between the waterline and the AIS position projected with the "
        f"camera parameters, median by MMSI {res['row_error_median_px_by_mmsi']} px; one row "
        f"is worth {res['range_m_per_px_median_by_mmsi']} m of range there"
    )
    if "calibrated_pose" in res:
        print(
            f"geo_error_median_m_calibrated {res['geo_error_median_m_calibrated']}  by MMSI "
            f"{res['geo_error_median_m_calibrated_by_mmsi']}  pose {res['calibrated_pose']}"
        )
    if "selfcal_pose" in res:
        print(
            f"geo_error_median_m_selfcal {res['geo_error_median_m_selfcal']}  by MMSI "
            f"{res['geo_error_median_m_selfcal_by_mmsi']}  ({res['selfcal_scored']} scored, "
            f"{res['selfcal_beyond_horizon']} beyond the learnt horizon)  "
            f"pose {res['selfcal_pose']}  pairs {res['selfcal_pairs']}"
        )
        if res["selfcal_at_bounds"]:
            print(
                f"  the learnt {' and '.join(res['selfcal_at_bounds'])} sits on its bound "
                "(see --selfcal-height-ratio-max)"
            )
    print(f"track ids by MMSI {res['track_ids_by_mmsi']}")
    print(
        f"unlabelled detections (check by eye): {res['unlabelled_on_water']} on the water, "
        f"{res['unlabelled_beyond_horizon']} beyond the horizon"
    )
    for u in res["unlabelled"]:
        print(
            f"  s={u['second']:>2} frame={u['frame']:>3} box={u['box_px']} score={u['score']} "
            f"bearing={u['bearing_deg']} range_m={u['range_m']}"
        )
    if res["structures"] is None:
        print("structures: none outlined (--structures none)")
    else:
        print(
            f"left out on outlined structures ({res['structures']['file']}): "
            f"{len(res['masked'])} detections, {res['masked_labelled']} of them on a labelled "
            "vessel (check by eye)"
        )
        for u in res["masked"]:
            print(
                f"  s={u['second']:>2} frame={u['frame']:>3} box={u['box_px']} score={u['score']} "
                f"on {u['structure']!r} ({u['inside']:.0%} inside)"
            )
    print("detections on whole-second frames without ground truth (check by eye):")
    for u in res["unscored"]:
        print(f"  frame={u['frame']:>3} box={u['box_px']} score={u['score']}")
    return 0


def _structures_path(option: str | None, clip: Clip) -> Path | None:
    """The structures file of ``eval camera``: ``none``, a path, or (default) the clip's own
    ``structures.yaml``, else the repository's ``sites/clips/<clip name>.structures.yaml``."""
    if option is not None:
        return None if option.lower() == "none" else Path(option)
    for p in (
        clip.root / "structures.yaml",
        CLIP_STRUCTURES_DIR / f"{clip.root.name}.structures.yaml",
    ):
        if p.is_file():
            return p
    return None


def _cmd_bench(args: argparse.Namespace) -> int:
    clip = Clip(args.clip)
    model_dir = None if str(args.model_dir).lower() == "none" else Path(args.model_dir)
    res = bench_clip(
        clip,
        model_dir,
        n_frames=args.frames,
        name=args.model_name,
        input_size=args.input_size,
        conf=args.conf,
        tiles=_parse_tiles(args.tiles),
        backend=args.backend,
    )
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k}: {v}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``eval camera`` and ``bench camera``."""
    shared = _shared_dir()
    ev = _group(sub, "eval", "evaluate a component on real recorded data").add_parser(
        "camera", help="detector + tracker on a real clip against its ground truth"
    )
    _add_detector_args(ev, shared)
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
        f"(default {SelfCalConfig().height_ratio_max})",
    )
    ev.set_defaults(func=_cmd_eval)
    be = _group(sub, "bench", "measure throughput").add_parser(
        "camera", help="frames/s per core of the camera detectors and analyser"
    )
    _add_detector_args(be, shared)
    be.add_argument("--frames", type=int, default=50, help="frames to time")
    be.set_defaults(func=_cmd_bench)
