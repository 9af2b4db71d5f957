"""Tournaments: every agent on every scenario over many seeds, in worker processes, resumable.

A tournament is a function (:func:`run`), configured by a validated :class:`TournamentConfig`, and
made of *cells*: one episode of one scenario with one evaluation seed (:class:`Cell`).

Solo track
    Each agent controls ``variant_0`` of a scenario against the control, the other treatments
    holding.  Common random numbers: the env seed of a (scenario, seed) cell is the same for every
    agent, so every agent meets the same population and the same shocks and comparisons are
    paired by seed.  One cell per (agent, scenario, seed).

Head-to-head track
    ``agents_per_match`` agents (2-4) share one experiment as competing treatment variants, with the
    scenario's interference (rank among site peers shared by the treatments,
    ``economy.rank_strength``) on (a scenario without it, ``rank_strength: 0``, is refused for this
    track). The experiment has ``max(scenario n_agents, agents_per_match)`` treatments; treatments
    without an agent hold. On every seed, every combination of ``agents_per_match`` agents plays one
    match, or, with ``matches_per_seed: M`` (at most the number of combinations), seed ``i`` plays
    matches ``i*M`` to ``i*M + M - 1`` of a balanced schedule (:func:`balanced_schedule`): passes over
    every combination, the next match chosen among the unplayed combinations of the pass so that every
    agent plays equally often (within one match) and every pair meets equally often (within one
    meeting, for two agents per match), and seats chosen so that every agent holds every variant about
    equally often.  An agent's score in
    a match is its total reward (its lift over the control, net of the XP cost), the same quantity
    as in the solo track. One cell per (match, scenario, seed), with one row per agent.

Agents' updates
    Agents decide through :mod:`arena_env.wrappers.agents` with the env in ``action_mode="absolute"``:
    an update reaches the guardrails as the protocol's request (target values), so an agent asking for
    more than the delta limit is clamped by the guardrails and the clamp is recorded.

Seeds
    Evaluation seed ``i`` (0 <= i < seeds) is ``EVAL_SEED_BASE + i`` = 1,000,000 + i.  Training
    code must use seeds below 1,000,000, so the two never overlap.  The agent in ``variant_k`` is reset
    with ``env seed + 1 + k`` (the rule of :func:`arena_env.wrappers.agents.agent_seed`).

Faults
    An agent that raises (in ``reset``, ``act`` or ``update``), returns an invalid decision, or exceeds
    ``decision_timeout_s`` in one of those calls forfeits that cell: its row has ``failed=True``, a NaN score
    and the error text, and the tournament goes on.  In a head-to-head match the faulty agent's variant
    holds from then on and the other agents play the match to the end.

Results and resume
    Every finished cell is appended as one JSON line (all its rows) to ``cells.jsonl`` in the run
    directory (flushed and fsync'ed); a run started with ``resume=True`` skips the cells already there,
    so after a kill, even ``kill -9``, it finishes the missing cells without duplicating or losing rows
    (a line cut short by the kill is ignored and its cell runs again).  A cell is identified by
    (track, agents in seat order, scenario, seed) and a digest of what else changes its result (the
    agents' specs, the content of their checkpoints, the scenario's content after the overrides, timeout,
    number of treatments), so later tournaments in the same directory
    reuse matching cells: results accumulate.  All the rows of the directory are then written
    atomically (temporary file + rename) to ``results.parquet`` with the run manifest, sorted, so the
    file is the same for any number of workers.

Backends
    ``local`` plays the cells in worker processes of this machine; ``ray`` as Ray tasks on a local Ray or
    a running cluster (:func:`run`, docs/scaling.md).  The cells, the store, resume and the rows are the
    same: a cell's result depends only on the cell.  Agents of your own play in workers when named by
    import path (``mypackage.agents:MyAgent``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import itertools
import json
import math
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

SOLO, HEAD_TO_HEAD = "solo", "head-to-head"
TRACKS = (SOLO, HEAD_TO_HEAD)
MAX_AGENTS_PER_MATCH = 4  # the economy env has at most four treatment variants
MAX_TIMEOUT_S = 3600  # per decision


class TournamentConfigError(ValueError):
    """A tournament file or option is invalid; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class AgentSpec:
    """One contestant: a registered agent with hyperparameters, under a label."""

    label: str
    agent: str
    params: Mapping[str, Any] = field(default_factory=dict)
    baseline: bool = False
    reference: bool = False  # a reference row added by the tournament (hold, the static oracle), solo only


@dataclass(frozen=True)
class Cell:
    """One episode of a tournament: ``agents`` (labels) seated in ``variant_0, variant_1, ...``."""

    track: str
    agents: tuple[str, ...]
    scenario: str
    seed: int

    @property
    def match(self) -> str:
        return " vs ".join(self.agents)

    @property
    def key(self) -> tuple:
        return (self.track, self.match, self.scenario, self.seed)


@dataclass(frozen=True)
class TournamentConfig:
    """A validated tournament.  See ``configs/tournament.yaml`` for a commented example."""

    agents: tuple[AgentSpec, ...]
    scenarios: tuple[str, ...] = ("default",)
    seeds: int = 10
    tracks: tuple[str, ...] = (SOLO,)
    overrides: Mapping[str, Any] = field(default_factory=dict)  # env keywords for every scenario
    decision_timeout_s: float = 10.0
    agents_per_match: int = 2  # head-to-head only
    matches_per_seed: int | None = None  # head-to-head only; None: every combination on every seed
    oracle: bool = True  # solo track: add the reference rows (hold, the static oracle) that fix the unit
    oracles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # scenario -> oracle record
    source: str = "<defaults>"

    def references(self, scenario: str) -> tuple[AgentSpec, ...]:
        """The solo track's reference rows on ``scenario``: ``hold`` (unless an agent of the tournament
        is the registered ``hold``) and ``oracle-static`` (the static oracle's fixed config, from
        ``oracles``; see :mod:`arena_env.evaluation.oracle`).  Empty with ``oracle: false``."""
        from .oracle import HOLD_LABEL, ORACLE_LABEL

        if not self.oracle or SOLO not in self.tracks:
            return ()
        if scenario not in self.oracles:
            raise TournamentConfigError(f"{self.source}: the static oracle of scenario {scenario} is not resolved; "
                                        "call tournament.with_oracles(cfg) first")
        refs = []
        if not any(a.agent == "hold" for a in self.agents):
            refs.append(AgentSpec(HOLD_LABEL, "hold", {}, baseline=True, reference=True))
        refs.append(AgentSpec(ORACLE_LABEL, "fixed", {"config": dict(self.oracles[scenario]["config"])},
                              reference=True))
        return tuple(refs)

    def spec(self, label: str, scenario: str | None = None) -> AgentSpec:
        """The spec of ``label``: a tournament agent, or (with ``scenario``) a reference row."""
        for a in self.agents:
            if a.label == label:
                return a
        if scenario is not None:
            for a in self.references(scenario):
                if a.label == label:
                    return a
        raise KeyError(f"no agent labelled {label!r}" + (f" on scenario {scenario}" if scenario else ""))

    def matches(self, i: int) -> list[tuple[str, ...]]:
        """The head-to-head matches of evaluation seed index ``i``, seats in order: matches ``i*M`` to
        ``i*M + M - 1`` of :func:`balanced_schedule` (``M`` = ``matches_per_seed``, or every combination)."""
        labels = tuple(a.label for a in self.agents)
        n_combos = math.comb(len(labels), self.agents_per_match)
        m = n_combos if self.matches_per_seed is None else min(self.matches_per_seed, n_combos)
        sched = balanced_schedule(labels, self.agents_per_match, (i + 1) * m)
        return list(sched[i * m:(i + 1) * m])

    def cells(self) -> list[Cell]:
        """Every cell of the tournament, in a fixed order."""
        out = []
        for s in self.scenarios:
            if SOLO in self.tracks:
                out += [Cell(SOLO, (a.label,), s, EVAL_SEED_BASE + i) for a in (*self.agents, *self.references(s))
                        for i in range(self.seeds)]
            if HEAD_TO_HEAD in self.tracks:
                out += [Cell(HEAD_TO_HEAD, m, s, EVAL_SEED_BASE + i) for i in range(self.seeds) for m in self.matches(i)]
        return out

    def digest(self) -> str:
        """A hash of the whole tournament (not the source path)."""
        d = dataclasses.asdict(self)
        d.pop("source")
        return _hash(d)

    def cell_digest(self, cell: Cell) -> str:
        """A hash of everything that changes one cell's result except its key: the agents' specs, the
        scenario's content (after the overrides), the timeout and (head-to-head) the number of
        treatments.  Cells of another
        tournament with the same key and digest are reused (more seeds, agents or scenarios only add
        cells)."""
        specs = [self.spec(a, cell.scenario) for a in cell.agents]
        parts = [[dataclasses.asdict(sp) for sp in specs], cell.scenario, cell.track,
                 dict(self.overrides), self.decision_timeout_s, scenario_fingerprint(cell.scenario, self.overrides)]
        weights = [checkpoint_fingerprint(sp.params["path"]) for sp in specs if sp.agent in CHECKPOINT_AGENTS]
        if weights:  # a checkpoint retrained at the same path is another contestant
            parts.append(weights)
        if cell.track == HEAD_TO_HEAD:
            parts.append(n_treatments(self, cell))
        return _hash(parts)


@functools.lru_cache(maxsize=64)
def balanced_schedule(labels: tuple[str, ...], k: int, n: int) -> tuple[tuple[str, ...], ...]:
    """The first ``n`` matches of the head-to-head schedule of ``labels``, ``k`` agents per match,
    seats in order.  Greedy and deterministic; a prefix of a longer schedule is the shorter schedule,
    so adding seeds keeps the earlier seeds' matches.

    The schedule runs in *passes*, each playing every combination of ``k`` agents once, so after
    every full pass every pair has met equally often and every agent has played equally often.  With
    ``k = 2`` a pass is a round robin (circle method): rounds of disjoint pairs, so any prefix of the
    schedule has every pair met equally often within one meeting and, at round boundaries, every agent
    played equally often within one match.  Within a pass (``k > 2``) or a round (``k = 2``) the next
    match is the unplayed combination whose agents have played least (then whose pairs have met
    least, then the first in ``itertools.combinations`` order).  Seats: of the ``k!`` orders of the
    match, the one that keeps the spread of every agent's seat counts smallest (then whose agents
    have sat least in those seats, then the first order), so every agent sits in every seat about
    equally often; docs/evaluation.md gives the measured worst cases.
    """
    idx = {a: j for j, a in enumerate(labels)}
    combos = list(itertools.combinations(labels, k))
    if k == 2:  # a pass is a round robin by the circle method: rounds of disjoint pairs
        groups = [[tuple(sorted(p, key=idx.get)) for p in r] for r in _round_robin(labels)]
    else:
        groups = [combos]
    g = 0
    plays = dict.fromkeys(labels, 0)
    pairs = {p: 0 for p in itertools.combinations(labels, 2)}
    seats = {a: [0] * k for a in labels}
    out: list[tuple[str, ...]] = []
    left: list[tuple[str, ...]] = []
    first: dict[tuple[str, ...], tuple[str, ...]] = {}  # k = 2: the seats of each pair in the first pass
    while len(out) < n:
        if not left:
            left = list(groups[g % len(groups)])
            g += 1
        best = min(range(len(left)), key=lambda j: (
            max(plays[a] for a in left[j]), sum(plays[a] for a in left[j]),
            max(pairs[p] for p in itertools.combinations(left[j], 2)),
            sum(pairs[p] for p in itertools.combinations(left[j], 2)), j))
        combo = left.pop(best)
        pass_no = (g - 1) // len(groups)
        if k == 2 and pass_no > 0:  # the first pass's seats, swapped in every odd pass
            order = first[combo] if pass_no % 2 == 0 else first[combo][::-1]
        else:
            order = min(itertools.permutations(combo), key=lambda o: (
                max(max(seats[a][s] + 1, *seats[a]) - min(seats[a][t] + (t == s) for t in range(k))
                    for s, a in enumerate(o)),
                sum(seats[a][s] for s, a in enumerate(o)), tuple(idx[a] for a in o)))
            first[combo] = order
        for s, a in enumerate(order):
            seats[a][s] += 1
            plays[a] += 1
        for p in itertools.combinations(combo, 2):
            pairs[p] += 1
        out.append(order)
    return tuple(out)


def _round_robin(labels: tuple[str, ...]) -> list[list[tuple[str, str]]]:
    """The rounds of a round robin (circle method): every pair once, each round a set of disjoint
    pairs (with an odd number of agents, one agent sits out each round)."""
    arr: list = list(labels) + ([None] if len(labels) % 2 else [])
    n = len(arr)
    rounds = []
    for _ in range(n - 1):
        rounds.append([(arr[i], arr[n - 1 - i]) for i in range(n // 2) if arr[i] is not None and arr[n - 1 - i] is not None])
        arr = [arr[0], arr[-1], *arr[1:-1]]
    return rounds


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


CHECKPOINT_AGENTS = ("sb3", "rllib")  # agents whose ``path`` is a trained policy (a file or a directory)


def checkpoint_fingerprint(path: str) -> str:
    """A hash of the content of a policy checkpoint (a file, or every file of a directory), recomputed only
    when a file's size or modification time changes; ``"missing"`` when it is gone (the cell then fails
    to build its agent and says so)."""
    p = Path(path)
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p] if p.is_file() else []
    if not files:
        return "missing"
    stats = tuple((str(f.relative_to(p) if p.is_dir() else f.name), f.stat().st_size, f.stat().st_mtime_ns)
                  for f in files)
    return _checkpoint_hash(str(p), stats)


@functools.lru_cache(maxsize=64)
def _checkpoint_hash(path: str, stats: tuple) -> str:
    p = Path(path)
    h = hashlib.sha256()
    for name, _size, _mtime in stats:
        h.update(name.encode() + b"\0")
        h.update((p / name if p.is_dir() else p).read_bytes())
    return h.hexdigest()[:16]


def scenario_fingerprint(scenario: str, overrides: Mapping[str, Any]) -> str:
    """A hash of the content of a scenario after ``overrides`` (so an edited scenario file does not
    reuse the results of its earlier version)."""
    from arena_env.economy.scenario import find

    st = find(scenario).stat()
    return _fingerprint(scenario, json.dumps(dict(overrides), sort_keys=True, default=str), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=256)
def _fingerprint(scenario: str, overrides_json: str, mtime_ns: int, size: int) -> str:
    from arena_env.economy.scenario import load

    over = {k: v for k, v in json.loads(overrides_json).items() if k not in ENV_ONLY}
    d = dataclasses.asdict(load(scenario, **over))
    d.pop("source", None)
    return _hash(d)


@functools.lru_cache(maxsize=256)
def _scenario_agents(scenario: str, n_agents: int | None) -> int:
    from arena_env.economy.scenario import load

    return load(scenario).n_agents if n_agents is None else n_agents


def n_treatments(cfg: TournamentConfig, cell: Cell) -> int:
    """Treatment variants of a cell's experiment: the scenario's, or more for a head-to-head match."""
    n = _scenario_agents(cell.scenario, cfg.overrides.get("n_agents"))
    return max(n, len(cell.agents)) if cell.track == HEAD_TO_HEAD else n


SHIPPED_POLICY = Path(__file__).resolve().parents[2] / "configs" / "policies" / "ppo-default.zip"
"""The PPO policy trained by ``python train.py --config configs/ppo.yaml`` (configs/policies/README.md)."""
DEFAULT_AGENTS = (
    AgentSpec("hold", "hold", baseline=True),
    AgentSpec("random", "random", baseline=True),
    AgentSpec("rule", "rule", baseline=True),
    AgentSpec("ucb1", "ucb1"),
    AgentSpec("linucb", "linucb"),
    AgentSpec("bayes_opt", "bayes_opt"),
    AgentSpec("ppo", "sb3", {"path": str(SHIPPED_POLICY)}),
)
_TOP_KEYS = {"agents", "scenarios", "seeds", "track", "overrides", "decision_timeout_s", "agents_per_match",
             "matches_per_seed", "oracle"}
_AGENT_KEYS = {"label", "agent", "params", "baseline", "checkpoint"}
ENV_ONLY = {"backend", "render_mode", "action_mode", "num_threads", "info_level"}  # env arguments, not scenario keys
_SET_BY_TOURNAMENT = {"action_mode", "num_threads", "info_level", "render_mode"}  # play_cell fixes these


def default_config(seeds: int = 10) -> TournamentConfig:
    """The quick tournament of ``python evaluate.py``: baselines, learners and the shipped PPO policy
    (:data:`SHIPPED_POLICY`) on ``default`` as shipped (its static oracle comes from the shipped report
    card), both tracks (head-to-head: every pair on every seed)."""
    return TournamentConfig(DEFAULT_AGENTS, ("default",), seeds, (SOLO, HEAD_TO_HEAD), {})


def _positive_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 1


def load_config(path: str | os.PathLike, seeds: int | None = None) -> TournamentConfig:
    """Read and validate a tournament YAML file; unknown keys and bad values are errors naming them."""
    from arena_env.economy.scenario import read_yaml

    return from_dict(read_yaml(path, TournamentConfigError), str(path), seeds)


def from_dict(data: Mapping[str, Any], src: str, seeds: int | None = None) -> TournamentConfig:
    """Validate a tournament given as a mapping (the content of a tournament file; ``src`` names it in
    errors, and relative checkpoint paths are relative to its directory); ``seeds`` overrides ``seeds``."""
    import agents as agent_registry
    from agents.learners import META_NAME
    from arena_env.economy.scenario import find

    from .oracle import HOLD_LABEL, ORACLE_LABEL

    def err(key, msg):
        return TournamentConfigError(f"{src}: {key}: {msg}")

    for k in data:
        if k not in _TOP_KEYS:
            raise err(k, f"unknown key; allowed keys: {', '.join(sorted(_TOP_KEYS))}")
    specs = []
    raw = data.get("agents")
    if not isinstance(raw, list) or not raw:
        raise err("agents", "a non-empty list of {agent: <registered name>, label?, params?, baseline?} "
                            "or {checkpoint: <file.zip>, label?, params?} is required")
    for i, a in enumerate(raw):
        if isinstance(a, str):
            a = {"agent": a}
        if not isinstance(a, Mapping) or ("agent" in a) == ("checkpoint" in a):
            raise err(f"agents[{i}]", "expected a mapping with the key 'agent' (a registered name) or the key "
                                      "'checkpoint' (a Stable-Baselines3 .zip or an RLlib policy/), not both")
        for k in a:
            if k not in _AGENT_KEYS:
                raise err(f"agents[{i}].{k}", f"unknown key; allowed keys: {', '.join(sorted(_AGENT_KEYS))}")
        params = a.get("params") or {}
        if not isinstance(params, Mapping):
            raise err(f"agents[{i}].params", "expected a mapping of hyperparameters")
        params = dict(params)
        given = a.get("label")
        if "label" in a and (isinstance(given, bool) or not isinstance(given, (str, int, float))):
            raise err(f"agents[{i}].label", f"a string, got {given!r}")
        if "checkpoint" in a:  # a trained policy: the sb3 agent with the file, relative to the tournament file
            ckpt = Path(str(a["checkpoint"])).expanduser()
            if not ckpt.is_absolute():
                ckpt = (Path(src).resolve().parent / ckpt)
            if ckpt.is_dir() and (ckpt / META_NAME).is_file():  # an RLlib run's policy/ (train.py writes it)
                name = "rllib"
            elif ckpt.is_file():
                name = "sb3"
            else:
                raise err(f"agents[{i}].checkpoint", f"no such file {str(ckpt)!r} (a Stable-Baselines3 .zip, or the "
                                                     "policy/ directory of an RLlib run; paths are relative to the "
                                                     "tournament file)")
            params = {**params, "path": str(ckpt)}
            label = str(a.get("label", ckpt.stem if name == "sb3" else ckpt.parent.name))
        else:
            name = a["agent"]
            label = str(a.get("label", name))
        try:
            agent_registry.resolve(name)
        except agent_registry.AgentConfigError as exc:
            raise err(f"agents[{i}].agent", str(exc)) from None
        try:
            agent_registry.make(name, **params)
        except Exception as exc:
            raise err(f"agents[{i}].params", str(exc)) from None
        if label == ORACLE_LABEL or (label == HOLD_LABEL and name != "hold"):
            raise err(f"agents[{i}].label", f"{label!r} is the label of a reference row the tournament adds "
                                            f"({ORACLE_LABEL}: the static oracle, {HOLD_LABEL}: the registered "
                                            "hold agent); choose another label")
        if " vs " in label or not label.strip():
            raise err(f"agents[{i}].label", f"{label!r}: a label must be non-empty and must not contain ' vs ' "
                                            "(it separates the agents of a match)")
        baseline = a.get("baseline", False)
        if not isinstance(baseline, bool):
            raise err(f"agents[{i}].baseline", f"true or false, got {baseline!r}")
        specs.append(AgentSpec(label, str(name), params, baseline))
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
        if s in scenarios[:i]:
            raise err(f"scenarios[{i}]", f"{s!r} is listed twice")
    n = data.get("seeds", 10) if seeds is None else seeds
    if not _positive_int(n):
        raise err("seeds", f"a positive integer number of evaluation seeds, got {n!r}")
    tracks = data.get("track", SOLO)
    tracks = [tracks] if isinstance(tracks, str) else tracks
    if not isinstance(tracks, list) or not tracks or any(t not in TRACKS for t in tracks) \
            or len(set(tracks)) != len(tracks):
        raise err("track", f"{data.get('track')!r} is not available; tracks: {', '.join(TRACKS)} "
                           f"(one, or a list of both)")
    k = data.get("agents_per_match", 2)
    if not _positive_int(k) or not 2 <= k <= MAX_AGENTS_PER_MATCH:
        raise err("agents_per_match", f"an integer from 2 to {MAX_AGENTS_PER_MATCH} (the env's treatment "
                                      f"variants), got {k!r}")
    if HEAD_TO_HEAD in tracks and k > len(specs):
        raise err("agents_per_match", f"{k} agents per match but only {len(specs)} agents")
    mps = data.get("matches_per_seed")
    n_combos = math.comb(len(specs), k) if k <= len(specs) else 0
    if mps is not None and (not _positive_int(mps) or mps > n_combos):
        raise err("matches_per_seed", f"a positive integer up to {n_combos} (the combinations of {k} of "
                                      f"{len(specs)} agents), or null for every combination, got {mps!r}")
    overrides = data.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        raise err("overrides", "a mapping of environment keywords (e.g. max_days, n_users)")
    for key in overrides:
        if key in _SET_BY_TOURNAMENT:
            raise err(f"overrides.{key}", "is set by the tournament (absolute requests, one thread per worker, "
                                        "light infos); remove it")
    from arena_env.economy import backends
    from arena_env.economy.scenario import ScenarioError, load

    if "backend" in overrides and overrides["backend"] not in backends.NAMES:  # the one env argument left to set
        raise err("overrides.backend", f"one of {', '.join(backends.NAMES)}, got {overrides['backend']!r}")

    for i, s in enumerate(scenarios):
        try:
            sc = load(s, **{k: v for k, v in overrides.items() if k not in ENV_ONLY})
        except ScenarioError as exc:
            raise err("overrides", f"on scenario {s}: {exc}") from None
        if HEAD_TO_HEAD in tracks and sc.economy.rank_strength <= 0:
            raise err(f"scenarios[{i}]", f"the head-to-head track needs interference between the variants, but "
                                         f"scenario {s} has economy.rank_strength {sc.economy.rank_strength:g}; "
                                         "choose another scenario or set overrides: {economy: {rank_strength: 0.5}}")
    oracle = data.get("oracle", True)
    if not isinstance(oracle, bool):
        raise err("oracle", f"true (add the hold and static-oracle reference rows that fix the leaderboard's unit) "
                            f"or false (raw scores), got {oracle!r}")
    timeout = data.get("decision_timeout_s", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT_S:
        raise err("decision_timeout_s", f"a number of seconds above 0 and at most {MAX_TIMEOUT_S}, got {timeout!r}")
    return TournamentConfig(tuple(specs), tuple(str(s) for s in scenarios), n, tuple(tracks), dict(overrides),
                            float(timeout), k, mps, oracle, {}, src)


def with_oracles(cfg: TournamentConfig, workers: int | None = None, progress: bool = False,
                 cache: str | os.PathLike | None = None) -> TournamentConfig:
    """``cfg`` with the static oracle of every scenario resolved (looked up in the shipped cards or
    the cache, or computed: :func:`arena_env.evaluation.oracle.static_oracle`).  A config with
    ``oracle: false``, without the solo track, or already resolved is returned as is."""
    from arena_env.economy.scenario import ScenarioError

    from .oracle import static_oracle

    if not cfg.oracle or SOLO not in cfg.tracks or all(s in cfg.oracles for s in cfg.scenarios):
        return cfg
    found = dict(cfg.oracles)
    for s in cfg.scenarios:
        if s not in found:
            try:
                found[s] = static_oracle(s, cfg.overrides, workers=max(1, workers or os.cpu_count() or 1),
                                         cache=cache, progress=progress)
            except ScenarioError as exc:
                raise TournamentConfigError(f"{cfg.source}: scenarios: {s}: {exc}") from None
    return dataclasses.replace(cfg, oracles=found)


# --- one cell -----------------------------------------------------------------------------------------

_FAILED = {"score": float("nan"), "latency_mean_ms": float("nan"), "latency_p99_ms": float("nan")}


def play_cell(cfg: TournamentConfig, cell: Cell) -> list[dict]:
    """Play one cell and return one row per agent in seat order; never raises for an agent's fault."""
    import agents as agent_registry
    from arena_env.economy import layout as K
    from arena_env.economy.env import EconomyEnv
    from arena_env.economy.metrics import METRIC_NAMES, xp_total
    from arena_env.wrappers.agents import run_episode

    kw = dict(cfg.overrides)
    if cell.track == HEAD_TO_HEAD:
        kw["n_agents"] = n_treatments(cfg, cell)
    # absolute targets: an agent's update reaches the guardrails as the protocol's request, so clamps
    # and rejections are the guardrails' own records (continuous actions would be clipped before them)
    env = EconomyEnv(cell.scenario, info_level="light", num_threads=1, action_mode="absolute", **kw)
    seats = {f"variant_{k}": label for k, label in enumerate(cell.agents)}
    lat = {a: [] for a in env.possible_agents}
    trace = []
    policies, broken = {}, {}
    for seat, label in seats.items():
        spec = cfg.spec(label, cell.scenario)
        try:
            policies[seat] = agent_registry.make(spec.agent, **spec.params)
        except Exception as exc:  # e.g. a checkpoint deleted since the tournament file was checked
            broken[seat] = f"{seat} ({label}) could not be built: {type(exc).__name__}: {exc}"
    if policies:
        res = run_episode(env, policies, seed=cell.seed, timeout=cfg.decision_timeout_s, latencies=lat,
                          forfeit=True, observe=lambda e: trace.append(e._mean.copy()) if e.day else None)
    else:  # no agent could be built: nothing to play
        res = {"days": 0, "decisions": {a: [] for a in env.possible_agents}, "failed": {}}
    failed = {**broken, **res["failed"]}
    if policies:
        h = env.history_i[:env.day]
        enrolled = np.maximum(h[:, :, K.A_ENROLLED], 1)
        active = h[:, :, K.A_ACTIVE] / enrolled
        xp = xp_total(h) / enrolled
        traj = np.asarray(trace).reshape(-1, *env._mean.shape)  # (steps, variants, metrics)
    rows = []
    for seat_i, (seat, label) in enumerate(seats.items()):
        v = seat_i + 1
        decisions = res["decisions"][seat]
        row: dict[str, Any] = {
            "agent": label, "scenario": cell.scenario, "seed": cell.seed, "track": cell.track, "match": cell.match,
            "seat": seat_i, "failed": seat in failed, "error": failed.get(seat), "days": int(res["days"]),
            "decisions": len(decisions), "accepted": sum(d["accepted"] for d in decisions),
            "rejected": sum(not d["accepted"] for d in decisions),
            "clamped": sum(bool(d.get("clampedDeltas")) for d in decisions)}
        if seat in failed:
            row.update(_FAILED)
            rows.append(row)
            continue
        ms = np.asarray(lat[seat]) * 1e3
        row.update(
            score=float(res["rewards"][seat]),
            latency_mean_ms=float(ms.mean()) if ms.size else 0.0,
            latency_p99_ms=float(np.percentile(ms, 99)) if ms.size else 0.0,
            active_lift=float((active[:, v] - active[:, 0]).mean()),
            xp_per_user_lift=float((xp[:, v] - xp[:, 0]).mean()),
            final_config=json.dumps(to_dict(env.config[v])),
        )
        row.update(_final_tests(env, v))
        row["step_rewards"] = [float(x) for x in res["step_rewards"][seat]]  # for the lift-over-time plot
        for i, m in enumerate(METRIC_NAMES):  # for the metric trajectories: the variant's and the control's
            row[f"traj_{m}"] = [float(x) for x in traj[:, v, i]]
            row[f"control_{m}"] = [float(x) for x in traj[:, 0, i]]
        rows.append(row)
    return rows


def _final_tests(env, v: int) -> dict:
    """Variant ``v``'s lift over the control at the end of the episode, and its test's p-value
    (Welch for the per-user metrics, Fisher exact for the rates), per metric."""
    from arena_env.economy import stats_kernels as T
    from arena_env.economy.metrics import IS_BINARY, METRIC_NAMES

    out = {}
    for i, m in enumerate(METRIC_NAMES):
        t = env._tests[v, i]
        p = t[T.T_P_FISHER] if IS_BINARY[i] else t[T.T_P_WELCH]
        out[f"lift_{m}"] = float(env._mean[v, i] - env._mean[0, i])
        out[f"p_{m}"] = float(p) if np.isfinite(p) else None
    return out


def _cell_worker(args):
    cfg, cell = args
    return cell, play_cell(cfg, cell)


def _play_remote(cfg: TournamentConfig, cell: Cell):
    return cell, play_cell(cfg, cell)


def _run_on_ray(cfg: TournamentConfig, todo: list[Cell], keep, out: Path, address: str | None,
                num_cpus: int | None, cap: int | None) -> None:
    """The cells as Ray tasks (one CPU each), ``keep``-ing each as it finishes; at most ``cap`` in flight."""
    from arena_env.distributed import ray_session

    with ray_session(address, num_cpus=num_cpus, run_dir=out) as ray:
        task = ray.remote(num_cpus=1, max_retries=2)(_play_remote)  # a worker that dies is retried
        ref = ray.put(cfg)
        queue = list(reversed(todo))
        pending: list = []
        limit = cap or len(todo)
        while queue or pending:
            while queue and len(pending) < limit:
                pending.append(task.remote(ref, queue.pop()))
            ready, pending = ray.wait(pending, num_returns=1)
            keep(*ray.get(ready[0]))


# --- the store ------------------------------------------------------------------------------------------

ROW_ORDER = ("track", "scenario", "match", "seed", "seat", "config")


def read_cells(path: Path) -> dict[tuple, list[dict]]:
    """The rows of each cell of ``cells.jsonl`` by (cell key..., cell digest); a line cut short by a
    kill is ignored (its cell runs again), and a cell written twice keeps its last line."""
    cells: dict[tuple, list[dict]] = {}
    if not path.exists():
        return cells
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
                cells[tuple(rec["key"]) + (rec["config"],)] = rec["rows"]
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return cells


def provenance(packages: tuple[str, ...]) -> dict:
    """The git commit of the checkout (None outside one), the Python version and ``packages``' versions."""
    import importlib.metadata as md

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                                cwd=Path(__file__).resolve().parents[2]).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    versions = {}
    for pkg in packages:
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {"git_commit": commit, "python": sys.version.split()[0], "packages": versions}


def manifest(cfg: TournamentConfig) -> dict:
    """Git commit, config hash, seeds and package versions of a run."""
    prov = provenance(("numpy", "numba", "gymnasium", "pettingzoo", "pyarrow", "openskill", "stable-baselines3",
                       "torch"))
    return {"git_commit": prov["git_commit"], "config_hash": cfg.digest(), "config_source": cfg.source,
            "tracks": list(cfg.tracks), "seeds": [EVAL_SEED_BASE + i for i in range(cfg.seeds)],
            "python": prov["python"], "packages": prov["packages"], "eval_seed_base": EVAL_SEED_BASE,
            "oracles": {s: dict(r) for s, r in cfg.oracles.items()}}


def write_parquet(rows: list[dict], path: Path, meta: Mapping) -> None:
    """Write the rows atomically (temporary file, then rename) with the manifest as metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = sorted(rows, key=lambda r: tuple(r.get(k, 0 if k in ("seed", "seat") else "") for k in ROW_ORDER))
    columns = list(dict.fromkeys(k for r in rows for k in r))  # a failed cell's row lacks the metric columns
    table = pa.Table.from_pylist([{k: r.get(k) for k in columns} for r in rows])
    table = table.replace_schema_metadata({b"arena_manifest": json.dumps(meta).encode()})
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def read_results(path: Path) -> tuple[list[dict], dict]:
    """Rows and manifest of a ``results.parquet``; the error names the file and the fix."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise FileNotFoundError(f"{path}: cannot read the results ({exc}); run a tournament into this directory "
                                "first (python evaluate.py --out DIR)") from None
    meta = json.loads((table.schema.metadata or {}).get(b"arena_manifest", b"{}"))
    return table.to_pylist(), meta


def rows_of(cfg: TournamentConfig, rows: list[dict]) -> list[dict]:
    """The rows of ``cfg``'s cells among ``rows`` (e.g. a results store that accumulated several
    tournaments), in the order of ``rows``."""
    want = {c.key + (cfg.cell_digest(c),) for c in cfg.cells()}
    return [r for r in rows if (r.get("track") or SOLO, r.get("match") or r["agent"], r["scenario"], r["seed"],
                                r.get("config")) in want]


# --- the tournament --------------------------------------------------------------------------------

BACKENDS = ("local", "ray")


def run(cfg: TournamentConfig, out: str | os.PathLike, workers: int | None = None, resume: bool = False,
        progress: Callable[[int, int, float, int], None] | None = None, backend: str = "local",
        address: str | None = None) -> list[dict]:
    """Play every missing cell of ``cfg`` with ``workers`` processes (default: all cores) and return
    all the tournament's rows (see the module docstring for the store and resume rules).

    ``backend="ray"`` plays the cells as Ray tasks (:mod:`arena_env.distributed`): on a local Ray of
    ``workers`` CPUs, or on the running cluster at ``address`` (``"auto"``, ``"host:6379"``; there
    ``workers``, when given, caps the cells in flight).  The cells, the store, resume and the results are
    the same as with the local backend: a cell's result depends only on the cell.

    ``progress(done, total, elapsed_s, reused)`` is called after every cell; ``reused`` cells were
    already in the store when the run started."""
    if backend not in BACKENDS:
        raise TournamentConfigError(f"unknown backend {backend!r}; the backends are {', '.join(BACKENDS)}")
    if address and backend != "ray":
        raise TournamentConfigError(f"a Ray address ({address!r}) needs backend 'ray'")
    from arena_env.paths import check_out_dir, run_in

    cap = workers
    out = check_out_dir(out)
    log = out / "cells.jsonl"
    if not resume and log.exists():
        raise FileExistsError(f"{log} exists: pass --resume to finish that run or add to its results, "
                              "or choose another --out")
    if not log.exists() and run_in(out):  # a replay run's directory: its results would be overwritten
        raise FileExistsError(f"{out} holds another run ({run_in(out)}) but no tournament cell store (cells.jsonl): "
                              "its files would be overwritten; choose another --out")
    if resume and not out.is_dir():
        raise FileNotFoundError(f"--resume: the run directory {out} does not exist; check the path, or drop "
                                "--resume to start a new run there")
    if backend == "ray":  # before the oracle searches and the store: a missing Ray leaves nothing behind
        from arena_env.distributed import check_ray

        check_ray(address)
    cfg = with_oracles(cfg, workers, progress=progress is not None)
    new_dir, new_store = not out.exists(), not log.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _play(cfg, out, log, workers, cap, progress, backend, address)
    except BaseException:
        # a run that stored no cell (Ray refused the cluster, an interrupt before the first cell) leaves no
        # empty store behind, which would make the corrected command ask for --resume
        if new_store and log.exists() and log.stat().st_size == 0:
            log.unlink()
            if new_dir:
                with contextlib.suppress(OSError):
                    out.rmdir()  # only if empty
        raise


def _play(cfg: TournamentConfig, out: Path, log: Path, workers: int | None, cap: int | None,
          progress: Callable[[int, int, float, int], None] | None, backend: str, address: str | None) -> list[dict]:
    """The body of :func:`run` once the run directory exists: play the missing cells, write the results."""
    store = read_cells(log)
    cells = cfg.cells()
    digests = {c: cfg.cell_digest(c) for c in cells}
    done = {c: store[c.key + (digests[c],)] for c in cells if c.key + (digests[c],) in store}
    todo = [c for c in cells if c not in done]
    reused = len(done)
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    start = time.monotonic()
    if log.exists() and log.stat().st_size and not log.read_bytes().endswith(b"\n"):
        with open(log, "a", encoding="utf-8") as fh:  # close a line cut short by a kill
            fh.write("\n")
    with open(log, "a", encoding="utf-8") as fh:
        def keep(cell, rows):
            for row in rows:
                spec = cfg.spec(row["agent"], cell.scenario)
                row["config"] = digests[cell]
                row["baseline"] = spec.baseline
                row["reference"] = spec.reference
                row["kind"] = spec.agent  # the registered agent behind the label
            fh.write(json.dumps({"key": list(cell.key), "config": digests[cell], "rows": rows}, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            done[cell] = rows
            if progress:
                progress(len(done), len(cells), time.monotonic() - start, reused)

        if backend == "ray":
            if todo:
                _run_on_ray(cfg, todo, keep, out, address, None if address else workers, cap)
        elif workers == 1:
            for cell in todo:
                keep(cell, play_cell(cfg, cell))
        else:
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(workers) as pool:
                for cell, rows in pool.imap_unordered(_cell_worker, [(cfg, c) for c in todo]):
                    keep(cell, rows)
    meta = manifest(cfg)
    previous = out / "manifest.json"
    if previous.exists():  # the store holds every run's rows: keep every run's manifest
        try:
            old = json.loads(previous.read_text())
            meta["history"] = old.pop("history", []) + [old]
        except (json.JSONDecodeError, AttributeError):
            meta["history"] = []
    every = [r for rows in read_cells(log).values() for r in rows]  # every run's rows
    write_parquet(every, out / "results.parquet", meta)
    tmp = previous.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, previous)
    return [r for c in cells for r in done[c]]
