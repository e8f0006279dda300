"""``shorewatch decode``: AIS recordings to JSON lines through the pipeline's code path."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.cli._ais_framing import add_framing_options


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``decode``."""
    p = sub.add_parser("decode", help="decode AIS NMEA (file, gzip or -) to JSON lines")
    p.add_argument("file", help="input file, gzip file, or - for stdin")
    p.add_argument("--format", choices=["jsonl"], default="jsonl")
    p.add_argument("--ttl-ms", type=int, default=10_000, help="fragment reassembly TTL, ms")
    p.add_argument(
        "--dedup-ms",
        type=int,
        default=0,
        help="drop the same payload seen again within this many ms (0 = keep all)",
    )
    p.add_argument("--counters", action="store_true", help="print the counters as JSON on stderr")
    add_framing_options(p)
    p.add_argument("more", nargs="*", help="further files (with --stats)")
    p.add_argument(
        "--stats",
        action="store_true",
        help="a per-file report (lines, messages by type, quirks, rejects with examples)",
    )
    p.add_argument("--json", action="store_true", help="with --stats: one JSON object per file")
    p.set_defaults(func=cmd_decode)


def cmd_decode(args: argparse.Namespace) -> int:
    """Decode a recording to JSON lines on stdout; rejects and a summary on stderr (with
    ``--stats``: a per-file report, :mod:`pipeline.decode_report`)."""
    import base64

    import orjson

    from pipeline.core.nmea_prefix import prefix_policy

    try:
        prefix_policy(args.prefix, args.prefix_tz)
    except ValueError as exc:
        print(f"shorewatch decode: {exc}", file=sys.stderr)
        return 2
    if args.stats:
        from pipeline import decode_report

        return decode_report.run(args)
    if args.more:
        raise SystemExit("shorewatch decode: several files only with --stats")
    from pipeline.core.nmea import Deduplicator, Reassembler
    from pipeline.engine.decode import DecodedBatch, decode_batch, finish, merge_counters
    from pipeline.fileio import chunks, iter_file_lines
    from schemas.records import RawAisBatch

    source = "stdin" if args.file == "-" else f"file:{Path(args.file).name}"
    reassembler = Reassembler(ttl_ms=args.ttl_ms, strict_tag_blocks=args.strict_tag_blocks)
    dedup = Deduplicator(args.dedup_ms) if args.dedup_ms > 0 else None
    totals: dict[str, dict[str, int]] = {}
    out = sys.stdout.buffer
    err = sys.stderr

    def report(res: DecodedBatch) -> None:
        for d in res.messages:
            if not d.get("t_ms"):  # 0 = the line carried no time and a file has no receive time
                d.pop("t_ms", None)
            out.write(orjson.dumps(d) + b"\n")
        for dl in res.dead_letters:
            raw = base64.b64decode(dl.raw_b64).decode("latin-1").replace("\n", "\\n")
            print(f"rejected {dl.reason}: {dl.detail}: {raw}", file=err)
        merge_counters(totals, res.counters)

    for chunk in chunks(iter_file_lines(args.file), 2000):
        # no receive time in a file: 0 marks "unknown" (event time comes from the lines)
        batch = RawAisBatch(
            source=source,
            lines=chunk,
            rx_t_ms=[0] * len(chunk),
            prefix=args.prefix,
            prefix_tz=args.prefix_tz,
        )
        report(decode_batch(batch, reassembler, dedup, with_messages=True))
    report(finish(reassembler))
    out.flush()
    c = totals.get(source, {})
    print(
        f"decoded {c.get('decoded', 0)} messages ({c.get('positions', 0)} positions, "
        f"{c.get('statics', 0)} static) from {c.get('received', 0)} lines; "
        f"rejected {c.get('rejected', 0)}, duplicates {c.get('duplicates', 0)}, "
        f"not AIS {c.get('not_ais', 0)}",
        file=err,
    )
    if args.counters:
        print(orjson.dumps(totals).decode(), file=err)
    return 0
