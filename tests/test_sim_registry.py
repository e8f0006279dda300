"""The simulator's registry (unregistered, mismatched, expired, watchlisted vessels) and the
scoring of ``shorewatch eval identity``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.registry.importer import validate_row
from pipeline.site import load_site
from pipeline.tools.eval_identity import score
from pipeline.tools.sim_registry import RULES, generate_registry

pytestmark = pytest.mark.unit

SITE = Path(__file__).resolve().parents[1] / "sites" / "haikou"
#: 2026-03-08 02:00 in Haikou, ms UTC
T0 = int(dt.datetime(2026, 3, 7, 18, 0, tzinfo=dt.UTC).timestamp() * 1000)


def _vessel(i: int, track: list[list[float]], name: str | None = "QIONG YU 1") -> dict:
    return {
        "id": f"v-{i}", "role": "fishing", "mmsi": 412000000 + i, "ais_class": "B",
        "name": name, "length_m": 15.0, "track": track,
        "ais_intervals": [[T0, T0 + 7_200_000]],
    }  # fmt: skip


def _truth(n: int = 20, seed: int = 1) -> dict:
    # 20 boats start at Baishamen (a fishing harbour) and run out to sea; the last one stops
    # at night for 30 min 6 km off the coast, away from every zone
    run = [[T0 + k * 10_000, 110.324 + k * 0.001, 20.06, 6.0, 90.0] for k in range(60)]
    stop = [[T0 + k * 10_000, 110.60, 20.20, 0.0, 0.0] for k in range(180)]
    vessels = [_vessel(i, run, name=None if i == 3 else f"QIONG YU {i}") for i in range(n - 1)]
    vessels.append(_vessel(n - 1, run[:1] + stop))
    vessels.append({**_vessel(99, run), "mmsi": None})  # a dark boat: not in the registry
    return {"seed": seed, "start": "2026-03-08T02:00:00+08:00", "vessels": vessels}


def test_the_generated_registry_has_each_kind_of_finding_and_imports_cleanly() -> None:
    site = load_site(SITE)
    doc = generate_registry(_truth(), site)
    assert doc == generate_registry(_truth(), site)  # a function of the seed
    assert doc != generate_registry(_truth(seed=2), site)
    exp = doc["expected"]
    assert set(exp) == set(RULES)
    assert len(exp["unregistered"]) == 3 and len(exp["name_mismatch"]) == 2
    assert len(exp["registration_expired"]) == 2 and len(exp["watchlist"]) == 2
    rows = {int(r["mmsi"]): validate_row(r) for r in doc["vessels"]}
    assert len(rows) == 20 - 3 and not set(exp["unregistered"]) & set(rows)
    for m in exp["name_mismatch"]:
        assert rows[m]["name"] != f"QIONG YU {m - 412000000}"
    assert 412000003 not in exp["name_mismatch"]  # no AIS name: no mismatch to see
    for m in exp["registration_expired"]:
        assert rows[m]["valid_until"] < dt.date(2026, 3, 8)
    for m in set(rows) - set(exp["registration_expired"]):
        assert rows[m]["valid_until"] > dt.date(2026, 3, 8)
    assert all(r["home_harbours"] == "Baishamen" for r in rows.values())
    last = 412000019
    assert last in rows and exp["away_from_home"] == [last]
    assert {e["value"] for e in doc["watchlist"]} == {str(m) for m in exp["watchlist"]}


def _alert(mmsi: int, *factors: str, status: str = "open"):
    data = SimpleNamespace(
        vessel=SimpleNamespace(mmsi=mmsi),
        status=status,
        factors=[SimpleNamespace(name=f) for f in factors],
    )
    return SimpleNamespace(data=data)


def test_scoring_counts_found_missed_and_extra() -> None:
    truth = {"unregistered": [1, 2], "name_mismatch": [3], "watchlist": [4, 5],
             "registration_expired": [], "away_from_home": []}  # fmt: skip
    alerts = [
        _alert(1, "unregistered", "watchlist"),
        _alert(3, "identity_change"),
        _alert(4, "night", "watchlist"),
        _alert(4, "night"),  # a watchlisted vessel's alert without the factor
        _alert(6, "unregistered"),
        _alert(2, "unregistered", status="closed"),  # closed events do not count
    ]
    s = score(truth, alerts)
    assert s["unregistered"] == {"expected": 2, "found": 1, "missed": [2], "extra": [6]}
    assert s["name_mismatch"] == {"expected": 1, "found": 0, "missed": [3], "extra": []}
    assert s["watchlist"]["expected"] == 1  # vessel 5 raised no alert
    assert s["watchlist"]["extra"] == [1] and s["watchlist"]["alerts_without_factor"] == [4]


def _clone_truth(seed: int = 1) -> dict:
    """Eight boats moored at Baishamen for 2 h, and a cargo ship crossing the strait 12 km
    and more to the north-west at 4 kn (open water for the second transmitter's path)."""
    moored = [[T0 + k * 10_000, 110.324, 20.060, 0.0, 0.0] for k in range(721)]
    vessels = [_vessel(i, moored, name=f"QIONG YU {i}") for i in range(8)]
    cross = [[T0 + k * 10_000, 110.10 + 0.15 * k / 720, 20.15, 4.2, 90.0] for k in range(721)]
    vessels.append({**_vessel(50, cross, name="XIN HAI"), "role": "transit_cargo"})
    return {
        "seed": seed, "start": "2026-03-08T02:00:00+08:00", "start_t_ms": T0,
        "duration_s": 7200, "vessels": vessels,
        "stations": [{"id": "HK-XIUYING", "lon": 110.280, "lat": 20.030}],
    }  # fmt: skip


def test_the_simulated_registry_plants_a_cloned_mmsi_far_from_its_vessel() -> None:
    from pipeline.core.geo import haversine_m
    from pipeline.tools.sim_clone import CLONE_APART_M

    site = load_site(SITE)
    truth = _clone_truth()
    doc = generate_registry(truth, site)
    clone, exp = doc["clone"], doc["expected"]
    assert clone is not None and exp["two_places_at_once"] == [clone["mmsi"]]
    assert doc == generate_registry(_clone_truth(), site)  # a function of the seed
    # the victim is registered and has nothing else to find
    registered = {int(r["mmsi"]) for r in doc["vessels"]}
    others = set().union(*(set(v) for k, v in exp.items() if k != "two_places_at_once"))
    assert clone["mmsi"] in registered and clone["mmsi"] not in others
    # 30 min, on the cargo ship's path shifted in time, 10 km and more from its vessel
    path = np.asarray(clone["path"])
    assert clone["t_end_ms"] - clone["t_ms"] == 1_800_000 and clone["path_of"] == "v-50"
    assert abs(clone["shift_s"]) >= 600
    assert haversine_m(110.324, 20.060, path[:, 1], path[:, 2]).min() >= CLONE_APART_M
    # nowhere to put one: every vessel moored in one harbour
    lone = {**truth, "vessels": truth["vessels"][:8]}
    assert generate_registry(lone, site)["clone"] is None


def test_the_cloned_mmsi_is_found_by_the_pipeline_and_nothing_else(tmp_path: Path) -> None:
    """The victim's own reports and the second transmitter's, replayed against the
    registry: one ``cloned_mmsi`` finding on the victim, no other identity finding."""
    from pipeline.registry.importer import import_file
    from pipeline.registry.store import Registry
    from pipeline.replay import decode_ais, run_replay
    from pipeline.tools.sim_clone import clone_lines
    from pipeline.tools.sim_registry import write_sim_registry

    site = load_site(SITE)
    truth = _clone_truth(seed=2)
    doc = write_sim_registry(site, truth, tmp_path)
    clone = doc["clone"]
    m = clone["mmsi"]
    lines = (tmp_path / "ais_clone.nmea").read_text("ascii").splitlines()
    assert len(lines) > 150  # every 10 s for 30 min, 5 % not heard
    from collections import Counter

    fixes, _statics = decode_ais([tmp_path / "ais_clone.nmea"], Counter())
    assert {p.mmsi for p in fixes} == {m} and len(fixes) == len(lines)
    assert clone["t_ms"] <= fixes[0].t_ms and fixes[-1].t_ms <= clone["t_end_ms"] + 3000
    # the victim's own transmitter: its moored position every 60 s, from 10 min before the
    # second one starts to 10 min after it stops
    t_own = range(clone["t_ms"] - 600_000, clone["t_end_ms"] + 600_001, 60_000)
    own = {"mmsi": m, "path": [[t, 110.324, 20.060, 0.0, 0.0] for t in t_own]}
    (tmp_path / "own.nmea").write_text(
        "".join(x + "\n" for x in clone_lines(truth, own, np.random.default_rng(5))), "ascii"
    )
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    reg = Registry.open(url)
    import_file(reg, tmp_path / "registry.json")
    reg.close()
    res = run_replay(site, [tmp_path / "own.nmea", tmp_path / "ais_clone.nmea"], registry=url,
                     drain_s=600.0)  # fmt: skip
    found = score({"two_places_at_once": [m]}, res.alerts)
    assert found["two_places_at_once"] == {"expected": 1, "found": 1, "missed": [], "extra": []}
    for rule in RULES:
        assert found[rule]["extra"] == [], (rule, found[rule])
    clones = [a for a in res.alerts if a.data.kind == "cloned_mmsi"]
    assert clones and {a.data.vessel.mmsi for a in clones} == {m}
    names = {f.name for f in clones[-1].data.factors}
    assert {"two_places_at_once", "registered_identity_cloned"} <= names
