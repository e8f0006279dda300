"""``shorewatch kafka``."""

from __future__ import annotations

import argparse

from pipeline.cli import lazy


def add_commands(sub: argparse._SubParsersAction) -> None:
    kafka = sub.add_parser("kafka", help="the local development broker")
    ksub = kafka.add_subparsers(dest="kafka_command", required=True, metavar="ACTION")
    for name, func, text in (
        ("up", "cmd_up", "fetch (once), format (once) and start the broker; print its address"),
        ("status", "cmd_status", "is the broker running and answering"),
        ("down", "cmd_down", "stop the broker"),
    ):
        p = ksub.add_parser(name, help=text)
        p.add_argument("--timeout", type=float, default=10.0, help="broker answer timeout, s")
        p.set_defaults(func=lazy("pipeline.tools.localkafka", func))
