"""An area's state as rows of bounded size: one row per vessel, camera target, alert
episode and other per-key entry, the held input in bounded chunks, and a head with the
rest (the clocks, watermarks and counters).

A busy coast's :class:`~pipeline.engine.state.AreaState` as one record grows with the
traffic and passes Kafka's message limit (1 MB by default) with a few hundred vessels.
As rows, each record is bounded by what one vessel or one chunk holds, whatever the
traffic, and a step rewrites only the rows that changed.

Row keys are ``<area>/<field>/<entry>`` (text, UTF-8): ``<area>/head``, e.g.
``<area>/vessels/219000001``, ``<area>/held_tracks/0``. An entry row's value is the
MessagePack pair ``[key, value]`` (the key keeps its type: MMSIs stay integers), a
chunk's the MessagePack list of its items, the head's an ``AreaState`` with the keyed
fields and the held input left empty. No I/O here: the worker's table and replay's
tests drive these functions.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from pipeline.engine.state import AreaState

__all__ = [
    "CHUNK_MAX_BYTES",
    "KEYED_FIELDS",
    "HELD_FIELDS",
    "area_of_row",
    "diff_rows",
    "head_key",
    "join_rows",
    "row_prefix",
    "split_rows",
]

#: fields of :class:`AreaState` stored one row per entry (they grow with the traffic)
KEYED_FIELDS = (
    "vessels", "targets", "episodes", "unseen", "pairs", "met_t_ms", "aliases", "assoc",
    "identities", "hull_identities",
)  # fmt: skip

#: fields of held input stored in chunks of at most :data:`CHUNK_MAX_BYTES`
HELD_FIELDS = ("held_tracks", "held_frames", "held_radar")

#: the most bytes of items in one chunk row (a single larger item is a chunk of its own)
CHUNK_MAX_BYTES = 256 * 1024

_enc = msgspec.msgpack.Encoder()
_head_dec = msgspec.msgpack.Decoder(AreaState)


def _field_types() -> tuple[dict[str, Any], dict[str, Any]]:
    hints = typing.get_type_hints(AreaState)
    entry = {
        f: msgspec.msgpack.Decoder(tuple.__class_getitem__(typing.get_args(hints[f])))
        for f in KEYED_FIELDS
    }
    held = {f: msgspec.msgpack.Decoder(hints[f]) for f in HELD_FIELDS}
    return entry, held


_entry_dec, _held_dec = _field_types()


def row_prefix(area: str) -> bytes:
    """The prefix of every row key of ``area``."""
    return f"{area}/".encode()


def head_key(area: str) -> bytes:
    """The key of ``area``'s head row."""
    return f"{area}/head".encode()


def area_of_row(key: bytes) -> str:
    """The area a row key belongs to."""
    return key.decode().split("/", 1)[0]


def _chunks(items: list[Any]) -> Iterable[list[msgspec.Raw]]:
    chunk: list[msgspec.Raw] = []
    size = 0
    for x in items:
        raw = msgspec.Raw(_enc.encode(x))
        if chunk and size + len(raw) > CHUNK_MAX_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(raw)
        size += len(raw)
    if chunk:
        yield chunk


def split_rows(area: str, state: AreaState) -> dict[bytes, bytes]:
    """The rows of ``state`` (see the module docstring), by row key; none exceeds
    :data:`CHUNK_MAX_BYTES` plus one item, however many entries the state holds."""
    rows: dict[bytes, bytes] = {}
    for f in KEYED_FIELDS:
        for k, v in getattr(state, f).items():
            rows[f"{area}/{f}/{k}".encode()] = _enc.encode((k, v))
    for f in HELD_FIELDS:
        for i, chunk in enumerate(_chunks(getattr(state, f))):
            rows[f"{area}/{f}/{i}".encode()] = _enc.encode(chunk)
    empty: dict[str, Any] = {f: {} for f in KEYED_FIELDS} | {f: [] for f in HELD_FIELDS}
    rows[head_key(area)] = _enc.encode(msgspec.structs.replace(state, **empty))
    return rows


def join_rows(area: str, rows: Mapping[bytes, bytes]) -> AreaState | None:
    """Inverse of :func:`split_rows`: ``area``'s state from its rows (rows of other
    areas are ignored); ``None`` without a head row.

    :raises msgspec.DecodeError: on a corrupt row
    """
    head = rows.get(head_key(area))
    if head is None:
        return None
    st = _head_dec.decode(head)
    prefix = row_prefix(area)
    held: dict[str, list[tuple[int, bytes]]] = {f: [] for f in HELD_FIELDS}
    for key, raw in rows.items():
        if not key.startswith(prefix) or raw is None:
            continue
        parts = key.decode().split("/", 2)
        if len(parts) != 3:
            continue
        f = parts[1]
        if f in _entry_dec:
            k, v = _entry_dec[f].decode(raw)
            getattr(st, f)[k] = v
        elif f in held:
            held[f].append((int(parts[2]), raw))
    for f, chunks in held.items():
        items: list[Any] = []
        for _, raw in sorted(chunks):
            items += _held_dec[f].decode(raw)
        setattr(st, f, items)
    return st


def diff_rows(
    written: Mapping[bytes, bytes], rows: Mapping[bytes, bytes]
) -> tuple[dict[bytes, bytes], list[bytes]]:
    """What to write to go from the rows ``written`` to ``rows``: the rows that are new
    or changed, and the keys to delete (tombstones), the head last among the changes so
    that a reader that sees the head has seen the rows written before it."""
    changed = {k: v for k, v in rows.items() if written.get(k) != v}
    deleted = [k for k in written if k not in rows]
    heads = [k for k in changed if k.endswith(b"/head")]
    for k in heads:  # dicts keep insertion order: move the head to the end
        changed[k] = changed.pop(k)
    return changed, deleted
