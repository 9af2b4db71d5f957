"""Tournament statistics (arena_env.evaluation.stats): hand cases, SciPy cross-checks, bootstrap sanity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from arena_env.evaluation import stats as S

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


# ------------------------------------------------------------------------------------------- iqm

@pytest.mark.parametrize("n", range(1, 10))
def test_iqm_matches_scipy_trim_mean_hand_cases(n):
    x = np.array([9.0, -2.0, 4.0, 100.0, 0.5, 3.0, 3.0, -50.0, 7.0])[:n]
    assert S.iqm(x) == pytest.approx(sps.trim_mean(x, 0.25), rel=1e-13, abs=1e-13)


def test_iqm_n8_is_mean_of_middle_four():
    x = np.array([8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 100.0])  # sorted 1 2 [3 5 6 7] 8 100
    assert S.iqm(x) == 5.25
    assert S.iqm(x) != pytest.approx(np.mean(x))


def test_iqm_small_n_is_plain_mean_and_edge_cases():
    assert S.iqm([4.0]) == 4.0
    assert S.iqm([1.0, 10.0, 100.0]) == pytest.approx(37.0)  # n <= 3: nothing trimmed
    assert S.iqm([1.0, 2.0, 3.0, 1000.0]) == 2.5  # n = 4: one value dropped from each end
    assert np.isnan(S.iqm([]))
    assert np.isnan(S.iqm([1.0, np.nan, 2.0]))


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, min_size=1, max_size=60))
def test_iqm_matches_scipy_trim_mean_property(xs):
    x = np.array(xs)
    scale = max(1.0, float(np.max(np.abs(x))))
    assert abs(S.iqm(x) - sps.trim_mean(x, 0.25)) <= 1e-12 * scale


# ------------------------------------------------------------------------------------- normalise

def test_normalise_hold_to_zero_oracle_to_one_and_no_silent_fallback():
    scores = np.array([[0.0, 5.0, 10.0], [2.0, 4.0, 6.0], [0.0, 0.5, 1.5]])
    hold = np.array([0.0, 4.0, 0.5])
    oracle = np.array([10.0, 4.0, 0.2])  # scenario 1: oracle == hold; scenario 2: oracle below hold
    out = S.normalise(scores, hold, oracle)
    np.testing.assert_allclose(out[0], [0.0, 0.5, 1.0])  # hold -> 0, oracle -> 1
    assert np.isnan(out[1]).all() and np.isnan(out[2]).all()  # no unit: NaN, never a made-up divisor
    assert np.isnan(S.normalise([1.0], 0.0, np.nan)).all()


def test_normalise_broadcasting_and_nan():
    np.testing.assert_allclose(S.normalise([1.0, 3.0, np.nan], 1.0, 3.0), [0.0, 1.0, np.nan])
    scores = np.array([[0.0, 10.0], [5.0, 15.0]])  # (n_seeds, n_scenarios) layout
    out = S.normalise(scores, [0.0, 10.0], [10.0, 20.0], axis=1)
    np.testing.assert_allclose(out, [[0.0, 0.0], [0.5, 0.5]])


# ------------------------------------------------------------------------------------- bootstrap

def test_bootstrap_is_deterministic_and_contains_estimate():
    data = np.random.default_rng(1).normal(size=(3, 12))
    for stat in (np.mean, S.iqm):
        a = S.stratified_bootstrap_ci(data, stat, 500, rng=np.random.default_rng(7))
        b = S.stratified_bootstrap_ci(data, stat, 500, rng=np.random.default_rng(7))
        c = S.stratified_bootstrap_ci(data, stat, 500, rng=np.random.default_rng(8))
        assert a == b
        assert a[1:] != c[1:]
        est, lo, hi = a
        assert lo < est < hi
    assert S.stratified_bootstrap_ci(data, np.mean, 10, rng=np.random.default_rng(0))[0] == pytest.approx(data.mean())


def test_bootstrap_constant_sample_has_zero_width():
    est, lo, hi = S.stratified_bootstrap_ci(np.full((4, 7), 2.5), S.iqm, 300, rng=np.random.default_rng(0))
    assert est == lo == hi == 2.5


def test_bootstrap_requires_a_generator():
    with pytest.raises(TypeError):
        S.stratified_bootstrap_ci(np.ones((2, 3)), np.mean, 10, rng=0)


def test_bootstrap_resamples_within_scenarios_only():
    rng = np.random.default_rng(3)
    low = rng.uniform(0.0, 1.0, size=5)  # scenario 0: values in [0, 1)
    high = rng.uniform(100.0, 101.0, size=5)  # scenario 1: values in [100, 101)
    high[2] = np.nan  # dropped within its stratum: scenario 1 keeps 4 values
    seen = []

    def reveal(sample):
        seen.append((int(np.sum(sample < 50.0)), int(np.sum(sample >= 50.0)), sample.size,
                     bool(np.all(sample[:5] < 50.0))))
        return float(np.mean(sample))

    S.stratified_bootstrap_ci(np.stack([low, high]), reveal, 400, rng=np.random.default_rng(0))
    assert len(seen) == 401  # the point estimate and 400 replicates
    assert set(seen) == {(5, 4, 9, True)}
    # the resamples do vary (the check above is not vacuous)
    means = []
    S.stratified_bootstrap_ci(np.stack([low, high]), lambda s: means.append(s[:5].mean()) or 0.0, 50,
                              rng=np.random.default_rng(0))
    assert len(set(np.round(means, 12))) > 10


def test_bootstrap_all_nan_scenario_is_dropped_and_empty_raises():
    data = np.array([[1.0, 2.0, 3.0], [np.nan, np.nan, np.nan]])
    est, lo, hi = S.stratified_bootstrap_ci(data, np.mean, 200, rng=np.random.default_rng(0))
    assert est == 2.0 and 1.0 <= lo <= hi <= 3.0
    with pytest.raises(ValueError):
        S.stratified_bootstrap_ci(np.full((2, 2), np.nan), np.mean, 10, rng=np.random.default_rng(0))


def test_bootstrap_coverage_sanity():
    rng = np.random.default_rng(20240601)
    mu, reps = 3.0, 200
    covered = 0
    for _ in range(reps):
        data = rng.normal(mu, 2.0, size=(4, 10))
        _, lo, hi = S.stratified_bootstrap_ci(data, np.mean, 1000, rng=rng)
        covered += lo <= mu <= hi
    assert 0.90 * reps <= covered <= 0.99 * reps, covered


# ------------------------------------------------------------------------ probability of improvement

def test_poi_paired_hand_cases():
    x = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    y = np.array([[0.0, 2.0, 5.0, 1.0], [1.0, 0.0, 1.0, 1.0]])
    # scenario 0: win, tie, loss, win -> 2.5/4; scenario 1: loss, tie, loss, loss -> 0.5/4
    assert S.probability_of_improvement(x, y) == pytest.approx((0.625 + 0.125) / 2)
    # paired and unpaired differ: x=[3,1] vs y=[2,4]
    assert S.probability_of_improvement([[3.0, 1.0]], [[2.0, 4.0]], paired=True) == 0.5
    assert S.probability_of_improvement([[3.0, 1.0]], [[2.0, 4.0]], paired=False) == 0.25


def test_poi_unpaired_hand_case_with_ties():
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    y = np.array([[0.0, 2.0, 5.0, 1.0]])
    # x=1: 1 win + 1 tie = 1.5; x=2: 2 wins + 1 tie = 2.5; x=3: 3; x=4: 3 -> 10/16
    assert S.probability_of_improvement(x, y, paired=False) == 0.625
    # unequal seed counts are allowed when unpaired
    assert S.probability_of_improvement([[1.0, 3.0]], [[2.0, 2.0, 2.0]], paired=False) == 0.5
    with pytest.raises(ValueError):
        S.probability_of_improvement([[1.0, 3.0]], [[2.0, 2.0, 2.0]], paired=True)


def test_poi_paired_drops_nan_seeds():
    x = np.array([[1.0, np.nan, 0.0], [5.0, 5.0, 5.0]])
    y = np.array([[0.0, 9.0, 0.0], [np.nan, np.nan, 6.0]])
    # scenario 0: seeds 0 and 2 -> (1 + 0.5)/2; scenario 1: seed 2 only -> 0
    assert S.probability_of_improvement(x, y) == pytest.approx(0.375)


grids = st.integers(min_value=1, max_value=4).flatmap(
    lambda s: st.integers(min_value=1, max_value=8).flatmap(
        lambda n: st.tuples(*[st.lists(st.lists(st.integers(0, 4), min_size=n, max_size=n), min_size=s, max_size=s)] * 2)))


@settings(max_examples=100, deadline=None)
@given(grids)
def test_poi_symmetry(xy):
    x, y = (np.array(v, dtype=float) for v in xy)
    for paired in (True, False):
        assert S.probability_of_improvement(x, y, paired) == pytest.approx(
            1.0 - S.probability_of_improvement(y, x, paired), abs=1e-12)
    assert S.win_rate(x, y) == pytest.approx(1.0 - S.win_rate(y, x), abs=1e-12)


unpaired_grids = st.tuples(st.integers(1, 4), st.integers(1, 8), st.integers(1, 8)).flatmap(
    lambda snm: st.tuples(
        st.lists(st.lists(st.integers(0, 4), min_size=snm[1], max_size=snm[1]), min_size=snm[0], max_size=snm[0]),
        st.lists(st.lists(st.integers(0, 4), min_size=snm[2], max_size=snm[2]), min_size=snm[0], max_size=snm[0])))


@settings(max_examples=100, deadline=None)
@given(unpaired_grids)
def test_poi_unpaired_equals_mannwhitney_u(xy):
    x, y = (np.array(v, dtype=float) for v in xy)
    expected = np.mean([sps.mannwhitneyu(xs, ys).statistic / (xs.size * ys.size) for xs, ys in zip(x, y)])
    assert S.probability_of_improvement(x, y, paired=False) == pytest.approx(expected, abs=1e-12)


def test_poi_ci_deterministic_bounded_and_paired():
    rng = np.random.default_rng(5)
    x = rng.normal(0.3, 1.0, size=(3, 15))
    y = rng.normal(0.0, 1.0, size=(3, 15))
    a = S.probability_of_improvement_ci(x, y, 500, rng=np.random.default_rng(1))
    assert a == S.probability_of_improvement_ci(x, y, 500, rng=np.random.default_rng(1))
    est, lo, hi = a
    assert est == S.probability_of_improvement(x, y)
    assert 0.0 <= lo <= est <= hi <= 1.0 and lo < hi
    # paired resampling: x beats y on every seed, but the seeds' spread makes the unpaired PoI < 1
    y = rng.normal(0.0, 5.0, size=(3, 15))
    x = y + 0.1
    assert S.probability_of_improvement_ci(x, y, 300, rng=np.random.default_rng(2)) == (1.0, 1.0, 1.0)
    est_u, lo_u, hi_u = S.probability_of_improvement_ci(x, y, 300, rng=np.random.default_rng(2), paired=False)
    assert est_u < 0.6 and lo_u < est_u < hi_u < 1.0


# ------------------------------------------------------------------------------------------ win rate

def test_win_rate_hand_cases():
    x = np.array([[1.0, 2.0], [3.0, np.nan]])
    y = np.array([[0.0, 2.0], [5.0, 1.0]])
    assert S.win_rate(x, y) == 0.5  # win, tie, loss; the NaN cell is dropped -> 1.5 / 3
    assert S.probability_of_improvement(x, y) == 0.375  # per-scenario weighting differs: (0.75 + 0) / 2
    assert S.win_rate([1.0, 1.0, 1.0], [0.0, 0.0, 2.0]) == pytest.approx(2.0 / 3.0)
    assert S.win_rate([1.0], [1.0]) == 0.5
    with pytest.raises(ValueError):
        S.win_rate([np.nan], [1.0])


# ------------------------------------------------------------------------------------------- ranking

def test_rank_with_ties_hand_case():
    est = [0.40, 0.90, 0.70, 0.10, 0.65]
    lo = [0.30, 0.80, 0.60, 0.00, 0.50]
    hi = [0.45, 1.00, 0.85, 0.20, 0.72]
    order, groups = S.rank_with_ties(est, lo, hi)
    assert order.tolist() == [1, 2, 4, 0, 3]
    # 2 overlaps its leader 1; 4 overlaps 2 but not the leader 1, so it leads a new group (no chaining)
    assert groups == [[1, 2], [4], [0], [3]]


def test_rank_with_ties_compares_with_the_leader_not_the_row_above():
    # a staircase of width-0.5 intervals 0.2 apart: every row overlaps the row above
    est = [1.0, 0.8, 0.6, 0.4, 0.2, 0.0]
    lo, hi = [e - 0.25 for e in est], [e + 0.25 for e in est]
    _, groups = S.rank_with_ties(est, lo, hi)
    assert groups == [[0, 1, 2], [3, 4, 5]]  # 0.6 + 0.25 >= 1.0 - 0.25; 0.4 + 0.25 < 0.75
    # the case: a row far below the leader is not tied through a row without an interval
    _, groups = S.rank_with_ties([0.0, -0.5, -1.05], [-0.41, np.nan, -1.14], [0.30, np.nan, -0.95])
    assert groups == [[0], [1], [2]]


def test_rank_with_ties_touching_intervals_and_equal_estimates():
    order, groups = S.rank_with_ties([1.0, 0.0], [0.5, -1.0], [1.5, 0.5])
    assert order.tolist() == [0, 1] and groups == [[0, 1]]
    order, groups = S.rank_with_ties([1.0, 0.0], [0.5, -1.0], [1.5, 0.49])
    assert groups == [[0], [1]]
    order, groups = S.rank_with_ties([0.5, 0.5, np.nan], [0.0, 0.0, np.nan], [1.0, 1.0, np.nan])
    assert order.tolist() == [0, 1, 2] and groups == [[0, 1], [2]]


def test_summarise_rows():
    rng = np.random.default_rng(11)
    table = {
        "weak": rng.normal(0.0, 0.1, size=(3, 20)),
        "strong": rng.normal(1.0, 0.1, size=(3, 20)),
        "strong_too": rng.normal(1.0, 0.1, size=(3, 20)),
    }
    table["weak"][0, 0] = np.nan
    rows = S.summarise(table, n_boot=400, alpha=0.05, seed=3)
    assert rows == S.summarise(table, n_boot=400, alpha=0.05, seed=3)
    assert [r["agent"] for r in rows][-1] == "weak"
    assert {r["agent"] for r in rows[:2]} == {"strong", "strong_too"}
    assert [r["tie"] for r in rows] == [False, True, False]
    assert [r["rank"] for r in rows] == [1, 1, 3]
    assert [r["n"] for r in rows] == [60, 60, 59]
    keys = {"agent", "mean", "mean_lo", "mean_hi", "iqm", "iqm_lo", "iqm_hi", "n", "tie", "rank"}
    for r in rows:
        assert set(r) == keys
        assert r["mean_lo"] <= r["mean"] <= r["mean_hi"] and r["iqm_lo"] <= r["iqm"] <= r["iqm_hi"]
        assert r["iqm"] == pytest.approx(S.iqm(table[r["agent"]][~np.isnan(table[r["agent"]])]))
    # a row does not depend on the other agents in the table
    alone = S.summarise({"weak": table["weak"]}, n_boot=400, alpha=0.05, seed=3)[0]
    assert alone == {**rows[-1], "rank": 1, "tie": False}


def test_rows_without_intervals_are_never_tied_and_thin_strata_get_no_interval():
    order, groups = S.rank_with_ties([1.0, 0.5, 0.0], [0.9, np.nan, -0.1], [1.1, np.nan, 0.1])
    assert groups == [[0], [1], [2]]  # the middle row's interval is unknown: tied with nobody, no chain
    rows = S.summarise({"one_seed": np.array([[1.0]]), "two": np.array([[0.1, 0.3]]),
                        "thin": np.array([[0.2, np.nan, np.nan]]), "full": np.array([[0.0, 0.2, 0.1]])},
                       n_boot=200)
    by = {r["agent"]: r for r in rows}
    assert np.isnan(by["one_seed"]["iqm_lo"]) and np.isnan(by["thin"]["mean_hi"])
    assert by["two"]["iqm_lo"] < by["two"]["iqm_hi"] and not np.isnan(by["full"]["iqm_lo"])
    assert [r["agent"] for r in rows][0] == "one_seed" and not by["two"]["tie"]
    # "thin" (no interval) sits between "two" and "full": it leads its own group, so "full" is not tied
    assert [r["agent"] for r in rows] == ["one_seed", "two", "thin", "full"] and not by["full"]["tie"]
