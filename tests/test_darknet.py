"""Darknet networks on ONNX Runtime, checked against OpenCV's own Darknet importer."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.tools.eval_camera import Clip
from pipeline.vision.darknet import DarknetOnnx, build_onnx, parse_cfg
from pipeline.vision.detectors import DnnDetector

# A small network with every supported layer kind: strided and grouped convolutions,
# batch norm, each activation, a residual shortcut, a stride-2 max pool, an SPP-style
# block of stride-1 pools, an upsample with a route back to an earlier layer, two heads.
TINY_CFG = """
[net]
width=64
height=64
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=8
groups=8
size=3
stride=1
pad=1
activation=mish

[convolutional]
batch_normalize=1
filters=8
size=1
stride=1
pad=0
activation=swish

[dropout]
probability=.2

[shortcut]
from=-3
activation=linear

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=relu

[maxpool]
size=5
stride=1

[route]
layers=-1,-2

[convolutional]
filters=21
size=1
stride=1
pad=1
activation=linear

[yolo]
mask=3,4,5
anchors=4,6, 8,10, 12,16, 20,24, 30,40, 50,60
classes=2
num=6
scale_x_y=1.05

[route]
layers=-5

[upsample]
stride=2

[route]
layers=-1,4

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=logistic

[convolutional]
filters=21
size=1
stride=1
pad=1
activation=linear

[yolo]
mask=0,1,2
anchors=4,6, 8,10, 12,16, 20,24, 30,40, 50,60
classes=2
num=6
"""


def _conv_params(cfg: str) -> list[tuple[int, int, int, bool]]:
    """``(filters, inputs per group, kernel size, batch norm)`` of each convolution, in order."""
    out, c, chans = [], 3, []
    for i, (kind, p) in enumerate(parse_cfg(cfg)[1:]):
        if kind == "convolutional":
            f, k, g = int(p["filters"]), int(p.get("size", 1)), int(p.get("groups", 1))
            out.append((f, c // g, k, p.get("batch_normalize") == "1"))
            c = f
        elif kind == "route":
            idx = [i + int(x) if int(x) < 0 else int(x) for x in p["layers"].split(",")]
            c = sum(chans[x] for x in idx)
        chans.append(c)
    return out


def _weights(cfg: str, seed: int = 0) -> bytes:
    """A weights file for ``cfg``: darknet's layout, values that keep activations moderate."""
    rng = np.random.default_rng(seed)
    parts = []
    for f, cin, k, bn in _conv_params(cfg):
        if bn:  # bias, scale, rolling mean, rolling variance (> 0)
            parts += [rng.normal(0, 0.1, f), rng.uniform(0.5, 1.5, f)]
            parts += [rng.normal(0, 0.1, f), rng.uniform(0.5, 1.5, f)]
        else:
            parts.append(rng.normal(0, 0.1, f))
        parts.append(rng.normal(0, 1.0 / np.sqrt(cin * k * k), f * cin * k * k))
    header = struct.pack("<iiiq", 0, 2, 0, 0)
    return header + np.concatenate(parts).astype("<f4").tobytes()


def _opencv_rows(cfg: str, weights: bytes, blob: np.ndarray) -> np.ndarray:
    net = cv2.dnn.readNetFromDarknet(
        np.frombuffer(cfg.encode(), np.uint8), np.frombuffer(weights, np.uint8)
    )
    net.setInput(blob)
    return np.vstack(net.forward(net.getUnconnectedOutLayersNames()))


@pytest.mark.unit
def test_every_layer_kind_matches_opencv_on_random_weights(tmp_path: Path):
    # OpenCV's YOLO layer zeroes class scores below the head's thresh: none here
    cfg = TINY_CFG.replace("[yolo]\n", "[yolo]\nthresh=0\n")
    weights = _weights(cfg)
    (tmp_path / "t.cfg").write_text(cfg)
    (tmp_path / "t.weights").write_bytes(weights)
    net = DarknetOnnx(tmp_path / "t.cfg", tmp_path / "t.weights", (64, 64))
    assert [(h.grid_h, h.grid_w, h.classes) for h in net.heads] == [(16, 16, 2), (32, 32, 2)]
    rng = np.random.default_rng(1)
    blob = rng.uniform(0, 1, (1, 3, 64, 64)).astype(np.float32)
    ours = net.decode(net.forward(blob))
    ref = _opencv_rows(cfg, weights, blob)
    assert ours.shape == ref.shape == (3 * 256 + 3 * 1024, 7)
    assert np.isfinite(ours).all() and ours[:, 4].std() > 0.01  # a live network, not saturated
    np.testing.assert_allclose(ours, ref, rtol=2e-3, atol=2e-4)


@pytest.mark.unit
def test_yolo_fastest_on_real_frames_matches_opencv(shared, yolo_dir):
    model = yolo_dir
    frames = dict(Clip(shared / "data" / "video" / "clip-01").frames([24, 124, 249]))
    cfg = (model / "yolo-fastest-1.1-xl.cfg").read_text().replace("[yolo]\n", "[yolo]\nthresh=0\n")
    weights = (model / "yolo-fastest-1.1-xl.weights").read_bytes()
    net = DarknetOnnx(
        model / "yolo-fastest-1.1-xl.cfg", model / "yolo-fastest-1.1-xl.weights", (416, 416)
    )
    for frame in frames.values():
        blob = cv2.dnn.blobFromImage(frame, 1 / 255.0, (416, 416), swapRB=True, crop=False)
        ours = net.decode(net.forward(blob))
        ref = _opencv_rows(cfg, weights, blob)
        assert ours.shape == ref.shape == (3 * 13 * 13 + 3 * 26 * 26, 85)
        np.testing.assert_allclose(ours, ref, atol=2e-4)
    # and the detectors built on each give the same boats
    kw = {"conf": 0.2}
    a = DnnDetector.from_dir(model, backend="onnxruntime", **kw)
    b = DnnDetector.from_dir(model, backend="opencv", **kw)
    for frame in frames.values():
        da, db = a.detect(frame), b.detect(frame)
        assert len(da) == len(db) >= 3
        np.testing.assert_allclose(da.boxes_xywh, db.boxes_xywh, atol=0.05)
        np.testing.assert_allclose(da.scores, db.scores, atol=1e-3)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c, w: (c, w[:-8]), "weights end at"),
        (lambda c, w: (c, w + b"\0" * 8), "wrong weights file"),
        (lambda c, w: (c, w[:10]), "too short"),
        (lambda c, w: (c, w + b"\0"), "not whole floats"),
        (lambda c, w: (c.replace("[dropout]", "[crop]"), w), r"\[crop\] is not supported"),
        (
            lambda c, w: (c.replace("activation=mish", "activation=gelu"), w),
            "'gelu' is not supported",
        ),
        (lambda c, w: (c.replace("[net]", "[nett]"), w), "must start with a \\[net\\]"),
        (
            lambda c, w: (c.replace("probability=.2", "probability"), w),
            "expected \\[section\\] or key=value",
        ),
        (lambda c, w: (c.replace("layers=-1,4", "layers=-1,40"), w), "do not concatenate"),
        (lambda c, w: (c.replace("from=-3", "from=-7"), w), "not a layer of the same shape"),
        (
            lambda c, w: (c.replace("classes=2", "classes=3", 1), w),
            "anchors x \\(3 \\+ 5\\) expected",
        ),
        (lambda c, w: (c.replace("filters=8\ngroups=8", "filters=8\ngroups=3"), w), "groups=3"),
        (lambda c, w: (c.replace("filters=16", "filters=x"), w), "'x' is not an integer"),
    ],
)
def test_bad_models_are_refused_with_the_reason(edit, message):
    cfg, weights = edit(TINY_CFG, _weights(TINY_CFG))
    with pytest.raises(ConfigError, match=message):
        build_onnx(cfg, weights, (64, 64))


@pytest.mark.unit
def test_input_sizes_the_network_cannot_take_are_refused():
    with pytest.raises(ConfigError, match="at least 1x1"):
        build_onnx(TINY_CFG, _weights(TINY_CFG), (0, 64))
    # 65 columns: the upsampled map no longer lines up with the layer it joins
    with pytest.raises(ConfigError, match=r"layer 13 \[route\]: layers=-1,4 do not concatenate"):
        build_onnx(TINY_CFG, _weights(TINY_CFG), (65, 64))


@pytest.mark.unit
def test_detector_backend_is_checked(yolo_dir):
    with pytest.raises(ConfigError, match="backend must be one of"):
        DnnDetector.from_dir(yolo_dir, backend="tensorrt")
