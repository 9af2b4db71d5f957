"""Policies over replayed decision points: the baselines Random, Constant, Rule, Threshold, Argmax and Logged.

A replay policy maps the decision rows of a :class:`~.snapshots.Replay` to action probabilities,
all rows at once (vectorised over the snapshot columns)::

    action_dist(replay) -> ndarray (n_rows, n_actions)   # each row sums to 1 over allowed actions
    scores(replay) -> ndarray (n_rows,)                    # optional: how strongly it wants to act

``scores`` ranks rows for precision@K (:func:`arena_env.replay.metrics.precision_at_k`); without
it a policy's score is its probability of not taking the manifest's ``default_action`` (or of not
taking the first action).  Any object with these methods is a policy (a :class:`typing.Protocol`,
no base class).  Rules and thresholds name snapshot features and are checked against the replay's
features when first used: a wrong name is an error listing the features.

Learning agents that act step by step (bandits that update on the rewards they see) run in the
replay environment (:mod:`arena_env.replay.env`, :func:`arena_env.replay.agents.play`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from . import expr
from .snapshots import Replay


@runtime_checkable
class ReplayPolicy(Protocol):
    name: str

    def action_dist(self, replay: Replay) -> np.ndarray: ...


def uniform_allowed(replay: Replay) -> np.ndarray:
    """Uniform probabilities over each row's allowed actions."""
    a = replay.allowed.astype(np.float64)
    return a / a.sum(axis=1, keepdims=True)


def one_hot(replay: Replay, action: np.ndarray) -> np.ndarray:
    """Probability 1 on ``action[i]`` (indices) at each row; rows where it is not allowed get the uniform
    distribution over the allowed actions."""
    action = np.asarray(action, dtype=np.int64)
    n = len(replay)
    out = np.zeros((n, replay.n_actions))
    ok = replay.allowed[np.arange(n), action]
    out[np.flatnonzero(ok), action[ok]] = 1.0
    if not ok.all():
        out[~ok] = uniform_allowed(replay)[~ok]
    return out


def _action_index(replay: Replay, action: str, who: str) -> int:
    if action not in replay.actions:
        raise ValueError(f"{who}: unknown action {action!r}; the manifest's actions are {', '.join(replay.actions)}")
    return replay.actions.index(action)


def default_scores(policy, replay: Replay) -> np.ndarray:
    """A policy's ranking score: ``policy.scores`` if it has one, else its probability of acting (not the
    manifest's ``default_action``, or not the first action)."""
    if hasattr(policy, "scores"):
        return np.asarray(policy.scores(replay), dtype=np.float64)
    rest = replay.manifest.default_action or replay.actions[0]
    return 1.0 - policy.action_dist(replay)[:, replay.actions.index(rest)]


@dataclass(frozen=True)
class Random:
    """Uniformly random over the allowed actions."""

    name: str = "random"

    def action_dist(self, replay: Replay) -> np.ndarray:
        return uniform_allowed(replay)


@dataclass(frozen=True)
class Constant:
    """Always ``action`` (where it is not allowed: uniform over the allowed actions)."""

    action: str
    name: str = ""

    def __post_init__(self):
        if not self.name:
            object.__setattr__(self, "name", f"constant:{self.action}")

    def action_dist(self, replay: Replay) -> np.ndarray:
        return one_hot(replay, np.full(len(replay), _action_index(replay, self.action, self.name)))


@dataclass(frozen=True)
class Rule:
    """Prioritised rules: the action of the first rule whose condition holds, else ``default``.

    ``rules`` is a sequence of ``(condition, action)`` pairs or ``{"if": condition, "then": action}``
    mappings; conditions are :mod:`.expr` expressions over snapshot features.  :meth:`fired` says which
    rule decided each row (-1: the default).
    """

    rules: Sequence
    default: str
    name: str = "rule"
    _pairs: tuple = field(default=(), repr=False, compare=False)

    def __post_init__(self):
        pairs = []
        for i, r in enumerate(self.rules):
            if isinstance(r, Mapping):
                if set(r) != {"if", "then"}:
                    raise ValueError(f"{self.name}: rules[{i}] needs exactly the keys 'if' and 'then', got {sorted(r)}")
                pairs.append((r["if"], r["then"]))
            else:
                cond, act = r
                pairs.append((cond, act))
        object.__setattr__(self, "_pairs", tuple(pairs))

    def fired(self, replay: Replay) -> np.ndarray:
        n = len(replay)
        which = np.full(n, -1, np.int64)
        cols = dict(replay.features)
        for i, (cond, _) in enumerate(self._pairs):
            e = expr.parse(cond, replay.feature_types, where=f"{self.name}: rules[{i}]")
            hit = e.evaluate(cols, n) & (which < 0)
            which[hit] = i
        return which

    def action_dist(self, replay: Replay) -> np.ndarray:
        idx = [_action_index(replay, a, self.name) for _, a in self._pairs]
        default = _action_index(replay, self.default, self.name)
        which = self.fired(replay)
        action = np.where(which >= 0, np.asarray(idx + [default], np.int64)[which], default)
        return one_hot(replay, action)


@dataclass(frozen=True)
class Threshold:
    """``above`` when ``feature >= threshold``, else ``below`` (a missing value counts as below); its score
    for ranking is the feature's value."""

    feature: str
    threshold: float
    above: str
    below: str
    name: str = ""

    def __post_init__(self):
        if not self.name:
            object.__setattr__(self, "name", f"threshold:{self.feature}>={self.threshold:g}")

    def _values(self, replay: Replay) -> np.ndarray:
        if replay.feature_types.get(self.feature) not in (expr.NUMBER, expr.BOOL):
            raise ValueError(f"{self.name}: {self.feature!r} is not a numeric feature; the numeric features are "
                             f"{', '.join(replay.numeric_features())}")
        return np.asarray(replay.features[self.feature], dtype=np.float64)

    def scores(self, replay: Replay) -> np.ndarray:
        return np.nan_to_num(self._values(replay), nan=-np.inf)

    def action_dist(self, replay: Replay) -> np.ndarray:
        v = self._values(replay)
        hi = _action_index(replay, self.above, self.name)
        lo = _action_index(replay, self.below, self.name)
        with np.errstate(invalid="ignore"):
            action = np.where(v >= self.threshold, hi, lo)
        return one_hot(replay, action)


@dataclass(frozen=True)
class Argmax:
    """The allowed action with the highest score, where action ``a``'s score is the feature named
    ``template.format(action=a)`` (e.g. ``"affinity_{action}"``: recommend the item the user is most
    affine to); ties go to the first such action, a missing score counts as -inf.  Actions without a
    feature of that name score -inf.  Its ranking score is the best action's score."""

    template: str
    name: str = ""

    def __post_init__(self):
        if "{action}" not in self.template:
            raise ValueError(f"argmax: template {self.template!r} must contain {{action}}")
        if not self.name:
            object.__setattr__(self, "name", f"argmax:{self.template}")

    def _scores(self, replay: Replay) -> np.ndarray:
        cols = [self.template.format(action=a) for a in replay.actions]
        known = [c for c in cols if replay.feature_types.get(c) in (expr.NUMBER, expr.BOOL)]
        if not known:
            raise ValueError(f"{self.name}: no numeric feature matches {self.template!r} for any action (e.g. "
                             f"{cols[0]!r}); the numeric features are {', '.join(replay.numeric_features()[:12])}...")
        s = np.full((len(replay), replay.n_actions), -np.inf)
        for j, c in enumerate(cols):
            if c in known:
                s[:, j] = np.nan_to_num(np.asarray(replay.features[c], dtype=np.float64), nan=-np.inf)
        return np.where(replay.allowed, s, -np.inf)

    def scores(self, replay: Replay) -> np.ndarray:
        return self._scores(replay).max(axis=1)

    def action_dist(self, replay: Replay) -> np.ndarray:
        return one_hot(replay, np.argmax(self._scores(replay), axis=1))


@dataclass(frozen=True)
class Logged:
    """The logging policy, as far as the log knows it: probability ``p_i`` on the logged action and the
    rest spread evenly over the other allowed actions.  Its IPW estimate is the mean logged reward
    (the on-policy value); rows without a propensity put 1 on the logged action."""

    name: str = "logged"

    def action_dist(self, replay: Replay) -> np.ndarray:
        n = len(replay)
        p = np.where(np.isnan(replay.pscore), 1.0, replay.pscore)
        others = replay.allowed.copy()
        ok = replay.logged >= 0
        others[np.flatnonzero(ok), replay.logged[ok]] = False
        k = others.sum(axis=1)
        out = np.where(others, ((1.0 - p) / np.maximum(k, 1))[:, None], 0.0)
        out[np.flatnonzero(ok), replay.logged[ok]] = np.where(k[ok] > 0, p[ok], 1.0)
        bad = ~ok
        if bad.any():
            out[bad] = uniform_allowed(replay)[bad]
        return out / out.sum(axis=1, keepdims=True) if n else out


BASELINES = ("random", "constant", "rule", "threshold", "argmax", "logged")


def make(spec: Mapping | str) -> ReplayPolicy:
    """A baseline from a config entry: ``"random"``, ``"logged"``, ``{"constant": {"action": ...}}``,
    ``{"rule": {"rules": [{"if": ..., "then": ...}], "default": ...}}``,
    ``{"threshold": {"feature": ..., "threshold": ..., "above": ..., "below": ...}}``,
    ``{"argmax": {"template": "affinity_{action}"}}`` (each may add ``name``)."""
    kinds = {"random": Random, "constant": Constant, "rule": Rule, "threshold": Threshold, "argmax": Argmax,
             "logged": Logged}
    if isinstance(spec, str):
        if spec not in ("random", "logged"):
            raise ValueError(f"policy {spec!r}: a bare name is one of random, logged; {spec!r} needs parameters "
                             f"({{{spec}: {{...}}}})" if spec in kinds else
                             f"unknown policy {spec!r}; the baselines are {', '.join(BASELINES)}")
        return kinds[spec]()
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise ValueError(f"policy {spec!r}: expected one of {', '.join(BASELINES)} as a name or a one-key mapping")
    (kind, params), = spec.items()
    if kind not in kinds:
        raise ValueError(f"unknown policy {kind!r}; the baselines are {', '.join(BASELINES)}")
    try:
        return kinds[kind](**dict(params or {}))
    except TypeError as exc:
        raise ValueError(f"policy {kind}: {exc}") from None
