"""Registry imports: CSV or JSON files of vessels, checked row by row.

Every row is validated before anything is written; the valid rows are then upserted by
registration number in one transaction (importing a file twice leaves the same registry),
and every rejected row is reported with its line (CSV: the file's line, JSON: the element's
position, from 1) and the reason. A row is never written in part.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.hullnumbers import parse as parse_hull
from pipeline.errors import RegistryImportError

__all__ = ["COLUMNS", "ImportReport", "read_rows", "validate_row"]

#: the columns an import may have; ``registration_no`` is required
COLUMNS = (
    "registration_no", "mmsi", "name", "hull_number", "port_of_registry", "vessel_type",
    "length_m", "owner", "home_harbours", "valid_until",
)  # fmt: skip
#: longest hull of a vessel this registry holds, m
LENGTH_MAX_M = 500.0


@dataclass
class ImportReport:
    """What an import did: rows read, written, and each rejected row with its reason."""

    file: str
    read: int = 0
    written: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "read": self.read,
            "written": self.written,
            "rejected": [{"line": n, "reason": r} for n, r in self.rejected],
        }


def _text(v: Any) -> str | None:
    if v is None:
        return None
    s = str(v).strip()
    return s or None


def validate_row(raw: dict[str, Any]) -> dict[str, Any]:
    """One import row as column values.

    :raises ValueError: the reason the row is rejected
    """
    unknown = sorted(set(raw) - set(COLUMNS))
    if unknown:
        raise ValueError(f"unknown column(s) {', '.join(unknown)}")
    reg = _text(raw.get("registration_no"))
    if reg is None:
        raise ValueError("registration_no is missing")
    out: dict[str, Any] = {c: None for c in COLUMNS}
    out["registration_no"] = reg
    mmsi = _text(raw.get("mmsi"))
    if mmsi is not None:
        if not mmsi.isdigit() or len(mmsi) != 9:
            raise ValueError(f"mmsi {mmsi!r} is not nine digits")
        out["mmsi"] = int(mmsi)
    hull = _text(raw.get("hull_number"))
    if hull is not None:
        parsed = parse_hull(hull)
        if parsed is None:
            raise ValueError(f"hull_number {hull!r} does not follow the hull-number pattern")
        out["hull_number"] = str(parsed)
    length = _text(raw.get("length_m"))
    if length is not None:
        try:
            value = float(length)
        except ValueError:
            raise ValueError(f"length_m {length!r} is not a number") from None
        if not (math.isfinite(value) and 0.0 < value <= LENGTH_MAX_M):
            raise ValueError(f"length_m {length!r} is not in (0, {LENGTH_MAX_M:g}] m")
        out["length_m"] = value
    until = _text(raw.get("valid_until"))
    if until is not None:
        try:
            out["valid_until"] = dt.date.fromisoformat(until)
        except ValueError:
            raise ValueError(f"valid_until {until!r} is not a date (YYYY-MM-DD)") from None
    harbours = raw.get("home_harbours")
    if isinstance(harbours, list):
        harbours = "|".join(str(h).strip() for h in harbours if str(h).strip())
    out["home_harbours"] = _text(harbours)
    for col in ("name", "port_of_registry", "vessel_type", "owner"):
        out[col] = _text(raw.get(col))
    if out["name"] is not None:
        out["name"] = " ".join(out["name"].upper().split())  # as AIS writes names
    return out


def read_rows(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """The rows of a CSV (with a header line) or JSON (a list of objects) file, each with
    its line (CSV) or position (JSON), from 1.

    :raises RegistryImportError: the file can not be read or parsed at all
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryImportError(f"{p}: {exc}") from exc
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise RegistryImportError(f"{p}: not JSON: {exc}") from exc
        if not isinstance(data, list):
            raise RegistryImportError(f"{p}: a JSON import is a list of vessel objects")
        return [(i, r if isinstance(r, dict) else {"?": r}) for i, r in enumerate(data, 1)]
    if p.suffix.lower() != ".csv":
        raise RegistryImportError(f"{p}: an import is a .csv or .json file")
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "registration_no" not in reader.fieldnames:
        raise RegistryImportError(f"{p}: the header line has no registration_no column")
    rows = []
    for row in reader:
        extra = row.pop(None, None)  # type: ignore[call-overload]
        if extra:
            row["?"] = extra  # more fields than the header: rejected by validate_row
        rows.append((reader.line_num, row))
    return rows


def import_file(registry: Any, path: str | Path) -> ImportReport:
    """Validate every row of ``path``, then upsert the valid ones in one transaction.

    :param registry: a :class:`pipeline.registry.store.Registry`
    """
    report = ImportReport(file=str(path))
    valid: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    for line, raw in read_rows(path):
        report.read += 1
        try:
            row = validate_row(raw)
        except ValueError as exc:
            report.rejected.append((line, str(exc)))
            continue
        reg = row["registration_no"]
        if reg in valid:
            report.rejected.append(
                (line, f"registration_no {reg!r} repeats line {first_line[reg]}")
            )
            continue
        valid[reg], first_line[reg] = row, line
    report.written = registry.upsert(list(valid.values()))
    return report
