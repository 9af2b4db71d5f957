"""linucb and bayes_opt: known answers on the stationary bandit scenario, determinism, validation."""

from __future__ import annotations

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


@pytest.mark.parametrize("name", ["linucb", "bayes_opt"])
@pytest.mark.parametrize("scenario", scenario_names())
def test_runs_every_scenario_deterministically(name, scenario):
    kw = {"n_users": 2000, "max_days": 30}
    a = play(name, 3, scenario, **kw)[1]
    b = play(name, 3, scenario, **kw)[1]
    assert a == b


def test_features_are_lifts_over_the_control():
    env = EconomyEnv("tiny")
    env.reset(seed=0)
    env.step({})
    x = features(context_for(env, "variant_0"))
    assert x.shape == (N_FEATURES,) and x[0] == 1.0 and np.all(np.abs(x[1:]) < 1.0)


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="alpha"):
        agents.make("linucb", alpha=-1)
    with pytest.raises(ValueError, match="bad: \\['scanXP'\\]"):
        agents.make("bayes_opt", groups={"s": ["scanXP"]})
