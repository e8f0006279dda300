"""Per-file comparison of ``shorewatch decode`` with pyais on the same recordings.

pyais is given the sentences alone: every ``!``/``$``…``VDM``/``VDO`` sentence found in
a line, cut out of it (no text before it, no tag block, nothing after its checksum), in
file order (``#`` comment lines left out), through :class:`pyais.stream.IterMessages` (which reassembles the fragments
it sees in order). A message counts when ``decode()`` succeeds. Shorewatch reads the
lines as they are, with the given prefix policy, through
:func:`pipeline.engine.decode.decode_batch` in batches of 2000 lines and without de-duplication.

Run: ``PYTHONPATH=$PWD .venv/bin/python -m pipeline.tools.ais_compare [FILES...]``
(default: every recording in ``../shared/data/ais``); ``--json`` for one JSON object.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

#: one AIS sentence anywhere in a line, from its ``!``/``$`` to its checksum
_SENTENCE = re.compile(r"[!$][A-Z0-9]{2}VD[MO],[^*!$\\]*\*[0-9A-Fa-f]{2}")


def pyais_sentences(lines: Iterable[str]) -> list[bytes]:
    """Every AIS sentence found in ``lines``, cut out, in order (what pyais is given);
    ``#`` comment lines are left out (their sentences are examples, not traffic)."""
    return [
        m.group(0).encode("ascii", "replace")
        for ln in lines
        if not ln.lstrip().startswith("#")
        for m in _SENTENCE.finditer(ln)
    ]


def pyais_count(lines: list[str]) -> int:
    """Messages pyais decodes from the sentences of ``lines``."""
    from pyais.stream import IterMessages

    n = 0
    for msg in IterMessages(pyais_sentences(lines)):
        try:
            msg.decode()
        except Exception:  # noqa: BLE001 - pyais raises many kinds; a failure is not counted
            continue
        n += 1
    return n


def ours_count(
    lines: list[str], source: str, prefix: str = "auto", prefix_tz: str = "UTC"
) -> dict[str, int]:
    """Shorewatch's counters over ``lines`` (one source, batches of 2000 lines)."""
    from pipeline.core.nmea import Reassembler
    from pipeline.engine.decode import decode_batch, finish, merge_counters
    from schemas.records import RawAisBatch

    state = Reassembler()
    totals: dict[str, dict[str, int]] = {}
    for i in range(0, len(lines), 2000):
        chunk = lines[i : i + 2000]
        batch = RawAisBatch(
            source=source, lines=chunk, rx_t_ms=[0] * len(chunk), prefix=prefix,
            prefix_tz=prefix_tz,
        )  # fmt: skip
        merge_counters(totals, decode_batch(batch, state).counters)
    merge_counters(totals, finish(state).counters)
    return totals.get(source, {})


def default_files() -> list[Path]:
    """The recordings in the shared AIS data folder (``$SHOREWATCH_SHARED`` or ``../shared``)."""
    repo = Path(__file__).resolve().parents[2]
    folder = Path(os.environ.get("SHOREWATCH_SHARED", repo.parent / "shared")) / "data" / "ais"
    return [
        p
        for p in sorted(folder.iterdir())
        if not p.name.startswith("LICENSE") and not p.name.endswith((".chk", ".md"))
    ]


def compare(paths: Iterable[Path], prefix: str = "auto") -> list[dict[str, Any]]:
    """One row per file: ``file``, ``lines``, ``pyais``, ``ours``, ``ratio`` (ours / pyais)
    and our ``rejected`` count."""
    from pipeline.fileio import iter_file_lines

    rows = []
    for path in paths:
        lines = list(iter_file_lines(str(path)))
        theirs = pyais_count(lines)
        c = ours_count(lines, f"file:{path.name}", prefix)
        ours = c.get("decoded", 0)
        rows.append(
            {
                "file": path.name,
                "lines": len(lines),
                "pyais": theirs,
                "ours": ours,
                "ratio": round(ours / theirs, 4) if theirs else None,
                "rejected": c.get("rejected", 0),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*", help="recordings (default: ../shared/data/ais/*)")
    ap.add_argument("--prefix", default="auto", help="prefix policy (auto, none, strip, FORMAT)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args(argv)
    paths = [Path(f) for f in args.files] or default_files()
    rows = compare(paths, args.prefix)
    if args.json:
        print(orjson.dumps(rows).decode())
        return 0
    print(f"| {'file':36s} | {'lines':>6s} | {'pyais':>6s} | {'ours':>6s} | ratio  |")
    print(f"|{'-' * 38}|{'-' * 8}|{'-' * 8}|{'-' * 8}|--------|")
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.4f}"
        print(f"| {r['file']:36s} | {r['lines']:6d} | {r['pyais']:6d} | {r['ours']:6d} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
