"""The six engagement metrics per variant, and each treatment's tests against the control.

Inputs are the per-variant aggregates of the population step (``layout.A_*`` / ``F_*`` columns),
today's and the trailing window's.  Definitions (docs/metrics.md has the full text):

=====================  ============================================  ===========  ==============
metric                 value (per variant)                           unit of n    test vs control
=====================  ============================================  ===========  ==============
SCAN_FREQUENCY         mean over enrolled users of scans/day          user         Welch t
                       (per-user moving average, window-equivalent
                       rate 2 / (metric_window + 1))
XP_VELOCITY            mean over enrolled users of XP/day (same)      user         Welch t
RETENTION_RATE         share of enrolled users active in the last     user         Fisher exact
                       7 days, by definition whatever the window
                       (churned users count while their last active day is within those 7)
MISSION_COMPLETION     completed / resolved missions in the window    mission      Fisher exact
                       (a mission resolves at the end of its period
                       or when its user churns)
STREAK_LENGTH          mean current streak over enrolled users        user         Welch t
FEEDBACK_QUALITY       scans with written feedback / scans, window    scan         Fisher exact
=====================  ============================================  ===========  ==============

Confidence is by sample size: ``high`` for n >= 30, ``medium`` for n >= 10, else ``low``.
"""

from __future__ import annotations

import numpy as np

from arena_env._numba import jit

from . import layout as L
from . import stats_kernels as S
from .scenario import METRIC_NAMES

N_METRICS = len(METRIC_NAMES)
SF, XPV, RR, MC, SL, FQ = range(N_METRICS)
IS_BINARY = np.array([False, False, True, True, False, True])
TEST_KIND = tuple("fisher" if b else "welch" for b in IS_BINARY)


def confidence(n: int) -> str:
    """``high`` for n >= 30, ``medium`` for 10 <= n < 30, ``low`` below (the protocol's bands)."""
    return "high" if n >= 30 else "medium" if n >= 10 else "low"


def xp_total(agg_i: np.ndarray) -> np.ndarray:
    """XP credited per variant (sum of the ledger columns, the budget's withheld share included),
    int64 (V,) or (..., V)."""
    return agg_i[..., L.A_XP_SCAN:L.A_XP_BUDGET + 1].sum(axis=-1)


@jit
def _mean_var(total, total_sq, n):
    """Mean and sample variance (clipped at 0; NaN when n < 2) of a per-user quantity from its sums."""
    mean = total / max(n, 1.0) if n > 0 else 0.0
    if n <= 1:
        return mean, np.nan
    var = (total_sq - n * mean * mean) / max(n - 1.0, 1.0)
    return mean, (0.0 if var <= 0.0 else var)  # as np.maximum: -0.0 becomes 0.0, NaN stays


@jit
def _binary(v, m, succ_count, trial_count, mean, var, n, succ, trials):
    """Row ``v``, metric ``m`` of a proportion: counts, its value and the sample variance of its 0/1
    unit (NaN when there are fewer than 2 trials)."""
    succ[v, m] = succ_count
    trials[v, m] = n[v, m] = trial_count
    t = float(trial_count)
    p = succ_count / max(t, 1.0) if t > 0 else 0.0
    mean[v, m] = p
    var[v, m] = p * (1.0 - p) * t / max(t - 1.0, 1.0) if t > 1 else np.nan


@jit
def _summarize(today_i, today_f, window_i, mean, var, n, succ, trials):
    for v in range(today_i.shape[0]):
        e = today_i[v, L.A_ENROLLED]
        fe = float(e)
        mean[v, SF], var[v, SF] = _mean_var(today_f[v, L.F_SCAN_SUM], today_f[v, L.F_SCAN_SQ], fe)
        mean[v, XPV], var[v, XPV] = _mean_var(today_f[v, L.F_XP_SUM], today_f[v, L.F_XP_SQ], fe)
        mean[v, SL], var[v, SL] = _mean_var(float(today_i[v, L.A_STREAK_SUM]), float(today_i[v, L.A_STREAK_SQ]), fe)
        n[v, SF] = n[v, XPV] = n[v, SL] = e
        _binary(v, RR, today_i[v, L.A_ACTIVE7], e, mean, var, n, succ, trials)
        _binary(v, MC, window_i[v, L.A_M_DONE], window_i[v, L.A_M_DONE] + window_i[v, L.A_M_FAILED],
                mean, var, n, succ, trials)
        _binary(v, FQ, window_i[v, L.A_FEEDBACK], window_i[v, L.A_SCANS], mean, var, n, succ, trials)


def summarize(today_i: np.ndarray, today_f: np.ndarray, window_i: np.ndarray):
    """Metric arrays for every variant.

    Args:
        today_i: int64 (V, N_AI) today's aggregates; today_f: float64 (V, N_AF);
        window_i: int64 (V, N_AI) aggregates summed over the trailing metric window.

    Returns:
        ``mean, var, n, succ, trials`` each (V, 6) in ``METRIC_NAMES`` order; ``var`` is the sample
        variance of the metric's unit (NaN when n < 2); succ/trials are 0 for non-binary metrics.
    """
    V = today_i.shape[0]
    mean = np.zeros((V, N_METRICS))
    var = np.zeros((V, N_METRICS))
    n = np.zeros((V, N_METRICS), dtype=np.int64)
    succ = np.zeros((V, N_METRICS), dtype=np.int64)
    trials = np.zeros((V, N_METRICS), dtype=np.int64)
    _summarize(np.ascontiguousarray(today_i, dtype=np.int64), np.ascontiguousarray(today_f, dtype=np.float64),
               np.ascontiguousarray(window_i, dtype=np.int64), mean, var, n, succ, trials)
    return mean, var, n, succ, trials


def metric_dicts(mean, var, n) -> list[dict]:
    """Per variant, ``{NAME: {value, stdDev, sampleSize, confidence}}`` (the protocol's shape)."""
    out = []
    for v in range(mean.shape[0]):
        d = {}
        for m, name in enumerate(METRIC_NAMES):
            sd = float(np.sqrt(var[v, m])) if np.isfinite(var[v, m]) else 0.0
            d[name] = {"value": float(mean[v, m]), "stdDev": sd, "sampleSize": int(n[v, m]),
                       "confidence": confidence(int(n[v, m]))}
        out.append(d)
    return out


def _num(x):
    x = float(x)
    return x if np.isfinite(x) else None


def test_dicts(tests: np.ndarray) -> list[dict]:
    """Per treatment row of ``compare_to_control``'s output, ``{NAME: {...}}`` with JSON-safe numbers
    (None where undefined).  Row 0 (the control) maps to an empty dict."""
    out = [{}]
    for v in range(1, tests.shape[0]):
        d = {}
        for m, name in enumerate(METRIC_NAMES):
            t = tests[v, m]
            p = t[S.T_P_FISHER] if IS_BINARY[m] else t[S.T_P_WELCH]
            rec = {"test": TEST_KIND[m], "difference": _num(t[S.T_DIFF]), "ciLow": _num(t[S.T_CI_LO]),
                   "ciHigh": _num(t[S.T_CI_HI]), "pValue": _num(p), "cohensD": _num(t[S.T_COHEN_D]),
                   "significant": bool(np.isfinite(p) and p < 0.05)}
            if IS_BINARY[m]:
                rec.update(oddsRatio=_num(t[S.T_OR]), orCiLow=_num(t[S.T_OR_LO]), orCiHigh=_num(t[S.T_OR_HI]))
            else:
                rec.update(t=_num(t[S.T_STAT]), df=_num(t[S.T_DF]))
            d[name] = rec
        out.append(d)
    return out


def daily_outcomes(today_i: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """The day's values of the six metrics per variant, (V, 6), used by the reward.

    Scans, XP and feedback quality are today's (scans or XP per enrolled user; feedback / scans);
    retention and streaks are current by definition; mission completion is the window's value.
    """
    today_i = np.ascontiguousarray(today_i, dtype=np.int64)
    out = np.empty((today_i.shape[0], N_METRICS))
    _daily_outcomes(today_i, xp_total(today_i), np.ascontiguousarray(mean, dtype=np.float64), out)
    return out


@jit
def _daily_outcomes(today_i, xp, mean, out):
    for v in range(today_i.shape[0]):
        enrolled = float(max(today_i[v, L.A_ENROLLED], 1))
        scans = float(today_i[v, L.A_SCANS])
        out[v, SF] = scans / enrolled
        out[v, XPV] = float(xp[v]) / enrolled
        out[v, RR] = float(today_i[v, L.A_ACTIVE7]) / enrolled
        out[v, MC] = mean[v, MC]
        out[v, SL] = float(today_i[v, L.A_STREAK_SUM]) / enrolled
        out[v, FQ] = float(today_i[v, L.A_FEEDBACK]) / max(scans, 1.0) if scans > 0 else 0.0


VALUE_TERMS = ("active_day", "scan", "feedback", "photo", "issue", "status", "xp", "churn")
"""The terms of the value objective, in the column order of :func:`daily_value`."""


@jit
def genuine_share(price, junk_xp):
    """Share of actions that are genuine at ``price`` XP per action: ``junk_xp / (junk_xp + price)``
    (a negative price counts as 0)."""
    return junk_xp / (junk_xp + (price if price > 0.0 else 0.0))


def value_coefficients(objective) -> np.ndarray:
    """The constants of the value objective as one float64 vector, in the order :func:`daily_value`
    reads them: the values of an active day, a useful scan, a genuine useful feedback, a genuine
    photo, issue and status report (6), the junk prices of feedback, photos, issues and status
    reports (4), the cost of an XP and the worth of a lost user."""
    v, j = objective.values, objective.junk
    return np.array([v.active_day, v.scan, v.feedback, v.photo, v.issue, v.status,
                     j.feedback, j.photo, j.issue, j.status, objective.xp_cost, objective.churn_cost], dtype=np.float64)


_C_JUNK, _C_XP, _C_CHURN = 6, 10, 11  # in value_coefficients: the junk prices of terms 2..5, the XP cost, the churn cost


def daily_value(today_i: np.ndarray, today_f: np.ndarray, effective_cfg: np.ndarray, objective) -> np.ndarray:
    """The day's value per enrolled user of every variant, (V, 8), by term (:data:`VALUE_TERMS`).

    Each term is per *enrolled* user, churned users included, so no agent can shrink a denominator:
    useful scans, genuine useful feedback, genuine photos and reports (genuine shares at the price paid,
    ``effective_cfg``, :func:`genuine_share`), active user-days, minus the XP credited and the churn
    cost of the users lost today.  The row sum is the money the variant made per enrolled user today.
    ``objective`` is the scenario's objective or its :func:`value_coefficients` (computed once by the env).
    """
    coef = objective if isinstance(objective, np.ndarray) else value_coefficients(objective)
    today_i = np.ascontiguousarray(today_i, dtype=np.int64)
    out = np.empty((today_i.shape[0], len(VALUE_TERMS)))
    _daily_value(today_i, xp_total(today_i), np.ascontiguousarray(today_f, dtype=np.float64),
                 np.ascontiguousarray(effective_cfg, dtype=np.float64), coef, out)
    return out


_VALUE_COUNTS = (L.A_ACTIVE, L.A_USEFUL_SCANS, L.A_USEFUL_FB, L.A_PHOTOS, L.A_ISSUES, L.A_STATUS)
_VALUE_PRICES = (L.P_FEEDBACK, L.P_PHOTO, L.P_ISSUE, L.P_STATUS)  # of the terms 2..5, whose genuine share they set


@jit
def _daily_value(today_i, xp, today_f, effective_cfg, coef, out):
    for v in range(today_i.shape[0]):
        enrolled = float(max(today_i[v, L.A_ENROLLED], 1))
        for k in range(6):
            x = coef[k] * float(today_i[v, _VALUE_COUNTS[k]])
            if k >= 2:
                x *= genuine_share(effective_cfg[v, _VALUE_PRICES[k - 2]], coef[_C_JUNK + k - 2])
            out[v, k] = x / enrolled
        out[v, 6] = -coef[_C_XP] * float(xp[v]) / enrolled
        out[v, 7] = -coef[_C_CHURN] * today_f[v, L.F_CHURN_RISK] / enrolled


def budget_payout(claimed: np.ndarray, enrolled: np.ndarray, pot: float) -> np.ndarray:
    """Payout ratio per treatment when the treatments share a pot of ``pot`` XP (water-filling).

    Each treatment is entitled to the pot in proportion to its enrolled users (its fair share); one
    that claims less keeps all it claims, and the slack it leaves is shared by the others in the same
    proportion, until the pot is spent or every claim is met.  Equivalently, with the per-user level
    ``L`` solving ``sum_v min(claimed_v, L * enrolled_v) = pot``, treatment ``v`` is paid
    ``min(claimed_v, L * enrolled_v)``.  A treatment cannot raise its payout by inflating its claims
    beyond the others' slack, and the sum paid never exceeds ``pot``.
    """
    claimed = np.asarray(claimed, dtype=np.float64)
    enrolled = np.asarray(enrolled, dtype=np.float64)
    scale = np.ones(claimed.shape)
    if claimed.sum() <= pot:
        return scale
    left, open_ = float(pot), claimed > 0
    while open_.any():
        level = left / enrolled[open_].sum() if enrolled[open_].sum() > 0 else 0.0
        met = open_ & (claimed <= level * enrolled)
        if not met.any():
            scale[open_] = level * enrolled[open_] / claimed[open_]
            break
        left -= claimed[met].sum()
        open_ &= ~met
    return scale
