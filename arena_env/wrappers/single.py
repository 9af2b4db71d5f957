"""Economy arena as a single-agent Gymnasium environment: ``gymnasium.make("arena/EconomySingle-v1")``.

One learner controls one treatment variant; the other treatments are driven by given policies
(default: they hold their config); the control is fixed as always.  Observation, action and reward
are the learner's in the parallel environment (:mod:`arena_env.economy.env`, same spaces and
documentation); ``info`` is the learner's info.

Arguments: ``opponents`` (a mapping agent name -> policy, or one policy for every other agent; a
policy is a registered agent's name such as ``"random"`` or a spec ``{"agent": "ucb1", "params":
{...}}`` (a new instance per seat), an :class:`agents.Agent` (``reset``, ``act(context)``,
``update(outcome)``), a callable ``policy(observation, info) -> action``, or an object with
``act(observation, info)`` and optionally ``reset(seed)``; ``None`` holds; anything else is an error
at construction, naming the seat; an agent or object plays one seat only, a function any number),
``learner`` (default ``"variant_0"``), ``render_mode`` and every keyword of the parallel environment.

Seeding: ``reset(seed=s)`` seeds the economy and then the opponent playing ``variant_k`` with
``reset(s + 1 + k)`` (the rule of :func:`arena_env.wrappers.agents.agent_seed`), so a seed fixes the
whole episode.  ``reset()`` without a seed continues from the last one: the economy's next episode
seed (``EconomyEnv.episode_seed``) seeds the opponents by the same rule, so a run seeded once (as
Stable-Baselines3 seeds) is reproducible episode after episode.

Invalid actions raise the parallel environment's ``ValueError`` naming the learner, and a step before
``reset()`` or after the episode its ``RuntimeError``; both are raised before any opponent acts, so a
refused step changes nothing.

Version history: v0, initial release.
"""

from __future__ import annotations

from collections.abc import Mapping

import gymnasium

from agents.protocol import Agent, Outcome
from arena_env.economy.env import EconomyEnv
from arena_env.wrappers.agents import agent_seed, decide


def _is_spec(x) -> bool:
    """A mapping that names one registered agent: ``{"agent": name, "params": {...}}``."""
    return isinstance(x, Mapping) and "agent" in x and set(x) <= {"agent", "params"}


def _opponent(seat: str, pol):
    """One opponent, validated: None (hold), a registered agent name or ``{"agent", "params"}`` spec
    (a new instance per seat), an :class:`agents.Agent`, a callable ``policy(observation, info)``, or an
    object with ``act(observation, info)``.  Anything else is a ``TypeError`` naming the seat."""
    import agents as registry

    if pol is None or isinstance(pol, Agent):
        return pol
    if isinstance(pol, str) or _is_spec(pol):
        name, params = (pol, {}) if isinstance(pol, str) else (pol["agent"], dict(pol.get("params") or {}))
        if name not in registry.available():
            raise ValueError(f"opponents[{seat!r}]: unknown agent {name!r}; registered agents: "
                             f"{', '.join(registry.available())}")
        try:
            return registry.make(name, **params)
        except Exception as exc:
            raise ValueError(f"opponents[{seat!r}]: agent {name!r} with params {params}: {exc}") from None
    if callable(getattr(pol, "act", None)) or callable(pol):
        return pol
    raise TypeError(f"opponents[{seat!r}]: expected None (hold), a registered agent name (e.g. 'random'), "
                    "{'agent': name, 'params': {...}}, an agents.Agent, a callable policy(observation, info) -> "
                    f"action or an object with act(observation, info); got {type(pol).__name__} {pol!r}")


def check_one_seat_each(seats: list[tuple[str, object]]) -> None:
    """``ValueError`` when one stateful opponent (an :class:`agents.Agent`, or an object with ``act``)
    would play two of ``seats`` (``(seat name, policy)`` pairs): each seat resets it and tells it its
    outcomes, so the seats would mix their state.  Functions (and None) may play any number of seats."""
    where: dict[int, list[str]] = {}
    for seat, pol in seats:
        if isinstance(pol, Agent) or callable(getattr(pol, "act", None)):
            where.setdefault(id(pol), []).append(seat)
    for seat, pol in seats:
        if len(where.get(id(pol), ())) > 1:
            raise ValueError(f"opponents: one {type(pol).__name__} object would play {', '.join(where[id(pol)])}, "
                             "and they would share its state (each seat resets it and tells it its outcomes); "
                             "give each seat an instance of its own (a mapping seat -> instance), or a registered "
                             "agent name or {'agent': name, 'params': {...}} spec (a new instance per seat)")


def reset_opponents(env: EconomyEnv, opponents: dict, seed: int | None) -> None:
    """Reset every opponent policy of an episode seeded ``seed`` (rule of :func:`agent_seed`)."""
    for k, a in enumerate(env.possible_agents):
        pol = opponents.get(a)
        if pol is not None and hasattr(pol, "reset"):
            pol.reset(agent_seed(seed, k))


def opponent_action(env: EconomyEnv, agent: str, pol, obs: dict, infos: dict):
    """The action of opponent ``agent`` driven by ``pol`` (None: it holds)."""
    if pol is None:
        return None
    if isinstance(pol, Agent):
        return decide(env, agent, pol, obs[agent])
    act = pol.act if hasattr(pol, "act") else pol
    return act(obs[agent], infos[agent])


def update_opponents(env: EconomyEnv, opponents: dict, rewards: dict, infos: dict) -> None:
    """Tell every protocol-agent opponent the outcome of the step just played."""
    for a, pol in opponents.items():
        if isinstance(pol, Agent):
            pol.update(Outcome(float(rewards[a]), infos[a]["decision"], env.day))


def step_with_opponents(env: EconomyEnv, opponents: dict, learner_actions: dict, obs: dict, infos: dict):
    """One step of ``env``: the learners' actions plus the opponents' (from the last observations and
    infos); returns the env's ``(obs, rewards, terminations, truncations, infos)``.  The learners' actions
    are checked first, so a step the env refuses (an invalid action, the episode over) raises before any
    opponent acts: it changes nothing, the opponents' state included."""
    env._checked_actions(learner_actions)
    act = dict(learner_actions)
    for a, pol in opponents.items():
        x = opponent_action(env, a, pol, obs, infos)
        if x is not None:
            act[a] = x
    out = env.step(act)
    update_opponents(env, opponents, out[1], out[4])
    return out


class EconomySingleEnv(gymnasium.Env):
    """The economy arena with one learning agent (see the module docstring)."""

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(self, opponents=None, learner: str = "variant_0", render_mode: str | None = None, **kwargs):
        self.par = EconomyEnv(render_mode=render_mode, **kwargs)
        if learner not in self.par.possible_agents:
            raise ValueError(f"learner={learner!r}: expected one of {', '.join(self.par.possible_agents)}")
        self.learner = learner
        self.others = [a for a in self.par.possible_agents if a != learner]
        if opponents is None or not isinstance(opponents, Mapping) or _is_spec(opponents):
            opponents = {a: opponents for a in self.others}
        unknown = [a for a in opponents if a not in self.others]
        if unknown:
            raise ValueError(f"opponents: unknown or learner agents {sorted(map(str, unknown))}; the others are "
                             f"{', '.join(self.others)} (the learner is {learner})")
        self.opponents = {a: _opponent(a, opponents.get(a)) for a in self.others}
        check_one_seat_each(list(self.opponents.items()))
        self.render_mode = render_mode
        self.observation_space = self.par.observation_space(learner)
        self.action_space = self.par.action_space(learner)
        self._obs: dict = {}
        self._infos: dict = {}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._obs, self._infos = self.par.reset(seed=seed, options=options)
        reset_opponents(self.par, self.opponents, self.par.episode_seed)  # unseeded resets continue too
        return self._obs[self.learner], self._infos[self.learner]

    def step(self, action):
        obs, rew, term, trunc, infos = step_with_opponents(self.par, self.opponents, {self.learner: action},
                                                           self._obs, self._infos)
        self._obs, self._infos = obs, infos
        a = self.learner
        return obs[a], rew[a], term[a], trunc[a], infos[a]

    def render(self):
        return self.par.render()

    def close(self):
        self.par.close()
