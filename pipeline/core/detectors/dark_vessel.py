"""Dark vessel: a camera target that no AIS vessel explains."""

from __future__ import annotations

import numpy as np

from pipeline.core.detectors.base import (
    Condition,
    DetectorSpec,
    Factor,
    VesselView,
    condition_at,
    night_mask,
)
from pipeline.core.detectors.thresholds import Thresholds

__all__ = ["DETECTOR", "dark_vessel"]


def dark_vessel(
    v: VesselView, now_t_ms: int, th: Thresholds, area_start_t_ms: int = -1
) -> list[Condition]:
    """A camera target (seen in ``dark_min_hits`` frames or more, not lost) with no AIS
    match for ``dark_vessel_min_s``. Start = unmatched since + that time, and not before
    ``warmup_s`` after the area's first input (``area_start_t_ms``): until then the AIS
    picture is incomplete (a moored vessel reports every 3 min).

    Only a target whose position is good enough to say that no AIS vessel could be it
    counts: its range sigma at most ``dark_max_pos_sigma_m`` (far targets, whose range
    error is kilometres, are matched to AIS by bearing or not judged). The alert states
    how sure it is: ``confidence`` = ``dark_max_pos_sigma_m`` / (that + the range sigma)
    (0.5 at the limit, above 0.9 within about 1 km of the camera), as a factor of weight 0.

    A radar target inside a port or anchorage (``in_port``) is not judged dark.

    Severity 40, + night 20, + within ``landing_coast_m`` of the coast 10.
    """
    if len(v) == 0:
        return []
    sigma = (
        np.full(len(v), np.nan)
        if v.pos_sigma_m is None
        else np.asarray(v.pos_sigma_m, dtype=np.float64)
    )
    precise = ~(sigma > th.dark_max_pos_sigma_m)  # NaN (not known) passes
    ok = (
        precise
        & v.dark
        & (v.hits >= th.dark_min_hits)
        & (v.unmatched_since_t_ms >= 0)
        & (v.unmatched_since_t_ms + th.dark_vessel_min_s * 1000.0 <= now_t_ms)
        & (now_t_ms - v.t_ms <= th.camera_lost_s * 1000.0)
    )
    if area_start_t_ms >= 0:
        ok &= area_start_t_ms + th.warmup_s * 1000.0 <= now_t_ms
    # A radar target inside a port or anchorage is a ship moored or at anchor there (an
    # authorised zone): radar alone does not judge it dark, for AIS at anchor is sent every
    # 3 min and a shore receiver can miss several in a row (radar sees the whole anchorage,
    # a shore camera hardly any of it). It is judged once it leaves the zone.
    ok &= ~(_radar_rows(v) & v.in_port)
    rows = np.flatnonzero(ok)
    start = np.maximum(
        v.unmatched_since_t_ms[rows] + th.dark_vessel_min_s * 1000.0,
        area_start_t_ms + th.warmup_s * 1000.0 if area_start_t_ms >= 0 else 0.0,
    ).astype(np.int64)
    night = night_mask(v, rows, start, th) if rows.size else np.zeros(0, bool)
    out = []
    for j, i in enumerate(rows.tolist()):
        # radar targets (and the camera targets fused with them) have radar subjects
        seen = (
            "tracked by radar" if str(v.subject[i]).startswith("cam:radar:") else "seen by camera"
        )
        f = [
            Factor(
                "no_ais_match",
                40.0,
                f"{seen} without any AIS match for >= {th.dark_vessel_min_s:.0f} s",
            )
        ]
        if night[j]:
            f.append(Factor("night", 20.0, "sun below the horizon at the place and time"))
        if v.coast_m[i] <= th.landing_coast_m:
            f.append(Factor("near_shore", 10.0, f"{v.coast_m[i]:.0f} m from the coast"))
        if np.isfinite(sigma[i]):
            conf = th.dark_max_pos_sigma_m / (th.dark_max_pos_sigma_m + sigma[i])
            f.append(
                Factor(
                    "confidence",
                    0.0,
                    f"confidence {conf:.2f}: position known to ±{sigma[i]:.0f} m "
                    f"(limit {th.dark_max_pos_sigma_m:.0f} m), and no AIS vessel matches it",
                )
            )
        out.append(condition_at("dark_vessel", v, i, int(start[j]), f))
    return out


def _radar_rows(v: VesselView) -> np.ndarray:
    """Rows of radar targets (and of camera targets fused with one): radar subjects."""
    return np.fromiter(
        (str(x).startswith("cam:radar:") for x in v.subject), dtype=bool, count=len(v)
    )


DETECTOR = DetectorSpec(
    name="dark_vessel",
    thresholds={
        "min_s": "dark_vessel_min_s",
        "warmup_s": "warmup_s",
        "max_pos_sigma_m": "dark_max_pos_sigma_m",
    },
    run=lambda s, th: dark_vessel(s.view, s.now_t_ms, th, s.area_start_t_ms),
)
