"""The fault suite's comparison of live alerts with replay (``pipeline.tools.chaos``),
on the alerts replay raises for the suite's short night."""

from __future__ import annotations

import msgspec
import pytest

from pipeline.tools.chaos import ChaosConfig, compare_alerts, format_table, prepare_night


@pytest.fixture(scope="module")
def night_alerts(tmp_path_factory: pytest.TempPathFactory) -> list:
    from pipeline.replay import replay
    from pipeline.tools.chaos import SITE

    night = prepare_night(ChaosConfig.short(), tmp_path_factory.mktemp("chaos"))
    alerts = replay(SITE, [night / "ais.nmea"], [night / "detections.jsonl"])
    assert sum(a.data.status == "open" for a in alerts) >= 2
    return alerts


def _moved(alert, dlat: float):
    pos = msgspec.structs.replace(alert.data.position, lat=alert.data.position.lat + dlat)
    return msgspec.structs.replace(alert, data=msgspec.structs.replace(alert.data, position=pos))


UNTIL = 2**62


@pytest.mark.unit
def test_the_same_alerts_compare_equal_and_re_sends_are_not_duplicates(night_alerts) -> None:
    opens = [a for a in night_alerts if a.data.status == "open"]
    c = compare_alerts(night_alerts, list(reversed(night_alerts)) + opens[:1], UNTIL)
    assert (c.expected, c.equal, len(c.extra), len(c.missing)) == (len(opens), len(opens), 0, 0)
    assert c.duplicate_opens == 0 and c.resent_opens == 1


@pytest.mark.unit
def test_a_position_off_by_more_than_the_tolerance_is_missing_and_extra(night_alerts) -> None:
    opens = [a for a in night_alerts if a.data.status == "open"]
    near = _moved(opens[0], 2e-5)  # about 2 m north: still equal
    far = _moved(opens[1], 2e-4)  # about 22 m: another alert
    got = [near, far, *opens[2:]]
    c = compare_alerts(night_alerts, got, UNTIL)
    assert c.equal == len(opens) - 1
    assert [o.alert_id for o in c.missing] == [opens[1].data.alert_id]
    assert [o.alert_id for o in c.extra] == [opens[1].data.alert_id]
    # a second, different open of an alert already opened is a duplicate open
    c2 = compare_alerts(night_alerts, [*opens, far], UNTIL)
    assert c2.duplicate_opens == 1 and c2.equal == len(opens) and not c2.extra


@pytest.mark.unit
def test_alerts_at_the_end_of_the_night_are_left_out_on_both_sides(night_alerts) -> None:
    from pipeline.tools.evaluate import parse_time_ms

    opens = [a for a in night_alerts if a.data.status == "open"]
    last = max(parse_time_ms(a.data.event_time) for a in opens)
    c = compare_alerts(night_alerts, [], last)
    assert c.expected == len(opens) - sum(parse_time_ms(a.data.event_time) == last for a in opens)
    assert len(c.missing) == c.expected


@pytest.mark.unit
def test_the_table_has_the_issue_columns() -> None:
    from pipeline.tools.chaos import ChaosResult

    text = format_table(
        [
            ChaosResult("worker-kill", 9, 7, 3, 2, 1, 0, 12.34),
            ChaosResult("cpu-load", 9, 9, 0, 0, 0, 0, None),
        ]
    )
    head, rule, *rows = text.splitlines()
    assert [c.strip() for c in head.strip("|").split("|")] == [
        "scenario",
        "alerts expected",
        "equal",
        "extra",
        "missing",
        "duplicate opens",
        "positions lost",
        "recovery time",
    ]
    assert [c.strip() for c in rows[0].strip("|").split("|")][-1] == "12.3 s"
    assert [c.strip() for c in rows[1].strip("|").split("|")][-1] == "-"
