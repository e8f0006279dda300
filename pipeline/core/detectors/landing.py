"""Unusual landing: a vessel that stops at the waterline, or whose track ends there, outside
every authorised zone."""

from __future__ import annotations

import numpy as np

from pipeline.core.detectors.base import (
    Condition,
    DetectorSpec,
    Factor,
    VesselView,
    ais_silence_ms,
    condition_at,
    night_mask,
    outside_zones,
)
from pipeline.core.detectors.identity import identity_factors
from pipeline.core.detectors.thresholds import Thresholds

__all__ = ["DETECTOR", "unusual_landing"]


def unusual_landing(v: VesselView, now_t_ms: int, th: Thresholds) -> list[Condition]:
    """A vessel (AIS or dark) that stops at the waterline, or whose track ends there,
    outside every authorised zone.

    - stop: below ``stop_speed_kn`` since ``stopped_since`` for ``landing_dwell_s``,
      within ``landing_coast_m`` of the coast (or on land); start = stop + dwell;
    - track ends: AIS silent for :func:`ais_silence_ms`, or a camera target unseen for
      ``camera_lost_s``, with the last position at the waterline; start = last + silence.

    A camera target counts only with a position good to ``dark_max_pos_sigma_m`` (a far
    target whose range is kilometres off is not known to be at the waterline).

    Severity: 40 for the landing, + night 20 (sun below -0.833 deg at the place and
    time), + no AIS 20 (dark target) or AIS went off 15, + identity anomalies 10, +
    earlier rendezvous 15, + small craft 5.
    """
    if len(v) == 0:
        return []
    stop_ok, end_ok, stop_start, end_start, silence = _landing_masks(v, now_t_ms, th)
    rows = np.flatnonzero(stop_ok | end_ok)
    if rows.size == 0:
        return []
    start = np.where(stop_ok[rows], stop_start[rows], np.inf)
    start = np.minimum(start, np.where(end_ok[rows], end_start[rows], np.inf)).astype(np.int64)
    night = night_mask(v, rows, start, th)
    out = []
    for j, i in enumerate(rows.tolist()):
        f = _landing_factors(v, i, bool(stop_ok[i]), bool(end_ok[i]), float(silence[i]), th)
        if night[j]:
            f.insert(1, Factor("night", 20.0, "sun below the horizon at the place and time"))
        f += _vessel_factors(v, i, now_t_ms, th)
        out.append(condition_at("unusual_landing", v, i, int(start[j]), f))
    return out


def _landing_masks(
    v: VesselView, now_t_ms: int, th: Thresholds
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows stopped at the waterline and rows whose track ended there, with the times at
    which each became a landing and the silence that ends a track.

    :returns: ``(stop_ok, end_ok, stop_start_t_ms, end_start_t_ms, silence_ms)``
    """
    near = (v.coast_m <= th.landing_coast_m) | v.on_land
    # a camera target is at the waterline only if its position is known well enough
    precise = True if v.pos_sigma_m is None else ~(v.pos_sigma_m > th.dark_max_pos_sigma_m)
    cand = near & outside_zones(v, th) & ((~v.dark) | ((v.hits >= th.dark_min_hits) & precise))
    stop_start = np.where(
        v.stopped_since_t_ms >= 0, v.stopped_since_t_ms + th.landing_dwell_s * 1000.0, np.inf
    )
    silence = np.where(v.dark, th.camera_lost_s * 1000.0, ais_silence_ms(v, th))
    end_start = v.t_ms + silence
    stop_ok = cand & (stop_start <= now_t_ms)
    # a camera track that ends at the shore counts only for a dark vessel (unmatched for
    # dark_vessel_min_s) that was slow at the end: not a wave, not a boat passing by
    dark_end_ok = (
        (v.unmatched_since_t_ms >= 0)
        & (v.t_ms - v.unmatched_since_t_ms >= th.dark_vessel_min_s * 1000.0)
        & (np.nan_to_num(v.sog_kn, nan=np.inf) < th.landing_end_speed_kn)
    )
    end_ok = cand & (end_start < now_t_ms) & ((~v.dark) | dark_end_ok)
    return stop_ok, end_ok, stop_start, end_start, silence


def _landing_factors(
    v: VesselView, i: int, stop_ok: bool, end_ok: bool, silence_ms: float, th: Thresholds
) -> list[Factor]:
    """The landing itself (stop or track end) and how its AIS went missing, row ``i``."""
    if stop_ok:
        what = (
            f"stopped (< {th.stop_speed_kn} kn) for >= {th.landing_dwell_s / 60:.0f} min "
            f"{v.coast_m[i]:.0f} m from the coast, outside authorised zones"
        )
        f = [Factor("stopped_at_shore", 40.0, what)]
    else:
        what = f"track ends {v.coast_m[i]:.0f} m from the coast, outside authorised zones"
        f = [Factor("track_ends_at_shore", 40.0, what)]
    if v.dark[i] and v.mmsi[i] >= 0:
        f.append(
            Factor(
                "ais_off",
                20.0,
                f"AIS of MMSI {int(v.mmsi[i])} went silent; the camera still tracks the vessel",
            )
        )
    elif v.dark[i]:
        f.append(Factor("no_ais", 20.0, "camera target with no AIS identity"))
    elif end_ok:
        f.append(Factor("ais_off", 15.0, f"AIS silent for more than {silence_ms / 1000:.0f} s"))
    return f


def _vessel_factors(v: VesselView, i: int, now_t_ms: int, th: Thresholds) -> list[Factor]:
    """What is known of vessel row ``i`` that raises a landing's severity."""
    f = []
    if not v.dark[i] and identity_factors(v, i, now_t_ms, th):
        f.append(Factor("identity_anomaly", 10.0, "identity anomalies on this MMSI"))
    if v.recent_rendezvous[i]:
        f.append(
            Factor(
                "earlier_rendezvous",
                15.0,
                f"met another vessel within the last {th.rendezvous_memory_s / 3600:.0f} h",
            )
        )
    if np.isfinite(v.length_m[i]) and v.length_m[i] < th.small_craft_length_m:
        f.append(Factor("small_craft", 5.0, f"hull {v.length_m[i]:.0f} m long"))
    return f


DETECTOR = DetectorSpec(
    name="unusual_landing",
    thresholds={
        "dwell_s": "landing_dwell_s",
        "coast_m": "landing_coast_m",
        "end_speed_kn": "landing_end_speed_kn",
        "stop_radius_m": "dark_stop_radius_m",
    },
    run=lambda s, th: unusual_landing(s.view, s.now_t_ms, th),
)
