"""One alert per vessel per episode: conditions of camera targets that are the same vessel.

A vessel seen by cameras can be several camera targets over one episode: its image track
is lost and a new one starts after the stitching window (a boat on a beach at night is
seen in few frames), or two cameras see it. Each target would open its own alert of the
same kind at the same place: one episode, several alerts. :func:`fold_conditions` folds
the condition of a camera target (subject ``cam:...``) that has no episode of its own
into the nearest episode of the same kind within ``episode_merge_m`` of where its vessel
is now or where its alert last placed it (open, or still within ``episode_close_s`` of
its condition ending), or into another condition of the
same kind there in the same evaluation (one with an MMSI first: the same camera track
never opens one alert with the MMSI and one without). The earlier episode goes on with
the new target's condition (same alert id), so it closes only when no target of that
vessel holds the condition any more.

An episode of a camera target does not count down to closing while its camera sends no
frame (:func:`camera_down`): an outage is no evidence that the vessel left.

Pure functions of the area state and the conditions (event time only), so replay and the
Kafka worker fold alike.
"""

from __future__ import annotations

from pipeline.core.detectors import Condition, Thresholds
from pipeline.core.geo import haversine_m
from pipeline.engine.state import AreaState

__all__ = ["camera_down", "fold_conditions"]


def _is_camera(subject: str) -> bool:
    return subject.startswith("cam:")


def camera_down(st: AreaState, subject: str, now_t_ms: int, th: Thresholds) -> bool:
    """Whether the camera of a camera-target subject (``cam:<camera>:<track>``) sent no
    frame for ``camera_stale_s`` before ``now_t_ms``: its targets are not seen because it
    does not look, not because they left, so their episodes do not count down to closing
    (the count starts again once it sends frames)."""
    if not _is_camera(subject):
        return False
    cam = subject.split(":")[1]
    last = st.cam_t_ms.get(cam)
    return last is not None and now_t_ms - last > th.camera_stale_s * 1000.0


def fold_conditions(
    st: AreaState, active: dict[str, Condition], th: Thresholds
) -> dict[str, Condition]:
    """The conditions of one evaluation keyed by episode (``<kind>|<subject>``), with
    every new camera-target condition folded into the nearest same-kind episode or
    condition within ``episode_merge_m`` (see the module docstring).

    :param st: the area state (its open episodes and their last positions)
    :param active: the detectors' conditions by ``<kind>|<subject>``
    :param th: thresholds (``episode_merge_m``)
    :return: conditions by episode key; a folded condition is keyed by the episode it
        continues, or dropped when the vessel's condition is already there
    """
    out: dict[str, Condition] = {}
    new: list[str] = []
    for key in sorted(active):
        c = active[key]
        if key in st.episodes or not _is_camera(c.subject):
            out[key] = c
        else:
            new.append(key)
    for key in new:
        c = active[key]
        best, best_m = None, th.episode_merge_m
        for k2 in sorted(set(st.episodes) | set(out)):
            if k2 == key or not k2.startswith(f"{c.kind}|"):
                continue
            # where the other episode's vessel is now, and where its alert last put it
            places = [(out[k2].lon, out[k2].lat)] if k2 in out else []
            last = st.episodes[k2].last if k2 in st.episodes else None
            if last is not None:
                places.append((last.position.lon, last.position.lat))
            for lon, lat in places:
                d = float(haversine_m(c.lon, c.lat, lon, lat))
                if d <= best_m:
                    best, best_m = k2, d
        if best is None:
            out[key] = c
        elif best not in out:
            out[best] = c  # the earlier episode goes on with this target's condition
            st.count(f"alerts.{c.kind}.folded")
        else:
            st.count(f"alerts.{c.kind}.folded")
    return out
