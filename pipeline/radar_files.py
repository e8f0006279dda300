"""Radar reports from recorded NMEA lines (``shorewatch replay --radar``, the evaluations).

A recording of one radar's ``TTM``/``TLL`` sentences, or of several radars' mixed lines
with NMEA 4.10 tag blocks naming each radar (``\\s:<radar id>,c:<unix s>*hh\\``, as
``shorewatch radar simulate`` and recorders write), decoded by the ingest's code
(:func:`pipeline.engine.radar.decode_radar_lines`). Sentences are dated from their tag
block's ``c:`` time: a recording has no receive time.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence

from pipeline.engine.radar import decode_radar_lines
from pipeline.errors import ConfigError
from pipeline.radars import RadarConfig
from schemas.records import RadarTarget

__all__ = ["radar_reports", "read_radar_files", "tag_source"]


def tag_source(line: str) -> str | None:
    """The ``s:`` source of a line's leading NMEA 4.10 tag block, ``None`` without one.

    >>> tag_source("\\\\s:hk-radar-01,c:1772906400*3A\\\\$RATTM,...")
    'hk-radar-01'
    """
    if not line.startswith("\\"):
        return None
    end = line.find("\\", 1)
    if end < 0:
        return None
    for part in line[1:end].split("*", 1)[0].split(","):
        if part.startswith("s:"):
            return part[2:]
    return None


def radar_reports(
    lines: Iterable[str],
    radars: dict[str, RadarConfig],
    counters: Counter[str] | None = None,
    *,
    radar_id: str | None = None,
    source: str = "file",
) -> list[RadarTarget]:
    """Decode recorded radar lines into reports, in event-time order.

    :param lines: the lines
    :param radars: the site's radars by id (``pipeline.radars.load_radars``)
    :param counters: counts ``radar.lines``, ``dead_letters`` and ``dead_letters.<reason>``
    :param radar_id: every line is this radar's; ``None``: each line's tag block ``s:``
        names its radar (and a line without one is the only radar's, if the site has one)
    :param source: the source id kept in the records (``file:<name>``)
    """
    counters = counters if counters is not None else Counter()
    only = next(iter(radars)) if len(radars) == 1 else None
    by_radar: dict[str | None, list[str]] = {}
    for line in lines:
        rid = radar_id or tag_source(line) or only
        by_radar.setdefault(rid, []).append(line)
    out: list[RadarTarget] = []
    for rid, mine in by_radar.items():
        counters["radar.lines"] += len(mine)
        radar = radars.get(rid) if rid is not None else None
        got, dead = decode_radar_lines(mine, [0] * len(mine), f"{source}:{rid}", radar)
        out += got
        counters["dead_letters"] += len(dead)
        for d in dead:
            counters[f"dead_letters.{d.reason}"] += 1
    out.sort(key=lambda r: r.t_ms)
    return out


def read_radar_files(
    specs: Sequence[str],
    radars: dict[str, RadarConfig],
    counters: Counter[str] | None = None,
) -> list[RadarTarget]:
    """The reports of recorded radar files, each ``[RADAR=]FILE`` (gzip ok).

    :param specs: ``hk-radar-01=night/radar.nmea``, or a file whose tag blocks name the radars
    :raises ConfigError: a named radar not in ``radars.yaml``, or no radars at all
    """
    from pipeline.fileio import iter_file_lines

    if specs and not radars:
        raise ConfigError("--radar: the site has no radars.yaml")
    out: list[RadarTarget] = []
    for spec in specs:
        rid, sep, path = spec.partition("=")
        if not sep:
            rid, path = "", spec
        if rid and rid not in radars:
            raise ConfigError(f"--radar: radar {rid!r} is not in radars.yaml")
        name = os.path.basename(path)
        out += radar_reports(
            iter_file_lines(path), radars, counters, radar_id=rid or None, source=f"file:{name}"
        )
    out.sort(key=lambda r: r.t_ms)
    return out
