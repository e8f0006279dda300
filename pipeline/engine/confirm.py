"""Camera target confirmation: when a camera target counts as a vessel, and which new image
track may continue it.

Clutter on the water (a wave crest, glare, a rock awash) gives one- or two-frame
detections; the same spot can raise them again and again, tens of seconds apart. A target
therefore counts as a vessel only once it was **solid**: seen in ``confirm_hits`` of
``confirm_frames`` consecutive frames of its camera (an M-of-N rule in event time: the
last ``confirm_hits`` hits span no more than ``confirm_frames`` frame intervals of the
camera, so the rule reads the same at 1 frame/s and at 0.5 frame/s, and a detector that
misses one frame in five still confirms a vessel within a few frames). Until then it takes
no part in the detectors (:func:`pipeline.engine.picture._view`).

A stop counts only when the target was solid at the stopped place (its last
``confirm_hits`` hits all at or after the stop began): sparse single-frame hits near one
spot are not a boat at rest.

A new image track may continue a lost target (:func:`stitch_fits`) only when that target was
confirmed and the new track's first position lies where the target's own motion puts it
(moved on by its velocity over the last minute of its trail, or stopped where it was last
seen), within ``stitch_radius_m``
(widened by twice the detection's range uncertainty, to three times the radius at most):
proximity alone would chain clutter hits into a "stopped" target. It then becomes a
target of its own that notes which target it may continue, and continues it
(:func:`continue_target`) only once it is confirmed itself: a one-frame clutter hit near a
lost boat never moves the boat's target to the clutter, and the boat's own next track
still finds it.

Pure functions of the records (event time only); they mutate the area state they are given.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.core.detectors.thresholds import Thresholds
from pipeline.core.geo import destination_point, haversine_m
from pipeline.engine.state import AreaState, _Target, _trim_trail

__all__ = [
    "MAX_FRAME_PERIOD_MS",
    "continue_target",
    "note_frame",
    "note_hit",
    "stitch_fits",
    "target_velocity_mps",
]

#: Frame intervals longer than this are gaps (an outage), not the camera's frame rate, ms.
MAX_FRAME_PERIOD_MS = 10_000


def note_frame(st: AreaState, cam: str, t_ms: int, prev_t_ms: int) -> None:
    """Learn camera ``cam``'s frame interval from a frame at ``t_ms`` after one at
    ``prev_t_ms`` (-1: none); gaps longer than :data:`MAX_FRAME_PERIOD_MS` are ignored."""
    gap = t_ms - prev_t_ms
    if prev_t_ms >= 0 and 0 < gap <= MAX_FRAME_PERIOD_MS:
        st.cam_period_ms[cam] = int(gap)


def note_hit(tg: _Target, t_ms: int, period_ms: int, th: Thresholds) -> None:
    """A detection of ``tg`` at ``t_ms``: keep its last ``confirm_hits`` hit times and mark
    it confirmed (and its stop solid) when they fit in ``confirm_frames`` frames.

    :param period_ms: the camera's frame interval, ms
    """
    m = max(int(th.confirm_hits), 1)
    tg.hit_t_ms.append(int(t_ms))
    del tg.hit_t_ms[:-m]
    if len(tg.hit_t_ms) < m:
        return
    span = tg.hit_t_ms[-1] - tg.hit_t_ms[0]
    # the M hits lie within N consecutive frames: N - 1 intervals (+ a quarter for jitter)
    if span > (max(int(th.confirm_frames), m) - 0.75) * period_ms:
        return
    if tg.confirmed_t_ms < 0:
        tg.confirmed_t_ms = int(t_ms)
    if tg.anchor_t_ms >= 0 and tg.hit_t_ms[0] >= tg.anchor_t_ms:
        tg.anchor_solid = True


def target_velocity_mps(tg: _Target, window_ms: float = 60_000.0) -> tuple[float, float]:
    """East and north velocity of a target over the last ``window_ms`` of its trail, m/s
    (0, 0 with fewer than two points)."""
    pts = [p for p in tg.trail if p[2] >= tg.t_ms - window_ms]
    if len(pts) < 2 or pts[-1][2] <= pts[0][2]:
        return 0.0, 0.0
    d = float(haversine_m(pts[0][0], pts[0][1], pts[-1][0], pts[-1][1]))
    if d == 0.0:
        return 0.0, 0.0
    dt = (pts[-1][2] - pts[0][2]) / 1000.0
    lat0 = np.radians(pts[0][1])
    de = (pts[-1][0] - pts[0][0]) * np.cos(lat0)
    dn = pts[-1][1] - pts[0][1]
    norm = float(np.hypot(de, dn)) or 1.0
    speed = d / dt
    return speed * float(de) / norm, speed * float(dn) / norm


def stitch_fits(tg: _Target, t_ms: int, d: Any, th: Thresholds) -> float | None:
    """Distance, m, from where target ``tg`` may be at ``t_ms`` (its last position moved
    on by its velocity, or its last position if it stopped there) to a new image track's
    first detection ``d``, when the target may
    be continued by it: confirmed, lost less than ``stitch_gap_s`` ago, and the distance
    within ``stitch_radius_m`` plus twice the detection's range sigma (at most three times
    ``stitch_radius_m`` in all); else ``None``."""
    if tg.confirmed_t_ms < 0 or tg.lon is None or tg.lat is None:
        return None
    gap_s = (t_ms - tg.t_ms) / 1000.0
    if gap_s <= 0 or gap_s > th.stitch_gap_s:
        return None
    # two motions are consistent: the target kept its velocity, or it stopped where it
    # was last seen (a boat arriving at the beach)
    dist = float(haversine_m(tg.lon, tg.lat, d.lon, d.lat))
    ve, vn = target_velocity_mps(tg)
    run_m = float(np.hypot(ve, vn)) * gap_s
    if run_m > 1.0:
        course = float(np.degrees(np.arctan2(ve, vn)) % 360.0)
        plon, plat = destination_point(tg.lon, tg.lat, course, run_m)
        dist = min(dist, float(haversine_m(float(plon), float(plat), d.lon, d.lat)))
    # the range error widens the radius, at most to three times it: a far detection's
    # position is kilometres off and says nothing about which target it continues
    limit = th.stitch_radius_m + 2.0 * min(float(d.range_sigma_m or 0.0), th.stitch_radius_m)
    return dist if dist <= limit else None


def continue_target(st: AreaState, key: str, tg: _Target, th: Thresholds) -> _Target:
    """The target that holds camera track ``key``'s detections from now on: ``tg`` itself,
    or, when ``tg`` has just been confirmed and notes a target it may continue that is
    still there and was not seen since ``tg`` began, that target, with ``tg`` merged into it
    (hits, trail, detections, position; its stop goes on if ``tg`` is where it stopped)
    and ``key`` an alias of it.

    :param st: the area state (targets and aliases are updated)
    :param key: ``<camera>:<track id>`` of the detection's image track
    :param tg: the target the detection went to
    """
    if not tg.continues or tg.confirmed_t_ms < 0:
        return tg
    old_key, tg.continues = tg.continues, ""
    old = st.targets.get(old_key)
    if old is None or old is tg or old.t_ms >= tg.first_t_ms:
        return tg
    old.hits += tg.hits
    old.t_ms = tg.t_ms
    old.mmsi = tg.mmsi
    if tg.mmsi < 0 and old.unmatched_since_t_ms < 0:
        old.unmatched_since_t_ms = tg.unmatched_since_t_ms
    elif tg.mmsi >= 0:
        old.unmatched_since_t_ms = -1
    old.lon, old.lat, old.pos_sigma_m = tg.lon, tg.lat, tg.pos_sigma_m
    old.trail.extend(tg.trail)
    _trim_trail(old.trail, th)
    old.detections.extend(tg.detections)
    del old.detections[:-5]
    for u in tg.uris:
        if u not in old.uris:
            old.uris.append(u)
    del old.uris[:-5]
    old.hit_t_ms = list(tg.hit_t_ms)
    if tg.ever_matched:
        old.ever_matched, old.last_mmsi = True, tg.last_mmsi
    still = (
        old.anchor_lon is not None
        and tg.lon is not None
        and tg.lat is not None
        and float(haversine_m(old.anchor_lon, old.anchor_lat, tg.lon, tg.lat))
        <= max(th.dark_stop_radius_m, 2.0 * max(tg.pos_sigma_m, 0.0))
    )
    if not still:
        old.anchor_lon, old.anchor_lat = tg.anchor_lon, tg.anchor_lat
        old.anchor_t_ms, old.anchor_solid = tg.anchor_t_ms, tg.anchor_solid
    else:
        old.anchor_solid = old.anchor_solid or tg.anchor_solid
    del st.targets[key]
    st.aliases[key] = old_key
    st.count("targets.stitched")
    return old
