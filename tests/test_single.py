"""The single-agent Gymnasium env: checkers of Gymnasium and Stable-Baselines3, opponents, seeding."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import arena_env  # noqa: F401
from arena_env.wrappers.single import EconomySingleEnv


def test_gymnasium_checker():
    env = gymnasium.make("arena/EconomySingle-v1", scenario="tiny", max_days=10)
    check_env(env.unwrapped)


def test_sb3_checker():
    from stable_baselines3.common.env_checker import check_env as sb3_check

    sb3_check(EconomySingleEnv(scenario="tiny", max_days=10), warn=True)
    sb3_check(EconomySingleEnv(scenario="tiny", max_days=10, action_mode="discrete"), warn=True)


class Raiser:
    """An opponent with the agent shape: raises scanXp every day; records its seed."""

    def __init__(self):
        self.seed = None

    def reset(self, seed):
        self.seed = seed

    def act(self, obs, info):
        a = np.zeros(10, np.float32)
        a[0] = 1.0
        return a


def test_opponents_drive_the_other_treatments():
    opp = Raiser()
    env = EconomySingleEnv(opponents={"variant_1": opp}, scenario="tiny", max_days=5)
    obs, info = env.reset(seed=3)
    assert opp.seed == 5  # variant_1 plays with seed + 1 + 1
    for _ in range(3):
        obs, rew, term, trunc, info = env.step(np.zeros(10, np.float32))
    assert env.par.config[2, 0] > 10  # the opponent's variant moved
    assert env.par.config[1, 0] == 10  # the learner held
    assert info["variant"] == 1


def test_episode_end_and_seeded_reproducibility():
    def run(seed):
        env = EconomySingleEnv(scenario="tiny", max_days=6, opponents=lambda o, i: np.full(10, -0.5, np.float32))
        env.reset(seed=seed)
        rs = []
        done = False
        while not done:
            _, r, term, trunc, _ = env.step(env.action_space.sample() * 0)
            rs.append(r)
            done = term or trunc
        return rs
    a = run(1)
    assert len(a) == 6 and a == run(1)


def test_bad_learner_name():
    with pytest.raises(ValueError, match="learner"):
        EconomySingleEnv(learner="control", scenario="tiny")
