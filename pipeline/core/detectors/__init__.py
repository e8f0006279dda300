"""Detectors: small pure functions over the fused picture of one area, one module each.

Each detector implements :class:`Detector` (a name, its own thresholds, one vectorised
evaluation over a :class:`Scene`) and is registered by name in :data:`DETECTORS`
(:mod:`pipeline.core.detectors.registry`). The shared types live in
:mod:`pipeline.core.detectors.base` and :mod:`pipeline.core.detectors.thresholds`.
"""

from pipeline.core.detectors.base import (
    Condition,
    Detector,
    DetectorSpec,
    Factor,
    Scene,
    VesselView,
)
from pipeline.core.detectors.registry import DETECTORS, DetectorSettings
from pipeline.core.detectors.thresholds import Thresholds

__all__ = [
    "DETECTORS",
    "Condition",
    "Detector",
    "DetectorSettings",
    "DetectorSpec",
    "Factor",
    "Scene",
    "Thresholds",
    "VesselView",
]
