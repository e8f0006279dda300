"""Fixed structures (bridges, piers, towers) left out of a camera's detections."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import shapely

from pipeline.errors import ConfigError
from pipeline.site import Structure
from pipeline.vision.detectors import Detections


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
