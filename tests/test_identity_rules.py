"""Identity rules against the vessel registry, through the replay driver: the registry is a
real SQLite database, resolved per micro-batch and passed into the area step.

The test coast is that of ``test_detectors`` (land south of 20.0N, "Test Port" at 110.15E).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jsonschema
import msgspec
import numpy as np
import pytest
from test_detectors import DAY, NIGHT, ctx, fix, lat_at, named

from pipeline import topics
from pipeline.core.detectors.registry_facts import chinese_mid, names_match, two_places
from pipeline.registry.resolver import IdentityResolver
from pipeline.registry.store import Registry
from pipeline.replay import run_replay
from schemas import compat

pytestmark = pytest.mark.unit

DEAD_POSTGRES = "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2"


def _vessel(mmsi, name=None, hull=None, home="", until=None, reg=None):
    return {
        "registration_no": reg or f"QH-{mmsi}", "mmsi": mmsi, "name": name,
        "hull_number": hull, "port_of_registry": "海口", "vessel_type": "fishing",
        "length_m": 18.0, "owner": "owner", "home_harbours": home, "valid_until": until,
    }  # fmt: skip


@pytest.fixture
def registry_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    reg = Registry.open(url)
    reg.upsert([
        _vessel(412000002, name="QIONG HAI YU 2"),
        _vessel(412000003, name="HAI XUN 3", until=dt.date(2024, 3, 1)),
        _vessel(412000004, name="HAI XUN 4", until=dt.date(2024, 12, 31)),
        _vessel(412000006, name="HAI XUN 6", home="Test Port"),
        _vessel(412000007, name="HAI XUN 7", home="Test Port"),
        _vessel(412000008, name="HAI XUN 8", hull="琼海口渔12345"),
    ])  # fmt: skip
    reg.watch("mmsi", "412000001", "lead: livestock by boat", "duty-officer")
    reg.watch("hull_number", "琼海口渔12345", "seen at Xinbu", "duty-officer")
    reg.close()
    return url


def _cruise(mmsi, t0, minutes=20, lon=110.05, off_m=20_000.0, name=None):
    """A vessel running east at 8 kn ``off_m`` off the coast, a fix every 10 s."""
    ps = [
        fix(mmsi, t0 + k * 10_000, lon + k * 0.0007, lat_at(off_m), 8.0, 90.0)
        for k in range(minutes * 6)
    ]
    return ps, [named(mmsi, t0, name=name or f"HAI XUN {mmsi % 100}", length=18)]


def _stop(mmsi, t0, lon, off_m, minutes=25):
    """A vessel stopped ``off_m`` off the coast at ``lon``."""
    ps = [fix(mmsi, t0 + k * 10_000, lon, lat_at(off_m), 0.1, 0.0) for k in range(minutes * 6)]
    return ps, [named(mmsi, t0, name=f"HAI XUN {mmsi % 100}", length=18)]


def _clone(mmsi, t0, minutes=10):
    """Two transmitters 20 km apart sending the same MMSI in turn, every 10 s."""
    ps = [
        fix(mmsi, t0 + k * 10_000, 110.05 if k % 2 == 0 else 110.25, lat_at(20_000), 5.0, 90.0)
        for k in range(minutes * 6)
    ]
    return ps, [named(mmsi, t0, name="HAI XUN 8", length=18)]


def _scenario(t0: int):
    parts = [
        _cruise(412000001, t0),  # unregistered, on the watchlist
        _cruise(412000002, t0),  # AIS name "HAI XUN 2", registered "QIONG HAI YU 2"
        _cruise(412000003, t0),  # registration lapsed on 2024-03-01
        _cruise(412000004, t0),  # registered until the end of 2024
        _cruise(273000005, t0),  # a Russian MMSI: not the Chinese registry's business
        _stop(412000006, t0, 110.05, 3000.0),  # stopped 3 km out, 10 km from its home port
        _stop(412000007, t0, 110.15, 0.0),  # stopped inside its home port
        _clone(412000008, t0),  # two transmitters share it; its hull number is watched
    ]
    ps = sorted([p for a, _ in parts for p in a], key=lambda p: p.t_ms)
    ss = sorted([s for _, b in parts for s in b], key=lambda s: s.t_ms)
    return ps, ss


def _replay(registry, t0=NIGHT):
    ps, ss = _scenario(t0)
    return run_replay(ctx(), positions=ps, statics=ss, registry=registry).alerts


def _by(alerts, kind):
    out = {}
    for a in alerts:
        if a.data.kind == kind:
            out[a.data.vessel.mmsi] = a  # the latest event of each vessel
    return out


def _factors(a):
    return {f.name: f for f in a.data.factors}


def test_identity_rules_fire_against_the_registry_with_their_explanations(registry_url) -> None:
    alerts = _replay(IdentityResolver(registry_url))
    ident = _by(alerts, "identity_anomaly")
    assert set(ident) == {412000001, 412000002, 412000003}
    f1 = _factors(ident[412000001])
    assert "412000001 carries a Chinese MID (412)" in f1["unregistered"].explanation
    assert f1["watchlist"].weight == 30.0
    assert "lead: livestock by boat (added by duty-officer)" in f1["watchlist"].explanation
    assert ident[412000001].data.severity == 70
    assert ident[412000001].data.vessel.registry is None
    assert [h.reason for h in ident[412000001].data.vessel.watchlist] == ["lead: livestock by boat"]

    f2 = _factors(ident[412000002])
    assert set(f2) == {"name_mismatch"}
    assert (
        "'HAI XUN 2' is not the registered name 'QIONG HAI YU 2'" in f2["name_mismatch"].explanation
    )
    reg2 = ident[412000002].data.vessel.registry
    assert reg2 is not None and reg2.registration_no == "QH-412000002"

    f3 = _factors(ident[412000003])
    assert set(f3) == {"registration_expired"}
    assert "QH-412000003 expired on 2024-03-01" in f3["registration_expired"].explanation

    (home,) = _by(alerts, "outside_home_harbour").values()
    assert home.data.vessel.mmsi == 412000006
    assert "its home harbours (Test Port)" in _factors(home)["away_from_home"].explanation
    assert home.data.vessel.registry.home_harbours == ["Test Port"]

    (clone,) = _by(alerts, "cloned_mmsi").values()
    assert clone.data.vessel.mmsi == 412000008
    fc = _factors(clone)
    assert "two places 20.9 km apart" in fc["two_places_at_once"].explanation
    assert "'HAI XUN 8' (registration QH-412000008)" in fc["registered_identity_cloned"].explanation
    assert "hull_number 琼海口渔12345: seen at Xinbu" in fc["watchlist"].explanation
    # the same jumps are impossible speeds, and the watchlist raises those too
    assert "watchlist" in _factors(_by(alerts, "impossible_speed")[412000008])

    schema = jsonschema.Draft202012Validator(compat.load(topics.ALERT.schema_file))
    for a in alerts:
        assert not list(schema.iter_errors(msgspec.to_builtins(a)))


def test_no_registry_no_registry_rules(registry_url) -> None:
    alerts = _replay(None)
    kinds = {a.data.kind for a in alerts}
    assert "identity_anomaly" not in kinds and "outside_home_harbour" not in kinds
    # the clone is seen from the trail alone, without the registry's factor
    (clone,) = _by(alerts, "cloned_mmsi").values()
    assert set(_factors(clone)) == {"two_places_at_once"}
    assert all(a.data.vessel.registry is None and not a.data.vessel.watchlist for a in alerts)


def test_an_expiry_and_a_stop_away_from_home_are_judged_at_event_time(registry_url) -> None:
    early = dt.datetime(2024, 2, 20, 20, 0, tzinfo=dt.UTC)  # 04:00 in Haikou, before expiry
    alerts = _replay(IdentityResolver(registry_url), t0=int(early.timestamp() * 1000))
    assert set(_by(alerts, "identity_anomaly")) == {412000001, 412000002}
    by_day = _replay(IdentityResolver(registry_url), t0=DAY)
    assert _by(by_day, "outside_home_harbour") == {}  # a stop by day is no night stop


def test_an_unreachable_registry_leaves_the_pipeline_running_and_says_so() -> None:
    # a vessel with an invalid MMSI raises an identity anomaly with or without a registry
    ps, ss = _cruise(123456789, NIGHT)
    more_ps, more_ss = _cruise(412000001, NIGHT)
    resolver = IdentityResolver(DEAD_POSTGRES, retry_min_s=3600.0)
    res = run_replay(
        ctx(), positions=sorted(ps + more_ps, key=lambda p: p.t_ms), statics=ss + more_ss,
        registry=resolver,
    )  # fmt: skip
    assert resolver.failures == 1 and not resolver.available  # retried after an hour only
    assert "unreachable" in (resolver.last_error or "")
    (a,) = _by(res.alerts, "identity_anomaly").values()
    f = _factors(a)
    assert set(f) == {"invalid_mmsi", "registry_unavailable"}
    assert f["registry_unavailable"].weight == 0.0
    assert "registry unavailable" in f["registry_unavailable"].explanation
    # the unregistered Chinese MMSI is not called unregistered: it was never checked
    assert 412000001 not in _by(res.alerts, "identity_anomaly")


def test_an_unreachable_registry_is_retried_with_backoff() -> None:
    now = [0.0]
    resolver = IdentityResolver(
        DEAD_POSTGRES, retry_min_s=1.0, retry_max_s=4.0, clock=lambda: now[0]
    )
    waits = []
    for _ in range(4):
        assert resolver.due()
        assert resolver.refresh() is False
        t_fail = now[0]
        while not resolver.due():
            now[0] += 0.5
        waits.append(now[0] - t_fail)
    assert waits == [1.0, 2.0, 4.0, 4.0]
    ids = resolver.resolve([], refresh=False)
    assert ids == []


def test_a_missing_sqlite_registry_is_not_in_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none' / 'registry.sqlite'}"
    resolver = IdentityResolver(url)
    ps, _ = _cruise(412000001, NIGHT, minutes=1)
    from pipeline.engine.tracks import TrackParams, track_step

    tracks = track_step({}, ps, [], TrackParams()).updates
    assert tracks and resolver.resolve(tracks) == []
    assert not (tmp_path / "none").exists()  # nothing created


def test_two_places_at_once_needs_jumps_back_and_forth() -> None:
    t = np.arange(12, dtype=np.int64) * 10_000
    lat = np.full(12, 20.2)
    kw = {"max_implied_speed_kn": 50.0, "window_s": 1800.0, "min_jumps": 3, "return_m": 2000.0}
    alternating = np.where(np.arange(12) % 2 == 0, 110.05, 110.25)
    when, dist_m, jumps = two_places(alternating, lat, t, **kw)
    assert when == 30_000 and jumps == 11 and 20_000 < dist_m < 21_500
    glitch = np.full(12, 110.05)
    glitch[5] = 110.25  # one bad fix: out and back
    assert two_places(glitch, lat, t, **kw)[0] == -1
    steady = 110.05 + np.arange(12) * 0.0007  # 8 kn east
    when, _, jumps = two_places(steady, lat, t, **kw)
    assert when == -1 and jumps == 0


def test_names_and_mids() -> None:
    assert names_match("HAI XUN 7@@@", "hai-xun 7")
    assert names_match("ＨＡＩ ＸＵＮ ７", "HAI XUN 7")  # full-width folded
    assert not names_match("HAI XUN 7", "QIONG HAI YU 7")
    assert names_match(None, "QIONG HAI YU 7")  # no name is the 三无 rule's business
    assert chinese_mid(np.array([412000001, 413999999, 414000000, 273000005, 41200000])).tolist() == [
        True, True, True, False, False,
    ]  # fmt: skip


def _dark_landing(hulls: dict[int, str]):
    """Dark boats (camera track ids -> hull number read on them) coming in from 800 m at
    night and stopping 40 m off the beach for 5 min, 400 m apart; and an AIS vessel
    elsewhere."""
    from test_detectors import camera, det_at, frame

    cam = camera()
    frames = []
    for k in range(0, 360, 2):
        off_m = 800 - k * 12.7 if k < 60 else 40
        dets = []
        for j, (tid, hull) in enumerate(sorted(hulls.items())):
            d = det_at(cam, tid, 110.098 + j * 0.004, lat_at(off_m))
            if k >= 30:  # close enough to read after 30 s
                d = msgspec.structs.replace(d, hull_number=hull, hull_confidence=0.8 + k / 3600)
            dets.append(d)
        frames.append(frame("cam1", NIGHT + k * 1000, dets))
    ps = [fix(412000601, NIGHT + k * 10_000, 110.28, lat_at(9000), 3.0, 90.0) for k in range(40)]
    return ctx({"cam1": cam}), frames, ps, [named(412000601, NIGHT)]


def test_a_dark_boat_whose_hull_number_is_read_gets_its_registry_identity(registry_url) -> None:
    c, frames, ps, ss = _dark_landing({7: "琼海口渔12345", 8: "琼海口渔54321"})
    res = run_replay(c, frames=frames, positions=ps, statics=ss, registry=registry_url)
    landings = {
        a.data.vessel.track_id: a
        for a in res.alerts
        if a.data.kind == "unusual_landing" and a.data.status != "closed"
    }
    known, unknown = landings["cam:cam1:7"], landings["cam:cam1:8"]
    f = _factors(known)
    assert known.data.vessel.dark and known.data.vessel.mmsi is None
    assert known.data.vessel.registry.registration_no == "QH-412000008"
    assert "hull number 琼海口渔12345 read by a camera (confidence 0.8" in (
        f["hull_number_registered"].explanation
    )
    assert "registered vessel 'HAI XUN 8' (registration QH-412000008), without AIS" in (
        f["hull_number_registered"].explanation
    )
    assert "seen at Xinbu" in f["watchlist"].explanation  # the hull number is watched
    fu = _factors(unknown)
    assert "琼海口渔54321 read by a camera" in fu["hull_number_unregistered"].explanation
    assert "三无 candidate" in fu["hull_number_unregistered"].explanation
    assert unknown.data.vessel.registry is None and "watchlist" not in fu
    points = [sum(x.weight for x in a.data.factors) for a in (known, unknown)]
    assert points[0] - points[1] == 30.0  # the watchlist's (both clip at 100)
    # without a registry the readings say nothing
    plain = run_replay(c, frames=frames, positions=ps, statics=ss)
    for a in plain.alerts:
        assert not {"hull_number_registered", "hull_number_unregistered"} & set(_factors(a))
