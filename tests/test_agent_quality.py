"""The learners' safeguards (agents/bandits.py, agents/contextual.py) on synthetic outcome streams.

No environment: contexts and outcomes are made up and fed through the agent protocol (``reset``,
``act``, ``update``).  An accepted request reaches its arm at once; a day at arm ``i`` pays
``means[i]`` (plus Gaussian noise).  Checked: the stop-loss ends a losing pull early (not before
``min_days``, not for a pull within the noise of the incumbent, not when off), warm-up days are held
but not measured, the status quo arm is credited without being pulled, untried arms are explored
from the least generous, clearly worse arms are eliminated, explore-then-exploit commits, and
``bayes_opt`` holds its recommendation once its budget is spent.
"""

from __future__ import annotations

import numpy as np
import pytest

import agents
from agents.bandits import ArmHold, generosity

BANDITS = ["epsilon_greedy", "ucb1", "thompson", "thompson_gaussian", "explore_then_exploit", "hedge", "linucb"]


def presets_by_scan(values, start=None):
    """Arms that differ from the start config (the defaults, or ``start``) in scanXp only."""
    base = dict(agents.DEFAULTS if start is None else start)
    return {f"arm{i}": {**base, "scanXp": int(v)} for i, v in enumerate(values)}


def drive(agent, presets, means, days, noise=0.0, seed=0, start=None, days_per_step=1):
    """Play ``agent`` for ``days`` days; returns the arm index in place on each day (None: none)."""
    rng = np.random.default_rng(100 + seed)
    arms = list(presets.values())
    config = dict(agents.DEFAULTS if start is None else start)
    signals = agents.Signals(100, 50, 80, 500, 0, {})
    agent.reset(seed)
    placed = []
    for day in range(0, days, days_per_step):
        up = agent.act(agents.Context(signals=signals, config=dict(config), day=day, presets=presets))
        decision = None
        if up is not None:
            config.update(up.overrides)
            decision = {"accepted": True, "appliedConfig": dict(up.overrides)}
        at = arms.index(config) if config in arms else None
        placed += [at] * days_per_step
        mean = 0.0 if at is None else means[at]
        reward = sum(mean + noise * rng.standard_normal() for _ in range(days_per_step))
        agent.update(agents.Outcome(reward, decision, day + days_per_step))
    return placed


def runs(placed):
    """The runs of ``placed``: [(arm, days), ...]."""
    out = []
    for a in placed:
        if out and out[-1][0] == a:
            out[-1][1] += 1
        else:
            out.append([a, 1])
    return [tuple(r) for r in out]


# ------------------------------------------------------------------------------------ ArmHold
def ctx(day, x, presets, can=True):
    return agents.Context(signals=None, config={"scanXp": x}, day=day, presets=presets,
                          next_allowed_update=None if can else 1e9)


def at_arm(hold, presets, rewards, reference=None, x=30):
    """Feed ``rewards`` (one per day, until the pull ends) to a pull of arm ``b`` (scanXp ``x``), which
    the config reaches on the first day; the results of ``record``."""
    out = []
    for day, r in enumerate(rewards):
        up = hold.act(ctx(day, x if day else 10, presets), lambda: 1)
        decision = {"accepted": True, "appliedConfig": dict(up.overrides)} if up is not None else None
        out.append(hold.record(agents.Outcome(r, decision, day + 1), reference))
        if out[-1] is not None:
            break
    return out


def test_warmup_days_are_held_but_not_measured():
    presets = {"a": {"scanXp": 10}, "b": {"scanXp": 30}}
    hold = ArmHold(period=2, warmup=2)
    res = at_arm(hold, presets, [100.0, 100.0, 1.0, 3.0])
    assert res == [None, None, None, (1, 2.0)]  # 2 warm-up days, then the mean of the 2 measured days
    assert hold.days == 2 and not hold.stopped


def test_stop_loss_ends_a_losing_pull_once_it_has_min_days_and_a_noise_estimate():
    presets = {"a": {"scanXp": 10}, "b": {"scanXp": 30}}
    losing = [-1.0, -1.2, -0.8, -1.1, -0.9, -1.0, -1.0]
    hold = ArmHold(period=7, stop_loss=1.0, min_days=2)
    res = at_arm(hold, presets, losing, reference=0.0)
    # day 2 has min_days but only 1 degree of freedom for the noise; day 3 has both
    assert res[:2] == [None, None] and res[2] == (1, pytest.approx(-1.0)) and hold.stopped and hold.days == 3
    # min_days counts measured days only: after 2 warm-up days, the stop needs 3 more
    hold = ArmHold(period=7, warmup=2, stop_loss=1.0, min_days=3)
    res = at_arm(hold, presets, [-5.0, -5.0] + losing, reference=0.0)
    assert res[:4] == [None] * 4 and res[4] is not None and hold.stopped and hold.days == 3


@pytest.mark.parametrize("kw, reference", [({"stop_loss": None}, 0.0),   # off
                                           ({"stop_loss": 1.0}, None),   # no incumbent to compare with
                                           ({"stop_loss": 1.0}, -0.97)])  # within the noise of the incumbent
def test_no_stop_loss_without_a_clear_loss(kw, reference):
    presets = {"a": {"scanXp": 10}, "b": {"scanXp": 30}}
    hold = ArmHold(period=7, min_days=2, **kw)
    res = at_arm(hold, presets, [-1.0, -1.2, -0.8, -1.1, -0.9, -1.0, -1.0], reference=reference)
    assert res[:-1] == [None] * 6 and res[-1] == (1, pytest.approx(-1.0)) and not hold.stopped


def test_daily_noise_is_pooled_within_pulls():
    presets = {"a": {"scanXp": 10}, "b": {"scanXp": 30}}
    hold = ArmHold(period=3)
    assert hold.daily_sd() is None
    at_arm(hold, presets, [1.0, 2.0, 3.0])       # deviations -1, 0, 1 about the pull's mean
    at_arm(hold, presets, [11.0, 12.0, 13.0])    # a different level does not count as noise
    assert hold.daily_sd() == pytest.approx(1.0)


# ------------------------------------------------------------------------ through the agents
@pytest.mark.parametrize("name", BANDITS)
def test_a_losing_arm_is_cut_short_and_a_winning_arm_is_held(name):
    presets = presets_by_scan([12, 14, 16])
    placed = drive(agents.make(name, period=7), presets, [-1.0, 0.5, -2.0], 40, noise=0.1)
    pol_runs = runs(placed)
    first = {a: d for a, d in reversed(pol_runs)}
    assert first[0] <= 3 and first[2] <= 3  # losers: stopped after 3 days (2 measured + the noise estimate)
    assert first[1] == 7 or pol_runs[-1][0] == 1  # the winner gets its full period
    assert placed[-10:] == [1] * 10


def test_stopped_pulls_are_recorded_as_such():
    pol = agents.make("ucb1", period=7)
    drive(pol, presets_by_scan([12, 14]), [-1.0, 0.5], 30, noise=0.1)
    assert pol.pulls[0][0] == "arm0" and pol.stops[0] and pol.hold.days <= 7
    assert not any(s for (arm, _), s in zip(pol.pulls, pol.stops) if arm == "arm1")


def test_without_the_stop_loss_a_losing_arm_gets_its_full_period():
    placed = drive(agents.make("ucb1", period=7, stop_loss=None), presets_by_scan([12, 14]), [-1.0, 0.5], 30,
                   noise=0.1)
    assert runs(placed)[0] == (0, 7)


def test_the_status_quo_arm_is_credited_without_being_pulled():
    start = dict(agents.DEFAULTS)
    presets = {"same": dict(start), **presets_by_scan([12, 14])}
    pol = agents.make("explore_then_exploit", rounds=1, period=3)
    placed = drive(pol, presets, [0.0, -1.0, -2.0], 30, noise=0.1)  # both changes lose money
    assert pol.incumbent == 0 and pol.n[0] >= 1 and "same" not in [a for a, _ in pol.pulls[:2]]
    assert 0 not in placed[:4] and placed[-10:] == [0] * 10  # back to the status quo for good
    off = agents.make("explore_then_exploit", rounds=1, period=3, status_quo=False)
    drive(off, presets, [0.0, -1.0, -2.0], 30, noise=0.1)
    assert "same" in [a for a, _ in off.pulls[:3]]  # without the credit it is measured like any arm


def test_untried_arms_are_explored_from_the_least_generous():
    presets = {"raise": {**agents.DEFAULTS, "scanXp": 20}, "cut": {**agents.DEFAULTS, "scanXp": 5},
               "mixed": {**agents.DEFAULTS, "scanXp": 5, "feedbackXp": 30}, "small": {**agents.DEFAULTS, "scanXp": 12}}
    g = {k: generosity(v, agents.DEFAULTS) for k, v in presets.items()}
    assert g["cut"] < 0 < g["small"] < g["raise"] and g["cut"] < g["mixed"]
    expected = sorted(presets, key=g.get)
    for name in BANDITS:
        pol = agents.make(name, period=1, eliminate=None)
        drive(pol, presets, [0.1, 0.1, 0.1, 0.1], 4)
        assert [a for a, _ in pol.pulls] == expected, name
    orders = set()
    for seed in range(6):
        pol = agents.make("ucb1", period=1, order="random")
        drive(pol, presets, [0.1, 0.1, 0.1, 0.1], 4, seed=seed)
        orders.add(tuple(a for a, _ in pol.pulls))
    assert len(orders) > 1  # the seed decides


@pytest.mark.parametrize("name", ["epsilon_greedy", "ucb1", "thompson_gaussian", "hedge"])
def test_clearly_worse_arms_are_eliminated_and_never_pulled_again(name):
    presets = presets_by_scan([12, 14, 16, 18])
    pol = agents.make(name, period=1, epsilon=1.0) if name == "epsilon_greedy" else agents.make(name, period=1)
    placed = drive(pol, presets, [-0.5, 0.6, -0.3, 0.55], 60, noise=0.05)
    assert not pol.alive[0] and pol.alive[1] and not pol.alive[2]
    assert set(placed[6:]) <= {1, 3}  # the contenders only, however exploratory the strategy
    keep = agents.make(name, period=1, eliminate=None, **({"epsilon": 1.0} if name == "epsilon_greedy" else {}))
    assert keep.alive.size == 0 or keep.alive.all()
    drive(keep, presets, [-0.5, 0.6, -0.3, 0.55], 60, noise=0.05)
    assert keep.alive.all()


def test_explore_then_exploit_commits_even_when_its_arm_drifts():
    pol = agents.make("explore_then_exploit", rounds=1, period=2, stop_loss=None)
    presets = presets_by_scan([12, 14, 16])
    placed = drive(pol, presets, [0.2, 1.0, 0.5], 7)
    assert pol.committed == 1 and placed[-1] == 1
    rest = drive_more(pol, presets, {1: -3.0}, 20, start_day=7, config=presets["arm1"])
    assert set(rest) == {1}  # it never reconsiders, whatever the committed arm earns later


def drive_more(agent, presets, means, days, start_day, config):
    """Continue an episode without ``reset``: arm i pays ``means.get(i, 0)``."""
    arms = list(presets.values())
    config = dict(config)
    placed = []
    for day in range(start_day, start_day + days):
        up = agent.act(agents.Context(signals=agents.Signals(100, 50, 80, 500, 0, {}), config=dict(config), day=day,
                                      presets=presets))
        decision = None
        if up is not None:
            config.update(up.overrides)
            decision = {"accepted": True, "appliedConfig": dict(up.overrides)}
        at = arms.index(config)
        placed.append(at)
        agent.update(agents.Outcome(means.get(at, 0.0), decision, day + 1))
    return placed


def test_multi_day_steps_count_as_days():
    pol = agents.make("ucb1", period=7)
    placed = drive(pol, presets_by_scan([12, 14]), [-1.0, 0.5], 70, noise=0.1, days_per_step=7)
    assert pol.pulls[0][0] == "arm0" and pol.pulls[0][1] == pytest.approx(-1.0, abs=0.2)
    assert placed[-14:] == [1] * 14


@pytest.mark.parametrize("name", BANDITS)
def test_the_seed_decides_everything(name):
    presets = presets_by_scan([12, 14, 16, 18])
    a = drive(agents.make(name, period=2), presets, [0.1, 0.3, 0.2, 0.25], 40, noise=0.3, seed=4)
    b = drive(agents.make(name, period=2), presets, [0.1, 0.3, 0.2, 0.25], 40, noise=0.3, seed=4)
    assert a == b


def test_new_hyperparameters_are_validated():
    for name, kw in [("ucb1", {"warmup": -1}), ("ucb1", {"min_days": 0}), ("ucb1", {"stop_loss": -1.0}),
                     ("thompson", {"eliminate": -0.5}), ("hedge", {"order": "sideways"}),
                     ("linucb", {"order": "sideways"}), ("bayes_opt", {"budget": 0}), ("bayes_opt", {"min_days": 0}),
                     ("bayes_opt", {"order": "sideways"})]:
        with pytest.raises(ValueError):
            agents.make(name, **kw)
    hedge = agents.make("hedge", stop_loss=None, eliminate=0.5, min_days=4)
    assert all(s.stop_loss is None and s.eliminate == 0.5 and s.min_days == 4 and s.hold is hedge.hold
               for s in hedge.subs)  # the strategies share the ensemble's settings and its pulls


# ---------------------------------------------------------------------------------- bayes_opt
def drive_bayes_opt(agent, days, reward):
    config = dict(agents.DEFAULTS)
    signals = agents.Signals(100, 50, 80, 500, 0, {})
    agent.reset(0)
    for day in range(days):
        up = agent.act(agents.Context(signals=signals, config=dict(config), day=day))
        decision = None
        if up is not None:
            config.update(up.overrides)
            decision = {"accepted": True, "appliedConfig": dict(up.overrides)}
        agent.update(agents.Outcome(reward(config), decision, day + 1))
    return agent


def test_bayes_opt_holds_its_recommendation_once_the_budget_is_spent():
    def reward(config):
        return -abs(np.log2(config["scanXp"] / 10) - 0.5)

    bo = drive_bayes_opt(agents.make("bayes_opt", period=1, n_init=3, budget=5, stop_loss=None, n_candidates=32),
                         30, reward)
    points = [tuple(u) for u in bo.X]
    assert len(set(points)) == 5 and set(points[5:]) <= set(points[:5])  # no new point after the budget
    best = max(range(5), key=lambda i: bo.y[i])
    assert points[-1] == points[best]


def test_bayes_opt_tries_its_initial_points_from_the_least_generous():
    bo = drive_bayes_opt(agents.make("bayes_opt", period=1, n_init=5, budget=5, stop_loss=None), 5, lambda c: 0.0)
    means = [float(np.mean(u)) for u in bo.X]
    assert means == sorted(means)


def test_bayes_opt_stop_loss_ends_a_losing_point():
    bo = agents.make("bayes_opt", period=7, n_init=3, budget=3, min_days=2)
    rng = np.random.default_rng(0)
    drive_bayes_opt(bo, 21, lambda c: -1.0 + 0.1 * rng.standard_normal())
    assert len(bo.y) >= 4  # every point loses against the control: no pull runs its 7 days
