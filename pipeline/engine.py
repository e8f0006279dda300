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

**Batching of tracks.** :func:`track_step` publishes one Track per MMSI per batch (its
last state). The detectors read the event-time marks the Track carries (first fix, start
of the current stop and slow runs, first impossible-speed jump, identity change), so the
alerts depend on the fixes, not on how the track agent batched them; only the evidence
trail and the AIS positions association sees are sampled at the batch ends.

**Quiet areas.** Detectors run when input arrives (cameras send a frame per second even
when they see nothing). A live driver lets conditions mature between inputs with
:func:`advance_area` and its own estimate of event time (the Faust area clock); replay
does not, and ends with :func:`flush_area`. With dense input the two evaluate at the same
times; see :func:`advance_area` for where they may differ.

**Alerts.** Every condition is an episode keyed by ``<kind>|<subject>`` (subject
``mmsi:<n>``, ``cam:<camera>:<track>``, ``pair:<a>+<b>`` or ``seen:<camera>:<mmsi>``): an
``open`` event when it first holds, ``update`` events when its severity or factors
change, ``closed`` after it has not held for :attr:`Thresholds.episode_close_s`. The alert
id is ``<kind>:<subject>:<start_t_ms>`` and the CloudEvent id ``<alert id>/<seq>``, so both
drivers produce the same ids.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from typing import Any, ClassVar

import msgspec
import numpy as np

from pipeline.core import detectors as det
from pipeline.core import tracks as ct
from pipeline.core.detectors import Condition, Thresholds, VesselView
from pipeline.core.fusion import CameraAssociation, DetectionArrays, FusionParams, VesselArrays
from pipeline.core.geo import AreaGeometry, destination_point, haversine_m
from schemas.records import (
    AisPosition,
    AisStatic,
    Alert,
    AlertData,
    AlertEvidence,
    AlertFactor,
    AlertVessel,
    AlertZone,
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
    "flush_area",
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
_identity_of_track = attrgetter(*_IDENTITY_FIELDS)
_identity_of_dict = itemgetter(*_IDENTITY_FIELDS)
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


@dataclass(slots=True)
class PositionColumns:
    """Position reports as columns, in arrival order: what :func:`track_step` works on.

    The Faust pipeline carries them in this form from the decode agent to the tracks
    agent (:mod:`pipeline.ais`, ``ais.fixes``); a list of
    :class:`~schemas.records.AisPosition` converts exactly (:meth:`from_records`).

    :param mmsi: int64
    :param msg_type: int64
    :param t_ms: int64 event time, ms UTC
    :param lon: float64 degrees, NaN = not available (also ``lat``)
    :param sog_kn: float64 knots, NaN = not available
    :param cog_deg: float64 degrees true, NaN = not available
    :param heading_deg: int64 degrees true, -1 = not available
    :param nav_status: int64, -1 = none (class B)
    :param accuracy: bool
    :param rx_t_ms: int64 receive time, ms UTC
    :param source_idx: int64 index of each report's source in ``sources``
    :param sources: source ids
    """

    mmsi: np.ndarray
    msg_type: np.ndarray
    t_ms: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    sog_kn: np.ndarray
    cog_deg: np.ndarray
    heading_deg: np.ndarray
    nav_status: np.ndarray
    accuracy: np.ndarray
    rx_t_ms: np.ndarray
    source_idx: np.ndarray
    sources: list[str]

    #: the array fields, in order, and their dtypes
    DTYPES: ClassVar[dict[str, Any]] = {
        "mmsi": np.int64, "msg_type": np.int64, "t_ms": np.int64, "lon": np.float64,
        "lat": np.float64, "sog_kn": np.float64, "cog_deg": np.float64,
        "heading_deg": np.int64, "nav_status": np.int64, "accuracy": bool,
        "rx_t_ms": np.int64, "source_idx": np.int64,
    }  # fmt: skip
    ARRAYS: ClassVar[tuple[str, ...]] = tuple(DTYPES)

    def __len__(self) -> int:
        return int(self.mmsi.shape[0])

    @classmethod
    def from_records(cls, positions: Sequence[AisPosition]) -> PositionColumns:
        """The columns of ``positions`` (``None`` becomes NaN or -1)."""
        if not positions:
            return cls.concat([])
        *values, src = zip(*map(_POSITION_FIELDS, positions), strict=True)
        cols: dict[str, Any] = dict(zip(cls.ARRAYS[:-1], values, strict=True))  # not source_idx
        for name in ("heading_deg", "nav_status"):
            cols[name] = [-1 if v is None else v for v in cols[name]]
        sources = list(dict.fromkeys(src))
        index = {s: i for i, s in enumerate(sources)}
        cols["source_idx"] = [index[x] for x in src]
        # NumPy turns None into NaN for the float dtypes
        arrays = {name: np.array(cols[name], dtype=cls.DTYPES[name]) for name in cls.ARRAYS}
        return cls(**arrays, sources=sources)

    @classmethod
    def concat(cls, parts: Sequence[PositionColumns]) -> PositionColumns:
        """``parts`` one after the other (none: no reports)."""
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return cls(**{n: np.zeros(0, d) for n, d in cls.DTYPES.items()}, sources=[])
        sources = list(dict.fromkeys(s for p in parts for s in p.sources))
        index = {s: i for i, s in enumerate(sources)}
        cols: dict[str, Any] = {
            name: np.concatenate([getattr(p, name) for p in parts]) for name in cls.ARRAYS
        }
        cols["source_idx"] = np.concatenate(
            [np.array([index[s] for s in p.sources], np.int64)[p.source_idx] for p in parts]
        )
        return cls(**cols, sources=sources)

    def take(self, idx: np.ndarray) -> PositionColumns:
        """The reports ``idx``, in that order."""
        cols: dict[str, Any] = {name: getattr(self, name)[idx] for name in self.ARRAYS}
        return PositionColumns(**cols, sources=self.sources)

    def record(self, i: int) -> AisPosition:
        """Report ``i`` as a record."""
        lon, lat, sog, cog = (
            float(getattr(self, f)[i]) for f in ("lon", "lat", "sog_kn", "cog_deg")
        )
        hdg, nav = int(self.heading_deg[i]), int(self.nav_status[i])
        return AisPosition(
            mmsi=int(self.mmsi[i]), msg_type=int(self.msg_type[i]), t_ms=int(self.t_ms[i]),
            lon=None if math.isnan(lon) else lon, lat=None if math.isnan(lat) else lat,
            sog_kn=None if math.isnan(sog) else sog, cog_deg=None if math.isnan(cog) else cog,
            heading_deg=None if hdg < 0 else hdg, nav_status=None if nav < 0 else nav,
            accuracy=bool(self.accuracy[i]), source=self.sources[int(self.source_idx[i])],
            rx_t_ms=int(self.rx_t_ms[i]),
        )  # fmt: skip


#: an AisPosition's fields in the order of PositionColumns.ARRAYS (``source`` last)
_POSITION_FIELDS = attrgetter(*PositionColumns.ARRAYS[:-1], "source")


def _none_if_nan(values: np.ndarray) -> list[float | None]:
    """``values`` as Python floats, NaN as ``None`` (only the NaNs are touched)."""
    out: list[float | None] = values.tolist()
    for i in np.flatnonzero(np.isnan(values)).tolist():
        out[i] = None
    return out


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
    n = len(pc)
    counters["positions"] = n
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
    rejected: list[tuple[AisPosition, str]] = []
    bad = np.flatnonzero(res.outcome >= 0)
    for i in bad.tolist():
        reason = ct.REJECT_REASONS[int(res.outcome[i])]
        rejected.append((pc.record(i), reason))
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
        if (
            s.to_port_m is not None
            and s.to_starboard_m is not None
            and s.to_port_m + s.to_starboard_m > 0
        ):
            d["beam_m"] = float(s.to_port_m + s.to_starboard_m)
    counters["orphan_statics"] = len(orphans)

    kinds, mids = ct.classify_mmsi(new.mmsi)
    # the last accepted report of each new track
    last = np.array([last_pos[m] for m in new.mmsi.tolist()], dtype=np.int64)
    msg_types = pc.msg_type[last]
    nav = pc.nav_status[last]
    last_sog = _none_if_nan(pc.sog_kn[last])
    last_cog = _none_if_nan(pc.cog_deg[last])
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
    # statics for existing tracks that got no new fix: republish the track with the identity
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


# =========================================================================== area
@dataclass(frozen=True)
class AreaContext:
    """Everything fixed about one area (site) that :func:`area_step` needs.

    :param site: site name (the area key)
    :param geometry: coastline, land and authorised zones
    :param cameras: camera models by camera id (``CameraModel``, duck-typed)
    :param thresholds: detector thresholds
    :param source: CloudEvents ``source`` of the alerts (default ``shorewatch/<site>``)
    :param fusion: association parameters
    :param bbox: ``(lon_min, lat_min, lon_max, lat_max)`` of the site, degrees, or ``None``
    """

    site: str
    geometry: AreaGeometry
    cameras: Mapping[str, Any] = field(default_factory=dict)
    thresholds: Thresholds = field(default_factory=Thresholds)
    source: str = ""
    fusion: FusionParams = field(default_factory=FusionParams)
    bbox: tuple[float, float, float, float] | None = None
    lateness_ms: int = 0

    def __post_init__(self) -> None:
        if not self.source:
            object.__setattr__(self, "source", f"shorewatch/{self.site}")

    @classmethod
    def from_site(
        cls, site: Any, fusion: FusionParams | None = None, lateness_ms: int = 0
    ) -> AreaContext:
        """From a :class:`pipeline.site.Site`.

        :param lateness_ms: event-time disorder the area waits out before it processes
            input (see :func:`area_step`); 0 for time-ordered input such as replay
        :raises ConfigError: on unknown or malformed thresholds
        """
        return cls(
            lateness_ms=int(lateness_ms),
            site=site.name,
            geometry=site.geometry(),
            cameras={c.id: c.model() for c in site.cameras},
            thresholds=Thresholds.from_dict(site.thresholds),
            fusion=fusion or FusionParams(),
            bbox=tuple(site.bbox) if getattr(site, "bbox", None) is not None else None,
        )

    @functools.cached_property
    def fingerprint(self) -> str:
        """Digest of the geometry and thresholds: states built with others drop their caches."""
        h = hashlib.sha256()
        g = self.geometry
        h.update(np.ascontiguousarray(g.coast_segments, dtype=np.float64).tobytes())
        for r in g.land_rings:
            h.update(np.ascontiguousarray(r, dtype=np.float64).tobytes())
        for z in g.zones:
            h.update(repr((z.name, z.kind, z.center_lonlat, z.radius_m)).encode())
            if z.ring_lonlat is not None:
                h.update(np.ascontiguousarray(z.ring_lonlat, dtype=np.float64).tobytes())
        h.update(repr(self.thresholds).encode())
        return h.hexdigest()[:16]

    def contains(self, lon: float, lat: float) -> bool:
        """Whether a position is inside the site's bbox (always true without one)."""
        if self.bbox is None:
            return True
        x0, y0, x1, y1 = self.bbox
        return x0 <= lon <= x1 and y0 <= lat <= y1


class _Vessel(msgspec.Struct, kw_only=True):
    track: Track
    trail: list[list[float]] = msgspec.field(default_factory=list)
    detections: list[dict[str, Any]] = msgspec.field(default_factory=list)
    uris: list[str] = msgspec.field(default_factory=list)
    jump_first_t_ms: int = -1
    jump_last_t_ms: int = -1
    jump_speed_kn: float = 0.0
    geo: list[float] = msgspec.field(default_factory=list)


class _Target(msgspec.Struct, kw_only=True):
    camera_id: str
    track_id: int
    first_t_ms: int
    t_ms: int
    hits: int = 0
    mmsi: int = -1
    unmatched_since_t_ms: int = -1
    lon: float | None = None
    lat: float | None = None
    anchor_lon: float | None = None
    anchor_lat: float | None = None
    anchor_t_ms: int = -1
    ever_matched: bool = False
    last_mmsi: int = -1
    geo: list[float] = msgspec.field(default_factory=list)
    trail: list[list[float]] = msgspec.field(default_factory=list)
    detections: list[dict[str, Any]] = msgspec.field(default_factory=list)
    uris: list[str] = msgspec.field(default_factory=list)


class _Episode(msgspec.Struct, kw_only=True):
    alert_id: str
    kind: str
    subject: str
    start_t_ms: int
    seq: int = 0
    severity: int = 0
    factor_names: list[str] = msgspec.field(default_factory=list)
    false_since_t_ms: int = -1
    last: AlertData | None = None


class AreaState(msgspec.Struct, kw_only=True):
    """Everything one area needs between batches; serialisable with msgspec (MessagePack).

    Bounded: trails keep :attr:`Thresholds.trail_max_points`; vessels, camera targets and
    pairs are forgotten after their idle limits.

    :param context: :attr:`AreaContext.fingerprint` of the context the caches were built with
    :param first_t_ms: event time of the area's first input, ms UTC (-1: none)
    :param watermark_t_ms: largest event time seen, ms UTC (-1: none)
    :param tick: the tick (``t_ms // eval_tick``) holding input not yet evaluated (-1: none)
    :param vessels: AIS vessels by MMSI: last track, trail, matched detections
    :param targets: camera targets by ``<camera>:<track id>`` (of their first track id)
    :param aliases: later camera track ids stitched onto an earlier target (id switches)
    :param assoc: association state per camera (:meth:`CameraAssociation.to_state`)
    :param cam_t_ms: time of the last frame per camera
    :param unseen: ``<camera>:<mmsi>`` -> ``[since, last]`` AIS vessels a camera does not see
    :param pairs: rendezvous pair key -> ``[first seen close, last seen close]``, ms
    :param met_t_ms: subject -> last time it was in a rendezvous
    :param episodes: open alert episodes by ``<kind>|<subject>``
    :param counters: cumulative counts (skipped frames, invalid detections, late input, ...)
    :param held_tracks: input waiting out the area's lateness (see :func:`area_step`)
    :param held_frames: the same, camera frames
    :param held_until_t_ms: largest input event time seen by the reorder stage, ms UTC
    :param evaluated_t_ms: event time of the last evaluation of the detectors, ms UTC
    """

    version: int = 1
    context: str = ""
    first_t_ms: int = -1
    watermark_t_ms: int = -1
    tick: int = -1
    vessels: dict[int, _Vessel] = msgspec.field(default_factory=dict)
    targets: dict[str, _Target] = msgspec.field(default_factory=dict)
    aliases: dict[str, str] = msgspec.field(default_factory=dict)
    assoc: dict[str, dict[str, list[Any]]] = msgspec.field(default_factory=dict)
    cam_t_ms: dict[str, int] = msgspec.field(default_factory=dict)
    unseen: dict[str, list[int]] = msgspec.field(default_factory=dict)
    pairs: dict[str, list[int]] = msgspec.field(default_factory=dict)
    met_t_ms: dict[str, int] = msgspec.field(default_factory=dict)
    episodes: dict[str, _Episode] = msgspec.field(default_factory=dict)
    counters: dict[str, int] = msgspec.field(default_factory=dict)
    held_tracks: list[Track] = msgspec.field(default_factory=list)
    held_frames: list[CameraFrame] = msgspec.field(default_factory=list)
    held_until_t_ms: int = -1
    evaluated_t_ms: int = -1

    def to_bytes(self) -> bytes:
        """MessagePack bytes (msgspec; never pickle)."""
        return _state_enc.encode(self)

    @classmethod
    def from_bytes(cls, raw: bytes) -> AreaState:
        """Inverse of :meth:`to_bytes`."""
        return _state_dec.decode(raw)

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n


_state_enc = msgspec.msgpack.Encoder()
_state_dec = msgspec.msgpack.Decoder(AreaState)


def _trim_trail(trail: list[list[float]], th: Thresholds) -> None:
    if len(trail) > th.trail_max_points:
        del trail[: len(trail) - th.trail_max_points]
    if trail:
        oldest = trail[-1][2] - th.trail_max_age_s * 1000.0
        k = 0
        while k < len(trail) and trail[k][2] < oldest:
            k += 1
        if k:
            del trail[:k]


def _push_unique(items: list[str], value: str | None, limit: int = 5) -> None:
    if value and value not in items:
        items.append(value)
        if len(items) > limit:
            del items[0]


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
    """The target of this camera, lost less than ``stitch_gap_s`` ago and within
    ``stitch_radius_m`` of a new camera track's first position, that it continues."""
    if d.lon is None or d.lat is None:
        return None
    best, best_d = None, th.stitch_radius_m
    for key, tg in st.targets.items():
        if (
            tg.camera_id != cam
            or tg.lon is None
            or tg.t_ms >= t
            or t - tg.t_ms > th.stitch_gap_s * 1000.0
        ):
            continue
        dist = float(haversine_m(tg.lon, tg.lat, d.lon, d.lat))
        if dist <= best_d:
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
    st.cam_t_ms[cam] = fr.t_ms
    st.count("frames")
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
    st.count("detections", len(valid))
    dets = DetectionArrays.from_lists(
        track_id=[d.track_id for d in valid],
        bearing_deg=[d.bearing_deg % 360.0 for d in valid],
        bearing_sigma_deg=[d.bearing_sigma_deg for d in valid],
        range_m=[None if d.beyond_horizon else d.range_m for d in valid],
        range_sigma_m=[d.range_sigma_m for d in valid],
        lon_deg=[d.lon for d in valid],
        lat_deg=[d.lat for d in valid],
        box_px=[list(d.box_px) for d in valid] if valid else np.zeros((0, 4)),
    )
    assoc = cache.association(st, cam)
    fa = assoc.step(fr.t_ms, dets, cache.vessel_arrays(st), cache.model(ctx, fr), ctx.fusion)
    t = fr.t_ms
    for j, d in enumerate(valid):
        key = f"{cam}:{d.track_id}"
        key = st.aliases.get(key, key)
        tg = st.targets.get(key)
        if tg is None:
            old = _stitch(st, cam, t, d, th)
            if old is not None:
                st.aliases[key] = old
                key = old
                tg = st.targets[old]
                st.count("targets.stitched")
            else:
                tg = _Target(camera_id=cam, track_id=d.track_id, first_t_ms=t, t_ms=t)
                st.targets[key] = tg
        tg.t_ms = t
        tg.hits += 1
        m = int(fa.mmsi[j])
        tg.mmsi = m
        if m < 0:
            if tg.unmatched_since_t_ms < 0:
                tg.unmatched_since_t_ms = t
        else:
            tg.unmatched_since_t_ms = -1
        if d.lon is not None and d.lat is not None:
            tg.lon, tg.lat = float(d.lon), float(d.lat)
            tg.trail.append([tg.lon, tg.lat, float(t)])
            _trim_trail(tg.trail, th)
            radius = max(th.dark_stop_radius_m, 2.0 * float(d.range_sigma_m or 0.0))
            if (
                tg.anchor_lon is None
                or float(haversine_m(tg.anchor_lon, tg.anchor_lat, tg.lon, tg.lat)) > radius
            ):
                tg.anchor_lon, tg.anchor_lat, tg.anchor_t_ms = tg.lon, tg.lat, t
        evidence = {
            "camera_id": cam, "track_id": int(d.track_id), "t_ms": int(t),
            "bearing_deg": float(d.bearing_deg), "range_m": d.range_m, "confidence": float(d.confidence),
            "cls": d.cls, "box_px": [float(x) for x in d.box_px], "mmsi": m if m >= 0 else None,
        }  # fmt: skip
        tg.detections.append(evidence)
        del tg.detections[:-5]
        _push_unique(tg.uris, d.crop_uri)
        _push_unique(tg.uris, fr.evidence_uri)
        if m >= 0 and bool(fa.confirmed[j]):
            tg.ever_matched = True
            tg.last_mmsi = m
        if m >= 0 and bool(fa.confirmed[j]) and m in st.vessels:
            v = st.vessels[m]
            v.detections.append(evidence)
            del v.detections[:-5]
            _push_unique(v.uris, d.crop_uri)
            _push_unique(v.uris, fr.evidence_uri)
    unseen = {int(x) for x in fa.unseen_mmsi.tolist()}
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
    silence_ms = float(det.silence_limit_s(tr.expected_interval_s, stopped, th)) * 1000.0
    return tg.t_ms > tr.t_ms + silence_ms


def _view(
    st: AreaState, now: int, ctx: AreaContext
) -> tuple[VesselView, list[Any], np.ndarray, np.ndarray]:
    """Gather the area's vessels and dark targets into arrays, with geometry computed."""
    th = ctx.thresholds
    g = ctx.geometry
    vessels = [st.vessels[m] for m in sorted(st.vessels)]
    targets = [st.targets[k] for k in sorted(st.targets)]
    targets = [tg for tg in targets if tg.lon is not None and _target_is_dark(st, tg, th)]
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
        f"mmsi:{m}" if m >= 0 else f"cam:{tg.camera_id}:{tg.track_id}"
        for tg, m in zip(targets, linked, strict=True)
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
            + [tg.anchor_t_ms if tg.anchor_t_ms >= 0 and tg.t_ms - tg.anchor_t_ms >= dwell_ms else -1 for tg in targets],
            np.int64,
        ),
        slow_since_t_ms=col([-1 if t.slow_since_t_ms is None else t.slow_since_t_ms for t in trk] + [-1] * nd, np.int64),
        first_t_ms=col([t.first_t_ms if t.first_t_ms is not None else t.t_ms for t in trk] + [tg.first_t_ms for tg in targets], np.int64),
        length_m=col([_nan(t.length_m) for t in trk] + [np.nan] * nd),
        hits=col([0] * na + [tg.hits for tg in targets], np.int64),
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
    :func:`pipeline.core.detectors.ais_silence_ms`), stopping at the landfall, m;
    ``coast_m`` for every other row.

    A receiver misses a vessel's last reports as often as it hears them (range, shadowing),
    so the last fix heard can lie outside the watch distance while the vessel is inside
    it when its silence is noticed."""
    th = ctx.thresholds
    out = v.coast_m.copy()
    if len(v) == 0:
        return out
    silence = det.ais_silence_ms(v, th)
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


def _alert_data(
    c: Condition,
    ep: _Episode,
    status: str,
    view: VesselView,
    owners: list[Any],
    zone: tuple[str | None, str | None, float | None, float | None],
    site: str,
) -> AlertData:
    i = c.row
    owner = owners[i]
    dark = bool(view.dark[i])
    mmsi = int(view.mmsi[i]) if view.mmsi[i] >= 0 else None
    track_id = (
        f"cam:{owner.camera_id}:{owner.track_id}"
        if isinstance(owner, _Target)
        else str(view.subject[i])
    )
    detections = list(owner.detections)
    for r in c.rows[1:]:
        detections.append({
            "partner": str(view.subject[r]), "mmsi": None if view.dark[r] else int(view.mmsi[r]),
            "lon": float(view.lon[r]), "lat": float(view.lat[r]), "t_ms": int(view.t_ms[r]),
        })  # fmt: skip
        detections.extend(owners[r].detections)
    uris: list[str] = []
    for r in c.rows or (i,):
        for u in owners[r].uris:
            _push_unique(uris, u, limit=10)
    return AlertData(
        alert_id=ep.alert_id, kind=c.kind, status=status, severity=c.severity,  # type: ignore[arg-type]
        factors=[AlertFactor(f.name, float(f.weight), f.explanation) for f in c.factors],
        event_time=iso_utc(ep.start_t_ms), position=GeoPoint(lat=c.lat, lon=c.lon),
        vessel=AlertVessel(mmsi=mmsi, name=view.name[i], dark=dark, track_id=track_id),
        zone=AlertZone(name=zone[0], kind=zone[1], distance_m=zone[2], coast_distance_m=zone[3]),
        evidence=AlertEvidence(trail=[list(p) for p in owner.trail], detections=detections, snapshot_uris=uris),
        site=site, seq=ep.seq,
    )  # fmt: skip


def _cloud_event(data: AlertData, time_ms: int, ctx: AreaContext) -> Alert:
    return Alert(
        id=f"{data.alert_id}/{data.seq}", source=ctx.source, type=f"org.shorewatch.alert.{data.kind}",
        time=iso_utc(time_ms), subject=data.vessel.track_id, data=data,
    )  # fmt: skip


def _evaluate(st: AreaState, now: int, ctx: AreaContext) -> list[Alert]:
    """Run every detector at event time ``now`` and advance the alert episodes."""
    th = ctx.thresholds
    st.evaluated_t_ms = max(st.evaluated_t_ms, now)
    _housekeeping(st, now, th)
    view, owners, east, north = _view(st, now, ctx)
    # rendezvous first: it feeds the landing's "earlier rendezvous" factor
    pairs = det.rendezvous_pairs(view, east, north, now, th)
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
    conds: list[Condition] = det.rendezvous(view, pairs, since, now, th)
    if conds:
        for c in conds:
            for r in c.rows:
                st.met_t_ms[str(view.subject[r])] = now
        recent = np.array(
            [
                st.met_t_ms.get(str(s), -1) >= now - th.rendezvous_memory_s * 1000.0
                for s in view.subject
            ],
            dtype=bool,
        )
        view = dataclasses.replace(view, recent_rendezvous=recent)
    conds += det.unusual_landing(view, now, th)
    conds += det.dark_approach(view, now, th)
    conds += det.dark_vessel(view, now, th, st.first_t_ms)
    conds += det.loitering(view, now, th)
    conds += det.identity_anomaly(view, now, th)
    conds += det.impossible_speed(view, now, th)
    rows_by_mmsi = {
        int(m): i for i, m in enumerate(view.mmsi.tolist()) if m >= 0 and not view.dark[i]
    }
    conds += det.ais_not_seen(view, st.unseen, rows_by_mmsi, now, th)

    active = {f"{c.kind}|{c.subject}": c for c in conds}
    zones: dict[str, tuple[str | None, str | None, float | None, float | None]] = {}
    if active:
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
    for key in sorted(set(st.episodes) - set(active)):
        ep = st.episodes[key]
        if ep.false_since_t_ms < 0:
            ep.false_since_t_ms = now
        if now - ep.false_since_t_ms >= th.episode_close_s * 1000.0:
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
    return _area_step_ordered(st, tracks, frames, ctx)


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


def _area_step_ordered(
    st: AreaState, tracks: Sequence[Track], frames: Sequence[CameraFrame], ctx: AreaContext
) -> tuple[AreaState, list[Alert]]:
    th = ctx.thresholds
    if st.context != ctx.fingerprint:  # new geometry or thresholds: cached geometry is stale
        for v in st.vessels.values():
            v.geo = []
        for tg in st.targets.values():
            tg.geo = []
        st.context = ctx.fingerprint
    tick_ms = max(1, int(round(th.eval_tick_s * 1000.0)))
    items = sorted(
        [(tr.t_ms, 0, i) for i, tr in enumerate(tracks)]
        + [(fr.t_ms, 1, i) for i, fr in enumerate(frames)]
    )
    cache = _StepCache()
    out: list[Alert] = []
    for t, kind, i in items:
        k = t // tick_ms
        if st.tick < 0:
            st.tick = k
        elif k > st.tick:
            out += _evaluate(st, (st.tick + 1) * tick_ms, ctx)
            st.tick = k
        elif k < st.tick and not (kind == 0 and _identity_refresh(st, tracks[i])):
            st.count("late")
        st.watermark_t_ms = max(st.watermark_t_ms, t)
        if st.first_t_ms < 0:
            st.first_t_ms = t
        if kind == 0:
            if _apply_track(st, tracks[i], th):
                cache.vessels = None
        else:
            _apply_frame(st, frames[i], ctx, cache)
    cache.store(st)
    return st, out


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
        out += _area_step_ordered(st, rel_t, rel_f, ctx)[1]
    tick_ms = max(1, int(round(ctx.thresholds.eval_tick_s * 1000.0)))
    end = (cut // tick_ms) * tick_ms  # the last tick boundary the clock has passed
    if st.first_t_ms >= 0 and end > st.watermark_t_ms and end > st.evaluated_t_ms:
        open_end = (st.tick + 1) * tick_ms
        if st.tick >= 0 and st.evaluated_t_ms < open_end < end:
            out += _evaluate(st, open_end, ctx)  # the open tick, where replay evaluates it
        out += _evaluate(st, end, ctx)
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
        out += _area_step_ordered(state, held_t, held_f, ctx)[1]
    if state.tick >= 0:
        out += _evaluate(state, (state.tick + 1) * tick_ms, ctx)
        state.tick = -1
    if until_t_ms is not None and until_t_ms > state.watermark_t_ms:
        out += _evaluate(state, until_t_ms, ctx)
        state.watermark_t_ms = until_t_ms
        state.tick = -1
    return out
