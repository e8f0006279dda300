"""``shorewatch chaos``: the fault suite (argparse wiring; see :mod:`pipeline.tools.chaos`)."""

from __future__ import annotations

import argparse

from pipeline.cli import lazy

SCENARIO_NAMES = (
    "worker-kill",
    "worker-join-leave",
    "broker-restart",
    "connectors-broker-away",
    "cpu-load",
    "overload",
    "worker-pause",
    "ais-stall",
    "big-area",
    "oversized-input",
)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "chaos",
        help="the fault suite: each scenario's alerts against replay of the same night",
    )
    p.add_argument(
        "--scenario",
        choices=SCENARIO_NAMES,
        action="append",
        help="run this scenario (repeatable; default: all)",
    )
    p.add_argument("--short", action="store_true", help="a short night (for tests)")
    p.add_argument("--speed", type=float, default=None, help="replay speed, times real time")
    p.add_argument("--json", action="store_true", help="one JSON object per scenario per line")
    p.add_argument(
        "--dynamic-members",
        action="store_true",
        help="workers join without group.instance.id (default: static membership)",
    )
    p.add_argument("--out", default="var/chaos", help="run folder (nights, logs, broker)")
    p.set_defaults(func=lazy("pipeline.tools.chaos", "run"))
