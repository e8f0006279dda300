"""Scoring alerts against ground truth, on a small hand-made truth."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from pipeline.cli import main
from pipeline.tools.evaluate import combine, evaluate, format_table, load_alerts, plot
from schemas.records import Alert, AlertData, AlertEvidence, AlertVessel, AlertZone, GeoPoint

T0_MS = 1_772_906_400_000  # 2026-03-08T02:00:00+08:00
M_LAND, M_DARK, M_A, M_B, M_FERRY = 413000001, 413000002, 413000003, 413000004, 413000005


def _track(t_min, lon0, lat0, lon1, lat1):
    n = len(t_min)
    return [
        [
            T0_MS + int(t * 60_000),
            lon0 + (lon1 - lon0) * i / max(n - 1, 1),
            lat0 + (lat1 - lat0) * i / max(n - 1, 1),
            5.0,
            0.0,
        ]
        for i, t in enumerate(t_min)
    ]


def _truth() -> dict:
    ev = [
        # landing of an AIS vessel at 03:00 local (t0 + 60 min)
        {"id": "ev1", "kind": "unusual_landing", "vessel_ids": ["land"], "mmsi": [M_LAND], "optional": False,
         "t_ms": T0_MS + 3_600_000, "lon": 110.355, "lat": 20.052},
        # dark approach: AIS off at +30 min, then the landing at +50 min
        {"id": "ev2", "kind": "dark_approach", "vessel_ids": ["dark"], "mmsi": [M_DARK], "optional": False,
         "t_ms": T0_MS + 1_800_000, "lon": 110.20, "lat": 20.08},
        {"id": "ev3", "kind": "unusual_landing", "vessel_ids": ["dark"], "mmsi": [M_DARK], "optional": False,
         "t_ms": T0_MS + 3_000_000, "lon": 110.232, "lat": 20.045},
        {"id": "ev4", "kind": "dark_vessel", "vessel_ids": ["dark"], "mmsi": [M_DARK], "optional": True,
         "t_ms": T0_MS + 1_800_000, "lon": 110.20, "lat": 20.08},
        # skiff without AIS: seen at +70 min, lands at +75 min
        {"id": "ev5", "kind": "dark_vessel", "vessel_ids": ["skiff"], "mmsi": [], "optional": False,
         "t_ms": T0_MS + 4_200_000, "lon": 110.38, "lat": 20.08},
        {"id": "ev6", "kind": "unusual_landing", "vessel_ids": ["skiff"], "mmsi": [], "optional": False,
         "t_ms": T0_MS + 4_500_000, "lon": 110.3765, "lat": 20.072},
        # rendezvous from +10 to +35 min
        {"id": "ev7", "kind": "rendezvous", "vessel_ids": ["a", "b"], "mmsi": [M_A, M_B], "optional": False,
         "t_ms": T0_MS + 600_000, "t_end_ms": T0_MS + 2_100_000, "lon": 110.45, "lat": 20.11},
    ]  # fmt: skip
    vessels = [
        {"id": "land", "role": "night_landing", "mmsi": M_LAND, "track": _track([40, 60], 110.40, 20.10, 110.355, 20.052)},
        {"id": "dark", "role": "dark_approach", "mmsi": M_DARK, "track": _track([20, 50], 110.15, 20.10, 110.232, 20.045)},
        {"id": "skiff", "role": "skiff", "mmsi": None, "track": _track([60, 75], 110.42, 20.12, 110.3765, 20.072)},
        {"id": "a", "role": "rendezvous_mother", "mmsi": M_A, "track": _track([0, 40], 110.45, 20.11, 110.45, 20.11)},
        {"id": "b", "role": "rendezvous_boat", "mmsi": M_B, "track": _track([0, 40], 110.451, 20.11, 110.451, 20.11)},
        {"id": "ferry", "role": "ferry", "mmsi": M_FERRY, "track": _track([0, 90], 110.22, 20.27, 110.284, 20.037)},
    ]  # fmt: skip
    return {"site": "haikou", "seed": 0, "start": "2026-03-08T02:00:00+08:00", "start_t_ms": T0_MS,
            "duration_s": 7200, "vessels": vessels, "events": ev}  # fmt: skip


def _alert(aid, kind, minutes, lon, lat, mmsi=None, seq=0, status="open") -> Alert:
    et = datetime.fromtimestamp((T0_MS + minutes * 60_000) / 1000, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    data = AlertData(
        alert_id=aid, kind=kind, status=status, severity=60, factors=[], event_time=et,
        position=GeoPoint(lat=lat, lon=lon), vessel=AlertVessel(mmsi=mmsi, name=None, dark=mmsi is None, track_id="t"),
        zone=AlertZone(name=None, kind=None, distance_m=None), evidence=AlertEvidence(), site="haikou", seq=seq,
    )  # fmt: skip
    return Alert(
        id=f"{aid}/{seq}", source="/test", type=f"org.shorewatch.alert.{kind}", time=et, data=data
    )


def _alerts() -> list[Alert]:
    return [
        # ev1 found 3 min late, 200 m off; its update and close later must not count again
        _alert("A1", "unusual_landing", 63, 110.357, 20.0525, M_LAND),
        _alert("A1", "unusual_landing", 70, 110.2, 20.2, M_LAND, seq=1, status="update"),
        _alert("A1", "unusual_landing", 90, 110.2, 20.2, M_LAND, seq=2, status="closed"),
        # a second alert for the same landing: a duplicate (false positive)
        _alert("A2", "unusual_landing", 64, 110.355, 20.052, None),
        # ev3 missed (no alert); ev2 found 4 min after AIS went off
        _alert("A3", "dark_approach", 34, 110.205, 20.078, M_DARK),
        # the optional dark_vessel of the dark-approach vessel: neither tp nor fp
        _alert("A4", "dark_vessel", 40, 110.215, 20.066, None),
        # the skiff: dark vessel and landing without MMSI, matched by position
        _alert("A5", "dark_vessel", 71, 110.389, 20.086, None),
        _alert("A6", "unusual_landing", 76, 110.377, 20.0722, None),
        # rendezvous alert when the 15 min condition holds, naming one of the two
        _alert("A7", "rendezvous", 25, 110.4505, 20.1101, M_B),
        # false alarms: a ferry "landing" at Xiuying, a landing by the right vessel but 5 km away,
        # a landing of the skiff attributed to an AIS vessel
        _alert("F1", "unusual_landing", 85, 110.284, 20.037, M_FERRY),
        _alert("F2", "unusual_landing", 61, 110.40, 20.03, M_LAND),
        _alert("F3", "loitering", 20, 110.45, 20.11, M_A),
    ]


@pytest.mark.unit
def test_evaluate_counts() -> None:
    res = evaluate(_truth(), _alerts())
    ul = res["unusual_landing"]
    assert (ul["tp"], ul["fp"], ul["fn"], ul["duplicates"]) == (2, 3, 1, 1)
    assert ul["precision"] == pytest.approx(2 / 5)
    assert ul["recall"] == pytest.approx(2 / 3)
    assert ul["f1"] == pytest.approx(2 * 0.4 * (2 / 3) / (0.4 + 2 / 3))
    assert sorted(ul["delays_s"]) == [60.0, 180.0]
    assert ul["delay_median_s"] == pytest.approx(120.0)
    assert 150 < max(ul["position_errors_m"]) < 260  # A1 is ~210 m off the landing point
    da = res["dark_approach"]
    assert (da["tp"], da["fp"], da["fn"], da["delay_median_s"]) == (1, 0, 0, 240.0)
    dv = res["dark_vessel"]
    assert (dv["tp"], dv["fp"], dv["fn"], dv["optional_matched"]) == (1, 0, 0, 1)
    rv = res["rendezvous"]
    assert (rv["tp"], rv["fp"], rv["fn"], rv["delay_median_s"]) == (1, 0, 0, 900.0)
    lo = res["loitering"]  # no loitering was planted (nor marked optional here)
    assert (lo["tp"], lo["fp"], lo["fn"], lo["precision"], lo["recall"]) == (0, 1, 0, 0.0, None)


@pytest.mark.unit
def test_evaluate_edge_cases() -> None:
    truth = _truth()
    res = evaluate(truth, [])
    assert res["unusual_landing"]["fn"] == 3 and res["unusual_landing"]["precision"] is None
    assert res["unusual_landing"]["recall"] == 0.0
    # too late: 40 min after the landing is outside the 30 min window
    res = evaluate(truth, [_alert("L", "unusual_landing", 100.5, 110.355, 20.052, M_LAND)])
    assert (res["unusual_landing"]["tp"], res["unusual_landing"]["fp"]) == (0, 1)
    # the order of the alerts in the file does not change the result
    a = _alerts()
    assert evaluate(truth, a[::-1]) == evaluate(truth, a)
    pooled = combine([evaluate(truth, a), evaluate(truth, a)])
    assert pooled["unusual_landing"]["tp"] == 4 and pooled["unusual_landing"]["fn"] == 2
    assert pooled["unusual_landing"]["precision"] == pytest.approx(0.4)
    table = format_table(evaluate(truth, a))
    assert (
        "unusual_landing"
        in table.splitlines()[2 + sorted(evaluate(truth, a)).index("unusual_landing")]
    )


@pytest.mark.unit
def test_eval_command_json_and_plot(tmp_path: Path, capsys) -> None:
    truth_path = tmp_path / "truth.json"
    truth_path.write_text(json.dumps(_truth()))
    alerts_path = tmp_path / "alerts.jsonl"
    alerts_path.write_bytes(b"".join(msgspec.json.encode(a) + b"\n" for a in _alerts()))
    assert len(load_alerts(alerts_path)) == len(_alerts())
    assert main(["eval", "--truth", str(truth_path), "--alerts", str(alerts_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {
        "unusual_landing",
        "dark_approach",
        "dark_vessel",
        "rendezvous",
        "loitering",
    }
    for r in out.values():
        assert {"precision", "recall", "f1", "tp", "fp", "fn", "delay_median_s"} <= set(r)
    assert main(["eval", "--truth", str(truth_path), "--alerts", str(alerts_path)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split()[:4] == ["kind", "prec", "recall", "f1"]
    png = plot(
        _truth(),
        _alerts(),
        tmp_path / "eval.png",
        site_dir=Path(__file__).resolve().parents[1] / "sites" / "haikou",
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.unit
def test_optional_events_absorb_one_alert_each() -> None:
    alerts = _alerts() + [_alert("A4b", "dark_vessel", 45, 110.222, 20.060, None)]
    dv = evaluate(_truth(), alerts)["dark_vessel"]
    # A4 is accepted for the optional event; A4b, a second alert about the same boat, is not
    assert (dv["tp"], dv["optional_matched"], dv["duplicates"], dv["fp"]) == (1, 1, 1, 1)
