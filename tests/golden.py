"""Golden regression fingerprints: a 60-day trajectory per scenario under a fixed policy.

The test ``tests/test_golden.py`` recomputes every fingerprint and compares it with the file in
``tests/golden/<scenario>.json``.  A change of the model's dynamics, observations or rewards changes
the fingerprints: bump the env version (``economy_v1`` -> ``v2``, version history in the env
docstring), then regenerate the files and commit them with the change::

    make golden          # = .venv/bin/python -m tests.golden --write

The fingerprint hashes every integer of the trajectory (daily aggregates of all variants, configs,
decision records, final user state) and keeps the summed rewards as floats (compared to 1e-9).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from arena_env.economy import layout as L
from arena_env.economy.env import EconomyEnv
from arena_env.economy.scenario import scenario_names

DAYS = 60
SEED = 20261122
DIR = Path(__file__).resolve().parent / "golden"


def policy(agent_index: int, day: int) -> np.ndarray:
    """A fixed, varied policy: each agent nudges a different pair of parameters every 6th day."""
    a = np.zeros(10, np.float32)
    if day % 6 == agent_index % 6:
        i = (day // 6 + agent_index) % 10
        a[i] = 0.8 if (day // 6) % 3 else -0.6
        a[(i + 3) % 10] = 0.4
    return a


def fingerprint(name: str) -> dict:
    env = EconomyEnv(name, max_days=DAYS, info_level="light")
    env.reset(seed=SEED)
    h = hashlib.sha256()
    rewards = np.zeros(len(env.possible_agents))
    while env.agents:
        day = env.day
        _, rew, _, _, infos = env.step({a: policy(k, day) for k, a in enumerate(env.agents)})
        rewards += [rew[a] for a in env.possible_agents]
        for a in env.possible_agents:
            h.update(json.dumps(infos[a]["decision"], sort_keys=True).encode())
        h.update(env.config.tobytes())
    h.update(env.history_i.tobytes())
    for field, dt in L.USER_FIELDS:
        if np.dtype(dt).kind in "iu":  # the values, whatever the field's width in the record
            h.update(env.users[field].astype(np.int64).tobytes())
    last = env.history_i[-1]
    return {
        "scenario": name,
        "days": DAYS,
        "seed": SEED,
        "sha256": h.hexdigest(),
        "rewards": [float(r) for r in rewards],
        "enrolled": last[:, L.A_ENROLLED].tolist(),
        "active_last_day": last[:, L.A_ACTIVE].tolist(),
        "churned": last[:, L.A_CHURNED].tolist(),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Check or rewrite the golden regression fingerprints.")
    p.add_argument("--write", action="store_true", help="rewrite tests/golden/*.json")
    p.add_argument("scenarios", nargs="*", default=scenario_names())
    args = p.parse_args(argv)
    DIR.mkdir(exist_ok=True)
    for name in args.scenarios:
        fp = fingerprint(name)
        path = DIR / f"{name}.json"
        if args.write:
            path.write_text(json.dumps(fp, indent=2) + "\n")
            print(f"wrote {path}")
        else:
            old = json.loads(path.read_text()) if path.exists() else None
            print(f"{name}: {'same' if old and old['sha256'] == fp['sha256'] else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
