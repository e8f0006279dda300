"""Tests of pipeline.core.geo against known distances, brute force and the real coastline."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core import geo
from pipeline.core.geo import AreaGeometry, Zone

pytestmark = pytest.mark.unit


def test_haversine_known_distances():
    # one degree of latitude on the IUGG mean sphere: pi * R / 180
    assert geo.haversine_m(0, 0, 0, 1) == pytest.approx(np.pi * geo.EARTH_RADIUS_M / 180, rel=1e-12)
    # Haikou (110.3288E 20.0440N) to Hai'an (110.2267E 20.2600N): ~26.3 km across the strait
    d = float(geo.haversine_m(110.3288, 20.0440, 110.2267, 20.2600))
    assert 26_000 < d < 26_800
    # London Heathrow - New York JFK, great circle on the mean sphere ~5,540 km
    d = float(geo.haversine_m(-0.4614, 51.4775, -73.7789, 40.6397))
    assert d == pytest.approx(5_540_000, rel=0.005)


def test_bearing_and_destination_roundtrip():
    lon, lat = geo.destination_point(110.3, 20.0, 45.0, 10_000.0)
    assert float(geo.haversine_m(110.3, 20.0, lon, lat)) == pytest.approx(10_000.0, rel=1e-9)
    assert float(geo.bearing_deg(110.3, 20.0, lon, lat)) == pytest.approx(45.0, abs=1e-6)
    assert float(geo.bearing_deg(0, 0, -1, 0)) == pytest.approx(270.0)


@settings(max_examples=50, deadline=None)
@given(
    st.floats(109.0, 111.0),
    st.floats(19.0, 21.0),
    st.floats(0, 360, exclude_max=True),
    st.floats(1.0, 20_000.0),
)
def test_enu_matches_haversine_locally(lon, lat, brg, dist):
    lon2, lat2 = geo.destination_point(lon, lat, brg, dist)
    e, n = geo.lonlat_to_enu_m(lon2, lat2, lon, lat)
    assert float(np.hypot(e, n)) == pytest.approx(dist, rel=5e-3)
    back = geo.enu_m_to_lonlat(e, n, lon, lat)
    assert float(back[0]) == pytest.approx(float(lon2), abs=1e-9)
    assert float(back[1]) == pytest.approx(float(lat2), abs=1e-9)


def test_point_segment_distance():
    assert float(geo.point_segment_distance_m(0, 1, -1, 0, 1, 0)) == pytest.approx(1.0)
    assert float(geo.point_segment_distance_m(3, 4, 0, 0, 0, 0)) == pytest.approx(5.0)
    assert float(geo.point_segment_distance_m(2, 1, -1, 0, 1, 0)) == pytest.approx(np.sqrt(2))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_points_in_polygon_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(3, 40))
    ang = np.sort(rng.uniform(0, 2 * np.pi, k))
    rad = rng.uniform(0.3, 1.0, k)
    ring = np.column_stack([rad * np.cos(ang), rad * np.sin(ang)])  # star-shaped, simple
    pts = rng.uniform(-1.2, 1.2, (200, 2))
    got = geo.points_in_polygon(pts[:, 0], pts[:, 1], ring)
    # brute force: angle-sum winding number
    v = ring[None, :, :] - pts[:, None, :]
    a = np.arctan2(v[..., 1], v[..., 0])
    da = np.diff(np.concatenate([a, a[:, :1]], axis=1), axis=1)
    da = (da + np.pi) % (2 * np.pi) - np.pi
    want = np.abs(da.sum(axis=1)) > np.pi
    assert np.array_equal(got, want)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000))
def test_coast_distance_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    # a random-walk coastline of n edges near Haikou, with occasional long edges
    steps = rng.normal(0, 0.004, (n, 2)) * np.where(rng.random((n, 1)) < 0.1, 8, 1)
    pts = np.vstack([[110.3, 20.05], 110.3 + 0 * steps])
    pts[1:] = np.array([110.3, 20.05]) + np.cumsum(steps, axis=0)
    segs = np.column_stack([pts[:-1], pts[1:]])
    g = AreaGeometry(name="t", coast_segments=segs)
    q = np.column_stack([rng.uniform(110.1, 110.5, 500), rng.uniform(19.9, 20.2, 500)])
    got = g.coast_distance_m(q[:, 0], q[:, 1])
    e, nn = g.to_enu_m(q[:, 0], q[:, 1])
    s = g._seg_to_enu(segs)
    want = geo.point_segment_distance_m(
        e[:, None], nn[:, None], s[None, :, 0], s[None, :, 1], s[None, :, 2], s[None, :, 3]
    ).min(axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-6)


def test_zones_polygon_and_circle():
    ring = np.array([[110.0, 20.0], [110.01, 20.0], [110.01, 20.01], [110.0, 20.01]])
    zones = (
        Zone("harbour", "port", ring_lonlat=ring),
        Zone("pier", "pier", center_lonlat=(110.05, 20.0), radius_m=100.0),
    )
    g = AreaGeometry(name="t", coast_segments=np.zeros((0, 4)), zones=zones)
    idx, d = g.nearest_zone(np.array([110.005, 110.05, 110.05]), np.array([20.005, 20.002, 20.0]))
    assert idx.tolist() == [0, 1, 1]
    assert d[0] == 0.0 and d[2] == 0.0
    assert d[1] == pytest.approx(0.002 * np.pi * geo.EARTH_RADIUS_M / 180 - 100, abs=1.0)
    assert g.in_authorised_zone(
        np.array([110.005, 110.03]), np.array([20.005, 20.005])
    ).tolist() == [True, False]
    # no coast: infinitely far; empty geometry never fails
    assert np.isinf(g.coast_distance_m([110.0], [20.0])).all()
    empty = AreaGeometry(name="e", coast_segments=np.zeros((0, 4)))
    assert empty.nearest_zone([1.0], [2.0])[0].tolist() == [-1]
    assert empty.on_land([1.0], [2.0]).tolist() == [False]


def test_solar_elevation_against_almanac():
    # Haikou 2024-03-08 04:00 local (UTC+8) = 2024-03-07 20:00Z: deep night
    t = 1709841600000
    assert float(geo.solar_elevation_deg(110.33, 20.04, t)) < -40
    assert bool(geo.is_night(110.33, 20.04, t))
    # Greenwich 2024-06-21 12:00Z: elevation = 90 - 51.4779 + 23.43 ~ 61.96 deg (NOAA calculator 61.95)
    assert float(geo.solar_elevation_deg(0.0, 51.4779, 1718971200000)) == pytest.approx(
        61.95, abs=0.1
    )
    # equator, equinox 2024-03-20 06:07Z on lon 0: sunrise, sun within ~1.5 deg of the horizon
    assert abs(float(geo.solar_elevation_deg(0.0, 0.0, 1710914820000))) < 1.5


def test_real_coastline_hainan(shared):
    data = json.loads((shared / "data/geo/land_hainan_qiongzhou.geojson").read_text())
    rings = []
    for f in data["features"]:
        for poly in f["geometry"]["coordinates"]:
            rings.append(np.asarray(poly[0]))
    g = AreaGeometry.from_rings("haikou", rings, bbox=(110.0, 19.8, 110.8, 20.3))
    assert g.coast_segments.shape[0] > 10
    # Haikou city centre is on land; the middle of the Qiongzhou Strait is not
    land = g.on_land(np.array([110.33, 110.33]), np.array([19.98, 20.15]))
    assert land.tolist() == [True, False]
    d = g.coast_distance_m(np.array([110.33]), np.array([20.15]))
    assert 5_000 < float(d[0]) < 20_000


def test_landfall_along_a_course():
    land = np.array([[110.0, 20.0], [110.3, 20.0], [110.3, 19.9], [110.0, 19.9]])
    g = AreaGeometry.from_rings("t", [land])
    lat0 = 20.0 + 1000 / 111_195  # 1 km north of the shore
    d, lon, lat = g.landfall(
        [110.1, 110.1, 110.1, 110.5], [lat0] * 4, [180.0, 90.0, np.nan, 180.0], 5000.0
    )
    assert d[0] == pytest.approx(1050.0)  # first 50 m sample beyond the shoreline
    assert lat[0] < 20.0 and lon[0] == pytest.approx(110.1)
    assert np.isinf(d[1:]).all() and np.isnan(lon[1:]).all()
