"""Bandit agents (agents/bandits.py): what each strategy does on synthetic outcome streams, the known
answer on the bandit scenario, guardrails, and one determinism test over every scenario.

Known answer: on the ``bandit`` scenario (configs/scenarios/bandit.yaml) the preset ``rich`` is best
by construction (about +0.25 reward/day against -0.12 for the runner-up).  Horizon: 140 days
(with ``period`` 7, about 19 pulls of 5 arms); an agent has *settled* when the most frequent arm
of its last 5 pulls is ``rich``; it must do so in at least 7 of 10 seeds.
"""

from __future__ import annotations

import collections
import itertools

import numpy as np
import pytest

import agents
import agents.bandits  # registers the bandit agents
from arena_env.economy.env import EconomyEnv
from arena_env.economy.scenario import scenario_names
from arena_env.wrappers.agents import run_episode

BANDITS = ["epsilon_greedy", "ucb1", "thompson", "thompson_gaussian", "explore_then_exploit", "hedge"]
HORIZON = 140  # days of the known-answer episodes
BEST = "rich"


def play(name, scenario, seed, **env_kw):
    env = EconomyEnv(scenario, info_level="light", **env_kw)
    pols = {a: agents.make(name) for a in env.possible_agents}
    res = run_episode(env, pols, seed=seed)
    return res, pols


def test_every_bandit_runs_deterministically_across_the_scenarios():
    """The bandits' one determinism test: same seed, same rewards, decisions and pulls.  Each scenario
    is played by one bandit (in turn), so every bandit and every scenario is covered once at least."""
    for name, scenario in zip(itertools.cycle(BANDITS), scenario_names()):
        a, pa = play(name, scenario, 3, n_users=2000, max_days=30)
        b, pb = play(name, scenario, 3, n_users=2000, max_days=30)
        assert a == b, (name, scenario)  # identical rewards and decision records
        assert {k: p.pulls for k, p in pa.items()} == {k: p.pulls for k, p in pb.items()}, (name, scenario)
        assert a["days"] <= 30  # a completed experiment may end early
        assert any(p.pulls for p in pa.values()), (name, scenario)  # the agents finished at least one pull
        assert any(a["decisions"].values()), (name, scenario)


@pytest.mark.parametrize("name", BANDITS)
def test_settles_on_the_best_arm_of_the_bandit_scenario(name):
    settled = 0
    for seed in range(10):
        _, pols = play(name, "bandit", seed, n_agents=1, max_days=HORIZON)
        last = [arm for arm, _ in pols["variant_0"].pulls[-5:]]
        settled += collections.Counter(last).most_common(1)[0][0] == BEST
    assert settled >= 7, f"{name} settled on {BEST!r} in only {settled} of 10 seeds"


@pytest.mark.parametrize("scenario", ["bandit", "default"])
@pytest.mark.parametrize("name", BANDITS)
def test_never_spams_the_guardrails(name, scenario):
    res, pols = play(name, scenario, 5, n_users=2000, max_days=60,
                     guardrails={"update_interval_min": 2880, "delta_limit_pct": 30})
    recs = [d for ds in res["decisions"].values() for d in ds]
    gaps = [b["minute"] - a["minute"] for ds in res["decisions"].values() for a, b in itertools.pairwise(ds)]
    assert recs and 2880 in gaps  # the rate limit binds: a move to an arm waited for it
    assert not [d for d in recs if d.get("rejectionReason") in ("RATE_LIMITED", "CIRCUIT_BREAKER_ACTIVE")]
    assert all(p.pulls for p in pols.values())


def test_a_pull_measures_only_the_days_at_the_arm():
    from agents.bandits import ArmHold
    presets = {"a": {"scanXp": 10}, "b": {"scanXp": 30}}

    def ctx(day, x, can=True):
        return agents.Context(signals=None, config={"scanXp": x}, day=day, presets=presets,
                              next_allowed_update=None if can else 1e9)

    def accepted(x):
        return {"accepted": True, "appliedConfig": {"scanXp": x}}

    hold = ArmHold(period=2)
    assert hold.act(ctx(0, 10), lambda: 1).overrides == {"scanXp": 30}
    assert hold.record(agents.Outcome(100.0, accepted(20), 1)) is None      # clamped: not at the arm
    assert hold.act(ctx(1, 20, can=False), lambda: 0) is None               # rate limited: no proposal
    assert hold.record(agents.Outcome(100.0, None, 2)) is None
    assert hold.act(ctx(2, 20), lambda: 0).overrides == {"scanXp": 30}      # keeps requesting its arm
    assert hold.record(agents.Outcome(1.0, accepted(30), 3)) is None        # at the arm: day 1 of 2
    assert hold.act(ctx(3, 30), lambda: 0) is None                          # holds
    assert hold.record(agents.Outcome(3.0, None, 4)) == (1, 2.0)            # mean of the days at the arm
    assert hold.act(ctx(4, 30), lambda: 0).overrides == {"scanXp": 10}      # next pull


def test_hyperparameters_are_validated():
    for name, kw in [("epsilon_greedy", {"epsilon": 1.5}), ("ucb1", {"c": -1}), ("ucb1", {"scale": 0}),
                     ("thompson", {"prior": "poisson"}), ("explore_then_exploit", {"rounds": 0}),
                     ("hedge", {"eta": 0}), ("hedge", {"strategies": ["hold"]}), ("ucb1", {"period": 0}),
                     ("hedge", {"strategies": ["hedge"]}), ("ucb1", {"status_quo": "yes"}),
                     ("thompson_gaussian", {"stop_loss": float("inf")}), ("epsilon_greedy", {"order": "best"}),
                     ("ucb1", {"eliminate": float("nan")}), ("explore_then_exploit", {"warmup": 0.5})]:
        key = next(iter(kw))
        with pytest.raises(agents.AgentConfigError, match=f"^{name}: {key}: expected "):  # agent and key named
            agents.make(name, **kw)
    assert agents.make("thompson_gaussian").prior == "gaussian"
    assert agents.make("hedge", strategies=["ucb1", "explore_then_exploit"]).strategies == (
        "ucb1", "explore_then_exploit")


def test_no_presets_means_hold():
    pol = agents.make("ucb1")
    pol.reset(0)
    ctx = agents.Context(signals=None, config=dict(agents.DEFAULTS), day=0, presets={})
    assert pol.act(ctx) is None


# ------------------------------------------------------------------ synthetic outcome streams
# The tests below drive a bandit with synthetic contexts and outcomes, no environment: arm i is the
# defaults with scanXp 11 + 3i, an accepted request reaches its arm at once, and a day at arm i pays
# ``means[i]`` plus Gaussian noise.  With ``period=1`` every pull is one day.

def synthetic_presets(k):
    return {f"arm{i}": {**agents.DEFAULTS, "scanXp": 11 + 3 * i} for i in range(k)}


def drive(agent, means, pulls, noise=0.1, seed=0):
    """Play ``agent`` (``period=1``) until it has finished ``pulls`` pulls; returns the arm index of each pull."""
    rng = np.random.default_rng(1000 + seed)
    presets = synthetic_presets(len(means))
    arms = list(presets.values())
    config = dict(agents.DEFAULTS)
    signals = agents.Signals(100, 50, 80, 500, 0, {})
    agent.reset(seed)
    day = 0
    while len(agent.pulls) < pulls:
        assert day < 10 * pulls, "the bandit stopped pulling"
        up = agent.act(agents.Context(signals=signals, config=dict(config), day=day, presets=presets))
        decision = None
        if up is not None:
            assert up.overrides in arms  # a bandit only ever requests one of its arms
            config.update(up.overrides)
            decision = {"accepted": True, "appliedConfig": dict(up.overrides)}
        at = arms.index(config) if config in arms else None
        day += 1
        agent.update(agents.Outcome((0.0 if at is None else means[at]) + noise * rng.standard_normal(),
                                    decision, day))
    return [int(arm[3:]) for arm, _ in agent.pulls]


MEANS = [-0.5, -0.2, 0.6, -0.3]  # arm 2 is clearly best, and the only one that beats the control
BEST_ARM = 2


@pytest.mark.parametrize("name", BANDITS)
def test_pulls_the_clearly_best_arm_most(name):
    for seed in range(5):
        pulls = drive(agents.make(name, period=1), MEANS, 60, noise=0.3, seed=seed)
        counts = collections.Counter(pulls)
        assert counts.most_common(1)[0][0] == BEST_ARM, (seed, counts)
        assert pulls[-20:].count(BEST_ARM) >= 15, (seed, pulls[-20:])


@pytest.mark.parametrize("name", [b for b in BANDITS if b != "thompson"])  # Beta Thompson: its own test
def test_tries_every_arm_before_repeating_one(name):
    for seed in range(5):
        pulls = drive(agents.make(name, period=1), [0.0, 0.1, 0.2, 0.3, 0.4], 5, noise=0.0, seed=seed)
        assert sorted(pulls) == [0, 1, 2, 3, 4], (seed, pulls)


def test_ucb1_bonus_revisits_the_arms_that_look_worse_and_c_0_does_not():
    greedy = drive(agents.make("ucb1", c=0.0, period=1), MEANS, 60, noise=0.0)
    assert sorted(greedy[:4]) == [0, 1, 2, 3] and set(greedy[4:]) == {BEST_ARM}
    bonus = collections.Counter(drive(agents.make("ucb1", c=1.0, scale=1.0, period=1), MEANS, 60, noise=0.0))
    assert bonus.most_common(1)[0][0] == BEST_ARM and min(bonus.values()) >= 2, bonus


def test_epsilon_greedy_exploits_at_epsilon_0_and_explores_uniformly_at_1():
    for seed in range(3):
        greedy = drive(agents.make("epsilon_greedy", epsilon=0.0, period=1), MEANS, 40, noise=0.0, seed=seed)
        assert set(greedy[4:]) == {BEST_ARM}, greedy
        explorer = collections.Counter(drive(agents.make("epsilon_greedy", epsilon=1.0, period=1, eliminate=None), MEANS, 200,
                                             noise=0.0, seed=seed))
        assert all(0.15 < explorer[a] / 200 < 0.35 for a in range(4)), explorer


def test_explore_then_exploit_commits_after_its_rounds():
    for seed in range(3):
        pol = agents.make("explore_then_exploit", rounds=3, period=1, eliminate=None)
        pulls = drive(pol, MEANS, 30, noise=0.1, seed=seed)
        for r in range(3):  # round-robin: every arm once per round
            assert sorted(pulls[4 * r:4 * r + 4]) == [0, 1, 2, 3], (seed, pulls[:12])
        explored = collections.defaultdict(list)
        for arm, reward in pol.pulls[:12]:
            explored[arm].append(reward)
        committed = max(explored, key=lambda a: np.mean(explored[a]))
        assert committed == f"arm{BEST_ARM}" and set(pulls[12:]) == {BEST_ARM}, (seed, pulls)


class Contrarian(agents.bandits.EpsilonGreedy):
    """A deliberately bad strategy: after one pull of each arm, always the arm with the lowest mean."""

    def select(self):
        u = self.untried()
        return u if u is not None else int(np.argmin(np.where(self.n > 0, self.means, np.inf)))


def test_hedge_moves_its_weight_to_the_strategy_that_earns_more():
    for seed in range(3):
        hedge = agents.make("hedge", strategies=["ucb1", "epsilon_greedy"], eta=0.3, gamma=0.1, period=1)
        hedge.subs[1] = Contrarian(period=1)  # follow it and you pull the worst arm
        pulls = drive(hedge, MEANS, 60, noise=0.1, seed=seed)
        p = hedge.probabilities()
        assert hedge.log_w[0] > hedge.log_w[1] and p[0] > 0.9, (seed, hedge.log_w, p)
        assert p[1] >= hedge.gamma / 2 - 1e-12  # the uniform share keeps the loser alive
        assert pulls[-20:].count(BEST_ARM) >= 15, (seed, pulls)


def test_thompson_threshold_decides_what_counts_as_a_success():
    """Beta Thompson sees only whether a pull beat ``threshold``: two arms that both beat 0 look alike,
    while a threshold between them singles out the better one."""
    share = {}
    for threshold in (0.0, 0.5):
        share[threshold] = np.mean([drive(agents.make("thompson", threshold=threshold, period=1, eliminate=None), [0.2, 0.8], 100,
                                          noise=0.05, seed=s).count(1) / 100 for s in range(5)])
    assert share[0.5] > 0.95 and share[0.0] < 0.8, share


def test_a_pull_that_never_reaches_its_arm_is_dropped_after_patience():
    pol = agents.make("ucb1", period=2, patience=3)
    pol.reset(0)
    presets = synthetic_presets(3)
    ctx = agents.Context(signals=None, config=dict(agents.DEFAULTS), day=0, presets=presets)
    first = pol.act(ctx)
    assert first is not None and pol.current_arm is not None
    for day in range(1, 6):  # every request rejected: the config never reaches the arm
        pol.update(agents.Outcome(5.0, {"accepted": False, "rejectionReason": "CIRCUIT_BREAKER_ACTIVE"}, day))
        assert pol.current_arm is not None, day
        assert pol.act(agents.Context(signals=None, config=dict(agents.DEFAULTS), day=day, presets=presets)) == first
    pol.update(agents.Outcome(5.0, None, 6))  # patience x period = 6 days: the pull ends, unobserved
    assert pol.current_arm is None and pol.pulls == [] and pol.n.sum() == 0
    assert pol.act(agents.Context(signals=None, config=dict(agents.DEFAULTS), day=6, presets=presets)) is not None
