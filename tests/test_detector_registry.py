"""Detectors behind one interface, registered by name; a site switches them off or sets
their thresholds by name in ``site.yaml`` (``detectors:``)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.core.detectors import (
    DETECTORS,
    Detector,
    DetectorSettings,
    Scene,
    Thresholds,
    VesselView,
)
from pipeline.core.detectors.registry import shared_thresholds
from pipeline.core.detectors.registry_facts import REGISTERED, RegistryFacts
from pipeline.engine.state import AreaContext
from pipeline.errors import ConfigError
from pipeline.site import check_site, load_site

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "sites" / "haikou"
#: noon in Haikou (daylight: a camera is expected to see a vessel), ms UTC
NOON_MS = int(datetime(2026, 3, 8, 4, 0, tzinfo=UTC).timestamp() * 1000)
LON, LAT = 110.30, 20.05
_INT = {
    "mmsi", "t_ms", "stopped_since_t_ms", "slow_since_t_ms", "first_t_ms", "hits",
    "unmatched_since_t_ms", "identity_change_t_ms", "jump_t_ms", "last_jump_t_ms",
}  # fmt: skip
_BOOL = {"dark", "invalid_mmsi", "no_name", "no_call_sign", "shipish", "on_land", "in_port",
         "recent_rendezvous"}  # fmt: skip
_NEVER = {"stopped_since_t_ms", "slow_since_t_ms", "unmatched_since_t_ms",
          "identity_change_t_ms", "jump_t_ms", "last_jump_t_ms"}  # fmt: skip


def view(rows: list[dict]) -> VesselView:
    """A view of AIS vessels that raise nothing: named, moving, reporting, far offshore,
    each row changed by its dict."""
    n = len(rows)
    base = {
        "subject": [f"mmsi:{412000001 + i}" for i in range(n)],
        "mmsi": [412000001 + i for i in range(n)], "name": ["HAI XUN"] * n,
        "t_ms": [NOON_MS] * n, "first_t_ms": [NOON_MS - 3_600_000] * n,
        "lon": [LON] * n, "lat": [LAT] * n, "sog_kn": [8.0] * n, "cog_deg": [90.0] * n,
        "expected_interval_s": [10.0] * n, "stopped_interval_s": [180.0] * n,
        "length_m": [60.0] * n, "jump_speed_kn": [np.nan] * n,
        "coast_m": [20_000.0] * n, "zone_m": [np.inf] * n, "landfall_m": [np.inf] * n,
        "landfall_zone_m": [np.inf] * n, "dr_coast_m": [20_000.0] * n,
    }  # fmt: skip
    cols = {}
    for f in dataclasses.fields(VesselView):
        if f.name == "registry":  # no registry in use: the default
            continue
        vals = [
            r.get(f.name, base[f.name][i] if f.name in base else None) for i, r in enumerate(rows)
        ]
        if f.name in _INT:
            dflt = -1 if f.name in _NEVER else 0
            cols[f.name] = np.array([dflt if v is None else v for v in vals], np.int64)
        elif f.name in _BOOL:
            cols[f.name] = np.array([bool(v) for v in vals], bool)
        elif f.name in ("subject", "name"):
            cols[f.name] = np.array(vals, object)
        else:
            cols[f.name] = np.array(vals, np.float64)
    return VesselView(**cols)


def _triggering_scene(name: str) -> Scene:
    """A scene in which detector ``name`` (alone) finds one condition, with defaults."""
    now = NOON_MS
    if name == "unusual_landing":  # stopped 60 m off the beach for 4 min
        return Scene(
            view([{"coast_m": 60.0, "sog_kn": 0.0, "stopped_since_t_ms": now - 240_000}]), now
        )
    if name == "dark_approach":  # heading in 3 km out at 8 kn, AIS silent for 10 min
        v = view(
            [{"coast_m": 3000.0, "dr_coast_m": 3000.0, "landfall_m": 3000.0, "t_ms": now - 600_000}]
        )
        return Scene(v, now)
    if name == "dark_vessel":  # a camera target without AIS for 2 min
        v = view([{"subject": "cam:c1:7", "mmsi": -1, "dark": True, "hits": 30,
                   "unmatched_since_t_ms": now - 120_000, "expected_interval_s": np.nan}])  # fmt: skip
        return Scene(v, now, area_start_t_ms=now - 3_600_000)
    if name == "rendezvous":  # two slow vessels together for 20 min
        v = view([{"sog_kn": 0.5}, {"sog_kn": 0.5}])
        key = "pair:mmsi:412000001+mmsi:412000002"
        return Scene(v, now, pairs=((key, 0, 1),), pair_since={key: now - 1_200_000})
    if name == "loitering":  # slow 1 km off the coast for 30 min
        return Scene(
            view([{"coast_m": 1000.0, "sog_kn": 1.0, "slow_since_t_ms": now - 1_800_000}]), now
        )
    if name == "identity_anomaly":
        return Scene(view([{"invalid_mmsi": True, "shipish": True}]), now)
    if name == "impossible_speed":
        v = view(
            [{"jump_t_ms": now - 60_000, "last_jump_t_ms": now - 60_000, "jump_speed_kn": 300.0}]
        )
        return Scene(v, now)
    if name == "ais_not_seen":  # in view of camera c1 for 2 min, never detected
        return Scene(view([{}]), now, unseen={"c1:412000001": [now - 120_000, now]})
    if name == "cloned_mmsi":  # its fixes jumped back and forth 4 times, the last 1 min ago
        v = view([{"jump_t_ms": now - 600_000, "last_jump_t_ms": now - 60_000,
                   "jump_speed_kn": 900.0}])  # fmt: skip
        reg = RegistryFacts.empty(1)
        reg.clone_t_ms[0], reg.clone_m[0], reg.clone_jumps[0] = now - 300_000, 30_000.0, 4
        return Scene(dataclasses.replace(v, registry=reg), now)
    if name == "outside_home_harbour":  # registered, stopped 20 min, 8 km from home, at night
        night = now - 12 * 3_600_000
        v = view([{"sog_kn": 0.0, "stopped_since_t_ms": night - 1_200_000, "t_ms": night}])
        reg = RegistryFacts.empty(1)
        reg.status[0], reg.home_harbour_m[0], reg.home_harbours[0] = REGISTERED, 8000.0, "Xinbu"
        return Scene(dataclasses.replace(v, registry=reg), night)
    raise AssertionError(f"no scene for {name}")


@pytest.mark.unit
def test_every_detector_module_is_registered_once_by_its_name() -> None:
    assert set(DETECTORS) == {
        "unusual_landing", "dark_approach", "dark_vessel", "rendezvous", "loitering",
        "identity_anomaly", "impossible_speed", "ais_not_seen", "cloned_mmsi",
        "outside_home_harbour",
    }  # fmt: skip
    assert next(iter(DETECTORS)) == "rendezvous"  # it feeds the landing's severity
    for name, d in DETECTORS.items():
        assert isinstance(d, Detector)
        assert d.name == name


@pytest.mark.unit
def test_each_threshold_field_belongs_to_one_detector_at_most() -> None:
    fields = {f.name for f in dataclasses.fields(Thresholds)}
    owned = [f for d in DETECTORS.values() for f in d.thresholds.values()]
    assert set(owned) <= fields
    assert len(owned) == len(set(owned))
    assert set(shared_thresholds()) == fields - set(owned)


@pytest.mark.unit
@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_each_detector_runs_through_the_registry(name: str) -> None:
    th = Thresholds()
    conds = DETECTORS[name].evaluate(_triggering_scene(name), th)
    assert [c.kind for c in conds] == [name]
    assert conds[0].start_t_ms <= NOON_MS and conds[0].severity > 0
    # the other detectors find nothing in that scene but the identity factors it shares
    others = {
        c.kind
        for n, d in DETECTORS.items()
        if n != name
        for c in d.evaluate(_triggering_scene(name), th)
    }
    # (a cloned MMSI's jumps are impossible speeds too)
    shared = {"identity_anomaly"} | ({"impossible_speed"} if name == "cloned_mmsi" else set())
    assert others <= shared if name != "identity_anomaly" else not others
    # and nothing in an empty area
    assert DETECTORS[name].evaluate(Scene(view([]), NOON_MS), th) == []


@pytest.mark.unit
def test_a_threshold_set_by_detector_name_changes_what_it_finds() -> None:
    scene = _triggering_scene("unusual_landing")  # stopped 4 min
    settings = DetectorSettings.from_dict({"unusual_landing": {"dwell_s": 300}})
    th = settings.apply({})
    assert th.landing_dwell_s == 300.0 and th == dataclasses.replace(
        Thresholds(), landing_dwell_s=300.0
    )
    assert DETECTORS["unusual_landing"].evaluate(scene, Thresholds())
    assert DETECTORS["unusual_landing"].evaluate(scene, th) == []
    later = dataclasses.replace(scene, now_t_ms=scene.now_t_ms + 60_000)
    (c,) = DETECTORS["unusual_landing"].evaluate(later, th)
    assert c.start_t_ms == scene.now_t_ms - 240_000 + 300_000


@pytest.mark.unit
def test_detector_settings_reject_unknown_names_and_wrong_types() -> None:
    good = DetectorSettings.from_dict({"loitering": {"enabled": False, "min_s": 600}})
    assert not good.enabled("loitering") and good.enabled("rendezvous")
    assert good.apply({"zone_margin_m": 50}).loiter_min_s == 600.0
    with pytest.raises(ConfigError, match="detectors.loiter: unknown detector"):
        DetectorSettings.from_dict({"loiter": {"enabled": False}})
    with pytest.raises(ConfigError, match=r"detectors.loitering.min_m: unknown setting"):
        DetectorSettings.from_dict({"loitering": {"min_m": 3}})
    with pytest.raises(ConfigError, match=r"detectors.loitering.enabled: must be true or false"):
        DetectorSettings.from_dict({"loitering": {"enabled": "no"}})
    with pytest.raises(ConfigError, match=r"detectors.dark_vessel.min_s: must be a number"):
        DetectorSettings.from_dict({"dark_vessel": {"min_s": "1 min"}})
    with pytest.raises(ConfigError, match="set both by detector and in thresholds: loiter_min_s"):
        good.apply({"loiter_min_s": 900})


def _site_with(tmp_path: Path, **extra) -> Path:
    import shutil

    dst = tmp_path / "site"
    shutil.copytree(SITE, dst)
    doc = yaml.safe_load((dst / "site.yaml").read_text())
    doc.update(extra)
    (dst / "site.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    return dst


@pytest.mark.unit
def test_site_check_lists_bad_detector_settings_with_file_and_field(tmp_path: Path) -> None:
    site = _site_with(
        tmp_path,
        thresholds={"landing_dwell_s": 200},
        detectors={
            "loiter": {"enabled": False},
            "loitering": {"enabled": "off", "min_m": 3},
            "dark_vessel": {"min_s": -5},
            "identity_anomaly": [1],
            "unusual_landing": {"dwell_s": 240},
        },
    )
    problems = check_site(site, require_env=False)
    for want in (
        "site.yaml: detectors.loiter: unknown detector (known: ais_not_seen, cloned_mmsi, dark_approach",
        "site.yaml: detectors.loitering.enabled: must be true or false, got 'off'",
        "site.yaml: detectors.loitering.min_m: unknown setting of detector loitering (known: enabled, coast_m, min_s)",
        "site.yaml: detectors.dark_vessel.min_s: must not be negative, got -5.0",
        "site.yaml: detectors.identity_anomaly: must be a mapping of setting name to value",
        "site.yaml: detectors.unusual_landing.dwell_s: sets landing_dwell_s, which thresholds.landing_dwell_s sets too: keep one",
    ):
        assert any(p.startswith(want) for p in problems), (want, problems)
    assert len(problems) == 6, problems
    site = _site_with(tmp_path / "b", detectors=["loitering"])
    assert check_site(site, require_env=False) == [
        "site.yaml: detectors: must be a mapping of detector name to its settings"
    ]


@pytest.mark.unit
def test_site_detector_settings_reach_the_area_context_and_its_fingerprint(tmp_path: Path) -> None:
    plain = AreaContext.from_site(load_site(SITE))
    site = load_site(
        _site_with(
            tmp_path,
            detectors={"loitering": {"enabled": False}, "unusual_landing": {"dwell_s": 240}},
        )
    )
    ctx = AreaContext.from_site(site)
    assert not ctx.detectors.enabled("loitering") and ctx.detectors.enabled("unusual_landing")
    assert ctx.thresholds == dataclasses.replace(plain.thresholds, landing_dwell_s=240.0)
    assert ctx.fingerprint != plain.fingerprint
    # switching a detector off alone changes the fingerprint too
    off = load_site(_site_with(tmp_path / "b", detectors={"loitering": {"enabled": False}}))
    off_ctx = AreaContext.from_site(off)
    assert off_ctx.thresholds == plain.thresholds and off_ctx.fingerprint != plain.fingerprint
    # the older top-level form still works
    old = load_site(_site_with(tmp_path / "c", thresholds={"landing_dwell_s": 240}))
    assert AreaContext.from_site(old).thresholds == ctx.thresholds


@pytest.mark.unit
def test_the_detector_docs_list_every_detector_setting_and_default() -> None:
    text = (REPO / "docs" / "detectors.md").read_text(encoding="utf-8")
    table = text.split("Its own thresholds, with their defaults:")[1].split("A setting is")[0]
    documented: dict[tuple[str, str], str] = {}
    current = ""
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[1].startswith("`"):
            continue
        current = cells[0].strip("`") or current
        documented[(current, cells[1].strip("`"))] = cells[2]
    th = Thresholds()
    want = {
        (n, k): f"{getattr(th, f):g}" for n, d in DETECTORS.items() for k, f in d.thresholds.items()
    }
    assert documented == want


@pytest.fixture(scope="module")
def short_night(tmp_path_factory) -> tuple[Path, int]:
    """A boat without name or call sign that comes in from 1.2 km at 6 kn at 04:00 in
    Haikou and stops 8 min 60 m off a beach far from every authorised zone.

    :returns: the NMEA file and the event time of the stop, ms UTC
    """
    from test_replay import NIGHT_S, beach_point, nmea_position, nmea_static

    lon, lat, (nx, ny) = beach_point(AreaContext.from_site(load_site(SITE)))
    m = 412777002
    lines = nmea_static(m, NIGHT_S, "", "", 9)
    t = NIGHT_S
    for k in range(20):
        lines.append(nmea_position(m, t, lon + nx * (20 - k), lat + ny * (20 - k), 6.0, 0.0))
        t += 10
    stop_t_ms = t * 1000
    for _ in range(48):
        lines.append(nmea_position(m, t, lon, lat, 0.1, 0.0))
        t += 10
    path = tmp_path_factory.mktemp("night") / "night.nmea"
    path.write_text("\n".join(lines) + "\n")
    return path, stop_t_ms


def _opened(site: Path, ais: Path) -> dict[str, int]:
    """Event time (ms UTC) of each alert opened in a replay of ``ais``, by kind."""
    from pipeline.replay import replay

    out = {}
    for a in replay(site, [ais], [], drain_s=600):
        if a.data.status == "open":
            t = datetime.fromisoformat(a.data.event_time.replace("Z", "+00:00"))
            out[a.data.kind] = int(t.timestamp() * 1000)
    return out


@pytest.mark.unit
def test_a_detector_switched_off_in_site_yaml_raises_no_alert(short_night, tmp_path) -> None:
    ais, stop_t_ms = short_night
    on = _opened(SITE, ais)
    assert on == {
        "unusual_landing": stop_t_ms + 180_000,
        "identity_anomaly": on["identity_anomaly"],
    }
    off = _opened(_site_with(tmp_path, detectors={"unusual_landing": {"enabled": False}}), ais)
    assert off == {"identity_anomaly": on["identity_anomaly"]}
    both = _opened(
        _site_with(tmp_path / "b", detectors={n: {"enabled": False} for n in DETECTORS}), ais
    )
    assert both == {}


@pytest.mark.unit
def test_a_threshold_set_by_name_in_site_yaml_changes_the_alerts(short_night, tmp_path) -> None:
    ais, stop_t_ms = short_night
    site = _site_with(tmp_path, detectors={"unusual_landing": {"dwell_s": 240}})
    assert _opened(site, ais)["unusual_landing"] == stop_t_ms + 240_000
    # the older top-level form gives the same
    old = _site_with(tmp_path / "b", thresholds={"landing_dwell_s": 240})
    assert _opened(old, ais)["unusual_landing"] == stop_t_ms + 240_000
