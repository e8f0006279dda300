"""Radar targets in the area step: each report associated with the area's AIS vessels and
kept as an area target beside the camera targets, so a radar target with no AIS is dark.

A report's target is ``radar:<radar id>:<target number>`` in ``AreaState.targets`` (a
:class:`~pipeline.engine.state._Target` whose ``camera_id`` is ``radar:<radar id>``): the
detectors see it as they see a camera target (``dark_vessel`` once it has
``dark_min_hits`` reports without an AIS match for ``dark_vessel_min_s``; a stop at the
waterline for ``unusual_landing``; a target last matched to a vessel whose AIS went silent is
that vessel, dark, for ``dark_approach``), and its alerts carry the radar reports as
evidence and the radar track as trail. Reports are held and released in event-time order
with the other inputs (:mod:`pipeline.engine.watermarks`); each radar's newest report is its
progress, as a camera's newest frame is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.core.detectors import Thresholds
from pipeline.core.radar_fusion import RadarArrays, associate_radar
from pipeline.engine.picture import _move_target, _StepCache
from pipeline.engine.radar_camera import fuse_report, own_subject
from pipeline.engine.radar_continuation import continue_radar, note_continuation
from pipeline.engine.state import AreaState, _Target
from schemas.records import CameraDetection, RadarTarget

__all__ = ["SMOOTH_REPORTS", "apply_radar", "hold_radar", "radar_target_key"]

#: a radar target's position is the mean of this many of its last reports (10 s at 24 rpm)
SMOOTH_REPORTS = 5


def radar_target_key(r: RadarTarget) -> str:
    """The area target of a radar report: ``radar:<radar id>:<target number>``."""
    return f"radar:{r.radar_id}:{r.target_number}"


def hold_radar(st: AreaState, radar: Sequence[RadarTarget]) -> list[RadarTarget]:
    """Take in radar reports: note each radar's progress, hold what the area's watermark has
    not passed yet.

    :returns: the late reports (older than the area's watermark), to apply at once
    """
    if radar and st.start_t_ms < 0:
        st.start_t_ms = min(r.t_ms for r in radar)
    for r in radar:
        if r.t_ms > st.radar_marks.get(r.radar_id, -1):
            st.radar_marks[r.radar_id] = r.t_ms
    cut = st.released_t_ms
    late = [r for r in radar if r.t_ms < cut]
    st.held_radar += [r for r in radar if r.t_ms >= cut] if late else list(radar)
    return late


#: a target matched to AIS in this many consecutive reports (30 s at 24 rpm) was explained
#: by AIS, not by a vessel passing by
SOLID_MATCH_REPORTS = 12
#: a vessel whose last AIS fix is at most this old (ms) against a report that it does not
#: explain is elsewhere, not silent
FRESH_FIX_MS = 30_000


def _reports_elsewhere(st: AreaState, mmsi: int, t_ms: int) -> bool:
    """Whether vessel ``mmsi`` has a fresh AIS fix at ``t_ms`` (so a report it does not
    explain is not that vessel; a vessel that switched AIS off has none)."""
    v = st.vessels.get(mmsi)
    return v is not None and 0 <= t_ms - v.track.t_ms <= FRESH_FIX_MS


def _retire(st: AreaState, key: str, tg: _Target) -> None:
    """A radar target that was lost (status ``lost``, or no report for ``camera_lost_s``)
    leaves its key to the next target of that number: it stays, under
    ``<key>@<first t_ms>`` with its subject, until it ages out like a lost camera target."""
    del st.targets[key]
    tg.subject = own_subject(tg)
    new_key = f"{key}@{tg.first_t_ms}"
    if new_key in st.targets:  # a target continued under this number before
        new_key = f"{new_key}.{tg.t_ms}"
    st.targets[new_key] = tg
    partner = st.targets.get(tg.fused) if tg.fused else None
    if partner is not None and partner.fused == key:
        partner.fused = new_key


#: the other targets of a report's radar whose last report is at most this old (ms) are
#: the report's scan: an antenna turns in 2.5 s (24 rpm) to 5 s (12 rpm)
SCAN_WINDOW_MS = 5_000


def _tracked_velocity(d: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """Speed and course of a report for the velocity gate: only once the radar's tracker
    tracks the target (while it acquires, its speed and course are a guess)."""
    if d.get("status", "tracking") != "tracking":
        return None, None
    return d.get("speed_kn"), d.get("course_deg")


def _scan_arrays(st: AreaState, key: str, r: RadarTarget) -> RadarArrays:
    """Report ``r`` (first) and the last report of every other live target of its radar
    reported within :data:`SCAN_WINDOW_MS` of it: the scan the AIS vessels are assigned
    over one to one, so a vessel that explains its own radar target does not also explain a
    boat passing close by (each report is applied on its own, in event-time order)."""
    cam = f"radar:{r.radar_id}"
    rows = [{"t_ms": r.t_ms, "lon": r.lon, "lat": r.lat, "position_sigma_m": r.position_sigma_m,
             "speed_kn": r.speed_kn, "course_deg": r.course_deg, "status": r.status}]  # fmt: skip
    others = [
        (k, tg.detections[-1])
        for k, tg in st.targets.items()
        if tg.camera_id == cam
        and k != key
        and "@" not in k  # retired: its number went to a newer target
        and tg.detections
        and abs(r.t_ms - tg.t_ms) <= SCAN_WINDOW_MS
    ]
    rows += [d for _, d in sorted(others, key=lambda x: x[0])]
    vel = [_tracked_velocity(d) for d in rows]
    return RadarArrays.from_lists(
        [d["t_ms"] for d in rows], [d["lon"] for d in rows], [d["lat"] for d in rows],
        [d["position_sigma_m"] for d in rows], [x[0] for x in vel], [x[1] for x in vel],
    )  # fmt: skip


def apply_radar(
    st: AreaState,
    r: RadarTarget,
    cache: _StepCache,
    th: Thresholds,
    cameras: Mapping[str, Any] | None = None,
) -> None:
    """One radar report: its target moved, matched to the AIS vessel that explains it
    (dead-reckoned to the report's time, gated by both uncertainties) or to none, and
    fused with the camera target that is the same vessel (:mod:`pipeline.engine.radar_camera`;
    ``cameras``: the area's camera models by id, ``None``: no fusion)."""
    key = radar_target_key(r)
    tg = st.targets.get(key)
    if tg is not None and (r.status == "lost" or r.t_ms - tg.t_ms > th.camera_lost_s * 1000.0):
        _retire(st, key, tg)  # the radar reuses target numbers: the next one is a new target
        tg = None
    if r.status == "lost":
        return  # the target ages out like a camera target the camera lost
    v = cache.vessel_arrays(st)
    owner = int(associate_radar(v, _scan_arrays(st, key, r))[0])
    mmsi = int(v.mmsi[owner]) if owner >= 0 else -1
    if tg is None:
        tg = _Target(camera_id=f"radar:{r.radar_id}", track_id=r.target_number,
                     first_t_ms=r.t_ms, t_ms=r.t_ms)  # fmt: skip
        if own_subject(tg) in {ep.subject for ep in st.episodes.values()}:
            tg.subject = f"{own_subject(tg)}@{r.t_ms}"  # an earlier target of that number
        st.targets[key] = tg
        note_continuation(st, key, tg, r)  # a lost dark target it may go on with
    tg.detections.append({
        "radar_id": r.radar_id, "target_id": r.target_id, "t_ms": int(r.t_ms),
        "lon": r.lon, "lat": r.lat, "range_m": r.range_m, "bearing_deg": r.bearing_deg,
        "position_sigma_m": r.position_sigma_m, "mmsi": mmsi if mmsi >= 0 else None,
        "speed_kn": r.speed_kn, "course_deg": r.course_deg, "status": r.status,
    })  # fmt: skip
    del tg.detections[:-SMOOTH_REPORTS]
    # The target's position is the mean of its last reports (a radar plot jitters by its
    # sigma every scan, a camera's far less), and it counts as stopped within 3 raw sigmas:
    # a boat at the waterline keeps its anchor while the plots scatter around it.
    lon = sum(float(x["lon"]) for x in tg.detections) / len(tg.detections)
    lat = sum(float(x["lat"]) for x in tg.detections) / len(tg.detections)
    d = CameraDetection(
        track_id=r.target_number, box_px=[], cls="radar", confidence=1.0,
        bearing_deg=r.bearing_deg, bearing_sigma_deg=0.0, range_m=r.range_m,
        range_sigma_m=1.5 * r.position_sigma_m, lon=lon, lat=lat,
    )  # fmt: skip
    _move_target(tg, d, r.t_ms, mmsi, th)
    if mmsi >= 0:
        tg.ever_matched = True
        tg.last_mmsi = mmsi
        tg.match_run += 1
        tg.match_best = max(tg.match_best, tg.match_run)
    else:
        tg.match_run = 0
        if (
            tg.ever_matched
            and tg.match_best < SOLID_MATCH_REPORTS
            and _reports_elsewhere(st, tg.last_mmsi, r.t_ms)
        ):
            # never explained by AIS for long, and the vessel it matched reports, fresh,
            # where this target is not: that was a vessel passing by (a radar gate is
            # hundreds of metres wide far out), not this one
            tg.ever_matched, tg.last_mmsi, tg.match_best = False, -1, 0
    if r.status == "tracking":
        # The radar's own tracker has acquired the target (ARPA: acquiring, then tracking
        # once its plots form a consistent track), which is what the camera targets' M-of-N
        # confirmation (pipeline.engine.confirm) establishes for frames: a tracked radar
        # target is confirmed, and a stop it makes rests on consecutive tracked reports.
        if tg.confirmed_t_ms < 0:
            tg.confirmed_t_ms = int(r.t_ms)
        if tg.anchor_t_ms >= 0:
            tg.anchor_solid = True
    tg = continue_radar(st, key, tg, th)
    if cameras:
        fuse_report(st, key, tg, r, cameras, th)
