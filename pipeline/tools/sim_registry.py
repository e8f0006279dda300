"""The simulator's vessel registry: a registry and watchlist for the vessels of one
simulated run, with some of them unregistered, registered under another name, with a
lapsed registration or on the watchlist, and the identity findings the pipeline should
make (the truth of ``shorewatch eval identity``).

:func:`write_sim_registry` runs after :func:`pipeline.tools.simulate.simulate` and writes
beside its ``truth.json``:

- ``registry.json``: the registered vessels, as ``shorewatch registry import`` reads them;
- ``watchlist.json``: watchlist entries (``kind``, ``value``, ``reason``, ``added_by``);
- ``registry_truth.json``: the MMSIs each identity rule should find;
- ``ais_clone.nmea``: a second transmitter broadcasting the MMSI of one registered vessel
  (with nothing else to find about it) from at least 10 km away for 30 min
  (:mod:`pipeline.tools.sim_clone`): the truth of ``cloned_mmsi``, replayed beside
  ``ais.nmea`` by ``shorewatch eval identity`` (the other evaluations do not read it).

The choice is a function of the run's seed (a generator of its own, so the simulator's
vessels and tracks do not change). Every AIS vessel of the simulator has a Chinese MID, so
each one the registry leaves out is an unregistered Chinese-MID MMSI. Home harbours are the
authorised zones a vessel stops in during the run (for a vessel that stops in none, the
harbour or port nearest where it starts);
a registered vessel that stops at night elsewhere, with its AIS on when the stop begins,
for at least ``home_stop_s`` (a stop still going when the run ends counts as going on),
should be found outside its home harbours.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.detectors.thresholds import Thresholds
from pipeline.core.geo import solar_elevation_deg
from pipeline.tools.sim_clone import clone_lines, plan_clone

__all__ = ["RULES", "generate_registry", "write_sim_registry"]

#: the identity findings scored, by the alert factor that reports each
RULES = (
    "unregistered",
    "name_mismatch",
    "registration_expired",
    "watchlist",
    "away_from_home",
    "two_places_at_once",
)

#: shares of the AIS vessels: left out of the registry, registered under another name,
#: registered with a lapsed registration, on the watchlist (any of the others too)
UNREGISTERED, MISMATCHED, EXPIRED, WATCHLISTED = 0.15, 0.10, 0.10, 0.10
_STOP_KN = 0.5
_BERTHS = ("fishing_harbour", "port", "pier")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` index runs where ``mask`` holds."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def _ais_on(v: dict[str, Any], t_ms: int) -> bool:
    return any(a <= t_ms <= b for a, b in v["ais_intervals"])


def _stops(v: dict[str, Any], site: Any, th: Thresholds) -> tuple[list[str], list[dict]]:
    """The zones a vessel stops in, and its stops outside them (with time, place, night)."""
    tr = np.asarray(v["track"], dtype=np.float64)
    if tr.size == 0:
        return [], []
    t, lon, lat, sog = tr[:, 0].astype(np.int64), tr[:, 1], tr[:, 2], tr[:, 3]
    geo = site.geometry()
    names = [z.name for z in geo.zones]
    zd = geo.zone_distances_m(lon, lat)
    homes: list[str] = []
    stops: list[dict[str, Any]] = []
    for a, b in _runs(sog < _STOP_KN):
        inside = [names[k] for k in np.flatnonzero(zd[a:b].min(axis=0) <= 0.0).tolist()]
        for n in inside:
            if n not in homes:
                homes.append(n)
        stops.append({"a": a, "b": b, "t0": int(t[a]), "t1": int(t[b - 1]), "zones": inside})
    if not homes and names:  # it berths in none here: home is the harbour nearest its start
        berths = [k for k, z in enumerate(geo.zones) if z.kind in _BERTHS] or list(
            range(len(names))
        )
        homes = [names[min(berths, key=lambda k: zd[0, k])]]
    away = []
    for s in stops:
        a, b = s["a"], s["b"]
        if not homes or s["zones"] or not _ais_on(v, s["t0"]):
            continue
        due = s["t0"] + int(th.home_stop_s * 1000)
        k0 = int(np.searchsorted(t, due))
        # a stop still going when the run ends goes on (the evaluation lets time run on)
        ts = t[k0:b] if k0 < b else np.array([due] if b == len(t) else [], dtype=np.int64)
        ks = np.arange(k0, b) if k0 < b else np.full(ts.size, b - 1)
        night = solar_elevation_deg(lon[ks], lat[ks], ts) < th.night_sun_elevation_deg
        far = all(zd[a:b, names.index(h)].min() > th.home_margin_m for h in homes)
        if night.any() and far:
            k = int(ks[int(np.argmax(night))])
            away.append({"t_ms": int(ts[int(np.argmax(night))]), "lon": float(lon[k]),
                         "lat": float(lat[k])})  # fmt: skip
    return homes, away


def generate_registry(truth: dict[str, Any], site: Any) -> dict[str, Any]:
    """The registry, watchlist and identity truth of one simulated run.

    :param truth: the run's ``truth.json``
    :param site: the loaded site
    :returns: ``{"vessels": [...], "watchlist": [...], "expected": {rule: [mmsi, ...]},
        "clone": plan or None}`` (:func:`pipeline.tools.sim_clone.plan_clone`)
    """
    th = Thresholds()
    rng = np.random.default_rng([int(truth["seed"]), 22])
    start = dt.date.fromisoformat(truth["start"][:10])
    ais = sorted((v for v in truth["vessels"] if v["mmsi"]), key=lambda v: v["mmsi"])
    n = len(ais)
    order = rng.permutation(n).tolist()
    k_un, k_mis, k_exp = (max(1, round(share * n)) if n >= 5 else 0 for share in
                          (UNREGISTERED, MISMATCHED, EXPIRED))  # fmt: skip
    unreg = set(order[:k_un])
    named = [i for i in order[k_un:] if ais[i]["name"]]
    mism = set(named[:k_mis])
    rest = [i for i in order[k_un:] if i not in mism]
    expd = set(rest[:k_exp])
    watch = set(rng.permutation(n)[: max(1, round(WATCHLISTED * n)) if n >= 5 else 0].tolist())
    vessels: list[dict[str, Any]] = []
    entries: list[dict[str, str]] = []
    expected: dict[str, list[int]] = {r: [] for r in RULES}
    clean: list[int] = []  # registered, with nothing else to find: may be cloned
    for i, v in enumerate(ais):
        m = int(v["mmsi"])
        homes, away = _stops(v, site, th)
        if i in watch:
            entries.append({"kind": "mmsi", "value": str(m), "added_by": "sim",
                            "reason": f"simulated lead {len(entries) + 1}"})  # fmt: skip
            expected["watchlist"].append(m)
        if i in unreg:
            expected["unregistered"].append(m)
            continue
        serial = 10000 + i
        name = v["name"] or f"QIONG HAI YU {serial}"
        if i in mism:
            name = f"QIONG HAI YU {serial}"
            expected["name_mismatch"].append(m)
        days = int(rng.integers(30, 365))
        until = start - dt.timedelta(days=days) if i in expd else start + dt.timedelta(days=days)
        if i in expd:
            expected["registration_expired"].append(m)
        if away:
            expected["away_from_home"].append(m)
        if not away and i not in mism | expd | watch:
            clean.append(m)
        vessels.append({
            "registration_no": f"HK-{serial}", "mmsi": str(m), "name": name,
            "hull_number": f"琼海口渔{serial}", "port_of_registry": "海口",
            "vessel_type": v["role"], "length_m": v["length_m"], "owner": f"owner {serial}",
            "home_harbours": homes, "valid_until": until.isoformat(),
        })  # fmt: skip
    # a generator of its own, so that the choices above do not change with it
    clone = plan_clone(truth, clean, np.random.default_rng([int(truth["seed"]), 22, 1]))
    if clone is not None:
        expected["two_places_at_once"].append(clone["mmsi"])
    return {"vessels": vessels, "watchlist": entries, "expected": expected, "clone": clone}


def write_sim_registry(site: Any, truth: dict[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """Write ``registry.json``, ``watchlist.json``, ``registry_truth.json`` and
    ``ais_clone.nmea`` (empty when no clone fits the run) for a run."""
    out = Path(out_dir)
    doc = generate_registry(truth, site)

    def dump(name: str, value: Any) -> None:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, indent=0)
        (out / name).write_text(text + "\n", "utf-8")

    dump("registry.json", doc["vessels"])
    dump("watchlist.json", doc["watchlist"])
    clone = doc["clone"]
    summary = None if clone is None else {k: v for k, v in clone.items() if k != "path"}
    dump("registry_truth.json", {"seed": truth["seed"], "expected": doc["expected"],
                                 "clone": summary})  # fmt: skip
    lines = (
        []
        if clone is None
        else clone_lines(truth, clone, np.random.default_rng([int(truth["seed"]), 22, 2]))
    )
    (out / "ais_clone.nmea").write_text("".join(x + "\n" for x in lines), encoding="ascii")
    return doc
