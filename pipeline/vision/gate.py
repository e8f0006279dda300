"""The change test of adaptive analysis on decoded frames (adapter of
:class:`pipeline.core.adaptive.ChangeGate`).

Each frame is shrunk by a whole factor to about ``downscale_width_px`` wide (a block
mean, under 1 ms for 888 x 500 on one core) and turned grey; the water region of the camera (below the
horizon, inside its ``water_mask``) is shrunk the same way. The core compares the small
image with its running background.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

from pipeline.core.adaptive import AnalysisPolicy, ChangeGate
from pipeline.vision.detectors import water_region_mask

__all__ = ["FrameGate"]


class FrameGate:
    """Whether a camera's water changed, one full-size BGR frame at a time.

    :param policy: the camera's :class:`AnalysisPolicy`
    :param horizon_v: horizon row in pixels of the full frame: a number, a function of the
        column (e.g. :meth:`pipeline.core.camera.CameraModel.horizon_v`) or ``None``
    :param water_mask: ``(K, 2)`` water polygon in pixels of the configured image size
    :param mask_size: ``(width, height)`` the ``water_mask`` refers to (default: the frame's)
    """

    def __init__(
        self,
        policy: AnalysisPolicy,
        *,
        horizon_v: float | Callable[[np.ndarray], np.ndarray] | None = None,
        water_mask: Sequence[Sequence[float]] | np.ndarray | None = None,
        mask_size: tuple[int, int] | None = None,
    ) -> None:
        self.policy = policy
        self.horizon_v = horizon_v
        self.water_mask = None if water_mask is None else np.asarray(water_mask, dtype=float)
        self.mask_size = mask_size
        self._frame_shape: tuple[int, int] | None = None
        self._small_wh: tuple[int, int] = (0, 0)
        self._crop: tuple[int, int] = (0, 0)
        self.gate = ChangeGate(policy)

    def _setup(self, h: int, w: int) -> None:
        """Small-image size and water mask for ``h`` x ``w`` frames."""
        # a whole shrink factor: OpenCV's area interpolation is then a plain block mean,
        # several times faster than at a fractional ratio
        k = max(1, w // self.policy.downscale_width_px)
        sw, sh = max(1, w // k), max(1, h // k)
        poly = self.water_mask
        if poly is not None and self.mask_size is not None:
            poly = poly * np.array([w / self.mask_size[0], h / self.mask_size[1]])
        full = water_region_mask(h, w, self.horizon_v, poly)[: sh * k, : sw * k]
        small = cv2.resize(full, (sw, sh), interpolation=cv2.INTER_AREA) >= 128
        if not small.any():  # no water in view: watch the whole image rather than nothing
            small[:] = True
        self._frame_shape, self._small_wh, self._crop = (h, w), (sw, sh), (sh * k, sw * k)
        self.gate = ChangeGate(self.policy, small)

    def small_grey(self, frame_bgr: np.ndarray) -> np.ndarray:
        """The frame shrunk to the gate's size, grey ``uint8``."""
        h, w = frame_bgr.shape[:2]
        if self._frame_shape != (h, w):
            self._setup(h, w)
        ch, cw = self._crop
        small = cv2.resize(frame_bgr[:ch, :cw], self._small_wh, interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)

    def changed(self, frame_bgr: np.ndarray) -> bool:
        """Run the change test on one frame (and learn it into the background)."""
        small = self.small_grey(frame_bgr)  # first: it may set up a new gate
        return self.gate.changed(small)

    @property
    def last_fraction(self) -> float:
        """Share of the water that changed in the last frame, 0..1."""
        return self.gate.last_fraction
