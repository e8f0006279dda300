"""The console's history view: past tracks and alerts from the archive (DuckDB).

``GET /api/history/near?lon=&lat=&radius_m=&from=&to=`` — vessels, camera targets and alerts
within the radius in the window (:func:`pipeline.history.query.near`);
``GET /api/history/track?mmsi=&from=&to=`` — a vessel's archived fixes in time order;
``GET /api/history/alerts?from=&to=[&kind=]`` — the alerts raised in the window, each with
its last event in it; ``GET /api/history/landing-sites?from=&to=`` — the hidden landing
sites published in the window (alerts of kind ``landing_site``, their latest finding). Times are ISO 8601 (with a zone; none is UTC) or ms since the epoch,
``to`` exclusive. A bad parameter is a 400 with the reason; a console without an archive
(``--archive``) answers 404. Queries run in a worker thread, one archive connection each,
so a long one never stalls the live feed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from pipeline.errors import QueryError
from pipeline.history.layout import ALERTS

#: a window longer than this is refused (a query of the whole archive belongs in the CLI)
MAX_WINDOW_MS = 92 * 86_400_000

#: at most this many fixes of a track and alerts of a window are returned
MAX_ROWS = 50_000


def _json(obj: Any, status: int = 200) -> web.Response:
    import json

    return web.Response(
        text=json.dumps(obj, default=str), status=status, content_type="application/json"
    )


def _window(q: Any) -> tuple[int, int]:
    from pipeline.history.query import check_range, parse_time_ms

    if "from" not in q or "to" not in q:
        raise QueryError("from and to are required")
    from_ms, to_ms = parse_time_ms(q["from"]), parse_time_ms(q["to"])
    check_range(from_ms, to_ms)
    if to_ms - from_ms > MAX_WINDOW_MS:
        raise QueryError("the window is longer than 92 days: narrow it")
    return from_ms, to_ms


def _number(q: Any, name: str, kind: type = float) -> Any:
    try:
        return kind(q[name])
    except KeyError:
        raise QueryError(f"{name} is required") from None
    except ValueError:
        raise QueryError(f"{name}: not a number: {q[name]!r}") from None


class HistoryApi:
    """The history routes of a console over the archive at ``root`` (``None``: no archive)."""

    def __init__(self, root: Path | None):
        self.root = Path(root) if root else None

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/history/near", self.near)
        router.add_get("/api/history/track", self.track)
        router.add_get("/api/history/alerts", self.alerts)
        router.add_get("/api/history/landing-sites", self.landing_sites)

    async def _run(self, request: web.Request, fn: Any) -> web.Response:
        from pipeline.history.query import Archive

        if self.root is None:
            return _json({"error": "this console has no archive (--archive)"}, 404)
        root = self.root

        def work() -> Any:
            archive = Archive(root)
            out = fn(archive, request.query)
            if isinstance(out, dict):
                out["skipped_files"] = [p for p, _ in archive.skipped]
            return out

        try:
            return _json(await asyncio.to_thread(work))
        except QueryError as exc:
            return _json({"error": str(exc)}, 400)

    async def near(self, request: web.Request) -> web.Response:
        def fn(archive: Any, q: Any) -> dict[str, Any]:
            from pipeline.history.query import near

            from_ms, to_ms = _window(q)
            lon, lat = _number(q, "lon"), _number(q, "lat")
            radius_m = _number(q, "radius_m") if "radius_m" in q else 500.0
            res = near(archive, lon, lat, radius_m, from_ms, to_ms)
            return {"from_t_ms": from_ms, "to_t_ms": to_ms, **res}

        return await self._run(request, fn)

    async def track(self, request: web.Request) -> web.Response:
        def fn(archive: Any, q: Any) -> dict[str, Any]:
            from pipeline.history.query import track

            from_ms, to_ms = _window(q)
            mmsi = _number(q, "mmsi", int)
            rows = track(archive, mmsi, from_ms, to_ms)
            return {
                "mmsi": mmsi,
                "n_fixes": len(rows),
                "truncated": len(rows) > MAX_ROWS,
                # [lon, lat, t_ms, sog_kn] per fix
                "fixes": [[r["lon"], r["lat"], r["t_ms"], r["sog_kn"]] for r in rows[:MAX_ROWS]],
            }

        return await self._run(request, fn)

    async def alerts(self, request: web.Request) -> web.Response:
        def fn(archive: Any, q: Any) -> dict[str, Any]:
            from_ms, to_ms = _window(q)
            kind = q.get("kind") or None
            rows: list[dict[str, Any]] = []
            if archive.view("a", ALERTS, from_ms, to_ms):
                rows = archive.query(
                    """
                    SELECT alert_id, arg_max(kind, seq) AS kind, arg_max(status, seq) AS status,
                           max(severity) AS severity, min(t_ms) AS first_t_ms,
                           max(t_ms) AS last_t_ms, arg_max(lon, seq) AS lon,
                           arg_max(lat, seq) AS lat, any_value(mmsi) AS mmsi,
                           bool_or(dark) AS dark, count(*) AS events
                    FROM a WHERE t_ms >= ? AND t_ms < ? AND (? IS NULL OR kind = ?)
                    GROUP BY alert_id ORDER BY first_t_ms, alert_id LIMIT ?
                    """,
                    [from_ms, to_ms, kind, kind, MAX_ROWS],
                ).to_pylist()
            return {"from_t_ms": from_ms, "to_t_ms": to_ms, "alerts": rows}

        return await self._run(request, fn)

    async def landing_sites(self, request: web.Request) -> web.Response:
        def fn(archive: Any, q: Any) -> dict[str, Any]:
            import json

            from_ms, to_ms = _window(q)
            sites: list[dict[str, Any]] = []
            if archive.view("a", ALERTS, from_ms, to_ms):
                rows = archive.query(
                    """
                    SELECT alert_id, arg_max(record, seq) AS record, max(t_ms) AS last_t_ms
                    FROM a WHERE t_ms >= ? AND t_ms < ? AND kind = 'landing_site'
                    GROUP BY alert_id ORDER BY alert_id LIMIT ?
                    """,
                    [from_ms, to_ms, MAX_ROWS],
                ).to_pylist()
                for r in rows:
                    finding = (json.loads(r["record"]).get("data") or {}).get("landing_site")
                    if finding:
                        sites.append({"alert_id": r["alert_id"], "last_t_ms": r["last_t_ms"],
                                      **finding})  # fmt: skip
            return {"from_t_ms": from_ms, "to_t_ms": to_ms, "landing_sites": sites}

        return await self._run(request, fn)
