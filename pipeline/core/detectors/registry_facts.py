"""What the vessel registry says about each row of a :class:`VesselView`, as arrays, and the
identity rules that read it.

The engine resolves nothing itself: the driver looks the micro-batch's MMSIs up in the
registry (one query) and passes the records into the area step; the engine lays them out
as :class:`RegistryFacts` beside the view. The rules here are pure functions of those
arrays and the evaluation time (event time):

- a Chinese-MID MMSI (412, 413, 414) that the registry does not know;
- an AIS name that is not the registered name (both normalised);
- a registration that has lapsed by the evaluation time;
- a watchlist hit, which raises the severity of every alert about the vessel;
- a registry that could not be reached, which marks the alerts "registry unavailable".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from pipeline.core.geo import haversine_m

__all__ = [
    "CHINESE_MIDS",
    "REGISTERED",
    "UNAVAILABLE",
    "UNKNOWN",
    "UNREGISTERED",
    "RegistryFacts",
    "chinese_mid",
    "names_match",
    "normalise_name",
    "two_places",
]

#: ITU-R M.585 maritime identification digits of China (DESIGN.md §3)
CHINESE_MIDS = (412, 413, 414)
#: :attr:`RegistryFacts.status` values
UNKNOWN, UNREGISTERED, REGISTERED, UNAVAILABLE = -1, 0, 1, 2

_NOT_NAME = re.compile(r"[^0-9A-Z\u3400-\u9fff]+")


def normalise_name(name: str | None) -> str:
    """A vessel name as compared with the registry: NFKC (full-width letters and digits
    folded), upper case, with spaces, punctuation and AIS padding (``@``) removed.

    >>> normalise_name(" hai-xun 12@@@")
    'HAIXUN12'
    """
    if not name:
        return ""
    return _NOT_NAME.sub("", unicodedata.normalize("NFKC", name).upper())


def names_match(ais_name: str | None, registered: str | None) -> bool:
    """Whether an AIS name agrees with the registered name (true when either is missing:
    a missing name is the 三无 rule's business, not a mismatch)."""
    a, r = normalise_name(ais_name), normalise_name(registered)
    return not a or not r or a == r


def chinese_mid(mmsi: np.ndarray) -> np.ndarray:
    """Whether each nine-digit ship MMSI carries a Chinese MID (412, 413, 414), bool."""
    m = np.asarray(mmsi, dtype=np.int64)
    return (m >= 100_000_000) & np.isin(m // 1_000_000, CHINESE_MIDS)


@dataclass(frozen=True)
class RegistryFacts:
    """The registry's answer for each row of a view, arrays (N,) aligned with its rows.

    :param status: :data:`REGISTERED`, :data:`UNREGISTERED`, :data:`UNAVAILABLE` (the
        registry could not be reached) or :data:`UNKNOWN` (not looked up: dark targets,
        or no registry in use), int8
    :param registration_no: registration number (object, ``None`` when not registered)
    :param reg_name: registered name (object)
    :param valid_until_t_ms: end of the registration's last valid day, ms UTC (-1: open-ended
        or not registered)
    :param home_harbours: the registered home harbours, comma-separated (object, ``None``:
        none registered)
    :param home_harbour_m: distance to the nearest registered home harbour, m (NaN: none
        registered, inf: none of them is a zone of this site)
    :param watch: what the watchlist says about the vessel (object, ``None``: no hit)
    :param clone_t_ms: when the MMSI was first seen at two places at once, ms UTC (-1: never)
    :param clone_m: distance between the two places, m
    :param clone_jumps: jumps between them within the window
    :param source: the driver's own record of each row's identity (object, ``None``: none),
        opaque here: alerts carry it
    :param hull_number: the hull number a camera read on a dark target (object, ``None``:
        none read)
    :param hull_confidence: the OCR's confidence in it, 0–1 (NaN: none read)
    """

    status: np.ndarray
    registration_no: np.ndarray
    reg_name: np.ndarray
    valid_until_t_ms: np.ndarray
    home_harbours: np.ndarray
    home_harbour_m: np.ndarray
    watch: np.ndarray
    clone_t_ms: np.ndarray
    clone_m: np.ndarray
    clone_jumps: np.ndarray
    source: np.ndarray
    hull_number: np.ndarray
    hull_confidence: np.ndarray

    @classmethod
    def empty(cls, n: int) -> RegistryFacts:
        """Nothing known about ``n`` rows."""
        return cls(
            status=np.full(n, UNKNOWN, dtype=np.int8),
            registration_no=np.full(n, None, dtype=object),
            reg_name=np.full(n, None, dtype=object),
            valid_until_t_ms=np.full(n, -1, dtype=np.int64),
            home_harbours=np.full(n, None, dtype=object),
            home_harbour_m=np.full(n, np.nan),
            watch=np.full(n, None, dtype=object),
            clone_t_ms=np.full(n, -1, dtype=np.int64),
            clone_m=np.full(n, np.nan),
            clone_jumps=np.zeros(n, dtype=np.int64),
            source=np.full(n, None, dtype=object),
            hull_number=np.full(n, None, dtype=object),
            hull_confidence=np.full(n, np.nan),
        )

    def __len__(self) -> int:
        return int(self.status.shape[0])


def two_places(
    lon: np.ndarray,
    lat: np.ndarray,
    t_ms: np.ndarray,
    *,
    max_implied_speed_kn: float,
    window_s: float,
    min_jumps: int,
    return_m: float,
) -> tuple[int, float, int]:
    """Whether one MMSI's fixes show it at two places at once: within ``window_s``, at least
    ``min_jumps`` consecutive steps faster than ``max_implied_speed_kn`` that go back and
    forth (a step landing within ``return_m`` of where an earlier jump started). One
    spoofed or glitched position makes two jumps at most (out and back); two transmitters
    sharing the MMSI make one per switch between them.

    :param lon: positions, degrees, oldest first
    :param lat: positions, degrees
    :param t_ms: their times, ms UTC
    :returns: ``(t_ms, distance_m, jumps)``: the time of the jump that completed the
        pattern (-1: none), the median jump distance (m) and the number of jumps
    """
    t = np.asarray(t_ms, dtype=np.int64)
    if t.size < min_jumps + 1:
        return -1, float("nan"), 0
    keep = t >= t[-1] - window_s * 1000.0
    lo, la, t = np.asarray(lon)[keep], np.asarray(lat)[keep], t[keep]
    if t.size < 2:
        return -1, float("nan"), 0
    d = haversine_m(lo[:-1], la[:-1], lo[1:], la[1:])
    dt_s = np.maximum((t[1:] - t[:-1]) / 1000.0, 1.0)
    jump = d / dt_s / (1852.0 / 3600.0) > max_implied_speed_kn
    idx = np.flatnonzero(jump)
    if idx.size < min_jumps:
        return -1, float("nan"), int(idx.size)
    # a return: jump k lands near where jump k-1 started
    back = haversine_m(lo[idx[1:] + 1], la[idx[1:] + 1], lo[idx[:-1]], la[idx[:-1]]) <= return_m
    if not back.any():
        return -1, float("nan"), int(idx.size)
    done = idx[min_jumps - 1]
    return int(t[done + 1]), float(np.median(d[idx])), int(idx.size)
