"""``eval all``: pooling seeds, the goal check and port false alerts on hand-made nights."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import pipeline.tools.eval_all as eval_all
from pipeline.cli import main
from pipeline.site import SiteZone, circle_polygon
from pipeline.tools.eval_all import (
    NightSpec,
    check_goals,
    check_line,
    ensure_night,
    port_false_alerts,
    run_eval_all,
)
from pipeline.tools.evaluate import combine, evaluate
from schemas.records import Alert, AlertData, AlertEvidence, AlertVessel, AlertZone, GeoPoint

REPO = Path(__file__).resolve().parents[1]
T0_MS = 1_772_906_400_000  # 2026-03-08T02:00:00+08:00
M_LAND, M_FERRY, M_CARGO, M_FISH = 413000001, 413000005, 413000006, 413000007
PORT_LONLAT = (110.284, 20.037)
PORT = SiteZone("Xiuying port", "port", circle_polygon(*PORT_LONLAT, 400.0), PORT_LONLAT, 400.0)


def _track(t_min: list[float], lon0: float, lat0: float, lon1: float, lat1: float) -> list:
    n = len(t_min)
    return [
        [T0_MS + int(t * 60_000), lon0 + (lon1 - lon0) * i / max(n - 1, 1),
         lat0 + (lat1 - lat0) * i / max(n - 1, 1), 5.0, 0.0]
        for i, t in enumerate(t_min)
    ]  # fmt: skip


def _truth(landings: int = 1) -> dict:
    events = [
        {"id": f"ev{i}", "kind": "unusual_landing", "vessel_ids": ["land"], "mmsi": [M_LAND],
         "optional": False, "t_ms": T0_MS + (60 + 30 * i) * 60_000, "lon": 110.355 + 0.05 * i,
         "lat": 20.052}
        for i in range(landings)
    ]  # fmt: skip
    vessels = [
        {"id": "land", "role": "night_landing", "mmsi": M_LAND, "track": _track([40, 60], 110.40, 20.10, 110.355, 20.052)},
        {"id": "ferry", "role": "ferry", "mmsi": M_FERRY, "track": _track([0, 90], 110.22, 20.27, *PORT_LONLAT)},
        {"id": "cargo", "role": "anchored_cargo", "mmsi": M_CARGO, "track": _track([0, 90], 110.30, 20.20, 110.30, 20.20)},
        {"id": "fish", "role": "fishing", "mmsi": M_FISH, "track": _track([0, 90], 110.50, 20.15, 110.50, 20.15)},
    ]  # fmt: skip
    return {"site": "haikou", "seed": 0, "start_t_ms": T0_MS, "vessels": vessels, "events": events}


def _alert(aid: str, kind: str, minutes: float, lon: float, lat: float, mmsi: int | None) -> Alert:
    et = datetime.fromtimestamp((T0_MS + minutes * 60_000) / 1000, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    data = AlertData(
        alert_id=aid, kind=kind, status="open", severity=60, factors=[], event_time=et,
        position=GeoPoint(lat=lat, lon=lon), vessel=AlertVessel(mmsi=mmsi, name=None, dark=mmsi is None, track_id="t"),
        zone=AlertZone(name=None, kind=None, distance_m=None), evidence=AlertEvidence(), site="haikou", seq=0,
    )  # fmt: skip
    return Alert(id=aid, source="/test", type=f"org.shorewatch.alert.{kind}", time=et, data=data)


@pytest.mark.unit
def test_port_false_alerts_by_role_and_by_zone() -> None:
    truth = _truth()
    alerts = [
        _alert("ok", "unusual_landing", 62, 110.3552, 20.0521, M_LAND),  # the planted landing
        _alert("ferry", "unusual_landing", 88, *PORT_LONLAT, M_FERRY),  # ferry berthing: role
        _alert("cargo", "loitering", 30, 110.30, 20.20, M_CARGO),  # far from any zone: role
        _alert("dark", "dark_vessel", 50, 110.2845, 20.032, None),  # ~160 m off the port: zone
        _alert("fish", "loitering", 30, 110.50, 20.15, M_FISH),  # a false alert, not port traffic
        # a second alert of the landing vessel near the port: a duplicate, but of a planted vessel
        _alert("dup", "unusual_landing", 61, 110.2838, 20.0372, M_LAND),
    ]
    found = port_false_alerts(truth, alerts, [PORT], margin_m=300.0)
    by_id = {f["alert_id"]: f for f in found}
    assert set(by_id) == {"ferry", "cargo", "dark"}
    assert by_id["ferry"]["role"] == "ferry" and by_id["ferry"]["zone_distance_m"] == 0.0
    assert by_id["cargo"]["role"] == "anchored_cargo" and by_id["cargo"]["zone_distance_m"] > 5000
    assert by_id["dark"]["role"] is None and 0 < by_id["dark"]["zone_distance_m"] < 300
    # without zones only the roles count; with a tight margin the dark alert is out
    assert {f["alert_id"] for f in port_false_alerts(truth, alerts)} == {"ferry", "cargo"}
    assert "dark" not in {f["alert_id"] for f in port_false_alerts(truth, alerts, [PORT], 10.0)}


@pytest.mark.unit
def test_goals_over_pooled_seeds() -> None:
    t1, t2 = _truth(1), _truth(2)
    seed1 = evaluate(t1, [_alert("a", "unusual_landing", 62, 110.355, 20.052, M_LAND)])
    seed2 = evaluate(t2, [_alert("b", "unusual_landing", 62, 110.355, 20.052, M_LAND),
                          _alert("c", "unusual_landing", 92, 110.405, 20.052, M_LAND)])  # fmt: skip
    pooled = combine([seed1, seed2])
    goals = check_goals(pooled, port_false=0)
    assert goals["landing_recall"] == 1.0 and goals["landing_precision"] == 1.0 and goals["met"]
    assert check_line(goals) == (
        "unusual_landing recall 1.000 (goal 1.0), precision 1.000 (goal >= 0.95); "
        "ferry/port false alerts: 0 -> met"
    )
    # one port false alert is enough to miss the goal
    assert not check_goals(pooled, port_false=1)["met"]
    # one missed landing over the seeds: recall 2/3
    missed = combine(
        [seed1, evaluate(t2, [_alert("b", "unusual_landing", 62, 110.355, 20.052, M_LAND)])]
    )
    g = check_goals(missed, 0)
    assert g["landing_recall"] == pytest.approx(2 / 3) and g["landing_precision"] == 1.0
    assert not g["met"]
    # 20 landings found and one false one: precision 20/21 = 0.952 still meets the goal
    one_fp = {"unusual_landing": {**seed1["unusual_landing"], "tp": 20, "fp": 1, "fn": 0}}
    g = check_goals(combine([one_fp]), 0)
    assert g["landing_precision"] == pytest.approx(20 / 21) and g["met"]
    one_fp["unusual_landing"]["fp"] = 2  # 20/22 = 0.909
    assert not check_goals(combine([one_fp]), 0)["met"]
    # nothing planted, nothing alerted: the goal cannot be claimed
    g = check_goals({}, 0)
    assert g["landing_recall"] is None and not g["met"]
    assert "recall - (goal 1.0), precision - " in check_line(g)


@pytest.mark.unit
def test_nights_are_cached_per_parameters(tmp_path: Path, monkeypatch) -> None:
    calls = []

    def fake_simulate(site, cfg, out_dir):
        calls.append(cfg)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name in ("ais.nmea", "detections.jsonl"):
            (out / name).write_text("")
        truth = {"seed": cfg.seed, "events": [], "vessels": []}
        (out / "truth.json").write_text(json.dumps(truth))
        return truth

    monkeypatch.setattr("pipeline.tools.simulate.simulate", fake_simulate)
    spec = NightSpec(3, "2026-03-08T02:00:00+08:00", 3600, 1.0)
    site_dir = REPO / "sites" / "haikou"
    assert ensure_night(None, site_dir, spec, tmp_path)[1] is True
    assert ensure_night(None, site_dir, spec, tmp_path) == (
        {"seed": 3, "events": [], "vessels": []},
        False,
    )
    assert ensure_night(None, site_dir, NightSpec(3, spec.start_iso, 3600, 0.5), tmp_path)[1]
    (tmp_path / "detections.jsonl").unlink()  # an incomplete night is simulated again
    assert ensure_night(None, site_dir, NightSpec(3, spec.start_iso, 3600, 0.5), tmp_path)[1]
    assert len(calls) == 3


@pytest.mark.unit
def test_cli_json_pools_seeds(tmp_path: Path, monkeypatch, capsys) -> None:
    truth = _truth(1)

    def fake_replay_seed(site_dir, spec, night_dir, radar=False):
        alerts = [_alert("a", "unusual_landing", 62, 110.355, 20.052, M_LAND)]
        if spec.seed == 2:
            alerts.append(_alert("f", "unusual_landing", 80, *PORT_LONLAT, M_FERRY))
        port = port_false_alerts(truth, alerts, [PORT])
        return {"seed": spec.seed, "mode": "replay", "simulated": True, "run_s": 0.0,
                "alerts": len(alerts), "port_false_alerts": port, "metrics": evaluate(truth, alerts),
                "dark_first_alerts": []}  # fmt: skip

    monkeypatch.setattr(eval_all, "_replay_seed", fake_replay_seed)
    code = main(["eval", "all", "--seeds", "1,2", "--no-kafka", "--json", "--out", str(tmp_path)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"replay", "kafka", "seeds", "goals"}
    assert [s["seed"] for s in out["seeds"]] == [1, 2] and out["kafka"] is None
    ul = out["replay"]["unusual_landing"]
    assert (ul["tp"], ul["fp"], ul["fn"], ul["precision"]) == (2, 1, 0, pytest.approx(2 / 3))
    assert out["goals"]["replay"]["port_false_alerts"] == 1 and not out["goals"]["replay"]["met"]
    assert json.loads((tmp_path / "summary.json").read_text())["replay"] == out["replay"]
    # --strict turns a missed goal into exit code 1
    assert (
        main(["eval", "all", "--seeds", "1", "--no-kafka", "--strict", "--out", str(tmp_path)]) == 0
    )
    assert (
        main(["eval", "all", "--seeds", "2", "--no-kafka", "--strict", "--out", str(tmp_path)]) == 1
    )
    text = capsys.readouterr().out
    assert "ferry/port false alerts: 1 -> NOT met" in text


@pytest.mark.unit
def test_run_eval_all_without_kafka(tmp_path: Path, monkeypatch) -> None:
    seen = []
    monkeypatch.setattr(
        eval_all, "_replay_seed",
        lambda site_dir, spec, night_dir, radar=False: seen.append((spec, Path(night_dir).name)) or {
            "seed": spec.seed, "simulated": False, "run_s": 0.0, "alerts": 0,
            "port_false_alerts": [], "metrics": evaluate(_truth(1), []), "dark_first_alerts": []},
    )  # fmt: skip
    lines: list[str] = []
    res = run_eval_all(REPO / "sites" / "haikou", [4, 5], 7200, "2026-03-08T02:00:00+08:00",
                       tmp_path, say=lines.append)  # fmt: skip
    assert [n for _s, n in seen] == ["replay-seed-4", "replay-seed-5"]
    assert seen[0][0] == NightSpec(4, "2026-03-08T02:00:00+08:00", 7200, 1.0)
    assert res["replay"]["unusual_landing"]["fn"] == 2 and res["kafka"] is None
    assert res["goals"]["kafka"] is None and not res["goals"]["replay"]["met"]
    assert any("replay seed 5" in line and "(cached night)" in line for line in lines)
