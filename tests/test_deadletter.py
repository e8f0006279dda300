"""Dead letters: one list of reasons, one constructor, and the README in step with both."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from pipeline.core.nmea import REJECT_REASONS
from pipeline.deadletter import DETAIL_MAX_CHARS, Reason, dead_letter

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_reasons() -> dict[str, str]:
    """The README's table, and the ``### Dead letters`` tables of docs/*.md not folded in yet."""
    out: dict[str, str] = {}
    for path in [README, *sorted((README.parent / "docs").glob("*.md"))]:
        text = path.read_text()
        if "### Dead letters" not in text:
            continue
        section = text.split("### Dead letters", 1)[1].split("\n## ", 1)[0]
        out.update(re.findall(r"^\| `([a-z_]+)` \| (.+?) \|", section, flags=re.M))
    return out


@pytest.mark.unit
def test_the_readme_lists_every_reason_with_its_meaning() -> None:
    listed = _readme_reasons()
    assert sorted(listed) == sorted(r.value for r in Reason)
    for r in Reason:
        assert listed[r.value] == r.meaning


@pytest.mark.unit
def test_the_pure_framing_rejects_only_with_known_reasons() -> None:
    assert set(REJECT_REASONS) <= {r.value for r in Reason}


@pytest.mark.unit
def test_a_dead_letter_keeps_the_raw_bytes_and_refuses_unknown_reasons() -> None:
    raw = "!AIVDM,1,1,,A,bad*00\xff"
    d = dead_letter(
        Reason.BAD_CHECKSUM, source="tcp:a", stage="ais.frame", detail="x" * 900, raw=raw,
        rx_t_ms=1_700_000_000_000,
    )  # fmt: skip
    assert base64.b64decode(d.raw_b64) == raw.encode("latin-1")
    assert (d.reason, d.source, d.stage, d.rx_t_ms) == (
        "bad_checksum", "tcp:a", "ais.frame", 1_700_000_000_000,
    )  # fmt: skip
    assert len(d.detail) == DETAIL_MAX_CHARS
    with pytest.raises(ValueError):
        dead_letter("no_such_reason", source="s", stage="s", detail="", raw=b"", rx_t_ms=0)
