"""Hidden landing sites: the clustering core, and the search over an archive."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import msgspec
import numpy as np
import pytest

from pipeline.core.geo import enu_m_to_lonlat, lonlat_to_enu_m
from pipeline.core.landing_sites import bin_means, cluster_stops, find_stops
from pipeline.history.landing import find_landing_sites, finding_alerts
from pipeline.history.query import Archive, parse_time_ms
from pipeline.history.writer import ArchiveWriter, Bounds
from pipeline.site import load_site
from schemas.records import AisPosition, Alert, CameraDetection, CameraFrame

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[1]
_enc = msgspec.json.Encoder()
MIN = 60_000


# --------------------------------------------------------------------------- core
def test_find_stops_splits_on_gap_speed_and_object() -> None:
    t = np.arange(30) * MIN
    obj = np.r_[np.zeros(20, int), np.ones(10, int)]
    sog = np.full(30, 0.1)
    sog[10] = 6.0  # object 0 moves at minute 10
    x = np.r_[np.zeros(10), np.full(10, 5000.0), np.zeros(10)]
    s = find_stops(obj, t, x, np.zeros(30), sog, min_duration_ms=5 * MIN)
    assert sorted(zip(s.obj.tolist(), s.start_t_ms.tolist(), s.end_t_ms.tolist(), strict=True)) == [
        (0, 0, 9 * MIN), (0, 11 * MIN, 19 * MIN), (1, 20 * MIN, 29 * MIN)
    ]  # fmt: skip
    assert s.east_m[s.start_t_ms == 11 * MIN][0] == 5000.0
    # without speeds: the implied speed of the points
    moving = find_stops(np.zeros(10, int), t[:10], np.arange(10) * 300.0, np.zeros(10))
    assert len(moving) == 0
    # input order does not matter
    perm = np.random.default_rng(1).permutation(30)
    s2 = find_stops(obj[perm], t[perm], x[perm], np.zeros(30), sog[perm], min_duration_ms=5 * MIN)
    assert sorted(s2.start_t_ms.tolist()) == sorted(s.start_t_ms.tolist())


def test_bin_means_average_noise() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(600) * 1000
    o, bt, be, bn = bin_means(
        np.zeros(600, int), t, rng.normal(0, 18, 600), rng.normal(0, 18, 600), MIN
    )
    assert len(o) == 10 and np.all(np.abs(be) < 10) and np.all(np.diff(bt) == MIN)
    assert len(find_stops(o, bt, be, bn, max_speed_kn=1.0)) == 1


def test_cluster_needs_distinct_nights() -> None:
    rng = np.random.default_rng(3)
    # place A: 4 stops on 3 nights within 60 m; place B: 5 stops on 1 night; C alone
    xa = rng.normal(0, 20, 4)
    ya = rng.normal(0, 20, 4)
    x = np.r_[xa, 3000 + rng.normal(0, 20, 5), -4000.0]
    y = np.r_[ya, rng.normal(0, 20, 5), 100.0]
    night = np.r_[[1, 2, 2, 5], [3] * 5, [4]]
    p = cluster_stops(x, y, night, cell_m=75, min_nights=3)
    assert len(p) == 1
    assert p.nights.tolist() == [3] and p.stops.tolist() == [4]
    assert np.hypot(p.east_m[0] - np.median(xa), p.north_m[0] - np.median(ya)) < 1e-9
    assert (p.label[:4] == 0).all() and (p.label[4:] == -1).all()
    # the same with 2 nights needed: B is still one night only
    assert len(cluster_stops(x, y, night, min_nights=2)) == 1
    assert len(cluster_stops(x, y, night, min_nights=1)) == 3


# --------------------------------------------------------------------------- over an archive
def _coast_point(g, lon: float, lat: float) -> tuple[float, float]:
    c = g.coast_segments
    mid = (c[:, :2] + c[:, 2:]) / 2
    i = int(np.argmin(np.hypot(mid[:, 0] - lon, mid[:, 1] - lat)))
    return float(mid[i, 0]), float(mid[i, 1])


def _moved(lon: float, lat: float, e: float, n: float) -> tuple[float, float]:
    lo, la = enu_m_to_lonlat(e, n, lon, lat)
    return float(lo), float(la)


class _Sink:
    def __init__(self) -> None:
        self.pos: list[bytes] = []
        self.frames: list[bytes] = []

    def stop(self, mmsi: int, t0: int, lon: float, lat: float, minutes: int = 30) -> None:
        """A vessel comes in at 6 kn, stops ``minutes`` (AIS every 3 min), leaves."""
        for k in range(-5, minutes // 3 + 5):
            moving = k < 0 or k > minutes // 3
            lo, la = _moved(lon, lat, 0, 0 if not moving else 400 * abs(k))
            self.pos.append(_enc.encode(AisPosition(
                mmsi=mmsi, msg_type=1, t_ms=t0 + k * 3 * MIN, lon=lo, lat=la,
                sog_kn=6.0 if moving else 0.1, cog_deg=None, heading_deg=None, nav_status=None,
                accuracy=False, source="t", rx_t_ms=0)))  # fmt: skip

    def dark(self, track_id: int, t0: int, lon: float, lat: float, minutes: int = 20) -> None:
        """A target without AIS seen by a camera every 2 s, still for ``minutes``."""
        rng = np.random.default_rng(track_id)
        for k in range(minutes * 30):
            lo, la = _moved(lon, lat, *rng.normal(0, 15, 2))
            det = CameraDetection(track_id=track_id, box_px=[0, 0, 1, 1], cls="boat",
                                  confidence=0.8, bearing_deg=0, bearing_sigma_deg=1,
                                  range_m=500, range_sigma_m=20, lon=lo, lat=la)  # fmt: skip
            self.frames.append(_enc.encode(CameraFrame(
                camera_id="hk-xinbu-01", t_ms=t0 + k * 2000, image_width=1920,
                image_height=1080, heading_deg=254, hfov_deg=80, detections=[det])))  # fmt: skip


NIGHT0 = parse_time_ms("2026-03-01T04:00:00+08:00")
DAY = 86_400_000


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory):
    site = load_site(REPO / "sites" / "haikou")
    g = site.geometry()
    hidden = _coast_point(g, 110.372, 20.068)
    oneoff = _coast_point(g, 110.55, 20.05)
    harbour = tuple(
        float(v) for v in [z for z in g.zones if z.name == "Baishamen"][0].ring_lonlat.mean(0)
    )
    sink = _Sink()
    sink.stop(412_000_001, NIGHT0, *_moved(*hidden, 10, 0))  # night 1
    sink.stop(412_000_002, NIGHT0 + 4 * DAY, *_moved(*hidden, -30, 20))  # night 5
    sink.dark(7, NIGHT0 + 7 * DAY, *_moved(*hidden, 25, -15))  # night 8, no AIS
    sink.stop(412_000_003, NIGHT0 + 2 * DAY, *oneoff)  # once
    for n in range(10):  # the fishing harbour, every night, several boats
        sink.stop(412_100_000 + n % 3, NIGHT0 + n * DAY - 3_600_000, *harbour)
    sink.stop(412_000_004, NIGHT0 + 1 * DAY, 110.372, 20.14)  # offshore, 3 nights
    sink.stop(412_000_004, NIGHT0 + 3 * DAY, 110.372, 20.14)
    sink.stop(412_000_004, NIGHT0 + 5 * DAY, 110.372, 20.14)
    root = tmp_path_factory.mktemp("archive")
    w = ArchiveWriter(root, Bounds())
    w.add(
        "shorewatch.ais.position.v1", 0, list(range(len(sink.pos))), [0] * len(sink.pos), sink.pos
    )
    w.add(
        "shorewatch.camera.detection.v1",
        0,
        list(range(len(sink.frames))),
        [0] * len(sink.frames),
        sink.frames,
    )
    assert w.flush_due(force=True)[1] is None
    return site, root, hidden


def test_hidden_place_found_harbour_and_one_offs_not(scenario) -> None:
    site, root, hidden = scenario
    found = find_landing_sites(Archive(root), site, NIGHT0 - 2 * DAY, NIGHT0 + 12 * DAY)
    assert len(found) == 1, found
    f = found[0]
    e, n = lonlat_to_enu_m(f.lon, f.lat, *hidden)
    assert np.hypot(e, n) < 100
    assert f.nights == ["2026-02-28", "2026-03-04", "2026-03-07"]
    assert f.mmsis == [412_000_001, 412_000_002]
    assert f.camera_targets == ["cam:hk-xinbu-01:7"]
    assert (f.visits, f.dark_visits) == (3, 1)
    # a window that holds only two of the nights finds nothing
    assert find_landing_sites(Archive(root), site, NIGHT0 + 3 * DAY, NIGHT0 + 12 * DAY) == []


def test_findings_published_once_as_valid_alerts(scenario, tmp_path: Path) -> None:
    site, root, _ = scenario
    found = find_landing_sites(Archive(root), site, NIGHT0 - 2 * DAY, NIGHT0 + 12 * DAY)
    alerts = finding_alerts(found, site, tmp_path, NIGHT0 + 12 * DAY)
    assert [a.data.kind for a in alerts] == ["landing_site"] and alerts[0].data.status == "open"
    schema = json.loads((REPO / "schemas" / "alert.v1.json").read_text())
    doc = json.loads(_enc.encode(alerts[0]))
    jsonschema.validate(doc, schema)
    assert msgspec.json.decode(_enc.encode(alerts[0]), type=Alert) == alerts[0]
    assert doc["data"]["landing_site"]["dark_visits"] == 1
    assert doc["type"] == "org.shorewatch.alert.landing_site"
    # the next day's job: nothing new, nothing published
    assert finding_alerts(found, site, tmp_path, NIGHT0 + 13 * DAY) == []
    # one more night: an update of the same alert
    more = [
        msgspec.structs.replace(found[0], nights=[*found[0].nights, "2026-03-09"], finding_id="x")
    ]
    upd = finding_alerts(more, site, tmp_path, NIGHT0 + 14 * DAY)
    assert [(a.data.alert_id, a.data.status, a.data.seq) for a in upd] == [
        (found[0].finding_id, "update", 1)
    ]
