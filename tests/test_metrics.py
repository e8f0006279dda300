"""Prometheus metrics: the names and the endpoints, scraped from real connectors that
publish to the real broker while they run."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline import metrics
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
LINE = "!AIVDM,1,1,,B,19NWuLhuRb5QHfCpPcwj`26B0<02,0*5F"
NAME = re.compile(r"^shorewatch_[a-z][a-z0-9_]*$")
FORBIDDEN_LABELS = {"mmsi", "track_id", "camera_id", "alert_id", "vessel"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition text, keyed by (name, sorted labels)."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(
        v for (n, ls), v in samples(text).items() if n == name and set(labels.items()) <= set(ls)
    )


def check_conventions(text: str) -> list[str]:
    """The house rules for metric names and labels."""
    problems = []
    for fam in text_string_to_metric_families(text):
        if not fam.name.startswith("shorewatch_"):
            continue
        if not NAME.match(fam.name):
            problems.append(f"{fam.name}: not snake case")
        for s in fam.samples:
            if fam.type == "counter" and not s.name.endswith("_total"):
                problems.append(f"{s.name}: a counter sample not ending in _total")
            bad = FORBIDDEN_LABELS & set(s.labels)
            if bad:
                problems.append(f"{s.name}: per-object labels {sorted(bad)}")
        if fam.type == "histogram" and "latency" in fam.name and not fam.name.endswith("_seconds"):
            problems.append(f"{fam.name}: a duration not in seconds")
    return problems


def promtool_check(text: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    res = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stdout + res.stderr


async def scrape_until(url: str, cond, timeout_s: float = 90.0) -> str:
    """Scrape ``url`` until ``cond(text)`` holds; the last text."""
    deadline = time.monotonic() + timeout_s
    text = ""
    async with httpx.AsyncClient(timeout=10) as client:
        while time.monotonic() < deadline:
            try:
                r = await client.get(url)
                if r.status_code == 200:
                    text = r.text
                    if cond(text):
                        return text
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise AssertionError(f"condition not met within {timeout_s} s; last scrape:\n{text[-3000:]}")


@pytest.mark.unit
def test_endpoint_from_env():
    assert metrics.endpoint_from_env({}) is None
    assert metrics.endpoint_from_env({"SHOREWATCH_METRICS_PORT": "0"}) is None
    assert metrics.endpoint_from_env({"SHOREWATCH_METRICS_PORT": "9400"}) == ("127.0.0.1", 9400)
    env = {"SHOREWATCH_METRICS_PORT": "9401", "SHOREWATCH_METRICS_BIND": "0.0.0.0"}
    assert metrics.endpoint_from_env(env) == ("0.0.0.0", 9401)
    for bad in ("http", "70000"):
        with pytest.raises(ConfigError):
            metrics.endpoint_from_env({"SHOREWATCH_METRICS_PORT": bad})


@pytest.mark.unit
def test_camera_status_board_counts_cameras_not_ids():
    from prometheus_client import CollectorRegistry, Gauge

    g = Gauge("t_cameras", "test", ["status"], registry=CollectorRegistry())
    board = metrics.CameraStatusBoard(g)
    board.set("a", "online")
    board.set("b", "offline")
    board.set("c", "offline")
    board.set("a", "offline")
    assert g.labels(status="offline")._value.get() == 3
    assert g.labels(status="online")._value.get() == 0
    assert metrics.source_kind("tcp-in:0.0.0.0:5631:10.0.0.7") == "tcp-in"


@pytest.mark.unit
async def test_server_endpoints_follow_the_readiness_check():
    state = {"ready": False}
    server = metrics.MetricsServer(
        "test", lambda: (state["ready"], "why"), host="127.0.0.1", port=0
    )
    await server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{base}/healthz")).status_code == 200
            r = await client.get(f"{base}/readyz")
            assert (r.status_code, r.text) == (503, "why\n")
            state["ready"] = True
            assert (await client.get(f"{base}/readyz")).status_code == 200
            text = (await client.get(f"{base}/metrics")).text
    finally:
        await server.stop()
    assert value(text, "shorewatch_ready") == 1
    assert value(text, "shorewatch_build_info", role="test") == 1


@pytest.mark.integration
async def test_ais_connector_serves_metrics_that_move(kafka_bootstrap):
    """A real ``shorewatch ingest ais`` process takes NMEA over TCP and publishes to the
    broker; its /metrics counts the lines received and published, and passes promtool."""
    metrics_port, nmea_port = free_port(), free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SHOREWATCH_METRICS_PORT": str(metrics_port),
        "SHOREWATCH_METRICS_BIND": "127.0.0.1",
        "PYTHONPATH": str(ROOT),
    }
    cmd = [sys.executable, "-m", "pipeline.cli", "ingest", "ais", "--bind", "127.0.0.1"]
    cmd += ["--listen-tcp", str(nmea_port), "--batch-ms", "50"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{metrics_port}"
    try:
        await scrape_until(f"{url}/metrics", lambda t: "shorewatch_build_info" in t)
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{url}/healthz")).status_code == 200
            assert (await client.get(f"{url}/readyz")).status_code == 200

        async def send(n: int) -> None:
            _, writer = await asyncio.open_connection("127.0.0.1", nmea_port)
            writer.write((LINE + "\r\n").encode() * n)
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        await send(300)
        first = await scrape_until(
            f"{url}/metrics",
            lambda t: value(t, "shorewatch_ingest_lines_total", outcome="published") >= 300,
        )
        assert (
            value(first, "shorewatch_ingest_lines_total", source="tcp-in", outcome="received")
            == 300
        )
        assert value(first, "shorewatch_ingest_lines_total", outcome="failed") == 0
        sent = value(
            first, "shorewatch_records_published_total", topic="shorewatch.ais.raw.v1", outcome="ok"
        )
        assert sent >= 1

        await send(50)  # counters move
        second = await scrape_until(
            f"{url}/metrics",
            lambda t: value(t, "shorewatch_ingest_lines_total", outcome="published") >= 350,
        )
        assert value(second, "shorewatch_ingest_lines_total", outcome="received") == 350
        assert (
            value(second, "shorewatch_records_published_total", topic="shorewatch.ais.raw.v1")
            > sent
        )
        assert check_conventions(second) == []
        promtool_check(second)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.integration
async def test_camera_connector_counts_frames_and_cameras(
    kafka_bootstrap, shared, tmp_path, monkeypatch
):
    """``shorewatch ingest camera`` on the Haikou site, one camera reading the clip and the
    others unreachable: frames are seen and analysed, and cameras are counted by status."""
    from pipeline.cli import main

    clip = shared / "data" / "video" / "clip-01" / "clip-01.mp4"
    if not clip.is_file():
        pytest.skip(f"clip not found: {clip}")
    site = tmp_path / "haikou"
    shutil.copytree(ROOT / "sites" / "haikou", site)
    cameras_yaml = site / "cameras.yaml"  # nobody serves these addresses
    cameras_yaml.write_text(
        cameras_yaml.read_text().replace("127.0.0.1:8554", f"127.0.0.1:{free_port()}")
    )
    from prometheus_client import REGISTRY, generate_latest

    before = generate_latest(REGISTRY).decode()  # this process may have run cameras before
    seen0 = value(before, "shorewatch_camera_frames_total", outcome="seen")
    analysed0 = value(before, "shorewatch_camera_frames_total", outcome="analysed")
    port = free_port()
    monkeypatch.setenv("SHOREWATCH_METRICS_PORT", str(port))
    monkeypatch.setenv("SHOREWATCH_METRICS_BIND", "127.0.0.1")
    argv = ["ingest", "camera", "--site", str(site), "--model-dir", "none"]
    argv += ["--camera", f"hk-west-01={clip}", "--duration-s", "15", "--max-fps", "5"]
    run = asyncio.create_task(asyncio.to_thread(main, argv))
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        text = await scrape_until(
            url,
            lambda t: (
                value(t, "shorewatch_camera_frames_total", outcome="analysed") >= analysed0 + 5
                and value(t, "shorewatch_cameras", status="offline") >= 1
            ),
            timeout_s=15,
        )
        assert value(text, "shorewatch_camera_frames_total", outcome="seen") >= seen0 + 5
        assert value(text, "shorewatch_cameras", status="online") == 1
        assert (
            value(text, "shorewatch_records_published_total", topic="shorewatch.camera.status.v1")
            >= 1
        )
        assert check_conventions(text) == []
        promtool_check(text)
    finally:
        assert await run == 0
