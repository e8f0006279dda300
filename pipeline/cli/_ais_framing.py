"""``--prefix``, ``--prefix-tz`` and ``--strict-tag-blocks``: the framing policy of AIS
sources, shared by ``decode`` and ``ingest ais`` (see :mod:`pipeline.core.nmea_prefix`
and :func:`pipeline.core.nmea.frame_lines`)."""

from __future__ import annotations

import argparse


def add_framing_options(p: argparse.ArgumentParser, strict: bool = True) -> None:
    """Add the prefix policy options (and, with ``strict``, ``--strict-tag-blocks``)."""
    p.add_argument(
        "--prefix",
        default="auto",
        metavar="auto|strip|none|iso|epoch_s|epoch_ms|FORMAT",
        help="text before each sentence: a receive time (auto-detected, or this strftime "
        "FORMAT), stripped, or not allowed (default auto)",
    )
    p.add_argument(
        "--prefix-tz",
        default="UTC",
        metavar="ZONE",
        help="time zone of prefix times without one: UTC, +08:00, Asia/Shanghai (default UTC)",
    )
    if strict:
        p.add_argument(
            "--strict-tag-blocks",
            action="store_true",
            help="reject a sentence whose tag block checksum is wrong (default: decode it "
            "without the tag block's fields)",
        )
