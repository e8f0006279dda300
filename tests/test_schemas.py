"""JSON Schemas: records the code produces validate; published v1 schemas stay compatible."""

from __future__ import annotations

import copy
from datetime import datetime
from pathlib import Path

import jsonschema
import msgspec
import pytest

from pipeline import topics
from pipeline.core.nmea import Reassembler
from pipeline.engine.columns import PositionColumns
from pipeline.engine.decode import decode_batch, pack_fixes
from pipeline.engine.tracks import TrackParams, track_step
from pipeline.fileio import iter_file_lines
from pipeline.replay import read_frames, replay
from pipeline.tools.simulate import SimConfig, simulate
from schemas import compat, records

REPO = Path(__file__).resolve().parents[1]


def _validator(spec: topics.TopicSpec) -> jsonschema.Draft202012Validator:
    schema = compat.load(spec.schema_file)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _assert_valid(spec: topics.TopicSpec, recs: list[msgspec.Struct]) -> None:
    assert recs, f"no {spec.name} records to check"
    v = _validator(spec)
    for r in recs:
        errors = list(v.iter_errors(msgspec.to_builtins(r)))
        assert not errors, f"{spec.name}: {errors[0].message} in {r!r}"[:2000]


@pytest.mark.unit
def test_schema_files_are_the_record_types_and_compatible_with_the_published() -> None:
    assert compat.export(topics.ALL, check_only=True) == []
    assert compat.check_published() == []
    assert {t.schema_file for t in topics.ALL} <= {p.name for p in compat.SCHEMA_DIR.glob("*.json")}


@pytest.mark.unit
def test_breaking_changes_are_found() -> None:
    old = compat.load(topics.AIS_POSITION.schema_file)
    body = old["$defs"]["AisPosition"]
    removed = copy.deepcopy(old)
    del removed["$defs"]["AisPosition"]["properties"]["mmsi"]
    removed["$defs"]["AisPosition"]["required"].remove("mmsi")
    renamed = copy.deepcopy(old)
    props = renamed["$defs"]["AisPosition"]["properties"]
    props["sog_knots"] = props.pop("sog_kn")
    renamed["$defs"]["AisPosition"]["required"] = [
        "sog_knots" if f == "sog_kn" else f for f in body["required"]
    ]
    retyped = copy.deepcopy(old)
    retyped["$defs"]["AisPosition"]["properties"]["mmsi"] = {"type": "string"}
    added_optional = copy.deepcopy(old)
    added_optional["$defs"]["AisPosition"]["properties"]["note"] = {"type": "string"}

    assert "mmsi: required field removed" in compat.breaking_changes(old, removed)
    assert "sog_kn: required field removed" in compat.breaking_changes(old, renamed)
    assert any(p.startswith("mmsi: type changed") for p in compat.breaking_changes(old, retyped))
    assert compat.breaking_changes(old, added_optional) == []


@pytest.mark.unit
def test_decoded_ais_and_tracks_validate(shared: Path) -> None:
    lines = list(iter_file_lines(str(shared / "data/ais/dma_aislib_stream_example.txt")))
    lines += ["!AIVDM,1,1,,A,13u?etPv2;0n:dDPwUM1U1Cb069D,0*FF", "garbage \x01 bytes"]
    batch = records.RawAisBatch(
        source="file:dma", lines=lines, rx_t_ms=[1_276_250_000_000] * len(lines)
    )
    out = decode_batch(batch, Reassembler())
    _assert_valid(topics.AIS_RAW, [batch])
    _assert_valid(topics.AIS_POSITION, out.positions)
    _assert_valid(topics.AIS_STATIC, out.statics)
    _assert_valid(topics.DEADLETTER, out.dead_letters)
    _assert_valid(
        topics.AIS_FIXES,
        [pack_fixes(PositionColumns.from_records(out.positions), out.statics)],
    )
    tracks = track_step({}, out.positions, out.statics, TrackParams()).updates
    _assert_valid(topics.TRACK, tracks)


@pytest.mark.unit
def test_simulated_frames_and_replayed_alerts_validate(tmp_path: Path) -> None:
    site = REPO / "sites" / "haikou"
    start = datetime.fromisoformat("2026-03-08T03:00:00+08:00")
    simulate(site, SimConfig(seed=3, start=start, duration_s=3600, fps=0.5, noise="none"), tmp_path)
    frames = read_frames([tmp_path / "detections.jsonl"], __import__("collections").Counter())
    _assert_valid(topics.CAMERA_DETECTION, frames[:500])
    alerts = replay(site, [tmp_path / "ais.nmea"], [tmp_path / "detections.jsonl"])
    _assert_valid(topics.ALERT, alerts)
    _assert_valid(topics.FUSION_INPUT, [records.FusionInput(area="haikou", frame=frames[0])])
