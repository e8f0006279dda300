"""``shorewatch simulate``."""

from __future__ import annotations

from pipeline.cli import lazy


def add_commands(sub) -> None:
    """Add ``simulate`` to the ``shorewatch`` command line."""
    p = sub.add_parser(
        "simulate", help="simulate a night of AIS and camera data with planted events"
    )
    p.add_argument("--site", required=True, help="site folder")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", default="2h", help="e.g. 2h, 90m (default 2h)")
    p.add_argument(
        "--start", default="2026-03-08T02:00:00+08:00", help="ISO 8601 start (default %(default)s)"
    )
    p.add_argument(
        "--fps", type=float, default=1.0, help="camera frames per second, at most 1 (default 1)"
    )
    p.add_argument(
        "--noise",
        choices=("realistic", "none"),
        default="realistic",
        help="sensor noise: realistic (default) or none (docs/detection-quality.md)",
    )
    p.add_argument("--nights", type=int, default=1, help="consecutive nights (night-01 … in OUT)")
    p.add_argument(
        "--hidden-nights", type=int, default=3, help="with --nights: nights using the hidden place"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=lazy("pipeline.tools.simulate", "cmd_simulate"))
