"""Rendezvous: two vessels close together and slow, outside ports and anchorages.

The engine keeps the pairs across evaluations: :func:`rendezvous_pairs` finds the pairs
close now, the engine remembers since when (``Scene.pair_since``), and the detector
reports the pairs close for long enough."""

from __future__ import annotations

import numpy as np

from pipeline.core.detectors.base import (
    Condition,
    DetectorSpec,
    Factor,
    Pair,
    VesselView,
    ais_silence_ms,
)
from pipeline.core.detectors.thresholds import Thresholds
from pipeline.core.geo import solar_elevation_deg

__all__ = ["DETECTOR", "rendezvous", "rendezvous_pairs"]


def rendezvous_pairs(
    v: VesselView, east_m: np.ndarray, north_m: np.ndarray, now_t_ms: int, th: Thresholds
) -> list[Pair]:
    """Pairs of vessels close together now: within ``rendezvous_distance_m``, both slower
    than ``rendezvous_speed_kn``, positions fresh, neither in a port or anchorage.

    Two dark targets of different cameras are never paired (likely one boat seen twice).

    :param east_m: local east coordinate of each row, m
    :param north_m: local north coordinate of each row, m
    :returns: ``(pair_key, row_a, row_b)`` sorted by key
    """
    from scipy.spatial import cKDTree

    if len(v) < 2:
        return []
    fresh = np.where(
        v.dark,
        now_t_ms - v.t_ms <= th.camera_lost_s * 1000.0,
        now_t_ms - v.t_ms <= np.maximum(th.fresh_fix_s * 1000.0, ais_silence_ms(v, th)),
    )
    slow = np.nan_to_num(v.sog_kn, nan=np.inf) < th.rendezvous_speed_kn
    ok = (
        fresh
        & slow
        & ~v.in_port
        & np.isfinite(east_m)
        & np.isfinite(north_m)
        & ((~v.dark) | (v.hits >= th.dark_min_hits))
    )
    idx = np.flatnonzero(ok)
    if idx.size < 2:
        return []
    pairs = cKDTree(np.column_stack([east_m[idx], north_m[idx]])).query_pairs(
        th.rendezvous_distance_m, output_type="ndarray"
    )
    out = []
    for a, b in pairs.tolist():
        ia, ib = int(idx[a]), int(idx[b])
        sa, sb = str(v.subject[ia]), str(v.subject[ib])
        if sa == sb:  # a vessel and the camera track of the same vessel
            continue
        if (
            v.dark[ia]
            and v.dark[ib]
            and sa.startswith("cam:")
            and sb.startswith("cam:")
            and sa.split(":")[1] != sb.split(":")[1]
        ):
            continue
        if sb < sa:
            ia, ib, sa, sb = ib, ia, sb, sa
        out.append((f"pair:{sa}+{sb}", ia, ib))
    out.sort()
    return out


def rendezvous(
    v: VesselView,
    pairs: list[Pair],
    since: dict[str, int],
    now_t_ms: int,
    th: Thresholds,
) -> list[Condition]:
    """Pairs close for at least ``rendezvous_min_s`` (``since``: when each pair was first
    seen close, maintained by the caller). Start = since + that time.

    Severity 45, + a dark partner 20, + night 15, + within ``loiter_coast_m`` of the coast 10.
    """
    out = []
    for key, a, b in pairs:
        t0 = since.get(key)
        if t0 is None or now_t_ms - t0 < th.rendezvous_min_s * 1000.0:
            continue
        start = int(t0 + th.rendezvous_min_s * 1000.0)
        lon = float((v.lon[a] + v.lon[b]) / 2)
        lat = float((v.lat[a] + v.lat[b]) / 2)
        f = [
            Factor(
                "vessels_met",
                45.0,
                f"{v.subject[a]} and {v.subject[b]} within {th.rendezvous_distance_m:.0f} m below {th.rendezvous_speed_kn:g} kn for >= {th.rendezvous_min_s / 60:.0f} min outside ports and anchorages",
            )
        ]
        if v.dark[a] or v.dark[b]:
            f.append(Factor("dark_partner", 20.0, "one of the vessels has no AIS identity"))
        if solar_elevation_deg(lon, lat, start) < th.night_sun_elevation_deg:
            f.append(Factor("night", 15.0, "sun below the horizon at the place and time"))
        if min(v.coast_m[a], v.coast_m[b]) <= th.loiter_coast_m:
            f.append(
                Factor(
                    "near_shore", 10.0, f"{min(v.coast_m[a], v.coast_m[b]):.0f} m from the coast"
                )
            )
        out.append(Condition("rendezvous", key, start, a, lon, lat, tuple(f), (a, b)))
    return out


DETECTOR = DetectorSpec(
    name="rendezvous",
    thresholds={
        "distance_m": "rendezvous_distance_m",
        "min_s": "rendezvous_min_s",
        "speed_kn": "rendezvous_speed_kn",
        "memory_s": "rendezvous_memory_s",
        "gap_s": "rendezvous_gap_s",
        "fresh_fix_s": "fresh_fix_s",
    },
    run=lambda s, th: rendezvous(s.view, list(s.pairs), dict(s.pair_since), s.now_t_ms, th),
)
