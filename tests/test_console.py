"""The console's HTTP API against the real broker: sessions, roles, CSRF, rate limiting,
actions through the action topic, a malformed action record dead-lettered."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from pathlib import Path

import aiohttp
import msgspec
import pytest
from aiokafka import AIOKafkaProducer
from console_helpers import make_users, publish_alerts, start, tagged, wait_for
from test_worker_kafka import TopicTail

from pipeline import topics
from schemas import records

#: no request of these tests may hang the session
TIMEOUT = aiohttp.ClientTimeout(total=60)


def jar() -> aiohttp.CookieJar:
    return aiohttp.CookieJar(unsafe=True)  # the console is on 127.0.0.1


async def login(s: aiohttp.ClientSession, base: str, user: str, pw: str) -> str:
    r = await s.post(base + "api/login", json={"user": user, "password": pw})
    assert r.status == 200, await r.text()
    return (await r.json())["csrf"]


@pytest.mark.integration
async def test_sessions_roles_and_csrf(kafka_bootstrap: str, night, tmp_path: Path) -> None:
    alerts, evidence = night
    pw = make_users(tmp_path / "users.json")
    mine = tagged(alerts, f"sec{uuid.uuid4().hex[:6]}")
    running = await start(tmp_path, kafka_bootstrap, evidence_dir=evidence)
    base = running.url
    try:
        await publish_alerts(kafka_bootstrap, mine)
        target = mine[0].data.alert_id
        async with aiohttp.ClientSession(cookie_jar=jar(), timeout=TIMEOUT) as anon:
            r = await anon.get(base + "api/state")
            assert r.status == 401
            r = await anon.get(base, allow_redirects=False)
            assert r.status == 302 and r.headers["Location"] == "/login"
            r = await anon.post(
                base + f"api/alerts/{target}/actions", json={"action": "acknowledge"}
            )
            assert r.status == 401

        # wrong passwords are refused, and after five the user name is locked out
        async with aiohttp.ClientSession(cookie_jar=jar(), timeout=TIMEOUT) as s:
            for _ in range(5):
                r = await s.post(base + "api/login", json={"user": "olga", "password": "nope-nope"})
                assert r.status == 401
            r = await s.post(base + "api/login", json={"user": "olga", "password": pw["olga"]})
            assert r.status == 429 and int(r.headers["Retry-After"]) > 0
        running.console.limiter.ok("user:olga", "ip:127.0.0.1")

        async with aiohttp.ClientSession(cookie_jar=jar(), timeout=TIMEOUT) as viewer:
            csrf = await login(viewer, base, "vic", pw["vic"])
            await wait_for(lambda: _has_alert(viewer, base, target))
            r = await viewer.post(
                base + f"api/alerts/{target}/actions",
                json={"action": "acknowledge"},
                headers={"X-CSRF-Token": csrf},
            )
            assert r.status == 403

        async with aiohttp.ClientSession(cookie_jar=jar(), timeout=TIMEOUT) as op:
            r = await op.post(base + "api/login", json={"user": "olga", "password": pw["olga"]})
            cookie = r.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert "Secure" not in cookie  # plain HTTP on 127.0.0.1; Secure behind TLS
            csrf = (await r.json())["csrf"]
            url = base + f"api/alerts/{target}/actions"
            from yarl import URL

            for p in ("..%2F..%2F..%2Fetc%2Fpasswd", "%2E%2E/%2E%2E/etc/passwd"):
                r = await op.get(URL(base + "api/evidence/" + p, encoded=True))
                assert r.status in (403, 404)
            snap = mine[0].data.evidence.snapshot_uris
            d = await (await op.get(base + f"api/alerts/{target}")).json()
            assert len(d["evidence_urls"]) == len(snap)
            for u in d["evidence_urls"]:
                r = await op.get(base + u.lstrip("/"))
                assert r.status == 200 and r.headers["Content-Type"] == "image/jpeg"
            r = await op.post(url, json={"action": "acknowledge"})
            assert r.status == 403 and "CSRF" in (await r.json())["error"]
            r = await op.post(url, json={"action": "acknowledge"}, headers={"X-CSRF-Token": "x"})
            assert r.status == 403
            r = await op.post(
                url,
                json={"action": "acknowledge"},
                headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"},
            )
            assert r.status == 403
            r = await op.post(url, json={"action": "dismiss"}, headers={"X-CSRF-Token": csrf})
            assert r.status == 409  # a dismissal needs a reason from the list
            r = await op.post(url, json={"action": "acknowledge"}, headers={"X-CSRF-Token": csrf})
            assert r.status == 202, await r.text()

            async def acked():
                d = await (await op.get(base + f"api/alerts/{target}")).json()
                return d["triage"]["state"] == "acknowledged" and d

            d = await wait_for(acked)
            assert d["triage"]["acked_by"] == "olga"
            assert [a["action"] for a in d["actions"]] == ["acknowledge"]
            audit = await (await op.get(base + "api/audit?user=olga&alert=" + target)).json()
            assert [a["action"] for a in audit["actions"]] == ["acknowledge"]
            r = await op.post(base + "api/logout", headers={"X-CSRF-Token": csrf})
            assert r.status == 200
            assert (await op.get(base + "api/state")).status == 401
    finally:
        await running.stop()


def _raw_of(value: bytes) -> bytes | None:
    dl = msgspec.json.decode(value, type=records.DeadLetter)
    return base64.b64decode(dl.raw_b64) if dl.stage == "console.action" else None


async def _has_alert(s: aiohttp.ClientSession, base: str, alert_id: str) -> bool:
    r = await s.get(base + f"api/alerts/{alert_id}")
    return r.status == 200


@pytest.mark.integration
async def test_a_malformed_action_record_is_dead_lettered(
    kafka_bootstrap: str, night, tmp_path: Path
) -> None:
    alerts, evidence = night
    pw = make_users(tmp_path / "users.json")
    mine = tagged(alerts[:2], f"dl{uuid.uuid4().hex[:6]}")
    running = await start(tmp_path, kafka_bootstrap, evidence_dir=evidence)
    dead = TopicTail(kafka_bootstrap, topics.DEADLETTER.name)
    await dead.start()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await publish_alerts(kafka_bootstrap, mine)
        target = mine[0].data.alert_id
        bad = b'{"action_id": 7, "alert_id": "' + target.encode() + b'", "action": "explode"}'
        await producer.send_and_wait(topics.ALERT_ACTION.name, bad, key=target.encode())
        # (a console with a new store re-reads the whole topic: earlier sessions' bad
        # records on a long-lived broker are dead-lettered again; pick this one out)
        got = await dead.collect(1, lambda v: _raw_of(v) == bad, 60)
        assert got, "no dead letter for the malformed action record"
        dl = msgspec.json.decode(got[0][1], type=records.DeadLetter)
        assert (
            dl.reason == "undecodable_record"
            and dl.stage == "console.action"
            and dl.source.startswith("console:")
        )
        assert running.console.feed.counters["dead_letters_total"] >= 1
        # the console keeps running and keeps applying actions
        async with aiohttp.ClientSession(cookie_jar=jar(), timeout=TIMEOUT) as op:
            csrf = await login(op, running.url, "olga", pw["olga"])
            await wait_for(lambda: _has_alert(op, running.url, target))
            r = await op.post(
                running.url + f"api/alerts/{target}/actions",
                json={"action": "comment", "text": "still here"},
                headers={"X-CSRF-Token": csrf},
            )
            assert r.status == 202

            async def commented():
                d = await (await op.get(running.url + f"api/alerts/{target}")).json()
                return d["triage"]["n_comments"] == 1

            await wait_for(commented)
    finally:
        await producer.stop()
        await dead.stop()
        await running.stop()


@pytest.mark.integration
async def test_actions_survive_a_lost_store(kafka_bootstrap: str, night, tmp_path: Path) -> None:
    """The store is a copy of the topic: delete it and the next console rebuilds it."""
    alerts, evidence = night
    pw = make_users(tmp_path / "users.json")
    mine = tagged(alerts[:1], f"rb{uuid.uuid4().hex[:6]}")
    target = mine[0].data.alert_id
    running = await start(tmp_path, kafka_bootstrap, evidence_dir=evidence)
    try:
        await publish_alerts(kafka_bootstrap, mine)
        async with aiohttp.ClientSession(cookie_jar=jar(), timeout=TIMEOUT) as op:
            csrf = await login(op, running.url, "olga", pw["olga"])
            await wait_for(lambda: _has_alert(op, running.url, target))
            r = await op.post(
                running.url + f"api/alerts/{target}/actions",
                json={"action": "start"},
                headers={"X-CSRF-Token": csrf},
            )
            assert r.status == 202
            await wait_for(lambda: asyncio.sleep(0, running.console.feed.board.get(target).state))
            await wait_for(
                lambda: asyncio.sleep(
                    0, running.console.feed.board.get(target).state == "in_progress"
                )
            )
    finally:
        await running.stop()
    for f in tmp_path.glob("actions.db*"):
        f.unlink()
    running = await start(tmp_path, kafka_bootstrap, evidence_dir=evidence)
    try:
        await wait_for(
            lambda: asyncio.sleep(0, running.console.feed.board.get(target).state == "in_progress")
        )
        rows = running.console.store.audit(alert_id=target)
        assert [r.action.action for r in rows] == ["start"]
    finally:
        await running.stop()


@pytest.mark.integration
async def test_a_console_on_postgresql_keeps_its_actions_across_restarts(
    kafka_bootstrap: str, night, tmp_path: Path, postgres_url: str
) -> None:
    """``store_url`` pointing at a real PostgreSQL server: the action lands there, and a
    restarted console reads it back once (resuming from its stored offsets, no copy)."""
    from pipeline.console.store import ActionStore

    alerts, evidence = night
    pw = make_users(tmp_path / "users.json")
    mine = tagged(alerts[:1], f"pg{uuid.uuid4().hex[:6]}")
    target = mine[0].data.alert_id
    running = await start(tmp_path, kafka_bootstrap, evidence_dir=evidence, store_url=postgres_url)
    try:
        assert running.console.store.kind == "postgresql"
        await publish_alerts(kafka_bootstrap, mine)
        async with aiohttp.ClientSession(cookie_jar=jar(), timeout=TIMEOUT) as op:
            csrf = await login(op, running.url, "olga", pw["olga"])
            await wait_for(lambda: _has_alert(op, running.url, target))
            r = await op.post(
                running.url + f"api/alerts/{target}/actions",
                json={"action": "acknowledge"},
                headers={"X-CSRF-Token": csrf},
            )
            assert r.status == 202
            await wait_for(
                lambda: asyncio.sleep(
                    0, running.console.feed.board.get(target).state == "acknowledged"
                )
            )
    finally:
        await running.stop()
    direct = ActionStore(postgres_url)
    try:
        assert [r.action.action for r in direct.audit(alert_id=target)] == ["acknowledge"]
        assert direct.offsets(), "the console stored its read offsets"
    finally:
        direct.close()
    running = await start(tmp_path, kafka_bootstrap, evidence_dir=evidence, store_url=postgres_url)
    try:
        await wait_for(
            lambda: asyncio.sleep(0, running.console.feed.board.get(target).state == "acknowledged")
        )
        rows = running.console.store.audit(alert_id=target)
        assert [r.action.action for r in rows] == ["acknowledge"]
    finally:
        await running.stop()


@pytest.mark.integration
async def test_camera_health_and_uncovered_shore(
    kafka_bootstrap: str, night, tmp_path: Path
) -> None:
    from console_helpers import SITE

    from connectors.kafka import RecordProducer
    from pipeline.site import load_site

    pw = make_users(tmp_path / "users.json")
    site = load_site(SITE)
    running = await start(tmp_path, kafka_bootstrap, evidence_dir=night[1])
    try:
        async with aiohttp.ClientSession(cookie_jar=jar(), timeout=TIMEOUT) as op:
            await login(op, running.url, "vic", pw["vic"])
            before = await (await op.get(running.url + "api/coverage")).json()
            now_ms = int(time.time() * 1000)
            cams = site.cameras[:3]
            async with RecordProducer(kafka_bootstrap) as p:
                for c, status in zip(cams, ("online", "online", "offline"), strict=True):
                    st = records.CameraStatus(
                        camera_id=c.id,
                        t_ms=now_ms + 1,  # newer than any report of earlier tests
                        status=status,  # type: ignore[arg-type]
                        reason="rtsp timeout" if status == "offline" else None,
                        fps=None if status == "offline" else 5.0,
                        last_frame_t_ms=now_ms,
                    )
                    await p.send_and_wait(topics.CAMERA_STATUS, c.id, st)

            async def updated():
                d = await (await op.get(running.url + "api/coverage")).json()
                states = {c.id: running.console.feed.cameras.get(c.id) for c in cams}
                ok = all(s is not None and s.t_ms == now_ms + 1 for s in states.values())
                return ok and d

            after = await wait_for(updated)
            assert after["cameras"] == len(site.cameras)
            assert after["online"] >= 2
            assert after["share_online"] == round(after["online"] / len(site.cameras), 4)
            assert after["coast_km"] == before["coast_km"]
            assert after["uncovered_km"] < after["coast_km"]
            offline = running.console.feed.cameras[cams[2].id]
            assert (offline.status, offline.reason) == ("offline", "rtsp timeout")
    finally:
        await running.stop()
