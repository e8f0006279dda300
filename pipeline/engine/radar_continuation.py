"""A new radar target that continues a lost dark one: one boat, one area target, one alert.

A radar's tracker drops a small boat after a few missed scans (far out at the edge of cover,
in the sea return) and acquires it again, under a new target number or under the same one
as a new track. Each new track used to become a new area target, and a boat without AIS
raised ``dark_vessel`` again for every one of them.

When a new radar target appears (:func:`note_continuation`), the confirmed dark targets of
the same radar that it may continue are those lost (retired, ``<key>@<first t_ms>``) or no
longer reported for :data:`STALE_MS`, less than ``max_gap_s`` ago; the one it continues is
where the report lies on the lost target's way on (its last report's place moved on by its
last velocity, down to a stop, gated with both reports' range-dependent uncertainty:
:func:`pipeline.core.radar_continuation.continue_lost`). As for a camera track
(:mod:`pipeline.engine.confirm`), the new target only notes that target (``continues``),
and takes it over once the radar tracks it (:func:`continue_radar`) and it is still
unexplained by AIS: an acquisition of sea clutter next to a boat lost at the beach never
moves the boat's target. The lost target, merged with the new one
(:func:`pipeline.engine.confirm.continue_target`), goes on under the new report's key with
its own alert subject, trail, stop and dark time, so its alert episodes go on.

Plain functions of the area state and the report (event time only).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.core.detectors import Thresholds
from pipeline.core.fusion import KNOT_MPS
from pipeline.core.radar_continuation import ContinuationParams, continue_lost
from pipeline.core.radar_fusion import RadarArrays
from pipeline.engine.confirm import continue_target, target_velocity_mps
from pipeline.engine.radar_camera import own_subject
from pipeline.engine.state import AreaState, _Target
from schemas.records import RadarTarget

__all__ = ["CONTINUATION", "STALE_MS", "continue_radar", "note_continuation"]

#: the gates of a new target continuing a lost one (defaults)
CONTINUATION = ContinuationParams()

#: a live target its radar has not reported for this long (ms; four scans of a 24 rpm
#: antenna) may have been dropped by the tracker without a ``lost`` report
STALE_MS = 10_000


def _last_report(tg: _Target) -> dict[str, Any] | None:
    return next((d for d in reversed(tg.detections) if "radar_id" in d), None)


def _velocity(tg: _Target, d: dict[str, Any]) -> tuple[float, float]:
    """Speed (kn) and course (degrees true) of a target at its last report: its tracker's
    while tracked, else its trail's over the last minute (0 kn: at rest)."""
    if d.get("status") == "tracking" and d.get("speed_kn") is not None:
        if d.get("course_deg") is not None:
            return float(d["speed_kn"]), float(d["course_deg"])
    ve, vn = target_velocity_mps(tg)
    return float(np.hypot(ve, vn)) / KNOT_MPS, float(np.degrees(np.arctan2(ve, vn)))


def note_continuation(
    st: AreaState,
    key: str,
    tg: _Target,
    r: RadarTarget,
    params: ContinuationParams = CONTINUATION,
) -> None:
    """Note in ``tg.continues`` the lost dark target of report ``r``'s radar that the new
    target ``tg`` (key ``key``, first report ``r``) continues, if any."""
    cam = tg.camera_id
    cands: list[tuple[str, _Target, dict[str, Any]]] = []
    for k, old in st.targets.items():
        if old.camera_id != cam or k == key or old.confirmed_t_ms < 0 or old.mmsi >= 0:
            continue
        gap_ms = r.t_ms - old.t_ms
        if not 0 < gap_ms <= params.max_gap_s * 1000.0:
            continue
        if "@" not in k and gap_ms <= STALE_MS:
            continue  # still reported: another boat
        d = _last_report(old)
        if d is not None:
            cands.append((k, old, d))
    if not cands:
        return
    cands.sort(key=lambda c: c[0])
    vel = [_velocity(old, d) for _, old, d in cands]
    lost = RadarArrays.from_lists(
        [d["t_ms"] for _, _, d in cands], [d["lon"] for _, _, d in cands],
        [d["lat"] for _, _, d in cands], [d["position_sigma_m"] for _, _, d in cands],
        [v[0] for v in vel], [v[1] for v in vel],
    )  # fmt: skip
    new = RadarArrays.from_lists([r.t_ms], [r.lon], [r.lat], [r.position_sigma_m])
    i = int(continue_lost(lost, new, params)[0])
    if i >= 0:
        tg.continues = cands[i][0]


def continue_radar(st: AreaState, key: str, tg: _Target, th: Thresholds) -> _Target:
    """The target that holds radar target ``key`` from now on: ``tg`` itself, or, once
    the radar tracks it (confirmed) and no AIS vessel explains it, the lost target it
    continues (merged with ``tg``: :func:`pipeline.engine.confirm.continue_target`), moved
    under ``key`` with its own alert subject."""
    if not tg.continues or tg.confirmed_t_ms < 0:
        return tg
    if tg.mmsi >= 0:
        tg.continues = ""  # an AIS vessel explains it: not the dark boat
        return tg
    old_key = tg.continues
    old = st.targets.get(old_key)
    if old is None:
        tg.continues = ""
        return tg
    subject = own_subject(old)
    run, best = tg.match_run, max(tg.match_best, old.match_best)
    got = continue_target(st, key, tg, th)
    if got is tg:
        return tg
    st.aliases.pop(key, None)
    del st.targets[old_key]
    got.subject = subject
    got.match_run, got.match_best = run, best
    st.targets[key] = got
    partner = st.targets.get(got.fused) if got.fused else None
    if partner is not None and partner.fused == old_key:
        partner.fused = key
    st.count("radar.continued")
    return got
