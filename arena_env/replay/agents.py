"""Agents on the replay env: the bandit agents of :mod:`agents.bandits` and the replay policies, played
step by step.

:class:`BanditPlayer` runs any context-free bandit agent of the registry (``epsilon_greedy``, ``ucb1``,
``thompson``, ``thompson_gaussian``, ``explore_then_exploit``, ``hedge``) with the allowed actions as
its arms: at every decision it pulls the arm its ``select`` chooses (an arm not allowed at that row
is replaced by a uniformly random allowed one, drawn from the agent's own generator), and learns
from the reward only when the env reveals it (``infos[agent]["feedback"]``: the logged reward when
the agent's action matches the logged one).  With ``estimator="replay"`` on a log whose actions were
logged uniformly at random this is the replay method of Li, Chu, Langford and Wang (WSDM 2011) for
evaluating a *learning* policy offline: the agent sees exactly the feedback it would have seen
online.  :class:`PolicyPlayer` plays a replay policy (:mod:`.policies`) row by row: its action, drawn
from its probabilities when it is stochastic.  :func:`play` runs one episode with several players, the paired competition of the env.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .env import ReplayEnv
from .policies import ReplayPolicy


class BanditPlayer:
    """A bandit agent of :mod:`agents.bandits` (by registry name or instance) over the allowed actions."""

    def __init__(self, agent: Any, **hyperparameters):
        import agents as registry
        from agents.bandits import PresetBandit

        self.agent = registry.make(agent, **hyperparameters) if isinstance(agent, str) else agent
        if not isinstance(self.agent, PresetBandit) or type(self.agent).__name__ == "LinUCB":
            raise TypeError(f"BanditPlayer needs a context-free bandit agent of agents.bandits, got "
                            f"{type(self.agent).__name__}")
        self.name = agent if isinstance(agent, str) else type(self.agent).__name__.lower()
        self._arm: np.ndarray | None = None

    def reset(self, env: ReplayEnv, seed: int | None) -> None:
        self.agent.reset(seed)
        self.agent.begin(list(env.actions))

    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray | int:
        mask = np.asarray(obs["action_mask"], dtype=bool)
        rows = mask.reshape(-1, mask.shape[-1])
        arms = np.empty(len(rows), np.int64)
        for i, m in enumerate(rows):
            if not m.any():  # padding of a short last batch
                arms[i] = 0
                continue
            a = int(self.agent.select())
            arms[i] = a if m[a] else int(self.agent.rng.choice(np.flatnonzero(m)))
        self._arm = arms
        return arms if mask.ndim == 2 else int(arms[0])

    def update(self, info: Mapping[str, Any]) -> None:
        fb = np.atleast_1d(np.asarray(info["feedback"], dtype=np.float64) if info["feedback"] is not None
                           else np.nan)
        for arm, r in zip(self._arm, fb):
            if np.isfinite(r):
                self.agent.observe(int(arm), float(r))


class PolicyPlayer:
    """A replay policy played row by row (its action at each row, drawn from its probabilities by the seed)."""

    def __init__(self, policy: ReplayPolicy):
        self.policy, self.name = policy, policy.name
        self._choice: np.ndarray | None = None
        self._env: ReplayEnv | None = None

    def reset(self, env: ReplayEnv, seed: int | None) -> None:
        dist = self.policy.action_dist(env.replay)
        u = np.random.default_rng(seed).random(len(dist))
        # a deterministic policy's action; a stochastic one's drawn from its probabilities
        self._choice = np.minimum((u[:, None] >= np.cumsum(dist, axis=1)).sum(axis=1), dist.shape[1] - 1)
        self._choice = np.where(dist.max(axis=1) >= 1.0, np.argmax(dist, axis=1), self._choice)
        self._t = 0
        self._env = env

    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray | int:
        rows = np.arange(self._t * self._env.batch_size, min((self._t + 1) * self._env.batch_size, self._env.n_rows))
        self._t += 1
        if self._env.batch_size == 1:
            return int(self._choice[rows[0]])
        out = np.zeros(self._env.batch_size, np.int64)
        out[:len(rows)] = self._choice[rows]
        return out

    def update(self, info: Mapping[str, Any]) -> None:
        pass


def play(env: ReplayEnv, players: Mapping[str, Any], seed: int | None = 0) -> dict[str, dict]:
    """One episode of ``env`` with ``players`` (agent name -> player with ``reset/act/update``); per agent its
    return and the env's final summary (``estimate``, ``violations``)."""
    missing = [a for a in env.possible_agents if a not in players]
    if missing:
        raise ValueError(f"play(): no player for {missing}; the env's agents are {env.possible_agents}")
    obs, infos = env.reset(seed=seed)
    for i, a in enumerate(env.possible_agents):
        players[a].reset(env, None if seed is None else [int(seed), i])
    returns = {a: 0.0 for a in env.possible_agents}
    while env.agents:
        actions = {a: players[a].act(obs[a]) for a in env.agents}
        obs, rewards, _, _, infos = env.step(actions)
        for a, r in rewards.items():
            returns[a] += r
            players[a].update(infos[a])
    return {a: {"return": returns[a], "estimate": infos[a]["estimate"], "violations": infos[a]["violations"]}
            for a in env.possible_agents}
