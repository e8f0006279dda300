"""Hull numbers read from camera crops with the OCR model that ships in its wheel."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import FrameError
from pipeline.tools.eval_ocr import _paint, find_cjk_font


@pytest.fixture(scope="module")
def reader():
    pytest.importorskip("rapidocr_onnxruntime", reason="rapidocr-onnxruntime is not installed")
    from pipeline.vision.hullocr import HullNumberReader

    return HullNumberReader()


@pytest.fixture(scope="module")
def font() -> str:
    path = find_cjk_font()
    if path is None:
        pytest.skip("no Noto CJK font (apt-get install fonts-noto-cjk)")
    return path


@pytest.mark.unit
@pytest.mark.parametrize("number", ["琼海口渔12345", "粤湛渔10086", "琼文昌渔00301"])
def test_a_clear_hull_number_is_read_exactly(reader, font, number: str) -> None:
    crop = _paint(number, 40, font, np.random.default_rng(3))
    reading = reader.read(crop)
    assert str(reading.number) == number
    assert reading.confidence > 0.8


@pytest.mark.unit
def test_text_that_is_no_hull_number_stays_unread(reader, font) -> None:
    rng = np.random.default_rng(4)
    for text in ("HAIKOU FERRY", "海口港", "京海口渔12345"):  # 京: no coast, not a hull number
        reading = reader.read(_paint(text, 40, font, rng))
        assert reading.number is None and not reading.read, (text, reading)
    water = rng.integers(60, 90, size=(120, 360, 3), dtype=np.uint8)
    assert reader.read(water).number is None


@pytest.mark.unit
def test_a_corrupt_crop_is_a_frame_error(reader) -> None:
    with pytest.raises(FrameError):
        reader.read(np.zeros((0, 0, 3), np.uint8))
