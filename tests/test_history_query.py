"""Queries over an archive written by the archive writer (no broker): near, track, sql,
corrupt files, bad arguments."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import msgspec
import pytest

from pipeline.cli import main
from pipeline.errors import QueryError
from pipeline.history import query as q
from pipeline.history.writer import ArchiveWriter, Bounds
from schemas.records import AisPosition

pytestmark = pytest.mark.unit

_enc = msgspec.json.Encoder()
SPOT = (110.3412, 20.0541)  # lon, lat
T0 = q.parse_time_ms("2026-03-01T00:00:00Z")
HOUR = 3_600_000


def fix(mmsi: int, t_ms: int, lon: float, lat: float, sog: float = 0.2) -> bytes:
    return _enc.encode(
        AisPosition(mmsi=mmsi, msg_type=1, t_ms=t_ms, lon=lon, lat=lat, sog_kn=sog, cog_deg=None,
                    heading_deg=None, nav_status=None, accuracy=False, source="t", rx_t_ms=t_ms)
    )  # fmt: skip


def offset_m(lon: float, lat: float, east_m: float, north_m: float) -> tuple[float, float]:
    return (
        lon + east_m / (111_195.0 * math.cos(math.radians(lat))),
        lat + north_m / 111_195.0,
    )


@pytest.fixture()
def archive(tmp_path: Path) -> Path:
    """Three nights: vessel 1 at 120 m from the spot at 04:00 on nights 1 and 3, vessel 2
    at 300 m at 12:00 (day), vessel 3 always 2 km away."""
    w = ArchiveWriter(tmp_path, Bounds(max_rows=10_000))
    vals: list[bytes] = []
    for night in range(3):
        base = T0 + night * 24 * HOUR
        for k in range(20):  # a track passing the spot
            t = base + 4 * HOUR + k * 60_000
            if night != 1:
                vals.append(fix(1, t, *offset_m(*SPOT, 120 + 50 * abs(k - 10), 0)))
            vals.append(fix(2, base + 12 * HOUR + k * 60_000, *offset_m(*SPOT, 0, 300)))
            vals.append(fix(3, t, *offset_m(*SPOT, 2000, 0)))
    w.add("shorewatch.ais.position.v1", 0, list(range(len(vals))), [0] * len(vals), vals)
    done, full = w.flush_due(force=True)
    assert done and full is None
    return tmp_path


def test_near_finds_vessels_with_closest_approach(archive: Path) -> None:
    a = q.Archive(archive)
    res = q.near(a, *SPOT, 500, T0, T0 + 3 * 24 * HOUR)
    got = {r["mmsi"]: r for r in res["vessels"]}
    assert set(got) == {1, 2}
    assert got[1]["closest_m"] == pytest.approx(120, abs=2)
    assert got[1]["nights"] == 2
    assert got[1]["closest_t_ms"] in (T0 + 4 * HOUR + 10 * 60_000, T0 + 52 * HOUR + 10 * 60_000)
    assert got[2]["closest_m"] == pytest.approx(300, abs=3)
    # only 03:00-05:00: vessel 2 (noon) is gone
    res = q.near(a, *SPOT, 500, T0, T0 + 3 * 24 * HOUR, q.parse_hours("03:00-05:00"))
    assert [r["mmsi"] for r in res["vessels"]] == [1]
    # the same window in local time UTC+8 is 19:00-21:00 UTC: nobody
    res = q.near(a, *SPOT, 500, T0, T0 + 3 * 24 * HOUR, q.parse_hours("03:00-05:00", "+08:00"))
    assert res["vessels"] == []
    # a smaller radius excludes the passes farther than it
    assert q.near(a, *SPOT, 100, T0, T0 + 3 * 24 * HOUR)["vessels"] == []


def test_track_and_exports(archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = q.Archive(archive)
    rows = q.track(a, 1, T0, T0 + 3 * 24 * HOUR)
    assert len(rows) == 40 and [r["t_ms"] for r in rows] == sorted(r["t_ms"] for r in rows)
    gj, csv_path = tmp_path / "t.geojson", tmp_path / "t.csv"
    rc = main(["history", "track", "1", "--root", str(archive), "--from", "2026-03-01",
               "--to", "2026-03-04", "--geojson", str(gj), "--csv", str(csv_path)])  # fmt: skip
    assert rc == 0
    doc = json.loads(gj.read_text())
    assert doc["features"][0]["geometry"]["type"] == "LineString"
    assert len(doc["features"][0]["geometry"]["coordinates"]) == 40
    assert len(csv_path.read_text().splitlines()) == 41
    rc = main(["history", "near", f"{SPOT[0]},{SPOT[1]}", "--radius-m", "500", "--root",
               str(archive), "--from", "2026-03-01", "--to", "2026-03-04", "--json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and {r["mmsi"] for r in out["vessels"]} == {1, 2}
    rc = main(["history", "sql", "SELECT count(*) AS n FROM ais_position_v1", "--root",
               str(archive), "--json"])  # fmt: skip
    assert json.loads(capsys.readouterr().out)["rows"] == [{"n": 160}]


def test_corrupt_and_truncated_files_are_skipped_and_named(
    archive: Path, capsys: pytest.CaptureFixture
) -> None:
    files = sorted(archive.glob("topic=*/date=*/hour=*/*.parquet"))
    assert len(files) >= 3
    truncated, garbage = files[0], files[-1]
    truncated.write_bytes(truncated.read_bytes()[:-100])
    garbage.write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1")
    a = q.Archive(archive)
    res = q.near(a, *SPOT, 500, T0, T0 + 3 * 24 * HOUR)
    assert {p for p, _ in a.skipped} == {str(truncated), str(garbage)}
    assert res["vessels"], "the query went on over the other files"
    rc = main(["history", "near", f"{SPOT[0]},{SPOT[1]}", "--root", str(archive),
               "--from", "2026-03-01", "--to", "2026-03-04", "--json"])  # fmt: skip
    cap = capsys.readouterr()
    assert rc == 0
    assert str(truncated) in cap.err and str(garbage) in cap.err
    assert len(json.loads(cap.out)["skipped_files"]) == 2


def test_corrupt_page_found_while_reading_is_skipped(archive: Path) -> None:
    f = sorted(archive.glob("topic=*/date=*/hour=*/*.parquet"))[1]
    raw = bytearray(f.read_bytes())
    raw[8:200] = b"\xff" * 192  # the first data page, footer intact
    f.write_bytes(bytes(raw))
    a = q.Archive(archive)
    q.near(a, *SPOT, 5000, T0, T0 + 3 * 24 * HOUR)
    assert [p for p, _ in a.skipped] == [str(f)]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["near", "110.3,20.0", "--from", "2026-03-04", "--to", "2026-03-01"], "inverted"),
        (["near", "190.3,20.0", "--from", "2026-03-01", "--to", "2026-03-04"], "longitude"),
        (["near", "110.3,95", "--from", "2026-03-01", "--to", "2026-03-04"], "latitude"),
        (["near", "110.3", "--from", "2026-03-01", "--to", "2026-03-04"], "LON,LAT"),
        (
            ["near", "110.3,20", "--radius-m", "-5", "--from", "2026-03-01", "--to", "2026-03-04"],
            "radius",
        ),  # fmt: skip
        (["track", "1", "--from", "2026-03-04", "--to", "2026-03-04"], "inverted"),
        (["near", "110.3,20", "--from", "yesterday"], "not a time"),
        (["sql", "SELEC nonsense"], "query failed"),
    ],
)
def test_bad_arguments_are_clear_errors(
    archive: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    rc = main(["history", argv[0], *argv[1:], "--root", str(archive)])
    assert rc == 1
    assert message in capsys.readouterr().err


def test_hours_parse_and_wrap() -> None:
    h = q.parse_hours("22:00-02:00", "+08:00")
    assert (h.start_ms, h.end_ms, h.utc_offset_ms) == (22 * HOUR, 2 * HOUR, 8 * HOUR)
    with pytest.raises(QueryError):
        q.parse_hours("25:00-02:00")


def test_retention_deletes_old_dates_only(archive: Path) -> None:
    from pipeline.history.writer import prune

    dates = sorted(p.name for p in archive.glob("topic=*/date=*"))
    assert dates == ["date=2026-03-01", "date=2026-03-02", "date=2026-03-03"]
    stale = archive / "topic=ais.position.v1" / "date=2026-03-02" / "hour=04" / ".part-x.tmp"
    stale.write_bytes(b"left by a crash")
    os.utime(stale, (0, 0))
    gone = prune(archive, 1.5, q.parse_time_ms("2026-03-03T12:00:00Z"))
    assert [p.name for p in gone] == ["date=2026-03-01"]
    assert sorted(p.name for p in archive.glob("topic=*/date=*")) == dates[1:]
    assert not stale.exists()
