"""``shorewatch radar eval``: how far from the shore the dark vessels of simulated nights are
first alerted, with and without radar.

For each seed: ``shorewatch simulate`` writes a night (AIS, camera frames, truth),
:func:`pipeline.tools.simulate_radar.simulate_radar` adds what the site's radars report,
and the night is replayed twice through the engine (:func:`pipeline.replay.run_replay`),
without and with the radar reports. For every vessel of a planted ``dark_vessel`` or
``dark_approach`` event, the first alert of kind ``dark_vessel``, ``dark_approach`` or
``unusual_landing`` that lies within ``ATTRIBUTION_M`` of the vessel's true position at
the alert's event time is taken, and its distance from the coastline reported.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.geo import haversine_m
from pipeline.radar_files import radar_reports
from pipeline.radars import load_radars
from pipeline.replay import run_replay
from pipeline.site import load_site
from pipeline.tools.simulate import SimConfig, simulate
from pipeline.tools.simulate_radar import simulate_radar

__all__ = ["cmd_eval_radar", "eval_radar", "first_alerts", "radar_truth"]

#: an alert belongs to a vessel when it lies this close to the vessel's true position, m
ATTRIBUTION_M = 800.0
KINDS = ("dark_vessel", "dark_approach", "unusual_landing")


def _iso_ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _at(vessel: dict[str, Any], t_ms: int) -> tuple[float, float]:
    tr = np.asarray(vessel["track"], dtype=float)
    if not len(tr) or not tr[0, 0] - 10_000 <= t_ms <= tr[-1, 0] + 10_000:
        return np.nan, np.nan
    return float(np.interp(t_ms, tr[:, 0], tr[:, 1])), float(np.interp(t_ms, tr[:, 0], tr[:, 2]))


def first_alerts(alerts: list[Any], truth: dict[str, Any], vids: set[str], geometry) -> dict:
    vessels = {v["id"]: v for v in truth["vessels"] if v["id"] in vids}
    first: dict[str, dict[str, Any]] = {}
    for a in alerts:
        d = a.data
        if d.status != "open" or d.kind not in KINDS:
            continue
        t = _iso_ms(d.event_time)
        for vid, v in vessels.items():
            lon, lat = _at(v, t)
            if not np.isfinite(lon):
                continue
            if float(haversine_m(lon, lat, d.position.lon, d.position.lat)) > ATTRIBUTION_M:
                continue
            if vid not in first or t < first[vid]["t_ms"]:
                coast = float(geometry.coast_distance_m(d.position.lon, d.position.lat)[0])
                first[vid] = {"t_ms": t, "kind": d.kind, "coast_m": round(coast),
                              "subject": d.vessel.track_id}  # fmt: skip
    return first


def radar_truth(truth: dict[str, Any], radars: dict[str, Any]) -> dict[str, Any]:
    """The night's truth as a site with these radars should be judged: each planted
    ``dark_vessel`` event begins when its vessel is first dark (no AIS) inside a radar's
    cover (:func:`pipeline.tools.simulate_radar.cover_m`), if that is earlier than the
    simulator's time (when a shore camera can first see it). A radar alert kilometres
    before the camera's is then on time, not a false alert and a miss.
    """
    from pipeline.tools.simulate_radar import _target_height_m, cover_m

    vessels = {v["id"]: v for v in truth["vessels"]}
    events = []
    for ev in truth["events"]:
        if ev["kind"] != "dark_vessel":
            events.append(ev)
            continue
        t0 = ev["t_ms"]
        for vid in ev["vessel_ids"]:
            v = vessels.get(vid)
            if v is None or not v["track"]:
                continue
            tr = np.asarray(v["track"], dtype=float)
            dark = np.ones(len(tr), dtype=bool)
            for a, b in v.get("ais_intervals") or []:
                dark &= ~((tr[:, 0] >= a) & (tr[:, 0] <= b))
            h = _target_height_m(float(v.get("length_m") or 10.0))
            seen = np.zeros(len(tr), dtype=bool)
            for r in radars.values():
                seen |= haversine_m(r.lon, r.lat, tr[:, 1], tr[:, 2]) <= cover_m(r, h)
            idx = np.flatnonzero(dark & seen & (tr[:, 0] <= ev.get("t_end_ms", t0)))
            if idx.size:
                t0 = min(t0, int(tr[idx[0], 0]))
        events.append({**ev, "t_ms": t0} if t0 != ev["t_ms"] else ev)
    return {**truth, "events": events}


def eval_radar(site_dir: str, seeds: list[int], duration_s: int, start: str) -> dict[str, Any]:
    site = load_site(site_dir)
    radars = load_radars(site_dir)
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = SimConfig(seed=seed, start=datetime.fromisoformat(start), duration_s=duration_s)
            truth = simulate(site, cfg, tmp)
            lines = simulate_radar(truth, radars, seed=seed)
            reports = radar_reports(lines, radars)
            ais, det = [str(Path(tmp) / "ais.nmea")], [str(Path(tmp) / "detections.jsonl")]
            without = run_replay(site, ais, det, drain_s=600).alerts
            with_radar = run_replay(site, ais, det, drain_s=600, radar=reports).alerts
        from pipeline.engine.state import AreaContext

        geometry = AreaContext.from_site(site).geometry
        dark = {
            vid: ev["kind"]
            for ev in truth["events"]
            if ev["kind"] in ("dark_vessel", "dark_approach")
            for vid in ev["vessel_ids"]
        }
        a = first_alerts(without, truth, set(dark), geometry)
        b = first_alerts(with_radar, truth, set(dark), geometry)
        for vid in sorted(dark):
            rows.append({
                "seed": seed, "vessel": vid, "planted": dark[vid],
                "without_radar": a.get(vid), "with_radar": b.get(vid),
            })  # fmt: skip
    return {"site": site.name, "duration_s": duration_s, "rows": rows}


def cmd_eval_radar(args: argparse.Namespace) -> int:
    res = eval_radar(args.site, args.seeds, args.duration_s, args.start)
    if args.json:
        print(json.dumps(res))
        return 0

    def cell(x: dict[str, Any] | None) -> str:
        return "not alerted" if x is None else f"{x['kind']} at {x['coast_m'] / 1000:.1f} km"

    print("| seed | vessel | first alert without radar | with radar |")
    print("|---|---|---|---|")
    for r in res["rows"]:
        print(
            f"| {r['seed']} | {r['vessel']} | {cell(r['without_radar'])} | {cell(r['with_radar'])} |"
        )
    return 0
