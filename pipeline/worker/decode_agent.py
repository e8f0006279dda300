"""The decode agent: raw AIS micro-batches to positions, statics, fixes and dead letters."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import faust
import msgspec
import numpy as np

from pipeline import topics
from pipeline.deadletter import Reason, dead_letter
from pipeline.engine.columns import PositionColumns
from pipeline.engine.decode import pack_fixes
from pipeline.worker.batching import (
    FIX_BATCH_MAX,
    FIX_STATICS_MAX,
    RAW_TAKE_MAX,
    RAW_TAKE_WITHIN_S,
    BatchSender,
    Metrics,
    json_encoder,
    raw_topic,
    wall_ms,
)
from schemas import records

log = logging.getLogger(__name__)


def _register_decode(app: faust.App) -> None:
    from pipeline.core.nmea import Deduplicator, Framed, Reassembler
    from pipeline.engine.decode import decode_framed, frame_batch

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
        dead = dead_letter(
            Reason.DECODE_FAILED,
            source=batch.source,
            stage=batch.source,
            detail=repr(exc),
            raw=value,
            rx_t_ms=wall_ms(),
        )
        sender.add(topics.DEADLETTER, batch.source.encode(), json_encoder.encode(dead))

    pos_topic, sta_topic = topics.AIS_POSITION.name, topics.AIS_STATIC.name
    n_pos_parts, n_sta_parts = topics.AIS_POSITION.partitions, topics.AIS_STATIC.partitions
    encode = json_encoder.encode
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
                    dead = dead_letter(
                        Reason.UNDECODABLE_RECORD,
                        source="ais.raw",
                        stage="ais.raw",
                        detail=str(exc),
                        raw=value,
                        rx_t_ms=wall_ms(),
                    )
                    sender.add(topics.DEADLETTER, b"ais.raw", json_encoder.encode(dead))
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
                    sender.add(topics.DEADLETTER, d.source.encode(), json_encoder.encode(d))
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
            body = json_encoder.encode(pack_fixes(chunk, chunk_sts))
            yield part, (str(first).encode(), body)
