"""Shared fixtures: the ``../shared`` data folder, and the real Kafka broker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: every AIS recording in ``../shared/data/ais`` (see its README)
AIS_DATA_FILES = [
    "amsa_risky_ais.txt.gz",
    "amsa_risky_nmea_timestamped.txt",
    "amsa_risky_tag_blocks.txt",
    "dma_aislib_stream_example.txt",
    "gpsd_ais-nmea.log",
    "gpsd_sample.aivdm",
    "kystverket_norwegian_tagblocks.raw",
    "libais_test.aivdm",
    "pyais_mixed.txt",
    "pyais_timestamped.ais",
]


def shared_path() -> Path:
    """The shared data folder: ``$SHOREWATCH_SHARED`` or ``../shared`` beside the repository."""
    return Path(os.environ.get("SHOREWATCH_SHARED", REPO.parent / "shared")).resolve()


def _dump_asyncio_tasks() -> None:
    """Print every task of the running event loop, down its chain of awaits to what it
    waits on (stdout is captured into the report of the test that timed out)."""
    import asyncio
    import sys
    from typing import Any

    loop = asyncio._get_running_loop()
    if loop is None:
        return
    print("+++ asyncio tasks at the timeout +++", file=sys.stdout)
    for task in asyncio.all_tasks(loop):
        print(f"task {task.get_name()}:", file=sys.stdout)
        coro: Any = task.get_coro()
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is not None:
                code = frame.f_code
                print(f"  {code.co_filename}:{frame.f_lineno} in {code.co_name}", file=sys.stdout)
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        if (waiter := getattr(task, "_fut_waiter", None)) is not None:
            print(f"  waiting on {waiter!r:.300}", file=sys.stdout)


@pytest.hookimpl(hookwrapper=True)
def pytest_timeout_set_timer(item, settings):
    """When pytest-timeout ends an async test, dump its asyncio tasks too: a hang with the
    event loop idle shows only ``select()`` in the thread stacks it prints."""
    yield
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    inner = signal.getsignal(signal.SIGALRM)
    if not callable(inner):
        return  # the thread method: no signal handler to extend

    def with_tasks(signum, frame):
        __tracebackhide__ = True
        _dump_asyncio_tasks()
        inner(signum, frame)

    signal.signal(signal.SIGALRM, with_tasks)


@pytest.fixture(scope="session")
def shared() -> Path:
    """Path of the shared data folder; skips (with the reason) when it is absent."""
    path = shared_path()
    if not (path / "data").is_dir():
        pytest.skip(f"shared data not found at {path} (set SHOREWATCH_SHARED)")
    return path


@pytest.fixture(scope="session")
def yolo_dir(shared: Path) -> Path:
    """The Yolo-Fastest 1.1 model folder of the shared data; skips when its weights are absent."""
    d = shared / "models" / "yolo-fastest-1.1"
    if not (d / "yolo-fastest-1.1-xl.weights").is_file():
        pytest.skip(f"Yolo-Fastest weights not found in {d}")
    return d


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory):
    """Bootstrap address of a real Kafka broker.

    ``KAFKA_BOOTSTRAP_SERVERS`` when set; otherwise a fresh local broker (the
    project's own ``deploy/kafka`` recipe) in a temporary run folder, stopped at
    the end of the session. Topics of the registry are created.
    """
    import asyncio

    from pipeline import admin
    from pipeline.tools import localkafka

    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    started = False
    if external:
        bootstrap = external
    else:
        os.environ["SHOREWATCH_KAFKA_DIR"] = str(tmp_path_factory.mktemp("kafka-run"))
        bootstrap = localkafka.up().bootstrap
        started = True
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    asyncio.run(admin.acreate_topics(bootstrap))
    try:
        yield bootstrap
    finally:
        if started:
            localkafka.down()
            os.environ.pop("KAFKA_BOOTSTRAP_SERVERS", None)


#: pytest-timeout seconds added to the first test that builds the session's simulated night
#: (``night``: an hour simulated and replayed, minutes on a loaded 2-core machine)
NIGHT_BUILD_S = 600.0


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The first test to use ``night`` pays for building it in its setup: give that one
    test :data:`NIGHT_BUILD_S` more than the session's timeout, so a loaded machine's slow
    replay is not reported as a hang (every other test keeps the plain timeout)."""
    try:
        base = float(config.getoption("timeout", None) or config.getini("timeout") or 0)
    except (ValueError, TypeError):
        return
    if base <= 0:
        return
    for item in items:
        if "night" in getattr(item, "fixturenames", ()):
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(base + NIGHT_BUILD_S))
            return


@pytest.fixture(scope="session")
def night(tmp_path_factory: pytest.TempPathFactory):
    """``(alerts, evidence_dir)``: the real alerts of one simulated hour on the Haikou
    shore (engine replay), whose snapshots lie in ``evidence_dir``."""
    from console_helpers import night_alerts

    work = tmp_path_factory.mktemp("console-night")
    evidence = work / "evidence"
    return night_alerts(work, evidence), evidence


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory):
    """A SQLAlchemy URL of a real, throwaway PostgreSQL server on 127.0.0.1.

    ``SHOREWATCH_TEST_POSTGRES_URL`` when set; otherwise a cluster of Debian's
    ``postgresql`` package is made in a temporary folder (as the ``postgres`` user when
    the tests run as root: the server refuses root) and stopped at the end of the session.
    """
    import glob
    import shutil
    import subprocess

    external = os.environ.get("SHOREWATCH_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bins:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    bindir = Path(bins[-1])
    import tempfile

    # not under pytest's base folder: that one is private to the user running the tests
    root = Path(tempfile.mkdtemp(prefix="shorewatch-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL")
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True)  # noqa: E731
    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
    run(
        str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "120", "-l", str(root / "log"),
        "-o", f"-p {port} -k {sock} -c listen_addresses=127.0.0.1", "start",
    )  # fmt: skip
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)
