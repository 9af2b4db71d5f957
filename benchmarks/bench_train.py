#!/usr/bin/env python
"""Training throughput: SB3 PPO on the economy arena against SB3 PPO on CartPole-v1, side by side.

Run from the checkout::

    .venv/bin/python benchmarks/bench_train.py                  # 3 interleaved repeats, ~4 minutes
    .venv/bin/python benchmarks/bench_train.py --quick          # smoke run, < 1 minute
    .venv/bin/python benchmarks/bench_train.py --config configs/ppo.yaml --timesteps 50000 --out /tmp/t.json

Method: both runs use the algorithm section of ``--config`` verbatim (same policy network, ``n_steps``,
batch size, epochs), the same number of environments (the config's VecEnv rows: copies x treatment
agents), one torch thread (``threads.torch``), the CPU device and one process (the arena with
``vec.workers = 1``).  With ``vec.workers > 1`` in the config the arena is timed a second time as the
config trains, its economies stepped by that many processes.  CartPole-v1 runs in SB3's
``DummyVecEnv`` (``make_vec_env``); the arena in train.py's own VecEnv (``arena_env.training.run.make_vec``:
EconomyVecEnv under EpisodeStats and VecNormalize, Numba at ``threads.numba``).  One sample times
``model.learn(timesteps)`` after an untimed warm-up ``learn`` of one rollout (compilation, first
touch); the two are interleaved within each repeat so that background load hits both alike.  The
env alone is timed as well (``step`` with zero / sampled actions, steps per second over the rows),
which splits the training time into the env's share and SB3's.  Target: the arena's training steps
per second at least 70% of CartPole's (``targets.train_vs_cartpole``).

Writes one JSON file (default ``benchmarks/results/bench_train.json``) with the machine, every sample,
the medians and the target with pass/fail, and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import numpy as np  # noqa: E402
from bench_env import machine  # noqa: E402

TARGET = 0.70


def cartpole_vec(n: int, seed: int):
    from stable_baselines3.common.env_util import make_vec_env

    return make_vec_env("CartPole-v1", n_envs=n, seed=seed)


def time_learn(make_env, cfg, timesteps: int, seed: int) -> float:
    """Seconds of ``model.learn(timesteps)`` on a fresh model, after a one-rollout warm-up."""
    from arena_env.training.config import algorithm, build_kwargs

    venv = make_env()
    try:
        kw = build_kwargs(cfg.algo_kwargs)
        model = algorithm(cfg.algo)(env=venv, seed=seed, verbose=0, device="cpu", **kw)
        model.learn(int(kw.get("n_steps", 1)) * venv.num_envs)
        t0 = time.perf_counter()
        model.learn(timesteps, reset_num_timesteps=False)
        return time.perf_counter() - t0
    finally:
        venv.close()


def time_env(make_env, steps: int, seed: int) -> float:
    """Row-steps per second of the VecEnv alone, with sampled actions."""
    venv = make_env()
    try:
        venv.seed(seed)
        venv.reset()
        space = venv.action_space
        space.seed(seed)
        actions = [np.stack([space.sample() for _ in range(venv.num_envs)]) for _ in range(16)]
        t0 = time.perf_counter()
        for i in range(steps):
            venv.step(actions[i % 16])
        return steps * venv.num_envs / (time.perf_counter() - t0)
    finally:
        venv.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "ppo.yaml")
    p.add_argument("--timesteps", type=int, default=None, help="timed steps per sample (default 30 rollouts)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="2 rollouts per sample, 1 repeat")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_train.json")
    args = p.parse_args(argv)

    import torch

    from arena_env.paths import shown
    from arena_env.training.config import resolve
    from arena_env.training.run import make_vec, set_threads

    cfg = resolve(args.config, ["eval.enabled=false"])
    cfg1 = resolve(args.config, ["eval.enabled=false", "vec.workers=1"])
    set_threads(cfg)
    workers = int(cfg.vec["workers"])
    arena = lambda: make_vec(cfg1, cfg.seed)  # noqa: E731  (one process, as CartPole)
    arena_w = lambda: make_vec(cfg, cfg.seed)  # noqa: E731  (the config's vec.workers processes)
    probe = arena()
    n_envs = probe.num_envs
    probe.close()
    rollout = int(cfg.algo_kwargs.get("n_steps", 1)) * n_envs
    timesteps = args.timesteps or rollout * (2 if args.quick else 30)
    repeat = 1 if args.quick else args.repeat
    cart = lambda: cartpole_vec(n_envs, cfg.seed)  # noqa: E731
    env_steps = 50 if args.quick else 400
    samples = {"cartpole_train_s": [], "arena_train_s": [], "cartpole_env_steps_per_s": [], "arena_env_steps_per_s": []}
    if workers > 1:
        samples.update(arena_workers_train_s=[], arena_workers_env_steps_per_s=[])
    for r in range(repeat):
        samples["cartpole_train_s"].append(time_learn(cart, cfg, timesteps, cfg.seed + r))
        samples["arena_train_s"].append(time_learn(arena, cfg, timesteps, cfg.seed + r))
        samples["cartpole_env_steps_per_s"].append(time_env(cart, env_steps, r))
        samples["arena_env_steps_per_s"].append(time_env(arena, env_steps, r))
        if workers > 1:
            samples["arena_workers_train_s"].append(time_learn(arena_w, cfg, timesteps, cfg.seed + r))
            samples["arena_workers_env_steps_per_s"].append(time_env(arena_w, env_steps, r))
        print(f"repeat {r + 1}/{repeat}: " + ", ".join(f"{k} {v[-1]:.3g}" for k, v in samples.items()), file=sys.stderr)
    med = {k: float(statistics.median(v)) for k, v in samples.items()}
    cart_sps = timesteps / med["cartpole_train_s"]
    arena_sps = timesteps / med["arena_train_s"]
    ratio = arena_sps / cart_sps
    env_share = (timesteps / med["arena_env_steps_per_s"]) / med["arena_train_s"]
    result = {
        "machine": machine(),
        "config": shown(args.config),
        "algo": cfg.algo,
        "algo_kwargs": {k: repr(v) for k, v in cfg.algo_kwargs.items()},
        "n_envs": n_envs,
        "env": cfg.to_dict()["env"],
        "torch_threads": torch.get_num_threads(),
        "numba_threads": cfg.threads["numba"],
        "timesteps_per_sample": timesteps,
        "samples": samples,
        "median": med,
        "vec_workers": workers,
        "train_steps_per_s": {"cartpole": cart_sps, "arena": arena_sps},
        "arena_env_share_of_training_time": env_share,
        "targets": {"train_vs_cartpole": {"target": TARGET, "value": ratio, "pass": ratio >= TARGET,
                                          "note": "both in one process (arena vec.workers = 1)"}},
    }
    if workers > 1:
        w_sps = timesteps / med["arena_workers_train_s"]
        result["train_steps_per_s"][f"arena_{workers}_workers"] = w_sps
        result["arena_workers_vs_cartpole"] = w_sps / cart_sps
        result["arena_workers_speedup"] = w_sps / arena_sps
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"PPO training steps/s, {n_envs} envs, torch {torch.get_num_threads()} thread(s): "
          f"CartPole-v1 {cart_sps:,.0f}, arena {arena_sps:,.0f} ({ratio:.0%} of CartPole; target {TARGET:.0%}: "
          f"{'pass' if ratio >= TARGET else 'FAIL'})")
    print(f"env alone (row-steps/s): CartPole {med['cartpole_env_steps_per_s']:,.0f}, arena "
          f"{med['arena_env_steps_per_s']:,.0f}; the arena's env share of its training time {env_share:.0%}")
    if workers > 1:
        print(f"arena with vec.workers {workers} (as the config trains): {w_sps:,.0f} training steps/s "
              f"({result['arena_workers_speedup']:.2f}x one process, {result['arena_workers_vs_cartpole']:.0%} of "
              f"CartPole); env alone {med['arena_workers_env_steps_per_s']:,.0f} row-steps/s")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
