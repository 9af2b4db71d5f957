"""Seat effect of the head-to-head track: two copies of ``hold`` in one experiment, seat 0 minus seat 1.

Run: .venv/bin/python benchmarks/bench_seat_effect.py [--seeds 20] [--workers 2]
     [--out benchmarks/results/bench_seat_effect.json]

Both agents do the same thing (nothing), so any difference between their scores is the seat's:
which users were randomised to ``variant_0`` and ``variant_1`` and how the shared site leaderboard
treats them.  Per scenario the JSON gives the mean paired difference ``score(seat 0) - score(seat 1)``
over the evaluation seeds with a t-based 95% CI, its standard deviation, and the across-seed SD of a
single seat's score (the noise a match has anyway).  docs/evaluation.md quotes the figures.  The
balanced schedule puts every agent in every seat equally often, so a seat effect averages out of the
ratings; this measures how much noise it adds to one match.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from arena_env.cli import int_at_least  # noqa: E402
from bench_env import out_help, resolve_out  # noqa: E402
from arena_env.evaluation import tournament  # noqa: E402
from arena_env.evaluation.tournament import AgentSpec, Cell, TournamentConfig  # noqa: E402

SCENARIOS = ("default", "gaming-prone", "churn-crisis", "interference", "nonstationary")


def _cell(args):
    cfg, cell = args
    return tournament.play_cell(cfg, cell)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int_at_least(2, "--seeds"), default=20,
                   help="evaluation seeds per scenario (default 20; a confidence interval needs at least 2)")
    p.add_argument("--workers", type=int_at_least(1, "--workers"), default=os.cpu_count() or 1,
                   help="worker processes (default: all cores)")
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS),
                   help=f"scenario names or paths (default {' '.join(SCENARIOS)})")
    p.add_argument("--out", type=Path, default=None, help=out_help("bench_seat_effect", quick=False))
    args = p.parse_args(argv)
    args.out = resolve_out("bench_seat_effect", p, args, report_only=("workers",))  # results equal for any count
    from arena_env.economy.scenario import ScenarioError, find

    for sc in args.scenarios:  # before any episode runs
        try:
            find(sc)
        except ScenarioError as exc:
            p.error(f"--scenarios: {exc}")
    from scipy import stats as sps

    import multiprocessing

    agents = (AgentSpec("hold_a", "hold"), AgentSpec("hold_b", "hold"))
    res = {"benchmark": "seat_effect", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": sys.version.split()[0]},
           "seeds": args.seeds, "scenarios": {}}
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for sc in args.scenarios:
            cfg = TournamentConfig(agents, (sc,), args.seeds, (tournament.HEAD_TO_HEAD,), {}, oracle=False)
            cells = [Cell(tournament.HEAD_TO_HEAD, ("hold_a", "hold_b"), sc, tournament.EVAL_SEED_BASE + i)
                     for i in range(args.seeds)]
            out = pool.map(_cell, [(cfg, c) for c in cells])
            s0 = np.array([rows[0]["score"] for rows in out])
            s1 = np.array([rows[1]["score"] for rows in out])
            d = s0 - s1
            half = sps.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
            res["scenarios"][sc] = {"mean_diff": float(d.mean()), "ci": [float(d.mean() - half), float(d.mean() + half)],
                                    "sd_diff": float(d.std(ddof=1)), "sd_seat0": float(s0.std(ddof=1)),
                                    "sd_seat1": float(s1.std(ddof=1)), "mean_seat0": float(s0.mean()),
                                    "mean_seat1": float(s1.mean())}
            r = res["scenarios"][sc]
            print(f"{sc:14s} seat0 - seat1 {r['mean_diff']:+.4f} [{r['ci'][0]:+.4f}, {r['ci'][1]:+.4f}]  "
                  f"sd of the difference {r['sd_diff']:.4f}  sd of one seat {r['sd_seat0']:.4f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
