"""Off-policy evaluation (arena_env/replay/ope.py) against independent computations.

* every estimator against a per-row Python loop written here from the formulas of the module docstring
  (2-D and 3-D ``action_dist``, with positions);
* known relations (pi_e = pi_b gives weights 1; DR with q = 0 is IPW; DM with the true q is the true value;
  switch-dr / dr-os at lambda_ = inf and 0 are DR and DM; SNIPW ignores the scale of pscore);
* unbiasedness and 95% coverage over 200 seeds of a simulated contextual bandit whose true value is
  computed exactly from the simulator's expected rewards;
* exact binomial intervals against ``scipy.stats.binomtest``; a case-clustered bootstrap; cross-fitting
  of the reward model; validation messages; determinism; the obp-compatible classes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from arena_env.replay import ope

# ------------------------------------------------------------------------------------------- fixtures


def random_logs(seed, n=300, n_actions=4, len_list=None):
    """Random logged data: a stochastic logging policy (pscore of the logged action), a stochastic
    evaluation policy, a random reward model and continuous rewards."""
    rng = np.random.default_rng(seed)
    pb = rng.dirichlet(np.ones(n_actions), size=n)
    action = (rng.random(n)[:, None] > np.cumsum(pb, axis=1)).sum(axis=1)
    action = np.minimum(action, n_actions - 1)
    data = {"reward": rng.normal(0.5, 1.0, n), "action": action, "pscore": pb[np.arange(n), action]}
    if len_list is None:
        data["action_dist"] = rng.dirichlet(np.ones(n_actions) * 0.5, size=n)
        data["estimated_rewards_by_reg_model"] = rng.normal(0.5, 0.5, (n, n_actions))
    else:
        data["action_dist"] = rng.dirichlet(np.ones(n_actions) * 0.5, size=(n, len_list)).transpose(0, 2, 1)
        data["estimated_rewards_by_reg_model"] = rng.normal(0.5, 0.5, (n, n_actions, len_list))
        data["position"] = rng.integers(0, len_list, n)
    return data


def brute_force(estimator, reward, action, pscore, action_dist, estimated_rewards_by_reg_model,
                position=None, lambda_=None):
    """The estimators as a plain loop over rows, from the formulas (independent of the module)."""
    n = len(reward)
    sums = dict(pr=0.0, p=0.0, wr=0.0, w=0.0, dm=0.0, dr=0.0, sw=0.0, os=0.0, wres=0.0)
    for i in range(n):
        if action_dist.ndim == 3:
            slot = 0 if position is None else position[i]
            pi = [action_dist[i, k, slot] for k in range(action_dist.shape[1])]
            q = [estimated_rewards_by_reg_model[i, k, slot] for k in range(action_dist.shape[1])]
        else:
            pi = list(action_dist[i])
            q = list(estimated_rewards_by_reg_model[i])
        a, r = action[i], reward[i]
        w = pi[a] / pscore[i]
        dm = sum(p * qq for p, qq in zip(pi, q)) / sum(pi)
        sums["pr"] += pi[a] * r
        sums["p"] += pi[a]
        sums["wr"] += w * r
        sums["w"] += w
        sums["dm"] += dm
        sums["wres"] += w * (r - q[a])
        sums["dr"] += dm + w * (r - q[a])
        if lambda_ is not None:
            sums["sw"] += dm + (w * (r - q[a]) if w <= lambda_ else 0.0)
            shrunk = w if math.isinf(lambda_) else (lambda_ * w / (w * w + lambda_) if w > 0 else 0.0)
            sums["os"] += dm + shrunk * (r - q[a])
    return {
        "replay": sums["pr"] / sums["p"],
        "ipw": sums["wr"] / n,
        "snipw": sums["wr"] / sums["w"],
        "dm": sums["dm"] / n,
        "dr": sums["dr"] / n,
        "sndr": sums["dm"] / n + sums["wres"] / sums["w"],
        "switch-dr": sums["sw"] / n,
        "dr-os": sums["os"] / n,
    }[estimator]


class Bandit:
    """A contextual bandit with 6 contexts (probabilities ``px``), 4 actions and Bernoulli rewards of
    known means ``q``; a stochastic logging policy ``pb`` and evaluation policy ``pe``. ``value`` is
    the exact value of ``pe``: sum_x px(x) sum_a pe(a|x) q(x, a)."""

    def __init__(self, n_contexts=6, n_actions=4, seed=123):
        rng = np.random.default_rng(seed)
        self.px = rng.dirichlet(np.ones(n_contexts) * 3)
        self.q = rng.uniform(0.1, 0.8, (n_contexts, n_actions))
        logits = rng.normal(0, 0.7, (n_contexts, n_actions))
        self.pb = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        target = 3.0 * self.q
        self.pe = np.exp(target) / np.exp(target).sum(axis=1, keepdims=True)
        self.value = float((self.px[:, None] * self.pe * self.q).sum())
        self.n_actions = n_actions

    def sample(self, n, seed):
        rng = np.random.default_rng(seed)
        x = rng.choice(len(self.px), size=n, p=self.px)
        cdf = np.cumsum(self.pb[x], axis=1)
        action = np.minimum((rng.random(n)[:, None] > cdf).sum(axis=1), self.n_actions - 1)
        reward = (rng.random(n) < self.q[x, action]).astype(float)
        return {"context": x, "reward": reward, "action": action, "pscore": self.pb[x, action],
                "action_dist": self.pe[x]}


# ------------------------------------------------------------------------ estimators vs brute force


@pytest.mark.parametrize("len_list", [None, 3])
@pytest.mark.parametrize("estimator", ope.ESTIMATORS)
def test_estimators_match_a_per_row_loop(estimator, len_list):
    data = random_logs(7, len_list=len_list)
    hyper = {"lambda_": 2.5} if estimator in ("switch-dr", "dr-os") else {}
    got = ope.estimate_policy_value(estimator, **data, **hyper)
    want = brute_force(estimator, **data, lambda_=hyper.get("lambda_", 2.5))
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("estimator", ["replay", "ipw", "dm", "dr"])
def test_chosen_terms_are_the_estimators_terms_of_a_deterministic_policy(estimator):
    data = random_logs(2)
    n, k = data["action_dist"].shape
    chosen = np.random.default_rng(5).integers(0, k, n)
    dist = np.eye(k)[chosen]
    terms = ope.chosen_terms(estimator, chosen, n_actions=k, reward=data["reward"], action=data["action"],
                             pscore=data["pscore"], estimated_rewards_by_reg_model=data["estimated_rewards_by_reg_model"])
    want = brute_force(estimator, **dict(data, action_dist=dist))
    matched = chosen == data["action"]
    assert terms.shape == (n,)
    assert terms.sum() / (matched.sum() if estimator == "replay" else n) == pytest.approx(want, rel=1e-12)
    if estimator in ("replay", "ipw"):
        assert (terms[~matched] == 0).all()
    with pytest.raises(ValueError, match="snipw is not a plain sum"):
        ope.chosen_terms("snipw", chosen, n_actions=k, reward=data["reward"], action=data["action"],
                         pscore=data["pscore"])


def test_switch_and_shrinkage_defaults_and_limits():
    data = random_logs(11, len_list=2)
    dr = ope.estimate_policy_value("dr", **data)
    dm = ope.estimate_policy_value("dm", **data)
    assert ope.estimate_policy_value("switch-dr", **data) == pytest.approx(dr, rel=1e-12)  # default inf
    assert ope.estimate_policy_value("switch-dr", **data, lambda_=math.inf) == pytest.approx(dr, rel=1e-12)
    assert ope.estimate_policy_value("switch-dr", **data, lambda_=0.0) == pytest.approx(dm, rel=1e-12)
    assert ope.estimate_policy_value("dr-os", **data, lambda_=math.inf) == pytest.approx(dr, rel=1e-12)
    assert ope.estimate_policy_value("dr-os", **data, lambda_=0.0) == pytest.approx(dm, rel=1e-12)
    default = ope.estimate_policy_value("dr-os", **data)
    assert default == pytest.approx(brute_force("dr-os", **data, lambda_=10.0), rel=1e-12)
    assert default != pytest.approx(dr) and default != pytest.approx(dm)
    # a lambda_ between the weights switches some rows only
    mid = ope.estimate_policy_value("switch-dr", **data, lambda_=1.0)
    assert mid != pytest.approx(dr) and mid != pytest.approx(dm)


def test_a_zero_weight_row_does_not_make_dr_os_nan():
    data = random_logs(3)
    data["action_dist"][0] = 0.0
    data["action_dist"][0, (data["action"][0] + 1) % 4] = 1.0  # pi_e never takes row 0's action
    value = ope.estimate_policy_value("dr-os", **data, lambda_=0.0)
    assert value == pytest.approx(ope.estimate_policy_value("dm", **data), rel=1e-12)


# ------------------------------------------------------------------------------------- known relations


def test_evaluating_the_logging_policy_gives_unit_weights_and_the_mean_reward():
    rng = np.random.default_rng(5)
    n, k = 400, 5
    pb = rng.dirichlet(np.ones(k), size=n)
    action = np.array([rng.choice(k, p=p) for p in pb])
    reward = rng.binomial(1, 0.3, n).astype(float)
    data = dict(reward=reward, action=action, pscore=pb[np.arange(n), action], action_dist=pb)
    assert ope.estimate_policy_value("ipw", **data) == pytest.approx(reward.mean(), rel=1e-12)
    assert ope.estimate_policy_value("snipw", **data) == pytest.approx(reward.mean(), rel=1e-12)
    diag = ope.diagnostics(**data)
    assert diag.mean_weight == pytest.approx(1.0, rel=1e-12)
    assert diag.max_weight == pytest.approx(1.0, rel=1e-12)
    assert diag.ess == pytest.approx(n, rel=1e-12)


def test_dr_with_a_zero_model_is_ipw_and_sndr_is_snipw():
    data = random_logs(21, len_list=3)
    data["estimated_rewards_by_reg_model"] = np.zeros_like(data["estimated_rewards_by_reg_model"])
    assert ope.estimate_policy_value("dr", **data) == pytest.approx(ope.estimate_policy_value("ipw", **data),
                                                                   rel=1e-12)
    assert ope.estimate_policy_value("sndr", **data) == pytest.approx(
        ope.estimate_policy_value("snipw", **data), rel=1e-12)


def test_dm_with_the_true_model_is_the_true_value():
    """Every context appears equally often, so the empirical context distribution is exact."""
    bandit = Bandit()
    n_contexts = len(bandit.px)
    x = np.repeat(np.arange(n_contexts), 50)
    truth = float((bandit.pe * bandit.q).sum(axis=1).mean())  # uniform over the contexts
    value = ope.estimate_policy_value("dm", action_dist=bandit.pe[x], estimated_rewards_by_reg_model=bandit.q[x])
    assert value == pytest.approx(truth, rel=1e-12)
    assert truth != pytest.approx(bandit.value)  # (the bandit's own context weights differ)


def test_snipw_ignores_the_scale_of_pscore_and_ipw_does_not():
    data = random_logs(8)
    half = dict(data, pscore=data["pscore"] * 0.5)
    assert ope.estimate_policy_value("snipw", **half) == pytest.approx(ope.estimate_policy_value("snipw", **data),
                                                                      rel=1e-12)
    assert ope.estimate_policy_value("ipw", **half) == pytest.approx(2 * ope.estimate_policy_value("ipw", **data),
                                                                    rel=1e-12)


def test_replay_of_a_deterministic_policy_is_the_mean_reward_of_matched_rows():
    rng = np.random.default_rng(2)
    n, k = 600, 3
    action = rng.integers(0, k, n)
    reward = rng.normal(size=n)
    choice = rng.integers(0, k, n)
    dist = np.eye(k)[choice]
    value = ope.estimate_policy_value("replay", reward=reward, action=action, action_dist=dist)
    assert value == pytest.approx(reward[choice == action].mean(), rel=1e-12)
    none = np.eye(k)[(action + 1) % k]
    assert math.isnan(ope.estimate_policy_value("replay", reward=reward, action=action, action_dist=none))


# ---------------------------------------------------------------------- unbiasedness and coverage


def test_ipw_dr_and_replay_are_unbiased_and_their_intervals_cover():
    """200 simulated logs of 400 rows: the mean estimate is within 4 standard errors of the exact value,
    and the 95% bootstrap interval covers it in 88-99% of the logs (0.94 for IPW, 0.96 for DR when this
    was written). DR uses a fixed, wrong reward model (still unbiased: the propensities are right).
    Replay is checked under uniform logging of a deterministic policy, where it is unbiased, with its
    Clopper-Pearson interval (0.975)."""
    bandit = Bandit()
    wrong_q = np.clip(bandit.q + np.random.default_rng(9).normal(0, 0.15, bandit.q.shape), 0, 1)
    greedy = np.argmax(bandit.q, axis=1)
    replay_truth = float((bandit.px * bandit.q[np.arange(len(bandit.px)), greedy]).sum())
    results = {"ipw": [], "dr": [], "replay": []}
    for seed in range(200):
        logs = bandit.sample(400, seed)
        x = logs.pop("context")
        for name in ("ipw", "dr"):
            est = ope.evaluate(name, **logs, estimated_rewards_by_reg_model=wrong_q[x], n_bootstrap=300, seed=seed)
            results[name].append((est.value, est.low <= bandit.value <= est.high))
        rng = np.random.default_rng(10_000 + seed)
        uniform_action = rng.integers(0, bandit.n_actions, 400)
        reward = (rng.random(400) < bandit.q[x, uniform_action]).astype(float)
        greedy_dist = np.eye(bandit.n_actions)[greedy[x]]
        est = ope.evaluate("replay", reward=reward, action=uniform_action, action_dist=greedy_dist,
                           n_bootstrap=300, seed=seed)
        assert est.interval == "clopper-pearson" and est.warnings == ()
        results["replay"].append((est.value, est.low <= replay_truth <= est.high))
    # (Clopper-Pearson is conservative by construction: at least 95% up to noise, possibly more)
    for name, truth, lowest, highest in (("ipw", bandit.value, 0.88, 0.99), ("dr", bandit.value, 0.88, 0.99),
                                         ("replay", replay_truth, 0.93, 1.0)):
        values = np.array([v for v, _ in results[name]])
        se = values.std(ddof=1) / math.sqrt(values.size)
        assert abs(values.mean() - truth) < 4 * se, name
        coverage = np.mean([c for _, c in results[name]])
        assert lowest <= coverage <= highest, (name, coverage)
    # DR with a decent model has a smaller spread than IPW
    assert np.std([v for v, _ in results["dr"]]) < np.std([v for v, _ in results["ipw"]])


def test_dr_with_a_cross_fitted_model_is_close_to_the_truth():
    bandit = Bandit()
    logs = bandit.sample(5000, seed=1)
    x = logs.pop("context")
    q = ope.fit_reward_model(x, logs["action"], logs["reward"], n_actions=bandit.n_actions, seed=0)
    assert q.shape == (5000, bandit.n_actions)
    est = ope.evaluate("dr", **logs, estimated_rewards_by_reg_model=q, n_bootstrap=500)
    assert est.low <= bandit.value <= est.high
    assert abs(est.value - bandit.value) < 0.03


# ----------------------------------------------------------------------------------------- intervals


@pytest.mark.parametrize("method,scipy_method", [("clopper-pearson", "exact"), ("wilson", "wilson")])
@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (0, 51), (1, 51), (3, 10), (10, 10), (17, 200), (500, 1000)])
def test_binomial_interval_matches_scipy(method, scipy_method, k, n):
    for alpha in (0.05, 0.1):
        got = ope.binomial_interval(k, n, alpha=alpha, method=method)
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=1 - alpha, method=scipy_method)
        assert got == pytest.approx((ci.low, ci.high), rel=1e-7, abs=1e-10)
    low, high = ope.binomial_interval(k, n, method=method)
    assert 0.0 <= low <= k / n <= high <= 1.0
    if k == 0:
        assert low == 0.0 and high > 0.0


def test_clopper_pearson_upper_bound_for_zero_successes():
    """k = 0: the upper bound solves (1 - p)^n = alpha / 2."""
    assert ope.binomial_interval(0, 51)[1] == pytest.approx(1 - 0.025 ** (1 / 51), rel=1e-10)


def deterministic_replay_logs(n_clicks):
    """510 rows, uniform logging over 10 actions, a deterministic pi_e that matches exactly 51 rows."""
    n, k = 510, 10
    action = np.arange(n) % k
    choice = np.where(action == 0, 0, (action + 1) % k)  # matches exactly the rows with action 0
    reward = np.zeros(n)
    matched = np.flatnonzero(choice == action)
    assert matched.size == 51
    reward[matched[:n_clicks]] = 1.0
    reward[np.flatnonzero(choice != action)[:100]] = 1.0  # clicks on unmatched rows do not count
    return dict(reward=reward, action=action, pscore=np.full(n, 1 / k), action_dist=np.eye(k)[choice])


def test_replay_on_rare_binary_rewards_uses_an_exact_interval():
    logs = deterministic_replay_logs(0)
    est = ope.evaluate("replay", **logs)
    assert est.interval == "clopper-pearson"
    assert est.value == 0.0 and est.low == 0.0
    assert est.high == pytest.approx(1 - 0.025 ** (1 / 51), rel=1e-10)
    wilson = ope.evaluate("replay", **logs, binomial_method="wilson")
    assert wilson.interval == "wilson"
    assert (wilson.low, wilson.high) == pytest.approx(ope.binomial_interval(0, 51, method="wilson"))
    forced = ope.evaluate("replay", **logs, binomial_method=None)
    assert forced.interval == "bootstrap" and forced.low == forced.high == 0.0  # the failure it avoids
    three = ope.evaluate("replay", **deterministic_replay_logs(3))
    assert three.value == pytest.approx(3 / 51)
    assert (three.low, three.high) == pytest.approx(ope.binomial_interval(3, 51))


def test_replay_falls_back_to_the_bootstrap_when_the_exact_interval_does_not_apply():
    logs = deterministic_replay_logs(3)
    cases = np.arange(510)
    cases[10] = cases[0]  # two matched rows (actions 0) in one case
    assert ope.evaluate("replay", **logs, cases=cases, n_bootstrap=200).interval == "bootstrap"
    graded = dict(logs, reward=logs["reward"] * 0.5)
    assert ope.evaluate("replay", **graded, n_bootstrap=200).interval == "bootstrap"
    soft = dict(logs, action_dist=logs["action_dist"] * 0.9 + 0.01)
    assert ope.evaluate("replay", **soft, n_bootstrap=200).interval == "bootstrap"
    varying = dict(logs, pscore=np.linspace(0.05, 0.15, len(logs["reward"])))
    assert ope.evaluate("snipw", **varying, n_bootstrap=200).interval == "bootstrap"
    assert ope.evaluate("ipw", **varying, n_bootstrap=200).interval == "bootstrap"
    assert ope.evaluate("ipw", **logs, cases=cases, n_bootstrap=200).interval == "bootstrap"
    assert ope.evaluate("dr", **logs, estimated_rewards_by_reg_model=np.zeros_like(logs["action_dist"]),
                        n_bootstrap=200).interval == "bootstrap"


def test_uniform_logging_gives_ipw_and_snipw_exact_intervals():
    """Under one propensity p, a deterministic policy and 0/1 rewards, SNIPW is the matched rows' click rate
    (Clopper-Pearson on (k, m)) and IPW is k / (n p) with k ~ Binomial(n, p V) (Clopper-Pearson on (k, n),
    divided by p); with no click the bootstrap said [0, 0]."""
    from scipy.stats import binomtest

    logs = deterministic_replay_logs(0)
    n, p = len(logs["reward"]), float(logs["pscore"][0])
    sn = ope.evaluate("snipw", **logs)
    assert sn.interval == "clopper-pearson" and sn.low == 0.0
    assert sn.high == pytest.approx(binomtest(0, 51).proportion_ci(method="exact").high)
    ip = ope.evaluate("ipw", **logs)
    assert ip.interval == "clopper-pearson" and ip.value == 0.0
    assert ip.high == pytest.approx(binomtest(0, n).proportion_ci(method="exact").high / p)
    assert ope.evaluate("ipw", **logs, binomial_method=None).high == 0.0  # the failure it avoids
    three = deterministic_replay_logs(3)
    ip3 = ope.evaluate("ipw", **three)
    assert ip3.value == pytest.approx(3 / (n * p))
    ci = binomtest(3, n).proportion_ci(method="exact")
    assert (ip3.low, ip3.high) == pytest.approx((ci.low / p, ci.high / p))


def test_on_policy_scores_of_binary_rewards_get_the_exact_interval():
    """Every weight 1 (the uniform policy on a uniformly random log): the estimate is k / n and the interval
    Clopper-Pearson's, not the bootstrap's [0, 0] when no reward is positive; replay alike (equal chances)."""
    from scipy.stats import binomtest

    n, k = 300, 4
    action = np.random.default_rng(2).integers(0, k, n)
    uniform = np.full((n, k), 1 / k)
    for clicks in (0, 7):
        reward = np.zeros(n)
        reward[:clicks] = 1.0
        ci = binomtest(clicks, n).proportion_ci(method="exact")
        for est in ("ipw", "snipw", "replay"):
            e = ope.evaluate(est, reward=reward, action=action, pscore=np.full(n, 1 / k), action_dist=uniform,
                             n_bootstrap=100)
            assert e.interval == "clopper-pearson" and e.value == pytest.approx(clicks / n), est
            assert (e.low, e.high) == pytest.approx((ci.low, ci.high)), est
    # two decisions of one case: the rows are not independent, so the bootstrap stays
    e = ope.evaluate("ipw", reward=reward, action=action, pscore=np.full(n, 1 / k), action_dist=uniform,
                     cases=np.arange(n) // 2, n_bootstrap=100)
    assert e.interval == "bootstrap"


def test_exact_ipw_interval_covers():
    """Coverage of the exact IPW interval on simulated uniform logs with a rare click (true value 0.02)."""
    k, n, v = 10, 2000, 0.02
    hits = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        action = rng.integers(0, k, n)
        choice = rng.integers(0, k, n)
        # the policy's action clicks with probability v; the other actions never do (and are unseen by IPW)
        reward = ((action == choice) & (rng.random(n) < v)).astype(float)
        est = ope.evaluate("ipw", reward=reward, action=action, pscore=np.full(n, 1 / k),
                           action_dist=np.eye(k)[choice])
        assert est.interval == "clopper-pearson"
        hits += est.low <= v <= est.high
    assert 0.93 <= hits / 200 <= 1.0


def test_row_bootstrap_width_matches_the_normal_approximation():
    """IPW is a mean of per-row terms: the 95% percentile interval is about 2 * 1.96 * sd / sqrt(n) wide."""
    data = random_logs(4, n=2000)
    terms = data["action_dist"][np.arange(2000), data["action"]] / data["pscore"] * data["reward"]
    est = ope.evaluate("ipw", **data, n_bootstrap=4000, seed=1)
    width = 2 * 1.959964 * terms.std(ddof=1) / math.sqrt(terms.size)
    assert est.high - est.low == pytest.approx(width, rel=0.1)
    assert est.low < est.value < est.high


def test_case_bootstrap_is_wider_for_perfectly_correlated_rows():
    """Each of 300 rows copied 9 times into one case: the same estimate, but the clustered interval is
    about sqrt(9) = 3 times as wide as the row-level one, which wrongly treats copies as independent."""
    base = random_logs(12, n=300)
    data = {k: np.repeat(v, 9, axis=0) for k, v in base.items()}
    cases = np.repeat(np.arange(300), 9)
    for name in ("ipw", "snipw", "dr"):
        rows = ope.evaluate(name, **data, n_bootstrap=2000, seed=3)
        clustered = ope.evaluate(name, **data, cases=cases, n_bootstrap=2000, seed=3)
        assert clustered.value == rows.value
        assert clustered.n_cases == 300 and rows.n_cases == 2700
        ratio = (clustered.high - clustered.low) / (rows.high - rows.low)
        assert 2.5 < ratio < 3.5, (name, ratio)
        # resampling the 300 cases is resampling the 300 original rows (same seed, same resamples)
        small = ope.evaluate(name, **base, n_bootstrap=2000, seed=3)
        assert (clustered.low, clustered.high) == pytest.approx((small.low, small.high), rel=1e-9)


def test_same_seed_same_estimate_and_generators_are_accepted():
    data = random_logs(6, len_list=2)
    a = ope.evaluate("dr", **data, n_bootstrap=500, seed=42)
    b = ope.evaluate("dr", **data, n_bootstrap=500, seed=42)
    assert a == b
    assert ope.evaluate("dr", **data, n_bootstrap=500, seed=np.random.default_rng(42)) == a
    c = ope.evaluate("dr", **data, n_bootstrap=500, seed=43)
    assert (c.low, c.high) != (a.low, a.high) and c.value == a.value


# ---------------------------------------------------------------------------------------- diagnostics


def test_diagnostics_against_direct_formulas():
    data = random_logs(13, len_list=3)
    n = len(data["reward"])
    pi = data["action_dist"][np.arange(n), :, data["position"]]
    w = pi[np.arange(n), data["action"]] / data["pscore"]
    diag = ope.diagnostics(**data)
    assert diag.n_rounds == n
    assert diag.ess == pytest.approx(w.sum() ** 2 / (w**2).sum(), rel=1e-12)
    assert diag.ess_share == pytest.approx(diag.ess / n)
    assert diag.max_weight == pytest.approx(w.max(), rel=1e-12)
    assert diag.mean_weight == pytest.approx(w.mean(), rel=1e-12)
    assert diag.match_rate == pytest.approx(pi[np.arange(n), data["action"]].mean(), rel=1e-12)
    assert diag.expected_match_rate == 0.25
    assert diag.unsupported_share == 0.0  # 300 rows: every action logged at every position


def test_unsupported_share_is_the_mass_on_never_logged_actions_per_position():
    n, k = 200, 4
    rng = np.random.default_rng(0)
    position = np.arange(n) % 2
    action = rng.integers(0, 3, n)  # action 3 is never logged ...
    action[(position == 0) & (action == 2)] = 0  # ... and action 2 never at position 0
    dist = np.zeros((n, k, 2))
    dist[:, :, 0] = [0.5, 0.1, 0.3, 0.1]  # unsupported at position 0: actions 2 and 3 -> 0.4
    dist[:, :, 1] = [0.7, 0.1, 0.0, 0.2]  # unsupported at position 1: action 3 -> 0.2
    diag = ope.diagnostics(action=action, action_dist=dist, position=position)
    assert diag.unsupported_share == pytest.approx(0.3, rel=1e-12)
    assert math.isnan(diag.ess) and math.isnan(diag.mean_weight)  # no pscore
    est = ope.evaluate("replay", reward=rng.random(n), action=action, action_dist=dist, position=position,
                       n_bootstrap=100)
    assert any("never logged" in w for w in est.warnings)


def test_warnings_flag_wrong_propensities_and_heavy_weights_and_stay_quiet_otherwise():
    rng = np.random.default_rng(1)
    n, k = 1000, 4
    action = rng.integers(0, k, n)
    reward = rng.binomial(1, 0.4, n).astype(float)
    uniform = np.full((n, k), 1 / k)
    clean = ope.evaluate("ipw", reward=reward, action=action, pscore=np.full(n, 1 / k), action_dist=uniform,
                         n_bootstrap=100)
    assert clean.warnings == ()
    wrong = ope.evaluate("ipw", reward=reward, action=action, pscore=np.full(n, 0.5 / k), action_dist=uniform,
                         n_bootstrap=100)
    assert any("mean importance weight 2" in w for w in wrong.warnings)
    pscore = np.full(n, 1 / k)
    pscore[:3] = 1e-4  # three rows with weight 2500
    heavy = ope.evaluate("ipw", reward=reward, action=action, pscore=pscore, action_dist=uniform, n_bootstrap=100)
    text = " ".join(heavy.warnings)
    assert "effective sample size" in text and "largest importance weight" in text
    replay = ope.evaluate("replay", reward=reward, action=action, pscore=pscore, action_dist=uniform,
                          n_bootstrap=100)
    assert any("uniformly random logging" in w for w in replay.warnings)
    assert not any("importance weight" in w or "effective sample size" in w for w in replay.warnings)  # unweighted


# --------------------------------------------------------------------------------------------- compare


def test_compare_is_paired_and_consistent_with_the_point_estimates():
    data = random_logs(14, n=800)
    rng = np.random.default_rng(0)
    baseline = 0.9 * data["action_dist"] + 0.1 * rng.dirichlet(np.ones(4), size=800)
    cmp = ope.compare("dr", **data, baseline_dist=baseline, n_bootstrap=1000, seed=5)
    value = ope.estimate_policy_value("dr", **data)
    base_value = ope.estimate_policy_value("dr", **dict(data, action_dist=baseline))
    assert cmp.value == pytest.approx(value, rel=1e-12)
    assert cmp.baseline_value == pytest.approx(base_value, rel=1e-12)
    assert cmp.difference == pytest.approx(value - base_value, rel=1e-12)
    assert cmp.low <= cmp.difference <= cmp.high
    # paired on the same rows: much narrower than two independent intervals combined
    a = ope.evaluate("dr", **data, n_bootstrap=1000, seed=5)
    b = ope.evaluate("dr", **dict(data, action_dist=baseline), n_bootstrap=1000, seed=5)
    unpaired = math.hypot(a.high - a.low, b.high - b.low)
    assert cmp.high - cmp.low < 0.5 * unpaired


def test_compare_identical_policies_and_a_clearly_better_one():
    data = random_logs(15, n=500)
    same = ope.compare("ipw", **data, baseline_dist=data["action_dist"], n_bootstrap=300)
    assert same.difference == 0.0 and same.low == 0.0 and same.high == 0.0 and same.p_value == 1.0
    bandit = Bandit()
    logs = bandit.sample(4000, seed=2)
    x = logs.pop("context")
    worst = np.eye(bandit.n_actions)[np.argmin(bandit.q, axis=1)][x]
    better = ope.compare("snipw", **logs, baseline_dist=worst, n_bootstrap=1000)
    assert better.difference > 0 and better.low > 0
    assert better.p_value == pytest.approx(2 / 1001)  # no resample reverses the sign
    worse = ope.compare("snipw", **dict(logs, action_dist=worst), baseline_dist=logs["action_dist"], n_bootstrap=1000)
    assert worse.difference == pytest.approx(-better.difference) and worse.high < 0


# -------------------------------------------------------------------------------------- reward model


def test_cross_fitting_excludes_the_rows_own_case():
    """Each case (two rows) has its own context id and one shared random reward. A model that sees the
    sibling row memorises the reward (row-level folds, cases=None); cross-fitting by case cannot."""
    rng = np.random.default_rng(0)
    n_cases = 300
    case = np.repeat(np.arange(n_cases), 2)
    reward = np.repeat(rng.normal(size=n_cases), 2)
    action = np.zeros(2 * n_cases, dtype=int)
    q_case = ope.fit_reward_model(case, action, reward, n_actions=1, cases=case, seed=0)
    q_rows = ope.fit_reward_model(case, action, reward, n_actions=1, seed=0)
    assert abs(np.corrcoef(q_case[:, 0], reward)[0, 1]) < 0.2
    assert np.corrcoef(q_rows[:, 0], reward)[0, 1] > 0.5


def test_reward_model_is_deterministic_for_a_seed_and_has_the_right_shapes():
    bandit = Bandit()
    logs = bandit.sample(600, seed=3)
    x, action, reward = logs["context"], logs["action"], logs["reward"]
    q0 = ope.fit_reward_model(x, action, reward, n_actions=4)
    q1 = ope.fit_reward_model(x, action, reward, n_actions=4, seed=1)
    q2 = ope.fit_reward_model(x, action, reward, n_actions=4, seed=1)
    q3 = ope.fit_reward_model(x, action, reward, n_actions=4, seed=2)
    np.testing.assert_array_equal(q1, q2)
    assert not np.array_equal(q1, q3)
    assert q1.shape == (600, 4) and ((q1 > 0) & (q1 < 1)).all()  # logistic for 0/1 rewards
    position = np.arange(600) % 3
    qp = ope.fit_reward_model(x, action, reward, n_actions=4, position=position)
    assert qp.shape == (600, 4, 3)
    assert not np.allclose(qp[:, :, 0], qp[:, :, 1])  # the position is a feature
    ql = ope.fit_reward_model(x, action, reward, n_actions=4, len_list=2)
    assert ql.shape == (600, 4, 2)
    np.testing.assert_array_equal(ql[:, :, 0], ql[:, :, 1])
    np.testing.assert_array_equal(ql[:, :, 0], q0)
    from sklearn.tree import DecisionTreeRegressor
    qt1 = ope.fit_reward_model(x, action, reward * 2.0, n_actions=4, model=DecisionTreeRegressor(), seed=4)
    qt2 = ope.fit_reward_model(x, action, reward * 2.0, n_actions=4, model=DecisionTreeRegressor(), seed=4)
    np.testing.assert_array_equal(qt1, qt2)


def test_reward_model_recovers_a_linear_reward_with_ridge():
    rng = np.random.default_rng(5)
    n, k = 2000, 3
    x = rng.normal(size=(n, 2))
    action = rng.integers(0, k, n)
    effect = np.array([0.0, 1.0, -2.0])
    reward = 1.5 * x[:, 0] - x[:, 1] + effect[action] + rng.normal(0, 0.1, n)
    q = ope.fit_reward_model(x, action, reward, n_actions=k, n_folds=4)
    truth = 1.5 * x[:, :1] - x[:, 1:] + effect[None, :]
    assert np.abs(q - truth).max() < 0.1


def test_a_fold_with_one_reward_class_predicts_that_constant():
    n = 90
    reward = np.zeros(n)
    reward[0] = 1.0  # the only positive row: its fold trains on zeros only
    x = np.arange(n) % 5
    q = ope.fit_reward_model(x, np.arange(n) % 2, reward, n_actions=2, n_folds=3, seed=0)
    assert (q[0] == 0.0).all()
    zero_rows = (q == 0.0).all(axis=1)
    assert 1 <= zero_rows.sum() < n
    assert (q[~zero_rows] > 0).all()


# ---------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize("change,argument", [
    (dict(pscore=np.r_[0.0, np.full(299, 0.5)]), "pscore"),
    (dict(pscore=np.r_[1.5, np.full(299, 0.5)]), "pscore"),
    (dict(reward=np.r_[np.nan, np.zeros(299)]), "reward"),
    (dict(reward=np.zeros(299)), "reward"),
    (dict(action=np.r_[4, np.zeros(299, dtype=int)]), "action"),
    (dict(action=np.zeros(300)), "action"),
    (dict(action_dist=np.full((300, 4), 0.3)), "action_dist"),
    (dict(action_dist=np.tile([1.5, -0.5, 0.0, 0.0], (300, 1))), "action_dist"),
    (dict(action_dist=np.full((300, 4), np.nan)), "action_dist"),
    (dict(estimated_rewards_by_reg_model=np.zeros((300, 3))), "estimated_rewards_by_reg_model"),
    (dict(position=np.zeros(300, dtype=int)), "position"),
    (dict(pscore=None), "pscore"),
    (dict(estimated_rewards_by_reg_model=None), "estimated_rewards_by_reg_model"),
])
def test_invalid_inputs_name_the_argument(change, argument):
    data = dict(random_logs(1), **change)
    with pytest.raises(ValueError, match=f"`{argument}`"):
        ope.estimate_policy_value("dr", **data)


@pytest.mark.parametrize("fn", [ope.estimate_policy_value, ope.evaluate])
def test_zero_rounds_are_refused(fn):
    empty = dict(reward=np.zeros(0), action=np.zeros(0, dtype=int), pscore=np.zeros(0), action_dist=np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"`action_dist` has no rounds \(shape \(0, 3\)\)"):
        fn("ipw", **empty)


def test_invalid_three_dimensional_inputs_and_options():
    data = random_logs(1, len_list=3)
    with pytest.raises(ValueError, match="`position` is required"):
        ope.estimate_policy_value("ipw", **dict(data, position=None))
    with pytest.raises(ValueError, match="`position` must be in"):
        ope.estimate_policy_value("ipw", **dict(data, position=np.full(300, 3)))
    with pytest.raises(ValueError, match="unknown estimator"):
        ope.estimate_policy_value("IPW", **data)
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        ope.estimate_policy_value("dr", **data, lambda_=1.0)
    with pytest.raises(ValueError, match="`lambda_`"):
        ope.estimate_policy_value("switch-dr", **data, lambda_=-1.0)
    with pytest.raises(ValueError, match="`alpha`"):
        ope.evaluate("ipw", **data, alpha=1.5)
    with pytest.raises(ValueError, match="`cases`"):
        ope.evaluate("ipw", **data, cases=np.arange(10))
    with pytest.raises(ValueError, match="`baseline_dist`"):
        ope.compare("ipw", **data, baseline_dist=data["action_dist"][:, :, :2])
    with pytest.raises(ValueError, match="`n_folds`"):
        ope.fit_reward_model(np.zeros(10), np.zeros(10, dtype=int), np.zeros(10), n_actions=2, n_folds=1)
    with pytest.raises(ValueError, match="`seed`"):
        ope.evaluate("ipw", **data, seed=-1)


# --------------------------------------------------------------------------------- policies and obp


def test_action_dist_from_a_callable_policy():
    bandit = Bandit()
    logs = bandit.sample(300, seed=4)
    x = logs.pop("context")
    dist = ope.action_dist_from(lambda ctx: bandit.pe[ctx], x)
    np.testing.assert_array_equal(dist, logs["action_dist"])
    greedy = ope.action_dist_from(lambda ctx: np.argmax(bandit.q[ctx], axis=1), x, n_actions=4)
    np.testing.assert_array_equal(greedy, np.eye(4)[np.argmax(bandit.q[x], axis=1)])
    with pytest.raises(ValueError, match="n_actions"):
        ope.action_dist_from(lambda ctx: np.argmax(bandit.q[ctx], axis=1), x)
    with pytest.raises(ValueError, match="sum to 1"):
        ope.action_dist_from(lambda ctx: bandit.pe[ctx] * 2, x)


OBP_CLASSES = [
    (ope.ReplayMethod(), "replay", {}),
    (ope.InverseProbabilityWeighting(), "ipw", {}),
    (ope.SelfNormalizedInverseProbabilityWeighting(), "snipw", {}),
    (ope.DirectMethod(), "dm", {}),
    (ope.DoublyRobust(), "dr", {}),
    (ope.SelfNormalizedDoublyRobust(), "sndr", {}),
    (ope.SwitchDoublyRobust(lambda_=2.0), "switch-dr", {"lambda_": 2.0}),
    (ope.DoublyRobustWithShrinkage(lambda_=5.0), "dr-os", {"lambda_": 5.0}),
]


@pytest.mark.parametrize("obj,name,hyper", OBP_CLASSES, ids=[n for _, n, _ in OBP_CLASSES])
def test_obp_classes_delegate_to_the_functions(obj, name, hyper):
    data = random_logs(16, len_list=2)
    assert obj.estimate_policy_value(**data, estimated_pscore=data["pscore"]) == \
        ope.estimate_policy_value(name, **data, **hyper)
    interval = obj.estimate_interval(**data, n_bootstrap_samples=300, random_state=7)
    est = ope.evaluate(name, **data, n_bootstrap=300, seed=7, **hyper)
    assert interval == {"mean": est.value, "95.0% CI (lower)": est.low, "95.0% CI (upper)": est.high}
    assert set(obj.estimate_interval(**data, alpha=0.1, n_bootstrap_samples=50)) == \
        {"mean", "90.0% CI (lower)", "90.0% CI (upper)"}
    with pytest.raises(TypeError, match="rewards"):
        obj.estimate_policy_value(**data, rewards=data["reward"])


def test_obp_class_defaults_and_names():
    assert ope.SwitchDoublyRobust().lambda_ == math.inf
    assert ope.SwitchDoublyRobust(3.0).lambda_ == 3.0  # lambda_ is the first field, as in obp
    assert ope.DoublyRobustWithShrinkage().lambda_ == 10.0
    assert ope.ReplayMethod().estimator_name == "rm"
    assert ope.DoublyRobustWithShrinkage().estimator_name == "dr-os"
    with pytest.raises(ValueError, match="`lambda_`"):
        ope.SwitchDoublyRobust(lambda_=-1.0)
    data = random_logs(17)
    q = data["estimated_rewards_by_reg_model"]
    dm = ope.DirectMethod().estimate_policy_value(action_dist=data["action_dist"], estimated_rewards_by_reg_model=q)
    assert dm == pytest.approx(ope.estimate_policy_value("dm", **data), rel=1e-12)


def test_shared_resamples_equal_drawing_from_the_seed():
    """Counts drawn once by bootstrap_counts and passed as resamples= give exactly the seed's results."""
    data = random_logs(11, n=700)
    cases = np.random.default_rng(3).integers(0, 300, 700)
    n_cases = np.unique(cases).size
    counts = ope.bootstrap_counts(n_cases, 300, seed=5)
    q = np.random.default_rng(2).random(data["action_dist"].shape)
    for est in ("ipw", "snipw", "dr", "sndr", "replay"):
        kw = dict(data, cases=cases, n_bootstrap=300, estimated_rewards_by_reg_model=q)
        a = ope.evaluate(est, **kw, seed=5, binomial_method=None)
        b = ope.evaluate(est, **kw, resamples=counts, binomial_method=None)
        assert (a.low, a.high) == (b.low, b.high)
    base = np.full_like(data["action_dist"], 1.0 / data["action_dist"].shape[1])
    c1 = ope.compare("ipw", **dict(data, cases=cases), baseline_dist=base, n_bootstrap=300, seed=5)
    c2 = ope.compare("ipw", **dict(data, cases=cases), baseline_dist=base, n_bootstrap=300, resamples=counts)
    assert (c1.low, c1.high, c1.p_value) == (c2.low, c2.high, c2.p_value)
    assert counts.sum(axis=1).tolist() == [n_cases] * 300  # each resample draws n_cases cases


def test_case_numbering_fast_path_equals_unique():
    from arena_env.replay.ope import _case_index

    rng = np.random.default_rng(0)
    for c in (rng.integers(0, 50, 200), rng.integers(0, 10**6, 200), np.array([5, 5, 2, 9]),
              rng.integers(0, 50, 200).astype(str)):
        inv, k = _case_index(c, len(c))
        u, want = np.unique(c, return_inverse=True)
        np.testing.assert_array_equal(inv, want)
        assert k == u.size


def test_a_degenerate_paired_bootstrap_falls_back_to_combined_intervals():
    """A policy with no click among its matched rows has a bootstrap estimate that never varies; the paired
    bootstrap would then call its difference from the baseline significant although its own exact interval
    is wide. compare() combines the two exact intervals at alpha/2 instead, and gives no p-value."""
    from scipy.stats import binomtest

    logs = deterministic_replay_logs(0)  # the policy: 51 matched rows, no click
    k = logs["action_dist"].shape[1]
    n = len(logs["reward"])
    rng = np.random.default_rng(1)
    clicks = (rng.random(n) < 0.05).astype(float)
    logs = dict(logs, reward=np.where(logs["action_dist"][np.arange(n), logs["action"]] == 1, 0.0, clicks))
    base = np.full_like(logs["action_dist"], 1.0 / k)  # uniform: the logging policy, value = mean click
    c = ope.compare("snipw", **logs, baseline_dist=base, n_bootstrap=500, seed=0)
    assert c.interval == "combined" and math.isnan(c.p_value)
    hi_policy = binomtest(0, 51).proportion_ci(confidence_level=0.975, method="exact").high
    assert c.high == pytest.approx(hi_policy - ope.evaluate("snipw", **dict(logs, action_dist=base), alpha=0.025,
                                                            n_bootstrap=500, seed=0).low, rel=1e-9)
    assert c.low < 0 < c.high  # not significant, as it should be
    forced = ope.compare("snipw", **dict(logs, reward=logs["reward"] * 0.5), baseline_dist=base, n_bootstrap=500)
    assert forced.interval == "bootstrap"  # graded rewards: no exact interval, the bootstrap as usual
