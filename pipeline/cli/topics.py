"""``shorewatch topics``."""

from __future__ import annotations

import argparse

from pipeline.cli import lazy


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("topics", help="the Kafka topics of Shorewatch")
    tsub = p.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    c = tsub.add_parser("create", help="create missing topics (idempotent)")
    c.add_argument("--settings", help="settings file (YAML)")
    c.set_defaults(func=lazy("pipeline.admin", "cmd_create"))
    ls = tsub.add_parser("list", help="print the topic registry")
    ls.set_defaults(func=lazy("pipeline.admin", "cmd_list"))
