"""Controllers (agents.controllers): full episodes on every scenario, known answers, safety."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

import agents
import agents.controllers
from agents import Update
from agents.controllers import Safety, free_room, move_update, step_units
from arena_env.economy.env import EconomyEnv
from arena_env.economy.scenario import scenario_names
from arena_env.wrappers.agents import run_episode

CONTROLLERS = {
    "rule": {},
    "momentum": {"every": 1},
    "multi_metric": {},
    "pid": {},
    "safety": {"inner": "random", "inner_params": {"every": 1, "scale": 1.0}},
}


def play(scenario, name, seed, **env_kw):
    env = EconomyEnv(scenario, **{"n_users": 2000, "max_days": 30, **env_kw})
    pol = {a: agents.make(name, **CONTROLLERS[name]) for a in env.possible_agents}
    return run_episode(env, pol, seed=seed)


@pytest.mark.parametrize("scenario", scenario_names())
@pytest.mark.parametrize("name", sorted(CONTROLLERS))
def test_every_controller_runs_every_scenario_deterministically(name, scenario):
    a = play(scenario, name, 3)
    assert a["days"] == 30
    assert a == play(scenario, name, 3)


@pytest.mark.parametrize("name", sorted(CONTROLLERS))
def test_no_rate_limited_rejections_when_the_rate_limit_binds(name):
    res = play("tiny", name, 1, guardrails={"update_interval_min": 2880})
    recs = [d for ds in res["decisions"].values() for d in ds]
    assert recs, f"{name} never proposed"
    assert all(d["accepted"] for d in recs)


def test_registered_and_validated():
    assert set(CONTROLLERS) <= set(agents.available())
    for name, kw, key in [("rule", {"step": 0}, "step"), ("momentum", {"params": ["scanXP"]}, "params"),
                          ("multi_metric", {"targets": {"SCANS": 1.0}}, "targets"),
                          ("pid", {"kp": -1}, "kp"), ("pid", {"metric": "X"}, "metric"),
                          ("safety", {"max_fraction": 0}, "max_fraction")]:
        with pytest.raises(ValueError, match=key):
            agents.make(name, **kw)
    with pytest.raises(agents.AgentConfigError, match="unknown agent"):
        agents.make("safety", inner="nope")


class Trace:
    """Wraps an agent and records (day, scanXp, scan frequency) at every decision."""

    def __init__(self, inner):
        self.inner, self.trace = inner, []

    def reset(self, seed=None):
        self.inner.reset(seed)

    def act(self, context):
        self.trace.append((context.day, context.config["scanXp"], context.signals.metrics["SCAN_FREQUENCY"].value))
        return self.inner.act(context)

    def update(self, outcome):
        self.inner.update(outcome)


# PID known answer: on `tiny` (2000 users) scan frequency rises monotonically with scanXp; from
# scanXp 10 (scan frequency about 1.7-1.9) the PID reaches a setpoint above (2.3) or below (1.3)
# and holds it: the mean over days 20-29 is within 10 % of the setpoint.
PID_HORIZON, PID_TOLERANCE = 20, 0.10


@pytest.mark.parametrize("setpoint, direction", [(2.3, 1), (1.3, -1)])
@pytest.mark.parametrize("seed", [0, 1])
def test_pid_tracks_a_setpoint_from_both_sides(setpoint, direction, seed):
    pid = Trace(agents.make("pid", setpoint=setpoint))
    hold = Trace(agents.make("hold"))
    run_episode(EconomyEnv("tiny", n_users=2000, max_days=30), {"variant_0": pid, "variant_1": hold}, seed=seed)
    late = [v for d, _, v in pid.trace if d >= PID_HORIZON]
    held = [v for d, _, v in hold.trace if d >= PID_HORIZON]
    assert abs(np.mean(late) / setpoint - 1) < PID_TOLERANCE
    assert direction * (np.mean(held) - setpoint) < 0  # the setpoint is really above / below the hold
    assert direction * (pid.trace[-1][1] - 10) > 0     # by moving scanXp the right way


def test_rule_raises_scan_xp_when_scans_are_low():
    low = Trace(agents.make("rule", scan_low=5.0, every=1))
    high = Trace(agents.make("rule", scan_low=0.1, feedback_low=0.0, retention_high=1.0))
    run_episode(EconomyEnv("tiny", max_days=10), {"variant_0": low, "variant_1": high}, seed=0)
    assert low.trace[-1][1] > 10 and [x for _, x, _ in low.trace] == sorted(x for _, x, _ in low.trace)
    assert high.trace[-1][1] == 10


def test_rule_trims_when_retention_and_xp_velocity_are_high():
    trim = Trace(agents.make("rule", scan_low=0.0, feedback_low=0.0, retention_high=0.0, xp_velocity_high=0.0))
    run_episode(EconomyEnv("tiny", max_days=10), {"variant_0": trim}, seed=0)
    assert trim.trace[-1][1] < 10


class Greedy:
    """Always asks for +100 % of scanXp (clamped to a full-delta move every time)."""

    def reset(self, seed=None):
        pass

    def act(self, context):
        return Update({"scanXp": 2 * context.config["scanXp"]}) if context.can_update else None

    def update(self, outcome):
        pass


@pytest.mark.parametrize("inner", [Greedy, lambda: agents.make("random", every=1, scale=1.0, n_params=10)])
def test_safety_prevents_the_anomaly_flag(inner):
    env = EconomyEnv("tiny", max_days=20)
    res = run_episode(env, {"variant_0": inner(), "variant_1": Safety(inner())}, seed=5)
    raw, safe = res["decisions"]["variant_0"], res["decisions"]["variant_1"]
    if isinstance(inner, type):
        assert any(d["anomaly"] for d in raw)
    assert safe and all(d["accepted"] and not d["anomaly"] for d in safe)


def test_safety_moves_but_never_at_full_delta():
    s = Safety(Greedy(), max_fraction=0.8)
    trace = Trace(s)
    res = run_episode(EconomyEnv("tiny", max_days=15), {"variant_0": trace}, seed=0)
    xs = [x for _, x, _ in trace.trace]
    assert xs[-1] > 10 and not any(d["anomaly"] for d in res["decisions"]["variant_0"])
    assert all(b - a < step_units(a, 50.0) for a, b in pairwise(xs))


class Rejected:
    """Proposes every day, ignoring the rate limit; records the days it was asked."""

    def __init__(self):
        self.asked = []

    def reset(self, seed=None):
        self.asked = []

    def act(self, context):
        self.asked.append(context.day)
        return Update({"feedbackXp": context.config["feedbackXp"] + 1})

    def update(self, outcome):
        pass


def test_safety_cools_down_after_a_rejection_and_forwards():
    inner = Rejected()
    s = Safety(inner, cooldown=3, anomaly_cooldown=2)
    s.reset(1)
    base = {"signals": agents.Signals(0, 0, 0, 0, 0, {}), "config": dict(agents.DEFAULTS)}
    assert s.act(agents.Context(day=0, **base)).overrides == {"feedbackXp": 16}
    s.update(agents.Outcome(0.0, {"accepted": False, "rejectionReason": "CIRCUIT_BREAKER_ACTIVE"}, 1))
    assert [s.act(agents.Context(day=d, **base)) for d in (1, 2, 3)] == [None] * 3
    assert s.act(agents.Context(day=4, **base)) is not None and inner.asked == [0, 4]
    s.update(agents.Outcome(0.0, {"accepted": True, "appliedConfig": {"feedbackXp": 16}, "anomaly": False}, 5))
    assert s.act(agents.Context(day=5, anomaly=True, **base)) is None  # anomaly cooldown
    assert s.act(agents.Context(day=6, **base)) is None
    assert s.act(agents.Context(day=7, **base)) is not None


def test_helpers():
    ctx = agents.Context(signals=agents.Signals(0, 0, 0, 0, 0, {}), config=dict(agents.DEFAULTS), day=0)
    assert step_units(10, 50) == 5 and step_units(1, 50) == 1
    assert free_room(10, 50) == (4, 4) and free_room(1, 50) == (0, 0)
    assert move_update(ctx, {"scanXp": 0.5, "feedbackXp": 0.0}).overrides == {"scanXp": 13}  # 10 + 2.5 -> 13
    assert move_update(ctx, {"scanXp": 2.0}).overrides == {"scanXp": 15}
    assert move_update(ctx, {"feedbackXp": 0.01}) is None


def ctx_with(day=0, **metrics):
    ms = {k: agents.Metric(v, 0.1, 100, "high") for k, v in metrics.items()}
    return agents.Context(signals=agents.Signals(100, 50, 80, 500, day, ms), config=dict(agents.DEFAULTS), day=day)


def test_momentum_keeps_a_direction_while_the_reward_improves_and_reverses_when_it_worsens():
    m = agents.make("momentum", params=["scanXp"], every=1, step=0.4)
    m.reset(0)
    moves = []
    for day, reward in enumerate([1.0, 1.0, 0.5, 0.2, 0.3]):  # the reward of the day after each move
        moves.append(m.act(ctx_with(day)).overrides["scanXp"] - 10)
        m.update(agents.Outcome(reward, {"accepted": True}, day + 1))
    # each move is judged on the day after it against the move before: up, up, up (1.0 -> 1.0, no
    # worse), down (1.0 -> 0.5 worse), up (0.5 -> 0.2 worse again)
    assert moves == [2, 2, 2, -2, 2]


def test_multi_metric_moves_the_most_off_group():
    mm = agents.make("multi_metric")
    up = mm.act(ctx_with(SCAN_FREQUENCY=1.8, RETENTION_RATE=0.85, FEEDBACK_QUALITY=0.1, XP_VELOCITY=55.0))
    assert set(up.overrides) == {"feedbackXp", "photoXp"} and up.overrides["feedbackXp"] > 15
    mm.reset(0)
    down = mm.act(ctx_with(SCAN_FREQUENCY=1.8, RETENTION_RATE=0.85, FEEDBACK_QUALITY=0.22, XP_VELOCITY=200.0))
    assert down.overrides["scanXp"] < 10 and "feedbackXp" in down.overrides
    mm.reset(0)
    assert mm.act(ctx_with(SCAN_FREQUENCY=1.8, RETENTION_RATE=0.85, FEEDBACK_QUALITY=0.22)) is None  # healthy
    assert mm.act(ctx_with()) is None  # nothing confident: hold
