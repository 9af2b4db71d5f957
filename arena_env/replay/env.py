"""Replay arena: competing policies on the decision points of a logged process, as a PettingZoo parallel env.

Description
-----------
A log of events (leads, tickets, impressions: :mod:`arena_env.replay.log`) and its manifest define
decision points (:mod:`arena_env.replay.snapshots`): moments where a policy could act, each with a
point-in-time snapshot of its case, the actions allowed there, what history did (the logged action
and its propensity) and the outcome that followed.  The env walks the decision points in time
order; at every step each agent (a competing policy) picks an action for the current decision point
(or batch of them), and is rewarded by an off-policy estimator of what its action would have earned
(:mod:`arena_env.replay.ope`).  All agents see the same rows, so their returns are paired.

Agents
------
``policy_0`` ... ``policy_{n-1}`` (``agents=n``) or the names given (``agents=[...]``); fixed at
construction.

Action space
------------
``batch_size=1`` (default): ``Discrete(n_actions)``, the index of an action in the manifest's
``allowed_actions``.  ``batch_size=B``: ``MultiDiscrete([n_actions] * B)``, one action per row of the
batch (the last batch may be shorter: its padding entries are ignored).  An action that is out of
range or not allowed at its decision point (``action_mask`` 0), a wrong shape or a missing agent
raise ``ValueError`` naming the agent, the row and the allowed actions, before any state changes.

Observation space
-----------------
``Dict({"observation": Box(-inf, inf, (F,) or (B, F), float32), "action_mask": MultiBinary(n_actions)
or (B, n_actions)})``, the same for every agent.  ``observation`` is the snapshot encoded by
:func:`encode`: every numeric feature (NaN as 0), a 0/1 "missing" flag for each numeric feature that is
missing somewhere in the log, and a one-hot block for each string feature (its ``max_categories - 1``
most frequent values in the log, then "other"; a missing value is all zeros).  ``env.feature_names``
names the columns.  Padding rows of a short last batch are zeros with an all-zero mask.

Reward
------
Per agent per step, the sum over the batch's rows of the estimator's per-row term for the agent's
action ``a`` (logged action ``a_i``, propensity ``p_i``, reward ``r_i``, reward model ``q``):

=============  ====================================================================================
estimator      per-row term
=============  ====================================================================================
``replay``     ``r_i`` if ``a == a_i`` else 0 (the matched rows' mean is the estimate)
``ipw``        ``1{a == a_i} r_i / p_i``
``dm``         ``q(x_i, a)``
``dr``         ``q(x_i, a) + 1{a == a_i} (r_i - q(x_i, a_i)) / p_i``
=============  ====================================================================================

so the return divided by the number of rows is the IPW, DM or DR estimate of the agent's value.
``q`` is fitted once at construction, cross-fitted by case (``ope.fit_reward_model``).  At the end
of the episode ``infos[agent]["estimate"]`` holds ``ope.evaluate`` of the agent's actions by the
configured estimator (with its interval and diagnostics) and ``infos[agent]["violations"]`` the
share of the agent's actions that broke each manifest constraint.

Rows: decision points whose outcome is censored are left out, and so are those without a logged
action (no estimator can use them); ``env.excluded`` counts both.  Estimators that weight by
propensity need one for every remaining row, else construction fails naming the first row.

Starting state and episode end
------------------------------
``reset`` starts at the first decision point; the episode terminates after the last one (or after
``max_steps`` steps), and ``self.agents`` is then empty.  The env is deterministic (the log decides
everything); ``seed`` only seeds ``self.np_random`` for agents that want it.

Arguments
---------
``log`` (a path, an ``EventLog`` or a prepared ``Replay``), ``manifest`` (with a path), ``agents``,
``estimator`` (``replay``, ``ipw``, ``dm``, ``dr``), ``batch_size``, ``first_only`` (each case's first
decision only: per-decision estimates assume actions do not change what follows), ``max_categories``,
``max_steps``, ``reward_model`` (a scikit-learn estimator, or ``"auto"``), ``seed``.

Version history
---------------
* v0: initial version.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from . import expr
from .log import EventLog, load_log
from .snapshots import Replay, prepare

STEP_ESTIMATORS = ("replay", "ipw", "dm", "dr")


def encode(replay: Replay, max_categories: int = 16) -> tuple[np.ndarray, tuple[str, ...]]:
    """The decision rows' snapshots as a float32 matrix and the names of its columns (see the module docstring)."""
    cols, names = [], []
    for name, typ in replay.feature_types.items():
        v = replay.features[name]
        if typ == expr.STRING:
            vals = np.asarray(v, dtype=object)
            present = vals != None  # noqa: E711 - elementwise
            uniq, counts = np.unique(vals[present].astype(str), return_counts=True) if present.any() else ([], [])
            top = [u for _, u in sorted(zip(-np.asarray(counts), uniq))][:max_categories - 1]
            for u in top:
                cols.append((vals == u).astype(np.float32))
                names.append(f"{name}={u}")
            if len(uniq) > len(top):
                cols.append((present & ~np.isin(vals, np.asarray(top, dtype=object))).astype(np.float32))
                names.append(f"{name}=<other>")
            continue
        x = np.asarray(v, dtype=np.float64)
        miss = np.isnan(x)
        cols.append(np.where(miss, 0.0, x).astype(np.float32))
        names.append(name)
        if miss.any():
            cols.append(miss.astype(np.float32))
            names.append(f"{name}:missing")
    mat = np.stack(cols, axis=1) if cols else np.zeros((len(replay), 0), np.float32)
    return mat, tuple(names)


class ReplayEnv(ParallelEnv):
    """See the module docstring."""

    metadata = {"name": "replay_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, log: str | os.PathLike | EventLog | Replay, manifest: Any = None, *,
                 agents: int | Sequence[str] = 1, estimator: str = "ipw", batch_size: int = 1,
                 first_only: bool = False, max_categories: int = 16, max_steps: int | None = None,
                 reward_model: Any = "auto", seed: int | None = None):
        self._kwargs = dict(log=log, manifest=manifest, agents=agents, estimator=estimator, batch_size=batch_size,
                            first_only=first_only, max_categories=max_categories, max_steps=max_steps,
                            reward_model=reward_model, seed=seed)
        if estimator not in STEP_ESTIMATORS:
            raise ValueError(f"estimator={estimator!r}: the env's step rewards use one of {', '.join(STEP_ESTIMATORS)} "
                             "(every estimator of arena_env.replay.ope is available offline through ope.evaluate)")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: expected an integer >= 1")
        if max_steps is not None and (int(max_steps) != max_steps or max_steps < 1):
            raise ValueError(f"max_steps={max_steps!r}: expected an integer >= 1 or None")
        if isinstance(log, Replay):
            rep = log.select(log.first) if first_only else log
        else:
            if not isinstance(log, EventLog):
                if manifest is None:
                    raise ValueError("manifest=None: a log given by path needs its manifest (a path or a mapping)")
                log = load_log(log, manifest)
            rep = prepare(log, first_only=first_only)
        usable = ~rep.censored & (rep.logged >= 0)
        self.excluded = {"censored": int(rep.censored.sum()), "no_logged_action": int((~rep.censored &
                                                                                        (rep.logged < 0)).sum())}
        rep = rep.select(usable)
        if len(rep) == 0:
            raise ValueError(f"{rep.log.report.source}: no usable decision points (excluded: {self.excluded}); check "
                             "the manifest's decision_points and that decisions have logged actions")
        if estimator in ("ipw", "dr") and np.isnan(rep.pscore).any():
            k = int(np.flatnonzero(np.isnan(rep.pscore))[0])
            row = rep.log.table.column("row")[int(rep.event[k])].as_py()
            raise ValueError(f"{rep.log.report.source}: {int(np.isnan(rep.pscore).sum())} decision points have no "
                             f"logged propensity (the first at the event of row {row}); estimator={estimator!r} "
                             "needs them: log the propensity with the action, or use estimator='dm'")
        self.replay = rep
        self.estimator = estimator
        self.batch_size = int(batch_size)
        self.obs_matrix, self.feature_names = encode(rep, max_categories)
        n_actions = rep.n_actions
        self.n_rows = len(rep)
        self.n_steps = -(-self.n_rows // self.batch_size)
        if max_steps is not None:
            self.n_steps = min(self.n_steps, int(max_steps))
        self.possible_agents = [f"policy_{i}" for i in range(agents)] if isinstance(agents, int) else list(agents)
        if not self.possible_agents or len(set(self.possible_agents)) != len(self.possible_agents):
            raise ValueError(f"agents={agents!r}: expected a positive number or distinct names")
        f = self.obs_matrix.shape[1]
        if self.batch_size == 1:
            obs = gymnasium.spaces.Dict({
                "observation": gymnasium.spaces.Box(-np.inf, np.inf, (f,), np.float32),
                "action_mask": gymnasium.spaces.MultiBinary(n_actions)})
            act = gymnasium.spaces.Discrete(n_actions)
        else:
            obs = gymnasium.spaces.Dict({
                "observation": gymnasium.spaces.Box(-np.inf, np.inf, (self.batch_size, f), np.float32),
                "action_mask": gymnasium.spaces.MultiBinary((self.batch_size, n_actions))})
            act = gymnasium.spaces.MultiDiscrete([n_actions] * self.batch_size)
        self.observation_spaces = {a: obs for a in self.possible_agents}
        self.action_spaces = {a: act for a in self.possible_agents}
        self.q = None
        if estimator in ("dm", "dr"):
            from .ope import fit_reward_model

            self.q = fit_reward_model(self.obs_matrix, rep.logged, rep.reward, n_actions=n_actions,
                                      model=reward_model, cases=rep.case, seed=0 if seed is None else int(seed))
            if self.q.ndim == 3:
                self.q = self.q[np.arange(self.n_rows), :, rep.position]
        self.np_random, self._seed = None, seed
        self.agents: list[str] = []
        self._t = 0
        self._actions: dict[str, np.ndarray] = {}

    def __reduce__(self):
        return (functools.partial(ReplayEnv, **self._kwargs), ())

    def observation_space(self, agent):
        return self.observation_spaces[agent]

    def action_space(self, agent):
        return self.action_spaces[agent]

    @property
    def actions(self) -> tuple[str, ...]:
        return self.replay.actions

    def _rows(self, t: int) -> np.ndarray:
        return np.arange(t * self.batch_size, min((t + 1) * self.batch_size, self.n_rows))

    def _obs(self, t: int) -> dict:
        rows = self._rows(t)
        if self.batch_size == 1:
            o = {"observation": self.obs_matrix[rows[0]].copy(), "action_mask": self.replay.allowed[rows[0]].astype(np.int8)}
        else:
            x = np.zeros((self.batch_size, self.obs_matrix.shape[1]), np.float32)
            m = np.zeros((self.batch_size, self.replay.n_actions), np.int8)
            x[:len(rows)] = self.obs_matrix[rows]
            m[:len(rows)] = self.replay.allowed[rows]
            o = {"observation": x, "action_mask": m}
        return {a: {k: v.copy() for k, v in o.items()} for a in self.agents}

    def _info(self, t: int) -> dict:
        rows = self._rows(t)
        rep = self.replay
        info = {"rows": rows, "case_id": rep.log.case_ids[rep.case[rows]], "time_us": rep.time_us[rows],
                "point": [rep.manifest.decision_points[p].name for p in rep.point[rows]]}
        return {a: dict(info) for a in self.agents}

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._seed = seed
        self.np_random, _ = gymnasium.utils.seeding.np_random(self._seed)
        self.agents = list(self.possible_agents)
        self._t = 0
        self._actions = {a: np.full(self.n_rows, -1, np.int64) for a in self.agents}
        return self._obs(0), self._info(0)

    def _check(self, actions: Mapping[str, Any], rows: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        for agent in self.agents:
            if agent not in actions:
                raise ValueError(f"step(): no action for agent {agent!r}; every live agent acts at every step")
            a = np.asarray(actions[agent])
            if self.batch_size == 1:
                if a.shape not in ((), (1,)) or not np.issubdtype(a.dtype, np.integer):
                    raise ValueError(f"step(): agent {agent!r}: expected an integer action index, got {actions[agent]!r}")
                a = a.reshape(1)
            else:
                if a.shape != (self.batch_size,) or not np.issubdtype(a.dtype, np.integer):
                    raise ValueError(f"step(): agent {agent!r}: expected {self.batch_size} integer action indices, "
                                     f"got shape {a.shape} dtype {a.dtype}")
                a = a[:len(rows)]
            bad = (a < 0) | (a >= self.replay.n_actions)
            bad[~bad] = ~self.replay.allowed[rows[~bad], a[~bad]]
            if bad.any():
                j = int(np.flatnonzero(bad)[0])
                allowed = [self.actions[i] for i in np.flatnonzero(self.replay.allowed[rows[j]])]
                raise ValueError(f"step(): agent {agent!r}: action {int(a[j])} is not allowed at decision row "
                                 f"{int(rows[j])} (case {self.replay.log.case_ids[self.replay.case[rows[j]]]!r}); "
                                 f"allowed: {', '.join(f'{self.actions.index(x)}={x}' for x in allowed)}")
            out[agent] = a.astype(np.int64)
        unknown = [a for a in actions if a not in self.agents]
        if unknown:
            raise ValueError(f"step(): unknown agent {unknown[0]!r}; the agents are {', '.join(self.agents)}")
        return out

    def row_terms(self, rows: np.ndarray, action: np.ndarray) -> np.ndarray:
        """The estimator's per-row term for taking ``action`` at decision ``rows`` (see the module docstring;
        the formulas are :func:`arena_env.replay.ope.chosen_terms`'s, the estimators' own)."""
        from .ope import chosen_terms

        rep = self.replay
        return chosen_terms(self.estimator, action, n_actions=rep.n_actions, reward=rep.reward[rows],
                            action=rep.logged[rows], pscore=rep.pscore[rows],  # read by ipw and dr only
                            estimated_rewards_by_reg_model=None if self.q is None else self.q[rows])

    def step(self, actions: Mapping[str, Any]):
        if not self.agents:
            raise RuntimeError("step() after the episode ended: call reset() first")
        rows = self._rows(self._t)
        acts = self._check(actions, rows)
        rep = self.replay
        rewards, infos = {}, self._info(self._t)
        for agent, a in acts.items():
            self._actions[agent][rows] = a
            terms = self.row_terms(rows, a)
            rewards[agent] = float(terms.sum())
            match = a == rep.logged[rows]
            infos[agent].update(matched=match if self.batch_size > 1 else bool(match[0]),
                                logged_action=rep.logged[rows] if self.batch_size > 1 else int(rep.logged[rows[0]]),
                                feedback=np.where(match, rep.reward[rows], np.nan) if self.batch_size > 1
                                else (float(rep.reward[rows[0]]) if match[0] else None))
        self._t += 1
        done = self._t >= self.n_steps
        if done:
            for agent in self.agents:
                infos[agent].update(self.summary(agent))
            obs = {a: {"observation": np.zeros(self.observation_spaces[a]["observation"].shape, np.float32),
                       "action_mask": np.zeros(self.observation_spaces[a]["action_mask"].shape, np.int8)}
                   for a in self.agents}
        else:
            obs = self._obs(self._t)
        terminations = {a: done for a in self.agents}
        truncations = {a: False for a in self.agents}
        if done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def summary(self, agent: str) -> dict:
        """The agent's estimate over the rows played so far (``ope.evaluate``) and its constraint violation rates."""
        from .ope import evaluate

        a = self._actions[agent]
        rows = np.flatnonzero(a >= 0)
        rep = self.replay
        dist = np.zeros((len(rows), rep.n_actions))
        dist[np.arange(len(rows)), a[rows]] = 1.0
        kw = dict(reward=rep.reward[rows], action=rep.logged[rows], action_dist=dist, cases=rep.case[rows])
        if self.estimator in ("ipw", "dr") or (self.estimator == "replay" and not np.isnan(rep.pscore[rows]).any()):
            kw["pscore"] = rep.pscore[rows]  # replay only warns with them (it is biased unless they are uniform)
        if self.q is not None:
            kw["estimated_rewards_by_reg_model"] = self.q[rows]
        est = evaluate(self.estimator, **kw)
        viol = rep.select(rows).violations(a[rows])
        return {"estimate": est, "violations": {k: float(v.mean()) for k, v in viol.items()}}


def parallel_env(**kwargs) -> ReplayEnv:
    """The replay env (PettingZoo parallel API); see :mod:`arena_env.replay.env`."""
    return ReplayEnv(**kwargs)


def raw_env(**kwargs) -> ReplayEnv:
    return ReplayEnv(**kwargs)
