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


def test_unseeded_resets_continue_reproducibly_opponents_included():
    """Seeded once, as SB3 seeds: the second episode (reset() without a seed) is the same in two runs,
    the random opponent's draws too, and its opponent is seeded from the economy's episode seed."""
    def run():
        env = gymnasium.make("arena/EconomySingle-v1", opponents="random", scenario="tiny", max_days=8)
        env.reset(seed=0)
        out = []
        for _ in range(2):
            if out:
                env.reset()
            done, rs = False, []
            while not done:
                _, r, term, trunc, _ = env.step(np.zeros(10, np.float32))
                rs.append(r)
                done = term or trunc
            out.append((rs, env.unwrapped.par.config.tolist()))
        return out, env.unwrapped.par.episode_seed
    (first, seed), (second, _) = run(), run()
    assert first == second
    assert first[0][1] != first[1][1]  # the second episode is another one, and the opponent moved in it
    assert seed != 0


def test_bad_learner_name():
    with pytest.raises(ValueError, match="learner"):
        EconomySingleEnv(learner="control", scenario="tiny")


def test_opponents_by_registered_name_get_one_instance_per_seat_and_play():
    env = gymnasium.make("arena/EconomySingle-v1", scenario="default", n_users=400, max_days=15, opponents="random")
    opp = env.unwrapped.opponents
    assert set(opp) == {"variant_1"} or len({id(p) for p in opp.values()}) == len(opp)
    env.reset(seed=3)
    for _ in range(15):
        env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    cfg = env.unwrapped.par.config
    assert (cfg[2] != cfg[0]).any()  # the random opponent moved variant_1 (row 2; row 0 is the control)
    spec = gymnasium.make("arena/EconomySingle-v1", scenario="tiny", opponents={"agent": "ucb1", "params": {"c": 2.0}})
    assert all(p.c == 2.0 for p in spec.unwrapped.opponents.values())


@pytest.mark.parametrize("bad, err, words", [
    (..., TypeError, ["opponents['variant_1']", "registered agent name", "ellipsis"]),
    (42, TypeError, ["opponents['variant_1']", "int"]),
    ("nope", ValueError, ["unknown agent 'nope'", "random"]),
    ({"variant_9": None}, ValueError, ["variant_9", "the others are"]),
    ({"agent": "ucb1", "params": {"c": -1}}, ValueError, ["opponents['variant_1']", "ucb1: c: expected a finite number >= 0, got -1"]),
])
def test_bad_opponents_fail_at_construction_naming_the_seat(bad, err, words):
    with pytest.raises(err) as exc:
        gymnasium.make("arena/EconomySingle-v1", scenario="tiny", opponents=bad)
    for w in words:
        assert w in str(exc.value)


def test_a_refused_step_changes_nothing_the_opponents_included():
    """The opponents acted before the env checked the learner's action: a refused step still advanced a
    random opponent's draws, so the episode went on differently from one that never made the mistake;
    and a step before reset() with opponents was a KeyError instead of the env's error."""
    def rewards(mistake):
        env = EconomySingleEnv(opponents="random", scenario="tiny", max_days=6)
        if mistake:
            with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
                env.step(np.zeros(10, np.float32))
        env.reset(seed=3)
        if mistake:
            with pytest.raises(ValueError, match="action of variant_0: expected shape"):
                env.step(np.zeros(9, np.float32))
        return [env.step(np.full(10, 0.5, np.float32))[1] for _ in range(4)]
    assert rewards(True) == rewards(False)


def test_one_agent_object_cannot_play_two_seats():
    """Given as the policy of every other seat, one agent object played them all: reset once per seat
    (it kept the last seed) and told every seat's outcome, so the seats mixed their state."""
    import agents

    ucb = agents.make("ucb1")
    with pytest.raises(ValueError, match=r"one UCB1 object would play variant_1, variant_2, .*instance of its own"):
        EconomySingleEnv(opponents=ucb, scenario="tiny", n_agents=3)
    with pytest.raises(ValueError, match="one Raiser object would play variant_0, variant_2"):
        opp = Raiser()
        EconomySingleEnv(opponents={"variant_0": opp, "variant_2": opp}, learner="variant_1", scenario="tiny",
                         n_agents=3)
    EconomySingleEnv(opponents=ucb, scenario="tiny")  # one seat: fine
    EconomySingleEnv(opponents=lambda o, i: None, scenario="tiny", n_agents=3)  # a function holds no state
