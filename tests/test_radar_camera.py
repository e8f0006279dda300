"""A boat seen by radar and a shore camera is one target: one ``dark_vessel`` and one
``unusual_landing`` alert, carrying the detections of both sensors. The gate follows the
camera's error (range error growing with distance, bearing tight), so two boats side by side
stay two targets. (Test coast of ``test_detectors``: land south of 20.0N between 110.0E and
110.3E; the camera and the radar stand on the beach at 110.1E.)"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import pytest
from test_detectors import NIGHT, camera, ctx, fix, frame, lat_at, named
from test_radar_area import drive_batches, report

from pipeline.core import radar as core
from pipeline.core.geo import bearing_deg, haversine_m
from pipeline.core.radar_camera import CameraTargetArrays, associate_radar_camera
from pipeline.core.radar_fusion import RadarArrays
from pipeline.engine.area import area_step, flush_area
from pipeline.engine.tracks import TrackParams, track_step
from schemas.records import CameraDetection

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
#: the camera overestimates ranges by this fraction (a tilt calibration error)
RANGE_BIAS = 0.15
#: the camera sees a small boat from this range, m
CAMERA_RANGE_M = 4000.0
SHIP = 412_777_002


def cam_det(model, track_id: int, lon: float, lat: float) -> CameraDetection | None:
    """What the camera reports of a boat at (lon, lat): the bearing right, the range
    ``RANGE_BIAS`` too long, the range sigma growing with distance; ``None`` out of view."""
    rng = float(haversine_m(model.lon_deg, model.lat_deg, lon, lat))
    u, v, vis = model.geo_to_pixel(np.array([lon]), np.array([lat]))
    if rng > CAMERA_RANGE_M or not bool(vis[0]):
        return None
    brg = float(bearing_deg(model.lon_deg, model.lat_deg, lon, lat))
    olon, olat = core.polar_to_lonlat(model.lon_deg, model.lat_deg, brg, rng * (1 + RANGE_BIAS))
    return CameraDetection(
        track_id=track_id, box_px=[float(u[0]) - 15, float(v[0]) - 10, 30.0, 20.0], cls="boat",
        confidence=0.6, bearing_deg=brg, bearing_sigma_deg=0.3, range_m=rng * (1 + RANGE_BIAS),
        range_sigma_m=10.0 + 0.12 * rng, lon=float(olon), lat=float(olat),
        crop_uri=f"file:///crops/{track_id}.jpg",
    )  # fmt: skip


def boat_lat(s: float) -> float:
    """8 km out, south at 16 kn to 60 m off the beach, then it stays."""
    return lat_at(max(60.0, 8000.0 - 8.23 * s))


#: boats without AIS: (radar target number, camera track id, longitude)
ONE = ((7, 7, 110.1005),)
#: two boats 250 m apart across the camera's line of sight (1.8 km out: ~8 degrees)
TWO = ((7, 7, 110.1005), (8, 8, 110.1029))


def scenario(boats=ONE, with_radar=True, with_camera=True):
    rng = np.random.default_rng(5)
    model = camera()
    fixes, frames, reports = [], [], []
    t_end = NIGHT + 22 * 60_000
    for t in range(NIGHT, t_end, 2_500):
        s = (t - NIGHT) / 1000.0
        for n, _, lon in boats:
            if with_radar:
                reports.append(report(n, t, lon, boat_lat(s), rng))
        # an AIS ship east along 5 km out, seen by the radar
        slon = 110.02 + 6.17 * s / (111_195.0 * np.cos(np.radians(20.0)))
        if with_radar:
            reports.append(report(3, t, slon, lat_at(5000.0), rng))
        if (t - NIGHT) % 10_000 == 0:
            fixes.append(fix(SHIP, t, slon, lat_at(5000.0), 12.0, 90.0))
    for t in range(NIGHT, t_end, 2_000):  # 0.5 frame/s, whether or not it sees a boat
        s = (t - NIGHT) / 1000.0
        dets = [cam_det(model, tid, lon, boat_lat(s)) for _, tid, lon in boats]
        if with_camera:
            frames.append(frame("cam1", t, [d for d in dets if d is not None]))
    return fixes, [named(SHIP, NIGHT, length=90)], frames, reports, t_end


@functools.lru_cache(maxsize=8)
def drive(boats=ONE, batch_s: float = 10.0, with_radar=True, with_camera=True):
    fixes, statics, frames, reports, t_end = scenario(boats, with_radar, with_camera)
    c = ctx({"cam1": camera()})
    return drive_batches(c, fixes, statics, frames, reports, t_end, batch_s)


def opened(alerts, kind=None):
    return [a for a in alerts if a.data.status == "open" and kind in (None, a.data.kind)]


def test_the_camera_alone_raises_its_own_dark_vessel() -> None:
    """The control: without radar the camera target is a dark vessel of its own."""
    _, alerts = drive(with_radar=False)
    assert {a.data.vessel.track_id for a in opened(alerts, "dark_vessel")} == {"cam:cam1:7"}


def test_a_boat_seen_by_radar_and_camera_is_one_target_with_both_sources() -> None:
    st, alerts = drive()
    dv = opened(alerts, "dark_vessel")
    landing = opened(alerts, "unusual_landing")
    assert [a.data.vessel.track_id for a in dv] == ["cam:radar:r1:7"]
    assert [a.data.vessel.track_id for a in landing] == ["cam:radar:r1:7"]
    # no alert of any kind under the camera target's own subject
    assert not [a for a in alerts if a.data.vessel.track_id == "cam:cam1:7"]
    assert st.targets["radar:r1:7"].fused == "cam1:7"
    assert st.targets["cam1:7"].fused == "radar:r1:7"
    assert st.targets["cam1:7"].subject == "cam:radar:r1:7"
    ev = landing[0].data.evidence
    assert {d.get("radar_id") for d in ev.detections} >= {"r1"}
    assert {d.get("camera_id") for d in ev.detections} >= {"cam1"}
    assert "file:///crops/7.jpg" in ev.snapshot_uris
    # the alerts after the camera joined carry both sensors too
    later = [a for a in alerts if a.data.kind == "dark_vessel" and a.data.status != "open"]
    assert all(a.data.vessel.track_id == "cam:radar:r1:7" for a in later)


def test_the_radar_ship_explained_by_ais_raises_nothing() -> None:
    st, alerts = drive()
    assert not [a for a in alerts if "radar:r1:3" in a.data.vessel.track_id]
    assert st.targets["radar:r1:3"].fused == ""  # out of the camera's range


def test_two_boats_side_by_side_stay_two_targets() -> None:
    """250 m apart across the line of sight while the camera's range sigma is ~250 m at
    2 km: a round gate that size would take either; the camera's bearing tells them apart."""
    st, alerts = drive(boats=TWO)
    assert st.targets["radar:r1:7"].fused == "cam1:7"
    assert st.targets["radar:r1:8"].fused == "cam1:8"
    subjects = sorted(a.data.vessel.track_id for a in opened(alerts, "dark_vessel"))
    assert subjects == ["cam:radar:r1:7", "cam:radar:r1:8"]


def test_fused_alerts_do_not_depend_on_batching() -> None:
    _, a10 = drive(batch_s=10.0)
    _, a37 = drive(batch_s=37.0)
    key = lambda al: [(a.id, a.data.kind, a.data.status, a.data.severity) for a in al]  # noqa: E731
    assert key(a10) == key(a37)


def test_gate_is_long_along_the_line_of_sight_and_narrow_across() -> None:
    # a camera target 3 km north of its camera, range sigma 400 m, bearing sigma 0.3 deg
    lat3k = 20.0 + 3000.0 / 111_195.0
    c = CameraTargetArrays.from_lists(
        [0, 0], [110.0, 110.0], [lat3k, np.nan], [0, 0], [0, 0], [110.0, 110.0], [20.0, 20.0],
        [400.0, 400.0], [0.3, 0.3],
    )  # fmt: skip
    east = lambda m: 110.0 + m / (111_195.0 * np.cos(np.radians(20.0)))  # noqa: E731
    north = lambda m: lat3k + m / 111_195.0  # noqa: E731
    r = RadarArrays.from_lists(
        [1000] * 4, [110.0, 110.0, east(200.0), east(60.0)],
        [north(600.0), north(1800.0), lat3k, lat3k], [40.0] * 4,
    )  # fmt: skip
    got = associate_radar_camera(c, r).tolist()
    # 600 m along the line of sight: in; 1.8 km along: out; 200 m across: out; 60 m: in,
    # and one to one (the nearer in normalised distance of the two in the gate wins)
    assert got.count(0) == 1 and got[1] == -1 and got[2] == -1
    only = associate_radar_camera(c, RadarArrays.from_lists([1000], [east(60.0)], [lat3k], [40]))
    assert only.tolist() == [0]
    # a position 20 s old is not compared
    late = RadarArrays.from_lists([20_000], [110.0], [north(100.0)], [40.0])
    assert associate_radar_camera(c, late).tolist() == [-1]


def test_replay_fuses_radar_read_from_nmea_lines() -> None:
    """End to end in process: the radar reports as TTM sentences (tag blocks naming the
    radar and its time) decoded by the ingest's code, camera frames and AIS through
    ``run_replay``; the same alerts as the area step alone."""
    from pipeline.radar_files import radar_reports
    from pipeline.radars import RadarConfig
    from pipeline.replay import run_replay
    from pipeline.tools.simulate_radar import _tag, _ttm

    fixes, statics, frames, reports, _ = scenario()
    # each target's speed and course as its tracker gives them: the ship's (3) east at
    # 12 kn, the boat's south at 16 kn
    vel = {3: (12.0, 90.0)}
    lines = [
        _tag("r1", r.t_ms / 1000.0)
        + _ttm(
            r.target_number,
            r.range_m,
            r.bearing_deg,
            *vel.get(r.target_number, (16.0, 180.0)),
            "T",
            r.t_ms / 1000.0,
        )  # fmt: skip
        for r in reports
    ]
    radar = RadarConfig(id="r1", name="test", lon=110.10, lat=19.9995, height_m=30.0,
                        range_sigma_m=25.0, bearing_sigma_deg=0.7, max_range_m=24000.0)  # fmt: skip
    decoded = radar_reports(lines, {"r1": radar})
    assert len(decoded) == len(reports)
    res = run_replay(
        ctx({"cam1": camera()}), positions=fixes, statics=statics, frames=frames, radar=decoded
    )
    dv = opened(res.alerts, "dark_vessel")
    assert [a.data.vessel.track_id for a in dv] == ["cam:radar:r1:7"]
    assert not [a for a in res.alerts if a.data.vessel.track_id == "cam:cam1:7"]


@pytest.mark.integration
def test_replay_command_reads_a_radar_recording(tmp_path: Path) -> None:
    """``shorewatch replay --radar`` on the Haikou site: a boat without AIS coming in
    towards the Xiuying radar from 9 km is a dark vessel; a line for an unknown radar is
    counted as a dead letter."""
    from pipeline.radars import load_radars
    from pipeline.tools.simulate_radar import _tag, _ttm

    site = REPO / "sites" / "haikou"
    r = load_radars(site)["hk-radar-01"]
    t0 = 1772906400  # 2026-03-07T18:00:00Z, 02:00 in Haikou
    lines = []
    for k in range(0, 900):  # 2.5 s scans for 37.5 min, 9 km north to 500 m
        t = t0 + 2.5 * k
        rng_m = max(500.0, 9000.0 - 6.0 * 2.5 * k)
        lines.append(_tag(r.id, t) + _ttm(4, rng_m, 2.0, 12.0, 182.0, "T" if k > 2 else "Q", t))
    lines.append(_tag("hk-radar-99", t0) + _ttm(5, 3000.0, 10.0, 5.0, 0.0, "T", t0))
    rec = tmp_path / "radar.nmea"
    rec.write_text("\n".join(lines) + "\n")
    out = tmp_path / "alerts.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "replay", "--site", str(site), "--radar",
         str(rec), "--drain-s", "60", "--out", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "radar reports 900" in proc.stderr
    assert "unknown_radar 1" in proc.stderr
    text = out.read_text()
    assert '"kind":"dark_vessel"' in text and "cam:radar:hk-radar-01:4" in text


def ais_boat_scenario(with_radar: bool):
    """An AIS boat coming in from 4 km to 1 km off the beach, every fix heard; the camera
    sees it 3 degrees off its true bearing (a heading calibration error), too far off for
    the camera's own AIS association."""
    rng = np.random.default_rng(9)
    model = camera()
    fixes, frames, reports = [], [], []
    mmsi = 412_777_003
    t_end = NIGHT + 16 * 60_000
    lat = lambda s: lat_at(max(1000.0, 4000.0 - 4.1 * s))  # noqa: E731
    for t in range(NIGHT, t_end, 2_500):
        s = (t - NIGHT) / 1000.0
        if with_radar:
            reports.append(report(9, t, 110.1005, lat(s), rng))
        if (t - NIGHT) % 10_000 == 0:
            fixes.append(fix(mmsi, t, 110.1005, lat(s), 8.0 if s < 730 else 0.0, 180.0))
    for t in range(NIGHT, t_end, 2_000):
        s = (t - NIGHT) / 1000.0
        true_brg = float(bearing_deg(model.lon_deg, model.lat_deg, 110.1005, lat(s)))
        rng_m = float(haversine_m(model.lon_deg, model.lat_deg, 110.1005, lat(s)))
        lon2, lat2 = core.polar_to_lonlat(model.lon_deg, model.lat_deg, true_brg + 3.0, rng_m)
        d = cam_det(model, 4, float(lon2), float(lat2))
        frames.append(frame("cam1", t, [d] if d is not None else []))
    c = ctx({"cam1": camera()})
    statics = [named(mmsi, NIGHT, length=12)]
    st, alerts = drive_batches(c, fixes, statics, frames, reports, t_end, 10.0)
    return st, alerts, mmsi


def test_the_radar_explains_a_camera_target_the_camera_could_not_match() -> None:
    """The radar matches the boat to its AIS; the camera, 3 degrees off, does not: alone it
    calls the boat dark, fused with the radar target it is the AIS boat and raises nothing."""
    _, alone, _ = ais_boat_scenario(with_radar=False)
    assert "dark_vessel" in {a.data.kind for a in opened(alone)}  # the control
    st, fused, mmsi = ais_boat_scenario(with_radar=True)
    assert not [a for a in fused if a.data.kind == "dark_vessel"]
    assert st.targets["radar:r1:9"].fused == "cam1:4"
    assert st.targets["cam1:4"].last_mmsi == mmsi


def test_a_reused_radar_target_number_is_a_new_target() -> None:
    """Clutter acquired as target 5 near the radar and lost; number 5 then goes to a boat
    far out: a new target, not the clutter's (its age, its unmatched time)."""
    rng = np.random.default_rng(3)
    c = ctx()
    first = [report(5, NIGHT + k * 2500, 110.101, lat_at(300.0), rng) for k in range(4)]
    lost = msgspec.structs.replace(first[-1], t_ms=NIGHT + 4 * 2500, status="lost")
    later = [report(5, NIGHT + 60_000 + k * 2500, 110.15, lat_at(9000.0), rng) for k in range(4)]
    st, _ = area_step(None, [], [], c, radar=[*first, lost, *later])
    flush_area(st, c)
    assert f"radar:r1:5@{NIGHT}" in st.targets
    assert st.targets["radar:r1:5"].first_t_ms == NIGHT + 60_000
    assert st.targets["radar:r1:5"].unmatched_since_t_ms == NIGHT + 60_000


def test_the_dark_vessel_factor_says_radar() -> None:
    _, alerts = drive()
    dv = opened(alerts, "dark_vessel")[0]
    text = next(f.explanation for f in dv.data.factors if f.name == "no_ais_match")
    assert text.startswith("tracked by radar without any AIS match")


def test_a_vessel_passing_the_radar_boat_does_not_explain_it() -> None:
    """A boat without AIS, 2 km out at 5 kn, is crossed by an AIS ship at 30 kn: a few
    reports match the ship (one radar gate is ~150 m wide there); the ship then reports
    far from the boat, so the boat is dark again and raises dark_vessel."""
    rng = np.random.default_rng(21)
    ship = 412_777_004
    fixes, reports = [], []
    t_end = NIGHT + 14 * 60_000
    east = lambda m: 110.12 + m / (111_195.0 * np.cos(np.radians(20.0)))  # noqa: E731
    for t in range(NIGHT, t_end, 2_500):
        s = (t - NIGHT) / 1000.0
        reports.append(report(7, t, 110.12, lat_at(max(60.0, 2000.0 - 2.57 * s)), rng))
        x = -600.0 + 15.4 * s  # the ship crosses the boat's track at s = 39, 1.9 km out
        if x < 6000.0:
            reports.append(report(3, t, east(x), lat_at(1900.0), rng))
            if (t - NIGHT) % 5_000 == 0:
                fixes.append(fix(ship, t, east(x), lat_at(1900.0), 30.0, 90.0))
    c = ctx()
    tracks: dict = {}
    st, alerts = None, []
    for a in range(NIGHT, t_end + 1, 10_000):
        b = a + 10_000
        r = track_step(tracks, [p for p in fixes if a <= p.t_ms < b],
                       [named(ship, NIGHT)] if a == NIGHT else [], TrackParams())  # fmt: skip
        for tr in r.updates:
            tracks[tr.mmsi] = tr
        st, out = area_step(st, r.updates, [], c, radar=[x for x in reports if a <= x.t_ms < b])
        alerts += out
    alerts += flush_area(st, c)
    matched = [d for d in st.targets["radar:r1:7"].detections if d["mmsi"] is not None]
    assert not matched and not st.targets["radar:r1:7"].ever_matched
    assert "cam:radar:r1:7" in {a.data.vessel.track_id for a in opened(alerts, "dark_vessel")}
