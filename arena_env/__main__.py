"""Command line: ``python -m arena_env check-scenario NAME|PATH [--seeds N] [--train-seeds N]
[--workers K] [--out DIR] [--quick]``.

``check-scenario`` builds the scenario report card (``arena_env/economy/card.py``; described in
``docs/scenarios.md``), prints it as Markdown and writes ``card.md`` and ``card.json`` into ``--out``
(default ``runs/cards/<scenario>``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from arena_env.cli import int_at_least


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m arena_env", description="arena command line tools")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    c = sub.add_parser("check-scenario", help="a report card: does a scenario make a good benchmark?",
                       description="Run fixed and scheduled policies on many seeds and report each lever's "
                                   "effect, the static optimum, the best two-phase schedule, signal to noise, "
                                   "whether the control moves, budget adherence and a PASS/FAIL verdict.")
    c.add_argument("scenario", metavar="NAME|PATH", help="a scenario name (configs/scenarios/) or a .yaml path")
    c.add_argument("--seeds", type=int_at_least(2, "--seeds"), default=None,
                   help="evaluation seeds 1,000,000 + i (default 10, --quick 4)")
    c.add_argument("--train-seeds", type=int_at_least(1, "--train-seeds"), default=None,
                   help="training seeds 0 .. N-1 used by the searches (default 3, --quick 2)")
    c.add_argument("--workers", type=int_at_least(1, "--workers"), default=None,
                   help="worker processes (default: min(2, cores))")
    c.add_argument("--n-users", type=int_at_least(10, "--n-users"), default=None,
                   help="override the scenario's population (e.g. a card of `large` at a size that runs in minutes)")
    c.add_argument("--out", default=None, help="output directory (default runs/cards/<scenario>)")
    c.add_argument("--quick", action="store_true", help="a small grid, one round per search and fewer seeds")
    c.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def check_scenario(args, p: argparse.ArgumentParser) -> int:
    from arena_env.economy import card as C
    from arena_env.economy.scenario import ScenarioError, find

    try:
        find(args.scenario)
    except ScenarioError as exc:
        p.error(str(exc))
    seeds = args.seeds or (C.QUICK_SEEDS if args.quick else C.DEFAULT_SEEDS)
    train = args.train_seeds or (C.QUICK_TRAIN_SEEDS if args.quick else C.DEFAULT_TRAIN_SEEDS)
    workers = args.workers or max(1, min(2, os.cpuint_at_least() or 1))
    stem = Path(args.scenario).stem if str(args.scenario).endswith((".yaml", ".yml")) else str(args.scenario)
    out = Path(args.out) if args.out else Path("runs") / "cards" / stem
    try:
        C.seed_lists(seeds, train)
        overrides = {"n_users": args.n_users} if args.n_users else None
        card = C.build_card(args.scenario, seeds=seeds, train_seeds=train, workers=workers, quick=args.quick,
                            overrides=overrides, progress=not args.no_progress)
    except ScenarioError as exc:
        p.error(str(exc))
    except ValueError as exc:
        if "seed" not in str(exc):
            raise
        p.error(str(exc))
    pj, pm = C.write_card(card, out)
    print(C.render_markdown(card))
    print(f"wrote {pm} and {pj}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.command == "check-scenario":
        return check_scenario(args, p)
    p.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse rejects it first
    return 2


if __name__ == "__main__":
    sys.exit(main())
