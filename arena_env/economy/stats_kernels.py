"""Metric statistics (Numba): Welch's t-test, Fisher's exact test with the odds ratio, Cohen's d, and
:func:`compare_to_control`, which compares every variant with the control on every metric.

Both backends of the environment use these kernels: they are statistics, not the population model,
so there is one implementation, and ``tests/test_stats.py`` checks it against SciPy
(``scipy.stats.ttest_ind``, ``ttest_ind_from_stats``, ``t.ppf``, ``t.sf``, ``fisher_exact``, ...) over a
range of inputs, edge cases included.

Conventions shared by every test:

* Variant "1" is the treatment, variant "2" the control; differences are treatment minus control.
* Tests are two-sided at 95% (alpha = 0.05); variances are sample variances (ddof=1).
* Undefined results are NaN, never an exception: kernels run inside the environment step.
* Inputs are not validated (counts must be non-negative integers with successes <= trials, and
  ``out`` buffers must be long enough); callers validate once, outside the hot loop.

Special functions are implemented here (no SciPy at run time):

* The Student t tail ``P(|T| >= |t|) = I_{df/(df+t^2)}(df/2, 1/2)`` evaluates the classical
  continued fraction of the regularized incomplete beta (with ``lgamma`` from :mod:`math` in the
  prefactor) in the form ``BFRAC`` of TOMS 708 (Didonato & Morris 1992): forward recurrence of the
  convergents with rescaling, written in terms of ``y = 1 - x`` and ``lambda = a - (a + b) x`` as
  computed from ``t^2`` without cancellation.  The textbook form (modified Lentz on the same
  fraction in ``x``) loses about ``df * 1e-16`` relative accuracy to the rounding of ``x``
  (4e-10 at ``df = 1e7``); this one keeps ~1e-14 for ``df`` up to 1e12.
* The 97.5% t quantile solves ``P(|T| >= t) = 0.05`` with Newton steps in ``log t`` started from
  the Cornish-Fisher expansion (Abramowitz & Stegun 26.7.5); two to five steps reach full precision,
  and for ``df >= 1000`` the expansion alone is already exact to ~1e-16 (its error is O(df^-5)).
* Fisher's two-sided p-value walks the hypergeometric pmf outward from the mode with the ratio
  recurrence, so its cost is O(sqrt(n)) terms, not O(n) lgamma calls.
"""

from __future__ import annotations

import math

import numpy as np

from arena_env._numba import jit

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
def student_p(t2, df):
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
def student_q975(df):
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
        p, g = student_p(t * t, df)
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
    half = student_q975(df) * se
    out[1] = diff - half
    out[2] = diff + half
    out[3] = t
    out[4] = df
    out[5] = student_p(t * t, df)[0]


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
