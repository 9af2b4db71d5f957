"""A Stable-Baselines3 PPO trained for a few steps in the single-agent env, then played as an agent.

(A real run trains far longer: `python train.py --config configs/ppo.yaml`, then play its checkpoint with
`agents.make("sb3", path=...)`; see docs/training.md.)
Run: .venv/bin/python examples/06_sb3_policy.py [--days 30] [--seed 1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import agents
from arena_env.economy.env import EconomyEnv
from arena_env.wrappers.agents import run_episode
from arena_env.wrappers.single import EconomySingleEnv


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timesteps", type=int, default=256)
    args = p.parse_args(argv)
    import torch
    from stable_baselines3 import PPO

    torch.set_num_threads(1)  # small MLPs are fastest on one thread
    single = EconomySingleEnv(scenario="tiny", max_days=args.days, opponents=agents.make("random"))
    model = PPO("MlpPolicy", single, n_steps=64, batch_size=64, n_epochs=2, seed=args.seed, device="cpu")
    model.learn(total_timesteps=args.timesteps)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "ppo.zip"
        model.save(path)
        pols = {"variant_0": agents.make("sb3", path=str(path)), "variant_1": agents.make("random")}
        res = run_episode(EconomyEnv("tiny", max_days=args.days, info_level="light"), pols, seed=args.seed)
    for a, total in res["rewards"].items():
        print(f"{a} ({type(pols[a]).__name__}): total reward {total:+.2f}; {len(res['decisions'][a])} decisions")


if __name__ == "__main__":
    main()
