"""The camera ingest runner: every camera of a site, concurrently, to the camera topics.

For each camera, one asyncio task (:class:`CameraWorker`) runs:

- an RTSP (or file) :class:`~connectors.rtsp.FrameReader` thread that keeps only
  the newest frame;
- analysis of the newest frame, at most ``max_fps`` per second, by the camera's
  :class:`pipeline.vision.analyser.FrameAnalyser` in a thread pool (so the event loop stays
  responsive), published as :class:`~schemas.records.CameraFrame` on
  ``camera.detection`` keyed by camera id;
- when the camera has an ``onvif`` section: the clock offset
  (``GetSystemDateAndTime``), analytics events from a PullPoint subscription to
  ``camera.event``, and, with a ``ptz`` calibration, the PTZ position every
  ``ptz_interval_s`` turned into the pose the analyser uses
  (``CameraModel.with_pose``);
- status records (online / offline with reason / degraded, fps, last frame time,
  clock offset) to ``camera.status``, and dead letters for corrupt frames.

A camera that is misconfigured, unreachable or broken reports so on the status
topic and retries; it never stops the others.

Records go to a *sink*, ``async def sink(topic, key, record) -> None``; the
Kafka sink waits for the broker's acknowledgement (acks=all), so the measured
latency (frame capture wall time to record acknowledged) is end to end.
:func:`measure_ingest` runs cameras for a while and returns those figures; it is
what ``shorewatch bench camera-ingest`` prints.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import msgspec
import msgspec.structs
import numpy as np

from connectors.onvif import OnvifClient, ptz_pose
from connectors.rtsp import Backoff, Frame, FrameReader, is_stream_url, wall_ms, with_credentials
from pipeline import metrics, topics
from pipeline.core.adaptive import AnalysisPolicy, AnalysisScheduler, keepalive_phase
from pipeline.deadletter import Reason, dead_letter
from pipeline.errors import CameraAuthError, CameraError, ConfigError, FrameError, InferenceBusy
from pipeline.tasks import cancel_and_wait
from pipeline.topics import TopicSpec
from schemas import records

log = logging.getLogger(__name__)

EVENTS_NS = "http://www.onvif.org/ver10/events/wsdl"
PTZ_NS = "http://www.onvif.org/ver20/ptz/wsdl"

__all__ = [
    "CameraIngest",
    "CameraWorker",
    "LatencyStats",
    "Sink",
    "parse_overrides",
]

Sink = Callable[[TopicSpec, str, msgspec.Struct], Awaitable[None]]
"""``async def sink(topic, key, record) -> None``: hands one record to the bus."""


class Analyser(Protocol):
    def analyse(
        self, frame_bgr: np.ndarray, t_ms: int, *, model: Any = None
    ) -> records.CameraFrame: ...


AnalyserFactory = Callable[[Any], Analyser]
"""Builds the analyser of one camera from its :class:`pipeline.site.CameraConfig`."""


class LatencyStats:
    """Capture-to-topic latencies, ms, kept in a bounded window.

    :param window: most recent samples kept
    """

    def __init__(self, window: int = 10_000):
        self.window = window
        self._ms: list[float] = []
        self.count = 0

    def add(self, ms: float) -> None:
        self._ms.append(ms)
        self.count += 1
        if len(self._ms) > self.window:
            del self._ms[: len(self._ms) - self.window]

    def percentile_ms(self, q: float) -> float | None:
        """The ``q``-th percentile (0..100) of the window, ms; ``None`` when empty."""
        if not self._ms:
            return None
        return float(np.percentile(np.asarray(self._ms), q))

    def summary(self) -> dict[str, float | int | None]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 1)

        return {
            "n": self.count,
            "p50_ms": r(self.percentile_ms(50)),
            "p95_ms": r(self.percentile_ms(95)),
            "max_ms": r(max(self._ms) if self._ms else None),
        }


STAGES = ("wait", "analyse", "publish")


def new_stages() -> dict[str, LatencyStats]:
    """Empty statistics of the stages of one frame: ``wait`` (capture to analysis start),
    ``analyse``, ``publish`` (analysis end to the sink's return, i.e. the broker's ack)."""
    return {name: LatencyStats() for name in STAGES}


@dataclass
class CameraCounters:
    """What happened to one camera's frames."""

    frames_published: int = 0
    frames_skipped: int = 0
    frame_errors: int = 0
    analysis_errors: int = 0
    events_published: int = 0
    ptz_updates: int = 0
    onvif_errors: int = 0
    frames_behind: int = 0
    event_sessions: int = 0
    last_error: str | None = None
    by_reason: dict[str, int] = field(default_factory=dict)


#: status reason of an event-driven camera whose stream is closed until an event or cue
EVENT_IDLE = "event_driven: stream closed until an analytics event or a cue"

#: how long an event-driven camera waits for the first frame of a stream it opened, s
EVENT_OPEN_GRACE_S = 15.0

#: analytics events that open an event-driven camera's stream
_TRIGGER_KINDS = {"line_crossed", "field_inside", "motion", "object"}


def _opens_stream(event: records.CameraEvent) -> bool:
    """An event that says something is there (not a motion or intrusion that ended)."""
    return event.kind in _TRIGGER_KINDS and event.state is not False


_FRAMES_SEEN = metrics.CAMERA_FRAMES.labels(outcome="seen")
_FRAMES_DROPPED = metrics.CAMERA_FRAMES.labels(outcome="dropped")  # newer frame came first
_FRAMES_ANALYSED = metrics.CAMERA_FRAMES.labels(outcome="analysed")
_FRAMES_FAILED = metrics.CAMERA_FRAMES.labels(outcome="failed")  # corrupt or analysis error
_FRAMES_GATED = metrics.CAMERA_FRAMES.labels(outcome="not_analysed")  # adaptive policy: quiet
_FRAMES_BEHIND = metrics.CAMERA_FRAMES.labels(outcome="behind")  # analysis too slow


class CameraWorker:
    """Runs one camera until cancelled.

    :param camera: the camera's :class:`pipeline.site.CameraConfig`
    :param sink: where records go
    :param analyser_factory: builds the camera's analyser
    :param executor: thread pool for analysis
    :param source: video source overriding ``camera.rtsp_url`` (URL or local file)
    :param max_fps: most frames analysed per second
    :param latency: shared latency statistics (a per-camera one is kept too)
    :param reader_kwargs: extra arguments of :class:`FrameReader` (timeouts, backoff)
    :param onvif_timeout_s: limit of each ONVIF call, s
    :param ptz_interval_s: period of PTZ position reads, s
    :param event_pull_timeout_s: long-poll time of one ``PullMessages``, s
    :param phase_s: delay of this camera's first analysis, s (spreads the analysis of
        many cameras evenly over the frame period instead of all at once)
    :param stages: shared per-stage latency statistics (``wait`` from capture to the start
        of analysis, ``analyse``, ``publish`` until the sink returned)
    :param default_policy: the analysis policy of a camera without an ``analysis`` section
        (default: adaptive analysis off, every frame analysed up to ``max_fps``)
    :param adaptive: override the policy's ``adaptive`` (``None``: as configured)
    :param reader_factory: builds the frame reader, with :class:`FrameReader`'s arguments
        (default :class:`FrameReader`; the fleet bench passes one that plays frames held
        in memory)
    """

    def __init__(
        self,
        camera: Any,
        sink: Sink,
        analyser_factory: AnalyserFactory,
        executor: ThreadPoolExecutor,
        *,
        source: str | None = None,
        max_fps: float = 5.0,
        latency: LatencyStats | None = None,
        reader_kwargs: dict[str, Any] | None = None,
        onvif_timeout_s: float = 10.0,
        ptz_interval_s: float = 10.0,
        event_pull_timeout_s: float = 2.0,
        phase_s: float = 0.0,
        stages: dict[str, LatencyStats] | None = None,
        default_policy: AnalysisPolicy | None = None,
        adaptive: bool | None = None,
        reader_factory: Callable[..., Any] | None = None,
    ):
        self.camera = camera
        self.phase_s = phase_s
        self.stages = stages if stages is not None else new_stages()
        self.camera_id = str(camera.id)
        self.sink = sink
        self.analyser_factory = analyser_factory
        self.executor = executor
        self.source = source or getattr(camera, "rtsp_url", None)
        self.max_fps = max_fps
        self.latency = latency or LatencyStats()
        self.own_latency = LatencyStats()
        self.reader_kwargs = reader_kwargs or {}
        self.onvif_timeout_s = onvif_timeout_s
        self.ptz_interval_s = ptz_interval_s
        self.event_pull_timeout_s = event_pull_timeout_s
        self.counters = CameraCounters()
        self.reader: FrameReader | None = None
        self.clock_offset_ms: int | None = None
        self.pose_model: Any = None
        self.last_status: records.CameraStatus | None = None
        self._onvif: OnvifClient | None = None
        self._onvif_issue: str | None = None
        self._records: asyncio.Queue[msgspec.Struct] = asyncio.Queue()
        self._frame_ready = asyncio.Event()
        self.reader_factory = reader_factory or FrameReader
        policy = (
            getattr(camera, "analysis", None) or default_policy or AnalysisPolicy(adaptive=False)
        )
        if adaptive is not None:
            policy = dataclasses.replace(policy, adaptive=adaptive)
        #: decides which frames go to the detector, and counts why
        self.scheduler = AnalysisScheduler(policy, max_fps, keepalive_phase(camera.id))
        self._gate: Any = None
        self._behind_reported = 0
        self._wake = asyncio.Event()
        self._active_until = 0.0  # event-driven: stream open until then, monotonic s
        self._idle = False  # event-driven: stream closed on purpose

    def cue(self, duration_s: float) -> None:
        """Analyse at ``max_fps`` for the next ``duration_s`` seconds (a radar or PTZ cue);
        an event-driven camera opens its stream for that long."""
        self.trigger(duration_s)

    # -- plumbing -------------------------------------------------------------------

    async def _send(self, topic: TopicSpec, record: msgspec.Struct) -> None:
        key = getattr(record, "source", None) if topic is topics.DEADLETTER else self.camera_id
        try:
            await self.sink(topic, key or self.camera_id, record)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a sink failure is logged, the camera keeps going
            log.exception("camera %s: sink failed for %s", self.camera_id, topic.name)

    async def _status(self, status: str, reason: str | None) -> None:
        r = self.reader
        record = records.CameraStatus(
            camera_id=self.camera_id,
            t_ms=wall_ms(),
            status=status,  # type: ignore[arg-type]
            reason=reason,
            fps=None if r is None or r.fps is None else round(r.fps, 2),
            last_frame_t_ms=None if r is None else r.last_frame_t_ms,
            clock_offset_ms=self.clock_offset_ms,
        )
        record = self._set_status(record)
        await self._send(topics.CAMERA_STATUS, record)

    def _with_analysis(self, record: records.CameraStatus) -> records.CameraStatus:
        """The status with the analysis counters; ``degraded`` with reason
        ``analysis_behind`` when frames were dropped because the analysis was behind since
        the last status report (a worse reason already there is kept)."""
        c = self.scheduler.counters
        behind = self.counters.frames_behind
        record = msgspec.structs.replace(
            record,
            frames_seen=c.frames_seen,
            frames_analysed=c.frames_analysed,
            frames_behind=behind,
            analysis_mode=self.scheduler.mode,
            analysed_by_reason=dict(c.analysed),
        )
        if behind > self._behind_reported and record.status == "online":
            record = msgspec.structs.replace(
                record,
                status="degraded",
                reason=f"analysis_behind: {behind - self._behind_reported} frames dropped "
                "since the last report (analysis slower than max_fps)",
            )
        self._behind_reported = behind
        return record

    def _set_status(self, record: records.CameraStatus) -> records.CameraStatus:
        """Keep ``record`` (with the analysis counters) as the last status; return it."""
        record = self._with_analysis(record)
        self.last_status = record
        metrics.camera_status.set(self.camera_id, record.status)
        return record

    async def _forward_reader_records(self) -> None:
        """Status and dead letters from the reader thread to the sink, in order."""
        while True:
            record = await self._records.get()
            if isinstance(record, records.CameraStatus):
                record = msgspec.structs.replace(record, clock_offset_ms=self.clock_offset_ms)
                if self._idle and record.reason == "stopped":
                    # event-driven: the stream was closed on purpose, the camera is fine
                    record = msgspec.structs.replace(record, status="online", reason=EVENT_IDLE)
                if record.status == "online" and self._onvif_issue is not None:
                    # Video is fine but events / PTZ are not: keep saying so.
                    record = msgspec.structs.replace(
                        record, status="degraded", reason=self._onvif_issue
                    )
                record = self._set_status(record)
                await self._send(topics.CAMERA_STATUS, record)
            elif isinstance(record, records.DeadLetter):
                self.counters.frame_errors += 1
                self.counters.by_reason[record.reason] = (
                    self.counters.by_reason.get(record.reason, 0) + 1
                )
                _FRAMES_FAILED.inc()
                await self._send(topics.DEADLETTER, record)

    # -- main -----------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled. Never raises for camera problems: they become status records."""
        try:
            await self._run()
            metrics.camera_status.forget(self.camera_id)  # its input ended: run no more
        except asyncio.CancelledError:
            metrics.camera_status.forget(self.camera_id)  # stopped: this process runs it no more
            raise
        except ConfigError as exc:
            self.counters.last_error = str(exc)
            await self._status("offline", f"config: {exc}")
        except Exception as exc:  # noqa: BLE001 - one camera's bug must not stop the others
            log.exception("camera %s: worker failed", self.camera_id)
            self.counters.last_error = repr(exc)
            await self._status("offline", f"internal_error: {exc!r}")

    async def _run(self) -> None:
        onvif_cfg = getattr(self.camera, "onvif", None)
        if not self.source and onvif_cfg is None:
            raise ConfigError(
                f"camera {self.camera_id}: no rtsp_url, no onvif section and no --camera override"
            )
        analyser = self.analyser_factory(self.camera)
        try:
            self.pose_model = self.camera.model()
        except Exception:  # noqa: BLE001 - the analyser has its own model; PTZ needs this one
            self.pose_model = None
        tasks: list[asyncio.Task] = [asyncio.create_task(self._forward_reader_records())]
        try:
            if onvif_cfg is not None:
                tasks.append(asyncio.create_task(self._onvif_loop()))
                if not self.source:
                    self.source = await self._wait_stream_uri()
            self.source = self._source_with_credentials(self.source)
            await self._frames(analyser)
        finally:
            await cancel_and_wait(tasks)
            # Flush what the reader reported last (its final "stopped" status).
            while not self._records.empty():
                record = self._records.get_nowait()
                topic = (
                    topics.CAMERA_STATUS
                    if isinstance(record, records.CameraStatus)
                    else topics.DEADLETTER
                )
                await asyncio.shield(self._send(topic, record))

    def _source_with_credentials(self, source: str | None) -> str | None:
        """An RTSP source with the camera's ONVIF credentials, when it carries none."""
        if not source or not is_stream_url(source) or getattr(self.camera, "onvif", None) is None:
            return source
        try:
            user, password = self.camera.credentials()
        except ConfigError:
            return source  # reported by the ONVIF loop
        return with_credentials(source, user, password)

    async def _frames(self, analyser: Analyser) -> None:
        if self.scheduler.policy.event_driven:
            await self._frames_on_events(analyser)
            return
        reader = self._start_reader()
        try:
            await self._frame_loop(analyser, reader)
        finally:
            await asyncio.to_thread(reader.stop)

    def _start_reader(self) -> Any:
        loop = asyncio.get_running_loop()

        def report(record: msgspec.Struct) -> None:
            loop.call_soon_threadsafe(self._records.put_nowait, record)

        def on_frame(_frame: Frame) -> None:
            loop.call_soon_threadsafe(self._frame_ready.set)

        assert self.source is not None
        reader = self.reader_factory(
            self.camera_id, self.source, report, on_frame=on_frame, **self.reader_kwargs
        )
        self.reader = reader
        reader.start()
        return reader

    def trigger(self, hold_s: float | None = None) -> None:
        """An analytics event or a cue: analyse at ``max_fps`` for ``hold_s`` (default the
        policy's ``event_hold_s``); an event-driven camera opens its stream for that long."""
        hold = self.scheduler.policy.event_hold_s if hold_s is None else float(hold_s)
        self._active_until = max(self._active_until, time.monotonic() + hold)
        self.scheduler.cue(wall_ms() + int(hold * 1000))
        self._wake.set()

    async def _frames_on_events(self, analyser: Analyser) -> None:
        """Event-driven mode: no stream until an event or cue, then the stream analysed at
        ``max_fps`` until ``event_hold_s`` after the last one, then closed again."""
        while True:
            self._idle = True
            await self._status("online", EVENT_IDLE)
            await self._wake.wait()
            self._wake.clear()
            self._idle = False
            self.counters.event_sessions += 1
            opened_s = time.monotonic()
            got_frame = [False]

            def first_frame(opened_s: float = opened_s, got_frame: list = got_frame) -> None:
                # the time the stream took to open does not count against the hold
                got_frame[0] = True
                self._active_until += time.monotonic() - opened_s
                self.scheduler.cue(wall_ms() + int((self._active_until - time.monotonic()) * 1000))

            def until(opened_s: float = opened_s, got_frame: list = got_frame) -> float:
                # a stream that has not delivered yet gets the reader's open time
                if got_frame[0]:
                    return self._active_until
                return max(self._active_until, opened_s + EVENT_OPEN_GRACE_S)

            reader = self._start_reader()
            try:
                await self._frame_loop(analyser, reader, until=until, on_first=first_frame)
            finally:
                self._idle = True
                await asyncio.to_thread(reader.stop)

    async def _frame_loop(
        self,
        analyser: Analyser,
        reader: Any,
        until: Callable[[], float] | None = None,
        on_first: Callable[[], None] | None = None,
    ) -> None:
        """Take the newest frame at most ``max_fps`` times a second, run the change test and
        the policy on it, analyse and publish; until ``until()`` (monotonic s) passes.
        ``on_first`` is called when the first frame arrives."""
        period_s = 1.0 / self.max_fps if self.max_fps and self.max_fps > 0 else 0.0
        next_due = time.monotonic() + self.phase_s
        last_seq = -1
        while True:
            if until is None:
                await self._frame_ready.wait()
            else:
                left_s = until() - time.monotonic()
                if left_s <= 0:
                    return
                try:
                    async with asyncio.timeout(left_s):
                        await self._frame_ready.wait()
                except TimeoutError:
                    continue
            self._frame_ready.clear()
            now = time.monotonic()
            if now < next_due:
                await asyncio.sleep(next_due - now)
            frame = reader.latest()  # the newest, after any wait
            if frame is None or frame.seq <= last_seq:
                continue
            if last_seq < 0 and on_first is not None:
                on_first()
            skipped = frame.seq - last_seq - 1 if last_seq >= 0 else 0
            if skipped:
                self.counters.frames_skipped += skipped
                _FRAMES_DROPPED.inc(skipped)
                # woken a whole period or more after the due time, with frames in
                # between: those were lost to a slow analysis, not to the rate cap
                late_s = now - next_due
                if period_s and late_s >= period_s:
                    self._behind(min(skipped, int(late_s // period_s)))
            _FRAMES_SEEN.inc(skipped + 1 if last_seq >= 0 else 1)
            last_seq = frame.seq
            next_due = max(next_due + period_s, time.monotonic()) if period_s else 0.0
            if self._decide(frame) is None:
                _FRAMES_GATED.inc()
                continue
            await self._analyse_and_publish(analyser, frame)

    def _behind(self, frames: int) -> None:
        """Count frames dropped because the analysis was behind (reported in the status)."""
        if frames > 0:
            self.counters.frames_behind += frames
            _FRAMES_BEHIND.inc(frames)

    def _decide(self, frame: Frame) -> str | None:
        """The adaptive policy's decision on one frame: why it is analysed, or ``None``."""
        policy = self.scheduler.policy
        changed = False
        if policy.adaptive:
            if self._gate is None:
                from pipeline.vision.gate import FrameGate

                h, w = frame.image_bgr.shape[:2]
                model = self.pose_model
                if model is not None and (model.image_width, model.image_height) != (w, h):
                    model = model.scaled(w, h)
                self._gate = FrameGate(
                    policy,
                    horizon_v=None if model is None else model.horizon_v,
                    water_mask=getattr(self.camera, "water_mask", None),
                    mask_size=(self.camera.image_width, self.camera.image_height),
                )
            try:
                changed = self._gate.changed(frame.image_bgr)
            except Exception as exc:  # noqa: BLE001 - a failing test means: analyse
                log.warning("camera %s: change test failed: %r", self.camera_id, exc)
                changed = True
        return self.scheduler.decide(frame.capture_t_ms, changed=changed)

    async def _analyse_and_publish(self, analyser: Analyser, frame: Frame) -> None:
        loop = asyncio.get_running_loop()
        model = self.pose_model if self.counters.ptz_updates else None

        times_ms: list[int] = []

        def work() -> records.CameraFrame:
            times_ms.append(wall_ms())
            try:
                if model is not None:
                    return analyser.analyse(frame.image_bgr, frame.capture_t_ms, model=model)
                return analyser.analyse(frame.image_bgr, frame.capture_t_ms)
            finally:
                times_ms.append(wall_ms())

        try:
            record = await loop.run_in_executor(self.executor, work)
        except InferenceBusy as exc:
            # the shared detector is saturated: the frame is lost to a slow analysis
            self._behind(1)
            self.counters.last_error = str(exc)
            log.debug("camera %s: %s", self.camera_id, exc)
            return
        except FrameError as exc:
            self.counters.frame_errors += 1
            _FRAMES_FAILED.inc()
            self.counters.by_reason[exc.reason] = self.counters.by_reason.get(exc.reason, 0) + 1
            await self._send(
                topics.DEADLETTER,
                dead_letter(
                    exc.reason,
                    source=f"camera:{self.camera_id}",
                    stage="camera.frame",
                    detail=f"{exc.detail} (raw: first 4096 bytes of the decoded BGR frame "
                    f"{'x'.join(map(str, frame.image_bgr.shape))})",
                    raw=frame.image_bgr.tobytes()[:4096],
                    rx_t_ms=wall_ms(),
                ),
            )
            return
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the camera
            self.counters.analysis_errors += 1
            _FRAMES_FAILED.inc()
            self.counters.last_error = repr(exc)
            log.warning("camera %s: analysis failed: %r", self.camera_id, exc)
            await self._send(
                topics.DEADLETTER,
                dead_letter(
                    Reason.ANALYSIS_FAILED,
                    source=f"camera:{self.camera_id}",
                    stage="camera.analyse",
                    detail=f"{type(exc).__name__}: {exc}",
                    raw=b"",
                    rx_t_ms=wall_ms(),
                ),
            )
            return
        self.scheduler.observe(
            frame.capture_t_ms,
            np.array([np.nan if d.range_m is None else d.range_m for d in record.detections]),
        )
        await self._send(topics.CAMERA_DETECTION, record)
        done_ms = wall_ms()
        latency_ms = done_ms - frame.capture_t_ms
        self.latency.add(latency_ms)
        self.own_latency.add(latency_ms)
        start_ms, end_ms = times_ms
        self.stages["wait"].add(start_ms - frame.capture_t_ms)
        self.stages["analyse"].add(end_ms - start_ms)
        self.stages["publish"].add(done_ms - end_ms)
        self.counters.frames_published += 1
        _FRAMES_ANALYSED.inc()
        metrics.CAMERA_LATENCY.observe(max(0, latency_ms) / 1000.0)

    # -- ONVIF ----------------------------------------------------------------------

    async def _connect_onvif(self) -> OnvifClient:
        client = OnvifClient.for_camera(self.camera, timeout_s=self.onvif_timeout_s)
        await client.connect()
        self.clock_offset_ms = client.clock_offset_ms
        return client

    async def _wait_stream_uri(self) -> str:
        """The RTSP URI from ONVIF (the ONVIF loop connects; this waits for it)."""
        while True:
            client = self._onvif
            if client is not None:
                try:
                    return await client.stream_uri()
                except CameraError as exc:
                    await self._status("offline", f"onvif: no stream uri: {exc}")
            await asyncio.sleep(1.0)

    async def _onvif_loop(self) -> None:
        """Connect, then run events and PTZ; on failure report and reconnect with backoff."""
        backoff = Backoff(base_s=1.0, cap_s=60.0)
        while True:
            try:
                client = await self._connect_onvif()
            except ConfigError as exc:
                await self._status(
                    self.reader.status if self.reader else "offline", f"config: {exc}"
                )
                return
            except CameraError as exc:
                self.counters.onvif_errors += 1
                await self._onvif_problem(exc)
                if isinstance(exc, CameraAuthError):
                    await asyncio.sleep(max(backoff.next_delay_s(), 30.0))
                else:
                    await asyncio.sleep(backoff.next_delay_s())
                continue
            self._onvif = client
            self._onvif_issue = None
            backoff.reset()
            try:
                await self._onvif_jobs(client)
            except CameraError as exc:
                self.counters.onvif_errors += 1
                await self._onvif_problem(exc)
                await asyncio.sleep(backoff.next_delay_s())
            finally:
                self._onvif = None
                await client.close()

    async def _onvif_problem(self, exc: CameraError) -> None:
        self.counters.last_error = str(exc)
        log.warning("camera %s: onvif: %s", self.camera_id, exc)
        video = self.reader.status if self.reader is not None else "offline"
        status = "degraded" if video == "online" else video
        kind = "auth" if isinstance(exc, CameraAuthError) else "onvif"
        self._onvif_issue = f"{kind}: {exc}"
        await self._status(status, self._onvif_issue)

    async def _onvif_jobs(self, client: OnvifClient) -> None:
        """Events and PTZ side by side; the first failure cancels the other and is raised.

        A device without an event or PTZ service simply has no such job; with no job at
        all this waits until cancelled (the connection is kept for the stream URI).
        """
        services = client.services()
        jobs = []
        if EVENTS_NS in services:
            jobs.append(asyncio.create_task(self._events(client)))
        else:
            log.info("camera %s: device has no event service", self.camera_id)
        if getattr(self.camera, "ptz", None) is not None:
            if PTZ_NS in services:
                jobs.append(asyncio.create_task(self._ptz(client)))
            else:
                await self._status(
                    self.reader.status if self.reader else "offline",
                    "onvif: ptz calibration configured but the device has no PTZ service",
                )
        try:
            pending = set(jobs)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    if task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
            await asyncio.Event().wait()  # nothing (left) to do: keep the connection
        finally:
            for task in jobs:
                task.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)

    async def _events(self, client: OnvifClient) -> None:
        sub = client.subscription(pull_timeout_s=self.event_pull_timeout_s)
        async for event in sub.events():
            self.counters.events_published += 1
            if self.scheduler.policy.event_driven and _opens_stream(event):
                self.trigger()
            await self._send(topics.CAMERA_EVENT, event)

    async def _ptz(self, client: OnvifClient) -> None:
        while True:
            position = await client.ptz_status()
            pose = ptz_pose(self.camera, position)
            if self.pose_model is not None:
                self.pose_model = self.pose_model.with_pose(
                    heading_deg=pose.heading_deg, tilt_deg=pose.tilt_deg, hfov_deg=pose.hfov_deg
                )
            self.counters.ptz_updates += 1
            await asyncio.sleep(self.ptz_interval_s)


class CameraIngest:
    """All cameras of a site, each in its own :class:`CameraWorker` task.

    :param cameras: :class:`pipeline.site.CameraConfig` objects
    :param sink: where records go
    :param analyser_factory: builds one camera's analyser
    :param overrides: camera id -> video source replacing its ``rtsp_url``
    :param analysis_threads: size of the analysis thread pool (default: CPU count)
    :param worker_kwargs: passed to every :class:`CameraWorker`
    """

    def __init__(
        self,
        cameras: Sequence[Any],
        sink: Sink,
        analyser_factory: AnalyserFactory,
        *,
        overrides: dict[str, str] | None = None,
        max_fps: float = 5.0,
        analysis_threads: int | None = None,
        **worker_kwargs: Any,
    ):
        overrides = dict(overrides or {})
        known = {str(c.id) for c in cameras}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(
                f"--camera names unknown camera ids {unknown}; known: {sorted(known)}"
            )
        self.executor = ThreadPoolExecutor(
            max_workers=analysis_threads or os.cpu_count() or 2, thread_name_prefix="analyse"
        )
        self.latency = LatencyStats()
        self.stages = new_stages()
        period_s = 1.0 / max_fps if max_fps and max_fps > 0 else 0.0
        n = max(1, len(cameras))
        self.workers = [
            CameraWorker(
                cam,
                sink,
                analyser_factory,
                self.executor,
                source=overrides.get(str(cam.id)),
                max_fps=max_fps,
                latency=self.latency,
                phase_s=period_s * i / n,
                stages=self.stages,
                **worker_kwargs,
            )
            for i, cam in enumerate(cameras)
        ]

    def cue(self, camera_id: str, duration_s: float) -> bool:
        """Raise one camera's analysis to ``max_fps`` for ``duration_s`` s (a cue);
        ``False`` for an unknown camera id."""
        for w in self.workers:
            if w.camera_id == camera_id:
                w.cue(duration_s)
                return True
        return False

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run every camera until ``stop`` is set (or the task is cancelled)."""
        tasks = [asyncio.create_task(w.run(), name=f"camera-{w.camera_id}") for w in self.workers]
        try:
            if stop is None:
                await asyncio.gather(*tasks)
            else:
                await stop.wait()
        finally:
            await cancel_and_wait(tasks)
            self.executor.shutdown(wait=False, cancel_futures=True)

    def stats(self) -> dict[str, Any]:
        """Latency and per-camera counters."""
        return {
            "latency": self.latency.summary(),
            "stages": {name: st.summary() for name, st in self.stages.items()},
            "cameras": {
                w.camera_id: {
                    **{k: v for k, v in vars(w.counters).items()},
                    "status": None if w.last_status is None else w.last_status.status,
                    "reason": None if w.last_status is None else w.last_status.reason,
                    "fps_in": None
                    if w.reader is None or w.reader.fps is None
                    else round(w.reader.fps, 2),
                    "latency": w.own_latency.summary(),
                    "analysis": {
                        "mode": w.scheduler.mode,
                        "frames_seen": w.scheduler.counters.frames_seen,
                        "frames_analysed": w.scheduler.counters.frames_analysed,
                        "analysed": dict(w.scheduler.counters.analysed),
                        "not_analysed": dict(w.scheduler.counters.skipped),
                    },
                }
                for w in self.workers
            },
        }


# --------------------------------------------------------------------------- factories


def analyser_factory(
    model_dir: str | os.PathLike[str] | None,
    *,
    model_name: str = "yolo-fastest-1.1-xl",
    evidence_dir: str | os.PathLike[str] | None = None,
    ais_source: Any = None,
    batcher: Any = None,
    read_hull_numbers: bool = False,
    hull_ports: Iterable[str] = (),
    **dnn_kwargs: Any,
) -> AnalyserFactory:
    """The production analyser: DNN detector when ``model_dir`` is set, else motion on water.

    Each camera gets its own detector (an OpenCV ``dnn`` network is not shared across
    threads) and tracker.

    :param ais_source: a :data:`pipeline.vision.analyser.AisSource` (``(t_ms, camera) -> (lon_deg,
        lat_deg, mmsi)``, the AIS vessels near the camera at an event time); cameras with
        ``self_calibrate: true`` feed it to their pose calibrator. Without one such
        cameras keep their configured pose (and a warning is logged).
    :param batcher: a :class:`pipeline.vision.batching.InferenceBatcher`: every camera's
        frames go through its one detector, batched across cameras (``model_dir`` is then
        only used to decide DNN or motion detector)
    :param read_hull_numbers: read the hull numbers of boxes large enough to read
        (:class:`pipeline.vision.hullread.HullReadStage`, one OCR reader shared by the
        cameras, a few hundred ms of one core per crop)
    :param hull_ports: port abbreviations the reader allows besides its own list
        (:data:`~pipeline.core.hullnumbers.COAST_PORTS`): the registry's, see
        :func:`registry_hull_ports`
    """
    shared_reader: list[Any] = []  # created with the first camera that needs it

    def make(camera: Any) -> Analyser:
        from pipeline.vision.analyser import FrameAnalyser
        from pipeline.vision.detectors import DnnDetector, MotionDetector
        from pipeline.vision.evidence import DirectoryEvidenceStore
        from pipeline.vision.structures import StructureMask

        model = camera.model()
        detector: Any
        if batcher is not None:
            detector = batcher.client(str(camera.id))
        elif model_dir is not None:
            detector = DnnDetector.from_dir(model_dir, model_name, **dnn_kwargs)
        else:
            detector = MotionDetector.for_camera(
                model, water_mask=getattr(camera, "water_mask", None)
            )
        store = DirectoryEvidenceStore(evidence_dir) if evidence_dir else None
        source = None
        if getattr(camera, "self_calibrate", False):
            if ais_source is None:
                log.warning(
                    "camera %s: self_calibrate is set but no AIS source is wired to the "
                    "camera ingest; it keeps its configured pose",
                    camera.id,
                )
            source = ais_source
        outlines = getattr(camera, "structures", ())
        structures = (
            StructureMask(outlines, camera.image_width, camera.image_height) if outlines else None
        )
        analyser = FrameAnalyser(
            str(camera.id),
            model,
            detector,
            evidence_store=store,
            ais_source=source,
            structures=structures,
        )
        if not read_hull_numbers:
            return analyser
        from pipeline.vision.hullocr import HullNumberReader
        from pipeline.vision.hullread import HullReadingAnalyser, HullReadStage, LockedReader

        if not shared_reader:
            from pipeline.core.hullnumbers import COAST_PORTS

            ports = [*COAST_PORTS, *sorted(set(hull_ports) - set(COAST_PORTS))]
            shared_reader.append(LockedReader(HullNumberReader(ports=ports)))
        return HullReadingAnalyser(analyser, HullReadStage(shared_reader[0]))

    return make


class TrackTopicAis:
    """The AIS source of self-calibrating cameras (:data:`pipeline.vision.analyser.AisSource`):
    the vessels of the track topic.

    A consumer without a group reads every partition of the track topic from its end and
    keeps the last update of each MMSI whose fix lies in the box reaching ``keep_range_m``
    beyond ``points`` (evicted tracks and tracks that leave the box are dropped). Called with an event time and a camera, it gives
    the vessels within ``max_range_m`` of the camera whose last fix is at most
    ``max_age_ms`` from that time, dead-reckoned to it
    (:func:`pipeline.core.camera.vessels_near`). Calls come from the analyser threads:
    they read a snapshot of arrays that the consumer task replaces after each fetch.

    Records that do not decode are counted (``bad_records``) and skipped; while the
    broker is unreachable the snapshot ages and calls return fewer vessels, never stale
    positions beyond ``max_age_ms``.

    :param bootstrap: Kafka bootstrap servers
    :param points: ``(lon_deg, lat_deg)`` of the cameras that calibrate
    :param keep_range_m: tracks farther than this from every point are not kept, m
    :param max_range_m: vessels farther than this from the camera are not returned, m
    :param max_age_ms: fixes older (or newer) than this at the frame time are not used, ms
    """

    def __init__(
        self,
        bootstrap: str,
        points: Sequence[tuple[float, float]],
        *,
        keep_range_m: float = 25_000.0,
        max_range_m: float = 20_000.0,
        max_age_ms: int = 60_000,
    ) -> None:
        if not points:
            raise ConfigError("TrackTopicAis needs at least one camera position")
        self.bootstrap = bootstrap
        self.points = np.array(points, dtype=float).reshape(-1, 2)
        self.keep_range_m = float(keep_range_m)
        self.max_range_m = float(max_range_m)
        self.max_age_ms = int(max_age_ms)
        self.bad_records = 0
        self.records = 0
        self._rows: dict[int, tuple[int, float, float, float, float]] = {}
        self._snap: tuple[np.ndarray, ...] = self._arrays()
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self._dec = msgspec.json.Decoder(records.Track)
        # a box around the points, degrees: a cheap first test per record
        dlat = keep_range_m / 111_000.0
        dlon = dlat / max(0.05, float(np.cos(np.radians(np.abs(self.points[:, 1]).max()))))
        self._box = (
            self.points[:, 0].min() - dlon,
            self.points[:, 1].min() - dlat,
            self.points[:, 0].max() + dlon,
            self.points[:, 1].max() + dlat,
        )

    def _arrays(self) -> tuple[np.ndarray, ...]:
        mmsi = np.fromiter(self._rows.keys(), np.int64, len(self._rows))
        vals = np.array(list(self._rows.values()), dtype=float).reshape(-1, 5)
        return mmsi, vals[:, 0].astype(np.int64), vals[:, 1], vals[:, 2], vals[:, 3], vals[:, 4]

    def __len__(self) -> int:
        return len(self._snap[0])

    async def start(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            client_id="shorewatch-camera-selfcal",
        )
        await consumer.start()
        try:
            parts = [TopicPartition(topics.TRACK.name, p) for p in range(topics.TRACK.partitions)]
            consumer.assign(parts)
            await consumer.seek_to_end(*parts)
            for tp in parts:  # resolve the end now: records sent after start() are read
                await consumer.position(tp)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(), name="selfcal-ais")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    def add(self, values: Sequence[bytes]) -> None:
        """Apply track records (JSON of :class:`schemas.records.Track`) and renew the snapshot."""
        lon0, lat0, lon1, lat1 = self._box
        changed = False
        for v in values:
            self.records += 1
            try:
                tr = self._dec.decode(v)
            except (msgspec.DecodeError, TypeError):
                self.bad_records += 1
                continue
            if tr.event == "evicted":
                changed |= self._rows.pop(tr.mmsi, None) is not None
            elif lon0 <= tr.lon <= lon1 and lat0 <= tr.lat <= lat1:
                self._rows[tr.mmsi] = (tr.t_ms, tr.lon, tr.lat, tr.vel_east_mps, tr.vel_north_mps)
                changed = True
            else:
                changed |= self._rows.pop(tr.mmsi, None) is not None
        if changed:
            self._snap = self._arrays()

    async def _run(self) -> None:
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=500, max_records=5000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the broker may come back
                log.warning("track topic for camera self-calibration: %s", exc)
                await asyncio.sleep(1.0)
                continue
            # one snapshot per fetch, whatever the number of partitions in it
            self.add([m.value for msgs in batch.values() for m in msgs if m.value is not None])

    def __call__(self, t_ms: int, camera: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from pipeline.core.camera import vessels_near

        mmsi, fix_t, lon, lat, ve, vn = self._snap
        idx, lon_at, lat_at = vessels_near(
            int(t_ms),
            fix_t,
            lon,
            lat,
            ve,
            vn,
            float(camera.lon_deg),
            float(camera.lat_deg),
            max_range_m=self.max_range_m,
            max_age_ms=self.max_age_ms,
        )
        return lon_at, lat_at, mmsi[idx]


def kafka_sink(producer: Any) -> Sink:
    """A sink over :class:`connectors.kafka.RecordProducer` that waits for the acknowledgement."""

    async def sink(topic: TopicSpec, key: str, record: msgspec.Struct) -> None:
        await producer.send_and_wait(topic, key, record)

    return sink


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """``["CAM=URL_OR_FILE", ...]`` -> ``{CAM: URL_OR_FILE}``.

    :raises ConfigError: for an item without ``=``, or a missing local file
    """
    out: dict[str, str] = {}
    for item in items:
        cam, sep, src = item.partition("=")
        if not sep or not cam or not src:
            raise ConfigError(f"--camera expects CAM_ID=URL_OR_FILE, got {item!r}")
        if "://" not in src and not Path(src).is_file():
            raise ConfigError(f"--camera {cam}: no such file {src!r}")
        out[cam.strip()] = src.strip()
    return out


# --------------------------------------------------------------------------- CLI


def registry_hull_ports(url: str) -> set[str]:
    """The ports of the registry's hull numbers, for the hull-number reader's lexicon; an
    empty set, with one warning, when the registry cannot be read (the reader then knows
    its own list of ports only, and the cameras run as usual)."""
    from sqlalchemy.exc import SQLAlchemyError

    from connectors.rtsp import redact
    from pipeline.errors import RegistryError
    from pipeline.registry.store import Registry

    try:
        reg = Registry(url)
        try:
            return reg.hull_ports()
        finally:
            reg.close()
    except (RegistryError, SQLAlchemyError, OSError) as exc:
        log.warning(
            "hull numbers: registry %s unreadable (%s); reading with the built-in ports only",
            redact(url),
            exc,
        )
        return set()


def _factory_from_args(
    args: argparse.Namespace, ais_source: Any = None, batcher: Any = None
) -> AnalyserFactory:
    model_dir = None if str(args.model_dir).lower() == "none" else args.model_dir
    read_hull = bool(getattr(args, "read_hull_numbers", False))
    hull_ports: set[str] = set()
    if read_hull:
        from pipeline.settings import Settings

        url = getattr(args, "registry_url", None) or Settings.from_env(None).registry_url
        hull_ports = registry_hull_ports(url)
    return analyser_factory(
        model_dir,
        model_name=args.model_name,
        evidence_dir=getattr(args, "evidence_dir", None),
        ais_source=ais_source,
        batcher=batcher,
        read_hull_numbers=read_hull,
        hull_ports=hull_ports,
        **_dnn_kwargs(args, model_dir),
    )


def _dnn_kwargs(args: argparse.Namespace, model_dir: Any) -> dict[str, Any]:
    """The DNN detector's settings from the command line (none for the motion detector)."""
    if model_dir is None:
        return {}
    return {
        "conf": args.conf,
        "backend": args.backend,
        "execution_provider": getattr(args, "execution_provider", "cpu"),
    }


def batcher_from_args(args: argparse.Namespace) -> Any:
    """The shared batched detector when ``--batch`` is above 1 and a model is set, else
    ``None`` (each camera runs its own detector)."""
    model_dir = None if str(args.model_dir).lower() == "none" else args.model_dir
    if model_dir is None or getattr(args, "batch", 1) <= 1:
        return None
    from pipeline.vision.batching import InferenceBatcher
    from pipeline.vision.detectors import DnnDetector

    detector = DnnDetector.from_dir(model_dir, args.model_name, **_dnn_kwargs(args, model_dir))
    return InferenceBatcher(detector, max_batch=args.batch, max_wait_ms=args.batch_wait_ms)


def cmd_ingest(args: argparse.Namespace) -> int:
    from connectors.kafka import RecordProducer
    from pipeline.site import load_site

    site = load_site(args.site)
    overrides = parse_overrides(args.camera)
    stats: dict[str, Any] = {}
    calibrating = [c for c in site.cameras if getattr(c, "self_calibrate", False)]

    async def main() -> None:
        async with RecordProducer(client_id="shorewatch-camera-ingest") as producer:
            ais = None
            if calibrating:
                # the vessels of the track topic feed the cameras that self-calibrate
                points = [(c.model().lon_deg, c.model().lat_deg) for c in calibrating]
                ais = TrackTopicAis(producer.bootstrap, points)
                try:
                    await ais.start()
                except Exception as exc:  # noqa: BLE001 - the cameras still run, uncalibrated
                    log.error(
                        "cannot read the track topic for camera self-calibration (%s); "
                        "those cameras keep their configured pose",
                        exc,
                    )
                    ais = None
            batcher = batcher_from_args(args)
            factory = _factory_from_args(args, ais_source=ais, batcher=batcher)
            ingest = CameraIngest(
                site.cameras,
                kafka_sink(producer),
                factory,
                overrides=overrides,
                max_fps=args.max_fps,
                default_policy=AnalysisPolicy() if getattr(args, "adaptive", False) else None,
                # with a shared batched detector, threads wait on batches: one per camera
                analysis_threads=None if batcher is None else min(64, len(site.cameras) + 1),
            )
            stop = asyncio.Event()
            runner = asyncio.create_task(ingest.run(stop))
            deadline = None if args.duration_s is None else time.monotonic() + args.duration_s

            def ready() -> tuple[bool, str]:
                if runner.done():
                    return False, "camera ingest stopped"
                return True, f"{len(ingest.workers)} cameras"

            async def supervise() -> None:
                while not runner.done():
                    wait_s = args.stats_interval_s
                    if deadline is not None:
                        wait_s = min(wait_s, max(0.0, deadline - time.monotonic()))
                    await asyncio.wait([runner], timeout=wait_s)
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                    log.info("camera ingest: %s", json.dumps(ingest.stats()["latency"]))

            try:
                async with metrics.serve_from_env("ingest-camera", ready):
                    await supervise()
            finally:
                stop.set()
                await runner
                stats.update(ingest.stats())
                if batcher is not None:
                    batcher.close()
                    stats["batching"] = batcher.stats.summary()
                if ais is not None:
                    await ais.stop()
                    stats["selfcal_ais"] = {
                        "vessels": len(ais),
                        "records": ais.records,
                        "bad_records": ais.bad_records,
                    }

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    if stats:
        print(json.dumps(stats))
    return 0
