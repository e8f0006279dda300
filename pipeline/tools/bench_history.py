"""History benchmarks: ``shorewatch bench archive``, ``bench history-generate`` and
``bench history-query``.

``bench archive`` publishes ``--positions`` position reports (``AisPosition`` JSON, keyed by
MMSI, as the decode agent writes them) to a fresh topic of the broker, then runs one
archiver process over it and times from its first record received to the moment every row
is durable in the archive (files renamed, offset logs written).

``bench history-generate`` writes a month of a busy coast straight into the archive layout
(the archiver's schema, sort order, row groups and compression), vessel by vessel reporting
every 10 s; ``bench history-query`` times a point-radius-time query
(:func:`pipeline.history.query.near`) over it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.history.layout import POSITIONS, TABLES, bucket_dir, day_text, file_name
from pipeline.history.query import Archive, near, parse_time_ms
from pipeline.history.writer import Bounds, write_file

BBOX = (110.05, 19.85, 110.75, 20.32)  # the Haikou site
HOUR_MS = 3_600_000


# --------------------------------------------------------------------------- generate
def generate(root: Path, rows: int, days: int, start_ms: int, seed: int = 0,
             interval_s: float = 10.0, row_group_rows: int = 16_384) -> dict[str, Any]:  # fmt: skip
    """Write ``rows`` position rows over ``days`` days into ``root`` (hourly files).

    Vessels move in straight legs at 0-20 kn inside the site's bbox (bouncing off its
    edges), each reporting every ``interval_s`` seconds with a random phase.
    """
    rng = np.random.default_rng(seed)
    hours = days * 24
    per_vessel_h = int(3600 / interval_s)
    n_v = max(1, math.ceil(rows / (hours * per_vessel_h)))
    x0, y0, x1, y1 = BBOX
    lon = rng.uniform(x0, x1, n_v)
    lat = rng.uniform(y0, y1, n_v)
    sog = np.round(rng.uniform(0, 20, n_v), 1)
    cog = np.round(rng.uniform(0, 360, n_v), 1)
    mmsi = rng.choice(np.arange(412_000_000, 414_000_000), n_v, replace=False)
    phase_ms = rng.integers(0, int(interval_s * 1000), n_v)
    schema = TABLES[POSITIONS].schema
    written, offset, n_files = 0, 0, 0
    deg_per_m = 1 / 111_195.0
    t_begin = time.perf_counter()
    for h in range(hours):
        left = rows - written
        if left <= 0:
            break
        k = np.arange(per_vessel_h)
        t = (
            start_ms
            + h * HOUR_MS
            + phase_ms[:, None]
            + (k * interval_s * 1000).astype(np.int64)[None, :]
        )
        dt_s = (t - (start_ms + h * HOUR_MS)) / 1000.0
        v_mps = sog * 1852 / 3600
        e = np.sin(np.radians(cog)) * v_mps
        nn = np.cos(np.radians(cog)) * v_mps
        plon = lon[:, None] + e[:, None] * dt_s * deg_per_m / math.cos(math.radians(20.0))
        plat = lat[:, None] + nn[:, None] * dt_s * deg_per_m
        n = min(left, plon.size)
        q = 1 / 600_000  # AIS resolution: 1/10000 minute
        cols = {
            "mmsi": np.repeat(mmsi, per_vessel_h)[:n],
            "t_ms": t.ravel()[:n],
            "lon": (np.round(plon.ravel() / q) * q)[:n],
            "lat": (np.round(plat.ravel() / q) * q)[:n],
            "sog_kn": np.repeat(sog, per_vessel_h)[:n],
            "cog_deg": np.repeat(cog, per_vessel_h)[:n],
            "heading_deg": np.repeat(np.round(cog).astype(np.int16) % 360, per_vessel_h)[:n],
            "nav_status": np.zeros(n, np.int8),
            "msg_type": np.ones(n, np.int8),
            "accuracy": np.zeros(n, bool),
            "source": np.full(n, "tcp:receiver-1"),
            "rx_t_ms": t.ravel()[:n],
            "kafka_partition": np.zeros(n, np.int32),
            "kafka_offset": np.arange(offset, offset + n, dtype=np.int64),
        }
        table = pa.table(cols, schema=schema).sort_by("lon")
        hour_ms = start_ms + h * HOUR_MS
        d = bucket_dir(root, POSITIONS, day_text(hour_ms // 86_400_000), (hour_ms // HOUR_MS) % 24)
        d.mkdir(parents=True, exist_ok=True)
        write_file(table, d / file_name(0, offset, offset + n - 1), row_group_rows)
        written += n
        offset += n
        n_files += 1
        # move on: the end of this hour, bouncing off the bbox
        lon = plon[:, -1] + e * interval_s * deg_per_m / math.cos(math.radians(20.0))
        lat = plat[:, -1] + nn * interval_s * deg_per_m
        out = (lon < x0) | (lon > x1) | (lat < y0) | (lat > y1)
        cog = np.where(out, np.mod(cog + 180.0, 360.0), cog)
        lon, lat = np.clip(lon, x0, x1), np.clip(lat, y0, y1)
    return {"rows": written, "files": n_files, "vessels": n_v,
            "generate_s": round(time.perf_counter() - t_begin, 1)}  # fmt: skip


def _du_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*.parquet"))


def cmd_generate(args: argparse.Namespace) -> int:
    root = Path(args.root)
    if root.exists() and any(root.iterdir()) and not args.force:
        print(f"{root} is not empty (--force replaces it)")
        return 2
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    res = generate(root, args.rows, args.days, parse_time_ms(args.start), args.seed,
                   row_group_rows=args.row_group_rows)  # fmt: skip
    res["bytes"] = _du_bytes(root)
    res["root"] = str(root)
    print(json.dumps(res))
    return 0


# --------------------------------------------------------------------------- query
def cmd_query(args: argparse.Namespace) -> int:
    root = Path(args.root)
    lon, lat = (float(v) for v in args.point.split(","))
    files = sorted(root.glob(f"topic={POSITIONS}/date=*/hour=*/*.parquet"))
    rows = sum(pq.read_metadata(f).num_rows for f in files)
    times, hits = [], None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        a = Archive(root, threads=args.threads)
        res = near(a, lon, lat, args.radius_m, parse_time_ms(args.from_), parse_time_ms(args.to))
        times.append(time.perf_counter() - t0)
        hits = res
    assert hits is not None
    print(json.dumps({
        "rows": rows, "files": len(files), "bytes": _du_bytes(root),
        "query": f"near {lon},{lat} radius {args.radius_m:g} m, {args.from_} .. {args.to}",
        "vessels_found": len(hits["vessels"]),
        "fixes_found": int(sum(r["fixes"] for r in hits["vessels"])),
        "first_s": round(times[0], 3), "median_s": round(statistics.median(times), 3),
        "runs": len(times),
    }))  # fmt: skip
    return 0


# --------------------------------------------------------------------------- archive
async def _bench_archive(bootstrap: str, n: int, partitions: int, keep: bool) -> dict[str, Any]:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from pipeline.history.archiver import Archiver
    from pipeline.topics import partition_of
    from schemas.records import AisPosition

    topic = f"bench{uuid.uuid4().hex[:6]}.ais.position.v1"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    enc = msgspec.json.Encoder()
    rng = np.random.default_rng(1)
    t0 = parse_time_ms("2026-03-08T00:00:00Z")
    prod = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=50,
                            max_batch_size=1 << 20)  # fmt: skip
    await prod.start()
    t_prod = time.perf_counter()
    try:
        mm = rng.integers(412_000_000, 412_002_000, n)
        lon = rng.uniform(110.05, 110.75, n)
        lat = rng.uniform(19.85, 20.32, n)
        batches: dict[int, Any] = {}
        futs = []
        for i in range(n):
            p = AisPosition(mmsi=int(mm[i]), msg_type=1, t_ms=t0 + i * 5, lon=float(lon[i]),
                            lat=float(lat[i]), sog_kn=12.3, cog_deg=87.5, heading_deg=88,
                            nav_status=0, accuracy=True, source="tcp:receiver-1",
                            rx_t_ms=t0 + i * 5)  # fmt: skip
            key = str(p.mmsi).encode()
            part = partition_of(key, partitions)
            b = batches.get(part) or batches.setdefault(part, prod.create_batch())
            if b.append(key=key, value=enc.encode(p), timestamp=None) is None:
                futs.append(await prod.send_batch(b, topic, partition=part))
                b = batches[part] = prod.create_batch()
                b.append(key=key, value=enc.encode(p), timestamp=None)
        for part, b in batches.items():
            futs.append(await prod.send_batch(b, topic, partition=part))
        await asyncio.gather(*futs)
    finally:
        await prod.stop()
    produce_s = time.perf_counter() - t_prod
    root = Path(
        tempfile.mkdtemp(prefix="bench-archive-", dir="var" if Path("var").is_dir() else None)
    )
    arch = Archiver(bootstrap, root, topic_names=[topic], group_id=f"bench-{uuid.uuid4().hex[:6]}",
                    bounds=Bounds(max_rows=250_000, max_age_s=2.0))  # fmt: skip
    cpu0 = time.process_time()
    task = asyncio.create_task(arch.run())
    try:
        while True:
            logged = sum(arch.writer.next_offset(topic, p) or 0 for p in range(partitions))
            if logged >= n:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        t_end = time.monotonic()
        cpu_s = time.process_time() - cpu0
    finally:
        arch.stop()
        await asyncio.wait_for(task, 120)
    assert arch.first_record_s is not None
    secs = t_end - arch.first_record_s
    res: dict[str, Any] = {"positions": n, "partitions": partitions, "archive_s": round(secs, 2),
           "positions_per_s": round(n / secs), "cpu_s": round(cpu_s, 2),
                           "positions_per_cpu_s": round(n / cpu_s), "files": arch.writer.counters["files"],
           "bytes": _du_bytes(root), "produce_s": round(produce_s, 1)}  # fmt: skip
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        res["root"] = str(root)
    return res


def cmd_archive(args: argparse.Namespace) -> int:
    from pipeline.settings import Settings

    res = asyncio.run(_bench_archive(Settings.from_env().broker(), args.positions,
                                     args.partitions, args.keep))  # fmt: skip
    print(json.dumps(res))
    return 0
