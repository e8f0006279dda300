"""The simulator's cloned MMSI: a second transmitter broadcasting a registered vessel's MMSI
from somewhere else, at the same time (the truth of the ``cloned_mmsi`` rule).

:func:`plan_clone` picks, as a function of the run's seed, a registered vessel with nothing
else to find about it (the victim), a 30 min stretch while its AIS is on, and a path for
the second transmitter: the true path of another moving vessel of the run, shifted in time,
so that it is on water, at least :data:`CLONE_APART_M` from the victim throughout and
:data:`CLONE_CLEAR_M` from every vessel of the run (no camera target or AIS of another
vessel to confuse it with). :func:`clone_lines` writes its position reports (type 1, every
:data:`CLONE_REPORT_S`, heard by the nearest station) as the simulator writes AIS: the two
transmitters' reports interleave, and the MMSI jumps back and forth between places that no
vessel could join in the time between them. The second transmitter sends no static data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.core.geo import haversine_m
from pipeline.tools.sim_nmea import tag_block

__all__ = ["CLONE_APART_M", "CLONE_CLEAR_M", "CLONE_REPORT_S", "clone_lines", "plan_clone"]

#: how long the second transmitter is on, s
CLONE_S = 1800
#: the two transmitters are at least this far apart throughout, m
CLONE_APART_M = 10_000.0
#: the second transmitter keeps this far from every vessel of the run, m
CLONE_CLEAR_M = 1_000.0
#: its reporting interval, s (Class A under way below 14 kn)
CLONE_REPORT_S = 10
#: it starts at least this long after the run's start and ends this long before its end, s
_MARGIN_S = 600
#: roles whose true paths the second transmitter may follow (moving, on open water)
_PATH_ROLES = ("transit_cargo", "ferry", "fishing", "pleasure")
_STEP_S = 300
#: at most this many (victim, stretch, path, shift) choices are tried before giving up
_MAX_TRIES = 20_000


def _track(v: dict[str, Any]) -> np.ndarray:
    return np.asarray(v["track"], dtype=np.float64).reshape(-1, 5)


def _at(tr: np.ndarray, t_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Positions of a true track at ``t_ms`` (``None`` if the track does not cover them)."""
    if len(tr) < 2 or t_ms[0] < tr[0, 0] or t_ms[-1] > tr[-1, 0]:
        return None
    return np.interp(t_ms, tr[:, 0], tr[:, 1]), np.interp(t_ms, tr[:, 0], tr[:, 2])


def _ais_on(v: dict[str, Any], t0: float, t1: float) -> bool:
    return any(a <= t0 and t1 <= b for a, b in v["ais_intervals"])


def plan_clone(
    truth: dict[str, Any], victims: list[int], rng: np.random.Generator
) -> dict[str, Any] | None:
    """Where and when the second transmitter broadcasts a victim's MMSI.

    :param truth: the run's ``truth.json``
    :param victims: MMSIs it may clone (registered vessels with nothing else to find)
    :returns: ``{"mmsi", "t_ms", "t_end_ms", "path_of", "shift_s", "min_apart_m", "path"}``
        (``path``: ``[t_ms, lon, lat, sog_kn, cog_deg]`` every :data:`CLONE_REPORT_S`), or
        ``None`` when no victim, stretch and path fit (or none among the first
        :data:`_MAX_TRIES` choices)
    """
    vessels = truth["vessels"]
    tracks = {v["id"]: _track(v) for v in vessels}
    by_mmsi = {int(v["mmsi"]): v for v in vessels if v["mmsi"]}
    t_start = int(truth["start_t_ms"]) if "start_t_ms" in truth else None
    if t_start is None:
        t_start = int(min(tr[0, 0] for tr in tracks.values() if len(tr)))
    t_stop = t_start + int(truth.get("duration_s", 0)) * 1000
    if t_stop <= t_start:
        t_stop = int(max(tr[-1, 0] for tr in tracks.values() if len(tr)))
    starts = np.arange(t_start + _MARGIN_S * 1000, t_stop - (CLONE_S + _MARGIN_S) * 1000 + 1,
                       _STEP_S * 1000)  # fmt: skip
    paths = [v for v in vessels if v["role"] in _PATH_ROLES]
    shifts = [s for k in range(2, 13) for s in (k * _STEP_S, -k * _STEP_S)]
    tries = 0
    for m in rng.permutation(sorted(set(victims) & set(by_mmsi))).tolist():
        victim = by_mmsi[int(m)]
        for t0 in rng.permutation(starts).tolist():
            t = np.arange(t0, t0 + CLONE_S * 1000 + 1, CLONE_REPORT_S * 1000, dtype=np.float64)
            here = _at(tracks[victim["id"]], t)
            if here is None or not _ais_on(victim, t[0], t[-1]):
                continue
            for j in rng.permutation(len(paths)).tolist():
                src = paths[j]
                if src is victim:
                    continue
                for shift in shifts:
                    tries += 1
                    if tries > _MAX_TRIES:
                        return None
                    there = _at(tracks[src["id"]], t - shift * 1000.0)
                    if there is None:
                        continue
                    apart = haversine_m(here[0], here[1], there[0], there[1])
                    if apart.min() < CLONE_APART_M:
                        continue
                    tr = tracks[src["id"]]
                    sog = np.interp(t - shift * 1000.0, tr[:, 0], tr[:, 3])
                    if sog.mean() < 2.0:
                        continue
                    clear = True
                    for other in vessels:
                        pos = _at(tracks[other["id"]], t)
                        if (
                            pos is not None
                            and haversine_m(pos[0], pos[1], *there).min() < CLONE_CLEAR_M
                        ):
                            clear = False
                            break
                    if not clear:
                        continue
                    cog = np.interp(t - shift * 1000.0, tr[:, 0], tr[:, 4])
                    return {
                        "mmsi": int(m), "t_ms": int(t[0]), "t_end_ms": int(t[-1]),
                        "path_of": src["id"], "shift_s": int(shift),
                        "min_apart_m": round(float(apart.min()), 1),
                        "path": np.column_stack([t, there[0], there[1], sog, cog]).tolist(),
                    }  # fmt: skip
    return None


def clone_lines(truth: dict[str, Any], plan: dict[str, Any], rng: np.random.Generator) -> list[str]:
    """The second transmitter's AIS, as the simulator writes it (a tag block with the
    nearest station and the time before each sentence); 5 % of its reports are not heard."""
    from pyais.encode import encode_dict

    stations = [(s["id"], s["lon"], s["lat"]) for s in truth.get("stations", [])] or [
        ("STATION-1", plan["path"][0][1], plan["path"][0][2])
    ]
    lines: list[str] = []
    for k, (t_ms, lon, lat, sog, cog) in enumerate(plan["path"]):
        if rng.random() < 0.05:
            continue
        t_s = int(t_ms // 1000) + int(rng.integers(0, 3))
        d = [float(haversine_m(lon, lat, slo, sla)) for _s, slo, sla in stations]
        station = stations[int(np.argmin(d))][0]
        ex, ey = rng.normal(0.0, 4.0, 2) / np.array(
            [111_320.0 * np.cos(np.radians(lat)), 110_540.0]
        )
        msg: dict[str, str | int | float | bytes | bool] = {
            "type": 1, "mmsi": int(plan["mmsi"]), "status": 0, "turn": 0,
            "speed": round(float(sog), 1), "accuracy": 1,
            "lon": round(float(lon + ex), 6), "lat": round(float(lat + ey), 6),
            "course": round(float(cog) % 360.0, 1), "heading": int(round(cog)) % 360,
            "second": t_s % 60, "maneuver": 0, "raim": 0, "radio": 0,
        }  # fmt: skip
        for s in encode_dict(msg, talker_id="AI", sentence_type="VDM", radio_channel="AB"[k % 2]):
            lines.append(tag_block(station, t_s) + s)
    return lines
