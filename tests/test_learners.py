"""The sb3 and llm agents: how a policy's actions become updates (stub models), recorded LLM answers,
strict parsing, and one determinism test with a tiny trained policy and a scripted LLM in the loop."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import agents
import agents.learners  # noqa: F401  (registers sb3 and llm)
from agents import Update
from agents.learners import build_prompt, fractions_to_update, parse_answer
from arena_env.economy.env import EconomyEnv
from arena_env.wrappers.agents import context_for, run_episode
from arena_env.wrappers.single import EconomySingleEnv


def test_fractions_become_rounded_targets_within_the_delta_limit():
    env = EconomyEnv("tiny")
    env.reset(seed=0)
    ctx = context_for(env, "variant_0")
    a = np.zeros(10)
    a[0], a[7], a[9] = 1.0, -0.5, 0.04
    up = fractions_to_update(ctx, a, "x")
    # the env's log-symmetric mapping: 10 * 1.5 = 15, 50 * 1.5 ** -0.5 = 40.8 -> 41, and
    # 10 * 1.5 ** 0.04 = 10.16 rounds to no change
    assert up.overrides == {"scanXp": 15, "streakBonusCap": 41}
    assert fractions_to_update(ctx, np.zeros(10)) is None
    with pytest.raises(ValueError, match="10 fractions"):
        fractions_to_update(ctx, np.zeros(3))


@pytest.mark.parametrize("text, expected", [
    ('{"overrides": {"scanXp": 12}, "reasoning": "more scans"}', {"scanXp": 12}),
    ('Sure! Here it is:\n{"overrides": {"feedbackXp": 20.0}}\nThanks', {"feedbackXp": 20}),
    ('{"overrides": {}, "reasoning": "healthy"}', None),
])
def test_parse_valid_answers(text, expected):
    up = parse_answer(text)
    assert (up.overrides if up else None) == expected


@pytest.mark.parametrize("text, match", [
    ("no change", "no JSON"),
    ('{"overrides": {"scanXP": 3}}', "unknown parameter"),
    ('{"overrides": {"scanXp": -3}}', "non-negative integer"),
    ('{"overrides": {"scanXp": 2.5}}', "non-negative integer"),
    ('{"overrides": {"scanXp": true}}', "non-negative integer"),
    ('{"overrides": [1]}', "must be an object"),
    ('{"overrides": {}, "extra": 1}', "expected"),
    ('{"overrides": {"scanXp": 3}', "Expecting"),  # truncated JSON: the decoder's error
    ('{"overrides": {"scanXp": 1e39}, "reasoning": "big"}', "non-negative integer .*got 1e\\+39"),  # no float32
])
def test_parse_rejects_anything_else(text, match):
    with pytest.raises(ValueError, match=match):
        parse_answer(text)


def test_llm_agent_with_recorded_answers_holds_on_bad_or_failed_answers():
    answers = iter(['{"overrides": {"firstScanOfDayXp": 20}, "reasoning": "daily habit"}',
                    "I think you should raise scanXp",
                    RuntimeError("timeout")])

    def complete(prompt):
        a = next(answers)
        if isinstance(a, Exception):
            raise a
        return a

    llm = agents.make("llm", complete=complete, every=7)
    res = run_episode(EconomyEnv("tiny", max_days=21), {"variant_0": llm}, seed=1)
    decisions = res["decisions"]["variant_0"]
    assert len(decisions) == 1 and decisions[0]["appliedConfig"] == {"firstScanOfDayXp": 20}
    assert len(llm.prompts) == 3 and len(llm.errors) == 2
    assert "no JSON object" in llm.errors[0] and "RuntimeError: timeout" in llm.errors[1]
    assert "at most 50% of its current value" in llm.prompts[0] and '"scanXp": 10' in llm.prompts[0]
    with pytest.raises(ValueError, match="complete="):
        agents.make("llm")


def test_an_llm_answer_beyond_float32_changes_nothing():
    """A value no update may request (the env refuses it, agents.rules.requestable) is a malformed answer: the
    agent holds and records it, the episode goes on."""
    llm = agents.make("llm", complete=lambda p: '{"overrides": {"scanXp": 1e39}, "reasoning": "big"}', every=7)
    res = run_episode(EconomyEnv("tiny", max_days=8), {"variant_0": llm}, seed=1)
    assert res["days"] == 8 and not res["decisions"]["variant_0"] and len(llm.errors) == 2
    assert "scanXp must be a non-negative integer" in llm.errors[0]


def test_llm_calls_that_keep_failing_forfeit_with_the_error(monkeypatch):
    """No API key or no network: after max_failures consecutive failed calls the agent raises, so a
    tournament's cell forfeits with the error instead of scoring as hold."""
    def offline(prompt):
        raise ConnectionError("no network")

    llm = agents.make("llm", complete=offline, every=1, max_failures=3)
    res = run_episode(EconomyEnv("tiny", max_days=10), {"variant_0": llm}, seed=1, forfeit=True)
    assert "LLMUnavailable: llm: 3 consecutive calls failed; last: ConnectionError: no network" in \
        res["failed"]["variant_0"]
    assert len(llm.errors) == 3
    answers = iter([ConnectionError("blip"), ConnectionError("blip"), '{"overrides": {}}'] * 3)

    def flaky(prompt):  # failures that are not consecutive never stop it
        a = next(answers)
        if isinstance(a, Exception):
            raise a
        return a

    llm = agents.make("llm", complete=flaky, every=1, max_failures=3)
    assert not run_episode(EconomyEnv("tiny", max_days=9), {"variant_0": llm}, seed=1)["failed"]
    monkeypatch.setitem(__import__("sys").modules, "anthropic", None)  # the optional package is missing
    with pytest.raises(agents.AgentConfigError, match=r'llm: client: .*pip install -e "\.\[llm\]"'):
        agents.make("llm", client="anthropic")
    with pytest.raises(agents.AgentConfigError, match="llm: client: expected one of 'anthropic'"):
        agents.make("llm", client="openai")


def test_prompt_names_every_metric_and_the_control():
    env = EconomyEnv("tiny")
    env.reset(seed=0)
    env.step({})
    prompt = build_prompt(context_for(env, "variant_1"))
    for m in agents.METRIC_NAMES:
        assert m in prompt
    assert " vs " in prompt


class StubModel:
    """Stands in for a loaded SB3 model: answers fixed actions and records how it was asked."""

    def __init__(self, actions, n=None):
        self.actions, self.calls, self.seeds = list(actions), [], []
        self.action_space = type("Space", (), {"n": n})() if n is not None else object()

    def predict(self, obs, deterministic=False):
        self.calls.append((np.asarray(obs).dtype, deterministic))
        return self.actions.pop(0), None

    def set_random_seed(self, seed):
        self.seeds.append(seed)


def sb3_with(monkeypatch, model, **kw):
    import stable_baselines3

    monkeypatch.setattr(stable_baselines3.PPO, "load", classmethod(lambda cls, path, device="auto": model))
    monkeypatch.setattr(agents.learners, "checkpoint_path", lambda path: path)  # no file: the stub is the model
    return agents.make("sb3", path="unused.zip", **kw)


def sb3_context(**kw):
    """The context of variant_0 after a reset of ``tiny``, with its observation vector; ``kw`` replaces fields."""
    env = EconomyEnv("tiny")
    obs, _ = env.reset(seed=0)
    return dataclasses.replace(context_for(env, "variant_0", obs["variant_0"]), **kw)


def test_sb3_box_actions_are_the_envs_continuous_moves(monkeypatch):
    a = np.zeros(10, np.float32)
    a[0], a[7] = 1.0, -1.0
    model = StubModel([a, a])
    pol = sb3_with(monkeypatch, model)
    pol.reset(9)
    assert model.seeds == [9]
    up = pol.act(sb3_context())
    assert up.overrides == {"scanXp": 15, "streakBonusCap": 33}  # 10 * 1.5 and 50 / 1.5 = 33.3 -> 33
    assert model.calls == [(np.float32, True)]  # the observation as float32, deterministic by default
    assert pol.act(sb3_context(next_allowed_update=1e9)) is None and len(model.calls) == 1  # not even asked
    with pytest.raises(ValueError, match="no observation vector"):
        pol.act(sb3_context(vector=None))
    stochastic = sb3_with(monkeypatch, StubModel([np.zeros(10, np.float32)]), deterministic=False)
    assert stochastic.act(sb3_context()) is None and stochastic.model.calls == [(np.float32, False)]


def test_sb3_discrete_actions_hold_or_pull_a_preset(monkeypatch):
    pol = sb3_with(monkeypatch, StubModel([0, 2, 1], n=4))
    ctx = sb3_context()
    names = list(ctx.presets)
    assert pol.act(ctx) is None                                            # 0 holds
    assert pol.act(ctx) == Update(dict(ctx.presets[names[1]]), f"policy chose preset {names[1]}")  # k: preset k-1
    assert pol.act(ctx).overrides == dict(ctx.presets[names[0]])


def scripted(prompt):
    import json
    import re

    config = json.loads(re.search(r"Current config: (\{.*\})", prompt).group(1))
    return json.dumps({"overrides": {"photoXp": config["photoXp"] + 2}, "reasoning": "more photos"})


def test_learners_play_deterministically(tmp_path):
    """The learners' one determinism test: a tiny PPO checkpoint (continuous and discrete) and an LLM
    agent with scripted answers, each played twice with the same seed in the parallel env."""
    from stable_baselines3 import PPO

    for mode, scenario in (("continuous", "tiny"), ("discrete", "bandit")):
        single = EconomySingleEnv(scenario="tiny", max_days=8, action_mode=mode)
        model = PPO("MlpPolicy", single, n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu")
        model.learn(total_timesteps=32)
        path = tmp_path / f"ppo-{mode}.zip"
        model.save(path)
        a, b = (run_episode(EconomyEnv(scenario, n_users=2000, max_days=8, action_mode=mode, info_level="light"),
                            {"variant_0": agents.make("sb3", path=str(path))}, seed=5) for _ in range(2))
        assert a == b and a["days"] == 8, mode
    with pytest.raises(ValueError, match="unknown algorithm"):
        agents.make("sb3", path=str(path), algo="NOPE")

    def play_llm():
        env = EconomyEnv("default", n_users=2000, max_days=12, info_level="light")
        return run_episode(env, {"variant_0": agents.make("llm", complete=scripted, every=3)}, seed=11)

    a = play_llm()
    assert a == play_llm()
    assert [d["appliedConfig"] for d in a["decisions"]["variant_0"]] == [{"photoXp": 12}, {"photoXp": 14},
                                                                         {"photoXp": 16}, {"photoXp": 18}]


def test_sb3_path_resolves_as_sb3_does_and_reads_the_record(tmp_path, monkeypatch):
    """``model.save("tgt")`` writes tgt.zip and SB3 loads "tgt": the agent finds the same file, and its
    arena.json, so the actions are read in the recorded mode."""
    import stable_baselines3
    import zipfile

    from agents.learners import write_meta

    with zipfile.ZipFile(tmp_path / "tgt.zip", "w") as zf:
        zf.writestr("data", "{}")
    write_meta(str(tmp_path / "tgt.zip"), {"algo": "PPO", "action_mode": "target"})
    loaded = []
    monkeypatch.setattr(stable_baselines3.PPO, "load",
                        classmethod(lambda cls, path, device="auto": loaded.append(path) or StubModel([])))
    pol = agents.make("sb3", path=str(tmp_path / "tgt"))
    assert pol.action_mode == "target" and loaded == [str(tmp_path / "tgt.zip")]
    with pytest.raises(agents.AgentConfigError, match=r"^sb3: path: no such file nope\.zip \(nor nope\.zip\.zip\)$"):
        agents.make("sb3", path="nope.zip")
    with pytest.raises(agents.AgentConfigError, match="sb3: deterministic: expected true or false, got 'no'"):
        agents.make("sb3", path=str(tmp_path / "tgt"), deterministic="no")
    with pytest.raises(agents.AgentConfigError, match="sb3: action_mode: expected one of 'continuous'"):
        agents.make("sb3", path=str(tmp_path / "tgt"), action_mode="absolute")


@pytest.mark.parametrize("record, match", [
    ("{not json", r"arena\.json: not valid JSON"),
    ("[1, 2]", r"arena\.json: expected a JSON object"),
    ('{"algo": 5}', r"arena\.json: algo: expected a string, got 5"),
    ('{"algo": "PPO", "action_mode": ["continuous"]}', r"arena\.json: action_mode: expected a string"),
    ('{"algo": "NOPE"}', r"unknown algorithm 'NOPE' \(recorded in .*arena\.json\)"),
])
def test_a_malformed_checkpoint_record_is_an_agent_config_error_naming_it(tmp_path, record, match):
    """arena.json is read before the model: a record of the wrong shape or types is refused by name (it was a
    bare TypeError or AttributeError from deep inside the agent)."""
    import zipfile

    path = tmp_path / "m.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data", "{}")
        zf.writestr("arena.json", record)
    with pytest.raises(agents.AgentConfigError, match=match):
        agents.make("sb3", path=str(path))


def test_a_checkpoint_loaded_as_the_wrong_algorithm_is_an_agent_config_error_naming_it(tmp_path):
    """PPO weights loaded as SAC or DQN (given, or a wrong arena.json), or a zip that is no SB3 checkpoint,
    failed with a bare AttributeError or KeyError from inside Stable-Baselines3."""
    import zipfile

    from stable_baselines3 import PPO

    from agents.learners import write_meta

    single = EconomySingleEnv(scenario="tiny", max_days=8)
    path = tmp_path / "ppo.zip"
    PPO("MlpPolicy", single, n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu").save(path)
    with pytest.raises(agents.AgentConfigError, match=r"^sb3: .*ppo\.zip cannot be loaded as SAC \(AttributeError"):
        agents.make("sb3", path=str(path), algo="SAC")
    write_meta(str(path), {"algo": "DQN"})
    with pytest.raises(agents.AgentConfigError, match=r"cannot be loaded as DQN \(recorded in .*arena\.json\)"):
        agents.make("sb3", path=str(path))
    bare = tmp_path / "bare.zip"
    with zipfile.ZipFile(bare, "w") as zf:
        zf.writestr("notes.txt", "not a model")
    with pytest.raises(agents.AgentConfigError, match=r"bare\.zip cannot be loaded as PPO .*model\.save\(\) checkpoint"):
        agents.make("sb3", path=str(bare))


def test_the_learners_invalid_hyperparameters_are_agent_config_errors(tmp_path):
    """docs/agents.md: invalid hyperparameter values raise agents.AgentConfigError, for every shipped agent."""
    with pytest.raises(agents.AgentConfigError, match="llm: pass complete="):
        agents.make("llm")
    for bad in ({}, {"scanXpp": 1}, {"scanXp": "7"}):
        with pytest.raises(agents.AgentConfigError, match="fixed: "):
            agents.make("fixed", config=bad)
    policy = tmp_path / "policy"
    policy.mkdir()
    with pytest.raises(agents.AgentConfigError, match="rllib: .* is not the policy/ directory"):
        agents.make("rllib", path=str(policy))
    (policy / "arena.json").write_text("[1]")
    with pytest.raises(agents.AgentConfigError, match=r"rllib: .*arena\.json: expected a JSON object"):
        agents.make("rllib", path=str(policy))
    (policy / "arena.json").write_text('{"modules": ["shared"]}')
    with pytest.raises(agents.AgentConfigError, match="rllib: .* has no policy 'variant_0'"):
        agents.make("rllib", path=str(policy), module="variant_0")


def test_sb3_target_actions_request_the_values_on_the_observation_scale(monkeypatch):
    """action_mode target: the policy's output is read as the env's target action (rules.unit_target,
    rounded, within the bounds), the same values the env in target mode requests."""
    env = EconomyEnv("tiny", action_mode="target")
    obs, _ = env.reset(seed=0)
    goal = [14, 21, 71, 40, 10, 11, 14, 35, 14, 5]
    u = env.target_action(goal)
    pol = sb3_with(monkeypatch, StubModel([u, u]), action_mode="target")
    ctx = context_for(env, "variant_0", obs["variant_0"])
    up = pol.act(ctx)
    want = {k: g for k, g, c in zip(agents.PARAM_NAMES, goal, ctx.config.values()) if g != c}
    assert up.overrides == want
    env.step({"variant_0": u})  # the env in target mode asks for the same values (the delta clamp aside)
    assert env.decisions[-1]["economyOverrides"] == want
    with pytest.raises(ValueError, match="does not fit the policy's action space"):
        sb3_with(monkeypatch, StubModel([0], n=3), action_mode="target")


def test_the_sb3_example_points_to_train_py():
    """examples/06_sb3_policy.py's docstring gives the real training command, which exists."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    doc = (root / "examples" / "06_sb3_policy.py").read_text().split('"""')[1]
    assert "next work item" not in doc and "python train.py --config configs/ppo.yaml" in doc
    assert (root / "train.py").is_file() and (root / "configs" / "ppo.yaml").is_file()
