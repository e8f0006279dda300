"""The radars of a site: ``radars.yaml`` beside ``site.yaml`` in the site folder.

::

    radars:
      - id: hk-radar-01
        name: Xiuying signal station
        lon: 110.2700
        lat: 20.0330
        height_m: 35.0             # antenna above the sea, m
        heading_reference: true    # bearings are true (north-stabilised); or: fixed
        heading_deg: 0.0           # fixed: the true bearing of the antenna's reference
        range_sigma_m: 25.0        # one-sigma range error, m
        bearing_sigma_deg: 0.7     # one-sigma bearing error, degrees
        max_range_m: 22000         # targets reported beyond this are rejected
        addresses: [10.0.0.31]     # sender addresses of the radar's UDP/TCP output
        sac: 12                    # optional: ASTERIX data source (I010/010 SAC and SIC)
        sic: 31                    #   of the radar's CAT 010 output, 0-255 each

The file is optional: a site without it has no radars. :func:`load_radars` reads and
validates it and raises :class:`~pipeline.errors.SiteError` with every problem found, as
``radars.yaml: field: message`` lines, like :func:`pipeline.site.load_site`.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

from pipeline.core.radar import RadarConfig
from pipeline.errors import SiteError
from pipeline.site import _check_lonlat, _entry_where, _is_number, _Problems, _read_yaml

__all__ = ["RADARS_FILE", "RadarConfig", "check_radars", "load_radars"]

RADARS_FILE = "radars.yaml"

_KEYS = {
    "id", "name", "lon", "lat", "height_m", "heading_reference", "heading_deg",
    "range_sigma_m", "bearing_sigma_deg", "max_range_m", "addresses", "sac", "sic",
}  # fmt: skip


def _parse_radar(raw: Any, i: int, probs: _Problems) -> RadarConfig | None:
    f = RADARS_FILE
    if not isinstance(raw, dict):
        probs.add(f, f"radars[{i}]", "must be a mapping")
        return None
    n0 = len(probs.items)
    where, rid = _entry_where(raw, "radars", "radar", i, _KEYS, f, probs)
    _check_lonlat(raw.get("lon"), raw.get("lat"), f, where, probs)
    for key, default in (
        ("height_m", None),
        ("range_sigma_m", None),
        ("bearing_sigma_deg", None),
        ("max_range_m", None),
    ):
        v = raw.get(key, default)
        if not _is_number(v) or v <= 0:
            probs.add(f, f"{where}.{key}", f"must be a positive number, got {v!r}")
    ref = raw.get("heading_reference", "true")
    ref = "true" if ref is True else ref
    if ref not in ("true", "fixed"):
        probs.add(f, f"{where}.heading_reference", f"must be true or fixed, got {ref!r}")
    hd = raw.get("heading_deg")
    if hd is not None and (not _is_number(hd) or not 0.0 <= hd < 360.0):
        probs.add(f, f"{where}.heading_deg", f"must be in [0, 360) degrees true, got {hd!r}")
    if ref == "fixed" and hd is None:
        probs.add(f, f"{where}.heading_deg", "a fixed heading reference needs heading_deg")
    addrs = raw.get("addresses", [])
    if not isinstance(addrs, list):
        probs.add(f, f"{where}.addresses", "must be a list of IP addresses")
        addrs = []
    for a in addrs:
        try:
            ipaddress.ip_address(str(a))
        except ValueError:
            probs.add(f, f"{where}.addresses", f"not an IP address: {a!r}")
    sac, sic = raw.get("sac"), raw.get("sic")
    for key, v in (("sac", sac), ("sic", sic)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 255):
            probs.add(f, f"{where}.{key}", f"must be a whole number 0-255, got {v!r}")
    if (sac is None) != (sic is None):
        probs.add(f, f"{where}.sac", "sac and sic go together: give both or neither")
    if len(probs.items) > n0:
        return None
    return RadarConfig(
        id=str(rid),
        name=raw.get("name"),
        lon=float(raw["lon"]),
        lat=float(raw["lat"]),
        height_m=float(raw["height_m"]),
        heading_reference=str(ref),
        heading_deg=float(hd) if hd is not None else None,
        range_sigma_m=float(raw["range_sigma_m"]),
        bearing_sigma_deg=float(raw["bearing_sigma_deg"]),
        max_range_m=float(raw["max_range_m"]),
        addresses=tuple(str(a) for a in addrs),
        sac=sac,
        sic=sic,
    )


def check_radars(site_dir: str | os.PathLike[str]) -> tuple[list[str], dict[str, RadarConfig]]:
    """Every problem of a site's ``radars.yaml`` and the radars that are valid, by id."""
    probs = _Problems()
    path = Path(site_dir) / RADARS_FILE
    if not path.is_file():
        return [], {}
    raw = _read_yaml(path, RADARS_FILE, probs)
    if isinstance(raw, dict) and "radars" in raw:
        raw = raw["radars"]
    if raw is not None and not isinstance(raw, list):
        probs.add(RADARS_FILE, "radars", "must be a list of radars")
        return probs.items, {}
    radars: dict[str, RadarConfig] = {}
    for i, r in enumerate(raw or []):
        radar = _parse_radar(r, i, probs)
        if radar is None:
            continue
        if radar.id in radars:
            probs.add(RADARS_FILE, f"radars[{i}].id", f"duplicate radar id {radar.id!r}")
            continue
        same = [r.id for r in radars.values() if radar.sac is not None and
                (r.sac, r.sic) == (radar.sac, radar.sic)]  # fmt: skip
        if same:
            probs.add(
                RADARS_FILE,
                f"radars[{i}].sac",
                f"sac/sic {radar.sac}/{radar.sic} already belong to radar {same[0]!r}",
            )
            continue
        radars[radar.id] = radar
    return probs.items, radars


def load_radars(site_dir: str | os.PathLike[str]) -> dict[str, RadarConfig]:
    """The radars of a site folder, by id (empty when it has no ``radars.yaml``).

    :raises SiteError: with every problem found
    """
    problems, radars = check_radars(site_dir)
    if problems:
        raise SiteError(problems)
    return radars


def cmd_check(args: Any) -> int:
    """``shorewatch site check DIR``: the site (:func:`pipeline.site.cmd_check`), then its
    ``radars.yaml``."""
    from pipeline.site import cmd_check as check_site_folder

    rc = check_site_folder(args)
    problems, radars = check_radars(args.dir)
    for p in problems:
        print(p)
    if problems:
        print(f"{args.dir}: {len(problems)} problem(s) in {RADARS_FILE}")
        return 1
    if radars:
        print(f"{RADARS_FILE}: ok: {len(radars)} radar(s) ({', '.join(radars)})")
    return rc
