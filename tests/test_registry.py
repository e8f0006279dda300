"""The vessel registry and watchlist: hull numbers, imports, look-ups, on SQLite and on a
real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.cli import main
from pipeline.core.hullnumbers import PROVINCES, USES, normalise, parse
from pipeline.errors import RegistryError, RegistryImportError, RegistryUnavailable
from pipeline.registry.importer import import_file
from pipeline.registry.index import RegistryIndex
from pipeline.registry.store import Registry

HEADER = (
    "registration_no,mmsi,name,hull_number,port_of_registry,vessel_type,length_m,owner,"
    "home_harbours,valid_until"
)
GOOD = [
    "QH-0001,412345001,Qiong Yu 1,琼海口渔10001,Haikou,fishing,14.2,Wang,Haikou Fishing Harbour,2027-06-30",
    "QH-0002,412345002,Qiong Yu 2,琼 海口渔 10002,Haikou,fishing,11.0,Li,,2024-01-31",
    "QH-0003,,,琼文昌渔00301,Wenchang,fishing,,,Qinglan Port|Puqian Harbour,",
]  # fmt: skip
BAD = [
    ("QH-0004,41234,short mmsi,,,,,,,", "mmsi '41234' is not nine digits"),
    (",412345005,no registration,,,,,,,", "registration_no is missing"),
    ("QH-0006,412345006,bad hull,海口12345,,,,,,", "does not follow the hull-number pattern"),
    ("QH-0007,412345007,bad date,,,,,,,30/06/2027", "is not a date"),
    ("QH-0008,412345008,bad length,,,,-3,,,", "length_m '-3' is not in"),
    ("QH-0001,412345099,repeat,,,,,,,", "repeats line 2"),
]


def _csv(tmp_path: Path, rows: list[str]) -> Path:
    p = tmp_path / "registry.csv"
    p.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return p


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'registry.sqlite'}"


# ------------------------------------------------------------------ hull numbers
@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("琼海口渔12345", "琼海口渔12345"),
        ("粤湛渔10086", "粤湛渔10086"),
        ("琼 海口 渔-１２３４５", "琼海口渔12345"),  # spaces, a hyphen, full-width digits
        ("桂北渔 8O21", "桂北渔8021"),  # a letter O read where a digit must be
        ("琼海口渔", None),
        ("海口渔12345", None),
        ("京海口渔12345", None),  # no coast: not a province of this pattern
        ("琼海口渔1234567", None),
        ("<script>alert(1)</script>", None),
        ("", None),
    ],
)
def test_hull_numbers_are_normalised_and_validated(text: str, expected: str | None) -> None:
    got = parse(text)
    assert (str(got) if got else None) == expected


@pytest.mark.unit
@settings(max_examples=200, deadline=None)
@given(
    province=st.sampled_from(PROVINCES),
    port=st.text(alphabet="海口文昌湛江北陵水三亚", min_size=1, max_size=3),
    use=st.sampled_from(USES),
    serial=st.text(alphabet="0123456789", min_size=2, max_size=6),
    sep=st.sampled_from(["", " ", "-", "·"]),
)
def test_a_painted_hull_number_reads_back_as_itself(province, port, use, serial, sep) -> None:
    number = f"{province}{port}{use}{serial}"
    painted = sep.join([province, port, use, serial])
    assert str(parse(painted)) == number
    assert normalise(number) == number


# ------------------------------------------------------------------ imports
@pytest.mark.unit
def test_import_reports_every_bad_row_and_writes_the_good_ones_once(
    tmp_path: Path, sqlite_url: str
) -> None:
    reg = Registry.open(sqlite_url)
    path = _csv(tmp_path, [*GOOD, *(r for r, _ in BAD)])
    report = import_file(reg, path)
    assert (report.read, report.written) == (len(GOOD) + len(BAD), len(GOOD))
    assert [line for line, _ in report.rejected] == list(
        range(len(GOOD) + 2, len(GOOD) + 2 + len(BAD))
    )
    for (_, reason), (_, want) in zip(report.rejected, BAD, strict=True):
        assert want in reason
    # idempotent: the same file again leaves the same registry
    before = reg.all()
    import_file(reg, path)
    assert reg.all() == before and reg.count() == len(GOOD)
    rec = reg.by_hull_number("琼海口渔 10002")
    assert rec is not None and rec.registration_no == "QH-0002" and rec.name == "QIONG YU 2"
    assert rec.expired(dt.date(2026, 12, 5)) and not reg.all()[0].expired(dt.date(2026, 12, 5))
    assert reg.all()[2].home_harbours == ("Qinglan Port", "Puqian Harbour")


@pytest.mark.unit
def test_json_import_and_unreadable_files(tmp_path: Path, sqlite_url: str) -> None:
    reg = Registry.open(sqlite_url)
    p = tmp_path / "vessels.json"
    p.write_text(json.dumps([
        {"registration_no": "J-1", "mmsi": "413000001", "home_harbours": ["Xiuying Port"]},
        {"registration_no": "J-2", "colour": "red"},
        "not an object",
    ]), encoding="utf-8")  # fmt: skip
    report = import_file(reg, p)
    assert report.written == 1
    assert [line for line, _ in report.rejected] == [2, 3]
    assert "unknown column(s) colour" in report.rejected[0][1]
    bad = tmp_path / "broken.json"
    bad.write_text("[{", encoding="utf-8")
    with pytest.raises(RegistryImportError, match="not JSON"):
        import_file(reg, bad)
    with pytest.raises(RegistryImportError, match="registration_no"):
        import_file(reg, _write(tmp_path / "nohdr.csv", "mmsi,name\n412000000,x\n"))


def _write(p: Path, text: str) -> Path:
    p.write_text(text, encoding="utf-8")
    return p


# ------------------------------------------------------------------ look-ups
@pytest.mark.unit
def test_batch_lookups_agree_with_the_database(tmp_path: Path, sqlite_url: str) -> None:
    reg = Registry.open(sqlite_url)
    rows = [f"R{i:05d},{412_000_000 + 7 * i},B {i},,,,,,," for i in range(3000)]
    import_file(reg, _csv(tmp_path, rows))
    rng = np.random.default_rng(7)
    batch = rng.integers(412_000_000, 412_000_000 + 7 * 3000 + 50, size=4000)
    from_db = reg.by_mmsi(batch.tolist())
    index = RegistryIndex(reg.all())
    pos = index.positions(batch)
    assert sorted({int(m) for m, p in zip(batch, pos, strict=True) if p >= 0}) == sorted(from_db)
    for m, p in zip(batch.tolist(), pos.tolist(), strict=True):
        if p >= 0:
            assert index.records[p] == from_db[m]


@pytest.mark.unit
def test_watchlist_entries_match_lapse_and_go(sqlite_url: str) -> None:
    reg = Registry.open(sqlite_url)
    t0 = dt.datetime(2026, 3, 8, 4, 0, tzinfo=dt.UTC)
    reg.watch("mmsi", "412345001", "lead: livestock by boat", "duty officer", now=t0)
    reg.watch("hull_number", "琼 海口渔 10002", "no registration", "patrol", now=t0)
    reg.watch("name", "qiong  yu 3", "seen at Xinbu", "analyst", t0 + dt.timedelta(hours=1), now=t0)
    hits = reg.watch_hits(
        t0, mmsis=[412345001, 1], names=["QIONG YU 3"], hull_numbers=["琼海口渔10002"]
    )
    assert sorted(h.kind for h in hits) == ["hull_number", "mmsi", "name"]
    later = reg.watch_hits(t0 + dt.timedelta(hours=2), names=["QIONG YU 3"])
    assert later == []  # lapsed
    assert reg.unwatch("mmsi", "412345001") and not reg.unwatch("mmsi", "412345001")
    with pytest.raises(RegistryError):
        reg.watch("mmsi", "123", "x", "y")
    with pytest.raises(RegistryError):
        reg.watch("hull_number", "not a hull", "x", "y")


@pytest.mark.unit
def test_cli_import_show_and_watchlist(tmp_path: Path, sqlite_url: str, capsys) -> None:
    path = _csv(tmp_path, [*GOOD, BAD[0][0]])
    assert main(["registry", "import", str(path), "--registry-url", sqlite_url]) == 1
    out = capsys.readouterr().out
    assert "3 written, 1 rejected" in out and "line 5: mmsi '41234' is not nine digits" in out
    assert main(["watchlist", "add", "mmsi", "412345001", "--reason", "lead", "--by", "ops",
                 "--registry-url", sqlite_url]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["registry", "show", "412345001", "--json", "--registry-url", sqlite_url]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    shown = json.loads(line)
    assert shown["hull_number"] == "琼海口渔10001" and shown["watchlist"][0]["reason"] == "lead"
    assert main(["registry", "show", "nothing-like-it", "--registry-url", sqlite_url]) == 1


@pytest.mark.unit
def test_an_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(RegistryUnavailable, match="unreachable"):
        Registry.open("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2")


@pytest.mark.integration
def test_the_same_migrations_and_queries_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    reg = Registry.open(postgres_url)
    reg.open(postgres_url)  # migrating twice is a no-op
    report = import_file(reg, _csv(tmp_path, [*GOOD, *(r for r, _ in BAD)]))
    assert report.written == len(GOOD) and len(report.rejected) == len(BAD)
    import_file(reg, _csv(tmp_path, GOOD))
    assert reg.count() == len(GOOD)
    assert set(reg.by_mmsi([412345001, 412345002, 999999999])) == {412345001, 412345002}
    assert reg.by_hull_number("琼文昌渔00301").registration_no == "QH-0003"  # type: ignore[union-attr]
    t0 = dt.datetime.now(dt.UTC)
    reg.watch("hull_number", "琼文昌渔00301", "three-no vessel suspect", "patrol", now=t0)
    assert [h.value for h in reg.watch_hits(t0, hull_numbers=["琼文昌渔00301"])] == [
        "琼文昌渔00301"
    ]
    assert RegistryIndex(reg.all()).registered(np.array([412345001, 5])).tolist() == [True, False]
