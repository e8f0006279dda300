"""``shorewatch cue``: the slew-to-cue service, camera locks, and ``bench cue``."""

from __future__ import annotations

import argparse

from pipeline.cli import lazy


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cue",
        help="steer PTZ cameras to alerts and attach snapshots (lock/unlock/locks: operator locks)",
    )
    p.add_argument("--site", help="site folder (cameras with onvif and ptz sections)")
    p.add_argument("--evidence-dir", default=None, help="snapshot store (default: settings)")
    p.add_argument("--dwell-s", type=float, default=20.0, help="stay on a target this long, s")
    p.add_argument(
        "--min-interval-s", type=float, default=3.0, help="least time between cues of one camera"
    )
    p.add_argument("--min-severity", type=int, default=0, help="cue alerts from this severity")
    p.add_argument("--vessel-length-m", type=float, default=12.0, help="expected length, m")
    p.add_argument(
        "--radar", action="store_true", help="also cue radar targets no AIS track explains"
    )
    p.add_argument("--radar-severity", type=int, default=20, help="severity of such a cue")
    p.set_defaults(func=lazy("pipeline.cue.run", "cmd_run"))
    what = p.add_subparsers(dest="cue_what", required=False, metavar="ACTION")
    for name, text in (("lock", "lock a camera: the cue service leaves it alone"),
                       ("unlock", "release a camera's lock")):  # fmt: skip
        lk = what.add_parser(name, help=text)
        lk.add_argument("camera", help="camera id")
        lk.add_argument("--user", default=None, help="who (default: the login name)")
        if name == "lock":
            lk.add_argument("--reason", default=None, help="why, for the others")
            lk.add_argument("--for-s", type=float, default=None, help="end the lock after this")
        lk.set_defaults(func=lazy("pipeline.cue.locks", "cmd_lock"))
    what.add_parser("locks", help="every camera's lock").set_defaults(
        func=lazy("pipeline.cue.locks", "cmd_locks")
    )


def add_bench_cue(bench: argparse._SubParsersAction) -> None:
    """``bench cue``."""
    b = bench.add_parser(
        "cue", help="alert on the topic -> PTZ pose reached and snapshot attached (test device)"
    )
    b.add_argument("--alerts", type=int, default=30, help="alerts to cue")
    b.add_argument("--pan-speed", type=float, default=1.0, help="device pan speed, units/s")
    b.add_argument("--json", action="store_true", help="one JSON object on stdout")
    b.set_defaults(func=lazy("pipeline.tools.bench_cue", "cmd_bench"))
