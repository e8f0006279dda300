"""Hull numbers of a camera's targets: OCR of the crops of detections large enough to read,
attached to the frame's records.

OCR costs a few hundred milliseconds a crop on one core, so a camera track is read at most
once per ``retry_s`` of event time while its box is at least ``min_box_h_px`` tall (a close
pass, or a PTZ zoom), and its most confident valid reading so far is attached to every
later detection of the track (:attr:`~schemas.records.CameraDetection.hull_number`,
``hull_confidence``). The area engine keeps it on the fused target and the driver looks it
up in the registry: a dark target whose number is registered gets that vessel's identity,
one whose number is not is a "三无" candidate. OCR garbage is never a number
(:class:`~pipeline.vision.hullocr.HullNumberReader` keeps only valid hull numbers).
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from schemas.records import CameraDetection, CameraFrame

__all__ = ["HullReadStage", "HullReadingAnalyser", "LockedReader"]


class HullReadStage:
    """Reads hull numbers off one camera's detections, frame by frame.

    :param reader: a :class:`~pipeline.vision.hullocr.HullNumberReader` (anything with
        ``read(crop_bgr) -> HullReading``)
    :param min_box_h_px: only boxes at least this tall are read, pixels (a hull number is
        a fifth of the hull's height or more; 32 px characters read reliably,
        ``docs/registry.md``)
    :param retry_s: a track is read again at most this often, s of event time
    :param crop_pad: padding around the box, as a fraction of its size
    :param forget_s: a track unseen this long is forgotten with its reading, s
    """

    def __init__(
        self,
        reader: Any,
        *,
        min_box_h_px: float = 64.0,
        retry_s: float = 5.0,
        crop_pad: float = 0.1,
        forget_s: float = 60.0,
    ) -> None:
        self.reader = reader
        self.min_box_h_px = float(min_box_h_px)
        self.retry_s = float(retry_s)
        self.crop_pad = float(crop_pad)
        #: track id -> (hull number, confidence) of its best reading
        self.best: dict[int, tuple[str, float]] = {}
        self._tried_t_ms: dict[int, int] = {}
        self._seen_t_ms: dict[int, int] = {}
        self.forget_s = float(forget_s)
        self.reads = 0

    def _crop(self, frame: np.ndarray, box: list[float]) -> np.ndarray | None:
        h, w = frame.shape[:2]
        x, y, bw, bh = box
        px, py = bw * self.crop_pad, bh * self.crop_pad
        x0, y0 = int(max(0, np.floor(x - px))), int(max(0, np.floor(y - py)))
        x1, y1 = int(min(w, np.ceil(x + bw + px))), int(min(h, np.ceil(y + bh + py)))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        return np.ascontiguousarray(frame[y0:y1, x0:x1])

    def _read(self, frame: np.ndarray, t_ms: int, d: CameraDetection) -> None:
        tid = d.track_id
        if tid < 0 or d.box_px[3] < self.min_box_h_px:
            return
        last = self._tried_t_ms.get(tid)
        if last is not None and t_ms - last < self.retry_s * 1000.0:
            return
        self._tried_t_ms[tid] = t_ms
        crop = self._crop(frame, d.box_px)
        if crop is None:
            return
        self.reads += 1
        reading = self.reader.read(crop)
        if reading.number is not None:
            best = self.best.get(tid)
            if best is None or reading.confidence > best[1]:
                self.best[tid] = (str(reading.number), float(reading.confidence))

    def apply(self, frame_bgr: np.ndarray, record: CameraFrame) -> CameraFrame:
        """``record`` (the analysis of ``frame_bgr``) with each detection's hull reading.

        :param frame_bgr: the ``(H, W, 3)`` uint8 BGR frame the record's boxes are in
        """
        for d in record.detections:
            self._read(frame_bgr, record.t_ms, d)
        for d in record.detections:
            self._seen_t_ms[d.track_id] = record.t_ms
        gone = record.t_ms - self.forget_s * 1000.0
        for tid in [t for t, seen in self._seen_t_ms.items() if seen < gone]:
            for kept in (self._seen_t_ms, self._tried_t_ms, self.best):
                kept.pop(tid, None)
        dets = [
            msgspec.structs.replace(d, hull_number=self.best[d.track_id][0],
                                    hull_confidence=round(self.best[d.track_id][1], 3))
            if d.track_id in self.best else d
            for d in record.detections
        ]  # fmt: skip
        return msgspec.structs.replace(record, detections=dets)


class LockedReader:
    """One OCR reader shared by every camera's analysis thread, one crop at a time.

    :param reader: anything with ``read(crop_bgr) -> HullReading``
    """

    def __init__(self, reader: Any) -> None:
        import threading

        self.reader = reader
        self._lock = threading.Lock()

    def read(self, crop_bgr: np.ndarray) -> Any:
        with self._lock:
            return self.reader.read(crop_bgr)


class HullReadingAnalyser:
    """A camera's frame analyser followed by its :class:`HullReadStage`: every record it
    returns carries the hull readings of its detections (``ingest camera
    --read-hull-numbers``). Other attributes are the wrapped analyser's.

    :param analyser: the camera's analyser (``analyse(image_bgr, t_ms, **kw) -> CameraFrame``)
    :param stage: the camera's reading stage
    """

    def __init__(self, analyser: Any, stage: HullReadStage) -> None:
        self.analyser = analyser
        self.stage = stage

    def analyse(self, frame_bgr: np.ndarray, t_ms: int, *, model: Any = None) -> CameraFrame:
        """The wrapped analyser's record of ``frame_bgr``, with hull readings attached.

        :param model: the camera model of a moved PTZ camera (as the wrapped analyser takes)
        """
        record = (
            self.analyser.analyse(frame_bgr, t_ms)
            if model is None
            else self.analyser.analyse(frame_bgr, t_ms, model=model)
        )
        return self.stage.apply(frame_bgr, record)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.analyser, name)
