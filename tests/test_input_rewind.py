"""Nothing acknowledged unapplied: the area resumes ``fusion.input`` from the offsets its
state applied, not from the consumer group's committed offset
(:mod:`pipeline.worker.input_rewind`)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import msgspec
import pytest

from pipeline.worker.input_rewind import InputRewinds

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------ the offset rule
@pytest.mark.unit
def test_input_past_the_applied_offset_is_sought_back_until_the_gap_is_read() -> None:
    r = InputRewinds()
    applied = {3: 100}
    # the state applied up to 99; the consumer hands 140.. (100..139 acknowledged unapplied)
    rewind, accepted = r.gaps([(3, 140), (3, 141)], applied)
    assert rewind == {3: 100} and accepted == {}
    assert r.take_seeks() == {3: 100}
    # what was queued behind it before the seek: still past the gap, left out, no new seek
    assert r.gaps([(3, 142)], applied) == ({3: 100}, {})
    assert r.take_seeks() == {}
    # the gap read again: applied as handed
    assert r.gaps([(3, 100), (3, 101)], applied) == ({}, {})
    assert r.tries == {} and r.pending == {}


@pytest.mark.unit
def test_input_queued_before_a_seek_counts_as_no_try() -> None:
    """A stream holds thousands of events fetched before the seek: they come past the gap
    at rising offsets, within a second, and must not use up the tries (a gap accepted
    that way loses the input the seek was about to read again)."""
    now = [0.0]
    r = InputRewinds(tries_max=3, wait_s=5.0, clock=lambda: now[0])
    applied = {3: 49609}
    for k in range(50):  # 50 queued micro-batches in 2 s
        now[0] = k * 0.04
        o = 49700 + 10 * k
        assert r.gaps([(3, o), (3, o + 9)], applied) == ({3: 49609}, {})
    assert r.take_seeks() == {3: 49609}  # one seek, one try
    assert r.tries == {3: (49609, 1)}
    # the seek lost (a rebalance): after wait_s, input still past the gap seeks again
    now[0] = 7.0
    assert r.gaps([(3, 50300)], applied) == ({3: 49609}, {})
    assert r.take_seeks() == {3: 49609} and r.tries == {3: (49609, 2)}
    # the seek took effect and the gap is read: applied
    assert r.gaps([(3, 49609), (3, 49610)], applied) == ({}, {})
    assert r.tries == {}


@pytest.mark.unit
def test_input_in_order_or_without_a_state_is_applied_as_handed() -> None:
    r = InputRewinds()
    assert r.gaps([(0, 100), (0, 101), (1, 7)], {0: 100}) == ({}, {})
    assert r.gaps([(0, 5000)], {}) == ({}, {})  # nothing applied yet: nothing to rewind to
    assert r.gaps([(1, 9)], {0: 100}) == ({}, {})  # another partition than the state's
    assert r.sought == set()


@pytest.mark.unit
def test_copies_brought_by_a_seek_back_are_skipped_not_applied_twice() -> None:
    r = InputRewinds()
    r.gaps([(3, 140)], {3: 100})
    # applied 100..139 since; the consumer hands 120 again (fetched twice after the seek)
    assert r.resent((3, 120), {3: 140})
    assert not r.resent((3, 140), {3: 140})
    # without a seek of its own, input handed again is the restored-offset rule's business
    r.assigned()
    assert not r.resent((3, 120), {3: 140})


@pytest.mark.unit
def test_a_gap_that_stays_after_the_rewinds_is_accepted() -> None:
    """Records removed by retention can not be read again: after ``tries_max`` rewinds to
    the same offset the gap is accepted (and counted by the agent)."""
    r = InputRewinds(tries_max=3)
    # each time the seek takes effect the log starts at 500 again (at or below what was
    # handed since the seek): a new try
    for _ in range(3):
        assert r.gaps([(0, 500)], {0: 100}) == ({0: 100}, {})
        assert r.take_seeks() == {0: 100}
    assert r.gaps([(0, 500)], {0: 100}) == ({}, {0: 100})


@pytest.mark.unit
def test_dead_lettered_input_is_never_rewound_to() -> None:
    """A failed step dead-letters its micro-batch and writes no state: the next batch is
    past the state's offsets, but stepping the failed one again would fail again."""
    r = InputRewinds()
    r.account([(0, 100), (0, 101), (0, 102)])
    assert r.gaps([(0, 103)], {0: 100}) == ({}, {})
    assert r.gaps([(0, 110)], {0: 100}) == ({0: 103}, {})


# ------------------------------------------------------------------ against a real broker
def _track(mmsi: int, t_ms: int) -> bytes:
    from schemas.records import FusionInput, Track

    tr = Track(
        mmsi=mmsi, t_ms=t_ms, lon=110.30, lat=20.10, sog_kn=5.0, cog_deg=90.0, heading_deg=None,
        vel_east_mps=2.5, vel_north_mps=0.0, ais_class="A", n_fixes=10, expected_interval_s=10.0,
        last_gap_s=10.0, max_gap_s=10.0, mmsi_kind="ship", mid=413,
    )  # fmt: skip
    return msgspec.json.encode(FusionInput(area=_area(), track=tr))


def _area() -> str:
    from pipeline.settings import Settings
    from pipeline.site import load_site

    return load_site(REPO / Settings().site).name


async def _area_rows(bootstrap: str, app_id: str, area: str) -> dict[bytes, bytes]:
    """The area's rows as its changelog holds them now (tombstones applied)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from pipeline import topics
    from pipeline.engine.state_rows import row_prefix
    from pipeline.tools.area_progress import changelog_topic

    topic = changelog_topic(app_id)
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        if topic not in await c.topics():
            return {}
        parts = [TopicPartition(topic, p) for p in range(topics.FUSION_INPUT.partitions)]
        c.assign(parts)
        await c.seek_to_beginning(*parts)
        ends = await c.end_offsets(parts)
        rows: dict[bytes, bytes] = {}
        prefix = row_prefix(area)

        async def behind() -> bool:
            return any([await c.position(tp) < ends[tp] for tp in parts])

        while await behind():
            for msgs in (await c.getmany(timeout_ms=500)).values():
                for m in msgs:
                    if m.key is None or not m.key.startswith(prefix):
                        continue
                    if m.value is None:
                        rows.pop(m.key, None)
                    else:
                        rows[m.key] = m.value
        return rows
    finally:
        await c.stop()


async def _wait_applied(
    bootstrap: str, app_id: str, area: str, partition: int, offset: int, proc, timeout_s: float
) -> dict[bytes, bytes]:
    """The area's rows once the offsets its state applied reach ``offset``."""
    from pipeline.worker.area_store import input_key

    dec = msgspec.msgpack.Decoder(dict[int, int])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the worker exited"
        rows = await _area_rows(bootstrap, app_id, area)
        raw = rows.get(input_key(area))
        if raw and dec.decode(raw).get(partition, -1) >= offset:
            return rows
        await asyncio.sleep(1.0)
    raise AssertionError(f"the area's state did not reach offset {offset} in {timeout_s} s")


async def _end(bootstrap: str, partition: int) -> int:
    """The end offset of ``fusion.input`` partition ``partition`` now."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from pipeline import topics

    tp = TopicPartition(topics.FUSION_INPUT.name, partition)
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        return (await c.end_offsets([tp]))[tp]
    finally:
        await c.stop()


async def _commit(bootstrap: str, group: str, partition: int, offset: int) -> None:
    """Commit ``offset`` for the group on ``fusion.input``: what Faust does for input it
    acknowledged, applied or not. Retried while the group still has its old member."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from pipeline import topics

    tp = TopicPartition(topics.FUSION_INPUT.name, partition)
    deadline = time.monotonic() + 90
    while True:
        c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        await c.start()
        try:
            c.assign([tp])
            await c.commit({tp: offset})
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
        finally:
            await c.stop()
        await asyncio.sleep(2.0)


@pytest.mark.integration
def test_input_acknowledged_unapplied_is_applied_exactly_once_after_restart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A worker applies batch A and stops; batch B is then acknowledged without being
    applied (the group's committed offset moved past it, as when a batch taken just before
    a revocation or a stop is fenced and still acked); batch C follows. The restarted
    worker must apply B and C, every record exactly once: before the rule it resumed at
    the committed offset and B was never applied."""
    from aiokafka import AIOKafkaProducer

    from pipeline import topics
    from pipeline.engine.state_rows import join_rows
    from pipeline.tools.worker_process import start_worker_process, stop_worker_process
    from pipeline.topics import partition_of

    area = _area()
    part = partition_of(area.encode(), topics.FUSION_INPUT.partitions)
    app_id = f"fence-{uuid.uuid4().hex[:8]}"
    env = {"SHOREWATCH_APP_ID": app_id, "SHOREWATCH_AUTO_OFFSET_RESET": "earliest"}
    base = 413_600_000 + (uuid.uuid4().int % 1000) * 100  # this run's vessels
    t0 = int(time.time() * 1000) - 3_600_000

    async def send(producer: AIOKafkaProducer, first: int, n: int) -> int:
        last = -1
        for k in range(first, first + n):
            md = await producer.send_and_wait(
                topics.FUSION_INPUT.name, _track(base + k, t0 + k * 1000), key=area.encode()
            )
            assert md.partition == part
            last = md.offset
        return last

    async def scenario() -> AreaRows:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            # the group starts at the partition's end now: the area's input that earlier
            # tests left on the shared broker is not this test's
            await _commit(kafka_bootstrap, app_id, part, await _end(kafka_bootstrap, part))
            w1 = start_worker_process(
                kafka_bootstrap, tmp_path / "w1", agents="area", extra_env=env
            )
            try:
                last_a = await send(producer, 0, 20)
                await _wait_applied(kafka_bootstrap, app_id, area, part, last_a + 1, w1, 240)
            finally:
                stop_worker_process(w1)
            last_b = await send(producer, 20, 20)
            await _commit(kafka_bootstrap, app_id, part, last_b + 1)  # acked, never applied
            last_c = await send(producer, 40, 20)
            w2 = start_worker_process(
                kafka_bootstrap, tmp_path / "w2", agents="area", extra_env=env
            )
            try:
                rows = await _wait_applied(kafka_bootstrap, app_id, area, part, last_c + 1, w2, 240)
            finally:
                stop_worker_process(w2)
            return AreaRows(rows, (tmp_path / "w2" / "worker.log").read_text())
        finally:
            await producer.stop()

    got = asyncio.run(scenario())
    st = join_rows(area, got.rows)
    assert st is not None
    # no AIS watermark came: the area holds every track it applied, each as often as applied
    ours = sorted(t.mmsi for t in st.held_tracks if base <= t.mmsi < base + 100)
    assert ours == [base + k for k in range(60)], (
        f"applied: {len(ours)} of 60, missing {sorted(set(range(base, base + 60)) - set(ours))}"
    )
    assert "sought back" in got.log


class AreaRows(msgspec.Struct):
    rows: dict[bytes, bytes]
    log: str
