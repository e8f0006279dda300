"""The vectorised position decoder (pipeline.core.aisdecode) against pyais, bit for bit."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import AIS_DATA_FILES as DATA_FILES
from hypothesis import given, settings
from hypothesis import strategies as st
from pyais.bit_vector import int_bit_vector
from pyais.encode import encode_dict
from pyais.messages import MSG_CLASS

from pipeline.core.aisdecode import LAYOUTS, POSITION_TYPES, decode_positions, message_types
from pipeline.core.nmea import Reassembler, frame_lines

ARMOUR = [chr(c + 48 if c < 40 else c + 56) for c in range(64)]


def pyais_dict(payload: str, fill: int = 0) -> dict:
    t = int_bit_vector(payload.encode(), fill).get_num(0, 6, False)
    return MSG_CLASS[t].from_vector(int_bit_vector(payload.encode(), fill)).asdict()


def same(a: object, b: object) -> bool:
    """Equal, and for floats the very same bits (sign of zero included)."""
    if isinstance(b, float) or isinstance(a, float):
        return (
            isinstance(a, (int, float))
            and isinstance(b, (int, float))
            and float(a) == float(b)
            and math.copysign(1, a) == math.copysign(1, b)
        )
    return a == b


def assert_matches_pyais(payloads: list[str], fills: list[int]) -> int:
    p = decode_positions(payloads, fills)
    for j, i in enumerate(p.index.tolist()):
        ref = pyais_dict(payloads[i], fills[i])
        for name in LAYOUTS[int(p.msg_type[j])]:
            ours = getattr(p, name)[j].item()
            assert same(ours, ref[name]), (payloads[i], name, ours, ref[name])
    return len(p)


def armour(bits: int, nbits: int) -> tuple[str, int]:
    """Armour an ``nbits``-bit integer: payload and fill bits."""
    nchars = -(-nbits // 6)
    fill = nchars * 6 - nbits
    v = bits << fill
    return "".join(ARMOUR[(v >> (6 * (nchars - 1 - k))) & 63] for k in range(nchars)), fill


@pytest.mark.unit
@pytest.mark.parametrize("name", DATA_FILES)
def test_every_position_report_in_the_real_files_matches_pyais(shared, name):
    path: Path = shared / "data" / "ais" / name
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rb") as f:
        lines = [ln.rstrip(b"\r\n").decode("latin-1") for ln in f]
    fr = frame_lines(lines, [0] * len(lines), name, Reassembler())
    n = assert_matches_pyais(fr.payload, fr.fill_bits.tolist())
    types = message_types(fr.payload)
    n_pos = int(np.isin(types, POSITION_TYPES).sum())
    assert n + len(decode_positions(fr.payload, fr.fill_bits).short) == n_pos
    assert n > 0


@pytest.mark.unit
def test_position_report_count_over_all_files(shared):
    total = 0
    for name in DATA_FILES:
        path = shared / "data" / "ais" / name
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rb") as f:
            lines = [ln.rstrip(b"\r\n").decode("latin-1") for ln in f]
        fr = frame_lines(lines, [0] * len(lines), name, Reassembler())
        total += len(decode_positions(fr.payload, fr.fill_bits))
    assert total == 29414


@pytest.mark.unit
@pytest.mark.parametrize("raw_turn", range(-128, 128))
def test_every_rate_of_turn_value(raw_turn):
    # type 1 with all bits zero except the 8-bit signed turn at offset 42
    bits = (1 << 162) | ((raw_turn & 0xFF) << (168 - 50))
    payload, fill = armour(bits, 168)
    assert_matches_pyais([payload], [fill])


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(msg_type=st.sampled_from(POSITION_TYPES), data=st.data())
def test_random_bits_decode_like_pyais(msg_type, data):
    nbits = {1: 168, 2: 168, 3: 168, 18: 168, 19: 312, 27: 96}[msg_type]
    rest = data.draw(st.integers(0, (1 << (nbits - 6)) - 1))
    payload, fill = armour((msg_type << (nbits - 6)) | rest, nbits)
    assert assert_matches_pyais([payload], [fill]) == 1


def _lat_lon(scale: int, lon_bits: int, lat_bits: int) -> st.SearchStrategy:
    return st.tuples(
        st.integers(-(1 << (lon_bits - 1)), (1 << (lon_bits - 1)) - 1),
        st.integers(-(1 << (lat_bits - 1)), (1 << (lat_bits - 1)) - 1),
    )


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(
    msg_type=st.sampled_from(POSITION_TYPES),
    mmsi=st.integers(0, (1 << 30) - 1),
    status=st.integers(0, 15),
    sog_raw=st.integers(0, 1023),
    cog_raw=st.integers(0, 3600),
    heading=st.sampled_from([0, 1, 90, 359, 511]) | st.integers(0, 359),
    lon_min=st.integers(-108_000_000, 108_600_000),
    lat_min=st.integers(-54_000_000, 54_600_000),
    accuracy=st.booleans(),
    second=st.integers(0, 63),
)
def test_pyais_encoded_messages_decode_bit_exactly(
    msg_type, mmsi, status, sog_raw, cog_raw, heading, lon_min, lat_min, accuracy, second
):
    """Random messages of every position type, encoded with pyais.encode, decode exactly."""
    if msg_type == 27:
        lon, lat = round(lon_min / 1000) / 600, round(lat_min / 1000) / 600
        lon, lat = max(-180.0, min(181.0, lon)), max(-90.0, min(91.0, lat))
        msg = {
            "msg_type": 27,
            "mmsi": mmsi,
            "status": status,
            "lon": lon,
            "lat": lat,
            "speed": sog_raw % 64,
            "course": cog_raw % 512,
            "accuracy": accuracy,
        }
    else:
        msg = {
            "msg_type": msg_type,
            "mmsi": mmsi,
            "lon": lon_min / 600000,
            "lat": lat_min / 600000,
            "speed": sog_raw / 10,
            "course": cog_raw / 10,
            "heading": heading,
            "accuracy": accuracy,
            "second": second,
        }
        if msg_type in (1, 2, 3):
            msg["status"] = status
    sentences = encode_dict(msg, talker_id="AI", sentence_type="VDM")
    fr = frame_lines(sentences, [0] * len(sentences), "enc", Reassembler())
    assert len(fr) == 1 and not fr.rejects
    p = decode_positions(fr.payload, fr.fill_bits)
    assert len(p) == 1 and int(p.mmsi[0]) == mmsi and int(p.msg_type[0]) == msg_type
    assert_matches_pyais(fr.payload, fr.fill_bits.tolist())
    # and the values that went in come out
    if msg_type == 27:
        assert float(p.speed[0]) == msg["speed"] and float(p.course[0]) == msg["course"]
    else:
        assert float(p.speed[0]) == sog_raw / 10 and float(p.course[0]) == cog_raw / 10
        assert int(p.heading[0]) == heading and int(p.second[0]) == second
        assert abs(float(p.lon[0]) - msg["lon"]) < 1e-6 and abs(float(p.lat[0]) - msg["lat"]) < 1e-6


@pytest.mark.unit
def test_not_available_values_become_nan():
    # type 1: lon 181, lat 91, SOG 1023, COG 3600, heading 511
    bits = (
        (1 << 162)
        | (1023 << (168 - 60))
        | ((181 * 600000) << (168 - 89))
        | ((91 * 600000) << (168 - 116))
        | (3600 << (168 - 128))
        | (511 << (168 - 137))
    )
    payload, fill = armour(bits, 168)
    p = decode_positions([payload], [fill])
    assert (
        float(p.lon[0]),
        float(p.lat[0]),
        float(p.speed[0]),
        float(p.course[0]),
        int(p.heading[0]),
    ) == (181.0, 91.0, 102.3, 360.0, 511)
    for arr in (p.lon_deg, p.lat_deg, p.sog_kn, p.cog_deg, p.heading_deg):
        assert np.isnan(arr[0])
    # type 27: SOG 63 and COG 511 are "not available"
    bits27 = (27 << 90) | (63 << (96 - 85)) | (511 << (96 - 94))
    payload, fill = armour(bits27, 96)
    p = decode_positions([payload], [fill])
    assert np.isnan(p.sog_kn[0]) and np.isnan(p.cog_deg[0]) and np.isnan(p.heading_deg[0])


@pytest.mark.unit
def test_short_reports_and_other_types_are_left_out():
    short = "15B4FT5000JRP>PE6E68Nbk"  # type 1 cut to 138 bits
    other = "402=481uaUcf;OQ55JS9ITi025Jp"  # type 4
    full = "13u?etPv2;0n:dDPwUM1U1Cb069D"
    p = decode_positions([short, other, full, ""], [0, 0, 0, 0])
    assert p.index.tolist() == [2] and p.short.tolist() == [0]
    assert message_types([short, other, ""]).tolist() == [1, 4, -1]


@pytest.mark.unit
def test_empty_batch():
    assert len(decode_positions([], [])) == 0
