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
    m = tsub.add_parser("manifest", help="write the topics as Strimzi KafkaTopic resources")
    m.add_argument("--cluster", default="shorewatch", help="the Strimzi Kafka resource's name")
    m.add_argument("--replicas", type=int, default=3, help="replication factor of every topic")
    m.add_argument(
        "--partitions", type=int, default=None, help="partitions of every topic (default: registry)"
    )
    m.add_argument("--namespace", default=None, help="namespace (default: none, kustomize sets it)")
    m.add_argument("--out", default="-", help="output file (default: stdout)")
    m.set_defaults(func=lazy("pipeline.manifests", "cmd_manifest"))
