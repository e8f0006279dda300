"""Batched inference across cameras: one detector, one network run for the frames of many
cameras.

Every camera's analyser gets a :class:`BatchClient` as its detector (the one-method
:class:`~pipeline.vision.detectors.Detector` protocol); its ``detect`` hands the frame to
the :class:`InferenceBatcher` and waits. The batcher's thread collects requests into a
batch and runs :meth:`~pipeline.vision.detectors.DnnDetector.detect_batch` once:

- **latency cap**: a batch runs when it holds ``max_batch`` frames or when its oldest
  frame has waited ``max_wait_ms``, whichever comes first;
- **bounded queue**: at most ``max_queued`` frames wait; one more raises
  :class:`~pipeline.errors.InferenceBusy` at once (the camera counts the frame as behind
  and reports it) instead of queueing without end;
- **fairness**: requests wait in one queue per camera and a batch takes them round-robin,
  one per camera per round, so a camera that submits many frames cannot fill the batches
  and starve the rest; each camera may have at most ``max_per_camera`` frames waiting.

The gain depends on the hardware: on a GPU one run of 16 frames costs little more than
one of a single frame; on one CPU core the network's cost per frame is about the same
at any batch size (measured in ``docs/camera-fleet.md``), and batching only saves the
per-call overhead.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.errors import ConfigError, InferenceBusy
from pipeline.vision.detectors import Detections

__all__ = ["BatchClient", "BatchStats", "InferenceBatcher"]


@dataclass
class BatchStats:
    """What the batcher did since the start."""

    batches: int = 0
    frames: int = 0
    rejected: int = 0
    failed_batches: int = 0
    #: frames per batch -> batches of that size
    sizes: dict[int, int] = field(default_factory=dict)
    #: frames analysed per camera id
    per_camera: dict[str, int] = field(default_factory=dict)
    #: camera ids of the last batch's frames, in batch order
    last_batch: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "frames": self.frames,
            "mean_batch": round(self.frames / self.batches, 2) if self.batches else None,
            "rejected": self.rejected,
            "failed_batches": self.failed_batches,
        }


@dataclass
class _Request:
    camera_id: str
    frame: np.ndarray
    t_s: float
    future: Future = field(default_factory=Future)


class InferenceBatcher:
    """Runs one detector for many cameras in batches (see the module).

    :param detector: anything with ``detect_batch(frames) -> list[Detections]``, e.g. a
        :class:`~pipeline.vision.detectors.DnnDetector`
    :param max_batch: most frames per network run
    :param max_wait_ms: longest a frame waits for its batch to fill, ms
    :param max_queued: most frames waiting, all cameras together
    :param max_per_camera: most frames waiting from one camera
    """

    def __init__(
        self,
        detector: Any,
        *,
        max_batch: int = 16,
        max_wait_ms: float = 20.0,
        max_queued: int = 256,
        max_per_camera: int = 2,
    ) -> None:
        if max_batch < 1 or max_queued < 1 or max_per_camera < 1 or max_wait_ms < 0:
            raise ConfigError(
                "batching needs max_batch, max_queued, max_per_camera >= 1 and max_wait_ms >= 0"
            )
        self.detector = detector
        self.max_batch = int(max_batch)
        self.max_wait_s = float(max_wait_ms) / 1000.0
        self.max_queued = int(max_queued)
        self.max_per_camera = int(max_per_camera)
        self.stats = BatchStats()
        self._queues: OrderedDict[str, deque[_Request]] = OrderedDict()
        self._queued = 0
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="inference-batcher", daemon=True)
        self._thread.start()

    def client(self, camera_id: str) -> BatchClient:
        """The detector one camera's analyser uses."""
        return BatchClient(self, str(camera_id))

    def close(self, join_timeout_s: float = 10.0) -> None:
        """Stop the thread; frames still waiting fail with :class:`InferenceBusy`."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(join_timeout_s)

    def submit(self, camera_id: str, frame: np.ndarray) -> Future:
        """Queue one frame; its future resolves to its :class:`Detections`.

        :raises InferenceBusy: the queue, or this camera's share of it, is full
        """
        req = _Request(camera_id, frame, time.monotonic())
        with self._cond:
            if self._stop:
                raise InferenceBusy("the batched detector is stopped")
            q = self._queues.get(camera_id)
            if self._queued >= self.max_queued or (q is not None and len(q) >= self.max_per_camera):
                self.stats.rejected += 1
                raise InferenceBusy(
                    f"camera {camera_id}: batched detector queue full "
                    f"({self._queued} frames waiting, at most {self.max_queued}, "
                    f"{self.max_per_camera} per camera)"
                )
            if q is None:
                q = self._queues[camera_id] = deque()
            q.append(req)
            self._queued += 1
            self._cond.notify_all()
        return req.future

    def _oldest_s(self) -> float:
        return min(q[0].t_s for q in self._queues.values() if q)

    def _take(self) -> list[_Request]:
        """Up to ``max_batch`` requests, round-robin over the cameras (lock held)."""
        batch: list[_Request] = []
        while len(batch) < self.max_batch and self._queued:
            for cam in list(self._queues):
                q = self._queues[cam]
                if q:
                    batch.append(q.popleft())
                    self._queued -= 1
                    # the camera served goes to the back of the round
                    self._queues.move_to_end(cam)
                if not q:
                    del self._queues[cam]
                if len(batch) >= self.max_batch:
                    break
        return batch

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop:
                    if self._queued >= self.max_batch:
                        break
                    if self._queued:
                        left = self._oldest_s() + self.max_wait_s - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                    else:
                        self._cond.wait()
                if self._stop:
                    pending = [r for q in self._queues.values() for r in q]
                    self._queues.clear()
                    self._queued = 0
                    for r in pending:
                        r.future.set_exception(InferenceBusy("the batched detector stopped"))
                    return
                batch = self._take()
            self._infer(batch)

    def _infer(self, batch: list[_Request]) -> None:
        try:
            results = self.detector.detect_batch([r.frame for r in batch])
        except Exception as exc:  # noqa: BLE001 - each waiting camera gets the error
            self.stats.failed_batches += 1
            for r in batch:
                r.future.set_exception(exc)
            return
        st = self.stats
        st.batches += 1
        st.frames += len(batch)
        st.sizes[len(batch)] = st.sizes.get(len(batch), 0) + 1
        st.last_batch = [r.camera_id for r in batch]
        for r, dets in zip(batch, results, strict=True):
            st.per_camera[r.camera_id] = st.per_camera.get(r.camera_id, 0) + 1
            r.future.set_result(dets)


class BatchClient:
    """One camera's view of an :class:`InferenceBatcher`: a
    :class:`~pipeline.vision.detectors.Detector` whose ``detect`` blocks until the frame's
    batch has run (call it from an analysis thread, never from the event loop).

    :param timeout_s: longest wait for a result, s
    """

    def __init__(self, batcher: InferenceBatcher, camera_id: str, timeout_s: float = 30.0):
        self.batcher = batcher
        self.camera_id = camera_id
        self.timeout_s = timeout_s

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        """The frame's detections, from a batched run.

        :raises InferenceBusy: the batcher's queue is full (nothing was analysed)
        """
        return self.batcher.submit(self.camera_id, frame_bgr).result(self.timeout_s)
