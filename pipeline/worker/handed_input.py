"""The Faust side of :class:`~pipeline.worker.input_rewind.HandedOffsets` for the stages
without a state of offsets (decode on ``ais.raw``, tracks on ``ais.fixes``, the camera feed
on ``camera.detection``): the group's committed offsets, the seeks back, the counters and
one log line per seek; the seek back the area agent uses too."""

from __future__ import annotations

import logging
from typing import Any

from pipeline.worker.batching import Metrics
from pipeline.worker.input_rewind import HandedOffsets

log = logging.getLogger(__name__)


class HandedInput:
    """Which records of a micro-batch of ``topic`` a stage takes; the seeks back.

    Counters (prefix ``<counter>.``): ``handed_again`` (records taken already, handed
    again after Faust sought back), ``rewound`` (records past a skipped stretch, left for
    the seek back), ``gap_accepted``.
    """

    def __init__(self, app: Any, topic: str, metrics: Metrics, counter: str) -> None:
        self.app = app
        self.topic = topic
        self.metrics = metrics
        self.counter = counter
        self.offsets = HandedOffsets(self._committed)
        self.seeks: dict[int, int] = {}
        app.on_partitions_assigned.connect(self.on_assigned)

    def _committed(self, partition: int) -> int | None:
        from faust.types import TP

        try:
            off = self.app.consumer._committed_offset.get(TP(self.topic, partition))
        except Exception:  # noqa: BLE001 - no consumer yet
            return None
        return None if off is None else int(off)

    async def on_assigned(self, app: Any, assigned: Any, **_: Any) -> None:
        self.offsets.assigned(tp.partition for tp in assigned if tp.topic == self.topic)

    def admit(self, events: list[Any]) -> list[bytes]:
        """The values of the events to take, in order (see
        :meth:`~pipeline.worker.input_rewind.HandedOffsets.admit`)."""
        handed = [(e.message.partition, e.message.offset) for e in events]
        take, seeks, accepted, again = self.offsets.admit(handed)
        if again:
            self.metrics.add({f"{self.counter}.handed_again": again})
        if accepted:
            self.metrics.add({f"{self.counter}.gap_accepted": len(accepted)})
            log.error("%s offsets missing after %s: gap accepted", self.topic, accepted)
        if seeks:
            log.warning(
                "%s handed past records not taken (partition: (expected, handed) %s): "
                "sought back to %s",
                self.topic,
                self.offsets.cut,
                seeks,
            )
            self.seeks.update(seeks)
        if all(take):
            return [e.value for e in events]
        self.metrics.add({f"{self.counter}.rewound": take.count(False) - again})
        return [e.value for e, t in zip(events, take, strict=True) if t]

    async def seek_back(self) -> None:
        """Seek the partitions handed past a skipped stretch back to it."""
        seeks, self.seeks = self.seeks, {}
        await seek_back(self.app, self.topic, seeks)


async def seek_back(app: Any, topic: str, seeks: dict[int, int]) -> None:
    """Seek each partition of ``topic`` in ``seeks`` back to its offset, through Faust's
    ``seek`` (which resets Faust's read offset too); a partition revoked meanwhile is
    left to its next owner."""
    from faust.types import TP

    for p, offset in sorted(seeks.items()):
        try:
            await app.consumer.seek(TP(topic, p), offset)
        except Exception as exc:  # noqa: BLE001 - revoked meanwhile: its next owner reads it
            log.warning("%s partition %d not sought back to %d: %r", topic, p, offset, exc)
