"""Online pose self-calibration from AIS (PoseCalibrator), on synthetic cameras."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.camera import (
    CameraModel,
    PoseCalibrator,
    SelfCalConfig,
    enu_from_geo,
    geo_from_enu,
    refine_pose,
)

LON0, LAT0 = 110.35, 20.05
TRUE = CameraModel.from_hfov(
    lon_deg=LON0,
    lat_deg=LAT0,
    height_m=25.0,
    heading_deg=30.0,
    tilt_deg=3.0,
    hfov_deg=60.0,
    image_width=1280,
    image_height=720,
)
# what the installer wrote down: heading 3 degrees off, tilt 1 degree off, height 30 % low
INSTALLED = replace(TRUE, heading_deg=33.0, tilt_deg=2.0, height_m=17.5)

# vessels seen by the camera: (bearing deg, range m, speed m/s, course deg)
MOVING = [(22.0, 700.0, 4.0, 120.0), (35.0, 1500.0, 5.0, 300.0), (44.0, 2600.0, 6.0, 200.0)]


def _at(bearing_deg: float, range_m: float) -> tuple[float, float]:
    b = math.radians(bearing_deg)
    lon, lat = geo_from_enu(
        LON0, LAT0, np.array(range_m * math.sin(b)), np.array(range_m * math.cos(b))
    )
    return float(lon), float(lat)


def _scene(
    n_frames: int,
    *,
    vessels=MOVING,
    clutter: int = 0,
    unseen_ais: int = 0,
    wrong_ais_m: float = 0.0,
    truth: CameraModel = TRUE,
    seed: int = 0,
):
    """Frames ``(t_ms, u, v, lon, lat, mmsi)`` of a synthetic scene seen by ``truth``.

    :param clutter: fixed false detections (structures) just below the horizon
    :param unseen_ais: moored AIS vessels in view that the detector never sees
    :param wrong_ais_m: one extra vessel whose AIS position is this far from where it is
    """
    rng = np.random.default_rng(seed)
    clutter_uv = np.stack(
        [
            rng.uniform(100, 1180, clutter),
            truth.horizon_v(np.zeros(1))[0] + rng.uniform(3, 20, clutter),
        ],
        -1,
    )
    moored = [
        _at(float(b), float(r))
        for b, r in zip(
            rng.uniform(18, 42, unseen_ais), rng.uniform(500, 3000, unseen_ais), strict=True
        )
    ]
    frames = []
    for k in range(n_frames):
        t_s = float(k)
        lon, lat, mmsi, seen_lon, seen_lat = [], [], [], [], []
        for n, (b, r, sp, course) in enumerate(vessels):
            e0, n0 = r * math.sin(math.radians(b)), r * math.cos(math.radians(b))
            e = e0 + sp * t_s * math.sin(math.radians(course))
            nn = n0 + sp * t_s * math.cos(math.radians(course))
            lo, la = geo_from_enu(LON0, LAT0, np.array(e), np.array(nn))
            lon.append(float(lo))
            lat.append(float(la))
            mmsi.append(412000001 + n)
            seen_lon.append(float(lo))
            seen_lat.append(float(la))
        if wrong_ais_m:
            # a vessel at 30 deg, 1,000 m whose AIS says it is wrong_ais_m further north-east
            lo, la = _at(30.0, 1000.0)
            seen_lon.append(lo)
            seen_lat.append(la)
            e, nn = enu_from_geo(LON0, LAT0, np.array(lo), np.array(la))
            d = wrong_ais_m / math.sqrt(2.0)
            lo2, la2 = geo_from_enu(LON0, LAT0, e + d, nn + d)
            lon.append(float(lo2))
            lat.append(float(la2))
            mmsi.append(412000099)
        for n, (lo, la) in enumerate(moored):
            lon.append(lo)
            lat.append(la)
            mmsi.append(413000000 + n)
        u, v, vis = truth.geo_to_pixel(np.array(seen_lon), np.array(seen_lat))
        u, v = u[vis] + rng.normal(0, 1.5, vis.sum()), v[vis] + rng.normal(0, 1.0, vis.sum())
        u = np.concatenate([u, clutter_uv[:, 0]])
        v = np.concatenate([v, clutter_uv[:, 1]])
        frames.append(
            (1_700_000_000_000 + k * 1000, u, v, np.array(lon), np.array(lat), np.array(mmsi))
        )
    return frames


def _run(frames, installed: CameraModel = INSTALLED, config: SelfCalConfig | None = None):
    cal = PoseCalibrator(installed, config)
    for f in frames:
        cal.update(*f)
    return cal


def _dh(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


@pytest.mark.unit
def test_converges_to_the_true_pose_from_a_perturbed_start():
    cal = _run(_scene(20))
    m = cal.model
    assert cal.n_pose_updates >= 1
    assert _dh(m.heading_deg, TRUE.heading_deg) < 0.1
    assert m.tilt_deg == pytest.approx(TRUE.tilt_deg, abs=0.05)
    assert m.height_m == pytest.approx(TRUE.height_m, rel=0.05)
    assert cal.residual_px is not None and cal.residual_px < 3.0
    assert cal.at_bounds == ()  # converged inside the bounds
    assert cal.n_pairs >= 3 * 10
    # and the geo-referencing is now good: a pixel of a vessel at 1.5 km lands near it
    lon, lat = _at(35.0, 1500.0)
    u, v, _ = TRUE.geo_to_pixel(np.array([lon]), np.array([lat]))
    g = m.pixel_to_geo(u, v)
    e, n = enu_from_geo(lon, lat, g.lon_deg, g.lat_deg)
    assert float(np.hypot(e, n)[0]) < 40.0
    g0 = INSTALLED.pixel_to_geo(u, v)
    e0, n0 = enu_from_geo(lon, lat, g0.lon_deg, g0.lat_deg)
    # the installed pose was far off: beyond the horizon (NaN) or hundreds of metres out
    assert not float(np.hypot(e0, n0)[0]) < 400.0


@pytest.mark.unit
def test_clutter_unseen_vessels_and_a_wrong_ais_position_do_not_drag_it_away():
    frames = _scene(25, clutter=4, unseen_ais=5, wrong_ais_m=400.0, seed=3)
    cal = _run(frames)
    m = cal.model
    assert _dh(m.heading_deg, TRUE.heading_deg) < 0.15
    assert m.tilt_deg == pytest.approx(TRUE.tilt_deg, abs=0.08)
    assert m.height_m == pytest.approx(TRUE.height_m, rel=0.08)


@pytest.mark.unit
def test_detections_unrelated_to_any_ais_leave_the_installed_pose():
    # the camera sees only clutter; AIS vessels are in view but never detected
    frames = _scene(20, vessels=[], clutter=6, unseen_ais=6, seed=5)
    cal = _run(frames)
    assert cal.model == INSTALLED
    assert cal.n_pose_updates == 0


@pytest.mark.unit
def test_nothing_changes_before_enough_frames_and_spread():
    frames = _scene(20)
    cal = _run(frames[:2])  # fewer frames than min_frames (3)
    assert cal.model == INSTALLED and cal.n_pose_updates == 0
    # one vessel that does not move: every pair is at the same place, no spread
    still = _scene(20, vessels=[(30.0, 1200.0, 0.0, 0.0)])
    cal = _run(still)
    assert cal.model == INSTALLED and cal.n_pose_updates == 0


@pytest.mark.unit
def test_one_moving_vessel_is_enough_once_it_has_moved():
    frames = _scene(40, vessels=[(25.0, 900.0, 6.0, 60.0)])
    cal = _run(frames)
    assert cal.n_pose_updates >= 1
    assert _dh(cal.model.heading_deg, TRUE.heading_deg) < 0.2


@pytest.mark.unit
def test_the_learnt_pose_stays_within_bounds_of_the_installed_pose():
    # the camera was turned 15 degrees and lowered: more than the bounds allow
    truth = replace(TRUE, heading_deg=45.0, height_m=25.0)
    frames = _scene(
        20,
        truth=truth,
        vessels=[(40.0, 700.0, 4.0, 120.0), (48.0, 1500.0, 5.0, 300.0), (55.0, 2600.0, 6.0, 200.0)],
    )
    installed = replace(truth, heading_deg=41.0, height_m=10.0)
    cfg = SelfCalConfig(heading_bound_deg=2.0, height_ratio_max=1.5)
    cal = _run(frames, installed, cfg)
    m = cal.model
    assert cal.within_bounds(m)
    assert _dh(m.heading_deg, installed.heading_deg) <= 2.0 + 1e-6
    assert m.height_m <= 15.0 + 1e-6
    assert not cal.within_bounds(replace(installed, tilt_deg=installed.tilt_deg + 5.5))
    assert cal.at_bounds == ()  # nothing learnt: the true pose is out of reach
    # a camera installed lower than the bounds allow: the height stops at its bound, and
    # only the height is named as held back
    cal = _run(frames, replace(truth, height_m=18.0), SelfCalConfig(height_ratio_max=1.2))
    assert cal.n_pose_updates >= 1 and cal.model.height_m == pytest.approx(21.6)
    assert cal.at_bounds == ("height_m",)


@pytest.mark.unit
def test_window_is_bounded_by_count_and_event_time():
    frames = _scene(12)
    cal = _run(frames, config=SelfCalConfig(window_frames=5))
    assert cal.n_frames == 5
    cal = _run(frames, config=SelfCalConfig(window_ms=3_000))
    assert cal.n_frames == 4  # frames at t, t-1 s, t-2 s, t-3 s


@pytest.mark.unit
def test_refine_pose_respects_bounds_and_clips_the_start():
    lon, lat = geo_from_enu(
        LON0, LAT0, np.array([-300.0, 200.0, 500.0]), np.array([900.0, 1500.0, 2500.0])
    )
    lon, lat = (np.ravel(x) for x in (lon, lat))
    u, v, _ = TRUE.geo_to_pixel(lon, lat)
    start = replace(TRUE, height_m=100.0)  # outside the bounds below
    fitted, _ = refine_pose(start, u, v, lon, lat, bounds={"height_m": (10.0, 20.0)})
    assert 10.0 <= fitted.height_m <= 20.0
    assert fitted.height_m == pytest.approx(20.0, abs=1e-3)  # pushed to the bound nearest 25
    with pytest.raises(ValueError):
        refine_pose(start, u, v, lon, lat, bounds={"height_m": (20.0, 10.0)})


@pytest.mark.unit
@settings(max_examples=8, deadline=None)
@given(st.randoms(use_true_random=False))
def test_pose_does_not_depend_on_the_order_of_detections_or_ais(rnd):
    frames = _scene(8, clutter=2, unseen_ais=2, seed=1)
    shuffled = []
    for t, u, v, lon, lat, mmsi in frames:
        di = list(range(len(u)))
        ai = list(range(len(lon)))
        rnd.shuffle(di)
        rnd.shuffle(ai)
        shuffled.append((t, u[di], v[di], lon[ai], lat[ai], mmsi[ai]))
    a, b = _run(frames).model, _run(shuffled).model
    assert _dh(a.heading_deg, b.heading_deg) < 1e-4
    assert a.tilt_deg == pytest.approx(b.tilt_deg, abs=1e-4)
    assert a.height_m == pytest.approx(b.height_m, rel=1e-4)
