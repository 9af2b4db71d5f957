"""Agents that use more than an arm's average: ``linucb`` (contextual bandit over the presets) and
``bayes_opt`` (Gaussian-process Bayesian optimisation over multipliers of parameter groups).

Both measure a choice the way the bandit agents do (:class:`agents.bandits.ArmHold`): request the
configuration, wait for the delta clamp to reach it, hold it (``warmup`` unmeasured days, then
``period`` measured days) and score it by the mean daily reward at the configuration.  Both use the
bandits' stop-loss and conservative (least generous first) exploration order, see
:mod:`agents.bandits`; ``linucb`` also credits the status quo (elimination is available, off by
default), ``bayes_opt`` ends its search after a ``budget`` of points and holds its recommendation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

from . import hparams, rules
from .bandits import ORDERS, ArmHold, PresetBandit, check_pulls
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
    ``b = sum r x``); every arm is pulled once first (in the exploration ``order``), then the next
    arm is the remaining arm maximising ``theta'x + alpha * sqrt(x' A^-1 x) * scale``, with
    ``scale`` the estimated reward noise (rewards are not in [0, 1]).  Hyperparameters: ``alpha``
    (default 1.5) and the common ones of the bandit agents (``period``, ``patience``, ``warmup``,
    ``stop_loss``, ``min_days``, ``eliminate``, ``order``, ``status_quo``: see
    :mod:`agents.bandits`), with one difference: ``eliminate`` defaults to None (off), because
    elimination compares context-free means, and an arm that is worse on average may be the best in
    some contexts.  Use it when the best configuration depends on the state of the
    experiment (which users are left, how the variant is doing against the control).
    """

    def __init__(self, alpha: float = 1.5, period: int = 7, patience: int = 4, *, warmup: int = 0,
                 stop_loss: float | None = 1.0, min_days: int = 2, eliminate: float | None = None,
                 order: str = "ascending", status_quo: bool = True):
        self.alpha = hparams.real("linucb", "alpha", alpha, 0.0)
        super().__init__(period, patience, warmup=warmup, stop_loss=stop_loss, min_days=min_days,
                         eliminate=eliminate, order=order, status_quo=status_quo)

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self._x = self._pull_x = np.zeros(N_FEATURES)

    def begin(self, arms, configs=None, start=None) -> None:
        k = len(arms)
        self.A = np.tile(np.eye(N_FEATURES), (k, 1, 1))
        self.b = np.zeros((k, N_FEATURES))
        super().begin(arms, configs, start)

    def act(self, context: Context) -> Update | None:
        self._x = features(context)
        if not self.arms:  # the status quo's credit (at the first decision) has this context
            self._pull_x = self._x
        return super().act(context)

    def select(self) -> int:
        self._pull_x = x = self._x
        u = self.untried()
        if u is not None:
            return u
        scale = self.noise_scale()
        scores = np.full(len(self.arms), -np.inf)
        for a in np.flatnonzero(self.alive):
            inv = np.linalg.inv(self.A[a])
            theta = inv @ self.b[a]
            scores[a] = theta @ x + self.alpha * scale * math.sqrt(max(float(x @ inv @ x), 0.0))
        return int(self.rng.choice(np.flatnonzero(scores == scores.max())))

    def observe(self, arm: int, reward: float) -> None:
        x = self._pull_x
        self.A[arm] += np.outer(x, x)
        self.b[arm] += reward * x
        super().observe(arm, reward)


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
    started with.  The first ``n_init`` points (default 5) are random (drawn together and, with
    ``order="ascending"``, tried from the least to the most generous by their mean ``u``: cuts
    first, as the bandit agents do); then a GP with an RBF kernel (``length_scale`` 0.5 on u, noise
    estimated from the data) is fitted to the standardised pull rewards and the next point maximises
    expected improvement over ``n_candidates`` random candidates (default 256).

    A point is measured like a bandit pull (:class:`agents.bandits.ArmHold`), with the bandits'
    stop-loss: it ends early once its mean daily reward over at least ``min_days`` measured days is
    clearly below the best point so far, or 0 (the control's level) when that is higher.  With
    ``status_quo=True`` (default False) the start config (``u = 0``) is taken to earn 0 (the lift over
    the control, which runs it) and enters the GP as a data point without being measured (off by
    default: it did not change the results on the economy scenarios, and it is wrong for a reward
    that is not a lift over a control running the start config).  After
    ``budget`` measured points (default 8; None: never) the search ends and the agent holds its
    recommendation, the point with the best posterior mean (:meth:`recommendation`, re-assessed
    after each pull), instead of trying new points for the rest of the episode (each new point is a
    change users feel).  ``X`` and ``y`` list the measured points and their rewards.

    Hyperparameters: ``groups``, ``span`` (default 1: from half to double), ``n_init``,
    ``length_scale``, ``xi`` (EI exploration, default 0.01), ``n_candidates``, ``budget``,
    ``period`` (default 7), ``patience`` (default 4), ``warmup`` (default 0), ``stop_loss`` (default
    1.0), ``min_days`` (default 2), ``order`` (default ``"ascending"``), ``status_quo`` (default
    False); the last six as in :mod:`agents.bandits`.  Use it to tune a few continuous levers when
    each evaluation is expensive (a week of an experiment) and the response is smooth.
    """

    def __init__(self, groups: dict | None = None, span: float = 1.0, n_init: int = 5, length_scale: float = 0.5,
                 xi: float = 0.01, n_candidates: int = 256, period: int = 7, patience: int = 4, *,
                 warmup: int = 0, stop_loss: float | None = 1.0, min_days: int = 2, order: str = "ascending",
                 status_quo: bool = False, budget: int | None = 8):
        groups = DEFAULT_GROUPS if groups is None else groups
        if not isinstance(groups, Mapping) or not groups:
            raise hparams.fail("bayes_opt", "groups", "a non-empty mapping group name -> list of parameters", groups)
        self.groups = {str(k): hparams.choices("bayes_opt", f"groups.{k}", v, PARAM_NAMES) for k, v in groups.items()}
        self.span = hparams.real("bayes_opt", "span", span, 0.0, lo_open=True)
        self.n_init = hparams.integer("bayes_opt", "n_init", n_init, 1)
        self.length_scale = hparams.real("bayes_opt", "length_scale", length_scale, 0.0, lo_open=True)
        self.xi = hparams.real("bayes_opt", "xi", xi, 0.0)
        self.n_candidates = hparams.integer("bayes_opt", "n_candidates", n_candidates, 1)
        self.order = hparams.choice("bayes_opt", "order", order, ORDERS)
        self.status_quo = hparams.boolean("bayes_opt", "status_quo", status_quo)
        self.budget = hparams.integer("bayes_opt", "budget", budget, 1, optional=True)
        self.hold = ArmHold(*check_pulls("bayes_opt", period, patience, warmup, stop_loss, min_days))
        self.reset(0)

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self.hold.reset()
        self.base: dict | None = None
        self.X: list[np.ndarray] = []
        self.y: list[float] = []
        self._u = None
        self._target: dict | None = None
        self._init: list[np.ndarray] = []

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
        res = self.hold.record(outcome, max([0.0, *self.y]))
        if res is not None:
            self.X.append(self._u)
            self.y.append(res[1])

    # --- the optimiser ------------------------------------------------------------------------------
    def next_point(self) -> np.ndarray:
        G = len(self.groups)
        if self.budget is not None and len(self.y) >= self.budget:
            return self.recommendation()
        if len(self.y) < self.n_init:
            if not self._init:  # the initial design, in the exploration order
                pts = self.rng.uniform(-1.0, 1.0, (self.n_init, G))
                if self.order == "ascending":
                    pts = pts[np.argsort(pts.mean(axis=1), kind="stable")]
                self._init = list(pts[::-1])
            return self._init.pop()
        cand = self.rng.uniform(-1.0, 1.0, (self.n_candidates, G))
        mu, sd = self.posterior(cand)
        y = self._data()[1]
        best = (y.max() - y.mean()) / (y.std() or 1.0)
        z = (mu - best - self.xi) / np.maximum(sd, 1e-12)
        ei = (mu - best - self.xi) * _norm_cdf(z) + sd * _norm_pdf(z)
        return cand[int(np.argmax(ei))]

    def posterior(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """GP posterior mean and sd (standardised reward units) at ``points``."""
        X, y = self._data()
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

    def recommendation(self) -> np.ndarray:
        """The point with the best GP posterior mean among the measured points and, with
        ``status_quo``, the start config (the config to deploy)."""
        X = self._data()[0]
        return X[int(np.argmax(self.posterior(X)[0]))]

    def _data(self) -> tuple[np.ndarray, np.ndarray]:
        """The GP's data: the measured points, and the status quo (u = 0, reward 0) if known."""
        X, y = list(self.X), list(self.y)
        if self.status_quo:
            X.insert(0, np.zeros(len(self.groups)))
            y.insert(0, 0.0)
        return np.asarray(X), np.asarray(y)


def _rbf(a: np.ndarray, b: np.ndarray, length: float) -> np.ndarray:
    d2 = np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)
    return np.exp(-0.5 * d2 / (length * length))


def _norm_cdf(z):
    return 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))


def _norm_pdf(z):
    return np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
