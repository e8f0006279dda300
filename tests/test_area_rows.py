"""The area's state as rows of bounded size: a busy coast whose state is over 1 MB as one
record goes through the broker row by row and comes back intact; a rebalance writes no
area state older than one already written."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest
from test_detectors import NIGHT, ctx, fix, lat_at, run

from pipeline.engine.area import area_step
from pipeline.engine.state import AreaState
from pipeline.engine.state_rows import CHUNK_MAX_BYTES, diff_rows, join_rows, split_rows

KAFKA_MESSAGE_MAX = 1_000_000


@pytest.fixture(scope="module")
def busy_coast():
    """600 vessels at anchor off the test coast, reporting every 30 s for 20 minutes."""
    ps = []
    for i in range(600):
        lon = 110.02 + (i % 30) * 0.008
        lat = lat_at(800 + (i // 30) * 600)
        for k in range(40):
            ps.append(fix(413_000_000 + i, NIGHT + k * 30_000 + i * 10, lon + k * 1e-5, lat, 0.2))
    c = ctx()
    st, _ = run(c, ps, batch_s=60)
    return c, st, ps


def _apply(table: dict[bytes, bytes], changed: dict[bytes, bytes], deleted: list[bytes]) -> None:
    for k in deleted:
        table.pop(k, None)
    table.update(changed)


@pytest.mark.unit
def test_a_busy_coast_state_over_1_mb_splits_into_small_rows_and_joins_back(busy_coast) -> None:
    _, st, _ = busy_coast
    whole = st.to_bytes()
    assert len(whole) > KAFKA_MESSAGE_MAX  # one record would not pass the broker
    rows = split_rows("testcoast", st)
    assert len(rows) > 600  # a row per vessel at least
    assert max(len(v) for v in rows.values()) < 64 * 1024
    back = join_rows("testcoast", rows)
    assert back is not None and back.to_bytes() == whole
    assert join_rows("othercoast", rows) is None


@pytest.mark.unit
def test_held_input_goes_in_bounded_chunks_in_order(busy_coast) -> None:
    c, st, ps = busy_coast
    held = msgspec.structs.replace(st)
    tracks = [v.track for v in st.vessels.values()]
    held.held_tracks = [
        msgspec.structs.replace(t, t_ms=t.t_ms + k) for k in range(8) for t in tracks
    ]
    rows = split_rows("testcoast", held)
    chunks = [k for k in rows if b"/held_tracks/" in k]
    assert len(chunks) > 1
    assert all(len(rows[k]) <= CHUNK_MAX_BYTES + 4096 for k in chunks)
    back = join_rows("testcoast", rows)
    assert back is not None and back.held_tracks == held.held_tracks


@pytest.mark.unit
def test_a_step_rewrites_only_what_changed_and_deletes_what_went(busy_coast) -> None:
    c, st, ps = busy_coast
    table = split_rows("testcoast", st)
    st2 = AreaState.from_bytes(st.to_bytes())
    last = max(p.t_ms for p in ps)
    one = st2.vessels[413_000_007].track
    moved = msgspec.structs.replace(one, t_ms=last + 60_000, lon=one.lon + 1e-4)
    st2, _ = area_step(st2, [moved], [], c)
    gone = next(iter(st2.vessels))
    del st2.vessels[gone]
    rows2 = split_rows("testcoast", st2)
    changed, deleted = diff_rows(table, rows2)
    assert f"testcoast/vessels/{gone}".encode() in deleted
    assert b"testcoast/vessels/413000007" in changed
    assert list(changed)[-1] == b"testcoast/head"  # the head last
    assert len(changed) < len(rows2) // 10  # not every vessel and episode again
    _apply(table, changed, deleted)
    back = join_rows("testcoast", table)
    assert back is not None and back.to_bytes() == st2.to_bytes()


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_a_busy_coast_state_goes_through_the_broker_as_rows(
    busy_coast, kafka_bootstrap: str
) -> None:
    """The whole record is refused by the broker's limit; the rows pass, and the state
    read back from the (compacted) topic is the state written, after a second step too."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import MessageSizeTooLargeError

    _, st, _ = busy_coast
    topic = "test-area-rows-changelog"
    rows = split_rows("testcoast", st)
    st2 = AreaState.from_bytes(st.to_bytes())
    for k in list(st2.vessels)[:100]:
        del st2.vessels[k]
    st2.released_t_ms += 1000
    changed, deleted = diff_rows(rows, split_rows("testcoast", st2))

    async def scenario() -> dict[bytes, bytes]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(topic, 1, 1, topic_configs={"cleanup.policy": "compact"})]
            )
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            with pytest.raises(MessageSizeTooLargeError):
                await producer.send_and_wait(topic, st.to_bytes(), key=b"testcoast")
            for k, v in rows.items():
                await producer.send(topic, v, key=k, partition=0)
            for k in deleted:
                await producer.send(topic, None, key=k, partition=0)
            for k, v in changed.items():
                await producer.send(topic, v, key=k, partition=0)
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
        await consumer.start()
        table: dict[bytes, bytes] = {}
        try:
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            pos = 0
            while pos < end:
                got = await consumer.getmany(tp, timeout_ms=2000)
                for m in got.get(tp, []):
                    if m.value is None:
                        table.pop(m.key, None)
                    else:
                        table[m.key] = m.value
                    pos = m.offset + 1
        finally:
            await consumer.stop()
        return table

    table = asyncio.run(scenario())
    back = join_rows("testcoast", table)
    assert back is not None and back.to_bytes() == st2.to_bytes()
    assert len(back.vessels) == 500


@pytest.mark.integration
@pytest.mark.timeout(1500)  # a short night through the pipeline, then its replay in-process
def test_a_rebalance_writes_no_area_state_older_than_one_written(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A second worker joins mid-night and the first leaves (SIGTERM): on the areas
    changelog, every area state written is at least as far in event time as the one
    before it, whichever worker wrote it."""
    from pipeline.tools.chaos import Broker, ChaosConfig, run_scenario

    r = run_scenario(
        "worker-join-leave", ChaosConfig.short(), Broker(kafka_bootstrap, False), tmp_path
    )
    assert "fault_error" not in r.detail, r.row()
    assert r.detail["area_heads"] > 10, r.detail  # states were written, by both workers
    assert r.detail["stale_writes"] == 0, r.detail
    assert r.duplicate_opens == 0, r.row()


@pytest.mark.integration
@pytest.mark.timeout(1500)  # a short night through the pipeline, then its replay in-process
def test_a_worker_killed_and_restarted_resumes_its_area_without_a_second_open(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """SIGKILL of the worker mid-night, restarted at once as the same static member: it
    is back within the goal of 60 s, its restored area writes nothing older than what was
    written, no alert is opened twice with a different content, and the alerts are
    replay's."""
    from pipeline.tools.chaos import Broker, ChaosConfig, run_scenario

    r = run_scenario("worker-kill", ChaosConfig.short(), Broker(kafka_bootstrap, False), tmp_path)
    assert "fault_error" not in r.detail, r.row()
    assert r.detail["area_heads"] > 10, r.detail
    assert r.detail["stale_writes"] == 0, r.detail
    assert r.duplicate_opens == 0, r.row()
    assert r.positions_lost == 0, r.detail
    assert r.recovery_s is not None and r.recovery_s < 60, r.row()
    # compared once the area had passed the compared night: replay's alerts, no other
    # (the restarted worker's backlog reaches the area fix by fix, not as AIS silence)
    assert r.detail["area_reached"], r.detail
    assert (r.equal, r.extra, r.missing) == (r.expected, 0, 0), r.detail
