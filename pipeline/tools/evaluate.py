"""Scoring alerts against a simulator's ground truth.

``shorewatch eval --truth DIR/truth.json --alerts alerts.jsonl [--json] [--plot out.png]``

``alerts.jsonl`` holds one :class:`schemas.records.Alert` CloudEvent per line; one alert
(``data.alert_id``) has several events (open, update, closed). Each alert is scored once,
with the kind, time (``data.event_time``) and position of its first event (lowest
``seq``, then file order), and the vessel MMSI of its first event that names one.

An alert **matches** a planted event (``truth.json`` ``events``) when

- the kinds are equal;
- the vessel agrees: if both the alert and the event name MMSIs, the alert's MMSI is one
  of the event's; an alert without MMSI (a dark vessel) is matched by position only, and
  an alert with an MMSI never matches an event of a vessel without AIS;
- the alert's time lies in ``[t - before_s, t_end + after_s]`` of the event;
- the alert's position is within ``max_distance_m`` of the event's position or of the
  true position of one of the event's vessels at the alert's time.

Matching is one-to-one per kind, closest in time first. Unmatched planted events are
false negatives; alerts matching nothing are false positives, and an alert that matches
an event already matched by another alert counts as a false positive too (reported as
``duplicates`` as well: an operator sees it twice). Events marked ``optional`` in the
truth (e.g. ``dark_vessel`` for a vessel that switched AIS off, ``loitering`` during a
rendezvous) are acceptable but not required: the first alert matching one counts
neither way (``optional_matched``), further ones are duplicates.

Detection delay is alert time minus the true event time (for a rendezvous, the start of
the encounter; a detector can only be sure 15 min later, so expect about 900 s there).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from pipeline.core.geo import haversine_m
from pipeline.errors import ConfigError
from pipeline.settings import REPO_DIR
from schemas.records import Alert

__all__ = [
    "MATCH_RULES",
    "MatchRule",
    "combine",
    "evaluate",
    "format_table",
    "load_alerts",
    "match_alerts",
    "plot",
]


@dataclass(frozen=True)
class MatchRule:
    """How close an alert must be to a planted event of its kind.

    :param max_distance_m: to the event's place or the vessel's true position, m
        (``None``: position is not checked)
    :param before_s: how early the alert may be, s before the event time
    :param after_s: how late the alert may be, s after the event (end) time
    """

    max_distance_m: float | None
    before_s: float
    after_s: float


#: Matching rule per alert kind; kinds not listed use ``DEFAULT_RULE``.
MATCH_RULES: dict[str, MatchRule] = {
    "unusual_landing": MatchRule(1000.0, 600.0, 1800.0),
    "dark_approach": MatchRule(3000.0, 120.0, 2400.0),
    "dark_vessel": MatchRule(1500.0, 300.0, 2400.0),
    "rendezvous": MatchRule(1500.0, 300.0, 3600.0),
    "loitering": MatchRule(2000.0, 300.0, 3600.0),
    "identity_anomaly": MatchRule(None, 3600.0, 7200.0),
}
DEFAULT_RULE = MatchRule(2000.0, 600.0, 1800.0)


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class _AlertView:
    alert_id: str
    kind: str
    t_ms: int
    lon: float
    lat: float
    mmsi: int | None
    dark: bool
    statuses: tuple[str, ...]


def parse_time_ms(text: str) -> int:
    return int(round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000))


def load_alerts(path: str | Path) -> list[Alert]:
    """Alerts from a JSON-lines file (blank lines skipped).

    :raises ConfigError: naming the line of a record that is not an Alert
    """
    dec = msgspec.json.Decoder(Alert)
    out = []
    with open(path, "rb") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                out.append(dec.decode(line))
            except msgspec.DecodeError as exc:
                raise ConfigError(f"{path}:{i}: not an alert: {exc}") from exc
    return out


def _group(alerts: Iterable[Alert]) -> list[_AlertView]:
    by_id: dict[str, list[tuple[int, int, Alert]]] = {}
    for i, a in enumerate(alerts):
        by_id.setdefault(a.data.alert_id, []).append((a.data.seq, i, a))
    views = []
    for aid, items in by_id.items():
        items.sort(key=lambda r: (r[0], r[1]))
        first = items[0][2].data
        mmsi = next((it[2].data.vessel.mmsi for it in items if it[2].data.vessel.mmsi), None)
        views.append(
            _AlertView(
                alert_id=aid,
                kind=first.kind,
                t_ms=parse_time_ms(first.event_time),
                lon=first.position.lon,
                lat=first.position.lat,
                mmsi=mmsi,
                dark=first.vessel.dark,
                statuses=tuple(it[2].data.status for it in items),
            )
        )
    views.sort(key=lambda v: (v.t_ms, v.alert_id))
    return views


class _Tracks:
    def __init__(self, truth: dict):
        self.tracks = {}
        for v in truth.get("vessels", []):
            tr = np.asarray(v["track"], dtype=float).reshape(-1, 5)
            self.tracks[v["id"]] = tr

    def position(self, vid: str, t_ms: int) -> tuple[float, float] | None:
        tr = self.tracks.get(vid)
        if tr is None or len(tr) == 0 or not tr[0, 0] - 60_000 <= t_ms <= tr[-1, 0] + 60_000:
            return None
        return float(np.interp(t_ms, tr[:, 0], tr[:, 1])), float(
            np.interp(t_ms, tr[:, 0], tr[:, 2])
        )


# --------------------------------------------------------------------------- matching


def _candidate(ev: dict, al: _AlertView, tracks: _Tracks) -> tuple[float, float] | None:
    """``(|dt| s, distance m)`` when the alert may match the event, else ``None``."""
    if al.kind != ev["kind"]:
        return None
    ev_mmsi = [m for m in ev.get("mmsi", []) if m]
    if al.mmsi is not None and al.mmsi not in ev_mmsi:
        return None
    rule = MATCH_RULES.get(ev["kind"], DEFAULT_RULE)
    t0 = ev["t_ms"]
    t1 = ev.get("t_end_ms", t0)
    if not t0 - rule.before_s * 1000 <= al.t_ms <= t1 + rule.after_s * 1000:
        return None
    d = float(haversine_m(al.lon, al.lat, ev["lon"], ev["lat"]))
    for vid in ev.get("vessel_ids", []):
        p = tracks.position(vid, al.t_ms)
        if p is not None:
            d = min(d, float(haversine_m(al.lon, al.lat, p[0], p[1])))
    if rule.max_distance_m is not None and d > rule.max_distance_m:
        return None
    return abs(al.t_ms - t0) / 1000.0, d


def match_alerts(truth: dict, alerts: Iterable[Alert]) -> dict[str, Any]:
    """Match alerts to planted events.

    :return: ``{"matches": [(event, alert_view, delay_s, distance_m)], "false_negatives":
        [event], "false_positives": [alert_view], "duplicates": [alert_view],
        "optional": [(event, alert_view)], "alerts": [alert_view]}``
    """
    views = _group(alerts)
    tracks = _Tracks(truth)
    events = list(truth.get("events", []))
    required = [e for e in events if not e.get("optional")]
    optional = [e for e in events if e.get("optional")]

    pairs = []
    for ei, ev in enumerate(required):
        for ai, al in enumerate(views):
            c = _candidate(ev, al, tracks)
            if c is not None:
                pairs.append((c[0] + c[1] / 100.0, ei, ai, c))
    pairs.sort(key=lambda p: (p[0], p[1], p[2]))
    ev_used: dict[int, int] = {}
    al_used: set[int] = set()
    matches = []
    for _cost, ei, ai, (_dt, dist) in pairs:
        if ei in ev_used or ai in al_used:
            continue
        ev_used[ei] = ai
        al_used.add(ai)
        ev = required[ei]
        matches.append((ev, views[ai], (views[ai].t_ms - ev["t_ms"]) / 1000.0, dist))
    dup_ids = {ai for _c, ei, ai, _x in pairs if ai not in al_used and ei in ev_used}
    # optional events: one alert each, closest in time first; more are duplicates
    opt_pairs = []
    for ei, ev in enumerate(optional):
        for ai, al in enumerate(views):
            if ai in al_used or ai in dup_ids:
                continue
            c = _candidate(ev, al, tracks)
            if c is not None:
                opt_pairs.append((c[0] + c[1] / 100.0, ei, ai))
    opt_pairs.sort()
    opt_used: set[int] = set()
    opt_matched = []
    for _cost, ei, ai in opt_pairs:
        if ai in al_used:
            continue
        if ei in opt_used:
            dup_ids.add(ai)
            continue
        opt_used.add(ei)
        al_used.add(ai)
        opt_matched.append((optional[ei], views[ai]))
    dup_ids -= al_used
    duplicates = [views[ai] for ai in sorted(dup_ids)]
    fps = [al for ai, al in enumerate(views) if ai not in al_used and ai not in dup_ids]
    fns = [ev for ei, ev in enumerate(required) if ei not in ev_used]
    return {
        "matches": matches,
        "false_negatives": fns,
        "false_positives": fps,
        "duplicates": duplicates,
        "optional": opt_matched,
        "alerts": views,
    }


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def _kind_metrics(tp, fp, fn, dup, opt, delays, errors) -> dict[str, Any]:
    p = _ratio(tp, tp + fp)
    r = _ratio(tp, tp + fn)
    f1 = 2 * p * r / (p + r) if p is not None and r is not None and (p + r) > 0 else None
    return {
        "precision": p,
        "recall": r,
        "f1": f1,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "duplicates": dup,
        "optional_matched": opt,
        "delay_median_s": statistics.median(delays) if delays else None,
        "delay_max_s": max(delays) if delays else None,
        "position_error_median_m": statistics.median(errors) if errors else None,
        "position_error_max_m": max(errors) if errors else None,
        "delays_s": [round(d, 3) for d in delays],
        "position_errors_m": [round(e, 1) for e in errors],
    }


def evaluate(truth: dict, alerts: list[Alert]) -> dict[str, dict[str, Any]]:
    """Precision, recall and F1 per alert kind.

    :param truth: the content of ``truth.json``
    :param alerts: every alert event (several per ``alert_id`` are fine)
    :return: ``{kind: {precision, recall, f1, tp, fp, fn, duplicates, optional_matched,
        delay_median_s, delay_max_s, position_error_median_m, position_error_max_m,
        delays_s, position_errors_m}}`` for every kind planted or alerted; ratios are
        ``None`` when undefined (no alert, or no planted event, of that kind).
        ``position_error`` is the distance from the alert's position to the event's
        place (the landing point, where the AIS went off, the encounter), m.
    """
    m = match_alerts(truth, alerts)
    kinds = sorted(
        {e["kind"] for e in truth.get("events", []) if not e.get("optional")}
        | {a.kind for a in m["alerts"]}
    )
    out = {}
    for k in kinds:
        mk = [x for x in m["matches"] if x[0]["kind"] == k]
        delays = [x[2] for x in mk]
        errors = [float(haversine_m(x[1].lon, x[1].lat, x[0]["lon"], x[0]["lat"])) for x in mk]
        dup = sum(1 for a in m["duplicates"] if a.kind == k)
        fp = sum(1 for a in m["false_positives"] if a.kind == k) + dup
        fn = sum(1 for e in m["false_negatives"] if e["kind"] == k)
        opt = sum(1 for e, _a in m["optional"] if e["kind"] == k)
        out[k] = _kind_metrics(len(mk), fp, fn, dup, opt, delays, errors)
    return out


def combine(results: Iterable[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Pool several :func:`evaluate` results (e.g. one per seed) into one."""
    acc: dict[str, dict[str, Any]] = {}
    for res in results:
        for k, r in res.items():
            a = acc.setdefault(k, {"tp": 0, "fp": 0, "fn": 0, "dup": 0, "opt": 0, "d": [], "e": []})
            a["tp"] += r["tp"]
            a["fp"] += r["fp"]
            a["fn"] += r["fn"]
            a["dup"] += r.get("duplicates", 0)
            a["opt"] += r.get("optional_matched", 0)
            a["d"] += r.get("delays_s", [])
            a["e"] += r.get("position_errors_m", [])
    return {
        k: _kind_metrics(a["tp"], a["fp"], a["fn"], a["dup"], a["opt"], a["d"], a["e"])
        for k, a in sorted(acc.items())
    }


def format_table(result: dict[str, dict[str, Any]]) -> str:
    """A fixed-width text table of :func:`evaluate` output, with a total row."""

    def f(x, fmt):
        return "-" if x is None else format(x, fmt)

    head = f"{'kind':<18} {'prec':>6} {'recall':>6} {'f1':>6} {'tp':>4} {'fp':>4} {'fn':>4} {'dup':>4} {'opt':>4} {'delay_med_s':>11} {'pos_err_med_m':>13}"
    rows = [head, "-" * len(head)]
    for k, r in result.items():
        rows.append(
            f"{k:<18} {f(r['precision'], '.3f'):>6} {f(r['recall'], '.3f'):>6} {f(r['f1'], '.3f'):>6} "
            f"{r['tp']:>4} {r['fp']:>4} {r['fn']:>4} {r['duplicates']:>4} {r['optional_matched']:>4} "
            f"{f(r['delay_median_s'], '.0f'):>11} {f(r['position_error_median_m'], '.0f'):>13}"
        )
    tp = sum(r["tp"] for r in result.values())
    fp = sum(r["fp"] for r in result.values())
    fn = sum(r["fn"] for r in result.values())
    p, rc = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = 2 * p * rc / (p + rc) if p is not None and rc is not None and p + rc > 0 else None
    rows.append("-" * len(head))
    rows.append(
        f"{'all':<18} {f(p, '.3f'):>6} {f(rc, '.3f'):>6} {f(f1, '.3f'):>6} {tp:>4} {fp:>4} {fn:>4}"
    )
    return "\n".join(rows)


# --------------------------------------------------------------------------- plot


def plot(
    truth: dict, alerts: list[Alert], out_png: str | Path, site_dir: str | Path | None = None
) -> Path:
    """Draw the site (land, zones, cameras' fields of view), true tracks, planted events
    and alerts to a PNG with matplotlib's Agg backend.

    :param site_dir: the site folder; default ``sites/<truth site>`` under the current
        folder, else under the repository
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pipeline.site import load_site

    if site_dir is None:
        here = Path("sites") / truth["site"]
        if not (here / "site.yaml").is_file():  # not run from the repository root
            here = REPO_DIR / "sites" / truth["site"]
        site_dir = here
    site = load_site(site_dir)
    m = match_alerts(truth, alerts)
    fig, ax = plt.subplots(figsize=(14, 9.5))
    for poly in site.land.geoms:
        x, y = poly.exterior.xy
        ax.fill(x, y, color="#e8dcc0", ec="#8a7a5a", lw=0.6, zorder=1)
    for z in site.zones:
        x, y = z.polygon.exterior.xy
        ax.fill(
            x,
            y,
            color="#9ecae1" if z.kind != "anchorage" else "#c6dbef",
            ec="#3182bd",
            lw=0.6,
            alpha=0.7,
            zorder=2,
        )
        ax.annotate(
            z.name, (float(np.mean(x)), float(np.mean(y))), fontsize=6, color="#08519c", zorder=6
        )
    kx = 1.0 / (math.cos(math.radians(0.5 * (site.bbox[1] + site.bbox[3]))) * 111_320.0)
    for cam in site.cameras:
        r = 4000.0
        h = cam.effective_hfov_deg
        angs = np.radians(np.linspace(cam.heading_deg - h / 2, cam.heading_deg + h / 2, 24))
        xs = np.concatenate([[cam.lon], cam.lon + r * np.sin(angs) * kx, [cam.lon]])
        ys = np.concatenate([[cam.lat], cam.lat + r * np.cos(angs) / 111_320.0, [cam.lat]])
        ax.fill(xs, ys, color="#fdae6b", alpha=0.18, zorder=3)
        ax.plot(cam.lon, cam.lat, marker="^", color="#e6550d", ms=6, zorder=7)
        ax.annotate(
            cam.id,
            (cam.lon, cam.lat),
            fontsize=6,
            color="#a63603",
            xytext=(3, -8),
            textcoords="offset points",
        )
    colors = {
        "ferry": "#2c7fb8", "anchored_cargo": "#636363", "transit_cargo": "#969696", "fishing": "#31a354",
        "pleasure": "#74c476", "night_landing": "#fd8d3c", "dark_approach": "#a50f15", "skiff": "#000000",
        "rendezvous_mother": "#756bb1", "rendezvous_boat": "#dd1c77",
    }  # fmt: skip
    seen_roles = set()
    for v in truth["vessels"]:
        tr = np.asarray(v["track"], dtype=float).reshape(-1, 5)
        if not len(tr):
            continue
        role = v["role"]
        ax.plot(tr[:, 1], tr[:, 2], lw=0.8, color=colors.get(role, "#444"), zorder=4,
                label=role if role not in seen_roles else None, ls="--" if not v["mmsi"] else "-")  # fmt: skip
        seen_roles.add(role)
    for ev in truth["events"]:
        if ev.get("optional"):
            continue
        ax.plot(
            ev["lon"], ev["lat"], marker="*", ms=12, mfc="none", mec="#d7301f", mew=1.2, zorder=8
        )
        ax.annotate(
            f"{ev['id']} {ev['kind']}",
            (ev["lon"], ev["lat"]),
            fontsize=6,
            xytext=(4, 4),
            textcoords="offset points",
            zorder=9,
        )
    for ev, al, _d, _e in m["matches"]:
        ax.plot(al.lon, al.lat, "o", ms=5, color="#1a9641", zorder=9)
        ax.plot([al.lon, ev["lon"]], [al.lat, ev["lat"]], color="#1a9641", lw=0.6, zorder=9)
    for al in m["false_positives"] + m["duplicates"]:
        ax.plot(al.lon, al.lat, "x", ms=7, color="#d7191c", mew=1.5, zorder=9)
        ax.annotate(
            al.kind,
            (al.lon, al.lat),
            fontsize=5,
            color="#d7191c",
            xytext=(3, -6),
            textcoords="offset points",
        )
    for ev in m["false_negatives"]:
        ax.plot(ev["lon"], ev["lat"], "s", ms=9, mfc="none", mec="#d7191c", mew=1.5, zorder=9)
    ax.plot([], [], "o", color="#1a9641", label="alert matched")
    ax.plot([], [], "x", color="#d7191c", label="false alert")
    ax.plot([], [], "s", mfc="none", mec="#d7191c", label="missed event")
    ax.plot([], [], "*", mfc="none", mec="#d7301f", label="planted event")
    ax.set_xlim(site.bbox[0], site.bbox[2])
    ax.set_ylim(site.bbox[1], site.bbox[3])
    ax.set_aspect(1.0 / math.cos(math.radians(0.5 * (site.bbox[1] + site.bbox[3]))))
    ax.set_xlabel("longitude, deg")
    ax.set_ylabel("latitude, deg")
    ax.set_title(
        f"{site.name}: seed {truth.get('seed')}, start {truth.get('start')}, {len(m['alerts'])} alerts"
    )
    ax.legend(fontsize=6, loc="lower right", ncol=2)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


# --------------------------------------------------------------------------- CLI


def cmd_eval(args: argparse.Namespace) -> int:
    if not args.truth or not args.alerts:
        print(
            "shorewatch eval: give --truth DIR/truth.json and --alerts alerts.jsonl, or a sub-command",
            file=sys.stderr,
        )
        return 2
    truth = json.loads(Path(args.truth).read_text())
    alerts = load_alerts(args.alerts)
    result = evaluate(truth, alerts)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(format_table(result))
    if args.plot:
        path = plot(truth, alerts, args.plot, site_dir=args.site)
        if not args.json:
            print(f"plot: {path}")
    return 0
