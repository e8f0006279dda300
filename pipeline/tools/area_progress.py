"""How far each area of a running pipeline has got in event time, read from the areas
table's changelog (its head rows), for a driver that must wait until the live areas
have caught up with the input before it compares (``shorewatch chaos``).

An area's head row states ``released_t_ms``: every evaluation due before it has been
made and the alerts it raised were acknowledged by the broker before the head was
written (:mod:`pipeline.worker.area_store`). So once every area's head has passed a
time, every alert that starts before it is on the alerts topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

__all__ = ["AreaProgress", "changelog_topic"]


def changelog_topic(app_id: str) -> str:
    """The areas table's changelog topic of the worker app ``app_id``."""
    return f"{app_id}-shorewatch-areas-changelog"


class AreaProgress:
    """Follows the areas changelog of one app from its start: the furthest event time
    each area's state reached (``released`` per area, ms UTC)."""

    def __init__(self, bootstrap: str, app_id: str) -> None:
        self.bootstrap = bootstrap
        self.topic = changelog_topic(app_id)
        #: area -> the furthest ``released_t_ms`` of its head rows, ms UTC
        self.released: dict[str, int] = {}
        self._consumer: Any = None

    async def _assign(self) -> bool:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from pipeline import topics

        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=200
            )
            await self._consumer.start()
        if self.topic not in await self._consumer.topics():
            return False
        # the table's changelog has the partitions of the area's input topic
        tps = [TopicPartition(self.topic, p) for p in range(topics.FUSION_INPUT.partitions)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        return True

    async def poll(self) -> dict[str, int]:
        """Read what came since the last poll; the areas' progress so far."""
        from pipeline.engine.state_rows import area_of_row, head_key, join_rows

        if self._consumer is None or not self._consumer.assignment():
            if not await self._assign():
                return self.released
        while True:
            got = await self._consumer.getmany(timeout_ms=200, max_records=10_000)
            if not got:
                return self.released
            for msgs in got.values():
                for m in msgs:
                    if m.value and m.key and m.key.endswith(b"/head"):
                        area = area_of_row(m.key)
                        st = join_rows(area, {head_key(area): m.value})
                        if st is not None and st.released_t_ms > self.released.get(area, -1):
                            self.released[area] = st.released_t_ms

    async def wait_past(self, t_ms: int, timeout_s: float, every_s: float = 1.0) -> bool:
        """Wait until every area's state has passed ``t_ms`` (at least one area known),
        at most ``timeout_s`` of wall time; whether it did."""
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(Exception):  # a broker still coming back: try again
                await self.poll()
            if self.released and min(self.released.values()) >= t_ms:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(every_s)

    def behind_s(self, t_ms: int) -> float | None:
        """How far the area furthest behind was short of ``t_ms``, s (≤ 0: past it;
        ``None``: no area state seen)."""
        if not self.released:
            return None
        return round((t_ms - min(self.released.values())) / 1000, 1)

    async def stop(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer.stop()
