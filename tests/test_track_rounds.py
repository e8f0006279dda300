"""One area update per accepted AIS report, however the reports were batched
(:func:`pipeline.engine.tracks.track_step_per_fix`).

A worker that catches up with a backlog (after a restart, a pause, a broker outage, or
on an overloaded machine) steps minutes of reports in one micro-batch. With one track
update per vessel per batch, the area saw those minutes as AIS silence (false
``dark_approach``) and the vessel's position only at the batch's end (camera targets left
unmatched: false ``dark_vessel``); replay, in one-second windows, did not.
"""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from test_detectors import NIGHT, ctx, fix, landing_boat, lat_at

from pipeline.engine.area import area_step, flush_area
from pipeline.engine.tracks import (
    TrackDriverState,
    TrackParams,
    fix_rounds,
    track_batch,
    track_step,
    track_step_per_fix,
)


@pytest.mark.unit
def test_fix_rounds_rank_each_report_among_its_vessels_in_arrival_order() -> None:
    got = fix_rounds(np.array([5, 7, 5, 5, 7, 9], dtype=np.int64))
    assert got.tolist() == [0, 0, 1, 2, 1, 0]
    assert fix_rounds(np.zeros(0, dtype=np.int64)).tolist() == []


@pytest.mark.unit
def test_a_batch_gives_the_state_after_each_report_as_one_report_at_a_time_does() -> None:
    a, ss, _ = landing_boat(NIGHT)
    b, _, _ = landing_boat(NIGHT + 5_000, mmsi=412345002, lon=110.06, statics=False)
    batch = sorted(a[:20] + b[:20], key=lambda p: p.t_ms)
    result, every = track_step_per_fix({}, batch, ss, TrackParams())
    one_by_one: dict = {}
    want = []
    for k, p in enumerate(batch):
        r = track_step(one_by_one, [p], ss if k == 0 else [], TrackParams())
        for tr in r.updates:
            one_by_one[tr.mmsi] = tr
        want += r.updates
    enc = msgspec.json.encode
    assert len(every) == 40
    assert sorted(enc(x) for x in every) == sorted(enc(x) for x in want)
    # the table keeps one state per vessel: the last
    assert {tr.mmsi: enc(tr) for tr in result.updates} == {
        m: enc(tr) for m, tr in one_by_one.items()
    }
    assert result.counters["positions"] == 40 and result.counters["updates"] == 2


@pytest.mark.unit
def test_a_report_out_of_order_in_a_later_round_is_rejected_as_in_one_step() -> None:
    ps = [
        fix(412345003, NIGHT + k * 10_000, 110.05, lat_at(2000 - k * 50), 6.0, 180.0)
        for k in range(4)
    ]
    batch = [ps[0], ps[2], ps[1], ps[3]]  # the third arrives after the fourth's predecessor
    result, every = track_step_per_fix({}, batch, [], TrackParams())
    single = track_step({}, batch, [], TrackParams())
    assert [tr.t_ms for tr in every] == [ps[0].t_ms, ps[2].t_ms, ps[3].t_ms]
    assert [r for _, r in result.rejected] == [r for _, r in single.rejected] == ["out_of_order"]
    assert msgspec.json.encode(result.updates) == msgspec.json.encode(single.updates)


def _drive(positions, statics, batch_s: float) -> list:
    """track_batch + area_step over the input in batches of ``batch_s`` of event time
    (as a worker catching up with a backlog takes it)."""
    c = ctx()
    positions = sorted(positions, key=lambda p: p.t_ms)
    t0, t1 = positions[0].t_ms, positions[-1].t_ms
    tracks: dict = {}
    driver = TrackDriverState()
    st = None
    alerts: list = []
    edges = np.arange(t0, t1 + batch_s * 1000 + 1, batch_s * 1000)
    for a, b in zip(edges[:-1], edges[1:], strict=False):
        ps = [p for p in positions if a <= p.t_ms < b]
        ss = [s for s in statics if a <= s.t_ms < b]
        tb = track_batch(tracks, driver, ps, ss, TrackParams(), c.bbox)
        for tr in tb.result.updates:
            tracks[tr.mmsi] = tr
        st, out = area_step(st, tb.area_updates, [], c)
        alerts += out
    assert st is not None
    return alerts + flush_area(st, c, t1 + 60_000)


@pytest.mark.unit
def test_a_backlog_taken_in_one_batch_raises_the_alerts_of_small_batches() -> None:
    # a boat reporting every 10 s runs for the beach and lands: five minutes of its
    # reports in one batch are no AIS silence
    ps, ss, _ = landing_boat(NIGHT, moored_min=12)
    small = _drive(ps, ss, 10.0)
    assert {a.data.kind for a in small if a.data.status == "open"} == {"unusual_landing"}
    for batch_s in (120.0, 300.0, 900.0):
        backlog = _drive(ps, ss, batch_s)
        assert msgspec.json.encode(backlog) == msgspec.json.encode(small), batch_s


@pytest.mark.unit
def test_replay_of_the_short_chaos_night_does_not_depend_on_its_window(tmp_path) -> None:
    from pipeline.replay import run_replay
    from pipeline.tools.chaos import SITE, ChaosConfig, prepare_night

    night = prepare_night(ChaosConfig.short(), tmp_path)
    opened = {}
    for window_ms in (1_000, 300_000):
        r = run_replay(
            SITE, [night / "ais.nmea"], [night / "detections.jsonl"], window_ms=window_ms
        )
        opened[window_ms] = sorted(a.data.alert_id for a in r.alerts if a.data.status == "open")
    assert opened[1_000] and opened[300_000] == opened[1_000]


@pytest.mark.unit
def test_only_vessels_that_can_reach_the_area_are_stepped_report_by_report() -> None:
    # rounds cost a Track per report: a vessel whose reports are all outside the area's
    # box gets one update per batch, as before
    inside, ss, _ = landing_boat(NIGHT)
    outside = [fix(412345009, NIGHT + k * 10_000, 111.5, 21.5, 8.0, 90.0) for k in range(10)]
    batch = sorted(inside[:10] + outside, key=lambda p: p.t_ms)
    bbox = (109.5, 19.5, 110.9, 20.5)
    result, every = track_step_per_fix({}, batch, ss, TrackParams(), bbox)
    assert sorted(tr.t_ms for tr in every if tr.mmsi == inside[0].mmsi) == [
        p.t_ms for p in inside[:10]
    ]
    assert [tr.t_ms for tr in every if tr.mmsi == 412345009] == [outside[-1].t_ms]
    single = track_step({}, batch, ss, TrackParams())
    enc = msgspec.json.encode
    assert sorted(enc(tr) for tr in result.updates) == sorted(enc(tr) for tr in single.updates)
    assert result.counters["positions"] == 20 and result.counters["updates"] == 2
