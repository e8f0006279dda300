"""AIS decoding adapter: raw line batches in, position/static records and dead letters out.

:func:`decode_batch` is the one code path from a :class:`~schemas.records.RawAisBatch`
to records. The Kafka decode agent, offline replay and ``shorewatch decode`` all
call it, so they agree by construction.

Stages: :func:`pipeline.core.nmea.frame_lines` (checksums, tag blocks, ``$PGHP``,
reassembly, de-duplication) → :func:`pipeline.core.aisdecode.decode_positions` for
the position reports (vectorised) → pyais for every other message type (and for
the rare position report too short for the fixed layout).

Commands: ``shorewatch decode FILE|-``, ``shorewatch bench ais``, ``shorewatch ingest ais``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pyais.bit_vector import int_bit_vector
from pyais.messages import MSG_CLASS

from pipeline.core.aisdecode import LAYOUTS, Positions, decode_positions, message_types
from pipeline.core.arrays import none_if_nan
from pipeline.core.nmea import (
    SKIP_REASONS,
    Deduplicator,
    Framed,
    Reassembler,
    Reject,
    frame_lines,
)
from pipeline.deadletter import dead_letter
from pipeline.engine.columns import PositionColumns
from schemas.records import AisPosition, AisStatic, DeadLetter, FixColumns, RawAisBatch

__all__ = [
    "STATIC_TYPES",
    "DecodedBatch",
    "decode_batch",
    "decode_framed",
    "frame_batch",
    "finish",
    "merge_counters",
    "pack_fixes",
    "unpack_fixes",
]

STATIC_TYPES = (5, 19, 24)
KNOWN_TYPES = frozenset(t for t in MSG_CLASS if t >= 1)
STAGE_FRAME = "ais.frame"
STAGE_DECODE = "ais.decode"


@dataclass(slots=True)
class DecodedBatch:
    """What one raw batch became.

    :param positions: position reports, types 1, 2, 3, 18, 19, 27
    :param statics: static and voyage data, types 5, 19, 24
    :param others: every other decoded message as a pyais-style dict (with ``t_ms``, ``source``)
    :param messages: with ``with_messages=True``, every decoded message as a pyais-style
        dict, in input order (what ``shorewatch decode`` prints); else empty
    :param dead_letters: rejected input with raw bytes and reason
    :param skipped: lines deliberately not used (``not_ais``, ``duplicate``), counted only
    :param counters: ``{source: {counter: n}}`` for this batch, see :func:`decode_batch`
    :param position_columns: with ``with_columns=True``, ``positions`` as columns
    """

    positions: list[AisPosition] = field(default_factory=list)
    statics: list[AisStatic] = field(default_factory=list)
    others: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    skipped: list[Reject] = field(default_factory=list)
    counters: dict[str, dict[str, int]] = field(default_factory=dict)
    position_columns: PositionColumns | None = None


#: one position report in the ``positions`` bytes of :class:`~schemas.records.FixColumns`
#: (packed, little-endian; 63 bytes)
FIX_ROW = np.dtype(
    [
        ("mmsi", "<i8"),
        ("t_ms", "<i8"),
        ("rx_t_ms", "<i8"),
        ("lon", "<f8"),
        ("lat", "<f8"),
        ("sog_kn", "<f8"),
        ("cog_deg", "<f8"),
        ("heading_deg", "<i2"),
        ("msg_type", "u1"),
        ("nav_status", "i1"),
        ("accuracy", "u1"),
        ("source_idx", "<u2"),
    ]
)


def pack_fixes(cols: PositionColumns, statics: list[AisStatic]) -> FixColumns:
    """The ``ais.fixes`` record of position reports (as columns) and static reports."""
    rows = np.empty(len(cols), FIX_ROW)
    for name in FIX_ROW.names or ():
        rows[name] = getattr(cols, name)
    return FixColumns(n=len(cols), positions=rows.tobytes(), sources=cols.sources, statics=statics)


def unpack_fixes(rec: FixColumns) -> PositionColumns:
    """The position reports of an ``ais.fixes`` record as columns.

    :raises ValueError: when the record is inconsistent (size, source index)
    """
    if rec.n < 0 or len(rec.positions) != rec.n * FIX_ROW.itemsize:
        raise ValueError(
            f"{len(rec.positions)} bytes of positions for n={rec.n} rows of {FIX_ROW.itemsize}"
        )
    rows = np.frombuffer(rec.positions, FIX_ROW)
    src = rows["source_idx"].astype(np.int64)
    if src.size and int(src.max()) >= len(rec.sources):
        raise ValueError(f"source index {int(src.max())} but {len(rec.sources)} sources")
    cols = {n: rows[n].astype(d) for n, d in PositionColumns.DTYPES.items() if n != "source_idx"}
    return PositionColumns(**cols, source_idx=src, sources=list(rec.sources))


def merge_counters(total: dict[str, dict[str, int]], batch: dict[str, dict[str, int]]) -> None:
    """Add the per-source counters of ``batch`` into ``total`` (in place)."""
    for source, counts in batch.items():
        dst = total.setdefault(source, {})
        for k, v in counts.items():
            dst[k] = dst.get(k, 0) + v


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.hex() if isinstance(v, bytes) else v) for k, v in d.items()}


def _text(v: Any) -> str | None:
    if not isinstance(v, str):
        return None
    v = v.replace("@", " ").strip()
    return v or None


def _positive(v: Any) -> Any:
    return v if v else None


def _static_from(d: dict[str, Any], t_ms: int, source: str) -> AisStatic | None:
    """An :class:`AisStatic` from a pyais dict of type 5, 19 or 24 (``None`` when it has no MMSI)."""
    if d.get("mmsi") is None:
        return None
    t = d["msg_type"]
    rec = AisStatic(
        mmsi=int(d["mmsi"]),
        msg_type=t,
        t_ms=t_ms,
        source=source,
        name=_text(d.get("shipname")),
        call_sign=_text(d.get("callsign")),
    )
    if t == 5:
        rec.imo = _positive(d.get("imo"))
        rec.destination = _text(d.get("destination"))
        rec.draught_m = _positive(d.get("draught"))
    if t in (5, 19) or (t == 24 and d.get("partno") == 1):
        rec.ship_type = _positive(d.get("ship_type"))
        if d.get("mothership_mmsi") is None:
            rec.to_bow_m = _positive(d.get("to_bow"))
            rec.to_stern_m = _positive(d.get("to_stern"))
            rec.to_port_m = _positive(d.get("to_port"))
            rec.to_starboard_m = _positive(d.get("to_starboard"))
    return rec


def _position_from_dict(d: dict[str, Any], t_ms: int, rx_t_ms: int, source: str) -> AisPosition:
    """An :class:`AisPosition` from a pyais dict (the scalar path for short reports)."""
    t = d["msg_type"]
    lat, lon, speed, course, heading = (
        d.get(k) for k in ("lat", "lon", "speed", "course", "heading")
    )
    return AisPosition(
        mmsi=int(d["mmsi"]),
        msg_type=t,
        t_ms=t_ms,
        lon=lon if lon is not None and abs(lon) <= 180 else None,
        lat=lat if lat is not None and abs(lat) <= 90 else None,
        sog_kn=speed if speed is not None and speed < (63 if t == 27 else 102.3) else None,
        cog_deg=course if course is not None and course < 360 else None,
        heading_deg=heading if heading is not None and heading < 360 else None,
        nav_status=d.get("status") if t in (1, 2, 3, 27) else None,
        accuracy=bool(d.get("accuracy")),
        source=source,
        rx_t_ms=rx_t_ms,
    )


def decode_batch(
    batch: RawAisBatch,
    reassembler: Reassembler,
    dedup: Deduplicator | None = None,
    *,
    with_messages: bool = False,
) -> DecodedBatch:
    """Decode one raw batch: the single code path of the decode agent, replay and ``decode``.

    Counters (per source): ``received`` (lines), ``sentences``, ``messages``
    (complete after reassembly), ``decoded``, ``positions``, ``statics``, ``others``,
    ``duplicates``, ``reassembly_timeouts``, ``not_ais``, ``tag_checksum_bad``,
    ``rejected`` (total) and ``rejected.<reason>`` per reason.

    :param batch: raw lines of one source with their receive times (ms)
    :param reassembler: fragment and ``$PGHP`` state of the caller, updated in place
    :param dedup: cross-receiver de-duplication state, or ``None`` to keep duplicates
    :param with_messages: also return every decoded message as a pyais-style dict
    """
    fr = frame_batch(batch, reassembler, dedup)
    return decode_framed([(batch, fr)], with_messages=with_messages)[0]


def frame_batch(
    batch: RawAisBatch, reassembler: Reassembler, dedup: Deduplicator | None = None
) -> Framed:
    """The first, stateful half of :func:`decode_batch`: frame one raw batch
    (:func:`pipeline.core.nmea.frame_lines`); :func:`decode_framed` is the other half."""
    return frame_lines(
        batch.lines,
        batch.rx_t_ms,
        batch.source,
        reassembler,
        dedup,
        prefix=batch.prefix,
        prefix_tz=batch.prefix_tz,
    )


def decode_framed(
    framed: Sequence[tuple[RawAisBatch, Framed]],
    *,
    with_messages: bool = False,
    with_columns: bool = False,
) -> list[DecodedBatch]:
    """The records of raw batches already framed (:func:`pipeline.core.nmea.frame_lines`, in
    arrival order), one :class:`DecodedBatch` per batch, exactly as :func:`decode_batch`
    gives them; the position reports of all batches are decoded in one vectorised call.
    With ``with_columns``, each batch's positions also come as columns (``position_columns``).

    No state: calling it again on the same input gives the same output.
    """
    if not framed:
        return []
    frs = [fr for _, fr in framed]
    offs = np.cumsum([0, *(len(fr) for fr in frs)]).tolist()
    payload_all = [p for fr in frs for p in fr.payload]
    fill_all = np.concatenate([fr.fill_bits for fr in frs])
    t_all = np.concatenate([fr.t_ms for fr in frs])
    rx_all = np.concatenate([fr.rx_t_ms for fr in frs])
    mt_all = message_types(payload_all)
    pos = decode_positions(payload_all, fill_all)
    # record fields of every position report: arrays (as PositionColumns holds them, in
    # its order), and Python columns (NaN and -1 become None when the records are made)
    fields = {
        "mmsi": pos.mmsi,
        "msg_type": pos.msg_type,
        "t_ms": t_all[pos.index],
        "lon": pos.lon_deg,
        "lat": pos.lat_deg,
        "sog_kn": pos.sog_kn,
        "cog_deg": pos.cog_deg,
        "heading_deg": np.where((pos.heading >= 0) & (pos.heading < 360), pos.heading, -1),
        "nav_status": np.where(np.isin(pos.msg_type, (1, 2, 3, 27)), pos.status, -1),
        "accuracy": pos.accuracy,
        "rx_t_ms": rx_all[pos.index],
    }
    arrays = {n: np.asarray(a, PositionColumns.DTYPES[n]) for n, a in fields.items()}
    cols = tuple(
        none_if_nan(a) if a.dtype == np.float64 else a.tolist() for a in arrays.values()
    )  # lon, lat, SOG, COG: NaN -> None
    bounds = np.searchsorted(pos.index, offs).tolist()
    short_bounds = np.searchsorted(pos.short, offs).tolist()
    outs = [
        _records(
            batch,
            fr,
            mt_all[offs[b] : offs[b + 1]],
            pos,
            (pos.index[bounds[b] : bounds[b + 1]] - offs[b]).tolist(),
            bounds[b],
            [c[bounds[b] : bounds[b + 1]] for c in cols],
            set((pos.short[short_bounds[b] : short_bounds[b + 1]] - offs[b]).tolist()),
            with_messages,
        )
        for b, (batch, fr) in enumerate(framed)
    ]
    if with_columns:
        for b, out in enumerate(outs):
            lo, hi = bounds[b], bounds[b + 1]
            part: dict[str, Any] = {name: a[lo:hi] for name, a in arrays.items()}
            pc = PositionColumns(
                **part, source_idx=np.zeros(hi - lo, np.int64), sources=[framed[b][0].source]
            )
            if len(out.positions) > hi - lo:  # position reports pyais decoded (too short)
                pc = PositionColumns.concat(
                    [pc, PositionColumns.from_records(out.positions[hi - lo :])]
                )
            out.position_columns = pc
    return outs


def _records(
    batch: RawAisBatch,
    fr: Framed,
    mt_arr: np.ndarray,
    pos: Positions,
    idx: list[int],
    first: int,
    cols: list[list[Any]],
    short: set[int],
    with_messages: bool,
) -> DecodedBatch:
    """One batch's part of :func:`decode_framed`.

    :param mt_arr: message type of each of the batch's messages
    :param pos: the position reports of all batches
    :param idx: message index (in this batch) of each of its position reports
    :param first: entry in ``pos`` of its first position report
    :param cols: its position reports' record fields (see :func:`decode_framed`)
    :param short: its position reports too short for the vectorised decoder
    """
    source = batch.source
    out = DecodedBatch()
    counts = _framing_counts(batch, fr)
    _rejects(fr.rejects, source, out, counts)

    n = len(fr)
    t_list = fr.t_ms.tolist()
    rx_list = fr.rx_t_ms.tolist()
    mtypes = mt_arr.tolist()
    slots: list[dict[str, Any] | None] = [None] * n if with_messages else []

    # ---- vectorised position reports -> records ---------------------------------
    if idx:
        out.positions = _position_records(cols, source)
        if with_messages:
            for j, i in enumerate(idx):
                t = mtypes[i]
                if t != 19:  # type 19's static half comes from pyais below
                    d = {name: getattr(pos, name)[first + j].item() for name in LAYOUTS[t]}
                    d["t_ms"], d["source"] = t_list[i], source
                    slots[i] = d
    counts["positions"] = len(out.positions)

    # ---- everything else through pyais ----------------------------------------------
    # the messages left: not decoded above, or type 19 (its static half)
    left = np.ones(n, dtype=bool)
    left[idx] = False
    left |= mt_arr == 19
    for i in np.flatnonzero(left).tolist():
        msg = _decode_with_pyais(fr, i, mtypes[i], out, counts, source, rx_list[i])
        if msg is None:
            continue
        msg["t_ms"], msg["source"] = t_list[i], source
        if with_messages:
            slots[i] = msg
        _file_message(msg, mtypes[i], i in short, out, counts, t_list[i], rx_list[i], source)
    counts["statics"] = len(out.statics)
    counts["others"] = len(out.others)
    counts["decoded"] = (
        counts["positions"] + counts["others"] + sum(1 for s in out.statics if s.msg_type != 19)
    )
    if with_messages:
        out.messages = [d for d in slots if d is not None]
    out.counters = {source: {k: v for k, v in counts.items() if v}}
    return out


def _framing_counts(batch: RawAisBatch, fr: Framed) -> Counter[str]:
    """A batch's counters so far: lines received and the framing's counts (with the
    ``quirk.*`` counters of the line shapes it accepted)."""
    counts: Counter[str] = Counter()
    counts["received"] = len(batch.lines)
    for key in ("sentences", "messages", "tag_checksum_bad", "not_ais", "empty", "comment", "pghp"):
        if fr.counts.get(key):
            counts[key] = fr.counts[key]
    counts.update({k: v for k, v in fr.counts.items() if k.startswith("quirk.") and v})
    return counts


def _position_records(cols: list[list[Any]], source: str) -> list[AisPosition]:
    """Position records from the vectorised decoder's columns (see :func:`decode_framed`)."""
    return [
        AisPosition(
            mmsi=m,
            msg_type=mt,
            t_ms=t,
            lon=lo,
            lat=la,
            sog_kn=sg,
            cog_deg=cg,
            heading_deg=None if h < 0 else h,
            nav_status=None if st < 0 else st,
            accuracy=acc,
            source=source,
            rx_t_ms=rx,
        )
        for m, mt, t, lo, la, sg, cg, h, st, acc, rx in zip(*cols, strict=True)
    ]


def _decode_with_pyais(
    fr: Framed,
    i: int,
    t: int,
    out: DecodedBatch,
    counts: Counter[str],
    source: str,
    rx_t_ms: int,
) -> dict[str, Any] | None:
    """Message ``i`` (of type ``t``) of a framed batch decoded by pyais, as a JSON-able
    dict; ``None`` when it was dead-lettered (``unknown_type``, ``decode_error``,
    ``truncated``)."""
    if t not in KNOWN_TYPES:
        _dead(
            out,
            counts,
            source,
            STAGE_DECODE,
            "unknown_type",
            f"message type {t}",
            fr.raw[i],
            rx_t_ms,
        )
        return None
    try:
        msg = MSG_CLASS[t].from_vector(
            int_bit_vector(fr.payload[i].encode("ascii"), int(fr.fill_bits[i]))
        )
        d = _jsonable(msg.asdict(enum_as_int=True))
    except Exception as exc:  # pyais raises many kinds on malformed payloads
        _dead(
            out,
            counts,
            source,
            STAGE_DECODE,
            "decode_error",
            f"{type(exc).__name__}: {exc}",
            fr.raw[i],
            rx_t_ms,
        )
        return None
    if d.get("mmsi") is None:
        _dead(
            out,
            counts,
            source,
            STAGE_DECODE,
            "truncated",
            f"type {t} payload of {len(fr.payload[i]) * 6 - int(fr.fill_bits[i])} bits has no MMSI",
            fr.raw[i],
            rx_t_ms,
        )
        return None
    return d


def _file_message(
    d: dict[str, Any],
    t: int,
    short: bool,
    out: DecodedBatch,
    counts: Counter[str],
    t_ms: int,
    rx_t_ms: int,
    source: str,
) -> None:
    """Add a message pyais decoded to the batch's positions (a position report too short
    for the vectorised decoder), statics or other messages."""
    if short:
        out.positions.append(_position_from_dict(d, t_ms, rx_t_ms, source))
        counts["positions"] += 1
    if t in STATIC_TYPES:
        rec = _static_from(d, t_ms, source)
        if rec is not None:
            out.statics.append(rec)
    elif not short:
        out.others.append(d)


def _rejects(rejects: list[Reject], source: str, out: DecodedBatch, counts: Counter[str]) -> None:
    for r in rejects:
        if r.reason in SKIP_REASONS:
            out.skipped.append(r)
            if r.reason == "duplicate":
                counts["duplicates"] += 1
            continue
        _dead(out, counts, source, STAGE_FRAME, r.reason, r.detail, r.line, r.rx_t_ms)


def _dead(
    out: DecodedBatch,
    counts: Counter[str],
    source: str,
    stage: str,
    reason: str,
    detail: str,
    raw: str,
    rx_t_ms: int,
) -> None:
    out.dead_letters.append(
        dead_letter(reason, source=source, stage=stage, detail=detail, raw=raw, rx_t_ms=rx_t_ms)
    )
    counts["rejected"] += 1
    counts[f"rejected.{reason}"] += 1
    if reason == "fragment_timeout":
        counts["reassembly_timeouts"] += 1


def finish(reassembler: Reassembler, source: str | None = None) -> DecodedBatch:
    """End of input: every incomplete fragment group becomes a ``fragment_timeout`` dead letter.

    :param source: only this source's groups (``None``: all); the dead letter's source is
        the group's source
    """
    out = DecodedBatch()
    for src in reassembler.sources() if source is None else [source]:
        counts: Counter[str] = Counter()
        for r in reassembler.flush(src):
            _dead(out, counts, src, STAGE_FRAME, r.reason, r.detail, r.line, r.rx_t_ms)
        if counts:
            merge_counters(out.counters, {src: dict(counts)})
    return out
