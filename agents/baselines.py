"""Baselines: ``hold`` (never changes anything), ``random`` (seeded random moves) and ``fixed`` (moves
to one fixed config and keeps it: the static oracle of the leaderboards)."""

from __future__ import annotations

import numpy as np

from . import hparams, rules
from .protocol import PARAM_NAMES, Context, Outcome, Update
from .registry import AgentConfigError, register


@register("hold")
class Hold:
    """Never proposes anything: the variant keeps its starting config (the control's twin)."""

    def reset(self, seed: int | None = None) -> None:
        pass

    def act(self, context: Context) -> Update | None:
        return None

    def update(self, outcome: Outcome) -> None:
        pass


@register("random")
class Random:
    """Every ``every`` days, moves ``n_params`` random parameters by a random share of the delta limit.

    A move is the economy env's continuous action ``a ~ U(-scale, scale)``
    (:func:`agents.rules.continuous_target`): log-symmetric, ``a`` and ``-a`` scale by reciprocal
    factors, so the random walk leaves the median of every parameter at its starting value (an
    additive ``current + a * delta`` would drift every parameter down geometrically).

    Hyperparameters: ``every`` (days between proposals, default 7), ``n_params`` (how many
    parameters a proposal touches, default 2), ``scale`` (largest move as a fraction of the delta
    limit, default 1.0).  Proposes only when the guardrails could accept (no spamming).  All draws
    come from the seed given to :meth:`reset`.
    """

    def __init__(self, every: int = 7, n_params: int = 2, scale: float = 1.0):
        self.every = hparams.integer("random", "every", every, 1)
        self.n_params = hparams.integer("random", "n_params", n_params, 1, len(PARAM_NAMES))
        self.scale = hparams.real("random", "scale", scale, 0.0, 1.0, lo_open=True)
        self.rng = np.random.default_rng(0)

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, context: Context) -> Update | None:
        if context.day % self.every or not context.can_update:
            return None
        keys = self.rng.choice(len(PARAM_NAMES), self.n_params, replace=False)
        out = {}
        for i in sorted(keys):
            name = PARAM_NAMES[i]
            cur = context.config[name]
            a = self.rng.uniform(-self.scale, self.scale)  # log-symmetric: the median config stays put
            out[name] = int(rules.round_half_away(rules.continuous_target(cur, a, context.delta_limit_pct)))
        return Update(out, "random move")

    def update(self, outcome: Outcome) -> None:
        pass


@register("fixed")
class Fixed:
    """Moves to one fixed config and keeps it: a static policy (the leaderboards' ``oracle-static``
    reference row is this agent with the scenario's best fixed config).

    Hyperparameters: ``config``, a mapping parameter name -> target value (the parameters it leaves
    out keep their starting values).  Whenever the guardrails could accept and the variant's config
    differs from the target on a listed parameter, it requests the target; the delta clamp moves the
    config there over a few updates.  Deterministic (no randomness).
    """

    def __init__(self, config=None):
        if not isinstance(config, dict) or not config:
            raise AgentConfigError(f"fixed: config must be a non-empty mapping parameter -> value, got {config!r}; "
                             f"parameters: {', '.join(PARAM_NAMES)}")
        bad = [k for k in config if k not in PARAM_NAMES]
        if bad:
            raise AgentConfigError(f"fixed: unknown parameter(s) {', '.join(map(str, bad))} in config; "
                             f"parameters: {', '.join(PARAM_NAMES)}")
        # a value the env's float32 actions cannot carry would only fail at play: refused here
        target = {k: hparams.integer("fixed", f"config.{k}", v, 0, rules.FLOAT32_MAX) for k, v in config.items()}
        self.target = {k: target[k] for k in PARAM_NAMES if k in target}

    def reset(self, seed: int | None = None) -> None:
        pass

    def act(self, context: Context) -> Update | None:
        if not context.can_update:
            return None
        if all(context.config[k] == v for k, v in self.target.items()):
            return None
        return Update(dict(self.target), "move to the fixed config")

    def update(self, outcome: Outcome) -> None:
        pass
