"""The population step (Numba): one day of every enrolled user, as a pipeline of small phases.

:func:`step_population` advances the whole population by one day; :func:`pay_out` credits the
day's claims pro rata when a budget is short.  Each phase of a user's day is a small function
compiled with :data:`arena_env._numba.jit_inline`, so Numba inlines it into the kernel's loop (a
phase costs no call); :mod:`arena_env.economy.population_ref` has a NumPy twin of every phase under
the same name and signature, vectorised over users, and the tests prove that the two backends agree
(integers exactly, floats to 1e-9).  The equations, in the order of the phases, are in
``docs/model.md`` section 2.

Data
----
Users live in one packed record array (:data:`~arena_env.economy.layout.USER_DTYPE`, 48 bytes per
user); a phase reads and writes the fields of ``users[u]``.  Everything else a phase reads is in
the day's :class:`~arena_env.economy.layout.DayParams` ``p`` (the tables and the constants derived
from ``glob``, bundled by :func:`day_params` at the start of each chunk), and the counts it makes go
to ``ai`` / ``af``, the current chunk's rows of the aggregates (``A_*`` / ``F_*`` columns per
variant).

Order of a user's day (phases 2 to 8 only for users who have not churned)
--------------------------------------------------------------------------
0. :func:`site_standing` (once per site and group): yesterday's mean and spread of ``xp_ema``.
1. :func:`recruit`: count the user; a user who churned on an earlier day only drains its streak
   and activity window (:func:`streaks` with ``active=False``).
2. :func:`appraise`: the user's view of today's offer (streak premium, perceived value, reference
   point, rank).
3. :func:`choose_activity`: the activity logit and the Bernoulli draw.
4. :func:`act_and_earn` (active users): scans, feedback, photos, reports and their XP.
5. :func:`missions`: resolve and assign at the start of a personal period, progress on active days.
6. :func:`streaks`: extend or break the streak, pay the streak bonus.
7. :func:`adapt`: the reference point and satisfaction move toward today's offer.
8. :func:`churn`: the churn hazard and its draw.
9. :func:`ledger`: today's XP, moving averages, per-variant sums and tomorrow's site sums.

and, once per chunk, :func:`price_ledger`: the XP of the rules with one price per variant and day.

Chunks and threads
------------------
Sites are contiguous blocks of ``site_size`` users; a *chunk* is ``sites_per_chunk`` consecutive
sites.  The step runs ``prange`` over chunks and every chunk writes its own row of the partial
aggregates, so the result does not depend on the number of threads: each sum is accumulated in user
order inside one chunk, and the caller adds the chunk rows in chunk order.

Every random draw is :func:`arena_env.rng.uniform` keyed by ``(seed, day, user, stream)`` with one
stream constant per decision (``S_*``); the (seed, day) half of the hash is computed once per day
(``rng.day_key``, ``p.dkey``).  The phases must keep their floating-point expressions as they are
(same operations, same order): the golden trajectories pin the results bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from arena_env._numba import jit, jit_inline, jit_parallel, prange
from arena_env.rng import day_key, uniform_at, uniform_pair_at

from .layout import (
    A_ACTIVE, A_ACTIVE7, A_CHURNED, A_CHURNED_TODAY, A_ENROLLED, A_FEEDBACK, A_ISSUES, A_M_DONE, A_M_FAILED,
    A_M_REACHED, A_NEW, A_PHOTOS, A_SCANS, A_STATUS, A_STREAK_SQ, A_STREAK_SUM, A_USEFUL_FB, A_USEFUL_SCANS,
    A_XP_BUDGET, A_XP_FEEDBACK, A_XP_FIRST, A_XP_ISSUE, A_XP_MISSION, A_XP_PHOTO, A_XP_SCAN, A_XP_STATUS,
    A_XP_STREAK, F_CHURN_RISK, F_SAT_SUM, F_SCAN_SQ, F_SCAN_SUM, F_XP_SQ, F_XP_SUM, FLAG_CHURNED, GL_ALPHA,
    GL_GAIN_CLIP, GL_INFLATION, GL_MISSION_MIN_RATE, GL_MISSION_PERIOD, GL_MISSION_STRETCH, GL_MISSION_XP,
    GL_RANK, GL_RHO_SAT, GL_WEEKDAY, GL_XP_UNIT, N_SITE, P_FB_CAP, P_FEEDBACK, P_FIRST, P_ISSUE, P_PHOTO,
    P_SCAN, P_SCAN_CAP, P_STATUS, P_STREAK_CAP, P_STREAK_DAY, S_ACTIVE, S_CHURN, S_ISSUE, S_PHOTO, S_SCANS,
    SG_BASE, SG_BETA_REF, SG_BETA_SAT, SG_BETA_SB, SG_BETA_STREAK, SG_BETA_XP, SG_CHURN_BASE, SG_CHURN_IDLE,
    SG_CHURN_SAT, SG_CHURN_STREAK, SG_LOSS_AVERSION, SG_RHO_REF, SG_SAT_BASE, SG_SAT_RANK, SG_SAT_REF,
    SG_SAT_XP, SG_USEFUL_FB, SG_USEFUL_SCANS, SITE_GROUP, SITE_N, SITE_SQ, SITE_SUM, TN_HABITUATION,
    TN_NOVELTY, TN_ONBOARDING, VS_ANTICIPATED, VS_FB_LOGIT, VS_PHOTO_P, VS_POIS, PO_ISSUE, PO_SCAN, PO_STATUS,
    POIS_K, POIS_M, POIS_W, Appraisal, DayParams,
)

# ==================================================================================================
# Draws and curves
# ==================================================================================================


@jit
def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


@jit
def _happens(u, e):
    """The Bernoulli test of an event of logit ``x`` with ``e = exp(-x)`` known: ``u * (1 + e) < 1``,
    which is ``u < sigmoid(x)`` without the division."""
    return u * (1.0 + e) < 1.0


@jit
def _bernoulli_logit(u, x):
    """``u < sigmoid(x)``, as ``u * (1 + exp(-x)) < 1`` (no division).

    Most draws are settled without the ``exp``, always with the full test's answer.  First, since
    ``exp(-x) >= 1 - x``, ``u * (2 - x) >= 1`` implies ``u * (1 + exp(-x)) >= 1`` (also in floating
    point, as rounding is monotone).  Then the cubic Taylor polynomial ``T(y) = 1 + y + y^2/2 + y^3/6``
    bounds ``exp(y)`` from below for every ``y`` (the remainder ``y^4 exp(t) / 24`` is >= 0), so
    ``T(-x) <= exp(-x) <= 1 / T(x)`` (the latter where ``T(x) > 0``): a draw below the band those bounds
    leave is a yes, above it a no.  Each bound's test keeps a relative margin of 1e-12, a thousand
    times the rounding error of the polynomials and of ``exp`` on the ranges where they are used
    (``x > -1`` for the upper bound, where ``T(x) >= 1/3``; ``x < 1.5`` for the lower one), so the
    full test runs only in the band: for ``|x| < 1`` at most one draw in forty (up to one in five for
    ``1 <= x <= 2``, and up to 0.27 for ``-2 <= x <= -1``, at ``x = -1``, where only the lower bound applies).
    """
    if u * (2.0 - x) >= 1.0:
        return False
    if x > -1.0:
        t = 1.0 + x * (1.0 + x * (0.5 + x * (1.0 / 6.0)))  # T(x): exp(-x) <= 1 / t
        if u * (t + 1.0) < t * (1.0 - 1e-12):
            return True
    if x < 1.5:
        lo = 1.0 - x * (1.0 - x * (0.5 - x * (1.0 / 6.0)))  # T(-x) <= exp(-x)
        if u * (1.0 + lo) >= 1.0 + 1e-12:
            return False
    return _happens(u, math.exp(-x))


@jit
def _s_curve(x):
    """An algebraic S-curve onto (0, 1): 0.5 + 0.5 x / (1 + |x|); no exp (a sixth of the cost)."""
    return 0.5 + 0.5 * x / (1.0 + abs(x))


@jit
def _poisson(vs, v, g, po, u):
    """Inverse-transform Poisson draw from one uniform, with the table of draw ``po`` (``PO_*``) in
    ``vs[v, g]`` (:func:`arena_env.economy.model.poisson_table`): the first ``k`` with
    ``u <= cdf[k]``, else 255, the same answer as running the recurrence ``p *= lam / k; f += p``
    until ``u <= f`` (the NumPy twin does), from the guide's start ``k`` (every earlier
    ``cdf[k] < floor(u * POIS_M) / POIS_M <= u``): no division, and seldom more than one step."""
    o = VS_POIS + POIS_W * po
    n = int(vs[v, g, o])
    k = int(vs[v, g, o + 1 + int(u * POIS_M)])
    c = o + 1 + POIS_M
    while k < n and u > vs[v, g, c + k]:
        k += 1
    return k if k < n else POIS_K


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


# ==================================================================================================
# The day's parameters and the site sums
# ==================================================================================================


@jit_inline
def day_params(day, seed, cfg, pscale, vs_tab, sg_tab, glob, tenure, log1p_tab):
    """Bundle the tables of the day and the constants derived from ``glob`` into one
    :class:`~arena_env.economy.layout.DayParams` (see there for the fields).

    Reads ``cfg`` (V, 10) and ``pscale`` (V,) for ``sb_first``, the perceived streak bonus of a
    streak's first day per variant; everything else is passed through or read from ``glob``.
    """
    prices = np.empty(cfg.shape, dtype=np.int64)
    sb_first = np.empty(cfg.shape[0])
    for v in range(cfg.shape[0]):
        for j in range(cfg.shape[1]):
            prices[v, j] = int(cfg[v, j])
        sb_first[v] = min(cfg[v, P_STREAK_DAY], cfg[v, P_STREAK_CAP]) * pscale[v]
    period = np.uint64(glob[GL_MISSION_PERIOD])
    return DayParams(
        day, seed, day_key(seed, day), cfg, prices, pscale, sb_first, vs_tab, sg_tab, tenure, log1p_tab,
        1.0 / glob[GL_XP_UNIT], 1.0 / glob[GL_INFLATION], glob[GL_RANK], glob[GL_ALPHA], glob[GL_RHO_SAT],
        period, np.uint64(4294967296) // period + np.uint64(1), glob[GL_MISSION_STRETCH], glob[GL_MISSION_MIN_RATE],
        int(glob[GL_MISSION_XP]), glob[GL_WEEKDAY], glob[GL_GAIN_CLIP],
    )


@jit_inline
def site_standing(site_prev, s, off):
    """Phase 0, once per site and group: (mean, 1 / sd) of yesterday's ``xp_ema`` among the users of
    site ``s`` in the group at column offset ``off`` (0 = control, ``SITE_GROUP`` = treatments).

    Reads ``site_prev``; (0, 0) with fewer than two users, 1 / sd = 0 without spread (var <= 1e-12).
    """
    sn = site_prev[s, off + SITE_N]
    if sn < 2.0:
        return 0.0, 0.0
    mean = site_prev[s, off + SITE_SUM] / sn
    var = site_prev[s, off + SITE_SQ] / sn - mean * mean
    if var > 1e-12:
        return mean, 1.0 / math.sqrt(var)
    return mean, 0.0


@jit_inline
def add_to_site(site_next, s, v, xe):
    """Count a user's ``xp_ema`` ``xe`` in the site sums of its group (control 0..2, treatments 3..5)."""
    off = 0 if v == 0 else SITE_GROUP
    site_next[s, off + SITE_N] += 1.0
    site_next[s, off + SITE_SUM] += xe
    site_next[s, off + SITE_SQ] += xe * xe


# ==================================================================================================
# The phases of a user's day, in order
# ==================================================================================================


@jit_inline
def recruit(users, u, v, age, ai):
    """Phase 1, every enrolled user: count it in ``A_ENROLLED``, in ``A_NEW`` on its first day
    (``age == 0``) and in ``A_CHURNED`` if it churned on an earlier day.

    Reads ``flags``; returns True for a churned user (who stays in every denominator, makes no scans
    and earns no XP: it skips phases 2 to 8).
    """
    ai[v, A_ENROLLED] += 1
    if age == 0:
        ai[v, A_NEW] += 1
    if users[u].flags & FLAG_CHURNED:
        ai[v, A_CHURNED] += 1
        return True
    return False


@jit_inline
def appraise(users, u, v, g, mean, inv_sd, p):
    """Phase 2: the user's view of today's offer (docs/model.md 2.3-2.6), as an
    :class:`~arena_env.economy.layout.Appraisal`.

    Reads ``streak``, ``last_active``, ``cum_xp``, ``ref_xp`` and ``xp_ema`` (yesterday's), the
    variant's prices and ``sb_first``, the incentive and segment tables, and the standing
    ``(mean, inv_sd)`` of the user's group on its site (:func:`site_standing`).  Writes nothing.
    """
    r = users[u]
    cfg = p.cfg
    sb_first = p.sb_first[v]
    alive = r.streak if r.last_active == p.day - 1 else 0
    sb_next = cfg[v, P_STREAK_DAY] * (alive + 1)
    if sb_next > cfg[v, P_STREAK_CAP]:
        sb_next = cfg[v, P_STREAK_CAP]
    # the day-1 bonus is paid on any active day; the premium above it is what a break loses
    anticipated = p.vs_tab[v, g, VS_ANTICIPATED] + sb_first
    deflate = p.inv_xp_unit / (1.0 + r.cum_xp * p.inv_inflation)
    perceived = math.log(1.0 + anticipated * deflate)
    xs = (sb_next * p.pscale[v] - sb_first) * deflate
    streak_value = xs / (1.0 + xs)
    xs = cfg[v, P_FIRST] * p.pscale[v] * deflate
    first_value = xs / (1.0 + xs)
    ref = np.float64(r.ref_xp)
    if ref < 0.0:  # first day: the user takes the rewards on offer as the norm
        ref = anticipated
    gain = (anticipated - ref) / (ref if ref > 1.0 else 1.0)
    if gain < 0.0:
        gain *= p.sg_tab[g, SG_LOSS_AVERSION]
    if gain > p.gain_clip:
        gain = p.gain_clip
    elif gain < -p.gain_clip:
        gain = -p.gain_clip
    pct = 0.5
    if inv_sd > 0.0:
        pct = _s_curve(2.0 * (r.xp_ema - mean) * inv_sd)
    return Appraisal(alive, anticipated, perceived, streak_value, first_value, ref, gain, pct)


@jit_inline
def choose_activity(users, u, g, age, a, p):
    """Phase 3: is the user active today?  ``U(S_ACTIVE) * (1 + exp(-z)) < 1`` with the activity
    logit ``z`` of docs/model.md 2.7.

    Reads ``trait`` and ``sat``, the appraisal ``a``, the segment, tenure and log1p tables and the
    day's weekday and rank constants.  Writes nothing; returns the decision.
    """
    r = users[u]
    sg = p.sg_tab
    tn = p.tenure
    n_log = p.log1p_tab.shape[0]
    n_nov = tn.shape[1]
    ia = a.alive if a.alive < n_log else n_log - 1
    inov = age if age < n_nov else n_nov - 1
    z = (
        sg[g, SG_BASE] + r.trait + sg[g, SG_BETA_XP] * tn[g, inov, TN_HABITUATION] * a.perceived
        + sg[g, SG_BETA_SB] * a.streak_value + tn[g, inov, TN_ONBOARDING] * a.first_value
        + sg[g, SG_BETA_REF] * a.gain
        + sg[g, SG_BETA_STREAK] * p.log1p_tab[ia] + tn[g, inov, TN_NOVELTY] + p.weekday
        + p.rank_k * (a.pct - 0.5) + sg[g, SG_BETA_SAT] * (r.sat - 0.5)
    )
    return _bernoulli_logit(uniform_at(p.dkey, u, S_ACTIVE), z)


@jit_inline
def act_and_earn(users, u, v, g, p, ai):
    """Phase 4, active users: draw today's scans, feedback, photos, issue and status reports
    (docs/model.md 2.8) and price them (2.9).

    Reads ``fb_trait``, the variant's prices and caps and the incentive table; draws ``S_SCANS``
    (pair), ``S_PHOTO`` (only with feedback) and ``S_ISSUE`` (pair).  Counts ``A_ACTIVE``,
    ``A_SCANS``, ``A_FEEDBACK``, ``A_PHOTOS``, ``A_ISSUES``, ``A_STATUS``, ``A_USEFUL_SCANS`` and
    ``A_USEFUL_FB``.  Returns ``(scans, xp)``: the scans made and the XP of the scan, first-scan,
    feedback, photo, issue and status rules (the streak bonus and the mission are paid by their own
    phases; the ledger books these rules as count x price, :func:`price_ledger`).
    """
    prices = p.prices
    vs = p.vs_tab
    u_scan, u_fb = uniform_pair_at(p.dkey, u, S_SCANS)
    n = 1 + _poisson(vs, v, g, PO_SCAN, u_scan)
    cap = prices[v, P_SCAN_CAP]
    scans = n if n < cap else cap
    q_f = _sigmoid(users[u].fb_trait + vs[v, g, VS_FB_LOGIT])
    fb = _binomial(scans, q_f, u_fb)
    fcap = prices[v, P_FB_CAP]
    if fb > fcap:
        fb = fcap
    photos = 0
    if fb > 0:
        photos = _binomial(fb, vs[v, g, VS_PHOTO_P], uniform_at(p.dkey, u, S_PHOTO))
    u_issue, u_status = uniform_pair_at(p.dkey, u, S_ISSUE)
    issues = _poisson(vs, v, g, PO_ISSUE, u_issue)
    status = _poisson(vs, v, g, PO_STATUS, u_status)
    xp = (prices[v, P_SCAN] * scans + prices[v, P_FIRST] + prices[v, P_FEEDBACK] * fb
          + prices[v, P_PHOTO] * photos + prices[v, P_ISSUE] * issues + prices[v, P_STATUS] * status)
    useful = int(p.sg_tab[g, SG_USEFUL_SCANS])
    ai[v, A_USEFUL_SCANS] += scans if scans < useful else useful
    useful = int(p.sg_tab[g, SG_USEFUL_FB])
    ai[v, A_USEFUL_FB] += fb if fb < useful else useful
    ai[v, A_ACTIVE] += 1
    ai[v, A_SCANS] += scans
    ai[v, A_FEEDBACK] += fb
    ai[v, A_PHOTOS] += photos
    ai[v, A_ISSUES] += issues
    ai[v, A_STATUS] += status
    return scans, xp


@jit_inline
def missions(users, u, v, age, active, scans, p, ai):
    """Phase 5: personal missions (docs/model.md 2.2 and 2.10).

    At the start of each personal period (``age % period == 0``) the mission of the period that just
    ended is resolved (``A_M_FAILED`` if its target is still open, else ``A_M_DONE``; not on the first
    day) and a new target is set from yesterday's ``scan_ema``.  On an active day today's ``scans``
    count toward an open target; reaching it closes the mission (``A_M_REACHED``).  Reads
    ``scan_ema``; writes ``m_target`` and ``m_progress``.  Returns the mission XP earned today.
    """
    r = users[u]
    a64 = np.uint64(age)
    if a64 - ((a64 * p.period_magic) >> np.uint64(32)) * p.period == 0:  # age % period, without a division
        if age > 0:  # resolve the mission of the period that just ended
            if r.m_target > 0:
                ai[v, A_M_FAILED] += 1
            else:
                ai[v, A_M_DONE] += 1
        rate = r.scan_ema
        if rate < p.min_rate:
            rate = p.min_rate
        tgt = math.floor(p.stretch * rate * p.period + 0.5)
        if tgt < 1:
            tgt = 1
        if tgt > 250:
            tgt = 250
        r.m_target = tgt
        r.m_progress = 0
    x_mission = 0
    if active and r.m_target > 0:
        prog = r.m_progress + scans
        if prog >= r.m_target:
            r.m_target = 0
            x_mission = p.mission_xp
            ai[v, A_M_REACHED] += 1
            prog = 0
        r.m_progress = prog if prog < 255 else 255
    return x_mission


@jit_inline
def streaks(users, u, v, active, alive, p, ai):
    """Phase 6: the streak and the activity window (docs/model.md 2.9 and 2.10).

    An active day extends the live streak ``alive`` by one, pays the streak bonus
    ``min(P_STREAK_DAY * streak, P_STREAK_CAP)`` (counted in ``A_XP_STREAK``) and sets
    ``last_active``; any other day (inactive, or churned) sets ``streak = 0``.  ``act7`` shifts in
    today's activity.  Writes ``streak``, ``last_active`` and ``act7``; returns the streak bonus XP.
    """
    r = users[u]
    if active:
        st = alive + 1
        r.streak = st
        sb = p.prices[v, P_STREAK_DAY] * st
        if sb > p.prices[v, P_STREAK_CAP]:
            sb = p.prices[v, P_STREAK_CAP]
        ai[v, A_XP_STREAK] += sb  # the other rules' XP is count x price (price_ledger)
        r.last_active = p.day
        r.act7 = ((r.act7 << 1) | 1) & 0x7F
        return sb
    r.streak = 0
    r.act7 = (r.act7 << 1) & 0x7F
    return 0


@jit_inline
def adapt(users, u, v, g, a, p, af):
    """Phase 7: the reference point and satisfaction adapt to today's offer (docs/model.md 2.11).

    Reads ``sat`` and the appraisal ``a``; writes ``ref_xp`` and ``sat`` and adds the new satisfaction
    to ``F_SAT_SUM``.  Returns the new satisfaction in float64 (before its rounding to float32).
    """
    r = users[u]
    sg = p.sg_tab
    r.ref_xp = a.ref + sg[g, SG_RHO_REF] * (a.anticipated - a.ref)
    s_old = r.sat
    target = _s_curve(
        sg[g, SG_SAT_BASE] + sg[g, SG_SAT_REF] * a.gain + sg[g, SG_SAT_RANK] * (a.pct - 0.5)
        + sg[g, SG_SAT_XP] * a.perceived
    )
    s_new = s_old + p.rho_sat * (target - s_old)
    r.sat = s_new
    af[v, F_SAT_SUM] += s_new
    return s_new


@jit_inline
def churn(users, u, v, g, s_new, p, ai, af):
    """Phase 8: the churn hazard ``sigmoid(x)`` and its draw ``U(S_CHURN)`` (docs/model.md 2.12).

    Reads today's ``last_active`` and ``streak`` and the new satisfaction ``s_new``; adds the hazard
    to ``F_CHURN_RISK``.  A user who churns gets ``flags |= FLAG_CHURNED``, resolves its open mission
    (``A_M_FAILED`` if ``m_target > 0``, else ``A_M_DONE``; ``m_target = m_progress = 0``) and is
    counted in ``A_CHURNED_TODAY`` and ``A_CHURNED``.
    """
    r = users[u]
    sg = p.sg_tab
    lg = p.log1p_tab
    n_log = lg.shape[0]
    idle = p.day - r.last_active
    if idle >= n_log:
        idle = n_log - 1
    cur = r.streak
    ic = cur if cur < n_log else n_log - 1
    churn_logit = (sg[g, SG_CHURN_BASE] + sg[g, SG_CHURN_IDLE] * lg[idle]
                   - sg[g, SG_CHURN_STREAK] * lg[ic]
                   - sg[g, SG_CHURN_SAT] * (s_new - 0.5))
    e = math.exp(-churn_logit)  # one exp for the hazard and the draw
    af[v, F_CHURN_RISK] += 1.0 / (1.0 + e)  # sigmoid(churn_logit)
    if _happens(uniform_at(p.dkey, u, S_CHURN), e):  # = _bernoulli_logit(U, churn_logit), the exp known
        r.flags = r.flags | FLAG_CHURNED
        if r.m_target > 0:  # the open mission is resolved when the user leaves
            ai[v, A_M_FAILED] += 1
        else:
            ai[v, A_M_DONE] += 1
        r.m_target = 0
        r.m_progress = 0
        ai[v, A_CHURNED_TODAY] += 1
        ai[v, A_CHURNED] += 1


@jit_inline
def ledger(users, u, v, s, age, scans, xp, p, ai, af, site_next):
    """Phase 9, every enrolled user: book today's XP and update the moving averages (docs/model.md
    2.13), then the user's share of the per-variant sums and of tomorrow's site sums.

    Writes ``xp_today = xp`` (the XP claimed today, credited in full: :func:`pay_out` takes back a
    short budget's share), ``cum_xp += xp``, ``scan_ema`` and ``xp_ema``; counts ``A_ACTIVE7``,
    ``A_STREAK_SUM``, ``A_STREAK_SQ``, ``F_SCAN_SUM``, ``F_SCAN_SQ``, ``F_XP_SUM``, ``F_XP_SQ`` (of the
    float32 values as stored) and adds ``xp_ema`` to ``site_next`` (:func:`add_to_site`).
    """
    r = users[u]
    alpha = _ema_rate(age, p.alpha_w)
    r.xp_today = xp
    r.cum_xp += xp
    se = r.scan_ema + alpha * (scans - r.scan_ema)
    xe = r.xp_ema + alpha * (xp - r.xp_ema)
    r.scan_ema = se
    r.xp_ema = xe
    se = np.float64(r.scan_ema)
    xe = np.float64(r.xp_ema)
    if r.act7 != 0:
        ai[v, A_ACTIVE7] += 1
    cs = int(r.streak)
    ai[v, A_STREAK_SUM] += cs
    ai[v, A_STREAK_SQ] += cs * cs
    af[v, F_SCAN_SUM] += se
    af[v, F_SCAN_SQ] += se * se
    af[v, F_XP_SUM] += xe
    af[v, F_XP_SQ] += xe * xe
    add_to_site(site_next, s, v, xe)


@jit_inline
def price_ledger(p, ai):
    """Once per chunk, after its users: the XP ledger of the rules with one price per variant and
    day, as count x price (``A_XP_SCAN = P_SCAN * A_SCANS``, ..., ``A_XP_MISSION = mission_xp *
    A_M_REACHED``): the same integers as summing each user's award, without the per-user updates."""
    prices = p.prices
    for v in range(ai.shape[0]):
        ai[v, A_XP_SCAN] = prices[v, P_SCAN] * ai[v, A_SCANS]
        ai[v, A_XP_FIRST] = prices[v, P_FIRST] * ai[v, A_ACTIVE]
        ai[v, A_XP_FEEDBACK] = prices[v, P_FEEDBACK] * ai[v, A_FEEDBACK]
        ai[v, A_XP_PHOTO] = prices[v, P_PHOTO] * ai[v, A_PHOTOS]
        ai[v, A_XP_ISSUE] = prices[v, P_ISSUE] * ai[v, A_ISSUES]
        ai[v, A_XP_STATUS] = prices[v, P_STATUS] * ai[v, A_STATUS]
        ai[v, A_XP_MISSION] = p.mission_xp * ai[v, A_M_REACHED]


# ==================================================================================================
# The kernels
# ==================================================================================================


@jit_parallel
def step_population(day, seed, site_size, sites_per_chunk, users, cfg, pscale, vs_tab, sg_tab, glob, tenure,
                    log1p_tab, site_prev, site_next, agg_i, agg_f):
    """Advance every enrolled user by one day, in place: the phases of the module docstring.

    ``users`` is the record array of the population (``USER_DTYPE``).  ``cfg`` (V, 10) prices the XP
    a user claims today; ``pscale`` (V,) is the payout ratio users expect (the budget's latest
    pro-rata factor, 1 without a budget), which scales the streak bonus they anticipate (``vs_tab``
    is already built from the expected payout); ``sg_tab``, ``glob``, ``tenure`` and ``log1p_tab`` are
    the tables of :mod:`~arena_env.economy.model` (columns in :mod:`~arena_env.economy.layout`).
    Reads ``site_prev`` (yesterday's site sums, per group); writes the user state (``xp_today`` =
    the XP claimed today, credited in full: :func:`pay_out` takes back the budget's share),
    ``site_next`` (today's site sums, fully overwritten) and the partial aggregates ``agg_i``
    (n_chunks, V, N_AI) and ``agg_f`` (n_chunks, V, N_AF), fully overwritten.
    """
    n_users = users.shape[0]
    n_sites = site_prev.shape[0]
    n_chunks = agg_i.shape[0]
    for c in prange(n_chunks):
        # built per chunk (a few operations): Numba cannot pass a namedtuple into the parallel region
        p = day_params(day, seed, cfg, pscale, vs_tab, sg_tab, glob, tenure, log1p_tab)
        ai = agg_i[c]  # this chunk's rows (2-D indexing in the phases: no per-user array views)
        af = agg_f[c]
        ai[:] = 0
        af[:] = 0.0
        s_lo = c * sites_per_chunk
        s_hi = min(s_lo + sites_per_chunk, n_sites)
        for s in range(s_lo, s_hi):
            mean_c, inv_c = site_standing(site_prev, s, 0)
            mean_t, inv_t = site_standing(site_prev, s, SITE_GROUP)
            for k in range(N_SITE):
                site_next[s, k] = 0.0
            u_hi = min((s + 1) * site_size, n_users)
            for u in range(s * site_size, u_hi):
                e0 = users[u].enroll_day
                if e0 > day:
                    continue
                v = users[u].variant
                g = users[u].segment
                age = day - e0
                scans = 0
                xp = 0
                if recruit(users, u, v, age, ai):  # 1. churned earlier: the streak is gone, the window drains
                    streaks(users, u, v, False, 0, p, ai)
                else:
                    a = appraise(users, u, v, g, mean_c if v == 0 else mean_t, inv_c if v == 0 else inv_t, p)  # 2.
                    active = choose_activity(users, u, g, age, a, p)  # 3.
                    if active:
                        scans, xp = act_and_earn(users, u, v, g, p, ai)  # 4.
                    xp += missions(users, u, v, age, active, scans, p, ai)  # 5.
                    xp += streaks(users, u, v, active, a.alive, p, ai)  # 6.
                    s_new = adapt(users, u, v, g, a, p, af)  # 7.
                    churn(users, u, v, g, s_new, p, ai, af)  # 8.
                ledger(users, u, v, s, age, scans, xp, p, ai, af, site_next)  # 9.
        price_ledger(p, ai)


@jit_inline
def withhold(users, u, v, age, scale, alpha_w, ai):
    """The phase of :func:`pay_out`, per enrolled user: under a payout ratio ``scale[v] < 1`` the user
    keeps ``floor(xp_today * scale[v])`` of today's claim; the rest is taken back from ``cum_xp`` and
    ``xp_ema`` (the same moving-average step, undone for the withheld part) and booked in
    ``A_XP_BUDGET`` (<= 0).  Writes ``xp_today``, ``cum_xp`` and ``xp_ema``."""
    r = users[u]
    x = r.xp_today
    if x > 0 and scale[v] < 1.0:
        kept = int(math.floor(x * scale[v]))
        withheld = x - kept
        r.cum_xp -= withheld
        r.xp_today = kept
        r.xp_ema = r.xp_ema - _ema_rate(age, alpha_w) * withheld
        ai[v, A_XP_BUDGET] -= withheld


@jit_parallel
def pay_out(day, site_size, sites_per_chunk, users, scale, glob, site_next, agg_i, agg_f):
    """Credit today's claims pro rata, in place: each user of variant ``v`` keeps
    ``floor(xp_today * scale[v])`` of the XP :func:`step_population` credited in full (:func:`withhold`).

    Runs after :func:`step_population` on days when a budget is short (some ``scale[v] < 1``).  Books
    the withheld XP in the ledger column ``A_XP_BUDGET`` (<= 0), and recomputes what depends on
    ``xp_ema``: ``F_XP_SUM``, ``F_XP_SQ`` and ``site_next``.  Sums run in user order per chunk, as in
    :func:`step_population`, so results do not depend on the thread count.
    """
    n_users = users.shape[0]
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
                e0 = users[u].enroll_day
                if e0 > day:
                    continue
                v = users[u].variant
                withhold(users, u, v, day - e0, scale, alpha_w, ai)
                xe = np.float64(users[u].xp_ema)
                af[v, F_XP_SUM] += xe
                af[v, F_XP_SQ] += xe * xe
                add_to_site(site_next, s, v, xe)
