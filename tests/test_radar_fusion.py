"""Radar-AIS association: gating with range-dependent uncertainty, one-to-one assignment,
and dark targets (radar reports no AIS vessel explains)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core import radar as core
from pipeline.core.fusion import VesselArrays
from pipeline.core.geo import bearing_deg, destination_point, haversine_m
from pipeline.core.radar_fusion import RadarArrays, associate_radar, radar_pairs

RADAR_LON, RADAR_LAT = 110.27, 20.032


def scene(seed: int, n: int = 30):
    """n AIS vessels moving 2-20 kn within 15 km of the radar, reported 30 s after their
    last fix with radar noise (25 m range, 0.7 deg bearing), plus 3 dark boats."""
    rng = np.random.default_rng(seed)
    brg0 = rng.uniform(0, 360, n)
    rng0 = rng.uniform(1e3, 15e3, n)
    lon, lat = destination_point(RADAR_LON, RADAR_LAT, brg0, rng0)
    sog, cog = rng.uniform(2, 20, n), rng.uniform(0, 360, n)
    v = VesselArrays.from_lists(np.arange(n) + 412_000_000, np.zeros(n), lon, lat, sog, cog)
    tlon, tlat = destination_point(lon, lat, cog, sog * 1852 / 3600 * 30.0)  # true at 30 s
    dlon, dlat = destination_point(
        RADAR_LON, RADAR_LAT, rng.uniform(0, 360, 3), rng.uniform(3e3, 9e3, 3)
    )
    allon, allat = np.r_[tlon, dlon], np.r_[tlat, dlat]
    b = bearing_deg(RADAR_LON, RADAR_LAT, allon, allat) + rng.normal(0, 0.7, n + 3)
    d = haversine_m(RADAR_LON, RADAR_LAT, allon, allat) + rng.normal(0, 25, n + 3)
    rlon, rlat = core.polar_to_lonlat(RADAR_LON, RADAR_LAT, b, d)
    sig = core.position_sigma_m(d, 25.0, 0.7)
    return v, RadarArrays.from_lists(np.full(n + 3, 30_000), rlon, rlat, sig)


@pytest.mark.unit
def test_every_ais_vessel_is_found_and_the_boats_without_ais_are_dark() -> None:
    for seed in range(5):
        v, r = scene(seed)
        got = associate_radar(v, r)
        n = len(v)
        # ships may pass close to each other; the assignment is one-to-one and nearly all right
        assert np.mean(got[:n] == np.arange(n)) >= 0.9
        assert len(set(got[got >= 0].tolist())) == int(np.sum(got >= 0))
        assert got[n:].tolist() == [-1, -1, -1]


@pytest.mark.unit
def test_the_gate_widens_with_range_and_with_the_age_of_the_fix() -> None:
    v = VesselArrays.from_lists([1], [0], [RADAR_LON], [RADAR_LAT + 0.1], [0.0], [0.0])
    lon, lat = destination_point(RADAR_LON, RADAR_LAT + 0.1, 90.0, 300.0)  # 300 m off
    near = RadarArrays.from_lists([0], lon, lat, [25.0])
    far = RadarArrays.from_lists([0], lon, lat, [180.0])  # same offset, seen from far away
    assert associate_radar(v, near).tolist() == [-1]
    assert associate_radar(v, far).tolist() == [0]
    stale = RadarArrays.from_lists([600_000], lon, lat, [180.0])  # the fix is 10 min old
    assert len(radar_pairs(v, stale).row) == 0


@pytest.mark.unit
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), perm_seed=st.integers(0, 10_000))
def test_association_does_not_depend_on_input_order(seed: int, perm_seed: int) -> None:
    v, r = scene(seed, n=12)
    base = associate_radar(v, r)
    rng = np.random.default_rng(perm_seed)
    pv, pr = rng.permutation(len(v)), rng.permutation(len(r))
    r2 = RadarArrays(r.t_ms[pr], r.lon_deg[pr], r.lat_deg[pr], r.sigma_m[pr])
    got = associate_radar(v.take(pv), r2)
    # map back: report pr[j] got vessel pv[got[j]]
    back = np.full(len(r), -1)
    back[pr] = np.where(got >= 0, pv[np.maximum(got, 0)], -1)
    assert back.tolist() == base.tolist()


def _ferry_and_skiff():
    """A ferry with AIS 7 km north of the radar, 14 kn on 164 deg, its fix 2 s before the
    scan; in the scan its own report and a skiff's 250 m west of it (inside the gate at
    that range, sigma ~90 m)."""
    flon, flat = destination_point(RADAR_LON, RADAR_LAT, 0.0, 7000.0)
    v = VesselArrays.from_lists([413_446_585], [0], [flon], [flat], [14.0], [164.0])
    on = destination_point(flon, flat, 164.0, 14.0 * 1852 / 3600 * 2.0)
    slon, slat = destination_point(on[0], on[1], 270.0, 250.0)
    sig = float(core.position_sigma_m(7000.0, 25.0, 0.7))
    return v, (float(on[0]), float(on[1])), (float(slon), float(slat)), sig


@pytest.mark.unit
def test_a_vessel_explains_one_report_of_a_scan_not_the_boat_beside_it() -> None:
    v, ferry, skiff, sig = _ferry_and_skiff()
    alone = RadarArrays.from_lists([2000], [skiff[0]], [skiff[1]], [sig])
    assert associate_radar(v, alone).tolist() == [0]  # on its own, the ferry would explain it
    scan = RadarArrays.from_lists([2000, 2000], [skiff[0], ferry[0]], [skiff[1], ferry[1]],
                                  [sig, sig])  # fmt: skip
    assert associate_radar(v, scan).tolist() == [-1, 0]


@pytest.mark.unit
def test_a_report_moving_otherwise_than_the_vessel_is_not_that_vessel() -> None:
    v, _, skiff, sig = _ferry_and_skiff()

    def owner(speed_kn, course_deg):
        r = RadarArrays.from_lists([2000], [skiff[0]], [skiff[1]], [sig], [speed_kn], [course_deg])
        return int(associate_radar(v, r)[0])

    assert owner(25.0, 220.0) == -1  # the skiff's tracked course and speed: not the ferry
    assert owner(14.5, 160.0) == 0  # moving as the ferry does
    assert owner(17.0, 185.0) == 0  # within the gate: 5 kn + 35 % of the faster speed
    assert owner(None, None) == 0  # no course and speed (TLL, or still acquiring): no gate
    # a vessel at rest with no COG counts as still: a report at rest is it, one at 20 kn not
    still = VesselArrays.from_lists([1], [0], [skiff[0]], [skiff[1]], [0.1], [np.nan])
    at = lambda s, c: RadarArrays.from_lists([0], [skiff[0]], [skiff[1]], [sig], [s], [c])  # noqa: E731
    assert associate_radar(still, at(0.3, 90.0)).tolist() == [0]
    assert associate_radar(still, at(20.0, 90.0)).tolist() == [-1]
