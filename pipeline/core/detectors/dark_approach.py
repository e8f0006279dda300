"""Dark approach: an AIS vessel heading for the shore whose AIS goes silent."""

from __future__ import annotations

import numpy as np

from pipeline.core.detectors.base import (
    KNOT_MPS,
    Condition,
    DetectorSpec,
    Factor,
    VesselView,
    ais_silence_ms,
    condition_at,
    night_mask,
    outside_zones,
    silence_rule,
)
from pipeline.core.detectors.identity import identity_factors
from pipeline.core.detectors.thresholds import Thresholds

__all__ = ["DETECTOR", "dark_approach"]


def dark_approach(v: VesselView, now_t_ms: int, th: Thresholds) -> list[Condition]:
    """An AIS vessel heading for the shore within ``approach_coast_m`` whose AIS stops
    for longer than :func:`ais_silence_ms`. Start = last fix + silence. "Within" holds at
    the last fix or at the position dead-reckoned from it to the start (``dr_coast_m``).

    "Heading for shore": moving at ``approach_min_speed_kn`` or more on a course that
    meets land within ``approach_landfall_m``, and not heading into port (a landfall within
    ``approach_coast_m`` and ``approach_port_margin_m`` of an authorised zone). A vessel
    already at the waterline (within ``landing_coast_m``) is left to
    :func:`unusual_landing`.
    The AIS silence decides, whatever the cameras see; a camera still seeing the vessel
    (a dark target linked to the MMSI, not lost) adds to the severity.
    Severity 50, + night 20, + seen by camera 10, + small craft 5, + identity anomalies 10.
    """
    if len(v) == 0:
        return []
    speed = np.nan_to_num(v.sog_kn, nan=0.0)
    on_camera = v.dark & (v.mmsi >= 0) & (now_t_ms - v.t_ms <= th.camera_lost_s * 1000.0)
    seen_mmsi = set(v.mmsi[on_camera].tolist())
    into_port = (v.landfall_m <= th.approach_coast_m) & (
        v.landfall_zone_m <= th.approach_port_margin_m
    )
    heading_in = (
        (speed >= th.approach_min_speed_kn) & (v.landfall_m <= th.approach_landfall_m) & ~into_port
    )
    silence = ais_silence_ms(v, th)
    ok = (
        (~v.dark)
        & heading_in
        & (np.minimum(v.coast_m, v.dr_coast_m) <= th.approach_coast_m)
        & (v.coast_m > th.landing_coast_m)  # at the waterline it is unusual_landing's case
        & outside_zones(v, th)
        & (v.t_ms + silence < now_t_ms)
        & ~v.on_land
    )
    rows = np.flatnonzero(ok)
    start = (v.t_ms[rows] + silence[rows]).astype(np.int64)
    night = night_mask(v, rows, start, th) if rows.size else np.zeros(0, bool)
    out = []
    for j, i in enumerate(rows.tolist()):
        f = [
            Factor(
                "ais_stopped_near_shore",
                50.0,
                f"AIS silent for more than {silence[i] / 1000:.0f} s "
                f"({silence_rule(v, i, th)}) {v.coast_m[i]:.0f} m from the coast"
                + (
                    f" (dead-reckoned {v.dr_coast_m[i]:.0f} m when the silence began)"
                    if v.dr_coast_m[i] < v.coast_m[i]
                    else ""
                )
                + f", last course meeting land {v.landfall_m[i]:.0f} m ahead "
                f"(about {v.landfall_m[i] / max(speed[i] * KNOT_MPS, 0.1) / 60:.0f} min at {speed[i]:.1f} kn)",
            )
        ]
        if night[j]:
            f.append(Factor("night", 20.0, "sun below the horizon at the place and time"))
        if int(v.mmsi[i]) in seen_mmsi:
            f.append(Factor("seen_by_camera", 10.0, "a camera still sees it with its AIS off"))
        if identity_factors(v, i, now_t_ms, th):
            f.append(Factor("identity_anomaly", 10.0, "identity anomalies on this MMSI"))
        if np.isfinite(v.length_m[i]) and v.length_m[i] < th.small_craft_length_m:
            f.append(Factor("small_craft", 5.0, f"hull {v.length_m[i]:.0f} m long"))
        out.append(condition_at("dark_approach", v, i, int(start[j]), f))
    return out


DETECTOR = DetectorSpec(
    name="dark_approach",
    thresholds={
        "coast_m": "approach_coast_m",
        "min_speed_kn": "approach_min_speed_kn",
        "landfall_m": "approach_landfall_m",
        "port_margin_m": "approach_port_margin_m",
    },
    run=lambda s, th: dark_approach(s.view, s.now_t_ms, th),
)
