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
from dataclasses import dataclass, replace

import numpy as np

__all__ = [
    "CameraModel",
    "GeoRef",
    "enu_from_geo",
    "geo_from_enu",
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

    lower = [0.1 if f == "height_m" else -np.inf for f in fit]
    p0 = np.array([getattr(model, f) for f in fit], dtype=float)
    sol = least_squares(
        residuals, p0, bounds=(lower, [np.inf] * len(fit)), loss="soft_l1", f_scale=f_scale_px
    )
    fitted = replace(model, **dict(zip(fit, sol.x.tolist(), strict=True)))
    if "heading_deg" in fit:
        fitted = replace(fitted, heading_deg=fitted.heading_deg % 360.0)
    return fitted, residuals(sol.x).reshape(2, -1).T
