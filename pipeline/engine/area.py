"""The area step: one area (site) advanced by track updates and camera frames, in event-time order."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.engine.picture import evaluate, step_in_order
from pipeline.engine.reorder import _release_in_order
from pipeline.engine.state import (
    AreaContext,
    AreaState,
)
from schemas.records import (
    Alert,
    CameraFrame,
    Track,
)


def area_step(
    state: AreaState | None,
    tracks: Sequence[Track],
    frames: Sequence[CameraFrame],
    ctx: AreaContext,
) -> tuple[AreaState, list[Alert]]:
    """Advance one area by a batch of track updates and camera frames.

    Inputs are taken in event-time order (ties: tracks before frames, then input order);
    the detectors run at the end of every tick of :attr:`Thresholds.eval_tick_s` that
    received input, once an input of a later tick arrives (see the module docstring), so
    the alerts of a time-ordered stream do not depend on how it is split into batches.
    Frames from cameras not in ``ctx.cameras``, out-of-order frames and unusable
    detections are counted in ``state.counters`` and skipped; input older than the open
    tick is applied and counted as ``late``.

    :param state: the area's state from the previous call (updated in place), or ``None``
    :param tracks: track updates (:func:`track_step` output) of vessels in the area
    :param frames: analysed camera frames
    :param ctx: the area's fixed context
    :returns: the new state and the alert events (open / update / closed), in order
    """
    st = state if state is not None else AreaState()
    if ctx.lateness_ms > 0:
        tracks, frames = _release_in_order(st, tracks, frames, ctx.lateness_ms)
    return step_in_order(st, tracks, frames, ctx)


def advance_area(state: AreaState, ctx: AreaContext, clock_t_ms: int) -> list[Alert]:
    """Let the area's event clock reach ``clock_t_ms`` with no new input.

    A live driver calls this between inputs with its own estimate of the event time now
    (the newest input's event time plus the time elapsed since it arrived), so that a
    condition that matures with time alone (a dwell, an AIS silence) is evaluated when it
    becomes true, not when the next input arrives. Held input up to ``clock_t_ms -
    ctx.lateness_ms`` is released (as if input that new had arrived) and the detectors run
    at that time. Input that later turns up older than it is applied and counted ``late``
    as usual. Replay never calls this; a driver that does may open an alert earlier than
    replay (by up to an input gap), or open one for a condition that held only between
    two inputs.

    :param clock_t_ms: the driver's event time now, ms UTC
    :returns: the alert events of the releases and the evaluation
    """
    st = state
    if clock_t_ms <= st.held_until_t_ms or not (st.held_tracks or st.held_frames or st.tick >= 0):
        return []  # no input yet, or the clock has been here
    st.held_until_t_ms = clock_t_ms
    cut = clock_t_ms - ctx.lateness_ms
    out: list[Alert] = []
    rel_t, rel_f = _release_in_order(st, [], [], ctx.lateness_ms)  # the clock is the newest
    if rel_t or rel_f:
        out += step_in_order(st, rel_t, rel_f, ctx)[1]
    tick_ms = max(1, int(round(ctx.thresholds.eval_tick_s * 1000.0)))
    end = (cut // tick_ms) * tick_ms  # the last tick boundary the clock has passed
    if st.first_t_ms >= 0 and end > st.watermark_t_ms and end > st.evaluated_t_ms:
        open_end = (st.tick + 1) * tick_ms
        if st.tick >= 0 and st.evaluated_t_ms < open_end < end:
            out += evaluate(st, open_end, ctx)  # the open tick, where replay evaluates it
        out += evaluate(st, end, ctx)
        st.tick = end // tick_ms
    return out


def flush_area(state: AreaState, ctx: AreaContext, until_t_ms: int | None = None) -> list[Alert]:
    """End of input: evaluate the open tick (and, with ``until_t_ms``, once more at that
    time, e.g. to let silences and dwells elapse). Replay calls this at the end."""
    th = ctx.thresholds
    tick_ms = max(1, int(round(th.eval_tick_s * 1000.0)))
    out: list[Alert] = []
    if state.held_tracks or state.held_frames:  # input still waiting out the lateness
        held_t, held_f = state.held_tracks, state.held_frames
        state.held_tracks, state.held_frames = [], []
        out += step_in_order(state, held_t, held_f, ctx)[1]
    if state.tick >= 0:
        out += evaluate(state, (state.tick + 1) * tick_ms, ctx)
        state.tick = -1
    if until_t_ms is not None and until_t_ms > state.watermark_t_ms:
        out += evaluate(state, until_t_ms, ctx)
        state.watermark_t_ms = until_t_ms
        state.tick = -1
    return out
