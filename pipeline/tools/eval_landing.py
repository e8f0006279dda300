"""``shorewatch eval landing-sites``: hidden landing sites found across simulated nights.

One seed: ``--nights`` simulated nights (:func:`pipeline.tools.simulate.simulate_nights`)
with a hidden landing place used on 3 of them by different vessels (AIS on or dark), the
usual planted landings elsewhere (each place once), ferries, fishing boats returning to
their harbour, anchored ships. Each night's decoded AIS and camera frames are written to an
archive as the archiver writes them, and :func:`pipeline.history.landing.find_landing_sites`
searches the whole window.

Scores: ``recall`` (the hidden place found: a finding centre within 100 m of it),
``precision`` (findings that are the hidden place / all findings), ``centre_error_m``
(median distance from matched finding centres to the place), and every other finding
classified (``authorised_zone``, ``one_off_landing`` near a planted one-off landing, or
``other``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from pipeline.core.geo import haversine_m
from pipeline.history.landing import LandingParams, find_landing_sites
from pipeline.history.query import Archive
from pipeline.history.writer import ArchiveWriter, Bounds
from pipeline.replay import decode_ais, read_frames
from pipeline.site import load_site
from pipeline.tools.simulate import SimConfig, simulate_nights

__all__ = ["archive_nights", "evaluate_seed"]

MATCH_M = 100.0
DAY_MS = 86_400_000


def archive_nights(sim_dir: Path, root: Path, nights: list[str]) -> dict[str, int]:
    """Decode each night's AIS and frames and write them to an archive at ``root``."""
    enc = msgspec.json.Encoder()
    w = ArchiveWriter(root, Bounds(max_rows=10_000_000, max_bytes=1 << 40))
    offsets: Counter[str] = Counter()
    for name in nights:
        d = sim_dir / name
        positions, statics = decode_ais([d / "ais.nmea"], Counter())
        frames = read_frames([d / "detections.jsonl"])
        for topic, recs in (
            ("shorewatch.ais.position.v1", positions),
            ("shorewatch.ais.static.v1", statics),
            ("shorewatch.camera.detection.v1", frames),
        ):
            vals = [enc.encode(r) for r in recs]
            o = offsets[topic]
            w.add(topic, 0, list(range(o, o + len(vals))), [0] * len(vals), vals)
            offsets[topic] += len(vals)
        _, full = w.flush_due(force=True)
        if full is not None:
            raise full
    return dict(offsets)


def evaluate_seed(site_dir: str | Path, seed: int, nights: int = 10, *, work: Path | None = None,
                  duration_s: int = 3600, start: str = "2026-03-01T03:00:00+08:00",
                  fps: float = 0.5, params: LandingParams | None = None) -> dict[str, Any]:  # fmt: skip
    """Simulate, archive and search one seed; the scores as a JSON-ready dict."""
    site = load_site(site_dir)
    own = work is None
    work = Path(tempfile.mkdtemp(prefix="eval-landing-")) if work is None else Path(work)
    try:
        cfg = SimConfig(
            seed=seed,
            start=datetime.fromisoformat(start),
            duration_s=duration_s,
            fps=fps,
            noise="none",
        )
        doc = simulate_nights(site, cfg, nights, work / "sim")
        archive_nights(work / "sim", work / "archive", [n["dir"] for n in doc["nights"]])
        t0 = int(cfg.start.timestamp() * 1000) - DAY_MS
        t1 = t0 + (nights + 2) * DAY_MS
        found = find_landing_sites(Archive(work / "archive"), site, t0, t1, params)
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
    hlon, hlat = doc["hidden_place"]["lonlat"]
    one_offs = [x["lonlat"] for n in doc["nights"] for x in n["landings"] if not x["hidden"]]
    geom = site.geometry()
    matched, others = [], []
    for f in found:
        d = float(haversine_m(f.lon, f.lat, hlon, hlat))
        if d <= MATCH_M:
            matched.append((d, f))
            continue
        near_one_off = any(float(haversine_m(f.lon, f.lat, x, y)) <= 200.0 for x, y in one_offs)
        in_zone = bool(geom.in_authorised_zone(np.array([f.lon]), np.array([f.lat]), 300.0)[0])
        kind = "authorised_zone" if in_zone else "one_off_landing" if near_one_off else "other"
        others.append({"lonlat": [f.lon, f.lat], "nights": f.nights, "kind": kind,
                       "mmsis": f.mmsis, "camera_targets": f.camera_targets})  # fmt: skip
    return {
        "seed": seed,
        "nights": nights,
        "recall": 1.0 if matched else 0.0,
        "precision": (1.0 if matched else 0.0) if not found else len(matched[:1]) / len(found),
        "centre_error_m": round(statistics.median(d for d, _ in matched), 1) if matched else None,
        "findings": len(found),
        "hidden_place": [hlon, hlat],
        "hidden_nights": doc["hidden_place"]["nights"],
        "found_nights": len(matched[0][1].nights) if matched else 0,
        "found_dark_visits": matched[0][1].dark_visits if matched else 0,
        "false_findings": others,
    }


def cmd_eval(args: argparse.Namespace) -> int:
    res = evaluate_seed(args.site, args.seed, args.nights,
                        work=Path(args.work) if args.work else None)  # fmt: skip
    if args.json:
        print(json.dumps(res))
    else:
        print(f"seed {res['seed']}: recall {res['recall']:.2f}, precision {res['precision']:.2f}, "
              f"centre error {res['centre_error_m']} m, findings {res['findings']}")  # fmt: skip
        for o in res["false_findings"]:
            print(f"  false finding {o['kind']} at {o['lonlat']} nights {o['nights']}")
    return 0
