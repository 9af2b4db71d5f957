"""A TendedLoop-style decide() function as an agent, against a hold baseline.

Run: .venv/bin/python examples/01_decide_function.py [--days 60] [--seed 1]
"""

from __future__ import annotations

import argparse

import agents
from arena_env.economy.env import EconomyEnv
from arena_env.wrappers.agents import run_episode


@agents.from_decide(name="example_boost_scans")
def boost_scans(signals, config):
    """Raise scanXp and firstScanOfDayXp 15% while scan frequency is below the control's."""
    sf, ctrl = signals["metrics"]["SCAN_FREQUENCY"], signals["control"].get("SCAN_FREQUENCY")
    if ctrl is None or sf["confidence"] == "low" or sf["value"] >= ctrl["value"]:
        return None
    return {"scanXp": round(config["scanXp"] * 1.15), "firstScanOfDayXp": round(config["firstScanOfDayXp"] * 1.15),
            "reasoning": f"scan frequency {sf['value']:.2f} below control {ctrl['value']:.2f}"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    env = EconomyEnv("default", max_days=args.days, info_level="light")
    res = run_episode(env, {"variant_0": agents.make("example_boost_scans"), "variant_1": agents.make("hold")},
                      seed=args.seed)
    for a, total in res["rewards"].items():
        n = len(res["decisions"][a])
        print(f"{a}: total reward {total:+.2f} over {res['days']} days, {n} decisions; final config "
              f"scanXp={env.config[env.possible_agents.index(a) + 1, 0]}")


if __name__ == "__main__":
    main()
