"""Detectors: small pure functions over the fused state of one area.

Each detector takes a :class:`VesselView` (AIS vessels and dark camera targets as
arrays, with their coast and zone context already computed), the evaluation time
``now_t_ms`` (event time, ms UTC) and the :class:`Thresholds`, and returns the
:class:`Condition` s that hold at that time. The masks are vectorised; only the few
conditions that hold are turned into Python objects. Episodes (one alert per vessel per
episode: open → update → closed) are kept by :func:`pipeline.engine.area.area_step`.

Each condition carries ``start_t_ms``, the event time at which it became true, computed
exactly from the state (e.g. start of the stop + dwell), and its severity factors.

Defaults cite ``../shared/DESIGN.md`` §3 (ITU-R M.1371 report intervals, GFW and
Skylight encounter/loitering thresholds, MarineTraffic stopped < 0.5 kn, GFW's 25 kn
segmenter) or state that they are a house default, to be tuned per site through
``site.yaml``'s ``thresholds``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.core.geo import NIGHT_SUN_ELEVATION_DEG, solar_elevation_deg
from pipeline.errors import ConfigError

__all__ = [
    "Condition",
    "Factor",
    "Thresholds",
    "VesselView",
    "ais_not_seen",
    "ais_silence_ms",
    "dark_approach",
    "dark_vessel",
    "identity_anomaly",
    "impossible_speed",
    "loitering",
    "rendezvous",
    "rendezvous_pairs",
    "unusual_landing",
]

KNOT_MPS = 1852.0 / 3600.0


@dataclass(frozen=True)
class Thresholds:
    """Every detector threshold, with its default and where it comes from.

    Override per site in ``site.yaml`` ``thresholds:`` (:meth:`from_dict`).

    :param stop_speed_kn: a vessel is stopped below this, knots (MarineTraffic: stopped
        < 0.5 kn, DESIGN.md §3)
    :param landing_dwell_s: a stop must last this long to count as a landing, s (house
        default 3 min = one Class A report interval at anchor, ITU-R M.1371)
    :param landing_coast_m: "at the waterline": within this distance of the coastline, m
        (house default; Natural Earth 1:10m coast is accurate to a few hundred metres, use
        a finer coast for a tighter value)
    :param zone_margin_m: a point this close to an authorised zone counts as inside it, m
    :param ais_gap_factor: AIS is "off" after this many expected report intervals without a
        fix (k in "k × expected interval"; coastal minutes rather than the satellite-era
        6 h of GFW, DESIGN.md §3; 8 keeps a Class B "CS" at 30 s, heard at range with
        reception losses, from looking dark before 4 min)
    :param ais_gap_min_s: and never before this long, s (house default 2 min: single
        missed reports are common on terrestrial AIS)
    :param approach_coast_m: dark_approach watches vessels within this distance of the
        coast, m (issue default 5 km)
    :param approach_min_speed_kn: a vessel "heading for shore" moves at least this fast, kn
    :param approach_landfall_m: "heading for shore" means the course meets land within
        this distance, m (house default 10 km: twice the watch distance, so a vessel
        1 km off a headland heading into the bay beside it counts)
    :param approach_port_margin_m: ... at a point farther than this from every authorised
        zone, m (a ship heading into port is not approaching the shore; house default 1 km).
        Only a landfall within ``approach_coast_m`` counts as heading into port: farther
        ahead a few degrees of course noise or a course change move the landfall by more
        than the margin (3.5 deg at 9 km: 550 m), so the port it points near says little
        and the AIS silence within the watch distance decides (coastal gaps of minutes are
        meaningful, DESIGN.md §3)
    :param dark_vessel_min_s: a confirmed camera target without AIS match for this long is a
        dark vessel, s (house default 1 min)
    :param dark_min_hits: frames a camera track needs before it counts as a target
        (DeepSORVF confirms after > 3 consecutive matches, DESIGN.md §3: 4)
    :param camera_lost_s: a camera target unseen this long is gone, s
    :param landing_end_speed_kn: a camera target whose track ends at the shore must be
        slower than this at the end, knots (MarineTraffic: underway above 3.5 kn)
    :param stitch_radius_m: a new camera track starting this close to a target of the same
        camera lost less than ``stitch_gap_s`` ago continues that target (tracker id
        switches, a boat lost in the dark and found again), m (house default)
    :param stitch_gap_s: see ``stitch_radius_m``, s (house default 5 min)
    :param dark_stop_radius_m: a camera target staying within this radius is stopped, m
        (camera geo-referencing errors 18 ± 10 m with a homography, more at range, DESIGN §3;
        widened to twice the detection's range sigma when that is larger)
    :param rendezvous_distance_m: two vessels this close meet, m (Skylight 250 m; GFW 500 m)
    :param rendezvous_min_s: for at least this long, s (Skylight dark rendezvous 15 min;
        Skylight standard 30 min; GFW 2 h)
    :param rendezvous_speed_kn: both slower than this, knots (GFW encounters < 2 kn)
    :param rendezvous_memory_s: an earlier rendezvous raises a landing's severity for this
        long, s (house default 6 h)
    :param rendezvous_gap_s: a pair apart (or unheard) for less than this stays the same
        meeting, s (house default 5 min: a Class B at 3 min intervals misses reports)
    :param fresh_fix_s: positions older than this (and than the AIS silence limit) are not
        used for pairs, s (2 × the 3 min
        interval of a moored Class A vessel, ITU-R M.1371)
    :param loiter_speed_kn: loitering below this speed, knots (GFW loitering: mean < 2 kn)
    :param loiter_min_s: for at least this long, s (house default 20 min near the shore;
        GFW uses hours offshore)
    :param loiter_coast_m: loitering is watched within this distance of the coast, m
    :param identity_grace_s: a vessel without name and call sign is "三无" after this long
        (15 min: 2.5 × the 6 min static data interval of ITU-R M.1371, so that a few lost
        static reports on a terrestrial feed do not make a named ship nameless)
    :param max_implied_speed_kn: implied speed limit, knots (default 50 kn for fast small
        craft; GFW's segmenter splits at 25 kn, DESIGN.md §3)
    :param jump_hold_s: an impossible-speed episode stays open this long after a jump, s
    :param ais_not_seen_min_s: an AIS vessel in a working camera's view unseen this long, s
        (only in daylight at the camera: at night a visible-light camera is not "working"
        for small craft)
    :param camera_stale_s: a camera without a frame for this long is not working, s
    :param small_craft_length_m: hulls shorter than this are small craft, m (24 m: the IMO
        load-line / small-craft limit)
    :param night_sun_elevation_deg: night when the sun is below this, deg (sunset, -0.833)
    :param vessel_forget_s: the area forgets a vessel without a fix for this long, s
    :param episode_close_s: an episode closes after its condition has been false this long, s
        (house default 5 min: camera geo-referencing noise and missed detections make
        conditions flicker; one alert per vessel per episode)
    :param eval_tick_s: detectors run once per tick of event time that received input (and
        on the live area clock's tick boundaries), s (250 ms: a quarter of the 1 s alert
        latency budget)
    :param warmup_s: no dark_vessel before the area has seen this much input time, s (2 ×
        the 3 min interval of a moored or slow vessel, ITU-R M.1371: the AIS picture is
        incomplete at start-up)
    :param trail_max_points: trail points kept per vessel or target (evidence)
    :param trail_max_age_s: trail points older than this are dropped, s
    :param target_forget_s: the area forgets a camera target unseen this long, s
    """

    stop_speed_kn: float = 0.5
    landing_dwell_s: float = 180.0
    landing_coast_m: float = 150.0
    zone_margin_m: float = 0.0
    ais_gap_factor: float = 8.0
    ais_gap_min_s: float = 120.0
    approach_coast_m: float = 5000.0
    approach_min_speed_kn: float = 1.0
    approach_landfall_m: float = 10000.0
    approach_port_margin_m: float = 1000.0
    dark_vessel_min_s: float = 60.0
    dark_min_hits: int = 4
    camera_lost_s: float = 30.0
    landing_end_speed_kn: float = 3.5
    stitch_radius_m: float = 150.0
    stitch_gap_s: float = 300.0
    dark_stop_radius_m: float = 75.0
    rendezvous_distance_m: float = 250.0
    rendezvous_min_s: float = 900.0
    rendezvous_speed_kn: float = 2.0
    rendezvous_memory_s: float = 21600.0
    fresh_fix_s: float = 360.0
    rendezvous_gap_s: float = 300.0
    loiter_speed_kn: float = 2.0
    loiter_min_s: float = 1200.0
    loiter_coast_m: float = 2000.0
    identity_grace_s: float = 900.0
    max_implied_speed_kn: float = 50.0
    jump_hold_s: float = 600.0
    ais_not_seen_min_s: float = 60.0
    camera_stale_s: float = 30.0
    small_craft_length_m: float = 24.0
    night_sun_elevation_deg: float = NIGHT_SUN_ELEVATION_DEG
    vessel_forget_s: float = 3600.0
    episode_close_s: float = 300.0
    eval_tick_s: float = 0.25
    warmup_s: float = 360.0
    trail_max_points: int = 60
    trail_max_age_s: float = 3600.0
    target_forget_s: float = 600.0

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Thresholds:
        """Defaults overridden by ``d`` (e.g. ``site.thresholds``).

        :raises ConfigError: on an unknown key or a value of the wrong type
        """
        d = dict(d or {})
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown threshold(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        out: dict[str, Any] = {}
        for k, v in d.items():
            default = getattr(cls, k)
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ConfigError(f"threshold {k}: must be a number, got {v!r}")
            if isinstance(default, int) and not isinstance(default, bool):
                if float(v) != int(v):
                    raise ConfigError(f"threshold {k}: must be an integer, got {v!r}")
                v = int(v)
            else:
                v = float(v)
            if v < 0 and k != "night_sun_elevation_deg":
                raise ConfigError(f"threshold {k}: must not be negative, got {v!r}")
            out[k] = v
        return cls(**out)


@dataclass(frozen=True)
class Factor:
    """One contribution to a severity: ``weight`` points on the 0–100 scale."""

    name: str
    weight: float
    explanation: str


@dataclass(frozen=True)
class Condition:
    """A detector condition that holds at the evaluation time.

    :param kind: detector name (the alert kind)
    :param subject: stable key of what it is about: ``mmsi:<n>``, ``cam:<camera>:<track>``,
        ``pair:<a>+<b>``, ``seen:<camera>:<mmsi>``
    :param start_t_ms: event time at which the condition became true, ms UTC
    :param row: row of the :class:`VesselView` it is about (first vessel of a pair)
    :param lon: position, degrees
    :param lat: position, degrees
    :param factors: severity factors
    :param rows: every row involved (two for a pair)
    """

    kind: str
    subject: str
    start_t_ms: int
    row: int
    lon: float
    lat: float
    factors: tuple[Factor, ...]
    rows: tuple[int, ...] = ()

    @property
    def severity(self) -> int:
        return int(round(min(100.0, max(0.0, sum(f.weight for f in self.factors)))))


@dataclass(frozen=True)
class VesselView:
    """AIS vessels and dark camera targets of one area, as arrays (N,), at one time.

    NaN = unknown; times ms UTC, -1 = none.

    :param subject: stable key per row (``mmsi:<n>`` or ``cam:<camera>:<track>``)
    :param mmsi: int64, -1 for a dark target
    :param dark: bool: a camera target without AIS identity
    :param t_ms: last fix or sighting, ms UTC
    :param sog_kn: last speed over ground (estimated for camera targets), knots
    :param cog_deg: last course over ground, degrees
    :param expected_interval_s: ITU-R M.1371 interval for class and speed, s (NaN for dark)
    :param stopped_interval_s: the interval of the same vessel stopped, s (Class B: 180)
    :param stopped_since_t_ms: start of the current stop, ms (-1: moving)
    :param slow_since_t_ms: start of the current run below 2 kn, ms (-1: faster)
    :param first_t_ms: first fix or sighting, ms
    :param length_m: hull length, m
    :param hits: frames a camera target was seen in (0 for AIS)
    :param unmatched_since_t_ms: a camera target without AIS match since, ms (-1: matched)
    :param invalid_mmsi: the MMSI is not a valid ship/station MMSI (ITU-R M.585)
    :param no_name: no name received
    :param no_call_sign: no call sign received
    :param shipish: an MMSI class that should carry name and call sign (ship or invalid)
    :param identity_change_t_ms: when the name or call sign changed, ms (-1: never)
    :param jump_t_ms: first jump of the current impossible-speed run, ms (-1: none)
    :param last_jump_t_ms: latest jump, ms (-1: none)
    :param jump_speed_kn: largest implied speed of the run, knots
    :param coast_m: distance to the coastline, m
    :param on_land: inside a land polygon
    :param zone_m: distance to the nearest authorised zone, m (0 inside)
    :param in_port: inside a port or anchorage (rendezvous exclusion)
    :param landfall_m: distance along the course to the first land, m (inf: none ahead)
    :param landfall_zone_m: distance from that landfall to the nearest authorised zone, m
    :param recent_rendezvous: took part in a rendezvous within the memory window
    :param dr_coast_m: distance to the coastline of a silent AIS vessel's position
        dead-reckoned to when its silence began to count, m (``coast_m`` otherwise)
    """

    subject: np.ndarray
    mmsi: np.ndarray
    name: np.ndarray
    dark: np.ndarray
    t_ms: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    sog_kn: np.ndarray
    cog_deg: np.ndarray
    expected_interval_s: np.ndarray
    stopped_interval_s: np.ndarray
    stopped_since_t_ms: np.ndarray
    slow_since_t_ms: np.ndarray
    first_t_ms: np.ndarray
    length_m: np.ndarray
    hits: np.ndarray
    unmatched_since_t_ms: np.ndarray
    invalid_mmsi: np.ndarray
    no_name: np.ndarray
    no_call_sign: np.ndarray
    shipish: np.ndarray
    identity_change_t_ms: np.ndarray
    jump_t_ms: np.ndarray
    last_jump_t_ms: np.ndarray
    jump_speed_kn: np.ndarray
    coast_m: np.ndarray
    on_land: np.ndarray
    zone_m: np.ndarray
    in_port: np.ndarray
    landfall_m: np.ndarray
    landfall_zone_m: np.ndarray
    recent_rendezvous: np.ndarray
    dr_coast_m: np.ndarray

    def __len__(self) -> int:
        return int(self.mmsi.shape[0])


def _condition(
    kind: str, v: VesselView, i: int, start_t_ms: int, factors: list[Factor]
) -> Condition:
    """The condition ``kind`` of vessel row ``i`` of ``v``, true since ``start_t_ms``, at
    the vessel's position."""
    return Condition(
        kind,
        str(v.subject[i]),
        start_t_ms,
        i,
        float(v.lon[i]),
        float(v.lat[i]),
        tuple(factors),
        (i,),
    )


def silence_limit_s(expected_interval_s, stopped_interval_s, th: Thresholds) -> np.ndarray:
    """Silence after which AIS counts as off, s: the largest of k × the expected interval,
    the minimum, and two intervals of the vessel had it just stopped (a Class B "CS" below
    2 kn reports only every 3 min, ITU-R M.1371, so a boat slowing down goes quiet).

    :param expected_interval_s: interval for the last fix's class and speed, s
    :param stopped_interval_s: interval of the same vessel stopped, s
    """
    e = np.nan_to_num(np.asarray(expected_interval_s, dtype=np.float64), nan=0.0)
    s = np.nan_to_num(np.asarray(stopped_interval_s, dtype=np.float64), nan=0.0)
    return np.maximum(np.maximum(th.ais_gap_factor * e, th.ais_gap_min_s), 2.0 * s)


def ais_silence_ms(v: VesselView, th: Thresholds) -> np.ndarray:
    """:func:`silence_limit_s` of every row, ms."""
    return silence_limit_s(v.expected_interval_s, v.stopped_interval_s, th) * 1000.0


def _night(v: VesselView, rows: np.ndarray, t_ms: np.ndarray, th: Thresholds) -> np.ndarray:
    return solar_elevation_deg(v.lon[rows], v.lat[rows], t_ms) < th.night_sun_elevation_deg


def _outside(v: VesselView, th: Thresholds) -> np.ndarray:
    return ~(v.zone_m <= th.zone_margin_m)


def _identity_factors(v: VesselView, i: int, now: int, th: Thresholds) -> list[Factor]:
    out = []
    if v.invalid_mmsi[i]:
        out.append(
            Factor(
                "invalid_mmsi",
                40.0,
                f"MMSI {int(v.mmsi[i])} is not a valid ship or station MMSI (ITU-R M.585 MID 201-775)",
            )
        )
    if (
        v.shipish[i]
        and v.no_name[i]
        and v.no_call_sign[i]
        and now - v.first_t_ms[i] >= th.identity_grace_s * 1000
    ):
        out.append(
            Factor(
                "no_name_no_call_sign",
                30.0,
                f"no name and no call sign after {th.identity_grace_s / 60:.0f} min of AIS (三无 profile)",
            )
        )
    if v.identity_change_t_ms[i] >= 0:
        out.append(Factor("identity_change", 30.0, "name or call sign changed"))
    return out


def unusual_landing(v: VesselView, now_t_ms: int, th: Thresholds) -> list[Condition]:
    """A vessel (AIS or dark) that stops at the waterline, or whose track ends there,
    outside every authorised zone.

    - stop: below ``stop_speed_kn`` since ``stopped_since`` for ``landing_dwell_s``,
      within ``landing_coast_m`` of the coast (or on land); start = stop + dwell;
    - track ends: AIS silent for :func:`ais_silence_ms`, or a camera target unseen for
      ``camera_lost_s``, with the last position at the waterline; start = last + silence.

    Severity: 40 for the landing, + night 20 (sun below -0.833 deg at the place and
    time), + no AIS 20 (dark target) or AIS went off 15, + identity anomalies 10, +
    earlier rendezvous 15, + small craft 5.
    """
    n = len(v)
    if n == 0:
        return []
    near = (v.coast_m <= th.landing_coast_m) | v.on_land
    cand = near & _outside(v, th) & ((~v.dark) | (v.hits >= th.dark_min_hits))
    stop_start = np.where(
        v.stopped_since_t_ms >= 0, v.stopped_since_t_ms + th.landing_dwell_s * 1000.0, np.inf
    )
    silence = np.where(v.dark, th.camera_lost_s * 1000.0, ais_silence_ms(v, th))
    end_start = v.t_ms + silence
    stop_ok = cand & (stop_start <= now_t_ms)
    # a camera track that ends at the shore counts only for a dark vessel (unmatched for
    # dark_vessel_min_s) that was slow at the end: not a wave, not a boat passing by
    dark_end_ok = (
        (v.unmatched_since_t_ms >= 0)
        & (v.t_ms - v.unmatched_since_t_ms >= th.dark_vessel_min_s * 1000.0)
        & (np.nan_to_num(v.sog_kn, nan=np.inf) < th.landing_end_speed_kn)
    )
    end_ok = cand & (end_start < now_t_ms) & ((~v.dark) | dark_end_ok)
    rows = np.flatnonzero(stop_ok | end_ok)
    if rows.size == 0:
        return []
    start = np.where(stop_ok[rows], stop_start[rows], np.inf)
    start = np.minimum(start, np.where(end_ok[rows], end_start[rows], np.inf)).astype(np.int64)
    night = _night(v, rows, start, th)
    out = []
    for j, i in enumerate(rows.tolist()):
        f = []
        if stop_ok[i]:
            f.append(
                Factor(
                    "stopped_at_shore",
                    40.0,
                    f"stopped (< {th.stop_speed_kn} kn) for >= {th.landing_dwell_s / 60:.0f} min {v.coast_m[i]:.0f} m from the coast, outside authorised zones",
                )
            )
        else:
            f.append(
                Factor(
                    "track_ends_at_shore",
                    40.0,
                    f"track ends {v.coast_m[i]:.0f} m from the coast, outside authorised zones",
                )
            )
        if night[j]:
            f.append(Factor("night", 20.0, "sun below the horizon at the place and time"))
        if v.dark[i] and v.mmsi[i] >= 0:
            f.append(
                Factor(
                    "ais_off",
                    20.0,
                    f"AIS of MMSI {int(v.mmsi[i])} went silent; the camera still tracks the vessel",
                )
            )
        elif v.dark[i]:
            f.append(Factor("no_ais", 20.0, "camera target with no AIS identity"))
        elif end_ok[i]:
            f.append(Factor("ais_off", 15.0, f"AIS silent for more than {silence[i] / 1000:.0f} s"))
        if not v.dark[i] and _identity_factors(v, i, now_t_ms, th):
            f.append(Factor("identity_anomaly", 10.0, "identity anomalies on this MMSI"))
        if v.recent_rendezvous[i]:
            f.append(
                Factor(
                    "earlier_rendezvous",
                    15.0,
                    f"met another vessel within the last {th.rendezvous_memory_s / 3600:.0f} h",
                )
            )
        if np.isfinite(v.length_m[i]) and v.length_m[i] < th.small_craft_length_m:
            f.append(Factor("small_craft", 5.0, f"hull {v.length_m[i]:.0f} m long"))
        out.append(_condition("unusual_landing", v, i, int(start[j]), f))
    return out


def dark_approach(v: VesselView, now_t_ms: int, th: Thresholds) -> list[Condition]:
    """An AIS vessel heading for the shore within ``approach_coast_m`` whose AIS stops
    for longer than :func:`ais_silence_ms`. Start = last fix + silence. "Within" holds at
    the last fix or at the position dead-reckoned from it to the start (``dr_coast_m``).

    "Heading for shore": moving at ``approach_min_speed_kn`` or more on a course that
    meets land within ``approach_landfall_m``, and not heading into port (a landfall within
    ``approach_coast_m`` and ``approach_port_margin_m`` of an authorised zone). A vessel
    already at the waterline (within ``landing_coast_m``) is left to
    :func:`unusual_landing`.
    The AIS silence decides, whatever the cameras see; a camera still seeing the vessel
    (a dark target linked to the MMSI, not lost) adds to the severity.
    Severity 50, + night 20, + seen by camera 10, + small craft 5, + identity anomalies 10.
    """
    if len(v) == 0:
        return []
    speed = np.nan_to_num(v.sog_kn, nan=0.0)
    on_camera = v.dark & (v.mmsi >= 0) & (now_t_ms - v.t_ms <= th.camera_lost_s * 1000.0)
    seen_mmsi = set(v.mmsi[on_camera].tolist())
    into_port = (v.landfall_m <= th.approach_coast_m) & (
        v.landfall_zone_m <= th.approach_port_margin_m
    )
    heading_in = (
        (speed >= th.approach_min_speed_kn) & (v.landfall_m <= th.approach_landfall_m) & ~into_port
    )
    silence = ais_silence_ms(v, th)
    ok = (
        (~v.dark)
        & heading_in
        & (np.minimum(v.coast_m, v.dr_coast_m) <= th.approach_coast_m)
        & (v.coast_m > th.landing_coast_m)  # at the waterline it is unusual_landing's case
        & _outside(v, th)
        & (v.t_ms + silence < now_t_ms)
        & ~v.on_land
    )
    rows = np.flatnonzero(ok)
    start = (v.t_ms[rows] + silence[rows]).astype(np.int64)
    night = _night(v, rows, start, th) if rows.size else np.zeros(0, bool)
    out = []
    for j, i in enumerate(rows.tolist()):
        f = [
            Factor(
                "ais_stopped_near_shore",
                50.0,
                f"AIS silent for more than {silence[i] / 1000:.0f} s ({th.ais_gap_factor:g} x {v.expected_interval_s[i]:.0f} s expected) "
                f"{v.coast_m[i]:.0f} m from the coast"
                + (
                    f" (dead-reckoned {v.dr_coast_m[i]:.0f} m when the silence began)"
                    if v.dr_coast_m[i] < v.coast_m[i]
                    else ""
                )
                + f", last course meeting land {v.landfall_m[i]:.0f} m ahead "
                f"(about {v.landfall_m[i] / max(speed[i] * KNOT_MPS, 0.1) / 60:.0f} min at {speed[i]:.1f} kn)",
            )
        ]
        if night[j]:
            f.append(Factor("night", 20.0, "sun below the horizon at the place and time"))
        if int(v.mmsi[i]) in seen_mmsi:
            f.append(Factor("seen_by_camera", 10.0, "a camera still sees it with its AIS off"))
        if _identity_factors(v, i, now_t_ms, th):
            f.append(Factor("identity_anomaly", 10.0, "identity anomalies on this MMSI"))
        if np.isfinite(v.length_m[i]) and v.length_m[i] < th.small_craft_length_m:
            f.append(Factor("small_craft", 5.0, f"hull {v.length_m[i]:.0f} m long"))
        out.append(_condition("dark_approach", v, i, int(start[j]), f))
    return out


def dark_vessel(
    v: VesselView, now_t_ms: int, th: Thresholds, area_start_t_ms: int = -1
) -> list[Condition]:
    """A camera target (seen in ``dark_min_hits`` frames or more, not lost) with no AIS
    match for ``dark_vessel_min_s``. Start = unmatched since + that time, and not before
    ``warmup_s`` after the area's first input (``area_start_t_ms``): until then the AIS
    picture is incomplete (a moored vessel reports every 3 min).

    Severity 40, + night 20, + within ``landing_coast_m`` of the coast 10.
    """
    if len(v) == 0:
        return []
    ok = (
        v.dark
        & (v.hits >= th.dark_min_hits)
        & (v.unmatched_since_t_ms >= 0)
        & (v.unmatched_since_t_ms + th.dark_vessel_min_s * 1000.0 <= now_t_ms)
        & (now_t_ms - v.t_ms <= th.camera_lost_s * 1000.0)
    )
    if area_start_t_ms >= 0:
        ok &= area_start_t_ms + th.warmup_s * 1000.0 <= now_t_ms
    rows = np.flatnonzero(ok)
    start = np.maximum(
        v.unmatched_since_t_ms[rows] + th.dark_vessel_min_s * 1000.0,
        area_start_t_ms + th.warmup_s * 1000.0 if area_start_t_ms >= 0 else 0.0,
    ).astype(np.int64)
    night = _night(v, rows, start, th) if rows.size else np.zeros(0, bool)
    out = []
    for j, i in enumerate(rows.tolist()):
        f = [
            Factor(
                "no_ais_match",
                40.0,
                f"seen by camera without any AIS match for >= {th.dark_vessel_min_s:.0f} s",
            )
        ]
        if night[j]:
            f.append(Factor("night", 20.0, "sun below the horizon at the place and time"))
        if v.coast_m[i] <= th.landing_coast_m:
            f.append(Factor("near_shore", 10.0, f"{v.coast_m[i]:.0f} m from the coast"))
        out.append(_condition("dark_vessel", v, i, int(start[j]), f))
    return out


def rendezvous_pairs(
    v: VesselView, east_m: np.ndarray, north_m: np.ndarray, now_t_ms: int, th: Thresholds
) -> list[tuple[str, int, int]]:
    """Pairs of vessels close together now: within ``rendezvous_distance_m``, both slower
    than ``rendezvous_speed_kn``, positions fresh, neither in a port or anchorage.

    Two dark targets of different cameras are never paired (likely one boat seen twice).

    :param east_m: local east coordinate of each row, m
    :param north_m: local north coordinate of each row, m
    :returns: ``(pair_key, row_a, row_b)`` sorted by key
    """
    from scipy.spatial import cKDTree

    if len(v) < 2:
        return []
    fresh = np.where(
        v.dark,
        now_t_ms - v.t_ms <= th.camera_lost_s * 1000.0,
        now_t_ms - v.t_ms <= np.maximum(th.fresh_fix_s * 1000.0, ais_silence_ms(v, th)),
    )
    slow = np.nan_to_num(v.sog_kn, nan=np.inf) < th.rendezvous_speed_kn
    ok = (
        fresh
        & slow
        & ~v.in_port
        & np.isfinite(east_m)
        & np.isfinite(north_m)
        & ((~v.dark) | (v.hits >= th.dark_min_hits))
    )
    idx = np.flatnonzero(ok)
    if idx.size < 2:
        return []
    pairs = cKDTree(np.column_stack([east_m[idx], north_m[idx]])).query_pairs(
        th.rendezvous_distance_m, output_type="ndarray"
    )
    out = []
    for a, b in pairs.tolist():
        ia, ib = int(idx[a]), int(idx[b])
        sa, sb = str(v.subject[ia]), str(v.subject[ib])
        if sa == sb:  # a vessel and the camera track of the same vessel
            continue
        if (
            v.dark[ia]
            and v.dark[ib]
            and sa.startswith("cam:")
            and sb.startswith("cam:")
            and sa.split(":")[1] != sb.split(":")[1]
        ):
            continue
        if sb < sa:
            ia, ib, sa, sb = ib, ia, sb, sa
        out.append((f"pair:{sa}+{sb}", ia, ib))
    out.sort()
    return out


def rendezvous(
    v: VesselView,
    pairs: list[tuple[str, int, int]],
    since: dict[str, int],
    now_t_ms: int,
    th: Thresholds,
) -> list[Condition]:
    """Pairs close for at least ``rendezvous_min_s`` (``since``: when each pair was first
    seen close, maintained by the caller). Start = since + that time.

    Severity 45, + a dark partner 20, + night 15, + within ``loiter_coast_m`` of the coast 10.
    """
    out = []
    for key, a, b in pairs:
        t0 = since.get(key)
        if t0 is None or now_t_ms - t0 < th.rendezvous_min_s * 1000.0:
            continue
        start = int(t0 + th.rendezvous_min_s * 1000.0)
        lon = float((v.lon[a] + v.lon[b]) / 2)
        lat = float((v.lat[a] + v.lat[b]) / 2)
        f = [
            Factor(
                "vessels_met",
                45.0,
                f"{v.subject[a]} and {v.subject[b]} within {th.rendezvous_distance_m:.0f} m below {th.rendezvous_speed_kn:g} kn for >= {th.rendezvous_min_s / 60:.0f} min outside ports and anchorages",
            )
        ]
        if v.dark[a] or v.dark[b]:
            f.append(Factor("dark_partner", 20.0, "one of the vessels has no AIS identity"))
        if solar_elevation_deg(lon, lat, start) < th.night_sun_elevation_deg:
            f.append(Factor("night", 15.0, "sun below the horizon at the place and time"))
        if min(v.coast_m[a], v.coast_m[b]) <= th.loiter_coast_m:
            f.append(
                Factor(
                    "near_shore", 10.0, f"{min(v.coast_m[a], v.coast_m[b]):.0f} m from the coast"
                )
            )
        out.append(Condition("rendezvous", key, start, a, lon, lat, tuple(f), (a, b)))
    return out


def loitering(v: VesselView, now_t_ms: int, th: Thresholds) -> list[Condition]:
    """An AIS vessel slower than ``loiter_speed_kn`` for ``loiter_min_s`` within
    ``loiter_coast_m`` of the coast, outside authorised zones, still reporting.
    Start = slow since + that time. Severity 30, + night 15."""
    if len(v) == 0:
        return []
    ok = (
        (~v.dark)
        & (v.slow_since_t_ms >= 0)
        & (v.slow_since_t_ms + th.loiter_min_s * 1000.0 <= now_t_ms)
        & (v.coast_m <= th.loiter_coast_m)
        & _outside(v, th)
        & ~v.on_land
        & (v.t_ms + ais_silence_ms(v, th) >= now_t_ms)
    )
    rows = np.flatnonzero(ok)
    start = (v.slow_since_t_ms[rows] + th.loiter_min_s * 1000.0).astype(np.int64)
    night = _night(v, rows, start, th) if rows.size else np.zeros(0, bool)
    out = []
    for j, i in enumerate(rows.tolist()):
        f = [
            Factor(
                "loitering_near_shore",
                30.0,
                f"below {th.loiter_speed_kn:g} kn for >= {th.loiter_min_s / 60:.0f} min {v.coast_m[i]:.0f} m from the coast outside authorised zones",
            )
        ]
        if night[j]:
            f.append(Factor("night", 15.0, "sun below the horizon at the place and time"))
        out.append(_condition("loitering", v, i, int(start[j]), f))
    return out


def identity_anomaly(v: VesselView, now_t_ms: int, th: Thresholds) -> list[Condition]:
    """Invalid MMSI/MID (ITU-R M.585), no name and no call sign after
    ``identity_grace_s`` (the "三无" profile), or a changed name/call sign.
    Start = the earliest applicable time. Severity = sum of the anomalies (40/30/30)."""
    if len(v) == 0:
        return []
    grace = v.first_t_ms + th.identity_grace_s * 1000.0
    sanwu = v.shipish & v.no_name & v.no_call_sign & (grace <= now_t_ms)
    change = v.identity_change_t_ms >= 0
    ok = (~v.dark) & (v.invalid_mmsi | sanwu | change)
    rows = np.flatnonzero(ok)
    out = []
    for i in rows.tolist():
        starts = []
        if v.invalid_mmsi[i]:
            starts.append(v.first_t_ms[i])
        if sanwu[i]:
            starts.append(grace[i])
        if change[i]:
            starts.append(v.identity_change_t_ms[i])
        f = _identity_factors(v, i, now_t_ms, th)
        out.append(
            Condition(
                "identity_anomaly",
                str(v.subject[i]),
                int(min(starts)),
                i,
                float(v.lon[i]),
                float(v.lat[i]),
                tuple(f),
                (i,),
            )
        )
    return out


def impossible_speed(v: VesselView, now_t_ms: int, th: Thresholds) -> list[Condition]:
    """An implied speed between consecutive fixes above ``max_implied_speed_kn`` (shared
    MMSI or spoofing), held open ``jump_hold_s`` after the latest jump. Start = first jump.
    Severity 40, + 20 above 100 kn."""
    if len(v) == 0:
        return []
    ok = (~v.dark) & (v.jump_t_ms >= 0) & (now_t_ms - v.last_jump_t_ms <= th.jump_hold_s * 1000.0)
    out = []
    for i in np.flatnonzero(ok).tolist():
        f = [
            Factor(
                "implied_speed",
                40.0,
                f"implied speed {v.jump_speed_kn[i]:.0f} kn between consecutive fixes (limit {th.max_implied_speed_kn:g} kn)",
            )
        ]
        if v.jump_speed_kn[i] > 100.0:
            f.append(
                Factor(
                    "far_beyond_any_vessel",
                    20.0,
                    "no vessel moves faster than 100 kn: two transmitters share this MMSI or positions are spoofed",
                )
            )
        out.append(
            Condition(
                "impossible_speed",
                str(v.subject[i]),
                int(v.jump_t_ms[i]),
                i,
                float(v.lon[i]),
                float(v.lat[i]),
                tuple(f),
                (i,),
            )
        )
    return out


def ais_not_seen(
    v: VesselView,
    unseen: dict[str, list[int]],
    rows_by_mmsi: dict[int, int],
    now_t_ms: int,
    th: Thresholds,
) -> list[Condition]:
    """An AIS vessel inside a working camera's view that no detection explains for
    ``ais_not_seen_min_s`` (possible spoofing, or a detector miss: low severity 15).

    :param unseen: ``"<camera>:<mmsi>"`` -> ``[since_t_ms, last_t_ms]`` unseen in that camera
    :param rows_by_mmsi: row of each AIS vessel in ``v``
    """
    out = []
    for key in sorted(unseen):
        since, last = unseen[key]
        cam, m = key.rsplit(":", 1)
        i = rows_by_mmsi.get(int(m))
        if i is None or now_t_ms - last > th.camera_stale_s * 1000.0:
            continue
        if last - since < th.ais_not_seen_min_s * 1000.0:
            continue
        start = int(since + th.ais_not_seen_min_s * 1000.0)
        if solar_elevation_deg(v.lon[i], v.lat[i], start) < th.night_sun_elevation_deg:
            continue  # a visible-light camera cannot be expected to see it at night
        f = [
            Factor(
                "not_seen_by_camera",
                15.0,
                f"AIS places the vessel in view of camera {cam} but no detection matched it for >= {th.ais_not_seen_min_s:.0f} s",
            )
        ]
        out.append(
            Condition(
                "ais_not_seen",
                f"seen:{cam}:{m}",
                int(since + th.ais_not_seen_min_s * 1000.0),
                i,
                float(v.lon[i]),
                float(v.lat[i]),
                tuple(f),
                (i,),
            )
        )
    return out
