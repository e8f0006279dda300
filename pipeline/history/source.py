"""Archived inputs of the engine, for ``shorewatch replay --from-archive``.

The archive holds what the live pipeline's engine read: decoded positions
(``ais.position``), static reports (``ais.static``) and camera frames
(``camera.detection``). :func:`read_inputs` returns them as the records replay takes, each
list in event-time order (ties in Kafka order: partition, then offset, which for one MMSI or
one camera is the order the pipeline produced them in).
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from pipeline.history.layout import FRAMES, POSITIONS, STATICS
from pipeline.history.query import Archive, check_range
from schemas.records import AisPosition, AisStatic, CameraFrame

__all__ = ["ArchivedInputs", "iter_inputs", "read_inputs"]

_frame_dec = msgspec.json.Decoder(CameraFrame)


@dataclass
class ArchivedInputs:
    positions: list[AisPosition] = field(default_factory=list)
    statics: list[AisStatic] = field(default_factory=list)
    frames: list[CameraFrame] = field(default_factory=list)
    skipped_files: list[tuple[str, str]] = field(default_factory=list)


def _none_int(v: float | int | None) -> int | None:
    return None if v is None else int(v)


def read_inputs(
    root: str | os.PathLike[str],
    from_ms: int,
    to_ms: int,
    bbox: tuple[float, float, float, float] | None = None,
) -> ArchivedInputs:
    """Positions, statics and camera frames of [from, to) from the archive at ``root``.

    :param bbox: ``(lon_min, lat_min, lon_max, lat_max)``: only positions inside it (statics
        and frames are all kept: statics carry no position, frames belong to cameras)
    :raises QueryError: inverted range, no archive
    """
    check_range(from_ms, to_ms)
    a = Archive(Path(root))
    out = ArchivedInputs()
    t = f"t_ms >= {int(from_ms)} AND t_ms < {int(to_ms)}"
    order = "ORDER BY t_ms, kafka_partition, kafka_offset"
    if a.view("p", POSITIONS, from_ms, to_ms):
        where = t
        if bbox is not None:
            x0, y0, x1, y1 = bbox
            where += f" AND lon BETWEEN {x0} AND {x1} AND lat BETWEEN {y0} AND {y1}"
        rows = a.query(
            "SELECT mmsi, msg_type, t_ms, lon, lat, sog_kn, cog_deg, heading_deg, nav_status, "
            f"accuracy, source, rx_t_ms FROM p WHERE {where} {order}"
        ).to_pylist()
        out.positions = [
            AisPosition(
                mmsi=r["mmsi"],
                msg_type=r["msg_type"],
                t_ms=r["t_ms"],
                lon=r["lon"],
                lat=r["lat"],
                sog_kn=r["sog_kn"],
                cog_deg=r["cog_deg"],
                heading_deg=_none_int(r["heading_deg"]),
                nav_status=_none_int(r["nav_status"]),
                accuracy=bool(r["accuracy"]),
                source=r["source"],
                rx_t_ms=r["rx_t_ms"],
            )  # fmt: skip
            for r in rows
        ]
    if a.view("s", STATICS, from_ms, to_ms):
        cols = list(AisStatic.__struct_fields__)
        rows = a.query(f"SELECT {', '.join(cols)} FROM s WHERE {t} {order}").to_pylist()
        out.statics = [AisStatic(**r) for r in rows]
    if a.view("f", FRAMES, from_ms, to_ms):
        recs = a.query(f"SELECT record FROM f WHERE {t} {order}").column("record").to_pylist()
        out.frames = [_frame_dec.decode(r) for r in recs]
    out.skipped_files = list(a.skipped)
    return out


def iter_inputs(inputs: ArchivedInputs) -> Iterator[Any]:
    """The inputs merged in event-time order (positions, then statics, then frames on ties)."""
    return (
        rec
        for _, _, _, rec in heapq.merge(
            ((p.t_ms, 0, i, p) for i, p in enumerate(inputs.positions)),
            ((s.t_ms, 1, i, s) for i, s in enumerate(inputs.statics)),
            ((f.t_ms, 2, i, f) for i, f in enumerate(inputs.frames)),
        )
    )
