"""The ``shorewatch`` command line.

Each module that offers commands defines ``add_commands(subparsers)``, adding its
sub-parsers with ``set_defaults(func=...)``; ``func(args)`` returns the exit code.
The list below is the only place that names them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Any

from pipeline.errors import ShorewatchError

COMMAND_MODULES: tuple[str, ...] = (
    "pipeline.localkafka",
    "pipeline.admin",
    "pipeline.app",
    "connectors.alerts",
    "connectors.kafka",
    "pipeline.demo",
    "pipeline.bench_e2e",
    "pipeline.site",
    "pipeline.simulate",
    "pipeline.evaluate",
    "pipeline.eval_all",
    "pipeline.ais",
    "pipeline.vision",
    "pipeline.fusion_eval",
    "pipeline.replay",
    "connectors.onvif",
    "connectors.camera",
    "pipeline.chaos_cli",
)


def command_group(
    sub: argparse._SubParsersAction, name: str, help_text: str
) -> argparse._SubParsersAction:
    """The sub-parsers of a command group shared by several modules (``eval``, ``bench``):
    created by the first module that asks, found in ``sub.choices`` by the others."""
    parser = sub.choices.get(name)
    if parser is None:
        parser = sub.add_parser(name, help=help_text)
        parser.set_defaults(func=lambda _args: parser.print_help() or 2)
        return parser.add_subparsers(dest=f"{name}_what", required=False, metavar="WHAT")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest=f"{name}_what", required=False, metavar="WHAT")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shorewatch",
        description="Coastal sensor fusion: AIS and cameras over Kafka, unusual-landing alerts.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (not the stream of
    the moment the handler was made, which a caller that swaps streams may close)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[_StderrHandler()],
        force=True,  # onvif-zeep-async configures the root logger at INFO when imported
    )
    try:
        return int(args.func(args) or 0)
    except ShorewatchError as exc:
        print(f"shorewatch: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
