"""The ``ipycam`` ONVIF emulator (PyPI), run on 127.0.0.1 for the connector tests.

``ipycam.IPCamera.start()`` binds every interface and starts WS-Discovery on the
fixed port 3702 and stream encoders; the tests need none of that. This module
builds the camera object (ONVIF service, PTZ controller) and serves its real HTTP
handler (``ipycam.http.IPCameraHTTPHandler``: SOAP device, media and PTZ
services with WS-Security, snapshot JPEG) from a server bound to 127.0.0.1 on a
free port. Frames are generated (a gradient with a moving bar), no camera needed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np


@dataclass
class IpycamPeer:
    camera: object
    server: object
    thread: threading.Thread
    port: int

    def feed(self, n_frames: int = 1, width: int = 640, height: int = 360) -> np.ndarray:
        """Stream ``n_frames`` generated BGR frames into the camera; return the last."""
        frame = np.zeros((height, width, 3), np.uint8)
        for i in range(n_frames):
            frame[:] = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None]
            x = (i * 7) % width
            frame[:, x : x + 10] = (0, 0, 255)
            self.camera.stream(frame)
        return frame

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def start_ipycam(
    user: str = "admin", password: str = "secret", rtsp_port: int = 8554
) -> IpycamPeer:
    """Start the emulator's ONVIF HTTP service on 127.0.0.1 (free port)."""
    from ipycam import CameraConfig, IPCamera
    from ipycam.camera import ReusableThreadingTCPServer
    from ipycam.http import IPCameraHTTPHandler

    config = CameraConfig(
        name="Shoreline emulator",
        manufacturer="IPyCam",
        model="VirtualCam-1",
        local_ip="127.0.0.1",
        onvif_port=0,
        rtsp_port=rtsp_port,
        main_width=640,
        main_height=360,
        main_fps=120,
        show_timestamp=False,
    )
    config.set_credentials(user, password)
    camera = IPCamera(config)
    IPCameraHTTPHandler.camera = camera
    server = ReusableThreadingTCPServer(("127.0.0.1", 0), IPCameraHTTPHandler)
    port = server.server_address[1]
    config.onvif_port = port  # the service URLs it advertises must carry the real port
    thread = threading.Thread(target=server.serve_forever, name="ipycam-http", daemon=True)
    thread.start()
    return IpycamPeer(camera, server, thread, port)
