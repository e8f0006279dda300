"""Which stretches of the shore no working camera covers right now.

The coastline of the site is cut into pieces of at most ``step_m``; a piece is covered
when its midpoint lies within ``range_m`` of a working camera and inside that camera's
horizontal field of view. Range is the quantity cameras are worst at (``DESIGN.md`` §3),
so ``range_m`` is a configured figure, not a promise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from pipeline.core.geo import bearing_deg, haversine_m


def coast_pieces(segments: np.ndarray, step_m: float = 250.0) -> np.ndarray:
    """Coastline edges ``(N, 4)`` (lon1, lat1, lon2, lat2 degrees) cut into pieces of at
    most ``step_m`` metres, same layout."""
    out = []
    for lon1, lat1, lon2, lat2 in np.asarray(segments, dtype=float).reshape(-1, 4):
        n = max(1, int(np.ceil(float(haversine_m(lon1, lat1, lon2, lat2)) / step_m)))
        f = np.linspace(0.0, 1.0, n + 1)
        lons = lon1 + (lon2 - lon1) * f
        lats = lat1 + (lat2 - lat1) * f
        out.append(np.column_stack([lons[:-1], lats[:-1], lons[1:], lats[1:]]))
    return np.concatenate(out) if out else np.zeros((0, 4))


def covered(
    pieces: np.ndarray,
    cameras: Sequence[tuple[float, float, float, float]],
    range_m: float,
) -> np.ndarray:
    """Which pieces a camera sees.

    :param cameras: ``(lon, lat, heading_deg, hfov_deg)`` of each working camera
    :param range_m: how far a camera is taken to see, m
    :returns: boolean mask over ``pieces``
    """
    mid_lon = (pieces[:, 0] + pieces[:, 2]) / 2
    mid_lat = (pieces[:, 1] + pieces[:, 3]) / 2
    seen = np.zeros(len(pieces), dtype=bool)
    for lon, lat, heading, hfov in cameras:
        d = haversine_m(lon, lat, mid_lon, mid_lat)
        b = bearing_deg(lon, lat, mid_lon, mid_lat)
        off = np.abs((b - heading + 180.0) % 360.0 - 180.0)
        seen |= (d <= range_m) & ((off <= hfov / 2) | (d < 50.0))
    return seen


def piece_lengths_m(pieces: np.ndarray) -> np.ndarray:
    return np.asarray(haversine_m(pieces[:, 0], pieces[:, 1], pieces[:, 2], pieces[:, 3]))


def uncovered_report(
    pieces: np.ndarray, cameras: Iterable[tuple[float, float, float, float]], range_m: float
) -> dict:
    """``{"uncovered": [[lon1, lat1, lon2, lat2], ...], "uncovered_km": .., "coast_km": ..}``."""
    cams = list(cameras)
    mask = covered(pieces, cams, range_m) if cams else np.zeros(len(pieces), dtype=bool)
    lengths = piece_lengths_m(pieces)
    return {
        "uncovered": np.round(pieces[~mask], 6).tolist(),
        "uncovered_km": round(float(lengths[~mask].sum()) / 1000, 2),
        "coast_km": round(float(lengths.sum()) / 1000, 2),
        "range_m": range_m,
    }
