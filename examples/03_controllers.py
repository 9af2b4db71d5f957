"""Controllers: a PID holding scan frequency at a setpoint, and a random walk behind the safety wrapper.

Run: .venv/bin/python examples/03_controllers.py [--days 40] [--seed 1]
"""

from __future__ import annotations

import argparse

import agents
from arena_env.economy.env import EconomyEnv
from arena_env.wrappers.agents import run_episode


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=40)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    env = EconomyEnv("default", n_users=6000, max_days=args.days, info_level="light")
    pols = {"variant_0": agents.make("pid", setpoint=2.0),
            "variant_1": agents.make("safety", inner="random", inner_params={"every": 2, "n_params": 3})}
    res = run_episode(env, pols, seed=args.seed)
    for k, a in enumerate(env.possible_agents):
        anomalies = sum(bool(d.get("anomaly")) for d in res["decisions"][a])
        print(f"{a} ({type(pols[a]).__name__}): total reward {res['rewards'][a]:+.2f}; "
              f"scan frequency {env.signals(k + 1)['metrics']['SCAN_FREQUENCY']['value']:.2f}; "
              f"{len(res['decisions'][a])} decisions, {anomalies} anomaly flags")


if __name__ == "__main__":
    main()
