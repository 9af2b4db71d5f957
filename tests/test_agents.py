"""agents/: the protocol, the registry, the decorator, the baselines (what they do, and one
determinism test)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import agents
from agents import AgentConfigError, Context, Outcome, Signals, Update
from arena_env.economy import params
from arena_env.economy.env import EconomyEnv
from arena_env.economy.scenario import METRIC_NAMES, scenario_names
from arena_env.wrappers.agents import run_episode

ROOT = Path(__file__).resolve().parents[1]


def test_protocol_constants_match_the_environment():
    assert agents.PARAM_NAMES == params.PARAM_NAMES
    assert dict(agents.DEFAULTS) == params.DEFAULTS
    assert agents.METRIC_NAMES == METRIC_NAMES


def test_registry_lists_and_builds():
    assert {"hold", "random"} <= set(agents.available())
    a = agents.make("random", every=3)
    assert isinstance(a, agents.Agent) and a.every == 3
    with pytest.raises(AgentConfigError, match="unknown agent 'nope'; available: .*hold"):
        agents.make("nope")
    with pytest.raises(AgentConfigError, match="unknown hyperparameter 'evry'; allowed: every, n_params, scale"):
        agents.make("random", evry=3)
    with pytest.raises(ValueError, match="every >= 1"):
        agents.make("random", every=0)


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "agents").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_agent_files_load(path):
    assert isinstance(agents.load(path), agents.Agent)


@pytest.mark.parametrize("text, match", [
    ("agent: random\nparams: {evry: 2}\n", "evry"),
    ("agent: nobody\n", "unknown agent 'nobody'"),
    ("agnt: random\n", "key 'agent'"),
    ("agent: random\nextra: 1\n", "extra: unknown key"),
    ("agent: random\nparams: [1, 2]\n", "params: expected a mapping"),
    ("agent: [random\n", "malformed YAML at line"),
])
def test_bad_agent_files_name_file_and_key(tmp_path, text, match):
    p = tmp_path / "a.yaml"
    p.write_text(text)
    with pytest.raises(AgentConfigError, match=match) as exc:
        agents.load(p)
    assert str(p) in str(exc.value)


def context(day=0, **kw):
    sig = Signals(100, 40, 70, 900, day, {m: agents.Metric(1.0, 0.5, 100, "high") for m in agents.METRIC_NAMES})
    return Context(signals=sig, config=dict(agents.DEFAULTS), day=day, **kw)


def test_decide_functions_become_registered_agents():
    @agents.from_decide(name="test_boost")
    def boost(signals, config):
        """Raise scanXp 15% while scan frequency is low."""
        if signals["metrics"]["SCAN_FREQUENCY"]["value"] < 2.0:
            return {"scanXp": round(config["scanXp"] * 1.15), "reasoning": "low scans"}
        return None

    a = agents.make("test_boost")
    up = a.act(context())
    assert up == Update({"scanXp": 12}, "low scans")
    assert a.act(context(next_allowed_update=60.0, minute=0.0)) is None  # rate limited: no spam
    assert a.act(context(breaker_open=True)) is None
    assert "test_boost" in agents.available()


def test_random_agent_moves_n_params_inside_the_delta_window_every_days_when_it_may():
    a = agents.make("random", every=3, n_params=4)
    a.reset(5)
    ups = {d: a.act(context(day=d)) for d in range(12)}
    assert [d for d, u in ups.items() if u is not None] == [0, 3, 6, 9]  # every 3 days
    for u in ups.values():
        if u is not None:
            assert len(u.overrides) == 4 and set(u.overrides) <= set(agents.PARAM_NAMES)
            for k, v in u.overrides.items():
                step = max(agents.DEFAULTS[k] * 0.5, 1.0)
                assert agents.DEFAULTS[k] - step - 0.5 <= v <= agents.DEFAULTS[k] + step + 0.5, (k, v)
    assert a.act(context(day=12, running=False)) is None             # not while paused,
    assert a.act(context(day=12, breaker_open=True)) is None         # not while the breaker is open,
    assert a.act(context(day=12, next_allowed_update=60.0)) is None  # not before the rate limit allows
    assert a.act(context(day=12)) is not None
    a.update(Outcome(1.0))
    small = agents.make("random", every=1, n_params=10, scale=0.1)
    small.reset(0)
    for d in range(20):  # at most a tenth of the delta limit: 10 -> 10 * 1.5 ** +-0.1, i.e. 10 (rounded)
        u = small.act(context(day=d))
        assert u is not None and all(abs(v - agents.DEFAULTS[k]) <= 0.1 * agents.DEFAULTS[k] / 2 + 1
                                     for k, v in u.overrides.items())
    b = agents.make("random", every=3, n_params=4)
    b.reset(6)
    assert {d: b.act(context(day=d)) for d in range(12)} != ups  # the draws come from the seed


def test_random_agent_moves_are_log_symmetric_so_the_median_config_stays_at_the_defaults():
    """300 seeded walks of 12 moves of every parameter: the median of every parameter stays within 15 %
    of its start (an additive walk ``current + a * delta`` drifts to about 55 % of it)."""
    finals = []
    for seed in range(300):
        a = agents.make("random", every=1, n_params=10)
        a.reset(seed)
        cfg = dict(agents.DEFAULTS)
        for d in range(12):
            cfg.update(a.act(Context(signals=context().signals, config=dict(cfg), day=d)).overrides)
        finals.append([cfg[k] for k in agents.PARAM_NAMES])
    ratio = np.array(finals) / np.array([agents.DEFAULTS[k] for k in agents.PARAM_NAMES])
    median = dict(zip(agents.PARAM_NAMES, np.median(ratio, axis=0)))
    assert all(0.85 <= m <= 1.15 for m in median.values()), median
    assert abs(np.median(np.log(np.maximum(ratio, 1e-3)))) < 0.05
    assert ratio.min() < 0.5 and ratio.max() > 2.0  # and it does wander


def test_hold_never_proposes_anything():
    h = agents.make("hold")
    h.reset(0)
    for d in range(10):
        assert h.act(context(day=d)) is None
        h.update(Outcome(1.0, None, d + 1))


def test_baselines_run_every_scenario_deterministically():
    """The baselines' one determinism test: hold and random take the scenarios in turn; same seed, same episode."""
    def play(name, scenario):
        env = EconomyEnv(scenario, n_users=2000, max_days=20, info_level="light")
        return run_episode(env, {"variant_0": agents.make(name, **({"every": 2} if name == "random" else {}))}, seed=11)

    for name, scenario in zip(itertools.cycle(["random", "hold"]), scenario_names()):
        a = play(name, scenario)
        assert a == play(name, scenario) and a["days"] == 20, (name, scenario)
        assert bool(a["decisions"]["variant_0"]) == (name == "random"), (name, scenario)


def test_outcome_reads_decision_records():
    o = Outcome(0.5, {"accepted": False, "rejectionReason": "RATE_LIMITED"})
    assert o.accepted is False and o.rejection == "RATE_LIMITED" and o.clamped == {}
    assert Outcome(0.0).accepted is None
