"""A real Faust worker (a subprocess, not ``test_context``) between real Kafka topics."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from connectors.kafka import RecordProducer
from pipeline import topics
from pipeline.core.nmea import Deduplicator, Reassembler
from pipeline.engine.decode import decode_batch
from pipeline.fileio import iter_file_lines
from pipeline.tools.demo import wait_until_consuming
from pipeline.tools.worker_process import start_worker_process, stop_worker_process
from schemas import records

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def worker(tmp_path: Path, bootstrap: str, agents: str) -> Iterator[subprocess.Popen]:
    """Run ``shorewatch worker`` as its own process with a fresh consumer group."""
    # the input may be produced before the worker joins: start at the earliest offsets
    proc = start_worker_process(
        bootstrap,
        tmp_path,
        agents=agents,
        app_id_prefix="test",
        extra_env={"SHOREWATCH_AUTO_OFFSET_RESET": "earliest"},
    )
    try:
        yield proc
    finally:
        stop_worker_process(proc)


class TopicTail:
    """Reads one topic from its end at the moment of :meth:`start` on, without a group."""

    def __init__(self, bootstrap: str, topic: str):
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.topic = topic

    async def start(self) -> None:
        await self.consumer.start()
        parts = [
            TopicPartition(self.topic, p) for p in range(topics.BY_NAME[self.topic].partitions)
        ]
        self.consumer.assign(parts)
        await self.consumer.seek_to_end(*parts)
        for tp in parts:  # resolve the end offsets now, before anything is produced
            await self.consumer.position(tp)

    async def collect(self, want: int, match, timeout_s: float) -> list[tuple[bytes, bytes]]:
        """Records matching ``match`` until there are ``want`` of them or time runs out."""
        got: list[tuple[bytes, bytes]] = []
        deadline = time.monotonic() + timeout_s
        while len(got) < want and time.monotonic() < deadline:
            batch = await self.consumer.getmany(timeout_ms=500)
            for msgs in batch.values():
                got += [(m.key, m.value) for m in msgs if match(m.value)]
        return got

    async def stop(self) -> None:
        await self.consumer.stop()


@pytest.mark.integration
def test_decode_agent_in_a_real_worker(kafka_bootstrap: str, shared: Path, tmp_path: Path) -> None:
    lines = (
        (shared / "data/ais/dma_aislib_stream_example.txt")
        .read_text(errors="replace")
        .splitlines()[:400]
    )
    lines += ["!AIVDM,1,1,,A,13u?etPv2;0n:dDPwUM1U1Cb069D,0*FF", "garbage \x01 bytes"]
    source = f"test:{uuid.uuid4().hex[:8]}"
    batch = records.RawAisBatch(
        source=source, lines=lines, rx_t_ms=[1_276_250_000_000] * len(lines)
    )
    expected = decode_batch(batch, Reassembler(), Deduplicator())
    assert len(expected.positions) > 100 and len(expected.dead_letters) >= 2

    async def scenario() -> tuple[list, list]:
        pos_tail = TopicTail(kafka_bootstrap, topics.AIS_POSITION.name)
        dead_tail = TopicTail(kafka_bootstrap, topics.DEADLETTER.name)
        await pos_tail.start()
        await dead_tail.start()
        try:
            async with RecordProducer(kafka_bootstrap) as producer:
                await producer.send_and_wait(topics.AIS_RAW, source, batch)
            tag = f'"source":"{source}"'.encode()
            positions = await pos_tail.collect(len(expected.positions), lambda v: tag in v, 120)
            dead = await dead_tail.collect(len(expected.dead_letters), lambda v: tag in v, 30)
        finally:
            await pos_tail.stop()
            await dead_tail.stop()
        return positions, dead

    with worker(tmp_path, kafka_bootstrap, "decode") as proc:
        positions, dead = asyncio.run(scenario())
        assert proc.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]

    got = [msgspec.json.decode(v, type=records.AisPosition) for _, v in positions]
    assert sorted((p.mmsi, p.t_ms, p.lat, p.lon) for p in got) == sorted(
        (p.mmsi, p.t_ms, p.lat, p.lon) for p in expected.positions
    )
    assert all(k == str(p.mmsi).encode() for (k, _), p in zip(positions, got, strict=True))
    reasons = sorted(msgspec.json.decode(v, type=records.DeadLetter).reason for _, v in dead)
    assert reasons == sorted(d.reason for d in expected.dead_letters)
    assert "bad_checksum" in reasons


@pytest.mark.integration
def test_a_partition_first_written_while_the_worker_is_down_is_read_after_its_restart(
    kafka_bootstrap: str, shared: Path, tmp_path: Path
) -> None:
    """A group that starts at the end of its topics (``auto_offset_reset=latest``) keeps
    that start: a restarted worker reads a partition it had never been handed records on
    from where the group started, not from its end again, so the raw AIS written to it
    while the worker was down is decoded (``LowLatencyConsumer.commit_group_start``)."""
    # lines no other test sends (the file has no repeated payload): the decoder's
    # de-duplication never takes one batch's reports for another's
    text = (shared / "data/ais/dma_aislib_stream_example.txt").read_text(errors="replace")
    lines = {"up": text.splitlines()[1000:1100], "down": text.splitlines()[-400:]}
    n_parts = topics.AIS_RAW.partitions
    tag = uuid.uuid4().hex[:8]
    up = f"test:{tag}:up"
    down = next(  # a source on another ais.raw partition than the one heard before
        s
        for k in range(100)
        if topics.partition_of((s := f"test:{tag}:down{k}").encode(), n_parts)
        != topics.partition_of(up.encode(), n_parts)
    )

    def batch(source: str) -> records.RawAisBatch:
        ls = lines["up" if source == up else "down"]
        return records.RawAisBatch(source=source, lines=ls, rx_t_ms=[1_276_250_000_000] * len(ls))

    want = len(decode_batch(batch(down), Reassembler(), Deduplicator()).positions)
    assert want > 100
    env = {"SHOREWATCH_APP_ID": f"test-start-{tag}", "SHOREWATCH_AUTO_OFFSET_RESET": "latest"}

    async def until_consuming(producer: RecordProducer, tail: TopicTail) -> None:
        # the worker starts at the end of the topic once it is assigned: send until decoded
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            await producer.send_and_wait(topics.AIS_RAW, up, batch(up))
            if await tail.collect(1, lambda v: f'"source":"{up}"'.encode() in v, 5):
                return
        raise AssertionError("the worker decoded nothing in 180 s")

    async def scenario() -> list[tuple[bytes, bytes]]:
        tail = TopicTail(kafka_bootstrap, topics.AIS_POSITION.name)
        await tail.start()
        try:
            async with RecordProducer(kafka_bootstrap) as producer:
                first = start_worker_process(
                    kafka_bootstrap, tmp_path / "w1", agents="decode", extra_env=env
                )
                try:
                    await until_consuming(producer, tail)
                finally:
                    stop_worker_process(first)
                assert first.returncode is not None
                # written while no worker runs, to a partition the group never read
                await producer.send_and_wait(topics.AIS_RAW, down, batch(down))
            second = start_worker_process(
                kafka_bootstrap, tmp_path / "w2", agents="decode", extra_env=env
            )
            try:
                got = await tail.collect(want, lambda v: f'"source":"{down}"'.encode() in v, 180)
                assert second.poll() is None, (tmp_path / "w2/worker.log").read_text()[-3000:]
            finally:
                stop_worker_process(second)
        finally:
            await tail.stop()
        return got

    got = asyncio.run(scenario())
    assert len(got) == want, (tmp_path / "w2/worker.log").read_text()[-3000:]


@pytest.mark.unit
def test_fix_records_keep_order_and_stay_below_the_broker_message_size() -> None:
    from pipeline.engine.columns import PositionColumns
    from pipeline.engine.decode import unpack_fixes
    from pipeline.worker.batching import FIX_BATCH_MAX, FIX_STATICS_MAX
    from pipeline.worker.decode_agent import fix_records

    n = 2 * FIX_BATCH_MAX + 7
    pos = [
        records.AisPosition(
            mmsi=211000000 + i % 3,
            msg_type=(1, 18, 27)[i % 3],
            t_ms=i,
            lon=None if i % 5 == 0 else 10.0 + i * 1e-6,
            lat=55.0,
            sog_kn=None if i % 7 == 0 else 1.5,
            cog_deg=1.0,
            heading_deg=None if i % 3 else 359,
            nav_status=None if i % 3 == 1 else 0,
            accuracy=i % 2 == 0,
            source=f"s{i % 4}",
            rx_t_ms=i + 1,
        )
        for i in range(n)
    ]
    parts = np.array([i % 2 for i in range(n)])  # every other report on partition 1
    names = ["N" * 20 + str(i) for i in range(FIX_STATICS_MAX + 3)]
    sta = {1: [records.AisStatic(mmsi=211000000, msg_type=5, t_ms=0, source="s", name=x)
               for x in names],
           2: [records.AisStatic(mmsi=211000009, msg_type=24, t_ms=0, source="s", name="B")]}  # fmt: skip
    out = list(
        fix_records(PositionColumns.from_records(pos), parts, sta, FIX_BATCH_MAX, FIX_STATICS_MAX)
    )
    recs = [(p, k, msgspec.json.decode(v, type=records.FixColumns)) for p, (k, v) in out]
    assert [(p, r.n, len(r.statics)) for p, _, r in recs] == [
        (0, FIX_BATCH_MAX, 0),
        (0, 4, 0),
        (1, FIX_BATCH_MAX, FIX_STATICS_MAX),
        (1, 3, 3),
        (2, 0, 1),  # statics only
    ]
    for part in (0, 1):
        cols = [unpack_fixes(r) for p, _, r in recs if p == part]
        got = [c.record(i) for c in cols for i in range(len(c))]
        assert got == [x for i, x in enumerate(pos) if i % 2 == part]
        assert [s.name for p, _, r in recs if p == part for s in r.statics] == (
            names if part else []
        )
    for _, key, r in recs:  # key: the record's first MMSI
        first = int(unpack_fixes(r).mmsi[0]) if r.n else r.statics[0].mmsi
        assert key == str(first).encode()
    assert max(len(v) for _, (_, v) in out) < 1_000_000
    assert {(p, r.partition, r.t_ms) for p, _, r in recs} == {(p, p, -1) for p in (0, 1, 2)}


@pytest.mark.unit
def test_every_fixes_partition_carries_the_decode_batch_progress() -> None:
    """With the partition count, partitions without a fix get an empty record: each one
    carries the AIS path's progress in order with its fixes (its watermark's source)."""
    from pipeline.engine.columns import PositionColumns
    from pipeline.engine.decode import unpack_fixes
    from pipeline.worker.decode_agent import fix_records

    pos = [
        records.AisPosition(
            mmsi=211000001, msg_type=1, t_ms=5_000, lon=10.0, lat=55.0, sog_kn=1.0, cog_deg=1.0,
            heading_deg=None, nav_status=0, accuracy=True, source="s", rx_t_ms=5_001,
        )
    ]  # fmt: skip
    out = list(fix_records(PositionColumns.from_records(pos), np.array([2]), {}, 10, 10, 4, 7_000))
    recs = [(p, k, msgspec.json.decode(v, type=records.FixColumns)) for p, (k, v) in out]
    assert [(p, k, r.n, r.partition, r.t_ms) for p, k, r in recs] == [
        (0, b"", 0, 0, 7_000),
        (1, b"", 0, 1, 7_000),
        (2, b"211000001", 1, 2, 7_000),
        (3, b"", 0, 3, 7_000),
    ]
    assert len(unpack_fixes(recs[0][2])) == 0


@pytest.mark.unit
def test_a_corrupt_fix_record_is_an_error_not_wrong_data() -> None:
    from pipeline.engine.decode import unpack_fixes

    good = records.FixColumns(n=1, positions=bytes(63), sources=["s"])
    assert len(unpack_fixes(good)) == 1
    with pytest.raises(ValueError, match="bytes of positions"):
        unpack_fixes(records.FixColumns(n=2, positions=bytes(63), sources=["s"]))
    with pytest.raises(ValueError, match="source index"):
        unpack_fixes(records.FixColumns(n=1, positions=bytes(63), sources=[]))


@pytest.mark.integration
def test_dma_file_through_connector_and_worker(
    kafka_bootstrap: str, shared: Path, tmp_path: Path
) -> None:
    """The whole DMA recording through the AIS connector's file replay and a real worker:
    exactly the expected positions and MMSIs on the topic, and the track table's last fix
    right for the busiest vessels."""
    from test_ais import (  # tests/ is on sys.path (rootdir conftest)
        DMA_POSITION_MMSIS,
        DMA_POSITIONS,
    )

    from connectors.ais import KafkaSink, replay_file

    path = shared / "data/ais/dma_aislib_stream_example.txt"
    source = f"file:dma-{uuid.uuid4().hex[:6]}"
    lines = list(iter_file_lines(str(path)))
    raw = records.RawAisBatch(source=source, lines=lines, rx_t_ms=[0] * len(lines))
    reference = decode_batch(raw, Reassembler(), Deduplicator())
    assert len(reference.positions) == DMA_POSITIONS
    counts: dict[int, int] = {}
    for p in reference.positions:
        counts[p.mmsi] = counts.get(p.mmsi, 0) + 1
    busiest = sorted(counts, key=lambda m: (-counts[m], m))[:5]
    last = {}
    for p in sorted(reference.positions, key=lambda p: p.t_ms):
        if p.mmsi in busiest:
            last[p.mmsi] = p

    async def scenario() -> tuple[list, list]:
        pos_tail = TopicTail(kafka_bootstrap, topics.AIS_POSITION.name)
        track_tail = TopicTail(kafka_bootstrap, topics.TRACK.name)
        await pos_tail.start()
        await track_tail.start()
        try:
            sink = KafkaSink(kafka_bootstrap)
            await sink.start()
            try:
                await replay_file(str(path), sink, source=source)
            finally:
                await sink.stop()
            tag = f'"source":"{source}"'.encode()
            positions = await pos_tail.collect(DMA_POSITIONS, lambda v: tag in v, 180)
            tracks = await track_tail.collect(10**9, lambda v: True, 10)
        finally:
            await pos_tail.stop()
            await track_tail.stop()
        return positions, tracks

    # Start at the end of the topics and wait until the worker consumes: earlier tests put
    # some of these very lines on the raw topic, and the worker's cross-receiver
    # de-duplication would rightly drop the file's copies of them.
    proc = start_worker_process(
        kafka_bootstrap, tmp_path, agents="decode,tracks", app_id_prefix="test"
    )
    try:
        asyncio.run(wait_until_consuming(kafka_bootstrap, proc, tmp_path, 90))
        positions, tracks = asyncio.run(scenario())
        assert proc.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
    finally:
        stop_worker_process(proc)

    got = [msgspec.json.decode(v, type=records.AisPosition) for _, v in positions]
    assert len(got) == DMA_POSITIONS
    assert len({p.mmsi for p in got}) == DMA_POSITION_MMSIS
    latest: dict[int, records.Track] = {}
    for _, v in tracks:
        tr = msgspec.json.decode(v, type=records.Track)
        if tr.mmsi in last and (tr.mmsi not in latest or tr.t_ms >= latest[tr.mmsi].t_ms):
            latest[tr.mmsi] = tr
    for mmsi, p in last.items():
        tr = latest[mmsi]
        assert (tr.t_ms, tr.lat, tr.lon) == (p.t_ms, p.lat, p.lon), mmsi


@pytest.mark.integration
def test_tracks_agent_dead_letters_a_corrupt_fix_record_and_goes_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    import base64

    from aiokafka import AIOKafkaProducer

    from pipeline.engine.columns import PositionColumns
    from pipeline.engine.decode import pack_fixes
    from pipeline.topics import partition_of

    mmsi = 211_990_000 + uuid.uuid4().int % 9_000
    part = partition_of(str(mmsi).encode(), topics.AIS_FIXES.partitions)
    now = int(time.time() * 1000)
    good = records.AisPosition(
        mmsi=mmsi, msg_type=1, t_ms=now, lon=110.3, lat=20.05, sog_kn=3.0, cog_deg=90.0,
        heading_deg=None, nav_status=0, accuracy=True, source="test", rx_t_ms=now,
    )  # fmt: skip
    garbage = b'{"n": 3, "positions": "AAAA", "marker": "' + uuid.uuid4().hex.encode() + b'"}'
    valid = msgspec.json.encode(pack_fixes(PositionColumns.from_records([good]), []))

    async def scenario() -> tuple[list, list]:
        track_tail = TopicTail(kafka_bootstrap, topics.TRACK.name)
        dead_tail = TopicTail(kafka_bootstrap, topics.DEADLETTER.name)
        await track_tail.start()
        await dead_tail.start()
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            key = str(mmsi).encode()
            await producer.send_and_wait(topics.AIS_FIXES.name, garbage, key=key, partition=part)
            await producer.send_and_wait(topics.AIS_FIXES.name, valid, key=key, partition=part)
        finally:
            await producer.stop()
        try:
            tag = f'"mmsi":{mmsi},'.encode()
            tracks = await track_tail.collect(1, lambda v: tag in v, 120)
            b64 = base64.b64encode(garbage)
            dead = await dead_tail.collect(1, lambda v: b64 in v, 30)
        finally:
            await track_tail.stop()
            await dead_tail.stop()
        return tracks, dead

    with worker(tmp_path, kafka_bootstrap, "tracks") as proc:
        tracks, dead = asyncio.run(scenario())
        assert proc.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
    (tr,) = (msgspec.json.decode(v, type=records.Track) for _, v in tracks)
    assert (tr.mmsi, tr.t_ms, tr.lon, tr.lat) == (mmsi, now, 110.3, 20.05)
    (d,) = (msgspec.json.decode(v, type=records.DeadLetter) for _, v in dead)
    assert (d.source, d.reason) == ("ais.fixes", "undecodable_record")
    assert "bytes of positions" in d.detail


@pytest.mark.integration
def test_replay_evicts_idle_tracks_as_the_worker_does(kafka_bootstrap: str, tmp_path: Path) -> None:
    """One engine, two drivers: a vessel silent for longer than the idle limit is evicted
    by the worker's tracks agent and by replay alike, and its next fix starts a new track.

    The worker's sweep clock is the newest event time it has seen, never more than a few
    minutes past its wall clock nor past the AIS path's progress (the minimum over the
    sources still sending), and other tests leave records stamped with the wall clock on
    the topics; so the vessel's first fix lies an idle limit in the past, and the fix of a
    second vessel that moves event time on lies four minutes ahead of now. The lines come
    from the source of the probes that tell the worker is consuming (stamped now), after
    the decode stage's warm-up: one source, whose newest time is the progress, as replay's
    merged input is."""
    from aiokafka import AIOKafkaProducer

    from pipeline.engine.source_progress import SOURCE_WARMUP_MS
    from pipeline.engine.tracks import EVICT_SWEEP_MS, TrackParams
    from pipeline.replay import run_replay
    from pipeline.tools.sentinels import sentinel

    a = 211_980_000 + uuid.uuid4().int % 5_000
    b = a + 5_000
    idle_ms = int(TrackParams().idle_evict_s * 1000)
    now = int(time.time() * 1000) // 1000 * 1000
    t_a = now - idle_ms - 10_000
    t_b = now + 4 * 60_000
    t_back = now + 4 * 60_000 + 30_000
    lines = [(a, t_a, 110.30), (b, t_b, 110.40), (a, t_back, 110.50)]
    assert t_b - t_a > idle_ms and t_b - t_a > EVICT_SWEEP_MS
    text = [sentinel(m, t, lon=lon) for m, t, lon in lines]

    # replay: the same lines, one per micro-batch window
    path = tmp_path / "evict.nmea"
    path.write_text("\n".join(text) + "\n")
    replayed = run_replay(REPO / "sites" / "haikou", [path])

    async def scenario() -> list[records.Track]:
        tail = TopicTail(kafka_bootstrap, topics.TRACK.name)
        await tail.start()
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        source = "demo:probe"  # wait_until_consuming's: one source
        got: list[records.Track] = []
        try:
            for (m, t, _lon), line in zip(lines, text, strict=True):
                raw = records.RawAisBatch(source=source, lines=[line], rx_t_ms=[t])
                await producer.send_and_wait(
                    topics.AIS_RAW.name, msgspec.json.encode(raw), key=source.encode()
                )

                # one line at a time: each is its own batch, as in replay's windows
                def is_update(v: bytes, m: int = m, t: int = t) -> bool:
                    tr = msgspec.json.decode(v, type=records.Track)
                    return tr.mmsi == m and tr.t_ms == t

                found = await tail.collect(1, is_update, 60)
                assert found, f"no track update for {m} at {t}"
                got += [msgspec.json.decode(v, type=records.Track) for _, v in found]
        finally:
            await producer.stop()
            await tail.stop()
        return got

    with worker(tmp_path, kafka_bootstrap, "decode,tracks") as proc:
        asyncio.run(wait_until_consuming(kafka_bootstrap, proc, tmp_path, 90))
        # the decode stage states no progress (so no sweep is made) for its warm-up after
        # its first record, a probe: the lines come after it
        time.sleep(SOURCE_WARMUP_MS / 1000 + 1)
        # earlier tests' sources on ais.raw hold the progress back until they have been
        # idle while the stage received input: probes until the progress is the probes'
        asyncio.run(_progress_reaches_now(kafka_bootstrap, proc, 180))
        live = asyncio.run(scenario())  # the sweep clock is past earlier tests' records
        assert proc.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
    back = [tr for tr in live if tr.mmsi == a][-1]
    assert (back.t_ms, back.first_t_ms, back.n_fixes) == (t_back, t_back, 1)  # a new track
    assert _evicted_on_topic(kafka_bootstrap, {a, b}) == [a]
    assert replayed.counters["tracks.evicted"] == 1


async def _progress_reaches_now(bootstrap: str, proc, timeout_s: float) -> None:
    """Send probe fixes (far outside the site, source ``demo:probe``, stamped now) every
    second until the decode stage's progress on ``ais.fixes`` has reached one of them."""
    from aiokafka import AIOKafkaProducer

    from pipeline.tools.sentinels import sentinel, sentinel_mmsis

    tail = TopicTail(bootstrap, topics.AIS_FIXES.name)
    await tail.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    first = int(time.time() * 1000)

    def reached(v: bytes) -> bool:
        return msgspec.json.decode(v, type=records.FixColumns).t_ms >= first

    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the worker exited"
            t = max(first, int(time.time() * 1000))
            lines = [sentinel(m, t, lon=10.0, lat=56.0) for m in sentinel_mmsis(1)]
            raw = records.RawAisBatch(source="demo:probe", lines=lines, rx_t_ms=[t] * len(lines))
            await producer.send_and_wait(
                topics.AIS_RAW.name, msgspec.json.encode(raw), key=b"demo:probe"
            )
            if await tail.collect(1, reached, 1.0):
                return
        raise AssertionError(f"the decode stage's progress never reached {first}")
    finally:
        await producer.stop()
        await tail.stop()


def _evicted_on_topic(bootstrap: str, mmsis: set[int]) -> list[int]:
    """MMSIs among ``mmsis`` with an ``evicted`` record on the track topic."""

    async def read() -> list[int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            parts = [TopicPartition(topics.TRACK.name, p) for p in range(topics.TRACK.partitions)]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            out: list[int] = []
            while any([await consumer.position(tp) < ends[tp] for tp in parts]):
                for msgs in (await consumer.getmany(timeout_ms=500)).values():
                    for msg in msgs:
                        tr = msgspec.json.decode(msg.value, type=records.Track)
                        if tr.mmsi in mmsis and tr.event == "evicted":
                            out.append(tr.mmsi)
            return sorted(out)
        finally:
            await consumer.stop()

    return asyncio.run(read())
