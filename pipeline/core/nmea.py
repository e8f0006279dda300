"""NMEA 0183 / IEC 61162 framing of raw AIS lines: the pure first stage of AIS ingest.

:func:`frame_lines` turns a batch of raw lines of one source into complete AIS
payloads with their event time, and a list of rejected or skipped lines, each with
a reason code. No I/O, no clock: every time is passed in.

What a line may look like::

    !AIVDM,1,1,,B,13u?etPv2;0n:dDPwUM1U1Cb069D,0*24                 plain sentence
    \\s:rEV02,c:1334337317*58\\!AIVDM,1,1,,B,19NW...,0*5F           NMEA 4.10 tag block
    $PGHP,1,2010,6,11,11,46,11,390,231,45,992190934,1,2B*5B         Gatehouse time of the NEXT sentence
    !AIVDM,1,1,,A,15B4FT5000JRP>PE6E68Nbkl0PS5,0*70,b003669794,1272412827   trailing station, epoch

Event time of a message, first available of: tag block ``c:`` (seconds, or
milliseconds when ``c >= 10**11``), the last ``$PGHP`` line of the source before
the sentence, the trailing epoch field, the receive time. A multi-sentence
message takes the time of its first fragment that carries one.

Multi-sentence messages are reassembled from the sentence's own fragment fields
(count, number, sequence id) per (source, channel, sequence id, count); a tag
block ``g:`` group only rides along (every real feed here that sends ``g:`` also
numbers its fragments), and ``s:`` is kept as the receiving station.

Tag block checksum policy: a tag block whose checksum is wrong (real feeds send
``*00``, see ``amsa_risky_nmea_timestamped.txt``) does **not** reject the sentence.
The sentence has its own checksum, which is what protects the payload; the tag
block only adds metadata, and dropping every sentence of a feed that writes a
constant ``*00`` would lose the whole feed for a cosmetic fault. The tag's time and
source are kept (they are plausibility-checked: a time must be all digits) and the
counter ``tag_checksum_bad`` goes up so an operator can see the feed's quirk.

Reject reasons (dead letters): ``bad_checksum``, ``truncated``, ``bad_fill_bits``,
``fragment_timeout``, ``fragment_orphan``, ``not_ascii``, ``too_long``, ``garbage``.
Skip reasons (counted, not dead letters: valid input deliberately not used):
``not_ais`` (a well-formed NMEA sentence of another kind, e.g. ``$GPGSA``) and
``duplicate`` (same payload heard again within the de-duplication window).
Blank lines and ``#`` comments only increment ``empty`` / ``comment``.

A corrupted AIS line always lands in the rejects: changing any one character of
the checksummed part changes the XOR checksum, so a corrupted ``VDM`` can not pass
as a valid non-AIS sentence.
"""

from __future__ import annotations

import calendar
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import compress
from operator import itemgetter, not_
from typing import Any

import numpy as np

__all__ = [
    "MAX_LINE_CHARS",
    "REJECT_REASONS",
    "SKIP_REASONS",
    "Deduplicator",
    "Framed",
    "Reassembler",
    "Reject",
    "frame_lines",
    "line_time_ms",
    "nmea_checksums",
]

MAX_LINE_CHARS = 400
"""Longest accepted line (tag block + sentence + trailing fields), characters."""

REJECT_REASONS = (
    "bad_checksum",
    "truncated",
    "bad_fill_bits",
    "fragment_timeout",
    "fragment_orphan",
    "not_ascii",
    "too_long",
    "garbage",
)
SKIP_REASONS = ("not_ais", "duplicate")

#: characters allowed in a six-bit armoured payload ('0'..'W' and '`'..'w')
_ARMOUR = "".join(chr(c) for c in range(48, 88)) + "".join(chr(c) for c in range(96, 120))
_DELETE_ARMOUR = str.maketrans("", "", _ARMOUR)
_HEX = "0123456789ABCDEFabcdef"
#: the common case in one match: optional tag block with checksum, a well-formed
#: VDM/VDO sentence, optional trailing fields; anything else takes the slow path,
#: which finds the precise reason. Groups: tag text, its ``s:`` station and ``c:`` time
#: digits when the text is ``c:<time>`` or ``s:<station>,c:<time>`` (the common forms),
#: tag checksum, sentence body, fragment count, number, sequence id, channel, payload,
#: fill bits, checksum, trailing text.
_FAST = re.compile(
    r"(?:\\((?:s:([^,\\*]*),)?c:([0-9]{1,14})(?=\*)|[^\\*]*)\*([0-9A-Fa-f]{2})\\)?[!$]"
    r"((?:[A-Z0-9-]{2}VD[MO]),([1-9]),([1-9]),([0-9]?),([^,*]?),([0-W`-w]+),([0-5]))"
    r"\*([0-9A-Fa-f]{2})(.*)"
)
#: the same for every line of a text at once: one match per line, all groups empty
#: when the line is not the common case
_FAST_LINES = re.compile(rf"^(?:{_FAST.pattern}|.*)$", re.MULTILINE)


def _fast_rows(lines: Sequence[str]) -> tuple[list[tuple[str, ...]] | None, bool]:
    """:data:`_FAST` groups of each line (``""`` for an absent group) in one regex call, or
    ``None`` when a line holds a line break or non-ASCII text or is too long; and whether
    any line may be a ``$PGHP`` line."""
    n = len(lines)
    if n == 0:
        return None, False
    text = "\n".join(lines)
    has_pghp = "PGHP" in text
    if text.count("\n") != n - 1 or not text.isascii() or max(map(len, lines)) > MAX_LINE_CHARS:
        return None, has_pghp
    rows = _FAST_LINES.findall(text)
    return (rows if len(rows) == n else None), has_pghp


#: an epoch at least this large is in ms, a smaller one in s (``c:`` and trailing fields)
_EPOCH_MS_MIN = 10**11

#: two hex digits, either case, to their value
_HEX2 = {a + b: int(a + b, 16) for a in _HEX for b in _HEX}


def _tag_fields(tag: str) -> tuple[int | None, str | None, int]:
    """``c:`` time (ms), ``s:`` station and the number of ``c:`` items that are not a
    time, of a tag block's text (without ``*hh``); the last ``c:`` and ``s:`` win."""
    t: int | None = None
    station: str | None = None
    bad = 0
    for item in tag.split(","):
        if item.startswith("c:"):
            t = _epoch_ms(item[2:])
            if t is None:
                bad += 1
        elif item.startswith("s:"):
            station = item[2:] or None
    return t, station, bad


@dataclass(frozen=True, slots=True)
class Reject:
    """A line that was not used, and why.

    :param line: the raw line (for a fragment group, its lines joined by ``\\n``)
    :param reason: reason code, see the module docstring
    :param rx_t_ms: receive time, ms since epoch UTC
    """

    line: str
    reason: str
    detail: str
    rx_t_ms: int


@dataclass(slots=True)
class Framed:
    """Complete AIS messages of one batch, in arrival order (of their last fragment).

    :param payload: six-bit armoured payloads (fragments concatenated)
    :param fill_bits: fill bits of each payload (``int8``)
    :param t_ms: event time, ms since epoch UTC (``int64``)
    :param rx_t_ms: receive time of the last fragment, ms since epoch UTC (``int64``)
    :param station: receiving station from ``s:`` or a trailing field, else ``None``
    :param raw: the raw line(s) of each message, joined by ``\\n``
    :param rejects: rejected and skipped lines
    :param counts: counters of this batch (``lines``, ``sentences``, ``messages``,
        one per reject/skip reason, ``tag_checksum_bad``, ``empty``, ``comment``)
    """

    payload: list[str]
    fill_bits: np.ndarray
    t_ms: np.ndarray
    rx_t_ms: np.ndarray
    channel: list[str]
    station: list[str | None]
    raw: list[str]
    rejects: list[Reject] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.payload)


@dataclass(slots=True)
class _Group:
    lines: list[str]
    payloads: list[str]
    expected: int
    start_t_ms: int
    t_ms: int | None
    station: str | None
    rx_t_ms: int


class Reassembler:
    """State carried between batches: pending fragments and pending ``$PGHP`` times.

    Fragments are keyed by (source, channel, sequence id, fragment count). A group
    whose first fragment is older than ``ttl_ms`` (event time of the same source) is
    dropped as ``fragment_timeout``. Methods take time as an argument; nothing here
    reads a clock.

    :param ttl_ms: how long a multi-sentence message may take to complete, ms of event time
    """

    def __init__(self, ttl_ms: int = 10_000):
        self.ttl_ms = int(ttl_ms)
        self._groups: dict[tuple[str, str, str, int], _Group] = {}
        self._pghp: dict[str, int] = {}

    def __len__(self) -> int:
        """Number of incomplete fragment groups held."""
        return len(self._groups)

    def add(
        self,
        source: str,
        channel: str,
        seq: str,
        total: int,
        num: int,
        payload: str,
        line: str,
        t_ms: int | None,
        rx_t_ms: int,
        station: str | None,
    ) -> tuple[_Group | None, list[Reject]]:
        """Add one fragment; return the completed group (or ``None``) and any rejects.

        :param t_ms: the fragment's own event time if it carries one, ms
        :param rx_t_ms: receive time, ms
        """
        key = (source, channel, seq, total)
        rejects: list[Reject] = []
        group = self._groups.get(key)
        if num == 1:
            if group is not None:
                del self._groups[key]
                rejects.append(
                    Reject(
                        "\n".join(group.lines),
                        "fragment_orphan",
                        f"group {seq or '-'} restarted before fragment {group.expected} of {total}",
                        rx_t_ms,
                    )
                )
            start = t_ms if t_ms is not None else rx_t_ms
            group = _Group([line], [payload], 2, start, t_ms, station, rx_t_ms)
            self._groups[key] = group
            return None, rejects
        if group is None or group.expected != num:
            want = "no group started" if group is None else f"expected fragment {group.expected}"
            if group is not None:
                del self._groups[key]
                rejects.append(
                    Reject(
                        "\n".join(group.lines),
                        "fragment_orphan",
                        f"fragment {num} arrived, {want}",
                        rx_t_ms,
                    )
                )
            rejects.append(
                Reject(line, "fragment_orphan", f"fragment {num} of {total}: {want}", rx_t_ms)
            )
            return None, rejects
        group.lines.append(line)
        group.payloads.append(payload)
        if group.t_ms is None:
            group.t_ms = t_ms
        if group.station is None:
            group.station = station
        if num == total:
            del self._groups[key]
            return group, rejects
        group.expected += 1
        return None, rejects

    def expire(self, source: str, now_ms: int) -> list[Reject]:
        """Drop the groups of ``source`` started more than ``ttl_ms`` before ``now_ms``.

        :param now_ms: current event time of that source, ms
        """
        old = [
            k
            for k, g in self._groups.items()
            if k[0] == source and now_ms - g.start_t_ms > self.ttl_ms
        ]
        return [self._drop(k, f"incomplete after {self.ttl_ms} ms") for k in old]

    def sources(self) -> list[str]:
        """Sources that have incomplete fragment groups."""
        return sorted({k[0] for k in self._groups})

    def flush(self, source: str | None = None) -> list[Reject]:
        """Drop every pending group (of ``source``, or all): the input has ended."""
        keys = [k for k in self._groups if source is None or k[0] == source]
        return [self._drop(k, "incomplete at end of input") for k in keys]

    def _drop(self, key: tuple[str, str, str, int], detail: str) -> Reject:
        group = self._groups.pop(key)
        return Reject(
            "\n".join(group.lines),
            "fragment_timeout",
            f"{len(group.lines)} of {key[3]} fragments: {detail}",
            group.rx_t_ms,
        )


class Deduplicator:
    """Remembers recent payloads to drop the same message heard by several receivers.

    A message is a duplicate when the same payload (and fill bits) was last recorded at
    an event time within ``window_ms`` of its own; a message that is not a duplicate is
    recorded. Shared across sources on purpose.

    Records are kept in two generations, so that forgetting costs nothing per message:
    a new generation starts when a message is more than ``window_ms`` newer than the
    first message of the current one, or when the current one holds ``max_entries / 2``
    records, and the generation before the previous one is then forgotten. A record is
    therefore remembered at least until a message more than ``window_ms`` newer than it
    arrives (for messages in event-time order the rule above holds exactly) and at
    most about ``2 × window_ms``; at most ``max_entries`` are held.

    :param window_ms: de-duplication window, ms of event time
    :param max_entries: most payloads remembered
    """

    def __init__(self, window_ms: int = 5_000, max_entries: int = 1_000_000):
        self.window_ms = int(window_ms)
        self.max_entries = int(max_entries)
        self._cap = max(1, self.max_entries // 2)  # records per generation
        # (payload, fill bits) -> event time it was recorded at, ms
        self._cur: dict[tuple[str, int], int] = {}
        self._old: dict[tuple[str, int], int] = {}
        self._start_t_ms: int | None = None  # first event time of the current generation

    def __len__(self) -> int:
        return len(self._cur) + len(self._old)

    def seen(self, payload: str, fill_bits: int, t_ms: int) -> bool:
        """Record the message; return ``True`` when it is a duplicate.

        :param t_ms: event time of the message, ms
        """
        return self.filter([payload], [fill_bits], [t_ms])[0]

    def filter(
        self, payloads: Sequence[str], fill_bits: Sequence[int], t_ms: Sequence[int]
    ) -> list[bool]:
        """:meth:`seen` of each message in order, in one call; ``True`` = duplicate.

        :param t_ms: event time of each message, ms
        """
        keys = list(zip(payloads, fill_bits, strict=True))
        times = list(t_ms)
        if len(times) != len(keys):
            raise ValueError(f"{len(keys)} payloads but {len(times)} times")
        if not keys:
            return []
        cur, old, window = self._cur, self._old, self.window_ms
        start = self._start_t_ms
        out: list[bool] = []
        dup = out.append
        if (
            start is not None
            and max(times) - start <= window
            and len(cur) + len(keys) <= self._cap
            and cur.keys().isdisjoint(keys)
            and old.keys().isdisjoint(keys)
            and len(set(keys)) == len(keys)
        ):
            # all new and no new generation: recording them one by one is one update
            cur.update(zip(keys, times, strict=True))
            return [False] * len(keys)
        for key, t in zip(keys, times, strict=True):
            if start is None or t - start > window or len(cur) >= self._cap:
                self._old = old = cur
                self._cur = cur = {}
                self._start_t_ms = start = t
            prev = cur.get(key)
            if prev is None:
                prev = old.get(key)
            if prev is not None and -window <= t - prev <= window:
                dup(True)
            else:
                cur[key] = t
                dup(False)
        return out


def nmea_checksums(bodies: Sequence[str]) -> np.ndarray:
    """XOR checksum of each text (the part between ``!``/``$``/``\\`` and ``*``).

    Vectorised: the texts, each followed by one separator byte, become one ``uint8``
    buffer reduced with ``bitwise_xor.reduceat`` at the text starts; the separator is
    XORed out again.

    >>> nmea_checksums(["AIVDM,1,1,,B,19NWuLhuRb5QHfCpPcwj`26B0<02,0"]).tolist()
    [95]
    """
    n = len(bodies)
    if n == 0:
        return np.zeros(0, np.uint8)
    buf = np.frombuffer(("\n".join(bodies) + "\n").encode("ascii"), np.uint8)
    seg = np.fromiter(map(len, bodies), np.int64, n) + 1  # text and separator, bytes
    return np.bitwise_xor.reduceat(buf, np.cumsum(seg) - seg) ^ np.uint8(10)


def _hex2(text: str) -> int:
    """Two hex digits to an int, -1 when they are not two hex digits."""
    return _HEX2.get(text, -1)


def _epoch_ms(text: str) -> int | None:
    """``c:``/trailing epoch in s or ms to ms; ``None`` unless all digits."""
    if not text.isdigit() or len(text) > 14:
        return None
    v = int(text)
    return v if v >= _EPOCH_MS_MIN else v * 1000


def _pghp_ms(fields: list[str]) -> int | None:
    """Time of a ``$PGHP,1,...`` line, ms; ``None`` when the fields are not a valid time."""
    try:
        y, mo, d, h, mi, s, ms = (int(f) for f in fields[2:9])
    except (ValueError, IndexError):
        return None
    if not (
        1970 <= y <= 2100
        and 1 <= mo <= 12
        and 1 <= d <= 31
        and 0 <= h < 24
        and 0 <= mi < 60
        and 0 <= s <= 60
        and 0 <= ms < 1000
    ):
        return None
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) * 1000 + ms


# kinds of pre-parsed lines
_AIS, _PGHP, _OTHER, _TAG_ONLY = 0, 1, 2, 3


@dataclass(slots=True)
class _Singles:
    """Single-sentence lines framed column-wise (see :func:`_frame_singles`)."""

    line: list[int]
    payload: list[str]
    fill: list[int]
    t_ms: list[int]
    rx_t_ms: list[int]
    channel: list[str]
    station: list[str | None]
    bad_checksum: list[tuple[int, str]]  # (line index, detail)
    tag_checksum_bad: int
    tag_time_bad: int


def _frame_singles(
    lines: Sequence[str], rx: list[int], rows: list[tuple[str, ...]], idx: list[int]
) -> _Singles:
    """Frame the lines ``idx`` column by column: each is one whole sentence (fragment 1 of
    1) that :data:`_FAST` matched, with nothing after its checksum, and no ``$PGHP`` time
    can apply to it. The result is what the line-by-line pass gives for the same lines."""
    sel = rows if len(idx) == len(rows) else [rows[i] for i in idx]
    cols = zip(*sel, strict=True)
    tags, stations, digits, tag_hh, bodies, _, _, _, chans, payloads, fills, hhs, _ = cols
    sums = nmea_checksums(bodies)
    given = np.fromiter(map(_HEX2.__getitem__, hhs), np.int64, len(hhs))
    ok = sums == given
    bad_checksum: list[tuple[int, str]] = []
    if not ok.all():
        for k in np.flatnonzero(~ok).tolist():
            bad_checksum.append((idx[k], f"computed {int(sums[k]):02X}, line says {given[k]:02X}"))
    # tag blocks: checksums of all at once; fields of the common forms (``c:`` or
    # ``s:…,c:…``) as :data:`_FAST` found them, of the others one by one
    tagged = [k for k, h in enumerate(tag_hh) if h]
    tag_bad = tag_time_bad = 0
    t_col: list[int | None] = [None] * len(idx)
    st_col: list[str | None] = [None] * len(idx)
    if tagged:
        texts, hh_tag = tags, tag_hh
        if len(tagged) < len(idx):
            texts, hh_tag, stations, digits = (
                tuple(c[k] for k in tagged) for c in (tags, tag_hh, stations, digits)
            )
        tag_ok = nmea_checksums(texts) == np.fromiter(
            map(_HEX2.__getitem__, hh_tag), np.int64, len(tagged)
        )
        tag_bad = int(np.count_nonzero(ok[tagged] & ~tag_ok))
        values = list(map(int, filter(None, digits)))
        if values and min(values) < _EPOCH_MS_MIN:  # some in seconds
            values = [v if v >= _EPOCH_MS_MIN else v * 1000 for v in values]
        times: list[int | None] = list(values)
        stas: list[str | None] = [x or None for x in stations]
        if len(times) < len(texts):  # some in another form: their fields one by one
            ok_l = ok.tolist()
            it = iter(times)
            times = []
            for k, text, d in zip(tagged, texts, digits, strict=True):
                if d:
                    times.append(next(it))
                    continue
                t, st, n_bad = _tag_fields(text)
                times.append(t)
                stas[len(times) - 1] = st
                if ok_l[k]:
                    tag_time_bad += n_bad
        if len(tagged) == len(idx):
            t_col, st_col = times, stas
        else:
            for k, t, st in zip(tagged, times, stas, strict=True):
                t_col[k], st_col[k] = t, st
    keep = range(len(idx)) if not bad_checksum else np.flatnonzero(ok).tolist()
    rx_sel = [rx[i] for i in idx]
    out_t = t_col if len(keep) == len(idx) else [t_col[k] for k in keep]
    out_rx = rx_sel if len(keep) == len(idx) else [rx_sel[k] for k in keep]
    return _Singles(
        line=[idx[k] for k in keep],
        payload=[payloads[k] for k in keep],
        fill=[ord(fills[k]) - 48 for k in keep],
        t_ms=[r if t is None else t for t, r in zip(out_t, out_rx, strict=True)],
        rx_t_ms=out_rx,
        channel=[chans[k] for k in keep],
        station=st_col if len(keep) == len(idx) else [st_col[k] for k in keep],
        bad_checksum=bad_checksum,
        tag_checksum_bad=tag_bad,
        tag_time_bad=tag_time_bad,
    )


def _pick(columns: list[list[Any]], idx: Sequence[int]) -> list[list[Any]]:
    """The rows ``idx`` of parallel lists, in that order."""
    if len(idx) < 2:
        return [[c[j] for j in idx] for c in columns]
    get = itemgetter(*idx)
    return [list(get(c)) for c in columns]


def frame_lines(
    lines: Sequence[str],
    rx_t_ms: Sequence[int] | np.ndarray,
    source: str,
    state: Reassembler,
    dedup: Deduplicator | None = None,
) -> Framed:
    """Frame one batch of raw lines of ``source`` into complete AIS messages.

    Checksums (sentence and tag block) are computed for the whole batch at once
    (:func:`nmea_checksums`); splitting fields and reassembling fragments loop over
    the lines in arrival order because a fragment or a ``$PGHP`` line depends on
    the line before it.

    :param lines: raw lines, without line terminators (trailing ``\\r`` is tolerated)
    :param rx_t_ms: receive time of each line, ms since epoch UTC
    :param source: source id; fragments and ``$PGHP`` times are never mixed across sources
    :param state: reassembly state, updated in place
    :param dedup: optional de-duplication state, updated in place
    :returns: the complete messages, rejected and skipped lines, and counters

    >>> f = frame_lines(["\\c:1334337317*58\\!AIVDM,1,1,,B,19NWuLhuRb5QHfCpPcwj`26B0<02,0*5F"],
    ...                 [0], "t", Reassembler())
    >>> f.payload, f.t_ms.tolist(), f.counts["tag_checksum_bad"]
    (['19NWuLhuRb5QHfCpPcwj`26B0<02'], [1334337317000], 1)
    """
    counts: Counter[str] = Counter()
    rejects: list[tuple[int, Reject]] = []  # (line index, reject): sorted at the end
    n = len(lines)
    counts["lines"] += n
    rx = list(map(int, rx_t_ms))
    if len(rx) != n:
        raise ValueError(f"{n} lines but {len(rx)} receive times")

    # ---- pass 1: split every line (no state) ------------------------------------
    # per candidate: (index, kind, sentence text, tag text or None, tag chk, chk, rest)
    cand_idx: list[int] = []
    cand_kind: list[int] = []
    bodies: list[str] = []
    body_chk: list[int] = []
    tags: list[str] = []
    tag_chk: list[int] = []
    cand_tag: list[int] = []  # index into tags or -1
    trailers: list[str] = []
    parsed: list[tuple[int, int, str, str, str, int] | None] = []  # fast-path fields

    def reject(i: int, reason: str, detail: str) -> None:
        rejects.append((i, Reject(lines[i], reason, detail, rx[i])))
        counts[reason] += 1

    rows, has_pghp = _fast_rows(lines)
    # whole single sentences with no $PGHP time pending are framed column-wise; the
    # other lines (fragments, odd lines, $PGHP feeds) one by one, in order, below
    singles: _Singles | None = None
    loop_idx: Sequence[int] = range(n)
    if rows is not None and not has_pghp and source not in state._pghp:
        single = [g[5] == "1" and g[6] == "1" and not g[12] for g in rows]
        idx = list(compress(range(n), single))
        if idx:
            singles = _frame_singles(lines, rx, rows, idx)
            loop_idx = [] if len(idx) == n else list(compress(range(n), map(not_, single)))
            for i, detail in singles.bad_checksum:
                reject(i, "bad_checksum", detail)
    for i in loop_idx:
        raw = lines[i]
        g = None if rows is None else rows[i]
        if g is None or not g[4] or g[12][-1:].isspace():
            # not the common case in one piece (e.g. surrounding white space): line checks
            g = None
            line = raw.rstrip("\r\n")
            if not line.strip():
                counts["empty"] += 1
                continue
            if line.startswith("#"):
                counts["comment"] += 1
                continue
            if not line.isascii():
                reject(i, "not_ascii", "line holds non-ASCII characters")
                continue
            if len(line) > MAX_LINE_CHARS:
                reject(i, "too_long", f"{len(line)} characters > {MAX_LINE_CHARS}")
                continue
            line = line.strip()
            m = _FAST.fullmatch(line)
            if m is not None:
                g = m.groups()
        if g is not None:
            tg, _, _, tgh, body, s_total, s_num, seq, chan, payload, s_fill, hh, rest = g
            if tgh:  # a tag block (its text may be empty)
                cand_tag.append(len(tags))
                tags.append(tg)
                tag_chk.append(int(tgh, 16))
            else:
                cand_tag.append(-1)
            cand_idx.append(i)
            cand_kind.append(_AIS)
            bodies.append(body)
            body_chk.append(int(hh, 16))
            trailers.append(rest)
            parsed.append(
                (ord(s_total) - 48, ord(s_num) - 48, seq, chan, payload, ord(s_fill) - 48)
            )
            continue
        tag_i = -1
        if line.startswith("\\"):
            end = line.find("\\", 1)
            if end < 0:
                reject(i, "truncated", "tag block not closed by '\\'")
                continue
            tag = line[1:end]
            star = tag.rfind("*")
            tag_i = len(tags)
            if star < 0:
                tags.append(tag)
                tag_chk.append(-1)
            else:
                hh = tag[star + 1 :]
                tags.append(tag[:star])
                tag_chk.append(_hex2(hh.zfill(2)) if len(hh) in (1, 2) else -1)
            line = line[end + 1 :]
            if not line:
                reject(i, "truncated", "tag block without a sentence")
                continue
        if line[0] not in "!$":
            reject(i, "garbage", "line does not start with '!', '$' or a tag block")
            continue
        # trailing ',station,epoch' fields can follow '*hh'; find the checksum star
        star = line.find("*")
        if star < 0:
            reject(i, "truncated", "no '*hh' checksum")
            continue
        body = line[1:star]
        chk = _hex2(line[star + 1 : star + 3])
        if chk < 0:
            reject(
                i,
                "truncated" if len(line) < star + 3 else "bad_checksum",
                f"checksum field {line[star + 1 : star + 3]!r} is not two hex digits",
            )
            continue
        rest = line[star + 3 :]
        addr = body[: body.find(",")] if "," in body else body
        if len(addr) == 5 and addr[2:] in ("VDM", "VDO"):
            kind = _AIS
        elif addr == "PGHP" and body.startswith("PGHP,1,"):
            kind = _PGHP
        else:
            kind = _OTHER
        cand_idx.append(i)
        cand_kind.append(kind)
        bodies.append(body)
        body_chk.append(chk)
        cand_tag.append(tag_i)
        trailers.append(rest)
        parsed.append(None)

    # ---- vectorised checksums -----------------------------------------------------
    sums = nmea_checksums(bodies)
    ok: list[bool] = (sums == np.asarray(body_chk, dtype=np.int64)).tolist() if bodies else []
    tag_ok: list[bool] = (
        (nmea_checksums(tags) == np.asarray(tag_chk, dtype=np.int64)).tolist() if tags else []
    )

    # ---- pass 2: in order, with state ---------------------------------------------
    out_payload: list[str] = []
    out_fill: list[int] = []
    out_t: list[int] = []
    out_rx: list[int] = []
    out_chan: list[str] = []
    out_station: list[str | None] = []
    out_raw: list[str] = []
    max_t: int | None = None

    out_line: list[int] = []  # line index of each message (for the order of rejects)

    def emit(
        payload: str, fill: int, t: int, rxt: int, chan: str, station: str | None, raw: str
    ) -> None:
        out_line.append(cur)
        out_payload.append(payload)
        out_fill.append(fill)
        out_t.append(t)
        out_rx.append(rxt)
        out_chan.append(chan)
        out_station.append(station)
        out_raw.append(raw)

    cur = 0
    n_sentences = 0
    for k, i in enumerate(cand_idx):
        cur = i
        kind = cand_kind[k]
        body = bodies[k]
        if not ok[k]:
            reject(i, "bad_checksum", f"computed {int(sums[k]):02X}, line says {body_chk[k]:02X}")
            continue
        if kind == _OTHER:
            counts["not_ais"] += 1
            rejects.append(
                (
                    i,
                    Reject(
                        lines[i], "not_ais", body[: body.find(",")] if "," in body else body, rx[i]
                    ),
                )
            )
            continue
        if kind == _PGHP:
            t = _pghp_ms(body.split(","))
            if t is None:
                reject(i, "garbage", "$PGHP line without a valid time")
            else:
                state._pghp[source] = t
                counts["pghp"] += 1
            continue
        # tag block
        t_tag: int | None = None
        station: str | None = None
        ti = cand_tag[k]
        if ti >= 0:
            if not tag_ok[ti]:
                counts["tag_checksum_bad"] += 1
            t_tag, station, n_bad = _tag_fields(tags[ti])
            if n_bad:
                counts["tag_time_bad"] += n_bad
        # trailing fields
        t_trail: int | None = None
        rest = trailers[k]
        if rest:
            if not rest.startswith(","):
                reject(i, "garbage", f"unexpected text after the checksum: {rest[:20]!r}")
                continue
            extra = rest[1:].split(",")
            t_trail = _epoch_ms(extra[-1].strip())
            if station is None and extra[0] and extra[0][0] in "br":
                station = extra[0]
        pf = parsed[k]
        if pf is not None:  # fast path: the regex has checked the fields
            total, num, seq, chan, payload, fill = pf
            if num > total:
                reject(i, "garbage", f"bad fragment header {total},{num},{seq},{chan}")
                continue
        else:
            f = body.split(",")
            if len(f) != 7:
                reject(i, "truncated" if len(f) < 7 else "garbage", f"{len(f)} fields, expected 7")
                continue
            _, s_total, s_num, seq, chan, payload, s_fill = f
            if not (
                s_total.isdigit() and s_num.isdigit() and len(s_total) == 1 and len(s_num) == 1
            ):
                reject(i, "garbage", f"fragment fields {s_total!r},{s_num!r} are not digits")
                continue
            total, num = int(s_total), int(s_num)
            if (
                not (1 <= num <= total)
                or len(seq) > 1
                or (seq and not seq.isdigit())
                or len(chan) > 1
            ):
                reject(i, "garbage", f"bad fragment header {s_total},{s_num},{seq},{chan}")
                continue
            if not payload:
                reject(i, "truncated", "empty payload")
                continue
            if payload.translate(_DELETE_ARMOUR):
                reject(i, "garbage", "payload holds characters outside the six-bit armour")
                continue
            if not (len(s_fill) == 1 and s_fill in "012345"):
                reject(i, "bad_fill_bits", f"fill bits {s_fill!r} not in 0..5")
                continue
            fill = int(s_fill)
        if fill and num != total:
            reject(i, "bad_fill_bits", f"fill bits {fill} on fragment {num} of {total}")
            continue
        n_sentences += 1
        t_own = t_tag
        if num == 1:
            pghp = state._pghp.pop(source, None)
            if t_own is None:
                t_own = pghp
        if t_own is None:
            t_own = t_trail
        line_t = t_own if t_own is not None else rx[i]
        if max_t is None or line_t > max_t:
            max_t = line_t
        if total == 1:
            emit(payload, fill, line_t, rx[i], chan, station, lines[i])
            continue
        group, rj = state.add(
            source, chan, seq, total, num, payload, lines[i], t_own, rx[i], station
        )
        for r in rj:
            counts[r.reason] += 1
            rejects.append((i, r))
        if group is not None:
            t = group.t_ms if group.t_ms is not None else group.start_t_ms
            emit(
                "".join(group.payloads), fill, t, rx[i], chan, group.station, "\n".join(group.lines)
            )

    if singles is not None and singles.line:
        n_sentences += len(singles.line)
        if singles.tag_checksum_bad:
            counts["tag_checksum_bad"] += singles.tag_checksum_bad
        if singles.tag_time_bad:
            counts["tag_time_bad"] += singles.tag_time_bad
        t_max = max(singles.t_ms)
        if max_t is None or t_max > max_t:
            max_t = t_max
        columns: list[list[Any]] = [
            singles.line, singles.payload, singles.fill, singles.t_ms, singles.rx_t_ms,
            singles.channel, singles.station, [lines[i] for i in singles.line],
        ]  # fmt: skip
        if out_line:  # merge both in line order (a line gives at most one message)
            own: list[list[Any]] = [out_line, out_payload, out_fill, out_t, out_rx]
            own += [out_chan, out_station, out_raw]
            columns = [a + b for a, b in zip(own, columns, strict=True)]
            columns = _pick(columns, sorted(range(len(columns[0])), key=columns[0].__getitem__))
        out_line, out_payload, out_fill, out_t, out_rx, out_chan, out_station, out_raw = columns
    if max_t is not None:
        timed_out = state.expire(source, max_t)
        counts["fragment_timeout"] += len(timed_out)
        rejects.extend((n, r) for r in timed_out)
    if dedup is not None and out_payload:
        # de-duplication after reassembly, in arrival order (one call per batch)
        dup = dedup.filter(out_payload, out_fill, out_t)
        if any(dup):
            detail = f"same payload within {dedup.window_ms} ms"
            kept = list(compress(range(len(dup)), map(not_, dup)))
            for j in compress(range(len(dup)), dup):
                rejects.append((out_line[j], Reject(out_raw[j], "duplicate", detail, out_rx[j])))
            counts["duplicate"] += len(dup) - len(kept)
            out_payload, out_fill, out_t, out_rx, out_chan, out_station, out_raw = _pick(
                [out_payload, out_fill, out_t, out_rx, out_chan, out_station, out_raw], kept
            )
    counts["sentences"] += n_sentences
    counts["messages"] += len(out_payload)
    return Framed(
        payload=out_payload,
        fill_bits=np.asarray(out_fill, dtype=np.int8),
        t_ms=np.asarray(out_t, dtype=np.int64),
        rx_t_ms=np.asarray(out_rx, dtype=np.int64),
        channel=out_chan,
        station=out_station,
        raw=out_raw,
        rejects=[r for _, r in sorted(rejects, key=lambda x: x[0])],
        counts=counts,
    )


def line_time_ms(line: str) -> int | None:
    """The event time a single line carries by itself, ms; ``None`` when it has none.

    Used for replay pacing: tag block ``c:``, a ``$PGHP`` line's own time (the time of
    the sentence after it), or a trailing epoch field. No checksum is verified here.

    >>> line_time_ms("\\\\s:2573238,c:1733782034*0A\\\\!BSVDM,1,1,,A,13o4g`00000I2ENRH4g83S0L088C,0*3F")
    1733782034000
    >>> line_time_ms("$PGHP,1,2010,6,11,11,46,11,390,231,45,992190934,1,2B*5B")
    1276256771390
    """
    if line.startswith("\\"):
        end = line.find("\\", 1)
        if end > 0:
            for item in line[1:end].split("*")[0].split(","):
                if item.startswith("c:"):
                    return _epoch_ms(item[2:])
            line = line[end + 1 :]
    if line.startswith("$PGHP,1,"):
        return _pghp_ms(line.split("*")[0].split(","))
    star = line.find("*")
    if star > 0 and len(line) > star + 4 and line[star + 3] == ",":
        return _epoch_ms(line.rsplit(",", 1)[-1].strip())
    return None
