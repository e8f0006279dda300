"""Evaluation and benchmark of AIS ↔ camera association (``eval fusion``, ``bench fusion``).

``shorewatch eval fusion --clip ../shared/data/video/clip-01`` runs the association of
:mod:`pipeline.core.fusion` over a real FVessel clip (per-second AIS, ``camera_para.txt``,
the mp4) and scores the MMSI given to each box against ``<clip>_gt_fusion.txt``.

``shorewatch bench fusion`` times one frame of 1,000 AIS tracks × 200 detections
(cost matrix, gating, assignment) against a plain-Python double loop over the same input.

This is an adapter module (files, video, clocks); the maths lives in the core.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from pipeline.core.fusion import (
    EARTH_RADIUS_M,
    KNOT_MPS,
    CameraAssociation,
    DetectionArrays,
    FusionParams,
    VesselArrays,
    assign_pairs,
    candidate_pairs,
)
from pipeline.errors import ConfigError
from pipeline.settings import REPO_DIR

__all__ = [
    "FVesselClip",
    "bench_fusion",
    "evaluate_fusion",
    "id_metrics",
    "load_fvessel_clip",
    "naive_associate",
    "naive_cost_matrix",
    "synthetic_scene",
]

#: FVessel GT "second" ``s`` is the frame at ``(s + 1)`` seconds into the video, the last
#: frame of video second ``s + 1`` (index ``(s + 1) * fps - 1``): DeepSORVF numbers its
#: output seconds from the first whole second after the clip starts, and on clip-01 the
#: barge's detected box edges, fitted over all 250 frames, meet the labels at exactly
#: that frame (residual < 1 px; one second off they are 5 px off, the barge moving 4.6 px/s).
#: The same mapping as :func:`pipeline.tools.eval_camera.evaluate_clip`. clip-01 holds seconds 2–9.
GT_LAG_S = 1
#: detector confidence of the clip evaluations (see ``shorewatch eval camera --conf``)
EVAL_CONF = 0.2


def gt_frame_index(gt_second: int, fps: float) -> int:
    """Index of the video frame a ground-truth second labels."""
    return int(round((gt_second + GT_LAG_S) * fps)) - 1


SENSOR_WIDTH_PX, SENSOR_HEIGHT_PX = 2560, 1440


# --------------------------------------------------------------------------- clip loading


@dataclass
class FVesselClip:
    """One FVessel clip folder, loaded.

    :param camera_params: the 11 numbers of ``camera_para.txt``
    :param t0_ms: time of the first AIS file = the first video frame, ms UTC
    :param ais: ``(t_ms, vessels)`` per AIS file, in time order
    :param gt_fusion: GT second -> ``[(mmsi, [x, y, w, h]), ...]`` at 2560×1440
    :param gt_tracking: GT second -> ``[(track_id, [x, y, w, h]), ...]`` at 2560×1440
    """

    folder: Path
    camera_params: list[float]
    t0_ms: int
    ais: list[tuple[int, VesselArrays]]
    gt_fusion: dict[int, list[tuple[int, list[float]]]]
    gt_tracking: dict[int, list[tuple[int, list[float]]]]
    video: Path | None = None

    def vessels_at(self, t_ms: int) -> VesselArrays:
        """The AIS state of the last file at or before ``t_ms`` (the first file before it)."""
        times = [t for t, _ in self.ais]
        i = max(0, int(np.searchsorted(times, t_ms, side="right")) - 1)
        return self.ais[i][1]

    def frame_time_ms(self, gt_second: int) -> int:
        return self.t0_ms + (gt_second + GT_LAG_S) * 1000


def _read_ais_csv(path: Path) -> VesselArrays:
    mmsi, t, lon, lat, sog, cog = [], [], [], [], [], []
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            mmsi.append(int(float(row["mmsi"])))
            t.append(int(float(row["timestamp"])))
            x, y = float(row["lon"]), float(row["lat"])
            ok = abs(x) <= 180.0 and abs(y) <= 90.0
            lon.append(x if ok else math.nan)
            lat.append(y if ok else math.nan)
            s, c = float(row["speed"]), float(row["course"])
            sog.append(s if 0.0 <= s < 102.25 else math.nan)
            cog.append(c if 0.0 <= c < 360.0 else math.nan)
    return VesselArrays.from_lists(mmsi, t, lon, lat, sog, cog)


def _read_mot(path: Path) -> dict[int, list[tuple[int, list[float]]]]:
    out: dict[int, list[tuple[int, list[float]]]] = {}
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        parts = line.strip().split(",")
        if len(parts) < 6:
            continue
        s, ident = int(float(parts[0])), int(float(parts[1]))
        out.setdefault(s, []).append((ident, [float(x) for x in parts[2:6]]))
    return out


def load_fvessel_clip(folder: str | Path, utc_offset_h: float = 8.0) -> FVesselClip:
    """Load an FVessel clip folder (``ais/*.csv`` named by local time, GT files, camera).

    :param folder: the clip folder, e.g. ``../shared/data/video/clip-01``
    :param utc_offset_h: the local time zone of the AIS file names, hours (Wuhan: +8)
    :raises ConfigError: when the folder or its camera/AIS files are missing
    """
    folder = Path(folder)
    para = folder / "camera_para.txt"
    ais_dir = folder / "ais"
    if not para.is_file() or not ais_dir.is_dir():
        raise ConfigError(f"{folder}: not an FVessel clip (needs camera_para.txt and ais/)")
    params = [float(x) for x in para.read_text().strip().strip("[]").split(",")]
    tz = timezone(timedelta(hours=utc_offset_h))
    ais: list[tuple[int, VesselArrays]] = []
    for p in sorted(ais_dir.glob("*.csv")):
        t = datetime.strptime(p.stem, "%Y_%m_%d_%H_%M_%S").replace(tzinfo=tz)
        ais.append((int(t.timestamp() * 1000), _read_ais_csv(p)))
    if not ais:
        raise ConfigError(f"{ais_dir}: no AIS files")
    name = folder.name
    videos = sorted(folder.glob("*.mp4"))
    return FVesselClip(
        folder=folder,
        camera_params=params,
        t0_ms=ais[0][0],
        ais=ais,
        gt_fusion=_read_mot(folder / f"{name}_gt_fusion.txt"),
        gt_tracking=_read_mot(folder / f"{name}_gt_tracking.txt"),
        video=videos[0] if videos else None,
    )


# --------------------------------------------------------------------------- metrics


def _iou(a: Any, b: Any) -> np.ndarray:
    a = np.asarray(a, dtype=float).reshape(-1, 4)
    b = np.asarray(b, dtype=float).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
    y2 = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = a[:, None, 2] * a[:, None, 3] + b[None, :, 2] * b[None, :, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def id_metrics(
    gt: dict[int, list[tuple[int, list[float]]]],
    pred: dict[int, list[tuple[int, list[float]]]],
    iou_min: float = 0.3,
) -> dict[str, Any]:
    """Precision, recall and ID metrics of identity labels on boxes.

    ``gt`` and ``pred`` map a frame to ``[(identity, [x, y, w, h]), ...]``; predicted boxes
    carry the MMSI given by association (boxes without one are left out of ``pred``).

    - **precision / recall**: per frame, predicted and GT boxes are matched one-to-one by
      IoU >= ``iou_min`` (Hungarian on IoU); a predicted label is correct when its matched GT
      box has the same MMSI. precision = correct / predicted labels, recall = correct / GT boxes.
    - **IDF1, IDP, IDR** (Ristani et al. 2016): a GT identity and a predicted identity
      co-occur in a frame when their boxes overlap by IoU >= ``iou_min``; the one-to-one
      mapping of identities maximising the co-occurrences gives IDTP; IDFP = predicted boxes -
      IDTP, IDFN = GT boxes - IDTP, IDF1 = 2 IDTP / (2 IDTP + IDFP + IDFN).

    >>> g = {1: [(7, [0, 0, 10, 10])], 2: [(7, [1, 0, 10, 10])]}
    >>> p = {1: [(7, [0, 0, 10, 10])], 2: [(8, [1, 0, 10, 10])]}
    >>> m = id_metrics(g, p)
    >>> m["precision"], m["recall"], m["idf1"]
    (0.5, 0.5, 0.5)
    """
    n_gt = sum(len(v) for v in gt.values())
    n_pred = sum(len(v) for v in pred.values())
    correct = 0
    gt_ids = sorted({i for v in gt.values() for i, _ in v})
    pr_ids = sorted({i for v in pred.values() for i, _ in v})
    co = np.zeros((len(gt_ids), len(pr_ids)))
    gi = {x: k for k, x in enumerate(gt_ids)}
    pi = {x: k for k, x in enumerate(pr_ids)}
    for frame in sorted(set(gt) | set(pred)):
        g, p = gt.get(frame, []), pred.get(frame, [])
        if not g or not p:
            continue
        iou = _iou([b for _, b in g], [b for _, b in p])
        a, b = linear_sum_assignment(-iou)
        for x, y in zip(a, b, strict=True):
            if iou[x, y] >= iou_min and g[x][0] == p[y][0]:
                correct += 1
        for x in range(len(g)):
            for y in range(len(p)):
                if iou[x, y] >= iou_min:
                    co[gi[g[x][0]], pi[p[y][0]]] += 1
    idtp = 0.0
    if co.size:
        a, b = linear_sum_assignment(-co)
        idtp = float(co[a, b].sum())
    idfp, idfn = n_pred - idtp, n_gt - idtp

    def frac(x: float, y: float) -> float:
        return float(x / y) if y else 0.0

    return {
        "precision": frac(correct, n_pred),
        "recall": frac(correct, n_gt),
        "idf1": frac(2 * idtp, 2 * idtp + idfp + idfn),
        "idp": frac(idtp, n_pred),
        "idr": frac(idtp, n_gt),
        "idtp": int(idtp),
        "idfp": int(idfp),
        "idfn": int(idfn),
        "gt_boxes": n_gt,
        "labelled_boxes": n_pred,
        "correct": correct,
    }


# --------------------------------------------------------------------------- evaluation


def _camera_model(params: list[float], width: int, height: int) -> Any:
    from pipeline.core.camera import CameraModel

    return CameraModel.from_fvessel_params(
        params, width, height, sensor_width=SENSOR_WIDTH_PX, sensor_height=SENSOR_HEIGHT_PX
    )


def detections_from_boxes(model: Any, track_ids: Any, boxes_xywh: Any) -> DetectionArrays:
    """Geo-reference boxes (waterline = bottom centre) with the camera model.

    :param model: ``CameraModel`` in the boxes' pixel frame
    :param track_ids: (M,) camera track ids
    :param boxes_xywh: (M, 4) boxes ``[x, y, w, h]``, pixels
    """
    boxes = np.asarray(boxes_xywh, dtype=float).reshape(-1, 4)
    u = boxes[:, 0] + boxes[:, 2] / 2.0
    v = boxes[:, 1] + boxes[:, 3]
    g = model.pixel_to_geo(u, v)
    return DetectionArrays(
        track_id=np.asarray(track_ids, dtype=np.int64).reshape(-1),
        bearing_deg=np.asarray(g.bearing_deg, dtype=float),
        bearing_sigma_deg=np.asarray(g.bearing_sigma_deg, dtype=float),
        range_m=np.where(g.hits_sea, g.range_m, np.nan),
        range_sigma_m=np.where(g.hits_sea, g.range_sigma_m, np.nan),
        lon_deg=np.asarray(g.lon_deg, dtype=float),
        lat_deg=np.asarray(g.lat_deg, dtype=float),
        box_px=boxes,
    )


@dataclass
class _Run:
    pred: dict[int, list[tuple[int, list[float]]]] = field(default_factory=dict)
    pred_confirmed: dict[int, list[tuple[int, list[float]]]] = field(default_factory=dict)
    boxes: dict[int, int] = field(default_factory=dict)
    unseen: dict[int, list[int]] = field(default_factory=dict)
    occluded: dict[int, list[int]] = field(default_factory=dict)


def _record(run: _Run, s: int, dets_boxes: np.ndarray, scale: tuple[float, float], fa: Any) -> None:
    sx, sy = scale
    run.pred[s] = []
    run.pred_confirmed[s] = []
    run.boxes[s] = int(dets_boxes.shape[0])
    run.unseen[s] = [int(x) for x in fa.unseen_mmsi]
    run.occluded[s] = [int(x) for x in fa.occluded_mmsi]
    for j in range(dets_boxes.shape[0]):
        mm = int(fa.mmsi[j])
        if mm < 0:
            continue
        x, y, w, h = dets_boxes[j]
        box = [x * sx, y * sy, w * sx, h * sy]
        run.pred[s].append((mm, box))
        if bool(fa.confirmed[j]):
            run.pred_confirmed[s].append((mm, box))


def _run_gt(clip: FVesselClip, params: FusionParams, seconds: list[int]) -> _Run:
    model = _camera_model(clip.camera_params, SENSOR_WIDTH_PX, SENSOR_HEIGHT_PX)
    assoc = CameraAssociation()
    run = _Run()
    for s in seconds:
        rows = clip.gt_tracking.get(s, [])
        tids = np.array([tid for tid, _ in rows], dtype=np.int64)
        boxes = np.array([b for _, b in rows], dtype=float).reshape(-1, 4)
        t_ms = clip.frame_time_ms(s)
        dets = detections_from_boxes(model, tids, boxes)
        fa = assoc.step(t_ms, dets, clip.vessels_at(t_ms), model, params)
        _record(run, s, boxes, (1.0, 1.0), fa)
    return run


def default_model_dir() -> Path:
    """``$SHOREWATCH_SHARED/models/yolo-fastest-1.1`` (default ``../shared`` beside the repo)."""
    shared = Path(os.environ.get("SHOREWATCH_SHARED", REPO_DIR.parent / "shared"))
    return shared / "models" / "yolo-fastest-1.1"


def _run_dnn(
    clip: FVesselClip,
    params: FusionParams,
    seconds: list[int],
    analysed_fps: float,
    model_dir: Path | None,
) -> _Run:
    import cv2

    from pipeline.core.mot import MultiObjectTracker
    from pipeline.vision.analyser import FrameAnalyser
    from pipeline.vision.detectors import DnnDetector

    if clip.video is None:
        raise ConfigError(f"{clip.folder}: no video")
    # the operating point of `eval camera` (confidence 0.2), so both evaluations see the same boxes
    detector = DnnDetector.from_dir(model_dir or default_model_dir(), conf=EVAL_CONF)
    cap = cv2.VideoCapture(str(clip.video))
    if not cap.isOpened():
        raise ConfigError(f"cannot open {clip.video}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    model = _camera_model(clip.camera_params, width, height)
    step = max(1, int(round(fps / analysed_fps)))
    # an image track coasts through 2 s of detector misses at the analysed rate
    tracker = MultiObjectTracker(max_misses=max(5, int(round(2.0 * fps / step))))
    analyser = FrameAnalyser("clip", model, detector, tracker, None)
    eval_frames = {gt_frame_index(s, fps): s for s in seconds}
    assoc = CameraAssociation()
    run = _Run()
    scale = (SENSOR_WIDTH_PX / width, SENSOR_HEIGHT_PX / height)
    last = max(eval_frames)
    i = 0
    try:
        while i <= last:
            ok, frame = cap.read()
            if not ok:
                break
            if i % step == 0 or i in eval_frames:
                t_ms = clip.t0_ms + int(round(i * 1000.0 / fps))
                cf = analyser.analyse(frame, t_ms)
                # tentative image tracks (id -1) are matched for this frame only
                keep = cf.detections
                dets = DetectionArrays.from_camera_frame(cf)
                fa = assoc.step(t_ms, dets, clip.vessels_at(t_ms), model, params)
                if i in eval_frames:
                    boxes = np.array([d.box_px for d in keep], dtype=float).reshape(-1, 4)
                    _record(run, eval_frames[i], boxes, scale, fa)
            i += 1
    finally:
        cap.release()
    return run


def evaluate_fusion(
    clip_dir: str | Path,
    detections: str = "dnn",
    params: FusionParams | None = None,
    analysed_fps: float = 5.0,
    model_dir: Path | None = None,
) -> dict[str, Any]:
    """Run association over an FVessel clip and score it against ``*_gt_fusion.txt``.

    Only the GT seconds whose frame the video holds are scored (clip-01: seconds 2–9).

    :param clip_dir: the clip folder
    :param detections: ``dnn`` (detector + tracker on the video) or ``gt`` (GT boxes and
        GT track ids as detections: isolates association quality)
    :param analysed_fps: frames per second fed to detector and association (``dnn``)
    :returns: the metrics of :func:`id_metrics` (labels as reported, tentative included),
        ``confirmed`` (the same counting only confirmed labels) and per-second details
    """
    params = params or FusionParams()
    clip = load_fvessel_clip(clip_dir)
    duration_s = _video_duration_s(clip)
    seconds = sorted(
        s for s in clip.gt_fusion if 0 <= s + GT_LAG_S <= duration_s and s in clip.gt_tracking
    )
    if not seconds:
        raise ConfigError(f"{clip.folder}: no ground-truth second inside the video")
    if detections == "gt":
        run = _run_gt(clip, params, seconds)
    elif detections == "dnn":
        run = _run_dnn(clip, params, seconds, analysed_fps, model_dir)
    else:
        raise ConfigError(f"unknown detections source {detections!r} (dnn or gt)")
    gt = {s: clip.gt_fusion[s] for s in seconds}
    out = id_metrics(gt, run.pred)
    out["confirmed"] = id_metrics(gt, run.pred_confirmed)
    out["detections"] = detections
    out["seconds"] = seconds
    out["per_second"] = [
        {
            "second": s,
            "gt": [m for m, _ in gt[s]],
            "labelled": [m for m, _ in run.pred.get(s, [])],
            "boxes": run.boxes.get(s, 0),
            "unseen_mmsi": run.unseen.get(s, []),
            "occluded_mmsi": run.occluded.get(s, []),
        }
        for s in seconds
    ]
    out["anchor"] = {"deepsorvf_idf1_fvessel": 0.9559}
    return out


def _video_duration_s(clip: FVesselClip) -> float:
    if clip.video is None:
        return float(len(clip.ais))
    try:
        import cv2

        cap = cv2.VideoCapture(str(clip.video))
        n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        cap.release()
        if n > 0:
            return float(n / fps)
    except ImportError:  # pragma: no cover
        pass
    return float(len(clip.ais))


# --------------------------------------------------------------------------- benchmark


@dataclass(frozen=True)
class _BenchCamera:
    """A plain camera geometry for the synthetic scene (square pixels, no roll)."""

    lon_deg: float = 110.3
    lat_deg: float = 20.05
    height_m: float = 30.0
    heading_deg: float = 0.0
    tilt_deg: float = 1.0
    fx: float = 1662.8
    fy: float = 1662.8
    cx: float = 960.0
    cy: float = 540.0
    image_width: int = 1920
    image_height: int = 1080

    @property
    def hfov_deg(self) -> float:
        return math.degrees(2.0 * math.atan(self.image_width / 2.0 / self.fx))


def synthetic_scene(
    n_tracks: int = 1000, n_detections: int = 200, seed: int = 0, scene: str = "area"
) -> tuple[VesselArrays, DetectionArrays, int, Any]:
    """A synthetic frame of one camera: AIS tracks around it, detections in its view.

    ``scene="area"``: the tracks of the camera's area, spread all around it (what a
    fusion agent keyed by area holds; about a sixth fall inside the 60° view);
    ``scene="view"``: every track inside the view (16 vessels per degree: a worst case).
    80% of the detections are noisy observations of distinct vessels in view (bearing noise
    0.3°, range noise 15%), the rest clutter. Ranges 300 m – 9 km, SOG 0–15 kn (30% at 0),
    fixes 0–10 s old, half of the camera tracks with a bearing rate.

    :returns: ``(vessels, detections, t_ms, camera)``
    """
    rng = np.random.default_rng(seed)
    cam = _BenchCamera()
    t_ms = 1_700_000_000_000
    half = cam.hfov_deg / 2.0 + 3.0
    if scene == "view":
        rel = rng.uniform(-half, half, n_tracks)
    elif scene == "area":
        rel = rng.uniform(-180.0, 180.0, n_tracks)
    else:
        raise ValueError(f"unknown scene {scene!r}")
    r = rng.uniform(300.0, 9000.0, n_tracks)
    east, north = r * np.sin(np.radians(rel)), r * np.cos(np.radians(rel))
    lat = cam.lat_deg + np.degrees(north / EARTH_RADIUS_M)
    lon = cam.lon_deg + np.degrees(east / (EARTH_RADIUS_M * math.cos(math.radians(cam.lat_deg))))
    sog = np.where(rng.random(n_tracks) < 0.3, 0.0, rng.uniform(0.5, 15.0, n_tracks))
    vessels = VesselArrays(
        mmsi=np.arange(412_000_000, 412_000_000 + n_tracks, dtype=np.int64),
        t_ms=t_ms - rng.integers(0, 10_000, n_tracks),
        lon_deg=lon,
        lat_deg=lat,
        sog_kn=sog,
        cog_deg=rng.uniform(0.0, 360.0, n_tracks),
        length_m=rng.uniform(8.0, 200.0, n_tracks),
    )
    in_view = np.flatnonzero(np.abs(rel) <= cam.hfov_deg / 2.0)
    n_true = min(int(0.8 * n_detections), in_view.size)
    src = rng.choice(in_view, n_true, replace=False)
    from pipeline.core.fusion import bearing_range_from, dead_reckon

    vlon, vlat = dead_reckon(vessels, t_ms)
    b, rr, _, _ = bearing_range_from(cam.lon_deg, cam.lat_deg, vlon, vlat)
    det_b = np.concatenate(
        [
            b[src] + rng.normal(0, 0.3, n_true),
            rng.uniform(-half, half, n_detections - n_true) % 360.0,
        ]
    )
    det_r = np.concatenate(
        [rr[src] * (1 + rng.normal(0, 0.15, n_true)), rng.uniform(300, 9000, n_detections - n_true)]
    )
    length = np.concatenate([vessels.length_m[src], rng.uniform(5, 50, n_detections - n_true)])
    w_px = np.clip(length * rng.uniform(0.3, 1.0, n_detections) * cam.fx / det_r, 2.0, None)
    boxes = np.column_stack(
        [np.full(n_detections, 900.0), np.full(n_detections, 500.0), w_px, w_px / 3]
    )
    rate = np.where(rng.random(n_detections) < 0.5, np.nan, rng.normal(0, 0.2, n_detections))
    dets = DetectionArrays(
        track_id=np.arange(n_detections, dtype=np.int64),
        bearing_deg=det_b % 360.0,
        bearing_sigma_deg=np.full(n_detections, 0.5),
        range_m=det_r,
        range_sigma_m=0.15 * det_r,
        lon_deg=np.full(n_detections, np.nan),
        lat_deg=np.full(n_detections, np.nan),
        box_px=boxes,
        bearing_rate_dps=rate,
    )
    return vessels, dets, t_ms, cam


def naive_cost_matrix(
    v: VesselArrays, dets: DetectionArrays, t_ms: int, model: Any, params: FusionParams
) -> list[list[float]]:
    """The cost matrix of :func:`pipeline.core.fusion.cost_matrix`, as a plain-Python double
    loop over every vessel and detection (reference and benchmark baseline)."""
    inf = math.inf
    out: list[list[float]] = []
    cos0 = math.cos(math.radians(model.lat_deg))
    for i in range(len(v)):
        row = [inf] * len(dets)
        out.append(row)
        lon0, lat0 = float(v.lon_deg[i]), float(v.lat_deg[i])
        sog, cog = float(v.sog_kn[i]), float(v.cog_deg[i])
        dt = (t_ms - int(v.t_ms[i])) / 1000.0
        dt = max(-params.max_dead_reckoning_s, min(params.max_dead_reckoning_s, dt))
        moving = math.isfinite(sog) and math.isfinite(cog)
        spd = (sog if moving else 0.0) * KNOT_MPS
        c = math.radians(cog) if math.isfinite(cog) else 0.0
        lat = lat0 + math.degrees(spd * dt * math.cos(c) / EARTH_RADIUS_M)
        lon = lon0 + math.degrees(
            spd * dt * math.sin(c) / (EARTH_RADIUS_M * math.cos(math.radians(lat0)))
        )
        if not (math.isfinite(lon) and math.isfinite(lat)):
            continue
        east = math.radians(lon - model.lon_deg) * EARTH_RADIUS_M * cos0
        north = math.radians(lat - model.lat_deg) * EARTH_RADIUS_M
        rng_m = math.hypot(east, north)
        age = abs(t_ms - int(v.t_ms[i])) / 1000.0
        if age > params.stale_after_s or rng_m > params.max_range_m:
            continue
        brg = math.degrees(math.atan2(east, north)) % 360.0
        drs = min(age, params.max_dead_reckoning_s)
        ps = (
            params.ais_position_sigma_m
            + params.ais_sigma_growth_mps * drs
            + params.ais_sigma_speed_frac * spd * drs
        )
        ve, vn = spd * math.sin(c), spd * math.cos(c)
        rate_v = math.degrees((north * ve - east * vn) / max(rng_m * rng_m, 1.0))
        ais_bs = math.degrees(math.atan2(ps, rng_m))
        length = float(v.length_m[i])
        for j in range(len(dets)):
            db_sig = float(dets.bearing_sigma_deg[j])
            db_sig = max(db_sig, params.min_bearing_sigma_deg) if math.isfinite(db_sig) else inf
            sig_b = math.sqrt(db_sig * db_sig + ais_bs * ais_bs)
            if dets.half_width_deg is not None:
                hw = float(dets.half_width_deg[j])
                hw = hw if math.isfinite(hw) else 0.0
            elif dets.box_px is not None:
                hw = math.degrees(math.atan2(float(dets.box_px[j, 2]) / 2.0, model.fx))
            else:
                hw = 0.0
            db = abs((brg - float(dets.bearing_deg[j]) + 180.0) % 360.0 - 180.0)
            z_b = max(db - hw, 0.0) / sig_b
            if not z_b <= params.bearing_gate_sigmas:
                continue
            cost = params.w_bearing * z_b * z_b
            d_r = float(dets.range_m[j])
            if math.isfinite(d_r):
                rs = float(dets.range_sigma_m[j])
                rs = rs if math.isfinite(rs) else 0.0
                rs = max(rs, params.min_range_sigma_m, params.min_range_sigma_frac * d_r)
                z_r = (rng_m - d_r) / math.sqrt(rs * rs + ps * ps)
                if abs(z_r) > params.range_gate_sigmas:
                    continue
                cost += params.w_range * z_r * z_r
            if dets.bearing_rate_dps is not None:
                rd = float(dets.bearing_rate_dps[j])
                if math.isfinite(rd):
                    z_m = (rate_v - rd) / params.motion_sigma_dps
                    cost += params.w_motion * z_m * z_m
            if dets.box_px is not None:
                ratio = 1.0
                if math.isfinite(length) and length > 0:
                    ratio = float(dets.box_px[j, 2]) * rng_m / model.fx / length
                ratio = max(ratio, 1e-6)
                over = max(math.log(ratio / params.size_ratio_max), 0.0)
                under = max(math.log(params.size_ratio_min / ratio), 0.0)
                cost += params.w_size * (over * over + under * under)
            if cost <= params.max_cost:
                row[j] = cost
    return out


def naive_associate(
    v: VesselArrays, dets: DetectionArrays, t_ms: int, model: Any, params: FusionParams
) -> list[int]:
    """Baseline: the plain-Python cost matrix, then the same assignment
    (``linear_sum_assignment`` on the dense matrix, a large finite cost for gated pairs).

    :returns: the MMSI of each detection, -1 when none
    """
    cm = naive_cost_matrix(v, dets, t_ms, model, params)
    finite = [x for row in cm for x in row if x != math.inf]
    out = [-1] * len(dets)
    if not finite:
        return out
    big = 1.0 + 2.0 * max(finite) * (min(len(v), len(dets)) + 1)
    dense = [[x if x != math.inf else big for x in row] for row in cm]
    a, b = linear_sum_assignment(np.array(dense))
    for i, j in zip(a.tolist(), b.tolist(), strict=True):
        if dense[i][j] < big:
            out[j] = int(v.mmsi[i])
    return out


def _median_ms(fn: Any, repeats: int) -> tuple[float, list[float], Any]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times), times, out


def bench_fusion(
    n_tracks: int = 1000,
    n_detections: int = 200,
    repeats: int = 100,
    naive_repeats: int = 3,
    scene: str = "area",
    worst_case: bool = True,
) -> dict[str, Any]:
    """Time one frame's association (cost matrix + gating + assignment) and the naive loop.

    Also times the full :meth:`CameraAssociation.step` (confirmation state, unseen and
    occluded vessels) on the same frame, and, with ``worst_case``, the fast path on the
    ``view`` scene (every track inside the camera's 60° view).

    :returns: ``association_median_ms``, ``naive_median_ms``, ``speedup`` and context
    """
    params = FusionParams()
    v, dets, t_ms, cam = synthetic_scene(n_tracks, n_detections, scene=scene)

    def fast(v: VesselArrays = v, dets: DetectionArrays = dets, cam: Any = cam) -> np.ndarray:
        pairs = candidate_pairs(v, dets, t_ms, cam, params)
        r, c = assign_pairs(pairs)
        out = np.full(len(dets), -1, dtype=np.int64)
        out[c] = v.mmsi[r]
        return out

    med, times, res = _median_ms(fast, repeats)
    naive_times = []
    res_naive: list[int] = []
    for _ in range(naive_repeats):
        t0 = time.perf_counter()
        res_naive = naive_associate(v, dets, t_ms, cam, params)
        naive_times.append((time.perf_counter() - t0) * 1000.0)
    nmed = statistics.median(naive_times)
    assoc = CameraAssociation()
    clock = iter(range(0, 1000 * (repeats + 2), 1000))

    def step() -> Any:
        # one frame per second; the AIS fixes keep their age (as if reports kept coming)
        dt = next(clock)
        return assoc.step(t_ms + dt, dets, replace(v, t_ms=v.t_ms + dt), cam, params)

    step_med, _, _ = _median_ms(step, repeats)
    pairs = candidate_pairs(v, dets, t_ms, cam, params)
    out: dict[str, Any] = {
        "scene": scene,
        "tracks": n_tracks,
        "detections": n_detections,
        "candidate_pairs": int(pairs.cost.size),
        "matched": int(np.sum(res >= 0)),
        "same_assignment": bool(np.array_equal(res, np.array(res_naive, dtype=np.int64))),
        "association_median_ms": round(med, 3),
        "association_p90_ms": round(float(np.percentile(times, 90)), 3),
        "naive_median_ms": round(nmed, 1),
        "speedup": round(nmed / med, 1),
        "step_median_ms": round(step_med, 3),
        "repeats": repeats,
        "naive_repeats": naive_repeats,
    }
    if worst_case:
        wv, wd, _, wcam = synthetic_scene(n_tracks, n_detections, scene="view")
        w_med, _, _ = _median_ms(lambda: fast(wv, wd, wcam), repeats)
        w_pairs = candidate_pairs(wv, wd, t_ms, wcam, params)
        out["all_in_view_median_ms"] = round(w_med, 3)
        out["all_in_view_candidate_pairs"] = int(w_pairs.cost.size)
    return out


# --------------------------------------------------------------------------- CLI


def cmd_eval(args: argparse.Namespace) -> int:
    res = evaluate_fusion(
        args.clip,
        detections=args.detections,
        analysed_fps=args.fps,
        model_dir=Path(args.model_dir) if args.model_dir else None,
    )
    if args.json:
        print(json.dumps(res))
        return 0
    c = res["confirmed"]
    print(
        f"fusion on {args.clip} ({res['detections']} detections), GT seconds "
        f"{res['seconds'][0]}..{res['seconds'][-1]}, {res['gt_boxes']} labelled boxes"
    )
    print(
        f"  precision {res['precision']:.3f}  recall {res['recall']:.3f}  "
        f"IDF1 {res['idf1']:.3f} (IDP {res['idp']:.3f}, IDR {res['idr']:.3f})"
    )
    print(
        f"  confirmed only: precision {c['precision']:.3f}  recall {c['recall']:.3f}  "
        f"IDF1 {c['idf1']:.3f}"
    )
    for row in res["per_second"]:
        print(
            f"  s={row['second']:>3}  gt={row['gt']}  labelled={row['labelled']}  "
            f"boxes={row['boxes']}  unseen={row['unseen_mmsi']}  occluded={len(row['occluded_mmsi'])}"
        )
    print("  anchor: DeepSORVF IDF1 0.956 averaged over FVessel")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    res = bench_fusion(args.tracks, args.detections, args.repeats, args.naive_repeats, args.scene)
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k}: {v}")
    return 0
