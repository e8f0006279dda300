"""DuckDB over the archive: ``shorewatch history near | track | sql``.

Files are chosen by their ``date=`` and ``hour=`` directories (only those the time range
touches are opened) and checked before a query: a file whose Parquet footer cannot be read
(truncated, not Parquet) is skipped with an error naming it, and so is a file DuckDB fails
on while reading; the query goes on over the rest. Skipped files are in
:attr:`Archive.skipped` and reported by the CLI.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import QueryError
from pipeline.history.compact import COMPACT_HOUR, reader_files
from pipeline.history.layout import ALERTS, FRAMES, POSITIONS, TABLES, day_text

__all__ = ["Archive", "Hours", "near", "parse_hours", "track", "check_point", "check_range"]

log = logging.getLogger(__name__)

EARTH_RADIUS_M = 6_371_008.8
DAY_MS = 86_400_000


def check_range(from_ms: int, to_ms: int) -> None:
    """:raises QueryError: an inverted or empty time range"""
    if to_ms <= from_ms:
        raise QueryError(
            f"time range is inverted or empty: --from {_iso(from_ms)} is not before --to {_iso(to_ms)}"
        )


def check_point(lon: float, lat: float) -> None:
    """:raises QueryError: a coordinate outside WGS84 (lon in [-180, 180], lat in [-90, 90])"""
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise QueryError(f"invalid longitude {lon!r}: must be within [-180, 180] degrees")
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise QueryError(f"invalid latitude {lat!r}: must be within [-90, 90] degrees")


def _iso(t_ms: int) -> str:
    return str(np.datetime64(int(t_ms), "ms")) + "Z"


@dataclass(frozen=True)
class Hours:
    """A time-of-day window (``03:00-05:00``; may wrap midnight), in a fixed UTC offset.

    :param start_ms: ms after local midnight
    :param end_ms: ms after local midnight (exclusive); less than ``start_ms`` wraps
    :param utc_offset_ms: local time minus UTC, ms
    """

    start_ms: int
    end_ms: int
    utc_offset_ms: int = 0

    def sql(self, col: str = "t_ms") -> str:
        tod = f"((({col} + {self.utc_offset_ms}) % {DAY_MS}) + {DAY_MS}) % {DAY_MS}"
        if self.start_ms <= self.end_ms:
            return f"({tod} >= {self.start_ms} AND {tod} < {self.end_ms})"
        return f"({tod} >= {self.start_ms} OR {tod} < {self.end_ms})"

    def night_sql(self, col: str = "t_ms") -> str:
        """The local date the window started on (a window past midnight counts for the
        evening before)."""
        shift = self.utc_offset_ms - (self.start_ms if self.start_ms > self.end_ms else 0)
        return f"CAST(to_timestamp(({col} + {shift}) / 1000.0) AS DATE)"


def parse_hours(text: str, utc_offset: str = "+00:00") -> Hours:
    """``HH:MM-HH:MM`` and an offset ``±HH:MM`` → :class:`Hours`.

    :raises QueryError: malformed text
    """
    m = re.fullmatch(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})", text.strip())
    o = re.fullmatch(r"([+-])(\d{1,2}):?(\d{2})", utc_offset.strip())
    if not m or not o:
        raise QueryError(
            f"--hours wants HH:MM-HH:MM and --utc-offset ±HH:MM, got {text!r}, {utc_offset!r}"
        )
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59:
        raise QueryError(f"--hours {text!r}: not a time of day")
    off = (int(o.group(2)) * 60 + int(o.group(3))) * 60_000 * (-1 if o.group(1) == "-" else 1)
    return Hours((h1 * 60 + m1) * 60_000, (h2 * 60 + m2) * 60_000, off)


@dataclass
class Archive:
    """The archive at ``root``, opened for queries.

    :param threads: DuckDB threads (``None``: DuckDB's default)
    """

    root: Path
    threads: int | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise QueryError(f"no archive at {self.root}")
        import duckdb

        self.con = duckdb.connect()
        if self.threads:
            self.con.execute(f"SET threads = {int(self.threads)}")

    # ---------------------------------------------------------------- files
    def files(self, table: str, from_ms: int | None = None, to_ms: int | None = None) -> list[str]:
        """The readable data files of ``table`` whose date and hour overlap [from, to)."""
        tdir = self.root / f"topic={table}"
        if not tdir.is_dir():
            return []
        lo_d = day_text(from_ms // DAY_MS) if from_ms is not None else ""
        hi_d = day_text((to_ms - 1) // DAY_MS) if to_ms is not None else "9999"
        out: list[str] = []
        for ddir in sorted(tdir.glob("date=*")):
            d = ddir.name[5:]
            if not (lo_d <= d <= hi_d):
                continue
            day_ms = int(np.datetime64(d, "ms").astype(np.int64))
            day: list[str] = []
            for hdir in sorted(ddir.glob("hour=*")):
                if hdir.name == f"hour={COMPACT_HOUR}":  # a compacted day: the whole date
                    h0, span = day_ms, DAY_MS
                else:
                    h0, span = day_ms + int(hdir.name[5:]) * 3_600_000, 3_600_000
                if from_ms is not None and h0 + span <= from_ms:
                    continue
                if to_ms is not None and h0 >= to_ms:
                    continue
                day += [
                    str(p) for p in sorted(hdir.iterdir())
                    if p.suffix == ".parquet" and not p.name.startswith((".", "_"))
                ]  # fmt: skip
            out += reader_files(self.root, table, d, day)
        return [p for p in out if self._readable(p)]

    def _readable(self, path: str) -> bool:
        """A cheap check of a file's frame: ``PAR1`` at both ends and a footer length that
        fits (a truncated or foreign file fails it). Damage inside is found while reading
        (:meth:`query`)."""
        try:
            with open(path, "rb") as f:
                head = f.read(4)
                size = f.seek(0, os.SEEK_END)
                if size < 12:
                    raise ValueError(f"{size} bytes: too short for Parquet")
                f.seek(size - 8)
                tail = f.read(8)
        except (OSError, ValueError) as exc:
            self._skip(path, str(exc))
            return False
        footer = int.from_bytes(tail[:4], "little")
        if head != b"PAR1" or tail[4:] != b"PAR1":
            self._skip(path, "no Parquet magic bytes at both ends (truncated or not Parquet)")
            return False
        if not 0 < footer <= size - 12:
            self._skip(path, f"footer length {footer} does not fit a file of {size} bytes")
            return False
        return True

    def _skip(self, path: str, reason: str) -> None:
        self.skipped.append((path, reason))
        log.error("skipping unreadable Parquet file %s: %s", path, reason)

    def view(self, name: str, table: str, from_ms: int | None, to_ms: int | None) -> int:
        """Create view ``name`` over the table's files in range; returns how many files."""
        files = self.files(table, from_ms, to_ms)
        self._views = getattr(self, "_views", {})
        self._views[name] = (table, files)
        self._ranges = getattr(self, "_ranges", {})
        self._ranges[name] = (from_ms, to_ms)
        self._make_view(name, table, files)
        return len(files)

    def _relist(self) -> None:
        """List every view's files again (a compaction replaced some while a query ran)."""
        for name, (table, _) in list(getattr(self, "_views", {}).items()):
            self.view(name, table, *self._ranges[name])

    def _make_view(self, name: str, table: str, files: list[str]) -> None:
        if files:
            lst = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            # Columns are matched by name. union_by_name (files of different schema
            # versions) makes DuckDB read every file's schema before it starts, which
            # doubles a query over many files: it is used once a query finds a mismatch.
            union = ", union_by_name = true" if getattr(self, "_union", False) else ""
            self.con.execute(
                f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet([{lst}], "
                f"hive_partitioning = true{union})"
            )
        else:  # an empty relation with the table's columns
            schema = TABLES[table].schema if table in TABLES else pa.schema([("t_ms", pa.int64())])
            self.con.execute(f"DROP VIEW IF EXISTS {name}")
            self.con.register(name, schema.empty_table())

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run ``sql`` over the views; a file DuckDB cannot read is skipped and the query
        run again without it.

        :raises QueryError: the SQL is invalid
        """
        import duckdb

        for _ in range(64):
            try:
                return self.con.sql(sql, params=params).to_arrow_table()
            except (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException) as exc:
                raise QueryError(f"query failed: {exc}") from exc
            except duckdb.Error as exc:
                if "schema mismatch" in str(exc) and not getattr(self, "_union", False):
                    self._union = True  # files of several schema versions: union them
                    self._relist()
                    continue
                if self._vanished(str(exc)):
                    self._relist()
                    continue
                bad = self._culprit(str(exc))
                if bad is None:
                    raise QueryError(f"query failed: {exc}") from exc
                self._skip(bad, str(exc).splitlines()[0])
        raise QueryError("too many unreadable files")

    def _vanished(self, message: str) -> bool:
        """Whether the error names a file of the views that no longer exists (replaced by
        a compaction or deleted by retention after the views were made)."""
        views = getattr(self, "_views", {})
        return any(f in message and not os.path.exists(f) for _, fs in views.values() for f in fs)

    def _culprit(self, message: str) -> str | None:
        """The file an error comes from: named in the message, else the first file of the
        views that cannot be read in full. It is taken out of its view."""
        views = getattr(self, "_views", {})
        named = [(n, f) for n, (_, files) in views.items() for f in files if f in message]
        if not named:
            for n, (_, files) in views.items():
                for f in files:
                    try:
                        pq.read_table(f)
                    except (OSError, pa.ArrowException):
                        named.append((n, f))
                        break
                if named:
                    break
        if not named:
            return None
        name, f = named[0]
        table, files = views[name]
        files.remove(f)
        self._make_view(name, table, files)
        return f


def _bbox(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
    return lon - dlon, lon + dlon, lat - dlat, lat + dlat


def _dist_sql(lon: float, lat: float) -> str:
    """Haversine distance in metres from (lon, lat) to the columns ``lon``, ``lat``."""
    return (
        f"2 * {EARTH_RADIUS_M} * asin(sqrt(pow(sin(radians(lat - {lat}) / 2), 2) + "
        f"cos(radians({lat})) * cos(radians(lat)) * pow(sin(radians(lon - {lon}) / 2), 2)))"
    )


def near(
    archive: Archive,
    lon: float,
    lat: float,
    radius_m: float,
    from_ms: int,
    to_ms: int,
    hours: Hours | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Who was within ``radius_m`` of (lon, lat) in [from, to) (and inside ``hours``).

    :returns: ``vessels`` (AIS: one row per MMSI with first and last time, fixes, nights,
        closest approach in metres and when), ``camera_targets`` (camera tracks with a
        geo-referenced position there, dark or not) and ``alerts`` raised there
    :raises QueryError: bad coordinate, radius or range
    """
    check_point(lon, lat)
    check_range(from_ms, to_ms)
    if not (math.isfinite(radius_m) and 0 < radius_m <= 100_000):
        raise QueryError(f"invalid radius {radius_m!r} m: must be in (0, 100000]")
    w, e, s, n = _bbox(lon, lat, radius_m)
    tod = hours.sql() if hours else "TRUE"
    night = hours.night_sql() if hours else "CAST(to_timestamp(t_ms / 1000.0) AS DATE)"
    where = (
        f"t_ms >= {int(from_ms)} AND t_ms < {int(to_ms)} AND lon BETWEEN {w} AND {e} "
        f"AND lat BETWEEN {s} AND {n} AND {tod}"
    )
    out: dict[str, list[dict[str, Any]]] = {"vessels": [], "camera_targets": [], "alerts": []}
    if archive.view("p", POSITIONS, from_ms, to_ms):
        out["vessels"] = archive.query(
            f"""
            WITH hits AS (SELECT mmsi, t_ms, lon, lat, sog_kn, {_dist_sql(lon, lat)} AS d_m,
                                 {night} AS night
                          FROM p WHERE {where})
            SELECT mmsi, min(t_ms) AS first_t_ms, max(t_ms) AS last_t_ms, count(*) AS fixes,
                   count(DISTINCT night) AS nights, min(d_m) AS closest_m,
                   arg_min(t_ms, d_m) AS closest_t_ms, arg_min(lon, d_m) AS closest_lon,
                   arg_min(lat, d_m) AS closest_lat, min(sog_kn) AS min_sog_kn
            FROM hits WHERE d_m <= {float(radius_m)}
            GROUP BY mmsi ORDER BY closest_m, mmsi
            """
        ).to_pylist()
    if archive.view("f", FRAMES, from_ms, to_ms):
        out["camera_targets"] = archive.query(
            f"""
            WITH dets AS (SELECT camera_id, t_ms, unnest(det_track_id) AS track_id,
                                 unnest(det_lon) AS lon, unnest(det_lat) AS lat
                          FROM f WHERE t_ms >= {int(from_ms)} AND t_ms < {int(to_ms)}
                                  AND n_detections > 0),
                 hits AS (SELECT *, {_dist_sql(lon, lat)} AS d_m, {night} AS night FROM dets
                          WHERE lon BETWEEN {w} AND {e} AND lat BETWEEN {s} AND {n} AND {tod})
            SELECT camera_id, track_id, min(t_ms) AS first_t_ms, max(t_ms) AS last_t_ms,
                   count(*) AS detections, count(DISTINCT night) AS nights,
                   min(d_m) AS closest_m, arg_min(t_ms, d_m) AS closest_t_ms,
                   arg_min(lon, d_m) AS closest_lon, arg_min(lat, d_m) AS closest_lat
            FROM hits WHERE d_m <= {float(radius_m)}
            GROUP BY camera_id, track_id ORDER BY closest_m, camera_id, track_id
            """
        ).to_pylist()
    if archive.view("a", ALERTS, from_ms, to_ms):
        out["alerts"] = archive.query(
            f"""
            SELECT alert_id, kind, max(severity) AS severity, min(t_ms) AS first_t_ms,
                   max(t_ms) AS last_t_ms, any_value(mmsi) AS mmsi,
                   any_value(vessel_track_id) AS track_id, bool_or(dark) AS dark,
                   min({_dist_sql(lon, lat)}) AS closest_m
            FROM a WHERE {where} AND {_dist_sql(lon, lat)} <= {float(radius_m)}
            GROUP BY alert_id, kind ORDER BY first_t_ms, alert_id
            """
        ).to_pylist()
    return out


def track(archive: Archive, mmsi: int, from_ms: int, to_ms: int) -> list[dict[str, Any]]:
    """Every archived position of ``mmsi`` in [from, to), in time order (one per time)."""
    check_range(from_ms, to_ms)
    if not archive.view("p", POSITIONS, from_ms, to_ms):
        return []
    return archive.query(
        f"""
        SELECT mmsi, t_ms, lon, lat, sog_kn, cog_deg, heading_deg, nav_status, source
        FROM p WHERE mmsi = {int(mmsi)} AND t_ms >= {int(from_ms)} AND t_ms < {int(to_ms)}
          AND lon IS NOT NULL AND lat IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY t_ms ORDER BY kafka_partition, kafka_offset) = 1
        ORDER BY t_ms
        """
    ).to_pylist()


def track_geojson(rows: list[dict[str, Any]], mmsi: int) -> dict[str, Any]:
    """A track as a GeoJSON FeatureCollection: one LineString and one Point per fix."""
    coords = [[r["lon"], r["lat"]] for r in rows]
    feats: list[dict[str, Any]] = []
    if len(coords) >= 2:
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": coords},
                "properties": {
                    "mmsi": mmsi,
                    "first_t_ms": rows[0]["t_ms"],
                    "last_t_ms": rows[-1]["t_ms"],
                },
            }
        )
    for r in rows:
        props = {k: v for k, v in r.items() if k not in ("lon", "lat")}
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
                "properties": props,
            }
        )
    return {"type": "FeatureCollection", "features": feats}


def sql(archive: Archive, text: str) -> pa.Table:
    """Run any SQL over views named after the tables, with dots as underscores
    (``ais_position_v1``, ``track_v1``, ``alert_v1``, ``camera_detection_v1``, …)."""
    for tdir in sorted(archive.root.glob("topic=*")):
        table = tdir.name[6:]
        archive.view(re.sub(r"\W", "_", table), table, None, None)
    return archive.query(text)


def env_threads() -> int | None:
    v = os.environ.get("SHOREWATCH_DUCKDB_THREADS")
    return int(v) if v else None


def parse_time_ms(text: str) -> int:
    """A time for ``--from`` / ``--to``: ms since epoch, or ISO 8601 (a date, or a time with
    or without zone; no zone = UTC).

    :raises QueryError: not a time
    """
    from datetime import UTC, datetime

    t = text.strip()
    if re.fullmatch(r"-?\d{6,}", t):
        return int(t)
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError as exc:
        raise QueryError(f"not a time (ISO 8601 or ms since epoch): {text!r}") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(round(dt.timestamp() * 1000))


def parse_point(text: str) -> tuple[float, float]:
    """``LON,LAT`` → (lon, lat), checked.

    :raises QueryError: not two numbers, or outside WGS84
    """
    parts = text.split(",")
    try:
        lon, lat = (float(p) for p in parts)
    except ValueError as exc:
        raise QueryError(f"a point is LON,LAT in degrees, got {text!r}") from exc
    check_point(lon, lat)
    return lon, lat
