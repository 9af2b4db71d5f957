"""linucb and bayes_opt: known answers on the stationary bandit scenario and on synthetic reward
functions (a context-dependent best arm, a smooth optimum), the GP, one determinism test, validation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import agents
from agents.contextual import N_FEATURES, features
from arena_env.economy.env import EconomyEnv
from arena_env.economy.scenario import scenario_names
from arena_env.wrappers.agents import context_for, run_episode

HORIZON = 140  # days on `bandit`: 20 pulls of 7 days


def play(name, seed, scenario="bandit", **kw):
    pol = agents.make(name)
    env = EconomyEnv(scenario, n_agents=1, max_days=kw.pop("max_days", HORIZON), info_level="light", **kw)
    return pol, run_episode(env, {"variant_0": pol}, seed=seed)


def test_linucb_settles_on_the_best_arm():
    settled = 0
    for seed in range(10):
        pol, _ = play("linucb", seed)
        last = [a for a, _ in pol.pulls[-5:]]
        settled += max(set(last), key=last.count) == "rich"
    assert settled >= 7, settled


def test_bayes_opt_beats_random_on_a_smooth_scenario():
    bo = [play("bayes_opt", s)[1]["rewards"]["variant_0"] for s in range(5)]
    rnd = [play("random", s)[1]["rewards"]["variant_0"] for s in range(5)]
    assert np.mean(bo) > np.mean(rnd) + 10 and sum(b > r for b, r in zip(bo, rnd)) >= 4, (bo, rnd)
    pol, _ = play("bayes_opt", 0)
    y = np.array(pol.y)
    assert len(y) > pol.n_init and y[pol.n_init:].mean() > y[:pol.n_init].mean()  # it learns


def test_linucb_and_bayes_opt_run_deterministically_across_the_scenarios():
    """The contextual agents' one determinism test: same seed, same episode.  The two agents take the
    scenarios in turn, so each agent and each scenario is covered."""
    kw = {"n_users": 2000, "max_days": 30}
    for name, scenario in zip(itertools.cycle(["linucb", "bayes_opt"]), scenario_names()):
        pa, a = play(name, 3, scenario, **kw)
        pb, b = play(name, 3, scenario, **kw)
        assert a == b, (name, scenario)
        assert a["decisions"]["variant_0"], (name, scenario)  # it did request a configuration
        if name == "bayes_opt":
            assert pa.y == pb.y and len(pa.y) >= 1, (name, scenario)
        else:
            assert pa.pulls == pb.pulls and pa.pulls, (name, scenario)


def test_features_are_lifts_over_the_control():
    env = EconomyEnv("tiny")
    env.reset(seed=0)
    env.step({})
    x = features(context_for(env, "variant_0"))
    assert x.shape == (N_FEATURES,) and x[0] == 1.0 and np.all(np.abs(x[1:]) < 1.0)


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="alpha"):
        agents.make("linucb", alpha=-1)
    with pytest.raises(ValueError, match=r"bayes_opt: groups.s: expected a non-empty list of 'scanXp'.*"
                                         r"got \['scanXP'\]"):
        agents.make("bayes_opt", groups={"s": ["scanXP"]})
    for name, kw in [("bayes_opt", {"n_init": 2.5}), ("bayes_opt", {"n_candidates": 1.5}),
                     ("bayes_opt", {"span": float("inf")}), ("bayes_opt", {"budget": True}),
                     ("bayes_opt", {"period": "7"}), ("bayes_opt", {"status_quo": "no"}),
                     ("bayes_opt", {"groups": ["scanXp"]}), ("linucb", {"alpha": float("nan")}),
                     ("linucb", {"min_days": 0})]:
        key = next(iter(kw))
        with pytest.raises(agents.AgentConfigError, match=f"^{name}: {key}: expected "):  # agent and key named
            agents.make(name, **kw)
    assert agents.make("bayes_opt", budget=None, n_init=3.0).n_init == 3


# ------------------------------------------------------------------ synthetic outcome streams
def retention_signals(day, lift):
    return agents.Signals(100, 50, 80, 500, day, {"RETENTION_RATE": agents.Metric(0.5 + lift, 0.1, 100, "high")},
                          {"RETENTION_RATE": agents.Metric(0.5, 0.1, 100, "high")})


def drive_contextual(agent, pulls, seed=0, noise=0.1):
    """Three arms; each day the variant's retention is 0.2 above or below the control's, at random.
    Arm 0 pays ``+5 x lift``, arm 1 ``-5 x lift``, arm 2 -0.5: the best arm depends on the context.
    Returns, per day, whether the arm in place was the best one for that day's context."""
    rng = np.random.default_rng(500 + seed)
    presets = {f"arm{i}": {**agents.DEFAULTS, "scanXp": 11 + 3 * i} for i in range(3)}
    arms = list(presets.values())
    config = dict(agents.DEFAULTS)
    agent.reset(seed)
    right = []
    day = 0
    while len(agent.pulls) < pulls:
        lift = 0.2 if rng.random() < 0.5 else -0.2
        up = agent.act(agents.Context(signals=retention_signals(day, lift), config=dict(config), day=day,
                                      presets=presets))
        decision = None
        if up is not None:
            config.update(up.overrides)
            decision = {"accepted": True, "appliedConfig": dict(up.overrides)}
        at = arms.index(config)
        right.append(at == (0 if lift > 0 else 1))
        day += 1
        agent.update(agents.Outcome([5 * lift, -5 * lift, -0.5][at] + noise * rng.standard_normal(), decision, day))
    return right


def test_linucb_picks_the_arm_that_is_best_in_the_current_context():
    for seed in range(5):
        right = drive_contextual(agents.make("linucb", period=1), 80, seed=seed)
        assert np.mean(right[-30:]) >= 0.9, (seed, right[-30:])
    # a context-free bandit cannot: it settles on one of the two and is right about half the time
    blind = [np.mean(drive_contextual(agents.make("ucb1", period=1), 80, seed=s)[-30:]) for s in range(5)]
    assert np.mean(blind) < 0.7, blind


OPTIMUM = np.array([0.5, -0.5, 0.25])  # log2 multipliers of the scan, feedback and habit groups
LEVERS = ("scanXp", "feedbackXp", "firstScanOfDayXp")  # one parameter of each default group


def smooth_reward(config):
    u = np.array([np.log2(config[k] / agents.DEFAULTS[k]) for k in LEVERS])
    return -float(np.sum((u - OPTIMUM) ** 2))


def drive_bayes_opt(agent, points, seed=0, noise=0.02):
    """Play ``agent`` (``period=1``) on :func:`smooth_reward` until it has scored ``points`` configurations."""
    rng = np.random.default_rng(700 + seed)
    config = dict(agents.DEFAULTS)
    signals = agents.Signals(100, 50, 80, 500, 0, {})
    agent.reset(seed)
    day = 0
    while len(agent.y) < points:
        up = agent.act(agents.Context(signals=signals, config=dict(config), day=day))
        decision = None
        if up is not None:
            config.update(up.overrides)
            decision = {"accepted": True, "appliedConfig": dict(up.overrides)}
        day += 1
        agent.update(agents.Outcome(smooth_reward(config) + noise * rng.standard_normal(), decision, day))
    return agent


def test_bayes_opt_finds_a_smooth_optimum_that_random_search_misses():
    wins = 0
    for seed in range(5):
        bo = drive_bayes_opt(agents.make("bayes_opt", period=1, budget=None), 25, seed=seed)
        rnd = drive_bayes_opt(agents.make("bayes_opt", period=1, n_init=100, budget=None), 25, seed=seed)  # never fits the GP
        assert max(bo.y) > -0.05, (seed, max(bo.y))  # every lever within about 0.2 (log2) of the optimum
        wins += max(bo.y) > max(rnd.y)
    assert wins >= 4, wins


def test_bayes_opt_points_scale_each_group_of_parameters_together():
    bo = agents.make("bayes_opt")
    bo.base = {**agents.DEFAULTS, "photoXp": 1}
    assert bo.config_for(np.zeros(3)) == {"scanXp": 10, "feedbackXp": 15, "photoXp": 1, "firstScanOfDayXp": 15,
                                          "streakBonusPerDay": 5, "streakBonusCap": 50}
    up = bo.config_for(np.array([1.0, -1.0, 0.5]))
    assert (up["scanXp"], up["feedbackXp"], up["firstScanOfDayXp"], up["streakBonusCap"]) == (20, 8, 21, 71)
    assert up["photoXp"] == 1  # halving 1 rounds to 1, not to 0: a non-zero parameter stays non-zero
    assert "issueReportXp" not in up  # not in any group: never touched


def test_bayes_opt_posterior_follows_the_data_and_is_uncertain_far_from_it():
    bo = agents.make("bayes_opt")
    bo.X = [np.array([-0.5, 0.0, 0.0]), np.array([0.0, 0.0, 0.0]), np.array([0.5, 0.0, 0.0])]
    bo.y = [1.0, 2.0, 3.0]
    mu, sd = bo.posterior(np.array([[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0], [0.25, 0.0, 0.0], [5.0, 5.0, 5.0]]))
    assert mu[0] < 0 < mu[1] and mu[0] < mu[2] < mu[1]  # standardised: below / above the mean, interpolated
    assert sd[0] < 0.5 and sd[1] < 0.5 and abs(mu[3]) < 1e-6 and sd[3] == pytest.approx(1.0)
