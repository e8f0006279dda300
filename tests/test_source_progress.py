"""The decode stage's progress over several AIS sources: a source whose input is still in
a backlog holds it back, a source ahead of the others makes nothing late, an idle source
stops holding it back, and nothing is stated while the sources are still being heard."""

from __future__ import annotations

import pytest

from pipeline.engine.source_progress import SourceProgress

pytestmark = pytest.mark.unit

T = 1_772_910_000_000  # an event time, ms UTC
W = 1_800_000_000_000  # a wall time, ms UTC


def test_a_backlogged_source_holds_the_progress_back() -> None:
    sp = SourceProgress(idle_ms=10_000, warmup_ms=3_000)
    sp.add("probes", T + 900_000, W)  # a source far ahead, heard first after a restart
    assert sp.progress(W) == -1  # warming up: the backlog's source not heard yet
    sp.add("night", T, W + 500)
    assert sp.progress(W + 3_000) == T
    sp.add("night", T + 60_000, W + 4_000)  # the backlog drains
    assert sp.progress(W + 4_000) == T + 60_000
    sp.add("night", T + 1_000_000, W + 5_000)  # caught up and past the other
    assert sp.progress(W + 5_000) == T + 900_000


def test_an_idle_source_stops_holding_back_and_counts_again_when_it_sends() -> None:
    sp = SourceProgress(idle_ms=10_000, warmup_ms=0)
    sp.add("a", T, W)
    sp.add("b", T + 5_000, W)
    assert sp.progress(W) == T
    for k in range(1, 12):  # b keeps sending, a sends nothing for 11 s: idle
        sp.add("b", T + 10_000 + k * 1_000, W + k * 1_000)
    assert sp.progress(W + 11_000) == T + 21_000
    sp.add("a", T + 10_000, W + 12_000)  # a is back, behind: the progress never goes back
    assert sp.progress(W + 12_000) == T + 21_000
    sp.add("a", T + 30_000, W + 13_000)
    sp.add("b", T + 40_000, W + 13_000)
    assert sp.progress(W + 13_000) == T + 30_000


def test_one_source_is_its_own_newest_event_time() -> None:
    sp = SourceProgress(warmup_ms=0)
    for k in range(5):
        sp.add("only", T + k * 1_000, W + k)
        assert sp.progress(W + k) == T + k * 1_000
    sp.add("only", -1, W + 10)  # nothing decodable: no progress, no regress
    assert sp.progress(W + 10) == T + 4_000


def test_a_gap_with_nothing_from_anyone_makes_no_source_idle() -> None:
    """The broker away for 30 s: when input comes back, the first source heard (ahead)
    does not leave the other's backlog behind."""
    sp = SourceProgress(idle_ms=10_000, warmup_ms=0)
    sp.add("night", T, W)
    sp.add("probes", T + 1_000, W)
    assert sp.progress(W) == T
    sp.add("probes", T + 900_000, W + 30_000)  # back after the outage: probes first
    assert sp.progress(W + 30_000) == T  # the night's backlog still holds it
    sp.add("night", T + 60_000, W + 31_000)
    assert sp.progress(W + 31_000) == T + 60_000


def test_sources_that_all_fall_silent_together_leave_the_newest_as_the_progress() -> None:
    """The night's receiver stops, a one-off source far ahead is heard just after a pause:
    once both are silent for the idle time, everything either delivered is in."""
    sp = SourceProgress(idle_ms=10_000, warmup_ms=0)
    sp.add("night", T, W)
    sp.add("elsewhere", T + 1_200_000, W + 2_500)  # after a pause: the idle clocks restart
    assert sp.progress(W + 3_000) == T  # the night may still be sending
    assert sp.progress(W + 12_000) == T
    assert sp.progress(W + 12_600) == T + 1_200_000  # both silent since: all is in
    sp.add("night", T + 1_000, W + 13_000)
    assert sp.progress(W + 13_000) == T + 1_200_000  # never goes back


def test_a_broker_outage_ticked_through_forgets_no_source() -> None:
    """The stage states its progress every second with no input (the timer): through a
    broker outage longer than the idle time every source is silent, and the first heard
    again (the probes, far ahead) must not leave the night's backlog behind (measured:
    ``connectors-broker-away`` released the area 11 min of event time past the night's
    AIS still in the connector's buffer, and the AIS came late)."""
    sp = SourceProgress(idle_ms=10_000, warmup_ms=0)
    sp.add("night", T, W)
    sp.add("probes", T + 1_000, W)
    for k in range(1, 30):  # the ticks while the broker is away
        assert sp.progress(W + k * 1_000) <= T + 1_000
    sp.add("probes", T + 700_000, W + 30_000)  # back: the probes first, far ahead
    assert sp.progress(W + 30_000) == T + 1_000
    assert sp.progress(W + 31_000) == T + 1_000  # the night's backlog still holds it
    sp.add("night", T + 60_000, W + 31_500)
    assert sp.progress(W + 31_500) == T + 60_000
    # a source that never comes back stops holding the progress after the idle time
    for k in range(1, 12):
        sp.add("probes", T + 700_000 + k * 1_000, W + 31_500 + k * 1_000)
    assert sp.progress(W + 42_600) == T + 711_000
