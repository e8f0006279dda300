"""Replay over the archive gives the alerts replay gives over the recorded inputs (which
``test_replay_equals_kafka`` shows to be those of the live pipeline).

A simulated hour on the Haikou shore is decoded as the decode agent does, its positions,
static reports and camera frames are published to the real broker, archived by the
archiver, and replayed from the archive (``shorewatch replay --from-archive``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

import msgspec
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pipeline.cli import main
from pipeline.history.archiver import Archiver
from pipeline.history.source import iter_inputs, read_inputs
from pipeline.history.writer import Bounds
from pipeline.replay import decode_ais, read_frames, replay
from pipeline.tools.simulate import SimConfig, simulate

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "sites" / "haikou"
START = datetime.fromisoformat("2026-03-08T03:00:00+08:00")
_enc = msgspec.json.Encoder()


@pytest.mark.integration
async def test_replay_from_archive_gives_the_same_alerts(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    night = tmp_path / "night"
    simulate(SITE, SimConfig(seed=2, start=START, duration_s=3600, fps=0.5, noise="none"), night)
    ais, dets = night / "ais.nmea", night / "detections.jsonl"
    offline = replay(SITE, [ais], [dets])
    assert offline, "the simulated night raises alerts"
    positions, statics = decode_ais([ais], Counter())
    frames = read_frames([dets])

    prefix = f"t{uuid.uuid4().hex[:8]}"
    names = {k: f"{prefix}.{k}.v1" for k in ("ais.position", "ais.static", "camera.detection")}
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, 4, 1) for n in names.values()])
    finally:
        await admin.close()
    prod = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=20)
    await prod.start()
    try:
        futs = [await prod.send(names["ais.position"], _enc.encode(p), key=str(p.mmsi).encode())
                for p in positions]  # fmt: skip
        futs += [await prod.send(names["ais.static"], _enc.encode(s), key=str(s.mmsi).encode())
                 for s in statics]  # fmt: skip
        futs += [await prod.send(names["camera.detection"], _enc.encode(f), key=f.camera_id.encode())
                 for f in frames]  # fmt: skip
        await asyncio.gather(*futs)
    finally:
        await prod.stop()
    root = tmp_path / "archive"
    arch = Archiver(kafka_bootstrap, root, topic_names=list(names.values()),
                    group_id=f"g{uuid.uuid4().hex}", bounds=Bounds(max_rows=5000, max_age_s=0.5))  # fmt: skip
    task = asyncio.create_task(arch.run())
    total = len(positions) + len(statics) + len(frames)
    try:
        deadline = asyncio.get_running_loop().time() + 180
        while arch.writer.counters["rows"] < total or arch.writer.buffered_rows():
            assert asyncio.get_running_loop().time() < deadline, "archive incomplete"
            await asyncio.sleep(0.2)
    finally:
        arch.stop()
        await asyncio.wait_for(task, 60)

    t0 = int(START.timestamp() * 1000) - 60_000
    t1 = t0 + 3 * 3_600_000
    inputs = read_inputs(root, t0, t1)
    assert (len(inputs.positions), len(inputs.statics), len(inputs.frames)) == (
        len(positions), len(statics), len(frames)
    )  # fmt: skip
    assert sorted(inputs.positions, key=lambda p: (p.t_ms, p.mmsi)) == sorted(
        positions, key=lambda p: (p.t_ms, p.mmsi)
    )
    merged = [r.t_ms for r in iter_inputs(inputs)]
    assert merged == sorted(merged) and len(merged) == total

    out = tmp_path / "alerts.jsonl"
    rc = main(["replay", "--site", str(SITE), "--from-archive", str(root), "--from", str(t0),
               "--to", str(t1), "--out", str(out)])  # fmt: skip
    assert rc == 0
    from_archive = [msgspec.json.decode(line) for line in out.read_bytes().splitlines()]
    assert from_archive == [msgspec.to_builtins(a) for a in offline]
