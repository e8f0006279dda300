"""AIS sources against real loopback sockets and real files; a list sink instead of Kafka."""

from __future__ import annotations

import argparse
import asyncio
import gzip
import random
import socket

import pytest

from connectors import ais as conn
from connectors.kafka import Pace
from pipeline.core.nmea import line_time_ms
from schemas.records import RawAisBatch

LINES = [
    "!AIVDM,1,1,,B,19NWuLhuRb5QHfCpPcwj`26B0<02,0*5F",
    "!AIVDM,1,1,,B,33:JeT0OjqVls4qfDlpT7CF@20U@,0*03",
    "!AIVDM,1,1,,B,19NS=7P01M69i6si`B@iq1`D00R?,0*6E",
]


class ListSink:
    def __init__(self) -> None:
        self.batches: list[RawAisBatch] = []
        self.changed = asyncio.Event()

    async def __call__(self, batch: RawAisBatch) -> None:
        self.batches.append(batch)
        self.changed.set()

    @property
    def lines(self) -> list[str]:
        return [ln for b in self.batches for ln in b.lines]

    async def wait_lines(self, n: int, timeout_s: float = 10.0) -> None:
        async def _wait() -> None:
            while len(self.lines) < n:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(_wait(), timeout_s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def cancel(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.mark.unit
async def test_batcher_cuts_by_lines_and_by_time():
    sink = ListSink()
    b = conn.Batcher("s", sink, max_lines=2, max_ms=50)
    timer = asyncio.create_task(b.run_timer())
    for i, line in enumerate(LINES):
        await b.add(line, 100 + i)
    assert [len(x.lines) for x in sink.batches] == [2]  # full batch sent at once
    await sink.wait_lines(3, 5)  # the third line leaves with the timer
    await cancel(timer)
    assert [x.rx_t_ms for x in sink.batches] == [[100, 101], [102]]
    assert all(x.source == "s" for x in sink.batches)


@pytest.mark.unit
def test_backoff_grows_exponentially_with_jitter():
    d = conn.backoff_delays(0.5, 8.0, random.Random(1))
    delays = [next(d) for _ in range(8)]
    caps = [0.5, 1, 2, 4, 8, 8, 8, 8]
    assert all(c / 2 <= x <= c for x, c in zip(delays, caps, strict=True))
    assert len(set(delays)) == len(delays)  # jittered


@pytest.mark.integration
async def test_tcp_client_reconnects_after_refusal_and_after_peer_closes():
    port = free_port()
    sink = ListSink()
    stats: dict[str, int] = {}
    client = asyncio.create_task(
        conn.tcp_client(
            "127.0.0.1",
            port,
            sink,
            max_lines=10,
            max_ms=20,
            base_delay_s=0.05,
            max_delay_s=0.2,
            stats=stats,
            clock=lambda: 42,
        )
    )
    await asyncio.sleep(0.2)  # nobody listens yet: connection refused, retried
    assert stats.get("failures", 0) >= 1 and not stats.get("connects")
    sessions = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sessions
        sessions += 1
        # first session: two lines then hang up; second: the rest, split across writes
        if sessions == 1:
            writer.write(("\r\n".join(LINES[:2]) + "\r\n").encode())
        else:
            data = ("\n".join(LINES[2:]) + "\n").encode()
            writer.write(data[:10])
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(data[10:])
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", port)
    try:
        await sink.wait_lines(3)
    finally:
        server.close()
        await cancel(client)
    assert sink.lines[:3] == LINES
    assert stats["connects"] >= 2
    assert {b.source for b in sink.batches} == {f"tcp:127.0.0.1:{port}"}
    assert all(t == 42 for b in sink.batches for t in b.rx_t_ms)


@pytest.mark.integration
async def test_tcp_client_survives_overlong_garbage():
    sink = ListSink()
    dead: list = []

    async def dead_letter(d) -> None:
        dead.append(d)
        sink.changed.set()

    sink.dead_letter = dead_letter  # type: ignore[attr-defined]
    go_on = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write((LINES[1] + "\n").encode() + b"x" * 10_000)  # no newline: no waiting
        await writer.drain()
        await go_on.wait()
        writer.write(b"y" * 5_000 + b"\n" + (LINES[0] + "\n").encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = asyncio.create_task(conn.tcp_client("127.0.0.1", port, sink, max_ms=20))
    try:
        await sink.wait_lines(1)
        go_on.set()
        await sink.wait_lines(2)
        while not dead:
            await asyncio.wait_for(sink.changed.wait(), 10)
            sink.changed.clear()
    finally:
        server.close()
        await cancel(client)
    # the over-long line is not cut into pieces: one dead letter, head kept, length told
    assert sink.lines == [LINES[1], LINES[0]]
    assert len(dead) == 1 and dead[0].reason == "too_long"
    import base64

    assert base64.b64decode(dead[0].raw_b64) == b"x" * conn.MAX_LINE_BYTES
    assert "15000 bytes" in dead[0].detail and dead[0].source == f"tcp:127.0.0.1:{port}"


@pytest.mark.integration
async def test_tcp_server_keeps_one_source_per_peer():
    sink = ListSink()
    started: asyncio.Future = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(conn.tcp_server("127.0.0.1", 0, sink, max_ms=20, started=started))
    port = await asyncio.wait_for(started, 5)
    try:
        for line in LINES[:2]:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.write((line + "\n").encode())
            await w.drain()
            w.close()
        await sink.wait_lines(2)
    finally:
        await cancel(server)
    assert sorted(sink.lines) == sorted(LINES[:2])
    assert {b.source for b in sink.batches} == {f"tcp-in:{port}:127.0.0.1"}


@pytest.mark.integration
async def test_udp_listener_splits_datagrams_into_lines():
    sink = ListSink()
    started: asyncio.Future = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(conn.udp_listener("127.0.0.1", 0, sink, max_ms=20, started=started))
    port = await asyncio.wait_for(started, 5)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(("\r\n".join(LINES[:2]) + "\r\n").encode(), ("127.0.0.1", port))
            s.sendto(LINES[2].encode(), ("127.0.0.1", port))
        await sink.wait_lines(3)
    finally:
        await cancel(task)
    assert sink.lines == LINES
    assert {b.source for b in sink.batches} == {f"udp:{port}:127.0.0.1"}


@pytest.mark.integration
async def test_file_replay_paces_by_message_time(shared):
    path = shared / "data" / "ais" / "dma_aislib_stream_example.txt"
    lines = path.read_text().splitlines()
    times = [t for t in map(line_time_ms, lines) if t is not None]
    waits: list[float] = []

    async def fake_sleep(s: float) -> None:  # record the pacing instead of waiting
        waits.append(s)

    sink = ListSink()
    n = await conn.replay_file(str(path), sink, speed=10.0, max_lines=1000, sleep=fake_sleep)
    assert n == len(lines) and sink.lines == lines
    assert sink.batches[0].source == "file:dma_aislib_stream_example.txt"
    span_s = (max(times) - times[0]) / 1000
    # each wait targets t0 + (t - t0) / speed on the wall clock; the fake sleep does not
    # advance it, so the largest wait is the whole span divided by the speed
    assert waits and max(waits) == pytest.approx(span_s / 10, abs=0.5)
    assert len(sink.batches) > 1  # flushed before each wait

    # a Pace plays a window of event time at real time, the rest at its speed
    t0, t1 = times[0], max(times)
    mid = t0 + (t1 - t0) // 2
    window = (mid, mid + 10_000)
    waits.clear()
    pace = Pace(10.0, (window,))
    await conn.replay_file(str(path), ListSink(), speed=pace, max_lines=1000, sleep=fake_sleep)
    expect_s = ((t1 - t0 - 10_000) / 10 + 10_000) / 1000
    assert pace.wall_s(t0, t1) == pytest.approx(expect_s)
    assert max(waits) == pytest.approx(expect_s, abs=0.5)
    assert pace.wall_s(t0, mid) == pytest.approx((mid - t0) / 10_000)  # before the window
    for t in (t0, mid - 1, mid + 5_000, t1, t1 + 60_000):  # event_ms is its inverse
        assert pace.event_ms(t0, pace.wall_s(t0, t)) == pytest.approx(t, abs=1)


@pytest.mark.integration
async def test_file_replay_max_speed_gzip_and_real_sleep(shared, tmp_path):
    src = shared / "data" / "ais" / "amsa_risky_ais.txt.gz"
    sink = ListSink()
    n = await conn.replay_file(str(src), sink, speed=None, max_lines=5000)
    with gzip.open(src, "rt", encoding="latin-1") as f:
        expected = [ln.rstrip("\r\n") for ln in f]
    assert n == len(expected) == 44687
    assert sink.lines == [ln for ln in expected if ln]
    # a real, short paced replay: two lines 1 s apart at speed 20
    p = tmp_path / "two.nmea"
    p.write_text("\\c:1000000000*00\\" + LINES[0] + "\n\\c:1000000001*00\\" + LINES[1] + "\n")
    sink2 = ListSink()
    await conn.replay_file(str(p), sink2, speed=20.0, max_ms=10)
    assert len(sink2.lines) == 2 and len(sink2.batches) == 2


@pytest.mark.integration
async def test_one_bad_source_does_not_stop_the_others(shared, tmp_path):
    good = tmp_path / "good.nmea"
    good.write_text("\n".join(LINES) + "\n")
    args = argparse.Namespace(
        tcp=[],
        listen_tcp=[],
        udp=[],
        bind="127.0.0.1",
        file=[str(tmp_path / "missing.nmea"), str(good)],
        speed="max",
        batch_lines=100,
        batch_ms=20,
    )
    sink = ListSink()
    await asyncio.wait_for(conn.run_sources(args, sink), 10)
    assert sink.lines == LINES


@pytest.mark.integration
async def test_kafka_sink_publishes_batches_keyed_by_source(kafka_bootstrap, tmp_path):
    import uuid

    import msgspec
    from aiokafka import AIOKafkaConsumer

    from pipeline.topics import AIS_RAW

    path = tmp_path / f"{uuid.uuid4().hex}.nmea"
    path.write_text("\n".join(LINES * 5) + "\n")
    sink = conn.KafkaSink(kafka_bootstrap)
    await sink.start()
    try:
        await conn.replay_file(str(path), sink, max_lines=4)
    finally:
        await sink.stop()
    assert sink.sent == 4 and sink.failed == 0  # 15 lines in batches of 4
    source = f"file:{path.name}"
    consumer = AIOKafkaConsumer(
        AIS_RAW.name,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"test-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[RawAisBatch] = []
    try:

        async def collect() -> None:
            async for rec in consumer:
                if rec.key == source.encode():
                    got.append(msgspec.json.decode(rec.value, type=RawAisBatch))
                    if sum(len(b.lines) for b in got) >= 15:
                        return

        await asyncio.wait_for(collect(), 60)
    finally:
        await consumer.stop()
    assert [ln for b in got for ln in b.lines] == LINES * 5  # one partition: order kept
    assert all(b.source == source and len(b.rx_t_ms) == len(b.lines) for b in got)


@pytest.mark.unit
def test_ingest_command_to_stdout(shared, capsys):
    import msgspec

    from pipeline.cli import main

    path = shared / "data" / "ais" / "pyais_timestamped.ais"
    assert main(["ingest", "ais", "--file", str(path), "--stdout", "--batch-lines", "4"]) == 0
    batches = [
        msgspec.json.decode(ln, type=RawAisBatch) for ln in capsys.readouterr().out.splitlines()
    ]
    expected = [ln for ln in path.read_text().splitlines() if ln]
    assert [ln for b in batches for ln in b.lines] == expected
    assert {b.source for b in batches} == {"file:pyais_timestamped.ais"}
    assert max(len(b.lines) for b in batches) == 4


@pytest.mark.unit
def test_ingest_command_needs_a_source(capsys):
    from pipeline.cli import main

    assert main(["ingest", "ais"]) == 2
    assert "at least one source" in capsys.readouterr().err
