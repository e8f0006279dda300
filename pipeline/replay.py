"""Offline replay (embedded mode): the same engine as the Kafka pipeline, in one process.

``shorewatch replay --site DIR --ais FILE [--ais FILE ...] [--detections FILE.jsonl]
[--camera CAM_ID=VIDEO_FILE ...] --out alerts.jsonl``

The stages are those of the Faust agents (:mod:`pipeline.worker.app`), called directly:

1. AIS files → :func:`pipeline.engine.decode.decode_batch` (one reassembler per file, one
   cross-receiver de-duplicator) → positions and static reports with event times;
2. camera frames: one :class:`~schemas.records.CameraFrame` JSON object per line of each
   ``--detections`` file, and/or frames analysed from ``--camera`` videos by
   :mod:`pipeline.vision`;
3. everything merged in event-time order and cut into windows of ``window_ms`` of event
   time (the micro-batches); per window :func:`pipeline.engine.tracks.track_step` then, for the
   tracks inside the site's bbox (as the track agent forwards them),
   :func:`pipeline.engine.area.area_step` with the window's end as the AIS watermark (all
   input is at hand, so nothing older will come; cameras state their progress with their
   frames, as in the worker);
4. at the end of input the open evaluation tick is flushed
   (:func:`pipeline.engine.area.flush_area`), optionally after letting ``drain_s`` of event
   time elapse (so silences and dwells that began at the end of the recording count).

Alerts are written one CloudEvent JSON per line; a summary (positions, tracks, frames,
alerts by kind and status, dead letters by reason) goes to stderr.

Positions without an event time (a file with neither tag blocks nor ``$PGHP`` lines) have
no place on the timeline: they are counted as ``positions.no_event_time`` and skipped.
"""

from __future__ import annotations

import argparse
import heapq
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from pipeline.engine.area import area_step, flush_area
from pipeline.engine.state import AreaContext, AreaState
from pipeline.engine.tracks import TrackDriverState, TrackParams, sweep_idle, track_batch
from pipeline.errors import ConfigError
from schemas.records import (
    AisPosition,
    AisStatic,
    Alert,
    CameraFrame,
    RadarTarget,
    Track,
    Watermark,
)

__all__ = ["ReplayResult", "read_frames", "replay", "run_replay"]

_frame_dec = msgspec.json.Decoder(CameraFrame)
_enc = msgspec.json.Encoder()


@dataclass
class ReplayResult:
    """What a replay produced.

    :param alerts: alert events in the order the engine emitted them
    :param counters: counts by name (``positions``, ``frames``, ``dead_letters.<reason>``,
        ``area.<counter>``, ``alerts.<kind>.<status>``, ...)
    :param state: the area's final state
    """

    alerts: list[Alert]
    counters: Counter[str] = field(default_factory=Counter)
    state: AreaState | None = None


def _context(site: Any) -> AreaContext:
    if isinstance(site, AreaContext):
        return site
    if isinstance(site, str | os.PathLike):
        from pipeline.site import load_site

        site = load_site(site)
    return AreaContext.from_site(site)


def _window_marks(
    ctx: AreaContext, batch: tuple[list[Any], ...], window_ms: int
) -> list[Watermark]:
    """Replay's watermarks after a micro-batch (one window of event time): the window's
    end, for every AIS input of the area (cameras state their own progress with their
    frames). All input is at hand, so nothing older will come."""
    t = next(x.t_ms for xs in batch for x in xs[:1])
    end = (t // window_ms + 1) * window_ms
    return [Watermark(path="ais", partition=p, t_ms=end) for p in range(ctx.ais_partitions)]


def decode_ais(
    paths: Sequence[str | os.PathLike[str]], counters: Counter[str], chunk_lines: int = 5000
) -> tuple[list[AisPosition], list[AisStatic]]:
    """Decode AIS files through :func:`pipeline.engine.decode.decode_batch` (the pipeline's code path).

    :returns: positions and statics of all files, each list in event-time order (stable)
    """
    from pipeline.core.nmea import Deduplicator, Reassembler
    from pipeline.engine.decode import decode_batch, finish
    from pipeline.fileio import iter_file_lines
    from schemas.records import RawAisBatch

    positions: list[AisPosition] = []
    statics: list[AisStatic] = []
    dedup = Deduplicator()

    def take(res: Any) -> None:
        positions.extend(res.positions)
        statics.extend(res.statics)
        for dl in res.dead_letters:
            counters[f"dead_letters.{dl.reason}"] += 1
        counters["dead_letters"] += len(res.dead_letters)
        for src_counts in res.counters.values():
            for k in ("received", "decoded", "duplicates", "not_ais"):
                counters[f"ais.{k}"] += int(src_counts.get(k, 0))

    for path in paths:
        source = f"file:{Path(path).name}"
        reassembler = Reassembler()
        chunk: list[str] = []
        for line in iter_file_lines(str(path)):
            chunk.append(line)
            if len(chunk) >= chunk_lines:
                take(
                    decode_batch(
                        RawAisBatch(source=source, lines=chunk, rx_t_ms=[0] * len(chunk)),
                        reassembler,
                        dedup,
                    )
                )
                chunk = []
        if chunk:
            take(
                decode_batch(
                    RawAisBatch(source=source, lines=chunk, rx_t_ms=[0] * len(chunk)),
                    reassembler,
                    dedup,
                )
            )
        take(finish(reassembler))
    timed = [p for p in positions if p.t_ms > 0]
    counters["positions.no_event_time"] += len(positions) - len(timed)
    counters["positions"] += len(timed)
    st_timed = [s for s in statics if s.t_ms > 0]
    counters["statics.no_event_time"] += len(statics) - len(st_timed)
    counters["statics"] += len(st_timed)
    timed.sort(key=lambda p: p.t_ms)
    st_timed.sort(key=lambda s: s.t_ms)
    return timed, st_timed


def read_frames(
    paths: Iterable[str | os.PathLike[str]], counters: Counter[str] | None = None
) -> list[CameraFrame]:
    """Camera frames from JSONL files (one :class:`CameraFrame` per line), in time order.

    Undecodable lines are counted (``frames.undecodable``) and skipped, never fatal.
    """
    counters = counters if counters is not None else Counter()
    frames: list[CameraFrame] = []
    for path in paths:
        with open(path, "rb") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    frames.append(_frame_dec.decode(line))
                except msgspec.DecodeError:
                    counters["frames.undecodable"] += 1
    frames.sort(key=lambda fr: fr.t_ms)
    return frames


def frames_from_video(
    camera_id: str,
    video: str,
    model: Any,
    start_t_ms: int,
    *,
    fps: float = 1.0,
    model_dir: str | None = None,
    evidence_dir: str | None = None,
) -> list[CameraFrame]:
    """Analyse a video file with :mod:`pipeline.vision` at ``fps`` frames per second.

    :param start_t_ms: event time of the first video frame, ms UTC
    :param model_dir: Darknet model folder (Yolo-Fastest); ``None`` uses motion detection
    :raises ConfigError: when the vision module (OpenCV) is not available or the video
        cannot be opened
    """
    try:
        import cv2

        from pipeline.vision.analyser import FrameAnalyser
        from pipeline.vision.detectors import DnnDetector, MotionDetector
        from pipeline.vision.evidence import DirectoryEvidenceStore
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ConfigError(
            f"--camera needs pipeline.vision (OpenCV): not available ({exc})"
        ) from exc
    if model_dir:
        detector: Any = DnnDetector.from_dir(model_dir)
    else:
        detector = MotionDetector.for_camera(model)
    store = DirectoryEvidenceStore(evidence_dir) if evidence_dir else None
    analyser = FrameAnalyser(camera_id, model, detector, evidence_store=store)
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise ConfigError(f"cannot open video {video!r}")
    video_fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    step = max(1, int(round(video_fps / fps)))
    out: list[CameraFrame] = []
    k = 0
    try:
        while True:
            ok, img = cap.read()
            if not ok:
                break
            if k % step == 0:
                out.append(analyser.analyse(img, start_t_ms + int(round(k * 1000.0 / video_fps))))
            k += 1
    finally:
        cap.release()
    return out


def run_replay(
    site: Any,
    ais_paths: Sequence[str | os.PathLike[str]] = (),
    detection_paths: Sequence[str | os.PathLike[str]] = (),
    *,
    frames: Sequence[CameraFrame] = (),
    positions: Sequence[AisPosition] = (),
    statics: Sequence[AisStatic] = (),
    track_params: TrackParams | None = None,
    window_ms: int = 1000,
    drain_s: float = 0.0,
    radar: Sequence[RadarTarget] = (),
    registry: Any = None,
) -> ReplayResult:
    """Replay recorded AIS and camera frames (and radar target reports) through the engine.

    :param site: a site folder path, a :class:`pipeline.site.Site`, or an
        :class:`~pipeline.engine.state.AreaContext`
    :param ais_paths: AIS files (NMEA, optionally gzip; tag blocks or ``$PGHP`` for time)
    :param detection_paths: JSONL files of :class:`CameraFrame` records
    :param frames: more frames (e.g. from :func:`frames_from_video`)
    :param positions: more decoded positions, event-time order (e.g. from the archive)
    :param statics: more decoded static reports, event-time order
    :param track_params: track settings (default :class:`TrackParams`)
    :param window_ms: event-time length of one micro-batch, ms
    :param drain_s: after the last input, let this much event time elapse before the final
        evaluation, s (0: only evaluate the open tick)
    :param radar: radar target reports (:mod:`pipeline.engine.radar_area`)
    :param registry: what resolves each micro-batch's registry identities (an
        :class:`~pipeline.registry.resolver.IdentityResolver`, or a registry URL for one),
        ``None`` for none
    """
    ctx = _context(site)
    if isinstance(registry, str):
        from pipeline.registry.resolver import IdentityResolver

        registry = IdentityResolver(registry)
    track_params = track_params or TrackParams()
    counters: Counter[str] = Counter()
    decoded, decoded_statics = decode_ais(ais_paths, counters)
    counters["positions"] += len(positions)
    counters["statics"] += len(statics)
    positions = sorted([*decoded, *positions], key=lambda p: p.t_ms)
    statics = sorted([*decoded_statics, *statics], key=lambda s: s.t_ms)
    all_frames = read_frames(detection_paths, counters) + list(frames)
    all_frames.sort(key=lambda fr: fr.t_ms)
    counters["frames.read"] += len(all_frames)
    reports = sorted(radar, key=lambda r: r.t_ms)
    counters["radar.read"] += len(reports)
    engine = _EngineRun(ctx, track_params, counters, registry)
    for ps, ss, fs, rs in _micro_batches(positions, statics, all_frames, window_ms, reports):
        if ps or ss or fs or rs:
            engine.step(ps, ss, fs, _window_marks(ctx, (ps, ss, fs, rs), window_ms), rs)
    return engine.finish(drain_s)


def _micro_batches(
    positions: list[AisPosition],
    statics: list[AisStatic],
    frames: list[CameraFrame],
    window_ms: int,
    radar: Sequence[RadarTarget] = (),
) -> Iterator[tuple[list[AisPosition], list[AisStatic], list[CameraFrame], list[RadarTarget]]]:
    """The time-ordered streams merged and cut into micro-batches of ``window_ms`` of event
    time: ``(positions, statics, frames, radar reports)`` of each (possibly all empty)."""
    stream = heapq.merge(
        ((p.t_ms, 0, i) for i, p in enumerate(positions)),
        ((s.t_ms, 1, i) for i, s in enumerate(statics)),
        ((f.t_ms, 2, i) for i, f in enumerate(frames)),
        ((r.t_ms, 3, i) for i, r in enumerate(radar)),
    )
    win: int | None = None
    ps: list[AisPosition] = []
    ss: list[AisStatic] = []
    fs: list[CameraFrame] = []
    rs: list[RadarTarget] = []
    for t, kind, i in stream:
        w = t // window_ms
        if win is not None and w != win:
            yield ps, ss, fs, rs
            ps, ss, fs, rs = [], [], [], []
        win = w
        if kind == 0:
            ps.append(positions[i])
        elif kind == 1:
            ss.append(statics[i])
        elif kind == 2:
            fs.append(frames[i])
        else:
            rs.append(radar[i])
    yield ps, ss, fs, rs


class _EngineRun:
    """The engine state one replay drives (tracks, their driver state, the area state)
    and the alerts so far; counts into ``counters``."""

    def __init__(
        self,
        ctx: AreaContext,
        track_params: TrackParams,
        counters: Counter[str],
        registry: Any = None,
    ):
        self.ctx = ctx
        self.registry = registry
        self.track_params = track_params
        self.counters = counters
        self.tracks: dict[int, Track] = {}
        self.driver = TrackDriverState()
        self.state: AreaState | None = None
        self.alerts: list[Alert] = []

    def step(
        self,
        ps: list[AisPosition],
        ss: list[AisStatic],
        fs: list[CameraFrame],
        marks: list[Watermark] | None = None,
        rs: Sequence[RadarTarget] = (),
    ) -> None:
        """One micro-batch through the track step, the idle sweep and the area step, with
        the AIS watermarks that follow it (``None``: the batch's own newest time)."""
        if not (ps or ss or fs or rs):
            return
        counters, tracks = self.counters, self.tracks
        batch = track_batch(tracks, self.driver, ps, ss, self.track_params, self.ctx.bbox)
        for k, v in batch.result.counters.items():
            counters[f"tracks.{k}"] += v
        counters["tracks.orphan_statics_dropped"] += batch.orphans_dropped
        for tr in batch.result.updates:
            tracks[tr.mmsi] = tr
        for tr in sweep_idle(tracks, self.driver, batch.result.updates, self.track_params):
            del tracks[tr.mmsi]  # as the worker does: the vessel's next fix starts a new track
            counters["tracks.evicted"] += 1
        area_tracks = batch.area_updates
        ids = self.registry.resolve(area_tracks, fs) if self.registry is not None else ()
        self.state, out = area_step(
            self.state, area_tracks, fs, self.ctx, marks, radar=rs, identities=ids
        )
        self.alerts.extend(out)

    def finish(self, drain_s: float) -> ReplayResult:
        """The final evaluation (after ``drain_s`` of event time, s) and the result."""
        counters, alerts = self.counters, self.alerts
        state = self.state if self.state is not None else AreaState()
        until = (
            state.watermark_t_ms + int(drain_s * 1000)
            if drain_s > 0 and state.watermark_t_ms >= 0
            else None
        )
        alerts.extend(flush_area(state, self.ctx, until))
        counters["tracks.distinct_mmsi"] = len(self.tracks)
        for k, v in state.counters.items():
            counters[f"area.{k}"] += v
        for a in alerts:
            counters[f"alerts.{a.data.kind}.{a.data.status}"] += 1
        return ReplayResult(alerts=alerts, counters=counters, state=state)


def replay(
    site: Any,
    ais_paths: Sequence[str | os.PathLike[str]] = (),
    detection_paths: Sequence[str | os.PathLike[str]] = (),
    **kwargs: Any,
) -> list[Alert]:
    """The alerts of :func:`run_replay` (for tests and the evaluation harness)."""
    return run_replay(site, ais_paths, detection_paths, **kwargs).alerts


def write_alerts(alerts: Iterable[Alert], out: Any) -> int:
    """One CloudEvent JSON per line to a binary stream; returns the count."""
    n = 0
    for a in alerts:
        out.write(_enc.encode(a) + b"\n")
        n += 1
    return n


def summary(counters: Counter[str]) -> str:
    """A readable multi-line summary of a replay's counters."""
    lines = [
        f"positions {counters.get('positions', 0)} (no event time: {counters.get('positions.no_event_time', 0)}), "
        f"statics {counters.get('statics', 0)}, vessels {counters.get('tracks.distinct_mmsi', 0)}, "
        f"frames {counters.get('frames.read', 0)}"
        + (f", radar reports {counters['radar.read']}" if counters.get("radar.read") else ""),
        f"dead letters {counters.get('dead_letters', 0)}"
        + "".join(
            f", {k.split('.', 1)[1]} {v}"
            for k, v in sorted(counters.items())
            if k.startswith("dead_letters.")
        ),
    ]
    kinds = sorted({k.split(".")[1] for k in counters if k.startswith("alerts.")})
    if kinds:
        for kind in kinds:
            parts = [
                f"{s} {counters.get(f'alerts.{kind}.{s}', 0)}" for s in ("open", "update", "closed")
            ]
            lines.append(f"alerts {kind}: " + ", ".join(parts))
    else:
        lines.append("alerts: none")
    area = {
        k[5:]: v
        for k, v in counters.items()
        if k.startswith("area.") and not k.startswith("area.alerts.")
    }
    skipped = {
        k: v
        for k, v in area.items()
        if "unknown" in k or "invalid" in k or k in ("late", "frames.out_of_order")
    }
    if skipped:
        lines.append(
            "skipped or late (counted): "
            + ", ".join(f"{k} {v}" for k, v in sorted(skipped.items()))
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- command
def _parse_time_ms(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError as exc:
        raise ConfigError(f"not a time (ms since epoch or ISO 8601 with zone): {text!r}") from exc


def cmd_replay(args: argparse.Namespace) -> int:
    from pipeline.site import load_site

    site = load_site(args.site)
    ctx = AreaContext.from_site(site)
    frames: list[CameraFrame] = []
    for spec in args.camera or []:
        cam_id, sep, video = spec.partition("=")
        if not sep or not video:
            raise ConfigError(f"--camera wants CAM_ID=VIDEO_FILE, got {spec!r}")
        if cam_id not in ctx.cameras:
            raise ConfigError(f"camera {cam_id!r} is not in site {site.name!r}")
        if args.video_start is None:
            raise ConfigError("--camera needs --video-start (event time of the first video frame)")
        frames += frames_from_video(
            cam_id, video, ctx.cameras[cam_id], _parse_time_ms(args.video_start), fps=args.camera_fps,
            model_dir=None if str(args.model_dir).lower() == "none" else args.model_dir,
            evidence_dir=args.evidence_dir,
        )  # fmt: skip
    if args.from_archive:
        from pipeline.history.source import read_inputs

        if not (args.from_ and args.to):
            raise ConfigError("--from-archive needs --from and --to")
        arch = read_inputs(
            args.from_archive, _parse_time_ms(args.from_), _parse_time_ms(args.to), ctx.bbox
        )
        frames += arch.frames
        for path, reason in arch.skipped_files:
            print(
                f"shorewatch: error: skipped unreadable Parquet file {path}: {reason}",
                file=sys.stderr,
            )
    radar: list[Any] = []
    radar_counters: Counter[str] = Counter()
    if getattr(args, "radar", None):
        from pipeline.radar_files import read_radar_files
        from pipeline.radars import load_radars

        radar = read_radar_files(args.radar, load_radars(args.site), radar_counters)
    res = run_replay(
        ctx,
        args.ais or [],
        args.detections or [],
        frames=frames,
        positions=arch.positions if args.from_archive else (),
        statics=arch.statics if args.from_archive else (),
        window_ms=args.window_ms,
        drain_s=args.drain_s,
        radar=radar,
        registry=getattr(args, "registry_url", None),
    )
    res.counters.update(radar_counters)
    if args.out == "-":
        write_alerts(res.alerts, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        with open(args.out, "wb") as f:
            write_alerts(res.alerts, f)
    print(summary(res.counters), file=sys.stderr)
    return 0
