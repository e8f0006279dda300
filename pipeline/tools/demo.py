"""``shorewatch demo`` (``make demo``): a night on the Haikou shore, end to end.

1. a Kafka broker: ``KAFKA_BOOTSTRAP_SERVERS``, else the local one (started here,
   and stopped at the end if it was not running before);
2. the topics;
3. a simulated night (``shorewatch simulate``: ferries, anchored cargo ships,
   fishing boats, and planted landings) written to ``var/demo/``;
4. a Faust worker (all agents) with a fresh consumer group;
5. the AIS file through the AIS connector and the camera detections through the
   record replay, both paced at ``--speed`` times real time from one origin;
6. alerts printed live as an operator sees them;
7. a summary: alerts by kind, scored against the simulator's ground truth, and a
   plot of the site, tracks and alerts; then everything is shut down.

Where GStreamer's RTSP server is installed, the real clip ``clip-01`` is also
served over RTSP and read by the camera connector's RTSP reader for a few
seconds, to show a real camera stream going through the real protocol.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from pipeline import admin, topics
from pipeline.tools import localkafka

if TYPE_CHECKING:
    from connectors.kafka import Pace


def _say(text: str) -> None:
    print(f"\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"== {text}", flush=True)


#: the topics the worker consumes, in pipeline order
_WORKER_INPUTS = (topics.AIS_RAW, topics.AIS_FIXES, topics.CAMERA_DETECTION, topics.FUSION_INPUT)


async def _end_offsets(bootstrap: str) -> dict[Any, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(t.name, p) for t in _WORKER_INPUTS for p in range(t.partitions)]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def wait_caught_up(
    bootstrap: str, group: str, since: dict[Any, int], timeout_s: float
) -> bool:
    """Wait until the worker's consumer group has committed every record written to its
    input topics (beyond ``since``, the end offsets before the run): everything sent has
    gone through every stage, and its outputs are on their topics. A loaded machine makes
    a worker fall behind a paced replay; this waits for it, up to ``timeout_s``."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ends = await _end_offsets(bootstrap)
            done = await admin.list_consumer_group_offsets(group)
            lag = sum(
                max(0, end - max(since.get(tp, 0), done[tp].offset if tp in done else 0))
                for tp, end in ends.items()
            )
            if lag == 0:
                return True
            await asyncio.sleep(1.0)
        return False
    finally:
        await admin.close()


def start_demo_worker(
    bootstrap: str,
    site: Path,
    out: Path,
    speed: float,
    camera_idle_wall_s: float = 15.0,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    from pipeline.settings import Settings
    from pipeline.tools.worker_process import start_worker_process

    # replayed at `speed` times real time, a second of wall time is `speed` seconds of
    # event time: a camera path that stalls for a moment on a busy machine must not count
    # as a camera gone offline, so the area waits `camera_idle_wall_s` of it
    idle_ms = max(Settings().camera_idle_ms, int(1000 * camera_idle_wall_s * speed))
    return start_worker_process(
        bootstrap,
        out,
        site=site,
        app_id_prefix="demo",
        extra_env={"SHOREWATCH_CAMERA_IDLE_MS": str(idle_ms), **(env or {})},
    )


async def wait_until_consuming(
    bootstrap: str,
    worker: subprocess.Popen,
    out: Path,
    timeout_s: float,
    probe_t_ms: int | None = None,
) -> None:
    """Wait until the worker consumes: a probe fix (far outside the site, so it never
    reaches fusion) must come out as a track update.

    :param probe_t_ms: the probes' event time, ms UTC (default: now). A recorded night
        sent afterwards must not be older: the probes advance the AIS watermark.
    """
    from connectors.kafka import RecordProducer
    from pipeline.tools.sentinels import TrackReader, sentinel, sentinel_mmsis
    from schemas import records

    reader = TrackReader(bootstrap)
    await reader.start()
    marks = sentinel_mmsis(topics.TRACK.partitions)
    deadline = time.monotonic() + timeout_s
    tries = 0
    try:
        async with RecordProducer(bootstrap, client_id="shorewatch-demo-probe") as producer:
            while time.monotonic() < deadline:
                if worker.poll() is not None:
                    raise RuntimeError(
                        "worker exited:\n" + (out / "worker.log").read_text()[-3000:]
                    )
                now = int(time.time() * 1000)
                t_probe = now if probe_t_ms is None else probe_t_ms + 1000 * tries
                tries += 1
                lines = [sentinel(m, t_probe, lon=10.0, lat=56.0) for m in marks]
                await producer.send_and_wait(
                    topics.AIS_RAW,
                    "demo:probe",
                    records.RawAisBatch(
                        source="demo:probe", lines=lines, rx_t_ms=[now] * len(lines)
                    ),
                )
                if await reader.until(set(marks), 5.0):
                    return
    finally:
        await reader.stop()
    raise RuntimeError(f"worker not ready within {timeout_s:.0f} s; see {out / 'worker.log'}")


async def run_through_pipeline(
    bootstrap: str,
    site_dir: Path,
    night_dir: Path,
    start: datetime,
    speed: float | Pace,
    *,
    on_alert: Callable[[Any], None] | None = None,
    quiet_s: float = 8.0,
    max_wait_s: float = 30.0,
    catch_up_s: float = 600.0,
    camera_idle_wall_s: float = 15.0,
    timing: dict[str, Any] | None = None,
    extra_load: Callable[[], Coroutine[Any, Any, Any]] | None = None,
    worker_env: dict[str, str] | None = None,
    after_input: Callable[[], Coroutine[Any, Any, Any]] | None = None,
) -> list[Any]:
    """Send a recorded night (``ais.nmea`` and ``detections.jsonl`` in ``night_dir``)
    through a fresh worker of the real pipeline and return the alerts it publishes.

    The AIS goes through the AIS connector's file replay, the frames through the record
    replay, both paced at ``speed`` times real time (or by a :class:`Pace`) from
    ``start``. The worker is a subprocess with its own consumer group; it is stopped at
    the end.

    :param on_alert: called with each alert as it arrives
    :param quiet_s: after the input ends, wait until no alert came for this long, s
    :param max_wait_s: but no longer than this, s
    :param catch_up_s: before that, wait up to this long until the worker has consumed all
        the input (:func:`wait_caught_up`), s
    :param camera_idle_wall_s: how long a camera may stall, in seconds of wall time, before
        the area stops waiting for it (``camera_idle_ms`` at ``speed``)
    :param timing: filled with ``t0_wall`` (monotonic s when the replay started),
        ``t0_event_ms`` and ``arrivals`` (monotonic s at which each alert arrived)
    :param extra_load: a coroutine run beside the replay (e.g. more AIS from elsewhere)
    :param worker_env: settings of the worker (``SHOREWATCH_*``) over those for ``speed``
    :param after_input: a coroutine run once the night has been sent (e.g. more input)
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from connectors.ais import KafkaSink, replay_file
    from connectors.kafka import Pace, RecordProducer, replay_records
    from schemas import records

    pace = Pace.of(speed)
    assert pace is not None
    import uuid

    group = f"demo-{uuid.uuid4().hex[:8]}"
    worker = start_demo_worker(
        bootstrap,
        site_dir,
        night_dir,
        pace.speed,
        camera_idle_wall_s,
        env={"SHOREWATCH_APP_ID": group, **(worker_env or {})},
    )
    alerts: list[records.Alert] = []
    arrivals: list[float] = []
    try:
        # probes an hour before the night: they advance the AIS watermark, never past it
        probe_t_ms = int(start.timestamp() * 1000) - 3_600_000
        await wait_until_consuming(bootstrap, worker, night_dir, 90, probe_t_ms)
        since = await _end_offsets(bootstrap)
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        parts = [TopicPartition(topics.ALERT.name, p) for p in range(topics.ALERT.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:
            await consumer.position(tp)
        alert_dec = msgspec.json.Decoder(records.Alert)
        finished = asyncio.Event()
        last_alert = [time.monotonic()]

        async def tail() -> None:
            while not finished.is_set():
                batch = await consumer.getmany(timeout_ms=300)
                for msgs in batch.values():
                    for m in msgs:
                        a = alert_dec.decode(m.value)
                        alerts.append(a)
                        last_alert[0] = time.monotonic()
                        arrivals.append(last_alert[0])
                        if on_alert is not None:
                            on_alert(a)

        tail_task = asyncio.create_task(tail())
        t0_event_ms = int(start.timestamp() * 1000)
        t0_wall = time.monotonic()
        if timing is not None:
            timing.update(t0_wall=t0_wall, t0_event_ms=t0_event_ms, arrivals=arrivals)
        load_task = asyncio.create_task(extra_load()) if extra_load is not None else None
        async with RecordProducer(bootstrap, client_id="shorewatch-replay") as producer:
            sink = KafkaSink(bootstrap)
            await sink.start()
            try:
                await asyncio.gather(
                    replay_file(
                        str(night_dir / "ais.nmea"),
                        sink,
                        speed=pace,
                        source="night:ais-station",
                        t0_event_ms=t0_event_ms,
                        t0_wall=t0_wall,
                    ),
                    replay_records(
                        night_dir / "detections.jsonl",
                        topics.CAMERA_DETECTION,
                        producer,
                        key_field="camera_id",
                        speed=pace,
                        t0_event_ms=t0_event_ms,
                        t0_wall=t0_wall,
                    ),
                )
            finally:
                await sink.stop()
        if load_task is not None:
            load_task.cancel()
            await asyncio.gather(load_task, return_exceptions=True)
        if after_input is not None:
            await after_input()
        await wait_caught_up(bootstrap, group, since, catch_up_s)
        last_alert[0] = max(last_alert[0], time.monotonic())
        deadline = time.monotonic() + max_wait_s
        while time.monotonic() < deadline and time.monotonic() - last_alert[0] < quiet_s:
            await asyncio.sleep(0.5)
        finished.set()
        await tail_task
        await consumer.stop()
    finally:
        from pipeline.tools.worker_process import stop_worker_process

        stop_worker_process(worker)
    return alerts


async def _run(args: argparse.Namespace, bootstrap: str) -> int:
    from connectors.alerts import format_alert
    from pipeline.site import load_site
    from pipeline.tools.simulate import SimConfig, parse_duration, simulate
    from schemas import records

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    site_dir = Path(args.site)
    site = load_site(site_dir)

    _say("topics")
    await admin.acreate_topics(bootstrap)
    console = await _start_console(args, bootstrap, site_dir, out)

    _say(
        f"simulating {args.duration} on the {site.name} shore from {args.start} (seed {args.seed})"
    )
    start = datetime.fromisoformat(args.start)
    truth = simulate(
        site,
        SimConfig(
            seed=args.seed,
            start=start,
            fps=args.fps,
            duration_s=parse_duration(args.duration),
            noise="none",
        ),
        out,
    )
    planted = Counter(e["kind"] for e in truth["events"] if not e.get("optional"))
    print(
        f"   {len(truth['vessels'])} vessels; planted: "
        + ", ".join(f"{n} {k}" for k, n in sorted(planted.items())),
        flush=True,
    )

    _say(
        f"starting a Faust worker; the night at {args.speed:g}x through the AIS connector and "
        "the camera feed"
    )
    tz = str(site.timezone)

    def show(a: records.Alert) -> None:
        print("   " + format_alert(a, tz), flush=True)

    alerts = await run_through_pipeline(bootstrap, site_dir, out, start, args.speed, on_alert=show)
    with open(out / "alerts.jsonl", "wb") as f:
        for a in alerts:
            f.write(msgspec.json.encode(a) + b"\n")
    _summary(alerts, truth, out, site_dir)
    try:  # the real clip-01 over RTSP where GStreamer is installed; never fails the demo
        from pipeline.tools.demo_camera import print_rtsp_showcase

        await print_rtsp_showcase(bootstrap, out)
    except Exception as exc:  # noqa: BLE001 - a missing extra must not hide the night's results
        print(f"   RTSP showcase failed: {exc!r}", flush=True)
    if console is not None:
        try:
            if args.keep_console:
                _say(f"the console stays up at {console.url} (Ctrl-C ends the demo)")
                await asyncio.Event().wait()
        finally:
            await console.stop()
    return 0


async def _start_console(args: argparse.Namespace, bootstrap: str, site_dir: Path, out: Path):
    """The operator console over the demo's broker, in demo mode (no users, 127.0.0.1 only);
    ``None`` when it cannot start (the night runs all the same)."""
    from pipeline.console.web import ConsoleConfig, start_console

    cfg = ConsoleConfig(
        bootstrap=bootstrap,
        site_dir=site_dir,
        users_file=None,
        demo=True,
        host="127.0.0.1",
        port=args.console_port,
        store_url=f"sqlite:///{out / 'console.db'}",
        evidence_dir=out / "evidence",
    )
    try:
        console = await start_console(cfg)
    except OSError:  # the port is taken: any free one
        cfg.port = 0
        console = await start_console(cfg)
    except Exception as exc:  # noqa: BLE001 - the night's results matter more than the page
        print(f"   console failed to start: {exc!r}", flush=True)
        return None
    _say(f"operator console (demo mode, no login): {console.url}")
    return console


def _summary(alerts: list, truth: dict, out: Path, site_dir: Path) -> None:
    from pipeline.tools.evaluate import evaluate, format_table

    _say("summary")
    opened = Counter(a.data.kind for a in alerts if a.data.status == "open")
    print(
        "   alerts opened by kind: "
        + (", ".join(f"{k} {n}" for k, n in sorted(opened.items())) or "none"),
        flush=True,
    )
    result = evaluate(truth, alerts)
    print(format_table(result), flush=True)
    try:
        from pipeline.tools.evaluate import plot

        png = out / "demo.png"
        plot(truth, alerts, png, site_dir)
        print(f"   plot: {png}", flush=True)
    except Exception as exc:  # noqa: BLE001 - a missing plot must not hide the results
        print(f"   (no plot: {exc})", flush=True)
    print(f"   alerts: {out / 'alerts.jsonl'}   worker log: {out / 'worker.log'}", flush=True)


def cmd_demo(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    try:
        with localkafka.broker(_say) as bootstrap:
            return asyncio.run(_run(args, bootstrap))
    finally:
        _say(f"done in {time.monotonic() - t0:.0f} s")
