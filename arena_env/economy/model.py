"""The economy model around the kernels: population initialisation and the daily tables.

The per-user loop lives in :func:`arena_env.economy.population.step_population` (columns of the
tables in :mod:`arena_env.economy.layout`).  Everything that
depends only on the variant's config and the user's segment (incentive curves, expected XP,
Poisson means) is computed here once per day into small tables, so the kernel does no
transcendental work that is the same for many users.  Both backends use these functions, so the
twin comparison is about the kernels alone.  The equations are in ``docs/model.md``.
"""

from __future__ import annotations

import math

import numpy as np

from arena_env._numba import jit
from arena_env.rng import uniform_np

from . import layout as L
from .params import DEFAULTS
from .scenario import Scenario

# incentive curves are normalised at the protocol's defaults: (x + 1) / (default + 1)
_REF = {k: DEFAULTS[k] + 1.0 for k in DEFAULTS}

# streams of the initial draws (days far past any experiment day)
_INIT_DAY = 1 << 40
_I_SEGMENT, _I_VARIANT, _I_ENROLL, _I_DAY, _I_TRAIT1, _I_TRAIT2, _I_FB1, _I_FB2 = range(8)

USER_DTYPE = L.USER_DTYPE  # packed: 48 bytes per user

CHUNK_USERS = 4096
"""Target users per chunk; the chunking is fixed by the scenario, never by the thread count."""


def sites_per_chunk(site_size: int) -> int:
    return max(1, CHUNK_USERS // site_size)


def chunk_count(n_users: int, site_size: int) -> int:
    n_sites = -(-n_users // site_size)
    spc = sites_per_chunk(site_size)
    return -(-n_sites // spc)


def _normal(seed: int, users: np.ndarray, s1: int, s2: int) -> np.ndarray:
    """Box-Muller standard normals from two counter-based uniforms."""
    u1 = 1.0 - uniform_np(seed, _INIT_DAY, users, s1)  # (0, 1]
    u2 = uniform_np(seed, _INIT_DAY, users, s2)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def init_population(sc: Scenario, seed: int) -> np.ndarray:
    """Draw the population of a scenario: variants, segments, arrival days and traits.

    Returns the user state as one record array of :data:`layout.USER_FIELDS` (a packed 48-byte
    record per user), which is what the kernels are given; ``state[field]`` is a field's (strided)
    view.  One record per user keeps a user's state on one cache line, so two threads scale
    better than with one array per field.  With equal allocation (``allocation: null``) users are
    randomised in matched blocks of ``n_variants`` consecutive users who share segment, arrival day
    and traits, one per variant; with allocation weights each user is drawn independently.
    """
    n = sc.n_users
    users = np.arange(n, dtype=np.int64)
    state = np.zeros(n, dtype=USER_DTYPE)
    V = sc.n_variants
    if sc.allocation is None:
        # matched blocks: the users b*V .. b*V + V-1 share segment, arrival day and traits (all drawn
        # for the block), and get the V variants in a random order, so every treatment user has a twin
        # in the control and in each other treatment (blocked randomisation)
        draw = users // V
        n_blocks = -(-n // V)
        u_var = uniform_np(seed, _INIT_DAY, np.arange(n_blocks * V, dtype=np.int64), _I_VARIANT)
        var = np.argsort(np.argsort(u_var.reshape(n_blocks, V), axis=1, kind="stable"), axis=1).ravel()[:n]
    else:
        draw = users
        alloc = np.asarray(sc.allocation, dtype=np.float64)
        var = np.searchsorted(np.cumsum(alloc / alloc.sum()), uniform_np(seed, _INIT_DAY, users, _I_VARIANT),
                              side="right")
        var = np.minimum(var, V - 1)

    w = np.array([s.weight for s in sc.segments], dtype=np.float64)
    seg = np.searchsorted(np.cumsum(w / w.sum()), uniform_np(seed, _INIT_DAY, draw, _I_SEGMENT), side="right")
    seg = np.minimum(seg, len(w) - 1)

    enroll = np.zeros(n, dtype=np.int64)
    u_init = uniform_np(seed, _INIT_DAY, draw, _I_ENROLL)
    u_day = uniform_np(seed, _INIT_DAY, draw, _I_DAY)
    for g, s in enumerate(sc.segments):
        m = seg == g
        lo = s.recruit_from
        hi = s.recruit_until if s.recruit_until is not None else max(lo, sc.recruitment.days)
        if lo == 0:
            first = u_init < sc.recruitment.initial_fraction
            span_lo = 1 if hi >= 1 else 0
        else:
            first = np.zeros(n, dtype=bool)
            span_lo = lo
        days = span_lo + np.floor(u_day * (hi - span_lo + 1)).astype(np.int64)
        enroll[m] = np.where(first[m], 0, np.minimum(days[m], hi))
    state["variant"][:] = var
    state["segment"][:] = seg
    state["enroll_day"][:] = np.minimum(enroll, 32000)
    state["last_active"][:] = state["enroll_day"] - 1
    base_sd = np.array([s.trait_sd for s in sc.segments])
    fb_mu = np.array([s.feedback_logit for s in sc.segments])
    fb_sd = np.array([s.feedback_sd for s in sc.segments])
    state["trait"][:] = base_sd[seg] * _normal(seed, draw, _I_TRAIT1, _I_TRAIT2)
    state["fb_trait"][:] = fb_mu[seg] + fb_sd[seg] * _normal(seed, draw, _I_FB1, _I_FB2)
    state["sat"][:] = 0.5
    state["ref_xp"][:] = -1.0  # set to the anticipated reward on the day of enrolment
    return state


def segment_table(sc: Scenario) -> np.ndarray:
    """Per-segment constants, (G, N_SG), columns ``SG_*`` of :mod:`layout`."""
    t = np.zeros((len(sc.segments), L.N_SG))
    for g, s in enumerate(sc.segments):
        t[g, L.SG_BASE] = s.base_logit
        t[g, L.SG_BETA_XP] = s.beta_xp
        t[g, L.SG_BETA_REF] = s.beta_ref
        t[g, L.SG_LOSS_AVERSION] = s.loss_aversion
        t[g, L.SG_BETA_STREAK] = s.beta_streak
        t[g, L.SG_BETA_SAT] = s.beta_sat
        t[g, L.SG_RHO_REF] = s.ref_rate
        t[g, L.SG_CHURN_BASE] = s.churn_logit
        t[g, L.SG_CHURN_IDLE] = s.churn_idle
        t[g, L.SG_CHURN_STREAK] = s.churn_streak
        t[g, L.SG_CHURN_SAT] = s.churn_sat
        t[g, L.SG_SAT_BASE] = s.sat_base
        t[g, L.SG_SAT_REF] = s.sat_ref
        t[g, L.SG_SAT_RANK] = s.sat_rank
        t[g, L.SG_SAT_XP] = s.sat_xp
        t[g, L.SG_BETA_SB] = s.beta_streak_bonus
        t[g, L.SG_USEFUL_SCANS] = s.useful_scans
        t[g, L.SG_USEFUL_FB] = s.useful_feedback
    return t


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


# the segment constants of the incentive responses: columns of the table _segment_incentives builds
_IN_SCANS, _IN_SCAN_EL, _IN_FB_EL, _IN_SUBST, _IN_FB_LOGIT, _IN_PHOTO_LOGIT, _IN_PHOTO_EL, _IN_ISSUE, \
    _IN_REPORT_EL, _IN_STATUS = range(10)
_R_SCAN, _R_FB, _R_ISSUE, _R_STATUS, _R_PHOTO = (_REF["scanXp"], _REF["feedbackXp"], _REF["issueReportXp"],
                                               _REF["statusReportXp"], _REF["photoXp"])
_R_SCAN_FB = _R_SCAN / _R_FB


def segment_incentives(sc: Scenario) -> np.ndarray:
    """The constants of each segment's incentive responses, (G, 10), columns ``_IN_*``: the input of
    :func:`variant_segment_table` that does not change during an episode."""
    return np.array([[s.scans_per_day, s.scan_elasticity, s.feedback_elasticity, s.substitution, s.feedback_logit,
                      _logit(s.photo_prob), s.photo_elasticity, s.issue_rate, s.report_elasticity, s.status_rate]
                     for s in sc.segments], dtype=np.float64).reshape(len(sc.segments), 10)


@jit
def poisson_table(lam, expneg, row, o):
    """Write the draw table of ``Poisson(lam)`` into ``row[o:o + POIS_W]`` (layout in
    :mod:`~arena_env.economy.layout`, ``VS_POIS``): the partial sums of the inverse-transform recurrence
    ``p *= lam / k; f += p`` from ``f = p = expneg``, exactly as a draw would compute them, until they
    stop changing (once ``k > lam`` every later term is smaller, so an unchanged sum stays unchanged) or
    reach ``POIS_K``; then the guide.  ``lam <= 0`` gives a table that always draws 0."""
    c = o + 1 + L.POIS_M
    if lam <= 0.0:
        row[c] = 1.0
        n = 1
    else:
        p = expneg
        f = p
        row[c] = f
        n = 1
        while n < L.POIS_K:
            p *= lam / n
            nf = f + p
            if nf == f and n > lam:
                break
            f = nf
            row[c + n] = f
            n += 1
    row[o] = n
    k = 0
    for i in range(L.POIS_M):
        t = i / L.POIS_M
        while k < n and row[c + k] < t:
            k += 1
        row[o + 1 + i] = k


@jit
def _variant_segment_rows(cfg, seg, t):
    for v in range(cfg.shape[0]):
        scan_xp, fb_xp, issue_xp = cfg[v, L.P_SCAN], cfg[v, L.P_FEEDBACK], cfg[v, L.P_ISSUE]
        status_xp, photo_xp, first_xp = cfg[v, L.P_STATUS], cfg[v, L.P_PHOTO], cfg[v, L.P_FIRST]
        for g in range(seg.shape[0]):
            s = seg[g]
            lam = s[_IN_SCANS] * ((scan_xp + 1.0) / _R_SCAN) ** s[_IN_SCAN_EL]
            scan_lam = max(lam - 1.0, 0.0)
            s_exp = min(lam, cfg[v, L.P_SCAN_CAP])
            fb_shift = (s[_IN_FB_EL] * math.log((fb_xp + 1.0) / _R_FB)
                        - s[_IN_SUBST] * math.log(((scan_xp + 1.0) / (fb_xp + 1.0)) / _R_SCAN_FB))
            q_f = 1.0 / (1.0 + math.exp(-(s[_IN_FB_LOGIT] + fb_shift)))
            f_exp = min(s_exp * q_f, cfg[v, L.P_FB_CAP])
            photo_p = 1.0 / (1.0 + math.exp(-(s[_IN_PHOTO_LOGIT] + s[_IN_PHOTO_EL] * math.log((photo_xp + 1.0) / _R_PHOTO))))
            issue_lam = s[_IN_ISSUE] * ((issue_xp + 1.0) / _R_ISSUE) ** s[_IN_REPORT_EL]
            status_lam = s[_IN_STATUS] * ((status_xp + 1.0) / _R_STATUS) ** s[_IN_REPORT_EL]
            row = t[v, g]
            row[L.VS_ANTICIPATED] = (first_xp + scan_xp * s_exp + fb_xp * f_exp + photo_xp * f_exp * photo_p
                                     + issue_xp * issue_lam + status_xp * status_lam)
            row[L.VS_SCAN_LAM] = scan_lam
            row[L.VS_SCAN_EXPNEG] = math.exp(-scan_lam)
            row[L.VS_FB_LOGIT] = fb_shift
            row[L.VS_PHOTO_P] = photo_p
            row[L.VS_ISSUE_LAM] = issue_lam
            row[L.VS_ISSUE_EXPNEG] = math.exp(-issue_lam)
            row[L.VS_STATUS_LAM] = status_lam
            row[L.VS_STATUS_EXPNEG] = math.exp(-status_lam)
            poisson_table(scan_lam, row[L.VS_SCAN_EXPNEG], row, L.VS_POIS + L.POIS_W * L.PO_SCAN)
            poisson_table(issue_lam, row[L.VS_ISSUE_EXPNEG], row, L.VS_POIS + L.POIS_W * L.PO_ISSUE)
            poisson_table(status_lam, row[L.VS_STATUS_EXPNEG], row, L.VS_POIS + L.POIS_W * L.PO_STATUS)


def variant_segment_table(sc: Scenario, cfg: np.ndarray, incentives: np.ndarray | None = None) -> np.ndarray:
    """Incentive responses per (variant, segment), (V, G, N_VS), from the effective configs ``cfg``
    (docs/model.md 2.2): per segment, the Poisson mean of scans at the scan price, their expected
    number under the cap, the feedback logit's shift (own price and substitution from scans), the photo
    probability, the report rates, and the anticipated XP of an active day at these prices; and the
    tables of the three Poisson draws (:func:`poisson_table`), so that a draw costs a lookup.

    ``cfg`` is float64 (V, 10) in ``params.PARAM_NAMES`` order; ``incentives`` is
    :func:`segment_incentives` of ``sc``, for callers that build the table every day.  Compiled (one
    implementation, used by both backends).
    """
    cfg = np.ascontiguousarray(cfg, dtype=np.float64)
    t = np.zeros((cfg.shape[0], len(sc.segments), L.N_VS))
    _variant_segment_rows(cfg, segment_incentives(sc) if incentives is None else incentives, t)
    return t


def novelty_table(sc: Scenario) -> np.ndarray:
    """Novelty boost by segment and days since enrolment, (G, max_days + 1)."""
    age = np.arange(sc.max_days + 1, dtype=np.float64)
    return np.stack([s.novelty * np.exp(-age / s.novelty_days) for s in sc.segments])


def habituation_table(sc: Scenario) -> np.ndarray:
    """Share of the response to XP left after ``a`` days of tenure, (G, max_days + 1):
    ``floor + (1 - floor) * exp(-a / xp_habituation_days)`` (1 everywhere without habituation)."""
    age = np.arange(sc.max_days + 1, dtype=np.float64)
    rows = []
    for s in sc.segments:
        if s.xp_habituation_days is None:
            rows.append(np.ones_like(age))
        else:
            rows.append(s.xp_habit_floor + (1.0 - s.xp_habit_floor) * np.exp(-age / s.xp_habituation_days))
    return np.stack(rows)


def onboarding_table(sc: Scenario) -> np.ndarray:
    """Weight of the first-scan bonus for new users, (G, max_days + 1):
    ``beta_onboard * exp(-a / onboard_days)`` at ``a`` days of tenure."""
    age = np.arange(sc.max_days + 1, dtype=np.float64)
    return np.stack([s.beta_onboard * np.exp(-age / s.onboard_days) for s in sc.segments])


def tenure_table(sc: Scenario) -> np.ndarray:
    """The effects of tenure by segment and days since enrolment, (G, max_days + 1, N_TN): columns
    ``TN_NOVELTY`` (:func:`novelty_table`), ``TN_HABITUATION`` (:func:`habituation_table`) and
    ``TN_ONBOARDING`` (:func:`onboarding_table`), side by side for one lookup per user."""
    t = np.zeros((len(sc.segments), sc.max_days + 1, L.N_TN))
    t[:, :, L.TN_NOVELTY] = novelty_table(sc)
    t[:, :, L.TN_HABITUATION] = habituation_table(sc)
    t[:, :, L.TN_ONBOARDING] = onboarding_table(sc)
    return t


def log1p_table(n: int) -> np.ndarray:
    """log(1 + k) for k = 0..n-1 (streak and idle lengths are looked up, not computed)."""
    return np.log1p(np.arange(n, dtype=np.float64))


def global_vector(sc: Scenario, day: int) -> np.ndarray:
    e = sc.economy
    gl = np.zeros(L.N_GL)
    gl[L.GL_XP_UNIT] = e.xp_unit
    gl[L.GL_INFLATION] = e.inflation_xp
    gl[L.GL_RANK] = e.rank_strength
    gl[L.GL_ALPHA] = 2.0 / (sc.metric_window + 1.0)
    gl[L.GL_RHO_SAT] = e.satisfaction_rate
    gl[L.GL_MISSION_PERIOD] = e.mission_period
    gl[L.GL_MISSION_STRETCH] = e.mission_stretch
    gl[L.GL_MISSION_MIN_RATE] = e.mission_min_rate
    gl[L.GL_MISSION_XP] = e.mission_xp
    gl[L.GL_WEEKDAY] = e.weekday[day % 7]
    gl[L.GL_GAIN_CLIP] = e.gain_clip
    return gl

