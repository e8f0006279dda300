"""End-to-end AIS benchmark through the real broker: ``shorewatch bench ais --e2e``.

One worker process (agents ``decode`` and ``tracks``), a producer in the role of
the AIS connector (raw micro-batches of 500 lines, keyed by source), and a reader
of the track topic.

- **Throughput**: real position sentences from ``../shared/data/ais`` (AMSA and DMA
  feeds), given fresh NMEA 4.10 tag-block times so that repetitions are not
  de-duplicated, are produced as fast as possible; the clock stops when a sentinel
  fix sent last on every partition comes out as a track update. A first, unmeasured
  pass of :data:`WARMUP_SENTENCES` warms the whole path up (a freshly started
  broker is about a tenth slower in its first seconds under load).
  ``e2e_sentences_per_s`` = sentences / that time.
- **Latency**: the same sentences at a fixed rate (default 5,000 sentences/s), each
  stamped with its send time in its tag block (``c:`` in ms); latency is the time
  from that stamp to the track update carrying it on the track topic
  (``p50_ms``, ``p99_ms``).

``shorewatch bench alerts`` measures condition-to-alert latency: a simulated night
through the AIS connector, the camera feed and a worker with the live settings, with
5,000 AIS sentences/s from elsewhere beside it; the night plays at real time around
each alert and fast-forwards between them (see :func:`_alert_latency`).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import msgspec
import numpy as np

from pipeline import admin, topics
from pipeline.settings import REPO_DIR
from pipeline.tools import localkafka
from pipeline.tools.sentinels import TrackReader, _tag, sentinel, sentinel_mmsis
from schemas import records

BATCH_LINES = 500
#: sentences pushed through before the throughput is measured
WARMUP_SENTENCES = 100_000


def position_sentences(data_dir: Path) -> list[str]:
    """Single-fragment position-report sentences (types 1–3, 18, 19, 27) of the real feeds."""
    out: list[str] = []
    texts = [
        gzip.open(data_dir / "amsa_risky_ais.txt.gz", "rt", errors="replace").read(),
        (data_dir / "dma_aislib_stream_example.txt").read_text(errors="replace"),
    ]
    for text in texts:
        for line in text.splitlines():
            i = line.find("!")
            if i < 0:
                continue
            s = line[i:].split("*", 1)
            if len(s) != 2 or len(s[1]) < 2:
                continue
            fields = s[0].split(",")
            if len(fields) < 7 or fields[1] != "1" or not fields[5]:
                continue
            c = ord(fields[5][0]) - 48
            mtype = c - 8 if c > 40 else c
            if mtype in (1, 2, 3, 18, 19, 27):
                out.append(f"{s[0]}*{s[1][:2]}")
    return out


def _start_worker(bootstrap: str, tmp: Path, app_id: str | None = None) -> subprocess.Popen:
    from pipeline.tools.worker_process import start_worker_process

    return start_worker_process(
        bootstrap,
        tmp,
        agents="decode,tracks",
        site=REPO_DIR / "sites" / "haikou",
        app_id_prefix="bench",
        extra_env={"SHOREWATCH_APP_ID": app_id} if app_id else None,
    )


def cpu_s(pid: int | None = None) -> float:
    """CPU time (user + system) a process has used, s: ``pid`` from ``/proc``, else this
    process (all its threads)."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _wait_group(bootstrap: str, group: str, members: int, timeout_s: float) -> None:
    """Wait until ``group`` is stable with ``members`` members that all hold partitions."""
    from aiokafka.admin import AIOKafkaAdminClient

    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await client.start()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            desc = await client.describe_consumer_groups([group])
            # raw DescribeGroups responses: (error, group, state, type, protocol, members)
            for g in (g for r in desc for g in r.groups):
                if g[1] == group and g[2] == "Stable" and len(g[5]) >= members:
                    return
            await asyncio.sleep(1.0)
        raise RuntimeError(f"group {group} did not reach {members} stable members")
    finally:
        await client.close()


async def _bench(
    bootstrap: str,
    sentences: list[str],
    n_total: int,
    rate: float,
    latency_s: float,
    tmp: Path,
    n_workers: int = 1,
    broker_pid: int | None = None,
) -> dict[str, object]:
    from connectors.kafka import RecordProducer

    await admin.acreate_topics(bootstrap)
    n_part = topics.TRACK.partitions
    app_id = f"bench-{uuid.uuid4().hex[:8]}"
    workers = [_start_worker(bootstrap, tmp / f"worker-{k + 1}", app_id) for k in range(n_workers)]
    worker = workers[0]
    reader = TrackReader(bootstrap)
    await reader.start()
    source = f"bench:{uuid.uuid4().hex[:6]}"
    try:
        async with RecordProducer(bootstrap, linger_ms=2) as producer:

            async def send(lines: list[str]) -> None:
                now = int(time.time() * 1000)
                await producer.send(
                    topics.AIS_RAW,
                    source,
                    records.RawAisBatch(source=source, lines=lines, rx_t_ms=[now] * len(lines)),
                )

            # Warm-up: the worker has joined and processes when a sentinel comes out.
            marks = sentinel_mmsis(n_part)
            ready = False
            for _ in range(12):
                if worker.poll() is not None:
                    tail = (tmp / "worker-1" / "worker.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"worker exited with {worker.returncode}:\n{tail}")
                now = int(time.time() * 1000)
                await send([sentinel(m, now) for m in marks])
                if await reader.until(set(marks), 10.0):
                    ready = True
                    break
            if not ready:
                raise RuntimeError(f"worker not ready; log: {tmp / 'worker-1' / 'worker.log'}")
            if n_workers > 1:  # every worker holds partitions before anything is measured
                await _wait_group(bootstrap, app_id, n_workers, 300.0)

            async def push(n: int, days_back: int, end_marks: list[int]) -> tuple[float, float]:
                """``n`` sentences as fast as possible, then ``end_marks``; seconds until
                all are sent, and until every mark came out as a track update."""
                base_ms = int(time.time() * 1000) - 3_600_000 * 24 * days_back
                lines = [
                    _tag(base_ms + 1000 * (i // 50)) + sentences[i % len(sentences)]
                    for i in range(n)
                ]
                t0 = time.perf_counter()
                for i in range(0, n, BATCH_LINES):
                    await send(lines[i : i + BATCH_LINES])
                now = int(time.time() * 1000)
                await send([sentinel(m, now + 1) for m in end_marks])
                await producer.flush()
                t_sent = time.perf_counter() - t0
                if not await reader.until(set(end_marks), 600.0):
                    raise RuntimeError("throughput phase did not finish within 600 s")
                return t_sent, time.perf_counter() - t0

            # Warm-up of the whole path (the broker's JVM compiles its hot code in the
            # first seconds under load), not measured; its own marks and event times.
            await push(WARMUP_SENTENCES, 2, sentinel_mmsis(n_part, first=211_997_000))
            # Throughput.
            end_marks = sentinel_mmsis(n_part, first=211_998_000)  # not the warm-ups'
            pids = [w.pid for w in workers]
            cpu0 = ([cpu_s(p) for p in pids], cpu_s(broker_pid) if broker_pid else None, cpu_s())
            t_sent, elapsed = await push(n_total, 1, end_marks)
            cpu1 = ([cpu_s(p) for p in pids], cpu_s(broker_pid) if broker_pid else None, cpu_s())

            # Latency at a fixed rate.
            lat: list[float] = []
            phase_start = int(time.time() * 1000)

            def on_track(tr: records.Track, now_ms: float) -> None:
                if tr.t_ms >= phase_start and tr.mmsi not in end_marks:
                    lat.append(now_ms - tr.t_ms)

            tick_s = 0.02
            per_tick = max(1, int(rate * tick_s))
            reading = asyncio.create_task(reader.until({-1}, latency_s + 5.0, on_track))
            t_start = time.perf_counter()
            k = 0
            i = 0
            while time.perf_counter() - t_start < latency_s:
                now = int(time.time() * 1000)
                chunk = [_tag(now) + sentences[(i + j) % len(sentences)] for j in range(per_tick)]
                i += per_tick
                await send(chunk)
                k += 1
                delay = t_start + k * tick_s - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent_rate = i / (time.perf_counter() - t_start)
            await reading
    finally:
        await reader.stop()
        from pipeline.tools.worker_process import stop_worker_process

        for w in workers:
            stop_worker_process(w)
    arr = np.array(lat) if lat else np.array([np.nan])
    per_1k = 1000.0 / n_total  # CPU ms per 1,000 sentences from CPU s per run

    def ms_per_1k(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round((b - a) * 1000.0 * per_1k, 2)

    cost = {
        "cpu_ms_per_1k_worker": [ms_per_1k(a, b) for a, b in zip(cpu0[0], cpu1[0], strict=True)],
        "cpu_ms_per_1k_broker": ms_per_1k(cpu0[1], cpu1[1]),
        "cpu_ms_per_1k_producer": ms_per_1k(cpu0[2], cpu1[2]),
        "cores": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 1),
    }
    return {
        "sentences": n_total,
        "producer_s": round(t_sent, 3),
        "e2e_s": round(elapsed, 3),
        "e2e_sentences_per_s": round(n_total / elapsed),
        "latency_rate_per_s": round(sent_rate),
        "latency_samples": int(len(lat)),
        "p50_ms": round(float(np.percentile(arr, 50)), 1),
        "p99_ms": round(float(np.percentile(arr, 99)), 1),
        "workers": n_workers,
        "partitions": n_part,
        **cost,
    }


def run(args: argparse.Namespace) -> int:
    """Entry point of ``shorewatch bench ais --e2e``."""
    tmp = Path(os.environ.get("SHOREWATCH_BENCH_DIR", REPO_DIR / "var" / "bench"))
    tmp.mkdir(parents=True, exist_ok=True)
    sentences = position_sentences(Path(args.data))
    n_total = int(getattr(args, "e2e_sentences", 0) or 300_000)
    rate = float(getattr(args, "rate", 0) or 5000.0)
    n_workers = max(1, int(getattr(args, "workers", 1) or 1))
    with localkafka.broker() as bootstrap:
        info = localkafka.running()
        pid = info.pid if info is not None and info.bootstrap == bootstrap else None
        result = asyncio.run(
            _bench(bootstrap, sentences, n_total, rate, 15.0, tmp, n_workers, broker_pid=pid)
        )
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:24s} {v}")
    return 0


# --------------------------------------------------------------------------- alert latency


#: each alert's real-time window of event time: this long before its condition became true
WINDOW_BEFORE_S = 20.0
#: and this long after, s
WINDOW_AFTER_S = 5.0


def real_time_windows(event_t_ms: list[int]) -> tuple[tuple[int, int], ...]:
    """Merged event-time windows around each time: [t - 20 s, t + 5 s], ms."""
    out: list[list[int]] = []
    for t in sorted(event_t_ms):
        a, b = t - int(WINDOW_BEFORE_S * 1000), t + int(WINDOW_AFTER_S * 1000)
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return tuple((a, b) for a, b in out)


async def _alert_latency(bootstrap: str, speed: float, load_per_s: float, tmp: Path) -> dict:
    """The night through the live pipeline, at real-time pace around every alert.

    The night is replayed in-process first; each alert it opens gets a window of event
    time (:data:`WINDOW_BEFORE_S` before the condition became true to
    :data:`WINDOW_AFTER_S` after) that the live replay plays at real time, the rest at
    ``speed``. The worker runs with the live settings (AIS disorder, camera idle time), so the
    latency inside the windows is what a live feed sees.
    """
    from datetime import datetime

    from connectors.kafka import Pace, RecordProducer
    from pipeline.engine.state import AreaContext
    from pipeline.replay import run_replay
    from pipeline.settings import Settings
    from pipeline.site import load_site
    from pipeline.tools.demo import run_through_pipeline
    from pipeline.tools.evaluate import parse_time_ms
    from pipeline.tools.simulate import SimConfig, simulate

    await admin.acreate_topics(bootstrap)
    site_dir = REPO_DIR / "sites" / "haikou"
    start = datetime.fromisoformat("2026-03-08T03:00:00+08:00")
    night = tmp / "alert-night"
    if not (night / "truth.json").exists():
        simulate(
            site_dir, SimConfig(seed=1, start=start, duration_s=3600, fps=0.5, noise="none"), night
        )
    offline = run_replay(site_dir, [night / "ais.nmea"], [night / "detections.jsonl"])
    expected = {a.data.alert_id: parse_time_ms(a.data.event_time) for a in offline.alerts
                if a.data.status == "open"}  # fmt: skip
    pace = Pace(speed, real_time_windows(list(expected.values())))
    tick_s = AreaContext.from_site(load_site(site_dir)).thresholds.eval_tick_s
    live = Settings()
    worker_env = {  # the live settings: a real-time feed's watermarks
        "SHOREWATCH_AIS_DISORDER_MS": str(live.ais_disorder_ms),
        "SHOREWATCH_CAMERA_IDLE_MS": str(live.camera_idle_ms),
    }
    sentences = position_sentences(
        Path(os.environ.get("SHOREWATCH_SHARED", REPO_DIR.parent / "shared")) / "data" / "ais"
    )
    sent = [0]

    async def load() -> None:
        """Real position sentences from other coasts (outside the site) at a steady rate."""
        async with RecordProducer(bootstrap, linger_ms=2) as producer:
            tick_s, i = 0.02, 0
            per_tick = max(1, int(load_per_s * tick_s))
            t_start = time.perf_counter()
            k = 0
            while True:
                # stamped with the night's event time: one worker, one clock (other
                # traffic months ahead of the night would evict its tracks as idle)
                now = int(time.time() * 1000)
                t_ev = pace.event_ms(timing["t0_event_ms"], time.monotonic() - timing["t0_wall"])
                lines = [_tag(t_ev) + sentences[(i + j) % len(sentences)] for j in range(per_tick)]
                i += per_tick
                await producer.send(
                    topics.AIS_RAW,
                    "bench:load",
                    records.RawAisBatch(
                        source="bench:load", lines=lines, rx_t_ms=[now] * len(lines)
                    ),
                )
                sent[0] += per_tick
                k += 1
                delay = t_start + k * tick_s - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)

    timing: dict = {}
    t_wall = time.monotonic()
    alerts = await run_through_pipeline(
        bootstrap,
        site_dir,
        night,
        start,
        pace,
        timing=timing,
        extra_load=load if load_per_s > 0 else None,
        worker_env=worker_env,
    )
    t_wall = time.monotonic() - t_wall
    with open(night / "live-alerts.jsonl", "wb") as f:  # for a look at what came out
        f.writelines(msgspec.json.encode(a) + b"\n" for a in alerts)
    lat: dict[str, float] = {}
    for a, arrived in zip(alerts, timing.get("arrivals", []), strict=False):
        ev = parse_time_ms(a.data.event_time)
        if a.data.status != "open" or not any(x <= ev <= y for x, y in pace.real_time_ms):
            continue
        true_at = timing["t0_wall"] + pace.wall_s(timing["t0_event_ms"], ev)
        lat[a.data.alert_id] = (arrived - true_at) * 1000
    arr = np.array(list(lat.values())) if lat else np.array([np.nan])
    return {
        "fast_speed": speed,
        "real_time_windows": len(pace.real_time_ms),
        "real_time_s": round(sum(b - a for a, b in pace.real_time_ms) / 1000),
        "run_s": round(t_wall),
        "ais_disorder_ms": live.ais_disorder_ms,
        "eval_tick_ms": int(tick_s * 1000),
        "background_ais_per_s": load_per_s,
        "background_sentences": sent[0],
        "alerts_expected": len(expected),
        "alerts_measured": len(lat),
        "alerts_as_replay": sum(1 for k in lat if k in expected),
        "replay_alerts_not_measured": sorted(set(expected) - set(lat)),
        "measured_alerts_not_in_replay": sorted(set(lat) - set(expected)),
        "alert_latency_p50_ms": round(float(np.percentile(arr, 50)), 1),
        "alert_latency_p99_ms": round(float(np.percentile(arr, 99)), 1),
        "alert_latency_max_ms": round(float(np.max(arr)), 1),
    }


def run_alerts(args: argparse.Namespace) -> int:
    """Entry point of ``shorewatch bench alerts``."""
    tmp = Path(os.environ.get("SHOREWATCH_BENCH_DIR", REPO_DIR / "var" / "bench"))
    tmp.mkdir(parents=True, exist_ok=True)
    with localkafka.broker() as bootstrap:
        result = asyncio.run(_alert_latency(bootstrap, args.speed, args.load, tmp))
    print(json.dumps(result) if args.json else "\n".join(f"{k:26s} {v}" for k, v in result.items()))
    return 0
