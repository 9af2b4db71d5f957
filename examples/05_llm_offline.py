"""The LLM agent with an injected completion function: here a scripted stand-in that reads the
prompt, so the example runs offline; pass any client's completion function in your own code
(or `client="anthropic"` with the `llm` extra and an API key).

Run: .venv/bin/python examples/05_llm_offline.py [--days 42] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import re

import agents
from arena_env.economy.env import EconomyEnv
from arena_env.wrappers.agents import run_episode


def scripted_model(prompt: str) -> str:
    """Answers like a cautious analyst: raise feedback XP 20% while feedback quality trails the control."""
    m = re.search(r"FEEDBACK_QUALITY ([0-9.]+) \(.*?\) vs ([0-9.]+)", prompt)
    config = json.loads(re.search(r"Current config: (\{.*\})", prompt).group(1))
    if m and float(m.group(1)) < float(m.group(2)):
        return json.dumps({"overrides": {"feedbackXp": round(config["feedbackXp"] * 1.2)},
                           "reasoning": "feedback quality below control"})
    return '{"overrides": {}, "reasoning": "healthy"}'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=42)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    llm = agents.make("llm", complete=scripted_model, every=7)
    res = run_episode(EconomyEnv("default", n_users=6000, max_days=args.days, info_level="light"),
                      {"variant_0": llm, "variant_1": agents.make("hold")}, seed=args.seed)
    for a, total in res["rewards"].items():
        print(f"{a}: total reward {total:+.2f}; {len(res['decisions'][a])} decisions")
    print(f"questions asked: {len(llm.prompts)}, unusable answers: {len(llm.errors)}")


if __name__ == "__main__":
    main()
