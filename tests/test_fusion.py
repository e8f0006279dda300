"""AIS ↔ camera association (``pipeline.core.fusion``) and its evaluation tools."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.camera import CameraModel
from pipeline.core.fusion import (
    EARTH_RADIUS_M,
    CameraAssociation,
    DetectionArrays,
    FusionParams,
    VesselArrays,
    associate,
    candidate_pairs,
    cost_matrix,
    dead_reckon,
    view_mask,
)
from pipeline.tools.eval_fusion import (
    bench_fusion,
    evaluate_fusion,
    id_metrics,
    naive_associate,
    naive_cost_matrix,
    synthetic_scene,
)

T0_MS = 1_700_000_000_000
CAM = CameraModel.from_hfov(
    lon_deg=110.30,
    lat_deg=20.05,
    height_m=30.0,
    heading_deg=0.0,
    tilt_deg=1.0,
    hfov_deg=60.0,
    image_width=1920,
    image_height=1080,
)


def _lonlat(bearing_deg, range_m):
    """Positions at a bearing and range from the test camera (flat earth)."""
    b = np.radians(np.asarray(bearing_deg, dtype=float))
    r = np.asarray(range_m, dtype=float)
    lat = CAM.lat_deg + np.degrees(r * np.cos(b) / EARTH_RADIUS_M)
    lon = CAM.lon_deg + np.degrees(
        r * np.sin(b) / (EARTH_RADIUS_M * math.cos(math.radians(CAM.lat_deg)))
    )
    return lon, lat


def _vessels(mmsi, bearing_deg, range_m, sog_kn=None, cog_deg=None, t_ms=T0_MS, length_m=None):
    lon, lat = _lonlat(bearing_deg, range_m)
    n = len(mmsi)
    return VesselArrays.from_lists(
        mmsi=mmsi,
        t_ms=[t_ms] * n,
        lon_deg=lon,
        lat_deg=lat,
        sog_kn=[0.0] * n if sog_kn is None else sog_kn,
        cog_deg=[0.0] * n if cog_deg is None else cog_deg,
        length_m=length_m,
    )


def _dets(track_id, bearing_deg, range_m=None, sigma_deg=0.5, range_frac=0.2):
    m = len(track_id)
    rng = None if range_m is None else np.asarray(range_m, dtype=float)
    return DetectionArrays.from_lists(
        track_id=track_id,
        bearing_deg=np.asarray(bearing_deg, dtype=float) % 360.0,
        bearing_sigma_deg=[sigma_deg] * m,
        range_m=rng,
        range_sigma_m=None if rng is None else rng * range_frac,
    )


# --------------------------------------------------------------------------- geometry and costs


@pytest.mark.unit
def test_dead_reckon_moves_east_at_sog():
    v = VesselArrays.from_lists([1], [0], [110.0], [20.0], [10.0], [90.0])
    lon, lat = dead_reckon(v, 60_000)
    east_m = math.radians(lon[0] - 110.0) * EARTH_RADIUS_M * math.cos(math.radians(20.0))
    assert east_m == pytest.approx(10 * 1852 / 3600 * 60, rel=1e-9)
    assert lat[0] == pytest.approx(20.0)


@pytest.mark.unit
def test_dead_reckon_unknown_course_and_clipping():
    v = VesselArrays.from_lists(
        [1, 2], [0, 0], [110.0, 110.0], [20.0, 20.0], [10.0, 10.0], [np.nan, 0.0]
    )
    lon, lat = dead_reckon(v, 3_600_000, max_dt_s=60.0)
    assert lon[0] == 110.0 and lat[0] == 20.0  # unknown COG: no motion
    north_m = math.radians(lat[1] - 20.0) * EARTH_RADIUS_M
    assert north_m == pytest.approx(10 * 1852 / 3600 * 60)  # clipped to 60 s


@pytest.mark.unit
def test_cost_matrix_matches_direct_computation():
    """One vessel, one bearing-only detection: the cost is the squared bearing residual
    over sqrt(det_sigma² + (AIS sigma as angle at range)²)."""
    params = FusionParams()
    east, north = 100.0, 1000.0
    v = _vessels([412000001], [math.degrees(math.atan2(east, north))], [math.hypot(east, north)])
    d = _dets([7], [5.0])
    cm = cost_matrix(v, d, T0_MS, CAM, params)
    ais_sig = math.degrees(math.atan2(params.ais_position_sigma_m, math.hypot(east, north)))
    sig = math.sqrt(0.5**2 + ais_sig**2)
    expected = ((math.degrees(math.atan2(east, north)) - 5.0) / sig) ** 2
    assert cm.shape == (1, 1)
    assert cm[0, 0] == pytest.approx(expected, rel=1e-6)


@pytest.mark.unit
def test_cost_matrix_range_term_and_gates():
    params = FusionParams()
    v = _vessels([1, 2, 3], [0.0, 0.0, 20.0], [1000.0, 5000.0, 1000.0])
    d = _dets([1], [0.0], range_m=[1100.0], range_frac=0.1)
    cm = cost_matrix(v, d, T0_MS, CAM, params)
    rs = max(110.0, params.min_range_sigma_m, params.min_range_sigma_frac * 1100.0)
    z = (1000.0 - 1100.0) / math.sqrt(rs**2 + params.ais_position_sigma_m**2)
    assert cm[0, 0] == pytest.approx(z * z, rel=1e-6)
    assert np.isinf(cm[1, 0])  # range gate: 5 km vs 1.1 km
    assert np.isinf(cm[2, 0])  # bearing gate: 20 degrees off


@pytest.mark.unit
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cost_matrix_equals_plain_python_loop(seed):
    """The windowed, staged-gating cost matrix equals scoring every pair in a double loop."""
    v, d, t_ms, cam = synthetic_scene(120, 40, seed=seed, scene="view")
    params = FusionParams()
    fast = cost_matrix(v, d, t_ms, cam, params)
    slow = np.array(naive_cost_matrix(v, d, t_ms, cam, params))
    assert np.array_equal(np.isfinite(fast), np.isfinite(slow))
    ok = np.isfinite(fast)
    assert ok.sum() > 0
    np.testing.assert_allclose(fast[ok], slow[ok], rtol=1e-9, atol=1e-12)
    assert associate(v, d, t_ms, cam, params).tolist() == naive_associate(v, d, t_ms, cam, params)


@pytest.mark.unit
def test_candidate_pairs_agree_with_dense_matrix():
    v, d, t_ms, cam = synthetic_scene(300, 60, seed=5, scene="area")
    pairs = candidate_pairs(v, d, t_ms, cam)
    dense = cost_matrix(v, d, t_ms, cam)
    assert pairs.cost.size == int(np.isfinite(dense).sum())
    np.testing.assert_array_equal(dense[pairs.row, pairs.col], pairs.cost)


# --------------------------------------------------------------------------- assignment


@st.composite
def _scene(draw):
    n = draw(st.integers(1, 8))
    # distinct bearings (0.5° apart at least) and ranges: no exact cost ties
    b_idx = draw(st.lists(st.integers(-50, 50), min_size=n, max_size=n, unique=True))
    r_idx = draw(st.lists(st.integers(3, 80), min_size=n, max_size=n, unique=True))
    bearings = [0.5 * b for b in b_idx]
    ranges = [100.0 * r for r in r_idx]
    sog = draw(st.lists(st.floats(0.0, 20.0), min_size=n, max_size=n))
    cog = draw(st.lists(st.floats(0.0, 359.0), min_size=n, max_size=n))
    seen = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    noise = draw(st.lists(st.floats(-0.7, 0.7), min_size=n, max_size=n))
    rnoise = draw(st.lists(st.floats(0.8, 1.2), min_size=n, max_size=n))
    det_b = [b + e for b, e, s in zip(bearings, noise, seen, strict=True) if s]
    det_r = [r * f for r, f, s in zip(ranges, rnoise, seen, strict=True) if s]
    n_clutter = draw(st.integers(0, 3))
    det_b += draw(st.lists(st.floats(-25.0, 25.0), min_size=n_clutter, max_size=n_clutter))
    det_r += draw(st.lists(st.floats(300.0, 8000.0), min_size=n_clutter, max_size=n_clutter))
    v = _vessels(list(range(412000000, 412000000 + n)), bearings, ranges, sog, cog)
    d = _dets(list(range(100, 100 + len(det_b))), det_b, det_r)
    perm_v = draw(st.permutations(range(n)))
    perm_d = draw(st.permutations(range(len(det_b))))
    return v, d, np.array(perm_v, dtype=int), np.array(perm_d, dtype=int)


@pytest.mark.unit
@settings(max_examples=80, deadline=None)
@given(_scene())
def test_assignment_independent_of_input_order(scene):
    v, d, pv, pd = scene
    base = dict(zip(d.track_id.tolist(), associate(v, d, T0_MS, CAM).tolist(), strict=True))
    d2 = d.take(pd)
    got = associate(v.take(pv), d2, T0_MS, CAM)
    assert dict(zip(d2.track_id.tolist(), got.tolist(), strict=True)) == base
    # each vessel at most once
    labels = [x for x in base.values() if x >= 0]
    assert len(labels) == len(set(labels))


def _rows(fa):
    return zip(fa.track_id.tolist(), fa.mmsi.tolist(), fa.confirmed.tolist(), strict=True)


@pytest.mark.unit
@settings(max_examples=40, deadline=None)
@given(_scene(), st.data())
def test_stateful_association_independent_of_input_order(scene, data):
    """Over several frames in which the detections jitter and come and go (so pairs are
    confirmed, kept through misses, released and contested), the identities do not depend
    on the order of tracks and detections."""
    v, d, pv, pd = scene
    m = len(d)
    a, b = CameraAssociation(), CameraAssociation()
    params = FusionParams(confirm_hits=2, release_misses=2)
    for k in range(6):
        jitter = np.array(data.draw(st.lists(st.floats(-1.5, 1.5), min_size=m, max_size=m)))
        keep = np.array(data.draw(st.lists(st.booleans(), min_size=m, max_size=m)), dtype=bool)
        dk = d.take(np.arange(m))
        dk = DetectionArrays.from_lists(
            dk.track_id, dk.bearing_deg + jitter, dk.bearing_sigma_deg, dk.range_m,
            dk.range_sigma_m,
        )  # fmt: skip
        t = T0_MS + 1000 * k
        fa = a.step(t, dk.take(keep), v, CAM, params)
        fb = b.step(t, dk.take(pd[keep[pd]]), v.take(pv), CAM, params)
        ref = {t: (m, c) for t, m, c in _rows(fa)}
        got = {t: (m, c) for t, m, c in _rows(fb)}
        assert got == ref
        labels = [x for x, _ in ref.values() if x >= 0]
        assert len(labels) == len(set(labels))  # one vessel, one track
        assert sorted(fa.unseen_mmsi.tolist()) == sorted(fb.unseen_mmsi.tolist())


# --------------------------------------------------------------------------- confirmation


def _one_vessel_frames(assoc, k_frames, bearing=0.0, det_bearing=0.1, t0=T0_MS, params=None):
    v = _vessels([412000001], [bearing], [2000.0])
    out = []
    for k in range(k_frames):
        d = _dets([5], [det_bearing], [2100.0])
        out.append(assoc.step(t0 + 1000 * k, d, v, CAM, params or FusionParams()))
    return out


@pytest.mark.unit
def test_confirmation_after_three_consecutive_hits():
    frames = _one_vessel_frames(CameraAssociation(), 4)
    assert [int(f.mmsi[0]) for f in frames] == [412000001] * 4
    assert [bool(f.confirmed[0]) for f in frames] == [False, False, True, True]


@pytest.mark.unit
def test_confirmed_identity_survives_misses_then_is_released():
    params = FusionParams(release_misses=3)
    assoc = CameraAssociation()
    _one_vessel_frames(assoc, 3, params=params)
    v = _vessels([412000001], [0.0], [2000.0])
    far = _dets([5], [15.0], [2100.0])  # the track drifts away from the AIS bearing
    kept = [assoc.step(T0_MS + 1000 * (3 + k), far, v, CAM, params) for k in range(5)]
    assert [int(f.mmsi[0]) for f in kept[:3]] == [412000001] * 3
    assert all(bool(f.confirmed[0]) for f in kept[:3])
    assert int(kept[4].mmsi[0]) == -1 and not bool(kept[4].confirmed[0])


@pytest.mark.unit
def test_hysteresis_keeps_established_pair_against_a_slightly_better_competitor():
    """An established pair keeps its identity when a second AIS vessel becomes marginally
    cheaper; without hysteresis the identity would flicker to the competitor. No grace
    frames here (``release_misses=0``): the pair must win every frame on its own."""
    params = FusionParams(release_misses=0)
    assoc = CameraAssociation()
    v1 = _vessels([1], [0.0], [2000.0])
    for k in range(3):
        assoc.step(T0_MS + 1000 * k, _dets([5], [0.2], [2000.0]), v1, CAM, params)
    # a competitor appears at 0.5°, the track sits at 0.3°: slightly nearer the competitor
    both = _vessels([1, 2], [0.0, 0.5], [2000.0, 2000.0])
    d = _dets([5], [0.3], [2000.0], sigma_deg=0.3)
    cm = cost_matrix(both, d, T0_MS, CAM, params)
    assert cm[1, 0] <= cm[0, 0]  # the competitor is cheaper on its own ...
    for k in range(3, 12):  # ... but does not win
        fa = assoc.step(T0_MS + 1000 * k, d, both, CAM, params)
        assert int(fa.mmsi[0]) == 1 and bool(fa.confirmed[0])
    fresh = CameraAssociation().step(T0_MS, d, both, CAM, params)
    assert int(fresh.mmsi[0]) == 2  # a track with no history takes the cheaper one


# --------------------------------------------------------------------------- special cases


@pytest.mark.unit
def test_stationary_vessel_is_associated():
    v = _vessels([412000009], [3.0], [800.0], sog_kn=[0.0], cog_deg=[np.nan])
    d = _dets([1], [3.2], [850.0])
    frames = [CameraAssociation().step(T0_MS, d, v, CAM)]
    assert int(frames[0].mmsi[0]) == 412000009
    assoc = CameraAssociation()
    out = [assoc.step(T0_MS + 1000 * k, d, v, CAM) for k in range(3)]
    assert bool(out[-1].confirmed[0])


@pytest.mark.unit
def test_detection_without_ais_gets_minus_one():
    v = _vessels([412000001], [-20.0], [1500.0])
    d = _dets([1, 2], [-20.1, 15.0], [1500.0, 1200.0])
    fa = CameraAssociation().step(T0_MS, d, v, CAM)
    assert fa.mmsi.tolist() == [412000001, -1]
    assert fa.unseen_mmsi.tolist() == []


@pytest.mark.unit
def test_ais_vessel_in_view_without_detection_is_unseen():
    v = _vessels([1, 2, 3], [5.0, 100.0, -10.0], [1500.0, 1500.0, 20_000.0])
    fa = CameraAssociation().step(T0_MS, DetectionArrays.empty(), v, CAM)
    # vessel 2 is behind the camera's view, vessel 3 beyond the unseen range
    assert fa.unseen_mmsi.tolist() == [1]
    assert view_mask(v, T0_MS, CAM).tolist() == [True, False, False]


@pytest.mark.unit
def test_vessel_behind_a_nearer_box_is_occluded_not_unseen():
    # vessel 1 at 800 m is detected with a wide box; vessel 2 is 2 km behind it
    v = _vessels([1, 2], [0.0, 1.0], [800.0, 2800.0])
    d = DetectionArrays.from_lists(
        [4], [0.0], [0.5], [820.0], [100.0], box_px=[[900, 500, 150, 40]]
    )
    fa = CameraAssociation().step(T0_MS, d, v, CAM)
    assert fa.mmsi.tolist() == [1]
    assert fa.unseen_mmsi.tolist() == [] and fa.occluded_mmsi.tolist() == [2]
    # without the box extent, vessel 2 is plainly unseen
    d0 = _dets([4], [0.0], [820.0])
    fa0 = CameraAssociation().step(T0_MS, d0, v, CAM)
    assert fa0.unseen_mmsi.tolist() == [2]


@pytest.mark.unit
def test_stale_and_unavailable_ais_are_ignored():
    v = VesselArrays.from_lists(
        [1, 2],
        [T0_MS - 3_600_000, T0_MS],
        [_lonlat(0.0, 1000.0)[0], np.nan],
        [_lonlat(0.0, 1000.0)[1], np.nan],
        [0.0, 0.0],
        [0.0, 0.0],
    )
    fa = CameraAssociation().step(T0_MS, _dets([1], [0.0], [1000.0]), v, CAM)
    assert fa.mmsi.tolist() == [-1]
    assert fa.unseen_mmsi.tolist() == []


@pytest.mark.unit
def test_tentative_tracks_are_matched_without_state():
    v = _vessels([7], [0.0], [2000.0])
    assoc = CameraAssociation()
    for k in range(4):
        fa = assoc.step(T0_MS + 1000 * k, _dets([-1], [0.1], [2000.0]), v, CAM)
        assert int(fa.mmsi[0]) == 7 and not bool(fa.confirmed[0])
    assert assoc.to_state()["track_id"] == []


@pytest.mark.unit
def test_state_round_trip_through_json():
    v = _vessels([1, 2], [0.0, 10.0], [2000.0, 3000.0], sog_kn=[5.0, 0.0], cog_deg=[90.0, 0.0])
    a = CameraAssociation()
    for k in range(3):
        a.step(T0_MS + 1000 * k, _dets([5, 6], [0.1, 10.2], [2000.0, 3000.0]), v, CAM)
    state = json.loads(json.dumps(a.to_state(), allow_nan=False))
    b = CameraAssociation.from_state(state)
    assert b.to_state() == a.to_state()
    d = _dets([5, 6], [0.15, 10.1], [2000.0, 3000.0])
    fa = a.step(T0_MS + 3000, d, v, CAM)
    fb = b.step(T0_MS + 3000, d, v, CAM)
    assert fa.mmsi.tolist() == fb.mmsi.tolist() == [1, 2]
    assert fa.confirmed.tolist() == fb.confirmed.tolist() == [True, True]


@pytest.mark.unit
def test_empty_inputs():
    fa = CameraAssociation().step(T0_MS, DetectionArrays.empty(), VesselArrays.empty(), CAM)
    assert fa.mmsi.shape == (0,) and fa.unseen_mmsi.shape == (0,)
    assert cost_matrix(VesselArrays.empty(), _dets([1], [0.0]), T0_MS, CAM).shape == (0, 1)


# --------------------------------------------------------------------------- evaluation tools


@pytest.mark.unit
def test_id_metrics_counts():
    gt = {1: [(7, [0, 0, 10, 10]), (8, [50, 0, 10, 10])], 2: [(7, [1, 0, 10, 10])]}
    pred = {1: [(7, [0, 0, 10, 10]), (9, [200, 0, 10, 10])], 2: [(7, [1, 0, 10, 10])]}
    m = id_metrics(gt, pred)
    assert m["correct"] == 2 and m["gt_boxes"] == 3 and m["labelled_boxes"] == 3
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["idtp"] == 2 and m["idf1"] == pytest.approx(4 / 6)


@pytest.mark.unit
def test_bench_runs_small_and_agrees_with_naive():
    res = bench_fusion(n_tracks=60, n_detections=12, repeats=2, naive_repeats=1)
    assert res["same_assignment"] is True
    assert {"association_median_ms", "naive_median_ms", "speedup"} <= set(res)


@pytest.mark.unit
def test_real_clip_gt_boxes_get_the_right_mmsi(shared):
    """clip-01 with the ground-truth boxes as detections: the barge and the far vessel get
    their MMSIs in every scored second."""
    res = evaluate_fusion(shared / "data" / "video" / "clip-01", detections="gt")
    assert res["seconds"] == list(range(2, 10))  # the 250-frame video holds seconds 2..9
    for row in res["per_second"]:
        assert sorted(row["labelled"]) == [290000000, 380000000]
    assert res["precision"] == 1.0 and res["recall"] == 1.0 and res["idf1"] == 1.0


@pytest.mark.unit
def test_bad_detections_and_vessels_do_not_crash():
    v = VesselArrays.from_lists(
        [1, 2, 3],
        [T0_MS] * 3,
        [_lonlat(0.0, 1000.0)[0], np.nan, _lonlat(2.0, 1500.0)[0]],
        [_lonlat(0.0, 1000.0)[1], 91.0, _lonlat(2.0, 1500.0)[1]],
        [np.nan, 3.0, 1.0],
        [np.nan, 0.0, np.nan],
    )
    d = DetectionArrays.from_lists(
        [1, 2, 3], [np.nan, 0.1, 2.0], [0.5, np.nan, 0.5], [1000.0, None, 1500.0], [None] * 3
    )
    fa = CameraAssociation().step(T0_MS, d, v, CAM)
    # NaN bearing or NaN bearing sigma: no match; the good pair still matches
    assert fa.mmsi.tolist() == [-1, -1, 3]


@pytest.mark.unit
def test_real_clip_with_the_dnn_detector(shared):
    """clip-01 end to end (Yolo-Fastest + image tracker + association): every MMSI given to a
    labelled box is right; the detector misses the barge in some scored frames."""
    from pipeline.tools.eval_fusion import default_model_dir

    if not (default_model_dir() / "yolo-fastest-1.1-xl.weights").is_file():
        pytest.skip(f"detector model not found in {default_model_dir()}")
    res = evaluate_fusion(shared / "data" / "video" / "clip-01", detections="dnn", analysed_fps=2)
    assert res["precision"] == 1.0
    assert res["recall"] >= 0.8 and res["idf1"] >= 0.85
