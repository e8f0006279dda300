"""Scenario simulator: a night of traffic on a real coast, with planted events and ground truth.

``shorewatch simulate --site sites/haikou --seed 7 --duration 2h
--start 2026-03-08T02:00:00+08:00 --out DIR`` writes three files:

``ais.nmea``
    AIS as a shore receiver network logs it: one NMEA 4.10 tag block per sentence
    (``\\s:<station>,c:<unix s>*hh\\``) before ``!AIVDM`` sentences encoded with pyais.
    Class A reports every 2–10 s underway and every 3 min at anchor or moored, Class B
    "CS" every 30 s above 2 kn and 3 min below (ITU-R M.1371); static data every 6 min
    (type 5 in two sentences for Class A, type 24 parts A and B for Class B). Each
    message is heard by the nearest station with a probability falling with range, and
    short reception outages and position noise are added.
``detections.jsonl``
    One :class:`schemas.records.CameraFrame` per camera frame (default 1 frame/s), made by
    projecting the true vessels through each site camera's
    :class:`~pipeline.core.camera.CameraModel`: waterline pixel noise (so range error
    grows with distance), bearing noise, detection range by vessel size and daylight,
    occlusion by land, missed detections, short-lived false alarms on waves, camera
    track ids (lost after 30 s unseen) with occasional id switches. Frames with no
    detections are written too.
``truth.json``
    Every vessel's identity and true track (sampled every 10 s) and the planted events
    with time, place and the alert kind a detector should raise.

Planted events (places and times vary with the seed): a night landing near a hotspot
(Xinbu Island for the Haikou site) by a boat with AIS on but no name; a vessel that
switches AIS off a few km out and then lands (``dark_approach`` then
``unusual_landing``); a skiff without AIS that lands inside a camera's view
(``dark_vessel`` and ``unusual_landing``); a rendezvous offshore (within 250 m for at
least 15 min below 2 kn) followed by a landing. Ferries between Haikou and the
Hai'an side, cargo ships at the anchorage, transiting ships, fishing boats and pleasure
craft are the negatives. Vessels move on water (routes are shortest paths on a water
grid built from the land polygons) and land at real coastline points outside every
authorised zone. The output is byte-identical for a given site, seed and options.

``--noise realistic`` (the default) observes the night through noisier sensors: detection
drop-outs, clutter, larger position errors, far targets, a camera outage, a second AIS
receiver with duplicates and disorder, missed reports and corrupted lines
(:mod:`pipeline.tools.sim_noise`, docs/detection-quality.md); ``--noise none`` writes the
clean observation described above, and ``truth.json`` then has no ``noise`` member.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree
from shapely.geometry import LineString, Point

from pipeline.core.detectors.thresholds import Thresholds
from pipeline.core.geo import EARTH_RADIUS_M
from pipeline.errors import ConfigError
from pipeline.site import Site, load_site
from pipeline.tools.sim_nmea import tag_block
from pipeline.tools.sim_noise import NoiseConfig, corrupt_lines, noise_config
from schemas.records import CameraDetection, CameraFrame

__all__ = [
    "SimConfig",
    "WaterMap",
    "ais_report_interval_s",
    "parse_duration",
    "hidden_place",
    "simulate",
    "simulate_nights",
    "tag_block",
]

KN = 1852.0 / 3600.0  # m/s per knot
#: Night detection range of a camera for a boat without lights (starlight / IR), m.
NIGHT_RANGE_UNLIT_M = 1000.0
#: Every planted landing happens at least this long before the end of the run, s.
LANDING_MARGIN_S = 900
# the boat without AIS starts its approach at least this far from any coast (well beyond
# the 8 km at which radar is to alert on it; the site's radar tracks a skiff to 24 km, but
# the Qiongzhou Strait is only ~20-30 km wide) and after the area's dark_vessel warm-up
SKIFF_START_SHORE_M = 12000.0
SKIFF_START_AFTER_S = int(Thresholds.warmup_s) + 60
SKIFF_MAX_KN = 40.0  # a go-fast skiff's top speed, for its run in from offshore
SKIFF_NEAR_M = 3000.0  # its last leg, where a shore camera could see it, is never changed

#: Named places where the simulator plants the night landing, per site name.
HOTSPOTS: dict[str, tuple[str, float, float]] = {
    "haikou": ("Xinbu Island", 110.372, 20.068),
}
#: AIS receiving stations per site: ``(id, lon, lat)``; default: one at the bbox centre.
STATIONS: dict[str, list[tuple[str, float, float]]] = {
    "haikou": [("HK-XIUYING", 110.280, 20.030), ("GD-XUWEN", 110.170, 20.255)],
}
#: Port pairs for ferries per site (zone names), both directions.
FERRY_ROUTES: dict[str, list[tuple[str, str]]] = {
    "haikou": [
        ("Haikou Xiuying Port", "Hai'an New Port"),
        ("Haikou New Port", "Hai'an New Port"),
        ("Macun / Haikou Port", "Xuwen Port"),
    ],
}


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class SimConfig:
    """Options of one simulation run.

    :param seed: random seed; the output is a function of site, seed and these options
    :param start: start time, timezone-aware
    :param duration_s: simulated time span, s (at least 1 h for the planted events)
    :param fps: camera frames per second (at most 1; frames fall on whole seconds)
    :param track_sample_s: spacing of the true track samples written to ``truth.json``, s
    :param landing_at: ``(lon, lat)``: the night landing with AIS on (or, with
        ``landing_dark``, the skiff's landing without AIS) comes ashore at the landing place
        nearest this point instead of a random one (multi-night runs reuse a hidden place)
    :param landing_dark: the landing at ``landing_at`` is the skiff's (no AIS)
    :param landing_at_s: with ``landing_at``, that landing happens this long after the
        start, s (default: the usual random time)
    :param avoid: ``(lon, lat)`` places the random landings keep 300 m away from (the
        places of earlier nights, so that they stay one-offs); when none is left in the
        wanted camera range, the range is widened (any camera, then none)
    :param noise: sensor noise level, ``"realistic"`` or ``"none"``
        (:data:`pipeline.tools.sim_noise.NOISE_LEVELS`)
    """

    seed: int
    start: datetime
    duration_s: int = 7200
    fps: float = 1.0
    track_sample_s: int = 10
    landing_at: tuple[float, float] | None = None
    landing_dark: bool = False
    landing_at_s: int | None = None
    avoid: tuple[tuple[float, float], ...] = ()
    noise: str = "realistic"


def parse_duration(text: str) -> int:
    """Seconds in a duration such as ``2h``, ``90m``, ``1h30m``, ``45min`` or ``3600``.

    >>> parse_duration("1h30m"), parse_duration("45min"), parse_duration("120s")
    (5400, 2700, 120)
    """
    t = text.strip().lower()
    if re.fullmatch(r"\d+", t):
        return int(t)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(h|min|m|s)", t)
    if not parts or "".join(a + b for a, b in parts) != t.replace(" ", ""):
        raise ConfigError(f"cannot read duration {text!r} (use e.g. 2h, 90m, 1h30m, 3600s)")
    scale = {"h": 3600, "min": 60, "m": 60, "s": 1}
    return int(round(sum(float(a) * scale[b] for a, b in parts)))


def ais_report_interval_s(ais_class: str, sog_kn: float, status: int, turning: bool) -> float:
    """Nominal AIS position report interval (ITU-R M.1371, Annex 1 tables 1 and 2), s.

    :param ais_class: ``"A"`` or ``"B"`` (Class B "CS")
    :param sog_kn: speed over ground, knots
    :param status: navigational status (1 at anchor, 5 moored)
    :param turning: the vessel is changing course

    >>> ais_report_interval_s("A", 12.0, 0, False), ais_report_interval_s("A", 0.1, 5, False)
    (10.0, 180.0)
    >>> ais_report_interval_s("B", 8.0, 0, False), ais_report_interval_s("B", 1.0, 0, False)
    (30.0, 180.0)
    """
    if ais_class == "B":
        return 30.0 if sog_kn > 2.0 else 180.0
    if status in (1, 5) and sog_kn <= 3.0:
        return 180.0
    if sog_kn > 23.0:
        return 2.0
    if sog_kn > 14.0:
        return 2.0 if turning else 6.0
    return 10.0 / 3.0 if turning else 10.0


# --------------------------------------------------------------------------- water map


class WaterMap:
    """The site's water as a grid graph, for routing vessels between points at sea.

    Coordinates are local metres (east, north) from the bbox centre (equirectangular,
    good to 0.1 % over a site). Cells closer than ``shore_clear_m`` to land are not
    water; cells near the shore cost more so routes keep off the coast.

    :param cell_m: grid spacing, m
    """

    def __init__(self, site: Site, cell_m: float = 300.0, shore_clear_m: float = 150.0):
        self.site = site
        lon0, lat0, lon1, lat1 = site.bbox
        self.lon0 = 0.5 * (lon0 + lon1)
        self.lat0 = 0.5 * (lat0 + lat1)
        self.ky = math.pi / 180.0 * EARTH_RADIUS_M
        self.kx = self.ky * math.cos(math.radians(self.lat0))
        self.land = shapely.transform(site.land, self._to_m_array)
        self.land_inner = self.land.buffer(-25.0)  # "on land" for track checks
        self.land_route = self.land.buffer(40.0)
        self.land_wide = self.land.buffer(250.0)
        shapely.prepare(self.land_wide)
        self.land_b60 = self.land.buffer(60.0)
        self.land_b100 = self.land.buffer(100.0)
        self.land_b300 = self.land.buffer(300.0)
        shapely.prepare(self.land)
        shapely.prepare(self.land_inner)
        shapely.prepare(self.land_route)
        x0, y0 = self.to_m(lon0, lat0)
        x1, y1 = self.to_m(lon1, lat1)
        xs = np.arange(x0 + cell_m / 2, x1, cell_m)
        ys = np.arange(y0 + cell_m / 2, y1, cell_m)
        gx, gy = np.meshgrid(xs, ys)
        self.nx, self.ny = len(xs), len(ys)
        water = ~shapely.contains_xy(self.land.buffer(shore_clear_m), gx, gy)
        near = shapely.contains_xy(self.land.buffer(1000.0), gx, gy)
        cost = np.where(near, 5.0, 1.0)
        idx = np.arange(gx.size).reshape(gx.shape)
        rows, cols, w = [], [], []
        for dj, di in ((0, 1), (1, 0), (1, 1), (1, -1)):
            j0 = np.arange(self.ny - dj)
            i0 = np.arange(self.nx - di) if di >= 0 else np.arange(-di, self.nx)
            a = idx[np.ix_(j0, i0)]
            b = idx[np.ix_(j0 + dj, i0 + di)]
            ok = water.ravel()[a.ravel()] & water.ravel()[b.ravel()]
            length = cell_m * math.hypot(di, dj)
            ww = 0.5 * (cost.ravel()[a.ravel()] + cost.ravel()[b.ravel()]) * length
            rows.append(a.ravel()[ok])
            cols.append(b.ravel()[ok])
            w.append(ww[ok])
        r = np.concatenate(rows)
        c = np.concatenate(cols)
        g = coo_matrix((np.concatenate(w), (r, c)), shape=(gx.size, gx.size)).tocsr()
        self.graph = g + g.T
        _n, labels = connected_components(self.graph, directed=False)
        wl = labels[water.ravel()]
        main = np.bincount(wl).argmax() if wl.size else -1
        self.water_idx = np.flatnonzero(water.ravel() & (labels == main))
        self.cx = gx.ravel()
        self.cy = gy.ravel()
        self.tree = cKDTree(np.column_stack([self.cx[self.water_idx], self.cy[self.water_idx]]))
        self._pred_cache: dict[int, np.ndarray] = {}

    # coordinates ---------------------------------------------------------
    def to_m(self, lon, lat):
        """Local metres of lon/lat degrees (scalars or arrays)."""
        return (np.asarray(lon) - self.lon0) * self.kx, (np.asarray(lat) - self.lat0) * self.ky

    def _to_m_array(self, lonlat: np.ndarray) -> np.ndarray:
        return np.column_stack(self.to_m(lonlat[:, 0], lonlat[:, 1]))

    def to_lonlat(self, x, y):
        """Lon/lat degrees of local metres."""
        return np.asarray(x) / self.kx + self.lon0, np.asarray(y) / self.ky + self.lat0

    # queries -------------------------------------------------------------
    def nearest_water(self, x: float, y: float) -> tuple[int, float]:
        """The nearest routable water cell (graph node) and its distance, m."""
        d, k = self.tree.query([x, y])
        return int(self.water_idx[k]), float(d)

    def clear(self, p, q, margin: str = "route") -> bool:
        """Whether the straight segment p→q keeps off the land grown by a margin:
        ``"route"`` 40 m, ``"wide"`` 250 m, ``"none"`` 0 m."""
        geom = {"route": self.land_route, "wide": self.land_wide, "none": self.land}[margin]
        return not geom.intersects(LineString([tuple(p), tuple(q)]))

    def route(self, a, b) -> np.ndarray:
        """A water route from ``a`` to ``b`` (local metres) as an ``(N, 2)`` polyline.

        Both ends should be at sea; the path through the grid is shortened by line of
        sight: the first and last 1.5 km keep 40 m off the land, the legs in between
        250 m (or follow the grid), so traffic does not graze the coast.
        """
        sa, _ = self.nearest_water(*a)
        sb, _ = self.nearest_water(*b)
        if sa not in self._pred_cache:
            _d, pred = dijkstra(self.graph, directed=False, indices=sa, return_predecessors=True)
            self._pred_cache[sa] = pred
        pred = self._pred_cache[sa]
        cells = [sb]
        while cells[-1] != sa:
            p = int(pred[cells[-1]])
            if p < 0:
                raise ConfigError("no water route between the two points")
            cells.append(p)
        cells.reverse()
        pts = [tuple(a)] + [(float(self.cx[c]), float(self.cy[c])) for c in cells] + [tuple(b)]
        # line-of-sight shortening
        out = [pts[0]]
        i = 0
        while i < len(pts) - 1:
            j = len(pts) - 1
            last = len(pts) - 1
            while j > i + 1:
                near_end = (i == 0 and math.dist(pts[0], pts[j]) < 1500.0) or (
                    j == last and math.dist(pts[i], pts[last]) < 1500.0
                )
                if self.clear(pts[i], pts[j], "route" if near_end else "wide"):
                    break
                j -= 1
            out.append(pts[j])
            i = j
        return np.asarray(out, dtype=float)


# --------------------------------------------------------------------------- vessels


@dataclass
class Go:
    """Move along a polyline (local metres) at ``speed_mps``; stop at the end if ``stop``."""

    path: np.ndarray
    speed_mps: float
    stop: bool = True
    accel_mps2: float = 0.05
    mark: str | None = None


@dataclass
class Hold:
    """Stay ``duration_s`` seconds at the current place, swinging ``swing_m`` around it."""

    duration_s: float
    status: int = 5
    swing_m: float = 0.0
    period_s: float = 900.0
    mark: str | None = None


@dataclass
class Exit:
    """Leave the scene: the vessel is no longer present afterwards."""


@dataclass
class Vessel:
    vid: str
    role: str
    mmsi: int | None
    ais_class: str | None
    name: str
    call_sign: str
    ship_type: int
    length_m: float
    beam_m: float
    destination: str
    lights: bool = True
    steps: list[Any] = field(default_factory=list)
    start_xy: tuple[float, float] = (0.0, 0.0)
    t0_s: int = 0  # absolute start of the plan, s from the simulation start (may be < 0)
    ais_off_after_mark: str | None = None
    # filled by kinematics, on the simulation's 1 s grid
    x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sog: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cog: np.ndarray = field(default_factory=lambda: np.zeros(0))
    status: np.ndarray = field(default_factory=lambda: np.zeros(0))
    present: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ais_on: np.ndarray = field(default_factory=lambda: np.zeros(0))
    marks: dict[str, int] = field(default_factory=dict)


def _run_plan(v: Vessel) -> dict[str, np.ndarray | dict[str, int]]:
    """Integrate a vessel's plan at 1 s steps in plan time (0 = plan start)."""
    x, y = v.start_xy
    xs: list[float] = []
    ys: list[float] = []
    sogs: list[float] = []
    cogs: list[float] = []
    sts: list[int] = []
    marks: dict[str, int] = {}
    cog = 0.0
    exited = False
    for step in v.steps:
        if isinstance(step, Go):
            path = np.asarray(step.path, dtype=float)
            if math.hypot(path[0, 0] - x, path[0, 1] - y) > 1.0:
                path = np.vstack([[(x, y)], path])
            seg = np.diff(path, axis=0)
            seg_len = np.hypot(seg[:, 0], seg[:, 1])
            keep = seg_len > 1e-6
            path = np.vstack([path[:1], path[1:][keep]])
            seg, seg_len = seg[keep], seg_len[keep]
            if len(seg_len) == 0:
                continue
            cum = np.concatenate([[0.0], np.cumsum(seg_len)])
            total = float(cum[-1])
            # a plan that starts with a Go starts underway (entering the scene)
            s, spd = 0.0, (sogs[-1] if sogs else step.speed_mps)
            s_list: list[float] = []
            v_list: list[float] = []
            two_a = 2.0 * step.accel_mps2
            dv = 4 * step.accel_mps2
            while s < total - 1e-6:
                vmax = step.speed_mps
                if step.stop:
                    vmax = min(vmax, max(0.6, math.sqrt(two_a * (total - s))))
                spd = min(vmax, spd + dv)
                s = min(total, s + spd)
                s_list.append(s)
                v_list.append(spd)
            sa = np.asarray(s_list)
            k = np.minimum(np.searchsorted(cum, sa, side="right") - 1, len(seg_len) - 1)
            f = (sa - cum[k]) / seg_len[k]
            px = path[k, 0] + f * seg[k, 0]
            py = path[k, 1] + f * seg[k, 1]
            pc = np.degrees(np.arctan2(seg[k, 0], seg[k, 1])) % 360.0
            va = np.asarray(v_list)
            if step.stop and len(va):
                va[-1] = 0.0
            xs.extend(px.tolist())
            ys.extend(py.tolist())
            sogs.extend(va.tolist())
            cogs.extend(pc.tolist())
            sts.extend([0] * len(sa))
            if len(sa):
                x, y, cog = float(px[-1]), float(py[-1]), float(pc[-1])
            if step.mark:
                marks[step.mark] = len(xs) - 1
        elif isinstance(step, Hold):
            if step.mark:
                marks[step.mark] = len(xs)
            n = int(step.duration_s)
            t = np.arange(n)
            ph = 2 * np.pi * t / step.period_s
            dx = step.swing_m * np.sin(ph)
            dy = step.swing_m * (np.cos(ph) - 1.0)
            sp = step.swing_m * 2 * np.pi / step.period_s
            for kk in range(n):
                xs.append(x + dx[kk])
                ys.append(y + dy[kk])
                sogs.append(sp)
                cogs.append((math.degrees(ph[kk]) + 90.0) % 360.0 if sp > 0 else cog)
                sts.append(step.status)
            if n:
                x, y = xs[-1], ys[-1]
        elif isinstance(step, Exit):
            exited = True
            break
    return {
        "x": np.asarray(xs),
        "y": np.asarray(ys),
        "sog": np.asarray(sogs),
        "cog": np.asarray(cogs),
        "status": np.asarray(sts, dtype=np.int16),
        "marks": marks,
        "exited": np.asarray(exited),
    }


def _place_on_timeline(v: Vessel, run: dict, n_s: int) -> None:
    """Put a plan run on the global 1 s grid ``[0, n_s)``; before the plan starts the
    vessel is absent, after it ends it stays (or is absent if it exited)."""
    m = len(run["x"])
    t = np.arange(n_s)
    k = t - v.t0_s
    present = k >= 0
    if bool(run["exited"]):
        present &= k < m
    kk = np.clip(k, 0, max(m - 1, 0))
    v.x = run["x"][kk]
    v.y = run["y"][kk]
    v.sog = np.where(k < m, run["sog"][kk], 0.0)
    v.cog = run["cog"][kk]
    last_status = run["status"][-1] if m else 5
    v.status = np.where(k < m, run["status"][kk], 5 if last_status == 0 else last_status)
    v.present = present
    v.marks = {name: int(i + v.t0_s) for name, i in run["marks"].items()}
    v.ais_on = present.copy() if v.ais_class else np.zeros(n_s, dtype=bool)
    if v.ais_class and v.ais_off_after_mark:
        v.ais_on &= t <= v.marks[v.ais_off_after_mark]


# --------------------------------------------------------------------------- helpers


def _sun_elevation_deg(t_unix: np.ndarray, lon: float, lat: float) -> np.ndarray:
    """Approximate solar elevation (NOAA low-precision formulas), degrees."""
    t = np.asarray(t_unix, dtype=float)
    d = t / 86400.0 - 10957.5  # days since J2000.0
    g = np.radians((357.529 + 0.98560028 * d) % 360.0)
    q = (280.459 + 0.98564736 * d) % 360.0
    lam = np.radians(q + 1.915 * np.sin(g) + 0.020 * np.sin(2 * g))
    eps = np.radians(23.439 - 0.00000036 * d)
    dec = np.arcsin(np.sin(eps) * np.sin(lam))
    ra = np.degrees(np.arctan2(np.cos(eps) * np.sin(lam), np.cos(lam)))
    gmst = (280.46061837 + 360.98564736629 * d) % 360.0
    ha = np.radians(gmst + lon - ra)
    phi = math.radians(lat)
    return np.degrees(
        np.arcsin(np.sin(phi) * np.sin(dec) + math.cos(phi) * np.cos(dec) * np.cos(ha))
    )


def _mmsi(rng: np.random.Generator, used: set[int]) -> int:
    while True:
        m = int(rng.choice([412, 413, 414])) * 1_000_000 + int(rng.integers(100_000, 999_999))
        if m not in used:
            used.add(m)
            return m


def _call_sign(rng: np.random.Generator) -> str:
    return (
        "B"
        + "".join(str(int(d)) for d in rng.integers(0, 10, 4))
        + "".join(chr(65 + int(c)) for c in rng.integers(0, 26, 2))
    )


def _iso(t_unix_s: float) -> str:
    return datetime.fromtimestamp(t_unix_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- scenario


class _Scenario:
    def __init__(self, site: Site, cfg: SimConfig):
        if cfg.start.tzinfo is None:
            raise ConfigError("the start time needs a UTC offset or zone")
        if cfg.duration_s < 3600:
            raise ConfigError("duration must be at least 1 h to hold the planted events")
        if not 0 < cfg.fps <= 1.0:
            raise ConfigError("fps must be in (0, 1]")
        self.site = site
        self.cfg = cfg
        self.noise: NoiseConfig = noise_config(cfg.noise)
        self.n_s = int(cfg.duration_s)
        self.t0_unix = int(cfg.start.timestamp())
        self.rng = np.random.default_rng([cfg.seed, 0])
        self.wm = WaterMap(site)
        self.used_mmsi: set[int] = set()
        self.vessels: list[Vessel] = []
        self.events: list[dict[str, Any]] = []
        self.landing_xy: list[tuple[float, float]] = []
        self.cams = [(c, c.model()) for c in site.cameras]
        self._zones_m = [shapely.transform(z.polygon, self.wm._to_m_array) for z in site.zones]
        self._landing_candidates()
        self._edge_points()

    # ---- geometry ------------------------------------------------------
    def _zone_distance_m(self, x: float, y: float) -> float:
        p = Point(x, y)
        return min((z.distance(p) for z in self._zones_m), default=1e9)

    def _landing_candidates(self) -> None:
        """Coastline points where a boat can come ashore: outside every zone by 1.2 km,
        with a straight 1.2 km approach from open water along the coast normal."""
        wm = self.wm
        seg = self.site.coast_segments()
        x1, y1 = wm.to_m(seg[:, 0], seg[:, 1])
        x2, y2 = wm.to_m(seg[:, 2], seg[:, 3])
        bx0, by0 = wm.to_m(self.site.bbox[0], self.site.bbox[1])
        bx1, by1 = wm.to_m(self.site.bbox[2], self.site.bbox[3])
        cand = []
        for a, b, c, d in zip(x1, y1, x2, y2, strict=True):
            length = math.hypot(c - a, d - b)
            if length < 1.0:
                continue
            tx, ty = (c - a) / length, (d - b) / length
            for f in np.arange(0.5 * (length % 200.0) + 1.0, length, 200.0) / length:
                px, py = a + f * (c - a), b + f * (d - b)
                for nx_, ny_ in ((ty, -tx), (-ty, tx)):
                    if shapely.contains_xy(wm.land, px + 150 * nx_, py + 150 * ny_):
                        continue
                    if not shapely.contains_xy(wm.land, px - 150 * nx_, py - 150 * ny_):
                        continue
                    ax, ay = px + 1200 * nx_, py + 1200 * ny_
                    if not (bx0 + 1500 < px < bx1 - 1500 and by0 + 1500 < py < by1 - 1500):
                        continue
                    if wm.land.distance(Point(ax, ay)) < 600.0:
                        continue
                    if (
                        not wm.land.intersects(
                            LineString([(px + 30 * nx_, py + 30 * ny_), (ax, ay)])
                        )
                        and wm.nearest_water(ax, ay)[1] < 400
                    ):
                        cand.append((px, py, nx_, ny_))
        arr = np.asarray(cand, dtype=float)
        zd = np.array([self._zone_distance_m(p[0], p[1]) for p in arr])
        arr = arr[zd >= 1200.0]
        lon, lat = wm.to_lonlat(arr[:, 0], arr[:, 1])
        self.cand = arr
        self.cand_lonlat = np.column_stack([lon, lat])
        # camera coverage of each candidate: best (camera index, range) with a clear view
        best_cam = np.full(len(arr), -1)
        best_r = np.full(len(arr), np.inf)
        for ci, (cam, model) in enumerate(self.cams):
            _u, _v, vis = model.geo_to_pixel(lon, lat)
            cxm, cym = wm.to_m(cam.lon, cam.lat)
            r = np.hypot(arr[:, 0] - cxm, arr[:, 1] - cym)
            for k in np.flatnonzero(vis & (r < best_r) & (r > 150.0)):
                if self._line_of_sight(cxm, cym, arr[k, 0], arr[k, 1]):
                    best_cam[k], best_r[k] = ci, r[k]
        self.cand_cam = best_cam
        self.cand_cam_r = best_r
        self.on_home_side = np.ones(len(arr), dtype=bool)
        hs = HOTSPOTS.get(self.site.name)
        if hs is not None:  # the landing side is the one of the hotspot
            self.on_home_side = np.abs(lat - hs[2]) < 0.12

    def _line_of_sight(self, x0, y0, x1, y1) -> bool:
        if not hasattr(self, "_land_occl"):
            self._land_occl = self.wm.land.buffer(-100.0)
            shapely.prepare(self._land_occl)
        return not self._land_occl.intersects(LineString([(x0, y0), (x1, y1)]))

    def _edge_points(self) -> None:
        """Water cells within 1.5 km of the bbox edge: where through traffic enters."""
        wm = self.wm
        x, y = wm.cx[wm.water_idx], wm.cy[wm.water_idx]
        x0, y0 = wm.to_m(self.site.bbox[0], self.site.bbox[1])
        x1, y1 = wm.to_m(self.site.bbox[2], self.site.bbox[3])
        edge = (x - x0 < 1500) | (x1 - x < 1500) | (y1 - y < 1500)
        far = np.array(
            [wm.land.distance(Point(a, b)) > 2500 for a, b in zip(x[edge], y[edge], strict=True)]
        )
        self.edges = np.column_stack([x[edge][far], y[edge][far]])
        self.edges_w = self.edges[self.edges[:, 0] - x0 < 1500]
        self.edges_e = self.edges[x1 - self.edges[:, 0] < 1500]

    def _open_water_point(
        self, min_shore_m: float, max_shore_m: float = 1e9, near=None, radius_m=None
    ):
        wm = self.wm
        for _ in range(2000):
            if near is not None:
                a = self.rng.uniform(0, 2 * np.pi)
                r = radius_m * math.sqrt(self.rng.uniform(0.05, 1.0))
                x, y = near[0] + r * math.sin(a), near[1] + r * math.cos(a)
            else:
                k = int(self.rng.integers(len(wm.water_idx)))
                x, y = wm.cx[wm.water_idx[k]], wm.cy[wm.water_idx[k]]
            d = wm.land.distance(Point(x, y))
            if (
                min_shore_m <= d <= max_shore_m
                and wm.nearest_water(x, y)[1] < 300
                and self._zone_distance_m(x, y) > 500
            ):
                return (float(x), float(y))
        raise ConfigError("no open water point found")

    def _berth(self, zone_name: str) -> tuple[float, float]:
        """A point at sea inside a zone, 100–300 m from land, nearest the zone's centre."""
        zi = next(i for i, z in enumerate(self.site.zones) if z.name == zone_name)
        zpoly = self._zones_m[zi]
        minx, miny, maxx, maxy = zpoly.bounds
        mx, my = np.meshgrid(np.arange(minx, maxx, 25.0), np.arange(miny, maxy, 25.0))
        gx, gy = mx.ravel(), my.ravel()
        inside = shapely.contains_xy(zpoly, gx, gy) & ~shapely.contains_xy(
            self.wm.land_b100, gx, gy
        )
        inside &= shapely.contains_xy(self.wm.land_b300, gx, gy)
        if not inside.any():
            inside = shapely.contains_xy(zpoly, gx, gy) & ~shapely.contains_xy(
                self.wm.land_b60, gx, gy
            )
        c = zpoly.centroid
        k = np.flatnonzero(inside)[np.argmin(np.hypot(gx[inside] - c.x, gy[inside] - c.y))]
        return float(gx[k]), float(gy[k])

    def _pick_landing(
        self, *, max_cam_r: float | None, near=None, near_r=5000.0, commit: bool = True
    ) -> int:
        """A landing candidate: on the home side, seen by a camera within ``max_cam_r``
        (if given), 2.5 km from the other landings (dropped if nothing is left), near
        ``near`` (lon, lat) if possible."""
        in_view = self.on_home_side.copy()
        if max_cam_r is not None:
            in_view &= (self.cand_cam >= 0) & (self.cand_cam_r <= max_cam_r)
        if self.cfg.avoid:  # a place of an earlier night: widen the camera range instead
            ax, ay = self.wm.to_m(*np.asarray(self.cfg.avoid, dtype=float).T)
            away = np.all(
                np.hypot(self.cand[:, :1] - ax[None, :], self.cand[:, 1:2] - ay[None, :]) > 300.0,
                axis=1,
            )
            for wider in (in_view, self.on_home_side & (self.cand_cam >= 0), self.on_home_side):
                if (wider & away).any():
                    in_view = wider & away
                    break
        ok = in_view.copy()
        for lx, ly in self.landing_xy:
            ok &= np.hypot(self.cand[:, 0] - lx, self.cand[:, 1] - ly) > 2500.0
        if not ok.any():
            ok = in_view
        if not ok.any():
            raise ConfigError(f"no landing place in a camera's view within {max_cam_r} m")
        if near is not None:
            nx_, ny_ = self.wm.to_m(*near)
            close = ok & (np.hypot(self.cand[:, 0] - nx_, self.cand[:, 1] - ny_) < near_r)
            if close.any():
                ok = close
        k = int(self.rng.choice(np.flatnonzero(ok)))
        if commit:
            self.landing_xy.append((float(self.cand[k, 0]), float(self.cand[k, 1])))
        return k

    def _forced_landing(self, dark: bool) -> int | None:
        """The landing place nearest ``cfg.landing_at`` (for a ``dark`` landing, the nearest
        a camera sees at night) when this landing (AIS on, or ``dark``) is the one sent
        there; else ``None``."""
        cfg = self.cfg
        if cfg.landing_at is None or cfg.landing_dark != dark:
            return None
        x, y = self.wm.to_m(*cfg.landing_at)
        d = np.hypot(self.cand[:, 0] - x, self.cand[:, 1] - y)
        if dark:  # a boat without AIS lands where a camera sees it at night, if it can
            seen = (self.cand_cam >= 0) & (self.cand_cam_r <= NIGHT_RANGE_UNLIT_M - 200.0)
            d = np.where(seen, d, d + 1e9) if seen.any() else d
        k = int(np.argmin(d))
        self.landing_xy.append((float(self.cand[k, 0]), float(self.cand[k, 1])))
        return k

    def _forced_time(self, at_s: int) -> int:
        t = self.cfg.landing_at_s
        return at_s if t is None else min(int(t), self.n_s - LANDING_MARGIN_S)

    def _landing_route(self, origin, k: int) -> tuple[np.ndarray, tuple[float, float]]:
        px, py, nx_, ny_ = self.cand[k]
        approach = (px + 1200 * nx_, py + 1200 * ny_)
        path = self.wm.route(origin, approach)
        return np.vstack([path, [(px, py)]]), (float(px), float(py))

    def _offshore_point(self, route: np.ndarray, step_m: float) -> tuple[float, float] | None:
        """Open water at least :data:`SKIFF_START_SHORE_M` from the coast (else the farthest
        found) from which a straight leg of a whole number of ``step_m`` leads to the start
        of ``route`` without coming within 250 m of land: along the route's first bearing
        reversed, turned by up to ±90°, the shortest such leg (at most 15 km). ``None`` if
        the route starts that far out already or no leg is found."""
        wm = self.wm
        x0, y0 = float(route[0, 0]), float(route[0, 1])
        d0 = wm.land.distance(Point(x0, y0))
        if d0 >= SKIFF_START_SHORE_M:
            return None
        base = math.atan2(x0 - float(route[1, 0]), y0 - float(route[1, 1]))
        mult = max(1, round(250.0 / step_m))
        best: tuple[float, float, float, float] | None = None  # (-shore, leg, x, y)
        for turn_deg in (0, 10, -10, 20, -20, 30, -30, 45, -45, 60, -60, 75, -75, 90, -90):
            a = base + math.radians(turn_deg)
            for m in range(mult, int(15000.0 / step_m) + 1, mult):
                leg = m * step_m
                x, y = x0 + leg * math.sin(a), y0 + leg * math.cos(a)
                if wm.nearest_water(x, y)[1] >= 300.0:  # land or off the map
                    break
                far = min(wm.land.distance(Point(x, y)), SKIFF_START_SHORE_M)
                if best is not None and (-far, leg) >= best[:2]:
                    continue
                if not wm.clear((x, y), (x0, y0), "wide"):
                    break
                best = (-far, leg, x, y)
                if far >= SKIFF_START_SHORE_M:
                    break
        if best is None or -best[0] <= d0:
            return None
        return best[2], best[3]

    def _offshore_start(self, go: Go, at_s: int) -> list[Go]:
        """The dark skiff's run in (``go``, marked ``landing``, to land at ``at_s``) from open water far out and,
        where its drawn speed would have it inside that distance before the area's warm-up
        is over, faster (at most :data:`SKIFF_MAX_KN`) until its last
        :data:`SKIFF_NEAR_M`, so it is first at sea at :data:`SKIFF_START_AFTER_S`.

        Draws no random numbers; the legs are whole seconds of travel, so from its old
        start on, and all through its last leg, the skiff is where and when it was, and
        the rest of the night is unchanged."""
        speed = go.speed_mps
        route = np.asarray(go.path, dtype=float)
        far = self._offshore_point(route, speed)
        path = route if far is None else np.vstack([[far], route])
        new = replace(go, path=path)
        plan = Vessel(
            "", "", None, None, "", "", 0, 0.0, 0.0, "", steps=[new], start_xy=tuple(path[0])
        )
        lead_s = int(_run_plan(plan)["marks"]["landing"])  # fmt: skip
        late_s = SKIFF_START_AFTER_S - (at_s - lead_s)
        total = _path_length_m(path)
        j = int((total - SKIFF_NEAR_M) // speed)  # the junction: a whole second's travel
        if late_s <= 0 or j <= late_s:
            return [new]
        n_far = max(j - late_s, math.ceil(j * speed / (SKIFF_MAX_KN * KN)))
        pre, post = _split_path(path, total - j * speed)
        return [
            Go(pre, j * speed / n_far, stop=False),
            replace(go, path=post),
        ]

    # ---- vessel factories ------------------------------------------------
    def _new(self, role: str, ais_class: str | None, **kw) -> Vessel:
        rng = self.rng
        mmsi = _mmsi(rng, self.used_mmsi) if ais_class else None
        v = Vessel(
            vid=f"{role}-{len([u for u in self.vessels if u.role == role]) + 1:02d}",
            role=role,
            mmsi=mmsi,
            ais_class=ais_class,
            call_sign=_call_sign(rng) if ais_class == "A" else "",
            **kw,
        )
        self.vessels.append(v)
        return v

    def _schedule(self, v: Vessel, mark: str, at_s: int) -> None:
        """Set the plan start so that ``mark`` happens at ``at_s`` (s from sim start)."""
        run = _run_plan(v)
        v.t0_s = int(at_s - run["marks"][mark])

    def build(self) -> None:
        rng = self.rng
        n = self.n_s
        wm = self.wm
        site_name = self.site.name
        zone_names = {z.name for z in self.site.zones}

        # ferries -----------------------------------------------------------------
        routes = [
            r for r in FERRY_ROUTES.get(site_name, []) if r[0] in zone_names and r[1] in zone_names
        ]
        ports = [z.name for z in self.site.zones if z.kind == "port"]
        if not routes and len(ports) >= 2:
            routes = [(ports[0], ports[1])]
        n_ferries = int(rng.integers(4, 7)) if routes else 0
        for i in range(n_ferries):
            a, b = routes[i % len(routes)]
            if rng.random() < 0.5:
                a, b = b, a
            ba, bb = self._berth(a), self._berth(b)
            leg_ab = wm.route(ba, bb)
            leg_ba = leg_ab[::-1].copy()
            speed = float(rng.uniform(11.0, 14.5)) * KN
            length = float(rng.uniform(90, 160))
            v = self._new(
                "ferry", "A", name=f"QIONG HAI {int(rng.integers(1, 40))}", ship_type=60,
                length_m=length, beam_m=round(length / 6.5, 1), destination=b.split()[0].upper()[:20],
            )  # fmt: skip
            v.start_xy = ba
            dwell = lambda: Hold(float(rng.uniform(20, 40)) * 60, status=5)  # noqa: E731
            v.steps = [
                dwell(),
                Go(leg_ab, speed, accel_mps2=0.02),
                dwell(),
                Go(leg_ba, speed, accel_mps2=0.02),
                dwell(),
                Go(leg_ab, speed, accel_mps2=0.02),
                dwell(),
            ]
            v.t0_s = -int(rng.uniform(0, 4500))

        # anchored cargo ships -----------------------------------------------------
        anchorages = [i for i, z in enumerate(self.site.zones) if z.kind == "anchorage"]
        for _ in range(int(rng.integers(3, 6)) if anchorages else 0):
            zp = self._zones_m[anchorages[int(rng.integers(len(anchorages)))]]
            minx, miny, maxx, maxy = zp.bounds
            while True:
                p = (float(rng.uniform(minx, maxx)), float(rng.uniform(miny, maxy)))
                if zp.buffer(-250).contains(Point(p)):
                    break
            length = float(rng.uniform(80, 190))
            v = self._new(
                "anchored_cargo", "A", name=f"HUA HAI {int(rng.integers(100, 999))}", ship_type=int(rng.choice([70, 79, 80])),
                length_m=length, beam_m=round(length / 6.0, 1), destination="HAIKOU",
            )  # fmt: skip
            v.start_xy = p
            v.steps = [
                Hold(
                    n + 10,
                    status=1,
                    swing_m=float(rng.uniform(20, 60)),
                    period_s=float(rng.uniform(1800, 3600)),
                )
            ]
            v.t0_s = 0

        # transiting ships through the strait ----------------------------------------
        for _ in range(int(rng.integers(2, 4))):
            if len(self.edges_w) == 0 or len(self.edges_e) == 0:
                break
            w = tuple(self.edges_w[int(rng.integers(len(self.edges_w)))])
            e = tuple(self.edges_e[int(rng.integers(len(self.edges_e)))])
            pa, pb = (w, e) if rng.random() < 0.5 else (e, w)
            length = float(rng.uniform(100, 220))
            v = self._new(
                "transit_cargo", "A", name=f"ZHONG YUAN {int(rng.integers(10, 99))}", ship_type=int(rng.choice([70, 71, 80])),
                length_m=length, beam_m=round(length / 6.0, 1), destination="BEIHAI" if pb is w else "ZHANJIANG",
            )  # fmt: skip
            v.start_xy = pa
            v.steps = [Go(wm.route(pa, pb), float(rng.uniform(10, 14)) * KN, stop=False), Exit()]
            v.t0_s = int(rng.uniform(-3000, n - 1800))

        # fishing boats (Class B) from the fishing harbours -------------------------
        harbours = [z.name for z in self.site.zones if z.kind in ("fishing_harbour", "port")]
        for _ in range(int(rng.integers(3, 6))):
            home = self._berth(harbours[int(rng.integers(len(harbours)))])
            ground = self._open_water_point(4000.0, 15000.0)
            path = [ground]
            for _k in range(int(rng.integers(3, 6))):
                path.append(self._open_water_point(3000.0, near=path[-1], radius_m=2500.0))
            length = float(rng.uniform(12, 30))
            v = self._new(
                "fishing", "B", name=f"QIONG YU {int(rng.integers(10000, 99999))}", ship_type=30,
                length_m=length, beam_m=round(length / 4.0, 1), destination="",
            )  # fmt: skip
            v.start_xy = home
            trawl = np.asarray(path)
            v.steps = [
                Go(wm.route(home, ground), float(rng.uniform(7, 9)) * KN, stop=False),
                Go(trawl, float(rng.uniform(3.0, 4.0)) * KN, stop=False),
                Go(wm.route(tuple(trawl[-1]), home), float(rng.uniform(7, 9)) * KN),
                Hold(n + 10, status=5),
            ]
            v.t0_s = -int(rng.uniform(0, 5000))

        # pleasure craft (Class B) -----------------------------------------------------
        for _ in range(int(rng.integers(1, 3))):
            home = self._berth(ports[int(rng.integers(len(ports)))])
            far = self._open_water_point(2000.0, 8000.0)
            length = float(rng.uniform(8, 16))
            v = self._new(
                "pleasure", "B", name=f"YOU TING {int(rng.integers(1, 99))}", ship_type=37,
                length_m=length, beam_m=round(length / 3.5, 1), destination="",
            )  # fmt: skip
            v.start_xy = home
            v.steps = [
                Hold(float(rng.uniform(0, 30)) * 60, status=5),
                Go(wm.route(home, far), float(rng.uniform(12, 18)) * KN, stop=False),
                Hold(float(rng.uniform(5, 15)) * 60, status=0, swing_m=40.0, period_s=600.0),
                Go(wm.route(far, home), float(rng.uniform(12, 18)) * KN),
                Hold(n + 10, status=5),
            ]
            v.t0_s = int(rng.uniform(-2000, n * 0.5))

        self._plant_events()

    # ---- planted events ----------------------------------------------------------
    def _local_hour_target(self, hour: int, lo: float, hi: float) -> int:
        """Seconds from start of the next local ``hour``:00 if within [lo, hi] of the run,
        else a uniform time in that fraction of the run."""
        start_local = self.cfg.start.astimezone(self.site.timezone)
        target = start_local.replace(hour=hour, minute=0, second=0, microsecond=0)
        if target < start_local:
            target += timedelta(days=1)
        at = (target - start_local).total_seconds() + float(self.rng.uniform(-1500, -600))
        lo_s, hi_s = lo * self.n_s, hi * self.n_s
        if not lo_s <= at <= hi_s:
            at = float(self.rng.uniform(lo_s, hi_s))
        return int(at)

    def _plant_events(self) -> None:
        rng = self.rng
        wm = self.wm
        n = self.n_s
        hs = HOTSPOTS.get(self.site.name)
        origins = self.edges

        def origin_far_from(p, min_m=9000.0):
            d = np.hypot(origins[:, 0] - p[0], origins[:, 1] - p[1])
            ok = np.flatnonzero(d > min_m)
            return tuple(origins[int(rng.choice(ok if ok.size else np.arange(len(origins))))])

        # 1. night landing near the hotspot, AIS on, a boat without name ----------------
        forced = self._forced_landing(dark=False)
        k = (
            forced
            if forced is not None
            else self._pick_landing(
                max_cam_r=2500.0, near=(hs[1], hs[2]) if hs else None, near_r=4500.0
            )
        )
        route, land = self._landing_route(origin_far_from(self.cand[k, :2]), k)
        length = float(rng.uniform(15, 25))
        v = self._new(
            "night_landing",
            "B",
            name="",
            ship_type=0,
            length_m=length,
            beam_m=4.0,
            destination="",
            lights=False,
        )
        v.start_xy = tuple(route[0])
        dwell = float(rng.uniform(15, 30)) * 60
        v.steps = [
            Go(route, float(rng.uniform(9, 13)) * KN, accel_mps2=0.08, mark="landing"),
            Hold(dwell, status=5),
            Go(route[::-1].copy(), 10 * KN, stop=False),
            Exit(),
        ]
        at = min(self._local_hour_target(4, 0.45, 0.9), n - LANDING_MARGIN_S)
        self._schedule(v, "landing", at if forced is None else self._forced_time(at))
        self._landing_event(
            v, k, "night_landing", place=(hs[0] if hs else None) if forced is None else "hidden"
        )
        # a boat without name or call sign: an identity alert about it is acceptable at any
        # time while its AIS is on (the window is set in finish_kinematics)
        self._event(v, "identity_anomaly", "no_name", 0, land, optional=True)

        # 2. dark approach: AIS off a few km out, then landing --------------------------
        # the AIS goes off 3-6 km before the landing, 1.5-5 km from the coast, heading for
        # it, and at least 2 km from any authorised zone (going dark next to a port is not
        # an approach)
        best: Any = None
        for _attempt in range(12):
            k = self._pick_landing(max_cam_r=NIGHT_RANGE_UNLIT_M - 100.0, commit=False)
            route, land = self._landing_route(origin_far_from(self.cand[k, :2], 12000.0), k)
            off_m = float(rng.uniform(3000, 6000))
            pre, post = _split_path(route, off_m)
            op = Point(*pre[-1])
            zd = self._zone_distance_m(op.x, op.y)
            cd = self.wm.land.distance(op)
            # heading for the shore when it goes dark: over the next 500 m of its route
            # the coast comes at least 250 m closer
            ahead = _split_path(post, max(_path_length_m(post) - 500.0, 1.0))[0][-1]
            closing = cd - self.wm.land.distance(Point(*ahead))
            score = (
                min(zd / 2000.0, 1.0)
                + (1.0 if 1500.0 <= cd <= 5000.0 else 0.0)
                + min(max(closing, 0.0) / 250.0, 1.0)
            )
            if best is None or score > best[0]:
                best = (score, k, route, off_m, pre, post)
            if score >= 3.0:
                break
        _score, k, route, off_m, pre, post = best
        self.landing_xy.append((float(self.cand[k, 0]), float(self.cand[k, 1])))
        length = float(rng.uniform(20, 35))
        v = self._new(
            "dark_approach", "B" if rng.random() < 0.5 else "A", name=f"MIN YU {int(rng.integers(10000, 99999))}",
            ship_type=30, length_m=length, beam_m=round(length / 4.0, 1), destination="", lights=False,
        )  # fmt: skip
        v.call_sign = _call_sign(rng) if v.ais_class == "A" else ""
        v.start_xy = tuple(route[0])
        v.steps = [
            Go(pre, float(rng.uniform(9, 12)) * KN, stop=False, mark="ais_off"),
            Go(post, float(rng.uniform(9, 12)) * KN, accel_mps2=0.08, mark="landing"),
            Hold(float(rng.uniform(15, 30)) * 60, status=5),
            Go(post[::-1].copy(), 10 * KN, stop=False),
            Exit(),
        ]
        v.ais_off_after_mark = "ais_off"
        self._schedule(v, "landing", min(int(rng.uniform(0.4, 0.85) * n), n - LANDING_MARGIN_S))
        off_t = v.t0_s + _run_plan(v)["marks"]["ais_off"]
        ox, oy = pre[-1]
        self._event(
            v,
            "dark_approach",
            "ais_off",
            off_t,
            (float(ox), float(oy)),
            extra={
                "ais_off_distance_m": round(off_m),
                "coast_distance_m": round(self.wm.land.distance(Point(ox, oy))),
                "zone_distance_m": round(self._zone_distance_m(ox, oy)),
            },
        )
        self._landing_event(v, k, "dark_approach_landing")
        self._event(
            v, "dark_vessel", "seen_after_ais_off", off_t, (float(ox), float(oy)), optional=True
        )

        # 3. skiff without AIS, landing in a camera's view ------------------------------
        forced = self._forced_landing(dark=True)
        k = (
            forced
            if forced is not None
            else self._pick_landing(max_cam_r=NIGHT_RANGE_UNLIT_M - 200.0)
        )
        origin = self._open_water_point(
            6000.0, 20000.0, near=tuple(self.cand[k, :2]), radius_m=15000.0
        )
        route, land = self._landing_route(origin, k)
        v = self._new(
            "skiff",
            None,
            name="",
            ship_type=0,
            length_m=float(rng.uniform(6, 9)),
            beam_m=2.2,
            destination="",
            lights=False,
        )
        v.call_sign = ""
        v.start_xy = tuple(route[0])
        v.steps = [
            Go(route, float(rng.uniform(16, 24)) * KN, accel_mps2=0.15, mark="landing"),
            Hold(float(rng.uniform(10, 20)) * 60, status=5),
            Go(route[::-1].copy(), 18 * KN, stop=False),
            Exit(),
        ]
        at = min(int(rng.uniform(0.3, 0.8) * n), n - LANDING_MARGIN_S)
        at = at if forced is None else self._forced_time(at)
        v.steps[:1] = self._offshore_start(v.steps[0], at)
        v.start_xy = tuple(v.steps[0].path[0])
        self._schedule(v, "landing", at)
        self._landing_event(v, k, "skiff_landing", place=None if forced is None else "hidden")
        # the dark_vessel event time is set from the first camera detection (see cameras)
        self._event(v, "dark_vessel", "no_ais", None, None)

        # 4. rendezvous offshore, then the small boat lands --------------------------------
        k = self._pick_landing(max_cam_r=3000.0)
        boat_kn = float(rng.uniform(10, 14))
        budget_s = (1.0 - 0.03) * n - LANDING_MARGIN_S - 17 * 60.0
        best = None
        for _attempt in range(8):  # a meeting point from which the boat lands in time
            meet = self._open_water_point(
                4000.0, 9000.0, near=tuple(self.cand[k, :2]), radius_m=8000.0
            )
            route, land = self._landing_route((meet[0] + 70.0, meet[1] + 40.0), k)
            travel_s = _path_length_m(route) / (boat_kn * KN) + 120.0
            if best is None or travel_s < best[0]:
                best = (travel_s, meet, route, land)
            if travel_s <= budget_s:
                break
        travel_s, meet, route, land = best
        # the encounter lasts 20-30 min, shortened (not below 17 min) to fit a short run
        budget_s = (1.0 - 0.03) * n - LANDING_MARGIN_S - travel_s
        meet_dur = max(17 * 60.0, min(float(rng.uniform(20, 30)) * 60, budget_s))
        length = float(rng.uniform(70, 120))
        mother = self._new(
            "rendezvous_mother", "A", name=f"XIN HAI {int(rng.integers(10, 99))}", ship_type=70,
            length_m=length, beam_m=round(length / 6.0, 1), destination="BEIHAI",
        )  # fmt: skip
        m_origin = origin_far_from(meet, 12000.0)
        m_exit = origin_far_from(meet, 12000.0)
        mother.start_xy = m_origin
        mother.steps = [
            Go(
                wm.route(m_origin, meet),
                float(rng.uniform(9, 11)) * KN,
                accel_mps2=0.02,
                mark="arrive",
            ),
            Hold(meet_dur + 1200, status=0, swing_m=25.0, period_s=1500.0),
            Go(wm.route(meet, m_exit), 10 * KN, stop=False),
            Exit(),
        ]
        boat = self._new(
            "rendezvous_boat", "B", name=f"QIONG YU {int(rng.integers(10000, 99999))}", ship_type=30,
            length_m=float(rng.uniform(12, 20)), beam_m=4.0, destination="", lights=False,
        )  # fmt: skip
        alongside = (meet[0] + 70.0, meet[1] + 40.0)
        b_origin = self._open_water_point(3000.0, 15000.0, near=meet, radius_m=9000.0)
        boat.start_xy = b_origin
        boat.steps = [
            Go(wm.route(b_origin, alongside), float(rng.uniform(8, 10)) * KN, mark="meet"),
            Hold(meet_dur, status=0, swing_m=20.0, period_s=1200.0),
            Go(route, boat_kn * KN, accel_mps2=0.08, mark="landing"),
            Hold(float(rng.uniform(15, 25)) * 60, status=5),
            Go(route[::-1].copy(), 10 * KN, stop=False),
            Exit(),
        ]
        marks = _run_plan(boat)["marks"]
        span = int(marks["landing"]) - int(marks["meet"])
        meet_at = int(rng.uniform(0.08, 0.25) * n)
        if meet_at + span > n - LANDING_MARGIN_S:
            meet_at = max(int(0.03 * n), n - LANDING_MARGIN_S - span)
        self._schedule(boat, "meet", meet_at)
        self._schedule(mother, "arrive", meet_at - int(rng.uniform(300, 600)))
        self._rendezvous = (mother, boat)
        self._landing_event(boat, k, "rendezvous_landing")

    def _event(
        self, v: Vessel, kind: str, scenario: str, t_s, xy, optional=False, extra=None
    ) -> None:
        ev = {
            "kind": kind,
            "scenario": scenario,
            "vessel_ids": [v.vid],
            "mmsi": [v.mmsi] if v.mmsi else [],
            "optional": optional,
            "_t_s": t_s,
            "_xy": xy,
        }
        if extra:
            ev.update(extra)
        self.events.append(ev)

    def _landing_event(self, v: Vessel, k: int, scenario: str, place: str | None = None) -> None:
        run = _run_plan(v)
        t_s = v.t0_s + run["marks"]["landing"]
        lon, lat = self.cand_lonlat[k]
        ci = int(self.cand_cam[k])
        self._event(
            v, "unusual_landing", scenario, t_s, (float(self.cand[k, 0]), float(self.cand[k, 1])),
            extra={
                "landing_lonlat": [round(float(lon), 6), round(float(lat), 6)],
                "camera_id": self.cams[ci][0].id if ci >= 0 else None,
                "camera_range_m": round(float(self.cand_cam_r[k])) if ci >= 0 else None,
                "zone_distance_m": round(self._zone_distance_m(self.cand[k, 0], self.cand[k, 1])),
                **({"place": place} if place else {}),
            },
        )  # fmt: skip
        # a boat that stays ashore outside a zone also loiters there: acceptable, not required
        i = next(j for j, st in enumerate(v.steps) if getattr(st, "mark", None) == "landing")
        dwell = v.steps[i + 1].duration_s if isinstance(v.steps[i + 1], Hold) else 0.0
        self._event(
            v, "loitering", "ashore", t_s, (float(self.cand[k, 0]), float(self.cand[k, 1])),
            optional=True, extra={"_t_end_s": int(t_s + dwell)},
        )  # fmt: skip

    def finish_kinematics(self) -> None:
        for v in self.vessels:
            _place_on_timeline(v, _run_plan(v), self.n_s)
        by_id = {v.vid: v for v in self.vessels}
        for ev in self.events:
            if ev["kind"] == "identity_anomaly":
                v = by_id[ev["vessel_ids"][0]]
                on = np.flatnonzero(v.ais_on)
                ev["_t_s"] = int(on[0]) if on.size else 0
                ev["_t_end_s"] = int(on[-1]) if on.size else self.n_s - 1
                ev["_xy"] = (float(v.x[ev["_t_s"]]), float(v.y[ev["_t_s"]]))
        mother, boat = self._rendezvous
        d = np.hypot(mother.x - boat.x, mother.y - boat.y)
        both = (
            mother.present
            & boat.present
            & (d <= 250.0)
            & (mother.sog < 2 * KN)
            & (boat.sog < 2 * KN)
        )
        idx = np.flatnonzero(both)
        if idx.size:
            # first run of consecutive seconds
            breaks = np.flatnonzero(np.diff(idx) > 1)
            end = idx[breaks[0]] if breaks.size else idx[-1]
            t_start, t_end = int(idx[0]), int(end)
            mid = (
                0.5 * (mother.x[t_start] + boat.x[t_start]),
                0.5 * (mother.y[t_start] + boat.y[t_start]),
            )
            self.events.append(
                {
                    "kind": "rendezvous", "scenario": "rendezvous", "vessel_ids": [mother.vid, boat.vid],
                    "mmsi": [m for m in (mother.mmsi, boat.mmsi) if m], "optional": False,
                    "_t_s": t_start, "_xy": mid, "_t_end_s": t_end,
                    "condition_t_ms": self.t0_unix * 1000 + (t_start + 15 * 60) * 1000,
                    "duration_s": t_end - t_start,
                }
            )  # fmt: skip
            for v in (mother, boat):
                self._event(v, "loitering", "rendezvous", t_start, mid, optional=True)

    # ---- AIS -------------------------------------------------------------------------
    def ais_lines(self) -> list[str]:
        rng = np.random.default_rng([self.cfg.seed, 1])
        stations = STATIONS.get(self.site.name) or [
            (
                "STATION-1",
                0.5 * (self.site.bbox[0] + self.site.bbox[2]),
                0.5 * (self.site.bbox[1] + self.site.bbox[3]),
            )
        ]
        st_xy = np.array([self.wm.to_m(lo, la) for _s, lo, la in stations], dtype=float)
        # (arrival t, vessel index, order, [station, *sentences], event t)
        out: list[tuple[float, int, int, list[str], int]] = []
        seq = 0
        nz = self.noise
        nrng = np.random.default_rng([self.cfg.seed, 10])

        def also_heard(ti: int, vi: int, si: int, sentences: list[str]) -> None:
            """A second station logging the same report, a little later (noise)."""
            nonlocal seq
            if len(stations) < 2 or nrng.random() >= nz.ais_duplicate_p:
                return
            other = int((si + 1 + nrng.integers(len(stations) - 1)) % len(stations))
            late = ti + float(nrng.uniform(0.0, nz.ais_disorder_s))
            out.append((late, vi, seq, [stations[other][0], *sentences], ti))
            seq += 1

        for vi, v in enumerate(self.vessels):
            if not v.ais_class:
                continue
            on = np.flatnonzero(v.ais_on)
            if on.size == 0:
                continue
            # short reception outages: ~1 per 2 h per vessel, 20-60 s
            outages = []
            for _ in range(int(rng.poisson(self.n_s / 7200.0))):
                a = float(rng.uniform(0, self.n_s))
                outages.append((a, a + float(rng.uniform(20, 60))))
            sigma = 4.0 if v.ais_class == "A" else 10.0
            t = float(on[0]) + float(rng.uniform(0, 10))
            last_heading = int(round(v.cog[on[0]])) % 360
            while t < self.n_s:
                ti = int(t)
                if not v.ais_on[ti]:
                    t += 1.0
                    continue
                sog_kn = float(v.sog[ti]) / KN
                st = int(v.status[ti])
                turning = (
                    abs(
                        ((v.cog[min(ti + 5, self.n_s - 1)] - v.cog[max(ti - 5, 0)]) + 180) % 360
                        - 180
                    )
                    > 10
                    and sog_kn > 1
                )
                dt = ais_report_interval_s(v.ais_class, sog_kn, st, turning)
                dt = dt * float(rng.uniform(0.97, 1.03)) if v.ais_class == "B" else dt
                d = np.hypot(st_xy[:, 0] - v.x[ti], st_xy[:, 1] - v.y[ti])
                si = int(np.argmin(d))
                p_rx = 0.985 - d[si] / 1000.0 * (0.004 if v.ais_class == "A" else 0.012)
                heard = rng.random() < p_rx and not any(a <= t < b for a, b in outages)
                if nz.enabled and heard and nrng.random() < nz.ais_miss_p:
                    heard = False
                ex, ey = rng.normal(0, sigma, 2)
                lon, lat = self.wm.to_lonlat(v.x[ti] + ex, v.y[ti] + ey)
                sog_r = (
                    max(0.0, round(sog_kn + float(rng.normal(0, 0.1)), 1)) if sog_kn > 0.05 else 0.0
                )
                cog_r = round(float((v.cog[ti] + rng.normal(0, 1.0)) % 360.0), 1)
                if sog_kn > 0.5:
                    last_heading = int(round(v.cog[ti] + rng.normal(0, 1.5))) % 360
                if heard:
                    if v.ais_class == "A":
                        msg = {
                            "type": 1, "mmsi": v.mmsi, "status": st, "turn": 0, "speed": sog_r, "accuracy": 1,
                            "lon": round(float(lon), 6), "lat": round(float(lat), 6), "course": cog_r,
                            "heading": last_heading, "second": ti % 60, "maneuver": 0, "raim": 0, "radio": 0,
                        }  # fmt: skip
                    else:
                        msg = {
                            "type": 18, "mmsi": v.mmsi, "speed": sog_r, "accuracy": 0,
                            "lon": round(float(lon), 6), "lat": round(float(lat), 6), "course": cog_r,
                            "heading": 511, "second": ti % 60, "cs": 1, "display": 0, "dsc": 1, "band": 1,
                            "msg22": 1, "assigned": 0, "raim": 0, "radio": 0,
                        }  # fmt: skip
                    sentences = self._encode(msg, "AB"[seq % 2], None)
                    out.append((ti, vi, seq, [stations[si][0], *sentences], ti))
                    seq += 1
                    if nz.enabled:
                        also_heard(ti, vi, si, sentences)
                t += dt
            # static data every 6 min (heard with the same probability)
            ts = float(on[0]) + float(rng.uniform(5, 120))
            gid = 0
            while ts < self.n_s:
                ti = int(ts)
                if (
                    v.ais_on[ti]
                    and rng.random() < 0.95
                    and not any(a <= ts < b for a, b in outages)
                ):
                    d = np.hypot(st_xy[:, 0] - v.x[ti], st_xy[:, 1] - v.y[ti])
                    si = int(np.argmin(d))
                    for msg in self._static_msgs(v, ti):
                        sentences = self._encode(
                            msg, "AB"[seq % 2], gid % 10 if msg["type"] == 5 else None
                        )
                        out.append((ti, vi, seq, [stations[si][0], *sentences], ti))
                        seq += 1
                        gid += 1
                        if nz.enabled:
                            also_heard(ti, vi, si, sentences)
                ts += 360.0 * float(rng.uniform(0.98, 1.02))
        out.sort(key=lambda r: (r[0], r[1], r[2]))
        lines: list[str] = []
        for _arrival, _vi, _seq, (station, *sentences), ti in out:
            tb = tag_block(station, self.t0_unix + ti)
            lines.extend(tb + s for s in sentences)
        if nz.enabled:
            self.corrupted_lines = corrupt_lines(lines, nz.ais_corrupt_per_h * self.n_s / 3600.0,
                                                 np.random.default_rng([self.cfg.seed, 11]))  # fmt: skip
        return lines

    @staticmethod
    def _encode(msg: dict, channel: str, seq_id: int | None) -> list[str]:
        from pyais.encode import encode_dict

        return encode_dict(
            msg, talker_id="AI", sentence_type="VDM", radio_channel=channel, seq_id=seq_id
        )

    def _static_msgs(self, v: Vessel, ti: int) -> list[dict]:
        bow = int(round(v.length_m * 0.6))
        stern = int(round(v.length_m)) - bow
        port = int(round(v.beam_m / 2))
        stbd = max(1, int(round(v.beam_m)) - port)
        if v.ais_class == "A":
            eta = datetime.fromtimestamp(self.t0_unix + ti + 5400, UTC)
            return [
                {
                    "type": 5, "mmsi": v.mmsi, "ais_version": 0, "imo": 0, "callsign": v.call_sign, "shipname": v.name,
                    "ship_type": v.ship_type, "to_bow": bow, "to_stern": stern, "to_port": port, "to_starboard": stbd,
                    "epfd": 1, "month": eta.month, "day": eta.day, "hour": eta.hour, "minute": eta.minute,
                    "draught": round(min(12.0, 2.0 + v.length_m / 30.0), 1), "destination": v.destination, "dte": 0,
                }
            ]  # fmt: skip
        return [
            {"type": 24, "mmsi": v.mmsi, "partno": 0, "shipname": v.name},
            {
                "type": 24, "mmsi": v.mmsi, "partno": 1, "ship_type": v.ship_type, "vendorid": "SWSIM", "callsign": v.call_sign,
                "to_bow": bow, "to_stern": stern, "to_port": port, "to_starboard": stbd,
            },
        ]  # fmt: skip

    # ---- cameras -----------------------------------------------------------------------
    def camera_frames(self) -> list[bytes]:
        rng = np.random.default_rng([self.cfg.seed, 2])
        step = max(1, int(round(1.0 / self.cfg.fps)))
        frame_t = np.arange(0, self.n_s, step)
        X = np.stack([v.x[frame_t] for v in self.vessels])  # (V, F)
        Y = np.stack([v.y[frame_t] for v in self.vessels])
        P = np.stack([v.present[frame_t] for v in self.vessels])
        LON, LAT = self.wm.to_lonlat(X, Y)
        length = np.array([v.length_m for v in self.vessels])
        lights = np.array([v.lights for v in self.vessels])
        mast = np.clip(length / 4.0, 1.2, 35.0)
        lines: list[tuple[int, int, bytes]] = []
        enc = msgspec.json.Encoder()
        skiff_first: dict[str, int] = {}
        nz = self.noise
        self.outage = self._camera_outage() if nz.enabled and nz.outage_s > 0 else None
        for ci, (cam, model) in enumerate(self.cams):
            nrng = np.random.default_rng([self.cfg.seed, 20 + ci])
            sun = _sun_elevation_deg(self.t0_unix + frame_t, cam.lon, cam.lat)
            dayf = np.clip((sun + 6.0) / 6.0, 0.0, 1.0)  # 0 night .. 1 day
            cxm, cym = self.wm.to_m(cam.lon, cam.lat)
            R = np.hypot(X - cxm, Y - cym)
            u, vpx, vis = model.geo_to_pixel(LON, LAT)
            day_range = np.clip(300.0 * length, 1500.0, 12000.0)[:, None]
            night_range = np.where(
                lights, np.clip(150.0 * length, 1000.0, 8000.0), NIGHT_RANGE_UNLIT_M
            )[:, None]
            if nz.enabled and nz.far_range_m > 0:  # big lit ships seen far (poor range)
                day_range = np.clip(300.0 * length, 1500.0, nz.far_range_m)[:, None]
                night_range = np.where(
                    lights, np.clip(150.0 * length, 1000.0, nz.far_range_m), NIGHT_RANGE_UNLIT_M
                )[:, None]
            rmax = night_range + (day_range - night_range) * dayf[None, :]
            cand = P & vis & (R < rmax) & (R > 30.0)
            # occlusion by land, evaluated every 5 frames
            vi_idx, fi_idx = np.nonzero(cand)
            if vi_idx.size:
                key = vi_idx * (len(frame_t) // 5 + 1) + fi_idx // 5
                ukey, inv = np.unique(key, return_inverse=True)
                first = np.zeros(len(ukey), dtype=int)
                first[inv[::-1]] = np.arange(len(inv))[::-1]
                lines_geo = shapely.linestrings(
                    np.stack(
                        [
                            np.column_stack([np.full(len(ukey), cxm), np.full(len(ukey), cym)]),
                            np.column_stack(
                                [X[vi_idx[first], fi_idx[first]], Y[vi_idx[first], fi_idx[first]]]
                            ),
                        ],
                        axis=1,
                    )
                )
                if not hasattr(self, "_land_occl"):
                    self._line_of_sight(0, 0, 1, 1)
                blocked = shapely.intersects(lines_geo, self._land_occl)[inv]
                cand[vi_idx[blocked], fi_idx[blocked]] = False
            pmax = 0.75 + 0.17 * dayf
            p_det = pmax[None, :] * (1.0 - (R / rmax) ** 4)
            if nz.enabled:
                p_det = p_det * (1.0 - nz.det_dropout_p)
            det = cand & (rng.random(cand.shape) < p_det)
            vi_idx, fi_idx = np.nonzero(det)
            # pixel noise: waterline row and column (bearing), in pixels
            un = (
                u[vi_idx, fi_idx]
                + rng.normal(0.0, 2.0, vi_idx.size)
                + rng.normal(0.0, 0.2, vi_idx.size) * model.fx * math.pi / 180.0
            )
            vn = vpx[vi_idx, fi_idx] + rng.normal(0.0, 1.2, vi_idx.size)
            if nz.enabled:
                un = (
                    un
                    + nrng.normal(0.0, nz.bearing_sigma_deg, un.size) * model.fx * math.pi / 180.0
                )
                vn = vn + nrng.normal(0.0, nz.waterline_sigma_px, vn.size)
            rr = R[vi_idx, fi_idx]
            hpx = np.maximum(4.0, mast[vi_idx] * model.fy / rr)
            wpx = np.maximum(
                4.0, length[vi_idx] * (0.35 + 0.65 * rng.random(vi_idx.size)) * model.fx / rr
            )
            conf = np.clip(
                0.3 + 0.55 * np.minimum(hpx, 60.0) / 60.0 + rng.normal(0, 0.05, vi_idx.size),
                0.25,
                0.98,
            )
            geo = model.pixel_to_geo(un, vn)
            # camera track ids: stable per vessel, new after a gap of 30 s or an id switch
            tid_next = 1
            cur: dict[int, tuple[int, int]] = {}
            dets_by_frame: dict[int, list[CameraDetection]] = {}
            order = np.lexsort((vi_idx, fi_idx))
            for j in order:
                vi, fi = int(vi_idx[j]), int(fi_idx[j])
                prev = cur.get(vi)
                if (
                    prev is None
                    or frame_t[fi] - frame_t[prev[1]] > nz.track_lost_s
                    or rng.random() < 0.002
                ):
                    tid = tid_next
                    tid_next += 1
                else:
                    tid = prev[0]
                cur[vi] = (tid, fi)
                v = self.vessels[vi]
                if v.role == "skiff" and v.vid not in skiff_first:
                    skiff_first[v.vid] = int(frame_t[fi])
                elif v.role == "skiff":
                    skiff_first[v.vid] = min(skiff_first[v.vid], int(frame_t[fi]))
                dets_by_frame.setdefault(fi, []).append(
                    self._detection(tid, un[j], vn[j], wpx[j], hpx[j], conf[j], geo, j)
                )
            # false alarms on waves
            lam = 0.01 + 0.02 * dayf
            n_fa = rng.poisson(lam)
            for fa in np.flatnonzero(n_fa).tolist():
                for _ in range(int(n_fa[fa])):
                    brg = cam.heading_deg + float(rng.uniform(-0.45, 0.45)) * model.hfov_deg
                    rng_m = float(rng.uniform(150.0, 3000.0))
                    fx_, fy_ = (
                        cxm + rng_m * math.sin(math.radians(brg)),
                        cym + rng_m * math.cos(math.radians(brg)),
                    )
                    if shapely.contains_xy(self.wm.land, fx_, fy_):
                        continue
                    flon, flat = self.wm.to_lonlat(fx_, fy_)
                    fu, fv, fvis = model.geo_to_pixel(
                        np.array([float(flon)]), np.array([float(flat)])
                    )
                    if not fvis[0]:
                        continue
                    tid = tid_next
                    tid_next += 1
                    for extra in range(int(rng.integers(1, 4))):
                        fj = fa + extra
                        if fj >= len(frame_t):
                            break
                        uu = float(fu[0]) + float(rng.normal(0, 3))
                        vv = float(fv[0]) + float(rng.normal(0, 2))
                        g = model.pixel_to_geo(np.array([uu]), np.array([vv]))
                        dets_by_frame.setdefault(int(fj), []).append(
                            self._detection(
                                tid,
                                uu,
                                vv,
                                float(rng.uniform(6, 20)),
                                float(rng.uniform(4, 10)),
                                float(rng.uniform(0.25, 0.45)),
                                g,
                                0,
                            )
                        )
            if nz.enabled:
                tid_next = self._clutter(nrng, cam, model, frame_t, dayf, dets_by_frame, tid_next)
            for fi, t in enumerate(frame_t):
                if self.outage is not None and self.outage[0] == ci:
                    if self.outage[1] <= t < self.outage[2]:
                        continue  # the camera is offline: no frame at all
                t_ms = (self.t0_unix + int(t)) * 1000 + 40 * ci
                frame = CameraFrame(
                    camera_id=cam.id, t_ms=t_ms, image_width=cam.image_width, image_height=cam.image_height,
                    heading_deg=cam.heading_deg, hfov_deg=round(model.hfov_deg, 3), detections=dets_by_frame.get(fi, []),
                )  # fmt: skip
                lines.append((t_ms, ci, enc.encode(frame)))
        lines.sort(key=lambda r: (r[0], r[1]))
        # dark_vessel event: when the skiff is first seen
        for ev in self.events:
            if ev["kind"] == "dark_vessel" and ev["scenario"] == "no_ais":
                v = next(u for u in self.vessels if u.vid == ev["vessel_ids"][0])
                seen_t = skiff_first.get(v.vid)
                if seen_t is None:  # never seen: nothing can detect it, keep it honest
                    seen_t = v.marks["landing"]
                    ev["seen_by_camera"] = False
                else:
                    ev["seen_by_camera"] = True
                ev["_t_s"] = seen_t
                ev["_xy"] = (float(v.x[seen_t]), float(v.y[seen_t]))
        return [b for _t, _c, b in lines]

    def _camera_outage(self) -> tuple[int, int, int] | None:
        """One camera offline for ``noise.outage_s`` (noise): ``(camera index, start s, end
        s)``, at a time that spares every planted landing in its view (from 20 min before
        the landing to 10 min after the boat leaves), so that recall stays measurable."""
        nrng = np.random.default_rng([self.cfg.seed, 12])
        dur = int(self.noise.outage_s)
        if not self.cams or dur >= self.n_s:
            return None
        busy: dict[str, list[tuple[int, int]]] = {}
        ends = {
            (e["vessel_ids"][0], e["_t_s"]): e.get("_t_end_s", e["_t_s"])
            for e in self.events
            if e["kind"] == "loitering" and e["scenario"] == "ashore"
        }
        for e in self.events:
            if e["kind"] == "unusual_landing" and e.get("camera_id"):
                end = int(ends.get((e["vessel_ids"][0], e["_t_s"]), e["_t_s"]))
                busy.setdefault(e["camera_id"], []).append((int(e["_t_s"]) - 1200, end + 600))
        for ci in nrng.permutation(len(self.cams)).tolist():
            spans = busy.get(self.cams[ci][0].id, [])
            starts = np.arange(0, self.n_s - dur, 60)
            ok = [int(a) for a in starts if all(a + dur <= lo or a >= hi for lo, hi in spans)]
            if ok:
                a = ok[int(nrng.integers(len(ok)))]
                return ci, a, a + dur
        return None

    def _clutter(self, nrng, cam, model, frame_t, dayf, dets_by_frame, tid_next: int) -> int:
        """Short-lived detections on the water (noise): background clutter, more near the
        camera and in glare, and recurring clutter spots near the waterline. Adds to
        ``dets_by_frame``; returns the next free track id."""
        nz = self.noise
        wm = self.wm
        cxm, cym = wm.to_m(cam.lon, cam.lat)
        step = float(frame_t[1] - frame_t[0]) if len(frame_t) > 1 else 1.0
        half = 0.45 * model.hfov_deg

        def emit(fi: int, x: float, y: float) -> None:
            nonlocal tid_next
            lon, lat = wm.to_lonlat(x, y)
            fu, fv, fvis = model.geo_to_pixel(np.array([float(lon)]), np.array([float(lat)]))
            if not fvis[0]:
                return
            tid, tid_next = tid_next, tid_next + 1
            for k in range(int(nrng.integers(1, 3))):  # one or two frames
                fj = fi + k
                if fj >= len(frame_t):
                    break
                uu = float(fu[0]) + float(nrng.normal(0, 3))
                vv = float(fv[0]) + float(nrng.normal(0, 2))
                g = model.pixel_to_geo(np.array([uu]), np.array([vv]))
                dets_by_frame.setdefault(fj, []).append(
                    self._detection(tid, uu, vv, float(nrng.uniform(6, 24)),
                                    float(nrng.uniform(4, 12)), float(nrng.uniform(0.3, 0.6)), g, 0)
                )  # fmt: skip

        def at(brg: float, r: float) -> tuple[float, float]:
            return cxm + r * math.sin(math.radians(brg)), cym + r * math.cos(math.radians(brg))

        # background clutter
        lam = nz.clutter_per_min / 60.0 * step * (1.0 + (nz.glare_factor - 1.0) * dayf)
        for fi in np.flatnonzero(nrng.poisson(lam)).tolist():
            brg = cam.heading_deg + float(nrng.uniform(-half, half))
            r = min(60.0 + float(nrng.exponential(nz.clutter_range_m)), nz.clutter_max_range_m)
            x, y = at(brg, r)
            if not shapely.contains_xy(wm.land, x, y):
                emit(int(fi), x, y)
        # recurring spots near the waterline
        for _k in range(nz.clutter_spots):
            spot = None
            for _try in range(200):
                brg = cam.heading_deg + float(nrng.uniform(-half, half))
                x, y = at(brg, float(nrng.uniform(150.0, 1500.0)))
                if shapely.contains_xy(wm.land, x, y):
                    continue
                if 30.0 <= wm.land.distance(Point(x, y)) <= 250.0 and self._line_of_sight(
                    cxm, cym, x, y
                ):
                    spot = (x, y)
                    break
            if spot is None:
                continue
            dur = float(nrng.uniform(*nz.clutter_spot_min)) * 60.0
            t = float(nrng.uniform(0.0, max(self.n_s - dur, 1.0)))
            end = t + dur
            while t < end:
                fi = int(np.searchsorted(frame_t, t))
                if fi >= len(frame_t):
                    break
                jx, jy = nrng.normal(0.0, 15.0, 2)
                emit(fi, spot[0] + float(jx), spot[1] + float(jy))
                t += float(nrng.uniform(*nz.clutter_spot_gap_s))
        return tid_next

    @staticmethod
    def _detection(tid, u, v, w, h, conf, geo, j) -> CameraDetection:
        def f(a, nd):
            x = float(a[j])
            return None if not math.isfinite(x) else round(x, nd)

        hits = bool(geo.hits_sea[j])
        return CameraDetection(
            track_id=int(tid),
            box_px=[
                round(float(u - w / 2), 1),
                round(float(v - h), 1),
                round(float(w), 1),
                round(float(h), 1),
            ],
            cls="boat",
            confidence=round(float(conf), 3),
            bearing_deg=round(float(geo.bearing_deg[j]), 3),
            bearing_sigma_deg=round(float(geo.bearing_sigma_deg[j]), 3),
            range_m=f(geo.range_m, 1) if hits else None,
            range_sigma_m=f(geo.range_sigma_m, 1) if hits else None,
            lon=f(geo.lon_deg, 6) if hits else None,
            lat=f(geo.lat_deg, 6) if hits else None,
            beyond_horizon=not hits,
        )

    # ---- truth -------------------------------------------------------------------------
    def truth(self) -> dict[str, Any]:
        step = self.cfg.track_sample_s
        t_ms0 = self.t0_unix * 1000
        vessels = []
        for v in self.vessels:
            idx = np.arange(0, self.n_s, step)
            idx = idx[v.present[idx]]
            lon, lat = self.wm.to_lonlat(v.x[idx], v.y[idx])
            track = [
                [
                    t_ms0 + int(i) * 1000,
                    round(float(a), 6),
                    round(float(b), 6),
                    round(float(s) / KN, 2),
                    round(float(c), 1),
                ]
                for i, a, b, s, c in zip(idx, lon, lat, v.sog[idx], v.cog[idx], strict=True)
            ]
            on = np.flatnonzero(np.diff(np.concatenate([[0], v.ais_on.astype(np.int8), [0]])))
            ais_intervals = [
                [t_ms0 + int(a) * 1000, t_ms0 + int(b - 1) * 1000]
                for a, b in zip(on[::2], on[1::2], strict=True)
            ]
            vessels.append(
                {
                    "id": v.vid, "role": v.role, "mmsi": v.mmsi, "ais_class": v.ais_class, "name": v.name or None,
                    "call_sign": v.call_sign or None, "ship_type": v.ship_type, "length_m": round(v.length_m, 1),
                    "ais_intervals": ais_intervals, "track_columns": ["t_ms", "lon", "lat", "sog_kn", "cog_deg"],
                    "track": track,
                }
            )  # fmt: skip
        events = []
        for i, ev in enumerate(
            sorted(self.events, key=lambda e: (e["_t_s"], e["kind"], e["vessel_ids"][0]))
        ):
            lon, lat = self.wm.to_lonlat(*ev["_xy"])
            t_ms = t_ms0 + int(ev["_t_s"]) * 1000
            out = {k: val for k, val in ev.items() if not k.startswith("_")}
            out.update(
                id=f"ev{i + 1:02d}", t_ms=t_ms, time=_iso(t_ms / 1000), lon=round(float(lon), 6), lat=round(float(lat), 6),
                night=bool(_sun_elevation_deg(np.array([t_ms / 1000]), float(lon), float(lat))[0] < -6.0),
            )  # fmt: skip
            if "_t_end_s" in ev:
                out["t_end_ms"] = t_ms0 + int(ev["_t_end_s"]) * 1000
            events.append(out)
        doc = {
            "format": "shorewatch.truth.v1",
            "site": self.site.name,
            "seed": self.cfg.seed,
            "start": self.cfg.start.isoformat(),
            "start_t_ms": t_ms0,
            "duration_s": self.n_s,
            "camera_fps": self.cfg.fps,
            "stations": [
                {"id": s, "lon": lo, "lat": la} for s, lo, la in STATIONS.get(self.site.name, [])
            ],
            "cameras": [c.id for c, _m in self.cams],
            "vessels": vessels,
            "events": events,
        }
        if self.noise.enabled:
            doc["noise"] = self._noise_truth()
        return doc

    def _noise_truth(self) -> dict[str, Any]:
        """What the noise did (``truth.json``'s ``noise``): the level and its knobs, the
        camera outage, the corrupted AIS lines."""
        out: dict[str, Any] = {
            "level": self.noise.name,
            "settings": {k: v for k, v in asdict(self.noise).items() if k != "name"},
            "corrupted_ais_lines": len(getattr(self, "corrupted_lines", [])),
        }
        o = getattr(self, "outage", None)
        if o is not None:
            t_ms0 = self.t0_unix * 1000
            out["camera_outage"] = {"camera_id": self.cams[o[0]][0].id,
                                    "t_ms": t_ms0 + o[1] * 1000, "t_end_ms": t_ms0 + o[2] * 1000}  # fmt: skip
        return out


def _path_length_m(path: np.ndarray) -> float:
    """Length of a polyline in local metres."""
    return float(np.hypot(*np.diff(np.asarray(path), axis=0).T).sum())


def _split_path(path: np.ndarray, tail_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Split a polyline where ``tail_m`` metres remain to its end."""
    seg = np.diff(path, axis=0)
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))])
    s = max(1.0, cum[-1] - tail_m)
    k = min(int(np.searchsorted(cum, s, side="right")) - 1, len(seg) - 1)
    f = (s - cum[k]) / max(cum[k + 1] - cum[k], 1e-9)
    p = path[k] + f * seg[k]
    return np.vstack([path[: k + 1], [p]]), np.vstack([[p], path[k + 1 :]])


# --------------------------------------------------------------------------- entry points


def simulate(site: Site | str | Path, cfg: SimConfig, out_dir: str | Path) -> dict[str, Any]:
    """Run one scenario and write ``ais.nmea``, ``detections.jsonl`` and ``truth.json``.

    :param site: a loaded site or its folder
    :param cfg: seed, start, duration, frame rate
    :param out_dir: output folder (created)
    :return: the ground truth written to ``truth.json``
    """
    if not isinstance(site, Site):
        site = load_site(site)
    sc = _Scenario(site, cfg)
    sc.build()
    sc.finish_kinematics()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ais = sc.ais_lines()
    frames = sc.camera_frames()
    truth = sc.truth()
    (out / "ais.nmea").write_text("".join(line + "\n" for line in ais), encoding="ascii")
    with open(out / "detections.jsonl", "wb") as fh:
        for b in frames:
            fh.write(b + b"\n")
    (out / "truth.json").write_text(json.dumps(truth, sort_keys=True, separators=(",", ":")) + "\n")
    from pipeline.tools.sim_registry import write_sim_registry  # registry.json & its truth

    write_sim_registry(site, truth, out)
    return truth


def hidden_place(site: Site, seed: int, min_hotspot_m: float = 3000.0) -> tuple[float, float]:
    """A landing place for the hidden site of a multi-night run: on the hotspot's side of
    the strait, in a camera's view at night (so dark visits are seen), at least
    ``min_hotspot_m`` from the hotspot (which has its own nightly landing); random by seed."""
    sc = _Scenario(
        site, SimConfig(seed=seed, start=datetime(2026, 3, 1, tzinfo=UTC), duration_s=3600)
    )
    ok = sc.on_home_side & (sc.cand_cam >= 0) & (sc.cand_cam_r <= NIGHT_RANGE_UNLIT_M - 200.0)
    hs = HOTSPOTS.get(site.name)
    if hs is not None:
        hx, hy = sc.wm.to_m(hs[1], hs[2])
        far = ok & (np.hypot(sc.cand[:, 0] - hx, sc.cand[:, 1] - hy) >= min_hotspot_m)
        ok = far if far.any() else ok
    if not ok.any():
        raise ConfigError(f"site {site.name}: no landing place in a camera's view")
    k = int(np.random.default_rng([seed, 7]).choice(np.flatnonzero(ok)))
    return float(sc.cand_lonlat[k, 0]), float(sc.cand_lonlat[k, 1])


def simulate_nights(
    site: Site | str | Path, cfg: SimConfig, nights: int, out_dir: str | Path, used: int = 3
) -> dict[str, Any]:
    """``nights`` runs on consecutive days (``night-01`` … in ``out_dir``), a hidden landing
    place used on ``used`` of them by different vessels (at least one without AIS, at least
    one with), every night's other planted landings elsewhere; writes ``nights.json``.

    Night ``i`` is the run of seed ``cfg.seed * 1000 + i`` starting ``i`` days after
    ``cfg.start``.
    """
    if not isinstance(site, Site):
        site = load_site(site)
    if not 1 <= used <= nights:
        raise ConfigError(f"the hidden place is used on 1..{nights} nights, not {used}")
    rng = np.random.default_rng([cfg.seed, 11])
    place = hidden_place(site, cfg.seed)
    on = sorted(int(i) for i in rng.choice(nights, used, replace=False))
    dark = [bool(i % 2) for i in range(used)]  # alternate: AIS on, dark, AIS on, ...
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    avoid: list[tuple[float, float]] = [place]
    for i in range(nights):
        hidden = i in on
        c = replace(cfg, seed=cfg.seed * 1000 + i, start=cfg.start + timedelta(days=i),
                    landing_at=place if hidden else None,
                    landing_dark=dark[on.index(i)] if hidden else False, avoid=tuple(avoid))  # fmt: skip
        name = f"night-{i + 1:02d}"
        truth = simulate(site, c, out / name)
        landings = [
            {
                "lonlat": ev["landing_lonlat"],
                "t": ev["time"],
                "scenario": ev["scenario"],
                "hidden": ev.get("place") == "hidden",
            }  # fmt: skip
            for ev in truth["events"]
            if ev["kind"] == "unusual_landing" and not ev["optional"]
        ]
        avoid += [tuple(x["lonlat"]) for x in landings if not x["hidden"]]
        runs.append({"dir": name, "start": c.start.isoformat(), "seed": c.seed,
                     "hidden": hidden, "hidden_dark": c.landing_dark, "landings": landings})  # fmt: skip
    doc = {"site": site.name, "seed": cfg.seed, "nights": runs,
           "hidden_place": {"lonlat": [round(place[0], 6), round(place[1], 6)], "nights": [i + 1 for i in on]},
           "zones": [{"name": z.name, "kind": z.kind} for z in site.zones]}  # fmt: skip
    (out / "nights.json").write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def _parse_start(text: str, site: Site) -> datetime:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(
            f"cannot read start time {text!r}: use ISO 8601, e.g. 2026-03-08T02:00:00+08:00"
        ) from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=site.timezone)


def cmd_simulate(args) -> int:
    site = load_site(args.site)
    cfg = SimConfig(
        seed=args.seed,
        start=_parse_start(args.start, site),
        duration_s=parse_duration(args.duration),
        fps=args.fps,
        noise=args.noise,
    )
    if args.nights > 1:
        doc = simulate_nights(site, cfg, args.nights, args.out, args.hidden_nights)
        hp = doc["hidden_place"]
        print(f"{args.out}: {args.nights} nights; hidden landing place {hp['lonlat']} on nights "
              f"{hp['nights']}")  # fmt: skip
        return 0
    truth = simulate(site, cfg, args.out)
    kinds: dict[str, int] = {}
    for ev in truth["events"]:
        if not ev["optional"]:
            kinds[ev["kind"]] = kinds.get(ev["kind"], 0) + 1
    print(
        f"{args.out}: {len(truth['vessels'])} vessels, "
        f"{sum(1 for v in truth['vessels'] if v['mmsi'])} with AIS; planted events: "
        + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    )
    return 0
