"""Radar targets against AIS tracks: vectorised gating and one-to-one assignment.

Each AIS vessel's last fix is dead-reckoned (SOG/COG) to the time of each radar report;
the pair's residual distance is weighed by the pair's combined uncertainty (the radar
report's ``position_sigma_m``, the AIS position error, and a drift that grows with the
dead-reckoning time), pairs beyond ``gate_sigmas`` are gated out, and the rest are assigned
one to one at the least total squared normalised distance
(:func:`pipeline.core.fusion.assign_pairs`). A radar target that no AIS vessel explains is
*dark*: the input of ``dark_vessel`` and ``dark_approach`` from radar alone.

Pure NumPy; ``O(N·M)`` for N vessels and M radar reports (a site has hundreds of each per
scan: a few milliseconds).
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """

    t_ms: np.ndarray
    lon_deg: np.ndarray
    lat_deg: np.ndarray
    sigma_m: np.ndarray

    @classmethod
    def from_lists(cls, t_ms, lon_deg, lat_deg, sigma_m) -> RadarArrays:
        return cls(
            np.asarray(t_ms, dtype=np.int64).reshape(-1),
            np.asarray(lon_deg, dtype=float).reshape(-1),
            np.asarray(lat_deg, dtype=float).reshape(-1),
            np.asarray(sigma_m, dtype=float).reshape(-1),
        )

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
    """

    gate_sigmas: float = 4.0
    ais_sigma_m: float = 20.0
    drift_mps: float = 0.5
    max_dt_s: float = 540.0


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
    row, col = np.nonzero(ok)
    return PairCosts(row.astype(np.int64), col.astype(np.int64), z[row, col] ** 2, n, m)


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
