"""Metric statistics (``stats_kernels``, used by both backends) against SciPy, an independent
implementation: ``scipy.stats.ttest_ind`` / ``ttest_ind_from_stats`` (``equal_var=False``), ``t.ppf``,
``t.sf``, ``fisher_exact`` and ``hypergeom``, over ordinary inputs and edge cases (tiny samples, zero
variances, empty groups, zero cells, huge counts, p-values down to 1e-300 and below)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from arena_env.economy import stats_kernels as S

Z975 = 1.959963984540054


def assert_same(x, y, rtol=1e-12, atol=0.0):
    """Equal within ``rtol`` (and ``atol``), with NaN and infinities in the same places."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(x), np.isnan(y))
    np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, equal_nan=True)


def welch(*args):
    out = np.full(6, -7.0)
    S.welch_test(*args, out)
    return out


def fisher(a, b, c, d):
    out = np.full(4, -7.0)
    S.fisher_test(a, b, c, d, out)
    return out


def scipy_welch(m1, v1, n1, m2, v2, n2):
    """SciPy's Welch test from summary statistics, as ``(t, p, df, half)`` (``half`` = the half-width
    of the 95% CI of the difference), or None where the test is undefined (a group of fewer than two,
    or no spread at all).

    The inputs are first shifted to ``m2 = 0`` and scaled to ``se = 1`` (Welch's t, df and p depend only
    on the difference and are scale-invariant): SciPy squares the variances in its df formula, which
    underflows or overflows at extreme scales."""
    if not (n1 >= 2 and n2 >= 2):
        return None
    se2 = v1 / n1 + v2 / n2
    if not (se2 > 0.0 and math.isfinite(se2)):
        return None
    c = math.sqrt(se2)
    a1, a2 = v1 / se2, v2 / se2  # scaled variances
    res = stats.ttest_ind_from_stats((m1 - m2) / c, math.sqrt(a1), n1, 0.0, math.sqrt(a2), n2, equal_var=False)
    w1, w2 = a1 / n1, a2 / n2
    df = (w1 + w2) ** 2 / (w1**2 / (n1 - 1) + w2**2 / (n2 - 1))
    return float(res.statistic), float(res.pvalue), df, float(stats.t.ppf(0.975, df)) * c


def check_welch(out, m1, v1, n1, m2, v2, n2):
    assert out[S.T_DIFF] == m1 - m2 or (math.isnan(out[S.T_DIFF]) and math.isnan(m1 - m2))
    ref = scipy_welch(m1, v1, n1, m2, v2, n2)
    if ref is None:
        assert np.isnan(out[1:6]).all()
        return
    t, p, df, half = ref
    diff = m1 - m2
    assert out[S.T_STAT] == pytest.approx(t, rel=1e-12, abs=1e-300)
    assert out[S.T_DF] == pytest.approx(df, rel=1e-12)
    assert out[S.T_P_WELCH] == pytest.approx(p, rel=1e-9, abs=1e-300)
    assert out[S.T_CI_LO] == pytest.approx(diff - half, rel=1e-9, abs=1e-12 * half)
    assert out[S.T_CI_HI] == pytest.approx(diff + half, rel=1e-9, abs=1e-12 * half)


# --------------------------------------------------------------------------- API


def test_output_columns():
    columns = ["T_DIFF", "T_CI_LO", "T_CI_HI", "T_STAT", "T_DF", "T_P_WELCH"]
    columns += ["T_OR", "T_OR_LO", "T_OR_HI", "T_P_FISHER", "T_COHEN_D"]
    assert [getattr(S, c) for c in columns] == list(range(11))
    assert S.N_TEST_FIELDS == 11
    for name in ("welch_test", "fisher_test", "cohens_d", "compare_to_control", "student_p", "student_q975"):
        assert getattr(S, name).__doc__, name


# --------------------------------------------------------------------------- Welch

WELCH_EDGES = [
    (1.0, 2.0, 10, 0.5, 1.0, 20),  # ordinary
    (0.5, 1.0, 10, 0.5, 1.0, 10),  # equal means: t = 0, p = 1
    (1.0, 0.0, 10, 0.0, 0.0, 10),  # zero variances: undefined
    (1.0, 0.0, 10, 0.0, 2.0, 7),  # one zero variance: df = n2 - 1
    (1.0, 1.0, 1, 0.0, 1.0, 10),  # n1 = 1: undefined
    (0.0, math.nan, 0, 0.0, 1.0, 10),  # empty treatment (mean 0.0, variance NaN): undefined
    (1.0, 1.0, 2, 0.0, 1.0, 2),  # smallest defined case, df = 2
    (0.3, 0.21, 10_000_000, 0.2999, 0.2101, 9_000_000),  # huge samples, df ~ 1.9e7
    (10.0, 1.0, 50, 0.0, 2.0, 60),  # t ~ 44: p ~ 1e-60
    (-3.0, 1e-6, 40, 0.0, 1e-6, 40),  # t ~ -13000, p ~ 6e-250
    (-3.0, 1e-9, 40, 0.0, 1e-9, 40),  # p underflows to 0
    (1e-300, 1e-300, 5, 0.0, 1e-300, 5),  # tiny variances: no under/overflow in df
    (0.0, 0.0, 2, 1.7e-157, 1.0, 2),  # t^2 subnormal
    (0.0, 0.0, 2, 2.0033980093564848e-161, 163.0, 3),  # t^2 / (df + t^2) underflows to 0 (found by hypothesis)
    (1e200, 1e-200, 2, -1e200, 1e-200, 2),  # t^2 overflows: p = 0
]


@pytest.mark.parametrize("args", WELCH_EDGES)
def test_welch_matches_scipy_on_edge_cases(args):
    check_welch(welch(*args), *args)


def test_welch_edge_conventions():
    out = welch(1.0, 0.0, 10, 0.0, 0.0, 10)
    assert out[0] == 1.0 and np.isnan(out[1:]).all()
    out = welch(2.0, 1.0, 1, 0.0, 1.0, 10)
    assert out[0] == 2.0 and np.isnan(out[1:]).all()
    out = welch(0.5, 1.0, 10, 0.5, 1.0, 10)
    assert out[S.T_STAT] == 0.0 and out[S.T_P_WELCH] == 1.0 and out[S.T_CI_LO] == -out[S.T_CI_HI]
    out = welch(1.0, 0.0, 10, 0.0, 2.0, 7)
    assert out[S.T_DF] == pytest.approx(6.0, rel=1e-15)
    out = welch(-3.0, 1e-6, 40, 0.0, 1e-6, 40)
    assert out[S.T_DF] == pytest.approx(78.0, rel=1e-14)
    p = 2.0 * stats.t.sf(-out[S.T_STAT], 78.0)
    assert 1e-300 < out[S.T_P_WELCH] < 1e-240 and out[S.T_P_WELCH] == pytest.approx(p, rel=1e-9)
    assert welch(1e200, 1e-200, 2, -1e200, 1e-200, 2)[S.T_P_WELCH] == 0.0
    assert welch(0.0, 0.0, 2, 1.7e-157, 1.0, 2)[S.T_P_WELCH] == 1.0


SAMPLES = [
    ([1.0, 2.0, 4.0], [0.0, 1.0]),  # tiny samples
    ([1.0, 2.0], [3.0, 5.0]),  # two users per group
    ([2.0, 2.0, 2.0], [1.0, 3.0]),  # no spread in one group: df = n2 - 1
    ([2.0, 2.0, 2.0], [1.0, 3.0, 8.0, 8.0]),
    ([5.0], [1.0, 2.0, 3.0]),  # a group of one: undefined
    ([1.0, 1.0], [1.0, 1.0, 1.0]),  # no spread at all: undefined
    ([0.0] * 999 + [1.0], [0.0] * 1000),  # a rare event in one group only
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # SciPy warns on samples without spread
@pytest.mark.parametrize("x, y", SAMPLES)
def test_welch_matches_scipy_ttest_ind_on_samples(x, y):
    x, y = np.asarray(x), np.asarray(y)
    v1 = x.var(ddof=1) if x.size > 1 else math.nan
    v2 = y.var(ddof=1) if y.size > 1 else math.nan
    out = welch(x.mean(), v1, x.size, y.mean(), v2, y.size)
    res = stats.ttest_ind(x, y, equal_var=False)
    assert out[S.T_DIFF] == x.mean() - y.mean()
    if np.isnan(res.statistic):
        assert np.isnan(out[1:]).all()
        return
    lo, hi = res.confidence_interval(0.95)
    assert out[S.T_STAT] == pytest.approx(res.statistic, rel=1e-12)
    assert out[S.T_P_WELCH] == pytest.approx(res.pvalue, rel=1e-9)
    assert out[S.T_DF] == pytest.approx(res.df, rel=1e-12)
    assert out[S.T_CI_LO] == pytest.approx(lo, rel=1e-9, abs=1e-12)
    assert out[S.T_CI_HI] == pytest.approx(hi, rel=1e-9, abs=1e-12)


def test_welch_matches_scipy_ttest_ind_on_random_samples():
    rng = np.random.default_rng(11)
    for _ in range(200):
        n1, n2 = (int(k) for k in rng.integers(2, 3000, 2)) if rng.random() < 0.7 else rng.integers(2, 6, 2)
        x = rng.normal(rng.normal(0, 0.3), rng.uniform(0.1, 3.0), n1)
        y = rng.normal(0.0, rng.uniform(0.1, 3.0), n2)
        out = welch(x.mean(), x.var(ddof=1), n1, y.mean(), y.var(ddof=1), n2)
        res = stats.ttest_ind(x, y, equal_var=False)
        lo, hi = res.confidence_interval(0.95)
        assert out[S.T_STAT] == pytest.approx(res.statistic, rel=1e-11)
        assert out[S.T_P_WELCH] == pytest.approx(res.pvalue, rel=1e-9)
        assert out[S.T_DF] == pytest.approx(res.df, rel=1e-11)
        assert out[S.T_CI_LO] == pytest.approx(lo, rel=1e-9, abs=1e-12)
        assert out[S.T_CI_HI] == pytest.approx(hi, rel=1e-9, abs=1e-12)


def test_welch_matches_scipy():
    rng = np.random.default_rng(20240601)
    for _ in range(400):
        n1, n2 = (int(x) for x in 10 ** rng.uniform(0.31, 7.0, 2))  # n >= 2
        v1, v2 = 10 ** rng.uniform(-3, 3, 2)
        se = math.sqrt(v1 / n1 + v2 / n2)
        m1, m2 = rng.normal(0, 1, 2) * se * 10 ** rng.uniform(-2, 1.6)  # |t| up to ~200
        check_welch(welch(m1, v1, n1, m2, v2, n2), m1, v1, n1, m2, v2, n2)


_VARIANCE = st.one_of(st.just(0.0), st.floats(1e-200, 1e4))


@settings(max_examples=150, deadline=None)
@given(m1=st.floats(-1e3, 1e3), m2=st.floats(-1e3, 1e3), v1=_VARIANCE, v2=_VARIANCE,
       n1=st.integers(0, 10**7), n2=st.integers(0, 10**7))
def test_welch_matches_scipy_on_random_summaries(m1, m2, v1, v2, n1, n2):
    check_welch(welch(m1, v1, n1, m2, v2, n2), m1, v1, n1, m2, v2, n2)


@pytest.mark.parametrize("t", [1e-3, 0.5, 1.0, 1.5, 2.0, 3.0, 8.0, 30.0, 200.0, 1e4])
@pytest.mark.parametrize("df", [1.0, 1.7, 2.0, 5.5, 30.0, 300.0, 1e4, 2e6, 1e7])
def test_student_p_matches_scipy_including_tiny_p(t, df):
    p = S.student_p(t * t, df)[0]
    expected = 2.0 * stats.t.sf(t, df)
    assert p == pytest.approx(expected, rel=1e-9, abs=1e-300)
    if expected > 1e-300:
        assert p > 0.0


def test_student_p_edge_values():
    assert S.student_p(0.0, 5.0) == (1.0, 0.0)
    assert S.student_p(math.inf, 5.0) == (0.0, 0.0)
    assert all(math.isnan(x) for x in S.student_p(math.nan, 5.0))
    assert all(math.isnan(x) for x in S.student_p(1.0, math.nan))


QUANTILE_DFS = [1.0, 1.01, 1.5, 2.0, 3.7, 10.0, 99.5, 150.0, 250.0, 500.0, 999.0, 1000.0]


@pytest.mark.parametrize("df", QUANTILE_DFS + [0.05, 0.5, 1e4, 2e6, 1e7, 1e12])
def test_t_quantile_matches_scipy(df):
    q = S.student_q975(df)
    assert q == pytest.approx(stats.t.ppf(0.975, df), rel=1e-13)
    assert q > Z975


def test_t_quantile_tends_to_normal():
    assert S.student_q975(1e16) == pytest.approx(Z975, rel=1e-15)
    assert S.student_q975(1e12) == pytest.approx(Z975 + 2.37e-12, rel=1e-14)  # z + (z^3 + z) / 4df
    assert S.student_q975(1e7) == pytest.approx(1.959964221767203, rel=1e-13)
    assert math.isnan(S.student_q975(0.0)) and math.isnan(S.student_q975(-1.0))


# --------------------------------------------------------------------------- Fisher

FISHER_EDGES = [
    (10, 20, 30, 40),
    (0, 0, 0, 0),
    (0, 0, 3, 4),  # empty treatment row
    (0, 5, 0, 3),  # no successes at all
    (5, 0, 3, 0),  # no failures at all
    (0, 5, 3, 7),  # OR = 0
    (3, 0, 0, 4),  # OR = inf
    (1, 0, 0, 0),
    (1, 0, 0, 1),  # the smallest informative table
    (7, 7, 7, 7),  # observed table is the mode: p = 1
    (250_000, 250_000, 250_000, 250_000),
    (250_500, 249_500, 250_000, 250_000),
    (250_100, 249_900, 249_900, 250_100),  # symmetric margins: exact tie with the mirror table
    (1_000_000, 0, 0, 1_000_000),  # p underflows to 0
    (100_000, 900_000, 101_000, 899_000),
    (3, 1_000_000, 0, 1_000_000),
    (0, 1_000_000, 5, 1_000_000),
    (3740, 26625, 3848, 27402),  # a near-tie (1e-14 < gap < 1e-7): not counted, as in SciPy
    (81770, 204327, 18417, 45976),  # same
]


@pytest.mark.parametrize(
    "a, b",
    [(3, 5), (5, 3), (10, 20), (12, 8), (97, 103), (1000, 1100), (50120, 49880), (250100, 249900)],
)
def test_fisher_counts_exact_ties(a, b):
    # [[a, b], [b, a]] has symmetric margins: the mirror table [[b, a], [a, b]] has the same pmf
    # and must be counted (rounding of the pmf must not break the tie)
    p = fisher(a, b, b, a)[3]
    assert p == pytest.approx(stats.fisher_exact([[a, b], [b, a]]).pvalue, abs=1e-9)
    lower = stats.hypergeom.cdf(min(a, b), 2 * (a + b), a + b, a + b)
    assert p == pytest.approx(min(2 * lower, 1.0), abs=1e-9)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # SciPy's odds ratio of a table with a zero margin
@pytest.mark.parametrize("table", FISHER_EDGES)
def test_fisher_matches_scipy_on_edge_cases(table):
    a, b, c, d = table
    out = fisher(a, b, c, d)
    res = stats.fisher_exact([[a, b], [c, d]])
    assert_same(out[0], res.statistic, rtol=0.0)
    assert out[3] == pytest.approx(res.pvalue, abs=1e-9)
    if res.pvalue > 1e-250:
        assert out[3] == pytest.approx(res.pvalue, rel=1e-8)
    assert 0.0 <= out[3] <= 1.0


def test_fisher_edge_conventions():
    out = fisher(0, 0, 3, 4)
    assert np.isnan(out[:3]).all() and out[3] == 1.0
    out = fisher(3, 0, 0, 4)  # Haldane-Anscombe: every cell + 0.5
    half = Z975 * math.sqrt(1 / 3.5 + 1 / 0.5 + 1 / 0.5 + 1 / 4.5)
    assert out[0] == np.inf
    assert out[1] == pytest.approx(3.5 * 4.5 / 0.25 * math.exp(-half), rel=1e-14)
    assert out[2] == pytest.approx(3.5 * 4.5 / 0.25 * math.exp(half), rel=1e-14)
    assert fisher(7, 7, 7, 7)[3] == 1.0
    assert fisher(1_000_000, 0, 0, 1_000_000)[3] == 0.0


def test_fisher_woolf_interval():
    rng = np.random.default_rng(7)
    for a, b, c, d in rng.integers(1, 10**6, (50, 4)):
        out = fisher(a, b, c, d)
        log_or = math.log(a * d / (b * c))
        half = Z975 * math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
        assert out[0] == pytest.approx(a * d / (b * c), rel=1e-15)
        assert out[0] == pytest.approx(stats.contingency.odds_ratio([[a, b], [c, d]], kind="sample").statistic,
                                       rel=1e-12)
        assert out[1] == pytest.approx(math.exp(log_or - half), rel=1e-12)
        assert out[2] == pytest.approx(math.exp(log_or + half), rel=1e-12)
        assert out[1] < out[0] < out[2]


@pytest.mark.parametrize("hi", [6, 60, 2_000, 200_000, 1_000_000])
def test_fisher_matches_scipy(hi):
    rng = np.random.default_rng(hi)
    for _ in range(60):
        a, b = (int(x) for x in rng.integers(0, hi, 2))
        # control near the treatment rate, so that p spans (1e-300, 1] rather than underflowing
        rate = (a + 0.5) / (a + b + 1.0) * (1 + rng.normal(0, 3) / math.sqrt(a + 1.0))
        trials = int(rng.integers(1, hi * 2))
        c = int(np.clip(rng.binomial(trials, np.clip(rate, 0, 1)), 0, trials))
        d = trials - c
        out = fisher(a, b, c, d)
        res = stats.fisher_exact([[a, b], [c, d]])
        assert_same(out[0], res.statistic, rtol=1e-15)
        assert out[3] == pytest.approx(res.pvalue, abs=1e-9)
        if res.pvalue > 1e-250:
            assert out[3] == pytest.approx(res.pvalue, rel=1e-8)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(max_examples=120, deadline=None)
@given(
    a=st.integers(0, 3000),
    b=st.integers(0, 3000),
    c=st.integers(0, 3000),
    d=st.integers(0, 3000),
    scale=st.sampled_from([1, 1, 300]),
)
def test_fisher_matches_scipy_on_random_tables(a, b, c, d, scale):
    a, b, c, d = a * scale, b * scale, c * scale, d * scale
    out = fisher(a, b, c, d)
    res = stats.fisher_exact([[a, b], [c, d]])
    assert_same(out[0], res.statistic, rtol=1e-15)
    assert out[3] == pytest.approx(res.pvalue, abs=1e-9)
    assert 0.0 <= out[3] <= 1.0


# --------------------------------------------------------------------------- Cohen's d


def pooled_d(x, y):
    """Cohen's d from the samples: the difference of means over the root of the pooled squared
    deviations from each group's own mean, divided by n1 + n2 - 2."""
    dev = np.concatenate([x - x.mean(), y - y.mean()])
    return (x.mean() - y.mean()) / math.sqrt(np.dot(dev, dev) / (x.size + y.size - 2))


def test_cohens_d_conventions():
    assert np.isnan(S.cohens_d(1.0, 2.0, 1, 0.0, 1.0, 1))  # n1 + n2 <= 2
    assert np.isnan(S.cohens_d(1.0, 0.0, 10, 1.0, 0.0, 10))  # pooled sd 0
    assert np.isnan(S.cohens_d(0.0, math.nan, 0, 0.0, 4.0, 5))  # empty group
    assert np.isnan(S.cohens_d(0.0, 4.0, 5, 0.0, math.nan, 0))
    # a group of one adds no within-group variance (its sample variance, NaN, is ignored)
    assert S.cohens_d(1.0, math.nan, 1, 0.0, 4.0, 5) == pytest.approx(pooled_d(np.array([1.0]),
                                                                               np.array([-2.0, -2, 0, 2, 2])))
    assert S.cohens_d(3.0, 1e-300, 10**7, -3.0, 1e-300, 10**7) == pytest.approx(6e150, rel=1e-12)


@pytest.mark.parametrize("n1, n2", [(2, 2), (2, 5), (3, 3), (1, 4), (30, 40), (1000, 20)])
def test_cohens_d_matches_the_samples(n1, n2):
    rng = np.random.default_rng(n1 * 100 + n2)
    for _ in range(20):
        x = rng.normal(0.3, 1.5, n1)
        y = rng.normal(0.0, 1.0, n2)
        v1 = x.var(ddof=1) if n1 > 1 else math.nan
        d = S.cohens_d(x.mean(), v1, n1, y.mean(), y.var(ddof=1), n2)
        assert d == pytest.approx(pooled_d(x, y), rel=1e-12)


# --------------------------------------------------------------------------- batch


def make_batch(rng, V=5, M=6):
    n = rng.integers(2, 200_000, (V, M))
    mean = rng.normal(0.0, 1.0, (V, M)) * 0.01 + 1.0
    var = rng.uniform(0.5, 2.0, (V, M))
    trials = rng.integers(1, 500_000, (V, M))
    succ = rng.binomial(trials, 0.1).astype(np.int64)
    is_binary = np.array([True, False] * (M // 2) + [True] * (M % 2))
    return mean, var, n, succ, trials, is_binary


def run_batch(*args):
    mean = args[0]
    out = np.full((*mean.shape, S.N_TEST_FIELDS), -7.0)
    S.compare_to_control(*args, out)
    return out


def test_compare_to_control_equals_scalar_kernels():
    rng = np.random.default_rng(5)
    mean, var, n, succ, trials, is_binary = args = make_batch(rng)
    n[2, 1] = 0  # an empty variant on a continuous metric
    mean[2, 1], var[2, 1] = 0.0, math.nan
    succ[3, 0] = trials[3, 0] = 0  # an empty variant on a binary metric
    out = run_batch(*args)
    assert out.shape == (5, 6, S.N_TEST_FIELDS)
    assert np.isnan(out[0]).all()
    assert np.isnan(out[1:, ~is_binary, S.T_OR : S.T_P_FISHER + 1]).all()
    assert not np.isnan(out[1:, is_binary, S.T_P_FISHER]).any()
    assert np.isnan(out[2, 1, S.T_CI_LO :]).all() and np.isnan(out[2, 1, S.T_COHEN_D])
    assert np.isnan(out[3, 0, S.T_OR : S.T_OR_HI + 1]).all() and out[3, 0, S.T_P_FISHER] == 1.0
    for v in range(1, 5):
        for m in range(6):
            welch_args = (mean[v, m], var[v, m], n[v, m], mean[0, m], var[0, m], n[0, m])
            assert_same(out[v, m, : S.T_P_WELCH + 1], welch(*welch_args), rtol=0.0)
            assert_same(out[v, m, S.T_COHEN_D], S.cohens_d(*welch_args), rtol=0.0)
            if is_binary[m]:
                s1, s0 = succ[v, m], succ[0, m]
                expected = fisher(s1, trials[v, m] - s1, s0, trials[0, m] - s0)
                assert_same(out[v, m, S.T_OR : S.T_P_FISHER + 1], expected, rtol=0.0)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), V=st.integers(1, 4), M=st.integers(1, 4))
def test_compare_to_control_matches_scipy(seed, V, M):
    mean, var, n, succ, trials, is_binary = args = make_batch(np.random.default_rng(seed), V, M)
    out = run_batch(*args)
    assert np.isnan(out[0]).all()
    for v in range(1, V):
        for m in range(M):
            check_welch(out[v, m], mean[v, m], var[v, m], n[v, m], mean[0, m], var[0, m], n[0, m])
            if is_binary[m]:
                table = [[succ[v, m], trials[v, m] - succ[v, m]], [succ[0, m], trials[0, m] - succ[0, m]]]
                res = stats.fisher_exact(table)
                assert out[v, m, S.T_OR] == pytest.approx(res.statistic, rel=1e-15)
                assert out[v, m, S.T_P_FISHER] == pytest.approx(res.pvalue, abs=1e-9)
            else:
                assert np.isnan(out[v, m, S.T_OR : S.T_P_FISHER + 1]).all()
