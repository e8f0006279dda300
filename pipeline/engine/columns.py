"""Position reports as columns: the batch type the track step and the fixes topic share."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, ClassVar

import numpy as np

from schemas.records import (
    AisPosition,
)


@dataclass(slots=True)
class PositionColumns:
    """Position reports as columns, in arrival order: what :func:`track_step` works on.

    The Faust pipeline carries them in this form from the decode agent to the tracks
    agent (:mod:`pipeline.engine.decode`, ``ais.fixes``); a list of
    :class:`~schemas.records.AisPosition` converts exactly (:meth:`from_records`).

    :param mmsi: int64
    :param msg_type: int64
    :param t_ms: int64 event time, ms UTC
    :param lon: float64 degrees, NaN = not available (also ``lat``)
    :param sog_kn: float64 knots, NaN = not available
    :param cog_deg: float64 degrees true, NaN = not available
    :param heading_deg: int64 degrees true, -1 = not available
    :param nav_status: int64, -1 = none (class B)
    :param accuracy: bool
    :param rx_t_ms: int64 receive time, ms UTC
    :param source_idx: int64 index of each report's source in ``sources``
    :param sources: source ids
    """

    mmsi: np.ndarray
    msg_type: np.ndarray
    t_ms: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    sog_kn: np.ndarray
    cog_deg: np.ndarray
    heading_deg: np.ndarray
    nav_status: np.ndarray
    accuracy: np.ndarray
    rx_t_ms: np.ndarray
    source_idx: np.ndarray
    sources: list[str]

    #: the array fields, in order, and their dtypes
    DTYPES: ClassVar[dict[str, Any]] = {
        "mmsi": np.int64, "msg_type": np.int64, "t_ms": np.int64, "lon": np.float64,
        "lat": np.float64, "sog_kn": np.float64, "cog_deg": np.float64,
        "heading_deg": np.int64, "nav_status": np.int64, "accuracy": bool,
        "rx_t_ms": np.int64, "source_idx": np.int64,
    }  # fmt: skip
    ARRAYS: ClassVar[tuple[str, ...]] = tuple(DTYPES)

    def __len__(self) -> int:
        return int(self.mmsi.shape[0])

    @classmethod
    def from_records(cls, positions: Sequence[AisPosition]) -> PositionColumns:
        """The columns of ``positions`` (``None`` becomes NaN or -1)."""
        if not positions:
            return cls.concat([])
        *values, src = zip(*map(_POSITION_FIELDS, positions), strict=True)
        cols: dict[str, Any] = dict(zip(cls.ARRAYS[:-1], values, strict=True))  # not source_idx
        for name in ("heading_deg", "nav_status"):
            cols[name] = [-1 if v is None else v for v in cols[name]]
        sources = list(dict.fromkeys(src))
        index = {s: i for i, s in enumerate(sources)}
        cols["source_idx"] = [index[x] for x in src]
        # NumPy turns None into NaN for the float dtypes
        arrays = {name: np.array(cols[name], dtype=cls.DTYPES[name]) for name in cls.ARRAYS}
        return cls(**arrays, sources=sources)

    @classmethod
    def concat(cls, parts: Sequence[PositionColumns]) -> PositionColumns:
        """``parts`` one after the other (none: no reports)."""
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return cls(**{n: np.zeros(0, d) for n, d in cls.DTYPES.items()}, sources=[])
        sources = list(dict.fromkeys(s for p in parts for s in p.sources))
        index = {s: i for i, s in enumerate(sources)}
        cols: dict[str, Any] = {
            name: np.concatenate([getattr(p, name) for p in parts]) for name in cls.ARRAYS
        }
        cols["source_idx"] = np.concatenate(
            [np.array([index[s] for s in p.sources], np.int64)[p.source_idx] for p in parts]
        )
        return cls(**cols, sources=sources)

    def take(self, idx: np.ndarray) -> PositionColumns:
        """The reports ``idx``, in that order."""
        cols: dict[str, Any] = {name: getattr(self, name)[idx] for name in self.ARRAYS}
        return PositionColumns(**cols, sources=self.sources)

    def record(self, i: int) -> AisPosition:
        """Report ``i`` as a record."""
        lon, lat, sog, cog = (
            float(getattr(self, f)[i]) for f in ("lon", "lat", "sog_kn", "cog_deg")
        )
        hdg, nav = int(self.heading_deg[i]), int(self.nav_status[i])
        return AisPosition(
            mmsi=int(self.mmsi[i]), msg_type=int(self.msg_type[i]), t_ms=int(self.t_ms[i]),
            lon=None if math.isnan(lon) else lon, lat=None if math.isnan(lat) else lat,
            sog_kn=None if math.isnan(sog) else sog, cog_deg=None if math.isnan(cog) else cog,
            heading_deg=None if hdg < 0 else hdg, nav_status=None if nav < 0 else nav,
            accuracy=bool(self.accuracy[i]), source=self.sources[int(self.source_idx[i])],
            rx_t_ms=int(self.rx_t_ms[i]),
        )  # fmt: skip


#: an AisPosition's fields in the order of PositionColumns.ARRAYS (``source`` last)
_POSITION_FIELDS = attrgetter(*PositionColumns.ARRAYS[:-1], "source")
