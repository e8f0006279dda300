"""The Faust application: thin agents that decode records, call the engine, and emit.

::

    ais.raw ──decode──► ais.position ─┐
                    └─► ais.static ───┴─tracks (table: MMSI → Track)──► track
                    └─► deadletter                                  └─► fusion.input (key: area)
    camera.detection ──feed──────────────────────────────────────────► fusion.input
    fusion.input ──area (table: area → AreaState)──► alert

Every agent works on micro-batches (``stream.take``) and hands whole batches to
:mod:`pipeline.ais` and :mod:`pipeline.engine`, which the in-process replay drives
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

import argparse
import asyncio
import logging
import subprocess
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import faust
import msgspec
import numpy as np
from aiokafka.partitioner import murmur2
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from pipeline import topics
from pipeline.ais import pack_fixes, unpack_fixes
from pipeline.engine import PositionColumns
from pipeline.settings import Settings
from schemas import records

log = logging.getLogger(__name__)

TAKE_MAX = 1000
#: longest a fetch waits at the broker for data, ms (Faust fixes 1500 ms)
FETCH_MAX_WAIT_MS = 100
#: raw AIS records (each up to ``raw_batch_lines`` lines) per decode micro-batch
RAW_TAKE_MAX = 100
#: most position reports (84 bytes each in base64) and most static reports (at most
#: about 400 bytes each) per ``ais.fixes`` record: under Kafka's 1 MB
FIX_BATCH_MAX = 4000
FIX_STATICS_MAX = 1000
#: longest an agent waits to fill a micro-batch, s. Faust's take waits this long from the
#: start of each round unless the batch fills, so under light load every stage adds up
#: to this much latency. 0.01 s halved the AIS p99 at 5,000 sentences/s, but the tracks
#: agent publishes each vessel's state at the end of a micro-batch, and batches that
#: small made the live trails (and the positions of alerts) differ from replay's.
TAKE_WITHIN_S = 0.05
#: the same for the decode agent: its micro-batches only group raw lines into fix
#: records, the tracks agent's take still decides how often a vessel's state is published
RAW_TAKE_WITHIN_S = 0.01

_enc = msgspec.json.Encoder()


class IdempotentProducer(faust_aiokafka.Producer):
    """Faust's producer with ``acks=all`` and idempotence always on."""

    def _settings_extra(self) -> dict[str, Any]:
        return {"acks": "all", "enable_idempotence": True}


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread with a 100 ms fetch wait instead of its fixed 1.5 s."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by the fetcher at start
        return consumer


class LowLatencyConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class IdempotentTransport(faust_aiokafka.Transport):
    Producer = IdempotentProducer
    Consumer = LowLatencyConsumer


class ShorewatchApp(faust.App):
    """A Faust app whose producers are idempotent (see :class:`IdempotentProducer`)."""

    def _new_producer_transport(self):  # type: ignore[no-untyped-def]
        return IdempotentTransport(self.conf.broker_producer, self)

    def _new_transport(self):  # type: ignore[no-untyped-def]
        return IdempotentTransport(self.conf.broker_consumer, self)


class Metrics:
    """Counters of one worker, by name (e.g. ``ais.rejected.bad_checksum``)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, counts: dict[str, int] | Counter[str], prefix: str = "") -> None:
        for k, v in counts.items():
            self.counts[prefix + k] += int(v)


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
        web_bind="127.0.0.1",
        datadir=settings.data_dir,
        autodiscover=False,
        consumer_auto_offset_reset=settings.auto_offset_reset,
        stream_wait_empty=False,
        broker_commit_interval=0.5,
    )
    app.shorewatch_metrics = Metrics()  # type: ignore[attr-defined]
    wanted = set(agents)
    if "decode" in wanted:
        _register_decode(app)
    if "tracks" in wanted or "area" in wanted or "feed" in wanted:
        from pipeline.site import load_site

        site = load_site(site_dir or settings.site)
        if "tracks" in wanted:
            _register_tracks(app, site)
        if "feed" in wanted:
            _register_feed(app, site)
        if "area" in wanted:
            _register_area(app, site, settings)
    if settings.worker_port > 0:
        _register_metrics_view(app)
    return app


def raw_topic(app: faust.App, spec: topics.TopicSpec, *more: topics.TopicSpec) -> faust.TopicT:
    """A Faust topic of raw bytes keys and values for registry topics."""
    return app.topic(
        spec.name,
        *(m.name for m in more),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=spec.partitions,
        internal=False,
    )


_NO_HEADERS: list[tuple[str, bytes]] = []  # aiokafka's batch builder wants a list


class BatchSender:
    """Sends many keyed records with few calls: one aiokafka record batch per
    (topic, partition), through the app's idempotent ``acks=all`` producer.

    Faust's ``topic.send`` costs tens of microseconds per record; appending to a
    record batch costs a few. :meth:`flush` waits until every batch is
    acknowledged, so an agent that flushes before taking its next input commits
    offsets only after its outputs are safe (at least once).
    """

    def __init__(self, app: faust.App):
        self.app = app
        self._batches: dict[tuple[str, int], Any] = {}
        self._full: list[tuple[tuple[str, int], Any]] = []  # closed, not yet submitted
        self._pending: list[asyncio.Future] = []
        self._partition_cache: dict[bytes, int] = {}

    def _producer(self) -> Any:
        # the aiokafka producer Faust started (an IdempotentProducer)
        return self.app.producer._ensure_producer()  # type: ignore[attr-defined]

    def partition(self, key: bytes, n_partitions: int) -> int:
        """Kafka's default partition of ``key`` (murmur2), as every producer computes it."""
        p = self._partition_cache.get(key)
        if p is None:
            if len(self._partition_cache) > 1_000_000:
                self._partition_cache.clear()
            p = self._partition_cache[key] = (murmur2(key) & 0x7FFFFFFF) % n_partitions
        return p

    def add(
        self, spec: topics.TopicSpec, key: bytes, value: bytes | None, partition: int | None = None
    ) -> None:
        """:meth:`append` to a registry topic, with the topic's headers."""
        headers = list(spec.headers) if spec.headers else None
        self.append(spec.name, spec.partitions, key, value, partition, headers)

    def append(
        self,
        topic: str,
        n_partitions: int,
        key: bytes,
        value: bytes | None,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Append one record (``value=None``: a tombstone) to ``topic``'s open batch.

        No I/O: a full batch is closed and queued, and :meth:`flush` submits it (the
        producer sends nothing before the agent awaits anyway).
        """
        if partition is None:
            partition = self.partition(key, n_partitions)
        headers = headers or _NO_HEADERS
        slot = (topic, partition)
        batch = self._batches.get(slot)
        if batch is None:
            batch = self._batches[slot] = self._producer().create_batch()
        if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:  # full
            self._full.append((slot, batch))
            batch = self._batches[slot] = self._producer().create_batch()
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                raise ValueError(
                    f"a record of {len(value or b'')} bytes for {topic} does not fit in a "
                    "producer batch; records must stay under the broker's message size"
                )

    async def _submit(self, slot: tuple[str, int], batch: Any) -> None:
        fut = await self._producer().send_batch(batch, slot[0], partition=slot[1])
        self._pending.append(fut)

    async def flush(self) -> None:
        """Submit every open batch and wait until all are acknowledged."""
        full, self._full = self._full, []
        for slot, batch in full:  # before the open batch of the same slot: order kept
            await self._submit(slot, batch)
        batches, self._batches = self._batches, {}
        for slot, batch in batches.items():
            if batch.record_count():
                await self._submit(slot, batch)
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)


class TableWriter:
    """Writes rows of a Faust table without Faust's one-send-per-row changelog path.

    The value goes into the table's local store; the changelog record goes into the
    record batches of a :class:`BatchSender`, on the table's changelog topic and on
    the partition of the key's murmur2 hash, exactly where Faust itself writes it for a
    table with ``use_partitioner=True`` and where it recovers the table from. The
    changelog is acknowledged when the sender flushes, before the agent takes its next
    input (at least once).
    """

    def __init__(self, table: Any, sender: BatchSender, n_partitions: int):
        self.table = table
        self.sender = sender
        self.n_partitions = n_partitions
        self._changelog: str | None = None

    def set(self, key: bytes, value: bytes) -> None:
        self.table.data[key] = value
        self.sender.append(self._topic(), self.n_partitions, key, value)

    def delete(self, key: bytes) -> None:
        self.table.data.pop(key, None)
        self.sender.append(self._topic(), self.n_partitions, key, None)

    def _topic(self) -> str:
        if self._changelog is None:
            self._changelog = self.table.changelog_topic.get_topic_name()
        return self._changelog


def _register_decode(app: faust.App) -> None:
    from pipeline.ais import decode_framed, frame_batch
    from pipeline.core.nmea import Deduplicator, Framed, Reassembler

    metrics: Metrics = app.shorewatch_metrics  # type: ignore[attr-defined]
    raw_dec = msgspec.json.Decoder(records.RawAisBatch)
    sender = BatchSender(app)
    n_fix_parts = topics.AIS_FIXES.partitions
    # Fragment and de-duplication state live in the worker: a fragment group that
    # straddles a rebalance is lost (counted as a reassembly timeout), never wrong.
    reassembler = Reassembler()
    dedup = Deduplicator()

    # MMSI -> (key bytes, partition): the same few thousand vessels come back all the time
    keys: dict[int, tuple[bytes, int]] = {}

    def key_of(mmsi: int) -> tuple[bytes, int]:
        if len(keys) > 1_000_000:
            keys.clear()
        key = str(mmsi).encode()
        kp = keys[mmsi] = (key, sender.partition(key, n_fix_parts))
        return kp

    def _decode_failed(batch: records.RawAisBatch, value: bytes, exc: Exception) -> None:
        log.error("decoding a raw batch of %s failed", batch.source, exc_info=exc)
        metrics.add({"ais.decode_failed": 1})
        dead = _dead_letter(batch.source, "decode_failed", repr(exc), value)
        sender.add(topics.DEADLETTER, batch.source.encode(), _enc.encode(dead))

    pos_topic, sta_topic = topics.AIS_POSITION.name, topics.AIS_STATIC.name
    n_pos_parts, n_sta_parts = topics.AIS_POSITION.partitions, topics.AIS_STATIC.partitions
    encode = _enc.encode
    append = sender.append

    @app.agent(raw_topic(app, topics.AIS_RAW), name="shorewatch.decode")
    async def decode(stream: faust.StreamT) -> None:
        # A micro-batch of raw records at a time, one flush (and wait for the acks) per
        # micro-batch: ack round trips are paid per batch, not per record.
        async for values in stream.take(RAW_TAKE_MAX, within=RAW_TAKE_WITHIN_S):
            # framing record by record (it updates the reassembly and de-duplication
            # state), then one vectorised decode of the whole micro-batch
            framed: list[tuple[records.RawAisBatch, Framed]] = []
            framed_values: list[bytes] = []
            for value in values:
                try:
                    batch = raw_dec.decode(value)
                except msgspec.DecodeError as exc:
                    metrics.add({"ais.raw.undecodable": 1})
                    dead = _dead_letter("ais.raw", "undecodable_record", str(exc), value)
                    sender.add(topics.DEADLETTER, b"ais.raw", _enc.encode(dead))
                    continue
                try:
                    framed.append((batch, frame_batch(batch, reassembler, dedup)))
                    framed_values.append(value)
                except Exception as exc:  # noqa: BLE001 - one bad record never stops the agent
                    _decode_failed(batch, value, exc)
            try:
                outs = decode_framed(framed, with_columns=True)
            except Exception:  # noqa: BLE001 - find the bad record: decode_framed has no state
                outs = []
                for (batch, fr), value in zip(framed, framed_values, strict=True):
                    try:
                        outs.append(decode_framed([(batch, fr)], with_columns=True)[0])
                    except Exception as exc:  # noqa: BLE001
                        _decode_failed(batch, value, exc)
            # the partition of every position report (in order), statics by partition
            parts: list[int] = []
            statics: dict[int, list[records.AisStatic]] = {}
            for out in outs:
                for source, counts in out.counters.items():
                    metrics.add(counts, prefix=f"ais.{source}.")
                for r in out.positions:
                    key, part = keys.get(r.mmsi) or key_of(r.mmsi)
                    append(pos_topic, n_pos_parts, key, encode(r), part)
                    parts.append(part)
                for st in out.statics:
                    key, part = keys.get(st.mmsi) or key_of(st.mmsi)
                    append(sta_topic, n_sta_parts, key, encode(st), part)
                    statics.setdefault(part, []).append(st)
                for d in out.dead_letters:
                    sender.add(topics.DEADLETTER, d.source.encode(), _enc.encode(d))
            cols = [o.position_columns for o in outs if o.position_columns is not None]
            for part, body in fix_records(
                PositionColumns.concat(cols),
                np.asarray(parts, dtype=np.int64),
                statics,
                FIX_BATCH_MAX,
                FIX_STATICS_MAX,
            ):
                append(topics.AIS_FIXES.name, n_fix_parts, body[0], body[1], part)
            await sender.flush()


def fix_records(
    cols: PositionColumns,
    parts: np.ndarray,
    statics: dict[int, list[records.AisStatic]],
    n: int,
    n_statics: int,
) -> Iterator[tuple[int, tuple[bytes, bytes]]]:
    """The ``ais.fixes`` records of one micro-batch: per partition, its position reports
    (order kept) and static reports, at most ``n`` and ``n_statics`` per record; each as
    (partition, (key, value)), the key being the record's first MMSI.

    :param parts: the partition of each position report
    """
    for part in sorted(set(np.unique(parts).tolist()) | set(statics)):
        pc = cols.take(np.flatnonzero(parts == part))
        sts = statics.get(part, [])
        for k in range(max(-(-len(pc) // n), -(-len(sts) // n_statics))):
            chunk = pc.take(np.arange(k * n, min((k + 1) * n, len(pc))))
            chunk_sts = sts[k * n_statics : (k + 1) * n_statics]
            first = int(chunk.mmsi[0]) if len(chunk) else chunk_sts[0].mmsi
            body = _enc.encode(pack_fixes(chunk, chunk_sts))
            yield part, (str(first).encode(), body)


def _dead_letter(source: str, reason: str, detail: str, raw: bytes) -> records.DeadLetter:
    import base64

    return records.DeadLetter(
        source=source,
        stage=source,
        reason=reason,
        detail=detail[:500],
        raw_b64=base64.b64encode(raw).decode(),
        rx_t_ms=int(time.time() * 1000),
    )


#: event time between two sweeps for idle tracks, ms
EVICT_SWEEP_MS = 60_000
#: the eviction clock never runs further ahead of the wall clock than this, ms: one
#: receiver whose clock is wrong by months must not make every other track look idle
EVICT_CLOCK_AHEAD_MAX_MS = 300_000


def _register_tracks(app: faust.App, site: Any) -> None:
    from pipeline.engine import TrackParams, evict_tracks, track_step

    metrics: Metrics = app.shorewatch_metrics  # type: ignore[attr-defined]
    params = TrackParams()
    track_dec = msgspec.json.Decoder(records.Track)
    fix_dec = msgspec.json.Decoder(records.FixColumns)
    table = app.Table(
        "shorewatch-tracks",
        key_type=bytes,
        value_type=bytes,  # bytes: raw codec
        partitions=topics.TRACK.partitions,
        use_partitioner=True,
    )
    sender = BatchSender(app)
    rows = TableWriter(table, sender, topics.TRACK.partitions)
    area = site.name.encode()
    lon0, lat0, lon1, lat1 = site.bbox

    # the Track this worker last wrote for each MMSI, beside the bytes it wrote: while the
    # table still holds those very bytes, the row need not be decoded again
    live: dict[int, tuple[bytes, records.Track]] = {}

    def _decoded(mmsi: int, raw: bytes) -> records.Track:
        cached = live.get(mmsi)
        if cached is not None and cached[0] is raw:
            return cached[1]
        return track_dec.decode(raw)

    class _TableView(Mapping[int, records.Track]):
        """The table as ``Mapping[int, Track]`` for the engine (decoded on access)."""

        def __getitem__(self, mmsi: int) -> records.Track:
            return _decoded(mmsi, table[str(mmsi).encode()])

        def get(self, mmsi: int, default: Any = None) -> Any:
            raw = table.get(str(mmsi).encode())
            return default if raw is None else _decoded(mmsi, raw)

        def __contains__(self, mmsi: object) -> bool:
            return str(mmsi).encode() in table

        def __iter__(self) -> Iterator[int]:
            return (int(k) for k in table.keys())

        def __len__(self) -> int:
            return len(table)

        def values(self) -> list[records.Track]:  # type: ignore[override]
            return [_decoded(int(k), v) for k, v in table.items()]

    view = _TableView()
    last_sweep_t_ms = [0]
    # static reports of MMSIs with no position yet wait for the next batch (as in replay)
    orphans: dict[int, records.AisStatic] = {}
    track_topic, fusion_topic = topics.TRACK.name, topics.FUSION_INPUT.name
    n_track_parts, n_fusion_parts = topics.TRACK.partitions, topics.FUSION_INPUT.partitions
    keys: dict[int, bytes] = {}  # MMSI -> its decimal text

    @app.agent(raw_topic(app, topics.AIS_FIXES), name="shorewatch.tracks")
    async def tracks(stream: faust.StreamT) -> None:
        async for values in stream.take(TAKE_MAX, within=TAKE_WITHIN_S):
            cols: list[PositionColumns] = []
            sta: list[records.AisStatic] = []
            for v in values:
                try:
                    fc = fix_dec.decode(v)
                    cols.append(unpack_fixes(fc))
                except (msgspec.DecodeError, ValueError) as exc:
                    metrics.add({"tracks.undecodable": 1})
                    dead = _dead_letter("ais.fixes", "undecodable_record", str(exc), v)
                    sender.add(topics.DEADLETTER, b"ais.fixes", _enc.encode(dead))
                    continue
                sta += fc.statics
            pos = PositionColumns.concat(cols)
            if orphans:
                sta = [*orphans.values(), *sta]
                orphans.clear()
            try:
                result = track_step(view, pos, sta, params)
            except Exception as exc:  # noqa: BLE001 - keep the input, keep the agent
                log.exception("track step failed on %d fixes", len(pos) + len(sta))
                metrics.add({"tracks.step_failed": 1})
                for v in values:
                    dead = _dead_letter("ais.fixes", "track_step_failed", repr(exc), v)
                    sender.add(topics.DEADLETTER, b"ais.fixes", _enc.encode(dead))
                await sender.flush()
                continue
            for st in result.orphan_statics:
                orphans[st.mmsi] = st
            if len(orphans) > 100_000:  # a flood of statics without positions stays bounded
                metrics.add({"tracks.orphan_statics_dropped": len(orphans)})
                orphans.clear()
            metrics.add(result.counters, prefix="tracks.")
            if len(keys) > 1_000_000:
                keys.clear()
            newest_t_ms = last_sweep_t_ms[0]
            for tr in result.updates:
                m = tr.mmsi
                key = keys.get(m) or keys.setdefault(m, str(m).encode())
                body = _enc.encode(tr)  # once: the table row and the track record
                rows.set(key, body)
                live[m] = (body, tr)
                if tr.t_ms > newest_t_ms:
                    newest_t_ms = tr.t_ms
                sender.append(track_topic, n_track_parts, key, body)
                # the predicate replay uses: live updates inside the site's bbox
                if tr.event == "update" and lon0 <= tr.lon <= lon1 and lat0 <= tr.lat <= lat1:
                    sender.append(
                        fusion_topic,
                        n_fusion_parts,
                        area,
                        _enc.encode(records.FusionInput(area=site.name, track=tr)),
                    )
            newest_t_ms = min(newest_t_ms, int(time.time() * 1000) + EVICT_CLOCK_AHEAD_MAX_MS)
            if newest_t_ms - last_sweep_t_ms[0] >= EVICT_SWEEP_MS:
                # idle tracks leave the table (a tombstone in its changelog) and are
                # published once more with event="evicted"
                if last_sweep_t_ms[0]:
                    for tr in evict_tracks(view, newest_t_ms, params):
                        key = str(tr.mmsi).encode()
                        rows.delete(key)
                        live.pop(tr.mmsi, None)
                        sender.append(track_topic, n_track_parts, key, _enc.encode(tr))
                        metrics.add({"tracks.evicted": 1})
                last_sweep_t_ms[0] = newest_t_ms
            await sender.flush()


def _register_feed(app: faust.App, site: Any) -> None:
    metrics: Metrics = app.shorewatch_metrics  # type: ignore[attr-defined]
    frame_dec = msgspec.json.Decoder(records.CameraFrame)
    fusion = raw_topic(app, topics.FUSION_INPUT)
    dead = raw_topic(app, topics.DEADLETTER)
    cameras = {c.id for c in site.cameras}
    area = site.name

    @app.agent(raw_topic(app, topics.CAMERA_DETECTION), name="shorewatch.feed")
    async def feed(stream: faust.StreamT) -> None:
        async for value in stream:
            try:
                frame = frame_dec.decode(value)
            except msgspec.DecodeError as exc:
                metrics.add({"camera.undecodable": 1})
                await dead.send(
                    key=b"camera.detection",
                    value=_enc.encode(
                        _dead_letter("camera.detection", "undecodable_record", str(exc), value)
                    ),
                )
                continue
            if frame.camera_id not in cameras:
                metrics.add({"camera.unknown_camera": 1})
                await dead.send(
                    key=frame.camera_id.encode(),
                    value=_enc.encode(
                        _dead_letter(
                            "camera.detection",
                            "unknown_camera",
                            f"camera {frame.camera_id!r} is not in site {area!r}",
                            value,
                        )
                    ),
                )
                continue
            await fusion.send(
                key=area.encode(), value=_enc.encode(records.FusionInput(area=area, frame=frame))
            )


#: wall time between two runs of the area clock, s
AREA_CLOCK_PERIOD_S = 0.05


def _register_area(app: faust.App, site: Any, settings: Settings) -> None:
    """The area agent, and its clock.

    The clock lets time pass in an area between inputs: every
    :data:`AREA_CLOCK_PERIOD_S` it estimates the event time now as the newest input's
    event time plus the wall time since that input arrived (times
    ``settings.area_clock_rate``, at most ``settings.area_idle_max_ms`` past it) and
    calls :func:`pipeline.engine.advance_area`, so a landing's dwell or an AIS silence
    raises its alert when it becomes true, not when the next camera frame arrives.
    """

    from pipeline.engine import AreaContext, AreaState, advance_area, area_step

    metrics: Metrics = app.shorewatch_metrics  # type: ignore[attr-defined]
    ctx = AreaContext.from_site(site, lateness_ms=settings.area_lateness_ms)
    in_dec = msgspec.json.Decoder(records.FusionInput)
    table = app.Table(
        "shorewatch-areas",
        key_type=bytes,
        value_type=bytes,  # bytes: raw codec
        partitions=topics.FUSION_INPUT.partitions,
        use_partitioner=True,
    )
    # rows and alerts go out through record batches, like the tracks table's: Faust's
    # own changelog path needs the producer to know the changelog topic already and
    # crashes the agent when it does not (a fresh app id at start-up)
    sender = BatchSender(app)
    rows = TableWriter(table, sender, topics.FUSION_INPUT.partitions)
    # decoded state of each area this worker last wrote, beside the bytes it wrote
    live: dict[bytes, tuple[Any, Any]] = {}
    # per area: (newest input event time, monotonic wall time it arrived)
    newest: dict[bytes, tuple[int, float]] = {}
    # the agent and the clock both step an area: one at a time, alerts sent in order
    lock = asyncio.Lock()

    def load(key: bytes) -> Any:
        raw = table.get(key)
        cached = live.get(key)
        if cached is not None and raw is cached[0]:
            return cached[1]  # the table still holds what this worker wrote last
        # first batch, or the table was recovered from its changelog
        return AreaState.from_bytes(raw) if raw else None

    async def publish(key: bytes, state: Any, out: list) -> None:
        rows.set(key, state.to_bytes())
        live[key] = (table.get(key), state)
        metrics.add(Counter(f"alerts.{a.data.kind}.{a.data.status}" for a in out))
        for a in out:
            sender.add(topics.ALERT, a.data.alert_id.encode(), _enc.encode(a))
        await sender.flush()

    @app.agent(raw_topic(app, topics.FUSION_INPUT), name="shorewatch.area")
    async def area(stream: faust.StreamT) -> None:
        async for values in stream.take(TAKE_MAX, within=TAKE_WITHIN_S):
            by_area: dict[str, tuple[list[records.Track], list[records.CameraFrame]]] = {}
            for v in values:
                item = in_dec.decode(v)
                tr, fr = by_area.setdefault(item.area, ([], []))
                if item.track is not None:
                    tr.append(item.track)
                if item.frame is not None:
                    fr.append(item.frame)
            for name, (trs, frs) in by_area.items():
                if name != ctx.site:
                    metrics.add({"area.unknown_area": len(trs) + len(frs)})
                    continue
                key = name.encode()
                async with lock:
                    state = load(key)
                    try:
                        state, out = area_step(state, trs, frs, ctx)
                    except Exception as exc:  # noqa: BLE001 - keep the input, keep the agent
                        log.exception("area step of %s failed", name)
                        metrics.add({"area.step_failed": 1})
                        for v in values:
                            dead = _dead_letter("fusion.input", "area_step_failed", repr(exc), v)
                            sender.add(topics.DEADLETTER, key, _enc.encode(dead))
                        await sender.flush()
                        live.pop(key, None)  # the state may be half-updated: reload it
                        continue
                    t_new = max([x.t_ms for x in trs] + [x.t_ms for x in frs])
                    if t_new > newest.get(key, (-1, 0.0))[0]:
                        newest[key] = (t_new, time.monotonic())
                    await publish(key, state, out)

    if settings.area_clock_rate > 0:

        @app.timer(AREA_CLOCK_PERIOD_S)
        async def area_clock() -> None:
            owned = app.assignor.assigned_actives()
            for key, (t_ms, wall_s) in list(newest.items()):
                part = (murmur2(key) & 0x7FFFFFFF) % topics.FUSION_INPUT.partitions
                if TP(topics.FUSION_INPUT.name, part) not in owned:
                    newest.pop(key, None)  # moved to another worker: its clock runs there
                    continue
                idle_ms = (time.monotonic() - wall_s) * 1000.0 * settings.area_clock_rate
                clock_t_ms = t_ms + int(min(idle_ms, settings.area_idle_max_ms))
                async with lock:
                    state = load(key)
                    if state is None:
                        continue
                    try:
                        out = advance_area(state, ctx, clock_t_ms)
                    except Exception:  # noqa: BLE001 - the clock must keep running
                        log.exception("advancing area %r failed", key)
                        metrics.add({"area.clock_failed": 1})
                        live.pop(key, None)
                        continue
                    if out:
                        await publish(key, state, out)
                    else:  # an evaluation without alerts need not be written
                        live[key] = (table.get(key), state)


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


def _cmd_worker(args: argparse.Namespace) -> int:
    settings = Settings.from_env(args.settings)
    app = create_app(settings, site_dir=args.site, agents=args.agents.split(","))
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True)
    level = logging.getLevelName(args.loglevel.upper())

    @app.task
    async def _tune_process() -> None:
        # The worker's log setup leaves library loggers at DEBUG behind a WARNING
        # handler: every aiokafka debug call then builds a record for nothing.
        for name in ("", "aiokafka", "faust", "mode"):
            logging.getLogger(name).setLevel(level)
        tune_gc()

    worker.execute_from_commandline()
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="start a Faust worker (one member of the consumer group)")
    p.add_argument("--settings", help="settings file (YAML)")
    p.add_argument("--site", help="site folder (default: setting `site`)")
    p.add_argument(
        "--agents",
        default="decode,tracks,feed,area",
        help="comma-separated agents to run (default: all)",
    )
    p.add_argument("--loglevel", default="warning", help="worker log level")
    p.set_defaults(func=_cmd_worker)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the worker gets SIGTERM when the process that started it dies."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start_worker_process(
    bootstrap: str,
    run_dir: Path,
    *,
    agents: str = "decode,tracks,feed,area",
    site: Path | None = None,
    app_id_prefix: str = "run",
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start ``shorewatch worker`` as a child process with a fresh consumer group that
    starts at the end of its topics; its log is ``run_dir/worker.log``.

    The child dies with its parent (``PR_SET_PDEATHSIG``), so a demo or benchmark that
    is killed leaves no worker behind.
    """
    import os
    import sys
    import uuid

    run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "SHOREWATCH_APP_ID": f"{app_id_prefix}-{uuid.uuid4().hex[:8]}",
            "SHOREWATCH_WORKER_PORT": "0",
            "SHOREWATCH_AUTO_OFFSET_RESET": "latest",
            "SHOREWATCH_DATA_DIR": str(run_dir / "worker"),
            **(extra_env or {}),
        }
    )
    cmd = [sys.executable, "-m", "pipeline.cli", "worker", "--agents", agents]
    if site is not None:
        cmd += ["--site", str(site)]
    with open(run_dir / "worker.log", "wb") as log:
        return subprocess.Popen(
            cmd,
            cwd=Path(__file__).resolve().parents[1],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )


def stop_worker_process(proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
