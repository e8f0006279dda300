"""``shorewatch archive`` and ``shorewatch history …``: argparse wiring only."""

from __future__ import annotations

import argparse
import os

from pipeline.cli import lazy

DEFAULT_ROOT = os.environ.get("SHOREWATCH_ARCHIVE", "var/archive")
_cmd_archive = lazy("pipeline.history.archiver", "cmd_archive")
_cmd_history = lazy("pipeline.history.report", "run")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """``shorewatch archive`` and the ``shorewatch history`` group."""
    p = sub.add_parser(
        "archive",
        help="archive positions, tracks, camera detections and alerts to Parquet",
        description="A Kafka consumer group of its own writing Hive-partitioned Parquet "
        "(ROOT/topic=…/date=…/hour=…); restarts resume from the archive's offset logs.",
    )
    p.add_argument("--root", default=DEFAULT_ROOT, help="archive directory (default %(default)s)")
    p.add_argument("--topic", action="append", help="topic to archive (repeatable; default: all)")
    p.add_argument("--group", default="shorewatch-archive", help="consumer group id")
    p.add_argument("--max-rows", type=int, default=1_000_000, help="rows buffered per partition")
    p.add_argument("--max-mb", type=float, default=256.0, help="MiB buffered per partition")
    p.add_argument("--max-age-s", type=float, default=300.0, help="seconds a buffer may wait")
    p.add_argument("--retention-days", type=float, default=None, help="delete older dates")
    p.add_argument("--retry-s", type=float, default=5.0, help="retry period on a full disk, s")
    p.add_argument("--metrics-file", default=None, help="Prometheus text file of the metrics")
    p.set_defaults(func=_cmd_archive)
    ps = p.add_subparsers(dest="archive_what", required=False, metavar="WHAT")
    c = ps.add_parser(
        "compact",
        help="compact closed days into one sorted file each (faster queries)",
        description="Merge each closed day's hourly files of a table into one file "
        "(ROOT/topic=…/date=…/hour=all/), sorted for row-group pruning; atomic, idempotent, "
        "every row (and its Kafka offset) kept. Safe beside a running archiver.",
    )
    c.add_argument("--root", default=DEFAULT_ROOT, help="archive directory (default %(default)s)")
    c.add_argument("--topic", action="append", help="table or topic (repeatable; default: all)")
    c.add_argument("--min-age-h", type=float, default=26.0,
                   help="compact a date only this many hours after it ended (default 26)")  # fmt: skip
    c.add_argument("--row-group-rows", type=int, default=16_384, help="rows per row group")
    c.add_argument("--dry-run", action="store_true", help="say what would be compacted")
    c.add_argument("--rewrite", action="store_true",
                   help="rewrite days already in one file (after a change of row groups or order)")  # fmt: skip
    c.add_argument("--json", action="store_true", help="one JSON document on stdout")
    c.set_defaults(func=lazy("pipeline.history.compact", "cmd_compact"))

    h = sub.add_parser("history", help="query the archive (DuckDB)")
    hs = h.add_subparsers(dest="history_what", required=True, metavar="WHAT")

    def common(q: argparse.ArgumentParser, times: bool = True) -> None:
        q.add_argument("--root", default=DEFAULT_ROOT, help="archive directory")
        q.add_argument("--json", action="store_true", help="one JSON document on stdout")
        if times:
            q.add_argument("--from", dest="from_", metavar="T", help="start (ISO 8601 or ms)")
            q.add_argument("--to", metavar="T", help="end, exclusive (ISO 8601 or ms)")

    q = hs.add_parser("near", help="vessels and camera targets near a point")
    q.add_argument("point", metavar="LON,LAT")
    q.add_argument("--radius-m", type=float, default=500.0, help="radius, m")
    q.add_argument("--hours", default=None, help="time of day, e.g. 03:00-05:00 (may wrap)")
    q.add_argument("--utc-offset", default="+00:00", help="local time for --hours, e.g. +08:00")
    q.add_argument("--nights", type=int, default=None, help="the N days before --to")
    common(q)
    q.set_defaults(func=_cmd_history, history_cmd="near")

    q = hs.add_parser("track", help="a vessel's archived positions")
    q.add_argument("mmsi", type=int)
    q.add_argument("--geojson", metavar="FILE", help="write a GeoJSON FeatureCollection")
    q.add_argument("--csv", metavar="FILE", help="write CSV")
    common(q)
    q.set_defaults(func=_cmd_history, history_cmd="track")

    q = hs.add_parser("sql", help="any SQL; tables are views named like ais_position_v1")
    q.add_argument("text", metavar="SQL")
    common(q, times=False)
    q.set_defaults(func=_cmd_history, history_cmd="sql")

    q = hs.add_parser("landing-sites", help="places used for stops on several nights")
    q.add_argument("--site", required=True, help="site folder (coast and authorised zones)")
    q.add_argument("--days", type=float, default=30.0, help="window length, days before --to")
    q.add_argument("--min-nights", type=int, default=3, help="distinct nights for a finding")
    q.add_argument("--publish", action="store_true", help="send new findings as alerts")
    q.add_argument("--every-h", type=float, default=None, help="run again every H hours")
    common(q)
    q.set_defaults(func=_cmd_history, history_cmd="landing-sites")
