"""Numba kernels of the economy: population step, guardrail clamp, metric statistics.

Kernels are free functions over arrays that write into caller-preallocated buffers.  Each has a
NumPy twin of the same name and signature in :mod:`arena_env.economy.reference`, and the tests prove
that the two agree (integers exactly, floats to 1e-9).

Population step
---------------
Users live in struct-of-arrays state (see :data:`USER_FIELDS`, 40 bytes per user).  Sites are
contiguous blocks of ``site_size`` users; a *chunk* is ``sites_per_chunk`` consecutive sites.  The
step runs ``prange`` over chunks and every chunk writes its own row of the partial aggregates, so the
result does not depend on the number of threads: each sum is accumulated in user order inside one
chunk, and the caller adds the chunk rows in chunk order.

Every random draw is :func:`arena_env.rng.uniform` keyed by ``(seed, day, user, stream)`` with one
stream constant per decision (``S_*`` below).

The equations are written out in ``docs/model.md``; the index constants below name the columns of
the tables that :mod:`arena_env.economy.model` prepares from the scenario each day.
"""

from __future__ import annotations

import math

import numpy as np

from arena_env._numba import jit, jit_parallel, prange
from arena_env.rng import uniform

from ._guard_kernels import *  # noqa: F401,F403
from ._stats_kernels import *  # noqa: F401,F403

# --- user state (struct of arrays), name -> dtype; 40 bytes per user --------------------------
USER_FIELDS = (
    ("variant", np.int8),  # 0 = control, 1.. = treatments
    ("segment", np.int8),  # index into the scenario's segments
    ("enroll_day", np.int16),  # day the user joins the experiment
    ("last_active", np.int16),  # last day with activity (-1 = never)
    ("streak", np.int16),  # consecutive active days ending on last_active (0 once broken)
    ("flags", np.uint8),  # bit 0: churned
    ("act7", np.uint8),  # activity bitmask of the last 7 days, bit 0 = today
    ("m_target", np.uint8),  # scans still required by the open mission; 0 = none open
    ("m_progress", np.uint8),  # scans made toward the open mission
    ("cum_xp", np.int32),  # XP earned since enrolment
    ("ref_xp", np.float32),  # reference point: the daily XP the user got used to
    ("sat", np.float32),  # satisfaction in (0, 1)
    ("scan_ema", np.float32),  # scans per day, trailing window (metric SCAN_FREQUENCY)
    ("xp_ema", np.float32),  # XP per day, trailing window (metric XP_VELOCITY, site rank)
    ("trait", np.float32),  # engagement propensity, logit scale
    ("fb_trait", np.float32),  # feedback propensity, logit scale
)
FLAG_CHURNED = 1

# --- random streams -------------------------------------------------------------------------------
S_ACTIVE, S_SCANS, S_FEEDBACK, S_PHOTO, S_ISSUE, S_STATUS, S_CHURN = 1, 2, 3, 4, 5, 6, 7

# --- per (variant, segment) table, prepared by model.variant_segment_tables ---------------------
VS_ANTICIPATED = 0  # anticipated XP of an active day before the streak bonus
VS_SCAN_LAM = 1  # Poisson mean of scans beyond the first
VS_SCAN_EXPNEG = 2  # exp(-VS_SCAN_LAM)
VS_FB_LOGIT = 3  # logit shift of the per-scan feedback probability (incentive + substitution)
VS_PHOTO_P = 4  # probability that a feedback carries a photo
VS_ISSUE_LAM = 5
VS_ISSUE_EXPNEG = 6
VS_STATUS_LAM = 7
VS_STATUS_EXPNEG = 8
N_VS = 9

# --- per segment table -----------------------------------------------------------------------------
SG_BASE = 0  # base activity logit
SG_BETA_XP = 1  # weight of perceived XP value
SG_BETA_REF = 2  # weight of the reference-point gain/loss
SG_LOSS_AVERSION = 3  # losses weigh this many times more than gains
SG_BETA_STREAK = 4  # effort to keep a live streak, per log(1 + streak)
SG_BETA_SAT = 5  # weight of satisfaction
SG_RHO_REF = 6  # daily adaptation rate of the reference point
SG_CHURN_BASE = 7
SG_CHURN_IDLE = 8
SG_CHURN_STREAK = 9
SG_CHURN_SAT = 10
SG_SAT_BASE = 11
SG_SAT_REF = 12
SG_SAT_RANK = 13
SG_SAT_XP = 14
N_SG = 15

# --- global constants ---------------------------------------------------------------------------
GL_XP_UNIT = 0  # XP scale of the perceived-value curve
GL_INFLATION = 1  # cumulative XP at which the same reward feels half as large
GL_RANK = 2  # strength of site-rank motivation (0 = off)
GL_ALPHA = 3  # EMA rate of the per-user metrics, 2 / (window + 1)
GL_RHO_SAT = 4  # daily adaptation rate of satisfaction
GL_MISSION_PERIOD = 5  # days per mission
GL_MISSION_STRETCH = 6  # mission target = stretch * recent scans/day * period
GL_MISSION_MIN_RATE = 7  # floor of the recent scan rate used for targets
GL_MISSION_XP = 8  # XP for a completed mission (scenario constant, not an agent parameter)
GL_WEEKDAY = 9  # today's weekday effect on the activity logit
N_GL = 10

# --- the ten parameters (order of params.PARAM_NAMES) ---------------------------------------------
P_SCAN, P_FEEDBACK, P_ISSUE, P_STATUS, P_PHOTO, P_FIRST, P_STREAK_DAY, P_STREAK_CAP, P_SCAN_CAP, P_FB_CAP = range(10)

# --- integer aggregates per (chunk, variant) --------------------------------------------------------
A_ENROLLED = 0
A_CHURNED = 1  # churned so far (stay in the denominators)
A_ACTIVE = 2
A_ACTIVE7 = 3
A_SCANS = 4
A_FEEDBACK = 5  # scans with written feedback (a photo always comes with a feedback)
A_PHOTOS = 6
A_ISSUES = 7
A_STATUS = 8
A_M_DONE = 9
A_M_FAILED = 10
A_CHURNED_TODAY = 11
A_XP_SCAN = 12  # XP ledger, one column per rule (A_XP_SCAN .. A_XP_MISSION)
A_XP_FIRST = 13
A_XP_STREAK = 14
A_XP_FEEDBACK = 15
A_XP_PHOTO = 16
A_XP_ISSUE = 17
A_XP_STATUS = 18
A_XP_MISSION = 19
A_STREAK_SUM = 20
A_STREAK_SQ = 21
A_NEW = 22
N_AI = 23
XP_RULES = ("scan", "firstScan", "streak", "feedback", "photo", "issueReport", "statusReport", "mission")

# --- float aggregates per (chunk, variant) ----------------------------------------------------------
F_SCAN_SUM = 0
F_SCAN_SQ = 1
F_XP_SUM = 2
F_XP_SQ = 3
F_SAT_SUM = 4
N_AF = 5

# --- site sums (n, sum of xp_ema, sum of squares) ---------------------------------------------------
SITE_N, SITE_SUM, SITE_SQ = 0, 1, 2


@jit
def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


@jit
def _poisson(lam, expneg, u):
    """Inverse-transform Poisson draw from one uniform; ``expneg`` = exp(-lam)."""
    if lam <= 0.0:
        return 0
    p = expneg
    f = p
    k = 0
    while u > f and k < 255:
        k += 1
        p *= lam / k
        f += p
    return k


@jit_parallel
def step_population(
    day, seed, site_size, sites_per_chunk,
    variant, segment, enroll_day, last_active, streak, flags, act7, m_target, m_progress,
    cum_xp, ref_xp, sat, scan_ema, xp_ema, trait, fb_trait,
    cfg, vs_tab, sg_tab, glob, novelty, log1p_tab,
    site_prev, site_next, agg_i, agg_f,
):
    """Advance every enrolled user by one day, in place.

    Reads ``site_prev`` (yesterday's site sums) and the tables; writes the user state, ``site_next``
    (today's site sums, fully overwritten) and the partial aggregates ``agg_i`` (n_chunks, V, N_AI)
    and ``agg_f`` (n_chunks, V, N_AF), fully overwritten.  See docs/model.md for the equations.
    """
    n_users = variant.shape[0]
    n_sites = site_prev.shape[0]
    n_chunks = agg_i.shape[0]
    n_nov = novelty.shape[1]
    n_log = log1p_tab.shape[0]
    xp_unit = glob[GL_XP_UNIT]
    inflation = glob[GL_INFLATION]
    rank_k = glob[GL_RANK]
    alpha_w = glob[GL_ALPHA]
    rho_sat = glob[GL_RHO_SAT]
    period = int(glob[GL_MISSION_PERIOD])
    stretch = glob[GL_MISSION_STRETCH]
    min_rate = glob[GL_MISSION_MIN_RATE]
    mission_xp = int(glob[GL_MISSION_XP])
    weekday = glob[GL_WEEKDAY]
    for c in prange(n_chunks):
        ai = agg_i[c]
        af = agg_f[c]
        ai[:] = 0
        af[:] = 0.0
        s_lo = c * sites_per_chunk
        s_hi = min(s_lo + sites_per_chunk, n_sites)
        for s in range(s_lo, s_hi):
            sn = site_prev[s, SITE_N]
            site_mean = 0.0
            site_inv_sd = 0.0
            if sn >= 2.0:
                site_mean = site_prev[s, SITE_SUM] / sn
                var = site_prev[s, SITE_SQ] / sn - site_mean * site_mean
                if var > 1e-12:
                    site_inv_sd = 1.0 / math.sqrt(var)
            nx_n = 0.0
            nx_sum = 0.0
            nx_sq = 0.0
            u_hi = min((s + 1) * site_size, n_users)
            for u in range(s * site_size, u_hi):
                e0 = enroll_day[u]
                if e0 > day:
                    continue
                v = variant[u]
                g = segment[u]
                age = day - e0
                alpha = alpha_w
                if 1.0 / (age + 1.0) > alpha:
                    alpha = 1.0 / (age + 1.0)
                row = ai[v]
                row[A_ENROLLED] += 1
                if age == 0:
                    row[A_NEW] += 1
                scans = 0
                fb = 0
                xp = 0
                if flags[u] & FLAG_CHURNED:
                    row[A_CHURNED] += 1
                    streak[u] = 0
                    act7[u] = (act7[u] << 1) & 0x7F
                else:
                    cv = cfg[v]
                    vt = vs_tab[v, g]
                    sg = sg_tab[g]
                    # missions: resolve and assign at the start of each personal period
                    if age % period == 0:
                        if age > 0 and m_target[u] > 0:
                            row[A_M_FAILED] += 1
                        rate = scan_ema[u]
                        if rate < min_rate:
                            rate = min_rate
                        tgt = math.floor(stretch * rate * period + 0.5)
                        if tgt < 1:
                            tgt = 1
                        if tgt > 250:
                            tgt = 250
                        m_target[u] = tgt
                        m_progress[u] = 0
                    alive = streak[u] if last_active[u] == day - 1 else 0
                    sb_next = cv[P_STREAK_DAY] * (alive + 1)
                    if sb_next > cv[P_STREAK_CAP]:
                        sb_next = cv[P_STREAK_CAP]
                    anticipated = vt[VS_ANTICIPATED] + sb_next
                    perceived = math.log1p(anticipated / (xp_unit * (1.0 + cum_xp[u] / inflation)))
                    ref = np.float64(ref_xp[u])
                    if ref < 0.0:  # first day: the user takes the rewards on offer as the norm
                        ref = anticipated
                    gain = (anticipated - ref) / (ref if ref > 1.0 else 1.0)
                    if gain < 0.0:
                        gain *= sg[SG_LOSS_AVERSION]
                    if gain > 3.0:
                        gain = 3.0
                    elif gain < -3.0:
                        gain = -3.0
                    pct = 0.5
                    if site_inv_sd > 0.0:
                        pct = _sigmoid(1.702 * (xp_ema[u] - site_mean) * site_inv_sd)
                    ia = alive if alive < n_log else n_log - 1
                    inov = age if age < n_nov else n_nov - 1
                    z = (
                        sg[SG_BASE] + trait[u] + sg[SG_BETA_XP] * perceived + sg[SG_BETA_REF] * gain
                        + sg[SG_BETA_STREAK] * log1p_tab[ia] + novelty[g, inov] + weekday
                        + rank_k * (pct - 0.5) + sg[SG_BETA_SAT] * (sat[u] - 0.5)
                    )
                    if uniform(seed, day, u, S_ACTIVE) < _sigmoid(z):
                        n = 1 + _poisson(vt[VS_SCAN_LAM], vt[VS_SCAN_EXPNEG], uniform(seed, day, u, S_SCANS))
                        cap = int(cv[P_SCAN_CAP])
                        scans = n if n < cap else cap
                        lam_f = scans * _sigmoid(fb_trait[u] + vt[VS_FB_LOGIT])
                        fb = _poisson(lam_f, math.exp(-lam_f), uniform(seed, day, u, S_FEEDBACK))
                        if fb > scans:
                            fb = scans
                        fcap = int(cv[P_FB_CAP])
                        if fb > fcap:
                            fb = fcap
                        photos = 0
                        if fb > 0:
                            lam_p = fb * vt[VS_PHOTO_P]
                            photos = _poisson(lam_p, math.exp(-lam_p), uniform(seed, day, u, S_PHOTO))
                            if photos > fb:
                                photos = fb
                        issues = _poisson(vt[VS_ISSUE_LAM], vt[VS_ISSUE_EXPNEG], uniform(seed, day, u, S_ISSUE))
                        status = _poisson(vt[VS_STATUS_LAM], vt[VS_STATUS_EXPNEG], uniform(seed, day, u, S_STATUS))
                        st = alive + 1
                        streak[u] = st
                        sb = int(cv[P_STREAK_DAY]) * st
                        if sb > int(cv[P_STREAK_CAP]):
                            sb = int(cv[P_STREAK_CAP])
                        x_scan = int(cv[P_SCAN]) * scans
                        x_first = int(cv[P_FIRST])
                        x_fb = int(cv[P_FEEDBACK]) * fb
                        x_photo = int(cv[P_PHOTO]) * photos
                        x_issue = int(cv[P_ISSUE]) * issues
                        x_status = int(cv[P_STATUS]) * status
                        x_mission = 0
                        if m_target[u] > 0:
                            prog = m_progress[u] + scans
                            if prog >= m_target[u]:
                                m_target[u] = 0
                                x_mission = mission_xp
                                row[A_M_DONE] += 1
                                prog = 0
                            m_progress[u] = prog if prog < 255 else 255
                        xp = x_scan + x_first + sb + x_fb + x_photo + x_issue + x_status + x_mission
                        row[A_ACTIVE] += 1
                        row[A_SCANS] += scans
                        row[A_FEEDBACK] += fb
                        row[A_PHOTOS] += photos
                        row[A_ISSUES] += issues
                        row[A_STATUS] += status
                        row[A_XP_SCAN] += x_scan
                        row[A_XP_FIRST] += x_first
                        row[A_XP_STREAK] += sb
                        row[A_XP_FEEDBACK] += x_fb
                        row[A_XP_PHOTO] += x_photo
                        row[A_XP_ISSUE] += x_issue
                        row[A_XP_STATUS] += x_status
                        row[A_XP_MISSION] += x_mission
                        last_active[u] = day
                        act7[u] = ((act7[u] << 1) | 1) & 0x7F
                    else:
                        streak[u] = 0
                        act7[u] = (act7[u] << 1) & 0x7F
                    cum_xp[u] += xp
                    ref_xp[u] = ref + sg[SG_RHO_REF] * (anticipated - ref)
                    s_old = sat[u]
                    target = _sigmoid(
                        sg[SG_SAT_BASE] + sg[SG_SAT_REF] * gain + sg[SG_SAT_RANK] * (pct - 0.5) + sg[SG_SAT_XP] * perceived
                    )
                    s_new = s_old + rho_sat * (target - s_old)
                    sat[u] = s_new
                    idle = day - last_active[u]
                    if idle >= n_log:
                        idle = n_log - 1
                    cur = streak[u]
                    ic = cur if cur < n_log else n_log - 1
                    hz = _sigmoid(
                        sg[SG_CHURN_BASE] + sg[SG_CHURN_IDLE] * log1p_tab[idle] - sg[SG_CHURN_STREAK] * log1p_tab[ic]
                        - sg[SG_CHURN_SAT] * (s_new - 0.5)
                    )
                    if uniform(seed, day, u, S_CHURN) < hz:
                        flags[u] = flags[u] | FLAG_CHURNED
                        row[A_CHURNED_TODAY] += 1
                        row[A_CHURNED] += 1
                    af[v, F_SAT_SUM] += s_new
                se = scan_ema[u] + alpha * (scans - scan_ema[u])
                xe = xp_ema[u] + alpha * (xp - xp_ema[u])
                scan_ema[u] = se
                xp_ema[u] = xe
                se = np.float64(scan_ema[u])
                xe = np.float64(xp_ema[u])
                if act7[u] != 0:
                    row[A_ACTIVE7] += 1
                cs = int(streak[u])
                row[A_STREAK_SUM] += cs
                row[A_STREAK_SQ] += cs * cs
                af[v, F_SCAN_SUM] += se
                af[v, F_SCAN_SQ] += se * se
                af[v, F_XP_SUM] += xe
                af[v, F_XP_SQ] += xe * xe
                nx_n += 1.0
                nx_sum += xe
                nx_sq += xe * xe
            site_next[s, SITE_N] = nx_n
            site_next[s, SITE_SUM] = nx_sum
            site_next[s, SITE_SQ] = nx_sq
