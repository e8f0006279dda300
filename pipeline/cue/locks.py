"""Operator locks on PTZ cameras: ``shorewatch cue lock CAMERA`` / ``unlock`` / ``locks``.

A lock is a :class:`~schemas.records.CameraLock` record on the compacted topic
``shorewatch.camera.lock.v1`` keyed by camera id; the newest record of a camera is its
state. The cue service reads the topic from the beginning and follows it, so a lock taken
from the command line (or, later, the console) holds across restarts of either.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import math
import time

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

from connectors.kafka import RecordProducer
from pipeline.errors import BrokerError
from pipeline.settings import Settings
from pipeline.topics import CAMERA_LOCK
from schemas.records import CameraLock

__all__ = [
    "behind",
    "partitions",
    "cmd_lock",
    "cmd_locks",
    "publish_lock",
    "read_locks",
    "until_of",
]

_dec = msgspec.json.Decoder(CameraLock)


async def partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of a topic, from fresh metadata (a consumer without a subscription
    has none cached, and ``topics()`` does not keep what it fetched)."""
    cluster = await consumer._client.fetch_all_metadata()
    found = cluster.partitions_for_topic(topic)
    if not found:
        raise BrokerError(f"topic {topic} not found (run `shorewatch topics create`)")
    return [TopicPartition(topic, p) for p in sorted(found)]


async def behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    """Whether the consumer has yet to read up to ``ends`` on any partition."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


def until_of(lock: CameraLock) -> float | None:
    """When a lock record ends, ms UTC: ``math.inf`` until released, ``None`` for a release."""
    if not lock.locked:
        return None
    return math.inf if lock.until_t_ms is None else float(lock.until_t_ms)


async def publish_lock(
    bootstrap: str,
    camera_id: str,
    locked: bool,
    *,
    user: str,
    reason: str | None = None,
    for_s: float | None = None,
) -> CameraLock:
    """Publish a lock (or a release) of a camera and wait for the broker's acknowledgement."""
    now = time.time_ns() // 1_000_000
    rec = CameraLock(
        camera_id=camera_id,
        locked=locked,
        t_ms=now,
        user=user,
        reason=reason,
        until_t_ms=now + int(for_s * 1000) if (locked and for_s) else None,
    )
    async with RecordProducer(bootstrap, client_id="shorewatch-cue-lock") as producer:
        await producer.send_and_wait(CAMERA_LOCK, camera_id, rec)
    return rec


async def read_locks(bootstrap: str, timeout_s: float = 15.0) -> dict[str, CameraLock]:
    """The newest lock record of every camera (the whole compacted topic)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="shorewatch-cue-locks"
    )
    await asyncio.wait_for(consumer.start(), timeout_s)
    out: dict[str, CameraLock] = {}
    try:
        parts = await partitions(consumer, CAMERA_LOCK.name)
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        deadline = time.monotonic() + timeout_s
        while await behind(consumer, ends):
            if time.monotonic() > deadline:
                raise TimeoutError("camera lock topic not read in time")
            for msgs in (await consumer.getmany(timeout_ms=200)).values():
                for m in msgs:
                    try:
                        rec = _dec.decode(m.value)
                    except msgspec.DecodeError:
                        continue
                    out[rec.camera_id] = rec
    finally:
        await consumer.stop()
    return out


def cmd_lock(args: argparse.Namespace) -> int:
    """``shorewatch cue lock CAMERA`` and ``shorewatch cue unlock CAMERA``."""
    locked = args.cue_what == "lock"
    rec = asyncio.run(
        publish_lock(
            Settings.from_env().broker(),
            args.camera,
            locked,
            user=args.user or getpass.getuser(),
            reason=getattr(args, "reason", None),
            for_s=getattr(args, "for_s", None),
        )
    )
    what = "locked" if locked else "released"
    until = f" until {rec.until_t_ms} (ms UTC)" if rec.until_t_ms else ""
    print(f"camera {args.camera} {what} by {rec.user}{until}")
    return 0


def cmd_locks(args: argparse.Namespace) -> int:
    """``shorewatch cue locks``: every camera's lock state."""
    locks = asyncio.run(read_locks(Settings.from_env().broker()))
    now = time.time_ns() // 1_000_000
    for cid, rec in sorted(locks.items()):
        until = until_of(rec)
        state = "locked" if until is not None and now < until else "free"
        extra = f" until {rec.until_t_ms}" if rec.until_t_ms and state == "locked" else ""
        print(f"{cid}: {state}{extra} (by {rec.user}{', ' + rec.reason if rec.reason else ''})")
    if not locks:
        print("no camera locks")
    return 0
