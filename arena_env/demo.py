"""A short simulation that shows what the economy arena does: ``python -m arena_env.demo``.

Two treatments compete against the control on the default scenario: ``variant_0`` raises its
rewards step by step (through the guardrails), ``variant_1`` cuts them.  The episode is rendered
every few weeks, then a summary per variant is printed: reward, XP issued per rule, guardrail
decisions and the metric tests against the control.
"""

from __future__ import annotations

import argparse

import numpy as np

from arena_env.economy.env import EconomyEnv
from arena_env.economy.params import PARAM_NAMES


def policy(agent: str, day: int) -> np.ndarray:
    """variant_0: +50% of the delta limit on scan/feedback/first-scan XP each week for 3 weeks;
    variant_1: -50% on the same parameters each week for 3 weeks; otherwise hold."""
    a = np.zeros(len(PARAM_NAMES), dtype=np.float32)
    if day % 7 == 0 and day < 21:
        a[[0, 1, 5]] = 0.5 if agent == "variant_0" else -0.5
    return a


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="default")
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--backend", default="numba", choices=("numba", "numpy"))
    args = p.parse_args(argv)

    env = EconomyEnv(args.scenario, max_days=args.days, backend=args.backend, render_mode="ansi")
    obs, infos = env.reset(seed=args.seed)
    totals = {a: 0.0 for a in env.agents}
    decisions = {a: [] for a in env.agents}
    while env.agents:
        day = env.day
        actions = {a: policy(a, day) for a in env.agents}
        obs, rew, term, trunc, infos = env.step(actions)
        for a, r in rew.items():
            totals[a] += r
            if infos[a]["decision"] is not None:
                decisions[a].append(infos[a]["decision"])
        if env.day in (1, 14, 30) or not env.agents:
            print(env.render(), end="\n\n")

    print(f"Summary after {env.day} days of '{env.scenario.name}' (seed {args.seed}, {env.scenario.n_users} users)")
    ledger = env.ledger()
    for k, a in enumerate(env.possible_agents):
        v = k + 1
        acc = sum(d["accepted"] for d in decisions[a])
        clamped = sum(bool(d.get("clampedDeltas")) for d in decisions[a])
        print(f"- {a}: total reward {totals[a]:+.2f}; decisions {len(decisions[a])} "
              f"({acc} accepted, {clamped} clamped); XP issued {sum(int(x[v]) for x in ledger.values()):,} "
              f"(control {sum(int(x[0]) for x in ledger.values()):,})")
        for name, t in infos[a]["tests"].items():
            mark = "significant" if t["significant"] else "n.s."
            print(f"    {name:<19} diff {t['difference']:+9.3f}  p={t['pValue'] if t['pValue'] is not None else float('nan'):.3g}"
                  f"  d={t['cohensD'] if t['cohensD'] is not None else float('nan'):+.2f}  {mark}")


if __name__ == "__main__":
    main()
