"""The replay env: PettingZoo API, rewards equal to the estimators' per-row terms, errors for invalid
actions, determinism, pickling, batches, and agents of agents/ playing on it."""

from __future__ import annotations

import pickle

import numpy as np
import pettingzoo
import pytest
from pettingzoo.test import parallel_api_test

import arena_env  # noqa: F401 - registers the envs
from arena_env.replay import ope, synthetic
from arena_env.replay import policies as P
from arena_env.replay.agents import BanditPlayer, PolicyPlayer, play
from arena_env.replay.env import ReplayEnv
from arena_env.replay.log import load_log
from arena_env.replay.snapshots import prepare


@pytest.fixture(scope="module")
def log():
    table, man, _ = synthetic.leads(300, seed=5)
    return load_log(table, man)


def _run(env, choose, seed=0):
    obs, _ = env.reset(seed=seed)
    total = {a: 0.0 for a in env.agents}
    infos = {}
    while env.agents:
        obs, rew, term, trunc, infos = env.step({a: choose(a, obs[a]) for a in env.agents})
        for a, r in rew.items():
            total[a] += r
    return total, infos


def test_pettingzoo_api(log):
    parallel_api_test(ReplayEnv(log, agents=2), num_cycles=400)
    env = pettingzoo.make("parallel", "arena/Replay-v0", log=log, agents=["a", "b"])
    assert env.possible_agents == ["a", "b"]


@pytest.mark.parametrize("estimator", ["ipw", "dm", "dr", "replay"])
def test_returns_are_the_estimators(log, estimator):
    env = ReplayEnv(log, agents=2, estimator=estimator)
    rep = env.replay
    rng = np.random.default_rng(0)
    choice = {a: rng.integers(0, rep.n_actions, len(rep)) for a in env.possible_agents}
    t = {"i": 0}

    def choose(agent, obs):
        a = int(choice[agent][t["i"]])
        if agent == env.possible_agents[-1]:
            t["i"] += 1
        return a

    total, infos = _run(env, choose)
    for agent in env.possible_agents:
        dist = np.eye(rep.n_actions)[choice[agent]]
        kw = dict(reward=rep.reward, action=rep.logged, action_dist=dist)
        if estimator in ("ipw", "dr"):
            kw["pscore"] = rep.pscore
        if estimator in ("dm", "dr"):
            kw["estimated_rewards_by_reg_model"] = env.q
        want = ope.estimate_policy_value(estimator, **kw)
        est = infos[agent]["estimate"]
        assert est.value == pytest.approx(want, rel=1e-12)
        if estimator == "replay":
            matched = choice[agent] == rep.logged
            assert total[agent] == pytest.approx(rep.reward[matched].sum())
        else:
            assert total[agent] / len(rep) == pytest.approx(want, rel=1e-9)
        assert est.low <= est.value <= est.high


def test_the_reward_model_is_cross_fitted_and_deterministic(log):
    a, b = ReplayEnv(log, estimator="dr", seed=3), ReplayEnv(log, estimator="dr", seed=3)
    np.testing.assert_array_equal(a.q, b.q)
    assert a.q.shape == (len(a.replay), a.replay.n_actions)


def test_invalid_actions_are_errors(log):
    man = {**log.manifest.to_dict(), "decision_points": [{"name": "follow_up", "trigger": "decision.requested",
                                                          "allowed_actions": ["wait", "send_reminder"]}]}
    env = ReplayEnv(load_log(log.table.drop_columns(["row"]), man), agents=["x"])
    obs, _ = env.reset()
    assert obs["x"]["action_mask"].tolist() == [1, 1, 0]
    with pytest.raises(ValueError, match=r"agent 'x': action 2 is not allowed at decision row 0 .*allowed: "
                                         r"0=wait, 1=send_reminder"):
        env.step({"x": 2})
    with pytest.raises(ValueError, match=r"action 7 is not allowed"):
        env.step({"x": 7})
    with pytest.raises(ValueError, match=r"expected an integer action index"):
        env.step({"x": 0.5})
    with pytest.raises(ValueError, match=r"no action for agent 'x'"):
        env.step({})
    with pytest.raises(ValueError, match=r"unknown agent 'y'"):
        env.step({"x": 0, "y": 1})
    env.step({"x": 0})  # nothing changed state before: the episode goes on
    with pytest.raises(ValueError, match="estimator='snipw'"):
        ReplayEnv(log, estimator="snipw")
    with pytest.raises(ValueError, match="needs its manifest"):
        ReplayEnv("some.csv")


def test_missing_propensities_are_named(log):
    t = log.table.drop_columns(["row"])
    import pyarrow as pa

    t = t.set_column(t.column_names.index("propensity"), "propensity", pa.nulls(t.num_rows, pa.float64()))
    nolog = load_log(t, log.manifest)
    with pytest.raises(ValueError, match=r"300 decision points have no logged propensity .*use estimator='dm'"):
        ReplayEnv(nolog, estimator="ipw")
    ReplayEnv(nolog, estimator="dm")


def test_batches_match_single_steps(log):
    single = ReplayEnv(log, estimator="ipw")
    batch = ReplayEnv(log, estimator="ipw", batch_size=64)
    assert batch.n_steps == -(-len(single.replay) // 64)
    choice = np.argmax(P.Threshold("score", 0.5, "send_reminder", "call").action_dist(single.replay), axis=1)
    t = {"i": 0}

    def one(agent, obs):
        t["i"] += 1
        return int(choice[t["i"] - 1])

    tot1, inf1 = _run(single, one)
    t["i"] = 0

    def many(agent, obs):
        out = np.zeros(64, np.int64)
        rows = choice[t["i"]:t["i"] + 64]
        out[:len(rows)] = rows
        t["i"] += 64
        assert obs["observation"].shape == (64, len(batch.feature_names))
        return out

    tot2, inf2 = _run(batch, many)
    assert tot1["policy_0"] == pytest.approx(tot2["policy_0"])
    assert inf1["policy_0"]["estimate"] == inf2["policy_0"]["estimate"]


def test_deterministic_and_picklable(log):
    env = ReplayEnv(log, agents=2, estimator="dr")
    clone = pickle.loads(pickle.dumps(env))
    for e in (env, clone):
        o, _ = e.reset(seed=1)
    np.testing.assert_array_equal(env.obs_matrix, clone.obs_matrix)
    np.testing.assert_array_equal(env.q, clone.q)
    r1 = play(env, {a: BanditPlayer("ucb1") for a in env.possible_agents}, seed=4)
    r2 = play(clone, {a: BanditPlayer("ucb1") for a in clone.possible_agents}, seed=4)
    assert {a: v["return"] for a, v in r1.items()} == {a: v["return"] for a, v in r2.items()}


def test_observations_encode_the_snapshots(log):
    env = ReplayEnv(log)
    rep = env.replay
    names = env.feature_names
    k = 7
    obs = env.obs_matrix[k]
    snap = rep.snapshot(k)
    assert obs[names.index("score")] == pytest.approx(snap["score"], rel=1e-6)
    assert obs[names.index(f"segment={snap['segment']}")] == 1.0
    assert "final_status" not in " ".join(names)
    o, _ = env.reset()
    assert env.observation_space("policy_0")["observation"].contains(o["policy_0"]["observation"])


def test_bandit_agents_learn_on_uniform_logs():
    """On a log whose actions were logged uniformly at random, replay-evaluated UCB1 (an agent of
    agents/) learns online from the matched rows and ends up pulling the best action most."""
    import dataclasses

    table, man, truth = synthetic.leads(6000, seed=2)
    rng = np.random.default_rng(9)
    n = len(truth["score"])
    act = rng.integers(0, 3, n)  # uniform logging, outcomes from the simulator's truth
    conv = rng.random(n) < truth["p"][np.arange(n), act]
    rep = prepare(load_log(table, man))
    rep = dataclasses.replace(rep, logged=act[rep.case], pscore=np.full(len(rep), 1 / 3),
                              reward=conv[rep.case].astype(float))
    env = ReplayEnv(rep, agents=["ucb1", "random"], estimator="replay")
    players = {"ucb1": BanditPlayer("ucb1", eliminate=None), "random": PolicyPlayer(P.Random())}
    res = play(env, players, seed=0)
    best = int(np.argmax(truth["p"].mean(axis=0)))
    assert synthetic.ACTIONS[best] == "send_reminder"
    agent = players["ucb1"].agent
    assert int(np.argmax(agent.n)) == best and agent.n.sum() == pytest.approx(len(rep) / 3, rel=0.1)
    assert res["ucb1"]["estimate"].value > res["random"]["estimate"].value
    assert res["ucb1"]["estimate"].interval == "clopper-pearson"
