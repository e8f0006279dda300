"""Compaction of closed days: a day's hourly files of one table become one file, sorted so
that row-group statistics prune place queries (``shorewatch archive compact``).

::

    ROOT/topic=<table>/date=D/hour=HH/part-….parquet     (written by the archiver)
    ROOT/topic=<table>/date=D/hour=all/day-D-<gen>.parquet   (one file: the whole day)
    ROOT/_compaction/topic=<table>/date=D.json           (only while a compaction runs)

A query opens one file per day instead of 24 (each file costs about 10 ms to open, whatever
its size), and the rows of a day are sorted for (positions, tracks, alerts) in latitude bands, each by longitude
(:func:`banded_order`: each row group about a square of the day's area), by time otherwise,
in row groups of ``row_group_rows``: a point-radius query reads the few row groups whose
lon and lat ranges can hold the point.

``hour=all`` keeps the layout Hive-style (``topic``, ``date``, ``hour`` partition columns;
``hour`` is then text, ``all`` meaning the whole date): filter on ``t_ms``, which every row
has, rather than on ``hour``.

**Safe.** Rows are copied, never rewritten: every column, ``kafka_partition`` and
``kafka_offset`` included, so the archive still holds every offset exactly once, and the
archiver's offset logs (which name segments, not files) are untouched. A day is compacted
in steps that a crash at any point leaves recoverable:

1. the new day file is written under a temporary name (``.day-….parquet.tmp``), synced, and
   its row count checked against the inputs';
2. a journal names the inputs and the output (atomically: temporary file, sync, rename);
3. the output is renamed to its final name;
4. the inputs are deleted, then the journal.

:func:`recover` (run first by every compaction) rolls a journal forward when the output is
in place (step 3 done) and back otherwise. A reader (:meth:`Archive.files
<pipeline.history.query.Archive.files>`) that finds a journal uses its inputs while all of
them are there and the output once any is gone, so it never counts a row twice. A day with
a segment still pending in an offset log (written but not yet renamed by the archiver) is
left alone until the archiver finishes it, and so is every day younger than ``min_age_h``
(rows may still come). Compacting again is idempotent: a day already in one file is
skipped; late rows that arrived after it was compacted (new hourly files) are merged with
the day file into the next generation.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import ArchiveError
from pipeline.history.layout import day_text
from pipeline.history.offsets import fsync_dir
from pipeline.history.writer import write_file

__all__ = [
    "COMPACT_HOUR",
    "Compacted",
    "compact_archive",
    "compact_day",
    "journal_path",
    "banded_order",
    "reader_files",
    "recover",
]

log = logging.getLogger(__name__)

#: the ``hour=`` directory value of a compacted day's file
COMPACT_HOUR = "all"

DAY_MS = 86_400_000


@dataclass
class Compacted:
    """What compacting one day of one table did.

    :param action: ``compacted``, ``skipped`` (with ``why``) or ``planned`` (a dry run)
    """

    table: str
    date: str
    action: str
    inputs: int = 0
    rows: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    output: str | None = None
    why: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "")}


@dataclass
class _Journal:
    output: str
    inputs: list[str] = field(default_factory=list)


def journal_path(root: Path, table: str, date: str) -> Path:
    return Path(root) / "_compaction" / f"topic={table}" / f"date={date}.json"


def _read_journal(path: Path) -> _Journal | None:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"compaction journal {path} cannot be read: {exc}") from exc
    return _Journal(str(doc["output"]), [str(x) for x in doc["inputs"]])


def _write_journal(path: Path, j: _Journal) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump({"output": j.output, "inputs": j.inputs}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _finish(root: Path, jpath: Path, j: _Journal) -> None:
    """Step 4: delete the inputs, then the journal."""
    dirs = set()
    for rel in j.inputs:
        p = root / rel
        if p.exists():
            p.unlink()
        dirs.add(p.parent)
    for d in dirs:
        if d.is_dir():
            fsync_dir(d)
            if d.name != f"hour={COMPACT_HOUR}" and not any(d.iterdir()):
                d.rmdir()
    jpath.unlink(missing_ok=True)
    fsync_dir(jpath.parent)


def recover(root: str | os.PathLike[str]) -> list[str]:
    """Finish or undo every compaction a crash interrupted; the journals handled."""
    root = Path(root)
    done = []
    for jpath in sorted(root.glob("_compaction/topic=*/date=*.json")):
        j = _read_journal(jpath)
        if j is None:
            continue
        out = root / j.output
        if out.exists():  # step 3 done: roll forward
            _finish(root, jpath, j)
        else:  # before step 3: the inputs are intact, drop the temporary output
            (out.parent / f".{out.name}.tmp").unlink(missing_ok=True)
            jpath.unlink(missing_ok=True)
        done.append(str(jpath.relative_to(root)))
    return done


def reader_files(root: Path, table: str, date: str, files: list[str]) -> list[str]:
    """The files of one date a query should read, given a compaction that may be running:
    its inputs while they are all there, else its output (never both).

    :param files: the data files listed under ``topic=<table>/date=<date>``
    """
    try:
        j = _read_journal(journal_path(root, table, date))
    except ArchiveError:
        j = None
    if j is None:
        return files
    inputs = {str(root / x) for x in j.inputs}
    output = str(root / j.output)
    if all(os.path.exists(p) for p in inputs):
        return [f for f in files if f != output]
    return [f for f in files if f not in inputs]


# --------------------------------------------------------------------------- sorting
def banded_order(lon: np.ndarray, lat: np.ndarray, rows_per_group: int) -> np.ndarray:
    """An order of points that makes each run of ``rows_per_group`` points a compact box:
    latitude bands, each sorted by longitude, the band height chosen so that a band holds
    about as many row groups as its length in degrees is their width (row groups about
    square over the points' area, 1st to 99th percentile); points without a position last.

    >>> banded_order(np.array([0.0, 1.0, 0.0, 1.0]), np.array([1.0, 1.0, 0.0, 0.0]), 2).tolist()
    [2, 3, 0, 1]
    """
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    ok = np.isfinite(lon) & np.isfinite(lat)
    n = int(ok.sum())
    band = np.full(len(lon), np.iinfo(np.int64).max, dtype=np.int64)
    if n:
        x0, x1 = np.percentile(lon[ok], [1, 99])
        y0, y1 = np.percentile(lat[ok], [1, 99])
        groups = max(1.0, n / max(1, rows_per_group))
        area = max(float(x1 - x0), 1e-9) * max(float(y1 - y0), 1e-9)
        side = max((area / groups) ** 0.5, 1e-9)
        band[ok] = np.floor((lat[ok] - y0) / side).astype(np.int64)
    key_lon = np.where(ok, lon, np.inf)
    return np.lexsort((key_lon, band))


def _sorted(rows: pa.Table, rows_per_group: int) -> pa.Table:
    names = set(rows.column_names)
    if {"lon", "lat"} <= names:
        lon = rows.column("lon").to_numpy(zero_copy_only=False).astype(np.float64)
        lat = rows.column("lat").to_numpy(zero_copy_only=False).astype(np.float64)
        return rows.take(pa.array(banded_order(lon, lat, rows_per_group)))
    if "t_ms" in names:
        return rows.sort_by([("t_ms", "ascending")])
    return rows


# --------------------------------------------------------------------------- compaction
def _pending_days(root: Path, table: str) -> set[str]:
    """Dates with a segment still pending in one of the table's offset logs."""
    out: set[str] = set()
    for p in root.glob(f"_offsets/topic={table}/partition=*.json"):
        try:
            doc = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        for _tmp, final in (doc.get("pending") or {}).get("files", []):
            for part in Path(final).parts:
                if part.startswith("date="):
                    out.add(part[5:])
    return out


def _day_files(ddir: Path) -> tuple[list[Path], list[Path]]:
    """(hourly data files, day files) of one date directory."""
    hourly: list[Path] = []
    daily: list[Path] = []
    for hdir in sorted(ddir.glob("hour=*")):
        for p in sorted(hdir.glob("*.parquet")):
            if p.name.startswith((".", "_")):
                continue
            (daily if hdir.name == f"hour={COMPACT_HOUR}" else hourly).append(p)
    return hourly, daily


def _generation(daily: list[Path]) -> int:
    gens = []
    for p in daily:
        try:
            gens.append(int(p.stem.rsplit("-", 1)[1]))
        except (IndexError, ValueError):
            continue
    return max(gens, default=-1) + 1


def compact_day(
    root: str | os.PathLike[str],
    table: str,
    date: str,
    *,
    row_group_rows: int = 16_384,
    dry_run: bool = False,
    rewrite: bool = False,
) -> Compacted:
    """Compact one date of one table into one file (see the module docstring).

    :raises ArchiveError: an input cannot be read, or the output's rows do not add up
        (nothing is changed then)
    """
    root = Path(root)
    ddir = root / f"topic={table}" / f"date={date}"
    hourly, daily = _day_files(ddir)
    inputs = hourly + daily
    res = Compacted(table, date, "skipped", inputs=len(inputs))
    if not hourly and (len(daily) == 0 or (len(daily) == 1 and not rewrite)):
        res.why = "already one file" if daily else "no files"
        return res
    if date in _pending_days(root, table):
        res.why = "a segment of this date is still pending in an offset log"
        return res
    res.bytes_in = sum(p.stat().st_size for p in inputs)
    expected = 0
    parts = []
    for p in inputs:
        try:
            parts.append(pq.read_table(p))
        except (OSError, pa.ArrowException) as exc:
            raise ArchiveError(f"cannot compact {table} {date}: {p} unreadable: {exc}") from exc
        expected += parts[-1].num_rows
    res.rows = expected
    name = f"day-{date}-{_generation(daily):04d}.parquet"
    out_dir = ddir / f"hour={COMPACT_HOUR}"
    final = out_dir / name
    res.output = str(final.relative_to(root))
    if dry_run:
        res.action = "planned"
        return res
    rows = pa.concat_tables(parts, promote_options="default")
    rows = _sorted(rows.replace_schema_metadata(None), row_group_rows)
    if rows.num_rows != expected:  # cannot happen; never swap in a file that lost rows
        raise ArchiveError(f"compacting {table} {date}: {rows.num_rows} rows != {expected}")
    meta = {
        b"shorewatch.topic": table.encode(),
        b"shorewatch.compacted": json.dumps({"date": date, "inputs": len(inputs)}).encode(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{name}.tmp"
    try:
        write_file(rows.replace_schema_metadata(meta), tmp, row_group_rows)
        if pq.read_metadata(tmp).num_rows != expected:
            raise ArchiveError(f"compacting {table} {date}: the written file lost rows")
        fsync_dir(out_dir)
        if date in _pending_days(root, table):  # the archiver began a segment meanwhile
            tmp.unlink(missing_ok=True)
            res.why = "a segment of this date is still pending in an offset log"
            return res
        jpath = journal_path(root, table, date)
        j = _Journal(res.output, [str(p.relative_to(root)) for p in inputs])
        _write_journal(jpath, j)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, final)
    fsync_dir(out_dir)
    _finish(root, jpath, j)
    res.action = "compacted"
    res.bytes_out = final.stat().st_size
    return res


def compact_archive(
    root: str | os.PathLike[str],
    tables: Iterable[str] | None = None,
    *,
    now_ms: int,
    min_age_h: float = 26.0,
    row_group_rows: int = 16_384,
    dry_run: bool = False,
    rewrite: bool = False,
) -> list[Compacted]:
    """Compact every date of ``tables`` (default: all) that ended at least ``min_age_h``
    hours before ``now_ms``; interrupted compactions are recovered first."""
    root = Path(root)
    if not root.is_dir():
        raise ArchiveError(f"no archive at {root}")
    if not dry_run:
        recover(root)
    wanted = set(tables) if tables else None
    last_day = day_text(int((now_ms - min_age_h * 3_600_000) // DAY_MS) - 1)
    out: list[Compacted] = []
    for tdir in sorted(root.glob("topic=*")):
        table = tdir.name[6:]
        if wanted is not None and table not in wanted:
            continue
        for ddir in sorted(tdir.glob("date=*")):
            date = ddir.name[5:]
            if date > last_day:
                out.append(Compacted(table, date, "skipped", why=f"younger than {min_age_h:g} h"))
                continue
            res = compact_day(
                root, table, date, row_group_rows=row_group_rows, dry_run=dry_run, rewrite=rewrite
            )
            log.info("%s %s: %s %s", table, date, res.action, res.why)
            out.append(res)
    return out


def cmd_compact(args: Any) -> int:
    """``shorewatch archive compact``."""
    import sys
    import time

    from pipeline.history.layout import table_name

    tables = [table_name(t) for t in args.topic] if args.topic else None
    t0 = time.perf_counter()
    res = compact_archive(
        args.root,
        tables,
        now_ms=int(time.time() * 1000),
        min_age_h=args.min_age_h,
        row_group_rows=args.row_group_rows,
        dry_run=args.dry_run,
        rewrite=args.rewrite,
    )
    done = [r for r in res if r.action in ("compacted", "planned")]
    summary = {
        "root": str(args.root),
        "days": len(done),
        "files_in": sum(r.inputs for r in done),
        "rows": sum(r.rows for r in done),
        "bytes_in": sum(r.bytes_in for r in done),
        "bytes_out": sum(r.bytes_out for r in done),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if args.json:
        json.dump({**summary, "days_detail": [r.as_dict() for r in res]}, sys.stdout)
        print()
    else:
        for r in res:
            what = f"{r.inputs} files, {r.rows} rows -> {r.output}" if r.output else r.why
            print(f"{r.table} {r.date}: {r.action}: {what}")
        print(
            f"{summary['days']} days, {summary['files_in']} files, {summary['rows']} rows "
            f"in {summary['seconds']} s"
        )
    return 0
