"""The producer every connector publishes through.

``acks='all'`` and idempotence on, keys as UTF-8 text, values as msgspec JSON.
A broker that does not answer at start is a :class:`BrokerUnreachable` within a
bounded time, never a hang.

While the broker is away, a connector publishes through a :class:`BufferedPublisher`:
records wait in a buffer bounded in bytes, are retried with exponential back-off and
jitter, and records that do not fit are dropped *and counted* (or the caller waits, for
a file that can be read later). The Kafka client's own error lines (several a second per
client while a broker is away) are counted, not printed: one line says "broker
unreachable", one says "broker back" (:class:`BrokerHealth`).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import random
import re
import time
from collections.abc import Callable
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

log = logging.getLogger(__name__)

MAX_RECORD_BYTES = 1_000_000
"""Largest record value a connector publishes, bytes (the broker's default
``message.max.bytes`` is 1,048,588 for a whole record batch)."""


def backoff_delays(base_s: float = 0.5, max_s: float = 30.0, rng: random.Random | None = None):
    """Retry delays: exponential (doubling from ``base_s`` up to ``max_s``) with full jitter.

    :returns: an endless iterator of delays in seconds, each uniform in ``[d/2, d]``
    """
    rng = rng or random.Random()
    d = base_s
    while True:
        yield rng.uniform(d / 2, d)
        d = min(max_s, d * 2)


#: loggers of the Kafka client that repeat a line per failed attempt while a broker is away
CLIENT_LOGGERS = (
    "aiokafka",
    "aiokafka.conn",
    "aiokafka.client",
    "aiokafka.cluster",
    "aiokafka.producer.producer",
    "aiokafka.producer.sender",
    "aiokafka.producer.message_accumulator",
    "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator",
    "aiokafka.consumer.consumer",
)


#: what the Kafka client says, once per attempt, while it cannot reach a broker
_BROKER_AWAY = re.compile(
    r"connect|NodeNotReady|update metadata|timed out|timeout|NotLeader|LeaderNotAvailable|"
    r"coordinator|heartbeat|NotEnoughReplicas",
    re.IGNORECASE,
)


class BrokerHealth(logging.Filter):
    """Whether this process can reach its broker, and how often it could not.

    Installed (:meth:`install`) as a filter on the Kafka client's loggers, it turns
    their warnings and errors about reaching the broker into counters (others are
    printed as usual): while the broker is away the client logs
    a line per failed attempt, which would flood the log. Only state changes are
    logged, once each: ``broker unreachable`` (with the first cause) and ``broker
    back`` (with the outage's length and how many client lines were counted).

    :ivar reachable: the current state
    :ivar outages: how many times the broker became unreachable
    :ivar client_errors: client warning/error lines counted instead of printed
    """

    def __init__(self) -> None:
        super().__init__()
        self.reachable = True
        self.outages = 0
        self.client_errors = 0
        self._since = 0.0
        self._errors_at_down = 0
        self._installed = False

    def install(self) -> BrokerHealth:
        """Filter the Kafka client's loggers through this object (idempotent)."""
        if not self._installed:
            for name in CLIENT_LOGGERS:
                logging.getLogger(name).addFilter(self)
            self._installed = True
        return self

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        if not _BROKER_AWAY.search(message):
            return True  # not about reaching the broker: printed as usual
        self.client_errors += 1
        self.down(message[:200])
        return False

    def down(self, cause: object) -> None:
        """Note a failure to reach the broker; logs only when the state changes."""
        if self.reachable:
            self.reachable = False
            self.outages += 1
            self._since = time.monotonic()
            self._errors_at_down = self.client_errors
            log.warning("broker unreachable (%s): buffering and retrying quietly", cause)

    def up(self) -> None:
        """Note a record acknowledged by the broker; logs only when the state changes."""
        if not self.reachable:
            self.reachable = True
            log.warning(
                "broker back after %.1f s (%d client error lines counted, not printed)",
                time.monotonic() - self._since,
                self.client_errors - self._errors_at_down,
            )


#: this process's view of its broker (one per process: every client shares the state)
broker_health = BrokerHealth()


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
        broker_health.install()  # the client's per-attempt error lines become counters
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
        try:
            result = await (await self.send(topic, key, record))
        except (KafkaError, OSError) as exc:
            broker_health.down(exc)
            raise
        broker_health.up()
        return result

    async def send_encoded(
        self, topic: str, key: bytes, value: bytes, headers: list | None = None
    ) -> asyncio.Future:
        """Queue one already encoded record; returns the delivery future (counted as
        :meth:`send` counts)."""
        fut = await self._producer.send(topic, value, key=key, headers=headers or None)
        self.sent += 1
        fut.add_done_callback(partial(_count_delivery, topic))
        return fut

    async def flush(self) -> None:
        await self._producer.flush()


#: a buffered record: topic, key, value, and what to call when the broker acknowledged it
_Item = tuple[str, bytes, bytes, Callable[[], None] | None, list | None]


class BufferedPublisher:
    """Publishes records through a :class:`RecordProducer`, riding out broker outages.

    :meth:`put` never fails because the broker is away: the record joins a buffer
    bounded by ``max_buffer_bytes`` (records handed to the client but not yet
    acknowledged count too). A sender task hands records to the client; a record the
    client could not deliver goes back to the buffer and is retried after an
    exponential back-off with jitter. When the buffer is full, ``put`` either waits for
    room (``block_when_full``, for sources that can be read later, such as files) or
    drops the record and counts it in :attr:`dropped` (live sources, which cannot be
    paused): never silently, the first drop of each overflow is logged and the counts
    are in :meth:`summary`.

    :param max_buffer_bytes: most bytes of records held (queued or in flight)
    :param block_when_full: wait for room instead of dropping
    :param base_delay_s: first retry delay after a failure, s (doubles up to ``max_delay_s``)
    """

    def __init__(
        self,
        producer: RecordProducer,
        *,
        max_buffer_bytes: int = 64 << 20,
        block_when_full: bool = False,
        base_delay_s: float = 0.25,
        max_delay_s: float = 10.0,
        health: BrokerHealth | None = None,
    ):
        self.producer = producer
        self.max_buffer_bytes = int(max_buffer_bytes)
        self.block_when_full = block_when_full
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.health = (health or broker_health).install()
        self._queue: collections.deque[_Item] = collections.deque()
        self._bytes = 0
        self._in_flight = 0
        self._retrying = 0
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task | None = None
        self._delays = backoff_delays(base_delay_s, max_delay_s)
        self._overflowing = False
        #: records acknowledged by the broker
        self.published = 0
        #: records dropped because the buffer was full
        self.dropped = 0
        #: records handed to the client again after a failed delivery
        self.retries = 0
        #: records still unacknowledged when :meth:`close` gave up
        self.undelivered = 0

    @property
    def buffered_bytes(self) -> int:
        """Bytes of records held now (queued or in flight)."""
        return self._bytes

    def start(self) -> None:
        """Start the sender task (the producer must be started)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def put(self, topic: TopicSpec, key: str, record: msgspec.Struct) -> bool:
        """Buffer one record of the registry (with its topic's headers); see
        :meth:`put_encoded`."""
        if isinstance(record, DeadLetter):
            metrics.DEAD_LETTERS.labels(reason=record.reason, stage=record.stage).inc()
        return await self.put_encoded(
            topic.name, key.encode(), _enc.encode(record), headers=list(topic.headers) or None
        )

    async def put_encoded(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        on_ack: Callable[[], None] | None = None,
        headers: list | None = None,
    ) -> bool:
        """Buffer one encoded record for publishing.

        :param on_ack: called once the broker acknowledged the record
        :param headers: Kafka headers, ``(name, bytes)`` pairs
        :returns: ``False`` when the record was dropped (buffer full and not blocking)
        """
        size = len(key) + len(value)
        while self._bytes + size > self.max_buffer_bytes and self._bytes > 0:
            if self.block_when_full:
                self._room.clear()
                await self._room.wait()
                continue
            self.dropped += 1
            if not self._overflowing:
                self._overflowing = True
                log.error(
                    "publish buffer full (%d bytes held, broker %s): dropping records until "
                    "there is room again; every drop is counted",
                    self._bytes,
                    "reachable" if self.health.reachable else "unreachable",
                )
            return False
        self._queue.append((topic, key, value, on_ack, headers))
        self._bytes += size
        self._idle.clear()
        self._ready.set()
        self.start()
        return True

    async def _run(self) -> None:
        from aiokafka.errors import KafkaError

        while True:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            item = self._queue.popleft()
            try:
                fut = await self.producer.send_encoded(item[0], item[1], item[2], item[4])
            except (KafkaError, OSError) as exc:
                self._queue.appendleft(item)
                self.health.down(exc)
                await asyncio.sleep(next(self._delays))
                continue
            self._in_flight += 1
            fut.add_done_callback(functools.partial(self._done, item))

    def _done(self, item: _Item, fut: asyncio.Future) -> None:
        self._in_flight -= 1
        exc = None if fut.cancelled() else fut.exception()
        if fut.cancelled() or exc is not None:
            self.retries += 1
            self._retrying += 1
            self.health.down(exc or "cancelled")
            loop = asyncio.get_running_loop()
            loop.call_later(next(self._delays), self._requeue, item)
            return
        self._delays = backoff_delays(self.base_delay_s, self.max_delay_s)
        self.health.up()
        self.published += 1
        if item[3] is not None:
            item[3]()
        self._bytes -= len(item[1]) + len(item[2])
        self._overflowing = False
        self._room.set()
        if not self._queue and self._in_flight == 0:
            self._idle.set()

    def _requeue(self, item: _Item) -> None:
        self._retrying -= 1
        self._queue.appendleft(item)
        self._ready.set()

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every buffered record is acknowledged.

        :returns: whether the buffer emptied within ``timeout_s``
        """
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout_s: float = 60.0) -> None:
        """Flush (at most ``timeout_s``), then stop the sender; what is still held is
        counted in :attr:`undelivered` and logged."""
        if not await self.flush(timeout_s):
            self.undelivered = len(self._queue) + self._in_flight + self._retrying
            log.error(
                "%d record(s) not acknowledged by the broker within %.0f s at stop",
                self.undelivered,
                timeout_s,
            )
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def summary(self) -> str:
        """One line: published, dropped, retried, undelivered."""
        return (
            f"{self.published} records published, {self.dropped} dropped (buffer full), "
            f"{self.retries} retried, {self.undelivered} undelivered at stop"
        )


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
    publisher: BufferedPublisher | None = None,
    max_buffer_bytes: int = 64 << 20,
) -> tuple[int, int]:
    """Publish a JSON-lines file of ``topic``'s records, paced by their event time ``t_ms``.

    Each line is decoded as the topic's record type; a line that is not one is sent
    to the dead-letter topic (reason ``invalid_record``) and counted, never skipped
    silently. With ``speed`` (a factor of real time, or a :class:`Pace`), a record is
    sent when ``(t_ms - t0_event_ms) / speed`` seconds have passed since ``t0_wall``
    (``time.monotonic()``), so that several replays started with the same origin stay
    aligned in event time.

    Records go through a :class:`BufferedPublisher` that waits for room when the broker
    is away (a file can be read later), so an outage delays the replay and loses nothing;
    pass ``publisher`` to read its counters (it is closed here).

    :param key_field: the record field used as the Kafka key, e.g. ``camera_id``
    :returns: (records sent, lines dead-lettered)
    """
    import time

    from pipeline import topics as registry

    pace = Pace.of(speed)
    dec = msgspec.json.Decoder(topic.value_type)
    pub = publisher or BufferedPublisher(
        producer, max_buffer_bytes=max_buffer_bytes, block_when_full=True
    )
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
                    await pub.put(
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
            await pub.put(topic, key, rec)
            sent += 1
    await pub.close()
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

    async def main() -> tuple[int, int, BufferedPublisher]:
        async with RecordProducer() as producer:
            pub = BufferedPublisher(producer, block_when_full=True)
            sent, bad = await replay_records(
                args.file, spec, producer, key_field=args.key, speed=speed, publisher=pub
            )
            return sent, bad, pub

    sent, bad, pub = asyncio.run(main())
    print(
        f"read {sent} records for {spec.name}; {bad} invalid line(s) dead-lettered; "
        + pub.summary(),
        file=sys.stderr,
    )
    return 1 if pub.undelivered or pub.dropped else 0
