"""The agent registry: names -> agent factories, and the decorator that turns a plain function into
an agent.

``agents.available()`` lists the registered names; ``agents.make(name, **hyperparameters)`` builds
one (``name`` may also be an import path, ``"package.module:MyAgent"``); ``agents.load(path)`` builds one from a YAML file of the form::

    agent: random          # a registered name
    params: {every: 7}     # keyword arguments of the agent's constructor

Unknown names, unknown hyperparameters, invalid hyperparameter values (:mod:`agents.hparams`) and
malformed files (a duplicated key too) raise :class:`AgentConfigError` with the file, the agent, the
key and the allowed values.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from .protocol import Context, Outcome, Update

_REGISTRY: dict[str, Callable[..., Any]] = {}


class AgentConfigError(ValueError):
    """An agent name, hyperparameter or agent file is invalid; the message says which and the fix."""


def source_of(factory) -> tuple[str, str, str | None]:
    """Where ``factory`` is defined: ``(module name, qualified name, source file)`` (the file None when
    unknown).  :func:`from_decide` agents report their function's."""
    src = getattr(factory, "agent_source", None)
    if src is not None:
        return src
    module = getattr(factory, "__module__", None) or ""
    code = getattr(factory, "__code__", None)
    path = code.co_filename if code is not None else getattr(sys.modules.get(module), "__file__", None)
    return module, getattr(factory, "__qualname__", repr(factory)), path


def same_source(a, b) -> bool:
    """True when factories ``a`` and ``b`` are the same definition run again: the same qualified name in
    the same module, or in the same file under two module names (a script is ``__main__`` when run and
    its own name when imported)."""
    (ma, qa, fa), (mb, qb, fb) = source_of(a), source_of(b)
    if qa != qb:
        return False
    if ma == mb:
        return True
    return fa is not None and fb is not None and os.path.realpath(fa) == os.path.realpath(fb)


def register(name: str):
    """Class (or factory) decorator: register under ``name`` for :func:`make`.

    Registering a name again with the same definition run again (:func:`same_source`: a notebook cell
    re-run, or a script that names its own agents by import path, which imports it a second time)
    replaces the entry; a different agent under a registered name is an error."""

    def deco(factory):
        old = _REGISTRY.get(name)
        if old is not None and old is not factory and not same_source(old, factory):
            mod, qual, _ = source_of(old)
            raise AgentConfigError(f"agent name {name!r} is already registered by {mod}.{qual}; "
                                   "choose another name")
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
    missing = [p.name for p in params.values() if p.default is inspect.Parameter.empty and p.name != "self"
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in hyperparameters]
    if missing:
        raise AgentConfigError(f"agent {name!r}: the hyperparameter {missing[0]!r} is required (e.g. "
                               f"agents.make({name!r}, {missing[0]}=...), or params: {{{missing[0]}: ...}} in a file)")
    return factory(**hyperparameters)


class UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's when PyYAML has it
    """PyYAML's safe loader that refuses a key given twice in one mapping (PyYAML keeps the last one
    silently); a merge key (``<<``) may be overridden.  Every YAML file of the project is read with it
    (``arena_env.economy.scenario``'s loader extends it)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in getattr(node, "value", ()):
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark)
            except TypeError:  # an unhashable key: PyYAML's own error follows
                continue
            if first is not key_node.start_mark:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {first.line + 1}): give each key once",
                    key_node.start_mark)
        return super().construct_mapping(node, deep)


def load(path: str | os.PathLike):
    """Build the agent described by a YAML file (``agent:`` name, optional ``params:`` mapping).

    Every error names the file: malformed YAML (a duplicated key included), unknown keys, and the
    agent's own errors (unknown or invalid hyperparameters)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=UniqueKeyLoader)
    except OSError as exc:
        raise AgentConfigError(f"{path}: cannot read the file: {exc.strerror}") from None
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
    except (ValueError, TypeError) as exc:  # AgentConfigError, and the checks of agents of your own
        raise AgentConfigError(f"{path}: {exc}") from None


def from_decide(fn: Callable | None = None, *, name: str | None = None, sdk: bool | None = None):
    """Decorator: turn a function ``decide(signals, config)`` into an agent class, registered under
    ``name`` (default: the function's name).

    Two shapes of function are accepted:

    * **dicts** (``sdk=False``): ``signals`` is a plain dict (``enrolled``, ``active_today``,
      ``active_7d``, ``total_scans``, ``experiment_days``, ``metrics`` -> {NAME: {value, std_dev,
      sample_size, confidence}}, ``control`` -> the same for the control, :func:`signals_dict`);
    * **the TendedLoop SDK's** (``sdk=True``, package ``tendedloop-arena``, import name
      ``tendedloop_agent``): ``signals`` is the SDK's ``Signals`` (attributes, ``metrics`` ->
      {NAME: ``MetricSignal``}; the SDK's signals carry no control metrics), so a function written for
      ``tendedloop_agent.Agent.run`` plays here unchanged.

    ``sdk=None`` (default) detects the shape: the SDK's when the first parameter is annotated with
    ``tendedloop_agent.Signals`` (as in the SDK's quick start), dicts otherwise.  ``config`` is the
    current config dict in both.  The function returns None (hold), a dict of parameter overrides (an
    optional ``"reasoning"`` key is passed on) or an object with ``economy_overrides`` and
    ``reasoning`` (the SDK's ``ConfigUpdate``), in either shape.  The agent does not propose while
    the guardrails would reject (rate limit, breaker, pause).
    """

    def wrap(f):
        agent_name = name or f.__name__
        use_sdk = _annotated_with_sdk_signals(f) if sdk is None else sdk
        if not isinstance(use_sdk, bool):
            raise AgentConfigError(f"from_decide: {agent_name}: sdk: expected true, false or None, got {sdk!r}")
        if use_sdk:
            try:
                import tendedloop_agent  # noqa: F401
            except ImportError:
                raise AgentConfigError(f"from_decide: {agent_name}: sdk=True needs the TendedLoop SDK: "
                                       "pip install tendedloop-arena") from None
        signals_of = sdk_signals if use_sdk else signals_dict

        class DecideAgent:
            __doc__ = f.__doc__

            def __init__(self):
                self.decide = f

            def reset(self, seed=None):
                pass

            def act(self, context: Context) -> Update | None:
                if not context.can_update:
                    return None
                out = f(signals_of(context), dict(context.config))
                if out is None:
                    return None
                if hasattr(out, "economy_overrides"):  # the SDK's ConfigUpdate
                    return Update(dict(out.economy_overrides), str(getattr(out, "reasoning", "") or ""))
                if not isinstance(out, Mapping):
                    raise TypeError(f"{agent_name}: decide() must return None, a dict of overrides or a "
                                    f"ConfigUpdate, got {type(out).__name__}")
                out = dict(out)
                reasoning = str(out.pop("reasoning", ""))
                return Update(out, reasoning)

            def update(self, outcome: Outcome) -> None:
                pass

        DecideAgent.__name__ = DecideAgent.__qualname__ = f"{agent_name}_agent"
        DecideAgent.agent_source = (getattr(f, "__module__", None) or "", getattr(f, "__qualname__", agent_name),
                                    getattr(getattr(f, "__code__", None), "co_filename", None))
        DecideAgent.sdk = use_sdk
        return register(agent_name)(DecideAgent)

    return wrap if fn is None else wrap(fn)


def _annotated_with_sdk_signals(f: Callable) -> bool:
    """True when ``f``'s first parameter is annotated with ``tendedloop_agent.Signals`` (also as a postponed,
    string annotation naming it in ``f``'s module)."""
    sdk = sys.modules.get("tendedloop_agent")
    if sdk is None:  # an annotation with the SDK's class means the SDK is imported
        return False
    try:
        first = next(iter(inspect.signature(f).parameters.values()), None)
    except (TypeError, ValueError):
        return False
    ann = None if first is None else first.annotation
    if isinstance(ann, str):  # from __future__ import annotations: look the (dotted) name up
        head, *rest = ann.strip().split(".")
        ann = getattr(f, "__globals__", {}).get(head)
        for part in rest:
            ann = getattr(ann, part, None)
    return ann is getattr(sdk, "Signals", None)


def sdk_signals(context: Context):
    """The context's signals as the TendedLoop SDK's ``tendedloop_agent.Signals`` (the shape SDK-style
    ``from_decide`` functions receive; the SDK's signals have no control metrics)."""
    import tendedloop_agent as tl

    s = context.signals
    return tl.Signals(enrolled=s.enrolled, active_today=s.active_today, active_7d=s.active_7d,
                      total_scans=s.total_scans, experiment_days=s.experiment_days,
                      metrics={k: tl.MetricSignal(value=m.value, std_dev=m.std_dev, sample_size=m.sample_size,
                                                  confidence=m.confidence) for k, m in s.metrics.items()})


def signals_dict(context: Context) -> dict:
    """The context's signals as plain dicts (the shape ``from_decide`` functions receive)."""
    s = context.signals

    def metrics(ms):
        return {k: {"value": m.value, "std_dev": m.std_dev, "sample_size": m.sample_size,
                    "confidence": m.confidence} for k, m in ms.items()}

    return {"enrolled": s.enrolled, "active_today": s.active_today, "active_7d": s.active_7d,
            "total_scans": s.total_scans, "experiment_days": s.experiment_days,
            "metrics": metrics(s.metrics), "control": metrics(s.control)}
