"""Radar targets for a simulated night: ``shorewatch radar simulate --night DIR --site SITE``.

Reads the night's ``truth.json`` (every vessel's true track, written by ``shorewatch
simulate``) and the site's ``radars.yaml``, and writes ``radar.nmea``: what each radar's
ARPA tracker would report, one ``$RATTM`` per tracked target per antenna scan, each after
an NMEA 4.10 tag block ``\\s:<radar>,c:<unix s>*hh\\`` (so ``shorewatch ingest radar
--file RADAR=radar.nmea`` dates and paces it).

What it assumes (stated in ``docs/radar.md``):

- a scan every ``scan_s`` (2.5 s, a 24 rpm antenna); range noise ``range_sigma_m`` and
  bearing noise ``bearing_sigma_deg`` of the radar, Gaussian;
- coverage: within ``max_range_m`` and the radar horizon of the antenna and the target
  (``4.12·(√h_antenna + √h_target)`` km, ``h_target`` from the hull length: 1.5 m for a
  skiff up to 10 m for a ship); land does not shadow (the site's radars stand on the shore);
- detection per scan with probability ``0.95`` for ships falling to ``0.6`` at the edge of
  cover for small craft (length < 15 m: ``p = 0.95 − 0.35·(range/cover)²``): missed scans;
- the tracker reports a target as ``Q`` (acquiring) for its first 3 detections, ``T``
  afterwards, ``L`` once after 5 missed scans, then drops it; target numbers 1-99 are
  reused after a loss;
- sea clutter: spurious plots within 3 km of the radar, a few per scan, of which one in
  twenty is acquired for a few scans (false targets the fusion must tolerate);
- speed and course are the true ones plus noise (0.5 kn, 3°).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.geo import bearing_deg, haversine_m
from pipeline.core.radar import RadarConfig, polar_to_lonlat
from pipeline.radars import load_radars

__all__ = ["cmd_simulate_radar", "simulate_radar"]

SCAN_S = 2.5
ACQUIRE_SCANS = 3
LOST_AFTER_SCANS = 5


def _checksum(body: str) -> str:
    c = 0
    for ch in body.encode("ascii"):
        c ^= ch
    return f"{c:02X}"


def _target_height_m(length_m: float) -> float:
    return float(np.clip(length_m / 8.0, 1.5, 10.0))


def cover_m(radar: RadarConfig, target_height_m: float) -> float:
    """Radar horizon of an antenna and a target with standard refraction, capped at the
    radar's ``max_range_m``, m."""
    horizon = 4120.0 * (math.sqrt(radar.height_m) + math.sqrt(target_height_m))
    return min(radar.max_range_m, horizon)


def _ttm(
    n: int, range_m: float, brg: float, sog: float, cog: float, status: str, t_s: float
) -> str:
    hh, rem = divmod(t_s % 86400.0, 3600.0)
    mm, ss = divmod(rem, 60.0)
    utc = f"{int(hh):02d}{int(mm):02d}{ss:05.2f}"
    body = (
        f"RATTM,{n:02d},{range_m / 1852.0:.3f},{brg % 360.0:.1f},T,{max(sog, 0.0):.1f},"
        f"{cog % 360.0:.1f},T,,,N,,{status},,{utc},A"
    )
    return f"${body}*{_checksum(body)}"


def _tag(radar_id: str, t_s: float) -> str:
    body = f"s:{radar_id},c:{int(t_s)}"
    return f"\\{body}*{_checksum(body)}\\"


def _truth_at(vessel: dict[str, Any], t_ms: np.ndarray) -> tuple[np.ndarray, ...]:
    tr = np.asarray(vessel["track"], dtype=float)
    if tr.size == 0:
        nan = np.full(len(t_ms), np.nan)
        return nan, nan, nan, nan
    present = (t_ms >= tr[0, 0]) & (t_ms <= tr[-1, 0])
    lon = np.where(present, np.interp(t_ms, tr[:, 0], tr[:, 1]), np.nan)
    lat = np.where(present, np.interp(t_ms, tr[:, 0], tr[:, 2]), np.nan)
    sog = np.interp(t_ms, tr[:, 0], tr[:, 3])
    idx = np.clip(np.searchsorted(tr[:, 0], t_ms), 0, len(tr) - 1)
    return lon, lat, sog, tr[idx, 4]


def simulate_radar(
    truth: dict[str, Any], radars: dict[str, RadarConfig], seed: int = 7
) -> list[str]:
    """The ``radar.nmea`` lines of a night (every radar, scans in time order)."""
    rng = np.random.default_rng(seed)
    t0_ms = int(truth["start_t_ms"])
    scans = np.arange(0.0, float(truth["duration_s"]), SCAN_S)
    t_ms = t0_ms + (scans * 1000).astype(np.int64)
    vessels = truth["vessels"]
    states = [_truth_at(v, t_ms) for v in vessels]
    lines: list[tuple[float, str]] = []
    for radar in radars.values():
        # tracker state per true vessel: target number, detections, misses
        number: dict[int, int] = {}
        hits: dict[int, int] = {}
        misses: dict[int, int] = {}
        last: dict[int, tuple[float, float]] = {}
        free = list(range(99, 0, -1))
        clutter: list[list[float]] = []  # [number, lon, lat, scans left]
        for k, ts in enumerate(t_ms):
            t_s = ts / 1000.0
            out: list[str] = []
            for i, v in enumerate(vessels):
                lon, lat, sog, cog = (a[k] for a in states[i])
                if not np.isfinite(lon):
                    seen = False
                    rng_m = brg = math.nan
                else:
                    rng_m = float(haversine_m(radar.lon, radar.lat, lon, lat))
                    brg = float(bearing_deg(radar.lon, radar.lat, lon, lat))
                    cover = cover_m(radar, _target_height_m(float(v["length_m"])))
                    small = float(v["length_m"]) < 15.0
                    p = 0.95 - (0.35 * (rng_m / cover) ** 2 if small else 0.0)
                    seen = rng_m <= cover and rng.random() < p
                if seen:
                    misses[i] = 0
                    hits[i] = hits.get(i, 0) + 1
                    if i not in number:
                        if not free:
                            continue
                        number[i] = free.pop()
                    r_obs = rng_m + rng.normal(0.0, radar.range_sigma_m)
                    b_obs = brg + rng.normal(0.0, radar.bearing_sigma_deg)
                    last[i] = (r_obs, b_obs)
                    status = "Q" if hits[i] <= ACQUIRE_SCANS else "T"
                    out.append(_ttm(number[i], r_obs, b_obs, sog + rng.normal(0, 0.5),
                                    cog + rng.normal(0, 3.0), status, t_s))  # fmt: skip
                elif i in number:
                    misses[i] = misses.get(i, 0) + 1
                    if misses[i] >= LOST_AFTER_SCANS:
                        r_last, b_last = last.pop(i)
                        out.append(_ttm(number[i], r_last, b_last, 0.0, 0.0, "L", t_s))
                        free.append(number.pop(i))
                        hits.pop(i, None)
            # sea clutter: plots near the radar; one in twenty acquired for a few scans
            for _ in range(rng.poisson(3.0)):
                if rng.random() < 0.05 and free:
                    b, d = rng.uniform(0, 360), rng.uniform(200, 3000)
                    clon, clat = polar_to_lonlat(radar.lon, radar.lat, b, d)
                    clutter.append(
                        [free.pop(), float(clon), float(clat), float(rng.integers(2, 6))]
                    )
            for c in list(clutter):
                d = float(haversine_m(radar.lon, radar.lat, c[1], c[2]))
                b = float(bearing_deg(radar.lon, radar.lat, c[1], c[2]))
                out.append(_ttm(int(c[0]), d, b, rng.uniform(0, 3), rng.uniform(0, 360), "Q", t_s))
                c[3] -= 1
                if c[3] <= 0:
                    clutter.remove(c)
                    out.append(_ttm(int(c[0]), d, b, 0.0, 0.0, "L", t_s))
                    free.append(int(c[0]))
            tag = _tag(radar.id, t_s)
            lines.extend((t_s, tag + s) for s in out)
    lines.sort(key=lambda x: x[0])
    return [s for _, s in lines]


def cmd_simulate_radar(args: argparse.Namespace) -> int:
    night = Path(args.night)
    truth = json.loads((night / "truth.json").read_text())
    radars = load_radars(args.site)
    if not radars:
        print(f"{args.site}: no radars.yaml")
        return 2
    lines = simulate_radar(truth, radars, seed=args.seed)
    out = night / "radar.nmea"
    out.write_text("\n".join(lines) + ("\n" if lines else ""))
    print(f"{out}: {len(lines)} TTM sentences from {len(radars)} radar(s)")
    return 0
