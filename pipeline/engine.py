"""The engine: per-key state transitions as plain functions of (state, batch).

This is the thin layer between the records (:mod:`schemas.records`) and the pure core
(:mod:`pipeline.core`). It has no Kafka, no asyncio and no clock: every time comes from
the records (event time). Two drivers call it:

- the Faust agents (:mod:`pipeline.app`), with Faust tables as state;
- the offline replay (:mod:`pipeline.replay`), with dicts in one process;

so the Kafka pipeline and the replay give the same alerts by construction.

Functions:

- :func:`track_step` — a batch of AIS positions and static reports against the per-MMSI
  tracks (vectorised in :func:`pipeline.core.tracks.step_tracks`);
- :func:`evict_tracks` — tracks idle for too long;
- :func:`area_step` — one area (site): track updates and camera frames in event-time order
  → association (:mod:`pipeline.core.fusion`), detectors (:mod:`pipeline.core.detectors`),
  alert episodes → :class:`schemas.records.Alert` CloudEvents.

**Event-time evaluation.** The area's clock is the largest event time seen (watermark).
Inputs are grouped into ticks of :attr:`Thresholds.eval_tick_s`; the detectors run at the
end of each tick that received input, as soon as an input of a later tick arrives. The
evaluation times are therefore a function of the input stream alone, so the alerts do not
depend on how a time-ordered stream is split into batches (tested with Hypothesis). Each
alert carries the event time at which its condition became true, computed exactly (e.g.
stop start + dwell), not the evaluation time.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np

from pipeline.core import detectors as det
from pipeline.core import tracks as ct
from pipeline.core.detectors import Condition, Factor, Thresholds, VesselView
from pipeline.core.fusion import CameraAssociation, DetectionArrays, FusionParams, VesselArrays
from pipeline.core.geo import AreaGeometry, haversine_m
from schemas.records import (
    Alert,
    AlertData,
    AlertEvidence,
    AlertFactor,
    AlertVessel,
    AlertZone,
    AisPosition,
    AisStatic,
    CameraFrame,
    GeoPoint,
    Track,
)

__all__ = [
    "AreaContext",
    "AreaState",
    "Thresholds",
    "TrackParams",
    "TrackStepResult",
    "area_step",
    "evict_tracks",
    "iso_utc",
    "track_step",
]


def iso_utc(t_ms: int) -> str:
    """ISO 8601 UTC with millisecond precision and ``Z``, as CloudEvents ``time`` wants."""
    return datetime.fromtimestamp(t_ms / 1000.0, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{int(t_ms) % 1000:03d}Z"
    )


# =========================================================================== tracks
@dataclass(frozen=True)
class TrackParams:
    """Settings of the per-MMSI track update.

    :param idle_evict_s: a track without a fix for this long is evicted, s (default 1 h:
        20 × the 3 min report interval of a moored Class A vessel, ITU-R M.1371)
    :param max_implied_speed_kn: implied speed above which a step is a jump, knots
        (default 50 kn: small fast craft reach 40–50 kn; GFW's segmenter splits at 25 kn)
    :param position_tolerance_m: distance forgiven before computing the implied speed, m
    :param velocity_alpha: gain of the velocity alpha filter per fix, 0–1
    :param stop_speed_kn: "stopped" below this, knots (MarineTraffic < 0.5 kn)
    :param slow_speed_kn: "slow" below this, knots (GFW loitering mean < 2 kn)
    """

    idle_evict_s: float = 3600.0
    max_implied_speed_kn: float = 50.0
    position_tolerance_m: float = 100.0
    velocity_alpha: float = 0.5
    stop_speed_kn: float = 0.5
    slow_speed_kn: float = 2.0


@dataclass(frozen=True)
class TrackStepResult:
    """What :func:`track_step` produced.

    :param updates: the new state of each touched MMSI, one per MMSI (the last state)
    :param rejected: positions not applied, with a reason code (``no_position``,
        ``out_of_order``, ``duplicate``, ``same_time_conflict``)
    :param counters: counts by name (``positions``, ``accepted``, ``rejected.<reason>``, …)
    :param orphan_statics: static reports for MMSIs without a track yet (no position so
        far); a driver may hand them in again with the next batch
    """

    updates: list[Track]
    rejected: list[tuple[AisPosition, str]]
    counters: dict[str, int]
    orphan_statics: list[AisStatic] = field(default_factory=list)


def _clean_text(s: str | None) -> str | None:
    if s is None:
        return None
    s = s.replace("@", " ").strip()
    return s or None


def _nan(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _opt_float(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def _opt_int(x: int) -> int | None:
    return None if x < 0 else int(x)


def _prev_arrays(prev: Mapping[int, Track], mmsis: np.ndarray) -> tuple[ct.TrackArrays, dict[int, Track]]:
    old: dict[int, Track] = {}
    for m in mmsis.tolist():
        tr = prev.get(m)
        if tr is not None and tr.event != "evicted":
            old[m] = tr
    base = ct.TrackArrays.empty_for(np.asarray(list(old), dtype=np.int64))
    for i, tr in enumerate(old.values()):
        base.t_ms[i] = tr.t_ms
        base.first_t_ms[i] = tr.first_t_ms if tr.first_t_ms is not None else tr.t_ms
        base.lon_deg[i], base.lat_deg[i] = tr.lon, tr.lat
        base.sog_kn[i], base.cog_deg[i] = _nan(tr.sog_kn), _nan(tr.cog_deg)
        base.vel_east_mps[i], base.vel_north_mps[i] = tr.vel_east_mps, tr.vel_north_mps
        base.n_fixes[i] = tr.n_fixes
        base.last_gap_s[i] = _nan(tr.last_gap_s)
        base.max_gap_s[i] = tr.max_gap_s
        base.stopped_since_t_ms[i] = -1 if tr.stopped_since_t_ms is None else tr.stopped_since_t_ms
        base.slow_since_t_ms[i] = -1 if tr.slow_since_t_ms is None else tr.slow_since_t_ms
        base.implied_speed_kn[i] = _nan(tr.implied_speed_kn)
    return base, old


def _identity_flags(name: str | None, call_sign: str | None, kind: str, changed: bool) -> list[str]:
    flags = []
    if name is None:
        flags.append("no_name")
    if call_sign is None:
        flags.append("no_call_sign")
    if kind == "invalid":
        flags.append("invalid_mid")
    if changed:
        flags.append("identity_change")
    return flags


def track_step(
    prev: Mapping[int, Track],
    positions: Sequence[AisPosition],
    statics: Sequence[AisStatic],
    params: TrackParams = TrackParams(),
) -> TrackStepResult:
    """Apply a batch of positions and static reports to the per-MMSI tracks.

    Positions are applied in the order given (arrival order); a position older than the
    track's last fix is rejected as ``out_of_order`` and counted, never applied. Static
    reports update the identity (name, call sign, IMO, type, dimensions) in the order given;
    a changed non-empty name or call sign sets the ``identity_change`` flag.

    :param prev: the tracks so far, by MMSI (only ``.get`` is used: a Faust table view works)
    :param positions: decoded position reports, arrival order
    :param statics: decoded static reports, arrival order
    :param params: settings
    :returns: one updated :class:`~schemas.records.Track` per touched MMSI, the rejected
        positions with reasons, counters, and statics for MMSIs without a track
    """
    counters: Counter[str] = Counter()
    counters["positions"] = len(positions)
    counters["statics"] = len(statics)
    n = len(positions)
    fx = ct.FixArrays(
        mmsi=np.fromiter((p.mmsi for p in positions), dtype=np.int64, count=n),
        t_ms=np.fromiter((p.t_ms for p in positions), dtype=np.int64, count=n),
        lon_deg=np.fromiter((_nan(p.lon) for p in positions), dtype=np.float64, count=n),
        lat_deg=np.fromiter((_nan(p.lat) for p in positions), dtype=np.float64, count=n),
        sog_kn=np.fromiter((_nan(p.sog_kn) for p in positions), dtype=np.float64, count=n),
        cog_deg=np.fromiter((_nan(p.cog_deg) for p in positions), dtype=np.float64, count=n),
    )
    touched = np.unique(np.concatenate([fx.mmsi, np.fromiter((s.mmsi for s in statics), np.int64)]))
    base, old = _prev_arrays(prev, touched)
    res = ct.step_tracks(
        base, fx,
        max_implied_speed_kn=params.max_implied_speed_kn,
        position_tolerance_m=params.position_tolerance_m,
        velocity_alpha=params.velocity_alpha,
        stop_speed_kn=params.stop_speed_kn,
        slow_speed_kn=params.slow_speed_kn,
    )  # fmt: skip
    rejected: list[tuple[AisPosition, str]] = []
    bad = np.flatnonzero(res.outcome >= 0)
    for i in bad.tolist():
        reason = ct.REJECT_REASONS[int(res.outcome[i])]
        rejected.append((positions[i], reason))
        counters[f"rejected.{reason}"] += 1
    counters["accepted"] = int(n - bad.size)

    # the last accepted position of each MMSI (for msg type, heading, nav status)
    acc = np.flatnonzero(res.outcome < 0)
    rev = acc[::-1]
    u, first_rev = np.unique(fx.mmsi[rev], return_index=True)
    last_pos = dict(zip(u.tolist(), rev[first_rev].tolist(), strict=True))

    new = res.tracks
    rows = {int(m): i for i, m in enumerate(new.mmsi.tolist())}
    # identity: start from the previous track, apply statics in order
    ident: dict[int, dict[str, Any]] = {}

    def ident_of(m: int) -> dict[str, Any]:
        if m not in ident:
            tr = old.get(m)
            ident[m] = {
                "name": tr.name if tr else None, "call_sign": tr.call_sign if tr else None,
                "imo": tr.imo if tr else None, "ship_type": tr.ship_type if tr else None,
                "length_m": tr.length_m if tr else None, "beam_m": tr.beam_m if tr else None,
                "identity_change_t_ms": tr.identity_change_t_ms if tr else None,
            }  # fmt: skip
        return ident[m]

    orphans: list[AisStatic] = []
    for s in statics:
        if s.mmsi not in rows and s.mmsi not in old:
            orphans.append(s)
            continue
        d = ident_of(s.mmsi)
        for key, val in (("name", _clean_text(s.name)), ("call_sign", _clean_text(s.call_sign))):
            if val is None:
                continue
            if d[key] is not None and d[key] != val and d["identity_change_t_ms"] is None:
                d["identity_change_t_ms"] = int(s.t_ms)
                counters["identity_changes"] += 1
            d[key] = val
        if s.imo:
            d["imo"] = s.imo
        if s.ship_type is not None:
            d["ship_type"] = s.ship_type
        if s.to_bow_m is not None and s.to_stern_m is not None and s.to_bow_m + s.to_stern_m > 0:
            d["length_m"] = float(s.to_bow_m + s.to_stern_m)
        if s.to_port_m is not None and s.to_starboard_m is not None and s.to_port_m + s.to_starboard_m > 0:
            d["beam_m"] = float(s.to_port_m + s.to_starboard_m)
    counters["orphan_statics"] = len(orphans)

    kinds, mids = ct.classify_mmsi(new.mmsi)
    msg_types = np.array([positions[last_pos[m]].msg_type for m in new.mmsi.tolist()], dtype=np.int64)
    nav = np.array(
        [(lambda v: -1 if v is None else v)(positions[last_pos[m]].nav_status) for m in new.mmsi.tolist()],
        dtype=np.int64,
    )
    classes = ct.ais_class_of(msg_types)
    interval = ct.expected_interval_s(classes, new.sog_kn, nav)

    updates: list[Track] = []
    for i, m in enumerate(new.mmsi.tolist()):
        p = positions[last_pos[m]]
        d = ident_of(m)
        kind = ct.MMSI_KINDS[int(kinds[i])]
        flags = _identity_flags(d["name"], d["call_sign"], kind, d["identity_change_t_ms"] is not None)
        jt = int(res.jump_t_ms[i])
        if jt >= 0:
            flags.append("impossible_speed")
            counters["jumps"] += 1
        updates.append(Track(
            mmsi=m, t_ms=int(new.t_ms[i]), lon=float(new.lon_deg[i]), lat=float(new.lat_deg[i]),
            sog_kn=p.sog_kn, cog_deg=p.cog_deg, heading_deg=p.heading_deg,
            vel_east_mps=float(new.vel_east_mps[i]), vel_north_mps=float(new.vel_north_mps[i]),
            ais_class=str(classes[i]), n_fixes=int(new.n_fixes[i]),
            expected_interval_s=float(interval[i]), last_gap_s=_opt_float(new.last_gap_s[i]),
            max_gap_s=float(new.max_gap_s[i]), mmsi_kind=kind, mid=_opt_int(int(mids[i])),
            name=d["name"], call_sign=d["call_sign"], imo=d["imo"], ship_type=d["ship_type"],
            length_m=d["length_m"], beam_m=d["beam_m"], flags=flags,
            first_t_ms=_opt_int(int(new.first_t_ms[i])),
            stopped_since_t_ms=_opt_int(int(new.stopped_since_t_ms[i])),
            slow_since_t_ms=_opt_int(int(new.slow_since_t_ms[i])),
            implied_speed_kn=_opt_float(new.implied_speed_kn[i]),
            jump_t_ms=jt if jt >= 0 else None,
            jump_speed_kn=_opt_float(res.jump_speed_kn[i]) if jt >= 0 else None,
            identity_change_t_ms=d["identity_change_t_ms"],
        ))  # fmt: skip
    # statics for existing tracks that got no new fix: republish the track with the identity
    for m, d in ident.items():
        if m in rows or m not in old:
            continue
        tr = old[m]
        flags = _identity_flags(d["name"], d["call_sign"], tr.mmsi_kind, d["identity_change_t_ms"] is not None)
        updates.append(msgspec.structs.replace(
            tr, name=d["name"], call_sign=d["call_sign"], imo=d["imo"], ship_type=d["ship_type"],
            length_m=d["length_m"], beam_m=d["beam_m"], flags=flags,
            identity_change_t_ms=d["identity_change_t_ms"], jump_t_ms=None, jump_speed_kn=None,
        ))  # fmt: skip
    counters["updates"] = len(updates)
    return TrackStepResult(updates=updates, rejected=rejected, counters=dict(counters), orphan_statics=orphans)


def evict_tracks(tracks: Mapping[int, Track], now_t_ms: int, params: TrackParams = TrackParams()) -> list[Track]:
    """Tracks without a fix for more than ``params.idle_evict_s`` at event time ``now_t_ms``.

    :returns: a copy of each such track with ``event='evicted'``; the driver deletes them
        from its state and publishes the copies (fusion then forgets the vessel)
    """
    limit = now_t_ms - params.idle_evict_s * 1000.0
    return [
        msgspec.structs.replace(tr, event="evicted")
        for tr in tracks.values()
        if tr.event != "evicted" and tr.t_ms < limit
    ]
