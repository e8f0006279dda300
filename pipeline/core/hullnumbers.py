"""Hull numbers of Chinese fishing and local craft (舷号 / 船名号): normalise and validate.

A hull number is a province character (琼 Hainan, 粤 Guangdong, 桂 Guangxi, …), a port or
county abbreviation of one to four characters, a use character (渔 fishing, …), then a
serial of digits, painted on both bows: ``琼海口渔12345``. Text read from a camera comes
with full-width digits, spaces, hyphens, dots or the Latin letters OCR mistakes digits
for; :func:`normalise` undoes what can be undone safely, and :func:`parse` accepts only
text that then matches the pattern. Anything else is *unread*, never a number.

>>> parse("琼 海口渔-１２３４５")
HullNumber(province='琼', port='海口', use='渔', serial='12345')
>>> parse("海口12345") is None  # no province and no use character
True
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["COAST_PORTS", "PROVINCES", "USES", "HullNumber", "normalise", "parse"]

#: one-character abbreviations of the coastal provinces, regions and municipalities
PROVINCES = "琼粤桂闽浙苏鲁辽冀津沪港澳台"
#: use characters: fishing, fishing support, aquaculture, transport, passenger, cargo,
#: leisure, work boats, law enforcement
USES = "渔养运客货游工执"
#: port and county abbreviations as painted after the province character on the coasts of
#: Hainan, western Guangdong and Guangxi (the Qiongzhou Strait and the Beibu Gulf): the
#: lexicon the OCR's constrained decoding chooses a port from (a registry adds its own)
COAST_PORTS = (
    "海口", "文昌", "琼海", "万宁", "陵水", "三亚", "乐东", "东方", "昌江", "儋", "儋州",
    "洋浦", "临高", "澄迈", "定安", "屯昌", "琼中", "保亭", "白沙", "五指山",
    "湛", "湛江", "徐闻", "雷州", "遂溪", "廉江", "吴川", "茂", "电白", "阳江",
    "北", "北海", "合浦", "钦", "钦州", "防", "防城",
)  # fmt: skip

#: 2 to 6 digits: short serials exist on old registrations, six on the newest
_PATTERN = re.compile(rf"^([{PROVINCES}])([\u4e00-\u9fff]{{1,4}}?)([{USES}])(\d{{2,6}})$")
#: characters removed before matching: separators painted or read between the parts
_SEPARATORS = re.compile(r"[\s\-_.·・,，。:：/\\|]+")
#: Latin letters OCR reads in place of digits, only where a digit must stand (the serial)
_DIGIT_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "D": "0", "I": "1", "l": "1", "Z": "2",
                                   "S": "5", "B": "8"})  # fmt: skip


@dataclass(frozen=True, slots=True)
class HullNumber:
    """A valid hull number, in parts."""

    province: str
    port: str
    use: str
    serial: str

    def __str__(self) -> str:
        return f"{self.province}{self.port}{self.use}{self.serial}"


def normalise(text: str) -> str:
    """Full-width forms folded (NFKC), separators removed, and look-alike Latin letters
    in the trailing serial read as digits."""
    s = _SEPARATORS.sub("", unicodedata.normalize("NFKC", text or ""))
    m = re.search(r"[0-9OoDIlZSB]+$", s)
    if m and any(c.isdigit() for c in m.group(0)):
        s = s[: m.start()] + m.group(0).translate(_DIGIT_LOOKALIKES)
    return s


def parse(text: str) -> HullNumber | None:
    """The hull number in ``text`` (after :func:`normalise`), or ``None`` when the text is
    not one."""
    m = _PATTERN.match(normalise(text))
    if m is None:
        return None
    return HullNumber(*m.groups())
