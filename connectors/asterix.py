"""ASTERIX radar sources: CAT 010 datagrams over UDP or from a file, into a radar sink.

Each datagram is decoded on its own (:func:`pipeline.engine.asterix.decode_asterix`) and
its targets and dead letters go through the NMEA path's
:class:`connectors.radar.RadarSink` (same topics, keys and counters). The radar of a
report is its SAC/SIC (``sac``/``sic`` in ``radars.yaml``), not the sender's address.

- UDP: :func:`asterix_udp_listener` on ``--bind`` (127.0.0.1 by default); each sender is
  its own source, ``asterix-udp:<port>:<address>``.
- File: :func:`replay_asterix_file` reads length-framed datagrams, each a 4-byte
  big-endian length and that many bytes (:func:`frame_datagram` writes one); a file cut
  short mid-datagram dead-letters the rest as ``bad_asterix``. Source ``asterix-file:<name>``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections.abc import Awaitable, Callable
from typing import Protocol

from connectors.ais import wall_ms
from pipeline.deadletter import Reason, dead_letter
from pipeline.engine.asterix import STAGE, decode_asterix, radars_by_source
from pipeline.radars import RadarConfig
from schemas.records import DeadLetter, RadarTarget

__all__ = [
    "AsterixFeed",
    "asterix_udp_listener",
    "frame_datagram",
    "replay_asterix_file",
    "run_asterix_sources",
]

log = logging.getLogger(__name__)

_LEN = struct.Struct(">I")


def frame_datagram(datagram: bytes) -> bytes:
    """One datagram as it is stored in an ``--asterix-file``: length, then the bytes."""
    return _LEN.pack(len(datagram)) + datagram


class RadarSink(Protocol):
    """What :class:`connectors.radar.RadarSink` offers a feed."""

    targets: int
    publish: Callable[[RadarTarget], Awaitable[None]]

    async def dead_letter(self, dead: DeadLetter, /) -> None: ...


class AsterixFeed:
    """Decodes datagrams and hands the results to a :class:`~connectors.radar.RadarSink`.

    :param radars: the site's radars by id
    :param sink: publishes targets and dead letters and counts them
    """

    def __init__(self, radars: dict[str, RadarConfig], sink: RadarSink):
        self.by_source = radars_by_source(radars)
        self.sink = sink
        self.datagrams = 0
        self.service_messages = 0

    async def datagram(self, data: bytes, rx_t_ms: int, source: str) -> None:
        res = decode_asterix(data, rx_t_ms, source, self.by_source)
        self.datagrams += 1
        self.service_messages += res.service_messages
        for t in res.targets:
            await self.sink.publish(t)
        self.sink.targets += len(res.targets)
        for d in res.dead:
            await self.sink.dead_letter(d)


async def asterix_udp_listener(
    host: str, port: int, feed: AsterixFeed, *, started: asyncio.Future | None = None
) -> None:
    """Receive ASTERIX datagrams until cancelled; ``started`` receives the bound port."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[bytes, str, int]] = asyncio.Queue(maxsize=100_000)
    dropped = 0

    class _Protocol(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple) -> None:
            nonlocal dropped
            try:
                queue.put_nowait((data, addr[0], wall_ms()))
            except asyncio.QueueFull:
                dropped += 1
                if dropped % 1000 == 1:
                    log.error("asterix-udp:%d: queue full, %d datagrams dropped", bound, dropped)

    transport, _ = await loop.create_datagram_endpoint(_Protocol, local_addr=(host, port))
    bound = transport.get_extra_info("sockname")[1]
    if started is not None and not started.done():
        started.set_result(bound)
    try:
        while True:
            data, addr, rx = await queue.get()
            await feed.datagram(data, rx, f"asterix-udp:{bound}:{addr}")
    finally:
        transport.close()


async def replay_asterix_file(path: str, feed: AsterixFeed) -> None:
    """Decode every length-framed datagram of a file (receive time: when it is read)."""
    source = f"asterix-file:{os.path.basename(path)}"
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        head = data[pos : pos + _LEN.size]
        n = _LEN.unpack(head)[0] if len(head) == _LEN.size else -1
        if n < 0 or pos + _LEN.size + n > len(data):
            rest = data[pos:]
            await feed.sink.dead_letter(
                dead_letter(
                    Reason.BAD_ASTERIX,
                    source=source,
                    stage=STAGE,
                    detail=f"file cut short: {len(rest)} byte(s) left at offset {pos}",
                    raw=rest,
                    rx_t_ms=wall_ms(),
                )
            )
            return
        pos += _LEN.size
        await feed.datagram(data[pos : pos + n], wall_ms(), source)
        pos += n
        await asyncio.sleep(0)


async def run_asterix_sources(
    bind: str, ports: list[int], files: list[str], feed: AsterixFeed
) -> None:
    """The files to their end, then the UDP listeners until cancelled."""
    listeners = [asyncio.create_task(asterix_udp_listener(bind, p, feed)) for p in ports]
    try:
        for path in files:
            await replay_asterix_file(path, feed)
        if listeners:
            await asyncio.gather(*listeners)
    finally:
        for t in listeners:
            t.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
