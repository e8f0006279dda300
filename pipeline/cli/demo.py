"""``shorewatch demo``."""

from __future__ import annotations

import argparse

from pipeline.cli import lazy
from pipeline.settings import REPO_DIR


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="an end-to-end night on the Haikou shore (make demo)")
    p.add_argument("--site", default=str(REPO_DIR / "sites" / "haikou"))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", default="1h")
    p.add_argument("--start", default="2026-03-08T03:00:00+08:00")
    p.add_argument("--fps", type=float, default=0.5, help="camera frames per second")
    p.add_argument("--speed", type=float, default=40.0, help="replay speed, times real time")
    p.add_argument("--out", default=str(REPO_DIR / "var" / "demo"))
    p.add_argument(
        "--console-port", type=int, default=8080, help="port of the operator console (127.0.0.1)"
    )
    p.add_argument(
        "--keep-console",
        action="store_true",
        help="keep the console up after the night until Ctrl-C (default: it ends with the demo)",
    )
    p.set_defaults(func=lazy("pipeline.tools.demo", "cmd_demo"))
