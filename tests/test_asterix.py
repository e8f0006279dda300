"""ASTERIX CAT 010 radar reports: datagrams encoded with libasterix (the edition the
decoder reads) through the decoder, the ``--asterix-file`` command, and real UDP datagrams
through the connector to the broker."""

from __future__ import annotations

import base64
import dataclasses
import math
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pipeline.core import radar as core
from pipeline.core.geo import bearing_deg, haversine_m
from pipeline.engine.asterix import CAT010, decode_asterix, radars_by_source
from pipeline.radars import RadarConfig, check_radars

RADAR = RadarConfig(
    id="r1", lon=110.27, lat=20.032, height_m=40.0, range_sigma_m=25.0,
    bearing_sigma_deg=0.7, max_range_m=24_000.0, sac=12, sic=31,
)  # fmt: skip
OTHER = dataclasses.replace(RADAR, id="r2", lon=110.40, sac=12, sic=32)

RX = 1_764_936_000_000  # 2025-12-05T12:00:00Z
NOON_S = 12 * 3600.0


def report(
    trk: int,
    *,
    sac: int = 12,
    sic: int = 31,
    tod_s: float | None = NOON_S - 1.5,
    wgs84: tuple[float, float] | None = None,
    polar: tuple[float, float] | None = None,
    xy: tuple[float, float] | None = None,
    gsp_tra: tuple[float, float] | None = None,
    vxy: tuple[float, float] | None = None,
    cnf: int | None = None,
    tre: int = 0,
    kind: int = 1,
) -> Any:
    """One CAT 010 record: ``wgs84`` is ``(lon, lat)``, ``polar`` ``(range_m, bearing_deg)``,
    ``xy`` metres east and north, ``gsp_tra`` ``(NM/s, degrees)``, ``vxy`` m/s."""
    items: dict[str, Any] = {"000": kind, "010": (("SAC", sac), ("SIC", sic))}
    if tod_s is not None:
        items["140"] = (tod_s, "s")
    if wgs84 is not None:
        items["041"] = (("LAT", (wgs84[1], "°")), ("LON", (wgs84[0], "°")))
    if polar is not None:
        items["040"] = (("RHO", (polar[0], "m")), ("TH", (polar[1], "°")))
    if xy is not None:
        items["042"] = (("X", (xy[0], "m")), ("Y", (xy[1], "m")))
    if kind == 1 and trk >= 0:
        items["161"] = (0, ("TRK", trk))
    if cnf is not None:
        items["170"] = ((("CNF", cnf), ("TRE", tre), ("CST", 0), ("MAH", 0), ("TCC", 0),
                         ("STH", 0), None),)  # fmt: skip
    if gsp_tra is not None:
        items["200"] = (("GSP", (gsp_tra[0], "NM/s")), ("TRA", (gsp_tra[1], "°")))
    if vxy is not None:
        items["202"] = (("VX", (vxy[0], "m/s")), ("VY", (vxy[1], "m/s")))
    return CAT010.cv_record.create(items)  # type: ignore[arg-type]  # built key by key


def block(*records: Any) -> bytes:
    """A CAT 010 data block of the records, as bytes on the wire."""
    return bytes(CAT010.create(list(records)).unparse().to_bytes())


def decode(datagram: bytes, radars: tuple[RadarConfig, ...] = (RADAR, OTHER)) -> Any:
    return decode_asterix(datagram, RX, "asterix-udp:4010:10.0.0.31", radars_by_source(
        {r.id: r for r in radars}))  # fmt: skip


@pytest.mark.unit
def test_several_reports_in_wgs84_polar_and_cartesian_become_geo_located_targets() -> None:
    dgram = block(
        report(7, wgs84=(110.30, 20.06), gsp_tra=(2**-9, 45.0), cnf=0),
        report(8, polar=(5000.0, 90.0), vxy=(3.0, -4.0), cnf=1),
        report(9, xy=(-3000.0, 4000.0), cnf=0, tre=1, tod_s=None),
        report(0, kind=2),  # start of update cycle: a service message
    ) + block(report(5, sic=32, polar=(1000.0, 0.0)))  # a second data block, the other radar
    res = decode(dgram)
    assert res.dead == [] and res.service_messages == 1
    by = {t.target_id: t for t in res.targets}
    assert list(by) == ["r1:7", "r1:8", "r1:9", "r2:5"]
    assert {t.sentence for t in res.targets} == {"CAT010"}
    t7, t8, t9, t5 = by["r1:7"], by["r1:8"], by["r1:9"], by["r2:5"]
    # WGS84: the position as sent (LSB 180/2^31 degrees), range and bearing from the radar
    assert (t7.lon, t7.lat) == pytest.approx((110.30, 20.06), abs=1e-6)
    assert t7.range_m == pytest.approx(float(haversine_m(110.27, 20.032, 110.30, 20.06)), abs=0.2)
    assert t7.bearing_deg == pytest.approx(
        float(bearing_deg(110.27, 20.032, 110.30, 20.06)), abs=1e-3
    )
    assert (t7.speed_kn, t7.course_deg, t7.status) == (
        pytest.approx(2**-9 * 3600, abs=0.01), 45.0, "tracking",
    )  # fmt: skip
    # (GSP is sent in 2^-14 NM/s: 2^-9 NM/s is exact)
    # time of day 11:59:58.5 dated on the receive day
    assert t7.t_ms == RX - 1500 and t7.rx_t_ms == RX
    # polar: 5 km due east of the antenna; velocity 3 m/s east, 4 m/s south = 5 m/s at 143.13°
    assert (t8.range_m, t8.bearing_deg) == (pytest.approx(5000.0), pytest.approx(90.0, abs=0.006))
    assert float(haversine_m(110.27, 20.032, t8.lon, t8.lat)) == pytest.approx(5000.0, abs=0.5)
    assert t8.lat == pytest.approx(20.032, abs=1e-3) and t8.lon > 110.27
    assert t8.speed_kn == pytest.approx(5.0 * 3600 / 1852, abs=0.01)
    assert t8.course_deg == pytest.approx(math.degrees(math.atan2(3.0, -4.0)) % 360, abs=0.01)
    assert t8.status == "acquiring"
    # Cartesian: 3 km west, 4 km north = 5 km at 323.13°; the last report of its track
    assert t9.range_m == pytest.approx(5000.0, abs=0.1)
    assert t9.bearing_deg == pytest.approx(math.degrees(math.atan2(-3000, 4000)) % 360, abs=1e-3)
    assert (t9.status, t9.t_ms, t9.speed_kn) == ("lost", RX, None)  # no I010/140: received
    # the other radar's position, its own uncertainty, growing with range (one helper)
    assert t5.radar_id == "r2" and t5.lon == pytest.approx(110.40, abs=1e-6)
    sig = core.position_sigma_m([t7.range_m, t8.range_m, t5.range_m], 25.0, 0.7)
    assert [t7.position_sigma_m, t8.position_sigma_m, t5.position_sigma_m] == pytest.approx(
        sig.tolist(), abs=0.1
    )
    assert t8.position_sigma_m > t5.position_sigma_m


@pytest.mark.unit
def test_a_report_just_before_midnight_received_after_it_is_yesterdays() -> None:
    res = decode_asterix(
        block(report(1, polar=(100.0, 0.0), tod_s=86_399.0)), RX - RX % 86_400_000 + 1000,
        "s", radars_by_source({"r1": RADAR}),
    )  # fmt: skip
    assert res.targets[0].t_ms == RX - RX % 86_400_000 - 1000


@pytest.mark.unit
def test_bad_datagrams_and_records_are_dead_lettered_and_the_rest_decoded() -> None:
    good = report(1, polar=(2000.0, 10.0))
    unknown = report(2, sic=99, polar=(2000.0, 10.0))
    far = report(3, polar=(30_000.0, 10.0))
    no_pos = report(4)
    no_trk = report(-1, polar=(2000.0, 10.0))
    dgram = block(good, unknown, far, no_pos, no_trk)
    res = decode(dgram)
    assert [t.target_id for t in res.targets] == ["r1:1"]
    reasons = [d.reason for d in res.dead]
    assert sorted(reasons) == ["beyond_range", "missing_field", "missing_field", "unknown_radar"]
    by = {d.reason: d for d in res.dead}
    assert base64.b64decode(by["unknown_radar"].raw_b64) == bytes(unknown.unparse().to_bytes())
    assert "sac 12, sic 99" in by["unknown_radar"].detail
    assert "30000 m" in by["beyond_range"].detail
    assert {d.stage for d in res.dead} == {"asterix.decode"}
    assert {d.source for d in res.dead} == {"asterix-udp:4010:10.0.0.31"}

    # truncated: the data block's length says more than the datagram holds
    cut = dgram[:-5]
    res = decode(cut)
    assert (res.targets, [d.reason for d in res.dead]) == ([], ["bad_asterix"])
    assert base64.b64decode(res.dead[0].raw_b64) == cut
    # corrupt: the length fits but a record runs past it (FSPEC asks for items not there)
    corrupt = bytes([10, 0, 6, 0xFF, 0xFF, 0xFF])
    res = decode(corrupt + block(good))
    assert [d.reason for d in res.dead] == ["bad_asterix"]
    assert [t.target_id for t in res.targets] == ["r1:1"]  # the next data block still decoded
    assert base64.b64decode(res.dead[0].raw_b64) == corrupt
    # a data block of another category, beside a good one
    cat48 = bytes([48, 0, 3])
    res = decode(cat48 + block(good))
    assert [d.reason for d in res.dead] == ["unsupported_category"]
    assert "CAT 048" in res.dead[0].detail and len(res.targets) == 1
    # nothing at all, and a header shorter than three bytes
    for dg in (b"", b"\x0a\x00"):
        assert [d.reason for d in decode(dg).dead] == ["bad_asterix"]
    # a WGS84 latitude beyond the pole (the item holds +-180 degrees)
    res = decode(block(report(6, wgs84=(110.3, 95.0)), good))
    assert [d.reason for d in res.dead] == ["bad_field"] and len(res.targets) == 1
    # thousands of empty data blocks: the framing parser's recursion gives out, caught
    res = decode(bytes([10, 0, 3]) * 5000)
    assert [d.reason for d in res.dead] == ["bad_asterix"] and res.targets == []
    # a radar with no sac/sic is never matched
    res = decode(block(good), (dataclasses.replace(RADAR, sac=None, sic=None),))
    assert [d.reason for d in res.dead] == ["unknown_radar"]


@pytest.mark.unit
def test_radars_yaml_sac_and_sic_are_validated(tmp_path: Path) -> None:
    base = ("  - {id: %s, lon: 110.27, lat: 20.03, height_m: 35, range_sigma_m: 25,"
            " bearing_sigma_deg: 0.7, max_range_m: 22000%s}\n")  # fmt: skip
    (tmp_path / "radars.yaml").write_text(
        "radars:\n"
        + base % ("a", ", sac: 12, sic: 31")
        + base % ("b", "")
        + base % ("c", ", sac: 12, sic: 31")
        + base % ("d", ", sac: 300, sic: 1")
        + base % ("e", ", sac: 1")
    )
    problems, radars = check_radars(tmp_path)
    assert sorted(radars) == ["a", "b"]
    assert (radars["a"].sac, radars["a"].sic, radars["b"].sac) == (12, 31, None)
    text = "\n".join(problems)
    assert "radars[2].sac: sac/sic 12/31 already belong to radar 'a'" in text
    assert "radars[3] (d).sac: must be a whole number 0-255, got 300" in text
    assert "radars[4] (e).sac: sac and sic go together: give both or neither" in text
    assert len(problems) == 3


@pytest.mark.unit
def test_ingest_radar_command_reads_an_asterix_file_to_stdout(tmp_path: Path, capsys) -> None:
    from connectors.asterix import frame_datagram
    from pipeline.cli import main
    from schemas.records import DeadLetter, RadarTarget

    (tmp_path / "radars.yaml").write_text(
        "radars:\n  - {id: hk-radar-09, lon: 110.27, lat: 20.032, height_m: 35,"
        " range_sigma_m: 25, bearing_sigma_deg: 0.7, max_range_m: 22000, sac: 12, sic: 31}\n"
    )
    rec = tmp_path / "night.ast"
    good = block(report(4, polar=(3000.0, 200.0)))
    rec.write_bytes(
        frame_datagram(good) + frame_datagram(b"\x0a\x00\x09xx") + frame_datagram(good)[:7]
    )
    argv = ["ingest", "radar", "--site", str(tmp_path), "--asterix-file", str(rec), "--stdout"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3
    target = msgspec.json.decode(out[0], type=RadarTarget)
    assert (target.target_id, target.source, target.sentence) == (
        "hk-radar-09:4", "asterix-file:night.ast", "CAT010",
    )  # fmt: skip
    dead = [msgspec.json.decode(line, type=DeadLetter) for line in out[1:]]
    assert [d.reason for d in dead] == ["bad_asterix", "bad_asterix"]
    assert "file cut short" in dead[1].detail


@pytest.mark.integration
async def test_asterix_udp_datagrams_through_the_connector_to_the_broker(
    kafka_bootstrap: str,
) -> None:
    import argparse
    import asyncio
    import socket

    from aiokafka import AIOKafkaConsumer
    from peers.launch import free_port

    from connectors.radar import RadarRouter, ingest
    from pipeline.topics import DEADLETTER, RADAR_TARGET
    from schemas.records import DeadLetter, RadarTarget

    tag = uuid.uuid4().hex[:6]
    radar = dataclasses.replace(RADAR, id=f"ast-{tag}")
    radars = {radar.id: radar}
    port = free_port()
    args = argparse.Namespace(
        tcp=[], listen_tcp=[], udp=[], file=[], asterix_udp=[port], asterix_file=[],
        bind="127.0.0.1", batch_lines=100, batch_ms=50, speed="max", prefix="auto",
        prefix_tz="UTC",
    )  # fmt: skip
    task = asyncio.create_task(ingest(args, RadarRouter(radars), kafka_bootstrap))
    good = block(
        report(41, wgs84=(110.30, 20.05), vxy=(2.0, 2.0), cnf=0),
        report(42, polar=(8000.0, 250.0), gsp_tra=(2**-10, 10.0)),
        report(43, polar=(50_000.0, 250.0)),  # beyond range
        report(44, sic=77, polar=(800.0, 1.0)),  # unknown radar
    )
    truncated = good[:-4]
    wrong_cat = bytes([34, 0, 5, 0x80, 1])
    consumer = AIOKafkaConsumer(
        RADAR_TARGET.name, DEADLETTER.name, bootstrap_servers=kafka_bootstrap,
        group_id=f"t-{tag}", auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    targets: dict[str, RadarTarget] = {}
    dead: dict[str, DeadLetter] = {}
    want_t = {f"{radar.id}:41", f"{radar.id}:42"}
    want_dead = {"beyond_range", "unknown_radar", "bad_asterix", "unsupported_category"}
    source = f"asterix-udp:{port}:127.0.0.1"
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90
        while loop.time() < deadline:
            # the listener may not be bound yet: resend until all arrive (duplicates are fine)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                for dg in (good, truncated, wrong_cat):
                    s.sendto(dg, ("127.0.0.1", port))
            batch = await consumer.getmany(timeout_ms=1000)
            for recs in batch.values():
                for rec in recs:
                    if rec.topic == RADAR_TARGET.name:
                        t = msgspec.json.decode(rec.value, type=RadarTarget)
                        if t.radar_id in radars:
                            assert rec.key == t.radar_id.encode()
                            targets[t.target_id] = t
                    else:
                        d = msgspec.json.decode(rec.value, type=DeadLetter)
                        if d.source == source:
                            dead.setdefault(d.reason, d)
            if want_t <= set(targets) and want_dead <= set(dead):
                break
    finally:
        await consumer.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert set(targets) == want_t
    assert set(dead) == want_dead
    t41, t42 = targets[f"{radar.id}:41"], targets[f"{radar.id}:42"]
    assert (t41.lon, t41.lat, t41.sentence, t41.source) == (
        pytest.approx(110.30, abs=1e-6), pytest.approx(20.05, abs=1e-6), "CAT010", source,
    )  # fmt: skip
    assert t41.course_deg == pytest.approx(45.0, abs=0.01)
    assert (t42.range_m, t42.speed_kn) == (
        pytest.approx(8000.0),
        pytest.approx(2**-10 * 3600, abs=0.01),
    )
    assert base64.b64decode(dead["bad_asterix"].raw_b64) == truncated
    assert base64.b64decode(dead["unsupported_category"].raw_b64) == wrong_cat
