"""Radar in the area step: a boat without AIS, followed by radar alone from 8 km out to the
shore, raises dark_vessel kilometres out and unusual_landing at the beach, with the radar
reports as evidence; an AIS ship the radar also sees raises nothing; the alerts do not
depend on how the input was batched. (Test coast of ``test_detectors``: land south of
20.0N between 110.0E and 110.3E.)"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from test_detectors import NIGHT, ctx, fix, lat_at, named

from pipeline.core import radar as core
from pipeline.core.geo import bearing_deg, haversine_m
from pipeline.engine.area import area_step, flush_area
from pipeline.engine.tracks import TrackParams, track_step
from schemas.records import RadarTarget

pytestmark = pytest.mark.unit

RADAR_LON, RADAR_LAT = 110.10, 19.9995
SHIP = 412_777_001


def report(
    n: int, t_ms: int, lon: float, lat: float, rng: np.random.Generator,
    status: str = "tracking", speed_kn: float | None = None, course_deg: float | None = None,
) -> RadarTarget:  # fmt: skip
    """A report as the radar gives it: range and bearing noise, sigma growing with range."""
    d = float(haversine_m(RADAR_LON, RADAR_LAT, lon, lat)) + rng.normal(0, 25.0)
    b = float(bearing_deg(RADAR_LON, RADAR_LAT, lon, lat)) + rng.normal(0, 0.7)
    olon, olat = core.polar_to_lonlat(RADAR_LON, RADAR_LAT, b, d)
    return RadarTarget(
        radar_id="r1", target_id=f"r1:{n}", target_number=n, sentence="TTM", t_ms=t_ms,
        rx_t_ms=t_ms, lon=float(olon), lat=float(olat), range_m=d, bearing_deg=b % 360,
        position_sigma_m=float(core.position_sigma_m(d, 25.0, 0.7)), status=status,
        source="test", speed_kn=speed_kn, course_deg=course_deg,
    )  # fmt: skip


def scenario():
    rng = np.random.default_rng(11)
    fixes, reports = [], []
    t_end = NIGHT + 22 * 60_000
    for t in range(NIGHT, t_end, 2_500):
        s = (t - NIGHT) / 1000.0
        # the boat: 8 km out, south at 16 kn to 60 m off the beach, then it stays
        dist = max(60.0, 8000.0 - 8.23 * s)
        reports.append(report(7, t, 110.12, lat_at(dist), rng))
        # the ship: east along 5 km out at 12 kn, AIS every 10 s, also on the radar
        lon = 110.02 + 6.17 * s / (111_195.0 * np.cos(np.radians(20.0)))
        reports.append(report(3, t, lon, lat_at(5000.0), rng))
        if (t - NIGHT) % 10_000 == 0:
            fixes.append(fix(SHIP, t, lon, lat_at(5000.0), 12.0, 90.0))
    return fixes, [named(SHIP, NIGHT, length=90)], reports, t_end


def drive_batches(c, fixes, statics, frames, reports, t_end: int, batch_s: float):
    """The tracks and area steps over the input in event-time batches of ``batch_s``
    seconds from ``NIGHT`` to ``t_end``; the final area state and every alert."""
    tracks: dict = {}
    st = None
    alerts = []
    pending = list(statics)
    for a in np.arange(NIGHT, t_end + 1, batch_s * 1000):
        b = a + batch_s * 1000
        ps = [p for p in fixes if a <= p.t_ms < b]
        ss, pending = [s for s in pending if s.t_ms < b], [s for s in pending if s.t_ms >= b]
        r = track_step(tracks, ps, ss, TrackParams())
        for tr in r.updates:
            tracks[tr.mmsi] = tr
        fs = [x for x in frames if a <= x.t_ms < b]
        rs = [x for x in reports if a <= x.t_ms < b]
        st, out = area_step(st, r.updates, fs, c, radar=rs)
        alerts += out
    return st, alerts + flush_area(st, c)


@functools.lru_cache(maxsize=2)
def drive(batch_s: float):
    fixes, statics, reports, t_end = scenario()
    c = ctx()
    st, alerts = drive_batches(c, fixes, statics, [], reports, t_end, batch_s)
    return st, alerts, c


def test_a_boat_seen_by_radar_alone_raises_dark_vessel_far_out_and_lands() -> None:
    st, alerts, c = drive(10.0)
    opened = [a for a in alerts if a.data.status == "open"]
    by_kind = {(a.data.kind, a.data.vessel.track_id) for a in opened}
    boat = "cam:radar:r1:7"
    assert ("dark_vessel", boat) in by_kind
    assert ("unusual_landing", boat) in by_kind
    assert not any(tid == "cam:radar:r1:3" for _, tid in by_kind)  # the AIS ship is explained
    dv = next(a for a in opened if a.data.kind == "dark_vessel")
    coast_m = float(c.geometry.coast_distance_m(dv.data.position.lon, dv.data.position.lat)[0])
    # kilometres before a shore camera could see a small boat (the area's 6 min warm-up first)
    assert coast_m > 4500.0
    ev = next(a for a in opened if a.data.kind == "unusual_landing").data.evidence
    assert ev.detections and all(d["radar_id"] == "r1" for d in ev.detections)
    assert len(ev.trail) > 10  # the radar track that followed it to the shore
    assert st.targets["radar:r1:3"].last_mmsi == SHIP


def test_radar_alerts_do_not_depend_on_batching() -> None:
    _, a10, _ = drive(10.0)
    _, a37, _ = drive(37.0)
    key = lambda al: [(a.id, a.data.kind, a.data.status, a.data.severity) for a in al]  # noqa: E731
    assert key(a10) == key(a37)


def test_replay_takes_radar_reports() -> None:
    from pipeline.replay import run_replay

    fixes, statics, reports, _ = scenario()
    res = run_replay(ctx(), positions=fixes, statics=statics, radar=reports)
    opened = {(a.data.kind, a.data.vessel.track_id) for a in res.alerts if a.data.status == "open"}
    assert ("dark_vessel", "cam:radar:r1:7") in opened
    assert res.counters["radar.read"] == len(reports)
    assert {a.id for a in res.alerts} == {a.id for a in drive(10.0)[1]}  # as the area step alone


@pytest.mark.parametrize(("lon", "alerted"), [(110.15, False), (110.20, True)])
def test_a_ship_at_anchor_in_the_port_is_not_judged_dark_from_radar_alone(
    lon: float, alerted: bool
) -> None:
    """A radar target at rest for 12 minutes with no AIS heard (a ship at anchor whose AIS
    the receiver missed): inside the port zone (500 m around 110.15E on the shore) it is the
    port's, not a dark vessel; the same 2.6 km east of the zone is one."""
    rng = np.random.default_rng(3)
    t_end = NIGHT + 12 * 60_000
    reports = [report(4, t, lon, lat_at(200.0), rng) for t in range(NIGHT, t_end, 2_500)]
    _, alerts = drive_batches(ctx(), [], [], [], reports, t_end, 10.0)
    dark = [a for a in alerts if a.data.kind == "dark_vessel" and a.data.status == "open"]
    assert bool(dark) is alerted
