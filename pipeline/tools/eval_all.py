"""``shorewatch eval all`` (``make eval``): detection quality over several simulated nights.

``shorewatch eval all [--seeds 1,2,3,4,5] [--duration 2h] [--kafka-seeds 1]
[--kafka-duration 1h] [--kafka-speed 40] [--kafka-fps 0.5] [--out var/eval] [--json]
[--no-kafka] [--noise none,realistic]``

1. each seed is simulated (:func:`pipeline.tools.simulate.simulate`) into ``OUT/replay-seed-N/``,
   unless that folder already holds the night for the same parameters (``params.json``:
   site, seed, start, duration, frame rate, and fingerprints of the site's files and of the
   simulator's source);
2. each night goes through the offline replay (:func:`pipeline.replay.replay`) and is
   scored (:func:`pipeline.tools.evaluate.evaluate`); the seeds are pooled
   (:func:`pipeline.tools.evaluate.combine`);
3. the Kafka seeds (shorter nights, fewer frames, as in ``make demo``: one worker at 40x
   cannot keep up with a 2 h night at 1 frame/s) go through the real pipeline
   (:func:`pipeline.tools.demo.run_through_pipeline`) into ``OUT/kafka-seed-N/``, on the broker of
   ``KAFKA_BOOTSTRAP_SERVERS`` or the local one (started if needed, and then stopped);
4. the goals of the fusion issue are checked: ``unusual_landing`` recall 1.0 and
   precision >= 0.95, and no false alert for ferries and cargo ships using ports and
   anchorages (:func:`port_false_alerts`).

With ``--noise`` naming other levels than ``none`` (:mod:`pipeline.tools.sim_noise`), each
seed is also simulated with that sensor noise into ``OUT/replay-<level>-seed-N/``, and those
nights are pooled apart, checked against the goals of the detection-quality issue
(:func:`check_noise_goals`) and their false alerts listed with a cause
(:mod:`pipeline.tools.false_alerts`); ``make eval`` runs ``--noise none,realistic``.

Each night's folder gets ``alerts.jsonl`` and ``result.json`` (its metrics); ``OUT/summary.json``
holds the object printed by ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from pipeline.errors import ConfigError
from pipeline.tools.evaluate import combine, evaluate, format_table, match_alerts
from pipeline.tools.false_alerts import false_alert_causes, format_false_alerts

__all__ = [
    "GOAL_DARK_VESSEL_PRECISION",
    "GOAL_LANDING_PRECISION",
    "GOAL_LANDING_RECALL",
    "LEGIT_ROLES",
    "ZONE_MARGIN_M",
    "NightSpec",
    "check_goals",
    "check_line",
    "check_noise_goals",
    "ensure_night",
    "noise_check_line",
    "port_false_alerts",
    "run_eval_all",
]


#: Goals of the fusion issue for ``unusual_landing`` over the simulated nights.
GOAL_LANDING_RECALL = 1.0
GOAL_LANDING_PRECISION = 0.95
#: Goal of the detection-quality issue for ``dark_vessel`` on noisy nights.
GOAL_DARK_VESSEL_PRECISION = 0.9
#: Simulator roles of vessels that use ports and anchorages lawfully.
LEGIT_ROLES: tuple[str, ...] = ("ferry", "anchored_cargo", "transit_cargo")
#: An unmatched alert this close to an authorised zone counts as a port false alert, m.
ZONE_MARGIN_M = 300.0


@dataclass(frozen=True)
class NightSpec:
    """One simulated night.

    :param seed: simulator seed
    :param start_iso: start time, ISO 8601 with zone
    :param duration_s: simulated time span, s
    :param fps: camera frames per second
    :param noise: the simulator's sensor noise, ``"none"`` or ``"realistic"``
    """

    seed: int
    start_iso: str
    duration_s: int
    fps: float
    noise: str = "none"


# --------------------------------------------------------------------------- goals


def port_false_alerts(
    truth: dict,
    alerts: Sequence[Any],
    zones: Iterable[Any] = (),
    margin_m: float = ZONE_MARGIN_M,
) -> list[dict[str, Any]]:
    """Alerts that match no planted event and concern lawful port or anchorage traffic.

    An unmatched alert (false positive or duplicate in :func:`pipeline.tools.evaluate.match_alerts`)
    counts when its vessel's simulator role (``truth["vessels"][i]["role"]``, found by MMSI)
    is one of :data:`LEGIT_ROLES`, or when it lies inside or within ``margin_m`` of an
    authorised zone and its vessel is not one of a planted event's.

    :param truth: the content of ``truth.json``
    :param alerts: alert events (several per ``alert_id`` are fine)
    :param zones: the site's zones (objects with ``name`` and ``distance_m(lon, lat)``)
    :param margin_m: distance to a zone within which an alert counts, m
    :return: one ``{alert_id, kind, mmsi, role, zone, zone_distance_m, lon, lat}`` per alert
    """
    m = match_alerts(truth, alerts)
    role_by_mmsi = {v["mmsi"]: v["role"] for v in truth.get("vessels", []) if v.get("mmsi")}
    planted_mmsi = {x for e in truth.get("events", []) for x in e.get("mmsi", []) if x}
    zones = list(zones)
    out = []
    for al in m["false_positives"] + m["duplicates"]:
        role = role_by_mmsi.get(al.mmsi) if al.mmsi else None
        near, near_m = None, None
        for z in zones:
            d = float(z.distance_m(al.lon, al.lat))
            if near_m is None or d < near_m:
                near, near_m = z.name, d
        by_role = role in LEGIT_ROLES
        by_zone = near_m is not None and near_m <= margin_m and al.mmsi not in planted_mmsi
        if by_role or by_zone:
            out.append({
                "alert_id": al.alert_id, "kind": al.kind, "mmsi": al.mmsi, "role": role,
                "zone": near, "zone_distance_m": None if near_m is None else round(near_m, 1),
                "lon": al.lon, "lat": al.lat,
            })  # fmt: skip
    return out


def check_goals(result: dict[str, dict[str, Any]], port_false: int) -> dict[str, Any]:
    """Compare pooled metrics with the goals of the fusion issue.

    :param result: :func:`pipeline.tools.evaluate.combine` (or ``evaluate``) output
    :param port_false: number of port false alerts (:func:`port_false_alerts`)
    :return: ``{landing_recall, landing_precision, port_false_alerts, recall_goal,
        precision_goal, met}``; ``met`` needs every planted landing found (recall 1.0, and at
        least one planted), precision >= the goal, and no port false alert
    """
    lr = result.get("unusual_landing", {})
    recall, precision = lr.get("recall"), lr.get("precision")
    met = (
        recall is not None and recall >= GOAL_LANDING_RECALL
        and precision is not None and precision >= GOAL_LANDING_PRECISION
        and port_false == 0
    )  # fmt: skip
    return {
        "landing_recall": recall,
        "landing_precision": precision,
        "port_false_alerts": port_false,
        "recall_goal": GOAL_LANDING_RECALL,
        "precision_goal": GOAL_LANDING_PRECISION,
        "met": bool(met),
    }


def check_noise_goals(
    result: dict[str, dict[str, Any]], false_alerts: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """Compare pooled metrics of noisy nights with the goals of the detection-quality
    issue: ``unusual_landing`` recall 1.0 and precision >= 0.95, ``dark_vessel`` precision
    >= 0.9, no duplicate alert for one episode, no ``dark_approach`` on a vessel whose AIS
    was still reporting.

    :param result: pooled metrics of the noisy nights
    :param false_alerts: their :func:`pipeline.tools.false_alerts.false_alert_causes` rows
    :return: ``{landing_recall, landing_precision, dark_vessel_precision, duplicates,
        dark_approach_reporting, met}``
    """
    lr = result.get("unusual_landing", {})
    dv = result.get("dark_vessel", {})
    dup = sum(int(r.get("duplicates", 0)) for r in result.values())
    reporting = sum(
        1 for r in false_alerts if r["kind"] == "dark_approach" and r["cause"] == "ais_reporting"
    )
    dv_prec = dv.get("precision")
    met = (
        lr.get("recall") is not None and lr["recall"] >= GOAL_LANDING_RECALL
        and lr.get("precision") is not None and lr["precision"] >= GOAL_LANDING_PRECISION
        and (dv_prec is None or dv_prec >= GOAL_DARK_VESSEL_PRECISION)
        and dup == 0 and reporting == 0
    )  # fmt: skip
    return {
        "landing_recall": lr.get("recall"),
        "landing_precision": lr.get("precision"),
        "dark_vessel_precision": dv_prec,
        "duplicates": dup,
        "dark_approach_reporting": reporting,
        "met": bool(met),
    }


def noise_check_line(goals: dict[str, Any]) -> str:
    """The one-line verdict of :func:`check_noise_goals`."""

    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    return (
        f"unusual_landing recall {f(goals['landing_recall'])} (goal 1.0), precision "
        f"{f(goals['landing_precision'])} (goal >= {GOAL_LANDING_PRECISION:.2f}); dark_vessel "
        f"precision {f(goals['dark_vessel_precision'])} (goal >= "
        f"{GOAL_DARK_VESSEL_PRECISION:.2f}); duplicate alerts {goals['duplicates']}; "
        f"dark_approach on reporting vessels {goals['dark_approach_reporting']}"
        f" -> {'met' if goals['met'] else 'NOT met'}"
    )


def check_line(goals: dict[str, Any]) -> str:
    """The one-line verdict of :func:`check_goals`."""

    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    return (
        f"unusual_landing recall {f(goals['landing_recall'])} (goal {goals['recall_goal']:.1f}), "
        f"precision {f(goals['landing_precision'])} (goal >= {goals['precision_goal']:.2f}); "
        f"ferry/port false alerts: {goals['port_false_alerts']}"
        f" -> {'met' if goals['met'] else 'NOT met'}"
    )


# --------------------------------------------------------------------------- nights


def _simulator_fingerprint() -> str:
    import pipeline.tools.simulate as sim

    return hashlib.sha256(Path(sim.__file__).read_bytes()).hexdigest()[:16]


def _site_fingerprint(site_dir: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(Path(site_dir).iterdir()):
        if p.is_file() and p.suffix in (".yaml", ".yml", ".geojson", ".json"):
            h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def _params(site_dir: Path, spec: NightSpec) -> dict[str, Any]:
    return {
        "site": str(Path(site_dir).resolve()),
        "site_files": _site_fingerprint(site_dir),
        "seed": spec.seed,
        "start": datetime.fromisoformat(spec.start_iso).isoformat(),
        "duration_s": spec.duration_s,
        "fps": spec.fps,
        "noise": spec.noise,
        "simulator": _simulator_fingerprint(),
    }


def ensure_night(site: Any, site_dir: Path, spec: NightSpec, night_dir: Path) -> tuple[dict, bool]:
    """The night of ``spec`` in ``night_dir``, simulated unless already there.

    :return: ``(truth, simulated)``; ``simulated`` is false when the cached night was used
    """
    from pipeline.tools.simulate import SimConfig, simulate

    params = _params(site_dir, spec)
    pfile = night_dir / "params.json"
    files = [night_dir / n for n in ("truth.json", "ais.nmea", "detections.jsonl")]
    if all(p.is_file() for p in files + [pfile]):
        try:
            if json.loads(pfile.read_text()) == params:
                return json.loads(files[0].read_text()), False
        except ValueError:
            pass
    pfile.unlink(missing_ok=True)
    cfg = SimConfig(seed=spec.seed, start=datetime.fromisoformat(spec.start_iso),
                    duration_s=spec.duration_s, fps=spec.fps, noise=spec.noise)  # fmt: skip
    truth = simulate(site, cfg, night_dir)
    pfile.write_text(json.dumps(params, indent=1, sort_keys=True) + "\n")
    return truth, True


def _save(
    night_dir: Path, alerts: Sequence[Any], result: dict, extra: dict, suffix: str = ""
) -> None:
    with open(night_dir / f"alerts{suffix}.jsonl", "wb") as fh:
        for a in alerts:
            fh.write(msgspec.json.encode(a) + b"\n")
    (night_dir / f"result{suffix}.json").write_text(
        json.dumps({**extra, "metrics": result}, sort_keys=True, indent=1) + "\n"
    )


def _night_radar(site_dir: str, truth: dict[str, Any], seed: int) -> list[Any]:
    """The radar reports of a simulated night: what the site's radars see of its true
    tracks (:func:`pipeline.tools.simulate_radar.simulate_radar`, seeded by the night's
    seed), decoded as the ingest decodes them."""
    from pipeline.radar_files import radar_reports
    from pipeline.radars import load_radars
    from pipeline.tools.simulate_radar import simulate_radar

    radars = load_radars(site_dir)
    if not radars:
        raise ConfigError(f"--radar: {site_dir} has no radars.yaml")
    return radar_reports(simulate_radar(truth, radars, seed=seed), radars)


def dark_first_alerts(site: Any, truth: dict[str, Any], alerts: Sequence[Any]) -> list[dict]:
    """For each vessel of a planted ``dark_vessel`` or ``dark_approach`` event: the first
    alert on it (:func:`pipeline.tools.eval_radar.first_alerts`) and its distance from the
    coastline, m (``None``: not alerted)."""
    from pipeline.engine.state import AreaContext
    from pipeline.tools.eval_radar import first_alerts

    kinds: dict[str, set[str]] = {}
    for ev in truth["events"]:
        if ev["kind"] in ("dark_vessel", "dark_approach"):
            for vid in ev["vessel_ids"]:
                kinds.setdefault(vid, set()).add(ev["kind"])
    planted = {vid: "+".join(sorted(k)) for vid, k in kinds.items()}
    geometry = AreaContext.from_site(site).geometry
    first = first_alerts(list(alerts), truth, set(planted), geometry)
    return [
        {"vessel": vid, "planted": planted[vid], "kind": (first.get(vid) or {}).get("kind"),
         "coast_m": (first.get(vid) or {}).get("coast_m")}
        for vid in sorted(planted)
    ]  # fmt: skip


def _replay_seed(
    site_dir: str, spec: NightSpec, night_dir: str, radar: bool = False
) -> dict[str, Any]:
    """Simulate (or reuse) and replay one night, with the simulated radar reports of the
    site's radars if ``radar``; runs in a worker process."""
    from pipeline.replay import replay
    from pipeline.site import load_site

    site = load_site(site_dir)
    nd = Path(night_dir)
    t0 = time.monotonic()
    truth, simulated = ensure_night(site, Path(site_dir), spec, nd)
    reports = _night_radar(site_dir, truth, spec.seed) if radar else []
    if radar:
        from pipeline.radars import load_radars
        from pipeline.tools.eval_radar import radar_truth

        truth = radar_truth(truth, load_radars(site_dir))
    t1 = time.monotonic()
    alerts = replay(site, [nd / "ais.nmea"], [nd / "detections.jsonl"], radar=reports)
    t2 = time.monotonic()
    result = evaluate(truth, alerts)
    port = port_false_alerts(truth, alerts, site.zones)
    cams = {c.id: (c.lon, c.lat) for c in site.cameras}
    false = [{"seed": spec.seed, **r} for r in false_alert_causes(truth, alerts, cams)]
    info = {
        "seed": spec.seed, "mode": "replay", "noise": spec.noise, "simulated": simulated,
        "simulate_s": round(t1 - t0, 1), "run_s": round(t2 - t1, 1),
        "alerts": len({a.data.alert_id for a in alerts}), "port_false_alerts": port,
        "false_alerts": false, "radar": radar, "radar_reports": len(reports),
        "dark_first_alerts": [{"seed": spec.seed, **r} for r in dark_first_alerts(site, truth, alerts)],
    }  # fmt: skip
    _save(nd, alerts, result, info, "-radar" if radar else "")
    return {**info, "metrics": result}


async def _kafka_seeds(
    bootstrap: str,
    site: Any,
    site_dir: Path,
    nights: Sequence[tuple[NightSpec, Path, dict, bool]],
    speed: float,
    say: Any,
) -> list[dict[str, Any]]:
    from pipeline import admin
    from pipeline.tools.demo import run_through_pipeline

    await admin.acreate_topics(bootstrap)
    runs = []
    for spec, nd, truth, simulated in nights:
        say(f"kafka seed {spec.seed}: {spec.duration_s / 3600:g} h from {spec.start_iso} at "
            f"{speed:g}x, {spec.fps:g} frame/s")  # fmt: skip
        t0 = time.monotonic()
        alerts = await run_through_pipeline(
            bootstrap, site_dir, nd, datetime.fromisoformat(spec.start_iso), speed
        )
        t1 = time.monotonic()
        result = evaluate(truth, alerts)
        port = port_false_alerts(truth, alerts, site.zones)
        info = {
            "seed": spec.seed, "mode": "kafka", "simulated": simulated, "speed": speed,
            "run_s": round(t1 - t0, 1), "alerts": len({a.data.alert_id for a in alerts}),
            "port_false_alerts": port,
        }  # fmt: skip
        _save(nd, alerts, result, info)
        runs.append({**info, "metrics": result})
        say(f"kafka seed {spec.seed}: {info['alerts']} alerts in {info['run_s']:.0f} s; "
            f"port false alerts {len(port)}")  # fmt: skip
    return runs


def _run_kafka(
    site: Any, site_dir: Path, specs: Sequence[NightSpec], out: Path, speed: float, say: Any
) -> list[dict[str, Any]]:
    """The Kafka runs on the configured broker, or the local one (stopped after if started
    here). The nights are simulated first, so a bad parameter never starts a broker."""
    from pipeline.tools import localkafka

    nights = []
    for spec in specs:
        nd = out / f"kafka-seed-{spec.seed}"
        truth, simulated = ensure_night(site, site_dir, spec, nd)
        nights.append((spec, nd, truth, simulated))
    with localkafka.broker(say) as bootstrap:
        return asyncio.run(_kafka_seeds(bootstrap, site, site_dir, nights, speed, say))


def _night_dir_name(spec: NightSpec) -> str:
    """``replay-seed-N`` for a clean night, ``replay-<noise>-seed-N`` for a noisy one."""
    if spec.noise == "none":
        return f"replay-seed-{spec.seed}"
    return f"replay-{spec.noise}-seed-{spec.seed}"


def _pool(runs: Sequence[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], int]:
    return combine(r["metrics"] for r in runs), sum(len(r["port_false_alerts"]) for r in runs)


def run_eval_all(
    site_dir: str | Path,
    seeds: Sequence[int],
    duration_s: int,
    start_iso: str,
    out: str | Path,
    *,
    fps: float = 1.0,
    kafka_seeds: Sequence[int] = (),
    kafka_duration_s: int = 3600,
    kafka_start_iso: str = "2026-03-08T03:00:00+08:00",
    kafka_fps: float = 0.5,
    kafka_speed: float = 40.0,
    jobs: int = 1,
    say: Any = None,
    noise: Sequence[str] = ("none",),
    radar: bool = False,
) -> dict[str, Any]:
    """Replay every seed, run the Kafka seeds through the pipeline, pool and check goals.

    :param site_dir: site folder
    :param seeds: simulator seeds for the replay runs
    :param duration_s: length of each replayed night, s
    :param start_iso: start of each replayed night, ISO 8601 with zone
    :param out: folder for the nights, per-night results and ``summary.json``
    :param fps: camera frames per second of the replayed nights
    :param kafka_seeds: seeds to run through the Kafka pipeline (empty: none)
    :param kafka_duration_s: length of each Kafka night, s
    :param kafka_start_iso: start of each Kafka night
    :param kafka_fps: camera frames per second of the Kafka nights
    :param kafka_speed: replay speed of the Kafka nights, times real time
    :param jobs: replay processes in parallel
    :param say: progress callback taking one line of text
    :param noise: the simulator's noise levels to replay each seed at (``"none"``: the
        clean nights of ``replay``; others: in ``noise``)
    :param radar: replay each night with the simulated reports of the site's radars
        (``alerts-radar.jsonl``, ``result-radar.json`` and ``summary-radar.json`` in ``out``)
    :return: ``{"replay": {kind: metrics}, "kafka": {kind: metrics} | None, "seeds": [per
        run: seed, mode, timings, alert count, port false alerts, metrics], "goals":
        {"replay": check, "kafka": check | None}, "noise": {level: {"replay", "seeds",
        "goals", "false_alerts"}}, "kafka_error": text | None, "runtime_s"}``
    """
    from pipeline.site import load_site

    say = say or (lambda _text: None)
    t_start = time.monotonic()
    site_dir = Path(site_dir)
    site = load_site(site_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    specs = [NightSpec(s, start_iso, duration_s, fps, lvl) for lvl in noise for s in seeds]
    args = [(str(site_dir), sp, str(out / _night_dir_name(sp)), radar) for sp in specs]
    all_runs: list[dict[str, Any]] = []

    def done(r: dict[str, Any]) -> None:
        lr = r["metrics"].get("unusual_landing", {})
        lvl = r.get("noise", "none")
        say(f"replay{'' if lvl == 'none' else ' ' + lvl} seed {r['seed']}: {r['alerts']} alerts in {r['run_s']:.0f} s"
            f"{'' if r['simulated'] else ' (cached night)'}; unusual_landing tp {lr.get('tp', 0)} "
            f"fp {lr.get('fp', 0)} fn {lr.get('fn', 0)}; port false alerts "
            f"{len(r['port_false_alerts'])}")  # fmt: skip
        all_runs.append(r)

    if jobs > 1 and len(args) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as ex:
            for r in ex.map(_replay_seed, *zip(*args, strict=True)):
                done(r)
    else:
        for a in args:
            done(_replay_seed(*a))
    runs = [r for r in all_runs if r.get("noise", "none") == "none"]
    replay_result, replay_port = _pool(runs)
    noisy: dict[str, Any] = {}
    for lvl in [lvl for lvl in noise if lvl != "none"]:
        lruns = [r for r in all_runs if r.get("noise") == lvl]
        pooled, _port = _pool(lruns)
        false = [f for r in lruns for f in r.get("false_alerts", [])]
        noisy[lvl] = {"replay": pooled, "seeds": lruns, "false_alerts": false,
                      "goals": check_noise_goals(pooled, false),
                      "dark_first_alerts": [d for r in lruns for d in r["dark_first_alerts"]]}  # fmt: skip
    kafka_runs: list[dict[str, Any]] = []
    kafka_error = None
    if kafka_seeds:
        kspecs = [NightSpec(s, kafka_start_iso, kafka_duration_s, kafka_fps) for s in kafka_seeds]
        try:
            kafka_runs = _run_kafka(site, site_dir, kspecs, out, kafka_speed, say)
        except Exception as exc:  # noqa: BLE001 - the replay figures must still be reported
            kafka_error = f"{type(exc).__name__}: {exc}"
            say(f"kafka run failed: {kafka_error}")
    kafka_result, kafka_port = _pool(kafka_runs) if kafka_runs else (None, 0)
    summary = {
        "replay": replay_result,
        "kafka": kafka_result,
        "seeds": runs + kafka_runs,
        "goals": {
            "replay": check_goals(replay_result, replay_port),
            "kafka": check_goals(kafka_result, kafka_port) if kafka_result is not None else None,
        },
        "noise": noisy,
        "radar": radar,
        "dark_first_alerts": [d for r in runs for d in r["dark_first_alerts"]],
        "kafka_error": kafka_error,
        "runtime_s": round(time.monotonic() - t_start, 1),
    }
    (out / f"summary{'-radar' if radar else ''}.json").write_text(
        json.dumps(summary, sort_keys=True, indent=1) + "\n"
    )
    return summary


# --------------------------------------------------------------------------- CLI


def format_dark_first(rows: Sequence[dict[str, Any]]) -> str:
    """The first alert on each planted dark vessel, as a table."""
    if not rows:
        return "dark vessels: none planted"
    out = ["first alert on each planted dark vessel (distance from the coastline):",
           "| seed | vessel | planted | first alert |", "|---|---|---|---|"]  # fmt: skip
    for r in rows:
        cell = (
            "not alerted" if r["kind"] is None else f"{r['kind']} at {r['coast_m'] / 1000:.1f} km"
        )
        out.append(f"| {r['seed']} | {r['vessel']} | {r['planted']} | {cell} |")
    return "\n".join(out)


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError as exc:
        raise ConfigError(f"cannot read seeds {text!r} (use e.g. 1,2,3)") from exc
    return seeds


def _noise_list(text: str) -> list[str]:
    from pipeline.tools.sim_noise import noise_config

    levels = [s.strip() for s in text.split(",") if s.strip()]
    if not levels:
        raise ConfigError("--noise: give at least one level (none, realistic)")
    for lvl in levels:
        noise_config(lvl)  # raises ConfigError for an unknown level
    return levels


def cmd_eval_all(args: argparse.Namespace) -> int:
    from pipeline.tools.simulate import parse_duration

    seeds = _seed_list(args.seeds)
    levels = _noise_list(getattr(args, "noise", "none"))
    if not seeds:
        raise ConfigError("--seeds: give at least one seed")
    kafka_seeds = [] if args.no_kafka else _seed_list(args.kafka_seeds)

    def say(text: str) -> None:
        print(f"== {text}", file=sys.stderr if args.json else sys.stdout, flush=True)

    res = run_eval_all(
        args.site, seeds, parse_duration(args.duration), args.start, args.out, fps=args.fps,
        kafka_seeds=kafka_seeds, kafka_duration_s=parse_duration(args.kafka_duration),
        kafka_start_iso=args.kafka_start, kafka_fps=args.kafka_fps, kafka_speed=args.kafka_speed,
        jobs=args.jobs, say=say, noise=levels, radar=getattr(args, "radar", False),
    )  # fmt: skip
    if args.json:
        keys = ("replay", "kafka", "seeds", "goals", "noise", "radar", "dark_first_alerts",
                "kafka_error", "runtime_s")  # fmt: skip
        print(json.dumps({k: res[k] for k in keys}, sort_keys=True))
    else:
        n = len(seeds)
        which = f"{n} seed{'s' * (n != 1)} ({', '.join(map(str, seeds))})"
        if "none" in levels:
            print(f"\nreplay: {which}, "
                  f"{args.duration} from {args.start}, {args.fps:g} frame/s")  # fmt: skip
            print(format_table(res["replay"]))
            print(check_line(res["goals"]["replay"]))
            print(format_dark_first(res["dark_first_alerts"]))
        for lvl, nr in res["noise"].items():
            print(f"\nreplay, {lvl} noise: {which}, "
                  f"{args.duration} from {args.start}, {args.fps:g} frame/s")  # fmt: skip
            print(format_table(nr["replay"]))
            print(noise_check_line(nr["goals"]))
            print(format_false_alerts(nr["false_alerts"]))
            print(format_dark_first(nr["dark_first_alerts"]))
        if res["kafka"] is not None:
            print(f"\nkafka pipeline: seed{'s' * (len(kafka_seeds) != 1)} "
                  f"{', '.join(map(str, kafka_seeds))}, {args.kafka_duration} from "
                  f"{args.kafka_start} at {args.kafka_speed:g}x, {args.kafka_fps:g} frame/s")  # fmt: skip
            print(format_table(res["kafka"]))
            print(check_line(res["goals"]["kafka"]))
        if res["kafka_error"]:
            print(f"\nkafka pipeline: failed: {res['kafka_error']}")
        print(f"\nper-night results in {args.out}; {res['runtime_s']:.0f} s")
    met = (
        (res["goals"]["replay"]["met"] or "none" not in levels)
        and (res["kafka"] is None or res["goals"]["kafka"]["met"])
        and all(nr["goals"]["met"] for nr in res["noise"].values())
    )
    if res["kafka_error"]:
        return 1
    return 1 if args.strict and not met else 0
