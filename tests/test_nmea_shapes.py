"""AIS lines as receivers and loggers write them: prefixes, several sentences per line,
extra fields, tag block quirks, interleaved fragments; and the per-file decode report.

``tests/data/ais_line_shapes.txt`` holds lines written for these tests, one section per
shape; the real recordings are in ``../shared/data/ais``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from conftest import AIS_DATA_FILES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyais import decode as pyais_decode
from pyais.encode import encode_dict
from test_nmea import line_by_line

from pipeline.core import nmea, nmea_prefix
from pipeline.core.nmea import (
    REJECT_REASONS,
    SKIP_REASONS,
    Reassembler,
    frame_lines,
    line_time_ms,
    nmea_checksums,
)
from pipeline.core.nmea_prefix import prefix_policy, prefix_times
from pipeline.decode_report import file_report
from pipeline.engine.decode import decode_batch, finish, merge_counters
from pipeline.fileio import iter_file_lines
from pipeline.tools.ais_compare import compare
from schemas.records import RawAisBatch

SHAPES = Path(__file__).parent / "data" / "ais_line_shapes.txt"
#: one AIS sentence, as the clean text a peer decoder is given
SENTENCE = re.compile(r"[!$][A-Z0-9]{2}VD[MO],[^*!$\\]*\*[0-9A-Fa-f]{2}")


def ck(body: str, lead: str = "!") -> str:
    return f"{lead}{body}*{int(nmea_checksums([body])[0]):02X}"


def tag(text: str, hh: str | None = None) -> str:
    return f"\\{text}*{hh or format(int(nmea_checksums([text])[0]), '02X')}\\"


def position(mmsi: int, lon: float, lat: float, channel: str = "A") -> str:
    """A type 1 sentence (``!AIVDM``) of a fictional vessel."""
    msg = {"type": 1, "mmsi": mmsi, "lon": lon, "lat": lat, "speed": 4.5, "course": 90.0}
    s = encode_dict(msg, radio_channel=channel or "A", talker_id="AI")[0]
    body = s[1 : s.index("*")].replace("AIVDO", "AIVDM")
    if not channel:
        f = body.split(",")
        f[4] = ""
        body = ",".join(f)
    return ck(body)


def accounted(f, n_lines: int, pending: int = 0) -> bool:
    """Every line in one place: messages (their lines), rejects and skips (their lines),
    empty, comments, ``$PGHP``, fragments still pending; lines cut out of a line count."""
    c = f.counts
    in_msgs = sum(r.count("\n") + 1 for r in f.raw)
    in_rejects = sum(r.line.count("\n") + 1 for r in f.rejects)
    other = c["empty"] + c["comment"] + c["pghp"] + pending
    return in_msgs + in_rejects + other == n_lines + c["quirk.multi_sentence"]


def decode_lines(lines: list[str], rx: int = 7, **batch_kw) -> tuple[list, dict, list]:
    state = Reassembler(strict_tag_blocks=batch_kw.pop("strict", False))
    batch = RawAisBatch(source="s", lines=lines, rx_t_ms=[rx] * len(lines), **batch_kw)
    res = decode_batch(batch, state)
    counters: dict[str, dict[str, int]] = {}
    merge_counters(counters, res.counters)
    end = finish(state)
    merge_counters(counters, end.counters)
    return res.positions, counters.get("s", {}), res.dead_letters + end.dead_letters


# ---- the shapes file ------------------------------------------------------------------


@pytest.mark.unit
def test_shapes_file_decodes_every_message_as_its_clean_sentence():
    lines = list(iter_file_lines(str(SHAPES)))
    f = frame_lines(lines, [7] * len(lines), "s", Reassembler())
    assert accounted(f, len(lines))
    assert len(f) == 33  # 28 position reports, 5 two-part static reports
    assert [r.reason for r in f.rejects] == ["not_ais", "garbage"]
    quirks = {k: v for k, v in f.counts.items() if k.startswith("quirk.")}
    assert quirks == {
        "quirk.prefix_time": 12,
        "quirk.prefix_stripped": 1,
        "quirk.extra_fields": 2,
        "quirk.empty_channel": 2,
        "quirk.multi_sentence": 5,
        "quirk.escaped_eol": 2,
        "quirk.tag_checksum_zero": 1,
    }
    assert f.counts["tag_checksum_bad"] == 2  # the wrong one and the *00 one
    # every message decodes to what pyais decodes from its clean sentence(s)
    positions, counters, dead = decode_lines(lines)
    assert [d.reason for d in dead] == ["garbage"]
    assert counters["decoded"] == 33 and len(positions) == 28
    clean = [m.group(0) for ln in lines if not ln.startswith("#") for m in SENTENCE.finditer(ln)]
    singles = [s for s in clean if s.startswith("!AIVDM,1,1,")]
    assert len(singles) == 28
    for rec, sentence in zip(positions, singles, strict=True):
        ref = pyais_decode(sentence)
        assert (rec.mmsi, rec.lon, rec.lat, rec.sog_kn) == (ref.mmsi, ref.lon, ref.lat, ref.speed)
    res = decode_batch(
        RawAisBatch(source="s", lines=lines, rx_t_ms=[0] * len(lines)), Reassembler()
    )
    assert sorted((st.mmsi, st.name) for st in res.statics) == [
        (412000200 + k, f"QIONG HAI {k}") for k in range(1, 6)
    ]


@pytest.mark.unit
def test_shapes_file_event_times():
    lines = list(iter_file_lines(str(SHAPES)))
    f = frame_lines(lines, [7] * len(lines), "s", Reassembler())
    ms = lambda text: int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)  # noqa: E731
    by_line = {r: t for r, t in zip(f.raw, f.t_ms.tolist(), strict=True)}
    got = [by_line[r] for r in f.raw[1:8]]
    assert got == [
        ms("2024-05-01 12:00:01"),
        ms("2024-05-01 12:00:02.250"),
        ms("2024-05-01 12:00:03"),
        ms("2024-05-01 12:00:04"),  # +08:00 given in the prefix
        1714564805000,
        1714564806500,
        1714564807125,
    ]
    bad_tag = next(r for r in f.raw if "*7E\\" in r)
    zero_tag = next(r for r in f.raw if "*00\\" in r)
    assert by_line[bad_tag] == 7  # wrong tag checksum: its c: is not trusted, receive time
    assert by_line[zero_tag] == 1714564813000  # *00: the writer's placeholder, c: kept
    three = [r for r in f.raw if r.startswith("2024-05-01 12:00:18,")]
    assert len(three) == 3 and {by_line[r] for r in three} == {ms("2024-05-01 12:00:18")}
    groups = [r for r in f.raw if "\n" in r]
    assert len(groups) == 5
    assert {by_line[r] for r in groups} >= {1714564826000, 1714564828000, ms("2024-05-01 12:00:29")}


@pytest.mark.unit
def test_shapes_file_report(capsys):
    from pipeline.cli import main

    rep = file_report(str(SHAPES))
    assert rep["accounted"] and rep["lines"] == 49 and rep["messages"] == 33
    assert rep["by_type"] == {"1": 28, "5": 5}
    assert rep["rejected"] == {"garbage": 1} and rep["skipped"] == {"not_ais": 1}
    assert rep["examples"]["garbage"]["line"] == "no sentence on this line"
    assert rep["quirks"]["quirk.multi_sentence"] == 5
    assert main(["decode", "--stats", str(SHAPES)]) == 0
    out = capsys.readouterr().out
    assert "messages 33" in out and "accounted: yes" in out and "quirk.extra_fields 2" in out
    assert "rejected garbage: 1  e.g. no sentence or tag block in the line" in out
    assert main(["decode", "--stats", "--json", "--prefix", "none", str(SHAPES)]) == 0
    strict = orjson.loads(capsys.readouterr().out)
    # without a prefix policy the prefixed lines are rejected, and still accounted for
    # (13 prefixed lines, one of them cut in three; and the line without a sentence)
    assert strict["accounted"] and strict["rejected"]["garbage"] == 13 + 2 - 1 + 1
    assert strict["messages"] == 33 - 12 and "not_ais" not in strict["skipped"]
    # a policy or time zone that does not exist is refused before any line is read
    assert main(["decode", "--prefix", "%Q", str(SHAPES)]) == 2
    assert main(["decode", "--prefix-tz", "Mars/Olympus", str(SHAPES)]) == 2
    assert main(["ingest", "ais", "--file", str(SHAPES), "--stdout", "--prefix", "%Q"]) == 2
    assert "not supported" in capsys.readouterr().err


# ---- policies ---------------------------------------------------------------------------


P1 = position(412000301, 110.31, 20.03)
P2 = position(412000302, 110.32, 20.04, "B")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("line", "policy", "tz", "t_ms", "quirk"),
    [
        (f"05/01/2024 20:00:01 {P1}", "%m/%d/%Y %H:%M:%S", "Asia/Shanghai", 1714564801000, "time"),
        (f"2024-05-01 14:00:01.5 {P1}", "iso", "Europe/Oslo", 1714564801500, "time"),  # CEST
        (f"2024-01-01 01:00:00 {P1}", "iso", "Europe/Oslo", 1704067200000, "time"),  # CET
        (f"2024-05-01 12:00:01 {P1}", "iso", "-03:30", 1714577401000, "time"),
        (f"1714564801123 {P1}", "epoch_ms", "UTC", 1714564801123, "time"),
        (f"1714564801 {P1}", "epoch_s", "UTC", 1714564801000, "time"),
        (f"rx7 {P1}", "iso", "UTC", 7, "time_bad"),
        (f"2024-05-01 12:00:01 {P1}", "strip", "UTC", 7, "stripped"),
        (f"2024-05-01 12:00:01 {tag('c:1714564900')}{P1}", "auto", "UTC", 1714564900000, "time"),
    ],
)
def test_prefix_policies(line, policy, tz, t_ms, quirk):
    f = frame_lines([line], [7], "s", Reassembler(), prefix=policy, prefix_tz=tz)
    assert len(f) == 1 and f.t_ms.tolist() == [t_ms] and f.raw == [line]
    assert f.counts[f"quirk.prefix_{quirk}"] == 1
    # the same in a fragment pair (framed line by line) as column-wise
    frag = line.replace(P1, FRAG1)
    g = frame_lines([frag, FRAG2], [7, 8], "s", Reassembler(), prefix=policy, prefix_tz=tz)
    assert len(g) == 1 and g.t_ms.tolist() == [t_ms]
    assert line_time_ms(line, policy, tz) == (None if t_ms == 7 else t_ms)


@pytest.mark.unit
def test_prefix_policy_none_rejects_and_bad_policies_fail_early():
    f = frame_lines([f"x {P1}", P2], [0, 0], "s", Reassembler(), prefix="none")
    assert len(f) == 1 and [r.reason for r in f.rejects] == ["garbage"]
    for bad in ("nonsense", "%H:%M"):
        with pytest.raises(ValueError):
            prefix_policy(bad)
    with pytest.raises(ValueError):
        prefix_policy("auto", "Mars/Olympus")


FRAG1 = ck("AIVDM,2,1,9,B,58KvN<42ACikUKW77F1H4hF0<PTp622222222216`0`cF5BF0RT13H0T,0")
FRAG2 = ck("AIVDM,2,2,9,B,PFRC88888888880,2")


@pytest.mark.unit
def test_strict_tag_blocks_reject_a_wrong_tag_checksum():
    lines = [tag("c:1714564812", "7E") + P1, tag("c:1714564813", "00") + P2]
    _, counters, dead = decode_lines(lines, strict=True)
    assert [d.reason for d in dead] == ["bad_checksum"] * 2
    assert all(d.detail.startswith("tag block checksum: computed 5") for d in dead)
    assert counters["rejected.bad_checksum"] == 2 and "decoded" not in counters
    positions, counters, dead = decode_lines(lines)
    assert not dead and [p.t_ms for p in positions] == [7, 1714564813000]
    assert counters["tag_checksum_bad"] == 2 and counters["quirk.tag_checksum_zero"] == 1
    # a sentence whose own checksum is wrong is rejected for that, whatever its tag block
    bad = tag("c:1714564812", "7E") + P1[:-2] + "00"
    assert [d.reason for d in decode_lines([bad], strict=True)[2]] == ["bad_checksum"]


@pytest.mark.unit
def test_interleaved_fragments():
    a1, a2 = FRAG1, FRAG2
    b1, b2 = (x.replace(",9,B,", ",9,A,") for x in (FRAG1[1:-3], FRAG2[1:-3]))
    b1, b2 = ck(b1), ck(b2)
    # other traffic between the parts, and another message's parts on another channel
    f = frame_lines([a1, P1, b1, P2, a2, b2], [0] * 6, "s", Reassembler())
    assert len(f) == 4 and not f.rejects
    # another talker with the same sequence id and channel is another message
    c1, c2 = ck(FRAG1[1:-3].replace("AIVDM", "BSVDM")), ck(FRAG2[1:-3].replace("AIVDM", "BSVDM"))
    f = frame_lines([a1, c1, a2, c2], [0] * 4, "s", Reassembler())
    assert len(f) == 2 and not f.rejects
    # tag block g: groups: any order, any traffic between
    g = [tag("g:2-2-41") + a2, P1, tag("g:1-2-42") + a1, tag("g:1-2-41") + a1, tag("g:2-2-42") + a2]
    f = frame_lines(g, [0] * 5, "s", Reassembler())
    assert len(f) == 3 and not f.rejects
    assert f.payload[1] == f.payload[2] == a1.split(",")[5] + a2.split(",")[5]
    assert f.fill_bits.tolist() == [0, 2, 2]
    # without g:, the same sequence id restarted before the end is an orphan, not a mix
    f = frame_lines([a1, a1, a2], [0] * 3, "s", Reassembler())
    assert len(f) == 1 and [r.reason for r in f.rejects] == ["fragment_orphan"]


# ---- Hypothesis: prefixes and quirks around valid sentences ------------------------------

_TIMES = st.integers(1_500_000_000, 1_900_000_000)


@st.composite
def shaped_line(draw) -> tuple[str, list[str], int | None]:
    """A line of 1–3 valid sentences wrapped in a drawn shape; its clean sentences; and
    the prefix time it carries (ms), if any."""
    n = draw(st.integers(1, 3))
    clean = [
        position(
            draw(st.integers(200_000_000, 775_999_999)),
            draw(st.floats(-179.9, 179.9).map(lambda v: round(v, 4))),
            draw(st.floats(-89.9, 89.9).map(lambda v: round(v, 4))),
            draw(st.sampled_from(["A", "B", ""])),
        )
        for _ in range(n)
    ]
    sentences = []
    for s in clean:
        if draw(st.booleans()):  # an extra field after the fill bits
            s = ck(s[1 : s.index("*")] + "," + draw(st.sampled_from(["0", "", "1"])))
        sentences.append(s)
    sep = draw(st.sampled_from(["", " ", ",", "\\r\\n", "\\x0d\\x0a"]))
    t_s = draw(_TIMES)
    kind = draw(st.sampled_from(["none", "ymd", "ymd_ms", "iso_z", "epoch_s", "epoch_ms", "text"]))
    dt = datetime.fromtimestamp(t_s, UTC)
    prefix, t_ms = {
        "none": ("", None),
        "ymd": (dt.strftime("%Y-%m-%d %H:%M:%S, "), t_s * 1000),
        "ymd_ms": (dt.strftime("%Y-%m-%d %H:%M:%S.250 "), t_s * 1000 + 250),
        "iso_z": (dt.strftime("%Y-%m-%dT%H:%M:%SZ "), t_s * 1000),
        "epoch_s": (f"{t_s} ", t_s * 1000),
        "epoch_ms": (f"{t_s}042;", t_s * 1000 + 42),
        "text": (draw(st.text("abcXYZ-_:[] ", min_size=1, max_size=12)), None),
    }[kind]
    tail = draw(st.sampled_from(["", "\\r\\n", "\\x0d\\x0a"]))
    return prefix + sep.join(sentences) + tail, clean, t_ms


@pytest.mark.unit
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shaped=st.lists(shaped_line(), min_size=1, max_size=5))
def test_shaped_lines_decode_as_their_clean_sentences(shaped):
    lines = [ln for ln, _, _ in shaped]
    clean = [s for _, c, _ in shaped for s in c]
    times = [t for _, c, t in shaped for _ in c]
    positions, counters, dead = decode_lines(lines, rx=7)
    ref, _, _ = decode_lines(clean, rx=7)
    assert not dead
    assert [p.mmsi for p in positions] == [p.mmsi for p in ref]
    for got, want, t in zip(positions, ref, times, strict=True):
        assert (got.lon, got.lat, got.sog_kn, got.cog_deg) == (
            want.lon,
            want.lat,
            want.sog_kn,
            want.cog_deg,
        )
        assert got.t_ms == (7 if t is None else t)
    f = frame_lines(lines, [7] * len(lines), "s", Reassembler())
    assert accounted(f, len(lines))
    assert f.counts["quirk.multi_sentence"] == len(clean) - len(lines)
    # cutting many lines at once gives what cutting each line on its own gives
    for line in lines:
        cut = nmea._split_multi([line], [0], Counter(), [0])
        assert (cut[0] if cut else [line]) == (
            nmea._sentences_of(line, Counter()) if cut else [line]
        )
    # the column-wise framing gives what the line-by-line framing gives
    with line_by_line():
        slow = frame_lines(lines, [7] * len(lines), "s", Reassembler())
    assert (slow.payload, slow.t_ms.tolist(), dict(slow.counts)) == (
        f.payload, f.t_ms.tolist(), dict(f.counts),
    )  # fmt: skip


@pytest.mark.unit
@settings(max_examples=150, deadline=None)
@given(
    line=st.sampled_from([P1, tag("c:1714564812") + P1, f"2024-05-01 12:00:01 {P1}"]),
    junk=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
    at=st.integers(0, 200),
)
def test_any_text_around_a_sentence_is_accounted_for(line, junk, at):
    bad = line[: at % (len(line) + 1)] + junk + line[at % (len(line) + 1) :]
    state = Reassembler()
    f = frame_lines([bad], [0], "s", state)
    assert accounted(f, 1, pending=len(state))
    for r in f.rejects:
        assert r.reason in REJECT_REASONS + SKIP_REASONS
    with line_by_line():
        slow = frame_lines([bad], [0], "s", Reassembler())
    assert (slow.payload, [r.reason for r in slow.rejects]) == (
        f.payload, [r.reason for r in f.rejects],
    )  # fmt: skip


@pytest.mark.unit
@settings(max_examples=100, deadline=None)
@given(t_ms=st.lists(st.integers(0, 4_102_444_800_000), min_size=1, max_size=20))
def test_prefix_times_read_what_was_written(t_ms):
    texts = [
        datetime.fromtimestamp(t / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " "
        for t in t_ms
    ]
    got = prefix_times(texts, prefix_policy())
    assert got.has_t.all() and got.t_ms.tolist() == t_ms
    # one format on every line: read as one byte matrix, equal to the regex per prefix
    for policy in (prefix_policy(), prefix_policy("iso", "Asia/Shanghai")):
        uniform = nmea_prefix._fields_uniform(texts, policy)
        assert uniform is not None
        general = nmea_prefix._fields(texts, policy)
        assert {k: v.tolist() for k, v in uniform.items()} == {
            k: v.tolist() for k, v in general.items()
        }
    got = prefix_times([f"{t}" for t in t_ms], prefix_policy("epoch_ms"))
    long = [t >= 10**11 for t in t_ms]
    assert got.has_t.tolist() == long


# ---- the real recordings ------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("name", AIS_DATA_FILES)
def test_real_file_report_accounts_for_every_line(shared, name):
    rep = file_report(str(shared / "data" / "ais" / name))
    assert rep["accounted"], name
    assert rep["messages"] > 0
    for reason in rep["rejected"]:
        assert rep["examples"][reason]["line"]


@pytest.mark.unit
def test_real_files_decode_at_least_what_pyais_decodes(shared):
    rows = compare([shared / "data" / "ais" / n for n in AIS_DATA_FILES])
    assert len(rows) == len(AIS_DATA_FILES)
    for row in rows:
        assert row["ratio"] is not None and row["ratio"] >= 0.99, row


# ---- the connector ------------------------------------------------------------------------


@pytest.mark.unit
def test_ingest_stamps_the_prefix_policy_on_every_batch(tmp_path):
    from connectors import ais as conn

    path = tmp_path / "feed.log"
    path.write_text(f"01/05/2024 20:00:01 {P1}\n01/05/2024 20:00:02 {P2}\n")
    args = argparse.Namespace(
        tcp=[], listen_tcp=[], udp=[], bind="127.0.0.1", file=[str(path)], speed="max",
        batch_lines=1, batch_ms=20, prefix="%d/%m/%Y %H:%M:%S", prefix_tz="+08:00",
    )  # fmt: skip
    batches: list[RawAisBatch] = []

    async def sink(batch: RawAisBatch) -> None:
        batches.append(batch)

    asyncio.run(asyncio.wait_for(conn.run_sources(args, sink), 10))
    assert [b.lines for b in batches] == [[ln] for ln in path.read_text().splitlines()]
    assert {(b.prefix, b.prefix_tz) for b in batches} == {("%d/%m/%Y %H:%M:%S", "+08:00")}
    # the decode agent's code path reads the times with the batch's policy
    times = Counter()
    for b in batches:
        times.update(p.t_ms for p in decode_batch(b, Reassembler()).positions)
    assert sorted(times) == [1714564801000, 1714564802000]
    args.prefix = "%Q"
    with pytest.raises(ValueError):
        asyncio.run(conn.run_sources(args, sink))
