"""The operator workflow of an alert, separate from the detector's ``open/update/closed``.

IMO Bridge Alert Management (MSC.302(87)) in a console's words::

    new ──acknowledge──► acknowledged ──start──► in_progress ──resolve──► resolved
     │                        │                      │
     └───────── dismiss (reason + note) ─────────────┴──────────────────► dismissed

``assign``, ``escalate`` and ``comment`` keep the state; ``reopen`` (supervisor) returns a
resolved or dismissed alert to ``acknowledged``. A high-severity alert left ``new`` for
longer than the escalation delay is shown escalated. An alert the detector closed but no
one acknowledged stays in the queue (BAM's "rectified – unacknowledged").

Everything here is a plain function of (state, action): the console applies the actions
it reads from ``shorewatch.alert.action.v1`` in topic order.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import get_args

from schemas.records import AlertAction, AlertActionKind

STATES = ("new", "acknowledged", "in_progress", "resolved", "dismissed")
DISMISS_REASONS = ("false_alarm", "authorised_activity", "duplicate", "sensor_fault", "other")

#: actions each role may take; ``assign`` to someone else and ``reopen`` need a supervisor
ALLOWED: dict[str, frozenset[str]] = {
    "viewer": frozenset(),
    "operator": frozenset(
        {"acknowledge", "start", "assign", "escalate", "resolve", "dismiss", "comment", "silence"}
    ),
    "supervisor": frozenset(get_args(AlertActionKind)),  # every action, reopen included
}

#: the state an action moves to, from the states it is allowed in
_MOVES: dict[str, tuple[frozenset[str], str | None]] = {
    "acknowledge": (frozenset({"new"}), "acknowledged"),
    "start": (frozenset({"new", "acknowledged"}), "in_progress"),
    "resolve": (frozenset({"new", "acknowledged", "in_progress"}), "resolved"),
    "dismiss": (frozenset({"new", "acknowledged", "in_progress"}), "dismissed"),
    "reopen": (frozenset({"resolved", "dismissed"}), "acknowledged"),
    "assign": (frozenset({"new", "acknowledged", "in_progress"}), None),
    "escalate": (frozenset({"new", "acknowledged", "in_progress"}), None),
    "comment": (frozenset(STATES), None),
}


@dataclass(frozen=True, slots=True)
class Triage:
    """The operator state of one alert.

    :param acked_t_ms: when it was first acknowledged (or taken over), ms UTC
    """

    state: str = "new"
    assignee: str | None = None
    escalated: bool = False
    acked_by: str | None = None
    acked_t_ms: int | None = None
    dismiss_reason: str | None = None
    n_comments: int = 0
    last_t_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Silence:
    """A vessel or a place silenced until ``until_t_ms`` (ms UTC)."""

    action_id: str
    user: str
    until_t_ms: int
    mmsi: int | None = None
    lonlat: tuple[float, float] | None = None
    radius_m: float | None = None


def check(action: AlertAction, current: Triage, assigner_is_self: bool = True) -> str | None:
    """Why the action cannot be taken now (``None``: it can).

    :param assigner_is_self: for ``assign``: whether the user assigns to themself
    """
    if action.action not in ALLOWED.get(action.role, frozenset()):
        return f"role {action.role} may not {action.action}"
    if action.action == "assign" and not assigner_is_self and action.role != "supervisor":
        return "only a supervisor assigns an alert to someone else"
    if action.action == "dismiss" and action.reason not in DISMISS_REASONS:
        return f"a dismissal needs a reason among {', '.join(DISMISS_REASONS)}"
    if action.action == "comment" and not (action.text or "").strip():
        return "an empty comment"
    if action.action == "silence":
        if action.silence_until_t_ms is None or action.silence_until_t_ms <= action.t_ms:
            return "a silence needs an end in the future"
        if action.silence_mmsi is None and action.silence_lonlat is None:
            return "a silence needs a vessel or a place"
        return None
    allowed_from, _ = _MOVES[action.action]
    if current.state not in allowed_from:
        return f"cannot {action.action} an alert that is {current.state}"
    return None


def apply(current: Triage, action: AlertAction) -> Triage:
    """The state after one action. Actions that do not apply in the current state (a late
    duplicate, a race between two operators) leave it unchanged."""
    if action.action == "silence" or action.action not in _MOVES:
        return current
    allowed_from, to = _MOVES[action.action]
    if current.state not in allowed_from:
        return current
    out = replace(current, last_t_ms=action.t_ms)
    if to is not None:
        out = replace(out, state=to)
    if action.action in ("acknowledge", "start") and out.acked_t_ms is None:
        out = replace(out, acked_by=action.user, acked_t_ms=action.t_ms)
    if action.action == "start" and out.assignee is None:
        out = replace(out, assignee=action.user)
    if action.action == "assign":
        out = replace(out, assignee=action.assignee or action.user)
    if action.action == "escalate":
        out = replace(out, escalated=True)
    if action.action == "dismiss":
        out = replace(out, dismiss_reason=action.reason)
    if action.action == "comment":
        out = replace(out, n_comments=out.n_comments + 1)
    return out


def silence_of(action: AlertAction) -> Silence | None:
    """The silence a ``silence`` action sets, else ``None``."""
    if action.action != "silence" or action.silence_until_t_ms is None:
        return None
    ll = action.silence_lonlat
    return Silence(
        action_id=action.action_id,
        user=action.user,
        until_t_ms=action.silence_until_t_ms,
        mmsi=action.silence_mmsi,
        lonlat=(float(ll[0]), float(ll[1])) if ll and len(ll) == 2 else None,
        radius_m=action.silence_radius_m,
    )


def is_escalated(
    tri: Triage, severity: int, first_seen_t_ms: int, now_t_ms: int, high: int, after_s: float
) -> bool:
    """Escalated by hand, or high severity (``>= high``) left ``new`` for ``after_s`` s."""
    if tri.escalated:
        return True
    return tri.state == "new" and severity >= high and now_t_ms - first_seen_t_ms >= after_s * 1000


def in_queue(tri: Triage, detector_status: str) -> bool:
    """Whether the alert is still for an operator to handle: not resolved or dismissed, and
    not a condition that cleared after someone acknowledged it."""
    if tri.state in ("resolved", "dismissed"):
        return False
    return not (detector_status == "closed" and tri.state == "acknowledged")


@dataclass
class Board:
    """The triage of every alert and the silences, built by applying actions in order."""

    triage: dict[str, Triage] = field(default_factory=dict)
    silences: list[Silence] = field(default_factory=list)

    def apply(self, action: AlertAction) -> Triage | None:
        """Apply one action; returns the alert's new triage (``None`` for a silence)."""
        sil = silence_of(action)
        if sil is not None:
            self.silences.append(sil)
            return None
        new = apply(self.triage.get(action.alert_id, Triage()), action)
        self.triage[action.alert_id] = new
        return new

    def get(self, alert_id: str) -> Triage:
        return self.triage.get(alert_id, Triage())

    def silenced(self, mmsi: int | None, lon: float, lat: float, now_t_ms: int) -> bool:
        """Whether a vessel or place is silenced at ``now_t_ms``."""
        from pipeline.site import haversine_m

        for s in self.silences:
            if s.until_t_ms <= now_t_ms:
                continue
            if s.mmsi is not None and mmsi is not None and s.mmsi == mmsi:
                return True
            if s.lonlat is not None and haversine_m(lon, lat, *s.lonlat) <= (s.radius_m or 500.0):
                return True
        return False
