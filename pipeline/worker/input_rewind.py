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

__all__ = ["REWIND_TRIES_MAX", "REWIND_WAIT_S", "HandedOffsets", "InputRewinds"]

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


class HandedOffsets:
    """The same rule for a stage whose outputs are flushed before its input is
    acknowledged and which keeps no offsets in a state (the decode, tracks and camera feed
    agents):
    the next offset expected per partition is the one after the last record this worker
    took, or, first after an assignment, the group's committed offset (where Faust sought
    the consumer to). A micro-batch handed past it is not taken: the partition is sought
    back and the skipped records are read again. Records handed again below it (Faust
    sought back to the committed offset without a new assignment) were taken already and
    are left out.

    :param committed: the committed offset of a partition (``None``: none, e.g. a new
        group starting at the end: no gap can be told there)
    """

    def __init__(
        self,
        committed: Callable[[int], int | None],
        tries_max: int = REWIND_TRIES_MAX,
        wait_s: float = REWIND_WAIT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.committed = committed
        self.rewinds = InputRewinds(tries_max, wait_s, clock)
        #: partition -> the next offset expected (after the last record taken)
        self.next: dict[int, int] = {}
        #: the last micro-batch's stretches: partition -> (offset expected, offset handed)
        self.cut: dict[int, tuple[int, int]] = {}

    def assigned(self, partitions: Iterable[int]) -> None:
        """A new assignment (``partitions`` of this topic). A partition this worker held
        before it keeps the offset expected (no other worker read it meanwhile; what the
        consumer hands again from the committed offset was taken already); a partition new
        to it starts at the committed offset."""
        keep = set(partitions)
        self.next = {p: n for p, n in self.next.items() if p in keep}
        self.rewinds.assigned()

    def admit(
        self, positions: list[tuple[int, int]]
    ) -> tuple[list[bool], dict[int, int], dict[int, int], int]:
        """Which records of a micro-batch to take.

        :param positions: ``(partition, offset)`` of each record, in the order handed
        :returns: ``(take, seeks, accepted, again)``: per record whether to take it; the
            seeks due (partition -> offset); the gaps accepted after
            :data:`REWIND_TRIES_MAX` rewinds (partition -> first missing offset); how many
            records were left out as taken already
        """
        take = [False] * len(positions)
        expect: dict[int, int | None] = {}
        first: dict[int, int] = {}  # partition -> the first offset taken
        cut: dict[int, tuple[int, int]] = {}  # partition -> (offset expected, offset handed)
        again = 0
        for i, (p, o) in enumerate(positions):
            if p in cut:
                continue
            if p not in expect:
                n = self.next.get(p)
                expect[p] = n if n is not None else self.committed(p)
            e = expect[p]
            if e is not None and o < e and p in self.next:
                again += 1  # handed again below what this worker took
                continue
            if e is None or e < 0 or o <= e:
                take[i] = True
                first.setdefault(p, o)
                expect[p] = o + 1
                continue
            cut[p] = (e, o)  # past a gap: this partition's records from here on wait
        self.cut = cut
        handed = [(p, o) for p, (_, o) in cut.items()]
        handed += [(p, o) for p, o in first.items() if p not in cut]
        want = {p: e for p, (e, _) in cut.items()} | {
            p: o for p, o in first.items() if p not in cut
        }
        _, accepted = self.rewinds.gaps(handed, want)
        for i, (p, o) in enumerate(positions):
            if p in accepted and not take[i] and o >= cut[p][1]:
                take[i] = True  # a hole in the log: taken as handed
        for (p, o), t in zip(positions, take, strict=True):
            if t and o + 1 > self.next.get(p, -1):
                self.next[p] = o + 1
        return take, self.rewinds.take_seeks(), accepted, again
