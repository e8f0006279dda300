"""A worker in a child process, for the demo, the benchmarks and the tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pipeline.settings import REPO_DIR


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the worker gets SIGTERM when the process that started it dies."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start_worker_process(
    bootstrap: str,
    run_dir: Path,
    *,
    agents: str = "decode,tracks,feed,area",
    site: Path | None = None,
    app_id_prefix: str = "run",
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start ``shorewatch worker`` as a child process with a fresh consumer group that
    starts at the end of its topics; its log is ``run_dir/worker.log``.

    The child dies with its parent (``PR_SET_PDEATHSIG``), so a demo or benchmark that
    is killed leaves no worker behind.
    """
    import os
    import sys
    import uuid

    run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "SHOREWATCH_APP_ID": f"{app_id_prefix}-{uuid.uuid4().hex[:8]}",
            "SHOREWATCH_WORKER_PORT": "0",
            "SHOREWATCH_AUTO_OFFSET_RESET": "latest",
            "SHOREWATCH_DATA_DIR": str(run_dir / "worker"),
            **(extra_env or {}),
        }
    )
    cmd = [sys.executable, "-m", "pipeline.cli", "worker", "--agents", agents]
    if site is not None:
        cmd += ["--site", str(site)]
    with open(run_dir / "worker.log", "wb") as log:
        return subprocess.Popen(
            cmd,
            cwd=REPO_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )


def stop_worker_process(proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
