"""The archive's tables and their Hive-style layout.

::

    ROOT/topic=<table>/date=YYYY-MM-DD/hour=HH/part-<partition>-<first>-<last>.parquet
    ROOT/_offsets/topic=<table>/partition=<p>.json

``<table>`` is the topic name without the ``shorewatch.`` prefix (``ais.position.v1``);
``date`` and ``hour`` are the UTC date and hour of each row's event time (``t_ms``).
``<first>`` and ``<last>`` are the Kafka offsets of the write (the segment) the file
belongs to, zero-padded to 20 digits. Every file also names them in its key-value
metadata (``shorewatch.topic``, ``kafka.partition``, ``kafka.first_offset``,
``kafka.last_offset``). Every row carries ``kafka_partition`` and ``kafka_offset``.

Files whose name starts with ``.`` or ``_`` are not part of the data (Spark, Trino and
DuckDB's Hive readers skip them as well): temporary files being written are
``.part-….parquet.tmp``.

Tables with nested records (tracks, camera frames, alerts and any other topic) keep the
whole record as JSON text in ``record``, beside flat columns for queries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from pipeline import topics

__all__ = [
    "HOUR_MS",
    "Table",
    "TABLES",
    "file_name",
    "parse_file_name",
    "table_for_topic",
    "table_name",
]

HOUR_MS = 3_600_000

KAFKA_FIELDS = [
    pa.field("kafka_partition", pa.int32(), nullable=False),
    pa.field("kafka_offset", pa.int64(), nullable=False),
]

_FILE_RE = re.compile(r"^part-(\d+)-(\d{20})-(\d{20})\.parquet$")


def table_name(topic: str) -> str:
    """``shorewatch.ais.position.v1`` → ``ais.position.v1`` (the ``topic=`` directory value).

    A topic whose name ends with a known table's name after a dot (``site2.ais.position.v1``)
    is archived as that table."""
    name = topic.removeprefix("shorewatch.")
    for known in _KNOWN:
        if name.endswith("." + known):
            return known
    return name


def file_name(partition: int, first_offset: int, last_offset: int) -> str:
    """The data file name of one segment of a Kafka partition."""
    return f"part-{partition:03d}-{first_offset:020d}-{last_offset:020d}.parquet"


def parse_file_name(name: str) -> tuple[int, int, int] | None:
    """(partition, first offset, last offset) of a data file name, ``None`` if not one."""
    m = _FILE_RE.match(name)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def bucket_dir(root: Path, table: str, date: str, hour: int) -> Path:
    return root / f"topic={table}" / f"date={date}" / f"hour={hour:02d}"


def date_hour(t_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UTC day number (days since epoch) and hour of each event time (ms UTC)."""
    t = np.asarray(t_ms, dtype=np.int64)
    return np.floor_divide(t, 86_400_000), np.floor_divide(t, HOUR_MS) % 24


def day_text(day: int) -> str:
    """Days since the Unix epoch → ``YYYY-MM-DD``."""
    return str(np.datetime64(int(day), "D"))


# --------------------------------------------------------------------------- tables
@dataclass(frozen=True)
class Table:
    """How one topic's records become rows.

    :param flat: columns read straight from each record's JSON (pyarrow's JSON reader,
        fields not named here are ignored); must contain ``t_ms`` as int64 unless ``rows``
        is given
    :param rows: for nested records, a function of the decoded JSON values returning the
        columns (a dict of lists, including ``t_ms``); ``None`` uses ``flat``
    :param keep_record: add the whole record as JSON text (``record``)
    :param sort_by: column the rows of each file are sorted by (row-group statistics on
        it then prune queries), ``None`` keeps offset order
    """

    name: str
    flat: pa.Schema
    rows: Callable[[Sequence[bytes]], dict[str, list[Any]]] | None = None
    keep_record: bool = True
    sort_by: str | None = None
    schema: pa.Schema = field(init=False)

    def __post_init__(self) -> None:
        fields = list(self.flat) + list(KAFKA_FIELDS)
        if self.keep_record:
            fields.append(pa.field("record", pa.string()))
        object.__setattr__(self, "schema", pa.schema(fields))


POSITION = pa.schema(
    [
        ("mmsi", pa.int64()),
        ("t_ms", pa.int64()),
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        ("sog_kn", pa.float64()),
        ("cog_deg", pa.float64()),
        ("heading_deg", pa.int16()),
        ("nav_status", pa.int8()),
        ("msg_type", pa.int8()),
        ("accuracy", pa.bool_()),
        ("source", pa.string()),
        ("rx_t_ms", pa.int64()),
    ]
)
STATIC = pa.schema(
    [
        ("mmsi", pa.int64()),
        ("msg_type", pa.int8()),
        ("t_ms", pa.int64()),
        ("source", pa.string()),
        ("name", pa.string()),
        ("call_sign", pa.string()),
        ("imo", pa.int64()),
        ("ship_type", pa.int16()),
        ("to_bow_m", pa.int16()),
        ("to_stern_m", pa.int16()),
        ("to_port_m", pa.int16()),
        ("to_starboard_m", pa.int16()),
        ("destination", pa.string()),
        ("draught_m", pa.float64()),
    ]
)
TRACK = pa.schema(
    [
        ("mmsi", pa.int64()),
        ("t_ms", pa.int64()),
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        ("sog_kn", pa.float64()),
        ("cog_deg", pa.float64()),
        ("name", pa.string()),
        ("event", pa.string()),
        ("n_fixes", pa.int64()),
        ("stopped_since_t_ms", pa.int64()),
        ("flags", pa.list_(pa.string())),
    ]
)
FRAME = pa.schema(
    [
        ("camera_id", pa.string()),
        ("t_ms", pa.int64()),
        ("n_detections", pa.int32()),
        ("det_track_id", pa.list_(pa.int64())),
        ("det_lon", pa.list_(pa.float64())),
        ("det_lat", pa.list_(pa.float64())),
    ]
)
ALERT = pa.schema(
    [
        ("alert_id", pa.string()),
        ("event_id", pa.string()),
        ("kind", pa.string()),
        ("status", pa.string()),
        ("severity", pa.int16()),
        ("t_ms", pa.int64()),
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        ("mmsi", pa.int64()),
        ("vessel_track_id", pa.string()),
        ("dark", pa.bool_()),
        ("site", pa.string()),
        ("seq", pa.int64()),
    ]
)
GENERIC = pa.schema([("t_ms", pa.int64())])


class _Det(msgspec.Struct):
    track_id: int = -1
    lon: float | None = None
    lat: float | None = None


class _Frame(msgspec.Struct):
    camera_id: str = ""
    t_ms: int = 0
    detections: list[_Det] = msgspec.field(default_factory=list)


_frames_dec = msgspec.json.Decoder(_Frame)


def _frame_rows(values: Sequence[bytes]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {n: [] for n in FRAME.names}
    for v in values:
        fr = _frames_dec.decode(v)
        out["camera_id"].append(fr.camera_id)
        out["t_ms"].append(fr.t_ms)
        out["n_detections"].append(len(fr.detections))
        out["det_track_id"].append([d.track_id for d in fr.detections])
        out["det_lon"].append([d.lon for d in fr.detections])
        out["det_lat"].append([d.lat for d in fr.detections])
    return out


def iso_to_ms(text: str) -> int:
    """ISO 8601 UTC (``…Z``) → ms since epoch."""
    return int(np.datetime64(text.rstrip("Z").split("+")[0], "ms").astype(np.int64))


def _alert_rows(values: Sequence[bytes]) -> dict[str, list[Any]]:
    from schemas.records import Alert

    dec = msgspec.json.Decoder(Alert)
    out: dict[str, list[Any]] = {n: [] for n in ALERT.names}
    for v in values:
        a = dec.decode(v)
        d = a.data
        out["alert_id"].append(d.alert_id)
        out["event_id"].append(a.id)
        out["kind"].append(d.kind)
        out["status"].append(d.status)
        out["severity"].append(d.severity)
        out["t_ms"].append(iso_to_ms(a.time))
        out["lon"].append(d.position.lon)
        out["lat"].append(d.position.lat)
        out["mmsi"].append(d.vessel.mmsi)
        out["vessel_track_id"].append(d.vessel.track_id)
        out["dark"].append(d.vessel.dark)
        out["site"].append(d.site)
        out["seq"].append(d.seq)
    return out


_KNOWN = [
    n.removeprefix("shorewatch.")
    for n in (
        topics.AIS_POSITION.name,
        topics.AIS_STATIC.name,
        topics.TRACK.name,
        topics.CAMERA_DETECTION.name,
        topics.CAMERA_EVENT.name,
        topics.ALERT.name,
    )
]

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(table_name(topics.AIS_POSITION.name), POSITION, keep_record=False, sort_by="lon"),
        Table(table_name(topics.AIS_STATIC.name), STATIC, keep_record=False),
        Table(table_name(topics.TRACK.name), TRACK, sort_by="lon"),
        Table(table_name(topics.CAMERA_DETECTION.name), FRAME, rows=_frame_rows),
        Table(table_name(topics.CAMERA_EVENT.name), GENERIC),
        Table(table_name(topics.ALERT.name), ALERT, rows=_alert_rows),
    )
}

POSITIONS = table_name(topics.AIS_POSITION.name)
STATICS = table_name(topics.AIS_STATIC.name)
TRACKS = table_name(topics.TRACK.name)
FRAMES = table_name(topics.CAMERA_DETECTION.name)
ALERTS = table_name(topics.ALERT.name)


def default_topics() -> list[str]:
    """Topics archived by default: positions, statics, tracks, camera detections and
    events, alerts, and every registered topic whose name holds ``triage``."""
    names = [f"shorewatch.{t}" for t in TABLES]
    names += [t.name for t in topics.ALL if "triage" in t.name and t.name not in names]
    return names


def table_for_topic(topic: str) -> Table:
    """The table of a topic; topics without a table of their own get the generic one
    (``t_ms`` when the record has it, else the Kafka timestamp, and the record)."""
    name = table_name(topic)
    return TABLES.get(name) or Table(name, GENERIC)
