"""Which PTZ camera looks at which target: nearest free camera that covers it, severity
pre-emption, operator locks, a per-camera rate limit. Pure logic: time is passed in."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipeline.core.ptz import PtzModel, aim

__all__ = ["Arbiter", "CameraSlot", "CueRequest", "Decision"]


@dataclass
class CueRequest:
    """A position to look at.

    :param severity: 0-100; a higher one pre-empts a lower one
    :param position_sigma_m: one-sigma error of the position, m (widens the field of view)
    :param vessel_length_m: expected length of what is there, m (sets the zoom)
    :param t_ms: when the request arrived, ms (the arbiter's clock)
    """

    alert_id: str
    severity: int
    lon: float
    lat: float
    t_ms: int
    position_sigma_m: float = 0.0
    vessel_length_m: float = 12.0


@dataclass
class CameraSlot:
    """One PTZ camera as the arbiter sees it.

    :param busy: the request it is serving (``None``: free)
    :param started_t_ms: when its current or last cue started, ms
    :param locked_until_t_ms: locked by an operator until then (``math.inf``: until
        released; ``None``: not locked)
    :param offline_until_t_ms: not to be used before then (it failed), ms
    """

    camera_id: str
    model: PtzModel
    busy: CueRequest | None = None
    started_t_ms: float = -math.inf
    locked_until_t_ms: float | None = None
    offline_until_t_ms: float = -math.inf

    def locked(self, now_t_ms: int) -> bool:
        return self.locked_until_t_ms is not None and now_t_ms < self.locked_until_t_ms


@dataclass
class Decision:
    """The arbiter's answer to a request.

    :param camera_id: the camera to steer (``None``: none now; see ``reason``)
    :param pan: ONVIF pan to steer to (``tilt``, ``zoom`` likewise)
    :param range_m: range from the camera, m
    :param preempted: the request the camera gives up for this one
    :param reason: why no camera, or ``free`` / ``preempts``
    """

    camera_id: str | None
    reason: str
    pan: float = math.nan
    tilt: float = math.nan
    zoom: float = math.nan
    range_m: float = math.nan
    bearing_deg: float = math.nan
    preempted: CueRequest | None = None


@dataclass
class Arbiter:
    """Assigns requests to cameras.

    Rules, in order: only cameras whose pan/tilt range and visible range reach the position
    (:func:`pipeline.core.ptz.aim`), not locked and not offline; among them the nearest
    free one; else the nearest one serving a lower severity; a camera never starts a new cue
    less than ``min_interval_s`` after its last one started (it would thrash between targets).

    :param fill: wanted fraction of the frame width for the vessel
    """

    slots: dict[str, CameraSlot] = field(default_factory=dict)
    min_interval_s: float = 3.0
    fill: float = 0.3

    def add(self, camera_id: str, model: PtzModel) -> None:
        self.slots[camera_id] = CameraSlot(camera_id, model)

    def serving(self, alert_id: str) -> CameraSlot | None:
        """The camera serving a request of this alert, if any."""
        for s in self.slots.values():
            if s.busy is not None and s.busy.alert_id == alert_id:
                return s
        return None

    def aim_at(self, slot: CameraSlot, req: CueRequest) -> Decision:
        a = aim(
            slot.model,
            req.lon,
            req.lat,
            vessel_length_m=req.vessel_length_m,
            fill=self.fill,
            position_sigma_m=req.position_sigma_m,
        )
        return Decision(
            slot.camera_id,
            "free" if a.reachable[0] else "out of reach",
            float(a.pan[0]),
            float(a.tilt[0]),
            float(a.zoom[0]),
            float(a.range_m[0]),
            float(a.bearing_deg[0]),
        )

    def decide(self, req: CueRequest, now_t_ms: int) -> Decision:
        """Which camera should take ``req`` now (does not change any state)."""
        slots = list(self.slots.values())
        if not slots:
            return Decision(None, "no PTZ camera")
        aims = [self.aim_at(s, req) for s in slots]
        covering = [(d.range_m, i) for i, d in enumerate(aims) if d.reason == "free"]
        if not covering:
            return Decision(None, "no camera covers the position")
        why: list[str] = []
        usable = []
        for _, i in sorted(covering):
            s = slots[i]
            if s.locked(now_t_ms):
                why.append(f"{s.camera_id} locked")
            elif now_t_ms < s.offline_until_t_ms:
                why.append(f"{s.camera_id} offline")
            elif now_t_ms - s.started_t_ms < self.min_interval_s * 1000.0:
                why.append(f"{s.camera_id} rate-limited")
            else:
                usable.append(i)
        for i in usable:
            if slots[i].busy is None:
                return aims[i]
        for i in usable:
            busy = slots[i].busy
            assert busy is not None
            if busy.severity < req.severity:
                d = aims[i]
                d.reason, d.preempted = "preempts", busy
                return d
            why.append(f"{slots[i].camera_id} busy with severity {busy.severity}")
        return Decision(None, "; ".join(why) or "no camera")

    def start(self, d: Decision, req: CueRequest, now_t_ms: int) -> None:
        """Record that the camera of ``d`` now serves ``req``."""
        assert d.camera_id is not None
        slot = self.slots[d.camera_id]
        slot.busy = req
        slot.started_t_ms = now_t_ms

    def release(self, camera_id: str, alert_id: str | None = None) -> None:
        """The camera is free again (only if it still serves ``alert_id``, when given)."""
        slot = self.slots[camera_id]
        if alert_id is None or (slot.busy is not None and slot.busy.alert_id == alert_id):
            slot.busy = None

    def nearest_first(self, lon: float, lat: float) -> list[str]:
        """Camera ids by range to a position (for reports)."""
        ranges = {cid: float(aim(s.model, lon, lat).range_m[0]) for cid, s in self.slots.items()}
        return sorted(ranges, key=lambda c: ranges[c])

    def pending_order(self, reqs: list[CueRequest]) -> list[CueRequest]:
        """Requests waiting for a camera, highest severity first, then oldest."""
        return sorted(reqs, key=lambda r: (-r.severity, r.t_ms))
