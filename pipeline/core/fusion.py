"""AIS ↔ camera association: which AIS vessel (MMSI) each camera track is.

Pure NumPy + SciPy: no I/O, no clock (every time is passed in, ms UTC).

Per frame of one camera (:meth:`CameraAssociation.step`):

1. AIS vessels are dead-reckoned to the frame time (SOG/COG, flat earth,
   :func:`dead_reckon`) and turned into bearing and range from the camera.
   Vessels whose last fix is older than :attr:`FusionParams.stale_after_s` are left out.
2. Candidate pairs are found with a sorted-bearing window (no N×M loop), then scored
   (:func:`candidate_pairs`); the cost of a pair is a sum of squared normalised residuals:

   - **bearing**: the angle between the AIS bearing and the detection's bearing *interval*
     (the box's angular half-width: the AIS antenna may sit anywhere along the hull), over
     ``sqrt(det_sigma² + ais_sigma²)`` where the AIS position sigma is projected as an angle
     at the vessel's range;
   - **range**: range difference over the combined range sigma (detections beyond the
     horizon, range NaN, use bearing only);
   - **motion**: the camera track's bearing rate against the AIS bearing rate;
   - **size**: the vessel length implied by the box width at the AIS range against the
     AIS length, penalised only outside a loose band (a vessel seen bow-on looks much
     shorter than its length; box height depends on freeboard and superstructure, so the
     width is the better-defined quantity).

   Pairs beyond the bearing or range gate, or whose total cost exceeds
   :attr:`FusionParams.max_cost`, get no candidate (``np.inf`` in :func:`cost_matrix`).
3. Optimal assignment (:func:`assign_pairs`): isolated one-to-one candidates are taken
   directly; the rest go to :func:`scipy.optimize.linear_sum_assignment` on the small block
   of competing vessels × detections (most vessels have no candidate at all).
4. Confirmation and hysteresis per camera track: a pair is confirmed after
   :attr:`FusionParams.confirm_hits` consecutive matches; a confirmed pair gets a cost
   bonus (:attr:`FusionParams.hysteresis_cost`), so a competitor must beat it clearly, and
   it survives up to :attr:`FusionParams.release_misses` frames without a match.
   Detections of tentative image tracks (negative ``track_id``) are matched for the frame
   only.
5. AIS vessels inside the view that no detection can explain are reported as unseen,
   unless a nearer detected box hides them (occluded).

Stationary and berthing vessels (SOG 0) are kept: they are what unusual-landing is about
(DeepSORVF drops SOG <= 0.3 kn).

>>> import numpy as np
>>> v = VesselArrays.from_lists(mmsi=[412000001], t_ms=[0], lon_deg=[110.0],
...                             lat_deg=[20.0], sog_kn=[10.0], cog_deg=[90.0])
>>> lon, lat = dead_reckon(v, 60_000)
>>> round(float((lon[0] - 110.0) * 111_195 * np.cos(np.radians(20.0))))  # ~ 308.7 m east
309
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Protocol

import numpy as np
from scipy.optimize import linear_sum_assignment

from pipeline.core.geo import EARTH_RADIUS_M

__all__ = [
    "EARTH_RADIUS_M",
    "KNOT_MPS",
    "CameraAssociation",
    "CameraGeometry",
    "DetectionArrays",
    "FrameAssociation",
    "FusionParams",
    "PairCosts",
    "VesselArrays",
    "assign_pairs",
    "associate",
    "bearing_range_from",
    "candidate_pairs",
    "cost_matrix",
    "dead_reckon",
    "view_mask",
]

KNOT_MPS = 1852.0 / 3600.0


class CameraGeometry(Protocol):
    """What association needs of a camera (``pipeline.core.camera.CameraModel`` has it).

    Pixel quantities are in the image frame the model describes (the frame the boxes come
    from): use ``CameraModel.scaled(w, h)`` first when the detector saw a resized frame.
    """

    lon_deg: float
    lat_deg: float
    height_m: float
    heading_deg: float
    tilt_deg: float
    fx: float
    fy: float
    cx: float
    cy: float
    image_width: int
    image_height: int

    @property
    def hfov_deg(self) -> float: ...


@dataclass(frozen=True)
class FusionParams:
    """Thresholds and weights of association. Costs are in squared-sigma units.

    :param bearing_gate_sigmas: a pair is gated when its bearing residual exceeds this many sigmas
    :param range_gate_sigmas: a pair is gated when its range residual exceeds this many sigmas
    :param max_cost: joint gate: a pair whose total cost exceeds this is gated (16 ≈ the
        99.9% point of a chi-square with 3 degrees of freedom)
    :param min_bearing_sigma_deg: floor of the detection bearing sigma, degrees
    :param min_range_sigma_m: floor of the detection range sigma, m
    :param min_range_sigma_frac: floor of the detection range sigma as a fraction of its range
        (monocular range is poor at grazing angles, DESIGN §3)
    :param ais_position_sigma_m: AIS position sigma at the fix (GNSS, antenna offset, latency), m
    :param ais_sigma_growth_mps: growth of the AIS position sigma per second of fix age, m/s
    :param ais_sigma_speed_frac: extra AIS sigma as a fraction of the dead-reckoned distance
    :param max_dead_reckoning_s: the fix is extrapolated by at most this many seconds
    :param stale_after_s: fixes older than this are not associated (2 × the 3 min report
        interval of a Class A vessel at anchor, ITU-R M.1371)
    :param max_range_m: vessels farther than this from the camera are ignored, m (20 km:
        twice the ~10 km shoreline ring of DESIGN §1, so that a lit ship a camera sees far
        out, whose range is kilometres off, still matches its AIS by bearing instead of
        looking dark)
    :param view_margin_deg: vessels up to this far outside the horizontal FOV are candidates
    :param motion_sigma_dps: sigma of the bearing-rate residual, degrees/s
    :param size_ratio_min: smallest plausible (box-implied length / AIS length) (bow-on view)
    :param size_ratio_max: largest plausible (box-implied length / AIS length)
    :param w_bearing: weight of the bearing term
    :param w_range: weight of the range term
    :param w_motion: weight of the motion-direction term
    :param w_size: weight of the size term (per squared log-ratio outside the plausible band)
    :param confirm_hits: consecutive matches before a pair is confirmed
    :param release_misses: frames a confirmed pair survives without a match
    :param hysteresis_cost: cost bonus of a confirmed pair: a competitor must beat it by this
    :param rate_tau_s: time constant of the camera-track bearing-rate filter, s
    :param track_forget_s: per-track state is dropped after this long unseen, s
    :param unseen_max_range_m: AIS vessels farther than this are not reported as unseen, m
    :param unseen_edge_margin_deg: vessels this close to the image edge are not reported unseen
    """

    bearing_gate_sigmas: float = 4.0
    range_gate_sigmas: float = 4.0
    max_cost: float = 16.0
    min_bearing_sigma_deg: float = 0.5
    min_range_sigma_m: float = 50.0
    min_range_sigma_frac: float = 0.25
    ais_position_sigma_m: float = 12.0
    ais_sigma_growth_mps: float = 0.2
    ais_sigma_speed_frac: float = 0.1
    max_dead_reckoning_s: float = 120.0
    stale_after_s: float = 360.0
    max_range_m: float = 20_000.0
    view_margin_deg: float = 5.0
    motion_sigma_dps: float = 0.3
    size_ratio_min: float = 0.1
    size_ratio_max: float = 1.5
    w_bearing: float = 1.0
    w_range: float = 1.0
    w_motion: float = 0.5
    w_size: float = 0.5
    confirm_hits: int = 3
    release_misses: int = 5
    hysteresis_cost: float = 4.0
    rate_tau_s: float = 2.0
    track_forget_s: float = 60.0
    unseen_max_range_m: float = 3_000.0
    unseen_edge_margin_deg: float = 1.0


def _f(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _i(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.int64)


@dataclass(frozen=True)
class VesselArrays:
    """AIS vessels as arrays, one entry per MMSI: the last fix of each.

    :param mmsi: (N,) int64
    :param t_ms: (N,) int64 time of the fix, ms UTC
    :param lon_deg: (N,) WGS84 longitude of the fix, NaN = unknown
    :param lat_deg: (N,) WGS84 latitude of the fix, NaN = unknown
    :param sog_kn: (N,) speed over ground, knots, NaN = unknown (treated as 0)
    :param cog_deg: (N,) course over ground, degrees true, NaN = unknown
    :param length_m: (N,) hull length, m, NaN = unknown
    """

    mmsi: np.ndarray
    t_ms: np.ndarray
    lon_deg: np.ndarray
    lat_deg: np.ndarray
    sog_kn: np.ndarray
    cog_deg: np.ndarray
    length_m: np.ndarray

    @classmethod
    def from_lists(
        cls,
        mmsi: Any,
        t_ms: Any,
        lon_deg: Any,
        lat_deg: Any,
        sog_kn: Any = None,
        cog_deg: Any = None,
        length_m: Any = None,
    ) -> VesselArrays:
        """Build from sequences; missing columns become NaN."""
        n = len(mmsi)
        nan = np.full(n, np.nan)
        return cls(
            mmsi=_i(mmsi).reshape(n),
            t_ms=_i(t_ms).reshape(n),
            lon_deg=_f(lon_deg).reshape(n),
            lat_deg=_f(lat_deg).reshape(n),
            sog_kn=nan.copy() if sog_kn is None else _f(sog_kn).reshape(n),
            cog_deg=nan.copy() if cog_deg is None else _f(cog_deg).reshape(n),
            length_m=nan.copy() if length_m is None else _f(length_m).reshape(n),
        )

    @classmethod
    def empty(cls) -> VesselArrays:
        return cls.from_lists([], [], [], [])

    def __len__(self) -> int:
        return int(self.mmsi.shape[0])

    def take(self, index: np.ndarray) -> VesselArrays:
        """The vessels at ``index`` (an index or boolean array), as a new object."""
        return VesselArrays(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


@dataclass(frozen=True)
class DetectionArrays:
    """Camera detections of one frame as arrays (one per camera track).

    :param track_id: (M,) int64 camera track id
    :param bearing_deg: (M,) bearing of the box's waterline centre, degrees true
    :param bearing_sigma_deg: (M,) one-sigma bearing uncertainty, degrees
    :param range_m: (M,) range along the sea surface, m; NaN beyond the horizon
    :param range_sigma_m: (M,) one-sigma range uncertainty, m (NaN = unknown)
    :param lon_deg: (M,) geo-referenced longitude, NaN beyond the horizon
    :param lat_deg: (M,) geo-referenced latitude, NaN beyond the horizon
    :param box_px: optional (M, 4) ``[x, y, w, h]`` in the pixel frame of the camera model;
        gives the box's angular half-width and the size term
    :param half_width_deg: optional (M,) angular half-width of the box, degrees; computed
        from ``box_px`` when absent
    :param bearing_rate_dps: optional (M,) bearing rate of the camera track, degrees/s;
        :class:`CameraAssociation` fills it from its own history where NaN
    """

    track_id: np.ndarray
    bearing_deg: np.ndarray
    bearing_sigma_deg: np.ndarray
    range_m: np.ndarray
    range_sigma_m: np.ndarray
    lon_deg: np.ndarray
    lat_deg: np.ndarray
    box_px: np.ndarray | None = None
    half_width_deg: np.ndarray | None = None
    bearing_rate_dps: np.ndarray | None = None

    @classmethod
    def from_lists(
        cls,
        track_id: Any,
        bearing_deg: Any,
        bearing_sigma_deg: Any,
        range_m: Any = None,
        range_sigma_m: Any = None,
        lon_deg: Any = None,
        lat_deg: Any = None,
        box_px: Any = None,
        half_width_deg: Any = None,
        bearing_rate_dps: Any = None,
    ) -> DetectionArrays:
        """Build from sequences (``None`` items become NaN); missing columns become NaN."""
        m = len(track_id)

        def col(a: Any) -> np.ndarray:
            if a is None:
                return np.full(m, np.nan)
            return np.array([np.nan if x is None else x for x in a], dtype=np.float64).reshape(m)

        return cls(
            track_id=_i(track_id).reshape(m),
            bearing_deg=col(bearing_deg),
            bearing_sigma_deg=col(bearing_sigma_deg),
            range_m=col(range_m),
            range_sigma_m=col(range_sigma_m),
            lon_deg=col(lon_deg),
            lat_deg=col(lat_deg),
            box_px=None if box_px is None else _f(box_px).reshape(m, 4),
            half_width_deg=None if half_width_deg is None else col(half_width_deg),
            bearing_rate_dps=None if bearing_rate_dps is None else col(bearing_rate_dps),
        )

    @classmethod
    def from_camera_frame(cls, frame: Any) -> DetectionArrays:
        """From a ``schemas.records.CameraFrame`` (duck-typed: no msgspec import here)."""
        d = frame.detections
        return cls.from_lists(
            track_id=[x.track_id for x in d],
            bearing_deg=[x.bearing_deg for x in d],
            bearing_sigma_deg=[x.bearing_sigma_deg for x in d],
            range_m=[None if x.beyond_horizon else x.range_m for x in d],
            range_sigma_m=[x.range_sigma_m for x in d],
            lon_deg=[x.lon for x in d],
            lat_deg=[x.lat for x in d],
            box_px=[list(x.box_px) for x in d] if d else np.zeros((0, 4)),
        )

    @classmethod
    def empty(cls) -> DetectionArrays:
        return cls.from_lists([], [], [])

    def __len__(self) -> int:
        return int(self.track_id.shape[0])

    def take(self, index: np.ndarray) -> DetectionArrays:
        """The detections at ``index`` (an index or boolean array), as a new object."""
        out: dict[str, Any] = {}
        for f in fields(self):
            a = getattr(self, f.name)
            out[f.name] = None if a is None else a[index]
        return DetectionArrays(**out)


@dataclass(frozen=True)
class FrameAssociation:
    """Result of one association step, aligned with the detections passed in.

    :param track_id: (M,) camera track ids, as given
    :param mmsi: (M,) int64 associated MMSI, -1 = no AIS match (a dark target when confirmed
        tracks stay at -1)
    :param confirmed: (M,) bool: the pair has been matched ``confirm_hits`` times in a row
        (or is a confirmed pair inside its hysteresis grace)
    :param unseen_mmsi: (K,) int64 AIS vessels inside the view (visible, within
        ``unseen_max_range_m``) that no detection could explain (no candidate pair) and that
        no nearer detected box hides
    :param cost: (M,) cost of the pair this frame, NaN when unmatched
    :param occluded_mmsi: AIS vessels in view with no candidate pair that lie behind a
        nearer detected box (inside its angular extent): not expected to be seen
    """

    track_id: np.ndarray
    mmsi: np.ndarray
    confirmed: np.ndarray
    unseen_mmsi: np.ndarray
    cost: np.ndarray = field(default_factory=lambda: np.zeros(0))
    occluded_mmsi: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class PairCosts:
    """Sparse candidate pairs: vessel index ``row``, detection index ``col``, finite ``cost``."""

    row: np.ndarray
    col: np.ndarray
    cost: np.ndarray
    n_vessels: int
    n_detections: int

    def dense(self) -> np.ndarray:
        """(N, M) cost matrix, ``np.inf`` where gated."""
        out = np.full((self.n_vessels, self.n_detections), np.inf)
        out[self.row, self.col] = self.cost
        return out


# --------------------------------------------------------------------------- geometry


def _wrap180(a: np.ndarray) -> np.ndarray:
    return (a + 180.0) % 360.0 - 180.0


def dead_reckon(
    v: VesselArrays, t_ms: int, max_dt_s: float = np.inf
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the vessels at ``t_ms`` by SOG/COG extrapolation on a flat earth.

    Unknown SOG or COG means no motion. Extrapolation (forwards or backwards) is clipped
    to ``max_dt_s`` seconds.

    :param v: vessels
    :param t_ms: target time, ms UTC
    :param max_dt_s: largest extrapolation, s
    :returns: ``(lon_deg, lat_deg)`` arrays of shape (N,)
    """
    dt_s = np.clip((t_ms - v.t_ms) / 1000.0, -max_dt_s, max_dt_s)
    speed_mps = np.where(np.isfinite(v.sog_kn) & np.isfinite(v.cog_deg), v.sog_kn, 0.0) * KNOT_MPS
    cog = np.radians(np.where(np.isfinite(v.cog_deg), v.cog_deg, 0.0))
    d_m = speed_mps * dt_s
    d_north = d_m * np.cos(cog)
    d_east = d_m * np.sin(cog)
    lat = v.lat_deg + np.degrees(d_north / EARTH_RADIUS_M)
    lon = v.lon_deg + np.degrees(d_east / (EARTH_RADIUS_M * np.cos(np.radians(v.lat_deg))))
    return lon, lat


def bearing_range_from(
    lon0_deg: float, lat0_deg: float, lon_deg: np.ndarray, lat_deg: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bearing and range of points from an origin on a local flat earth.

    :returns: ``(bearing_deg in [0, 360), range_m, east_m, north_m)``
    """
    east = np.radians(lon_deg - lon0_deg) * EARTH_RADIUS_M * np.cos(np.radians(lat0_deg))
    north = np.radians(lat_deg - lat0_deg) * EARTH_RADIUS_M
    bearing = np.degrees(np.arctan2(east, north)) % 360.0
    return bearing, np.hypot(east, north), east, north


def _min_view_range_m(model: CameraGeometry) -> float:
    """Range at which the bottom image row meets the sea (0 if unknown).

    ``tilt_deg`` is the depression of the optical axis (positive = looking down).
    """
    try:
        below = np.degrees(np.arctan2(model.image_height - model.cy, model.fy))
        depression = float(model.tilt_deg) + float(below)
        if depression <= 0.0:
            return 0.0
        return float(model.height_m / np.tan(np.radians(min(depression, 89.9))))
    except (AttributeError, TypeError):
        return 0.0


def _in_view(
    vw: _VesselView,
    v_lon: np.ndarray,
    v_lat: np.ndarray,
    model: CameraGeometry,
    max_range_m: float,
    edge_margin_deg: float,
) -> np.ndarray:
    """Vessels whose waterline point is inside the image, away from its edges."""
    ok = vw.usable & (vw.range_m <= max_range_m)
    project = getattr(model, "geo_to_pixel", None)
    if project is None:
        half = model.hfov_deg / 2.0 - edge_margin_deg
        return ok & (np.abs(vw.bearing_rel_deg) <= half) & (vw.range_m >= _min_view_range_m(model))
    u, _v, visible = project(v_lon, v_lat)
    margin_px = float(model.fx) * np.tan(np.radians(edge_margin_deg))
    with np.errstate(invalid="ignore"):
        inner = (u >= margin_px) & (u <= model.image_width - margin_px)
    return ok & np.asarray(visible, dtype=bool) & inner


@dataclass(frozen=True)
class _VesselView:
    """Vessels at the frame time, seen from the camera (internal)."""

    bearing_rel_deg: np.ndarray  # relative to the camera heading, (-180, 180]
    range_m: np.ndarray
    pos_sigma_m: np.ndarray
    rate_dps: np.ndarray  # AIS bearing rate seen from the camera, degrees/s
    length_m: np.ndarray
    usable: np.ndarray  # bool: valid, fresh, within max range
    lon_deg: np.ndarray  # dead-reckoned position
    lat_deg: np.ndarray


def _vessel_view(
    v: VesselArrays, t_ms: int, model: CameraGeometry, params: FusionParams
) -> _VesselView:
    lon, lat = dead_reckon(v, t_ms, params.max_dead_reckoning_s)
    bearing, rng, east, north = bearing_range_from(model.lon_deg, model.lat_deg, lon, lat)
    age_s = np.abs(t_ms - v.t_ms) / 1000.0
    moving = np.isfinite(v.sog_kn) & np.isfinite(v.cog_deg)
    speed_mps = np.where(moving, v.sog_kn, 0.0) * KNOT_MPS
    dr_s = np.minimum(age_s, params.max_dead_reckoning_s)
    pos_sigma = (
        params.ais_position_sigma_m
        + params.ais_sigma_growth_mps * dr_s
        + params.ais_sigma_speed_frac * speed_mps * dr_s
    )
    cog = np.radians(np.where(np.isfinite(v.cog_deg), v.cog_deg, 0.0))
    ve, vn = speed_mps * np.sin(cog), speed_mps * np.cos(cog)
    r2 = np.maximum(rng * rng, 1.0)
    rate = np.degrees((north * ve - east * vn) / r2)
    usable = (
        np.isfinite(lon)
        & np.isfinite(lat)
        & (age_s <= params.stale_after_s)
        & (rng <= params.max_range_m)
    )
    return _VesselView(
        bearing_rel_deg=_wrap180(bearing - model.heading_deg),
        range_m=rng,
        pos_sigma_m=pos_sigma,
        rate_dps=rate,
        length_m=v.length_m,
        usable=usable,
        lon_deg=lon,
        lat_deg=lat,
    )


def view_mask(
    v: VesselArrays,
    t_ms: int,
    model: CameraGeometry,
    params: FusionParams = FusionParams(),
    max_range_m: float | None = None,
    edge_margin_deg: float = 0.0,
) -> np.ndarray:
    """Which vessels are inside the camera's view at ``t_ms`` (bool, (N,)).

    Inside = usable fix within ``max_range_m`` (default
    :attr:`FusionParams.unseen_max_range_m`) whose dead-reckoned position projects into
    the image (``model.geo_to_pixel``) at least ``edge_margin_deg`` from its left and right
    edges; models without ``geo_to_pixel`` use the horizontal FOV and the bottom row's range.
    """
    vw = _vessel_view(v, t_ms, model, params)
    rmax = params.unseen_max_range_m if max_range_m is None else max_range_m
    return _in_view(vw, vw.lon_deg, vw.lat_deg, model, rmax, edge_margin_deg)


def _det_half_width_deg(dets: DetectionArrays, model: CameraGeometry) -> np.ndarray:
    if dets.half_width_deg is not None:
        return np.where(np.isfinite(dets.half_width_deg), dets.half_width_deg, 0.0)
    if dets.box_px is not None and len(dets):
        return np.degrees(np.arctan2(dets.box_px[:, 2] / 2.0, model.fx))
    return np.zeros(len(dets))


# --------------------------------------------------------------------------- costs


def _pair_costs(
    vw: _VesselView,
    dets: DetectionArrays,
    det_rel: np.ndarray,
    det_hw: np.ndarray,
    det_rate: np.ndarray,
    model: CameraGeometry,
    params: FusionParams,
    r: np.ndarray,
    c: np.ndarray,
    wrap: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score the pairs (vessel ``r``, detection ``c``), gating as early as possible.

    ``wrap=False`` when every pair's relative bearings are known to differ by < 180°.

    :returns: ``(r, c, cost)`` of the pairs that pass both gates
    """
    # per-vessel and per-detection terms first (O(N + M)), then per pair
    ais_bsig = np.degrees(np.arctan2(vw.pos_sigma_m, vw.range_m))
    ais_bvar = ais_bsig * ais_bsig
    d_bsig = np.fmax(dets.bearing_sigma_deg, params.min_bearing_sigma_deg)
    d_bvar = d_bsig * d_bsig

    # 1. bearing gate (NaN bearings fail it too)
    db = vw.bearing_rel_deg[r] - det_rel[c]
    db = np.abs(_wrap180(db) if wrap else db)
    z_b = np.maximum(db - det_hw[c], 0.0) / np.sqrt(d_bvar[c] + ais_bvar[r])
    keep = z_b <= params.bearing_gate_sigmas
    r, c, z_b = r[keep], c[keep], z_b[keep]
    cost = params.w_bearing * z_b * z_b

    # 2. range gate (detections beyond the horizon have no range: bearing only)
    d_rng = dets.range_m
    d_rsig = np.fmax(
        np.fmax(dets.range_sigma_m, params.min_range_sigma_m),  # fmax skips NaN
        params.min_range_sigma_frac * d_rng,
    )
    has_r = np.isfinite(d_rng)
    if np.any(has_r):
        ps = vw.pos_sigma_m[r]
        rs = d_rsig[c]
        z_r = np.where(has_r[c], (vw.range_m[r] - d_rng[c]) / np.sqrt(rs * rs + ps * ps), 0.0)
        keep = np.abs(z_r) <= params.range_gate_sigmas
        r, c, z_r, cost = r[keep], c[keep], z_r[keep], cost[keep]
        cost = cost + params.w_range * z_r * z_r

    # 3. motion direction: camera-track bearing rate against the AIS bearing rate
    has_rate = np.isfinite(det_rate)
    if np.any(has_rate):
        z_m = np.where(has_rate[c], vw.rate_dps[r] - det_rate[c], 0.0)
        z_m = z_m / params.motion_sigma_dps
        cost = cost + params.w_motion * z_m * z_m

    # 4. size: vessel length implied by the box width at the AIS range (loose band)
    if dets.box_px is not None:
        length = vw.length_m[r]
        ok = np.isfinite(length) & (length > 0)
        if np.any(ok):
            implied = dets.box_px[c, 2] * vw.range_m[r] / model.fx
            ratio = np.where(ok, implied / np.where(ok, length, 1.0), 1.0)
            ratio = np.maximum(ratio, 1e-6)
            over = np.maximum(np.log(ratio / params.size_ratio_max), 0.0)
            under = np.maximum(np.log(params.size_ratio_min / ratio), 0.0)
            cost = cost + params.w_size * (over * over + under * under)
    keep = cost <= params.max_cost
    return r[keep], c[keep], cost[keep]


def _detection_columns(
    dets: DetectionArrays, model: CameraGeometry
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    det_rel = _wrap180(dets.bearing_deg - model.heading_deg)
    det_hw = _det_half_width_deg(dets, model)
    if dets.bearing_rate_dps is None:
        det_rate = np.full(len(dets), np.nan)
    else:
        det_rate = dets.bearing_rate_dps
    return det_rel, det_hw, det_rate


def _candidates(
    vw: _VesselView,
    dets: DetectionArrays,
    model: CameraGeometry,
    params: FusionParams,
) -> PairCosts:
    n, m = vw.range_m.shape[0], len(dets)
    det_rel, det_hw, det_rate = _detection_columns(dets, model)
    vidx = np.flatnonzero(vw.usable)
    if vidx.size == 0 or m == 0:
        e = np.zeros(0, dtype=np.int64)
        return PairCosts(e, e.copy(), np.zeros(0), n, m)
    d_bsig = np.fmax(
        np.where(np.isnan(dets.bearing_sigma_deg), np.inf, dets.bearing_sigma_deg),
        params.min_bearing_sigma_deg,
    )
    # The AIS angular sigma differs a lot between near and far vessels: split the vessels
    # into groups of it (factors of 4), so each group's window (a bound of every pair's
    # gate) stays tight. One sort by (group, bearing) and one vectorised search for all
    # (group, detection) windows.
    ais_bsig = np.degrees(np.arctan2(vw.pos_sigma_m[vidx], np.maximum(vw.range_m[vidx], 1.0)))
    group = np.floor(np.log2(np.maximum(ais_bsig, 1e-9) / 0.25) / 2.0)
    group = np.clip(group, -1, 5).astype(np.int64) + 1  # 0..6
    n_groups = 7
    amax = np.full(n_groups, -np.inf)
    np.maximum.at(amax, group, ais_bsig)
    present = np.flatnonzero(np.isfinite(amax))
    win = (
        params.bearing_gate_sigmas * np.sqrt(d_bsig[None, :] ** 2 + amax[present, None] ** 2)
        + det_hw[None, :]
    )  # (G, M)
    win = np.where(np.isfinite(det_rel)[None, :] & np.isfinite(win), win, -1.0)
    wrap = bool(np.any(np.abs(det_rel)[None, :] + win >= 180.0))
    if wrap:
        # A window would wrap around ±180°: score every pair (rare: panoramic cameras).
        r = np.repeat(vidx, m)
        c = np.tile(np.arange(m), vidx.size)
    else:
        span = 720.0  # keys: group * span + bearing (relative bearings are within ±180°)
        key = group * span + vw.bearing_rel_deg[vidx]
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        base = (present * span)[:, None] + det_rel[None, :]
        lo = np.searchsorted(sorted_key, (base - win).ravel(), side="left")
        hi = np.searchsorted(sorted_key, (base + win).ravel(), side="right")
        counts = np.maximum(hi - lo, 0)
        total = int(counts.sum())
        starts = np.cumsum(counts) - counts
        offs = np.arange(total) - np.repeat(starts, counts)
        r = vidx[order[np.repeat(lo, counts) + offs]]
        c = np.repeat(np.tile(np.arange(m), present.size), counts)
    # inside a window that does not cross ±180°, relative bearings differ by < 180°
    r, c, cost = _pair_costs(vw, dets, det_rel, det_hw, det_rate, model, params, r, c, wrap)
    return PairCosts(r, c, cost, n, m)


def candidate_pairs(
    v: VesselArrays,
    dets: DetectionArrays,
    t_ms: int,
    model: CameraGeometry,
    params: FusionParams = FusionParams(),
) -> PairCosts:
    """Gated candidate pairs and their costs, found without scoring every pair.

    Vessels are sorted by bearing; each detection looks only at the vessels inside its
    bearing window (an upper bound of its gate), so the work is O((N + M) log N + pairs).

    :param v: AIS vessels (last fix each)
    :param dets: detections of one frame
    :param t_ms: frame time, ms UTC
    :param model: camera geometry in the pixel frame of ``dets.box_px``
    :param params: thresholds and weights
    """
    return _candidates(_vessel_view(v, t_ms, model, params), dets, model, params)


def cost_matrix(
    v: VesselArrays,
    dets: DetectionArrays,
    t_ms: int,
    model: CameraGeometry,
    params: FusionParams = FusionParams(),
) -> np.ndarray:
    """The (N, M) association cost of every vessel/detection pair, ``np.inf`` where gated.

    Same numbers as :func:`candidate_pairs`, as a dense matrix.
    """
    return candidate_pairs(v, dets, t_ms, model, params).dense()


# --------------------------------------------------------------------------- assignment


def assign_pairs(pairs: PairCosts) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost assignment over sparse candidate pairs.

    Finds the largest set of one-to-one pairs among the candidates and, among those, the
    cheapest: isolated one-to-one candidates are taken directly, the rest go to
    ``linear_sum_assignment`` on the block of competing vessels × detections, with a large
    finite cost for non-candidates.

    :returns: ``(row, col)`` index arrays of the assigned pairs, sorted by column
    """
    if pairs.cost.size == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e.copy()
    n, m = pairs.n_vessels, pairs.n_detections
    r_deg = np.bincount(pairs.row, minlength=n)
    c_deg = np.bincount(pairs.col, minlength=m)
    single = (r_deg[pairs.row] == 1) & (c_deg[pairs.col] == 1)
    out_r = [pairs.row[single]]
    out_c = [pairs.col[single]]
    rest = ~single
    if np.any(rest):
        # One dense block over the vessels and detections that still compete; gated pairs
        # get a large finite cost (``linear_sum_assignment`` is slow with ``inf``).
        rr, cc, ww = pairs.row[rest], pairs.col[rest], pairs.cost[rest]
        r_used = np.zeros(n, dtype=bool)
        r_used[rr] = True
        c_used = np.zeros(m, dtype=bool)
        c_used[cc] = True
        ur, uc = np.flatnonzero(r_used), np.flatnonzero(c_used)
        r_pos = np.cumsum(r_used) - 1
        c_pos = np.cumsum(c_used) - 1
        big = 1.0 + 2.0 * float(np.max(ww)) * (min(ur.size, uc.size) + 1)
        block = np.full((ur.size, uc.size), big)
        block[r_pos[rr], c_pos[cc]] = ww
        a, b = linear_sum_assignment(block)
        ok = block[a, b] < big
        out_r.append(ur[a[ok]])
        out_c.append(uc[b[ok]])
    r = np.concatenate(out_r)
    c = np.concatenate(out_c)
    order = np.argsort(c, kind="stable")
    return r[order], c[order]


def associate(
    v: VesselArrays,
    dets: DetectionArrays,
    t_ms: int,
    model: CameraGeometry,
    params: FusionParams = FusionParams(),
) -> np.ndarray:
    """One frame, no memory: the MMSI of each detection (-1 = none), shape (M,).

    Cost matrix, gating and optimal assignment; :class:`CameraAssociation` adds
    confirmation and hysteresis on top.
    """
    pairs = candidate_pairs(v, dets, t_ms, model, params)
    r, c = assign_pairs(pairs)
    out = np.full(len(dets), -1, dtype=np.int64)
    out[c] = v.mmsi[r]
    return out


# --------------------------------------------------------------------------- per-camera state

_STATE_KEYS = (
    "track_id",
    "last_t_ms",
    "last_bearing_deg",
    "rate_dps",
    "pending_mmsi",
    "pending_hits",
    "mmsi",
    "misses",
)


class CameraAssociation:
    """Association state of one camera: per camera track, its identity and history.

    The state is plain data (:meth:`to_state` / :meth:`from_state`), so a stream processor
    can keep it in a table and an offline replay in a dict.

    >>> assoc = CameraAssociation()
    >>> assoc.to_state()["track_id"]
    []
    """

    def __init__(self) -> None:
        self._tracks: dict[int, list[Any]] = {}

    # state: track_id -> [last_t_ms, last_bearing_deg, rate_dps, pending_mmsi,
    #                     pending_hits, mmsi, misses]

    def to_state(self) -> dict[str, list[Any]]:
        """Plain JSON-able lists (NaN as ``None``), one entry per camera track."""
        out: dict[str, list[Any]] = {k: [] for k in _STATE_KEYS}
        for tid in sorted(self._tracks):
            rec = self._tracks[tid]
            out["track_id"].append(int(tid))
            for k, x in zip(_STATE_KEYS[1:], rec, strict=True):
                if isinstance(x, float) and not np.isfinite(x):
                    x = None
                out[k].append(x)
        return out

    @classmethod
    def from_state(cls, d: dict[str, list[Any]]) -> CameraAssociation:
        """Rebuild from :meth:`to_state` output."""
        self = cls()
        for i, tid in enumerate(d.get("track_id", [])):
            rec = [d[k][i] for k in _STATE_KEYS[1:]]
            self._tracks[int(tid)] = [
                int(rec[0]),
                float("nan") if rec[1] is None else float(rec[1]),
                float("nan") if rec[2] is None else float(rec[2]),
                int(rec[3]),
                int(rec[4]),
                int(rec[5]),
                int(rec[6]),
            ]
        return self

    def _bearing_rates(self, t_ms: int, dets: DetectionArrays, params: FusionParams) -> np.ndarray:
        """Bearing rate of each camera track, degrees/s: the instantaneous rate since the
        track's previous frame, smoothed with time constant ``rate_tau_s``."""
        nan_rec = (np.nan, np.nan, np.nan)
        prev = np.array(
            [
                (rec[0], rec[1], rec[2]) if (rec := self._tracks.get(tid)) is not None else nan_rec
                for tid in dets.track_id.tolist()
            ],
            dtype=np.float64,
        ).reshape(-1, 3)
        last_t, last_b, old = prev[:, 0], prev[:, 1], prev[:, 2]
        dt_s = (t_ms - last_t) / 1000.0
        fresh = (dt_s > 0) & np.isfinite(last_b)
        with np.errstate(invalid="ignore", divide="ignore"):
            inst = _wrap180(dets.bearing_deg - last_b) / np.where(fresh, dt_s, 1.0)
            alpha = np.minimum(1.0, dt_s / params.rate_tau_s)
        smoothed = np.where(np.isfinite(old), old + alpha * (inst - old), inst)
        return np.where(fresh, smoothed, old)

    def _frame_rates(self, t_ms: int, dets: DetectionArrays, params: FusionParams) -> np.ndarray:
        """Bearing rate of each detection, degrees/s: the detection's own where given,
        else the camera track's smoothed rate (:meth:`_bearing_rates`)."""
        rates = self._bearing_rates(t_ms, dets, params)
        if dets.bearing_rate_dps is not None:
            given = np.isfinite(dets.bearing_rate_dps)
            rates = np.where(given, dets.bearing_rate_dps, rates)
        return rates

    def _assign(
        self,
        dets: DetectionArrays,
        vessels: VesselArrays,
        pairs: PairCosts,
        params: FusionParams,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Solve the frame's assignment, a confirmed pair helped by the hysteresis bonus.

        :returns: ``(r, c)`` the assigned vessel and detection indices, the raw MMSI of
            each detection (-1 where none) and its pair cost (NaN where none)
        """
        m = len(dets)
        # Hysteresis: a confirmed pair gets a bonus; costs stay positive for the solver.
        if pairs.cost.size:
            confirmed_mmsi = np.array(
                [self._tracks.get(t, [0, 0, 0, -1, 0, -1, 0])[5] for t in dets.track_id.tolist()],
                dtype=np.int64,
            )
            is_est = (confirmed_mmsi[pairs.col] >= 0) & (
                vessels.mmsi[pairs.row] == confirmed_mmsi[pairs.col]
            )
            adj = (
                pairs.cost + params.hysteresis_cost - np.where(is_est, params.hysteresis_cost, 0.0)
            )
            solve = PairCosts(pairs.row, pairs.col, adj, pairs.n_vessels, pairs.n_detections)
        else:
            solve = pairs
        r, c = assign_pairs(solve)
        raw = np.full(m, -1, dtype=np.int64)
        raw[c] = vessels.mmsi[r]
        cost = np.full(m, np.nan)
        if r.size:
            cost[c] = pairs.cost[_pair_index(pairs, r, c)]
        return r, c, raw, cost

    def _update_identities(
        self,
        t_ms: int,
        dets: DetectionArrays,
        raw: np.ndarray,
        rates: np.ndarray,
        params: FusionParams,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Update each camera track's pending and confirmed identity from the frame's raw
        assignment ``raw`` (MMSI per detection, -1 where none).

        :returns: the MMSI of each detection after the confirmation rules, and whether it
            is confirmed
        """
        out_mmsi = raw.copy()
        confirmed = np.zeros(len(dets), dtype=bool)
        claims: list[tuple[int, int, int, int]] = []  # (mmsi, misses, track_id, j)
        for j, tid in enumerate(dets.track_id.tolist()):
            if tid < 0:
                continue  # a tentative image track: matched for this frame only, no state
            rec = self._tracks.get(tid)
            if rec is None:
                rec = [t_ms, float("nan"), float("nan"), -1, 0, -1, 0]
                self._tracks[tid] = rec
            got = int(raw[j])
            # consecutive-match counter
            if got >= 0 and got == rec[3]:
                rec[4] += 1
            elif got >= 0:
                rec[3], rec[4] = got, 1
            else:
                rec[3], rec[4] = -1, 0
            # confirmed identity with grace
            if rec[5] >= 0:
                if got == rec[5]:
                    rec[6] = 0
                else:
                    rec[6] += 1
                    if rec[6] > params.release_misses:
                        rec[5], rec[6] = -1, 0
            if rec[5] < 0 and rec[3] >= 0 and rec[4] >= params.confirm_hits:
                rec[5], rec[6] = rec[3], 0
            if rec[5] >= 0:
                if got == rec[5]:
                    confirmed[j] = True
                else:
                    claims.append((rec[5], rec[6], tid, j))
            rec[0] = t_ms
            rec[1] = float(dets.bearing_deg[j])
            rec[2] = float(rates[j])
        # Inside the grace period a track keeps its established identity rather than
        # flicker, if the solver gave that vessel to nobody this frame; between two tracks
        # claiming one vessel, the one with fewer misses (then the lower id) keeps it.
        taken = set(raw[raw >= 0].tolist())
        for mmsi, _misses, _tid, j in sorted(claims):
            if mmsi not in taken:
                taken.add(mmsi)
                out_mmsi[j] = mmsi
                confirmed[j] = True
        return out_mmsi, confirmed

    def _forget(self, t_ms: int, params: FusionParams) -> None:
        """Forget the camera tracks unseen for longer than ``track_forget_s``."""
        forget_ms = params.track_forget_s * 1000.0
        for tid in [t for t, rec in self._tracks.items() if t_ms - rec[0] > forget_ms]:
            del self._tracks[tid]

    def step(
        self,
        t_ms: int,
        dets: DetectionArrays,
        vessels: VesselArrays,
        model: CameraGeometry,
        params: FusionParams = FusionParams(),
    ) -> FrameAssociation:
        """Associate one frame and update the state.

        :param t_ms: frame time, ms UTC (frames of one camera in time order)
        :param dets: the frame's detections, one per camera track; a negative ``track_id``
            (a tentative image track) is matched for this frame only, never confirmed, and
            leaves no state
        :param vessels: AIS vessels, last fix each (any order)
        :param model: camera geometry in the pixel frame of the boxes
        :param params: thresholds and weights
        :returns: MMSI and confirmation per detection, and the unseen AIS vessels in view
        """
        t_ms = int(t_ms)
        rates = self._frame_rates(t_ms, dets, params)
        dets_r = DetectionArrays(
            **{f.name: getattr(dets, f.name) for f in fields(dets) if f.name != "bearing_rate_dps"},
            bearing_rate_dps=rates,
        )
        vw = _vessel_view(vessels, t_ms, model, params)
        pairs = _candidates(vw, dets_r, model, params)
        r, c, raw, cost = self._assign(dets, vessels, pairs, params)
        out_mmsi, confirmed = self._update_identities(t_ms, dets, raw, rates, params)
        self._forget(t_ms, params)
        missing, occluded = _unseen(vw, vessels, dets, model, params, pairs, out_mmsi, (r, c))
        return FrameAssociation(
            track_id=dets.track_id.copy(),
            mmsi=out_mmsi,
            confirmed=confirmed,
            unseen_mmsi=np.unique(vessels.mmsi[missing[~occluded]]).astype(np.int64),
            cost=cost,
            occluded_mmsi=np.unique(vessels.mmsi[missing[occluded]]).astype(np.int64),
        )


def _unseen(
    vw: _VesselView,
    vessels: VesselArrays,
    dets: DetectionArrays,
    model: CameraGeometry,
    params: FusionParams,
    pairs: PairCosts,
    out_mmsi: np.ndarray,
    assigned: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """The AIS vessels in view that no detection explains, and which of them are occluded.

    A vessel behind a nearer detected box (inside its angular extent, farther away) cannot
    be seen: occluded, not unseen.

    :param assigned: ``(r, c)`` the assigned vessel and detection indices
    :returns: indices into ``vessels`` of the unexplained vessels in view, and a mask of
        those occluded
    """
    r, c = assigned
    in_view = _in_view(
        vw,
        vw.lon_deg,
        vw.lat_deg,
        model,
        params.unseen_max_range_m,
        params.unseen_edge_margin_deg,
    )
    explained = np.zeros(len(vessels), dtype=bool)
    explained[pairs.row] = True
    explained |= np.isin(vessels.mmsi, out_mmsi[out_mmsi >= 0])
    missing = np.flatnonzero(in_view & ~explained)
    occluded = np.zeros(missing.size, dtype=bool)
    if missing.size and len(dets):
        det_rel, det_hw, _ = _detection_columns(dets, model)
        det_rng = np.where(np.isfinite(dets.range_m), dets.range_m, np.inf)
        det_rng[c] = np.minimum(det_rng[c], vw.range_m[r])  # the matched AIS range
        db = np.abs(_wrap180(vw.bearing_rel_deg[missing, None] - det_rel[None, :]))
        behind = (db <= det_hw[None, :]) & (vw.range_m[missing, None] > det_rng[None, :])
        occluded = behind.any(axis=1)
    return missing, occluded


def _pair_index(pairs: PairCosts, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Positions in ``pairs`` of the assigned pairs ``(r, c)``."""
    key_all = pairs.row * max(pairs.n_detections, 1) + pairs.col
    key = r * max(pairs.n_detections, 1) + c
    order = np.argsort(key_all, kind="stable")
    pos = np.searchsorted(key_all[order], key)
    return order[pos]
