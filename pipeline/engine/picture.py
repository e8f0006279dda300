"""The engine: per-key state transitions as plain functions of (state, batch).

This is the thin layer between the records (:mod:`schemas.records`) and the pure core
(:mod:`pipeline.core`). It has no Kafka, no asyncio and no clock: every time comes from
the records (event time). Two drivers call it:

- the Faust agents (:mod:`pipeline.worker.app`), with Faust tables as state;
- the offline replay (:mod:`pipeline.replay`), with dicts in one process;

so the Kafka pipeline and the replay give the same alerts by construction.

Functions:

- :func:`track_step` — a batch of AIS positions and static reports against the per-MMSI
  tracks (vectorised in :func:`pipeline.core.tracks.step_tracks`);
- :func:`evict_tracks` — tracks idle for too long;
- :func:`area_step` — one area (site): track updates and camera frames in event-time order
  → association (:mod:`pipeline.core.fusion`), detectors (:data:`pipeline.core.detectors.DETECTORS`),
  alert episodes → :class:`schemas.records.Alert` CloudEvents.

**Event-time evaluation.** The detectors run at fixed event times (:func:`evaluate`): the
end of every tick of :attr:`Thresholds.eval_tick_s` that received input, and a second
after the last evaluation when input is sparse; input is applied in event-time order as
the area's watermark passes it (:mod:`pipeline.engine.watermarks`). The evaluation times are therefore a function of the
input alone, so the alerts do not depend on how the input is batched or how fast each
path delivered it (tested with Hypothesis). Each alert carries the event time at which its
condition became true, computed exactly (e.g. stop start + dwell), not the evaluation time.

**Batching of tracks.** The area gets one Track per accepted AIS report, however the
track agent batched the reports (:func:`pipeline.engine.tracks.track_step_per_fix`; the
tracks table keeps one per MMSI, the last). A batch of minutes of reports (a worker
catching up with a backlog) is therefore no AIS silence and moves a vessel fix by fix, as
replay's one-second windows do, so the alerts depend on the fixes, not on the batching.

**Quiet areas.** A condition that matures with time alone (a dwell, an AIS silence) is
evaluated at least every second of event time as the area's watermark advances, with or
without input of its own; replay ends with :func:`flush_area`.

**Alerts.** Every condition is an episode keyed by ``<kind>|<subject>`` (subject
``mmsi:<n>``, ``cam:<camera>:<track>``, ``pair:<a>+<b>`` or ``seen:<camera>:<mmsi>``): an
``open`` event when it first holds, ``update`` events when its severity or factors
change, ``closed`` after it has not held for :attr:`Thresholds.episode_close_s`. The alert
id is ``<kind>:<subject>:<start_t_ms>`` and the CloudEvent id ``<alert id>/<seq>``, so both
drivers produce the same ids.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import numpy as np

from pipeline.core import tracks as ct
from pipeline.core.detectors import DETECTORS, Condition, Scene, Thresholds, VesselView
from pipeline.core.detectors import rendezvous as rdv
from pipeline.core.detectors.base import ais_silence_ms, silence_limit_s
from pipeline.core.detectors.registry_rules import with_registry_factors
from pipeline.core.fusion import CameraAssociation, DetectionArrays, VesselArrays
from pipeline.core.geo import destination_point, haversine_m
from pipeline.engine.alerts import _alert_data, _cloud_event
from pipeline.engine.confirm import (
    MAX_FRAME_PERIOD_MS,
    continue_target,
    note_frame,
    note_hit,
    stitch_fits,
)
from pipeline.engine.episodes import camera_down, fold_conditions
from pipeline.engine.identity import note_hull_reading, registry_facts
from pipeline.engine.radar_camera import fused_targets, own_subject
from pipeline.engine.state import (
    AreaContext,
    AreaState,
    _Episode,
    _push_unique,
    _Target,
    _trim_trail,
    _Vessel,
)
from pipeline.engine.tracks import _nan
from schemas.records import (
    Alert,
    CameraDetection,
    CameraFrame,
    Track,
)

__all__ = [
    "AreaContext",
    "AreaState",
    "Thresholds",
]


def _apply_track(st: AreaState, tr: Track, th: Thresholds) -> bool:
    if tr.event == "evicted":
        st.vessels.pop(tr.mmsi, None)
        st.count("tracks.evicted")
        return True
    v = st.vessels.get(tr.mmsi)
    if v is None:
        v = _Vessel(track=tr)
        st.vessels[tr.mmsi] = v
    elif tr.t_ms < v.track.t_ms:
        st.count("tracks.stale")
        return False
    else:
        v.track = tr
    st.count("tracks")
    if not v.trail or v.trail[-1][2] < tr.t_ms:
        v.trail.append([tr.lon, tr.lat, float(tr.t_ms)])
        _trim_trail(v.trail, th)
    if tr.jump_t_ms is not None:
        if v.jump_last_t_ms < 0 or tr.jump_t_ms - v.jump_last_t_ms > th.jump_hold_s * 1000.0:
            v.jump_first_t_ms = tr.jump_t_ms
            v.jump_speed_kn = float(tr.jump_speed_kn or 0.0)
        else:
            v.jump_speed_kn = max(v.jump_speed_kn, float(tr.jump_speed_kn or 0.0))
        v.jump_last_t_ms = max(v.jump_last_t_ms, tr.jump_t_ms)
    return True


def _finite(x: Any) -> bool:
    return x is not None and isinstance(x, int | float) and np.isfinite(x)


def _detection_problem(d: Any) -> str | None:
    """Why a detection is unusable, or ``None``."""
    if not _finite(d.bearing_deg):
        return "bad_bearing"
    if not _finite(d.bearing_sigma_deg) or d.bearing_sigma_deg <= 0:
        return "bad_bearing_sigma"
    if not _finite(d.confidence) or not 0.0 <= d.confidence <= 1.0:
        return "bad_confidence"
    if d.range_m is not None and (not _finite(d.range_m) or d.range_m < 0):
        return "bad_range"
    if d.range_sigma_m is not None and (not _finite(d.range_sigma_m) or d.range_sigma_m < 0):
        return "bad_range_sigma"
    if (d.lon is None) != (d.lat is None):
        return "half_position"
    if d.lon is not None and (
        not _finite(d.lon) or not _finite(d.lat) or abs(d.lon) > 180 or abs(d.lat) > 90
    ):
        return "bad_position"
    if (
        len(d.box_px) != 4
        or not all(_finite(x) for x in d.box_px)
        or d.box_px[2] < 0
        or d.box_px[3] < 0
    ):
        return "bad_box"
    return None


class _StepCache:
    """Per-call caches (never serialised): camera models per frame size, vessel arrays."""

    def __init__(self) -> None:
        self.models: dict[tuple[str, int, int, float, float], Any] = {}
        self.vessels: VesselArrays | None = None
        self.assoc: dict[str, CameraAssociation] = {}

    def association(self, st: AreaState, cam: str) -> CameraAssociation:
        if cam not in self.assoc:
            raw = st.assoc.get(cam)
            self.assoc[cam] = CameraAssociation.from_state(raw) if raw else CameraAssociation()
        return self.assoc[cam]

    def store(self, st: AreaState) -> None:
        """Write the live association objects back into the serialisable state."""
        for cam, a in self.assoc.items():
            st.assoc[cam] = a.to_state()

    def vessel_arrays(self, st: AreaState) -> VesselArrays:
        if self.vessels is None:
            vs = [st.vessels[m].track for m in sorted(st.vessels)]
            self.vessels = VesselArrays.from_lists(
                mmsi=[t.mmsi for t in vs], t_ms=[t.t_ms for t in vs],
                lon_deg=[t.lon for t in vs], lat_deg=[t.lat for t in vs],
                sog_kn=[_nan(t.sog_kn) for t in vs], cog_deg=[_nan(t.cog_deg) for t in vs],
                length_m=[_nan(t.length_m) for t in vs],
            )  # fmt: skip
        return self.vessels

    def model(self, ctx: AreaContext, fr: CameraFrame) -> Any:
        key = (fr.camera_id, fr.image_width, fr.image_height, fr.heading_deg, fr.hfov_deg)
        if key not in self.models:
            m = ctx.cameras[fr.camera_id]
            if (
                fr.image_width > 0
                and fr.image_height > 0
                and (m.image_width != fr.image_width or m.image_height != fr.image_height)
            ):
                m = m.scaled(fr.image_width, fr.image_height)
            pose: dict[str, float] = {}
            if (
                _finite(fr.heading_deg)
                and abs((fr.heading_deg - m.heading_deg + 180) % 360 - 180) > 1e-6
            ):
                pose["heading_deg"] = fr.heading_deg
            if (
                _finite(fr.hfov_deg)
                and 0 < fr.hfov_deg < 180
                and abs(fr.hfov_deg - m.hfov_deg) > 1e-6
            ):
                pose["hfov_deg"] = fr.hfov_deg
            if pose and hasattr(m, "with_pose"):
                m = m.with_pose(**pose)
            self.models[key] = m
        return self.models[key]


def _stitch(st: AreaState, cam: str, t: int, d: Any, th: Thresholds) -> str | None:
    """The confirmed target of this camera, lost less than ``stitch_gap_s`` ago, whose own
    motion brings it nearest a new camera track's first position (within
    ``stitch_radius_m``, :func:`pipeline.engine.confirm.stitch_fits`), that it continues."""
    if d.lon is None or d.lat is None:
        return None
    best, best_d = None, np.inf
    for key, tg in st.targets.items():
        if tg.camera_id != cam or tg.t_ms >= t:
            continue
        dist = stitch_fits(tg, t, d, th)
        if dist is not None and dist < best_d:
            best, best_d = key, dist
    return best


def _apply_frame(st: AreaState, fr: CameraFrame, ctx: AreaContext, cache: _StepCache) -> None:
    th = ctx.thresholds
    cam = fr.camera_id
    if cam not in ctx.cameras:
        st.count("frames.unknown_camera")
        return
    if fr.t_ms <= st.cam_t_ms.get(cam, -1):
        st.count("frames.out_of_order")
        return
    note_frame(st, cam, fr.t_ms, st.cam_t_ms.get(cam, -1))
    st.cam_t_ms[cam] = fr.t_ms
    st.count("frames")
    valid = _valid_detections(st, fr)
    st.count("detections", len(valid))
    dets = _detection_arrays(valid)
    assoc = cache.association(st, cam)
    fa = assoc.step(fr.t_ms, dets, cache.vessel_arrays(st), cache.model(ctx, fr), ctx.fusion)
    t = fr.t_ms
    for j, d in enumerate(valid):
        tg = _target_of(st, cam, t, d, th)
        m = int(fa.mmsi[j])
        _move_target(tg, d, t, m, th)
        note_hit(tg, t, st.cam_period_ms.get(cam, MAX_FRAME_PERIOD_MS), th)
        tg = continue_target(st, f"{cam}:{d.track_id}", tg, th)
        note_hull_reading(tg, d)
        _keep_evidence(st, tg, fr, d, m, bool(fa.confirmed[j]))
    _update_unseen(st, cam, t, {int(x) for x in fa.unseen_mmsi.tolist()})


def _valid_detections(st: AreaState, fr: CameraFrame) -> list[CameraDetection]:
    """The frame's detections that can be targets: tentative image tracks, invalid
    detections and repeated track ids are counted and left out."""
    valid = []
    seen_ids: set[int] = set()
    for d in fr.detections:
        if d.track_id < 0:  # a tentative image track (pipeline.core.mot): not a target yet
            st.count("detections.tentative")
            continue
        why = _detection_problem(d)
        if why is None and d.track_id in seen_ids:
            why = "duplicate_track_id"
        if why is not None:
            st.count(f"detections.invalid.{why}")
            continue
        seen_ids.add(d.track_id)
        valid.append(d)
    return valid


def _detection_arrays(valid: list[CameraDetection]) -> DetectionArrays:
    """The detections as the association's columns (no range beyond the horizon)."""
    return DetectionArrays.from_lists(
        track_id=[d.track_id for d in valid],
        bearing_deg=[d.bearing_deg % 360.0 for d in valid],
        bearing_sigma_deg=[d.bearing_sigma_deg for d in valid],
        range_m=[None if d.beyond_horizon else d.range_m for d in valid],
        range_sigma_m=[d.range_sigma_m for d in valid],
        lon_deg=[d.lon for d in valid],
        lat_deg=[d.lat for d in valid],
        box_px=[list(d.box_px) for d in valid] if valid else np.zeros((0, 4)),
    )


def _target_of(st: AreaState, cam: str, t: int, d: CameraDetection, th: Thresholds) -> _Target:
    """The target of a camera track: known (through its alias), or new; a new one that
    may continue a target the camera lost a moment ago (:func:`_stitch`) notes it, and
    continues it once confirmed itself (:func:`pipeline.engine.confirm.continue_target`)."""
    key = f"{cam}:{d.track_id}"
    key = st.aliases.get(key, key)
    tg = st.targets.get(key)
    if tg is None:
        tg = _Target(camera_id=cam, track_id=d.track_id, first_t_ms=t, t_ms=t)
        tg.continues = _stitch(st, cam, t, d, th) or ""
        st.targets[key] = tg
    return tg


def _move_target(tg: _Target, d: CameraDetection, t: int, m: int, th: Thresholds) -> None:
    """A target seen at ``t`` (ms), matched to MMSI ``m`` (-1: none): its time, hits,
    match, position, trail and anchor (where it last stopped)."""
    tg.t_ms = t
    tg.hits += 1
    tg.mmsi = m
    if m < 0:
        if tg.unmatched_since_t_ms < 0:
            tg.unmatched_since_t_ms = t
    else:
        tg.unmatched_since_t_ms = -1
    if d.lon is not None and d.lat is not None:
        tg.lon, tg.lat = float(d.lon), float(d.lat)
        rs = d.range_sigma_m
        tg.pos_sigma_m = float(rs) if rs is not None and _finite(rs) else -1.0
        tg.trail.append([tg.lon, tg.lat, float(t)])
        _trim_trail(tg.trail, th)
        radius = max(th.dark_stop_radius_m, 2.0 * float(d.range_sigma_m or 0.0))
        if (
            tg.anchor_lon is None
            or float(haversine_m(tg.anchor_lon, tg.anchor_lat, tg.lon, tg.lat)) > radius
        ):
            tg.anchor_lon, tg.anchor_lat, tg.anchor_t_ms = tg.lon, tg.lat, t
            tg.anchor_solid = False


def _keep_evidence(
    st: AreaState, tg: _Target, fr: CameraFrame, d: CameraDetection, m: int, confirmed: bool
) -> None:
    """The detection as evidence of its target (the last five) and, once confirmed as a
    known vessel, of that vessel; the crop and frame URIs beside them."""
    t = fr.t_ms
    evidence = {
        "camera_id": fr.camera_id, "track_id": int(d.track_id), "t_ms": int(t),
        "bearing_deg": float(d.bearing_deg), "range_m": d.range_m, "confidence": float(d.confidence),
        "cls": d.cls, "box_px": [float(x) for x in d.box_px], "mmsi": m if m >= 0 else None,
    }  # fmt: skip
    tg.detections.append(evidence)
    del tg.detections[:-5]
    _push_unique(tg.uris, d.crop_uri)
    _push_unique(tg.uris, fr.evidence_uri)
    if m >= 0 and confirmed:
        tg.ever_matched = True
        tg.last_mmsi = m
    if m >= 0 and confirmed and m in st.vessels:
        v = st.vessels[m]
        v.detections.append(evidence)
        del v.detections[:-5]
        _push_unique(v.uris, d.crop_uri)
        _push_unique(v.uris, fr.evidence_uri)


def _update_unseen(st: AreaState, cam: str, t: int, unseen: set[int]) -> None:
    """The AIS vessels camera ``cam`` should see and does not: ``[since, last]`` times
    for those still unseen at ``t``; the others are forgotten."""
    prefix = f"{cam}:"
    for key in [
        k for k in st.unseen if k.startswith(prefix) and int(k[len(prefix) :]) not in unseen
    ]:
        del st.unseen[key]
    for m in sorted(unseen):
        rec = st.unseen.get(f"{cam}:{m}")
        if rec is None:
            st.unseen[f"{cam}:{m}"] = [t, t]
        else:
            rec[1] = t


def _geo_context(
    owners: list[Any],
    lon: np.ndarray,
    lat: np.ndarray,
    sog: np.ndarray,
    cog: np.ndarray,
    ctx: AreaContext,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Coast distance, on land, nearest-zone distance, and landfall along the course
    (distance, and the landfall's distance to the nearest zone) of each row.

    They depend only on (lon, lat, SOG, COG), so each owner caches them with that key in
    its ``geo`` list and only rows that moved are recomputed (a pure function of the
    input: batch-invariant).
    """
    th = ctx.thresholds
    g = ctx.geometry
    n = lon.size
    key = np.column_stack([lon, lat, sog, cog]) if n else np.zeros((0, 4))
    key = np.where(np.isnan(key), -999.0, key)
    out = np.zeros((n, 5))
    stale = []
    for r, o in enumerate(owners):
        cached = o.geo
        if len(cached) == 9 and cached[:4] == key[r].tolist():
            out[r] = cached[4:]
        else:
            stale.append(r)
    if stale:
        s = np.asarray(stale, dtype=np.int64)
        lo, la, sg, cg = lon[s], lat[s], sog[s], cog[s]
        coast = g.coast_distance_m(lo, la)
        moving = np.nan_to_num(sg, nan=0.0) >= th.approach_min_speed_kn
        # landfall out to approach_landfall_m: a vessel just beyond the watch distance
        # may be inside it by the time its AIS silence counts (see _dead_reckoned_coast)
        crs = np.where(moving & (coast <= th.approach_landfall_m), cg, np.nan)
        fall_m, fall_lon, fall_lat = g.landfall(lo, la, crs, th.approach_landfall_m, step_m=100.0)
        fall_zone = np.full(s.size, np.inf)
        hit = np.isfinite(fall_m)
        if hit.any():
            fall_zone[hit] = g.nearest_zone(fall_lon[hit], fall_lat[hit])[1]
        _, zone_m = g.nearest_zone(lo, la)
        vals = np.column_stack(
            [coast, g.on_land(lo, la).astype(np.float64), zone_m, fall_m, fall_zone]
        )
        out[s] = vals
        for j, r in enumerate(stale):
            owners[r].geo = key[r].tolist() + vals[j].tolist()
    return out[:, 0], out[:, 1] > 0.5, out[:, 2], out[:, 3], out[:, 4]


def _target_is_dark(st: AreaState, tg: _Target, th: Thresholds) -> bool:
    """A camera target counts as dark when it was never matched to AIS, or when the vessel
    it was last matched to has gone silent (AIS off) and the camera still sees it."""
    if not tg.ever_matched:
        return tg.mmsi < 0
    v = st.vessels.get(tg.last_mmsi)
    if v is None:
        return tg.mmsi < 0
    tr = v.track
    stopped = 180.0 if tr.ais_class == "B" else tr.expected_interval_s
    sog = np.nan if tr.sog_kn is None else tr.sog_kn
    silence_ms = float(silence_limit_s(tr.expected_interval_s, stopped, th, sog)) * 1000.0
    return tg.t_ms > tr.t_ms + silence_ms


def _view(
    st: AreaState, now: int, ctx: AreaContext
) -> tuple[VesselView, list[Any], np.ndarray, np.ndarray]:
    """Gather the area's vessels and dark targets into arrays, with geometry computed."""
    th = ctx.thresholds
    g = ctx.geometry
    vessels = [st.vessels[m] for m in sorted(st.vessels)]
    # only confirmed targets are vessels (pipeline.engine.confirm): clutter never is;
    # a vessel seen by radar and camera is one row (pipeline.engine.radar_camera)
    keyed = [
        (k, tg)
        for k, tg in sorted(st.targets.items())
        if tg.lon is not None and tg.confirmed_t_ms >= 0 and _target_is_dark(st, tg, th)
    ]
    targets = fused_targets(st, keyed, now, th)
    # a target last matched to a vessel whose AIS has gone silent *is* that vessel, dark
    linked = [tg.last_mmsi if tg.last_mmsi in st.vessels else -1 for tg in targets]
    owners: list[Any] = [*vessels, *targets]
    na, nd = len(vessels), len(targets)
    trk = [v.track for v in vessels]

    def col(vals: list[Any], dtype: Any = np.float64) -> np.ndarray:
        return np.asarray(vals, dtype=dtype) if vals else np.zeros(0, dtype=dtype)

    # camera-target speed: displacement over the last minute of its trail
    tsog = []
    for tg in targets:
        pts = [p for p in tg.trail if p[2] >= tg.t_ms - 60_000]
        if len(pts) >= 2 and pts[-1][2] > pts[0][2]:
            d = float(haversine_m(pts[0][0], pts[0][1], pts[-1][0], pts[-1][1]))
            tsog.append(d / ((pts[-1][2] - pts[0][2]) / 1000.0) / ct.KNOT_MPS)
        else:
            tsog.append(np.nan)
    dwell_ms = th.landing_dwell_s * 1000.0
    kinds = [t.mmsi_kind for t in trk]
    lon = col([t.lon for t in trk] + [tg.lon for tg in targets])
    lat = col([t.lat for t in trk] + [tg.lat for tg in targets])
    sog = col([_nan(t.sog_kn) for t in trk] + tsog)
    cog = col([_nan(t.cog_deg) for t in trk] + [np.nan] * nd)
    t_ms = col([t.t_ms for t in trk] + [tg.t_ms for tg in targets], np.int64)
    coast, on_land, zone_m, fall_m, fall_zone_m = _geo_context(owners, lon, lat, sog, cog, ctx)
    subjects = [f"mmsi:{t.mmsi}" for t in trk] + [
        f"mmsi:{m}" if m >= 0 else own_subject(tg) for tg, m in zip(targets, linked, strict=True)
    ]
    mem = now - th.rendezvous_memory_s * 1000.0
    view = VesselView(
        subject=col(subjects, object),
        mmsi=col([t.mmsi for t in trk] + linked, np.int64),
        name=col([t.name for t in trk] + [st.vessels[m].track.name if m >= 0 else None for m in linked], object),
        dark=col([False] * na + [True] * nd, bool),
        t_ms=t_ms, lon=lon, lat=lat, sog_kn=sog, cog_deg=cog,
        expected_interval_s=col([t.expected_interval_s for t in trk] + [np.nan] * nd),
        stopped_interval_s=col([180.0 if t.ais_class == "B" else t.expected_interval_s for t in trk] + [np.nan] * nd),
        stopped_since_t_ms=col(
            [-1 if t.stopped_since_t_ms is None else t.stopped_since_t_ms for t in trk]
            + [tg.anchor_t_ms if tg.anchor_t_ms >= 0 and tg.anchor_solid and tg.t_ms - tg.anchor_t_ms >= dwell_ms else -1 for tg in targets],
            np.int64,
        ),
        slow_since_t_ms=col([-1 if t.slow_since_t_ms is None else t.slow_since_t_ms for t in trk] + [-1] * nd, np.int64),
        first_t_ms=col([t.first_t_ms if t.first_t_ms is not None else t.t_ms for t in trk] + [tg.first_t_ms for tg in targets], np.int64),
        length_m=col([_nan(t.length_m) for t in trk] + [np.nan] * nd),
        hits=col([0] * na + [tg.hits for tg in targets], np.int64),
        pos_sigma_m=col([np.nan] * na + [tg.pos_sigma_m if tg.pos_sigma_m >= 0 else np.inf for tg in targets]),
        unmatched_since_t_ms=col([-1] * na + [tg.unmatched_since_t_ms for tg in targets], np.int64),
        invalid_mmsi=col([k == "invalid" for k in kinds] + [False] * nd, bool),
        no_name=col([t.name is None for t in trk] + [False] * nd, bool),
        no_call_sign=col([t.call_sign is None for t in trk] + [False] * nd, bool),
        shipish=col([k in ("ship", "invalid") for k in kinds] + [False] * nd, bool),
        identity_change_t_ms=col([-1 if t.identity_change_t_ms is None else t.identity_change_t_ms for t in trk] + [-1] * nd, np.int64),
        jump_t_ms=col([v.jump_first_t_ms for v in vessels] + [-1] * nd, np.int64),
        last_jump_t_ms=col([v.jump_last_t_ms for v in vessels] + [-1] * nd, np.int64),
        jump_speed_kn=col([v.jump_speed_kn for v in vessels] + [np.nan] * nd),
        coast_m=coast,
        on_land=on_land,
        zone_m=zone_m,
        in_port=zone_m <= th.zone_margin_m,
        landfall_m=fall_m,
        landfall_zone_m=fall_zone_m,
        recent_rendezvous=col([st.met_t_ms.get(s, -1) >= mem for s in subjects], bool),
        dr_coast_m=coast,
    )  # fmt: skip
    view = dataclasses.replace(view, dr_coast_m=_dead_reckoned_coast(view, now, ctx))
    east, north = g.to_enu_m(lon, lat)
    return view, owners, east, north


def _dead_reckoned_coast(v: VesselView, now: int, ctx: AreaContext) -> np.ndarray:
    """Coast distance of each silent AIS vessel heading for land, dead-reckoned along
    its last course and speed to the moment its silence began to count (last fix +
    :func:`pipeline.core.detectors.base.ais_silence_ms`), stopping at the landfall, m;
    ``coast_m`` for every other row.

    A receiver misses a vessel's last reports as often as it hears them (range, shadowing),
    so the last fix heard can lie outside the watch distance while the vessel is inside
    it when its silence is noticed."""
    th = ctx.thresholds
    out = v.coast_m.copy()
    if len(v) == 0:
        return out
    silence = ais_silence_ms(v, th)
    speed = np.nan_to_num(v.sog_kn, nan=0.0)
    rows = np.flatnonzero(
        ~v.dark
        & (speed >= th.approach_min_speed_kn)
        & np.isfinite(v.cog_deg)
        & np.isfinite(v.landfall_m)
        & (v.coast_m > th.approach_coast_m)
        & (v.t_ms + silence < now)
    )
    if rows.size:
        run_m = np.minimum(speed[rows] * ct.KNOT_MPS * silence[rows] / 1000.0, v.landfall_m[rows])
        lon, lat = destination_point(v.lon[rows], v.lat[rows], v.cog_deg[rows], run_m)
        out[rows] = ctx.geometry.coast_distance_m(lon, lat)
    return out


def _housekeeping(st: AreaState, now: int, th: Thresholds) -> None:
    for m in [m for m, v in st.vessels.items() if now - v.track.t_ms > th.vessel_forget_s * 1000.0]:
        del st.vessels[m]
        st.count("vessels.forgotten")
    lost = th.camera_lost_s * 1000.0
    for k in [
        k for k, tg in st.targets.items()
        if now - tg.t_ms > th.target_forget_s * 1000.0 or (tg.hits < th.dark_min_hits and now - tg.t_ms > lost)
    ]:  # fmt: skip
        del st.targets[k]
    for k in [k for k, v in st.aliases.items() if v not in st.targets]:
        del st.aliases[k]
    for k in [k for k, (_, last) in st.unseen.items() if now - last > th.camera_stale_s * 1000.0]:
        del st.unseen[k]
    mem = now - th.rendezvous_memory_s * 1000.0
    for k in [k for k, t in st.met_t_ms.items() if t < mem]:
        del st.met_t_ms[k]


def evaluate(st: AreaState, now: int, ctx: AreaContext) -> list[Alert]:
    """Run every detector the site has not switched off (:data:`DETECTORS`, in their
    order) at event time ``now`` and advance the alert episodes."""
    th = ctx.thresholds
    st.evaluated_t_ms = max(st.evaluated_t_ms, now)
    _housekeeping(st, now, th)
    view, owners, east, north = _view(st, now, ctx)
    view = dataclasses.replace(view, registry=registry_facts(st, view, owners, ctx, now))
    scene = Scene(view=view, now_t_ms=now, area_start_t_ms=st.first_t_ms, unseen=st.unseen)
    conds: list[Condition] = []
    for name, detector in DETECTORS.items():
        if not ctx.detectors.enabled(name):
            continue
        if name == rdv.DETECTOR.name:
            scene = _track_pairs(st, scene, east, north, th)
        found = detector.evaluate(scene, th)
        if name == rdv.DETECTOR.name and found:
            # before the detectors after it: it feeds the landing's "earlier rendezvous"
            scene = _remember_meetings(st, scene, found, th)
        conds += found
    conds = with_registry_factors(conds, scene.view)
    active = fold_conditions(st, {f"{c.kind}|{c.subject}": c for c in conds}, th)
    zones = _zone_context(active, ctx)
    out = _open_or_update(st, active, now, scene.view, owners, zones, ctx)
    out += _close_episodes(st, set(active), now, ctx)
    return out


def _track_pairs(
    st: AreaState, scene: Scene, east: np.ndarray, north: np.ndarray, th: Thresholds
) -> Scene:
    """The scene with the pairs close now and since when each has been (``st.pairs``,
    which forgets pairs apart for more than ``rendezvous_gap_s``)."""
    now = scene.now_t_ms
    pairs = rdv.rendezvous_pairs(scene.view, east, north, now, th)
    close = {k for k, _, _ in pairs}
    gap_ms = th.rendezvous_gap_s * 1000.0
    for k in [k for k, (_, last) in st.pairs.items() if k not in close and now - last > gap_ms]:
        del st.pairs[k]
    for k in sorted(close):
        rec = st.pairs.get(k)
        if rec is None:
            st.pairs[k] = [now, now]
        else:
            rec[1] = now
    since = {k: st.pairs[k][0] for k in close}
    return dataclasses.replace(scene, pairs=tuple(pairs), pair_since=since)


def _remember_meetings(
    st: AreaState, scene: Scene, meetings: list[Condition], th: Thresholds
) -> Scene:
    """Note when each vessel of a rendezvous last met another (``st.met_t_ms``) and mark
    the vessels that met within ``rendezvous_memory_s`` in the scene's view."""
    now, view = scene.now_t_ms, scene.view
    for c in meetings:
        for r in c.rows:
            st.met_t_ms[str(view.subject[r])] = now
    recent = np.array(
        [
            st.met_t_ms.get(str(s), -1) >= now - th.rendezvous_memory_s * 1000.0
            for s in view.subject
        ],
        dtype=bool,
    )
    return dataclasses.replace(scene, view=dataclasses.replace(view, recent_rendezvous=recent))


_ZoneContext = tuple[str | None, str | None, float | None, float | None]


def _zone_context(active: dict[str, Condition], ctx: AreaContext) -> dict[str, _ZoneContext]:
    """Nearest zone (name, kind, distance m) and coast distance (m) of each condition."""
    zones: dict[str, _ZoneContext] = {}
    if not active:
        return zones
    keys = sorted(active)
    lon = np.array([active[k].lon for k in keys])
    lat = np.array([active[k].lat for k in keys])
    zi, zd = ctx.geometry.nearest_zone(lon, lat)
    cd = ctx.geometry.coast_distance_m(lon, lat)
    for j, k in enumerate(keys):
        z = ctx.geometry.zones[zi[j]] if zi[j] >= 0 else None
        zones[k] = (
            z.name if z else None, z.kind if z else None,
            float(zd[j]) if z else None, float(cd[j]) if np.isfinite(cd[j]) else None,
        )  # fmt: skip
    return zones


def _open_or_update(
    st: AreaState,
    active: dict[str, Condition],
    now: int,
    view: VesselView,
    owners: list[Any],
    zones: dict[str, _ZoneContext],
    ctx: AreaContext,
) -> list[Alert]:
    """An ``open`` alert for each new episode, an ``update`` for each whose severity or
    factors changed."""
    out: list[Alert] = []
    for key in sorted(active):
        c = active[key]
        ep = st.episodes.get(key)
        names = [f.name for f in c.factors]
        if ep is None:
            ep = _Episode(
                alert_id=f"{c.kind}:{c.subject}:{c.start_t_ms}", kind=c.kind, subject=c.subject,
                start_t_ms=c.start_t_ms, severity=c.severity, factor_names=names,
            )  # fmt: skip
            st.episodes[key] = ep
            ep.last = _alert_data(c, ep, "open", view, owners, zones[key], ctx.site)
            out.append(_cloud_event(ep.last, c.start_t_ms, ctx))
            st.count(f"alerts.{c.kind}.open")
            continue
        ep.false_since_t_ms = -1
        if c.severity != ep.severity or names != ep.factor_names:
            ep.seq += 1
            ep.severity, ep.factor_names = c.severity, names
            ep.last = _alert_data(c, ep, "update", view, owners, zones[key], ctx.site)
            out.append(_cloud_event(ep.last, now, ctx))
            st.count(f"alerts.{c.kind}.update")
    return out


def _close_episodes(st: AreaState, active: set[str], now: int, ctx: AreaContext) -> list[Alert]:
    """A ``closed`` alert for each episode whose condition has not held for
    ``episode_close_s``."""
    out: list[Alert] = []
    for key in sorted(set(st.episodes) - active):
        ep = st.episodes[key]
        if camera_down(st, ep.subject, now, ctx.thresholds):
            ep.false_since_t_ms = -1  # its camera does not look: no evidence it left
            continue
        if ep.false_since_t_ms < 0:
            ep.false_since_t_ms = now
        if now - ep.false_since_t_ms >= ctx.thresholds.episode_close_s * 1000.0:
            ep.seq += 1
            assert ep.last is not None
            data = msgspec.structs.replace(ep.last, status="closed", seq=ep.seq)
            out.append(_cloud_event(data, now, ctx))
            del st.episodes[key]
            st.count(f"alerts.{ep.kind}.closed")
    return out


def _identity_refresh(st: AreaState, tr: Track) -> bool:
    """A republished track (new static data, no new fix) carries its old fix time."""
    v = st.vessels.get(tr.mmsi)
    return v is not None and v.track.t_ms == tr.t_ms
