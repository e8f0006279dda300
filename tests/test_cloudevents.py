"""Alert records on Kafka follow the CloudEvents Kafka binding in structured mode: a
consumer using the CloudEvents SDK reads them from the real broker, both when the
worker's area agent publishes them and when replay output is published with
``shorewatch publish``."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka, from_structured
from cloudevents.core.formats.json import JSONFormat

from pipeline import topics
from schemas import compat
from schemas.records import ALERT_DATASCHEMA

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "sites" / "haikou"
START = datetime.fromisoformat("2026-03-08T03:00:00+08:00")


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """A simulated hour on the Haikou shore and its alerts in replay."""
    from pipeline.replay import replay
    from pipeline.simulate import SimConfig, simulate

    out = tmp_path_factory.mktemp("night")
    simulate(SITE, SimConfig(seed=2, start=START, duration_s=3600, fps=0.5), out)
    return out, replay(SITE, [out / "ais.nmea"], [out / "detections.jsonl"])


async def read_alert_records(bootstrap: str, wanted_keys: set[bytes], timeout_s: float = 60.0):
    """Every record of the alert topic whose key is in ``wanted_keys``, from the start."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found = []
    try:
        parts = [TopicPartition(topics.ALERT.name, p) for p in range(topics.ALERT.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for msgs in batch.values():
                found += [m for m in msgs if m.key in wanted_keys]
            positions = {tp: await consumer.position(tp) for tp in parts}
            if all(positions[tp] >= ends[tp] for tp in parts):
                break
    finally:
        await consumer.stop()
    return found


def check_with_sdk(records: list) -> list:
    """Each record read as a CloudEvent by the SDK; the conventions asserted."""
    events = []
    for m in records:
        headers = {k: v for k, v in m.headers}
        assert headers.get("content-type") == b"application/cloudevents+json", headers
        assert not [k for k in headers if k.lower().startswith("ce_")], headers
        msg = KafkaMessage(headers=headers, key=m.key, value=m.value)
        event = from_kafka(msg, JSONFormat())  # binary if any ce_ header, else structured
        attrs = event.get_attributes()
        # the event itself carries partitionkey (not only the key the SDK copies in)
        own = from_structured(KafkaMessage(headers=headers, key=None, value=m.value), JSONFormat())
        data = event.get_data()
        assert own.get_attributes()["partitionkey"] == m.key.decode() == data["alert_id"]
        assert attrs["dataschema"] == ALERT_DATASCHEMA
        assert attrs["specversion"] == "1.0"
        assert attrs["type"] == f"org.shorewatch.alert.{data['kind']}"
        assert attrs["id"] == f"{data['alert_id']}/{data['seq']}"
        events.append(event)
    return events


@pytest.mark.unit
def test_dataschema_points_into_the_published_alert_schema():
    uri, _, pointer = ALERT_DATASCHEMA.partition("#")
    schema = compat.generate(topics.ALERT.value_type, topics.ALERT.name)
    assert uri == schema["$id"]
    node = schema
    for part in pointer.strip("/").split("/"):
        node = node[part]
    assert set(node["required"]) >= {"alert_id", "kind", "status", "severity"}


@pytest.mark.integration
def test_worker_alerts_are_structured_cloudevents(kafka_bootstrap: str, night) -> None:
    """The area agent of a real worker publishes alerts the SDK reads in structured mode."""
    from pipeline.demo import run_through_pipeline

    night_dir, _ = night
    live = asyncio.run(run_through_pipeline(kafka_bootstrap, SITE, night_dir, START, 200.0))
    assert live, "the worker raised no alert"
    keys = {a.data.alert_id.encode() for a in live}
    records = asyncio.run(read_alert_records(kafka_bootstrap, keys))
    events = check_with_sdk(records)
    assert {e.get_attributes()["id"] for e in events} >= {a.id for a in live}


@pytest.mark.integration
def test_published_replay_alerts_are_structured_cloudevents(
    kafka_bootstrap: str, night, tmp_path: Path
) -> None:
    """Replay's JSON lines published with ``shorewatch publish --key partitionkey``."""
    from pipeline.cli import main
    from pipeline.replay import write_alerts

    _, alerts = night
    assert alerts
    path = tmp_path / "alerts.jsonl"
    with path.open("wb") as f:
        write_alerts(alerts, f)
    first = json.loads(path.read_text().splitlines()[0])
    assert first["partitionkey"] == first["data"]["alert_id"]
    argv = ["publish", str(path), "--topic", topics.ALERT.name, "--key", "partitionkey"]
    assert main(argv) == 0
    keys = {a.data.alert_id.encode() for a in alerts}
    records = asyncio.run(read_alert_records(kafka_bootstrap, keys))
    events = check_with_sdk(records)
    assert {e.get_attributes()["id"] for e in events} >= {a.id for a in alerts}
