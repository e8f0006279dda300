"""The camera path's backlog: which cameras' frames wait unread on ``camera.detection``.

The area counts a camera offline when its frames trail the other cameras' by more than
``camera_idle_ms`` of event time (:mod:`pipeline.engine.watermarks`). Event time alone
cannot tell an offline camera from one whose frames wait in a backlog: after a broker
restart the leader of one ``camera.detection`` partition may come back minutes after the
others', and its cameras' frames then trail by as much as the outage lasted, though none
is lost. The feed agent knows the difference, from its partitions' fetch positions, and
tells the area (:class:`~schemas.records.CameraBacklog`).

Rules, per ``camera.detection`` partition this worker reads, on the worker's wall clock
(the engine never sees it):

- the partition is *caught up* when the feed agent has forwarded every record below its
  highwater (the end offset the broker stated in a fetch response), and that response is
  at most :data:`FRESH_MS` old. An idle partition is fetched every 100 ms
  (``FETCH_MAX_WAIT_MS``), so a partition whose camera has gone silent is caught up all
  the time; a busy one read promptly is caught up after every fetch.
- it is *behind* when it has not been caught up for :data:`BEHIND_MS`: records wait
  unread, or no fetch of it has answered lately (the broker away, a leader not back
  yet). A partition just assigned is behind until first caught up.
- a partition whose fetches stopped answering after it had been read (the broker away,
  restarted, or the worker stalled) stays behind for :data:`RETRY_GRACE_MS` after it
  is caught up again: the cameras' producers were refused by the same broker, and their
  frames come back only as each record's retry comes due (the connectors retry after a
  back-off of at most 10 s, :class:`connectors.kafka.BufferedPublisher`), some
  partitions' seconds after the others'.
- a camera is behind when the partition its id hashes to is; the feed agent reports the
  cameras of its partitions, and which of them are behind, whenever that changes and
  every :data:`REPEAT_S`.
- the first frame forwarded from a partition this worker has not reported yet (just
  assigned: after a start, a restart or a rebalance) goes behind a report naming that
  partition's cameras: the area's restored state may still hold the last report of the
  worker before, which said "caught up", and one partition's backlog, fetched in a burst,
  could otherwise carry its cameras so far ahead of the others' that those count as
  offline before the timer's first report arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

log = logging.getLogger(__name__)

#: a fetch response older than this (wall ms) says nothing about the partition's end now
FRESH_MS = 2_000
#: a partition not caught up for this long (wall ms) is behind
BEHIND_MS = 2_000
#: a partition whose fetches stopped answering stays behind this long (wall ms) after it is
#: caught up again: the producers' retries of what the broker refused (at most 10 s of
#: back-off in the connectors) come due meanwhile
RETRY_GRACE_MS = 12_000
#: how often the feed agent looks at its partitions' positions, s of wall time
REPORT_TICK_S = 0.5
#: a report unchanged is sent again after this long, s of wall time (a new owner of the
#: area, a report lost with a departing worker)
REPEAT_S = 5.0


class PartitionBacklog:
    """The caught-up times of the partitions one feed agent reads (wall clock passed in)."""

    def __init__(self) -> None:
        self.next_offset: dict[int, int] = {}  # the offset after the last record forwarded
        self.caught_up_ms: dict[int, int] = {}  # when each was last seen caught up
        self.unserved_ms: dict[int, int] = {}  # when each was last seen with no fresh fetch
        self.reported: set[int] = set()  # named in a report sent since they were assigned

    def forwarded(self, partition: int, offset: int) -> None:
        """The record at ``offset`` of ``partition`` was forwarded (or dead-lettered)."""
        if offset + 1 > self.next_offset.get(partition, -1):
            self.next_offset[partition] = offset + 1

    def keep(self, partitions: Iterable[int]) -> None:
        """Forget the partitions not in ``partitions`` (revoked): assigned again, they
        start behind."""
        keep = set(partitions)
        for d in (self.next_offset, self.caught_up_ms, self.unserved_ms):
            for p in [p for p in d if p not in keep]:
                del d[p]
        self.reported &= keep

    def report_due_before(self, partition: int) -> bool:
        """Whether a report must go to the area before a frame of ``partition`` is
        forwarded: no report naming it was sent since it was assigned."""
        return partition not in self.reported

    def sent_report(self, partitions: Iterable[int]) -> None:
        """A report naming ``partitions`` (the assigned ones) went to the area."""
        self.reported.update(partitions)

    def observe(
        self,
        partition: int,
        now_ms: int,
        highwater: int | None,
        poll_ms: int | None,
        read_offset: int | None = None,
    ) -> None:
        """Note whether ``partition`` is caught up at ``now_ms``.

        :param highwater: the end offset of the last fetch response (``None``: none yet)
        :param poll_ms: when that response came, wall ms (``None``: none yet)
        :param read_offset: where the consumer stands when nothing was forwarded yet (its
            committed position after an assignment)
        """
        if highwater is None or poll_ms is None or now_ms - poll_ms > FRESH_MS:
            if partition in self.caught_up_ms:  # read before: its fetches stopped answering
                self.unserved_ms[partition] = now_ms
            return
        nxt = self.next_offset.get(partition)
        if nxt is None:
            nxt = read_offset if read_offset is not None else 0
        if nxt >= highwater:
            self.caught_up_ms[partition] = now_ms

    def behind(self, partition: int, now_ms: int) -> bool:
        """Whether ``partition`` has not been caught up for :data:`BEHIND_MS`, or is within
        :data:`RETRY_GRACE_MS` of fetches that did not answer."""
        t = self.caught_up_ms.get(partition)
        if t is None or now_ms - t > BEHIND_MS:
            return True
        return now_ms - self.unserved_ms.get(partition, -RETRY_GRACE_MS - 1) <= RETRY_GRACE_MS


def cameras_behind(
    camera_partitions: Mapping[str, int],
    assigned: Iterable[int],
    backlog: PartitionBacklog,
    now_ms: int,
) -> tuple[list[str], list[str]]:
    """The cameras of the assigned partitions, and those of them behind (both sorted).

    :param camera_partitions: each camera's ``camera.detection`` partition
    """
    mine = set(assigned)
    cams = sorted(c for c, p in camera_partitions.items() if p in mine)
    return cams, [c for c in cams if backlog.behind(camera_partitions[c], now_ms)]


class ConsumerView:
    """What the feed agent reads of a consumer: its assigned partitions of one topic, and
    per partition the highwater and the time of the last fetch response (aiokafka's
    ``AIOKafkaConsumer.highwater`` and ``last_poll_timestamp``), and where it stands.

    The fetch position is the fallback where the read offset is not known (a new group
    starting at the end: ``auto_offset_reset`` ``latest``): aiokafka's own partition state,
    read without waiting (its ``position()`` coroutine waits for a valid position, and a
    report must never wait on the consumer).

    :param assignment: the consumer's assigned partitions (any topic)
    :param consumer: the aiokafka consumer (a callable: Faust starts it late)
    :param read_offset: where the consumer stands on a partition when nothing of it was
        forwarded yet (``None``: not known)
    """

    def __init__(
        self,
        topic: str,
        assignment: Callable[[], Iterable[Any]],
        consumer: Callable[[], Any],
        read_offset: Callable[[Any], int | None] = lambda tp: None,
    ) -> None:
        self.topic = topic
        self._assignment = assignment
        self._consumer = consumer
        self._read_offset = read_offset

    @classmethod
    def of_faust(cls, app: Any, topic: str) -> ConsumerView:
        """The view of a Faust app's consumer, which keeps the aiokafka consumer in its
        consumer thread and its read offsets (the committed position after a seek)."""
        return cls(
            topic,
            lambda: app.consumer.assignment(),
            lambda: app.consumer._thread._ensure_consumer(),
            lambda tp: app.consumer._read_offset.get(tp),
        )

    def assigned(self) -> list[Any]:
        try:
            return [tp for tp in self._assignment() if tp.topic == self.topic]
        except Exception:  # noqa: BLE001 - no consumer yet
            return []

    def state(self, tp: Any) -> tuple[int | None, int | None, int | None]:
        """``(highwater, last fetch response wall ms, where the consumer stands)`` of
        ``tp``, ``None`` where not known; where it stands: the read offset, else the fetch
        position."""
        try:
            c = self._consumer()
            hw, poll = c.highwater(tp), c.last_poll_timestamp(tp)
        except Exception:  # noqa: BLE001 - not assigned (any more), consumer not started
            return None, None, None
        try:
            read = self._read_offset(tp)
        except Exception:  # noqa: BLE001
            read = None
        if read is None:
            try:
                tp_state = c._subscription.subscription.assignment.state_value(tp)
                read = tp_state.position if tp_state.has_valid_position else None
            except Exception:  # noqa: BLE001 - no assignment (any more)
                read = None
        return hw, poll, read
