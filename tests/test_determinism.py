"""Same seed, same trajectory: across env instances, processes, backends and thread counts (1, 2 and
3 threads on any machine: the multi-thread rollouts run in a child with NUMBA_NUM_THREADS=4).

PettingZoo 1.27's ``parallel_seed_test`` compares only one step; these compare 200.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

from arena_env.economy.env import EconomyEnv


def rollout(steps=200, seed=17, **kwargs):
    """Observations, rewards and infos of a seeded random-action rollout (resets when done)."""
    kwargs.setdefault("scenario", "tiny")
    kwargs.setdefault("max_days", 80)
    env = EconomyEnv(**kwargs)
    rng = np.random.default_rng(seed)
    obs, infos = env.reset(seed=seed)
    out = []
    for _ in range(steps):
        if not env.agents:
            obs, infos = env.reset()
        actions = {a: rng.uniform(-1, 1, 10).astype(np.float32) * (rng.random() < 0.3) for a in env.agents}
        obs, rew, term, trunc, infos = env.step(actions)
        out.append((obs, rew, term, trunc, infos))
    return out


def fingerprint(traj) -> str:
    h = hashlib.sha256()
    for obs, rew, term, trunc, infos in traj:
        for a in sorted(obs):
            h.update(obs[a].tobytes())
            h.update(np.float64(rew[a]).tobytes())
            h.update(json.dumps(infos[a], sort_keys=True, default=str).encode())
        h.update(json.dumps([term, trunc], sort_keys=True).encode())
    return h.hexdigest()


def test_same_seed_same_200_steps():
    a, b = rollout(), rollout()
    for t, (x, y) in enumerate(zip(a, b)):
        for agent in x[0]:
            np.testing.assert_array_equal(x[0][agent], y[0][agent], err_msg=f"step {t}")
            assert x[1][agent] == y[1][agent]
            assert json.dumps(x[4][agent], sort_keys=True, default=str) == \
                json.dumps(y[4][agent], sort_keys=True, default=str)
    assert fingerprint(a) == fingerprint(b)


def test_different_seeds_differ():
    assert fingerprint(rollout(steps=10, seed=1)) != fingerprint(rollout(steps=10, seed=2))


def test_reset_without_seed_continues_deterministically():
    def run():
        env = EconomyEnv("tiny", max_days=3)
        env.reset(seed=5)
        seeds = []
        for _ in range(3):
            env.reset()
            seeds.append(env.episode_seed)
        return seeds
    first = run()
    assert first == run() and len(set(first)) == 3


_CHILD = """
import sys
from tests.test_determinism import rollout, fingerprint
print(fingerprint(rollout(steps=120)))
"""


def test_identical_across_processes_and_hash_seeds():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    prints = set()
    for hash_seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, PYTHONPATH=root)
        res = subprocess.run([sys.executable, "-c", _CHILD], cwd=root, env=env, capture_output=True, text=True,
                             timeout=300)
        assert res.returncode == 0, res.stderr
        prints.add(res.stdout.strip())
    prints.add(fingerprint(rollout(steps=120)))
    assert len(prints) == 1


def test_backends_agree():
    """numba and numpy: integers exactly, floats within 1e-9."""
    a = rollout(steps=60, backend="numba", max_days=60)
    b = rollout(steps=60, backend="numpy", max_days=60)
    for t, (x, y) in enumerate(zip(a, b)):
        for agent in x[0]:
            np.testing.assert_allclose(x[0][agent], y[0][agent], rtol=1e-6, atol=1e-7, err_msg=f"step {t}")
            assert x[1][agent] == pytest.approx(y[1][agent], rel=1e-9, abs=1e-9)
            sx, sy = x[4][agent]["signals"], y[4][agent]["signals"]
            assert {k: v for k, v in sx.items() if k != "metrics"} == {k: v for k, v in sy.items() if k != "metrics"}
            for m in sx["metrics"]:
                assert sx["metrics"][m]["sampleSize"] == sy["metrics"][m]["sampleSize"]
                assert sx["metrics"][m]["value"] == pytest.approx(sy["metrics"][m]["value"], rel=1e-9, abs=1e-12)
            assert x[4][agent]["decision"] == y[4][agent]["decision"]
            assert x[4][agent]["config"] == y[4][agent]["config"]


THREAD_ROLLOUT = dict(steps=40, scenario="default", n_users=50_000, max_days=40)
"""50k users are 13 chunks of the kernels' ``prange`` loops: enough for 3 threads to take a share each
(chunks are handed out ``PARALLEL_CHUNKSIZE`` at a time; with 12k users, 3 chunks, one thread did all)."""

_THREADS_CHILD = """
import json, sys
import numba
from tests.test_determinism import THREAD_ROLLOUT, fingerprint, rollout
out = {}
for n in map(int, sys.argv[1:]):
    traj = rollout(num_threads=n, **THREAD_ROLLOUT)
    out[n] = [fingerprint(traj), numba.get_num_threads()]
print(json.dumps(out))
"""


def test_thread_count_gives_bit_identical_env_rollouts():
    """1, 2 and 3 Numba threads give bit-identical trajectories, on any machine: the 2- and 3-thread
    rollouts run in a child process with ``NUMBA_NUM_THREADS=4`` (Numba's ceiling defaults to the core
    count, which may be 1), so the test never skips.  It covers the population kernels too (every step
    of the rollouts runs them), in place of a kernel-level test that needed 2 threads in-process."""
    from arena_env._numba import PARALLEL_CHUNKSIZE
    from arena_env.economy import model
    from arena_env.economy.scenario import load

    site_size = load("default").site_size
    assert model.chunk_count(THREAD_ROLLOUT["n_users"], site_size) > 2 * PARALLEL_CHUNKSIZE  # 3 threads get work
    before = numba.get_num_threads()
    try:
        one = fingerprint(rollout(num_threads=1, **THREAD_ROLLOUT))
    finally:
        numba.set_num_threads(before)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, NUMBA_NUM_THREADS="4", PYTHONPATH=root)
    res = subprocess.run([sys.executable, "-c", _THREADS_CHILD, "2", "3"], cwd=root, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert {n: threads for n, (_, threads) in got.items()} == {"2": 2, "3": 3}  # the env really ran at that count
    assert {n: fp for n, (fp, _) in got.items()} == {"2": one, "3": one}
