"""The archiver against the real broker: round trip, kill -9 restarts, a full disk."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import msgspec
import pyarrow.parquet as pq
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import REGISTRY

from pipeline.history.archiver import Archiver
from pipeline.history.query import Archive
from pipeline.history.writer import Bounds
from schemas.records import AisPosition, DeadLetter

REPO = Path(__file__).resolve().parents[1]
T0_MS = 1_772_920_800_000  # 2026-03-07T22:00:00Z
_enc = msgspec.json.Encoder()

pytestmark = pytest.mark.integration


def position(i: int) -> AisPosition:
    """The i-th test position: 50 vessels, one fix every 0.5 s of event time (so rows of
    one segment fall in several hours for the larger tests)."""
    return AisPosition(
        mmsi=412_000_000 + i % 50, msg_type=1, t_ms=T0_MS + i * 500, lon=110.3 + (i % 97) * 1e-3,
        lat=20.05 + (i % 89) * 1e-3, sog_kn=(i % 13) * 0.5, cog_deg=float(i % 360),
        heading_deg=None, nav_status=0, accuracy=True, source="test", rx_t_ms=T0_MS + i * 500,
    )  # fmt: skip


async def _topic(bootstrap: str, partitions: int = 4) -> str:
    name = f"t{uuid.uuid4().hex[:8]}.ais.position.v1"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()
    return name


async def _produce(bootstrap: str, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    prod = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await prod.start()
    try:
        futs = [await prod.send(topic, v, key=k) for k, v in values]
        await asyncio.gather(*futs)
    finally:
        await prod.stop()


def _rows(root: Path) -> list[tuple[int, int]]:
    files = sorted(root.glob("topic=ais.position.v1/date=*/hour=*/part-*.parquet"))
    out: list[tuple[int, int]] = []
    for f in files:
        t = pq.read_table(f, columns=["kafka_partition", "kafka_offset"])
        out += list(
            zip(t["kafka_partition"].to_pylist(), t["kafka_offset"].to_pylist(), strict=True)
        )
    return out


async def _wait(cond, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_archive_round_trip_and_dead_letter(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = await _topic(kafka_bootstrap)
    n = 2000
    values = [(str(p.mmsi).encode(), _enc.encode(p)) for p in map(position, range(n))]
    values.insert(777, (b"412000001", b"{not json"))
    await _produce(kafka_bootstrap, topic, values)
    rows_before = (
        REGISTRY.get_sample_value("shorewatch_archive_rows_total", {"table": "ais.position.v1"})
        or 0.0
    )
    arch = Archiver(kafka_bootstrap, tmp_path, topic_names=[topic], group_id=f"g{uuid.uuid4().hex}",
                    bounds=Bounds(max_rows=400, max_age_s=0.5))  # fmt: skip
    task = asyncio.create_task(arch.run())
    try:
        await _wait(lambda: arch.writer.counters["rows"] >= n and arch.writer.buffered_rows() == 0,
                    120, "all rows archived")  # fmt: skip
    finally:
        arch.stop()
        await asyncio.wait_for(task, 60)
    rows = _rows(tmp_path)
    assert len(rows) == n == len(set(rows))
    assert arch.writer.counters["rejected"] == 1
    assert arch.counters["dead_letters.undecodable_record"] == 1
    rows_after = REGISTRY.get_sample_value(
        "shorewatch_archive_rows_total", {"table": "ais.position.v1"}
    )
    assert rows_after - rows_before == n  # the Prometheus counter of pipeline.metrics
    # the archive is queryable, and its values are the records sent
    a = Archive(tmp_path)
    assert a.view("p", "ais.position.v1", None, None) > 0
    got = a.query("SELECT mmsi, t_ms, lon, lat, sog_kn FROM p ORDER BY t_ms").to_pylist()
    want = [position(i) for i in range(n)]
    assert [(r["mmsi"], r["t_ms"], r["lon"], r["lat"]) for r in got] == [
        (p.mmsi, p.t_ms, p.lon, p.lat) for p in want
    ]
    # the dead letter carries the raw bytes
    cons = AIOKafkaConsumer("shorewatch.deadletter.v1", bootstrap_servers=kafka_bootstrap,
                            auto_offset_reset="earliest", group_id=None)  # fmt: skip
    await cons.start()
    try:
        found = False
        deadline = time.monotonic() + 30
        while not found and time.monotonic() < deadline:
            batches = await cons.getmany(timeout_ms=500)
            for msgs in batches.values():
                for m in msgs:
                    dl = msgspec.json.decode(m.value, type=DeadLetter)
                    if dl.stage == "archive" and dl.source.startswith(topic):
                        assert base64.b64decode(dl.raw_b64) == b"{not json"
                        assert dl.reason == "undecodable_record"
                        found = True
        assert found
    finally:
        await cons.stop()


def _start(bootstrap: str, root: Path, topic: str, group: str) -> subprocess.Popen:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "pipeline.cli", "archive", "--root", str(root), "--topic", topic,
           "--group", group, "--max-rows", "100", "--max-age-s", "0.2",
           "--metrics-file", str(root.parent / "archive.prom")]  # fmt: skip
    return subprocess.Popen(cmd, env=env, cwd=REPO)


def _logged(root: Path) -> int:
    """Offsets the partitions' logs name as archived (all partitions together)."""
    total = 0
    for f in root.glob("_offsets/topic=ais.position.v1/partition=*.json"):
        try:
            total += msgspec.json.decode(f.read_bytes()).get("next_offset") or 0
        except (msgspec.DecodeError, OSError):
            pass
    return total


async def test_kill9_mid_write_loses_and_duplicates_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = await _topic(kafka_bootstrap)
    n = 40_000  # 0.5 s apart: 5.5 hours of event time, segments span hours
    await _produce(kafka_bootstrap, topic,
                   [(str(p.mmsi).encode(), _enc.encode(p)) for p in map(position, range(n))])  # fmt: skip
    group = f"g{uuid.uuid4().hex}"
    root = tmp_path / "archive"
    at_kill = []
    for fraction in (0.15, 0.45, 0.7):
        proc = _start(kafka_bootstrap, root, topic, group)
        try:
            await _wait(lambda f=fraction, p=proc: _logged(root) >= f * n or p.poll() is not None,
                        180, f"{fraction:.0%} archived")  # fmt: skip
            assert proc.poll() is None, "archiver exited"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        at_kill.append(_logged(root))
    assert at_kill[0] < n, "killed after the end, not mid-write"
    prom = tmp_path / "archive.prom"
    prom.unlink(missing_ok=True)
    proc = _start(kafka_bootstrap, root, topic, group)
    try:
        await _wait(lambda: _logged(root) >= n and prom.exists(), 240, "everything archived")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    rows = _rows(root)
    assert len(rows) == len(set(rows)), "duplicated rows"
    assert len(rows) == n, "lost rows"
    by_part: dict[int, list[int]] = {}
    for p, o in rows:
        by_part.setdefault(p, []).append(o)
    for offs in by_part.values():
        assert sorted(offs) == list(range(len(offs)))


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True)  # fmt: skip
    return r.returncode == 0


async def test_full_disk_pauses_then_resumes(kafka_bootstrap: str, tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    if not _mount_tmpfs(mnt, "4m"):
        pytest.skip("cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)")
    try:
        topic = await _topic(kafka_bootstrap, partitions=2)
        root = mnt / "archive"
        arch = Archiver(kafka_bootstrap, root, topic_names=[topic], group_id=f"g{uuid.uuid4().hex}",
                        bounds=Bounds(max_rows=500, max_age_s=0.3), retry_s=0.5)  # fmt: skip
        task = asyncio.create_task(arch.run())
        try:
            await _produce(kafka_bootstrap, topic,
                           [(str(p.mmsi).encode(), _enc.encode(p)) for p in map(position, range(1000))])  # fmt: skip
            await _wait(lambda: _logged(root) >= 1000, 120, "first rows archived")
            filler = mnt / "filler"
            with open(filler, "wb") as f:  # fill the disk to the last block
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
            await _produce(kafka_bootstrap, topic,
                           [(str(p.mmsi).encode(), _enc.encode(p)) for p in map(position, range(1000, 5000))])  # fmt: skip
            await _wait(lambda: arch.counters["disk_full"] >= 2, 120, "disk-full retries")
            assert arch.metrics()["shorewatch_archive_paused"] == 1.0
            assert arch.metrics()["shorewatch_archive_disk_full_total"] >= 2
            assert REGISTRY.get_sample_value("shorewatch_archive_paused") == 1.0
            assert not arch.ready()[0]
            assert _logged(root) < 5000  # nothing committed past what is on disk
            assert not list(root.rglob(".part-*.tmp")), "temporary files left on the full disk"
            filler.unlink()
            await _wait(lambda: _logged(root) >= 5000, 120, "resume after space returned")
            assert arch.metrics()["shorewatch_archive_paused"] == 0.0
        finally:
            arch.stop()
            await asyncio.wait_for(task, 60)
        rows = _rows(root)
        assert len(rows) == 5000 == len(set(rows))
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
