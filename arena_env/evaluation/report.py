"""``report.html``: one self-contained page (inline CSS, plots as embedded PNG) with the leaderboard
table, the agents' normalised scores with their 95% intervals, and per scenario each agent's score
distribution, its lifts over the control, and its cumulative reward (lift net of XP cost) over the
episode."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .leaderboard import _fmt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _plots(table: Sequence[dict], rows: Sequence[dict], facts: dict) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory only
    import matplotlib.pyplot as plt

    out = []
    ok = [r for r in table if math.isfinite(r["iqm"])]
    if ok:
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(ok) + 1.2))
        y = np.arange(len(ok))[::-1]
        for yy, r in zip(y, ok):
            ax.plot([r["iqm_lo"], r["iqm_hi"]], [yy, yy], color="#3b6ea5", lw=3)
            ax.plot([r["iqm"]], [yy], "o", color="#1b3a5c")
        ax.set_yticks(y, [r["agent"] for r in ok])
        ax.axvline(0, color="#999", lw=0.8)
        ax.set_xlabel("IQM of the normalised score, 95% stratified bootstrap CI" if facts["normalised"]
                      else "IQM of the score, 95% stratified bootstrap CI")
        out.append(("Scores with 95% intervals", _png(fig)))
        plt.close(fig)
    agents = [r["agent"] for r in table]
    for scenario in facts["scenarios"]:
        fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * len(agents) + 1.5))
        data = [[r["score"] for r in rows if r["agent"] == a and r["scenario"] == scenario and not r.get("failed")]
                for a in agents]
        axes[0].boxplot([d if d else [np.nan] for d in data], orientation="horizontal", tick_labels=agents)
        axes[0].axvline(0, color="#999", lw=0.8)
        axes[0].set_xlabel("total reward per episode (lift over control, net of XP cost)")
        for m, color in (("lift_RETENTION_RATE", "#3b6ea5"), ("lift_FEEDBACK_QUALITY", "#c0504d")):
            vals = [np.nanmean([r.get(m, np.nan) for r in rows if r["agent"] == a and r["scenario"] == scenario
                                and not r.get("failed")] or [np.nan]) for a in agents]
            axes[1].barh(np.arange(len(agents)) + (0.2 if "RETENTION" in m else -0.2), vals, height=0.4,
                         color=color, label=m.removeprefix("lift_"))
        axes[1].set_yticks(np.arange(len(agents)), agents)
        axes[1].axvline(0, color="#999", lw=0.8)
        axes[1].set_xlabel("lift over the control at the end of the episode (mean over seeds)")
        axes[1].legend(loc="lower right", fontsize=8)
        out.append((f"Scenario {scenario}: scores and lifts", _png(fig)))
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for a in agents:
            series = [np.cumsum(r["step_rewards"]) for r in rows if r["agent"] == a and r["scenario"] == scenario
                      and not r.get("failed") and r.get("step_rewards")]
            if series:
                n = min(len(x) for x in series)
                ax.plot(np.arange(1, n + 1), np.mean([x[:n] for x in series], axis=0), label=a)
        ax.axhline(0, color="#999", lw=0.8)
        ax.set_xlabel("step (day)")
        ax.set_ylabel("cumulative reward, mean over seeds")
        ax.legend(fontsize=8)
        out.append((f"Scenario {scenario}: lift over time", _png(fig)))
        plt.close(fig)
    return out


def write(table: Sequence[dict], rows: Sequence[dict], facts: dict, manifest: dict, out: str | Path) -> Path:
    """Write ``report.html`` in ``out`` and return its path."""
    head = ["rank", "agent", "IQM [95% CI]", "mean [95% CI]", "raw mean", "win vs control", "failures",
            "rejections", "clamps", "latency ms (mean / p99)"]
    body = []
    for r in table:
        cells = [("=" if r["tie"] else "") + str(r["rank"]), r["agent"] + (" (baseline)" if r.get("baseline") else ""),
                 f"{_fmt(r['iqm'])} [{_fmt(r['iqm_lo'])}, {_fmt(r['iqm_hi'])}]",
                 f"{_fmt(r['mean'])} [{_fmt(r['mean_lo'])}, {_fmt(r['mean_hi'])}]", _fmt(r.get("raw_mean")),
                 _fmt(r.get("win_rate_vs_control")), _fmt(r.get("failure_rate")), _fmt(r.get("rejections"), 1),
                 _fmt(r.get("clamps"), 1), f"{_fmt(r.get('latency_mean_ms'), 3)} / {_fmt(r.get('latency_p99_ms'), 3)}"]
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    figures = "".join(f'<figure><img alt="{html.escape(t)}" src="{src}"><figcaption>{html.escape(t)}</figcaption>'
                      f"</figure>" for t, src in _plots(table, rows, facts))
    unit = "normalised score (0 = random, 1 = best baseline)" if facts["normalised"] else "raw score"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>arena leaderboard</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
td:nth-child(2), th:nth-child(2) {{ text-align: left; }} th {{ background: #eef2f7; }}
figure {{ margin: 1.5em 0; }} img {{ max-width: 100%; }} .meta {{ color: #666; font-size: 0.9em; }}
</style></head><body>
<h1>Leaderboard</h1>
<p>Scenarios: {html.escape(", ".join(facts["scenarios"]))}; {len(facts["seeds"])} evaluation seeds; baselines:
{html.escape(", ".join(facts["baselines"]) or "none")}. Scores: {unit}; intervals are 95% stratified bootstrap CIs;
<b>=</b> marks a row whose IQM interval overlaps the row above.</p>
<table id="leaderboard"><thead><tr>{"".join(f"<th>{html.escape(h)}</th>" for h in head)}</tr></thead>
<tbody>{"".join(body)}</tbody></table>
{figures}
<p class="meta">git commit {html.escape(str(manifest.get("git_commit")))}, tournament
{html.escape(str(manifest.get("config_hash")))}, Python {html.escape(str(manifest.get("python")))}.</p>
</body></html>
"""
    path = Path(out) / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
