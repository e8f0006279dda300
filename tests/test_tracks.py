"""Tracks: pipeline.core.tracks and pipeline.engine.tracks.track_step, on real DMA AIS and by property."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core import tracks as ct
from pipeline.engine.tracks import TrackParams, evict_tracks, track_step
from schemas.records import AisPosition, AisStatic

DMA = "data/ais/dma_aislib_stream_example.txt"


def pos(mmsi, t_ms, lon, lat, sog=5.0, cog=90.0, msg_type=1, nav_status=0):
    return AisPosition(
        mmsi=mmsi, msg_type=msg_type, t_ms=t_ms, lon=lon, lat=lat, sog_kn=sog, cog_deg=cog,
        heading_deg=None, nav_status=nav_status, accuracy=True, source="test", rx_t_ms=t_ms,
    )  # fmt: skip


def run_batches(batches, statics=()):
    state = {}
    for b in batches:
        for tr in track_step(state, b, [], TrackParams()).updates:
            state[tr.mmsi] = tr
    if statics:
        for tr in track_step(state, [], list(statics), TrackParams()).updates:
            state[tr.mmsi] = tr
    return state


# ----------------------------------------------------------------------------- MMSI classes
@pytest.mark.unit
@pytest.mark.parametrize(
    ("mmsi", "kind", "mid"),
    [
        (412123456, "ship", 412),
        (413000001, "ship", 413),
        (219000001, "ship", 219),
        (775999999, "ship", 775),
        (200123456, "invalid", None),  # MID 200 unallocated
        (776123456, "invalid", None),
        (2190047, "coast_station", 219),  # 00MIDxxxx
        (24120000, "group_of_ships", 241),  # 0MIDxxxxx
        (111412001, "sar_aircraft", 412),
        (984121234, "craft_associated", 412),
        (994121234, "aton", 412),
        (992191234, "aton", 219),
        (970123456, "sart", None),
        (972123456, "mob", None),
        (974123456, "epirb", None),
        (1, "invalid", None),
        (123456789, "invalid", None),
        (812345678, "invalid", None),
        (1_000_000_000, "invalid", None),
    ],
)
def test_classify_mmsi(mmsi, kind, mid):
    k, m = ct.classify_mmsi([mmsi])
    assert ct.MMSI_KINDS[int(k[0])] == kind
    assert (None if m[0] < 0 else int(m[0])) == mid


@pytest.mark.unit
def test_expected_intervals_itu_r_m1371():
    got = ct.expected_interval_s(
        ["A", "A", "A", "A", "A", "A", "B", "B", "B", "other"],
        [0.0, 10.0, 15.0, 30.0, 2.0, 5.0, 1.0, 5.0, np.nan, 5.0],
        [5, 0, 0, 0, 1, 1, -1, -1, -1, -1],
    )
    assert got.tolist() == [180.0, 10.0, 6.0, 2.0, 180.0, 10.0, 180.0, 30.0, 30.0, 180.0]


# ----------------------------------------------------------------------------- ordering
@pytest.mark.unit
def test_out_of_order_and_duplicates_are_counted_not_applied():
    ps = [
        pos(412000001, 10_000, 110.0, 20.0),
        pos(412000001, 20_000, 110.001, 20.0),
        pos(412000001, 15_000, 110.5, 20.5),  # older than the last fix
        pos(412000001, 20_000, 110.001, 20.0),  # duplicate
        pos(412000001, 20_000, 110.2, 20.0),  # same time, other place
        pos(412000001, 30_000, None, None),
    ]
    r = track_step({}, ps, [], TrackParams())
    assert [reason for _, reason in r.rejected] == [
        "out_of_order", "duplicate", "same_time_conflict", "no_position",
    ]  # fmt: skip
    (tr,) = r.updates
    assert (tr.t_ms, tr.lon, tr.n_fixes, tr.last_gap_s) == (20_000, 110.001, 2, 10.0)
    assert r.counters["accepted"] == 2
    # an older fix in a later batch is rejected against the stored track too
    r2 = track_step({tr.mmsi: tr}, [pos(412000001, 19_000, 110.0, 20.0)], [], TrackParams())
    assert r2.updates == [] and r2.rejected[0][1] == "out_of_order"


@pytest.mark.unit
def test_impossible_speed_and_stops():
    ps = [
        pos(412000002, 0, 110.0, 20.0, sog=0.1),
        pos(412000002, 60_000, 110.0, 20.0, sog=0.2),
        # 300 kn: 9,260 m in 60 s
        pos(412000002, 120_000, 110.0, 20.0 + 9260 / 111_195, sog=0.2),
        pos(412000002, 180_000, 110.0, 20.0 + 9260 / 111_195, sog=6.0),
    ]
    (tr,) = track_step({}, ps, [], TrackParams()).updates
    assert tr.jump_t_ms == 120_000
    assert tr.jump_speed_kn == pytest.approx((9260 - 100) / 60 / ct.KNOT_MPS, rel=1e-3)
    assert "impossible_speed" in tr.flags
    assert tr.stopped_since_t_ms is None and tr.first_t_ms == 0
    (tr2,) = track_step(
        {tr.mmsi: tr}, [pos(412000002, 240_000, 110.0, 20.084, sog=0.1)], [], TrackParams()
    ).updates
    assert tr2.stopped_since_t_ms == 240_000 and tr2.jump_t_ms is None
    assert tr2.max_gap_s == 60.0


@pytest.mark.unit
def test_identity_flags_and_changes():
    p = [pos(412000003, 1000, 110.0, 20.0)]
    (tr,) = track_step({}, p, [], TrackParams()).updates
    assert {"no_name", "no_call_sign"} <= set(tr.flags) and "invalid_mid" not in tr.flags
    s1 = AisStatic(
        mmsi=412000003, msg_type=5, t_ms=2000, source="t", name="HAI XUN 01@@", call_sign="BAAA"
    )
    s2 = AisStatic(
        mmsi=412000003,
        msg_type=5,
        t_ms=3000,
        source="t",
        name="YU 123",
        call_sign="BAAA",
        to_bow_m=10,
        to_stern_m=5,
    )
    (tr2,) = track_step({tr.mmsi: tr}, [], [s1, s2], TrackParams()).updates
    assert tr2.name == "YU 123" and tr2.call_sign == "BAAA" and tr2.length_m == 15.0
    assert "identity_change" in tr2.flags and tr2.identity_change_t_ms == 3000
    assert "no_name" not in tr2.flags
    # statics for an MMSI without a position are handed back, not lost
    orphan = AisStatic(mmsi=413999999, msg_type=5, t_ms=1, source="t", name="X")
    r = track_step({}, [], [orphan], TrackParams())
    assert r.orphan_statics == [orphan] and r.updates == []
    bad = track_step({}, [pos(200000001, 1, 110.0, 20.0)], [], TrackParams()).updates[0]
    assert bad.mmsi_kind == "invalid" and "invalid_mid" in bad.flags


@pytest.mark.unit
def test_eviction():
    (tr,) = track_step({}, [pos(412000004, 1000, 110.0, 20.0)], [], TrackParams()).updates
    assert evict_tracks({tr.mmsi: tr}, 1000 + 3_599_000, TrackParams()) == []
    (ev,) = evict_tracks({tr.mmsi: tr}, 1000 + 3_601_000, TrackParams())
    assert ev.event == "evicted" and ev.mmsi == tr.mmsi


# ----------------------------------------------------------------------------- batch invariance
fix_st = st.tuples(
    st.sampled_from([412000001, 412000002, 219000003]),
    st.integers(0, 5_000),  # time step, ms
    st.floats(-0.01, 0.01),
    st.floats(-0.01, 0.01),
    st.one_of(st.none(), st.floats(0, 30)),
    st.one_of(st.none(), st.floats(0, 359.9)),
)


@pytest.mark.unit
@settings(max_examples=60, deadline=None)
@given(st.lists(fix_st, min_size=1, max_size=40), st.lists(st.integers(1, 40), max_size=6))
def test_track_state_independent_of_batching(fixes, cuts):
    t = 1_700_000_000_000
    ps = []
    for m, dt, dlon, dlat, sog, cog in fixes:
        t += dt
        ps.append(pos(m, t, 110.0 + dlon, 20.0 + dlat, sog=sog, cog=cog))
    whole = run_batches([ps])
    bounds = sorted({c for c in cuts if c < len(ps)})
    pieces = [ps[a:b] for a, b in zip([0, *bounds], [*bounds, len(ps)], strict=True)]
    split = run_batches(pieces)
    assert set(whole) == set(split)
    for m in whole:
        a, b = whole[m], split[m]
        for f in (
            "t_ms",
            "lon",
            "lat",
            "n_fixes",
            "last_gap_s",
            "max_gap_s",
            "first_t_ms",
            "stopped_since_t_ms",
            "slow_since_t_ms",
            "expected_interval_s",
            "sog_kn",
        ):
            assert getattr(a, f) == getattr(b, f), f
        assert a.vel_east_mps == pytest.approx(b.vel_east_mps, abs=1e-9)
        assert a.vel_north_mps == pytest.approx(b.vel_north_mps, abs=1e-9)


# ----------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def dma(shared):
    pyais = pytest.importorskip("pyais")
    from pipeline.core.nmea import Reassembler
    from pipeline.engine.decode import decode_batch
    from pipeline.fileio import iter_file_lines
    from schemas.records import RawAisBatch

    lines = list(iter_file_lines(str(shared / DMA)))
    b = decode_batch(
        RawAisBatch(source="file:dma", lines=lines, rx_t_ms=[0] * len(lines)), Reassembler()
    )
    return pyais, lines, b


@pytest.mark.unit
def test_dma_last_fix_matches_pyais(dma):
    pyais, lines, b = dma
    state = run_batches(
        [b.positions[i : i + 250] for i in range(0, len(b.positions), 250)], b.statics
    )
    # pyais's own decode of every single-sentence position report, in file order
    last = {}
    for line in lines:
        if not line.startswith("!"):
            continue
        try:
            msg = pyais.decode(line).asdict()
        except Exception:  # multi-part or broken sentences: not position reports here
            continue
        if msg.get("msg_type") in (1, 2, 3, 18, 19) and msg.get("lat") not in (None, 91.0):
            last[msg["mmsi"]] = msg
    # the busiest vessels: the track's last fix is pyais's last fix for that MMSI
    counts = {}
    for p in b.positions:
        if p.lat is not None and p.lon is not None:
            counts[p.mmsi] = counts.get(p.mmsi, 0) + 1
    chosen = sorted(counts, key=lambda m: (-counts[m], m))[:10]
    for m in chosen:
        tr, ref = state[m], last[m]
        assert tr.lon == pytest.approx(ref["lon"], abs=1e-6), m
        assert tr.lat == pytest.approx(ref["lat"], abs=1e-6), m
        assert tr.n_fixes >= counts[m] - 2
        assert tr.ais_class == ("A" if ref["msg_type"] in (1, 2, 3) else "B")
    kinds = {tr.mmsi_kind for tr in state.values()}
    assert "ship" in kinds
    # Danish waters: most MIDs are 2xx (Europe)
    mids = [tr.mid for tr in state.values() if tr.mid is not None]
    assert np.mean([200 <= m < 300 for m in mids]) > 0.8
    # expected intervals are the ITU-R M.1371 values only
    assert {tr.expected_interval_s for tr in state.values()} <= {2.0, 6.0, 10.0, 30.0, 180.0}
    # statics reached the tracks they belong to
    assert sum(tr.name is not None for tr in state.values()) > 50
