"""An in-memory snapshot of the registry for the hot path: MMSI look-ups of a whole
micro-batch as one vectorised search.

The registry changes a few times a day; the pipeline asks about thousands of MMSIs a
second. :class:`RegistryIndex` is loaded with one query and answers a batch with one
``numpy.searchsorted`` (microseconds for 4,000 MMSIs), and the driver reloads it on a
period of its choosing: ``RegistryIndex(registry.all())``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.registry.store import VesselRecord

__all__ = ["RegistryIndex"]


class RegistryIndex:
    """Registered vessels that have an MMSI, sorted by it.

    :param records: the vessels (those without an MMSI are left out; a repeated MMSI keeps
        its first record in registration-number order)
    """

    def __init__(self, records: Sequence[VesselRecord]):
        with_mmsi = sorted(
            (r for r in records if r.mmsi is not None), key=lambda r: (r.mmsi, r.registration_no)
        )
        mmsi = np.array([r.mmsi for r in with_mmsi], dtype=np.int64)
        keep = np.ones(len(mmsi), dtype=bool)
        keep[1:] = mmsi[1:] != mmsi[:-1]
        self.mmsi = mmsi[keep]
        self.records: list[VesselRecord] = [
            r for r, k in zip(with_mmsi, keep.tolist(), strict=True) if k
        ]

    def __len__(self) -> int:
        return len(self.mmsi)

    def positions(self, mmsis: np.ndarray) -> np.ndarray:
        """For each MMSI of a batch, the index of its record in :attr:`records`, or -1.

        :param mmsis: int64 MMSIs, any order, repeats allowed
        """
        q = np.asarray(mmsis, dtype=np.int64)
        if len(self.mmsi) == 0:
            return np.full(len(q), -1, dtype=np.int64)
        i = np.searchsorted(self.mmsi, q)
        i = np.minimum(i, len(self.mmsi) - 1)
        return np.where(self.mmsi[i] == q, i, -1)

    def registered(self, mmsis: np.ndarray) -> np.ndarray:
        """Whether each MMSI of a batch is registered (bool array)."""
        return self.positions(mmsis) >= 0
