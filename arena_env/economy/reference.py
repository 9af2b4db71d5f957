"""NumPy twins of :mod:`arena_env.economy.kernels`: same names, same signatures, same results.

These are the slow, obvious versions: whole-population array expressions instead of a loop over
users.  ``backend="numpy"`` runs the environment on them, and the tests compare them with the Numba
kernels (integers exactly, floats to 1e-9).  Sums are accumulated with ``np.bincount`` in user order
inside each chunk, as the kernel does, so even the float aggregates agree bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from agents import rules
from arena_env.rng import uniform_np, uniform_pair_np

from .kernels import (  # noqa: F401  (the twins share the kernels' constants)
    A_ACTIVE, A_ACTIVE7, A_CHURNED, A_CHURNED_TODAY, A_ENROLLED, A_FEEDBACK, A_ISSUES, A_M_DONE,
    A_M_FAILED, A_M_REACHED, A_NEW, A_PHOTOS, A_SCANS, A_STATUS, A_STREAK_SQ, A_STREAK_SUM, A_XP_FEEDBACK,
    A_XP_FIRST, A_XP_ISSUE, A_XP_MISSION, A_XP_PHOTO, A_XP_SCAN, A_XP_STATUS, A_XP_STREAK, FLAG_CHURNED,
    A_USEFUL_FB, A_USEFUL_SCANS, A_XP_BUDGET, SG_BETA_SB, SG_USEFUL_FB, SG_USEFUL_SCANS, SITE_GROUP,
    F_CHURN_RISK, F_SAT_SUM, F_SCAN_SQ, F_SCAN_SUM, F_XP_SQ, F_XP_SUM, GL_ALPHA, GL_GAIN_CLIP, GL_INFLATION,
    GL_MISSION_MIN_RATE, GL_MISSION_PERIOD, GL_MISSION_STRETCH, GL_MISSION_XP, GL_RANK, GL_RHO_SAT,
    GL_WEEKDAY, GL_XP_UNIT, N_TEST_FIELDS, P_FB_CAP, P_FEEDBACK, P_FIRST, P_ISSUE, P_PHOTO, P_SCAN,
    P_SCAN_CAP, P_STATUS, P_STREAK_CAP, P_STREAK_DAY, SG_BASE, SG_BETA_REF, SG_BETA_SAT, SG_BETA_STREAK,
    SG_BETA_XP, SG_CHURN_BASE, SG_CHURN_IDLE, SG_CHURN_SAT, SG_CHURN_STREAK, SG_LOSS_AVERSION,
    SG_RHO_REF, SG_SAT_BASE, SG_SAT_RANK, SG_SAT_REF, SG_SAT_XP, SITE_N, SITE_SQ, SITE_SUM, S_ACTIVE,
    S_CHURN, S_ISSUE, S_PHOTO, S_SCANS, T_CI_HI, T_CI_LO, T_COHEN_D, T_DF, T_DIFF,
    T_OR, T_OR_HI, T_OR_LO, T_P_FISHER, T_P_WELCH, T_STAT, VS_ANTICIPATED, VS_FB_LOGIT, VS_ISSUE_EXPNEG,
    VS_ISSUE_LAM, VS_PHOTO_P, VS_SCAN_EXPNEG, VS_SCAN_LAM, VS_STATUS_EXPNEG, VS_STATUS_LAM, _CF_EPS,
    _CF_MAXIT, _FISHER_LOG_FLOOR, _FISHER_REL, _FISHER_SCALE, _LGAMMA_HALF, _LOG_ALPHA, _NEWTON_MAXIT,
    _SERIES_MIN_DF, _Z975,
)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _bernoulli_logit(u, x):
    return u * (1.0 + np.exp(-x)) < 1.0  # the kernel's shortcut gives the same answer (see there)


def _s_curve(x):
    return 0.5 + 0.5 * x / (1.0 + np.abs(x))


def _poisson(lam, expneg, u):
    """Vectorised twin of the kernel's inverse-transform Poisson draw (same operations, same order)."""
    lam = np.asarray(lam, dtype=np.float64)
    k = np.zeros(lam.shape, dtype=np.int64)
    p = np.array(expneg, dtype=np.float64, copy=True)
    f = p.copy()
    go = (lam > 0.0) & (u > f)
    while go.any():
        k[go] += 1
        p[go] *= lam[go] / k[go]
        f[go] += p[go]
        go &= (u > f) & (k < 255)
    k[lam <= 0.0] = 0
    return k


def _binomial(n, p, u):
    """Vectorised twin of the kernel's inverse-transform Binomial draw (same operations, same order)."""
    n = np.asarray(n, dtype=np.int64)
    p = np.broadcast_to(np.asarray(p, dtype=np.float64), n.shape)
    q = 1.0 - p
    pk = np.ones(n.shape)
    base = q.copy()
    e = n.copy()
    while (e > 0).any():
        odd = (e & 1) == 1
        pk[odd] *= base[odd]
        base = base * base
        e >>= 1
    with np.errstate(divide="ignore", invalid="ignore"):
        r = p / q
    f = pk.copy()
    k = np.zeros(n.shape, dtype=np.int64)
    go = (n > 0) & (p > 0.0) & (p < 1.0) & (u > f)
    while go.any():
        pk[go] *= r[go] * (n[go] - k[go]) / (k[go] + 1)
        k[go] += 1
        f[go] += pk[go]
        go &= (u > f) & (k < n)
    k = np.where(p >= 1.0, n, k)
    return np.where((n <= 0) | (p <= 0.0), 0, k)


def _ema_rate(age, alpha_w):
    """Twin of the kernels' ``_ema_rate``: ``1 / (age + 1)`` while that is larger, then ``alpha_w``."""
    return np.where((age + 1.0) * alpha_w < 1.0, 1.0 / (age + 1.0), alpha_w)


def step_population(
    day, seed, site_size, sites_per_chunk,
    variant, segment, enroll_day, last_active, streak, flags, act7, m_target, m_progress,
    cum_xp, xp_today, ref_xp, sat, scan_ema, xp_ema, trait, fb_trait,
    cfg, pscale, vs_tab, sg_tab, glob, novelty, habituation, onboarding, log1p_tab,
    site_prev, site_next, agg_i, agg_f,
):
    """NumPy twin of :func:`arena_env.economy.kernels.step_population`."""
    n_chunks, n_var = agg_i.shape[0], agg_i.shape[1]
    n_nov = novelty.shape[1]
    n_log = log1p_tab.shape[0]
    period = int(glob[GL_MISSION_PERIOD])

    uid = np.nonzero(enroll_day <= day)[0]
    v = variant[uid].astype(np.int64)
    g = segment[uid].astype(np.int64)
    site = uid // site_size
    key = (site // sites_per_chunk) * n_var + v
    age = day - enroll_day[uid].astype(np.int64)
    alpha = _ema_rate(age, glob[GL_ALPHA])
    churned = (flags[uid] & FLAG_CHURNED) != 0
    alive_mask = ~churned

    n = uid.shape[0]
    scans = np.zeros(n, dtype=np.int64)
    fb = np.zeros(n, dtype=np.int64)
    photos = np.zeros(n, dtype=np.int64)
    issues = np.zeros(n, dtype=np.int64)
    status = np.zeros(n, dtype=np.int64)
    xp = np.zeros(n, dtype=np.int64)
    m_done = np.zeros(n, dtype=np.int64)
    m_reached = np.zeros(n, dtype=np.int64)
    m_failed = np.zeros(n, dtype=np.int64)
    churn_today = np.zeros(n, dtype=np.int64)
    sat_contrib = np.zeros(n, dtype=np.float64)
    parts = {c: np.zeros(n, dtype=np.int64) for c in (A_XP_SCAN, A_XP_FIRST, A_XP_STREAK, A_XP_FEEDBACK,
                                                     A_XP_PHOTO, A_XP_ISSUE, A_XP_STATUS, A_XP_MISSION)}
    active = np.zeros(n, dtype=bool)

    # churned users: the streak is gone, the activity window drains
    cu = uid[churned]
    streak[cu] = 0
    act7[cu] = (act7[cu].astype(np.int64) << 1) & 0x7F

    a = np.nonzero(alive_mask)[0]  # positions within uid
    au = uid[a]
    av, ag, aage = v[a], g[a], age[a]
    cv = cfg[av]
    vt = vs_tab[av, ag]
    sg = sg_tab[ag]

    # missions
    due = (aage % period) == 0
    resolve = due & (aage > 0)
    open_before = m_target[au] > 0
    m_failed[a[resolve & open_before]] += 1
    m_done[a[resolve & ~open_before]] += 1
    rate = np.maximum(scan_ema[au].astype(np.float64), glob[GL_MISSION_MIN_RATE])
    tgt = np.clip(np.floor(glob[GL_MISSION_STRETCH] * rate * period + 0.5), 1, 250)
    m_target[au[due]] = tgt[due].astype(np.uint8)
    m_progress[au[due]] = 0

    alive_streak = np.where(last_active[au] == day - 1, streak[au].astype(np.int64), 0)
    sb_next = np.minimum(cv[:, P_STREAK_DAY] * (alive_streak + 1), cv[:, P_STREAK_CAP])
    sb_first = (np.minimum(cfg[:, P_STREAK_DAY], cfg[:, P_STREAK_CAP]) * pscale)[av]
    anticipated = vt[:, VS_ANTICIPATED] + sb_first
    deflate = (1.0 / glob[GL_XP_UNIT]) / (1.0 + cum_xp[au] * (1.0 / glob[GL_INFLATION]))
    perceived = np.log(1.0 + anticipated * deflate)
    xs = (sb_next * pscale[av] - sb_first) * deflate
    streak_value = xs / (1.0 + xs)
    xs = cv[:, P_FIRST] * pscale[av] * deflate
    first_value = xs / (1.0 + xs)
    ref = ref_xp[au].astype(np.float64)
    ref = np.where(ref < 0.0, anticipated, ref)
    gain = (anticipated - ref) / np.where(ref > 1.0, ref, 1.0)
    gain = np.where(gain < 0.0, gain * sg[:, SG_LOSS_AVERSION], gain)
    gain = np.clip(gain, -glob[GL_GAIN_CLIP], glob[GL_GAIN_CLIP])

    # site standing per group: the control's users rank among the control's, treatments among treatments
    asite = site[a]
    aoff = np.where(av == 0, 0, SITE_GROUP)
    s_n = site_prev[asite, aoff + SITE_N]
    with np.errstate(invalid="ignore", divide="ignore"):
        s_mean = np.where(s_n >= 2.0, site_prev[asite, aoff + SITE_SUM] / np.maximum(s_n, 1.0), 0.0)
        s_var = site_prev[asite, aoff + SITE_SQ] / np.maximum(s_n, 1.0) - s_mean * s_mean
        inv = np.where((s_n >= 2.0) & (s_var > 1e-12), 1.0 / np.sqrt(np.maximum(s_var, 1e-300)), 0.0)
    pct = np.where(inv > 0.0, _s_curve(2.0 * (xp_ema[au] - s_mean) * inv), 0.5)

    ia = np.minimum(alive_streak, n_log - 1)
    inov = np.minimum(aage, n_nov - 1)
    z = (
        sg[:, SG_BASE] + trait[au] + sg[:, SG_BETA_XP] * habituation[ag, np.minimum(aage, n_nov - 1)] * perceived
        + sg[:, SG_BETA_SB] * streak_value + onboarding[ag, np.minimum(aage, n_nov - 1)] * first_value
        + sg[:, SG_BETA_REF] * gain
        + sg[:, SG_BETA_STREAK] * log1p_tab[ia] + novelty[ag, inov] + glob[GL_WEEKDAY]
        + glob[GL_RANK] * (pct - 0.5) + sg[:, SG_BETA_SAT] * (sat[au].astype(np.float64) - 0.5)
    )
    act = _bernoulli_logit(uniform_np(seed, day, au, S_ACTIVE), z)
    active[a] = act

    # the active users' day
    b = np.nonzero(act)[0]  # positions within a
    bu = au[b]
    bcv, bvt = cv[b], vt[b]
    u_scan, u_fb = uniform_pair_np(seed, day, bu, S_SCANS)
    nsc = 1 + _poisson(bvt[:, VS_SCAN_LAM], bvt[:, VS_SCAN_EXPNEG], u_scan)
    sc = np.minimum(nsc, bcv[:, P_SCAN_CAP].astype(np.int64))
    q_f = _sigmoid(fb_trait[bu] + bvt[:, VS_FB_LOGIT])
    f = _binomial(sc, q_f, u_fb)
    f = np.minimum(f, bcv[:, P_FB_CAP].astype(np.int64))
    ph = _binomial(f, bvt[:, VS_PHOTO_P], uniform_np(seed, day, bu, S_PHOTO))
    u_issue, u_status = uniform_pair_np(seed, day, bu, S_ISSUE)
    iss = _poisson(bvt[:, VS_ISSUE_LAM], bvt[:, VS_ISSUE_EXPNEG], u_issue)
    sts = _poisson(bvt[:, VS_STATUS_LAM], bvt[:, VS_STATUS_EXPNEG], u_status)
    st = alive_streak[b] + 1
    sb = np.minimum(bcv[:, P_STREAK_DAY].astype(np.int64) * st, bcv[:, P_STREAK_CAP].astype(np.int64))
    x_scan = bcv[:, P_SCAN].astype(np.int64) * sc
    x_first = bcv[:, P_FIRST].astype(np.int64)
    x_fb = bcv[:, P_FEEDBACK].astype(np.int64) * f
    x_photo = bcv[:, P_PHOTO].astype(np.int64) * ph
    x_issue = bcv[:, P_ISSUE].astype(np.int64) * iss
    x_status = bcv[:, P_STATUS].astype(np.int64) * sts
    open_m = m_target[bu].astype(np.int64)
    prog = m_progress[bu].astype(np.int64) + sc
    done = (open_m > 0) & (prog >= open_m)
    x_mission = np.where(done, int(glob[GL_MISSION_XP]), 0)
    m_target[bu[done]] = 0
    prog = np.where(done, 0, prog)
    has_open = open_m > 0
    m_progress[bu[has_open]] = np.minimum(prog[has_open], 255)
    bx = x_scan + x_first + sb + x_fb + x_photo + x_issue + x_status + x_mission
    useful_sc = np.minimum(sc, sg_tab[ag[b], SG_USEFUL_SCANS].astype(np.int64))
    useful_fb = np.minimum(f, sg_tab[ag[b], SG_USEFUL_FB].astype(np.int64))

    pos = a[b]  # positions within uid
    scans[pos], fb[pos], photos[pos], issues[pos], status[pos], xp[pos] = sc, f, ph, iss, sts, bx
    m_reached[pos] = done
    useful_scans = np.zeros(n, dtype=np.int64)
    useful_feedback = np.zeros(n, dtype=np.int64)
    useful_scans[pos], useful_feedback[pos] = useful_sc, useful_fb
    for col, val in ((A_XP_SCAN, x_scan), (A_XP_FIRST, x_first), (A_XP_STREAK, sb), (A_XP_FEEDBACK, x_fb),
                     (A_XP_PHOTO, x_photo), (A_XP_ISSUE, x_issue), (A_XP_STATUS, x_status),
                     (A_XP_MISSION, x_mission)):
        parts[col][pos] = val
    streak[bu] = st
    last_active[bu] = day
    act7[bu] = ((act7[bu].astype(np.int64) << 1) | 1) & 0x7F
    nb = au[~act]
    streak[nb] = 0
    act7[nb] = (act7[nb].astype(np.int64) << 1) & 0x7F

    cum_xp[au] += xp[a].astype(np.int32)
    ref_xp[au] = ref + sg[:, SG_RHO_REF] * (anticipated - ref)
    s_old = sat[au].astype(np.float64)
    target = _s_curve(sg[:, SG_SAT_BASE] + sg[:, SG_SAT_REF] * gain + sg[:, SG_SAT_RANK] * (pct - 0.5)
                      + sg[:, SG_SAT_XP] * perceived)
    s_new = s_old + glob[GL_RHO_SAT] * (target - s_old)
    sat[au] = s_new
    sat_contrib[a] = s_new
    idle = np.minimum(day - last_active[au].astype(np.int64), n_log - 1)
    ic = np.minimum(streak[au].astype(np.int64), n_log - 1)
    churn_logit = (sg[:, SG_CHURN_BASE] + sg[:, SG_CHURN_IDLE] * log1p_tab[idle]
                   - sg[:, SG_CHURN_STREAK] * log1p_tab[ic] - sg[:, SG_CHURN_SAT] * (s_new - 0.5))
    risk = np.zeros(n, dtype=np.float64)
    risk[a] = _sigmoid(churn_logit)
    ch = _bernoulli_logit(uniform_np(seed, day, au, S_CHURN), churn_logit)
    flags[au[ch]] |= np.uint8(FLAG_CHURNED)
    still_open = m_target[au[ch]] > 0
    m_failed[a[ch][still_open]] += 1
    m_done[a[ch][~still_open]] += 1
    m_target[au[ch]] = 0
    m_progress[au[ch]] = 0
    churn_today[a[ch]] = 1

    xp_today[uid] = xp
    se = scan_ema[uid] + alpha * (scans - scan_ema[uid])
    xe = xp_ema[uid] + alpha * (xp - xp_ema[uid])
    scan_ema[uid] = se
    xp_ema[uid] = xe
    se = scan_ema[uid].astype(np.float64)
    xe = xp_ema[uid].astype(np.float64)
    cur = streak[uid].astype(np.int64)

    # partial aggregates per (chunk, variant), summed in user order as the kernel does
    size = n_chunks * n_var
    ai = np.zeros((size, agg_i.shape[2]), dtype=np.int64)

    def isum(col, values):
        ai[:, col] = np.bincount(key, weights=values.astype(np.float64), minlength=size).astype(np.int64)

    ai[:, A_ENROLLED] = np.bincount(key, minlength=size)
    ai[:, A_NEW] = np.bincount(key, weights=(age == 0).astype(np.float64), minlength=size).astype(np.int64)
    ai[:, A_CHURNED] = np.bincount(key, weights=(churned | (churn_today > 0)).astype(np.float64), minlength=size)
    ai[:, A_ACTIVE] = np.bincount(key, weights=active.astype(np.float64), minlength=size)
    ai[:, A_ACTIVE7] = np.bincount(key, weights=(act7[uid] != 0).astype(np.float64), minlength=size)
    for col, val in ((A_SCANS, scans), (A_FEEDBACK, fb), (A_PHOTOS, photos), (A_ISSUES, issues),
                     (A_STATUS, status), (A_M_DONE, m_done), (A_M_FAILED, m_failed), (A_M_REACHED, m_reached),
                     (A_CHURNED_TODAY, churn_today), (A_STREAK_SUM, cur), (A_STREAK_SQ, cur * cur),
                     (A_USEFUL_SCANS, useful_scans), (A_USEFUL_FB, useful_feedback), *parts.items()):
        isum(col, val)
    agg_i[:] = ai.reshape(agg_i.shape)

    af = np.zeros((size, agg_f.shape[2]), dtype=np.float64)
    af[:, F_SCAN_SUM] = np.bincount(key, weights=se, minlength=size)
    af[:, F_SCAN_SQ] = np.bincount(key, weights=se * se, minlength=size)
    af[:, F_XP_SUM] = np.bincount(key, weights=xe, minlength=size)
    af[:, F_XP_SQ] = np.bincount(key, weights=xe * xe, minlength=size)
    af[:, F_SAT_SUM] = np.bincount(key, weights=sat_contrib, minlength=size)
    af[:, F_CHURN_RISK] = np.bincount(key, weights=risk, minlength=size)
    agg_f[:] = af.reshape(agg_f.shape)

    _site_sums(site, v, xe, site_next)


def _site_sums(site, v, xe, site_next):
    """Per site and group (control 0..2, treatments 3..5): users, sum and sum of squares of ``xp_ema``."""
    n_sites = site_next.shape[0]
    for off, m in ((0, v == 0), (SITE_GROUP, v != 0)):
        site_next[:, off + SITE_N] = np.bincount(site[m], minlength=n_sites)[:n_sites]
        site_next[:, off + SITE_SUM] = np.bincount(site[m], weights=xe[m], minlength=n_sites)[:n_sites]
        site_next[:, off + SITE_SQ] = np.bincount(site[m], weights=xe[m] * xe[m], minlength=n_sites)[:n_sites]


def pay_out(day, site_size, sites_per_chunk, variant, enroll_day, xp_today, cum_xp, xp_ema, scale, glob,
            site_next, agg_i, agg_f):
    """NumPy twin of :func:`arena_env.economy.kernels.pay_out`."""
    n_chunks, n_var = agg_i.shape[0], agg_i.shape[1]
    uid = np.nonzero(enroll_day <= day)[0]
    v = variant[uid].astype(np.int64)
    site = uid // site_size
    key = (site // sites_per_chunk) * n_var + v
    x = xp_today[uid].astype(np.int64)
    short = (x > 0) & (scale[v] < 1.0)
    su = uid[short]
    kept = np.floor(x[short] * scale[v[short]]).astype(np.int64)
    withheld = x[short] - kept
    cum_xp[su] -= withheld.astype(np.int32)
    xp_today[su] = kept
    xp_ema[su] = xp_ema[su] - _ema_rate(day - enroll_day[su].astype(np.int64), glob[GL_ALPHA]) * withheld
    w = np.zeros(uid.shape[0])
    w[short] = withheld
    size = n_chunks * n_var
    agg_i[:, :, A_XP_BUDGET] -= np.bincount(key, weights=w, minlength=size).astype(np.int64).reshape(n_chunks, n_var)
    xe = xp_ema[uid].astype(np.float64)
    agg_f[:, :, F_XP_SUM] = np.bincount(key, weights=xe, minlength=size).reshape(n_chunks, n_var)
    agg_f[:, :, F_XP_SQ] = np.bincount(key, weights=xe * xe, minlength=size).reshape(n_chunks, n_var)
    _site_sums(site, v, xe, site_next)


# ==================================================================================================
# Guardrail 5: the delta clamp (twin of kernels.clamp_updates)
# ==================================================================================================


round_half_away = np.vectorize(rules.round_half_away, otypes=[np.float64])
"""Element-wise :func:`agents.rules.round_half_away` over arrays (float64)."""


def round_half_away_array(x, out):
    """Twin of :func:`arena_env.economy.kernels.round_half_away_array`."""
    out[:] = round_half_away(x)


def continuous_targets(current, action, delta_limit_pct, out):
    """Twin of :func:`arena_env.economy.kernels.continuous_targets`."""
    out[:] = [rules.continuous_target(c, a, delta_limit_pct) for c, a in zip(current, action)]


def clamp_updates(current, requested, has_request, delta_limit_pct, lo, hi, applied, clamped, at_max):
    """Twin of :func:`arena_env.economy.kernels.clamp_updates`; fills the three outputs.

    A plain Python loop over the scalars that calls the rules of :mod:`agents.rules` directly (the
    kernel calls their compiled copies): it shares the rules with the kernel, not the loop.
    """
    n_var, n_par = np.shape(current)
    for v in range(n_var):
        for i in range(n_par):
            c = int(current[v, i])
            if not has_request[v, i]:  # untouched entries are never read (they may be NaN)
                applied[v, i], clamped[v, i], at_max[v, i] = c, False, False
                continue
            req = float(requested[v, i])
            max_delta = rules.delta_window(float(c), float(delta_limit_pct))
            low, high = c - max_delta, c + max_delta
            a = int(rules.round_half_away(min(max(req, low), high)))
            a = min(max(a, int(lo[i])), int(hi[i]))
            applied[v, i] = a
            clamped[v, i] = a != rules.round_half_away(req)
            at_max[v, i] = a >= rules.round_half_away(high) or a <= rules.round_half_away(low)


# ==================================================================================================
# Metric statistics
# ==================================================================================================
# NumPy twins of ``kernels`` (same names, same signatures, agree to 1e-12 relative).
#
# See ``kernels`` for the formulas, edge-case conventions and references.  The special
# functions (incomplete beta continued fraction, t quantile) are plain-Python transcriptions of the
# kernels; the Fisher p-value is written as its definition over the whole support with NumPy
# (``sum(pmf[pmf <= pmf[a] * (1 + 1e-14)]) / sum(pmf)``), without the kernel's early stopping.
def _stirling_tail(x):
    x2 = 1.0 / (x * x)
    series = 1.0 / 1260.0 - x2 * (1.0 / 1680.0 - x2 / 1188.0)
    return (1.0 / 12.0 - x2 * (1.0 / 360.0 - x2 * series)) / x


def _lgamma_ratio_half(a):
    if a < 20.0:
        return math.lgamma(a + 0.5) - math.lgamma(a)
    return (
        (a - 0.5) * math.log1p(0.5 / a)
        + 0.5 * math.log(a + 0.5)
        - 0.5
        + _stirling_tail(a + 0.5)
        - _stirling_tail(a)
    )


def _bfrac(a, b, x, y, lam):
    c = 1.0 + lam
    c0 = b / a
    c1 = 1.0 + 1.0 / a
    yp1 = y + 1.0
    n = 0.0
    p = 1.0
    s = a + 1.0
    an, bn, anp1, bnp1 = 0.0, 1.0, 1.0, c / c1
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
        an, anp1 = anp1, alpha * an + beta * anp1
        bn, bnp1 = bnp1, alpha * bn + beta * bnp1
        r0 = r
        r = anp1 / bnp1
        if abs(r - r0) <= _CF_EPS * r:
            break
        an, bn, anp1, bnp1 = an / bnp1, bn / bnp1, r, 1.0
    return r


def _student_p(t2, df):
    if math.isnan(t2) or math.isnan(df):
        return math.nan, math.nan
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
    if t2 >= 1.0:
        if g == 0.0:
            return 0.0, 0.0
        return g * _bfrac(a, 0.5, x, y, (a + 0.5) * y - 0.5), g
    return 1.0 - g * _bfrac(0.5, a, y, x, 0.5 - (a + 0.5) * y), g


def _student_q975(df):
    if not df > 0.0:
        return math.nan
    z, z2 = _Z975, _Z975 * _Z975
    g1 = (z2 + 1.0) * z / 4.0
    g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0
    g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0
    g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0
    t = z + (g1 + (g2 + (g3 + g4 / df) / df) / df) / df
    if df >= _SERIES_MIN_DF:
        return t
    for _ in range(_NEWTON_MAXIT):
        p, g = _student_p(t * t, df)
        du = min(max((math.log(p) - _LOG_ALPHA) * p / (2.0 * g), -1.0), 1.0)
        t *= math.exp(du)
        if abs(du) < 1e-14:
            break
    return t


def welch_test(m1, v1, n1, m2, v2, n2, out):
    """Welch's t-test (Welch 1947): ``out[:6] = diff, diff -/+ t_{.975,df} se, diff / se, df, p``
    with ``se = sqrt(v1/n1 + v2/n2)``; ``out[1:6]`` NaN when ``n < 2`` or ``se`` is 0."""
    diff = m1 - m2
    out[0] = diff
    se2 = v1 / n1 + v2 / n2 if n1 >= 2 and n2 >= 2 else math.nan
    se = math.sqrt(se2) if se2 >= 0.0 else math.nan
    if not 0.0 < se < math.inf:
        out[1:6] = math.nan
        return
    w1 = v1 / n1 / se2
    w2 = v2 / n2 / se2
    df = 1.0 / (w1 * w1 / (n1 - 1.0) + w2 * w2 / (n2 - 1.0))
    t = diff / se
    half = _student_q975(df) * se
    out[1:6] = diff - half, diff + half, t, df, _student_p(t * t, df)[0]


def _up(k, f1, fn, f0):
    return ((f1 - k) * (fn - k)) / ((k + 1.0) * (f0 + k + 1.0))  # pmf(k + 1) / pmf(k)


def _down(k, f1, fn, f0):
    return (k * (f0 + k)) / ((f1 - k + 1.0) * (fn - k + 1.0))  # pmf(k - 1) / pmf(k)


def _fisher_p(a, b, c, d):
    n1, n2, n = a + b, c + d, a + c
    lo, hi = max(0, n - n2), min(n, n1)
    mode = (n + 1) * (n1 + 1) // (n1 + n2 + 2)
    r = n2 - n
    log_ratio = sum(math.lgamma(j + 1.0) for j in (mode, n1 - mode, n - mode, r + mode)) - sum(
        math.lgamma(j + 1.0) for j in (a, n1 - a, n - a, r + a)
    )
    if log_ratio < _FISHER_LOG_FLOOR:
        return 0.0
    f1, fn, f0 = float(n1), float(n), float(n2 - n)
    up = _up(np.arange(mode, hi, dtype=np.float64), f1, fn, f0)
    down = _down(np.arange(mode, lo, -1, dtype=np.float64), f1, fn, f0)
    w = np.concatenate(
        (np.cumprod(np.r_[_FISHER_SCALE, down])[:0:-1], np.cumprod(np.r_[_FISHER_SCALE, up]))
    )  # pmf(lo..hi) / pmf(mode) * 2^960
    thr = w[a - lo] * _FISHER_REL
    if thr >= _FISHER_SCALE:
        return 1.0
    return min(w[w <= thr].sum() / w.sum(), 1.0)


def fisher_test(a, b, c, d, out):
    """Fisher's exact test (two-sided p as in scipy) and odds ratio with Woolf's (1955) 95% CI,
    +0.5 on every cell when one is 0 (Haldane 1956): ``out[:4] = ad/bc, or_lo, or_hi, p``;
    ``nan, nan, nan, 1.0`` when a row or column total is 0."""
    a, b, c, d = int(a), int(b), int(c), int(d)
    if a + b == 0 or c + d == 0 or a + c == 0 or b + d == 0:
        out[0:4] = math.nan, math.nan, math.nan, 1.0
        return
    out[0] = (float(a) * float(d)) / (float(b) * float(c)) if b > 0 and c > 0 else math.inf
    cells = np.array([a, b, c, d], dtype=np.float64)
    if (cells == 0).any():
        cells += 0.5
    fa, fb, fc, fd = cells
    log_or = math.log(fa) + math.log(fd) - math.log(fb) - math.log(fc)
    half = _Z975 * math.sqrt(1.0 / fa + 1.0 / fb + 1.0 / fc + 1.0 / fd)
    out[1:4] = math.exp(log_or - half), math.exp(log_or + half), _fisher_p(a, b, c, d)


def cohens_d(m1, v1, n1, m2, v2, n2):
    """Cohen's d (Cohen 1988), ``(m1 - m2) / sqrt(((n1-1) v1 + (n2-1) v2) / (n1 + n2 - 2))``;
    NaN for an empty group, ``n1 + n2 <= 2`` or a pooled sd of 0; groups of one add no variance."""
    if n1 < 1 or n2 < 1 or n1 + n2 <= 2:
        return math.nan
    ss = (n1 - 1.0) * v1 if n1 > 1 else 0.0
    ss += (n2 - 1.0) * v2 if n2 > 1 else 0.0
    s = math.sqrt(ss / (n1 + n2 - 2.0)) if ss >= 0.0 else math.nan
    return (m1 - m2) / s if s > 0.0 else math.nan


def compare_to_control(mean, var, n, succ, trials, is_binary, out):
    """Every row of (V, M) statistics against row 0 into ``out`` (V, M, N_TEST_FIELDS), columns
    ``T_*``: Welch, then Fisher (binary metrics, else NaN), then Cohen's d; row 0 is NaN."""
    out[0] = math.nan
    for v in range(1, mean.shape[0]):
        for m in range(mean.shape[1]):
            o = out[v, m]
            args = (mean[v, m], var[v, m], n[v, m], mean[0, m], var[0, m], n[0, m])
            welch_test(*args, o)
            if is_binary[m]:
                s1, s0 = succ[v, m], succ[0, m]
                fisher_test(s1, trials[v, m] - s1, s0, trials[0, m] - s0, o[T_OR:])
            else:
                o[T_OR : T_P_FISHER + 1] = math.nan
            o[T_COHEN_D] = cohens_d(*args)
