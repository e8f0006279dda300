"""``shorewatch cameras``."""

from __future__ import annotations

from typing import Any

from pipeline.cli import lazy


def add_commands(sub: Any) -> None:
    """``shorewatch cameras discover`` and ``shorewatch cameras probe``."""
    if "cameras" in sub.choices:
        cameras = sub.choices["cameras"]
        group = next(a for a in cameras._actions if a.__class__.__name__ == "_SubParsersAction")
    else:
        cameras = sub.add_parser("cameras", help="camera tools (discovery)")
        group = cameras.add_subparsers(dest="cameras_command", required=True, metavar="ACTION")
    p = group.add_parser("discover", help="find ONVIF cameras with WS-Discovery")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for answers")
    p.add_argument("--interface", default=None, help="local IPv4 address to probe from")
    p.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="probe this address by unicast instead of multicast (repeatable)",
    )
    p.add_argument("--port", type=int, default=3702, help="UDP port of the multicast probe")
    p.set_defaults(func=lazy("connectors.onvif", "cmd_discover"))

    q = group.add_parser(
        "probe", help="ask one ONVIF device what its cameras.yaml entry needs (stream, size)"
    )
    q.add_argument("--host", required=True)
    q.add_argument("--port", type=int, default=80, help="ONVIF HTTP port")
    q.add_argument("--user-env", required=True, help="variable holding the user name")
    q.add_argument("--password-env", required=True, help="variable holding the password")
    q.add_argument("--id", default="cam-01", help="camera id for the printed entry")
    q.add_argument("--timeout", type=float, default=10.0, help="limit of each call, s")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.set_defaults(func=lazy("connectors.onvif", "cmd_probe"))
