"""NMEA framing (pipeline.core.nmea) on the real AIS files and on crafted edge cases."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pyais.util import checksum as _pyais_checksum

from pipeline.core import nmea
from pipeline.core.nmea import (
    REJECT_REASONS,
    SKIP_REASONS,
    Deduplicator,
    Reassembler,
    frame_lines,
    line_time_ms,
    nmea_checksums,
)


def compute_checksum(text: str) -> int:
    return _pyais_checksum(text.encode("latin-1"))


POS = "!AIVDM,1,1,,B,19NWuLhuRb5QHfCpPcwj`26B0<02,0*5F"
FRAG1 = "!AIVDM,2,1,9,B,58KvN<42ACikUKW77F1H4hF0<PTp622222222216`0`cF5BF0RT13H0T,0*70"
FRAG2 = "!AIVDM,2,2,9,B,PFRC88888888880,2*29"


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return [ln.rstrip(b"\r\n").decode("latin-1") for ln in f]


def with_checksum(body: str, lead: str = "!") -> str:
    return f"{lead}{body}*{compute_checksum(body):02X}"


def frame(lines: list[str], rx: int = 0, source: str = "t", **kw) -> object:
    return frame_lines(lines, [rx] * len(lines), source, kw.pop("state", Reassembler()), **kw)


@pytest.mark.unit
def test_vectorised_checksum_matches_pyais(shared):
    lines = [ln for ln in read_lines(shared / "data/ais/dma_aislib_stream_example.txt")]
    bodies = [ln[1 : ln.index("*")] for ln in lines]
    ours = nmea_checksums(bodies)
    assert ours.tolist() == [compute_checksum(b) for b in bodies]
    assert (ours == np.array([int(ln[ln.index("*") + 1 :][:2], 16) for ln in lines])).all()


@pytest.mark.unit
def test_tag_blocks_time_station_and_groups(shared):
    lines = read_lines(shared / "data/ais/amsa_risky_tag_blocks.txt")
    lines = [ln for ln in lines if ln]
    f = frame(lines)
    assert f.counts["sentences"] == 221
    assert len(f) == 200  # 21 two-sentence groups joined
    assert not f.rejects
    assert f.t_ms[0] == 1334337317000
    assert f.station[0] == "rEV02"
    # the first message is the group g:1-2-3985: both payloads joined, fill bits of the last
    assert f.payload[0] == FRAG1.split(",")[5] + FRAG2.split(",")[5]
    assert f.fill_bits[0] == 2
    assert f.raw[0].count("\n") == 1


@pytest.mark.unit
def test_bad_tag_checksum_keeps_sentence_and_time(shared):
    lines = read_lines(shared / "data/ais/amsa_risky_nmea_timestamped.txt")
    f = frame(lines)
    assert len(f) == 100 and not f.rejects
    assert f.counts["tag_checksum_bad"] == 100
    assert f.t_ms.min() >= 1420030790000 and f.t_ms.max() <= 1420030900000
    # talkers AI, AB, BS all accepted
    assert {r.split(",")[0][-5:] for r in f.raw} >= {"AIVDM", "ABVDM", "BSVDM"}


@pytest.mark.unit
def test_pghp_gives_time_of_next_sentence(shared):
    lines = read_lines(shared / "data/ais/dma_aislib_stream_example.txt")
    f = frame(lines, rx=7)
    assert len(f) == 4051 and f.counts["pghp"] == 4051 and not f.rejects
    assert f.t_ms[0] == 1276256771390  # 2010-06-11 11:46:11.390 UTC
    assert (f.t_ms > 1276256700000).all()  # every message timed by its $PGHP, never rx=7
    assert line_time_ms(lines[0]) == 1276256771390


@pytest.mark.unit
def test_pghp_carries_across_batches():
    pghp = with_checksum("PGHP,1,2010,6,11,11,46,11,390,231,45,992190934,1,5F", "$")
    state = Reassembler()
    assert len(frame_lines([pghp], [0], "s", state)) == 0
    f = frame_lines([POS], [5], "s", state)
    assert f.t_ms.tolist() == [1276256771390]
    # another source does not see it
    state2 = Reassembler()
    frame_lines([pghp], [0], "a", state2)
    assert frame_lines([POS], [5], "b", state2).t_ms.tolist() == [5]


@pytest.mark.unit
def test_trailing_station_and_epoch(shared):
    lines = read_lines(shared / "data/ais/libais_test.aivdm")
    f = frame(lines)
    assert not f.rejects
    assert f.t_ms[0] == 1272412827000
    assert f.station[0] == "b003669794"


@pytest.mark.unit
def test_norwegian_station_tags(shared):
    f = frame(read_lines(shared / "data/ais/kystverket_norwegian_tagblocks.raw"))
    assert not f.rejects and len(f) == 196
    assert f.station[0] == "2573238" and f.t_ms[0] == 1733782034000


@pytest.mark.unit
def test_non_ais_sentences_skipped_and_counted(shared):
    f = frame(read_lines(shared / "data/ais/gpsd_ais-nmea.log"))
    assert f.counts["not_ais"] == 1313
    not_ais = [r for r in f.rejects if r.reason == "not_ais"]
    assert len(not_ais) == 1313 and all(
        r.line.startswith("$GP") or r.line.startswith("$") for r in not_ais
    )
    assert len(f) == 171


@pytest.mark.unit
def test_reassembly_across_batches_and_channels():
    state = Reassembler()
    a = frame_lines([FRAG1], [100], "s", state)
    assert len(a) == 0 and len(state) == 1
    b = frame_lines([FRAG2], [200], "s", state)
    assert len(b) == 1 and len(state) == 0
    assert b.t_ms.tolist() == [100]  # time of the first fragment


@pytest.mark.unit
def test_fragments_of_different_sources_never_mix():
    state = Reassembler()
    frame_lines([FRAG1], [0], "a", state)
    f = frame_lines([FRAG2], [1], "b", state)
    assert len(f) == 0 and [r.reason for r in f.rejects] == ["fragment_orphan"]
    assert len(state) == 1


@pytest.mark.unit
def test_fragment_timeout_in_event_time():
    state = Reassembler(ttl_ms=1000)
    frame_lines([FRAG1], [0], "s", state)
    f = frame_lines([POS], [500], "s", state)
    assert not f.rejects and len(state) == 1
    f = frame_lines([POS], [1501], "s", state)
    assert [r.reason for r in f.rejects] == ["fragment_timeout"]
    assert f.counts["fragment_timeout"] == 1 and len(state) == 0
    # a late second fragment is now an orphan
    f = frame_lines([FRAG2], [1600], "s", state)
    assert [r.reason for r in f.rejects] == ["fragment_orphan"]


@pytest.mark.unit
def test_flush_reports_incomplete_groups():
    state = Reassembler()
    frame_lines([FRAG1], [0], "s", state)
    assert state.sources() == ["s"]
    rejects = state.flush()
    assert [r.reason for r in rejects] == ["fragment_timeout"] and rejects[0].line == FRAG1


@pytest.mark.unit
def test_duplicates_across_receivers_within_window():
    state, dedup = Reassembler(), Deduplicator(window_ms=2000)
    assert len(frame_lines([POS], [1000], "rx1", state, dedup)) == 1
    f = frame_lines([POS], [2500], "rx2", state, dedup)
    assert len(f) == 0 and f.counts["duplicate"] == 1 and f.rejects[0].reason == "duplicate"
    assert len(frame_lines([POS], [9000], "rx2", state, dedup)) == 1  # outside the window


@pytest.mark.unit
@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (POS[:-2] + "00", "bad_checksum"),
        (POS[:-3], "truncated"),
        ("!AIVDM,1,1,,B,19NWuLh", "truncated"),
        (with_checksum("AIVDM,1,1,,B,19NWuLhuRb5QHfCpPcwj`26B0<02,7"), "bad_fill_bits"),
        (with_checksum("AIVDM,2,1,3,B,19NWuLhuRb5QHfCpPcwj`26B0<02,2"), "bad_fill_bits"),
        (with_checksum("AIVDM,1,1,,B,,0"), "truncated"),
        (with_checksum("AIVDM,1,1,,B,19NW"), "truncated"),
        (with_checksum("AIVDM,1,1,,B,19NW{|},0"), "garbage"),
        (with_checksum("AIVDM,3,4,,B,19NW,0"), "garbage"),
        ("!AIVDM,1,1,,B,19NWuLhuRb5QHfCpPcwj`26B0<02,0*5F\u00e9", "not_ascii"),
        ("!AIVDM,1,1,,B," + "1" * 500 + ",0*00", "too_long"),
        ("\x00\x01binary junk", "garbage"),
        ("\\c:1334337317*58", "truncated"),
        (POS + "junk", "garbage"),
        (with_checksum("GPGSA,A,3,11,32", "$"), "not_ais"),
    ],
)
def test_reason_codes(line, reason):
    f = frame([line])
    assert len(f) == 0
    assert [r.reason for r in f.rejects] == [reason]
    assert f.rejects[0].line == line and f.rejects[0].detail


@pytest.mark.unit
def test_blank_lines_and_comments_are_counted():
    f = frame(["", "   ", "# a comment", POS])
    assert len(f) == 1 and f.counts["empty"] == 2 and f.counts["comment"] == 1


@pytest.mark.unit
def test_tag_time_in_milliseconds():
    body = "c:1334337317123"
    line = f"\\{body}*{compute_checksum(body):02X}\\{POS}"
    assert frame([line]).t_ms.tolist() == [1334337317123]


def _accounted(f, n_lines: int) -> bool:
    c = f.counts
    return len(f) + len(f.rejects) + c["empty"] + c["comment"] + c["pghp"] == n_lines


@pytest.mark.unit
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    line=st.sampled_from(
        [
            POS,
            FRAG1,
            "\\s:rEV02,c:1334337317*58\\" + POS,
            "!AIVDM,1,1,,A,15B4FT5000JRP>PE6E68Nbkl0PS5,0*70,b003669794,1272412827",
        ]
    ),
    edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=4),
)
@example(  # a backslash in a trailing field (not covered by the checksum): accepted
    line="!AIVDM,1,1,,A,15B4FT5000JRP>PE6E68Nbkl0PS5,0*70,b003669794,1272412827",
    edits=[(48, 92)],
)
def test_random_corruption_never_crashes_and_is_accounted(line, edits):
    chars = list(line)
    for pos, byte in edits:
        chars[pos % len(chars)] = chr(byte)
    bad = "".join(chars)
    state = Reassembler()
    f = frame_lines([bad], [0], "s", state)
    flushed = state.flush()
    assert _accounted(f, 1) or (len(flushed) == 1 and len(f.rejects) == 0)
    for r in f.rejects + flushed:
        assert r.reason in REJECT_REASONS + SKIP_REASONS and r.line
    if len(f) == 1 and bad != line:
        # accepted although changed: only a change the sentence checksum does not cover
        # (tag block, trailing fields) or a checksum-neutral one can do that
        end_tag = bad.find("\\", 1) if bad.startswith("\\") else -1
        body = bad[end_tag + 1 :]
        star = body.index("*")
        assert compute_checksum(body[1:star]) == int(body[star + 1 : star + 3], 16)


@pytest.mark.unit
@settings(max_examples=200, deadline=None)
@given(pos=st.integers(1, len(POS) - 4), byte=st.integers(32, 126))
def test_single_character_change_is_always_rejected(pos, byte):
    bad = POS[:pos] + chr(byte) + POS[pos + 1 :]
    f = frame([bad])
    if bad == POS:
        assert len(f) == 1
    elif POS[pos] in "!$" and chr(byte) in "!$":
        assert len(f) == 1  # '!AIVDM' and '$AIVDM' are both accepted: checksum-neutral
    else:
        assert len(f) == 0 and f.rejects[0].reason in REJECT_REASONS


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(
    line=st.sampled_from(
        [
            POS,
            FRAG1,
            FRAG2,
            "\\s:rEV02,c:1334337317*58\\" + POS,
            "!AIVDM,1,1,,A,15B4FT5000JRP>PE6E68Nbkl0PS5,0*70,b003669794,1272412827",
        ]
    ),
    edits=st.lists(
        st.tuples(st.integers(0, 200), st.sampled_from(",*\\!$0129AZaw`@:-\r")), max_size=3
    ),
)
def test_fast_path_agrees_with_slow_path(line, edits):
    chars = list(line)
    for pos, ch in edits:
        chars[pos % len(chars)] = ch
    lines = ["".join(chars), FRAG2]

    def run() -> tuple:
        f = frame_lines(lines, [0, 1], "s", Reassembler())
        return (
            f.payload,
            f.fill_bits.tolist(),
            f.t_ms.tolist(),
            f.station,
            [(r.reason, r.line) for r in f.rejects],
            dict(f.counts),
        )

    fast = run()
    with line_by_line():
        slow = run()
    assert fast == slow


@pytest.mark.unit
@settings(max_examples=200, deadline=None)
@given(
    tags=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    None,
                    "c:1334337317",
                    "c:1334337317123",
                    "s:rEV02,c:1334337318",
                    "s:,c:1",
                    "g:1-2-3,c:1334337319",
                    "c:13,s:x",
                    "c:abc",
                    "c:123456789012345",
                    "",
                ]
            ),
            st.booleans(),  # tag checksum right
            st.booleans(),  # sentence checksum right
        ),
        min_size=1,
        max_size=12,
    )
)
def test_column_wise_tag_blocks_agree_with_line_by_line(tags):
    # a batch mixing the common tag forms (read by the regex) with others (one by one)
    lines = []
    for i, (tag, tag_ok, sentence_ok) in enumerate(tags):
        body = f"AIVDM,1,1,,B,19NWuLhuRb5QHfCpPcwj`26B0<{i:02d},0"
        line = with_checksum(body) if sentence_ok else f"!{body}*00"
        if tag is not None:
            hh = compute_checksum(tag) ^ (0 if tag_ok else 1)
            line = f"\\{tag}*{hh:02X}\\{line}"
        lines.append(line)

    def run() -> tuple:
        f = frame_lines(lines, list(range(len(lines))), "s", Reassembler())
        return (
            f.payload,
            f.t_ms.tolist(),
            f.station,
            [(r.reason, r.line, r.detail) for r in f.rejects],
            dict(f.counts),
        )

    fast = run()
    with line_by_line():
        slow = run()
    assert fast == slow


class line_by_line:
    """Within: no regex fast path and no column-wise framing, every line on its own."""

    def __enter__(self) -> None:
        self.saved = nmea._FAST, nmea._fast_rows
        nmea._FAST = re.compile(r"(?!x)x")  # never matches
        nmea._fast_rows = lambda lines: (None, True)

    def __exit__(self, *exc: object) -> None:
        nmea._FAST, nmea._fast_rows = self.saved


def _framed_file(path: Path, batch: int) -> list[tuple]:
    lines = read_lines(path)
    state, dedup = Reassembler(), Deduplicator(5000)
    out = []
    for i in range(0, len(lines), batch):
        chunk = lines[i : i + batch]
        f = frame_lines(chunk, list(range(i, i + len(chunk))), "s", state, dedup)
        out.append(
            (
                f.payload,
                f.fill_bits.tolist(),
                f.t_ms.tolist(),
                f.rx_t_ms.tolist(),
                f.channel,
                f.station,
                f.raw,
                [(r.line, r.reason, r.detail, r.rx_t_ms) for r in f.rejects],
                {k: v for k, v in f.counts.items() if v},
            )
        )
    return out


@pytest.mark.unit
@pytest.mark.parametrize("batch", [1, 7, 500])
def test_column_wise_framing_equals_line_by_line_on_the_real_files(shared, batch):
    files = [p for p in sorted((shared / "data" / "ais").iterdir()) if "LICENSE" not in p.name]
    files = [p for p in files if not p.name.endswith((".chk", ".md"))]
    assert len(files) >= 8
    for path in files:
        fast = _framed_file(path, batch)
        with line_by_line():
            slow = _framed_file(path, batch)
        assert fast == slow, path.name
        assert sum(len(b[0]) for b in fast) > 0, path.name


def _filter_in_parts(dedup: Deduplicator, msgs: list, split: int) -> list[bool]:
    """:meth:`Deduplicator.filter` of (payload, fill bits, t_ms) messages, ``split`` at a time."""
    got: list[bool] = []
    for i in range(0, len(msgs), split):
        payloads, fills, times = zip(*msgs[i : i + split], strict=True)
        got += dedup.filter(payloads, fills, times)
    return got


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(
    msgs=st.lists(
        st.tuples(st.sampled_from("ABCDE"), st.integers(0, 1), st.integers(0, 20_000)),
        max_size=60,
    ),
    split=st.integers(1, 60),
    sort=st.booleans(),
)
def test_deduplicator_in_batches_equals_one_at_a_time(msgs, split, sort):
    if sort:
        msgs = sorted(msgs, key=lambda m: m[2])
    one = Deduplicator(window_ms=5000, max_entries=4)
    expected = [one.seen(p, f, t) for p, f, t in msgs]
    many = Deduplicator(window_ms=5000, max_entries=4)
    assert _filter_in_parts(many, msgs, split) == expected
    assert len(many) == len(one) <= 4


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(
    msgs=st.lists(
        st.tuples(st.sampled_from("ABCDE"), st.integers(0, 1), st.integers(0, 30_000)),
        max_size=80,
    ),
    split=st.integers(1, 80),
)
@example(msgs=[("A", 0, 0), ("A", 0, 5000), ("A", 0, 5001), ("A", 0, 10_001)], split=1)
@example(msgs=[("A", 0, 0), ("A", 0, 5000), ("A", 0, 5001), ("A", 0, 10_001)], split=4)
def test_deduplicator_in_time_order_is_exact(msgs, split):
    # in event-time order, a message is a duplicate exactly when its payload was last
    # recorded (as a non-duplicate) at most the window earlier
    msgs = sorted(msgs, key=lambda m: m[2])
    recorded: dict[tuple[str, int], int] = {}
    expected = []
    for p, f, t in msgs:
        prev = recorded.get((p, f))
        is_dup = prev is not None and t - prev <= 5000
        if not is_dup:
            recorded[(p, f)] = t
        expected.append(is_dup)
    assert _filter_in_parts(Deduplicator(window_ms=5000), msgs, split) == expected
