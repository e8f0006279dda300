"""The tracks' eviction clock: a source far ahead of the others (a TCP client stamping the
wall clock beside a replayed night) must not make the night's tracks look idle, whichever
reached a micro-batch first (the ``oversized-input`` chaos scenario)."""

from __future__ import annotations

import pytest

from pipeline.engine.source_progress import SourceProgress
from pipeline.engine.tracks import TrackDriverState, TrackParams, sweep_idle, track_batch
from schemas.records import AisPosition, Track

NIGHT_MS = 1_772_910_000_000  # 2026-03-07 19:00 UTC
MONTHS_MS = 270 * 86_400_000  # the client's clock: nine months after the night
BOAT = 413_974_787


def _fix(mmsi: int, t_ms: int, lon: float, lat: float) -> AisPosition:
    return AisPosition(
        mmsi=mmsi, msg_type=1, t_ms=t_ms, lon=lon, lat=lat, sog_kn=6.0, cog_deg=180.0,
        heading_deg=None, nav_status=0, accuracy=True, source="test", rx_t_ms=t_ms,
    )  # fmt: skip


def _night(minutes: int) -> list[AisPosition]:
    """The boat reporting every 10 s for ``minutes`` from the night's start."""
    return [_fix(BOAT, NIGHT_MS + k * 10_000, 110.42, 20.13 - k * 1e-5) for k in range(minutes * 6)]


def _client() -> list[AisPosition]:
    """20 fixes of a client whose clock is months ahead, far from the area."""
    return [_fix(211_998_000 + k, NIGHT_MS + MONTHS_MS + k, 10.5, 56.0) for k in range(20)]


def _drive(
    batches: list[tuple[str, list[AisPosition]]], with_progress: bool
) -> tuple[dict[int, Track], list[Track]]:
    """The tracks driver over micro-batches, as the tracks agent steps them: one batch per
    second of wall time, the decode stage's progress (:class:`SourceProgress`, over the
    sources) passed to the sweep when ``with_progress``. Returns the tracks and every
    update of the boat."""
    tracks: dict[int, Track] = {}
    driver = TrackDriverState()
    src = SourceProgress()
    boat: list[Track] = []
    for k, (source, fixes) in enumerate(batches):
        now_ms = k * 1000
        src.add(source, max(f.t_ms for f in fixes), now_ms)
        src.add("night", -1, now_ms)  # the night's file keeps sending throughout
        batch = track_batch(tracks, driver, fixes, [], TrackParams(), None)
        for tr in batch.result.updates:
            tracks[tr.mmsi] = tr
        boat += [tr for tr in batch.result.updates if tr.mmsi == BOAT]
        progress = src.progress(now_ms) if with_progress else None
        for tr in sweep_idle(tracks, driver, batch.result.updates, TrackParams(), None, progress):
            del tracks[tr.mmsi]
    return tracks, boat


def _live_order() -> list[tuple[str, list[AisPosition]]]:
    """As the scenario plays: the client's fixes arrive in the second minute of the night."""
    night = _night(20)
    per_batch = [night[i : i + 6] for i in range(0, len(night), 6)]  # a minute a second
    return (
        [("night", b) for b in per_batch[:2]]
        + [("tcp", _client())]
        + [("night", b) for b in per_batch[2:]]
    )


def _replay_order() -> list[tuple[str, list[AisPosition]]]:
    """As replay merges them: in event-time order, the client's fixes last."""
    return [(s, b) for s, b in _live_order() if s == "night"] + [("tcp", _client())]


@pytest.mark.unit
def test_a_source_months_ahead_evicts_nothing_when_it_arrives_first() -> None:
    live, live_boat = _drive(_live_order(), with_progress=True)
    replay, replay_boat = _drive(_replay_order(), with_progress=True)
    assert BOAT in live and BOAT in replay
    # the track kept its first fix (the identity grace of a nameless vessel counts from it)
    assert {tr.first_t_ms for tr in live_boat} == {NIGHT_MS}
    assert live[BOAT].first_t_ms == replay[BOAT].first_t_ms == NIGHT_MS
    assert live[BOAT].n_fixes == replay[BOAT].n_fixes == 20 * 6


@pytest.mark.unit
def test_the_newest_fix_as_the_clock_is_what_evicted_the_night() -> None:
    """The cause, as it was: with the newest fix of any source as the clock, the client's
    fixes arriving first evicted the boat, whose next fix began a new track a minute
    later: in ``oversized-input`` its ``identity_anomaly`` opened 59 s after replay's."""
    _, boat = _drive(_live_order(), with_progress=False)
    firsts = sorted({tr.first_t_ms or -1 for tr in boat})
    assert firsts[0] == NIGHT_MS and len(firsts) == 2
    assert firsts[1] - NIGHT_MS == 2 * 60_000  # the first fix after the client's batch


@pytest.mark.unit
def test_progress_not_stated_yet_starts_no_sweep() -> None:
    """Before the decode stage states a progress (-1, its warm-up after a start), the
    client's fixes alone do not start the eviction clock either."""
    tracks: dict[int, Track] = {}
    driver = TrackDriverState()
    for fixes in (_night(1), _client()):
        batch = track_batch(tracks, driver, fixes, [], TrackParams(), None)
        for tr in batch.result.updates:
            tracks[tr.mmsi] = tr
        assert sweep_idle(tracks, driver, batch.result.updates, TrackParams(), None, -1) == []
    assert driver.last_sweep_t_ms == 0
