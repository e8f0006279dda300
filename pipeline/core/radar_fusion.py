"""Radar targets against AIS tracks: vectorised gating and one-to-one assignment.

Each AIS vessel's last fix is dead-reckoned (SOG/COG) to the time of each radar report;
the pair's residual distance is weighed by the pair's combined uncertainty (the radar
report's ``position_sigma_m``, the AIS position error, and a drift that grows with the
dead-reckoning time), pairs beyond ``gate_sigmas`` are gated out, and so are pairs that move
differently: where the radar's tracker gives the target's speed and course (``TTM``), its
velocity must lie within ``velocity_gate_kn`` plus ``velocity_gate_frac`` of the faster
speed of the vessel's (AIS SOG/COG): a skiff at 25 kn crossing a ferry's track at 14 kn
passes within a few hundred metres of it, inside the position gate far out, but it is not
the ferry. The rest are assigned one to one at the least total squared normalised distance
(:func:`pipeline.core.fusion.assign_pairs`), so one AIS vessel explains at most one report
of a scan and one report is explained by at most one vessel. A radar target that no AIS
vessel explains is *dark*: the input of ``dark_vessel`` and ``dark_approach`` from radar
alone.

Pure NumPy; ``O(N·M)`` for N vessels and M radar reports (a site has hundreds of each per
scan: a few milliseconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.core.fusion import KNOT_MPS, PairCosts, VesselArrays, assign_pairs
from pipeline.core.geo import lonlat_to_enu_m

__all__ = ["RadarArrays", "RadarFusionParams", "associate_radar", "radar_pairs"]


@dataclass(frozen=True)
class RadarArrays:
    """Radar reports as arrays.

    :param t_ms: (M,) event time of each report, ms UTC
    :param lon_deg: (M,) longitude, degrees
    :param lat_deg: (M,) latitude, degrees
    :param sigma_m: (M,) one-sigma position error, m
    :param speed_kn: (M,) the radar tracker's speed over ground, knots (``NaN``: not known,
        no velocity gate); ``None``: none known
    :param course_deg: (M,) the tracker's course over ground, degrees true (``NaN``: not
        known); ``None``: none known
    """

    t_ms: np.ndarray
    lon_deg: np.ndarray
    lat_deg: np.ndarray
    sigma_m: np.ndarray
    speed_kn: np.ndarray | None = None
    course_deg: np.ndarray | None = None

    @classmethod
    def from_lists(
        cls, t_ms, lon_deg, lat_deg, sigma_m, speed_kn=None, course_deg=None
    ) -> RadarArrays:
        """Arrays from sequences (``None`` in ``speed_kn``/``course_deg``: not known)."""

        def opt(a: Any) -> np.ndarray | None:
            if a is None:
                return None
            return np.array([np.nan if x is None else x for x in a], dtype=float).reshape(-1)

        return cls(
            np.asarray(t_ms, dtype=np.int64).reshape(-1),
            np.asarray(lon_deg, dtype=float).reshape(-1),
            np.asarray(lat_deg, dtype=float).reshape(-1),
            np.asarray(sigma_m, dtype=float).reshape(-1),
            opt(speed_kn),
            opt(course_deg),
        )

    def velocity_mps(self) -> tuple[np.ndarray, np.ndarray]:
        """(M,) east and north velocity from the tracker's speed and course, m/s (``NaN``:
        not known)."""
        m = len(self)
        if self.speed_kn is None or self.course_deg is None:
            nan = np.full(m, np.nan)
            return nan, nan.copy()
        c = np.radians(self.course_deg)
        return self.speed_kn * KNOT_MPS * np.sin(c), self.speed_kn * KNOT_MPS * np.cos(c)

    def __len__(self) -> int:
        return int(self.t_ms.shape[0])


@dataclass(frozen=True)
class RadarFusionParams:
    """Gates of the radar-AIS association.

    :param gate_sigmas: a pair whose normalised distance exceeds this is gated
    :param ais_sigma_m: one-sigma error of an AIS position, m
    :param drift_mps: growth of the dead-reckoning error per second of extrapolation, m/s
    :param max_dt_s: an AIS fix older (or newer) than this against the report is not used,
        s: three intervals of a Class B boat at rest (3 min, ITU-R M.1371), so a stopped
        boat whose receiver missed two reports is still explained by its AIS
    :param velocity_gate_kn: a pair whose velocities (the tracker's speed and course, the
        vessel's SOG and COG) differ by more than this plus ``velocity_gate_frac`` of the
        faster of the two speeds is gated, knots (the vector difference)
    :param velocity_gate_frac: the part of the gate that grows with speed: an ARPA tracker
        smooths course and speed over tens of seconds, so in a turn its course lags the
        vessel's AIS COG, by more the faster the vessel goes
    """

    gate_sigmas: float = 4.0
    ais_sigma_m: float = 20.0
    drift_mps: float = 0.5
    max_dt_s: float = 540.0
    velocity_gate_kn: float = 5.0
    velocity_gate_frac: float = 0.35


def radar_pairs(
    v: VesselArrays, r: RadarArrays, params: RadarFusionParams = RadarFusionParams()
) -> PairCosts:
    """The candidate vessel/report pairs inside the gate, with cost = squared normalised
    distance."""
    n, m = len(v), len(r)
    if n == 0 or m == 0:
        e = np.zeros(0, dtype=np.int64)
        return PairCosts(e, e.copy(), np.zeros(0), n, m)
    lon0, lat0 = float(np.nanmean(r.lon_deg)), float(np.nanmean(r.lat_deg))
    ve, vn = lonlat_to_enu_m(v.lon_deg, v.lat_deg, lon0, lat0)
    re, rn = lonlat_to_enu_m(r.lon_deg, r.lat_deg, lon0, lat0)
    moving = np.isfinite(v.sog_kn) & np.isfinite(v.cog_deg)
    speed = np.where(moving, v.sog_kn, 0.0) * KNOT_MPS
    cog = np.radians(np.where(moving, v.cog_deg, 0.0))
    dt_s = (r.t_ms[None, :] - v.t_ms[:, None]) / 1000.0  # (N, M)
    pe = ve[:, None] + (speed * np.sin(cog))[:, None] * dt_s
    pn = vn[:, None] + (speed * np.cos(cog))[:, None] * dt_s
    dist = np.hypot(pe - re[None, :], pn - rn[None, :])
    sigma = np.sqrt(
        r.sigma_m[None, :] ** 2 + params.ais_sigma_m**2 + (params.drift_mps * np.abs(dt_s)) ** 2
    )
    z = dist / sigma
    ok = (z <= params.gate_sigmas) & (np.abs(dt_s) <= params.max_dt_s) & np.isfinite(z)
    ok &= ~_moves_otherwise(v, r, params)
    row, col = np.nonzero(ok)
    return PairCosts(row.astype(np.int64), col.astype(np.int64), z[row, col] ** 2, n, m)


def _moves_otherwise(v: VesselArrays, r: RadarArrays, params: RadarFusionParams) -> np.ndarray:
    """(N, M) whether vessel and report are known to move differently: both velocities
    known (a vessel's SOG with no COG counts as at rest when under 1 kn) and their vector
    difference beyond the velocity gate."""
    n, m = len(v), len(r)
    if r.speed_kn is None or r.course_deg is None:
        return np.zeros((n, m), dtype=bool)
    re_, rn_ = r.velocity_mps()
    sog = v.sog_kn
    with np.errstate(invalid="ignore"):
        cog = np.where(np.isfinite(v.cog_deg), v.cog_deg, np.where(sog < 1.0, 0.0, np.nan))
        c = np.radians(cog)
        ve_, vn_ = sog * KNOT_MPS * np.sin(c), sog * KNOT_MPS * np.cos(c)
        diff_kn = np.hypot(ve_[:, None] - re_[None, :], vn_[:, None] - rn_[None, :]) / KNOT_MPS
        fast_kn = np.maximum(np.abs(sog)[:, None], np.abs(r.speed_kn)[None, :])
        limit_kn = params.velocity_gate_kn + params.velocity_gate_frac * fast_kn
        return np.isfinite(diff_kn) & (diff_kn > limit_kn)


def associate_radar(
    v: VesselArrays, r: RadarArrays, params: RadarFusionParams = RadarFusionParams()
) -> np.ndarray:
    """The AIS vessel (index into ``v``) that explains each radar report, ``-1``: none (a
    dark target).

    >>> v = VesselArrays.from_lists([412000001], [0], [110.30], [20.10], [0.0], [0.0])
    >>> r = RadarArrays.from_lists([1000, 1000], [110.3001, 110.40], [20.10, 20.10], [50, 50])
    >>> associate_radar(v, r).tolist()
    [0, -1]
    """
    out = np.full(len(r), -1, dtype=np.int64)
    rows, cols = assign_pairs(radar_pairs(v, r, params))
    out[cols] = rows
    return out
