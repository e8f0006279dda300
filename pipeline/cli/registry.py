"""``shorewatch registry`` and ``shorewatch watchlist``: the vessel registry."""

from __future__ import annotations

import argparse

from pipeline.cli import lazy

_COMMANDS = "pipeline.registry.commands"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--registry-url",
        help="SQLAlchemy URL of the registry database (default: setting registry_url, "
        "sqlite:///var/registry.sqlite)",
    )
    p.add_argument("--settings", help="settings file (YAML)")
    p.add_argument("--json", action="store_true", help="JSON lines on stdout")


def add_commands(sub: argparse._SubParsersAction) -> None:
    reg = sub.add_parser("registry", help="the vessel registry (SQLite or PostgreSQL)")
    rsub = reg.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    imp = rsub.add_parser(
        "import", help="upsert vessels from CSV or JSON files; list rejected rows (exit 1)"
    )
    imp.add_argument("files", nargs="+", help=".csv (header line) or .json (list of objects)")
    _common(imp)
    imp.set_defaults(func=lazy(_COMMANDS, "cmd_import"))
    show = rsub.add_parser("show", help="vessels by MMSI, registration or hull number, or name")
    show.add_argument("query")
    show.add_argument("--limit", type=int, default=20)
    _common(show)
    show.set_defaults(func=lazy(_COMMANDS, "cmd_show"))

    watch = sub.add_parser("watchlist", help="vessels to look out for")
    wsub = watch.add_subparsers(dest="watchlist_command", required=True, metavar="ACTION")
    add = wsub.add_parser("add", help="watch an MMSI, a name or a hull number")
    add.add_argument("kind", choices=("mmsi", "name", "hull_number"))
    add.add_argument("value")
    add.add_argument("--reason", required=True, help="why (shown in every alert it raises)")
    add.add_argument("--by", required=True, help="who adds it")
    add.add_argument("--until", help="ISO 8601 time the entry lapses (default: never)")
    _common(add)
    add.set_defaults(func=lazy(_COMMANDS, "cmd_watch_add"))
    rm = wsub.add_parser("remove", help="remove an entry")
    rm.add_argument("kind", choices=("mmsi", "name", "hull_number"))
    rm.add_argument("value")
    _common(rm)
    rm.set_defaults(func=lazy(_COMMANDS, "cmd_watch_remove"))
    ls = wsub.add_parser("list", help="the active entries (--all: lapsed ones too)")
    ls.add_argument("--all", action="store_true")
    _common(ls)
    ls.set_defaults(func=lazy(_COMMANDS, "cmd_watch_list"))
