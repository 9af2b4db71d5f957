"""The sb3 and llm agents: a tiny trained policy in the loop, recorded LLM answers, strict parsing."""

from __future__ import annotations

import numpy as np
import pytest

import agents
import agents.learners  # noqa: F401  (registers sb3 and llm)
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


def test_prompt_names_every_metric_and_the_control():
    env = EconomyEnv("tiny")
    env.reset(seed=0)
    env.step({})
    prompt = build_prompt(context_for(env, "variant_1"))
    for m in agents.METRIC_NAMES:
        assert m in prompt
    assert " vs " in prompt


@pytest.mark.parametrize("mode", ["continuous", "discrete"])
def test_sb3_checkpoint_plays_in_the_parallel_env(tmp_path, mode):
    from stable_baselines3 import PPO

    single = EconomySingleEnv(scenario="tiny", max_days=8, action_mode=mode)
    model = PPO("MlpPolicy", single, n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=32)
    path = tmp_path / "ppo.zip"
    model.save(path)

    def play():
        pol = agents.make("sb3", path=str(path))
        return run_episode(EconomyEnv("tiny", max_days=8, action_mode=mode), {"variant_0": pol}, seed=5)

    a, b = play(), play()
    assert a == b and a["days"] == 8
    with pytest.raises(ValueError, match="unknown algorithm"):
        agents.make("sb3", path=str(path), algo="NOPE")
