"""Framing throughput per line shape: :func:`pipeline.core.nmea.frame_lines` on 50,000
real position reports written in each shape the framing accepts.

The payloads are the position reports of the shared recordings (as ``bench ais`` uses);
each shape wraps the same sentences: plain, a logger's time before them, an epoch, a
station name, an extra field after the fill bits, a tag block with a wrong checksum, two
sentences per line. Times are CPU seconds of this process (best of ``--rounds``), so
that other load on the machine counts less.

Run: ``PYTHONPATH=$PWD .venv/bin/python -m pipeline.tools.bench_framing [--json]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from pipeline.tools.ais_compare import default_files


def shapes(n: int = 50_000) -> dict[str, list[str]]:
    """``n`` lines of each shape, built from the real position reports."""
    from pipeline.core.nmea import nmea_checksums
    from pipeline.tools.bench_ais import bench_payloads

    base, fill = bench_payloads(Path(default_files()[0]).parent)
    bodies = [f"AIVDM,1,1,,A,{p},{f}" for p, f in zip(base, fill.tolist(), strict=True)]
    bodies = (bodies * (n // len(bodies) + 1))[:n]

    def sentences(bs: list[str]) -> list[str]:
        sums = nmea_checksums(bs).tolist()
        return [f"!{b}*{s:02X}" for b, s in zip(bs, sums, strict=True)]

    plain = sentences(bodies)
    tag = "\\c:1459468752*7E\\"  # wrong checksum (the right one is 4A)
    return {
        "plain": plain,
        "prefix_ymd": [f"2016-03-31 23:59:12, {s}" for s in plain],
        "prefix_epoch": [f"1459468752.123 {s}" for s in plain],
        "prefix_station": [f"[rEV02] {s}" for s in plain],
        "extra_field": sentences([b + ",0" for b in bodies]),
        "tag_bad_checksum": [tag + s for s in plain],
        "two_per_line": [a + b for a, b in zip(plain[::2], plain[1::2], strict=True)],
    }


def _cpu_best(fn: Callable[[], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def run(rounds: int = 5) -> dict[str, dict[str, int]]:
    """Per shape: ``lines``, ``messages`` framed, ``lines_per_s`` and ``messages_per_s``."""
    from pipeline.core.nmea import Reassembler, frame_lines

    out = {}
    for name, lines in shapes().items():
        rx = [0] * len(lines)
        n_msg = len(frame_lines(lines, rx, "bench", Reassembler()))

        def frame(lines: list[str] = lines, rx: list[int] = rx) -> object:
            return frame_lines(lines, rx, "b", Reassembler())

        best = _cpu_best(frame, rounds)
        out[name] = {
            "lines": len(lines),
            "messages": n_msg,
            "lines_per_s": round(len(lines) / best),
            "messages_per_s": round(n_msg / best),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="runs per shape (best counts)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args(argv)
    res = run(args.rounds)
    if args.json:
        print(orjson.dumps(res).decode())
        return 0
    for name, r in res.items():
        print(f"{name:18s} {r['lines_per_s']:>9,d} lines/s  {r['messages_per_s']:>9,d} messages/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
