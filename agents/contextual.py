"""Agents that use more than an arm's average: ``linucb`` (contextual bandit over the presets) and
``bayes_opt`` (Gaussian-process Bayesian optimisation over multipliers of parameter groups).

Both measure a choice the way the bandit agents do (:class:`agents.bandits.ArmHold`): request the
configuration, wait for the delta clamp to reach it, hold it ``period`` days and score it by the
mean daily reward at the configuration.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from . import rules
from .bandits import ArmHold, PresetBandit
from .protocol import PARAM_NAMES, Context, Outcome, Update
from .registry import register

N_FEATURES = 6


def features(context: Context) -> np.ndarray:
    """Six context features of a decision: a constant, and the variant's retention, scan frequency
    (/10), feedback quality, streak length (/10) and mission completion, each as a lift over the
    control where the control is known (0 otherwise)."""
    m, c = context.signals.metrics, context.signals.control

    def lift(name, scale=1.0):
        if name not in m:
            return 0.0
        return (m[name].value - (c[name].value if name in c else m[name].value)) / scale

    return np.array([1.0, lift("RETENTION_RATE"), lift("SCAN_FREQUENCY", 10.0), lift("FEEDBACK_QUALITY"),
                     lift("STREAK_LENGTH", 10.0), lift("MISSION_COMPLETION")])


@register("linucb")
class LinUCB(PresetBandit):
    """LinUCB (Li et al. 2010) over the presets with the :func:`features` of the decision as context.

    Each arm keeps a ridge regression of its pull reward on the context (``A = I + sum x x'``,
    ``b = sum r x``); the next arm maximises ``theta'x + alpha * sqrt(x' A^-1 x) * scale``, with
    ``scale`` the estimated reward noise (rewards are not in [0, 1]).  Hyperparameters: ``alpha``
    (default 1.5), ``period``, ``patience``.  Use it when the best configuration depends on the
    state of the experiment (which users are left, how the variant is doing against the control).
    """

    def __init__(self, alpha: float = 1.5, period: int = 7, patience: int = 4):
        if not alpha >= 0:
            raise ValueError(f"linucb: alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)
        super().__init__(period, patience)

    def begin(self, arms) -> None:
        super().begin(arms)
        k = len(self.arms)
        self.A = np.tile(np.eye(N_FEATURES), (k, 1, 1))
        self.b = np.zeros((k, N_FEATURES))
        self._x = np.zeros(N_FEATURES)
        self._pull_x = self._x

    def act(self, context: Context) -> Update | None:
        self._x = features(context)
        return super().act(context)

    def select(self) -> int:
        self._pull_x = x = self._x
        scale = self.noise_scale()
        scores = np.empty(len(self.arms))
        for a in range(len(self.arms)):
            inv = np.linalg.inv(self.A[a])
            theta = inv @ self.b[a]
            scores[a] = theta @ x + self.alpha * scale * math.sqrt(max(float(x @ inv @ x), 0.0))
        return int(self.rng.choice(np.flatnonzero(scores == scores.max())))

    def observe(self, arm: int, reward: float) -> None:
        super().observe(arm, reward)
        x = self._pull_x
        self.A[arm] += np.outer(x, x)
        self.b[arm] += reward * x


DEFAULT_GROUPS = {
    "scan": ("scanXp",),
    "feedback": ("feedbackXp", "photoXp"),
    "habit": ("firstScanOfDayXp", "streakBonusPerDay", "streakBonusCap"),
}


@register("bayes_opt")
class BayesOpt:
    """Gaussian-process Bayesian optimisation with expected improvement over parameter groups.

    A point ``u`` in ``[-1, 1]^G`` scales each group of parameters (``groups``, default scan XP,
    feedback and photo XP, daily-habit XP) by ``2 ** (span * u_g)`` from the config the episode
    started with.  The first ``n_init`` points (default 5) are random; then a GP with an RBF kernel
    (``length_scale`` 0.5 on u, noise estimated from the data) is fitted to the standardised pull
    rewards and the next point maximises expected improvement over ``n_candidates`` random
    candidates (default 256).  Hyperparameters: ``groups``, ``span`` (default 1: from half to double),
    ``n_init``, ``length_scale``, ``xi`` (EI exploration, default 0.01), ``n_candidates``, ``period``,
    ``patience``.  Use it to tune a few continuous levers when each evaluation is expensive (a week
    of an experiment) and the response is smooth.
    """

    def __init__(self, groups: dict | None = None, span: float = 1.0, n_init: int = 5, length_scale: float = 0.5,
                 xi: float = 0.01, n_candidates: int = 256, period: int = 7, patience: int = 4):
        self.groups = {str(k): tuple(v) for k, v in (DEFAULT_GROUPS if groups is None else groups).items()}
        bad = [p for ps in self.groups.values() for p in ps if p not in PARAM_NAMES]
        if not self.groups or bad:
            raise ValueError(f"bayes_opt: groups must map names to parameters of {PARAM_NAMES}; bad: {bad}")
        if not (span > 0 and n_init >= 1 and length_scale > 0 and xi >= 0 and n_candidates >= 1):
            raise ValueError("bayes_opt: need span > 0, n_init >= 1, length_scale > 0, xi >= 0, n_candidates >= 1")
        self.span, self.n_init, self.length_scale = float(span), int(n_init), float(length_scale)
        self.xi, self.n_candidates = float(xi), int(n_candidates)
        self.hold = ArmHold(period, patience)
        self.reset(0)

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self.hold.reset()
        self.base: dict | None = None
        self.X: list[np.ndarray] = []
        self.y: list[float] = []
        self._u = None
        self._target: dict | None = None

    def config_for(self, u: np.ndarray) -> dict:
        """The configuration of point ``u``."""
        out = {}
        for g, params in enumerate(self.groups.values()):
            for p in params:
                out[p] = max(int(rules.round_half_away(self.base[p] * 2.0 ** (self.span * float(u[g])))),
                             1 if self.base[p] else 0)
        return out

    def act(self, context: Context) -> Update | None:
        if self.base is None:
            self.base = dict(context.config)
        if self.hold.arm is None:
            self._u = self.next_point()
            self._target = {**context.config, **self.config_for(self._u)}
        ctx = dataclasses.replace(context, presets={"candidate": self._target})
        return self.hold.act(ctx, lambda: 0)

    def update(self, outcome: Outcome) -> None:
        res = self.hold.record(outcome)
        if res is not None:
            self.X.append(self._u)
            self.y.append(res[1])

    # --- the optimiser ------------------------------------------------------------------------------
    def next_point(self) -> np.ndarray:
        G = len(self.groups)
        if len(self.y) < self.n_init:
            return self.rng.uniform(-1.0, 1.0, G)
        cand = self.rng.uniform(-1.0, 1.0, (self.n_candidates, G))
        mu, sd = self.posterior(cand)
        y = np.asarray(self.y)
        best = (y.max() - y.mean()) / (y.std() or 1.0)
        z = (mu - best - self.xi) / np.maximum(sd, 1e-12)
        ei = (mu - best - self.xi) * _norm_cdf(z) + sd * _norm_pdf(z)
        return cand[int(np.argmax(ei))]

    def posterior(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """GP posterior mean and sd (standardised reward units) at ``points``."""
        X = np.asarray(self.X)
        y = np.asarray(self.y)
        ys = (y - y.mean()) / (y.std() or 1.0)
        noise = 0.1  # relative noise variance of a standardised pull reward
        K = _rbf(X, X, self.length_scale) + noise * np.eye(len(X))
        Ks = _rbf(points, X, self.length_scale)
        L = np.linalg.cholesky(K)
        alpha = np.linalg.solve(L.T, np.linalg.solve(L, ys))
        mu = Ks @ alpha
        v = np.linalg.solve(L, Ks.T)
        var = np.maximum(1.0 - np.sum(v * v, axis=0), 1e-12)
        return mu, np.sqrt(var)


def _rbf(a: np.ndarray, b: np.ndarray, length: float) -> np.ndarray:
    d2 = np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)
    return np.exp(-0.5 * d2 / (length * length))


def _norm_cdf(z):
    return 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))


def _norm_pdf(z):
    return np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
