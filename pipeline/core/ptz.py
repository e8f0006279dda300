"""A PTZ camera's calibrated model used in reverse: a geo position to pan, tilt and zoom.

The forward map (``connectors.onvif.ptz_pose``) takes an ONVIF position (pan and tilt in
``[-1, 1]``, zoom in ``[0, 1]``) through the camera's calibration to a heading (degrees
true), a tilt (depression below the horizontal, degrees) and a horizontal field of view.
:func:`aim` inverts it for targets at known positions: the heading is the bearing from the
camera, the tilt the depression of the target's waterline (over a curved, refracted sea),
and the zoom the narrowest field of view that makes a vessel of the expected length fill the
wanted part of the frame while keeping the position's uncertainty inside it. Pure NumPy,
vectorised over targets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.core.geo import EARTH_RADIUS_M, bearing_deg, haversine_m

__all__ = ["Aim", "PtzModel", "aim", "visible_range_m"]

#: terrestrial refraction coefficient (standard atmosphere) for the sea's curvature
REFRACTION_K = 0.13


def visible_range_m(height_m: float, target_height_m: float = 2.0) -> float:
    """Geometric range at which a target of ``target_height_m`` drops below the horizon of
    an eye at ``height_m`` (with standard refraction), m: ``√(2 R' h) + √(2 R' h_t)``."""
    r = EARTH_RADIUS_M / (1.0 - REFRACTION_K)
    return math.sqrt(2.0 * r * height_m) + math.sqrt(2.0 * r * target_height_m)


@dataclass(frozen=True, slots=True)
class PtzModel:
    """What :func:`aim` needs of one PTZ camera.

    :param heading_deg: the heading pan is measured from, degrees true
    :param pan_scale_deg: degrees of pan per unit of ONVIF pan (pan° = scale·p + offset)
    :param pan_offset_deg: degrees of pan at ONVIF pan 0, relative to ``heading_deg``
    :param tilt_scale_deg: degrees of depression per unit of ONVIF tilt
    :param tilt_offset_deg: depression at ONVIF tilt 0, degrees (positive looks down)
    :param zoom_hfov: ``((zoom, hfov_deg), ...)`` with increasing zoom
    :param max_range_m: the farthest the camera is asked to look, m
    """

    lon_deg: float
    lat_deg: float
    height_m: float
    heading_deg: float
    pan_scale_deg: float
    pan_offset_deg: float
    tilt_scale_deg: float
    tilt_offset_deg: float
    zoom_hfov: tuple[tuple[float, float], ...]
    max_range_m: float

    @classmethod
    def from_camera(cls, camera: Any, max_range_m: float | None = None) -> PtzModel:
        """The model of a site camera (:class:`pipeline.site.CameraConfig`) with a ``ptz``
        calibration; an uncalibrated axis is taken as fixed at the configured pose.

        :param max_range_m: default: :func:`visible_range_m` of the camera height
        """
        cal = camera.ptz
        pan = getattr(cal, "pan", None)
        tilt = getattr(cal, "tilt", None)
        table = tuple(getattr(cal, "zoom_hfov", ()) or ()) or (
            (0.0, float(camera.effective_hfov_deg)),
        )
        return cls(
            lon_deg=float(camera.lon),
            lat_deg=float(camera.lat),
            height_m=float(camera.height_m),
            heading_deg=float(camera.heading_deg),
            pan_scale_deg=float(pan.scale_deg) if pan else 0.0,
            pan_offset_deg=float(pan.offset_deg) if pan else 0.0,
            tilt_scale_deg=float(tilt.scale_deg) if tilt else 0.0,
            tilt_offset_deg=float(tilt.offset_deg) if tilt else float(camera.tilt_deg),
            zoom_hfov=tuple((float(z), float(h)) for z, h in table),
            max_range_m=float(max_range_m or visible_range_m(float(camera.height_m))),
        )


@dataclass(frozen=True, slots=True)
class Aim:
    """Where to point, per target (arrays of one element per target).

    :param pan: ONVIF pan in ``[-1, 1]`` (NaN where out of reach)
    :param tilt: ONVIF tilt in ``[-1, 1]`` (NaN where out of reach)
    :param zoom: ONVIF zoom in ``[0, 1]``
    :param hfov_deg: the field of view wanted, degrees (before the zoom table's limits)
    :param bearing_deg: bearing from the camera, degrees true
    :param range_m: range from the camera, m
    :param depression_deg: depression of the target's waterline below the horizontal, degrees
    :param reachable: pan and tilt within their range and the target within ``max_range_m``
    """

    pan: np.ndarray
    tilt: np.ndarray
    zoom: np.ndarray
    hfov_deg: np.ndarray
    bearing_deg: np.ndarray
    range_m: np.ndarray
    depression_deg: np.ndarray
    reachable: np.ndarray


def _axis_value(angle_deg: np.ndarray, scale: float, offset: float, wrap: bool) -> np.ndarray:
    """The ONVIF value in ``[-1, 1]`` giving ``angle_deg`` (NaN when none does); a wrapping
    axis (pan) tries the angle and its turns by ±360°, keeping the value nearest 0."""
    if scale == 0.0:
        return np.where(np.abs(angle_deg - offset) < 1e-6, 0.0, np.nan)
    turns = (-360.0, 0.0, 360.0) if wrap else (0.0,)
    cands = np.stack([(angle_deg + k - offset) / scale for k in turns])
    ok = np.abs(cands) <= 1.0 + 1e-9
    cost = np.where(ok, np.abs(cands), np.inf)
    best = np.argmin(cost, axis=0)
    value = np.take_along_axis(cands, best[None], 0)[0]
    return np.where(np.isfinite(np.min(cost, axis=0)), np.clip(value, -1.0, 1.0), np.nan)


def aim(
    model: PtzModel,
    lon_deg,
    lat_deg,
    *,
    vessel_length_m=12.0,
    fill=0.3,
    position_sigma_m=0.0,
    sigma_in_frame=3.0,
) -> Aim:
    """Pan, tilt and zoom that put targets in the middle of the frame.

    The field of view wanted is the wider of: the one in which a vessel of
    ``vessel_length_m`` (seen broadside) spans ``fill`` of the frame width, and the one that
    holds ``±sigma_in_frame`` position sigmas. The zoom is read off the calibration's
    ``zoom_hfov`` table (clipped to its ends).

    :param lon_deg: target longitudes, degrees
    :param lat_deg: target latitudes, degrees
    :param vessel_length_m: expected vessel length, m (scalar or per target)
    :param fill: wanted fraction of the frame width, ``(0, 1]``
    :param position_sigma_m: one-sigma position error of each target, m
    :param sigma_in_frame: how many sigmas either side must stay in frame

    >>> m = PtzModel(110.0, 20.0, 20.0, 0.0, 180.0, 0.0, 45.0, 0.0,
    ...              ((0.0, 60.0), (1.0, 3.0)), 20_000.0)
    >>> a = aim(m, [110.0], [20.02])
    >>> round(float(a.pan[0]), 4), round(float(a.tilt[0]), 4), bool(a.reachable[0])
    (0.0, 0.0116, True)
    """
    lon = np.atleast_1d(np.asarray(lon_deg, dtype=float))
    lat = np.atleast_1d(np.asarray(lat_deg, dtype=float))
    brg = bearing_deg(model.lon_deg, model.lat_deg, lon, lat)
    rng = haversine_m(model.lon_deg, model.lat_deg, lon, lat)
    r_eff = EARTH_RADIUS_M / (1.0 - REFRACTION_K)
    safe = np.maximum(rng, 1.0)
    # the waterline lies below the tangent plane by r^2 / 2R' (curved, refracted sea)
    dep = np.degrees(np.arctan2(model.height_m + safe**2 / (2.0 * r_eff), safe))
    rel = np.mod(brg - model.heading_deg + 180.0, 360.0) - 180.0
    pan = _axis_value(rel, model.pan_scale_deg, model.pan_offset_deg, wrap=True)
    tilt = _axis_value(dep, model.tilt_scale_deg, model.tilt_offset_deg, wrap=False)
    length = np.asarray(vessel_length_m, dtype=float)
    fov_vessel = np.degrees(2.0 * np.arctan(length / (2.0 * float(fill) * safe)))
    sig = np.asarray(position_sigma_m, dtype=float)
    fov_sigma = np.degrees(2.0 * np.arctan(sigma_in_frame * sig / safe))
    hfov = np.maximum(fov_vessel, fov_sigma)
    z = np.array([p[0] for p in model.zoom_hfov], dtype=float)
    h = np.array([p[1] for p in model.zoom_hfov], dtype=float)
    if len(z) > 1:
        order = np.argsort(h)  # np.interp wants increasing x: narrow field = high zoom
        zoom = np.interp(hfov, h[order], z[order])
    else:
        zoom = np.zeros_like(hfov) + (z[0] if len(z) else 0.0)
    reachable = np.isfinite(pan) & np.isfinite(tilt) & (rng <= model.max_range_m)
    return Aim(
        pan=pan,
        tilt=tilt,
        zoom=np.clip(zoom, 0.0, 1.0),
        hfov_deg=hfov,
        bearing_deg=brg,
        range_m=rng,
        depression_deg=dep,
        reachable=reachable,
    )
