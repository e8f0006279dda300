"""The same input gives the same alerts in replay and through the real Kafka pipeline.

One simulated hour on the Haikou shore is replayed in-process
(:func:`pipeline.replay.replay`) and sent through a real worker, the real
connectors and the real broker (:func:`pipeline.tools.demo.run_through_pipeline`). The
alerts opened by both must be the same: kinds, vessels, positions and event times.

Replay ends with a final evaluation of everything it read; the live pipeline has no
"end": the area's watermark stops where its slowest input's did, the allowed AIS
disorder (``ais_disorder_ms``) before the last fix, and input younger than that is still
held when the test stops listening. Alerts whose condition became true that close to
the end (plus an evaluation interval) are left out of the comparison, on both sides.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

import pytest
from test_cloudevents import check_with_sdk, read_alert_records

from pipeline.engine.source_progress import SOURCE_IDLE_MS
from pipeline.engine.watermarks import CAMERA_PATH_IDLE_FACTOR, EVAL_GRID_MS
from pipeline.replay import replay
from pipeline.settings import Settings
from pipeline.tools.demo import run_through_pipeline
from pipeline.tools.simulate import SimConfig, simulate

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "sites" / "haikou"
START = datetime.fromisoformat("2026-03-08T03:00:00+08:00")
DURATION_S = 3600
SPEED = 40.0
#: the live area's watermark stops the AIS disorder before the last input, and an alert
#: can open a while after its event time (a condition that must hold for some time)
TAIL_MS = Settings().ais_disorder_ms + EVAL_GRID_MS + 60_000


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
@pytest.mark.timeout(1800)  # an hour of replay in-process, then of the live worker at 40x
def test_replay_and_kafka_pipeline_give_the_same_alerts(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    night = tmp_path / "night"
    simulate(
        SITE, SimConfig(seed=2, start=START, duration_s=DURATION_S, fps=0.5, noise="none"), night
    )
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
@pytest.mark.timeout(1800)
def test_a_landing_opens_when_the_watermark_passes_its_dwell_without_more_input_of_its_own(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The night stops while a boat sits at the shore, before its dwell is over: nothing of
    the area comes any more, and the cameras fall silent. AIS from elsewhere on the coast
    (outside the site) goes on: the AIS watermark passes the end of the dwell, the quiet
    cameras stop holding the area back once the AIS is far enough ahead of them all
    (every camera offline), the night's receiver goes idle (no record for
    ``SOURCE_IDLE_MS`` of wall time, the decode stage's progress tick notes it with no
    input at all), and the worker opens the
    landing with the event time replay gives on the whole night. Without that AIS the
    area waits: time in an area moves with its inputs only."""
    from connectors.kafka import RecordProducer
    from pipeline import topics
    from pipeline.core.nmea import line_time_ms
    from pipeline.tools.sentinels import sentinel, sentinel_mmsis
    from schemas import records

    night = tmp_path / "night"
    simulate(
        SITE, SimConfig(seed=2, start=START, duration_s=DURATION_S, fps=0.5, noise="none"), night
    )
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
    idle_ms = 120_000  # 0.6 s of wall time at 200x: a camera stall on a busy machine is shorter
    # every camera quiet: the AIS ahead of them all by CAMERA_PATH_IDLE_FACTOR idle times
    elsewhere_ms = true_ms + CAMERA_PATH_IDLE_FACTOR * idle_ms + Settings().ais_disorder_ms

    async def ais_elsewhere() -> None:
        """A fix from far outside the site, long after the dwell and the cameras' input."""
        marks = sentinel_mmsis(topics.AIS_FIXES.partitions)
        lns = [sentinel(m, elsewhere_ms, lon=10.0, lat=56.0) for m in marks]
        async with RecordProducer(kafka_bootstrap, client_id="test-elsewhere") as producer:
            await producer.send_and_wait(
                topics.AIS_RAW,
                "test:elsewhere",
                records.RawAisBatch(source="test:elsewhere", lines=lns, rx_t_ms=[0] * len(lns)),
            )

    live = asyncio.run(
        run_through_pipeline(
            kafka_bootstrap,
            SITE,
            cut,
            START,
            200.0,
            worker_env={"SHOREWATCH_CAMERA_IDLE_MS": str(idle_ms)},
            after_input=ais_elsewhere,
            # the night's receiver holds the AIS progress back until it has been silent for
            # SOURCE_IDLE_MS of wall time while the other source is heard: wait beyond it
            quiet_s=SOURCE_IDLE_MS / 1000 + 15,
            max_wait_s=SOURCE_IDLE_MS / 1000 + 60,
        )
    )
    opened = [a for a in live if a.data.status == "open" and a.data.kind == "unusual_landing"]
    same = [a for a in opened if a.data.alert_id == landing.data.alert_id]
    assert same, (
        f"no live landing {landing.data.alert_id}; opened: {[a.data.alert_id for a in opened]}"
    )
    assert same[0].data.event_time == landing.data.event_time
    assert same[0].data.vessel.mmsi == landing.data.vessel.mmsi
