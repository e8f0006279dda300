"""The demo's real-camera showcase: FVessel's clip-01 served over RTSP into the camera connector.

Where GStreamer's RTSP server is usable by the system Python (``python3-gi``,
``gir1.2-gst-rtsp-server-1.0``, ``x264enc``), :func:`rtsp_showcase`

1. starts ``pipeline/tools/rtsp_server.py`` on a free 127.0.0.1 port, serving
   ``$SHOREWATCH_SHARED/data/video/clip-01/clip-01.mp4`` at its own frame rate;
2. runs the camera connector (:class:`connectors.camera.CameraIngest`: RTSP frame
   reader, Yolo-Fastest DNN at confidence 0.2, tracker, geo-referencing with the
   clip's ``camera_para.txt``) on it for a few seconds at 5 frames/s;
3. publishes ``CameraFrame`` records to ``shorewatch.camera.detection.v1`` and status
   records to ``shorewatch.camera.status.v1`` through the real broker, keyed by the
   camera id ``clip-01``, with evidence JPEGs under ``OUT/evidence``;
4. stops the connector and the server, whatever happens.

``clip-01`` is a camera on the Yangtze at Wuhan, not one of the Haikou site's
cameras: a worker of the Haikou site dead-letters these frames with reason
``unknown_camera`` (stage ``camera.detection``). That is the pipeline's correct
behaviour for a camera it has no calibration for; the showcase is about the
connector and the protocol, and the demo says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from pipeline import topics
from pipeline.settings import shared_dir
from pipeline.site import CLIP_STRUCTURES_DIR, read_structures
from pipeline.topics import TopicSpec
from schemas import records

SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER = Path(__file__).with_name("rtsp_server.py")
CAMERA_ID = "clip-01"
MODEL_NAME = "yolo-fastest-1.1-xl"
DNN_CONF = 0.2
SENSOR_WIDTH_PX, SENSOR_HEIGHT_PX = 2560, 1440  # what camera_para.txt's intrinsics refer to

__all__ = ["CAMERA_ID", "gst_rtsp_missing", "print_rtsp_showcase", "rtsp_showcase"]


def gst_rtsp_missing(timeout_s: float = 20.0) -> str | None:
    """Why GStreamer's RTSP server cannot run under the system Python, or ``None`` when it can.

    :param timeout_s: limit of the probe, s
    """
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found (the RTSP server runs under the system Python)"
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
        "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
        "assert Gst.ElementFactory.find('x264enc'), 'x264enc (gstreamer1.0-plugins-ugly) missing'"
    )
    try:
        r = subprocess.run(
            [SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return f"GStreamer probe did not answer within {timeout_s:g} s"
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        return (
            "GStreamer RTSP server not usable by /usr/bin/python3 (install python3-gi, "
            f"gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-ugly): {last}"
        )
    return None


def _missing(shared: Path) -> str | None:
    clip = shared / "data" / "video" / CAMERA_ID
    model = shared / "models" / "yolo-fastest-1.1"
    for path in (
        RTSP_SERVER,
        clip / f"{CAMERA_ID}.mp4",
        clip / "camera_para.txt",
        model / f"{MODEL_NAME}.weights",
    ):
        if not path.is_file():
            return f"{path} not found"
    return gst_rtsp_missing()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class _ClipCamera:
    """The camera of clip-01, as :class:`connectors.camera.CameraIngest` expects one.

    :param params: the 11 numbers of ``camera_para.txt``
    """

    id: str
    rtsp_url: str
    params: list[float]
    onvif: Any = None
    ptz: Any = None
    water_mask: Any = None
    structures: tuple[Any, ...] = ()
    image_width: int = 888
    image_height: int = 500

    def model(self) -> Any:
        from pipeline.core.camera import CameraModel

        # at sensor size; the analyser rescales it to the decoded frame
        return CameraModel.from_fvessel_params(
            self.params,
            SENSOR_WIDTH_PX,
            SENSOR_HEIGHT_PX,
            sensor_width=SENSOR_WIDTH_PX,
            sensor_height=SENSOR_HEIGHT_PX,
        )


class _Server:
    """``rtsp_server.py --file CLIP`` under the system Python, on 127.0.0.1.

    :param clip: video file to serve (looped)
    :param path: RTSP mount path
    """

    def __init__(self, clip: Path, path: str = CAMERA_ID):
        self.clip = clip
        self.path = path
        self.port = 0
        self.proc: asyncio.subprocess.Process | None = None
        self.log: list[str] = []
        self._pump: asyncio.Task | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{self.path}"

    async def start(self, ready_timeout_s: float = 20.0, attempts: int = 2) -> None:
        """Start, and wait for its ``READY`` line; a port taken meanwhile is retried once.

        :raises RuntimeError: it did not become ready
        """
        for _ in range(attempts):
            self.port = _free_port()
            self.proc = await asyncio.create_subprocess_exec(
                SYSTEM_PYTHON,
                str(RTSP_SERVER),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--path",
                self.path,
                "--file",
                str(self.clip),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            ready = asyncio.Event()
            self._pump = asyncio.create_task(self._read(self.proc, ready))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), ready_timeout_s)
            if self.proc.returncode is None and any(x.startswith("READY") for x in self.log):
                return
            await self.stop()
        raise RuntimeError("RTSP server did not start: " + " | ".join(self.log[-5:]))

    async def _read(self, proc: asyncio.subprocess.Process, ready: asyncio.Event) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.log.append(line)
            del self.log[:-50]
            if line.startswith("READY"):
                ready.set()
        ready.set()

    async def stop(self, timeout_s: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await asyncio.wait_for(proc.wait(), timeout_s)
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        return proc.returncode


class _Tally:
    """What went to the topics: counts, examples, status transitions, evidence."""

    def __init__(self) -> None:
        self.frames = 0
        self.frames_with_boats = 0
        self.detections = 0
        self.masked = 0
        self.examples: list[dict[str, Any]] = []
        self.statuses: list[str] = []
        self.evidence: list[str] = []
        self.sent: dict[str, int] = {}

    def add(self, topic: TopicSpec, record: msgspec.Struct) -> None:
        self.sent[topic.name] = self.sent.get(topic.name, 0) + 1
        if isinstance(record, records.CameraFrame):
            self.frames += 1
            boats = [d for d in record.detections if d.cls == "boat"]
            self.detections += len(record.detections)
            self.masked += record.masked_detections
            self.frames_with_boats += bool(boats)
            if record.evidence_uri:
                self.evidence.append(record.evidence_uri)
            seen = {e["track_id"] for e in self.examples}
            for d in boats:  # confirmed image tracks only (an unconfirmed box has id -1)
                if d.track_id >= 0 and d.track_id not in seen and len(self.examples) < 3:
                    seen.add(d.track_id)
                    self.examples.append(
                        {
                            "track_id": d.track_id,
                            "bearing_deg": round(d.bearing_deg, 1),
                            "range_m": None if d.range_m is None else round(d.range_m),
                            "confidence": round(d.confidence, 2),
                        }
                    )
        elif isinstance(record, records.CameraStatus):
            status = record.status + (f" ({record.reason})" if record.reason else "")
            if not self.statuses or self.statuses[-1] != status:  # transitions, not reports
                self.statuses.append(status)


def _path_of(uri: str) -> str:
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(uri).path) if uri.startswith("file://") else uri


async def rtsp_showcase(
    bootstrap: str,
    out: Path,
    seconds: float = 8.0,
    *,
    shared: Path | None = None,
    max_fps: float = 5.0,
    on_skip: Callable[[str], None] | None = None,
    first_frame_timeout_s: float = 15.0,
) -> dict | None:
    """Serve clip-01 over RTSP into the camera connector for ``seconds`` and publish to Kafka.

    :param bootstrap: Kafka bootstrap servers (127.0.0.1)
    :param out: folder; evidence JPEGs go to ``out/evidence``
    :param seconds: how long frames are analysed after the first one, s
    :param shared: the shared data folder (default ``$SHOREWATCH_SHARED`` or ``../shared``)
    :param max_fps: most frames analysed per second
    :param on_skip: called with the reason when the showcase cannot run here
    :param first_frame_timeout_s: limit for the stream to deliver its first analysed frame, s
    :returns: ``None`` when skipped, else ``{"url", "frames_read", "frames_published",
        "frames_with_boats", "detections", "examples", "statuses", "latency_p50_ms",
        "latency_p95_ms", "evidence", "sent", "server_pid", "server_exit", "elapsed_s"}``
    :raises RuntimeError: the server did not start or no frame arrived in time
    """
    from connectors.camera import CameraIngest, LatencyStats, analyser_factory, new_stages
    from connectors.kafka import RecordProducer

    shared = Path(shared) if shared is not None else shared_dir()
    why = await asyncio.to_thread(_missing, shared)
    if why is not None:
        if on_skip is not None:
            on_skip(why)
        return None
    t0 = time.monotonic()
    clip_dir = shared / "data" / "video" / CAMERA_ID
    text = (clip_dir / "camera_para.txt").read_text().strip().strip("[]")
    params = [float(v) for v in text.split(",")]
    evidence_dir = Path(out) / "evidence"
    tally = _Tally()
    server = _Server(clip_dir / f"{CAMERA_ID}.mp4")
    result: dict[str, Any] = {}
    try:
        await server.start()
        # the clip's outlined structures (the far-bank bridge), as eval camera uses them
        outlines, width, height = read_structures(CLIP_STRUCTURES_DIR / "clip-01.structures.yaml")
        camera = _ClipCamera(CAMERA_ID, server.url, params, structures=outlines,
                             image_width=width, image_height=height)  # fmt: skip
        factory = analyser_factory(
            shared / "models" / "yolo-fastest-1.1",
            model_name=MODEL_NAME,
            evidence_dir=evidence_dir,
            conf=DNN_CONF,
        )
        async with RecordProducer(bootstrap, client_id="shorewatch-demo-rtsp") as producer:

            async def sink(topic: TopicSpec, key: str, record: msgspec.Struct) -> None:
                # a status counts when handed over: the final "stopped" one is sent while
                # the connector shuts down, and its acknowledgement may not be awaited
                if isinstance(record, records.CameraStatus):
                    tally.add(topic, record)
                await asyncio.wait_for(producer.send_and_wait(topic, key, record), 10.0)
                if not isinstance(record, records.CameraStatus):
                    tally.add(topic, record)

            ingest = CameraIngest(
                [camera],
                sink,
                factory,
                max_fps=max_fps,
                analysis_threads=1,
                reader_kwargs={"open_timeout_ms": 5000, "read_timeout_ms": 5000},
            )
            stop = asyncio.Event()
            runner = asyncio.create_task(ingest.run(stop))
            try:
                deadline = time.monotonic() + first_frame_timeout_s
                while tally.frames == 0 and time.monotonic() < deadline and not runner.done():
                    await asyncio.sleep(0.1)
                if tally.frames == 0:
                    worker = ingest.workers[0]
                    raise RuntimeError(
                        f"no frame from {server.url} within {first_frame_timeout_s:g} s "
                        f"(camera {worker.last_status.status if worker.last_status else '?'}: "
                        f"{worker.last_status.reason if worker.last_status else ''})"
                    )
                # latency from here on: stream start-up and model load are not the steady state
                ingest.latency = LatencyStats()
                ingest.stages.update(new_stages())
                for w in ingest.workers:
                    w.latency = ingest.latency
                    w.stages = ingest.stages
                await asyncio.sleep(seconds)
            finally:
                stop.set()
                try:
                    await asyncio.wait_for(runner, 15.0)
                except TimeoutError:
                    pass
            stats = ingest.stats()
            reader = ingest.workers[0].reader
            result.update(
                {
                    "frames_read": 0 if reader is None else reader.frames_read,
                    "latency_p50_ms": stats["latency"]["p50_ms"],
                    "latency_p95_ms": stats["latency"]["p95_ms"],
                }
            )
    finally:
        exit_code = await server.stop()
    result.update(
        {
            "url": server.url,
            "frames_published": tally.frames,
            "frames_with_boats": tally.frames_with_boats,
            "detections": tally.detections,
            "masked": tally.masked,
            "examples": tally.examples,
            "statuses": tally.statuses,
            "evidence": [_path_of(u) for u in tally.evidence],
            "sent": dict(tally.sent),
            "server_pid": None if server.proc is None else server.proc.pid,
            "server_exit": exit_code,
            "elapsed_s": round(time.monotonic() - t0, 1),
        }
    )
    return result


def _ms(v: float | None) -> str:
    return "?" if v is None else f"{v:.0f}"


async def print_rtsp_showcase(
    bootstrap: str, out: Path, seconds: float = 8.0, *, budget_s: float = 28.0
) -> dict | None:
    """Run :func:`rtsp_showcase` within ``budget_s`` and print a few lines for the demo.

    :param bootstrap: Kafka bootstrap servers
    :param out: the demo's output folder
    :param seconds: analysed stream time, s
    :param budget_s: hard limit of the whole showcase, s (the server is stopped regardless)
    """
    heading = "== the real clip-01 over RTSP"
    print(f"\033[1m{heading}\033[0m" if sys.stdout.isatty() else heading, flush=True)
    skipped: list[str] = []
    try:
        r = await asyncio.wait_for(
            rtsp_showcase(bootstrap, out, seconds, on_skip=skipped.append), budget_s
        )
    except TimeoutError:
        print(f"   RTSP showcase stopped: over its {budget_s:g} s budget", flush=True)
        return None
    if r is None:
        print(f"   RTSP showcase skipped: {skipped[0] if skipped else 'unavailable'}", flush=True)
        return None
    ex = (
        "; ".join(
            f"bearing {e['bearing_deg']:.1f}° "
            + (
                "beyond the horizon"
                if e["range_m"] is None
                else f"range {e['range_m'] / 1000:.2f} km"
            )
            for e in r["examples"]
        )
        or "none"
    )
    print(
        f"   {r['url']} (GStreamer, H.264) -> camera connector, Yolo-Fastest, "
        f"{r['elapsed_s']:.0f} s",
        flush=True,
    )
    print(
        f"   frames: {r['frames_read']} decoded, {r['frames_published']} analysed and "
        f"published, {r['frames_with_boats']} with boats ({r['detections']} detections; "
        f"{r['masked']} boxes on the outlined far-bank bridge left out)",
        flush=True,
    )
    print(f"   boats, geo-referenced with camera_para.txt: {ex}", flush=True)
    print(
        f"   status: {' -> '.join(r['statuses']) or 'none'}; capture to topic "
        f"p50 {_ms(r['latency_p50_ms'])} ms, p95 {_ms(r['latency_p95_ms'])} ms",
        flush=True,
    )
    first = r["evidence"][0] if r["evidence"] else "none"
    print(
        f"   evidence: {len(r['evidence'])} frames under {Path(out) / 'evidence'}, e.g. {first}",
        flush=True,
    )
    print(
        f"   on {topics.CAMERA_DETECTION.name} and {topics.CAMERA_STATUS.name}, key "
        f"{CAMERA_ID}: a Wuhan camera, not a Haikou one, so a Haikou worker dead-letters "
        "these frames as unknown_camera, as it should",
        flush=True,
    )
    return r
