"""Hull numbers read off a camera's detections and attached to its frame records."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.tools.eval_ocr import _paint, find_cjk_font
from schemas.records import CameraDetection, CameraFrame

pytestmark = pytest.mark.unit


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


def _det(track_id: int, box: list[float]) -> CameraDetection:
    return CameraDetection(
        track_id=track_id, box_px=box, cls="boat", confidence=0.8, bearing_deg=10.0,
        bearing_sigma_deg=0.5, range_m=300.0, range_sigma_m=20.0, lon=110.1, lat=20.0,
    )  # fmt: skip


def _scene(font: str, text: str) -> tuple[np.ndarray, list[float]]:
    """A 1080p frame with a hull plate painted at (600, 400); its box."""
    frame = np.full((1080, 1920, 3), 90, dtype=np.uint8)
    plate = _paint(text, 40, font, np.random.default_rng(5))
    h, w = plate.shape[:2]
    frame[400 : 400 + h, 600 : 600 + w] = plate
    return frame, [600.0, 400.0, float(w), float(h)]


def test_a_large_enough_box_is_read_once_and_its_reading_kept(reader, font) -> None:
    from pipeline.vision.hullread import HullReadStage

    stage = HullReadStage(reader, retry_s=5.0)
    frame, box = _scene(font, "琼海口渔12345")
    far = [100.0, 900.0, 60.0, 20.0]  # too small to read
    out = []
    for k in range(3):  # three frames a second apart: one OCR per track in 5 s
        rec = CameraFrame(camera_id="cam1", t_ms=1_000_000 + k * 1000, image_width=1920,
                          image_height=1080, heading_deg=0.0, hfov_deg=60.0,
                          detections=[_det(7, box), _det(8, far)])  # fmt: skip
        out.append(stage.apply(frame, rec))
    assert stage.reads == 1
    for rec in out:
        near, small = rec.detections
        assert near.hull_number == "琼海口渔12345" and near.hull_confidence > 0.8
        assert small.hull_number is None and small.hull_confidence is None
    # a track unseen for longer than forget_s is forgotten with its reading
    later = CameraFrame(camera_id="cam1", t_ms=1_000_000 + 120_000, image_width=1920,
                        image_height=1080, heading_deg=0.0, hfov_deg=60.0, detections=[])  # fmt: skip
    stage.apply(frame, later)
    assert stage.best == {}


def test_text_that_is_no_hull_number_is_never_attached(reader, font) -> None:
    from pipeline.vision.hullread import HullReadStage

    stage = HullReadStage(reader)
    frame, box = _scene(font, "HAIKOU FERRY")
    rec = CameraFrame(camera_id="cam1", t_ms=5_000, image_width=1920, image_height=1080,
                      heading_deg=0.0, hfov_deg=60.0, detections=[_det(3, box)])  # fmt: skip
    (d,) = stage.apply(frame, rec).detections
    assert stage.reads == 1 and d.hull_number is None


class _BoxesOf:
    """An analyser whose detector found one plate-sized box (the OCR under test is real)."""

    camera_id = "cam1"

    def __init__(self, box: list[float]) -> None:
        self.box = box

    def analyse(self, image_bgr: np.ndarray, t_ms: int, **kwargs) -> CameraFrame:
        return CameraFrame(camera_id="cam1", t_ms=t_ms, image_width=image_bgr.shape[1],
                           image_height=image_bgr.shape[0], heading_deg=0.0, hfov_deg=60.0,
                           detections=[_det(4, self.box)])  # fmt: skip


def test_the_camera_analyser_attaches_readings_to_every_record(reader, font) -> None:
    from pipeline.vision.hullread import HullReadingAnalyser, HullReadStage, LockedReader

    frame, box = _scene(font, "琼海口渔12345")
    analyser = HullReadingAnalyser(_BoxesOf(box), HullReadStage(LockedReader(reader)))
    assert analyser.camera_id == "cam1"  # the wrapped analyser's attributes show through
    (d,) = analyser.analyse(frame, 2_000_000).detections
    assert d.hull_number == "琼海口渔12345"


def test_ingest_camera_wraps_every_analyser_when_asked(reader) -> None:
    from pathlib import Path

    from connectors.camera import analyser_factory
    from pipeline.site import load_site
    from pipeline.vision.hullread import HullReadingAnalyser

    site = load_site(Path(__file__).resolve().parents[1] / "sites" / "haikou")
    cams = list(site.cameras)[:2]
    plain = analyser_factory(None)(cams[0])
    assert not isinstance(plain, HullReadingAnalyser)
    make = analyser_factory(None, read_hull_numbers=True)
    a, b = make(cams[0]), make(cams[1])
    assert isinstance(a, HullReadingAnalyser) and isinstance(b, HullReadingAnalyser)
    assert a.stage.reader is b.stage.reader  # one OCR model for every camera
    rng = np.random.default_rng(1)  # calm water: grey with a little noise, nothing moving
    water = rng.integers(85, 95, (cams[0].image_height, cams[0].image_width, 3), dtype=np.uint8)
    rec = a.analyse(water, 3_000_000)
    assert rec.detections == [] and a.stage.reads == 0


def test_the_reader_also_allows_the_ports_of_the_registry(reader, tmp_path, caplog) -> None:
    """``ingest camera --read-hull-numbers`` adds the ports of the registry's hull numbers to
    the reader's lexicon; an unreadable registry leaves the built-in ports, with a warning."""
    from pathlib import Path

    from connectors.camera import analyser_factory, registry_hull_ports
    from pipeline.core.hullnumbers import COAST_PORTS
    from pipeline.registry.store import Registry
    from pipeline.site import load_site

    assert "厦门" not in COAST_PORTS
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    reg = Registry.open(url)
    reg.upsert(
        [
            {"registration_no": "R-1", "name": "MIN YU 1", "hull_number": "闽厦门渔01234"},
            {"registration_no": "R-2", "name": "QIONG YU 2", "hull_number": "琼海口渔10002"},
            {"registration_no": "R-3", "name": "NO HULL", "hull_number": None},
        ]
    )
    reg.close()
    assert registry_hull_ports(url) == {"厦门", "海口"}
    site = load_site(Path(__file__).resolve().parents[1] / "sites" / "haikou")
    cam = list(site.cameras)[0]
    a = analyser_factory(None, read_hull_numbers=True, hull_ports={"厦门", "海口"})(cam)
    assert a.stage.reader.reader.ports == set(COAST_PORTS) | {"厦门"}
    with caplog.at_level("WARNING"):
        assert registry_hull_ports("postgresql+psycopg://u:secret@127.0.0.1:9/none") == set()
    assert "built-in ports only" in caplog.text and "secret" not in caplog.text
