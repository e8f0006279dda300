"""``shorewatch eval identity``: the identity rules against the simulator's registry.

One simulated run (:func:`pipeline.tools.simulate.simulate`, which writes the run's
registry, watchlist and identity truth, :mod:`pipeline.tools.sim_registry`) is replayed
with its registry in a fresh SQLite database. For each rule the alert factor that reports
it (``unregistered``, ``name_mismatch``, ``registration_expired``, ``watchlist``,
``away_from_home``, ``two_places_at_once``) is collected per MMSI and compared with the truth: found (expected and
reported), missed (expected, never reported), extra (reported, not expected). The run's
cloned MMSI (``ais_clone.nmea``, a second transmitter) is the truth of ``cloned_mmsi``
(factor ``two_places_at_once``); the alert kinds raised about it are listed.

A watchlist hit raises the severity of the alerts about the vessel, it is no alert of its
own: its truth is the watchlisted vessels that raised any alert, and every alert about
them must carry the factor.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.registry.importer import import_file
from pipeline.registry.resolver import IdentityResolver
from pipeline.registry.store import Registry
from pipeline.replay import run_replay
from pipeline.site import load_site
from pipeline.tools.sim_registry import RULES
from pipeline.tools.simulate import SimConfig, parse_duration, simulate

__all__ = ["evaluate_identity", "score"]


def score(truth: dict[str, list[int]], alerts: list[Any]) -> dict[str, Any]:
    """Found, missed and extra MMSIs per rule (see the module docstring).

    :param truth: ``registry_truth.json``'s ``expected``
    :param alerts: the replay's alert events
    """
    reported: dict[str, set[int]] = defaultdict(set)
    alerted: set[int] = set()
    unmarked: set[int] = set()  # watchlisted vessels with an alert lacking the factor
    watched = set(truth.get("watchlist", []))
    for a in alerts:
        m = a.data.vessel.mmsi
        if m is None or a.data.status == "closed":
            continue
        alerted.add(m)
        names = {f.name for f in a.data.factors}
        for rule in RULES:
            if rule in names:
                reported[rule].add(m)
        if m in watched and "watchlist" not in names:
            unmarked.add(m)
    out: dict[str, Any] = {}
    for rule in RULES:
        want = set(truth.get(rule, []))
        if rule == "watchlist":
            want &= alerted
        got = reported[rule]
        out[rule] = {
            "expected": len(want), "found": len(want & got),
            "missed": sorted(want - got), "extra": sorted(got - want),
        }  # fmt: skip
    out["watchlist"]["alerts_without_factor"] = sorted(unmarked)
    return out


def evaluate_identity(
    site_dir: str | Path,
    seed: int = 1,
    duration_s: int = 7200,
    start: str = "2026-03-08T02:00:00+08:00",
    work: str | Path | None = None,
) -> dict[str, Any]:
    """Simulate one run, replay it against its registry, and score the identity rules."""
    site = load_site(site_dir)
    with tempfile.TemporaryDirectory(prefix="sw-eval-identity-") as tmp:
        root = Path(work) if work else Path(tmp)
        sim = root / "sim"
        simulate(site, SimConfig(seed=seed, start=datetime.fromisoformat(start),
                                 duration_s=duration_s), sim)  # fmt: skip
        url = f"sqlite:///{root / 'registry.sqlite'}"
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        reg = Registry.open(url)
        report = import_file(reg, sim / "registry.json")
        for e in json.loads((sim / "watchlist.json").read_text("utf-8")):
            reg.watch(e["kind"], e["value"], e["reason"], e["added_by"])
        reg.close()
        doc = json.loads((sim / "registry_truth.json").read_text("utf-8"))
        truth, clone = doc["expected"], doc.get("clone")
        resolver = IdentityResolver(url)
        ais = [sim / "ais.nmea"] + [p for p in [sim / "ais_clone.nmea"] if p.exists()]
        res = run_replay(site, ais, [sim / "detections.jsonl"], registry=resolver, drain_s=600.0)
        resolver.close()
    return {
        "seed": seed, "duration_s": duration_s, "registered": report.written,
        "rejected_rows": len(report.rejected), "watchlist": len(truth.get("watchlist", [])),
        "alerts": len(res.alerts), "rules": score(truth, res.alerts),
        "clone": None if clone is None else {
            "mmsi": clone["mmsi"], "apart_km": round(clone["min_apart_m"] / 1000.0, 1),
            "alert_kinds": sorted({a.data.kind for a in res.alerts
                                   if a.data.vessel.mmsi == clone["mmsi"]}),
        },
    }  # fmt: skip


def cmd_eval(args: argparse.Namespace) -> int:
    res = evaluate_identity(
        args.site, args.seed, parse_duration(args.duration), args.start, args.work
    )
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"seed {res['seed']}: {res['registered']} vessels registered, "
          f"{res['watchlist']} watchlisted, {res['alerts']} alert events")  # fmt: skip
    for rule, r in res["rules"].items():
        line = f"{rule:<22} found {r['found']}/{r['expected']}"
        line += f", missed {r['missed'] or '-'}, extra {r['extra'] or '-'}"
        print(line)
    if res["clone"] is not None:
        c = res["clone"]
        print(f"cloned MMSI {c['mmsi']} ({c['apart_km']} km apart and more): alerts "
              f"{', '.join(c['alert_kinds']) or '-'}")  # fmt: skip
    return 0
