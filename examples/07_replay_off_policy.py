"""Off-policy evaluation on an event log: score policies on logged lead follow-ups, then let UCB1 compete
in the replay env.  The log comes from a simulator with a known truth, so the estimates can be checked.

Run: .venv/bin/python examples/07_replay_off_policy.py [--cases 3000] [--seed 1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import yaml

from arena_env.replay import policies, synthetic
from arena_env.replay.agents import BanditPlayer, PolicyPlayer, play
from arena_env.replay.env import ReplayEnv
from arena_env.replay.log import load_log
from arena_env.replay.metrics import evaluate_policies, usable
from arena_env.replay.snapshots import prepare


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=3000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--days", type=int, default=None, help=argparse.SUPPRESS)  # accepted for the examples' smoke test
    args = p.parse_args(argv)

    table, manifest, truth = synthetic.leads(args.cases, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:  # a log and its manifest as files, the way real data arrives
        import pyarrow.parquet as pq

        pq.write_table(table, Path(tmp) / "events.parquet")
        (Path(tmp) / "manifest.yaml").write_text(yaml.safe_dump(manifest))
        log = load_log(Path(tmp) / "events.parquet", Path(tmp) / "manifest.yaml")
    print(log.report)
    replay, _ = usable(prepare(log), "dr")
    pols = [policies.Random(), policies.Logged(), policies.Constant("send_reminder"),
            policies.Threshold("score", 0.5, "send_reminder", "call"),
            policies.Rule([("segment == 'b' and score < 0.6", "call"), ("score >= 0.3", "send_reminder")], "wait")]
    for pol, ev in zip(pols, evaluate_policies(replay, pols, estimator="dr", baseline="random", n_bootstrap=500)):
        dist = np.zeros((len(truth["score"]), 3))
        dist[replay.case] = pol.action_dist(replay)
        vs = "" if ev.versus is None else f", vs random {ev.versus.difference:+.3f} (p {ev.versus.p_value:.3f})"
        print(f"{pol.name:24s} estimate {ev.value.value:.3f} [{ev.value.low:.3f}, {ev.value.high:.3f}]{vs}; "
              f"true value {synthetic.true_value(dist, truth):.3f}; violations "
              f"{ev.violations['no_call_cold_lead']['rate']:.2f}")
    env = ReplayEnv(replay, agents=["ucb1", "threshold"], estimator="ipw")
    res = play(env, {"ucb1": BanditPlayer("ucb1"), "threshold": PolicyPlayer(pols[3])}, seed=args.seed)
    for name, r in res.items():
        print(f"{name} in the replay env: IPW estimate {r['estimate'].value:.3f} "
              f"[{r['estimate'].low:.3f}, {r['estimate'].high:.3f}]")


if __name__ == "__main__":
    main()
