"""Outside its home harbours: a registered vessel stopping at night away from every
authorised home harbour the registry lists for it."""

from __future__ import annotations

import numpy as np

from pipeline.core.detectors.base import (
    Condition,
    DetectorSpec,
    Factor,
    VesselView,
    condition_at,
    night_mask,
    outside_zones,
)
from pipeline.core.detectors.registry_facts import REGISTERED
from pipeline.core.detectors.thresholds import Thresholds

__all__ = ["DETECTOR", "outside_home_harbour"]


def outside_home_harbour(v: VesselView, now_t_ms: int, th: Thresholds) -> list[Condition]:
    """A registered vessel with home harbours, stopped (below ``stop_speed_kn``) for
    ``home_stop_s`` at night (sun below ``night_sun_elevation_deg`` at its place at
    ``now_t_ms``), farther than ``home_margin_m`` from each of its home harbours.
    Start = stop + ``home_stop_s``. Severity 35, + 15 when outside every authorised zone
    of the site as well."""
    reg = v.registry
    if reg is None or len(v) == 0:
        return []
    stop_start = v.stopped_since_t_ms + th.home_stop_s * 1000.0
    away = np.nan_to_num(reg.home_harbour_m, nan=-1.0) > th.home_margin_m
    cand = np.flatnonzero(
        (~v.dark)
        & (reg.status == REGISTERED)
        & away
        & (v.stopped_since_t_ms >= 0)
        & (stop_start <= now_t_ms)
    )
    if cand.size == 0:
        return []
    night = night_mask(v, cand, np.full(cand.size, now_t_ms, dtype=np.int64), th)
    elsewhere = outside_zones(v, th)
    out = []
    for i in cand[night].tolist():
        dist = reg.home_harbour_m[i]
        where = f"{dist / 1000.0:.1f} km from" if np.isfinite(dist) else "far from"
        f = [
            Factor(
                "away_from_home",
                35.0,
                f"stopped at night {where} its home harbours ({reg.home_harbours[i]}) "
                f"for {(now_t_ms - v.stopped_since_t_ms[i]) / 60000.0:.0f} min",
            )
        ]
        if elsewhere[i]:
            f.append(Factor("outside_authorised_zones", 15.0, "not in any authorised zone either"))
        out.append(condition_at("outside_home_harbour", v, i, int(stop_start[i]), f))
    return out


DETECTOR = DetectorSpec(
    name="outside_home_harbour",
    thresholds={"stop_s": "home_stop_s", "margin_m": "home_margin_m"},
    run=lambda s, th: outside_home_harbour(s.view, s.now_t_ms, th),
)
