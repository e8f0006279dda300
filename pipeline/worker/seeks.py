"""Seeking a Faust consumer's partitions back to an offset."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


async def seek_back(app: Any, topic: str, seeks: dict[int, int]) -> None:
    """Seek each partition of ``topic`` in ``seeks`` back to its offset, through Faust's
    ``seek`` (which resets Faust's read offset too); a partition revoked meanwhile is
    left to its next owner."""
    from faust.types import TP

    for p, offset in sorted(seeks.items()):
        try:
            await app.consumer.seek(TP(topic, p), offset)
        except Exception as exc:  # noqa: BLE001 - revoked meanwhile: its next owner reads it
            log.warning("%s partition %d not sought back to %d: %r", topic, p, offset, exc)
