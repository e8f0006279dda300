"""The Kafka transport of the worker: an idempotent producer and a low-latency consumer."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

from pipeline.worker.batching import FETCH_MAX_WAIT_MS

log = logging.getLogger(__name__)


class IdempotentProducer(faust_aiokafka.Producer):
    """Faust's producer with ``acks=all`` and idempotence always on."""

    def _settings_extra(self) -> dict[str, Any]:
        return {"acks": "all", "enable_idempotence": True}


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread with a 100 ms fetch wait instead of its fixed 1.5 s."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by the fetcher at start
        return consumer

    async def commit_quietly(self, offsets: dict[Any, int]) -> bool:
        """Commit ``offsets`` (partition -> next offset to read); a failure (a rebalance,
        the broker away) is logged and returns False, where Faust's own commit crashes
        the worker."""
        return bool(await self.call_thread(self._commit_quietly, offsets))

    async def _commit_quietly(self, offsets: dict[Any, int]) -> bool:
        from aiokafka.structs import OffsetAndMetadata, TopicPartition

        try:
            await self._ensure_consumer().commit(
                {
                    TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(o, "")
                    for tp, o in offsets.items()
                }
            )
        except Exception as exc:  # noqa: BLE001 - tried again at the next seek
            log.warning("offsets %s not committed: %r", offsets, exc)
            return False
        return True


class LowLatencyConsumer(faust_aiokafka.Consumer):
    """Faust's consumer with a 100 ms fetch wait, and a group start that stays put.

    Kafka applies ``auto_offset_reset`` to every partition the group has no committed
    offset for, at every assignment. With ``latest`` (a new group that starts at the end
    of its topics), a partition first written while its owner was down or moving (a new
    AIS receiver while the worker restarts) would be read from its end again, and the
    records before it lost. So after each seek to the committed offsets
    (:meth:`perform_seek`), every assigned input partition without one gets one: where
    this worker started reading it (the first offset handed, else its position).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: partition -> the first offset this consumer handed on (the start of its reading)
        self._first_handed: dict[Any, int] = {}

    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def getmany(self, timeout: float) -> Any:
        first = self._first_handed
        async for tp, message in super().getmany(timeout):
            if tp not in first:
                first[tp] = message.offset
            yield tp, message

    async def perform_seek(self) -> None:
        await super().perform_seek()
        await self.commit_group_start()

    async def commit_group_start(self) -> dict[Any, int]:
        """Commit the start of reading of each assigned input partition the group has no
        committed offset for; a partition that fails is tried at the next seek.

        :returns: partition -> the offset committed
        """
        changelogs = self.app.tables.changelog_topics
        todo = [
            tp
            for tp in self.assignment()
            if tp.topic not in changelogs and self._committed_offset.get(tp) is None
        ]
        if not todo:
            return {}
        try:
            positions = await asyncio.wait_for(
                asyncio.gather(*(self.position(tp) for tp in todo), return_exceptions=True),
                self.app.conf.broker_request_timeout,
            )
        except Exception as exc:  # noqa: BLE001 - broker away: tried at the next seek
            log.warning("no positions to commit as the group's start: %r", exc)
            return {}
        starts: dict[Any, int] = {}
        for tp, pos in zip(todo, positions, strict=True):
            if isinstance(pos, BaseException) or pos is None:  # revoked meanwhile
                continue
            first = self._first_handed.get(tp)
            starts[tp] = pos if first is None else min(pos, first)
        # a commit of the agents' may have come meanwhile: never move one back
        starts = {tp: o for tp, o in starts.items() if self._committed_offset.get(tp) is None}
        thread: _ConsumerThread = self._thread  # type: ignore[assignment]
        if starts and await thread.commit_quietly(starts):
            self._committed_offset.update(starts)
            log.info(
                "group start committed: %s",
                ", ".join(f"{tp.topic}[{tp.partition}]@{o}" for tp, o in sorted(starts.items())),
            )
            return starts
        return {}


class IdempotentTransport(faust_aiokafka.Transport):
    Producer = IdempotentProducer
    Consumer = LowLatencyConsumer
