"""ASTERIX CAT 010 datagrams to radar target records.

:func:`decode_asterix` reads one UDP datagram (one or more ASTERIX data blocks, each
``CAT | LEN | records``) with ``libasterix``'s CAT 010 edition 1.1 definition
(:data:`CAT010`), maps each target report's data source (``I010/010`` SAC/SIC) to a radar
of the site (``sac``/``sic`` in ``radars.yaml``) and turns it into a
:class:`~schemas.records.RadarTarget` (``sentence`` ``CAT010``), geo-located, with its
uncertainty and event time, by the same functions as the NMEA path
(:mod:`pipeline.core.radar`).

Items read:

- ``I010/000`` message type: 1 (target report) becomes a record; 2-4 (start of update
  cycle, periodic and event-triggered status) are service messages, counted and skipped;
- ``I010/010`` SAC/SIC: which radar;
- ``I010/140`` time of day (1/128 s since UTC midnight), dated from the receive time as
  NMEA times are (:func:`pipeline.core.radar.event_time_ms`); absent: the receive time;
- position, the first present of ``I010/041`` (WGS84 latitude/longitude), ``I010/040``
  (polar: range ``RHO`` m and bearing ``TH`` degrees from north, from the radar) and
  ``I010/042`` (Cartesian ``X`` east, ``Y`` north of the radar, m);
- velocity, ``I010/200`` (ground speed NM/s and track angle) or ``I010/202`` (``VX``
  east, ``VY`` north, m/s), as knots and degrees true;
- ``I010/161`` track number: the target number;
- ``I010/170`` track status: ``TRE`` (last report) is ``lost``, ``CNF`` (in
  initialisation) ``acquiring``, else ``tracking``.

Everything else becomes a dead letter (stage ``asterix.decode``), never dropped silently:

- ``bad_asterix``: the datagram's data-block framing or a data block's records do not
  parse (the whole data block: records cannot be delimited past a bad one);
- ``unsupported_category``: a data block of a category other than 010;
- ``unknown_radar``: SAC/SIC of no radar in ``radars.yaml`` (or the item is absent);
- ``missing_field``: a target report without a track number or any position;
- ``bad_field``: a position out of its range;
- ``beyond_range``: farther than the radar's ``max_range_m``.

A record's dead letter keeps that record's bytes; a data block's keeps the data block's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import asterix.generated as gen
import numpy as np
from asterix.base import Bits, RawDatablock

from pipeline.core import radar as core
from pipeline.core.geo import bearing_deg
from pipeline.core.radar import RadarConfig
from pipeline.deadletter import Reason, dead_letter
from pipeline.engine.radar import located_target
from schemas.records import DeadLetter, RadarTarget

__all__ = ["CAT010", "STAGE", "AsterixResult", "decode_asterix", "radars_by_source"]

STAGE = "asterix.decode"

#: the CAT 010 definition read: edition 1.1 (the edition libasterix 0.36.3 ships)
CAT010 = gen.Cat_010_1_1

_MS_PER_KN = 1852.0 / 3600.0

#: what libasterix raises, rather than returns, on some malformed input
_PARSE_FAULTS = (ValueError, AssertionError, IndexError, RecursionError)


class _Reject(Exception):
    def __init__(self, reason: Reason, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class AsterixResult:
    """What one datagram gave: target records, dead letters and skipped service messages."""

    targets: list[RadarTarget] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    service_messages: int = 0


@dataclass(slots=True)
class _Row:
    raw: bytes
    radar: RadarConfig
    number: int
    tod_ms: int
    status: str
    lon: float = math.nan  # I010/041
    lat: float = math.nan
    bearing_deg: float = math.nan  # I010/040, I010/042
    range_m: float = math.nan
    speed_kn: float | None = None
    course_deg: float | None = None


def radars_by_source(radars: dict[str, RadarConfig]) -> dict[tuple[int, int], RadarConfig]:
    """The radars that have an ASTERIX data source, by ``(sac, sic)``."""
    return {(r.sac, r.sic): r for r in radars.values() if r.sac is not None and r.sic is not None}


def _sub(item: Any, name: str) -> Any:
    return item.variation.get_item(name).variation.content


def _uint(rec: Any, name: str, sub: str | None = None) -> int | None:
    item = rec.get_item(name)
    if item is None:
        return None
    return int((_sub(item, sub) if sub else item.variation.content).as_uint())


def _status(rec: Any) -> str:
    item = rec.get_item("170")
    if item is None:
        return "tracking"
    if _sub(item, "TRE").as_uint() == 1:
        return "lost"
    if _sub(item, "CNF").as_uint() == 1:
        return "acquiring"
    return "tracking"


def _row(rec: Any, raw: bytes, by_source: dict[tuple[int, int], RadarConfig]) -> _Row | None:
    """The checked fields of one record; ``None`` for a service message."""
    kind = _uint(rec, "000")
    if kind is None:
        raise _Reject(Reason.MISSING_FIELD, "I010/000 message type is absent")
    if kind != 1:
        return None
    item = rec.get_item("010")
    if item is None:
        raise _Reject(Reason.UNKNOWN_RADAR, "I010/010 data source identifier is absent")
    sac, sic = int(_sub(item, "SAC").as_uint()), int(_sub(item, "SIC").as_uint())
    radar = by_source.get((sac, sic))
    if radar is None:
        raise _Reject(Reason.UNKNOWN_RADAR, f"no radar in radars.yaml with sac {sac}, sic {sic}")
    number = _uint(rec, "161", "TRK")
    if number is None:
        raise _Reject(Reason.MISSING_FIELD, "I010/161 track number is absent")
    tod = rec.get_item("140")
    tod_ms = -1 if tod is None else round(tod.variation.content.as_quantity("s") * 1000.0)
    row = _Row(raw, radar, number, tod_ms, _status(rec))
    if (p := rec.get_item("041")) is not None:
        row.lat = float(_sub(p, "LAT").as_quantity("°"))
        row.lon = float(_sub(p, "LON").as_quantity("°"))
        if not (-90.0 <= row.lat <= 90.0 and -180.0 <= row.lon <= 180.0):
            raise _Reject(
                Reason.BAD_FIELD, f"I010/041 position {row.lat:g}, {row.lon:g} is out of range"
            )
    elif (p := rec.get_item("040")) is not None:
        row.range_m = float(_sub(p, "RHO").as_quantity("m"))
        row.bearing_deg = float(_sub(p, "TH").as_quantity("°")) % 360.0
    elif (p := rec.get_item("042")) is not None:
        x, y = float(_sub(p, "X").as_quantity("m")), float(_sub(p, "Y").as_quantity("m"))
        row.range_m = math.hypot(x, y)
        row.bearing_deg = math.degrees(math.atan2(x, y)) % 360.0
    else:
        raise _Reject(Reason.MISSING_FIELD, "no position: none of I010/041, I010/040, I010/042")
    if (v := rec.get_item("200")) is not None:
        row.speed_kn = round(float(_sub(v, "GSP").as_quantity("NM/s")) * 3600.0, 2)
        row.course_deg = round(float(_sub(v, "TRA").as_quantity("°")) % 360.0, 2)
    elif (v := rec.get_item("202")) is not None:
        vx, vy = float(_sub(v, "VX").as_quantity("m/s")), float(_sub(v, "VY").as_quantity("m/s"))
        row.speed_kn = round(math.hypot(vx, vy) / _MS_PER_KN, 2)
        row.course_deg = round(math.degrees(math.atan2(vx, vy)) % 360.0, 2)
    return row


def decode_asterix(
    datagram: bytes,
    rx_t_ms: int,
    source: str,
    by_source: dict[tuple[int, int], RadarConfig],
) -> AsterixResult:
    """The target records and dead letters of one ASTERIX datagram.

    :param datagram: the datagram as received (one or more data blocks)
    :param rx_t_ms: its receive time, ms UTC
    :param source: the source id (``asterix-udp:4010:10.0.0.31``), kept in records and
        dead letters
    :param by_source: the site's radars by ``(sac, sic)`` (:func:`radars_by_source`)
    :returns: targets in record order, dead letters, and the count of service messages
    """
    out = AsterixResult()

    def reject(raw: bytes, reason: Reason, detail: str) -> None:
        out.dead.append(
            dead_letter(reason, source=source, stage=STAGE, detail=detail, raw=raw, rx_t_ms=rx_t_ms)
        )

    try:
        blocks = RawDatablock.parse(Bits.from_bytes(datagram))
    except _PARSE_FAULTS as exc:  # the parser recurses per data block, asserts on bits
        blocks = ValueError(f"{type(exc).__name__}: {exc}")
    if isinstance(blocks, ValueError):
        reject(datagram, Reason.BAD_ASTERIX, f"data block framing: {blocks}")
        return out
    if not blocks:
        reject(datagram, Reason.BAD_ASTERIX, "an empty datagram: no data block")
        return out
    rows: list[_Row] = []
    for block in blocks:
        raw_block = block.unparse().to_bytes()
        cat = block.get_category()
        if cat != CAT010.cv_category:
            reject(raw_block, Reason.UNSUPPORTED_CATEGORY, f"CAT {cat:03d} (reads CAT 010)")
            continue
        try:
            records = CAT010.cv_uap.parse(block.get_raw_records())
        except _PARSE_FAULTS as exc:
            records = ValueError(f"{type(exc).__name__}: {exc}")
        if isinstance(records, ValueError):
            reject(raw_block, Reason.BAD_ASTERIX, f"CAT 010 ed. 1.1 records: {records}")
            continue
        for rec in records:
            raw = rec.unparse().to_bytes()
            try:
                row = _row(rec, raw, by_source)
            except _Reject as rej:
                reject(raw, rej.reason, rej.detail)
                continue
            if row is None:
                out.service_messages += 1
            else:
                rows.append(row)
    if rows:
        out.targets = _targets(rows, rx_t_ms, source, reject)
    return out


def _targets(rows: list[_Row], rx_t_ms: int, source: str, reject: Any) -> list[RadarTarget]:
    """Geo-locate the checked rows (vectorised per radar), date them, and check the range."""
    n = len(rows)
    lon, lat = np.array([r.lon for r in rows]), np.array([r.lat for r in rows])
    rng, brg = np.array([r.range_m for r in rows]), np.array([r.bearing_deg for r in rows])
    sigma = np.zeros(n)
    for rid in {r.radar.id for r in rows}:
        idx = np.array([i for i, r in enumerate(rows) if r.radar.id == rid])
        radar = rows[idx[0]].radar
        polar = np.isnan(lon[idx])
        plon, plat = core.polar_to_lonlat(
            radar.lon, radar.lat, np.nan_to_num(brg[idx]), np.nan_to_num(rng[idx])
        )
        glon, glat = lon[idx], lat[idx]
        rng[idx] = np.where(
            polar, rng[idx], core.range_from_lonlat(radar.lon, radar.lat, glon, glat)
        )
        brg[idx] = np.where(polar, brg[idx], bearing_deg(radar.lon, radar.lat, glon, glat))
        lon[idx], lat[idx] = np.where(polar, plon, glon), np.where(polar, plat, glat)
        sigma[idx] = core.position_sigma_m(rng[idx], radar.range_sigma_m, radar.bearing_sigma_deg)
    t_ms = core.event_time_ms([r.tod_ms for r in rows], [rx_t_ms] * n)
    out: list[RadarTarget] = []
    for i, r in enumerate(rows):
        radar = r.radar
        if rng[i] > radar.max_range_m:
            reject(
                r.raw,
                Reason.BEYOND_RANGE,
                f"target at {rng[i]:.0f} m, beyond radar {radar.id}'s max_range_m "
                f"{radar.max_range_m:.0f}",
            )
            continue
        out.append(
            located_target(
                radar.id,
                r.number,
                "CAT010",
                int(t_ms[i]),
                rx_t_ms,
                (lon[i], lat[i], rng[i], brg[i], sigma[i]),
                r.status,
                source,
                speed_kn=r.speed_kn,
                course_deg=r.course_deg,
            )
        )
    return out
