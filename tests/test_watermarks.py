"""The area's watermarks: input released in event-time order whatever the path delays,
evaluation times fixed by the input alone, quiet inputs, restarts.

The scenario is the mixed stream of ``test_detectors`` (a landing, a dark approach, a dark
boat seen by a camera, an identity anomaly): its track updates come by the AIS path with
the tracks agent's watermarks, its frames by the camera path.
"""

from __future__ import annotations

import dataclasses

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st_
from test_detectors import (
    NIGHT,
    _iso,
    _scenario_stream,
    camera,
    ctx,
    det_at,
    frame,
    landing_boat,
    lat_at,
)

from pipeline.engine.area import area_step, flush_area
from pipeline.engine.state import AreaContext, AreaState
from pipeline.engine.tracks import TrackParams, track_step
from pipeline.engine.watermarks import (
    CAMERA_PATH_IDLE_FACTOR,
    EVAL_GRID_MS,
    ais_marks,
    area_watermark,
    fixes_progress,
)
from schemas.records import FixColumns, Watermark

pytestmark = pytest.mark.unit

END = NIGHT + 900_000


def _ordered(c: AreaContext, stream: list) -> list:
    """The reference: the whole stream at once, in event-time order (no watermarks)."""
    st, out = area_step(
        None, [x[2] for x in stream if x[1] == 0], [x[2] for x in stream if x[1] == 1], c
    )
    return out + flush_area(st, c, END)


def _paths(stream: list) -> tuple[list, list]:
    return [x[2] for x in stream if x[1] == 0], [x[2] for x in stream if x[1] == 1]


def _deliveries(tracks: list, frames: list, ais_cuts, cam_cuts, order) -> list[tuple]:
    """The two paths as micro-batches, interleaved by ``order`` (True: the AIS path's next
    batch, False: the camera's). Every AIS batch is followed by its watermark: the newest
    track time so far (the stream is in event-time order, so nothing older follows)."""

    def batches(items, cuts):
        b = sorted({x for x in cuts if 0 < x < len(items)})
        return [items[a:z] for a, z in zip([0, *b], [*b, len(items)], strict=True)]

    ais = []
    newest = -1
    for chunk in batches(tracks, ais_cuts):
        newest = max([newest, *(t.t_ms for t in chunk)])
        ais.append((chunk, [], [Watermark(partition=0, t_ms=newest)]))
    cam = [([], chunk, []) for chunk in batches(frames, cam_cuts)]
    out = []
    for take_ais in order:
        src = ais if take_ais else cam
        if src:
            out.append(src.pop(0))
    return out + ais + cam


def _live(c: AreaContext, deliveries: list, restart: bool = True) -> list:
    st = None
    out: list = []
    for tracks, frames, marks in deliveries:
        st, alerts = area_step(st, tracks, frames, c, marks)
        out += alerts
        if restart:  # as the Faust table does between batches (and a restart from it)
            st = AreaState.from_bytes(st.to_bytes())
    assert st is not None
    # the end of input: the AIS watermark passes the end (the live area's inputs go on)
    st, alerts = area_step(st, [], [], c, [Watermark(partition=0, t_ms=END)])
    assert st.counters.get("late", 0) == 0
    return out + alerts + flush_area(st, c, END)


_REF = None


def _reference():
    global _REF
    if _REF is None:
        c, stream = _scenario_stream()
        c = dataclasses.replace(c, camera_idle_ms=10**12)  # no camera ever counts as quiet
        _REF = (c, stream, _ordered(c, stream))
    return _REF


def test_the_ordered_reference_raises_the_scenarios_alerts():
    _, _, whole = _reference()
    kinds = {a.data.kind for a in whole if a.data.status == "open"}
    assert {"unusual_landing", "dark_approach", "dark_vessel", "identity_anomaly"} <= kinds


@pytest.mark.timeout(1200)  # each example replays the scenario; slow on a loaded machine
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st_.lists(st_.integers(0, 40), max_size=8),
    st_.lists(st_.integers(0, 90), max_size=8),
    st_.lists(st_.booleans(), max_size=20),
)
def test_alerts_do_not_depend_on_how_paths_and_watermarks_interleave(ais_cuts, cam_cuts, order):
    c, stream, whole = _reference()
    tracks, frames = _paths(stream)
    live = _live(c, _deliveries(tracks, frames, ais_cuts, cam_cuts, order))
    assert msgspec.json.encode(live) == msgspec.json.encode(whole)


def test_frames_wait_for_the_slower_ais_path():
    """Every frame arrives before any AIS (the AIS path stalled): nothing is applied
    until the AIS watermark passes it, then everything in event-time order."""
    c, stream, whole = _reference()
    tracks, frames = _paths(stream)
    st, out = area_step(None, [], frames, c, [])
    assert out == [] and st.released_t_ms == -1 and len(st.held_frames) == len(frames)
    assert st.targets == {} and st.evaluated_t_ms == -1
    mid = tracks[len(tracks) // 2].t_ms
    early = [t for t in tracks if t.t_ms <= mid]
    st, out1 = area_step(st, early, [], c, [Watermark(partition=0, t_ms=mid)])
    assert st.released_t_ms == mid
    assert all(f.t_ms >= mid for f in st.held_frames)
    assert st.evaluated_t_ms <= mid
    rest = [t for t in tracks if t.t_ms > mid]
    st, out2 = area_step(st, rest, [], c, [Watermark(partition=0, t_ms=END)])
    assert st.counters.get("late", 0) == 0
    got = out + out1 + out2 + flush_area(st, c, END)
    assert msgspec.json.encode(got) == msgspec.json.encode(whole)


def test_an_ais_partition_never_heard_from_holds_the_area_back():
    c = dataclasses.replace(ctx(), ais_partitions=2)
    ps, ss, _ = landing_boat(NIGHT)
    (tr,) = track_step({}, ps[:1], ss, TrackParams()).updates
    st, _ = area_step(None, [tr], [], c, [Watermark(partition=0, t_ms=NIGHT + 60_000)])
    assert st.held_tracks == [tr] and st.vessels == {} and area_watermark(st, c) == -1
    # the quiet partition's heartbeat (its progress, in order with its fixes) lets it go
    st, _ = area_step(st, [], [], c, [Watermark(partition=1, t_ms=NIGHT + 30_000)])
    assert st.held_tracks == [] and tr.mmsi in st.vessels
    assert st.released_t_ms == NIGHT + 30_000  # the minimum of the two partitions
    # the fix's tick, then a second at a time with no more input
    assert st.evaluated_t_ms == NIGHT + 250 + 29 * EVAL_GRID_MS


def test_a_quiet_camera_stops_holding_the_area_back_after_its_idle_time():
    cam = camera()
    c = dataclasses.replace(ctx({"cam1": cam, "cam2": cam}), camera_idle_ms=30_000)
    d = det_at(cam, 1, 110.1, lat_at(500))
    # cam2 never sends: it counts from the area's first input
    st, _ = area_step(None, [], [frame("cam1", NIGHT, [d])], c, [Watermark(t_ms=NIGHT)])
    st, _ = area_step(st, [], [frame("cam1", NIGHT + 1000, [d])], c, [Watermark(t_ms=NIGHT + 1000)])
    assert st.released_t_ms == NIGHT  # cam2 holds it back
    # the AIS and cam1 run on; cam2 is quiet once cam1 is 30 s ahead of it
    for k in range(2, 40):
        t = NIGHT + k * 1000
        st, _ = area_step(st, [], [frame("cam1", t, [d])], c, [Watermark(t_ms=t)])
        if k * 1000 - c.camera_disorder_ms <= 30_000:
            assert st.released_t_ms == NIGHT, k
    assert st.released_t_ms == NIGHT + 39_000 - c.camera_disorder_ms  # cam1's watermark
    # cam1 stalls (the only camera left): the AIS runs on, the area waits for cam1 (a
    # stalled camera path) until the AIS is far ahead (every camera offline)
    st, _ = area_step(st, [], [], c, [Watermark(t_ms=NIGHT + 60_000)])
    assert st.released_t_ms == NIGHT + 39_000 - c.camera_disorder_ms
    far = NIGHT + 39_000 - c.camera_disorder_ms + CAMERA_PATH_IDLE_FACTOR * c.camera_idle_ms
    st, _ = area_step(st, [], [], c, [Watermark(t_ms=far)])
    assert st.released_t_ms == NIGHT + 39_000 - c.camera_disorder_ms  # cam1 not quite
    st, _ = area_step(st, [], [], c, [Watermark(t_ms=far + 1)])
    assert st.released_t_ms == far + 1  # every camera quiet: the AIS alone
    # cam2 comes online: it holds the area again from its first frame, never back in time
    st, _ = area_step(st, [], [frame("cam2", far + 2_000, [d])], c, [])
    assert st.released_t_ms == far + 1
    st, _ = area_step(st, [], [], c, [Watermark(t_ms=far + 10_000)])
    assert st.released_t_ms == far + 2_000 - c.camera_disorder_ms
    assert st.counters.get("late", 0) == 0 and st.counters["frames"] == 40


def test_input_older_than_the_area_watermark_is_applied_and_counted_late():
    c = ctx()
    ps, ss, _ = landing_boat(NIGHT)
    (tr,) = track_step({}, ps[:1], ss, TrackParams()).updates
    st, _ = area_step(None, [], [], c, [Watermark(t_ms=NIGHT + 5_000)])
    assert st.released_t_ms == NIGHT + 5_000 and st.evaluated_t_ms == -1  # no input yet
    st, _ = area_step(st, [tr], [], c, [])
    assert st.counters["late"] == 1 and tr.mmsi in st.vessels


def test_a_landing_opens_when_the_watermark_passes_the_dwell_without_more_input():
    """The boat's last fix is a minute into its stop; only the AIS watermark moves on
    (other vessels elsewhere): the landing opens at the evaluation where the watermark
    passes the end of the dwell, with the exact event time."""
    c = ctx()
    ps, ss, _ = landing_boat(NIGHT)
    stop_t = NIGHT + 30 * 10_000
    true_t = stop_t + 180_000  # stop start + 3 min dwell
    tracks: dict = {}
    st = None
    for p in [p for p in ps if p.t_ms <= stop_t + 60_000]:
        r = track_step(tracks, [p], [s for s in ss if p.mmsi not in tracks], TrackParams())
        for tr in r.updates:
            tracks[tr.mmsi] = tr
        st, out = area_step(st, r.updates, [], c, [Watermark(t_ms=p.t_ms)])
        assert not [a for a in out if a.data.kind == "unusual_landing"]
    assert st is not None
    st, out = area_step(st, [], [], c, [Watermark(t_ms=true_t - 1)])
    assert not [a for a in out if a.data.kind == "unusual_landing"]  # the dwell is not over
    assert true_t - EVAL_GRID_MS <= st.evaluated_t_ms < true_t  # evaluated meanwhile
    w = true_t + EVAL_GRID_MS
    st, out = area_step(st, [], [], c, [Watermark(t_ms=w)])
    (a,) = [a for a in out if a.data.kind == "unusual_landing"]
    assert a.data.status == "open" and a.data.event_time == _iso(true_t)
    assert true_t <= st.evaluated_t_ms <= w
    # the same watermark again, or an older one: nothing more to do
    assert area_step(st, [], [], c, [Watermark(t_ms=w)])[1] == []
    assert area_step(st, [], [], c, [Watermark(t_ms=true_t - 5_000)])[1] == []


def test_a_restart_resumes_from_the_saved_state_with_the_same_alerts():
    """The worker dies after a batch; its successor restores the area from the changelog
    (the state's bytes) and the same deliveries continue: the same alerts, watermarks,
    held input and all."""
    c, stream, whole = _reference()
    tracks, frames = _paths(stream)
    deliveries = _deliveries(tracks, frames, [10, 20, 30], [20, 50, 70], [False, True] * 4)
    st = None
    out: list = []
    for k, (trs, frs, marks) in enumerate(deliveries):
        st, alerts = area_step(st, trs, frs, c, marks)
        out += alerts
        if k == 3:
            saved = st.to_bytes()
            assert st.held_frames or st.held_tracks  # the restart has held input to carry
            st = AreaState.from_bytes(saved)
            assert st.ais_marks and st.cam_marks and st.released_t_ms > 0
    assert st is not None
    st, alerts = area_step(st, [], [], c, [Watermark(t_ms=END)])
    got = out + alerts + flush_area(st, c, END)
    assert msgspec.json.encode(got) == msgspec.json.encode(whole)


def test_ais_watermarks_follow_each_partitions_progress_minus_the_disorder():
    progress: dict[int, int] = {}
    import numpy as np

    empty = FixColumns(n=0, positions=b"", partition=2, t_ms=NIGHT + 9_000)
    fixes_progress(progress, empty, np.zeros(0, dtype=np.int64))
    # fixes of a source ahead of the stage's progress (another source's backlog still
    # coming) do not advance it: the progress the record states does
    full = FixColumns(n=0, positions=b"", partition=1, t_ms=NIGHT + 5_000)
    fixes_progress(progress, full, np.array([NIGHT + 7_000, NIGHT + 3_000]))
    none_yet = FixColumns(n=0, positions=b"", partition=1, t_ms=-1)
    fixes_progress(progress, none_yet, np.array([NIGHT + 8_000]))
    old = FixColumns(n=0, positions=b"")  # a record of an older release: no partition
    fixes_progress(progress, old, np.array([NIGHT + 99_000]))
    assert progress == {1: NIGHT + 5_000, 2: NIGHT + 9_000}
    sent: dict[int, int] = {}
    marks = ais_marks(progress, sent, 5_000)
    assert [(m.partition, m.t_ms) for m in marks] == [(1, NIGHT), (2, NIGHT + 4_000)]
    assert ais_marks(progress, sent, 5_000) == []  # nothing new: nothing sent
    assert ais_marks({1: NIGHT + 6_000}, sent, 5_000, cap_t_ms=NIGHT + 500) == [
        Watermark(partition=1, t_ms=NIGHT + 500)
    ]


def _camera_held_area(c: AreaContext) -> AreaState:
    """An area whose only content is a camera target's episode, its camera silent for ten
    minutes (down: the episode does not count down to closing)."""
    from pipeline.engine.state import _Episode

    st = AreaState(first_t_ms=NIGHT, evaluated_t_ms=NIGHT + 600_000)
    st.cam_t_ms["cam-a"] = NIGHT
    st.episodes["dark_vessel|cam:cam-a:7"] = _Episode(
        alert_id=f"dark_vessel:cam:cam-a:7:{NIGHT}",
        kind="dark_vessel",
        subject="cam:cam-a:7",
        start_t_ms=NIGHT,
        false_since_t_ms=NIGHT + 200_000,
    )
    return st


def test_a_clock_months_ahead_skips_the_evaluations_that_cannot_change_anything():
    """Only episodes held open by a down camera: the evaluations of a gap change nothing,
    so the area steps over it at once (a receiver whose clock is months off once cost an
    evaluation per second of the gap) and ends in the state evaluating each one gives."""
    from pipeline.engine.picture import evaluate
    from pipeline.engine.watermarks import evaluate_until

    c = ctx()
    one_by_one, skipped = _camera_held_area(c), _camera_held_area(c)
    t_ms = NIGHT + 600_000 + 30 * 60_000 + 500
    due = one_by_one.evaluated_t_ms + EVAL_GRID_MS
    events = []
    while due <= t_ms:
        events += evaluate(one_by_one, due, c)
        due += EVAL_GRID_MS
    assert events == [] and one_by_one.episodes["dark_vessel|cam:cam-a:7"].false_since_t_ms == -1
    assert evaluate_until(skipped, c, t_ms) == []
    assert msgspec.msgpack.encode(skipped) == msgspec.msgpack.encode(one_by_one)
    # nine months on: one step, the episode still open, the chain on its grid
    far = t_ms + 270 * 86_400_000
    assert evaluate_until(skipped, c, far) == []
    assert skipped.evaluated_t_ms == far - (far - skipped.first_t_ms) % EVAL_GRID_MS
    assert list(skipped.episodes) == ["dark_vessel|cam:cam-a:7"]


def test_an_episode_whose_camera_still_looks_is_evaluated_and_counts_down():
    """The skip needs every episode held by a down camera: one whose camera sent a frame
    lately is evaluated each second and goes on counting down to closing."""
    from pipeline.engine.watermarks import evaluate_until

    c = ctx()
    st = _camera_held_area(c)
    st.cam_t_ms["cam-a"] = st.evaluated_t_ms  # the camera looks, and sees nothing
    st.episodes["dark_vessel|cam:cam-a:7"].false_since_t_ms = NIGHT + 590_000
    assert evaluate_until(st, c, st.evaluated_t_ms + 20_000) == []
    assert st.episodes["dark_vessel|cam:cam-a:7"].false_since_t_ms == NIGHT + 590_000
    assert st.evaluated_t_ms == NIGHT + 620_000
