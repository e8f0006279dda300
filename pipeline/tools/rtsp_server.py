"""A real RTSP server for the demo and the camera connector tests (GStreamer ``GstRtspServer``).

Run it with the *system* Python, which has PyGObject (``python3-gi``) and the
GStreamer RTSP server introspection data (``gir1.2-gst-rtsp-server-1.0``)::

    /usr/bin/python3 pipeline/tools/rtsp_server.py --port 8554 --file ../shared/data/video/clip-01/clip-01.mp4
    /usr/bin/python3 pipeline/tools/rtsp_server.py --port 8554 --test-pattern

It serves H.264 over RTP at ``rtsp://127.0.0.1:<port>/<path>`` (default path
``cam``), bound to 127.0.0.1 only. A file is decoded, re-encoded as H.264 at
its own frame rate and looped forever (``--no-loop`` ends the stream at the end
of the file instead). When it is listening it prints one line ``READY <url>`` on
stdout, so a test can wait for it. SIGTERM or SIGINT stops it. With ``--user`` and
``--password`` it requires RTSP basic authentication.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

ENCODER = (
    "videoconvert ! video/x-raw,format=I420 ! "
    "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={kbps} ! "
    "video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1"
)


def launch_line(
    file_path: str | None, fps: int, width: int, height: int, kbps: int, pattern: str = "ball"
) -> str:
    """The ``gst-launch`` description of the media pipeline.

    :param file_path: video file to serve; ``None`` for the ``videotestsrc`` pattern
    :param fps: frame rate of the test pattern, frames/s (a file keeps its own)
    :param width: test pattern width, px
    :param height: test pattern height, px
    :param kbps: H.264 bit rate, kbit/s
    :param pattern: ``videotestsrc`` pattern (``ball``, ``smpte``, ``black`` ...)
    """
    if file_path is None:
        source = (
            f"videotestsrc is-live=true pattern={pattern} ! "
            f"video/x-raw,width={width},height={height},framerate={fps}/1 ! "
        )
    else:
        uri = Gst.filename_to_uri(os.path.abspath(file_path))
        # identity sync=true paces the decoded file at its own frame rate, like a live camera.
        source = f"uridecodebin uri={uri} ! identity name=pacer sync=true ! "
    return "( " + source + ENCODER.format(gop=fps, kbps=kbps) + " )"


def loop_at_end(factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
    """``media-configure`` handler: at end of file, seek back to the start instead of ending.

    A probe on the pacing element drops the end-of-stream event and asks the main
    loop to issue a flushing seek to 0 on the media's pipeline.
    """
    element = media.get_element()
    pacer = element.get_by_name("pacer")
    if pacer is None:
        return

    def rewind() -> bool:
        pipeline = element.get_parent() or element
        pipeline.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0)
        return False

    def on_event(pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        event = info.get_event()
        if event is not None and event.type == Gst.EventType.EOS:
            GLib.idle_add(rewind)
            return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.OK

    pacer.get_static_pad("src").add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, on_event)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="cam", help="mount path, without the leading /")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--file", help="video file to serve (looped)")
    group.add_argument("--test-pattern", action="store_true", help="serve videotestsrc")
    parser.add_argument("--pattern", default="ball", help="videotestsrc pattern, e.g. ball, black")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--kbps", type=int, default=1500)
    parser.add_argument("--no-loop", action="store_true", help="end the stream at end of file")
    parser.add_argument("--user", help="require RTSP basic authentication with this user")
    parser.add_argument("--password", default="", help="password of --user")
    args = parser.parse_args(argv)

    Gst.init(None)
    if args.file and not os.path.isfile(args.file):
        print(f"no such file: {args.file}", file=sys.stderr)
        return 2

    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        launch_line(args.file, args.fps, args.width, args.height, args.kbps, args.pattern)
    )
    factory.set_shared(True)
    if args.file and not args.no_loop:
        factory.connect("media-configure", loop_at_end)
    server.get_mount_points().add_factory("/" + args.path, factory)
    if args.user:
        # RTSP basic authentication: only this user may open (construct/access) the media.
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "viewer")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("viewer", "media.factory.access", True)
        permissions.add_permission_for_role("viewer", "media.factory.construct", True)
        factory.set_permissions(permissions)

    if server.attach(None) == 0:
        print(f"cannot listen on {args.host}:{args.port}", file=sys.stderr)
        return 1

    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    print(f"READY rtsp://{args.host}:{server.get_bound_port()}/{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
