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
    with pytest.raises(ValueError, match="random: every: expected an integer >= 1, got 0"):
        agents.make("random", every=0)
    for name in ("sb3", "rllib"):  # a required hyperparameter left out is named, not a bare TypeError
        with pytest.raises(AgentConfigError, match=f"agent '{name}': the hyperparameter 'path' is required"):
            agents.make(name)


INF, NAN = float("inf"), float("nan")


@pytest.mark.parametrize("name, kw, message", [
    ("random", {"every": "3"}, "random: every: expected an integer >= 1, got '3'"),
    ("random", {"every": 2.5}, "random: every: expected an integer >= 1, got 2.5"),
    ("random", {"every": True}, "random: every: expected an integer >= 1, got True"),
    ("random", {"n_params": 11}, r"random: n_params: expected an integer in \[1, 10\], got 11"),
    ("random", {"scale": NAN}, r"random: scale: expected a finite number in \(0, 1\], got nan"),
    ("rule", {"scan_low": "x"}, "rule: scan_low: expected a finite number >= 0, got 'x'"),
    ("rule", {"scan_low": INF}, "rule: scan_low: expected a finite number >= 0, got inf"),
    ("rule", {"every": 2.7}, "rule: every: expected an integer >= 1, got 2.7"),
    ("momentum", {"every": 1.5}, "momentum: every: expected an integer >= 1, got 1.5"),
    ("safety", {"anomaly_run": 1.5}, "safety: anomaly_run: expected an integer >= 1, got 1.5"),
    ("pid", {"setpoint": "2"}, "pid: setpoint: expected a finite number > 0, got '2'"),
    ("pid", {"setpoint": INF}, "pid: setpoint: expected a finite number > 0, got inf"),
    ("multi_metric", {"targets": {"SCAN_FREQUENCY": INF}},
     "multi_metric: targets.SCAN_FREQUENCY: expected a finite number > 0, got inf"),
    ("thompson_gaussian", {"threshold": "x"}, "thompson_gaussian: threshold: expected a finite number, got 'x'"),
    ("explore_then_exploit", {"rounds": NAN}, "explore_then_exploit: rounds: expected an integer >= 1, got nan"),
    ("hedge", {"strategies": ["hedge"]}, r"hedge: strategies: expected a non-empty list of .*'ucb1', got \['hedge'\]"),
    ("ucb1", {"status_quo": "yes"}, "ucb1: status_quo: expected true or false, got 'yes'"),
    ("ucb1", {"scale": INF}, "ucb1: scale: expected a finite number > 0 or None, got inf"),
    ("ucb1", {"period": 7.5}, "ucb1: period: expected an integer >= 1, got 7.5"),
    ("bayes_opt", {"n_init": 2.5}, "bayes_opt: n_init: expected an integer >= 1, got 2.5"),
    ("bayes_opt", {"n_candidates": 1.5}, "bayes_opt: n_candidates: expected an integer >= 1, got 1.5"),
    ("bayes_opt", {"min_days": True}, "bayes_opt: min_days: expected an integer >= 1, got True"),
    ("linucb", {"alpha": NAN}, "linucb: alpha: expected a finite number >= 0, got nan"),
    ("llm", {"complete": str, "every": 2.5}, "llm: every: expected an integer >= 1, got 2.5"),
    ("llm", {"complete": str, "every": NAN}, "llm: every: expected an integer >= 1, got nan"),
    ("llm", {"complete": "notcallable"}, "llm: complete: expected a function prompt -> answer text, got 'notcallable'"),
])
def test_hyperparameters_are_checked_by_one_helper_naming_the_agent_and_the_key(name, kw, message):
    """Every shipped agent checks its hyperparameters with agents.hparams when it is built: integers are
    integers (no bools, no fractions), numbers are numbers (no strings, no NaN) and finite where infinity
    means nothing, bools are bools."""
    with pytest.raises(AgentConfigError, match=f"^{message}$"):
        agents.make(name, **kw)


def test_hyperparameters_keep_their_canonical_types():
    assert agents.make("random", every=np.int64(3), scale=1).every == 3
    assert type(agents.make("rule", every=4.0).every) is int
    assert agents.make("pid", integral_limit=INF).integral_limit == INF  # no limit: meaningful
    assert agents.make("ucb1", status_quo=np.bool_(False)).status_quo is False


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
    ("agent: random\nparams: {every: '3'}\n", "random: every: expected an integer >= 1, got '3'"),
    ("agent: random\nparams: {every: 0}\n", "random: every: expected an integer >= 1, got 0"),
    ("agent: random\nparams: {every: 2}\nparams: {every: 3}\n", "duplicate key 'params'"),
    ("agent: random\nparams: {every: 2, every: 3}\n", "duplicate key 'every'"),
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


def test_decide_functions_in_the_sdks_shape_play_unchanged():
    """The TendedLoop SDK's quick-start decide(), verbatim: a Signals object in, a ConfigUpdate out."""
    tl = pytest.importorskip("tendedloop_agent")
    namespace = {}
    exec('from tendedloop_agent import Agent, ConfigUpdate, Signals\n\n'
         'def decide(signals: Signals, current_config: dict) -> ConfigUpdate | None:\n'
         '    scan_freq = signals.metrics.get("SCAN_FREQUENCY")\n'
         '    if not scan_freq or scan_freq.confidence == "low":\n'
         '        return None\n'
         '    if scan_freq.value < 2.0:\n'
         '        return ConfigUpdate(\n'
         '            economy_overrides={"scanXp": round(current_config.get("scanXp", 10) * 1.15)},\n'
         '            reasoning=f"Scan frequency low ({scan_freq.value:.1f}/day), boosting +15%",\n'
         '        )\n'
         '    return None\n', namespace)
    a = agents.make(agents.from_decide(namespace["decide"], name="test_sdk_quickstart").agent_name)
    assert a.act(context()) == Update({"scanXp": 12}, "Scan frequency low (1.0/day), boosting +15%")
    seen = []

    @agents.from_decide(name="test_sdk_unannotated", sdk=True)
    def unannotated(signals, config):
        seen.append(signals)
        return {"photoXp": config["photoXp"] + 1}

    assert agents.make("test_sdk_unannotated").act(context(day=3)) == Update({"photoXp": 11})
    assert isinstance(seen[0], tl.Signals) and seen[0].experiment_days == 3
    rr = seen[0].metrics["RETENTION_RATE"]
    assert isinstance(rr, tl.MetricSignal) and rr.sample_size == 100 and rr.confidence == "high"


def test_registering_the_same_definition_again_replaces_it_and_another_agent_is_refused(tmp_path, monkeypatch):
    """A script that names its own agent by import path (``python my_tourney.py`` imports itself as
    my_tourney) and a re-run notebook cell register the same definition twice: the entry is replaced."""
    import importlib
    import runpy
    import sys

    script = tmp_path / "my_tourney_mod.py"
    script.write_text("import agents\n\n\n@agents.from_decide(name='test_my_boost')\ndef my_boost(signals, config):\n"
                      "    return None\n\n\nif __name__ == '__main__':\n"
                      "    FACTORY = agents.resolve('my_tourney_mod:my_boost')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_tourney_mod", raising=False)
    ran = runpy.run_path(str(script), run_name="__main__")
    assert ran["FACTORY"] is agents.resolve("test_my_boost") is importlib.import_module("my_tourney_mod").my_boost
    for _ in range(2):  # a notebook cell run twice

        @agents.from_decide(name="test_cell")
        def cell(signals, config):
            return None

    assert agents.resolve("test_cell") is cell
    with pytest.raises(AgentConfigError, match="agent name 'test_cell' is already registered by .*cell; choose"):

        @agents.from_decide(name="test_cell")
        def another(signals, config):
            return None

    with pytest.raises(AgentConfigError, match="'random' is already registered by agents.baselines.Random"):
        agents.register("random")(type("Random", (), {}))


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
