"""AIS not seen: an AIS vessel in a working camera's view that no detection explains."""

from __future__ import annotations

from pipeline.core.detectors.base import (
    Condition,
    DetectorSpec,
    Factor,
    VesselView,
)
from pipeline.core.detectors.thresholds import Thresholds
from pipeline.core.geo import solar_elevation_deg

__all__ = ["DETECTOR", "ais_not_seen", "ais_rows_by_mmsi"]


def ais_not_seen(
    v: VesselView,
    unseen: dict[str, list[int]],
    rows_by_mmsi: dict[int, int],
    now_t_ms: int,
    th: Thresholds,
) -> list[Condition]:
    """An AIS vessel inside a working camera's view that no detection explains for
    ``ais_not_seen_min_s`` (possible spoofing, or a detector miss: low severity 15).

    :param unseen: ``"<camera>:<mmsi>"`` -> ``[since_t_ms, last_t_ms]`` unseen in that camera
    :param rows_by_mmsi: row of each AIS vessel in ``v``
    """
    out = []
    for key in sorted(unseen):
        since, last = unseen[key]
        cam, m = key.rsplit(":", 1)
        i = rows_by_mmsi.get(int(m))
        if i is None or now_t_ms - last > th.camera_stale_s * 1000.0:
            continue
        if last - since < th.ais_not_seen_min_s * 1000.0:
            continue
        start = int(since + th.ais_not_seen_min_s * 1000.0)
        if solar_elevation_deg(v.lon[i], v.lat[i], start) < th.night_sun_elevation_deg:
            continue  # a visible-light camera cannot be expected to see it at night
        f = [
            Factor(
                "not_seen_by_camera",
                15.0,
                f"AIS places the vessel in view of camera {cam} but no detection matched it for >= {th.ais_not_seen_min_s:.0f} s",
            )
        ]
        out.append(
            Condition(
                "ais_not_seen",
                f"seen:{cam}:{m}",
                int(since + th.ais_not_seen_min_s * 1000.0),
                i,
                float(v.lon[i]),
                float(v.lat[i]),
                tuple(f),
                (i,),
            )
        )
    return out


def ais_rows_by_mmsi(v: VesselView) -> dict[int, int]:
    """The row of each AIS vessel (not a dark target) of ``v``, by MMSI."""
    return {int(m): i for i, m in enumerate(v.mmsi.tolist()) if m >= 0 and not v.dark[i]}


DETECTOR = DetectorSpec(
    name="ais_not_seen",
    thresholds={"min_s": "ais_not_seen_min_s", "camera_stale_s": "camera_stale_s"},
    run=lambda s, th: ais_not_seen(
        s.view, dict(s.unseen), ais_rows_by_mmsi(s.view), s.now_t_ms, th
    ),
)
