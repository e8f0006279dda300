"""NMEA framing the simulators write: the sentence checksum and the NMEA 4.10 tag block."""

from __future__ import annotations

__all__ = ["nmea_checksum", "tag_block"]


def nmea_checksum(body: str) -> str:
    """XOR of the characters of ``body``, as two upper-case hex digits."""
    c = 0
    for ch in body.encode("ascii"):
        c ^= ch
    return f"{c:02X}"


def tag_block(station: str, t_s: int) -> str:
    r"""An NMEA 4.10 tag block with source and time, e.g. ``\s:HK-1,c:1772906400*hh\``."""
    body = f"s:{station},c:{int(t_s)}"
    return f"\\{body}*{nmea_checksum(body)}\\"
