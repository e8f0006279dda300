"""Looped real clips for the camera fleet benchmark: frames held in memory, played by
threads that behave like :class:`connectors.rtsp.FrameReader`.

- ``busy``: clip-01 as recorded (a barge crossing, a vessel near the far bank, real water).
- ``quiet``: the same real frames with every boat *frozen*: the pixels inside the boxes
  where boats are (the labelled ones over the whole clip, widened, and whatever the
  detector finds on the first frame), and the AIS labels the clip has burned in over the
  water, are taken from the first frame in every frame, so the
  water keeps its real ripples, glare and compression noise while the boats lie still,
  as moored boats do.
- ``still``: one frame of the clip held still with sensor noise (grey levels, sigma 2)
  and a slow brightness drift: a segment where nothing moves at all.

Frames are taken at the camera rate from the 25 fps clip (every fifth frame at 5 fps),
so a camera plays the clip's real motion at its real speed. Decoding is done once, up
front: the benchmark measures analysis, not video decoding (see ``docs/camera-fleet.md``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from connectors.rtsp import Frame, wall_ms
from pipeline.errors import ConfigError
from pipeline.tools.eval_camera import Clip
from schemas import records

__all__ = [
    "ClipFrames",
    "MemoryReader",
    "clip_camera",
    "load_clip_frames",
    "memory_reader_factory",
]


@dataclass
class ClipFrames:
    """The frames of one variant, at the camera rate.

    :param frames: BGR images, shared by every camera that plays them (never written)
    :param clip_index: index of each frame in the original 25 fps clip
    :param fps: frames per second they are played at
    """

    name: str
    frames: list[np.ndarray]
    clip_index: list[int]
    fps: float
    boxes_xywh: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))


def clip_camera(clip_dir: Any, camera_id: str, *, width: int = 888, height: int = 500, **kw: Any):
    """A :class:`pipeline.site.CameraConfig` with the clip's own camera (``camera_para.txt``:
    position, heading, tilt, height and intrinsics) at ``width`` x ``height``; ``kw`` are
    further fields (e.g. ``analysis``)."""
    from pipeline.core.camera import CameraModel
    from pipeline.site import CameraConfig

    clip = Clip(clip_dir)
    m = CameraModel.from_fvessel_params(clip.params, width, height, *clip.gt_sensor)
    return CameraConfig(
        id=camera_id,
        lon=m.lon_deg,
        lat=m.lat_deg,
        height_m=m.height_m,
        heading_deg=m.heading_deg,
        tilt_deg=m.tilt_deg,
        fx=m.fx,
        fy=m.fy,
        cx=m.cx,
        cy=m.cy,
        image_width=width,
        image_height=height,
        **kw,
    )


def _boat_boxes(clip: Clip, width: int, height: int, extra: np.ndarray | None) -> np.ndarray:
    """Boxes (pixels, ``x, y, w, h``) covering every boat of the clip: the union over the
    clip of each labelled vessel's boxes, plus ``extra`` (detections), widened by 25 %."""
    from pipeline.tools.eval_camera import _first

    boxes = []
    name = _first(clip.root, "*_gt_tracking.txt") or _first(clip.root, "*_gt_detection.txt")
    if name is not None:
        gt = clip.ground_truth(name, width, height)
        # the seconds this video holds (the labels cover a longer recording)
        last_s = clip.frame_count() / clip.fps()
        held = [v for k, v in gt.items() if k <= last_s + 1]
        rows = np.vstack(held) if held else np.zeros((0, 5))
        for vid in np.unique(rows[:, 0]):
            b = rows[rows[:, 0] == vid, 1:5]
            x0, y0 = b[:, 0].min(), b[:, 1].min()
            x1, y1 = (b[:, 0] + b[:, 2]).max(), (b[:, 1] + b[:, 3]).max()
            boxes.append([x0, y0, x1 - x0, y1 - y0])
    if extra is not None and len(extra):
        boxes.extend(np.asarray(extra, dtype=float).tolist())
    b = np.array(boxes, dtype=float).reshape(-1, 4)
    pad = b[:, 2:] * 0.25
    return np.column_stack([b[:, :2] - pad, b[:, 2:] + 2 * pad])


def _overlay_mask(frames: Sequence[np.ndarray], min_grey: float = 20.0) -> np.ndarray:
    """Pixels of graphics burned into the video after its first frame (clip-01 draws AIS
    labels and leader lines over the water from about 2.8 s on): where the median of the
    later half of the frames differs from the first frame by ``min_grey`` grey levels or
    more, widened by 3 px. Ripples and glare come and go and leave the median alone."""
    import cv2

    grey = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY).astype(np.int16) for f in frames]
    late = np.median(np.stack(grey[len(grey) // 2 :]), axis=0)
    mask = (np.abs(late - grey[0]) >= min_grey).astype(np.uint8)
    return cv2.dilate(mask, np.ones((7, 7), np.uint8)).astype(bool)


def load_clip_frames(
    clip_dir: Any,
    *,
    fps: float = 5.0,
    detector: Any = None,
    still_frames: int = 25,
    seed: int = 0,
) -> dict[str, ClipFrames]:
    """The ``busy``, ``quiet`` and ``still`` variants of a clip at ``fps``.

    :param detector: finds the boats of the first frame that the labels miss (any
        :class:`pipeline.vision.detectors.Detector`); ``None``: labelled boats only
    :param still_frames: length of the ``still`` loop, frames
    """
    clip = Clip(clip_dir)
    clip_fps = clip.fps()
    step = max(1, int(round(clip_fps / fps)))
    picked = [(i, f) for i, f in clip.frames() if i % step == step - 1]
    if not picked:
        raise ConfigError(f"no frames in {clip.video}")
    index = [i for i, _ in picked]
    busy = [f for _, f in picked]
    h, w = busy[0].shape[:2]
    extra = None if detector is None else detector.detect(busy[0]).boxes_xywh
    boxes = _boat_boxes(clip, w, h, extra)
    keep = np.zeros((h, w), dtype=bool)
    for x, y, bw, bh in boxes:
        x0, y0 = max(0, int(x)), max(0, int(y))
        keep[y0 : min(h, int(np.ceil(y + bh))), x0 : min(w, int(np.ceil(x + bw)))] = True
    first = busy[0]
    keep |= _overlay_mask(busy)
    quiet = [np.where(keep[:, :, None], first, f) for f in busy]
    rng = np.random.default_rng(seed)
    still = []
    for k in range(still_frames):
        drift = 3.0 * np.sin(2 * np.pi * k / still_frames)  # grey levels
        noisy = first.astype(np.float32) + drift + rng.normal(0.0, 2.0, first.shape)
        still.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return {
        "busy": ClipFrames("busy", busy, index, fps, boxes),
        "quiet": ClipFrames("quiet", quiet, index, fps, boxes),
        "still": ClipFrames("still", still, [index[0]] * len(still), fps, boxes),
    }


class MemoryReader:
    """Plays a :class:`ClipFrames` loop like a camera: a thread publishes one frame every
    ``1 / fps`` s as the newest frame, stamped with the wall clock at that moment.

    Takes :class:`connectors.rtsp.FrameReader`'s arguments (``camera_id, source, report,
    on_frame``); ``source`` is ignored. ``played`` maps each frame's capture time (ms) to
    its index in the original clip, for scoring.
    """

    def __init__(
        self,
        camera_id: str,
        source: str,
        report: Callable[[msgspec.Struct], None] | None = None,
        *,
        clip: ClipFrames,
        start_frame: int = 0,
        on_frame: Callable[[Frame], None] | None = None,
        status_interval_s: float = 5.0,
    ) -> None:
        self.camera_id = camera_id
        self.source = source
        self.clip = clip
        self.report = report or (lambda record: None)
        self.on_frame = on_frame
        self.status_interval_s = status_interval_s
        self._pos = int(start_frame) % len(clip.frames)
        self._latest: Frame | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = 0
        self.status = "offline"
        self.fps: float | None = None
        self.last_frame_t_ms: int | None = None
        self.played: dict[int, int] = {}

    def _status(self, status: str, reason: str | None) -> None:
        self.status = status
        self.report(
            records.CameraStatus(
                camera_id=self.camera_id,
                t_ms=wall_ms(),
                status=status,  # type: ignore[arg-type]
                reason=reason,
                fps=None if self.fps is None else round(self.fps, 2),
                last_frame_t_ms=self.last_frame_t_ms,
            )
        )

    def start(self) -> MemoryReader:
        self._thread = threading.Thread(target=self._run, name=f"mem-{self.camera_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self, join_timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(join_timeout_s)

    def latest(self) -> Frame | None:
        with self._lock:
            return self._latest

    def _run(self) -> None:
        period_s = 1.0 / self.clip.fps
        next_due = time.monotonic()
        window_start, window_n = next_due, 0
        self._status("online", None)
        while not self._stop.is_set():
            t_ms = wall_ms()
            self._seq += 1
            frame = Frame(self.clip.frames[self._pos], t_ms, self._seq)
            self.played[t_ms] = self.clip.clip_index[self._pos]
            self._pos = (self._pos + 1) % len(self.clip.frames)
            with self._lock:
                self._latest = frame
            self.last_frame_t_ms = t_ms
            window_n += 1
            if self.on_frame is not None:
                try:
                    self.on_frame(frame)
                except Exception:  # noqa: BLE001 - the event loop may be closing
                    pass
            now = time.monotonic()
            if now - window_start >= self.status_interval_s:
                self.fps = window_n / (now - window_start)
                window_start, window_n = now, 0
                self._status("online", None)
            next_due += period_s
            delay = next_due - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_due = time.monotonic()  # late: carry on from now (no burst)
        self._status("offline", "stopped")


def memory_reader_factory(
    plan: dict[str, tuple[ClipFrames, int]], readers: dict[str, MemoryReader] | None = None
) -> Callable[..., MemoryReader]:
    """A ``reader_factory`` for :class:`connectors.camera.CameraWorker`: camera id ->
    ``(variant, start_frame)``; the readers made are also put in ``readers``."""

    def make(
        camera_id: str,
        source: str,
        report: Callable[[msgspec.Struct], None] | None = None,
        *,
        on_frame: Callable[[Frame], None] | None = None,
        **kwargs: Any,
    ) -> MemoryReader:
        clip, start = plan[camera_id]
        r = MemoryReader(
            camera_id, source, report, clip=clip, start_frame=start, on_frame=on_frame, **kwargs
        )
        if readers is not None:
            readers[camera_id] = r
        return r

    return make


def variant_names(n_busy: int, n_cameras: int, quiet_kinds: Sequence[str] = ("quiet", "still")):
    """The variant of each of ``n_cameras`` cameras: ``n_busy`` busy, the rest alternating
    between the quiet kinds."""
    return [
        "busy" if i < n_busy else quiet_kinds[(i - n_busy) % len(quiet_kinds)]
        for i in range(n_cameras)
    ]
