"""The local broker, settings and topic administration, against a real Kafka."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import admin, topics
from pipeline.errors import BrokerUnreachable, ConfigError, MissingToolError
from pipeline.settings import Settings
from pipeline.tools import localkafka

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.unit
def test_settings_environment_overrides_file(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("partitions: 8\napp_id: from-file\n")
    s = Settings.from_env(
        f, env={"SHOREWATCH_APP_ID": "from-env", "KAFKA_BOOTSTRAP_SERVERS": "h:1"}
    )
    assert (s.partitions, s.app_id, s.bootstrap_servers) == (8, "from-env", "h:1")
    s = Settings.from_env(env={"SHOREWATCH_CAMERA_IDLE_MS": "40000"})
    assert s.camera_idle_ms == 40_000 and isinstance(s.camera_idle_ms, int)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus: 1\n", "unknown setting(s): bogus"),
        ("partitions: many\n", "setting partitions: expected"),
        (
            "processing_guarantee: exactly_once\n",
            "is not supported; Shorewatch processes at_least_once",
        ),
        ("- a list\n", "expected a mapping"),
        ("ais_disorder_ms: fast\n", "setting ais_disorder_ms: expected"),
        ("ais_disorder_ms: -1\n", "setting ais_disorder_ms: must be >= 0"),
        ("camera_idle_ms: -5\n", "setting camera_idle_ms: must be >= 0"),
        ("area_lateness_ms: 500\n", "unknown setting(s): area_lateness_ms"),
    ],
)
def test_bad_settings_file_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(f, env={})


@pytest.mark.unit
def test_missing_java_and_maven_named_with_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHOREWATCH_KAFKA_DIR", str(tmp_path))  # no broker running there
    monkeypatch.setattr(localkafka.shutil, "which", lambda name: None)
    with pytest.raises(MissingToolError) as info:
        localkafka.up()
    text = str(info.value)
    assert "Java 17+" in text and "Maven" in text and "apt-get install" in text


@pytest.mark.integration
def test_unreachable_bootstrap_fails_within_bounded_time() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(BrokerUnreachable, match=f"127.0.0.1:{port}"):
        admin.check_broker(f"127.0.0.1:{port}", timeout_s=3.0)
    assert time.monotonic() - t0 < 30


@pytest.mark.integration
def test_topics_exist_with_registry_partitions(kafka_bootstrap: str) -> None:
    report = asyncio.run(admin.acreate_topics(kafka_bootstrap))
    assert report.created == []  # the fixture created them: a second create is a no-op
    assert report.mismatched == []
    assert set(report.existing) == {t.name for t in topics.ALL}


@pytest.mark.integration
def test_cli_lifecycle_on_a_fresh_run_folder(tmp_path: Path) -> None:
    """`kafka up && topics create && topics create && kafka status && kafka down`,
    then a corrupt data folder and a taken port are both recovered from."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and "SHOREWATCH_KAFKA_DIR" not in os.environ:
        pytest.skip("an external broker is configured: the local broker lifecycle is not used")
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env["SHOREWATCH_KAFKA_DIR"] = str(tmp_path / "run")
    try:
        up = _cli("kafka", "up", env=env)
        assert up.returncode == 0, up.stderr
        bootstrap = up.stdout.strip()
        assert bootstrap.startswith("127.0.0.1:")
        first = _cli("topics", "create", env=env)
        assert first.returncode == 0, first.stderr
        assert first.stdout.count("created ") == len(topics.ALL)
        second = _cli("topics", "create", env=env)
        assert second.returncode == 0 and "exist already" in second.stdout
        status = _cli("kafka", "status", env=env)
        assert status.returncode == 0 and f"bootstrap {bootstrap}" in status.stdout
        assert _cli("kafka", "down", env=env).stdout.strip() == "stopped"
        assert _cli("kafka", "status", env=env).returncode == 1

        # A corrupt data folder is detected and formatted again, saying so.
        (tmp_path / "run" / "data" / "meta.properties").write_text("garbage without equals\n")
        again = _cli("kafka", "up", env=env)
        assert again.returncode == 0, again.stderr
        assert "formatting it again" in again.stderr
        assert _cli("kafka", "down", env=env).returncode == 0

        # The remembered port is taken by someone else: another one is chosen.
        port = int(again.stdout.strip().rsplit(":", 1)[1])
        with socket.socket() as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            moved = _cli("kafka", "up", env=env)
            assert moved.returncode == 0, moved.stderr
            assert moved.stdout.strip() != f"127.0.0.1:{port}"
            assert f"port {port}" in moved.stderr
    finally:
        _cli("kafka", "down", env=env)


@pytest.mark.unit
def test_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x01" + bytes(15))])
    monkeypatch.setattr(localkafka.uuid, "uuid4", lambda: next(draws))
    cid = localkafka.new_cluster_id()  # the first draw encodes to "-AAAA...": drawn again
    assert cid == "AQAAAAAAAAAAAAAAAAAAAA" and len(cid) == 22
