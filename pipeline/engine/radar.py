"""Radar sentences to target records: NMEA 0183 ``TTM`` and ``TLL`` of one radar.

:func:`decode_radar_lines` reads the lines of one source (framing and checksum by
pynmea2, the fields by their TTM/TLL order), checks each against its radar's
configuration and turns the good ones into :class:`~schemas.records.RadarTarget` records,
geo-located and dated as a batch (:mod:`pipeline.core.radar`). Every other line becomes
a dead letter (stage ``radar.decode``) with one of these reasons:

- ``unknown_radar``: the source maps to no radar of the site;
- ``bad_checksum``: the ``*hh`` checksum is wrong or missing;
- ``garbage``: no NMEA sentence in the line;
- ``unsupported_sentence``: a sentence other than TTM and TLL;
- ``missing_field``: target number, distance, bearing, its reference, units or a position empty;
- ``bad_field``: a value that does not parse or is out of its range (a bearing of 400°,
  a status other than L/Q/T, a relative bearing from a radar with no ``heading_deg``);
- ``beyond_range``: farther than the radar's ``max_range_m``.

The sentence's UTC time of day is dated from the line's NMEA 4.10 tag block time (``c:``)
when it has one, else from the receive time; a sentence without a time takes that time.

TTM fields (NMEA 0183, as pynmea2 defines them): target number, distance, bearing,
bearing reference (T/R), speed, course, course reference (T/R), CPA distance, time to CPA
(minutes), distance/speed units (N nautical miles and knots, K km and km/h, S statute),
name, status (L lost, Q acquiring, T tracking), reference target (R), UTC ``hhmmss.ss``,
acquisition (A auto, M manual). TLL: target number, latitude, N/S, longitude, E/W, name,
UTC, status, reference target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pynmea2

from pipeline.core import radar as core
from pipeline.core.geo import bearing_deg
from pipeline.core.nmea import line_time_ms
from pipeline.core.radar import RadarConfig
from pipeline.deadletter import Reason, dead_letter
from schemas.records import DeadLetter, RadarTarget

__all__ = ["STAGE", "decode_radar_lines", "located_target"]

STAGE = "radar.decode"

_STATUS = {"T": "tracking", "Q": "acquiring", "L": "lost", "": "tracking"}
_ACQUISITION = {"A": "auto", "M": "manual", "": None}


class _Reject(Exception):
    def __init__(self, reason: Reason, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class _Row:
    """A sentence that passed the checks, before geo-location."""

    line: str
    rx_t_ms: int
    sentence: str
    number: int
    tod_ms: int
    status: str
    name: str | None
    reference: bool
    bearing_deg: float = math.nan  # true (TTM)
    range_m: float = math.nan  # (TTM)
    lon: float = math.nan  # (TLL)
    lat: float = math.nan  # (TLL)
    speed_kn: float | None = None
    course_deg: float | None = None
    cpa_m: float | None = None
    tcpa_min: float | None = None
    acquisition: str | None = None


def _number(fields: dict[str, str], key: str, label: str, *, required: bool) -> float | None:
    text = fields.get(key, "").strip()
    if not text:
        if required:
            raise _Reject(Reason.MISSING_FIELD, f"{label} is empty")
        return None
    try:
        value = float(text)
    except ValueError:
        raise _Reject(Reason.BAD_FIELD, f"{label} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise _Reject(Reason.BAD_FIELD, f"{label} {text!r} is not a finite number")
    return value


def _degrees(value: float | None, label: str) -> float | None:
    if value is not None and not 0.0 <= value <= 360.0:
        raise _Reject(Reason.BAD_FIELD, f"{label} {value:g} is outside 0-360 degrees")
    return value


def _time_of_day_ms(text: str) -> int:
    text = text.strip()
    if not text:
        return -1
    try:
        hh, mm, ss = int(text[0:2]), int(text[2:4]), float(text[4:] or "nan")
    except ValueError:
        raise _Reject(Reason.BAD_FIELD, f"UTC time {text!r} is not hhmmss.ss") from None
    if len(text) < 6 or not (hh < 24 and mm < 60 and 0.0 <= ss < 61.0):
        raise _Reject(Reason.BAD_FIELD, f"UTC time {text!r} is not hhmmss.ss")
    return (hh * 3600 + mm * 60) * 1000 + round(ss * 1000)


def _common(fields: dict[str, str], status_key: str, name_key: str) -> tuple[int, str, str | None]:
    num = fields.get("target_number", "").strip()
    if not num:
        raise _Reject(Reason.MISSING_FIELD, "target number is empty")
    if not num.isdigit():
        raise _Reject(Reason.BAD_FIELD, f"target number {num!r} is not a whole number")
    status = fields.get(status_key, "").strip().upper()
    if status not in _STATUS:
        raise _Reject(Reason.BAD_FIELD, f"target status {status!r} is not L, Q or T")
    name = fields.get(name_key, "").strip() or None
    return int(num), _STATUS[status], name


def _ttm(fields: dict[str, str], radar: RadarConfig, row: _Row) -> None:
    unit = fields.get("dist_unit", "").strip().upper()
    if not unit:
        raise _Reject(Reason.MISSING_FIELD, "distance/speed units are empty")
    if unit not in core.DISTANCE_UNIT_M:
        raise _Reject(Reason.BAD_FIELD, f"distance/speed units {unit!r} are not N, K or S")
    dist = _number(fields, "distance", "target distance", required=True)
    bearing = _degrees(_number(fields, "bearing", "bearing", required=True), "bearing")
    ref = fields.get("brg_ref", "").strip().upper()
    if not ref:
        raise _Reject(Reason.MISSING_FIELD, "bearing reference (T/R) is empty")
    if ref not in ("T", "R"):
        raise _Reject(Reason.BAD_FIELD, f"bearing reference {ref!r} is not T or R")
    if ref == "R" and radar.heading_deg is None:
        raise _Reject(
            Reason.BAD_FIELD,
            f"relative bearing, but radar {radar.id} has no heading_deg in radars.yaml",
        )
    assert dist is not None and bearing is not None
    if dist < 0:
        raise _Reject(Reason.BAD_FIELD, f"target distance {dist:g} is negative")
    row.range_m = dist * core.DISTANCE_UNIT_M[unit]
    row.bearing_deg = float(
        core.true_bearing_deg(bearing, ref == "R", radar.heading_deg or 0.0)  # type: ignore[arg-type]
    )
    speed = _number(fields, "speed", "target speed", required=False)
    if speed is not None:
        row.speed_kn = speed * core.SPEED_UNIT_KN[unit]
    course = _degrees(_number(fields, "cog", "target course", required=False), "target course")
    if course is not None:
        cref = fields.get("cog_unit", "").strip().upper() or "T"
        if cref == "R" and radar.heading_deg is None:
            course = None  # a relative course without a reference says nothing true
        else:
            course = float(core.true_bearing_deg(course, cref == "R", radar.heading_deg or 0.0))  # type: ignore[arg-type]
        row.course_deg = course
    cpa = _number(fields, "dist_cpa", "CPA distance", required=False)
    row.cpa_m = None if cpa is None else cpa * core.DISTANCE_UNIT_M[unit]
    row.tcpa_min = _number(fields, "time_cpa", "time to CPA", required=False)
    acq = fields.get("acquisition", "").strip().upper()
    row.acquisition = _ACQUISITION.get(acq)


def _latlon(text: str, hemi: str, label: str, deg_digits: int, limit: float) -> float:
    text, hemi = text.strip(), hemi.strip().upper()
    if not text or not hemi:
        raise _Reject(Reason.MISSING_FIELD, f"{label} is empty")
    good = ("N", "S") if label == "latitude" else ("E", "W")
    try:
        deg, minutes = int(text[:deg_digits]), float(text[deg_digits:])
    except ValueError:
        raise _Reject(Reason.BAD_FIELD, f"{label} {text!r} is not d(d)dmm.mm") from None
    if hemi not in good or minutes >= 60.0 or deg + minutes / 60.0 > limit:
        raise _Reject(Reason.BAD_FIELD, f"{label} {text!r} {hemi!r} is not a valid {label}")
    value = deg + minutes / 60.0
    return -value if hemi in ("S", "W") else value


def _tll(fields: dict[str, str], row: _Row) -> None:
    row.lat = _latlon(fields.get("lat", ""), fields.get("lat_dir", ""), "latitude", 2, 90.0)
    row.lon = _latlon(fields.get("lon", ""), fields.get("lon_dir", ""), "longitude", 3, 180.0)


def _parse(line: str, rx_t_ms: int, radar: RadarConfig) -> _Row:
    start = line.find("$")
    if start < 0:
        raise _Reject(Reason.GARBAGE, "no NMEA sentence ($...) in the line")
    text = line[start:].strip()
    try:
        msg = pynmea2.parse(text, check=True)
    except pynmea2.ChecksumError as exc:
        raise _Reject(Reason.BAD_CHECKSUM, str(exc.args[0] if exc.args else exc)) from None
    except pynmea2.SentenceTypeError:
        raise _Reject(Reason.UNSUPPORTED_SENTENCE, f"{text[1:6]!r} is not TTM or TLL") from None
    except pynmea2.ParseError as exc:
        raise _Reject(Reason.GARBAGE, str(exc.args[0] if exc.args else exc)) from None
    kind = getattr(msg, "sentence_type", "")
    if kind not in ("TTM", "TLL"):
        raise _Reject(Reason.UNSUPPORTED_SENTENCE, f"{kind or text[1:6]!r} is not TTM or TLL")
    names = [f[1] for f in msg.fields]
    fields = dict(zip(names, msg.data, strict=False))
    if kind == "TTM":
        number, status, name = _common(fields, "status", "name")
        tod = _time_of_day_ms(fields.get("timestamp", ""))
        ref = fields.get("reference", "").strip().upper() == "R"
        row = _Row(line, rx_t_ms, kind, number, tod, status, name, ref)
        _ttm(fields, radar, row)
    else:
        number, status, name = _common(fields, "target_status", "target_name")
        tod = _time_of_day_ms(fields.get("timestamp", ""))
        ref = fields.get("reference", "").strip().upper() == "R"
        row = _Row(line, rx_t_ms, kind, number, tod, status, name, ref)
        _tll(fields, row)
    return row


def decode_radar_lines(
    lines: list[str], rx_t_ms: list[int], source: str, radar: RadarConfig | None
) -> tuple[list[RadarTarget], list[DeadLetter]]:
    """The target records and the dead letters of one source's lines.

    :param lines: raw lines as received (text before the ``$`` is ignored)
    :param rx_t_ms: receive time of each line, ms UTC
    :param source: the source id (``udp:4002:10.0.0.31``), kept in records and dead letters
    :param radar: the radar the source belongs to (``None``: unknown, every line rejected)
    :returns: ``(targets in line order, dead letters)``
    """
    dead: list[DeadLetter] = []

    def reject(line: str, rx: int, reason: Reason, detail: str) -> None:
        dead.append(
            dead_letter(reason, source=source, stage=STAGE, detail=detail, raw=line, rx_t_ms=rx)
        )

    if radar is None:
        for line, rx in zip(lines, rx_t_ms, strict=True):
            reject(line, rx, Reason.UNKNOWN_RADAR, f"no radar in radars.yaml for {source}")
        return [], dead
    rows: list[_Row] = []
    for line, rx in zip(lines, rx_t_ms, strict=True):
        try:
            rows.append(_parse(line, rx, radar))
        except _Reject as rej:
            reject(line, rx, rej.reason, rej.detail)
    if not rows:
        return [], dead
    ttm = np.array([r.sentence == "TTM" for r in rows])
    brg = np.array([r.bearing_deg for r in rows])
    rng = np.array([r.range_m for r in rows])
    lon = np.array([r.lon for r in rows])
    lat = np.array([r.lat for r in rows])
    plon, plat = core.polar_to_lonlat(radar.lon, radar.lat, np.nan_to_num(brg), np.nan_to_num(rng))
    lon = np.where(ttm, plon, lon)
    lat = np.where(ttm, plat, lat)
    rng = np.where(ttm, rng, core.range_from_lonlat(radar.lon, radar.lat, lon, lat))
    brg = np.where(ttm, brg, bearing_deg(radar.lon, radar.lat, lon, lat))
    sigma = core.position_sigma_m(rng, radar.range_sigma_m, radar.bearing_sigma_deg)
    # a tag block's c: time (a recording, the simulator) dates the sentence; else the receipt
    ref_t = [line_time_ms(r.line) or r.rx_t_ms for r in rows]
    t_ms = core.event_time_ms([r.tod_ms for r in rows], ref_t)
    out: list[RadarTarget] = []
    for i, r in enumerate(rows):
        if rng[i] > radar.max_range_m:
            reject(
                r.line,
                r.rx_t_ms,
                Reason.BEYOND_RANGE,
                f"target at {rng[i]:.0f} m, beyond radar {radar.id}'s max_range_m "
                f"{radar.max_range_m:.0f}",
            )
            continue
        out.append(
            located_target(
                radar.id,
                r.number,
                r.sentence,
                int(t_ms[i]),
                r.rx_t_ms,
                (lon[i], lat[i], rng[i], brg[i], sigma[i]),
                r.status,
                source,
                speed_kn=r.speed_kn,
                course_deg=r.course_deg,
                name=r.name,
                cpa_m=r.cpa_m,
                tcpa_min=r.tcpa_min,
                acquisition=r.acquisition,  # type: ignore[arg-type]
                reference=r.reference,
            )
        )
    return out, dead


def located_target(
    radar_id: str,
    number: int,
    sentence: str,
    t_ms: int,
    rx_t_ms: int,
    where: tuple[float, float, float, float, float],
    status: str,
    source: str,
    **extra: Any,
) -> RadarTarget:
    """One radar target record, its position rounded as every radar input rounds it.

    :param where: ``(lon, lat, range_m, bearing_deg, position_sigma_m)``: degrees, m,
        degrees true, m
    :param extra: the optional fields the input carries (speed, course, name …)
    """
    lon, lat, rng, brg, sigma = (float(x) for x in where)
    return RadarTarget(
        radar_id=radar_id,
        target_id=f"{radar_id}:{number}",
        target_number=number,
        sentence=sentence,  # type: ignore[arg-type]
        t_ms=t_ms,
        rx_t_ms=rx_t_ms,
        lon=round(lon, 7),
        lat=round(lat, 7),
        range_m=round(rng, 1),
        bearing_deg=round(brg, 3),
        position_sigma_m=round(sigma, 1),
        status=status,  # type: ignore[arg-type]
        source=source,
        **extra,
    )
