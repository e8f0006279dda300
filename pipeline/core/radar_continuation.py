"""Which lost radar target a new one continues: vectorised gating and one-to-one assignment.

A radar's tracker drops a target after a few missed scans (a small boat at the edge of
cover, in the sea return) and acquires it again under a new target number, or under the
same number as a new track. Each new track would be a new area target and so a new alert
for the same boat. A new report continues a lost target when it lies where that target may
be by now: anywhere from its last report's place to that place moved on by its last
velocity over the gap (it kept its course, at its speed or slower, down to a stop), within
``gate_sigmas`` of the combined uncertainty (both reports' ``position_sigma_m``, which grows
with range, a drift that grows with the gap, and a turn allowance that grows with the run);
the gap at most ``max_gap_s``. Pairs are assigned one to one at the least total squared
normalised distance (:func:`pipeline.core.fusion.assign_pairs`).

Pure NumPy, ``O(N·M)`` for N lost targets and M new reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.core.fusion import PairCosts, assign_pairs
from pipeline.core.geo import lonlat_to_enu_m
from pipeline.core.radar_fusion import RadarArrays

__all__ = ["ContinuationParams", "continuation_pairs", "continue_lost"]


@dataclass(frozen=True)
class ContinuationParams:
    """Gates of a new radar target continuing a lost one.

    :param gate_sigmas: a pair whose normalised distance exceeds this is gated
    :param max_gap_s: a target lost longer ago than this is not continued, s: the tracker's
        loss after a few missed scans plus a fresh acquisition fit in well under a minute
    :param drift_mps: growth of the uncertainty per second of gap, m/s (speed changes)
    :param turn_frac: the part of the run over the gap that a turn may put sideways
    """

    gate_sigmas: float = 4.0
    max_gap_s: float = 60.0
    drift_mps: float = 1.0
    turn_frac: float = 0.2


def continuation_pairs(
    lost: RadarArrays, new: RadarArrays, params: ContinuationParams = ContinuationParams()
) -> PairCosts:
    """The candidate lost-target/new-report pairs inside the gate (rows: ``lost``, its last
    report of each target with the velocity it had, ``NaN``: at rest; columns: ``new``),
    with cost = squared normalised distance."""
    n, m = len(lost), len(new)
    if n == 0 or m == 0:
        e = np.zeros(0, dtype=np.int64)
        return PairCosts(e, e.copy(), np.zeros(0), n, m)
    lon0, lat0 = float(np.nanmean(new.lon_deg)), float(np.nanmean(new.lat_deg))
    ae, an = lonlat_to_enu_m(lost.lon_deg, lost.lat_deg, lon0, lat0)
    ne, nn = lonlat_to_enu_m(new.lon_deg, new.lat_deg, lon0, lat0)
    ve, vn = (np.nan_to_num(x) for x in lost.velocity_mps())
    gap_s = (new.t_ms[None, :] - lost.t_ms[:, None]) / 1000.0  # (N, M)
    run_e, run_n = ve[:, None] * gap_s, vn[:, None] * gap_s
    # nearest point to the new report on the segment from the last place to the place
    # moved on by the last velocity
    px, py = ne[None, :] - ae[:, None], nn[None, :] - an[:, None]
    run2 = run_e**2 + run_n**2
    u = np.clip((px * run_e + py * run_n) / np.where(run2 > 0, run2, 1.0), 0.0, 1.0)
    dist = np.hypot(px - u * run_e, py - u * run_n)
    sigma = np.sqrt(
        lost.sigma_m[:, None] ** 2
        + new.sigma_m[None, :] ** 2
        + (params.drift_mps * gap_s) ** 2
        + params.turn_frac**2 * run2
    )
    z = dist / sigma
    ok = (gap_s > 0) & (gap_s <= params.max_gap_s) & (z <= params.gate_sigmas) & np.isfinite(z)
    row, col = np.nonzero(ok)
    return PairCosts(row.astype(np.int64), col.astype(np.int64), z[row, col] ** 2, n, m)


def continue_lost(
    lost: RadarArrays, new: RadarArrays, params: ContinuationParams = ContinuationParams()
) -> np.ndarray:
    """The lost target (index into ``lost``) each new report continues, ``-1``: none.

    >>> lost = RadarArrays.from_lists([0], [110.30], [20.10], [100.0], [20.0], [90.0])
    >>> new = RadarArrays.from_lists([20_000, 20_000], [110.302, 110.30], [20.10, 20.13],
    ...                              [100.0, 100.0])
    >>> continue_lost(lost, new).tolist()   # 206 m east at 20 kn: the first; 3.3 km north: no
    [0, -1]
    """
    out = np.full(len(new), -1, dtype=np.int64)
    rows, cols = assign_pairs(continuation_pairs(lost, new, params))
    out[cols] = rows
    return out
