"""Alert records: an episode's state as a CloudEvents alert."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipeline.core.detectors import Condition, VesselView
from pipeline.engine.state import AreaContext, _Episode, _push_unique, _Target
from schemas.records import (
    Alert,
    AlertData,
    AlertEvidence,
    AlertFactor,
    AlertVessel,
    AlertZone,
    GeoPoint,
)


def iso_utc(t_ms: int) -> str:
    """ISO 8601 UTC with millisecond precision and ``Z``, as CloudEvents ``time`` wants."""
    return datetime.fromtimestamp(t_ms / 1000.0, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{int(t_ms) % 1000:03d}Z"
    )


def _alert_data(
    c: Condition,
    ep: _Episode,
    status: str,
    view: VesselView,
    owners: list[Any],
    zone: tuple[str | None, str | None, float | None, float | None],
    site: str,
) -> AlertData:
    i = c.row
    owner = owners[i]
    dark = bool(view.dark[i])
    mmsi = int(view.mmsi[i]) if view.mmsi[i] >= 0 else None
    track_id = (
        owner.subject or f"cam:{owner.camera_id}:{owner.track_id}"
        if isinstance(owner, _Target)
        else str(view.subject[i])
    )
    detections = list(owner.detections)
    for r in c.rows[1:]:
        detections.append({
            "partner": str(view.subject[r]), "mmsi": None if view.dark[r] else int(view.mmsi[r]),
            "lon": float(view.lon[r]), "lat": float(view.lat[r]), "t_ms": int(view.t_ms[r]),
        })  # fmt: skip
        detections.extend(owners[r].detections)
    ident = view.registry.source[i] if view.registry is not None else None
    uris: list[str] = []
    for r in c.rows or (i,):
        for u in owners[r].uris:
            _push_unique(uris, u, limit=10)
    return AlertData(
        alert_id=ep.alert_id, kind=c.kind, status=status, severity=c.severity,  # type: ignore[arg-type]
        factors=[AlertFactor(f.name, float(f.weight), f.explanation) for f in c.factors],
        event_time=iso_utc(ep.start_t_ms), position=GeoPoint(lat=c.lat, lon=c.lon),
        vessel=AlertVessel(
            mmsi=mmsi, name=view.name[i], dark=dark, track_id=track_id,
            registry=ident.record if ident is not None else None,
            watchlist=list(ident.watchlist) if ident is not None else [],
        ),
        zone=AlertZone(name=zone[0], kind=zone[1], distance_m=zone[2], coast_distance_m=zone[3]),
        evidence=AlertEvidence(trail=[list(p) for p in owner.trail], detections=detections, snapshot_uris=uris),
        site=site, seq=ep.seq,
    )  # fmt: skip


def _cloud_event(data: AlertData, time_ms: int, ctx: AreaContext) -> Alert:
    return Alert(
        id=f"{data.alert_id}/{data.seq}", source=ctx.source, type=f"org.shorewatch.alert.{data.kind}",
        time=iso_utc(time_ms), subject=data.vessel.track_id, data=data,
    )  # fmt: skip
