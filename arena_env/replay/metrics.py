"""What a replayed policy would have achieved: value, outcome rates, precision@K and violations, with
intervals, paired against a baseline, and the per-row trace.

:func:`evaluate_policy` scores one policy on a prepared replay:

* **value**: the off-policy estimate (:func:`arena_env.replay.ope.evaluate`, default ``dr`` with a
  cross-fitted reward model) of the mean reward of the policy's actions, with its interval and
  diagnostics;
* **positive rate** and **negative rate**: the same estimator with the reward replaced by "the
  outcome was one of the manifest's positive (negative) labels": what share of decisions *would*
  have led to a positive outcome under the policy's actions, not the historical share;
* **precision@K**: the rows ranked by the policy's score (:func:`~.policies.default_scores`), the
  share of the top K whose logged outcome was positive, with divisor ``min(K, n)``; it judges the
  policy's ranking against what happened, so it is a property of the ranking, not of the actions;
* **violations**: per constraint, the expected share of rows where the policy's action breaks it (under
  its probabilities: for a deterministic policy, the share of its actions that do), the share for its
  most likely action (``chosen_rate``), and the constraint's severity;
* **versus the baseline**: :func:`arena_env.replay.ope.compare` of the policy and the baseline on the
  same rows and the same resamples;
* the **trace**: per row, the case, time, chosen action (the most likely one), its probability, the
  logged action, whether they match, and the constraints broken.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import ope
from .policies import ReplayPolicy, default_scores
from .snapshots import Replay

_SHARED_RESAMPLES = 1 << 24  # bootstrap counts drawn once per evaluation when they take at most this many elements


def precision_at_k(scores: np.ndarray, positive: np.ndarray, k: int) -> float:
    """Share of positives among the ``k`` highest-scored rows (ties by row order), divided by ``min(k, n)``."""
    if int(k) != k or k < 1:
        raise ValueError(f"precision_at_k: k must be an integer >= 1, got {k!r}")
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n = len(scores)
    if n == 0:
        return float("nan")
    top = np.argsort(-scores, kind="stable")[:k]
    return float(positive[top].sum() / min(int(k), n))


@dataclass(frozen=True)
class Evaluation:
    """One policy's results on a replay (see the module docstring)."""

    policy: str
    value: ope.Estimate
    positive_rate: ope.Estimate | None
    negative_rate: ope.Estimate | None
    precision_at_k: Mapping[int, float]
    violations: Mapping[str, Mapping[str, Any]]
    versus: ope.Comparison | None
    baseline: str | None
    trace: Any  # a pyarrow Table

    def row(self) -> dict:
        """A flat summary row for tables."""
        out = {"policy": self.policy, "value": self.value.value, "low": self.value.low, "high": self.value.high,
               "interval": self.value.interval, "ess": self.value.diagnostics.ess,
               "warnings": len(self.value.warnings)}
        if self.positive_rate is not None:
            out["positive_rate"] = self.positive_rate.value
        if self.negative_rate is not None:
            out["negative_rate"] = self.negative_rate.value
        for k, v in self.precision_at_k.items():
            out[f"precision@{k}"] = v
        out["violation_rate"] = float(sum(v["rate"] for v in self.violations.values())) if self.violations else 0.0
        if self.versus is not None:
            out.update(diff=self.versus.difference, diff_low=self.versus.low, diff_high=self.versus.high,
                       p_value=self.versus.p_value)
        return out


def _arrays(replay: Replay, estimator: str, q: np.ndarray | None) -> dict:
    kw: dict[str, Any] = {"action": replay.logged, "cases": replay.case}
    if estimator != "dm" and (estimator != "replay" or np.isfinite(replay.pscore).all()):
        kw["pscore"] = replay.pscore  # replay does not use them, but is warned when they vary
    if q is not None and estimator not in ("replay", "ipw", "snipw"):
        kw["estimated_rewards_by_reg_model"] = q
    return kw


def usable(replay: Replay, estimator: str) -> tuple[Replay, dict]:
    """The rows an estimator can use (not censored, a logged action, a propensity where it needs one) and
    what was dropped."""
    keep = ~replay.censored & (replay.logged >= 0)
    dropped = {"censored": int(replay.censored.sum()), "no_logged_action": int((~replay.censored &
                                                                                 (replay.logged < 0)).sum())}
    if estimator not in ("replay", "dm"):
        miss = keep & np.isnan(replay.pscore)
        dropped["no_propensity"] = int(miss.sum())
        keep &= ~miss
    return replay.select(keep), dropped


def _require_rows(replay: Replay, estimator: str) -> None:
    """An estimate needs decision points: an empty replay (an empty log, or every row dropped by
    :func:`usable`) raises ``ValueError`` naming the log."""
    if len(replay) == 0:
        log = replay.log
        raise ValueError(f"{log.report.source}: no decision points to score with {estimator} (the log has "
                         f"{len(log)} events in {log.n_cases} cases, after dropping rows without a logged action "
                         "or, for propensity estimators, without a propensity); check the log and the manifest's "
                         "decision_points")


def reward_model(replay: Replay, seed: int = 0, model: Any = "auto", reward: np.ndarray | None = None,
                 context: np.ndarray | None = None) -> np.ndarray:
    """The cross-fitted reward model q(x, a) of ``reward`` (default: the replay's rewards) for the replay's
    rows (folds by case), shape (n, n_actions); ``context`` is ``env.encode(replay)[0]`` (computed when not
    given)."""
    from .env import encode

    x = encode(replay)[0] if context is None else context
    return ope.fit_reward_model(x, replay.logged, replay.reward if reward is None else reward,
                                n_actions=replay.n_actions, model=model, cases=replay.case, seed=seed)


def _indicators(replay: Replay) -> dict[str, np.ndarray]:
    """Per outcome group with labels ("positive", "negative"), the 0/1 indicator of the rows' outcomes."""
    o = replay.manifest.outcomes
    label = np.asarray(replay.label, dtype=object)
    return {g: np.isin(label, np.asarray(labels, dtype=object)).astype(np.float64)
            for g, labels in (("positive", o.positive), ("negative", o.negative)) if labels}


def models(replay: Replay, estimator: str, seed: int = 0, rates: bool = True) -> dict[str, np.ndarray]:
    """The reward models an estimator needs on ``replay``: ``"value"`` and, with ``rates``, one per outcome
    group; empty for estimators without a model."""
    from .env import encode

    if estimator in ("replay", "ipw", "snipw"):
        return {}
    x = encode(replay)[0]
    out = {"value": reward_model(replay, seed, context=x)}
    targets = {"value": replay.reward}
    if rates:
        for g, ind in _indicators(replay).items():
            # the fit is a pure function of its inputs: a target equal to one already fitted (the positive
            # indicator is often the reward itself) shares that model
            same = next((k for k, y in targets.items() if np.array_equal(y, ind)), None)
            out[g] = out[same].copy() if same is not None else reward_model(replay, seed, reward=ind, context=x)
            targets[g] = ind
    return out


def _resamples(replay: Replay, n_bootstrap: int, seed: Any) -> np.ndarray | None:
    """The bootstrap counts every estimate on ``replay``'s rows draws from ``seed``
    (:func:`arena_env.replay.ope.bootstrap_counts`), drawn once to be shared; None (each estimate draws its
    own, the same ones) when ``seed`` is a generator or they would take more than ``_SHARED_RESAMPLES``
    elements of memory."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        return None
    n_cases = int(np.unique(replay.case).size)
    if n_bootstrap * n_cases > _SHARED_RESAMPLES:
        return None
    return ope.bootstrap_counts(n_cases, n_bootstrap, seed)


def evaluate_policy(replay: Replay, policy: ReplayPolicy, *, estimator: str = "dr", baseline: ReplayPolicy | None = None,
                    ks: Sequence[int] = (10, 100), n_bootstrap: int = 2000, alpha: float = 0.05, seed: int = 0,
                    fitted: Mapping[str, np.ndarray] | None = None, rates: bool = True,
                    resamples: np.ndarray | None = None) -> Evaluation:
    """Score ``policy`` on ``replay`` (rows already restricted by :func:`usable`); see the module docstring.

    ``fitted`` are the reward models of :func:`models` (fitted here when needed and not given);
    ``resamples`` the bootstrap counts that every estimate here draws from ``seed``
    (:func:`arena_env.replay.ope.bootstrap_counts` of the rows' cases; drawn here once when not given).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if estimator not in ope.ESTIMATORS:
        raise ValueError(f"estimator={estimator!r}: expected one of {', '.join(ope.ESTIMATORS)}")
    _require_rows(replay, estimator)
    if fitted is None:
        fitted = models(replay, estimator, seed, rates)
    if resamples is None:
        resamples = _resamples(replay, n_bootstrap, seed)
    boot = {"n_bootstrap": n_bootstrap, "alpha": alpha, "seed": seed, "resamples": resamples}
    dist = _checked(policy, replay)
    kw = _arrays(replay, estimator, fitted.get("value"))
    value = ope.evaluate(estimator, reward=replay.reward, action_dist=dist, **boot, **kw)
    group_rates: dict[str, ope.Estimate] = {}
    if rates:
        for g, ind in _indicators(replay).items():
            group_rates[g] = ope.evaluate(estimator, reward=ind, action_dist=dist, **boot,
                                          **_arrays(replay, estimator, fitted.get(g)))
    o = replay.manifest.outcomes
    positive = np.isin(np.asarray(replay.label, dtype=object), np.asarray(o.positive, dtype=object))
    scores = default_scores(policy, replay)
    prec = {int(k): precision_at_k(scores, positive, int(k)) for k in ks}
    n = len(replay)
    chosen = np.argmax(dist, axis=1)
    # constraints are elementwise in the rows: what the chosen action breaks is read off the per-action results
    per_action = [replay.violations(np.full(n, a)) for a in range(replay.n_actions)] if replay.constraints else []
    broken = {c.name: np.stack([v[c.name] for v in per_action])[chosen, np.arange(n)] for c, _ in replay.constraints}
    viol = {}
    for c, _ in replay.constraints:
        hit = broken[c.name]
        # expected share under the policy's probabilities: sum over actions of P(a) * violated(a)
        expected = sum(dist[:, a] * per_action[a][c.name] for a in range(replay.n_actions))
        viol[c.name] = {"severity": c.severity, "rate": float(np.mean(expected)) if len(hit) else 0.0,
                        "chosen_rate": float(hit.mean()) if len(hit) else 0.0, "message": c.message}
    versus = None
    if baseline is not None:
        bdist = _checked(baseline, replay)
        versus = ope.compare(estimator, reward=replay.reward, action_dist=dist, baseline_dist=bdist, **boot, **kw)
    acts = pa.array(replay.actions, pa.string())
    names = pa.array([d.name for d in replay.manifest.decision_points], pa.string())
    trace = pa.table({
        "case_id": pc.take(pa.array(replay.log.case_ids, pa.string()), pa.array(replay.case)),
        "time": pa.array(replay.time_us, pa.timestamp("us", tz="UTC")),
        "decision_point": pc.take(names, pa.array(replay.point)),
        "action": pc.take(acts, pa.array(chosen)),
        "probability": pa.array(dist[np.arange(n), chosen]),
        "logged_action": pc.take(acts, pa.array(replay.logged, mask=replay.logged < 0)),  # null: none logged
        "matched": pa.array(chosen == replay.logged),
        "reward": pa.array(replay.reward),
        "score": pa.array(scores),
        "violations": _broken_names([c.name for c, _ in replay.constraints], broken, n),
    })
    return Evaluation(policy.name, value, group_rates.get("positive"), group_rates.get("negative"), prec, viol,
                      versus, None if baseline is None else baseline.name, trace)


def _broken_names(names: Sequence[str], broken: Mapping[str, np.ndarray], n: int):
    """Per row, the names of the constraints broken there joined by commas ("" for none), as a pyarrow array:
    one string per distinct combination, taken by row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not names:
        return pa.array([""] * n, pa.string())
    if len(names) > 62:  # too many for a bit per constraint in an int64: one string per row
        return pa.array([",".join(c for c in names if broken[c][i]) for i in range(n)], pa.string())
    code = np.zeros(n, np.int64)
    for j, c in enumerate(names):
        code |= np.asarray(broken[c], dtype=np.int64) << j
    combos, row_combo = np.unique(code, return_inverse=True)
    text = pa.array([",".join(c for j, c in enumerate(names) if (int(combo) >> j) & 1) for combo in combos], pa.string())
    return pc.take(text, pa.array(row_combo.reshape(n)))


def _checked(policy: ReplayPolicy, replay: Replay) -> np.ndarray:
    dist = np.asarray(policy.action_dist(replay), dtype=np.float64)
    name = getattr(policy, "name", type(policy).__name__)
    if dist.shape != (len(replay), replay.n_actions):
        raise ValueError(f"policy {name}: action_dist has shape {dist.shape}, expected {(len(replay), replay.n_actions)}")
    if not np.all(np.isfinite(dist)) or (dist < 0).any() or not np.allclose(dist.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError(f"policy {name}: action_dist rows must be probabilities summing to 1")
    off = (dist > 0) & ~replay.allowed
    if off.any():
        i = int(np.flatnonzero(off.any(axis=1))[0])
        raise ValueError(f"policy {name}: puts probability on an action not allowed at decision row {i} "
                         f"({replay.actions[int(np.flatnonzero(off[i])[0])]!r})")
    return dist


def evaluate_policies(replay: Replay, policies: Sequence[ReplayPolicy], *, estimator: str = "dr",
                      baseline: str | None = None, **kwargs) -> list[Evaluation]:
    """:func:`evaluate_policy` for each policy, all against the policy named ``baseline`` (default: the first),
    sharing the reward models and the bootstrap resamples."""
    _require_rows(replay, estimator)
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise ValueError(f"policies need distinct names, got {names}")
    base = policies[0] if baseline is None else next((p for p in policies if p.name == baseline), None)
    if base is None:
        raise ValueError(f"baseline {baseline!r} is not one of the policies ({', '.join(names)})")
    fitted = kwargs.pop("fitted", None)
    if fitted is None:
        fitted = models(replay, estimator, kwargs.get("seed", 0), kwargs.get("rates", True))
    if kwargs.get("resamples") is None:
        kwargs["resamples"] = _resamples(replay, kwargs.get("n_bootstrap", 2000), kwargs.get("seed", 0))
    return [evaluate_policy(replay, p, estimator=estimator, baseline=None if p is base else base, fitted=fitted,
                            **kwargs) for p in policies]
