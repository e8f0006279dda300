"""The simulator's radar: a simulated night's true tracks as an ARPA radar reports them
(noise, missed scans, clutter, coverage), through the radar decoder and the radar-AIS
association: the boat without AIS stays dark, the AIS vessels are explained."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.fusion import VesselArrays
from pipeline.core.geo import haversine_m
from pipeline.core.radar_fusion import RadarArrays, associate_radar
from pipeline.engine.radar import decode_radar_lines
from pipeline.radars import load_radars
from pipeline.site import load_site
from pipeline.tools.simulate import SimConfig, simulate
from pipeline.tools.simulate_radar import SCAN_S, cover_m, simulate_radar

HAIKOU = Path(__file__).resolve().parents[1] / "sites" / "haikou"


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    start = datetime.fromisoformat("2026-03-08T02:00:00+08:00")
    out = tmp_path_factory.mktemp("radar-night")
    truth = simulate(
        load_site(HAIKOU), SimConfig(seed=3, start=start, duration_s=3600, fps=0.2), out
    )
    radars = load_radars(HAIKOU)
    lines = simulate_radar(truth, radars, seed=5)
    targets, dead = decode_radar_lines(
        lines, [0] * len(lines), "file:radar.nmea", radars["hk-radar-01"]
    )
    return truth, radars["hk-radar-01"], lines, targets, dead


def _truth_at(v: dict, t_ms: float) -> tuple[float, float, float, float]:
    tr = np.asarray(v["track"], dtype=float)
    if not len(tr) or not tr[0, 0] <= t_ms <= tr[-1, 0]:
        return (np.nan,) * 4  # type: ignore[return-value]
    return tuple(float(np.interp(t_ms, tr[:, 0], tr[:, k])) for k in (1, 2, 3, 4))  # type: ignore[return-value]


@pytest.mark.unit
def test_the_simulated_radar_decodes_with_event_times_from_its_tag_blocks(night) -> None:
    truth, radar, lines, targets, dead = night
    assert len(targets) > 1000 and len(targets) + len(dead) == len(lines)
    assert {d.reason for d in dead} <= {"beyond_range"}  # noise past max_range_m only
    t0, t1 = truth["start_t_ms"], truth["start_t_ms"] + truth["duration_s"] * 1000
    assert all(t0 <= t.t_ms < t1 for t in targets)
    assert {t.status for t in targets} == {"acquiring", "tracking", "lost"}


@pytest.mark.unit
def test_noise_missed_scans_and_the_dark_skiff(night) -> None:
    truth, radar, lines, targets, dead = night
    skiff = next(v for v in truth["vessels"] if v["role"] == "skiff")
    assert skiff["mmsi"] is None
    by_t: dict[int, list] = {}
    for t in targets:
        if t.status != "lost":
            by_t.setdefault(t.t_ms, []).append(t)
    skiff_dark = skiff_seen = scans_in_cover = 0
    ais_found = ais_total = 0
    residual_z = []
    for t_ms, reps in sorted(by_t.items())[::4]:  # every 10 s
        slon, slat, _, _ = _truth_at(skiff, t_ms)
        r = RadarArrays.from_lists([x.t_ms for x in reps], [x.lon for x in reps],
                                   [x.lat for x in reps], [x.position_sigma_m for x in reps])  # fmt: skip
        ais = [
            v
            for v in truth["vessels"]
            if v["mmsi"] and any(a <= t_ms <= b for a, b in v["ais_intervals"])
        ]
        pos = [_truth_at(v, t_ms) for v in ais]
        keep = [i for i, p in enumerate(pos) if np.isfinite(p[0])]
        va = VesselArrays.from_lists(
            [ais[i]["mmsi"] for i in keep], [t_ms] * len(keep), [pos[i][0] for i in keep],
            [pos[i][1] for i in keep], [pos[i][2] for i in keep], [pos[i][3] for i in keep],
        )  # fmt: skip
        got = associate_radar(va, r)
        d = haversine_m(
            r.lon_deg[:, None], r.lat_deg[:, None], va.lon_deg[None, :], va.lat_deg[None, :]
        )
        for j, i in enumerate(keep):
            rng_i = float(haversine_m(radar.lon, radar.lat, pos[i][0], pos[i][1]))
            if rng_i < 0.8 * cover_m(radar, 10.0) and len(r):
                ais_total += 1
                jj = int(np.argmin(d[:, j]))
                residual_z.append(d[jj, j] / r.sigma_m[jj])
                ais_found += int(got[jj] == j)
        if np.isfinite(slon):
            srng = float(haversine_m(radar.lon, radar.lat, slon, slat))
            if srng < cover_m(radar, 1.5):
                scans_in_cover += 1
                ds = haversine_m(r.lon_deg, r.lat_deg, slon, slat)
                hit = np.flatnonzero(ds < 4 * r.sigma_m + 20)
                if hit.size:
                    skiff_seen += 1
                    skiff_dark += int(np.all(got[hit] == -1))
    assert scans_in_cover > 25
    # a small boat is missed on some scans near the edge of cover, seen on most
    assert 0.5 * scans_in_cover < skiff_seen < scans_in_cover
    assert skiff_dark >= 0.95 * skiff_seen  # no AIS vessel explains it
    assert ais_found >= 0.9 * ais_total
    # the stated noise: residuals against the truth are about one sigma
    assert 0.5 < float(np.median(residual_z)) < 1.5
    assert SCAN_S == 2.5
