"""Site configuration: a folder describing one stretch of coast.

A site folder holds (issue 3, item 6):

- ``site.yaml``: ``name``, ``timezone`` (IANA), ``bbox`` ``[lon_min, lat_min, lon_max,
  lat_max]``, ``land`` (GeoJSON of land Polygons/MultiPolygons; the coastline is their
  boundary), ``zones`` (GeoJSON of authorised places), optional ``cameras`` (a YAML file)
  optional ``detectors`` (switch a detector off or set its thresholds by detector name:
  ``detectors: {loitering: {enabled: false}, unusual_landing: {dwell_s: 240}}``, see
  ``docs/detectors.md``) and optional ``thresholds`` (the older form: a mapping of
  threshold field name to value, for the thresholds shared by several detectors);
- the files it names.

:func:`load_site` reads and validates everything and raises :class:`~pipeline.errors.SiteError`
carrying *every* problem found, each as ``file: field: message``; :func:`check_site`
returns the same list instead of raising. ``shorewatch site check DIR`` prints it.

This is an adapter module (it reads files and the environment); the pure-NumPy view of a
site that the core uses is :meth:`Site.geometry`.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import yaml
from shapely import make_valid
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box, shape
from shapely.ops import unary_union
from shapely.validation import explain_validity

from pipeline.core.adaptive import AnalysisPolicy, parse_policy
from pipeline.core.detectors import DETECTORS
from pipeline.core.detectors.registry import detector_settings_problems
from pipeline.core.geo import EARTH_RADIUS_M, haversine_m
from pipeline.errors import ConfigError, SiteError
from pipeline.settings import REPO_DIR

if TYPE_CHECKING:  # pragma: no cover
    from pipeline.core.camera import CameraModel
    from pipeline.core.geo import AreaGeometry

__all__ = [
    "CLIP_STRUCTURES_DIR",
    "ZONE_KINDS",
    "AxisCalibration",
    "CameraConfig",
    "OnvifConfig",
    "PtzCalibration",
    "Site",
    "Structure",
    "SiteZone",
    "check_site",
    "load_site",
    "read_structures",
]

#: structures files of recorded clips (``<clip folder name>.structures.yaml``), in the
#: repository beside the site folders
CLIP_STRUCTURES_DIR = REPO_DIR / "sites" / "clips"

#: Kinds of authorised place a zone may have.
ZONE_KINDS: tuple[str, ...] = ("port", "pier", "anchorage", "shipyard", "fishing_harbour")

_SITE_KEYS = {
    "name", "timezone", "bbox", "land", "zones", "cameras", "thresholds", "detectors", "description",
}  # fmt: skip
_CAMERA_KEYS = {
    "id", "name", "lat", "lon", "height_m", "heading_deg", "tilt_deg", "roll_deg", "hfov_deg",
    "fx", "fy", "cx", "cy", "image_width", "image_height", "rtsp_url", "onvif", "ptz",
    "water_mask", "structures", "self_calibrate", "analysis",
}  # fmt: skip
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class OnvifConfig:
    """How to reach a camera's ONVIF service. Secrets live in environment variables.

    :param host: host name or address
    :param port: TCP port of the ONVIF HTTP service
    :param user_env: name of the environment variable holding the user name
    :param password_env: name of the environment variable holding the password
    """

    host: str
    port: int
    user_env: str
    password_env: str


@dataclass(frozen=True)
class AxisCalibration:
    """A linear map from an ONVIF PTZ axis value (``[-1, 1]``) to degrees.

    :param scale_deg: degrees per unit of the ONVIF value
    :param offset_deg: degrees at ONVIF value 0
    """

    scale_deg: float
    offset_deg: float

    def to_deg(self, value: float) -> float:
        """Degrees for an ONVIF axis value."""
        return self.scale_deg * value + self.offset_deg


@dataclass(frozen=True)
class PtzCalibration:
    """Vendor-specific PTZ calibration of one camera.

    :param pan: pan map (ONVIF pan to degrees relative to the camera's ``heading_deg``)
    :param tilt: tilt map (ONVIF tilt to degrees)
    :param zoom_hfov: ``((zoom, hfov_deg), ...)`` with increasing zoom in ``[0, 1]``
    """

    pan: AxisCalibration | None = None
    tilt: AxisCalibration | None = None
    zoom_hfov: tuple[tuple[float, float], ...] = ()

    def hfov_deg(self, zoom: float) -> float:
        """Horizontal field of view at an ONVIF zoom value, linearly interpolated.

        :raises ConfigError: when the calibration has no zoom table
        """
        if not self.zoom_hfov:
            raise ConfigError("ptz calibration has no zoom_hfov table")
        z = np.array([p[0] for p in self.zoom_hfov], dtype=float)
        h = np.array([p[1] for p in self.zoom_hfov], dtype=float)
        return float(np.interp(zoom, z, h))


@dataclass(frozen=True)
class Structure:
    """A fixed structure in a camera's view (bridge, pier, tower, moored pontoon).

    Detections lying mostly inside one are not vessels and are not published (see
    :class:`pipeline.vision.structures.StructureMask`).

    :param name: what it is, for people
    :param polygon_px: ``((x_px, y_px), ...)`` outline in the camera's configured image
    """

    name: str
    polygon_px: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class CameraConfig:
    """One camera of a site, as written in ``cameras.yaml``.

    Either ``hfov_deg`` or the intrinsics ``fx, fy, cx, cy`` (pixels) are set.
    ``tilt_deg`` is the depression below the horizontal (positive looks down), as in
    :class:`pipeline.core.camera.CameraModel`.

    :param water_mask: polygon ``((x_px, y_px), ...)`` of the image part that shows water
    :param structures: fixed structures in view (bridges, piers, towers) whose detections
        are dropped, outlined in pixels of the configured image; for a PTZ camera they
        hold at its home position only and are not applied while a PTZ pose is in force
    :param self_calibrate: learn heading, tilt and height online from the AIS vessels the
        camera sees (:class:`pipeline.core.camera.PoseCalibrator`), within bounds around
        the configured pose; needs an AIS source wired to the camera ingest
    :param analysis: when the camera's frames go to the detector
        (:class:`pipeline.core.adaptive.AnalysisPolicy`, see ``docs/camera-fleet.md``);
        ``None``: the default adaptive policy
    """

    id: str
    lat: float
    lon: float
    height_m: float
    heading_deg: float
    tilt_deg: float
    image_width: int
    image_height: int
    roll_deg: float = 0.0
    hfov_deg: float | None = None
    fx: float | None = None
    fy: float | None = None
    cx: float | None = None
    cy: float | None = None
    name: str | None = None
    rtsp_url: str | None = None
    onvif: OnvifConfig | None = None
    ptz: PtzCalibration | None = None
    water_mask: tuple[tuple[float, float], ...] | None = None
    structures: tuple[Structure, ...] = ()
    self_calibrate: bool = False
    analysis: AnalysisPolicy | None = None

    def model(self) -> CameraModel:
        """The pinhole camera model of this camera (``pipeline.core.camera.CameraModel``)."""
        from pipeline.core.camera import CameraModel

        if self.hfov_deg is not None:
            return CameraModel.from_hfov(
                lon_deg=self.lon,
                lat_deg=self.lat,
                height_m=self.height_m,
                heading_deg=self.heading_deg,
                tilt_deg=self.tilt_deg,
                hfov_deg=self.hfov_deg,
                image_width=self.image_width,
                image_height=self.image_height,
                roll_deg=self.roll_deg,
            )
        return CameraModel(
            lon_deg=self.lon,
            lat_deg=self.lat,
            height_m=self.height_m,
            heading_deg=self.heading_deg,
            tilt_deg=self.tilt_deg,
            fx=float(self.fx),  # type: ignore[arg-type]
            fy=float(self.fy),  # type: ignore[arg-type]
            cx=float(self.cx),  # type: ignore[arg-type]
            cy=float(self.cy),  # type: ignore[arg-type]
            image_width=self.image_width,
            image_height=self.image_height,
            roll_deg=self.roll_deg,
        )

    @property
    def effective_hfov_deg(self) -> float:
        """The horizontal field of view, from ``hfov_deg`` or from ``fx``, degrees."""
        if self.hfov_deg is not None:
            return self.hfov_deg
        return math.degrees(2.0 * math.atan(self.image_width / (2.0 * float(self.fx))))  # type: ignore[arg-type]

    def credentials(self) -> tuple[str, str]:
        """``(user, password)`` from the environment variables named in ``onvif``.

        :raises ConfigError: when the camera has no ``onvif`` section or a variable is unset
        """
        if self.onvif is None:
            raise ConfigError(f"camera {self.id}: no onvif section, so no credentials")
        missing = [n for n in (self.onvif.user_env, self.onvif.password_env) if n not in os.environ]
        if missing:
            raise ConfigError(
                f"camera {self.id}: environment variable {' and '.join(missing)} not set "
                "(it must hold the ONVIF "
                + ("user" if missing[0] == self.onvif.user_env else "password")
                + ")"
            )
        return os.environ[self.onvif.user_env], os.environ[self.onvif.password_env]


@dataclass(frozen=True)
class SiteZone:
    """An authorised place: a polygon, or a circle given by centre and radius.

    :param polygon: the zone as a shapely polygon in lon/lat degrees (circles approximated)
    :param center_lonlat: circle centre, ``None`` for a polygon zone
    :param radius_m: circle radius in metres, ``None`` for a polygon zone
    """

    name: str
    kind: str
    polygon: Polygon
    center_lonlat: tuple[float, float] | None = None
    radius_m: float | None = None
    properties: dict[str, Any] = field(default_factory=dict, compare=False)

    def contains(self, lon: float, lat: float) -> bool:
        """Whether a point (degrees) is inside the zone (boundary included)."""
        if self.center_lonlat is not None and self.radius_m is not None:
            return float(haversine_m(lon, lat, *self.center_lonlat)) <= self.radius_m
        return bool(self.polygon.covers(Point(lon, lat)))

    def distance_m(self, lon: float, lat: float) -> float:
        """Approximate distance from a point to the zone, metres (0 inside)."""
        if self.center_lonlat is not None and self.radius_m is not None:
            return max(0.0, float(haversine_m(lon, lat, *self.center_lonlat)) - self.radius_m)
        if self.polygon.covers(Point(lon, lat)):
            return 0.0
        kx = math.cos(math.radians(lat)) * math.pi / 180.0 * EARTH_RADIUS_M
        ky = math.pi / 180.0 * EARTH_RADIUS_M
        ring = np.asarray(self.polygon.exterior.coords)
        local = LineString(np.column_stack([(ring[:, 0] - lon) * kx, (ring[:, 1] - lat) * ky]))
        return float(local.distance(Point(0.0, 0.0)))


@dataclass(frozen=True)
class Site:
    """A validated site. Build it with :func:`load_site`.

    :param bbox: ``(lon_min, lat_min, lon_max, lat_max)``, degrees
    :param land: land as a shapely (Multi)Polygon clipped to the bbox, lon/lat degrees
    :param thresholds: detector thresholds overriding the defaults, by
        :class:`~pipeline.core.detectors.Thresholds` field (the older form)
    :param detectors: detector name -> ``enabled`` and its own thresholds by name (see
        :class:`~pipeline.core.detectors.DetectorSettings`)
    """

    path: Path
    name: str
    timezone: ZoneInfo
    bbox: tuple[float, float, float, float]
    land: MultiPolygon
    zones: tuple[SiteZone, ...]
    cameras: list[CameraConfig]
    thresholds: dict[str, Any]
    description: str | None = None
    detectors: dict[str, dict[str, Any]] = field(default_factory=dict)

    def camera(self, camera_id: str) -> CameraConfig:
        """The camera with this id.

        :raises KeyError: when there is none
        """
        for cam in self.cameras:
            if cam.id == camera_id:
                return cam
        raise KeyError(camera_id)

    def zone_at(self, lon: float, lat: float) -> SiteZone | None:
        """The first authorised zone containing a point, or ``None``."""
        for zone in self.zones:
            if zone.contains(lon, lat):
                return zone
        return None

    def on_land(self, lon: float, lat: float) -> bool:
        """Whether a point is on land (boundary included)."""
        return bool(self.land.covers(Point(lon, lat)))

    def coast_segments(self) -> np.ndarray:
        """Coastline edges inside the bbox, ``(N, 4)``: lon1, lat1, lon2, lat2 degrees.

        Edges that lie along the bbox border (artefacts of clipping) are left out.
        """
        return _coast_segments(self.land, self.bbox)

    def geometry(self) -> AreaGeometry:
        """The site as the core's :class:`pipeline.core.geo.AreaGeometry` (pure NumPy)."""
        from pipeline.core.geo import AreaGeometry, Zone

        zones = tuple(
            Zone(
                name=z.name,
                kind=z.kind,
                ring_lonlat=None
                if z.center_lonlat is not None
                else np.asarray(z.polygon.exterior.coords, dtype=float),
                center_lonlat=z.center_lonlat,
                radius_m=z.radius_m,
            )
            for z in self.zones
        )
        rings = tuple(np.asarray(p.exterior.coords, dtype=float) for p in self.land.geoms)
        return AreaGeometry(
            name=self.name, coast_segments=self.coast_segments(), land_rings=rings, zones=zones
        )


# --------------------------------------------------------------------------- geometry helpers


def circle_polygon(lon: float, lat: float, radius_m: float, n: int = 48) -> Polygon:
    """A circle of ``radius_m`` around a point as an ``n``-gon in lon/lat degrees."""
    ang = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    dlat = np.degrees(radius_m * np.cos(ang) / EARTH_RADIUS_M)
    dlon = np.degrees(radius_m * np.sin(ang) / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
    return Polygon(np.column_stack([lon + dlon, lat + dlat]))


def _coast_segments(land: MultiPolygon, bbox: tuple[float, float, float, float]) -> np.ndarray:
    lon0, lat0, lon1, lat1 = bbox
    eps = 1e-9
    segs: list[np.ndarray] = []
    for poly in land.geoms:
        for ring in [poly.exterior, *poly.interiors]:
            xy = np.asarray(ring.coords, dtype=float)
            s = np.column_stack([xy[:-1], xy[1:]])
            on_edge = np.zeros(len(s), dtype=bool)
            for col, val in ((0, lon0), (0, lon1), (1, lat0), (1, lat1)):
                on_edge |= (np.abs(s[:, col] - val) < eps) & (np.abs(s[:, col + 2] - val) < eps)
            segs.append(s[~on_edge])
    if not segs:
        return np.zeros((0, 4))
    return np.concatenate(segs, axis=0)


# --------------------------------------------------------------------------- validation


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, file: str, fld: str, message: str) -> None:
        self.items.append(f"{file}: {fld}: {message}")


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _read_yaml(path: Path, fname: str, probs: _Problems) -> Any:
    if not path.is_file():
        probs.add(fname, "-", f"file not found: {path}")
        return None
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        probs.add(fname, "-", f"not valid YAML: {' '.join(str(exc).split())}")
        return None


def _read_geojson(path: Path, fname: str, probs: _Problems) -> list[tuple[str, dict, Any]] | None:
    """Features of a GeoJSON file as ``(field_path, properties, geometry_dict)``."""
    if not path.is_file():
        probs.add(fname, "-", f"file not found: {path}")
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        probs.add(fname, "-", f"not valid JSON: {exc}")
        return None
    if not isinstance(doc, dict) or "type" not in doc:
        probs.add(fname, "type", "not a GeoJSON object (no 'type' member)")
        return None
    kind = doc["type"]
    if kind == "FeatureCollection":
        feats = doc.get("features")
        if not isinstance(feats, list):
            probs.add(fname, "features", "a FeatureCollection needs a 'features' list")
            return None
        out = []
        for i, f in enumerate(feats):
            where = f"features[{i}]"
            if not isinstance(f, dict) or f.get("type") != "Feature":
                probs.add(fname, where, "not a GeoJSON Feature")
                continue
            props = f.get("properties") or {}
            if not isinstance(props, dict):
                probs.add(fname, f"{where}.properties", "must be an object")
                props = {}
            out.append((where, props, f.get("geometry")))
        return out
    if kind == "Feature":
        return [("feature", doc.get("properties") or {}, doc.get("geometry"))]
    if kind in ("Polygon", "MultiPolygon", "Point", "LineString", "MultiPoint", "MultiLineString"):
        return [("geometry", {}, doc)]
    probs.add(fname, "type", f"unknown GeoJSON type {kind!r}")
    return None


def _shape(geom: Any, fname: str, where: str, probs: _Problems):
    if not isinstance(geom, dict) or "type" not in geom or "coordinates" not in geom:
        probs.add(fname, f"{where}.geometry", "missing or not a GeoJSON geometry")
        return None
    try:
        g = shape(geom)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        probs.add(fname, f"{where}.geometry", f"bad {geom.get('type')} coordinates: {exc}")
        return None
    if g.is_empty:
        probs.add(fname, f"{where}.geometry", "empty geometry")
        return None
    return g


def _check_polygon(g, fname: str, where: str, probs: _Problems) -> bool:
    if not g.is_valid:
        reason = explain_validity(g)
        if "Self-intersection" in reason or "Ring Self-intersection" in reason:
            msg = f"self-intersecting polygon ({reason})"
        else:
            msg = f"invalid polygon ({reason})"
        probs.add(fname, f"{where}.geometry", msg)
        return False
    return True


def _check_lonlat(lon: Any, lat: Any, fname: str, where: str, probs: _Problems) -> bool:
    ok = True
    if not _is_number(lon) or not -180.0 <= lon <= 180.0:
        probs.add(fname, f"{where}.lon", f"must be a longitude in degrees, got {lon!r}")
        ok = False
    if not _is_number(lat) or not -90.0 <= lat <= 90.0:
        probs.add(fname, f"{where}.lat", f"must be a latitude in degrees, got {lat!r}")
        ok = False
    return ok


def _parse_axis(raw: Any, fname: str, where: str, probs: _Problems) -> AxisCalibration | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(
        _is_number(raw.get(k)) for k in ("scale_deg", "offset_deg")
    ):
        probs.add(fname, where, "needs numbers scale_deg and offset_deg")
        return None
    return AxisCalibration(float(raw["scale_deg"]), float(raw["offset_deg"]))


def _parse_pixel_polygon(
    m: Any, size: tuple[int, int] | None, fname: str, where: str, probs: _Problems
) -> tuple[tuple[float, float], ...] | None:
    """A polygon of ``[x_px, y_px]`` points inside a ``size = (width, height)`` image."""
    if (
        not isinstance(m, list)
        or len(m) < 3
        or not all(
            isinstance(q, list | tuple) and len(q) == 2 and all(_is_number(x) for x in q) for q in m
        )
    ):
        probs.add(fname, where, "must be a list of at least 3 [x_px, y_px] points")
        return None
    poly = Polygon(m)
    if not poly.is_valid:
        probs.add(fname, where, f"self-intersecting or invalid polygon ({explain_validity(poly)})")
    if size is not None and any(not (0 <= x <= size[0] and 0 <= y <= size[1]) for x, y in m):
        probs.add(fname, where, f"points must lie inside the {size[0]}x{size[1]} image")
    return tuple((float(x), float(y)) for x, y in m)


def _parse_structures(
    raw: Any, size: tuple[int, int] | None, fname: str, where: str, probs: _Problems
) -> tuple[Structure, ...]:
    """``structures``: a list of ``{name, polygon}`` in pixels of a ``(width, height)`` image."""
    prefix = f"{where}." if where else ""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        probs.add(fname, f"{prefix}structures", "must be a list of {name, polygon} entries")
        return ()
    out: list[Structure] = []
    for k, item in enumerate(raw):
        sw = f"{prefix}structures[{k}]"
        if not isinstance(item, dict) or set(item) - {"name", "polygon"}:
            probs.add(fname, sw, "must be a mapping with keys name and polygon only")
            continue
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            probs.add(fname, f"{sw}.name", "must be a non-empty string")
            continue
        poly = _parse_pixel_polygon(item.get("polygon"), size, fname, f"{sw}.polygon", probs)
        if poly is not None:
            out.append(Structure(name=name.strip(), polygon_px=poly))
    return tuple(out)


def read_structures(path: str | os.PathLike[str]) -> tuple[tuple[Structure, ...], int, int]:
    """A structures file: ``image_width``, ``image_height`` and ``structures`` (as in
    ``cameras.yaml``), for cameras configured outside a site, e.g. a recorded clip.

    :return: the structures and the image size they are outlined in, pixels
    :raises ConfigError: listing every problem with its field
    """
    p = Path(path)
    probs = _Problems()
    doc = _read_yaml(p, p.name, probs)
    if doc is not None and not isinstance(doc, dict):
        probs.add(p.name, "-", "must be a mapping")
    size: tuple[int, int] | None = None
    structures: tuple[Structure, ...] = ()
    if isinstance(doc, dict):
        extra = set(doc) - {"image_width", "image_height", "structures"}
        if extra:
            probs.add(p.name, "-", f"unknown keys {sorted(extra)}")
        w, h = doc.get("image_width"), doc.get("image_height")
        if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
            size = (w, h)
        else:
            probs.add(p.name, "image_width/image_height", "must be positive integers")
        if not doc.get("structures"):
            probs.add(p.name, "structures", "must list at least one structure")
        structures = _parse_structures(doc.get("structures"), size, p.name, "", probs)
    if probs.items or size is None:
        raise ConfigError("; ".join(probs.items) or f"{p}: invalid structures file")
    return structures, size[0], size[1]


def _entry_where(
    raw: dict[str, Any],
    section: str,
    kind: str,
    i: int,
    keys: set[str] | frozenset[str],
    fname: str,
    probs: _Problems,
) -> tuple[str, Any]:
    """Where the ``i``-th entry of a list (``cameras``, ``radars``) is, named by its id once
    it has one, and that id; a missing id and every unknown field are problems."""
    where = f"{section}[{i}]"
    eid = raw.get("id")
    if not isinstance(eid, str | int) or isinstance(eid, bool) or str(eid) == "":
        probs.add(fname, f"{where}.id", f"missing {kind} id")
    else:
        where = f"{section}[{i}] ({eid})"
    for key in sorted(set(raw) - keys):
        probs.add(fname, f"{where}.{key}", "unknown field")
    return where, eid


def _parse_camera(
    raw: Any,
    i: int,
    fname: str,
    bbox_poly: Polygon | None,
    probs: _Problems,
    require_env: bool,
) -> CameraConfig | None:
    if not isinstance(raw, dict):
        probs.add(fname, f"cameras[{i}]", "must be a mapping")
        return None
    n0 = len(probs.items)
    where, cid = _entry_where(raw, "cameras", "camera", i, _CAMERA_KEYS, fname, probs)
    _check_camera_pose(raw, fname, where, bbox_poly, probs)
    _check_camera_image(raw, fname, where, probs)
    url = raw.get("rtsp_url")
    if url is not None and (not isinstance(url, str) or not re.match(r"^rtsps?://", url)):
        probs.add(fname, f"{where}.rtsp_url", f"must be an rtsp:// or rtsps:// URL, got {url!r}")
    onvif = None
    if raw.get("onvif") is not None:
        onvif = _parse_onvif(raw["onvif"], fname, f"{where}.onvif", probs, require_env)
    ptz = None
    if raw.get("ptz") is not None:
        ptz = _parse_ptz(raw["ptz"], fname, f"{where}.ptz", probs)
    w_img, h_img = raw.get("image_width"), raw.get("image_height")
    size = (w_img, h_img) if isinstance(w_img, int) and isinstance(h_img, int) else None
    mask = None
    if raw.get("water_mask") is not None:
        mask = _parse_pixel_polygon(raw["water_mask"], size, fname, f"{where}.water_mask", probs)
    structures = _parse_structures(raw.get("structures"), size, fname, where, probs)
    selfcal = raw.get("self_calibrate", False)
    if not isinstance(selfcal, bool):
        probs.add(fname, f"{where}.self_calibrate", f"must be true or false, got {selfcal!r}")
    analysis = None
    if raw.get("analysis") is not None:
        try:
            analysis = parse_policy(raw["analysis"])
        except ValueError as exc:
            probs.add(fname, f"{where}.analysis", str(exc))
        if analysis is not None and analysis.event_driven and onvif is None:
            probs.add(
                fname,
                f"{where}.analysis.event_driven",
                "needs an onvif section: the camera's analytics events open the stream",
            )
    if len(probs.items) > n0:
        return None
    return CameraConfig(
        id=str(cid),
        name=raw.get("name"),
        lat=float(raw["lat"]),
        lon=float(raw["lon"]),
        height_m=float(raw["height_m"]),
        heading_deg=float(raw["heading_deg"]),
        tilt_deg=float(raw["tilt_deg"]),
        roll_deg=float(raw.get("roll_deg", 0.0)),
        hfov_deg=float(raw["hfov_deg"]) if "hfov_deg" in raw else None,
        fx=float(raw["fx"]) if "fx" in raw else None,
        fy=float(raw["fy"]) if "fy" in raw else None,
        cx=float(raw["cx"]) if "cx" in raw else None,
        cy=float(raw["cy"]) if "cy" in raw else None,
        image_width=int(raw["image_width"]),
        image_height=int(raw["image_height"]),
        rtsp_url=url,
        onvif=onvif,
        ptz=ptz,
        water_mask=mask,
        structures=structures,
        self_calibrate=bool(selfcal),
        analysis=analysis,
    )


def _check_camera_pose(
    raw: dict, fname: str, where: str, bbox_poly: Polygon | None, probs: _Problems
) -> None:
    """A camera's position (inside the site bbox), height, heading, tilt and roll."""
    lon: Any = raw.get("lon")
    lat: Any = raw.get("lat")
    if _check_lonlat(lon, lat, fname, where, probs) and bbox_poly is not None:
        if not bbox_poly.covers(Point(lon, lat)):
            probs.add(
                fname,
                f"{where}.lon/lat",
                f"camera at lon {lon}, lat {lat} is outside the site bbox {list(bbox_poly.bounds)}",
            )
    h: Any = raw.get("height_m")
    if not _is_number(h) or h <= 0:
        probs.add(fname, f"{where}.height_m", f"must be a positive height in metres, got {h!r}")
    hd: Any = raw.get("heading_deg")
    if not _is_number(hd) or not 0.0 <= hd < 360.0:
        probs.add(fname, f"{where}.heading_deg", f"must be in [0, 360) degrees true, got {hd!r}")
    for key, lim in (("tilt_deg", 90.0), ("roll_deg", 180.0)):
        v = raw.get(key, 0.0 if key == "roll_deg" else None)
        if not _is_number(v) or abs(v) > lim:
            probs.add(
                fname,
                f"{where}.{key}",
                f"must be a number in [-{lim:g}, {lim:g}] degrees, got {v!r}",
            )


def _check_camera_image(raw: dict, fname: str, where: str, probs: _Problems) -> None:
    """A camera's image size and its field of view or intrinsics (one of the two)."""
    for key in ("image_width", "image_height"):
        v = raw.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            probs.add(fname, f"{where}.{key}", f"must be a positive integer (pixels), got {v!r}")
    intr = [k for k in ("fx", "fy", "cx", "cy") if k in raw]
    if "hfov_deg" in raw and intr:
        probs.add(fname, f"{where}.hfov_deg", "give either hfov_deg or fx, fy, cx, cy, not both")
    elif "hfov_deg" in raw:
        v = raw["hfov_deg"]
        if not _is_number(v) or not 0.0 < v < 180.0:
            probs.add(fname, f"{where}.hfov_deg", f"must be in (0, 180) degrees, got {v!r}")
    elif intr:
        for key in ("fx", "fy", "cx", "cy"):
            v = raw.get(key)
            if not _is_number(v) or (key in ("fx", "fy") and v <= 0):
                probs.add(
                    fname,
                    f"{where}.{key}",
                    f"intrinsics need fx, fy > 0 and cx, cy in pixels, got {v!r}",
                )
    else:
        probs.add(fname, f"{where}.hfov_deg", "give hfov_deg or the intrinsics fx, fy, cx, cy")


def _parse_onvif(
    o: Any, fname: str, ow: str, probs: _Problems, require_env: bool
) -> OnvifConfig | None:
    """A camera's ``onvif`` section (``ow``: its field path), or ``None`` when invalid."""
    n_onvif = len(probs.items)
    if not isinstance(o, dict):
        probs.add(fname, ow, "must be a mapping with host, port, user_env, password_env")
        return None
    for key in sorted(set(o) - {"host", "port", "user_env", "password_env"}):
        hint = (
            " (put the secret in an environment variable and name it in user_env/password_env)"
            if key in ("user", "password")
            else ""
        )
        probs.add(fname, f"{ow}.{key}", f"unknown field{hint}")
    if not isinstance(o.get("host"), str) or not o.get("host"):
        probs.add(fname, f"{ow}.host", "missing host")
    port = o.get("port", 80)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        probs.add(fname, f"{ow}.port", f"must be a TCP port, got {port!r}")
    for key in ("user_env", "password_env"):
        name = o.get(key)
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            probs.add(fname, f"{ow}.{key}", f"must name an environment variable, got {name!r}")
        elif require_env and name not in os.environ:
            probs.add(fname, f"{ow}.{key}", f"environment variable {name} is not set")
    if len(probs.items) > n_onvif:
        return None
    return OnvifConfig(str(o["host"]), int(port), o["user_env"], o["password_env"])


def _parse_ptz(p: Any, fname: str, pw: str, probs: _Problems) -> PtzCalibration | None:
    """A camera's ``ptz`` section (``pw``: its field path)."""
    if not isinstance(p, dict):
        probs.add(fname, pw, "must be a mapping with pan, tilt, zoom_hfov")
        return None
    for key in sorted(set(p) - {"pan", "tilt", "zoom_hfov"}):
        probs.add(fname, f"{pw}.{key}", "unknown field")
    pan = _parse_axis(p.get("pan"), fname, f"{pw}.pan", probs)
    tilt = _parse_axis(p.get("tilt"), fname, f"{pw}.tilt", probs)
    table: list[tuple[float, float]] = []
    zh = p.get("zoom_hfov", [])
    if not isinstance(zh, list) or not all(
        isinstance(r, list | tuple) and len(r) == 2 and all(_is_number(x) for x in r) for r in zh
    ):
        probs.add(fname, f"{pw}.zoom_hfov", "must be a list of [zoom, hfov_deg] pairs")
    else:
        table = [(float(a), float(b)) for a, b in zh]
        zs = [a for a, _ in table]
        if any(z2 <= z1 for z1, z2 in zip(zs, zs[1:], strict=False)):
            probs.add(fname, f"{pw}.zoom_hfov", "zoom values must increase")
        if any(not 0.0 < b < 180.0 for _, b in table):
            probs.add(fname, f"{pw}.zoom_hfov", "hfov_deg values must be in (0, 180)")
    return PtzCalibration(pan=pan, tilt=tilt, zoom_hfov=tuple(table))


def _validate(path: Path, require_env: bool) -> tuple[list[str], Site | None]:
    probs = _Problems()
    path = Path(path)
    if not path.is_dir():
        return [f"{path}: -: not a site folder"], None
    doc = _read_yaml(path / "site.yaml", "site.yaml", probs)
    if doc is None:
        return probs.items, None
    if not isinstance(doc, dict):
        probs.add("site.yaml", "-", "must be a mapping")
        return probs.items, None
    for key in sorted(set(doc) - _SITE_KEYS):
        probs.add("site.yaml", key, "unknown field")
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        probs.add("site.yaml", "name", "missing site name")
    tz = _parse_timezone(doc.get("timezone"), probs)
    bbox = _parse_bbox(doc.get("bbox"), probs)
    bbox_poly = box(*bbox) if bbox is not None else None
    land = _parse_land(path, doc.get("land"), bbox_poly, probs)
    zones = _parse_zones(path, doc.get("zones"), bbox_poly, probs)
    cameras = _parse_cameras(path, doc.get("cameras"), bbox_poly, probs, require_env)
    thresholds = _parse_thresholds(doc.get("thresholds"), probs)
    detectors = _parse_detectors(doc.get("detectors"), thresholds, probs)
    if probs.items:
        return probs.items, None
    site = Site(
        path=path.resolve(),
        name=str(name),
        timezone=tz,  # type: ignore[arg-type]
        bbox=bbox,  # type: ignore[arg-type]
        land=land,  # type: ignore[arg-type]
        zones=tuple(zones),
        cameras=cameras,
        thresholds=dict(thresholds),
        description=doc.get("description"),
        detectors=detectors,
    )
    return [], site


def _parse_timezone(tzname: Any, probs: _Problems) -> ZoneInfo | None:
    """``timezone``: an IANA time zone name."""
    if not isinstance(tzname, str) or not tzname:
        probs.add("site.yaml", "timezone", "missing IANA time zone name, e.g. Asia/Shanghai")
        return None
    try:
        return ZoneInfo(tzname)
    except (ZoneInfoNotFoundError, ValueError):
        probs.add("site.yaml", "timezone", f"unknown IANA time zone {tzname!r}")
        return None


def _parse_bbox(bbox: Any, probs: _Problems) -> tuple[float, float, float, float] | None:
    """``bbox``: ``[lon_min, lat_min, lon_max, lat_max]``, degrees."""
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        probs.add(
            "site.yaml", "bbox", f"must be [lon_min, lat_min, lon_max, lat_max], got {bbox!r}"
        )
        return None
    if not (-180 <= bbox[0] < bbox[2] <= 180 and -90 <= bbox[1] < bbox[3] <= 90):
        probs.add(
            "site.yaml",
            "bbox",
            f"needs lon_min < lon_max and lat_min < lat_max in degrees, got {bbox}",
        )
        return None
    x0, y0, x1, y1 = (float(v) for v in bbox)
    return (x0, y0, x1, y1)


def _parse_land(
    path: Path, land_file: Any, bbox_poly: Polygon | None, probs: _Problems
) -> MultiPolygon | None:
    """``land``: the GeoJSON file of land polygons, clipped to the bbox."""
    if not isinstance(land_file, str):
        probs.add("site.yaml", "land", "missing land GeoJSON file name")
        return None
    feats = _read_geojson(path / land_file, land_file, probs)
    polys = []
    for where, _props, geom in feats or []:
        g = _shape(geom, land_file, where, probs)
        if g is None:
            continue
        if g.geom_type not in ("Polygon", "MultiPolygon"):
            probs.add(
                land_file,
                f"{where}.geometry",
                f"land must be Polygon or MultiPolygon, got {g.geom_type}",
            )
            continue
        if _check_polygon(g, land_file, where, probs):
            polys.append(g)
    if feats is not None and not polys and not any(p.startswith(land_file) for p in probs.items):
        probs.add(land_file, "features", "no land polygons")
    if not polys:
        return None
    u = unary_union(polys)
    if bbox_poly is not None:
        if not u.intersects(bbox_poly):
            probs.add(land_file, "features", "no land inside the site bbox")
        u = make_valid(u.intersection(bbox_poly))
    parts = [g for g in getattr(u, "geoms", [u]) if g.geom_type == "Polygon" and not g.is_empty]
    return MultiPolygon(parts)


def _parse_zones(
    path: Path, zones_file: Any, bbox_poly: Polygon | None, probs: _Problems
) -> list[SiteZone]:
    """``zones``: the GeoJSON file of authorised places."""
    if not isinstance(zones_file, str):
        probs.add("site.yaml", "zones", "missing zones GeoJSON file name")
        return []
    zones: list[SiteZone] = []
    feats = _read_geojson(path / zones_file, zones_file, probs)
    seen: set[str] = set()
    for where, props, geom in feats or []:
        n0 = len(probs.items)
        zname = props.get("name")
        if not isinstance(zname, str) or not zname.strip():
            probs.add(zones_file, f"{where}.properties.name", "missing zone name")
        elif zname in seen:
            probs.add(zones_file, f"{where}.properties.name", f"duplicate zone name {zname!r}")
        else:
            seen.add(zname)
            where = f"{where} ({zname})"
        zone = _parse_zone(zname, props, geom, zones_file, where, probs)
        if zone is not None and bbox_poly is not None and not zone.polygon.intersects(bbox_poly):
            probs.add(zones_file, f"{where}.geometry", "zone lies outside the site bbox")
        if zone is not None and len(probs.items) == n0:
            zones.append(zone)
    return zones


def _parse_zone(
    zname: Any, props: dict, geom: Any, zones_file: str, where: str, probs: _Problems
) -> SiteZone | None:
    """One zone feature: its kind and its Polygon, or Point with ``radius_m``."""
    kind = props.get("kind")
    if kind not in ZONE_KINDS:
        probs.add(
            zones_file,
            f"{where}.properties.kind",
            f"unknown zone kind {kind!r} (expected one of {', '.join(ZONE_KINDS)})",
        )
    g = _shape(geom, zones_file, where, probs)
    if g is None:
        return None
    if g.geom_type == "Polygon":
        if _check_polygon(g, zones_file, where, probs):
            return SiteZone(str(zname), str(kind), g, properties=dict(props))
        return None
    if g.geom_type == "Point":
        r = props.get("radius_m")
        if not _is_number(r) or r <= 0:
            probs.add(
                zones_file,
                f"{where}.properties.radius_m",
                f"a Point zone needs a positive radius_m, got {r!r}",
            )
            return None
        return SiteZone(
            str(zname), str(kind), circle_polygon(g.x, g.y, float(r)),
            center_lonlat=(g.x, g.y), radius_m=float(r), properties=dict(props),
        )  # fmt: skip
    probs.add(
        zones_file,
        f"{where}.geometry",
        f"a zone is a Polygon or a Point with radius_m, got {g.geom_type}",
    )
    return None


def _parse_cameras(
    path: Path, cam_file: Any, bbox_poly: Polygon | None, probs: _Problems, require_env: bool
) -> list[CameraConfig]:
    """``cameras``: the optional YAML file of cameras."""
    cameras: list[CameraConfig] = []
    if cam_file is None:
        return cameras
    if not isinstance(cam_file, str):
        probs.add("site.yaml", "cameras", "must name a YAML file")
        return cameras
    raw = _read_yaml(path / cam_file, cam_file, probs)
    if isinstance(raw, dict) and "cameras" in raw:
        raw = raw["cameras"]
    if raw is not None and not isinstance(raw, list):
        probs.add(cam_file, "cameras", "must be a list of cameras")
        return cameras
    ids: set[str] = set()
    for i, r in enumerate(raw or []):
        cam = _parse_camera(r, i, cam_file, bbox_poly, probs, require_env)
        if cam is None:
            continue
        if cam.id in ids:
            probs.add(cam_file, f"cameras[{i}].id", f"duplicate camera id {cam.id!r}")
            continue
        ids.add(cam.id)
        cameras.append(cam)
    return cameras


def _parse_thresholds(thresholds: Any, probs: _Problems) -> dict[str, Any]:
    """``thresholds``: the older form, :class:`~pipeline.core.detectors.Thresholds` fields
    by name (checked in full when the area is built)."""
    if not thresholds:
        return {}
    if not isinstance(thresholds, dict):
        probs.add("site.yaml", "thresholds", "must be a mapping of setting name to value")
        return {}
    for key, val in thresholds.items():
        if not isinstance(key, str):
            probs.add("site.yaml", f"thresholds.{key}", "setting names must be text")
        elif not isinstance(val, int | float | bool | str):
            probs.add(
                "site.yaml", f"thresholds.{key}", f"must be a number, flag or text, got {val!r}"
            )
    return thresholds


def _parse_detectors(
    raw: Any, thresholds: dict[str, Any], probs: _Problems
) -> dict[str, dict[str, Any]]:
    """``detectors``: detector name -> ``enabled`` and its own thresholds by name
    (:class:`~pipeline.core.detectors.DetectorSettings`); a threshold set both here and
    in ``thresholds`` is a problem."""
    problems = detector_settings_problems(raw)
    for fld, message in problems:
        probs.add("site.yaml", fld, message)
    if not isinstance(raw, dict):
        return {}
    for name, settings in raw.items():
        if name not in DETECTORS or not isinstance(settings, dict):
            continue
        for key in settings:
            owned = DETECTORS[name].thresholds.get(key)
            if owned is not None and owned in thresholds:
                probs.add(
                    "site.yaml",
                    f"detectors.{name}.{key}",
                    f"sets {owned}, which thresholds.{owned} sets too: keep one",
                )
    if problems:
        return {}
    return {str(name): dict(settings) for name, settings in raw.items()}


def load_site(path: str | os.PathLike[str], *, require_env: bool = False) -> Site:
    """Load and validate a site folder.

    :param path: the folder holding ``site.yaml``
    :param require_env: also fail when an environment variable named by a camera's
        ``onvif`` section is unset (``site check`` does; replay does not need secrets)
    :raises SiteError: with every problem found, each as ``file: field: message``
    """
    problems, site = _validate(Path(path), require_env)
    if site is None:
        raise SiteError(problems)
    return site


def check_site(path: str | os.PathLike[str], *, require_env: bool = True) -> list[str]:
    """Every problem of a site folder as ``file: field: message`` lines (empty when fine).

    Unlike :func:`load_site`, environment variables named by cameras are checked by default.
    """
    return _validate(Path(path), require_env)[0]


# --------------------------------------------------------------------------- CLI


def cmd_check(args) -> int:
    problems = check_site(args.dir, require_env=not args.no_env)
    if problems:
        for p in problems:
            print(p)
        print(f"{args.dir}: {len(problems)} problem(s)")
        return 1
    site = load_site(args.dir)
    kinds: dict[str, int] = {}
    for z in site.zones:
        kinds[z.kind] = kinds.get(z.kind, 0) + 1
    print(
        f"{site.name}: ok: timezone {site.timezone.key}, bbox {list(site.bbox)}, "
        f"{len(site.land.geoms)} land polygon(s), {len(site.coast_segments())} coast segments, "
        f"{len(site.zones)} zones ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}), "
        f"{len(site.cameras)} camera(s)"
    )
    return 0
