"""Tournaments and leaderboards: ``python evaluate.py`` (a quick tournament on the default scenario)
or ``python evaluate.py --config configs/tournament.yaml``; with a replay config
(``configs/replay_obd.yaml``) it scores policies on logged data by off-policy evaluation instead.

Reads top to bottom: parse the options, build the tournament, play the missing cells in worker
processes (resumable), rank, write ``leaderboard.md``, ``leaderboard.csv``, ``report.html``,
``results.parquet`` and ``manifest.json`` in the run directory, print the leaderboard.  The rules (tracks, seeds, faults,
resume) are in :mod:`arena_env.evaluation.tournament`; the statistics in
:mod:`arena_env.evaluation.leaderboard` and :mod:`arena_env.evaluation.stats`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from arena_env.cli import int_at_least
from arena_env.distributed import RayUnavailable
from arena_env.evaluation import leaderboard, replay_board, report, tournament
from arena_env.progress import cells as progress

positive_int = int_at_least(1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, help="tournament YAML (default: the quick tournament)")
    p.add_argument("--seeds", type=positive_int, help="evaluation seeds per (agent, scenario) (default 10)")
    p.add_argument("--workers", type=positive_int, help="worker processes (default: all cores)")
    p.add_argument("--backend", choices=tournament.BACKENDS, default="local",
                   help="local: worker processes on this machine (default); ray: Ray tasks, on a local Ray or "
                        "the cluster of --ray-address (docs/scaling.md)")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="with --backend ray: join this running cluster ('auto', 'host:6379'; default "
                        "$RAY_ADDRESS, else a local Ray of --workers CPUs)")
    p.add_argument("--out", type=Path, default=None, help="run directory (default runs/<config name>-<time>)")
    p.add_argument("--resume", action="store_true", help="finish an interrupted run in --out / add to its results")
    p.add_argument("--leaderboard-only", action="store_true",
                   help="re-rank --out/results.parquet, run nothing (with --config: only that tournament's cells)")
    p.add_argument("--n-boot", type=positive_int, default=None,
                   help="bootstrap resamples for the intervals (default 2000; a replay config's n_bootstrap)")
    args = p.parse_args(argv)

    if args.config and replay_board.is_replay_config(args.config):
        return replay(args)
    if args.ray_address and args.backend != "ray":
        p.error("--ray-address needs --backend ray")
    if args.resume and args.out is None:
        p.error("--resume needs --out, the run directory to finish")
    if args.leaderboard_only:
        if args.out is None:
            p.error("--leaderboard-only needs --out, the run directory to re-rank")
        source = replay_board.replay_run_config(args.out)
        if source is not None:
            print(f"error: {args.out} is a replay run: --leaderboard-only re-ranks tournaments; a replay run scores "
                  f"in one pass, so run its config again: python evaluate.py --config {source} --out <new directory>",
                  file=sys.stderr)
            return 2
        try:
            rows, meta = tournament.read_results(args.out / "results.parquet")
            if args.config:  # only that tournament's cells of the store (the oracles come from the cache)
                cfg = tournament.with_oracles(tournament.load_config(args.config, args.seeds), args.workers,
                                              progress=True)
                rows = tournament.rows_of(cfg, rows)
                if not rows:
                    raise FileNotFoundError(f"{args.out / 'results.parquet'} has no results of {args.config}; run it "
                                            f"first: python evaluate.py --config {args.config} --out {args.out} --resume")
        except (FileNotFoundError, tournament.TournamentConfigError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    else:
        try:
            cfg = (tournament.load_config(args.config, args.seeds) if args.config
                   else tournament.default_config(args.seeds or 10))
        except tournament.TournamentConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        name = args.config.stem if args.config else "quick"
        out = args.out or Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            rows = tournament.run(cfg, out, workers=args.workers, resume=args.resume, progress=progress,
                                  backend=args.backend, address=args.ray_address)
        except (FileExistsError, FileNotFoundError, tournament.TournamentConfigError, RayUnavailable) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        args.out = out
        meta = json.loads((out / "manifest.json").read_text())  # written by the run
        failed = [r for r in rows if r["failed"]]
        for r in failed[:5]:
            print(f"forfeit: {r['agent']} on {r['scenario']} seed {r['seed']}: {r['error']}", file=sys.stderr)

    try:
        lb = leaderboard.build(rows, **({} if args.n_boot is None else {"n_boot": args.n_boot}))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    leaderboard.write(lb, args.out)
    report.write(lb, rows, meta, args.out)
    print(leaderboard.markdown(lb))
    extra = ", win_matrix.csv" if lb.h2h else ""
    print(f"results in {args.out}/ (leaderboard.md, leaderboard.csv{extra}, report.html, results.parquet, "
          "manifest.json)")
    return 0


def replay(args) -> int:
    """A replay config: score the policies on the logged data, write the same files, print the leaderboard."""
    unused = [flag for flag, on in (("--seeds", args.seeds), ("--workers", args.workers), ("--resume", args.resume),
                                    ("--leaderboard-only", args.leaderboard_only),
                                    ("--backend ray", args.backend == "ray")) if on]
    if unused:
        print(f"error: {args.config} is a replay config; {', '.join(unused)} apply to tournaments only "
              "(a replay run scores every policy on the log in one pass)", file=sys.stderr)
        return 2
    try:
        cfg = replay_board.load_config(args.config)
    except replay_board.ReplayConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.n_boot is not None:
        cfg = dataclasses.replace(cfg, n_bootstrap=args.n_boot)
    out = args.out or Path("runs") / f"{args.config.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        replay_board.check_out(out)
        rows, facts, traces = replay_board.run(cfg, out, progress=True)
    except (ValueError, FileExistsError) as exc:  # a log, manifest or policy the replay cannot use, or a taken
        print(f"error: {exc}", file=sys.stderr)     # --out: the message says which
        return 2
    replay_board.write(rows, facts, traces, out, replay_board.manifest(cfg))
    print(replay_board.markdown(rows, facts))
    print(f"results in {out}/ (leaderboard.md, leaderboard.csv, report.html, results.parquet, traces.parquet, "
          "manifest.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
