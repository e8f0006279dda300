"""One vessel seen by a radar and a shore camera is one area target.

Each radar report, at its event time, is associated with the area's camera targets
(:func:`pipeline.core.radar_camera.associate_radar_camera`: the camera target's last
position dead-reckoned to the report's time, gated along and across the camera's line of
sight, the camera's range error growing with the distance). A match in
``FUSE_MIN_REPORTS`` consecutive reports *fuses* the two targets: each notes the other
(``_Target.fused``), both take one subject (``_Target.subject``, that of the one with an
alert episode, else of the elder), kept after the link ends, so their alerts are one
episode whichever sensor holds it, and the camera target takes the AIS vessel the radar
matched, so it is that vessel (dark only once its AIS is silent).

When the area is evaluated (:func:`fused_targets`), a fused pair whose radar target is
fresh is one row: the radar target (the sensor that tracks it from far out) with the
camera target's detections and evidence beside its own. The radar's AIS decision wins: a
camera target whose radar target is explained by an AIS vessel is not dark. A target whose
partner is gone (lost, forgotten) goes on alone under the shared subject.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import numpy as np

from pipeline.core.detectors import Thresholds
from pipeline.core.geo import lonlat_to_enu_m
from pipeline.core.radar_camera import (
    CameraTargetArrays,
    associate_radar_camera,
    radar_camera_pairs,
)
from pipeline.core.radar_fusion import RadarArrays
from pipeline.engine.state import AreaState, _Target
from schemas.records import RadarTarget

__all__ = ["fuse_report", "fused_targets", "is_radar", "own_subject"]

#: the camera target's velocity is its displacement over this much of its trail, ms
VELOCITY_WINDOW_MS = 60_000
#: the fused row's evidence: at most this many detections of both sensors
FUSED_DETECTIONS = 10
#: consecutive radar reports that must match one camera target before the two are fused
FUSE_MIN_REPORTS = 3


def is_radar(tg: _Target) -> bool:
    """Whether the target is a radar target (camera id ``radar:<radar>``)."""
    return tg.camera_id.startswith("radar:")


def own_subject(tg: _Target) -> str:
    """The target's alert subject: the shared one once fused, else ``cam:<camera>:<track>``."""
    return tg.subject or f"cam:{tg.camera_id}:{tg.track_id}"


def _velocity_mps(tg: _Target) -> tuple[float, float]:
    """East and north velocity over the last minute of the target's trail, m/s (0 unknown)."""
    pts = [p for p in tg.trail if p[2] >= tg.t_ms - VELOCITY_WINDOW_MS]
    if len(pts) < 2 or pts[-1][2] <= pts[0][2]:
        return 0.0, 0.0
    e, n = lonlat_to_enu_m(np.array([pts[-1][0]]), np.array([pts[-1][1]]), pts[0][0], pts[0][1])
    dt = (pts[-1][2] - pts[0][2]) / 1000.0
    return float(e[0]) / dt, float(n[0]) / dt


def _fresh(tg: _Target, t_ms: int, th: Thresholds) -> bool:
    return t_ms - tg.t_ms <= th.camera_lost_s * 1000.0


def fuse_report(
    st: AreaState,
    key: str,
    tg: _Target,
    r: RadarTarget,
    cameras: Mapping[str, Any],
    th: Thresholds,
) -> str | None:
    """Associate radar target ``tg`` (key ``key``), just moved by report ``r``, with the
    area's camera targets; fuse it with the one it matched in ``FUSE_MIN_REPORTS``
    consecutive reports.

    Only a confirmed radar target (its tracker tracks it: clutter rarely gets there) is
    associated, and only with camera targets whose position is known well enough to be
    judged at all (range sigma within ``dark_max_pos_sigma_m``: far out, a camera's range is
    a guess and its bearing line crosses many radar targets) that no other fresh radar
    target holds. The camera target it is fused with keeps its match while it stays inside
    the gate. While fused, the camera target takes the AIS vessel the radar last matched
    (``ever_matched``, ``last_mmsi``; none while the radar matches none): it is that vessel,
    dark only once its AIS is silent.

    :returns: the key of the camera target fused with, or ``None``
    """
    if tg.confirmed_t_ms < 0:
        return None
    keys: list[str] = []
    rows: list[list[float]] = []
    for k, c in st.targets.items():
        cam = cameras.get(c.camera_id)
        if is_radar(c) or cam is None or c.lon is None or c.lat is None:
            continue
        if not 0.0 <= c.pos_sigma_m <= th.dark_max_pos_sigma_m:
            continue
        other = st.targets.get(c.fused) if c.fused and c.fused != key else None
        if other is not None and other.fused == k and _fresh(other, r.t_ms, th):
            continue
        ve, vn = _velocity_mps(c)
        keys.append(k)
        rows.append([c.t_ms, c.lon, c.lat, ve, vn, cam.lon_deg, cam.lat_deg, c.pos_sigma_m, np.nan])
    best = ""
    if keys:
        a = np.asarray(rows, dtype=float)
        ca = CameraTargetArrays.from_lists(*(a[:, i] for i in range(a.shape[1])))
        ra = RadarArrays.from_lists([r.t_ms], [r.lon], [r.lat], [r.position_sigma_m])
        gated = radar_camera_pairs(ca, ra).row.tolist()
        if tg.fused in keys and keys.index(tg.fused) in gated:
            best = tg.fused  # the camera target it is fused with is still there
        else:
            j = int(associate_radar_camera(ca, ra)[0])
            best = keys[j] if j >= 0 else ""
    if best and best == tg.fuse_pending:
        tg.fuse_n += 1
    else:
        tg.fuse_pending, tg.fuse_n = best, 1 if best else 0
    if best and best != tg.fused and tg.fuse_n >= FUSE_MIN_REPORTS:
        c = st.targets[best]
        tg.fused, c.fused = best, key
        if not (tg.subject and c.subject == tg.subject):
            tg.subject = c.subject = _shared_subject(st, tg, c)
    linked = st.targets.get(tg.fused) if tg.fused else None
    if linked is None or linked.fused != key:
        return None
    # the radar's AIS decision wins: it has a position, the camera a bearing
    if tg.ever_matched and tg.last_mmsi >= 0:
        linked.ever_matched, linked.last_mmsi = True, tg.last_mmsi
    else:
        linked.ever_matched, linked.last_mmsi = False, -1
    return tg.fused


def _shared_subject(st: AreaState, a: _Target, b: _Target) -> str:
    """The subject of a fused pair: one that already has an alert episode, else one
    already shared, else the elder target's own."""
    elder, younger = (a, b) if a.first_t_ms <= b.first_t_ms else (b, a)
    options = [a.subject, b.subject, own_subject(elder), own_subject(younger)]
    options = [s for s in options if s]
    alerted = {ep.subject for ep in st.episodes.values()}
    return next((s for s in options if s in alerted), options[0])


def fused_targets(
    st: AreaState, keyed: Sequence[tuple[str, _Target]], now_t_ms: int, th: Thresholds
) -> list[_Target]:
    """The dark targets as rows of the area's picture, one per vessel: a camera target
    fused with a fresh, confirmed radar target goes into that target's row (which carries
    both sensors' detections and evidence) or, where the radar target is not dark (an AIS
    vessel explains it), is no row at all.

    :param keyed: ``(key, target)`` of the area's confirmed dark targets, in key order
    :param now_t_ms: evaluation time, ms
    """
    dark = dict(keyed)
    out: list[_Target] = []
    for key, tg in keyed:
        p = st.targets.get(tg.fused) if tg.fused else None
        live = (
            p is not None and p.fused == key and _fresh(p, now_t_ms, th) and p.confirmed_t_ms >= 0
        )
        if not live or p is None:
            out.append(tg)
        elif is_radar(tg):
            out.append(_merged(tg, p) if tg.fused in dark else tg)
        # else: a camera target in its radar target's row, or explained through it
    return out


def _merged(radar: _Target, camera: _Target) -> _Target:
    """The radar target's row with the camera target's detections and evidence URIs."""
    dets = sorted([*radar.detections, *camera.detections], key=lambda d: d.get("t_ms", 0))
    uris = list(radar.uris) + [u for u in camera.uris if u not in radar.uris]
    return msgspec.structs.replace(
        radar,
        detections=dets[-FUSED_DETECTIONS:],
        uris=uris[-FUSED_DETECTIONS:],
        subject=own_subject(radar),
        hull_number=radar.hull_number or camera.hull_number,
        hull_confidence=max(radar.hull_confidence, camera.hull_confidence),
    )
