"""Sensor noise of the scenario simulator: what real cameras and AIS receivers add.

:func:`pipeline.tools.simulate.simulate` draws the traffic and the planted events first and
then observes them through the sensors. ``SimConfig(noise="none")`` keeps the observation as
clean as it was before this module (a few wave false alarms, range-dependent misses); the
default ``noise="realistic"`` adds what field recordings show (docs/detection-quality.md):

- **detection drop-outs**: every detection of a vessel is also missed with probability
  ``det_dropout_p`` (a detector at 1 frame/s misses about one frame in five), and the
  camera tracker gives a track a new id after ``track_lost_s`` without a detection;
- **clutter**: one- or two-frame detections on waves, more near the camera
  (range drawn from an exponential of mean ``clutter_range_m``) and ``glare_factor`` times
  more in daylight, at ``clutter_per_min`` per camera; and ``clutter_spots`` places per
  camera near the waterline (rocks, breaking waves) that raise such short detections
  again and again, tens of seconds to two minutes apart, for ``clutter_spot_min`` minutes;
- **position error**: ``waterline_sigma_px`` more pixel noise on the waterline row, so the
  range error grows with the square of the range (kilometres beyond 10 km), and
  ``bearing_sigma_deg`` more bearing noise (bearing stays the robust quantity);
- **far targets**: lit ships are detected out to ``far_range_m`` (their range is poor);
- **a camera outage**: one camera sends no frame for ``outage_s``, at a time that spares
  the planted landings in its view (so recall is still measurable);
- **two AIS receivers**: a report heard by the nearest station is also heard by another
  with probability ``ais_duplicate_p`` and logged by it up to ``ais_disorder_s`` later
  (duplicates and disorder within the pipeline's allowed AIS disorder);
- **missed reports**: each position report is also lost with probability ``ais_miss_p``
  (slot collisions); Class B "CS" reports every 30 s above 2 kn and every 3 min below
  (ITU-R M.1371) in both modes;
- **corrupted lines**: ``ais_corrupt_per_h`` logged lines per hour get one character
  changed or are cut short (the pipeline dead-letters them).

Every draw of this module comes from its own random streams (``[seed, 10 + k]``), so the
clean observation is the same in both modes apart from what noise adds or removes, and the
output stays a function of site, seed and options.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.errors import ConfigError

__all__ = ["NOISE_LEVELS", "NoiseConfig", "corrupt_lines", "noise_config"]


@dataclass(frozen=True)
class NoiseConfig:
    """The simulator's sensor noise knobs (see the module docstring).

    :param name: ``"none"`` or ``"realistic"``
    :param det_dropout_p: extra probability that a vessel's detection is missed in a frame
    :param track_lost_s: a camera track unseen this long gets a new id, s
    :param clutter_per_min: background clutter tracks per camera per minute at night
    :param glare_factor: clutter multiplier in full daylight (glare on the water)
    :param clutter_range_m: mean range of background clutter from the camera, m
    :param clutter_max_range_m: no clutter beyond this range, m
    :param clutter_spots: recurring clutter places per camera near the waterline
    :param clutter_spot_gap_s: ``(min, max)`` time between two hits of a spot, s
    :param clutter_spot_min: how long a spot stays active, min
    :param waterline_sigma_px: extra noise on the waterline row, pixels
    :param bearing_sigma_deg: extra bearing noise, degrees
    :param far_range_m: lit ships are detected up to this range, m
    :param outage_s: one camera is offline this long, s (0: no outage)
    :param ais_duplicate_p: probability that a second station also logs a heard report
    :param ais_disorder_s: the second station logs it up to this long later, s
    :param ais_miss_p: extra probability that a position report is lost
    :param ais_corrupt_per_h: corrupted logged lines per hour
    """

    name: str
    det_dropout_p: float = 0.0
    track_lost_s: float = 30.0
    clutter_per_min: float = 0.0
    glare_factor: float = 1.0
    clutter_range_m: float = 600.0
    clutter_max_range_m: float = 3000.0
    clutter_spots: int = 0
    clutter_spot_gap_s: tuple[float, float] = (20.0, 120.0)
    clutter_spot_min: tuple[float, float] = (10.0, 30.0)
    waterline_sigma_px: float = 0.0
    bearing_sigma_deg: float = 0.0
    far_range_m: float = 0.0
    outage_s: float = 0.0
    ais_duplicate_p: float = 0.0
    ais_disorder_s: float = 0.0
    ais_miss_p: float = 0.0
    ais_corrupt_per_h: float = 0.0

    @property
    def enabled(self) -> bool:
        """Whether this adds any noise to the clean observation."""
        return self.name != "none"


#: The noise levels ``shorewatch simulate --noise`` knows.
NOISE_LEVELS: dict[str, NoiseConfig] = {
    "none": NoiseConfig(name="none"),
    "realistic": NoiseConfig(
        name="realistic",
        det_dropout_p=0.2,
        track_lost_s=8.0,
        clutter_per_min=1.5,
        glare_factor=3.0,
        clutter_range_m=600.0,
        clutter_max_range_m=3000.0,
        clutter_spots=3,
        clutter_spot_gap_s=(20.0, 120.0),
        clutter_spot_min=(10.0, 30.0),
        waterline_sigma_px=1.0,
        bearing_sigma_deg=0.1,
        far_range_m=16000.0,
        outage_s=1800.0,
        ais_duplicate_p=0.6,
        ais_disorder_s=4.0,
        ais_miss_p=0.1,
        ais_corrupt_per_h=6.0,
    ),
}


def noise_config(name: str) -> NoiseConfig:
    """The noise level called ``name``.

    :raises ConfigError: for an unknown name
    """
    try:
        return NOISE_LEVELS[name]
    except KeyError:
        raise ConfigError(
            f"unknown noise level {name!r} (known: {', '.join(sorted(NOISE_LEVELS))})"
        ) from None


def corrupt_lines(lines: list[str], expected: float, rng: np.random.Generator) -> list[int]:
    """Corrupt about ``expected`` of ``lines`` in place: one payload character changed (the
    checksum no longer matches) or the line cut short, as a noisy serial link does.

    :param lines: logged AIS lines (tag block + sentence)
    :param expected: mean number of lines to corrupt (Poisson)
    :param rng: the noise's random stream
    :return: the indices of the corrupted lines, ascending
    """
    n = min(int(rng.poisson(expected)), len(lines))
    idx = sorted(int(i) for i in rng.choice(len(lines), n, replace=False)) if n else []
    for i in idx:
        line = lines[i]
        start = line.find("!AIVDM,")
        if rng.random() < 0.5 or start < 0:
            lines[i] = line[: max(1, int(rng.integers(len(line) // 3, len(line) - 4)))]
            continue
        k = int(rng.integers(start + 15, len(line) - 6))
        old = line[k]
        new = "0" if old != "0" else "1"
        lines[i] = line[:k] + new + line[k + 1 :]
    return idx
