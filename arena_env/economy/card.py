"""Scenario report card: does a scenario make a good benchmark?

``python -m arena_env check-scenario NAME|PATH`` (see ``arena_env/__main__.py``) runs fixed and
scheduled policies for ``variant_0`` (every other treatment holds) on many seeds with common random
numbers and writes ``card.md`` and ``card.json``.  The sections, the searches and every field are
described in ``docs/scenarios.md`` (section "Scenario report card").

Seeds: the searches use the *training* seeds ``0 .. train_seeds - 1``; every figure on the card is
measured on the *evaluation* seeds ``1_000_000 + i`` (the project's rule), so the two never overlap.
Policies are compared by paired per-seed differences with t-based 95% confidence intervals.

The building blocks are small and testable: :func:`paired_ci` (pure), :func:`coordinate_ascent`
(pure given its objective), :func:`multiplied_config`, :func:`schedule`, :func:`evaluate_policies`
(a returns matrix), :func:`build_card` (runs everything, returns a JSON-ready dict) and
:func:`render_markdown` (pure).  Episodes run in worker processes (spawn context, one Numba thread
each); results do not depend on the number of workers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arena_env.paths import shown

from . import layout as L
from . import metrics as M
from .params import PARAM_NAMES
from .scenario import METRIC_NAMES, ScenarioError, load  # noqa: F401 (ScenarioError: for callers)
from .stats_kernels import student_q975

EVAL_SEED_BASE = 1_000_000
"""Evaluation seeds are ``EVAL_SEED_BASE + i``; training seeds must stay below it."""

try:
    from .scenario import CARD_PROPERTIES as PROPERTIES
except ImportError:  # pragma: no cover - a scenario module without the card key
    PROPERTIES = ("levers", "corners", "engagement", "adaptive", "control", "budget")
"""The verdict's benchmark properties, in card order (a) .. (f); keys of the scenario's ``card.exempt``."""

_RR, _SF = METRIC_NAMES.index("RETENTION_RATE"), METRIC_NAMES.index("SCAN_FREQUENCY")


@dataclass(frozen=True)
class Settings:
    """How much work the card does (``full`` or ``quick``)."""

    grid: tuple[float, ...]            # log2 multipliers of the static search (and of phase 2)
    rounds: int                        # max rounds of the static coordinate ascent
    adaptive_rounds: int               # max rounds of the schedule search
    switch_fractions: tuple[float, ...]  # candidate switch days as fractions of the episode
    switch_start: int                  # index of the starting switch day
    phase1_grid: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0)  # phase 1 relative to the static optimum


FULL = Settings(grid=(-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0), rounds=3, adaptive_rounds=1,
                switch_fractions=(1 / 6, 1 / 3, 1 / 2, 2 / 3), switch_start=1)
QUICK = Settings(grid=(-1.0, 0.0, 1.0), rounds=1, adaptive_rounds=1,
                 switch_fractions=(1 / 3, 2 / 3), switch_start=0, phase1_grid=(-1.0, 0.0, 1.0))


# --- statistics (pure) -------------------------------------------------------------------------------

def paired_ci(a, b=None) -> dict:
    """Mean of the paired differences ``a - b`` (or of ``a`` alone) with a t-based 95% CI (the t quantile
    of the metric statistics, ``stats_kernels.student_q975``: one implementation, tested against SciPy).

    Returns ``mean``, ``lo``, ``hi`` (NaN with fewer than 2 pairs), ``sd`` (of the differences,
    ddof 1), ``n``, ``excludes_zero`` (the CI lies strictly on one side of 0) and ``sign``
    (``"+"``, ``"-"`` or ``"0"`` of the mean).  Agrees with ``scipy.stats.ttest_rel(a, b)``."""
    d = np.asarray(a, dtype=np.float64)
    if b is not None:
        d = d - np.asarray(b, dtype=np.float64)
    n = int(d.size)
    mean = float(d.mean()) if n else math.nan
    sd = float(d.std(ddof=1)) if n > 1 else math.nan
    if n > 1:
        half = float(student_q975(float(n - 1))) * sd / math.sqrt(n)
        lo, hi = mean - half, mean + half
    else:
        lo = hi = math.nan
    excl = bool(n > 1 and (lo > 0 or hi < 0))
    sign = "0" if not mean or math.isnan(mean) else ("+" if mean > 0 else "-")
    return {"mean": mean, "lo": lo, "hi": hi, "sd": sd, "n": n, "excludes_zero": excl, "sign": sign}


def lag1_autocorr(x) -> float:
    """Lag-1 autocorrelation of a series (NaN for fewer than 3 values or no variance)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size < 3:
        return math.nan
    d = x - x.mean()
    den = float(d @ d)
    return float(d[:-1] @ d[1:]) / den if den > 0 else math.nan


def effect_timing(diff: np.ndarray, days_per_step: int = 1, tail_days: int = 14) -> dict:
    """When does a paired daily reward difference (steps,) show?  ``cum_positive_from_day``: the first
    day from which the cumulative difference is > 0 and stays so (None if it ends <= 0);
    ``half_effect_day``: the first day the daily difference reaches half of its mean over the last
    ``tail_days`` days (None when that mean is 0).  Days are step index x ``days_per_step``."""
    diff = np.asarray(diff, dtype=np.float64)
    cum = np.cumsum(diff)
    pos = cum > 0
    cum_day = None
    if pos.size and pos[-1]:
        k = pos.size - 1
        while k > 0 and pos[k - 1]:
            k -= 1
        cum_day = k * days_per_step
    tail = max(1, -(-tail_days // days_per_step))
    tail_mean = float(diff[-tail:].mean()) if diff.size else math.nan
    half_day = None
    if diff.size and tail_mean != 0 and math.isfinite(tail_mean):
        target = tail_mean / 2
        hit = np.nonzero(diff >= target if target > 0 else diff <= target)[0]
        half_day = int(hit[0]) * days_per_step if hit.size else None
    return {"cum_positive_from_day": cum_day, "half_effect_day": half_day, "tail_mean": tail_mean,
            "tail_days": tail * days_per_step}


# --- configs and policies (pure) ---------------------------------------------------------------------

def round_half_away(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def multiplied_config(base, log2_mult, lo, hi) -> tuple[int, ...]:
    """``base * 2**log2_mult`` per parameter, rounded half away from zero and clipped to [lo, hi]."""
    x = np.asarray(base, dtype=np.float64) * np.exp2(np.asarray(log2_mult, dtype=np.float64))
    return tuple(int(v) for v in np.clip(round_half_away(x), lo, hi))


def schedule(configs: Sequence[Sequence[int]], switch_days: Sequence[int], tenant, max_days: int) -> tuple:
    """A policy as a hashable tuple of ``(start_day, config)`` phases: ``configs[0]`` from day 0,
    ``configs[k]`` from ``switch_days[k - 1]``.  Phases that start at or after ``max_days`` are dropped,
    consecutive equal configs merge, and a lone tenant config becomes ``()`` (hold), so equal
    behaviours get equal keys."""
    starts = [0, *switch_days]
    phases: list[tuple[int, tuple[int, ...]]] = []
    for s, c in zip(starts, configs):
        c = tuple(int(v) for v in c)
        if s >= max_days or (phases and phases[-1][1] == c):
            continue
        phases.append((int(s), c))
    if len(phases) == 1 and phases[0][1] == tuple(int(v) for v in tenant):
        return ()
    return tuple(phases)


# --- coordinate ascent (pure given the objective) ----------------------------------------------------

def coordinate_ascent(objective: Callable[[list[tuple]], Sequence[float]], start: Sequence, grids: Sequence[Sequence],
                      *, max_rounds: int = 3, order: Sequence[int] | None = None) -> dict:
    """Maximise ``objective`` over the grid one coordinate at a time.

    ``objective(points)`` takes a list of points (tuples) and returns their values (a batch, so the
    caller can evaluate candidates in parallel).  In each round the coordinates are visited in
    ``order`` (default 0, 1, ...); for coordinate ``i`` every other grid value is tried with the rest
    fixed, and the best one is accepted only if it strictly improves the current value (ties keep
    the first in grid order).  Stops after ``max_rounds`` or a round without a move.  Returns the
    ``point``, its ``value``, ``start_value``, ``rounds`` run, ``converged`` (a full round without a
    move), the accepted ``moves`` and the number of distinct points ``evaluated``."""
    cache: dict[tuple, float] = {}

    def values(points):
        todo = [p for p in dict.fromkeys(points) if p not in cache]
        if todo:
            for p, v in zip(todo, objective(todo)):
                cache[p] = float(v)
        return [cache[p] for p in points]

    point = tuple(start)
    best = values([point])[0]
    start_value = best
    order = list(range(len(point))) if order is None else list(order)
    moves, rounds, converged = [], 0, False
    for r in range(max_rounds):
        rounds = r + 1
        moved = False
        for i in order:
            cands = [point[:i] + (g,) + point[i + 1:] for g in grids[i] if g != point[i]]
            if not cands:
                continue
            vals = values(cands)
            j = int(np.argmax(vals))
            if vals[j] > best:
                moves.append({"round": rounds, "coordinate": i, "from": point[i], "to": cands[j][i],
                              "value": vals[j], "gain": vals[j] - best})
                point, best, moved = cands[j], vals[j], True
        if not moved:
            converged = True
            break
    return {"point": point, "value": best, "start_value": start_value, "rounds": rounds,
            "converged": converged, "moves": moves, "evaluated": len(cache)}


# --- episodes (worker side) --------------------------------------------------------------------------

def make_env(sc):
    """The card's env for a validated :class:`Scenario` (absolute targets, light infos, 1 Numba thread)."""
    from .env import EconomyEnv

    return EconomyEnv(sc, action_mode="absolute", info_level="light", num_threads=1)


_WORKER_ENV = None  # a worker process's env, built once from the scenario the parent loaded


def _init_worker(sc) -> None:
    global _WORKER_ENV
    _WORKER_ENV = make_env(sc)


def budget_series(env) -> np.ndarray | None:
    """Per simulated day ``[budget, xp_issued]`` (days, 2) for the variants sharing the budget, or None
    without a budget: ``env.budget_history`` when the env has it, else computed from
    ``env.history_i`` as the env does (``daily_xp_per_user`` x enrolled users of all variants, and
    the XP issued by all variants)."""
    per_user = env.scenario.budget.daily_xp_per_user
    if per_user is None:
        return None
    days = int(env.day)
    bh = getattr(env, "budget_history", None)
    if bh is not None:
        return np.asarray(bh, dtype=np.float64)[:days].copy()
    h = env.history_i[:days]
    budget = per_user * np.maximum(h[:, :, L.A_ENROLLED].sum(axis=1), 1)
    issued = M.xp_total(h).sum(axis=1)
    return np.stack([budget, issued], axis=1).astype(np.float64)


def run_episode(env, phases: tuple, seed: int, detail: bool = False) -> dict:
    """One episode with ``variant_0`` following ``phases`` (``()`` = hold) and every other agent
    holding.  Returns the ``return`` (sum of variant_0's rewards), the per-step ``rewards`` (zero after
    an early end), the number of ``steps`` played, the
    final-day metrics ``treat`` (variant 1) and ``control`` (variant 0) from ``env._mean``; with
    ``detail`` also the control's daily aggregates and the budget series."""
    env.reset(seed=int(seed))
    sc = env.scenario
    n_steps = -(-sc.max_days // sc.days_per_step)
    rewards = np.zeros(n_steps)
    k = 0
    while env.agents:
        actions = {}
        for start, cfg in reversed(phases):
            if env.day >= start:
                actions = {"variant_0": np.asarray(cfg, dtype=np.float32)}
                break
        _, rew, _, _, _ = env.step(actions)
        rewards[k] = rew["variant_0"]
        k += 1
    out = {"return": float(rewards.sum()), "rewards": rewards, "steps": k,
           "treat": np.array(env._mean[1], dtype=np.float64), "control": np.array(env._mean[0], dtype=np.float64)}
    if detail:
        out["control_i"] = env.history_i[:, 0, :].copy()
        out["control_f"] = env.history_f[:, 0, :].copy()
        out["budget"] = budget_series(env)
        out["budget_source"] = "env.budget_history" if getattr(env, "budget_history", None) is not None else "history_i"
    return out


def _task(args):
    return run_episode(_WORKER_ENV, *args)


# --- the evaluator -----------------------------------------------------------------------------------

class Progress:
    """A progress bar on stderr over planned episodes: redrawn in place on a terminal, otherwise one
    line every tenth of the run."""

    def __init__(self, total: int, stream=None, enabled: bool = True):
        self.total, self.done, self.stream, self.enabled = max(int(total), 1), 0, stream, enabled
        self.start = time.monotonic()
        self._tenth = 0
        self.stage = ""

    def _out(self):
        return self.stream if self.stream is not None else sys.stderr

    def advance(self, n: int) -> None:
        self.set(self.done + n)

    def set(self, done: int) -> None:
        self.done = min(max(done, self.done), self.total)
        if not self.enabled:
            return
        out = self._out()
        frac = self.done / self.total
        el = time.monotonic() - self.start
        eta = el / frac * (1 - frac) if frac > 0 else float("nan")
        filled = int(30 * frac)
        line = (f"[{'#' * filled}{'-' * (30 - filled)}] {100 * frac:5.1f}%  {el:6.1f}s elapsed  "
                f"ETA {eta:6.1f}s  {self.stage}")
        tty = getattr(out, "isatty", lambda: False)()
        if tty:
            print(f"\r{line}", end="\n" if self.done >= self.total else "", file=out, flush=True)
        elif int(10 * frac) > self._tenth or (self.done >= self.total and self._tenth < 10):
            self._tenth = int(10 * frac) if self.done < self.total else 10
            print(line, file=out, flush=True)


class Evaluator:
    """Runs (policy, seed) episodes for a validated :class:`Scenario` in worker processes (spawn
    context; each worker builds its env once from the same scenario object, so a scenario file edited
    during a run cannot split the workers), memoised by (phases, seed)."""

    def __init__(self, sc, workers: int = 1, progress: Progress | None = None):
        self.sc = sc
        self.env = make_env(sc)
        self.workers = max(1, int(workers))
        self.progress = progress
        self.memo: dict[tuple, dict] = {}
        self.episodes = 0
        self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def _map(self, tasks: list) -> list:
        if self.workers == 1 or len(tasks) <= 1:
            out = []
            for t in tasks:
                out.append(run_episode(self.env, *t))
                if self.progress:
                    self.progress.advance(1)
            return out
        if self._pool is None:
            self._pool = multiprocessing.get_context("spawn").Pool(self.workers, initializer=_init_worker,
                                                                   initargs=(self.sc,))
        out = []
        chunk = max(1, min(8, len(tasks) // (4 * self.workers)))
        for r in self._pool.imap(_task, tasks, chunksize=chunk):
            out.append(r)
            if self.progress:
                self.progress.advance(1)
        return out

    def run(self, policies: Sequence[tuple], seeds: Sequence[int], detail: bool = False) -> list[list[dict]]:
        """Episode results ``[policy][seed]`` (see :func:`run_episode`)."""
        need = []
        for p in policies:
            for s in seeds:
                got = self.memo.get((p, s))
                if (got is None or (detail and "control_i" not in got)) and (p, s, detail) not in need:
                    need.append((p, s, detail))
        for (p, s, d), res in zip(need, self._map(need)):
            self.memo[(p, s)] = res
        self.episodes += len(need)
        return [[self.memo[(p, s)] for s in seeds] for p in policies]

    def returns(self, policies: Sequence[tuple], seeds: Sequence[int]) -> np.ndarray:
        """The returns matrix (policies, seeds)."""
        return np.array([[r["return"] for r in row] for row in self.run(policies, seeds)]).reshape(len(policies), len(seeds))


def evaluate_policies(scenario: str, policies: Sequence[tuple], seeds: Sequence[int], workers: int = 1,
                      overrides: dict | None = None) -> np.ndarray:
    """Returns matrix ``(len(policies), len(seeds))`` of variant_0's episode returns; a policy is a
    phases tuple (:func:`schedule`; ``()`` holds).  Identical for any number of workers."""
    with Evaluator(load(scenario, **(overrides or {})), workers) as ev:
        return ev.returns(list(policies), list(seeds))


# --- seeds ---------------------------------------------------------------------------------------------

def seed_lists(n_eval: int, n_train: int) -> tuple[list[int], list[int]]:
    """Training seeds ``0 .. n_train - 1`` and evaluation seeds ``1_000_000 + i`` (disjoint)."""
    if n_eval < 2:
        raise ValueError(f"--seeds {n_eval}: a confidence interval needs at least 2 evaluation seeds; pass --seeds 2 or more")
    if n_train < 1:
        raise ValueError(f"--train-seeds {n_train}: the searches need at least 1 training seed; pass --train-seeds 1 or more")
    if n_train > EVAL_SEED_BASE:
        raise ValueError(f"--train-seeds {n_train}: training seeds must stay below {EVAL_SEED_BASE:,}")
    train = list(range(n_train))
    ev = [EVAL_SEED_BASE + i for i in range(n_eval)]
    assert not set(train) & set(ev)
    return ev, train


# --- the card ------------------------------------------------------------------------------------------

def scenario_digest(sc) -> str:
    """A short hash of the validated scenario (its source path excluded) and the model version
    (``EconomyEnv.metadata["name"]``): which model the card measured."""
    from .env import EconomyEnv

    d = dataclasses.asdict(sc)
    d.pop("source", None)
    d["model"] = EconomyEnv.metadata["name"]
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _cfg_dict(cfg) -> dict:
    return {k: int(v) for k, v in zip(PARAM_NAMES, cfg)}


def _metric_effects(a_rows: list[dict], b_rows: list[dict], key: str = "treat") -> dict:
    a = np.array([r[key] for r in a_rows])
    b = np.array([r[key] for r in b_rows])
    return {m: paired_ci(a[:, i], b[:, i]) for i, m in enumerate(METRIC_NAMES)}


def _control_moves(hold_rows: list[dict], opt_rows: list[dict]) -> dict:
    identical, ret, scans = 0, 0.0, 0.0
    for h, o in zip(hold_rows, opt_rows):
        same = np.array_equal(h["control_i"], o["control_i"]) and np.array_equal(h["control_f"], o["control_f"])
        identical += same
        ret = max(ret, abs(o["control"][_RR] - h["control"][_RR]) / max(abs(h["control"][_RR]), 1e-12))
        hs, os_ = h["control_i"][:, L.A_SCANS].sum(), o["control_i"][:, L.A_SCANS].sum()
        scans = max(scans, abs(float(os_ - hs)) / max(abs(float(hs)), 1e-12))
    n = len(hold_rows)
    return {"seeds": n, "identical_seeds": int(identical), "bit_identical": identical == n,
            "max_rel_diff_retention": float(ret), "max_rel_diff_scans": float(scans)}


def _budget_stats(rows: list[dict]) -> dict:
    over, days, ac = 0, 0, []
    for r in rows:
        b = r["budget"]
        if b is None or not len(b):
            continue
        b = b[np.isfinite(b).all(axis=1)]  # days the env did not simulate (NaN rows) are left out
        ratio = b[:, 1] / np.maximum(b[:, 0], 1e-12)
        over += int((ratio > 1.05).sum())
        days += len(ratio)
        ac.append(lag1_autocorr(ratio))
    ac = [a for a in ac if math.isfinite(a)]
    return {"days": days, "days_over_5pct": over, "share_over_5pct": over / days if days else math.nan,
            "lag1_autocorr": float(np.mean(ac)) if ac else math.nan}


def _verdict(card: dict, exempt: dict) -> list[dict]:
    out = []

    def add(key, label, ok, figure, applies=True):
        status = "N/A" if not applies else ("PASS" if ok else "FAIL")
        reason = exempt.get(key)
        if reason is not None and status == "FAIL":
            status = "EXEMPT"
        out.append({"id": "abcdef"[PROPERTIES.index(key)], "key": key, "property": label, "status": status,
                    "figure": figure, "reason": reason})

    lev = card["levers"]
    inert = [x["param"] for x in lev if not x["matters"]]
    add("levers", "every lever matters (a 0.5x or 2x effect with a CI excluding 0)", not inert,
        f"{len(lev) - len(inert)}/{len(lev)} levers matter" + (f"; inert: {', '.join(inert)}" if inert else ""))
    st = card["static_optimum"]
    corners = sorted(set(st["at_zero"]) | set(st["at_bound"]))
    edge = [k for k in st["at_grid_edge"] if k not in corners]
    add("corners", "at most 2 of 10 parameters at 0 or a hard bound in the static optimum", len(corners) <= 2,
        f"{len(corners)} at 0 or a bound" + (f": {', '.join(corners)}" if corners else "")
        + (f"; {len(edge)} more at the search grid's edge ({', '.join(edge)})" if edge else ""))
    eng = st["engagement_vs_control"]
    below = [m for m in ("RETENTION_RATE", "SCAN_FREQUENCY") if eng[m]["excludes_zero"] and eng[m]["mean"] < 0]
    add("engagement", "at the optimum the treatment's retention and scan frequency are not below the control's",
        not below, "; ".join(f"{m} {_fmt_ci(eng[m])}" for m in ("RETENTION_RATE", "SCAN_FREQUENCY")))
    ad = card["adaptive"]
    g = ad["gain_over_static"]
    ratio = ad["gain_over_noise"]
    add("adaptive", "adaptive gain >= 1x seed noise with a CI excluding 0",
        bool(math.isfinite(ratio) and ratio >= 1 and g["excludes_zero"] and g["mean"] > 0),
        f"gain {_fmt_ci(g)} = {_f(ratio, 2)}x seed noise")
    c = card["control"]
    add("control", "the control does not move", c["bit_identical"],
        f"{c['identical_seeds']}/{c['seeds']} seeds bit-identical; max rel. diff retention "
        f"{_f(c['max_rel_diff_retention'], 3, 'g')}, scans {_f(c['max_rel_diff_scans'], 3, 'g')}")
    b = card["budget"]
    if b is None:
        add("budget", "the budget holds (fewer than 5% of days over by more than 5%)", True, "no budget", applies=False)
    else:
        worst = max(b["hold"]["share_over_5pct"], b["optimum"]["share_over_5pct"])
        add("budget", "the budget holds (fewer than 5% of days over by more than 5%)", bool(worst < 0.05),
            f"days over by >5%: hold {_pct(b['hold']['share_over_5pct'])}, optimum {_pct(b['optimum']['share_over_5pct'])}")
    return out


def lever_section(tenant, lever_cfgs, hold_rows, lever_rows, noise: float) -> list[dict]:
    """Section 1 from the episodes: ``lever_cfgs[2 i]`` / ``[2 i + 1]`` are parameter ``i`` at 0.5x / 2x,
    ``lever_rows`` their episode results on the evaluation seeds (paired with ``hold_rows``)."""
    hold_ret = np.array([r["return"] for r in hold_rows])
    levers = []
    for i, name in enumerate(PARAM_NAMES):
        entry = {"param": name, "tenant": tenant[i]}
        for j, (lab, mult) in enumerate((("low", 0.5), ("high", 2.0))):
            cfg = lever_cfgs[2 * i + j]
            rows = lever_rows[2 * i + j]
            entry[lab] = {"multiplier": mult, "value": cfg[i], "same_as_tenant": cfg[i] == tenant[i],
                          "return": paired_ci([r["return"] for r in rows], hold_ret),
                          "metrics": _metric_effects(rows, hold_rows)}
        entry["matters"] = bool(entry["low"]["return"]["excludes_zero"] or entry["high"]["return"]["excludes_zero"])
        big = max(abs(entry["low"]["return"]["mean"]), abs(entry["high"]["return"]["mean"]))
        entry["effect_over_noise"] = big / noise if noise > 0 else math.nan
        levers.append(entry)
    return levers


def static_section(ca: dict, opt_cfg, settings: Settings, lo, hi, opt_rows, hold_rows, noise: float) -> dict:
    """Section 2 from the search result ``ca`` (:func:`coordinate_ascent`) and the episodes."""
    hold_ret = np.array([r["return"] for r in hold_rows])
    opt_ret = np.array([r["return"] for r in opt_rows])
    gain = paired_ci(opt_ret, hold_ret)
    return {
        "search": {"method": "coordinate ascent over log2 multipliers of the tenant config",
                   "grid": list(settings.grid), "max_rounds": settings.rounds, "rounds": ca["rounds"],
                   "converged": ca["converged"], "configs_evaluated": ca["evaluated"],
                   "train_gain": ca["value"],
                   "moves": [{**m, "param": PARAM_NAMES[m["coordinate"]]} for m in ca["moves"]]},
        "config": _cfg_dict(opt_cfg),
        "log2_multipliers": {k: float(v) for k, v in zip(PARAM_NAMES, ca["point"])},
        "gain": gain,
        "gain_over_noise": gain["mean"] / noise if noise > 0 else math.nan,
        "at_zero": [k for k, v in zip(PARAM_NAMES, opt_cfg) if v == 0],
        "at_bound": [k for i, (k, v) in enumerate(zip(PARAM_NAMES, opt_cfg)) if v == lo[i] or v == hi[i]],
        "at_grid_edge": [k for k, p in zip(PARAM_NAMES, ca["point"]) if p in (min(settings.grid), max(settings.grid))],
        "metrics_vs_hold": _metric_effects(opt_rows, hold_rows),
        "engagement_vs_control": {m: paired_ci([r["treat"][i] for r in opt_rows], [r["control"][i] for r in opt_rows])
                                  for i, m in enumerate(METRIC_NAMES)},
    }


def _phase_param(coordinate: int) -> str:
    """The name of a schedule-search coordinate (1..P: phase 1, P+1..2P: phase 2)."""
    k, i = divmod(coordinate - 1, len(PARAM_NAMES))
    return f"phase{k + 1}.{PARAM_NAMES[i]}"


def adaptive_section(aa: dict, best: tuple, opt: tuple, switch_days, settings: Settings, tenant,
                     ad_rows, opt_rows, hold_rows, noise: float) -> dict:
    """Section 3 from the schedule search ``aa`` (point = switch-day index, then phase 1's and phase 2's
    log2 multipliers relative to the static optimum), the best schedule ``best``, the static optimum
    ``opt`` and the episodes."""
    ad_ret = np.array([r["return"] for r in ad_rows])
    opt_ret = np.array([r["return"] for r in opt_rows])
    hold_ret = np.array([r["return"] for r in hold_rows])
    g_ad = paired_ci(ad_ret, opt_ret)
    return {
        "search": {"method": "coordinate ascent, from the static optimum in both phases: log2 multipliers of "
                             "phase 2 relative to the static optimum, then the switch day, then phase 1's multipliers "
                             "(both phases kept within the static search's range)",
                   "switch_days": switch_days, "grid": list(settings.grid), "phase1_grid": list(settings.phase1_grid),
                   "max_rounds": settings.adaptive_rounds,
                   "rounds": aa["rounds"], "converged": aa["converged"], "configs_evaluated": aa["evaluated"],
                   "train_gain_over_static": aa["value"],
                   "moves": [{**m, "param": _phase_param(m["coordinate"])} if m["coordinate"] else
                             {**m, "param": "switch_day", "from": switch_days[m["from"]], "to": switch_days[m["to"]]}
                             for m in aa["moves"]]},
        "phases": [{"from_day": s, "config": _cfg_dict(c)} for s, c in best] or [{"from_day": 0, "config": _cfg_dict(tenant)}],
        "switch_day": switch_days[int(aa["point"][0])] if len(best) > 1 else None,
        "same_as_static": best == opt,
        "gain_over_static": g_ad,
        "gain_over_hold": paired_ci(ad_ret, hold_ret),
        "gain_over_noise": g_ad["mean"] / noise if noise > 0 else math.nan,
    }


def time_to_effect(opt_rows, hold_rows, days_per_step: int) -> dict:
    """Section 7: :func:`effect_timing` of the per-step reward difference optimum - hold, averaged
    over the (paired) seeds, up to the shortest episode."""
    steps = min(min(o["steps"], h["steps"]) for o, h in zip(opt_rows, hold_rows))  # an episode may end early
    diff = np.mean([o["rewards"][:steps] - h["rewards"][:steps] for o, h in zip(opt_rows, hold_rows)], axis=0)
    return {**effect_timing(diff, days_per_step), "days_per_step": days_per_step,
            "daily_mean_diff": [float(x) for x in diff]}


def plan(n_eval: int, n_train: int, settings: Settings, n_params: int = len(PARAM_NAMES)) -> dict:
    """Worst-case episode counts per stage (for the progress bar)."""
    g = len(settings.grid) - 1
    return {"levers": (1 + 2 * n_params) * n_eval,
            "static search": (2 + settings.rounds * n_params * g) * n_train,
            "static eval": n_eval,
            "adaptive search": settings.adaptive_rounds * (n_params * (g + len(settings.phase1_grid) - 2)
                                                           + len(settings.switch_fractions) - 1) * n_train,
            "adaptive eval": n_eval}


def switch_day_candidates(fractions: Sequence[float], max_days: int, days_per_step: int = 1) -> list[int]:
    """The schedule search's switch days: each fraction of the episode rounded to a decision day (a
    multiple of ``days_per_step``, the days a step starts), from the first decision after day 0 to the
    last one before ``max_days``; sorted, without repeats.  With weekly steps a switch on day 1 would
    take effect on day 7, and the card would report day 1."""
    last = (max_days - 1) // days_per_step * days_per_step
    return sorted({max(days_per_step, min(last, int(round(f * max_days / days_per_step)) * days_per_step))
                   for f in fractions})


DEFAULT_SEEDS, DEFAULT_TRAIN_SEEDS = 10, 3
QUICK_SEEDS, QUICK_TRAIN_SEEDS = 4, 2


def static_search(ev: "Evaluator", tenant, lo, hi, train_seeds: Sequence[int], settings: Settings,
                  max_days: int) -> tuple[dict, tuple[int, ...]]:
    """The static optimum: coordinate ascent over log2 multipliers of the tenant config (grid
    ``settings.grid``, at most ``settings.rounds`` rounds, from the tenant config), maximising the
    mean return over ``train_seeds`` minus hold's.  Returns the search record of
    :func:`coordinate_ascent` and the best config.  The card and the leaderboards' static oracle
    (:mod:`arena_env.evaluation.oracle`) both use this one search."""
    train_hold = ev.returns([()], train_seeds)[0]

    def static_obj(points):
        pols = [schedule([multiplied_config(tenant, p, lo, hi)], [], tenant, max_days) for p in points]
        return list(ev.returns(pols, train_seeds).mean(axis=1) - train_hold.mean())

    grids = [settings.grid] * len(PARAM_NAMES)
    ca = coordinate_ascent(static_obj, (0.0,) * len(PARAM_NAMES), grids, max_rounds=settings.rounds)
    return ca, multiplied_config(tenant, ca["point"], lo, hi)


def build_card(scenario: str, *, seeds: int = DEFAULT_SEEDS, train_seeds: int = DEFAULT_TRAIN_SEEDS, workers: int = 1,
               quick: bool = False, overrides: dict | None = None, progress: bool | Progress = False,
               settings: Settings | None = None) -> dict:
    """Run every section of the card and return it as a JSON-ready dict (see docs/scenarios.md)."""
    t0 = time.monotonic()
    overrides = dict(overrides or {})
    sc = load(scenario, **overrides)  # raises ScenarioError naming the fix for an unknown scenario
    settings = settings or (QUICK if quick else FULL)
    eval_seeds, train = seed_lists(seeds, train_seeds)
    env = make_env(sc)
    lo, hi = np.asarray(env.guardrail_config.lo), np.asarray(env.guardrail_config.hi)
    tenant = tuple(int(v) for v in env.tenant_vector)
    T, dps = sc.max_days, sc.days_per_step
    stages = plan(seeds, train_seeds, settings)
    prog = progress if isinstance(progress, Progress) else Progress(sum(stages.values()), enabled=bool(progress))
    done_planned = 0

    def stage(name):
        nonlocal done_planned
        if name is not None:
            done_planned += stages[name]
            prog.set(done_planned)
        prog.stage = ""

    def fixed(cfg):
        return schedule([cfg], [], tenant, T)

    with Evaluator(sc, workers, prog) as ev:
        # 1. levers -------------------------------------------------------------------------------
        prog.stage = "levers"
        hold = ()
        lever_pols = []
        for i in range(len(PARAM_NAMES)):
            for mult in (0.5, 2.0):
                lm = np.zeros(len(PARAM_NAMES))
                lm[i] = math.log2(mult)
                lever_pols.append(multiplied_config(tenant, lm, lo, hi))
        hold_rows = ev.run([hold], eval_seeds, detail=True)[0]
        res = ev.run([hold] + [fixed(c) for c in lever_pols], eval_seeds, detail=False)
        hold_ret = np.array([r["return"] for r in hold_rows])
        noise = float(hold_ret.std(ddof=1))
        levers = lever_section(tenant, lever_pols, hold_rows, res[1:], noise)
        stage("levers")

        # 2. static optimum ----------------------------------------------------------------------------
        prog.stage = "static search"
        ca, opt_cfg = static_search(ev, tenant, lo, hi, train, settings, T)
        opt = fixed(opt_cfg)
        stage("static search")
        prog.stage = "static eval"
        opt_rows = ev.run([opt], eval_seeds, detail=True)[0]
        static = static_section(ca, opt_cfg, settings, lo, hi, opt_rows, hold_rows, noise)
        stage("static eval")

        # 3. adaptive ----------------------------------------------------------------------------------
        prog.stage = "adaptive search"
        switch_days = switch_day_candidates(settings.switch_fractions, T, dps)
        start_idx = min(settings.switch_start, len(switch_days) - 1)
        train_opt = ev.returns([opt], train)[0]

        P = len(PARAM_NAMES)

        def phase(point, k):  # phase k's log2 multipliers relative to the static optimum, kept inside
            rel = np.asarray(point[1 + k * P:1 + (k + 1) * P])  # the static search's range
            total = np.clip(np.asarray(ca["point"]) + rel, min(settings.grid), max(settings.grid))
            return multiplied_config(tenant, total, lo, hi)

        def sched(point):
            return schedule([phase(point, 0), phase(point, 1)], [switch_days[int(point[0])]], tenant, T)

        def adaptive_obj(points):
            return list(ev.returns([sched(p) for p in points], train).mean(axis=1) - train_opt.mean())

        # phase 2 first (from the static optimum), then the switch day, then phase 1 on a narrower grid
        a_grids = ([tuple(range(len(switch_days)))] + [settings.phase1_grid] * P + [settings.grid] * P)
        order = list(range(1 + P, 1 + 2 * P)) + [0] + list(range(1, 1 + P))
        aa = coordinate_ascent(adaptive_obj, (start_idx,) + (0.0,) * (2 * P), a_grids,
                               max_rounds=settings.adaptive_rounds, order=order)
        best = sched(aa["point"])
        stage("adaptive search")
        prog.stage = "adaptive eval"
        ad_rows = ev.run([best], eval_seeds)[0]
        adaptive = adaptive_section(aa, best, opt, switch_days, settings, tenant,
                                    ad_rows, opt_rows, hold_rows, noise)
        stage("adaptive eval")
        episodes = ev.episodes

    # 4-7: derived from the evaluation runs --------------------------------------------------------------
    snr = {"seed_noise": noise, "hold_mean": float(hold_ret.mean()), "optimum_gain": static["gain"]["mean"],
           "optimum_gain_over_noise": static["gain_over_noise"], "adaptive_gain": adaptive["gain_over_static"]["mean"],
           "adaptive_gain_over_noise": adaptive["gain_over_noise"], "paired_sd_optimum": static["gain"]["sd"]}
    budget = None
    if sc.budget.daily_xp_per_user is not None:
        budget = {"daily_xp_per_user": sc.budget.daily_xp_per_user, "source": hold_rows[0]["budget_source"],
                  "hold": _budget_stats(hold_rows), "optimum": _budget_stats(opt_rows)}

    card = {
        "scenario": {"name": sc.name, "source": None if sc.source is None else shown(sc.source),
                     "digest": scenario_digest(sc), "n_users": sc.n_users, "n_agents": sc.n_agents, "max_days": T,
                     "days_per_step": dps, "overrides": overrides,
                     "budget_daily_xp_per_user": sc.budget.daily_xp_per_user},
        "settings": {"mode": "quick" if quick else "full", "eval_seeds": eval_seeds, "train_seeds": train,
                     "return": "sum of variant_0's rewards over the episode; the other treatments hold",
                     "metrics": "final-day metric values env._mean after the last step (variant 1 = the card's treatment)",
                     "ci": "t-based 95% CI of the mean paired per-seed difference"},
        "tenant_config": _cfg_dict(tenant),
        "bounds": {"lo": _cfg_dict(lo), "hi": _cfg_dict(hi)},
        "levers": levers,
        "static_optimum": static,
        "adaptive": adaptive,
        "signal_to_noise": snr,
        "control": _control_moves(hold_rows, opt_rows),
        "budget": budget,
        "time_to_effect": time_to_effect(opt_rows, hold_rows, dps),
    }
    exempt = dict(getattr(getattr(sc, "card", None), "exempt", None) or {})
    card["exempt"] = exempt
    card["verdict"] = _verdict(card, exempt)
    card["run"] = {"episodes": episodes, "workers": workers, "elapsed_s": round(time.monotonic() - t0, 2)}
    return card


# --- output ------------------------------------------------------------------------------------------

def _f(x, nd: int = 3, kind: str = "f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    sign, kind = ("+", kind[1:]) if kind.startswith("+") else ("", kind)
    return f"{x:{sign}.{nd}{kind}}"


def _day(d) -> str:
    return "never" if d is None else str(d)


def _pct(x) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.1f}%"


def _fmt_ci(c: dict, nd: int = 3) -> str:
    star = " *" if c["excludes_zero"] else ""
    return f"{_f(c['mean'], nd, '+f')} [{_f(c['lo'], nd)}, {_f(c['hi'], nd)}]{star}"


def _fmt_g(c: dict) -> str:
    """A compact CI for small metric effects (significant digits)."""
    star = "*" if c["excludes_zero"] else ""
    return f"{_f(c['mean'], 2, '+g')}{star}"


def to_jsonable(x):
    """Numpy scalars and arrays to Python; non-finite floats to None (JSON has no NaN)."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    return x


def render_markdown(card: dict) -> str:
    """The card as Markdown (a pure function of the card dict)."""
    sc, st, ad, snr = card["scenario"], card["static_optimum"], card["adaptive"], card["signal_to_noise"]
    s = card["settings"]
    L = [f"# Scenario report card: {sc['name']}", "",
         f"Source `{sc['source']}`; {sc['n_users']:,} users, {sc['n_agents']} treatments, {sc['max_days']} days"
         f" ({sc['days_per_step']} per step)" + (f"; overrides {json.dumps(sc['overrides'])}" if sc["overrides"] else "") + ".",
         f"Mode {s['mode']}: {len(s['eval_seeds'])} evaluation seeds ({s['eval_seeds'][0]}..{s['eval_seeds'][-1]}), "
         f"{len(s['train_seeds'])} training seeds ({s['train_seeds'][0]}..{s['train_seeds'][-1]}). "
         "The card controls `variant_0` (treatment 1); the other treatments hold. Return = sum of variant_0's rewards. "
         "Intervals: t-based 95% CI of the mean paired per-seed difference; `*` = CI excludes 0. "
         "Metrics: final-day values (`env._mean` after the last step).", ""]
    L += ["## Verdict", "", "| | property | status | figure |", "|---|---|---|---|"]
    for v in card["verdict"]:
        status = v["status"] + (f" ({v['reason']})" if v["status"] == "EXEMPT" else "")
        L.append(f"| ({v['id']}) | {v['property']} | **{status}** | {v['figure']} |")
    L += ["", "## 1. Levers (0.5x and 2x of the tenant value vs hold)", "",
          "| parameter | tenant | 0.5x | return diff | 2x | return diff | matters | max effect / noise | metric effects 0.5x / 2x ("
          + ", ".join(m.split("_")[0].lower() for m in METRIC_NAMES) + ") |", "|---|---|---|---|---|---|---|---|---|"]
    for x in card["levers"]:
        lo_, hi_ = x["low"], x["high"]
        me = " / ".join(", ".join(_fmt_g(e["metrics"][m]) for m in METRIC_NAMES) for e in (lo_, hi_))
        L.append(f"| {x['param']} | {x['tenant']} | {lo_['value']}{' (=)' if lo_['same_as_tenant'] else ''} | "
                 f"{_fmt_ci(lo_['return'])} | {hi_['value']}{' (=)' if hi_['same_as_tenant'] else ''} | "
                 f"{_fmt_ci(hi_['return'])} | {'yes' if x['matters'] else 'no'} | {_f(x.get('effect_over_noise'), 2)} | {me} |")
    L += ["", "`(=)`: rounding or the hard bounds leave the value at the tenant's.", "",
          "## 2. Static optimum", "",
          f"Search: {st['search']['method']}, grid {st['search']['grid']}, {st['search']['rounds']} of at most "
          f"{st['search']['max_rounds']} rounds ({'converged' if st['search']['converged'] else 'round limit'}), "
          f"{st['search']['configs_evaluated']} configs on the training seeds; training gain {_f(st['search']['train_gain'])}.",
          "", "| parameter | tenant | optimum | log2 mult. | note |", "|---|---|---|---|---|"]
    for k in PARAM_NAMES:
        note = ", ".join(n for n, lst in (("at 0", st["at_zero"]), ("at a hard bound", st["at_bound"]),
                                          ("at the grid edge", st["at_grid_edge"])) if k in lst)
        L.append(f"| {k} | {card['tenant_config'][k]} | {st['config'][k]} | {st['log2_multipliers'][k]:+g} | {note} |")
    L += ["", f"Gain over hold (evaluation seeds): **{_fmt_ci(st['gain'])}** = {_f(st['gain_over_noise'], 2)}x seed noise.",
          "", "Metric effects of the optimum (vs hold, and treatment vs control at the optimum):", "",
          "| metric | vs hold | treatment - control |", "|---|---|---|"]
    for m in METRIC_NAMES:
        L.append(f"| {m} | {_fmt_ci(st['metrics_vs_hold'][m], 4)} | {_fmt_ci(st['engagement_vs_control'][m], 4)} |")
    L += ["", "## 3. Best adaptive policy (two-phase schedule from the static optimum)", "",
          f"Search: {ad['search']['method']}; switch days {ad['search']['switch_days']}, grid {ad['search']['grid']}, "
          f"{ad['search']['rounds']} of at most {ad['search']['max_rounds']} rounds, {ad['search']['configs_evaluated']} "
          f"schedules on the training seeds; training gain over the static optimum {_f(ad['search']['train_gain_over_static'])}.", ""]
    if ad["same_as_static"]:
        L.append("No schedule beat the static optimum on the training seeds: the best adaptive policy is the static optimum.")
    else:
        for ph in ad["phases"]:
            L.append(f"- from day {ph['from_day']}: " + ", ".join(f"{k} {v}" for k, v in ph["config"].items()))
    L += ["", f"Gain over the static optimum: **{_fmt_ci(ad['gain_over_static'])}** = {_f(ad['gain_over_noise'], 2)}x seed noise; "
              f"over hold {_fmt_ci(ad['gain_over_hold'])}.",
          "", "## 4. Signal to noise", "",
          f"Seed noise (sd of the hold return over evaluation seeds): {_f(snr['seed_noise'])} (hold mean {_f(snr['hold_mean'])}). "
          f"Optimum gain / noise: {_f(snr['optimum_gain_over_noise'], 2)}; "
          f"adaptive gain / noise: {_f(snr['adaptive_gain_over_noise'], 2)}; "
          f"sd of the paired optimum-hold difference: {_f(snr['paired_sd_optimum'])}.",
          "", "## 5. Does the control move? (hold vs static optimum, control variant 0)", ""]
    c = card["control"]
    if c["bit_identical"]:
        L.append(f"Bit-identical on all {c['seeds']} evaluation seeds (`history_i[:, 0]`, `history_f[:, 0]`).")
    else:
        L.append(f"{c['identical_seeds']}/{c['seeds']} seeds bit-identical; largest relative difference of the control's "
                 f"final retention {_f(c['max_rel_diff_retention'], 3, 'g')} and total scans {_f(c['max_rel_diff_scans'], 3, 'g')}.")
    L += ["", "## 6. Budget adherence", ""]
    b = card["budget"]
    if b is None:
        L.append("No budget in this scenario (`budget.daily_xp_per_user` is null).")
    else:
        L += [f"Budget {b['daily_xp_per_user']} XP per enrolled user per day (series from `{b['source']}`).", "",
              "| policy | days | share of days over by >5% | lag-1 autocorrelation of issued/budget |", "|---|---|---|---|"]
        for lab in ("hold", "optimum"):
            x = b[lab]
            L.append(f"| {lab} | {x['days']} | {_pct(x['share_over_5pct'])} | {_f(x['lag1_autocorr'])} |")
    t = card["time_to_effect"]
    L += ["", "## 7. Time for the optimum to show its effect (vs hold, mean over seeds)", "",
          f"Cumulative paired reward difference positive from day {_day(t['cum_positive_from_day'])}"
          f"; daily difference reaches half its last-{t['tail_days']}-day mean ({_f(t['tail_mean'], 4)}) on day "
          f"{_day(t['half_effect_day'])}.", "",
          ]
    run = card.get("run")
    if run:
        L += [f"_{run['episodes']} episodes, {run['elapsed_s']} s with {run['workers']} worker(s)._", ""]
    return "\n".join(L)


def write_card(card: dict, out: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``card.json`` and ``card.md`` into ``out`` (created); returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pj, pm = out / "card.json", out / "card.md"
    pj.write_text(json.dumps(to_jsonable(card), indent=2) + "\n", encoding="utf-8")
    pm.write_text(render_markdown(card), encoding="utf-8")
    return pj, pm
