"""``shorewatch site``."""

from __future__ import annotations

from pipeline.cli import lazy


def add_commands(sub) -> None:
    """Add ``site check`` to the ``shorewatch`` command line."""
    p = sub.add_parser("site", help="site configuration")
    ssub = p.add_subparsers(dest="site_command", required=True, metavar="SUBCOMMAND")
    c = ssub.add_parser("check", help="validate a site folder and print every problem")
    c.add_argument("dir", help="site folder (holding site.yaml)")
    c.add_argument(
        "--no-env", action="store_true", help="do not require the cameras' credential variables"
    )
    c.set_defaults(func=lazy("pipeline.radars", "cmd_check"))
