"""The ``shorewatch history`` commands: run a query, print text or JSON, export tracks."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from typing import Any

from pipeline.errors import QueryError
from pipeline.history import query as q

__all__ = ["run"]

DAY_MS = 86_400_000


def _iso(t_ms: Any) -> str:
    return q._iso(int(t_ms)) if t_ms is not None else "-"


def _range(args: argparse.Namespace, nights: int | None = None) -> tuple[int, int]:
    to_ms = q.parse_time_ms(args.to) if args.to else int(time.time() * 1000)
    if args.from_:
        from_ms = q.parse_time_ms(args.from_)
    elif nights:
        from_ms = to_ms - nights * DAY_MS
    else:
        raise QueryError("--from is required (or --nights N for the N days before --to)")
    q.check_range(from_ms, to_ms)
    return from_ms, to_ms


def _skipped(archive: q.Archive) -> list[dict[str, str]]:
    for path, reason in archive.skipped:
        print(
            f"shorewatch: error: skipped unreadable Parquet file {path}: {reason}", file=sys.stderr
        )
    return [{"file": p, "reason": r} for p, r in archive.skipped]


def _dump(doc: Any) -> None:
    print(json.dumps(doc, default=str, ensure_ascii=False))


def run(args: argparse.Namespace) -> int:
    cmd = args.history_cmd
    archive = q.Archive(args.root, threads=q.env_threads())
    if cmd == "near":
        lon, lat = q.parse_point(args.point)
        from_ms, to_ms = _range(args, args.nights)
        hours = q.parse_hours(args.hours, args.utc_offset) if args.hours else None
        res = q.near(archive, lon, lat, args.radius_m, from_ms, to_ms, hours)
        skipped = _skipped(archive)
        if args.json:
            _dump({"point": [lon, lat], "radius_m": args.radius_m, "from_ms": from_ms,
                   "to_ms": to_ms, **res, "skipped_files": skipped})  # fmt: skip
            return 0
        print(f"within {args.radius_m:g} m of {lon:.5f},{lat:.5f}, {_iso(from_ms)} .. {_iso(to_ms)}"
              + (f", hours {args.hours} (UTC{args.utc_offset})" if hours else ""))  # fmt: skip
        print(f"vessels (AIS): {len(res['vessels'])}")
        for r in res["vessels"]:
            print(f"  {r['mmsi']:>9}  {_iso(r['first_t_ms'])} .. {_iso(r['last_t_ms'])}  "
                  f"fixes {r['fixes']}  nights {r['nights']}  closest {r['closest_m']:.0f} m "
                  f"at {_iso(r['closest_t_ms'])}")  # fmt: skip
        print(f"camera targets: {len(res['camera_targets'])}")
        for r in res["camera_targets"]:
            print(f"  {r['camera_id']}#{r['track_id']}  {_iso(r['first_t_ms'])} .. "
                  f"{_iso(r['last_t_ms'])}  detections {r['detections']}  closest "
                  f"{r['closest_m']:.0f} m at {_iso(r['closest_t_ms'])}")  # fmt: skip
        print(f"alerts: {len(res['alerts'])}")
        for r in res["alerts"]:
            print(f"  {r['kind']:<16} {r['alert_id']}  {_iso(r['first_t_ms'])}  "
                  f"{'dark ' if r['dark'] else ''}mmsi {r['mmsi']}  closest {r['closest_m']:.0f} m")  # fmt: skip
        return 0
    if cmd == "track":
        from_ms, to_ms = _range(args)
        rows = q.track(archive, args.mmsi, from_ms, to_ms)
        skipped = _skipped(archive)
        if args.geojson:
            with open(args.geojson, "w") as f:
                json.dump(q.track_geojson(rows, args.mmsi), f)
        if args.csv:
            with open(args.csv, "w", newline="") as f:
                w = csv.writer(f)
                cols = ["mmsi", "t_ms", "time", "lon", "lat", "sog_kn", "cog_deg",
                        "heading_deg", "nav_status", "source"]  # fmt: skip
                w.writerow(cols)
                for r in rows:
                    w.writerow([_iso(r["t_ms"]) if c == "time" else r[c] for c in cols])
        if args.json:
            _dump({"mmsi": args.mmsi, "from_ms": from_ms, "to_ms": to_ms, "positions": rows,
                   "skipped_files": skipped})  # fmt: skip
        elif not (args.geojson or args.csv):
            for r in rows:
                print(f"{_iso(r['t_ms'])}  {r['lon']:.6f} {r['lat']:.6f}  "
                      f"sog {r['sog_kn'] if r['sog_kn'] is not None else '-'} kn")  # fmt: skip
            print(f"{len(rows)} positions", file=sys.stderr)
        return 0
    if cmd == "sql":
        table = q.sql(archive, args.text)
        skipped = _skipped(archive)
        if args.json:
            _dump({"columns": table.column_names, "rows": table.to_pylist(),
                   "skipped_files": skipped})  # fmt: skip
        else:
            print("\t".join(table.column_names))
            for r in table.to_pylist():
                print("\t".join("" if v is None else str(v) for v in r.values()))
        return 0
    if cmd == "landing-sites":
        return _landing_sites(args, archive)
    raise QueryError(f"unknown history command {cmd!r}")


def _landing_sites(args: argparse.Namespace, archive: q.Archive) -> int:
    """``shorewatch history landing-sites``."""
    import asyncio

    from pipeline.history.landing import LandingParams, find_landing_sites, finding_alerts, publish
    from pipeline.site import load_site
    from schemas.records import Alert

    site = load_site(args.site)
    params = LandingParams(min_nights=args.min_nights)
    while True:
        if args.to is None and args.from_ is None:
            to_ms = int(time.time() * 1000)
            from_ms = to_ms - int(args.days * DAY_MS)
        else:
            from_ms, to_ms = _range(argparse.Namespace(**{**vars(args), "from_": args.from_ or None}),
                                    nights=int(args.days))  # fmt: skip
        findings = find_landing_sites(archive, site, from_ms, to_ms, params)
        published: list[Alert] = []
        if args.publish:
            published = finding_alerts(findings, site, archive.root, int(time.time() * 1000))
            if published:
                asyncio.run(publish(published))
        skipped = _skipped(archive)
        if args.json:
            import msgspec

            _dump({"from_ms": from_ms, "to_ms": to_ms,
                   "findings": msgspec.to_builtins(findings),
                   "published": [a.id for a in published], "skipped_files": skipped})  # fmt: skip
        else:
            print(
                f"landing sites of {site.name}, {q._iso(from_ms)} .. {q._iso(to_ms)}: {len(findings)}"
            )
            for f in findings:
                print(f"  {f.lon:.5f},{f.lat:.5f}  r {f.radius_m:.0f} m  nights {len(f.nights)} "
                      f"({', '.join(f.nights)})  visits {f.visits} (dark {f.dark_visits})  "
                      f"vessels {', '.join(map(str, f.mmsis + f.camera_targets))}  "  # type: ignore[operator]
                      f"alerts {len(f.alert_ids)}")  # fmt: skip
            if args.publish:
                print(f"published {len(published)} alert(s)")
        every = getattr(args, "every_h", None)
        if not every:
            return 0
        time.sleep(every * 3600)
