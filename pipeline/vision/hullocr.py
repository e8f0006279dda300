"""Hull numbers read from camera crops: OCR on ONNX Runtime, then the hull-number pattern.

The reader runs RapidOCR's PP-OCR Chinese text detection and recognition models, which ship
inside the ``rapidocr-onnxruntime`` wheel (nothing is downloaded at run time), on a crop of a
vessel, joins the text it finds, and keeps it only when it normalises to a valid hull number
(:func:`pipeline.core.hullnumbers.parse`). Anything else is *unread*: the raw text is kept
for a person to see, but never taken as a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.core.hullnumbers import HullNumber, parse
from pipeline.vision.frames import check_frame

__all__ = ["DET_LIMIT_SIDE_PX", "HullNumberReader", "HullReading"]

#: longest side the text detector works at, pixels: a crop is never scaled up for it
DET_LIMIT_SIDE_PX = 480


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

    :param min_confidence: below this mean recogniser score a reading is unread
    """

    def __init__(self, min_confidence: float = 0.6):
        from rapidocr_onnxruntime import RapidOCR  # the models ship in the wheel

        self.min_confidence = min_confidence
        self._ocr: Any = RapidOCR(
            det_limit_side_len=DET_LIMIT_SIDE_PX, det_limit_type="max", intra_op_num_threads=1
        )

    def read(self, crop_bgr: np.ndarray) -> HullReading:
        """The hull number painted in ``crop_bgr`` (an ``(H, W, 3)`` uint8 BGR image).

        :raises FrameError: the crop is not a usable image
        """
        check_frame(crop_bgr)
        result, _elapsed = self._ocr(crop_bgr)
        if not result:
            return HullReading("", None, 0.0)
        # text lines left to right, top to bottom (a number may be read in two parts)
        lines = sorted(result, key=lambda r: (np.mean([p[1] for p in r[0]]) // 8, r[0][0][0]))
        texts = [str(r[1]) for r in lines]
        scores = [float(r[2]) for r in lines]
        joined = "".join(texts)
        number = parse(joined)
        if number is None:  # the number alone on one line, beside other text
            number = next((n for n in map(parse, texts) if n is not None), None)
        confidence = float(np.mean(scores))
        if confidence < self.min_confidence:
            number = None
        return HullReading(joined, number, confidence)
