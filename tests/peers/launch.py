"""Start and stop the camera test peers: the GStreamer RTSP server (a subprocess under the
system Python) and free ports on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER = Path(__file__).resolve().parents[2] / "pipeline" / "tools" / "rtsp_server.py"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gst_rtsp_missing() -> str | None:
    """Why the GStreamer RTSP server cannot run here, or ``None`` when it can."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found (the RTSP test server runs under the system Python)"
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
        "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
        "assert Gst.ElementFactory.find('x264enc'), 'x264enc (gstreamer1.0-plugins-ugly) missing'"
    )
    r = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        return (
            "GStreamer RTSP server not usable by /usr/bin/python3 (install python3-gi, "
            f"gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-*): {last}"
        )
    return None


class RtspServer:
    """``pipeline/tools/rtsp_server.py`` as a subprocess; :meth:`stop` and :meth:`start` again
    on the same port simulate a camera that goes away and comes back.

    :param args: extra arguments (``--file PATH`` or ``--test-pattern`` ...)
    """

    def __init__(self, *args: str, port: int | None = None, path: str = "cam"):
        self.args = list(args)
        self.port = port or free_port()
        self.path = path
        self.proc: subprocess.Popen[str] | None = None
        self.log: list[str] = []

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{self.path}"

    def start(self, ready_timeout_s: float = 60.0) -> RtspServer:
        cmd = [
            SYSTEM_PYTHON,
            str(RTSP_SERVER),
            "--port",
            str(self.port),
            "--path",
            self.path,
            *self.args,
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        ready = threading.Event()

        def pump(proc: subprocess.Popen[str]) -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self.log.append(line.rstrip())
                if line.startswith("READY"):
                    ready.set()
            ready.set()

        threading.Thread(target=pump, args=(self.proc,), daemon=True).start()
        ready.wait(ready_timeout_s)
        if self.proc.poll() is not None or not any(x.startswith("READY") for x in self.log):
            self.stop()
            raise RuntimeError("RTSP server did not start:\n" + "\n".join(self.log[-20:]))
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["RtspServer", "free_port", "gst_rtsp_missing"]
