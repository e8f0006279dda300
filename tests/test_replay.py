"""Offline replay end to end: generated NMEA (pyais.encode, tag-block times) and camera
frames at the real Haikou site, through `pipeline.replay` and the `shorewatch replay` command."""

from __future__ import annotations

import json
from functools import reduce
from pathlib import Path

import msgspec
import numpy as np
import pytest

from pipeline.engine.alerts import iso_utc
from pipeline.engine.state import AreaContext
from pipeline.replay import replay, run_replay
from pipeline.site import load_site
from schemas.records import CameraDetection, CameraFrame

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "sites" / "haikou"
NIGHT_S = 1709841600  # 2024-03-07T20:00Z = 04:00 in Haikou


def tagged(payload_line: str, t_s: int) -> str:
    body = f"s:test,c:{t_s}"
    cs = reduce(lambda a, ch: a ^ ord(ch), body, 0)
    return f"\\{body}*{cs:02X}\\{payload_line}"


def nmea_position(mmsi, t_s, lon, lat, sog, cog, status=0):
    from pyais.encode import encode_dict

    (line,) = encode_dict(
        {"type": 1, "mmsi": mmsi, "lon": lon, "lat": lat, "speed": sog, "course": cog,
         "status": status, "second": t_s % 60},
        talker_id="AI",
    )  # fmt: skip
    return tagged(line, t_s)


def nmea_static(mmsi, t_s, name, call_sign, length=10):
    from pyais.encode import encode_dict

    lines = encode_dict(
        {"type": 5, "mmsi": mmsi, "shipname": name, "callsign": call_sign, "to_bow": length // 2,
         "to_stern": length - length // 2, "to_port": 2, "to_starboard": 2, "ship_type": 30},
        talker_id="AI",
    )  # fmt: skip
    # a two-sentence group: the tag block goes on the first sentence with the group
    return [tagged(lines[0], t_s), *lines[1:]]


def beach_point(ctx: AreaContext):
    """A point ~60 m off a real Haikou beach, > 2 km from every authorised zone."""
    g = ctx.geometry
    seg = g.coast_segments
    mids = np.column_stack([(seg[:, 0] + seg[:, 2]) / 2, (seg[:, 1] + seg[:, 3]) / 2])
    _, zd = g.nearest_zone(mids[:, 0], mids[:, 1])
    for i in np.argsort(-zd):
        dx, dy = seg[i, 2] - seg[i, 0], seg[i, 3] - seg[i, 1]
        norm = np.hypot(dx * np.cos(np.radians(mids[i, 1])), dy)
        if norm == 0:
            continue
        # unit normal in degrees of ~60 m
        nx = -dy / norm * 60 / (111_195 * np.cos(np.radians(mids[i, 1])))
        ny = dx * np.cos(np.radians(mids[i, 1])) / norm * 60 / 111_195
        for s in (1, -1):
            lon, lat = mids[i, 0] + s * nx, mids[i, 1] + s * ny
            if not g.on_land([lon], [lat])[0] and g.coast_distance_m([lon], [lat])[0] < 100:
                if ctx.contains(lon, lat) and g.nearest_zone([lon], [lat])[1][0] > 2000:
                    return float(lon), float(lat), (float(s * nx), float(s * ny))
    raise AssertionError("no beach point found")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    ctx = AreaContext.from_site(load_site(SITE))
    lon, lat, (nx, ny) = beach_point(ctx)
    lines = []
    m = 412777001
    lines += nmea_static(m, NIGHT_S, "", "", 9)  # no name, no call sign
    t = NIGHT_S
    for k in range(20):  # approach from ~1.2 km out at 6 kn, then stop 8 min
        d = 20 - k
        lines.append(nmea_position(m, t, lon + nx * d, lat + ny * d, 6.0, 0.0))
        t += 10
    for _ in range(48):
        lines.append(nmea_position(m, t, lon, lat, 0.1, 0.0))
        t += 10
    lines.append("this is not NMEA")  # counted, never fatal
    lines.append("!AIVDM,1,1,,A,15M67FC000G?ufbE`FepT@3n00Sa,0*00")  # bad checksum
    d = tmp_path_factory.mktemp("replay")
    ais = d / "night.nmea"
    ais.write_text("\n".join(lines) + "\n")
    # a frame file with one unknown camera and one broken line
    det = CameraDetection(track_id=1, box_px=[10, 10, 20, 10], cls="boat", confidence=0.5,
                          bearing_deg=10.0, bearing_sigma_deg=1.0, range_m=500.0, range_sigma_m=50.0,
                          lon=None, lat=None)  # fmt: skip
    frames = d / "frames.jsonl"
    fr = CameraFrame(
        camera_id="no-such-camera",
        t_ms=NIGHT_S * 1000 + 5000,
        image_width=100,
        image_height=100,
        heading_deg=0.0,
        hfov_deg=60.0,
        detections=[det],
    )
    frames.write_bytes(msgspec.json.encode(fr) + b"\n{broken\n")
    return ctx, ais, frames, (lon, lat), t


@pytest.mark.unit
def test_replay_finds_the_night_landing(scenario):
    ctx, ais, frames, (lon, lat), t_end = scenario
    res = run_replay(SITE, [ais], [frames])
    opened = {a.data.kind: a for a in res.alerts if a.data.status == "open"}
    assert "unusual_landing" in opened, res.counters
    a = opened["unusual_landing"]
    assert a.data.vessel.mmsi == 412777001
    assert {"stopped_at_shore", "night", "small_craft"} <= {f.name for f in a.data.factors}
    assert a.data.position.lon == pytest.approx(lon, abs=1e-4)
    stop_t_ms = (NIGHT_S + 200) * 1000
    assert a.data.event_time == iso_utc(stop_t_ms + 180_000)
    assert a.source == "shorewatch/haikou"
    # nothing was silently dropped
    assert res.counters["dead_letters"] >= 1
    assert res.counters["frames.undecodable"] == 1
    assert res.counters["area.frames.unknown_camera"] == 1
    # the replay entry point for tests gives the same alerts
    again = replay(SITE, [ais], [frames])
    assert msgspec.json.encode(again) == msgspec.json.encode(res.alerts)
    # with time to let the 三无 grace elapse, the identity anomaly shows too
    drained = run_replay(SITE, [ais], [frames], drain_s=600)
    assert "identity_anomaly" in {x.data.kind for x in drained.alerts}


@pytest.mark.unit
def test_replay_independent_of_window(scenario):
    _, ais, frames, _, _ = scenario
    a = replay(SITE, [ais], [frames], window_ms=1000)
    b = replay(SITE, [ais], [frames], window_ms=60_000)
    key = lambda x: (x.data.kind, x.data.vessel.track_id, x.data.status, x.data.event_time)  # noqa: E731
    assert [key(x) for x in a if x.data.status == "open"] == [
        key(x) for x in b if x.data.status == "open"
    ]


@pytest.mark.unit
def test_replay_command_writes_cloudevents(scenario, tmp_path, capsys):
    from pipeline.cli import main

    _, ais, frames, _, _ = scenario
    out = tmp_path / "alerts.jsonl"
    rc = main(
        [
            "replay",
            "--site",
            str(SITE),
            "--ais",
            str(ais),
            "--detections",
            str(frames),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    events = [json.loads(x) for x in out.read_text().splitlines()]
    assert events and all(e["specversion"] == "1.0" and e["time"].endswith("Z") for e in events)
    assert any(e["type"] == "org.shorewatch.alert.unusual_landing" for e in events)
    err = capsys.readouterr().err
    assert "alerts unusual_landing: open 1" in err and "dead letters" in err


@pytest.mark.unit
def test_replay_real_dma_file_runs_clean(shared):
    """The real Danish feed through a hand-made area around Copenhagen/Øresund: every
    line is used or accounted for, and the engine copes with a real mix of traffic."""
    from pipeline.core.geo import AreaGeometry

    ring = np.array(
        [[12.55, 55.60], [12.70, 55.60], [12.70, 55.75], [12.55, 55.75]]
    )  # a block of land
    g = AreaGeometry.from_rings("oresund", [ring])
    ctx = AreaContext(site="oresund", geometry=g, bbox=(10.0, 54.0, 16.0, 58.0))
    res = run_replay(ctx, [shared / "data/ais/dma_aislib_stream_example.txt"])
    assert res.counters["positions"] > 2500
    assert res.counters["tracks.distinct_mmsi"] > 1000
    assert res.counters["area.tracks"] > 0
    for a in res.alerts:
        assert 0 <= a.data.severity <= 100 and a.time.endswith("Z")


@pytest.mark.unit
def test_alerts_validate_against_the_published_schema(scenario):
    import jsonschema

    _, ais, frames, _, _ = scenario
    schema = json.loads((REPO / "schemas" / "alert.v1.json").read_text())
    alerts = replay(SITE, [ais], [frames], drain_s=600)
    assert alerts
    for a in alerts:
        jsonschema.validate(json.loads(msgspec.json.encode(a)), schema)


@pytest.mark.unit
def test_replay_analyses_a_video_as_a_site_camera(shared, tmp_path, capsys):
    """`--camera CAM=VIDEO` runs pipeline.vision on the real clip (motion detector, so no
    model weights are needed) and feeds the frames to the same engine."""
    pytest.importorskip("cv2")
    from pipeline.cli import main

    out = tmp_path / "alerts.jsonl"
    clip = shared / "data/video/clip-01/clip-01.mp4"
    rc = main(["replay", "--site", str(SITE), "--camera", f"hk-west-01={clip}",
               "--video-start", "2026-03-07T20:00:00Z", "--model-dir", "none", "--out", str(out)])  # fmt: skip
    assert rc == 0 and out.exists()
    assert "frames 10" in capsys.readouterr().err  # 10 s of video at 1 frame/s
