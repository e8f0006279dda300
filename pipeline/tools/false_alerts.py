"""Why an alert matched no planted event: the cause of each false alert on a simulated night.

:func:`false_alert_causes` looks up what the simulator's ground truth had where and when a
false alert (or a duplicate) was raised:

- ``duplicate``: a second alert for an event already alerted;
- ``clutter``: a camera target with no true vessel within ``bearing_deg`` of its bearing
  from the camera (waves, glare, a rock);
- ``unmatched_ais``: a camera target on the bearing of a vessel whose AIS was on (the
  association did not pair them), with the true and the measured range;
- ``dark_vessel_elsewhere``: a camera target on the bearing of a vessel without AIS, away
  from its planted event;
- ``ais_reporting``: an alert on an MMSI whose AIS was still reporting at the alert time
  (for ``dark_approach``: the silence limit was too short for its class and speed);
- ``ais_vessel``: any other alert on an AIS vessel, with its simulator role.

Tool code (never imported by production).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from pipeline.tools.evaluate import match_alerts

__all__ = ["CAUSES", "false_alert_causes", "format_false_alerts"]

#: The causes :func:`false_alert_causes` tells apart.
CAUSES = (
    "duplicate",
    "clutter",
    "unmatched_ais",
    "dark_vessel_elsewhere",
    "ais_reporting",
    "ais_vessel",
)

_M_PER_DEG = 111_195.0


def _bearing_range(lon0: float, lat0: float, lon: np.ndarray, lat: np.ndarray):
    dx = (np.asarray(lon) - lon0) * math.cos(math.radians(lat0)) * _M_PER_DEG
    dy = (np.asarray(lat) - lat0) * _M_PER_DEG
    return np.degrees(np.arctan2(dx, dy)) % 360.0, np.hypot(dx, dy)


def _ais_on(vessel: Mapping[str, Any], t_ms: int) -> bool:
    return any(a <= t_ms <= b for a, b in vessel.get("ais_intervals", []))


def _at(
    vessel: Mapping[str, Any], t_ms: int, max_gap_ms: int = 20_000
) -> tuple[float, float] | None:
    tr = vessel.get("track") or []
    if not tr:
        return None
    ts = np.array([p[0] for p in tr])
    k = int(np.argmin(np.abs(ts - t_ms)))
    if abs(int(ts[k]) - t_ms) > max_gap_ms:
        return None
    return float(tr[k][1]), float(tr[k][2])


def _camera_of(alert_id: str) -> str | None:
    # <kind>:cam:<camera>:<track>:<start>
    parts = alert_id.split(":")
    return parts[2] if len(parts) >= 5 and parts[1] == "cam" else None


def false_alert_causes(
    truth: dict[str, Any],
    alerts: Sequence[Any],
    cameras: Mapping[str, tuple[float, float]],
    bearing_deg: float = 2.0,
) -> list[dict[str, Any]]:
    """The cause of every false alert and duplicate of one simulated night.

    :param truth: the content of ``truth.json``
    :param alerts: every alert event of the night
    :param cameras: camera id -> ``(lon, lat)``
    :param bearing_deg: a true vessel within this many degrees of a camera target's
        bearing may be what the camera saw
    :return: one ``{alert_id, kind, cause, detail, lon, lat}`` per false alert, in time order
    """
    m = match_alerts(truth, alerts)
    vessels = list(truth.get("vessels", []))
    by_mmsi = {v["mmsi"]: v for v in vessels if v.get("mmsi")}
    out = []
    dups = {id(a) for a in m["duplicates"]}
    for al in sorted(m["false_positives"] + m["duplicates"], key=lambda a: (a.t_ms, a.alert_id)):
        cause, detail = "ais_vessel", ""
        cam = _camera_of(al.alert_id)
        if id(al) in dups:
            cause, detail = "duplicate", "a second alert for an event already alerted"
        elif al.mmsi is not None and al.mmsi in by_mmsi and cam is None:
            v = by_mmsi[al.mmsi]
            if _ais_on(v, al.t_ms):
                cause, detail = "ais_reporting", f"{v['role']} (AIS still reporting)"
            else:
                detail = f"{v['role']} (AIS off)"
        elif cam is not None and cam in cameras:
            c_lon, c_lat = cameras[cam]
            b0, r0 = _bearing_range(c_lon, c_lat, al.lon, al.lat)
            best: tuple[float, float, Mapping[str, Any]] | None = None
            for v in vessels:
                p = _at(v, al.t_ms)
                if p is None:
                    continue
                b, r = _bearing_range(c_lon, c_lat, np.array(p[0]), np.array(p[1]))
                db = abs((float(b) - float(b0) + 180.0) % 360.0 - 180.0)
                if db <= bearing_deg and (best is None or db < best[0]):
                    best = (db, float(r), v)
            if best is None:
                cause = "clutter"
                detail = f"no vessel within {bearing_deg:g} deg of its bearing from {cam}"
            elif best[2].get("mmsi") and _ais_on(best[2], al.t_ms):
                cause = "unmatched_ais"
                detail = (
                    f"{best[2]['role']} with AIS on, {best[1] / 1000:.1f} km from {cam}, "
                    f"placed at {float(r0) / 1000:.1f} km"
                )
            else:
                cause = "dark_vessel_elsewhere"
                detail = f"{best[2]['role']} without AIS, {best[1] / 1000:.1f} km from {cam}"
        out.append({
            "alert_id": al.alert_id, "kind": al.kind, "cause": cause, "detail": detail,
            "lon": round(al.lon, 6), "lat": round(al.lat, 6),
        })  # fmt: skip
    return out


def format_false_alerts(rows: Iterable[Mapping[str, Any]], limit: int = 40) -> str:
    """The false alerts as text: a count per cause, then one line per alert (at most
    ``limit``)."""
    rows = list(rows)
    if not rows:
        return "false alerts: none"
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["cause"]] = counts.get(r["cause"], 0) + 1
    lines = ["false alerts by cause: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))]
    for r in rows[:limit]:
        seed = f"seed {r['seed']}: " if "seed" in r else ""
        lines.append(f"  {seed}{r['kind']} {r['alert_id']}: {r['cause']} ({r['detail']})")
    if len(rows) > limit:
        lines.append(f"  ... {len(rows) - limit} more")
    return "\n".join(lines)
