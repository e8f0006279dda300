"""The topic registry: every Kafka topic Shorewatch reads or writes, in one place.

Co-partitioning (Faust tables must share partition count and key bytes with the
stream that updates them):

- ``ais.position``, ``ais.static`` and ``track`` are keyed by MMSI (decimal text) and
  have the same partition count. The decode agent also writes each micro-batch's
  fixes, grouped by partition, to the internal ``ais.fixes`` topic: one record per
  (micro-batch, partition) with the position reports as packed rows, written to the
  partition every MMSI in it hashes to. The tracks agent consumes those few large
  records instead of one record per fix, and its per-MMSI table lives on the same
  partitions.
- ``fusion.input`` is keyed by area id (the site name) and carries track updates
  and camera frames re-keyed by area, so one worker holds the whole picture of one
  area; scale out with more areas.

Raw AIS is micro-batched: one ``ais.raw`` record holds up to a few hundred lines of
one source in arrival order, keyed by source id, so order is kept per source (what
multi-sentence reassembly needs) and nothing is promised across sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import msgspec
from aiokafka.partitioner import murmur2

from schemas import records

DEFAULT_PARTITIONS = 4

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: its name, key, value record, partitions and retention.

    :param retention_ms: how long records are kept; -1 = forever
    """

    name: str
    key: str
    value_type: type[msgspec.Struct]
    schema_file: str
    partitions: int = DEFAULT_PARTITIONS
    cleanup_policy: Literal["delete", "compact", "compact,delete"] = "delete"
    retention_ms: int = 7 * DAY_MS
    internal: bool = False
    headers: tuple[tuple[str, bytes], ...] = ()
    """Kafka headers every record of the topic carries."""

    def config(self) -> dict[str, str]:
        """Topic-level configuration as Kafka expects it."""
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
        }


AIS_RAW = TopicSpec(
    "shorewatch.ais.raw.v1",
    "source id",
    records.RawAisBatch,
    "ais.raw.v1.json",
    retention_ms=3 * DAY_MS,
)
AIS_POSITION = TopicSpec(
    "shorewatch.ais.position.v1", "mmsi", records.AisPosition, "ais.position.v1.json"
)
AIS_STATIC = TopicSpec(
    "shorewatch.ais.static.v1",
    "mmsi",
    records.AisStatic,
    "ais.static.v1.json",
    cleanup_policy="compact,delete",
    retention_ms=30 * DAY_MS,
)
TRACK = TopicSpec("shorewatch.track.v1", "mmsi", records.Track, "track.v1.json")
CAMERA_DETECTION = TopicSpec(
    "shorewatch.camera.detection.v1",
    "camera id",
    records.CameraFrame,
    "camera.detection.v1.json",
)
CAMERA_EVENT = TopicSpec(
    "shorewatch.camera.event.v1", "camera id", records.CameraEvent, "camera.event.v1.json"
)
CAMERA_STATUS = TopicSpec(
    "shorewatch.camera.status.v1",
    "camera id",
    records.CameraStatus,
    "camera.status.v1.json",
    cleanup_policy="compact,delete",
)
CLOUDEVENTS_STRUCTURED = (("content-type", b"application/cloudevents+json"),)
"""The CloudEvents Kafka binding's structured mode: the event is the value (no ``ce_`` headers)."""

ALERT = TopicSpec(
    "shorewatch.alert.v1",
    "alert id",
    records.Alert,
    "alert.v1.json",
    retention_ms=90 * DAY_MS,
    headers=CLOUDEVENTS_STRUCTURED,
)
DEADLETTER = TopicSpec(
    "shorewatch.deadletter.v1",
    "source id",
    records.DeadLetter,
    "deadletter.v1.json",
    retention_ms=30 * DAY_MS,
)

AIS_FIXES = TopicSpec(
    "shorewatch.ais.fixes.v2",
    "mmsi (partition set by MMSI)",
    records.FixColumns,
    "ais.fixes.v2.json",
    retention_ms=1 * DAY_MS,
    internal=True,
)
FUSION_INPUT = TopicSpec(
    "shorewatch.fusion.input.v1",
    "area id",
    records.FusionInput,
    "fusion.input.v1.json",
    retention_ms=1 * DAY_MS,
    internal=True,
)

ALERT_ACTION = TopicSpec(
    "shorewatch.alert.action.v1",
    "alert id",
    records.AlertAction,
    "alert.action.v1.json",
    retention_ms=-1,
)

RADAR_TARGET = TopicSpec(
    "shorewatch.radar.target.v1",
    "radar id",
    records.RadarTarget,
    "radar.target.v1.json",
)
CAMERA_LOCK = TopicSpec(
    "shorewatch.camera.lock.v1",
    "camera id",
    records.CameraLock,
    "camera.lock.v1.json",
    partitions=1,
    cleanup_policy="compact",
    retention_ms=-1,
)

ALL: tuple[TopicSpec, ...] = (
    AIS_RAW,
    AIS_POSITION,
    AIS_STATIC,
    TRACK,
    CAMERA_DETECTION,
    CAMERA_EVENT,
    CAMERA_STATUS,
    ALERT,
    DEADLETTER,
    AIS_FIXES,
    FUSION_INPUT,
    ALERT_ACTION,
    RADAR_TARGET,
    CAMERA_LOCK,
)

BY_NAME: dict[str, TopicSpec] = {t.name: t for t in ALL}


def partition_of(key: bytes, n_partitions: int) -> int:
    """Kafka's default partition of ``key``: murmur2 of the key bytes, as every producer
    (Java, librdkafka, aiokafka, Faust) computes it."""
    return (murmur2(key) & 0x7FFFFFFF) % n_partitions
