"""NumPy twins of :mod:`arena_env.economy.kernels`: same names, same signatures, same results.

These are the slow, obvious versions: whole-population array expressions instead of a loop over
users.  ``backend="numpy"`` runs the environment on them, and the tests compare them with the Numba
kernels (integers exactly, floats to 1e-9).  Sums are accumulated with ``np.bincount`` in user order
inside each chunk, as the kernel does, so even the float aggregates agree bit for bit.
"""

from __future__ import annotations

import numpy as np

from arena_env.rng import uniform_np

from ._guard_reference import *  # noqa: F401,F403
from ._stats_reference import *  # noqa: F401,F403
from .kernels import (
    A_ACTIVE, A_ACTIVE7, A_CHURNED, A_CHURNED_TODAY, A_ENROLLED, A_FEEDBACK, A_ISSUES, A_M_DONE,
    A_M_FAILED, A_NEW, A_PHOTOS, A_SCANS, A_STATUS, A_STREAK_SQ, A_STREAK_SUM, A_XP_FEEDBACK,
    A_XP_FIRST, A_XP_ISSUE, A_XP_MISSION, A_XP_PHOTO, A_XP_SCAN, A_XP_STATUS, A_XP_STREAK,
    F_SAT_SUM, F_SCAN_SQ, F_SCAN_SUM, F_XP_SQ, F_XP_SUM, FLAG_CHURNED, GL_ALPHA, GL_INFLATION,
    GL_MISSION_MIN_RATE, GL_MISSION_PERIOD, GL_MISSION_STRETCH, GL_MISSION_XP, GL_RANK, GL_RHO_SAT,
    GL_WEEKDAY, GL_XP_UNIT, P_FB_CAP, P_FEEDBACK, P_FIRST, P_ISSUE, P_PHOTO, P_SCAN, P_SCAN_CAP,
    P_STATUS, P_STREAK_CAP, P_STREAK_DAY, S_ACTIVE, S_CHURN, S_FEEDBACK, S_ISSUE, S_PHOTO, S_SCANS,
    S_STATUS, SG_BASE, SG_BETA_REF, SG_BETA_SAT, SG_BETA_STREAK, SG_BETA_XP, SG_CHURN_BASE,
    SG_CHURN_IDLE, SG_CHURN_SAT, SG_CHURN_STREAK, SG_LOSS_AVERSION, SG_RHO_REF, SG_SAT_BASE,
    SG_SAT_RANK, SG_SAT_REF, SG_SAT_XP, SITE_N, SITE_SQ, SITE_SUM, VS_ANTICIPATED, VS_FB_LOGIT,
    VS_ISSUE_EXPNEG, VS_ISSUE_LAM, VS_PHOTO_P, VS_SCAN_EXPNEG, VS_SCAN_LAM, VS_STATUS_EXPNEG,
    VS_STATUS_LAM,
)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


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


def step_population(
    day, seed, site_size, sites_per_chunk,
    variant, segment, enroll_day, last_active, streak, flags, act7, m_target, m_progress,
    cum_xp, ref_xp, sat, scan_ema, xp_ema, trait, fb_trait,
    cfg, vs_tab, sg_tab, glob, novelty, log1p_tab,
    site_prev, site_next, agg_i, agg_f,
):
    """NumPy twin of :func:`arena_env.economy.kernels.step_population`."""
    n_users = variant.shape[0]
    n_sites = site_prev.shape[0]
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
    alpha = np.maximum(glob[GL_ALPHA], 1.0 / (age + 1.0))
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
    fail = due & (aage > 0) & (m_target[au] > 0)
    m_failed[a[fail]] = 1
    rate = np.maximum(scan_ema[au].astype(np.float64), glob[GL_MISSION_MIN_RATE])
    tgt = np.clip(np.floor(glob[GL_MISSION_STRETCH] * rate * period + 0.5), 1, 250)
    m_target[au[due]] = tgt[due].astype(np.uint8)
    m_progress[au[due]] = 0

    alive_streak = np.where(last_active[au] == day - 1, streak[au].astype(np.int64), 0)
    sb_next = np.minimum(cv[:, P_STREAK_DAY] * (alive_streak + 1), cv[:, P_STREAK_CAP])
    anticipated = vt[:, VS_ANTICIPATED] + sb_next
    perceived = np.log1p(anticipated / (glob[GL_XP_UNIT] * (1.0 + cum_xp[au] / glob[GL_INFLATION])))
    ref = ref_xp[au].astype(np.float64)
    ref = np.where(ref < 0.0, anticipated, ref)
    gain = (anticipated - ref) / np.where(ref > 1.0, ref, 1.0)
    gain = np.where(gain < 0.0, gain * sg[:, SG_LOSS_AVERSION], gain)
    gain = np.clip(gain, -3.0, 3.0)

    s_n = site_prev[:, SITE_N]
    with np.errstate(invalid="ignore", divide="ignore"):
        s_mean = np.where(s_n >= 2.0, site_prev[:, SITE_SUM] / np.maximum(s_n, 1.0), 0.0)
        s_var = site_prev[:, SITE_SQ] / np.maximum(s_n, 1.0) - s_mean * s_mean
        s_inv = np.where((s_n >= 2.0) & (s_var > 1e-12), 1.0 / np.sqrt(np.maximum(s_var, 1e-300)), 0.0)
    asite = site[a]
    inv = s_inv[asite]
    pct = np.where(inv > 0.0, _sigmoid(1.702 * (xp_ema[au] - s_mean[asite]) * inv), 0.5)

    ia = np.minimum(alive_streak, n_log - 1)
    inov = np.minimum(aage, n_nov - 1)
    z = (
        sg[:, SG_BASE] + trait[au] + sg[:, SG_BETA_XP] * perceived + sg[:, SG_BETA_REF] * gain
        + sg[:, SG_BETA_STREAK] * log1p_tab[ia] + novelty[ag, inov] + glob[GL_WEEKDAY]
        + glob[GL_RANK] * (pct - 0.5) + sg[:, SG_BETA_SAT] * (sat[au].astype(np.float64) - 0.5)
    )
    act = uniform_np(seed, day, au, S_ACTIVE) < _sigmoid(z)
    active[a] = act

    # the active users' day
    b = np.nonzero(act)[0]  # positions within a
    bu = au[b]
    bcv, bvt = cv[b], vt[b]
    nsc = 1 + _poisson(bvt[:, VS_SCAN_LAM], bvt[:, VS_SCAN_EXPNEG], uniform_np(seed, day, bu, S_SCANS))
    sc = np.minimum(nsc, bcv[:, P_SCAN_CAP].astype(np.int64))
    lam_f = sc * _sigmoid(fb_trait[bu] + bvt[:, VS_FB_LOGIT])
    f = _poisson(lam_f, np.exp(-lam_f), uniform_np(seed, day, bu, S_FEEDBACK))
    f = np.minimum(np.minimum(f, sc), bcv[:, P_FB_CAP].astype(np.int64))
    lam_p = f * bvt[:, VS_PHOTO_P]
    ph = np.where(f > 0, _poisson(lam_p, np.exp(-lam_p), uniform_np(seed, day, bu, S_PHOTO)), 0)
    ph = np.minimum(ph, f)
    iss = _poisson(bvt[:, VS_ISSUE_LAM], bvt[:, VS_ISSUE_EXPNEG], uniform_np(seed, day, bu, S_ISSUE))
    sts = _poisson(bvt[:, VS_STATUS_LAM], bvt[:, VS_STATUS_EXPNEG], uniform_np(seed, day, bu, S_STATUS))
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

    pos = a[b]  # positions within uid
    scans[pos], fb[pos], photos[pos], issues[pos], status[pos], xp[pos] = sc, f, ph, iss, sts, bx
    m_done[pos] = done
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
    target = _sigmoid(sg[:, SG_SAT_BASE] + sg[:, SG_SAT_REF] * gain + sg[:, SG_SAT_RANK] * (pct - 0.5)
                      + sg[:, SG_SAT_XP] * perceived)
    s_new = s_old + glob[GL_RHO_SAT] * (target - s_old)
    sat[au] = s_new
    sat_contrib[a] = s_new
    idle = np.minimum(day - last_active[au].astype(np.int64), n_log - 1)
    ic = np.minimum(streak[au].astype(np.int64), n_log - 1)
    hz = _sigmoid(sg[:, SG_CHURN_BASE] + sg[:, SG_CHURN_IDLE] * log1p_tab[idle]
                  - sg[:, SG_CHURN_STREAK] * log1p_tab[ic] - sg[:, SG_CHURN_SAT] * (s_new - 0.5))
    ch = uniform_np(seed, day, au, S_CHURN) < hz
    flags[au[ch]] |= np.uint8(FLAG_CHURNED)
    churn_today[a[ch]] = 1

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
                     (A_STATUS, status), (A_M_DONE, m_done), (A_M_FAILED, m_failed),
                     (A_CHURNED_TODAY, churn_today), (A_STREAK_SUM, cur), (A_STREAK_SQ, cur * cur), *parts.items()):
        isum(col, val)
    agg_i[:] = ai.reshape(agg_i.shape)

    af = np.zeros((size, agg_f.shape[2]), dtype=np.float64)
    af[:, F_SCAN_SUM] = np.bincount(key, weights=se, minlength=size)
    af[:, F_SCAN_SQ] = np.bincount(key, weights=se * se, minlength=size)
    af[:, F_XP_SUM] = np.bincount(key, weights=xe, minlength=size)
    af[:, F_XP_SQ] = np.bincount(key, weights=xe * xe, minlength=size)
    af[:, F_SAT_SUM] = np.bincount(key, weights=sat_contrib, minlength=size)
    agg_f[:] = af.reshape(agg_f.shape)

    site_next[:, SITE_N] = np.bincount(site, minlength=n_sites)[:n_sites]
    site_next[:, SITE_SUM] = np.bincount(site, weights=xe, minlength=n_sites)[:n_sites]
    site_next[:, SITE_SQ] = np.bincount(site, weights=xe * xe, minlength=n_sites)[:n_sites]
