"""The fault suite: ``shorewatch chaos`` (``make chaos``).

Each scenario sends one simulated night (:mod:`pipeline.tools.simulate`) of AIS and camera
input through the real connectors, a real broker and real worker processes
(:func:`pipeline.tools.worker_process.start_worker_process`), injects one fault while the night plays, and
compares what came out with :func:`pipeline.replay.replay` of the same input:

- **alerts**: the alerts replay opens (kind, vessel, event time, position) against the
  alerts the pipeline opens: ``equal`` (the same kind and vessel, the same event time,
  positions within :data:`POSITION_TOLERANCE_M`), ``missing`` (replay only), ``extra``
  (pipeline only), ``duplicate_opens`` (a second, different ``open`` event for an alert
  id; an identical re-sent event, same CloudEvents ``id`` and content, is counted apart
  as ``resent_opens``, since consumers deduplicate it). Alerts whose event time falls in
  the last stretch of the night that the live area still holds when input ends
  (the AIS disorder it waits out, an evaluation and a minute) are left out on both sides, as in
  ``tests/test_replay_equals_kafka.py``.
- **positions_lost**: position reports in the input (decoded offline through the
  pipeline's decoder, duplicates removed as the pipeline does) that never appeared on
  ``shorewatch.ais.position.v1``.
- **recovery_s**: from the fault to the worker processing again: every 0.5 s after the
  fault a probe fix (far outside the site, one MMSI per partition of the track topic,
  stamped with the night's event time of the moment, so that it moves no clock of the
  worker past the night) is sent; the time until every partition has put out a track
  update for a probe sent after the fault. ``None`` for scenarios without a single fault
  moment.

The broker is the local one (:mod:`pipeline.tools.localkafka`, started in the run folder and
stopped at the end) unless ``KAFKA_BOOTSTRAP_SERVERS`` is set; the scenarios that stop
the broker need the local one and are skipped (and say so) on an external broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "sites" / "haikou"

#: positions of an alert in replay and in the pipeline count as the same within this, m
POSITION_TOLERANCE_M = 5.0

#: scenario names and what each does, in the order ``make chaos`` runs them
SCENARIOS: dict[str, str] = {
    "worker-kill": "SIGKILL of the worker mid-night, restarted at once in the same group",
    "worker-join-leave": "a second worker joins at 30 % of the night; at 60 % the first "
    "gets SIGTERM (two rebalances)",
    "broker-restart": "SIGKILL of the broker mid-night, restarted at once",
    "connectors-broker-away": "the broker is away for 10 s (SIGKILL, restart later) while "
    "the AIS TCP connector, the camera feed and the probe publisher keep sending",
    "cpu-load": "two busy CPU hogs for the whole night",
    "overload": "twelve busy CPU hogs for the whole night",
    "worker-pause": "the worker is stopped for 5 s (SIGSTOP, then SIGCONT)",
    "ais-stall": "the AIS connector stalls for 5 s (the camera path goes on)",
    "big-area": "a busy coast: 450 more vessels at anchor in the area, whose state as one record "
    "would exceed 1 MB",
    "oversized-input": "a 2 MB line in the AIS file and a 2 MB line from a TCP client, "
    "among valid lines",
}

#: the big-area scenario sends only this much of the night, s
BIG_AREA_CUT_S = 1500

#: scenarios that stop the broker: they need the local one
NEEDS_LOCAL_BROKER = {"broker-restart", "connectors-broker-away"}


@dataclass(frozen=True)
class ChaosConfig:
    """One night and how it is played.

    :param seed: simulator seed
    :param start: the night's start (local time of the site, with offset)
    :param duration_s: simulated time, s (the simulator plants its events in 1 h)
    :param cut_s: only the first ``cut_s`` seconds of the night are sent (``None``: all)
    :param speed: replay speed, times real time
    :param fault_at: when the fault strikes, as a fraction of the night's wall time
    :param fps: camera frames per second
    :param static_members: workers join with static membership (``group.instance.id``
        per worker slot; a worker restarted after SIGKILL takes its slot's)
    """

    seed: int = 2
    start: str = "2026-03-08T03:00:00+08:00"
    duration_s: int = 3600
    cut_s: int | None = None
    speed: float = 60.0
    fault_at: float = 0.45
    fps: float = 0.5
    camera_idle_wall_s: float = 15.0
    static_members: bool = True

    @classmethod
    def short(cls) -> ChaosConfig:
        """The short night of the tests: the first 25 minutes at 80x (about 19 s)."""
        return cls(cut_s=1500, speed=80.0)

    @property
    def sent_s(self) -> int:
        """Seconds of the night that are sent."""
        return self.cut_s or self.duration_s

    @property
    def wall_s(self) -> float:
        """Wall time the night takes to play, s."""
        return self.sent_s / self.speed

    @property
    def tail_ms(self) -> int:
        """The end of the night the live area may still hold when input ends, ms of
        event time: the AIS disorder its watermark waits out, an evaluation, and a minute
        for alerts that open a while after their condition began (as in
        ``tests/test_replay_equals_kafka.py``)."""
        from pipeline.settings import Settings

        return Settings().ais_disorder_ms + 1000 + 60_000


@dataclass
class ChaosResult:
    """What one scenario measured (the fields of ``--json``; ``detail`` holds the rest)."""

    scenario: str
    expected: int
    equal: int
    extra: int
    missing: int
    duplicate_opens: int
    positions_lost: int
    recovery_s: float | None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Alerts as replay's, nothing duplicated, nothing lost."""
        return (
            self.extra == 0
            and self.missing == 0
            and self.duplicate_opens == 0
            and self.positions_lost == 0
            and not self.detail.get("skipped")
            and not self.detail.get("error")
        )

    def row(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(d.pop("detail"))
        return d


# --- comparison ---------------------------------------------------------------------


@dataclass(frozen=True)
class OpenedAlert:
    """The ``open`` event of one alert, as compared.

    :param vessel: MMSI, or the camera track id of a dark vessel
    :param t_ms: event time, ms UTC
    """

    alert_id: str
    kind: str
    vessel: str
    t_ms: int
    lon: float
    lat: float
    ce_id: str

    def brief(self) -> str:
        """``kind vessel event-time lon lat``, for reports."""
        from pipeline.engine.alerts import iso_utc

        return f"{self.kind} {self.vessel} {iso_utc(self.t_ms)} {self.lon:.5f} {self.lat:.5f}"

    @classmethod
    def of(cls, alert: Any) -> OpenedAlert:
        from pipeline.tools.evaluate import parse_time_ms

        d = alert.data
        vessel = str(d.vessel.mmsi) if d.vessel.mmsi is not None else str(d.vessel.track_id)
        return cls(
            alert_id=d.alert_id,
            kind=d.kind,
            vessel=vessel,
            t_ms=parse_time_ms(d.event_time),
            lon=float(d.position.lon),
            lat=float(d.position.lat),
            ce_id=alert.id,
        )


@dataclass
class Comparison:
    """Replay's opened alerts against the pipeline's."""

    expected: int
    equal: int
    extra: list[OpenedAlert]
    missing: list[OpenedAlert]
    duplicate_opens: int
    resent_opens: int


def opened(alerts: Iterable[Any], until_ms: int) -> list[OpenedAlert]:
    """The ``open`` events among ``alerts`` whose event time is before ``until_ms``."""
    out = [OpenedAlert.of(a) for a in alerts if a.data.status == "open"]
    return [o for o in out if o.t_ms < until_ms]


def compare_alerts(
    expected: Iterable[Any],
    got: Iterable[Any],
    until_ms: int,
    *,
    tolerance_m: float = POSITION_TOLERANCE_M,
) -> Comparison:
    """Match the alerts replay opened with those the pipeline opened.

    An expected alert is equal to a live one of the same kind and vessel, with the same
    event time and a position within ``tolerance_m``. Each live alert matches once; its
    first ``open`` is the one compared, later ones are duplicates (or re-sends, when
    identical to the first).

    :param until_ms: alerts at or after this event time are left out on both sides, ms UTC
    """
    from pipeline.core.geo import haversine_m

    want = opened(expected, until_ms)
    first: dict[str, OpenedAlert] = {}
    duplicates = resent = 0
    for o in opened(got, until_ms):
        f = first.get(o.alert_id)
        if f is None:
            first[o.alert_id] = o
        elif o == f:
            resent += 1
        else:
            duplicates += 1
    pool = list(first.values())
    equal = 0
    missing: list[OpenedAlert] = []
    for w in want:
        hit = next(
            (
                g
                for g in pool
                if g.kind == w.kind
                and g.vessel == w.vessel
                and g.t_ms == w.t_ms
                and float(haversine_m(w.lon, w.lat, g.lon, g.lat)) <= tolerance_m
            ),
            None,
        )
        if hit is None:
            missing.append(w)
        else:
            pool.remove(hit)
            equal += 1
    return Comparison(
        expected=len(want),
        equal=equal,
        extra=pool,
        missing=missing,
        duplicate_opens=duplicates,
        resent_opens=resent,
    )


# --- the broker, workers and load ---------------------------------------------------


class Broker:
    """The broker of a chaos run: the local one (which can be killed and restarted) or
    an external one (which cannot)."""

    def __init__(self, bootstrap: str, local: bool):
        self.bootstrap = bootstrap
        self.local = local

    def kill(self) -> None:
        """SIGKILL the local broker and wait until it is gone."""
        from pipeline.localbroker import running

        info = running()
        if info is None:
            raise RuntimeError("the local broker is not running")
        os.killpg(info.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(info.pid, os.WNOHANG)
            except ChildProcessError:
                pid = info.pid  # not our child: poll below
            try:
                os.kill(info.pid, 0)
            except ProcessLookupError:
                return
            if pid == info.pid:
                return
            time.sleep(0.1)

    def start(self) -> None:
        """Start the local broker again (same data folder, same ports)."""
        from pipeline.tools import localkafka

        info = localkafka.up()
        if info.bootstrap != self.bootstrap:
            raise RuntimeError(f"the broker came back at {info.bootstrap}, not {self.bootstrap}")


@contextlib.contextmanager
def chaos_broker(run_dir: Path):
    """The broker to use: ``KAFKA_BOOTSTRAP_SERVERS``, else a local one of its own in
    ``run_dir/kafka`` (started here, stopped at the end)."""
    from pipeline.admin import check_broker
    from pipeline.settings import Settings
    from pipeline.tools import localkafka

    configured = Settings.from_env().bootstrap_servers
    if configured:
        check_broker(configured, timeout_s=10)
        yield Broker(configured, local=False)
        return
    old = os.environ.get("SHOREWATCH_KAFKA_DIR")
    os.environ["SHOREWATCH_KAFKA_DIR"] = str(run_dir / "kafka")
    try:
        info = localkafka.up()
        try:
            yield Broker(info.bootstrap, local=True)
        finally:
            localkafka.down()
    finally:
        if old is None:
            os.environ.pop("SHOREWATCH_KAFKA_DIR", None)
        else:
            os.environ["SHOREWATCH_KAFKA_DIR"] = old


def start_hogs(n: int) -> list[subprocess.Popen]:
    """``n`` processes that keep a CPU busy until killed."""
    return [
        subprocess.Popen(
            [sys.executable, "-c", "while True: pass"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(n)
    ]


def stop_hogs(hogs: list[subprocess.Popen]) -> None:
    for p in hogs:
        p.kill()
    for p in hogs:
        p.wait()


# --- input --------------------------------------------------------------------------


def prepare_night(cfg: ChaosConfig, out: Path, site: Path = SITE) -> Path:
    """Simulate the night into ``out/night`` (once; kept between runs of the same
    configuration) and cut it to :attr:`ChaosConfig.cut_s`."""
    from pipeline.core.nmea import line_time_ms
    from pipeline.tools.simulate import SimConfig, simulate

    tag = f"seed{cfg.seed}-{cfg.duration_s}s-fps{cfg.fps:g}-cut{cfg.cut_s}"
    night = out / f"night-{tag}"
    if (night / "ais.nmea").is_file() and (night / "detections.jsonl").is_file():
        return night
    full = out / f"night-seed{cfg.seed}-{cfg.duration_s}s-fps{cfg.fps:g}"
    if not (full / "ais.nmea").is_file():
        start = datetime.fromisoformat(cfg.start)
        simulate(
            site,
            SimConfig(
                seed=cfg.seed, start=start, duration_s=cfg.duration_s, fps=cfg.fps, noise="none"
            ),
            full,
        )
    if cfg.cut_s is None:
        return full
    night.mkdir(parents=True, exist_ok=True)
    end_ms = int(datetime.fromisoformat(cfg.start).timestamp() * 1000) + cfg.cut_s * 1000
    lines = (full / "ais.nmea").read_text().splitlines()
    (night / "ais.nmea").write_text(
        "\n".join(ln for ln in lines if (line_time_ms(ln) or 0) < end_ms) + "\n"
    )
    frames = (full / "detections.jsonl").read_text().splitlines()
    (night / "detections.jsonl").write_text(
        "\n".join(f for f in frames if json.loads(f)["t_ms"] < end_ms) + "\n"
    )
    return night


def busy_coast_lines(
    cfg: ChaosConfig, site_dir: Path = SITE, vessels: int = 450, interval_s: int = 120
) -> list[str]:
    """AIS of a busy coast: ``vessels`` vessels at anchor on a grid over the area's water
    (at least 600 m apart, none on land), each reporting every ``interval_s`` of the night,
    with tag-block times. MMSIs 413,800,000 upwards."""
    import numpy as np
    from pyais.encode import encode_dict

    from pipeline.site import load_site
    from pipeline.tools.sentinels import _tag

    site = load_site(site_dir)
    lon0, lat0, lon1, lat1 = site.bbox
    step = 0.006
    points = [
        (float(lo), float(la))
        for la in np.arange(lat0 + step, lat1 - step, step)
        for lo in np.arange(lon0 + step, lon1 - step, step)
        if not site.on_land(float(lo), float(la))
    ]
    if len(points) < vessels:
        raise RuntimeError(f"only {len(points)} water points in the site for {vessels} vessels")
    rng = np.random.default_rng(cfg.seed)
    chosen = [points[i] for i in rng.choice(len(points), vessels, replace=False)]
    t0 = int(datetime.fromisoformat(cfg.start).timestamp() * 1000)
    out: list[tuple[int, str]] = []
    for k, (lon, lat) in enumerate(chosen):
        mmsi = 413_800_000 + k
        (payload,) = encode_dict(
            {
                "type": 1,
                "mmsi": mmsi,
                "lon": lon,
                "lat": lat,
                "speed": 0.0,
                "course": 0.0,
                "status": 1,
            },
            talker_id="AI",
        )
        first = int(rng.integers(0, interval_s * 1000))
        for t in range(t0 + first, t0 + cfg.sent_s * 1000, interval_s * 1000):
            out.append((t, _tag(t) + payload))
    out.sort()
    return [line for _, line in out]


def merge_lines_by_time(a: list[str], b: list[str]) -> list[str]:
    """Two time-ordered lists of tagged lines as one (lines without a time keep their place)."""
    import heapq

    from pipeline.core.nmea import line_time_ms

    last = [0]

    def key(line: str) -> int:
        t = line_time_ms(line)
        if t is not None:
            last[0] = t
        return last[0]

    return list(heapq.merge(a, b, key=key))


def probe_lines(mmsis: list[int], t_ms: int, k: int) -> list[str]:
    """One probe fix per MMSI at ``t_ms``, far outside any site (never reaches fusion)."""
    from pipeline.tools.sentinels import sentinel

    return [sentinel(m, t_ms, lon=10.0 + 1e-4 * (k % 500), lat=56.0) for m in mmsis]


def expected_positions(paths: list[Path]) -> set[tuple[int, int]]:
    """``(mmsi, t_ms)`` of every position report in the files, decoded through the
    pipeline's decoder (duplicates removed)."""
    from pipeline.replay import decode_ais

    positions, _ = decode_ais(paths, Counter())
    return {(p.mmsi, p.t_ms) for p in positions}


async def feed_tcp(
    host: str,
    port: int,
    lines: list[bytes],
    pace: Any,
    t0_event_ms: int,
    t0_wall: float,
    gate: asyncio.Event | None = None,
) -> None:
    """A receiver pushing NMEA over TCP: ``lines`` written in order, each tagged line
    when its event time comes at ``pace``."""
    from pipeline.core.nmea import line_time_ms

    _, writer = await asyncio.open_connection(host, port)
    try:
        for raw in lines:
            t = line_time_ms(raw[:200].decode("latin-1"))
            if t is not None and pace is not None:
                wait = t0_wall + pace.wall_s(t0_event_ms, t) - time.monotonic()
                if wait > 0:
                    await writer.drain()
                    await asyncio.sleep(wait)
            if gate is not None:
                await gate.wait()
            writer.write(raw + b"\n")
        await writer.drain()
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


# --- one scenario -------------------------------------------------------------------


class Watch:
    """One consumer of the topics a scenario reads, from their ends at start: alerts,
    positions, dead letters, and the probes' track updates."""

    def __init__(self, bootstrap: str, probes: list[int]):
        from aiokafka import AIOKafkaConsumer

        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
        )
        self.probe_keys = {str(m).encode(): m for m in probes}
        self.alerts: list[Any] = []
        self.positions: set[tuple[int, int]] = set()
        self.position_records = 0
        self.dead_letters: list[Any] = []
        #: probe MMSI -> [(monotonic s seen, fix t_ms)]
        self.probe_seen: dict[int, list[tuple[float, int]]] = {m: [] for m in probes}
        self.last_change = time.monotonic()
        #: alerts partition -> the offset after the last alert read
        self.alerts_read: dict[int, int] = {}
        #: records of the watched topics that did not decode, by topic (another
        #: producer's): skipped, counted, never the end of the watch
        self.undecodable: Counter[str] = Counter()
        #: what ended the watch before it was stopped (``None``: nothing)
        self.failure: str | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        from aiokafka import TopicPartition

        from pipeline import topics

        await self.consumer.start()
        parts = [
            TopicPartition(spec.name, p)
            for spec in (topics.ALERT, topics.AIS_POSITION, topics.DEADLETTER, topics.TRACK)
            for p in range(spec.partitions)
        ]
        self.consumer.assign(parts)
        await self.consumer.seek_to_end(*parts)
        for tp in parts:
            at = await self.consumer.position(tp)
            if tp.topic == topics.ALERT.name:
                self.alerts_read[tp.partition] = at
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        from pipeline import topics
        from schemas import records

        dec = {
            topics.ALERT.name: msgspec.json.Decoder(records.Alert),
            topics.AIS_POSITION.name: msgspec.json.Decoder(records.AisPosition),
            topics.DEADLETTER.name: msgspec.json.Decoder(records.DeadLetter),
            topics.TRACK.name: msgspec.json.Decoder(records.Track),
        }
        while True:
            try:
                batch = await self.consumer.getmany(timeout_ms=300, max_records=5000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - said in the result, not lost
                self.failure = repr(exc)
                raise
            now = time.monotonic()
            for tp, msgs in batch.items():
                for m in msgs:
                    try:
                        self._take(tp.topic, m, now, dec)
                    except msgspec.DecodeError as exc:
                        self.undecodable[tp.topic] += 1
                        log.warning("watch: a record of %s does not decode: %s", tp.topic, exc)

    def _take(self, topic: str, m: Any, now: float, dec: dict[str, Any]) -> None:
        """Note one record ``m`` of a watched topic."""
        from pipeline import topics

        if topic == topics.ALERT.name:
            self.alerts.append(dec[topic].decode(m.value))
            self.alerts_read[m.partition] = m.offset + 1
            self.last_change = now
        elif topic == topics.AIS_POSITION.name:
            if m.key in self.probe_keys:
                return
            p = dec[topic].decode(m.value)
            self.position_records += 1
            self.positions.add((p.mmsi, p.t_ms))
            self.last_change = now
        elif topic == topics.DEADLETTER.name:
            self.dead_letters.append(dec[topic].decode(m.value))
        elif m.key in self.probe_keys:
            tr = dec[topic].decode(m.value)
            self.probe_seen[tr.mmsi].append((now, tr.t_ms))

    async def read_alerts_to_end(self, timeout_s: float) -> bool:
        """Wait until every alert on the alerts topic now has been read (at most
        ``timeout_s``); whether it was."""
        from aiokafka import TopicPartition

        from pipeline import topics

        tps = [TopicPartition(topics.ALERT.name, p) for p in range(topics.ALERT.partitions)]
        try:
            ends = await self.consumer.end_offsets(tps)
        except Exception:  # noqa: BLE001 - the broker away: nothing more to wait for
            return False
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(self.alerts_read.get(tp.partition, 0) >= end for tp, end in ends.items()):
                return True
            await asyncio.sleep(0.2)
        return False

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.consumer.stop()

    def recovered_at(self, fault_event_ms: int) -> float | None:
        """Monotonic time by which every probe MMSI had a track update for a fix stamped
        at or after ``fault_event_ms`` (the night's event time at the fault); ``None`` if
        one has not."""
        times = []
        for seen in self.probe_seen.values():
            after = [t for t, fix in seen if fix >= fault_event_ms]
            if not after:
                return None
            times.append(min(after))
        return max(times)


@dataclass
class Live:
    """The live side of a scenario while it runs."""

    cfg: ChaosConfig
    broker: Broker
    run_dir: Path
    site: Path
    app_id: str = field(default_factory=lambda: f"chaos-{uuid.uuid4().hex[:8]}")
    workers: list[subprocess.Popen] = field(default_factory=list)
    fault_event_ms: int | None = None
    fault_mono: float | None = None
    #: the night's event time now, ms UTC (set when the night starts)
    night_now_ms: Callable[[], int] | None = None
    ais_gate: asyncio.Event = field(default_factory=asyncio.Event)
    notes: dict[str, Any] = field(default_factory=dict)

    def start_worker(self, instance: int | None = None) -> subprocess.Popen:
        """Start a worker in the scenario's group; ``instance``: the static member
        (``group.instance.id``) it takes over (a restart), else a new one."""
        from pipeline.tools.demo import start_demo_worker

        n = len(self.workers) + 1
        env = {"SHOREWATCH_APP_ID": self.app_id}
        if self.cfg.static_members:
            env["SHOREWATCH_GROUP_INSTANCE_ID"] = f"{self.app_id}-w{instance or n}"
        w = start_demo_worker(
            self.broker.bootstrap,
            self.site,
            self.run_dir / f"worker-{n}",
            self.cfg.speed,
            self.cfg.camera_idle_wall_s,
            env=env,
        )
        self.workers.append(w)
        return w

    def mark_fault(self) -> None:
        assert self.night_now_ms is not None
        self.fault_event_ms = self.night_now_ms()
        self.fault_mono = time.monotonic()

    def stop_all(self) -> None:
        from pipeline.tools.worker_process import stop_worker_process

        for w in self.workers:
            if w.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.pid, signal.SIGCONT)
                stop_worker_process(w)


Fault = Callable[[Live], Coroutine[Any, Any, None]]


async def _sleep_until(t0: float, s: float) -> None:
    await asyncio.sleep(max(0.0, t0 + s - time.monotonic()))


def _fault_for(name: str, cfg: ChaosConfig) -> Fault | None:
    """The fault a scenario injects, a coroutine started when the night starts."""
    at = cfg.fault_at * cfg.wall_s

    async def worker_kill(live: Live) -> None:
        await asyncio.sleep(at)
        w = live.workers[-1]
        live.mark_fault()
        os.kill(w.pid, signal.SIGKILL)
        await asyncio.to_thread(w.wait)
        live.start_worker(instance=len(live.workers))  # restarted as the same member

    async def join_leave(live: Live) -> None:
        await asyncio.sleep(0.3 * cfg.wall_s)
        live.start_worker()
        await asyncio.sleep(0.3 * cfg.wall_s)
        from pipeline.tools.worker_process import stop_worker_process

        live.mark_fault()
        await asyncio.to_thread(stop_worker_process, live.workers[0])

    async def broker_restart(live: Live) -> None:
        await asyncio.sleep(at)
        live.mark_fault()
        await asyncio.to_thread(live.broker.kill)
        await asyncio.to_thread(live.broker.start)

    async def broker_away(live: Live) -> None:
        await asyncio.sleep(at)
        live.mark_fault()
        await asyncio.to_thread(live.broker.kill)
        await asyncio.sleep(10.0)
        await asyncio.to_thread(live.broker.start)

    async def worker_pause(live: Live) -> None:
        await asyncio.sleep(at)
        w = live.workers[-1]
        live.mark_fault()
        os.kill(w.pid, signal.SIGSTOP)
        await asyncio.sleep(5.0)
        os.kill(w.pid, signal.SIGCONT)

    async def ais_stall(live: Live) -> None:
        await asyncio.sleep(at)
        live.mark_fault()
        live.ais_gate.clear()
        await asyncio.sleep(5.0)
        live.ais_gate.set()

    return {
        "worker-kill": worker_kill,
        "worker-join-leave": join_leave,
        "broker-restart": broker_restart,
        "connectors-broker-away": broker_away,
        "worker-pause": worker_pause,
        "ais-stall": ais_stall,
    }.get(name)


async def _probe(live: Live, pub: Any, mmsis: list[int], watch: Watch, timeout_s=180.0) -> None:
    """After the fault, send probe fixes every 0.5 s until every partition answered.

    :param pub: a started :class:`connectors.kafka.BufferedPublisher` (made before the
        fault: the broker may be away when the probing starts)
    """
    from pipeline import topics
    from schemas import records

    while live.fault_mono is None:
        await asyncio.sleep(0.05)
    assert live.fault_event_ms is not None and live.night_now_ms is not None
    k = 0
    deadline = live.fault_mono + timeout_s
    while time.monotonic() < deadline:
        done = watch.recovered_at(live.fault_event_ms)
        if done is not None:
            live.notes["recovery_s"] = round(done - live.fault_mono, 2)
            return
        t_ms = live.night_now_ms()
        lines = probe_lines(mmsis, t_ms, k)
        k += 1
        rx = int(time.time() * 1000)
        await pub.put(
            topics.AIS_RAW,
            "chaos:probe",
            records.RawAisBatch(source="chaos:probe", lines=lines, rx_t_ms=[rx] * len(lines)),
        )
        await asyncio.sleep(0.5)
    live.notes["recovery_s"] = None
    live.notes["not_recovered_within_s"] = timeout_s


async def run_live(
    name: str,
    cfg: ChaosConfig,
    broker: Broker,
    night: Path,
    run_dir: Path,
    *,
    site: Path = SITE,
    extra_ais: list[str] | None = None,
    area_until_ms: int | None = None,
    area_wait_s: float = 900.0,
    expected_positions: frozenset[tuple[int, int]] = frozenset(),
    caught_up_s: float = 300.0,
    stalled_s: float = 60.0,
) -> tuple[Live, Watch]:
    """Play ``night`` through the pipeline with scenario ``name``'s fault.

    :param expected_positions: ``(mmsi, t_ms)`` of the input's position reports: after the input ends, the
        pipeline is given up to ``caught_up_s`` to put them all out (unless it puts out
        none for ``stalled_s``)
    :param area_until_ms: then wait until every area's state has passed this event time,
        ms UTC (the end of the compared night and an evaluation)
    :param area_wait_s: but no longer than this, s of wall time (``area_reached`` false
        in the notes when it passed)
    """
    from connectors.ais import KafkaSink, replay_file, tcp_server
    from connectors.kafka import BufferedPublisher, Pace, RecordProducer, replay_records
    from pipeline import topics
    from pipeline.tools.area_progress import AreaProgress
    from pipeline.tools.demo import wait_until_consuming
    from pipeline.tools.sentinels import sentinel_mmsis

    live = Live(cfg=cfg, broker=broker, run_dir=run_dir, site=site)
    live.ais_gate.set()
    # not the MMSIs of the readiness probe: those tracks hold a fix from before the night
    probes = sentinel_mmsis(topics.TRACK.partitions, first=211_997_000)
    hogs: list[subprocess.Popen] = []
    watch = Watch(broker.bootstrap, probes)
    pace = Pace(cfg.speed)
    sink = KafkaSink(broker.bootstrap, block_when_full=True)
    probe_producer = RecordProducer(broker.bootstrap, client_id="shorewatch-chaos-probe")
    probe_pub = BufferedPublisher(probe_producer, max_buffer_bytes=1 << 20)
    try:
        w = live.start_worker()
        # readiness probes an hour before the night: they advance the AIS watermark
        t_probe = int(datetime.fromisoformat(cfg.start).timestamp() * 1000) - 3_600_000
        await wait_until_consuming(broker.bootstrap, w, run_dir / "worker-1", 120, t_probe)
        await watch.start()
        await sink.start()
        await probe_producer.start()
        probe_pub.start()
        ais_path = night / "ais.nmea"
        if name == "big-area" and extra_ais:
            ais_path = run_dir / "ais-busy.nmea"
            ais_path.write_text("\n".join(extra_ais) + "\n")
        if name == "oversized-input":
            ais_path = run_dir / "ais-oversized.nmea"
            lines = (night / "ais.nmea").read_text().splitlines()
            mid = len(lines) // 2
            ais_path.write_text("\n".join([*lines[:mid], "X" * (2 << 20), *lines[mid:]]) + "\n")
        if name == "cpu-load":
            hogs = start_hogs(2)
        elif name == "overload":
            hogs = start_hogs(12)
        fault = _fault_for(name, cfg)

        async def gated(batch: Any) -> None:
            await live.ais_gate.wait()
            await sink(batch)

        gated.dead_letter = sink.dead_letter  # type: ignore[attr-defined]
        t0_event_ms = int(datetime.fromisoformat(cfg.start).timestamp() * 1000)
        t0_wall = time.monotonic()
        live.night_now_ms = lambda: pace.event_ms(t0_event_ms, time.monotonic() - t0_wall)
        tasks: list[asyncio.Task] = []
        server: asyncio.Task | None = None
        if name in ("connectors-broker-away", "oversized-input"):
            started: asyncio.Future = asyncio.get_running_loop().create_future()
            server = asyncio.create_task(tcp_server("127.0.0.1", 0, gated, started=started))
            port = await asyncio.wait_for(started, 10)
        if name == "connectors-broker-away":
            raw = [ln.encode() for ln in ais_path.read_text().splitlines() if ln]
            tasks.append(
                asyncio.create_task(feed_tcp("127.0.0.1", port, raw, pace, t0_event_ms, t0_wall))
            )
        else:
            tasks.append(
                asyncio.create_task(
                    replay_file(
                        str(ais_path),
                        gated,
                        speed=pace,
                        source="night:ais-station",
                        t0_event_ms=t0_event_ms,
                        t0_wall=t0_wall,
                    )
                )
            )
        if name == "oversized-input" and extra_ais:
            raw = [ln.encode() for ln in extra_ais]
            raw.insert(len(raw) // 2, b"Y" * (2 << 20))
            tasks.append(asyncio.create_task(feed_tcp("127.0.0.1", port, raw, None, 0, 0)))
        cam_producer = RecordProducer(broker.bootstrap, client_id="shorewatch-chaos-camera")
        await cam_producer.start()
        cam_pub = BufferedPublisher(cam_producer, block_when_full=True)
        tasks.append(
            asyncio.create_task(
                replay_records(
                    night / "detections.jsonl",
                    topics.CAMERA_DETECTION,
                    cam_producer,
                    key_field="camera_id",
                    speed=pace,
                    t0_event_ms=t0_event_ms,
                    t0_wall=t0_wall,
                    publisher=cam_pub,
                )
            )
        )
        side: list[asyncio.Task] = []
        if fault is not None:
            side.append(asyncio.create_task(fault(live)))
            side.append(asyncio.create_task(_probe(live, probe_pub, probes, watch)))
        await asyncio.gather(*tasks)
        if server is not None:
            # the TCP connector publishes what it read; give it its batch interval
            await asyncio.sleep(1.0)
            server.cancel()
            await asyncio.gather(server, return_exceptions=True)
        await cam_producer.stop()
        live.notes["input_wall_s"] = round(time.monotonic() - t0_wall, 1)
        await sink.publisher.flush(120)
        watch.last_change = max(watch.last_change, time.monotonic())
        # wait for the worker to be back (the probe answered, at most 180 s after the
        # fault)
        if side:
            await asyncio.wait(side, timeout=240)
        # a loaded worker may be minutes behind: wait while it still puts out the input's
        # positions (at most caught_up_s, unless none came for stalled_s)
        caught_up = time.monotonic() + caught_up_s
        while time.monotonic() < caught_up and not expected_positions <= watch.positions:
            if time.monotonic() - watch.last_change >= stalled_s:
                break
            await asyncio.sleep(0.5)
        # then until every area's event time has passed the compared night (its alerts
        # are then acknowledged on the alerts topic), however long a loaded worker takes,
        # up to area_wait_s; and until this suite has read the alerts topic that far
        if area_until_ms is not None:
            progress = AreaProgress(broker.bootstrap, live.app_id)
            try:
                reached = await progress.wait_past(area_until_ms, area_wait_s)
                live.notes["area_reached"] = reached
                if not reached:
                    live.notes["area_wait_s"] = area_wait_s
            finally:
                await progress.stop()
            await watch.read_alerts_to_end(60.0)
        for t in side:
            if not t.done():
                t.cancel()
        for r in await asyncio.gather(*side, return_exceptions=True):
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                live.notes["fault_error"] = repr(r)
        live.notes["connector"] = {
            "ais_dead_letters": dict(sink.dead_letters),
            "ais_dropped_records": sink.publisher.dropped,
            "ais_retried_records": sink.publisher.retries,
            "camera_dropped_records": cam_pub.dropped,
            "camera_retried_records": cam_pub.retries,
        }
    finally:
        stop_hogs(hogs)
        await probe_pub.close(5.0)
        await probe_producer.stop()
        await sink.stop(30.0)
        live.notes.setdefault("connector", {})["ais_undelivered_records"] = (
            sink.publisher.undelivered
        )
        await watch.stop()
        await asyncio.to_thread(live.stop_all)
    return live, watch


_OFFLINE: dict[tuple, tuple[list[Any], set[tuple[int, int]]]] = {}


def _offline(
    site: Path, ais_files: tuple[Path, ...], detections: Path
) -> tuple[list[Any], set[tuple[int, int]]]:
    """Replay's alerts and the input's positions (kept for the next scenario of the run
    on the same files)."""
    from pipeline.replay import replay

    key = (site, ais_files, detections, *(f.stat().st_mtime_ns for f in ais_files))
    if key not in _OFFLINE:
        alerts = replay(site, list(ais_files), [detections])
        positions: set[tuple[int, int]] = set()
        for f in ais_files:  # one decoder per file, as the pipeline has one per source
            positions |= expected_positions([f])
        _OFFLINE[key] = (alerts, positions)
    return _OFFLINE[key]


def area_state_writes(bootstrap: str, app_id: str) -> dict[str, int]:
    """Read the areas table's changelog of a run from its start: how many head rows
    (area states) were written, how many row records in all, the furthest event time an
    area's state reached (``area_released_t_ms``: how far the area had got when the
    suite compared), and how many head rows went back in event time (``released_t_ms`` below the area's previous head on the
    changelog): a worker that wrote a state older than one already written (a stale
    write, e.g. a departing worker after a rebalance)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from pipeline import topics
    from pipeline.engine.state_rows import area_of_row, head_key, join_rows

    topic = f"{app_id}-shorewatch-areas-changelog"

    async def read() -> dict[str, int]:
        c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await c.start()
        try:
            # the table's changelog has the partitions of the area's input topic
            tps = [TopicPartition(topic, p) for p in range(topics.FUSION_INPUT.partitions)]
            c.assign(tps)
            await c.seek_to_beginning(*tps)
            end = await c.end_offsets(tps)
            last: dict[str, int] = {}
            rows = heads = stale = 0
            left = {tp for tp in tps if end[tp] > 0}
            while left:
                got = await c.getmany(*left, timeout_ms=1000)
                for tp, msgs in got.items():
                    for m in msgs:
                        rows += 1
                        if m.value and m.key and m.key.endswith(b"/head"):
                            area = area_of_row(m.key)
                            st = join_rows(area, {head_key(area): m.value})
                            assert st is not None
                            heads += 1
                            if st.released_t_ms < last.get(area, -1):
                                stale += 1
                            last[area] = max(last.get(area, -1), st.released_t_ms)
                        if m.offset + 1 >= end[tp]:
                            left.discard(tp)
            return {
                "area_rows": rows,
                "area_heads": heads,
                "stale_writes": stale,
                "area_released_t_ms": max(last.values(), default=-1),
            }
        finally:
            # aiokafka's stop of a group-less consumer may re-raise the cancellation of
            # its own committed-offsets task
            with contextlib.suppress(asyncio.CancelledError):
                await c.stop()

    return asyncio.run(read())


def run_scenario(
    name: str, cfg: ChaosConfig, broker: Broker, out: Path, site: Path = SITE
) -> ChaosResult:
    """Run one scenario and compare it with replay of the same input."""
    from pipeline.engine.watermarks import EVAL_GRID_MS

    if name not in SCENARIOS:
        raise KeyError(name)
    if name in NEEDS_LOCAL_BROKER and not broker.local:
        return ChaosResult(
            name,
            0,
            0,
            0,
            0,
            0,
            0,
            None,
            {"skipped": "needs the local broker (KAFKA_BOOTSTRAP_SERVERS is set)"},
        )
    if name == "big-area" and cfg.cut_s is None:
        # replaying a busy coast costs minutes per half hour of night on 2 cores
        cfg = dataclasses.replace(cfg, cut_s=BIG_AREA_CUT_S)
    night = prepare_night(cfg, out, site)
    run_dir = out / "runs" / f"{name}-{uuid.uuid4().hex[:6]}"
    run_dir.mkdir(parents=True, exist_ok=True)
    ais_files = [night / "ais.nmea"]
    extra: list[str] | None = None
    if name == "big-area":
        busy = busy_coast_lines(cfg, site)
        extra = merge_lines_by_time((night / "ais.nmea").read_text().splitlines(), busy)
        (run_dir / "ais-busy.nmea").write_text("\n".join(extra) + "\n")
        ais_files = [run_dir / "ais-busy.nmea"]
    elif name == "oversized-input":
        from pipeline.tools.sentinels import sentinel

        now = int(time.time() * 1000)
        extra = [sentinel(211_998_000 + k, now + k, lon=10.5, lat=56.0) for k in range(20)]
        (run_dir / "tcp-valid.nmea").write_text("\n".join(extra) + "\n")
        ais_files = [*ais_files, run_dir / "tcp-valid.nmea"]
    t0 = time.monotonic()
    offline, want_pos = _offline(site, tuple(ais_files), night / "detections.jsonl")
    replay_s = time.monotonic() - t0
    until_ms = (
        int(datetime.fromisoformat(cfg.start).timestamp() * 1000) + cfg.sent_s * 1000 - cfg.tail_ms
    )
    live, watch = asyncio.run(
        run_live(
            name,
            cfg,
            broker,
            night,
            run_dir,
            site=site,
            extra_ais=extra,
            expected_positions=frozenset(want_pos),
            # every evaluation of the compared night made: the last is at most one grid
            # step after its end
            area_until_ms=until_ms + EVAL_GRID_MS,
        )
    )
    cmp = compare_alerts(offline, watch.alerts, until_ms)
    lost = want_pos - watch.positions
    detail: dict[str, Any] = {
        "resent_opens": cmp.resent_opens,
        "extra_alerts": [o.brief() for o in cmp.extra],
        "missing_alerts": [o.brief() for o in cmp.missing],
        "positions_sent": len(want_pos),
        **({"watch_undecodable": dict(watch.undecodable)} if watch.undecodable else {}),
        **({"watch_failure": watch.failure} if watch.failure else {}),
        # the first lost reports: MMSI, event time, s of event time after the fault
        "positions_lost_sample": [
            (
                mmsi,
                t_ms,
                None if live.fault_event_ms is None else (t_ms - live.fault_event_ms) / 1000,
            )
            for mmsi, t_ms in sorted(lost, key=lambda p: p[1])[:10]
        ],
        "replay_s": round(replay_s, 1),
        **{k: v for k, v in live.notes.items() if k != "recovery_s"},
    }
    dead = [d for d in watch.dead_letters if d.reason == "too_long" and d.stage == "ais.connector"]
    with contextlib.suppress(Exception):  # a broker that is gone: the writes unknown
        detail.update(area_state_writes(broker.bootstrap, live.app_id))
        if detail.get("area_released_t_ms", -1) >= 0:
            # > 0: the area had not reached the end of the compared night (still behind)
            detail["area_behind_s"] = round((until_ms - detail["area_released_t_ms"]) / 1000, 1)
    if name == "oversized-input":
        detail["dead_letters_too_long"] = sorted(d.source for d in dead)
    return ChaosResult(
        scenario=name,
        expected=cmp.expected,
        equal=cmp.equal,
        extra=len(cmp.extra),
        missing=len(cmp.missing),
        duplicate_opens=cmp.duplicate_opens,
        positions_lost=len(lost),
        recovery_s=live.notes.get("recovery_s"),
        detail=detail,
    )


# --- output -------------------------------------------------------------------------

HEADER = (
    "scenario",
    "alerts expected",
    "equal",
    "extra",
    "missing",
    "duplicate opens",
    "positions lost",
    "recovery time",
)


def table_row(r: ChaosResult) -> list[str]:
    for why in ("skipped", "error"):
        if r.detail.get(why):
            return [r.scenario, f"{why}: {r.detail[why]}", "", "", "", "", "", ""]
    rec = "-" if r.recovery_s is None else f"{r.recovery_s:.1f} s"
    if r.recovery_s is None and r.detail.get("not_recovered_within_s"):
        rec = f"> {r.detail['not_recovered_within_s']:.0f} s"
    return [
        r.scenario,
        str(r.expected),
        str(r.equal),
        str(r.extra),
        str(r.missing),
        str(r.duplicate_opens),
        str(r.positions_lost),
        rec,
    ]


def format_table(results: list[ChaosResult]) -> str:
    """The results as a Markdown table."""
    rows = [list(HEADER), *(table_row(r) for r in results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def run(args: Any) -> int:
    """``shorewatch chaos``: run the scenarios, print the table (or JSON lines)."""
    names = list(args.scenario or SCENARIOS)
    cfg = ChaosConfig.short() if args.short else ChaosConfig()
    if args.speed:
        cfg = ChaosConfig(**{**asdict(cfg), "speed": args.speed})
    if getattr(args, "dynamic_members", False):
        cfg = dataclasses.replace(cfg, static_members=False)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: list[ChaosResult] = []
    with chaos_broker(out) as broker:
        from pipeline import admin

        asyncio.run(admin.acreate_topics(broker.bootstrap))
        for name in names:
            t0 = time.monotonic()
            try:
                r = run_scenario(name, cfg, broker, out)
            except Exception as exc:  # noqa: BLE001 - one broken scenario must not hide the rest
                log.exception("scenario %s failed", name)
                r = ChaosResult(name, 0, 0, 0, 0, 0, 0, None, {"error": repr(exc)})
            r.detail["scenario_s"] = round(time.monotonic() - t0, 1)
            results.append(r)
            if args.json:
                print(json.dumps(r.row()), flush=True)
            else:
                print(f"   {name}: {' | '.join(table_row(r)[1:])}", file=sys.stderr, flush=True)
    if not args.json:
        print(format_table(results))
    return 0 if all(r.ok for r in results) else 1
