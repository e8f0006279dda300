"""The console's vessel card shows an alert's registry record and watchlist entries (the
system Chromium against the real broker)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from console_helpers import ARTEFACTS, CHROMIUM, login, make_users, publish_alerts, start

from schemas import records

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _alert(alert_id: str, reason: str) -> records.Alert:
    reg = records.RegistryRecord(
        registration_no="QH-412000002", mmsi=412000002, name="QIONG HAI YU 2",
        hull_number="琼海口渔12345", port_of_registry="海口", vessel_type="fishing",
        length_m=18.0, owner="Hainan Fisheries Co.", home_harbours=["Baishamen"],
        valid_until="2026-12-31",
    )  # fmt: skip
    hit = records.WatchlistHit(kind="mmsi", value="412000002", reason=reason, added_by="duty")
    data = records.AlertData(
        alert_id=alert_id, kind="identity_anomaly", status="open", severity=60,
        factors=[records.AlertFactor("name_mismatch", 30.0, "AIS name 'HAI XUN 2' is not the "
                                     "registered name 'QIONG HAI YU 2'"),
                 records.AlertFactor("watchlist", 30.0, f"on the watchlist: {reason}")],
        event_time="2026-03-07T20:00:00.000Z", position=records.GeoPoint(lat=20.07, lon=110.30),
        vessel=records.AlertVessel(mmsi=412000002, name="HAI XUN 2", dark=False,
                                   track_id="mmsi:412000002", registry=reg, watchlist=[hit]),
        zone=records.AlertZone(name=None, kind=None, distance_m=None),
        evidence=records.AlertEvidence(), site="haikou",
    )  # fmt: skip
    return records.Alert(
        id=f"{alert_id}/0", source="shorewatch/haikou", type="org.shorewatch.alert.identity_anomaly",
        time="2026-03-07T20:00:00.000Z", data=data,
    )  # fmt: skip


async def test_the_vessel_card_shows_the_registry_record_and_watchlist(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium chromium-driver)")
    from playwright.async_api import async_playwright

    pw = make_users(tmp_path / "users.json")
    evil = "<img src=x onerror=alert(1)> lead: livestock"
    one = _alert(f"card{uuid.uuid4().hex[:6]}-identity_anomaly:mmsi:412000002", evil)
    running = await start(tmp_path, kafka_bootstrap)
    try:
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        async with async_playwright() as p:
            browser: Any = await p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 850})
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                await login(page, running.url, "olga", pw["olga"])
                await publish_alerts(kafka_bootstrap, [one])
                row = f'#queue li[data-alert-id="{one.data.alert_id}"]'
                await page.wait_for_selector(row, timeout=30_000)
                await page.click(row)
                await page.wait_for_selector("#detail:not([hidden])")
                card = await page.locator("#d-vessel").text_content() or ""
                for want in ("QH-412000002", "QIONG HAI YU 2", "琼海口渔12345", "海口 · fishing · 18 m",
                             "Hainan Fisheries Co.", "Baishamen", "2026-12-31", evil, "duty"):  # fmt: skip
                    assert want in card, (want, card)
                assert await page.locator('#d-vessel img[src="x"]').count() == 0
                await page.screenshot(path=str(ARTEFACTS / "08-vessel-card-registry.png"))
                assert errors == []
            finally:
                await browser.close()
    finally:
        await running.stop()
