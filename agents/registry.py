"""The agent registry: names -> agent factories, and the decorator that turns a plain function into
an agent.

``agents.available()`` lists the registered names; ``agents.make(name, **hyperparameters)`` builds
one (``name`` may also be an import path, ``"package.module:MyAgent"``); ``agents.load(path)`` builds one from a YAML file of the form::

    agent: random          # a registered name
    params: {every: 7}     # keyword arguments of the agent's constructor

Unknown names, unknown hyperparameters and malformed files raise :class:`AgentConfigError` with
the file, the key and the allowed values.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from .protocol import Context, Outcome, Update

_REGISTRY: dict[str, Callable[..., Any]] = {}


class AgentConfigError(ValueError):
    """An agent name, hyperparameter or agent file is invalid; the message says which and the fix."""


def register(name: str):
    """Class (or factory) decorator: register under ``name`` for :func:`make`."""

    def deco(factory):
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise AgentConfigError(f"agent name {name!r} is already registered by {_REGISTRY[name]!r}")
        _REGISTRY[name] = factory
        factory.agent_name = name
        return factory

    return deco


def available() -> list[str]:
    """The registered agent names, sorted."""
    return sorted(_REGISTRY)


def resolve(name: str) -> Callable[..., Any]:
    """The factory of ``name``: a registered name, or an import path ``"package.module:Attr"`` (the module is
    imported, which also registers the agents it defines; ``Attr`` is the agent's class or factory).  An
    import path works wherever the module is importable, so an agent of your own also plays in worker
    processes and on Ray, which do not run the code that registered it in the parent process."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    module, sep, attr = str(name).partition(":")
    if not sep:
        raise AgentConfigError(f"unknown agent {name!r}; available: {', '.join(available())}, or an import path "
                               "such as mypackage.agents:MyAgent")
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise AgentConfigError(f"agent {name!r}: cannot import {module!r} ({exc}); the module must be importable "
                               "(installed, or on the Python path)") from None
    factory = getattr(mod, attr, None)
    if not callable(factory):
        raise AgentConfigError(f"agent {name!r}: {module} has no agent class or factory {attr!r}")
    return factory


def make(name: str, **hyperparameters):
    """Build the agent ``name`` (a registered name or an import path, see :func:`resolve`) with keyword
    ``hyperparameters``."""
    factory = resolve(name)
    params = inspect.signature(factory).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(hyperparameters) - set(params))
        if unknown:
            raise AgentConfigError(f"agent {name!r}: unknown hyperparameter {unknown[0]!r}; "
                                   f"allowed: {', '.join(p for p in params if p != 'self') or '(none)'}")
    return factory(**hyperparameters)


def load(path: str | os.PathLike):
    """Build the agent described by a YAML file (``agent:`` name, optional ``params:`` mapping)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise AgentConfigError(f"{path}: malformed YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, Mapping) or "agent" not in data:
        raise AgentConfigError(f"{path}: expected a mapping with the key 'agent' (a registered name)")
    unknown = sorted(set(data) - {"agent", "params"})
    if unknown:
        raise AgentConfigError(f"{path}: {unknown[0]}: unknown key; allowed keys: agent, params")
    params = data.get("params") or {}
    if not isinstance(params, Mapping):
        raise AgentConfigError(f"{path}: params: expected a mapping of hyperparameters, got {params!r}")
    try:
        return make(str(data["agent"]), **params)
    except AgentConfigError as exc:
        raise AgentConfigError(f"{path}: {exc}") from None


def from_decide(fn: Callable | None = None, *, name: str | None = None):
    """Decorator: turn ``decide(signals, config) -> dict | None`` (the TendedLoop SDK's shape) into
    an agent class, registered under ``name`` (default: the function's name).

    ``signals`` is a plain dict (``enrolled``, ``active_today``, ``active_7d``, ``total_scans``,
    ``experiment_days``, ``metrics`` -> {NAME: {value, std_dev, sample_size, confidence}},
    ``control`` -> the same for the control); ``config`` is the current config dict.  The function
    returns None (hold) or a dict of parameter overrides; an optional ``"reasoning"`` key is passed
    on.  The agent does not propose while the guardrails would reject (rate limit, breaker, pause).
    """

    def wrap(f):
        agent_name = name or f.__name__

        class DecideAgent:
            __doc__ = f.__doc__

            def __init__(self):
                self.decide = f

            def reset(self, seed=None):
                pass

            def act(self, context: Context) -> Update | None:
                if not context.can_update:
                    return None
                out = f(signals_dict(context), dict(context.config))
                if out is None:
                    return None
                if not isinstance(out, Mapping):
                    raise TypeError(f"{agent_name}: decide() must return None or a dict of overrides, "
                                    f"got {type(out).__name__}")
                out = dict(out)
                reasoning = str(out.pop("reasoning", ""))
                return Update(out, reasoning)

            def update(self, outcome: Outcome) -> None:
                pass

        DecideAgent.__name__ = DecideAgent.__qualname__ = f"{agent_name}_agent"
        return register(agent_name)(DecideAgent)

    return wrap if fn is None else wrap(fn)


def signals_dict(context: Context) -> dict:
    """The context's signals as plain dicts (the shape ``from_decide`` functions receive)."""
    s = context.signals

    def metrics(ms):
        return {k: {"value": m.value, "std_dev": m.std_dev, "sample_size": m.sample_size,
                    "confidence": m.confidence} for k, m in ms.items()}

    return {"enrolled": s.enrolled, "active_today": s.active_today, "active_7d": s.active_7d,
            "total_scans": s.total_scans, "experiment_days": s.experiment_days,
            "metrics": metrics(s.metrics), "control": metrics(s.control)}
