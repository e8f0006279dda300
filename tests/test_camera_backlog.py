"""A camera whose frames wait in a backlog is not an offline camera.

The area counts a camera offline when its frames trail the other cameras' by more than
``camera_idle_ms`` (:mod:`pipeline.engine.watermarks`). After a broker restart one
``camera.detection`` partition can be read minutes after the others; its cameras' frames
then trail by that much, though none is lost. The feed agent reports such cameras
(:class:`~schemas.records.CameraBacklog`, rules in :mod:`pipeline.worker.camera_backlog`)
and the area waits for them. A camera truly silent, its partition read to the end, still
goes offline after ``camera_idle_ms``.
"""

from __future__ import annotations

import dataclasses
import functools

import msgspec
import pytest
from test_detectors import NIGHT, _scenario_stream, camera, det_at, frame, lat_at

from pipeline.engine.area import area_step, flush_area
from pipeline.engine.state import AreaState
from pipeline.engine.state_rows import join_rows, split_rows
from pipeline.engine.watermarks import CAMERA_PATH_IDLE_FACTOR
from pipeline.worker.camera_backlog import (
    BEHIND_MS,
    FRESH_MS,
    RETRY_GRACE_MS,
    PartitionBacklog,
    cameras_behind,
)
from schemas.records import CameraBacklog, Watermark

pytestmark = pytest.mark.unit

END = NIGHT + 900_000
IDLE_MS = 30_000
WINDOW_MS = 10_000


@functools.cache
def _night():
    """The mixed scenario of ``test_detectors`` (cam1 sees a dark boat stop near it) with
    a second camera, cam2, that sees nothing and sends a frame every 5 s; the reference
    alerts of all of it applied in event-time order."""
    c, stream = _scenario_stream()
    cam = camera()
    c = dataclasses.replace(c, cameras={"cam1": cam, "cam2": cam}, camera_idle_ms=IDLE_MS)
    stream = stream + [
        (NIGHT + k * 1000 + 2, 1, frame("cam2", NIGHT + k * 1000 + 2, [])) for k in range(0, 600, 5)
    ]
    stream.sort(key=lambda x: (x[0], x[1]))
    tracks = [x[2] for x in stream if x[1] == 0]
    frames = [x[2] for x in stream if x[1] == 1]
    st, ref = area_step(None, tracks, frames, c)
    return c, tracks, frames, ref + flush_area(st, c, END)


def _live(report: bool):
    """The AIS and cam2 delivered in 10 s windows with their watermarks; cam1's frames
    held in a backlog until the night is 400 s on, then delivered at once (its partition
    read late). With ``report``, the feed agent's reports: cam1 behind from the start,
    read to the end once its backlog is through."""
    c, tracks, frames, ref = _night()
    cam1 = [f for f in frames if f.camera_id == "cam1"]
    cam2 = [f for f in frames if f.camera_id == "cam2"]
    both = ["cam1", "cam2"]
    st: AreaState | None = None
    out: list = []
    if report:
        st, _ = area_step(
            st, [], [], c, [], backlogs=[CameraBacklog(cameras=both, behind=["cam1"])]
        )
    backlog_at = NIGHT + 400_000
    sent_backlog = False
    for w in range(NIGHT, NIGHT + 600_000, WINDOW_MS):
        trs = [x for x in tracks if w <= x.t_ms < w + WINDOW_MS]
        frs = [x for x in cam2 if w <= x.t_ms < w + WINDOW_MS]
        if w >= backlog_at and not sent_backlog:
            frs = [x for x in cam1 if x.t_ms < w + WINDOW_MS] + frs
            sent_backlog = True
        elif sent_backlog:
            frs = [x for x in cam1 if w <= x.t_ms < w + WINDOW_MS] + frs
        bls = [CameraBacklog(cameras=both, behind=[])] if report and sent_backlog else []
        st, alerts = area_step(st, trs, frs, c, [Watermark(t_ms=w + WINDOW_MS - 1)], backlogs=bls)
        out += alerts
        st = AreaState.from_bytes(st.to_bytes())  # as the table keeps it between batches
    assert st is not None
    st, alerts = area_step(st, [], [], c, [Watermark(t_ms=END)])
    return st, out + alerts + flush_area(st, c, END), ref


def test_a_camera_whose_frames_wait_in_a_backlog_is_waited_for_not_counted_offline():
    st, live, ref = _live(report=True)
    assert st.counters.get("late", 0) == 0
    assert {a.data.kind for a in ref if a.data.status == "open"} >= {"dark_vessel"}
    assert msgspec.json.encode(live) == msgspec.json.encode(ref)


def test_without_the_backlog_report_the_trailing_camera_is_counted_offline_and_comes_late():
    """What the report prevents (the fault the chaos suite found after a broker restart)."""
    st, live, ref = _live(report=False)
    assert st.counters.get("late", 0) > 0
    assert msgspec.json.encode(live) != msgspec.json.encode(ref)


def _restarted(first_report: bool):
    """A worker restart with the camera path behind the AIS path: before it, AIS up to
    300 s of the night and both cameras' frames up to 250 s, the feed agent's last report
    "caught up"; after it, the new feed agent reads cam2's partition first (its frames to
    600 s in one burst), then cam1's, then the rest of the AIS. With ``first_report``,
    the new feed agent's report (both cameras behind, as their partitions were just
    assigned) precedes its first frame; the timer's report says "caught up" at the end."""
    c, tracks, frames, ref = _night()
    both = ["cam1", "cam2"]
    caught_up = [CameraBacklog(cameras=both, behind=[])]
    cut_ais, cut_cam = NIGHT + 300_000, NIGHT + 250_000
    st: AreaState | None = None
    out: list = []
    for w in range(NIGHT, cut_ais, WINDOW_MS):
        trs = [x for x in tracks if w <= x.t_ms < w + WINDOW_MS]
        frs = [x for x in frames if w <= x.t_ms < min(w + WINDOW_MS, cut_cam)]
        st, alerts = area_step(
            st, trs, frs, c, [Watermark(t_ms=w + WINDOW_MS - 1)], backlogs=caught_up
        )
        out += alerts
    assert st is not None and st.cam_behind == []
    st = AreaState.from_bytes(st.to_bytes())  # restored by the new owner
    first = [CameraBacklog(cameras=both, behind=both)] if first_report else []
    end = NIGHT + 600_000
    cam2 = [x for x in frames if x.camera_id == "cam2" and cut_cam <= x.t_ms < end]
    st, alerts = area_step(st, [], cam2, c, [], backlogs=first)
    out += alerts
    cam1 = [x for x in frames if x.camera_id == "cam1" and cut_cam <= x.t_ms < end]
    st, alerts = area_step(st, [], cam1, c, [])
    out += alerts
    trs = [x for x in tracks if cut_ais <= x.t_ms < end]
    st, alerts = area_step(st, trs, [], c, [Watermark(t_ms=END)], backlogs=caught_up)
    return st, out + alerts + flush_area(st, c, END), ref


def test_after_a_restart_the_first_report_comes_before_the_first_frame():
    """The area restored with the last report of the worker before ("caught up") must
    hear from the new feed agent that its partitions are behind before a burst of one
    camera's backlog carries that camera far ahead: else the other camera counts as
    offline and its frames come late (the worker-kill chaos scenario found it)."""
    st, live, ref = _restarted(first_report=True)
    assert st.counters.get("late", 0) == 0
    assert msgspec.json.encode(live) == msgspec.json.encode(ref)
    st, live, ref = _restarted(first_report=False)
    assert st.counters.get("late", 0) > 0
    assert msgspec.json.encode(live) != msgspec.json.encode(ref)


def test_the_feed_agent_reports_a_partition_before_its_first_frame_after_each_assignment():
    b = PartitionBacklog()
    assert b.report_due_before(0) and b.report_due_before(1)
    b.sent_report([0, 1])
    assert not b.report_due_before(0) and not b.report_due_before(1)
    b.keep([0])  # a rebalance took partition 1 away
    assert not b.report_due_before(0) and b.report_due_before(1)
    b.sent_report([0, 1])  # assigned again, reported
    assert not b.report_due_before(1)


def test_a_silent_camera_with_no_backlog_still_goes_offline_after_its_idle_time():
    c, _, _, _ = _night()
    cam = camera()
    d = det_at(cam, 1, 110.1, lat_at(500))
    # cam2 never sends, and its partition is read to the end: reported, not behind
    read_up = [CameraBacklog(cameras=["cam1", "cam2"], behind=[])]
    st, _ = area_step(
        None, [], [frame("cam1", NIGHT, [d])], c, [Watermark(t_ms=NIGHT)], backlogs=read_up
    )
    for k in range(1, 40):
        t = NIGHT + k * 1000
        st, _ = area_step(st, [], [frame("cam1", t, [d])], c, [Watermark(t_ms=t)], backlogs=read_up)
        if k * 1000 - c.camera_disorder_ms <= IDLE_MS:
            assert st.released_t_ms == NIGHT, k
    assert st.released_t_ms == NIGHT + 39_000 - c.camera_disorder_ms  # cam2 offline
    # the same with cam2 behind: it holds the area at its last frame (never heard: the
    # area's first input), however far the others run, AIS included
    st, _ = area_step(
        st, [], [], c, [], backlogs=[CameraBacklog(cameras=["cam2"], behind=["cam2"])]
    )
    assert st.cam_behind == ["cam2"]
    t = NIGHT + 2 * CAMERA_PATH_IDLE_FACTOR * IDLE_MS
    st, _ = area_step(st, [], [frame("cam1", t, [d])], c, [Watermark(t_ms=t)])
    assert st.released_t_ms == NIGHT + 39_000 - c.camera_disorder_ms  # never goes back
    assert st.held_frames and st.held_frames[-1].t_ms == t
    # its partition read to the end with nothing of cam2 in it: offline again
    st, _ = area_step(st, [], [], c, [], backlogs=read_up)
    assert st.cam_behind == [] and st.released_t_ms == t - c.camera_disorder_ms


def test_backlog_reports_speak_only_for_their_cameras_and_survive_a_restore():
    c, _, _, _ = _night()
    st, _ = area_step(
        None,
        [],
        [],
        c,
        [],
        backlogs=[CameraBacklog(cameras=["cam1", "cam2"], behind=["cam1", "cam2"])],
    )
    # another worker's feed agent reads cam2's partition only; a camera of no site ignored
    st, _ = area_step(
        st, [], [], c, [], backlogs=[CameraBacklog(cameras=["cam2", "x"], behind=["x"])]
    )
    assert st.cam_behind == ["cam1"]
    back = join_rows("a", split_rows("a", st))
    assert back is not None and back.cam_behind == ["cam1"]


def test_a_partition_is_behind_until_read_to_a_fresh_end():
    b = PartitionBacklog()
    now = 1_000_000
    assert b.behind(0, now)  # just assigned: behind until first caught up
    # an idle partition (a silent camera), its end fetched 100 ms ago, nothing to read
    b.observe(0, now, highwater=120, poll_ms=now - 100, read_offset=120)
    assert not b.behind(0, now) and not b.behind(0, now + BEHIND_MS)
    assert b.behind(0, now + BEHIND_MS + 1)  # not seen caught up since
    # a backlog: the end is ahead of what was forwarded
    b.forwarded(1, 49)
    b.observe(1, now, highwater=5_000, poll_ms=now)
    assert b.behind(1, now)
    for off in range(50, 5_000):
        b.forwarded(1, off)
    b.observe(1, now + 500, highwater=5_000, poll_ms=now + 400)
    assert not b.behind(1, now + 500)
    # no fetch answered lately (the broker away, a leader not back): an old end says nothing
    t = now + 10_000
    b.observe(1, t, highwater=5_000, poll_ms=t - FRESH_MS - 1)
    assert b.behind(1, t)
    # served again and caught up: still behind while the producers' retries come due
    b.observe(1, t + 500, highwater=5_000, poll_ms=t + 400)
    assert b.behind(1, t + 500) and b.behind(1, t + RETRY_GRACE_MS)
    b.observe(1, t + RETRY_GRACE_MS + 1, highwater=5_000, poll_ms=t + RETRY_GRACE_MS)
    assert not b.behind(1, t + RETRY_GRACE_MS + 1)
    # revoked, then assigned again: starts behind; the first fetch, no grace
    b.keep([0])
    t += RETRY_GRACE_MS + 1
    assert b.behind(1, t)
    b.observe(1, t, highwater=None, poll_ms=None)
    b.observe(1, t + 100, highwater=5_000, poll_ms=t + 100, read_offset=5_000)
    assert not b.behind(1, t + 100)
    b.keep([0])
    cams, behind = cameras_behind({"a": 0, "b": 1, "c": 3}, [0, 1], b, t + 100)
    assert cams == ["a", "b"] and behind == ["a", "b"]


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_a_real_consumer_tells_an_idle_partition_from_a_backlog_and_a_silent_fetch(
    kafka_bootstrap,
):
    """On a real broker: an idle partition is caught up all the time (fetched every
    100 ms), a partition with records waiting unforwarded is behind, and a partition
    whose fetches stop answering (paused here, as a leader not back would leave it) is
    behind though nothing waits on it."""
    import asyncio
    import time
    import uuid

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from pipeline.worker.camera_backlog import ConsumerView

    topic = f"test-camera-backlog-{uuid.uuid4().hex[:8]}"
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)

    async def main() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka_bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
        )
        await producer.start()
        await consumer.start()
        b = PartitionBacklog()
        view = ConsumerView(topic, consumer.assignment, lambda: consumer)
        try:
            for k in range(50):
                await producer.send_and_wait(topic, b"frame %d" % k, partition=0)
            consumer.assign([tp0, tp1])
            await consumer.seek_to_beginning(tp0, tp1)

            async def until(cond, what: str, read: bool = True) -> None:
                deadline = time.monotonic() + 120
                while not cond():
                    assert time.monotonic() < deadline, what
                    if read:
                        got = await consumer.getmany(timeout_ms=200)
                        for tp, msgs in got.items():
                            for m in msgs:
                                b.forwarded(tp.partition, m.offset)
                    else:
                        await asyncio.sleep(0.2)
                    now = int(time.time() * 1000)
                    for tp in view.assigned():
                        hw, poll, read_off = view.state(tp)
                        b.observe(tp.partition, now, hw, poll, read_off)

            def now_ms() -> int:
                return int(time.time() * 1000)

            await until(
                lambda: not b.behind(0, now_ms()) and not b.behind(1, now_ms()), "caught up"
            )
            assert b.next_offset[0] == 50 and 1 not in b.next_offset  # p1: never a record
            # records wait, not forwarded: p0 behind; the idle p1 stays caught up
            for k in range(20):
                await producer.send_and_wait(topic, b"late %d" % k, partition=0)
            await until(lambda: b.behind(0, now_ms()), "p0 behind", read=False)
            assert not b.behind(1, now_ms())
            # p1's fetches stop answering: behind with nothing on it
            consumer.pause(tp1)
            await until(lambda: b.behind(1, now_ms()), "p1 behind")
            assert b.next_offset[0] == 70
            # a new consumer that starts at the end (auto_offset_reset latest): nothing
            # forwarded, nothing to read: caught up from its fetch position
            late = AIOKafkaConsumer(
                bootstrap_servers=kafka_bootstrap,
                enable_auto_commit=False,
                fetch_max_wait_ms=100,
                auto_offset_reset="latest",
            )
            await late.start()
            try:
                late.assign([tp0])
                lb = PartitionBacklog()
                lview = ConsumerView(topic, late.assignment, lambda: late)
                deadline = time.monotonic() + 120
                while lb.behind(0, now_ms()):
                    assert time.monotonic() < deadline, "a consumer at the end: caught up"
                    await late.getmany(timeout_ms=200)
                    hw, poll, pos = lview.state(tp0)
                    lb.observe(0, now_ms(), hw, poll, pos)
                assert pos == 70 and not lb.next_offset
            finally:
                await late.stop()
        finally:
            await consumer.stop()
            await producer.stop()

    asyncio.run(main())
