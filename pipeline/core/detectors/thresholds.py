"""Every detector threshold, with its default and where it comes from.

Defaults cite ``../shared/DESIGN.md`` §3 (ITU-R M.1371 report intervals, GFW and
Skylight encounter/loitering thresholds, MarineTraffic stopped < 0.5 kn, GFW's 25 kn
segmenter) or state that they are a house default, to be tuned per site through
``site.yaml`` (``detectors:`` by detector name, or the older top-level ``thresholds:``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pipeline.core.geo import NIGHT_SUN_ELEVATION_DEG
from pipeline.errors import ConfigError

__all__ = ["Thresholds"]


@dataclass(frozen=True)
class Thresholds:
    """Every detector threshold, with its default and where it comes from.

    Override per site in ``site.yaml``: by detector name in ``detectors:`` (each detector's
    own settings, :data:`pipeline.core.detectors.DETECTORS`), or by field name in the older
    top-level ``thresholds:`` (:meth:`from_dict`).

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
    :param ais_missed_reports: AIS is not "off" before this many reports in a row were
        missed (plus half an interval of jitter): 2 tolerates one or two missed reports of a
        3 min reporter (ITU-R M.1371 Class B "CS" below 2 kn, Class A at anchor)
    :param ais_slowing_kn: a vessel last reported at this speed or slower may have slowed
        to its stopped reporting interval, knots (house default 6 kn: a boat slowing at
        0.07 m/s² goes from 6 kn to below the Class B threshold of 2 kn within one 30 s
        report interval)
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
    :param dark_max_pos_sigma_m: dark_vessel judges only targets whose range sigma is at
        most this, m (house default 500 m: about 1.5 km from a shore camera 30 m up; the
        association's range gate of 4 sigma then spans at most 4 km, well inside its
        bearing window, so an AIS vessel there would have matched)
    :param confirm_hits: a camera target is a vessel only once seen in this many ...
    :param confirm_frames: ... of this many consecutive frames of its camera (M of N in
        event time, :mod:`pipeline.engine.confirm`; 4 of 8 confirms a vessel missed in one
        frame of five within a few frames, and no one- or two-frame clutter detection,
        however often a spot raises them)
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
    :param eval_tick_s: detectors run at the end of every tick of event time that received
        input (and a second after the last evaluation when input is sparse), s (250 ms: a
        quarter of the 1 s alert latency budget)
    :param warmup_s: no dark_vessel before the area has seen this much input time, s (2 ×
        the 3 min interval of a moored or slow vessel, ITU-R M.1371: the AIS picture is
        incomplete at start-up)
    :param trail_max_points: trail points kept per vessel or target (evidence)
    :param trail_max_age_s: trail points older than this are dropped, s
    :param target_forget_s: the area forgets a camera target unseen this long, s
    :param clone_window_s: cloned_mmsi looks this far back in a vessel's trail, s (house
        default 30 min: two transmitters at a few reports a minute switch many times in it)
    :param clone_min_jumps: impossible-speed jumps, going back and forth, that make one MMSI
        be at two places at once (3: one spoofed or glitched fix makes two, out and back)
    :param clone_return_m: a jump "goes back" when it lands this close to where an earlier
        jump started, m (house default 2 km: a vessel at 20 kn runs 600 m in the 1 min
        between two switches)
    :param home_stop_s: outside_home_harbour: a stop must last this long, s (house default
        15 min: longer than a pause for nets)
    :param home_margin_m: ... farther than this from every registered home harbour, m
    :param episode_merge_m: a camera target's new condition within this distance of an
        episode of the same kind continues it (one alert per vessel per episode,
        :mod:`pipeline.engine.episodes`), m (house default: twice ``stitch_radius_m``)
    """

    stop_speed_kn: float = 0.5
    landing_dwell_s: float = 180.0
    landing_coast_m: float = 150.0
    zone_margin_m: float = 0.0
    ais_gap_factor: float = 8.0
    ais_gap_min_s: float = 120.0
    ais_missed_reports: float = 2.0
    ais_slowing_kn: float = 6.0
    approach_coast_m: float = 5000.0
    approach_min_speed_kn: float = 1.0
    approach_landfall_m: float = 10000.0
    approach_port_margin_m: float = 1000.0
    dark_vessel_min_s: float = 60.0
    dark_min_hits: int = 4
    camera_lost_s: float = 30.0
    dark_max_pos_sigma_m: float = 500.0
    confirm_hits: int = 4
    confirm_frames: int = 8
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
    episode_merge_m: float = 300.0
    eval_tick_s: float = 0.25
    warmup_s: float = 360.0
    trail_max_points: int = 60
    trail_max_age_s: float = 3600.0
    target_forget_s: float = 600.0
    clone_window_s: float = 1800.0
    clone_min_jumps: int = 3
    clone_return_m: float = 2000.0
    home_stop_s: float = 900.0
    home_margin_m: float = 500.0

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
