"""Micro-batching for the agents: record batches sent through the app's producer, table changelogs."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import faust
import msgspec

from pipeline import metrics, topics
from pipeline.topics import partition_of
from schemas import records

TAKE_MAX = 1000

#: longest a fetch waits at the broker for data, ms (Faust fixes 1500 ms)
FETCH_MAX_WAIT_MS = 100

#: raw AIS records (each up to ``raw_batch_lines`` lines) per decode micro-batch
RAW_TAKE_MAX = 100

#: most position reports (84 bytes each in base64) and most static reports (at most
#: about 400 bytes each) per ``ais.fixes`` record: under Kafka's 1 MB
FIX_BATCH_MAX = 4000

FIX_STATICS_MAX = 1000

#: longest an agent waits to fill a micro-batch, s. Faust's take waits this long from the
#: start of each round unless the batch fills, so under light load every stage adds up
#: to this much latency. 0.01 s halved the AIS p99 at 5,000 sentences/s, but the tracks
#: agent publishes each vessel's state at the end of a micro-batch, and batches that
#: small made the live trails (and the positions of alerts) differ from replay's.
TAKE_WITHIN_S = 0.05

#: the same for the decode agent: its micro-batches only group raw lines into fix
#: records, the tracks agent's take still decides how often a vessel's state is published
RAW_TAKE_WITHIN_S = 0.01


class Metrics:
    """Counters of one worker, by name (e.g. ``ais.rejected.bad_checksum``)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, counts: dict[str, int] | Counter[str], prefix: str = "") -> None:
        for k, v in counts.items():
            self.counts[prefix + k] += int(v)


def raw_topic(app: faust.App, spec: topics.TopicSpec, *more: topics.TopicSpec) -> faust.TopicT:
    """A Faust topic of raw bytes keys and values for registry topics."""
    return app.topic(
        spec.name,
        *(m.name for m in more),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=spec.partitions,
        internal=False,
    )


_NO_HEADERS: list[tuple[str, bytes]] = []  # aiokafka's batch builder wants a list


class BatchSender:
    """Sends many keyed records with few calls: one aiokafka record batch per
    (topic, partition), through the app's idempotent ``acks=all`` producer.

    Faust's ``topic.send`` costs tens of microseconds per record; appending to a
    record batch costs a few. :meth:`flush` waits until every batch is
    acknowledged, so an agent that flushes before taking its next input commits
    offsets only after its outputs are safe (at least once).
    """

    def __init__(self, app: faust.App):
        self.app = app
        self._batches: dict[tuple[str, int], Any] = {}
        self._full: list[tuple[tuple[str, int], Any]] = []  # closed, not yet submitted
        self._pending: list[asyncio.Future] = []
        self._partition_cache: dict[bytes, int] = {}

    def _producer(self) -> Any:
        # the aiokafka producer Faust started (an IdempotentProducer)
        return self.app.producer._ensure_producer()  # type: ignore[attr-defined]

    def partition(self, key: bytes, n_partitions: int) -> int:
        """Kafka's default partition of ``key`` (murmur2), as every producer computes it."""
        p = self._partition_cache.get(key)
        if p is None:
            if len(self._partition_cache) > 1_000_000:
                self._partition_cache.clear()
            p = self._partition_cache[key] = partition_of(key, n_partitions)
        return p

    def add(
        self, spec: topics.TopicSpec, key: bytes, value: bytes | None, partition: int | None = None
    ) -> None:
        """:meth:`append` to a registry topic, with the topic's headers."""
        headers = list(spec.headers) if spec.headers else None
        self.append(spec.name, spec.partitions, key, value, partition, headers)

    def dead(self, key: bytes, record: records.DeadLetter) -> None:
        """:meth:`add` a dead letter to ``shorewatch.deadletter.v1`` and count it in
        ``shorewatch_dead_letters_total{reason, stage}`` (the stage's bounded part: a
        source id such as ``tcp:10.0.0.5:5631`` counts as ``tcp``)."""
        count_dead_letter(record)
        self.add(topics.DEADLETTER, key, json_encoder.encode(record))

    def append(
        self,
        topic: str,
        n_partitions: int,
        key: bytes,
        value: bytes | None,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Append one record (``value=None``: a tombstone) to ``topic``'s open batch.

        No I/O: a full batch is closed and queued, and :meth:`flush` submits it (the
        producer sends nothing before the agent awaits anyway).
        """
        if partition is None:
            partition = self.partition(key, n_partitions)
        headers = headers or _NO_HEADERS
        slot = (topic, partition)
        batch = self._batches.get(slot)
        if batch is None:
            batch = self._batches[slot] = self._producer().create_batch()
        if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:  # full
            self._full.append((slot, batch))
            batch = self._batches[slot] = self._producer().create_batch()
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                raise ValueError(
                    f"a record of {len(value or b'')} bytes for {topic} does not fit in a "
                    "producer batch; records must stay under the broker's message size"
                )

    async def _submit(self, slot: tuple[str, int], batch: Any) -> None:
        fut = await self._producer().send_batch(batch, slot[0], partition=slot[1])
        self._pending.append(fut)

    async def flush(self) -> None:
        """Submit every open batch and wait until all are acknowledged."""
        full, self._full = self._full, []
        for slot, batch in full:  # before the open batch of the same slot: order kept
            await self._submit(slot, batch)
        batches, self._batches = self._batches, {}
        for slot, batch in batches.items():
            if batch.record_count():
                await self._submit(slot, batch)
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)


class TableWriter:
    """Writes rows of a Faust table without Faust's one-send-per-row changelog path.

    The value goes into the table's local store; the changelog record goes into the
    record batches of a :class:`BatchSender`, on the table's changelog topic and on
    the partition of the key's murmur2 hash, exactly where Faust itself writes it for a
    table with ``use_partitioner=True`` and where it recovers the table from. The
    changelog is acknowledged when the sender flushes, before the agent takes its next
    input (at least once).
    """

    def __init__(self, table: Any, sender: BatchSender, n_partitions: int):
        self.table = table
        self.sender = sender
        self.n_partitions = n_partitions
        self._changelog: str | None = None

    def set(self, key: bytes, value: bytes, partition: int | None = None) -> None:
        """Write a row; ``partition``: its changelog partition when not its key's."""
        self.table.data[key] = value
        self.sender.append(self._topic(), self.n_partitions, key, value, partition)

    def delete(self, key: bytes, partition: int | None = None) -> None:
        self.table.data.pop(key, None)
        self.sender.append(self._topic(), self.n_partitions, key, None, partition)

    def _topic(self) -> str:
        if self._changelog is None:
            self._changelog = self.table.changelog_topic.get_topic_name()
        return self._changelog


def count_dead_letter(record: records.DeadLetter) -> None:
    """``shorewatch_dead_letters_total{reason, stage}`` + 1 for a dead letter the worker sends."""
    metrics.DEAD_LETTERS.labels(reason=record.reason, stage=metrics.source_kind(record.stage)).inc()


def wall_ms() -> int:
    """Wall-clock time, ms since the Unix epoch: when a worker received something."""
    return int(time.time() * 1000)


json_encoder = msgspec.json.Encoder()
