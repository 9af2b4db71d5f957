"""Head-to-head ratings (arena_env.evaluation.ratings): hand cases, SciPy cross-checks, bootstrap design."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import optimize

from arena_env.evaluation import ratings as R

NAN = math.nan


def simulate(strengths, n_strata, n_blocks, per_block, k=3, seed=0, names=None):
    """Matches from a Plackett-Luce model: Gumbel noise on log-strengths, so P(i beats j) is Bradley-Terry."""
    rng = np.random.default_rng(seed)
    t = np.asarray(strengths, dtype=np.float64)
    names = names or [f"a{i}" for i in range(t.size)]
    out = []
    for s in range(n_strata):
        for b in range(n_blocks):
            for _ in range(per_block):
                idx = rng.choice(t.size, size=k, replace=False)
                sc = t[idx] + rng.gumbel(size=k)
                out.append(R.Match(f"s{s}", b, tuple(names[i] for i in idx), tuple(sc)))
    return names, out


def regularised_nll(theta, w, prior):
    """Negative Bradley-Terry log-likelihood with `prior` virtual wins each way for every pair that met."""
    met = (w + w.T) > 0
    wr = w + prior * met
    d = theta[:, None] - theta[None, :]
    return -float(np.sum(wr * -np.logaddexp(0.0, -d)))


def regularised_grad(theta, w, prior):
    met = (w + w.T) > 0
    wr = w + prior * met
    nr = wr + wr.T
    p = 1.0 / (1.0 + np.exp(-(theta[:, None] - theta[None, :])))
    return -(wr.sum(axis=1) - (nr * p).sum(axis=1))


# ------------------------------------------------------------------------------------------ Match

def test_match_normalises_and_validates():
    m = R.Match("s", np.int64(3), ["a", "b"], [1, 2])
    assert m.agents == ("a", "b") and m.scores == (1.0, 2.0) and m.block == 3 and type(m.block) is int
    with pytest.raises(ValueError, match="one score per agent"):
        R.Match("s", 0, ("a", "b"), (1.0,))
    with pytest.raises(ValueError, match="at least 2"):
        R.Match("s", 0, ("a",), (1.0,))
    with pytest.raises(ValueError, match="distinct"):
        R.Match("s", 0, ("a", "a"), (1.0, 2.0))
    with pytest.raises(TypeError):
        R.Match("s", 1.5, ("a", "b"), (1.0, 2.0))


# --------------------------------------------------------------------------------------- pairwise

def test_pairwise_hand_example_with_tie_and_nan():
    matches = [
        R.Match("s", 0, ("a", "b", "c"), (3.0, 1.0, 3.0)),  # a > b, a = c (tie), c > b
        R.Match("s", 1, ("a", "b"), (NAN, 2.0)),  # failed a loses to b
        ("t", 0, ("c", "a", "b"), (NAN, NAN, -math.inf)),  # b beats both failures; a and c (NaN) tie
    ]
    wins, meets = R.pairwise(matches, ["a", "b", "c"])
    np.testing.assert_array_equal(wins, [[0.0, 1.0, 1.0],
                                         [2.0, 0.0, 1.0],
                                         [1.0, 1.0, 0.0]])
    np.testing.assert_array_equal(meets, [[0.0, 3.0, 2.0],
                                          [3.0, 0.0, 2.0],
                                          [2.0, 2.0, 0.0]])
    # another agent order permutes rows and columns
    w2, m2 = R.pairwise(matches, ["c", "a", "b"])
    perm = [2, 0, 1]
    np.testing.assert_array_equal(w2, wins[np.ix_(perm, perm)])
    np.testing.assert_array_equal(m2, meets[np.ix_(perm, perm)])
    # an agent outside the list never plays: its column is zero
    w3, m3 = R.pairwise(matches, ["a", "b", "c", "d"])
    np.testing.assert_array_equal(w3[:3, :3], wins)
    assert not w3[3].any() and not m3[:, 3].any()


def test_pairwise_rejects_unknown_and_duplicate_agents():
    matches = [R.Match("s", 0, ("a", "z"), (1.0, 2.0))]
    with pytest.raises(ValueError, match="'z'"):
        R.pairwise(matches, ["a", "b"])
    with pytest.raises(ValueError, match="distinct"):
        R.pairwise([], ["a", "a"])


score = st.one_of(st.integers(-2, 2).map(float), st.just(NAN))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(score, min_size=2, max_size=4), min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_pairwise_counts_every_meeting_once(score_lists, rnd):
    agents = ["a", "b", "c", "d"]
    matches = []
    for b, scores in enumerate(score_lists):
        who = rnd.sample(agents, len(scores))
        matches.append(R.Match("s", b, tuple(who), tuple(scores)))
    wins, meets = R.pairwise(matches, agents)
    ref_w, ref_n = np.zeros((4, 4)), np.zeros((4, 4))
    for m in matches:  # the rule, pair by pair, in plain Python
        for p, x in zip(m.agents, m.scores):
            for q, y in zip(m.agents, m.scores):
                if p == q:
                    continue
                i, j = agents.index(p), agents.index(q)
                ref_n[i, j] += 1
                if math.isnan(x) and math.isnan(y) or x == y:
                    ref_w[i, j] += 0.5
                elif math.isnan(y) or (not math.isnan(x) and x > y):
                    ref_w[i, j] += 1.0
    np.testing.assert_array_equal(wins, ref_w)
    np.testing.assert_array_equal(meets, ref_n)
    np.testing.assert_array_equal(wins + wins.T, meets)


# ----------------------------------------------------------------------------------- Bradley-Terry

@pytest.mark.parametrize("w,l", [(7.0, 3.0), (1.0, 9.0), (2.5, 0.5), (100.0, 1.0), (4.0, 4.0)])
def test_bt_two_agents_is_log_odds(w, l):
    t = R.bradley_terry(np.array([[0.0, w], [l, 0.0]]), prior=0.0)
    assert t[0] - t[1] == pytest.approx(math.log(w / l), abs=1e-8)
    assert t.sum() == pytest.approx(0.0, abs=1e-12)
    # the documented regularisation: `prior` virtual wins each way for the pair
    t = R.bradley_terry(np.array([[0.0, w], [l, 0.0]]), prior=1.5)
    assert t[0] - t[1] == pytest.approx(math.log((w + 1.5) / (l + 1.5)), abs=1e-8)


@pytest.mark.parametrize("prior", [0.5, 2.0])
def test_bt_matches_scipy_maximum_likelihood(prior):
    rng = np.random.default_rng(7)
    w = rng.integers(0, 6, size=(5, 5)).astype(np.float64) + 0.5 * rng.integers(0, 2, size=(5, 5))
    np.fill_diagonal(w, 0.0)
    w[0, 4] = w[4, 0] = 0.0  # a pair that never met: no virtual games for it
    w[1, :] = np.where(np.arange(5) == 1, 0.0, w[1, :] + 1.0)
    w[:, 1] = 0.0  # agent 1 is undefeated: finite only thanks to the prior
    res = optimize.minimize(regularised_nll, np.zeros(5), args=(w, prior), jac=regularised_grad, method="BFGS",
                            options={"gtol": 1e-12, "maxiter": 10000})
    ref = res.x - res.x.mean()
    assert np.abs(regularised_grad(res.x, w, prior)).max() < 1e-8
    t = R.bradley_terry(w, prior=prior)
    np.testing.assert_allclose(t, ref, atol=1e-6)
    # the rule is "pairs that met", not "all pairs": virtual games for 0-4 would move the fit
    w_all = w.copy()
    w_all[0, 4] = w_all[4, 0] = 1e-300  # marks the pair as met without changing the counts
    assert np.abs(R.bradley_terry(w_all, prior=prior) - t).max() > 1e-3


def test_bt_follows_dominance_and_prior_keeps_undefeated_finite():
    # i beats j whenever i < j, by a margin growing with the gap: 0 is undefeated, 3 never wins
    w = np.zeros((4, 4))
    for i in range(4):
        for j in range(i + 1, 4):
            w[i, j] = 3.0 * (j - i)
    with pytest.raises(ValueError, match="prior > 0"):
        R.bradley_terry(w, prior=0.0)
    t = R.bradley_terry(w, prior=0.5)
    assert np.all(np.isfinite(t))
    assert np.all(np.diff(t) < 0)
    assert t.mean() == pytest.approx(0.0, abs=1e-12)
    # a smaller prior trusts the data more: the spread grows
    assert np.ptp(R.bradley_terry(w, prior=0.1)) > np.ptp(t)
    # with some losses for the leader, prior 0 works and keeps the order
    w[1, 0] = w[3, 1] = 1.0
    w[2, 0] = 0.5
    t0 = R.bradley_terry(w, prior=0.0)
    assert np.all(np.isfinite(t0)) and np.argmax(t0) == 0 and np.argmin(t0) == 3


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 5).flatmap(lambda n: st.lists(st.integers(0, 6), min_size=n * n, max_size=n * n)),
       st.sampled_from([0.25, 0.5, 1.0]))
def test_bt_solves_the_likelihood_equations(cells, prior):
    n = int(round(math.sqrt(len(cells))))
    w = np.array(cells, dtype=np.float64).reshape(n, n) / 2.0
    np.fill_diagonal(w, 0.0)
    assume((w + w.T).any())
    t = R.bradley_terry(w, prior=prior)
    met = (w + w.T).sum(axis=1) > 0
    np.testing.assert_array_equal(np.isnan(t), ~met)
    tt = np.where(met, t, 0.0)
    assert np.abs(regularised_grad(tt, w, prior)).max() < 1e-6  # score equations: observed = expected wins
    labels = R.connected_components(w + w.T)
    for c in np.unique(labels[met]):
        assert abs(t[labels == c].mean()) < 1e-9  # each component centred


def test_bt_permutation_invariance_and_match_order():
    names, matches = simulate([0.0, 0.4, -0.3, 1.0, -1.1, 0.2], 2, 4, 15, seed=3)
    w, n = R.pairwise(matches, names)
    t = R.bradley_terry(w, n)
    perm = np.random.default_rng(0).permutation(len(names))
    wp, n_p = R.pairwise(matches, [names[i] for i in perm])
    np.testing.assert_allclose(R.bradley_terry(wp, n_p), t[perm], atol=1e-12)
    shuffled = [matches[i] for i in np.random.default_rng(1).permutation(len(matches))]
    np.testing.assert_array_equal(R.pairwise(shuffled, names)[0], w)
    np.testing.assert_allclose(R.bradley_terry(*R.pairwise(shuffled, names)), t, atol=1e-15)


def test_bt_disconnected_graph_and_isolated_agents():
    w = np.zeros((5, 5))
    w[0, 1], w[1, 0] = 3.0, 1.0  # component {0, 1}
    w[2, 3], w[3, 2] = 1.0, 2.0  # component {2, 3}; agent 4 met nobody
    t = R.bradley_terry(w, prior=0.0)
    np.testing.assert_array_equal(R.connected_components(w + w.T), [0, 0, 1, 1, 2])
    np.testing.assert_allclose(t[:4], [math.log(3) / 2, -math.log(3) / 2, -math.log(2) / 2, math.log(2) / 2])
    assert np.isnan(t[4])
    with pytest.raises(ValueError, match="no two agents met"):
        R.bradley_terry(np.zeros((3, 3)))


def test_bt_input_validation():
    with pytest.raises(ValueError, match="square"):
        R.bradley_terry(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        R.bradley_terry(np.array([[0.0, -1.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="diagonal"):
        R.bradley_terry(np.array([[1.0, 1.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="wins \\+ wins.T"):
        R.bradley_terry(np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[0.0, 3.0], [3.0, 0.0]]))
    with pytest.raises(ValueError, match="prior"):
        R.bradley_terry(np.array([[0.0, 1.0], [1.0, 0.0]]), prior=-1.0)
    with pytest.raises(RuntimeError, match="max_iter"):
        R.bradley_terry(np.array([[0.0, 1.0, 0.0], [2.0, 0.0, 3.0], [4.0, 1.0, 0.0]]), max_iter=2)


def test_win_probability():
    t = np.array([0.0, math.log(3.0), NAN])
    p = R.win_probability(t)
    assert p[1, 0] == pytest.approx(0.75) and p[0, 1] == pytest.approx(0.25)
    np.testing.assert_allclose(np.diagonal(p)[:2], 0.5)
    np.testing.assert_allclose(p[:2, :2] + p[:2, :2].T, 1.0)
    assert np.isnan(p[2]).all() and np.isnan(p[:, 2]).all()
    assert R.win_probability([800.0, -800.0])[0, 1] == 1.0  # no overflow


# ------------------------------------------------------------------------------- bootstrap CI

def test_bt_ci_contains_estimate_and_is_deterministic():
    names, matches = simulate([-1.0, -0.3, 0.0, 0.5, 0.8], 2, 8, 10, seed=1)
    est, lo, hi = R.bradley_terry_ci(matches, names, n_boot=400, seed=5)
    np.testing.assert_allclose(est, R.bradley_terry(*R.pairwise(matches, names)))
    assert np.all(lo < est) and np.all(est < hi)
    again = R.bradley_terry_ci(matches, names, n_boot=400, rng=np.random.default_rng(5))
    for a, b in zip((est, lo, hi), again):
        np.testing.assert_array_equal(a, b)
    other = R.bradley_terry_ci(matches, names, n_boot=400, seed=6)
    assert not np.array_equal(other[1], lo)
    # the order of the matches does not matter, agent order permutes
    rev = R.bradley_terry_ci(matches[::-1], names, n_boot=400, seed=5)
    for a, b in zip((est, lo, hi), rev):
        np.testing.assert_allclose(a, b, atol=1e-12)
    perm = [3, 0, 4, 2, 1]
    per = R.bradley_terry_ci(matches, [names[i] for i in perm], n_boot=400, seed=5)
    for a, b in zip((est, lo, hi), per):
        np.testing.assert_allclose(a[perm], b, atol=1e-9)


def test_bt_ci_narrows_with_more_blocks():
    strengths = [-0.5, 0.0, 0.5, 1.0]
    names, few = simulate(strengths, 2, 4, 6, seed=2)
    _, many = simulate(strengths, 2, 64, 6, seed=2)
    _, lo_f, hi_f = R.bradley_terry_ci(few, names, n_boot=300, seed=0)
    _, lo_m, hi_m = R.bradley_terry_ci(many, names, n_boot=300, seed=0)
    width_f, width_m = hi_f - lo_f, hi_m - lo_m
    assert np.all(width_m < width_f)
    assert width_m.mean() < 0.5 * width_f.mean()  # ~ 1/sqrt(16) in theory


def test_bt_ci_resamples_whole_blocks():
    # every block is balanced (x beats y once, y beats x once): any resample of whole blocks is balanced
    matches = []
    for b in range(6):
        matches.append(R.Match("s", b, ("x", "y"), (1.0, 0.0)))
        matches.append(R.Match("s", b, ("x", "y"), (0.0, 1.0)))
    est, lo, hi = R.bradley_terry_ci(matches, ["x", "y"], n_boot=200, seed=0)
    np.testing.assert_allclose([est, lo, hi], 0.0, atol=1e-12)


def test_bt_ci_respects_strata():
    # stratum A (2 blocks): x beats y 4 times per block; stratum B (8 blocks): y beats x once per block.
    # Every stratified replicate holds exactly 2 A-blocks and 8 B-blocks, so 8 wins each: zero width.
    # Drawing blocks across strata (or the same block number from the other stratum) would not.
    matches = [R.Match("A", b, ("x", "y", "z"), (1.0, 0.0, 0.0)) for b in range(2) for _ in range(4)]
    matches += [R.Match("B", b, ("y", "x", "z"), (1.0, 0.0, 0.0)) for b in range(8)]
    est, lo, hi = R.bradley_terry_ci(matches, ["x", "y", "z"], n_boot=500, seed=1)
    assert est[0] == pytest.approx(est[1], abs=1e-12)
    np.testing.assert_allclose(lo[:2] - lo[2], est[:2] - est[2], atol=1e-9)
    np.testing.assert_allclose(hi[:2] - hi[2], est[:2] - est[2], atol=1e-9)
    np.testing.assert_allclose(hi, lo, atol=1e-9)
    # control: merging the strata into one makes the replicates vary
    pooled = [R.Match("A", m.block + (100 if m.stratum == "B" else 0), m.agents, m.scores) for m in matches]
    _, lo_p, hi_p = R.bradley_terry_ci(pooled, ["x", "y", "z"], n_boot=500, seed=1)
    assert np.all(hi_p[:2] - lo_p[:2] > 0.1)


def test_bt_ci_absent_agent_and_validation():
    matches = [R.Match("s", b, ("x", "y"), (float(b % 3), 1.0)) for b in range(6)]
    est, lo, hi = R.bradley_terry_ci(matches, ["x", "y", "ghost"], n_boot=50, seed=0)
    assert np.isnan([est[2], lo[2], hi[2]]).all() and np.isfinite(est[:2]).all()
    with pytest.raises(ValueError, match="prior > 0"):
        R.bradley_terry_ci(matches, ["x", "y"], prior=0.0)
    with pytest.raises(ValueError, match="not both"):
        R.bradley_terry_ci(matches, ["x", "y"], rng=np.random.default_rng(0), seed=0)
    with pytest.raises(TypeError, match="Generator"):
        R.bradley_terry_ci(matches, ["x", "y"], rng=0)
    with pytest.raises(ValueError, match="no matches"):
        R.bradley_terry_ci([], ["x", "y"])
    with pytest.raises(ValueError, match="alpha"):
        R.bradley_terry_ci(matches, ["x", "y"], alpha=1.0)


def test_bt_ci_is_vectorised():
    names, matches = simulate(np.linspace(-1.5, 1.5, 10), 3, 10, 120, seed=0)
    start = time.perf_counter()
    R.bradley_terry_ci(matches, names, n_boot=500, seed=0)
    assert time.perf_counter() - start < 5.0


# -------------------------------------------------------------------------------------- OpenSkill

def test_openskill_winner_tie_failure_and_determinism():
    matches = []
    for b in range(12):
        # w always wins; t1 and t2 always tie; f always fails (NaN)
        matches.append(R.Match("s", b, ("t1", "w", "f", "t2"), (2.0, 5.0, NAN, 2.0)))
        matches.append(R.Match("s", b, ("t2", "t1", "w"), (0.0, 0.0, 1.0)))
    agents = ["w", "t1", "t2", "f", "idle"]
    r = R.openskill_ratings(matches, agents)
    assert list(r) == agents
    mu = {a: v[0] for a, v in r.items()}
    assert mu["w"] > mu["t1"] > mu["f"]
    assert max(mu, key=mu.get) == "w" and min(mu, key=mu.get) == "f"
    assert r["t1"] == pytest.approx(r["t2"], rel=1e-12)  # always tied: equal mu and sigma
    assert r["idle"] == pytest.approx((25.0, 25.0 / 3.0, 0.0), abs=1e-12)  # untouched default rating
    for mu_, sigma, ordinal in r.values():
        assert ordinal == pytest.approx(mu_ - 3.0 * sigma)
    assert R.openskill_ratings(matches, agents) == r


def test_openskill_is_sequential():
    matches = [R.Match("s", 0, ("a", "b"), (1.0, 0.0)), R.Match("s", 1, ("a", "b"), (0.0, 1.0))]
    first = R.openskill_ratings(matches, ["a", "b"])
    second = R.openskill_ratings(matches[::-1], ["a", "b"])
    assert first["a"][0] < first["b"][0] and second["a"][0] > second["b"][0]  # the last result counts more
    with pytest.raises(ValueError, match="'c'"):
        R.openskill_ratings([R.Match("s", 0, ("a", "c"), (1.0, 0.0))], ["a", "b"])


def test_openskill_averaged_over_orders_does_not_depend_on_the_listed_order():
    names, matches = simulate(np.array([1.0, 0.0, -1.0]), 2, 4, 6, seed=3)
    a = R.openskill_ratings_averaged(matches, names, orders=30, seed=1)
    b = R.openskill_ratings_averaged(matches[::-1], names, orders=30, seed=1)
    assert a == b  # a single sequential pass would differ (test_openskill_is_sequential)
    assert a != R.openskill_ratings_averaged(matches, names, orders=30, seed=2)
    mu = [a[n][0] for n in names]
    assert mu[0] > mu[1] > mu[2]  # follows the true strengths
    # two matches with opposite results: averaged over orders the two agents come out (nearly) equal
    pair = [R.Match("s", 0, ("a", "b"), (1.0, 0.0)), R.Match("s", 1, ("a", "b"), (0.0, 1.0))]
    even = R.openskill_ratings_averaged(pair, ["a", "b"], orders=200, seed=0)
    once = R.openskill_ratings(pair, ["a", "b"])
    assert abs(even["a"][0] - even["b"][0]) < 0.25 * abs(once["a"][0] - once["b"][0])
    with pytest.raises(ValueError, match="orders"):
        R.openskill_ratings_averaged(pair, ["a", "b"], orders=0)
