"""The AIS adapter (pipeline.engine.decode.decode_batch) and the ``decode`` / ``bench ais`` commands."""

from __future__ import annotations

import base64
import gzip
import io
import json
import math
import sys

import msgspec
import numpy as np
import pyais
import pytest
from conftest import AIS_DATA_FILES as DATA_FILES
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.cli import main
from pipeline.core.nmea import Deduplicator, Reassembler, nmea_checksums
from pipeline.engine import decode as ais
from pipeline.engine.columns import PositionColumns
from pipeline.engine.decode import decode_batch, finish, merge_counters
from pipeline.engine.tracks import TrackParams, track_step
from pipeline.fileio import iter_file_lines
from pipeline.tools.bench_ais import run_bench
from schemas.records import FixColumns, RawAisBatch

# Replaying dma_aislib_stream_example.txt (no de-duplication needed: it has no
# duplicate within 5 s) gives exactly these; the Kafka integration test reuses them.
DMA_MESSAGES = 4051
DMA_POSITIONS = 2988
DMA_POSITION_MMSIS = 1398
DMA_MMSIS = 1933
DMA_STATICS = 498


def decode_file(path, source="file", batch_lines=700, dedup=None, with_messages=False):
    """Decode a whole file in batches through decode_batch, like replay does."""
    lines = list(iter_file_lines(str(path)))
    state = Reassembler()
    out = ais.DecodedBatch()
    for k in range(0, len(lines), batch_lines):
        chunk = lines[k : k + batch_lines]
        res = decode_batch(
            RawAisBatch(source=source, lines=chunk, rx_t_ms=[1] * len(chunk)),
            state,
            dedup,
            with_messages=with_messages,
        )
        for name in ("positions", "statics", "others", "messages", "dead_letters", "skipped"):
            getattr(out, name).extend(getattr(res, name))
        merge_counters(out.counters, res.counters)
    end = finish(state)
    out.dead_letters.extend(end.dead_letters)
    merge_counters(out.counters, end.counters)
    return lines, out


@pytest.mark.unit
@pytest.mark.parametrize("name", DATA_FILES)
def test_every_file_decodes_and_every_line_is_accounted_for(shared, name):
    lines, out = decode_file(shared / "data" / "ais" / name, source=name)
    c = out.counters[name]
    assert c["received"] == len(lines)
    assert c.get("decoded", 0) > 0
    # each sentence is either part of a complete message or rejected; each other line is
    # empty, a comment, a $PGHP time, skipped as not AIS, or rejected
    for dl in out.dead_letters:
        assert dl.reason and dl.detail and dl.source == name
        assert base64.b64decode(dl.raw_b64)
    assert c.get("rejected", 0) == len(out.dead_letters)


@pytest.mark.unit
def test_dma_counts(shared):
    path = shared / "data" / "ais" / "dma_aislib_stream_example.txt"
    _, out = decode_file(path, dedup=Deduplicator(5000))
    # independent count straight through pyais (its own reassembly)
    msgs, pending = [], []
    for line in path.read_text().splitlines():
        if not line.startswith("!"):
            continue
        f = line.split(",")
        pending.append(line)
        if f[1] == f[2]:
            msgs.append(pyais.decode(*pending))
            pending = []
    pos = [m for m in msgs if m.msg_type in (1, 2, 3, 18, 19, 27)]
    assert len(out.positions) == len(pos) == DMA_POSITIONS
    assert len({p.mmsi for p in out.positions}) == len({m.mmsi for m in pos}) == DMA_POSITION_MMSIS
    assert len({m.mmsi for m in msgs}) == DMA_MMSIS
    assert len(msgs) == DMA_MESSAGES and out.counters["file"]["messages"] == DMA_MESSAGES
    assert len(out.statics) == DMA_STATICS
    assert not out.dead_letters
    # event time from $PGHP, never the receive time
    assert all(p.t_ms > 1276256700000 and p.rx_t_ms == 1 for p in out.positions)
    # records agree with pyais on the same messages
    by_order = iter(pos)
    for p in out.positions:
        m = next(by_order)
        assert (p.mmsi, p.msg_type) == (m.mmsi, m.msg_type)
        assert p.lat == (m.lat if abs(m.lat) <= 90 else None)
        assert p.sog_kn == (m.speed if m.speed < 102.3 else None)
        assert p.heading_deg == (m.heading if m.heading < 360 else None)


@pytest.mark.unit
def test_not_available_values_are_none():
    sentences = pyais.encode.encode_dict(
        {
            "msg_type": 1,
            "mmsi": 412000001,
            "lon": 181,
            "lat": 91,
            "speed": 102.3,
            "course": 360,
            "heading": 511,
        },
        talker_id="AI",
        sentence_type="VDM",
    )
    res = decode_batch(RawAisBatch(source="s", lines=sentences, rx_t_ms=[5]), Reassembler())
    (p,) = res.positions
    assert (p.lon, p.lat, p.sog_kn, p.cog_deg, p.heading_deg) == (None, None, None, None, None)
    assert p.t_ms == 5 and p.nav_status == 15  # pyais.encode's default: "not defined"


@pytest.mark.unit
def test_gpsd_expected_json_agrees_on_shared_fields(shared):
    d = shared / "data" / "ais"
    _, out = decode_file(d / "gpsd_sample.aivdm", with_messages=True)
    ours = out.messages
    expected = [
        json.loads(ln)
        for ln in (d / "gpsd_sample.aivdm.js.chk").read_text().splitlines()
        if ln.startswith("{")
    ]
    fields = (
        "mmsi",
        "repeat",
        "lat",
        "lon",
        "speed",
        "course",
        "heading",
        "status",
        "accuracy",
        "second",
        "raim",
        "imo",
        "callsign",
        "shipname",
        "to_bow",
        "to_stern",
        "to_port",
        "to_starboard",
        "draught",
        "dest_mmsi",
        "dac",
        "fid",
    )
    j = matched = compared = 0
    for exp in expected:
        key = (exp["type"], exp["mmsi"])
        k = j
        while k < len(ours) and (ours[k]["msg_type"], ours[k]["mmsi"]) != key:
            k += 1
        if k == len(ours):
            continue  # gpsd decoded a line we reject (e.g. text after the checksum)
        got = ours[k]
        j = k + 1
        matched += 1
        if exp["type"] in (6, 8, 17, 22, 23):  # binary payloads: different representations
            continue
        for f in fields:
            if f in exp and f in got and got[f] is not None:
                compared += 1
                if isinstance(exp[f], float):
                    assert math.isclose(got[f], exp[f], abs_tol=1e-4), (key, f, got[f], exp[f])
                else:
                    assert got[f] == exp[f], (key, f, got[f], exp[f])
    assert matched >= 96 and compared >= 300


@pytest.mark.unit
def test_dead_letters_keep_raw_bytes_reason_source_and_time():
    lines = ["!AIVDM,1,1,,B,19NWuLhuRb5QHfCpPcwj`26B0<02,0*00", "caf\u00e9 \xff", ""]
    res = decode_batch(
        RawAisBatch(source="tcp:x", lines=lines, rx_t_ms=[10, 20, 30]), Reassembler()
    )
    assert [d.reason for d in res.dead_letters] == ["bad_checksum", "not_ascii"]
    assert [d.rx_t_ms for d in res.dead_letters] == [10, 20]
    assert base64.b64decode(res.dead_letters[1].raw_b64) == b"caf\xe9 \xff"
    assert {d.stage for d in res.dead_letters} == {"ais.frame"}
    c = res.counters["tcp:x"]
    assert c["received"] == 3 and c["rejected"] == 2
    assert c["rejected.bad_checksum"] == 1 and c["rejected.not_ascii"] == 1


@pytest.mark.unit
def test_unknown_type_and_static_records():
    from pyais.util import checksum

    def sentence(payload: str, fill: int = 0) -> str:
        body = f"AIVDM,1,1,,A,{payload},{fill}"
        return f"!{body}*{checksum(body.encode()):02X}"

    lines = [
        sentence("w0000000000"),  # type 63
        sentence("H42O55i18tMET00000000000000", 2),  # 24 part A
        sentence("H42O55lti4hhhilD3nink000?050"),
    ]  # 24 part B
    res = decode_batch(RawAisBatch(source="s", lines=lines, rx_t_ms=[0, 0, 0]), Reassembler())
    assert [d.reason for d in res.dead_letters] == ["unknown_type"]
    assert res.dead_letters[0].stage == "ais.decode"
    a, b = res.statics
    assert (a.mmsi, a.name, a.call_sign) == (271041815, "PROGUY", None)
    assert (b.call_sign, b.ship_type, b.to_stern_m, b.to_starboard_m, b.to_bow_m) == (
        "TC6163",
        60,
        15,
        5,
        None,
    )


@pytest.mark.unit
def test_fragment_timeout_is_a_dead_letter_and_counted():
    frag = "!AIVDM,2,1,9,B,58KvN<42ACikUKW77F1H4hF0<PTp622222222216`0`cF5BF0RT13H0T,0*70"
    state = Reassembler(ttl_ms=1000)
    decode_batch(RawAisBatch(source="s", lines=[frag], rx_t_ms=[0]), state)
    pos = "!AIVDM,1,1,,B,19NWuLhuRb5QHfCpPcwj`26B0<02,0*5F"
    res = decode_batch(RawAisBatch(source="s", lines=[pos], rx_t_ms=[5000]), state)
    assert [d.reason for d in res.dead_letters] == ["fragment_timeout"]
    assert res.counters["s"]["reassembly_timeouts"] == 1 and len(res.positions) == 1


@pytest.mark.unit
def test_duplicates_are_counted_not_dead_lettered():
    pos = "!AIVDM,1,1,,B,19NWuLhuRb5QHfCpPcwj`26B0<02,0*5F"
    state, dedup = Reassembler(), Deduplicator(5000)
    decode_batch(RawAisBatch(source="a", lines=[pos], rx_t_ms=[0]), state, dedup)
    res = decode_batch(RawAisBatch(source="b", lines=[pos], rx_t_ms=[100]), state, dedup)
    assert not res.positions and not res.dead_letters
    assert res.counters["b"]["duplicates"] == 1


@pytest.mark.unit
def test_decode_command_on_gzip(shared, capsys):
    path = shared / "data" / "ais" / "amsa_risky_ais.txt.gz"
    assert main(["decode", str(path)]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(ln) for ln in out.splitlines()]
    assert len(rows) > 30000
    assert {"msg_type", "mmsi", "source"} <= set(rows[0])
    pos = [r for r in rows if r["msg_type"] == 1]
    assert {"lat", "lon", "speed", "course", "heading", "status"} <= set(pos[0])
    assert "rejected bad_checksum" in err and "rejected truncated" in err
    assert err.strip().splitlines()[-1].startswith("decoded ")


@pytest.mark.unit
def test_decode_command_on_stdin_with_time(shared, capsys, monkeypatch):
    data = (shared / "data" / "ais" / "kystverket_norwegian_tagblocks.raw").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(["decode", "-"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(ln) for ln in out.splitlines()]
    assert len(rows) == 196
    assert rows[0]["t_ms"] == 1733782034000 and rows[0]["source"] == "stdin"
    assert "decoded 196 messages" in err


@pytest.mark.unit
def test_gzip_detected_by_magic(tmp_path):
    p = tmp_path / "plain-name.txt"
    p.write_bytes(gzip.compress(b"!AIVDM,1,1,,B,19NWuLhuRb5QHfCpPcwj`26B0<02,0*5F\n"))
    assert list(iter_file_lines(str(p))) == ["!AIVDM,1,1,,B,19NWuLhuRb5QHfCpPcwj`26B0<02,0*5F"]


@pytest.mark.unit
def test_bench_reports_both_rates(shared):
    result = run_bench(shared / "data" / "ais", n_target=2000, n_pyais=500)
    assert result["vector_decode_per_s"] > 0 and result["pyais_decode_per_s"] > 0
    assert result["n_distinct_payloads"] == 29414


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(
    line=st.sampled_from(
        [
            "!AIVDM,1,1,,B,19NWuLhuRb5QHfCpPcwj`26B0<02,0*5F",
            "!AIVDM,1,1,,A,H42O55i18tMET00000000000000,2*6D",
            "\\s:rEV02,c:1334337317*58\\!AIVDM,1,1,,B,33:JeT0OjqVls4qfDlpT7CF@20U@,0*03",
            "!AIVDM,2,1,9,B,58KvN<42ACikUKW77F1H4hF0<PTp622222222216`0`cF5BF0RT13H0T,0*70",
        ]
    ),
    edits=st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)), min_size=1, max_size=3),
)
def test_corrupted_lines_are_decoded_or_dead_lettered(line, edits):
    """Through the whole adapter: never an exception, every line accounted for once."""
    chars = list(line)
    for pos, byte in edits:
        chars[pos % len(chars)] = chr(byte)
    state = Reassembler()
    res = decode_batch(RawAisBatch(source="s", lines=["".join(chars)], rx_t_ms=[0]), state)
    end = finish(state)
    c = res.counters.get("s", {})
    c_end = end.counters.get("s", {})
    outcomes = (
        c.get("decoded", 0)
        + c.get("rejected", 0)
        + c_end.get("rejected", 0)
        + c.get("not_ais", 0)
        + c.get("empty", 0)
        + c.get("comment", 0)
        + c.get("pghp", 0)
    )
    assert outcomes == 1, (chars, c, c_end)
    for dl in res.dead_letters + end.dead_letters:
        assert dl.reason and dl.source == "s" and dl.raw_b64


@pytest.mark.unit
@pytest.mark.parametrize("name", DATA_FILES)
def test_framed_batches_decoded_together_equal_one_by_one(shared, name):
    """decode_framed over many framed batches (what the decode agent does per micro-batch)
    gives, batch by batch, exactly what decode_batch gives for each."""
    lines = list(iter_file_lines(str(shared / "data" / "ais" / name)))
    batches = [
        RawAisBatch(
            source=f"s{k % 3}", lines=lines[i : i + 97], rx_t_ms=[i] * len(lines[i : i + 97])
        )
        for k, i in enumerate(range(0, len(lines), 97))
    ]
    state, dedup = Reassembler(), Deduplicator(5000)
    alone = [decode_batch(b, state, dedup, with_messages=True) for b in batches]
    state, dedup = Reassembler(), Deduplicator(5000)
    framed = [(b, ais.frame_batch(b, state, dedup)) for b in batches]
    together = [
        r
        for k in range(0, len(framed), 10)
        for r in ais.decode_framed(framed[k : k + 10], with_messages=True)
    ]
    assert len(together) == len(alone)
    for a, b in zip(alone, together, strict=True):
        assert a.positions == b.positions
        assert a.statics == b.statics
        assert a.others == b.others
        assert a.messages == b.messages
        assert a.dead_letters == b.dead_letters
        assert a.counters == b.counters
    assert ais.decode_framed([]) == []


def _short_position(i: int) -> str:
    """A type 1 sentence whose payload is too short for the fixed layout (pyais decodes it)."""
    body = "AIVDM,1,1,,B," + "19NWuLhuRb5QHfCpPcwj`26B0<02"[: 20 + i % 5] + ",0"
    return f"!{body}*{int(nmea_checksums([body])[0]):02X}"


@pytest.mark.unit
@pytest.mark.parametrize("name", DATA_FILES)
def test_position_columns_are_the_position_records(shared, name):
    """The columns the decode agent sends to the tracks agent (through ais.fixes) hold
    exactly the position records, and the track step gives the same on both."""
    lines = list(iter_file_lines(str(shared / "data" / "ais" / name)))
    lines = [
        x for i, x in enumerate(lines) for x in ([x, _short_position(i)] if i % 50 == 7 else [x])
    ]
    batches = [
        RawAisBatch(
            source=f"s{k % 3}", lines=lines[i : i + 97], rx_t_ms=[i] * len(lines[i : i + 97])
        )
        for k, i in enumerate(range(0, len(lines), 97))
    ]
    state, dedup = Reassembler(), Deduplicator(5000)
    framed = [(b, ais.frame_batch(b, state, dedup)) for b in batches]
    outs = [
        r
        for k in range(0, len(framed), 10)
        for r in ais.decode_framed(framed[k : k + 10], with_columns=True)
    ]
    records = [p for o in outs for p in o.positions]
    assert records, name
    cols = PositionColumns.concat([o.position_columns for o in outs])
    assert [cols.record(i) for i in range(len(cols))] == records
    # through the wire format of ais.fixes and back
    wire = msgspec.json.decode(msgspec.json.encode(ais.pack_fixes(cols, [])), type=FixColumns)
    back = ais.unpack_fixes(wire)
    assert [back.record(i) for i in range(len(back))] == records
    ref = PositionColumns.from_records(records)
    for f in PositionColumns.ARRAYS:
        if f != "source_idx":
            np.testing.assert_array_equal(getattr(back, f), getattr(ref, f), err_msg=f)
            assert getattr(back, f).dtype == getattr(ref, f).dtype, f
    # the track step sees the same input either way
    statics = [s for o in outs for s in o.statics]
    a = track_step({}, records, statics, TrackParams())
    b = track_step({}, back, statics, TrackParams())
    assert a.updates == b.updates and a.counters == b.counters and a.rejected == b.rejected
