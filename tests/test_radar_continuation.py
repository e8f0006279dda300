"""Radar in the area step, two ways one boat without AIS used to be lost or alerted twice:

- a ferry with AIS runs alongside the boat for minutes, both on the radar: each report was
  associated with the AIS vessels on its own, so the ferry explained the boat's target too,
  for long enough that the boat counted as the ferry and its landing raised nothing; now
  the AIS vessels are assigned one to one over the radar's scan (and a report that moves
  otherwise than a vessel is not that vessel);
- the radar's tracker drops the boat and acquires it again under a new target number (or
  the same one): each new target raised ``dark_vessel`` again; now the new target continues
  the lost one (one alert episode, its trail, its dark time).

(Test coast of ``test_detectors``: land south of 20.0N between 110.0E and 110.3E; the
radar of ``test_radar_area`` on the shore at 110.10E.)
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from test_detectors import NIGHT, ctx, fix, lat_at, named
from test_radar_area import RADAR_LAT, RADAR_LON, drive_batches, report

from pipeline.core.geo import destination_point
from pipeline.core.radar_continuation import continuation_pairs, continue_lost
from pipeline.core.radar_fusion import RadarArrays

pytestmark = pytest.mark.unit

FERRY = 412_555_001
BOAT_LON = 110.12
KN = 1852.0 / 3600.0


def boat_dist_m(s: float) -> float:
    """The boat: 8 km out, south at 16 kn to 60 m off the beach, then it stays."""
    return max(60.0, 8000.0 - 8.23 * s)


def opened(alerts, kind: str) -> list[str]:
    return [a.data.vessel.track_id for a in alerts if a.data.status == "open" and a.data.kind == kind]  # fmt: skip


# --------------------------------------------------------------------------- a ferry alongside


def alongside(with_velocity: bool):
    """The boat south to the beach; a ferry with AIS (radar target 3) 150 m east of it on
    the same course at 15 kn for its first 6 minutes, then east along 5 km out. Without
    ``with_velocity`` the reports carry no speed and course (as ``TLL`` sentences)."""
    rng = np.random.default_rng(21)
    fixes, reports = [], []
    t_end = NIGHT + 22 * 60_000
    turn_s = 360.0
    ferry_lon0 = BOAT_LON + 150.0 / (111_195.0 * np.cos(np.radians(20.0)))
    for t in range(NIGHT, t_end, 2_500):
        s = (t - NIGHT) / 1000.0
        vel = (16.0, 180.0) if with_velocity and boat_dist_m(s) > 60.0 else (None, None)
        if with_velocity and boat_dist_m(s) <= 60.0:
            vel = (0.0, 180.0)
        reports.append(report(7, t, BOAT_LON, lat_at(boat_dist_m(s)), rng, "tracking", *vel))
        if s <= turn_s:
            flon, flat, cog = ferry_lon0, lat_at(8000.0 - 15.0 * KN * s), 180.0
        else:
            flat = lat_at(8000.0 - 15.0 * KN * turn_s)
            flon = float(destination_point(ferry_lon0, flat, 90.0, 15.0 * KN * (s - turn_s))[0])
            cog = 90.0
        fvel = (15.0, cog) if with_velocity else (None, None)
        reports.append(report(3, t, flon, flat, rng, "tracking", *fvel))
        if (t - NIGHT) % 10_000 == 0:
            fixes.append(fix(FERRY, t, flon, flat, 15.0, cog))
    return fixes, [named(FERRY, NIGHT, name="QIONG HAI 5", length=120)], reports, t_end


@functools.lru_cache(maxsize=4)
def drive_alongside(with_velocity: bool, batch_s: float = 10.0):
    fixes, statics, reports, t_end = alongside(with_velocity)
    return drive_batches(ctx(), fixes, statics, [], reports, t_end, batch_s)


@pytest.mark.parametrize("with_velocity", [False, True])
def test_a_ferry_alongside_explains_its_own_target_not_the_boat(with_velocity: bool) -> None:
    st, alerts = drive_alongside(with_velocity)
    assert st.targets["radar:r1:3"].last_mmsi == FERRY  # the ferry's own radar target
    boat = st.targets["radar:r1:7"]
    assert boat.last_mmsi != FERRY or not boat.ever_matched
    assert opened(alerts, "unusual_landing") == ["cam:radar:r1:7"]
    assert opened(alerts, "dark_vessel") == ["cam:radar:r1:7"]
    assert not [a for a in alerts if a.data.vessel.mmsi == FERRY]


def test_the_ferry_case_does_not_depend_on_batching() -> None:
    key = lambda al: [(a.id, a.data.kind, a.data.status) for a in al]  # noqa: E731
    assert key(drive_alongside(False, 10.0)[1]) == key(drive_alongside(False, 37.0)[1])


# --------------------------------------------------------------------------- a lost target


def relost(new_number: int):
    """The boat south to the beach at 16 kn, tracked as target 7; 9 minutes in (3.6 km out)
    the radar misses it in 5 scans and reports 7 lost, acquires it again 20 s after its last
    report as ``new_number`` (3 scans acquiring, then tracking) and keeps it to the beach.
    Sea clutter 150 m from the boat is acquired (never tracked) meanwhile as target 12."""
    rng = np.random.default_rng(5)
    reports = []
    t_end = NIGHT + 22 * 60_000
    last_s, back_s = 540.0, 560.0
    n_acq = 0
    for t in range(NIGHT, t_end, 2_500):
        s = (t - NIGHT) / 1000.0
        lat = lat_at(boat_dist_m(s))
        speed = 16.0 if boat_dist_m(s) > 60.0 else 0.0
        if s <= last_s:
            reports.append(report(7, t, BOAT_LON, lat, rng, "tracking", speed, 180.0))
        elif s == last_s + 12.5:
            reports.append(report(7, t, BOAT_LON, lat, rng, "lost", speed, 180.0))
        elif s >= back_s:
            n_acq += 1
            status = "acquiring" if n_acq <= 3 else "tracking"
            reports.append(report(new_number, t, BOAT_LON, lat, rng, status, speed, 180.0))
        if 555.0 <= s <= 565.0:  # clutter 150 m west of where the boat is: never tracked
            clon = BOAT_LON - 150.0 / (111_195.0 * np.cos(np.radians(20.0)))
            reports.append(report(12, t, clon, lat, rng, "acquiring", 1.0, 40.0))
    return reports, t_end


@functools.lru_cache(maxsize=4)
def drive_relost(new_number: int, batch_s: float = 10.0):
    reports, t_end = relost(new_number)
    return drive_batches(ctx(), [], [], [], reports, t_end, batch_s)


@pytest.mark.parametrize("new_number", [9, 7])
def test_a_target_the_radar_lost_and_found_again_is_one_boat(new_number: int) -> None:
    st, alerts = drive_relost(new_number)
    assert opened(alerts, "dark_vessel") == ["cam:radar:r1:7"]  # one alert, not two
    assert opened(alerts, "unusual_landing") == ["cam:radar:r1:7"]
    tg = st.targets[f"radar:r1:{new_number}"]
    assert tg.subject == "cam:radar:r1:7"
    assert tg.first_t_ms == NIGHT  # it goes on from the first target
    assert tg.unmatched_since_t_ms == NIGHT  # dark since the first report, not since 560 s
    assert st.counters.get("radar.continued") == 1
    assert not [k for k in st.targets if k.startswith("radar:r1:7@")]  # merged, not kept


def test_the_lost_target_case_does_not_depend_on_batching() -> None:
    key = lambda al: [(a.id, a.data.kind, a.data.status) for a in al]  # noqa: E731
    assert key(drive_relost(9, 10.0)[1]) == key(drive_relost(9, 37.0)[1])


def test_another_boat_appearing_elsewhere_is_a_boat_of_its_own() -> None:
    """Target 7 lost 3.6 km out; a new dark target 2 km east of it: not a continuation."""
    reports, t_end = relost(9)
    far = [
        r
        if r.target_number != 9
        else report(
            9,
            r.t_ms,
            BOAT_LON + 0.02,
            r.lat,
            np.random.default_rng(r.t_ms),
            r.status,
            r.speed_kn,
            r.course_deg,
        )  # fmt: skip
        for r in reports
    ]
    st, alerts = drive_batches(ctx(), [], [], [], far, t_end, 10.0)
    assert sorted(opened(alerts, "dark_vessel")) == ["cam:radar:r1:7", "cam:radar:r1:9"]
    assert "radar.continued" not in st.counters


# --------------------------------------------------------------------------- the core gate


def _at(lon0: float, lat0: float, brg: float, m: float) -> tuple[float, float]:
    lon, lat = destination_point(lon0, lat0, brg, m)
    return float(lon), float(lat)


def test_a_new_report_continues_the_lost_target_on_its_way_on() -> None:
    # lost 7 km from the radar (sigma ~ 90 m) at 20 kn east; 20 s later it is ~206 m east
    lon0, lat0 = _at(RADAR_LON, RADAR_LAT, 0.0, 7000.0)
    lost = RadarArrays.from_lists([0], [lon0], [lat0], [90.0], [20.0], [90.0])
    on = _at(lon0, lat0, 90.0, 206.0)
    stopped = _at(lon0, lat0, 90.0, 20.0)  # it stopped just after its last report
    back = _at(lon0, lat0, 270.0, 900.0)  # 900 m behind it: not where it can be
    beside = _at(lon0, lat0, 0.0, 900.0)  # 900 m off its course
    new = RadarArrays.from_lists(
        [20_000] * 4, [on[0], stopped[0], back[0], beside[0]], [on[1], stopped[1], back[1], beside[1]],
        [90.0] * 4,
    )  # fmt: skip
    pairs = continuation_pairs(lost, new)
    assert sorted(pairs.col.tolist()) == [0, 1]
    assert continue_lost(lost, new).tolist().count(0) == 1  # one to one
    # a minute and a half later nothing continues it
    late = RadarArrays.from_lists([90_000], [on[0]], [on[1]], [90.0])
    assert continue_lost(lost, late).tolist() == [-1]
    # the gate grows with range: 500 m off is out close in, in far out
    off = _at(lon0, lat0, 0.0, 500.0)
    close = RadarArrays.from_lists([0], [lon0], [lat0], [30.0], [0.0], [0.0])
    far = RadarArrays.from_lists([0], [lon0], [lat0], [250.0], [0.0], [0.0])
    for lost_r, want in ((close, -1), (far, 0)):
        sig = float(lost_r.sigma_m[0])
        got = continue_lost(lost_r, RadarArrays.from_lists([10_000], [off[0]], [off[1]], [sig]))
        assert got.tolist() == [want]


def test_two_boats_lost_together_are_each_continued_by_their_own_new_target() -> None:
    a0 = _at(RADAR_LON, RADAR_LAT, 10.0, 9000.0)
    b0 = _at(RADAR_LON, RADAR_LAT, 14.0, 9000.0)  # ~630 m apart
    lost = RadarArrays.from_lists([0, 0], [a0[0], b0[0]], [a0[1], b0[1]], [110.0] * 2,
                                  [12.0, 12.0], [0.0, 90.0])  # fmt: skip
    a1 = _at(*a0, 0.0, 12.0 * KN * 15.0)
    b1 = _at(*b0, 90.0, 12.0 * KN * 15.0)
    for order in ([0, 1], [1, 0]):
        pts = [a1, b1]
        new = RadarArrays.from_lists([15_000] * 2, [pts[i][0] for i in order],
                                     [pts[i][1] for i in order], [110.0] * 2)  # fmt: skip
        assert continue_lost(lost, new).tolist() == order
