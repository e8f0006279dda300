"""Alert delivery: ``shorewatch alerts tail`` for operators, a webhook sink for services.

The tail prints one readable line per alert event (``--json``: the CloudEvent as
published). The webhook sink POSTs each alert CloudEvent in structured mode
(``Content-Type: application/cloudevents+json``) to every configured URL, following
Standard Webhooks:

- headers ``webhook-id`` (one id per message, the same on every retry and after a
  restart, derived from the CloudEvent ``id``: receivers de-duplicate on it),
  ``webhook-timestamp`` (Unix seconds of the attempt) and ``webhook-signature``
  (``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` keyed by the ``whsec_`` secret);
- 2xx: delivered;
- 408, 429 and 5xx, timeouts and refused connections: retried on a schedule that spans
  about a day (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, each ±20 %), waiting at least
  what a ``Retry-After`` answer asks;
- 410 Gone: the receiver ended the subscription; nothing more is sent to that URL
  (a dead letter, reason ``webhook_rejected``, detail ``... subscription ended``, records it);
- any other 4xx, or the schedule used up: a dead letter (reason ``webhook_rejected`` or
  ``webhook_unreachable``, with the URL and the last answer) on ``shorewatch.deadletter.v1``.

URLs are served concurrently; alerts in order. Offsets are committed only after every
URL has the alert or a dead letter for it, so a crash re-delivers (at least once), and
a receiver that is down holds back its consumer group: give each subscription its own
``--group`` (and process) so that one receiver's outage never delays another's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import email.utils
import hashlib
import hmac
import logging
import os
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import msgspec
from aiokafka import AIOKafkaConsumer

from pipeline import metrics, topics
from pipeline.deadletter import dead_letter
from pipeline.errors import ConfigError
from pipeline.settings import Settings
from schemas import records

log = logging.getLogger(__name__)

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


STANDARD_SCHEDULE_S: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
"""Delays before each retry, s: about 27 hours in all (Standard Webhooks' suggestion)."""

_GONE = "subscription ended"

MAX_RETRY_AFTER_S = 24 * 3600.0
"""A ``Retry-After`` longer than this is taken as this, s."""


def sign(secret: str, msg_id: str, timestamp_s: int, body: bytes) -> str:
    """The ``webhook-signature`` value of one message.

    :param secret: ``whsec_`` followed by the base64 key (the prefix is optional)
    :raises ConfigError: a secret that is not base64
    """
    key_b64 = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(key_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"webhook secret is not whsec_<base64>: {exc}") from None
    signed = f"{msg_id}.{timestamp_s}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def message_id(raw: bytes) -> str:
    """The ``webhook-id`` of an alert: stable for the CloudEvent ``id``, else for the bytes."""
    try:
        event_id = msgspec.json.decode(raw, type=_EventId).id
    except msgspec.DecodeError:
        return "msg_" + hashlib.sha256(raw).hexdigest()[:32]
    return "msg_" + uuid.uuid5(uuid.NAMESPACE_URL, f"shorewatch:alert:{event_id}").hex


class _EventId(msgspec.Struct):
    id: str


def retry_after_s(value: str | None, now_s: float) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now_s)


class WebhookSink:
    """POSTs alert CloudEvents to URLs, signed and retried; permanent failures become
    dead letters.

    :param secret: Standard Webhooks secret (``whsec_<base64>``); ``None``: unsigned
    :param schedule_s: delays before each retry, s (default :data:`STANDARD_SCHEDULE_S`)
    :param retries: instead of a schedule: this many retries, the first after ``backoff_s``
        seconds, doubling
    :param sleep: how to wait, s (a test passes one that does not wait hours)
    :param clock: Unix time, s, for ``webhook-timestamp`` and HTTP dates
    """

    def __init__(
        self,
        urls: list[str],
        dead_letter: Callable[[records.DeadLetter], Awaitable[None]],
        *,
        secret: str | None = None,
        schedule_s: Sequence[float] | None = None,
        retries: int | None = None,
        backoff_s: float = 5.0,
        timeout_s: float = 10.0,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ):
        self.urls = list(urls)
        self.dead_letter = dead_letter
        self.secret = secret
        if secret is not None:
            sign(secret, "msg_check", 0, b"")  # fail at start on a malformed secret
        if schedule_s is None:
            schedule_s = (
                STANDARD_SCHEDULE_S
                if retries is None
                else tuple(backoff_s * 2**i for i in range(retries))
            )
        self.schedule_s = tuple(float(d) for d in schedule_s)
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()
        self.client = httpx.AsyncClient(timeout=timeout_s)
        self.delivered = 0
        self.failed = 0
        self.gone: set[str] = set()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def deliver(self, raw: bytes) -> None:
        """Deliver one alert to every URL still subscribed (concurrently)."""
        msg_id = message_id(raw)
        urls = [u for u in self.urls if u not in self.gone]
        results = await asyncio.gather(*(self._post(u, msg_id, raw) for u in urls))
        for url, (ok, reason, detail) in zip(urls, results, strict=True):
            if ok:
                self.delivered += 1
                metrics.WEBHOOK_DELIVERIES.labels(outcome="delivered").inc()
                continue
            self.failed += 1
            outcome = reason.removeprefix("webhook_")
            if detail.endswith(_GONE):
                self.gone.add(url)
                outcome = "gone"
                log.warning("webhook %s answered 410 Gone: subscription ended", url)
            metrics.WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
            await self.dead_letter(
                dead_letter(
                    reason,
                    source=f"webhook:{url}",
                    stage="alert.webhook",
                    detail=detail,
                    raw=raw,
                    rx_t_ms=int(self.clock() * 1000),
                )
            )

    def _headers(self, msg_id: str, raw: bytes) -> dict[str, str]:
        ts = int(self.clock())
        headers = {
            "Content-Type": "application/cloudevents+json; charset=utf-8",
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
        }
        if self.secret is not None:
            headers["webhook-signature"] = sign(self.secret, msg_id, ts, raw)
        return headers

    async def _post(self, url: str, msg_id: str, raw: bytes) -> tuple[bool, str, str]:
        detail = ""
        attempts = len(self.schedule_s) + 1
        for attempt in range(attempts):
            asked_s = None
            try:
                resp = await self.client.post(url, content=raw, headers=self._headers(msg_id, raw))
            except httpx.HTTPError as exc:
                detail = f"{type(exc).__name__}: {exc}"
                retryable, reason = True, "webhook_unreachable"
            else:
                if 200 <= resp.status_code < 300:
                    return True, "", ""
                detail = f"HTTP {resp.status_code}: {resp.text[:200]}"
                if resp.status_code == 410:
                    return False, "webhook_rejected", f"{url}: {detail}: {_GONE}"
                retryable = resp.status_code in (408, 429) or resp.status_code >= 500
                reason = "webhook_unreachable" if retryable else "webhook_rejected"
                asked_s = retry_after_s(resp.headers.get("Retry-After"), self.clock())
            if not retryable or attempt == attempts - 1:
                return False, reason, f"{url}: {detail} after {attempt + 1} attempt(s)"
            delay = self.schedule_s[attempt] * self.rng.uniform(0.8, 1.2)
            if asked_s is not None:
                delay = max(delay, min(asked_s, MAX_RETRY_AFTER_S))
            metrics.WEBHOOK_DELIVERIES.labels(outcome="retried").inc()
            await self.sleep(delay)
        return False, "webhook_unreachable", detail


async def run_webhook(
    bootstrap: str,
    urls: list[str],
    group: str,
    *,
    secret: str | None = None,
    schedule_s: Sequence[float] | None = None,
    retries: int | None = None,
    backoff_s: float = 5.0,
    stop: asyncio.Event | None = None,
    idle_exit_s: float | None = None,
    from_beginning: bool = True,
) -> WebhookSink:
    """Consume the alert topic with consumer group ``group`` and deliver to ``urls``
    (see :class:`WebhookSink` for the other parameters)."""
    from connectors.kafka import RecordProducer

    stop = stop or asyncio.Event()
    async with RecordProducer(bootstrap, client_id="shorewatch-webhook") as producer:

        async def dead(d: records.DeadLetter) -> None:
            await producer.send_and_wait(topics.DEADLETTER, d.source, d)

        sink = WebhookSink(
            urls, dead, secret=secret, schedule_s=schedule_s, retries=retries, backoff_s=backoff_s
        )
        try:

            async def handle(alert: records.Alert | None, raw: bytes) -> None:
                await sink.deliver(raw)

            await _consume(bootstrap, group, from_beginning, handle, stop, idle_exit_s)
        finally:
            await sink.aclose()
    return sink


def parse_duration_s(text: str) -> float:
    """``90``, ``90s``, ``5m``, ``2h`` as seconds.

    :raises ConfigError: anything else
    """
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    t = text.strip().lower()
    try:
        if t and t[-1] in units:
            return float(t[:-1]) * units[t[-1]]
        return float(t)
    except ValueError:
        raise ConfigError(f"not a duration: {text!r} (e.g. 5s, 5m, 2h)") from None


def cmd_webhook(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    secret = os.environ.get(args.secret_env) or None
    if secret is None:
        log.warning("%s is not set: webhooks are sent unsigned", args.secret_env)
    schedule = [parse_duration_s(x) for x in args.retry_schedule.split(",") if x.strip()]

    async def main() -> WebhookSink:
        async with metrics.serve_from_env("alerts-webhook"):
            return await run_webhook(
                settings.broker(),
                args.url,
                args.group,
                secret=secret,
                schedule_s=schedule,
                idle_exit_s=args.idle_exit,
            )

    sink = asyncio.run(main())
    print(f"delivered {sink.delivered}, dead-lettered {sink.failed}", file=sys.stderr)
    return 0


def cmd_cap(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pipeline.cap import to_cap

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = bad = 0
    src = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    with src:
        for line in src:
            if not line.strip():
                continue
            try:
                alert = _alert_dec.decode(line)
            except msgspec.DecodeError as exc:
                bad += 1
                log.error("not an alert event: %s", exc)
                continue
            xml = to_cap(alert, sender=args.sender, scope=args.scope)
            (out / (alert.id.replace("/", "_") + ".xml")).write_bytes(xml)
            n += 1
    print(f"wrote {n} CAP 1.2 message(s) to {out}; {bad} unreadable line(s)", file=sys.stderr)
    return 1 if bad else 0
