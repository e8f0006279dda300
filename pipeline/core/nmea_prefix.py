"""Text that loggers write before an NMEA sentence or tag block, and the time it may hold.

Receivers and loggers often put something before each sentence: a receive time
(``2016-03-31 23:59:12, !AIVDM,…``), an epoch, an ISO 8601 time, a station name. A
*prefix policy* says per source what to do with it:

``auto``
    a time at the start of the prefix (ISO 8601 / ``YYYY-MM-DD HH:MM:SS[.fff]``, epoch
    seconds with 9–10 digits, epoch milliseconds with 12–13 digits) is the line's
    receive time; any other prefix is stripped and ignored.
``strip``
    any prefix is stripped and ignored.
``none``
    no prefix allowed: a line that does not start with the sentence or tag block is
    rejected (``garbage``), as a strict feed wants.
``iso``, ``epoch_s``, ``epoch_ms``, or ``strftime`` codes (``%Y %y %m %d %H %M %S %f %z``)
    the prefix must start with a time of that form; one that does not is stripped and
    counted (``quirk.prefix_time_bad``).

Times without an offset are in the policy's time zone (``UTC``, ``+08:00``,
``-0330``, or an IANA name such as ``Asia/Shanghai``, daylight saving applied per hour).

Vectorised: the prefixes of a batch are parsed by one regular expression over their
joined text and NumPy arithmetic on the fields; no per-line Python parsing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

__all__ = ["PREFIX_POLICIES", "PrefixPolicy", "PrefixTimes", "prefix_policy", "prefix_times"]

PREFIX_POLICIES = ("auto", "strip", "none", "iso", "epoch_s", "epoch_ms")
"""Named policies; any text holding ``%`` is a ``strftime``-style format."""


_LEAD = r"[\[(<\"' ]*"
_ISO = (
    r"(?P<Y>\d{4})-(?P<m>\d\d)-(?P<d>\d\d)[T ](?P<H>\d\d):(?P<M>\d\d):(?P<S>\d\d)"
    r"(?:[.,](?P<f>\d{1,9}))? ?(?P<z>Z|UTC|GMT|[+-]\d\d:?\d\d)?"
)
_EPOCH_S = r"(?P<es>\d{9,10})(?:\.(?P<efrac>\d{1,9}))?"
_EPOCH_MS = r"(?P<ems>\d{12,13})"
_STRF = {
    "%Y": r"(?P<Y>\d{4})",
    "%y": r"(?P<y>\d\d)",
    "%m": r"(?P<m>\d{1,2})",
    "%d": r"(?P<d>\d{1,2})",
    "%H": r"(?P<H>\d{1,2})",
    "%M": r"(?P<M>\d\d)",
    "%S": r"(?P<S>\d\d)",
    "%f": r"(?P<f>\d{1,9})",
    "%z": r"(?P<z>Z|UTC|GMT|[+-]\d\d:?\d\d)",
    "%%": "%",
}


@dataclass(frozen=True, slots=True)
class PrefixPolicy:
    """A parsed prefix policy (see the module docstring).

    :param name: the policy as given
    :param allow: whether a prefix is allowed at all (``False`` for ``none``)
    :param pattern: regex finding a time at the start of a prefix, or ``None`` (``strip``)
    :param offset_ms: fixed offset of the time zone, ms east of UTC, when it has one
    :param zone: IANA time zone name when the offset varies, else ``None``
    :param strict_format: a named format or ``strftime`` codes were given (a prefix
        without that time is counted as ``quirk.prefix_time_bad``)
    """

    name: str
    allow: bool
    pattern: re.Pattern[str] | None
    offset_ms: int
    zone: str | None
    strict_format: bool


@lru_cache(maxsize=64)
def prefix_policy(name: str = "auto", tz: str = "UTC") -> PrefixPolicy:
    """The :class:`PrefixPolicy` of a policy name and time zone (cached).

    :raises ValueError: an unknown policy, a ``strftime`` format without a date and time,
        or an unknown time zone
    """
    offset_ms, zone = _zone(tz)
    if name in ("strip", "none"):
        return PrefixPolicy(name, name == "strip", None, offset_ms, zone, False)
    if name == "auto":
        body = f"(?:{_ISO}|{_EPOCH_MS}|{_EPOCH_S})"
    elif name == "iso":
        body = _ISO
    elif name == "epoch_s":
        body = _EPOCH_S
    elif name == "epoch_ms":
        body = _EPOCH_MS
    elif "%" in name:
        body = _strftime_regex(name)
    else:
        raise ValueError(
            f"prefix policy {name!r}: expected one of {', '.join(PREFIX_POLICIES)} "
            "or a strftime format such as '%Y-%m-%d %H:%M:%S'"
        )
    # one match per line of the joined prefixes: the time's fields, or all empty
    pattern = re.compile(rf"^(?:{_LEAD}{body}(?![0-9]))?.*$", re.MULTILINE)
    return PrefixPolicy(name, True, pattern, offset_ms, zone, name != "auto")


def _strftime_regex(fmt: str) -> str:
    out, i = [], 0
    while i < len(fmt):
        code = fmt[i : i + 2]
        if fmt[i] == "%":
            if code not in _STRF:
                raise ValueError(f"prefix format {fmt!r}: {code!r} is not supported")
            out.append(_STRF[code])
            i += 2
        else:
            out.append(re.escape(fmt[i]))
            i += 1
    text = "".join(out)
    if not all(f"(?P<{g}>" in text for g in ("m", "d", "H", "M")) or (
        "(?P<Y>" not in text and "(?P<y>" not in text
    ):
        raise ValueError(f"prefix format {fmt!r} needs a year, month, day, hour and minute")
    return text


_OFFSET = re.compile(r"^([+-])(\d\d):?(\d\d)$")


def _zone(tz: str) -> tuple[int, str | None]:
    """Fixed offset (ms east of UTC) or IANA zone name of a time zone text."""
    if tz.upper() in ("UTC", "Z", "GMT", ""):
        return 0, None
    m = _OFFSET.match(tz)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        return sign * (int(m.group(2)) * 3_600_000 + int(m.group(3)) * 60_000), None
    try:
        ZoneInfo(tz)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError on odd names
        raise ValueError(f"unknown time zone {tz!r}") from exc
    return 0, tz


@dataclass(slots=True)
class PrefixTimes:
    """Receive times found in a batch of prefixes.

    :param t_ms: time of each prefix, ms since epoch UTC (``int64``; valid where ``has_t``)
    :param has_t: whether the prefix held a valid time (``bool``)
    :param n_time: prefixes read as a time
    :param n_stripped: non-empty prefixes without a time, stripped (policy ``auto``/``strip``)
    :param n_bad: non-empty prefixes without the time the policy's format asks for
    """

    t_ms: np.ndarray
    has_t: np.ndarray
    n_time: int
    n_stripped: int
    n_bad: int


def prefix_times(prefixes: list[str] | tuple[str, ...], policy: PrefixPolicy) -> PrefixTimes:
    """Receive times of the prefixes of a batch, by ``policy`` (one regex call, NumPy fields).

    >>> p = prefix_times(["2016-03-31 23:59:12, ", "", "1459468752.5 "], prefix_policy())
    >>> p.t_ms.tolist(), p.has_t.tolist()
    ([1459468752000, 0, 1459468752500], [True, False, True])
    """
    n = len(prefixes)
    t = np.zeros(n, np.int64)
    has = np.zeros(n, bool)
    nonempty = sum(1 for p in prefixes if p)
    if policy.pattern is None or nonempty == 0:
        return PrefixTimes(t, has, 0, nonempty, 0)
    fields = _fields_uniform(prefixes, policy) or _fields(prefixes, policy)
    if "es" in fields:
        sel = fields["es"] >= 0
        t[sel] = fields["es"][sel] * 1000 + np.maximum(fields["efrac"][sel], 0)
        has[sel] = True
    if "ems" in fields:
        sel = fields["ems"] >= 0
        t[sel], has[sel] = fields["ems"][sel], True
    if "m" in fields:
        _calendar(fields, t, has, policy)
    n_time = int(has.sum())
    missing = nonempty - n_time
    if policy.strict_format:
        return PrefixTimes(t, has, n_time, 0, missing)
    return PrefixTimes(t, has, n_time, missing, 0)


#: fields of a time, as parsed: ``int64`` columns (-1 where absent; fractions in ms) and
#: the offset text column ``"z"`` (``U6``)
_Fields = dict[str, np.ndarray]
_FRACTIONS = ("f", "efrac")


def _fields(prefixes: Sequence[str], policy: PrefixPolicy) -> _Fields:
    """The time fields of each prefix: one regex call over the joined prefixes."""
    assert policy.pattern is not None
    rows = policy.pattern.findall("\n".join(prefixes))
    if len(rows) != len(prefixes):  # a prefix held a line break: read them one by one
        rows = [policy.pattern.match(p).groups() for p in prefixes]  # type: ignore[union-attr]
    elif policy.pattern.groups == 1:  # findall gives the group itself, not a 1-tuple
        rows = [(r,) for r in rows]
    out: _Fields = {}
    for name, col in zip(policy.pattern.groupindex, zip(*rows, strict=True), strict=True):
        out[name] = np.array(col, "U6") if name == "z" else _digits(col, name in _FRACTIONS)
    return out


def _fields_uniform(prefixes: Sequence[str], policy: PrefixPolicy) -> _Fields | None:
    """:func:`_fields` without a regex call per prefix, when every prefix has the length
    of the first and the same characters except digits where the first has digits (a
    logger writes the same format on every line): the regex then matches each alike, so
    its spans in the first prefix cut the fields out of all as one byte matrix. ``None``
    when the prefixes are not so (or a time offset with digits varies per line)."""
    assert policy.pattern is not None
    first = prefixes[0]
    m = policy.pattern.match(first)
    if not first or m is None:
        return None
    z = m.group("z") if "z" in policy.pattern.groupindex else None
    if z and any(c.isdigit() for c in z):
        return None
    try:
        buf = "".join(prefixes).encode("ascii")
    except UnicodeEncodeError:
        return None
    n, width = len(prefixes), len(first)
    if len(buf) != n * width or not (np.fromiter(map(len, prefixes), np.int64, n) == width).all():
        return None
    raw = np.frombuffer(buf, np.uint8).reshape(n, width)
    digit = (raw[0] >= 48) & (raw[0] <= 57)
    d = raw[:, digit]
    if not (((d >= 48) & (d <= 57)).all() and (raw[:, ~digit] == raw[0, ~digit]).all()):
        return None
    out: _Fields = {}
    for name in policy.pattern.groupindex:
        lo, hi = m.span(name)
        if name == "z":
            out[name] = np.full(n, z or "", "U6")
        elif lo < 0:
            out[name] = np.full(n, -1, np.int64)
        else:
            digits = (
                raw[:, lo : min(hi, lo + 3) if name in _FRACTIONS else hi].astype(np.int64) - 48
            )
            k = digits.shape[1]
            value = digits @ (10 ** np.arange(k - 1, -1, -1, dtype=np.int64))
            out[name] = value * 10 ** (3 - k) if name in _FRACTIONS else value
    return out


def _digits(col: tuple[str, ...], frac: bool = False) -> np.ndarray:
    """ASCII decimal texts to ``int64``, ``-1`` for an empty one; with ``frac``, fractions of
    a second to ms (``"5"`` → 500, ``"123456"`` → 123). Vectorised: the texts' bytes are
    placed in a digit matrix (right-aligned, or left-aligned for fractions) and weighted."""
    n = len(col)
    lens = np.fromiter(map(len, col), np.int64, n)
    out = np.full(n, -1, np.int64)
    total = int(lens.sum())
    if total == 0:
        return out
    width = 3 if frac else int(lens.max())
    buf = np.frombuffer("".join(col).encode("ascii"), np.uint8).astype(np.int64) - 48
    rows = np.repeat(np.arange(n), lens)
    pos = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens)  # digit index in its text
    if not frac:
        pos += np.repeat(width - lens, lens)  # right-aligned
    mat = np.zeros((n, width + (int(lens.max()) if frac else 0)), np.int64)
    mat[rows, pos] = buf
    value = mat[:, :width] @ (10 ** np.arange(width - 1, -1, -1, dtype=np.int64))
    has = lens > 0
    out[has] = value[has]
    return out


def _calendar(fields: _Fields, t: np.ndarray, has: np.ndarray, policy: PrefixPolicy) -> None:
    """Calendar times (year, month, day, hour, minute, second, fraction, offset) to ms."""
    mo = fields["m"]
    sel = mo >= 0
    if not sel.any():
        return
    if "Y" in fields:
        y = fields["Y"]
    else:
        y = fields["y"]
        y = np.where(y >= 0, y + np.where(y < 70, 2000, 1900), -1)
    d, hh, mi = fields["d"], fields["H"], fields["M"]
    ss = np.maximum(fields["S"], 0) if "S" in fields else np.zeros_like(mo)
    ms = np.maximum(fields["f"], 0) if "f" in fields else np.zeros_like(mo)
    ok = (
        sel & (mo >= 1) & (mo <= 12) & (d >= 1) & (d <= 31) & (hh >= 0) & (hh < 24)
        & (mi >= 0) & (mi < 60) & (ss <= 60) & (y >= 1970)
    )  # fmt: skip
    # days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)
    yy = y - (mo <= 2)
    era = yy // 400
    yoe = yy - era * 400
    doy = (153 * (mo + np.where(mo > 2, -3, 9)) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    local = ((days * 24 + hh) * 60 + mi) * 60_000 + ss * 1000 + ms
    given = fields["z"] if "z" in fields else np.full(len(mo), "", "U6")
    utc = local[ok] - _zone_offsets_ms(local[ok], given[ok], policy)
    t[ok] = utc
    has[ok] = True


def _zone_offsets_ms(local_ms: np.ndarray, given: np.ndarray, policy: PrefixPolicy) -> np.ndarray:
    """Offset east of UTC (ms) of each local time: its own (``Z``, ``+08:00``) where given,
    else the policy's zone (IANA zones: looked up once per distinct hour)."""
    out = np.full(local_ms.shape, policy.offset_ms, np.int64)
    if policy.zone is not None:
        hours, inv = np.unique(local_ms // 3_600_000, return_inverse=True)
        zone = ZoneInfo(policy.zone)
        offs = np.array(
            [_local_offset_ms(int(h), zone) for h in hours.tolist()], np.int64
        )  # one look-up per distinct local hour of the batch
        out = offs[inv.reshape(local_ms.shape)]
    if (given != "").any():
        kinds, inv = np.unique(given, return_inverse=True)
        offs = np.array([_zone_text_ms(k) for k in kinds.tolist()], np.int64)
        own = offs[inv.reshape(local_ms.shape)]
        out = np.where(given != "", own, out)
    return out


def _local_offset_ms(hour: int, zone: ZoneInfo) -> int:
    naive = datetime.fromtimestamp(hour * 3600, tz=UTC).replace(tzinfo=zone)
    off = naive.utcoffset()
    return int(off.total_seconds() * 1000) if off is not None else 0


def _zone_text_ms(text: str) -> int:
    if text in ("", "Z", "UTC", "GMT"):
        return 0
    return _zone(text)[0]
