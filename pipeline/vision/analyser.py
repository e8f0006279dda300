"""Vessel detection, image tracking and geo-referencing of camera frames (adapter).

This module is the OpenCV side of the camera ring: it turns a BGR frame into a
:class:`schemas.records.CameraFrame`. The pure pieces live in the core
(:mod:`pipeline.core.camera` for geometry, :mod:`pipeline.core.mot` for tracking).

Detectors implement the one-method :class:`Detector` protocol:

- :class:`DnnDetector` runs a Darknet YOLO model (Yolo-Fastest 1.1, COCO class
  ``boat``). By default the network is converted to ONNX in memory when the detector
  starts (:mod:`pipeline.vision.darknet`) and runs on ONNX Runtime, about 2.5 times faster on
  one core than OpenCV's ``dnn`` module, which remains the second backend
  (``backend="opencv"``). **OpenCV is pinned to 4.x**
  (``opencv-python-headless>=4.9,<5``): OpenCV 5 removed ``readNetFromDarknet``, and
  its Darknet importer is the independent reference the conversion is tested against
  (same outputs to within 2e-4 on the real clip). The weights are never committed,
  nor is a converted model: both are read from a configured path
  (``../shared/models/yolo-fastest-1.1`` on developer machines).
- :class:`MotionDetector` is background subtraction restricted to the water
  (below the horizon line and inside an optional ``water_mask`` polygon), for
  cameras with no model configured. It is known to be weak on water (wakes,
  glare); prefer the DNN.

:class:`FrameAnalyser` chains detector, tracker and camera model, and writes
evidence (frame JPEG and box crops) to an :class:`EvidenceStore`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from pipeline.core.arrays import finite_or_none
from pipeline.core.camera import (
    CameraModel,
    GeoRef,
    PoseCalibrator,
    SelfCalConfig,
)
from pipeline.core.mot import MultiObjectTracker
from pipeline.vision.detectors import Detections, Detector
from pipeline.vision.evidence import EvidenceStore, _jpeg
from pipeline.vision.frames import check_frame
from pipeline.vision.structures import StructureMask
from schemas.records import CameraDetection, CameraFrame

log = logging.getLogger(__name__)


__all__ = [
    "AisSource",
    "Detector",
    "EvidenceStore",
    "FrameAnalyser",
    "StructureMask",
]


# --------------------------------------------------------------------------- analyser
AisSource = Callable[[int, CameraModel], tuple[np.ndarray, np.ndarray, np.ndarray]]
"""``(t_ms, camera) -> (lon_deg, lat_deg, mmsi)``: the AIS vessels near a camera at an
event time (ms UTC), positions in degrees WGS84, e.g. dead-reckoned tracks."""


class FrameAnalyser:
    """Detect, track and geo-reference one camera's frames.

    :param camera_id: camera id used in records and evidence keys
    :param model: the calibrated camera; rescaled automatically to the frame size
    :param detector: any :class:`Detector`
    :param tracker: the camera's :class:`MultiObjectTracker` (state is kept across frames)
    :param evidence_store: where frame and crop JPEGs go; ``None`` writes no evidence
    :param crop_pad: padding around each crop, as a fraction of the box size
    :param jpeg_quality: JPEG quality 0..100
    :param evidence_when_empty: also store the frame JPEG when nothing was detected
    :param ais_source: turns on self-calibration: every frame's detections and the AIS
        vessels this returns feed a :class:`~pipeline.core.camera.PoseCalibrator`, and
        frames are geo-referenced with the pose it learnt from the earlier frames (not
        while a ``model`` is passed to :meth:`analyse`, i.e. a PTZ pose is in force)
    :param selfcal_config: the calibrator's settings; default :class:`SelfCalConfig` with a
        refit every 25 frames (5 s at 5 fps)
    :param structures: fixed structures in view; detections on them are left out before
        tracking (counted in the record's ``masked_detections`` and in
        :attr:`masked_detections`), except while a PTZ pose is in force (the outlines hold
        at the home position only)
    """

    def __init__(
        self,
        camera_id: str,
        model: CameraModel,
        detector: Detector,
        tracker: MultiObjectTracker | None = None,
        evidence_store: EvidenceStore | None = None,
        *,
        crop_pad: float = 0.25,
        jpeg_quality: int = 85,
        evidence_when_empty: bool = False,
        ais_source: AisSource | None = None,
        selfcal_config: SelfCalConfig | None = None,
        structures: StructureMask | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.model = model
        self.detector = detector
        self.tracker = tracker if tracker is not None else MultiObjectTracker()
        self.evidence_store = evidence_store
        self.crop_pad = float(crop_pad)
        self.jpeg_quality = int(jpeg_quality)
        self.evidence_when_empty = bool(evidence_when_empty)
        self.ais_source = ais_source
        self.selfcal_config = (
            selfcal_config if selfcal_config is not None else SelfCalConfig(refit_every_frames=25)
        )
        self.calibrator: PoseCalibrator | None = None
        self.selfcal_source_errors = 0
        self.structures = structures
        #: detections left out on fixed structures since the start, count
        self.masked_detections = 0

    def _model_for(self, width: int, height: int, model: CameraModel | None) -> CameraModel:
        m = model if model is not None else self.model
        if (m.image_width, m.image_height) != (width, height):
            m = m.scaled(width, height)
            if model is None:
                self.model = m
        return m

    def analyse(
        self, frame_bgr: np.ndarray, t_ms: int, *, model: CameraModel | None = None
    ) -> CameraFrame:
        """One frame to one :class:`CameraFrame` record.

        :param frame_bgr: decoded ``(H, W, 3)`` uint8 BGR frame
        :param t_ms: frame event time, ms UTC (camera clock offset already corrected)
        :param model: camera pose at this frame (PTZ), default the analyser's model
        :raises FrameError: corrupt or empty frame
        """
        frame = check_frame(frame_bgr)
        h, w = frame.shape[:2]
        cam, calibrating = self._pose(w, h, model)
        dets = self.detector.detect(frame)
        masked = 0
        if self.structures is not None and model is None:
            dets, dropped = self.structures.split(dets, w, h)
            masked = len(dropped)
            self.masked_detections += masked
        boxes = dets.boxes_xywh
        ids = self.tracker.update(boxes, dets.scores, t_ms / 1000.0)
        u_px, v_px = boxes[:, 0] + boxes[:, 2] / 2.0, boxes[:, 1] + boxes[:, 3]
        geo = cam.pixel_to_geo(u_px, v_px)
        if calibrating:
            self._self_calibrate(t_ms, u_px, v_px)
        evidence_uri, crop_uris = self._store_evidence(frame, t_ms, boxes, ids)
        return CameraFrame(
            camera_id=self.camera_id,
            t_ms=int(t_ms),
            image_width=w,
            image_height=h,
            heading_deg=float(cam.heading_deg),
            hfov_deg=float(cam.hfov_deg),
            detections=_detection_records(dets, ids, geo, crop_uris),
            evidence_uri=evidence_uri,
            masked_detections=masked,
        )

    def _pose(self, w: int, h: int, model: CameraModel | None) -> tuple[CameraModel, bool]:
        """The camera model for a ``w`` x ``h`` frame, and whether the pose is being learnt
        from AIS (an AIS source and no per-frame model): then the model is the calibrator's,
        learnt from the earlier frames."""
        cam = self._model_for(w, h, model)
        calibrating = self.ais_source is not None and model is None
        if calibrating:
            c = self.calibrator
            if c is None or (c.installed.image_width, c.installed.image_height) != (w, h):
                self.calibrator = PoseCalibrator(cam, self.selfcal_config)
            assert self.calibrator is not None
            cam = self.calibrator.model  # learnt from the earlier frames
        return cam, calibrating

    def _self_calibrate(self, t_ms: int, u_px: np.ndarray, v_px: np.ndarray) -> None:
        """Feed the frame's waterline points and the AIS vessels to the pose calibrator;
        log a newly learnt pose."""
        if self.calibrator is None or self.ais_source is None:
            return
        try:
            lon, lat, mmsi = self.ais_source(int(t_ms), self.calibrator.installed)
        except Exception as exc:  # noqa: BLE001 - a failing AIS source must not cost the frame
            self.selfcal_source_errors += 1
            log.warning(
                "camera %s: AIS source for self-calibration failed: %r", self.camera_id, exc
            )
            return
        if self.calibrator.update(int(t_ms), u_px, v_px, lon, lat, mmsi):
            m = self.calibrator.model
            log.info(
                "camera %s: pose learnt from AIS: heading %.2f deg, tilt %.2f deg, "
                "height %.1f m (%d pairs, median residual %s px)",
                self.camera_id,
                m.heading_deg,
                m.tilt_deg,
                m.height_m,
                self.calibrator.n_pairs,
                self.calibrator.residual_px,
            )
            if self.calibrator.at_bounds:
                log.warning(
                    "camera %s: the learnt %s sits on its self-calibration bound: the "
                    "configured pose is likely off by more than the bounds allow",
                    self.camera_id,
                    " and ".join(self.calibrator.at_bounds),
                )

    def _store_evidence(
        self, frame: np.ndarray, t_ms: int, boxes: np.ndarray, ids: np.ndarray
    ) -> tuple[str | None, list[str | None]]:
        """Store the frame and a padded crop of each box as JPEGs, if there is an evidence
        store (and a detection, unless ``evidence_when_empty``).

        :returns: the frame's URI and each crop's (``None`` where nothing was stored)
        """
        h, w = frame.shape[:2]
        n = len(boxes)
        evidence_uri = None
        crop_uris: list[str | None] = [None] * n
        if self.evidence_store is None or not (n or self.evidence_when_empty):
            return evidence_uri, crop_uris
        stem = f"{self.camera_id}/{int(t_ms)}"
        evidence_uri = self.evidence_store.put(f"{stem}/frame.jpg", _jpeg(frame, self.jpeg_quality))
        pad = boxes[:, 2:] * self.crop_pad
        x0 = np.clip(np.floor(boxes[:, 0] - pad[:, 0]), 0, w).astype(int)
        y0 = np.clip(np.floor(boxes[:, 1] - pad[:, 1]), 0, h).astype(int)
        x1 = np.clip(np.ceil(boxes[:, 0] + boxes[:, 2] + pad[:, 0]), 0, w).astype(int)
        y1 = np.clip(np.ceil(boxes[:, 1] + boxes[:, 3] + pad[:, 1]), 0, h).astype(int)
        for i in range(n):
            if x1[i] > x0[i] and y1[i] > y0[i]:
                crop = frame[y0[i] : y1[i], x0[i] : x1[i]]
                crop_uris[i] = self.evidence_store.put(
                    f"{stem}/crop-{i}-track{int(ids[i])}.jpg", _jpeg(crop, self.jpeg_quality)
                )
        return evidence_uri, crop_uris


def _detection_records(
    dets: Detections, ids: np.ndarray, geo: GeoRef, crop_uris: list[str | None]
) -> list[CameraDetection]:
    """One :class:`CameraDetection` per detection: box, class, score, camera track id,
    bearing and range from the camera model, crop URI."""
    rows = zip(
        dets.boxes_xywh.tolist(),
        dets.scores.tolist(),
        dets.class_names.tolist(),
        ids.tolist(),
        geo.bearing_deg.tolist(),
        geo.bearing_sigma_deg.tolist(),
        geo.range_m.tolist(),
        geo.range_sigma_m.tolist(),
        geo.lon_deg.tolist(),
        geo.lat_deg.tolist(),
        geo.hits_sea.tolist(),
        crop_uris,
        strict=True,
    )
    return [
        CameraDetection(
            track_id=int(tid),
            box_px=[float(v) for v in box],
            cls=str(cls),
            confidence=float(score),
            bearing_deg=float(brg),
            bearing_sigma_deg=float(brg_s),
            range_m=finite_or_none(rng),
            range_sigma_m=finite_or_none(rng_s),
            lon=finite_or_none(lon),
            lat=finite_or_none(lat),
            beyond_horizon=not hits,
            crop_uri=crop,
        )
        for box, score, cls, tid, brg, brg_s, rng, rng_s, lon, lat, hits, crop in rows
    ]
