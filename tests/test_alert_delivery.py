"""Alert delivery: the operator's line, and the webhook sink against a real HTTP receiver."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest
from aiohttp import web

from connectors.alerts import WebhookSink, format_alert, run_webhook
from connectors.kafka import RecordProducer
from pipeline import topics
from schemas import records


def make_alert(
    alert_id: str = "unusual_landing/412000001/1772906400000", seq: int = 0
) -> records.Alert:
    data = records.AlertData(
        alert_id=alert_id,
        kind="unusual_landing",
        status="open",
        severity=85,
        factors=[
            records.AlertFactor("night", 20, "sun 30° below the horizon"),
            records.AlertFactor("ais_off", 25, "AIS silent for 14 min"),
        ],
        event_time="2026-03-07T20:03:12Z",
        position=records.GeoPoint(lat=20.0712, lon=110.3051),
        vessel=records.AlertVessel(
            mmsi=412000001, name="MIN YU 7", dark=True, track_id="ais:412000001"
        ),
        zone=records.AlertZone(
            name="Haikou Xiuying Port", kind="port", distance_m=2300.0, coast_distance_m=40.0
        ),
        evidence=records.AlertEvidence(trail=[[110.30, 20.07, 1772906000000.0]]),
        site="haikou",
        seq=seq,
    )
    return records.Alert(
        id=f"{alert_id}/{seq}",
        source="shorewatch/haikou",
        type="org.shorewatch.alert.unusual_landing",
        time="2026-03-07T20:03:12Z",
        data=data,
    )


@pytest.mark.unit
def test_operator_line_reads_at_a_glance() -> None:
    line = format_alert(make_alert(), tz="Asia/Shanghai")
    assert line.startswith("2026-03-08 04:03:12 CST  OPEN    unusual_landing")
    assert "sev  85" in line and "MMSI 412000001 'MIN YU 7' (AIS off)" in line
    assert "20.0712N 110.3051E, 40 m from shore, 2.3 km from Haikou Xiuying Port" in line
    assert line.endswith("[night, ais_off]")


class Receiver:
    """A real HTTP receiver answering with scripted status codes per path."""

    def __init__(self, script: dict[str, list[int]]):
        self.script = {k: list(v) for k, v in script.items()}
        self.bodies: dict[str, list[bytes]] = {k: [] for k in script}
        self.content_types: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path
        self.bodies[path].append(await request.read())
        self.content_types.append(request.headers.get("Content-Type", ""))
        codes = self.script[path]
        return web.Response(status=codes.pop(0) if len(codes) > 1 else codes[0])

    async def __aenter__(self) -> str:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


@pytest.mark.integration
async def test_webhook_retries_transient_failures_and_dead_letters_permanent_ones() -> None:
    receiver = Receiver({"/ok": [200], "/flaky": [503, 500, 200], "/bad": [400]})
    dead: list[records.DeadLetter] = []

    async def collect(d: records.DeadLetter) -> None:
        dead.append(d)

    raw = msgspec.json.encode(make_alert())
    async with receiver as base:
        sink = WebhookSink(
            [f"{base}/ok", f"{base}/flaky", f"{base}/bad"], collect, retries=3, backoff_s=0.01
        )
        await sink.deliver(raw)
        await sink.aclose()
    assert receiver.bodies["/ok"] == [raw]
    assert receiver.bodies["/flaky"] == [raw, raw, raw]  # two failures, then delivered
    assert receiver.bodies["/bad"] == [raw]  # 400 is permanent: not retried
    assert all(ct.startswith("application/cloudevents+json") for ct in receiver.content_types)
    assert [d.reason for d in dead] == ["webhook_rejected"]
    assert "HTTP 400" in dead[0].detail and dead[0].source == f"webhook:{base}/bad"
    assert (sink.delivered, sink.failed) == (2, 1)


@pytest.mark.integration
async def test_unreachable_webhook_becomes_a_dead_letter_after_retries() -> None:
    dead: list[records.DeadLetter] = []

    async def collect(d: records.DeadLetter) -> None:
        dead.append(d)

    sink = WebhookSink(["http://127.0.0.1:9/nothing-listens"], collect, retries=2, backoff_s=0.01)
    await sink.deliver(b"{}")
    await sink.aclose()
    assert [d.reason for d in dead] == ["webhook_unreachable"]
    assert "after 3 attempt(s)" in dead[0].detail


@pytest.mark.integration
async def test_alerts_on_the_topic_reach_the_webhook(kafka_bootstrap: str) -> None:
    alert_id = f"unusual_landing/{uuid.uuid4().hex}"
    receiver = Receiver({"/hook": [200]})
    async with receiver as base:
        async with RecordProducer(kafka_bootstrap) as producer:
            await producer.send_and_wait(topics.ALERT, alert_id, make_alert(alert_id, 0))
            await producer.send_and_wait(topics.ALERT, alert_id, make_alert(alert_id, 1))
        await asyncio.wait_for(
            run_webhook(
                kafka_bootstrap, [f"{base}/hook"], f"test-{uuid.uuid4().hex}", idle_exit_s=3.0
            ),
            timeout=60,
        )
    got = [msgspec.json.decode(b, type=records.Alert) for b in receiver.bodies["/hook"]]
    mine = [a.id for a in got if a.data.alert_id == alert_id]
    assert mine == [f"{alert_id}/0", f"{alert_id}/1"]
