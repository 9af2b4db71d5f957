"""Agents for the arena's environments: one small protocol, a registry, and the strategies.

>>> import agents
>>> agents.available()            # doctest: +SKIP
['hold', 'random', ...]
>>> agent = agents.make("random", every=3)

An agent implements :class:`agents.protocol.Agent` (``reset``, ``act``, ``update``); it sees a
:class:`~agents.protocol.Context` and answers an :class:`~agents.protocol.Update` or None (hold).
:mod:`arena_env.wrappers.agents` runs agents in the economy environments.
"""

from . import bandits, baselines, contextual, controllers, learners  # noqa: F401  (register their agents)
from .protocol import DEFAULTS, METRIC_NAMES, PARAM_NAMES, Agent, Context, Metric, Outcome, Signals, Update
from .registry import AgentConfigError, available, from_decide, load, make, register, resolve, signals_dict

__all__ = ["Agent", "AgentConfigError", "Context", "DEFAULTS", "METRIC_NAMES", "Metric", "Outcome", "PARAM_NAMES",
           "Signals", "Update", "available", "from_decide", "load", "make", "register", "resolve",
           "signals_dict"]
