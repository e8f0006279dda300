"""The same input gives the same alerts in replay and through the real Kafka pipeline.

One simulated hour on the Haikou shore is replayed in-process
(:func:`pipeline.replay.replay`) and sent through a real worker, the real
connectors and the real broker (:func:`pipeline.tools.demo.run_through_pipeline`). The
alerts opened by both must be the same: kinds, vessels, positions and event times.

Replay ends with a final evaluation of everything it read; the live pipeline has no
"end": what arrived during its last lateness window (plus one evaluation tick) is
still held when the test stops listening. Alerts whose condition became true that
close to the end are left out of the comparison, on both sides.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

import pytest
from test_cloudevents import check_with_sdk, read_alert_records

from pipeline.replay import replay
from pipeline.tools.demo import run_through_pipeline
from pipeline.tools.simulate import SimConfig, simulate

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "sites" / "haikou"
START = datetime.fromisoformat("2026-03-08T03:00:00+08:00")
DURATION_S = 3600
SPEED = 40.0
#: the live pipeline's lateness (2 s of wall time at SPEED, see pipeline.tools.demo) and a tick
TAIL_MS = int(2000 * SPEED) + 2000


def _opened(alerts: list, until_ms: int) -> dict[str, tuple]:
    out = {}
    for a in alerts:
        d = a.data
        t_ms = int(datetime.fromisoformat(d.event_time.replace("Z", "+00:00")).timestamp() * 1000)
        if d.status == "open" and t_ms < until_ms:
            out[d.alert_id] = (
                d.kind,
                d.vessel.mmsi,
                d.vessel.dark,
                d.event_time,
                round(d.position.lat, 4),
                round(d.position.lon, 4),
            )
    return out


@pytest.mark.integration
def test_replay_and_kafka_pipeline_give_the_same_alerts(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    night = tmp_path / "night"
    simulate(SITE, SimConfig(seed=2, start=START, duration_s=DURATION_S, fps=0.5), night)
    offline = replay(SITE, [night / "ais.nmea"], [night / "detections.jsonl"])
    live = asyncio.run(run_through_pipeline(kafka_bootstrap, SITE, night, START, SPEED))
    # the worker's alert records are structured-mode CloudEvents for the SDK
    keys = {a.data.alert_id.encode() for a in live}
    events = check_with_sdk(asyncio.run(read_alert_records(kafka_bootstrap, keys)))
    assert {e.get_attributes()["id"] for e in events} >= {a.id for a in live}

    until_ms = int(START.timestamp() * 1000) + DURATION_S * 1000 - TAIL_MS
    want = _opened(offline, until_ms)
    got = _opened(live, until_ms)
    assert want, "the simulated hour raised no alert in replay: nothing to compare"
    assert any(k[0] == "unusual_landing" for k in want.values())
    missing = {k: v for k, v in want.items() if k not in got}
    extra = {k: v for k, v in got.items() if k not in want}
    differ = {k: (want[k], got[k]) for k in want.keys() & got.keys() if want[k] != got[k]}
    assert not missing and not extra and not differ, (
        f"replay only: {missing}\nKafka only: {extra}\ndifferent: {differ}"
    )


@pytest.mark.integration
def test_the_live_area_clock_raises_a_landing_after_the_input_stops(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The input stops while a boat sits at the shore, before its dwell is over: no
    input will ever trigger the detectors again, yet the worker's area clock opens the
    landing alert, with the event time replay gives on the whole night."""
    from pipeline.core.nmea import line_time_ms

    night = tmp_path / "night"
    simulate(SITE, SimConfig(seed=2, start=START, duration_s=DURATION_S, fps=0.5), night)
    offline = replay(SITE, [night / "ais.nmea"], [night / "detections.jsonl"])
    landing = min(
        (a for a in offline if a.data.kind == "unusual_landing" and a.data.status == "open"),
        key=lambda a: a.data.event_time,
    )
    true_ms = int(
        datetime.fromisoformat(landing.data.event_time.replace("Z", "+00:00")).timestamp() * 1000
    )
    cut_ms = true_ms - 90_000  # the input ends 90 s before the dwell does
    cut = tmp_path / "cut"
    cut.mkdir()
    lines = (night / "ais.nmea").read_text().splitlines()
    kept = [ln for ln in lines if (line_time_ms(ln) or 0) <= cut_ms]
    (cut / "ais.nmea").write_text("\n".join(kept) + "\n")
    frames = (night / "detections.jsonl").read_text().splitlines()
    (cut / "detections.jsonl").write_text(
        "\n".join(f for f in frames if json.loads(f)["t_ms"] <= cut_ms) + "\n"
    )
    speed = 200.0
    lateness_ms = int(2000 * speed)  # as run_through_pipeline sets it
    live = asyncio.run(
        run_through_pipeline(
            kafka_bootstrap,
            SITE,
            cut,
            START,
            speed,
            worker_env={"SHOREWATCH_AREA_IDLE_MAX_MS": str(lateness_ms + 300_000)},
        )
    )
    opened = [a for a in live if a.data.status == "open" and a.data.kind == "unusual_landing"]
    same = [a for a in opened if a.data.alert_id == landing.data.alert_id]
    assert same, (
        f"no live landing {landing.data.alert_id}; opened: {[a.data.alert_id for a in opened]}"
    )
    assert same[0].data.event_time == landing.data.event_time
    assert same[0].data.vessel.mmsi == landing.data.vessel.mmsi
