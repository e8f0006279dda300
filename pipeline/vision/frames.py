"""Decoded video frames: the one check every frame passes before it is used."""

from __future__ import annotations

import numpy as np

from pipeline.errors import FrameError

__all__ = ["MIN_FRAME_SIDE_PX", "check_frame"]

#: smallest usable frame side, pixels
MIN_FRAME_SIDE_PX = 8


def check_frame(image: object, expected_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Validate a decoded frame, raising :class:`FrameError` when it cannot be used.

    :param image: what the decoder returned, an ``(H, W, 3)`` uint8 BGR image when all is well
    :param expected_shape: ``(height, width)`` of the stream so far, pixels, if known
    :returns: the frame, unchanged
    :raises FrameError: reason ``empty_frame`` (nothing, or zero size), ``bad_frame`` (not an
        array), ``bad_shape`` (not H×W×3, or smaller than :data:`MIN_FRAME_SIDE_PX`),
        ``bad_dtype`` (not 8-bit), ``size_changed`` (not ``expected_shape``) or
        ``blank_frame`` (every pixel the same colour: a decoder's fill)
    """
    if image is None:
        raise FrameError("empty_frame", "the decoder returned no image")
    if not isinstance(image, np.ndarray):
        raise FrameError("bad_frame", f"expected a numpy array, got {type(image).__name__}")
    if image.size == 0:
        raise FrameError("empty_frame", f"zero-size image {image.shape}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise FrameError("bad_shape", f"expected HxWx3, got {image.shape}")
    if image.dtype != np.uint8:
        raise FrameError("bad_dtype", f"expected uint8, got {image.dtype}")
    if image.shape[0] < MIN_FRAME_SIDE_PX or image.shape[1] < MIN_FRAME_SIDE_PX:
        raise FrameError("bad_shape", f"image too small: {image.shape}")
    if expected_shape is not None and tuple(image.shape[:2]) != tuple(expected_shape):
        raise FrameError(
            "size_changed",
            f"frame is {image.shape[1]}x{image.shape[0]}, stream was "
            f"{expected_shape[1]}x{expected_shape[0]}",
        )
    flat = image.reshape(-1, 3)
    if not (flat != flat[0]).any():
        raise FrameError("blank_frame", "every pixel has the same colour (decoder fill)")
    return image
