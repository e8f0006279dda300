"""The console's web application: aiohttp, with Server-Sent Events for the live push.

Why aiohttp and SSE: aiohttp is already installed (Faust's web layer uses it) and it runs
on the same asyncio loop as aiokafka, so one process reads Kafka and serves browsers with
no second framework. The push is one-way (server → browser; actions go up as ordinary
POSTs that carry the CSRF token), which is what SSE is for: plain HTTP, automatic
reconnection in the browser (``EventSource``), same-origin cookies, no upgrade handshake
to secure separately.

Security: sessions live in memory behind an opaque random cookie (``HttpOnly``,
``SameSite=Strict``, ``Secure`` when served over TLS or behind a TLS proxy); every
state-changing request carries the session's CSRF token in ``X-CSRF-Token`` and a
same-origin ``Origin`` when the browser sends one; logins are rate-limited per address
and per user name; the Content-Security-Policy allows scripts from the console only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web

from pipeline import topics
from pipeline.console.coverage import coast_pieces, uncovered_report
from pipeline.console.feed import STOP_TIMEOUT_S, Feed, wall_ms
from pipeline.console.history_api import HistoryApi
from pipeline.console.store import ActionStore
from pipeline.console.triage import DISMISS_REASONS, check
from pipeline.console.users import LANGS, UsersFile
from pipeline.errors import BrokerUnreachable, ConsoleError
from schemas import records

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
COOKIE = "sw_session"
DEMO_USER = "demo"


@dataclass
class ConsoleConfig:
    """How a console runs (``shorewatch console --help`` documents each option).

    :param store_url: action store, ``sqlite:///path`` or ``postgresql://...``
    :param notify_severity: new alerts at or above this severity (0–100) ring and flash
    :param escalate_severity: ``new`` alerts at or above this severity escalate ...
    :param escalate_after_s: ... after this many seconds unacknowledged
    :param coverage_range_m: how far a working camera is taken to see the shore, m
    :param session_ttl_s: a session ends after this long without a request, s
    :param tls_proxy: served behind a TLS-terminating proxy: cookies are ``Secure``
    :param archive_root: the history archive the history view queries (``None``: none)
    """

    bootstrap: str
    site_dir: Path
    users_file: Path | None
    store_url: str = "sqlite:///var/console/actions.db"
    evidence_dir: Path = Path("var/evidence")
    host: str = "127.0.0.1"
    port: int = 8080
    demo: bool = False
    notify_severity: int = 60
    escalate_severity: int = 70
    escalate_after_s: float = 120.0
    coverage_range_m: float = 5000.0
    alert_history_h: float = 24.0
    session_ttl_s: float = 8 * 3600.0
    tls_proxy: bool = False
    login_max_failures: int = 5
    login_window_s: float = 300.0
    archive_root: Path | None = None


@dataclass
class Session:
    user: str
    role: str
    csrf: str
    seen: float = field(default_factory=time.monotonic)


SESSION = web.RequestKey("session", Session)
"""The request's session (set by the security middleware; absent only on public paths)."""


class RateLimiter:
    """At most ``max_failures`` failed logins per key (address, user name) per window."""

    def __init__(self, max_failures: int, window_s: float):
        self.max_failures = max_failures
        self.window_s = window_s
        self._fails: dict[str, deque[float]] = {}

    def blocked(self, *keys: str) -> float:
        """Seconds until a login may be tried again (0: now)."""
        now = time.monotonic()
        wait = 0.0
        for k in keys:
            q = self._fails.get(k)
            while q and now - q[0] > self.window_s:
                q.popleft()
            if q and len(q) >= self.max_failures:
                wait = max(wait, self.window_s - (now - q[0]))
        return wait

    def fail(self, *keys: str) -> None:
        for k in keys:
            self._fails.setdefault(k, deque()).append(time.monotonic())

    def ok(self, *keys: str) -> None:
        for k in keys:
            self._fails.pop(k, None)


class Hub:
    """Fans events out to the browsers' SSE streams (one bounded queue each; a browser
    that falls behind is dropped and reconnects to a fresh snapshot)."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue] = set()

    def publish(self, event: str, payload: dict[str, Any]) -> None:
        data = msgspec.json.encode(payload)
        for q in list(self.queues):
            try:
                q.put_nowait((event, data))
            except asyncio.QueueFull:  # too slow: drop it, it reconnects to a snapshot
                self.queues.discard(q)
                while not q.empty():
                    q.get_nowait()
                q.put_nowait(None)


class Console:
    """One console: its feed, store, users, sessions and web routes."""

    def __init__(self, cfg: ConsoleConfig):
        from pipeline.site import load_site

        self.cfg = cfg
        if cfg.demo and cfg.host not in ("127.0.0.1", "localhost", "::1"):
            raise ConsoleError("demo mode binds 127.0.0.1 only")
        self.users = UsersFile(cfg.users_file) if cfg.users_file else None
        if not cfg.demo and (self.users is None or not self.users.users):
            raise ConsoleError(
                "no console user: add one with `shorewatch users add NAME --role operator`"
                " (or start the documented demo mode, --demo, bound to 127.0.0.1)"
            )
        self.site = load_site(cfg.site_dir)
        self.store = ActionStore(cfg.store_url)
        self.hub = Hub()
        self.sessions: dict[str, Session] = {}
        self.limiter = RateLimiter(cfg.login_max_failures, cfg.login_window_s)
        self.producer: Any = None
        self._producer_lock = asyncio.Lock()  # the feed's dead letters and the actions share it
        self.feed = Feed(
            cfg.bootstrap,
            self.store,
            self.hub.publish,
            evidence_dir=Path(cfg.evidence_dir),
            alert_history_h=cfg.alert_history_h,
            dead_letter=self._send_dead_letter,
        )
        self._coast = coast_pieces(self.site.coast_segments())
        self._site_json = self._build_site_json()

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        await self.feed.start()

    async def stop(self) -> None:
        for q in list(self.hub.queues):
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait(None)
        try:
            await self.feed.stop()
        finally:
            if self.producer is not None:
                try:
                    async with asyncio.timeout(STOP_TIMEOUT_S):
                        await self.producer.stop()
                except Exception as exc:  # noqa: BLE001 - closing: report, go on
                    log.warning("console: the action producer did not close: %r", exc)
                self.producer = None
            await asyncio.to_thread(self.store.close)  # it may wait for a write in flight

    async def _producer(self) -> Any:
        from connectors.kafka import RecordProducer

        async with self._producer_lock:  # one producer, however many ask at once
            if self.producer is None:
                p = RecordProducer(self.cfg.bootstrap, client_id="shorewatch-console", linger_ms=0)
                await p.start()
                self.producer = p
            return self.producer

    async def _send_dead_letter(self, dl: records.DeadLetter) -> None:
        p = await self._producer()
        async with asyncio.timeout(10):  # not wait_for: the feed's stop must not be lost
            await p.send_and_wait(topics.DEADLETTER, dl.source, dl)

    # ----------------------------------------------------------------- site
    def _build_site_json(self) -> dict[str, Any]:
        import shapely.geometry

        s = self.site
        cams = []
        for c in s.cameras:
            cams.append(
                {
                    "id": c.id,
                    "name": c.name,
                    "lon": c.lon,
                    "lat": c.lat,
                    "heading_deg": c.heading_deg,
                    "hfov_deg": _hfov(c),
                }
            )
        zones = [
            {
                "name": z.name,
                "kind": z.kind,
                "ring": [list(p) for p in z.polygon.exterior.coords],
            }
            for z in s.zones
        ]
        return {
            "name": s.name,
            "description": s.description,
            "timezone": str(s.timezone.key),
            "bbox": list(s.bbox),
            "land": shapely.geometry.mapping(s.land),
            "coast": s.coast_segments().round(6).tolist(),
            "zones": zones,
            "cameras": cams,
            "coverage_range_m": self.cfg.coverage_range_m,
        }

    def coverage(self) -> dict[str, Any]:
        working = []
        for c in self.site.cameras:
            st = self.feed.cameras.get(c.id)
            if st is not None and st.status in ("online", "degraded"):
                working.append((c.lon, c.lat, c.heading_deg, _hfov(c)))
        rep = uncovered_report(self._coast, working, self.cfg.coverage_range_m)
        n = len(self.site.cameras)
        rep["cameras"] = n
        rep["online"] = sum(
            1
            for c in self.site.cameras
            if (st := self.feed.cameras.get(c.id)) is not None and st.status == "online"
        )
        rep["share_online"] = round(rep["online"] / n, 4) if n else None
        return rep

    # ----------------------------------------------------------------- sessions
    def session_of(self, request: web.Request) -> Session | None:
        token = request.cookies.get(COOKIE)
        s = self.sessions.get(token) if token else None
        if s is None:
            return None
        now = time.monotonic()
        if now - s.seen > self.cfg.session_ttl_s:
            self.sessions.pop(token, None)  # type: ignore[arg-type]
            return None
        s.seen = now
        return s

    def new_session(self, resp: web.StreamResponse, request: web.Request, user: str, role: str):
        token = secrets.token_urlsafe(32)
        self.sessions[token] = Session(user, role, secrets.token_urlsafe(32))
        resp.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="Strict",
            secure=bool(request.secure or self.cfg.tls_proxy),
            path="/",
        )
        return self.sessions[token]

    # ----------------------------------------------------------------- app
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._security], client_max_size=64 * 1024)
        r = app.router
        r.add_get("/", self.index)
        r.add_get("/login", self.login_page)
        r.add_post("/api/login", self.login)
        r.add_post("/api/logout", self.logout)
        r.add_get("/api/me", self.me)
        r.add_post("/api/me/lang", self.set_lang)
        r.add_get("/api/site", self.site_view)
        r.add_get("/api/state", self.state)
        r.add_get("/api/events", self.events)
        r.add_get("/api/alerts/{alert_id}", self.alert_detail)
        r.add_post("/api/alerts/{alert_id}/actions", self.act)
        r.add_post("/api/silences", self.silence)
        r.add_get("/api/audit", self.audit)
        r.add_get("/api/vessels/{mmsi}", self.vessel)
        r.add_get("/api/coverage", self.coverage_view)
        r.add_get("/api/evidence/{path:.+}", self.evidence)
        r.add_get("/healthz", self.healthz)
        HistoryApi(self.cfg.archive_root).add_routes(r)
        r.add_static("/static/", STATIC, follow_symlinks=False)
        app.on_startup.append(lambda _app: self.start())
        app.on_cleanup.append(lambda _app: self.stop())
        return app

    _PUBLIC = frozenset({"/login", "/api/login", "/healthz"})

    @web.middleware
    async def _security(self, request: web.Request, handler):
        path = request.path
        public = path in self._PUBLIC or path.startswith("/static/")
        session = self.session_of(request)
        if session is None and self.cfg.demo and not public:
            # demo mode (127.0.0.1 only): everyone on this machine is the demo supervisor
            resp0 = web.HTTPFound("/") if path == "/" else None
            if resp0 is not None:
                self.new_session(resp0, request, DEMO_USER, "supervisor")
                raise resp0
        if session is None and not public:
            if path.startswith("/api/"):
                return _json({"error": "not logged in"}, 401)
            raise web.HTTPFound("/login")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            origin = request.headers.get("Origin")
            if origin is not None and origin != f"{request.scheme}://{request.host}":
                return _json({"error": "cross-origin request refused"}, 403)
            if session is not None:
                sent = request.headers.get("X-CSRF-Token", "")
                if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                    return _json({"error": "missing or wrong CSRF token"}, 403)
        if session is not None:
            request[SESSION] = session
        resp = await handler(request)
        resp.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
            "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        )
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        if not path.startswith("/static/"):
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    # ----------------------------------------------------------------- pages
    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def login_page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "login.html")

    async def healthz(self, request: web.Request) -> web.Response:
        return _json({"ok": True, "broker": self.feed.connected})

    # ----------------------------------------------------------------- auth API
    async def login(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            name, password = str(body["user"]), str(body["password"])
        except (ValueError, KeyError, TypeError):
            return _json({"error": "user and password expected"}, 400)
        peer = request.remote or "?"
        keys = (f"ip:{peer}", f"user:{name}")
        wait = self.limiter.blocked(*keys)
        if wait > 0:
            return _json(
                {"error": "too many failed logins", "retry_after_s": round(wait)},
                429,
                headers={"Retry-After": str(int(wait) + 1)},
            )
        user = self.users.verify(name, password) if self.users else None
        if user is None:
            self.limiter.fail(*keys)
            return _json({"error": "wrong user or password"}, 401)
        self.limiter.ok(*keys)
        old = request.cookies.get(COOKIE)
        if old:
            self.sessions.pop(old, None)
        resp = _json({"user": user.name, "role": user.role})
        s = self.new_session(resp, request, user.name, user.role)
        resp.text = json.dumps({"user": user.name, "role": user.role, "csrf": s.csrf})
        return resp

    async def logout(self, request: web.Request) -> web.Response:
        token = request.cookies.get(COOKIE)
        if token:
            self.sessions.pop(token, None)
        resp = _json({"ok": True})
        resp.del_cookie(COOKIE, path="/")
        return resp

    async def me(self, request: web.Request) -> web.Response:
        s = request[SESSION]
        lang = None
        if self.users and s.user in self.users.users:
            lang = self.users.users[s.user].lang
        return _json(
            {
                "user": s.user,
                "role": s.role,
                "csrf": s.csrf,
                "lang": lang,
                "demo": self.cfg.demo,
                "notify_severity": self.cfg.notify_severity,
                "escalate_severity": self.cfg.escalate_severity,
                "escalate_after_s": self.cfg.escalate_after_s,
                "dismiss_reasons": list(DISMISS_REASONS),
                "users": sorted(self.users.users) if self.users else [DEMO_USER],
            }
        )

    async def set_lang(self, request: web.Request) -> web.Response:
        s = request[SESSION]
        body = await _body(request)
        lang = body.get("lang")
        if lang is not None and lang not in LANGS:
            return _json({"error": f"language must be one of {', '.join(LANGS)}"}, 400)
        if self.users and s.user in self.users.users:
            self.users.set_lang(s.user, lang)
            try:
                await asyncio.to_thread(self.users.save)
            except OSError as exc:  # a read-only users file (a mounted secret): keep it in memory
                log.warning("console: language of %s not saved: %s", s.user, exc)
        return _json({"lang": lang})

    # ----------------------------------------------------------------- views
    async def site_view(self, request: web.Request) -> web.Response:
        return _json(self._site_json)

    async def state(self, request: web.Request) -> web.Response:
        snap = self.feed.snapshot()
        snap["coverage"] = self.coverage()
        return _json(snap)

    async def coverage_view(self, request: web.Request) -> web.Response:
        return _json(self.coverage())

    async def events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await resp.prepare(request)
        q: asyncio.Queue = asyncio.Queue(maxsize=10_000)
        self.hub.queues.add(q)
        try:
            snap = self.feed.snapshot()
            snap["coverage"] = self.coverage()
            await resp.write(b"event: snapshot\ndata: " + msgspec.json.encode(snap) + b"\n\n")
            while True:
                try:
                    async with asyncio.timeout(15):  # keeps a shutdown's cancellation
                        item = await q.get()
                except TimeoutError:
                    await resp.write(b": keep-alive\n\n")
                    continue
                if item is None:
                    break
                event, data = item
                chunks = [b"event: ", event.encode(), b"\ndata: ", data, b"\n\n"]
                while not q.empty():  # coalesce what is queued into one write
                    nxt = q.get_nowait()
                    if nxt is None:
                        break
                    chunks += [b"event: ", nxt[0].encode(), b"\ndata: ", nxt[1], b"\n\n"]
                await resp.write(b"".join(chunks))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.hub.queues.discard(q)
        return resp

    async def alert_detail(self, request: web.Request) -> web.Response:
        alert_id = request.match_info["alert_id"]
        e = self.feed.alerts.get(alert_id)
        if e is None:
            return _json({"error": "no such alert"}, 404)
        rows = await asyncio.to_thread(self.store.audit, alert_id=alert_id, limit=200)
        d = self.feed.alert_json(e)
        d["actions"] = [msgspec.to_builtins(r.action) for r in rows]
        return _json(d)

    async def vessel(self, request: web.Request) -> web.Response:
        try:
            mmsi = int(request.match_info["mmsi"])
        except ValueError:
            return _json({"error": "bad MMSI"}, 400)
        v = self.feed.vessel_json(mmsi)
        return _json(v) if v is not None else _json({"error": "no such vessel"}, 404)

    async def audit(self, request: web.Request) -> web.Response:
        q = request.query

        def num(k: str) -> int | None:
            return int(q[k]) if q.get(k, "").lstrip("-").isdigit() else None

        rows = await asyncio.to_thread(
            self.store.audit,
            user=q.get("user") or None,
            alert_id=q.get("alert") or None,
            since_t_ms=num("since_t_ms"),
            until_t_ms=num("until_t_ms"),
            limit=min(num("limit") or 500, 5000),
        )
        return _json({"actions": [msgspec.to_builtins(r.action) for r in rows]})

    async def evidence(self, request: web.Request) -> web.StreamResponse:
        root = Path(self.cfg.evidence_dir).resolve()
        try:
            path = (root / request.match_info["path"]).resolve()
        except (OSError, ValueError):
            raise web.HTTPNotFound() from None
        if root not in path.parents or not path.is_file():
            raise web.HTTPNotFound()
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})

    # ----------------------------------------------------------------- actions
    async def act(self, request: web.Request) -> web.Response:
        s = request[SESSION]
        alert_id = request.match_info["alert_id"]
        body = await _body(request)
        kind = str(body.get("action", ""))
        if s.role == "viewer":
            return _json({"error": "a viewer cannot act on alerts"}, 403)
        entry = self.feed.alerts.get(alert_id)
        if entry is None:
            return _json({"error": "no such alert"}, 404)
        if kind not in _ACTIONS:
            return _json({"error": f"unknown action {kind!r}"}, 400)
        assignee = body.get("assignee")
        if kind == "assign":
            assignee = str(assignee or s.user)
            known = set(self.users.users) if self.users else {DEMO_USER}
            if assignee not in known:
                return _json({"error": f"no user {assignee!r}"}, 400)
        action = records.AlertAction(
            action_id=str(uuid.uuid4()),
            alert_id=alert_id,
            action=kind,  # type: ignore[arg-type]
            t_ms=wall_ms(),
            user=s.user,
            role=s.role,  # type: ignore[arg-type]
            site=self.site.name,
            assignee=assignee if kind == "assign" else None,
            reason=str(body["reason"]) if body.get("reason") else None,
            text=str(body["text"])[:2000] if body.get("text") else None,
        )
        why = check(action, self.feed.board.get(alert_id), assignee in (None, s.user))
        if why is not None:
            return _json({"error": why}, 403 if why.startswith(("role", "only")) else 409)
        return await self._publish(action)

    async def silence(self, request: web.Request) -> web.Response:
        s = request[SESSION]
        if s.role == "viewer":
            return _json({"error": "a viewer cannot silence"}, 403)
        body = await _body(request)
        try:
            minutes = float(body.get("minutes", 60))
            mmsi = int(body["mmsi"]) if body.get("mmsi") is not None else None
            lonlat = [float(body["lon"]), float(body["lat"])] if "lon" in body else None
            radius = float(body.get("radius_m", 500)) if lonlat else None
        except (TypeError, ValueError):
            return _json({"error": "bad silence"}, 400)
        if not 0 < minutes <= 24 * 60:
            return _json({"error": "a silence lasts 1 minute to 24 hours"}, 400)
        now = wall_ms()
        action = records.AlertAction(
            action_id=str(uuid.uuid4()),
            alert_id=str(body.get("alert_id") or (f"mmsi:{mmsi}" if mmsi else "place")),
            action="silence",
            t_ms=now,
            user=s.user,
            role=s.role,  # type: ignore[arg-type]
            site=self.site.name,
            text=str(body["text"])[:2000] if body.get("text") else None,
            silence_until_t_ms=now + int(minutes * 60_000),
            silence_mmsi=mmsi,
            silence_lonlat=lonlat,
            silence_radius_m=radius,
        )
        why = check(action, self.feed.board.get(action.alert_id))
        if why is not None:
            return _json({"error": why}, 400)
        return await self._publish(action)

    async def _publish(self, action: records.AlertAction) -> web.Response:
        try:
            p = await self._producer()
            async with asyncio.timeout(10):
                await p.send_and_wait(topics.ALERT_ACTION, action.alert_id, action)
        except (BrokerUnreachable, TimeoutError, OSError) as exc:
            self.producer = None
            return _json({"error": f"the broker did not take the action: {exc}"}, 503)
        except Exception as exc:  # noqa: BLE001 - aiokafka's errors: report, do not crash
            return _json({"error": f"the broker did not take the action: {exc}"}, 503)
        return _json({"action": msgspec.to_builtins(action)}, 202)


_ACTIONS = frozenset(
    {"acknowledge", "start", "assign", "escalate", "resolve", "dismiss", "comment", "reopen"}
)


def _hfov(c: Any) -> float:
    import math

    if c.hfov_deg is not None:
        return float(c.hfov_deg)
    if c.fx:
        return math.degrees(2 * math.atan(c.image_width / 2 / c.fx))
    return 60.0


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(obj),
        status=status,
        content_type="application/json",
        headers=headers,
    )


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="JSON body expected") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="JSON object expected")
    return body


@dataclass
class RunningConsole:
    """A console serving in the current event loop; :meth:`stop` ends it."""

    console: Console
    runner: web.AppRunner
    url: str

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_console(cfg: ConsoleConfig) -> RunningConsole:
    """Start a console on ``cfg.host:cfg.port`` (port 0: a free one) in the running loop.

    :returns: the running console; its ``url`` is what to open in a browser
    :raises ConsoleError: no user outside demo mode, a demo not bound to 127.0.0.1
    """
    console = Console(cfg)
    runner = web.AppRunner(console.app(), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, cfg.host, cfg.port)
    await site.start()
    port = cfg.port
    sockets = getattr(site._server, "sockets", None)
    if sockets:
        port = sockets[0].getsockname()[1]
    host = cfg.host if ":" not in cfg.host else f"[{cfg.host}]"
    return RunningConsole(console, runner, f"http://{host}:{port}/")
