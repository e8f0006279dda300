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

Source ids: ``tcp:HOST:PORT`` (client), ``tcp-in:PORT:PEER_IP`` (server, per peer),
``udp:PORT:PEER_IP`` (per sender), ``file:NAME`` and ``stdin``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial

import msgspec

from connectors.kafka import Pace
from pipeline import metrics
from pipeline.core.nmea import line_time_ms
from pipeline.core.nmea_prefix import prefix_policy
from pipeline.fileio import open_bytes
from pipeline.topics import AIS_RAW
from schemas.records import RawAisBatch

__all__ = [
    "Batcher",
    "KafkaSink",
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
Clock = Callable[[], int]

MAX_LINE_BYTES = 4096
"""Longer runs without a newline are cut into lines of this size (they become dead letters)."""


def wall_ms() -> int:
    """Wall-clock time, ms since epoch UTC (the receive time of a line)."""
    return time.time_ns() // 1_000_000


class Batcher:
    """Collects the lines of one source into micro-batches for a sink.

    A batch is sent when it holds ``max_lines`` lines, or ``max_ms`` after its first
    line (checked by :meth:`run_timer`), or on :meth:`flush`.

    :param max_lines: most lines per batch
    :param max_ms: longest time a line waits in the batch, ms
    """

    def __init__(self, source: str, sink: Sink, max_lines: int = 500, max_ms: int = 200):
        self.source = source
        self.sink = sink
        self.max_lines = max(1, int(max_lines))
        self.max_ms = max(1, int(max_ms))
        self._lines: list[str] = []
        self._rx: list[int] = []
        self._first = 0.0
        self._lock = asyncio.Lock()
        self.lines_in = 0
        self.batches_out = 0
        self._received = metrics.INGEST_LINES.labels(
            source=metrics.source_kind(source), outcome="received"
        )

    async def add(self, line: str, rx_t_ms: int) -> None:
        """Add one line (without terminator) received at ``rx_t_ms``."""
        if not self._lines:
            self._first = time.monotonic()
        self._lines.append(line)
        self._rx.append(rx_t_ms)
        self.lines_in += 1
        self._received.inc()
        if len(self._lines) >= self.max_lines:
            await self.flush()

    async def add_many(self, lines: list[str], rx_t_ms: int) -> None:
        """Add lines received together at ``rx_t_ms``."""
        if not lines:
            return
        if not self._lines:
            self._first = time.monotonic()
        self.lines_in += len(lines)
        self._received.inc(len(lines))
        k = 0
        while k < len(lines):
            room = self.max_lines - len(self._lines)
            take = lines[k : k + room]
            self._lines.extend(take)
            self._rx.extend([rx_t_ms] * len(take))
            k += len(take)
            if len(self._lines) >= self.max_lines:
                await self.flush()
                self._first = time.monotonic()

    async def flush(self) -> None:
        """Send what is pending, if anything."""
        async with self._lock:
            if not self._lines:
                return
            batch = RawAisBatch(source=self.source, lines=self._lines, rx_t_ms=self._rx)
            self._lines, self._rx = [], []
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
    batcher = Batcher(source, sink, max_lines, max_ms)
    timer = asyncio.create_task(batcher.run_timer())
    try:
        yield batcher
    finally:
        timer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await timer
        await asyncio.shield(batcher.flush())


def _split(data: bytes) -> tuple[list[str], bytes]:
    """Complete lines of ``data`` (terminators and empty lines dropped) and the rest.

    A rest longer than :data:`MAX_LINE_BYTES` is cut off as a line of its own, so a
    source that never sends a newline cannot grow memory; it becomes a dead letter.
    """
    parts = data.split(b"\n")
    rest = parts.pop()
    if len(rest) > MAX_LINE_BYTES:
        parts.append(rest)
        rest = b""
    return [p.rstrip(b"\r").decode("latin-1") for p in parts if p.strip()], rest


async def _read_lines(
    reader: asyncio.StreamReader, batcher: Batcher, clock: Clock, idle_timeout_s: float | None
) -> None:
    """Feed the lines of a stream to a batcher until EOF (or idle timeout: TimeoutError).

    Reads in chunks (one receive time per chunk), not line by line.
    """
    rest = b""
    while True:
        chunk = await asyncio.wait_for(reader.read(1 << 16), idle_timeout_s)
        if not chunk:
            if rest.strip():
                await batcher.add(rest.rstrip(b"\r").decode("latin-1"), clock())
            return
        lines, rest = _split(rest + chunk)
        if lines:
            await batcher.add_many(lines, clock())


def backoff_delays(base_s: float = 0.5, max_s: float = 30.0, rng: random.Random | None = None):
    """Reconnect delays: exponential (doubling from ``base_s`` up to ``max_s``) with full jitter.

    :returns: an endless iterator of delays in seconds, each uniform in ``[d/2, d]``
    """
    rng = rng or random.Random()
    d = base_s
    while True:
        yield rng.uniform(d / 2, d)
        d = min(max_s, d * 2)


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
            lines, rest = _split(data + b"\n")
            await b.add_many(lines, rx)
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
    carry = b""
    try:
        async with _batching(source, sink, max_lines, max_ms) as batcher:
            while True:
                chunk = await asyncio.to_thread(f.read1, 1 << 16)  # type: ignore[attr-defined]
                if not chunk:
                    break
                parts = (carry + chunk).split(b"\n")
                carry = parts.pop()
                n += len(parts)
                if pace is None:
                    await batcher.add_many(
                        [ln for p in parts if (ln := p.rstrip(b"\r").decode("latin-1"))], clock()
                    )
                    continue
                for raw in parts:
                    line = raw.rstrip(b"\r").decode("latin-1")
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
                    if line:
                        await batcher.add(line, clock())
            if carry.strip():
                n += 1
                await batcher.add(carry.rstrip(b"\r").decode("latin-1"), clock())
    finally:
        if f is not sys.stdin.buffer:
            f.close()
    return n


class KafkaSink:
    """Publishes raw batches to ``shorewatch.ais.raw.v1`` (key = source id, value = msgspec JSON).

    The producer is idempotent with ``acks='all'`` (:class:`connectors.kafka.RecordProducer`).
    Delivery failures are logged and counted in ``failed``; lines are counted in
    ``shorewatch_ingest_lines_total`` as ``published`` or ``failed`` when the broker
    answers. :meth:`ready`: started, and the newest delivery did not fail.
    """

    def __init__(self, bootstrap: str | None = None):
        from connectors.kafka import RecordProducer

        self.producer = RecordProducer(bootstrap, client_id="shorewatch-ingest-ais")
        self.sent = 0
        self.failed = 0
        self.lines = 0
        self.started = False
        self._last_ok = True

    async def start(self) -> None:
        await self.producer.start()
        self.started = True

    def ready(self) -> tuple[bool, str]:
        """``(ready, why)`` for ``/readyz``."""
        if not self.started:
            return False, "producer not started"
        if not self._last_ok:
            return False, "the newest delivery to Kafka failed"
        return True, f"{self.sent} batches published, {self.failed} failed"

    async def stop(self) -> None:
        await self.producer.flush()
        await self.producer.stop()

    async def __call__(self, batch: RawAisBatch) -> None:
        fut = await self.producer.send(AIS_RAW, batch.source, batch)
        self.lines += len(batch.lines)
        fut.add_done_callback(partial(self._done, batch.source, len(batch.lines)))

    def _done(self, source: str, n_lines: int, fut: asyncio.Future) -> None:
        ok = not fut.cancelled() and fut.exception() is None
        self._last_ok = ok
        metrics.INGEST_LINES.labels(
            source=metrics.source_kind(source), outcome="published" if ok else "failed"
        ).inc(n_lines)
        if not ok:
            self.failed += 1
            log.error(
                "publishing a raw AIS batch failed: %s",
                "cancelled" if fut.cancelled() else fut.exception(),
            )
        else:
            self.sent += 1


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
        sink = KafkaSink()
        await sink.start()
        try:
            async with metrics.serve_from_env("ingest-ais", sink.ready):
                await run_sources(args, sink)
        finally:
            await sink.stop()
            print(
                f"published {sink.sent} batches ({sink.lines} lines), {sink.failed} failed",
                file=sys.stderr,
            )
        return 1 if sink.failed else 0

    return asyncio.run(main())
