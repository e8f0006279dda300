"""Event-time order and the area clock: what is released to the area step, and when."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.engine.state import AreaState
from schemas.records import (
    CameraFrame,
    Track,
)


def _release_in_order(
    st: AreaState, tracks: Sequence[Track], frames: Sequence[CameraFrame], lateness_ms: int
) -> tuple[list[Track], list[CameraFrame]]:
    """The reorder stage: hold input until the largest event time seen is ``lateness_ms``
    past it, then release it. Two inputs whose paths to the area differ in latency (AIS
    through decode and tracks, frames straight from the camera) thus reach the detectors
    in event-time order, as in replay, as long as their disorder stays within the
    lateness; input later than that is still applied, and counted as ``late``."""
    held_t = st.held_tracks + list(tracks)
    held_f = st.held_frames + list(frames)
    newest = max([st.held_until_t_ms, *(x.t_ms for x in tracks), *(x.t_ms for x in frames)])
    st.held_until_t_ms = newest
    cut = newest - lateness_ms
    st.held_tracks = [x for x in held_t if x.t_ms > cut]
    st.held_frames = [x for x in held_f if x.t_ms > cut]
    return [x for x in held_t if x.t_ms <= cut], [x for x in held_f if x.t_ms <= cut]
