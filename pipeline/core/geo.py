"""Geodesy and area geometry, vectorised over arrays of points.

Everything here is pure NumPy (+ ``scipy.spatial``): no I/O, no wall clock. Coordinates
are WGS84 degrees in ``lon, lat`` order; distances are metres; bearings are degrees true,
clockwise from north; times are ms since the Unix epoch, UTC.

Two families of helpers:

- great-circle formulas on a sphere of the mean Earth radius (IUGG R1 = 6,371,008.8 m):
  :func:`haversine_m`, :func:`bearing_deg`, :func:`destination_point`; error < 0.5 % against
  the ellipsoid, far below AIS and camera geo-referencing errors (DESIGN.md §3: tens of
  metres at best);
- a local east/north/up tangent plane (:func:`lonlat_to_enu_m`, :func:`enu_m_to_lonlat`)
  for the geometry of one site (tens of km across), where a flat projection is exact to
  well under 1 %.

:class:`AreaGeometry` is the coastline, land and authorised zones of one site (built by
``pipeline.site.Site.geometry()``), with vectorised queries: distance to the coast, on
land, nearest authorised zone. Distances to the coast use sub-segments of at most
:data:`INDEX_PIECE_M` indexed in a k-d tree, so 10^4 points against 10^4 coast segments
takes milliseconds, and the answer is exact (not sampled).

:func:`solar_elevation_deg` is the NOAA solar-position algorithm (Meeus), used to decide
"night at the site" (sun below -0.833 deg, the standard sunrise/sunset altitude that
accounts for refraction and the solar radius).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

__all__ = [
    "EARTH_RADIUS_M",
    "NIGHT_SUN_ELEVATION_DEG",
    "AreaGeometry",
    "Zone",
    "bearing_deg",
    "destination_point",
    "enu_m_to_lonlat",
    "haversine_m",
    "is_night",
    "lonlat_to_enu_m",
    "point_segment_distance_m",
    "PolygonIndex",
    "points_in_polygon",
    "solar_elevation_deg",
]

#: Mean Earth radius R1 of the IUGG, metres.
EARTH_RADIUS_M = 6_371_008.8
#: Sun altitude at sunrise/sunset used by NOAA and almanacs (refraction + solar radius), deg.
NIGHT_SUN_ELEVATION_DEG = -0.833
#: Longest coast sub-segment in the distance index, metres.
INDEX_PIECE_M = 200.0

ZONE_KINDS = ("port", "pier", "anchorage", "shipyard", "fishing_harbour")


def _f(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


# --------------------------------------------------------------------------- great circle
def haversine_m(lon1_deg, lat1_deg, lon2_deg, lat2_deg) -> np.ndarray:
    """Great-circle distance between points (broadcasting), metres.

    :param lon1_deg: longitude of the first point(s), degrees
    :param lat1_deg: latitude of the first point(s), degrees
    :param lon2_deg: longitude of the second point(s), degrees
    :param lat2_deg: latitude of the second point(s), degrees
    :returns: distance in metres, NaN where an input is NaN

    >>> round(float(haversine_m(0.0, 0.0, 1.0, 0.0)))  # one degree on the equator
    111195
    """
    lon1, lat1, lon2, lat2 = (np.radians(_f(v)) for v in (lon1_deg, lat1_deg, lon2_deg, lat2_deg))
    a = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def bearing_deg(lon1_deg, lat1_deg, lon2_deg, lat2_deg) -> np.ndarray:
    """Initial great-circle bearing from point 1 to point 2, degrees true in [0, 360).

    >>> float(np.round(bearing_deg(0.0, 0.0, 0.0, 1.0), 6))
    0.0
    >>> float(np.round(bearing_deg(0.0, 0.0, 1.0, 0.0), 6))
    90.0
    """
    lon1, lat1, lon2, lat2 = (np.radians(_f(v)) for v in (lon1_deg, lat1_deg, lon2_deg, lat2_deg))
    dlon = lon2 - lon1
    y = np.sin(dlon) * np.cos(lat2)
    x = np.cos(lat1) * np.sin(lat2) - np.sin(lat1) * np.cos(lat2) * np.cos(dlon)
    return np.mod(np.degrees(np.arctan2(y, x)), 360.0)


def destination_point(lon_deg, lat_deg, bearing_deg_, distance_m) -> tuple[np.ndarray, np.ndarray]:
    """Point reached from a start point along a great circle.

    :param lon_deg: start longitude, degrees
    :param lat_deg: start latitude, degrees
    :param bearing_deg_: initial bearing, degrees true
    :param distance_m: distance travelled, metres
    :returns: ``(lon_deg, lat_deg)`` of the destination, longitude wrapped to [-180, 180)
    """
    lon1, lat1, brg = np.radians(_f(lon_deg)), np.radians(_f(lat_deg)), np.radians(_f(bearing_deg_))
    d = _f(distance_m) / EARTH_RADIUS_M
    lat2 = np.arcsin(np.sin(lat1) * np.cos(d) + np.cos(lat1) * np.sin(d) * np.cos(brg))
    lon2 = lon1 + np.arctan2(
        np.sin(brg) * np.sin(d) * np.cos(lat1), np.cos(d) - np.sin(lat1) * np.sin(lat2)
    )
    lon2 = np.mod(np.degrees(lon2) + 180.0, 360.0) - 180.0
    return lon2, np.degrees(lat2)


# --------------------------------------------------------------------------- local plane
def lonlat_to_enu_m(
    lon_deg, lat_deg, lon0_deg: float, lat0_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Project to a local east/north plane (equirectangular about an origin), metres.

    Exact to well under 1 % within ~50 km of the origin, which is the scale of one site.

    :param lon0_deg: origin longitude, degrees
    :param lat0_deg: origin latitude, degrees
    :returns: ``(east_m, north_m)``
    """
    k = np.radians(1.0) * EARTH_RADIUS_M
    east = (
        (np.mod(_f(lon_deg) - lon0_deg + 180.0, 360.0) - 180.0) * k * np.cos(np.radians(lat0_deg))
    )
    north = (_f(lat_deg) - lat0_deg) * k
    return east, north


def enu_m_to_lonlat(
    east_m, north_m, lon0_deg: float, lat0_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`lonlat_to_enu_m`: ``(lon_deg, lat_deg)``."""
    k = np.radians(1.0) * EARTH_RADIUS_M
    return (
        lon0_deg + _f(east_m) / (k * np.cos(np.radians(lat0_deg))),
        lat0_deg + _f(north_m) / k,
    )


# --------------------------------------------------------------------------- plane geometry
def point_segment_distance_m(px, py, x1, y1, x2, y2) -> np.ndarray:
    """Distance from points to segments in a plane (broadcasting), in the inputs' unit.

    :param px: point x (east), e.g. metres
    :param py: point y (north)
    :param x1: segment start x
    :param y1: segment start y
    :param x2: segment end x
    :param y2: segment end y
    """
    px, py, x1, y1, x2, y2 = (_f(v) for v in (px, py, x1, y1, x2, y2))
    dx, dy = x2 - x1, y2 - y1
    den = dx * dx + dy * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(den > 0, ((px - x1) * dx + (py - y1) * dy) / np.where(den > 0, den, 1.0), 0.0)
    t = np.clip(t, 0.0, 1.0)
    return np.hypot(px - (x1 + t * dx), py - (y1 + t * dy))


def points_in_polygon(x, y, ring) -> np.ndarray:
    """Even-odd point-in-polygon test, vectorised, with a latitude-band index.

    Works in any planar coordinates (lon/lat degrees or metres); the ring may be open or
    closed. Points exactly on an edge may fall either way.

    :param x: point x (lon, degrees, or east, m), shape (N,)
    :param y: point y (lat, degrees, or north, m), shape (N,)
    :param ring: polygon exterior, shape (K, 2) in the same coordinates
    :returns: bool (N,)

    >>> sq = np.array([[0, 0], [1, 0], [1, 1], [0, 1]])
    >>> points_in_polygon(np.array([0.5, 1.5]), np.array([0.5, 0.5]), sq).tolist()
    [True, False]
    """
    return PolygonIndex(ring).contains(x, y)


class PolygonIndex:
    """A polygon ring prepared for many even-odd point-in-polygon queries.

    Edges are registered in latitude bands (about ``2 sqrt(K)`` of them), so a point is
    tested only against the edges of its band.

    :param ring: polygon exterior (K, 2), any planar coordinates, open or closed
    """

    def __init__(self, ring) -> None:
        ring = _f(ring).reshape(-1, 2)
        self.ok = ring.shape[0] >= 3
        if not self.ok:
            return
        ex1, ey1 = ring[:, 0], ring[:, 1]
        ex2, ey2 = np.roll(ex1, -1), np.roll(ey1, -1)
        keep = ey1 != ey2  # horizontal edges never cross a horizontal ray
        self.ex1, self.ey1, self.ex2, self.ey2 = ex1[keep], ey1[keep], ex2[keep], ey2[keep]
        self.xmin, self.xmax = float(ring[:, 0].min()), float(ring[:, 0].max())
        self.ymin, self.ymax = float(ring[:, 1].min()), float(ring[:, 1].max())
        self.ok = self.ex1.size > 0
        if not self.ok:
            return
        nb = int(max(1, min(4096, np.sqrt(self.ex1.size) * 2)))
        self.nb = nb
        self.h = (self.ymax - self.ymin) / nb or 1.0
        b0 = np.clip(
            ((np.minimum(self.ey1, self.ey2) - self.ymin) / self.h).astype(np.int64), 0, nb - 1
        )
        b1 = np.clip(
            ((np.maximum(self.ey1, self.ey2) - self.ymin) / self.h).astype(np.int64), 0, nb - 1
        )
        ebands, eids = _expand_ranges(b0, b1)
        order = np.argsort(ebands, kind="stable")
        self.eids = eids[order]
        self.starts = np.searchsorted(ebands[order], np.arange(nb + 1))

    def contains(self, x, y) -> np.ndarray:
        """Whether each point is inside the ring, bool (N,)."""
        x, y = np.atleast_1d(_f(x)), np.atleast_1d(_f(y))
        out = np.zeros(x.shape, dtype=bool)
        if not self.ok or x.size == 0:
            return out
        cand = np.flatnonzero(
            np.isfinite(x)
            & np.isfinite(y)
            & (y >= self.ymin)
            & (y <= self.ymax)
            & (x >= self.xmin)
            & (x <= self.xmax)
        )
        if cand.size == 0:
            return out
        pb = np.clip(((y[cand] - self.ymin) / self.h).astype(np.int64), 0, self.nb - 1)
        counts = self.starts[pb + 1] - self.starts[pb]
        pidx = np.repeat(np.arange(cand.size), counts)
        offs = np.arange(pidx.size) - np.repeat(np.cumsum(counts) - counts, counts)
        e = self.eids[self.starts[pb][pidx] + offs]
        px, py = x[cand][pidx], y[cand][pidx]
        ey1, ey2, ex1, ex2 = self.ey1[e], self.ey2[e], self.ex1[e], self.ex2[e]
        crosses = (ey1 > py) != (ey2 > py)
        xint = ex1 + (py - ey1) * (ex2 - ex1) / (ey2 - ey1)
        hit = crosses & (px < xint)
        out[cand] = np.bincount(pidx[hit], minlength=cand.size) % 2 == 1
        return out


def _expand_ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges ``[lo_i, hi_i]`` return ``(values, i)`` of every integer in every range."""
    n = hi - lo + 1
    idx = np.repeat(np.arange(lo.size), n)
    vals = np.arange(idx.size) - np.repeat(np.cumsum(n) - n, n) + lo[idx]
    return vals, idx


class _SegmentIndex:
    """Exact nearest-segment distance for many points against many segments (metres, ENU).

    Long segments are cut into pieces of at most ``piece_m``; the pieces' midpoints go in a
    k-d tree. For a point, the exact distance to the pieces owning its ``k`` nearest
    midpoints is an upper bound ``d_u``; every piece whose midpoint is farther than ``r`` is
    at least ``r - piece_m/2`` away, so when ``d_u <= r_k - piece_m/2`` the answer is exact.
    The few points that fail the test are answered by a ball query of radius
    ``d_u + piece_m/2``.
    """

    def __init__(self, seg_enu: np.ndarray, piece_m: float = INDEX_PIECE_M):
        seg_enu = np.asarray(seg_enu, dtype=np.float64).reshape(-1, 4)
        self.n = seg_enu.shape[0]
        if self.n == 0:
            self.pieces = seg_enu
            self.tree = None
            self.half = 0.0
            return
        length = np.hypot(seg_enu[:, 2] - seg_enu[:, 0], seg_enu[:, 3] - seg_enu[:, 1])
        npieces = np.maximum(1, np.ceil(length / piece_m).astype(np.int64))
        sid = np.repeat(np.arange(self.n), npieces)
        j = np.arange(sid.size) - np.repeat(np.cumsum(npieces) - npieces, npieces)
        t0 = j / npieces[sid]
        t1 = (j + 1) / npieces[sid]
        s = seg_enu[sid]
        dx, dy = s[:, 2] - s[:, 0], s[:, 3] - s[:, 1]
        self.pieces = np.column_stack(
            [s[:, 0] + t0 * dx, s[:, 1] + t0 * dy, s[:, 0] + t1 * dx, s[:, 1] + t1 * dy]
        )
        mids = 0.5 * (self.pieces[:, :2] + self.pieces[:, 2:])
        self.half = float(np.max(np.hypot(dx, dy) / npieces[sid]) / 2.0) + 1e-6
        self.tree = cKDTree(mids)

    def distance(self, east_m: np.ndarray, north_m: np.ndarray, k: int = 8) -> np.ndarray:
        e, n = np.atleast_1d(_f(east_m)), np.atleast_1d(_f(north_m))
        out = np.full(e.shape, np.inf)
        if self.tree is None or e.size == 0:
            return out
        ok = np.isfinite(e) & np.isfinite(n)
        out[~ok] = np.nan
        q = np.flatnonzero(ok)
        if q.size == 0:
            return out
        k = min(k, self.pieces.shape[0])
        pts = np.column_stack([e[q], n[q]])
        dk, ik = self.tree.query(pts, k=k)
        dk, ik = dk.reshape(q.size, k), ik.reshape(q.size, k)
        p = self.pieces[ik]  # (Q, k, 4)
        d = point_segment_distance_m(
            pts[:, 0:1], pts[:, 1:2], p[..., 0], p[..., 1], p[..., 2], p[..., 3]
        ).min(axis=1)
        exact = (k == self.pieces.shape[0]) | (d <= dk[:, -1] - self.half)
        out[q] = d
        redo = np.flatnonzero(~exact)
        if redo.size:
            lists = self.tree.query_ball_point(pts[redo], r=d[redo] + self.half)
            lens = np.fromiter((len(v) for v in lists), dtype=np.int64, count=redo.size)
            flat = np.fromiter((i for v in lists for i in v), dtype=np.int64, count=int(lens.sum()))
            owner = np.repeat(np.arange(redo.size), lens)
            pp = self.pieces[flat]
            dd = point_segment_distance_m(
                pts[redo][owner, 0], pts[redo][owner, 1], pp[:, 0], pp[:, 1], pp[:, 2], pp[:, 3]
            )
            best = d[redo].copy()
            np.minimum.at(best, owner, dd)
            out[q[redo]] = best
        return out


# --------------------------------------------------------------------------- sun
def solar_elevation_deg(lon_deg, lat_deg, t_ms) -> np.ndarray:
    """Apparent solar elevation (NOAA solar-position algorithm after Meeus), degrees.

    Accurate to about 0.01 deg for 1800–2100 (without the small refraction correction,
    which only matters within a degree of the horizon and is covered by the -0.833 deg
    night threshold).

    :param lon_deg: observer longitude, degrees east
    :param lat_deg: observer latitude, degrees north
    :param t_ms: event time, ms since the Unix epoch UTC
    :returns: elevation of the sun's centre above the horizon, degrees

    >>> # local noon near the June solstice on the Tropic of Cancer: sun near the zenith
    >>> bool(solar_elevation_deg(0.0, 23.44, 1718971200000) > 89.0)
    True
    """
    lon, lat = _f(lon_deg), _f(lat_deg)
    jd = _f(t_ms) / 86_400_000.0 + 2440587.5
    jc = (jd - 2451545.0) / 36525.0
    l0 = np.mod(280.46646 + jc * (36000.76983 + jc * 0.0003032), 360.0)
    m = 357.52911 + jc * (35999.05029 - 0.0001537 * jc)
    e = 0.016708634 - jc * (0.000042037 + 0.0000001267 * jc)
    mr = np.radians(m)
    c = (
        np.sin(mr) * (1.914602 - jc * (0.004817 + 0.000014 * jc))
        + np.sin(2 * mr) * (0.019993 - 0.000101 * jc)
        + np.sin(3 * mr) * 0.000289
    )
    true_long = l0 + c
    omega = 125.04 - 1934.136 * jc
    app_long = true_long - 0.00569 - 0.00478 * np.sin(np.radians(omega))
    eps0 = 23.0 + (26.0 + (21.448 - jc * (46.815 + jc * (0.00059 - jc * 0.001813))) / 60.0) / 60.0
    eps = eps0 + 0.00256 * np.cos(np.radians(omega))
    decl = np.arcsin(np.sin(np.radians(eps)) * np.sin(np.radians(app_long)))
    y = np.tan(np.radians(eps / 2)) ** 2
    l0r = np.radians(l0)
    eq_time_min = 4.0 * np.degrees(
        y * np.sin(2 * l0r)
        - 2 * e * np.sin(mr)
        + 4 * e * y * np.sin(mr) * np.cos(2 * l0r)
        - 0.5 * y * y * np.sin(4 * l0r)
        - 1.25 * e * e * np.sin(2 * mr)
    )
    minutes_utc = np.mod(_f(t_ms) / 60_000.0, 1440.0)
    true_solar_min = np.mod(minutes_utc + eq_time_min + 4.0 * lon, 1440.0)
    hour_angle = np.radians(true_solar_min / 4.0 - 180.0)
    latr = np.radians(lat)
    cos_zen = np.sin(latr) * np.sin(decl) + np.cos(latr) * np.cos(decl) * np.cos(hour_angle)
    return 90.0 - np.degrees(np.arccos(np.clip(cos_zen, -1.0, 1.0)))


def is_night(lon_deg, lat_deg, t_ms, threshold_deg: float = NIGHT_SUN_ELEVATION_DEG) -> np.ndarray:
    """Whether the sun is below ``threshold_deg`` (default -0.833 deg, sunset) at the point."""
    return solar_elevation_deg(lon_deg, lat_deg, t_ms) < threshold_deg


# --------------------------------------------------------------------------- area geometry
@dataclass(frozen=True)
class Zone:
    """One authorised zone: a port, pier, anchorage, shipyard or fishing harbour.

    Either a polygon (``ring_lonlat``) or a circle (``center_lonlat`` + ``radius_m``).

    :param name: zone name
    :param kind: ``port``, ``pier``, ``anchorage``, ``shipyard`` or ``fishing_harbour``
    :param ring_lonlat: polygon exterior (K, 2), lon/lat degrees; ``None`` for a circle
    :param center_lonlat: circle centre ``(lon, lat)`` degrees; ``None`` for a polygon
    :param radius_m: circle radius, metres
    """

    name: str
    kind: str
    ring_lonlat: np.ndarray | None = None
    center_lonlat: tuple[float, float] | None = None
    radius_m: float | None = None

    def __post_init__(self) -> None:
        if self.ring_lonlat is None and (self.center_lonlat is None or self.radius_m is None):
            raise ValueError(f"zone {self.name!r}: needs ring_lonlat or center_lonlat + radius_m")


@dataclass(frozen=True)
class AreaGeometry:
    """Coastline, land and authorised zones of one site, with vectorised queries.

    Queries work in a local east/north plane centred on the geometry (see
    :func:`lonlat_to_enu_m`); the index is built once, lazily.

    :param name: site name
    :param coast_segments: (N, 4) ``lon1, lat1, lon2, lat2`` degrees: land boundary edges
        inside the site's bounding box
    :param land_rings: exterior rings (K, 2) lon/lat of land polygons
    :param zones: authorised zones
    """

    name: str
    coast_segments: np.ndarray
    land_rings: tuple[np.ndarray, ...] = ()
    zones: tuple[Zone, ...] = ()
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    # -- construction helpers
    @classmethod
    def from_rings(cls, name: str, land_rings, zones=(), bbox=None) -> AreaGeometry:
        """Build from land rings: the coast is every ring edge (optionally only those
        touching ``bbox = (lon_min, lat_min, lon_max, lat_max)``)."""
        rings = tuple(np.asarray(r, dtype=np.float64).reshape(-1, 2) for r in land_rings)
        segs = []
        for r in rings:
            closed = r if np.array_equal(r[0], r[-1]) else np.vstack([r, r[:1]])
            segs.append(np.column_stack([closed[:-1], closed[1:]]))
        coast = np.vstack(segs) if segs else np.zeros((0, 4))
        if bbox is not None and coast.size:
            x0, y0, x1, y1 = bbox
            keep = (
                (np.maximum(coast[:, 0], coast[:, 2]) >= x0)
                & (np.minimum(coast[:, 0], coast[:, 2]) <= x1)
                & (np.maximum(coast[:, 1], coast[:, 3]) >= y0)
                & (np.minimum(coast[:, 1], coast[:, 3]) <= y1)
            )
            coast = coast[keep]
        return cls(name=name, coast_segments=coast, land_rings=rings, zones=tuple(zones))

    # -- internals
    @property
    def origin_lonlat(self) -> tuple[float, float]:
        """Origin of the local plane: centre of the coast, land and zones, degrees."""
        if "origin" not in self._cache:
            pts = [np.asarray(self.coast_segments, dtype=np.float64).reshape(-1, 2)]
            pts += [np.asarray(r, dtype=np.float64).reshape(-1, 2) for r in self.land_rings]
            for z in self.zones:
                if z.ring_lonlat is not None:
                    pts.append(np.asarray(z.ring_lonlat, dtype=np.float64).reshape(-1, 2))
                else:
                    pts.append(np.asarray([z.center_lonlat], dtype=np.float64))
            allp = np.vstack(pts) if pts else np.zeros((0, 2))
            allp = allp[np.all(np.isfinite(allp), axis=1)]
            if allp.size == 0:
                self._cache["origin"] = (0.0, 0.0)
            else:
                lo, hi = allp.min(axis=0), allp.max(axis=0)
                self._cache["origin"] = (float((lo[0] + hi[0]) / 2), float((lo[1] + hi[1]) / 2))
        return self._cache["origin"]

    def to_enu_m(self, lon_deg, lat_deg) -> tuple[np.ndarray, np.ndarray]:
        """Project points to this geometry's local plane, metres."""
        lon0, lat0 = self.origin_lonlat
        return lonlat_to_enu_m(lon_deg, lat_deg, lon0, lat0)

    def _seg_to_enu(self, seg: np.ndarray) -> np.ndarray:
        seg = np.asarray(seg, dtype=np.float64).reshape(-1, 4)
        e1, n1 = self.to_enu_m(seg[:, 0], seg[:, 1])
        e2, n2 = self.to_enu_m(seg[:, 2], seg[:, 3])
        return np.column_stack([e1, n1, e2, n2])

    def _coast_index(self) -> _SegmentIndex:
        if "coast" not in self._cache:
            self._cache["coast"] = _SegmentIndex(self._seg_to_enu(self.coast_segments))
        return self._cache["coast"]

    def _zone_parts(self) -> dict[str, Any]:
        """Zones in the local plane: every polygon edge in one array (with its zone), one
        :class:`PolygonIndex` per polygon, circles as arrays."""
        if "zones" not in self._cache:
            seg_parts, seg_zone, polys, circ = [], [], [], []
            for j, z in enumerate(self.zones):
                if z.ring_lonlat is not None:
                    ring = np.asarray(z.ring_lonlat, dtype=np.float64).reshape(-1, 2)
                    e, n = self.to_enu_m(ring[:, 0], ring[:, 1])
                    ring_enu = np.column_stack([e, n])
                    seg_parts.append(np.column_stack([ring_enu, np.roll(ring_enu, -1, axis=0)]))
                    seg_zone.append(np.full(ring_enu.shape[0], j))
                    polys.append((j, PolygonIndex(ring_enu)))
                else:
                    assert z.center_lonlat is not None and z.radius_m is not None
                    ce, cn = self.to_enu_m(z.center_lonlat[0], z.center_lonlat[1])
                    circ.append((j, float(ce), float(cn), float(z.radius_m)))
            segs = np.vstack(seg_parts) if seg_parts else np.zeros((0, 4))
            zid = np.concatenate(seg_zone) if seg_zone else np.zeros(0, dtype=np.int64)
            order = np.argsort(zid, kind="stable")
            segs, zid = segs[order], zid[order]
            self._cache["zones"] = {
                "segs": segs,
                "seg_zone_ids": np.unique(zid),
                "seg_starts": np.flatnonzero(np.r_[True, zid[1:] != zid[:-1]]) if zid.size else zid,
                "polys": polys,
                "circles": np.asarray(circ, dtype=np.float64).reshape(-1, 4),
            }
        return self._cache["zones"]

    def _land_index(self) -> list[PolygonIndex]:
        if "land" not in self._cache:
            out = []
            for r in self.land_rings:
                r = np.asarray(r, dtype=np.float64).reshape(-1, 2)
                e, n = self.to_enu_m(r[:, 0], r[:, 1])
                out.append(PolygonIndex(np.column_stack([e, n])))
            self._cache["land"] = out
        return self._cache["land"]

    # -- queries
    def coast_distance_m(self, lon_deg, lat_deg) -> np.ndarray:
        """Distance from each point to the nearest coast segment, metres (inf without a coast).

        :param lon_deg: (N,) longitudes, degrees
        :param lat_deg: (N,) latitudes, degrees
        """
        e, n = self.to_enu_m(np.atleast_1d(_f(lon_deg)), np.atleast_1d(_f(lat_deg)))
        return self._coast_index().distance(e, n)

    def on_land(self, lon_deg, lat_deg) -> np.ndarray:
        """Whether each point lies inside a land ring (even-odd rule per ring), bool (N,)."""
        e, n = self.to_enu_m(np.atleast_1d(_f(lon_deg)), np.atleast_1d(_f(lat_deg)))
        out = np.zeros(e.shape, dtype=bool)
        for idx in self._land_index():
            out |= idx.contains(e, n)
        return out

    def zone_distances_m(self, lon_deg, lat_deg) -> np.ndarray:
        """Distance from each point to each zone, 0 inside, metres, shape (N, Z)."""
        e, n = self.to_enu_m(np.atleast_1d(_f(lon_deg)), np.atleast_1d(_f(lat_deg)))
        zp = self._zone_parts()
        out = np.full((e.size, len(self.zones)), np.inf)
        if e.size == 0:
            return out
        segs = zp["segs"]
        if segs.shape[0]:
            d = point_segment_distance_m(
                e[:, None],
                n[:, None],
                segs[None, :, 0],
                segs[None, :, 1],
                segs[None, :, 2],
                segs[None, :, 3],
            )
            out[:, zp["seg_zone_ids"]] = np.minimum.reduceat(d, zp["seg_starts"], axis=1)
            for j, idx in zp["polys"]:
                out[idx.contains(e, n), j] = 0.0
        c = zp["circles"]
        if c.shape[0]:
            dc = np.hypot(e[:, None] - c[None, :, 1], n[:, None] - c[None, :, 2]) - c[None, :, 3]
            out[:, c[:, 0].astype(np.int64)] = np.maximum(0.0, dc)
        return out

    def nearest_zone(self, lon_deg, lat_deg) -> tuple[np.ndarray, np.ndarray]:
        """Nearest authorised zone of each point.

        :returns: ``(idx, distance_m)``: zone index into :attr:`zones` (-1 without zones) and
            distance in metres, 0 inside the zone (inf without zones)
        """
        d = self.zone_distances_m(lon_deg, lat_deg)
        if d.shape[1] == 0:
            return np.full(d.shape[0], -1, dtype=np.int64), np.full(d.shape[0], np.inf)
        d = np.where(np.isnan(d), np.inf, d)
        idx = np.argmin(d, axis=1).astype(np.int64)
        return idx, d[np.arange(d.shape[0]), idx]

    def landfall(
        self, lon_deg, lat_deg, course_deg, max_m: float, step_m: float = 50.0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where a straight course first reaches land, sampled every ``step_m``.

        :param course_deg: (N,) course over ground, degrees true (NaN: no course)
        :param max_m: look this far ahead, m
        :returns: ``(distance_m, lon_deg, lat_deg)`` of the first land sample per point:
            ``inf`` / NaN when the course meets no land within ``max_m``
        """
        lon = np.atleast_1d(_f(lon_deg))
        lat = np.atleast_1d(_f(lat_deg))
        crs = np.atleast_1d(_f(course_deg))
        n = lon.size
        dist = np.full(n, np.inf)
        hit_lon = np.full(n, np.nan)
        hit_lat = np.full(n, np.nan)
        ok = np.flatnonzero(np.isfinite(lon) & np.isfinite(lat) & np.isfinite(crs))
        if ok.size == 0 or not self.land_rings:
            return dist, hit_lon, hit_lat
        d = np.arange(step_m, max_m + step_m / 2, step_m)
        plon, plat = destination_point(lon[ok, None], lat[ok, None], crs[ok, None], d[None, :])
        land = self.on_land(plon.ravel(), plat.ravel()).reshape(ok.size, d.size)
        anyl = land.any(axis=1)
        first = np.argmax(land, axis=1)
        rows = ok[anyl]
        dist[rows] = d[first[anyl]]
        hit_lon[rows] = plon[anyl, first[anyl]]
        hit_lat[rows] = plat[anyl, first[anyl]]
        return dist, hit_lon, hit_lat

    def in_authorised_zone(self, lon_deg, lat_deg, margin_m: float = 0.0) -> np.ndarray:
        """Whether each point is inside (or within ``margin_m`` of) an authorised zone."""
        _, d = self.nearest_zone(lon_deg, lat_deg)
        return d <= margin_m
