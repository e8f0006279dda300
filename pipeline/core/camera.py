"""Pinhole camera geo-referencing over the sea surface (pure, vectorised).

Frames
------
- **ENU**: a local east-north-up frame whose origin is the sea surface straight
  below the camera; the camera sits at ``(0, 0, height_m)``. Horizontal positions
  map to WGS84 lon/lat with the local radii of curvature of the ellipsoid
  (:func:`enu_from_geo` / :func:`geo_from_enu`; second-order error, under 5 m at 10 km).
- **Camera**: OpenCV convention, ``x`` right, ``y`` down, ``z`` along the optical axis.
- **Pixels**: continuous coordinates, ``u`` to the right and ``v`` down, ``(0, 0)``
  at the top-left corner of the top-left pixel.

Pose: the optical axis points to ``heading_deg`` (degrees true) and is depressed
``tilt_deg`` below the horizontal (**positive = looking down**). FVessel's
``camera_para.txt`` stores the opposite sign (``-4`` means 4 degrees down: DeepSORVF
rotates the world by ``-tilt`` before projecting), so :meth:`CameraModel.from_fvessel_params`
negates it. ``roll_deg`` turns the image axes clockwise about the optical axis as
seen from behind the camera.

The sea surface is the tangent plane at the camera foot (as in DeepSORVF: flat
earth, pinhole, no distortion), or with ``earth_curvature=True`` a sphere of the
local Gaussian radius enlarged for terrestrial refraction (``R / (1 - k)``), which
puts a finite horizon ``sqrt(2 h R')`` into the model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

__all__ = [
    "CameraModel",
    "GeoRef",
    "PoseCalibrator",
    "SelfCalConfig",
    "enu_from_geo",
    "geo_from_enu",
    "vessels_near",
    "refine_pose",
]

_WGS84_A_M = 6_378_137.0
_WGS84_E2 = 6.694379990141317e-3


def _radii_m(lat_deg: float) -> tuple[float, float]:
    """Meridional (M) and prime-vertical (N) radii of curvature of WGS84 at a latitude."""
    s2 = math.sin(math.radians(lat_deg)) ** 2
    w = math.sqrt(1.0 - _WGS84_E2 * s2)
    return _WGS84_A_M * (1.0 - _WGS84_E2) / w**3, _WGS84_A_M / w


def enu_from_geo(
    lon0_deg: float, lat0_deg: float, lon_deg: np.ndarray, lat_deg: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Local east/north metres of points around an origin.

    :param lon0_deg: origin longitude, degrees WGS84
    :param lat0_deg: origin latitude, degrees WGS84
    :param lon_deg: point longitudes, degrees
    :param lat_deg: point latitudes, degrees
    :return: ``(east_m, north_m)``

    >>> e, n = enu_from_geo(114.0, 30.0, np.array([114.0]), np.array([30.01]))
    >>> round(float(n[0]))
    1109
    """
    m_r, n_r = _radii_m(lat0_deg)
    lat = np.asarray(lat_deg, dtype=float)
    lon = np.asarray(lon_deg, dtype=float)
    north = np.radians(lat - lat0_deg) * m_r
    dlon = (lon - lon0_deg + 180.0) % 360.0 - 180.0
    east = np.radians(dlon) * n_r * np.cos(np.radians(0.5 * (lat + lat0_deg)))
    return east, north


def geo_from_enu(
    lon0_deg: float, lat0_deg: float, east_m: np.ndarray, north_m: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`enu_from_geo`: ``(lon_deg, lat_deg)`` of local east/north metres."""
    m_r, n_r = _radii_m(lat0_deg)
    lat = lat0_deg + np.degrees(np.asarray(north_m, dtype=float) / m_r)
    lon = lon0_deg + np.degrees(
        np.asarray(east_m, dtype=float) / (n_r * np.cos(np.radians(0.5 * (lat + lat0_deg))))
    )
    return lon, lat


def vessels_near(
    t_ms: int,
    fix_t_ms: np.ndarray,
    lon_deg: np.ndarray,
    lat_deg: np.ndarray,
    vel_east_mps: np.ndarray,
    vel_north_mps: np.ndarray,
    origin_lon_deg: float,
    origin_lat_deg: float,
    *,
    max_range_m: float,
    max_age_ms: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AIS vessels around a point at an event time: each last fix dead-reckoned with its
    velocity to ``t_ms``, kept when the fix is at most ``max_age_ms`` older than ``t_ms``
    (and not newer than it by more than the same) and it lies within ``max_range_m``.

    :param t_ms: the event time wanted, ms UTC
    :param fix_t_ms: time of each vessel's last fix, ms UTC
    :param lon_deg: longitude of that fix, degrees WGS84
    :param lat_deg: latitude of that fix, degrees WGS84
    :param vel_east_mps: smoothed velocity east, m/s
    :param vel_north_mps: smoothed velocity north, m/s
    :param origin_lon_deg: the point (e.g. a camera), degrees
    :param origin_lat_deg: the point, degrees
    :return: ``(index, lon_deg, lat_deg)`` of the vessels kept, positions at ``t_ms``

    >>> i, lon, lat = vessels_near(10_000, np.array([0, 9_000]), np.array([114.0, 114.0]),
    ...     np.array([30.0, 30.0]), np.array([0.0, 0.0]), np.array([0.0, 10.0]), 114.0, 30.0,
    ...     max_range_m=5_000.0, max_age_ms=5_000)
    >>> i.tolist(), round(float(lat[0]), 6)
    ([1], 30.00009)
    """
    age_s = (t_ms - np.asarray(fix_t_ms, dtype=np.int64)) / 1000.0
    e, n = enu_from_geo(origin_lon_deg, origin_lat_deg, lon_deg, lat_deg)
    e = e + np.nan_to_num(np.asarray(vel_east_mps, dtype=float)) * age_s
    n = n + np.nan_to_num(np.asarray(vel_north_mps, dtype=float)) * age_s
    keep = (np.abs(age_s) <= max_age_ms / 1000.0) & (np.hypot(e, n) <= max_range_m)
    idx = np.flatnonzero(keep)
    lon, lat = geo_from_enu(origin_lon_deg, origin_lat_deg, e[idx], n[idx])
    return idx, lon, lat


@dataclass(frozen=True, slots=True)
class GeoRef:
    """Where pixels land on the sea surface (arrays of one shape).

    :param lon_deg: longitude of the sea point, degrees; NaN when the ray misses the sea
    :param lat_deg: latitude of the sea point, degrees; NaN when the ray misses the sea
    :param bearing_deg: bearing of the ray from the camera, degrees true (always defined)
    :param range_m: distance from the camera foot along the sea surface, m; NaN beyond the horizon
    :param hits_sea: the ray meets the sea surface in front of the camera
    :param bearing_sigma_deg: one-sigma bearing uncertainty, degrees
    :param range_sigma_m: one-sigma range uncertainty, m; NaN beyond the horizon
    """

    lon_deg: np.ndarray
    lat_deg: np.ndarray
    bearing_deg: np.ndarray
    range_m: np.ndarray
    hits_sea: np.ndarray
    bearing_sigma_deg: np.ndarray
    range_sigma_m: np.ndarray


@dataclass(frozen=True, slots=True)
class CameraModel:
    """A calibrated shoreline camera: pose above the sea and pinhole intrinsics.

    :param lon_deg: camera longitude, degrees WGS84
    :param lat_deg: camera latitude, degrees WGS84
    :param height_m: height of the optical centre above the sea surface, m
    :param heading_deg: bearing of the optical axis, degrees true
    :param tilt_deg: depression of the optical axis below horizontal, degrees (positive = down)
    :param fx: focal length along ``u``, pixels
    :param fy: focal length along ``v``, pixels
    :param cx: principal point ``u``, pixels
    :param cy: principal point ``v``, pixels
    :param image_width: image width, pixels
    :param image_height: image height, pixels
    :param roll_deg: rotation of the image axes about the optical axis, degrees
    :param earth_curvature: intersect rays with the curved (refracted) sea instead of a plane
    :param refraction_k: terrestrial refraction coefficient used with ``earth_curvature``
    :param pixel_sigma_px: one-sigma error of a detection's pixel position, pixels
    :param tilt_sigma_deg: one-sigma error of the calibrated tilt, degrees
    :param heading_sigma_deg: one-sigma error of the calibrated heading, degrees
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
    roll_deg: float = 0.0
    earth_curvature: bool = False
    refraction_k: float = 0.13
    pixel_sigma_px: float = 2.0
    tilt_sigma_deg: float = 0.1
    heading_sigma_deg: float = 0.5

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_hfov(
        cls,
        *,
        lon_deg: float,
        lat_deg: float,
        height_m: float,
        heading_deg: float,
        tilt_deg: float,
        hfov_deg: float,
        image_width: int,
        image_height: int,
        roll_deg: float = 0.0,
    ) -> CameraModel:
        """A camera with square pixels and the principal point at the image centre.

        :param hfov_deg: horizontal field of view, degrees

        >>> cam = CameraModel.from_hfov(lon_deg=110.3, lat_deg=20.0, height_m=30.0,
        ...     heading_deg=0.0, tilt_deg=2.0, hfov_deg=60.0, image_width=1920, image_height=1080)
        >>> round(cam.hfov_deg, 6)
        60.0
        """
        fx = 0.5 * image_width / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(
            lon_deg=lon_deg,
            lat_deg=lat_deg,
            height_m=height_m,
            heading_deg=heading_deg,
            tilt_deg=tilt_deg,
            fx=fx,
            fy=fx,
            cx=0.5 * image_width,
            cy=0.5 * image_height,
            image_width=image_width,
            image_height=image_height,
            roll_deg=roll_deg,
        )

    @classmethod
    def from_fvessel_params(
        cls,
        params: list[float],
        image_width: int,
        image_height: int,
        sensor_width: int = 2560,
        sensor_height: int = 1440,
    ) -> CameraModel:
        """A camera from FVessel's ``camera_para.txt``, scaled to the analysed image.

        :param params: ``[lon, lat, heading_deg, tilt_deg, height_m, hfov_deg, vfov_deg,
            fx, fy, u0, v0]``; the file's tilt is negative when looking down
        :param image_width: width of the analysed image, pixels
        :param image_height: height of the analysed image, pixels
        :param sensor_width: width the intrinsics refer to, pixels
        :param sensor_height: height the intrinsics refer to, pixels
        """
        if len(params) != 11:
            raise ValueError(f"camera_para needs 11 values, got {len(params)}")
        lon, lat, heading, tilt, height, _hfov, _vfov, fx, fy, u0, v0 = map(float, params)
        full = cls(
            lon_deg=lon,
            lat_deg=lat,
            height_m=height,
            heading_deg=heading % 360.0,
            tilt_deg=-tilt,
            fx=fx,
            fy=fy,
            cx=u0,
            cy=v0,
            image_width=sensor_width,
            image_height=sensor_height,
        )
        return full.scaled(image_width, image_height)

    def scaled(self, image_width: int, image_height: int) -> CameraModel:
        """The same camera for a resized image (intrinsics scaled per axis)."""
        sx = image_width / self.image_width
        sy = image_height / self.image_height
        return replace(
            self,
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=self.cx * sx,
            cy=self.cy * sy,
            image_width=int(image_width),
            image_height=int(image_height),
        )

    def with_pose(
        self,
        *,
        heading_deg: float | None = None,
        tilt_deg: float | None = None,
        hfov_deg: float | None = None,
    ) -> CameraModel:
        """The camera after a PTZ move: new heading, tilt or zoom (focal lengths scaled
        together so the pixel aspect ratio is kept)."""
        out = self
        if heading_deg is not None:
            out = replace(out, heading_deg=float(heading_deg) % 360.0)
        if tilt_deg is not None:
            out = replace(out, tilt_deg=float(tilt_deg))
        if hfov_deg is not None:
            if not 0.0 < hfov_deg < 180.0:
                raise ValueError(f"hfov_deg must be in (0, 180), got {hfov_deg}")
            k = 0.5 * self.image_width / math.tan(math.radians(hfov_deg) / 2.0) / self.fx
            out = replace(out, fx=self.fx * k, fy=self.fy * k)
        return out

    @property
    def hfov_deg(self) -> float:
        """Nominal horizontal field of view, ``2 atan(W / 2 fx)``, degrees."""
        return math.degrees(2.0 * math.atan(0.5 * self.image_width / self.fx))

    # ------------------------------------------------------------------ geometry
    def _axes(self) -> np.ndarray:
        """Rows: the camera's right, down and forward unit vectors in ENU."""
        h = math.radians(self.heading_deg)
        t = math.radians(self.tilt_deg)
        fwd = np.array([math.sin(h) * math.cos(t), math.cos(h) * math.cos(t), -math.sin(t)])
        right = np.array([math.cos(h), -math.sin(h), 0.0])
        down = np.cross(fwd, right)
        if self.roll_deg:
            r = math.radians(self.roll_deg)
            right, down = (
                math.cos(r) * right + math.sin(r) * down,
                -math.sin(r) * right + math.cos(r) * down,
            )
        return np.stack([right, down, fwd])

    def _effective_radius_m(self) -> float:
        m_r, n_r = _radii_m(self.lat_deg)
        return math.sqrt(m_r * n_r) / (1.0 - self.refraction_k)

    def _rays(self, u_px: np.ndarray, v_px: np.ndarray) -> np.ndarray:
        """Unit ENU direction of the ray through each pixel, shape ``(..., 3)``."""
        u = np.asarray(u_px, dtype=float)
        v = np.asarray(v_px, dtype=float)
        cam = np.stack([(u - self.cx) / self.fx, (v - self.cy) / self.fy, np.ones_like(u)], -1)
        world = cam @ self._axes()
        return world / np.linalg.norm(world, axis=-1, keepdims=True)

    def _range_of_depression(self, dep_rad: np.ndarray) -> np.ndarray:
        """Sea-surface distance of a ray depressed ``dep_rad`` below horizontal; NaN on a miss."""
        h = self.height_m
        dep = np.asarray(dep_rad, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            if not self.earth_curvature:
                return np.where(dep > 0.0, h / np.tan(dep), np.nan)
            r = self._effective_radius_m()
            sz = -np.sin(dep)  # up component of the unit ray
            b = sz * (h + r)
            disc = b * b - (h * h + 2.0 * h * r)
            t = -b - np.sqrt(disc)
            ok = (disc >= 0.0) & (t > 0.0)
            # central angle between camera foot and the hit point
            horiz = t * np.cos(dep)
            vert = h + r + t * sz
            alpha = np.arctan2(horiz, vert)
            return np.where(ok, r * alpha, np.nan)

    def horizon_depression_deg(self) -> float:
        """Depression of the visible horizon below horizontal, degrees (0 on a flat sea)."""
        if not self.earth_curvature:
            return 0.0
        r = self._effective_radius_m()
        return math.degrees(math.acos(r / (r + self.height_m)))

    def horizon_v(self, u_px: np.ndarray) -> np.ndarray:
        """Row of the horizon at each image column (sea is below, larger ``v``), pixels.

        NaN where the column has no horizon (e.g. a camera looking straight down).
        """
        u = np.asarray(u_px, dtype=float)
        ax = self._axes()
        rz, dz, fz = ax[0, 2], ax[1, 2], ax[2, 2]
        s = math.sin(math.radians(self.horizon_depression_deg()))
        a = (u - self.cx) / self.fx
        k = a * rz + fz
        with np.errstate(divide="ignore", invalid="ignore"):
            if s == 0.0:
                b = -k / dz
            else:
                qa = dz * dz - s * s
                qb = 2.0 * k * dz
                qc = k * k - s * s * (a * a + 1.0)
                disc = np.sqrt(qb * qb - 4.0 * qa * qc)
                b1 = (-qb + disc) / (2.0 * qa)
                b2 = (-qb - disc) / (2.0 * qa)
                # the horizon ray points below horizontal: k + b dz < 0
                b = np.where(k + b1 * dz < 0.0, b1, b2)
        return self.cy + self.fy * b

    def bearing_of_pixel(self, u_px: np.ndarray, v_px: np.ndarray) -> np.ndarray:
        """Bearing of the ray through each pixel, degrees true in ``[0, 360)``.

        Defined beyond the horizon too (bearing is the robust quantity).
        """
        ray = self._rays(u_px, v_px)
        return np.degrees(np.arctan2(ray[..., 0], ray[..., 1])) % 360.0

    def pixel_to_geo(self, u_px: np.ndarray, v_px: np.ndarray) -> GeoRef:
        """Intersect the ray of each pixel with the sea surface.

        :param u_px: column, pixels (continuous)
        :param v_px: row, pixels (continuous); for a vessel use the waterline
            (bottom-centre of its box)
        :return: positions, bearings, ranges and their one-sigma uncertainties; range
            uncertainty comes from ``tilt_sigma_deg`` and ``pixel_sigma_px`` propagated
            through the geometry (about ``range^2 / height`` per radian)

        >>> cam = CameraModel.from_hfov(lon_deg=110.3, lat_deg=20.0, height_m=10.0,
        ...     heading_deg=90.0, tilt_deg=0.0, hfov_deg=90.0, image_width=200, image_height=200)
        >>> g = cam.pixel_to_geo(np.array([100.0]), np.array([101.0]))  # 1 px below horizon
        >>> round(float(g.range_m[0])), round(float(g.bearing_deg[0]))
        (1000, 90)
        """
        u = np.asarray(u_px, dtype=float)
        v = np.asarray(v_px, dtype=float)
        ray = self._rays(u, v)
        bearing = np.degrees(np.arctan2(ray[..., 0], ray[..., 1])) % 360.0
        dep = -np.arcsin(np.clip(ray[..., 2], -1.0, 1.0))
        rng = self._range_of_depression(dep)
        hits = np.isfinite(rng)

        # bearing sigma: pixel error across the image plus the heading calibration
        du = self.pixel_sigma_px
        b_plus = self.bearing_of_pixel(u + du, v)
        b_minus = self.bearing_of_pixel(u - du, v)
        db = ((b_plus - b_minus + 180.0) % 360.0 - 180.0) / 2.0
        bearing_sigma = np.hypot(db, self.heading_sigma_deg)

        # range sigma: linearised d(range)/d(depression) times the depression sigma
        ray_dv = self._rays(u, v + self.pixel_sigma_px)
        dep_dv = -np.arcsin(np.clip(ray_dv[..., 2], -1.0, 1.0))
        dep_sigma = np.hypot(np.abs(dep_dv - dep), math.radians(self.tilt_sigma_deg))
        step = 1e-6
        with np.errstate(invalid="ignore"):
            drdd = (self._range_of_depression(dep + step) - rng) / step
            range_sigma = np.where(hits, np.abs(drdd) * dep_sigma, np.nan)

        east = np.where(hits, rng * np.sin(np.radians(bearing)), np.nan)
        north = np.where(hits, rng * np.cos(np.radians(bearing)), np.nan)
        lon, lat = geo_from_enu(self.lon_deg, self.lat_deg, east, north)
        return GeoRef(
            lon_deg=lon,
            lat_deg=lat,
            bearing_deg=bearing,
            range_m=rng,
            hits_sea=hits,
            bearing_sigma_deg=bearing_sigma,
            range_sigma_m=range_sigma,
        )

    def geo_to_pixel(
        self, lon_deg: np.ndarray, lat_deg: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Project sea-level positions (e.g. AIS fixes) into the image.

        :param lon_deg: longitudes, degrees WGS84
        :param lat_deg: latitudes, degrees WGS84
        :return: ``(u_px, v_px, visible)``; ``visible`` is true when the point is in
            front of the camera, inside the image and (curved sea) not beyond the
            horizon; ``u``/``v`` are NaN behind the camera
        """
        east, north = enu_from_geo(self.lon_deg, self.lat_deg, lon_deg, lat_deg)
        h = self.height_m
        if self.earth_curvature:
            r = self._effective_radius_m()
            s = np.hypot(east, north)
            alpha = s / r
            with np.errstate(invalid="ignore", divide="ignore"):
                scale = np.where(s > 0.0, r * np.sin(alpha) / s, 1.0)
            pts = np.stack([east * scale, north * scale, -h - r * (1.0 - np.cos(alpha))], -1)
            below_horizon = alpha < math.acos(r / (r + h))
        else:
            pts = np.stack([east, north, np.full_like(east, -h)], -1)
            below_horizon = np.ones(east.shape, dtype=bool)
        cam = pts @ self._axes().T
        z = cam[..., 2]
        front = z > 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(front, self.fx * cam[..., 0] / z + self.cx, np.nan)
            v = np.where(front, self.fy * cam[..., 1] / z + self.cy, np.nan)
        eps = 1e-3  # round-off of a pixel_to_geo round trip at the image border, pixels
        inside = (
            (u >= -eps)
            & (u <= self.image_width + eps)
            & (v >= -eps)
            & (v <= self.image_height + eps)
        )
        return u, v, front & inside & below_horizon


def refine_pose(
    model: CameraModel,
    u_px: np.ndarray,
    v_px: np.ndarray,
    lon_deg: np.ndarray,
    lat_deg: np.ndarray,
    *,
    fit: tuple[str, ...] = ("heading_deg", "tilt_deg", "height_m"),
    f_scale_px: float = 5.0,
    bounds: Mapping[str, tuple[float, float]] | None = None,
) -> tuple[CameraModel, np.ndarray]:
    """Calibrate pose parameters from known sea positions seen at known pixels.

    Typical use: waterline pixels of detections that fusion matched to AIS vessels,
    with the AIS positions at the frame times. Minimises the robust (soft-L1)
    reprojection error of ``geo_to_pixel``.

    :param model: the starting camera
    :param u_px: observed columns, pixels
    :param v_px: observed rows, pixels (waterline)
    :param lon_deg: true longitudes of the same points, degrees
    :param lat_deg: true latitudes of the same points, degrees
    :param fit: :class:`CameraModel` fields to adjust (others stay fixed)
    :param f_scale_px: residual size, pixels, above which the loss turns linear
    :param bounds: optional ``{field: (low, high)}`` limits of fitted fields, in the
        fields' own units (a heading range may run past 360; the result is wrapped);
        the start is clipped into them
    :return: the refined camera and the final residuals ``(N, 2)`` (``du, dv``, pixels)

    >>> cam = CameraModel.from_hfov(lon_deg=110.3, lat_deg=20.0, height_m=30.0,
    ...     heading_deg=10.0, tilt_deg=3.0, hfov_deg=60.0, image_width=1280, image_height=720)
    >>> lon, lat = geo_from_enu(110.3, 20.0, np.array([-300.0, 200.0, 50.0]),
    ...     np.array([900.0, 1500.0, 400.0]))
    >>> u, v, _ = cam.geo_to_pixel(lon, lat)
    >>> start = replace(cam, heading_deg=12.0, tilt_deg=2.0, height_m=20.0)
    >>> fitted, res = refine_pose(start, u, v, lon, lat)
    >>> round(fitted.heading_deg, 3), round(fitted.tilt_deg, 3), round(fitted.height_m, 2)
    (10.0, 3.0, 30.0)
    """
    from scipy.optimize import least_squares

    u = np.asarray(u_px, dtype=float).ravel()
    v = np.asarray(v_px, dtype=float).ravel()
    lon = np.asarray(lon_deg, dtype=float).ravel()
    lat = np.asarray(lat_deg, dtype=float).ravel()
    if len(u) * 2 < len(fit):
        raise ValueError(f"{len(u)} points cannot fit {len(fit)} parameters")

    def residuals(p: np.ndarray) -> np.ndarray:
        cam = replace(model, **dict(zip(fit, p.tolist(), strict=True)))
        pu, pv, _ = cam.geo_to_pixel(lon, lat)
        r = np.concatenate([pu - u, pv - v])
        return np.where(np.isfinite(r), r, 1e4)

    lims = dict(bounds or {})
    lower = np.array([lims.get(f, (0.1 if f == "height_m" else -np.inf, np.inf))[0] for f in fit])
    upper = np.array([lims.get(f, (-np.inf, np.inf))[1] for f in fit])
    if np.any(lower >= upper):
        raise ValueError(f"empty bounds {bounds}")
    p0 = np.array([getattr(model, f) for f in fit], dtype=float)
    if "heading_deg" in fit and "heading_deg" in lims:
        # unwrap the start heading next to the middle of its range
        k = fit.index("heading_deg")
        mid = 0.5 * (lower[k] + upper[k])
        p0[k] = mid + (p0[k] - mid + 180.0) % 360.0 - 180.0
    # strictly inside: least_squares wants a feasible start
    span = np.where(np.isfinite(upper - lower), upper - lower, 1.0)
    p0 = np.clip(p0, lower + 1e-9 * span, upper - 1e-9 * span)
    sol = least_squares(residuals, p0, bounds=(lower, upper), loss="soft_l1", f_scale=f_scale_px)
    fitted = replace(model, **dict(zip(fit, sol.x.tolist(), strict=True)))
    if "heading_deg" in fit:
        fitted = replace(fitted, heading_deg=fitted.heading_deg % 360.0)
    return fitted, residuals(sol.x).reshape(2, -1).T


# --------------------------------------------------------------------------- self-calibration
@dataclass(frozen=True, slots=True)
class SelfCalConfig:
    """Settings of :class:`PoseCalibrator`. Pixel sizes refer to the analysed image.

    :param heading_bound_deg: the learnt heading stays within this of the installed one, degrees
    :param tilt_bound_deg: the learnt tilt stays within this of the installed one, degrees
    :param height_ratio_min: lowest learnt height as a fraction of the installed height
    :param height_ratio_max: highest learnt height as a multiple of the installed height
    :param gate_u_px: association gate in columns around a projected AIS position, pixels
    :param gate_v_px: association gate in rows, pixels (generous: tilt and height errors
        move rows far more than heading errors move columns)
    :param inlier_u_px: column error at which a detection stops being explained by an AIS
        position, pixels (wide: a box's centre is not where the AIS antenna is)
    :param inlier_v_px: row error at which it stops being explained, pixels (the
        waterline row is sharp); a pair is an inlier when
        ``(du / inlier_u_px)**2 + (dv / inlier_v_px)**2 < 1``
    :param ambiguity_ratio: a pair is rejected when the detection or the AIS position
        has a second candidate closer than this multiple of the pair's own error
    :param window_ms: observations older than this (event time) leave the window, ms
    :param window_frames: at most this many frames are kept in the window
    :param min_frames: frames with accepted pairs needed before a refit
    :param min_pairs: accepted pairs needed before a refit
    :param min_spread_m: the accepted AIS positions must lie at least this far apart
        (two vessels, or one vessel that moved), m
    :param refit_every_frames: attempt a refit every this many frames
    :param search_every_frames: between searches, a refit only refines the pose in force
        on the pairs it explains; every this many frames (and whenever the pose in force
        explains too few pairs) it also tries the two-pair hypotheses
    :param max_seeds: at most this many two-pair hypotheses are tried per search
    :param min_gain: a new pose must lower the window's robust cost by at least this much
        per pair it accepts (an unexplained detection costs 1, see :meth:`PoseCalibrator.cost`)
    """

    heading_bound_deg: float = 10.0
    tilt_bound_deg: float = 5.0
    height_ratio_min: float = 0.5
    height_ratio_max: float = 2.0
    gate_u_px: float = 80.0
    gate_v_px: float = 160.0
    inlier_u_px: float = 20.0
    inlier_v_px: float = 8.0
    ambiguity_ratio: float = 1.5
    window_ms: int = 600_000
    window_frames: int = 300
    min_frames: int = 3
    min_pairs: int = 4
    min_spread_m: float = 50.0
    refit_every_frames: int = 1
    search_every_frames: int = 10
    max_seeds: int = 32
    min_gain: float = 0.01


_FIT = ("heading_deg", "tilt_deg", "height_m")


@dataclass(frozen=True, slots=True)
class _Window:
    """The window's observations flattened: detections and AIS positions with frame numbers."""

    det_frame: np.ndarray  # (Nd,) int
    u_px: np.ndarray  # (Nd,)
    v_px: np.ndarray  # (Nd,)
    ais_frame: np.ndarray  # (Na,) int
    lon_deg: np.ndarray  # (Na,)
    lat_deg: np.ndarray  # (Na,)
    mmsi: np.ndarray  # (Na,) int
    pair_det: np.ndarray  # (Np,) every detection x AIS pair of the same frame
    pair_ais: np.ndarray  # (Np,)


class PoseCalibrator:
    """Learn a camera's heading, tilt and height online from the AIS vessels it sees.

    Feed it every frame with :meth:`update`: the waterline pixels of the frame's
    detections (box bottom centre) and the AIS positions of the vessels around the
    camera at the frame's event time. No ground truth is involved:

    1. the AIS positions are projected with the pose in force and gated against the
       detections in image space (wide in rows, narrower in columns);
    2. frames are kept in a window bounded by event time and count;
    3. on a refit, two-pair hypotheses (two gated pairs of one frame, or one vessel seen
       at two places) are each fitted with :func:`refine_pose` inside the bounds, and
       scored on the whole window with a truncated quadratic (MSAC) cost, so that
       clutter detections and AIS vessels nobody sees cost every hypothesis the same;
    4. under the best hypothesis each frame is associated one-to-one (Hungarian),
       pairs outside the inlier ellipse (``inlier_u_px``, ``inlier_v_px``) or ambiguous are dropped, and the pose is fitted
       on what remains;
    5. the new pose replaces the one in force only when there are enough pairs with
       enough spread, it stays within the bounds around the installed pose, and it
       lowers the window cost.

    Pure: event time is an argument, nothing reads a clock; results depend only on the
    inputs (no random sampling).

    :param installed: the camera as installed (its pose is the prior and the centre of
        the bounds); its image size is the size of the pixels passed in
    :param config: thresholds, see :class:`SelfCalConfig`
    """

    def __init__(self, installed: CameraModel, config: SelfCalConfig | None = None) -> None:
        self.installed = installed
        self.config = config if config is not None else SelfCalConfig()
        c = self.config
        h0 = installed.heading_deg
        self.bounds: dict[str, tuple[float, float]] = {
            "heading_deg": (h0 - c.heading_bound_deg, h0 + c.heading_bound_deg),
            "tilt_deg": (
                installed.tilt_deg - c.tilt_bound_deg,
                installed.tilt_deg + c.tilt_bound_deg,
            ),
            "height_m": (
                installed.height_m * c.height_ratio_min,
                installed.height_m * c.height_ratio_max,
            ),
        }
        self._model = installed
        self._frames: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]] = []
        # (frame number, t_ms, det uv (Nd, 2), ais lon/lat (Na, 2), mmsi (Na,))
        self._n_seen = 0
        self._since_refit = 0
        self._since_search = 0
        self._n_pairs = 0
        self._residual_px: float | None = None
        self._n_updates = 0

    # ------------------------------------------------------------------ state
    @property
    def model(self) -> CameraModel:
        """The camera with the pose in force (the installed one until a refit is accepted)."""
        return self._model

    @property
    def at_bounds(self) -> tuple[str, ...]:
        """The pose fields (``heading_deg``, ``tilt_deg``, ``height_m``) whose learnt value
        sits on a bound: the AIS would pull it further, so the installed value is likely
        wrong by more than the bounds allow (widen them, or survey the camera)."""
        if self._n_updates == 0:
            return ()
        out = []
        for name in _FIT:
            lo, hi = self.bounds[name]
            x = float(getattr(self._model, name))
            tol = 1e-6 * max(1.0, abs(hi - lo))
            if x <= lo + tol or x >= hi - tol:
                out.append(name)
        return tuple(out)

    @property
    def n_pairs(self) -> int:
        """Detection-AIS pairs accepted in the window at the last refit attempt."""
        return self._n_pairs

    @property
    def residual_px(self) -> float | None:
        """Median reprojection error of those pairs under the pose in force, pixels."""
        return self._residual_px

    @property
    def n_pose_updates(self) -> int:
        """How many times a new pose was accepted."""
        return self._n_updates

    @property
    def n_frames(self) -> int:
        """Frames in the window."""
        return len(self._frames)

    def within_bounds(self, model: CameraModel) -> bool:
        """Whether a pose lies within the configured bounds around the installed pose."""
        dh = (model.heading_deg - self.installed.heading_deg + 180.0) % 360.0 - 180.0
        lo_t, hi_t = self.bounds["tilt_deg"]
        lo_h, hi_h = self.bounds["height_m"]
        tol = 1e-6
        return bool(
            abs(dh) <= self.config.heading_bound_deg + tol
            and lo_t - tol <= model.tilt_deg <= hi_t + tol
            and lo_h - tol <= model.height_m <= hi_h + tol
        )

    # ------------------------------------------------------------------ input
    def update(
        self,
        t_ms: int,
        u_px: np.ndarray,
        v_px: np.ndarray,
        ais_lon_deg: np.ndarray,
        ais_lat_deg: np.ndarray,
        ais_mmsi: np.ndarray,
    ) -> bool:
        """Add one frame and refit when due.

        :param t_ms: the frame's event time, ms UTC; frames must come in time order
        :param u_px: detection waterline columns (box bottom centre), pixels
        :param v_px: detection waterline rows, pixels
        :param ais_lon_deg: AIS vessel longitudes at ``t_ms``, degrees WGS84
        :param ais_lat_deg: AIS vessel latitudes at ``t_ms``, degrees WGS84
        :param ais_mmsi: the vessels' MMSIs
        :return: whether the pose in force changed
        """
        c = self.config
        uv = np.stack([np.asarray(u_px, float).ravel(), np.asarray(v_px, float).ravel()], -1)
        uv = uv[np.all(np.isfinite(uv), axis=1)]
        ll = np.stack(
            [np.asarray(ais_lon_deg, float).ravel(), np.asarray(ais_lat_deg, float).ravel()], -1
        )
        mmsi = np.asarray(ais_mmsi, dtype=np.int64).ravel()
        ok = np.all(np.isfinite(ll), axis=1)
        ll, mmsi = ll[ok], mmsi[ok]
        if len(ll):
            # keep AIS positions that fall near the image under any pose the bounds allow:
            # in front of the camera and within the gates (plus the heading bound) of it
            pu, pv, _ = self._model.geo_to_pixel(ll[:, 0], ll[:, 1])
            m = self._model
            margin_u = c.gate_u_px + m.fx * math.tan(math.radians(c.heading_bound_deg))
            near = (
                np.isfinite(pu)
                & (pu >= -margin_u)
                & (pu <= m.image_width + margin_u)
                & (pv >= -c.gate_v_px)
                & (pv <= m.image_height + c.gate_v_px)
            )
            ll, mmsi = ll[near], mmsi[near]
        self._frames.append((self._n_seen, int(t_ms), uv, ll, mmsi))
        self._n_seen += 1
        while self._frames and (
            len(self._frames) > c.window_frames or self._frames[0][1] < int(t_ms) - c.window_ms
        ):
            self._frames.pop(0)
        self._since_refit += 1
        self._since_search += 1
        if self._since_refit < c.refit_every_frames:
            return False
        self._since_refit = 0
        return self._refit()

    # ------------------------------------------------------------------ fitting
    def _window(self) -> _Window:
        det_f, uv_all, ais_f, ll_all, mm_all = [], [], [], [], []
        for k, (_, _, uv, ll, mm) in enumerate(self._frames):
            det_f.append(np.full(len(uv), k))
            uv_all.append(uv)
            ais_f.append(np.full(len(ll), k))
            ll_all.append(ll)
            mm_all.append(mm)
        det_frame = np.concatenate(det_f).astype(int) if det_f else np.zeros(0, int)
        ais_frame = np.concatenate(ais_f).astype(int) if ais_f else np.zeros(0, int)
        uv = np.concatenate(uv_all) if uv_all else np.zeros((0, 2))
        ll = np.concatenate(ll_all) if ll_all else np.zeros((0, 2))
        mm = np.concatenate(mm_all) if mm_all else np.zeros(0, np.int64)
        # all same-frame detection x AIS pairs, vectorised through sorted frame numbers
        n_frames = len(self._frames)
        nd = np.bincount(det_frame, minlength=n_frames)
        na = np.bincount(ais_frame, minlength=n_frames)
        d0 = np.concatenate([[0], np.cumsum(nd)[:-1]]) if n_frames else np.zeros(0, int)
        a0 = np.concatenate([[0], np.cumsum(na)[:-1]]) if n_frames else np.zeros(0, int)
        per = nd * na
        pf = np.repeat(np.arange(n_frames), per)
        off = np.arange(int(per.sum())) - np.repeat(np.cumsum(per) - per, per)
        pair_det = d0[pf] + off // np.maximum(na[pf], 1)
        pair_ais = a0[pf] + off % np.maximum(na[pf], 1)
        return _Window(
            det_frame, uv[:, 0], uv[:, 1], ais_frame, ll[:, 0], ll[:, 1], mm, pair_det, pair_ais
        )

    def _pair_errors(self, model: CameraModel, w: _Window) -> tuple[np.ndarray, np.ndarray]:
        """``(du, dv)`` of every window pair under ``model``, pixels (inf when unprojectable)."""
        pu, pv, _ = model.geo_to_pixel(w.lon_deg, w.lat_deg)
        du = w.u_px[w.pair_det] - pu[w.pair_ais]
        dv = w.v_px[w.pair_det] - pv[w.pair_ais]
        bad = ~(np.isfinite(du) & np.isfinite(dv))
        return np.where(bad, np.inf, du), np.where(bad, np.inf, dv)

    def _norm_errors(self, model: CameraModel, w: _Window) -> tuple[np.ndarray, np.ndarray]:
        """Every window pair's error in inlier units (1 = the inlier ellipse) and in pixels."""
        du, dv = self._pair_errors(model, w)
        c = self.config
        return np.hypot(du / c.inlier_u_px, dv / c.inlier_v_px), np.hypot(du, dv)

    def _cost(self, model: CameraModel, w: _Window) -> float:
        e, _ = self._norm_errors(model, w)
        best = np.ones(len(w.u_px))
        np.minimum.at(best, w.pair_det, np.minimum(e * e, 1.0))
        return float(best.sum())

    def cost(self, model: CameraModel | None = None) -> float:
        """Robust (MSAC) cost of the window under a pose (default the pose in force).

        Each detection pays the squared error, in inlier units, to its nearest AIS
        projection in the same frame, at most 1: clutter and vessels nobody sees cost
        every pose the same.
        """
        return self._cost(self._model if model is None else model, self._window())

    def _associate(self, model: CameraModel, w: _Window) -> tuple[np.ndarray, np.ndarray]:
        """One-to-one, unambiguous inlier pairs under ``model``: ``(pair index, error, pixels)``."""
        from scipy.optimize import linear_sum_assignment

        c = self.config
        err, err_px = self._norm_errors(model, w)
        chosen: list[int] = []
        # pairs are grouped by frame; walk the frames' contiguous slices
        frame_of_pair = w.det_frame[w.pair_det]
        bounds = np.flatnonzero(np.diff(frame_of_pair)) + 1
        for sl in np.split(np.arange(len(err)), bounds):
            if len(sl) == 0:
                continue
            e = err[sl]
            if not np.any(e < 1.0):
                continue
            dets, di = np.unique(w.pair_det[sl], return_inverse=True)
            ais, ai = np.unique(w.pair_ais[sl], return_inverse=True)
            mat = np.full((len(dets), len(ais)), np.inf)
            mat[di, ai] = e
            # errors beyond the inlier threshold all cost the same, so that forcing an
            # assignment on every row cannot trade a good pair away
            cost = np.minimum(mat, 1.0)
            rows, cols = linear_sum_assignment(cost)
            for r, col in zip(rows, cols, strict=True):
                best = mat[r, col]
                if not best < 1.0:
                    continue
                others = np.concatenate([np.delete(mat[r], col), np.delete(mat[:, col], r)])
                if np.any(others < c.ambiguity_ratio * best):
                    continue
                chosen.append(int(sl[np.flatnonzero((di == r) & (ai == col))[0]]))
        idx = np.array(chosen, dtype=int)
        return idx, err_px[idx]

    def _spread_ok(self, w: _Window, pairs: np.ndarray) -> bool:
        c = self.config
        if len(pairs) < c.min_pairs:
            return False
        if len(np.unique(w.det_frame[w.pair_det[pairs]])) < c.min_frames:
            return False
        return self._spread_m(w, w.pair_ais[pairs]) >= c.min_spread_m

    def _spread_m(self, w: _Window, ais_idx: np.ndarray) -> float:
        """Largest distance between two of the given AIS positions (at least half of it), m."""
        e, n = enu_from_geo(
            self.installed.lon_deg, self.installed.lat_deg, w.lon_deg[ais_idx], w.lat_deg[ais_idx]
        )
        if len(e) < 2:
            return 0.0
        return 2.0 * float(np.max(np.hypot(e - e.mean(), n - n.mean())))

    def _seeds(self, w: _Window) -> list[tuple[int, int]]:
        """Two-pair hypotheses from the pairs gated under the pose in force, newest first.

        Two pairs of one frame with different detections and vessels; or one vessel in
        two frames far enough apart (each taking its nearest detection).
        """
        c = self.config
        du, dv = self._pair_errors(self._model, w)
        gated = np.flatnonzero((np.abs(du) <= c.gate_u_px) & (np.abs(dv) <= c.gate_v_px))
        if len(gated) < 2:
            return []
        score = np.hypot(du[gated] / c.gate_u_px, dv[gated] / c.gate_v_px)
        seeds: dict[tuple[int, ...], tuple[int, int]] = {}
        frame = w.det_frame[w.pair_det[gated]]
        e, n = enu_from_geo(
            self.installed.lon_deg,
            self.installed.lat_deg,
            w.lon_deg[w.pair_ais[gated]],
            w.lat_deg[w.pair_ais[gated]],
        )
        # same frame, different detection, different vessel, far enough apart
        i, j = np.triu_indices(len(gated), 1)
        ok = (
            (frame[i] == frame[j])
            & (w.pair_det[gated[i]] != w.pair_det[gated[j]])
            & (w.mmsi[w.pair_ais[gated[i]]] != w.mmsi[w.pair_ais[gated[j]]])
            & (np.hypot(e[i] - e[j], n[i] - n[j]) >= c.min_spread_m)
        )
        order = np.lexsort((score[i] + score[j], -frame[i]))
        for k in order[ok[order]]:
            a, b = int(gated[i[k]]), int(gated[j[k]])
            ma, mb = int(w.mmsi[w.pair_ais[a]]), int(w.mmsi[w.pair_ais[b]])
            key = (min(ma, mb), max(ma, mb))
            seeds.setdefault(key, (a, b))
        # one vessel in two frames: its best-gated pair in its newest and oldest frame
        mm = w.mmsi[w.pair_ais[gated]]
        for m in np.unique(mm):
            sel = np.flatnonzero(mm == m)
            fr = frame[sel]
            newest = sel[fr == fr.max()]
            oldest = sel[fr == fr.min()]
            a = int(newest[np.argmin(score[newest])])
            b = int(oldest[np.argmin(score[oldest])])
            if a != b and math.hypot(e[a] - e[b], n[a] - n[b]) >= c.min_spread_m:
                seeds.setdefault((int(m),), (int(gated[a]), int(gated[b])))
        return list(seeds.values())[: c.max_seeds]

    def _fit(self, start: CameraModel, w: _Window, pairs: np.ndarray) -> CameraModel:
        d, a = w.pair_det[pairs], w.pair_ais[pairs]
        fitted, _ = refine_pose(
            start,
            w.u_px[d],
            w.v_px[d],
            w.lon_deg[a],
            w.lat_deg[a],
            fit=_FIT,
            f_scale_px=0.5 * self.config.inlier_v_px,
            bounds=self.bounds,
        )
        return fitted

    def _refit(self) -> bool:
        c = self.config
        w = self._window()
        current_pairs, current_err = self._associate(self._model, w)
        self._n_pairs = len(current_pairs)
        self._residual_px = float(np.median(current_err)) if len(current_err) else None
        current_cost = self._cost(self._model, w)
        best_model, best_cost = self._model, current_cost
        tracking = self._spread_ok(w, current_pairs)
        if tracking:
            # refine the pose in force on the pairs it explains
            local = self._fit(self._model, w, current_pairs)
            cost = self._cost(local, w)
            if cost < best_cost:
                best_model, best_cost = local, cost
        if not tracking or self._since_search >= c.search_every_frames:
            self._since_search = 0
            for a, b in self._seeds(w):
                hyp = self._fit(self._model, w, np.array([a, b]))
                cost = self._cost(hyp, w)
                if cost < best_cost:
                    best_model, best_cost = hyp, cost
        if best_model is self._model:
            return False
        pairs, _ = self._associate(best_model, w)
        if not self._spread_ok(w, pairs):
            return False
        fitted = self._fit(best_model, w, pairs)
        cost = self._cost(fitted, w)
        if cost > best_cost:
            fitted, cost = best_model, best_cost
        pairs, err = self._associate(fitted, w)
        gain_ok = cost <= current_cost - c.min_gain * max(len(pairs), 1)
        if not gain_ok or not self.within_bounds(fitted):
            return False
        self._model = fitted
        self._n_updates += 1
        self._n_pairs = len(pairs)
        self._residual_px = float(np.median(err)) if len(err) else None
        return True
