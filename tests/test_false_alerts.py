"""Causes of false alerts on simulated nights, and the goals of noisy nights."""

from __future__ import annotations

import pytest
from test_eval_all import T0_MS, _alert

from pipeline.tools.eval_all import check_noise_goals, noise_check_line
from pipeline.tools.evaluate import evaluate
from pipeline.tools.false_alerts import false_alert_causes, format_false_alerts

pytestmark = pytest.mark.unit

CAM = (110.10, 20.0)
M_FERRY, M_SLOW, M_LAND = 413000005, 413000008, 413000001


def _line(lon0, lat0, lon1, lat1, minutes=60):
    n = minutes * 6 + 1
    return [
        [T0_MS + k * 10_000, lon0 + (lon1 - lon0) * k / (n - 1), lat0 + (lat1 - lat0) * k / (n - 1), 8.0, 0.0]
        for k in range(n)
    ]  # fmt: skip


def _truth() -> dict:
    whole = [[T0_MS, T0_MS + 3_600_000]]
    return {
        "start_t_ms": T0_MS,
        "vessels": [
            {"id": "ferry", "role": "ferry", "mmsi": M_FERRY, "ais_intervals": whole,
             "track": _line(110.10, 20.09, 110.10, 20.11)},
            {"id": "slow", "role": "fishing", "mmsi": M_SLOW, "ais_intervals": whole,
             "track": _line(110.30, 20.05, 110.30, 20.04)},
            {"id": "land", "role": "night_landing", "mmsi": M_LAND, "ais_intervals": whole,
             "track": _line(110.40, 20.05, 110.40, 20.0)},
        ],
        "events": [
            {"id": "ev1", "kind": "unusual_landing", "vessel_ids": ["land"], "mmsi": [M_LAND],
             "optional": False, "t_ms": T0_MS + 30 * 60_000, "lon": 110.40, "lat": 20.0},
        ],
    }  # fmt: skip


def test_each_false_alert_gets_its_cause():
    truth = _truth()
    alerts = [
        # a ferry 10.7 km north, AIS on, placed 2 km out by a far range: unmatched AIS
        _alert("dark_vessel:cam:cam1:7:1", "dark_vessel", 20, 110.10, 20.02, None),
        # nothing east of the camera: clutter
        _alert("dark_vessel:cam:cam1:9:1", "dark_vessel", 25, 110.12, 20.0, None),
        # a slow boat still reporting: dark approach on a reporting vessel
        _alert("dark_approach:mmsi:413000008:1", "dark_approach", 30, 110.30, 20.045, M_SLOW),
        # the planted landing, alerted twice
        _alert("unusual_landing:mmsi:413000001:1", "unusual_landing", 31, 110.40, 20.0, M_LAND),
        _alert("unusual_landing:mmsi:413000001:2", "unusual_landing", 33, 110.4001, 20.0, M_LAND),
    ]
    rows = false_alert_causes(truth, alerts, {"cam1": CAM})
    by_id = {r["alert_id"]: r for r in rows}
    assert by_id["dark_vessel:cam:cam1:7:1"]["cause"] == "unmatched_ais"
    assert "ferry with AIS on, 10.7 km from cam1, placed at 2.2 km" in by_id[
        "dark_vessel:cam:cam1:7:1"]["detail"]  # fmt: skip
    assert by_id["dark_vessel:cam:cam1:9:1"]["cause"] == "clutter"
    assert by_id["dark_approach:mmsi:413000008:1"]["cause"] == "ais_reporting"
    assert by_id["unusual_landing:mmsi:413000001:2"]["cause"] == "duplicate"
    assert "unusual_landing:mmsi:413000001:1" not in by_id
    text = format_false_alerts(rows)
    assert text.startswith("false alerts by cause: ais_reporting 1, clutter 1, duplicate 1")
    goals = check_noise_goals(evaluate(truth, alerts), rows)
    assert goals["duplicates"] == 1 and goals["dark_approach_reporting"] == 1
    assert goals["dark_vessel_precision"] == 0.0 and not goals["met"]
    assert "-> NOT met" in noise_check_line(goals)
    # the landing alone meets the goals
    ok = [alerts[3]]
    assert check_noise_goals(evaluate(truth, ok), false_alert_causes(truth, ok, {}))["met"]
