"""The economy arena as a Stable-Baselines3 ``VecEnv``: many economies in one process, one row per
(economy, learning agent).

``EconomyVecEnv(copies, learners="all", opponents=None)``:

* ``copies``: a list of :class:`~arena_env.economy.env.EconomyEnv` keyword dicts, one per economy
  (e.g. ``[{"scenario": "default"}] * 4``, or different scenarios: one policy trained across them);
  every row must have the same observation and action spaces.
* ``learners``: ``"all"`` (every treatment agent of every economy is a row: parameter sharing,
  self-play in shared experiments) or a list of agent names (e.g. ``["variant_0"]``: one learner per
  economy); the other treatments are driven by ``opponents`` (the forms of
  :class:`~arena_env.wrappers.single.EconomySingleEnv`: a registered agent's name such as
  ``"random"``, a ``{"agent", "params"}`` spec, an agent object, a callable, or None to hold),
  validated at construction.

Rows are ordered economy by economy, agents in ``possible_agents`` order.  ``num_envs`` is the number
of rows.  The SB3 contract, exactly:

* ``step_wait`` returns ``(obs, rewards, dones, infos)`` with ``dones = terminated or truncated``;
  at the end of an economy's episode every row of it gets ``infos[i]["terminal_observation"]`` (the
  last observation) and ``infos[i]["TimeLimit.truncated"]`` (True when the episode ended by
  ``max_days`` rather than by the experiment completing), and the economy is reset at once
  (autoreset): the returned observation is the first of the next episode.
* ``seed(s)`` sets the seeds used at the next ``reset()``: row ``i`` gets ``s + i`` (SB3's rule) and
  economy ``c`` is reset with the seed of its first row; its later episodes follow from that seed
  (:meth:`EconomyEnv.reset` derives episode ``k``'s seed from it), so ``PPO(seed=...)`` fixes every
  episode.  Opponents in economy ``c`` are reset at every episode with the rule of
  :func:`arena_env.wrappers.agents.agent_seed` applied to the episode's seed.
* ``reset()`` returns the observations of every row (``reset_infos`` holds the infos);
  ``close()`` closes every economy and may be called twice.

Rewards are the agents' rewards in the parallel env (money per enrolled user, lift over the
control); infos are the agents' infos.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from arena_env.economy.env import EconomyEnv
from arena_env.wrappers.single import _is_spec, _opponent, opponent_action, reset_opponents, update_opponents


class EconomyVecEnv(VecEnv):
    """Many economies, one row per (economy, learning agent); see the module docstring."""

    def __init__(self, copies: Sequence[Mapping], learners="all", opponents=None):
        if isinstance(copies, Mapping) or not isinstance(copies, Sequence) or not copies:
            raise ValueError(f"copies: a non-empty list of EconomyEnv keyword dicts, got {copies!r}")
        self.envs: list[EconomyEnv] = []
        try:
            for i, kw in enumerate(copies):
                if not isinstance(kw, Mapping):
                    raise ValueError(f"copies[{i}]: a dict of EconomyEnv keywords, got {kw!r}")
                self.envs.append(EconomyEnv(**dict(kw)))
            self.rows: list[tuple[int, str]] = []
            self.opponents: list[dict] = []
            for c, env in enumerate(self.envs):
                mine = list(env.possible_agents) if learners == "all" else list(learners)
                bad = [a for a in mine if a not in env.possible_agents]
                if isinstance(learners, str) and learners != "all" or bad or not mine:
                    raise ValueError(f"learners: 'all' or a list of agents of copies[{c}] "
                                     f"({', '.join(env.possible_agents)}), got {learners!r}")
                self.rows += [(c, a) for a in mine]
                others = [a for a in env.possible_agents if a not in mine]
                spec = opponents
                if spec is None or not isinstance(spec, Mapping) or _is_spec(spec):
                    spec = {a: spec for a in others}
                unknown = [a for a in spec if a not in others]
                if unknown:
                    raise ValueError(f"opponents: {sorted(map(str, unknown))} are not opponents in copies[{c}] "
                                     f"(opponents: {', '.join(others) or 'none'})")
                self.opponents.append({a: _opponent(a, spec.get(a)) for a in others})
            c0, a0 = self.rows[0]
            obs_space = self.envs[c0].observation_space(a0)
            act_space = self.envs[c0].action_space(a0)
            for c, a in self.rows[1:]:
                if self.envs[c].observation_space(a) != obs_space or self.envs[c].action_space(a) != act_space:
                    raise ValueError(f"copies[{c}] {a}: its observation or action space differs from copies[{c0}] "
                                     f"{a0}'s; every row needs the same spaces (same action_mode and number of "
                                     "presets)")
        except BaseException:
            for env in self.envs:
                env.close()
            raise
        super().__init__(len(self.rows), obs_space, act_space)
        self._obs = [dict() for _ in self.envs]
        self._infos = [dict() for _ in self.envs]
        self._actions = None
        self._closed = False

    # --- the SB3 contract ---------------------------------------------------------------------------

    def _reset_copy(self, c: int, seed: int | None, options: dict | None = None) -> None:
        env = self.envs[c]
        self._obs[c], self._infos[c] = env.reset(seed=seed, options=options)
        reset_opponents(env, self.opponents[c], env.episode_seed)

    def reset(self):
        first = {}
        for i, (c, _) in enumerate(self.rows):
            first.setdefault(c, i)
        for c, i in first.items():
            self._reset_copy(c, self._seeds[i], self._options[i] or None)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [self._infos[c][a] for c, a in self.rows]
        return np.stack([self._obs[c][a] for c, a in self.rows])

    def step_async(self, actions) -> None:
        self._actions = actions

    def step_wait(self):
        actions = self._actions
        if actions is None:
            raise RuntimeError("step_wait() without step_async(actions)")
        self._actions = None
        per_copy: list[dict] = [{} for _ in self.envs]
        for i, (c, a) in enumerate(self.rows):
            per_copy[c][a] = actions[i]
        obs = [None] * self.num_envs
        rewards = np.zeros(self.num_envs, dtype=np.float32)
        dones = np.zeros(self.num_envs, dtype=bool)
        infos: list[dict] = [{} for _ in range(self.num_envs)]
        results = {}
        for c, env in enumerate(self.envs):
            act = dict(per_copy[c])
            for a, pol in self.opponents[c].items():
                x = opponent_action(env, a, pol, self._obs[c], self._infos[c])
                if x is not None:
                    act[a] = x
            o, r, term, trunc, inf = env.step(act)
            update_opponents(env, self.opponents[c], r, inf)
            results[c] = (o, r, term, trunc, inf)
            self._obs[c], self._infos[c] = o, inf
        ended = set()
        for i, (c, a) in enumerate(self.rows):
            o, r, term, trunc, inf = results[c]
            rewards[i] = r[a]
            dones[i] = term[a] or trunc[a]
            infos[i] = dict(inf[a])
            obs[i] = o[a]
            if dones[i]:
                infos[i]["terminal_observation"] = o[a]
                infos[i]["TimeLimit.truncated"] = bool(trunc[a] and not term[a])
                ended.add(c)
        for c in ended:  # autoreset: the next episode follows from the copy's seed
            self._reset_copy(c, None)
        for i, (c, a) in enumerate(self.rows):
            if c in ended:
                obs[i] = self._obs[c][a]
        return np.stack(obs), rewards, dones, infos

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for env in self.envs:
            env.close()

    # --- attribute access (per row: the row's economy) ------------------------------------------------

    def _indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def get_attr(self, attr_name: str, indices=None) -> list:
        return [getattr(self.envs[self.rows[i][0]], attr_name) for i in self._indices(indices)]

    def set_attr(self, attr_name: str, value, indices=None) -> None:
        for i in self._indices(indices):
            setattr(self.envs[self.rows[i][0]], attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list:
        return [getattr(self.envs[self.rows[i][0]], method_name)(*method_args, **method_kwargs)
                for i in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._indices(indices)]
