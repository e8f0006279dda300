"""Helpers of the console tests: a simulated night's real alerts, consoles, browsers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "sites" / "haikou"
START = datetime.fromisoformat("2026-03-08T03:00:00+08:00")
ARTEFACTS = REPO / "out" / "test-artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"


def night_alerts(work: Path, evidence_dir: Path) -> list[Any]:
    """The alerts the engine raises on one simulated hour of the Haikou shore, replayed
    in-process, with each camera's frames pointing at a JPEG in the evidence store (as
    the camera ingest writes them), so alerts carry evidence snapshots."""
    import cv2

    from pipeline.replay import replay
    from pipeline.tools.simulate import SimConfig, simulate
    from pipeline.vision.evidence import DirectoryEvidenceStore

    night = work / "night"
    simulate(SITE, SimConfig(seed=2, start=START, duration_s=3600, fps=0.5, noise="none"), night)
    store = DirectoryEvidenceStore(evidence_dir)
    uris: dict[str, str] = {}
    frames = []
    for line in (night / "detections.jsonl").read_text().splitlines():
        d = json.loads(line)
        cam = d["camera_id"]
        if cam not in uris:
            img = np.full((240, 320, 3), (90, 60, 30), np.uint8)
            cv2.putText(img, cam, (10, 120), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
            ok, buf = cv2.imencode(".jpg", img)
            assert ok
            uris[cam] = store.put(f"{cam}/frame.jpg", buf.tobytes())
        d["evidence_uri"] = uris[cam]
        frames.append(json.dumps(d))
    (night / "detections.jsonl").write_text("\n".join(frames) + "\n")
    return replay(SITE, [night / "ais.nmea"], [night / "detections.jsonl"])


def tagged(alerts: list[Any], tag: str) -> list[Any]:
    """The same alerts under ids of their own (``<tag>-<alert id>``): the action topic is
    shared by every test of a session, so each test acts on alerts no other test saw."""
    import msgspec

    out = []
    for a in alerts:
        data = msgspec.structs.replace(a.data, alert_id=f"{tag}-{a.data.alert_id}")
        out.append(msgspec.structs.replace(a, id=f"{tag}-{a.id}", data=data))
    return out


async def publish_alerts(bootstrap: str, alerts: list[Any]) -> None:
    from connectors.kafka import RecordProducer
    from pipeline import topics

    async with RecordProducer(bootstrap) as p:
        for a in alerts:
            await p.send_and_wait(topics.ALERT, a.data.alert_id, a)


async def wait_for(
    cond: Callable[[], Awaitable[Any]], timeout_s: float = 60.0, every_s: float = 0.2
) -> Any:
    """Poll ``cond`` until it returns something truthy; its value, or AssertionError."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await cond()
        if last:
            return last
        await asyncio.sleep(every_s)
    raise AssertionError(f"condition not met within {timeout_s} s (last: {last!r})")


def make_users(path: Path) -> dict[str, str]:
    """A users file with one user of each role; returns name → password."""
    from pipeline.console.users import UsersFile

    uf = UsersFile(path)
    pw = {"olga": "operator-pass-1", "vic": "viewer-pass-1", "sam": "supervisor-pass-1"}
    uf.add("olga", pw["olga"], "operator")
    uf.add("vic", pw["vic"], "viewer")
    uf.add("sam", pw["sam"], "supervisor")
    uf.save()
    return pw


async def start(tmp: Path, bootstrap: str, **kw: Any) -> Any:
    from pipeline.console import ConsoleConfig, start_console

    cfg = ConsoleConfig(
        bootstrap=bootstrap,
        site_dir=SITE,
        users_file=kw.pop("users_file", tmp / "users.json"),
        store_url=kw.pop("store_url", f"sqlite:///{tmp / 'actions.db'}"),
        evidence_dir=kw.pop("evidence_dir", tmp / "evidence"),
        port=kw.pop("port", 0),
        **kw,
    )
    running = await start_console(cfg)
    await asyncio.wait_for(running.console.feed.ready.wait(), 60)
    return running


async def login(page: Any, base: str, user: str, password: str) -> None:
    await page.goto(base + "login")
    await page.fill("#login-user", user)
    await page.fill("#login-password", password)
    await page.click("#login-submit")
    await page.wait_for_function("() => !!(window.__sw && window.__sw.ready)", timeout=30_000)
