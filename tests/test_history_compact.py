"""Compaction of closed days (``shorewatch archive compact``): fewer files, the same rows,
each Kafka offset once, safe against crashes, late rows and a running archiver."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from pathlib import Path

import msgspec
import pyarrow.parquet as pq
import pytest

from pipeline.history import compact as comp
from pipeline.history.layout import POSITIONS
from pipeline.history.offsets import OffsetLog
from pipeline.history.query import Archive, near
from pipeline.history.writer import ArchiveWriter, Bounds
from schemas.records import AisPosition

T0_MS = 1_772_920_800_000  # 2026-03-07T22:00:00Z
DAY_MS = 86_400_000
TOPIC = "shorewatch.ais.position.v1"
_enc = msgspec.json.Encoder()


def position(i: int) -> AisPosition:
    """The i-th test position: 50 vessels, one fix every 0.5 s of event time."""
    return AisPosition(
        mmsi=412_000_000 + i % 50, msg_type=1, t_ms=T0_MS + i * 500, lon=110.3 + (i % 97) * 1e-3,
        lat=20.05 + (i % 89) * 1e-3, sog_kn=(i % 13) * 0.5, cog_deg=float(i % 360),
        heading_deg=None, nav_status=0, accuracy=True, source="test", rx_t_ms=T0_MS + i * 500,
    )  # fmt: skip


def archive_rows(
    w: ArchiveWriter, partition: int, first: int, n: int, segment: int, later: int = 0
) -> None:
    """Archive offsets ``first .. first + n - 1`` of ``partition`` (position ``offset +
    later``) in segments of ``segment`` rows, as the archiver writes them."""
    for lo in range(first, first + n, segment):
        idx = list(range(lo, min(lo + segment, first + n)))
        ps = [position(i + later) for i in idx]
        w.add(TOPIC, partition, idx, [p.t_ms for p in ps], [_enc.encode(p) for p in ps])
        assert w.flush(TOPIC, partition) is not None


def offsets(root: Path) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for f in sorted(root.glob(f"topic={POSITIONS}/date=*/hour=*/*.parquet")):
        if f.name.startswith("."):
            continue
        t = pq.read_table(f, columns=["kafka_partition", "kafka_offset"])
        out += list(
            zip(t["kafka_partition"].to_pylist(), t["kafka_offset"].to_pylist(), strict=True)
        )
    return sorted(out)


def counted(root: Path) -> tuple[int, int]:
    """(rows, distinct offsets) a query over the whole archive sees."""
    a = Archive(root)
    a.view("p", POSITIONS, None, None)
    r = a.query(
        "SELECT count(*) AS n, count(DISTINCT (kafka_partition, kafka_offset)) AS d FROM p"
    ).to_pylist()[0]
    return r["n"], r["d"]


def data_files(root: Path, date: str) -> list[Path]:
    return sorted(
        p for p in (root / f"topic={POSITIONS}" / f"date={date}").glob("hour=*/*.parquet")
        if not p.name.startswith(".")
    )  # fmt: skip


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """Two partitions, 2 × 9,000 positions from 22:00 on 7 March (into 8 March), in
    segments of 700 rows: hourly files on two dates."""
    w = ArchiveWriter(tmp_path, Bounds(row_group_rows=1024))
    archive_rows(w, 0, 0, 9000, 700)
    archive_rows(w, 1, 0, 9000, 700, later=9000)
    return tmp_path


@pytest.mark.unit
def test_compaction_keeps_every_row_once_and_the_answers(archive: Path) -> None:
    before = offsets(archive)
    n_before = len(data_files(archive, "2026-03-07"))
    logs = {p: OffsetLog(archive, POSITIONS, p).recover() for p in (0, 1)}
    answer = near(Archive(archive), 110.33, 20.07, 800, T0_MS, T0_MS + 2 * DAY_MS)

    res = comp.compact_archive(archive, now_ms=T0_MS + 3 * DAY_MS, min_age_h=0, row_group_rows=1024)
    assert {(r.date, r.action) for r in res} == {
        ("2026-03-07", "compacted"),
        ("2026-03-08", "compacted"),
    }
    assert n_before > 1
    for date in ("2026-03-07", "2026-03-08"):
        files = data_files(archive, date)
        assert [f.parent.name for f in files] == ["hour=all"], files
        assert files[0].name == f"day-{date}-0000.parquet"
    assert offsets(archive) == before  # every (partition, offset) once, none lost
    assert counted(archive) == (len(before), len(before))
    assert near(Archive(archive), 110.33, 20.07, 800, T0_MS, T0_MS + 2 * DAY_MS) == answer
    # the archiver's bookkeeping is untouched: it resumes where it was
    resumed = {p: OffsetLog(archive, POSITIONS, p).recover() for p in (0, 1)}
    assert resumed == logs == {0: 9000, 1: 9000}
    assert not list(archive.glob("_compaction/*/*.json"))
    # sorted for pruning: row groups hold a small part of the day's area
    md = pq.ParquetFile(data_files(archive, "2026-03-07")[0]).metadata
    assert md.num_row_groups > 4
    lon_i = md.schema.names.index("lon")
    spans = [
        md.row_group(g).column(lon_i).statistics.max - md.row_group(g).column(lon_i).statistics.min
        for g in range(md.num_row_groups)
    ]
    assert sorted(spans)[len(spans) // 2] < 0.06  # the day spans 0.096 degrees of lon

    again = comp.compact_archive(archive, now_ms=T0_MS + 3 * DAY_MS, min_age_h=0)
    assert {r.action for r in again} == {"skipped"}  # idempotent
    assert offsets(archive) == before
    # --rewrite: a day already in one file is written again (a new row-group size)
    comp.compact_archive(
        archive, now_ms=T0_MS + 3 * DAY_MS, min_age_h=0, row_group_rows=4096, rewrite=True
    )
    files = data_files(archive, "2026-03-07")
    assert [f.name for f in files] == ["day-2026-03-07-0001.parquet"]
    assert pq.ParquetFile(files[0]).metadata.row_group(0).num_rows == 4096
    assert offsets(archive) == before


@pytest.mark.unit
def test_young_days_and_pending_segments_wait(archive: Path) -> None:
    res = comp.compact_archive(archive, now_ms=T0_MS + DAY_MS, min_age_h=26)
    assert {r.action for r in res} == {"skipped"}
    assert all("younger" in r.why for r in res)
    # a segment written but not yet renamed by the archiver holds its date back
    lg = OffsetLog(archive, POSITIONS, 0)
    lg.recover()
    final = archive / f"topic={POSITIONS}/date=2026-03-07/hour=23/part-000-x.parquet"
    lg.begin(9500, [(final.with_name(".tmp"), final)])
    res = comp.compact_day(archive, POSITIONS, "2026-03-07")
    assert res.action == "skipped" and "pending" in res.why
    assert len(data_files(archive, "2026-03-07")) > 1


@pytest.mark.unit
def test_late_rows_after_compaction_are_merged_into_the_next_generation(archive: Path) -> None:
    comp.compact_archive(archive, now_ms=T0_MS + 3 * DAY_MS, min_age_h=0)
    # late rows of 7 March arrive on a third partition after the day was compacted
    w = ArchiveWriter(archive, Bounds(row_group_rows=1024))
    archive_rows(w, 2, 0, 3000, 1000)
    both = data_files(archive, "2026-03-07")
    assert {f.parent.name for f in both} >= {"hour=all", "hour=22"}
    assert counted(archive) == (21_000, 21_000)  # the day file and the late hourly files
    comp.compact_archive(archive, now_ms=T0_MS + 3 * DAY_MS, min_age_h=0)
    files = data_files(archive, "2026-03-07")
    assert [f.name for f in files] == ["day-2026-03-07-0001.parquet"]
    got = offsets(archive)
    assert len(got) == len(set(got)) == 21_000
    assert {p for p, _ in got} == {0, 1, 2}


@pytest.mark.unit
def test_a_crash_at_any_step_loses_nothing_and_counts_nothing_twice(
    archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = offsets(archive)
    real_replace = os.replace

    # crash between the journal and the rename of the output (step 3)
    def no_rename(src, dst):  # type: ignore[no-untyped-def]
        if str(dst).endswith(".parquet") and "hour=all" in str(dst):
            raise OSError("power cut")
        return real_replace(src, dst)

    monkeypatch.setattr(comp.os, "replace", no_rename)
    with pytest.raises(OSError):
        comp.compact_day(archive, POSITIONS, "2026-03-07")
    monkeypatch.setattr(comp.os, "replace", real_replace)
    assert comp.journal_path(archive, POSITIONS, "2026-03-07").exists()
    assert counted(archive) == (len(before), len(before))  # readers use the inputs
    assert comp.recover(archive) == [f"_compaction/topic={POSITIONS}/date=2026-03-07.json"]
    assert not list(archive.glob(f"topic={POSITIONS}/date=*/hour=all/*"))  # rolled back
    assert offsets(archive) == before

    # crash after the rename, while deleting the inputs (step 4)
    real_finish = comp._finish
    deleted: list[str] = []

    def half_finish(root, jpath, j):  # type: ignore[no-untyped-def]
        first = root / j.inputs[0]
        first.unlink()
        deleted.append(str(first))
        raise OSError("power cut")

    monkeypatch.setattr(comp, "_finish", half_finish)
    with pytest.raises(OSError):
        comp.compact_day(archive, POSITIONS, "2026-03-07")
    monkeypatch.setattr(comp, "_finish", real_finish)
    assert deleted
    assert counted(archive) == (len(before), len(before))  # readers use the output
    comp.recover(archive)  # rolls forward
    assert [f.parent.name for f in data_files(archive, "2026-03-07")] == ["hour=all"]
    assert offsets(archive) == before


@pytest.mark.unit
def test_a_query_whose_files_were_compacted_under_it_lists_them_again(archive: Path) -> None:
    a = Archive(archive)
    a.view("p", POSITIONS, None, None)  # lists the hourly files
    comp.compact_archive(archive, now_ms=T0_MS + 3 * DAY_MS, min_age_h=0)
    r = a.query("SELECT count(*) AS n FROM p").to_pylist()[0]
    assert r["n"] == 18_000
    assert a.skipped == []


@pytest.mark.unit
def test_cli_compact_json(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import main

    assert main(["archive", "compact", "--root", str(archive), "--min-age-h", "0", "--dry-run",
                 "--json"]) == 0  # fmt: skip
    plan = json.loads(capsys.readouterr().out)
    assert plan["days"] == 2 and plan["rows"] == 18_000 and plan["bytes_out"] == 0
    assert len(data_files(archive, "2026-03-07")) > 1  # a dry run changes nothing
    assert main(["archive", "compact", "--root", str(archive), "--min-age-h", "0", "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["days"] == 2 and done["rows"] == 18_000 and done["bytes_out"] > 0
    assert done["files_in"] == plan["files_in"] > 2


@pytest.mark.integration
async def test_compaction_beside_a_running_archiver(kafka_bootstrap: str, tmp_path: Path) -> None:
    """The real archiver writes from the broker while compaction runs again and again
    beside it and queries count the rows: no query sees a row twice, and in the end the
    archive holds every offset of every partition exactly once."""
    from test_history_archive import _produce, _topic, _wait

    from pipeline.history.archiver import Archiver

    topic = await _topic(kafka_bootstrap)
    values = [(str(p.mmsi).encode(), _enc.encode(p)) for p in map(position, range(16_000))]
    arch = Archiver(kafka_bootstrap, tmp_path, topic_names=[topic], group_id=f"g{uuid.uuid4().hex}",
                    bounds=Bounds(max_rows=300, max_age_s=0.3, row_group_rows=1024))  # fmt: skip
    stop = threading.Event()
    problems: list[str] = []
    rounds = [0]

    def compact_and_count() -> None:
        while not stop.is_set():
            try:
                comp.compact_archive(tmp_path, now_ms=T0_MS + 3 * DAY_MS, min_age_h=0)
                if (tmp_path / f"topic={POSITIONS}").is_dir():
                    n, d = counted(tmp_path)
                    if n != d:
                        problems.append(f"a query saw {n} rows but {d} offsets")
                rounds[0] += 1
            except Exception as exc:  # noqa: BLE001 - reported by the test
                problems.append(repr(exc))
            stop.wait(0.05)

    await _produce(kafka_bootstrap, topic, values[:8000])
    task = asyncio.create_task(arch.run())
    compactor = threading.Thread(target=compact_and_count)
    compactor.start()
    try:
        await _wait(lambda: arch.writer.counters["rows"] >= 8000, 180, "the first rows archived")
        await _produce(kafka_bootstrap, topic, values[8000:])  # late rows of a compacted day
        await _wait(
            lambda: arch.writer.counters["rows"] >= 16_000 and arch.writer.buffered_rows() == 0,
            180,
            "all rows archived",
        )
        await _wait(lambda: rounds[0] >= 3, 120, "compaction rounds")
    finally:
        stop.set()
        arch.stop()
        await asyncio.wait_for(task, 60)
        await asyncio.to_thread(compactor.join, 120)
    assert problems == []
    comp.compact_archive(tmp_path, now_ms=T0_MS + 3 * DAY_MS, min_age_h=0)
    got = offsets(tmp_path)
    assert len(got) == len(set(got)) == 16_000
    per_partition: dict[int, list[int]] = {}
    for p, o in got:
        per_partition.setdefault(p, []).append(o)
    for p, offs in per_partition.items():
        assert offs == list(range(len(offs))), f"partition {p} has gaps"
    for date in ("2026-03-07", "2026-03-08"):
        assert [f.parent.name for f in data_files(tmp_path, date)] == ["hour=all"]


@pytest.mark.unit
def test_files_of_two_schema_versions_are_queried_and_compacted_together(archive: Path) -> None:
    """A file written by a later version, with one more column, beside the others: a query
    reads both (by column name), and compaction keeps every row with the new column."""
    import pyarrow as pa

    from pipeline.history.layout import bucket_dir
    from pipeline.history.writer import write_file

    old = data_files(archive, "2026-03-07")[0]
    t = pq.read_table(old).slice(0, 10)
    t = t.append_column("extra_m", pa.array([1.5] * 10)).set_column(
        t.schema.get_field_index("kafka_partition"),
        "kafka_partition",
        pa.array([7] * 10, pa.int32()),
    )
    d = bucket_dir(archive, POSITIONS, "2026-03-07", 23)
    d.mkdir(parents=True, exist_ok=True)
    write_file(t, d / "part-007-00000000000000000000-00000000000000000009.parquet", 1024)
    assert counted(archive) == (18_010, 18_010)
    comp.compact_archive(archive, now_ms=T0_MS + 3 * DAY_MS, min_age_h=0)
    assert counted(archive) == (18_010, 18_010)
    day = pq.read_table(data_files(archive, "2026-03-07")[0], columns=["extra_m"])
    assert day["extra_m"].null_count == day.num_rows - 10
