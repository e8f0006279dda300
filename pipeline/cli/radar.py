"""``shorewatch ingest radar`` (radar target tracks, NMEA 0183 TTM/TLL, to Kafka) and
``shorewatch radar simulate`` (a simulated night's radar targets)."""

from __future__ import annotations

import argparse

from pipeline.cli import command_group, lazy


def add_commands(sub: argparse._SubParsersAction) -> None:
    group = command_group(sub, "radar", "radar tooling")
    s = group.add_parser("simulate", help="radar.nmea for a night written by shorewatch simulate")
    s.add_argument("--night", required=True, help="the night's folder (with truth.json)")
    s.add_argument("--site", required=True, help="site folder with radars.yaml")
    s.add_argument("--seed", type=int, default=7, help="noise seed")
    s.set_defaults(func=lazy("pipeline.tools.simulate_radar", "cmd_simulate_radar"))
    e = group.add_parser(
        "eval", help="distance from the shore of the first alert on dark vessels, +- radar"
    )
    e.add_argument("--site", default="sites/haikou", help="site folder with radars.yaml")
    e.add_argument("--seeds", type=int, nargs="+", default=[3], help="simulated nights")
    e.add_argument("--duration-s", type=int, default=7200, help="length of each night, s")
    e.add_argument("--start", default="2026-03-08T02:00:00+08:00", help="start of each night")
    e.add_argument("--json", action="store_true", help="one JSON object")
    e.set_defaults(func=lazy("pipeline.tools.eval_radar", "cmd_eval_radar"))


def add_ingest_radar(ingest: argparse._SubParsersAction) -> None:
    """``ingest radar``."""
    i = ingest.add_parser(
        "radar",
        help="read radar TTM/TLL target tracks and publish them to shorewatch.radar.target.v1",
    )
    i.add_argument("--site", required=True, help="site folder with radars.yaml")
    note = " (RADAR= names the site radar; else the sender address picks it)"
    i.add_argument(
        "--tcp", action="append", default=[], metavar="[RADAR=]HOST:PORT",
        help="connect to a radar's NMEA output (repeatable)" + note,
    )  # fmt: skip
    i.add_argument(
        "--listen-tcp", action="append", default=[], metavar="[RADAR=]PORT",
        help="accept radars pushing NMEA (repeatable)" + note,
    )  # fmt: skip
    i.add_argument(
        "--udp", action="append", default=[], metavar="[RADAR=]PORT",
        help="listen for NMEA datagrams (repeatable)" + note,
    )  # fmt: skip
    i.add_argument(
        "--file", action="append", default=[], metavar="[RADAR=]FILE",
        help="read a recorded file, gzip file or - (repeatable)",
    )  # fmt: skip
    i.add_argument(
        "--asterix-udp", action="append", default=[], type=int, metavar="PORT",
        help="listen for ASTERIX CAT 010 datagrams (repeatable; SAC/SIC picks the radar)",
    )  # fmt: skip
    i.add_argument(
        "--asterix-file", action="append", default=[], metavar="FILE",
        help="read length-framed ASTERIX datagrams (4-byte big-endian length, then the bytes)",
    )  # fmt: skip
    i.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    i.add_argument("--batch-lines", type=int, default=100, help="at most this many lines per batch")
    i.add_argument("--batch-ms", type=int, default=50, help="at most this many ms per batch")
    i.add_argument("--speed", default="max", help=argparse.SUPPRESS)
    i.add_argument(
        "--stdout", action="store_true", help="print the records as JSON lines instead (no Kafka)"
    )
    i.set_defaults(func=lazy("connectors.radar", "run_ingest"))
