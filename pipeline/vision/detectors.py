"""Vessel detectors on one frame: the DNN (Yolo-Fastest on ONNX Runtime or OpenCV) and a motion detector."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from pipeline.core.camera import (
    CameraModel,
)
from pipeline.errors import ConfigError
from pipeline.vision.darknet import DarknetOnnx
from pipeline.vision.frames import check_frame

#: inference backends of :class:`DnnDetector`
DNN_BACKENDS = ("onnxruntime", "opencv")


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
        :mod:`pipeline.vision.darknet`, ~2.5x faster on one core) or ``"opencv"`` (OpenCV's own
        Darknet importer, the reference the conversion is tested against)
    :param threads: ONNX Runtime threads per detector (OpenCV's are set process-wide
        with ``cv2.setNumThreads``)
    :param execution_provider: ONNX Runtime provider: ``cpu`` (default), ``cuda`` or
        ``tensorrt``, falling back to the CPU (with a warning) where it is not available
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
        execution_provider: str = "cpu",
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
                cfg_path,
                weights_path,
                self.input_size,
                threads=threads,
                cfg_text=cfg_text,
                execution_provider=execution_provider,
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
        return self._boxes(out, image.shape[0], image.shape[1])

    def _boxes(self, out: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Network rows of an ``h`` x ``w`` image to boxes (pixels), scores, class ids."""
        # columns: cx, cy, w, h (fractions), objectness, then objectness x class prob
        cls_scores = out[:, 5 + self.class_ids]
        best = cls_scores.argmax(axis=1)
        score = cls_scores[np.arange(len(out)), best]
        keep = score >= self.conf
        b = out[keep, :4] * np.array([w, h, w, h], dtype=float)
        b[:, :2] -= b[:, 2:] / 2.0
        return b, score[keep], self.class_ids[best[keep]]

    def _tiles(self, fw: int, fh: int) -> list[tuple[int, int, int, int]]:
        """The tiles of a ``fw`` x ``fh`` frame as ``(x0, y0, x1, y1)`` pixels."""
        out = []
        for tx, ty, tw, th in self.tiles:
            x0, y0 = int(round(tx * fw)), int(round(ty * fh))
            x1, y1 = min(fw, int(round((tx + tw) * fw))), min(fh, int(round((ty + th) * fh)))
            out.append((x0, y0, x1, y1))
        return out

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        """Boxes of the configured classes, after NMS over all tiles."""
        frame = check_frame(frame_bgr)
        fh, fw = frame.shape[:2]
        parts = []
        for x0, y0, x1, y1 in self._tiles(fw, fh):
            b, s, c = self._run(frame[y0:y1, x0:x1])
            parts.append((b + np.array([x0, y0, 0, 0], dtype=float), s, c))
        return self._merge(parts, fw, fh)

    def detect_batch(self, frames_bgr: Sequence[np.ndarray]) -> list[Detections]:
        """:meth:`detect` of several frames (e.g. of many cameras) in one network run.

        With ONNX Runtime every tile of every frame goes into one batch; the OpenCV
        backend runs them one by one. Each result is the same as :meth:`detect`'s.

        :raises FrameError: a frame that fails :func:`check_frame` (none is analysed)
        """
        frames = [check_frame(f) for f in frames_bgr]
        if self.onnx is None or not frames:
            return [self.detect(f) for f in frames]
        crops, where = [], []
        for i, f in enumerate(frames):
            fh, fw = f.shape[:2]
            for x0, y0, x1, y1 in self._tiles(fw, fh):
                crops.append(f[y0:y1, x0:x1])
                where.append((i, x0, y0))
        blob = cv2.dnn.blobFromImages(crops, 1.0 / 255.0, self.input_size, swapRB=True, crop=False)
        outputs = self.onnx.forward(blob)
        parts: list[list] = [[] for _ in frames]
        for k, (i, x0, y0) in enumerate(where):
            b, s, c = self._boxes(self.onnx.decode(outputs, k), *crops[k].shape[:2])
            parts[i].append((b + np.array([x0, y0, 0, 0], dtype=float), s, c))
        return [self._merge(p, f.shape[1], f.shape[0]) for p, f in zip(parts, frames, strict=True)]

    def _merge(
        self, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], fw: int, fh: int
    ) -> Detections:
        """The tiles' boxes (frame pixels) clipped to the frame, NMS, containment."""
        boxes, scores, cls = zip(*parts, strict=True) if parts else ((), (), ())
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
        self._mask = water_region_mask(
            height, width, self.horizon_v, self.water_mask, self.horizon_margin_px
        )
        return self._mask

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


def water_region_mask(
    height: int,
    width: int,
    horizon_v: float | Callable[[np.ndarray], np.ndarray] | None = None,
    water_mask: np.ndarray | None = None,
    horizon_margin_px: float = 2.0,
) -> np.ndarray:
    """The ``uint8`` mask (255 = water) of a ``height`` x ``width`` frame: below the horizon
    row (plus ``horizon_margin_px``) and inside the ``water_mask`` polygon, pixels.

    :param horizon_v: horizon row, pixels: a number, a function of the column, or ``None``
    :param water_mask: ``(K, 2)`` polygon ``u, v`` in pixels of this frame; ``None`` = all
    """
    mask = np.full((height, width), 255, dtype=np.uint8)
    if horizon_v is not None:
        cols = np.arange(width, dtype=float) + 0.5
        hv = horizon_v(cols) if callable(horizon_v) else np.full(width, horizon_v)
        hv = np.nan_to_num(np.asarray(hv, dtype=float), nan=float(height)) + horizon_margin_px
        rows = np.arange(height, dtype=float)[:, None] + 0.5
        mask[rows < hv[None, :]] = 0
    if water_mask is not None:
        poly = np.zeros((height, width), dtype=np.uint8)
        cv2.fillPoly(poly, [np.round(np.asarray(water_mask)).astype(np.int32)], 255)
        mask &= poly
    return mask
