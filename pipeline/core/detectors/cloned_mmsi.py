"""Cloned MMSI: one MMSI reported at two places at once (two transmitters sharing an
identity), beyond the single jump :mod:`~pipeline.core.detectors.impossible_speed` sees."""

from __future__ import annotations

import numpy as np

from pipeline.core.detectors.base import Condition, DetectorSpec, Factor, VesselView, condition_at
from pipeline.core.detectors.registry_facts import REGISTERED
from pipeline.core.detectors.thresholds import Thresholds

__all__ = ["DETECTOR", "cloned_mmsi"]


def cloned_mmsi(v: VesselView, now_t_ms: int, th: Thresholds) -> list[Condition]:
    """An AIS vessel whose fixes jump back and forth between two places
    (:func:`~pipeline.core.detectors.registry_facts.two_places`: ``clone_min_jumps`` jumps
    above ``max_implied_speed_kn`` within ``clone_window_s``, at least one going back),
    held while its latest jump is within ``clone_window_s``. Start = the jump that
    completed the pattern. Severity 50, + 20 when the MMSI belongs to a registered vessel
    (its identity is in use by another transmitter)."""
    reg = v.registry
    if reg is None or len(v) == 0:
        return []
    ok = (
        (~v.dark)
        & (reg.clone_t_ms >= 0)
        & (now_t_ms - v.last_jump_t_ms <= th.clone_window_s * 1000.0)
    )
    out = []
    for i in np.flatnonzero(ok).tolist():
        f = [
            Factor(
                "two_places_at_once",
                50.0,
                f"MMSI {int(v.mmsi[i])} reported at two places {reg.clone_m[i] / 1000.0:.1f} km "
                f"apart, alternating ({int(reg.clone_jumps[i])} jumps within "
                f"{th.clone_window_s / 60:.0f} min): two transmitters share this identity",
            )
        ]
        if int(reg.status[i]) == REGISTERED:
            f.append(
                Factor(
                    "registered_identity_cloned",
                    20.0,
                    f"the MMSI belongs to registered vessel {reg.reg_name[i]!r} "
                    f"(registration {reg.registration_no[i]})",
                )
            )
        out.append(condition_at("cloned_mmsi", v, i, int(reg.clone_t_ms[i]), f))
    return out


DETECTOR = DetectorSpec(
    name="cloned_mmsi",
    thresholds={
        "window_s": "clone_window_s",
        "min_jumps": "clone_min_jumps",
        "return_m": "clone_return_m",
    },
    run=lambda s, th: cloned_mmsi(s.view, s.now_t_ms, th),
)
