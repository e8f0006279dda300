"""The simulator's realistic sensor noise: determinism, and each kind of noise present."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from pyais import decode

from pipeline.cli import main
from pipeline.errors import ConfigError
from pipeline.site import load_site
from pipeline.tools.sim_noise import NOISE_LEVELS, corrupt_lines, noise_config
from pipeline.tools.simulate import SimConfig, simulate

HAIKOU = Path(__file__).resolve().parents[1] / "sites" / "haikou"
START = datetime.fromisoformat("2026-03-08T02:00:00+08:00")
DURATION_S = 3600


def _xor(text: str) -> int:
    c = 0
    for ch in text.encode():
        c ^= ch
    return c


@pytest.fixture(scope="module")
def site():
    return load_site(HAIKOU)


@pytest.fixture(scope="module")
def noisy(tmp_path_factory, site):
    out = tmp_path_factory.mktemp("noisy") / "seed3"
    truth = simulate(site, SimConfig(seed=3, start=START, duration_s=DURATION_S, fps=0.5), out)
    return out, truth


@pytest.fixture(scope="module")
def clean(tmp_path_factory, site):
    out = tmp_path_factory.mktemp("clean") / "seed3"
    cfg = SimConfig(seed=3, start=START, duration_s=DURATION_S, fps=0.5, noise="none")
    return out, simulate(site, cfg, out)


def _frames(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open("rb")]


def _tracks(frames: list[dict]) -> dict[tuple[str, int], list[tuple[int, dict]]]:
    out: dict[tuple[str, int], list[tuple[int, dict]]] = defaultdict(list)
    for f in frames:
        for d in f["detections"]:
            out[(f["camera_id"], d["track_id"])].append((f["t_ms"], d))
    return out


@pytest.mark.unit
def test_realistic_is_the_default_deterministic_and_differs_from_clean(
    noisy, clean, site, tmp_path
):
    out, truth = noisy
    assert SimConfig(seed=1, start=START).noise == "realistic"
    assert truth["noise"]["level"] == "realistic"
    assert "noise" not in clean[1]
    again = tmp_path / "again"
    simulate(site, SimConfig(seed=3, start=START, duration_s=DURATION_S, fps=0.5), again)
    for name in ("ais.nmea", "detections.jsonl", "truth.json"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
        assert (out / name).read_bytes() != (clean[0] / name).read_bytes(), name
    # the traffic and the planted events are the same: noise only changes what is observed
    strip = [{k: v for k, v in e.items() if k not in ("t_ms", "time", "lon", "lat", "id")}
             for e in truth["events"] if e["kind"] != "dark_vessel"]  # fmt: skip
    strip_clean = [{k: v for k, v in e.items() if k not in ("t_ms", "time", "lon", "lat", "id")}
                   for e in clean[1]["events"] if e["kind"] != "dark_vessel"]  # fmt: skip
    key = lambda e: json.dumps(e, sort_keys=True)  # noqa: E731
    assert sorted(map(key, strip)) == sorted(map(key, strip_clean))
    assert [v["track"] for v in truth["vessels"]] == [v["track"] for v in clean[1]["vessels"]]


@pytest.mark.unit
def test_camera_outage_has_no_frames_and_spares_the_planted_landings(noisy, clean):
    out, truth = noisy
    o = truth["noise"]["camera_outage"]
    assert o["t_end_ms"] - o["t_ms"] == 1800 * 1000
    frames = _frames(out / "detections.jsonl")
    cam = [f["t_ms"] for f in frames if f["camera_id"] == o["camera_id"]]
    assert cam and not any(o["t_ms"] <= t < o["t_end_ms"] for t in cam)
    others = Counter(f["camera_id"] for f in frames if f["camera_id"] != o["camera_id"])
    assert set(others.values()) == {DURATION_S // 2}
    for e in truth["events"]:
        if e["kind"] == "unusual_landing" and e["camera_id"] == o["camera_id"]:
            assert not o["t_ms"] - 600_000 <= e["t_ms"] < o["t_end_ms"] + 1_200_000, e["id"]


@pytest.mark.unit
def test_clutter_drop_outs_and_far_targets(noisy, clean):
    noisy_tracks = _tracks(_frames(noisy[0] / "detections.jsonl"))
    clean_tracks = _tracks(_frames(clean[0] / "detections.jsonl"))
    short = [d for d in noisy_tracks.values() if len(d) <= 2]
    assert len(short) > 3 * sum(1 for d in clean_tracks.values() if len(d) <= 2)
    # clutter is more frequent near the camera: most short tracks are within 1.5 km
    r_short = np.array([d[0][1]["range_m"] for d in short if d[0][1]["range_m"] is not None])
    assert np.median(r_short) < 1500.0
    # far targets: ships detected beyond 10 km with a range error of kilometres
    far = [
        d for t in noisy_tracks.values() for _t, d in t
        if d["range_m"] is not None and d["range_m"] > 10_000
    ]  # fmt: skip
    assert far and np.median([d["range_sigma_m"] for d in far]) > 1000.0
    assert np.median([d["bearing_sigma_deg"] for d in far]) < 1.0
    # drop-outs split tracks: a vessel's track ids are more numerous than without noise
    long_noisy = sum(1 for d in noisy_tracks.values() if len(d) > 2)
    long_clean = sum(1 for d in clean_tracks.values() if len(d) > 2)
    assert long_noisy > long_clean


@pytest.mark.unit
def test_two_receivers_duplicates_disorder_corruption_and_class_b_intervals(noisy):
    out, truth = noisy
    lines = (out / "ais.nmea").read_text(encoding="ascii").splitlines()
    good: list[tuple[str, int, str]] = []
    bad = 0
    for line in lines:
        try:
            tag, sentence = line[1:].split("\\", 1)
            body, chk = tag.rsplit("*", 1)
            sbody, schk = sentence[1:].rsplit("*", 1)
            ok = int(chk, 16) == _xor(body) and int(schk, 16) == _xor(sbody)
        except ValueError:
            ok = False
        if not ok:
            bad += 1
            continue
        fields = dict(f.split(":", 1) for f in body.split(","))
        good.append((fields["s"], int(fields["c"]), sentence))
    assert bad == truth["noise"]["corrupted_ais_lines"] >= 1
    assert {s for s, _c, _x in good} == {"HK-XIUYING", "GD-XUWEN"}
    # the same sentence logged by both stations
    by_sentence: dict[str, set[str]] = defaultdict(set)
    for s, _c, x in good:
        by_sentence[x].add(s)
    dup = sum(1 for st in by_sentence.values() if len(st) == 2)
    assert dup > 0.3 * len(by_sentence)
    # disorder: event time goes back, by no more than the pipeline's allowed AIS disorder
    c = np.array([c for _s, c, _x in good])
    back = np.maximum.accumulate(c) - c
    assert back.max() >= 1 and back.max() <= 5
    # Class B "CS" below 2 kn reports every 3 min (a report's next one is 3 min later)
    first_c: dict[str, int] = {}
    for _s, cc, x in good:
        first_c.setdefault(x, cc)
    reports: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for x, cc in first_c.items():
        if x.startswith("!AIVDM,1,1"):
            d = decode(x).asdict()
            if d["msg_type"] == 18:
                reports[d["mmsi"]].append((cc, d["speed"]))
    gaps_slow = []
    for rows in reports.values():
        rows.sort()
        gaps_slow += [b[0] - a[0] for a, b in zip(rows[:-1], rows[1:], strict=True) if a[1] < 1.5]
    assert len(gaps_slow) > 10 and min(gaps_slow) >= 170


@pytest.mark.unit
def test_corrupt_lines_breaks_checksum_or_cuts_short():
    line = "\\s:HK-1,c:1772906400*" + f"{_xor('s:HK-1,c:1772906400'):02X}" + "\\"
    sentence = "!AIVDM,1,1,,A,15M67FC000G?ufbE`FepT@3n00Sa,0*5C"
    lines = [line + sentence] * 50
    idx = corrupt_lines(lines, 20.0, np.random.default_rng(1))
    assert idx and idx == sorted(set(idx))
    for i in range(50):
        changed = lines[i] != line + sentence
        assert changed == (i in idx)


@pytest.mark.unit
def test_noise_levels_and_the_command_line(tmp_path, capsys):
    assert set(NOISE_LEVELS) == {"none", "realistic"}
    assert not noise_config("none").enabled and noise_config("realistic").enabled
    with pytest.raises(ConfigError, match="unknown noise level"):
        noise_config("storm")
    with pytest.raises(SystemExit):
        main(["simulate", "--site", str(HAIKOU), "--noise", "storm", "--out", str(tmp_path)])
