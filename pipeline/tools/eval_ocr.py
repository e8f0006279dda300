"""Hull-number OCR on realistic renders: exact-match rate by character height, and how often
a wrong number is read as a valid registered one.

The set is generated with a fixed seed: hull numbers in the standard pattern drawn with a
CJK font (Debian's Noto CJK) on hull-like backgrounds (painted plate with rust, streaks and
grain), then perspective, blur, JPEG compression, low light and spray noise, at several
character heights in pixels. A registry of the generated numbers plus decoys one digit away
is what a wrong reading could land on.

The reader holds its readings to the hull-number grammar with a lexicon of ports
(:data:`~pipeline.core.hullnumbers.COAST_PORTS`). So that the lexicon cannot flatter the
figures, a second set paints numbers whose ports are outside it (real ports of other
coasts): each must be read as painted or left unread, and one read as another number is
counted (``foreign_ports``). ``--max-deficit -1 --no-equalise`` turns the grammar and the
second look at dark crops off and measures the recogniser's own reading.
"""

from __future__ import annotations

import argparse
import glob
import json
import time
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.core.hullnumbers import COAST_PORTS, PROVINCES, USES

__all__ = ["Render", "cmd_eval", "evaluate_ocr", "find_cjk_font", "render_set"]

#: ports of the Qiongzhou Strait coast and their abbreviations as painted
PORTS = ("海口", "文昌", "临高", "澄迈", "湛", "徐闻", "北", "三亚", "儋")
HEIGHTS_PX = (16, 24, 32, 48)
#: real ports of other coasts (Zhejiang, Fujian, Shandong, Jiangsu, eastern Guangdong),
#: outside the reader's lexicon: their numbers must never be read as a lexicon port's
FOREIGN_PORTS = ("舟", "温", "厦", "连", "威", "荣成", "石", "象山", "台州", "宁德", "汕", "莆")
assert not set(FOREIGN_PORTS) & set(COAST_PORTS)


def find_cjk_font() -> str | None:
    """A Noto CJK font file (Debian ``fonts-noto-cjk``), or ``None``."""
    for pattern in (
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
        "/usr/share/fonts/opentype/noto/NotoSansCJK-*.ttc",
        "/usr/share/fonts/**/NotoSansCJK*.tt[cf]",
    ):
        found = sorted(glob.glob(pattern, recursive=True))
        if found:
            return found[0]
    return None


@dataclass(frozen=True)
class Render:
    """One generated crop: the number painted, its character height (px), the image."""

    number: str
    char_height_px: int
    image_bgr: np.ndarray


def _number(rng: np.random.Generator, ports: tuple[str, ...] = PORTS) -> str:
    province = "琼" if rng.random() < 0.6 else str(rng.choice(list(PROVINCES[:3])))
    use = "渔" if rng.random() < 0.85 else str(rng.choice(list(USES)))
    serial = "".join(str(d) for d in rng.integers(0, 10, size=int(rng.integers(4, 6))))
    return f"{province}{rng.choice(list(ports))}{use}{serial}"


def _hull_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = np.array(rng.choice([(40, 70, 120), (200, 200, 195), (30, 30, 35), (60, 110, 60)]))
    img = np.ones((h, w, 3)) * base[None, None, ::-1]
    img += rng.normal(0, 6, size=(h, w, 1))  # grain
    streaks = np.cumsum(rng.normal(0, 1.5, size=(1, w, 1)), axis=1)  # rust streaks run down
    img += np.clip(streaks - streaks.mean(), -25, 25) * (rng.random() < 0.5)
    return np.clip(img, 0, 255).astype(np.uint8)


def _paint(text: str, h_px: int, font_path: str, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path, size=int(h_px * 1.15), index=2)  # SC glyphs
    w = int(h_px * 1.15 * len(text)) + 2 * h_px
    bg = _hull_background(rng, h_px * 3, w)
    img = Image.fromarray(bg[:, :, ::-1])
    fill = (235, 235, 235) if bg.mean() < 128 else (20, 20, 25)
    ImageDraw.Draw(img).text((h_px, int(h_px * 0.8)), text, fill=fill, font=font)
    return np.array(img)[:, :, ::-1].copy()


def _degrade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    # perspective: the bow seen from the shore, up to 12 % of the width of skew
    d = rng.uniform(-0.12, 0.12, size=(4, 2)) * np.array([w, h * 0.3])
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(src, (src + d).astype(np.float32))
    img = cv2.warpPerspective(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    k = int(rng.choice([1, 1, 3, 3, 5]))
    if k > 1:
        img = cv2.GaussianBlur(img, (k, k), 0)
    if rng.random() < 0.4:  # low light: dark, contrast squashed, sensor noise
        img = np.clip(img * rng.uniform(0.25, 0.5) + rng.normal(0, 5, img.shape), 0, 255)
        img = img.astype(np.uint8)
    if rng.random() < 0.4:  # spray: white speckles
        mask = rng.random((h, w)) < rng.uniform(0.002, 0.02)
        img[mask] = 255
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 85))])
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
    return img if out is None else np.asarray(out)


def render_set(
    n_per_height: int, seed: int, font_path: str, ports: tuple[str, ...] = PORTS
) -> list[Render]:
    """The evaluation set: ``n_per_height`` degraded renders at each of :data:`HEIGHTS_PX`
    of numbers of ``ports``."""
    rng = np.random.default_rng(seed)
    out = []
    for h in HEIGHTS_PX:
        for _ in range(n_per_height):
            number = _number(rng, ports)
            out.append(Render(number, h, _degrade(_paint(number, h, font_path, rng), rng)))
    return out


def _decoys(numbers: list[str]) -> set[str]:
    """The registry a wrong reading could land on: every number and its one-digit neighbours."""
    out = set(numbers)
    for n in numbers:
        for i, c in enumerate(n):
            if c.isdigit():
                out.update(n[:i] + str(d) + n[i + 1 :] for d in range(10))
    return out


def _confusions(pairs: list[tuple[str, str]]) -> list[dict]:
    """Characters painted and what was read in their place, most frequent first: one entry
    per differing stretch of each (painted, read) pair (``""`` read: dropped)."""
    from collections import Counter
    from difflib import SequenceMatcher

    counts: Counter[tuple[str, str]] = Counter()
    for painted, read in pairs:
        for op, i0, i1, j0, j1 in SequenceMatcher(None, painted, read).get_opcodes():
            if op != "equal":
                counts[(painted[i0:i1], read[j0:j1])] += 1
    return [{"painted": a, "read": b, "count": c} for (a, b), c in counts.most_common(15)]


def evaluate_ocr(
    n_per_height: int = 25,
    seed: int = 1,
    max_deficit: float | None = None,
    equalise_dark: bool = True,
) -> dict:
    """Read every render; exact-match rate by character height, unread rate, the rate of
    wrong numbers that are valid and registered, how numbers of ports outside the reader's
    lexicon fare, and the commonest confusions.

    :param max_deficit: the reader's (default its own; negative: no grammar)
    :param equalise_dark: the reader's (``False``: a crop with no text found stays unread)
    :raises RuntimeError: no CJK font to render with
    """
    from pipeline.vision.hullocr import DEFAULT_MAX_DEFICIT, HullNumberReader

    font = find_cjk_font()
    if font is None:
        raise RuntimeError("no Noto CJK font found (apt-get install fonts-noto-cjk)")
    renders = render_set(n_per_height, seed, font)
    foreign = render_set(n_per_height, seed + 1000, font, FOREIGN_PORTS)
    registry = _decoys([r.number for r in renders + foreign])
    deficit = DEFAULT_MAX_DEFICIT if max_deficit is None else max_deficit
    reader = HullNumberReader(max_deficit=deficit, equalise_dark=equalise_dark)
    by_h: dict[int, dict[str, int]] = {h: {"n": 0, "exact": 0, "unread": 0, "wrong": 0}
                                       for h in HEIGHTS_PX}  # fmt: skip
    wrong_registered = 0
    times = []
    missed: list[tuple[str, str]] = []
    for r in renders:
        t = time.perf_counter()
        reading = reader.read(r.image_bgr)
        times.append(time.perf_counter() - t)
        s = by_h[r.char_height_px]
        s["n"] += 1
        if reading.number is None:
            s["unread"] += 1
            missed.append((r.number, reading.text))
        elif str(reading.number) == r.number:
            s["exact"] += 1
        else:
            s["wrong"] += 1
            wrong_registered += str(reading.number) in registry
            missed.append((r.number, str(reading.number)))
    away = {"n": 0, "as_painted": 0, "unread": 0, "other_number": 0, "other_registered": 0}
    for r in foreign:
        reading = reader.read(r.image_bgr)
        away["n"] += 1
        if reading.number is None:
            away["unread"] += 1
        elif str(reading.number) == r.number:
            away["as_painted"] += 1
        else:
            away["other_number"] += 1
            away["other_registered"] += str(reading.number) in registry
    return {
        "seed": seed,
        "max_deficit": deficit,
        "equalise_dark": equalise_dark,
        "renders": len(renders),
        "by_char_height_px": {
            str(h): {**v, "exact_rate": round(v["exact"] / max(1, v["n"]), 3)}
            for h, v in by_h.items()
        },
        "exact_rate_at_32px_and_above": round(
            sum(v["exact"] for h, v in by_h.items() if h >= 32)
            / max(1, sum(v["n"] for h, v in by_h.items() if h >= 32)),
            3,
        ),
        "wrong_registered_rate": round(wrong_registered / max(1, len(renders)), 4),
        "foreign_ports": {
            **away,
            "other_number_rate": round(away["other_number"] / max(1, away["n"]), 4),
        },
        "confusions": _confusions(missed),
        "ms_per_crop_median": round(float(np.median(times)) * 1000, 1),
    }


def cmd_eval(args: argparse.Namespace) -> int:
    res = evaluate_ocr(args.n, args.seed, args.max_deficit, not args.no_equalise)
    if args.json:
        print(json.dumps(res, ensure_ascii=False))
        return 0
    for h, v in res["by_char_height_px"].items():
        print(f"{h:>3} px: exact {v['exact_rate']:.3f} ({v['exact']}/{v['n']}), "
              f"unread {v['unread']}, wrong {v['wrong']}")  # fmt: skip
    print(f"exact at 32 px and above: {res['exact_rate_at_32px_and_above']:.3f}")
    print(f"wrong number read as a valid registered one: {res['wrong_registered_rate']:.4f}; "
          f"{res['ms_per_crop_median']} ms per crop (median, one core)")  # fmt: skip
    f = res["foreign_ports"]
    print(f"ports outside the lexicon: {f['as_painted']}/{f['n']} read as painted, "
          f"{f['unread']} unread, {f['other_number']} read as another number")  # fmt: skip
    print("confusions (painted -> read):")
    for c in res["confusions"]:
        print(f"  {c['painted'] or '∅'} -> {c['read'] or '∅'}: {c['count']}")
    return 0
