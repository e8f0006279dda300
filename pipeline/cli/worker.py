"""``shorewatch worker``: a Faust worker."""

from __future__ import annotations

import argparse
import logging

import faust

from pipeline.settings import Settings


def _cmd_worker(args: argparse.Namespace) -> int:

    from pipeline.worker.app import create_app, tune_gc

    settings = Settings.from_env(args.settings)
    app = create_app(settings, site_dir=args.site, agents=args.agents.split(","))
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True)
    level = logging.getLevelName(args.loglevel.upper())

    @app.task
    async def _tune_process() -> None:
        # The worker's log setup leaves library loggers at DEBUG behind a WARNING
        # handler: every aiokafka debug call then builds a record for nothing.
        for name in ("", "aiokafka", "faust", "mode"):
            logging.getLogger(name).setLevel(level)
        tune_gc()

    worker.execute_from_commandline()
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="start a Faust worker (one member of the consumer group)")
    p.add_argument("--settings", help="settings file (YAML)")
    p.add_argument("--site", help="site folder (default: setting `site`)")
    p.add_argument(
        "--agents",
        default="decode,tracks,feed,area",
        help="comma-separated agents to run (default: all)",
    )
    p.add_argument("--loglevel", default="warning", help="worker log level")
    p.set_defaults(func=_cmd_worker)
