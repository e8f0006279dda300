"""Radar sources: NMEA 0183 ``TTM``/``TLL`` over TCP, UDP or a file, to ``shorewatch.radar.target.v1``.

The sockets, reconnection, line splitting and micro-batching are the AIS connector's
(:mod:`connectors.ais`: TCP client, TCP server, UDP listener, file replay); only the sink
differs. :class:`RadarSink` takes each micro-batch of one source, finds the source's radar
in the site's ``radars.yaml`` (:mod:`pipeline.radars`), decodes the lines
(:func:`pipeline.engine.radar.decode_radar_lines`) and publishes the targets keyed by
radar id, so one radar's reports stay in order on one partition, and every rejected line
to ``shorewatch.deadletter.v1`` with its reason.

A source belongs to a radar when the command names it (``--udp hk-radar-01=4002``) or,
for listeners, when the sender's address is among a radar's ``addresses``; otherwise its
lines are dead-lettered as ``unknown_radar``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable

import msgspec

from connectors.ais import run_sources
from connectors.asterix import AsterixFeed, run_asterix_sources
from pipeline import metrics
from pipeline.engine.radar import decode_radar_lines
from pipeline.radars import RadarConfig, load_radars
from pipeline.topics import DEADLETTER, RADAR_TARGET
from schemas.records import DeadLetter, RadarTarget, RawAisBatch

__all__ = ["RadarRouter", "RadarSink", "ingest", "parse_sources", "run_all", "run_ingest"]

log = logging.getLogger(__name__)

Publish = Callable[[RadarTarget], Awaitable[None]]
PublishDead = Callable[[DeadLetter], Awaitable[None]]


class RadarRouter:
    """Which radar a source id belongs to.

    :param radars: the site's radars by id
    :param named: source-id prefix -> radar id, from the command line (``udp:4002:`` for
        every sender on UDP port 4002, ``tcp:host:port`` for a client, ``file:name``)
    """

    def __init__(self, radars: dict[str, RadarConfig], named: dict[str, str] | None = None):
        self.radars = radars
        self.named = dict(named or {})
        self.by_address = {a: r for r in radars.values() for a in r.addresses}

    def radar_of(self, source: str) -> RadarConfig | None:
        for prefix, rid in self.named.items():
            if source == prefix or (prefix.endswith(":") and source.startswith(prefix)):
                return self.radars.get(rid)
        kind, _, rest = source.partition(":")
        if kind in ("udp", "tcp-in"):
            return self.by_address.get(rest.rpartition(":")[2])
        if kind == "tcp":
            return self.by_address.get(rest.rpartition(":")[0])
        return None


class RadarSink:
    """A sink for :mod:`connectors.ais` sources that decodes radar lines and publishes them.

    :param router: maps a batch's source to its radar
    :param publish: called with each target record
    :param publish_dead: called with each dead letter
    """

    def __init__(self, router: RadarRouter, publish: Publish, publish_dead: PublishDead):
        self.router = router
        self.publish = publish
        self.publish_dead = publish_dead
        self.targets = 0
        self.dead_letters: dict[str, int] = {}

    async def __call__(self, batch: RawAisBatch) -> None:
        radar = self.router.radar_of(batch.source)
        targets, dead = decode_radar_lines(batch.lines, batch.rx_t_ms, batch.source, radar)
        for t in targets:
            await self.publish(t)
        self.targets += len(targets)
        for d in dead:
            await self.dead_letter(d)

    async def dead_letter(self, dead: DeadLetter) -> None:
        """Publish a rejected line (also the connector's over-long lines)."""
        self.dead_letters[dead.reason] = self.dead_letters.get(dead.reason, 0) + 1
        log.info("%s: %s: %s (dead-lettered)", dead.source, dead.reason, dead.detail)
        await self.publish_dead(dead)

    def summary(self) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.dead_letters.items()))
        n = sum(self.dead_letters.values())
        return f"{self.targets} target report(s) published; {n} line(s) dead-lettered" + (
            f" ({reasons})" if reasons else ""
        )


def _split(text: str) -> tuple[str | None, str]:
    """``RADAR=VALUE`` -> ``(RADAR, VALUE)``; ``VALUE`` -> ``(None, VALUE)``."""
    rid, eq, value = text.partition("=")
    return (rid, value) if eq else (None, text)


def parse_sources(
    args: argparse.Namespace, radars: dict[str, RadarConfig]
) -> tuple[argparse.Namespace, dict[str, str]]:
    """The AIS-style source arguments without their ``RADAR=`` prefixes, and the
    source-id prefixes they name.

    :raises ValueError: a ``RADAR=`` prefix names no radar of the site
    """
    named: dict[str, str] = {}
    plain = argparse.Namespace(**vars(args))
    plain.tcp, plain.listen_tcp, plain.udp, plain.file = [], [], [], []
    for attr, prefix in (
        ("tcp", "tcp:{v}"),
        ("listen_tcp", "tcp-in:{v}:"),
        ("udp", "udp:{v}:"),
        ("file", "file:{v}"),
    ):
        for text in getattr(args, attr):
            rid, value = _split(str(text))
            if rid is not None and rid not in radars:
                raise ValueError(
                    f"--{attr.replace('_', '-')} {text}: no radar {rid!r} in radars.yaml"
                )
            if attr in ("listen_tcp", "udp"):
                getattr(plain, attr).append(int(value))
            else:
                getattr(plain, attr).append(value)
            if rid is not None:
                v = os.path.basename(value) if attr == "file" else value
                named[prefix.format(v=v)] = rid
    return plain, named


async def run_all(sources: argparse.Namespace, sink: RadarSink, router: RadarRouter) -> None:
    """The NMEA sources (:func:`connectors.ais.run_sources`) and the ASTERIX ones
    (``asterix_udp`` ports, ``asterix_file`` paths; :mod:`connectors.asterix`) together."""
    ports = list(getattr(sources, "asterix_udp", []) or [])
    files = list(getattr(sources, "asterix_file", []) or [])
    if not (ports or files):
        await run_sources(sources, sink)
        return
    feed = AsterixFeed(router.radars, sink)
    await asyncio.gather(
        run_sources(sources, sink), run_asterix_sources(sources.bind, ports, files, feed)
    )


async def ingest(
    sources: argparse.Namespace, router: RadarRouter, bootstrap: str | None = None
) -> int:
    """Run the sources named in ``sources`` (plain AIS-style arguments, see
    :func:`parse_sources`) into Kafka until they end or the task is cancelled; what is
    buffered is published (at most 60 s) before it returns.

    :returns: 1 when records were dropped or left undelivered, else 0
    """
    from connectors.kafka import BufferedPublisher, RecordProducer

    producer = RecordProducer(bootstrap, client_id="shorewatch-ingest-radar")
    await producer.start()
    live = bool(
        sources.tcp or sources.listen_tcp or sources.udp or getattr(sources, "asterix_udp", [])
    )
    publisher = BufferedPublisher(producer, block_when_full=not live)
    publisher.start()

    async def publish(t: RadarTarget) -> None:
        await publisher.put(RADAR_TARGET, t.radar_id, t)

    async def publish_dead(d: DeadLetter) -> None:
        await publisher.put(DEADLETTER, d.source, d)

    sink = RadarSink(router, publish, publish_dead)

    def ready() -> tuple[bool, str]:
        ok = publisher.health.reachable
        return ok, sink.summary() if ok else "the broker is unreachable (buffering)"

    try:
        async with metrics.serve_from_env("ingest-radar", ready):
            await run_all(sources, sink, router)
    finally:
        await asyncio.shield(publisher.close())
        await producer.stop()
        log.warning("radar ingest: %s", sink.summary())
    return 1 if publisher.dropped or publisher.undelivered else 0


def run_ingest(args: argparse.Namespace) -> int:
    """``shorewatch ingest radar``: radar sources -> Kafka (or ``--stdout``)."""
    asterix = getattr(args, "asterix_udp", []) or getattr(args, "asterix_file", [])
    if not (args.tcp or args.listen_tcp or args.udp or args.file or asterix):
        print(
            "shorewatch ingest radar: name at least one source (--tcp, --listen-tcp, --udp,"
            " --file, --asterix-udp, --asterix-file)",
            file=sys.stderr,
        )
        return 2
    radars = load_radars(args.site)
    if not radars:
        print(f"shorewatch ingest radar: {args.site} has no radars.yaml", file=sys.stderr)
        return 2
    try:
        plain, named = parse_sources(args, radars)
    except ValueError as exc:
        print(f"shorewatch ingest radar: {exc}", file=sys.stderr)
        return 2
    plain.prefix, plain.prefix_tz = "auto", "UTC"
    router = RadarRouter(radars, named)
    enc = msgspec.json.Encoder()

    async def main() -> int:
        if args.stdout:

            async def out(record: msgspec.Struct) -> None:
                sys.stdout.buffer.write(enc.encode(record) + b"\n")
                sys.stdout.buffer.flush()

            sink = RadarSink(router, out, out)
            await run_all(plain, sink, router)
            print(sink.summary(), file=sys.stderr)
            return 0
        return await ingest(plain, router)

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 130
