"""Leaderboards from tournament rows.

:func:`build` turns the rows of ``results.parquet`` into a :class:`Leaderboard`: the solo track's
tables (all scenarios together, and one per scenario) and the head-to-head track's ratings and
pairwise win matrix.

Solo track
    Normalised score, per scenario: ``(score - H) / (O - H)`` where ``H`` is the mean score of the
    ``hold`` row (the defaults) and ``O`` the mean score of the ``oracle-static`` row (the scenario's
    best fixed config, found by the economy's search on training seeds: :mod:`.oracle`); so 0 = hold,
    1 = the static oracle, above 1 = better than any fixed config.  The tournament adds both as
    reference rows.  No silent fallback: without them, or where ``O <= H`` on a scenario, the table
    ranks raw scores and a note says why; where the oracle's gain over hold is not significant a note
    says the unit is noisy.  Raw returns keep their own column (mean and CI).  A failed cell counts as
    missing (NaN) in the score statistics and as a failure in ``failure_rate``.  Mean and IQM with
    95% stratified bootstrap CIs; probability of improvement over hold, the oracle and each baseline
    as rliable defines it (unpaired: per-scenario Mann-Whitney over runs, averaged over scenarios,
    stratified bootstrap CI); the paired per-seed win share against hold as its own column; win rate
    against the control, lifts and significant gains, guardrail rejections and clamps, failure rate,
    decision latency.  Rows are sorted by IQM of the normalised score; a row whose IQM interval
    overlaps the interval of its tie group's first row is tied with it (ties do not chain; see
    :func:`arena_env.evaluation.stats.rank_with_ties`).

Head-to-head track (one table for every scenario together and, with several scenarios, one per scenario)
    Every match ranks its agents by score (a failed agent loses to every agent that did not fail).
    Ratings: a Bradley-Terry fit of the pairwise results, shown on the Elo scale
    (``1500 + 400 log10(strength)``, strengths with geometric mean 1), with 95% stratified block
    bootstrap intervals (seeds resampled within each scenario, every match of a drawn seed kept) and
    ties marked as in the solo track; and openskill's Plackett-Luce ratings (``mu``, ``sigma`` and the
    conservative ``ordinal`` = mu - 3 sigma); openskill rates matches one after the other, so its
    ratings are averaged over 100 seeded random orders of the matches and do not depend on the order
    in which matches finished.  The pairwise win matrix gives, for each pair, the share of their meetings the row agent
    won (ties 1/2) and the number of meetings.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import ratings, stats
from .oracle import HOLD_LABEL, ORACLE_LABEL
from .tournament import HEAD_TO_HEAD, SOLO

LIFT_COLUMNS = ("lift_RETENTION_RATE", "lift_SCAN_FREQUENCY", "lift_FEEDBACK_QUALITY")
ELO_SCALE = 400.0 / math.log(10.0)
ALL = "all"


@dataclass
class Leaderboard:
    """Every table of a run.  ``solo[ALL]`` aggregates every scenario, ``solo[scenario]`` one scenario
    (present with two scenarios or more); ``h2h`` likewise for the head-to-head ratings tables;
    ``win_matrix`` has the pairwise results of every head-to-head match (``agents``, ``share`` and
    ``meetings`` as nested lists, rows and columns in ``agents`` order)."""

    solo: dict[str, list[dict]] = field(default_factory=dict)
    h2h: dict[str, list[dict]] = field(default_factory=dict)
    win_matrix: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)

    @property
    def table(self) -> list[dict]:
        """The main solo table (every scenario)."""
        return self.solo.get(ALL, [])

    @property
    def ratings(self) -> list[dict]:
        """The main head-to-head table (every scenario)."""
        return self.h2h.get(ALL, [])


def track_of(row) -> str:
    return row.get("track") or SOLO


def _grid(rows: Sequence[dict], agent: str, scenarios: Sequence[str], seeds: Sequence[int], key="score"):
    by = {(r["scenario"], r["seed"]): r for r in rows if r["agent"] == agent}
    g = np.full((len(scenarios), len(seeds)), np.nan)
    for i, s in enumerate(scenarios):
        for j, seed in enumerate(seeds):
            r = by.get((s, seed))
            if r is not None and not r.get("failed") and r.get(key) is not None:
                g[i, j] = float(r[key])
    return g


def cell_columns(cells: Sequence[dict]) -> dict:
    """The columns both tracks compute from one agent's rows: win rate against the control, failure
    rate, mean guardrail rejections and clamps per episode, decision latency (mean, worst p99)."""
    ok = [r for r in cells if not r.get("failed")]

    def mean(key):
        return float(np.mean([r[key] for r in ok])) if ok else math.nan

    return {"win_rate_vs_control": float(np.mean([r["score"] > 0 for r in ok])) if ok else math.nan,
            "failure_rate": 1.0 - len(ok) / max(len(cells), 1), "rejections": mean("rejected"),
            "clamps": mean("clamped"), "latency_mean_ms": mean("latency_mean_ms"),
            "latency_p99_ms": float(np.max([r["latency_p99_ms"] for r in ok])) if ok else math.nan}


def solo_table(rows: Sequence[dict], n_boot: int = 2000, seed: int = 0) -> tuple[list[dict], dict]:
    """The solo leaderboard of ``rows`` (solo rows of any scenarios) and facts about it."""
    agents = sorted({r["agent"] for r in rows})
    scenarios = sorted({r["scenario"] for r in rows})
    seeds = sorted({r["seed"] for r in rows})
    baselines = sorted({r["agent"] for r in rows if r.get("baseline") or r.get("reference")})
    raw = {a: _grid(rows, a, scenarios, seeds) for a in agents}
    zero, one = references(rows)
    notes: list[str] = []
    units: dict[str, dict] = {}
    normalised = zero is not None and one is not None
    if not normalised:
        notes.append(f"raw scores: no {'hold' if zero is None else ORACLE_LABEL} row to fix the unit "
                     "(0 = hold, 1 = the static oracle; a tournament with `oracle: false` has none)")
    else:
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a reference that failed on a whole scenario: NaN
            z_mean, o_mean = np.nanmean(raw[zero], axis=1), np.nanmean(raw[one], axis=1)
        for k, sc in enumerate(scenarios):
            d = raw[one][k] - raw[zero][k]
            d = d[np.isfinite(d)]
            lo = hi = math.nan
            if d.size >= 2:
                lo, hi = stats.stratified_bootstrap_ci(d, np.mean, n_boot, rng=np.random.default_rng(seed))[1:]
            units[sc] = {"zero": float(z_mean[k]), "one": float(o_mean[k]), "gap": float(o_mean[k] - z_mean[k]),
                         "gap_lo": float(lo), "gap_hi": float(hi)}
        bad = [sc for sc, u in units.items() if not (math.isfinite(u["gap"]) and u["gap"] > 0)]
        if bad:
            normalised = False
            notes.append("raw scores: the unit (0 = hold, 1 = the static oracle) is undefined on "
                         + ", ".join(f"{sc} (oracle - hold = {_fmt(units[sc]['gap'], 3)})" for sc in bad)
                         + ": the static oracle does not beat hold there")
        noisy = [sc for sc, u in units.items() if sc not in bad and not u["gap_lo"] > 0]
        if noisy:
            notes.append("the unit is noisy on " + ", ".join(
                f"{sc} (oracle - hold = {_fmt(units[sc]['gap'], 3)} [{_fmt(units[sc]['gap_lo'], 3)}, "
                f"{_fmt(units[sc]['gap_hi'], 3)}])" for sc in noisy)
                + ": the static oracle's gain over hold is not significant, so normalised scores there are "
                  "ratios of noisy figures")
    scores = ({a: stats.normalise(g, z_mean, o_mean) for a, g in raw.items()} if normalised else raw)
    finite = {a: g for a, g in scores.items() if np.isfinite(g).any()}
    table = stats.summarise(finite, n_boot=n_boot, seed=seed) if finite else []
    for a in sorted(set(scores) - set(finite)):  # every cell failed: all share the last rank, no statistics
        table.append({"agent": a, "mean": math.nan, "mean_lo": math.nan, "mean_hi": math.nan, "iqm": math.nan,
                      "iqm_lo": math.nan, "iqm_hi": math.nan, "n": 0, "tie": False, "rank": len(finite) + 1})
    compare = [b for b in (zero, one) if b is not None] + [b for b in baselines if b not in (zero, one)]
    for row in table:
        a = row["agent"]
        cells = [r for r in rows if r["agent"] == a]
        ok = [r for r in cells if not r.get("failed")]
        row["baseline"] = any(r.get("baseline") for r in cells)
        row["reference"] = any(r.get("reference") for r in cells)
        if np.isfinite(raw[a]).any():
            row["raw_mean"], row["raw_mean_lo"], row["raw_mean_hi"] = stats.stratified_bootstrap_ci(
                raw[a], np.mean, n_boot, rng=np.random.default_rng(seed))
            if np.any(np.count_nonzero(np.isfinite(raw[a]), axis=1) == 1):
                row["raw_mean_lo"] = row["raw_mean_hi"] = math.nan
        else:
            row["raw_mean"] = row["raw_mean_lo"] = row["raw_mean_hi"] = math.nan
        row.update(cell_columns(cells))
        for col in LIFT_COLUMNS:
            vals = [r[col] for r in ok if r.get(col) is not None]
            row[col] = float(np.mean(vals)) if vals else math.nan
            pcol = "p_" + col.removeprefix("lift_")  # share of cells with a significant gain (p < 0.05)
            sig = [r.get(col, 0) > 0 and r.get(pcol) is not None and r[pcol] < 0.05 for r in ok]
            row["sig_gain_" + col.removeprefix("lift_")] = float(np.mean(sig)) if sig else math.nan
        for b in compare:
            if b == a:
                continue
            for paired, name in ((False, f"p_improve_{b}"), (True, f"seed_wins_{b}")):
                if paired and b != zero:
                    continue  # the paired per-seed win share: against hold only
                try:
                    est, lo, hi = stats.probability_of_improvement_ci(
                        raw[a], raw[b], n_boot=n_boot, rng=np.random.default_rng(seed), paired=paired)
                except ValueError:
                    est = lo = hi = math.nan
                row[name], row[name + "_lo"], row[name + "_hi"] = est, lo, hi
    thin = [r["agent"] for r in table if r["n"] and not np.isfinite(r["iqm_lo"])]
    if thin:
        notes.append(f"no interval for {', '.join(thin)}: fewer than 2 results on a scenario (one seed, or "
                     "failures); such rows are not tied with any row")
    facts = {"normalised": normalised, "scenarios": scenarios, "seeds": seeds, "baselines": baselines,
             "compare": compare, "zero": zero, "one": one, "units": units, "notes": notes}
    return table, facts


def references(rows: Sequence[dict]) -> tuple[str | None, str | None]:
    """The labels of the rows that fix the unit: 0 = the ``hold`` row (the agent labelled ``hold`` if
    it is the registered ``hold``, else an agent registered as ``hold``), 1 = the
    ``oracle-static`` row; None where there is none.  Several agents registered as ``hold`` under other
    labels: the first label in sorted order."""
    kinds: dict[str, str | None] = {r["agent"]: r.get("kind") for r in rows}
    zero = None
    if HOLD_LABEL in kinds and kinds[HOLD_LABEL] in (None, "hold"):
        zero = HOLD_LABEL
    else:  # several copies of hold play the same policy: the first label is as good as any
        holds = sorted(a for a, k in kinds.items() if k == "hold")
        zero = holds[0] if holds else None
    one = ORACLE_LABEL if ORACLE_LABEL in kinds else None
    return zero, one


def matches_of(rows: Sequence[dict]) -> list[ratings.Match]:
    """The head-to-head matches of ``rows``, in the fixed order (scenario, seed, match)."""
    by: dict[tuple, list[dict]] = {}
    for r in rows:
        by.setdefault((r["scenario"], r["seed"], r["match"], r.get("config") or ""), []).append(r)
    out = []
    for (scenario, seed, _, _), group in sorted(by.items()):
        group = sorted(group, key=lambda r: r["seat"])
        out.append(ratings.Match(scenario, int(seed), tuple(r["agent"] for r in group),
                                 tuple(math.nan if r.get("failed") else float(r["score"]) for r in group)))
    return out


def h2h_table(rows: Sequence[dict], n_boot: int = 2000, seed: int = 0) -> tuple[list[dict], dict]:
    """The head-to-head ratings table of ``rows`` (head-to-head rows) and its pairwise win matrix."""
    agents = sorted({r["agent"] for r in rows})
    matches = matches_of(rows)
    est, lo, hi = ratings.bradley_terry_ci(matches, agents, n_boot=n_boot, rng=np.random.default_rng(seed))
    skill = ratings.openskill_ratings_averaged(matches, agents, orders=100, seed=seed)
    wins, meetings = ratings.pairwise(matches, agents)
    notes = []
    blocks: dict[str, set] = {}
    for m in matches:
        blocks.setdefault(m.stratum, set()).add(m.block)
    if min(len(b) for b in blocks.values()) < 2:
        lo = np.full_like(lo, np.nan)
        hi = np.full_like(hi, np.nan)
        notes.append("no rating intervals: a scenario has fewer than 2 seeds")
    groups = ratings.connected_components(meetings)
    if len(set(groups.tolist())) > 1:
        notes.append("some agents never met, even through others: ratings compare only within a group "
                     "(column `group`)")
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(meetings > 0, wins / np.maximum(meetings, 1), np.nan)
    table = []
    for i, a in enumerate(agents):
        mine = [r for r in rows if r["agent"] == a]
        ok = [r for r in mine if not r.get("failed")]
        places = []
        for m in matches:
            if a in m.agents:
                j = m.agents.index(a)
                mine_s = -math.inf if math.isnan(m.scores[j]) else m.scores[j]
                others = [-math.inf if math.isnan(s) else s for k, s in enumerate(m.scores) if k != j]
                places.append(1 + sum(s > mine_s for s in others) + 0.5 * sum(s == mine_s for s in others))
        mu, sigma, ordinal = skill[a]
        table.append({
            "agent": a, "baseline": any(r.get("baseline") for r in mine), "group": int(groups[i]) + 1,
            "n_groups": len(set(groups.tolist())),
            "rating": 1500 + ELO_SCALE * est[i], "rating_lo": 1500 + ELO_SCALE * lo[i],
            "rating_hi": 1500 + ELO_SCALE * hi[i], "mu": mu, "sigma": sigma, "ordinal": ordinal,
            "matches": len(places), "mean_place": float(np.mean(places)) if places else math.nan,
            "first_places": float(np.mean([p == 1 for p in places])) if places else math.nan,
            "mean_score": float(np.mean([r["score"] for r in ok])) if ok else math.nan,
            **cell_columns(mine),
        })
    order, groups = stats.rank_with_ties([r["rating"] for r in table], [r["rating_lo"] for r in table],
                                         [r["rating_hi"] for r in table])
    out = []
    for group in groups:  # competition ranking: a tie group shares the rank of its first row
        first = len(out) + 1
        out += [{**table[k], "tie": j > 0, "rank": first} for j, k in enumerate(group)]
    matrix = {"agents": agents, "share": share.tolist(), "meetings": meetings.astype(int).tolist(), "notes": notes}
    return out, matrix


def check_unique(rows: Sequence[dict]) -> None:
    """Raise ``ValueError`` if two rows are results of the same agent in the same cell played with
    different settings (a label reused for another agent spec in a results store that accumulated
    several tournaments): ranking both would mix them up."""
    seen: dict[tuple, object] = {}
    for r in rows:
        key = (track_of(r), r.get("match") or r["agent"], r["scenario"], r["seed"], r.get("seat") or 0)
        if key in seen and seen[key] != r.get("config"):
            raise ValueError(
                f"the results hold two different results of {r['agent']!r} on {r['scenario']} seed {r['seed']} "
                f"({key[0]}, {key[1]}; cell digests {seen[key]} and {r.get('config')}): the label was reused with "
                "other settings. Give the agents distinct labels, or re-rank one tournament with "
                "--leaderboard-only --config FILE")
        seen[key] = r.get("config")


def build(rows: Sequence[dict], n_boot: int = 2000, seed: int = 0) -> Leaderboard:
    """Every table of ``rows`` (see the module docstring); ``ValueError`` from :func:`check_unique`."""
    check_unique(rows)
    solo = [r for r in rows if track_of(r) == SOLO]
    h2h = [r for r in rows if track_of(r) == HEAD_TO_HEAD]
    lb = Leaderboard()
    scenarios = sorted({r["scenario"] for r in rows})
    facts = {"scenarios": scenarios, "seeds": sorted({r["seed"] for r in rows}),
             "tracks": [t for t, part in ((SOLO, solo), (HEAD_TO_HEAD, h2h)) if part]}
    if solo:
        lb.solo[ALL], f = solo_table(solo, n_boot, seed)
        facts.update(f)
        solo_scenarios = f["scenarios"]
        if len(solo_scenarios) > 1:
            for s in solo_scenarios:
                lb.solo[s], _ = solo_table([r for r in solo if r["scenario"] == s], n_boot, seed)
    else:
        facts.update(normalised=False, baselines=sorted({r["agent"] for r in rows if r.get("baseline")}), notes=[])
    if h2h:
        lb.h2h[ALL], lb.win_matrix = h2h_table(h2h, n_boot, seed)
        facts["h2h_notes"] = lb.win_matrix["notes"]
        if len({r["scenario"] for r in h2h}) > 1:
            for s in sorted({r["scenario"] for r in h2h}):
                lb.h2h[s], _ = h2h_table([r for r in h2h if r["scenario"] == s], n_boot, seed)
        facts["h2h_matches"] = len(matches_of(h2h))
        facts["h2h_scenarios"] = sorted({r["scenario"] for r in h2h})
    lb.facts = facts
    return lb


def _fmt(x, digits=2):
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


SOLO_HEAD = ("rank", "agent", "IQM [95% CI]", "mean [95% CI]", "raw mean [95% CI]")
SOLO_TAIL = ("win vs control", "sig. retention gain", "failures", "rejections", "clamps", "latency ms (mean / worst p99)")
H2H_HEAD = ("rank", "agent", "rating [95% CI]", "openskill mu ± sigma", "matches", "mean place", "first places",
            "mean score", "win vs control", "failures", "rejections", "clamps", "latency ms (mean / worst p99)")
TIE_RULE = ("`=` marks a row tied with the first row of its group (its leader): their 95% intervals overlap; "
            "each row is compared with the leader, not with the row above, so ties do not chain, and a row "
            "without an interval is never tied (agents that forfeited every cell share the last rank)")


def solo_head(facts: dict) -> list[str]:
    """The solo table's header: ``SOLO_HEAD``, ``P(>b)`` per comparison row, ``seed wins vs hold``, ``SOLO_TAIL``."""
    wins = [f"seed wins vs {facts['zero']}"] if facts.get("zero") else []
    return [*SOLO_HEAD, *(f"P(>{b})" for b in facts["compare"]), *wins, *SOLO_TAIL]


def solo_cells(r: dict, facts: dict) -> list[str]:
    """The cells of a solo table row, in the order of :func:`solo_head`."""
    p = [_fmt(r.get(f"p_improve_{b}")) if r["agent"] != b else "-" for b in facts["compare"]]
    zero = facts.get("zero")
    wins = [_fmt(r.get(f"seed_wins_{zero}")) if r["agent"] != zero else "-"] if zero else []
    mark = " (reference)" if r.get("reference") else " (baseline)" if r.get("baseline") else ""
    return [("=" if r["tie"] else "") + str(r["rank"]), r["agent"] + mark,
            f"{_fmt(r['iqm'])} [{_fmt(r['iqm_lo'])}, {_fmt(r['iqm_hi'])}]",
            f"{_fmt(r['mean'])} [{_fmt(r['mean_lo'])}, {_fmt(r['mean_hi'])}]",
            f"{_fmt(r.get('raw_mean'), 3)} [{_fmt(r.get('raw_mean_lo'), 3)}, {_fmt(r.get('raw_mean_hi'), 3)}]", *p, *wins,
            _fmt(r.get("win_rate_vs_control")), _fmt(r.get("sig_gain_RETENTION_RATE")), _fmt(r.get("failure_rate")),
            _fmt(r.get("rejections"), 1), _fmt(r.get("clamps"), 1),
            f"{_fmt(r.get('latency_mean_ms'), 3)} / {_fmt(r.get('latency_p99_ms'), 3)}"]


def solo_intro(facts: dict) -> list[str]:
    """The paragraphs above the solo tables (plain text with Markdown backticks): what the scores are,
    the unit per scenario, the tie rule, the comparison columns."""
    if facts["normalised"]:
        unit = (f"normalised score per scenario, 0 = `{facts['zero']}` (the defaults), 1 = `{facts['one']}` (the "
                "static oracle: the best fixed config found by the economy's search on training seeds, disjoint "
                "from the evaluation seeds); above 1 = better than any fixed config")
    else:
        unit = "raw score (the episode return)"
    out = [f"Solo track. Scenarios: {', '.join(facts['scenarios'])}; {len(facts['seeds'])} evaluation seeds; "
           f"baselines and references: {', '.join(facts['baselines']) or 'none'}.  Scores: {unit}.  Intervals are "
           "95% stratified bootstrap CIs over seeds; `raw mean` is the episode return (per enrolled user, in the "
           "scenario's objective unit) with its CI.  " + TIE_RULE + "."]
    if facts.get("units"):
        out.append("Unit per scenario (raw mean return): " + "; ".join(
            f"{sc}: hold {_fmt(u['zero'], 3)}, oracle {_fmt(u['one'], 3)}, oracle - hold {_fmt(u['gap'], 3)} "
            f"[{_fmt(u['gap_lo'], 3)}, {_fmt(u['gap_hi'], 3)}]" for sc, u in facts["units"].items()) + ".")
    cols = "`P(>X)`: probability of improvement over X as rliable defines it (per scenario the Mann-Whitney share of " \
           "(run, run) pairs this agent wins, ties 1/2, averaged over scenarios)"
    if facts.get("zero"):
        cols += f"; `seed wins vs {facts['zero']}`: the paired share of evaluation seeds on which this agent beats " \
                f"{facts['zero']} (same population, common random numbers)"
    out.append(cols + ".")
    return out


def h2h_cells(r: dict) -> list[str]:
    """The cells of a head-to-head table row, in the order of ``H2H_HEAD``."""
    name = r["agent"] + (" (baseline)" if r.get("baseline") else "")
    if r.get("n_groups", 1) > 1:
        name += f" [group {r['group']}]"
    return [("=" if r["tie"] else "") + str(r["rank"]), name,
            f"{_fmt(r['rating'], 0)} [{_fmt(r['rating_lo'], 0)}, {_fmt(r['rating_hi'], 0)}]",
            f"{_fmt(r['mu'], 1)} ± {_fmt(r['sigma'], 1)}", str(r["matches"]), _fmt(r["mean_place"]),
            _fmt(r["first_places"]), _fmt(r["mean_score"]), _fmt(r["win_rate_vs_control"]), _fmt(r["failure_rate"]),
            _fmt(r["rejections"], 1), _fmt(r["clamps"], 1),
            f"{_fmt(r['latency_mean_ms'], 3)} / {_fmt(r['latency_p99_ms'], 3)}"]


def matrix_cells(matrix: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the pairwise win matrix: ``share (meetings)`` per pair."""
    agents = matrix["agents"]
    rows = []
    for i, a in enumerate(agents):
        rows.append([a] + ["-" if i == j or not matrix["meetings"][i][j] else
                           f"{matrix['share'][i][j]:.2f} ({matrix['meetings'][i][j]})" for j in range(len(agents))])
    return ["row beats column"] + list(agents), rows


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows)]


def markdown(lb: Leaderboard) -> str:
    """Every table as one Markdown document."""
    facts = lb.facts
    lines = ["# Leaderboard", ""]
    if lb.solo:
        lines += [p for para in solo_intro(facts) for p in (para, "")]
        lines += [f"Note: {n}." for n in facts["notes"]] + ([""] if facts["notes"] else [])
        head = solo_head(facts)
        for name, table in lb.solo.items():
            if len(lb.solo) > 1:
                lines += [f"## {'All scenarios' if name == ALL else 'Scenario ' + name}", ""]
            lines += _md_table(head, [solo_cells(r, facts) for r in table]) + [""]
    if lb.h2h:
        lines += [
            "## Head-to-head", "",
            f"{facts['h2h_matches']} matches on {', '.join(facts['h2h_scenarios'])}: agents share one experiment as "
            "competing variants.  Rating: Bradley-Terry fit of the pairwise results on the Elo scale with a 95% "
            "stratified block bootstrap CI; openskill: Plackett-Luce mu ± sigma.  " + TIE_RULE + ".", ""]
        lines += [f"Note: {n}." for n in facts["h2h_notes"]] + ([""] if facts["h2h_notes"] else [])
        for name, table in lb.h2h.items():
            if len(lb.h2h) > 1:
                lines += [f"### {'All scenarios' if name == ALL else 'Scenario ' + name}", ""]
            lines += _md_table(H2H_HEAD, [h2h_cells(r) for r in table]) + [""]
        head, rows = matrix_cells(lb.win_matrix)
        lines += ["Pairwise win matrix (every scenario): share of meetings the row agent won (ties 1/2), meetings in brackets.", ""]
        lines += _md_table(head, rows) + [""]
    return "\n".join(lines)


def write(lb: Leaderboard, out: str | Path) -> None:
    """``leaderboard.md`` and ``leaderboard.csv`` in ``out`` (one CSV row per agent and table: columns
    ``track`` and ``scenario`` say which; ``all`` is every scenario together), and for a head-to-head
    run ``win_matrix.csv``."""
    out = Path(out)
    (out / "leaderboard.md").write_text(markdown(lb))
    records = [{"track": SOLO, "scenario": name, **r} for name, t in lb.solo.items() for r in t]
    records += [{"track": HEAD_TO_HEAD, "scenario": name, **r} for name, t in lb.h2h.items() for r in t]
    cols = list(dict.fromkeys(k for r in records for k in r))
    with open(out / "leaderboard.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in records:
            w.writerow(r)
    stale = out / "win_matrix.csv"
    if not lb.win_matrix and stale.exists():
        stale.unlink()  # from an earlier ranking with head-to-head rows
    if lb.win_matrix:
        agents = lb.win_matrix["agents"]
        with open(out / "win_matrix.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["agent", "opponent", "win_share", "meetings"])
            for i, a in enumerate(agents):
                for j, b in enumerate(agents):
                    if i != j and lb.win_matrix["meetings"][i][j]:
                        w.writerow([a, b, lb.win_matrix["share"][i][j], lb.win_matrix["meetings"][i][j]])
