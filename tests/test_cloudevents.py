"""Alert records on Kafka follow the CloudEvents Kafka binding in structured mode: a
consumer using the CloudEvents SDK reads them from the real broker when replay output
is published with ``shorewatch publish``. The worker's area agent is checked the same
way in ``test_replay_equals_kafka`` (with :func:`read_alert_records` and
:func:`check_with_sdk`), on the alerts of its real worker run."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import msgspec
import msgspec.structs
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka, from_structured
from cloudevents.core.formats.json import JSONFormat

from pipeline import topics
from schemas import compat
from schemas.records import ALERT_DATASCHEMA


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
def test_published_replay_alerts_are_structured_cloudevents(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Replay's JSON lines (``shorewatch replay --out``) published with
    ``shorewatch publish --key partitionkey``."""
    from test_alert_delivery import make_alert

    from pipeline.cli import main
    from pipeline.replay import write_alerts

    alert_id = f"unusual_landing/{uuid.uuid4().hex}"
    # as the engine makes them: with a subject (a null one is no valid CloudEvent attribute)
    alerts = [
        msgspec.structs.replace(make_alert(alert_id, seq), subject="ais:412000001")
        for seq in range(3)
    ]
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
