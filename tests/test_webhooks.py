"""Standard Webhooks delivery against a real HTTP receiver on 127.0.0.1 that verifies
every request with the ``standardwebhooks`` package. Waits go through a time seam: the
retry schedule spans a day, the test does not."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import msgspec
import pytest
from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError
from test_alert_delivery import make_alert

from connectors.alerts import (
    STANDARD_SCHEDULE_S,
    WebhookSink,
    message_id,
    parse_duration_s,
    retry_after_s,
    sign,
)
from pipeline.errors import ConfigError
from schemas import records

SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()


class VerifyingReceiver:
    """Answers scripted (status, headers) per path after verifying the signature;
    a request that fails verification gets 401 and is remembered."""

    def __init__(self, secret: str, script: dict[str, list[tuple[int, dict[str, str]]]]):
        self.webhook = Webhook(secret)
        self.script = {k: list(v) for k, v in script.items()}
        self.seen: dict[str, list[dict[str, str]]] = {k: [] for k in script}
        self.rejected: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        try:
            payload = self.webhook.verify(body, headers)
        except WebhookVerificationError as exc:
            self.rejected.append(str(exc))
            return web.Response(status=401)
        self.seen[request.path].append({**headers, "_alert_id": payload["data"]["alert_id"]})
        codes = self.script[request.path]
        status, extra = codes.pop(0) if len(codes) > 1 else codes[0]
        return web.Response(status=status, headers=extra)

    async def __aenter__(self) -> str:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


class FakeSleep:
    """Records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def raw_alert(alert_id: str = "unusual_landing/412000001/1772906400000", seq: int = 0) -> bytes:
    return msgspec.json.encode(make_alert(alert_id, seq))


@pytest.mark.unit
def test_signature_is_what_the_reference_library_computes():
    raw = raw_alert()
    ts = 1772906400
    ours = sign(SECRET, "msg_1", ts, raw)
    theirs = Webhook(SECRET).sign("msg_1", datetime.fromtimestamp(ts, UTC), raw)
    assert ours == theirs and ours.startswith("v1,")
    with pytest.raises(ConfigError):
        sign("whsec_not base64!", "msg_1", ts, raw)


@pytest.mark.unit
def test_message_id_is_stable_per_event_and_differs_between_events():
    assert message_id(raw_alert(seq=0)) == message_id(raw_alert(seq=0))
    assert message_id(raw_alert(seq=0)) != message_id(raw_alert(seq=1))
    assert message_id(b"not json").startswith("msg_")


@pytest.mark.unit
def test_retry_after_and_durations():
    now = 1_800_000_000.0
    assert retry_after_s("120", now) == 120
    date = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(hours=2), usegmt=True)
    assert retry_after_s(date, now) == pytest.approx(7200, abs=1)
    assert retry_after_s("soon", now) is None and retry_after_s(None, now) is None
    assert [parse_duration_s(x) for x in ("5s", "5m", "2h", "90")] == [5, 300, 7200, 90]
    with pytest.raises(ConfigError):
        parse_duration_s("tomorrow")


@pytest.mark.integration
async def test_signed_delivery_with_retry_after_and_backoff_over_hours():
    """503 with Retry-After, then 500s, then 200: every attempt is signed and verified,
    carries the same webhook-id, and the waits honour Retry-After and grow to hours."""
    script = {
        "/hook": [(503, {"Retry-After": "600"}), (500, {}), (500, {}), (500, {}), (200, {})],
    }
    receiver = VerifyingReceiver(SECRET, script)
    dead: list[records.DeadLetter] = []

    async def collect(d: records.DeadLetter) -> None:
        dead.append(d)

    sleep = FakeSleep()
    async with receiver as base:
        sink = WebhookSink([f"{base}/hook"], collect, secret=SECRET, sleep=sleep)
        await sink.deliver(raw_alert())
        await sink.aclose()
    assert receiver.rejected == []
    seen = receiver.seen["/hook"]
    assert len(seen) == 5 and (sink.delivered, sink.failed) == (1, 0) and not dead
    assert len({h["webhook-id"] for h in seen}) == 1  # one id per message, kept on retries
    assert all(h["webhook-signature"].startswith("v1,") for h in seen)
    # first wait: the schedule says ~5 s, the receiver asked for 600 s
    assert sleep.waits[0] == 600
    for wait, planned in zip(sleep.waits[1:], STANDARD_SCHEDULE_S[1:4], strict=True):
        assert 0.8 * planned <= wait <= 1.2 * planned
    assert sleep.waits[3] >= 0.8 * 2 * 3600  # the fourth retry is hours later


@pytest.mark.integration
async def test_schedule_used_up_is_a_dead_letter_after_about_a_day():
    receiver = VerifyingReceiver(SECRET, {"/down": [(500, {})]})
    dead: list[records.DeadLetter] = []

    async def collect(d: records.DeadLetter) -> None:
        dead.append(d)

    sleep = FakeSleep()
    async with receiver as base:
        sink = WebhookSink([f"{base}/down"], collect, secret=SECRET, sleep=sleep)
        await sink.deliver(raw_alert())
        await sink.aclose()
    assert len(receiver.seen["/down"]) == len(STANDARD_SCHEDULE_S) + 1
    assert 0.8 * 24 * 3600 < sum(sleep.waits) < 1.2 * 28 * 3600
    assert [d.reason for d in dead] == ["webhook_unreachable"]


@pytest.mark.integration
async def test_410_gone_ends_the_subscription_and_others_go_on():
    receiver = VerifyingReceiver(SECRET, {"/gone": [(410, {})], "/ok": [(200, {})]})
    dead: list[records.DeadLetter] = []

    async def collect(d: records.DeadLetter) -> None:
        dead.append(d)

    sleep = FakeSleep()
    async with receiver as base:
        sink = WebhookSink([f"{base}/gone", f"{base}/ok"], collect, secret=SECRET, sleep=sleep)
        await sink.deliver(raw_alert(seq=0))
        await sink.deliver(raw_alert(seq=1))
        await sink.aclose()
    assert len(receiver.seen["/gone"]) == 1  # never retried, never sent again
    assert len(receiver.seen["/ok"]) == 2
    assert sleep.waits == []
    assert [d.reason for d in dead] == ["webhook_rejected"]
    assert "410" in dead[0].detail and dead[0].detail.endswith("subscription ended")
    assert sink.gone == {f"{base}/gone"}


@pytest.mark.integration
async def test_a_receiver_with_another_secret_rejects_the_requests():
    other = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    receiver = VerifyingReceiver(other, {"/hook": [(200, {})]})
    dead: list[records.DeadLetter] = []

    async def collect(d: records.DeadLetter) -> None:
        dead.append(d)

    async with receiver as base:
        sink = WebhookSink([f"{base}/hook"], collect, secret=SECRET, sleep=FakeSleep())
        await sink.deliver(raw_alert())
        await sink.aclose()
    assert receiver.rejected == ["No matching signature found"]
    assert [d.reason for d in dead] == ["webhook_rejected"]  # 401 is not retried
