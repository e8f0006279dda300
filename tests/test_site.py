"""Site folders: loading, validation messages, the Haikou site."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.cli import main
from pipeline.errors import ConfigError, SiteError
from pipeline.site import check_site, load_site, read_structures

HAIKOU = Path(__file__).resolve().parents[1] / "sites" / "haikou"


@pytest.fixture(autouse=True)
def _camera_credentials(monkeypatch) -> None:
    """The Haikou cameras' ONVIF sections name these; ``site check`` wants them set."""
    monkeypatch.setenv("HK_CAM_USER", "operator")
    monkeypatch.setenv("HK_CAM_PASSWORD", "secret")


@pytest.fixture
def site_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "haikou"
    shutil.copytree(HAIKOU, dst, ignore=shutil.ignore_patterns("build.py", "__pycache__"))
    return dst


def _edit_yaml(path: Path, fn) -> None:
    doc = yaml.safe_load(path.read_text())
    fn(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _edit_json(path: Path, fn) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.unit
def test_haikou_site_is_valid() -> None:
    assert check_site(HAIKOU) == []
    site = load_site(HAIKOU)
    assert site.name == "haikou"
    assert site.timezone.key == "Asia/Shanghai"
    assert site.bbox == (110.05, 19.85, 110.75, 20.32)
    names = {z.name: z.kind for z in site.zones}
    for wanted in ("Haikou Xiuying Port", "Haikou New Port", "Baishamen", "Macun / Haikou Port"):
        assert wanted in names
    assert "anchorage" in names.values()
    assert len(site.cameras) >= 4
    # every camera is a calibrated PTZ dome the cue service can steer (a local test device)
    ports = set()
    for cam in site.cameras:
        assert cam.onvif is not None and cam.onvif.host == "127.0.0.1", cam.id
        assert (cam.onvif.user_env, cam.onvif.password_env) == ("HK_CAM_USER", "HK_CAM_PASSWORD")
        ports.add(cam.onvif.port)
        assert cam.ptz is not None and cam.ptz.pan is not None and cam.ptz.tilt is not None
        assert cam.ptz.hfov_deg(0.0) == pytest.approx(cam.hfov_deg)
        assert cam.ptz.hfov_deg(1.0) < 5.0
    assert len(ports) == len(site.cameras)


@pytest.mark.unit
def test_haikou_ports_and_cameras_match_the_real_data(shared: Path) -> None:
    site = load_site(HAIKOU)
    ports = json.loads((shared / "data/geo/ports_hainan_qiongzhou.geojson").read_text())
    by_name = {f["properties"]["name"]: f["geometry"]["coordinates"] for f in ports["features"]}
    for zone, src in (
        ("Haikou Xiuying Port", "Haikou Xiuying Gang"),
        ("Haikou New Port", "Haikou New Port"),
        ("Baishamen", "Baishamen Gang"),
        ("Macun / Haikou Port", "Haikou Port"),
    ):
        lon, lat = by_name[src]
        assert site.zone_at(lon, lat) is not None, zone
        assert site.zone_at(lon, lat).name in (zone, "Haikou Xiuying Port", "Haikou New Port")
        # every port zone reaches the coastline
        z = next(z for z in site.zones if z.name == zone)
        assert z.polygon.intersects(site.land.boundary)
    anchorage = next(z for z in site.zones if z.kind == "anchorage")
    assert not anchorage.polygon.intersects(site.land)
    coast = site.land.boundary
    for cam in site.cameras:
        assert site.on_land(cam.lon, cam.lat), cam.id
        assert coast.distance(__import__("shapely").Point(cam.lon, cam.lat)) < 0.002  # ~200 m
        assert cam.image_width == 1920 and cam.image_height == 1080


@pytest.mark.unit
def test_geometry_coast_segments_exclude_bbox_edges() -> None:
    site = load_site(HAIKOU)
    seg = site.coast_segments()
    assert seg.shape[1] == 4 and len(seg) > 50
    lon0, lat0, lon1, lat1 = site.bbox
    on_border = (
        np.isclose(seg[:, 0], seg[:, 2], rtol=0, atol=1e-9) & np.isin(seg[:, 0], [lon0, lon1])
    ) | (np.isclose(seg[:, 1], seg[:, 3], rtol=0, atol=1e-9) & np.isin(seg[:, 1], [lat0, lat1]))
    assert not on_border.any()


@pytest.mark.unit
def test_broken_site_reports_every_problem(site_copy: Path, monkeypatch) -> None:
    monkeypatch.delenv("HK_CAM_USER", raising=False)
    monkeypatch.delenv("HK_CAM_PASSWORD", raising=False)

    def site_yaml(doc):
        doc["timezone"] = "Asia/Haikou"

    def cameras(doc):
        for cam in doc["cameras"]:
            cam.pop("onvif", None)
        doc["cameras"][0]["lon"] = 111.5
        doc["cameras"][1]["onvif"] = {
            "host": "10.0.0.2",
            "port": 80,
            "user_env": "HK_CAM_USER",
            "password_env": "HK_CAM_PASSWORD",
        }
        doc["cameras"][2]["hfov_deg"] = 250

    def zones(doc):
        doc["features"][0]["properties"]["kind"] = "harbor"
        doc["features"][1]["geometry"] = {
            "type": "Polygon",
            "coordinates": [
                [[110.2, 20.1], [110.3, 20.2], [110.3, 20.1], [110.2, 20.2], [110.2, 20.1]]
            ],
        }
        del doc["features"][2]["properties"]["name"]

    _edit_yaml(site_copy / "site.yaml", site_yaml)
    _edit_yaml(site_copy / "cameras.yaml", cameras)
    _edit_json(site_copy / "zones.geojson", zones)
    (site_copy / "land.geojson").write_text('{"type": "FeatureCollection", "features": [')

    problems = check_site(site_copy)
    text = "\n".join(problems)
    assert "site.yaml: timezone: unknown IANA time zone 'Asia/Haikou'" in problems
    assert any(p.startswith("land.geojson: -: not valid JSON") for p in problems)
    assert (
        "zones.geojson: features[0] (Haikou Xiuying Port).properties.kind: unknown zone kind 'harbor' "
        "(expected one of port, pier, anchorage, shipyard, fishing_harbour)" in problems
    )
    assert any(
        p.startswith(
            "zones.geojson: features[1] (Haikou New Port).geometry: self-intersecting polygon"
        )
        for p in problems
    )
    assert "zones.geojson: features[2].properties.name: missing zone name" in problems
    assert any(
        p.startswith("cameras.yaml: cameras[0] (hk-west-01).lon/lat: camera at lon 111.5")
        and "outside the site bbox" in p
        for p in problems
    )
    assert (
        "cameras.yaml: cameras[1] (hk-holiday-01).onvif.user_env: environment variable HK_CAM_USER is not set"
        in problems
    )
    assert (
        "cameras.yaml: cameras[1] (hk-holiday-01).onvif.password_env: environment variable HK_CAM_PASSWORD is not set"
        in problems
    )
    assert (
        "cameras.yaml: cameras[2] (hk-xiuying-01).hfov_deg: must be in (0, 180) degrees, got 250"
        in problems
    )
    assert len(problems) == 9, text

    with pytest.raises(SiteError) as err:
        load_site(site_copy)
    # load_site does not need the secrets; every other problem is still there
    assert len(err.value.problems) == 7


@pytest.mark.unit
def test_more_bad_inputs(site_copy: Path) -> None:
    def site_yaml(doc):
        doc["bbox"] = [110.75, 19.85, 110.05, 20.32]
        doc["headng"] = 3
        doc["thresholds"] = [1, 2]

    def cameras(doc):
        cam = doc["cameras"][0]
        cam.update(fx=1000.0, fy=1000.0, cx=960.0, cy=540.0)  # both hfov and intrinsics
        doc["cameras"][1]["water_mask"] = [[0, 0], [1920, 1080], [1920, 0], [0, 1080]]
        doc["cameras"][2]["id"] = doc["cameras"][3]["id"]
        doc["cameras"][4]["onvif"] = {"host": "h", "user": "admin", "password": "x"}

    def land(doc):
        doc["features"].append(
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Point", "coordinates": [110.3, 20.0]},
            }
        )

    _edit_yaml(site_copy / "site.yaml", site_yaml)
    _edit_yaml(site_copy / "cameras.yaml", cameras)
    _edit_json(site_copy / "land.geojson", land)
    problems = check_site(site_copy)
    text = "\n".join(problems)
    assert any(p.startswith("site.yaml: bbox: needs lon_min < lon_max") for p in problems), text
    assert "site.yaml: headng: unknown field" in problems
    assert "site.yaml: thresholds: must be a mapping of setting name to value" in problems
    assert (
        "cameras.yaml: cameras[0] (hk-west-01).hfov_deg: give either hfov_deg or fx, fy, cx, cy, not both"
        in problems
    )
    assert any(
        p.startswith("cameras.yaml: cameras[1] (hk-holiday-01).water_mask: self-intersecting")
        for p in problems
    )
    assert "cameras.yaml: cameras[3].id: duplicate camera id 'hk-nandu-01'" in problems
    assert any(
        "onvif.password: unknown field (put the secret in an environment variable" in p
        for p in problems
    )
    assert (
        "land.geojson: features[1].geometry: land must be Polygon or MultiPolygon, got Point"
        in problems
    )


@pytest.mark.unit
def test_camera_config_credentials_and_ptz(site_copy: Path, monkeypatch) -> None:
    def cameras(doc):
        doc["cameras"][0]["onvif"] = {
            "host": "10.0.0.2",
            "port": 8000,
            "user_env": "SW_U",
            "password_env": "SW_P",
        }
        doc["cameras"][0]["ptz"] = {
            "pan": {"scale_deg": 179.87, "offset_deg": 179.95},
            "tilt": {"scale_deg": -45.0, "offset_deg": 45.0},
            "zoom_hfov": [[0.0, 60.0], [1.0, 3.0]],
        }

    _edit_yaml(site_copy / "cameras.yaml", cameras)
    monkeypatch.delenv("SW_U", raising=False)
    monkeypatch.setenv("SW_P", "secret")
    site = load_site(site_copy)
    cam = site.camera("hk-west-01")
    with pytest.raises(ConfigError, match="SW_U"):
        cam.credentials()
    monkeypatch.setenv("SW_U", "operator")
    assert cam.credentials() == ("operator", "secret")
    assert cam.ptz.pan.to_deg(0.5) == pytest.approx(269.885)
    assert cam.ptz.hfov_deg(0.5) == pytest.approx(31.5)
    assert check_site(site_copy) == []


@pytest.mark.unit
def test_point_zone_with_radius(site_copy: Path) -> None:
    def zones(doc):
        doc["features"].append(
            {
                "type": "Feature",
                "properties": {"name": "Test pier", "kind": "pier", "radius_m": 300},
                "geometry": {"type": "Point", "coordinates": [110.40, 20.05]},
            }
        )
        doc["features"].append(
            {
                "type": "Feature",
                "properties": {"name": "No radius", "kind": "pier"},
                "geometry": {"type": "Point", "coordinates": [110.41, 20.05]},
            }
        )

    _edit_json(site_copy / "zones.geojson", zones)
    assert check_site(site_copy) == [
        "zones.geojson: features[8] (No radius).properties.radius_m: a Point zone needs a positive radius_m, got None"
    ]


@pytest.mark.unit
def test_site_check_command(site_copy: Path, capsys) -> None:
    assert main(["site", "check", str(HAIKOU)]) == 0
    assert "haikou: ok" in capsys.readouterr().out
    _edit_yaml(site_copy / "site.yaml", lambda d: d.update(timezone="Mars/Olympus"))
    assert main(["site", "check", str(site_copy)]) == 1
    out = capsys.readouterr().out
    assert "site.yaml: timezone: unknown IANA time zone 'Mars/Olympus'" in out


@pytest.mark.unit
def test_geometry_for_the_core() -> None:
    site = load_site(HAIKOU)
    geom = site.geometry()
    assert geom.name == "haikou"
    assert geom.coast_segments.shape == site.coast_segments().shape
    assert len(geom.land_rings) == len(site.land.geoms)
    assert [z.name for z in geom.zones] == [z.name for z in site.zones]
    anchorage = next(z for z in geom.zones if z.kind == "anchorage")
    assert anchorage.ring_lonlat.shape[1] == 2 and anchorage.radius_m is None


@pytest.mark.unit
def test_camera_self_calibrate_flag(site_copy: Path) -> None:
    def cameras(doc):
        doc["cameras"][0]["self_calibrate"] = True
        doc["cameras"][1]["self_calibrate"] = "yes"

    _edit_yaml(site_copy / "cameras.yaml", cameras)
    problems = check_site(site_copy, require_env=False)
    assert problems == [
        "cameras.yaml: cameras[1] (hk-holiday-01).self_calibrate: must be true or false, got 'yes'"
    ]

    def fix(doc):
        doc["cameras"][1].pop("self_calibrate")

    _edit_yaml(site_copy / "cameras.yaml", fix)
    site = load_site(site_copy)
    assert site.camera("hk-west-01").self_calibrate is True
    assert site.camera("hk-holiday-01").self_calibrate is False


@pytest.mark.unit
def test_camera_structures_are_parsed_and_their_errors_named(site_copy: Path, tmp_path) -> None:
    bridge = {"name": "bridge", "polygon": [[0, 400], [1920, 400], [1920, 430], [0, 430]]}

    def good(doc):
        doc["cameras"][0]["structures"] = [bridge]

    _edit_yaml(site_copy / "cameras.yaml", good)
    cam = load_site(site_copy).cameras[0]
    assert [s.name for s in cam.structures] == ["bridge"]
    assert cam.structures[0].polygon_px[2] == (1920.0, 430.0)

    def bad(doc):
        doc["cameras"][0]["structures"] = [
            {"name": "", "polygon": bridge["polygon"]},
            {"name": "pier", "polygon": [[0, 0], [10, 10]]},
            {"name": "tower", "polygon": [[0, 0], [5000, 0], [5000, 10]]},
            {"name": "x", "polygon": bridge["polygon"], "height_m": 3},
        ]
        doc["cameras"][1]["structures"] = {"name": "bridge"}

    _edit_yaml(site_copy / "cameras.yaml", bad)
    problems = check_site(site_copy)
    where = "cameras.yaml: cameras[0] (hk-west-01).structures"
    assert f"{where}[0].name: must be a non-empty string" in problems
    assert f"{where}[1].polygon: must be a list of at least 3 [x_px, y_px] points" in problems
    assert any(p.startswith(f"{where}[2].polygon: points must lie inside the") for p in problems)
    assert f"{where}[3]: must be a mapping with keys name and polygon only" in problems
    assert (
        "cameras.yaml: cameras[1] (hk-holiday-01).structures: must be a list of {name, polygon} entries"
        in problems
    )

    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({"image_width": 888, "image_height": 500, "structures": [bridge]}))
    with pytest.raises(ConfigError, match="points must lie inside the 888x500 image"):
        read_structures(f)
    f.write_text(yaml.safe_dump({"image_width": 1920, "structures": []}))
    with pytest.raises(ConfigError) as err:
        read_structures(f)
    assert "image_width/image_height: must be positive integers" in str(err.value)
    assert "structures: must list at least one structure" in str(err.value)
    f.write_text(
        yaml.safe_dump({"image_width": 1920, "image_height": 1080, "structures": [bridge]})
    )
    outlines, w, h = read_structures(f)
    assert (w, h) == (1920, 1080) and outlines[0].name == "bridge"


@pytest.mark.unit
def test_the_clip_structures_file_is_valid() -> None:
    outlines, w, h = read_structures(HAIKOU.parent / "clips" / "clip-01.structures.yaml")
    assert (w, h) == (888, 500) and len(outlines) == 2


@pytest.mark.unit
def test_haikou_cameras_can_be_cued() -> None:
    """The cue service takes every Haikou camera (ONVIF and PTZ); an alert 3 km off the
    Xiuying port approach goes to the Xiuying camera, turned 10 degrees right, zoomed in."""
    from pipeline.core.geo import destination_point
    from pipeline.core.ptz import PtzModel
    from pipeline.cue.arbiter import Arbiter, CueRequest

    site = load_site(HAIKOU)
    cams = [c for c in site.cameras if c.onvif is not None and c.ptz is not None]
    assert len(cams) == len(site.cameras) == 6
    arb = Arbiter()
    for c in cams:
        arb.add(c.id, PtzModel.from_camera(c))
    xy = site.camera("hk-xiuying-01")
    lon, lat = destination_point(xy.lon, xy.lat, xy.heading_deg + 10.0, 3000.0)
    d = arb.decide(CueRequest("a1", 60, float(lon), float(lat), t_ms=0), 0)
    assert d.camera_id == "hk-xiuying-01" and d.reason == "free"
    assert xy.ptz.pan.to_deg(d.pan) == pytest.approx(10.0, abs=0.1)
    assert d.range_m == pytest.approx(3000.0, rel=0.01)
    assert d.zoom > 0.5
