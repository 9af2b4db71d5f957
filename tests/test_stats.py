"""Metric statistics: Numba kernels vs their NumPy twins, and both vs SciPy."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from arena_env.economy import kernels as K
from arena_env.economy import reference as R

Z975 = 1.959963984540054


def assert_same(x, y, rtol=1e-12, atol=0.0):
    """Equal within ``rtol`` (and ``atol``), with NaN and infinities in the same places."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(x), np.isnan(y))
    np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, equal_nan=True)


def welch(mod, *args):
    out = np.full(6, -7.0)
    mod.welch_test(*args, out)
    return out


def fisher(mod, a, b, c, d):
    out = np.full(4, -7.0)
    mod.fisher_test(a, b, c, d, out)
    return out


def scipy_welch(m1, v1, n1, m2, v2, n2):
    res = stats.ttest_ind_from_stats(m1, math.sqrt(v1), n1, m2, math.sqrt(v2), n2, equal_var=False)
    return float(res.statistic), float(res.pvalue)


# --------------------------------------------------------------------------- API


STATS_API = ["T_DIFF", "T_CI_LO", "T_CI_HI", "T_STAT", "T_DF", "T_P_WELCH", "T_OR", "T_OR_LO", "T_OR_HI",
             "T_P_FISHER", "T_COHEN_D", "N_TEST_FIELDS", "welch_test", "fisher_test", "cohens_d",
             "compare_to_control"]


def test_both_modules_export_the_same_api():
    columns = ["T_DIFF", "T_CI_LO", "T_CI_HI", "T_STAT", "T_DF", "T_P_WELCH"]
    columns += ["T_OR", "T_OR_LO", "T_OR_HI", "T_P_FISHER", "T_COHEN_D"]
    assert [getattr(K, c) for c in columns] == list(range(11))
    assert K.N_TEST_FIELDS == R.N_TEST_FIELDS == 11
    for name in STATS_API:
        assert hasattr(R, name), name
        if name.startswith(("T_", "N_")):
            assert getattr(R, name) == getattr(K, name)
        else:
            kernel, twin = getattr(K, name), getattr(R, name)
            assert inspect.signature(kernel.py_func) == inspect.signature(twin)
            assert kernel.__doc__ and twin.__doc__


# --------------------------------------------------------------------------- Welch

WELCH_EDGES = [
    (1.0, 2.0, 10, 0.5, 1.0, 20),  # ordinary
    (0.5, 1.0, 10, 0.5, 1.0, 10),  # equal means: t = 0, p = 1
    (1.0, 0.0, 10, 0.0, 0.0, 10),  # zero variances: undefined
    (1.0, 0.0, 10, 0.0, 2.0, 7),  # one zero variance: df = n2 - 1
    (1.0, 1.0, 1, 0.0, 1.0, 10),  # n1 = 1
    (0.0, math.nan, 0, 0.0, 1.0, 10),  # empty treatment (mean 0.0, variance NaN)
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
def test_welch_kernel_equals_twin_on_edge_cases(args):
    assert_same(welch(K, *args), welch(R, *args))


def test_welch_edge_conventions():
    out = welch(K, 1.0, 0.0, 10, 0.0, 0.0, 10)
    assert out[0] == 1.0 and np.isnan(out[1:]).all()
    out = welch(K, 2.0, 1.0, 1, 0.0, 1.0, 10)
    assert out[0] == 2.0 and np.isnan(out[1:]).all()
    out = welch(K, 0.5, 1.0, 10, 0.5, 1.0, 10)
    assert out[K.T_STAT] == 0.0 and out[K.T_P_WELCH] == 1.0 and out[K.T_CI_LO] == -out[K.T_CI_HI]
    out = welch(K, 1.0, 0.0, 10, 0.0, 2.0, 7)
    assert out[K.T_DF] == pytest.approx(6.0, rel=1e-15)
    out = welch(K, -3.0, 1e-6, 40, 0.0, 1e-6, 40)
    assert out[K.T_DF] == pytest.approx(78.0, rel=1e-14)
    p = 2.0 * stats.t.sf(-out[K.T_STAT], 78.0)
    assert 1e-300 < out[K.T_P_WELCH] < 1e-240 and out[K.T_P_WELCH] == pytest.approx(p, rel=1e-9)


@settings(max_examples=150, deadline=None)
@given(
    m1=st.floats(-1e3, 1e3),
    m2=st.floats(-1e3, 1e3),
    v1=st.floats(0.0, 1e4),
    v2=st.floats(0.0, 1e4),
    n1=st.integers(0, 10**7),
    n2=st.integers(0, 10**7),
)
def test_welch_kernel_equals_twin(m1, m2, v1, v2, n1, n2):
    assert_same(welch(K, m1, v1, n1, m2, v2, n2), welch(R, m1, v1, n1, m2, v2, n2))


def test_welch_matches_scipy():
    rng = np.random.default_rng(20240601)
    for _ in range(400):
        n1, n2 = (int(x) for x in 10 ** rng.uniform(0.31, 7.0, 2))  # n >= 2
        v1, v2 = 10 ** rng.uniform(-3, 3, 2)
        se = math.sqrt(v1 / n1 + v2 / n2)
        m1, m2 = rng.normal(0, 1, 2) * se * 10 ** rng.uniform(-2, 1.6)  # |t| up to ~200
        out = welch(K, m1, v1, n1, m2, v2, n2)
        t, p = scipy_welch(m1, v1, n1, m2, v2, n2)
        assert out[K.T_DIFF] == m1 - m2
        assert out[K.T_STAT] == pytest.approx(t, rel=1e-12)
        assert out[K.T_P_WELCH] == pytest.approx(p, rel=1e-9, abs=1e-300)
        half = stats.t.ppf(0.975, out[K.T_DF]) * se
        assert out[K.T_CI_LO] == pytest.approx(m1 - m2 - half, rel=1e-9, abs=1e-12 * half)
        assert out[K.T_CI_HI] == pytest.approx(m1 - m2 + half, rel=1e-9, abs=1e-12 * half)
        vn1, vn2 = v1 / n1, v2 / n2
        df = (vn1 + vn2) ** 2 / (vn1**2 / (n1 - 1) + vn2**2 / (n2 - 1))
        assert out[K.T_DF] == pytest.approx(df, rel=1e-12)


@pytest.mark.parametrize("t", [1e-3, 0.5, 1.0, 1.5, 2.0, 3.0, 8.0, 30.0, 200.0, 1e4])
@pytest.mark.parametrize("df", [1.0, 1.7, 2.0, 5.5, 30.0, 300.0, 1e4, 2e6, 1e7])
def test_student_p_matches_scipy_including_tiny_p(t, df):
    p = K._student_p(t * t, df)[0]
    expected = 2.0 * stats.t.sf(t, df)
    assert p == pytest.approx(expected, rel=1e-9, abs=1e-300)
    if expected > 1e-300:
        assert p > 0.0


QUANTILE_DFS = [1.0, 1.01, 1.5, 2.0, 3.7, 10.0, 99.5, 150.0, 250.0, 500.0, 999.0, 1000.0]


@pytest.mark.parametrize("df", QUANTILE_DFS + [1e4, 2e6, 1e7, 1e12])
def test_t_quantile_matches_scipy(df):
    q = K._student_q975(df)
    assert q == pytest.approx(stats.t.ppf(0.975, df), rel=1e-13)
    assert q == pytest.approx(R._student_q975(df), rel=1e-13)
    assert q > Z975


def test_t_quantile_tends_to_normal():
    assert K._student_q975(1e16) == pytest.approx(Z975, rel=1e-15)
    assert K._student_q975(1e12) == pytest.approx(Z975 + 2.37e-12, rel=1e-14)  # z + (z^3 + z) / 4df
    assert K._student_q975(1e7) == pytest.approx(1.959964221767203, rel=1e-13)


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
    (7, 7, 7, 7),  # observed table is the mode: p = 1
    (250_000, 250_000, 250_000, 250_000),
    (250_500, 249_500, 250_000, 250_000),
    (250_100, 249_900, 249_900, 250_100),  # symmetric margins: exact tie with the mirror table
    (1_000_000, 0, 0, 1_000_000),  # p underflows to 0
    (100_000, 900_000, 101_000, 899_000),
    (3, 1_000_000, 0, 1_000_000),
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
    p = fisher(K, a, b, b, a)[3]
    assert p == pytest.approx(stats.fisher_exact([[a, b], [b, a]]).pvalue, abs=1e-9)
    lower = stats.hypergeom.cdf(min(a, b), 2 * (a + b), a + b, a + b)
    assert p == pytest.approx(min(2 * lower, 1.0), abs=1e-9)


@pytest.mark.parametrize("table", FISHER_EDGES)
def test_fisher_kernel_equals_twin_and_scipy_on_edge_cases(table):
    a, b, c, d = table
    out = fisher(K, a, b, c, d)
    assert_same(out, fisher(R, a, b, c, d), atol=1e-300)
    res = stats.fisher_exact([[a, b], [c, d]])
    assert_same(out[0], res.statistic, rtol=0.0)
    assert out[3] == pytest.approx(res.pvalue, abs=1e-9)
    assert 0.0 <= out[3] <= 1.0


def test_fisher_edge_conventions():
    out = fisher(K, 0, 0, 3, 4)
    assert np.isnan(out[:3]).all() and out[3] == 1.0
    out = fisher(K, 3, 0, 0, 4)  # Haldane-Anscombe: every cell + 0.5
    half = Z975 * math.sqrt(1 / 3.5 + 1 / 0.5 + 1 / 0.5 + 1 / 4.5)
    assert out[0] == np.inf
    assert out[1] == pytest.approx(3.5 * 4.5 / 0.25 * math.exp(-half), rel=1e-14)
    assert out[2] == pytest.approx(3.5 * 4.5 / 0.25 * math.exp(half), rel=1e-14)
    assert fisher(K, 7, 7, 7, 7)[3] == 1.0
    assert fisher(K, 1_000_000, 0, 0, 1_000_000)[3] == 0.0


def test_fisher_woolf_interval():
    rng = np.random.default_rng(7)
    for a, b, c, d in rng.integers(1, 10**6, (50, 4)):
        out = fisher(K, a, b, c, d)
        log_or = math.log(a * d / (b * c))
        half = Z975 * math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
        assert out[0] == pytest.approx(a * d / (b * c), rel=1e-15)
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
        out = fisher(K, a, b, c, d)
        res = stats.fisher_exact([[a, b], [c, d]])
        assert_same(out[0], res.statistic, rtol=1e-15)
        assert out[3] == pytest.approx(res.pvalue, abs=1e-9)
        if res.pvalue > 1e-250:
            assert out[3] == pytest.approx(res.pvalue, rel=1e-8)


@settings(max_examples=150, deadline=None)
@given(
    a=st.integers(0, 3000),
    b=st.integers(0, 3000),
    c=st.integers(0, 3000),
    d=st.integers(0, 3000),
    scale=st.sampled_from([1, 1, 300]),
)
def test_fisher_kernel_equals_twin(a, b, c, d, scale):
    a, b, c, d = a * scale, b * scale, c * scale, d * scale
    assert_same(fisher(K, a, b, c, d), fisher(R, a, b, c, d), atol=1e-300)


# --------------------------------------------------------------------------- Cohen's d


@pytest.mark.parametrize(
    "args",
    [
        (1.0, 2.0, 10, 0.0, 1.0, 20),
        (1.0, 2.0, 1, 0.0, 1.0, 1),  # n1 + n2 <= 2
        (1.0, 0.0, 10, 1.0, 0.0, 10),  # pooled sd 0
        (1.0, math.nan, 1, 0.0, 4.0, 5),  # a group of one: its variance is ignored
        (0.0, math.nan, 0, 0.0, 4.0, 5),  # empty group
        (3.0, 1e-300, 10**7, -3.0, 1e-300, 10**7),
    ],
)
def test_cohens_d_kernel_equals_twin_on_edge_cases(args):
    assert_same(K.cohens_d(*args), R.cohens_d(*args))


def test_cohens_d_conventions_and_values():
    assert np.isnan(K.cohens_d(1.0, 2.0, 1, 0.0, 1.0, 1))
    assert np.isnan(K.cohens_d(1.0, 0.0, 10, 1.0, 0.0, 10))
    assert np.isnan(K.cohens_d(0.0, math.nan, 0, 0.0, 4.0, 5))
    assert K.cohens_d(1.0, math.nan, 1, 0.0, 4.0, 5) == pytest.approx(1.0 / math.sqrt(16.0 / 4.0))
    rng = np.random.default_rng(3)
    for _ in range(20):
        x = rng.normal(0.3, 1.5, rng.integers(2, 50))
        y = rng.normal(0.0, 1.0, rng.integers(2, 50))
        nx, ny = len(x), len(y)
        pooled = ((nx - 1) * x.var(ddof=1) + (ny - 1) * y.var(ddof=1)) / (nx + ny - 2)
        d = K.cohens_d(x.mean(), x.var(ddof=1), nx, y.mean(), y.var(ddof=1), ny)
        assert d == pytest.approx((x.mean() - y.mean()) / math.sqrt(pooled), rel=1e-13)


@settings(max_examples=100, deadline=None)
@given(
    m1=st.floats(-1e3, 1e3),
    m2=st.floats(-1e3, 1e3),
    v1=st.floats(0.0, 1e4),
    v2=st.floats(0.0, 1e4),
    n1=st.integers(0, 10**7),
    n2=st.integers(0, 10**7),
)
def test_cohens_d_kernel_equals_twin(m1, m2, v1, v2, n1, n2):
    assert_same(K.cohens_d(m1, v1, n1, m2, v2, n2), R.cohens_d(m1, v1, n1, m2, v2, n2))


# --------------------------------------------------------------------------- batch


def make_batch(rng, V=5, M=6):
    n = rng.integers(2, 200_000, (V, M))
    mean = rng.normal(0.0, 1.0, (V, M)) * 0.01 + 1.0
    var = rng.uniform(0.5, 2.0, (V, M))
    trials = rng.integers(1, 500_000, (V, M))
    succ = rng.binomial(trials, 0.1).astype(np.int64)
    is_binary = np.array([True, False] * (M // 2) + [True] * (M % 2))
    return mean, var, n, succ, trials, is_binary


def run_batch(mod, *args):
    mean = args[0]
    out = np.full((*mean.shape, K.N_TEST_FIELDS), -7.0)
    mod.compare_to_control(*args, out)
    return out


def test_compare_to_control_equals_scalar_kernels():
    rng = np.random.default_rng(5)
    mean, var, n, succ, trials, is_binary = args = make_batch(rng)
    n[2, 1] = 0  # an empty variant on a continuous metric
    mean[2, 1], var[2, 1] = 0.0, math.nan
    succ[3, 0] = trials[3, 0] = 0  # an empty variant on a binary metric
    out = run_batch(K, *args)
    assert out.shape == (5, 6, K.N_TEST_FIELDS)
    assert np.isnan(out[0]).all()
    assert np.isnan(out[1:, ~is_binary, K.T_OR : K.T_P_FISHER + 1]).all()
    assert not np.isnan(out[1:, is_binary, K.T_P_FISHER]).any()
    assert np.isnan(out[2, 1, K.T_CI_LO :]).all() and np.isnan(out[2, 1, K.T_COHEN_D])
    assert np.isnan(out[3, 0, K.T_OR : K.T_OR_HI + 1]).all() and out[3, 0, K.T_P_FISHER] == 1.0
    for v in range(1, 5):
        for m in range(6):
            welch_args = (mean[v, m], var[v, m], n[v, m], mean[0, m], var[0, m], n[0, m])
            assert_same(out[v, m, : K.T_P_WELCH + 1], welch(K, *welch_args), rtol=0.0)
            assert_same(out[v, m, K.T_COHEN_D], K.cohens_d(*welch_args), rtol=0.0)
            if is_binary[m]:
                s1, s0 = succ[v, m], succ[0, m]
                expected = fisher(K, s1, trials[v, m] - s1, s0, trials[0, m] - s0)
                assert_same(out[v, m, K.T_OR : K.T_P_FISHER + 1], expected, rtol=0.0)
    assert_same(out, run_batch(R, *args), atol=1e-300)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), V=st.integers(1, 4), M=st.integers(1, 4))
def test_compare_to_control_kernel_equals_twin(seed, V, M):
    args = make_batch(np.random.default_rng(seed), V, M)
    assert_same(run_batch(K, *args), run_batch(R, *args), atol=1e-300)
