"""The ``shorewatch`` command line.

One module per command group (``pipeline/cli/<group>.py``) defines
``add_commands(subparsers)``, adding its sub-parsers with ``set_defaults(func=...)``;
``func(args)`` returns the exit code. The group modules hold argparse wiring only: each
command's implementation is imported when it runs (:func:`lazy`), and :func:`build_parser`
imports only the group named on the command line, so ``shorewatch worker`` loads the
worker and nothing of the evaluation, benchmark or camera tooling.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pipeline.errors import ShorewatchError

#: command (first word) -> the module that defines it; the only list of them
COMMANDS: dict[str, str] = {
    "kafka": "pipeline.cli.kafka",
    "topics": "pipeline.cli.topics",
    "schemas": "pipeline.cli.schemas",
    "site": "pipeline.cli.site",
    "worker": "pipeline.cli.worker",
    "ingest": "pipeline.cli.ingest",
    "cameras": "pipeline.cli.cameras",
    "decode": "pipeline.cli.decode",
    "replay": "pipeline.cli.replay",
    "simulate": "pipeline.cli.simulate",
    "eval": "pipeline.cli.eval",
    "bench": "pipeline.cli.bench",
    "publish": "pipeline.cli.publish",
    "alerts": "pipeline.cli.alerts",
    "demo": "pipeline.cli.demo",
    "chaos": "pipeline.cli.chaos",
    "registry": "pipeline.cli.registry",
    "watchlist": "pipeline.cli.registry",
    "archive": "pipeline.cli.history",
    "history": "pipeline.cli.history",
    "console": "pipeline.cli.console",
    "users": "pipeline.cli.console",
    "cue": "pipeline.cli.cue",
    "radar": "pipeline.cli.radar",
}


def lazy(module: str, function: str) -> Callable[[argparse.Namespace], int]:
    """A command function that imports ``module`` only when the command runs."""

    def run(args: argparse.Namespace) -> int:
        return int(getattr(importlib.import_module(module), function)(args) or 0)

    run.__qualname__ = f"lazy({module}:{function})"
    return run


def command_group(
    sub: argparse._SubParsersAction, name: str, help_text: str
) -> argparse._SubParsersAction:
    """The sub-parsers of a command group (``eval``, ``bench``, ``ingest``): created on the
    first call, found in ``sub.choices`` on later ones."""
    parser = sub.choices.get(name)
    if parser is None:
        parser = sub.add_parser(name, help=help_text)
        parser.set_defaults(func=lambda _args: parser.print_help() or 2)
        return parser.add_subparsers(dest=f"{name}_what", required=False, metavar="WHAT")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest=f"{name}_what", required=False, metavar="WHAT")


def _first_command(argv: Sequence[str]) -> str | None:
    """The command word of ``argv`` (the first argument that is not an option)."""
    for a in argv:
        if not a.startswith("-"):
            return a
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the named command's group is loaded."""
    parser = argparse.ArgumentParser(
        prog="shorewatch",
        description="Coastal sensor fusion: AIS and cameras over Kafka, unusual-landing alerts.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    first = _first_command(argv) if argv is not None else None
    modules = [COMMANDS[first]] if first in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in modules:
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
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
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
