"""``shorewatch schemas``."""

from __future__ import annotations

import argparse
import sys


def cmd_schemas(args: argparse.Namespace) -> int:
    from pipeline import topics
    from schemas import compat

    if args.schemas_command == "check":
        differ = compat.export(topics.ALL, check_only=True)
        for f in differ:
            print(f"schemas/{f} differs from the record types (run `shorewatch schemas export`)")
        broken = compat.check_published()
        for line in broken:
            print(f"breaking change against the published schema: {line}")
        return 1 if differ or broken else 0
    for f in compat.export(topics.ALL):
        print(f"wrote schemas/{f}")
    broken = compat.check_published()
    for line in broken:
        print(f"breaking change against the published schema: {line}", file=sys.stderr)
    return 1 if broken else 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schemas", help="the JSON Schemas of the topics")
    ssub = p.add_subparsers(dest="schemas_command", required=True, metavar="ACTION")
    ssub.add_parser("export", help="write schemas/*.json from the record types").set_defaults(
        func=cmd_schemas
    )
    ssub.add_parser(
        "check", help="files up to date and compatible with the published ones"
    ).set_defaults(func=cmd_schemas)
