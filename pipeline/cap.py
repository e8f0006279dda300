"""Alerts as CAP 1.2 messages (OASIS Common Alerting Protocol) for public-safety systems.

One Shorewatch alert event becomes one ``<alert>``: ``identifier`` is the CloudEvent
``id`` (``<alert_id>/<seq>``), ``msgType`` is ``Alert`` for the event that opens an
alert and ``Update`` after it (a closing event adds ``responseType`` ``AllClear``);
``references`` names the opening message of the same alert. The position is an
``<area>`` ``<circle>`` written **lat,lon radius** (CAP's order, the reverse of GeoJSON),
radius in km. Severity 0–100 maps to CAP ``severity``: 80+ Severe, 50+ Moderate, else
Minor. Nothing here does I/O; ``shorewatch alerts cap`` writes the files.

>>> cap_severity(85), cap_severity(50), cap_severity(10)
('Severe', 'Moderate', 'Minor')
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from schemas.records import Alert

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
_FORBIDDEN = re.compile(r"[\s,<&]")

_EVENT_NAMES = {
    "unusual_landing": "Unusual landing",
    "dark_approach": "Dark vessel approaching the shore",
    "dark_vessel": "Vessel without AIS",
    "rendezvous": "Vessel rendezvous",
    "loitering": "Loitering vessel",
    "identity_anomaly": "Vessel identity anomaly",
    "impossible_speed": "Impossible vessel speed",
    "ais_not_seen": "AIS expected but not seen",
    "cloned_mmsi": "One MMSI at two places at once",
    "outside_home_harbour": "Vessel stopped at night away from its home harbours",
}


def cap_severity(severity: int) -> str:
    """CAP ``severity`` of a 0–100 Shorewatch severity."""
    return "Severe" if severity >= 80 else "Moderate" if severity >= 50 else "Minor"


def cap_time(iso_utc: str) -> str:
    """An ISO 8601 UTC time as CAP writes it: seconds and a numeric offset, no ``Z``."""
    t = datetime.fromisoformat(iso_utc.replace("Z", "+00:00")).astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _token(text: str) -> str:
    """CAP identifiers and senders hold no spaces, commas, ``<`` or ``&``."""
    return _FORBIDDEN.sub("_", text)


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        el.text = text
    return el


def to_cap(
    alert: Alert,
    *,
    sender: str = "shorewatch@localhost",
    status: str = "Actual",
    scope: str = "Restricted",
    restriction: str = "coastal security operators",
    radius_km: float = 0.5,
    language: str = "en-US",
) -> bytes:
    """One alert event as a CAP 1.2 XML document (UTF-8).

    :param sender: the CAP ``sender`` (no spaces, commas, ``<`` or ``&``)
    :param scope: ``Public``, ``Restricted`` (with ``restriction``) or ``Private``
    :param radius_km: radius of the area circle around the alert position, km
    """
    d = alert.data
    root = ET.Element(f"{{{CAP_NS}}}alert")
    sent = cap_time(alert.time)
    _sub(root, "identifier", _token(alert.id))
    _sub(root, "sender", _token(sender))
    _sub(root, "sent", sent)
    _sub(root, "status", status)
    _sub(root, "msgType", "Alert" if d.seq == 0 else "Update")
    _sub(root, "source", alert.source)
    _sub(root, "scope", scope)
    if scope == "Restricted":
        _sub(root, "restriction", restriction)
    if d.seq > 0:
        # the opening message; its sent time is the alert's event time
        first = _token(f"{d.alert_id}/0")
        _sub(root, "references", f"{_token(sender)},{first},{cap_time(d.event_time)}")
    _sub(root, "incidents", _token(d.alert_id))
    info = _sub(root, "info")
    _sub(info, "language", language)
    _sub(info, "category", "Security")
    _sub(info, "event", _EVENT_NAMES.get(d.kind, d.kind.replace("_", " ")))
    _sub(info, "responseType", "AllClear" if d.status == "closed" else "Monitor")
    _sub(info, "urgency", "Past" if d.status == "closed" else "Immediate")
    _sub(info, "severity", cap_severity(d.severity))
    _sub(info, "certainty", "Observed" if d.severity >= 80 else "Likely")
    _sub(info, "onset", cap_time(d.event_time))
    _sub(info, "senderName", "Shorewatch")
    who = (
        f"MMSI {d.vessel.mmsi}" if d.vessel.mmsi is not None else f"dark target {d.vessel.track_id}"
    )
    if d.vessel.name:
        who += f" ({d.vessel.name})"
    _sub(info, "headline", f"{_EVENT_NAMES.get(d.kind, d.kind)}: {who}"[:160])
    factors = "; ".join(f"{f.name} (+{f.weight:g}): {f.explanation}" for f in d.factors)
    _sub(info, "description", f"Severity {d.severity}/100. {factors}".strip())
    for name, value in (
        ("shorewatch:alert_id", d.alert_id),
        ("shorewatch:severity", str(d.severity)),
        ("shorewatch:status", d.status),
        ("shorewatch:mmsi", "" if d.vessel.mmsi is None else str(d.vessel.mmsi)),
        ("shorewatch:dark", "true" if d.vessel.dark else "false"),
    ):
        p = _sub(info, "parameter")
        _sub(p, "valueName", name)
        _sub(p, "value", value)
    area = _sub(info, "area")
    desc = d.zone.name or f"{d.site} shore"
    if d.zone.coast_distance_m is not None:
        desc += f", {d.zone.coast_distance_m:.0f} m from shore"
    _sub(area, "areaDesc", desc)
    # CAP: "lat,lon radius" (WGS 84), radius in km
    _sub(area, "circle", f"{d.position.lat:.6f},{d.position.lon:.6f} {radius_km:g}")
    ET.register_namespace("", CAP_NS)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
