"""The ``registry`` and ``watchlist`` commands: what they print and return."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from pipeline.registry.importer import import_file
from pipeline.registry.store import Registry
from pipeline.settings import Settings

__all__ = ["cmd_import", "cmd_show", "cmd_watch_add", "cmd_watch_list", "cmd_watch_remove"]


def _open(args: argparse.Namespace) -> Registry:
    url = args.registry_url or Settings.from_env(getattr(args, "settings", None)).registry_url
    return Registry.open(url)


def cmd_import(args: argparse.Namespace) -> int:
    """Import files; exit 1 when any row was rejected (every one is listed)."""
    reg = _open(args)
    bad = 0
    for path in args.files:
        report = import_file(reg, path)
        bad += len(report.rejected)
        if args.json:
            print(json.dumps(report.as_dict(), ensure_ascii=False))
            continue
        print(f"{path}: {report.read} rows, {report.written} written, "
              f"{len(report.rejected)} rejected")  # fmt: skip
        for line, reason in report.rejected:
            print(f"  line {line}: {reason}")
    return 1 if bad else 0


def cmd_show(args: argparse.Namespace) -> int:
    """Vessels matching a query (MMSI, registration or hull number, part of a name)."""
    reg = _open(args)
    found = reg.search(args.query, limit=args.limit)
    at = dt.datetime.now(dt.UTC)
    hits = reg.watch_hits(
        at,
        mmsis=[r.mmsi for r in found if r.mmsi],
        names=[r.name for r in found if r.name],
        hull_numbers=[r.hull_number for r in found if r.hull_number],
    )
    if args.json:
        for r in found:
            d = r.as_dict()
            d["watchlist"] = [
                {"kind": h.kind, "value": h.value, "reason": h.reason}
                for h in hits
                if h.value in (str(r.mmsi), r.name, r.hull_number)
            ]
            print(json.dumps(d, ensure_ascii=False))
        return 0 if found else 1
    for r in found:
        today = at.date()
        state = "EXPIRED" if r.expired(today) else "valid"
        print(f"{r.registration_no}  mmsi {r.mmsi or '-'}  {r.name or '-'}  "
              f"hull {r.hull_number or '-'}  {r.port_of_registry or '-'}  "
              f"until {r.valid_until or '-'} ({state})")  # fmt: skip
        for h in hits:
            if h.value in (str(r.mmsi), r.name, r.hull_number):
                print(f"    WATCHLIST ({h.kind}): {h.reason} — {h.added_by}")
    if not found:
        print(f"no registered vessel matches {args.query!r}", file=sys.stderr)
    return 0 if found else 1


def cmd_watch_add(args: argparse.Namespace) -> int:
    reg = _open(args)
    until = dt.datetime.fromisoformat(args.until) if args.until else None
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=dt.UTC)
    e = reg.watch(args.kind, args.value, args.reason, args.by, until)
    print(f"watching {e.kind} {e.value} until {e.until or 'removed'}: {e.reason}")
    return 0


def cmd_watch_remove(args: argparse.Namespace) -> int:
    removed = _open(args).unwatch(args.kind, args.value)
    print(f"removed {args.kind} {args.value}" if removed else "no such entry", file=sys.stderr)
    return 0 if removed else 1


def cmd_watch_list(args: argparse.Namespace) -> int:
    at = None if args.all else dt.datetime.now(dt.UTC)
    for e in _open(args).watchlist(at):
        if args.json:
            print(json.dumps({
                "kind": e.kind, "value": e.value, "reason": e.reason, "added_by": e.added_by,
                "added_at": e.added_at.isoformat(),
                "until": e.until.isoformat() if e.until else None,
            }, ensure_ascii=False))  # fmt: skip
        else:
            print(f"{e.kind:12} {e.value:24} until {e.until or '-'}  {e.reason}  ({e.added_by})")
    return 0
