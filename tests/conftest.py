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
