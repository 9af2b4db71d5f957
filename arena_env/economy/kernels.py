"""Numba kernels of the economy: population step, guardrail clamp, metric statistics.

Kernels are free functions over arrays that write into caller-preallocated buffers.  Each has a
NumPy twin of the same name and signature in :mod:`arena_env.economy.reference`, and the tests prove
that the two agree (integers exactly, floats to 1e-9).

Population step
---------------
Users live in one packed record array (see :data:`USER_FIELDS`, 40 bytes per user); the kernel
receives one strided view per field.  Sites are
contiguous blocks of ``site_size`` users; a *chunk* is ``sites_per_chunk`` consecutive sites.  The
step runs ``prange`` over chunks and every chunk writes its own row of the partial aggregates, so the
result does not depend on the number of threads: each sum is accumulated in user order inside one
chunk, and the caller adds the chunk rows in chunk order.

Every random draw is :func:`arena_env.rng.uniform` keyed by ``(seed, day, user, stream)`` with one
stream constant per decision (``S_*`` below); the (seed, day) half of the hash is computed once
per day (``rng.day_key``).

The equations are written out in ``docs/model.md``; the index constants below name the columns of
the tables that :mod:`arena_env.economy.model` prepares from the scenario each day.
"""

from __future__ import annotations

import math

import numpy as np

from agents import rules
from arena_env._numba import jit, jit_parallel, prange
from arena_env.rng import day_key, uniform_at, uniform_pair_at


# --- user state: fields of one packed record per user, name -> dtype; 44 bytes per user -------
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
    ("cum_xp", np.int32),  # XP credited since enrolment
    ("xp_today", np.int32),  # XP claimed today (credited pro rata by pay_out under a budget)
    ("ref_xp", np.float32),  # reference point: the daily XP (before streak bonus) the user got used to
    ("sat", np.float32),  # satisfaction in (0, 1)
    ("scan_ema", np.float32),  # scans per day, trailing window (metric SCAN_FREQUENCY)
    ("xp_ema", np.float32),  # XP per day, trailing window (metric XP_VELOCITY, site rank)
    ("trait", np.float32),  # engagement propensity, logit scale
    ("fb_trait", np.float32),  # feedback propensity, logit scale
)
FLAG_CHURNED = 1

# --- random streams -------------------------------------------------------------------------------
# S_SCANS and S_ISSUE each give a pair of 26-bit uniforms (scans and feedback; issues and status)
S_ACTIVE, S_SCANS, S_PHOTO, S_ISSUE, S_CHURN = 1, 2, 4, 5, 7

# --- per (variant, segment) table, prepared by model.variant_segment_tables ---------------------
VS_ANTICIPATED = 0  # anticipated XP of an active day before the streak bonus (at the perceived payout)
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
SG_BETA_SB = 15  # weight of the anticipated streak bonus (saturating)
SG_USEFUL_SCANS = 16  # scans of a day that carry value; the rest are duplicates
SG_USEFUL_FB = 17  # feedbacks of a day that carry value
N_SG = 18

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
GL_GAIN_CLIP = 10  # bound of the relative gain/loss against the reference point
N_GL = 11

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
A_M_DONE = 9  # missions resolved today as completed (at the end of their period, or at churn)
A_M_FAILED = 10  # missions resolved today as failed
A_CHURNED_TODAY = 11
A_XP_SCAN = 12  # XP ledger, one column per rule (A_XP_SCAN .. A_XP_MISSION)
A_XP_FIRST = 13
A_XP_STREAK = 14
A_XP_FEEDBACK = 15
A_XP_PHOTO = 16
A_XP_ISSUE = 17
A_XP_STATUS = 18
A_XP_MISSION = 19
A_XP_BUDGET = 20  # XP withheld by the pro-rata payout of the budget (<= 0); part of the ledger
A_STREAK_SUM = 21
A_STREAK_SQ = 22
A_NEW = 23
A_M_REACHED = 24  # missions whose target was reached today (each pays GL_MISSION_XP)
A_USEFUL_SCANS = 25  # sum over users of min(scans, useful_scans): scans that carry value
A_USEFUL_FB = 26  # sum over users of min(feedback, useful_feedback)
N_AI = 27
XP_RULES = ("scan", "firstScan", "streak", "feedback", "photo", "issueReport", "statusReport", "mission",
            "budget")

# --- float aggregates per (chunk, variant) ----------------------------------------------------------
F_SCAN_SUM = 0
F_SCAN_SQ = 1
F_XP_SUM = 2
F_XP_SQ = 3
F_SAT_SUM = 4
F_CHURN_RISK = 5  # sum of today's churn hazards of the users at risk (the expected number lost today)
N_AF = 6

# --- site sums (n, sum of xp_ema, sum of squares), for the control's users (0..2) and for the
# treatments' users (3..5): the control has its own leaderboard, so treatments cannot move it ------
SITE_N, SITE_SUM, SITE_SQ = 0, 1, 2
SITE_GROUP = 3  # offset of the treatments' sums
N_SITE = 6


@jit
def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


@jit
def _bernoulli_logit(u, x):
    """``u < sigmoid(x)``, as ``u * (1 + exp(-x)) < 1`` (no division).

    Most draws are settled without the ``exp``: since ``exp(-x) >= 1 - x``, ``u * (2 - x) >= 1``
    implies ``u * (1 + exp(-x)) >= 1`` (also in floating point, as rounding is monotone), so the
    answer is the same as the full test's.
    """
    if u * (2.0 - x) >= 1.0:
        return False
    return u * (1.0 + math.exp(-x)) < 1.0


@jit
def _s_curve(x):
    """An algebraic S-curve onto (0, 1): 0.5 + 0.5 x / (1 + |x|); no exp (a sixth of the cost)."""
    return 0.5 + 0.5 * x / (1.0 + abs(x))


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


@jit
def _binomial(n, p, u):
    """Inverse-transform Binomial(n, p) draw from one uniform, for small ``n`` (no exp, no log)."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    q = 1.0 - p
    pk = 1.0  # q ** n by binary powering (a short dependency chain)
    base = q
    e = n
    while e > 0:
        if e & 1:
            pk *= base
        base *= base
        e >>= 1
    r = p / q
    f = pk
    k = 0
    while u > f and k < n:
        pk *= r * (n - k) / (k + 1)
        k += 1
        f += pk
    return k


@jit
def _ema_rate(age, alpha_w):
    """The moving-average rate of a user ``age`` days after enrolment: a running mean over the first
    days (``1 / (age + 1)``), then the window's rate ``alpha_w = 2 / (window + 1)``."""
    if (age + 1.0) * alpha_w < 1.0:
        return 1.0 / (age + 1.0)
    return alpha_w


@jit
def _add_to_site(site_next, s, v, xe):
    """Count a user's ``xp_ema`` in the site sums of its group (control 0..2, treatments 3..5)."""
    off = 0 if v == 0 else SITE_GROUP
    site_next[s, off + SITE_N] += 1.0
    site_next[s, off + SITE_SUM] += xe
    site_next[s, off + SITE_SQ] += xe * xe


@jit
def _site_standing(site_prev, s, off):
    """(mean, 1 / sd) of yesterday's ``xp_ema`` among one group's users of site ``s`` (0 = no spread)."""
    sn = site_prev[s, off + SITE_N]
    if sn < 2.0:
        return 0.0, 0.0
    mean = site_prev[s, off + SITE_SUM] / sn
    var = site_prev[s, off + SITE_SQ] / sn - mean * mean
    if var > 1e-12:
        return mean, 1.0 / math.sqrt(var)
    return mean, 0.0


@jit_parallel
def step_population(
    day, seed, site_size, sites_per_chunk,
    variant, segment, enroll_day, last_active, streak, flags, act7, m_target, m_progress,
    cum_xp, xp_today, ref_xp, sat, scan_ema, xp_ema, trait, fb_trait,
    cfg, pscale, vs_tab, sg_tab, glob, novelty, habituation, onboarding, log1p_tab,
    site_prev, site_next, agg_i, agg_f,
):
    """Advance every enrolled user by one day, in place.

    ``cfg`` (V, 10) prices the XP a user claims today; ``pscale`` (V,) is the payout ratio users
    expect (the budget's latest pro-rata factor, 1 without a budget), which scales the streak bonus
    they anticipate (``vs_tab`` is already built from the expected payout).  Reads ``site_prev``
    (yesterday's site sums, per group) and the tables; writes the user state (``xp_today`` = the XP
    claimed today, credited in full: :func:`pay_out` takes back the budget's share), ``site_next``
    (today's site sums, fully overwritten) and the partial aggregates ``agg_i`` (n_chunks, V, N_AI)
    and ``agg_f`` (n_chunks, V, N_AF), fully overwritten.  See docs/model.md for the equations.
    """
    n_users = variant.shape[0]
    n_sites = site_prev.shape[0]
    n_chunks = agg_i.shape[0]
    n_nov = novelty.shape[1]
    n_log = log1p_tab.shape[0]
    inv_xp_unit = 1.0 / glob[GL_XP_UNIT]
    inv_inflation = 1.0 / glob[GL_INFLATION]
    rank_k = glob[GL_RANK]
    alpha_w = glob[GL_ALPHA]
    rho_sat = glob[GL_RHO_SAT]
    period = np.uint32(glob[GL_MISSION_PERIOD])
    stretch = glob[GL_MISSION_STRETCH]
    min_rate = glob[GL_MISSION_MIN_RATE]
    mission_xp = int(glob[GL_MISSION_XP])
    weekday = glob[GL_WEEKDAY]
    gain_clip = glob[GL_GAIN_CLIP]
    dkey = day_key(seed, day)
    sb_first = np.empty(cfg.shape[0])  # the perceived streak bonus of a streak's first day, per variant
    for v in range(cfg.shape[0]):
        sb_first[v] = min(cfg[v, P_STREAK_DAY], cfg[v, P_STREAK_CAP]) * pscale[v]
    for c in prange(n_chunks):
        ai = agg_i[c]  # this chunk's rows (2-D indexing below: no per-user array views)
        af = agg_f[c]
        ai[:] = 0
        af[:] = 0.0
        s_lo = c * sites_per_chunk
        s_hi = min(s_lo + sites_per_chunk, n_sites)
        for s in range(s_lo, s_hi):
            mean_c, inv_c = _site_standing(site_prev, s, 0)
            mean_t, inv_t = _site_standing(site_prev, s, SITE_GROUP)
            for k in range(N_SITE):
                site_next[s, k] = 0.0
            u_hi = min((s + 1) * site_size, n_users)
            for u in range(s * site_size, u_hi):
                e0 = enroll_day[u]
                if e0 > day:
                    continue
                v = variant[u]
                g = segment[u]
                age = day - e0
                alpha = _ema_rate(age, alpha_w)
                ai[v, A_ENROLLED] += 1
                if age == 0:
                    ai[v, A_NEW] += 1
                scans = 0
                fb = 0
                xp = 0
                if flags[u] & FLAG_CHURNED:
                    ai[v, A_CHURNED] += 1
                    streak[u] = 0
                    act7[u] = (act7[u] << 1) & 0x7F
                else:
                    # missions: resolve and assign at the start of each personal period
                    if np.uint32(age) % period == 0:  # 32-bit modulo: a third of the 64-bit cost
                        if age > 0:  # resolve the mission of the period that just ended
                            if m_target[u] > 0:
                                ai[v, A_M_FAILED] += 1
                            else:
                                ai[v, A_M_DONE] += 1
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
                    sb_next = cfg[v, P_STREAK_DAY] * (alive + 1)
                    if sb_next > cfg[v, P_STREAK_CAP]:
                        sb_next = cfg[v, P_STREAK_CAP]
                    # the day-1 bonus is paid on any active day; the premium above it is what a break loses
                    anticipated = vs_tab[v, g, VS_ANTICIPATED] + sb_first[v]
                    deflate = inv_xp_unit / (1.0 + cum_xp[u] * inv_inflation)
                    perceived = math.log(1.0 + anticipated * deflate)
                    xs = (sb_next * pscale[v] - sb_first[v]) * deflate
                    streak_value = xs / (1.0 + xs)
                    xs = cfg[v, P_FIRST] * pscale[v] * deflate
                    first_value = xs / (1.0 + xs)
                    ref = np.float64(ref_xp[u])
                    if ref < 0.0:  # first day: the user takes the rewards on offer as the norm
                        ref = anticipated
                    gain = (anticipated - ref) / (ref if ref > 1.0 else 1.0)
                    if gain < 0.0:
                        gain *= sg_tab[g, SG_LOSS_AVERSION]
                    if gain > gain_clip:
                        gain = gain_clip
                    elif gain < -gain_clip:
                        gain = -gain_clip
                    pct = 0.5
                    if v == 0:
                        if inv_c > 0.0:
                            pct = _s_curve(2.0 * (xp_ema[u] - mean_c) * inv_c)
                    elif inv_t > 0.0:
                        pct = _s_curve(2.0 * (xp_ema[u] - mean_t) * inv_t)
                    ia = alive if alive < n_log else n_log - 1
                    inov = age if age < n_nov else n_nov - 1
                    z = (
                        sg_tab[g, SG_BASE] + trait[u] + sg_tab[g, SG_BETA_XP] * habituation[g, inov] * perceived
                        + sg_tab[g, SG_BETA_SB] * streak_value + onboarding[g, inov] * first_value
                        + sg_tab[g, SG_BETA_REF] * gain
                        + sg_tab[g, SG_BETA_STREAK] * log1p_tab[ia] + novelty[g, inov] + weekday
                        + rank_k * (pct - 0.5) + sg_tab[g, SG_BETA_SAT] * (sat[u] - 0.5)
                    )
                    if _bernoulli_logit(uniform_at(dkey, u, S_ACTIVE), z):
                        u_scan, u_fb = uniform_pair_at(dkey, u, S_SCANS)
                        n = 1 + _poisson(vs_tab[v, g, VS_SCAN_LAM], vs_tab[v, g, VS_SCAN_EXPNEG], u_scan)
                        cap = int(cfg[v, P_SCAN_CAP])
                        scans = n if n < cap else cap
                        q_f = _sigmoid(fb_trait[u] + vs_tab[v, g, VS_FB_LOGIT])
                        fb = _binomial(scans, q_f, u_fb)
                        fcap = int(cfg[v, P_FB_CAP])
                        if fb > fcap:
                            fb = fcap
                        photos = 0
                        if fb > 0:
                            photos = _binomial(fb, vs_tab[v, g, VS_PHOTO_P], uniform_at(dkey, u, S_PHOTO))
                        u_issue, u_status = uniform_pair_at(dkey, u, S_ISSUE)
                        issues = _poisson(vs_tab[v, g, VS_ISSUE_LAM], vs_tab[v, g, VS_ISSUE_EXPNEG], u_issue)
                        status = _poisson(vs_tab[v, g, VS_STATUS_LAM], vs_tab[v, g, VS_STATUS_EXPNEG], u_status)
                        st = alive + 1
                        streak[u] = st
                        sb = int(cfg[v, P_STREAK_DAY]) * st
                        if sb > int(cfg[v, P_STREAK_CAP]):
                            sb = int(cfg[v, P_STREAK_CAP])
                        x_mission = 0
                        if m_target[u] > 0:
                            prog = m_progress[u] + scans
                            if prog >= m_target[u]:
                                m_target[u] = 0
                                x_mission = mission_xp
                                ai[v, A_M_REACHED] += 1
                                prog = 0
                            m_progress[u] = prog if prog < 255 else 255
                        xp = (int(cfg[v, P_SCAN]) * scans + int(cfg[v, P_FIRST]) + sb
                              + int(cfg[v, P_FEEDBACK]) * fb + int(cfg[v, P_PHOTO]) * photos
                              + int(cfg[v, P_ISSUE]) * issues + int(cfg[v, P_STATUS]) * status + x_mission)
                        useful = int(sg_tab[g, SG_USEFUL_SCANS])
                        ai[v, A_USEFUL_SCANS] += scans if scans < useful else useful
                        useful = int(sg_tab[g, SG_USEFUL_FB])
                        ai[v, A_USEFUL_FB] += fb if fb < useful else useful
                        ai[v, A_ACTIVE] += 1
                        ai[v, A_SCANS] += scans
                        ai[v, A_FEEDBACK] += fb
                        ai[v, A_PHOTOS] += photos
                        ai[v, A_ISSUES] += issues
                        ai[v, A_STATUS] += status
                        ai[v, A_XP_STREAK] += sb  # the other rules' XP is count x price, below
                        last_active[u] = day
                        act7[u] = ((act7[u] << 1) | 1) & 0x7F
                    else:
                        streak[u] = 0
                        act7[u] = (act7[u] << 1) & 0x7F
                    cum_xp[u] += xp
                    ref_xp[u] = ref + sg_tab[g, SG_RHO_REF] * (anticipated - ref)
                    s_old = sat[u]
                    target = _s_curve(
                        sg_tab[g, SG_SAT_BASE] + sg_tab[g, SG_SAT_REF] * gain + sg_tab[g, SG_SAT_RANK] * (pct - 0.5)
                        + sg_tab[g, SG_SAT_XP] * perceived
                    )
                    s_new = s_old + rho_sat * (target - s_old)
                    sat[u] = s_new
                    idle = day - last_active[u]
                    if idle >= n_log:
                        idle = n_log - 1
                    cur = streak[u]
                    ic = cur if cur < n_log else n_log - 1
                    churn_logit = (sg_tab[g, SG_CHURN_BASE] + sg_tab[g, SG_CHURN_IDLE] * log1p_tab[idle]
                                   - sg_tab[g, SG_CHURN_STREAK] * log1p_tab[ic]
                                   - sg_tab[g, SG_CHURN_SAT] * (s_new - 0.5))
                    af[v, F_CHURN_RISK] += _sigmoid(churn_logit)
                    if _bernoulli_logit(uniform_at(dkey, u, S_CHURN), churn_logit):
                        flags[u] = flags[u] | FLAG_CHURNED
                        if m_target[u] > 0:  # the open mission is resolved when the user leaves
                            ai[v, A_M_FAILED] += 1
                        else:
                            ai[v, A_M_DONE] += 1
                        m_target[u] = 0
                        m_progress[u] = 0
                        ai[v, A_CHURNED_TODAY] += 1
                        ai[v, A_CHURNED] += 1
                    af[v, F_SAT_SUM] += s_new
                xp_today[u] = xp
                se = scan_ema[u] + alpha * (scans - scan_ema[u])
                xe = xp_ema[u] + alpha * (xp - xp_ema[u])
                scan_ema[u] = se
                xp_ema[u] = xe
                se = np.float64(scan_ema[u])
                xe = np.float64(xp_ema[u])
                if act7[u] != 0:
                    ai[v, A_ACTIVE7] += 1
                cs = int(streak[u])
                ai[v, A_STREAK_SUM] += cs
                ai[v, A_STREAK_SQ] += cs * cs
                af[v, F_SCAN_SUM] += se
                af[v, F_SCAN_SQ] += se * se
                af[v, F_XP_SUM] += xe
                af[v, F_XP_SQ] += xe * xe
                _add_to_site(site_next, s, v, xe)
        # the XP ledger of the rules with one price per variant and day: count x price
        for v in range(ai.shape[0]):
            ai[v, A_XP_SCAN] = int(cfg[v, P_SCAN]) * ai[v, A_SCANS]
            ai[v, A_XP_FIRST] = int(cfg[v, P_FIRST]) * ai[v, A_ACTIVE]
            ai[v, A_XP_FEEDBACK] = int(cfg[v, P_FEEDBACK]) * ai[v, A_FEEDBACK]
            ai[v, A_XP_PHOTO] = int(cfg[v, P_PHOTO]) * ai[v, A_PHOTOS]
            ai[v, A_XP_ISSUE] = int(cfg[v, P_ISSUE]) * ai[v, A_ISSUES]
            ai[v, A_XP_STATUS] = int(cfg[v, P_STATUS]) * ai[v, A_STATUS]
            ai[v, A_XP_MISSION] = mission_xp * ai[v, A_M_REACHED]


@jit_parallel
def pay_out(day, site_size, sites_per_chunk, variant, enroll_day, xp_today, cum_xp, xp_ema, scale, glob,
            site_next, agg_i, agg_f):
    """Credit today's claims pro rata, in place: each user of variant ``v`` keeps
    ``floor(xp_today * scale[v])`` of the XP :func:`step_population` credited in full.

    Runs after :func:`step_population` on days when a budget is short (some ``scale[v] < 1``).  Takes
    the withheld XP back from ``cum_xp`` and ``xp_ema`` (the same moving-average step, undone for the
    withheld part), books it in the ledger column ``A_XP_BUDGET`` (<= 0), and recomputes what depends
    on ``xp_ema``: ``F_XP_SUM``, ``F_XP_SQ`` and ``site_next``.  Sums run in user order per chunk, as
    in :func:`step_population`, so results do not depend on the thread count.
    """
    n_users = variant.shape[0]
    n_sites = site_next.shape[0]
    n_chunks = agg_i.shape[0]
    alpha_w = glob[GL_ALPHA]
    for c in prange(n_chunks):
        ai = agg_i[c]
        af = agg_f[c]
        for v in range(ai.shape[0]):
            af[v, F_XP_SUM] = 0.0
            af[v, F_XP_SQ] = 0.0
        s_lo = c * sites_per_chunk
        s_hi = min(s_lo + sites_per_chunk, n_sites)
        for s in range(s_lo, s_hi):
            for k in range(N_SITE):
                site_next[s, k] = 0.0
            u_hi = min((s + 1) * site_size, n_users)
            for u in range(s * site_size, u_hi):
                e0 = enroll_day[u]
                if e0 > day:
                    continue
                v = variant[u]
                x = xp_today[u]
                if x > 0 and scale[v] < 1.0:
                    kept = int(math.floor(x * scale[v]))
                    withheld = x - kept
                    cum_xp[u] -= withheld
                    xp_today[u] = kept
                    xp_ema[u] = xp_ema[u] - _ema_rate(day - e0, alpha_w) * withheld
                    ai[v, A_XP_BUDGET] -= withheld
                xe = np.float64(xp_ema[u])
                af[v, F_XP_SUM] += xe
                af[v, F_XP_SQ] += xe * xe
                _add_to_site(site_next, s, v, xe)


# ==================================================================================================
# Guardrail 5: the delta clamp
# ==================================================================================================
# Numba kernel of the delta clamp (guardrail 5 of the TendedLoop Arena protocol).
#
# The NumPy twin is ``reference.clamp_updates``; the two agree
# exactly (integers and booleans).  Rules, per variant ``v`` and parameter ``i`` with a request:
#
# * ``max_delta = delta_window(current, delta_limit_pct) = max(|current| * delta_limit_pct / 100, 1.0)``
#   -- the limit is relative to the CURRENT value, so changes compound over updates
#   (10 -> 15 -> 23 at 50%).  The floor of one unit
#   keeps small integer values from being frozen forever (at 1 and 50%, 0.5 would round back to 1;
#   at 0 the limit would be 0 and a switched-off rule could never come back).
# * ``x = clip(requested, current - max_delta, current + max_delta)``
# * ``applied = round_half_away(x)`` (round half away from zero: 22.5 -> 23, -2.5 -> -3), then
#   clipped to the hard bounds ``[lo[i], hi[i]]``.
# * ``clamped = applied != round_half_away(requested)`` (by the delta limit or by a hard bound).
# * ``at_max`` ("moved by the full allowed delta"): ``applied`` reached the integer edge of the delta
#   window in its direction, i.e. ``applied >= round_half_away(current + max_delta)`` or
#   ``applied <= round_half_away(current - max_delta)``.  Since ``max_delta >= 1`` both edges differ
#   from ``current``, so ``at_max`` implies a change.  A request exactly at the edge counts (it is not
#   clamped but it is a full-size move); a move cut short by a hard bound does not.
#
# Without a request: ``applied = current``, ``clamped = at_max = False``, and ``requested`` is not
# read (it may hold NaN).  Requested values that are touched must be finite (callers validate).
#
# ``round_half_away`` and ``delta_window`` are the rules of :mod:`agents.rules` (written once, plain
# Python), compiled here with :data:`arena_env._numba.jit`.

round_half_away = jit(rules.round_half_away)
delta_window = jit(rules.delta_window)
_continuous_target = jit(rules.continuous_target)


@jit
def round_half_away_array(x, out):
    """``out[i] = round_half_away(x[i])`` over 1-D float64 arrays (one call instead of one per value)."""
    for i in range(x.shape[0]):
        out[i] = round_half_away(x[i])


@jit
def continuous_targets(current, action, delta_limit_pct, out):
    """``out[i] = agents.rules.continuous_target(current[i], action[i], delta_limit_pct)`` over 1-D arrays:
    the requests of a continuous action (log-symmetric moves within the delta window)."""
    for i in range(current.shape[0]):
        out[i] = _continuous_target(current[i], action[i], delta_limit_pct)


@jit
def clamp_updates(current, requested, has_request, delta_limit_pct, lo, hi, applied, clamped, at_max):
    """Clamp the proposals of all variants at once (see the module docstring for the rules).

    Args:
        current: int64 (V, P) current values.
        requested: float64 (V, P) proposed values (read only where ``has_request``).
        has_request: bool (V, P), which parameters each proposal touches.
        delta_limit_pct: float, the per-update limit in percent of the current value (5..100).
        lo, hi: int64 (P,) hard bounds.
        applied: int64 (V, P) output, the new values.
        clamped: bool (V, P) output, the applied value differs from the rounded request.
        at_max: bool (V, P) output, the parameter moved by the full allowed delta.
    """
    n_var, n_par = current.shape
    for v in range(n_var):
        for i in range(n_par):
            c = current[v, i]
            if not has_request[v, i]:
                applied[v, i] = c
                clamped[v, i] = False
                at_max[v, i] = False
                continue
            cf = float(c)
            max_delta = delta_window(cf, delta_limit_pct)
            low = cf - max_delta
            high = cf + max_delta
            req = requested[v, i]
            x = req
            if x < low:
                x = low
            elif x > high:
                x = high
            a = int(round_half_away(x))
            if a < lo[i]:
                a = lo[i]
            elif a > hi[i]:
                a = hi[i]
            af = float(a)
            applied[v, i] = a
            clamped[v, i] = af != round_half_away(req)
            at_max[v, i] = af >= round_half_away(high) or af <= round_half_away(low)


# ==================================================================================================
# Metric statistics: Welch's t-test, Fisher's exact test, Cohen's d
# ==================================================================================================
# Numba kernels of the metric statistics: Welch's t-test, Fisher's exact test, Cohen's d.
#
# The NumPy twins in ``reference`` agree to 1e-12 relative.  Conventions shared by every test:
#
# * Variant "1" is the treatment, variant "2" the control; differences are treatment minus control.
# * Tests are two-sided at 95% (alpha = 0.05); variances are sample variances (ddof=1).
# * Undefined results are NaN, never an exception: kernels run inside the environment step.
# * Inputs are not validated (counts must be non-negative integers with successes <= trials, and
#   ``out`` buffers must be long enough); callers validate once, outside the hot loop.
#
# Special functions are implemented here (no SciPy at run time):
#
# * The Student t tail ``P(|T| >= |t|) = I_{df/(df+t^2)}(df/2, 1/2)`` evaluates the classical
#   continued fraction of the regularized incomplete beta (with ``lgamma`` from :mod:`math` in the
#   prefactor) in the form ``BFRAC`` of TOMS 708 (Didonato & Morris 1992): forward recurrence of the
#   convergents with rescaling, written in terms of ``y = 1 - x`` and ``lambda = a - (a + b) x`` as
#   computed from ``t^2`` without cancellation.  The textbook form (modified Lentz on the same
#   fraction in ``x``) loses about ``df * 1e-16`` relative accuracy to the rounding of ``x``
#   (4e-10 at ``df = 1e7``); this one keeps ~1e-14 for ``df`` up to 1e12.
# * The 97.5% t quantile solves ``P(|T| >= t) = 0.05`` with Newton steps in ``log t`` started from
#   the Cornish-Fisher expansion (Abramowitz & Stegun 26.7.5); two to five steps reach full precision,
#   and for ``df >= 1000`` the expansion alone is already exact to ~1e-16 (its error is O(df^-5)).
# * Fisher's two-sided p-value walks the hypergeometric pmf outward from the mode with the ratio
#   recurrence, so its cost is O(sqrt(n)) terms, not O(n) lgamma calls.
# Columns of the ``out`` array of :func:`compare_to_control`.
T_DIFF = 0  # treatment mean - control mean
T_CI_LO = 1  # 95% CI of the difference (Welch)
T_CI_HI = 2
T_STAT = 3  # Welch t statistic
T_DF = 4  # Welch-Satterthwaite degrees of freedom
T_P_WELCH = 5  # two-sided p of Welch's t-test
T_OR = 6  # sample odds ratio (binary metrics only)
T_OR_LO = 7  # 95% CI of the odds ratio (Woolf)
T_OR_HI = 8
T_P_FISHER = 9  # two-sided p of Fisher's exact test (binary metrics only)
T_COHEN_D = 10  # Cohen's d
N_TEST_FIELDS = 11

_Z975 = 1.959963984540054  # standard normal 97.5% quantile
_LOG_ALPHA = math.log(0.05)
_LGAMMA_HALF = 0.5723649429247001  # lgamma(1/2) = log(sqrt(pi))
_CF_EPS = 1e-15  # relative convergence of the continued fraction
_CF_MAXIT = 2000  # never reached: at most ~160 iterations for df in [1e-2, 1e12]
_NEWTON_MAXIT = 50
_SERIES_MIN_DF = 1000.0  # from here on the Cornish-Fisher series alone is exact to ~1e-16 (O(df^-5))
_FISHER_REL = 1.0 + 1e-14  # tables with pmf <= pmf(observed) * (1 + 1e-14) are "as extreme" (SciPy)
_FISHER_SCALE = 2.0**960  # pmf(mode) in the walk; keeps pmf(mode) * 1e-330 a normal float
_FISHER_NEGLIGIBLE = 1e-17  # stop a walk when its terms fall below this fraction of the p sum
_FISHER_LOG_FLOOR = -800.0  # log(pmf(x) / pmf(mode)) below this: p rounds to 0.0 in float64


# --------------------------------------------------------------------------- Student t


@jit
def _stirling_tail(x):
    """``lgamma(x) - ((x - 1/2) log x - x + log(2 pi) / 2)`` for ``x >= 20`` (error < 1e-17)."""
    x2 = 1.0 / (x * x)
    series = 1.0 / 1260.0 - x2 * (1.0 / 1680.0 - x2 / 1188.0)
    return (1.0 / 12.0 - x2 * (1.0 / 360.0 - x2 * series)) / x


@jit
def _lgamma_ratio_half(a):
    """``lgamma(a + 1/2) - lgamma(a)``, without the cancellation of the difference for large ``a``."""
    if a < 20.0:
        return math.lgamma(a + 0.5) - math.lgamma(a)
    return (
        (a - 0.5) * math.log1p(0.5 / a)
        + 0.5 * math.log(a + 0.5)
        - 0.5
        + _stirling_tail(a + 0.5)
        - _stirling_tail(a)
    )


@jit
def _bfrac(a, b, x, y, lam):
    """Continued fraction ``r`` with ``I_x(a, b) = x^a y^b / B(a, b) * r`` (TOMS 708 ``BFRAC``).

    ``y = 1 - x`` and ``lam = a - (a + b) x >= 0`` are passed separately, computed without
    cancellation by the caller.
    """
    c = 1.0 + lam
    c0 = b / a
    c1 = 1.0 + 1.0 / a
    yp1 = y + 1.0
    n = 0.0
    p = 1.0
    s = a + 1.0
    an = 0.0
    bn = 1.0
    anp1 = 1.0
    bnp1 = c / c1
    r = c1 / c
    for _ in range(_CF_MAXIT):
        n += 1.0
        t = n / a
        w = n * (b - n) * x
        e = a / s
        alpha = (p * (p + c0) * e * e) * (w * x)
        e = (1.0 + t) / (c1 + t + t)
        beta = n + w / s + e * (c + n * yp1)
        p = 1.0 + t
        s += 2.0
        t = alpha * an + beta * anp1
        an = anp1
        anp1 = t
        t = alpha * bn + beta * bnp1
        bn = bnp1
        bnp1 = t
        r0 = r
        r = anp1 / bnp1
        if abs(r - r0) <= _CF_EPS * r:
            break
        an /= bnp1  # rescale to avoid overflow
        bn /= bnp1
        anp1 = r
        bnp1 = 1.0
    return r


@jit
def _student_p(t2, df):
    """Two-sided Student t p-value and density term from ``t2 = t^2``.

    Returns ``(p, g)`` with ``p = P(|T| >= |t|) = I_x(df/2, 1/2)``, ``x = df / (df + t^2)``, and
    ``g = x^(df/2) (1-x)^(1/2) / B(df/2, 1/2) = |t| * pdf(t)`` (used by the quantile's Newton step).
    """
    if t2 != t2 or df != df:
        return np.nan, np.nan
    if t2 == 0.0:
        return 1.0, 0.0
    if t2 == math.inf:
        return 0.0, 0.0
    a = 0.5 * df
    x = df / (df + t2)
    y = t2 / (df + t2)
    if y == 0.0:  # t^2 negligible next to df (subnormal): the limit p = 1, g = 0, without log(0)
        return 1.0, 0.0
    g = math.exp(-a * math.log1p(t2 / df) + 0.5 * math.log(y) - _LGAMMA_HALF + _lgamma_ratio_half(a))
    if t2 >= 1.0:  # lambda = a - (a + 1/2) x >= 0: the tail directly, accurate for tiny p
        if g == 0.0:
            return 0.0, 0.0
        return g * _bfrac(a, 0.5, x, y, (a + 0.5) * y - 0.5), g
    return 1.0 - g * _bfrac(0.5, a, y, x, 0.5 - (a + 0.5) * y), g


@jit
def _student_q975(df):
    """97.5% quantile of Student's t with ``df > 0`` degrees of freedom (NaN otherwise)."""
    if not df > 0.0:
        return np.nan
    z2 = _Z975 * _Z975
    g1 = (z2 + 1.0) * _Z975 / 4.0
    g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * _Z975 / 96.0
    g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * _Z975 / 384.0
    g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * _Z975 / 92160.0
    t = _Z975 + (g1 + (g2 + (g3 + g4 / df) / df) / df) / df
    if df >= _SERIES_MIN_DF:
        return t
    for _ in range(_NEWTON_MAXIT):
        # Newton on log p(t) = log 0.05 in u = log t:  d log p / du = -2 t pdf(t) / p = -2 g / p.
        p, g = _student_p(t * t, df)
        du = min(max((math.log(p) - _LOG_ALPHA) * p / (2.0 * g), -1.0), 1.0)
        t *= math.exp(du)
        if abs(du) < 1e-14:
            break
    return t


@jit
def welch_test(m1, v1, n1, m2, v2, n2, out):
    """Welch's unequal-variance t-test of treatment (1) against control (2) (Welch 1947).

    With ``se = sqrt(v1/n1 + v2/n2)`` (sample variances, ddof=1) writes into ``out`` (float64,
    length >= 6):

    * ``out[0] = diff = m1 - m2``
    * ``out[1], out[2] = diff -/+ t_{0.975, df} * se`` (95% confidence interval of the difference)
    * ``out[3] = t = diff / se``
    * ``out[4] = df = se^4 / ((v1/n1)^2 / (n1-1) + (v2/n2)^2 / (n2-1))`` (Welch-Satterthwaite)
    * ``out[5] = p = P(|T_df| >= |t|) = I_{df/(df+t^2)}(df/2, 1/2)`` (two-sided)

    When ``n1 < 2``, ``n2 < 2`` or ``se`` is not positive and finite (e.g. both variances 0),
    ``out[1..5]`` are NaN and ``out[0]`` is still the difference.  Matches
    ``scipy.stats.ttest_ind_from_stats(m1, sqrt(v1), n1, m2, sqrt(v2), n2, equal_var=False)`` and
    ``scipy.stats.t.ppf(0.975, df)`` to ~1e-13 relative, for p down to ~1e-300 and df up to 1e12.
    """
    diff = m1 - m2
    out[0] = diff
    se2 = v1 / n1 + v2 / n2 if n1 >= 2 and n2 >= 2 else np.nan
    se = math.sqrt(se2) if se2 >= 0.0 else np.nan
    if not (se > 0.0 and se < np.inf):
        for i in range(1, 6):
            out[i] = np.nan
        return
    vn1 = v1 / n1
    vn2 = v2 / n2
    w1 = vn1 / se2
    w2 = vn2 / se2
    df = 1.0 / (w1 * w1 / (n1 - 1.0) + w2 * w2 / (n2 - 1.0))
    t = diff / se
    half = _student_q975(df) * se
    out[1] = diff - half
    out[2] = diff + half
    out[3] = t
    out[4] = df
    out[5] = _student_p(t * t, df)[0]


# --------------------------------------------------------------------------- Fisher


@jit
def _log_ratio_to_mode(k, mode, n1, n2, n):
    """``log(pmf(k) / pmf(mode))`` of the hypergeometric law of the top-left cell (via lgamma)."""
    r = n2 - n
    return (
        math.lgamma(mode + 1.0)
        + math.lgamma(n1 - mode + 1.0)
        + math.lgamma(n - mode + 1.0)
        + math.lgamma(r + mode + 1.0)
        - math.lgamma(k + 1.0)
        - math.lgamma(n1 - k + 1.0)
        - math.lgamma(n - k + 1.0)
        - math.lgamma(r + k + 1.0)
    )


@jit
def _up(k, f1, fn, f0):
    """``pmf(k + 1) / pmf(k)``; ``f1, fn, f0`` = row-1 total, column-1 total, row-2 minus column-1."""
    return ((f1 - k) * (fn - k)) / ((k + 1.0) * (f0 + k + 1.0))


@jit
def _down(k, f1, fn, f0):
    """``pmf(k - 1) / pmf(k)`` (see :func:`_up`)."""
    return (k * (f0 + k)) / ((f1 - k + 1.0) * (fn - k + 1.0))


@jit
def _fisher_p(a, b, c, d):
    """Two-sided p of Fisher's exact test of ``[[a, b], [c, d]]`` (see :func:`fisher_test`).

    ``p = sum(w[k] for w[k] <= w[a] * (1 + 1e-14)) / sum(w)`` with ``w[k] = pmf(k) / pmf(mode) *
    2^960`` computed by the ratio recurrence outward from the mode; each walk stops once its terms
    are below 1e-17 of the included sum, so about 9 standard deviations of the law are visited.
    """
    n1 = a + b
    n2 = c + d
    n = a + c
    lo = max(0, n - n2)
    hi = min(n, n1)
    mode = (n + 1) * (n1 + 1) // (n1 + n2 + 2)
    if _log_ratio_to_mode(a, mode, n1, n2, n) < _FISHER_LOG_FLOOR:
        return 0.0  # p <= (n + 1) * e^-800 < 2^-1075: 0.0 is the correctly rounded result
    f1 = float(n1)
    fn = float(n)
    f0 = float(n2 - n)
    wx = _FISHER_SCALE
    for k in range(mode, a):
        wx *= _up(float(k), f1, fn, f0)
    for k in range(mode, a, -1):
        wx *= _down(float(k), f1, fn, f0)
    thr = wx * _FISHER_REL
    if thr >= _FISHER_SCALE:
        return 1.0  # the observed table is (tied with) the most likely one
    total = _FISHER_SCALE
    tail = 0.0
    w = _FISHER_SCALE
    for k in range(mode, hi):
        w *= _up(float(k), f1, fn, f0)
        total += w
        if w <= thr:
            tail += w
            if w < _FISHER_NEGLIGIBLE * tail:
                break
    w = _FISHER_SCALE
    for k in range(mode, lo, -1):
        w *= _down(float(k), f1, fn, f0)
        total += w
        if w <= thr:
            tail += w
            if w < _FISHER_NEGLIGIBLE * tail:
                break
    return min(tail / total, 1.0)


@jit
def fisher_test(a, b, c, d, out):
    """Fisher's exact test and odds ratio of the 2x2 table ``[[a, b], [c, d]]``.

    ``a, b`` are treatment successes and failures, ``c, d`` control successes and failures
    (non-negative integers).  Writes into ``out`` (float64, length >= 4):

    * ``out[0]``: sample odds ratio ``(a d) / (b c)`` as in ``scipy.stats.fisher_exact``: ``inf``
      when ``b c == 0 < a d``, NaN when ``a d == b c == 0`` (i.e. a row or column total is 0).
    * ``out[1], out[2]``: 95% CI of the odds ratio by Woolf's (1955) log method,
      ``exp(log OR -/+ 1.959963984540054 * sqrt(1/a + 1/b + 1/c + 1/d))``.  When any cell is 0,
      0.5 is added to every cell for the CI (Haldane 1956; Anscombe 1956), so the CI is finite but
      centred on the corrected odds ratio, not on ``out[0]``.  NaN when a row or column total is 0.
    * ``out[3]``: exact two-sided p-value, the sum of the hypergeometric pmf (margins fixed) over
      the tables with ``pmf <= pmf(observed) * (1 + 1e-14)``, SciPy's rule (checked with 1.17; R's
      ``fisher.test`` and older SciPy use ``1 + 1e-7``, which counts near-ties too: 2 of 20000
      random A/A tables of 1e3..3e5 trials then differ from SciPy 1.17, by up to 0.01).  Exact
      ties (symmetric margins) are kept: both tables' pmf come from the same products, bit for
      bit.  1.0 when a margin is 0; clamped to [0, 1]; 0.0 when the true p is below ~1e-320.
      Agrees with ``scipy.stats.fisher_exact([[a, b], [c, d]]).pvalue`` to 1e-9 absolute (it is
      exact to ~1e-14 relative; SciPy's own error reaches 1e-10 at 1e5..1e6 per cell).

    Cost: O(sqrt(n)) multiplications: 9-14 microseconds at 250000 per cell for 1e-4 < p < 1,
    ~25 at p ~ 1e-44, under 1 when p is 1 or underflows.
    """
    n1 = a + b
    n2 = c + d
    if n1 == 0 or n2 == 0 or a + c == 0 or b + d == 0:
        out[0] = np.nan
        out[1] = np.nan
        out[2] = np.nan
        out[3] = 1.0
        return
    fa = float(a)
    fb = float(b)
    fc = float(c)
    fd = float(d)
    out[0] = (fa * fd) / (fb * fc) if b > 0 and c > 0 else np.inf
    if a == 0 or b == 0 or c == 0 or d == 0:
        fa += 0.5
        fb += 0.5
        fc += 0.5
        fd += 0.5
    log_or = math.log(fa) + math.log(fd) - math.log(fb) - math.log(fc)
    half = _Z975 * math.sqrt(1.0 / fa + 1.0 / fb + 1.0 / fc + 1.0 / fd)
    out[1] = math.exp(log_or - half)
    out[2] = math.exp(log_or + half)
    out[3] = _fisher_p(a, b, c, d)


# --------------------------------------------------------------------------- effect size, batch


@jit
def cohens_d(m1, v1, n1, m2, v2, n2):
    """Cohen's d (Cohen 1988): ``(m1 - m2) / s`` with the pooled standard deviation
    ``s = sqrt(((n1-1) v1 + (n2-1) v2) / (n1 + n2 - 2))``.

    NaN when ``n1 + n2 <= 2``, when a group is empty (``n1 < 1`` or ``n2 < 1``) or when ``s`` is 0
    (or NaN).  A group of one contributes no within-group variance: its ``(n-1) v`` term is taken
    as 0 whatever ``v`` is (its sample variance is undefined, e.g. NaN).
    """
    if n1 < 1 or n2 < 1 or n1 + n2 <= 2:
        return np.nan
    ss = 0.0
    if n1 > 1:
        ss += (n1 - 1.0) * v1
    if n2 > 1:
        ss += (n2 - 1.0) * v2
    s = math.sqrt(ss / (n1 + n2 - 2.0)) if ss >= 0.0 else np.nan
    if not s > 0.0:
        return np.nan
    return (m1 - m2) / s


@jit
def compare_to_control(mean, var, n, succ, trials, is_binary, out):
    """Compare every variant with the control (row 0) on every metric, in place.

    Args:
        mean, var: float64 (V, M) per-variant sample means and variances (ddof=1) of each metric.
        n: int64 (V, M) sample sizes.
        succ, trials: int64 (V, M) success and trial counts (read only for binary metrics).
        is_binary: bool (M,), which metrics are binary (conversion-like).
        out: float64 (V, M, N_TEST_FIELDS) output, columns ``T_*``:

            * ``T_DIFF .. T_P_WELCH`` (0..5): :func:`welch_test` of row v against row 0.
            * ``T_OR, T_OR_LO, T_OR_HI, T_P_FISHER`` (6..9): :func:`fisher_test` of
              ``[[succ[v], trials[v] - succ[v]], [succ[0], trials[0] - succ[0]]]`` for binary
              metrics, NaN for the others.
            * ``T_COHEN_D`` (10): :func:`cohens_d`.

    Row 0 (the control against itself) is all NaN.
    """
    n_var, n_met = mean.shape
    out[0, :, :] = np.nan
    for v in range(1, n_var):
        for m in range(n_met):
            o = out[v, m]
            welch_test(mean[v, m], var[v, m], n[v, m], mean[0, m], var[0, m], n[0, m], o)
            if is_binary[m]:
                s1 = succ[v, m]
                s0 = succ[0, m]
                fisher_test(s1, trials[v, m] - s1, s0, trials[0, m] - s0, o[T_OR:])
            else:
                for i in range(T_OR, T_P_FISHER + 1):
                    o[i] = np.nan
            o[T_COHEN_D] = cohens_d(mean[v, m], var[v, m], n[v, m], mean[0, m], var[0, m], n[0, m])
