"""Detection quality on noisy camera input: target confirmation (M of N in event time),
stitching only with consistent motion, far targets, and one alert per vessel per episode.

Scenes on the test coast of test_detectors (land south of 20.0N; camera at 110.1E looking
north, 30 m up), driven through track_step and area_step.
"""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from test_detectors import NIGHT, _iso, camera, ctx, det_at, fix, frame, lat_at, named, run

from pipeline.core.camera import CameraModel
from pipeline.core.detectors import Thresholds
from pipeline.engine.confirm import note_hit
from pipeline.engine.state import _Target

pytestmark = pytest.mark.unit

LON = 110.102


def _ais_elsewhere(n_min: int = 30):
    """An AIS vessel out of every camera's view that keeps reporting (time goes on)."""
    ps = [
        fix(412000601, NIGHT + k * 10_000, 110.28, lat_at(9000), 3.0, 90.0)
        for k in range(6 * n_min)
    ]
    return ps, [named(412000601, NIGHT)]


def _opened(alerts, kind):
    return [a for a in alerts if a.data.kind == kind and a.data.status == "open"]


def test_m_of_n_counts_in_frames_of_the_camera():
    th = Thresholds()  # 4 of 8 frames
    tg = _Target(camera_id="c", track_id=1, first_t_ms=0, t_ms=0)
    for t in (0, 2000, 6000, 12000):  # 1 frame in 2 at 0.5 frame/s: 4 hits in 7 frames
        note_hit(tg, t, 2000, th)
    assert tg.confirmed_t_ms == 12000
    sparse = _Target(camera_id="c", track_id=2, first_t_ms=0, t_ms=0)
    for t in (0, 1000, 30_000, 31_000, 60_000, 61_000, 90_000):  # two-frame hits, 30 s apart
        note_hit(sparse, t, 1000, th)
    assert sparse.confirmed_t_ms == -1
    # the same hits at 0.1 frame/s are 4 hits in 4 consecutive frames: confirmed
    slow = _Target(camera_id="c", track_id=3, first_t_ms=0, t_ms=0)
    for t in (0, 10_000, 20_000, 30_000):
        note_hit(slow, t, 10_000, th)
    assert slow.confirmed_t_ms == 30_000


def test_clutter_at_one_spot_near_the_beach_is_no_vessel_and_no_landing():
    """A rock awash 40 m off the beach raises a one- or two-frame detection, each with a
    new track id, every 20-60 s for 15 min (1 frame/s): proximity would stitch them into a
    target stopped at the waterline; confirmation does not."""
    cam = camera()
    c = ctx({"cam1": cam})
    rng = np.random.default_rng(5)
    hits: dict[int, list] = {}
    t_s, tid = 0, 100
    while t_s < 900:
        for k in range(int(rng.integers(1, 3))):
            jitter = rng.normal(0, 10, 2) / 111_195.0
            hits.setdefault(t_s + k, []).append(
                det_at(cam, tid, LON + float(jitter[0]), lat_at(40) + float(jitter[1]))
            )
        tid += 1
        t_s += int(rng.integers(20, 61))
    frames = [frame("cam1", NIGHT + s * 1000, hits.get(s, [])) for s in range(960)]
    ps, ss = _ais_elsewhere(20)
    st, alerts = run(c, ps, ss, frames=frames, batch_s=7)
    assert tid - 100 >= 15
    assert _opened(alerts, "dark_vessel") == [] and _opened(alerts, "unusual_landing") == []
    assert st.counters.get("frames") == len(frames)


def _beached_boat(cam, seen_every: int, new_id_every_s: int, t0_s: int = 0):
    """A boat without AIS comes in from 800 m at 0.5 frame/s and stays 40 m off the beach
    for 20 min, detected in ``seen_every`` - 1 of every ``seen_every`` frames; at the beach
    its image track gets a new id every ``new_id_every_s`` (lost at night)."""
    dets: dict[int, list] = {}
    tid = 7
    for s in range(0, 1500, 2):
        k = s // 2
        if k % seen_every == seen_every - 1:
            continue
        lat = lat_at(max(40.0, 800 - s * 6.0))
        if s >= 130 and (s - 130) % new_id_every_s == 0:
            tid += 1
        dets[t0_s + s] = [det_at(cam, tid, LON, lat)]
    return dets, tid


def test_a_beached_boat_whose_track_id_keeps_changing_raises_one_alert_of_each_kind():
    """Drop-outs and new image track ids every 2 min at the beach (a new id after each
    loss): one dark_vessel and one unusual_landing for the whole visit, no closing while
    the boat is still seen."""
    cam = camera()
    c = ctx({"cam1": cam})
    dets, last_tid = _beached_boat(cam, seen_every=5, new_id_every_s=120)
    assert last_tid >= 15
    frames = [frame("cam1", NIGHT + s * 1000, dets.get(s, [])) for s in range(0, 1500, 2)]
    ps, ss = _ais_elsewhere(26)
    st, alerts = run(c, ps, ss, frames=frames, batch_s=7, until_t_ms=NIGHT + 1_500_000)
    assert len(_opened(alerts, "dark_vessel")) == 1
    (land,) = _opened(alerts, "unusual_landing")
    assert {"stopped_at_shore", "night", "no_ais"} <= {f.name for f in land.data.factors}
    # it stays open while the boat is on the beach (the last detection at 1498 s)
    last_seen = _iso(NIGHT + 1_498_000)
    closed = [a for a in alerts if a.data.kind in ("unusual_landing", "dark_vessel")
              and a.data.status == "closed"]  # fmt: skip
    assert all(a.time > last_seen for a in closed)
    assert st.counters.get("targets.stitched", 0) >= 5


def test_a_clutter_hit_beside_a_lost_boat_does_not_move_its_target():
    """A boat at 10 kn eastward 500 m out is lost for 20 s; a one-frame clutter hit 120 m
    to the west of where it was lost does not continue it; its own new track, where its
    motion puts it, does (one target, one dark_vessel alert)."""
    cam = camera()
    c = ctx({"cam1": cam})
    v_deg_s = 10 * 1852 / 3600 / (111_195.0 * np.cos(np.radians(20.0)))
    frames = []
    for s in range(0, 400):
        lon = 110.095 + s * v_deg_s
        dets = []
        if s < 100:
            dets = [det_at(cam, 1, lon, lat_at(500))]
        elif s == 105:
            dets = [det_at(cam, 99, 110.095 + 99 * v_deg_s - 120 / 104_500.0, lat_at(500))]
        elif s >= 120:
            dets = [det_at(cam, 2, lon, lat_at(500))]
        frames.append(frame("cam1", NIGHT + s * 1000, dets))
    ps, ss = _ais_elsewhere(8)
    st, alerts = run(c, ps, ss, frames=frames, batch_s=7)
    assert st.aliases.get("cam1:2") == "cam1:1"
    assert "cam1:99" not in st.aliases
    (dv,) = _opened(alerts, "dark_vessel")
    assert dv.data.vessel.track_id == "cam:cam1:1"
    # the same new track far from where the boat's motion puts it is another target
    frames2 = [
        msgspec.structs.replace(f, detections=[msgspec.structs.replace(d, lon=d.lon - 0.01) for d in f.detections])
        if f.t_ms >= NIGHT + 120_000 else f
        for f in frames
    ]  # fmt: skip
    st2, _ = run(c, ps, ss, frames=frames2, batch_s=7)
    assert "cam1:2" not in st2.aliases


def _far_det(cam, track_id, lon, lat, range_sigma_m):
    d = det_at(cam, track_id, lon, lat)
    return msgspec.structs.replace(d, range_sigma_m=range_sigma_m)


def test_a_far_target_with_kilometres_of_range_error_is_not_a_dark_vessel():
    """A ship 12 km out whose range sigma is 3 km (its AIS out of reach of the gate) is not
    judged; a boat 800 m out with a 40 m sigma is, with its confidence stated."""
    cam = camera()
    c = ctx({"cam1": cam})
    frames = [
        frame("cam1", NIGHT + s * 1000, [_far_det(cam, 3, 110.11, lat_at(12_000), 3000.0)])
        for s in range(500)
    ]
    ps, ss = _ais_elsewhere(10)
    _, alerts = run(c, ps, ss, frames=frames, batch_s=7)
    assert _opened(alerts, "dark_vessel") == []
    near = [
        frame("cam1", NIGHT + s * 1000, [_far_det(cam, 4, 110.11, lat_at(800), 40.0)])
        for s in range(500)
    ]
    _, alerts = run(c, ps, ss, frames=near, batch_s=7)
    (dv,) = _opened(alerts, "dark_vessel")
    (f,) = [f for f in dv.data.factors if f.name == "confidence"]
    assert f.weight == 0.0 and f.explanation.startswith("confidence 0.93: position known to ±40 m")


def test_one_boat_seen_by_two_cameras_is_one_dark_vessel_alert():
    cam1 = camera()
    cam2 = CameraModel.from_hfov(
        lon_deg=110.104, lat_deg=19.999, height_m=30.0, heading_deg=0.0, tilt_deg=3.0,
        hfov_deg=60.0, image_width=1920, image_height=1080,
    )  # fmt: skip
    c = ctx({"cam1": cam1, "cam2": cam2})
    frames = []
    for s in range(500):
        lat = lat_at(max(700 - s, 300))
        frames.append(frame("cam1", NIGHT + s * 1000, [det_at(cam1, 5, LON, lat)]))
        frames.append(frame("cam2", NIGHT + s * 1000 + 40, [det_at(cam2, 8, LON, lat)]))
    ps, ss = _ais_elsewhere(10)
    st, alerts = run(c, ps, ss, frames=frames, batch_s=7)
    assert len(_opened(alerts, "dark_vessel")) == 1
    assert st.counters.get("alerts.dark_vessel.folded", 0) > 0


def _visit(cam, leave: bool, outage_s: tuple[int, int] | None):
    """A boat without AIS comes in from 800 m (1 frame/2 s), stays 40 m off the beach from
    about 130 s to 1300 s (a new image track id every 2 min) and then, with ``leave``,
    heads out north at 6 kn; the camera sends no frame during ``outage_s``."""
    frames = []
    tid = 7
    for s in range(0, 2400, 2):
        if outage_s and outage_s[0] <= s < outage_s[1]:
            continue
        if s >= 130 and (s - 130) % 120 == 0:
            tid += 1
        if s < 1300:
            d = max(40.0, 800 - s * 6.0)
        elif leave:
            d = 40.0 + (s - 1300) * 3.0
        else:
            d = 40.0
        dets = [det_at(cam, tid, LON, lat_at(d))] if d < 1500 and s % 10 != 8 else []
        frames.append(frame("cam1", NIGHT + s * 1000, dets))
    return frames


def test_a_landing_closes_once_the_boat_has_left():
    cam = camera()
    c = ctx({"cam1": cam})
    ps, ss = _ais_elsewhere(45)
    _, alerts = run(c, ps, ss, frames=_visit(cam, True, None), batch_s=7)
    land = [a for a in alerts if a.data.kind == "unusual_landing"]
    assert [a.data.status for a in land][0] == "open" and land[-1].data.status == "closed"
    assert len({a.data.alert_id for a in land}) == 1
    assert land[-1].time > _iso(NIGHT + 1_300_000)


def test_a_camera_outage_does_not_close_the_landing_of_a_boat_still_there():
    """The camera sends nothing for 15 min while the boat is on the beach; it is there
    when the camera is back: one landing alert, open throughout."""
    cam = camera()
    c = ctx({"cam1": cam})
    ps, ss = _ais_elsewhere(45)
    _, alerts = run(c, ps, ss, frames=_visit(cam, False, (400, 1300)), batch_s=7)
    land = [a for a in alerts if a.data.kind == "unusual_landing"]
    assert len({a.data.alert_id for a in land}) == 1
    assert "closed" not in [a.data.status for a in land]
    assert len({a.data.alert_id for a in _opened(alerts, "dark_vessel")}) == 1
