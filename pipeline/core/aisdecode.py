"""Vectorised decoding of AIS position reports (types 1, 2, 3, 18, 19, 27).

Whole batches of six-bit armoured payloads go through NumPy: the payloads are
joined into one byte buffer, the characters of each message type are gathered
into a ``(chars, n)`` matrix of six-bit values, and every field is cut out of
at most six consecutive characters with shifts and masks on ``int64`` columns.
There is no Python loop over messages.

Every value equals what pyais 3.3 returns for the same payload (same scaling,
same rounding: ``lat = round(raw / 600000, 6)`` computed as
``((10 * raw + 3) // 6) / 1e6``, type 27 in 1/10 minute), so the arrays are
named like pyais's fields (``speed``, ``course``, ``lat``, ...) and keep the
"not available" numbers (lat 91, SOG 102.3, ...). The ``*_kn``/``*_deg``
properties of :class:`Positions` give the same values with "not available" (and
out-of-range) values as NaN.

Payloads that are too short for the fixed layout of their type are not decoded
here (``Positions.short`` lists them) so the caller can hand them to a scalar
decoder; nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "LAYOUTS",
    "POSITION_TYPES",
    "Positions",
    "decode_positions",
    "message_types",
]

POSITION_TYPES = (1, 2, 3, 18, 19, 27)

# field: (bit offset, width, signed)
_COMMON = {"msg_type": (0, 6, False), "repeat": (6, 2, False), "mmsi": (8, 30, False)}
_CLASS_A = {
    **_COMMON,
    "status": (38, 4, False),
    "turn": (42, 8, True),
    "speed": (50, 10, False),
    "accuracy": (60, 1, False),
    "lon": (61, 28, True),
    "lat": (89, 27, True),
    "course": (116, 12, False),
    "heading": (128, 9, False),
    "second": (137, 6, False),
    "maneuver": (143, 2, False),
    "raim": (148, 1, False),
    "radio": (149, 19, False),
}
_CLASS_B = {
    **_COMMON,
    "reserved_1": (38, 8, False),
    "speed": (46, 10, False),
    "accuracy": (56, 1, False),
    "lon": (57, 28, True),
    "lat": (85, 27, True),
    "course": (112, 12, False),
    "heading": (124, 9, False),
    "second": (133, 6, False),
}
_T18 = {
    **_CLASS_B,
    "reserved_2": (139, 2, False),
    "cs": (141, 1, False),
    "display": (142, 1, False),
    "dsc": (143, 1, False),
    "band": (144, 1, False),
    "msg22": (145, 1, False),
    "assigned": (146, 1, False),
    "raim": (147, 1, False),
    "radio": (148, 20, False),
}
_T19 = {**_CLASS_B, "reserved_2": (139, 4, False)}
_T27 = {
    **_COMMON,
    "accuracy": (38, 1, False),
    "raim": (39, 1, False),
    "status": (40, 4, False),
    "lon": (44, 18, True),
    "lat": (62, 17, True),
    "speed": (79, 6, False),
    "course": (85, 9, False),
    "gnss": (94, 1, False),
}
LAYOUTS: dict[int, dict[str, tuple[int, int, bool]]] = {
    1: _CLASS_A,
    2: _CLASS_A,
    3: _CLASS_A,
    18: _T18,
    19: _T19,
    27: _T27,
}
"""Bit layout (offset, width, signed) of the fields decoded here, per message type."""

#: minimum payload length in bits for the vectorised path (the message's full length;
#: type 19 is decoded up to its position fields, its static part goes to pyais)
_MIN_BITS = {1: 168, 2: 168, 3: 168, 18: 168, 19: 143, 27: 96}
_GROUPS = ((1, 2, 3), (18,), (19,), (27,))

_INT_FIELDS = (
    "msg_type",
    "repeat",
    "mmsi",
    "status",
    "heading",
    "second",
    "maneuver",
    "radio",
    "reserved_1",
    "reserved_2",
)
_BOOL_FIELDS = ("accuracy", "raim", "cs", "display", "dsc", "band", "msg22", "assigned", "gnss")
_FLOAT_FIELDS = ("turn", "speed", "lon", "lat", "course")

_SEP = ord("\n")
_MIN_BITS_LUT = np.zeros(256, np.int64)
for _t, _b in _MIN_BITS.items():
    _MIN_BITS_LUT[_t] = _b


def _sixbit(ascii_codes: np.ndarray) -> np.ndarray:
    """Six-bit values of armoured characters (``uint8`` in, ``uint8`` out, no table lookup)."""
    v = ascii_codes - np.uint8(48)
    v -= (v > 40).view(np.uint8) * np.uint8(8)
    return v


def message_types(payloads: Sequence[str]) -> np.ndarray:
    """Message type (first six bits) of each payload, ``int64``; -1 for an empty payload."""
    if len(payloads) == 0:
        return np.zeros(0, np.int64)
    raw, starts, lengths = _join(payloads)
    mt = _sixbit(raw[starts]).astype(np.int64)
    mt[lengths == 0] = -1
    return mt


def _join(payloads: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All payloads as ASCII codes in one ``uint8`` buffer, start offsets and lengths.

    The payloads are joined with ``\\n``; the separators give starts and lengths
    without a Python loop.
    """
    raw = np.frombuffer(("\n".join(payloads) + "\n").encode("ascii"), np.uint8)
    ends = np.flatnonzero(raw == _SEP)
    starts = np.empty(len(ends), np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    return raw, starts, ends - starts


@dataclass(frozen=True, slots=True)
class Positions:
    """Decoded position reports, one entry per message, pyais-valued arrays.

    :param index: position of each message in the input payload list
    :param short: input positions of position reports too short for the fixed layout
    :param speed: SOG in knots (type 27: whole knots), 102.3 (type 27: 63) = not available
    :param course: COG in degrees, 360 (type 27: 511) = not available
    :param lon: longitude in degrees, 181 = not available
    :param lat: latitude in degrees, 91 = not available
    :param heading: true heading in degrees, 511 = not available (-1 for type 27)
    :param status: navigation status (-1 for types 18, 19)
    :param turn: rate of turn as pyais gives it (NaN for types 18, 19, 27)

    Fields a type does not have are -1 (integers), ``False`` (flags) or NaN (floats).
    """

    index: np.ndarray
    short: np.ndarray
    msg_type: np.ndarray
    repeat: np.ndarray
    mmsi: np.ndarray
    status: np.ndarray
    turn: np.ndarray
    speed: np.ndarray
    accuracy: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    course: np.ndarray
    heading: np.ndarray
    second: np.ndarray
    maneuver: np.ndarray
    raim: np.ndarray
    radio: np.ndarray
    reserved_1: np.ndarray
    reserved_2: np.ndarray
    cs: np.ndarray
    display: np.ndarray
    dsc: np.ndarray
    band: np.ndarray
    msg22: np.ndarray
    assigned: np.ndarray
    gnss: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    @property
    def _t27(self) -> np.ndarray:
        return self.msg_type == 27

    @property
    def lat_deg(self) -> np.ndarray:
        """Latitude, degrees; NaN when not available (91) or outside [-90, 90]."""
        return np.where(np.abs(self.lat) <= 90.0, self.lat, np.nan)

    @property
    def lon_deg(self) -> np.ndarray:
        """Longitude, degrees; NaN when not available (181) or outside [-180, 180]."""
        return np.where(np.abs(self.lon) <= 180.0, self.lon, np.nan)

    @property
    def sog_kn(self) -> np.ndarray:
        """Speed over ground, knots; NaN when not available (102.3; type 27: 63)."""
        na = np.where(self._t27, self.speed >= 63.0, self.speed >= 102.3)
        return np.where(na, np.nan, self.speed)

    @property
    def cog_deg(self) -> np.ndarray:
        """Course over ground, degrees true; NaN when not available (360; type 27: 511) or above."""
        return np.where(self.course >= 360.0, np.nan, self.course)

    @property
    def heading_deg(self) -> np.ndarray:
        """True heading, degrees (float); NaN when not available (511), invalid or absent."""
        h = self.heading.astype(np.float64)
        return np.where((self.heading < 0) | (self.heading > 359), np.nan, h)

    def field_names(self, msg_type: int) -> tuple[str, ...]:
        """The pyais field names this decoder fills for ``msg_type``."""
        return tuple(LAYOUTS[msg_type])


def _extract(v6: np.ndarray, off: int, width: int, signed: bool) -> np.ndarray:
    """Cut bits ``[off, off + width)`` out of six-bit columns ``v6`` (shape ``(chars, n)``)."""
    c0, c1 = off // 6, (off + width - 1) // 6
    acc = v6[c0].astype(np.int64)
    for c in range(c0 + 1, c1 + 1):
        acc <<= 6
        acc |= v6[c]
    shift = 6 * (c1 + 1) - (off + width)
    if shift:
        acc >>= shift
    acc &= (1 << width) - 1
    if signed:
        acc -= (acc >> (width - 1)) << width
    return acc


def _empty_field(name: str, n: int) -> np.ndarray:
    """The "field absent" array: -1 (integers), ``False`` (flags), NaN (floats)."""
    if name in _INT_FIELDS:
        return np.full(n, -1, np.int64)
    if name in _BOOL_FIELDS:
        return np.zeros(n, bool)
    return np.full(n, np.nan)


def _empty(n: int) -> dict[str, np.ndarray]:
    return {name: _empty_field(name, n) for name in _INT_FIELDS + _BOOL_FIELDS + _FLOAT_FIELDS}


def decode_positions(
    payloads: Sequence[str], fill_bits: Sequence[int] | np.ndarray | None = None
) -> Positions:
    """Decode every position report (types 1, 2, 3, 18, 19, 27) among ``payloads``.

    Other message types are ignored (they are not in ``index``); position reports
    shorter than their type's layout are listed in ``short``. Payloads must be
    valid six-bit armour (the framing stage checks it).

    :param payloads: six-bit armoured payloads (multi-sentence ones already joined)
    :param fill_bits: fill bits per payload, 0 when omitted
    :returns: pyais-valued field arrays, in input order

    >>> p = decode_positions(["13u?etPv2;0n:dDPwUM1U1Cb069D"])
    >>> int(p.mmsi[0]), float(p.lat[0]), float(p.lon[0]), float(p.speed[0])
    (265547250, 57.660353, 11.832977, 13.9)
    """
    n = len(payloads)
    if n == 0:
        return Positions(index=np.zeros(0, np.int64), short=np.zeros(0, np.int64), **_empty(0))  # type: ignore[arg-type]
    raw, starts, lengths = _join(payloads)
    fill = np.zeros(n, np.int64) if fill_bits is None else np.asarray(fill_bits, np.int64)
    nbits = 6 * lengths - fill
    mt = _sixbit(raw[starts])  # an empty payload reads its separator: not a position type
    min_bits = _MIN_BITS_LUT[mt]
    min_bits[lengths == 0] = 0
    is_pos = min_bits > 0
    short_mask = is_pos & (nbits < min_bits)
    ok = is_pos & ~short_mask
    index = np.flatnonzero(ok)
    m = len(index)
    mt_ok = mt[index]
    # (k, chars) windows of the buffer at each message start: one row copy per message
    windows = np.lib.stride_tricks.sliding_window_view(
        np.concatenate([raw, np.zeros(64, np.uint8)]), 52
    )
    groups = []
    for group in _GROUPS:
        sel = (
            np.flatnonzero(np.isin(mt_ok, group))
            if len(group) > 1
            else np.flatnonzero(mt_ok == group[0])
        )
        if len(sel):
            groups.append((group[0], sel))
    whole = len(groups) == 1 and len(groups[0][1]) == m  # one type group: no scatter
    out: dict[str, np.ndarray] = {}
    for t, sel in groups:
        layout = LAYOUTS[t]
        nchars = (_MIN_BITS[t] + 5) // 6
        v6 = _sixbit(np.ascontiguousarray(windows[starts[index[sel]], :nchars].T))
        fields = {name: _extract(v6, *spec) for name, spec in layout.items()}
        _convert(fields, t)
        if whole:
            out = fields
            break
        for name, arr in fields.items():
            dst = out.get(name)
            if dst is None:
                dst = out[name] = _empty_field(name, m)
            dst[sel] = arr
    for name in _INT_FIELDS + _BOOL_FIELDS + _FLOAT_FIELDS:
        if name not in out:
            out[name] = _empty_field(name, m)
    return Positions(index=index, short=np.flatnonzero(short_mask), **out)  # type: ignore[arg-type]


def _round6(v: np.ndarray, k: float) -> np.ndarray:
    """pyais's ``round(v * k / 6e6, 6)`` for integer ``v``: ``floor((k * v + 3) / 6) / 1e6``.

    Computed in float64: ``k * v + 3`` is an exact integer (< 2**53) and the exact
    quotient by 6 is an integer or at least 1/6 away from one, far more than the
    rounding error of one division, so the floor is exact; dividing the exact
    integer by 1e6 is correctly rounded, as in pyais.
    """
    out = v.astype(np.float64)
    out *= k
    out += 3.0
    out /= 6.0
    np.floor(out, out=out)
    out /= 1e6
    return out


def _convert(raw: dict[str, np.ndarray], t: int) -> None:
    """Raw integers to pyais values, in place."""
    if t == 27:
        raw["lon"] = _round6(raw["lon"], 10000.0)
        raw["lat"] = _round6(raw["lat"], 10000.0)
        raw["speed"] = raw["speed"].astype(np.float64)
        raw["course"] = raw["course"].astype(np.float64)
    else:
        raw["lon"] = _round6(raw["lon"], 10.0)
        raw["lat"] = _round6(raw["lat"], 10.0)
        raw["speed"] = raw["speed"] / 10.0
        raw["course"] = raw["course"] / 10.0
    if "turn" in raw:
        r = raw["turn"]
        x = r / 4.733
        turn = np.copysign(np.round(x * x), r.astype(np.float64))
        special = (np.abs(r) == 127) | (r == -128)
        raw["turn"] = np.where(r == 0, 0.0, np.where(special, r.astype(np.float64), turn))
    for name in _BOOL_FIELDS:
        if name in raw:
            raw[name] = raw[name].astype(bool)
