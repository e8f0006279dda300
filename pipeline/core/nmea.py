"""NMEA 0183 / IEC 61162 framing of raw AIS lines: the pure first stage of AIS ingest.

:func:`frame_lines` turns a batch of raw lines of one source into complete AIS
payloads with their event time, and a list of rejected or skipped lines, each with
a reason code. No I/O, no clock: every time is passed in.

What a line may look like::

    !AIVDM,1,1,,B,13u?etPv2;0n:dDPwUM1U1Cb069D,0*24                 plain sentence
    \\s:rEV02,c:1334337317*58\\!AIVDM,1,1,,B,19NW...,0*5F           NMEA 4.10 tag block
    $PGHP,1,2010,6,11,11,46,11,390,231,45,992190934,1,2B*5B         Gatehouse time of the NEXT sentence
    !AIVDM,1,1,,A,15B4FT5000JRP>PE6E68Nbkl0PS5,0*70,b003669794,1272412827   trailing station, epoch
    2016-03-31 23:59:12, !AIVDM,1,1,,A,...,0*2C                     a logger's receive time first
    !AIVDM,1,1,6,,13aGD7pP0?0Ho@2NKnOR4Ow80000,0,0*12                extra field, empty channel
    !AIVDM,...,0*5F!AIVDM,...,0*12   !AIVDM,...,0*5F\\r\\n!AIVDM,...  several sentences on a line

The text before a sentence or tag block (its *prefix*) is read by the source's prefix
policy (:mod:`pipeline.core.nmea_prefix`): ``auto`` (a receive time when it holds one,
else stripped), ``strip``, ``none`` (rejected as ``garbage``) or a time format. A line
with several sentences, or with a line terminator written out as text (``\\r\\n``,
``\\x0d\\x0a``), is cut into one line per sentence first; each keeps the line's prefix.
Fields after the fill bits are ignored and an empty channel is accepted. Each of
these shapes is counted (``quirk.prefix_time``, ``quirk.prefix_stripped``,
``quirk.prefix_time_bad``, ``quirk.multi_sentence``, ``quirk.escaped_eol``,
``quirk.extra_fields``, ``quirk.empty_channel``, ``quirk.tag_checksum_zero``), never
rejected, and framed column-wise like plain sentences.

Event time of a message, first available of: tag block ``c:`` (seconds, or
milliseconds when ``c >= 10**11``), the last ``$PGHP`` line of the source before
the sentence, the trailing epoch field, the prefix time, the receive time. A
multi-sentence message takes the time of its first fragment that carries one.

Multi-sentence messages are reassembled from the sentence's own fragment fields
(count, number, sequence id) per (source, talker and formatter, channel, sequence
id, count), in order; a fragment with a trusted tag block ``g:`` group is keyed by
(source, group id) instead and may arrive in any order, among any other traffic
(satellite feeds). ``s:`` is kept as the receiving station.

Tag block checksum policy: a tag block whose checksum is wrong does **not** reject
the sentence. The sentence has its own checksum, which is what protects the payload;
the tag block only adds metadata. Its fields are not trusted either: the event time
falls back as if there were no tag block, and ``tag_checksum_bad`` goes up. One
exception: ``*00`` is what writers put when they compute no tag checksum (a whole
real feed does, ``amsa_risky_nmea_timestamped.txt``); such a tag block's fields are
kept (a time must still be all digits) and ``quirk.tag_checksum_zero`` says so.
:attr:`Reassembler.strict_tag_blocks` rejects both (``bad_checksum``, the detail says
"tag block checksum").

Reject reasons (dead letters): ``bad_checksum`` (of the sentence, or of the tag block
under the strict tag block policy), ``truncated``, ``bad_fill_bits``, ``fragment_timeout``,
``fragment_orphan``, ``not_ascii``, ``too_long``, ``garbage``.
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

from pipeline.core.nmea_prefix import PrefixPolicy, PrefixTimes, prefix_policy, prefix_times

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
#: the common case in one match: optional text before the sentence (the prefix: up to the
#: first ``!``, ``$`` or ``\\``, not starting with ``#`` or white space), optional tag block with
#: checksum, a well-formed VDM/VDO sentence (extra fields after the fill bits allowed),
#: optional trailing fields; anything else takes the slow path, which finds the precise
#: reason. Groups: prefix, tag text, its ``s:`` station and ``c:`` time digits when the
#: text is ``c:<time>`` or ``s:<station>,c:<time>`` (the common forms), tag checksum,
#: sentence body, fragment count, number, sequence id, channel, payload, fill bits,
#: extra fields, checksum, trailing text.
_FAST = re.compile(
    r"((?:[^!$\\\s#][^!$\\\n]*)?)"
    r"(?:\\((?:s:([^,\\*]*),)?c:([0-9]{1,14})(?=\*)|[^\\*]*)\*([0-9A-Fa-f]{2})\\)?[!$]"
    r"((?:[A-Z0-9-]{2}VD[MO]),([1-9]),([1-9]),([0-9]?),([^,*]?),([0-W`-w]+),([0-5])((?:,[^,*\n]*)*))"
    r"\*([0-9A-Fa-f]{2})(.*)"
)
#: the same for every line of a text at once: one match per line, all groups empty
#: when the line is not the common case
_FAST_LINES = re.compile(rf"^(?:{_FAST.pattern}|.*)$", re.MULTILINE)
#: column of each :data:`_FAST` group
(_G_PREFIX, _G_TAG, _G_STATION, _G_TIME, _G_TAG_HH, _G_BODY, _G_TOTAL, _G_NUM, _G_SEQ,
 _G_CHAN, _G_PAYLOAD, _G_FILL, _G_EXTRA, _G_HH, _G_REST) = range(15)  # fmt: skip
#: where a sentence or tag block starts in a line that does not start with one: the
#: first tag block or AIS sentence, else (:data:`_START_ANY`) the first NMEA sentence
_START_AIS = re.compile(r"\\|[!$][A-Z0-9-]{2}VD[MO],")
_START_ANY = re.compile(r"[!$][A-Z][A-Z0-9]{1,7},")


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


def _tag_fields(tag: str) -> tuple[int | None, str | None, str | None, int]:
    """``c:`` time (ms), ``s:`` station, ``g:`` group id and the number of ``c:`` items that
    are not a time, of a tag block's text (without ``*hh``); the last of each wins."""
    t: int | None = None
    station: str | None = None
    group: str | None = None
    bad = 0
    for item in tag.split(","):
        if item.startswith("c:"):
            t = _epoch_ms(item[2:])
            if t is None:
                bad += 1
        elif item.startswith("s:"):
            station = item[2:] or None
        elif item.startswith("g:"):
            parts = item[2:].split("-")
            group = parts[2] if len(parts) == 3 and parts[2] else None
    return t, station, group, bad


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
    payloads: list[str | None]  # by fragment number - 1
    expected: int  # next fragment number in order (sequence-id groups)
    start_t_ms: int
    t_ms: int | None
    station: str | None
    rx_t_ms: int
    fill: int = 0  # fill bits of the last fragment


#: key of a fragment group: (source, talker + formatter + channel or ``g:`` + group id,
#: sequence id, fragment count)
_Key = tuple[str, str, str, int]


class Reassembler:
    """State carried between batches: pending fragments and pending ``$PGHP`` times; and
    the framing policy of the sources it serves.

    Fragments are keyed by (source, talker and formatter, channel, sequence id, fragment
    count) and must arrive in order, as receivers send them; a fragment that carries
    a trusted tag block ``g:`` group (satellite and aggregator feeds, which interleave
    the fragments of several messages with other traffic) is keyed by (source, group
    id) instead, and the fragments of such a group may arrive in any order. A group
    whose first fragment is older than ``ttl_ms`` (event time of the same source) is
    dropped as ``fragment_timeout``. Methods take time as an argument; nothing here
    reads a clock.

    :param ttl_ms: how long a multi-sentence message may take to complete, ms of event time
    :param strict_tag_blocks: reject a sentence whose tag block checksum is wrong
        (``bad_checksum``) instead of decoding it without the tag block's fields
    """

    def __init__(self, ttl_ms: int = 10_000, *, strict_tag_blocks: bool = False):
        self.ttl_ms = int(ttl_ms)
        self.strict_tag_blocks = bool(strict_tag_blocks)
        self._groups: dict[_Key, _Group] = {}
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
        *,
        talker: str = "",
        group: str | None = None,
        fill: int = 0,
    ) -> tuple[_Group | None, list[Reject]]:
        """Add one fragment; return the completed group (or ``None``) and any rejects.

        :param t_ms: the fragment's own event time if it carries one, ms
        :param rx_t_ms: receive time, ms
        :param talker: talker and formatter of the sentence (``AIVDM``)
        :param group: the ``g:`` group id of its (trusted) tag block, if any
        :param fill: the fragment's fill bits (those of the last fragment are the message's)
        """
        frag = (num, payload, line, t_ms, rx_t_ms, station, fill)
        if group is not None:
            return self._add_any_order((source, f"g:{group}", "", total), *frag)
        key = (source, talker + channel, seq, total)
        rejects: list[Reject] = []
        group_ = self._groups.get(key)
        if num == 1:
            if group_ is not None:
                del self._groups[key]
                rejects.append(
                    Reject(
                        "\n".join(group_.lines),
                        "fragment_orphan",
                        f"group {seq or '-'} restarted before fragment {group_.expected} of {total}",
                        rx_t_ms,
                    )
                )
            self._groups[key] = self._new(total, *frag)
            return None, rejects
        if group_ is None or group_.expected != num:
            want = "no group started" if group_ is None else f"expected fragment {group_.expected}"
            if group_ is not None:
                del self._groups[key]
                rejects.append(
                    Reject(
                        "\n".join(group_.lines),
                        "fragment_orphan",
                        f"fragment {num} arrived, {want}",
                        rx_t_ms,
                    )
                )
            rejects.append(
                Reject(line, "fragment_orphan", f"fragment {num} of {total}: {want}", rx_t_ms)
            )
            return None, rejects
        return self._fill(key, group_, *frag), rejects

    def _add_any_order(
        self,
        key: _Key,
        num: int,
        payload: str,
        line: str,
        t_ms: int | None,
        rx_t_ms: int,
        station: str | None,
        fill: int,
    ) -> tuple[_Group | None, list[Reject]]:
        """:meth:`add` of a fragment of a ``g:`` group: any order; a fragment number seen
        twice restarts the group (the earlier fragments become ``fragment_orphan``)."""
        rejects: list[Reject] = []
        group = self._groups.get(key)
        if group is not None and group.payloads[num - 1] is not None:
            del self._groups[key]
            rejects.append(
                Reject(
                    "\n".join(group.lines),
                    "fragment_orphan",
                    f"group {key[1]} restarted: fragment {num} of {key[3]} arrived again",
                    rx_t_ms,
                )
            )
            group = None
        frag = (num, payload, line, t_ms, rx_t_ms, station, fill)
        if group is None:
            self._groups[key] = self._new(key[3], *frag)
            return None, rejects
        return self._fill(key, group, *frag), rejects

    @staticmethod
    def _new(
        total: int,
        num: int,
        payload: str,
        line: str,
        t_ms: int | None,
        rx_t_ms: int,
        station: str | None,
        fill: int,
    ) -> _Group:
        payloads: list[str | None] = [None] * total
        payloads[num - 1] = payload
        start = t_ms if t_ms is not None else rx_t_ms
        return _Group([line], payloads, num + 1, start, t_ms, station, rx_t_ms, fill)

    def _fill(
        self,
        key: _Key,
        group: _Group,
        num: int,
        payload: str,
        line: str,
        t_ms: int | None,
        rx_t_ms: int,
        station: str | None,
        fill: int,
    ) -> _Group | None:
        """Add fragment ``num`` to ``group``; the group when it is complete (and forgotten)."""
        if num == key[3]:
            group.fill = fill
        group.lines.append(line)
        group.payloads[num - 1] = payload
        if group.t_ms is None:
            group.t_ms = t_ms
        if group.station is None:
            group.station = station
        group.expected = num + 1
        if len(group.lines) == key[3] and None not in group.payloads:
            del self._groups[key]
            return group
        return None

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

    def _drop(self, key: _Key, detail: str) -> Reject:
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
_AIS, _PGHP, _OTHER = 0, 1, 2

#: a line to cut into one line per sentence first: a line terminator written out as
#: text (``\r\n``, ``\x0d\x0a``), or a sentence or tag block after a sentence's checksum
_MULTI = re.compile(
    r"\\r\\n|\\x0[dD]\\x0[aA]"
    r"|,[0-5]?\*[0-9A-Fa-f]{2}(?!\\[!$])[^\n]*?(?:[!$][A-Z0-9-]{2}VD[MO],|\\[a-z]:)"
)
_ESCAPED_EOL = re.compile(r"\\r\\n|\\x0[dD]\\x0[aA]")
#: where :func:`_split_multi` cuts: after a sentence (and any fields after it) where the
#: next sentence or tag block starts; the separators between them go
_CUT = re.compile(
    r"(,[0-5]?\*[0-9A-Fa-f]{2}(?!\\[!$])[^\n\x1e]*?)[ \t,;]*"
    r"(?=[!$][A-Z0-9-]{2}VD[MO],|\\[a-z]:)"
)
#: the mark of a cut (a character no NMEA line holds)
_CUT_MARK = "\x1e"
#: the end of a sentence (fill bits or last field, checksum; not a tag block's end, which
#: ``\\`` and the sentence follow) and the start of the next sentence or tag block
_SENTENCE_END = re.compile(r",[0-5]?\*[0-9A-Fa-f]{2}(?!\\[!$])")
_NEXT_START = re.compile(r"[!$][A-Z0-9-]{2}VD[MO],|\\[a-z]:")
#: what may separate two sentences on one line
_SEPARATORS = " \t,;"


def _split_multi(
    lines: Sequence[str], rx: list[int], counts: Counter[str], maybe: Sequence[int]
) -> tuple[Sequence[str], list[int]] | None:
    """Lines with several sentences, or with line terminators written out as text, cut
    into one line per sentence (each keeps the line's receive time, and the text before
    the line's first sentence, so a logger's time applies to all of them); the other
    lines unchanged. ``None`` when no line needs it. The lines to cut are cut by two
    regex substitutions over their joined text.

    :param maybe: the only lines that may need it (those not framed column-wise: a line
        :data:`_FAST` did not match, or with text after the checksum)

    Counters: ``quirk.multi_sentence`` (lines added by cutting), ``quirk.escaped_eol``.
    """
    search = _MULTI.search
    hit = [i for i in maybe if search(lines[i])]
    if not hit:
        return None
    text = "\n".join([lines[i] for i in hit])
    if _CUT_MARK in text:  # the mark is in the data: cut these lines one by one
        rows = [_sentences_of(lines[i], counts) for i in hit]
    else:
        text, n_eol = _ESCAPED_EOL.subn(_CUT_MARK, text)
        if n_eol:
            counts["quirk.escaped_eol"] += n_eol
        text = _CUT.sub("\\1" + _CUT_MARK, text)
        rows = [_with_prefix(row.split(_CUT_MARK)) for row in text.split("\n")]
    out: list[str] = []
    out_rx: list[int] = []
    prev = 0
    for i, pieces in zip(hit, rows, strict=True):
        out += lines[prev:i]
        out_rx += rx[prev:i]
        out += pieces
        out_rx += [rx[i]] * len(pieces)
        prev = i + 1
    out += lines[prev:]
    out_rx += rx[prev:]
    if len(out) > len(lines):
        counts["quirk.multi_sentence"] += len(out) - len(lines)
    return out, out_rx


def _with_prefix(pieces: list[str]) -> list[str]:
    """The non-empty pieces of a cut line, each sentence after the first with the line's
    prefix (the text before its first sentence); at least one piece."""
    pieces = [p for p in pieces if p.strip(_SEPARATORS)]
    if len(pieces) > 1 and pieces[0][:1] not in ("!", "$", "\\"):
        m = _START_AIS.search(pieces[0])
        if m is not None and m.start() > 0:
            prefix = pieces[0][: m.start()]
            pieces[1:] = [prefix + p if p[:1] in ("!", "$", "\\") else p for p in pieces[1:]]
    return pieces or [""]


def _sentences_of(line: str, counts: Counter[str]) -> list[str]:
    """The sentences of one line, one by one (see :func:`_split_multi`, which cuts many
    lines at once); at least one (maybe empty)."""
    text, n_eol = _ESCAPED_EOL.subn("\n", line)
    if n_eol:
        counts["quirk.escaped_eol"] += n_eol
    head = "" if text[:1] in ("!", "$", "\\") else text
    m = _START_AIS.search(head)
    prefix = head[: m.start()] if m else ""
    pieces: list[str] = []
    for part in text.split("\n"):
        while part:
            end = _SENTENCE_END.search(part)
            nxt = _NEXT_START.search(part, end.end()) if end else None
            piece = part if nxt is None else part[: nxt.start()].rstrip(_SEPARATORS)
            if pieces and piece[:1] in ("!", "$", "\\"):
                piece = prefix + piece  # the line's prefix (a logger's time) applies to all
            pieces.append(piece)
            part = "" if nxt is None else part[nxt.start() :]
    return [p for p in pieces if p.strip(_SEPARATORS)] or [""]


@dataclass(slots=True)
class _Batch:
    """One call of :func:`frame_lines`: its input (after :func:`_split_multi`), policies,
    and what it has found so far."""

    lines: Sequence[str]
    rx: list[int]
    source: str
    state: Reassembler
    policy: PrefixPolicy
    counts: Counter[str]
    rejects: list[tuple[int, Reject]] = field(default_factory=list)  # (line index, reject)

    def reject(self, i: int, reason: str, detail: str) -> None:
        self.rejects.append((i, Reject(self.lines[i], reason, detail, self.rx[i])))
        self.counts[reason] += 1


@dataclass(slots=True)
class _Out:
    """Complete messages in the making, as columns (see :class:`Framed`)."""

    line: list[int] = field(default_factory=list)  # line index (for the order of rejects)
    payload: list[str] = field(default_factory=list)
    fill: list[int] = field(default_factory=list)
    t_ms: list[int] = field(default_factory=list)
    rx_t_ms: list[int] = field(default_factory=list)
    channel: list[str] = field(default_factory=list)
    station: list[str | None] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    n_sentences: int = 0
    max_t: int | None = None

    def columns(self) -> list[list[Any]]:
        return [self.line, self.payload, self.fill, self.t_ms, self.rx_t_ms, self.channel,
                self.station, self.raw]  # fmt: skip

    def set_columns(self, columns: list[list[Any]]) -> None:
        (self.line, self.payload, self.fill, self.t_ms, self.rx_t_ms, self.channel,
         self.station, self.raw) = columns  # fmt: skip

    def emit(
        self, i: int, payload: str, fill: int, t: int, rx: int, chan: str, station: str | None,
        raw: str,
    ) -> None:  # fmt: skip
        self.line.append(i)
        self.payload.append(payload)
        self.fill.append(fill)
        self.t_ms.append(t)
        self.rx_t_ms.append(rx)
        self.channel.append(chan)
        self.station.append(station)
        self.raw.append(raw)

    def saw_time(self, t: int) -> None:
        if self.max_t is None or t > self.max_t:
            self.max_t = t


def _select_singles(
    b: _Batch, rows: list[tuple[str, ...]] | None, has_pghp: bool
) -> tuple[list[int], Sequence[int]]:
    """Lines framed column-wise (whole single sentences, nothing after the checksum, no
    ``$PGHP`` time pending, a prefix only where the policy allows one), and the others."""
    n = len(b.lines)
    if rows is None or has_pghp or b.source in b.state._pghp:
        return [], range(n)
    if b.policy.allow:
        single = [g[_G_TOTAL] == "1" and g[_G_NUM] == "1" and not g[_G_REST] for g in rows]
    else:
        single = [
            g[_G_TOTAL] == "1" and g[_G_NUM] == "1" and not g[_G_REST] and not g[_G_PREFIX]
            for g in rows
        ]
    idx = list(compress(range(n), single))
    if not idx:
        return [], range(n)
    return idx, [] if len(idx) == n else list(compress(range(n), map(not_, single)))


def _tag_values(
    texts: Sequence[str], digits: Sequence[str], stations: Sequence[str]
) -> tuple[list[int | None], list[str | None], list[int]]:
    """``c:`` time (ms), ``s:`` station and number of bad ``c:`` items of tag blocks; the
    common forms (``digits`` found by :data:`_FAST`) without a per-tag parse."""
    values = list(map(int, filter(None, digits)))
    if values and min(values) < _EPOCH_MS_MIN:  # some in seconds
        values = [v if v >= _EPOCH_MS_MIN else v * 1000 for v in values]
    times: list[int | None] = list(values)
    stas: list[str | None] = [x or None for x in stations]
    n_bad = [0] * len(texts)
    if len(times) < len(texts):  # some in another form: their fields one by one
        it = iter(values)
        times = []
        for j, (text, d) in enumerate(zip(texts, digits, strict=True)):
            if d:
                times.append(next(it))
                continue
            t, st, _, n_bad[j] = _tag_fields(text)
            times.append(t)
            stas[j] = st
    return times, stas, n_bad


def _frame_singles(b: _Batch, rows: list[tuple[str, ...]], idx: list[int], out: _Out) -> None:
    """Frame the lines ``idx`` column by column into ``out`` (rejects and counters into
    ``b``): each is one whole sentence (fragment 1 of 1) that :data:`_FAST` matched, with
    nothing after its checksum, and no ``$PGHP`` time can apply to it. The result is what
    the line-by-line pass gives for the same lines."""
    sel = rows if len(idx) == len(rows) else [rows[i] for i in idx]
    cols = zip(*sel, strict=True)
    prefixes, tags, stations, digits, tag_hh, bodies, _, _, _, chans, payloads, fills, extras = (
        next(cols) for _ in range(13)
    )
    hhs = next(cols)
    m = len(idx)
    sums = nmea_checksums(bodies)
    given = np.fromiter(map(_HEX2.__getitem__, hhs), np.int64, m)
    keep = sums == given
    if not keep.all():
        for k in np.flatnonzero(~keep).tolist():
            b.reject(
                idx[k], "bad_checksum", f"computed {int(sums[k]):02X}, line says {given[k]:02X}"
            )
    t_col: list[int | None] = [None] * m
    st_col: list[str | None] = [None] * m
    tagged = [k for k, h in enumerate(tag_hh) if h]
    if tagged:
        _singles_tags(b, idx, keep, tagged, (tags, tag_hh, stations, digits), t_col, st_col)
    pt = _singles_prefix_times(b, prefixes, keep)
    if any(extras):
        _count(b.counts, "quirk.extra_fields", np.fromiter(map(bool, extras), bool, m) & keep)
    if "" in chans:
        _count(b.counts, "quirk.empty_channel", np.fromiter(map(not_, chans), bool, m) & keep)
    kept = range(m) if keep.all() else np.flatnonzero(keep).tolist()
    if not kept:
        return
    rx_sel = [b.rx[i] for i in idx]
    if pt is not None:  # a prefix time where the tag block gives none
        for k in np.flatnonzero(pt.has_t).tolist():
            if t_col[k] is None:
                t_col[k] = int(pt.t_ms[k])
    full = len(kept) == m
    out_t = t_col if full else [t_col[k] for k in kept]
    out_rx = rx_sel if full else [rx_sel[k] for k in kept]
    t_ms = [r if t is None else t for t, r in zip(out_t, out_rx, strict=True)]
    out.n_sentences += len(kept)
    out.saw_time(max(t_ms))
    lines = b.lines
    out.set_columns(
        [
            [idx[k] for k in kept],
            [payloads[k] for k in kept],
            [ord(fills[k]) - 48 for k in kept],
            t_ms,
            out_rx,
            [chans[k] for k in kept],
            st_col if full else [st_col[k] for k in kept],
            [lines[idx[k]] for k in kept],
        ]
    )


def _count(counts: Counter[str], key: str, mask: np.ndarray) -> None:
    """Add the true entries of ``mask`` to ``counts[key]`` (no key for none)."""
    n = int(mask.sum())
    if n:
        counts[key] += n


def _singles_tags(
    b: _Batch,
    idx: list[int],
    keep: np.ndarray,
    tagged: list[int],
    cols: tuple[tuple[str, ...], ...],
    t_col: list[int | None],
    st_col: list[str | None],
) -> None:
    """The tag blocks of column-wise lines: checksums of all at once, the tag block policy
    (see :func:`frame_lines`), and the times and stations of the trusted ones into
    ``t_col`` / ``st_col``. A line rejected for its tag block is cleared in ``keep``."""
    tags, tag_hh, stations, digits = cols
    texts, hh_tag = tags, tag_hh
    if len(tagged) < len(idx):
        texts, hh_tag, stations, digits = (tuple(c[k] for k in tagged) for c in cols)
    tag_ok = nmea_checksums(texts) == np.fromiter(
        map(_HEX2.__getitem__, hh_tag), np.int64, len(tagged)
    )
    trusted = tag_ok
    bad = keep[tagged] & ~tag_ok
    if bad.any():
        bad_j = np.flatnonzero(bad).tolist()
        if b.state.strict_tag_blocks:
            for j in bad_j:
                b.reject(idx[tagged[j]], "bad_checksum", _tag_detail(texts[j], hh_tag[j]))
                keep[tagged[j]] = False
        else:
            b.counts["tag_checksum_bad"] += len(bad_j)
            zero = [j for j in bad_j if hh_tag[j] == "00"]
            if zero:
                b.counts["quirk.tag_checksum_zero"] += len(zero)
                trusted = tag_ok.copy()
                trusted[zero] = True
    times, stas, n_bad = _tag_values(texts, digits, stations)
    use = (trusted & keep[tagged]).tolist()
    for j, k in enumerate(tagged):
        if use[j]:
            t_col[k], st_col[k] = times[j], stas[j]
            if n_bad[j]:
                b.counts["tag_time_bad"] += n_bad[j]


def _tag_detail(text: str, hh: str) -> str:
    return f"tag block checksum: computed {int(nmea_checksums([text])[0]):02X}, line says {hh}"


def _singles_prefix_times(
    b: _Batch, prefixes: tuple[str, ...], keep: np.ndarray
) -> PrefixTimes | None:
    """Receive times of the prefixes of column-wise lines (``None`` when none has a prefix),
    and their ``quirk.prefix_*`` counters over the lines kept."""
    if not any(prefixes):
        return None
    pt = prefix_times(prefixes, b.policy)
    nonempty = np.fromiter(map(bool, prefixes), bool, len(prefixes)) & keep
    _count_prefixes(b.counts, int(nonempty.sum()), int((pt.has_t & keep).sum()), b.policy)
    return pt


def _count_prefixes(
    counts: Counter[str], n_prefixed: int, n_time: int, policy: PrefixPolicy
) -> None:
    if n_time:
        counts["quirk.prefix_time"] += n_time
    if n_prefixed > n_time:
        key = "quirk.prefix_time_bad" if policy.strict_format else "quirk.prefix_stripped"
        counts[key] += n_prefixed - n_time


@dataclass(slots=True)
class _Cands:
    """Lines framed one by one, split into their parts (pass 1 of :func:`frame_lines`)."""

    idx: list[int] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    chk: list[int] = field(default_factory=list)
    tag: list[int] = field(default_factory=list)  # index into tags, or -1
    trailer: list[str] = field(default_factory=list)
    prefix: list[str] = field(default_factory=list)
    parsed: list[tuple[int, int, str, str, str, int, bool] | None] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    tag_chk: list[int] = field(default_factory=list)

    def add(
        self, i: int, kind: int, body: str, chk: int, tag_i: int, rest: str, prefix: str,
        parsed: tuple[int, int, str, str, str, int, bool] | None,
    ) -> None:  # fmt: skip
        self.idx.append(i)
        self.kind.append(kind)
        self.body.append(body)
        self.chk.append(chk)
        self.tag.append(tag_i)
        self.trailer.append(rest)
        self.prefix.append(prefix)
        self.parsed.append(parsed)


def _split_lines(b: _Batch, rows: list[tuple[str, ...]] | None, loop_idx: Sequence[int]) -> _Cands:
    """Pass 1: split each line of ``loop_idx`` into prefix, tag block, sentence body,
    checksum and trailing text (no state); lines that can not be split are rejected."""
    c = _Cands()
    for i in loop_idx:
        g = None if rows is None else rows[i]
        if g is None or not g[_G_BODY] or g[_G_REST][-1:].isspace():
            checked = _check_line(b, i)
            if isinstance(checked, str):
                _split_slow(b, i, checked, c)
            if checked is None or isinstance(checked, str):
                continue
            g = checked
        if g[_G_PREFIX] and not b.policy.allow:
            b.reject(i, "garbage", "text before the sentence (prefix policy 'none')")
            continue
        if g[_G_TAG_HH]:  # a tag block (its text may be empty)
            tag_i = len(c.tags)
            c.tags.append(g[_G_TAG])
            c.tag_chk.append(int(g[_G_TAG_HH], 16))
        else:
            tag_i = -1
        parsed = (
            ord(g[_G_TOTAL]) - 48, ord(g[_G_NUM]) - 48, g[_G_SEQ], g[_G_CHAN], g[_G_PAYLOAD],
            ord(g[_G_FILL]) - 48, bool(g[_G_EXTRA]),
        )  # fmt: skip
        c.add(i, _AIS, g[_G_BODY], int(g[_G_HH], 16), tag_i, g[_G_REST], g[_G_PREFIX], parsed)
    return c


def _check_line(b: _Batch, i: int) -> tuple[str, ...] | str | None:
    """Line checks of a line that is not the common case in one piece: ``None`` when it is
    done with (empty, comment, rejected), its :data:`_FAST` groups when it matches once
    stripped, else the stripped line for :func:`_split_slow`."""
    line = b.lines[i].rstrip("\r\n")
    if not line.strip():
        b.counts["empty"] += 1
        return None
    if line.startswith("#"):
        b.counts["comment"] += 1
        return None
    if not line.isascii():
        b.reject(i, "not_ascii", "line holds non-ASCII characters")
        return None
    if len(line) > MAX_LINE_CHARS:
        b.reject(i, "too_long", f"{len(line)} characters > {MAX_LINE_CHARS}")
        return None
    line = line.strip()
    m = _FAST.fullmatch(line)
    return line if m is None else m.groups()


def _split_slow(b: _Batch, i: int, line: str, c: _Cands) -> None:
    """Pass 1 of a line :data:`_FAST` does not match: find its parts one by one."""
    prefix = ""
    if line[0] not in "\\!$":
        m = _START_AIS.search(line) or _START_ANY.search(line)
        if m is None:
            b.reject(i, "garbage", "no sentence or tag block in the line")
            return
        prefix, line = line[: m.start()], line[m.start() :]
        if not b.policy.allow:
            b.reject(i, "garbage", "text before the sentence (prefix policy 'none')")
            return
    tag_i = -1
    if line.startswith("\\"):
        end = line.find("\\", 1)
        if end < 0:
            b.reject(i, "truncated", "tag block not closed by '\\'")
            return
        tag = line[1:end]
        star = tag.rfind("*")
        tag_i = len(c.tags)
        if star < 0:
            c.tags.append(tag)
            c.tag_chk.append(-1)
        else:
            hh = tag[star + 1 :]
            c.tags.append(tag[:star])
            c.tag_chk.append(_hex2(hh.zfill(2)) if len(hh) in (1, 2) else -1)
        line = line[end + 1 :]
        if not line:
            b.reject(i, "truncated", "tag block without a sentence")
            return
    if line[0] not in "!$":
        b.reject(i, "garbage", "line does not start with '!', '$' or a tag block")
        return
    # trailing ',station,epoch' fields can follow '*hh'; find the checksum star
    star = line.find("*")
    if star < 0:
        b.reject(i, "truncated", "no '*hh' checksum")
        return
    body = line[1:star]
    chk = _hex2(line[star + 1 : star + 3])
    if chk < 0:
        b.reject(
            i,
            "truncated" if len(line) < star + 3 else "bad_checksum",
            f"checksum field {line[star + 1 : star + 3]!r} is not two hex digits",
        )
        return
    addr = body[: body.find(",")] if "," in body else body
    if len(addr) == 5 and addr[2:] in ("VDM", "VDO"):
        kind = _AIS
    elif addr == "PGHP" and body.startswith("PGHP,1,"):
        kind = _PGHP
    else:
        kind = _OTHER
    c.add(i, kind, body, chk, tag_i, line[star + 3 :], prefix, None)


def _sentence_fields(
    b: _Batch, i: int, body: str
) -> tuple[int, int, str, str, str, int, bool] | None:
    """Fragment count and number, sequence id, channel, payload, fill bits and whether
    extra fields follow, of a sentence body the regex did not read (``None``: rejected)."""
    f = body.split(",")
    if len(f) < 7:
        b.reject(i, "truncated", f"{len(f)} fields, expected 7")
        return None
    _, s_total, s_num, seq, chan, payload, s_fill = f[:7]
    if not (s_total.isdigit() and s_num.isdigit() and len(s_total) == 1 and len(s_num) == 1):
        b.reject(i, "garbage", f"fragment fields {s_total!r},{s_num!r} are not digits")
        return None
    total, num = int(s_total), int(s_num)
    if not (1 <= num <= total) or len(seq) > 1 or (seq and not seq.isdigit()) or len(chan) > 1:
        b.reject(i, "garbage", f"bad fragment header {s_total},{s_num},{seq},{chan}")
        return None
    if not payload:
        b.reject(i, "truncated", "empty payload")
        return None
    if payload.translate(_DELETE_ARMOUR):
        b.reject(i, "garbage", "payload holds characters outside the six-bit armour")
        return None
    if not (len(s_fill) == 1 and s_fill in "012345"):
        b.reject(i, "bad_fill_bits", f"fill bits {s_fill!r} not in 0..5")
        return None
    return total, num, seq, chan, payload, int(s_fill), len(f) > 7


def _resolve(b: _Batch, c: _Cands, out: _Out) -> None:
    """Pass 2, in line order and with state: checksums (vectorised), ``$PGHP`` times, tag
    blocks, trailing fields, prefix times, fragment reassembly; messages into ``out``.

    One loop on purpose (about 80 lines): each step of a line depends on the state the
    lines before it left (a pending ``$PGHP`` time, an open fragment group), and the
    field checks are in their own functions (:func:`_trusted_tag`, :func:`_trailer`,
    :func:`_sentence_fields`)."""
    sums = nmea_checksums(c.body)
    ok: list[bool] = (sums == np.asarray(c.chk, dtype=np.int64)).tolist() if c.body else []
    tag_ok: list[bool] = (
        (nmea_checksums(c.tags) == np.asarray(c.tag_chk, dtype=np.int64)).tolist() if c.tags else []
    )
    pt = prefix_times(c.prefix, b.policy) if any(c.prefix) else None
    pt_has: list[bool] = [] if pt is None else pt.has_t.tolist()
    state, counts, source = b.state, b.counts, b.source
    for k, i in enumerate(c.idx):
        body = c.body[k]
        if not ok[k]:
            b.reject(i, "bad_checksum", f"computed {int(sums[k]):02X}, line says {c.chk[k]:02X}")
            continue
        kind = c.kind[k]
        if kind == _OTHER:
            counts["not_ais"] += 1
            name = body[: body.find(",")] if "," in body else body
            b.rejects.append((i, Reject(b.lines[i], "not_ais", name, b.rx[i])))
            continue
        if kind == _PGHP:
            t = _pghp_ms(body.split(","))
            if t is None:
                b.reject(i, "garbage", "$PGHP line without a valid time")
            else:
                state._pghp[source] = t
                counts["pghp"] += 1
            continue
        tag = _trusted_tag(b, i, c, k, tag_ok)
        if tag is None:
            continue
        t_tag, station, group = tag
        trail = _trailer(b, i, c.trailer[k], station)
        if trail is None:
            continue
        t_trail, station = trail
        pf = c.parsed[k]
        if pf is None:
            pf = _sentence_fields(b, i, body)
            if pf is None:
                continue
        total, num, seq, chan, payload, fill, has_extra = pf
        if num > total:
            b.reject(i, "garbage", f"bad fragment header {total},{num},{seq},{chan}")
            continue
        if fill and num != total:
            b.reject(i, "bad_fill_bits", f"fill bits {fill} on fragment {num} of {total}")
            continue
        out.n_sentences += 1
        if has_extra:
            counts["quirk.extra_fields"] += 1
        if not chan:
            counts["quirk.empty_channel"] += 1
        t_prefix: int | None = None
        if c.prefix[k]:
            t_prefix = int(pt.t_ms[k]) if pt is not None and pt_has[k] else None
            _count_prefixes(counts, 1, int(t_prefix is not None), b.policy)
        t_own = t_tag
        if num == 1:
            pghp = state._pghp.pop(source, None)
            if t_own is None:
                t_own = pghp
        if t_own is None:
            t_own = t_trail if t_trail is not None else t_prefix
        line_t = t_own if t_own is not None else b.rx[i]
        out.saw_time(line_t)
        if total == 1:
            out.emit(i, payload, fill, line_t, b.rx[i], chan, station, b.lines[i])
            continue
        done, rj = state.add(
            source, chan, seq, total, num, payload, b.lines[i], t_own, b.rx[i], station,
            talker=body[:5], group=group, fill=fill,
        )  # fmt: skip
        for r in rj:
            counts[r.reason] += 1
            b.rejects.append((i, r))
        if done is not None:
            _emit_group(b, i, chan, done, out)


def _trailer(
    b: _Batch, i: int, rest: str, station: str | None
) -> tuple[int | None, str | None] | None:
    """Epoch time and station of the text after a sentence's checksum (``,station,epoch``);
    ``None`` when it is not such fields (the line is rejected)."""
    if not rest:
        return None, station
    if not rest.startswith(","):
        b.reject(i, "garbage", f"unexpected text after the checksum: {rest[:20]!r}")
        return None
    extra = rest[1:].split(",")
    if station is None and extra[0] and extra[0][0] in "br":
        station = extra[0]
    return _epoch_ms(extra[-1].strip()), station


def _emit_group(b: _Batch, i: int, chan: str, done: _Group, out: _Out) -> None:
    """A reassembled message into ``out`` (completed by line ``i``)."""
    t = done.t_ms if done.t_ms is not None else done.start_t_ms
    payload = "".join(p or "" for p in done.payloads)
    out.emit(i, payload, done.fill, t, b.rx[i], chan, done.station, "\n".join(done.lines))


def _trusted_tag(
    b: _Batch, i: int, c: _Cands, k: int, tag_ok: list[bool]
) -> tuple[int | None, str | None, str | None] | None:
    """``c:`` time, ``s:`` station and ``g:`` group of candidate ``k``'s tag block under the
    tag block policy (all ``None`` when it has none or it is not trusted); ``None`` when
    the line is rejected for it (strict policy)."""
    ti = c.tag[k]
    if ti < 0:
        return None, None, None
    if not tag_ok[ti]:
        if b.state.strict_tag_blocks:
            b.reject(i, "bad_checksum", _tag_detail(c.tags[ti], f"{max(c.tag_chk[ti], 0):02X}"))
            return None
        b.counts["tag_checksum_bad"] += 1
        if c.tag_chk[ti] != 0:
            return None, None, None
        b.counts["quirk.tag_checksum_zero"] += 1
    t_tag, station, group, n_bad = _tag_fields(c.tags[ti])
    if n_bad:
        b.counts["tag_time_bad"] += n_bad
    return t_tag, station, group


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
    *,
    prefix: str = "auto",
    prefix_tz: str = "UTC",
) -> Framed:
    """Frame one batch of raw lines of ``source`` into complete AIS messages.

    Lines that hold several sentences are cut first (:func:`_split_multi`). Whole single
    sentences are then framed column by column (:func:`_frame_singles`), whatever comes
    before them (prefix policy) or after their fill bits; the other lines (fragments,
    ``$PGHP`` feeds, odd lines) are split one by one (:func:`_split_lines`) and resolved
    in arrival order (:func:`_resolve`), because a fragment or a ``$PGHP`` line depends on
    the line before it. Checksums (sentence and tag block) are computed for many lines at
    once (:func:`nmea_checksums`), prefix times too (:func:`prefix_times`).

    Tag block policy: a tag block whose checksum is wrong while the sentence's is right
    costs the sentence nothing; its fields are not used (the event time falls back as
    if there were no tag block) and ``tag_checksum_bad`` counts it. A ``*00`` checksum
    is what writers put when they do not compute one (``amsa_risky_nmea_timestamped.txt``
    is such a feed): its fields are used, and ``quirk.tag_checksum_zero`` counts it.
    ``state.strict_tag_blocks`` rejects both instead (``bad_checksum``).

    :param lines: raw lines, without line terminators (trailing ``\\r`` is tolerated)
    :param rx_t_ms: receive time of each line, ms since epoch UTC
    :param source: source id; fragments and ``$PGHP`` times are never mixed across sources
    :param state: reassembly state and tag block policy, updated in place
    :param dedup: optional de-duplication state, updated in place
    :param prefix: prefix policy of the source (:mod:`pipeline.core.nmea_prefix`)
    :param prefix_tz: time zone of prefix times without an offset
    :returns: the complete messages, rejected and skipped lines, and counters

    >>> f = frame_lines(["\\c:1334337317*58\\!AIVDM,1,1,,B,19NWuLhuRb5QHfCpPcwj`26B0<02,0*5F"],
    ...                 [0], "t", Reassembler())
    >>> f.payload, f.t_ms.tolist(), f.counts["tag_checksum_bad"]
    (['19NWuLhuRb5QHfCpPcwj`26B0<02'], [0], 1)
    """
    counts: Counter[str] = Counter()
    counts["lines"] += len(lines)
    rx = list(map(int, rx_t_ms))
    if len(rx) != len(lines):
        raise ValueError(f"{len(lines)} lines but {len(rx)} receive times")
    b = _Batch(lines, rx, source, state, prefix_policy(prefix, prefix_tz), counts)
    rows, has_pghp = _fast_rows(lines)
    idx, loop_idx = _select_singles(b, rows, has_pghp)
    split = _split_multi(lines, rx, counts, loop_idx)
    if split is not None:  # several sentences on a line: frame the cut lines
        b.lines, b.rx = split
        rows, has_pghp = _fast_rows(b.lines)
        idx, loop_idx = _select_singles(b, rows, has_pghp)
    singles = _Out()
    if idx:
        assert rows is not None
        _frame_singles(b, rows, idx, singles)
    out = _Out()
    _resolve(b, _split_lines(b, rows, loop_idx), out)
    out = _merge(out, singles)
    if out.max_t is not None:
        timed_out = state.expire(source, out.max_t)
        counts["fragment_timeout"] += len(timed_out)
        b.rejects.extend((len(b.lines), r) for r in timed_out)
    if dedup is not None and out.payload:
        _deduplicate(b, out, dedup)
    counts["sentences"] += out.n_sentences
    counts["messages"] += len(out.payload)
    return Framed(
        payload=out.payload,
        fill_bits=np.asarray(out.fill, dtype=np.int8),
        t_ms=np.asarray(out.t_ms, dtype=np.int64),
        rx_t_ms=np.asarray(out.rx_t_ms, dtype=np.int64),
        channel=out.channel,
        station=out.station,
        raw=out.raw,
        rejects=[r for _, r in sorted(b.rejects, key=itemgetter(0))],
        counts=counts,
    )


def _merge(out: _Out, singles: _Out) -> _Out:
    """Messages of the line-by-line pass and of the column-wise lines, in line order (a
    line gives at most one message)."""
    if not singles.line:
        return out
    singles.n_sentences += out.n_sentences
    if out.max_t is not None:
        singles.saw_time(out.max_t)
    if out.line:
        columns = [a + b for a, b in zip(out.columns(), singles.columns(), strict=True)]
        singles.set_columns(
            _pick(columns, sorted(range(len(columns[0])), key=columns[0].__getitem__))
        )
    return singles


def _deduplicate(b: _Batch, out: _Out, dedup: Deduplicator) -> None:
    """De-duplication after reassembly, in arrival order (one call per batch)."""
    dup = dedup.filter(out.payload, out.fill, out.t_ms)
    if not any(dup):
        return
    detail = f"same payload within {dedup.window_ms} ms"
    kept = list(compress(range(len(dup)), map(not_, dup)))
    for j in compress(range(len(dup)), dup):
        b.rejects.append((out.line[j], Reject(out.raw[j], "duplicate", detail, out.rx_t_ms[j])))
    b.counts["duplicate"] += len(dup) - len(kept)
    out.set_columns(_pick(out.columns(), kept))


def line_time_ms(line: str, prefix: str = "auto", prefix_tz: str = "UTC") -> int | None:
    """The event time a single line carries by itself, ms; ``None`` when it has none.

    Used for replay pacing: tag block ``c:``, a ``$PGHP`` line's own time (the time of
    the sentence after it), a trailing epoch field, or a time before the sentence read
    with the ``prefix`` policy (:mod:`pipeline.core.nmea_prefix`). No checksum is
    verified here.

    >>> line_time_ms("\\\\s:2573238,c:1733782034*0A\\\\!BSVDM,1,1,,A,13o4g`00000I2ENRH4g83S0L088C,0*3F")
    1733782034000
    >>> line_time_ms("$PGHP,1,2010,6,11,11,46,11,390,231,45,992190934,1,2B*5B")
    1276256771390
    >>> line_time_ms("2010-06-11 11:46:11.390, !AIVDM,1,1,,B,15NBj>PP1gG>1PVKTDTUJOv00<0M,0*09")
    1276256771390
    """
    t_prefix: int | None = None
    if line[:1] not in ("\\", "!", "$", ""):
        m = _START_AIS.search(line) or _START_ANY.search(line)
        if m is None:
            return None
        pt = prefix_times([line[: m.start()]], prefix_policy(prefix, prefix_tz))
        t_prefix = int(pt.t_ms[0]) if pt.has_t[0] else None
        line = line[m.start() :]
    t = _own_line_time_ms(line)
    return t if t is not None else t_prefix


def _own_line_time_ms(line: str) -> int | None:
    """:func:`line_time_ms` of a line that starts with its tag block or sentence."""
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
