"""Record types of every Shorewatch topic, one :class:`msgspec.Struct` per topic value.

The JSON Schema (draft 2020-12) of each record lives next to this module as
``<topic>.json`` and is what non-Python consumers read. ``tests/test_schemas.py``
checks that every record the code produces validates against its schema and that a
published ``v1`` schema never changes in a way that breaks existing consumers.

Conventions (``../shared/DESIGN.md`` §4):

- times are integers in milliseconds since the Unix epoch, UTC (``*_t_ms``); alert
  times are ISO 8601 strings with ``Z`` as CloudEvents requires;
- coordinates are WGS84 degrees, ``lon`` before ``lat`` in arrays;
- AIS "not available" values (lat 91, lon 181, SOG 102.3, COG 360, heading 511)
  are ``None``, never numbers;
- units are in the field names (``sog_kn``, ``cog_deg``, ``range_m``).

The records of the AIS hot path (raw batches, positions, statics, fix batches, tracks)
hold only scalars, text and lists of those, never a reference cycle, so they are not
tracked by the cycle collector (``gc=False``): a worker creates hundreds of thousands a
second.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "AisPosition",
    "AisStatic",
    "Alert",
    "AlertAction",
    "AlertData",
    "AlertEvidence",
    "AlertFactor",
    "AlertVessel",
    "AlertZone",
    "CameraDetection",
    "CameraEvent",
    "CameraFrame",
    "CameraLock",
    "CameraStatus",
    "DeadLetter",
    "FixColumns",
    "FusionInput",
    "GeoPoint",
    "LandingSiteFinding",
    "RadarTarget",
    "RawAisBatch",
    "RegistryRecord",
    "Track",
    "VesselIdentity",
    "Watermark",
    "WatchlistHit",
]


class RawAisBatch(msgspec.Struct, kw_only=True, gc=False):
    """A micro-batch of raw lines from one AIS source (topic ``shorewatch.ais.raw.v1``).

    Key: ``source``. Lines keep the order in which the source sent them, so
    multi-sentence messages are reassembled per source.

    :param source: source id, e.g. ``tcp:127.0.0.1:4001`` or ``file:dma.txt``
    :param lines: raw lines without line terminators, as received
    :param rx_t_ms: receive time of each line, ms since epoch UTC (same length as ``lines``)
    :param prefix: what the source writes before a sentence or tag block: ``auto``
        (detect a receive time, else strip), ``strip`` (ignore it), ``none`` (nothing
        allowed: such a line is rejected) or a time format (``iso``, ``epoch_s``,
        ``epoch_ms``, or ``strftime`` codes such as ``%Y-%m-%d %H:%M:%S``), see
        :mod:`pipeline.core.nmea_prefix`
    :param prefix_tz: time zone of prefix times that carry none (``UTC``, ``+08:00``, an
        IANA name such as ``Asia/Shanghai``)
    """

    source: str
    lines: list[str]
    rx_t_ms: list[int]
    prefix: str = "auto"
    prefix_tz: str = "UTC"


class AisPosition(msgspec.Struct, kw_only=True, omit_defaults=False, gc=False):
    """One decoded position report, types 1, 2, 3, 18, 19, 27 (``shorewatch.ais.position.v1``).

    Key: ``mmsi`` as decimal text.

    :param t_ms: event time (tag block ``c:``, ``$PGHP``, trailing epoch, else receive time), ms UTC
    :param sog_kn: speed over ground in knots, ``None`` when not available
    :param cog_deg: course over ground in degrees true, ``None`` when not available
    :param heading_deg: true heading in degrees, ``None`` when not available
    :param accuracy: position accuracy flag (``True`` = high, < 10 m)
    """

    mmsi: int
    msg_type: int
    t_ms: int
    lon: float | None
    lat: float | None
    sog_kn: float | None
    cog_deg: float | None
    heading_deg: int | None
    nav_status: int | None
    accuracy: bool
    source: str
    rx_t_ms: int


class AisStatic(msgspec.Struct, kw_only=True, gc=False):
    """Static and voyage data, types 5, 19, 24 (``shorewatch.ais.static.v1``). Key: ``mmsi``.

    Fields absent from the message (e.g. type 24 part A carries only the name) are ``None``.
    Dimensions are metres from the reference point.
    """

    mmsi: int
    msg_type: int
    t_ms: int
    source: str
    name: str | None = None
    call_sign: str | None = None
    imo: int | None = None
    ship_type: int | None = None
    to_bow_m: int | None = None
    to_stern_m: int | None = None
    to_port_m: int | None = None
    to_starboard_m: int | None = None
    destination: str | None = None
    draught_m: float | None = None


MmsiKind = Literal[
    "ship",
    "coast_station",
    "group_of_ships",
    "sar_aircraft",
    "craft_associated",
    "aton",
    "sart",
    "mob",
    "epirb",
    "invalid",
]


class Track(msgspec.Struct, kw_only=True, gc=False):
    """The state of one vessel track after an update (``shorewatch.track.v1``). Key: ``mmsi``.

    :param t_ms: event time of the last fix, ms UTC
    :param vel_east_mps: smoothed eastward velocity, m/s
    :param vel_north_mps: smoothed northward velocity, m/s
    :param expected_interval_s: ITU-R M.1371 report interval for the class and speed, s
    :param last_gap_s: time between the last two fixes, s
    :param max_gap_s: longest gap seen on this track, s
    :param mmsi_kind: ITU-R M.585 class of the MMSI
    :param flags: identity and quality flags, e.g. ``no_name``, ``no_call_sign``, ``invalid_mid``
    :param event: ``update`` for a new fix, ``evicted`` when the track is dropped after idling
    :param first_t_ms: time of the track's first fix, ms UTC
    :param stopped_since_t_ms: start of the current run of fixes below 0.5 kn, ms UTC
        (``None``: moving)
    :param slow_since_t_ms: start of the current run of fixes below 2 kn, ms UTC
    :param implied_speed_kn: implied speed (distance over time) from the previous fix, knots
    :param jump_t_ms: time of the first fix folded into this update whose implied speed
        exceeded the track limit, ms UTC (``None``: no jump)
    :param jump_speed_kn: that implied speed, knots
    :param identity_change_t_ms: time the name or call sign first changed, ms UTC
    """

    mmsi: int
    t_ms: int
    lon: float
    lat: float
    sog_kn: float | None
    cog_deg: float | None
    heading_deg: int | None
    vel_east_mps: float
    vel_north_mps: float
    ais_class: Literal["A", "B", "other"]
    n_fixes: int
    expected_interval_s: float
    last_gap_s: float | None
    max_gap_s: float
    mmsi_kind: MmsiKind
    mid: int | None
    name: str | None = None
    call_sign: str | None = None
    imo: int | None = None
    ship_type: int | None = None
    length_m: float | None = None
    beam_m: float | None = None
    flags: list[str] = msgspec.field(default_factory=list)
    event: Literal["update", "evicted"] = "update"
    # Event-time marks that keep detectors independent of how fixes were batched
    # (one Track is published per MMSI per batch, so intermediate fixes are folded in):
    first_t_ms: int | None = None
    stopped_since_t_ms: int | None = None
    slow_since_t_ms: int | None = None
    implied_speed_kn: float | None = None
    jump_t_ms: int | None = None
    jump_speed_kn: float | None = None
    identity_change_t_ms: int | None = None


class CameraDetection(msgspec.Struct, kw_only=True):
    """One detected object in a frame, geo-referenced.

    :param track_id: camera track id, stable across frames of one camera
    :param box_px: ``[x, y, w, h]`` in pixels of the frame the detector saw
    :param bearing_deg: bearing from the camera, degrees true
    :param bearing_sigma_deg: one-sigma bearing uncertainty, degrees
    :param range_m: range along the sea surface, m; ``None`` when the ray misses the sea
    :param range_sigma_m: one-sigma range uncertainty, m
    :param beyond_horizon: the box's waterline ray does not meet the sea surface
    :param hull_number: the hull number (舷号) read from the crop, normalised and valid
        (``None``: not read, or OCR that follows no hull-number pattern)
    :param hull_confidence: the OCR's confidence in that reading, 0–1
    """

    track_id: int
    box_px: list[float]
    cls: str
    confidence: float
    bearing_deg: float
    bearing_sigma_deg: float
    range_m: float | None
    range_sigma_m: float | None
    lon: float | None
    lat: float | None
    beyond_horizon: bool = False
    crop_uri: str | None = None
    hull_number: str | None = None
    hull_confidence: float | None = None


class CameraFrame(msgspec.Struct, kw_only=True):
    """All detections of one analysed frame (``shorewatch.camera.detection.v1``). Key: ``camera_id``.

    A frame with no detections is still published: it tells fusion the camera was
    looking and saw nothing.

    :param t_ms: frame event time (camera clock corrected by the measured offset), ms UTC
    :param heading_deg: camera heading at that frame (PTZ applied), degrees true
    :param hfov_deg: horizontal field of view at that frame, degrees
    :param masked_detections: detections left out because they lay on a fixed structure
        outlined in the camera's ``structures`` (bridge, pier, tower), count
    """

    camera_id: str
    t_ms: int
    image_width: int
    image_height: int
    heading_deg: float
    hfov_deg: float
    detections: list[CameraDetection]
    evidence_uri: str | None = None
    masked_detections: int = 0


class CameraEvent(msgspec.Struct, kw_only=True):
    """An analytics event from a camera (``shorewatch.camera.event.v1``). Key: ``camera_id``.

    :param topic: the ONVIF topic, e.g. ``tns1:RuleEngine/LineDetector/Crossed``
    :param kind: normalised kind
    :param rule: rule name from the event's source items, if any
    :param state: the boolean state item (``IsMotion``, ``IsInside``), if any
    :param items: every simple item of the event, as text
    """

    camera_id: str
    t_ms: int
    topic: str
    kind: Literal["line_crossed", "field_inside", "motion", "object", "other"]
    rule: str | None = None
    state: bool | None = None
    items: dict[str, str] = msgspec.field(default_factory=dict)


class CameraStatus(msgspec.Struct, kw_only=True):
    """Health of one camera (``shorewatch.camera.status.v1``). Key: ``camera_id``.

    :param t_ms: time of this report, ms UTC
    :param fps: measured frame rate over the last reporting window, frames/s
    :param clock_offset_ms: camera clock minus local clock, ms (``GetSystemDateAndTime``)
    :param frames_seen: frames the adaptive analysis looked at (change test) since the start
    :param frames_analysed: frames of those that went to the detector since the start
    :param frames_behind: frames never looked at because the analysis was behind, since
        the start (the status is ``degraded`` with reason ``analysis_behind`` while it grows)
    :param analysis_mode: the analysis rate in force: ``quiet`` (keep-alive), ``change``,
        ``target_near``, ``cue`` or ``fixed_rate`` (adaptive analysis off)
    :param analysed_by_reason: ``frames_analysed`` by reason (``start``, ``cue``,
        ``target_near``, ``change``, ``keepalive``, ``fixed_rate``)
    """

    camera_id: str
    t_ms: int
    status: Literal["online", "offline", "degraded"]
    reason: str | None = None
    fps: float | None = None
    last_frame_t_ms: int | None = None
    clock_offset_ms: int | None = None
    frames_seen: int | None = None
    frames_analysed: int | None = None
    frames_behind: int | None = None
    analysis_mode: str | None = None
    analysed_by_reason: dict[str, int] | None = None


class DeadLetter(msgspec.Struct, kw_only=True):
    """A rejected input, kept with its raw bytes (``shorewatch.deadletter.v1``). Key: ``source``.

    :param stage: where it was rejected, e.g. ``ais.frame``, ``ais.decode``, ``camera.frame``
    :param reason: a short machine-readable code, e.g. ``bad_checksum``
    :param detail: a human-readable explanation
    :param raw_b64: the raw input, base64
    :param rx_t_ms: receive time, ms UTC
    """

    source: str
    stage: str
    reason: str
    detail: str
    raw_b64: str
    rx_t_ms: int


class GeoPoint(msgspec.Struct):
    lat: float
    lon: float


class AlertFactor(msgspec.Struct):
    """One contribution to an alert's severity.

    :param weight: points added to the severity (0–100 scale)
    """

    name: str
    weight: float
    explanation: str


class AlertVessel(msgspec.Struct, kw_only=True):
    """The vessel an alert is about.

    :param registry: its record in the vessel registry, when it has one
    :param watchlist: the active watchlist entries it matches
    """

    mmsi: int | None
    name: str | None
    dark: bool
    track_id: str
    registry: RegistryRecord | None = None
    watchlist: list[WatchlistHit] = msgspec.field(default_factory=list)


class AlertZone(msgspec.Struct, kw_only=True):
    """The nearest authorised zone, and the distance to the coastline."""

    name: str | None
    kind: str | None
    distance_m: float | None
    coast_distance_m: float | None = None


class AlertEvidence(msgspec.Struct, kw_only=True):
    """What the alert rests on.

    :param trail: ``[[lon, lat, t_ms], ...]``, oldest first
    """

    trail: list[list[float]] = msgspec.field(default_factory=list)
    detections: list[dict[str, Any]] = msgspec.field(default_factory=list)
    snapshot_uris: list[str] = msgspec.field(default_factory=list)


AlertKind = Literal[
    "unusual_landing",
    "dark_approach",
    "dark_vessel",
    "rendezvous",
    "loitering",
    "identity_anomaly",
    "impossible_speed",
    "ais_not_seen",
    "landing_site",
    "cloned_mmsi",
    "outside_home_harbour",
]


class AlertData(msgspec.Struct, kw_only=True):
    """The ``data`` of an alert CloudEvent.

    :param severity: 0–100, the sum of the factors' weights clipped to that range
    :param event_time: when the condition became true, ISO 8601 UTC
    :param landing_site: the finding, on alerts of kind ``landing_site`` only
    """

    alert_id: str
    kind: AlertKind
    status: Literal["open", "update", "closed"]
    severity: int
    factors: list[AlertFactor]
    event_time: str
    position: GeoPoint
    vessel: AlertVessel
    zone: AlertZone
    evidence: AlertEvidence
    site: str
    seq: int = 0
    landing_site: LandingSiteFinding | None = None


ALERT_DATASCHEMA = "https://shorewatch.org/schemas/shorewatch.alert.v1.json#/$defs/AlertData"
"""The CloudEvents ``dataschema`` of alerts: the ``data`` part of the topic's JSON Schema."""


class Alert(msgspec.Struct, kw_only=True):
    """An alert as a CloudEvents 1.0 structured-mode JSON event (``shorewatch.alert.v1``).

    Key: ``data.alert_id``, so every update of one alert stays on one partition, in order.
    ``id`` is unique per event (``<alert_id>/<seq>``); ``type`` is
    ``org.shorewatch.alert.<kind>``. On Kafka the record carries the header
    ``content-type: application/cloudevents+json`` (the binding's structured mode).

    :param dataschema: URI of the JSON Schema of ``data``
    :param partitionkey: the Partitioning extension: the Kafka key, ``data.alert_id``
        (filled in from ``data`` when not given)
    """

    id: str
    source: str
    type: str
    time: str
    data: AlertData
    specversion: str = "1.0"
    datacontenttype: str = "application/json"
    subject: str | None = None
    dataschema: str = ALERT_DATASCHEMA
    partitionkey: str | None = None

    def __post_init__(self) -> None:
        if self.partitionkey is None:
            self.partitionkey = self.data.alert_id


class FixColumns(msgspec.Struct, kw_only=True, gc=False):
    """Internal: the decoded AIS of one decode micro-batch that falls on one partition
    (``shorewatch.ais.fixes.v2``), from the decode agent to the tracks agent.

    Every MMSI in the record hashes (Kafka's murmur2 of its decimal text) to the
    partition the record is written to, the same partition ``ais.position`` and the
    track table use for it. Key: the first MMSI's decimal text. The position reports
    travel as packed rows, not as JSON objects: the tracks agent reads them with one
    ``numpy.frombuffer`` instead of decoding thousands of objects.

    :param n: number of position reports
    :param positions: ``n`` rows of 63 bytes, little-endian, packed (base64 in JSON):
        ``mmsi`` int64, ``t_ms`` int64 (event time, ms UTC), ``rx_t_ms`` int64 (receive
        time, ms UTC), ``lon``, ``lat`` float64 (degrees), ``sog_kn`` float64 (knots),
        ``cog_deg`` float64 (degrees true), ``heading_deg`` int16 (degrees true),
        ``msg_type`` uint8, ``nav_status`` int8, ``accuracy`` uint8 (0/1),
        ``source_idx`` uint16 (index into ``sources``); NaN floats and -1 heading or
        status are "not available", as ``null`` in ``shorewatch.ais.position.v1``
    :param sources: the source ids the rows refer to
    :param statics: static reports, arrival order
    :param partition: the ``ais.fixes`` partition the record is written to (-1: not
        stated, a record of an older release)
    :param t_ms: the decode stage's progress: the newest event time of the decode
        micro-batch the record comes from, ms UTC (-1: not stated). The decode agent writes
        a record to every partition for every micro-batch, an empty one (``n`` 0) where no
        fix of the batch falls, so each partition carries the AIS path's progress in order
        with its fixes (see :class:`Watermark`)
    """

    n: int
    positions: bytes
    sources: list[str] = msgspec.field(default_factory=list)
    statics: list[AisStatic] = msgspec.field(default_factory=list)
    partition: int = -1
    t_ms: int = -1


class FusionInput(msgspec.Struct, kw_only=True):
    """Internal: a track update, a camera frame, a watermark, a radar target report or a
    camera backlog report re-keyed by area (``shorewatch.fusion.input.v1``). Key:
    ``area``. Exactly one of ``track``, ``frame``, ``watermark``, ``radar`` and
    ``backlog`` is set."""

    area: str
    track: Track | None = None
    frame: CameraFrame | None = None
    watermark: Watermark | None = None
    radar: RadarTarget | None = None
    backlog: CameraBacklog | None = None


class LandingSiteFinding(msgspec.Struct, kw_only=True):
    """A place used for stops on several nights (``data.landing_site`` of an alert of kind
    ``landing_site``): outside every authorised zone, near the shore.

    :param finding_id: stable id of the place (``landing_site:<site>:<lon>:<lat>``)
    :param lon: centre longitude, degrees
    :param lat: centre latitude, degrees
    :param radius_m: distance from the centre to the farthest stop, m
    :param nights: the local dates (``YYYY-MM-DD``, of the evening) with a stop there
    :param mmsis: vessels (AIS) that stopped there
    :param camera_targets: camera targets without AIS that stopped there (``cam:<camera>:<track>``)
    :param visits: stops there in the window
    :param dark_visits: of which by a target without AIS
    :param alert_ids: alerts raised within the place in the window
    :param window_start: start of the window searched, ISO 8601 UTC
    :param window_end: end of the window searched, ISO 8601 UTC
    """

    finding_id: str
    lon: float
    lat: float
    radius_m: float
    nights: list[str]
    mmsis: list[int]
    camera_targets: list[str]
    visits: int
    dark_visits: int
    alert_ids: list[str]
    window_start: str
    window_end: str


AlertActionKind = Literal[
    "acknowledge",
    "start",
    "assign",
    "escalate",
    "resolve",
    "dismiss",
    "comment",
    "silence",
    "reopen",
]


class AlertAction(msgspec.Struct, kw_only=True):
    """One operator decision on an alert (``shorewatch.alert.action.v1``). Key: ``alert_id``
    (the silenced vessel or place for a ``silence`` without an alert).

    The operator workflow is separate from the detector's ``open/update/closed``: it
    follows IMO Bridge Alert Management, ``new → acknowledged → in_progress → resolved``
    (or ``dismissed``), with escalation of unacknowledged high-severity alerts.

    :param action_id: unique id of this action (idempotent replays keep it)
    :param t_ms: when the operator acted, ms UTC (wall clock of the console)
    :param user: user name of the operator
    :param role: the operator's role when acting: ``viewer``, ``operator`` or ``supervisor``
    :param assignee: ``assign``: the user now responsible
    :param reason: ``dismiss``: a code from the console's list (``false_alarm``,
        ``authorised_activity``, ``duplicate``, ``sensor_fault``, ``other``)
    :param text: free text (comment, dismissal note, escalation note)
    :param silence_until_t_ms: ``silence``: end of the silence, ms UTC
    :param silence_mmsi: ``silence``: the vessel silenced
    :param silence_lonlat: ``silence``: centre of the place silenced, ``[lon, lat]`` degrees
    :param silence_radius_m: ``silence``: radius of the place silenced, m
    """

    action_id: str
    alert_id: str
    action: AlertActionKind
    t_ms: int
    user: str
    role: Literal["viewer", "operator", "supervisor"]
    site: str
    assignee: str | None = None
    reason: str | None = None
    text: str | None = None
    silence_until_t_ms: int | None = None
    silence_mmsi: int | None = None
    silence_lonlat: list[float] | None = None
    silence_radius_m: float | None = None


class Watermark(msgspec.Struct, kw_only=True, gc=False):
    """Internal: the progress in event time of one input of an area, inside
    :class:`FusionInput`: no more input of that path (and partition) older than ``t_ms``
    will come, except input counted as late.

    The tracks agent sends one per ``ais.fixes`` partition it has advanced after each
    micro-batch: the newest event time it has processed on that partition minus the
    allowed AIS disorder (``ais_disorder_ms``). Camera frames need none: a camera's frames
    arrive in order, so each frame is its camera's progress.

    :param path: the input path (``ais``: track updates from the tracks agent)
    :param partition: the ``ais.fixes`` partition whose progress this is
    :param t_ms: the watermark, ms UTC
    """

    path: Literal["ais"] = "ais"
    partition: int = 0
    t_ms: int


class RadarTarget(msgspec.Struct, kw_only=True, gc=False):
    """One radar target report, geo-located (``shorewatch.radar.target.v1``). Key: ``radar_id``.

    From an NMEA 0183 ``TTM`` (range and bearing from the antenna, converted with the
    radar's position in the site's ``radars.yaml``) or ``TLL`` (the radar's own
    latitude/longitude) sentence, or an ASTERIX CAT 010 target report (``sentence``
    ``CAT010``; :mod:`pipeline.engine.asterix`).

    :param target_id: ``<radar_id>:<target_number>``, stable while the radar tracks it
    :param t_ms: event time: the sentence's UTC time of day dated from the receive time
        (the receive time when the sentence has none), ms UTC
    :param rx_t_ms: receive time, ms UTC
    :param range_m: range from the antenna, m
    :param bearing_deg: bearing from the antenna, degrees true
    :param speed_kn: target speed, knots (``TTM``, ``CAT010``)
    :param course_deg: target course, degrees true (``TTM``, ``CAT010``)
    :param position_sigma_m: one-sigma horizontal position error, m: the radar's range
        error and ``range × bearing error`` combined, so it grows with range
    :param status: ``tracking`` (T), ``acquiring`` (Q) or ``lost`` (L)
    :param cpa_m: distance of the closest point of approach to the radar, m
    :param tcpa_min: time to the CPA, minutes
    :param acquisition: ``auto`` (A) or ``manual`` (M) acquisition
    :param reference: the radar uses this target as a reference target
    """

    radar_id: str
    target_id: str
    target_number: int
    sentence: Literal["TTM", "TLL", "CAT010"]
    t_ms: int
    rx_t_ms: int
    lon: float
    lat: float
    range_m: float
    bearing_deg: float
    position_sigma_m: float
    status: Literal["tracking", "acquiring", "lost"]
    source: str
    speed_kn: float | None = None
    course_deg: float | None = None
    name: str | None = None
    cpa_m: float | None = None
    tcpa_min: float | None = None
    acquisition: Literal["auto", "manual"] | None = None
    reference: bool = False


class CameraLock(msgspec.Struct, kw_only=True):
    """An operator's lock on a PTZ camera (``shorewatch.camera.lock.v1``, compacted). Key:
    ``camera_id``; the newest record of a camera is its state.

    While a camera is locked the cue service never moves it (and gives up a cue it was
    running there, leaving the camera where the operator wants it).

    :param locked: ``True`` to lock, ``False`` to release
    :param t_ms: when the operator acted, ms UTC (wall clock)
    :param user: who locked or released it
    :param until_t_ms: the lock ends by itself at this time, ms UTC (``None``: until released)
    """

    camera_id: str
    locked: bool
    t_ms: int
    user: str
    reason: str | None = None
    until_t_ms: int | None = None


class RegistryRecord(msgspec.Struct, kw_only=True):
    """A vessel's record in the vessel registry (``pipeline.registry``), as alerts carry it
    in ``vessel.registry``.

    :param hull_number: normalised hull number (舷号), e.g. ``琼海口渔12345``
    :param length_m: registered length, m
    :param home_harbours: names of the site's authorised zones the vessel may berth in
    :param valid_until: last day of the registration, ISO 8601 date (``None``: open-ended)
    """

    registration_no: str
    mmsi: int | None = None
    name: str | None = None
    hull_number: str | None = None
    port_of_registry: str | None = None
    vessel_type: str | None = None
    length_m: float | None = None
    owner: str | None = None
    home_harbours: list[str] = msgspec.field(default_factory=list)
    valid_until: str | None = None


class WatchlistHit(msgspec.Struct, kw_only=True):
    """An active watchlist entry a vessel matches.

    :param kind: what it matched on: ``mmsi``, ``name`` or ``hull_number``
    :param until: end of the entry, ISO 8601 UTC (``None``: open-ended)
    """

    kind: Literal["mmsi", "name", "hull_number"]
    value: str
    reason: str
    added_by: str
    until: str | None = None


class VesselIdentity(msgspec.Struct, kw_only=True):
    """Internal: what the registry says about one MMSI, resolved by the driver for the
    MMSIs of a micro-batch and passed into the area step (the engine does no I/O).

    :param mmsi: the MMSI asked about (-1 for a hull number read by a camera, when the
        registry knows no MMSI for it)
    :param hull_number: the hull number asked about (a camera's reading of a dark target),
        ``None`` for an MMSI
    :param status: ``registered``, ``unregistered`` or ``unavailable`` (the registry
        could not be reached: the registry's identity rules were not checked)
    :param record: the registry record (``registered`` only)
    :param watchlist: the active watchlist entries the MMSI or its AIS name matches
    """

    mmsi: int
    status: Literal["registered", "unregistered", "unavailable"]
    record: RegistryRecord | None = None
    watchlist: list[WatchlistHit] = msgspec.field(default_factory=list)
    hull_number: str | None = None


class CameraBacklog(msgspec.Struct, kw_only=True, gc=False):
    """Internal: which cameras' frames wait unread in the camera path, inside
    :class:`FusionInput`. The feed agent of each worker sends one for the cameras whose
    ``camera.detection`` partition it reads, whenever it changes and every few seconds.

    A camera in ``behind`` is alive as far as the area can tell (its partition holds
    frames not yet forwarded, or has not been fetched lately): the area waits for it and
    never counts it offline, however far its frames trail the other cameras'.

    :param cameras: the cameras this report speaks for (site camera ids)
    :param behind: of those, the ones whose partition is behind (a backlog, or no fetch
        of it lately)
    """

    cameras: list[str]
    behind: list[str] = msgspec.field(default_factory=list)
