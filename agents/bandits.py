"""Bandit agents over the scenario's presets: ``epsilon_greedy``, ``ucb1``, ``thompson``,
``thompson_gaussian``, ``explore_then_exploit`` and ``hedge``.

The arms are the presets of ``context.presets`` (scenario order).  All agents share one mechanism,
:class:`ArmHold`: a *pull* requests an arm's full config, keeps requesting it (only when
``context.can_update``) while the guardrails' delta clamp moves the config there, then holds it for
``period`` days at the arm (default 7).  The reward of the pull is the mean daily reward over the
days on which the config equalled the arm (the transition days do not count).  If the arm is not
reached within ``patience`` x ``period`` days (e.g. a paused experiment) the pull ends without an
observation.  Agents differ only in how they choose the next arm (:meth:`PresetBandit.select`).

Scenarios without presets make every agent hold.  All randomness comes from the seed given to
``reset``.  ``pulls`` (a list of ``(arm name, mean daily reward)``) records the finished pulls of the
episode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .protocol import Context, Outcome, Update
from .registry import make, register


class ArmHold:
    """Pull one preset at a time and measure it: the mechanics shared by every bandit agent.

    ``act(context, choose)`` starts a pull when none is running (``choose()`` returns the arm's
    index), and returns an update requesting the arm while the config differs from it and the
    guardrails could accept; ``record(outcome)`` accumulates the rewards of the days at the arm and
    returns ``(arm index, mean daily reward)`` when the pull ends (None otherwise, and None for a pull
    that never reached its arm).
    """

    def __init__(self, period: int = 7, patience: int = 4):
        self.period, self.patience = int(period), int(patience)
        self.reset()

    def reset(self) -> None:
        self.arm: int | None = None
        self._target: dict | None = None
        self._after: dict | None = None
        self._day = 0
        self._at_days = self._elapsed = 0
        self._sum = 0.0

    def act(self, context: Context, choose) -> Update | None:
        presets = list(context.presets.items())
        if not presets:
            return None
        if self.arm is None:
            self.arm = int(choose())
            self._target = {k: int(v) for k, v in presets[self.arm][1].items()}
            self._at_days = self._elapsed = 0
            self._sum = 0.0
        self._day = context.day
        self._after = dict(context.config)
        if self._after == self._target or not context.can_update:
            return None
        return Update(dict(self._target), f"pull arm {presets[self.arm][0]!r}")

    def record(self, outcome: Outcome) -> tuple[int, float] | None:
        if self.arm is None or self._after is None:
            return None
        days = max(int(outcome.day) - self._day, 1)
        after = self._after
        if outcome.accepted:
            after.update(outcome.decision.get("appliedConfig") or {})
        self._elapsed += days
        if after == self._target:
            self._at_days += days
            self._sum += float(outcome.reward)
        self._after = None
        if self._at_days >= self.period or self._elapsed >= self.patience * self.period:
            result = (self.arm, self._sum / self._at_days) if self._at_days else None
            self.arm = None
            return result
        return None


class PresetBandit:
    """Base of the bandit agents: arm statistics, the shared :class:`ArmHold`, and the protocol glue.

    Subclasses implement :meth:`select` (the index of the next arm) and may extend :meth:`observe`.
    """

    def __init__(self, period: int = 7, patience: int = 4):
        if int(period) != period or period < 1 or int(patience) != patience or patience < 1:
            raise ValueError(f"{type(self).__name__}: need integers period >= 1 and patience >= 1; "
                             f"got period={period}, patience={patience}")
        self.period, self.patience = int(period), int(patience)
        self.hold = ArmHold(self.period, self.patience)
        self.reset(0)

    # --- protocol -------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self.hold.reset()
        self.arms: list[str] = []
        self.pulls: list[tuple[str, float]] = []
        self.n = np.zeros(0, np.int64)
        self.sums = np.zeros(0)
        self.sumsq = np.zeros(0)

    def act(self, context: Context) -> Update | None:
        if not self.arms and context.presets:
            self.begin(list(context.presets))
        return self.hold.act(context, self.select)

    def update(self, outcome: Outcome) -> None:
        res = self.hold.record(outcome)
        if res is not None:
            self.pulls.append((self.arms[res[0]], res[1]))
            self.observe(*res)

    # --- bandit -----------------------------------------------------------------------------------
    def begin(self, arms: Sequence[str]) -> None:
        """Start learning over ``arms`` (names, in order)."""
        self.arms = list(arms)
        k = len(self.arms)
        self.n, self.sums, self.sumsq = np.zeros(k, np.int64), np.zeros(k), np.zeros(k)

    def observe(self, arm: int, reward: float) -> None:
        """Record one pull's mean daily reward."""
        self.n[arm] += 1
        self.sums[arm] += reward
        self.sumsq[arm] += reward * reward

    def select(self) -> int:
        raise NotImplementedError

    @property
    def means(self) -> np.ndarray:
        return np.where(self.n > 0, self.sums / np.maximum(self.n, 1), 0.0)

    def untried(self) -> int | None:
        """A random arm never pulled yet, or None."""
        idx = np.flatnonzero(self.n == 0)
        return int(self.rng.choice(idx)) if idx.size else None

    def best(self) -> int:
        """The arm with the highest mean (ties broken at random)."""
        m = np.where(self.n > 0, self.means, -np.inf)
        return int(self.rng.choice(np.flatnonzero(m == m.max())))

    def noise_scale(self) -> float:
        """The spread of a pull's reward: pooled within-arm standard deviation of the pulls (the
        noise); until some arm has two pulls, the spread of the arms' means; 1.0 without data."""
        dof = int(np.sum(np.maximum(self.n - 1, 0)))
        if dof > 0:
            ss = float(np.sum(self.sumsq - self.sums * self.means))
            return max(math.sqrt(max(ss, 0.0) / dof), 1e-6)
        tried = self.means[self.n > 0]
        return float(tried.max() - tried.min()) if tried.size > 1 and tried.max() > tried.min() else 1.0

    @property
    def current_arm(self) -> str | None:
        """The arm of the running pull (None between pulls)."""
        return None if self.hold.arm is None else self.arms[self.hold.arm]


@register("epsilon_greedy")
class EpsilonGreedy(PresetBandit):
    """Epsilon-greedy over the presets: pulls every arm once, then, pull after pull, the arm with
    the best mean reward, except with probability ``epsilon`` a uniformly random arm.

    Hyperparameters: ``epsilon`` (exploration probability, default 0.1), ``period`` (days an arm is
    held once reached, default 7), ``patience`` (a pull that has not reached its arm after
    ``patience x period`` days is dropped, default 4).  Simple and robust to the reward's scale; it
    keeps exploring forever, so it pays a constant ``epsilon`` share of pulls on bad arms.  Use it as
    a baseline or when the environment may drift slowly.  On ``bandit`` (5 arms) it settles on the
    best arm within 20 pulls (140 days).
    """

    def __init__(self, epsilon: float = 0.1, period: int = 7, patience: int = 4):
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon_greedy: need 0 <= epsilon <= 1, got {epsilon}")
        self.epsilon = float(epsilon)
        super().__init__(period, patience)

    def select(self) -> int:
        u = self.untried()
        if u is not None:
            return u
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(len(self.arms)))
        return self.best()


@register("ucb1")
class UCB1(PresetBandit):
    """UCB1 over the presets: pulls every arm once, then the arm maximising
    ``mean + c * scale * sqrt(2 ln t / n)`` (t pulls in all, n of this arm).

    Hyperparameters: ``c`` (exploration weight, default 1), ``scale`` (the reward scale of the bonus;
    default None = estimated online: the pooled within-arm standard deviation of the pulls' rewards,
    i.e. the noise; before any arm has two pulls, the spread of the arms' means), ``period``
    (default 7), ``patience`` (default 4).  Deterministic given the data (ties at random).  The
    classic choice for a stationary problem with few arms: its regret grows only logarithmically.
    On ``bandit`` it settles on the best arm within 20 pulls (140 days).
    """

    def __init__(self, c: float = 1.0, scale: float | None = None, period: int = 7, patience: int = 4):
        if not c >= 0.0 or (scale is not None and not scale > 0.0):
            raise ValueError(f"ucb1: need c >= 0 and scale > 0 (or None); got c={c}, scale={scale}")
        self.c, self.scale = float(c), None if scale is None else float(scale)
        super().__init__(period, patience)

    def select(self) -> int:
        u = self.untried()
        if u is not None:
            return u
        t = int(self.n.sum())
        scale = self.scale if self.scale is not None else self.noise_scale()
        ucb = self.means + self.c * scale * np.sqrt(2.0 * math.log(t) / self.n)
        return int(self.rng.choice(np.flatnonzero(ucb == ucb.max())))


@register("thompson")
class Thompson(PresetBandit):
    """Thompson sampling over the presets, with a Beta-Bernoulli or a Gaussian model.

    ``prior="beta"`` (default): a pull is a success when its mean daily reward is above
    ``threshold`` (default 0: the arm beat the control); each arm has a Beta(1 + successes,
    1 + failures) posterior; the next arm maximises a posterior draw.  Scale-free and robust to
    outliers, but it only sees the sign: arms that all beat (or all lose to) the control look alike.
    ``prior="gaussian"``: each arm's mean has the posterior N(mean, s^2 / n) (flat prior, every arm
    pulled once first), with ``s`` the pooled within-arm standard deviation of the pulls (the noise);
    it uses the size of the rewards and tells good arms apart.  Hyperparameters: ``prior``,
    ``threshold`` (beta only), ``period`` (default 7), ``patience`` (default 4).  Use Thompson
    sampling for a stationary problem when exploration should fade as evidence accumulates; the
    Beta variant when only "better than the control or not" matters.  ``thompson_gaussian`` is
    ``thompson`` with ``prior="gaussian"``.  On ``bandit`` both settle on the best arm within 20
    pulls (140 days).
    """

    def __init__(self, prior: str = "beta", threshold: float = 0.0, period: int = 7, patience: int = 4):
        if prior not in ("beta", "gaussian") or not math.isfinite(threshold):
            raise ValueError(f"thompson: need prior 'beta' or 'gaussian' and a finite threshold; "
                             f"got prior={prior!r}, threshold={threshold}")
        self.prior, self.threshold = prior, float(threshold)
        super().__init__(period, patience)

    def begin(self, arms: Sequence[str]) -> None:
        super().begin(arms)
        self.wins = np.zeros(len(self.arms))

    def observe(self, arm: int, reward: float) -> None:
        super().observe(arm, reward)
        self.wins[arm] += reward > self.threshold

    def select(self) -> int:
        if self.prior == "beta":
            draw = self.rng.beta(1.0 + self.wins, 1.0 + self.n - self.wins)
        else:
            u = self.untried()
            if u is not None:
                return u
            draw = self.means + self.noise_scale() / np.sqrt(self.n) * self.rng.standard_normal(len(self.arms))
        return int(np.argmax(draw))


@register("thompson_gaussian")
def thompson_gaussian(threshold: float = 0.0, period: int = 7, patience: int = 4) -> Thompson:
    """Gaussian Thompson sampling: ``thompson`` with ``prior="gaussian"`` (see :class:`Thompson`)."""
    return Thompson("gaussian", threshold, period, patience)


@register("explore_then_exploit")
class ExploreThenExploit(PresetBandit):
    """Explore-then-exploit: pulls every arm ``rounds`` times (round-robin, random order per round),
    then commits to the arm with the best mean reward for the rest of the episode.

    Hyperparameters: ``rounds`` (pulls per arm before committing, default 2), ``period`` (default
    7), ``patience`` (default 4).  Exploration costs ``rounds x n_arms x period`` days (70 days with
    5 arms), after which it never reconsiders.  Use it when the horizon is known and the problem is
    stationary, and a simple, auditable plan ("test each, then pick one") is wanted.  On ``bandit`` it
    commits after 10 pulls and holds the best arm within 20 pulls (140 days).
    """

    def __init__(self, rounds: int = 2, period: int = 7, patience: int = 4):
        if int(rounds) != rounds or rounds < 1:
            raise ValueError(f"explore_then_exploit: need an integer rounds >= 1, got {rounds}")
        self.rounds = int(rounds)
        super().__init__(period, patience)

    def select(self) -> int:
        low = self.n.min()
        if low < self.rounds:
            return int(self.rng.choice(np.flatnonzero(self.n == low)))
        return self.best()


@register("hedge")
class Hedge(PresetBandit):
    """An ensemble of bandit strategies with EXP3 weights: before each pull it draws one strategy
    with probability ``(1 - gamma) w_i / sum(w) + gamma / K`` and pulls the arm that strategy picks.

    Only the followed strategy's reward is seen, so its weight is updated with the importance
    weighted gain ``w_i <- w_i exp(eta * x / p_i)``, ``x`` the pull's reward scaled to [0, 1] by the
    range of the rewards seen so far.  Every strategy learns from every pull (the arm's reward is
    data whoever chose the arm).  Hyperparameters: ``strategies`` (registry names of bandit agents,
    default ``("ucb1", "thompson_gaussian", "epsilon_greedy")``, built with their default
    hyperparameters and this agent's ``period`` / ``patience``), ``eta`` (learning rate, default
    0.3), ``gamma`` (uniform exploration over strategies, default 0.1), ``period`` (default 7),
    ``patience`` (default 4).  Use it when it is not clear which strategy suits the scenario (e.g.
    stationary or drifting): it follows whichever has been earning the most.  On ``bandit`` it
    settles on the best arm within 20 pulls (140 days).
    """

    def __init__(self, strategies: Sequence[str] = ("ucb1", "thompson_gaussian", "epsilon_greedy"),
                 eta: float = 0.3, gamma: float = 0.1, period: int = 7, patience: int = 4):
        if isinstance(strategies, str) or not strategies:
            raise ValueError(f"hedge: strategies must be a non-empty list of registry names, got {strategies!r}")
        if not eta > 0.0 or not 0.0 <= gamma <= 1.0:
            raise ValueError(f"hedge: need eta > 0 and 0 <= gamma <= 1; got eta={eta}, gamma={gamma}")
        self.strategies = tuple(str(s) for s in strategies)
        self.subs = [make(s, period=period, patience=patience) for s in self.strategies]
        for name, sub in zip(self.strategies, self.subs):
            if not isinstance(sub, PresetBandit):
                raise TypeError(f"hedge: strategy {name!r} is not a bandit agent of agents.bandits")
        self.eta, self.gamma = float(eta), float(gamma)
        super().__init__(period, patience)

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        for i, sub in enumerate(getattr(self, "subs", [])):
            sub.reset(None if seed is None else [int(seed), i + 1])
        self.log_w = np.zeros(len(self.strategies))
        self.followed: int | None = None
        self.lo, self.hi = math.inf, -math.inf

    def begin(self, arms: Sequence[str]) -> None:
        super().begin(arms)
        for sub in self.subs:
            sub.begin(arms)

    def probabilities(self) -> np.ndarray:
        w = np.exp(self.log_w - self.log_w.max())
        return (1.0 - self.gamma) * w / w.sum() + self.gamma / len(w)

    def select(self) -> int:
        p = self.probabilities()
        self.followed = int(self.rng.choice(len(p), p=p))
        self._p = float(p[self.followed])
        return self.subs[self.followed].select()

    def observe(self, arm: int, reward: float) -> None:
        super().observe(arm, reward)
        for sub in self.subs:
            sub.observe(arm, reward)
        self.lo, self.hi = min(self.lo, reward), max(self.hi, reward)
        x = (reward - self.lo) / (self.hi - self.lo) if self.hi > self.lo else 0.5
        if self.followed is not None:
            self.log_w[self.followed] += self.eta * x / self._p
        self.followed = None
