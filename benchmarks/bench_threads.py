"""Steps per second of ``env.step`` at 1 and 2 Numba threads over population sizes.

The figures behind the default of ``EconomyEnv(num_threads=None)`` (``threads_for``): the
``default`` scenario with ``n_users`` overrides, continuous random actions, ``info_level="light"``,
a few untimed warm-up steps, then the 1- and 2-thread runs interleaved, best and median of
``--repeats`` blocks.  Not a test: the machine's load decides the numbers.

    .venv/bin/python benchmarks/bench_threads.py [--sizes 1000 5000 ...] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from arena_env.cli import int_at_least
from arena_env.economy.env import EconomyEnv


def steps_for(n_users: int) -> int:
    return int(max(5, min(200, 2e6 // n_users)))


def block(env, acts, steps: int) -> float:
    t0 = time.perf_counter()
    for d in range(steps):
        env.step(acts[d])
    return steps / (time.perf_counter() - t0)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int_at_least(10, "--sizes"), nargs="+", default=[1000, 5000, 20000, 100000, 1000000],
                    help="population sizes (n_users; default 1000 5000 20000 100000 1000000)")
    ap.add_argument("--threads", type=int_at_least(1, "--threads"), nargs="+", default=[1, 2],
                    help="Numba thread counts (default 1 2)")
    ap.add_argument("--repeats", type=int_at_least(1, "--repeats"), default=3, help="timed blocks per size (default 3)")
    ap.add_argument("--warm", type=int_at_least(0, "--warm"), default=5, help="untimed steps first (default 5)")
    args = ap.parse_args(argv)
    args.threads = list(dict.fromkeys(args.threads))  # each thread count once
    rng = np.random.default_rng(0)
    print(f"{'n_users':>9} {'steps':>6} " + " ".join(f"{f'{t} thr best/median':>22}" for t in args.threads))
    for n in args.sizes:
        steps = steps_for(n)
        days = args.warm + steps * args.repeats + 1
        envs = {t: EconomyEnv("default", n_users=n, max_days=days, num_threads=t, info_level="light")
                for t in args.threads}
        agents = next(iter(envs.values())).possible_agents  # the same for every thread count
        acts = [{a: rng.uniform(-0.2, 0.2, 10).astype(np.float32) for a in agents}
                for _ in range(days)]
        rates = {t: [] for t in args.threads}
        for env in envs.values():
            env.reset(seed=1)
            for d in range(args.warm):
                env.step(acts[d])
        for r in range(args.repeats):
            for t, env in envs.items():  # interleaved: a load spike hits both thread counts
                lo = args.warm + r * steps
                rates[t].append(block(env, acts[lo:lo + steps], steps))
        cells = " ".join(f"{max(rates[t]):>10.0f} /{statistics.median(rates[t]):>10.0f}" for t in args.threads)
        print(f"{n:>9} {steps:>6} {cells}", flush=True)


if __name__ == "__main__":
    main()
