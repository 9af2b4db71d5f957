"""The learning curve of a training run: ``python -m arena_env.training.curve runs/<run_name> [--out f.png]``.

Reads ``episodes.csv`` (one line per finished (economy, agent) episode) and draws, per training
scenario, the mean episode return of the episodes finished in each of ``bins`` equal stretches of
timesteps, with a band of +-2 standard errors.  The returns are those of the training policy (its
exploration noise included) on training seeds.  When the run's final evaluation exists
(``leaderboard.csv``), the raw mean returns of ``hold`` and ``oracle-static`` on the evaluation seeds
(the leaderboard's 0 and 1) and of the trained policy's deterministic play are drawn as horizontal
lines, so the curve reads in the leaderboard's unit (with one evaluation scenario, leaderboard.csv's
``all`` rows are that scenario's).  The y-axis then reaches down to two hold-to-oracle gaps below hold,
and always to the latest quarter of the bins; a note counts the earlier bins left below it.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections import defaultdict
from pathlib import Path


EPISODE_FIELDS = ("timesteps", "scenario", "agent", "return", "xp_cost", "rejections", "clamps", "length")
"""The columns of ``episodes.csv``, as train.py writes them (one line per finished episode of a row)."""


def _name(value: str) -> str:
    if not value:
        raise ValueError(value)
    return value


# the columns the curve reads: how each is parsed, and what a bad value was expected to be
_READ = {"timesteps": (int, "an integer"), "scenario": (_name, "a name"), "return": (float, "a number")}


def read_episodes(path: Path) -> list[dict]:
    """The episodes of ``episodes.csv``: ``timesteps`` (an integer), ``scenario`` and ``return`` (a number).
    A header without those columns, or a line whose values are missing or not of those types (a line cut
    short, an edited file), is a ``ValueError`` naming the file, the line and the column."""
    out = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in _READ if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path}: the header has no column {missing[0]!r} (got {reader.fieldnames}); "
                             f"train.py writes {', '.join(EPISODE_FIELDS)}")
        for r in reader:
            row = {}
            for column, (parse, expected) in _READ.items():
                try:
                    row[column] = parse(r.get(column))
                except (TypeError, ValueError):  # None: a line cut short
                    raise ValueError(f"{path}: line {reader.line_num}: {column}: expected {expected}, got "
                                     f"{r.get(column)!r}; correct or remove the line") from None
            out.append(row)
    return out


def references(run_dir: Path, label: str | None, evaluated: list[str] | None = None) -> dict[str, dict[str, float]]:
    """scenario -> {hold, oracle-static, <label>: raw mean return} from the run's ``leaderboard.csv``.
    ``evaluated``: the evaluation's scenarios (``eval.scenarios`` of the run's config); with one,
    leaderboard.csv has only the ``all`` table, whose rows are that scenario's."""
    path = Path(run_dir) / "leaderboard.csv"
    out: dict[str, dict[str, float]] = defaultdict(dict)
    if not path.exists():
        return out
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    scenarios = {r["scenario"] for r in rows if r.get("track") == "solo"}
    one = evaluated[0] if scenarios == {"all"} and evaluated and len(evaluated) == 1 else None
    for r in rows:
        if r.get("track") != "solo" or r.get("raw_mean") in (None, ""):
            continue
        if len(scenarios) > 1 and r["scenario"] == "all":
            continue
        if r["agent"] in ("hold", "oracle-static", label):
            out[one or r["scenario"]][r["agent"]] = float(r["raw_mean"])
    return out


def plot(run_dir: str | Path, out: str | Path | None = None, bins: int = 30) -> Path:
    """Draw ``run_dir``'s learning curve to ``out`` (default ``run_dir/curve.png``); ``ValueError``
    when ``episodes.csv`` has no episode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import yaml

    run_dir = Path(run_dir)
    eps = read_episodes(run_dir / "episodes.csv") if (run_dir / "episodes.csv").exists() else []
    if not eps:
        raise ValueError(f"{run_dir / 'episodes.csv'}: no finished episode to plot")
    cfg_path = run_dir / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text()) if cfg_path.exists() else {}
    label = cfg.get("run_name")
    evaluated = (cfg.get("eval") or {}).get("scenarios")
    refs = references(run_dir, label, [str(x) for x in evaluated] if isinstance(evaluated, list) else None)
    scenarios = sorted({e["scenario"] for e in eps})
    fig, axes = plt.subplots(1, len(scenarios), figsize=(6.4 * len(scenarios), 4.2), squeeze=False)
    t_max = max(e["timesteps"] for e in eps)
    width = max(1, math.ceil(t_max / bins))
    for ax, s in zip(axes[0], scenarios):
        groups = defaultdict(list)
        for e in eps:
            if e["scenario"] == s:
                groups[min((e["timesteps"] - 1) // width, bins - 1)].append(e["return"])
        xs, ms, lo, hi = [], [], [], []
        for b in sorted(groups):
            v = groups[b]
            m = sum(v) / len(v)
            se = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1) / len(v)) if len(v) > 1 else 0.0
            xs.append((b + 0.5) * width)
            ms.append(m)
            lo.append(m - 2 * se)
            hi.append(m + 2 * se)
        ax.fill_between(xs, lo, hi, alpha=0.25, color="C0", linewidth=0)
        ax.plot(xs, ms, color="C0", label="training episodes (mean per bin, +-2 SE)")
        styles = {"hold": ("0.4", "--", "hold (0)"), "oracle-static": ("C3", "--", "static oracle (1)"),
                  label: ("C2", "-", f"{label}, deterministic, evaluation seeds")}
        for name, y in sorted(refs.get(s, {}).items(), key=lambda kv: kv[0] != label):
            color, ls, text = styles[name]
            ax.axhline(y, color=color, linestyle=ls, linewidth=1.2, label=f"{text}: {y:.3f}")
        ys = ms + list(refs.get(s, {}).values())
        if "hold" in refs.get(s, {}) and "oracle-static" in refs.get(s, {}):  # the leaderboard's range in view
            zero, one = refs[s]["hold"], refs[s]["oracle-static"]
            gap = abs(one - zero) or 1.0
            # down to 2 gaps below hold, and always down to the latest bins (the last quarter): the early bins of
            # a long run may fall below, the curve where training ended never does
            recent = lo[-max(1, len(lo) // 4):]
            bottom = min(max(min(lo), zero - 2.0 * gap), min(recent))
            top = max(max(hi), *ys)
            bottom -= 0.05 * (top - bottom or gap)
            ax.set_ylim(bottom, top + 0.15 * gap)
            below = sum(m < bottom for m in ms)
            if below:
                ax.text(0.01, 0.02, f"{below} earlier bin{'s' if below > 1 else ''} below the axis",
                        transform=ax.transAxes, fontsize=7, color="0.4")
        ax.set_title(f"{cfg.get('algo', '')} {label or ''} on {s}".strip())
        ax.set_xlabel("timesteps (rows x steps)")
        ax.set_ylabel("episode return (EUR per enrolled user, lift over control)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    out = Path(out) if out else run_dir / "curve.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path, help="a training run directory (runs/<run_name>)")
    p.add_argument("--out", type=Path, help="image file (default: <run_dir>/curve.png)")
    args = p.parse_args(argv)
    try:
        print(plot(args.run_dir, args.out))
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
