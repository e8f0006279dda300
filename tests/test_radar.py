"""Radar ingest: NMEA 0183 TTM/TLL sentences to geo-located target records.

Sentences are written in the field order of NMEA 0183 (and pynmea2's TTM/TLL
definitions) with their real ``*hh`` checksums; the integration test sends them over
real UDP and TCP sockets through the connector to the real broker.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import functools
import operator
import uuid
from pathlib import Path

import msgspec
import numpy as np
import pytest

from pipeline.core import radar as core
from pipeline.core.geo import haversine_m
from pipeline.engine.radar import decode_radar_lines
from pipeline.errors import SiteError
from pipeline.radars import RadarConfig, check_radars, load_radars

REPO = Path(__file__).resolve().parents[1]

RADAR = RadarConfig(
    id="r1", lon=110.27, lat=20.032, height_m=40.0, range_sigma_m=25.0,
    bearing_sigma_deg=0.7, max_range_m=24_000.0, heading_deg=10.0, addresses=("127.0.0.1",),
)  # fmt: skip

RX = 1_764_936_000_000  # 2025-12-05T12:00:00Z


def nmea(body: str) -> str:
    """``$body*hh`` with the NMEA checksum (XOR of the bytes between ``$`` and ``*``)."""
    return f"${body}*{functools.reduce(operator.xor, body.encode(), 0):02X}"


def ttm(n=1, dist="5.40", brg="10.0", ref="T", speed="12.0", cog="190.0", unit="N",
        status="T", utc="115958.50", name="TGT01") -> str:  # fmt: skip
    return nmea(
        f"RATTM,{n:02d},{dist},{brg},{ref},{speed},{cog},T,0.3,21.5,{unit},{name},{status},,{utc},A"
    )


@pytest.mark.unit
def test_core_uncertainty_grows_with_range_and_times_take_the_nearest_date() -> None:
    sigma = core.position_sigma_m(np.array([0.0, 1000.0, 10_000.0, 20_000.0]), 25.0, 0.7)
    assert sigma[0] == pytest.approx(25.0)
    assert np.all(np.diff(sigma) > 0)
    assert sigma[3] == pytest.approx(np.hypot(25.0, 20_000 * np.radians(0.7)))
    # 23:59:59 received just after midnight is yesterday's; no time -> receive time
    t = core.event_time_ms(np.array([86_399_000, 1000, -1]), np.array([86_401_000] * 3))
    assert t.tolist() == [86_399_000, 86_401_000, 86_401_000]
    lon, lat = core.polar_to_lonlat(110.0, 20.0, np.array([90.0]), np.array([5000.0]))
    assert float(haversine_m(110.0, 20.0, lon[0], lat[0])) == pytest.approx(5000.0, rel=1e-9)


@pytest.mark.unit
def test_ttm_and_tll_become_geo_located_records() -> None:
    lines = [
        ttm(1),
        ttm(2, dist="9.0", brg="350.0", ref="R", unit="K", speed="36.0", utc="000001.00"),
        nmea("RATLL,03,2004.200,N,11017.000,E,TGT03,115959.00,Q,"),
    ]
    targets, dead = decode_radar_lines(lines, [RX] * 3, "udp:4002:127.0.0.1", RADAR)
    assert dead == []
    a, b, c = targets
    assert (a.target_id, a.sentence, a.status, a.name) == ("r1:1", "TTM", "tracking", "TGT01")
    assert a.range_m == pytest.approx(5.4 * 1852, abs=0.1) and a.bearing_deg == 10.0
    assert float(haversine_m(RADAR.lon, RADAR.lat, a.lon, a.lat)) == pytest.approx(a.range_m, 0.01)
    assert a.t_ms == RX - 1_500 and a.rx_t_ms == RX
    assert a.speed_kn == 12.0 and a.course_deg == 190.0 and a.cpa_m == pytest.approx(0.3 * 1852)
    assert a.acquisition == "auto"
    # relative bearing from the fixed reference 10 deg; km and km/h
    assert b.bearing_deg == 0.0 and b.range_m == 9000.0 and b.lat > RADAR.lat
    assert b.speed_kn == pytest.approx(36.0 / 1.852)
    assert b.t_ms == RX - 12 * 3600_000 + 1000  # 00:00:01 of the receive day
    assert a.position_sigma_m > b.position_sigma_m  # 10 km against 9 km: less certain
    assert (c.sentence, c.status) == ("TLL", "acquiring")
    assert (c.lat, c.lon) == pytest.approx((20 + 4.2 / 60, 110 + 17.0 / 60))
    assert c.range_m == pytest.approx(float(haversine_m(RADAR.lon, RADAR.lat, c.lon, c.lat)), 0.1)


@pytest.mark.unit
def test_bad_sentences_are_dead_lettered_with_their_reasons() -> None:
    good = ttm(1)
    cases = {
        good[:-2] + ("00" if not good.endswith("00") else "01"): "bad_checksum",
        good.split("*")[0]: "bad_checksum",  # no checksum at all
        "hello radar": "garbage",
        nmea("RARSD,1,2,3"): "unsupported_sentence",
        nmea("GPGGA,115958,2001.9,N,11016.2,E,1,08,0.9,10,M,,M,,"): "unsupported_sentence",
        ttm(4, dist=""): "missing_field",
        ttm(5, unit=""): "missing_field",
        nmea("RATLL,06,,N,11017.000,E,TGT06,115959.00,T,"): "missing_field",
        ttm(7, brg="400.0"): "bad_field",
        ttm(8, dist="x1"): "bad_field",
        ttm(9, status="Z"): "bad_field",
        ttm(10, utc="996199"): "bad_field",
        ttm(11, dist="14.0"): "beyond_range",  # 25.9 km > 24 km
        nmea("RATLL,12,2030.000,N,11017.000,E,FAR,115959.00,T,"): "beyond_range",
    }
    lines = [good, *cases]
    targets, dead = decode_radar_lines(lines, list(range(len(lines))), "tcp:h:1", RADAR)
    assert [t.target_number for t in targets] == [1]
    by_line = {base64.b64decode(d.raw_b64).decode(): d for d in dead}
    assert {line: d.reason for line, d in by_line.items()} == cases
    assert all(d.stage == "radar.decode" and d.source == "tcp:h:1" and d.detail for d in dead)
    no_ref = dataclasses.replace(RADAR, heading_deg=None)
    _, dead = decode_radar_lines([ttm(1, ref="R")], [RX], "x", no_ref)
    assert dead[0].reason == "bad_field" and "heading_deg" in dead[0].detail
    _, dead = decode_radar_lines([good], [RX], "udp:1:10.9.9.9", None)
    assert dead[0].reason == "unknown_radar"


@pytest.mark.unit
def test_radars_yaml_is_validated(tmp_path: Path) -> None:
    radars = load_radars(REPO / "sites" / "haikou")
    assert list(radars) == ["hk-radar-01"] and radars["hk-radar-01"].max_range_m == 24_000
    assert load_radars(tmp_path) == {}
    (tmp_path / "radars.yaml").write_text(
        "radars:\n"
        "  - {id: a, lon: 200, lat: 20, height_m: 10, range_sigma_m: 20,"
        " bearing_sigma_deg: 1, max_range_m: 0, heading_reference: fixed, colour: red,"
        " addresses: [nope]}\n"
        "  - {id: b, lon: 110, lat: 20, height_m: 10, range_sigma_m: 20,"
        " bearing_sigma_deg: 1, max_range_m: 9000}\n"
        "  - {id: b, lon: 110, lat: 20, height_m: 10, range_sigma_m: 20,"
        " bearing_sigma_deg: 1, max_range_m: 9000}\n"
    )
    problems, ok = check_radars(tmp_path)
    assert list(ok) == ["b"]
    text = "\n".join(problems)
    for needle in ("(a).lon", "(a).max_range_m", "(a).heading_deg", "(a).colour", "(a).addresses",
                   "radars[2].id: duplicate"):  # fmt: skip
        assert needle in text, needle
    with pytest.raises(SiteError):
        load_radars(tmp_path)


@pytest.mark.unit
def test_router_maps_named_sources_and_sender_addresses() -> None:
    import argparse

    from connectors.radar import RadarRouter, parse_sources

    radars = {"r1": RADAR, "r2": dataclasses.replace(RADAR, id="r2", addresses=())}
    args = argparse.Namespace(tcp=["r2=10.1.1.1:5000"], listen_tcp=[], udp=["4002"], file=[])
    plain, named = parse_sources(args, radars)
    assert plain.tcp == ["10.1.1.1:5000"] and plain.udp == [4002]
    router = RadarRouter(radars, named)
    assert router.radar_of("tcp:10.1.1.1:5000").id == "r2"
    assert router.radar_of("udp:4002:127.0.0.1").id == "r1"
    assert router.radar_of("udp:4002:127.0.0.2") is None
    with pytest.raises(ValueError):
        parse_sources(argparse.Namespace(tcp=[], listen_tcp=[], udp=["x=1"], file=[]), radars)


@pytest.mark.integration
async def test_udp_and_tcp_radars_through_the_connector_to_the_broker(
    kafka_bootstrap: str,
) -> None:
    import argparse
    import socket

    from aiokafka import AIOKafkaConsumer
    from peers.launch import free_port

    from connectors.radar import RadarRouter, ingest, parse_sources
    from pipeline.topics import DEADLETTER, RADAR_TARGET
    from schemas.records import DeadLetter, RadarTarget

    tag = uuid.uuid4().hex[:6]
    r_udp = dataclasses.replace(RADAR, id=f"udp-{tag}")
    r_tcp = dataclasses.replace(RADAR, id=f"tcp-{tag}", addresses=())
    radars = {r.id: r for r in (r_udp, r_tcp)}
    udp_port = free_port()
    lines_tcp = [ttm(21, name="T21"), ttm(22, dist="20.0"), ttm(23, dist="")]

    async def radar_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(("\r\n".join(lines_tcp) + "\r\n").encode())
        await writer.drain()
        await asyncio.sleep(30)
        writer.close()

    server = await asyncio.start_server(radar_server, "127.0.0.1", 0)
    tcp_port = server.sockets[0].getsockname()[1]
    args = argparse.Namespace(
        tcp=[f"{r_tcp.id}=127.0.0.1:{tcp_port}"], listen_tcp=[], udp=[str(udp_port)], file=[],
        bind="127.0.0.1", batch_lines=100, batch_ms=50, speed="max", prefix="auto",
        prefix_tz="UTC",
    )  # fmt: skip
    plain, named = parse_sources(args, radars)
    router = RadarRouter(radars, named)
    task = asyncio.create_task(ingest(plain, router, kafka_bootstrap))

    def send(lines: list[str], src: str) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((src, 0))
            s.sendto("\r\n".join(lines).encode(), ("127.0.0.1", udp_port))

    # the listener may not be bound yet: resend until the records arrive (duplicates are fine)
    good = [ttm(11, name="U11"), nmea("RATLL,12,2004.200,N,11017.000,E,U12,115959.00,T,")]
    bad_checksum = ttm(13)[:-2] + "00"
    consumer = AIOKafkaConsumer(
        RADAR_TARGET.name, DEADLETTER.name, bootstrap_servers=kafka_bootstrap,
        group_id=f"t-{tag}", auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    targets: dict[str, RadarTarget] = {}
    dead: dict[str, DeadLetter] = {}
    want_t = {f"{r_udp.id}:11", f"{r_udp.id}:12", f"{r_tcp.id}:21"}
    want_dead = {"bad_checksum", "beyond_range", "missing_field", "unknown_radar"}
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90
        while loop.time() < deadline:
            send([*good, bad_checksum], "127.0.0.1")
            send([ttm(31)], "127.0.0.2")  # a sender no radar lists
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
                        if d.source.startswith((f"udp:{udp_port}:", f"tcp:127.0.0.1:{tcp_port}")):
                            dead.setdefault(d.reason, d)
            if want_t <= set(targets) and want_dead <= set(dead):
                break
    finally:
        await consumer.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        server.close()
    assert set(targets) == want_t
    assert set(dead) == want_dead
    assert dead["unknown_radar"].source == f"udp:{udp_port}:127.0.0.2"
    assert dead["beyond_range"].source == f"tcp:127.0.0.1:{tcp_port}"
    assert base64.b64decode(dead["bad_checksum"].raw_b64).decode() == bad_checksum
    t21 = targets[f"{r_tcp.id}:21"]
    assert (t21.name, t21.source) == ("T21", f"tcp:127.0.0.1:{tcp_port}")
    assert t21.range_m == pytest.approx(5.4 * 1852, abs=0.1)


@pytest.mark.unit
def test_ingest_radar_command_reads_a_recording_to_stdout(tmp_path: Path, capsys) -> None:
    from pipeline.cli import main
    from schemas.records import DeadLetter, RadarTarget

    path = tmp_path / "night.nmea"
    path.write_text("\n".join([ttm(1), ttm(2, dist="")]) + "\n")
    site = str(REPO / "sites" / "haikou")
    argv = ["ingest", "radar", "--site", site, "--file", f"hk-radar-01={path}", "--stdout"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    target = msgspec.json.decode(out[0], type=RadarTarget)
    assert (target.target_id, target.source) == ("hk-radar-01:1", "file:night.nmea")
    assert msgspec.json.decode(out[1], type=DeadLetter).reason == "missing_field"
    assert main(["ingest", "radar", "--site", site, "--file", f"nope={path}", "--stdout"]) == 2


@pytest.mark.unit
def test_site_check_reads_radars_yaml(tmp_path: Path, capsys) -> None:
    import shutil

    from pipeline.cli import main

    assert main(["site", "check", str(REPO / "sites" / "haikou"), "--no-env"]) == 0
    assert "radars.yaml: ok: 1 radar(s) (hk-radar-01)" in capsys.readouterr().out
    site = tmp_path / "site"
    shutil.copytree(REPO / "sites" / "haikou", site)
    (site / "radars.yaml").write_text("radars: [{id: x, lon: 110.2, lat: 20.0}]\n")
    assert main(["site", "check", str(site), "--no-env"]) == 1
    assert "radars.yaml: radars[0] (x).height_m" in capsys.readouterr().out


@pytest.mark.integration
def test_the_worker_takes_radar_reports_to_the_area(kafka_bootstrap: str, tmp_path: Path) -> None:
    from aiokafka import AIOKafkaProducer
    from test_worker_kafka import TopicTail, worker

    from pipeline import topics
    from schemas.records import FusionInput, RadarTarget

    tag = uuid.uuid4().hex[:8]
    now = 1_764_936_000_000

    def rep(radar_id: str) -> RadarTarget:
        return RadarTarget(
            radar_id=radar_id, target_id=f"{radar_id}:1", target_number=1, sentence="TTM",
            t_ms=now, rx_t_ms=now, lon=110.3, lat=20.1, range_m=7000.0, bearing_deg=20.0,
            position_sigma_m=90.0, status="tracking", source=f"test-{tag}",
        )  # fmt: skip

    async def scenario() -> tuple[list, list]:
        fusion = TopicTail(kafka_bootstrap, topics.FUSION_INPUT.name)
        dead = TopicTail(kafka_bootstrap, topics.DEADLETTER.name)
        await fusion.start()
        await dead.start()
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for rid in ("hk-radar-01", f"nope-{tag}"):
                value = msgspec.json.encode(rep(rid))
                await producer.send_and_wait(topics.RADAR_TARGET.name, value, key=rid.encode())
        finally:
            await producer.stop()
        try:
            got = await fusion.collect(1, lambda v: f"test-{tag}".encode() in v, 120)
            bad = await dead.collect(1, lambda v: b"unknown_radar" in v and tag.encode() in v, 30)
        finally:
            await fusion.stop()
            await dead.stop()
        return got, bad

    with worker(tmp_path, kafka_bootstrap, "feed") as proc:
        got, bad = asyncio.run(scenario())
        assert proc.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
    ((key, value),) = got
    item = msgspec.json.decode(value, type=FusionInput)
    assert key == b"haikou" and item.radar is not None and item.radar.radar_id == "hk-radar-01"
    assert len(bad) == 1
