"""Hidden landing sites over the archive: ``shorewatch history landing-sites``.

Stops are taken from the archive of one site's window (default the last 30 days):

- AIS: runs of position reports below ``max_sog_kn`` of one MMSI
  (:func:`pipeline.core.landing_sites.find_stops`);
- camera targets: detections of one camera track averaged per minute
  (:func:`~pipeline.core.landing_sites.bin_means`), stops by implied speed; a camera stop
  that coincides with an AIS stop (same place and time) is that vessel, the others are
  *dark* visits.

Stops farther than ``max_coast_m`` from the coastline, or inside (or within
``zone_margin_m`` of) an authorised zone, are left out; the rest are clustered across
nights (:func:`~pipeline.core.landing_sites.cluster_stops`). A night is the local date
(site time zone) of the evening: a stop at 04:00 belongs to the night that began the day
before.

With ``--publish`` every new finding (and every finding seen on more nights than when it
was last published) is sent to ``shorewatch.alert.v1`` as an alert of kind ``landing_site``
(CloudEvents, ``data.landing_site`` holds the finding). What was published is remembered in
``ROOT/_findings/landing_sites.json`` so that the daily job publishes each finding once per
change; ``--every-h 24`` keeps the command running as that job.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.geo import enu_m_to_lonlat, haversine_m
from pipeline.core.landing_sites import Stops, bin_means, cluster_stops, find_stops
from pipeline.history.layout import ALERTS, FRAMES, POSITIONS
from pipeline.history.query import Archive, _iso, check_range
from schemas.records import (
    Alert,
    AlertData,
    AlertEvidence,
    AlertFactor,
    AlertVessel,
    AlertZone,
    GeoPoint,
    LandingSiteFinding,
)

__all__ = ["LandingParams", "find_landing_sites", "finding_alerts", "publish"]

log = logging.getLogger(__name__)
DAY_MS = 86_400_000


@dataclass(frozen=True)
class LandingParams:
    """Settings of the landing-site search.

    :param max_sog_kn: AIS stop speed, knots
    :param camera_max_kn: camera target stop speed (implied, per-minute means), knots
    :param min_stop_s: shortest stop, s
    :param max_coast_m: farthest a stop may be from the coastline, m
    :param zone_margin_m: stops within this distance of an authorised zone are left out, m
    :param cell_m: grid cell of the clustering, m
    :param min_nights: distinct nights that make a place a finding
    :param match_m: a camera stop within this distance of an AIS stop at the same time is
        that vessel, m
    """

    max_sog_kn: float = 0.5
    camera_max_kn: float = 1.0
    min_stop_s: float = 300.0
    max_coast_m: float = 300.0
    zone_margin_m: float = 150.0
    cell_m: float = 50.0
    min_nights: int = 3
    match_m: float = 150.0


@dataclass
class _StopSet:
    stops: Stops
    keys: list[str]  # the object of each stop, as text ("412000001", "cam:c1:7")
    mmsi: np.ndarray  # -1 for camera targets
    dark: np.ndarray


def _no_stops() -> _StopSet:
    """A set of no stops."""
    return _StopSet(
        find_stops(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0)),
        [],
        np.zeros(0, np.int64),
        np.zeros(0, bool),
    )


def _ais_stops(archive: Archive, site: Any, from_ms: int, to_ms: int, p: LandingParams) -> _StopSet:
    x0, y0, x1, y1 = site.bbox
    geom = site.geometry()
    empty = _no_stops()
    if not archive.view("p", POSITIONS, from_ms, to_ms):
        return empty
    t = archive.query(
        f"""SELECT mmsi, t_ms, lon, lat, sog_kn FROM p
            WHERE t_ms >= {from_ms} AND t_ms < {to_ms} AND lon BETWEEN {x0} AND {x1}
              AND lat BETWEEN {y0} AND {y1} AND sog_kn < {p.max_sog_kn}"""
    )
    if t.num_rows == 0:
        return empty
    mmsi = t["mmsi"].to_numpy()
    e, n = geom.to_enu_m(t["lon"].to_numpy(), t["lat"].to_numpy())
    s = find_stops(mmsi, t["t_ms"].to_numpy(), e, n, t["sog_kn"].to_numpy(zero_copy_only=False).astype(np.float64),
                   max_speed_kn=p.max_sog_kn, min_duration_ms=int(p.min_stop_s * 1000))  # fmt: skip
    return _StopSet(s, [str(m) for m in s.obj], s.obj.copy(), np.zeros(len(s), bool))


def _camera_stops(
    archive: Archive, site: Any, from_ms: int, to_ms: int, p: LandingParams
) -> _StopSet:
    x0, y0, x1, y1 = site.bbox
    geom = site.geometry()
    empty = _no_stops()
    if not archive.view("f", FRAMES, from_ms, to_ms):
        return empty
    t = archive.query(
        f"""WITH d AS (SELECT camera_id, t_ms, unnest(det_track_id) AS track_id,
                              unnest(det_lon) AS lon, unnest(det_lat) AS lat
                       FROM f WHERE t_ms >= {from_ms} AND t_ms < {to_ms} AND n_detections > 0)
            SELECT 'cam:' || camera_id || ':' || track_id AS key, t_ms, lon, lat FROM d
            WHERE lon BETWEEN {x0} AND {x1} AND lat BETWEEN {y0} AND {y1}"""
    )
    if t.num_rows == 0:
        return empty
    keys, obj = np.unique(np.asarray(t["key"].to_pylist(), dtype=object), return_inverse=True)
    e, n = geom.to_enu_m(t["lon"].to_numpy(), t["lat"].to_numpy())
    bo, bt, be, bn = bin_means(obj.ravel(), t["t_ms"].to_numpy(), e, n, 60_000)
    s = find_stops(bo, bt, be, bn, max_speed_kn=p.camera_max_kn, max_gap_ms=5 * 60_000,
                   min_duration_ms=int(p.min_stop_s * 1000))  # fmt: skip
    return _StopSet(
        s, [str(keys[o]) for o in s.obj], np.full(len(s), -1, np.int64), np.ones(len(s), bool)
    )


def _night_keys(t_ms: np.ndarray, tz: Any) -> list[str]:
    """Local date of the evening each time belongs to (12 h before, in the site's zone)."""
    return [
        (datetime.fromtimestamp(int(t) / 1000, tz=UTC).astimezone(tz) - timedelta(hours=12))
        .date()
        .isoformat()
        for t in t_ms
    ]


def find_landing_sites(
    archive: Archive, site: Any, from_ms: int, to_ms: int, params: LandingParams | None = None
) -> list[LandingSiteFinding]:
    """The landing-site findings of ``site`` in [from, to), most nights first."""
    check_range(from_ms, to_ms)
    p = params or LandingParams()
    geom = site.geometry()
    ais = _ais_stops(archive, site, from_ms, to_ms, p)
    cam = _camera_stops(archive, site, from_ms, to_ms, p)
    # camera stops that are an AIS vessel's stop: not dark, and counted once (as AIS)
    if len(cam.stops) and len(ais.stops):
        a, c = ais.stops, cam.stops
        d = np.hypot(c.east_m[:, None] - a.east_m[None, :], c.north_m[:, None] - a.north_m[None, :])
        overlap = (c.start_t_ms[:, None] <= a.end_t_ms[None, :] + 300_000) & (
            c.end_t_ms[:, None] >= a.start_t_ms[None, :] - 300_000
        )
        seen = np.any((d <= p.match_m) & overlap, axis=1)
        keep = np.flatnonzero(~seen)
        cam = _StopSet(c.take(keep), [cam.keys[i] for i in keep], cam.mmsi[keep], cam.dark[keep])
    stops = Stops.concat([ais.stops, cam.stops])
    keys = ais.keys + cam.keys
    mmsi = np.concatenate([ais.mmsi, cam.mmsi])
    dark = np.concatenate([ais.dark, cam.dark])
    if not len(stops):
        return []
    lon0, lat0 = geom.origin_lonlat
    lon, lat = enu_m_to_lonlat(stops.east_m, stops.north_m, lon0, lat0)
    ok = (geom.coast_distance_m(lon, lat) <= p.max_coast_m) & ~geom.in_authorised_zone(
        lon, lat, p.zone_margin_m
    )
    idx = np.flatnonzero(ok)
    if not len(idx):
        return []
    nights = _night_keys(stops.start_t_ms[idx], site.timezone)
    night_ids = np.unique(np.asarray(nights), return_inverse=True)[1].ravel()
    places = cluster_stops(stops.east_m[idx], stops.north_m[idx], night_ids,
                           cell_m=p.cell_m, min_nights=p.min_nights)  # fmt: skip
    findings: list[LandingSiteFinding] = []
    alerts = _alerts(archive, from_ms, to_ms)
    for k in range(len(places)):
        sel = np.flatnonzero(places.label == k)
        rows = idx[sel]
        clon_a, clat_a = enu_m_to_lonlat(places.east_m[k], places.north_m[k], lon0, lat0)
        clon, clat = float(clon_a), float(clat_a)
        near_alerts = sorted({a["alert_id"] for a in alerts
                              if haversine_m(clon, clat, a["lon"], a["lat"]) <= places.radius_m[k] + 100})  # fmt: skip
        findings.append(
            LandingSiteFinding(
                finding_id=f"landing_site:{site.name}:{clon:.4f}:{clat:.4f}",
                lon=round(clon, 6), lat=round(clat, 6), radius_m=round(float(places.radius_m[k]), 1),
                nights=sorted({nights[i] for i in sel}),
                mmsis=sorted({int(mmsi[r]) for r in rows if mmsi[r] >= 0}),
                camera_targets=sorted({keys[r] for r in rows if mmsi[r] < 0}),
                visits=len(rows), dark_visits=int(dark[rows].sum()), alert_ids=near_alerts,
                window_start=_iso(from_ms), window_end=_iso(to_ms),
            )
        )  # fmt: skip
    findings.sort(key=lambda f: (-len(f.nights), f.finding_id))
    return findings


def _alerts(archive: Archive, from_ms: int, to_ms: int) -> list[dict[str, Any]]:
    if not archive.view("a", ALERTS, from_ms, to_ms):
        return []
    return archive.query(
        f"""SELECT DISTINCT alert_id, lon, lat FROM a WHERE t_ms >= {from_ms} AND t_ms < {to_ms}
            AND kind <> 'landing_site' AND lon IS NOT NULL"""
    ).to_pylist()


# --------------------------------------------------------------------------- publishing
def _state_path(root: Path) -> Path:
    return root / "_findings" / "landing_sites.json"


def finding_alerts(
    findings: list[LandingSiteFinding], site: Any, root: Path, now_ms: int
) -> list[Alert]:
    """Alerts for the findings that are new, or seen on more nights than when last
    published; the published state is updated (atomically) under ``root``."""
    from pipeline.engine.alerts import iso_utc

    path = _state_path(root)
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        state = {}
    geom = site.geometry()
    out: list[Alert] = []
    for f in findings:
        prev_id = next((k for k, v in state.items()
                        if haversine_m(f.lon, f.lat, v["lon"], v["lat"]) <= max(f.radius_m, 100.0)), None)  # fmt: skip
        if prev_id is not None:
            prev = state[prev_id]
            if len(f.nights) <= prev["n_nights"]:
                continue
            f = LandingSiteFinding(
                **{**{k: getattr(f, k) for k in f.__struct_fields__}, "finding_id": prev_id}
            )
            seq, status = prev["seq"] + 1, "update"
        else:
            seq, status = 0, "open"
        zi, zd = geom.nearest_zone(np.array([f.lon]), np.array([f.lat]))
        zone = geom.zones[int(zi[0])] if zi[0] >= 0 else None
        coast = float(geom.coast_distance_m(np.array([f.lon]), np.array([f.lat]))[0])
        dark_share = f.dark_visits / max(f.visits, 1)
        factors = [
            AlertFactor("repeated_nights", 10.0 * len(f.nights),
                        f"stops on {len(f.nights)} distinct nights within the window"),
            AlertFactor("outside_authorised_zone", 20.0,
                        f"{float(zd[0]):.0f} m from the nearest authorised zone"),
        ]  # fmt: skip
        if f.dark_visits:
            factors.append(AlertFactor("dark_visits", round(30.0 * dark_share, 1),
                                       f"{f.dark_visits} of {f.visits} visits without AIS"))  # fmt: skip
        if len(f.mmsis) + len(f.camera_targets) > 1:
            factors.append(AlertFactor("several_vessels", 10.0,
                                       f"{len(f.mmsis) + len(f.camera_targets)} different vessels"))  # fmt: skip
        severity = int(min(100, max(0, round(sum(x.weight for x in factors)))))
        data = AlertData(
            alert_id=f.finding_id, kind="landing_site", status=status, severity=severity,  # type: ignore[arg-type]
            factors=factors, event_time=f.window_start,
            position=GeoPoint(lat=f.lat, lon=f.lon),
            vessel=AlertVessel(mmsi=None, name=None, dark=f.dark_visits > 0, track_id=f.finding_id),
            zone=AlertZone(name=zone.name if zone else None, kind=zone.kind if zone else None,
                           distance_m=float(zd[0]) if zone else None, coast_distance_m=coast),
            evidence=AlertEvidence(), site=site.name, seq=seq, landing_site=f,
        )  # fmt: skip
        out.append(
            Alert(
                id=f"{f.finding_id}/{seq}",
                source=f"shorewatch/{site.name}/history",
                type="org.shorewatch.alert.landing_site",
                time=iso_utc(now_ms),
                subject=f.finding_id,
                data=data,
            )  # fmt: skip
        )
        state[f.finding_id] = {"lon": f.lon, "lat": f.lat, "n_nights": len(f.nights), "seq": seq}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".landing_sites.json.tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    os.replace(tmp, path)
    return out


async def publish(alerts: list[Alert]) -> None:
    """Send the alerts to ``shorewatch.alert.v1`` (structured CloudEvents, keyed by alert
    id) and wait for every acknowledgement."""
    import msgspec
    from aiokafka import AIOKafkaProducer

    from pipeline import topics
    from pipeline.settings import Settings

    prod = AIOKafkaProducer(
        bootstrap_servers=Settings.from_env().broker(), acks="all", enable_idempotence=True
    )
    await prod.start()
    try:
        enc = msgspec.json.Encoder()
        headers = [("content-type", b"application/cloudevents+json")]
        futs = [
            await prod.send(
                topics.ALERT.name, enc.encode(a), key=a.data.alert_id.encode(), headers=headers
            )  # fmt: skip
            for a in alerts
        ]
        for f in futs:
            await f
    finally:
        await prod.stop()
