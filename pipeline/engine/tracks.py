"""The track step: AIS fixes and static reports against the per-MMSI tracks.

Both drivers (the Faust tracks agent and :mod:`pipeline.replay`) run a batch the same way:
:func:`track_batch` (held static reports first, then :func:`track_step`, then the updates
routed to the area by :func:`in_area`), the driver stores the updates in its state, then
:func:`sweep_idle` says which tracks to evict. Only storage and publishing differ.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any

import msgspec
import numpy as np

from pipeline.core import tracks as ct
from pipeline.core.arrays import none_if_nan
from pipeline.engine.columns import PositionColumns
from schemas.records import (
    AisPosition,
    AisStatic,
    Track,
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


#: the fields of a Track that :func:`_prev_arrays` turns into columns
_KINEMATICS = attrgetter(
    "t_ms", "first_t_ms", "lon", "lat", "sog_kn", "cog_deg", "vel_east_mps", "vel_north_mps",
    "n_fixes", "last_gap_s", "max_gap_s", "stopped_since_t_ms", "slow_since_t_ms",
    "implied_speed_kn",
)  # fmt: skip

#: a Track's identity fields, and the same keys of an identity dict
_IDENTITY_FIELDS = (
    "name", "call_sign", "imo", "ship_type", "length_m", "beam_m", "identity_change_t_ms",
)  # fmt: skip

_NO_IDENTITY = (None,) * len(_IDENTITY_FIELDS)


def _prev_arrays(
    prev: Mapping[int, Track], mmsis: np.ndarray
) -> tuple[ct.TrackArrays, dict[int, Track]]:
    """The live previous tracks of ``mmsis`` as columns (built column by column, not
    element by element), and those tracks by MMSI."""
    old: dict[int, Track] = {}
    get = prev.get
    for m in mmsis.tolist():
        tr = get(m)
        if tr is not None and tr.event != "evicted":
            old[m] = tr
    base = ct.TrackArrays.empty_for(np.asarray(list(old), dtype=np.int64))
    if not old:
        return base, old
    (t, first, lon, lat, sog, cog, ve, vn, nfx, lgap, mgap, stop, slow, isp) = zip(
        *map(_KINEMATICS, old.values()), strict=True
    )
    base.t_ms[:] = t
    base.first_t_ms[:] = [tt if f is None else f for f, tt in zip(first, t, strict=True)]
    base.lon_deg[:], base.lat_deg[:] = lon, lat
    # float columns: None becomes NaN
    base.sog_kn[:] = np.array(sog, dtype=float)
    base.cog_deg[:] = np.array(cog, dtype=float)
    base.vel_east_mps[:], base.vel_north_mps[:] = ve, vn
    base.n_fixes[:] = nfx
    base.last_gap_s[:] = np.array(lgap, dtype=float)
    base.max_gap_s[:] = mgap
    base.stopped_since_t_ms[:] = [-1 if v is None else v for v in stop]
    base.slow_since_t_ms[:] = [-1 if v is None else v for v in slow]
    base.implied_speed_kn[:] = np.array(isp, dtype=float)
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


def _rejections(
    res: ct.TrackStepArrays, pc: PositionColumns, counters: Counter[str]
) -> list[tuple[AisPosition, str]]:
    """The positions :func:`~pipeline.core.tracks.step_tracks` did not apply, with their
    reasons; counts them (``rejected.<reason>``) and the accepted ones (``accepted``)."""
    rejected: list[tuple[AisPosition, str]] = []
    bad = np.flatnonzero(res.outcome >= 0)
    for i in bad.tolist():
        reason = ct.REJECT_REASONS[int(res.outcome[i])]
        rejected.append((pc.record(i), reason))
        counters[f"rejected.{reason}"] += 1
    counters["accepted"] = int(len(pc) - bad.size)
    return rejected


def _last_accepted(res: ct.TrackStepArrays, mmsi: np.ndarray) -> dict[int, int]:
    """Row of the last accepted position of each MMSI (for msg type, heading, nav status)."""
    acc = np.flatnonzero(res.outcome < 0)
    rev = acc[::-1]
    u, first_rev = np.unique(mmsi[rev], return_index=True)
    return dict(zip(u.tolist(), rev[first_rev].tolist(), strict=True))


def _apply_statics(
    statics: Sequence[AisStatic],
    rows: Mapping[int, int],
    old: Mapping[int, Track],
    counters: Counter[str],
) -> tuple[dict[int, dict[str, Any]], list[AisStatic]]:
    """The identity of each MMSI with static reports in this batch (starting from its
    previous track, statics applied in order), and the statics of MMSIs without a track.

    :param rows: the MMSIs with a new track state in this batch
    :param old: the previous live tracks of the batch's MMSIs
    """
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
        if (
            s.to_port_m is not None
            and s.to_starboard_m is not None
            and s.to_port_m + s.to_starboard_m > 0
        ):
            d["beam_m"] = float(s.to_port_m + s.to_starboard_m)
    return ident, orphans


def _stepped_records(
    res: ct.TrackStepArrays,
    pc: PositionColumns,
    last_pos: Mapping[int, int],
    ident: Mapping[int, dict[str, Any]],
    old: Mapping[int, Track],
    counters: Counter[str],
) -> list[Track]:
    """One :class:`~schemas.records.Track` per MMSI with accepted positions: the stepped
    state, the last accepted report's fields, the identity and its flags (``jumps``
    counted)."""
    new = res.tracks
    kinds, mids = ct.classify_mmsi(new.mmsi)
    # the last accepted report of each new track
    last = np.array([last_pos[m] for m in new.mmsi.tolist()], dtype=np.int64)
    msg_types = pc.msg_type[last]
    nav = pc.nav_status[last]
    last_sog = none_if_nan(pc.sog_kn[last])
    last_cog = none_if_nan(pc.cog_deg[last])
    last_heading = [None if h < 0 else h for h in pc.heading_deg[last].tolist()]
    classes = ct.ais_class_of(msg_types)
    interval = ct.expected_interval_s(classes, new.sog_kn, nav)

    updates: list[Track] = []
    # Python scalars column by column (indexing NumPy arrays per element is slow)
    for (
        m, t, lon, lat, ve, vn, cls, nfx, ivl, lgap, mgap, kcode, mid, jt, jspd, ft, stop, slow,
        isp, p_sog, p_cog, p_heading,
    ) in zip(
        new.mmsi.tolist(), new.t_ms.tolist(), new.lon_deg.tolist(), new.lat_deg.tolist(),
        new.vel_east_mps.tolist(), new.vel_north_mps.tolist(), classes.tolist(),
        new.n_fixes.tolist(), interval.tolist(), new.last_gap_s.tolist(),
        new.max_gap_s.tolist(), kinds.tolist(), mids.tolist(), res.jump_t_ms.tolist(),
        res.jump_speed_kn.tolist(), new.first_t_ms.tolist(), new.stopped_since_t_ms.tolist(),
        new.slow_since_t_ms.tolist(), new.implied_speed_kn.tolist(), last_sog, last_cog,
        last_heading,
        strict=True,
    ):  # fmt: skip
        idd = ident.get(m)  # only statics of this batch make an identity dict
        if idd is not None:
            name, call_sign, imo, ship_type, length_m, beam_m, ich = _identity_of_dict(idd)
        else:
            o = old.get(m)
            name, call_sign, imo, ship_type, length_m, beam_m, ich = (
                _NO_IDENTITY if o is None else _identity_of_track(o)
            )
        kind = ct.MMSI_KINDS[kcode]
        flags = _identity_flags(name, call_sign, kind, ich is not None)
        if jt >= 0:
            flags.append("impossible_speed")
            counters["jumps"] += 1
        updates.append(Track(
            mmsi=m, t_ms=t, lon=lon, lat=lat,
            sog_kn=p_sog, cog_deg=p_cog, heading_deg=p_heading,
            vel_east_mps=ve, vel_north_mps=vn,
            ais_class=cls,
            n_fixes=nfx,
            expected_interval_s=ivl, last_gap_s=lgap if math.isfinite(lgap) else None,
            max_gap_s=mgap,
            mmsi_kind=kind,  # type: ignore[arg-type]
            mid=None if mid < 0 else mid,
            name=name, call_sign=call_sign, imo=imo, ship_type=ship_type,
            length_m=length_m, beam_m=beam_m, flags=flags,
            first_t_ms=None if ft < 0 else ft,
            stopped_since_t_ms=None if stop < 0 else stop,
            slow_since_t_ms=None if slow < 0 else slow,
            implied_speed_kn=isp if math.isfinite(isp) else None,
            jump_t_ms=jt if jt >= 0 else None,
            jump_speed_kn=(jspd if math.isfinite(jspd) else None) if jt >= 0 else None,
            identity_change_t_ms=ich,
        ))  # fmt: skip
    return updates


def _identity_only_records(
    ident: Mapping[int, dict[str, Any]], rows: Mapping[int, int], old: Mapping[int, Track]
) -> list[Track]:
    """Statics for existing tracks that got no new fix: each track republished with its
    new identity."""
    updates: list[Track] = []
    for m, d in ident.items():
        if m in rows or m not in old:
            continue
        tr = old[m]
        flags = _identity_flags(
            d["name"], d["call_sign"], tr.mmsi_kind, d["identity_change_t_ms"] is not None
        )
        updates.append(msgspec.structs.replace(
            tr, name=d["name"], call_sign=d["call_sign"], imo=d["imo"], ship_type=d["ship_type"],
            length_m=d["length_m"], beam_m=d["beam_m"], flags=flags,
            identity_change_t_ms=d["identity_change_t_ms"], jump_t_ms=None, jump_speed_kn=None,
        ))  # fmt: skip
    return updates


def track_step(
    prev: Mapping[int, Track],
    positions: Sequence[AisPosition] | PositionColumns,
    statics: Sequence[AisStatic],
    params: TrackParams = TrackParams(),
) -> TrackStepResult:
    """Apply a batch of positions and static reports to the per-MMSI tracks.

    Positions are applied in the order given (arrival order); a position older than the
    track's last fix is rejected as ``out_of_order`` and counted, never applied. Static
    reports update the identity (name, call sign, IMO, type, dimensions) in the order given;
    a changed non-empty name or call sign sets the ``identity_change`` flag.

    :param prev: the tracks so far, by MMSI (only ``.get`` is used: a Faust table view works)
    :param positions: decoded position reports, arrival order (records or columns)
    :param statics: decoded static reports, arrival order
    :param params: settings
    :returns: one updated :class:`~schemas.records.Track` per touched MMSI, the rejected
        positions with reasons, counters, and statics for MMSIs without a track
    """
    counters: Counter[str] = Counter()
    pc = (
        positions
        if isinstance(positions, PositionColumns)
        else PositionColumns.from_records(positions)
    )
    counters["positions"] = len(pc)
    counters["statics"] = len(statics)
    fx = ct.FixArrays(
        mmsi=pc.mmsi, t_ms=pc.t_ms, lon_deg=pc.lon, lat_deg=pc.lat, sog_kn=pc.sog_kn,
        cog_deg=pc.cog_deg,
    )  # fmt: skip
    sta_mmsi = np.array([s.mmsi for s in statics], dtype=np.int64).reshape(len(statics))
    touched = np.unique(np.concatenate([fx.mmsi, sta_mmsi]))
    base, old = _prev_arrays(prev, touched)
    res = ct.step_tracks(
        base, fx,
        max_implied_speed_kn=params.max_implied_speed_kn,
        position_tolerance_m=params.position_tolerance_m,
        velocity_alpha=params.velocity_alpha,
        stop_speed_kn=params.stop_speed_kn,
        slow_speed_kn=params.slow_speed_kn,
    )  # fmt: skip
    rejected = _rejections(res, pc, counters)
    last_pos = _last_accepted(res, fx.mmsi)
    rows = {int(m): i for i, m in enumerate(res.tracks.mmsi.tolist())}
    ident, orphans = _apply_statics(statics, rows, old, counters)
    counters["orphan_statics"] = len(orphans)
    updates = _stepped_records(res, pc, last_pos, ident, old, counters)
    updates += _identity_only_records(ident, rows, old)
    counters["updates"] = len(updates)
    return TrackStepResult(
        updates=updates, rejected=rejected, counters=dict(counters), orphan_statics=orphans
    )


def evict_tracks(
    tracks: Mapping[int, Track], now_t_ms: int, params: TrackParams = TrackParams()
) -> list[Track]:
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


_identity_of_track = attrgetter(*_IDENTITY_FIELDS)

_identity_of_dict = itemgetter(*_IDENTITY_FIELDS)


#: event time between two sweeps for idle tracks, ms
EVICT_SWEEP_MS = 60_000

#: most static reports held for MMSIs with no position yet; a flood beyond it is dropped
#: (and counted), so the held set stays bounded
ORPHAN_STATICS_MAX = 100_000


@dataclass
class TrackDriverState:
    """What a track driver keeps besides the tracks: static reports that wait for a first
    position of their MMSI, and the event time of the last sweep for idle tracks (ms, 0 =
    none yet). One per tracks-table partition set (the worker) or per replay."""

    orphans: dict[int, AisStatic] = field(default_factory=dict)
    last_sweep_t_ms: int = 0


@dataclass(frozen=True)
class TrackBatch:
    """What :func:`track_batch` produced.

    :param result: the track step's result (every update, counters)
    :param area_updates: the updates that go on to the area step (:func:`in_area`)
    :param orphans_dropped: held static reports dropped because too many were held
    """

    result: TrackStepResult
    area_updates: list[Track]
    orphans_dropped: int = 0


def in_area(tr: Track, bbox: Sequence[float] | None) -> bool:
    """Whether a track update goes to the area step: a live update inside the area's
    ``bbox`` ``(lon_min, lat_min, lon_max, lat_max)``, degrees (anywhere without one)."""
    if bbox is None:
        return tr.event == "update"
    lon0, lat0, lon1, lat1 = bbox
    return tr.event == "update" and lon0 <= tr.lon <= lon1 and lat0 <= tr.lat <= lat1


def track_batch(
    prev: Mapping[int, Track],
    driver: TrackDriverState,
    positions: Sequence[AisPosition] | PositionColumns,
    statics: Sequence[AisStatic],
    params: TrackParams,
    bbox: Sequence[float] | None,
) -> TrackBatch:
    """One batch of fixes through the track step, as both drivers run it.

    Static reports held from earlier batches (their MMSI had no position yet) go first,
    then this batch's; those still without a position are held again, the latest per MMSI,
    at most :data:`ORPHAN_STATICS_MAX`. The caller then stores ``result.updates`` in its
    state and calls :func:`sweep_idle`.

    :param prev: the tracks by MMSI before the batch (not modified)
    :param driver: the driver's held statics and sweep time (updated in place)
    :param bbox: the area's ``(lon_min, lat_min, lon_max, lat_max)``, degrees, or ``None``
    """
    sta = [*driver.orphans.values(), *statics] if driver.orphans else list(statics)
    driver.orphans.clear()
    result, every = track_step_per_fix(prev, positions, sta, params, bbox)
    for st in result.orphan_statics:
        driver.orphans[st.mmsi] = st
    dropped = 0
    if len(driver.orphans) > ORPHAN_STATICS_MAX:
        dropped = len(driver.orphans)
        driver.orphans.clear()
    return TrackBatch(
        result=result,
        area_updates=[tr for tr in every if in_area(tr, bbox)],
        orphans_dropped=dropped,
    )


class _Stepped(Mapping[int, Track]):
    """The tracks before a batch with the updates of its earlier rounds over them
    (:func:`track_step` reads ``.get`` only; the table view under it may not iterate)."""

    def __init__(self, prev: Mapping[int, Track], new: dict[int, Track]) -> None:
        self.prev = prev
        self.new = new

    def __getitem__(self, mmsi: int) -> Track:
        tr = self.new.get(mmsi)
        return tr if tr is not None else self.prev[mmsi]

    def get(self, mmsi: int, default: Any = None) -> Any:
        tr = self.new.get(mmsi)
        return tr if tr is not None else self.prev.get(mmsi, default)

    def __iter__(self) -> Iterator[int]:
        raise TypeError("the tracks of a batch in rounds are read by MMSI only")

    def __len__(self) -> int:
        raise TypeError("the tracks of a batch in rounds are read by MMSI only")


def fix_rounds(mmsi: np.ndarray) -> np.ndarray:
    """Each report's rank among the reports of its MMSI in the batch (0 for the first to
    arrive): round ``k`` holds the ``k``-th report of every MMSI, in arrival order."""
    n = len(mmsi)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(mmsi, kind="stable")
    sm = mmsi[order]
    starts = np.concatenate([[0], np.flatnonzero(sm[1:] != sm[:-1]) + 1])
    first = np.repeat(starts, np.diff(np.concatenate([starts, [n]])))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n, dtype=np.int64) - first
    return rank


def track_step_per_fix(
    prev: Mapping[int, Track],
    positions: Sequence[AisPosition] | PositionColumns,
    statics: Sequence[AisStatic],
    params: TrackParams = TrackParams(),
    bbox: Sequence[float] | None = None,
) -> tuple[TrackStepResult, list[Track]]:
    """:func:`track_step` that also gives the track's state after each accepted report.

    One Track per MMSI per batch (its last state) is what a table keeps, but not what
    the area may see: a vessel whose reports of five minutes came in one batch (a
    backlog after a restart, a pause, a broker outage, an overloaded worker) would reach
    the area as one update, and the area would see five minutes of AIS silence (a false
    ``dark_approach``) and its position only at the batch's end (camera targets left
    unmatched: a false ``dark_vessel``). So the batch is stepped in rounds, round ``k``
    with the ``k``-th report of every MMSI (:func:`fix_rounds`), the statics with the
    first: each accepted report gives one update, however the input was batched.

    Rounds cost a Track record per report instead of one per MMSI, so only the vessels
    that need them go through rounds: those with more than one report in the batch, one
    of them inside ``bbox`` (an update outside never reaches the area). The others take
    one step, as before.

    :param bbox: the area's ``(lon_min, lat_min, lon_max, lat_max)``, degrees (``None``:
        every vessel may reach the area)
    :returns: the step's result (one update per MMSI, the last; the counters and rejected
        reports of all rounds), and every update
    """
    pc = (
        positions
        if isinstance(positions, PositionColumns)
        else PositionColumns.from_records(positions)
    )
    rank = fix_rounds(pc.mmsi)
    if not len(rank) or int(rank.max()) == 0:
        result = track_step(prev, pc, statics, params)
        return result, result.updates
    near = np.ones(len(pc), dtype=bool)
    if bbox is not None:
        lon0, lat0, lon1, lat1 = bbox
        near = (pc.lon >= lon0) & (pc.lon <= lon1) & (pc.lat >= lat0) & (pc.lat <= lat1)
    multi = np.unique(pc.mmsi[rank >= 1])
    rounds_of = np.intersect1d(multi, np.unique(pc.mmsi[near]))
    if len(rounds_of) == 0:
        result = track_step(prev, pc, statics, params)
        return result, result.updates
    in_rounds = np.isin(pc.mmsi, rounds_of)
    if in_rounds.all():
        return _in_rounds(prev, pc, rank, statics, params)
    chosen = set(rounds_of.tolist())
    rest = track_step(
        prev,
        pc.take(np.flatnonzero(~in_rounds)),
        [x for x in statics if x.mmsi not in chosen],
        params,
    )
    sel = np.flatnonzero(in_rounds)
    got, every = _in_rounds(
        prev, pc.take(sel), rank[sel], [x for x in statics if x.mmsi in chosen], params
    )
    counters = Counter(rest.counters)
    counters.update(got.counters)
    counters["updates"] = len(rest.updates) + len(got.updates)
    result = TrackStepResult(
        updates=rest.updates + got.updates,
        rejected=rest.rejected + got.rejected,
        counters=dict(counters),
        orphan_statics=rest.orphan_statics + got.orphan_statics,
    )
    return result, rest.updates + every


def _in_rounds(
    prev: Mapping[int, Track],
    pc: PositionColumns,
    rank: np.ndarray,
    statics: Sequence[AisStatic],
    params: TrackParams,
) -> tuple[TrackStepResult, list[Track]]:
    """:func:`track_step_per_fix` of reports all stepped in rounds (``rank``: each
    report's round, :func:`fix_rounds`)."""
    n_rounds = int(rank.max()) + 1
    last: dict[int, Track] = {}
    view = _Stepped(prev, last)
    every: list[Track] = []
    rejected: list[tuple[AisPosition, str]] = []
    counters: Counter[str] = Counter()
    orphans: list[AisStatic] = []
    jumps: dict[int, Track] = {}  # the first update of each MMSI with a jump
    for k in range(n_rounds):
        part = pc.take(np.flatnonzero(rank == k))
        r = track_step(view, part, statics if k == 0 else (), params)
        for tr in r.updates:
            last[tr.mmsi] = tr
            if tr.jump_t_ms is not None:
                jumps.setdefault(tr.mmsi, tr)
        every += r.updates
        rejected += r.rejected
        counters.update(r.counters)
        if k == 0:
            orphans = r.orphan_statics
    for m, j in jumps.items():  # the batch's first jump stays on its last state, as in one step
        tr = last[m]
        if tr.jump_t_ms is None:
            last[m] = msgspec.structs.replace(
                tr,
                jump_t_ms=j.jump_t_ms,
                jump_speed_kn=j.jump_speed_kn,
                flags=[*tr.flags, "impossible_speed"],
            )
    counters["updates"] = len(last)
    result = TrackStepResult(
        updates=list(last.values()),
        rejected=rejected,
        counters=dict(counters),
        orphan_statics=orphans,
    )
    return result, every


def sweep_idle(
    tracks: Mapping[int, Track],
    driver: TrackDriverState,
    updates: Sequence[Track],
    params: TrackParams,
    clock_cap_t_ms: int | None = None,
    progress_t_ms: int | None = None,
) -> list[Track]:
    """The tracks to evict after a batch: every :data:`EVICT_SWEEP_MS` of event time (the
    newest fix seen), the tracks idle for longer than ``params.idle_evict_s``.

    The first sweep only starts the clock. A live driver passes ``clock_cap_t_ms`` (its
    wall clock plus a margin) so that one receiver whose clock runs months ahead can not
    make every other track look idle, and ``progress_t_ms``, the AIS path's progress (the
    decode stage's: the minimum over the sources still sending, see
    :mod:`pipeline.engine.source_progress`), so that the fixes of one source far ahead of
    the others (a receiver stamping the wall clock beside a replayed night) do not either:
    which of them reached a micro-batch first depends on arrival, and the clock must not.
    Replay passes neither: its input is merged in event-time order.

    :param tracks: the tracks with this batch's updates stored
    :param driver: the driver's sweep time (updated in place)
    :param updates: this batch's track updates
    :param progress_t_ms: the AIS path's progress, ms UTC (-1: not stated yet, no sweep;
        ``None``: not known, records of an older release)
    :returns: the evicted tracks, copies with ``event='evicted'``: the driver deletes them
        from its state and publishes them
    """
    newest = max([driver.last_sweep_t_ms, *(tr.t_ms for tr in updates)])
    if clock_cap_t_ms is not None:
        newest = min(newest, clock_cap_t_ms)
    if progress_t_ms is not None:
        newest = min(newest, progress_t_ms)
    if newest - driver.last_sweep_t_ms < EVICT_SWEEP_MS:
        return []
    first = driver.last_sweep_t_ms == 0
    driver.last_sweep_t_ms = newest
    return [] if first else evict_tracks(tracks, newest, params)
