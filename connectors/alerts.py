"""Alert delivery: ``shorewatch alerts tail`` for operators, a webhook sink for services.

The tail prints one readable line per alert event (``--json``: the CloudEvent as
published). The webhook sink POSTs each alert CloudEvent in structured mode
(``Content-Type: application/cloudevents+json``) to every configured URL:

- 2xx: delivered;
- 408, 429 and 5xx, timeouts and refused connections: retried with exponential
  backoff and jitter, up to ``--retries`` times;
- any other 4xx, or retries used up: a dead letter (reason ``webhook_rejected`` or
  ``webhook_unreachable``, with the URL and the last answer) on
  ``shorewatch.deadletter.v1``.

Offsets are committed only after every URL has the alert or a dead letter for it,
so a crash re-delivers (at least once; receivers de-duplicate on the CloudEvent
``id``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import msgspec
from aiokafka import AIOKafkaConsumer

from pipeline import topics
from pipeline.deadletter import dead_letter
from pipeline.settings import Settings
from schemas import records

_alert_dec = msgspec.json.Decoder(records.Alert)
_enc = msgspec.json.Encoder()


def format_alert(alert: records.Alert, tz: str = "UTC") -> str:
    """One line an operator reads at a glance.

    >>> # e.g. 2026-03-08 04:03:12 +08  OPEN    unusual_landing   sev 85  MMSI 412000001 ...
    """
    d = alert.data
    when = datetime.fromisoformat(d.event_time.replace("Z", "+00:00")).astimezone(ZoneInfo(tz))
    if d.vessel.mmsi is not None:
        who = f"MMSI {d.vessel.mmsi}" + (f" {d.vessel.name!r}" if d.vessel.name else "")
    else:
        who = f"dark target {d.vessel.track_id}"
    if d.vessel.dark and d.vessel.mmsi is not None:
        who += " (AIS off)"
    where = (
        f"{abs(d.position.lat):.4f}{'N' if d.position.lat >= 0 else 'S'} "
        f"{abs(d.position.lon):.4f}{'E' if d.position.lon >= 0 else 'W'}"
    )
    zone = ""
    if d.zone.coast_distance_m is not None:
        zone += f", {d.zone.coast_distance_m:.0f} m from shore"
    if d.zone.name and d.zone.distance_m is not None:
        zone += f", {d.zone.distance_m / 1000:.1f} km from {d.zone.name}"
    factors = ", ".join(f.name for f in d.factors)
    return (
        f"{when:%Y-%m-%d %H:%M:%S %Z}  {d.status.upper():7} {d.kind:17} sev {d.severity:3d}  "
        f"{who} at {where}{zone}" + (f"  [{factors}]" if factors else "")
    )


async def _consume(
    bootstrap: str,
    group: str | None,
    from_beginning: bool,
    handle: Callable[[records.Alert | None, bytes], Awaitable[None]],
    stop: asyncio.Event,
    idle_exit_s: float | None = None,
) -> int:
    consumer = AIOKafkaConsumer(
        topics.ALERT.name,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        client_id="shorewatch-alerts",
    )
    await consumer.start()
    n = 0
    last = time.monotonic()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            if not batch:
                if idle_exit_s is not None and time.monotonic() - last > idle_exit_s:
                    break
                continue
            last = time.monotonic()
            for msgs in batch.values():
                for m in msgs:
                    try:
                        alert: records.Alert | None = _alert_dec.decode(m.value)
                    except msgspec.DecodeError:
                        alert = None
                    await handle(alert, m.value)
                    n += 1
            if group:
                await consumer.commit()
    finally:
        await consumer.stop()
    return n


def cmd_tail(args: argparse.Namespace) -> int:
    settings = Settings.from_env()

    async def show(alert: records.Alert | None, raw: bytes) -> None:
        if args.json:
            print(raw.decode(errors="replace"), flush=True)
        elif alert is None:
            print(f"(unreadable alert record: {raw[:80]!r})", flush=True)
        else:
            print(format_alert(alert, args.tz), flush=True)

    stop = asyncio.Event()
    asyncio.run(
        _consume(
            settings.broker(), None, args.from_beginning, show, stop, idle_exit_s=args.idle_exit
        )
    )
    return 0


class WebhookSink:
    """POSTs alert CloudEvents to URLs with retries; permanent failures become dead letters.

    :param retries: attempts after the first, per URL
    :param backoff_s: first retry delay, s (doubles each time, with jitter)
    """

    def __init__(
        self,
        urls: list[str],
        dead_letter: Callable[[records.DeadLetter], Awaitable[None]],
        *,
        retries: int = 5,
        backoff_s: float = 0.5,
        timeout_s: float = 10.0,
    ):
        self.urls = urls
        self.dead_letter = dead_letter
        self.retries = retries
        self.backoff_s = backoff_s
        self.client = httpx.AsyncClient(timeout=timeout_s)
        self.delivered = 0
        self.failed = 0

    async def aclose(self) -> None:
        await self.client.aclose()

    async def deliver(self, raw: bytes) -> None:
        for url in self.urls:
            ok, reason, detail = await self._post(url, raw)
            if ok:
                self.delivered += 1
                continue
            self.failed += 1
            await self.dead_letter(
                dead_letter(
                    reason,
                    source=f"webhook:{url}",
                    stage="alert.webhook",
                    detail=detail,
                    raw=raw,
                    rx_t_ms=int(time.time() * 1000),
                )
            )

    async def _post(self, url: str, raw: bytes) -> tuple[bool, str, str]:
        headers = {"Content-Type": "application/cloudevents+json; charset=utf-8"}
        detail = ""
        for attempt in range(self.retries + 1):
            try:
                resp = await self.client.post(url, content=raw, headers=headers)
            except httpx.HTTPError as exc:
                detail = f"{type(exc).__name__}: {exc}"
                retryable, reason = True, "webhook_unreachable"
            else:
                if 200 <= resp.status_code < 300:
                    return True, "", ""
                detail = f"HTTP {resp.status_code}: {resp.text[:200]}"
                retryable = resp.status_code in (408, 429) or resp.status_code >= 500
                reason = "webhook_unreachable" if retryable else "webhook_rejected"
            if not retryable or attempt == self.retries:
                return False, reason, f"{url}: {detail} after {attempt + 1} attempt(s)"
            delay = self.backoff_s * (2**attempt)
            await asyncio.sleep(delay * (0.5 + random.random()))
        return False, "webhook_unreachable", detail


async def run_webhook(
    bootstrap: str,
    urls: list[str],
    group: str,
    *,
    retries: int = 5,
    backoff_s: float = 0.5,
    stop: asyncio.Event | None = None,
    idle_exit_s: float | None = None,
    from_beginning: bool = True,
) -> WebhookSink:
    """Consume the alert topic with consumer group ``group`` and deliver to ``urls``."""
    from connectors.kafka import RecordProducer

    stop = stop or asyncio.Event()
    async with RecordProducer(bootstrap, client_id="shorewatch-webhook") as producer:

        async def dead(d: records.DeadLetter) -> None:
            await producer.send_and_wait(topics.DEADLETTER, d.source, d)

        sink = WebhookSink(urls, dead, retries=retries, backoff_s=backoff_s)
        try:

            async def handle(alert: records.Alert | None, raw: bytes) -> None:
                await sink.deliver(raw)

            await _consume(bootstrap, group, from_beginning, handle, stop, idle_exit_s)
        finally:
            await sink.aclose()
    return sink


def cmd_webhook(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    sink = asyncio.run(
        run_webhook(
            settings.broker(),
            args.url,
            args.group,
            retries=args.retries,
            idle_exit_s=args.idle_exit,
        )
    )
    print(f"delivered {sink.delivered}, dead-lettered {sink.failed}", file=sys.stderr)
    return 0
