"""NumPy twins of :mod:`arena_env.economy.population`: the same phases, under the same names and
signatures, each vectorised over all the users it applies to.

These are the slow, obvious versions: where a kernel phase handles user ``u``, its twin handles an
array ``u`` of user ids (ascending) with their ``v``, ``g``, ``age``, ... aligned; a phase that adds
``x`` to ``ai[v, col]`` in the kernel calls ``ai.add(col, u, x)`` on a :class:`Tally` here.
``backend="numpy"`` runs the environment on them, and the tests compare them with the kernels
(integers exactly, floats to 1e-9).  Sums are accumulated with ``np.bincount`` in user order inside
each (chunk, variant), as the kernel does, so even the float aggregates agree bit for bit.  Every
random draw is the kernel's (``rng.uniform_np`` is bit-identical to ``rng.uniform``).
"""

from __future__ import annotations

import numpy as np

from arena_env.rng import day_key, uniform_np, uniform_pair_np

from .layout import (
    A_ACTIVE, A_ACTIVE7, A_CHURNED, A_CHURNED_TODAY, A_ENROLLED, A_FEEDBACK, A_ISSUES, A_M_DONE, A_M_FAILED,
    A_M_REACHED, A_NEW, A_PHOTOS, A_SCANS, A_STATUS, A_STREAK_SQ, A_STREAK_SUM, A_USEFUL_FB, A_USEFUL_SCANS,
    A_XP_BUDGET, A_XP_FEEDBACK, A_XP_FIRST, A_XP_ISSUE, A_XP_MISSION, A_XP_PHOTO, A_XP_SCAN, A_XP_STATUS,
    A_XP_STREAK, F_CHURN_RISK, F_SAT_SUM, F_SCAN_SQ, F_SCAN_SUM, F_XP_SQ, F_XP_SUM, FLAG_CHURNED, GL_ALPHA,
    GL_GAIN_CLIP, GL_INFLATION, GL_MISSION_MIN_RATE, GL_MISSION_PERIOD, GL_MISSION_STRETCH, GL_MISSION_XP,
    GL_RANK, GL_RHO_SAT, GL_WEEKDAY, GL_XP_UNIT, N_AF, N_AI, P_FB_CAP, P_FEEDBACK, P_FIRST, P_ISSUE, P_PHOTO,
    P_SCAN, P_SCAN_CAP, P_STATUS, P_STREAK_CAP, P_STREAK_DAY, S_ACTIVE, S_CHURN, S_ISSUE, S_PHOTO, S_SCANS,
    SG_BASE, SG_BETA_REF, SG_BETA_SAT, SG_BETA_SB, SG_BETA_STREAK, SG_BETA_XP, SG_CHURN_BASE, SG_CHURN_IDLE,
    SG_CHURN_SAT, SG_CHURN_STREAK, SG_LOSS_AVERSION, SG_RHO_REF, SG_SAT_BASE, SG_SAT_RANK, SG_SAT_REF,
    SG_SAT_XP, SG_USEFUL_FB, SG_USEFUL_SCANS, SITE_GROUP, SITE_N, SITE_SQ, SITE_SUM, TN_HABITUATION,
    TN_NOVELTY, TN_ONBOARDING, VS_ANTICIPATED, VS_FB_LOGIT, VS_ISSUE_EXPNEG, VS_ISSUE_LAM, VS_PHOTO_P, VS_POIS,
    VS_SCAN_EXPNEG, VS_SCAN_LAM, VS_STATUS_EXPNEG, VS_STATUS_LAM, Appraisal, DayParams,
)

# ==================================================================================================
# Draws and curves
# ==================================================================================================


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


class Tally:
    """The twin of a chunk's aggregate rows (``ai`` or ``af`` in the kernel).

    ``add(col, u, x)`` books the values ``x`` of the enrolled users ``u`` in column ``col`` of their
    (chunk, variant) row, as the kernel's ``ai[v, col] += x`` does, by ``np.bincount`` in user order.
    A float column is booked by one call, so that its sums run in user order, as in the kernel.
    ``sums`` (n_chunks * V, n_cols) holds the totals.
    """

    def __init__(self, row, size, n_cols, dtype):
        self.row = row  # per user id: its row, chunk * V + variant
        self.size = size
        self.sums = np.zeros((size, n_cols), dtype=dtype)
        self._booked = set()  # float columns booked so far

    def add(self, col, u, x):
        if self.sums.dtype.kind == "f":
            assert col not in self._booked, f"float column {col} booked twice: its sum would not run in user order"
            self._booked.add(col)
        k = self.row[u]
        w = np.broadcast_to(np.asarray(x, dtype=np.float64), k.shape)
        self.sums[:, col] += np.bincount(k, weights=w, minlength=self.size).astype(self.sums.dtype)


# ==================================================================================================
# The day's parameters and the site sums
# ==================================================================================================


def day_params(day, seed, cfg, pscale, vs_tab, sg_tab, glob, tenure, log1p_tab):
    """Twin of :func:`arena_env.economy.population.day_params` (the same fields and values)."""
    sb_first = np.minimum(cfg[:, P_STREAK_DAY], cfg[:, P_STREAK_CAP]) * pscale
    period = np.uint64(glob[GL_MISSION_PERIOD])
    return DayParams(
        int(day), int(seed), day_key(seed, day), cfg, cfg.astype(np.int64), pscale, sb_first, vs_tab, sg_tab,
        tenure, log1p_tab, 1.0 / glob[GL_XP_UNIT], 1.0 / glob[GL_INFLATION], glob[GL_RANK], glob[GL_ALPHA],
        glob[GL_RHO_SAT], period, np.uint64(2**32 // int(period) + 1), glob[GL_MISSION_STRETCH], glob[GL_MISSION_MIN_RATE],
        int(glob[GL_MISSION_XP]), glob[GL_WEEKDAY], glob[GL_GAIN_CLIP],
    )


def site_standing(site_prev, s, off):
    """Twin of :func:`arena_env.economy.population.site_standing`, per user: ``s`` and ``off`` are the
    users' sites and group offsets."""
    sn = site_prev[s, off + SITE_N]
    ok = sn >= 2.0
    d = np.where(ok, sn, 1.0)
    mean = np.where(ok, site_prev[s, off + SITE_SUM] / d, 0.0)
    var = site_prev[s, off + SITE_SQ] / d - mean * mean
    spread = ok & (var > 1e-12)
    inv_sd = np.where(spread, 1.0 / np.sqrt(np.where(spread, var, 1.0)), 0.0)
    return mean, inv_sd


def add_to_site(site_next, s, v, xe):
    """Twin of :func:`arena_env.economy.population.add_to_site`: adds, per site and group, the users'
    count, sum and sum of squares of ``xe`` (in user order)."""
    n_sites = site_next.shape[0]
    for off, m in ((0, v == 0), (SITE_GROUP, v != 0)):
        site_next[:, off + SITE_N] += np.bincount(s[m], minlength=n_sites)[:n_sites]
        site_next[:, off + SITE_SUM] += np.bincount(s[m], weights=xe[m], minlength=n_sites)[:n_sites]
        site_next[:, off + SITE_SQ] += np.bincount(s[m], weights=xe[m] * xe[m], minlength=n_sites)[:n_sites]


# ==================================================================================================
# The phases of a user's day, in order
# ==================================================================================================


def recruit(users, u, v, age, ai):
    """Twin of :func:`arena_env.economy.population.recruit`; returns the churned mask."""
    ai.add(A_ENROLLED, u, 1)
    ai.add(A_NEW, u, age == 0)
    churned = (users["flags"][u] & FLAG_CHURNED) != 0
    ai.add(A_CHURNED, u, churned)
    return churned


def appraise(users, u, v, g, mean, inv_sd, p):
    """Twin of :func:`arena_env.economy.population.appraise`: an ``Appraisal`` of arrays."""
    cfg = p.cfg[v]
    sb_first = p.sb_first[v]
    alive = np.where(users["last_active"][u] == p.day - 1, users["streak"][u].astype(np.int64), 0)
    sb_next = np.minimum(cfg[:, P_STREAK_DAY] * (alive + 1), cfg[:, P_STREAK_CAP])
    anticipated = p.vs_tab[v, g, VS_ANTICIPATED] + sb_first
    deflate = p.inv_xp_unit / (1.0 + users["cum_xp"][u] * p.inv_inflation)
    perceived = np.log(1.0 + anticipated * deflate)
    xs = (sb_next * p.pscale[v] - sb_first) * deflate
    streak_value = xs / (1.0 + xs)
    xs = cfg[:, P_FIRST] * p.pscale[v] * deflate
    first_value = xs / (1.0 + xs)
    ref = users["ref_xp"][u].astype(np.float64)
    ref = np.where(ref < 0.0, anticipated, ref)
    gain = (anticipated - ref) / np.where(ref > 1.0, ref, 1.0)
    gain = np.where(gain < 0.0, gain * p.sg_tab[g, SG_LOSS_AVERSION], gain)
    gain = np.clip(gain, -p.gain_clip, p.gain_clip)
    pct = np.where(inv_sd > 0.0, _s_curve(2.0 * (users["xp_ema"][u] - mean) * inv_sd), 0.5)
    return Appraisal(alive, anticipated, perceived, streak_value, first_value, ref, gain, pct)


def choose_activity(users, u, g, age, a, p):
    """Twin of :func:`arena_env.economy.population.choose_activity`; returns the active mask."""
    sg = p.sg_tab[g]
    tn = p.tenure[g, np.minimum(age, p.tenure.shape[1] - 1)]
    ia = np.minimum(a.alive, p.log1p_tab.shape[0] - 1)
    z = (
        sg[:, SG_BASE] + users["trait"][u] + sg[:, SG_BETA_XP] * tn[:, TN_HABITUATION] * a.perceived
        + sg[:, SG_BETA_SB] * a.streak_value + tn[:, TN_ONBOARDING] * a.first_value
        + sg[:, SG_BETA_REF] * a.gain
        + sg[:, SG_BETA_STREAK] * p.log1p_tab[ia] + tn[:, TN_NOVELTY] + p.weekday
        + p.rank_k * (a.pct - 0.5) + sg[:, SG_BETA_SAT] * (users["sat"][u].astype(np.float64) - 0.5)
    )
    return _bernoulli_logit(uniform_np(p.seed, p.day, u, S_ACTIVE), z)


def act_and_earn(users, u, v, g, p, ai):
    """Twin of :func:`arena_env.economy.population.act_and_earn`; returns ``(scans, xp)`` arrays."""
    vt = p.vs_tab[:, :, :VS_POIS][v, g]  # the incentive columns (the kernel's Poisson tables are not needed)
    price = p.prices[v]
    u_scan, u_fb = uniform_pair_np(p.seed, p.day, u, S_SCANS)
    scans = np.minimum(1 + _poisson(vt[:, VS_SCAN_LAM], vt[:, VS_SCAN_EXPNEG], u_scan), price[:, P_SCAN_CAP])
    q_f = _sigmoid(users["fb_trait"][u] + vt[:, VS_FB_LOGIT])
    fb = np.minimum(_binomial(scans, q_f, u_fb), price[:, P_FB_CAP])
    photos = _binomial(fb, vt[:, VS_PHOTO_P], uniform_np(p.seed, p.day, u, S_PHOTO))  # 0 without feedback
    u_issue, u_status = uniform_pair_np(p.seed, p.day, u, S_ISSUE)
    issues = _poisson(vt[:, VS_ISSUE_LAM], vt[:, VS_ISSUE_EXPNEG], u_issue)
    status = _poisson(vt[:, VS_STATUS_LAM], vt[:, VS_STATUS_EXPNEG], u_status)
    xp = (price[:, P_SCAN] * scans + price[:, P_FIRST] + price[:, P_FEEDBACK] * fb + price[:, P_PHOTO] * photos
          + price[:, P_ISSUE] * issues + price[:, P_STATUS] * status)
    ai.add(A_USEFUL_SCANS, u, np.minimum(scans, p.sg_tab[g, SG_USEFUL_SCANS].astype(np.int64)))
    ai.add(A_USEFUL_FB, u, np.minimum(fb, p.sg_tab[g, SG_USEFUL_FB].astype(np.int64)))
    ai.add(A_ACTIVE, u, 1)
    ai.add(A_SCANS, u, scans)
    ai.add(A_FEEDBACK, u, fb)
    ai.add(A_PHOTOS, u, photos)
    ai.add(A_ISSUES, u, issues)
    ai.add(A_STATUS, u, status)
    return scans, xp


def missions(users, u, v, age, active, scans, p, ai):
    """Twin of :func:`arena_env.economy.population.missions`; returns the mission XP per user."""
    m_target, m_progress = users["m_target"], users["m_progress"]
    due = (age % int(p.period)) == 0
    resolve = due & (age > 0)
    open_before = m_target[u] > 0
    ai.add(A_M_FAILED, u, resolve & open_before)
    ai.add(A_M_DONE, u, resolve & ~open_before)
    rate = np.maximum(users["scan_ema"][u].astype(np.float64), p.min_rate)
    tgt = np.clip(np.floor(p.stretch * rate * p.period + 0.5), 1, 250)
    m_target[u[due]] = tgt[due].astype(np.uint8)
    m_progress[u[due]] = 0
    target = m_target[u].astype(np.int64)
    progressing = active & (target > 0)
    prog = m_progress[u].astype(np.int64) + scans
    done = progressing & (prog >= target)
    ai.add(A_M_REACHED, u, done)
    m_target[u[done]] = 0
    prog = np.where(done, 0, prog)
    m_progress[u[progressing]] = np.minimum(prog[progressing], 255)
    return np.where(done, p.mission_xp, 0)


def streaks(users, u, v, active, alive, p, ai):
    """Twin of :func:`arena_env.economy.population.streaks`; returns the streak bonus XP per user.
    ``active`` and ``alive`` may be scalars (``False, 0`` for churned users)."""
    active = np.broadcast_to(active, u.shape)
    st = np.where(active, alive + 1, 0)
    cap = p.prices[v, P_STREAK_CAP]
    sb = np.where(active, np.minimum(p.prices[v, P_STREAK_DAY] * st, cap), 0)
    ai.add(A_XP_STREAK, u, sb)
    users["streak"][u] = st
    users["last_active"][u[active]] = p.day
    users["act7"][u] = ((users["act7"][u].astype(np.int64) << 1) | active) & 0x7F
    return sb


def adapt(users, u, v, g, a, p, af):
    """Twin of :func:`arena_env.economy.population.adapt`; returns the new satisfaction (float64)."""
    sg = p.sg_tab[g]
    users["ref_xp"][u] = a.ref + sg[:, SG_RHO_REF] * (a.anticipated - a.ref)
    s_old = users["sat"][u].astype(np.float64)
    target = _s_curve(sg[:, SG_SAT_BASE] + sg[:, SG_SAT_REF] * a.gain + sg[:, SG_SAT_RANK] * (a.pct - 0.5)
                      + sg[:, SG_SAT_XP] * a.perceived)
    s_new = s_old + p.rho_sat * (target - s_old)
    users["sat"][u] = s_new
    af.add(F_SAT_SUM, u, s_new)
    return s_new


def churn(users, u, v, g, s_new, p, ai, af):
    """Twin of :func:`arena_env.economy.population.churn`."""
    sg = p.sg_tab[g]
    lg = p.log1p_tab
    idle = np.minimum(p.day - users["last_active"][u].astype(np.int64), lg.shape[0] - 1)
    ic = np.minimum(users["streak"][u].astype(np.int64), lg.shape[0] - 1)
    churn_logit = (sg[:, SG_CHURN_BASE] + sg[:, SG_CHURN_IDLE] * lg[idle]
                   - sg[:, SG_CHURN_STREAK] * lg[ic] - sg[:, SG_CHURN_SAT] * (s_new - 0.5))
    af.add(F_CHURN_RISK, u, _sigmoid(churn_logit))
    cu = u[_bernoulli_logit(uniform_np(p.seed, p.day, u, S_CHURN), churn_logit)]
    users["flags"][cu] |= np.uint8(FLAG_CHURNED)
    still_open = users["m_target"][cu] > 0
    ai.add(A_M_FAILED, cu, still_open)
    ai.add(A_M_DONE, cu, ~still_open)
    users["m_target"][cu] = 0
    users["m_progress"][cu] = 0
    ai.add(A_CHURNED_TODAY, cu, 1)
    ai.add(A_CHURNED, cu, 1)


def ledger(users, u, v, s, age, scans, xp, p, ai, af, site_next):
    """Twin of :func:`arena_env.economy.population.ledger`."""
    alpha = _ema_rate(age, p.alpha_w)
    users["xp_today"][u] = xp
    users["cum_xp"][u] += xp.astype(np.int64)
    scan_ema, xp_ema = users["scan_ema"], users["xp_ema"]
    se = scan_ema[u] + alpha * (scans - scan_ema[u])
    xe = xp_ema[u] + alpha * (xp - xp_ema[u])
    scan_ema[u] = se
    xp_ema[u] = xe
    se = scan_ema[u].astype(np.float64)
    xe = xp_ema[u].astype(np.float64)
    ai.add(A_ACTIVE7, u, users["act7"][u] != 0)
    cs = users["streak"][u].astype(np.int64)
    ai.add(A_STREAK_SUM, u, cs)
    ai.add(A_STREAK_SQ, u, cs * cs)
    af.add(F_SCAN_SUM, u, se)
    af.add(F_SCAN_SQ, u, se * se)
    af.add(F_XP_SUM, u, xe)
    af.add(F_XP_SQ, u, xe * xe)
    add_to_site(site_next, s, v, xe)


def price_ledger(p, ai):
    """Twin of :func:`arena_env.economy.population.price_ledger`, over all chunks at once: ``ai`` is
    (..., V, N_AI)."""
    price = p.prices
    ai[..., A_XP_SCAN] = price[:, P_SCAN] * ai[..., A_SCANS]
    ai[..., A_XP_FIRST] = price[:, P_FIRST] * ai[..., A_ACTIVE]
    ai[..., A_XP_FEEDBACK] = price[:, P_FEEDBACK] * ai[..., A_FEEDBACK]
    ai[..., A_XP_PHOTO] = price[:, P_PHOTO] * ai[..., A_PHOTOS]
    ai[..., A_XP_ISSUE] = price[:, P_ISSUE] * ai[..., A_ISSUES]
    ai[..., A_XP_STATUS] = price[:, P_STATUS] * ai[..., A_STATUS]
    ai[..., A_XP_MISSION] = p.mission_xp * ai[..., A_M_REACHED]


# ==================================================================================================
# The kernels
# ==================================================================================================


def _enrolled(users, day, site_size, sites_per_chunk, n_var):
    """The enrolled users (ascending), their variants, days since enrolment and sites, and the
    (chunk, variant) row of every user id."""
    u = np.nonzero(users["enroll_day"] <= day)[0]
    v = users["variant"][u].astype(np.int64)
    age = day - users["enroll_day"][u].astype(np.int64)
    s = u // site_size
    row = np.zeros(users.shape[0], dtype=np.int64)
    row[u] = (s // sites_per_chunk) * n_var + v
    return u, v, age, s, row


def step_population(day, seed, site_size, sites_per_chunk, users, cfg, pscale, vs_tab, sg_tab, glob, tenure,
                    log1p_tab, site_prev, site_next, agg_i, agg_f):
    """NumPy twin of :func:`arena_env.economy.population.step_population`: the same phases in the
    same order, each over all the users it applies to."""
    n_chunks, n_var = agg_i.shape[0], agg_i.shape[1]
    p = day_params(day, seed, cfg, pscale, vs_tab, sg_tab, glob, tenure, log1p_tab)
    u, v, age, s, row = _enrolled(users, day, site_size, sites_per_chunk, n_var)
    g = users["segment"][u].astype(np.int64)
    ai = Tally(row, n_chunks * n_var, N_AI, np.int64)
    af = Tally(row, n_chunks * n_var, N_AF, np.float64)
    site_next[:] = 0.0
    scans = np.zeros(u.shape[0], dtype=np.int64)
    xp = np.zeros(u.shape[0], dtype=np.int64)

    churned = recruit(users, u, v, age, ai)  # 1.
    streaks(users, u[churned], v[churned], False, 0, p, ai)  # churned earlier: the streak is gone, the window drains
    live = np.nonzero(~churned)[0]  # positions in u
    lu, lv, lg, lage = u[live], v[live], g[live], age[live]
    mean, inv_sd = site_standing(site_prev, s[live], np.where(lv == 0, 0, SITE_GROUP))  # 0., per user
    a = appraise(users, lu, lv, lg, mean, inv_sd, p)  # 2.
    active = choose_activity(users, lu, lg, lage, a, p)  # 3.
    b = live[active]  # positions in u of the active users
    scans[b], xp[b] = act_and_earn(users, u[b], v[b], g[b], p, ai)  # 4.
    xp[live] += missions(users, lu, lv, lage, active, scans[live], p, ai)  # 5.
    xp[live] += streaks(users, lu, lv, active, a.alive, p, ai)  # 6.
    s_new = adapt(users, lu, lv, lg, a, p, af)  # 7.
    churn(users, lu, lv, lg, s_new, p, ai, af)  # 8.
    ledger(users, u, v, s, age, scans, xp, p, ai, af, site_next)  # 9.

    agg_i[:] = ai.sums.reshape(agg_i.shape)
    agg_f[:] = af.sums.reshape(agg_f.shape)
    price_ledger(p, agg_i)


def withhold(users, u, v, age, scale, alpha_w, ai):
    """Twin of :func:`arena_env.economy.population.withhold`."""
    x = users["xp_today"][u].astype(np.int64)
    short = (x > 0) & (scale[v] < 1.0)
    su = u[short]
    kept = np.floor(x[short] * scale[v[short]]).astype(np.int64)
    withheld = x[short] - kept
    users["cum_xp"][su] -= withheld.astype(np.int64)
    users["xp_today"][su] = kept
    users["xp_ema"][su] = users["xp_ema"][su] - _ema_rate(age[short], alpha_w) * withheld
    ai.add(A_XP_BUDGET, su, -withheld)


def pay_out(day, site_size, sites_per_chunk, users, scale, glob, site_next, agg_i, agg_f):
    """NumPy twin of :func:`arena_env.economy.population.pay_out`."""
    n_chunks, n_var = agg_i.shape[0], agg_i.shape[1]
    u, v, age, s, row = _enrolled(users, day, site_size, sites_per_chunk, n_var)
    ai = Tally(row, n_chunks * n_var, N_AI, np.int64)
    af = Tally(row, n_chunks * n_var, N_AF, np.float64)
    withhold(users, u, v, age, scale, glob[GL_ALPHA], ai)
    xe = users["xp_ema"][u].astype(np.float64)
    af.add(F_XP_SUM, u, xe)
    af.add(F_XP_SQ, u, xe * xe)
    site_next[:] = 0.0
    add_to_site(site_next, s, v, xe)
    agg_i[:, :, A_XP_BUDGET] += ai.sums[:, A_XP_BUDGET].reshape(n_chunks, n_var)
    agg_f[:, :, F_XP_SUM] = af.sums[:, F_XP_SUM].reshape(n_chunks, n_var)
    agg_f[:, :, F_XP_SQ] = af.sums[:, F_XP_SQ].reshape(n_chunks, n_var)
