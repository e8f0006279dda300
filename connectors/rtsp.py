"""RTSP (and local video file) capture through OpenCV's FFmpeg backend.

:class:`FrameReader` runs one thread per camera. The thread reads as fast as the
source delivers and keeps only the newest frame, so a slow consumer never makes
latency build up: it sees the latest frame and a count of the frames it skipped.
When the stream fails the thread reconnects with exponential backoff and jitter.

RTSP goes over TCP (``OPENCV_FFMPEG_CAPTURE_OPTIONS=rtsp_transport;tcp``), with
open and read timeouts, so a dead camera is noticed in seconds, not minutes.

The reader reports what happens to it as records handed to a callback (from the
reader thread, so the callback must be thread-safe):

- :class:`~schemas.records.CameraStatus` on every change (``online``, ``offline``
  with a reason, ``degraded`` while frames are corrupt) and every
  ``status_interval_s`` with the measured frame rate and last frame time;
- :class:`~schemas.records.DeadLetter` for each corrupt frame (stage
  ``camera.frame``), with the reason.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import msgspec
import numpy as np

from pipeline.deadletter import dead_letter
from pipeline.errors import FrameError
from pipeline.vision.frames import check_frame
from schemas import records

# FFmpeg reads its capture options from the environment when a capture opens.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")

import cv2  # noqa: E402

log = logging.getLogger(__name__)

__all__ = [
    "Backoff",
    "Frame",
    "FrameReader",
    "diagnose_rtsp",
    "is_stream_url",
    "redact",
    "with_credentials",
]

Report = Callable[[msgspec.Struct], None]
"""Receives the status and dead-letter records of a reader (called from its thread)."""


def wall_ms() -> int:
    """Wall-clock time, ms since the Unix epoch (UTC)."""
    return time.time_ns() // 1_000_000


def is_stream_url(source: str) -> bool:
    """Whether ``source`` is a network stream (``rtsp://``, ``http://``...) rather than a file."""
    return "://" in source and not source.startswith("file://")


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured frame.

    :param image_bgr: the image, ``uint8`` array of shape ``(height, width, 3)``, BGR
    :param capture_t_ms: wall-clock time the frame was read from the source, ms UTC
    :param seq: frame number since the reader started (counts skipped frames too)
    """

    image_bgr: np.ndarray
    capture_t_ms: int
    seq: int


class Backoff:
    """Exponential backoff with full jitter: delay n is uniform in ``[base/2, min(cap, base·2^n)]``.

    :param base_s: first delay, s
    :param cap_s: longest delay, s
    :param rng: random source (seed it for reproducible tests)
    """

    def __init__(self, base_s: float = 0.5, cap_s: float = 30.0, rng: random.Random | None = None):
        self.base_s = base_s
        self.cap_s = cap_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay_s(self) -> float:
        """The delay before the next attempt, s; each call doubles the ceiling."""
        ceiling = min(self.cap_s, self.base_s * (2.0**self.attempt))
        self.attempt += 1
        return self._rng.uniform(min(self.base_s / 2, ceiling), ceiling)

    def reset(self) -> None:
        """Back to the first delay (after a success)."""
        self.attempt = 0


class FrameReader:
    """Keeps the newest frame of one camera, reconnecting for ever until :meth:`stop`.

    :param camera_id: camera id, used in records
    :param source: ``rtsp://...`` URL or a local video file path
    :param report: callback receiving :class:`~schemas.records.CameraStatus` and
        :class:`~schemas.records.DeadLetter` records, called from the reader thread
    :param open_timeout_ms: how long opening a stream may take, ms
    :param read_timeout_ms: how long one read may block, ms
    :param status_interval_s: period of the status reports with the measured fps, s
    :param backoff: reconnect delays (default 0.5 s doubling up to 30 s, with jitter)
    :param loop_file: restart a local file at its end (a file then behaves like a camera)
    :param realtime_file: pace a local file at its own frame rate, as a camera would deliver it
    :param max_corrupt_per_window: corrupt frames tolerated in one status window before the
        camera is reported ``degraded``
    :param on_frame: called from the reader thread with each new frame (e.g. to wake an
        event loop with ``loop.call_soon_threadsafe``)
    :param capture_factory: opens a source and returns an object with the
        ``cv2.VideoCapture`` methods ``isOpened``, ``read``, ``get``, ``set``, ``release``
        (default: OpenCV's FFmpeg backend)
    """

    def __init__(
        self,
        camera_id: str,
        source: str,
        report: Report | None = None,
        *,
        open_timeout_ms: int = 5000,
        read_timeout_ms: int = 5000,
        status_interval_s: float = 5.0,
        backoff: Backoff | None = None,
        loop_file: bool = True,
        realtime_file: bool = True,
        max_corrupt_per_window: int = 0,
        on_frame: Callable[[Frame], None] | None = None,
        capture_factory: Callable[[str], Any] | None = None,
    ):
        self.camera_id = camera_id
        self.source = source
        self.report = report or (lambda record: None)
        self.open_timeout_ms = open_timeout_ms
        self.read_timeout_ms = read_timeout_ms
        self.status_interval_s = status_interval_s
        self.backoff = backoff or Backoff()
        self.loop_file = loop_file
        self.realtime_file = realtime_file
        self.max_corrupt_per_window = max_corrupt_per_window
        self.is_file = not is_stream_url(source)
        self.on_frame = on_frame
        self.capture_factory = capture_factory

        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = 0
        self.status: str = "offline"
        self.reason: str | None = "not started"
        self.frames_read = 0
        self.frames_corrupt = 0
        self.reconnects = 0
        self.last_frame_t_ms: int | None = None
        self._window_frames = 0
        self._window_corrupt = 0
        self._window_start = time.monotonic()
        self._shape: tuple[int, int] | None = None
        self.fps: float | None = None

    # -- consumer side ------------------------------------------------------------

    def start(self) -> FrameReader:
        """Start the reader thread (returns ``self``)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"rtsp-{self.camera_id}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, join_timeout_s: float = 10.0) -> None:
        """Stop the thread and release the capture."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(join_timeout_s)

    def latest(self) -> Frame | None:
        """The newest frame, or ``None`` before the first one."""
        with self._cond:
            return self._latest

    def wait_frame(self, after_seq: int = -1, timeout_s: float | None = None) -> Frame | None:
        """Block until a frame newer than ``after_seq`` exists; return the newest one.

        Frames between ``after_seq`` and the returned one were dropped on purpose.

        :param after_seq: ``seq`` of the last frame the caller handled
        :param timeout_s: give up after this long, s (``None``: wait until stopped)
        :returns: the newest frame, or ``None`` on timeout or stop
        """
        with self._cond:
            self._cond.wait_for(
                lambda: (
                    self._stop.is_set()
                    or (self._latest is not None and self._latest.seq > after_seq)
                ),
                timeout_s,
            )
            if self._latest is not None and self._latest.seq > after_seq:
                return self._latest
            return None

    def status_record(self) -> records.CameraStatus:
        """The current status as a record."""
        return records.CameraStatus(
            camera_id=self.camera_id,
            t_ms=wall_ms(),
            status=self.status,  # type: ignore[arg-type]
            reason=self.reason,
            fps=None if self.fps is None else round(self.fps, 2),
            last_frame_t_ms=self.last_frame_t_ms,
        )

    # -- reader thread ------------------------------------------------------------

    def _set_status(self, status: str, reason: str | None) -> None:
        changed = (status, reason) != (self.status, self.reason)
        self.status, self.reason = status, reason
        if changed:
            log.info("camera %s: %s%s", self.camera_id, status, f" ({reason})" if reason else "")
            self._emit(self.status_record())

    def _emit(self, record: msgspec.Struct) -> None:
        try:
            self.report(record)
        except Exception:  # the consumer's problem must not kill capture
            log.exception("camera %s: report callback failed", self.camera_id)

    def _open(self) -> cv2.VideoCapture:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            self.open_timeout_ms,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            self.read_timeout_ms,
        ]
        if self.capture_factory is not None:
            cap = self.capture_factory(self.source)
        elif self.is_file and not Path(self.source).is_file():
            raise FileNotFoundError(f"no such file: {self.source}")
        else:
            cap = cv2.VideoCapture(self.source, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            why = ""
            if self.capture_factory is None and self.source.startswith("rtsp://"):
                why = f" ({diagnose_rtsp(self.source, self.open_timeout_ms / 1000)})"
            raise ConnectionError(f"cannot open {redact(self.source)}{why}")
        return cap

    def _run(self) -> None:
        self._set_status("offline", "connecting")
        while not self._stop.is_set():
            try:
                cap = self._open()
            except (ConnectionError, FileNotFoundError, cv2.error) as exc:
                self._set_status("offline", f"open_failed: {exc}")
                self._sleep(self.backoff.next_delay_s())
                continue
            try:
                reason = self._read_loop(cap)
            finally:
                cap.release()
            if self._stop.is_set():
                break
            self.reconnects += 1
            self._set_status("offline", reason)
            self._sleep(self.backoff.next_delay_s())
        self._set_status("offline", "stopped")

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _read_loop(self, cap: cv2.VideoCapture) -> str:
        """Read until the stream fails; return the reason it ended."""
        file_fps = cap.get(cv2.CAP_PROP_FPS) if self.is_file else 0.0
        period_s = 1.0 / file_fps if self.realtime_file and file_fps and file_fps > 0 else 0.0
        next_due = time.monotonic()
        self._window_start = time.monotonic()
        self._window_frames = self._window_corrupt = 0
        got_any = False
        while not self._stop.is_set():
            ok, image = cap.read()
            t_ms = wall_ms()
            if not ok:
                if self.is_file and self.loop_file and got_any:
                    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    got_any = False
                    continue
                return (
                    "end_of_stream"
                    if self.is_file
                    else "read_failed: no frame within timeout or stream closed"
                )
            if period_s:
                next_due += period_s
                delay = next_due - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_due = time.monotonic()
                t_ms = wall_ms()
            self._seq += 1
            try:
                image = check_frame(image, self._shape)
            except FrameError as exc:
                self._corrupt(exc, image)
                self._tick()
                continue
            got_any = True
            self._shape = (image.shape[0], image.shape[1])
            self.frames_read += 1
            self._window_frames += 1
            self.last_frame_t_ms = t_ms
            frame = Frame(image, t_ms, self._seq)
            with self._cond:
                self._latest = frame
                self._cond.notify_all()
            if self.on_frame is not None:
                try:
                    self.on_frame(frame)
                except Exception:  # noqa: BLE001 - e.g. the event loop closed during shutdown
                    log.debug("camera %s: on_frame failed", self.camera_id, exc_info=True)
            if self.status != "online" and self._window_corrupt <= self.max_corrupt_per_window:
                self.backoff.reset()
                self._set_status("online", None)
            self._tick()
        return "stopped"

    def _corrupt(self, exc: FrameError, image: object) -> None:
        """Count a corrupt frame, dead-letter it, and mark the camera degraded."""
        self.frames_corrupt += 1
        self._window_corrupt += 1
        raw = image.tobytes()[:4096] if isinstance(image, np.ndarray) else b""
        self._emit(
            dead_letter(
                exc.reason,
                source=f"camera:{self.camera_id}",
                stage="camera.frame",
                detail=f"{exc.detail} (raw: first {len(raw)} bytes of the decoded image)",
                raw=raw,
                rx_t_ms=wall_ms(),
            )
        )
        if self._window_corrupt > self.max_corrupt_per_window:
            self._set_status("degraded", f"corrupt_frames: {exc.reason}")

    def _tick(self) -> None:
        """Close the status window when due: measure fps, emit a periodic status."""
        now = time.monotonic()
        elapsed = now - self._window_start
        if elapsed < self.status_interval_s:
            return
        self.fps = self._window_frames / elapsed
        if self.status == "degraded" and self._window_corrupt <= self.max_corrupt_per_window:
            self.status, self.reason = "online", None
        self._emit(self.status_record())
        self._window_start = now
        self._window_frames = self._window_corrupt = 0


def diagnose_rtsp(url: str, timeout_s: float = 3.0) -> str:
    """Why an RTSP URL does not open, in a few words, from one unauthenticated ``DESCRIBE``.

    OpenCV only says "not opened"; this tells an operator whether the host is
    unreachable, the server wants (other) credentials, or the stream path is unknown.

    :returns: e.g. ``connection refused``, ``RTSP 401 Unauthorized: wrong or missing
        credentials``, ``RTSP 404 Not Found: no such stream path``
    """
    parsed = urlsplit(url)
    host, port = parsed.hostname or "", parsed.port or 554
    clean = urlunsplit((parsed.scheme, f"{host}:{port}", parsed.path or "/", parsed.query, ""))
    request = (
        f"DESCRIBE {clean} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n"
        "User-Agent: shorewatch\r\n\r\n"
    ).encode()
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(request)
            status_line = sock.makefile("rb").readline(512).decode("latin-1").strip()
    except ConnectionRefusedError:
        return "connection refused"
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except OSError as exc:
        return f"unreachable: {exc.strerror or exc}"
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("RTSP/"):
        return f"not an RTSP server (answered {status_line[:60]!r})"
    code = parts[1]
    text = parts[2] if len(parts) > 2 else ""
    if code == "401":
        has_creds = parsed.username is not None
        return f"RTSP 401 {text}: " + ("wrong credentials" if has_creds else "credentials required")
    if code == "404":
        return f"RTSP 404 {text}: no such stream path"
    if code == "200":
        return "server answers DESCRIBE: the stream itself failed (codec, transport or timeout)"
    return f"RTSP {code} {text}".strip()


def with_credentials(url: str, user: str | None, password: str | None) -> str:
    """``url`` with ``user:password@`` inserted (URL-encoded) unless it already has user info.

    FFmpeg sends them only when the server asks (RTSP 401), so adding them is harmless
    for a camera without authentication.

    >>> with_credentials("rtsp://10.0.0.5:554/main", "admin", "p@ss")
    'rtsp://admin:p%40ss@10.0.0.5:554/main'
    """
    if not user or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    if "@" in rest.split("/", 1)[0]:
        return url
    userinfo = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return f"{scheme}://{userinfo}@{rest}"


def redact(url: str) -> str:
    """``url`` without the password of its user-info part."""
    if "://" not in url or "@" not in url.split("://", 1)[1].split("/", 1)[0]:
        return url
    scheme, rest = url.split("://", 1)
    userinfo, host = rest.split("@", 1)
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
