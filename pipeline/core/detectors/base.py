"""The shared types of the detectors and the interface every detector implements.

A detector is a pure function of the fused picture of one area at one event time: a
:class:`Scene` (the :class:`VesselView` arrays of AIS vessels and dark camera targets with
their coast and zone context, plus what the engine tracks across evaluations: close pairs
and vessels a camera should see) and the :class:`Thresholds`. It returns the
:class:`Condition` s that hold at that time. The masks are vectorised; only the few
conditions that hold are turned into Python objects. Episodes (one alert per vessel per
episode: open → update → closed) are kept by :func:`pipeline.engine.area.area_step`.

Each condition carries ``start_t_ms``, the event time at which it became true, computed
exactly from the state (e.g. start of the stop + dwell), and its severity factors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from pipeline.core.detectors.registry_facts import RegistryFacts
from pipeline.core.detectors.thresholds import Thresholds
from pipeline.core.geo import solar_elevation_deg

__all__ = [
    "KNOT_MPS",
    "Condition",
    "Detector",
    "DetectorSpec",
    "Factor",
    "Pair",
    "Scene",
    "VesselView",
    "ais_silence_ms",
    "condition_at",
    "night_mask",
    "outside_zones",
    "silence_limit_s",
    "silence_rule",
]

KNOT_MPS = 1852.0 / 3600.0

#: a pair of rows close together: ``(pair_key, row_a, row_b)``
Pair = tuple[str, int, int]


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
    :param registry: what the vessel registry says about each row (``None``: no registry
        in use)
    :param pos_sigma_m: a camera target's position uncertainty (one-sigma range error of
        its last located detection), m (NaN for AIS; inf when its range is unknown);
        ``None``: not known for any row
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
    registry: RegistryFacts | None = None
    pos_sigma_m: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.mmsi.shape[0])


@dataclass(frozen=True)
class Scene:
    """What the detectors see of one area at one evaluation time.

    :param view: the vessels and dark targets, as arrays
    :param now_t_ms: evaluation time (event time), ms UTC
    :param area_start_t_ms: event time of the area's first input, ms UTC (-1: unknown)
    :param pairs: rows close together now (:func:`pipeline.core.detectors.rendezvous.rendezvous_pairs`)
    :param pair_since: when each of those pairs was first seen close, ms UTC
    :param unseen: ``"<camera>:<mmsi>"`` -> ``[since_t_ms, last_t_ms]``: AIS vessels in a
        camera's view that no detection explains
    """

    view: VesselView
    now_t_ms: int
    area_start_t_ms: int = -1
    pairs: tuple[Pair, ...] = ()
    pair_since: Mapping[str, int] = field(default_factory=dict)
    unseen: Mapping[str, list[int]] = field(default_factory=dict)


@runtime_checkable
class Detector(Protocol):
    """One detector: its name (the alert kind), its own thresholds, and its evaluation.

    ``thresholds`` maps the names a site uses under ``detectors: <name>:`` in ``site.yaml``
    to the :class:`Thresholds` fields they set (each field belongs to one detector at most;
    the rest are shared and set in the top-level ``thresholds:``).
    """

    @property
    def name(self) -> str: ...

    @property
    def thresholds(self) -> Mapping[str, str]: ...

    def evaluate(self, scene: Scene, th: Thresholds) -> list[Condition]:
        """The conditions that hold at ``scene.now_t_ms``."""
        ...


@dataclass(frozen=True)
class DetectorSpec:
    """A :class:`Detector` made of a function of ``(scene, thresholds)``.

    :param name: detector name, the kind of its alerts
    :param thresholds: setting name -> :class:`Thresholds` field
    :param run: the evaluation
    """

    name: str
    thresholds: Mapping[str, str]
    run: Callable[[Scene, Thresholds], list[Condition]]

    def evaluate(self, scene: Scene, th: Thresholds) -> list[Condition]:
        """The conditions that hold at ``scene.now_t_ms``."""
        return self.run(scene, th)


def condition_at(
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


def silence_limit_s(
    expected_interval_s, stopped_interval_s, th: Thresholds, sog_kn=None, landfall_m=None
) -> np.ndarray:
    """Silence after which AIS counts as off, s: the largest of

    - k × the expected interval of the last fix's class and speed (``ais_gap_factor``),
      and the minimum ``ais_gap_min_s``;
    - ``ais_missed_reports`` missed reports of the expected interval plus half an interval
      of jitter (a 3 min reporter may miss one or two reports);
    - two stopped intervals, and, when the vessel may be stopping, the same tolerance of
      missed reports at the stopped interval: a Class B "CS" reports every 30 s above 2 kn
      but only every 3 min below (ITU-R M.1371), so a boat that stops goes quiet for
      minutes and may miss a report too. It may be stopping when its last speed is
      ``ais_slowing_kn`` or less, or when its course meets land within one stopped
      interval at that speed (a boat coming in to the beach stops there).

    :param expected_interval_s: interval for the last fix's class and speed, s
    :param stopped_interval_s: interval of the same vessel stopped, s
    :param th: thresholds
    :param sog_kn: last speed over ground, knots (NaN or ``None``: unknown, counts as slow)
    :param landfall_m: distance along the last course to land, m (inf or ``None``: none)
    """
    e = np.nan_to_num(np.asarray(expected_interval_s, dtype=np.float64), nan=0.0)
    s = np.nan_to_num(np.asarray(stopped_interval_s, dtype=np.float64), nan=0.0)
    reports = th.ais_missed_reports + 1.5
    out = np.maximum(np.maximum(th.ais_gap_factor * e, th.ais_gap_min_s), 2.0 * s)
    out = np.maximum(out, reports * e)
    sog = np.asarray(np.nan if sog_kn is None else sog_kn, dtype=np.float64)
    slowing = ~(sog > th.ais_slowing_kn)
    if landfall_m is not None:
        fall = np.asarray(landfall_m, dtype=np.float64)
        run_m = np.nan_to_num(sog, nan=0.0) * KNOT_MPS * s
        slowing = slowing | (fall <= run_m)
    return np.where(slowing, np.maximum(out, reports * s), out)


def silence_rule(v: VesselView, i: int, th: Thresholds) -> str:
    """The silence limit of row ``i`` of ``v`` in words (for an alert's factors): which of
    the rules of :func:`silence_limit_s` decided, with the class, speed and intervals."""
    e = float(np.nan_to_num(v.expected_interval_s[i], nan=0.0))
    s = float(np.nan_to_num(v.stopped_interval_s[i], nan=0.0))
    sog = float(v.sog_kn[i])
    fall = float(v.landfall_m[i])
    limit = float(silence_limit_s(e, s, th, sog, fall))
    reports = th.ais_missed_reports + 1.5
    speed = f"{sog:.1f} kn" if np.isfinite(sog) else "unknown speed"
    head = f"last report at {speed}, expected every {e:.0f} s"
    if s > e:
        head += f" ({s:.0f} s if it slows down)"
    if limit <= max(th.ais_gap_factor * e, th.ais_gap_min_s):
        why = f"{th.ais_gap_factor:g} x {e:.0f} s expected (at least {th.ais_gap_min_s:.0f} s)"
    elif limit <= reports * e:
        why = f"{th.ais_missed_reports:g} missed {e:.0f} s reports tolerated, + half an interval"
    elif limit <= 2.0 * s:
        why = f"two {s:.0f} s intervals of the vessel stopped"
    elif sog <= th.ais_slowing_kn or not np.isfinite(sog):
        why = (
            f"{th.ais_missed_reports:g} missed {s:.0f} s reports tolerated, + half an interval "
            f"(it may have slowed down: last speed at most {th.ais_slowing_kn:g} kn)"
        )
    else:
        why = (
            f"{th.ais_missed_reports:g} missed {s:.0f} s reports tolerated, + half an interval "
            f"(it may have stopped: land {fall:.0f} m ahead, reached within {s:.0f} s)"
        )
    return f"{head}; silence limit {limit:.0f} s = {why}"


def ais_silence_ms(v: VesselView, th: Thresholds) -> np.ndarray:
    """:func:`silence_limit_s` of every row, ms."""
    return (
        silence_limit_s(v.expected_interval_s, v.stopped_interval_s, th, v.sog_kn, v.landfall_m)
        * 1000.0
    )


def night_mask(v: VesselView, rows: np.ndarray, t_ms: np.ndarray, th: Thresholds) -> np.ndarray:
    """Whether the sun is below ``night_sun_elevation_deg`` at rows ``rows`` of ``v`` at
    ``t_ms`` (ms UTC, one per row)."""
    return solar_elevation_deg(v.lon[rows], v.lat[rows], t_ms) < th.night_sun_elevation_deg


def outside_zones(v: VesselView, th: Thresholds) -> np.ndarray:
    """Rows farther than ``zone_margin_m`` from every authorised zone."""
    return ~(v.zone_m <= th.zone_margin_m)
