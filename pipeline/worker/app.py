"""The Faust application: thin agents that decode records, call the engine, and emit.

::

    ais.raw ──decode──► ais.position ─┐
                    └─► ais.static ───┴─tracks (table: MMSI → Track)──► track
                    └─► deadletter                                  └─► fusion.input (key: area)
    camera.detection ──feed──────────────────────────────────────────► fusion.input
    fusion.input ──area (table: area → AreaState)──► alert

Every agent works on micro-batches (``stream.take``) and hands whole batches to
:mod:`pipeline.engine.decode` and :mod:`pipeline.engine`, which the in-process replay drives
too. Values travel as msgspec JSON bytes (``value_serializer='raw'``; never pickle).

Tables use the key partitioner (``use_partitioner=True``): their changelog
partition is the Kafka default (murmur2) partition of the key bytes, the same
partition the producers of ``ais.position`` (key MMSI) and ``fusion.input`` (key
area) write to, so a table row always lives beside the stream that updates it,
however a batch mixes partitions.

Offsets are committed by Faust after the agent has processed an event (at least
once); sends from an agent are acknowledged by all in-sync replicas with an
idempotent producer (:class:`IdempotentTransport`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import faust

from pipeline import topics
from pipeline.settings import Settings
from pipeline.worker.area_agent import _register_area
from pipeline.worker.batching import Metrics
from pipeline.worker.decode_agent import _register_decode
from pipeline.worker.feed_agent import _register_feed
from pipeline.worker.observe import WorkerHealth, register_pages
from pipeline.worker.tracks_agent import _register_tracks
from pipeline.worker.transport import IdempotentTransport

log = logging.getLogger(__name__)


class ShorewatchApp(faust.App):
    """A Faust app whose producers are idempotent (see :class:`IdempotentProducer`)."""

    def _new_producer_transport(self):  # type: ignore[no-untyped-def]
        return IdempotentTransport(self.conf.broker_producer, self)

    def _new_transport(self):  # type: ignore[no-untyped-def]
        return IdempotentTransport(self.conf.broker_consumer, self)


def create_app(
    settings: Settings | None = None,
    site_dir: str | None = None,
    agents: Iterable[str] = ("decode", "tracks", "feed", "area"),
) -> faust.App:
    """Build the Faust app and register its agents.

    :param site_dir: site folder served by the area agent (default: ``settings.site``)
    :param agents: which agents to register (a worker may run a subset)
    """
    settings = settings or Settings.from_env()
    broker = settings.broker()
    app = ShorewatchApp(
        settings.app_id,
        broker=[f"kafka://{b}" for b in broker.split(",")],
        store=settings.table_store,
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        topic_disable_leader=True,
        processing_guarantee=settings.processing_guarantee,
        producer_acks=-1,
        # batch sends: one produce request per message caps a worker at a few
        # thousand records/s; 5 ms of linger costs little latency
        producer_linger=0.005,
        producer_max_batch_size=1 << 20,
        web_enabled=settings.worker_port > 0,
        web_port=max(settings.worker_port, 1),
        web_bind=settings.worker_bind,
        datadir=settings.data_dir,
        autodiscover=False,
        consumer_auto_offset_reset=settings.auto_offset_reset,
        stream_wait_empty=False,
        broker_commit_interval=0.5,
        # static membership (group.instance.id) when set: a quick restart keeps its
        # partitions; the session timeout bounds how long a dead worker keeps them
        consumer_group_instance_id=settings.group_instance_id or None,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 5),
    )
    app.shorewatch_metrics = Metrics()  # type: ignore[attr-defined]
    wanted = set(agents)
    if "decode" in wanted:
        _register_decode(app)
    if "tracks" in wanted or "area" in wanted or "feed" in wanted:
        from pipeline.site import load_site

        site = load_site(site_dir or settings.site)
        if "tracks" in wanted:
            _register_tracks(app, site, settings.ais_disorder_ms)
        if "feed" in wanted:
            _register_feed(app, site)
        if "area" in wanted:
            _register_area(app, site, settings)
    if settings.worker_port > 0:
        _register_metrics_view(app)
        sources = {topics.AIS_RAW.name, topics.AIS_FIXES.name}
        sources |= {topics.CAMERA_DETECTION.name, topics.FUSION_INPUT.name}
        register_pages(app, WorkerHealth(app, settings, sources))
    return app


def _register_metrics_view(app: faust.App) -> None:
    @app.page("/shorewatch/metrics/")
    async def metrics_view(web: Any, request: Any) -> Any:
        return web.json(dict(app.shorewatch_metrics.counts))  # type: ignore[attr-defined]


#: the worker's garbage-collector thresholds (CPython's default is 700, 10, 10)
GC_THRESHOLDS = (50_000, 20, 1_000)


def tune_gc() -> None:
    """Collect less often in a running worker.

    The hot path allocates millions of short-lived strings, tuples and records a second
    and frees them by reference counting; with CPython's default thresholds the cyclic
    collector ran so often (and its full passes walked Faust's and aiokafka's whole
    object graph) that it cost about a tenth of the AIS throughput. Objects alive at
    start-up are frozen out of the collector, and a young collection runs every
    50,000 allocations instead of 700. Cyclic garbage still goes, a little later.
    """
    import gc

    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
