"""Detectors, image tracker, frame analyser and the clip evaluation."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.camera import CameraModel, enu_from_geo, geo_from_enu
from pipeline.core.mot import MultiObjectTracker, iou_xywh
from pipeline.errors import ConfigError, FrameError
from pipeline.site import Structure
from pipeline.tools.eval_camera import Clip, bench_clip, evaluate_clip
from pipeline.vision.analyser import FrameAnalyser
from pipeline.vision.detectors import (
    Detections,
    DnnDetector,
    MotionDetector,
    _with_yolo_thresh,
)
from pipeline.vision.evidence import DirectoryEvidenceStore
from pipeline.vision.frames import check_frame
from pipeline.vision.structures import StructureMask
from schemas.records import CameraFrame


@pytest.fixture(scope="module")
def clip(shared) -> Clip:
    return Clip(shared / "data" / "video" / "clip-01")


@pytest.fixture(scope="module")
def clip_frames(clip) -> dict[int, np.ndarray]:
    return dict(clip.frames([49, 74, 124]))


# ---------------------------------------------------------------------------- frames
@pytest.mark.unit
@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (None, "empty_frame"),
        (np.zeros((0, 0, 3), np.uint8), "empty_frame"),
        (np.zeros((100, 100), np.uint8), "bad_shape"),
        (np.zeros((100, 100, 3), np.float32), "bad_dtype"),
        (np.zeros((4, 4, 3), np.uint8), "bad_shape"),
        (np.full((100, 100, 3), 128, np.uint8), "blank_frame"),
        (b"\xff\xd8 not an array", "bad_frame"),
    ],
)
def test_corrupt_frames_raise_frame_error(frame, reason):
    with pytest.raises(FrameError) as err:
        check_frame(frame)
    assert err.value.reason == reason


@pytest.mark.unit
def test_analyser_rejects_corrupt_frame_before_tracking(tmp_path):
    cam = CameraModel.from_hfov(
        lon_deg=110.3, lat_deg=20.0, height_m=20.0, heading_deg=0.0, tilt_deg=2.0,
        hfov_deg=60.0, image_width=320, image_height=180,
    )  # fmt: skip
    analyser = FrameAnalyser("c1", cam, _FixedDetector([]), MultiObjectTracker(), None)
    with pytest.raises(FrameError):
        analyser.analyse(np.zeros((180, 320, 3), np.uint8), 1_000)
    assert analyser.tracker.t_s is None  # a bad frame never advances the tracker


# ---------------------------------------------------------------------------- DNN
@pytest.mark.unit
def test_dnn_detector_finds_both_vessels_on_real_frames(clip, clip_frames, yolo_dir):
    det = DnnDetector.from_dir(yolo_dir, conf=0.25)
    gt = clip.ground_truth("clip-01_gt_fusion.txt", 888, 500)
    # ground-truth second k is frame 25 (k + 1) - 1: frame 124 = second 4 (both vessels)
    d4 = det.detect(clip_frames[124])
    assert set(d4.class_names.tolist()) == {"boat"}
    assert np.all((d4.scores >= 0.25) & (d4.scores <= 1.0))
    iou4 = iou_xywh(gt[4][:, 1:5], d4.boxes_xywh)
    assert (iou4.max(axis=1) >= 0.3).all(), iou4
    # frame 74 = second 2: the far vessel by the opposite bank, with high confidence
    d2 = det.detect(clip_frames[74])
    far = gt[2][gt[2][:, 0] == 290000000, 1:5]
    assert iou_xywh(far, d2.boxes_xywh).max() >= 0.3
    assert d2.scores[iou_xywh(far, d2.boxes_xywh)[0].argmax()] > 0.5
    # the small boat at the left edge (real, never labelled) is found on frame 49
    d1 = det.detect(clip_frames[49])
    left = np.array([[30.0, 265.0, 35.0, 20.0]])
    assert iou_xywh(left, d1.boxes_xywh).max() > 0.2


@pytest.mark.unit
def test_dnn_detector_tiles_cover_the_frame_and_map_back(clip_frames, yolo_dir):
    frame = clip_frames[124]
    whole = DnnDetector.from_dir(yolo_dir, conf=0.2)
    tiled = DnnDetector.from_dir(
        yolo_dir, conf=0.2, tiles=((0.0, 0.0, 1.0, 1.0), (0.0, 0.2, 1.0, 0.5))
    )
    a, b = whole.detect(frame), tiled.detect(frame)
    assert len(b) >= 1
    assert (b.boxes_xywh[:, 0] >= 0).all() and (
        b.boxes_xywh[:, 0] + b.boxes_xywh[:, 2] <= 888
    ).all()
    assert (b.boxes_xywh[:, 1] >= 0).all() and (
        b.boxes_xywh[:, 1] + b.boxes_xywh[:, 3] <= 500
    ).all()
    # the far vessel is found in both, in the same place
    best = iou_xywh(a.boxes_xywh[:1], b.boxes_xywh).max()
    assert best > 0.5


@pytest.mark.unit
def test_dnn_detector_configuration_errors(tmp_path, yolo_dir):
    with pytest.raises(ConfigError):
        DnnDetector(tmp_path / "x.cfg", tmp_path / "x.weights", tmp_path / "x.names")
    d = yolo_dir
    with pytest.raises(ConfigError):
        DnnDetector(
            d / "yolo-fastest-1.1-xl.cfg", d / "yolo-fastest-1.1-xl.weights", d / "coco.names",
            classes=("submarine",),
        )  # fmt: skip


# ---------------------------------------------------------------------------- motion
def _sea(rng: np.random.Generator, h: int = 240, w: int = 320) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[: h // 3] = (200, 190, 180)  # sky
    img[h // 3 :] = (90, 100, 80)  # water
    noise = rng.integers(-3, 4, size=img.shape)
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)


@pytest.mark.unit
def test_motion_detector_finds_a_boat_on_the_water_only():
    rng = np.random.default_rng(7)
    det = MotionDetector(horizon_v=80.0, min_area_px=40, warmup_frames=5)
    found = []
    for k in range(30):
        frame = _sea(rng)
        x = 40 + 6 * (k - 8)
        if k >= 8:  # the hull comes into view after the background is learned
            frame[150:162, x : x + 30] = (20, 20, 25)
        frame[20:32, 300 - 6 * k : 330 - 6 * k] = (30, 30, 30)  # a bird in the sky
        d = det.detect(frame)
        if k < 5:
            assert len(d) == 0  # warm-up
        if k >= 12:
            found.append((x, d))
    for x, d in found:
        assert len(d) == 1, d
        bx, by, bw, bh = d.boxes_xywh[0]
        assert by > 80  # nothing above the horizon
        assert abs(by - 150) <= 3 and abs(bh - 12) <= 4
        assert abs(bx - x) <= 8 and bw <= 40
        assert d.class_names[0] == "motion"


@pytest.mark.unit
def test_motion_detector_water_mask_and_camera_horizon():
    cam = CameraModel.from_hfov(
        lon_deg=110.3, lat_deg=20.0, height_m=20.0, heading_deg=0.0, tilt_deg=5.0,
        hfov_deg=60.0, image_width=320, image_height=240,
    )  # fmt: skip
    # water only on the right half
    mask = np.array([[160, 0], [320, 0], [320, 240], [160, 240]])
    det = MotionDetector.for_camera(cam, water_mask=mask, min_area_px=40, warmup_frames=3)
    region = det.region_mask(240, 320)
    hv = cam.horizon_v(np.array([240.0]))[0]
    assert region[: int(hv) - 1, 200].max() == 0 and region[int(hv) + 4 :, 200].min() == 255
    assert region[:, :150].max() == 0
    rng = np.random.default_rng(3)
    for k in range(15):
        frame = _sea(rng)
        if k >= 4:  # after the warm-up
            frame[200:212, 4 * k : 30 + 4 * k] = (10, 10, 10)  # left half: masked out
            frame[200:212, 180 + 4 * k : 210 + 4 * k] = (10, 10, 10)  # right half: seen
        d = det.detect(frame)
    assert len(d) == 1 and d.boxes_xywh[0, 0] >= 160


# ---------------------------------------------------------------------------- tracker
@pytest.mark.unit
def test_tracker_keeps_ids_through_motion_noise_and_short_gaps():
    rng = np.random.default_rng(11)
    trk = MultiObjectTracker(n_init=3, max_misses=4)
    seen: dict[int, set[int]] = {0: set(), 1: set()}
    for k in range(40):
        boxes = np.array([[20 + 6.0 * k, 100, 60, 20], [600 - 9.0 * k, 140, 30, 12]])
        boxes[:, :2] += rng.normal(0, 1.0, (2, 2))
        present = [0, 1] if k not in (15, 16, 17) else [0]  # the second boat is missed 3 times
        ids = trk.update(boxes[present], np.full(len(present), 0.8), t_s=100.0 + 0.2 * k)
        if k < 2:
            assert (ids == -1).all()  # tentative until n_init hits
        else:
            for p, i in zip(present, ids, strict=True):
                seen[p].add(int(i))
    assert len(seen[0]) == 1 and len(seen[1]) == 1 and seen[0] != seen[1]


@pytest.mark.unit
def test_tracker_drops_tracks_after_max_misses_and_issues_new_ids():
    trk = MultiObjectTracker(n_init=1, max_misses=2)
    box = np.array([[100.0, 100, 40, 20]])
    first = trk.update(box, [0.9], 0.0)[0]
    assert first > 0
    trk.update(np.zeros((0, 4)), [], 1.0)
    trk.update(np.zeros((0, 4)), [], 2.0)
    assert len(trk.ids) == 0
    assert trk.update(box, [0.9], 3.0)[0] != first


@pytest.mark.unit
@settings(max_examples=40, deadline=None)
@given(perm_seed=st.integers(0, 2**32 - 1))
def test_tracker_ids_do_not_depend_on_detection_order(perm_seed):
    rng = np.random.default_rng(perm_seed)
    base = np.array([[10, 10, 30, 10], [200, 50, 40, 15], [400, 90, 60, 20]], float)
    a, b = MultiObjectTracker(n_init=2), MultiObjectTracker(n_init=2)
    for k in range(6):
        boxes = base + [5 * k, 0, 0, 0]
        perm = rng.permutation(3)
        ia = a.update(boxes, np.full(3, 0.5), k * 0.5)
        ib = b.update(boxes[perm], np.full(3, 0.5), k * 0.5)
        # same boxes, same tracks: the id sets agree box by box (ids may be numbered differently)
        pairs = {(int(x), int(y)) for x, y in zip(ia[perm], ib, strict=True)}
        assert len({x for x, _ in pairs}) == len(pairs) == len({y for _, y in pairs})


# ---------------------------------------------------------------------------- analyser
def _east_camera() -> CameraModel:
    """A 640 x 360 camera 20 m up, looking east, 2 degrees down."""
    return CameraModel.from_hfov(
        lon_deg=110.3, lat_deg=20.0, height_m=20.0, heading_deg=90.0, tilt_deg=2.0,
        hfov_deg=60.0, image_width=640, image_height=360,
    )  # fmt: skip


class _FixedDetector:
    def __init__(self, boxes: list[list[float]]):
        self.boxes = np.array(boxes, float).reshape(-1, 4)

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        check_frame(frame_bgr)
        n = len(self.boxes)
        return Detections(self.boxes, np.full(n, 0.7), np.full(n, "boat", dtype=object))


@pytest.mark.unit
def test_frame_analyser_builds_geo_referenced_record_with_evidence(tmp_path):
    cam = _east_camera()
    hv = float(cam.horizon_v(np.array([320.0]))[0])
    on_sea = [300.0, 250.0, 40.0, 20.0]
    beyond = [100.0, hv - 40.0, 30.0, 20.0]  # waterline above the horizon
    store = DirectoryEvidenceStore(tmp_path / "evidence")
    analyser = FrameAnalyser(
        "haikou-01", cam.scaled(1280, 720), _FixedDetector([on_sea, beyond]),
        MultiObjectTracker(n_init=1), store,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)
    rec = analyser.analyse(frame, 1_700_000_000_000)
    assert isinstance(rec, CameraFrame)
    assert (rec.image_width, rec.image_height) == (640, 360)  # model rescaled to the frame
    assert rec.heading_deg == 90.0 and rec.hfov_deg == pytest.approx(60.0)
    d_sea, d_far = rec.detections
    g = cam.pixel_to_geo(np.array([320.0]), np.array([270.0]))  # bottom-centre
    assert d_sea.range_m == pytest.approx(float(g.range_m[0]))
    assert d_sea.lon == pytest.approx(float(g.lon_deg[0]))
    assert d_sea.lat == pytest.approx(float(g.lat_deg[0]))
    assert d_sea.bearing_deg == pytest.approx(90.0, abs=0.01)
    assert d_sea.range_sigma_m > 0 and d_sea.bearing_sigma_deg > 0
    assert not d_sea.beyond_horizon and d_sea.track_id > 0
    assert d_far.beyond_horizon and d_far.range_m is None and d_far.lon is None
    assert d_far.bearing_deg < 90.0
    # evidence: a frame JPEG and one crop per detection, as file:// URIs under the root
    for uri in [rec.evidence_uri, d_sea.crop_uri, d_far.crop_uri]:
        assert uri and uri.startswith("file://")
        path = Path(urlparse(uri).path)
        assert path.is_file() and path.read_bytes()[:2] == b"\xff\xd8"
        assert (tmp_path / "evidence") in path.parents
    # the record serialises as the topic's JSON
    assert msgspec.json.decode(msgspec.json.encode(rec), type=CameraFrame) == rec
    # the same boat in the next frame keeps its camera track id
    rec2 = analyser.analyse(frame, 1_700_000_000_200)
    assert rec2.detections[0].track_id == d_sea.track_id


@pytest.mark.unit
def test_frame_analyser_self_calibrates_from_an_ais_source():
    true = CameraModel.from_hfov(
        lon_deg=110.3, lat_deg=20.0, height_m=30.0, heading_deg=90.0, tilt_deg=3.0,
        hfov_deg=60.0, image_width=640, image_height=360,
    )  # fmt: skip
    installed = replace(true, heading_deg=92.5, tilt_deg=2.2, height_m=22.0)
    t0 = 1_700_000_000_000
    starts = [(400.0, -100.0), (1200.0, 150.0), (2500.0, -400.0)]  # east, north m

    def ais_at(t_ms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        dt_s = (t_ms - t0) / 1000.0
        e = np.array([s[0] for s in starts]) + 4.0 * dt_s
        n = np.array([s[1] for s in starts]) + 3.0 * dt_s
        lon, lat = geo_from_enu(true.lon_deg, true.lat_deg, e, n)
        return lon, lat, np.array([412000001, 412000002, 412000003])

    class Boats:
        t_ms = t0

        def detect(self, frame_bgr):
            lon, lat, _ = ais_at(self.t_ms)
            u, v, _ = true.geo_to_pixel(lon, lat)
            boxes = np.stack([u - 10.0, v - 8.0, np.full(3, 20.0), np.full(3, 8.0)], -1)
            return Detections(boxes, np.full(3, 0.7), np.full(3, "boat", dtype=object))

    seen: list[int] = []

    def source(t_ms: int, cam: CameraModel):
        assert cam.image_width == 640  # the installed camera, at the frame size
        seen.append(t_ms)
        return ais_at(t_ms)

    boats = Boats()
    analyser = FrameAnalyser(
        "cam-sc", installed, boats, MultiObjectTracker(n_init=1), ais_source=source
    )
    frame = np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    first = analyser.analyse(frame, t0)
    assert first.heading_deg == pytest.approx(92.5)  # nothing learnt yet
    for k in range(1, 60):
        boats.t_ms = t0 + 200 * k
        rec = analyser.analyse(frame, boats.t_ms)
    assert len(seen) == 60
    assert analyser.calibrator is not None and analyser.calibrator.n_pose_updates >= 1
    assert rec.heading_deg == pytest.approx(90.0, abs=0.1)
    lon, lat, _ = ais_at(boats.t_ms)

    def off_m(lon_deg, lat_deg) -> np.ndarray:
        ea, na = enu_from_geo(true.lon_deg, true.lat_deg, lon, lat)
        ed, nd = enu_from_geo(true.lon_deg, true.lat_deg, lon_deg, lat_deg)
        return np.hypot(ed - ea, nd - na)

    got = off_m(
        np.array([d.lon for d in rec.detections], dtype=float),
        np.array([d.lat for d in rec.detections], dtype=float),
    )
    assert got.max() < 60.0
    # with the installed pose the far ones were ~1 km off or beyond the horizon
    g0 = installed.pixel_to_geo(*true.geo_to_pixel(lon, lat)[:2])
    off0 = off_m(g0.lon_deg, g0.lat_deg)
    assert np.isnan(off0[2]) and off0[1] > 500.0
    # a PTZ pose passed in is used as is and does not feed the calibrator
    ptz = replace(installed, heading_deg=120.0)
    assert analyser.analyse(frame, boats.t_ms + 200, model=ptz).heading_deg == 120.0
    assert len(seen) == 60
    # an AIS source that fails costs the calibration step, not the frame
    bad = FrameAnalyser("cam-sc", installed, boats, ais_source=lambda t, c: 1 / 0)
    assert bad.analyse(frame, boats.t_ms).detections
    assert bad.selfcal_source_errors == 1


@pytest.mark.unit
def test_frame_analyser_without_detections_still_publishes():
    cam = CameraModel.from_hfov(
        lon_deg=110.3, lat_deg=20.0, height_m=20.0, heading_deg=0.0, tilt_deg=2.0,
        hfov_deg=60.0, image_width=64, image_height=36,
    )  # fmt: skip
    analyser = FrameAnalyser("c", cam, _FixedDetector([]))
    frame = np.random.default_rng(1).integers(0, 255, (36, 64, 3), dtype=np.uint8)
    rec = analyser.analyse(frame, 5, model=cam.with_pose(heading_deg=45.0))
    assert rec.detections == [] and rec.evidence_uri is None and rec.heading_deg == 45.0


@pytest.mark.unit
def test_frame_analyser_stores_evidence_of_empty_frames_only_when_asked(tmp_path):
    cam = CameraModel.from_hfov(
        lon_deg=110.3, lat_deg=20.0, height_m=20.0, heading_deg=0.0, tilt_deg=2.0,
        hfov_deg=60.0, image_width=64, image_height=36,
    )  # fmt: skip
    frame = np.random.default_rng(2).integers(0, 255, (36, 64, 3), dtype=np.uint8)
    store = DirectoryEvidenceStore(tmp_path)
    assert (
        FrameAnalyser("c", cam, _FixedDetector([]), evidence_store=store)
        .analyse(frame, 7)
        .evidence_uri
        is None
    )
    assert not list(tmp_path.rglob("*.jpg"))
    rec = FrameAnalyser(
        "c", cam, _FixedDetector([]), evidence_store=store, evidence_when_empty=True
    ).analyse(frame, 8)
    assert rec.evidence_uri and Path(urlparse(rec.evidence_uri).path).is_file()


@pytest.mark.unit
def test_evidence_store_refuses_keys_outside_its_root(tmp_path):
    store = DirectoryEvidenceStore(tmp_path)
    with pytest.raises(ValueError):
        store.put("../escape.jpg", b"x")


# ---------------------------------------------------------------------------- evaluation
@pytest.mark.unit
def test_evaluate_clip_on_one_second(clip, yolo_dir):
    det = DnnDetector.from_dir(yolo_dir, conf=0.25)
    res = evaluate_clip(clip, det, seconds=(4,))
    assert res["frames_run"] == 5  # whole seconds up to frame 124
    assert res["gt_boxes"] == 2 and res["true_positives"] == 2 and res["recall"] == 1.0
    assert 0 < res["precision"] <= 1.0
    assert {m["mmsi"] for m in res["matched"]} == {380000000, 290000000}
    # geo-referencing error is bounded by the camera calibration (see README figures)
    assert 0 < res["geo_error_median_m"] < 3000
    # bearing: box bottom-centre vs AIS antenna (at the stern of a ~150 m barge)
    assert res["bearing_error_median_deg"] < 4.0
    # in the image the error is a few rows; near the far bank one row is worth ~0.7 km
    rows, lever = res["row_error_median_px_by_mmsi"], res["range_m_per_px_median_by_mmsi"]
    assert rows["290000000"] < 8.0 and lever["290000000"] > 300.0
    assert rows["380000000"] < 15.0 and lever["380000000"] < 40.0
    for m in res["matched"]:
        du, dv = m["pixel_error_px"]
        assert abs(dv) == pytest.approx(
            abs(m["box_px"][1] + m["box_px"][3] - m["ais_px"][1]), abs=0.15
        )
    # unmatched boxes are listed for a person to check, with their geometry
    assert all(len(u["box_px"]) == 4 and "beyond_horizon" in u for u in res["unlabelled"])
    assert res["unlabelled_on_water"] + res["unlabelled_beyond_horizon"] == len(res["unlabelled"])
    # the detector's false boxes on this clip sit on the bridge across the far bank, beyond
    # the camera's horizon (y < 240 px of 500): none of them reaches fusion
    assert res["unlabelled_on_water"] == 0
    assert all(u["box_px"][1] + u["box_px"][3] < 240 for u in res["unlabelled"])
    # whole seconds without ground truth are listed too: the small boat at the left edge
    left = np.array([[30.0, 265.0, 35.0, 20.0]])
    unscored = np.array([u["box_px"] for u in res["unscored"]])
    assert iou_xywh(left, unscored).max() > 0.2
    json.dumps(res)


@pytest.mark.unit
def test_bench_reports_rates_and_leaves_latency_to_the_connector(clip, yolo_dir):
    res = bench_clip(clip, yolo_dir, n_frames=3)
    assert res["dnn_fps_per_core"] > 0 and res["motion_fps_per_core"] > 0
    assert res["cameras_at_5fps_per_core"] >= 0
    assert res["capture_to_topic_p95_ms"] is None


@pytest.mark.unit
def test_evaluate_clip_reports_calibrated_geo_error(clip, yolo_dir):
    det = DnnDetector.from_dir(yolo_dir, conf=0.2)
    res = evaluate_clip(clip, det, seconds=(3, 4, 5), calibrate=True)
    assert res["recall"] == 1.0
    # refining heading/tilt/height on the other seconds' AIS matches beats the raw parameters
    assert res["geo_error_median_m_calibrated"] < res["geo_error_median_m"] / 5
    pose = res["calibrated_pose"]
    assert pose["height_m"] > 20.0 and pose["tilt_deg"] > 4.0
    assert res["track_ids_by_mmsi"].keys() == {"290000000", "380000000"}


@pytest.mark.unit
def test_self_calibration_on_the_clip_beats_the_shipped_parameters(clip, yolo_dir):
    det = DnnDetector.from_dir(yolo_dir, conf=0.2)
    res = evaluate_clip(clip, det, self_calibrate=True)
    # measured: 1,657 m with camera_para.txt, 137 m self-calibrated (prequential)
    assert res["geo_error_median_m"] > 1000
    assert res["geo_error_median_m_selfcal"] < res["geo_error_median_m"] / 5
    # both vessels are scored, and neither is left near its shipped-parameters error
    by_mmsi = res["geo_error_median_m_selfcal_by_mmsi"]
    assert set(by_mmsi) == {"290000000", "380000000"}
    assert by_mmsi["290000000"] < 500 and by_mmsi["380000000"] < 250
    assert res["selfcal_scored"] == res["true_positives"] == 15
    pose = res["selfcal_pose"]
    # towards the pose refined with the ground truth (354.07 deg, 5.61 deg down, 56.8 m),
    # within the default bounds (height at most twice the configured 20 m)
    assert 353.0 < pose["heading_deg"] < 355.5 and 4.5 < pose["tilt_deg"] < 6.0
    assert 30.0 < pose["height_m"] <= 40.0 + 1e-6
    # ... and it says that the height stopped at the bound
    assert res["selfcal_at_bounds"] == ["height_m"]
    assert pose["pose_updates"] >= 1 and res["selfcal_pairs"] >= 8
    # prequential: the first scored second was geo-referenced with the shipped pose
    first = res["selfcal_trace"][0]
    assert first["frame"] == 74 and first["changed"]
    json.dumps(res)


@pytest.mark.unit
def test_conf_below_opencv_yolo_default_threshold_is_honoured(clip_frames, yolo_dir):
    # OpenCV's Darknet YOLO layer drops class scores under the cfg's thresh (0.2 by
    # default); the detector rewrites it so a lower conf really yields lower scores.
    assert "thresh = 0.1\n" in _with_yolo_thresh("[net]\n[yolo]\nthresh=.5\nclasses=80\n", 0.1)
    assert "thresh=.5" not in _with_yolo_thresh("[yolo]\nthresh=.5\n", 0.1)
    low = DnnDetector.from_dir(yolo_dir, conf=0.1).detect(clip_frames[74])
    high = DnnDetector.from_dir(yolo_dir, conf=0.25).detect(clip_frames[74])
    assert low.scores.min() < 0.2 <= high.scores.min()
    assert len(low) > len(high)


@pytest.mark.unit
def test_cli_eval_and_bench_camera_print_json(shared, capsys, yolo_dir):
    from pipeline.cli import main

    clip_dir = str(shared / "data" / "video" / "clip-01")
    model_dir = str(yolo_dir)
    assert main(["eval", "camera", "--clip", clip_dir, "--model-dir", model_dir, "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    # seconds 2..9 of the ground truth are in the 250-frame video
    assert res["frames"] == "one per second" and res["seconds"] == list(range(2, 10))
    assert res["gt_boxes"] == 16
    assert res["recall"] >= 0.9  # 15/16 at conf 0.2
    for key in ("precision", "geo_error_median_m", "unlabelled"):
        assert key in res
    assert main(["bench", "camera", "--clip", clip_dir, "--frames", "2", "--json"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["capture_to_topic_p95_ms"] is None and bench["threads"] == 1
    assert bench["analyser_with_evidence_cpu_ms_per_frame"] > 0
    # both inference backends are timed: ONNX Runtime (the default) and OpenCV's dnn
    assert bench["dnn_backend"] == "onnxruntime"
    assert bench["dnn_fps_per_core"] > 0 and bench["dnn_opencv_fps_per_core"] > 0


# ---------------------------------------------------------------------------- structures
_BRIDGE = Structure("bridge", ((0.0, 100.0), (640.0, 100.0), (640.0, 120.0), (0.0, 120.0)))
_TOWER = Structure("tower", ((300.0, 20.0), (320.0, 20.0), (320.0, 121.0), (300.0, 121.0)))


@pytest.mark.unit
def test_structure_mask_measures_each_box_inside_the_outlines():
    mask = StructureMask([_BRIDGE, _TOWER], 640, 360)
    boxes = np.array(
        [
            [100.0, 100.0, 40.0, 20.0],  # on the deck
            [100.0, 110.0, 40.0, 20.0],  # half on it: its lower half is water
            [100.0, 200.0, 40.0, 20.0],  # on the water
            [295.0, 40.0, 30.0, 40.0],  # mostly the tower
            [630.0, 110.0, 40.0, 40.0],  # partly outside the image
        ]
    )
    frac, which = mask.coverage(boxes, 640, 360)
    np.testing.assert_allclose(frac[:4], [1.0, 0.5, 0.0, 20 / 30], atol=1e-9)
    assert frac[4] == pytest.approx(0.25)  # only the part inside the frame counts
    assert which.tolist()[:1] == ["bridge"] and which[3] == "tower"
    # outlines scale with the frame: the same boxes at twice the size give the same shares
    frac2, _ = mask.coverage(boxes * 2, 1280, 720)
    np.testing.assert_allclose(frac2, frac, atol=0.01)
    dets = Detections(boxes, np.linspace(0.9, 0.5, 5), np.array(["boat"] * 5, dtype=object))
    kept, dropped = mask.split(dets, 640, 360)
    assert kept.boxes_xywh.tolist() == boxes[[2, 4]].tolist()
    assert dropped.boxes_xywh.tolist() == boxes[[0, 1, 3]].tolist()  # 0.5 counts as on it
    kept, _ = StructureMask([_BRIDGE], 640, 360, overlap=0.9).split(dets, 640, 360)
    assert len(kept) == 4
    assert len(mask.split(Detections.empty(), 640, 360)[0]) == 0
    with pytest.raises(ConfigError):
        StructureMask([], 640, 360)
    with pytest.raises(ConfigError):
        StructureMask([_BRIDGE], 640, 360, overlap=0.0)


@pytest.mark.unit
def test_frame_analyser_leaves_out_detections_on_structures_but_not_under_a_ptz_pose():
    cam = _east_camera()
    on_deck, on_sea = [100.0, 100.0, 40.0, 20.0], [300.0, 250.0, 40.0, 20.0]
    analyser = FrameAnalyser(
        "c1", cam, _FixedDetector([on_deck, on_sea]), MultiObjectTracker(n_init=1), None,
        structures=StructureMask([_BRIDGE], 640, 360),
    )  # fmt: skip
    frame = np.random.default_rng(1).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    rec = analyser.analyse(frame, 1_000)
    assert [d.box_px for d in rec.detections] == [on_sea]
    assert rec.masked_detections == 1 and analyser.masked_detections == 1
    # the left-out box never reached the tracker
    assert len(analyser.tracker.ids) == 1
    # outlines hold at the home pose only: under a PTZ pose every detection is published
    turned = cam.with_pose(heading_deg=120.0)
    rec = analyser.analyse(frame, 2_000, model=turned)
    assert len(rec.detections) == 2 and rec.masked_detections == 0
    assert analyser.masked_detections == 1


@pytest.mark.unit
def test_eval_camera_leaves_the_bridge_out_and_keeps_every_vessel(shared, capsys, yolo_dir):
    """With the clip's outlined structures (sites/clips/clip-01.structures.yaml), the
    27 boxes the detector puts on the far-bank bridge are left out, listed for a person
    to check, and no labelled vessel is lost with them."""
    from pipeline.cli import main

    clip_dir = str(shared / "data" / "video" / "clip-01")
    model_dir = str(yolo_dir)
    base = ["eval", "camera", "--clip", clip_dir, "--model-dir", model_dir, "--json"]
    assert main(base) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["structures"]["file"].endswith("sites/clips/clip-01.structures.yaml")
    assert main([*base, "--structures", "none"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert raw["structures"] is None and raw["masked"] == []
    # every detection that matches no label is on the bridge: left out with the outlines
    assert raw["unlabelled_beyond_horizon"] > 20 and raw["unlabelled_on_water"] == 0
    assert res["unlabelled"] == [] and res["precision"] == 1.0
    assert len(res["masked"]) == len(raw["unlabelled"]) and res["masked_labelled"] == 0
    # the outlines stop at the far waterline: nothing left out reaches below it
    assert all(m["box_px"][1] < 232.0 for m in res["masked"])
    assert res["true_positives"] == raw["true_positives"] and res["recall"] >= 0.9
    assert res["track_ids_by_mmsi"] == raw["track_ids_by_mmsi"]
