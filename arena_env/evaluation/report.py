"""``report.html``: one self-contained page (inline CSS, plots as embedded PNG, nothing loaded from
elsewhere) with every leaderboard table and matplotlib plots.

Solo track: the solo tables (every scenario, then one per scenario), the agents' normalised scores
with their 95% intervals, and per scenario each agent's score distribution and lifts over the control,
its cumulative reward (lift net of XP cost) over the episode (lift over time), and the trajectories of
the six metrics of each agent's variant next to the control's (means over seeds).
Head-to-head track: the ratings table, the ratings with their intervals, and the pairwise win matrix
as a table and a heat map.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .leaderboard import (ALL, H2H_HEAD, TIE_RULE, Leaderboard, h2h_cells, matrix_cells, solo_cells, solo_head,
                          solo_intro, track_of)
from .tournament import SOLO


def _mean_of(values) -> float:
    """The mean of the finite numbers among ``values``; NaN (without NumPy's warning) when there are none,
    e.g. for an agent that forfeited every cell."""
    xs = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(xs)) if xs else float("nan")

def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _legend_outside(ax) -> None:
    """The axes' legend to the right of its plotting area, where it hides no data (none without labelled lines)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8)


def _interval_plot(plt, names, est, lo, hi, xlabel, ref=None):
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.2))
    y = np.arange(len(names))[::-1]
    for yy, e, a, b in zip(y, est, lo, hi):
        ax.plot([a, b], [yy, yy], color="#3b6ea5", lw=3)
        ax.plot([e], [yy], "o", color="#1b3a5c")
    ax.set_yticks(y, names)
    for r in (() if ref is None else ref if isinstance(ref, tuple) else (ref,)):
        ax.axvline(r, color="#999", lw=0.8)
    ax.set_xlabel(xlabel)
    return fig


def _mean_series(series: Sequence[Sequence[float]]) -> np.ndarray | None:
    series = [np.asarray(x, dtype=float) for x in series if x is not None and len(x)]
    if not series:
        return None
    n = min(len(x) for x in series)
    return np.mean([x[:n] for x in series], axis=0)


def _solo_plots(plt, lb: Leaderboard, rows: Sequence[dict]) -> list[tuple[str, str]]:
    from matplotlib.ticker import MaxNLocator

    from arena_env.economy.scenario import METRIC_NAMES

    facts = lb.facts
    out = []
    ok = [r for r in lb.table if math.isfinite(r["iqm"])]
    if ok:
        fig = _interval_plot(plt, [r["agent"] for r in ok], [r["iqm"] for r in ok], [r["iqm_lo"] for r in ok],
                             [r["iqm_hi"] for r in ok],
                             "IQM of the normalised score (0 = hold, 1 = static oracle), 95% stratified bootstrap CI"
                             if facts["normalised"] else "IQM of the score, 95% stratified bootstrap CI",
                             ref=(0, 1) if facts["normalised"] else 0)
        out.append(("Solo: scores with 95% intervals", _png(fig)))
        plt.close(fig)
    agents = [r["agent"] for r in lb.table]
    for scenario in facts["scenarios"]:
        mine = [r for r in rows if r["scenario"] == scenario and not r.get("failed")]
        if not mine:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * len(agents) + 1.5))
        y = np.arange(len(agents))[::-1]  # the table's order, top to bottom, in both panels
        data = [[r["score"] for r in mine if r["agent"] == a] for a in agents]
        axes[0].boxplot([d if d else [np.nan] for d in data], positions=y, orientation="horizontal", tick_labels=agents)
        axes[0].axvline(0, color="#999", lw=0.8)
        axes[0].set_xlabel("total reward per episode (lift over control, net of XP cost)")
        for m, color in (("lift_RETENTION_RATE", "#3b6ea5"), ("lift_FEEDBACK_QUALITY", "#c0504d")):
            vals = [_mean_of([r.get(m) for r in mine if r["agent"] == a]) for a in agents]
            axes[1].barh(y + (0.2 if "RETENTION" in m else -0.2), vals, height=0.4,
                         color=color, label=m.removeprefix("lift_"))
        axes[1].set_yticks(y, agents)
        axes[1].axvline(0, color="#999", lw=0.8)
        axes[1].set_xlabel("lift over the control at the end of the episode (mean over seeds)")
        axes[1].xaxis.set_major_locator(MaxNLocator(5))  # tick labels that do not run together
        _legend_outside(axes[1])  # not over the bars
        fig.tight_layout()  # the right panel's agent names clear of the left panel
        out.append((f"Scenario {scenario}: scores and lifts", _png(fig)))
        plt.close(fig)

        fig, ax = plt.subplots(figsize=(7, 3.5))
        for a in agents:
            mean = _mean_series([np.cumsum(r["step_rewards"]) for r in mine if r["agent"] == a
                                 and r.get("step_rewards")])
            if mean is not None:
                ax.plot(np.arange(1, len(mean) + 1), mean, label=a)
        ax.axhline(0, color="#999", lw=0.8)
        ax.set_xlabel("step")
        ax.set_ylabel("cumulative reward, mean over seeds")
        _legend_outside(ax)  # not over the curves' ends
        out.append((f"Scenario {scenario}: lift over time", _png(fig)))
        plt.close(fig)

        if any(r.get(f"traj_{METRIC_NAMES[0]}") for r in mine):
            fig, axes = plt.subplots(2, 3, figsize=(13, 6.5))
            for ax, m in zip(axes.ravel(), METRIC_NAMES):
                control = _mean_series([r.get(f"control_{m}") for r in mine])
                if control is not None:
                    ax.plot(np.arange(1, len(control) + 1), control, color="black", ls="--", lw=1.5, label="control")
                for a in agents:
                    mean = _mean_series([r.get(f"traj_{m}") for r in mine if r["agent"] == a])
                    if mean is not None:
                        ax.plot(np.arange(1, len(mean) + 1), mean, lw=1, label=a)
                ax.set_title(m, fontsize=9)
                ax.set_xlabel("step", fontsize=8)
                ax.tick_params(labelsize=7)
            fig.tight_layout()
            handles, labels = axes[0, 0].get_legend_handles_labels()
            fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)  # outside the panels
            out.append((f"Scenario {scenario}: metric trajectories per variant (each agent's variant and the "
                        "control, mean over seeds)", _png(fig)))
            plt.close(fig)
    return out


def _h2h_plots(plt, lb: Leaderboard) -> list[tuple[str, str]]:
    out = []
    t = lb.ratings
    fig = _interval_plot(plt, [r["agent"] for r in t], [r["rating"] for r in t], [r["rating_lo"] for r in t],
                         [r["rating_hi"] for r in t], "Bradley-Terry rating (Elo scale), 95% stratified bootstrap CI",
                         ref=1500)
    out.append(("Head-to-head: ratings with 95% intervals", _png(fig)))
    plt.close(fig)
    agents = lb.win_matrix["agents"]
    share = np.array(lb.win_matrix["share"], dtype=float)
    fig, ax = plt.subplots(figsize=(1.0 * len(agents) + 2.5, 0.8 * len(agents) + 1.5))
    im = ax.imshow(share, vmin=0, vmax=1, cmap="RdBu")
    for i in range(len(agents)):
        for j in range(len(agents)):
            if np.isfinite(share[i, j]):
                ax.text(j, i, f"{share[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if abs(share[i, j] - 0.5) > 0.3 else "black")  # legible on the dark ends
    ax.set_xticks(range(len(agents)), agents, rotation=45, ha="right")
    ax.set_yticks(range(len(agents)), agents)
    ax.set_xlabel("opponent")
    ax.set_ylabel("agent (row)")
    fig.colorbar(im, ax=ax, label="share of meetings won by the row agent")
    out.append(("Head-to-head: pairwise win matrix", _png(fig)))
    plt.close(fig)
    return out


def _html_table(head: Sequence[str], rows: Sequence[Sequence[str]], table_id: str) -> str:
    return (f'<table id="{table_id}"><thead><tr>{"".join(f"<th>{html.escape(h)}</th>" for h in head)}</tr></thead>'
            "<tbody>" + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
            + "</tbody></table>")


def _inline(text: str) -> str:
    """Plain text with Markdown backticks as HTML (escaped, `x` -> <code>x</code>)."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if k % 2 else p for k, p in enumerate(parts))


def _figures(plots) -> str:
    return "".join(f'<figure><img alt="{html.escape(t)}" src="{src}"><figcaption>{html.escape(t)}</figcaption>'
                   f"</figure>" for t, src in plots)


def write(lb: Leaderboard, rows: Sequence[dict], manifest: dict, out: str | Path) -> Path:
    """Write ``report.html`` in ``out`` and return its path."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory only
    import matplotlib.pyplot as plt

    facts = lb.facts
    parts = []
    if lb.solo:
        parts.append("<h2>Solo track</h2>" + "".join(f"<p>{_inline(p)}</p>" for p in solo_intro(facts)))
        parts += [f"<p class=\"note\">Note: {html.escape(n)}.</p>" for n in facts["notes"]]
        for name, table in lb.solo.items():
            if len(lb.solo) > 1:
                parts.append(f"<h3>{'All scenarios' if name == ALL else 'Scenario ' + html.escape(name)}</h3>")
            parts.append(_html_table(solo_head(facts), [solo_cells(r, facts) for r in table],
                                     "leaderboard" if name == ALL else f"leaderboard-{name}"))
        parts.append(_figures(_solo_plots(plt, lb, [r for r in rows if track_of(r) == SOLO])))
    if lb.h2h:
        parts.append(f"""<h2>Head-to-head track</h2>
<p>{facts["h2h_matches"]} matches on {html.escape(", ".join(facts["h2h_scenarios"]))}: agents share one experiment
as competing variants. Rating: Bradley-Terry fit of the pairwise results on the Elo scale, with 95% stratified block
bootstrap CIs; openskill: Plackett-Luce mu &plusmn; sigma. {_inline(TIE_RULE)}.</p>""")
        parts += [f"<p class=\"note\">Note: {html.escape(n)}.</p>" for n in facts["h2h_notes"]]
        for name, table in lb.h2h.items():
            if len(lb.h2h) > 1:
                parts.append(f"<h3>{'All scenarios' if name == ALL else 'Scenario ' + html.escape(name)}</h3>")
            parts.append(_html_table(H2H_HEAD, [h2h_cells(r) for r in table],
                                     "head-to-head" if name == ALL else f"head-to-head-{name}"))
        head, mrows = matrix_cells(lb.win_matrix)
        parts.append("<p>Pairwise win matrix (every scenario): share of meetings the row agent won (ties 1/2), meetings in "
                     "brackets.</p>" + _html_table(head, mrows, "win-matrix"))
        parts.append(_figures(_h2h_plots(plt, lb)))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>arena leaderboard</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px;
text-align: right; }} td:nth-child(2), th:nth-child(2) {{ text-align: left; }} th {{ background: #eef2f7; }}
#win-matrix td:first-child {{ text-align: left; }}
figure {{ margin: 1.5em 0; }} img {{ max-width: 100%; }} .meta {{ color: #666; font-size: 0.9em; }}
.note {{ color: #8a5a00; }}
</style></head><body>
<h1>Leaderboard</h1>
{"".join(parts)}
<p class="meta">git commit {html.escape(str(manifest.get("git_commit")))}, tournament
{html.escape(str(manifest.get("config_hash")))}, Python {html.escape(str(manifest.get("python")))}.</p>
</body></html>
"""
    path = Path(out) / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
