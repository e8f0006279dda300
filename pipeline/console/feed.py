"""The console's view of the topics: alerts, tracks, camera status and operator actions,
read with one aiokafka consumer and pushed to the browsers.

The consumer has **no consumer group**: every console replica needs every partition of
every topic it shows (a group would split them between replicas), and it keeps no
committed offsets in Kafka. Where each topic starts:

- ``shorewatch.alert.v1``: the alerts of the last ``alert_history_h`` hours (timestamp
  lookup), so the queue of a freshly started console holds what is still open;
- ``shorewatch.track.v1``: the last ``track_history_s`` seconds (a live picture only);
- ``shorewatch.camera.status.v1``: the last 24 hours (the topic is compacted);
- ``shorewatch.alert.action.v1``: from the offsets saved in the action store, or from the
  beginning when the store is new or lost, which rebuilds it.

A record on the action topic that does not decode is dead-lettered
(``shorewatch.deadletter.v1``, stage ``console.action``, reason ``undecodable_record``) and
its offset passes; the console keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline import topics
from pipeline.console.store import ActionStore
from pipeline.console.triage import Board, Triage
from pipeline.deadletter import Reason, dead_letter
from pipeline.errors import ConsoleError
from pipeline.metrics import CONSOLE_PUSH_LATENCY
from pipeline.tasks import cancel_and_wait
from schemas import records

log = logging.getLogger(__name__)

TAIL_FIXES = 20
"""Fixes kept per vessel for its tail and the "last fixes" panel."""

STOP_TIMEOUT_S = 15.0
"""How long :meth:`Feed.stop` waits for its tasks, then for its consumer, s."""

_alert_dec = msgspec.json.Decoder(records.Alert)
_track_dec = msgspec.json.Decoder(records.Track)
_status_dec = msgspec.json.Decoder(records.CameraStatus)
_action_dec = msgspec.json.Decoder(records.AlertAction)


def wall_ms() -> int:
    """Wall-clock time, ms UTC (the console acts in wall time; it is not the core)."""
    return int(time.time() * 1000)


@dataclass
class AlertEntry:
    """The latest event of one alert and what the console adds to it.

    :param first_seen_t_ms: when the console first read it (wall clock, ms UTC)
    :param updated_t_ms: when its latest event was read (wall clock, ms UTC)
    """

    data: records.AlertData
    time: str
    first_seen_t_ms: int
    updated_t_ms: int
    n_events: int = 1


@dataclass
class VesselEntry:
    track: records.Track
    tail: deque = field(default_factory=lambda: deque(maxlen=TAIL_FIXES))


def evidence_path(uri: str, root: Path) -> str | None:
    """The path of an evidence URI relative to the evidence store ``root``, or ``None`` when
    it is not a ``file://`` URI inside it (nothing outside the store is ever served)."""
    u = urlparse(uri)
    if u.scheme != "file":
        return None
    try:
        path = Path(unquote(u.path)).resolve()
        root = root.resolve()
    except (OSError, ValueError):
        return None
    if root not in path.parents:
        return None
    return path.relative_to(root).as_posix()


class Feed:
    """Reads the topics into memory and calls ``publish(event, payload)`` for the browsers.

    :param evidence_dir: the evidence store of the cameras (its files are served)
    """

    def __init__(
        self,
        bootstrap: str,
        store: ActionStore,
        publish: Callable[[str, dict[str, Any]], None],
        *,
        evidence_dir: Path,
        alert_history_h: float = 24.0,
        track_history_s: float = 120.0,
        dead_letter: Callable[[records.DeadLetter], Any] | None = None,
    ):
        self.bootstrap = bootstrap
        self.store = store
        self.publish = publish
        self.evidence_dir = evidence_dir
        self.alert_history_h = alert_history_h
        self.track_history_s = track_history_s
        self.dead_letter = dead_letter
        self.alerts: dict[str, AlertEntry] = {}
        self.vessels: dict[int, VesselEntry] = {}
        self.cameras: dict[str, records.CameraStatus] = {}
        self.board = Board()
        self.connected = False
        self.counters: dict[str, int] = {"dead_letters_total": 0, "actions_total": 0}
        self._dirty_vessels: set[int] = set()
        self._tasks: list[asyncio.Task] = []
        self._health_task: asyncio.Task | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self.ready = asyncio.Event()

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Load the board from the store, then read the topics in the background."""
        for a in await asyncio.to_thread(self.store.all_actions):
            self.board.apply(a)
        self._tasks = [
            asyncio.create_task(self._run(), name="console-feed"),
            asyncio.create_task(self._vessel_ticker(), name="console-vessels"),
        ]

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Cancel the reading tasks and close the consumer, each within ``timeout_s``.

        :raises ConsoleError: a task still ran at the deadline (named in the message)
        """
        tasks = [*self._tasks, *([self._health_task] if self._health_task else [])]
        stuck = await cancel_and_wait(tasks, timeout_s=timeout_s)
        if self._consumer is not None:
            try:
                async with asyncio.timeout(timeout_s):
                    await self._consumer.stop()
            except TimeoutError:
                log.warning("console feed: the consumer did not close within %g s", timeout_s)
            except Exception as exc:  # noqa: BLE001 - closing: report, go on
                log.warning("console feed: closing the consumer: %s", exc)
        if stuck:
            names = ", ".join(sorted(t.get_name() for t in stuck))
            raise ConsoleError(f"console feed: {names} still running {timeout_s:g} s after stop")

    def _set_connected(self, value: bool) -> None:
        if value != self.connected:
            self.connected = value
            self.publish("broker", {"connected": value})

    async def _run(self) -> None:
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep the console up, retry
                log.warning("console feed: %s: %s; retrying", type(exc).__name__, exc)
                self._set_connected(False)
                if self._consumer is not None:
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(STOP_TIMEOUT_S):
                            await self._consumer.stop()
                    self._consumer = None
                await asyncio.sleep(2.0)

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            client_id="shorewatch-console",
            request_timeout_ms=10_000,
            retry_backoff_ms=500,
            metadata_max_age_ms=5_000,
        )
        self._consumer = consumer
        async with asyncio.timeout(15):  # not wait_for: a stop's cancellation must not be lost
            await consumer.start()
        parts: dict[str, list[TopicPartition]] = {
            spec.name: [TopicPartition(spec.name, p) for p in range(spec.partitions)]
            for spec in (topics.ALERT, topics.TRACK, topics.CAMERA_STATUS, topics.ALERT_ACTION)
        }
        consumer.assign([tp for tps in parts.values() for tp in tps])
        now = wall_ms()
        await self._seek_time(
            consumer, parts[topics.ALERT.name], now - self.alert_history_h * 3.6e6
        )
        await self._seek_time(consumer, parts[topics.TRACK.name], now - self.track_history_s * 1e3)
        await self._seek_time(consumer, parts[topics.CAMERA_STATUS.name], now - 24 * 3.6e6)
        await self._seek_actions(consumer, parts[topics.ALERT_ACTION.name])
        self._set_connected(True)
        self.ready.set()
        health = self._health_task = asyncio.create_task(
            self._health(consumer), name="console-health"
        )
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=100, max_records=20_000)
                for tp, msgs in batch.items():
                    if tp.topic == topics.ALERT.name:
                        self._on_alerts(msgs)
                    elif tp.topic == topics.TRACK.name:
                        self._on_tracks(msgs)
                    elif tp.topic == topics.CAMERA_STATUS.name:
                        self._on_status(msgs)
                    else:
                        await self._on_actions(tp.partition, msgs)
        finally:
            await cancel_and_wait([health], timeout_s=STOP_TIMEOUT_S)

    async def _health(self, consumer: AIOKafkaConsumer) -> None:
        """Ask the broker for metadata every 2 s: the visible "disconnected" state."""
        while True:
            try:
                async with asyncio.timeout(3.0):  # not wait_for: it can lose a cancellation
                    await consumer._client.fetch_all_metadata()
                self._set_connected(True)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - any failure means "not connected now"
                self._set_connected(False)
            await asyncio.sleep(2.0)

    @staticmethod
    async def _seek_time(consumer: AIOKafkaConsumer, tps: list[TopicPartition], t_ms: float):
        found = await consumer.offsets_for_times({tp: int(t_ms) for tp in tps})
        for tp in tps:
            hit = found.get(tp)
            if hit is None:
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, hit.offset)

    async def _seek_actions(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]):
        saved = await asyncio.to_thread(self.store.offsets)
        ends = await consumer.end_offsets(tps)
        if any(saved.get(tp.partition, 0) > ends[tp] for tp in tps):
            # the topic was recreated: the store describes another history, rebuild it
            log.warning("console: action store is ahead of the topic; rebuilding it")
            await asyncio.to_thread(self.store.clear)
            self.board = Board()
            saved = {}
        for tp in tps:
            if tp.partition in saved:
                consumer.seek(tp, saved[tp.partition])
            else:
                await consumer.seek_to_beginning(tp)

    # ----------------------------------------------------------------- records
    def _on_alerts(self, msgs: list[Any]) -> None:
        now = wall_ms()
        for m in msgs:
            try:
                ev = _alert_dec.decode(m.value)
            except msgspec.DecodeError:
                continue  # the alert topic's producers validate; nothing to dead-letter here
            d = ev.data
            old = self.alerts.get(d.alert_id)
            if old is not None and d.seq < old.data.seq:
                continue
            entry = AlertEntry(
                data=d,
                time=ev.time,
                first_seen_t_ms=old.first_seen_t_ms if old else now,
                updated_t_ms=now,
                n_events=(old.n_events + 1) if old else 1,
            )
            self.alerts[d.alert_id] = entry
            self.publish("alert", self.alert_json(entry))
            if m.timestamp and m.timestamp > now - 60_000:  # live, not the history read at start
                CONSOLE_PUSH_LATENCY.observe(max(0.0, wall_ms() - m.timestamp) / 1000.0)

    def _on_tracks(self, msgs: list[Any]) -> None:
        for m in msgs:
            try:
                tr = _track_dec.decode(m.value)
            except msgspec.DecodeError:
                continue
            if tr.event == "evicted":
                self.vessels.pop(tr.mmsi, None)
                self._dirty_vessels.add(tr.mmsi)
                continue
            v = self.vessels.get(tr.mmsi)
            if v is None:
                v = self.vessels[tr.mmsi] = VesselEntry(tr)
            v.track = tr
            if not v.tail or v.tail[-1][2] != tr.t_ms:
                v.tail.append((round(tr.lon, 6), round(tr.lat, 6), tr.t_ms))
            self._dirty_vessels.add(tr.mmsi)

    def _on_status(self, msgs: list[Any]) -> None:
        for m in msgs:
            try:
                st = _status_dec.decode(m.value)
            except msgspec.DecodeError:
                continue
            old = self.cameras.get(st.camera_id)
            if old is None or st.t_ms >= old.t_ms:
                self.cameras[st.camera_id] = st
                self.publish("camera", msgspec.to_builtins(st))

    async def _on_actions(self, part: int, msgs: list[Any]) -> None:
        items: list[tuple[int, records.AlertAction | None]] = []
        for m in msgs:
            try:
                a = _action_dec.decode(m.value)
            except msgspec.DecodeError as exc:
                items.append((m.offset, None))
                await self._dead(m, str(exc))
                continue
            items.append((m.offset, a))
        await asyncio.to_thread(self.store.add, part, items)
        for _, act in items:
            if act is None:
                continue
            a = act
            self.counters["actions_total"] += 1
            tri = self.board.apply(a)
            self.publish(
                "action",
                {
                    "action": msgspec.to_builtins(a),
                    "triage": triage_json(tri) if tri is not None else None,
                },
            )

    async def _dead(self, m: Any, detail: str) -> None:
        self.counters["dead_letters_total"] += 1
        log.warning("console: bad action record at %s/%s: %s", m.partition, m.offset, detail)
        if self.dead_letter is None:
            return
        dl = dead_letter(
            Reason.UNDECODABLE_RECORD,
            source=f"console:{topics.ALERT_ACTION.name}/{m.partition}/{m.offset}",
            stage="console.action",
            detail=detail,
            raw=m.value or b"",
            rx_t_ms=wall_ms(),
        )
        try:
            await self.dead_letter(dl)
        except Exception as exc:  # noqa: BLE001 - counted and logged above; keep running
            log.warning("console: dead letter not written: %s", exc)

    async def _vessel_ticker(self) -> None:
        """Push the vessels that changed, twice a second, as one batch."""
        while True:
            await asyncio.sleep(0.5)
            if not self._dirty_vessels:
                continue
            dirty, self._dirty_vessels = self._dirty_vessels, set()
            upd = [self.vessel_row(self.vessels[m]) for m in dirty if m in self.vessels]
            gone = [m for m in dirty if m not in self.vessels]
            self.publish("vessels", {"update": upd, "gone": gone})

    # ----------------------------------------------------------------- views
    def alert_json(self, e: AlertEntry) -> dict[str, Any]:
        d = msgspec.to_builtins(e.data)
        d["time"] = e.time
        d["first_seen_t_ms"] = e.first_seen_t_ms
        d["updated_t_ms"] = e.updated_t_ms
        d["n_events"] = e.n_events
        d["evidence_urls"] = [
            f"/api/evidence/{p}"
            for p in (evidence_path(u, self.evidence_dir) for u in e.data.evidence.snapshot_uris)
            if p is not None
        ]
        d["triage"] = triage_json(self.board.get(e.data.alert_id))
        return d

    @staticmethod
    def vessel_row(v: VesselEntry) -> list[Any]:
        """``[mmsi, lon, lat, cog_deg, sog_kn, t_ms, flags, tail]``: compact, for thousands."""
        t = v.track
        return [
            t.mmsi,
            round(t.lon, 6),
            round(t.lat, 6),
            t.heading_deg if t.heading_deg is not None else t.cog_deg,
            t.sog_kn,
            t.t_ms,
            t.name is None,
            [[x, y] for x, y, _ in list(v.tail)[-8:]],
        ]

    def vessel_json(self, mmsi: int) -> dict[str, Any] | None:
        v = self.vessels.get(mmsi)
        if v is None:
            return None
        d = msgspec.to_builtins(v.track)
        d["fixes"] = [list(f) for f in v.tail]
        return d

    def snapshot(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "alerts": [self.alert_json(e) for e in self.alerts.values()],
            "vessels": [self.vessel_row(v) for v in self.vessels.values()],
            "cameras": [msgspec.to_builtins(c) for c in self.cameras.values()],
            "silences": [silence_json(s) for s in self.board.silences if s.until_t_ms > wall_ms()],
        }


def triage_json(t: Triage) -> dict[str, Any]:
    return {
        "state": t.state,
        "assignee": t.assignee,
        "escalated": t.escalated,
        "acked_by": t.acked_by,
        "acked_t_ms": t.acked_t_ms,
        "dismiss_reason": t.dismiss_reason,
        "n_comments": t.n_comments,
    }


def silence_json(s: Any) -> dict[str, Any]:
    return {
        "user": s.user,
        "until_t_ms": s.until_t_ms,
        "mmsi": s.mmsi,
        "lonlat": list(s.lonlat) if s.lonlat else None,
        "radius_m": s.radius_m,
    }
