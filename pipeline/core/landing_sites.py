"""Hidden landing sites: stops found in tracks, clustered across nights (pure NumPy).

A smuggling route reuses the same quiet place, so the repetition is the signal. Two steps,
both vectorised over all points or stops of a window:

1. :func:`find_stops` — runs of consecutive slow points of one object (an MMSI, or a camera
   target), broken by a gap in time or by movement, lasting at least a minimum time;
2. :func:`cluster_stops` — stops (from AIS and from dark camera targets, already filtered
   to the shore outside authorised zones by the caller) binned on a grid of ``cell_m``
   metres in a local plane; occupied cells that touch (8-neighbourhood) form one place; a
   place used on at least ``min_nights`` distinct nights is a finding.

Coordinates are metres in a local east/north plane (:func:`pipeline.core.geo.lonlat_to_enu_m`);
times are ms UTC; a *night* is an integer key chosen by the caller (e.g. the local date of
the evening before).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["Places", "Stops", "bin_means", "cluster_stops", "find_stops"]

KN_TO_MPS = 1852.0 / 3600.0


@dataclass(frozen=True)
class Stops:
    """One row per stop.

    :param obj: index of the object (into the caller's ids)
    :param start_t_ms: first slow point, ms UTC
    :param end_t_ms: last slow point, ms UTC
    :param east_m: mean east coordinate of the stop's points, m
    :param north_m: mean north coordinate, m
    :param n: points in the stop
    """

    obj: np.ndarray
    start_t_ms: np.ndarray
    end_t_ms: np.ndarray
    east_m: np.ndarray
    north_m: np.ndarray
    n: np.ndarray

    def __len__(self) -> int:
        return len(self.obj)

    def take(self, idx: np.ndarray) -> Stops:
        return Stops(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))

    @classmethod
    def concat(cls, parts: list[Stops]) -> Stops:
        return cls(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__)
        )


def bin_means(
    obj: np.ndarray, t_ms: np.ndarray, east_m: np.ndarray, north_m: np.ndarray, bin_ms: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean position of each object per time bin (smooths noisy camera positions).

    :returns: ``(obj, t_ms, east_m, north_m)`` per (object, bin), sorted by object then time;
        ``t_ms`` is the bin's mean time
    """
    obj = np.asarray(obj, np.int64)
    b = np.floor_divide(np.asarray(t_ms, np.int64), bin_ms)
    keys = np.stack([obj, b], axis=1)
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    inv = inv.ravel()
    cnt = np.bincount(inv)
    mean = lambda v: np.bincount(inv, weights=np.asarray(v, np.float64)) / cnt  # noqa: E731
    return uniq[:, 0], mean(t_ms).astype(np.int64), mean(east_m), mean(north_m)


def find_stops(
    obj: np.ndarray,
    t_ms: np.ndarray,
    east_m: np.ndarray,
    north_m: np.ndarray,
    sog_kn: np.ndarray | None = None,
    *,
    max_speed_kn: float = 0.5,
    max_gap_ms: int = 15 * 60_000,
    min_duration_ms: int = 5 * 60_000,
    max_drift_m: float = 150.0,
) -> Stops:
    """Stops: runs of consecutive slow points of one object.

    A point is slow when its speed over ground (``sog_kn``; NaN = unknown) is below
    ``max_speed_kn``; without a reported speed, when the implied speed from the object's
    previous point is. A run breaks at another object, a fast point, a gap longer than
    ``max_gap_ms``, or a jump of more than ``max_drift_m`` between consecutive points.

    >>> s = find_stops(np.zeros(4, int), np.arange(4) * 120_000, np.zeros(4), np.zeros(4),
    ...                np.full(4, 0.1))
    >>> int(len(s)), int(s.end_t_ms[0] - s.start_t_ms[0])
    (1, 360000)
    """
    o = np.asarray(obj, np.int64)
    t = np.asarray(t_ms, np.int64)
    x = np.asarray(east_m, np.float64)
    y = np.asarray(north_m, np.float64)
    if len(o) == 0:
        z = np.zeros(0)
        return Stops(
            z.astype(np.int64), z.astype(np.int64), z.astype(np.int64), z, z, z.astype(np.int64)
        )
    order = np.lexsort((t, o))
    o, t, x, y = o[order], t[order], x[order], y[order]
    same = np.r_[False, o[1:] == o[:-1]]
    dt_ms = np.r_[0, np.diff(t)].astype(np.float64)
    step_m = np.r_[0.0, np.hypot(np.diff(x), np.diff(y))]
    implied_kn = np.where(
        same & (dt_ms > 0), step_m / np.maximum(dt_ms, 1) * 1000 / KN_TO_MPS, np.inf
    )
    if sog_kn is not None:
        sog = np.asarray(sog_kn, np.float64)[order]
        speed = np.where(np.isnan(sog), implied_kn, sog)
    else:
        speed = implied_kn
    # the first point of an object has no implied speed: slow when the next one is
    first = ~same
    nxt = np.r_[implied_kn[1:], np.inf]
    speed = np.where(first & np.isinf(speed), np.where(np.r_[same[1:], False], nxt, np.inf), speed)
    slow = speed < max_speed_kn
    brk = ~same | ~slow | (dt_ms > max_gap_ms) | (step_m > max_drift_m)
    run = np.cumsum(brk) - 1
    keep = slow
    if not keep.any():
        return find_stops(o[:0], t[:0], x[:0], y[:0])
    r = run[keep]
    uniq, inv = np.unique(r, return_inverse=True)
    cnt = np.bincount(inv)
    start = np.full(len(uniq), np.iinfo(np.int64).max)
    end = np.full(len(uniq), np.iinfo(np.int64).min)
    np.minimum.at(start, inv, t[keep])
    np.maximum.at(end, inv, t[keep])
    ex = np.bincount(inv, weights=x[keep]) / cnt
    ny = np.bincount(inv, weights=y[keep]) / cnt
    ob = np.zeros(len(uniq), np.int64)
    ob[inv] = o[keep]
    long_enough = (end - start) >= min_duration_ms
    return Stops(ob, start, end, ex, ny, cnt.astype(np.int64)).take(np.flatnonzero(long_enough))


@dataclass(frozen=True)
class Places:
    """Places where stops repeat.

    :param label: place of each input stop (-1: not in a finding)
    :param east_m: centre of each place (median of its stops), m
    :param north_m: centre, m
    :param radius_m: distance from the centre to its farthest stop, m
    :param nights: distinct nights of each place
    :param stops: stops of each place
    """

    label: np.ndarray
    east_m: np.ndarray
    north_m: np.ndarray
    radius_m: np.ndarray
    nights: np.ndarray
    stops: np.ndarray

    def __len__(self) -> int:
        return len(self.east_m)


def cluster_stops(
    east_m: np.ndarray,
    north_m: np.ndarray,
    night: np.ndarray,
    *,
    cell_m: float = 75.0,
    min_nights: int = 3,
) -> Places:
    """Group stops into places on a grid and keep those used on ``min_nights`` nights.

    Cells of ``cell_m`` metres holding a stop are linked to their occupied neighbours
    (8-neighbourhood): two stops are in one place when a chain of occupied cells joins
    them, so a place's extent follows its stops, and two stops less than ``cell_m`` apart
    are always together.

    :param night: night key of each stop (any integers)
    """
    x = np.asarray(east_m, np.float64)
    y = np.asarray(north_m, np.float64)
    nk = np.asarray(night, np.int64)
    n = len(x)
    empty = np.zeros(0)
    if n == 0:
        return Places(
            np.zeros(0, np.int64),
            empty,
            empty,
            empty,
            empty.astype(np.int64),
            empty.astype(np.int64),
        )
    cx = np.floor(x / cell_m).astype(np.int64)
    cy = np.floor(y / cell_m).astype(np.int64)
    cells, cell_of = np.unique(np.stack([cx, cy], 1), axis=0, return_inverse=True)
    cell_of = cell_of.ravel()
    m = len(cells)
    # neighbours: look each shifted cell up in the sorted cell list
    key = (cells[:, 0] << 32) + (cells[:, 1] & 0xFFFFFFFF)
    korder = np.argsort(key)
    skey = key[korder]
    rows, cols = [np.arange(m)], [np.arange(m)]
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            if dx == 0 and dy == 0:
                continue
            q = ((cells[:, 0] + dx) << 32) + ((cells[:, 1] + dy) & 0xFFFFFFFF)
            pos = np.clip(np.searchsorted(skey, q), 0, m - 1)
            hit = skey[pos] == q
            rows.append(np.flatnonzero(hit))
            cols.append(korder[pos[hit]])
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r)), (r, c)), shape=(m, m))
    _, comp_of_cell = connected_components(graph, directed=False)
    comp = comp_of_cell[cell_of]
    # distinct nights per component
    pairs = np.unique(np.stack([comp, nk], 1), axis=0)
    nights = np.bincount(pairs[:, 0], minlength=comp.max() + 1)
    good = np.flatnonzero(nights >= min_nights)
    remap = np.full(comp.max() + 1, -1, np.int64)
    remap[good] = np.arange(len(good))
    label = remap[comp]
    ex = np.zeros(len(good))
    ny = np.zeros(len(good))
    rad = np.zeros(len(good))
    cnt = np.zeros(len(good), np.int64)
    for k in range(len(good)):  # one iteration per finding (few)
        sel = label == k
        ex[k], ny[k] = np.median(x[sel]), np.median(y[sel])
        rad[k] = float(np.max(np.hypot(x[sel] - ex[k], y[sel] - ny[k])))
        cnt[k] = int(sel.sum())
    return Places(label, ex, ny, rad, nights[good].astype(np.int64), cnt)
