"""Radar target geometry: polar plots to geo positions, their uncertainty, and event times.

A coastal or ARPA radar reports each tracked target as range and bearing from its antenna
(NMEA 0183 ``TTM``) or as a latitude/longitude it computed itself (``TLL``). This module
turns them into WGS84 positions with a one-sigma uncertainty that grows with range (the
bearing error sweeps an arc ``range × σ_bearing`` wide), and gives the NMEA time of day
its date from the receive time. Pure NumPy: every function takes arrays (one element per
target) and broadcasts scalars.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.core.geo import destination_point, haversine_m

__all__ = [
    "DAY_MS",
    "DISTANCE_UNIT_M",
    "RadarConfig",
    "SPEED_UNIT_KN",
    "event_time_ms",
    "polar_to_lonlat",
    "position_sigma_m",
    "range_from_lonlat",
    "true_bearing_deg",
]

DAY_MS = 86_400_000

#: metres per unit of the TTM distance/speed unit field: N nautical miles, K kilometres,
#: S statute miles
DISTANCE_UNIT_M: dict[str, float] = {"N": 1852.0, "K": 1000.0, "S": 1609.344}

#: knots per unit of TTM speed: N knots, K km/h, S statute miles per hour
SPEED_UNIT_KN: dict[str, float] = {"N": 1.0, "K": 1000.0 / 1852.0, "S": 1609.344 / 1852.0}


@dataclass(frozen=True)
class RadarConfig:
    """One radar of a site.

    :param height_m: antenna height above the sea, m
    :param heading_reference: ``true``: bearings are degrees true (north-stabilised, ``T``);
        ``fixed``: relative bearings (``R``) are measured from ``heading_deg``
    :param heading_deg: true bearing of the antenna's fixed reference, degrees (``None``:
        relative bearings cannot be used and are rejected)
    :param range_sigma_m: one-sigma range error, m
    :param bearing_sigma_deg: one-sigma bearing error, degrees
    :param max_range_m: the radar's instrumented range; targets beyond it are rejected, m
    :param addresses: sender IP addresses of the radar's output (listeners map a peer to
        its radar by these)
    :param sac: ASTERIX System Area Code of the radar's data source (``I010/010``), 0-255
    :param sic: ASTERIX System Identification Code of the radar's data source, 0-255
    """

    id: str
    lon: float
    lat: float
    height_m: float
    range_sigma_m: float
    bearing_sigma_deg: float
    max_range_m: float
    heading_reference: str = "true"
    heading_deg: float | None = None
    name: str | None = None
    addresses: tuple[str, ...] = ()
    sac: int | None = None
    sic: int | None = None


def true_bearing_deg(bearing_deg, relative, reference_heading_deg) -> np.ndarray:
    """Bearings made true: a relative bearing (``relative`` true) is measured from the
    radar's reference heading (a shore radar's fixed antenna reference, degrees true).

    :param bearing_deg: bearing as reported, degrees
    :param relative: whether each bearing is relative (``R``) rather than true (``T``)
    :param reference_heading_deg: the reference heading, degrees true (NaN: unknown)
    :returns: degrees true in ``[0, 360)``; NaN where a relative bearing has no reference

    >>> true_bearing_deg(np.array([10.0, 10.0]), np.array([False, True]), 355.0).tolist()
    [10.0, 5.0]
    """
    b = np.asarray(bearing_deg, dtype=float)
    rel = np.asarray(relative, dtype=bool)
    ref = np.broadcast_to(np.asarray(reference_heading_deg, dtype=float), b.shape)
    return np.where(rel, np.mod(b + ref, 360.0), np.mod(b, 360.0))


def polar_to_lonlat(
    radar_lon_deg: float, radar_lat_deg: float, bearing_deg, range_m
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of radar plots along great circles from the antenna.

    :param radar_lon_deg: antenna longitude, degrees WGS84
    :param radar_lat_deg: antenna latitude, degrees WGS84
    :param bearing_deg: bearing of each target, degrees true
    :param range_m: range of each target along the sea surface, m
    :returns: ``(lon_deg, lat_deg)``

    >>> lon, lat = polar_to_lonlat(110.0, 20.0, np.array([0.0]), np.array([1852.0]))
    >>> round(float(lat[0]), 4), round(float(lon[0]), 4)
    (20.0167, 110.0)
    """
    return destination_point(radar_lon_deg, radar_lat_deg, bearing_deg, range_m)


def position_sigma_m(range_m, range_sigma_m: float, bearing_sigma_deg: float) -> np.ndarray:
    """One-sigma horizontal position error of a radar plot, m.

    The error ellipse has ``range_sigma_m`` along the line of sight and
    ``range × σ_bearing`` across it; this is the root of the sum of their squares (the
    radius that holds the same variance), so it grows linearly with range once the
    cross-range term dominates (1° at 10 km is 175 m).

    :param range_m: range of each target, m
    :param range_sigma_m: one-sigma range error of the radar, m
    :param bearing_sigma_deg: one-sigma bearing error of the radar, degrees

    >>> position_sigma_m(np.array([0.0, 10_000.0]), 30.0, 1.0).round(1).tolist()
    [30.0, 177.1]
    """
    cross = np.asarray(range_m, dtype=float) * np.radians(bearing_sigma_deg)
    return np.hypot(range_sigma_m, cross)


def event_time_ms(time_of_day_ms, rx_t_ms) -> np.ndarray:
    """The event time of an NMEA UTC time of day, dated from the receive time.

    NMEA 0183 radar sentences carry ``hhmmss.ss`` without a date; the date taken is the
    one that puts the time nearest the receive time (so a target stamped 23:59:59 and
    received at 00:00:01 is yesterday's). A missing time (negative) gives the receive time.

    :param time_of_day_ms: ms since UTC midnight, negative where absent
    :param rx_t_ms: receive time, ms since the epoch UTC
    :returns: ms since the epoch UTC, int64

    >>> event_time_ms(np.array([86_399_000, -1]), np.array([86_401_000, 5])).tolist()
    [86399000, 5]
    """
    tod = np.asarray(time_of_day_ms, dtype=np.int64)
    rx = np.asarray(rx_t_ms, dtype=np.int64)
    day0 = rx - np.mod(rx, DAY_MS)
    t = day0 + tod
    t = np.where(t - rx > DAY_MS // 2, t - DAY_MS, t)
    t = np.where(rx - t > DAY_MS // 2, t + DAY_MS, t)
    return np.where(tod >= 0, t, rx)


def range_from_lonlat(radar_lon_deg: float, radar_lat_deg: float, lon_deg, lat_deg) -> np.ndarray:
    """Range of positions from the antenna (for ``TLL`` targets), m."""
    return haversine_m(radar_lon_deg, radar_lat_deg, lon_deg, lat_deg)
