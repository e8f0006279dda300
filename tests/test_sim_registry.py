"""The simulator's registry (unregistered, mismatched, expired, watchlisted vessels) and the
scoring of ``shorewatch eval identity``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

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
