"""Shared fixtures: the ``../shared`` data folder, and the real Kafka broker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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
