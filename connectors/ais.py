"""AIS sources: TCP client, TCP server, UDP listener and file replay, micro-batched.

Every source reads lines, stamps each with its receive time (wall clock, ms) and
its source id, and hands :class:`~schemas.records.RawAisBatch` micro-batches (up to
``max_lines`` lines or ``max_ms`` after the first line, whichever comes first) to a
*sink*: any ``async def sink(batch)``. :class:`KafkaSink` publishes to
``shorewatch.ais.raw.v1`` keyed by source id, so the lines of one source stay in
order on one partition (what reassembly needs); nothing is promised across sources.
Tests use a list-appending sink and real loopback sockets, no broker.

Bytes are decoded as Latin-1, so any byte survives to the dead letters unchanged
(``pipeline.deadletter.raw_bytes`` turns the text back into the received bytes).

A line longer than :data:`MAX_LINE_BYTES` never reaches a batch: the connector sends it
to the dead letters itself (reason ``too_long``, stage ``ais.connector``, its first
:data:`MAX_LINE_BYTES` bytes kept, its full length in the detail) and the lines around it
go on as usual. A batch is also cut by size, so no record exceeds the broker's message limit
(:data:`connectors.kafka.MAX_RECORD_BYTES`). While the broker is away, :class:`KafkaSink`
buffers (bounded), retries quietly and counts what it had to drop.

Source ids: ``tcp:HOST:PORT`` (client), ``tcp-in:PORT:PEER_IP`` (server, per peer),
``udp:PORT:PEER_IP`` (per sender), ``file:NAME`` and ``stdin``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial

import msgspec

from connectors.kafka import MAX_RECORD_BYTES, Pace, backoff_delays
from pipeline import metrics
from pipeline.core.nmea import line_time_ms
from pipeline.core.nmea_prefix import prefix_policy
from pipeline.deadletter import Reason, dead_letter
from pipeline.fileio import open_bytes
from pipeline.topics import AIS_RAW, DEADLETTER
from schemas.records import DeadLetter, RawAisBatch

__all__ = [
    "Batcher",
    "KafkaSink",
    "LineSplitter",
    "Sink",
    "backoff_delays",
    "replay_file",
    "run_ingest",
    "run_sources",
    "tcp_client",
    "tcp_server",
    "udp_listener",
    "with_prefix_policy",
]

log = logging.getLogger(__name__)

Sink = Callable[[RawAisBatch], Awaitable[None]]
DeadLetterSink = Callable[[DeadLetter], Awaitable[None]]
Clock = Callable[[], int]

MAX_LINE_BYTES = 4096
"""The longest raw line a connector passes on, bytes; longer lines are dead-lettered
(reason ``too_long``, stage ``ais.connector``) with their first ``MAX_LINE_BYTES`` bytes."""

MAX_BATCH_BYTES = 256 * 1024
"""A micro-batch is sent once its lines hold this many bytes (and :class:`KafkaSink`
splits any record that would still exceed :data:`MAX_RECORD_BYTES`)."""

_PER_LINE_BYTES = 24  # JSON overhead of one line and its receive time in a batch record


def over_long_line(source: str, head: bytes, length: int, rx_t_ms: int) -> DeadLetter:
    """The dead letter of a line over :data:`MAX_LINE_BYTES`.

    :param head: the line's first bytes (at most :data:`MAX_LINE_BYTES`)
    :param length: the line's full length, bytes
    """
    return dead_letter(
        Reason.TOO_LONG,
        source=source,
        stage="ais.connector",
        detail=(
            f"line of {length} bytes, over the {MAX_LINE_BYTES}-byte limit; "
            f"raw bytes truncated to the first {len(head)}"
        ),
        raw=head,
        rx_t_ms=rx_t_ms,
    )


class LineSplitter:
    """Cuts a byte stream into lines, setting aside lines over :data:`MAX_LINE_BYTES`.

    Memory stays bounded whatever the stream holds: of an over-long line only its first
    ``max_line_bytes`` bytes are kept, the rest is counted and skipped up to the next
    newline. Empty lines are dropped, ``\\r`` before a newline is removed.

    :ivar oversized: ``(head, length)`` of each over-long line completed since the last
        :meth:`take_oversized`
    """

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES):
        self.max_line_bytes = max_line_bytes
        self._rest = b""
        self._skipping = False  # inside an over-long line
        self._head = b""
        self._length = 0
        self.oversized: list[tuple[bytes, int]] = []

    def feed(self, data: bytes) -> list[str]:
        """The complete lines of ``data`` (with what came before), Latin-1 text."""
        out: list[str] = []
        start = 0
        if self._skipping:
            nl = data.find(b"\n")
            if nl < 0:
                self._length += len(data)
                return out
            self._length += nl
            self.oversized.append((self._head, self._length))
            self._skipping = False
            start = nl + 1
        buf = self._rest + data[start:] if self._rest else data[start:]
        parts = buf.split(b"\n")
        rest = parts.pop()
        limit = self.max_line_bytes
        for p in parts:
            if len(p) > limit and len(p.rstrip(b"\r")) > limit:
                self.oversized.append((p[:limit], len(p)))
            elif p.strip():
                out.append(p.rstrip(b"\r").decode("latin-1"))
        if len(rest) > limit:
            self._skipping = True
            self._head = rest[:limit]
            self._length = len(rest)
            rest = b""
        self._rest = rest
        return out

    def end(self) -> list[str]:
        """The last, unterminated line (if any) at the end of the stream."""
        if self._skipping:
            self.oversized.append((self._head, self._length))
            self._skipping = False
            return []
        rest, self._rest = self._rest, b""
        return [rest.rstrip(b"\r").decode("latin-1")] if rest.strip() else []

    def take_oversized(self) -> list[tuple[bytes, int]]:
        """The over-long lines completed so far, and forget them."""
        out, self.oversized = self.oversized, []
        return out


def wall_ms() -> int:
    """Wall-clock time, ms since epoch UTC (the receive time of a line)."""
    return time.time_ns() // 1_000_000


class Batcher:
    """Collects the lines of one source into micro-batches for a sink.

    A batch is sent when it holds ``max_lines`` lines, or ``max_ms`` after its first
    line (checked by :meth:`run_timer`), or on :meth:`flush`.

    A line over :data:`MAX_LINE_BYTES` is not batched: :meth:`reject_oversized` sends
    its dead letter to ``dead_letter`` (by default the sink's ``dead_letter`` method,
    when it has one; else it is logged) and counts it in :attr:`rejected`.

    :param max_lines: most lines per batch
    :param max_ms: longest time a line waits in the batch, ms
    :param max_bytes: a batch is sent once its lines hold this many bytes
    :param dead_letter: where over-long lines go
    """

    def __init__(
        self,
        source: str,
        sink: Sink,
        max_lines: int = 500,
        max_ms: int = 200,
        *,
        max_bytes: int = MAX_BATCH_BYTES,
        dead_letter: DeadLetterSink | None = None,
    ):
        self.source = source
        self.sink = sink
        self.max_lines = max(1, int(max_lines))
        self.max_ms = max(1, int(max_ms))
        self.max_bytes = max(1, int(max_bytes))
        self.dead_letter = dead_letter or getattr(sink, "dead_letter", None)
        self._lines: list[str] = []
        self._rx: list[int] = []
        self._bytes = 0
        self._first = 0.0
        self._lock = asyncio.Lock()
        self.lines_in = 0
        self.batches_out = 0
        #: lines over MAX_LINE_BYTES, dead-lettered here
        self.rejected = 0
        self._received = metrics.INGEST_LINES.labels(
            source=metrics.source_kind(source), outcome="received"
        )

    async def add(self, line: str, rx_t_ms: int) -> None:
        """Add one line (without terminator) received at ``rx_t_ms``."""
        if len(line) > MAX_LINE_BYTES:
            raw = line.encode("latin-1", "replace")
            await self.reject_oversized(raw[:MAX_LINE_BYTES], len(raw), rx_t_ms)
            return
        if not self._lines:
            self._first = time.monotonic()
        self._lines.append(line)
        self._rx.append(rx_t_ms)
        self._bytes += len(line) + _PER_LINE_BYTES
        self.lines_in += 1
        self._received.inc()
        if len(self._lines) >= self.max_lines or self._bytes >= self.max_bytes:
            await self.flush()

    async def add_many(self, lines: list[str], rx_t_ms: int) -> None:
        """Add lines received together at ``rx_t_ms``."""
        for line in lines:
            await self.add(line, rx_t_ms)

    async def reject_oversized(self, head: bytes, length: int, rx_t_ms: int) -> None:
        """Dead-letter a line of ``length`` bytes over the limit (``head``: its first bytes)."""
        self.rejected += 1
        dead = over_long_line(self.source, head, length, rx_t_ms)
        if self.dead_letter is None:
            log.error("%s: %s (no dead-letter sink; counted)", self.source, dead.detail)
            return
        await self.dead_letter(dead)

    async def take_oversized(self, splitter: LineSplitter, rx_t_ms: int) -> None:
        """Dead-letter the over-long lines ``splitter`` set aside."""
        for head, length in splitter.take_oversized():
            await self.reject_oversized(head, length, rx_t_ms)

    async def flush(self) -> None:
        """Send what is pending, if anything."""
        async with self._lock:
            if not self._lines:
                return
            batch = RawAisBatch(source=self.source, lines=self._lines, rx_t_ms=self._rx)
            self._lines, self._rx, self._bytes = [], [], 0
            self.batches_out += 1
            await self.sink(batch)

    async def run_timer(self) -> None:
        """Flush batches older than ``max_ms``; runs until cancelled."""
        tick = self.max_ms / 4000
        while True:
            await asyncio.sleep(tick)
            if self._lines and (time.monotonic() - self._first) * 1000 >= self.max_ms:
                await self.flush()


@contextlib.asynccontextmanager
async def _batching(source: str, sink: Sink, max_lines: int, max_ms: int):
    batcher = Batcher(
        source, sink, max_lines, max_ms, dead_letter=getattr(sink, "dead_letter", None)
    )
    timer = asyncio.create_task(batcher.run_timer())
    try:
        yield batcher
    finally:
        timer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await timer
        await asyncio.shield(batcher.flush())


async def _read_lines(
    reader: asyncio.StreamReader, batcher: Batcher, clock: Clock, idle_timeout_s: float | None
) -> None:
    """Feed the lines of a stream to a batcher until EOF (or idle timeout: TimeoutError).

    Reads in chunks (one receive time per chunk), not line by line; over-long lines
    are dead-lettered as soon as their end is seen.
    """
    splitter = LineSplitter()
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(1 << 16), idle_timeout_s)
            rx = clock()
            lines = splitter.feed(chunk) if chunk else splitter.end()
            if lines:
                await batcher.add_many(lines, rx)
            if splitter.oversized:
                await batcher.take_oversized(splitter, rx)
            if not chunk:
                return
    finally:
        # a connection lost inside an over-long line still reports it
        splitter.end()
        if splitter.oversized:
            await batcher.take_oversized(splitter, clock())


def _keepalive(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for opt, val in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, opt):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), val)


async def tcp_client(
    host: str,
    port: int,
    sink: Sink,
    *,
    max_lines: int = 500,
    max_ms: int = 200,
    base_delay_s: float = 0.5,
    max_delay_s: float = 30.0,
    idle_timeout_s: float | None = 120.0,
    clock: Clock = wall_ms,
    stats: dict[str, int] | None = None,
) -> None:
    """Read a receiver or aggregator over TCP forever, reconnecting with backoff and jitter.

    The backoff restarts from ``base_delay_s`` after a connection that delivered data.
    A connection silent for ``idle_timeout_s`` is dropped and re-opened (TCP keep-alive
    is on as well). Runs until cancelled.

    :param stats: optional dict updated with ``connects`` and ``failures``
    """
    source = f"tcp:{host}:{port}"
    stats = stats if stats is not None else {}
    delays = backoff_delays(base_delay_s, max_delay_s)
    async with _batching(source, sink, max_lines, max_ms) as batcher:
        while True:
            got = batcher.lines_in
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
            except (TimeoutError, OSError) as exc:
                stats["failures"] = stats.get("failures", 0) + 1
                delay = next(delays)
                log.warning("%s: connect failed (%s), retry in %.1f s", source, exc, delay)
                await asyncio.sleep(delay)
                continue
            stats["connects"] = stats.get("connects", 0) + 1
            log.info("%s: connected", source)
            _keepalive(writer)
            try:
                await _read_lines(reader, batcher, clock, idle_timeout_s)
                log.warning("%s: connection closed by peer", source)
            except (TimeoutError, OSError) as exc:
                log.warning("%s: connection lost (%s)", source, exc or type(exc).__name__)
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            await batcher.flush()
            if batcher.lines_in > got:
                delays = backoff_delays(base_delay_s, max_delay_s)
            await asyncio.sleep(next(delays))


async def tcp_server(
    host: str,
    port: int,
    sink: Sink,
    *,
    max_lines: int = 500,
    max_ms: int = 200,
    clock: Clock = wall_ms,
    started: asyncio.Future | None = None,
) -> None:
    """Accept receivers that push NMEA over TCP; each peer is its own source. Runs until cancelled.

    :param port: port to listen on (0: any free port; the bound port is set on ``started``)
    :param started: optional future set to the bound port once listening
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        source = f"tcp-in:{bound}:{peer[0]}"
        _keepalive(writer)
        try:
            async with _batching(source, sink, max_lines, max_ms) as batcher:
                await _read_lines(reader, batcher, clock, None)
        except (OSError, asyncio.IncompleteReadError) as exc:
            log.warning("%s: connection lost (%s)", source, exc)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port)
    bound = server.sockets[0].getsockname()[1]
    log.info("listening for AIS on tcp %s:%d", host, bound)
    if started is not None and not started.done():
        started.set_result(bound)
    async with server:
        await server.serve_forever()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple], None]):
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.on_datagram(data, addr)


async def udp_listener(
    host: str,
    port: int,
    sink: Sink,
    *,
    max_lines: int = 500,
    max_ms: int = 200,
    clock: Clock = wall_ms,
    started: asyncio.Future | None = None,
) -> None:
    """Receive NMEA datagrams (one or more lines each); each sender IP is its own source.

    Runs until cancelled. ``started`` receives the bound port.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[bytes, tuple, int]] = asyncio.Queue(maxsize=100_000)
    dropped = 0

    def on_datagram(data: bytes, addr: tuple) -> None:
        nonlocal dropped
        try:
            queue.put_nowait((data, addr, clock()))
        except asyncio.QueueFull:
            dropped += 1
            if dropped % 1000 == 1:
                log.error("udp:%d: receive queue full, %d datagrams dropped", bound, dropped)

    transport, _ = await loop.create_datagram_endpoint(
        lambda: _UdpProtocol(on_datagram), local_addr=(host, port)
    )
    bound = transport.get_extra_info("sockname")[1]
    if started is not None and not started.done():
        started.set_result(bound)
    batchers: dict[str, Batcher] = {}
    timers: list[asyncio.Task] = []
    try:
        while True:
            data, addr, rx = await queue.get()
            source = f"udp:{bound}:{addr[0]}"
            b = batchers.get(source)
            if b is None:
                b = batchers[source] = Batcher(source, sink, max_lines, max_ms)
                timers.append(asyncio.create_task(b.run_timer()))
            splitter = LineSplitter()
            lines = splitter.feed(data + b"\n")
            await b.add_many(lines, rx)
            if splitter.oversized:
                await b.take_oversized(splitter, rx)
    finally:
        transport.close()
        for t in timers:
            t.cancel()
        for b in batchers.values():
            await asyncio.shield(b.flush())


async def replay_file(
    path: str,
    sink: Sink,
    *,
    speed: float | Pace | None = None,
    max_lines: int = 500,
    max_ms: int = 200,
    clock: Clock = wall_ms,
    source: str | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    t0_event_ms: int | None = None,
    t0_wall: float | None = None,
    prefix: str = "auto",
    prefix_tz: str = "UTC",
) -> int:
    """Replay a file (plain, gzip, or ``-`` for stdin), paced by the times in the lines.

    With ``speed`` (e.g. 10 = ten times real time, or a :class:`connectors.kafka.Pace`),
    a line carrying a time (tag block ``c:``, ``$PGHP``, trailing epoch) is sent when
    ``(t - t0_event_ms) / speed`` has passed since ``t0_wall`` (``time.monotonic()``;
    both default to the first timed line); lines without a time, and times that go
    backwards, are sent at once. ``speed=None`` sends as fast as possible. A logger's
    time before the sentence paces too, read with the ``prefix`` policy and ``prefix_tz``
    (:func:`pipeline.core.nmea.line_time_ms`).

    :returns: number of lines read
    """
    source = source or ("stdin" if path == "-" else f"file:{os.path.basename(path)}")
    pace = Pace.of(speed)
    f = await asyncio.to_thread(open_bytes, path)
    t0_event = t0_event_ms
    n = 0
    splitter = LineSplitter()
    try:
        async with _batching(source, sink, max_lines, max_ms) as batcher:
            while True:
                chunk = await asyncio.to_thread(f.read1, 1 << 16)  # type: ignore[attr-defined]
                lines = splitter.feed(chunk) if chunk else splitter.end()
                n += len(lines)
                if splitter.oversized:
                    n += len(splitter.oversized)
                    await batcher.take_oversized(splitter, clock())
                if pace is None:
                    await batcher.add_many(lines, clock())
                    if not chunk:
                        break
                    continue
                for line in lines:
                    t = line_time_ms(line, prefix, prefix_tz)
                    if t is not None:
                        if t0_event is None:
                            t0_event = t
                        if t0_wall is None:
                            t0_wall = time.monotonic()
                        wait = t0_wall + pace.wall_s(t0_event, t) - time.monotonic()
                        if wait > 0:
                            await batcher.flush()
                            await sleep(wait)
                    await batcher.add(line, clock())
                if not chunk:
                    break
    finally:
        if f is not sys.stdin.buffer:
            f.close()
    return n


class KafkaSink:
    """Publishes raw batches to ``shorewatch.ais.raw.v1`` (key = source id, value = msgspec JSON).

    The producer is idempotent with ``acks='all'`` (:class:`connectors.kafka.RecordProducer`).
    Records go through a :class:`connectors.kafka.BufferedPublisher`: while the broker is
    away they are held (at most ``max_buffer_bytes``) and retried quietly; when the buffer
    is full a batch is dropped and counted (``block_when_full``: the source waits instead,
    as a file can). A batch whose record would exceed
    :data:`connectors.kafka.MAX_RECORD_BYTES` is split in halves until each part fits.
    Over-long lines arrive at :meth:`dead_letter` and are published to
    ``shorewatch.deadletter.v1``.

    Counters: ``lines`` and ``batches`` handed in, ``records`` sent (after splitting),
    ``dead_letters`` by reason; the publisher's ``dropped``, ``retries``, ``undelivered``.
    Lines are counted in ``shorewatch_ingest_lines_total`` as ``published`` when the
    broker acknowledges them, ``failed`` when they are dropped. :meth:`ready`: started,
    and the broker reachable.
    """

    def __init__(
        self,
        bootstrap: str | None = None,
        *,
        max_buffer_bytes: int = 64 << 20,
        block_when_full: bool = False,
    ):
        from connectors.kafka import BufferedPublisher, RecordProducer

        self.producer = RecordProducer(bootstrap, client_id="shorewatch-ingest-ais")
        self.publisher = BufferedPublisher(
            self.producer, max_buffer_bytes=max_buffer_bytes, block_when_full=block_when_full
        )
        self._enc = msgspec.json.Encoder()
        self.batches = 0
        self.records = 0
        self.lines = 0
        self.dropped_lines = 0
        self.dead_letters: dict[str, int] = {}

        self.started = False

    async def start(self) -> None:
        await self.producer.start()
        self.publisher.start()
        self.started = True

    def ready(self) -> tuple[bool, str]:
        """``(ready, why)`` for ``/readyz``."""
        if not self.started:
            return False, "producer not started"
        if not self.publisher.health.reachable:
            return False, "the broker is unreachable (buffering)"
        return True, f"{self.sent} records published, {self.failed} lost"

    async def stop(self, timeout_s: float = 60.0) -> None:
        """Publish what is buffered (waiting at most ``timeout_s``), then stop."""
        await self.publisher.close(timeout_s)
        await self.producer.stop()

    @property
    def sent(self) -> int:
        """Records acknowledged by the broker."""
        return self.publisher.published

    @property
    def failed(self) -> int:
        """Records lost: dropped on a full buffer or not acknowledged at stop."""
        return self.publisher.dropped + self.publisher.undelivered

    async def __call__(self, batch: RawAisBatch) -> None:
        self.batches += 1
        self.lines += len(batch.lines)
        await self._publish(batch)

    async def _publish(self, batch: RawAisBatch) -> None:
        value = self._enc.encode(batch)
        if len(value) > MAX_RECORD_BYTES and len(batch.lines) > 1:
            half = len(batch.lines) // 2
            for lo, hi in ((0, half), (half, len(batch.lines))):
                part = msgspec.structs.replace(
                    batch, lines=batch.lines[lo:hi], rx_t_ms=batch.rx_t_ms[lo:hi]
                )
                await self._publish(part)
            return
        self.records += 1
        kind = metrics.source_kind(batch.source)
        published = metrics.INGEST_LINES.labels(source=kind, outcome="published")
        n = len(batch.lines)
        if not await self.publisher.put_encoded(
            AIS_RAW.name,
            batch.source.encode(),
            value,
            on_ack=lambda: published.inc(n),
            headers=list(AIS_RAW.headers) or None,
        ):
            self.dropped_lines += n
            metrics.INGEST_LINES.labels(source=kind, outcome="failed").inc(n)

    async def dead_letter(self, dead: DeadLetter) -> None:
        """Publish a line the connector rejected (see :func:`over_long_line`)."""
        self.dead_letters[dead.reason] = self.dead_letters.get(dead.reason, 0) + 1
        log.warning("%s: %s: dead-lettered", dead.source, dead.detail)
        await self.publisher.put(DEADLETTER, dead.source, dead)

    def summary(self) -> str:
        """One line saying what was published, dead-lettered, dropped and left undelivered."""
        dead = sum(self.dead_letters.values())
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.dead_letters.items()))
        p = self.publisher
        return (
            f"published {self.batches} batches ({self.lines} lines) in {self.records} records; "
            f"{dead} line(s) dead-lettered at the connector{f' ({reasons})' if reasons else ''}; "
            f"{p.dropped} record(s) dropped on a full buffer ({self.dropped_lines} lines); "
            f"{p.undelivered} record(s) undelivered at stop; {p.retries} retried"
        )


async def _supervise(name: str, factory: Callable[[], Awaitable[object]], restart: bool) -> None:
    """Run one source; log its failures and restart it (network) so the others keep going."""
    delay = 1.0
    while True:
        try:
            await factory()
            if not restart:
                return
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one bad source never stops the others
            log.exception("source %s failed", name)
            if not restart:
                return
        await asyncio.sleep(delay)
        delay = min(30.0, delay * 2)


def with_prefix_policy(sink: Sink, prefix: str, prefix_tz: str = "UTC") -> Sink:
    """``sink`` with the prefix policy of the sources stamped on every batch
    (:attr:`~schemas.records.RawAisBatch.prefix`): the decode agent then reads the text
    before each sentence (a logger's receive time) as this policy says, column-wise in
    :func:`pipeline.core.nmea.frame_lines`. The lines themselves stay as received."""

    async def stamped(batch: RawAisBatch) -> None:
        batch.prefix, batch.prefix_tz = prefix, prefix_tz
        await sink(batch)

    # over-long lines still reach the sink's dead letters
    stamped.dead_letter = getattr(sink, "dead_letter", None)  # type: ignore[attr-defined]
    return stamped


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


async def run_sources(args: argparse.Namespace, sink: Sink) -> None:
    """Run every source named in ``args`` against ``sink`` until the files end (if only
    files) or until cancelled."""
    kw = {"max_lines": args.batch_lines, "max_ms": args.batch_ms}
    speed = None if str(args.speed).lower() == "max" else float(args.speed)
    prefix = (getattr(args, "prefix", "auto"), getattr(args, "prefix_tz", "UTC"))
    prefix_policy(*prefix)  # a wrong policy or time zone fails here, before any I/O
    if prefix != ("auto", "UTC"):
        sink = with_prefix_policy(sink, *prefix)
    network: list[asyncio.Task] = []
    files: list[asyncio.Task] = []
    for hp in args.tcp:
        host, port = _host_port(hp)
        network.append(
            asyncio.create_task(
                _supervise(f"tcp:{hp}", partial(tcp_client, host, port, sink, **kw), True)
            )
        )
    for port in args.listen_tcp:
        network.append(
            asyncio.create_task(
                _supervise(f"tcp-in:{port}", partial(tcp_server, args.bind, port, sink, **kw), True)
            )
        )
    for port in args.udp:
        network.append(
            asyncio.create_task(
                _supervise(f"udp:{port}", partial(udp_listener, args.bind, port, sink, **kw), True)
            )
        )
    for path in args.file:
        files.append(
            asyncio.create_task(
                _supervise(
                    f"file:{path}",
                    partial(
                        replay_file,
                        path,
                        sink,
                        speed=speed,
                        prefix=prefix[0],
                        prefix_tz=prefix[1],
                        **kw,
                    ),
                    False,
                )
            )
        )
    try:
        if files:
            await asyncio.gather(*files)
        if network:
            await asyncio.gather(*network)
    finally:
        for t in network + files:
            t.cancel()
        await asyncio.gather(*network, *files, return_exceptions=True)


def run_ingest(args: argparse.Namespace) -> int:
    """``shorewatch ingest ais``: sources → Kafka (or ``--stdout``)."""
    if not (args.tcp or args.listen_tcp or args.udp or args.file):
        print(
            "shorewatch ingest ais: name at least one source (--tcp, --listen-tcp, --udp, --file)",
            file=sys.stderr,
        )
        return 2
    try:
        prefix_policy(getattr(args, "prefix", "auto"), getattr(args, "prefix_tz", "UTC"))
    except ValueError as exc:
        print(f"shorewatch ingest ais: {exc}", file=sys.stderr)
        return 2
    enc = msgspec.json.Encoder()

    async def main() -> int:
        if args.stdout:

            async def to_stdout(batch: RawAisBatch) -> None:
                sys.stdout.buffer.write(enc.encode(batch) + b"\n")
                sys.stdout.buffer.flush()

            await run_sources(args, to_stdout)
            return 0
        # a file can wait for the broker; a live receiver cannot: its overflow is dropped
        files_only = not (args.tcp or args.listen_tcp or args.udp)
        sink = KafkaSink(
            max_buffer_bytes=int(getattr(args, "buffer_mb", 64) * (1 << 20)),
            block_when_full=files_only,
        )
        await sink.start()
        try:
            async with metrics.serve_from_env("ingest-ais", sink.ready):
                await run_sources(args, sink)
        finally:
            await sink.stop()
            print(sink.summary(), file=sys.stderr)
        return 1 if sink.failed or sink.dead_letters else 0

    return asyncio.run(main())
