"""Event-time alignment of an area's inputs: watermarks, the release of held input, and
the evaluation times of the detectors.

An area has two input paths that reach it with different latencies: AIS through the
decode and tracks agents, camera frames almost straight from the cameras. Each input
states its progress in event time, a *watermark* ``W``: no more input of it older than
``W`` will come.

- **AIS**: one input per ``ais.fixes`` partition (``0 .. ctx.ais_partitions - 1``).
  The tracks agent sends a :class:`~schemas.records.Watermark` for a partition after
  every micro-batch that advanced it: the decode stage's progress processed on the
  partition (the minimum over the AIS sources still sending of the newest event time
  each delivered, :mod:`pipeline.engine.source_progress`) minus the allowed AIS disorder. Every partition carries the decode stage's progress in
  order with its fixes (an empty fixes record where a decode micro-batch had none), so a
  quiet partition keeps pace with the others and never runs ahead of fixes still queued
  on it. An AIS partition never heard from holds the area back.
- **Cameras**: a camera's frames arrive in order and a camera sends one per analysed
  frame, empty or not, so its watermark is its newest frame time minus
  ``ctx.camera_disorder_ms``. A camera not heard from yet counts from the area's first
  input (track update or frame; watermarks alone start nothing). A camera whose
  watermark trails the most advanced camera's by more than ``ctx.camera_idle_ms`` of
  event time is quiet (offline, or never online) and is left out until it sends again.
  Cameras that trail together (the camera path stalled, not a camera gone) hold the area
  back, until they trail the AIS by :data:`CAMERA_PATH_IDLE_FACTOR` times that (every
  camera offline).
- **Camera backlogs**: a camera whose frames wait unread in the camera path (its
  ``camera.detection`` partition behind, as the feed agent reports it in a
  :class:`~schemas.records.CameraBacklog`) is not offline, however far it trails: it
  holds the area back, by either rule above, until a report says its partition is read
  up to date (``AreaState.cam_behind``). Only then can the idle rules count it offline.
  Replay sends no such report (all its input is at hand).

The area's watermark is the minimum over its inputs (quiet cameras left out), and never
goes back. Input is held until the area's watermark has passed it, then applied in
event-time order (ties: tracks before frames, then by MMSI or camera, then arrival).
Input that arrives older than the area's watermark is *late*: applied at once and
counted (``late``), except a track republished with new static data only, which carries
the time of its last fix.

**Evaluation times.** The detectors run at fixed event times: at the end of every
evaluation tick (:attr:`Thresholds.eval_tick_s`) that received input, and
:data:`EVAL_GRID_MS` after the last evaluation whenever no tick end comes sooner (so that
a dwell or an AIS silence matures with no input at all, and dense input, cameras sending
every second, adds no evaluation). An evaluation at ``E`` sees exactly the input older than
``E``; it is made once the area's watermark reaches ``E``. Both depend on the input
alone, not on how it was batched nor on how the watermarks advanced, so a live worker
and replay evaluate at the same times on the same state and raise the same alerts,
unless input comes late.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.engine.episodes import camera_down
from pipeline.engine.picture import _apply_frame, _apply_track, _identity_refresh, _StepCache
from pipeline.engine.picture import evaluate as _evaluate
from pipeline.engine.radar_area import apply_radar
from pipeline.engine.state import AreaContext, AreaState
from schemas.records import (
    Alert,
    CameraBacklog,
    CameraFrame,
    FixColumns,
    RadarTarget,
    Track,
    Watermark,
)

__all__ = [
    "CAMERA_PATH_IDLE_FACTOR",
    "EVAL_GRID_MS",
    "ais_marks",
    "area_watermark",
    "evaluate_until",
    "fixes_progress",
    "hold",
    "release",
]

#: cameras that all trail the AIS watermark by this many times ``camera_idle_ms`` are
#: all quiet (every camera offline); less is a stalled camera path, waited for
CAMERA_PATH_IDLE_FACTOR = 10

#: the most event time between two evaluations of an area, ms: without input, one more
#: evaluation this long after the last
EVAL_GRID_MS = 1000


def _tick_ms(ctx: AreaContext) -> int:
    return max(1, int(round(ctx.thresholds.eval_tick_s * 1000.0)))


def hold(
    st: AreaState,
    ctx: AreaContext,
    tracks: Sequence[Track],
    frames: Sequence[CameraFrame],
    marks: Sequence[Watermark],
    backlogs: Sequence[CameraBacklog] = (),
) -> tuple[list[Track], list[CameraFrame]]:
    """Take in a batch: note the watermarks (AIS marks, cameras' newest frames, the camera
    backlog reports) and hold the input the area's watermark has not passed yet.

    :param backlogs: the camera path's backlog reports, in arrival order
    :returns: the late input (older than the area's watermark), to apply at once
    """
    if backlogs:
        behind = set(st.cam_behind)
        for b in backlogs:
            behind.difference_update(b.cameras)
            behind.update(c for c in b.behind if c in ctx.cameras)
        st.cam_behind = sorted(behind)
    times = [x.t_ms for x in tracks] + [x.t_ms for x in frames]
    if times and st.start_t_ms < 0:
        st.start_t_ms = min(times)
    for m in marks:
        if m.t_ms > st.ais_marks.get(m.partition, -1):
            st.ais_marks[m.partition] = m.t_ms
    for fr in frames:
        if fr.camera_id in ctx.cameras and fr.t_ms > st.cam_marks.get(fr.camera_id, -1):
            st.cam_marks[fr.camera_id] = fr.t_ms
    cut = st.released_t_ms
    late_t = [x for x in tracks if x.t_ms < cut]
    late_f = [x for x in frames if x.t_ms < cut]
    st.held_tracks += [x for x in tracks if x.t_ms >= cut] if late_t else tracks
    st.held_frames += [x for x in frames if x.t_ms >= cut] if late_f else frames
    return late_t, late_f


def area_watermark(st: AreaState, ctx: AreaContext) -> int:
    """The area's watermark from its inputs' (see the module docstring), ms UTC; never
    less than the one already released."""
    ais = min((st.ais_marks.get(p, -1) for p in range(ctx.ais_partitions)), default=-1)
    if ais < 0:  # an AIS input not heard from yet
        return st.released_t_ms
    cams = [
        st.cam_marks[c] - ctx.camera_disorder_ms if c in st.cam_marks else st.start_t_ms
        for c in ctx.cameras
    ] + [m - ctx.camera_disorder_ms for m in st.radar_marks.values()]  # radars: like cameras
    top = max(cams, default=-1)
    gone = ais - CAMERA_PATH_IDLE_FACTOR * ctx.camera_idle_ms
    active = [w for w in cams if w >= top - ctx.camera_idle_ms and w >= gone]
    if st.cam_behind:  # frames waiting in a backlog: not offline, waited for
        behind = set(st.cam_behind)
        active += [
            st.cam_marks[c] - ctx.camera_disorder_ms if c in st.cam_marks else st.start_t_ms
            for c in ctx.cameras
            if c in behind
        ]
    return max(st.released_t_ms, min([ais, *active]))


def _nothing_can_mature(st: AreaState, ctx: AreaContext, t_ms: int) -> bool:
    """No vessel, no target, and every open episode held open by its camera being down at
    ``t_ms`` (:func:`~pipeline.engine.episodes.camera_down`, which stays true until the
    camera sends again, i.e. until input): evaluations from ``t_ms`` on change nothing."""
    if st.vessels or st.targets:
        return False
    th = ctx.thresholds
    return all(camera_down(st, ep.subject, t_ms, th) for ep in st.episodes.values())


def evaluate_until(
    st: AreaState, ctx: AreaContext, t_ms: int, cache: _StepCache | None = None
) -> list[Alert]:
    """Make every evaluation due at or before ``t_ms`` (the end of the open tick, or
    :data:`EVAL_GRID_MS` after the last), in order. The caller guarantees that all input
    older than ``t_ms`` is applied.

    :param cache: the step's cache, told when an evaluation forgets vessels
    """
    if st.first_t_ms < 0:
        return []  # no input yet: nothing to evaluate
    tick = _tick_ms(ctx)
    out: list[Alert] = []
    while True:
        idle = max(st.evaluated_t_ms, st.first_t_ms) + EVAL_GRID_MS
        open_end = (st.tick + 1) * tick if st.tick >= 0 else idle
        due = min(idle, open_end)
        if due > t_ms:
            return out
        if st.tick < 0 and _nothing_can_mature(st, ctx, due):
            # Every evaluation due finds nothing: step the chain to its last point at or
            # before t_ms at once, the same point one by one would reach (a receiver whose
            # clock is months off would otherwise cost an evaluation per second of the
            # gap). Episodes held open by their camera being down stay so. Housekeeping
            # waits for the next real evaluation, which drops the same stale entries.
            for ep in st.episodes.values():
                ep.false_since_t_ms = -1
            st.evaluated_t_ms = idle + (t_ms - idle) // EVAL_GRID_MS * EVAL_GRID_MS
            return out
        n_vessels = len(st.vessels)
        out += _evaluate(st, due, ctx)
        if st.tick >= 0 and due >= open_end:
            st.tick = -1
        if cache is not None and len(st.vessels) != n_vessels:
            cache.vessels = None


def release(
    st: AreaState,
    ctx: AreaContext,
    w_ms: int,
    late_tracks: Sequence[Track] = (),
    late_frames: Sequence[CameraFrame] = (),
    late_radar: Sequence[RadarTarget] = (),
) -> list[Alert]:
    """Apply the late input, then let the area's watermark reach ``w_ms``: the held input
    older than it in event-time order, each after the evaluations due before it, then
    the evaluations due up to ``w_ms``.

    :returns: the alert events, in order
    """
    if st.context != ctx.fingerprint:  # new geometry or thresholds: cached geometry is stale
        for v in st.vessels.values():
            v.geo = []
        for tg in st.targets.values():
            tg.geo = []
        st.context = ctx.fingerprint
    th = ctx.thresholds
    cache = _StepCache()
    late_t = [x.t_ms for x in late_tracks] + [x.t_ms for x in late_frames]
    late_t += [x.t_ms for x in late_radar]
    if late_t and st.first_t_ms < 0:
        st.first_t_ms = min(late_t)
    for tr in sorted(late_tracks, key=lambda x: (x.t_ms, x.mmsi)):
        if not _identity_refresh(st, tr):
            st.count("late")
        if _apply_track(st, tr, th):
            cache.vessels = None
    for fr in sorted(late_frames, key=lambda x: (x.t_ms, x.camera_id)):
        st.count("late")
        _apply_frame(st, fr, ctx, cache)
    for r in sorted(late_radar, key=lambda x: (x.t_ms, x.radar_id, x.target_number)):
        st.count("late")
        apply_radar(st, r, cache, th, ctx.cameras)
    out: list[Alert] = []
    if w_ms > st.released_t_ms:
        tracks = [x for x in st.held_tracks if x.t_ms < w_ms]
        frames = [x for x in st.held_frames if x.t_ms < w_ms]
        st.held_tracks = [x for x in st.held_tracks if x.t_ms >= w_ms]
        st.held_frames = [x for x in st.held_frames if x.t_ms >= w_ms]
        radar = [x for x in st.held_radar if x.t_ms < w_ms]
        st.held_radar = [x for x in st.held_radar if x.t_ms >= w_ms]
        items = sorted(
            [(tr.t_ms, 0, tr.mmsi, "", i) for i, tr in enumerate(tracks)]
            + [(fr.t_ms, 1, 0, fr.camera_id, i) for i, fr in enumerate(frames)]
            + [(r.t_ms, 2, r.target_number, r.radar_id, i) for i, r in enumerate(radar)]
        )
        tick = _tick_ms(ctx)
        for t, kind, _, _, i in items:
            out += evaluate_until(st, ctx, t, cache)
            st.tick = t // tick
            st.watermark_t_ms = max(st.watermark_t_ms, t)
            if st.first_t_ms < 0:
                st.first_t_ms = t
            if kind == 0:
                if _apply_track(st, tracks[i], th):
                    cache.vessels = None
            elif kind == 1:
                _apply_frame(st, frames[i], ctx, cache)
            else:
                apply_radar(st, radar[i], cache, th, ctx.cameras)
        out += evaluate_until(st, ctx, w_ms, cache)
        st.released_t_ms = w_ms
    cache.store(st)
    return out


# --------------------------------------------------------------------------- the AIS path
def fixes_progress(progress: dict[int, int], rec: FixColumns, fix_t_ms: np.ndarray) -> None:
    """Note the event time an ``ais.fixes`` record brings its partition to: the decode
    stage's progress it carries (-1: none yet), not its own fixes: with several AIS
    sources, fixes of a source ahead of another whose input is still in a backlog must not
    make that backlog late (see :mod:`pipeline.engine.source_progress`). Records of an
    older release state neither partition nor progress and are left out.

    :param progress: newest event time per partition, ms UTC (updated in place)
    :param fix_t_ms: the event times of the record's position reports, ms UTC (unused:
        kept for the callers)
    """
    if rec.partition < 0:
        return
    if rec.t_ms > progress.get(rec.partition, -1):
        progress[rec.partition] = rec.t_ms


def ais_marks(
    progress: dict[int, int], sent: dict[int, int], disorder_ms: int, cap_t_ms: int | None = None
) -> list[Watermark]:
    """The AIS watermarks to send after a micro-batch: for every partition whose progress
    passed what was last sent, its newest event time minus the allowed disorder.

    :param progress: newest event time per partition this batch brought, ms UTC
    :param sent: the watermark last sent per partition, ms UTC (updated in place)
    :param disorder_ms: how far AIS may come out of event-time order on a partition, ms
    :param cap_t_ms: a live driver's wall clock plus a margin: one receiver whose clock runs
        months ahead must not make every other input late
    """
    out = []
    for part in sorted(progress):
        t = progress[part] - disorder_ms
        if cap_t_ms is not None:
            t = min(t, cap_t_ms)
        if t > sent.get(part, -1):
            sent[part] = t
            out.append(Watermark(path="ais", partition=part, t_ms=t))
    return out
