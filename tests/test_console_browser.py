"""The console in a real browser (the system Chromium, driven by Playwright's async API)
against the real broker, with real alerts of a simulated night on the topic.

Screenshots of each step go to ``out/test-artifacts/console/``.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest
from console_helpers import (
    ARTEFACTS,
    CHROMIUM,
    login,
    make_users,
    publish_alerts,
    start,
    tagged,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
async def browser():
    """Headless system Chromium; skips when it is not installed (Debian ``chromium``)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium chromium-driver)")
    from playwright.async_api import async_playwright

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        b = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield b
        finally:
            await b.close()


class Watch:
    """Collects a page's dialogs (``alert()``) and uncaught script errors."""

    def __init__(self, page: Any):
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    async def _dialog(self, d: Any) -> None:
        self.dialogs.append(d.message)
        await d.dismiss()


def _pick(alerts: list[Any]) -> Any:
    """An unusual landing with evidence snapshots (the central alert)."""
    return next(
        a
        for a in alerts
        if a.data.kind == "unusual_landing"
        and a.data.status == "open"
        and a.data.evidence.snapshot_uris
    )


async def test_live_alert_evidence_acknowledge_and_restart(
    kafka_bootstrap: str, night, tmp_path: Path, browser: Any
) -> None:
    alerts, evidence = night
    pw = make_users(tmp_path / "users.json")
    mine = tagged(alerts, f"br{uuid.uuid4().hex[:6]}")
    target = _pick(mine).data.alert_id
    running = await start(tmp_path, kafka_bootstrap, evidence_dir=evidence)
    port = int(running.url.rstrip("/").rsplit(":", 1)[1])
    base = running.url
    try:
        ctx1 = await browser.new_context(locale="en-US", viewport={"width": 1400, "height": 850})
        page1 = await ctx1.new_page()
        w1 = Watch(page1)
        await login(page1, base, "olga", pw["olga"])
        await page1.screenshot(path=str(ARTEFACTS / "01-logged-in.png"))

        # an alert put on the topic now appears in the queue and on the map, no reload
        await publish_alerts(kafka_bootstrap, mine)
        row = f'#queue li[data-alert-id="{target}"]'
        await page1.wait_for_selector(row, timeout=30_000)
        on_map = await page1.evaluate(
            "(id) => window.__sw.map.fast.alerts.some((a) => a.id === id)", target
        )
        assert on_map
        # and, being above the notification severity, it flashed the banner
        assert _pick(mine).data.severity >= 60
        assert await page1.evaluate("() => window.__sw.notified > 0")
        assert await page1.locator("#notify-banner").is_visible()
        await page1.screenshot(path=str(ARTEFACTS / "02-alert-arrived.png"))

        # open it: the detail shows its factors and its evidence image from the store
        await page1.click(row)
        await page1.wait_for_selector("#d-evidence img.evidence", timeout=15_000)
        await page1.wait_for_function(
            "() => [...document.querySelectorAll('#d-evidence img')]"
            ".every((i) => i.complete && i.naturalWidth > 0)",
            timeout=15_000,
        )
        n_factors = await page1.locator("#d-factors tr").count()
        assert n_factors == len(_pick(mine).data.factors) > 0
        await page1.screenshot(path=str(ARTEFACTS / "03-alert-detail-evidence.png"))

        # a second session (a supervisor, in Chinese) watches the same queue
        ctx2 = await browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 850})
        page2 = await ctx2.new_page()
        await login(page2, base, "sam", pw["sam"])
        state2 = page2.locator(f"{row} .q-state")
        assert await state2.text_content() == "新"

        # acknowledge in the first; the second sees it live
        await page1.click("#act-acknowledge")
        await page1.wait_for_function(
            "(s) => document.querySelector(s) && document.querySelector(s).textContent === 'acknowledged'",
            arg=f"{row} .q-state",
            timeout=20_000,
        )
        await page2.wait_for_function(
            "(s) => document.querySelector(s) && document.querySelector(s).textContent === '已确认'",
            arg=f"{row} .q-state",
            timeout=20_000,
        )
        await page1.screenshot(path=str(ARTEFACTS / "04-acknowledged.png"))
        await page2.screenshot(path=str(ARTEFACTS / "05-second-session-sees-ack.png"))
        assert not w1.dialogs and not w1.errors
    finally:
        await running.stop()

    # restart the console on the same port and store: the acknowledgement is still there
    running = await start(tmp_path, kafka_bootstrap, evidence_dir=evidence, port=port)
    try:
        await login(page1, base, "olga", pw["olga"])
        await page1.wait_for_function(
            "(s) => document.querySelector(s) && document.querySelector(s).textContent === 'acknowledged'",
            arg=f"{row} .q-state",
            timeout=30_000,
        )
        await page1.click(row)
        await page1.wait_for_selector("#d-history li", timeout=15_000)
        hist = await page1.locator("#d-history li").all_text_contents()
        assert any("olga" in h and "Acknowledge" in h for h in hist)
        await page1.screenshot(path=str(ARTEFACTS / "06-after-restart.png"))
        await ctx1.close()
        await ctx2.close()
    finally:
        await running.stop()


async def test_air_strings_are_text(
    kafka_bootstrap: str, night, tmp_path: Path, browser: Any
) -> None:
    """A ship name with markup, broadcast through the AIS connector and a real worker,
    and an alert naming the vessel with markup, show as text; no script runs."""
    from pyais.encode import encode_dict

    from connectors.ais import KafkaSink, replay_file
    from pipeline.tools.worker_process import start_worker_process, stop_worker_process

    alerts, evidence = night
    pw = make_users(tmp_path / "users.json")
    mmsi = 412_000_000 + int(uuid.uuid4().int % 900_000)
    # AIS names are 20 six-bit characters (upper case): this is the longest img+onerror
    ais_name = "<IMG SRC=X ONERROR=>"
    lines = encode_dict(
        {"type": 5, "mmsi": mmsi, "shipname": ais_name, "destination": "<SCRIPT>ALERT(1)",
         "callsign": "<B>X", "ship_type": 30},
        talker_id="AI", sentence_type="VDM",
    )  # fmt: skip
    lines += encode_dict(
        {"type": 1, "mmsi": mmsi, "lon": 110.30, "lat": 20.12, "speed": 6.0, "course": 200,
         "heading": 200, "status": 0},
        talker_id="AI", sentence_type="VDM",
    )  # fmt: skip
    feed = tmp_path / "xss.nmea"
    feed.write_text("\n".join(lines) + "\n")
    evil = "<img src=x onerror=alert(1)>"
    one = tagged([_pick(alerts)], f"xss{uuid.uuid4().hex[:6]}")[0]
    one = msgspec.structs.replace(
        one,
        data=msgspec.structs.replace(
            one.data, vessel=msgspec.structs.replace(one.data.vessel, name=evil, dark=False)
        ),
    )

    worker = start_worker_process(
        kafka_bootstrap, tmp_path / "worker", agents="decode,tracks", app_id_prefix="console-xss"
    )
    running = await start(tmp_path, kafka_bootstrap, evidence_dir=evidence)
    try:
        ctx = await browser.new_context(locale="en-US", viewport={"width": 1400, "height": 850})
        page = await ctx.new_page()
        watch = Watch(page)
        await login(page, running.url, "olga", pw["olga"])
        sink = KafkaSink(kafka_bootstrap)
        await sink.start()
        try:
            # the worker joins its group at the topic's end: send until the track is out
            async def seen() -> bool:
                await replay_file(str(feed), sink)
                await asyncio.sleep(1.0)
                return (
                    await page.evaluate("(m) => !!window.__sw.map.fast.vessels.get(m)", mmsi)
                    and running.console.feed.vessels[mmsi].track.name is not None
                )

            await wait_for(seen, timeout_s=150, every_s=1.0)
        finally:
            await sink.stop()
        await publish_alerts(kafka_bootstrap, [one])
        row = f'#queue li[data-alert-id="{one.data.alert_id}"]'
        await page.wait_for_selector(row, timeout=30_000)
        assert await page.locator(f"{row} .q-vessel").text_content() == evil
        await page.click(row)
        await page.wait_for_selector("#detail:not([hidden])")
        assert evil in (await page.locator("#d-vessel").text_content() or "")

        # click the vessel on the map: its popup shows the AIS name as text
        await page.evaluate(
            "(m) => { const v = window.__sw.map.fast.vessels.get(m); "
            "window.__sw.map.map.setView([v[2], v[1]], 13); }",
            mmsi,
        )
        await asyncio.sleep(0.5)
        xy = await page.evaluate(
            "(m) => { const v = window.__sw.map.fast.vessels.get(m); "
            "const p = window.__sw.map.map.latLngToContainerPoint([v[2], v[1]]); "
            "const r = document.getElementById('map').getBoundingClientRect(); "
            "return [r.left + p.x, r.top + p.y]; }",
            mmsi,
        )
        await page.mouse.click(xy[0], xy[1])
        await page.wait_for_selector("#vessel-popup", timeout=10_000)
        assert await page.locator("#vessel-popup .vessel-name").text_content() == ais_name
        await page.screenshot(path=str(ARTEFACTS / "07-markup-shown-as-text.png"))
        injected = await page.evaluate(
            '() => document.querySelectorAll(\'img[src="x"], img[src="X"], script:not([src])\').length'
        )
        assert injected == 0
        assert watch.dialogs == [] and watch.errors == []
        await ctx.close()
    finally:
        await running.stop()
        stop_worker_process(worker)


async def test_broker_loss_is_shown_and_recovered(
    kafka_bootstrap: str, night, tmp_path: Path, browser: Any
) -> None:
    from pipeline.localbroker import running as local_broker
    from pipeline.tools import localkafka

    info = local_broker()
    if info is None or info.bootstrap != kafka_bootstrap:
        pytest.skip("the broker is external (KAFKA_BOOTSTRAP_SERVERS): not stopping it")
    alerts, evidence = night
    pw = make_users(tmp_path / "users.json")
    running = await start(tmp_path, kafka_bootstrap, evidence_dir=evidence)
    badge = "#broker-state"
    try:
        ctx = await browser.new_context(locale="en-US", viewport={"width": 1400, "height": 850})
        page = await ctx.new_page()
        await login(page, running.url, "olga", pw["olga"])
        await page.wait_for_selector(f'{badge}[data-state="connected"]', timeout=30_000)
        await asyncio.to_thread(localkafka.down)
        try:
            await page.wait_for_selector(f'{badge}[data-state="disconnected"]', timeout=60_000)
            assert await page.locator(badge).text_content() == "Disconnected from the broker"
            await page.screenshot(path=str(ARTEFACTS / "08-broker-down.png"))
        finally:
            await asyncio.to_thread(localkafka.up)
        await page.wait_for_selector(f'{badge}[data-state="connected"]', timeout=120_000)
        # and live data flows again
        one = tagged([alerts[0]], f"rec{uuid.uuid4().hex[:6]}")
        await publish_alerts(kafka_bootstrap, one)
        await page.wait_for_selector(
            f'#queue li[data-alert-id="{one[0].data.alert_id}"]', timeout=60_000
        )
        await page.screenshot(path=str(ARTEFACTS / "09-broker-back.png"))
        await ctx.close()
    finally:
        await running.stop()
