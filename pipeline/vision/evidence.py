"""The evidence store: JPEG frames and crops of detections."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from pipeline.errors import FrameError


class EvidenceStore(Protocol):
    """Where evidence images go; returns a URI for each."""

    def put(self, key: str, data: bytes, content_type: str = "image/jpeg") -> str: ...


class DirectoryEvidenceStore:
    """Evidence files under a root directory; URIs are ``file://`` URIs.

    :param root: directory (created on first write)
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def put(self, key: str, data: bytes, content_type: str = "image/jpeg") -> str:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"evidence key escapes the store: {key!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return path.as_uri()


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise FrameError("encode_failed", "JPEG encoding failed")
    return buf.tobytes()
