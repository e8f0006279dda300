"""Build the Haikou site's geometry from the shared geographic data.

Run from the repository root::

    .venv/bin/python sites/haikou/build.py [--data ../shared/data/geo]

It reads ``land_hainan_qiongzhou.geojson`` (Natural Earth 1:10m, public domain) and
``ports_hainan_qiongzhou.geojson`` (NGA World Port Index, public domain; GeoNames,
CC BY 4.0) and writes, next to this script:

- ``land.geojson``: the land clipped to the site bbox;
- ``zones.geojson``: the authorised zones. The Natural Earth coastline is a few hundred
  metres to a few kilometres off at this scale, so a port zone covers both the port's
  listed point and the nearest point of the coastline (the convex hull of two circles);
- ``cameras.yaml``: shoreline cameras placed a little inland of a coastline point,
  looking along the outward normal of the coast unless a heading is given.

The output is deterministic: running it twice gives the same files.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from shapely.geometry import MultiPolygon, Point, Polygon, box, mapping, shape
from shapely.ops import nearest_points, unary_union

HERE = Path(__file__).resolve().parent
BBOX = (110.05, 19.85, 110.75, 20.32)
EARTH_RADIUS_M = 6_371_008.8

LAND_ATTR = "Natural Earth 1:10m admin-0 countries v5.1.1 (public domain)"
WPI_ATTR = "NGA World Port Index (US public domain)"
GEONAMES_ATTR = "GeoNames (CC BY 4.0, geonames.org)"

# (zone name, kind, source port name in the ports file or None, lon, lat, radius_m)
PORT_ZONES = [
    ("Haikou Xiuying Port", "port", "Haikou Xiuying Gang", None, None, 900.0),
    ("Haikou New Port", "port", "Haikou New Port", None, None, 900.0),
    ("Baishamen", "fishing_harbour", "Baishamen Gang", None, None, 700.0),
    ("Macun / Haikou Port", "port", "Haikou Port", None, None, 1200.0),
    # Not in the ports file: approximate positions of the Qiongzhou Strait ferry
    # terminals on the Leizhou (Guangdong) side, placed on the Natural Earth coast.
    ("Hai'an New Port", "port", None, 110.222, 20.272, 900.0),
    ("Xuwen Port", "port", None, 110.140, 20.252, 900.0),
]

# Haikou outer anchorage, north of Xiuying in the strait (lon, lat).
ANCHORAGE = [
    (110.195, 20.082),
    (110.275, 20.082),
    (110.285, 20.115),
    (110.205, 20.118),
]

# (id, name, coast anchor lon, lat, heading_deg or None for the coast normal, hfov_deg, height_m)
# Beach cameras look obliquely along the shore (that is where boats come ashore); the
# Xiuying camera looks straight out over the port approach.
CAMERAS = [
    ("hk-west-01", "West coast, Changliu", 110.135, 20.03, 240.0, 80.0, 18.0),
    ("hk-holiday-01", "Holiday Beach", 110.235, 20.040, 338.0, 80.0, 20.0),
    ("hk-xiuying-01", "Xiuying port approach", 110.27, 20.033, None, 60.0, 25.0),
    ("hk-nandu-01", "Nandu river mouth", 110.355, 20.055, 82.0, 80.0, 20.0),
    ("hk-xinbu-01", "Xinbu Island", 110.378, 20.075, 254.0, 80.0, 20.0),
    ("hk-east-01", "East shore, Lingshan", 110.47, 20.03, 69.0, 80.0, 18.0),
]
CAMERA_INLAND_M = 60.0
# Every camera is a PTZ dome on the site's network; here its ONVIF service is a local test
# device (tests/peers/onvif_device.py --port 8001 ...), one port per camera in CAMERAS order.
ONVIF_HOST = "127.0.0.1"
ONVIF_FIRST_PORT = 8001
# Hikvision-style calibration: pan = 179.87 p + 179.95 degrees from heading_deg (the full
# circle), tilt = 45 - 45 t degrees below the horizontal (t = 1 level, t = -1 straight
# down); a 30x zoom from the camera's own hfov_deg at the wide end to 2.6 degrees.
PTZ_PAN = (179.87, 179.95)
PTZ_TILT = (-45.0, 45.0)
PTZ_ZOOM = ((0.25, 24.0), (0.5, 10.0), (0.75, 5.0), (1.0, 2.6))


def _k(lat: float) -> tuple[float, float]:
    """Metres per degree of lon and lat at a latitude."""
    ky = math.pi / 180.0 * EARTH_RADIUS_M
    return ky * math.cos(math.radians(lat)), ky


def circle(lon: float, lat: float, r_m: float, n: int = 32) -> Polygon:
    kx, ky = _k(lat)
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return Polygon(np.column_stack([lon + r_m * np.sin(a) / kx, lat + r_m * np.cos(a) / ky]))


def rounded(geom):
    """The geometry with coordinates rounded to 1e-6 degree (about 0.1 m)."""
    return json.loads(json.dumps(mapping(geom)), parse_float=lambda s: round(float(s), 6))


def build(data: Path, out: Path) -> None:
    land_doc = json.loads((data / "land_hainan_qiongzhou.geojson").read_text())
    ports_doc = json.loads((data / "ports_hainan_qiongzhou.geojson").read_text())
    bb = box(*BBOX)
    land = unary_union([shape(f["geometry"]) for f in land_doc["features"]]).intersection(bb)
    polys = [g for g in getattr(land, "geoms", [land]) if g.geom_type == "Polygon"]
    land = MultiPolygon(sorted(polys, key=lambda p: -p.area))
    coast = land.boundary.difference(bb.exterior.buffer(1e-7))

    land_out = {
        "type": "FeatureCollection",
        "name": "haikou_land",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": "land", "source": f"{LAND_ATTR}, clipped to {list(BBOX)}"},
                "geometry": rounded(land),
            }
        ],
    }

    ports = {f["properties"]["name"]: f for f in ports_doc["features"]}
    feats = []
    for zname, kind, src, lon, lat, r in PORT_ZONES:
        if src is not None:
            pf = ports[src]
            lon, lat = pf["geometry"]["coordinates"]
            source = pf["properties"]["source"]
            note = f"{src} ({source}) and the nearest Natural Earth coastline point"
        else:
            source = "approximate; placed on the Natural Earth coastline"
            note = source
        c = nearest_points(Point(lon, lat), coast)[1]
        poly = unary_union([circle(lon, lat, r), circle(c.x, c.y, r)]).convex_hull
        feats.append(
            {
                "type": "Feature",
                "properties": {"name": zname, "kind": kind, "source": note},
                "geometry": rounded(poly),
            }
        )
    anch = Polygon(ANCHORAGE)
    assert not anch.intersects(land), "anchorage overlaps land"
    feats.append(
        {
            "type": "Feature",
            "properties": {
                "name": "Haikou Outer Anchorage",
                "kind": "anchorage",
                "source": "approximate, drawn in open water north of Xiuying",
            },
            "geometry": rounded(Polygon(ANCHORAGE + ANCHORAGE[:1])),
        }
    )
    zones_out = {"type": "FeatureCollection", "name": "haikou_zones", "features": feats}

    lines = [
        "# Shoreline cameras of the Haikou site, generated by build.py (edit CAMERAS there).",
        "# Positions are 60 m inland of the Natural Earth coastline; beach cameras look along the shore.",
        "# tilt_deg: below the horizontal, positive looks down. Credentials are never stored here: an onvif",
        "# section names the environment variables that hold them (HK_CAM_USER, HK_CAM_PASSWORD).",
        "# onvif: local ONVIF test devices (tests/peers/onvif_device.py --port 8001 ...), one per camera;",
        "# a deployment points them at the cameras, e.g. {host: 10.0.0.21, port: 80, ...}.",
        "# ptz: the domes' calibration (pipeline/core/ptz.py): pan from heading_deg, tilt below the",
        "# horizontal, the field of view at each zoom; the cue service steers them (docs/radar.md).",
        "cameras:",
    ]
    for i, (cid, cname, alon, alat, heading, hfov, height) in enumerate(CAMERAS):
        cp = nearest_points(Point(alon, alat), coast)[1]
        kx, ky = _k(cp.y)
        # outward normal: from the land side to the sea side, probed 200 m either way
        seg_d = 1e-4
        t = np.array([0.0, 0.0])
        for g in getattr(coast, "geoms", [coast]):
            if g.distance(cp) < 1e-9:
                s = g.project(cp)
                a, b = g.interpolate(max(0, s - seg_d)), g.interpolate(min(g.length, s + seg_d))
                t = np.array([(b.x - a.x) * kx, (b.y - a.y) * ky])
                break
        t /= np.linalg.norm(t)
        n = np.array([t[1], -t[0]])
        probe = Point(cp.x + n[0] * 200 / kx, cp.y + n[1] * 200 / ky)
        if land.covers(probe):
            n = -n
        lon = cp.x - n[0] * CAMERA_INLAND_M / kx
        lat = cp.y - n[1] * CAMERA_INLAND_M / ky
        assert land.covers(Point(lon, lat)), cid
        hd = heading if heading is not None else math.degrees(math.atan2(n[0], n[1])) % 360.0
        lines += [
            f"  - id: {cid}",
            f"    name: {cname}",
            f"    lon: {lon:.6f}",
            f"    lat: {lat:.6f}",
            f"    height_m: {height:.1f}",
            f"    heading_deg: {hd:.1f}",
            "    tilt_deg: 3.0",
            f"    hfov_deg: {hfov:.1f}",
            "    image_width: 1920",
            "    image_height: 1080",
            f"    rtsp_url: rtsp://127.0.0.1:8554/{cid}",
            f"    onvif: {{host: {ONVIF_HOST}, port: {ONVIF_FIRST_PORT + i}, "
            "user_env: HK_CAM_USER, password_env: HK_CAM_PASSWORD}",
            "    ptz:",
            f"      pan: {{scale_deg: {PTZ_PAN[0]}, offset_deg: {PTZ_PAN[1]}}}",
            f"      tilt: {{scale_deg: {PTZ_TILT[0]}, offset_deg: {PTZ_TILT[1]}}}",
            "      zoom_hfov: ["
            + ", ".join(f"[{z}, {h}]" for z, h in ((0.0, hfov), *PTZ_ZOOM))
            + "]",
        ]
    (out / "land.geojson").write_text(json.dumps(land_out, separators=(",", ":")) + "\n")
    (out / "zones.geojson").write_text(json.dumps(zones_out, indent=1) + "\n")
    (out / "cameras.yaml").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=HERE.parents[2] / "shared" / "data" / "geo")
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args()
    build(args.data, args.out)
    print(f"wrote {args.out}/land.geojson, zones.geojson, cameras.yaml")


if __name__ == "__main__":
    main()
