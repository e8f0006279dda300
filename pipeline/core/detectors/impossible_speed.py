"""Impossible speed: consecutive fixes of one MMSI too far apart for any vessel (a shared
MMSI or spoofed positions)."""

from __future__ import annotations

import numpy as np

from pipeline.core.detectors.base import (
    Condition,
    DetectorSpec,
    Factor,
    VesselView,
)
from pipeline.core.detectors.thresholds import Thresholds

__all__ = ["DETECTOR", "impossible_speed"]


def impossible_speed(v: VesselView, now_t_ms: int, th: Thresholds) -> list[Condition]:
    """An implied speed between consecutive fixes above ``max_implied_speed_kn`` (shared
    MMSI or spoofing), held open ``jump_hold_s`` after the latest jump. Start = first jump.
    Severity 40, + 20 above 100 kn."""
    if len(v) == 0:
        return []
    ok = (~v.dark) & (v.jump_t_ms >= 0) & (now_t_ms - v.last_jump_t_ms <= th.jump_hold_s * 1000.0)
    out = []
    for i in np.flatnonzero(ok).tolist():
        f = [
            Factor(
                "implied_speed",
                40.0,
                f"implied speed {v.jump_speed_kn[i]:.0f} kn between consecutive fixes (limit {th.max_implied_speed_kn:g} kn)",
            )
        ]
        if v.jump_speed_kn[i] > 100.0:
            f.append(
                Factor(
                    "far_beyond_any_vessel",
                    20.0,
                    "no vessel moves faster than 100 kn: two transmitters share this MMSI or positions are spoofed",
                )
            )
        out.append(
            Condition(
                "impossible_speed",
                str(v.subject[i]),
                int(v.jump_t_ms[i]),
                i,
                float(v.lon[i]),
                float(v.lat[i]),
                tuple(f),
                (i,),
            )
        )
    return out


DETECTOR = DetectorSpec(
    name="impossible_speed",
    thresholds={"hold_s": "jump_hold_s"},
    run=lambda s, th: impossible_speed(s.view, s.now_t_ms, th),
)
