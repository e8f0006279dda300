"""AIS silence judged by the class and the last reported speed (ITU-R M.1371 intervals)."""

from __future__ import annotations

import pytest
from test_detectors import NIGHT, ctx, fix, lat_at, named, run

from pipeline.core.detectors import Thresholds
from pipeline.core.detectors.base import silence_limit_s

pytestmark = pytest.mark.unit

KN_MPS = 1852.0 / 3600.0


def test_silence_limit_by_class_and_last_speed():
    th = Thresholds()
    # Class A underway, 10 s reports: k x 10 s, but at least 2 min
    assert float(silence_limit_s(10.0, 10.0, th, 10.0)) == 120.0
    # Class B "CS" at 10 kn: 30 s reports; two 3 min intervals should it stop
    assert float(silence_limit_s(30.0, 180.0, th, 10.0)) == 360.0
    # Class B at 3 kn may be below 2 kn (3 min reports) by its next report: two missed
    # 3 min reports are tolerated, plus half an interval
    assert float(silence_limit_s(30.0, 180.0, th, 3.0)) == 630.0
    # ... and so is a speed not known
    assert float(silence_limit_s(30.0, 180.0, th, None)) == 630.0
    # Class B below 2 kn: k x 180 s
    assert float(silence_limit_s(180.0, 180.0, th, 1.5)) == 8 * 180.0
    # a site with a small gap factor still tolerates two missed 3 min reports
    th2 = Thresholds(ais_gap_factor=2.0)
    assert float(silence_limit_s(180.0, 180.0, th2, 1.5)) == 630.0
    # Class B at 10 kn with land 200 m ahead: it stops at the beach before its next
    # report is due, then reports every 3 min; 3 km ahead it does not
    assert float(silence_limit_s(30.0, 180.0, th, 10.0, 200.0)) == 630.0
    assert float(silence_limit_s(30.0, 180.0, th, 10.0, 3000.0)) == 360.0
    th3 = Thresholds(ais_missed_reports=1.0)
    assert float(silence_limit_s(30.0, 180.0, th3, 3.0)) == 450.0


def _slowing_class_b(mmsi: int, missed_then_heard: bool):
    """A Class B at 3 kn heading for the beach from 3 km out, a report every 30 s for 5 min;
    it then slows below 2 kn (3 min reports). With ``missed_then_heard`` its first 3 min
    report is missed and it is heard again 400 s after its last fast report, then every
    3 min; else its AIS stays silent. Returns the fixes and the last fast report's time."""
    ps = []
    d = 3000.0
    t = NIGHT
    for _k in range(11):
        ps.append(fix(mmsi, t, 110.05, lat_at(d), 3.0, 180.0, msg_type=18))
        t += 30_000
        d -= 3.0 * KN_MPS * 30.0
    last_fast = t - 30_000
    if missed_then_heard:
        t = last_fast + 400_000
        d -= 1.5 * KN_MPS * 400.0
        for _k in range(6):
            ps.append(fix(mmsi, t, 110.05, lat_at(d), 1.5, 180.0, msg_type=18))
            t += 180_000
            d -= 1.5 * KN_MPS * 180.0
    return ps, last_fast


def _others():
    return [
        fix(412000299, NIGHT + k * 10_000 + 5, 110.25, lat_at(9000), 10.0, 90.0) for k in range(240)
    ]


def test_one_missed_report_of_a_slowing_class_b_is_no_dark_approach():
    m = 412000301
    ps, _ = _slowing_class_b(m, missed_then_heard=True)
    ss = [named(m, NIGHT, "QIONG YU 1", None, length=15), named(412000299, NIGHT, "OTHER", "BO")]
    _, alerts = run(ctx(), ps + _others(), ss)
    assert [a for a in alerts if a.data.kind == "dark_approach"] == []


def test_a_slowing_class_b_that_stays_silent_is_a_dark_approach_with_the_rule_explained():
    m = 412000302
    ps, last_fast = _slowing_class_b(m, missed_then_heard=False)
    ss = [named(m, NIGHT, "QIONG YU 2", None, length=15), named(412000299, NIGHT, "OTHER", "BO")]
    _, alerts = run(ctx(), ps + _others(), ss)
    opened = [a for a in alerts if a.data.kind == "dark_approach" and a.data.status == "open"]
    assert [a.data.vessel.mmsi for a in opened] == [m]
    from datetime import UTC, datetime

    t_ms = int(datetime.fromisoformat(opened[0].data.event_time).astimezone(UTC).timestamp() * 1000)
    assert t_ms == last_fast + 630_000
    (f,) = [f for f in opened[0].data.factors if f.name == "ais_stopped_near_shore"]
    assert "last report at 3.0 kn, expected every 30 s (180 s if it slows down)" in f.explanation
    assert "silence limit 630 s = 2 missed 180 s reports tolerated" in f.explanation
