"""LinUCB over the presets against Bayesian optimisation of parameter-group multipliers.

Run: .venv/bin/python examples/04_contextual_and_bo.py [--days 140] [--seed 1]
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
    env = EconomyEnv("bandit", max_days=args.days, info_level="light")
    pols = {"variant_0": agents.make("linucb"), "variant_1": agents.make("bayes_opt")}
    res = run_episode(env, pols, seed=args.seed)
    for k, a in enumerate(env.possible_agents):
        cfg = {n: int(x) for n, x in zip(agents.PARAM_NAMES, env.config[k + 1])}
        print(f"{a} ({type(pols[a]).__name__}): total reward {res['rewards'][a]:+.2f}; final scanXp "
              f"{cfg['scanXp']}, feedbackXp {cfg['feedbackXp']}, firstScanOfDayXp {cfg['firstScanOfDayXp']}")


if __name__ == "__main__":
    main()
