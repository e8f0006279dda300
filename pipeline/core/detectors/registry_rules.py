"""Identity rules against the vessel registry, as severity factors: an unregistered
Chinese-MID MMSI, an AIS name that is not the registered one, a lapsed registration (all
three identity anomalies, :mod:`pipeline.core.detectors.identity`), and the factors every
alert about a vessel gets: a watchlist hit (raises the severity), "registry unavailable"
(the rules above could not be checked), and the hull number a camera read on a dark
target, registered or not."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np

from pipeline.core.detectors.base import Condition, Factor, VesselView
from pipeline.core.detectors.registry_facts import (
    REGISTERED,
    UNAVAILABLE,
    UNREGISTERED,
    chinese_mid,
    names_match,
)

__all__ = [
    "UNAVAILABLE_FACTOR",
    "WATCHLIST_WEIGHT",
    "registry_anomalies",
    "registry_factors",
    "with_registry_factors",
]

#: points a watchlist hit adds to every alert about the vessel
WATCHLIST_WEIGHT = 30.0
UNAVAILABLE_FACTOR = Factor(
    "registry_unavailable",
    0.0,
    "registry unavailable: registration, registered name, expiry, home harbours and "
    "watchlist not checked",
)


def _day(t_ms: int) -> str:
    return datetime.fromtimestamp(t_ms / 1000.0, tz=UTC).date().isoformat()


def registry_anomalies(v: VesselView, now_t_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows with a registry anomaly at ``now_t_ms`` (ms UTC), and since when, vectorised.

    :returns: ``(mask, start_t_ms)``: bool (N,) and the earliest start of each row's
        registry anomalies, ms UTC (-1 where none)
    """
    n = len(v)
    reg = v.registry
    if reg is None or n == 0:
        return np.zeros(n, dtype=bool), np.full(n, -1, dtype=np.int64)
    ais = ~v.dark
    unregistered = ais & (reg.status == UNREGISTERED) & v.shipish & chinese_mid(v.mmsi)
    registered = ais & (reg.status == REGISTERED)
    mismatch = registered & np.array(
        [not names_match(a, r) for a, r in zip(v.name, reg.reg_name, strict=True)], dtype=bool
    )
    expired = registered & (reg.valid_until_t_ms >= 0) & (reg.valid_until_t_ms < now_t_ms)
    big = np.iinfo(np.int64).max
    start = np.full(n, big, dtype=np.int64)
    start = np.where(unregistered | mismatch, np.minimum(start, v.first_t_ms), start)
    start = np.where(
        expired, np.minimum(start, np.maximum(v.first_t_ms, reg.valid_until_t_ms + 1)), start
    )
    mask = unregistered | mismatch | expired
    return mask, np.where(mask, start, -1)


def registry_factors(v: VesselView, i: int, now_t_ms: int) -> list[Factor]:
    """The registry anomalies of row ``i`` of ``v`` at ``now_t_ms`` (ms UTC), as factors."""
    reg = v.registry
    if reg is None or v.dark[i]:
        return []
    out = []
    mmsi = int(v.mmsi[i])
    status = int(reg.status[i])
    if status == UNREGISTERED and v.shipish[i] and bool(chinese_mid(np.array([mmsi]))[0]):
        out.append(
            Factor(
                "unregistered",
                40.0,
                f"MMSI {mmsi} carries a Chinese MID ({mmsi // 1_000_000}) but is not in the "
                "vessel registry (no registration: 三无 candidate)",
            )
        )
    if status == REGISTERED:
        if not names_match(v.name[i], reg.reg_name[i]):
            out.append(
                Factor(
                    "name_mismatch",
                    30.0,
                    f"AIS name {str(v.name[i]).strip()!r} is not the registered name "
                    f"{reg.reg_name[i]!r} (registration {reg.registration_no[i]})",
                )
            )
        until = int(reg.valid_until_t_ms[i])
        if 0 <= until < now_t_ms:
            out.append(
                Factor(
                    "registration_expired",
                    30.0,
                    f"registration {reg.registration_no[i]} expired on {_day(until - 1)}",
                )
            )
    return out


def _hull_factor(v: VesselView, r: int) -> Factor | None:
    """What a hull number read by a camera on a dark target without AIS identity says."""
    reg = v.registry
    if reg is None or reg.hull_number[r] is None or v.mmsi[r] >= 0:
        return None
    read = f"hull number {reg.hull_number[r]} read by a camera (confidence {reg.hull_confidence[r]:.2f})"
    status = int(reg.status[r])
    if status == REGISTERED:
        return Factor(
            "hull_number_registered",
            20.0,
            f"{read}: registered vessel {reg.reg_name[r]!r} (registration "
            f"{reg.registration_no[r]}), without AIS",
        )
    if status == UNREGISTERED:
        return Factor(
            "hull_number_unregistered", 20.0, f"{read} is not in the registry (三无 candidate)"
        )
    return None


def with_registry_factors(conds: list[Condition], v: VesselView) -> list[Condition]:
    """Every condition with the factors its vessels' registry entries add: a watchlist hit
    (+:data:`WATCHLIST_WEIGHT`, once per condition), "registry unavailable" (0 points,
    so the operator knows the registry rules were not checked), and for a dark target
    whose hull number a camera read, the registered vessel it is (+20) or that no
    registered vessel carries that number (+20, a 三无 candidate)."""
    reg = v.registry
    if reg is None or not conds:
        return conds
    out = []
    for c in conds:
        rows = c.rows or (c.row,)
        extra: list[Factor] = []
        hits = [str(reg.watch[r]) for r in rows if reg.watch[r] is not None]
        if hits:
            extra.append(
                Factor("watchlist", WATCHLIST_WEIGHT, "on the watchlist: " + "; ".join(hits))
            )
        if any(int(reg.status[r]) == UNAVAILABLE for r in rows):
            extra.append(UNAVAILABLE_FACTOR)
        extra += [f for r in rows if (f := _hull_factor(v, r)) is not None]
        out.append(replace(c, factors=c.factors + tuple(extra)) if extra else c)
    return out
