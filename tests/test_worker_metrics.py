"""The worker's Prometheus metrics and health pages: a real ``shorewatch worker`` process on
the real broker, scraped while it decodes AIS."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from test_metrics import check_conventions, free_port, promtool_check, scrape_until, value

from pipeline.worker.observe import readiness


def positions(first_mmsi: int, n: int) -> list[str]:
    """``n`` distinct position reports (one per MMSI) off Haikou."""
    from pyais.encode import encode_dict

    out = []
    for i in range(n):
        msg = {"type": 1, "mmsi": first_mmsi + i, "lon": 110.30 + i * 1e-4, "lat": 20.12,
               "speed": 6.0, "course": 200, "heading": 200, "status": 0}  # fmt: skip
        out += encode_dict(msg, talker_id="AI", sentence_type="VDM")
    return out


def bad_checksum(line: str) -> str:
    return line[:-2] + ("00" if line[-2:] != "00" else "01")


def _ready(**kw):
    args = dict(
        started=True,
        rebalancing=False,
        recovered=True,
        records_behind=0,
        event_lag_s={},
        max_lag_s=60.0,
        max_lag_records=1000,
    )
    args.update(kw)
    return readiness(**args)


@pytest.mark.unit
def test_readiness_states_its_reason():
    assert _ready() == (True, "ok")
    assert _ready(records_behind=None) == (True, "ok")  # nothing read yet, or no partition
    assert _ready(started=False) == (False, "waiting for the partition assignment")
    assert _ready(rebalancing=True) == (False, "rebalancing")
    assert _ready(recovered=False)[0] is False
    # behind in records but fresh in event time: a live worker keeping up with a busy feed
    assert _ready(records_behind=50_000, event_lag_s={"decode": 2.0, "tracks": 3.0})[0]
    ok, why = _ready(records_behind=50_000, event_lag_s={"decode": 2.0, "tracks": 300.0})
    assert not ok and "50000 records behind" in why and "tracks 300 s" in why
    assert not _ready(records_behind=1001)[0]  # behind, and no agent has processed anything


async def _statuses_until_ready(url: str, timeout_s: float = 240.0) -> list[int]:
    """Every ``/readyz`` status seen (connection refused as 0) until it answers 200."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=10) as client:
        while time.monotonic() < deadline:
            try:
                code = (await client.get(url)).status_code
            except httpx.HTTPError:
                code = 0
            if not seen or seen[-1] != code:
                seen.append(code)
            if code == 200:
                return seen
            await asyncio.sleep(0.2)
    raise AssertionError(f"/readyz never answered 200 within {timeout_s} s: {seen}")


@pytest.mark.integration
async def test_worker_serves_metrics_that_move(kafka_bootstrap, tmp_path):
    """``/readyz`` answers 503 until the worker has joined its group and recovered its
    tables, then 200; ``/metrics`` counts the messages decoded, dead letters by reason,
    batch sizes, processing time and event-time lag of the agents, and passes promtool."""
    from connectors.ais import KafkaSink, replay_file
    from pipeline.tools.worker_process import start_worker_process, stop_worker_process

    port = free_port()
    worker = start_worker_process(
        kafka_bootstrap,
        tmp_path / "run",
        app_id_prefix="metrics",
        extra_env={"SHOREWATCH_WORKER_PORT": str(port), "SHOREWATCH_WORKER_BIND": "127.0.0.1"},
    )
    base = f"http://127.0.0.1:{port}"
    feed = tmp_path / "feed.nmea"

    async def send(first_mmsi: int, n_good: int, n_bad: int) -> None:
        good = positions(first_mmsi, n_good)
        bad = [bad_checksum(x) for x in positions(first_mmsi + n_good, n_bad)]
        feed.write_text("\n".join(good + bad) + "\n")
        sink = KafkaSink(kafka_bootstrap)
        await sink.start()
        try:
            await replay_file(str(feed), sink)
        finally:
            await sink.stop()

    try:
        seen = await _statuses_until_ready(f"{base}/readyz")
        assert 503 in seen, f"/readyz never said 'not ready' before it was: {seen}"
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.get(f"{base}/healthz")).status_code == 200
            r = await client.get(f"{base}/readyz")
            assert (r.status_code, r.text) == (200, "ok\n")

        await send(412_100_000, 200, 3)
        first = await scrape_until(
            f"{base}/metrics",
            lambda t: (
                value(t, "shorewatch_messages_total", source="ais", outcome="decoded") >= 200
                and value(t, "shorewatch_dead_letters_total", reason="bad_checksum") >= 3
                and value(t, "shorewatch_agent_batch_records_count", agent="decode") >= 1
                and value(t, "shorewatch_agent_batch_records_count", agent="tracks") >= 1
            ),
            timeout_s=120,
        )
        assert value(first, "shorewatch_build_info", role="worker") == 1
        assert value(first, "shorewatch_ready") == 1
        assert value(first, "shorewatch_messages_total", outcome="bad_checksum") == 3
        dead = value(first, "shorewatch_dead_letters_total", reason="bad_checksum")
        assert dead == 3
        assert value(first, "shorewatch_agent_batch_records_sum", agent="decode") >= 1
        assert value(first, "shorewatch_agent_processing_seconds_count", agent="decode") >= 1
        # lines without a tag block take their receive time: the lag is seconds, not days
        assert 0 <= value(first, "shorewatch_agent_event_lag_seconds", agent="decode") < 600
        decoded = value(first, "shorewatch_messages_total", source="ais", outcome="decoded")
        batches = value(first, "shorewatch_agent_batch_records_count", agent="decode")

        await send(412_200_000, 100, 1)  # counters move
        second = await scrape_until(
            f"{base}/metrics",
            lambda t: (
                value(t, "shorewatch_messages_total", source="ais", outcome="decoded")
                >= decoded + 100
                # a batch is observed once its outputs are acknowledged, after its counters
                and value(t, "shorewatch_agent_batch_records_count", agent="decode") > batches
                and value(t, "shorewatch_dead_letters_total", reason="bad_checksum") >= dead + 1
            ),
            timeout_s=120,
        )
        assert value(second, "shorewatch_dead_letters_total", reason="bad_checksum") == dead + 1
        assert check_conventions(second) == []
        promtool_check(second)
    finally:
        stop_worker_process(worker)


@pytest.mark.integration
async def test_console_serves_metrics_and_health(kafka_bootstrap, tmp_path):
    """``shorewatch console`` on the real broker serves ``/metrics``, ``/healthz`` and
    ``/readyz`` on ``SHOREWATCH_METRICS_PORT`` (9400 in the image and the manifests)."""
    import os
    import subprocess
    import sys

    from test_metrics import ROOT

    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SHOREWATCH_METRICS_PORT": str(port),
        "SHOREWATCH_METRICS_BIND": "127.0.0.1",
        "PYTHONPATH": str(ROOT),
    }
    cmd = [sys.executable, "-m", "pipeline.cli", "console", "--demo", "--port", "0"]
    cmd += ["--store", f"sqlite:///{tmp_path / 'actions.db'}", "--run-for-s", "120"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        seen = await _statuses_until_ready(f"{base}/readyz", timeout_s=90)
        assert seen[-1] == 200
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.get(f"{base}/healthz")).status_code == 200
            text = (await client.get(f"{base}/metrics")).text
        assert value(text, "shorewatch_build_info", role="console") == 1
        assert value(text, "shorewatch_ready") == 1
        assert "shorewatch_console_push_latency_seconds_bucket" in text
        assert check_conventions(text) == []
        promtool_check(text)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.unit
def test_rules_and_dashboard_name_metrics_that_exist():
    """Every ``shorewatch_*`` series the alert rules, their tests and the dashboard query is
    one that :mod:`pipeline.metrics` exports (a renamed metric breaks this, not a pager)."""
    import re

    from prometheus_client import REGISTRY
    from test_metrics import ROOT

    from pipeline import metrics  # noqa: F401 - registers the metrics

    exported = set()
    for fam in REGISTRY.collect():
        if fam.name.startswith("shorewatch_"):
            suffixes = {
                "counter": ["_total"],
                "histogram": ["_bucket", "_sum", "_count"],
            }.get(fam.type, [""])
            exported |= {fam.name + s for s in suffixes}
    files = [
        "deploy/k8s/base/monitoring/rules.yml",
        "deploy/prometheus/rules.test.yml",
        "deploy/k8s/base/monitoring/shorewatch-dashboard.json",
    ]
    used = set()
    for f in files:
        used |= set(re.findall(r"\bshorewatch_[a-z0-9_]+", (ROOT / f).read_text()))
    assert used, "no shorewatch_* series found in the rules and dashboard"
    assert sorted(used - exported) == []
