"""``shorewatch decode --stats``: what a feed looks like, per file.

The first thing to run on an unknown feed: how many lines, how many messages of each
type, which quirks the framing accepted (``quirk.*``), which lines it rejected and why,
with one example line of each reason. The same code path as ``shorewatch decode`` and
the decode agent (:func:`pipeline.engine.decode.frame_batch` and
:func:`pipeline.engine.decode.decode_framed`),
so what the report says is what the pipeline does with the feed.

Every line is accounted for: ``lines`` (plus the lines added by cutting lines that hold
several sentences, ``quirk.multi_sentence``) equals the lines of the messages framed,
plus the lines rejected or skipped (``not_ais``, ``duplicate``), empty lines, comments and
``$PGHP`` lines; the report says whether the sum holds (``accounted``).
"""

from __future__ import annotations

import argparse
import base64
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson

__all__ = ["file_report", "format_report", "run"]

#: the framing counters that are not quirks, rejects or skips but belong in the report
_FRAME_COUNTS = ("empty", "comment", "pghp", "tag_checksum_bad", "tag_time_bad")


def _n_lines(raw: str) -> int:
    return raw.count("\n") + 1


@dataclass(slots=True)
class _Tally:
    """What the batches of one file added up to."""

    counts: Counter[str] = field(default_factory=Counter)
    by_type: Counter[int] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, dict[str, str]] = field(default_factory=dict)
    lines_in_messages: int = 0
    lines_rejected: int = 0

    def add(self, fr: Any, res: Any) -> None:
        """One batch: its framing (:class:`~pipeline.core.nmea.Framed`) and decoding."""
        self.counts.update(fr.counts)
        self.lines_in_messages += sum(map(_n_lines, fr.raw))
        self.dead_letters(res.dead_letters)
        for r in res.skipped:
            self.skipped[r.reason] += 1
            self.lines_rejected += _n_lines(r.line)
            self.examples.setdefault(r.reason, {"detail": r.detail, "line": r.line})
        self.by_type.update(int(m["msg_type"]) for m in res.messages)

    def dead_letters(self, dls: list[Any]) -> None:
        for dl in dls:
            self.rejected[dl.reason] += 1
            raw = base64.b64decode(dl.raw_b64).decode("latin-1")
            if dl.stage == "ais.frame":  # decode-stage ones are lines of framed messages
                self.lines_rejected += _n_lines(raw)
            self.examples.setdefault(dl.reason, {"detail": dl.detail, "line": raw})


def file_report(
    path: str,
    *,
    prefix: str = "auto",
    prefix_tz: str = "UTC",
    strict_tag_blocks: bool = False,
    ttl_ms: int = 10_000,
    dedup_ms: int = 0,
    batch_lines: int = 2000,
) -> dict[str, Any]:
    """The report of one file (``-`` for stdin) as a JSON-able dict.

    :param prefix: prefix policy (:mod:`pipeline.core.nmea_prefix`)
    :param prefix_tz: time zone of prefix times without an offset
    :param ttl_ms: fragment reassembly TTL, ms of event time
    :param dedup_ms: de-duplication window, ms (0: keep duplicates)
    """
    from pipeline.core.nmea import Deduplicator, Reassembler
    from pipeline.engine.decode import decode_framed, finish, frame_batch
    from pipeline.fileio import iter_file_lines
    from schemas.records import RawAisBatch

    source = "stdin" if path == "-" else f"file:{Path(path).name}"
    state = Reassembler(ttl_ms, strict_tag_blocks=strict_tag_blocks)
    dedup = Deduplicator(dedup_ms) if dedup_ms > 0 else None
    tally = _Tally()
    lines = list(iter_file_lines(path))
    for i in range(0, len(lines), batch_lines):
        chunk = lines[i : i + batch_lines]
        batch = RawAisBatch(
            source=source, lines=chunk, rx_t_ms=[0] * len(chunk), prefix=prefix,
            prefix_tz=prefix_tz,
        )  # fmt: skip
        fr = frame_batch(batch, state, dedup)
        tally.add(fr, decode_framed([(batch, fr)], with_messages=True)[0])
    tally.dead_letters(finish(state).dead_letters)
    c = tally.counts
    received = c["lines"] + c["quirk.multi_sentence"]
    other = sum(c[k] for k in ("empty", "comment", "pghp"))
    return {
        "file": path,
        "source": source,
        "lines": c["lines"],
        "sentences": c["sentences"],
        "messages": sum(tally.by_type.values()),
        "by_type": {str(t): n for t, n in sorted(tally.by_type.items())},
        "quirks": {k: v for k, v in sorted(c.items()) if k.startswith("quirk.") and v},
        "framing": {k: c[k] for k in _FRAME_COUNTS if c[k]},
        "rejected": dict(sorted(tally.rejected.items())),
        "skipped": dict(sorted(tally.skipped.items())),
        "examples": dict(sorted(tally.examples.items())),
        "accounted": received == tally.lines_in_messages + tally.lines_rejected + other,
    }


def format_report(rep: dict[str, Any], out: TextIO) -> None:
    """The report as text, for a person."""
    w = out.write
    w(f"== {rep['file']}  (source {rep['source']})\n")
    w(f"lines {rep['lines']}  sentences {rep['sentences']}  messages {rep['messages']}")
    w(f"  accounted: {'yes' if rep['accounted'] else 'NO'}\n")
    if rep["by_type"]:
        w("messages by type: ")
        w(", ".join(f"{t}: {n}" for t, n in rep["by_type"].items()) + "\n")
    for title, key in (("quirks", "quirks"), ("framing", "framing")):
        if rep[key]:
            w(f"{title}: " + ", ".join(f"{k} {v}" for k, v in rep[key].items()) + "\n")
    for title, key in (("rejected", "rejected"), ("skipped", "skipped")):
        for reason, n in rep[key].items():
            ex = rep["examples"].get(reason, {})
            line = ex.get("line", "").replace("\n", "\\n")
            w(f"{title} {reason}: {n}  e.g. {ex.get('detail', '')}: {line[:160]}\n")


def run(args: argparse.Namespace) -> int:
    """``decode --stats``: one report per file on stdout (text, or JSON lines with ``--json``)."""
    files = [args.file, *getattr(args, "more", [])]
    for path in files:
        rep = file_report(
            path,
            prefix=args.prefix,
            prefix_tz=args.prefix_tz,
            strict_tag_blocks=args.strict_tag_blocks,
            ttl_ms=args.ttl_ms,
            dedup_ms=args.dedup_ms,
        )
        if args.json:
            sys.stdout.write(orjson.dumps(rep).decode() + "\n")
        else:
            format_report(rep, sys.stdout)
    return 0
