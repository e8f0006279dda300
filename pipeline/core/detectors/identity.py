"""Identity anomaly: an invalid MMSI, no name and no call sign (the "三无" profile), a
changed name or call sign, and against the vessel registry an unregistered Chinese-MID
MMSI, an AIS name that is not the registered one, or a lapsed registration
(:mod:`pipeline.core.detectors.registry_rules`). Its factors also raise the severity of
other detectors."""

from __future__ import annotations

import numpy as np

from pipeline.core.detectors.base import (
    Condition,
    DetectorSpec,
    Factor,
    VesselView,
)
from pipeline.core.detectors.registry_rules import registry_anomalies, registry_factors
from pipeline.core.detectors.thresholds import Thresholds

__all__ = ["DETECTOR", "identity_anomaly", "identity_factors"]


def identity_factors(v: VesselView, i: int, now: int, th: Thresholds) -> list[Factor]:
    """The identity anomalies of row ``i`` of ``v`` at ``now`` (ms UTC), as factors."""
    out = []
    if v.invalid_mmsi[i]:
        out.append(
            Factor(
                "invalid_mmsi",
                40.0,
                f"MMSI {int(v.mmsi[i])} is not a valid ship or station MMSI (ITU-R M.585 MID 201-775)",
            )
        )
    if (
        v.shipish[i]
        and v.no_name[i]
        and v.no_call_sign[i]
        and now - v.first_t_ms[i] >= th.identity_grace_s * 1000
    ):
        out.append(
            Factor(
                "no_name_no_call_sign",
                30.0,
                f"no name and no call sign after {th.identity_grace_s / 60:.0f} min of AIS (三无 profile)",
            )
        )
    if v.identity_change_t_ms[i] >= 0:
        out.append(Factor("identity_change", 30.0, "name or call sign changed"))
    return out + registry_factors(v, i, now)


def identity_anomaly(v: VesselView, now_t_ms: int, th: Thresholds) -> list[Condition]:
    """Invalid MMSI/MID (ITU-R M.585), no name and no call sign after
    ``identity_grace_s`` (the "三无" profile), or a changed name/call sign.
    Against the registry: an unregistered Chinese-MID MMSI (40), a name mismatch (30), a
    lapsed registration (30).
    Start = the earliest applicable time. Severity = sum of the anomalies (40/30/30)."""
    if len(v) == 0:
        return []
    grace = v.first_t_ms + th.identity_grace_s * 1000.0
    sanwu = v.shipish & v.no_name & v.no_call_sign & (grace <= now_t_ms)
    change = v.identity_change_t_ms >= 0
    registry, registry_start = registry_anomalies(v, now_t_ms)
    ok = (~v.dark) & (v.invalid_mmsi | sanwu | change | registry)
    rows = np.flatnonzero(ok)
    out = []
    for i in rows.tolist():
        starts = []
        if v.invalid_mmsi[i]:
            starts.append(v.first_t_ms[i])
        if sanwu[i]:
            starts.append(grace[i])
        if change[i]:
            starts.append(v.identity_change_t_ms[i])
        if registry[i]:
            starts.append(registry_start[i])
        f = identity_factors(v, i, now_t_ms, th)
        out.append(
            Condition(
                "identity_anomaly",
                str(v.subject[i]),
                int(min(starts)),
                i,
                float(v.lon[i]),
                float(v.lat[i]),
                tuple(f),
                (i,),
            )
        )
    return out


DETECTOR = DetectorSpec(
    name="identity_anomaly",
    thresholds={"grace_s": "identity_grace_s"},
    run=lambda s, th: identity_anomaly(s.view, s.now_t_ms, th),
)
