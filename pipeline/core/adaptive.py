"""Adaptive analysis of one camera: a cheap change test on every frame, the DNN only when
something happens or at a slow keep-alive rate.

Two pieces, both pure (time is passed in, images arrive already downscaled):

- :class:`ChangeGate` keeps a running background of a small grey image of the water
  (the camera's water region, downscaled to ~160 px wide by the adapter) with a per-pixel
  noise estimate, and says which share of the water changed in a frame. Pixels that
  changed are not learnt into the background (a vessel that moves slowly keeps standing
  out), except very slowly (a boat that moors is absorbed after ``1 / absorb_alpha`` frames,
  100 s at 5 fps by default); a change
  of the whole scene's brightness (cloud, auto exposure) is taken out by subtracting the
  median difference.
- :class:`AnalysisScheduler` turns the change test, what the last analysis found and any
  active cue into a decision per frame: analyse now or not, and why. Its rate is a
  ladder: ``max_fps`` while a cue is active or a target is nearer the shore than
  ``near_shore_m``; ``change_fps`` for ``hold_s`` after the water changed; otherwise one
  frame every ``keepalive_s``. Every frame seen is counted under the reason it was or
  was not analysed. Each camera's keep-alive grid is shifted by its own phase (a
  fraction of ``keepalive_s`` derived from the camera id), so a fleet started together
  does not send all its keep-alive frames to the batched detector in the same instant
  (which queued them behind each other: p95 latency 0.6 s at 20 cameras instead of
  0.15 s).

Background subtraction on its own is a poor *detector* on water (wakes, glare); here it
only decides when the detector runs, and the keep-alive bounds how long a target that
the change test misses can stay unseen.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

__all__ = [
    "ANALYSED_REASONS",
    "SKIPPED_REASONS",
    "AnalysisPolicy",
    "AnalysisScheduler",
    "ChangeGate",
    "keepalive_phase",
    "parse_policy",
]

#: why a frame was analysed: the first frame, a cue, a target near the shore, a change of
#: the water, the keep-alive, or the adaptive policy is off (every frame up to ``max_fps``)
ANALYSED_REASONS = ("start", "cue", "target_near", "change", "keepalive", "fixed_rate")
#: why a frame was not analysed: quiet scene (nothing due yet), or the raised rate's
#: period has not passed since the last analysis
SKIPPED_REASONS = ("quiet", "rate")


@dataclass(frozen=True, slots=True)
class AnalysisPolicy:
    """How often one camera's frames go to the detector (the ``analysis`` section of a
    camera in ``cameras.yaml``).

    :param adaptive: ``False`` analyses every frame up to the ingest's ``max_fps``
    :param keepalive_s: longest time between two analyses of a quiet scene, s
    :param change_fps: analysis rate after the water changed, frames/s (capped by
        ``max_fps``)
    :param hold_s: how long a raised rate lasts after the change, target or cue that
        raised it, s
    :param near_shore_m: a detection nearer than this to the camera (its ``range_m``)
        raises the rate to ``max_fps``, m
    :param downscale_width_px: width of the grey image the change test runs on, pixels
    :param change_sigma: a pixel changed when it differs from the background by more than
        this many times its noise (standard deviation)
    :param change_min_grey: ... and by more than this many grey levels (0..255)
    :param change_min_fraction: the water changed when at least this share of its pixels
        changed
    :param background_alpha: background and noise learning rate per frame
    :param absorb_alpha: learning rate of changed pixels (a moored boat joins the
        background at about ``1 / absorb_alpha`` frames)
    :param event_driven: no continuous decode: the stream is opened when the camera raises
        an analytics event (ONVIF line crossing, intrusion, motion) or a cue arrives, and
        analysed at ``max_fps`` until ``event_hold_s`` after the last one
    :param event_hold_s: how long the stream stays open after an event or cue, s
    """

    adaptive: bool = True
    keepalive_s: float = 5.0
    change_fps: float = 2.0
    hold_s: float = 10.0
    near_shore_m: float = 300.0
    downscale_width_px: int = 160
    change_sigma: float = 4.0
    change_min_grey: float = 10.0
    change_min_fraction: float = 0.002
    background_alpha: float = 0.05
    absorb_alpha: float = 0.002
    event_driven: bool = False
    event_hold_s: float = 20.0


_POSITIVE = (
    "keepalive_s",
    "change_fps",
    "hold_s",
    "near_shore_m",
    "change_sigma",
    "background_alpha",
    "event_hold_s",
)


def parse_policy(raw: Any) -> AnalysisPolicy:
    """An :class:`AnalysisPolicy` from a mapping (``cameras.yaml``'s ``analysis``).

    >>> parse_policy({"keepalive_s": 10}).keepalive_s
    10.0

    :raises ValueError: not a mapping, an unknown key, or a value of the wrong type or range
    """
    if not isinstance(raw, dict):
        raise ValueError(f"must be a mapping, got {type(raw).__name__}")
    known = {f.name: f for f in fields(AnalysisPolicy)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ValueError(f"unknown keys {unknown}; known: {sorted(known)}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("adaptive", "event_driven"):
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false, got {value!r}")
            out[key] = value
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"{key} must be a number, got {value!r}")
        if key == "downscale_width_px":
            if int(value) != value or not 16 <= value <= 1024:
                raise ValueError(f"{key} must be an integer in [16, 1024], got {value!r}")
            out[key] = int(value)
            continue
        if key in _POSITIVE and value <= 0:
            raise ValueError(f"{key} must be positive, got {value!r}")
        if value < 0:
            raise ValueError(f"{key} must not be negative, got {value!r}")
        if key in ("background_alpha", "absorb_alpha", "change_min_fraction") and value > 1:
            raise ValueError(f"{key} must be at most 1, got {value!r}")
        out[key] = float(value)
    return AnalysisPolicy(**out)


class ChangeGate:
    """Which share of the water changed in a frame, against a running background.

    :param policy: thresholds and learning rates
    :param mask: ``(h, w)`` bool, the water pixels of the small image (``None``: all)
    """

    def __init__(self, policy: AnalysisPolicy, mask: np.ndarray | None = None) -> None:
        self.policy = policy
        self.mask = None if mask is None else np.asarray(mask, dtype=bool)
        self._bg: np.ndarray | None = None
        self._var: np.ndarray | None = None
        #: share of the water that changed in the last frame, 0..1
        self.last_fraction = 0.0

    def reset(self) -> None:
        """Forget the background (e.g. after the camera moved)."""
        self._bg = self._var = None

    def update(self, grey: np.ndarray) -> float:
        """Compare a frame with the background, then learn it.

        :param grey: ``(h, w)`` grey image of the frame, any numeric type, 0..255
        :returns: share of the water pixels that changed, 0..1 (1.0 on the first frame,
            or when the image size changed: the background was just started)
        """
        g = np.asarray(grey, dtype=np.float32)
        p = self.policy
        if self._bg is None or self._bg.shape != g.shape:
            self._bg = g.copy()
            self._var = np.full(g.shape, p.change_min_grey**2 / 4.0, dtype=np.float32)
            if self.mask is not None and self.mask.shape != g.shape:
                raise ValueError(f"mask {self.mask.shape} does not fit the image {g.shape}")
            self.last_fraction = 1.0
            return 1.0
        assert self._var is not None
        mask = self.mask
        d = g - self._bg
        water = d[mask] if mask is not None else d.reshape(-1)
        if water.size == 0:
            self.last_fraction = 0.0
            return 0.0
        d -= np.float32(np.median(water))  # brightness change of the whole scene
        ad = np.abs(d)
        thr = np.maximum(np.sqrt(self._var) * np.float32(p.change_sigma), p.change_min_grey)
        changed = ad > thr
        if mask is not None:
            changed &= mask
        frac = float(np.count_nonzero(changed)) / float(water.size)
        # learn: quiet pixels at background_alpha, changed ones at absorb_alpha
        a = np.where(changed, np.float32(p.absorb_alpha), np.float32(p.background_alpha))
        self._bg += a * d
        self._var += a * (np.minimum(ad * ad, thr * thr) - self._var)
        self.last_fraction = frac
        return frac

    def changed(self, grey: np.ndarray) -> bool:
        """:meth:`update`, and whether the share reaches ``change_min_fraction``; ``False``
        for the frame that starts the background (there is nothing to compare it with)."""
        starting = self._bg is None or self._bg.shape != np.shape(grey)
        frac = self.update(grey)
        return not starting and frac >= self.policy.change_min_fraction


@dataclass
class SchedulerCounters:
    """What the scheduler decided since the start: frames seen, analysed, and why."""

    frames_seen: int = 0
    frames_analysed: int = 0
    analysed: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)


def keepalive_phase(camera_id: str) -> float:
    """A camera's keep-alive phase in [0, 1): fixed for its id, spread evenly over a fleet.

    >>> keepalive_phase("cam-1") == keepalive_phase("cam-1")
    True
    """
    return (zlib.crc32(camera_id.encode("utf-8")) % 10_000) / 10_000.0


class AnalysisScheduler:
    """Decides, frame by frame, whether one camera's frame goes to the detector.

    :param policy: the camera's policy
    :param max_fps: the ingest's most analysed frames per second of this camera
    :param phase: where on its keep-alive grid this camera sits, a fraction of
        ``keepalive_s`` in [0, 1) (see :func:`keepalive_phase`); the first keep-alive
        comes ``(1 - phase) * keepalive_s`` after the start

    >>> s = AnalysisScheduler(AnalysisPolicy(keepalive_s=5.0), max_fps=5.0)
    >>> [s.decide(t, changed=False) for t in (0, 200, 400, 5000)]
    ['start', None, None, 'keepalive']
    """

    def __init__(self, policy: AnalysisPolicy, max_fps: float, phase: float = 0.0) -> None:
        if not 0.0 <= phase < 1.0:
            raise ValueError(f"keep-alive phase must be in [0, 1), got {phase}")
        self.policy = policy
        self.phase = float(phase)
        self.max_fps = float(max_fps) if max_fps and max_fps > 0 else 0.0
        self.counters = SchedulerCounters()
        self.last_analysed_t_ms: int | None = None
        self._slot_ms: float | None = None  # nominal time of the last analysis
        self.last_change_t_ms: int | None = None
        self.last_near_t_ms: int | None = None
        self.cue_until_t_ms: int | None = None
        #: the rate in force after the last decision: ``quiet``, ``change``, ``target_near``,
        #: ``cue`` or ``fixed_rate``
        self.mode = "quiet"

    def _period_ms(self, fps: float) -> float:
        fps = min(fps, self.max_fps) if self.max_fps else fps
        return 1000.0 / fps if fps > 0 else 0.0

    def cue(self, until_t_ms: int) -> None:
        """Analyse at ``max_fps`` until ``until_t_ms`` (ms UTC, e.g. a radar or PTZ cue)."""
        self.cue_until_t_ms = max(int(until_t_ms), self.cue_until_t_ms or 0)

    def observe(self, t_ms: int, range_m: np.ndarray) -> None:
        """What the analysis of the frame at ``t_ms`` found: the ranges of its detections,
        m (NaN where unknown, e.g. beyond the horizon)."""
        r = np.asarray(range_m, dtype=float)
        if r.size and bool(np.any(r <= self.policy.near_shore_m)):
            self.last_near_t_ms = int(t_ms)

    def _mode(self, t_ms: int, changed: bool) -> str:
        hold_ms = self.policy.hold_s * 1000.0
        if changed:
            self.last_change_t_ms = t_ms
        if self.cue_until_t_ms is not None and t_ms <= self.cue_until_t_ms:
            return "cue"
        if self.last_near_t_ms is not None and t_ms - self.last_near_t_ms <= hold_ms:
            return "target_near"
        if self.last_change_t_ms is not None and t_ms - self.last_change_t_ms <= hold_ms:
            return "change"
        return "quiet"

    def decide(self, t_ms: int, *, changed: bool) -> str | None:
        """Whether to analyse the frame captured at ``t_ms`` (ms).

        :param changed: the change test fired on this frame
        :returns: the reason it is analysed (one of :data:`ANALYSED_REASONS`), or ``None``
            (counted under one of :data:`SKIPPED_REASONS`)
        """
        t_ms = int(t_ms)
        c = self.counters
        c.frames_seen += 1
        p = self.policy
        if not p.adaptive:
            mode, period_ms = "fixed_rate", self._period_ms(self.max_fps)
        else:
            mode = self._mode(t_ms, changed)
            fps = {"cue": self.max_fps, "target_near": self.max_fps, "change": p.change_fps}.get(
                mode, 1.0 / p.keepalive_s
            )
            period_ms = self._period_ms(fps)
        self.mode = mode
        # Analyses are due on a grid of the mode's period; a frame within half a frame
        # (at max_fps) of its due time takes the slot, so capture jitter neither skips a
        # due frame nor drifts the rate (2 fps of a 5 fps camera: 400 ms, 600 ms, ...).
        slack_ms = 0.5 * self._period_ms(self.max_fps) if self.max_fps else 0.0
        due = None if self._slot_ms is None else self._slot_ms + period_ms
        if due is None:
            reason: str | None = "start"
        elif t_ms + slack_ms >= due:
            reason = "keepalive" if mode == "quiet" else mode
        else:
            reason = None
        if reason is None:
            why = "quiet" if mode == "quiet" else "rate"
            c.skipped[why] = c.skipped.get(why, 0) + 1
            return None
        self.last_analysed_t_ms = t_ms
        if due is None:
            # the start: later analyses fall on this camera's own keep-alive grid
            shift_ms = self.phase * p.keepalive_s * 1000.0 if p.adaptive else 0.0
            self._slot_ms = t_ms - shift_ms
        else:
            self._slot_ms = due if abs(t_ms - due) <= slack_ms else float(t_ms)
        c.frames_analysed += 1
        c.analysed[reason] = c.analysed.get(reason, 0) + 1
        return reason
