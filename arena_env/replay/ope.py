"""Off-policy evaluation (OPE): the value of an evaluation policy estimated from logged bandit data.

Data and names
--------------
The inputs carry Open Bandit Pipeline (obp) names, so that obp code switches over without rewriting:

==================================  ===========================  ==============================================
argument                            shape                        meaning
==================================  ===========================  ==============================================
``reward``                          (n,)                         observed reward r_i (finite)
``action``                          (n,) int in [0, n_actions)   logged action a_i
``position``                        (n,) int or None             slot of the logged action (None means 0)
``pscore``                          (n,) in (0, 1]               p_i = pi_b(a_i | x_i), the logging propensity
``action_dist``                     (n, K) or (n, K, L)          the evaluation policy pi_e(a | x_i[, slot])
``estimated_rewards_by_reg_model``  same as ``action_dist``      a reward model q(x_i, a[, slot])
``cases``                           (n,) any ids, or None        rows of one case share an id (None: one each)
==================================  ===========================  ==============================================

When ``action_dist`` is 3-D, row i uses ``action_dist[i, :, position[i]]`` and the same slice of the reward
model, exactly as obp does; ``position=None`` means slot 0 and, as in obp, is an error when ``L > 1``.
``position`` with a 2-D ``action_dist`` is an error too (pass the 3-D array). Below, pi_e(a | x_i) is that
slice, ``w_i = pi_e(a_i | x_i) / p_i`` the importance weight, ``q_i(a)`` the slice of the reward model and
``dm_i = sum_a pi_e(a | x_i) q_i(a) / sum_a pi_e(a | x_i)`` (obp's ``np.average``; the denominator is 1
up to rounding). A policy given as a function ``policy(context) -> action_dist`` is turned into the array by
:func:`action_dist_from`.

Validation raises ``ValueError`` naming the argument and the fix: shapes that disagree, NaN or infinite
values, actions or positions out of range, ``pscore`` outside (0, 1], negative probabilities, and
``action_dist`` rows (every slot) not summing to 1 within 1e-6.

Estimators (``ESTIMATORS``)
---------------------------
Every estimator is a sum of ratios of per-row sums, ``V = sum_k (sum_i u_ik) / (sum_i v_ik)``; this is what
the point estimate, the bootstrap and :func:`compare` all compute (``v_ik = 1`` gives a plain mean):

=============  ==================================================================  ============================
name           estimate                                                            reference
=============  ==================================================================  ============================
``replay``     sum_i pi_e(a_i|x_i) r_i / sum_i pi_e(a_i|x_i)                       Li et al., WSDM 2011
``ipw``        mean_i w_i r_i                                                      Horvitz & Thompson 1952
``snipw``      sum_i w_i r_i / sum_i w_i                                           Swaminathan & Joachims 2015
``dm``         mean_i dm_i                                                         (direct method)
``dr``         mean_i [dm_i + w_i (r_i - q_i(a_i))]                                Dudik et al. 2011
``sndr``       mean_i dm_i + sum_i w_i (r_i - q_i(a_i)) / sum_i w_i                Kallus & Uehara 2019
``switch-dr``  mean_i [dm_i + 1{w_i <= lambda_} w_i (r_i - q_i(a_i))]              Wang et al. 2017
``dr-os``      mean_i [dm_i + lambda_ w_i / (w_i^2 + lambda_) (r_i - q_i(a_i))]    Su et al. 2020
=============  ==================================================================  ============================

* ``replay`` weights each row by pi_e(a_i | x_i): for a deterministic pi_e that is exactly "the mean reward
  of the rows where pi_e picks the logged action" (obp's ``ReplayMethod``); for a stochastic pi_e it keeps
  every row in proportion to the chance pi_e would have matched it (obp counts only rows where that chance
  is exactly 1). It needs no propensities and is unbiased only under uniformly random logging with a fixed
  action set; it keeps about n / K rows. With no matched row the estimate is NaN (obp returns 0.0).
* ``switch-dr``: hyperparameter ``lambda_ >= 0``, default ``inf`` (= ``dr``); ``lambda_=0`` keeps the
  correction only for rows with ``w_i = 0``, where it is 0, so it equals ``dm``. obp's default is also inf.
* ``dr-os``: hyperparameter ``lambda_ >= 0``, default 10.0; ``inf`` gives ``dr`` and 0 gives ``dm`` (the
  shrunk weight of a row with ``w_i = 0`` is taken as 0, its limit, where obp's formula gives 0/0 = NaN for
  ``lambda_=0``). obp's default is ``lambda_=0.0``, which silently turns DR-os into DM; we default to 10,
  inside the grid (1 ... 10000) that obp's own benchmark tunes over.
* ``ipw``, ``snipw``, ``dr``, ``sndr``, ``switch-dr`` and ``dr-os`` need ``pscore``; ``dm`` and the DR
  family need ``estimated_rewards_by_reg_model`` (see :func:`fit_reward_model`); ``dm`` alone needs neither
  ``reward`` nor ``action``. obp's weight clipping (``lambda_`` of IPW/DR) and estimated propensities are
  not offered.

Uncertainty
-----------
:func:`evaluate` returns an :class:`Estimate` with a two-sided 1 - ``alpha`` interval:

* ``"bootstrap"`` (the default): percentile bootstrap that resamples *cases* with replacement, all rows of a
  case together. Per-row terms are summed per case once; each of ``n_bootstrap`` resamples is a row of
  counts over the cases (how often each of ``n_cases`` uniform draws with replacement picked the case: a
  multinomial with equal probabilities, drawn as ``rng.integers`` and counted with ``np.bincount``, about
  5x faster than ``rng.multinomial``), and its estimate is ``sum_k (counts @ U_k) / (counts @ V_k)`` -- the
  ratio is recomputed in every resample (obp resamples per-row values normalised by the full-sample mean,
  which ignores the randomness of the denominator of ``replay``, ``snipw`` and ``sndr``). Resamples with a
  zero denominator are dropped, with a warning. The counts depend only on ``seed``, ``n_cases`` and
  ``n_bootstrap``: :func:`bootstrap_counts` draws them once, and passing them as ``resamples=`` to several
  calls on the same rows (as :mod:`arena_env.replay.metrics` does) gives exactly the results of passing
  ``seed`` to each, without drawing them again.
* ``"clopper-pearson"`` (default) or ``"wilson"``, chosen by ``binomial_method``: used instead when all
  rewards are 0 or 1 and the estimate is a binomial proportion, where a percentile bootstrap of 0 clicks
  in 51 rows says [0, 0], which is wrong:

  - on-policy, one row per case: pi_e(a_i | x_i) equals ``pscore_i`` on every row (``ipw``, ``snipw``:
    every weight is 1; e.g. the uniform policy on a uniformly random log), or is the same positive number
    on every row (``replay``): the estimate is the mean reward, :func:`binomial_interval` of (clicks, rows);

  and when pi_e is deterministic on every row (each used slice is one-hot):

  - ``replay``, no two matched rows in one case: :func:`binomial_interval` of (clicks, matched rows);
  - ``snipw`` with one propensity p for every row (uniform logging), no two matched rows in one case:
    it equals ``replay``, same interval;
  - ``ipw`` with one propensity p for every row and one row per case: the estimate is k / (n p) with
    k ~ Binomial(n, p V) the clicks on matched rows, so the interval is :func:`binomial_interval` of
    (k, n) divided by p.

  ``binomial_method=None`` forces the bootstrap. ``Estimate.interval`` records which interval was used.

:func:`compare` estimates ``V(pi_e) - V(pi_baseline)`` on the same rows, with the same resamples for both,
so that the noise they share cancels. Its p-value is the two-sided bootstrap p-value
``min(1, 2 (min(#{d* <= 0}, #{d* >= 0}) + 1) / (B + 1))`` over the B resampled differences d*: about the
smallest ``alpha`` at which the percentile interval excludes 0, and never exactly 0.  When one side's
resampled estimate never varies although an exact interval applies to it (no click among its matched
rows), the paired bootstrap would ignore that side's uncertainty and call a difference significant that
is not; the comparison then reports the conservative interval ``[low_a - high_b, high_a - low_b]`` of the
two sides' intervals at ``alpha / 2`` each (``Comparison.interval == "combined"``) and no p-value (NaN).

Diagnostics
-----------
:func:`diagnostics` (also in every :class:`Estimate`), with ``w_i`` as above:

* ``ess``: Kish effective sample size (sum w)^2 / sum w^2 (0 when every weight is 0);
* ``max_weight``, ``mean_weight`` (1 in expectation when the propensities are right and pi_e has support
  only where pi_b does; less when pi_e puts mass where pi_b never acts);
* ``unsupported_share``: the mean over rows of pi_e's mass on actions never logged at that row's position
  anywhere in the data. An action logged somewhere may still lack support in this row's context, so this
  is a lower bound on the true unsupported mass -- but it needs no model of pi_b;
* ``match_rate``: mean pi_e(a_i | x_i), the share of rows replay keeps; ``expected_match_rate`` = 1 / K,
  its value under uniformly random logging.

The weight statistics are NaN without ``pscore``, the others NaN without ``action``. ``evaluate`` and
``compare`` add a human-readable warning when ESS < 10% of n; the largest weight exceeds min(100, n / 10)
(one row counts as a hundred, or as a tenth of the data); the mean weight is outside [0.8, 1.2] by more
than three of its standard errors (sd(w) / sqrt(n): wrong propensities or missing support, not noise); the unsupported share exceeds 5%; ``replay`` is given non-constant
propensities (it then is biased: use ``ipw`` or ``snipw``); or no row matches.

Reward model
------------
:func:`fit_reward_model` cross-fits q: cases are shuffled by ``seed`` into ``n_folds`` folds, and each row's
predictions come from a model fitted on the other folds only, so no row's reward -- nor that of another row of
its case -- is used to predict it. Features: the context (integer columns are categorical codes and are
one-hot encoded, other columns used as numbers), a one-hot of the action and, when ``position`` is given, a
one-hot of the position (obp's ``RegressionModel`` with one-hot action contexts). A linear model of these is
additive in context and action; pass a nonlinear scikit-learn estimator for interactions. The fits run with
one BLAS thread (``threadpoolctl``), so that their bits do not depend on the machine's core count.

obp compatibility
-----------------
``ReplayMethod``, ``InverseProbabilityWeighting``, ``SelfNormalizedInverseProbabilityWeighting``,
``DirectMethod``, ``DoublyRobust``, ``SelfNormalizedDoublyRobust``, ``SwitchDoublyRobust(lambda_=)`` and
``DoublyRobustWithShrinkage(lambda_=)`` delegate to :func:`estimate_policy_value` and :func:`evaluate`.
Their ``estimate_interval`` returns obp's keys ``"mean"``, ``"95.0% CI (lower)"`` and
``"95.0% CI (upper)"`` (the number is ``100 * (1 - alpha)``), but ``"mean"`` is the point estimate (obp:
the mean of the bootstrap replicates), the interval is the one :func:`evaluate` picks, and
``random_state=None`` means seed 0 (obp: unseeded). Arguments are keyword-only.

References
----------
* L. Li, W. Chu, J. Langford, X. Wang. Unbiased offline evaluation of contextual-bandit-based news
  article recommendation algorithms. WSDM 2011.
* D. G. Horvitz, D. J. Thompson. A generalization of sampling without replacement from a finite
  universe. JASA 1952.
* A. Swaminathan, T. Joachims. The self-normalized estimator for counterfactual learning. NeurIPS 2015.
* M. Dudik, J. Langford, L. Li. Doubly robust policy evaluation and learning. ICML 2011.
* Y.-X. Wang, A. Agarwal, M. Dudik. Optimal and adaptive off-policy evaluation in contextual bandits.
  ICML 2017.
* Y. Su, M. Dimakopoulou, A. Krishnamurthy, M. Dudik. Doubly robust off-policy evaluation with
  shrinkage. ICML 2020.
* N. Kallus, M. Uehara. Intrinsically efficient, stable, and bounded off-policy evaluation for
  reinforcement learning. NeurIPS 2019.
* Y. Saito, S. Aihara, M. Matsutani, Y. Narita. Open Bandit Dataset and Pipeline. NeurIPS 2021 Datasets
  and Benchmarks (obp 0.5.x, ``obp/ope/estimators.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

ESTIMATORS = ("replay", "ipw", "snipw", "dm", "dr", "sndr", "switch-dr", "dr-os")
"""The estimator names accepted by every function of this module."""

INTERVALS = ("bootstrap", "clopper-pearson", "wilson")
"""The values of ``Estimate.interval``."""

DEFAULT_LAMBDA = {"switch-dr": math.inf, "dr-os": 10.0}
"""Default ``lambda_`` of the estimators that take one."""

# validation tolerance and the warning thresholds of the module docstring
ROW_SUM_TOLERANCE = 1e-6
ESS_SHARE_MIN = 0.1
MAX_WEIGHT_CAP = 100.0
MAX_WEIGHT_SHARE = 0.1
MEAN_WEIGHT_RANGE = (0.8, 1.2)
UNSUPPORTED_SHARE_MAX = 0.05

_NEEDS_PSCORE = frozenset({"ipw", "snipw", "dr", "sndr", "switch-dr", "dr-os"})
_NEEDS_MODEL = frozenset({"dm", "dr", "sndr", "switch-dr", "dr-os"})
_CHUNK_ELEMENTS = 1 << 21  # resample counts generated per block: blocks x n_cases <= this

Seed = int | np.random.Generator


# ------------------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class Diagnostics:
    """Support and weight statistics of logged data for one evaluation policy (see the module docstring)."""

    n_rounds: int
    ess: float
    max_weight: float
    mean_weight: float
    unsupported_share: float
    match_rate: float
    expected_match_rate: float

    @property
    def ess_share(self) -> float:
        """``ess / n_rounds``."""
        return self.ess / self.n_rounds


@dataclass(frozen=True)
class Estimate:
    """A policy value with its two-sided ``1 - alpha`` interval ``[low, high]``.

    ``interval`` is ``"bootstrap"`` (percentile bootstrap over cases), ``"clopper-pearson"`` or
    ``"wilson"`` (exact binomial interval of a deterministic replay on binary rewards)."""

    estimator: str
    value: float
    low: float
    high: float
    n_rounds: int
    n_cases: int
    diagnostics: Diagnostics
    warnings: tuple[str, ...]
    interval: str
    alpha: float


@dataclass(frozen=True)
class Comparison:
    """``difference = value - baseline_value`` on the same rows, its paired bootstrap interval and
    two-sided bootstrap p-value (see the module docstring)."""

    estimator: str
    difference: float
    low: float
    high: float
    p_value: float
    value: float
    baseline_value: float
    n_rounds: int
    n_cases: int
    warnings: tuple[str, ...]
    alpha: float
    interval: str = "bootstrap"  # or "combined" (see compare)


# ------------------------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class _Rows:
    """Validated inputs, with the evaluation policy and the reward model sliced at each row's position."""

    n: int
    n_actions: int
    len_list: int
    reward: np.ndarray | None
    action: np.ndarray | None
    pscore: np.ndarray | None
    position: np.ndarray
    pi: np.ndarray  # (n, n_actions)
    q: np.ndarray | None  # (n, n_actions)


def _check_estimator(estimator: str) -> str:
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    return estimator


def _float_1d(x: Any, name: str, n: int | None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D of shape (n_rounds,); got shape {a.shape}")
    if n is not None and a.shape[0] != n:
        raise ValueError(f"`{name}` has {a.shape[0]} rows but `action_dist` has {n}: pass one value per row")
    bad = ~np.isfinite(a)
    if bad.any():
        raise ValueError(f"`{name}` has {int(bad.sum())} NaN or infinite values (first at row "
                         f"{int(np.argmax(bad))}): drop or fill those rows")
    return a


def _int_1d(x: Any, name: str, n: int, upper: int | None, upper_name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"`{name}` must have shape ({n},), one value per row; got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"`{name}` must be an integer array (got dtype {a.dtype}): pass integer indices")
    if n and upper is None and a.min() < 0:
        raise ValueError(f"`{name}` must be non-negative; got a minimum of {a.min()}")
    if n and upper is not None and (a.min() < 0 or a.max() >= upper):
        raise ValueError(f"`{name}` must be in [0, {upper}) ({upper_name}); got values from {a.min()} to "
                         f"{a.max()}")
    return a.astype(np.intp)


def _check_action_dist(action_dist: Any, name: str = "action_dist") -> np.ndarray:
    d = np.asarray(action_dist, dtype=np.float64)
    if d.ndim not in (2, 3):
        raise ValueError(f"`{name}` must have shape (n_rounds, n_actions) or (n_rounds, n_actions, len_list); "
                         f"got shape {d.shape}")
    if d.shape[0] == 0:
        raise ValueError(f"`{name}` has no rounds (shape {d.shape}): an estimate needs at least one logged round")
    if not np.isfinite(d).all():
        raise ValueError(f"`{name}` has NaN or infinite probabilities: every entry must be in [0, 1]")
    if (d < 0).any():
        raise ValueError(f"`{name}` has negative probabilities (min {d.min():.3g}): every entry must be in "
                         f"[0, 1]")
    dev = np.abs(d.sum(axis=1) - 1.0)
    if dev.size and dev.max() > ROW_SUM_TOLERANCE:
        row = int(np.unravel_index(np.argmax(dev), dev.shape)[0])
        raise ValueError(f"`{name}` rows must sum to 1 over actions (axis 1) within {ROW_SUM_TOLERANCE}; row "
                         f"{row} is off by {dev.max():.3g}: normalise the evaluation policy's probabilities")
    return d


def _prepare(estimator: str | None, reward: Any, action: Any, pscore: Any, action_dist: Any,
             position: Any, estimated_rewards_by_reg_model: Any, *, dist_name: str = "action_dist") -> _Rows:
    """Validate the arrays (those the estimator needs must be present) and slice them at the positions."""
    d = _check_action_dist(action_dist, dist_name)
    n, n_actions = d.shape[0], d.shape[1]
    if d.ndim == 2:
        if position is not None:
            raise ValueError(f"`position` is given but `{dist_name}` is 2-D: pass `{dist_name}` of shape "
                             "(n_rounds, n_actions, len_list), or position=None")
        d = d[:, :, None]
    len_list = d.shape[2]
    if position is None:
        if len_list > 1:
            raise ValueError(f"`position` is required when `{dist_name}` has len_list = {len_list} > 1 "
                             "slots: pass the slot of each logged action")
        pos = np.zeros(n, dtype=np.intp)
    else:
        pos = _int_1d(position, "position", n, len_list, f"len_list = {dist_name}.shape[2]")
    rows = np.arange(n)

    needs_reward = estimator is not None and estimator != "dm"
    if reward is None:
        if needs_reward:
            raise ValueError(f"estimator {estimator!r} needs `reward`, the observed reward of each row")
        r = None
    else:
        r = _float_1d(reward, "reward", n)
    if action is None:
        if needs_reward:
            raise ValueError(f"estimator {estimator!r} needs `action`, the logged action of each row")
        a = None
    else:
        a = _int_1d(action, "action", n, n_actions, f"n_actions = {dist_name}.shape[1]")
    if pscore is None:
        if estimator in _NEEDS_PSCORE:
            raise ValueError(f"estimator {estimator!r} needs `pscore`, the logging policy's probability of "
                             "each logged action")
        p = None
    else:
        if a is None:
            raise ValueError("`pscore` is given without `action`: pass the logged actions too")
        p = _float_1d(pscore, "pscore", n)
        bad = (p <= 0) | (p > 1)
        if bad.any():
            raise ValueError(f"`pscore` must be in (0, 1]; {int(bad.sum())} rows are outside (first at row "
                             f"{int(np.argmax(bad))}: {p[np.argmax(bad)]!r}): pass the logging policy's "
                             "probability of the logged action")
    if estimated_rewards_by_reg_model is None:
        if estimator in _NEEDS_MODEL:
            raise ValueError(f"estimator {estimator!r} needs `estimated_rewards_by_reg_model` (shape of "
                             f"`{dist_name}`): fit one with fit_reward_model()")
        q = None
    else:
        qm = np.asarray(estimated_rewards_by_reg_model, dtype=np.float64)
        if qm.shape != np.shape(action_dist):
            raise ValueError(f"`estimated_rewards_by_reg_model` must have the shape of `{dist_name}` "
                             f"{np.shape(action_dist)}; got {qm.shape}")
        if not np.isfinite(qm).all():
            raise ValueError("`estimated_rewards_by_reg_model` has NaN or infinite values")
        q = (qm if qm.ndim == 3 else qm[:, :, None])[rows, :, pos]
    return _Rows(n=n, n_actions=n_actions, len_list=len_list, reward=r, action=a, pscore=p, position=pos,
                 pi=d[rows, :, pos], q=q)


def _check_lambda(estimator: str, hyper: dict[str, Any]) -> float:
    """The estimator's ``lambda_`` (NaN for estimators without one); unknown keys are errors."""
    allowed = {"lambda_"} if estimator in DEFAULT_LAMBDA else set()
    unknown = set(hyper) - allowed
    if unknown:
        hint = "only `lambda_`" if allowed else "none"
        raise ValueError(f"unknown hyperparameter(s) {sorted(unknown)} for estimator {estimator!r} (it takes "
                         f"{hint})")
    if estimator not in DEFAULT_LAMBDA:
        return math.nan
    lam = hyper.get("lambda_", DEFAULT_LAMBDA[estimator])
    if isinstance(lam, bool) or not isinstance(lam, (int, float, np.integer, np.floating)) or not lam >= 0:
        raise ValueError(f"`lambda_` of {estimator!r} must be a number >= 0 (inf allowed); got {lam!r}")
    return float(lam)


def _rng(seed: Seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative int or a numpy Generator; got {seed!r}")
    return np.random.default_rng(int(seed))


def _check_alpha(alpha: float) -> float:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"`alpha` must be in (0, 1) (0.05 gives a 95% interval); got {alpha!r}")
    return float(alpha)


def _case_index(cases: Any, n: int) -> tuple[np.ndarray, int]:
    """``(inverse, n_cases)``: the case number of each row."""
    if cases is None:
        return np.arange(n), n
    c = np.asarray(cases)
    if c.shape != (n,):
        raise ValueError(f"`cases` must have shape ({n},), one case id per row; got shape {c.shape}")
    if n and np.issubdtype(c.dtype, np.integer) and c.min() >= 0 and c.max() < 4 * n + 1024:
        # small non-negative integers (case indices): number the present ones in sorted order without sorting,
        # exactly np.unique's inverse
        present = np.bincount(c) > 0
        rank = np.cumsum(present) - 1
        return rank[c].astype(np.intp), int(present.sum())
    uniques, inverse = np.unique(c, return_inverse=True)
    return inverse.reshape(n), uniques.size


# ------------------------------------------------------------------------------------------- estimators


def _weights(rows: _Rows) -> np.ndarray:
    return rows.pi[np.arange(rows.n), rows.action] / rows.pscore


def _terms(estimator: str, rows: _Rows, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-row numerators and denominators ``(u, v)``, each (n, k): the estimate is
    ``sum_k u[:, k].sum() / v[:, k].sum()``. This is the only place where a formula lives."""
    n = rows.n
    ones = np.ones((n, 1))
    if estimator == "replay":
        match = rows.pi[np.arange(n), rows.action]
        return (match * rows.reward)[:, None], match[:, None]
    if estimator in ("ipw", "snipw"):
        w = _weights(rows)
        return (w * rows.reward)[:, None], (w[:, None] if estimator == "snipw" else ones)
    dm = (rows.pi * rows.q).sum(axis=1) / rows.pi.sum(axis=1)
    if estimator == "dm":
        return dm[:, None], ones
    w = _weights(rows)
    residual = rows.reward - rows.q[np.arange(n), rows.action]
    if estimator == "sndr":
        return np.column_stack([dm, w * residual]), np.column_stack([np.ones(n), w])
    if estimator == "switch-dr":
        w = np.where(w <= lam, w, 0.0)
    elif estimator == "dr-os" and math.isfinite(lam):
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.where(w > 0, lam * w / (w * w + lam), 0.0)
    return (dm + w * residual)[:, None], ones


def chosen_terms(estimator: str, chosen: np.ndarray, *, n_actions: int, reward: np.ndarray, action: np.ndarray,
                 pscore: np.ndarray | None = None, estimated_rewards_by_reg_model: np.ndarray | None = None) -> np.ndarray:
    """Per-row terms of the deterministic policy that takes ``chosen[i]`` at row ``i`` (n,), for the
    estimators whose estimate is a plain sum of terms: the numerators ``u`` of :func:`_terms` (``replay``:
    ``r_i`` on matched rows, whose count is the denominator; ``ipw``, ``dm``, ``dr``: over all rows).
    ``estimated_rewards_by_reg_model`` is (n, n_actions) at the rows' positions.  Inputs are trusted (the
    replay env checks them once): this is the per-step path of :class:`arena_env.replay.env.ReplayEnv`."""
    if estimator not in ("replay", "ipw", "dm", "dr"):
        raise ValueError(f"chosen_terms: {estimator} is not a plain sum of terms; use replay, ipw, dm or dr")
    chosen = np.asarray(chosen)
    n = chosen.shape[0]
    q = None if estimated_rewards_by_reg_model is None else np.asarray(estimated_rewards_by_reg_model, np.float64)
    pi = np.zeros((n, n_actions))
    pi[np.arange(n), chosen] = 1.0
    rows = _Rows(n=n, n_actions=n_actions, len_list=1, reward=np.asarray(reward, np.float64), action=np.asarray(action),
                 pscore=None if pscore is None else np.asarray(pscore, np.float64), position=np.zeros(n, np.intp),
                 pi=pi, q=q)
    return _terms(estimator, rows, math.inf)[0][:, 0]


def _combine(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``sum_k u[..., k] / v[..., k]``, NaN where a denominator is 0."""
    parts = np.where(v != 0, u / np.where(v != 0, v, 1.0), np.nan)
    return parts.sum(axis=-1)


def estimate_policy_value(estimator: str, *, reward: Any = None, action: Any = None, pscore: Any = None,
                          action_dist: Any, position: Any = None, estimated_rewards_by_reg_model: Any = None,
                          **hyper: Any) -> float:
    """The estimate of the evaluation policy's value by ``estimator`` (one of ``ESTIMATORS``).

    ``hyper`` is ``lambda_`` for ``"switch-dr"`` and ``"dr-os"`` (see the module docstring), nothing
    otherwise. ``reward`` and ``action`` are required except for ``"dm"``. NaN when a denominator is 0
    (``replay`` with no matched row, ``snipw`` with all weights 0)."""
    name = _check_estimator(estimator)
    lam = _check_lambda(name, hyper)
    rows = _prepare(name, reward, action, pscore, action_dist, position, estimated_rewards_by_reg_model)
    u, v = _terms(name, rows, lam)
    return float(_combine(u.sum(axis=0), v.sum(axis=0)))


# ------------------------------------------------------------------------------------------- intervals


def binomial_interval(k: int, n: int, alpha: float = 0.05, method: str = "clopper-pearson") -> tuple[float, float]:
    """Two-sided ``1 - alpha`` interval of a binomial proportion from ``k`` successes in ``n`` trials.

    ``"clopper-pearson"``: the exact interval, ``Beta(alpha/2; k, n-k+1)`` to ``Beta(1-alpha/2; k+1, n-k)``,
    with 0 for ``k = 0`` and 1 for ``k = n``. ``"wilson"``: the score interval without continuity
    correction (Wilson 1927), clipped to [0, 1]. Both equal ``scipy.stats.binomtest(k, n)
    .proportion_ci(1 - alpha, method="exact" | "wilson")``; ``k = 0`` gives ``low = 0`` and ``high > 0``."""
    from scipy.special import ndtri
    from scipy.stats import beta

    if isinstance(k, bool) or isinstance(n, bool) or not isinstance(k, (int, np.integer)) \
            or not isinstance(n, (int, np.integer)):
        raise ValueError(f"`k` and `n` must be integers; got k={k!r}, n={n!r}")
    if not 0 <= k <= n or n < 1:
        raise ValueError(f"need 0 <= k <= n and n >= 1; got k={k}, n={n}")
    alpha = _check_alpha(alpha)
    if method == "clopper-pearson":
        low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
        high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
        return low, high
    if method == "wilson":
        z = float(ndtri(1 - alpha / 2))
        p = k / n
        denom = 1 + z * z / n
        center = (p + z * z / (2 * n)) / denom
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        low = 0.0 if k == 0 else max(0.0, center - half)
        high = 1.0 if k == n else min(1.0, center + half)
        return low, high
    raise ValueError(f"unknown `method` {method!r}; choose 'clopper-pearson' or 'wilson'")


def _case_sums(columns: np.ndarray, inverse: np.ndarray, n_cases: int) -> np.ndarray:
    """(n_cases, m): the per-row columns summed over the rows of each case."""
    if n_cases == columns.shape[0]:  # one row per case: the rows themselves, in case order
        out = np.empty_like(columns)
        out[inverse] = columns
        return out
    return np.column_stack([np.bincount(inverse, weights=col, minlength=n_cases) for col in columns.T])


def _blocks(n_cases: int, n_bootstrap: int) -> list[tuple[int, int]]:
    """The resamples drawn (and multiplied) together: ``(start, stop)`` with ``(stop - start) * n_cases`` at
    most ``_CHUNK_ELEMENTS``, so that memory stays bounded."""
    block = max(1, _CHUNK_ELEMENTS // max(n_cases, 1))
    return [(start, min(start + block, n_bootstrap)) for start in range(0, n_bootstrap, block)]


def _draw_counts(n_cases: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, n_cases) float64: per resample, how often each case is drawn in ``n_cases`` uniform draws
    with replacement (multinomial counts with equal probabilities)."""
    if n_cases == 0:
        return np.zeros((n_resamples, 0))
    draws = rng.integers(0, n_cases, size=(n_resamples, n_cases))
    draws += np.arange(0, n_resamples * n_cases, n_cases)[:, None]  # resample r counts into r * n_cases + case
    return np.bincount(draws.ravel(), minlength=n_resamples * n_cases).reshape(n_resamples, n_cases).astype(np.float64)


def bootstrap_counts(n_cases: int, n_bootstrap: int, seed: Seed = 0) -> np.ndarray:
    """(n_bootstrap, n_cases) float64: the case counts of the bootstrap resamples that :func:`evaluate` and
    :func:`compare` draw from ``seed`` (row r: how often resample r draws each case, cases in the sorted
    order of the ``cases`` ids). Pass them as ``resamples=`` to several calls on the same rows to draw them
    once; the results are exactly those of passing ``seed``. Memory: 8 bytes per case and resample."""
    if isinstance(n_cases, bool) or not isinstance(n_cases, (int, np.integer)) or n_cases < 0:
        raise ValueError(f"`n_cases` must be a non-negative int; got {n_cases!r}")
    n_bootstrap = _check_n_bootstrap(n_bootstrap)
    rng = _rng(seed)
    out = np.empty((n_bootstrap, int(n_cases)))
    for start, stop in _blocks(int(n_cases), n_bootstrap):
        out[start:stop] = _draw_counts(int(n_cases), stop - start, rng)
    return out


def _check_resamples(resamples: Any, n_bootstrap: int, n_cases: int) -> np.ndarray:
    r = np.asarray(resamples, dtype=np.float64)
    if r.shape != (n_bootstrap, n_cases):
        raise ValueError(f"`resamples` must have shape (n_bootstrap, n_cases) = ({n_bootstrap}, {n_cases}); got "
                         f"{r.shape}: make them with bootstrap_counts(n_cases, n_bootstrap, seed) for these rows")
    return r


def _resampled_sums(sums: np.ndarray, n_bootstrap: int, rng: np.random.Generator,
                    resamples: np.ndarray | None = None) -> np.ndarray:
    """(n_bootstrap, m): column sums of ``n_bootstrap`` resamples of the cases (rows of ``sums``) with
    replacement, as counts (resamples x cases) @ per-case sums, drawn from ``rng`` in blocks to bound memory,
    or taken from ``resamples`` (:func:`bootstrap_counts`; multiplied in the same blocks, so the sums are
    the same bits)."""
    n_cases = sums.shape[0]
    out = np.empty((n_bootstrap, sums.shape[1]))
    for start, stop in _blocks(n_cases, n_bootstrap):
        counts = _draw_counts(n_cases, stop - start, rng) if resamples is None else resamples[start:stop]
        out[start:stop] = counts @ sums
    return out


def _percentile_interval(values: np.ndarray, alpha: float) -> tuple[float, float, int]:
    """``(low, high, dropped)``: percentile interval of the finite replicates; ``dropped`` = the others."""
    finite = values[np.isfinite(values)]
    dropped = values.size - finite.size
    if finite.size == 0:
        return math.nan, math.nan, dropped
    low, high = np.percentile(finite, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high), dropped


def _check_n_bootstrap(n_bootstrap: int) -> int:
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 1:
        raise ValueError(f"`n_bootstrap` must be a positive int (2000 is plenty); got {n_bootstrap!r}")
    return int(n_bootstrap)


# ------------------------------------------------------------------------------------------ diagnostics


def _diagnostics(rows: _Rows) -> Diagnostics:
    nan = math.nan
    ess = max_w = mean_w = unsupported = match = nan
    if rows.action is not None and rows.n:
        supported = np.zeros((rows.len_list, rows.n_actions), dtype=bool)
        supported[rows.position, rows.action] = True
        unsupported = float((rows.pi * ~supported[rows.position]).sum(axis=1).mean())
        match = float(rows.pi[np.arange(rows.n), rows.action].mean())
        if rows.pscore is not None:
            w = _weights(rows)
            sq = float((w * w).sum())
            ess = float(w.sum()) ** 2 / sq if sq > 0 else 0.0
            max_w, mean_w = float(w.max()), float(w.mean())
    return Diagnostics(n_rounds=rows.n, ess=ess, max_weight=max_w, mean_weight=mean_w,
                       unsupported_share=unsupported, match_rate=match, expected_match_rate=1.0 / rows.n_actions)


def diagnostics(*, action: Any, action_dist: Any, pscore: Any = None, position: Any = None, reward: Any = None,
                estimated_rewards_by_reg_model: Any = None) -> Diagnostics:
    """Support and weight diagnostics (see the module docstring). ``reward`` and
    ``estimated_rewards_by_reg_model`` are only validated, so the same keyword arrays can be passed here as
    to the estimators."""
    if action is None:
        raise ValueError("`action` is required: the diagnostics compare pi_e with the logged actions")
    return _diagnostics(_prepare(None, reward, action, pscore, action_dist, position,
                                 estimated_rewards_by_reg_model))


def _warnings(estimator: str, diag: Diagnostics, rows: _Rows) -> list[str]:
    """Human-readable warnings about the diagnostics (thresholds in the module docstring)."""
    out = []
    n = diag.n_rounds
    if estimator in ("replay", "dm"):  # no importance weights: the weight checks do not concern them
        diag = replace(diag, ess=math.nan, max_weight=math.nan, mean_weight=math.nan)
    if diag.ess < ESS_SHARE_MIN * n:
        out.append(f"effective sample size {diag.ess:.1f} is below {ESS_SHARE_MIN:.0%} of the {n} rows: a few "
                   "rows carry most of the importance weight, so the estimate is noisy")
    if diag.max_weight > min(MAX_WEIGHT_CAP, MAX_WEIGHT_SHARE * n):
        out.append(f"largest importance weight is {diag.max_weight:.3g} (> min({MAX_WEIGHT_CAP:g}, n/10)): "
                   "one row counts as that many; consider switch-dr, dr-os or snipw")
    low, high = MEAN_WEIGHT_RANGE
    se = float(np.std(_weights(rows)) / math.sqrt(n)) if rows.pscore is not None and n > 1 else 0.0
    off = diag.mean_weight < low or diag.mean_weight > high  # (NaN without pscore: no warning)
    if off and abs(diag.mean_weight - 1.0) > 3.0 * se:  # beyond the range and beyond noise
        out.append(f"mean importance weight {diag.mean_weight:.3g} (standard error {se:.2g}) is outside [{low}, "
                   f"{high}]; it is 1 in "
                   "expectation when `pscore` is the logging policy's probability of the logged action and "
                   "pi_e acts only where pi_b does: check the propensities")
    if diag.unsupported_share > UNSUPPORTED_SHARE_MAX:
        out.append(f"{diag.unsupported_share:.1%} of the evaluation policy's probability is on actions never "
                   "logged (at that position): no estimator can see their rewards; dm and dr extrapolate")
    if estimator == "replay":
        if rows.pscore is not None and np.ptp(rows.pscore) > 1e-12:
            out.append("replay is unbiased only under uniformly random logging, but `pscore` varies: use ipw "
                       "or snipw")
        if diag.match_rate == 0:
            out.append("no logged action has positive probability under the evaluation policy: replay has "
                       "no rows to average")
    return out


# ----------------------------------------------------------------------------------- evaluate / compare


def _exact_interval(name: str, rows: _Rows, inverse: np.ndarray, n_cases: int, alpha: float,
                    method: str | None) -> tuple[float, float] | None:
    """The exact binomial interval where the module docstring says it applies, else None."""
    if method is None or name not in ("replay", "snipw", "ipw"):
        return None
    if not np.all((rows.reward == 0) | (rows.reward == 1)):
        return None
    if n_cases == rows.n and rows.n:  # on-policy: every row's weight is the same (ipw, snipw: 1), so the
        chance = rows.pi[np.arange(rows.n), rows.action]  # estimate is the mean reward, k / n
        on_policy = (np.all(chance == rows.pscore) if name in ("ipw", "snipw") and rows.pscore is not None
                     else name == "replay" and float(np.ptp(chance)) == 0.0 and chance[0] > 0)
        if on_policy:
            return binomial_interval(int(rows.reward.sum()), rows.n, alpha, method)
    if not np.all((rows.pi == 0) | (rows.pi == 1)):
        return None
    matched = rows.pi[np.arange(rows.n), rows.action] == 1
    uniform = rows.pscore is not None and float(np.ptp(rows.pscore)) == 0.0
    k, m = int(rows.reward[matched].sum()), int(matched.sum())
    if (name == "replay" or (name == "snipw" and uniform)) and np.unique(inverse[matched]).size == m:
        return binomial_interval(k, m, alpha, method) if m else (math.nan, math.nan)
    if name == "ipw" and uniform and n_cases == rows.n:
        p = float(rows.pscore[0])
        low, high = binomial_interval(k, rows.n, alpha, method)
        return low / p, high / p
    return None


def evaluate(estimator: str, *, reward: Any = None, action: Any = None, pscore: Any = None, action_dist: Any,
             position: Any = None, estimated_rewards_by_reg_model: Any = None, cases: Any = None,
             n_bootstrap: int = 2000, alpha: float = 0.05, seed: Seed = 0,
             binomial_method: str | None = "clopper-pearson", resamples: Any = None, **hyper: Any) -> Estimate:
    """The estimate of :func:`estimate_policy_value` with a two-sided ``1 - alpha`` interval, diagnostics
    and warnings.

    The interval is the percentile bootstrap over ``cases`` (``n_bootstrap`` resamples drawn from
    ``seed``, or the counts ``resamples`` of :func:`bootstrap_counts`), or, for a deterministic ``replay``
    on binary rewards with no two matched rows in one case (and ``snipw`` and ``ipw`` under uniform logging:
    see the module docstring), :func:`binomial_interval` by ``binomial_method`` (None: always bootstrap).
    Same seed, same Estimate."""
    name = _check_estimator(estimator)
    lam = _check_lambda(name, hyper)
    alpha = _check_alpha(alpha)
    n_bootstrap = _check_n_bootstrap(n_bootstrap)
    if binomial_method is not None and binomial_method not in INTERVALS[1:]:
        raise ValueError(f"unknown `binomial_method` {binomial_method!r}; choose 'clopper-pearson', 'wilson' "
                         "or None (always bootstrap)")
    rows = _prepare(name, reward, action, pscore, action_dist, position, estimated_rewards_by_reg_model)
    inverse, n_cases = _case_index(cases, rows.n)
    rng = _rng(seed)
    if resamples is not None:
        resamples = _check_resamples(resamples, n_bootstrap, n_cases)
    u, v = _terms(name, rows, lam)
    value = float(_combine(u.sum(axis=0), v.sum(axis=0)))
    diag = _diagnostics(rows)
    warnings = _warnings(name, diag, rows)

    interval = "bootstrap"
    exact = _exact_interval(name, rows, inverse, n_cases, alpha, binomial_method)
    if exact is not None:
        interval, (low, high) = binomial_method, exact
    else:
        k = u.shape[1]
        sums = _resampled_sums(_case_sums(np.hstack([u, v]), inverse, n_cases), n_bootstrap, rng, resamples)
        low, high, dropped = _percentile_interval(_combine(sums[:, :k], sums[:, k:]), alpha)
        if dropped:
            warnings.append(f"{dropped} of {n_bootstrap} bootstrap resamples had a zero denominator and were "
                            "dropped: the interval is unreliable")
    return Estimate(estimator=name, value=value, low=low, high=high, n_rounds=rows.n, n_cases=n_cases,
                    diagnostics=diag, warnings=tuple(warnings), interval=interval, alpha=alpha)


def compare(estimator: str, *, action_dist: Any, baseline_dist: Any, reward: Any = None, action: Any = None,
            pscore: Any = None, position: Any = None, estimated_rewards_by_reg_model: Any = None,
            cases: Any = None, n_bootstrap: int = 2000, alpha: float = 0.05, seed: Seed = 0,
            resamples: Any = None, **hyper: Any) -> Comparison:
    """``V(action_dist) - V(baseline_dist)`` by ``estimator`` on the same rows, with a paired percentile
    bootstrap interval over ``cases`` (both policies evaluated on the same resamples, drawn from ``seed`` or
    given as ``resamples``, see :func:`evaluate`) and the two-sided bootstrap p-value of the module
    docstring. ``baseline_dist`` has the shape of ``action_dist``; the reward model is shared (it does not
    depend on the policy)."""
    name = _check_estimator(estimator)
    lam = _check_lambda(name, hyper)
    alpha = _check_alpha(alpha)
    n_bootstrap = _check_n_bootstrap(n_bootstrap)
    if np.shape(baseline_dist) != np.shape(action_dist):
        raise ValueError(f"`baseline_dist` must have the shape of `action_dist` {np.shape(action_dist)}; got "
                         f"{np.shape(baseline_dist)}")
    rows = _prepare(name, reward, action, pscore, action_dist, position, estimated_rewards_by_reg_model)
    base = _prepare(name, reward, action, pscore, baseline_dist, position, estimated_rewards_by_reg_model,
                    dist_name="baseline_dist")
    inverse, n_cases = _case_index(cases, rows.n)
    rng = _rng(seed)
    if resamples is not None:
        resamples = _check_resamples(resamples, n_bootstrap, n_cases)
    u, v = _terms(name, rows, lam)
    bu, bv = _terms(name, base, lam)
    value = float(_combine(u.sum(axis=0), v.sum(axis=0)))
    baseline_value = float(_combine(bu.sum(axis=0), bv.sum(axis=0)))
    k = u.shape[1]
    sums = _resampled_sums(_case_sums(np.hstack([u, v, bu, bv]), inverse, n_cases), n_bootstrap, rng, resamples)
    mine = _combine(sums[:, :k], sums[:, k:2 * k])
    theirs = _combine(sums[:, 2 * k:3 * k], sums[:, 3 * k:])
    diffs = mine - theirs
    low, high, dropped = _percentile_interval(diffs, alpha)
    finite = diffs[np.isfinite(diffs)]
    tail = min(int((finite <= 0).sum()), int((finite >= 0).sum()))
    p_value = min(1.0, 2.0 * (tail + 1) / (finite.size + 1)) if finite.size else math.nan
    warnings = [f"policy: {w}" for w in _warnings(name, _diagnostics(rows), rows)]
    warnings += [f"baseline: {w}" for w in _warnings(name, _diagnostics(base), base)]
    interval = "bootstrap"
    # a side whose resampled estimates never vary (e.g. no click among its matched rows) makes the paired
    # bootstrap ignore its uncertainty: combine the two sides' intervals at alpha / 2 each instead
    sides = []
    for r, boot in ((rows, mine), (base, theirs)):
        ok = boot[np.isfinite(boot)]
        ex = _exact_interval(name, r, inverse, n_cases, alpha / 2, "clopper-pearson")
        flat = ok.size > 0 and float(np.ptp(ok)) == 0.0
        sides.append((ex, flat, _percentile_interval(boot, alpha / 2)[:2]))
    if any(ex is not None and flat for ex, flat, _ in sides):
        (lo_a, hi_a), (lo_b, hi_b) = [ex if ex is not None else pct for ex, _, pct in sides]
        low, high, p_value, interval = lo_a - hi_b, hi_a - lo_b, math.nan, "combined"
        warnings.append("the paired bootstrap is degenerate (a policy's estimate never varies across resamples, "
                        "e.g. no reward among its matched rows): the interval combines the two exact intervals "
                        "at alpha/2 each (conservative), and there is no p-value")
    if dropped:
        warnings.append(f"{dropped} of {n_bootstrap} bootstrap resamples had a zero denominator and were "
                        "dropped: the interval is unreliable")
    return Comparison(estimator=name, difference=value - baseline_value, low=low, high=high, p_value=p_value,
                      value=value, baseline_value=baseline_value, n_rounds=rows.n, n_cases=n_cases,
                      warnings=tuple(warnings), alpha=alpha, interval=interval)


# --------------------------------------------------------------------------------------------- policies


def action_dist_from(policy: Callable[[np.ndarray], Any], context: Any, *, n_actions: int | None = None) -> np.ndarray:
    """The evaluation policy's probabilities ``policy(context)`` as a validated float array of shape
    (n, n_actions) or (n, n_actions, len_list). A policy that returns one integer action per row is
    deterministic and is one-hot encoded, which needs ``n_actions``."""
    context = np.asarray(context)
    n = context.shape[0]
    out = np.asarray(policy(context))
    if out.ndim == 1:
        if not np.issubdtype(out.dtype, np.integer):
            raise ValueError("a policy returning a 1-D array must return integer actions; return "
                             "probabilities of shape (n, n_actions) otherwise")
        if n_actions is None:
            raise ValueError("the policy returns actions, not probabilities: pass `n_actions` to one-hot them")
        actions = _int_1d(out, "policy(context)", n, n_actions, "n_actions")
        out = np.zeros((n, n_actions))
        out[np.arange(n), actions] = 1.0
    if out.shape[0] != n:
        raise ValueError(f"policy(context) returned {out.shape[0]} rows for {n} contexts: return one row per "
                         "context")
    return _check_action_dist(out, "policy(context)")


# ------------------------------------------------------------------------------------------ reward model


def _context_features(context: Any, n: int) -> np.ndarray:
    """Context as model features: integer columns one-hot encoded, other columns as floats."""
    c = np.asarray(context)
    if c.ndim == 1:
        c = c[:, None]
    if c.ndim != 2 or c.shape[0] != n:
        raise ValueError(f"`context` must have shape (n_rounds,) or (n_rounds, n_features) with n_rounds = {n}; "
                         f"got shape {c.shape}")
    if np.issubdtype(c.dtype, np.integer):
        blocks = []
        for j in range(c.shape[1]):
            _, codes = np.unique(c[:, j], return_inverse=True)
            codes = codes.reshape(n)
            block = np.zeros((n, int(codes.max()) + 1 if n else 0))
            block[np.arange(n), codes] = 1.0
            blocks.append(block)
        return np.hstack(blocks)
    x = c.astype(np.float64)
    if not np.isfinite(x).all():
        raise ValueError("`context` has NaN or infinite values: impute them before fitting")
    return x


def _predict(model: Any, x: np.ndarray, binary: bool) -> np.ndarray:
    if binary and hasattr(model, "predict_proba"):
        classes = list(model.classes_)
        return model.predict_proba(x)[:, classes.index(1)]
    return np.asarray(model.predict(x), dtype=np.float64)


def fit_reward_model(context: Any, action: Any, reward: Any, *, n_actions: int, position: Any = None,
                     len_list: int | None = None, n_folds: int = 3, model: Any = "auto", cases: Any = None,
                     seed: Seed = 0) -> np.ndarray:
    """Cross-fitted reward model q(x_i, a[, slot]) for every row, action (and slot).

    Cases (``cases``, None: every row its own) are shuffled by ``seed`` and dealt into ``n_folds`` folds;
    each row's predictions come from a model fitted on the other folds. ``model="auto"`` is scikit-learn's
    ``LogisticRegression`` (probability of reward 1) when every reward is 0 or 1 and ``Ridge`` otherwise;
    any scikit-learn estimator may be passed instead (cloned per fold, ``random_state`` set from ``seed``
    when it is None; ``predict_proba`` of class 1 is used for binary rewards when it exists). A fold whose
    training rewards are all equal predicts that constant. Features are described in the module docstring.

    Returns shape (n, n_actions), or (n, n_actions, len_list) when ``position`` or ``len_list`` is given
    (``len_list`` defaults to ``position.max() + 1``; without ``position`` every slot gets the same
    prediction). Deterministic for a given seed."""
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression, Ridge
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    r = _float_1d(reward, "reward", None)
    n = r.shape[0]
    if isinstance(n_actions, bool) or not isinstance(n_actions, (int, np.integer)) or n_actions < 1:
        raise ValueError(f"`n_actions` must be a positive int; got {n_actions!r}")
    a = _int_1d(action, "action", n, n_actions, "n_actions")
    x = _context_features(context, n)
    if position is not None:
        pos = _int_1d(position, "position", n, None, "")
        slots = int(pos.max()) + 1 if len_list is None else len_list
        if n and pos.max() >= slots:
            raise ValueError(f"`position` has values up to {pos.max()} but `len_list` is {slots}: pass "
                             "len_list > max(position)")
    else:
        pos, slots = None, 1 if len_list is None else len_list
    if isinstance(slots, bool) or not isinstance(slots, (int, np.integer)) or slots < 1:
        raise ValueError(f"`len_list` must be a positive int; got {len_list!r}")
    inverse, n_cases = _case_index(cases, n)
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or not 2 <= n_folds <= n_cases:
        raise ValueError(f"`n_folds` must be an int in [2, n_cases = {n_cases}]; got {n_folds!r}")
    binary = bool(np.all((r == 0) | (r == 1)))
    if isinstance(model, str):
        if model != "auto":
            raise ValueError(f"`model` must be 'auto' or a scikit-learn estimator; got {model!r}")
        base = LogisticRegression(max_iter=1000) if binary else Ridge(alpha=1.0)
    else:
        base = model
    rng = _rng(seed)
    fold = (rng.permutation(n_cases) % n_folds)[inverse]
    model_seed = int(rng.integers(2**31 - 1))

    d = x.shape[1]
    n_pos = slots if pos is not None else 0
    width = d + n_actions + n_pos

    def features(idx: np.ndarray, act: np.ndarray | int, slot: np.ndarray | int | None) -> np.ndarray:
        out = np.zeros((idx.size, width))
        out[:, :d] = x[idx]
        out[np.arange(idx.size), d + act] = 1.0
        if slot is not None:
            out[np.arange(idx.size), d + n_actions + slot] = 1.0
        return out

    q = np.empty((n, n_actions, slots))
    # one BLAS thread: the fits are the same bits on every machine, and the per-fold products are too small to
    # gain from threads (LogisticRegression on 33,000 x 25 features: 0.15 s with one thread, 1.2-2.7 s with two
    # on a busy 2-core machine, where an idle thread spins while the other core is taken)
    with threadpool_limits(limits=1, user_api="blas"):
        for f in range(n_folds):
            test = np.flatnonzero(fold == f)
            train = np.flatnonzero(fold != f)
            y = r[train]
            if np.all(y == y[0]):
                q[test] = y[0]
                continue
            est = clone(base)
            params = est.get_params()
            if "random_state" in params and params["random_state"] is None:
                est.set_params(random_state=model_seed)
            est.fit(features(train, a[train], None if pos is None else pos[train]), y)
            for act in range(n_actions):
                if pos is None:
                    q[test, act, :] = _predict(est, features(test, act, None), binary)[:, None]
                else:
                    for slot in range(slots):
                        q[test, act, slot] = _predict(est, features(test, act, slot), binary)
    return q if (position is not None or len_list is not None) else q[:, :, 0]


# ------------------------------------------------------------------------------ obp-compatible classes


_OBP_IGNORED = frozenset({"estimated_pscore", "estimated_importance_weights", "context", "action_embed", "pi_b",
                          "p_e_a"})


class _ObpEstimator:
    """Shared obp-style front end: arrays in, :func:`estimate_policy_value` / :func:`evaluate` out.

    Arrays that obp's ``OffPolicyEvaluation`` passes to every estimator but that these estimators do not
    use (``estimated_pscore``, ``estimated_importance_weights``, ``context``, ``action_embed``, ``pi_b``,
    ``p_e_a``) are accepted and ignored; any other keyword is an error. Subclasses are frozen dataclasses
    whose fields are obp's: ``lambda_`` (where there is one), then ``estimator_name``."""

    def _name(self) -> str:
        raise NotImplementedError

    def _hyper(self) -> dict[str, float]:
        return {}

    def __post_init__(self) -> None:
        _check_lambda(self._name(), self._hyper())

    @staticmethod
    def _check_extra(extra: dict[str, Any]) -> None:
        unknown = set(extra) - _OBP_IGNORED
        if unknown:
            raise TypeError(f"unexpected keyword argument(s) {sorted(unknown)}")

    def estimate_policy_value(self, *, reward: Any = None, action: Any = None, pscore: Any = None,
                              action_dist: Any, position: Any = None, estimated_rewards_by_reg_model: Any = None,
                              **extra: Any) -> float:
        """The estimate of :func:`estimate_policy_value`."""
        self._check_extra(extra)
        return estimate_policy_value(self._name(), reward=reward, action=action, pscore=pscore,
                                     action_dist=action_dist, position=position,
                                     estimated_rewards_by_reg_model=estimated_rewards_by_reg_model, **self._hyper())

    def estimate_interval(self, *, reward: Any = None, action: Any = None, pscore: Any = None, action_dist: Any,
                          position: Any = None, estimated_rewards_by_reg_model: Any = None, alpha: float = 0.05,
                          n_bootstrap_samples: int = 10000, random_state: int | None = None,
                          **extra: Any) -> dict[str, float]:
        """obp's dictionary ``{"mean", "95.0% CI (lower)", "95.0% CI (upper)"}`` from :func:`evaluate`
        (``"mean"`` is the point estimate; ``random_state=None`` means seed 0)."""
        self._check_extra(extra)
        est = evaluate(self._name(), reward=reward, action=action, pscore=pscore, action_dist=action_dist,
                       position=position, estimated_rewards_by_reg_model=estimated_rewards_by_reg_model,
                       n_bootstrap=n_bootstrap_samples, alpha=alpha,
                       seed=0 if random_state is None else random_state, **self._hyper())
        level = f"{100 * (1.0 - alpha)}% CI"
        return {"mean": est.value, f"{level} (lower)": est.low, f"{level} (upper)": est.high}


@dataclass(frozen=True)
class ReplayMethod(_ObpEstimator):
    """obp's ``ReplayMethod``: estimator ``"replay"``."""

    estimator_name: str = "rm"

    def _name(self) -> str:
        return "replay"


@dataclass(frozen=True)
class InverseProbabilityWeighting(_ObpEstimator):
    """obp's ``InverseProbabilityWeighting`` (without weight clipping): estimator ``"ipw"``."""

    estimator_name: str = "ipw"

    def _name(self) -> str:
        return "ipw"


@dataclass(frozen=True)
class SelfNormalizedInverseProbabilityWeighting(_ObpEstimator):
    """obp's ``SelfNormalizedInverseProbabilityWeighting``: estimator ``"snipw"``."""

    estimator_name: str = "snipw"

    def _name(self) -> str:
        return "snipw"


@dataclass(frozen=True)
class DirectMethod(_ObpEstimator):
    """obp's ``DirectMethod``: estimator ``"dm"``."""

    estimator_name: str = "dm"

    def _name(self) -> str:
        return "dm"


@dataclass(frozen=True)
class DoublyRobust(_ObpEstimator):
    """obp's ``DoublyRobust`` (without weight clipping): estimator ``"dr"``."""

    estimator_name: str = "dr"

    def _name(self) -> str:
        return "dr"


@dataclass(frozen=True)
class SelfNormalizedDoublyRobust(_ObpEstimator):
    """obp's ``SelfNormalizedDoublyRobust``: estimator ``"sndr"``."""

    estimator_name: str = "sndr"

    def _name(self) -> str:
        return "sndr"


@dataclass(frozen=True)
class SwitchDoublyRobust(_ObpEstimator):
    """obp's ``SwitchDoublyRobust``: estimator ``"switch-dr"``."""

    lambda_: float = DEFAULT_LAMBDA["switch-dr"]
    estimator_name: str = "switch-dr"

    def _name(self) -> str:
        return "switch-dr"

    def _hyper(self) -> dict[str, float]:
        return {"lambda_": self.lambda_}


@dataclass(frozen=True)
class DoublyRobustWithShrinkage(_ObpEstimator):
    """obp's ``DoublyRobustWithShrinkage``: estimator ``"dr-os"`` (default ``lambda_`` 10, obp's 0.0)."""

    lambda_: float = DEFAULT_LAMBDA["dr-os"]
    estimator_name: str = "dr-os"

    def _name(self) -> str:
        return "dr-os"

    def _hyper(self) -> dict[str, float]:
        return {"lambda_": self.lambda_}
