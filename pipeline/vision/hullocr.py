"""Hull numbers read from camera crops: OCR on ONNX Runtime, then the hull-number pattern.

The reader runs RapidOCR's PP-OCR Chinese text detection and recognition models, which ship
inside the ``rapidocr-onnxruntime`` wheel (nothing is downloaded at run time), on a crop of a
vessel, joins the text it finds, and keeps it only when it normalises to a valid hull number
(:func:`pipeline.core.hullnumbers.parse`). Anything else is *unread*: the raw text is kept
for a person to see, but never taken as a number.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.core.hullctc import HullGrammar, decode_hull_number
from pipeline.core.hullnumbers import COAST_PORTS, HullNumber, parse
from pipeline.vision.frames import check_frame

__all__ = [
    "DEFAULT_MAX_DEFICIT",
    "DET_LIMIT_SIDE_PX",
    "HullNumberReader",
    "HullReading",
    "equalise",
]

#: longest side the text detector works at, pixels: a crop is never scaled up for it
DET_LIMIT_SIDE_PX = 480
#: text lines the recogniser scores below this are dropped (RapidOCR's ``text_score``)
TEXT_SCORE = 0.5
#: how much less probable (natural log) than the recogniser's own reading the
#: grammar's may be and still be taken
DEFAULT_MAX_DEFICIT = 6.0


@dataclass(frozen=True, slots=True)
class HullReading:
    """What the reader made of a crop.

    :param text: everything the OCR read, joined (for a person; may be garbage)
    :param number: the valid hull number in it, or ``None`` (unread)
    :param confidence: the recogniser's mean score of the text lines used, 0–1
    """

    text: str
    number: HullNumber | None
    confidence: float

    @property
    def read(self) -> bool:
        return self.number is not None


class HullNumberReader:
    """Reads hull numbers from BGR crops (one at a time, one core).

    The text lines found are recognised once; their per-frame character probabilities are
    decoded twice: greedily (the recogniser's own reading, kept as ``text``) and held to the
    hull-number grammar with ``ports`` as the lexicon of ports
    (:func:`pipeline.core.hullctc.decode_hull_number`). The grammar's reading is taken when
    its alignment is at most ``max_deficit`` (natural log) less probable than the greedy
    one; otherwise the greedy text is parsed as it stands, so a number with a port outside
    the lexicon is still read (and found unregistered), and text the image plainly shows is
    not a hull number (京 for 琼) stays unread.

    :param min_confidence: below this mean recogniser score a reading is unread
    :param ports: port abbreviations the grammar allows (default
        :data:`~pipeline.core.hullnumbers.COAST_PORTS`; add the registry's ports)
    :param max_deficit: how much less probable than the greedy reading the grammar's may be,
        natural log units
    :param equalise_dark: a crop with no text line found is tried again equalised
    """

    def __init__(
        self,
        min_confidence: float = 0.6,
        *,
        ports: Iterable[str] | None = None,
        max_deficit: float = DEFAULT_MAX_DEFICIT,
        equalise_dark: bool = True,
    ):
        from rapidocr_onnxruntime import RapidOCR  # the models ship in the wheel

        self.min_confidence = min_confidence
        self.max_deficit = float(max_deficit)
        self.equalise_dark = equalise_dark
        self._ocr: Any = RapidOCR(
            det_limit_side_len=DET_LIMIT_SIDE_PX, det_limit_type="max", intra_op_num_threads=1
        )
        rec = self._ocr.text_rec
        self._alphabet: list[str] = list(rec.postprocess_op.character)
        self._rec_h: int = int(rec.rec_image_shape[1])
        self._rec_w: int = int(rec.rec_image_shape[2])
        #: the port abbreviations the grammar allows
        self.ports = frozenset(COAST_PORTS if ports is None else ports)
        self.grammar = HullGrammar(self._alphabet, self.ports)

    def _lines(self, crop_bgr: np.ndarray) -> list[tuple[float, float, np.ndarray]]:
        """Each text line found: (row of its centre, its left edge, ``(T, C)`` probabilities)."""
        ocr = self._ocr
        img, _rh, _rw = ocr.preprocess(crop_bgr)
        img, _record = ocr.maybe_add_letterbox(img, {})
        boxes, _elapsed = ocr.auto_text_det(img)
        if boxes is None:
            return []
        crops = ocr.get_crop_img_list(img, boxes)
        if ocr.use_cls:
            crops, _cls, _elapsed = ocr.text_cls(crops)
        rec = ocr.text_rec
        out = []
        for box, line in zip(boxes, crops, strict=True):
            h, w = line.shape[:2]
            ratio = max(self._rec_w / self._rec_h, w / max(1, h))
            probs = rec.session(rec.resize_norm_img(line, ratio)[None].astype(np.float32))[0][0]
            out.append((float(np.mean(box[:, 1])), float(box[0][0]), np.asarray(probs)))
        return out

    def _greedy(self, probs: np.ndarray) -> tuple[str, float]:
        """The recogniser's own reading of one line: best label per frame, repeats and
        blanks removed; its score is the mean probability of the frames kept."""
        idx = probs.argmax(axis=1)
        keep = (idx != 0) & np.r_[True, idx[1:] != idx[:-1]]
        if not keep.any():
            return "", 0.0
        text = "".join(self._alphabet[i] for i in idx[keep])
        return text, float(probs.max(axis=1)[keep].mean())

    def read(self, crop_bgr: np.ndarray) -> HullReading:
        """The hull number painted in ``crop_bgr`` (an ``(H, W, 3)`` uint8 BGR image).

        A crop in which no text line is found is tried once more with its contrast
        equalised (CLAHE on lightness): a dark, flat crop (dusk, low light) where the text
        detector sees nothing.

        :raises FrameError: the crop is not a usable image
        """
        check_frame(crop_bgr)
        lines = self._lines(crop_bgr)
        if not lines and self.equalise_dark:
            lines = self._lines(equalise(crop_bgr))
        return self._reading(lines)

    def _reading(self, found: list[tuple[float, float, np.ndarray]]) -> HullReading:
        """The reading of the text lines found in a crop."""
        # text lines left to right, top to bottom (a number may be read in two parts)
        lines = sorted(found, key=lambda r: (r[0] // 8, r[1]))
        greedy = [self._greedy(p) for _y, _x, p in lines]
        kept = [(g, p) for g, (_y, _x, p) in zip(greedy, lines, strict=True) if g[1] >= TEXT_SCORE]
        if not kept:
            return HullReading("", None, 0.0)
        texts = [g[0] for g, _p in kept]
        joined = "".join(texts)
        number = parse(joined)
        if number is None:  # the number alone on one line, beside other text
            number = next((n for n in map(parse, texts) if n is not None), None)
        confidence = float(np.mean([g[1] for g, _p in kept]))
        gap = np.zeros((1, len(self._alphabet)))
        gap[0, 0] = 1.0  # a blank frame between lines
        probs = [p for _g, p in kept]
        joined_probs = np.concatenate([x for p in probs for x in (p, gap)][:-1])
        candidates = [joined_probs] + (probs if len(probs) > 1 else [])
        held = [r for r in (decode_hull_number(c, self.grammar) for c in candidates) if r]
        best = min(held, key=lambda r: r.deficit, default=None)
        if best is not None and best.deficit <= self.max_deficit:
            number, confidence = parse(best.text), best.confidence
        if confidence < self.min_confidence:
            number = None
        return HullReading(joined, number, confidence)


def equalise(crop_bgr: np.ndarray) -> np.ndarray:
    """``crop_bgr`` with its lightness equalised locally (CLAHE, clip 2, 8×8 tiles)."""
    import cv2

    lab = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2LAB)
    lab[:, :, 0] = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(lab[:, :, 0])
    return np.asarray(cv2.cvtColor(lab, cv2.COLOR_LAB2BGR))
