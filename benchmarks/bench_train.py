#!/usr/bin/env python
"""Training throughput: SB3 PPO on the economy arena against SB3 PPO on CartPole-v1, side by side.

Run from the checkout::

    .venv/bin/python benchmarks/bench_train.py                  # 3 interleaved repeats, ~2 minutes on a quiet 2-core machine
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

Inside every timed ``learn`` the VecEnv's ``step_wait`` (the env, autoresets included) is clocked, and
on the arena also the population kernel (``step_population``, in this process: one-process runs), so
each sample splits into SB3's own time, the env's Python and the kernel (``split``).  The kernel is the
part of the env that no Python tuning removes; ``ceiling`` is the training rate, as a share of
CartPole's, of an env that cost only its kernel (SB3's own time plus the kernel's), in one process and
with the kernel spread perfectly over every core, and ``users_at_target`` the largest population per
economy for which such an env would meet the target in one process.

The floor of the comparison: ``spaces_only`` trains the same PPO, side by side, on an env that costs
nothing but has the arena's spaces (the 70-value observation, the 10-value continuous action, 90-day
episodes; constant observations, zero reward) in SB3's ``DummyVecEnv``: the rate no env with these
spaces can beat, since PPO's own work per step (a Gaussian policy over 10 actions, 70 inputs) is more
than on CartPole's 4 inputs and 2 discrete actions.

Writes one JSON file (default ``benchmarks/results/bench_train.json``; ``--quick``: ``runs/benchmarks/bench_train-quick.json``) with the machine, every sample,
the medians and the target with pass/fail, and prints a summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import numpy as np  # noqa: E402
from bench_env import machine, out_help, resolve_out  # noqa: E402

TARGET = 0.70


def cartpole_vec(n: int, seed: int):
    from stable_baselines3.common.env_util import make_vec_env

    return make_vec_env("CartPole-v1", n_envs=n, seed=seed)


def spaces_only_vec(n: int, seed: int, observation_space, action_space, horizon: int):
    """``n`` envs that cost nothing, with the given spaces: a constant observation, reward 0, episodes of
    ``horizon`` steps (truncated), in SB3's DummyVecEnv."""
    import gymnasium
    from stable_baselines3.common.vec_env import DummyVecEnv

    class SpacesOnly(gymnasium.Env):
        def __init__(self):
            self.observation_space, self.action_space = observation_space, action_space
            self._obs = np.zeros(observation_space.shape, observation_space.dtype)
            self._t = 0

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self._t = 0
            return self._obs, {}

        def step(self, action):
            self._t += 1
            return self._obs, 0.0, False, self._t >= horizon, {}

    venv = DummyVecEnv([SpacesOnly for _ in range(n)])
    venv.seed(seed)
    return venv


class _Clock:
    """Seconds spent in the functions it wraps."""

    def __init__(self):
        self.seconds = 0.0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0
        return timed


class _KernelClock(_Clock):
    """Clocks ``step_population`` of every economy built in this process while installed (a context
    manager around :func:`arena_env.economy.backends.get`, which ``env.step`` reads its kernels from)."""

    def __enter__(self):
        from arena_env.economy import backends

        self._real, cache = backends.get, {}

        def get(name):
            if name not in cache:
                b = self._real(name)
                cache[name] = dataclasses.replace(b, step_population=self.wrap(b.step_population))
            return cache[name]

        backends.get = get
        return self

    def __exit__(self, *exc):
        from arena_env.economy import backends

        backends.get = self._real


def time_learn(make_env, cfg, timesteps: int, seed: int) -> dict:
    """``model.learn(timesteps)`` on a fresh model, after a one-rollout warm-up: its seconds
    (``train_s``), those inside the VecEnv's ``step_wait`` (``env_s``) and inside the population
    kernel of the economies stepped in this process (``kernel_s``; 0 for other envs)."""
    from arena_env.training.config import algorithm, build_kwargs

    with _KernelClock() as kernel:
        venv = make_env()
        try:
            kw = build_kwargs(cfg.algo_kwargs)
            model = algorithm(cfg.algo)(env=venv, seed=seed, verbose=0, device="cpu", **kw)
            model.learn(int(kw.get("n_steps", 1)) * venv.num_envs)
            env = _Clock()
            venv.step_wait = env.wrap(venv.step_wait)  # VecEnv.step calls step_async, then this
            kernel.seconds = 0.0
            t0 = time.perf_counter()
            model.learn(timesteps, reset_num_timesteps=False)
            return {"train_s": time.perf_counter() - t0, "env_s": env.seconds, "kernel_s": kernel.seconds}
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
    p.add_argument("--out", type=Path, default=None, help=out_help("bench_train"))
    args = p.parse_args(argv)
    args.out = resolve_out("bench_train", p, args)

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
    spaces = (probe.observation_space, probe.action_space, int(probe.get_attr("scenario", [0])[0].max_days))
    probe.close()
    rollout = int(cfg.algo_kwargs.get("n_steps", 1)) * n_envs
    timesteps = args.timesteps or rollout * (2 if args.quick else 30)
    repeat = 1 if args.quick else args.repeat
    cart = lambda: cartpole_vec(n_envs, cfg.seed)  # noqa: E731
    blank = lambda: spaces_only_vec(n_envs, cfg.seed, *spaces)  # noqa: E731
    env_steps = 50 if args.quick else 400
    samples = {"cartpole_train_s": [], "arena_train_s": [], "cartpole_env_steps_per_s": [], "arena_env_steps_per_s": [],
               "cartpole_in_env_s": [], "arena_in_env_s": [], "arena_in_kernel_s": [], "spaces_only_train_s": []}
    if workers > 1:
        samples.update(arena_workers_train_s=[], arena_workers_env_steps_per_s=[])

    def learn(key, make_env, r):
        t = time_learn(make_env, cfg, timesteps, cfg.seed + r)
        samples[f"{key}_train_s"].append(t["train_s"])
        if f"{key}_in_env_s" in samples:
            samples[f"{key}_in_env_s"].append(t["env_s"])
        if key == "arena":
            samples["arena_in_kernel_s"].append(t["kernel_s"])

    for r in range(repeat):
        learn("cartpole", cart, r)
        learn("arena", arena, r)
        learn("spaces_only", blank, r)
        samples["cartpole_env_steps_per_s"].append(time_env(cart, env_steps, r))
        samples["arena_env_steps_per_s"].append(time_env(arena, env_steps, r))
        if workers > 1:
            learn("arena_workers", arena_w, r)
            samples["arena_workers_env_steps_per_s"].append(time_env(arena_w, env_steps, r))
        print(f"repeat {r + 1}/{repeat}: " + ", ".join(f"{k} {v[-1]:.3g}" for k, v in samples.items()), file=sys.stderr)
    med = {k: float(statistics.median(v)) for k, v in samples.items()}
    cart_sps = timesteps / med["cartpole_train_s"]
    arena_sps = timesteps / med["arena_train_s"]
    ratio = arena_sps / cart_sps
    # the env alone (timed apart, other steps) for as many steps as a sample trains, over the training time:
    # an estimate, which can pass 1 when the env alone runs slower than inside learn
    env_alone_ratio = (timesteps / med["arena_env_steps_per_s"]) / med["arena_train_s"]
    # per training step, from the repeat whose arena sample is the median one: SB3's own time, the env's
    # Python and the kernel; the ceiling is an env costing only its kernel
    mid = samples["arena_train_s"].index(med["arena_train_s"]) if repeat % 2 else None
    pick = (lambda k: samples[k][mid]) if mid is not None else (lambda k: med[k])
    env_share = pick("arena_in_env_s") / pick("arena_train_s")  # clocked inside learn: a share, below 1
    split = {
        "cartpole_sb3_s_per_step": (med["cartpole_train_s"] - med["cartpole_in_env_s"]) / timesteps,
        "cartpole_env_s_per_step": med["cartpole_in_env_s"] / timesteps,
        "arena_sb3_s_per_step": (pick("arena_train_s") - pick("arena_in_env_s")) / timesteps,
        "arena_env_python_s_per_step": (pick("arena_in_env_s") - pick("arena_in_kernel_s")) / timesteps,
        "arena_kernel_s_per_step": pick("arena_in_kernel_s") / timesteps,
    }
    sb3, kern = split["arena_sb3_s_per_step"], split["arena_kernel_s_per_step"]
    cores = len(os.sched_getaffinity(0))
    budget = 1.0 / (TARGET * cart_sps) - sb3  # the env time per step the target leaves
    n_users = int(cfg.env.get("n_users") or 0)
    ceiling = {
        "spaces_only": timesteps / med["spaces_only_train_s"] / cart_sps,  # any env with the arena's spaces
        "cores": cores,
        "one_process": 1.0 / (sb3 + kern) / cart_sps,
        "kernel_on_all_cores": 1.0 / (sb3 + kern / cores) / cart_sps,
        "env_budget_s_per_step": budget,
        "n_users": n_users,
        "users_at_target": max(0.0, budget) / kern * n_users,
    }
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
        "train_steps_per_s": {"cartpole": cart_sps, "arena": arena_sps,
                              "spaces_only": timesteps / med["spaces_only_train_s"]},
        "arena_env_share_of_training_time": env_share,
        "arena_env_alone_over_training_time": env_alone_ratio,
        "split": split,
        "ceiling": ceiling,
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
          f"{med['arena_env_steps_per_s']:,.0f}; the arena's env share of its training time {env_share:.0%} "
          f"(clocked inside learn; the env alone would take {env_alone_ratio:.0%} of it)")
    ms = {k: v * 1e3 for k, v in split.items()}
    print(f"per training step (ms): CartPole SB3 {ms['cartpole_sb3_s_per_step']:.3f} + env "
          f"{ms['cartpole_env_s_per_step']:.3f}; arena SB3 {ms['arena_sb3_s_per_step']:.3f} + env Python "
          f"{ms['arena_env_python_s_per_step']:.3f} + kernel {ms['arena_kernel_s_per_step']:.3f}")
    print(f"an env with the arena's spaces that costs nothing trains at {ceiling['spaces_only']:.0%} of CartPole's "
          "rate: no env with these spaces can do better")
    print(f"ceiling (an env costing only its kernel): {ceiling['one_process']:.0%} of CartPole in one process, "
          f"{ceiling['kernel_on_all_cores']:.0%} with the kernel on {cores} cores; the target leaves "
          f"{budget * 1e3:.3f} ms of env per step: a kernel-only env of {ceiling['users_at_target']:,.0f} users "
          f"per economy (trained at {n_users:,})")
    if workers > 1:
        print(f"arena with vec.workers {workers} (as the config trains): {w_sps:,.0f} training steps/s "
              f"({result['arena_workers_speedup']:.2f}x one process, {result['arena_workers_vs_cartpole']:.0%} of "
              f"CartPole); env alone {med['arena_workers_env_steps_per_s']:,.0f} row-steps/s")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
