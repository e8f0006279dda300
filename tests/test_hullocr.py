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


@pytest.mark.unit
@pytest.mark.parametrize("number", ["琼儋渔12345", "粤儋渔0373"])
def test_a_rare_port_character_is_read_through_the_grammar(reader, font, number: str) -> None:
    # the recogniser alone reads 儋 (Danzhou) as the common 修; the port lexicon settles it
    crop = _paint(number, 40, font, np.random.default_rng(3))
    assert reader.read(crop).text.startswith(number[0] + "修")
    assert str(reader.read(crop).number) == number


@pytest.mark.unit
@pytest.mark.parametrize("number", ["琼汕渔12345", "粤舟渔2468", "琼修渔12345"])
def test_a_port_outside_the_lexicon_is_read_as_painted(reader, font, number: str) -> None:
    # the grammar never turns a plainly painted port into one of its own
    crop = _paint(number, 40, font, np.random.default_rng(3))
    assert str(reader.read(crop).number) == number


@pytest.mark.unit
def test_a_dark_crop_with_no_text_found_is_read_equalised(font) -> None:
    pytest.importorskip("rapidocr_onnxruntime", reason="rapidocr-onnxruntime is not installed")
    from pipeline.tools.eval_ocr import render_set
    from pipeline.vision.hullocr import HullNumberReader

    # a low-light render (seed 1, 32 px) in which the text detector finds nothing as it is
    dark = render_set(25, 1, font)[71]
    assert dark.image_bgr.mean() < 60
    plain = HullNumberReader(equalise_dark=False)
    assert plain.read(dark.image_bgr).text == ""
    assert str(HullNumberReader().read(dark.image_bgr).number) == dark.number
