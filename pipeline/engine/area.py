"""The area step: one area (site) advanced by track updates, camera frames and watermarks,
in event-time order (see :mod:`pipeline.engine.watermarks` for the rules)."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.engine.identity import keep_identities
from pipeline.engine.picture import evaluate
from pipeline.engine.radar_area import hold_radar
from pipeline.engine.state import (
    AreaContext,
    AreaState,
)
from pipeline.engine.watermarks import area_watermark, hold, release
from schemas.records import (
    Alert,
    CameraBacklog,
    CameraFrame,
    RadarTarget,
    Track,
    VesselIdentity,
    Watermark,
)


def area_step(
    state: AreaState | None,
    tracks: Sequence[Track],
    frames: Sequence[CameraFrame],
    ctx: AreaContext,
    marks: Sequence[Watermark] | None = None,
    radar: Sequence[RadarTarget] = (),
    identities: Sequence[VesselIdentity] = (),
    backlogs: Sequence[CameraBacklog] = (),
) -> tuple[AreaState, list[Alert]]:
    """Advance one area by a batch of track updates, camera frames and AIS watermarks.

    Input is held until the area's watermark (the minimum of its inputs' watermarks, see
    :mod:`pipeline.engine.watermarks`) has passed it, then applied in event-time order;
    the detectors run at fixed event times (the end of every tick of
    :attr:`Thresholds.eval_tick_s` that received input, and
    :data:`~pipeline.engine.watermarks.EVAL_GRID_MS` after the last evaluation when no
    tick end comes sooner), each once the watermark has reached
    it. The alerts therefore depend on the input alone, not on how it was batched nor on
    how fast each path delivered it. Frames from cameras not in ``ctx.cameras``,
    out-of-order frames and unusable detections are counted in ``state.counters`` and
    skipped; input older than the area's watermark is applied at once and counted as
    ``late``.

    :param state: the area's state from the previous call (updated in place), or ``None``
    :param tracks: track updates (:func:`track_step` output) of vessels in the area
    :param frames: analysed camera frames
    :param ctx: the area's fixed context
    :param marks: the AIS inputs' watermarks that came with the batch (the live worker, and
        replay); ``None`` for input known to be in event-time order and complete up to its
        newest event time (tests; a driver with all input at hand): its own watermark is
        then just past that
    :param radar: radar target reports (:mod:`pipeline.engine.radar_area`)
    :param identities: the registry's answers for the batch's MMSIs and hull numbers, as
        the driver resolved them (:mod:`pipeline.engine.identity`)
    :param backlogs: the camera path's backlog reports (the live worker only): a camera
        whose frames wait unread is waited for, never counted offline
    :returns: the new state and the alert events (open / update / closed), in order
    """
    st = state if state is not None else AreaState()
    keep_identities(st, identities)
    late_t, late_f = hold(st, ctx, tracks, frames, marks or (), backlogs)
    late_r = hold_radar(st, radar)
    if marks is None:
        newest = max(
            [*(x.t_ms for x in tracks), *(x.t_ms for x in frames), *(x.t_ms for x in radar)],
            default=-1,
        )
        w = max(st.released_t_ms, newest + 1 if newest >= 0 else -1)
    else:
        w = area_watermark(st, ctx)
    return st, release(st, ctx, w, late_t, late_f, late_r)


def flush_area(state: AreaState, ctx: AreaContext, until_t_ms: int | None = None) -> list[Alert]:
    """End of input (replay): release everything held and make the evaluation at the end
    of the open tick; with ``until_t_ms``, let the area's watermark run on to that time
    (evaluating at least every second of it, e.g. to let silences and dwells elapse) and evaluate there."""
    held = [x.t_ms for x in state.held_tracks] + [x.t_ms for x in state.held_frames]
    held += [x.t_ms for x in state.held_radar]
    out = release(state, ctx, max([state.released_t_ms, *(t + 1 for t in held)]))
    if state.tick >= 0:
        tick_ms = max(1, int(round(ctx.thresholds.eval_tick_s * 1000.0)))
        out += release(state, ctx, (state.tick + 1) * tick_ms)
    if until_t_ms is not None and until_t_ms > state.evaluated_t_ms and state.first_t_ms >= 0:
        out += release(state, ctx, until_t_ms)
        if until_t_ms > state.evaluated_t_ms:
            out += evaluate(state, until_t_ms, ctx)
    return out
