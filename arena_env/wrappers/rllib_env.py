"""The economy as an RLlib ``MultiAgentEnv`` (needs the ``distributed`` extra: Ray RLlib 2.60).

:class:`EconomyMultiAgentEnv` wraps one :class:`~arena_env.economy.env.EconomyEnv` (a PettingZoo
parallel env) for RLlib's new API stack, without RLlib's ``ParallelPettingZooEnv``, whose
``agents = list(set(...))`` orders the agents by string hash: the order (and so which agent's
transition lands where in a batch) changed with ``PYTHONHASHSEED`` between processes.  Here the agents
are the env's own ``possible_agents`` in their order, always.

* ``env_config``: :class:`EconomyEnv` keywords, plus ``seed`` (default 0).  RLlib (``debugging.seed``,
  which train.py sets) seeds the first episode of copy *i* of env runner ``worker_index`` with ``seed +
  worker_index + i``: with two runners of two copies, copy 1 of runner 1 and copy 0 of runner 2 both got
  ``seed + 2``, the same economy twice.  On runners 2, 3, ... such a seed (``seed + worker_index + i``,
  ``i`` < 1000) becomes ``seed + 1 + 1000 * (worker_index - 1) + i``, so every copy of every runner has
  its own economy, and the local runner and runner 1 keep RLlib's seeds.  Any other seed is used as
  given.  A first ``reset`` without a seed (RLlib without ``debugging.seed``) uses ``seed + 1000 *
  worker_index + vector_index``.  Later episodes follow from the first (the env derives episode *k*'s
  seed from its seed).
* ``reset`` / ``step`` return the env's dicts; ``terminateds["__all__"]`` / ``truncateds["__all__"]``
  are true when every agent is done (every agent ends together at the experiment's end).
"""

from __future__ import annotations

from ray.rllib.env.multi_agent_env import MultiAgentEnv

from arena_env.economy.env import EconomyEnv

SEED_STRIDE = 1000  # env copies per env runner that get distinct seeds


class EconomyMultiAgentEnv(MultiAgentEnv):
    """One economy for RLlib (see the module docstring)."""

    def __init__(self, config=None):
        super().__init__()
        kw = dict(config or {})
        base = int(kw.pop("seed", 0))
        worker = int(getattr(config, "worker_index", 0) or 0)
        vector = int(getattr(config, "vector_index", 0) or 0)
        self._first_seed = base + SEED_STRIDE * worker + vector
        self._worker, self._rllib_base = worker, base + worker  # RLlib gives copy i of the runner base + worker + i
        self.env = EconomyEnv(**kw)
        self.possible_agents = list(self.env.possible_agents)
        self.agents = list(self.possible_agents)
        self.observation_spaces = {a: self.env.observation_space(a) for a in self.possible_agents}
        self.action_spaces = {a: self.env.action_space(a) for a in self.possible_agents}
        self._seeded = False

    def reset(self, *, seed=None, options=None):
        if seed is None and not self._seeded:
            seed = self._first_seed
        elif seed is not None and self._worker >= 2 and 0 <= seed - self._rllib_base < SEED_STRIDE:
            seed += SEED_STRIDE * (self._worker - 1) + 1 - self._worker  # RLlib's seeds repeat across runners
        self._seeded = True
        obs, infos = self.env.reset(seed=seed, options=options)
        self.agents = list(self.env.agents)
        return obs, infos

    def step(self, action_dict):
        obs, rewards, terms, truncs, infos = self.env.step(action_dict)
        terms, truncs = dict(terms), dict(truncs)
        terms["__all__"] = bool(terms) and all(terms.values())
        truncs["__all__"] = bool(truncs) and all(truncs.values())
        self.agents = list(self.env.agents)
        return obs, rewards, terms, truncs, infos

    def close(self):
        self.env.close()
