"""Registry identities in the area: what the driver resolved for the MMSIs of each
micro-batch (:class:`~schemas.records.VesselIdentity`), kept in the area state and laid out
beside the picture as :class:`~pipeline.core.detectors.registry_facts.RegistryFacts` for
the identity rules.

The engine does no I/O: the worker's area agent and the replay look the batch's MMSIs up
in the registry (one query per micro-batch) and pass the identities into
:func:`pipeline.engine.area.area_step`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.core.detectors.base import VesselView
from pipeline.core.detectors.registry_facts import (
    REGISTERED,
    UNAVAILABLE,
    UNKNOWN,
    UNREGISTERED,
    RegistryFacts,
    two_places,
)
from pipeline.engine.state import AreaContext, AreaState, _Target
from schemas.records import CameraDetection, VesselIdentity

__all__ = ["keep_identities", "note_hull_reading", "registry_facts"]

_STATUS = {"registered": REGISTERED, "unregistered": UNREGISTERED, "unavailable": UNAVAILABLE}


def keep_identities(st: AreaState, identities: Sequence[VesselIdentity]) -> None:
    """Remember the batch's identities (the newest answer per MMSI or hull number wins) and
    forget those of vessels and hull numbers the area no longer holds."""
    for x in identities:
        if x.hull_number is not None:
            st.hull_identities[x.hull_number] = x
        else:
            st.identities[x.mmsi] = x
    if identities:
        live = set(st.vessels) | {t.mmsi for t in st.held_tracks}
        for m in [m for m in st.identities if m not in live]:
            del st.identities[m]
        read = {tg.hull_number for tg in st.targets.values()} | {
            d.hull_number for fr in st.held_frames for d in fr.detections
        }
        for h in [h for h in st.hull_identities if h not in read]:
            del st.hull_identities[h]


def note_hull_reading(tg: _Target, d: CameraDetection) -> None:
    """Keep a camera target's most confident hull-number reading."""
    if d.hull_number is None:
        return
    conf = float(d.hull_confidence) if d.hull_confidence is not None else 0.0
    if tg.hull_number is None or conf > tg.hull_confidence:
        tg.hull_number, tg.hull_confidence = d.hull_number, conf


def _end_of_day_ms(iso_date: str | None) -> int:
    """End of an ISO date (UTC), ms; -1 for none or a bad date."""
    if not iso_date:
        return -1
    try:
        d = dt.date.fromisoformat(iso_date)
    except ValueError:
        return -1
    end = dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return int(end.timestamp() * 1000)


def _watch_text(x: VesselIdentity) -> str | None:
    if not x.watchlist:
        return None
    return "; ".join(f"{h.kind} {h.value}: {h.reason} (added by {h.added_by})" for h in x.watchlist)


def registry_facts(
    st: AreaState, view: VesselView, owners: list[Any], ctx: AreaContext, now_t_ms: int
) -> RegistryFacts:
    """The registry facts of each row of ``view`` (rows as :func:`pipeline.engine.picture._view`
    built them, ``owners`` their vessels and targets) at event time ``now_t_ms`` (ms UTC).
    Only the rows the registry answered for, dark targets and vessels that jumped within
    ``clone_window_s`` are visited."""
    n = len(view)
    f = RegistryFacts.empty(n)
    th = ctx.thresholds
    known = np.zeros(n, dtype=bool)
    if st.identities:
        known = np.isin(view.mmsi, np.fromiter(st.identities, dtype=np.int64))
    jumped = (~view.dark) & (view.jump_t_ms >= 0)
    jumped &= now_t_ms - view.last_jump_t_ms <= th.clone_window_s * 1000.0
    home_rows: list[int] = []
    for i in np.flatnonzero(known | view.dark | jumped).tolist():
        x = st.identities.get(int(view.mmsi[i])) if known[i] else None
        hull = getattr(owners[i], "hull_number", None) if view.dark[i] else None
        if hull is not None:
            f.hull_number[i], f.hull_confidence[i] = hull, owners[i].hull_confidence
            if x is None:  # a dark target known only by the number painted on its hull
                x = st.hull_identities.get(hull)
        if x is not None and _fill(f, i, x):
            home_rows.append(i)
        if jumped[i] and len(owners[i].trail) > 1:
            tr = np.asarray(owners[i].trail, dtype=np.float64)
            t, d, k = two_places(
                tr[:, 0], tr[:, 1], tr[:, 2].astype(np.int64),
                max_implied_speed_kn=th.max_implied_speed_kn, window_s=th.clone_window_s,
                min_jumps=th.clone_min_jumps, return_m=th.clone_return_m,
            )  # fmt: skip
            f.clone_t_ms[i], f.clone_m[i], f.clone_jumps[i] = t, d, k
    if home_rows:
        rows = np.asarray(home_rows, dtype=np.int64)
        zd = ctx.geometry.zone_distances_m(view.lon[rows], view.lat[rows])
        names = [z.name for z in ctx.geometry.zones]
        for j, i in enumerate(home_rows):
            rec = f.source[i].record
            cols = [k for k, nm in enumerate(names) if nm in rec.home_harbours]
            f.home_harbour_m[i] = float(zd[j, cols].min()) if cols else np.inf
    return f


def _fill(f: RegistryFacts, i: int, x: VesselIdentity) -> bool:
    """Row ``i`` of ``f`` from identity ``x``; whether it has home harbours to measure."""
    f.status[i] = _STATUS.get(x.status, UNKNOWN)
    f.source[i] = x
    f.watch[i] = _watch_text(x)
    rec = x.record
    if rec is None or x.status != "registered":
        return False
    f.registration_no[i] = rec.registration_no
    f.reg_name[i] = rec.name
    f.valid_until_t_ms[i] = _end_of_day_ms(rec.valid_until)
    if rec.home_harbours:
        f.home_harbours[i] = ", ".join(rec.home_harbours)
    return bool(rec.home_harbours)
