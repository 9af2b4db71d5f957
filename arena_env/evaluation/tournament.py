"""Tournaments: every agent on every scenario over many seeds, in worker processes, resumable.

A tournament is a function (:func:`run`), configured by a validated :class:`TournamentConfig`.

Solo track
    Each agent controls ``variant_0`` of a scenario against the control, the other treatments
    holding.  Common random numbers: the env seed of a (scenario, seed) cell is the same for every
    agent, so every agent meets the same population and the same shocks and comparisons are
    paired by seed.

Seeds
    Evaluation seed ``i`` (0 <= i < seeds) is ``EVAL_SEED_BASE + i`` = 1,000,000 + i.  Training
    code must use seeds below 1,000,000, so the two never overlap.  The agent of a cell is reset with
    ``env seed + 1`` (the rule of :func:`arena_env.wrappers.agents.agent_seed`).

Faults
    An agent that raises, returns an invalid decision or exceeds ``decision_timeout_s`` on one
    decision forfeits that cell: the row has ``failed=True``, a NaN score and the error text, and the
    tournament goes on.

Results and resume
    Every finished cell is appended as one JSON line to ``cells.jsonl`` in the run directory (flushed
    and fsync'ed); a run started with ``resume=True`` skips the cells already there, so after a kill,
    even ``kill -9``, it finishes the missing cells without duplicating or losing rows (a line cut
    short by the kill is ignored and its cell runs again).  A cell is identified by (agent label,
    scenario, seed) and a digest of what else changes its result (agent spec, overrides, track,
    timeout), so later tournaments in the same directory reuse matching cells: results accumulate.
    All the rows of the directory are then written atomically (temporary file + rename) to
    ``results.parquet`` with the run manifest, sorted, so the file is the same for any number of
    workers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from arena_env.economy.params import to_dict

EVAL_SEED_BASE = 1_000_000
"""Evaluation seeds start here; training seeds must stay below it."""

CELL_KEYS = ("agent", "scenario", "seed")


class TournamentConfigError(ValueError):
    """A tournament file or option is invalid; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class AgentSpec:
    """One contestant: a registered agent with hyperparameters, under a label."""

    label: str
    agent: str
    params: Mapping[str, Any] = field(default_factory=dict)
    baseline: bool = False


@dataclass(frozen=True)
class TournamentConfig:
    """A validated tournament.  See ``configs/tournament.yaml`` for a commented example."""

    agents: tuple[AgentSpec, ...]
    scenarios: tuple[str, ...] = ("default",)
    seeds: int = 10
    track: str = "solo"
    overrides: Mapping[str, Any] = field(default_factory=dict)  # env keywords for every scenario
    decision_timeout_s: float = 10.0
    source: str = "<defaults>"

    def cells(self) -> list[tuple[str, str, int]]:
        """Every (agent label, scenario, evaluation seed) of the tournament, in a fixed order."""
        return [(a.label, s, EVAL_SEED_BASE + i) for s in self.scenarios for a in self.agents for i in range(self.seeds)]

    def digest(self) -> str:
        """A hash of the whole tournament (not the source path)."""
        d = dataclasses.asdict(self)
        d.pop("source")
        return _hash(d)

    def cell_digest(self, label: str, scenario: str) -> str:
        """A hash of everything that changes one cell's result except its seed: the agent's spec,
        the scenario, the track, the overrides and the timeout.  Cells of another tournament with the
        same digest are reused (more seeds, agents or scenarios only add cells)."""
        spec = next(a for a in self.agents if a.label == label)
        return _hash([dataclasses.asdict(spec), scenario, self.track, dict(self.overrides), self.decision_timeout_s])


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


DEFAULT_AGENTS = (
    AgentSpec("hold", "hold", baseline=True),
    AgentSpec("random", "random", baseline=True),
    AgentSpec("rule", "rule", baseline=True),
    AgentSpec("ucb1", "ucb1"),
    AgentSpec("thompson", "thompson", {"prior": "gaussian"}),
    AgentSpec("bayes_opt", "bayes_opt"),
)
_TOP_KEYS = {"agents", "scenarios", "seeds", "track", "overrides", "decision_timeout_s"}
_AGENT_KEYS = {"label", "agent", "params", "baseline"}


def default_config(seeds: int = 10) -> TournamentConfig:
    """The quick tournament of ``python evaluate.py``: baselines and three learners on ``default``
    (90 days, 5,000 users)."""
    return TournamentConfig(DEFAULT_AGENTS, ("default",), seeds, overrides={"n_users": 5000})


def load_config(path: str | os.PathLike, seeds: int | None = None) -> TournamentConfig:
    """Read and validate a tournament YAML file; unknown keys and bad values are errors naming them."""
    import agents as agent_registry
    from arena_env.economy.scenario import find, read_yaml

    src = str(path)
    data = read_yaml(path, TournamentConfigError)

    def err(key, msg):
        return TournamentConfigError(f"{src}: {key}: {msg}")

    for k in data:
        if k not in _TOP_KEYS:
            raise err(k, f"unknown key; allowed keys: {', '.join(sorted(_TOP_KEYS))}")
    specs = []
    raw = data.get("agents")
    if not isinstance(raw, list) or not raw:
        raise err("agents", "a non-empty list of {agent: <registered name>, label?, params?, baseline?} is required")
    for i, a in enumerate(raw):
        if isinstance(a, str):
            a = {"agent": a}
        if not isinstance(a, Mapping) or "agent" not in a:
            raise err(f"agents[{i}]", "expected a mapping with the key 'agent' (a registered name)")
        for k in a:
            if k not in _AGENT_KEYS:
                raise err(f"agents[{i}].{k}", f"unknown key; allowed keys: {', '.join(sorted(_AGENT_KEYS))}")
        if a["agent"] not in agent_registry.available():
            raise err(f"agents[{i}].agent", f"unknown agent {a['agent']!r}; available: "
                                            f"{', '.join(agent_registry.available())}")
        params = a.get("params") or {}
        if not isinstance(params, Mapping):
            raise err(f"agents[{i}].params", "expected a mapping of hyperparameters")
        try:
            agent_registry.make(a["agent"], **params)
        except Exception as exc:
            raise err(f"agents[{i}].params", str(exc)) from None
        specs.append(AgentSpec(str(a.get("label", a["agent"])), str(a["agent"]), dict(params), bool(a.get("baseline", False))))
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise err("agents", f"labels must be unique, got {labels}")
    scenarios = data.get("scenarios", ["default"])
    if isinstance(scenarios, str):
        scenarios = [scenarios]
    if not isinstance(scenarios, list) or not scenarios:
        raise err("scenarios", "a non-empty list of scenario names or paths")
    for i, s in enumerate(scenarios):
        try:
            find(s)
        except ValueError as exc:
            raise err(f"scenarios[{i}]", str(exc)) from None
    n = data.get("seeds", 10) if seeds is None else seeds
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise err("seeds", f"a positive integer number of evaluation seeds, got {n!r}")
    track = data.get("track", "solo")
    if track != "solo":
        raise err("track", f"{track!r} is not available; tracks: solo")
    overrides = data.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        raise err("overrides", "a mapping of environment keywords (e.g. max_days, n_users)")
    timeout = data.get("decision_timeout_s", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise err("decision_timeout_s", f"a positive number of seconds, got {timeout!r}")
    return TournamentConfig(tuple(specs), tuple(str(s) for s in scenarios), n, track, dict(overrides), float(timeout),
                            src)


# --- one cell -----------------------------------------------------------------------------------------

def play_cell(cfg: TournamentConfig, label: str, scenario: str, seed: int) -> dict:
    """Play one (agent, scenario, seed) cell of the solo track; never raises for an agent's fault."""
    import agents as agent_registry
    from arena_env.economy.env import EconomyEnv
    from arena_env.wrappers.agents import AgentError, run_episode

    spec = next(a for a in cfg.agents if a.label == label)
    row: dict[str, Any] = {"agent": label, "scenario": scenario, "seed": seed, "failed": False, "error": None}
    env = EconomyEnv(scenario, info_level="light", num_threads=1, **cfg.overrides)
    lat = {a: [] for a in env.possible_agents}
    try:
        policy = agent_registry.make(spec.agent, **spec.params)
        res = run_episode(env, {"variant_0": policy}, seed=seed, timeout=cfg.decision_timeout_s, latencies=lat)
    except AgentError as exc:
        row.update(failed=True, error=str(exc), score=float("nan"), days=env.day, decisions=0, accepted=0,
                   rejected=0, clamped=0, latency_mean_ms=float("nan"), latency_p99_ms=float("nan"))
        return row
    decisions = res["decisions"]["variant_0"]
    ms = np.asarray(lat["variant_0"]) * 1e3
    h = env.history_i[:env.day]
    from arena_env.economy import kernels as K
    from arena_env.economy.metrics import xp_total

    enrolled = np.maximum(h[:, :, K.A_ENROLLED], 1)
    active = h[:, :, K.A_ACTIVE] / enrolled
    xp = xp_total(h) / enrolled
    row.update(
        score=float(res["rewards"]["variant_0"]), days=int(res["days"]),
        decisions=len(decisions), accepted=sum(d["accepted"] for d in decisions),
        rejected=sum(not d["accepted"] for d in decisions),
        clamped=sum(bool(d.get("clampedDeltas")) for d in decisions),
        latency_mean_ms=float(ms.mean()) if ms.size else 0.0,
        latency_p99_ms=float(np.percentile(ms, 99)) if ms.size else 0.0,
        active_lift=float((active[:, 1] - active[:, 0]).mean()),
        xp_per_user_lift=float((xp[:, 1] - xp[:, 0]).mean()),
        final_config=json.dumps(to_dict(env.config[1])),
    )
    row.update(_final_tests(env))
    row["step_rewards"] = [float(x) for x in res["step_rewards"]["variant_0"]]  # for the lift-over-time plot
    return row


def _final_tests(env) -> dict:
    """The variant's lift over the control at the end of the episode, and its test's p-value (Welch
    for the per-user metrics, Fisher exact for the rates), per metric."""
    from arena_env.economy import kernels as K
    from arena_env.economy.metrics import IS_BINARY, METRIC_NAMES

    out = {}
    for i, m in enumerate(METRIC_NAMES):
        t = env._tests[1, i]
        p = t[K.T_P_FISHER] if IS_BINARY[i] else t[K.T_P_WELCH]
        out[f"lift_{m}"] = float(env._mean[1, i] - env._mean[0, i])
        out[f"p_{m}"] = float(p) if np.isfinite(p) else None
    return out


def _cell_worker(args):
    cfg, cell = args
    return play_cell(cfg, *cell)


# --- the store ------------------------------------------------------------------------------------------

def cell_key(row: Mapping) -> tuple:
    return tuple(row[k] for k in CELL_KEYS)


def read_cells(path: Path) -> dict[tuple, dict]:
    """The rows of ``cells.jsonl`` by (cell key, cell digest); a line cut short by a kill is ignored
    (its cell runs again), and a cell written twice keeps its last row."""
    rows: dict[tuple, dict] = {}
    if not path.exists():
        return rows
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows[cell_key(row) + (row.get("config"),)] = row
    return rows


def manifest(cfg: TournamentConfig) -> dict:
    """Git commit, config hash, seeds and package versions of a run."""
    import importlib.metadata as md

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                                cwd=Path(__file__).resolve().parents[2]).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    versions = {}
    for pkg in ("numpy", "numba", "gymnasium", "pettingzoo", "pyarrow", "stable-baselines3", "torch"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {"git_commit": commit, "config_hash": cfg.digest(), "config_source": cfg.source,
            "seeds": [EVAL_SEED_BASE + i for i in range(cfg.seeds)], "python": sys.version.split()[0],
            "packages": versions, "eval_seed_base": EVAL_SEED_BASE}


def write_parquet(rows: list[dict], path: Path, meta: Mapping) -> None:
    """Write the rows atomically (temporary file, then rename) with the manifest as metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = sorted(rows, key=lambda r: (r["scenario"], r["agent"], r["seed"], r.get("config") or ""))
    table = pa.Table.from_pylist(rows)
    table = table.replace_schema_metadata({b"arena_manifest": json.dumps(meta).encode()})
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def read_results(path: Path) -> tuple[list[dict], dict]:
    """Rows and manifest of a ``results.parquet``."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(b"arena_manifest", b"{}"))
    return table.to_pylist(), meta


# --- the tournament --------------------------------------------------------------------------------

def run(cfg: TournamentConfig, out: str | os.PathLike, workers: int | None = None, resume: bool = False,
        progress: Callable[[int, int, float], None] | None = None) -> list[dict]:
    """Play every missing cell of ``cfg`` with ``workers`` processes (default: all cores) and return
    all the tournament's rows (see the module docstring for the store and resume rules)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "cells.jsonl"
    if not resume and log.exists():
        raise FileExistsError(f"{log} exists: pass --resume to finish that run or add to its results, "
                              "or choose another --out")
    store = read_cells(log)
    digests = {(a.label, s): cfg.cell_digest(a.label, s) for a in cfg.agents for s in cfg.scenarios}
    done = {c: store[c + (digests[c[:2]],)] for c in cfg.cells() if c + (digests[c[:2]],) in store}
    todo = [c for c in cfg.cells() if c not in done]
    total = len(cfg.cells())
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    start = time.monotonic()
    if log.exists() and log.stat().st_size and not log.read_bytes().endswith(b"\n"):
        with open(log, "a", encoding="utf-8") as fh:  # close a line cut short by a kill
            fh.write("\n")
    with open(log, "a", encoding="utf-8") as fh:
        def keep(row):
            row["config"] = digests[(row["agent"], row["scenario"])]
            row["baseline"] = next(a.baseline for a in cfg.agents if a.label == row["agent"])
            fh.write(json.dumps(row, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            done[cell_key(row)] = row
            if progress:
                progress(len(done), total, time.monotonic() - start)

        if workers == 1:
            for cell in todo:
                keep(play_cell(cfg, *cell))
        else:
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(workers) as pool:
                for row in pool.imap_unordered(_cell_worker, [(cfg, c) for c in todo]):
                    keep(row)
    rows = [done[c] for c in cfg.cells()]
    meta = manifest(cfg)
    write_parquet(list(read_cells(log).values()), out / "results.parquet", meta)  # every run's rows
    (out / "manifest.json").write_text(json.dumps(meta, indent=2) + "\n")
    return rows
