"""Controllers (agents.controllers): what each does on synthetic contexts, known answers in full episodes,
safety, guardrail-respecting proposals, and one determinism test over every scenario."""

from __future__ import annotations

import itertools
from itertools import pairwise

import numpy as np
import pytest

import agents
import agents.controllers
from agents import Update
from agents.controllers import Safety, free_room, move_update, round_half_away, step_units
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


def test_every_controller_runs_deterministically_across_the_scenarios():
    """The controllers' one determinism test: same seed, same episode.  Each scenario is played by one
    controller (in turn), so every controller and every scenario is covered once at least."""
    for name, scenario in zip(itertools.cycle(sorted(CONTROLLERS)), scenario_names()):
        a = play(scenario, name, 3)
        assert a["days"] == 30, (name, scenario)
        assert a == play(scenario, name, 3), (name, scenario)


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
                          ("safety", {"max_fraction": 0}, "max_fraction"), ("rule", {"every": 2.7}, "every"),
                          ("momentum", {"params": "scanXp"}, "params"), ("pid", {"kd": float("inf")}, "kd"),
                          ("multi_metric", {"weights": {"RETENTION_RATE": "high"}}, "weights.RETENTION_RATE"),
                          ("multi_metric", {"min_confidence": "sure"}, "min_confidence"),
                          ("safety", {"cooldown": True}, "cooldown"),
                          ("safety", {"inner_params": [1]}, "inner_params")]:
        with pytest.raises(agents.AgentConfigError, match=f"^{name}: {key}: expected "):  # agent and key named
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


# ------------------------------------------------------------------ synthetic contexts
def signals_with(day=0, confidence="high", **metrics):
    ms = {k: agents.Metric(v, 0.1, 100, confidence) for k, v in metrics.items()}
    return agents.Signals(100, 50, 80, 500, day, ms)


def ctx_at(day=0, config=None, confidence="high", pct=50.0, can_update=True, **metrics):
    return agents.Context(signals=signals_with(day, confidence, **metrics), config=dict(config or agents.DEFAULTS),
                          day=day, delta_limit_pct=pct, minute=day * 1440.0,
                          next_allowed_update=None if can_update else day * 1440.0 + 60)


QUIET = {"SCAN_FREQUENCY": 1.8, "FEEDBACK_QUALITY": 0.3, "RETENTION_RATE": 0.5, "XP_VELOCITY": 30.0}


def test_pid_moves_its_parameter_toward_the_setpoint_and_harder_for_a_larger_error():
    moves = {}
    for value in (0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0):
        pid = agents.make("pid", setpoint=2.0)
        up = pid.act(ctx_at(SCAN_FREQUENCY=value))
        moves[value] = 0 if up is None else up.overrides["scanXp"] - 10
        assert up is None or set(up.overrides) == {"scanXp"}
    assert moves[2.0] == 0                                           # at the setpoint: hold
    assert moves[0.0] > moves[1.0] > moves[1.5] > 0                  # below: raise scanXp, more when further off
    assert 0 > moves[2.5] > moves[3.0] >= moves[4.0]                 # above: lower it
    assert moves[0.0] == step_units(10, 50.0) and moves[4.0] == -step_units(10, 50.0)  # clipped to the delta limit


def test_pid_holds_without_a_confident_metric_or_when_no_update_could_be_accepted():
    pid = agents.make("pid", setpoint=2.0)
    assert pid.act(ctx_at(SCAN_FREQUENCY=1.0, confidence="low")) is None
    assert pid.act(ctx_at(FEEDBACK_QUALITY=0.1)) is None             # not its metric
    assert pid.act(ctx_at(SCAN_FREQUENCY=1.0, can_update=False)) is None
    assert pid.act(ctx_at(SCAN_FREQUENCY=1.0)) is not None


def test_pid_integral_does_not_wind_up_while_the_output_saturates():
    pid = agents.make("pid", setpoint=2.0, integral_limit=0.25)
    config = dict(agents.DEFAULTS)
    for day in range(8):  # far below the setpoint: every move is clipped to the delta limit
        up = pid.act(ctx_at(day, config, SCAN_FREQUENCY=0.0))
        cur, edge = config["scanXp"], round_half_away(config["scanXp"] + step_units(config["scanXp"], 50.0))
        assert edge - 1 <= up.overrides["scanXp"] <= edge, (cur, up.overrides)  # a full step (of its own level)
        config.update(up.overrides)
    assert pid.integral == 0.0  # frozen while saturated
    pid.reset()
    for _ in range(6):  # a small error does not saturate: the integral accumulates, up to its limit
        pid.act(ctx_at(SCAN_FREQUENCY=1.9))
    assert pid.integral == pytest.approx(0.25)


def test_rule_raises_the_lever_of_each_low_metric_and_trims_when_everything_is_high():
    def act(**metrics):
        return agents.make("rule").act(ctx_at(**{**QUIET, **metrics}))

    assert act() is None
    assert act(SCAN_FREQUENCY=1.0).overrides == {"scanXp": 13}                      # 10 + 0.5 * 5 = 12.5 -> 13
    assert act(FEEDBACK_QUALITY=0.1).overrides == {"feedbackXp": 19}                # 15 + 0.5 * 7.5 = 18.75 -> 19
    assert act(SCAN_FREQUENCY=1.0, FEEDBACK_QUALITY=0.1).overrides == {"scanXp": 13, "feedbackXp": 19}
    assert act(RETENTION_RATE=0.9, XP_VELOCITY=80.0).overrides == {"scanXp": 8, "feedbackXp": 11}  # trim
    assert act(SCAN_FREQUENCY=1.0, RETENTION_RATE=0.9, XP_VELOCITY=80.0).overrides == {"scanXp": 13}  # lows first
    rule = agents.make("rule")
    assert rule.act(ctx_at(**{**QUIET, "SCAN_FREQUENCY": 1.0}, confidence="low")) is None  # not confident enough
    assert rule.act(ctx_at(**{**QUIET, "SCAN_FREQUENCY": 1.0}, can_update=False)) is None


def test_rule_waits_every_days_between_moves_but_retries_after_a_rejection():
    rule = agents.make("rule", every=3)
    low = {**QUIET, "SCAN_FREQUENCY": 1.0}
    assert rule.act(ctx_at(0, **low)) is not None
    rule.update(agents.Outcome(0.0, {"accepted": True, "appliedConfig": {"scanXp": 13}}, 1))
    assert [rule.act(ctx_at(d, **low)) for d in (1, 2)] == [None, None]
    assert rule.act(ctx_at(3, **low)) is not None
    rule.update(agents.Outcome(0.0, {"accepted": False, "rejectionReason": "CIRCUIT_BREAKER_ACTIVE"}, 4))
    assert rule.act(ctx_at(4, **low)) is not None  # a rejected move changed nothing: free to retry at once


def test_safety_caps_every_move_at_max_fraction_and_strictly_inside_the_full_delta():
    def dampened(max_fraction, value, target, pct=50.0):
        class Ask:
            def reset(self, seed=None):
                pass

            def act(self, context):
                return Update({"scanXp": target})

            def update(self, outcome):
                pass

        up = Safety(Ask(), max_fraction=max_fraction).act(ctx_at(config={**agents.DEFAULTS, "scanXp": value},
                                                                  pct=pct))
        return None if up is None else up.overrides["scanXp"]

    assert dampened(0.8, 10, 20) == 14 and dampened(0.4, 10, 20) == 12      # full delta would be 15
    assert dampened(0.8, 10, 0) == 6 and dampened(1.0, 10, 0) == 6          # full delta down would be 5
    assert dampened(0.8, 100, 1000) == 140 and dampened(1.0, 100, 1000) == 149
    assert dampened(0.8, 10, 12) == 12                                      # small moves pass unchanged
    assert dampened(0.8, 100, 1000, pct=20.0) == 116                        # 0.8 x 20 % of 100
    assert dampened(0.8, 1, 5) is None                                      # any move from 1 is a full-delta move


def test_safety_holds_after_a_run_of_full_delta_updates_and_after_an_anomaly():
    s = Safety(Greedy(), anomaly_run=2, anomaly_cooldown=3)
    s.reset(0)
    config = dict(agents.DEFAULTS)
    for day in (0, 1):  # the guardrails applied full-delta values (10 -> 15 -> 23) twice in a row
        assert s.act(ctx_at(day, config)) is not None
        full = round_half_away(config["scanXp"] * 1.5)
        config["scanXp"] = full
        s.update(agents.Outcome(0.0, {"accepted": True, "appliedConfig": {"scanXp": full}, "anomaly": False},
                                day + 1))
    assert [s.act(ctx_at(d, config)) for d in (2, 3, 4)] == [None] * 3   # anomaly cooldown of 3 days
    assert s.act(ctx_at(5, config)) is not None
    s.update(agents.Outcome(0.0, {"accepted": True, "appliedConfig": {"scanXp": config["scanXp"] + 1},
                                  "anomaly": True}, 6))                  # the guardrails flagged an anomaly
    assert [s.act(ctx_at(d, config)) for d in (6, 7, 8)] == [None] * 3
    assert s.act(ctx_at(9, config)) is not None


@pytest.mark.parametrize("pct", [50.0, 30.0])
@pytest.mark.parametrize("name", sorted(CONTROLLERS))
def test_controllers_propose_only_inside_the_delta_window_and_only_when_an_update_could_be_accepted(
        name, pct):
    """Random (seeded) metrics for 60 days, one day in four rate limited (the PID once asked 11 from 8
    at a 30 % limit: its move was clipped around its own real-valued level, not the current value)."""
    rng = np.random.default_rng(7)
    pol = agents.make(name, **CONTROLLERS[name])
    pol.reset(3)
    config = dict(agents.DEFAULTS)
    proposals = 0
    for day in range(60):
        can = day % 4 != 3
        ctx = ctx_at(day, config, pct=pct, can_update=can, SCAN_FREQUENCY=rng.uniform(0.5, 3.0),
                     RETENTION_RATE=rng.uniform(0.6, 0.95), FEEDBACK_QUALITY=rng.uniform(0.05, 0.35),
                     XP_VELOCITY=rng.uniform(20, 120), STREAK_LENGTH=rng.uniform(1, 8),
                     MISSION_COMPLETION=rng.uniform(0.1, 0.5))
        up = pol.act(ctx)
        decision = None
        if up is not None:
            assert can, f"{name} proposed on day {day} although no update could be accepted"
            assert up.overrides and set(up.overrides) <= set(agents.PARAM_NAMES)
            for k, v in up.overrides.items():
                step = step_units(config[k], pct)
                lo, hi = round_half_away(config[k] - step), round_half_away(config[k] + step)
                assert lo <= v <= hi, (day, k, config[k], v)
                if name == "safety":
                    assert config[k] - step < v < config[k] + step  # never a full-delta move
            config.update(up.overrides)
            decision = {"accepted": True, "appliedConfig": dict(up.overrides), "anomaly": False}
            proposals += 1
        pol.update(agents.Outcome(float(rng.normal()), decision, day + 1))
    assert proposals >= 5, f"{name} proposed only {proposals} times in 60 days"
