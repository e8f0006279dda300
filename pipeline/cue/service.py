"""The cue service: alerts in, PTZ cameras steered, snapshots attached to the alerts.

For every alert event (``shorewatch.alert.v1``, not ``closed``, at or above
``min_severity``) the :class:`~pipeline.cue.arbiter.Arbiter` picks a camera; the service
steers it (``AbsoluteMove`` to the pose :func:`pipeline.core.ptz.aim` computes), waits
until ``GetStatus`` reports the pose reached, takes a snapshot (ONVIF
``GetSnapshotUri``/HTTP), stores it in the evidence store and publishes an ``update`` of
the alert that carries it: the alert's last event with the snapshot's URI added to
``evidence.snapshot_uris`` and a ``{"cue": {...}}`` entry (camera, pose, bearing, range,
times) added to ``evidence.detections``. The update keeps the alert's ``seq`` (the
detector's next event supersedes it) and has its own CloudEvent id
``<alert id>/<seq>/cue/<camera>/<n>`` and ``source`` ``/shorewatch/cue``, which the
service itself skips when it reads the topic. Later updates of the same alert that move
the position re-aim the camera (it follows the target); after ``dwell_s`` without news the
camera goes home (``GotoHomePosition``) and is free again.

A camera that fails (no answer, a fault, not at the pose in time) is reported
``offline`` on ``shorewatch.camera.status.v1``, left alone for ``offline_retry_s``, and
the cue is offered to the next camera; the alert itself is not touched. Locked cameras
(``shorewatch.camera.lock.v1``) are never moved; a lock taken while a camera is cueing
ends the cue where the camera is. Requests no camera can take now wait (highest severity
first) for ``max_wait_s``.

With ``radar`` on, the service also reads ``shorewatch.radar.target.v1`` and the AIS tracks
(``shorewatch.track.v1``, from ``TRACK_LOOKBACK_S`` before its start): radar targets in
``tracking`` state that no AIS track explains (:func:`pipeline.core.radar_fusion.associate_radar`)
are cued as ``radar:<target id>`` at ``radar_severity`` (any alert above it pre-empts
them); their snapshots are stored, and there is no alert to update.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
from aiokafka import AIOKafkaConsumer

from connectors.kafka import RecordProducer
from connectors.onvif import OnvifClient
from pipeline import topics
from pipeline.core.fusion import VesselArrays
from pipeline.core.geo import haversine_m
from pipeline.core.ptz import PtzModel
from pipeline.core.radar_fusion import RadarArrays, associate_radar
from pipeline.cue.arbiter import Arbiter, CueRequest, Decision
from pipeline.cue.locks import behind, partitions, until_of
from pipeline.engine.alerts import iso_utc
from pipeline.errors import CameraError
from pipeline.tasks import cancel_and_wait
from pipeline.vision.evidence import EvidenceStore
from schemas.records import (
    Alert,
    AlertEvidence,
    CameraLock,
    CameraStatus,
    RadarTarget,
    Track,
)

__all__ = ["CUE_SOURCE", "CueService", "CueSettings", "CueTiming"]

log = logging.getLogger(__name__)

CUE_SOURCE = "/shorewatch/cue"
"""CloudEvents ``source`` of the alert updates the cue service publishes."""

_alert_dec = msgspec.json.Decoder(Alert)
_lock_dec = msgspec.json.Decoder(CameraLock)
_track_dec = msgspec.json.Decoder(Track)
_radar_dec = msgspec.json.Decoder(RadarTarget)

TRACK_LOOKBACK_S = 600
"""With radar cueing, AIS tracks of this many seconds before the start are read, s."""


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class CueSettings:
    """How the cue service behaves.

    :param dwell_s: how long a camera stays on a target after its last news, s
    :param min_interval_s: least time between two cues starting on one camera, s
    :param move_timeout_s: longest a move may take to reach its pose, s
    :param tolerance: how close (ONVIF generic units) the pose must come
    :param offline_retry_s: a failed camera is left alone this long, s
    :param max_wait_s: a request no camera can take is dropped after this long, s
    :param follow_m: a later alert event that moved the target this far re-aims, m
    :param min_severity: alerts below this severity are not cued
    :param vessel_length_m: expected vessel length for the zoom, m
    :param fill: wanted fraction of the frame width for the vessel
    :param radar: also cue radar targets that no AIS track explains (``radar:<target id>``)
    :param radar_severity: the severity such a cue has (alerts above it pre-empt it)
    """

    dwell_s: float = 20.0
    min_interval_s: float = 3.0
    move_timeout_s: float = 15.0
    tolerance: float = 0.01
    offline_retry_s: float = 60.0
    max_wait_s: float = 120.0
    follow_m: float = 50.0
    min_severity: int = 0
    vessel_length_m: float = 12.0
    fill: float = 0.3
    radar: bool = False
    radar_severity: int = 20


@dataclass
class CueTiming:
    """One cue that reached its pose and attached a snapshot.

    :param alert_t_ms: when the alert event reached the topic (its record timestamp), ms
    :param pose_t_ms: when ``GetStatus`` reported the pose reached, ms
    :param attached_t_ms: when the broker acknowledged the update with the snapshot, ms
    """

    alert_id: str
    camera_id: str
    alert_t_ms: int
    pose_t_ms: int
    attached_t_ms: int
    snapshot_uri: str

    @property
    def total_s(self) -> float:
        return (self.attached_t_ms - self.alert_t_ms) / 1000.0


@dataclass
class _Cue:
    req: CueRequest
    alert: Alert | None  # None: a radar-only dark target (no alert to update)
    alert_t_ms: int
    task: asyncio.Task | None = None
    news: asyncio.Event = field(default_factory=asyncio.Event)


class CueService:
    """Steers PTZ cameras towards alerts.

    :param cameras: site cameras (:class:`pipeline.site.CameraConfig`) with ``onvif`` and
        ``ptz`` sections; others are ignored
    :param evidence: where snapshots are stored
    :param client_factory: makes an (unconnected) ONVIF client for a camera
    """

    def __init__(
        self,
        cameras: list[Any],
        *,
        bootstrap: str,
        evidence: EvidenceStore,
        settings: CueSettings | None = None,
        client_factory: Callable[[Any], OnvifClient] | None = None,
    ):
        self.settings = settings or CueSettings()
        self.bootstrap = bootstrap
        self.evidence = evidence
        self.cameras = {c.id: c for c in cameras if c.onvif is not None and c.ptz is not None}
        self.arbiter = Arbiter(min_interval_s=self.settings.min_interval_s, fill=self.settings.fill)
        for cid, cam in self.cameras.items():
            self.arbiter.add(cid, PtzModel.from_camera(cam))
        self._factory = client_factory or (
            lambda cam: OnvifClient.for_camera(cam, precise_clock=False)
        )
        self._clients: dict[str, OnvifClient] = {}
        self._cues: dict[str, _Cue] = {}  # by camera id
        self._pending: dict[str, _Cue] = {}  # by alert id
        self._last: dict[str, Alert] = {}  # newest alert event by alert id
        self._tracks: dict[int, Track] = {}  # newest AIS track by MMSI (radar cueing)
        self._n = 0
        self.producer = RecordProducer(bootstrap, client_id="shorewatch-cue")
        self.ready = asyncio.Event()
        #: alert ids whose events the service has handled (tests wait on it)
        self.seen: set[str] = set()
        #: cues that reached their pose and attached a snapshot
        self.timings: list[CueTiming] = []
        #: ``(camera id, reason)`` of every camera failure
        self.failures: list[tuple[str, str]] = []
        self._wake = asyncio.Event()
        #: passes of the pending loop so far (tests wait on it)
        self.rounds = 0

    @property
    def pending(self) -> list[str]:
        """Alert ids waiting for a camera."""
        return list(self._pending)

    # ----------------------------------------------------------------- running
    async def run(self) -> None:
        """Run until cancelled."""
        await self.producer.start()
        alerts = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, client_id="shorewatch-cue"
        )
        locks = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            client_id="shorewatch-cue-locks",
        )
        tasks: list[asyncio.Task] = []
        extra: list[AIOKafkaConsumer] = []
        try:
            await asyncio.wait_for(alerts.start(), 15)
            await asyncio.wait_for(locks.start(), 15)
            await self._follow_locks_until_current(locks)
            a_parts = await partitions(alerts, topics.ALERT.name)
            alerts.assign(a_parts)
            await alerts.seek_to_end(*a_parts)
            for tp in a_parts:  # resolve the positions now, so nothing after ready is missed
                await alerts.position(tp)
            tasks = [
                asyncio.create_task(self._read_alerts(alerts), name="cue-alerts"),
                asyncio.create_task(self._read_locks(locks), name="cue-locks"),
                asyncio.create_task(self._retry_pending(), name="cue-pending"),
            ]
            if self.settings.radar:
                radar = await self._radar_consumer()
                extra.append(radar)
                tasks.append(asyncio.create_task(self._read_radar(radar), name="cue-radar"))
            self.ready.set()
            await asyncio.gather(*tasks)
        finally:
            # cancel until they end: a cancellation lost in a wait_for would hang the stop
            await cancel_and_wait([*tasks, *(c.task for c in self._cues.values() if c.task)])
            for c in self._clients.values():
                await c.close()
            for c in extra:
                with contextlib.suppress(Exception):
                    await c.stop()
            with contextlib.suppress(Exception):
                await alerts.stop()
            with contextlib.suppress(Exception):
                await locks.stop()
            await self.producer.stop()

    async def _follow_locks_until_current(self, consumer: AIOKafkaConsumer) -> None:
        parts = await partitions(consumer, topics.CAMERA_LOCK.name)
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        while await behind(consumer, ends):
            for msgs in (await consumer.getmany(timeout_ms=200)).values():
                for m in msgs:
                    self._apply_lock_record(m.value)

    async def _read_locks(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            for msgs in (await consumer.getmany(timeout_ms=200)).values():
                for m in msgs:
                    self._apply_lock_record(m.value)

    def _apply_lock_record(self, raw: bytes) -> None:
        try:
            rec = _lock_dec.decode(raw)
        except msgspec.DecodeError:
            log.warning("unreadable camera lock record: %r", raw[:80])
            return
        self.apply_lock(rec)

    def apply_lock(self, rec: CameraLock) -> None:
        """Apply an operator lock or release; a lock ends the camera's cue where it is."""
        slot = self.arbiter.slots.get(rec.camera_id)
        if slot is None:
            return
        slot.locked_until_t_ms = until_of(rec)
        if slot.locked(_wall_ms()):
            cue = self._cues.get(rec.camera_id)
            if cue is not None and cue.task is not None:
                log.warning("camera %s locked by %s: cue of %s ends", rec.camera_id, rec.user,
                            cue.req.alert_id)  # fmt: skip
                cue.task.cancel()
                self._pending[cue.req.alert_id] = cue
        self._wake.set()

    async def _read_alerts(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            for msgs in (await consumer.getmany(timeout_ms=200, max_records=500)).values():
                for m in msgs:
                    try:
                        alert = _alert_dec.decode(m.value)
                    except msgspec.DecodeError:
                        continue  # the alert topic's producers validate
                    if alert.source == CUE_SOURCE:
                        continue
                    await self.on_alert(alert, int(m.timestamp))

    async def _retry_pending(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.25):
                    await self._wake.wait()
            self._wake.clear()
            self.rounds += 1
            now = _wall_ms()
            for cue in self.arbiter.pending_order([c.req for c in self._pending.values()]):
                waiting = self._pending.get(cue.alert_id)
                if waiting is None:
                    continue
                if now - cue.t_ms > self.settings.max_wait_s * 1000:
                    log.warning("cue of %s dropped: no camera for %g s", cue.alert_id,
                                self.settings.max_wait_s)  # fmt: skip
                    del self._pending[cue.alert_id]
                    continue
                self._try_start(waiting, now)

    # ----------------------------------------------------------------- radar
    async def _radar_consumer(self) -> AIOKafkaConsumer:
        """Radar targets from now on, and the AIS tracks of the last ``TRACK_LOOKBACK_S``."""
        c = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            client_id="shorewatch-cue-radar",
        )
        await asyncio.wait_for(c.start(), 15)
        r_parts = await partitions(c, topics.RADAR_TARGET.name)
        t_parts = await partitions(c, topics.TRACK.name)
        c.assign([*r_parts, *t_parts])
        await c.seek_to_end(*r_parts)
        since = _wall_ms() - TRACK_LOOKBACK_S * 1000
        offsets = await c.offsets_for_times({tp: since for tp in t_parts})
        for tp in t_parts:
            found = offsets.get(tp)
            if found is not None:
                c.seek(tp, found.offset)
            else:
                await c.seek_to_end(tp)
        for tp in [*r_parts, *t_parts]:
            await c.position(tp)
        return c

    async def _read_radar(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            reports: list[RadarTarget] = []
            for tp, msgs in (await consumer.getmany(timeout_ms=200, max_records=2000)).items():
                for m in msgs:
                    try:
                        if tp.topic == topics.TRACK.name:
                            tr = _track_dec.decode(m.value)
                            if tr.event == "evicted":
                                self._tracks.pop(tr.mmsi, None)
                            else:
                                self._tracks[tr.mmsi] = tr
                        else:
                            reports.append(_radar_dec.decode(m.value))
                    except msgspec.DecodeError:
                        continue
            if reports:
                await self.on_radar(reports, _wall_ms())

    async def on_radar(self, reports: list[RadarTarget], now_ms: int) -> None:
        """Cue the reports no AIS track explains (:func:`associate_radar`); a target still
        being acquired (possibly clutter) or lost is not cued."""
        live = [r for r in reports if r.status == "tracking"]
        if not live:
            return
        trk = list(self._tracks.values())
        v = VesselArrays.from_lists(
            [t.mmsi for t in trk], [t.t_ms for t in trk], [t.lon for t in trk],
            [t.lat for t in trk], [np.nan if t.sog_kn is None else t.sog_kn for t in trk],
            [np.nan if t.cog_deg is None else t.cog_deg for t in trk],
        )  # fmt: skip
        r = RadarArrays.from_lists(
            [x.t_ms for x in live], [x.lon for x in live], [x.lat for x in live],
            [x.position_sigma_m for x in live],
        )  # fmt: skip
        owner = associate_radar(v, r)
        for x, o in zip(live, owner, strict=True):
            if o >= 0:
                continue
            rid = f"radar:{x.target_id}"
            self.seen.add(rid)
            slot = self.arbiter.serving(rid)
            if slot is not None:
                cue = self._cues[slot.camera_id]
                cue.req.lon, cue.req.lat = x.lon, x.lat
                cue.req.position_sigma_m = x.position_sigma_m
                cue.news.set()
                continue
            waiting = self._pending.get(rid)
            req = CueRequest(
                alert_id=rid, severity=self.settings.radar_severity, lon=x.lon, lat=x.lat,
                t_ms=waiting.req.t_ms if waiting else now_ms, position_sigma_m=x.position_sigma_m,
                vessel_length_m=self.settings.vessel_length_m,
            )  # fmt: skip
            cue = _Cue(req, None, waiting.alert_t_ms if waiting else x.rx_t_ms)
            self._pending[rid] = cue
            self._try_start(cue, now_ms)

    # ----------------------------------------------------------------- alerts
    async def on_alert(self, alert: Alert, alert_t_ms: int) -> None:
        """Handle one alert event (``alert_t_ms``: when it reached the topic)."""
        d = alert.data
        self.seen.add(d.alert_id)
        if d.status == "closed":
            self._last.pop(d.alert_id, None)
            self._pending.pop(d.alert_id, None)
            return
        self._last[d.alert_id] = alert
        if d.severity < self.settings.min_severity:
            return
        slot = self.arbiter.serving(d.alert_id)
        if slot is not None:  # follow the target
            cue = self._cues[slot.camera_id]
            moved = float(haversine_m(cue.req.lon, cue.req.lat, d.position.lon, d.position.lat))
            cue.alert = alert
            cue.req.severity = d.severity
            if moved >= self.settings.follow_m:
                cue.req.lon, cue.req.lat = d.position.lon, d.position.lat
            cue.news.set()
            return
        now = _wall_ms()
        req = CueRequest(
            alert_id=d.alert_id,
            severity=d.severity,
            lon=d.position.lon,
            lat=d.position.lat,
            t_ms=now,
            vessel_length_m=self.settings.vessel_length_m,
        )
        waiting = self._pending.get(d.alert_id)
        cue = _Cue(req, alert, waiting.alert_t_ms if waiting else alert_t_ms)
        self._pending[d.alert_id] = cue
        self._try_start(cue, now)

    def _try_start(self, cue: _Cue, now: int) -> bool:
        decision = self.arbiter.decide(cue.req, now)
        if decision.camera_id is None:
            log.info("cue of %s waits: %s", cue.req.alert_id, decision.reason)
            return False
        cid = decision.camera_id
        if decision.preempted is not None:
            old = self._cues.get(cid)
            log.info("cue of %s (severity %d) pre-empts %s on %s", cue.req.alert_id,
                     cue.req.severity, decision.preempted.alert_id, cid)  # fmt: skip
            if old is not None and old.task is not None:
                old.task.cancel()
                self._pending[old.req.alert_id] = old
        self._pending.pop(cue.req.alert_id, None)
        self.arbiter.start(decision, cue.req, now)
        self._cues[cid] = cue
        cue.task = asyncio.create_task(self._cue(cid, cue, decision), name=f"cue-{cid}")
        return True

    # ----------------------------------------------------------------- one cue
    async def _client(self, camera_id: str) -> OnvifClient:
        client = self._clients.get(camera_id)
        if client is None:
            client = self._factory(self.cameras[camera_id])
            client.timeout_s = min(client.timeout_s, 5.0)
            await client.connect()
            self._clients[camera_id] = client
        return client

    async def _steer(self, client: OnvifClient, d: Decision) -> int:
        await client.absolute_move(d.pan, d.tilt, d.zoom)
        await client.wait_for_position(
            d.pan,
            d.tilt,
            d.zoom,
            tolerance=self.settings.tolerance,
            timeout_s=self.settings.move_timeout_s,
        )
        return _wall_ms()

    async def _cue(self, camera_id: str, cue: _Cue, decision: Decision) -> None:
        s = self.settings
        try:
            client = await self._client(camera_id)
            pose_t = await self._steer(client, decision)
            await self._snapshot_update(camera_id, cue, decision, client, pose_t, first=True)
            slot = self.arbiter.slots[camera_id]
            while True:  # follow the target while news comes, then go home
                cue.news.clear()
                try:
                    async with asyncio.timeout(s.dwell_s):
                        await cue.news.wait()
                except TimeoutError:
                    break
                again = self.arbiter.aim_at(slot, cue.req)
                if again.reason == "free" and (
                    abs(again.pan - decision.pan) > s.tolerance
                    or abs(again.tilt - decision.tilt) > s.tolerance
                ):
                    decision = again
                    pose_t = await self._steer(client, decision)
                    await self._snapshot_update(camera_id, cue, decision, client, pose_t)
            await client.goto_home()
        except asyncio.CancelledError:
            raise
        except CameraError as exc:
            await self._camera_failed(camera_id, cue, f"{type(exc).__name__}: {exc}")
        except Exception:  # noqa: BLE001 - one bad cue (evidence store, broker) never stops the rest
            log.exception("cue of %s on %s failed", cue.req.alert_id, camera_id)
        finally:
            if self._cues.get(camera_id) is cue:
                del self._cues[camera_id]
                self.arbiter.release(camera_id, cue.req.alert_id)
                self._wake.set()

    async def _snapshot_update(
        self, camera_id: str, cue: _Cue, d: Decision, client: OnvifClient, pose_t: int,
        *, first: bool = False,
    ) -> None:  # fmt: skip
        jpeg = await client.snapshot_jpeg()
        self._n += 1
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", cue.req.alert_id)[:120]
        uri = await asyncio.to_thread(
            self.evidence.put, f"cue/{camera_id}/{safe}-{self._n}.jpg", jpeg
        )
        if cue.alert is None:  # a radar-only target: the snapshot is kept, nothing to update
            log.info("radar target %s: snapshot %s", cue.req.alert_id, uri)
            if first:
                self.timings.append(
                    CueTiming(cue.req.alert_id, camera_id, cue.alert_t_ms, pose_t, _wall_ms(), uri)
                )
            return
        data = cue.alert.data
        last = self._last.get(data.alert_id, cue.alert)
        if last.data.status == "closed":
            return
        entry = {
            "cue": {
                "camera_id": camera_id, "pan": round(d.pan, 5), "tilt": round(d.tilt, 5),
                "zoom": round(d.zoom, 5), "bearing_deg": round(d.bearing_deg, 3),
                "range_m": round(d.range_m, 1), "pose_t_ms": pose_t, "snapshot_uri": uri,
            }
        }  # fmt: skip
        ev = last.data.evidence
        evidence = AlertEvidence(
            trail=ev.trail,
            detections=[*ev.detections, entry],
            snapshot_uris=[*ev.snapshot_uris, uri],
        )
        data_out = msgspec.structs.replace(last.data, status="update", evidence=evidence)
        update = Alert(
            id=f"{data_out.alert_id}/{data_out.seq}/cue/{camera_id}/{self._n}",
            source=CUE_SOURCE,
            type=last.type,
            time=iso_utc(_wall_ms()),
            subject=last.subject,
            data=data_out,
        )
        await self.producer.send_and_wait(topics.ALERT, data_out.alert_id, update)
        self._last[data.alert_id] = msgspec.structs.replace(last, data=data_out)
        if first:
            self.timings.append(
                CueTiming(data.alert_id, camera_id, cue.alert_t_ms, pose_t, _wall_ms(), uri)
            )

    async def _camera_failed(self, camera_id: str, cue: _Cue, reason: str) -> None:
        log.warning("camera %s failed during the cue of %s: %s", camera_id, cue.req.alert_id,
                    reason)  # fmt: skip
        self.failures.append((camera_id, reason))
        slot = self.arbiter.slots[camera_id]
        now = _wall_ms()
        slot.offline_until_t_ms = now + self.settings.offline_retry_s * 1000
        client = self._clients.pop(camera_id, None)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()
        status = CameraStatus(camera_id=camera_id, t_ms=now, status="offline", reason=reason[:300])
        with contextlib.suppress(Exception):
            await self.producer.send_and_wait(topics.CAMERA_STATUS, camera_id, status)
        self._pending[cue.req.alert_id] = cue  # another camera may take it
