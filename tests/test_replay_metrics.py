"""Replay baselines and metrics: the baselines' probabilities, precision@K by the policy's ranking with
divisor min(K, n), outcome rates estimated for the policy's actions (checked against the simulator's
truth), constraint violations, traces and paired comparisons."""

from __future__ import annotations

import numpy as np
import pytest

from arena_env.replay import ope, synthetic
from arena_env.replay import policies as P
from arena_env.replay.log import load_log
from arena_env.replay.metrics import evaluate_policies, evaluate_policy, models, precision_at_k, usable
from arena_env.replay.snapshots import prepare


@pytest.fixture(scope="module")
def world():
    table, man, truth = synthetic.leads(3000, seed=21)
    rep, dropped = usable(prepare(load_log(table, man)), "dr")
    return rep, truth, dropped


def _truth_value(policy, rep, truth):
    dist = np.zeros((len(truth["score"]), 3))
    dist[rep.case] = policy.action_dist(rep)
    return synthetic.true_value(dist, truth)


def test_precision_at_k_ranks_by_score_and_divides_by_min_k_n():
    scores = np.array([0.1, 0.9, 0.5, 0.7, 0.2])
    pos = np.array([1, 0, 1, 1, 0], bool)
    assert precision_at_k(scores, pos, 1) == 0.0          # top: 0.9, negative
    assert precision_at_k(scores, pos, 3) == pytest.approx(2 / 3)  # 0.9, 0.7, 0.5
    assert precision_at_k(scores, pos, 10) == pytest.approx(3 / 5)  # only 5 rows: divide by 5, not 10
    rng = np.random.default_rng(0)
    s, p = rng.random(200), rng.random(200) < 0.3
    for k in (1, 7, 50, 500):
        top = sorted(range(200), key=lambda i: -s[i])[:k]
        assert precision_at_k(s, p, k) == pytest.approx(sum(p[i] for i in top) / min(k, 200))
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        precision_at_k(s, p, 0)


def test_baseline_probabilities(world):
    rep, truth, dropped = world
    assert dropped == {"censored": 0, "no_logged_action": 0, "no_propensity": 0}
    np.testing.assert_allclose(P.Random().action_dist(rep), 1 / 3)
    c = P.Constant("call").action_dist(rep)
    assert (c[:, 2] == 1).all() and P.Constant("call").name == "constant:call"
    th = P.Threshold("score", 0.5, "send_reminder", "wait")
    np.testing.assert_array_equal(np.argmax(th.action_dist(rep), axis=1),
                                  np.where(rep.features["score"] >= 0.5, 1, 0))
    rule = P.Rule([{"if": "segment == 'b'", "then": "call"}, ("score >= 0.3", "send_reminder")], default="wait")
    fired = rule.fired(rep)
    seg_b = rep.features["segment"] == "b"
    np.testing.assert_array_equal(fired, np.where(seg_b, 0, np.where(rep.features["score"] >= 0.3, 1, -1)))
    np.testing.assert_array_equal(np.argmax(rule.action_dist(rep), axis=1), np.where(fired == 0, 2,
                                                                                     np.where(fired == 1, 1, 0)))
    lg = P.Logged().action_dist(rep)
    np.testing.assert_allclose(lg[np.arange(len(rep)), rep.logged], rep.pscore)
    np.testing.assert_allclose(lg.sum(axis=1), 1.0)
    # the logging policy's IPW estimate is exactly the mean logged reward (the on-policy value)
    v = ope.estimate_policy_value("ipw", reward=rep.reward, action=rep.logged, pscore=rep.pscore, action_dist=lg)
    assert v == pytest.approx(rep.reward.mean(), rel=1e-12)


def test_baseline_errors(world):
    rep, _, _ = world
    with pytest.raises(ValueError, match="constant:fax: unknown action 'fax'; the manifest's actions are wait"):
        P.Constant("fax").action_dist(rep)
    with pytest.raises(Exception, match=r"rule: rules\[0\]: unknown name 'scroe'"):
        P.Rule([("scroe > 1", "call")], default="wait").action_dist(rep)
    with pytest.raises(ValueError, match="'segment' is not a numeric feature"):
        P.Threshold("segment", 1, "call", "wait").action_dist(rep)
    with pytest.raises(ValueError, match="unknown policy 'fancy'"):
        P.make({"fancy": {}})
    assert isinstance(P.make({"threshold": {"feature": "score", "threshold": 0.4, "above": "call",
                                            "below": "wait"}}), P.Threshold)


def test_values_and_rates_are_estimated_for_the_policys_actions(world):
    rep, truth, _ = world
    pols = [P.Random(), P.Constant("wait"), P.Threshold("score", 0.5, "send_reminder", "call")]
    evs = evaluate_policies(rep, pols, estimator="dr", n_bootstrap=400, seed=1)
    for pol, ev in zip(pols, evs):
        true = _truth_value(pol, rep, truth)
        half = (ev.value.high - ev.value.low) / 2  # within ~3.2 standard errors (the 95% coverage is tested below)
        assert abs(ev.value.value - true) < 1.6 * half, (pol.name, ev.value, true)
        # the positive rate is the value here (reward 1 = converted); the negative rate its complement
        assert ev.positive_rate.value == pytest.approx(ev.value.value, abs=0.01)
        assert ev.positive_rate.value + ev.negative_rate.value == pytest.approx(1.0, abs=0.02)
    # "estimated for the policy's actions, not the historical labels": a policy that never follows up
    # converts less than history did, and the estimate says so
    hist = rep.reward.mean()
    assert _truth_value(pols[1], rep, truth) < hist - 0.03
    assert evs[1].positive_rate.value < hist - 0.02
    assert evs[0].versus is None and evs[1].baseline == "random"
    d = evs[2].versus
    assert d.difference == pytest.approx(evs[2].value.value - evs[0].value.value, abs=1e-9)


def test_violations_and_traces(world):
    rep, truth, _ = world
    ev = evaluate_policy(rep, P.Constant("call"), estimator="ipw", n_bootstrap=200)
    cold = rep.features["score"] < 0.2
    assert ev.violations["no_call_cold_lead"]["rate"] == pytest.approx(cold.mean())
    assert ev.violations["no_call_cold_lead"]["severity"] == "violation"
    r = evaluate_policy(rep, P.Random(), estimator="ipw", n_bootstrap=200)
    assert r.violations["no_call_cold_lead"]["rate"] == pytest.approx(cold.mean() / 3)  # a third of the time
    assert r.violations["no_call_cold_lead"]["chosen_rate"] == 0.0  # its most likely action (the first) is wait
    assert ev.violations["no_call_cold_lead"]["chosen_rate"] == pytest.approx(cold.mean())
    tr = ev.trace
    assert tr.num_rows == len(rep)
    assert set(tr.column("action").to_pylist()) == {"call"}
    np.testing.assert_array_equal(np.asarray(tr.column("matched")), rep.logged == 2)
    assert tr.column("violations").to_pylist().count("no_call_cold_lead") == int(cold.sum())
    assert ev.row()["violation_rate"] == pytest.approx(cold.mean())


def test_ipw_intervals_cover_the_truth():
    """Over 40 independent logs, the 95% IPW interval of a fixed policy covers its true value 85-100% of the time."""
    pol = P.Threshold("score", 0.4, "send_reminder", "call")
    hits = 0
    for seed in range(40):
        table, man, truth = synthetic.leads(800, seed=100 + seed)
        rep, _ = usable(prepare(load_log(table, man)), "ipw")
        ev = evaluate_policy(rep, pol, estimator="ipw", n_bootstrap=300, seed=seed, rates=False, ks=(10,))
        hits += ev.value.low <= _truth_value(pol, rep, truth) <= ev.value.high
    assert 34 <= hits <= 40


def test_models_are_shared_and_deterministic(world):
    rep, _, _ = world
    a, b = models(rep, "dr", seed=4), models(rep, "dr", seed=4)
    assert set(a) == {"value", "positive", "negative"}
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert models(rep, "ipw") == {}


def test_argmax_picks_the_best_scored_allowed_action(world):
    rep, _, _ = world
    import dataclasses

    feats = dict(rep.features)
    rng = np.random.default_rng(0)
    for a in rep.actions:
        feats[f"aff_{a}"] = rng.random(len(rep))
    types = {**rep.feature_types, **{f"aff_{a}": "number" for a in rep.actions}}
    r2 = dataclasses.replace(rep, features=feats, feature_types=types)
    pol = P.Argmax("aff_{action}")
    want = np.argmax(np.stack([feats[f"aff_{a}"] for a in rep.actions], axis=1), axis=1)
    np.testing.assert_array_equal(np.argmax(pol.action_dist(r2), axis=1), want)
    np.testing.assert_allclose(pol.scores(r2), np.max(np.stack([feats[f"aff_{a}"] for a in rep.actions], 1), 1))
    with pytest.raises(ValueError, match="must contain {action}"):
        P.Argmax("aff")
    with pytest.raises(ValueError, match="no numeric feature matches 'nope_{action}'"):
        P.Argmax("nope_{action}").action_dist(rep)
