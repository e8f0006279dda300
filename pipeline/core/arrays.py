"""Small array helpers shared by the rings: NaN as ``None`` for JSON records."""

from __future__ import annotations

import math

import numpy as np


def none_if_nan(values: np.ndarray) -> list[float | None]:
    """``values`` as Python floats, NaN as ``None`` (only the NaNs are touched)."""
    out: list[float | None] = values.tolist()
    for i in np.flatnonzero(np.isnan(values)).tolist():
        out[i] = None
    return out


def finite_or_none(x: float) -> float | None:
    """``x`` as a Python float, or ``None`` when it is NaN or infinite."""
    return float(x) if math.isfinite(x) else None
