"""``shorewatch ingest``: the connectors that publish to Kafka."""

from __future__ import annotations

import argparse

from pipeline.cli import command_group, lazy
from pipeline.cli._ais_framing import add_framing_options
from pipeline.cli._detector import add_detector_args


def _add_ais(ingest: argparse._SubParsersAction) -> None:
    """``ingest ais``."""
    i = ingest.add_parser("ais", help="read AIS sources and publish raw batches to Kafka")
    i.add_argument(
        "--tcp",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="connect to a receiver/aggregator (repeatable)",
    )
    i.add_argument(
        "--listen-tcp",
        action="append",
        default=[],
        type=int,
        metavar="PORT",
        help="accept receivers pushing NMEA (repeatable)",
    )
    i.add_argument(
        "--udp",
        action="append",
        default=[],
        type=int,
        metavar="PORT",
        help="listen for NMEA datagrams (repeatable)",
    )
    i.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="FILE",
        help="replay a file, gzip file or - (repeatable)",
    )
    i.add_argument(
        "--speed", default="max", help="replay speed factor from the message timestamps, or 'max'"
    )
    i.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    i.add_argument(
        "--batch-lines", type=int, default=500, help="at most this many lines per record"
    )
    i.add_argument("--batch-ms", type=int, default=200, help="at most this many ms per record")
    i.add_argument(
        "--buffer-mb", type=float, default=64, help="most MiB held while the broker is away"
    )
    i.add_argument(
        "--stdout",
        action="store_true",
        help="print the batches as JSON instead of publishing (no Kafka)",
    )
    add_framing_options(i, strict=False)
    i.set_defaults(func=lazy("connectors.ais", "run_ingest"))


def _add_camera(group: argparse._SubParsersAction) -> None:
    """``ingest camera``: every camera of a site."""
    p = group.add_parser(
        "camera", help="every camera of a site -> camera detection, event and status topics"
    )
    p.add_argument("--site", required=True, help="site folder with cameras.yaml")
    add_detector_args(p)
    p.add_argument("--evidence-dir", default=None, help="write frame and crop JPEGs here")
    p.add_argument(
        "--camera",
        action="append",
        default=[],
        metavar="CAM_ID=URL_OR_FILE",
        help="replace a camera's rtsp_url, e.g. by a local video file (repeatable)",
    )
    p.add_argument("--stats-interval-s", type=float, default=30.0, help="log latency this often")
    p.add_argument(
        "--adaptive",
        action="store_true",
        help="adaptive analysis for cameras without an 'analysis' section (docs/camera-fleet.md)",
    )
    p.add_argument(
        "--read-hull-numbers",
        action="store_true",
        help="OCR the hull numbers (舷号) of boxes large enough to read (docs/registry.md)",
    )
    p.add_argument(
        "--registry-url",
        help="with --read-hull-numbers: the registry whose hull numbers' ports the reader "
        "also allows (default: setting registry_url; unreadable: built-in ports only)",
    )
    p.add_argument(
        "--duration-s",
        type=float,
        default=None,
        help="stop after this long (default: run until ^C)",
    )
    p.set_defaults(func=lazy("connectors.camera", "cmd_ingest"))


def add_commands(sub: argparse._SubParsersAction) -> None:
    group = command_group(sub, "ingest", "run a connector")
    _add_ais(group)
    _add_camera(group)
    from pipeline.cli.radar import add_ingest_radar

    add_ingest_radar(group)
