"""Detectors and alert episodes on hand-made scenarios, through track_step and area_step.

The test coast: land south of latitude 20.0 between 110.0E and 110.3E; an authorised port
(circle, 500 m) at 110.15E on the shoreline. Night: 2024-03-07 20:00Z = 04:00 in Haikou
(the hour of the Xinbu bridge landing, DESIGN.md §1); day: 2024-03-08 04:00Z = noon.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.camera import CameraModel
from pipeline.core.detectors import Thresholds
from pipeline.core.geo import AreaGeometry, Zone, destination_point
from pipeline.engine.area import area_step, flush_area
from pipeline.engine.state import AreaContext, AreaState
from pipeline.engine.tracks import TrackParams, track_step
from pipeline.errors import ConfigError
from schemas.records import AisPosition, AisStatic, CameraDetection, CameraFrame

pytestmark = pytest.mark.unit

NIGHT = 1709841600000
DAY = 1709870400000
M_PER_DEG_LAT = 111_195.0


def geometry() -> AreaGeometry:
    land = np.array([[110.0, 20.0], [110.3, 20.0], [110.3, 19.9], [110.0, 19.9]])
    port = Zone("Test Port", "port", center_lonlat=(110.15, 20.0), radius_m=500.0)
    return AreaGeometry.from_rings("testcoast", [land], zones=[port])


def ctx(cameras=None, **th) -> AreaContext:
    return AreaContext(
        site="testcoast", geometry=geometry(), cameras=cameras or {}, thresholds=Thresholds(**th)
    )


def lat_at(dist_m: float) -> float:
    """Latitude of a point ``dist_m`` north of the shoreline."""
    return 20.0 + dist_m / M_PER_DEG_LAT


def fix(mmsi, t_ms, lon, lat, sog, cog=0.0, msg_type=1, nav_status=0):
    return AisPosition(
        mmsi=mmsi, msg_type=msg_type, t_ms=int(t_ms), lon=lon, lat=lat, sog_kn=sog, cog_deg=cog,
        heading_deg=None, nav_status=nav_status, accuracy=True, source="test", rx_t_ms=int(t_ms),
    )  # fmt: skip


def named(mmsi, t_ms, name="HAI XUN 7", call_sign="BXYZ", length=60):
    return AisStatic(
        mmsi=mmsi,
        msg_type=5,
        t_ms=int(t_ms),
        source="test",
        name=name,
        call_sign=call_sign,
        to_bow_m=length // 2,
        to_stern_m=length - length // 2,
    )


def run(c: AreaContext, positions, statics=(), frames=(), batch_s=10.0, until_t_ms=None):
    """Drive track_step + area_step over time-sorted input in batches of ``batch_s``."""
    positions = sorted(positions, key=lambda p: p.t_ms)
    frames = sorted(frames, key=lambda f: f.t_ms)
    t_all = [p.t_ms for p in positions] + [f.t_ms for f in frames]
    t0, t1 = min(t_all), max(t_all)
    tracks: dict = {}
    st = None
    alerts = []
    pending_statics = list(statics)
    edges = np.arange(t0, t1 + batch_s * 1000 + 1, batch_s * 1000)
    for a, b in zip(edges[:-1], edges[1:], strict=False):
        ps = [p for p in positions if a <= p.t_ms < b]
        fs = [f for f in frames if a <= f.t_ms < b]
        ss = [s for s in pending_statics if s.t_ms < b]
        pending_statics = [s for s in pending_statics if s.t_ms >= b]
        r = track_step(tracks, ps, ss, TrackParams())
        pending_statics = list(r.orphan_statics) + pending_statics
        for tr in r.updates:
            tracks[tr.mmsi] = tr
        st, out = area_step(st, r.updates, fs, c)
        alerts += out
    if st is not None:
        alerts += flush_area(st, c, until_t_ms)
    return st, alerts


def kinds(alerts, status="open"):
    return sorted({a.data.kind for a in alerts if a.data.status == status})


def landing_boat(t0, mmsi=412345001, lon=110.05, statics=True, moored_min=10):
    """A boat runs south to 60 m off the beach at 6 kn, then stops for ``moored_min``."""
    ps = []
    t = t0
    for k in range(30):  # approach from 1.5 km out, a fix every 10 s
        ps.append(fix(mmsi, t, lon, lat_at(60 + 1500 - k * 50), 6.0, 180.0))
        t += 10_000
    for _k in range(moored_min * 6):
        ps.append(fix(mmsi, t, lon, lat_at(60), 0.1, 180.0))
        t += 10_000
    st = [named(mmsi, t0, length=12)] if statics else []
    return ps, st, t


# ----------------------------------------------------------------------------- thresholds
def test_thresholds_from_dict_rejects_unknown_keys():
    assert Thresholds.from_dict({"landing_dwell_s": 60}).landing_dwell_s == 60.0
    assert Thresholds.from_dict({"dark_min_hits": 5}).dark_min_hits == 5
    with pytest.raises(ConfigError, match="unknown threshold"):
        Thresholds.from_dict({"landing_dwel_s": 60})
    with pytest.raises(ConfigError):
        Thresholds.from_dict({"landing_dwell_s": "long"})
    with pytest.raises(ConfigError):
        Thresholds.from_dict({"rendezvous_distance_m": -1})


# ----------------------------------------------------------------------------- scenarios
def test_boat_stopping_at_unauthorised_beach_at_night_is_an_unusual_landing():
    ps, ss, t_end = landing_boat(NIGHT)
    _, alerts = run(ctx(), ps, ss)
    opened = [a for a in alerts if a.data.status == "open" and a.data.kind == "unusual_landing"]
    assert len(opened) == 1
    a = opened[0]
    names = {f.name for f in a.data.factors}
    assert {"stopped_at_shore", "night", "small_craft"} <= names
    assert a.data.vessel.mmsi == 412345001 and not a.data.vessel.dark
    assert a.data.severity == 65
    # the condition became true at stop start + 3 min dwell (exact, event time)
    stop_t = NIGHT + 30 * 10_000
    assert a.data.event_time == _iso(stop_t + 180_000)
    assert a.time == a.data.event_time
    assert a.specversion == "1.0" and a.type == "org.shorewatch.alert.unusual_landing"
    assert a.id == f"{a.data.alert_id}/0" and a.source == "shorewatch/testcoast"
    assert a.data.zone.name == "Test Port" and a.data.zone.distance_m > 1000
    assert a.data.zone.coast_distance_m == pytest.approx(60, abs=2)
    assert len(a.data.evidence.trail) > 10
    assert a.data.evidence.trail[-1][2] <= t_end
    # one alert per vessel per episode
    assert (
        sum(1 for x in alerts if x.data.kind == "unusual_landing" and x.data.status == "open") == 1
    )


def test_same_landing_by_day_has_no_night_factor():
    ps, ss, _ = landing_boat(DAY)
    _, alerts = run(ctx(), ps, ss)
    (a,) = [a for a in alerts if a.data.kind == "unusual_landing" and a.data.status == "open"]
    assert "night" not in {f.name for f in a.data.factors}
    assert a.data.severity == 45


def test_ferry_stopping_inside_a_port_raises_nothing():
    ps, ss, _ = landing_boat(NIGHT, mmsi=412345002, lon=110.15)  # inside the port circle
    _, alerts = run(ctx(), ps, ss)
    assert alerts == []


def test_landing_episode_closes_when_the_boat_leaves():
    ps, ss, t = landing_boat(NIGHT, moored_min=6)
    for k in range(45):  # leaves northwards
        ps.append(fix(412345001, t, 110.05, lat_at(60 + k * 60), 7.0, 0.0))
        t += 10_000
    _, alerts = run(ctx(), ps, ss)
    seq = [(a.data.kind, a.data.status) for a in alerts if a.data.kind == "unusual_landing"]
    assert seq[0] == ("unusual_landing", "open") and seq[-1] == ("unusual_landing", "closed")
    closed = alerts[[a.data.status for a in alerts].index("closed")]
    assert closed.data.alert_id == alerts[0].data.alert_id and closed.data.seq >= 1


def test_two_boats_200_m_apart_for_20_min_is_a_rendezvous():
    ps = []
    for k in range(20 * 6 + 1):
        t = NIGHT + k * 10_000
        # 5.5 km offshore, drifting east at 1 kn, 200 m apart
        lon = 110.1 + k * 10 * 0.514 / (M_PER_DEG_LAT * np.cos(np.radians(20.05)))
        ps.append(fix(412000101, t, lon, lat_at(5500), 1.0, 90.0))
        ps.append(fix(412000102, t + 1, lon, lat_at(5700), 1.0, 90.0))
    ss = [named(412000101, NIGHT, "MIN YU 1", "BAA1"), named(412000102, NIGHT, "MIN YU 2", "BAA2")]
    _, alerts = run(ctx(), ps, ss)
    rv = [a for a in alerts if a.data.kind == "rendezvous" and a.data.status == "open"]
    assert len(rv) == 1
    assert rv[0].data.vessel.mmsi == 412000101
    tick_ms = int(Thresholds().eval_tick_s * 1000)
    # first evaluation (end of the first tick) + 15 min
    assert rv[0].data.event_time == _iso(NIGHT + tick_ms + 900_000)
    partner = [d for d in rv[0].data.evidence.detections if "partner" in d]
    assert partner[0]["mmsi"] == 412000102
    assert "night" in {f.name for f in rv[0].data.factors}
    assert kinds(alerts) == ["rendezvous"]


def test_two_boats_1_km_apart_do_not_meet():
    ps = []
    for k in range(20 * 6 + 1):
        t = NIGHT + k * 10_000
        ps.append(fix(412000101, t, 110.1, lat_at(5500), 0.5, 90.0))
        ps.append(fix(412000102, t + 1, 110.1, lat_at(6500), 0.5, 90.0))
    ss = [named(412000101, NIGHT, "A", "BAA1"), named(412000102, NIGHT, "B", "BAA2")]
    _, alerts = run(ctx(), ps, ss)
    assert "rendezvous" not in kinds(alerts)


def test_ais_stopping_3_km_from_shore_heading_in_is_a_dark_approach():
    ps = []
    for k in range(13):  # 8 kn due south, last fix 3 km off the beach
        ps.append(
            fix(412000201, NIGHT + k * 10_000, 110.05, lat_at(3000 + (12 - k) * 41), 8.0, 180.0)
        )
    # other traffic keeps the area's clock running
    for k in range(60):
        ps.append(fix(412000299, NIGHT + k * 10_000 + 5, 110.25, lat_at(9000), 10.0, 90.0))
    ss = [named(412000201, NIGHT), named(412000299, NIGHT, "OTHER", "BOTH")]
    _, alerts = run(ctx(), ps, ss)
    (a,) = [a for a in alerts if a.data.kind == "dark_approach" and a.data.status == "open"]
    assert a.data.vessel.mmsi == 412000201
    last_fix = NIGHT + 12 * 10_000
    assert a.data.event_time == _iso(last_fix + 120_000)  # max(6 x 10 s, 2 min)
    assert a.data.zone.coast_distance_m == pytest.approx(3000, abs=5)
    # a vessel sailing parallel to the coast at the same distance does not count
    ps2 = [
        fix(412000202, NIGHT + k * 10_000, 110.05 + k * 0.0004, lat_at(3000), 8.0, 90.0)
        for k in range(13)
    ]
    ps2 += [p for p in ps if p.mmsi == 412000299]
    _, alerts2 = run(ctx(), ps2, [named(412000202, NIGHT), ss[1]])
    assert "dark_approach" not in kinds(alerts2)


def test_last_fix_heard_outside_the_watch_distance_counts_where_the_vessel_is_by_then():
    """Receivers miss a vessel's last reports: heard last 5.4 km out at 8 kn heading in,
    it is 4.9 km out when its 2 min silence counts (dead-reckoned): a dark approach;
    heard last 6 km out, it is still 5.5 km out then: nothing."""

    def approach(mmsi, last_m):
        return [
            fix(mmsi, NIGHT + k * 10_000, 110.05, lat_at(last_m + (12 - k) * 41), 8.0, 180.0)
            for k in range(13)
        ]

    others = [fix(412000299, NIGHT + k * 10_000 + 5, 110.25, lat_at(9000), 10.0, 90.0)
              for k in range(60)]  # fmt: skip
    ss = [
        named(412000203, NIGHT),
        named(412000204, NIGHT),
        named(412000299, NIGHT, "OTHER", "BOTH"),
    ]
    _, alerts = run(ctx(), approach(412000203, 5400) + approach(412000204, 6000) + others, ss)
    opened = [a for a in alerts if a.data.kind == "dark_approach" and a.data.status == "open"]
    assert [a.data.vessel.mmsi for a in opened] == [412000203]
    assert opened[0].data.event_time == _iso(NIGHT + 12 * 10_000 + 120_000)
    (f,) = [f for f in opened[0].data.factors if f.name == "ais_stopped_near_shore"]
    assert "dead-reckoned 4906 m" in f.explanation  # 5,400 m - 8 kn x 120 s (494 m)


def _oblique_approach(mmsi, off_m, landfall_m, port_gap_m, minutes_on=5):
    """Class B fixes every 30 s at 10 kn on a straight course that meets the beach
    ``landfall_m`` ahead of the last fix, ``port_gap_m`` east of the test port's edge; the
    last fix is ``off_m`` off the beach. Returns the fixes, the course and the last fix."""
    cog = 270.0 - float(np.degrees(np.arcsin(off_m / landfall_m)))
    fall_lon, _ = destination_point(110.15, 20.0, 90.0, 500.0 + port_gap_m)
    off_lon, off_lat = destination_point(fall_lon, 20.0, cog - 180.0, landfall_m)
    step_m = 10.0 * 1852.0 / 3600.0 * 30.0
    n = minutes_on * 2 + 1
    ps = []
    for k in range(n):
        lon, lat = destination_point(off_lon, off_lat, cog - 180.0, (n - 1 - k) * step_m)
        ps.append(fix(mmsi, NIGHT + k * 30_000, float(lon), float(lat), 10.0, cog, msg_type=18))
    return ps, cog, NIGHT + (n - 1) * 30_000


def test_dark_approach_on_a_course_pointing_near_a_far_port():
    """Class B at 10 kn heading in, AIS off 3.1 km out; its course meets the beach 8 km
    ahead, 600 m beside the port. A landfall beyond the watch distance does not make it
    a ship heading into port: the AIS silence is a dark approach. Heading into that port
    from within the watch distance is not."""
    m = 412000211
    ps, _, last_fix = _oblique_approach(m, 3100.0, 8000.0, 600.0)
    other = [
        fix(412000299, NIGHT + k * 10_000 + 5, 110.25, lat_at(9000), 10.0, 90.0) for k in range(120)
    ]
    ss = [
        named(m, NIGHT, "MIN YU 68154", None, length=20),
        named(412000299, NIGHT, "OTHER", "BOTH"),
    ]
    _, alerts = run(ctx(), ps + other, ss)
    (a,) = [a for a in alerts if a.data.kind == "dark_approach" and a.data.status == "open"]
    assert a.data.vessel.mmsi == m
    assert a.data.event_time == _iso(last_fix + 360_000)  # 2 x 180 s of a stopped Class B
    assert a.data.zone.coast_distance_m == pytest.approx(3100, abs=50)
    # the same silence on a course into the port from 3 km out: not a dark approach
    ps2, _, _ = _oblique_approach(m, 3000.0, 4000.0, -500.0)
    _, alerts2 = run(ctx(), ps2 + other, ss)
    assert "dark_approach" not in kinds(alerts2)


def test_dark_approach_fires_on_the_ais_silence_while_a_camera_sees_the_vessel():
    """Seed 1 of the simulated nights, by hand: a Class B at 10 kn heading in (its course
    meeting the beach 8 km ahead, 600 m beside the port) stops its AIS 3.1 km out; a
    camera matched it while the AIS was on and keeps seeing it. The sightings do not keep
    the AIS alive: dark approach on the MMSI at last fix + silence, camera as a factor."""
    cam = CameraModel.from_hfov(
        lon_deg=110.22, lat_deg=19.999, height_m=30.0, heading_deg=0.0, tilt_deg=1.0,
        hfov_deg=90.0, image_width=1920, image_height=1080,
    )  # fmt: skip
    c = ctx({"cam1": cam})
    m = 412000212
    ps, cog, last_fix = _oblique_approach(m, 3100.0, 8000.0, 600.0)
    step_m = 10.0 * 1852.0 / 3600.0 * 2.0
    lon0, lat0 = ps[0].lon, ps[0].lat
    frames = []
    for k in range((last_fix - NIGHT) // 2000 + 300):  # every 2 s, 10 min past the last fix
        lon, lat = destination_point(lon0, lat0, cog, k * step_m)
        det = det_at(cam, 5, float(lon), float(lat))
        frames.append(
            CameraFrame(
                camera_id="cam1",
                t_ms=NIGHT + k * 2000 + 1,
                image_width=1920,
                image_height=1080,
                heading_deg=0.0,
                hfov_deg=90.0,
                detections=[det],
            )  # fmt: skip
        )
    ss = [named(m, NIGHT, "MIN YU 68154", None, length=20)]
    _, alerts = run(c, ps, ss, frames=frames, batch_s=7)
    da = [a for a in alerts if a.data.kind == "dark_approach"]
    assert [a.data.status for a in da][:1] == ["open"]
    assert {a.data.vessel.mmsi for a in da} == {m}
    assert da[0].data.event_time == _iso(last_fix + 360_000)
    assert "seen_by_camera" in {f.name for a in da for f in a.data.factors}


def test_vessel_without_name_and_call_sign_is_an_identity_anomaly():
    ps = [fix(412000301, NIGHT + k * 10_000, 110.2, lat_at(8000), 5.0, 90.0) for k in range(100)]
    _, alerts = run(ctx(), ps)
    (a,) = [a for a in alerts if a.data.kind == "identity_anomaly" and a.data.status == "open"]
    assert [f.name for f in a.data.factors] == ["no_name_no_call_sign"]
    assert a.data.event_time == _iso(NIGHT + 900_000)  # 15 min grace
    # with static data, nothing
    _, alerts = run(ctx(), ps, [named(412000301, NIGHT)])
    assert "identity_anomaly" not in kinds(alerts)
    # invalid MID: immediately
    ps = [fix(200000001, NIGHT + k * 10_000, 110.2, lat_at(8000), 5.0, 90.0) for k in range(5)]
    _, alerts = run(ctx(), ps, [named(200000001, NIGHT)])
    (a,) = [a for a in alerts if a.data.kind == "identity_anomaly"]
    assert a.data.factors[0].name == "invalid_mmsi" and a.data.event_time == _iso(NIGHT)


def test_a_300_kn_jump_is_an_impossible_speed():
    ps = [fix(412000401, NIGHT + k * 10_000, 110.2, lat_at(8000), 5.0, 90.0) for k in range(6)]
    jump_lon, jump_lat = destination_point(110.2, lat_at(8000), 90.0, 300 * 0.514444 * 10)
    ps += [
        fix(
            412000401,
            NIGHT + 60_000 + k * 10_000,
            float(jump_lon) + k * 1e-5,
            float(jump_lat),
            5.0,
            90.0,
        )
        for k in range(6)
    ]
    _, alerts = run(ctx(), ps, [named(412000401, NIGHT)])
    (a,) = [a for a in alerts if a.data.kind == "impossible_speed" and a.data.status == "open"]
    assert a.data.event_time == _iso(NIGHT + 60_000)
    assert a.data.factors[0].name == "implied_speed" and "far_beyond_any_vessel" in {
        f.name for f in a.data.factors
    }
    assert kinds(alerts) == ["impossible_speed"]


def test_loitering_near_shore():
    ps = [
        fix(412000501, NIGHT + k * 30_000, 110.08 + k * 2e-5, lat_at(800), 1.0, 90.0)
        for k in range(50)
    ]
    _, alerts = run(ctx(), ps, [named(412000501, NIGHT)], batch_s=60)
    (a,) = [a for a in alerts if a.data.kind == "loitering" and a.data.status == "open"]
    assert a.data.event_time == _iso(NIGHT + 1_200_000)


# ----------------------------------------------------------------------------- cameras
def camera() -> CameraModel:
    # on the shore at 110.1E looking north over the water, 30 m up
    return CameraModel.from_hfov(
        lon_deg=110.1,
        lat_deg=19.999,
        height_m=30.0,
        heading_deg=0.0,
        tilt_deg=3.0,
        hfov_deg=60.0,
        image_width=1920,
        image_height=1080,
    )


def frame(cam_id, t_ms, dets, uri=None):
    return CameraFrame(
        camera_id=cam_id,
        t_ms=int(t_ms),
        image_width=1920,
        image_height=1080,
        heading_deg=0.0,
        hfov_deg=60.0,
        detections=dets,
        evidence_uri=uri,
    )


def det_at(model, track_id, lon, lat):
    from pipeline.core.geo import bearing_deg, haversine_m

    u, v, vis = model.geo_to_pixel(np.array([lon]), np.array([lat]))
    return CameraDetection(
        track_id=track_id, box_px=[float(u[0]) - 20, float(v[0]) - 30, 40.0, 30.0], cls="boat",
        confidence=0.6, bearing_deg=float(bearing_deg(model.lon_deg, model.lat_deg, lon, lat)),
        bearing_sigma_deg=0.5, range_m=float(haversine_m(model.lon_deg, model.lat_deg, lon, lat)),
        range_sigma_m=30.0, lon=lon, lat=lat, crop_uri=f"file:///crops/{track_id}.jpg",
    )  # fmt: skip


def test_dark_boat_seen_by_camera_lands_at_night():
    cam = camera()
    c = ctx({"cam1": cam})
    frames = []
    # a boat with no AIS comes in from 800 m and stops 40 m off the beach, 5 min
    for k in range(60):
        t = NIGHT + k * 1000
        lat = lat_at(800 - k * 12.7)
        frames.append(
            frame("cam1", t, [det_at(cam, 7, 110.102, lat)], uri=f"file:///frames/{k}.jpg")
        )
    for k in range(60, 60 + 300, 2):
        frames.append(frame("cam1", NIGHT + k * 1000, [det_at(cam, 7, 110.102, lat_at(40))]))
    # an AIS vessel elsewhere keeps reporting (and is in no camera's view)
    ps = [fix(412000601, NIGHT + k * 10_000, 110.28, lat_at(9000), 3.0, 90.0) for k in range(40)]
    st, alerts = run(c, ps, [named(412000601, NIGHT)], frames=frames, batch_s=7)
    opened = {a.data.kind: a for a in alerts if a.data.status == "open"}
    assert "dark_vessel" in opened and "unusual_landing" in opened
    land = opened["unusual_landing"]
    assert land.data.vessel.dark and land.data.vessel.mmsi is None
    assert land.data.vessel.track_id == "cam:cam1:7"
    names = {f.name for f in land.data.factors}
    assert {"stopped_at_shore", "night", "no_ais"} <= names
    assert "file:///crops/7.jpg" in land.data.evidence.snapshot_uris
    assert land.data.evidence.detections[-1]["camera_id"] == "cam1"
    assert st.counters.get("frames") == len(frames)


def test_unknown_camera_and_bad_detections_are_counted_not_fatal():
    cam = camera()
    c = ctx({"cam1": cam})
    good = det_at(cam, 1, 110.1, lat_at(500))
    bad = [
        CameraDetection(
            track_id=2,
            box_px=[0, 0, 1, 1],
            cls="boat",
            confidence=1.7,
            bearing_deg=10,
            bearing_sigma_deg=1,
            range_m=100,
            range_sigma_m=10,
            lon=None,
            lat=None,
        ),
        CameraDetection(
            track_id=3,
            box_px=[0, 0, 1, 1],
            cls="boat",
            confidence=0.5,
            bearing_deg=float("nan"),
            bearing_sigma_deg=1,
            range_m=100,
            range_sigma_m=10,
            lon=None,
            lat=None,
        ),
        CameraDetection(
            track_id=4,
            box_px=[0, 0, 1],
            cls="boat",
            confidence=0.5,
            bearing_deg=1.0,
            bearing_sigma_deg=1,
            range_m=-5,
            range_sigma_m=10,
            lon=200.0,
            lat=None,
        ),
    ]
    frames = [frame("nope", NIGHT, [good]), frame("cam1", NIGHT + 1000, [good, *bad])]
    st, alerts = area_step(None, [], frames, c)
    st, alerts = area_step(st, [], [frame("cam1", NIGHT + 500, [good])], c)  # older than the last
    assert st.counters["frames.unknown_camera"] == 1
    assert st.counters["frames.out_of_order"] == 1 and st.counters["frames"] == 1
    assert st.counters["late"] == 1
    assert sum(v for k, v in st.counters.items() if k.startswith("detections.invalid")) == 3
    # empty site: no geometry, no cameras
    empty = AreaContext(site="empty", geometry=AreaGeometry("empty", np.zeros((0, 4))))
    st2, out = area_step(None, [], [frame("cam1", NIGHT, [good])], empty)
    st2, out2 = area_step(st2, [], [], empty)
    assert out == [] and out2 == [] and st2.counters["frames.unknown_camera"] == 1
    ps, ss, _ = landing_boat(NIGHT)
    _, alerts = run(empty, ps, ss)  # no coast: no landing, but nothing breaks
    assert "unusual_landing" not in kinds(alerts)


def test_state_roundtrips_through_bytes():
    ps, ss, _ = landing_boat(NIGHT, moored_min=2)
    st, _ = run(ctx(), ps, ss)
    again = AreaState.from_bytes(st.to_bytes())
    assert again == st


def _iso(t_ms: int) -> str:
    from pipeline.engine.alerts import iso_utc

    return iso_utc(t_ms)


# ----------------------------------------------------------------------------- batch invariance
def _scenario_stream():
    """A time-ordered stream of track updates and frames mixing several detectors."""
    cam = camera()
    ps, ss, t = landing_boat(NIGHT, moored_min=5)
    ps = ps[::2]  # a fix every 20 s
    for k in range(8):  # AIS stops 3 km out, heading in
        ps.append(fix(412000201, NIGHT + k * 10_000 + 3, 110.2, lat_at(3300 - k * 41), 8.0, 180.0))
    ps.append(fix(200000001, NIGHT + 7, 110.25, lat_at(9000), 3.0, 90.0))  # invalid MID
    tracks: dict = {}
    stream = []
    for p in sorted(ps, key=lambda p: p.t_ms):
        (tr,) = track_step(
            tracks, [p], [s for s in ss if s.mmsi == p.mmsi and p.mmsi not in tracks], TrackParams()
        ).updates
        tracks[tr.mmsi] = tr
        stream.append((tr.t_ms, 0, tr))
    for k in range(0, 420, 5):  # a dark boat stops near the camera
        lat = lat_at(max(40, 600 - k * 8))
        stream.append(
            (
                NIGHT + k * 1000 + 1,
                1,
                frame("cam1", NIGHT + k * 1000 + 1, [det_at(cam, 9, 110.102, lat)]),
            )
        )
    stream.sort(key=lambda x: (x[0], x[1]))
    return ctx({"cam1": cam}), stream


_STREAM = None


def _stream():
    global _STREAM
    if _STREAM is None:
        c, stream = _scenario_stream()
        _STREAM = (c, stream, _run_split(c, stream, []))
    return _STREAM


def _run_split(c, stream, cuts):
    bounds = sorted({x for x in cuts if 0 < x < len(stream)})
    st = None
    out = []
    for a, b in zip([0, *bounds], [*bounds, len(stream)], strict=True):
        chunk = stream[a:b]
        st, alerts = area_step(
            st, [x[2] for x in chunk if x[1] == 0], [x[2] for x in chunk if x[1] == 1], c
        )
        out += alerts
        st = AreaState.from_bytes(st.to_bytes())  # as the Faust table does between batches
    out += flush_area(st, c, NIGHT + 900_000)
    return out


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st_  # noqa: E402


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st_.lists(st_.integers(0, 400), max_size=12))
def test_alerts_independent_of_batch_boundaries(cuts):
    import msgspec

    c, stream, whole = _stream()
    kinds_seen = {a.data.kind for a in whole}
    assert {"unusual_landing", "dark_approach", "dark_vessel", "identity_anomaly"} <= kinds_seen
    split = _run_split(c, stream, cuts)
    assert msgspec.json.encode(split) == msgspec.json.encode(whole)


def test_ais_vessel_in_view_but_never_seen_is_ais_not_seen():
    cam = camera()
    c = ctx({"cam1": cam})
    ps = [
        fix(412000701, DAY + k * 10_000, 110.1, lat_at(1000), 0.2, 0.0, nav_status=1)
        for k in range(10)
    ]
    frames = [frame("cam1", DAY + k * 2000 + 1, []) for k in range(45)]
    _, alerts = run(c, ps, [named(412000701, DAY, length=40)], frames=frames, batch_s=5)
    (a,) = [a for a in alerts if a.data.kind == "ais_not_seen" and a.data.status == "open"]
    assert a.data.severity == 15 and a.data.vessel.mmsi == 412000701
    assert a.data.vessel.track_id == "mmsi:412000701"
    assert a.data.alert_id.startswith("ais_not_seen:seen:cam1:412000701:")


def test_episode_update_when_severity_changes():
    # a 三无 boat lands at night: identity factor joins once the 6 min grace has passed
    ps, _, _ = landing_boat(NIGHT, statics=False, moored_min=10)
    _, alerts = run(ctx(identity_grace_s=600), ps)  # landing at 480 s, 三无 from 600 s
    land = [a for a in alerts if a.data.kind == "unusual_landing"]
    assert [a.data.status for a in land][:2] == ["open", "update"]
    assert land[0].data.alert_id == land[1].data.alert_id
    assert land[1].id == f"{land[1].data.alert_id}/1"
    assert "identity_anomaly" in {f.name for f in land[1].data.factors}
    assert land[1].data.severity > land[0].data.severity


def test_rendezvous_with_a_class_b_boat_reporting_every_3_min():
    # Class B "CS" below 2 kn reports every 3 min (ITU-R M.1371); one lost report must not
    # break the meeting
    ps = []
    for k in range(0, 25 * 60, 180):
        if k == 540:
            continue  # a lost report: 6 min between fixes
        ps.append(fix(412000801, NIGHT + k * 1000, 110.1, lat_at(5500), 0.2, 90.0, msg_type=18))
    for k in range(0, 25 * 60, 10):
        ps.append(fix(412000802, NIGHT + k * 1000 + 3, 110.1, lat_at(5650), 0.3, 90.0))
    ss = [named(412000801, NIGHT, "MIN YU 8", "BAA8"), named(412000802, NIGHT, "MOTHER", "BAA9")]
    _, alerts = run(ctx(), ps, ss)
    (rv,) = [a for a in alerts if a.data.kind == "rendezvous" and a.data.status == "open"]
    assert rv.data.event_time == _iso(NIGHT + int(Thresholds().eval_tick_s * 1000) + 900_000)


def test_vessel_that_switches_ais_off_and_lands_in_camera_view():
    """AIS on while the camera confirms the match, then AIS off 600 m out; the camera keeps
    tracking the boat to a stop on the beach: the landing is alerted on that MMSI."""
    cam = camera()
    c = ctx({"cam1": cam})
    m = 412000901
    ps, frames = [], []
    for k in range(0, 700):
        t = NIGHT + k * 1000
        dist = max(40.0, 1200 - k * 3.0)  # 6 kn towards the beach, stops at 40 m
        lat = lat_at(dist)
        if k < 200 and k % 10 == 0:  # AIS every 10 s until 600 m out
            ps.append(fix(m, t, 110.102, lat, 5.8, 180.0))
        frames.append(frame("cam1", t + 1, [det_at(cam, 3, 110.102, lat)]))
    _, alerts = run(
        c, ps, [named(m, NIGHT, "QIONG YU 9", "BQY9", length=14)], frames=frames, batch_s=5
    )
    land = [a for a in alerts if a.data.kind == "unusual_landing" and a.data.status == "open"]
    assert len(land) == 1
    a = land[0]
    assert a.data.vessel.mmsi == m and a.data.vessel.dark and a.data.vessel.name == "QIONG YU 9"
    assert a.data.vessel.track_id == "cam:cam1:3"
    assert {"stopped_at_shore", "ais_off", "night"} <= {f.name for f in a.data.factors}
    assert "no_ais" not in {f.name for f in a.data.factors}
    assert a.data.alert_id.startswith(f"unusual_landing:mmsi:{m}:")
