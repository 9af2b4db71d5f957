"""Head-to-head ratings: pairwise win matrices, Bradley-Terry strengths with block-bootstrap CIs, OpenSkill.

In the head-to-head track several agents (2 to k) play one *match* together: one shared experiment on
one scenario with one seed.  Every agent in the match gets a numeric score, higher is better.  A match
is a :class:`Match` ``(stratum, block, agents, scores)``: ``stratum`` is the scenario name, ``block``
the seed.  All matches with the same ``(stratum, block)`` form one *block*; the bootstrap resamples
blocks, never single matches, because matches on the same seed share their random numbers.

Outcome of a pair within a match.  Agent ``a`` *beats* ``b`` iff ``score_a > score_b``; equal scores
are a tie worth 1/2 to each.  NaN marks a failed agent: it loses to every agent of the match whose
score is not NaN (including ``-inf``), and two NaN scores tie.

* :func:`pairwise` counts wins and meetings over every pair of agents of every match;
  ``wins / meetings`` is the pairwise win matrix shown to users (NaN where two agents never met).
* :func:`bradley_terry` fits the Bradley-Terry model ``P(i beats j) = s_i / (s_i + s_j)`` by the MM
  algorithm of

      D. R. Hunter. "MM algorithms for generalized Bradley-Terry models".
      The Annals of Statistics 32(1):384-406, 2004.

  and returns natural-log strengths ``log s_i``; :func:`win_probability` turns them into the fitted
  ``P(i beats j)``.
* :func:`bradley_terry_ci` adds percentile intervals from a stratified block bootstrap.
* :func:`openskill_ratings` rates the matches sequentially with the Plackett-Luce model of the
  ``openskill`` package (Weng and Lin, "A Bayesian approximation method for online ranking",
  JMLR 12, 2011); :func:`openskill_ratings_averaged` averages it over seeded random orders of the
  matches, so the result no longer depends on the order in which they are listed.

Regularisation (``prior``).  Before fitting, every ordered pair ``(i, j)`` of distinct agents that met
at least once gets ``prior`` virtual wins of ``i`` over ``j`` (and therefore ``j`` gets ``prior`` over
``i``): ``w'_ij = w_ij + prior`` and ``n'_ij = n_ij + 2 prior`` for every pair with ``n_ij > 0``;
pairs that never met stay at zero.  With ``prior > 0`` every strength is finite, also for an agent
that won (or lost) every game.  For two agents with ``w`` wins and ``l`` losses the log-strength
difference is exactly ``log((w + prior) / (l + prior))``.  With ``prior = 0`` the plain maximum
likelihood estimate is returned; it exists only if, within every connected group of agents, every
agent both beat (or tied) and lost to (or tied) someone along a chain of games -- Hunter's assumption,
i.e. the directed "beat or tied" graph is strongly connected within every component.  Otherwise
``ValueError`` is raised.

Agents that met nobody get NaN.  The comparison graph (agents linked when they met) may be
disconnected: strengths are then only identified *within* each connected component, and each
component is centred to mean log-strength 0 on its own.  Differences across components carry no
information (:func:`connected_components` tells the caller which agents are comparable).  When all
agents met, the result is centred to mean 0 over all agents.

Conventions common to all functions (as in :mod:`arena_env.evaluation.stats`):

* Nothing here touches global random state: :func:`bradley_terry_ci` takes an explicit
  ``rng: np.random.Generator`` or a ``seed`` for ``np.random.default_rng(seed)`` (default seed 0),
  so results are a pure function of the inputs.  Results do not depend on the order of the matches,
  except for :func:`openskill_ratings`, which is sequential by nature (hence
  :func:`openskill_ratings_averaged`).
* NumPy only at run time; :func:`openskill_ratings` additionally imports ``openskill`` when called.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Hashable, Iterable, Sequence

import numpy as np

__all__ = [
    "Match",
    "pairwise",
    "connected_components",
    "bradley_terry",
    "bradley_terry_ci",
    "win_probability",
    "openskill_ratings",
    "openskill_ratings_averaged",
]


# --------------------------------------------------------------------------------------------------
# matches and pairwise counts
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Match:
    """One head-to-head match: ``agents[k]`` scored ``scores[k]`` (higher is better, NaN = failed).

    ``stratum`` is the scenario name, ``block`` the seed; matches sharing ``(stratum, block)`` are
    resampled together by :func:`bradley_terry_ci`.  ``agents`` are at least two distinct labels and
    ``scores`` has one float per agent; both are stored as tuples.
    """

    stratum: str
    block: int
    agents: tuple[Hashable, ...]
    scores: tuple[float, ...]

    def __post_init__(self) -> None:
        agents = tuple(self.agents)
        scores = tuple(float(x) for x in self.scores)
        if len(agents) != len(scores):
            raise ValueError(f"a match needs one score per agent, got {len(agents)} agents and "
                             f"{len(scores)} scores")
        if len(agents) < 2:
            raise ValueError(f"a match needs at least 2 agents, got {len(agents)}")
        if len(set(agents)) != len(agents):
            raise ValueError(f"agents of a match must be distinct, got {agents!r}")
        object.__setattr__(self, "block", operator.index(self.block))
        object.__setattr__(self, "agents", agents)
        object.__setattr__(self, "scores", scores)


def _as_matches(matches: Iterable) -> list[Match]:
    """``Match`` objects, or 4-tuples ``(stratum, block, agents, scores)`` converted to them."""
    return [m if isinstance(m, Match) else Match(*m) for m in matches]


def _index(agents: Sequence[Hashable]) -> dict:
    labels = list(agents)
    index = {a: k for k, a in enumerate(labels)}
    if len(index) != len(labels):
        raise ValueError("agent labels must be distinct")
    return index


def _beats(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """1 where x beats y, 1/2 on a tie, 0 where x loses (broadcasting); NaN loses to any non-NaN."""
    xn, yn = np.isnan(x), np.isnan(y)
    win = (x > y) | (~xn & yn)
    tie = (x == y) | (xn & yn)
    return win.astype(np.float64) + 0.5 * tie


def _block_pairwise(matches: list[Match], index: dict) -> tuple[list[tuple[str, int]], np.ndarray, np.ndarray]:
    """Per-block ``(keys, wins, meetings)``: keys sorted by ``(stratum, block)``, arrays ``(n_blocks, N, N)``."""
    n = len(index)
    unknown = sorted({repr(a) for m in matches for a in m.agents if a not in index})
    if unknown:
        raise ValueError(f"matches contain agents not in `agents`: {', '.join(unknown)}")
    keys = sorted({(m.stratum, m.block) for m in matches})
    key_index = {k: b for b, k in enumerate(keys)}
    size = len(keys) * n * n
    wins = np.zeros(size)
    meets = np.zeros(size)
    by_size: dict[int, list[Match]] = {}
    for m in matches:
        by_size.setdefault(len(m.agents), []).append(m)
    for k, group in by_size.items():
        blk = np.array([key_index[(m.stratum, m.block)] for m in group], dtype=np.int64)
        idx = np.array([[index[a] for a in m.agents] for m in group], dtype=np.int64)  # (M, k)
        sc = np.array([m.scores for m in group], dtype=np.float64)  # (M, k)
        off = ~np.eye(k, dtype=bool)
        w = _beats(sc[:, :, None], sc[:, None, :])[:, off]  # (M, k(k-1)) ordered pairs i != j
        flat = ((blk[:, None, None] * n + idx[:, :, None]) * n + idx[:, None, :])[:, off]
        wins += np.bincount(flat.ravel(), weights=w.ravel(), minlength=size)
        meets += np.bincount(flat.ravel(), minlength=size)
    shape = (len(keys), n, n)
    return keys, wins.reshape(shape), meets.reshape(shape)


def pairwise(matches: Iterable, agents: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise ``(wins, meetings)`` over all matches, as ``N x N`` float arrays in the order of ``agents``.

    For every match and every pair of distinct agents ``a, b`` in it: ``meetings[a, b]`` and
    ``meetings[b, a]`` grow by 1; ``wins[a, b]`` grows by 1 if ``a`` beats ``b``, by 1/2 on a tie and
    by 0 if ``a`` loses (NaN scores: see the module docstring).  Hence ``wins + wins.T == meetings``
    and the diagonals are 0.  The pairwise win matrix is ``wins / meetings`` (NaN where
    ``meetings == 0``).

    ``matches`` holds :class:`Match` objects or ``(stratum, block, agents, scores)`` tuples.
    ``ValueError`` if a match names an agent not in ``agents`` or ``agents`` has duplicates.
    """
    index = _index(agents)
    _, w, n = _block_pairwise(_as_matches(matches), index)
    return w.sum(axis=0), n.sum(axis=0)


# --------------------------------------------------------------------------------------------------
# Bradley-Terry
# --------------------------------------------------------------------------------------------------

def _closure(adj: np.ndarray) -> np.ndarray:
    """Reflexive-transitive closure of boolean adjacency matrices ``(..., N, N)``."""
    n = adj.shape[-1]
    reach = adj | np.eye(n, dtype=bool)
    for _ in range(max(1, math.ceil(math.log2(max(n, 2))))):
        reach = np.matmul(reach.astype(np.float64), reach.astype(np.float64)) > 0.0
    return reach


def connected_components(meetings) -> np.ndarray:
    """Component label of every agent in the comparison graph (agents linked when ``meetings > 0``).

    Returns an int array of length ``N``: agents with equal labels are connected by a chain of
    meetings, so their Bradley-Terry strengths are comparable.  Labels are ``0, 1, ...`` in order of
    each component's first agent; an agent that met nobody is a component of its own.
    """
    n = _square(meetings, "meetings")
    reach = _closure((n > 0) | (n.T > 0))
    first = np.argmax(reach, axis=1)  # smallest index in each agent's component
    _, labels = np.unique(first, return_inverse=True)
    return labels.astype(np.int64)


def _square(a, name: str) -> np.ndarray:
    x = np.asarray(a, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != x.shape[1]:
        raise ValueError(f"{name} must be a square N x N array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} must be finite")
    if (x < 0).any():
        raise ValueError(f"{name} must be non-negative")
    if np.diagonal(x).any():
        raise ValueError(f"{name} must have a zero diagonal (an agent does not play itself)")
    return x


def _mm(wins: np.ndarray, meets: np.ndarray, tol: float, max_iter: int) -> np.ndarray:
    """Batched MM fit.  ``wins``, ``meets``: ``(B, N, N)``, already regularised, with
    ``meets == wins + wins^T``; every agent that met someone has a positive win total and the
    directed win graph is strongly connected within each component.  Returns ``(B, N)`` log-strengths,
    each component centred to mean 0, NaN for agents that met nobody.
    """
    n_b, n = wins.shape[:2]
    met = meets.sum(axis=2) > 0  # (B, N)
    comp = _closure(meets > 0).astype(np.float64)  # (B, N, N) same-component indicator
    comp_size = comp.sum(axis=2)
    w_tot = wins.sum(axis=2)
    log_w = np.zeros_like(w_tot)
    np.log(w_tot, out=log_w, where=met)
    theta = np.zeros((n_b, n))
    todo = np.arange(n_b)
    for _ in range(int(max_iter)):
        th = theta[todo]
        s = np.exp(th)
        denom = (meets[todo] / (s[:, :, None] + s[:, None, :])).sum(axis=2)
        new = np.zeros_like(th)
        np.subtract(log_w[todo], np.log(denom, where=met[todo], out=np.zeros_like(denom)), out=new,
                    where=met[todo])
        new -= np.einsum("bij,bj->bi", comp[todo], new) / comp_size[todo]
        done = np.abs(new - th).max(axis=1) < tol
        theta[todo] = new
        todo = todo[~done]
        if todo.size == 0:
            break
    else:
        raise RuntimeError(f"Bradley-Terry MM did not converge to tol={tol} in max_iter={max_iter} "
                           f"iterations ({todo.size} of {n_b} fits left); raise max_iter or prior")
    theta[~met] = np.nan
    return theta


def _regularise(wins: np.ndarray, meets: np.ndarray, prior: float) -> tuple[np.ndarray, np.ndarray]:
    met = (meets > 0).astype(np.float64)
    return wins + prior * met, meets + 2.0 * prior * met


def _check_fit(prior: float, tol: float, max_iter: int) -> None:
    if not (math.isfinite(prior) and prior >= 0.0):
        raise ValueError(f"prior must be finite and >= 0, got {prior}")
    if not tol > 0.0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if int(max_iter) < 1:
        raise ValueError("max_iter must be >= 1")


def bradley_terry(wins, meetings=None, prior: float = 0.5, tol: float = 1e-10,
                  max_iter: int = 10000) -> np.ndarray:
    """Bradley-Terry natural-log strengths ``log s_i`` from an ``N x N`` win matrix.

    ``wins[i, j]`` is how often ``i`` beat ``j`` (ties counted 1/2 to each, as :func:`pairwise`
    does).  ``meetings`` defaults to ``wins + wins.T``; if given it must equal that (within 1e-9
    relative), otherwise ``ValueError``.

    Model ``P(i beats j) = s_i / (s_i + s_j)``, fitted by maximum likelihood with Hunter's (2004) MM
    iteration on the regularised counts (``prior`` virtual wins each way for every pair that met, see
    the module docstring)::

        s_i <- W_i / sum_{j != i} n_ij / (s_i + s_j),    W_i = sum_j w_ij,

    updating all agents at once and re-centring ``log s`` to mean 0 within each connected component,
    until no log-strength moves by ``tol`` or more (``RuntimeError`` after ``max_iter`` iterations).
    MM converges linearly: tens of iterations when most agents met each other, thousands for long
    chain-like comparison graphs with lopsided results (e.g. ~5500 for a 10-agent chain with 50:1
    records per link at ``prior = 0.5``).

    Returns a float array of length ``N``: log-strengths, each connected component of the comparison
    graph centred to mean 0 (so ``exp`` of a difference is an odds ratio only within a component);
    NaN for agents that met nobody.  ``ValueError`` if nobody met anybody, or if ``prior == 0`` and the
    maximum-likelihood estimate does not exist (an agent, or group of agents, never lost or never won).
    """
    _check_fit(prior, tol, max_iter)
    w = _square(wins, "wins")
    total = w + w.T
    if meetings is None:
        n = total
    else:
        n = _square(meetings, "meetings")
        if n.shape != w.shape:
            raise ValueError(f"wins and meetings must have the same shape, got {w.shape} and {n.shape}")
        if not np.allclose(n, total, rtol=1e-9, atol=1e-12):
            raise ValueError("meetings must equal wins + wins.T (every meeting is a win, a loss or a tie)")
    if not (n > 0).any():
        raise ValueError("no two agents met: Bradley-Terry strengths are undefined")
    if prior == 0.0:
        beat = _closure(w > 0)
        linked = _closure(n > 0)
        bad = np.flatnonzero((beat != linked).any(axis=1) | (beat != linked).any(axis=0))
        if bad.size:
            raise ValueError("with prior=0 the maximum-likelihood strengths are infinite: agents at indices "
                             f"{bad.tolist()} include some that never lost or never won against the rest "
                             "of their group; use prior > 0")
    rw, rn = _regularise(w, n, float(prior))
    return _mm(rw[None], rn[None], tol, max_iter)[0]


def win_probability(log_strengths) -> np.ndarray:
    """Fitted ``P(i beats j) = 1 / (1 + exp(-(t_i - t_j)))`` for log-strengths ``t``, as an ``N x N`` array.

    The diagonal is 1/2; ``P + P.T == 1``; NaN strengths give NaN rows and columns.
    """
    t = np.asarray(log_strengths, dtype=np.float64).ravel()
    d = t[:, None] - t[None, :]
    with np.errstate(invalid="ignore"):
        return np.exp(-np.logaddexp(0.0, -d))


def bradley_terry_ci(matches: Iterable, agents: Sequence[Hashable], n_boot: int = 2000, alpha: float = 0.05, *,
                     rng: np.random.Generator | None = None, seed: int | None = None, prior: float = 0.5,
                     tol: float = 1e-10, max_iter: int = 10000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bradley-Terry log-strengths with stratified block-bootstrap percentile intervals.

    ``matches`` as for :func:`pairwise`; results are in the order of ``agents``.  The estimate is
    :func:`bradley_terry` of all matches (with ``prior``, which must be > 0 here: a resample may
    contain an undefeated agent).

    Bootstrap.  A block is the set of matches sharing ``(stratum, block)``; a stratum (scenario) with
    ``n_s`` blocks contributes, in every replicate, ``n_s`` blocks drawn with replacement from its own
    blocks only, each bringing all of its matches.  Implementation: per-block win and meeting matrices
    are computed once; a replicate's matrices are their sums weighted by multinomial counts
    ``Multinomial(n_s, 1/n_s)`` (distributed exactly as the counts of ``n_s`` draws with replacement),
    strata in sorted order, blocks sorted within a stratum -- so the result does not depend on the
    order of ``matches``.  All replicates are fitted together (see :func:`bradley_terry`).

    The interval is the ``alpha/2`` and ``1 - alpha/2`` quantiles (linear interpolation) of each
    agent's replicates.  In a replicate where an agent met nobody its value is NaN and left out of its
    quantiles; an agent that met nobody in the data gets NaN estimate and bounds.  A percentile interval
    need not contain the estimate (it usually does).

    Randomness: ``rng`` if given, else ``np.random.default_rng(seed)`` with ``seed`` defaulting to 0;
    giving both is a ``ValueError``.  Returns ``(estimate, lo, hi)``, three float arrays of length ``N``.
    """
    if rng is not None and seed is not None:
        raise ValueError("give rng or seed, not both")
    if rng is None:
        rng = np.random.default_rng(0 if seed is None else seed)
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator (no global random state)")
    if int(n_boot) < 1:
        raise ValueError("n_boot must be >= 1")
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must be in (0, 1)")
    _check_fit(prior, tol, max_iter)
    if prior <= 0.0:
        raise ValueError("bradley_terry_ci needs prior > 0: a bootstrap resample may contain an undefeated agent")
    index = _index(agents)
    keys, bw, bn = _block_pairwise(_as_matches(matches), index)
    if not keys:
        raise ValueError("no matches")
    n = len(index)
    estimate = bradley_terry(bw.sum(axis=0), bn.sum(axis=0), prior=prior, tol=tol, max_iter=max_iter)

    B = int(n_boot)
    strata = sorted({s for s, _ in keys})
    stratum_of = np.array([strata.index(s) for s, _ in keys])
    boot_w = np.zeros((B, n * n))
    boot_n = np.zeros((B, n * n))
    for s in range(len(strata)):
        rows = np.flatnonzero(stratum_of == s)
        k = rows.size
        counts = rng.multinomial(k, np.full(k, 1.0 / k), size=B).astype(np.float64)  # (B, k)
        boot_w += counts @ bw[rows].reshape(k, n * n)
        boot_n += counts @ bn[rows].reshape(k, n * n)
    rw, rn = _regularise(boot_w.reshape(B, n, n), boot_n.reshape(B, n, n), float(prior))
    boot = _mm(rw, rn, tol, max_iter)  # (B, N)

    lo = np.full(n, np.nan)
    hi = np.full(n, np.nan)
    ok = ~np.isnan(estimate) & (~np.isnan(boot)).any(axis=0)
    if ok.any():
        q = np.nanquantile(boot[:, ok], [alpha / 2.0, 1.0 - alpha / 2.0], axis=0)
        lo[ok], hi[ok] = q[0], q[1]
    return estimate, lo, hi


# --------------------------------------------------------------------------------------------------
# OpenSkill
# --------------------------------------------------------------------------------------------------

def openskill_ratings(matches: Iterable, agents: Sequence[Hashable],
                      model=None) -> dict[Hashable, tuple[float, float, float]]:
    """OpenSkill Plackett-Luce ratings ``{agent: (mu, sigma, ordinal)}`` in the order of ``agents``.

    Every agent starts from the model's default rating (``mu = 25``, ``sigma = 25/3`` for the default
    ``openskill.models.PlackettLuce()``; pass ``model`` to change its parameters).  Each match is a
    free-for-all of one-player teams with *ranks* from the scores: an agent's rank is the number of
    agents of the match that beat it, so equal scores share a rank (a tie, which openskill resolves by
    giving tied agents the same mu change) and failed (NaN) agents share the last rank.  ``ordinal``
    is ``mu - 3 sigma``, the conservative rating openskill sorts by.  Agents without matches keep the
    initial rating.

    OpenSkill is an *online* (sequential) method: ratings are updated match by match in the order of
    ``matches``, and a different order gives different ratings.  The caller must therefore fix the
    order (e.g. sorted by ``(stratum, block)`` and then a stable match key).  Deterministic for a
    given order.  Requires ``openskill`` 6.x (``ImportError`` naming the fix if missing).
    """
    try:
        from openskill.models import PlackettLuce
    except ImportError as exc:  # pragma: no cover - exercised only without the package
        raise ImportError("openskill_ratings needs the 'openskill' package: pip install openskill") from exc
    index = _index(agents)
    matches = _as_matches(matches)
    unknown = sorted({repr(a) for m in matches for a in m.agents if a not in index})
    if unknown:
        raise ValueError(f"matches contain agents not in `agents`: {', '.join(unknown)}")
    model = PlackettLuce() if model is None else model
    ratings = {a: model.rating(name=str(a)) for a in index}
    for m in matches:
        sc = np.asarray(m.scores, dtype=np.float64)
        beaten_by = _beats(sc[None, :], sc[:, None]) == 1.0  # [i, j]: j beats i
        ranks = [int(r) for r in beaten_by.sum(axis=1)]
        teams = [[ratings[a]] for a in m.agents]
        new = model.rate(teams, ranks=ranks)
        for a, team in zip(m.agents, new):
            ratings[a] = team[0]
    return {a: (float(r.mu), float(r.sigma), float(r.ordinal())) for a, r in ratings.items()}


def openskill_ratings_averaged(matches: Iterable, agents: Sequence[Hashable], orders: int = 100, *,
                               rng: np.random.Generator | None = None, seed: int | None = None,
                               model=None) -> dict[Hashable, tuple[float, float, float]]:
    """:func:`openskill_ratings` made independent of the order of ``matches``: the mean ``mu`` and
    ``sigma`` over ``orders`` random orders of the matches (permutations drawn from ``rng``, or from
    ``np.random.default_rng(seed)``, seed 0 when neither is given), and ``ordinal = mu - 3 sigma`` of
    those means.  Deterministic for a given seed; the same matches in any listed order give the same
    result, because the matches are first sorted by (stratum, block, agents) and then permuted.
    """
    if not isinstance(orders, (int, np.integer)) or isinstance(orders, bool) or orders < 1:
        raise ValueError(f"orders must be a positive integer, got {orders!r}")
    if rng is not None and seed is not None:
        raise ValueError("pass rng or seed, not both")
    rng = rng if rng is not None else np.random.default_rng(0 if seed is None else seed)
    matches = sorted(_as_matches(matches), key=lambda m: (m.stratum, m.block, tuple(map(str, m.agents)),
                                                         tuple(np.nan_to_num(m.scores, nan=-np.inf))))
    mu = np.zeros(len(agents))
    sigma = np.zeros(len(agents))
    for _ in range(int(orders)):
        perm = rng.permutation(len(matches))
        r = openskill_ratings([matches[i] for i in perm], agents, model=model)
        mu += [r[a][0] for a in agents]
        sigma += [r[a][1] for a in agents]
    mu /= orders
    sigma /= orders
    return {a: (float(m), float(s), float(m - 3 * s)) for a, m, s in zip(agents, mu, sigma)}
