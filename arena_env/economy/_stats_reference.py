"""NumPy twins of :mod:`._stats_kernels` (same names, same signatures, agree to 1e-12 relative).

See :mod:`._stats_kernels` for the formulas, edge-case conventions and references.  The special
functions (incomplete beta continued fraction, t quantile) are plain-Python transcriptions of the
kernels; the Fisher p-value is written as its definition over the whole support with NumPy
(``sum(pmf[pmf <= pmf[a] * (1 + 1e-7)]) / sum(pmf)``), without the kernel's early stopping.
"""

from __future__ import annotations

import math

import numpy as np

from ._stats_kernels import (
    _CF_EPS,
    _CF_MAXIT,
    _FISHER_LOG_FLOOR,
    _FISHER_REL,
    _FISHER_SCALE,
    _LGAMMA_HALF,
    _LOG_ALPHA,
    _NEWTON_MAXIT,
    _SERIES_MIN_DF,
    _Z975,
    N_TEST_FIELDS,
    T_CI_HI,
    T_CI_LO,
    T_COHEN_D,
    T_DF,
    T_DIFF,
    T_OR,
    T_OR_HI,
    T_OR_LO,
    T_P_FISHER,
    T_P_WELCH,
    T_STAT,
)

__all__ = [
    "T_DIFF",
    "T_CI_LO",
    "T_CI_HI",
    "T_STAT",
    "T_DF",
    "T_P_WELCH",
    "T_OR",
    "T_OR_LO",
    "T_OR_HI",
    "T_P_FISHER",
    "T_COHEN_D",
    "N_TEST_FIELDS",
    "welch_test",
    "fisher_test",
    "cohens_d",
    "compare_to_control",
    "mean_std",
]


def _stirling_tail(x):
    x2 = 1.0 / (x * x)
    return (1.0 / 12.0 - x2 * (1.0 / 360.0 - x2 * (1.0 / 1260.0 - x2 * (1.0 / 1680.0 - x2 / 1188.0)))) / x


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
    """Welch's t-test (Welch 1947): ``out[:6] = diff, ci_lo, ci_hi, t, df, p``; NaN where undefined."""
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
    k = np.arange(mode, hi, dtype=np.float64)  # pmf(k + 1) / pmf(k)
    up = ((f1 - k) * (fn - k)) / ((k + 1.0) * (f0 + k + 1.0))
    k = np.arange(mode, lo, -1, dtype=np.float64)  # pmf(k - 1) / pmf(k)
    down = (k * (f0 + k)) / ((f1 - k + 1.0) * (fn - k + 1.0))
    w = np.concatenate(
        (np.cumprod(np.r_[_FISHER_SCALE, down])[:0:-1], np.cumprod(np.r_[_FISHER_SCALE, up]))
    )  # pmf(lo..hi) / pmf(mode) * 2^960
    thr = w[a - lo] * _FISHER_REL
    if thr >= _FISHER_SCALE:
        return 1.0
    return min(w[w <= thr].sum() / w.sum(), 1.0)


def fisher_test(a, b, c, d, out):
    """Fisher's exact test (as in scipy) with Woolf's (1955) odds-ratio CI, Haldane (1956) +0.5 on
    zero cells: ``out[:4] = odds_ratio, or_lo, or_hi, p``."""
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
    """Cohen's d (Cohen 1988) with the pooled sd; NaN for an empty group, ``n1 + n2 <= 2`` or sd 0."""
    if n1 < 1 or n2 < 1 or n1 + n2 <= 2:
        return math.nan
    ss = (n1 - 1.0) * v1 if n1 > 1 else 0.0
    ss += (n2 - 1.0) * v2 if n2 > 1 else 0.0
    s = math.sqrt(ss / (n1 + n2 - 2.0)) if ss >= 0.0 else math.nan
    return (m1 - m2) / s if s > 0.0 else math.nan


def compare_to_control(mean, var, n, succ, trials, is_binary, out):
    """Every row of (V, M) statistics against row 0: ``out`` (V, M, N_TEST_FIELDS), row 0 NaN."""
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


def mean_std(total, total_sq, n):
    """``(total / n, sqrt(max(total_sq - total * mean, 0) / (n - 1)))``; (0.0, NaN) at n = 0, NaN std at n = 1."""
    if n <= 0:
        return 0.0, math.nan
    mean = total / n
    if n < 2:
        return mean, math.nan
    return mean, math.sqrt(max(total_sq - total * mean, 0.0) / (n - 1.0))
