"""Loitering: an AIS vessel slow near the coast, outside authorised zones, for a long time."""

from __future__ import annotations

import numpy as np

from pipeline.core.detectors.base import (
    Condition,
    DetectorSpec,
    Factor,
    VesselView,
    ais_silence_ms,
    condition_at,
    night_mask,
    outside_zones,
)
from pipeline.core.detectors.thresholds import Thresholds

__all__ = ["DETECTOR", "loitering"]


def loitering(v: VesselView, now_t_ms: int, th: Thresholds) -> list[Condition]:
    """An AIS vessel slower than ``loiter_speed_kn`` for ``loiter_min_s`` within
    ``loiter_coast_m`` of the coast, outside authorised zones, still reporting.
    Start = slow since + that time. Severity 30, + night 15."""
    if len(v) == 0:
        return []
    ok = (
        (~v.dark)
        & (v.slow_since_t_ms >= 0)
        & (v.slow_since_t_ms + th.loiter_min_s * 1000.0 <= now_t_ms)
        & (v.coast_m <= th.loiter_coast_m)
        & outside_zones(v, th)
        & ~v.on_land
        & (v.t_ms + ais_silence_ms(v, th) >= now_t_ms)
    )
    rows = np.flatnonzero(ok)
    start = (v.slow_since_t_ms[rows] + th.loiter_min_s * 1000.0).astype(np.int64)
    night = night_mask(v, rows, start, th) if rows.size else np.zeros(0, bool)
    out = []
    for j, i in enumerate(rows.tolist()):
        f = [
            Factor(
                "loitering_near_shore",
                30.0,
                f"below {th.loiter_speed_kn:g} kn for >= {th.loiter_min_s / 60:.0f} min {v.coast_m[i]:.0f} m from the coast outside authorised zones",
            )
        ]
        if night[j]:
            f.append(Factor("night", 15.0, "sun below the horizon at the place and time"))
        out.append(condition_at("loitering", v, i, int(start[j]), f))
    return out


DETECTOR = DetectorSpec(
    name="loitering",
    thresholds={"min_s": "loiter_min_s", "coast_m": "loiter_coast_m"},
    run=lambda s, th: loitering(s.view, s.now_t_ms, th),
)
