"""Tournament statistics: normalised scores, IQM, stratified bootstrap CIs, probability of improvement.

A tournament plays every agent on every scenario over the same seeds.  One agent's results form a
2-D array ``scores[s, i]`` of shape ``(n_scenarios, n_seeds)``: the total episode reward on scenario
``s`` with seed ``i``.  Seeds are *common random numbers*: seed ``i`` gives every agent the same
population, so ``x[s, i]`` and ``y[s, i]`` of two agents are a *paired* comparison.

The methods follow the rliable line of work:

    R. Agarwal, M. Schwarzer, P. S. Castro, A. Courville, M. G. Bellemare.
    "Deep Reinforcement Learning at the Edge of the Statistical Precipice", NeurIPS 2021.

* scores are normalised per scenario (:func:`normalise`: 0 = hold, 1 = the static oracle) so that
  scenarios are comparable;
* the aggregate is the mean or the interquartile mean (:func:`iqm`), robust to outlying runs;
* uncertainty is a percentile interval from a *stratified* bootstrap (:func:`stratified_bootstrap_ci`):
  seeds are resampled with replacement independently within each scenario (the stratum), so
  every resample keeps the tournament's design;
* pairwise comparisons use rliable's probability of improvement
  (:func:`probability_of_improvement` with ``paired=False``: per-scenario Mann-Whitney over runs,
  averaged over scenarios) and, as a separate statistic, the paired per-seed win share
  (``paired=True``, and :func:`win_rate`);
* :func:`rank_with_ties` and :func:`summarise` build a leaderboard that marks rows whose interval
  overlaps their group leader's as tied.

Conventions common to all functions:

* NaN marks a missing cell (a run that did not finish).  It is dropped, never imputed; each function
  documents where.  A scenario left without data is dropped; no data at all raises ``ValueError``.
* Nothing here touches global random state: every resampling function takes an explicit
  ``rng: np.random.Generator`` (or a ``seed`` from which it builds one with
  ``np.random.default_rng(seed)``), so results are a pure function of the inputs.
* NumPy only at run time.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

__all__ = [
    "normalise",
    "iqm",
    "stratified_bootstrap_ci",
    "probability_of_improvement",
    "probability_of_improvement_ci",
    "win_rate",
    "rank_with_ties",
    "summarise",
]


# --------------------------------------------------------------------------------------------------
# normalisation and point statistics
# --------------------------------------------------------------------------------------------------

def _align(ref, ndim: int, axis: int) -> np.ndarray:
    """A per-scenario reference as an array broadcasting against scores of ``ndim`` dimensions."""
    ref = np.asarray(ref, dtype=np.float64)
    if ref.ndim != 1 or ndim <= 1:
        return ref
    axis = axis % ndim
    shape = [1] * ndim
    shape[axis] = ref.shape[0]
    return ref.reshape(shape)


def normalise(scores, zero_score, one_score, axis: int = 0) -> np.ndarray:
    """Per-scenario normalised scores ``(score - zero) / (one - zero)``.

    The leaderboards' rule: on each scenario ``0`` is the mean score of ``hold`` (the defaults) and
    ``1`` the mean score of the static oracle (the best fixed config), both computed by the caller and
    passed as ``zero_score`` and ``one_score``.  Scores above 1 beat every fixed config.

    No fallback: where ``one - zero`` is not positive (or not finite) the scenario has no unit and its
    normalised scores are NaN; the caller says so (:mod:`arena_env.evaluation.leaderboard` shows raw
    scores with a note).

    Broadcasting: ``zero_score`` and ``one_score`` are scalars or per-scenario arrays.  A 1-D
    reference is aligned with axis ``axis`` of ``scores`` (default 0, the scenario axis of the
    ``(n_scenarios, n_seeds)`` layout); references of any other shape broadcast by NumPy's rules.
    NaN scores stay NaN.  Returns a new float64 array.
    """
    x = np.asarray(scores, dtype=np.float64)
    z = _align(zero_score, x.ndim, axis)
    o = _align(one_score, x.ndim, axis)
    denom = o - z
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isfinite(denom) & (denom > 0), (x - z) / np.where(denom > 0, denom, 1.0), np.nan)


def iqm(x) -> float:
    """Interquartile mean of a sample: the mean of its middle 50 %.

    Defined exactly as ``scipy.stats.trim_mean(x, 0.25)`` (which is also what rliable uses): sort the
    ``n`` values, drop ``k = floor(n / 4)`` of them from each end, and average the ``n - 2k``
    remaining ones.  SciPy trims *whole* observations (no fractional weighting at the cut points),
    and so does this function, so the two agree for every ``n >= 1``.  Consequences for small ``n``:
    for ``n <= 3`` nothing is trimmed and the IQM is the plain mean; for ``n = 4..7`` one value is
    dropped from each end; for ``n = 8`` the mean of the 3rd to 6th smallest values.

    ``x`` is flattened.  An empty sample gives NaN (as SciPy does); NaN values propagate (the result
    is NaN), so drop missing cells first -- :func:`stratified_bootstrap_ci` does.
    """
    a = np.asarray(x, dtype=np.float64).ravel()
    n = a.size
    if n == 0:
        return float("nan")
    if np.isnan(a).any():
        return float("nan")
    k = n // 4
    if k == 0:
        return float(a.mean())
    part = np.partition(a, (k, n - k - 1))
    return float(part[k:n - k].mean())


# --------------------------------------------------------------------------------------------------
# stratified bootstrap
# --------------------------------------------------------------------------------------------------

def _as_2d(scores) -> np.ndarray:
    a = np.asarray(scores, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"scores must be 1-D or 2-D (n_scenarios, n_seeds), got shape {a.shape}")
    return a


def _strata(scores) -> list[np.ndarray]:
    """The non-NaN values of each scenario; scenarios without any are dropped."""
    a = _as_2d(scores)
    strata = [row[~np.isnan(row)] for row in a]
    strata = [s for s in strata if s.size > 0]
    if not strata:
        raise ValueError("no finite scores: every cell is NaN or the array is empty")
    return strata


def _percentile_interval(boot: np.ndarray, alpha: float) -> tuple[float, float]:
    lo, hi = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def _check(n_boot: int, alpha: float, rng) -> None:
    if int(n_boot) < 1:
        raise ValueError("n_boot must be >= 1")
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must be in (0, 1)")
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator (no global random state)")


def stratified_bootstrap_ci(scores, statistic: Callable[[np.ndarray], float] = np.mean, n_boot: int = 2000,
                            alpha: float = 0.05, *, rng: np.random.Generator) -> tuple[float, float, float]:
    """Point estimate and ``1 - alpha`` percentile interval of ``statistic`` by stratified bootstrap.

    ``scores`` is one agent's ``(n_scenarios, n_seeds)`` array (a 1-D array is one scenario).
    Missing cells (NaN) are dropped *per stratum*: scenario ``s`` keeps its ``n_s`` finite values,
    and a scenario with none is dropped.

    Each of the ``n_boot`` bootstrap replicates draws, independently for every scenario ``s``,
    ``n_s`` seeds *with replacement from that scenario's own values only* (the stratum), concatenates
    the resampled scenarios in scenario order into one flat sample of ``sum(n_s)`` values, and applies
    ``statistic`` to it (e.g. ``np.mean`` or :func:`iqm`).  The point estimate is ``statistic`` of
    the flattened original (finite) values.  The interval is the percentile interval:
    the ``alpha/2`` and ``1 - alpha/2`` quantiles (``np.quantile``, linear interpolation) of the
    replicates.  A constant sample gives a zero-width interval.

    Returns ``(estimate, lo, hi)`` as floats.  Deterministic given the state of ``rng``.
    """
    _check(n_boot, alpha, rng)
    strata = _strata(scores)
    estimate = float(statistic(np.concatenate(strata)))
    draws = [s[rng.integers(0, s.size, size=(int(n_boot), s.size))] for s in strata]
    resamples = np.concatenate(draws, axis=1)  # (n_boot, sum n_s), scenario blocks in order
    boot = np.fromiter((statistic(row) for row in resamples), dtype=np.float64, count=int(n_boot))
    lo, hi = _percentile_interval(boot, alpha)
    return estimate, lo, hi


# --------------------------------------------------------------------------------------------------
# pairwise comparisons
# --------------------------------------------------------------------------------------------------

def _beats(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """1 where x > y, 1/2 where x == y, 0 where x < y (broadcasting)."""
    return (x > y).astype(np.float64) + 0.5 * (x == y)


def _paired_strata(x, y) -> list[tuple[np.ndarray, np.ndarray]]:
    a, b = _as_2d(x), _as_2d(y)
    if a.shape != b.shape:
        raise ValueError(f"paired comparison needs equal shapes, got {a.shape} and {b.shape}")
    out = []
    for ra, rb in zip(a, b):
        keep = ~(np.isnan(ra) | np.isnan(rb))
        if keep.any():
            out.append((ra[keep], rb[keep]))
    if not out:
        raise ValueError("no seed has finite scores for both agents")
    return out


def _unpaired_strata(x, y) -> list[tuple[np.ndarray, np.ndarray]]:
    a, b = _as_2d(x), _as_2d(y)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"x and y need the same number of scenarios, got {a.shape[0]} and {b.shape[0]}")
    out = []
    for ra, rb in zip(a, b):
        ra, rb = ra[~np.isnan(ra)], rb[~np.isnan(rb)]
        if ra.size and rb.size:
            out.append((ra, rb))
    if not out:
        raise ValueError("no scenario has finite scores for both agents")
    return out


def probability_of_improvement(x, y, paired: bool = True) -> float:
    """Probability of improvement ``P(X > Y)`` of agent X over agent Y, averaged over scenarios.

    ``x`` and ``y`` are ``(n_scenarios, n_seeds)`` arrays (1-D = one scenario).  Per scenario ``s``:

    * ``paired=True`` (default; needs equal shapes): seeds are common random numbers, so seed ``i``
      of X is compared with seed ``i`` of Y only::

          P_s = (1 / n_s) * sum_i [ 1(x[s,i] > y[s,i]) + 1/2 * 1(x[s,i] == y[s,i]) ]

      i.e. the share of seeds on which X beats Y, ties counting 1/2.  Seeds where either cell is NaN
      are dropped.
    * ``paired=False``: the rliable definition, all ``n * m`` pairs within the scenario (the
      Mann-Whitney U statistic of X over Y divided by ``n * m``)::

          P_s = (1 / (n m)) * sum_i sum_j [ 1(x[s,i] > y[s,j]) + 1/2 * 1(x[s,i] == y[s,j]) ]

      NaN cells are dropped per agent and scenario; X and Y may have different numbers of seeds.

    The result is the unweighted mean of ``P_s`` over scenarios with data (each scenario counts
    equally, whatever its number of seeds).  Because ties count 1/2,
    ``probability_of_improvement(x, y) == 1 - probability_of_improvement(y, x)``.
    """
    if paired:
        per = [_beats(a, b).mean() for a, b in _paired_strata(x, y)]
    else:
        per = [_beats(a[:, None], b[None, :]).mean() for a, b in _unpaired_strata(x, y)]
    return float(np.mean(per))


def probability_of_improvement_ci(x, y, n_boot: int = 2000, alpha: float = 0.05, *, rng: np.random.Generator,
                                  paired: bool = True) -> tuple[float, float, float]:
    """:func:`probability_of_improvement` with a stratified-bootstrap percentile interval.

    Returns ``(estimate, lo, hi)``.  The estimate is ``probability_of_improvement(x, y, paired)``.
    Each bootstrap replicate resamples seeds with replacement independently within each scenario
    (the stratum) and recomputes the scenario-averaged statistic:

    * ``paired=True``: *paired* resampling -- the same resampled seed indices are used for X and Y,
      so a resampled seed brings both agents' scores for that seed (seeds with a NaN in either agent
      are dropped first);
    * ``paired=False``: X's and Y's seeds are resampled independently (as in rliable).

    Implementation: a resample of ``n`` seeds is represented by its multinomial counts
    ``w ~ Multinomial(n, 1/n)``, which has exactly the distribution of the counts of ``n`` indices
    drawn with replacement; the per-scenario statistic is then ``w . d / n`` (paired, with
    ``d_i`` the win/tie/loss score of seed ``i``) or ``w_x . C . w_y / (n m)`` (unpaired, with
    ``C`` the ``n x m`` win/tie/loss matrix).  The interval is the ``alpha/2`` and
    ``1 - alpha/2`` quantiles of the replicates.  Deterministic given the state of ``rng``.
    """
    _check(n_boot, alpha, rng)
    B = int(n_boot)
    estimate = probability_of_improvement(x, y, paired=paired)
    total = np.zeros(B)
    if paired:
        strata = _paired_strata(x, y)
        for a, b in strata:
            n = a.size
            d = _beats(a, b)
            w = rng.multinomial(n, np.full(n, 1.0 / n), size=B)
            total += (w @ d) / n
    else:
        strata = _unpaired_strata(x, y)
        for a, b in strata:
            n, m = a.size, b.size
            c = _beats(a[:, None], b[None, :])
            wx = rng.multinomial(n, np.full(n, 1.0 / n), size=B)
            wy = rng.multinomial(m, np.full(m, 1.0 / m), size=B)
            total += np.einsum("bi,ij,bj->b", wx, c, wy) / (n * m)
    boot = total / len(strata)
    lo, hi = _percentile_interval(boot, alpha)
    return estimate, lo, hi


def win_rate(x, y) -> float:
    """Share of paired cells on which X beats Y, ties counting 1/2.

    ``x`` and ``y`` have equal shapes (any); cell ``x[k]`` is compared with ``y[k]`` only.  Cells where
    either value is NaN are dropped; the remaining cells are pooled (every cell weighs the same, unlike
    :func:`probability_of_improvement`, which weighs every *scenario* the same -- the two agree on a
    complete grid).  Raises ``ValueError`` when no cell is left.
    """
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"win_rate needs equal shapes, got {a.shape} and {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    if not keep.any():
        raise ValueError("no cell has finite scores for both agents")
    return float(_beats(a[keep], b[keep]).mean())


# --------------------------------------------------------------------------------------------------
# ranking
# --------------------------------------------------------------------------------------------------

def rank_with_ties(estimates: Sequence[float], lows: Sequence[float],
                   highs: Sequence[float]) -> tuple[np.ndarray, list[list[int]]]:
    """Rank rows by point estimate (best first) and group rows tied with their group's leader.

    Order: descending ``estimates``; equal estimates keep their input order (stable sort); NaN
    estimates go last.

    Tie rule: walking down the ranking, the first row of a group is its *leader*; the next row joins
    the group iff both it and the leader have an interval and the closed intervals overlap::

        lows[leader] <= highs[row]  and  lows[row] <= highs[leader]

    (touching endpoints count as overlap); otherwise it leads a new group.  Ties do not chain: a row
    is compared with its group's leader, never with the row above, so a group never holds two rows
    whose intervals are both known to differ from the leader's.  A row without an interval (a NaN
    bound: too little data) or without an estimate is never tied, and a group whose leader has no
    interval has no other row.

    Returns ``(order, groups)``: ``order`` is an int array of row indices, best first; ``groups`` is a
    list of lists of row indices, in rank order, partitioning ``order`` into consecutive runs (a row
    tied with nobody is a singleton group).
    """
    est = np.asarray(estimates, dtype=np.float64).ravel()
    lo = np.asarray(lows, dtype=np.float64).ravel()
    hi = np.asarray(highs, dtype=np.float64).ravel()
    if not (est.shape == lo.shape == hi.shape):
        raise ValueError("estimates, lows and highs must have the same length")
    key = np.where(np.isnan(est), np.inf, -est)
    order = np.argsort(key, kind="stable")

    def has_interval(r):
        return not (np.isnan(est[r]) or np.isnan(lo[r]) or np.isnan(hi[r]))

    groups: list[list[int]] = []
    for row in map(int, order):
        if groups:
            leader = groups[-1][0]
            if has_interval(row) and has_interval(leader) and lo[leader] <= hi[row] and lo[row] <= hi[leader]:
                groups[-1].append(row)
                continue
        groups.append([row])
    return order, groups


def summarise(scores_by_agent: Mapping[str, np.ndarray], n_boot: int = 2000, alpha: float = 0.05,
              seed: int = 0, min_per_stratum: int = 2) -> list[dict]:
    """Leaderboard rows, best first, ranked by IQM with stratified-bootstrap CIs.

    ``scores_by_agent`` maps an agent's name to its ``(n_scenarios, n_seeds)`` array of (normalised)
    scores; NaN cells are dropped as in :func:`stratified_bootstrap_ci`.  For every agent:

    * ``mean``, ``mean_lo``, ``mean_hi``: mean over all finite cells and its ``1 - alpha`` interval;
    * ``iqm``, ``iqm_lo``, ``iqm_hi``: :func:`iqm` over all finite cells and its interval;
    * ``n``: number of finite cells.

    An agent with fewer than ``min_per_stratum`` finite cells in one of its scenarios gets NaN
    intervals: a bootstrap over one value per stratum would claim zero uncertainty.

    Each interval comes from :func:`stratified_bootstrap_ci` with a fresh
    ``np.random.default_rng(seed)``: an agent's row therefore does not depend on which other agents
    are in the table or on the dict's order, the mean and IQM use the same resamples, and agents
    with the same array shape get the same resampled seed indices (common random numbers for the
    bootstrap, matching the paired seeds of the tournament).

    Rows are ordered and tied by :func:`rank_with_ties` on the IQM (the rliable recommendation) and
    its interval.  ``tie`` is True iff the row is tied with its group's leader; ``rank`` is
    1-based competition ranking by tie group: every row of a tie group gets the position of the
    group's first row (e.g. ranks 1, 2, 2, 4).
    """
    names = list(scores_by_agent)
    rows = []
    for name in names:
        a = _as_2d(scores_by_agent[name])
        m, m_lo, m_hi = stratified_bootstrap_ci(a, np.mean, n_boot, alpha, rng=np.random.default_rng(seed))
        q, q_lo, q_hi = stratified_bootstrap_ci(a, iqm, n_boot, alpha, rng=np.random.default_rng(seed))
        counts = np.count_nonzero(~np.isnan(a), axis=1)
        if np.any((counts > 0) & (counts < min_per_stratum)):
            m_lo = m_hi = q_lo = q_hi = float("nan")
        rows.append({"agent": name, "mean": m, "mean_lo": m_lo, "mean_hi": m_hi,
                     "iqm": q, "iqm_lo": q_lo, "iqm_hi": q_hi, "n": int(np.count_nonzero(~np.isnan(a)))})
    order, groups = rank_with_ties([r["iqm"] for r in rows], [r["iqm_lo"] for r in rows],
                                   [r["iqm_hi"] for r in rows])
    out = []
    pos = 0
    for group in groups:
        group_rank = pos + 1
        for j, row in enumerate(group):
            out.append({**rows[row], "tie": j > 0, "rank": group_rank})
            pos += 1
    return out
