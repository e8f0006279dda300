"""The state of one area: its context (site geometry, thresholds) and the per-area picture of vessels, camera targets and alert episodes."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from pipeline.core.detectors import DetectorSettings, Thresholds
from pipeline.core.fusion import FusionParams
from pipeline.core.geo import AreaGeometry
from schemas.records import (
    AlertData,
    CameraFrame,
    RadarTarget,
    Track,
    VesselIdentity,
)


# =========================================================================== area
@dataclass(frozen=True)
class AreaContext:
    """Everything fixed about one area (site) that :func:`area_step` needs.

    :param site: site name (the area key)
    :param geometry: coastline, land and authorised zones
    :param cameras: camera models by camera id (``CameraModel``, duck-typed)
    :param thresholds: detector thresholds (the site's, by field and by detector name)
    :param source: CloudEvents ``source`` of the alerts (default ``shorewatch/<site>``)
    :param fusion: association parameters
    :param bbox: ``(lon_min, lat_min, lon_max, lat_max)`` of the site, degrees, or ``None``
    :param ais_partitions: the AIS inputs the area waits for: watermarks of partitions
        ``0 .. ais_partitions - 1`` (the ``ais.fixes`` partitions; 1 for replay)
    :param camera_disorder_ms: how far a camera's frames may come out of event-time
        order, ms (its watermark is its newest frame time minus this)
    :param camera_idle_ms: a camera whose watermark trails the most advanced camera's by
        more than this is quiet (offline) and no longer holds the area back, ms of event
        time (see :mod:`pipeline.engine.watermarks`)
    :param detectors: the site's detector settings (which detectors are off; the
        thresholds they set are already in ``thresholds``)
    """

    site: str
    geometry: AreaGeometry
    cameras: Mapping[str, Any] = field(default_factory=dict)
    thresholds: Thresholds = field(default_factory=Thresholds)
    source: str = ""
    fusion: FusionParams = field(default_factory=FusionParams)
    bbox: tuple[float, float, float, float] | None = None
    ais_partitions: int = 1
    camera_disorder_ms: int = 500
    camera_idle_ms: int = 30_000
    detectors: DetectorSettings = field(default_factory=DetectorSettings)

    def __post_init__(self) -> None:
        if not self.source:
            object.__setattr__(self, "source", f"shorewatch/{self.site}")

    @classmethod
    def from_site(
        cls,
        site: Any,
        fusion: FusionParams | None = None,
        *,
        ais_partitions: int = 1,
        camera_disorder_ms: int = 500,
        camera_idle_ms: int = 30_000,
    ) -> AreaContext:
        """From a :class:`pipeline.site.Site`; the inputs' parameters as in the class (the
        defaults suit replay).

        :raises ConfigError: on unknown or malformed thresholds or detector settings
        """
        detectors = DetectorSettings.from_dict(getattr(site, "detectors", None))
        return cls(
            ais_partitions=int(ais_partitions),
            camera_disorder_ms=int(camera_disorder_ms),
            camera_idle_ms=int(camera_idle_ms),
            site=site.name,
            geometry=site.geometry(),
            cameras={c.id: c.model() for c in site.cameras},
            thresholds=detectors.apply(site.thresholds),
            detectors=detectors,
            fusion=fusion or FusionParams(),
            bbox=tuple(site.bbox) if getattr(site, "bbox", None) is not None else None,
        )

    @functools.cached_property
    def fingerprint(self) -> str:
        """Digest of the geometry, thresholds and detector settings: states built with
        others drop their caches."""
        h = hashlib.sha256()
        g = self.geometry
        h.update(np.ascontiguousarray(g.coast_segments, dtype=np.float64).tobytes())
        for r in g.land_rings:
            h.update(np.ascontiguousarray(r, dtype=np.float64).tobytes())
        for z in g.zones:
            h.update(repr((z.name, z.kind, z.center_lonlat, z.radius_m)).encode())
            if z.ring_lonlat is not None:
                h.update(np.ascontiguousarray(z.ring_lonlat, dtype=np.float64).tobytes())
        h.update(repr(self.thresholds).encode())
        if self.detectors != DetectorSettings():  # digests of sites without them unchanged
            h.update(self.detectors.fingerprint().encode())
        return h.hexdigest()[:16]

    def contains(self, lon: float, lat: float) -> bool:
        """Whether a position is inside the site's bbox (always true without one)."""
        if self.bbox is None:
            return True
        x0, y0, x1, y1 = self.bbox
        return x0 <= lon <= x1 and y0 <= lat <= y1


class _Vessel(msgspec.Struct, kw_only=True):
    track: Track
    trail: list[list[float]] = msgspec.field(default_factory=list)
    detections: list[dict[str, Any]] = msgspec.field(default_factory=list)
    uris: list[str] = msgspec.field(default_factory=list)
    jump_first_t_ms: int = -1
    jump_last_t_ms: int = -1
    jump_speed_kn: float = 0.0
    geo: list[float] = msgspec.field(default_factory=list)


class _Target(msgspec.Struct, kw_only=True):
    camera_id: str
    track_id: int
    first_t_ms: int
    t_ms: int
    hits: int = 0
    mmsi: int = -1
    unmatched_since_t_ms: int = -1
    lon: float | None = None
    lat: float | None = None
    anchor_lon: float | None = None
    anchor_lat: float | None = None
    anchor_t_ms: int = -1
    ever_matched: bool = False
    last_mmsi: int = -1
    hull_number: str | None = None
    hull_confidence: float = 0.0
    hit_t_ms: list[int] = msgspec.field(default_factory=list)
    confirmed_t_ms: int = -1
    anchor_solid: bool = False
    pos_sigma_m: float = -1.0
    continues: str = ""
    geo: list[float] = msgspec.field(default_factory=list)
    trail: list[list[float]] = msgspec.field(default_factory=list)
    detections: list[dict[str, Any]] = msgspec.field(default_factory=list)
    uris: list[str] = msgspec.field(default_factory=list)
    fused: str = ""
    subject: str = ""
    fuse_pending: str = ""
    fuse_n: int = 0
    match_run: int = 0
    match_best: int = 0


class _Episode(msgspec.Struct, kw_only=True):
    alert_id: str
    kind: str
    subject: str
    start_t_ms: int
    seq: int = 0
    severity: int = 0
    factor_names: list[str] = msgspec.field(default_factory=list)
    false_since_t_ms: int = -1
    last: AlertData | None = None


class AreaState(msgspec.Struct, kw_only=True):
    """Everything one area needs between batches; serialisable with msgspec (MessagePack).

    Bounded: trails keep :attr:`Thresholds.trail_max_points`; vessels, camera targets and
    pairs are forgotten after their idle limits.

    :param context: :attr:`AreaContext.fingerprint` of the context the caches were built with
    :param first_t_ms: event time of the area's first input, ms UTC (-1: none)
    :param watermark_t_ms: largest event time seen, ms UTC (-1: none)
    :param tick: the tick (``t_ms // eval_tick``) holding input not yet evaluated (-1: none)
    :param vessels: AIS vessels by MMSI: last track, trail, matched detections
    :param targets: camera targets by ``<camera>:<track id>`` (of their first track id)
    :param aliases: later camera track ids stitched onto an earlier target (id switches)
    :param assoc: association state per camera (:meth:`CameraAssociation.to_state`)
    :param cam_t_ms: time of the last frame per camera
    :param unseen: ``<camera>:<mmsi>`` -> ``[since, last]`` AIS vessels a camera does not see
    :param pairs: rendezvous pair key -> ``[first seen close, last seen close]``, ms
    :param met_t_ms: subject -> last time it was in a rendezvous
    :param episodes: open alert episodes by ``<kind>|<subject>``
    :param counters: cumulative counts (skipped frames, invalid detections, late input, ...)
    :param held_tracks: track updates not yet released: not older than the area's
        watermark (see :mod:`pipeline.engine.watermarks`)
    :param held_frames: the same, camera frames
    :param ais_marks: watermark of each AIS input (``ais.fixes`` partition), ms UTC
    :param cam_marks: newest frame time received from each camera, ms UTC
    :param start_t_ms: event time of the first input (track update or frame) the area
        took in, ms UTC (-1: none); cameras not heard from yet count from it
    :param released_t_ms: the area's watermark: every input older than it has been
        applied and every evaluation time up to it made, ms UTC (-1: none)
    :param evaluated_t_ms: event time of the last evaluation of the detectors, ms UTC
    :param held_radar: radar reports not yet released (:mod:`pipeline.engine.radar_area`)
    :param radar_marks: newest report time received from each radar, ms UTC
    :param identities: what the vessel registry says about the area's MMSIs, as the driver
        resolved them (:mod:`pipeline.engine.identity`)
    :param hull_identities: the same about the hull numbers cameras read on targets
    :param cam_period_ms: frame interval of each camera, ms (:mod:`pipeline.engine.confirm`)
    :param cam_behind: cameras the camera path last reported behind (frames waiting unread
        in a backlog, :class:`~schemas.records.CameraBacklog`): never counted offline
    """

    version: int = 1
    context: str = ""
    first_t_ms: int = -1
    watermark_t_ms: int = -1
    tick: int = -1
    vessels: dict[int, _Vessel] = msgspec.field(default_factory=dict)
    targets: dict[str, _Target] = msgspec.field(default_factory=dict)
    aliases: dict[str, str] = msgspec.field(default_factory=dict)
    assoc: dict[str, dict[str, list[Any]]] = msgspec.field(default_factory=dict)
    cam_t_ms: dict[str, int] = msgspec.field(default_factory=dict)
    unseen: dict[str, list[int]] = msgspec.field(default_factory=dict)
    pairs: dict[str, list[int]] = msgspec.field(default_factory=dict)
    met_t_ms: dict[str, int] = msgspec.field(default_factory=dict)
    episodes: dict[str, _Episode] = msgspec.field(default_factory=dict)
    counters: dict[str, int] = msgspec.field(default_factory=dict)
    held_tracks: list[Track] = msgspec.field(default_factory=list)
    held_frames: list[CameraFrame] = msgspec.field(default_factory=list)
    ais_marks: dict[int, int] = msgspec.field(default_factory=dict)
    cam_marks: dict[str, int] = msgspec.field(default_factory=dict)
    start_t_ms: int = -1
    released_t_ms: int = -1
    evaluated_t_ms: int = -1
    held_radar: list[RadarTarget] = msgspec.field(default_factory=list)
    radar_marks: dict[str, int] = msgspec.field(default_factory=dict)
    identities: dict[int, VesselIdentity] = msgspec.field(default_factory=dict)
    hull_identities: dict[str, VesselIdentity] = msgspec.field(default_factory=dict)
    cam_period_ms: dict[str, int] = msgspec.field(default_factory=dict)
    cam_behind: list[str] = msgspec.field(default_factory=list)

    def to_bytes(self) -> bytes:
        """MessagePack bytes (msgspec; never pickle)."""
        return _state_enc.encode(self)

    @classmethod
    def from_bytes(cls, raw: bytes) -> AreaState:
        """Inverse of :meth:`to_bytes`."""
        return _state_dec.decode(raw)

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n


_state_enc = msgspec.msgpack.Encoder()

_state_dec = msgspec.msgpack.Decoder(AreaState)


def _trim_trail(trail: list[list[float]], th: Thresholds) -> None:
    if len(trail) > th.trail_max_points:
        del trail[: len(trail) - th.trail_max_points]
    if trail:
        oldest = trail[-1][2] - th.trail_max_age_s * 1000.0
        k = 0
        while k < len(trail) and trail[k][2] < oldest:
            k += 1
        if k:
            del trail[:k]


def _push_unique(items: list[str], value: str | None, limit: int = 5) -> None:
    if value and value not in items:
        items.append(value)
        if len(items) > limit:
            del items[0]
