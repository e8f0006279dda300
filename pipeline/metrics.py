"""Prometheus metrics of every long-running Shorewatch process, and their HTTP endpoint.

Names follow Prometheus conventions: ``shorewatch_<what>_<unit>``, counters end in
``_total`` (prometheus-client appends it), durations in seconds, and no label takes
unbounded values: never an MMSI, a track id or a camera id (per-camera state is on the
``camera.status`` topic; here cameras are counted by status).

=========================================  =========  =====================================
metric                                     type       labels
=========================================  =========  =====================================
shorewatch_build_info                      gauge      version, role
shorewatch_ready                           gauge      (1 when /readyz answers 200)
shorewatch_ingest_lines_total              counter    source (tcp, tcp-in, udp, file, ...),
                                                      outcome (received, published, failed)
shorewatch_messages_total                  counter    source (ais, camera, ...), outcome
shorewatch_records_published_total         counter    topic, outcome (ok, failed)
shorewatch_dead_letters_total              counter    reason, stage
shorewatch_agent_batch_records             histogram  agent
shorewatch_agent_processing_seconds        histogram  agent
shorewatch_agent_event_lag_seconds         gauge      agent (wall now - newest event time)
shorewatch_alerts_total                    counter    kind, status
shorewatch_camera_frames_total             counter    outcome (seen, analysed, dropped,
                                                      failed)
shorewatch_cameras                         gauge      status (online, degraded, offline, ...)
shorewatch_camera_latency_seconds          histogram  (capture to acknowledged record)
shorewatch_archive_rows_total              counter    table
shorewatch_archive_lag_seconds             gauge      table (wall now - newest archived t)
shorewatch_console_push_latency_seconds    histogram  (alert record time to browser push)
shorewatch_webhook_deliveries_total        counter    outcome (delivered, retried, rejected,
                                                      gone, unreachable)
=========================================  =========  =====================================

:class:`MetricsServer` serves ``/metrics``, ``/healthz`` (the process's event loop
answers) and ``/readyz`` (the role's own readiness callback: a connector whose producer
reaches the broker; a worker with assigned partitions, caught up within a bound).
:func:`serve_from_env` starts it on ``SHOREWATCH_METRICS_BIND``:``SHOREWATCH_METRICS_PORT``
(no server when the port is unset or 0).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from importlib import metadata
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

# ``*_created`` series double every counter's series for a timestamp nobody queries here.
disable_created_metrics()

_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)

BUILD_INFO = Gauge(
    "shorewatch_build_info", "The running Shorewatch version and role", ["version", "role"]
)
READY = Gauge("shorewatch_ready", "1 when the process is ready (its /readyz answers 200)")
INGEST_LINES = Counter(
    "shorewatch_ingest_lines", "Input lines read by a connector", ["source", "outcome"]
)
MESSAGES = Counter("shorewatch_messages", "Decoded input messages", ["source", "outcome"])
RECORDS_PUBLISHED = Counter(
    "shorewatch_records_published",
    "Records handed to Kafka, by acknowledgement",
    ["topic", "outcome"],
)
DEAD_LETTERS = Counter(
    "shorewatch_dead_letters", "Records sent to shorewatch.deadletter.v1", ["reason", "stage"]
)
AGENT_BATCH = Histogram(
    "shorewatch_agent_batch_records", "Records per batch an agent takes", ["agent"],
    buckets=_BATCH_BUCKETS,
)  # fmt: skip
AGENT_PROCESSING = Histogram(
    "shorewatch_agent_processing_seconds", "Time an agent spends on one batch", ["agent"],
    buckets=_LATENCY_BUCKETS_S,
)  # fmt: skip
AGENT_EVENT_LAG = Gauge(
    "shorewatch_agent_event_lag_seconds",
    "Wall-clock now minus the newest event time an agent processed",
    ["agent"],
)
ALERTS = Counter("shorewatch_alerts", "Alert events emitted", ["kind", "status"])
CAMERA_FRAMES = Counter("shorewatch_camera_frames", "Camera frames by outcome", ["outcome"])
CAMERAS = Gauge("shorewatch_cameras", "Cameras of this connector by their last status", ["status"])
CAMERA_LATENCY = Histogram(
    "shorewatch_camera_latency_seconds",
    "Frame capture to its detection record acknowledged by Kafka",
    buckets=_LATENCY_BUCKETS_S,
)
ARCHIVE_ROWS = Counter("shorewatch_archive_rows", "Rows written to the archive", ["table"])
ARCHIVE_LAG = Gauge(
    "shorewatch_archive_lag_seconds",
    "Wall-clock now minus the newest event time archived",
    ["table"],
)
CONSOLE_PUSH_LATENCY = Histogram(
    "shorewatch_console_push_latency_seconds",
    "Alert record timestamp to its push to the browsers",
    buckets=_LATENCY_BUCKETS_S,
)
WEBHOOK_DELIVERIES = Counter(
    "shorewatch_webhook_deliveries", "Webhook delivery attempts by outcome", ["outcome"]
)

CAMERA_STATUSES = ("online", "degraded", "offline", "stopped")


class CameraStatusBoard:
    """The last status of each camera, exported only as counts per status."""

    def __init__(self, gauge: Gauge = CAMERAS):
        self._gauge = gauge
        self._status: dict[str, str] = {}
        self._lock = threading.Lock()

    def set(self, camera_id: str, status: str) -> None:
        with self._lock:
            self._status[camera_id] = status
        self._export()

    def forget(self, camera_id: str) -> None:
        """A camera this process no longer runs (its worker ended): no longer counted."""
        with self._lock:
            self._status.pop(camera_id, None)
        self._export()

    def _export(self) -> None:
        with self._lock:
            counts = dict.fromkeys(CAMERA_STATUSES, 0)
            for s in self._status.values():
                counts[s] = counts.get(s, 0) + 1
        for s, n in counts.items():
            self._gauge.labels(status=s).set(n)


camera_status = CameraStatusBoard()


def source_kind(source_id: str) -> str:
    """The bounded part of a source id (``tcp:10.0.0.5:5631`` -> ``tcp``)."""
    return source_id.split(":", 1)[0] or "unknown"


def observe_event_lag(agent: str, newest_event_t_ms: int, now_s: float | None = None) -> None:
    """Set ``agent``'s event-time lag from the newest event time it processed (ms UTC)."""
    now_s = time.time() if now_s is None else now_s
    AGENT_EVENT_LAG.labels(agent=agent).set(max(0.0, now_s - newest_event_t_ms / 1000.0))


def version() -> str:
    try:
        return metadata.version("shorewatch")
    except metadata.PackageNotFoundError:
        return "unknown"


ReadyCheck = Callable[[], tuple[bool, str]]


class MetricsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` over aiohttp, in the caller's event loop.

    :param role: the process's role (``ingest-ais``, ``worker``, ...), in ``shorewatch_build_info``
    :param ready: returns ``(ready, why)``; ``None``: ready whenever the loop answers
    :param port: TCP port; 0 picks a free one (see :attr:`port` after :meth:`start`)
    """

    def __init__(
        self,
        role: str,
        ready: ReadyCheck | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 9400,
        registry: CollectorRegistry = REGISTRY,
    ):
        self.role = role
        self.ready = ready
        self.host = host
        self.port = port
        self.registry = registry
        self._runner: Any = None

    async def start(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(f"metrics endpoint {self.host}:{self.port}: {exc}") from exc
        self._runner = runner
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        BUILD_INFO.labels(version=version(), role=self.role).set(1)
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _is_ready(self) -> tuple[bool, str]:
        if self.ready is None:
            return True, "ok"
        try:
            return self.ready()
        except Exception as exc:  # noqa: BLE001 - a failing check means not ready
            return False, f"readiness check failed: {exc!r}"

    async def _metrics(self, request):  # type: ignore[no-untyped-def]
        from aiohttp import web

        READY.set(1 if self._is_ready()[0] else 0)
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request):  # type: ignore[no-untyped-def]
        from aiohttp import web

        return web.Response(text="ok\n")

    async def _readyz(self, request):  # type: ignore[no-untyped-def]
        from aiohttp import web

        ok, why = self._is_ready()
        READY.set(1 if ok else 0)
        return web.Response(status=200 if ok else 503, text=why + "\n")


def endpoint_from_env(env: dict[str, str] | None = None) -> tuple[str, int] | None:
    """``(host, port)`` from ``SHOREWATCH_METRICS_BIND`` / ``SHOREWATCH_METRICS_PORT``;
    ``None`` when the port is unset or 0.

    :raises ConfigError: a port that is not a number in 0..65535
    """
    env = dict(os.environ if env is None else env)
    raw = env.get("SHOREWATCH_METRICS_PORT", "").strip()
    if not raw:
        return None
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"SHOREWATCH_METRICS_PORT={raw!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"SHOREWATCH_METRICS_PORT={port} is out of range")
    if port == 0:
        return None
    return env.get("SHOREWATCH_METRICS_BIND", "127.0.0.1"), port


@contextlib.asynccontextmanager
async def serve_from_env(
    role: str, ready: ReadyCheck | None = None
) -> AsyncIterator[MetricsServer | None]:
    """Serve metrics for the duration of the block when the environment asks for it."""
    where = endpoint_from_env()
    if where is None:
        yield None
        return
    server = MetricsServer(role, ready, host=where[0], port=where[1])
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
