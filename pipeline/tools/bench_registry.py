"""The registry benchmark: look-ups of a micro-batch of MMSIs, from the database and from the
in-memory index the pipeline uses."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.registry.index import RegistryIndex
from pipeline.registry.store import Registry


def bench_registry(url: str | None, vessels: int, batch: int, repeats: int) -> dict:
    """Fill a registry with ``vessels`` rows (a temporary SQLite file when ``url`` is None),
    then time look-ups of ``batch`` MMSIs (half of them registered), best of ``repeats``."""
    tmp = None
    if url is None:
        tmp = tempfile.TemporaryDirectory()
        url = f"sqlite:///{Path(tmp.name) / 'registry.sqlite'}"
    reg = Registry.open(url)
    base = 412_000_000
    rows = [
        {"registration_no": f"B{i:07d}", "mmsi": base + 2 * i, "name": f"BENCH {i}",
         "hull_number": None, "port_of_registry": None, "vessel_type": "fishing",
         "length_m": 12.0, "owner": None, "home_harbours": None, "valid_until": None}
        for i in range(vessels)
    ]  # fmt: skip
    reg.upsert(rows)
    mmsis = np.random.default_rng(1).integers(base, base + 2 * vessels, size=batch)
    t = time.perf_counter()
    index = RegistryIndex(reg.all())
    load_s = time.perf_counter() - t
    db_s, idx_s = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        reg.by_mmsi(mmsis.tolist())
        db_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        index.positions(mmsis)
        idx_s.append(time.perf_counter() - t)
    reg.close()
    if tmp is not None:
        tmp.cleanup()
    return {
        "database": reg.engine.dialect.name,
        "vessels": vessels,
        "batch": batch,
        "db_query_ms": round(min(db_s) * 1000, 2),
        "index_lookup_ms": round(min(idx_s) * 1000, 3),
        "index_load_ms": round(load_s * 1000, 1),
    }


def cmd_bench(args: argparse.Namespace) -> int:
    res = bench_registry(args.registry_url, args.vessels, args.batch, args.repeats)
    print(json.dumps(res) if args.json else
          f"{res['batch']} MMSIs among {res['vessels']} vessels ({res['database']}): "
          f"index {res['index_lookup_ms']} ms, one database query {res['db_query_ms']} ms "
          f"(index load {res['index_load_ms']} ms)")  # fmt: skip
    return 0
