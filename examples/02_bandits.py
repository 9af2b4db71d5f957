"""Bandits over the presets: UCB1 against Thompson sampling on the stationary `bandit` scenario.

Run: .venv/bin/python examples/02_bandits.py [--days 140] [--seed 1]
"""

from __future__ import annotations

import argparse

import agents
from arena_env.economy.env import EconomyEnv
from arena_env.wrappers.agents import run_episode


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=140)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    pols = {"variant_0": agents.make("ucb1"), "variant_1": agents.make("thompson", prior="gaussian")}
    res = run_episode(EconomyEnv("bandit", max_days=args.days, info_level="light"), pols, seed=args.seed)
    for a, pol in pols.items():
        arms = [arm for arm, _ in pol.pulls]
        print(f"{a} ({type(pol).__name__}): total reward {res['rewards'][a]:+.2f}; pulls {arms}")


if __name__ == "__main__":
    main()
