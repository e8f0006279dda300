"""``shorewatch console`` and ``shorewatch users``: argparse wiring only; each command
imports its implementation when it runs."""

from __future__ import annotations

import argparse
import os

from pipeline.cli import lazy


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``console`` and ``users add|passwd|remove|list``."""
    p = sub.add_parser(
        "console",
        help="the operator console: live map, alert queue, triage (docs/console.md)",
        description=(
            "Serve the operator console over HTTP. It reads the alert, track, camera status "
            "and action topics and writes operator actions to shorewatch.alert.action.v1. "
            "It refuses to start without a user in the users file, unless --demo (then it "
            "binds 127.0.0.1 only and everyone on this machine is the supervisor 'demo')."
        ),
    )
    env = os.environ
    p.add_argument(
        "--host",
        default=env.get("SHOREWATCH_CONSOLE_BIND", "127.0.0.1"),
        help="address to bind (default 127.0.0.1; env SHOREWATCH_CONSOLE_BIND)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=int(env.get("SHOREWATCH_CONSOLE_PORT", "8080")),
        help="port to bind (default 8080; 0: any; env SHOREWATCH_CONSOLE_PORT)",
    )
    p.add_argument("--site", default=None, help="site folder (default: the setting `site`)")
    p.add_argument(
        "--store",
        default=env.get("SHOREWATCH_CONSOLE_STORE", "sqlite:///var/console/actions.db"),
        help="action store: sqlite:///PATH (default sqlite:///var/console/actions.db, a "
        "relative path) or postgresql://USER:PASS@HOST:PORT/DB; env SHOREWATCH_CONSOLE_STORE",
    )
    p.add_argument(
        "--users",
        default=env.get("SHOREWATCH_CONSOLE_USERS", "var/console/users.json"),
        help="users file (default var/console/users.json; env SHOREWATCH_CONSOLE_USERS); "
        "see `shorewatch users`",
    )
    p.add_argument("--evidence-dir", default=None, help="evidence store (default: setting)")
    p.add_argument(
        "--archive",
        default=env.get("SHOREWATCH_ARCHIVE", "var/archive"),
        help="history archive for the History tab (default var/archive; env SHOREWATCH_ARCHIVE)",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="demo mode: no login, 127.0.0.1 only, every visitor is the supervisor 'demo'",
    )
    p.add_argument(
        "--keep-running",
        action="store_true",
        help="serve even when the broker does not answer at start (it shows 'disconnected' "
        "and catches up when the broker comes); default: exit with an error",
    )
    p.add_argument("--run-for-s", type=float, default=None, help="stop after this many s")
    p.add_argument(
        "--notify-severity",
        type=int,
        default=60,
        help="new alerts at or above this severity (0-100) flash and ring (default 60)",
    )
    p.add_argument(
        "--escalate-severity",
        type=int,
        default=70,
        help="unacknowledged alerts at or above this severity escalate (default 70)",
    )
    p.add_argument(
        "--escalate-after-s",
        type=float,
        default=120.0,
        help="... after this many seconds unacknowledged (default 120)",
    )
    p.add_argument(
        "--coverage-range-m",
        type=float,
        default=5000.0,
        help="how far a working camera is taken to see the shore, m (default 5000)",
    )
    p.add_argument(
        "--tls-proxy",
        action="store_true",
        help="served behind a TLS-terminating proxy: session cookies are marked Secure",
    )
    p.set_defaults(func=lazy("pipeline.console.run", "cmd_console"))

    u = sub.add_parser("users", help="console users (Argon2-hashed passwords, roles)")
    u.add_argument(
        "--file",
        default=os.environ.get("SHOREWATCH_CONSOLE_USERS", "var/console/users.json"),
        help="users file (default var/console/users.json; env SHOREWATCH_CONSOLE_USERS)",
    )
    us = u.add_subparsers(dest="users_command", required=True, metavar="SUBCOMMAND")
    a = us.add_parser("add", help="add a user (asks for the password)")
    a.add_argument("name")
    a.add_argument("--role", choices=("viewer", "operator", "supervisor"), default="operator")
    a.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin (scripts)"
    )
    a.set_defaults(func=lazy("pipeline.console.run", "cmd_users"))
    pw = us.add_parser("passwd", help="set a user's password (and role)")
    pw.add_argument("name")
    pw.add_argument("--role", choices=("viewer", "operator", "supervisor"), default=None)
    pw.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    pw.set_defaults(func=lazy("pipeline.console.run", "cmd_users"))
    r = us.add_parser("remove", help="remove a user")
    r.add_argument("name")
    r.set_defaults(func=lazy("pipeline.console.run", "cmd_users"))
    ls = us.add_parser("list", help="list users and roles")
    ls.set_defaults(func=lazy("pipeline.console.run", "cmd_users"))
