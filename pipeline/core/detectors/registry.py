"""The registry of detectors by name, and a site's settings of them.

A site switches detectors off and sets their thresholds by detector name
(``site.yaml``'s ``detectors:`` section, :class:`DetectorSettings`). A detector's own
thresholds have short names (``unusual_landing: {dwell_s: 240}``) that map to one
:class:`Thresholds` field each; the fields no detector owns are shared and are set in
the older top-level ``thresholds:`` by field name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.core.detectors import (
    ais_not_seen,
    cloned_mmsi,
    dark_approach,
    dark_vessel,
    home_harbour,
    identity,
    impossible_speed,
    landing,
    loitering,
    rendezvous,
)
from pipeline.core.detectors.base import Detector
from pipeline.core.detectors.thresholds import Thresholds
from pipeline.errors import ConfigError

__all__ = ["DETECTORS", "DetectorSettings", "detector_settings_problems", "shared_thresholds"]

#: every detector by name, in evaluation order: rendezvous first, as a meeting raises the
#: severity of a later landing in the same evaluation
DETECTORS: dict[str, Detector] = {
    d.name: d
    for d in (
        rendezvous.DETECTOR,
        landing.DETECTOR,
        dark_approach.DETECTOR,
        dark_vessel.DETECTOR,
        loitering.DETECTOR,
        identity.DETECTOR,
        impossible_speed.DETECTOR,
        ais_not_seen.DETECTOR,
        cloned_mmsi.DETECTOR,
        home_harbour.DETECTOR,
    )
}

_SETTING_KEYS = ("enabled",)


def shared_thresholds() -> list[str]:
    """The :class:`Thresholds` fields no detector owns (set in the top-level ``thresholds:``)."""
    owned = {f for d in DETECTORS.values() for f in d.thresholds.values()}
    return [f.name for f in dataclasses.fields(Thresholds) if f.name not in owned]


def _setting_problem(name: str, key: str, value: Any) -> str | None:
    """Why ``value`` is no good for setting ``key`` of detector ``name``, or ``None``."""
    det = DETECTORS[name]
    if key == "enabled":
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
    if key not in det.thresholds:
        known = ", ".join([*_SETTING_KEYS, *sorted(det.thresholds)])
        return f"unknown setting of detector {name} (known: {known})"
    try:
        Thresholds.from_dict({det.thresholds[key]: value})
    except ConfigError as exc:
        return str(exc).replace(f"threshold {det.thresholds[key]}: ", "", 1)
    return None


def detector_settings_problems(raw: Any) -> list[tuple[str, str]]:
    """Every problem of a ``detectors:`` section as ``(field, message)``, the field as
    ``detectors.<name>[.<setting>]`` (empty when fine)."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return [("detectors", "must be a mapping of detector name to its settings")]
    out: list[tuple[str, str]] = []
    for name, settings in raw.items():
        where = f"detectors.{name}"
        if name not in DETECTORS:
            out.append((where, f"unknown detector (known: {', '.join(sorted(DETECTORS))})"))
        elif not isinstance(settings, dict):
            out.append((where, "must be a mapping of setting name to value"))
        else:
            for key, value in settings.items():
                why = _setting_problem(name, str(key), value)
                if why is not None:
                    out.append((f"{where}.{key}", why))
    return out


@dataclass(frozen=True)
class DetectorSettings:
    """A site's detector settings: which detectors are off, and thresholds by name.

    :param disabled: names of the detectors switched off
    :param thresholds: detector name -> setting name -> value
    """

    disabled: frozenset[str] = frozenset()
    thresholds: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> DetectorSettings:
        """From ``site.yaml``'s ``detectors:`` section.

        :raises ConfigError: listing every unknown detector or setting and wrong value
        """
        problems = detector_settings_problems(dict(raw) if raw is not None else None)
        if problems:
            raise ConfigError("; ".join(f"{f}: {m}" for f, m in problems))
        raw = raw or {}
        disabled = frozenset(n for n, s in raw.items() if s.get("enabled", True) is False)
        thresholds = {
            n: {k: v for k, v in sorted(s.items()) if k != "enabled"}
            for n, s in sorted(raw.items())
            if set(s) - {"enabled"}
        }
        return cls(disabled=disabled, thresholds=thresholds)

    def enabled(self, name: str) -> bool:
        """Whether detector ``name`` runs."""
        return name not in self.disabled

    def threshold_fields(self) -> dict[str, Any]:
        """The thresholds set by detector name, as :class:`Thresholds` field -> value."""
        return {
            DETECTORS[n].thresholds[k]: v for n, s in self.thresholds.items() for k, v in s.items()
        }

    def apply(self, overrides: Mapping[str, Any] | None = None) -> Thresholds:
        """The defaults overridden by ``overrides`` (the top-level ``thresholds:``, by field
        name) and by the thresholds set here.

        :raises ConfigError: when both set the same field, or on a bad value
        """
        mine = self.threshold_fields()
        both = sorted(set(mine) & set(overrides or {}))
        if both:
            raise ConfigError(
                f"threshold(s) set both by detector and in thresholds: {', '.join(both)}"
            )
        return Thresholds.from_dict({**(overrides or {}), **mine})

    def fingerprint(self) -> str:
        """A stable text of the settings (for the area context's digest)."""
        return repr((sorted(self.disabled), sorted(self.threshold_fields().items())))
