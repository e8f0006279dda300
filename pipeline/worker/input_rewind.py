"""Nothing acknowledged unapplied: the area's state, not the consumer group's committed
offset, says where the area's ``fusion.input`` resumes.

An area's state includes the ``fusion.input`` offsets it has applied (partition -> the
next offset to apply, :func:`pipeline.worker.area_store.input_key`). Faust acknowledges a
micro-batch once the agent returns from it, whether or not the area wrote it: a step
fenced because its partition was revoked or the worker began to stop, or refused as older
than the state published, writes nothing, yet its offsets are committed. Faust may also
drop input it had fetched and queued when a rebalance begins. The next owner of the
partition (another worker, or the same one given it back) is then handed input after
records its state never applied.

The rule: the first input offered on a partition after the offsets the state includes
must be the very next offset. Input past a gap is not applied; the consumer is sought
back to the state's offset and the gap is read again. Input the stream had queued before
the seek keeps coming for a while (past the gap, at ever higher offsets): it is left
out as well, and counts as no new try. A new seek is tried when input starts past the
gap at or below an offset already handed since the last seek (the seek took effect and
the gap is still there), or :data:`REWIND_WAIT_S` after it (the seek was lost, e.g. to
a rebalance). A gap that persists after :data:`REWIND_TRIES_MAX` rewinds to the same
offset (records removed by retention) is accepted and counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

__all__ = ["REWIND_TRIES_MAX", "REWIND_WAIT_S", "InputRewinds"]

#: rewinds to one offset before a gap there is accepted as a hole in the log
REWIND_TRIES_MAX = 20
#: wall seconds after a seek before input still past the gap asks for another seek
REWIND_WAIT_S = 5.0


class InputRewinds:
    """Which partitions of a micro-batch start past what an area's state applied, and the
    rewinds tried for each."""

    def __init__(
        self,
        tries_max: int = REWIND_TRIES_MAX,
        wait_s: float = REWIND_WAIT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tries_max = tries_max
        self.wait_s = wait_s
        self.clock = clock
        #: partition -> (the offset rewound to, rewinds tried to it)
        self.tries: dict[int, tuple[int, int]] = {}
        #: partition -> (wall s of the last seek, the highest offset handed since)
        self.pending: dict[int, tuple[float, int]] = {}
        #: partition -> offset: seeks due now (taken by :meth:`take_seeks`)
        self.seeks: dict[int, int] = {}
        #: partition -> offset: input up to it was dead-lettered, not applied, yet is
        #: accounted for (a failed step): never rewound to
        self.accounted: dict[int, int] = {}
        #: partitions sought back since the last assignment: input before the applied
        #: offset handed on them is a copy the seek brought (records fetched twice)
        self.sought: set[int] = set()

    def assigned(self) -> None:
        """A new assignment: the consumer starts where the group's offsets say."""
        self.tries.clear()
        self.sought.clear()
        self.pending.clear()
        self.seeks.clear()

    def take_seeks(self) -> dict[int, int]:
        """The seeks due (partition -> offset), once."""
        seeks, self.seeks = self.seeks, {}
        return seeks

    def resent(self, position: tuple[int, int], applied: Mapping[int, int]) -> bool:
        """Whether input at ``position`` is one the state applied, handed again because
        this worker sought its partition back (it is skipped, not applied twice)."""
        p, o = position
        return p in self.sought and o < applied.get(p, -1)

    def gaps(
        self, positions: Iterable[tuple[int, int]], applied: Mapping[int, int]
    ) -> tuple[dict[int, int], dict[int, int]]:
        """The partitions of ``positions`` whose first offset is past ``applied``.

        :param positions: ``(partition, offset)`` of the input about to be applied, in
            the order handed
        :param applied: the next offset to apply per partition, as the area's state holds
            it (a partition absent: nothing known, no gap)
        :returns: ``(rewind, accepted)``: partition -> the offset sought back to (its
            input in this micro-batch is not applied; a seek is due when
            :meth:`take_seeks` returns it), and partition -> the first offset of a gap
            accepted after :data:`REWIND_TRIES_MAX` rewinds (applied as handed)
        """
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for p, o in positions:
            first.setdefault(p, o)
            last[p] = o
        rewind: dict[int, int] = {}
        accepted: dict[int, int] = {}
        now = self.clock()
        for p, o in first.items():
            want = max(applied.get(p, -1), self.accounted.get(p, -1))
            if want < 0 or o <= want:
                if o == want:
                    self.tries.pop(p, None)  # the gap was read again
                    self.pending.pop(p, None)
                continue
            at, n = self.tries.get(p, (want, 0))
            seek_t, high = self.pending.get(p, (now, -1))
            queued = at == want and n > 0 and o > high and now - seek_t < self.wait_s
            if not queued:  # no seek yet, or it took effect and the gap is still there
                n = n + 1 if at == want else 1
                if n > self.tries_max:
                    self.tries.pop(p, None)
                    self.pending.pop(p, None)
                    accepted[p] = want
                    continue
                self.tries[p] = (want, n)
                seek_t, high = now, -1
                self.seeks[p] = want
            self.pending[p] = (seek_t, max(high, last[p]))
            self.sought.add(p)
            rewind[p] = want
        return rewind, accepted

    def account(self, positions: Iterable[tuple[int, int]]) -> None:
        """Input that was dead-lettered (a failed step) counts as taken: no rewind to it."""
        for p, o in positions:
            if o + 1 > self.accounted.get(p, -1):
                self.accounted[p] = o + 1
