"""Radar reports against camera targets: one boat seen by a radar and a shore camera is one
target.

A camera places a target by its bearing (robust: a fraction of a degree) and by the
depression of its waterline below the horizon (weak: the range error grows roughly with
the square of the range, hundreds of metres a few kilometres out). The gate is therefore
elliptic, along and across the camera's line of sight: each camera target's last position
is dead-reckoned (its own velocity over the water) to the time of each radar report, the
residual is split into its component along the line of sight (σ² = the camera's range
sigma² + the radar's position sigma² + drift²) and across it (σ² = (range · bearing
sigma)² + the radar's sigma² + drift²), and a pair whose squared normalised distance
exceeds ``gate_sigmas²`` is gated out. The rest are assigned one to one at the least total
squared normalised distance (:func:`pipeline.core.fusion.assign_pairs`).

Pure NumPy; ``O(N·M)`` for N camera targets and M radar reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.core.fusion import PairCosts, assign_pairs
from pipeline.core.geo import lonlat_to_enu_m
from pipeline.core.radar_fusion import RadarArrays

__all__ = [
    "CameraTargetArrays",
    "RadarCameraParams",
    "associate_radar_camera",
    "radar_camera_pairs",
]


@dataclass(frozen=True)
class CameraTargetArrays:
    """Camera targets as arrays (their last placed position).

    :param t_ms: (N,) event time of the target's last position, ms UTC
    :param lon_deg: (N,) longitude of that position, degrees
    :param lat_deg: (N,) latitude, degrees
    :param east_mps: (N,) velocity east over the water, m/s (0 where not known)
    :param north_mps: (N,) velocity north, m/s
    :param cam_lon_deg: (N,) longitude of the camera that placed it, degrees
    :param cam_lat_deg: (N,) latitude of the camera, degrees
    :param range_sigma_m: (N,) one-sigma range error of the position, m (NaN: not known,
        ``RadarCameraParams.range_frac`` of the range is used)
    :param bearing_sigma_deg: (N,) one-sigma bearing error, degrees
    """

    t_ms: np.ndarray
    lon_deg: np.ndarray
    lat_deg: np.ndarray
    east_mps: np.ndarray
    north_mps: np.ndarray
    cam_lon_deg: np.ndarray
    cam_lat_deg: np.ndarray
    range_sigma_m: np.ndarray
    bearing_sigma_deg: np.ndarray

    @classmethod
    def from_lists(
        cls, t_ms, lon_deg, lat_deg, east_mps, north_mps, cam_lon_deg, cam_lat_deg,
        range_sigma_m, bearing_sigma_deg,
    ) -> CameraTargetArrays:  # fmt: skip
        def f(x):
            return np.asarray(x, dtype=float).reshape(-1)

        return cls(
            np.asarray(t_ms, dtype=np.int64).reshape(-1), f(lon_deg), f(lat_deg), f(east_mps),
            f(north_mps), f(cam_lon_deg), f(cam_lat_deg), f(range_sigma_m), f(bearing_sigma_deg),
        )  # fmt: skip

    def __len__(self) -> int:
        return int(self.t_ms.shape[0])


@dataclass(frozen=True)
class RadarCameraParams:
    """Gates of the radar-camera association.

    :param gate_sigmas: a pair whose normalised distance exceeds this is gated
    :param range_frac: the camera's range sigma as a fraction of the range where the
        target's own is not known
    :param floor_m: least one-sigma error of either axis, m (boat size, anchoring of the box)
    :param drift_mps: growth of the dead-reckoning error per second of extrapolation, m/s
    :param max_dt_s: a camera position older (or newer) than this against the report is not
        used, s
    """

    gate_sigmas: float = 4.0
    range_frac: float = 0.15
    floor_m: float = 15.0
    drift_mps: float = 1.0
    max_dt_s: float = 15.0


def radar_camera_pairs(
    c: CameraTargetArrays, r: RadarArrays, params: RadarCameraParams = RadarCameraParams()
) -> PairCosts:
    """The candidate camera-target/report pairs inside the gate, with cost = squared
    normalised distance (rows: camera targets, columns: radar reports)."""
    n, m = len(c), len(r)
    ok_c = np.isfinite(c.lon_deg) & np.isfinite(c.lat_deg)
    if n == 0 or m == 0 or not ok_c.any():
        e = np.zeros(0, dtype=np.int64)
        return PairCosts(e, e.copy(), np.zeros(0), n, m)
    lon0, lat0 = float(np.nanmean(r.lon_deg)), float(np.nanmean(r.lat_deg))
    te, tn = lonlat_to_enu_m(c.lon_deg, c.lat_deg, lon0, lat0)
    ce, cn = lonlat_to_enu_m(c.cam_lon_deg, c.cam_lat_deg, lon0, lat0)
    re, rn = lonlat_to_enu_m(r.lon_deg, r.lat_deg, lon0, lat0)
    # the camera's line of sight to its target (unit vector) and the range along it
    rng = np.hypot(te - ce, tn - cn)
    ue = np.where(rng > 0, (te - ce) / np.maximum(rng, 1e-9), 1.0)
    un = np.where(rng > 0, (tn - cn) / np.maximum(rng, 1e-9), 0.0)
    dt_s = (r.t_ms[None, :] - c.t_ms[:, None]) / 1000.0  # (N, M)
    ve = np.nan_to_num(c.east_mps)[:, None]
    vn = np.nan_to_num(c.north_mps)[:, None]
    de = re[None, :] - (te[:, None] + ve * dt_s)
    dn = rn[None, :] - (tn[:, None] + vn * dt_s)
    along = de * ue[:, None] + dn * un[:, None]
    across = -de * un[:, None] + dn * ue[:, None]
    rs = np.where(np.isfinite(c.range_sigma_m), c.range_sigma_m, params.range_frac * rng)
    bs = rng * np.radians(np.nan_to_num(c.bearing_sigma_deg, nan=0.5))
    common = r.sigma_m[None, :] ** 2 + (params.drift_mps * dt_s) ** 2 + params.floor_m**2
    z2 = along**2 / (rs[:, None] ** 2 + common) + across**2 / (bs[:, None] ** 2 + common)
    ok = (
        (z2 <= params.gate_sigmas**2)
        & (np.abs(dt_s) <= params.max_dt_s)
        & np.isfinite(z2)
        & ok_c[:, None]
    )
    row, col = np.nonzero(ok)
    return PairCosts(row.astype(np.int64), col.astype(np.int64), z2[row, col], n, m)


def associate_radar_camera(
    c: CameraTargetArrays, r: RadarArrays, params: RadarCameraParams = RadarCameraParams()
) -> np.ndarray:
    """The camera target (index into ``c``) that is the same vessel as each radar report,
    ``-1``: none.

    A camera 20 m up places a boat 2 km north with a range error of ~200 m but a bearing
    error of a few metres: a report 150 m farther along the line of sight is the boat, one
    150 m to the side is not.

    >>> c = CameraTargetArrays.from_lists([0], [110.0], [20.018], [0], [0], [110.0], [20.0],
    ...                                   [200.0], [0.2])
    >>> r = RadarArrays.from_lists([1000, 1000], [110.0, 110.00145], [20.0194, 20.018],
    ...                            [30.0, 30.0])
    >>> associate_radar_camera(c, r).tolist()
    [0, -1]
    """
    out = np.full(len(r), -1, dtype=np.int64)
    rows, cols = assign_pairs(radar_camera_pairs(c, r, params))
    out[cols] = rows
    return out
