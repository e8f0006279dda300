"""Sentinel vessels: known position reports sent through the pipeline, and a reader that waits for their track updates."""

from __future__ import annotations

import time

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline import topics
from pipeline.tools.sim_nmea import nmea_checksum
from pipeline.topics import partition_of
from schemas import records


def sentinel(mmsi: int, t_ms: int, lon: float = 110.3, lat: float = 20.05) -> str:
    """A tagged type 1 sentence of ``mmsi`` at ``t_ms``, used as a probe through the pipeline."""
    from pyais.encode import encode_dict

    (sentence,) = encode_dict(
        {"type": 1, "mmsi": mmsi, "lon": lon, "lat": lat, "speed": 1.0, "course": 90.0},
        talker_id="AI",
    )
    return _tag(t_ms) + sentence


def sentinel_mmsis(n_partitions: int, first: int = 211_999_000) -> list[int]:
    """One test MMSI per partition of the track topic, the first ones above ``first``."""
    found: dict[int, int] = {}
    m = first
    while len(found) < n_partitions:
        m += 1
        found.setdefault(partition_of(str(m).encode(), n_partitions), m)
    return [found[p] for p in range(n_partitions)]


class TrackReader:
    def __init__(self, bootstrap: str):
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=5
        )
        self.dec = msgspec.json.Decoder(records.Track)

    async def start(self) -> None:
        await self.consumer.start()
        parts = [TopicPartition(topics.TRACK.name, p) for p in range(topics.TRACK.partitions)]
        self.consumer.assign(parts)
        await self.consumer.seek_to_end(*parts)
        for tp in parts:
            await self.consumer.position(tp)

    async def stop(self) -> None:
        await self.consumer.stop()

    async def until(self, mmsis: set[int], timeout_s: float, on_track=None) -> bool:
        """Read until every MMSI in ``mmsis`` has had an update (or time runs out)."""
        waiting = set(mmsis)
        keys = {str(m).encode() for m in mmsis}
        deadline = time.monotonic() + timeout_s
        while waiting and time.monotonic() < deadline:
            batch = await self.consumer.getmany(timeout_ms=200, max_records=5000)
            now_ms = time.time() * 1000
            for msgs in batch.values():
                for m in msgs:
                    if on_track is None and m.key not in keys:
                        continue  # the key is the MMSI: no need to decode the rest
                    tr = self.dec.decode(m.value)
                    waiting.discard(tr.mmsi)
                    if on_track is not None:
                        on_track(tr, now_ms)
        return not waiting


def _tag(t_ms: int) -> str:
    body = f"c:{t_ms}"
    return f"\\{body}*{nmea_checksum(body)}\\"
