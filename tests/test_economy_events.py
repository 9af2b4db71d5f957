"""The economy's own event log: recording changes nothing, the events add up to the simulation's own
aggregates, the log loads in the replay schema, and off-policy evaluation on it recovers the true value
of a stochastic policy that the simulation itself measures (closing the loop)."""

from __future__ import annotations

import numpy as np
import pytest

from arena_env.economy import layout as L
from arena_env.economy.env import EconomyEnv
from arena_env.economy.events import EventRecorder, manifest
from arena_env.replay import ope
from arena_env.replay.log import load_log
from arena_env.replay.snapshots import prepare

SMALL = dict(scenario="tiny", action_mode="discrete", n_agents=1, max_days=14, n_users=300)


def _episode(env, seed, arm, recorder=None, propensity=None):
    obs, _ = env.reset(seed=seed)
    rewards, first, observations = [], True, [obs]
    while env.agents:
        if first and recorder is not None and propensity is not None:
            recorder.propose({a: propensity for a in env.agents})
        obs, r, *_ = env.step({a: (arm if first else 0) for a in env.agents})
        first = False
        rewards.append(r)
        observations.append(obs)
    return rewards, observations


def test_recording_changes_nothing():
    plain = EconomyEnv(scenario="tiny", action_mode="discrete")
    rec = EventRecorder("users")
    recorded = EconomyEnv(scenario="tiny", action_mode="discrete", recorder=rec)
    r1, o1 = _episode(plain, 3, 2)
    r2, o2 = _episode(recorded, 3, 2)
    assert r1 == r2
    for a, b in zip(o1, o2):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    assert len(rec) > 1000


def test_events_add_up_to_the_simulation():
    rec = EventRecorder("users")
    env = EconomyEnv(**{**SMALL, "n_agents": 2}, recorder=rec)
    rewards, _ = _episode(env, 5, 3, rec, 0.25)
    log = load_log(rec.table(), manifest(env.scenario))
    assert log.report.moved == 0  # the recorder writes every case in time order
    t = log.table
    etype = np.asarray(t.column("event_type").to_pylist(), dtype=object)
    actor = np.asarray(t.column("actor_type").to_pylist(), dtype=object)
    case = np.asarray(t.column("case_id").to_pylist(), dtype=object)
    day_rows = (etype == "interaction.occurred") & (actor == "system")
    for v, name in enumerate(["control", "variant_0", "variant_1"]):
        mine = day_rows & (case == f"5/{name}")
        # one summary per simulated day, equal to the env's own history
        active = log.column("active")[mine]
        np.testing.assert_array_equal(active, env.history_i[:env.day, v, L.A_ACTIVE])
        np.testing.assert_array_equal(log.column("scans")[mine], env.history_i[:env.day, v, L.A_SCANS])
        # per-user activity events add up to the day's active count
        users = (etype == "interaction.occurred") & (actor == "user") & (case == f"5/{name}")
        days = log.time_us[users] // 86_400_000_000
        counts = np.bincount(days - days.min(), minlength=env.day) if users.any() else np.zeros(env.day)
        np.testing.assert_array_equal(counts[:env.day], env.history_i[:env.day, v, L.A_ACTIVE])
        churn = (etype == "state.changed") & (case == f"5/{name}")
        assert churn.sum() == env.history_i[:env.day, v, L.A_CHURNED_TODAY].sum()
    # the outcome is the agent's episode return; the decisions carry the propensity given
    out = etype == "outcome.recorded"
    got = dict(zip(case[out], log.column("value")[out]))
    for k, a in enumerate(env.possible_agents):
        assert got[f"5/{a}"] == pytest.approx(sum(r[a] for r in rewards), rel=1e-12)
    assert got["5/control"] == 0.0
    rep = prepare(log, first_only=True)
    assert len(rep) == 2 and set(rep.actions[i] for i in rep.logged) == {"rich"}
    np.testing.assert_allclose(rep.pscore, 0.25)
    # object-centric: one user's events across the episode
    one = log.filter_by_object("user", "5/u7")
    assert len(one) > 0 and set(one.table.column("actor_id").to_pylist()) == {"5/u7"}


def test_off_policy_estimate_covers_the_simulated_truth():
    """A stochastic logging policy picks a preset per episode; IPW on the recorded log estimates the value
    of another stochastic policy, whose true value the simulation gives by playing every preset on the
    same seeds.  The 95% interval covers the truth in the large majority of logs."""
    arms = ("defaults", "lean", "rich")
    p_log = np.array([0.5, 0.25, 0.25])
    p_eval = np.array([0.1, 0.3, 0.6])
    seeds = range(40)
    rec = EventRecorder("variants")
    env = EconomyEnv(**SMALL, recorder=rec)
    for k, arm in enumerate(arms):
        rec.prefix = f"{arm}/"
        for s in seeds:
            _episode(env, s, k + 1, rec, float(p_log[k]))
    rep = prepare(load_log(rec.table(), manifest(env.scenario)), first_only=True)
    assert len(rep) == 3 * len(seeds)
    case_ids = rep.log.case_ids[rep.case]
    seed_of = np.array([int(c.split("/")[1]) for c in case_ids])
    arm_of = np.array([arms.index(rep.actions[i]) for i in rep.logged])
    R = np.full((len(seeds), 3), np.nan)
    R[seed_of, arm_of] = rep.reward
    truth = float(np.mean(R @ p_eval))  # the policy's value on these seeds, from simulation
    dist = np.zeros((len(rep), rep.n_actions))
    dist[:, 1:] = p_eval
    rng = np.random.default_rng(0)
    hits, n_logs = 0, 40
    for _ in range(n_logs):
        pick = rng.choice(3, size=len(seeds), p=p_log)  # the logging policy's choice per seed
        rows = np.flatnonzero(arm_of == pick[seed_of])
        est = ope.evaluate("ipw", reward=rep.reward[rows], action=rep.logged[rows], pscore=rep.pscore[rows],
                           action_dist=dist[rows], cases=rep.case[rows], n_bootstrap=500, seed=1)
        hits += est.low <= truth <= est.high
    assert hits >= 0.8 * n_logs, (hits, n_logs)
    # and the log's preset effect is real: the truth differs from the logging policy's value
    assert abs(truth - float(np.mean(R @ p_log))) > 0
