"""The decode stage's progress in event time over several AIS sources (receivers, feeds).

Each raw AIS record comes from one source (its key on ``ais.raw``), and a source's lines
come in its own event-time order. The decode stage states one progress for every
``ais.fixes`` partition (see :mod:`pipeline.engine.watermarks`). With several sources that
progress is the **minimum** over the active sources of the newest event time each has
delivered: when one source's input waits in a backlog (a worker restarted, a partition of
``ais.raw`` read later than another) its vessels' fixes are still coming, and the area
must not run past them; a source ahead of the others never makes them late.

A source that has sent nothing for :data:`SOURCE_IDLE_MS` of wall time while the stage
was receiving input is idle (a receiver gone, a one-off client) and no longer holds the
progress back, until it sends again. A gap of more than :data:`STAGE_GAP_MS` with no
record from any source (the broker away, the worker stopped) restarts that clock: a
source is not idle because nothing at all came through; when every source has gone silent
at once, the newest time any of them delivered is the progress, and none is forgotten
(the ticks of a stage cut off from the broker find every source silent: the first heard
again must not leave the others' backlogs behind). For :data:`SOURCE_WARMUP_MS` after the first record (a worker started or
restarted), no progress is stated: every source with a backlog has had the time to be
heard from. The progress never goes back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SOURCE_IDLE_MS", "SOURCE_WARMUP_MS", "STAGE_GAP_MS", "SourceProgress"]

#: wall time after which a source that sent nothing stops holding the progress back, ms
SOURCE_IDLE_MS = 10_000

#: wall time after the first record during which no progress is stated, ms
SOURCE_WARMUP_MS = 3_000

#: a gap with no record from any source longer than this restarts the idle clocks, ms
STAGE_GAP_MS = 2_000


@dataclass
class SourceProgress:
    """Newest event time and last arrival (wall clock) of each source.

    :param idle_ms: see :data:`SOURCE_IDLE_MS`
    :param warmup_ms: see :data:`SOURCE_WARMUP_MS`
    """

    idle_ms: int = SOURCE_IDLE_MS
    warmup_ms: int = SOURCE_WARMUP_MS
    newest: dict[str, int] = field(default_factory=dict)
    seen_ms: dict[str, int] = field(default_factory=dict)
    start_ms: int = -1
    stated_ms: int = -1
    last_any_ms: int = -1
    resumed_ms: int = -1

    def add(self, source: str, newest_t_ms: int, now_ms: int) -> None:
        """A record of ``source`` arrived at wall time ``now_ms`` whose newest event time
        is ``newest_t_ms`` (-1: none, e.g. only undecodable lines)."""
        if self.start_ms < 0:
            self.start_ms = now_ms
        if self.last_any_ms < 0 or now_ms - self.last_any_ms > STAGE_GAP_MS:
            self.resumed_ms = now_ms  # nothing came from anyone for a while
        self.last_any_ms = now_ms
        self.seen_ms[source] = now_ms
        if newest_t_ms > self.newest.get(source, -1):
            self.newest[source] = newest_t_ms

    def progress(self, now_ms: int) -> int:
        """The progress to state now, ms UTC (-1: none yet)."""
        if self.start_ms < 0 or now_ms - self.start_ms < self.warmup_ms:
            return self.stated_ms
        quiet = [
            s for s, t in self.seen_ms.items() if now_ms - max(t, self.resumed_ms) > self.idle_ms
        ]
        if quiet and len(quiet) == len(self.seen_ms):
            # every source silent at once: nothing of any is in flight, so all each delivered
            # is in; the newest of them is the progress (a source that sends again after a
            # broker outage comes back within the AIS disorder of the others, real-time
            # receivers being in step). None is forgotten: silent together is the broker
            # (or this worker) cut off as much as the end of the input, and the first
            # source heard again must not leave the backlogs of the others behind
            self.stated_ms = max(self.stated_ms, max(self.newest.values(), default=-1))
            return self.stated_ms
        for s in quiet:
            # idle: forgotten (it counts again from its next record)
            self.seen_ms.pop(s)
            self.newest.pop(s, None)
        if self.newest:
            self.stated_ms = max(self.stated_ms, min(self.newest.values()))
        return self.stated_ms
