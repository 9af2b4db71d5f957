"""Leaderboards from tournament rows: normalised scores, IQM and means with stratified bootstrap CIs,
probability of improvement over each baseline, win rate against the control, faults and latency.

Normalised score, per scenario: ``(score - R) / (B - R)`` where ``R`` is the mean score of the agent
``random`` on that scenario and ``B`` the best mean among the baselines (agents marked
``baseline``); so 0 = random, 1 = the best baseline.  Without a ``random`` agent in the tournament
the raw scores are ranked instead (and the table says so).  A failed cell counts as missing (NaN)
in the score statistics and as a failure in ``failure_rate``.

Rows are sorted by IQM of the normalised score; a row whose IQM interval overlaps the one of the row
above is marked as a tie (see :func:`arena_env.evaluation.stats.rank_with_ties`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import stats

LIFT_COLUMNS = ("lift_RETENTION_RATE", "lift_SCAN_FREQUENCY", "lift_FEEDBACK_QUALITY")


def _grid(rows: Sequence[dict], agent: str, scenarios: Sequence[str], seeds: Sequence[int], key="score"):
    by = {(r["scenario"], r["seed"]): r for r in rows if r["agent"] == agent}
    g = np.full((len(scenarios), len(seeds)), np.nan)
    for i, s in enumerate(scenarios):
        for j, seed in enumerate(seeds):
            r = by.get((s, seed))
            if r is not None and not r.get("failed") and r.get(key) is not None:
                g[i, j] = float(r[key])
    return g


def build(rows: Sequence[dict], n_boot: int = 2000, seed: int = 0) -> tuple[list[dict], dict]:
    """The leaderboard rows (best first) and facts about the table (``normalised``, scenarios, seeds)."""
    agents = sorted({r["agent"] for r in rows})
    scenarios = sorted({r["scenario"] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    baselines = sorted({r["agent"] for r in rows if r.get("baseline")})
    raw = {a: _grid(rows, a, scenarios, seeds) for a in agents}
    normalised = "random" in raw and bool(baselines)
    if normalised:
        with np.errstate(invalid="ignore"):
            r_mean = np.nanmean(raw["random"], axis=1)
            b_mean = np.nanmax(np.stack([np.nanmean(raw[b], axis=1) for b in baselines]), axis=0)
        scores = {a: stats.normalise(g, r_mean, b_mean) for a, g in raw.items()}
    else:
        scores = raw
    finite = {a: g for a, g in scores.items() if np.isfinite(g).any()}
    table = stats.summarise(finite, n_boot=n_boot, seed=seed) if finite else []
    for a in sorted(set(scores) - set(finite)):  # every cell failed: ranked last, no statistics
        table.append({"agent": a, "mean": math.nan, "mean_lo": math.nan, "mean_hi": math.nan, "iqm": math.nan,
                      "iqm_lo": math.nan, "iqm_hi": math.nan, "n": 0, "tie": False, "rank": len(finite) + 1})
    for row in table:
        a = row["agent"]
        cells = [r for r in rows if r["agent"] == a]
        ok = [r for r in cells if not r.get("failed")]
        row["baseline"] = a in baselines
        row["raw_mean"] = float(np.nanmean(raw[a])) if np.isfinite(raw[a]).any() else math.nan
        row["win_rate_vs_control"] = float(np.mean([r["score"] > 0 for r in ok])) if ok else math.nan
        row["failure_rate"] = 1.0 - len(ok) / max(len(cells), 1)
        row["rejections"] = float(np.mean([r["rejected"] for r in ok])) if ok else math.nan
        row["clamps"] = float(np.mean([r["clamped"] for r in ok])) if ok else math.nan
        row["latency_mean_ms"] = float(np.mean([r["latency_mean_ms"] for r in ok])) if ok else math.nan
        row["latency_p99_ms"] = float(np.max([r["latency_p99_ms"] for r in ok])) if ok else math.nan
        for col in LIFT_COLUMNS:
            vals = [r[col] for r in ok if r.get(col) is not None]
            row[col] = float(np.mean(vals)) if vals else math.nan
            pcol = "p_" + col.removeprefix("lift_")  # share of cells with a significant gain (p < 0.05)
            sig = [r.get(col, 0) > 0 and r.get(pcol) is not None and r[pcol] < 0.05 for r in ok]
            row["sig_gain_" + col.removeprefix("lift_")] = float(np.mean(sig)) if sig else math.nan
        for b in baselines:
            if b == a:
                continue
            try:
                est, lo, hi = stats.probability_of_improvement_ci(
                    raw[a], raw[b], n_boot=n_boot, rng=np.random.default_rng(seed), paired=True)
            except ValueError:
                est = lo = hi = math.nan
            row[f"p_improve_{b}"] = est
            row[f"p_improve_{b}_lo"] = lo
            row[f"p_improve_{b}_hi"] = hi
    facts = {"normalised": normalised, "scenarios": scenarios, "seeds": seeds, "baselines": baselines}
    return table, facts


def _fmt(x, digits=2):
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def markdown(table: Sequence[dict], facts: dict) -> str:
    """The leaderboard as a Markdown document."""
    unit = "normalised score (0 = random, 1 = best baseline)" if facts["normalised"] else "raw score (total reward)"
    lines = [
        "# Leaderboard", "",
        f"Scenarios: {', '.join(facts['scenarios'])}; {len(facts['seeds'])} evaluation seeds; baselines: "
        f"{', '.join(facts['baselines']) or 'none'}.  Scores: {unit}; intervals are 95% stratified bootstrap "
        "CIs over seeds.  `=` marks a row whose IQM interval overlaps the row above (a tie).", "",
    ]
    pcols = [f"P(>{b})" for b in facts["baselines"]]
    head = ["rank", "agent", "IQM [95% CI]", "mean [95% CI]", "raw mean", *pcols, "win vs control",
            "sig. retention gain", "failures", "rejections", "clamps", "latency ms (mean / p99)"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for r in table:
        p = [_fmt(r.get(f"p_improve_{b}")) if r["agent"] != b else "-" for b in facts["baselines"]]
        lines.append("| " + " | ".join([
            ("=" if r["tie"] else "") + str(r["rank"]), r["agent"] + (" (baseline)" if r["baseline"] else ""),
            f"{_fmt(r['iqm'])} [{_fmt(r['iqm_lo'])}, {_fmt(r['iqm_hi'])}]",
            f"{_fmt(r['mean'])} [{_fmt(r['mean_lo'])}, {_fmt(r['mean_hi'])}]", _fmt(r["raw_mean"]), *p,
            _fmt(r["win_rate_vs_control"]), _fmt(r.get("sig_gain_RETENTION_RATE")), _fmt(r["failure_rate"]), _fmt(r["rejections"], 1), _fmt(r["clamps"], 1),
            f"{_fmt(r['latency_mean_ms'], 3)} / {_fmt(r['latency_p99_ms'], 3)}"]) + " |")
    return "\n".join(lines) + "\n"


def write(table: Sequence[dict], facts: dict, out: str | Path) -> None:
    """``leaderboard.md`` and ``leaderboard.csv`` in ``out``."""
    out = Path(out)
    (out / "leaderboard.md").write_text(markdown(table, facts))
    cols = list(dict.fromkeys(k for r in table for k in r))
    with open(out / "leaderboard.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in table:
            w.writerow(r)
