"""Per-MMSI vessel track update, vectorised over a batch of AIS fixes.

Pure NumPy: no I/O, no clock. Times are ms since the Unix epoch, UTC; speeds in knots
(``*_kn``) or m/s (``*_mps``); positions WGS84 degrees.

The batch update (:func:`step_tracks`) gathers the fixes into arrays, sorts them by
(MMSI, arrival order), and computes everything per MMSI group with segmented NumPy
operations (running maxima, shifts, ``bincount`` / ``reduceat``), no per-fix Python loop:

- **order**: a fix is *accepted* when its time is later than every earlier fix of the
  MMSI (previous state included); an equal time is a ``duplicate`` (same position) or a
  ``same_time_conflict`` (another position: two transmitters sharing an MMSI, or spoofing);
  an earlier time is ``out_of_order``. Rejected fixes are counted, never applied;
- **implied speed** between consecutive accepted fixes, over-ground distance minus a
  position tolerance (AIS GNSS error) over the time difference: the ``impossible_speed``
  evidence (GFW's segmenter splits tracks above 25 kn; small fast craft reach 40–50 kn,
  DESIGN.md §3);
- **smoothed velocity** (east/north m/s): an alpha filter over the per-fix velocity, taken
  from SOG/COG when the fix has both, else from the implied velocity. The filter is a
  linear recurrence, so the final value is a weighted ``bincount`` (weights
  ``alpha (1 - alpha)^(n - k)``): exact and identical however the stream is batched. A new
  track starts from the velocity of its first fix (else from rest);
- **gaps**: time between consecutive accepted fixes (last, max);
- **stop and slow runs**: the start time of the current run of fixes below the stop speed
  (MarineTraffic "stopped" < 0.5 kn) and below the loitering speed (GFW mean < 2 kn);
- **expected report interval** for the class and speed (:func:`expected_interval_s`,
  ITU-R M.1371).

Every output is a function of the accepted fix sequence only, so splitting a stream into
batches differently gives the same final state (tested with Hypothesis).

MMSI classes follow ITU-R M.585 (:func:`classify_mmsi`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from pipeline.core.geo import bearing_deg, haversine_m

__all__ = [
    "KNOT_MPS",
    "MMSI_KINDS",
    "FixArrays",
    "TrackArrays",
    "TrackStepArrays",
    "classify_mmsi",
    "expected_interval_s",
    "mid_is_valid",
    "step_tracks",
]

#: One knot in m/s (1852 m per hour).
KNOT_MPS = 1852.0 / 3600.0

#: ITU-R M.585 classes, in the order of the integer codes :func:`classify_mmsi` returns.
MMSI_KINDS = (
    "ship",
    "coast_station",
    "group_of_ships",
    "sar_aircraft",
    "craft_associated",
    "aton",
    "sart",
    "mob",
    "epirb",
    "invalid",
)
_K = {k: i for i, k in enumerate(MMSI_KINDS)}

#: Maritime Identification Digits are allocated by the ITU in 201–775 (ITU-R M.585 and the
#: ITU MID table: 2xx Europe, 3xx North/Central America, 4xx Asia, 5xx Oceania/SE Asia,
#: 6xx Africa, 7xx South America). Chinese MIDs: 412, 413, 414.
MID_MIN, MID_MAX = 201, 775

# reasons a fix is not applied
REJECT_REASONS = ("no_position", "out_of_order", "duplicate", "same_time_conflict")
_ACCEPT = -1


def mid_is_valid(mid) -> np.ndarray:
    """Whether MIDs fall in the ITU-allocated range 201–775 (ITU-R M.585), bool."""
    mid = np.asarray(mid, dtype=np.int64)
    return (mid >= MID_MIN) & (mid <= MID_MAX)


def classify_mmsi(mmsi) -> tuple[np.ndarray, np.ndarray]:
    """ITU-R M.585 class and MID of each MMSI, vectorised.

    ===============  ==================  ==============
    9-digit form     class               MID digits
    ===============  ==================  ==============
    ``MIDxxxxxx``    ship (first 2–7)    1–3
    ``00MIDxxxx``    coast station       3–5
    ``0MIDxxxxx``    group of ships      2–4
    ``111MIDxxx``    SAR aircraft        4–6
    ``98MIDxxxx``    craft associated    3–5
    ``99MIDxxxx``    aid to navigation   3–5
    ``970xxyyyy``    AIS-SART            —
    ``972xxyyyy``    man overboard       —
    ``974xxyyyy``    EPIRB-AIS           —
    ===============  ==================  ==============

    Anything else, a MID outside 201–775, or a number outside 0–999,999,999 is
    ``invalid`` (this includes ``8MIDxxxxx`` handheld VHF numbers, which never send AIS
    position reports).

    :param mmsi: (N,) integers
    :returns: ``(kind_code, mid)``: int8 index into :data:`MMSI_KINDS`, and int64 MID
        (-1 when the class has none or the number is invalid)

    >>> k, m = classify_mmsi([412123456, 4122345, 111413123, 970123456, 99412345, 123456789])
    >>> [MMSI_KINDS[i] for i in k], m.tolist()
    (['ship', 'coast_station', 'sar_aircraft', 'sart', 'invalid', 'invalid'], [412, 412, 413, -1, -1, -1])
    """
    v = np.atleast_1d(np.asarray(mmsi, dtype=np.int64))
    kind = np.full(v.shape, _K["invalid"], dtype=np.int8)
    mid = np.full(v.shape, -1, dtype=np.int64)

    def put(mask, k, m):
        nonlocal kind, mid
        kind = np.where(mask, _K[k], kind).astype(np.int8)
        mid = np.where(mask, m, mid)

    put((v >= 0) & (v < 10_000_000), "coast_station", v // 10_000)
    put((v >= 10_000_000) & (v < 100_000_000), "group_of_ships", v // 100_000)
    put((v >= 111_000_000) & (v < 112_000_000), "sar_aircraft", (v // 1000) % 1000)
    put((v >= 200_000_000) & (v < 800_000_000), "ship", v // 1_000_000)
    put((v >= 980_000_000) & (v < 990_000_000), "craft_associated", (v // 10_000) % 1000)
    put((v >= 990_000_000) & (v < 1_000_000_000), "aton", (v // 10_000) % 1000)
    has_mid = kind != _K["invalid"]
    bad = has_mid & ~mid_is_valid(mid)
    kind = np.where(bad, _K["invalid"], kind).astype(np.int8)
    mid = np.where(bad | ~has_mid, -1, mid)
    for prefix, k in ((970, "sart"), (972, "mob"), (974, "epirb")):
        m = (v // 1_000_000) == prefix
        kind = np.where(m, _K[k], kind).astype(np.int8)
        mid = np.where(m, -1, mid)
    return kind, mid


def expected_interval_s(ais_class, sog_kn, nav_status) -> np.ndarray:
    """Nominal reporting interval of position reports (ITU-R M.1371-5, Annex 1 Tables 1, 2).

    - Class A: at anchor or moored (navigational status 1 or 5) and not faster than 3 kn:
      180 s; 0–14 kn: 10 s; 14–23 kn: 6 s; above 23 kn: 2 s (the shorter intervals used
      while changing course are not modelled; an unknown SOG counts as 0–14 kn);
    - Class B "CS": above 2 kn 30 s, otherwise 180 s (unknown SOG: 30 s);
    - other (long-range type 27): 180 s.

    :param ais_class: (N,) ``"A"``, ``"B"`` or ``"other"``
    :param sog_kn: (N,) speed over ground, knots, NaN = unknown
    :param nav_status: (N,) navigational status, -1 = unknown
    :returns: (N,) interval in seconds
    """
    c = np.atleast_1d(np.asarray(ais_class, dtype=object)).astype(str)
    sog = np.atleast_1d(np.asarray(sog_kn, dtype=np.float64))
    ns = np.atleast_1d(np.asarray(nav_status, dtype=np.int64))
    s = np.nan_to_num(sog, nan=0.0)
    a = np.where(
        np.isin(ns, (1, 5)) & (s <= 3.0), 180.0,
        np.where(s > 23.0, 2.0, np.where(s > 14.0, 6.0, 10.0)),
    )  # fmt: skip
    b = np.where(np.isnan(sog) | (sog > 2.0), 30.0, 180.0)
    return np.where(c == "A", a, np.where(c == "B", b, 180.0))


def ais_class_of(msg_type) -> np.ndarray:
    """``"A"`` for types 1–3, ``"B"`` for 18–19, ``"other"`` otherwise (27)."""
    t = np.atleast_1d(np.asarray(msg_type, dtype=np.int64))
    return np.where(np.isin(t, (1, 2, 3)), "A", np.where(np.isin(t, (18, 19)), "B", "other"))


@dataclass(frozen=True)
class FixArrays:
    """A batch of position fixes in arrival order (N,). NaN = not available.

    :param mmsi: int64
    :param t_ms: int64 event time, ms UTC
    :param lon_deg: float, degrees
    :param lat_deg: float, degrees
    :param sog_kn: float, knots
    :param cog_deg: float, degrees true
    """

    mmsi: np.ndarray
    t_ms: np.ndarray
    lon_deg: np.ndarray
    lat_deg: np.ndarray
    sog_kn: np.ndarray
    cog_deg: np.ndarray

    def __len__(self) -> int:
        return int(self.mmsi.shape[0])


@dataclass(frozen=True)
class TrackArrays:
    """Kinematic state of tracks, one row per MMSI. ``-1`` in a time = none; NaN = unknown.

    :param t_ms: time of the last accepted fix, ms UTC (-1: no track yet)
    :param first_t_ms: time of the first accepted fix, ms UTC
    :param vel_east_mps: smoothed eastward velocity, m/s
    :param vel_north_mps: smoothed northward velocity, m/s
    :param last_gap_s: gap between the last two fixes, s (NaN: one fix only)
    :param max_gap_s: longest gap, s
    :param stopped_since_t_ms: start of the current run of fixes below the stop speed (-1: moving)
    :param slow_since_t_ms: start of the current run of fixes below the slow speed (-1: faster)
    :param implied_speed_kn: implied speed of the last step, knots (NaN: none)
    """

    mmsi: np.ndarray
    t_ms: np.ndarray
    first_t_ms: np.ndarray
    lon_deg: np.ndarray
    lat_deg: np.ndarray
    sog_kn: np.ndarray
    cog_deg: np.ndarray
    vel_east_mps: np.ndarray
    vel_north_mps: np.ndarray
    n_fixes: np.ndarray
    last_gap_s: np.ndarray
    max_gap_s: np.ndarray
    stopped_since_t_ms: np.ndarray
    slow_since_t_ms: np.ndarray
    implied_speed_kn: np.ndarray

    @classmethod
    def empty_for(cls, mmsi: np.ndarray) -> TrackArrays:
        n = mmsi.shape[0]
        i = lambda v: np.full(n, v, dtype=np.int64)  # noqa: E731
        f = lambda v: np.full(n, v, dtype=np.float64)  # noqa: E731
        return cls(
            mmsi=np.asarray(mmsi, dtype=np.int64), t_ms=i(-1), first_t_ms=i(-1),
            lon_deg=f(np.nan), lat_deg=f(np.nan), sog_kn=f(np.nan), cog_deg=f(np.nan),
            vel_east_mps=f(0.0), vel_north_mps=f(0.0), n_fixes=i(0), last_gap_s=f(np.nan),
            max_gap_s=f(0.0), stopped_since_t_ms=i(-1), slow_since_t_ms=i(-1),
            implied_speed_kn=f(np.nan),
        )  # fmt: skip

    def take(self, idx) -> TrackArrays:
        return TrackArrays(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


@dataclass(frozen=True)
class TrackStepArrays:
    """Result of :func:`step_tracks`.

    :param tracks: new state of each MMSI with at least one accepted fix (sorted by MMSI)
    :param outcome: (N,) per input fix: -1 accepted, else an index into ``REJECT_REASONS``
    :param implied_speed_kn: (N,) implied speed from the previous accepted fix, knots (NaN
        for rejected fixes and first fixes)
    :param jump_t_ms: per row of ``tracks``: time of the first fix in this batch whose
        implied speed exceeds the limit (-1: none)
    :param jump_speed_kn: per row of ``tracks``: that implied speed, knots (NaN: none)
    """

    tracks: TrackArrays
    outcome: np.ndarray
    implied_speed_kn: np.ndarray
    jump_t_ms: np.ndarray
    jump_speed_kn: np.ndarray


def _group_starts(keys_sorted: np.ndarray) -> np.ndarray:
    """Start index of each run of equal keys in a sorted array."""
    if keys_sorted.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate([[True], keys_sorted[1:] != keys_sorted[:-1]]))


def _run_start(
    flag: np.ndarray, t: np.ndarray, grp: np.ndarray, ngroups: int, prev_since: np.ndarray
) -> np.ndarray:
    """Start time of the trailing run of ``flag`` per group (-1 when the last fix is not
    flagged). Inputs sorted by group then order; ``prev_since`` per group."""
    n = flag.size
    idx = np.arange(n)
    last_false = np.full(ngroups, -1, dtype=np.int64)
    np.maximum.at(last_false, grp[~flag], idx[~flag])
    last_idx = np.full(ngroups, -1, dtype=np.int64)
    np.maximum.at(last_idx, grp, idx)
    first_idx = np.full(ngroups, n, dtype=np.int64)
    np.minimum.at(first_idx, grp, idx)
    out = np.full(ngroups, -1, dtype=np.int64)
    has = last_idx >= 0
    last_flag = np.zeros(ngroups, dtype=bool)
    last_flag[has] = flag[last_idx[has]]
    # whole group flagged: continue the previous run if there was one
    all_flag = has & last_flag & (last_false < first_idx)
    some = has & last_flag & ~all_flag
    out[some] = t[last_false[some] + 1]
    out[all_flag] = np.where(
        prev_since[all_flag] >= 0, prev_since[all_flag], t[first_idx[all_flag]]
    )
    none = ~has
    out[none] = prev_since[none]
    return out


def _align_previous(prev: TrackArrays, umm: np.ndarray) -> TrackArrays:
    """The previous state of each MMSI of ``umm`` (sorted, unique), rows in that order;
    MMSIs without a previous track get empty rows (:meth:`TrackArrays.empty_for`)."""
    p_order = np.argsort(prev.mmsi, kind="stable")
    p_sorted = prev.mmsi[p_order]
    pos = np.searchsorted(p_sorted, umm)
    base = TrackArrays.empty_for(umm)
    if p_sorted.size:
        posc = np.minimum(pos, p_sorted.size - 1)
        found = p_sorted[posc] == umm
        src = prev.take(p_order[posc[found]])
        for f in fields(base):
            getattr(base, f.name)[found] = getattr(src, f.name)
    return base


def _prior_max_t_ms(
    g: np.ndarray, t: np.ndarray, starts: np.ndarray, base_t_ms: np.ndarray
) -> np.ndarray:
    """Exclusive running maximum of the time ``t`` (ms) within each group ``g`` (sorted,
    groups starting at ``starts``), the previous state's time ``base_t_ms`` included."""
    m = t.size
    if not m:
        return np.zeros(0, dtype=np.int64)
    big = np.int64(1) << 42  # > any ms time until year 2109
    off = g.astype(np.int64) * big
    cm = np.maximum.accumulate(t + off) - off
    prior = np.empty(m, dtype=np.int64)
    prior[1:] = cm[:-1]
    prior[starts] = -1
    return np.maximum(prior, base_t_ms[g])


def _previous_accepted(g: np.ndarray, acc: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Index of the last accepted fix before each fix within its group (sorted ``g``,
    groups starting at ``starts``); -1 where there is none in the batch."""
    m = acc.size
    if not m:
        return np.zeros(0, dtype=np.int64)
    a_idx = np.where(acc, np.arange(m), -1)
    off2 = g.astype(np.int64) * (m + 1)
    last_acc = np.maximum.accumulate(np.where(acc, a_idx + off2 + 1, off2)) - off2 - 1
    prev_acc = np.empty(m, dtype=np.int64)
    prev_acc[1:] = last_acc[:-1]
    prev_acc[starts] = -1
    # reset where the previous element belonged to another group
    return np.where((prev_acc >= 0) & (g[np.maximum(prev_acc, 0)] == g), prev_acc, -1)


@dataclass(frozen=True)
class _Ordered:
    """The fixes with a position, sorted by (MMSI group, arrival), each with its outcome
    and the last accepted position and time before it (batch or previous state)."""

    order: np.ndarray  # index into the batch
    g: np.ndarray  # group: index into the unique MMSIs
    t: np.ndarray  # ms, int64
    lon: np.ndarray
    lat: np.ndarray
    acc: np.ndarray  # accepted
    rc: np.ndarray  # outcome code (int8)
    plon: np.ndarray
    plat: np.ndarray
    pt: np.ndarray  # ms; -1 where the MMSI has no earlier accepted fix


def _order_fixes(
    fixes: FixArrays, pos_ok: np.ndarray, grp_all: np.ndarray, base: TrackArrays
) -> _Ordered:
    """Sort the fixes with a position by (MMSI, arrival) and classify them: accepted,
    ``duplicate``, ``same_time_conflict`` or ``out_of_order`` (see the module)."""
    sel = np.flatnonzero(pos_ok)
    order = sel[np.lexsort((sel, grp_all[sel]))]
    g = grp_all[order]
    t = fixes.t_ms[order].astype(np.int64)
    lon, lat = fixes.lon_deg[order], fixes.lat_deg[order]
    m = order.size
    starts = _group_starts(g)
    prior = _prior_max_t_ms(g, t, starts, base.t_ms)
    acc = t > prior
    same = t == prior
    # position of the fix holding the prior max time, to tell duplicates from conflicts:
    # compare to the last accepted position before this fix (in the group or the state)
    prev_acc = _previous_accepted(g, acc, starts)
    plon = np.where(prev_acc >= 0, lon[np.maximum(prev_acc, 0)] if m else 0.0, base.lon_deg[g])
    plat = np.where(prev_acc >= 0, lat[np.maximum(prev_acc, 0)] if m else 0.0, base.lat_deg[g])
    pt = np.where(prev_acc >= 0, t[np.maximum(prev_acc, 0)] if m else 0, base.t_ms[g])
    same_pos = same & (np.abs(lon - plon) < 1e-7) & (np.abs(lat - plat) < 1e-7)
    rc = np.where(
        acc, _ACCEPT,
        np.where(same_pos, REJECT_REASONS.index("duplicate"),
                 np.where(same, REJECT_REASONS.index("same_time_conflict"),
                          REJECT_REASONS.index("out_of_order"))),
    ).astype(np.int8)  # fmt: skip
    return _Ordered(order, g, t, lon, lat, acc, rc, plon, plat, pt)


@dataclass(frozen=True)
class _Accepted:
    """The accepted fixes, in (MMSI group, arrival) order, and their motion."""

    ai: np.ndarray  # index into the ordered fixes
    ga: np.ndarray  # group
    ta: np.ndarray  # ms
    lona: np.ndarray
    lata: np.ndarray
    sog: np.ndarray  # kn
    cog: np.ndarray  # deg
    has_prev: np.ndarray  # an earlier accepted fix exists
    dt_s: np.ndarray  # since the earlier accepted fix, s
    implied_kn: np.ndarray  # implied speed, kn
    use_imp: np.ndarray  # the implied velocity is defined (dt >= min_implied_dt_s)
    ve: np.ndarray  # velocity east of the fix, m/s (NaN where none)
    vn: np.ndarray  # velocity north, m/s
    have_v: np.ndarray  # the fix has a velocity


def _accepted_motion(
    fixes: FixArrays, o: _Ordered, *, position_tolerance_m: float, min_implied_dt_s: float
) -> _Accepted:
    """Gap, implied speed and velocity of each accepted fix (see :func:`step_tracks`)."""
    ai = np.flatnonzero(o.acc)
    ga, ta = o.g[ai], o.t[ai]
    lona, lata = o.lon[ai], o.lat[ai]
    sog = fixes.sog_kn[o.order][ai]
    cog = fixes.cog_deg[o.order][ai]
    pt, plon, plat = o.pt[ai], o.plon[ai], o.plat[ai]
    has_prev = pt >= 0
    dt_s = np.where(has_prev, (ta - pt) / 1000.0, np.nan)
    dist = np.where(has_prev, haversine_m(plon, plat, lona, lata), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        implied_mps = np.maximum(0.0, dist - position_tolerance_m) / dt_s
        raw_mps = dist / dt_s
    implied_kn = implied_mps / KNOT_MPS
    # implied velocity direction from the raw displacement
    brg = np.radians(np.where(has_prev, bearing_deg(plon, plat, lona, lata), 0.0))
    use_imp = has_prev & (dt_s >= min_implied_dt_s)
    ve_imp = np.where(use_imp, raw_mps * np.sin(brg), np.nan)
    vn_imp = np.where(use_imp, raw_mps * np.cos(brg), np.nan)
    has_sc = np.isfinite(sog) & np.isfinite(cog)
    ve = np.where(has_sc, sog * KNOT_MPS * np.sin(np.radians(np.nan_to_num(cog))), ve_imp)
    vn = np.where(has_sc, sog * KNOT_MPS * np.cos(np.radians(np.nan_to_num(cog))), vn_imp)
    have_v = np.isfinite(ve) & np.isfinite(vn)
    return _Accepted(
        ai, ga, ta, lona, lata, sog, cog, has_prev, dt_s, implied_kn, use_imp, ve, vn, have_v
    )


def _filtered_velocity(
    a: _Accepted, base: TrackArrays, g_n: int, velocity_alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Alpha-filtered velocity (east, north; m/s) of each of the ``g_n`` groups after its
    accepted fixes: ``v_n = (1-a)^n v_0 + sum_k a (1-a)^(n-k) x_k`` over the fixes with a
    velocity, as one weighted ``bincount``."""
    ga, have_v, ve, vn = a.ga, a.have_v, a.ve, a.vn
    n_a = a.ai.size
    gv = ga[have_v]
    cnt = np.bincount(gv, minlength=g_n)
    rank = np.arange(gv.size) - np.repeat(np.cumsum(cnt) - cnt, cnt)  # 0-based within group
    expo = cnt[gv] - 1 - rank
    w = velocity_alpha * (1.0 - velocity_alpha) ** expo
    decay = (1.0 - velocity_alpha) ** cnt
    init_e, init_n = base.vel_east_mps.copy(), base.vel_north_mps.copy()
    # a new track whose first fix has a velocity starts from it (stream property: the first
    # fix is always in the batch that creates the track, so this stays batch-invariant)
    if n_a:
        f_first = np.full(g_n, n_a, dtype=np.int64)
        np.minimum.at(f_first, ga, np.arange(n_a))
        newg = (base.n_fixes == 0) & (f_first < n_a)
        fi = np.minimum(f_first, n_a - 1)
        newg &= have_v[fi]
        init_e[newg] = ve[fi[newg]]
        init_n[newg] = vn[fi[newg]]
    vel_e = decay * init_e + np.bincount(gv, weights=w * ve[have_v], minlength=g_n)
    vel_n = decay * init_n + np.bincount(gv, weights=w * vn[have_v], minlength=g_n)
    return vel_e, vel_n


def _updated_tracks(
    umm: np.ndarray,
    base: TrackArrays,
    a: _Accepted,
    vel: tuple[np.ndarray, np.ndarray],
    *,
    stop_speed_kn: float,
    slow_speed_kn: float,
) -> tuple[TrackArrays, np.ndarray]:
    """The state of every group of ``umm`` after its accepted fixes, and which groups
    got at least one (the others keep ``base``)."""
    ga, ta, dt_s, has_prev = a.ga, a.ta, a.dt_s, a.has_prev
    g_n = umm.size
    n_a = a.ai.size
    vel_e, vel_n = vel
    # last accepted fix per group
    idx_a = np.arange(n_a)
    last = np.full(g_n, -1, dtype=np.int64)
    np.maximum.at(last, ga, idx_a)
    first = np.full(g_n, n_a, dtype=np.int64)
    np.minimum.at(first, ga, idx_a)
    got = last >= 0
    L = np.maximum(last, 0)
    n_acc = np.bincount(ga, minlength=g_n)
    gap_max = np.zeros(g_n)
    np.maximum.at(gap_max, ga[has_prev], dt_s[has_prev])

    speed_for_stop = np.where(np.isfinite(a.sog), a.sog, np.where(a.use_imp, a.implied_kn, np.nan))
    stopped = np.nan_to_num(speed_for_stop, nan=np.inf) < stop_speed_kn
    slow = np.nan_to_num(speed_for_stop, nan=np.inf) < slow_speed_kn
    stop_since = _run_start(stopped, ta, ga, g_n, base.stopped_since_t_ms)
    slow_since = _run_start(slow, ta, ga, g_n, base.slow_since_t_ms)

    def pick(arr_a, old):
        return np.where(got, arr_a[L] if n_a else old, old)

    new = TrackArrays(
        mmsi=umm,
        t_ms=pick(ta, base.t_ms).astype(np.int64),
        first_t_ms=np.where(base.first_t_ms >= 0, base.first_t_ms,
                            np.where(got, ta[np.minimum(first, max(n_a - 1, 0))] if n_a else -1, -1)).astype(np.int64),
        lon_deg=pick(a.lona, base.lon_deg),
        lat_deg=pick(a.lata, base.lat_deg),
        sog_kn=pick(a.sog, base.sog_kn),
        cog_deg=pick(a.cog, base.cog_deg),
        vel_east_mps=np.where(got, vel_e, base.vel_east_mps),
        vel_north_mps=np.where(got, vel_n, base.vel_north_mps),
        n_fixes=base.n_fixes + n_acc,
        last_gap_s=pick(dt_s, base.last_gap_s),
        max_gap_s=np.fmax(base.max_gap_s, gap_max),
        stopped_since_t_ms=stop_since.astype(np.int64),
        slow_since_t_ms=slow_since.astype(np.int64),
        implied_speed_kn=pick(a.implied_kn, base.implied_speed_kn),
    )  # fmt: skip
    return new, got


def _first_jumps(
    a: _Accepted, g_n: int, max_implied_speed_kn: float
) -> tuple[np.ndarray, np.ndarray]:
    """Time (ms, -1 where none) and implied speed (kn, NaN where none) of the first
    accepted fix of each group whose implied speed exceeds ``max_implied_speed_kn``."""
    ga, ta, implied_kn = a.ga, a.ta, a.implied_kn
    n_a = a.ai.size
    idx_a = np.arange(n_a)
    jump = np.isfinite(implied_kn) & (implied_kn > max_implied_speed_kn)
    jfirst = np.full(g_n, n_a, dtype=np.int64)
    np.minimum.at(jfirst, ga[jump], idx_a[jump])
    has_jump = jfirst < n_a
    jump_t = np.where(has_jump, ta[np.minimum(jfirst, max(n_a - 1, 0))] if n_a else -1, -1)
    jump_kn = np.where(
        has_jump, implied_kn[np.minimum(jfirst, max(n_a - 1, 0))] if n_a else np.nan, np.nan
    )
    return jump_t, jump_kn


def step_tracks(
    prev: TrackArrays,
    fixes: FixArrays,
    *,
    max_implied_speed_kn: float = 50.0,
    position_tolerance_m: float = 100.0,
    min_implied_dt_s: float = 1.0,
    velocity_alpha: float = 0.5,
    stop_speed_kn: float = 0.5,
    slow_speed_kn: float = 2.0,
) -> TrackStepArrays:
    """Apply a batch of fixes (in arrival order) to the tracks of their MMSIs.

    :param prev: previous state of every MMSI in ``fixes`` (rows in any order; MMSIs
        without a track have ``t_ms == -1``, see :meth:`TrackArrays.empty_for`)
    :param fixes: the fixes, arrival order
    :param max_implied_speed_kn: implied speed above which a step is a jump, knots
        (default 50 kn: small fast craft reach 40–50 kn; GFW splits at 25 kn, DESIGN.md §3)
    :param position_tolerance_m: distance subtracted before computing the implied speed,
        m (AIS Class B GNSS and antenna offsets reach tens of metres; 100 m keeps reports a
        second apart from looking like jumps)
    :param min_implied_dt_s: steps shorter than this give no implied velocity, s
    :param velocity_alpha: gain of the velocity alpha filter per fix, 0–1
    :param stop_speed_kn: below this a fix is "stopped", knots (MarineTraffic < 0.5 kn)
    :param slow_speed_kn: below this a fix is "slow", knots (GFW loitering mean < 2 kn)
    :returns: see :class:`TrackStepArrays`
    """
    n = len(fixes)
    outcome = np.full(n, _ACCEPT, dtype=np.int8)
    implied_out = np.full(n, np.nan)
    pos_ok = np.isfinite(fixes.lon_deg) & np.isfinite(fixes.lat_deg)
    outcome[~pos_ok] = REJECT_REASONS.index("no_position")

    # previous state aligned to the unique MMSIs of the batch
    umm, grp_all = np.unique(fixes.mmsi, return_inverse=True)
    g_n = umm.size
    base = _align_previous(prev, umm)

    # order: by MMSI, then arrival
    o = _order_fixes(fixes, pos_ok, grp_all, base)
    outcome[o.order] = o.rc

    # ---- accepted fixes only from here
    a = _accepted_motion(
        fixes, o, position_tolerance_m=position_tolerance_m, min_implied_dt_s=min_implied_dt_s
    )
    implied_out[o.order[a.ai]] = a.implied_kn
    vel = _filtered_velocity(a, base, g_n, velocity_alpha)
    new, got = _updated_tracks(
        umm, base, a, vel, stop_speed_kn=stop_speed_kn, slow_speed_kn=slow_speed_kn
    )
    jump_t, jump_kn = _first_jumps(a, g_n, max_implied_speed_kn)
    grp_has = np.bincount(a.ga, minlength=g_n) > 0
    keep = got & grp_has
    return TrackStepArrays(
        tracks=new.take(keep),
        outcome=outcome,
        implied_speed_kn=implied_out,
        jump_t_ms=jump_t[keep].astype(np.int64),
        jump_speed_kn=jump_kn[keep],
    )
