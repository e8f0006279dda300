"""What the registry says about the MMSIs of a micro-batch, for the drivers of the engine.

The worker's area agent and the replay hand the area step the
:class:`~schemas.records.VesselIdentity` of each MMSI of a micro-batch of tracks
(:func:`pipeline.engine.area.area_step`'s ``identities``). :class:`IdentityResolver` answers
from an in-memory snapshot (:class:`~pipeline.registry.index.RegistryIndex` and the
watchlist), one vectorised look-up per micro-batch, and reloads the snapshot every
``reload_s`` of wall-clock time.

A registry that cannot be reached never stops the pipeline: without a snapshot every MMSI
is ``unavailable`` (its alerts say "registry unavailable"), with an older one the older
answers stand; loading is retried with exponential backoff (``retry_min_s`` doubling up
to ``retry_max_s``).

A registry that is not in use answers nothing, so no rule against it fires: a SQLite file
that does not exist (the default ``registry_url`` of an installation without a registry),
or a database with neither vessels nor watchlist entries.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import RegistryError
from pipeline.registry.index import RegistryIndex
from pipeline.registry.store import Registry, VesselRecord, WatchEntry
from schemas.records import CameraFrame, RegistryRecord, Track, VesselIdentity, WatchlistHit

__all__ = ["IdentityResolver", "registry_record", "watch_key"]

log = logging.getLogger(__name__)


def registry_record(r: VesselRecord) -> RegistryRecord:
    """A registry row as alerts carry it."""
    return RegistryRecord(
        registration_no=r.registration_no, mmsi=r.mmsi, name=r.name, hull_number=r.hull_number,
        port_of_registry=r.port_of_registry, vessel_type=r.vessel_type, length_m=r.length_m,
        owner=r.owner, home_harbours=list(r.home_harbours),
        valid_until=r.valid_until.isoformat() if r.valid_until else None,
    )  # fmt: skip


def watch_key(kind: str, value: str) -> tuple[str, str]:
    """The key a watchlist entry is matched by (names as AIS writes them: upper case,
    single spaces)."""
    return (kind, " ".join(value.upper().split()) if kind == "name" else value)


def _hit(e: WatchEntry) -> WatchlistHit:
    return WatchlistHit(
        kind=e.kind,  # type: ignore[arg-type]
        value=e.value,
        reason=e.reason,
        added_by=e.added_by,
        until=e.until.isoformat() if e.until else None,
    )


class IdentityResolver:
    """Registry identities of micro-batches of tracks, from a snapshot reloaded on a period.

    :param url: the registry's SQLAlchemy URL (setting ``registry_url``)
    :param reload_s: reload the snapshot this often, s of wall-clock time
    :param retry_min_s: first wait after a failed load, s (doubles per failure)
    :param retry_max_s: longest wait between tries, s
    :param clock: monotonic seconds (tests pass their own)
    """

    def __init__(
        self,
        url: str,
        *,
        reload_s: float = 300.0,
        retry_min_s: float = 1.0,
        retry_max_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.reload_s = reload_s
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.clock = clock
        self.index: RegistryIndex | None = None
        self.by_hull: dict[str, VesselRecord] = {}
        self.watch: dict[tuple[str, str], list[WatchEntry]] = {}
        self.in_use = True
        self.failures = 0
        self.loads = 0
        self.last_error: str | None = None
        self._registry: Registry | None = None
        self._next_t = 0.0

    def due(self) -> bool:
        """Whether :meth:`refresh` would try a load now."""
        return self.clock() >= self._next_t

    def _missing_sqlite(self) -> bool:
        if not self.url.startswith("sqlite:///") or self.url == "sqlite:///:memory:":
            return False
        return not Path(self.url.removeprefix("sqlite:///")).exists()

    def refresh(self) -> bool:
        """Load the snapshot if due; whether a load succeeded. Never raises for an
        unreachable database: it is logged, counted and retried with backoff."""
        now = self.clock()
        if now < self._next_t:
            return False
        if self._missing_sqlite():
            self.in_use, self.index, self._next_t = False, None, now + self.reload_s
            return False
        try:
            if self._registry is None:
                reg = Registry(self.url)
                try:
                    reg.migrate()
                except RegistryError:
                    reg.close()  # no pool left behind per failed try
                    raise
                self._registry = reg
            records = self._registry.all()
            entries = self._registry.watchlist()
        except RegistryError as exc:  # unreachable, or a database that refuses us
            self.failures += 1
            self.last_error = str(exc)
            wait = min(self.retry_max_s, self.retry_min_s * 2.0 ** (self.failures - 1))
            self._next_t = now + wait
            log.warning("registry %s: %s (retry in %.0f s)", self.url, exc, wait)
            return False
        self.index = RegistryIndex(records)
        self.by_hull = {r.hull_number: r for r in records if r.hull_number}
        self.watch = {}
        for e in entries:
            self.watch.setdefault(watch_key(e.kind, e.value), []).append(e)
        self.in_use = bool(records) or bool(entries)
        self.failures, self.last_error = 0, None
        self.loads += 1
        self._next_t = now + self.reload_s
        return True

    @property
    def available(self) -> bool:
        """Whether a snapshot is loaded."""
        return self.index is not None

    def resolve(
        self,
        tracks: Sequence[Track],
        frames: Sequence[CameraFrame] = (),
        *,
        refresh: bool = True,
    ) -> list[VesselIdentity]:
        """The identity of each MMSI of a micro-batch of tracks (the newest track of each
        MMSI gives the name and the event time at which watchlist entries must be active),
        and of each hull number a camera read in its frames.

        :param refresh: try :meth:`refresh` first when due (the worker refreshes off its
            event loop and passes ``False``)
        """
        if refresh:
            self.refresh()
        if not self.in_use:
            return []
        newest: dict[int, Track] = {}
        for tr in tracks:
            if tr.event != "evicted" and (tr.mmsi not in newest or tr.t_ms >= newest[tr.mmsi].t_ms):
                newest[tr.mmsi] = tr
        return self._by_mmsi(newest) + self._by_hull(frames)

    def _by_mmsi(self, newest: dict[int, Track]) -> list[VesselIdentity]:
        if not newest:
            return []
        mmsis = np.fromiter(newest, dtype=np.int64, count=len(newest))
        if self.index is None:
            return [VesselIdentity(mmsi=int(m), status="unavailable") for m in mmsis.tolist()]
        pos = self.index.positions(mmsis).tolist()
        out = []
        for m, p in zip(mmsis.tolist(), pos, strict=True):
            tr = newest[m]
            rec = registry_record(self.index.records[p]) if p >= 0 else None
            out.append(
                VesselIdentity(
                    mmsi=m,
                    status="registered" if rec is not None else "unregistered",
                    record=rec,
                    watchlist=self._hits(m, tr, rec),
                )
            )
        return out

    def _by_hull(self, frames: Sequence[CameraFrame]) -> list[VesselIdentity]:
        """Identities of the hull numbers read in a batch of frames (newest frame first)."""
        seen: dict[str, int] = {}
        for fr in frames:
            for d in fr.detections:
                if d.hull_number is not None:
                    seen[d.hull_number] = max(fr.t_ms, seen.get(d.hull_number, -1))
        out = []
        for hull, t_ms in sorted(seen.items()):
            if self.index is None:
                out.append(VesselIdentity(mmsi=-1, hull_number=hull, status="unavailable"))
                continue
            r = self.by_hull.get(hull)
            rec = registry_record(r) if r is not None else None
            mmsi = r.mmsi if r is not None and r.mmsi is not None else -1
            out.append(
                VesselIdentity(
                    mmsi=mmsi,
                    hull_number=hull,
                    status="registered" if rec is not None else "unregistered",
                    record=rec,
                    watchlist=self._hits(mmsi, None, rec, t_ms, hull),
                )
            )
        return out

    def _hits(
        self,
        mmsi: int,
        tr: Track | None,
        rec: RegistryRecord | None,
        t_ms: int | None = None,
        hull: str | None = None,
    ) -> list[WatchlistHit]:
        """Active entries on the MMSI, its AIS or registered name, its hull number (as
        registered, or as read)."""
        if not self.watch:
            return []
        t = tr.t_ms if tr is not None else int(t_ms or 0)
        at = dt.datetime.fromtimestamp(t / 1000.0, tz=dt.UTC)
        keys = [("mmsi", str(mmsi))] if mmsi >= 0 else []
        if hull is not None:
            keys.append(("hull_number", hull))
        for name in (tr.name if tr is not None else None, rec.name if rec else None):
            if name and watch_key("name", name) not in keys:
                keys.append(watch_key("name", name))
        if rec is not None and rec.hull_number and rec.hull_number != hull:
            keys.append(("hull_number", rec.hull_number))
        return [_hit(e) for k in keys for e in self.watch.get(k, ()) if e.active(at)]

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()

    def stats(self) -> dict[str, Any]:
        """For logs and health: whether in use and loaded, loads, failures, last error."""
        return {
            "in_use": self.in_use, "available": self.available, "loads": self.loads,
            "failures": self.failures, "last_error": self.last_error,
        }  # fmt: skip
