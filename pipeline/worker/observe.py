"""The worker's Prometheus metrics and health pages on Faust's web server.

``/metrics`` (the :mod:`pipeline.metrics` registry in Prometheus text format), ``/healthz``
(200 while the event loop answers) and ``/readyz`` (:func:`readiness`: 200 when the worker
has its partitions, its tables are recovered and it is caught up, else 503 with the reason)
on the worker's web port (setting ``worker_port``, 6066; ``worker_bind``).

The agents report each micro-batch with :func:`observe_batch`: its size, its processing
time and the newest event time in it (the agent's event-time lag).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from pipeline import metrics
from pipeline.settings import Settings


def observe_batch(agent: str, n_records: int, started_s: float, newest_t_ms: int = -1) -> None:
    """Count one micro-batch of ``agent``.

    :param n_records: records taken from the agent's input topic
    :param started_s: ``time.perf_counter()`` when the agent started on the batch, s
    :param newest_t_ms: the newest event time in the batch, ms UTC (-1: none, lag unchanged)
    """
    metrics.AGENT_BATCH.labels(agent=agent).observe(n_records)
    metrics.AGENT_PROCESSING.labels(agent=agent).observe(time.perf_counter() - started_s)
    if newest_t_ms > 0:
        now_s = time.time()
        metrics.observe_event_lag(agent, newest_t_ms, now_s)
        EVENT_LAG_S[agent] = max(0.0, now_s - newest_t_ms / 1000.0)


#: each agent's event-time lag at its last batch with events, s (what the gauge shows)
EVENT_LAG_S: dict[str, float] = {}


def readiness(
    *,
    started: bool,
    rebalancing: bool,
    recovered: bool,
    records_behind: int | None,
    event_lag_s: Mapping[str, float],
    max_lag_s: float,
    max_lag_records: int,
) -> tuple[bool, str]:
    """Whether a worker is ready, and why not.

    Ready: it joined its group (``started``), is not rebalancing, its tables are recovered,
    and it is caught up: its input partitions are read to within ``max_lag_records`` of
    their end, or every agent's event-time lag is under ``max_lag_s`` (a live worker that
    keeps up with a busy feed may always be a few batches behind the end). A worker with no
    partition assigned (more workers than partitions) is ready: it stands by.

    :param records_behind: records between what the worker read and the end of its input
        partitions (``None``: not known yet; nothing read)
    :param event_lag_s: each agent's wall-clock now minus the newest event time it
        processed, s (agents that processed nothing are absent)
    """
    if not started:
        return False, "waiting for the partition assignment"
    if rebalancing:
        return False, "rebalancing"
    if not recovered:
        return False, "recovering tables from their changelogs"
    if records_behind is None or records_behind <= max_lag_records:
        return True, "ok"
    late = {a: s for a, s in event_lag_s.items() if s > max_lag_s}
    if event_lag_s and not late:
        return True, "ok"
    worst = ", ".join(f"{a} {s:.0f} s" for a, s in sorted(late.items()))
    return False, (
        f"{records_behind} records behind the end of its partitions (bound {max_lag_records})"
        + (f"; event-time lag {worst} (bound {max_lag_s:g} s)" if worst else "")
    )


class WorkerHealth:
    """Reads a Faust app's state for :func:`readiness`.

    :param sources: the agents' input topics (changelog topics are not counted)
    """

    def __init__(self, app: faust.App, settings: Settings, sources: Iterable[str]):
        self.app = app
        self.settings = settings
        self.sources = frozenset(sources)

    def records_behind(self) -> int | None:
        consumer = self.app.consumer
        read = consumer._read_offset  # type: ignore[attr-defined]
        behind, known = 0, False
        for tp in self.app.assignor.assigned_actives():  # type: ignore[attr-defined]
            if tp.topic not in self.sources:
                continue
            offset = read.get(tp)
            if offset is None:
                continue
            try:
                end = consumer.highwater(tp)
            except Exception:  # noqa: BLE001 - no fetch yet for this partition
                continue
            if end is None:
                continue
            known = True
            behind += max(0, int(end) - int(offset) - 1)
        return behind if known else None

    def check(self) -> tuple[bool, str]:
        app: Any = self.app
        recovery = app.tables.recovery
        return readiness(
            started=recovery.completed.is_set(),
            rebalancing=bool(app.rebalancing),
            recovered=not app.in_recovery,
            records_behind=self.records_behind() if recovery.completed.is_set() else None,
            event_lag_s=dict(EVENT_LAG_S),
            max_lag_s=self.settings.ready_max_lag_s,
            max_lag_records=self.settings.ready_max_lag_records,
        )


def register_pages(app: faust.App, health: WorkerHealth) -> None:
    """``/metrics``, ``/healthz`` and ``/readyz`` on the worker's web server; sets
    ``shorewatch_build_info{role="worker"}``."""
    metrics.BUILD_INFO.labels(version=metrics.version(), role="worker").set(1)

    @app.page("/metrics")
    async def prometheus_view(web: Any, request: Any) -> Any:
        metrics.READY.set(1 if health.check()[0] else 0)
        return web.bytes(generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/healthz")
    async def healthz_view(web: Any, request: Any) -> Any:
        return web.text("ok\n")

    @app.page("/readyz")
    async def readyz_view(web: Any, request: Any) -> Any:
        ok, why = health.check()
        metrics.READY.set(1 if ok else 0)
        return web.text(why + "\n", status=200 if ok else 503)
