"""Train a policy on the economy arena: ``python train.py --config configs/ppo.yaml`` (Stable-Baselines3), or
``--config configs/rllib_ppo.yaml`` (Ray RLlib, multi-agent; arena_env/training/rllib.py).

Reads top to bottom: parse the options, read and validate the config (``--set section.key=value``
and the shortcut options override its keys), train in ``runs/<run_name>/`` (or ``--out``) with
checkpoints, TensorBoard logs, ``episodes.csv`` and a progress bar, save the final model, draw the
learning curve and evaluate the policy on held-out seeds with evaluate.py's machinery
(``leaderboard.md``, ``report.html``).  ``--resume`` continues an interrupted run (also after ``kill
-9``) from its last checkpoint.  The config format and the outputs are in docs/training.md; the
machinery in :mod:`arena_env.training`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from arena_env.cli import int_at_least
from arena_env.distributed import RayUnavailable
from arena_env.paths import check_out_dir
from arena_env.training import rllib
from arena_env.training.config import TrainConfigError, resolve
from arena_env.training.run import resume_config, train

nonnegative_int = int_at_least(0)
positive_int = int_at_least(1)  # total_timesteps: the config's rule (a positive integer)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))  # the first paragraph
    p.add_argument("--config", type=Path, help="training YAML (e.g. configs/ppo.yaml); with --resume, optional")
    p.add_argument("--total-timesteps", type=positive_int, help="override total_timesteps (rows x steps)")
    p.add_argument("--seed", type=nonnegative_int, help="override seed")
    p.add_argument("--run-name", help="override run_name (the run directory is runs/<run_name>)")
    p.add_argument("--out", type=Path, help="run directory (default runs/<run_name>)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override any key, dotted, value as YAML: --set ppo.n_steps=256 --set env.n_users=5000")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (or runs/<run_name>) from its last checkpoint, with its saved "
                        "config (only --total-timesteps may change it)")
    p.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)

    sets = list(args.sets)
    for key, value in (("total_timesteps", args.total_timesteps), ("seed", args.seed), ("run_name", args.run_name)):
        if value is not None:
            sets.append(f"{key}={value}")
    try:
        if args.out is not None:
            check_out_dir(args.out, "--out")  # before any work
        out, rl = _run_and_framework(args, p)
        if rl and argv is None and os.environ.get("PYTHONHASHSEED") != "0":
            # RLlib orders some per-agent data by iterating sets of agent ids, so its results follow the string
            # hash seed: an RLlib run re-executes itself once with PYTHONHASHSEED=0 (inherited by its Ray
            # workers), which makes a training run the same for a seed in every process
            sys.stdout.flush()
            os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
        if args.resume:
            summary = (rllib.train if rl else train)((rllib.resume_config if rl else resume_config)(
                out, args.total_timesteps), out, resume=True, progress=not args.quiet,
                evaluate=False if args.no_eval else None)
        else:
            cfg = (rllib.resolve if rl else resolve)(args.config, sets)
            out = args.out or Path("runs") / cfg.run_name
            summary = (rllib.train if rl else train)(cfg, out, progress=not args.quiet,
                                                     evaluate=False if args.no_eval else None)
    except (TrainConfigError, FileExistsError, FileNotFoundError, RayUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(f"run in {summary['run_dir']}/ ({', '.join(outputs(summary))})")
    return 0


def outputs(summary: dict) -> list[str]:
    """The outputs of a run that its directory holds, for the closing line (the evaluation's when it ran
    in this invocation, the learning curve when it was drawn)."""
    if summary.get("framework") == "rllib":
        names = ["policy/", "config.yaml", "checkpoints/", "progress.csv", "rllib/"]
    else:
        names = ["model.zip", "last_model.zip", "config.yaml", "checkpoints/", "tb/", "episodes.csv"]
        names += ["curve.png"] if "curve" in summary else []
    names += ["leaderboard.md", "report.html"] if "leaderboard" in summary else []
    return [n for n in names if (Path(summary["run_dir"]) / n.rstrip("/")).exists()]


def _run_and_framework(args, p) -> tuple[Path | None, bool]:
    """The run directory to resume (None for a new run: it follows from the config) and whether the run is
    RLlib's (``framework: rllib`` in the config, or in the saved config of the run resumed)."""
    if not args.resume:
        if args.config is None:
            p.error("--config is required (e.g. --config configs/ppo.yaml)")
        return None, rllib.is_rllib_config(args.config)
    if args.sets or args.seed is not None:
        p.error("--resume continues a run with its saved config; only --total-timesteps may change it")
    out = args.out
    if out is None and (args.run_name or args.config):
        out = Path("runs") / (args.run_name or (rllib.resolve if rllib.is_rllib_config(args.config)
                                                else resolve)(args.config).run_name)
    if out is None:
        p.error("--resume needs --out (the run directory), --run-name or --config (the run in runs/<run_name>)")
    saved = Path(out) / "config.yaml"
    return out, saved.is_file() and rllib.is_rllib_config(saved)


if __name__ == "__main__":
    sys.exit(main())
