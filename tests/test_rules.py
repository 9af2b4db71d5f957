"""The guardrail arithmetic of ``agents.rules``: written once, used everywhere, log-symmetric actions.

Median tests: a uniformly random continuous action is a random walk of every parameter.  Under the
log-symmetric mapping the walk has no drift in ``log(value)`` (``a`` and ``-a`` are reciprocal
factors), so the median of many independent walks stays at the starting value; the old additive
mapping ``current + a * delta`` has ``E[log(1 + a * p)] < 0`` (-0.045 per step at 50%) and shrinks the
median geometrically.  The tolerance of the median checks is 12% of the default or one unit,
whichever is larger: the sample median of N walks has a standard error of about
``1.25 * sigma * sqrt(T) / sqrt(N)`` in log units, with ``sigma = log(1 + p) / sqrt(3)`` per step
(3.6% for N = 2000 walks of T = 30 steps at 50%), the median of integers moves in whole units (one
unit is 20% of a default of 5), and the hard bounds (0 below, 5-20x the default above) fold back a
few percent of the walks.  Each (pct, T) pair keeps the spread ``sigma * sqrt(T)`` near 1.3 log
units, so the bounds stay far from the median.  Seeds are fixed: the checks are deterministic.
"""

from __future__ import annotations

import inspect
import math
import re
from pathlib import Path

import numpy as np
import pytest

import agents
from agents import controllers, learners, rules
from agents.baselines import Random
from agents.protocol import Context, Signals, Update
from arena_env.economy import guardrail_kernels as kernels
from arena_env.economy import guardrail_ref as reference
from arena_env.economy.env import EconomyEnv
from arena_env.economy.params import ABSOLUTE_BOUNDS, DEFAULT_VECTOR, PARAM_INDEX, PARAM_NAMES
from arena_env.wrappers.agents import action_for, run_episode

ROOT = Path(__file__).resolve().parents[1]
LO = np.array([ABSOLUTE_BOUNDS[k][0] for k in PARAM_NAMES], dtype=np.int64)
HI = np.array([ABSOLUTE_BOUNDS[k][1] for k in PARAM_NAMES], dtype=np.int64)
COMPOUNDING = [10, 15, 23, 35, 53]  # the protocol's +50% steps from scanXp 10, rounded half away from zero
ROUNDERS = pytest.mark.parametrize("rnd", [rules.round_half_away, kernels.round_half_away, reference.round_half_away],
                                   ids=["python", "numba", "numpy"])


def signals() -> Signals:
    return Signals(enrolled=0, active_today=0, active_7d=0, total_scans=0, experiment_days=0, metrics={})


def context(config: dict, pct: float = 50.0, day: int = 0) -> Context:
    return Context(signals=signals(), config=dict(config), day=day, delta_limit_pct=pct)


def within_tolerance(median: float, default: float) -> bool:
    """The tolerance of the module docstring: 12% of the default or one unit, whichever is larger."""
    return abs(median - default) <= max(0.12 * default, 1.0)


# ------------------------------------------------------------------------------------------ rounding


@ROUNDERS
def test_round_half_away_half_cases(rnd):
    cases = {2.5: 3.0, -2.5: -3.0, 22.5: 23.0, 34.5: 35.0, 52.5: 53.0, 0.5: 1.0, -0.5: -1.0, 1.5: 2.0,
             2.4999999999999996: 2.0, 0.49999999999999994: 0.0, -0.49999999999999994: 0.0, 0.0: 0.0,
             7.0: 7.0, -7.0: -7.0, 1e300: 1e300, -1e300: -1e300, 2.0**52 + 1: 2.0**52 + 1}
    for x, want in cases.items():
        got = float(rnd(x))
        assert got == want, (x, got)
    assert round(22.5) == 22 and round(2.5) == 2  # Python's round is half-to-even: never for parameters


def test_round_half_away_python_and_numba_agree_everywhere():
    rng = np.random.default_rng(5)
    xs = np.concatenate([rng.uniform(-300, 300, 2000), np.round(rng.uniform(-300, 300, 500)) + 0.5,
                         np.nextafter(np.arange(-20, 20) + 0.5, 0.0), np.nextafter(np.arange(-20, 20) + 0.5, 50)])
    py = np.array([rules.round_half_away(float(x)) for x in xs])
    np.testing.assert_array_equal(py, [kernels.round_half_away(float(x)) for x in xs])
    np.testing.assert_array_equal(py, reference.round_half_away(xs))
    np.testing.assert_array_equal(np.abs(py), np.floor(np.abs(xs)) + (np.abs(xs) % 1.0 >= 0.5))


def test_delta_window_has_a_floor_of_one_unit():
    for rule in (rules.delta_window, kernels.delta_window, controllers.step_units):
        assert rule(0, 50.0) == 1.0 and rule(1, 50.0) == 1.0 and rule(1, 5.0) == 1.0 and rule(0, 100.0) == 1.0
        assert rule(2, 50.0) == 1.0 and rule(10, 50.0) == 5.0 and rule(40, 5.0) == 2.0
        assert rule(50, 55.0) == 27.5  # computed as current * pct / 100 (50 * 0.55 is not 27.5)


# ----------------------------------------------------------------------------- one implementation


def test_the_kernel_compiles_the_rules_and_the_twin_calls_them():
    assert kernels.round_half_away.py_func is rules.round_half_away
    assert kernels.delta_window.py_func is rules.delta_window
    assert reference.round_half_away.pyfunc is rules.round_half_away
    twin = inspect.getsource(reference.clamp_updates)
    assert "rules.round_half_away(" in twin and "rules.delta_window(" in twin
    kernel = inspect.getsource(kernels.clamp_updates.py_func)
    assert "delta_window(" in kernel and "round_half_away(" in kernel


def test_no_second_copy_of_the_rules():
    """Rounding and the delta window are written only in agents/rules.py: no ``floor(abs(x) + 0.5)``
    and no ``max(current * pct / 100, 1)`` elsewhere, and no Python ``round`` on an agent's targets."""
    rule_copies = [r"floor\((np\.)?abs\(", r"max(imum)?\(.*pct\)? / 100(\.0)?, 1(\.0)?\)"]
    files = {path: rule_copies + [r"\bint\(round\("] for path in sorted((ROOT / "agents").glob("*.py"))}
    for name in ("wrappers/agents.py", "economy/env.py", "economy/guardrails.py", "economy/guardrail_kernels.py",
                 "economy/guardrail_ref.py", "economy/population.py", "economy/population_ref.py"):
        files[ROOT / "arena_env" / name] = rule_copies
    for path, banned in files.items():
        if path.name == "rules.py" and path.parent.name == "agents":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            for pattern in banned:
                assert not re.search(pattern, code), f"{path.relative_to(ROOT)}:{n}: {line.strip()}"


def test_the_requestable_values_are_the_envs():
    """An update may request a value iff the env can carry it: agents.rules.requestable (parse_answer uses it)
    agrees with action_for, which refuses what is not finite or beyond float32."""
    from agents.learners import parse_answer
    from arena_env.wrappers.agents import AgentError

    env = EconomyEnv("tiny")
    env.reset(seed=0)
    assert rules.FLOAT32_MAX == float(np.finfo(np.float32).max)
    for value in (12.0, 1e30, rules.FLOAT32_MAX, 1e39, math.inf, math.nan):
        try:
            action_for(env, "variant_0", Update({"scanXp": value}))
            env_ok = True
        except AgentError:
            env_ok = False
        assert rules.requestable(value) is env_ok, value
    assert parse_answer('{"overrides": {"scanXp": 1e30}}').overrides == {"scanXp": int(1e30)}
    with pytest.raises(ValueError, match="scanXp must be a non-negative integer"):
        parse_answer('{"overrides": {"scanXp": 1e39}}')


def test_agents_do_not_import_the_environment():
    for path in sorted((ROOT / "agents").glob("*.py")):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+arena_env", text, re.M), path.name


# -------------------------------------------------------------------------------------- compounding


def test_compounding_through_the_agents_helpers():
    for move in (lambda ctx: learners.fractions_to_update(ctx, np.eye(10)[0]),
                 lambda ctx: controllers.move_update(ctx, {"scanXp": 1.0})):
        config, values = dict(agents.DEFAULTS), [agents.DEFAULTS["scanXp"]]
        for _ in range(4):
            config.update(move(context(config)).overrides)
            values.append(config["scanXp"])
        assert values == COMPOUNDING


def clamp(cur, req, has=None, pct=50.0, lo=LO, hi=HI):
    cur = np.asarray(cur, np.int64)
    out = np.empty_like(cur), np.empty(cur.shape, bool), np.empty(cur.shape, bool)
    has = np.ones(cur.shape, bool) if has is None else has
    kernels.clamp_updates(cur, np.asarray(req, np.float64), has, pct, lo, hi, *out)
    return out[0]


def scan_xp_env(action_mode="continuous", **kw):
    env = EconomyEnv("tiny", n_users=40, n_agents=1, max_days=10, info_level="light", action_mode=action_mode, **kw)
    env.reset(seed=3)
    return env


@pytest.mark.parametrize("how", ["continuous", "absolute", "agent update"])
def test_compounding_through_the_env(how):
    env = scan_xp_env("absolute" if how == "absolute" else "continuous")
    values = [int(env.config[1, 0])]
    for _ in range(4):
        if how == "continuous":
            act = np.eye(10, dtype=np.float32)[0]
        elif how == "absolute":
            act = env.config[1].astype(np.float32)
            act[0] = 1000.0
        else:
            act = action_for(env, "variant_0", Update({"scanXp": 1000}))
            assert act[0] == 1.0 and not act[1:].any()
        env.step({"variant_0": act})
        values.append(int(env.config[1, 0]))
    assert values == COMPOUNDING
    assert env.decisions[1]["appliedConfig"] == {"scanXp": 23}


def test_the_one_unit_floor_at_0_and_1():
    # rules: below current * p = 1 a continuous action moves one unit, so 0 and 1 can move
    assert rules.continuous_target(0, 1.0, 50.0) == 1.0 and rules.continuous_target(0, -1.0, 50.0) == -1.0
    assert rules.continuous_target(1, 1.0, 50.0) == 2.0 and rules.continuous_target(1, -1.0, 50.0) == 0.0
    assert rules.continuous_target(1, 0.5, 50.0) == 1.5 and rules.continuous_target(2, 1.0, 50.0) == 3.0
    assert clamp([[0, 1, 1]], [[50, 50, -50]]).tolist() == [[1, 2, 0]]
    # env: photoXp from 0 and streakBonusPerDay from 1 climb one unit at a time, then by 50%
    env = scan_xp_env(tenant={"photoXp": 0, "streakBonusPerDay": 1})
    up = np.zeros(10, np.float32)
    up[[PARAM_INDEX["photoXp"], PARAM_INDEX["streakBonusPerDay"]]] = 1.0
    seen = []
    for _ in range(4):
        env.step({"variant_0": up})
        seen.append((int(env.config[1, PARAM_INDEX["photoXp"]]), int(env.config[1, PARAM_INDEX["streakBonusPerDay"]])))
    assert seen == [(1, 2), (2, 3), (3, 5), (5, 8)]  # 0 -> 1 -> 2 (+1 unit), 2 -> 3 (window 1), 3 -> 4.5 -> 5
    env.step({"variant_0": -up * (np.arange(10) == PARAM_INDEX["photoXp"])})
    assert env.config[1, PARAM_INDEX["photoXp"]] == 3  # 5 / 1.5 = 3.33
    agent = learners.fractions_to_update(context({**agents.DEFAULTS, "photoXp": 0}), np.eye(10)[PARAM_INDEX["photoXp"]])
    assert agent.overrides == {"photoXp": 1}


# ---------------------------------------------------------------------------- continuous mapping


@pytest.mark.parametrize("pct", [5.0, 15.0, 33.3, 50.0, 55.0, 80.0, 100.0])
def test_continuous_mapping_is_log_symmetric_with_an_exact_upper_edge(pct):
    for cur in (0, 1, 2, 3, 5, 7, 10, 15, 20, 25, 50, 99, 200, 1000):
        assert rules.continuous_target(cur, 0.0, pct) == cur
        assert rules.continuous_target(cur, 1.0, pct) == cur + rules.delta_window(cur, pct)  # the window's edge
        for a in (0.1, 0.37, 0.5, 0.9):
            up, down = rules.continuous_target(cur, a, pct), rules.continuous_target(cur, -a, pct)
            if cur * pct / 100 >= 1:
                assert up * down == pytest.approx(cur * cur, rel=1e-12)  # reciprocal factors
            else:
                assert up + down == pytest.approx(2 * cur, abs=1e-12)  # one unit either way
            assert rules.continuous_action(cur, up, pct) == pytest.approx(a, abs=1e-12)
            assert rules.continuous_action(cur, down, pct) == pytest.approx(-a, abs=1e-12)
            assert cur - rules.delta_window(cur, pct) <= down <= up <= cur + rules.delta_window(cur, pct)
        assert rules.continuous_action(cur, cur + 10**6, pct) == 1.0
        assert rules.continuous_action(cur, -5, pct) == -1.0


def test_an_agents_update_survives_the_float32_continuous_action():
    """action_for inverts the env's mapping: every integer target within reach is applied exactly."""
    env = scan_xp_env()
    cur = env.config[1].copy()
    for i, name in enumerate(PARAM_NAMES):
        c = int(cur[i])
        lowest, highest = rules.round_half_away(c / 1.5), rules.round_half_away(c + rules.delta_window(c, 50.0))
        reach = range(int(lowest), int(highest) + 1)
        for target in reach:
            act = action_for(env, "variant_0", Update({name: target}))
            req = rules.continuous_target(float(c), float(act[i]), 50.0)
            assert rules.round_half_away(req) == target, (name, c, target, act[i])
            assert (act[i] != 0.0) == (target != c) and not np.delete(act, i).any()


# ------------------------------------------------------------------------------------- the median


def walk(pct, n_walks, steps, seed, mapping):
    """``n_walks`` walks of the ten parameters from the defaults under uniform actions; the median
    config after every step, relative to the defaults (steps x 10)."""
    rng = np.random.default_rng(seed)
    cur = np.tile(DEFAULT_VECTOR, (n_walks, 1))
    medians = []
    for _ in range(steps):
        a = rng.uniform(-1.0, 1.0, cur.shape)
        cur = clamp(cur, mapping(cur.astype(np.float64), a, pct), pct=pct)
        medians.append(np.median(cur, axis=0))
    return np.array(medians)


_continuous = np.vectorize(rules.continuous_target, otypes=[np.float64])


def _old_additive(cur, a, pct):  # the previous mapping, for contrast
    return cur + a * np.maximum(cur * pct / 100.0, 1.0)


@pytest.mark.parametrize("pct, steps", [(15.0, 60), (50.0, 30), (100.0, 10)])
def test_uniform_random_actions_keep_the_median_config_at_the_defaults(pct, steps):
    medians = walk(pct, 2000, steps, 1, _continuous)
    for t in range(steps):
        for i, name in enumerate(PARAM_NAMES):
            assert within_tolerance(medians[t, i], DEFAULT_VECTOR[i]), (name, t + 1, medians[t, i])
    old = walk(pct, 2000, steps, 1, _old_additive)[-1]
    if pct >= 50:  # the old mapping shrinks every parameter to 0.1-0.4x
        assert np.all(old <= 0.5 * DEFAULT_VECTOR), old
    else:  # more slowly at 15% (streakBonusPerDay 5 moves by the one-unit floor there, additively)
        assert np.sum(old < DEFAULT_VECTOR) >= 9, old


def test_uniform_random_actions_through_the_env():
    """The same walk through the environment (continuous actions, guardrails, hard bounds): 4 agents x
    25 seeds = 100 walks per parameter; each parameter's median stays within a factor 1.5 (2.5
    standard errors of a median of 100 walks after 30 steps: 2.5 * 1.25 * 1.28 / 10 = 0.4 log
    units), and the median over all 1000 walks of the ratio to the default within 15% at every step
    (3 standard errors, 3 * 1.25 * 1.28 / sqrt(1000) = 0.15).  The old mapping ends near 0.3x."""
    env = EconomyEnv("tiny", n_users=40, n_agents=4, max_days=30, info_level="light")
    rng = np.random.default_rng(7)
    ratios = np.zeros((25, 30, 4, 10))
    for seed in range(25):
        env.reset(seed=seed)
        for t in range(30):
            env.step({a: rng.uniform(-1.0, 1.0, 10).astype(np.float32) for a in env.agents})
            ratios[seed, t] = env.config[1:] / DEFAULT_VECTOR
    assert not env.guardrails.breaker_open.any()
    per_param = np.median(ratios[:, -1].reshape(-1, 10), axis=0)
    assert np.all((per_param >= 1 / 1.5) & (per_param <= 1.5)), per_param
    pooled = np.median(ratios.transpose(1, 0, 2, 3).reshape(30, -1), axis=1)
    assert np.all(np.abs(pooled - 1.0) <= 0.15), pooled


def test_the_random_agent_keeps_the_median_config_at_the_defaults():
    """``random`` with every=1 and all ten parameters is the uniform walk of the agents' side: its
    own rounding, then the guardrails.  1000 seeded agents, 30 updates at 50%."""
    pool = [Random(every=1, n_params=10) for _ in range(1000)]
    for k, agent in enumerate(pool):
        agent.reset(seed=k)
    cur = np.tile(DEFAULT_VECTOR, (len(pool), 1))
    for day in range(30):
        req = cur.astype(np.float64)
        for k, agent in enumerate(pool):
            update = agent.act(context(dict(zip(PARAM_NAMES, cur[k].tolist())), day=day))
            for name, value in update.overrides.items():
                req[k, PARAM_INDEX[name]] = value
        cur = clamp(cur, req)
        med = np.median(cur, axis=0)
        for i, name in enumerate(PARAM_NAMES):
            assert within_tolerance(med[i], DEFAULT_VECTOR[i]), (name, day, med[i])
    # the same draws made additively (the old agent) shrink every parameter
    old = walk(50.0, 1000, 30, 2, _old_additive)[-1]
    assert np.all(old <= 0.5 * DEFAULT_VECTOR), old


def test_the_random_agent_through_the_env_keeps_the_median_config():
    """``random`` in the environment's seats (its update -> continuous action -> guardrails), with the
    tolerances of :func:`test_uniform_random_actions_through_the_env`.  Episode seeds are 10 apart so
    that the 100 agents (seeded ``s + 1 + k``) make 100 different walks: the configs do not depend on
    the users, and two agents with one seed would walk the same path."""
    env = EconomyEnv("tiny", n_users=40, n_agents=4, max_days=30, info_level="light")
    finals = []
    for seed in range(0, 250, 10):
        pols = {a: agents.make("random", every=1, n_params=10) for a in env.possible_agents}
        out = run_episode(env, pols, seed=seed)
        assert out["days"] == 30 and all(len(d) == 30 for d in out["decisions"].values())
        finals.append(env.config[1:] / DEFAULT_VECTOR)
    finals = np.concatenate(finals)
    per_param = np.median(finals, axis=0)
    assert np.all((per_param >= 1 / 1.5) & (per_param <= 1.5)), per_param
    assert abs(float(np.median(finals)) - 1.0) <= 0.15, np.median(finals)


def test_unit_scale_and_its_inverse_are_one_rule():
    """config_span / unit_of / unit_target: 0 at the tenant value, +-1 at the farther bound, inverse
    of each other, and the env's observation of the config uses the same scale."""
    for t, lo, hi in ((10, 0, 200), (50, 0, 1000), (20, 1, 100), (5, 5, 5)):
        span = rules.config_span(t, lo, hi)
        assert rules.unit_of(t, t, span) == 0.0
        far = hi if math.log1p(hi) - math.log1p(t) >= math.log1p(t) - math.log1p(lo) else lo
        assert abs(rules.unit_of(far, t, span)) == pytest.approx(1.0) or lo == hi
        for x in (lo, t, hi, (lo + hi) / 2):
            assert rules.unit_target(rules.unit_of(x, t, span), t, span) == pytest.approx(x, abs=1e-9)
    assert rules.config_span(5, 5, 5) == 1.0  # a pinned parameter: scale 1, always 0


def test_an_agents_update_survives_the_float32_target_action():
    env = EconomyEnv("tiny", action_mode="target", n_users=200)
    env.reset(seed=0)
    cur = env.config[1].copy()
    lo, hi = env.guardrail_config.lo, env.guardrail_config.hi
    for i, name in enumerate(PARAM_NAMES):
        for target in sorted({int(lo[i]), int(cur[i]), int(hi[i]), int(cur[i]) + 1, max(int(cur[i]) - 1, int(lo[i]))}):
            act = action_for(env, "variant_0", Update({name: target}))
            req = env._unit_targets(act.astype(np.float64))
            assert rules.round_half_away(req[i]) == target, (name, target, act[i])
            assert np.array_equal(np.delete([rules.round_half_away(r) for r in req], i), np.delete(cur, i))
