"""The producer every connector publishes through.

``acks='all'`` and idempotence on, keys as UTF-8 text, values as msgspec JSON.
A broker that does not answer at start is a :class:`BrokerUnreachable` within a
bounded time, never a hang.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from pipeline import metrics
from pipeline.deadletter import Reason
from pipeline.deadletter import dead_letter as make_dead_letter
from pipeline.errors import BrokerUnreachable
from pipeline.settings import Settings
from pipeline.topics import TopicSpec
from schemas.records import DeadLetter

_enc = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Pace:
    """The pace of a replay: ``speed`` times real time, except inside the
    ``real_time_ms`` windows of event time, which play at real time.

    Fast-forwarding between windows lets a benchmark watch moments of interest at
    real-time pace without sitting through the whole recording.

    :param speed: pace outside the windows, times real time (> 0)
    :param real_time_ms: ``(start, end)`` event-time windows played at 1x, ms UTC
    """

    speed: float
    real_time_ms: tuple[tuple[int, int], ...] = ()

    def wall_s(self, t0_ms: int, t_ms: int) -> float:
        """Wall time from event time ``t0_ms`` to ``t_ms`` (windows must not overlap), s."""
        slow = sum(max(0, min(b, t_ms) - max(a, t0_ms)) for a, b in self.real_time_ms)
        return ((t_ms - t0_ms - slow) / self.speed + slow) / 1000.0

    def event_ms(self, t0_ms: int, wall_s: float) -> int:
        """Inverse of :meth:`wall_s`: the event time ``wall_s`` seconds after ``t0_ms``, ms."""
        t, left_ms = float(t0_ms), wall_s * 1000.0
        for a, b in sorted(self.real_time_ms):
            if b <= t:
                continue
            if a > t:  # fast up to the window
                if left_ms <= (a - t) / self.speed:
                    return int(t + left_ms * self.speed)
                left_ms -= (a - t) / self.speed
                t = a
            if left_ms <= b - t:
                return int(t + left_ms)
            left_ms -= b - t
            t = b
        return int(t + left_ms * self.speed)

    @classmethod
    def of(cls, speed: float | Pace | None) -> Pace | None:
        """A speed factor as a :class:`Pace`; ``None`` (as fast as possible) stays ``None``."""
        return speed if isinstance(speed, Pace) or speed is None else cls(float(speed))


def _count_delivery(topic: str, fut: asyncio.Future) -> None:
    ok = not fut.cancelled() and fut.exception() is None
    metrics.RECORDS_PUBLISHED.labels(topic=topic, outcome="ok" if ok else "failed").inc()


class RecordProducer:
    """Publishes records of the topic registry.

    :param bootstrap: Kafka bootstrap servers; default from :class:`Settings`
    :param linger_ms: how long the client may wait to fill a batch, ms
    """

    def __init__(
        self,
        bootstrap: str | None = None,
        *,
        linger_ms: int = 5,
        client_id: str = "shorewatch-connector",
        start_timeout_s: float = 15.0,
    ):
        self.bootstrap = bootstrap or Settings.from_env().broker()
        self.start_timeout_s = start_timeout_s
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
            client_id=client_id,
            max_batch_size=1 << 20,
            compression_type=None,
            request_timeout_ms=30000,
        )
        self.sent = 0

    async def start(self) -> None:
        try:
            await asyncio.wait_for(self._producer.start(), self.start_timeout_s)
        except (TimeoutError, KafkaConnectionError, KafkaError, OSError) as exc:
            try:
                await self._producer.stop()
            except Exception:  # noqa: BLE001 - keep the original cause
                pass
            raise BrokerUnreachable(
                f"Kafka at {self.bootstrap} did not answer within {self.start_timeout_s:g} s: {exc}"
            ) from exc

    async def stop(self) -> None:
        await self._producer.stop()

    async def __aenter__(self) -> RecordProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def send(self, topic: TopicSpec, key: str, record: msgspec.Struct) -> asyncio.Future:
        """Queue one record; returns the delivery future (await it to wait for the ack).

        Counted in ``shorewatch_records_published_total`` when acknowledged or failed, and
        a dead letter in ``shorewatch_dead_letters_total`` by its reason and stage.
        """
        fut = await self._producer.send(
            topic.name, _enc.encode(record), key=key.encode(), headers=list(topic.headers) or None
        )
        self.sent += 1
        if isinstance(record, DeadLetter):
            metrics.DEAD_LETTERS.labels(reason=record.reason, stage=record.stage).inc()
        fut.add_done_callback(partial(_count_delivery, topic.name))
        return fut

    async def send_and_wait(self, topic: TopicSpec, key: str, record: msgspec.Struct) -> Any:
        """Send one record and wait until all in-sync replicas have it."""
        return await (await self.send(topic, key, record))

    async def flush(self) -> None:
        await self._producer.flush()


async def replay_records(
    path: str | Path,
    topic: TopicSpec,
    producer: RecordProducer,
    *,
    key_field: str,
    speed: float | Pace | None = None,
    t0_event_ms: int | None = None,
    t0_wall: float | None = None,
    dead_letter: bool = True,
) -> tuple[int, int]:
    """Publish a JSON-lines file of ``topic``'s records, paced by their event time ``t_ms``.

    Each line is decoded as the topic's record type; a line that is not one is sent
    to the dead-letter topic (reason ``invalid_record``) and counted, never skipped
    silently. With ``speed`` (a factor of real time, or a :class:`Pace`), a record is
    sent when ``(t_ms - t0_event_ms) / speed`` seconds have passed since ``t0_wall``
    (``time.monotonic()``), so that several replays started with the same origin stay
    aligned in event time.

    :param key_field: the record field used as the Kafka key, e.g. ``camera_id``
    :returns: (records sent, lines dead-lettered)
    """
    import time

    from pipeline import topics as registry

    pace = Pace.of(speed)
    dec = msgspec.json.Decoder(topic.value_type)
    sent = bad = 0
    t0_wall = time.monotonic() if t0_wall is None else t0_wall
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            raw = raw.rstrip(b"\r\n")
            if not raw:
                continue
            try:
                rec = dec.decode(raw)
                key = str(getattr(rec, key_field))
            except (msgspec.DecodeError, AttributeError) as exc:
                bad += 1
                if dead_letter:
                    await producer.send(
                        registry.DEADLETTER,
                        f"file:{Path(path).name}",
                        make_dead_letter(
                            Reason.INVALID_RECORD,
                            source=f"file:{Path(path).name}",
                            stage=f"replay.{topic.name}",
                            detail=f"line {lineno}: {exc}",
                            raw=raw,
                            rx_t_ms=int(time.time() * 1000),
                        ),
                    )
                continue
            t_ms = getattr(rec, "t_ms", None)
            if pace is not None and t_ms is not None:
                if t0_event_ms is None:
                    t0_event_ms = int(t_ms)
                wait = t0_wall + pace.wall_s(t0_event_ms, int(t_ms)) - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            await producer.send(topic, key, rec)
            sent += 1
    await producer.flush()
    return sent, bad


def cmd_publish(args: Any) -> int:
    import sys

    from pipeline import topics as registry

    spec = registry.BY_NAME.get(args.topic)
    if spec is None:
        print(
            f"unknown topic {args.topic!r}; known: {', '.join(registry.BY_NAME)}", file=sys.stderr
        )
        return 2
    speed = None if args.speed == "max" else float(args.speed)

    async def main() -> tuple[int, int]:
        async with RecordProducer() as producer:
            return await replay_records(args.file, spec, producer, key_field=args.key, speed=speed)

    sent, bad = asyncio.run(main())
    print(
        f"published {sent} records to {spec.name}; {bad} invalid line(s) dead-lettered",
        file=sys.stderr,
    )
    return 0
