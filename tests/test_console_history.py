"""The console's History tab in a real browser (system Chromium, Playwright's async API):
past tracks, who was near a place and the alerts of a window, from a real archive written
by the archive writer (positions, and the alerts the engine raised on a simulated night).

Screenshots go to ``out/test-artifacts/console/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from console_helpers import ARTEFACTS, SITE, login, make_users, start
from test_console_browser import Watch, browser  # noqa: F401 - the browser fixture
from test_history_compact import T0_MS, archive_rows

from pipeline.history.landing import finding_alerts
from pipeline.history.query import Archive, near
from pipeline.history.writer import ArchiveWriter, Bounds
from pipeline.site import load_site
from schemas.records import LandingSiteFinding

pytestmark = [pytest.mark.browser, pytest.mark.integration]

_enc = msgspec.json.Encoder()


def write_archive(root: Path, alerts: list[Any]) -> None:
    """3,000 positions of 50 vessels from 22:00 UTC on 7 March, and every event of the
    simulated night's alerts."""
    w = ArchiveWriter(root, Bounds(row_group_rows=1024))
    archive_rows(w, 0, 0, 3000, 1000)
    topic = "shorewatch.alert.v1"
    vals = [_enc.encode(a) for a in alerts]
    w.add(topic, 0, list(range(len(vals))), [0] * len(vals), vals)
    assert w.flush(topic, 0) is not None
    # a hidden landing site published at 23:00 UTC, as `history landing-sites --publish` does
    sites = finding_alerts([SITE_FINDING], load_site(SITE), root, T0_MS + 3_600_000)
    vals = [_enc.encode(a) for a in sites]
    w.add(topic, 1, list(range(len(vals))), [0] * len(vals), vals)
    assert w.flush(topic, 1) is not None


SITE_FINDING = LandingSiteFinding(
    finding_id="landing_site:haikou:110.41230:20.07410", lon=110.4123, lat=20.0741,
    radius_m=60.0, nights=["2026-03-02", "2026-03-05", "2026-03-07"], mmsis=[412000007],
    camera_targets=["cam:hk-east-01:3"], visits=3, dark_visits=1, alert_ids=[],
    window_start="2026-02-06T00:00:00Z", window_end="2026-03-08T00:00:00Z",
)  # fmt: skip


def iso(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


async def test_history_tab_shows_tracks_places_and_alerts(
    kafka_bootstrap: str,
    night,
    tmp_path: Path,
    browser: Any,  # noqa: F811
) -> None:
    alerts, evidence = night
    archive = tmp_path / "archive"
    write_archive(archive, alerts)
    pw = make_users(tmp_path / "users.json")
    running = await start(tmp_path, kafka_bootstrap, evidence_dir=evidence, archive_root=archive)
    try:
        # the history API, like every other, wants a session
        async with httpx.AsyncClient() as client:
            r = await client.get(f"{running.url}api/history/track?mmsi=1&from=0&to=1")
            assert r.status_code == 401

        ctx = await browser.new_context(locale="en-US", viewport={"width": 1400, "height": 850})
        page = await ctx.new_page()
        watch = Watch(page)
        await login(page, running.url, "olga", pw["olga"])
        await page.click('nav .tab[data-tab="history"]')
        await page.wait_for_selector("#tab-history:not([hidden])")
        assert await page.locator('nav .tab[data-tab="history"]').text_content() == "History"

        # a vessel's track over a window written with the site's offset
        await page.fill("#h-from", "2026-03-08T06:00+08:00")
        await page.fill("#h-to", "2026-03-08T08:00+08:00")
        await page.fill("#h-mmsi", "412000007")
        await page.click("#h-track")
        await page.wait_for_function("() => !!window.__sw.history.track", timeout=30_000)
        n_fixes = await page.evaluate("() => window.__sw.history.track.n_fixes")
        assert n_fixes == 60  # 3,000 fixes of 50 vessels, one in 50 of them this one's
        assert await page.locator("#h-status").text_content() == "60 fixes of 412000007"
        drawn = await page.evaluate("() => window.__sw.history.drawn()")
        assert drawn.count("line") == 1 and drawn.count("marker") == 2  # the track, its ends
        # the time slider: halfway through the window, the vessel halfway along its track
        await page.locator("#h-scrub").fill("500")
        half = await page.evaluate("() => window.__sw.history.cursorIndex")
        assert 25 <= half <= 34, half
        assert (await page.locator("#h-scrub-time").text_content() or "").startswith("03/08/2026")
        await page.screenshot(path=str(ARTEFACTS / "history-01-track.png"))

        # who was near a place: the same answer as the history query engine gives
        lon, lat = 110.33, 20.07
        want = near(Archive(archive), lon, lat, 400, T0_MS, T0_MS + 2 * 3_600_000)
        await page.fill("#h-point", f"{lon},{lat}")
        await page.fill("#h-radius", "400")
        await page.click("#h-near")
        await page.wait_for_function("() => !!window.__sw.history.near", timeout=30_000)
        got = await page.locator("#h-results tr.h-vessel").evaluate_all(
            "(rows) => rows.map((r) => Number(r.dataset.mmsi))"
        )
        assert got == [v["mmsi"] for v in want["vessels"]] and got
        # a row opens that vessel's track
        await page.click(f'#h-results tr.h-vessel[data-mmsi="{got[0]}"]')
        await page.wait_for_function(
            "(m) => window.__sw.history.track && window.__sw.history.track.mmsi === m",
            arg=got[0],
            timeout=30_000,
        )
        await page.screenshot(path=str(ARTEFACTS / "history-02-near.png"))

        # the hidden landing sites published in the window, drawn as circles
        await page.click("#h-sites")
        await page.wait_for_function("() => !!window.__sw.history.sites", timeout=30_000)
        assert await page.locator("#h-results tr.h-site").count() == 1
        cells = await page.locator("#h-results tr.h-site td").all_text_contents()
        assert cells == ["110.41230, 20.07410", "2026-03-02 2026-03-05 2026-03-07", "3 (1)",
                         "412000007"]  # fmt: skip
        assert await page.evaluate("() => window.__sw.history.drawn()") == ["circle"]
        await page.screenshot(path=str(ARTEFACTS / "history-03-landing-sites.png"))

        # the alerts of the simulated night's window
        ts = [msgspec.json.decode(_enc.encode(a))["time"] for a in alerts]
        from pipeline.history.query import parse_time_ms

        t_ms = sorted(parse_time_ms(t) for t in ts)
        await page.fill("#h-from", iso(t_ms[0]))
        await page.fill("#h-to", iso(t_ms[-1] + 1000))
        await page.click("#h-alerts")
        await page.wait_for_function("() => !!window.__sw.history.alerts", timeout=30_000)
        rows = await page.locator("#h-results tr.h-alert").count()
        assert rows == len({a.data.alert_id for a in alerts}) > 0
        await page.screenshot(path=str(ARTEFACTS / "history-04-alerts.png"))

        # a bad window is refused with the reason
        await page.fill("#h-from", "2026-03-09T00:00+08:00")
        await page.fill("#h-to", "2026-03-08T00:00+08:00")
        await page.click("#h-track")
        await page.wait_for_function(
            "() => document.querySelector('#h-status').className === 'error'", timeout=30_000
        )
        assert "inverted" in (await page.locator("#h-status").text_content() or "")
        assert not watch.dialogs and not watch.errors
        await ctx.close()
    finally:
        await running.stop()
