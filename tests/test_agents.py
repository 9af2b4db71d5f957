"""agents/: the protocol, the registry, the decorator, the baselines."""

from __future__ import annotations

from pathlib import Path

import pytest

import agents
from agents import AgentConfigError, Context, Outcome, Signals, Update
from arena_env.economy import params
from arena_env.economy.scenario import METRIC_NAMES

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


def test_random_agent_is_seeded_and_waits_for_the_rate_limit():
    a, b = agents.make("random", every=1), agents.make("random", every=1)
    a.reset(5)
    b.reset(5)
    ups = [a.act(context(day=d)) for d in range(5)]
    assert ups == [b.act(context(day=d)) for d in range(5)]
    assert all(u is not None and len(u.overrides) == 2 for u in ups)
    for u in ups:
        for k, v in u.overrides.items():
            assert abs(v - agents.DEFAULTS[k]) <= max(agents.DEFAULTS[k] * 0.5, 1.0) + 0.5
    b.reset(6)
    assert [b.act(context(day=d)) for d in range(5)] != ups
    assert a.act(context(day=5, running=False)) is None
    a.update(Outcome(1.0))


def test_outcome_reads_decision_records():
    o = Outcome(0.5, {"accepted": False, "rejectionReason": "RATE_LIMITED"})
    assert o.accepted is False and o.rejection == "RATE_LIMITED" and o.clamped == {}
    assert Outcome(0.0).accepted is None
