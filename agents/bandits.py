"""Bandit agents over the scenario's presets: ``epsilon_greedy``, ``ucb1``, ``thompson``,
``thompson_gaussian``, ``explore_then_exploit`` and ``hedge``.

The arms are the presets of ``context.presets`` (scenario order).  All agents share one mechanism,
:class:`ArmHold`: a *pull* requests an arm's full config, keeps requesting it (only when
``context.can_update``) while the guardrails' delta clamp moves the config there, then holds it at
the arm for ``warmup`` days (default 0), which are not measured (the carry-over of the previous
config), and for ``period`` measured days (default 7).  The reward of the pull is the mean daily
reward over its measured days (the transition days do not count).  If the pull has not finished
within ``patience`` x (``warmup`` + ``period``) days (e.g. a paused experiment) it ends with the
days it has (none: no observation).  Agents differ only in how they choose the next arm
(:meth:`PresetBandit.select`); the following safeguards are common to all of them (and to
``linucb``, :mod:`agents.contextual`, which leaves elimination off by default), each a
hyperparameter:

* **Stop-loss** (``stop_loss``, default 1.0; ``min_days``, default 2): a pull ends early once it has
  ``min_days`` measured days and their mean daily reward ``m`` is clearly below the *incumbent*:
  ``m < ref - stop_loss * s / sqrt(d)``, with ``d`` the measured days, ``s`` the day-to-day noise
  of the reward (pooled over the episode's pulls, :meth:`ArmHold.daily_sd`, which needs 2 degrees
  of freedom: the episode's first pull needs one more day) and ``ref`` the best mean reward of the
  other arms tried so far (the status quo's credit included), or 0 (the control's level: the reward
  is the lift over the control) when that is higher.  A losing arm costs about ``min_days`` days,
  not ``period``; the short pull is an observation like any other.  ``stop_loss=None`` turns it
  off.
* **Status quo** (``status_quo``, default True): the arm whose config equals the config the episode
  started with is credited with one pull of reward 0 without being pulled (the control runs that
  config, and the reward is the lift over the control), so the agent never spends days measuring
  what it already knows, and goes back to the status quo only when every other arm looks worse.
* **Conservative exploration order** (``order``, default ``"ascending"``): untried arms are tried
  from the least generous to the most generous (the mean log change of the arm's parameters
  against the starting config: cuts first, raises last), so exploration never takes away XP users
  have got used to (a cut after a raise is felt as a loss and drives churn; a raise after a cut is
  cheap); ties at random.  ``"random"``: in random order.
* **Elimination** (``eliminate``, default 1.0): after each pull, an arm whose upper confidence
  bound ``mean + eliminate * scale / sqrt(n)`` falls below the best lower bound
  ``mean - eliminate * scale / sqrt(n)`` of the remaining arms is dropped for the rest of the
  episode (successive elimination; ``scale`` is :meth:`PresetBandit.noise_scale`, or ``ucb1``'s
  fixed ``scale``), so that once an arm is clearly best the agent keeps it instead of re-trying
  clearly worse arms (each switch costs the switch's carry-over).  ``eliminate=None`` turns it off.

Scenarios without presets make every agent hold.  All randomness comes from the seed given to
``reset``.  ``pulls`` (a list of ``(arm name, mean daily reward)``) records the finished pulls of the
episode, ``stops`` whether each was ended by the stop-loss, and ``alive`` which arms remain.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from . import hparams
from .protocol import Context, Outcome, Update
from .registry import _REGISTRY, make, register

ORDERS = ("ascending", "random")


def check_pulls(agent: str, period, patience, warmup, stop_loss, min_days) -> tuple:
    """The hyperparameters of :class:`ArmHold` checked for ``agent`` (:mod:`agents.hparams`): integers
    ``period >= 1``, ``patience >= 1``, ``warmup >= 0``, ``min_days >= 1`` and a finite ``stop_loss >= 0``
    or None; returned in that order as ``(period, patience, warmup, stop_loss, min_days)``."""
    return (hparams.integer(agent, "period", period, 1), hparams.integer(agent, "patience", patience, 1),
            hparams.integer(agent, "warmup", warmup, 0),
            hparams.real(agent, "stop_loss", stop_loss, 0.0, optional=True),
            hparams.integer(agent, "min_days", min_days, 1))


class ArmHold:
    """Pull one preset at a time and measure it: the mechanics shared by every bandit agent.

    ``act(context, choose)`` starts a pull when none is running (``choose()`` returns the arm's
    index), and returns an update requesting the arm while the config differs from it and the
    guardrails could accept; ``record(outcome, reference)`` accumulates the rewards of the days at
    the arm and returns ``(arm index, mean daily reward)`` when the pull ends (None otherwise, and
    None for a pull that never measured a day at its arm).

    A pull holds its arm for ``warmup`` days, which are not measured, then for ``period`` measured
    days; it gives up after ``patience`` x (``warmup`` + ``period``) days.  With ``stop_loss`` (a
    z-score; None: off) it ends early once it has ``min_days`` measured days whose mean daily reward
    ``m`` is clearly below ``reference`` (given to ``record``; None: no stop-loss for this outcome):
    ``m < reference - stop_loss * daily_sd() / sqrt(d)``, ``d`` the measured days.  After a pull,
    ``stopped`` tells whether the stop-loss ended it and ``days`` how many days it measured.  An
    outcome covering several days (``days_per_step`` > 1) counts as that many days.
    """

    def __init__(self, period: int = 7, patience: int = 4, warmup: int = 0, stop_loss: float | None = None,
                 min_days: int = 2):
        self.period, self.patience, self.warmup = int(period), int(patience), int(warmup)
        self.stop_loss = None if stop_loss is None else float(stop_loss)
        self.min_days = int(min_days)
        self.reset()

    def reset(self) -> None:
        self.arm: int | None = None
        self._target: dict | None = None
        self._after: dict | None = None
        self._day = 0
        self._at_days = self._elapsed = 0
        self._days = self._n = 0      # measured days and outcomes of the running pull
        self._sum = self._sq = 0.0    # their reward, and sum of reward^2 / days
        self._ss, self._dof = 0.0, 0  # pooled within-pull sum of squares of the finished pulls
        self.stopped, self.days = False, 0

    def _pull_ss(self) -> float:
        return max(self._sq - self._sum * self._sum / self._days, 0.0) if self._days else 0.0

    def daily_sd(self) -> float | None:
        """The standard deviation of one day's reward about its pull's mean, pooled over the measured
        outcomes of the episode's pulls (the running one included); None with fewer than 2 degrees of
        freedom."""
        dof = self._dof + max(self._n - 1, 0)
        if dof < 2:
            return None
        return max(math.sqrt((self._ss + self._pull_ss()) / dof), 1e-12)

    def act(self, context: Context, choose) -> Update | None:
        presets = list(context.presets.items())
        if not presets:
            return None
        if self.arm is None:
            self.arm = int(choose())
            self._target = {k: int(v) for k, v in presets[self.arm][1].items()}
            self._at_days = self._elapsed = self._days = self._n = 0
            self._sum = self._sq = 0.0
        self._day = context.day
        self._after = dict(context.config)
        if self._after == self._target or not context.can_update:
            return None
        return Update(dict(self._target), f"pull arm {presets[self.arm][0]!r}")

    def record(self, outcome: Outcome, reference: float | None = None) -> tuple[int, float] | None:
        if self.arm is None or self._after is None:
            return None
        days = max(int(outcome.day) - self._day, 1)
        after = self._after
        if outcome.accepted:
            after.update(outcome.decision.get("appliedConfig") or {})
        self._elapsed += days
        if after == self._target:
            if self._at_days >= self.warmup:
                r = float(outcome.reward)
                self._days += days
                self._n += 1
                self._sum += r
                self._sq += r * r / days
            self._at_days += days
        self._after = None
        stop = False
        if self.stop_loss is not None and reference is not None and self._days >= self.min_days:
            sd = self.daily_sd()
            stop = sd is not None and self._sum / self._days < reference - self.stop_loss * sd / math.sqrt(self._days)
        if stop or self._days >= self.period or self._elapsed >= self.patience * (self.warmup + self.period):
            result = (self.arm, self._sum / self._days) if self._days else None
            self._ss += self._pull_ss()
            self._dof += max(self._n - 1, 0)
            self.stopped, self.days = stop, self._days
            self.arm = None
            return result
        return None


def generosity(config: Mapping[str, int], start: Mapping[str, int]) -> float:
    """How generous ``config`` is against ``start``: the mean over the parameters of
    ``log((config + 1) / (start + 1))`` (negative: mostly cuts; 0: the same; positive: raises)."""
    return float(np.mean([math.log((float(config.get(p, v)) + 1.0) / (float(v) + 1.0)) for p, v in start.items()]))


class PresetBandit:
    """Base of the bandit agents: arm statistics, the shared :class:`ArmHold` and safeguards (see the
    module docstring), and the protocol glue.

    Subclasses implement :meth:`select` (the index of the next arm, among :attr:`alive` arms; the
    helpers :meth:`untried` and :meth:`best` respect the exploration order and the elimination) and
    may extend :meth:`observe`.  Common hyperparameters: ``period``, ``patience``, ``warmup``,
    ``stop_loss``, ``min_days``, ``eliminate``, ``order``, ``status_quo``.
    """

    def __init__(self, period: int = 7, patience: int = 4, *, warmup: int = 0, stop_loss: float | None = 1.0,
                 min_days: int = 2, eliminate: float | None = 1.0, order: str = "ascending",
                 status_quo: bool = True):
        name = getattr(self, "agent_name", type(self).__name__)
        self.period, self.patience, self.warmup, self.stop_loss, self.min_days = check_pulls(
            name, period, patience, warmup, stop_loss, min_days)
        self.eliminate = hparams.real(name, "eliminate", eliminate, 0.0, optional=True)
        self.order = hparams.choice(name, "order", order, ORDERS)
        self.status_quo = hparams.boolean(name, "status_quo", status_quo)
        self.hold = ArmHold(self.period, self.patience, self.warmup, self.stop_loss, self.min_days)
        self.reset(0)

    def common(self) -> dict:
        """The common hyperparameters (for building strategies that share this agent's settings)."""
        return {"period": self.period, "patience": self.patience, "warmup": self.warmup,
                "stop_loss": self.stop_loss, "min_days": self.min_days, "eliminate": self.eliminate,
                "order": self.order, "status_quo": self.status_quo}

    # --- protocol -------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self.hold.reset()
        self.arms: list[str] = []
        self.pulls: list[tuple[str, float]] = []
        self.stops: list[bool] = []
        self.n = np.zeros(0, np.int64)
        self.sums = np.zeros(0)
        self.sumsq = np.zeros(0)
        self.alive = np.zeros(0, bool)
        self.generosity = np.zeros(0)
        self.incumbent: int | None = None

    def act(self, context: Context) -> Update | None:
        if not self.arms and context.presets:
            self.begin(list(context.presets), list(context.presets.values()), context.config)
            if self.status_quo and self.incumbent is not None:
                self.observe(self.incumbent, 0.0)
        return self.hold.act(context, self.select)

    def update(self, outcome: Outcome) -> None:
        res = self.hold.record(outcome, self.stop_reference() if self.arms else None)
        if res is not None:
            self.pulls.append((self.arms[res[0]], res[1]))
            self.stops.append(self.hold.stopped)
            self.observe(*res)

    # --- bandit -----------------------------------------------------------------------------------
    def begin(self, arms: Sequence[str], configs: Sequence[Mapping[str, int]] | None = None,
              start: Mapping[str, int] | None = None) -> None:
        """Start learning over ``arms`` (names, in order), with their ``configs`` and the config the
        episode ``start``-ed with when known (they define the :attr:`incumbent`, the arm equal to the
        start, and each arm's :func:`generosity`)."""
        self.arms = list(arms)
        k = len(self.arms)
        self.n, self.sums, self.sumsq = np.zeros(k, np.int64), np.zeros(k), np.zeros(k)
        self.alive = np.ones(k, bool)
        self.generosity = np.zeros(k)
        self.incumbent = None
        if configs is not None and start is not None:
            start = {p: int(v) for p, v in start.items()}
            same = [i for i, c in enumerate(configs) if {p: int(v) for p, v in c.items()} == start]
            self.incumbent = same[0] if same else None
            self.generosity = np.array([generosity(c, start) for c in configs])

    def observe(self, arm: int, reward: float) -> None:
        """Record one pull's mean daily reward, then eliminate the arms that are clearly worse."""
        self.n[arm] += 1
        self.sums[arm] += reward
        self.sumsq[arm] += reward * reward
        if self.eliminate is not None:
            tried = self.n > 0
            half = self.eliminate * self.confidence_scale() / np.sqrt(np.maximum(self.n, 1))
            lcb = np.max(np.where(tried & self.alive, self.means - half, -np.inf))
            self.alive &= ~tried | (self.means + half >= lcb)

    def stop_reference(self) -> float:
        """What the running pull must not fall clearly below: the best mean of the other tried arms,
        or 0 (the control's level) when that is higher."""
        others = np.where(self.n > 0, self.means, -np.inf)
        if self.hold.arm is not None:
            others[self.hold.arm] = -np.inf
        return max(0.0, float(others.max()) if others.size else 0.0)

    def select(self) -> int:
        raise NotImplementedError

    @property
    def means(self) -> np.ndarray:
        return np.where(self.n > 0, self.sums / np.maximum(self.n, 1), 0.0)

    def _first(self, idx: np.ndarray) -> int:
        """One of the arms ``idx``: the least generous ones with ``order="ascending"``, at random."""
        if self.order == "ascending":
            g = self.generosity[idx]
            idx = idx[g == g.min()]
        return int(self.rng.choice(idx))

    def untried(self) -> int | None:
        """The next arm never pulled yet (in the exploration ``order``), or None."""
        idx = np.flatnonzero(self.n == 0)
        return self._first(idx) if idx.size else None

    def best(self) -> int:
        """The remaining arm with the highest mean (ties broken at random)."""
        m = np.where((self.n > 0) & self.alive, self.means, -np.inf)
        return int(self.rng.choice(np.flatnonzero(m == m.max())))

    def noise_scale(self) -> float:
        """The spread of a pull's reward: pooled within-arm standard deviation of the pulls (the
        noise); until some arm has two pulls, the day-to-day noise over a pull's ``period`` days
        (``daily_sd / sqrt(period)``); without that, the spread of the arms' means; 1.0 without data."""
        dof = int(np.sum(np.maximum(self.n - 1, 0)))
        if dof > 0:
            ss = float(np.sum(self.sumsq - self.sums * self.means))
            return max(math.sqrt(max(ss, 0.0) / dof), 1e-6)
        sd = self.hold.daily_sd()
        if sd is not None:
            return max(sd / math.sqrt(self.period), 1e-6)
        tried = self.means[self.n > 0]
        return float(tried.max() - tried.min()) if tried.size > 1 and tried.max() > tried.min() else 1.0

    def confidence_scale(self) -> float:
        """The reward scale of the elimination's confidence bounds: :meth:`noise_scale` (agents with a
        fixed reward scale use it)."""
        return self.noise_scale()

    @property
    def current_arm(self) -> str | None:
        """The arm of the running pull (None between pulls)."""
        return None if self.hold.arm is None else self.arms[self.hold.arm]


@register("epsilon_greedy")
class EpsilonGreedy(PresetBandit):
    """Epsilon-greedy over the presets: pulls every arm once (in the exploration ``order``), then,
    pull after pull, the remaining arm with the best mean reward, except with probability
    ``epsilon`` a uniformly random remaining arm.

    Hyperparameters: ``epsilon`` (exploration probability, default 0.1) and the common ones
    (``period``, ``patience``, ``warmup``, ``stop_loss``, ``min_days``, ``eliminate``, ``order``,
    ``status_quo``: see the module docstring).  Simple and robust to the reward's scale; it keeps
    exploring the arms that elimination has not ruled out, so it pays an ``epsilon`` share of pulls
    on them.  Use it as a baseline or when the environment may drift slowly.  On ``bandit`` (5
    arms) it settles on the best arm within 20 pulls (140 days).
    """

    def __init__(self, epsilon: float = 0.1, period: int = 7, patience: int = 4, *, warmup: int = 0,
                 stop_loss: float | None = 1.0, min_days: int = 2, eliminate: float | None = 1.0,
                 order: str = "ascending", status_quo: bool = True):
        self.epsilon = hparams.real("epsilon_greedy", "epsilon", epsilon, 0.0, 1.0)
        super().__init__(period, patience, warmup=warmup, stop_loss=stop_loss, min_days=min_days,
                         eliminate=eliminate, order=order, status_quo=status_quo)

    def select(self) -> int:
        u = self.untried()
        if u is not None:
            return u
        if self.rng.random() < self.epsilon:
            return int(self.rng.choice(np.flatnonzero(self.alive)))
        return self.best()


@register("ucb1")
class UCB1(PresetBandit):
    """UCB1 over the presets: pulls every arm once (in the exploration ``order``), then the remaining
    arm maximising ``mean + c * scale * sqrt(2 ln t / n)`` (t pulls in all, n of this arm).

    Hyperparameters: ``c`` (exploration weight, default 1), ``scale`` (the reward scale of the bonus;
    default None = estimated online, :meth:`PresetBandit.noise_scale`: the pooled within-arm
    standard deviation of the pulls' rewards, i.e. the noise; before any arm has two pulls, the
    day-to-day noise of the reward over a pull's days) and the common ones (``period``,
    ``patience``, ``warmup``, ``stop_loss``, ``min_days``, ``eliminate``, ``order``, ``status_quo``:
    see the module docstring).  Deterministic given the data (ties at random).  The classic choice
    for a stationary problem with few arms: its regret grows only logarithmically.  On ``bandit`` it
    settles on the best arm within 20 pulls (140 days).
    """

    def __init__(self, c: float = 1.0, scale: float | None = None, period: int = 7, patience: int = 4, *,
                 warmup: int = 0, stop_loss: float | None = 1.0, min_days: int = 2, eliminate: float | None = 1.0,
                 order: str = "ascending", status_quo: bool = True):
        self.c = hparams.real("ucb1", "c", c, 0.0)
        self.scale = hparams.real("ucb1", "scale", scale, 0.0, lo_open=True, optional=True)
        super().__init__(period, patience, warmup=warmup, stop_loss=stop_loss, min_days=min_days,
                         eliminate=eliminate, order=order, status_quo=status_quo)

    def select(self) -> int:
        u = self.untried()
        if u is not None:
            return u
        t = int(self.n.sum())
        scale = self.scale if self.scale is not None else self.noise_scale()
        ucb = self.means + self.c * scale * np.sqrt(2.0 * math.log(t) / self.n)
        ucb[~self.alive] = -np.inf
        return int(self.rng.choice(np.flatnonzero(ucb == ucb.max())))

    def confidence_scale(self) -> float:
        return self.scale if self.scale is not None else self.noise_scale()


@register("thompson")
class Thompson(PresetBandit):
    """Thompson sampling over the presets, with a Beta-Bernoulli or a Gaussian model.

    Every arm is pulled once first (in the exploration ``order``).  ``prior="beta"`` (default): a
    pull is a success when its mean daily reward is above ``threshold`` (default 0: the arm beat the
    control); each arm has a Beta(1 + successes, 1 + failures) posterior; the next arm maximises a
    posterior draw.  Scale-free and robust to outliers, but it only sees the sign: arms that all beat
    (or all lose to) the control look alike.  ``prior="gaussian"``: each arm's mean has the posterior
    N(mean, s^2 / n) (flat prior), with ``s`` the :meth:`PresetBandit.noise_scale` (the noise); it
    uses the size of the rewards and tells good arms apart.  Only the remaining (not eliminated)
    arms are drawn.  Hyperparameters: ``prior``, ``threshold`` (beta only) and the common ones
    (``period``, ``patience``, ``warmup``, ``stop_loss``, ``min_days``, ``eliminate``, ``order``,
    ``status_quo``: see the module docstring).  Use Thompson sampling for a stationary problem when
    exploration should fade as evidence accumulates; the Beta variant when only "better than the
    control or not" matters.  ``thompson_gaussian`` is ``thompson`` with ``prior="gaussian"``.  On
    ``bandit`` both settle on the best arm within 20 pulls (140 days).
    """

    def __init__(self, prior: str = "beta", threshold: float = 0.0, period: int = 7, patience: int = 4, *,
                 warmup: int = 0, stop_loss: float | None = 1.0, min_days: int = 2, eliminate: float | None = 1.0,
                 order: str = "ascending", status_quo: bool = True):
        name = self.agent_name  # "thompson", or "thompson_gaussian" (set by that factory)
        self.prior = hparams.choice(name, "prior", prior, ("beta", "gaussian"))
        self.threshold = hparams.real(name, "threshold", threshold)
        super().__init__(period, patience, warmup=warmup, stop_loss=stop_loss, min_days=min_days,
                         eliminate=eliminate, order=order, status_quo=status_quo)

    def begin(self, arms: Sequence[str], configs=None, start=None) -> None:
        super().begin(arms, configs, start)
        self.wins = np.zeros(len(self.arms))

    def observe(self, arm: int, reward: float) -> None:
        self.wins[arm] += reward > self.threshold
        super().observe(arm, reward)

    def select(self) -> int:
        u = self.untried()
        if u is not None:
            return u
        if self.prior == "beta":
            draw = self.rng.beta(1.0 + self.wins, 1.0 + self.n - self.wins)
        else:
            draw = self.means + self.noise_scale() / np.sqrt(self.n) * self.rng.standard_normal(len(self.arms))
        draw[~self.alive] = -np.inf
        return int(np.argmax(draw))


@register("thompson_gaussian")
def thompson_gaussian(threshold: float = 0.0, period: int = 7, patience: int = 4, *, warmup: int = 0,
                      stop_loss: float | None = 1.0, min_days: int = 2, eliminate: float | None = 1.0,
                      order: str = "ascending", status_quo: bool = True) -> Thompson:
    """Gaussian Thompson sampling: ``thompson`` with ``prior="gaussian"`` (see :class:`Thompson`)."""
    agent = Thompson.__new__(Thompson)
    agent.agent_name = "thompson_gaussian"  # its errors name this agent
    agent.__init__("gaussian", threshold, period, patience, warmup=warmup, stop_loss=stop_loss, min_days=min_days,
                   eliminate=eliminate, order=order, status_quo=status_quo)
    return agent


thompson_gaussian.bandit = True  # hedge may follow it (strategy_names)


@register("explore_then_exploit")
class ExploreThenExploit(PresetBandit):
    """Explore-then-exploit: pulls every remaining arm ``rounds`` times (round by round, in the
    exploration ``order`` within a round), then commits to the arm with the best mean reward for
    the rest of the episode.

    Hyperparameters: ``rounds`` (pulls per arm before committing, default 2) and the common ones
    (``period``, ``patience``, ``warmup``, ``stop_loss``, ``min_days``, ``eliminate``, ``order``,
    ``status_quo``: see the module docstring).  Without the safeguards, exploration costs ``rounds x
    n_arms x period`` days (70 days with 5 arms); the stop-loss shortens the pulls of losing arms
    and elimination drops the clearly worse arms from the later rounds, so the later rounds compare
    only the contenders.  After committing it never reconsiders.  Use it when the horizon is known
    and a simple, auditable plan ("test each, then pick one") is wanted.  On ``bandit`` it holds the
    best arm within 20 pulls (140 days).
    """

    def __init__(self, rounds: int = 2, period: int = 7, patience: int = 4, *, warmup: int = 0,
                 stop_loss: float | None = 1.0, min_days: int = 2, eliminate: float | None = 1.0,
                 order: str = "ascending", status_quo: bool = True):
        self.rounds = hparams.integer("explore_then_exploit", "rounds", rounds, 1)
        super().__init__(period, patience, warmup=warmup, stop_loss=stop_loss, min_days=min_days,
                         eliminate=eliminate, order=order, status_quo=status_quo)

    def begin(self, arms: Sequence[str], configs=None, start=None) -> None:
        super().begin(arms, configs, start)
        self.committed: int | None = None

    def select(self) -> int:
        if self.committed is None:
            low = self.n[self.alive].min()
            if low < self.rounds:
                return self._first(np.flatnonzero((self.n == low) & self.alive))
            self.committed = self.best()
        return self.committed


def strategy_names() -> list[str]:
    """The registered agents ``hedge`` can follow: the registered :class:`PresetBandit` classes and the
    factories marked ``bandit = True`` (``thompson_gaussian``), ``hedge`` itself excluded."""
    return [n for n, f in sorted(_REGISTRY.items()) if n != "hedge" and (
        getattr(f, "bandit", False) or (isinstance(f, type) and issubclass(f, PresetBandit)))]


@register("hedge")
class Hedge(PresetBandit):
    """An ensemble of bandit strategies with EXP3 weights: before each pull it draws one strategy
    with probability ``(1 - gamma) w_i / sum(w) + gamma / K`` and pulls the arm that strategy picks.

    Only the followed strategy's reward is seen, so its weight is updated with the importance
    weighted gain ``w_i <- w_i exp(eta * x / p_i)``, ``x`` the pull's reward scaled to [0, 1] by the
    range of the rewards seen so far.  Every strategy learns from every pull (the arm's reward is
    data whoever chose the arm).  Hyperparameters: ``strategies`` (registry names of bandit agents,
    default ``("ucb1", "thompson_gaussian", "epsilon_greedy")``, built with their default
    hyperparameters and this agent's common ones), ``eta`` (learning rate, default 0.3), ``gamma``
    (uniform exploration over strategies, default 0.1) and the common ones (``period``,
    ``patience``, ``warmup``, ``stop_loss``, ``min_days``, ``eliminate``, ``order``, ``status_quo``:
    see the module docstring; this agent's pulls apply them).  Use it when it is not clear which
    strategy suits the scenario (e.g. stationary or drifting): it follows whichever has been earning
    the most.  On ``bandit`` it settles on the best arm within 20 pulls (140 days).
    """

    def __init__(self, strategies: Sequence[str] = ("ucb1", "thompson_gaussian", "epsilon_greedy"),
                 eta: float = 0.3, gamma: float = 0.1, period: int = 7, patience: int = 4, *, warmup: int = 0,
                 stop_loss: float | None = 1.0, min_days: int = 2, eliminate: float | None = 1.0,
                 order: str = "ascending", status_quo: bool = True):
        self.strategies = hparams.choices("hedge", "strategies", strategies, strategy_names())
        self.eta = hparams.real("hedge", "eta", eta, 0.0, lo_open=True)
        self.gamma = hparams.real("hedge", "gamma", gamma, 0.0, 1.0)
        super().__init__(period, patience, warmup=warmup, stop_loss=stop_loss, min_days=min_days,
                         eliminate=eliminate, order=order, status_quo=status_quo)
        self.subs = []
        for name in self.strategies:
            sub = make(name, **self.common())
            sub.hold = self.hold  # the strategies choose the arms; this agent's pulls measure them
            self.subs.append(sub)
        self.reset(0)

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        for i, sub in enumerate(getattr(self, "subs", [])):
            sub.reset(None if seed is None else [int(seed), i + 1])
        self.log_w = np.zeros(len(self.strategies))
        self.followed: int | None = None
        self.lo, self.hi = math.inf, -math.inf

    def begin(self, arms: Sequence[str], configs=None, start=None) -> None:
        super().begin(arms, configs, start)
        for sub in self.subs:
            sub.begin(arms, configs, start)

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
