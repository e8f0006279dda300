"""The areas table of the area agent: each area's state as rows of bounded size
(:mod:`pipeline.engine.state_rows`), and the fence that keeps a worker that lost an area
from writing it.

**Rows.** An area's rows all go to the changelog partition of the area's key (the
``fusion.input`` partition of the area, where the area's head would go as one record), so
the worker that owns the area restores all of them. A step writes the rows that changed
and tombstones the ones that went (a vessel forgotten, a chunk of held input released),
the head last, then the ``fusion.input`` offsets the state includes: a restored owner
skips input its state already took in (stepped again because the offsets were not
committed yet), so it resumes where the last acknowledged output left off.

**Fence.** A worker writes an area only while it holds the area's ``fusion.input``
partition: on revocation (a rebalance) the fence waits for the step in flight to finish
and its output to be acknowledged, then closes the area, so the next owner restores from a
changelog that holds everything this worker published and nothing it writes later. A
step whose partition went away meanwhile writes nothing (neither rows nor alerts); Faust
may acknowledge its input all the same, and the next owner steps it again from the
offsets the state holds (:mod:`pipeline.worker.input_rewind`). A worker that stops (SIGTERM)
writes nothing more once stopping began. A state older in event time
(``released_t_ms``) than the one this worker last published for the area is never
written (``area.stale_write_fenced``); a table restored to a point behind what this
worker published and still holds (``area.table_behind``) is not stepped from: the worker
resumes from its own acknowledged state.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec

from pipeline import topics
from pipeline.engine.state import AreaState
from pipeline.engine.state_rows import diff_rows, head_key, join_rows, row_prefix, split_rows
from pipeline.worker.batching import BatchSender, Metrics, TableWriter

log = logging.getLogger(__name__)

_offsets_enc = msgspec.msgpack.Encoder()
_offsets_dec = msgspec.msgpack.Decoder(dict[int, int])


def input_key(area: str) -> bytes:
    """The key of the row holding the ``fusion.input`` offsets an area's state includes
    (partition -> next offset), written right after the head."""
    return f"{area}/input".encode()


class _Live:
    """What this worker last published of one area."""

    __slots__ = ("head", "released_t_ms", "state", "written")

    def __init__(self, head: bytes | None, state: AreaState, written: dict[bytes, bytes]) -> None:
        self.head = head  # the head bytes object in the table (None: reload)
        self.state = state
        self.released_t_ms = state.released_t_ms  # of the state as published
        self.written = written  # row key -> bytes, as the changelog holds them


class AreaStore:
    """Areas' states in a Faust table as rows, with the revocation fence.

    :param app: the Faust app (its consumer's assignment tells what this worker holds)
    :param table: the areas table (bytes keys and values, raw codec)
    :param sender: the batch sender the rows go out with (with the alerts)
    :param metrics: the worker's counters
    """

    def __init__(self, app: Any, table: Any, sender: BatchSender, metrics: Metrics) -> None:
        self.app = app
        self.table = table
        self.sender = sender
        self.metrics = metrics
        self.n_partitions = topics.FUSION_INPUT.partitions
        self.writer = TableWriter(table, sender, self.n_partitions)
        self.live: dict[str, _Live] = {}
        #: held while a step and its output are in flight; the fence waits for it
        self.lock = asyncio.Lock()
        #: areas whose partition was revoked since the step in flight began
        self.closed: set[str] = set()
        #: the input offsets in the table when an area was last loaded from it
        self.restored: dict[str, dict[int, int]] = {}

    def partition(self, area: str) -> int:
        """The ``fusion.input`` partition (and changelog partition) of an area."""
        return self.sender.partition(area.encode(), self.n_partitions)

    def holds(self, area: str) -> bool:
        """Whether this worker holds the area's partition and is not stopping."""
        if area in self.closed or getattr(self.app, "should_stop", False):
            return False
        try:
            assigned = self.app.consumer.assignment()
        except Exception:  # noqa: BLE001 - no consumer yet: nothing is held
            return False
        return any(
            tp.topic == topics.FUSION_INPUT.name and tp.partition == self.partition(area)
            for tp in assigned
        )

    async def on_revoked(self, revoked: Any) -> None:
        """Fence: wait for the step in flight (its output acknowledged), then close the
        revoked areas."""
        lost = {tp.partition for tp in revoked if tp.topic == topics.FUSION_INPUT.name}
        if not lost:
            return
        async with self.lock:
            for area in list(self.live):
                if self.partition(area) in lost:
                    self.closed.add(area)
        log.info("areas fenced on revocation of fusion.input partitions %s", sorted(lost))

    def on_assigned(self, assigned: Any) -> None:
        """Reopen the areas whose partition came back (their rows are reloaded)."""
        got = {tp.partition for tp in assigned if tp.topic == topics.FUSION_INPUT.name}
        for area in list(self.closed):
            if self.partition(area) in got:
                self.closed.discard(area)

    def _table_rows(self, area: str) -> tuple[dict[bytes, bytes], AreaState | None]:
        prefix = row_prefix(area)
        rows = {k: v for k, v in self.table.data.items() if k.startswith(prefix) and v}
        if head_key(area) in rows:
            return rows, join_rows(area, rows)
        old = self.table.data.get(area.encode())  # a state written as one record
        if old:  # (before rows): deleted at the next write
            return {**rows, area.encode(): old}, AreaState.from_bytes(old)
        return rows, None

    def load(self, area: str) -> AreaState | None:
        """The area's state: what this worker published last while the table still holds
        it, else the table's rows (restored from the changelog)."""
        live = self.live.get(area)
        head = self.table.data.get(head_key(area))
        if live is not None and live.head is not None and head is live.head:
            return live.state
        rows, state = self._table_rows(area)
        raw_offsets = rows.get(input_key(area))
        self.restored[area] = dict(_offsets_dec.decode(raw_offsets)) if raw_offsets else {}
        if live is not None and (state is None or state.released_t_ms < live.released_t_ms):
            # restored to a point behind this worker's own acknowledged output
            self.metrics.add({"area.table_behind": 1})
            log.warning(
                "area %s: table restored to %s, behind the %d this worker published",
                area,
                None if state is None else state.released_t_ms,
                live.released_t_ms,
            )
            state = live.state
            own = live.written.get(input_key(area))
            if own is not None:  # the input offsets that state includes, not the table's
                rows = {**rows, input_key(area): own}
        if state is None:
            self.live.pop(area, None)
            return None
        self.live[area] = _Live(head, state, rows)
        if live is not None:
            self.live[area].released_t_ms = max(state.released_t_ms, live.released_t_ms)
        return state

    def input_offsets(self, area: str) -> dict[int, int]:
        """The ``fusion.input`` offsets the area's state includes: partition -> the next
        offset to apply (a copy)."""
        live = self.live.get(area)
        raw = live.written.get(input_key(area)) if live is not None else None
        return dict(_offsets_dec.decode(raw)) if raw else {}

    def restored_offsets(self, area: str) -> dict[int, int]:
        """The ``fusion.input`` offsets the area's rows held when this worker last loaded
        them from the table (restored from the changelog): input before them is already
        in the state. Offsets this worker wrote since do not count: only input handed
        again after a restore is skipped."""
        return self.restored.get(area, {})

    def forget(self, area: str) -> None:
        """Drop the cached state (e.g. half-updated by a failed step): reload it next."""
        live = self.live.get(area)
        if live is not None:
            live.head = None

    def save(self, area: str, state: AreaState, offsets: dict[int, int] | None = None) -> bool:
        """Queue the area's changed rows (and tombstones) on the sender; the caller
        flushes. Nothing is queued, and ``False`` returned, when the fence is closed or
        the state is older than the one published.
        """
        if not self.holds(area):
            self.metrics.add({"area.fenced": 1})
            log.warning("area %s: not held (revoked or stopping): output not written", area)
            self.forget(area)
            return False
        live = self.live.get(area)
        if live is not None and state.released_t_ms < live.released_t_ms:
            self.metrics.add({"area.stale_write_fenced": 1})
            log.warning(
                "area %s: state at %d older than the published %d: not written",
                area,
                state.released_t_ms,
                live.released_t_ms,
            )
            self.forget(area)
            return False
        rows = split_rows(area, state)
        written = live.written if live is not None else {}
        if offsets:
            rows[input_key(area)] = _offsets_enc.encode(offsets)
        elif input_key(area) in written:
            rows[input_key(area)] = written[input_key(area)]
        changed, deleted = diff_rows(written, rows)
        if input_key(area) in changed:  # after the head: never ahead of the state
            changed[input_key(area)] = changed.pop(input_key(area))
        p = self.partition(area)
        for k in deleted:
            self.writer.delete(k, partition=p)
        for k, v in changed.items():
            self.writer.set(k, v, partition=p)
        head = self.table.data.get(head_key(area))
        self.live[area] = _Live(head, state, rows)
        self.metrics.add({"area.rows_written": len(changed), "area.rows_deleted": len(deleted)})
        return True
