"""``shorewatch bench console``: the console's two figures, measured in the browser.

1. **Push latency**: alerts put on ``shorewatch.alert.v1`` one at a time while the AIS
   connector publishes ``--ais-rate`` sentences/s of background traffic (decoded into
   tracks by a real worker, which the console reads); latency = the wall time the page
   rendered the alert's queue row (``Date.now()``) minus the wall time the alert was
   acknowledged by the broker. Same machine, same clock.
2. **Map update**: ``--vessels`` tracks moving (all of them updated every second on the
   track topic) and ``--open-alerts`` open alerts; the figure is the browser's own timing
   (``performance.now()``) of each redraw of the map's vessel/alert canvas.

Tooling, never imported by production code.
"""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

CHROMIUM = "/usr/bin/chromium"


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs, dtype=float), q)) if xs else float("nan")


async def _ais_background(bootstrap: str, rate: float, stop: asyncio.Event, counter: list[int]):
    """AIS sentences through the AIS connector's Kafka sink at ``rate`` per second."""
    from connectors.ais import KafkaSink
    from schemas.records import RawAisBatch

    sink = KafkaSink(bootstrap)
    await sink.start()
    rng = np.random.default_rng(1)
    try:
        from pyais.encode import encode_dict

        pool = []
        for i in range(2000):
            pool += encode_dict(
                {"type": 1, "mmsi": 413_100_000 + i, "lon": 110.1 + 0.6 * rng.random(),
                 "lat": 20.06 + 0.2 * rng.random(), "speed": 8.0, "course": 90, "heading": 90},
                talker_id="AI", sentence_type="VDM",
            )  # fmt: skip
        tick_s, k = 0.1, 0
        t0 = time.monotonic()
        while not stop.is_set():
            n = int(rate * tick_s)
            lines = [pool[(k + j) % len(pool)] for j in range(n)]
            k += n
            now_ms = int(time.time() * 1000)
            await sink(RawAisBatch(source="bench:console", lines=lines, rx_t_ms=[now_ms] * n))
            counter[0] += n
            t0 += tick_s
            await asyncio.sleep(max(0.0, t0 - time.monotonic()))
    finally:
        await sink.stop()


async def run(args: Any) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    from connectors.kafka import RecordProducer
    from pipeline import topics
    from pipeline.console import ConsoleConfig, start_console
    from pipeline.replay import replay
    from pipeline.settings import Settings
    from pipeline.tools.simulate import SimConfig, simulate
    from pipeline.tools.worker_process import start_worker_process, stop_worker_process
    from schemas import records

    bootstrap = args.bootstrap or Settings.from_env().broker()
    site = Path(args.site)
    work = Path(tempfile.mkdtemp(prefix="sw-bench-console-"))
    from datetime import datetime

    simulate(
        site,
        SimConfig(seed=2, start=datetime.fromisoformat("2026-03-08T03:00:00+08:00"),
                  duration_s=3600, fps=0.5, noise="none"),
        work / "night",
    )  # fmt: skip
    real = [a for a in replay(site, [work / "night" / "ais.nmea"], []) if a.data.status == "open"]
    assert real, "the simulated night raised no alert"
    run_tag = f"b{int(time.time())}"

    def alert_copy(i: int, lon: float | None = None, lat: float | None = None) -> Any:
        a = real[i % len(real)]
        d = msgspec.structs.replace(
            a.data,
            alert_id=f"{run_tag}-{i}",
            position=records.GeoPoint(lat=lat if lat is not None else a.data.position.lat,
                                      lon=lon if lon is not None else a.data.position.lon),
        )  # fmt: skip
        return msgspec.structs.replace(a, id=f"{run_tag}-{i}/0", data=d)

    cfg = ConsoleConfig(
        bootstrap=bootstrap, site_dir=site, users_file=None, demo=True, port=0,
        store_url=f"sqlite:///{work / 'actions.db'}", alert_history_h=0.01,
    )  # fmt: skip
    out: dict[str, Any] = {"command": "shorewatch bench console", "ais_rate": args.ais_rate}
    worker = None
    if args.worker:
        worker = start_worker_process(bootstrap, work / "worker", agents="decode,tracks",
                                      app_id_prefix="bench-console")  # fmt: skip
    running = await start_console(cfg)
    stop_bg = asyncio.Event()
    sent_lines = [0]
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
            )
            page = await browser.new_page(viewport={"width": 1400, "height": 850})
            await page.goto(running.url)
            await page.wait_for_function("() => !!(window.__sw && window.__sw.ready)")
            if worker is not None:
                await asyncio.sleep(args.warmup_s)
            # ---- 1. push latency under AIS background
            bg = asyncio.create_task(_ais_background(bootstrap, args.ais_rate, stop_bg, sent_lines))
            await asyncio.sleep(2.0)
            sent: dict[str, float] = {}
            t_bg0, n_bg0 = time.monotonic(), sent_lines[0]
            async with RecordProducer(bootstrap, linger_ms=0) as prod:
                for i in range(args.alerts):
                    a = alert_copy(i)
                    await prod.send_and_wait(topics.ALERT, a.data.alert_id, a)
                    sent[a.data.alert_id] = time.time() * 1000
                    await asyncio.sleep(args.alert_interval_s)
                await asyncio.sleep(3.0)
            bg_rate = (sent_lines[0] - n_bg0) / (time.monotonic() - t_bg0)
            stop_bg.set()
            await bg
            rendered = await page.evaluate("() => window.__sw.rendered")
            lat = [rendered[k] - v for k, v in sent.items() if k in rendered]
            out["push_latency_ms"] = {
                "n": len(lat), "of": len(sent), "p50": round(_pct(lat, 50), 1),
                "p99": round(_pct(lat, 99), 1), "max": round(max(lat), 1) if lat else None,
                "ais_sentences_per_s": round(bg_rate),
            }  # fmt: skip
            # ---- 2. map update with many vessels and open alerts
            async with RecordProducer(bootstrap, linger_ms=20) as prod:
                rng = np.random.default_rng(2)
                lon0 = 110.1 + 0.6 * rng.random(args.vessels)
                lat0 = 20.06 + 0.22 * rng.random(args.vessels)
                hd = 360 * rng.random(args.vessels)
                for i in range(args.open_alerts):
                    a = alert_copy(100_000 + i, float(lon0[i % args.vessels]) + 0.002,
                                   float(lat0[i % args.vessels]))  # fmt: skip
                    await prod.send(topics.ALERT, a.data.alert_id, a)
                await prod.flush()
                await page.evaluate("() => { window.__sw.map.fast.drawTimes.length = 0; }")
                for step in range(args.map_seconds):
                    t_ms = int(time.time() * 1000)
                    futs = []
                    for j in range(args.vessels):
                        d = step * 0.0002
                        tr = records.Track(
                            mmsi=414_000_000 + j, t_ms=t_ms,
                            lon=float(lon0[j] + d * math.sin(math.radians(hd[j]))),
                            lat=float(lat0[j] + d * math.cos(math.radians(hd[j]))),
                            sog_kn=8.0, cog_deg=float(hd[j]), heading_deg=int(hd[j]),
                            vel_east_mps=0.0, vel_north_mps=0.0, ais_class="A", n_fixes=step + 1,
                            expected_interval_s=10.0, last_gap_s=1.0, max_gap_s=1.0,
                            mmsi_kind="ship", mid=414, name=None if j % 7 == 0 else f"V{j}",
                        )  # fmt: skip
                        futs.append(await prod.send(topics.TRACK, str(tr.mmsi), tr))
                    await asyncio.gather(*futs)
                    await asyncio.sleep(1.0)
                await asyncio.sleep(2.0)
            stats = await page.evaluate(
                "() => ({times: window.__sw.map.fast.drawTimes.slice(),"
                " vessels: window.__sw.map.fast.vessels.size,"
                " alerts: window.__sw.map.fast.alerts.length})"
            )
            times = stats["times"]
            out["map_update_ms"] = {
                "n": len(times), "median": round(_pct(times, 50), 2),
                "p95": round(_pct(times, 95), 2), "vessels": stats["vessels"],
                "open_alerts": stats["alerts"],
            }  # fmt: skip
            await browser.close()
    finally:
        stop_bg.set()
        await running.stop()
        if worker is not None:
            stop_worker_process(worker)
    return out


def cmd_bench(args: Any) -> int:
    out = asyncio.run(run(args))
    if args.json:
        print(json.dumps(out))
    else:
        p, m = out["push_latency_ms"], out["map_update_ms"]
        print(
            f"push latency: p50 {p['p50']} ms, p99 {p['p99']} ms ({p['n']}/{p['of']} alerts, "
            f"{p['ais_sentences_per_s']} AIS sentences/s background)"
        )
        print(
            f"map update: median {m['median']} ms, p95 {m['p95']} ms over {m['n']} redraws "
            f"({m['vessels']} vessels, {m['open_alerts']} open alerts)"
        )
    return 0
