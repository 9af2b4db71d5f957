"""A synthetic lead-follow-up process with a known ground truth, for tests, examples and benchmarks.

Each case is a lead: ``entity.created`` (with a ``score`` in [0, 1] and a ``segment`` ``a`` or
``b``), a few ``interaction.occurred`` events, then a ``decision.requested`` and its
``decision.executed`` (the logged action among ``wait``, ``send_reminder``, ``call``, chosen by a
stochastic logging policy whose propensity is logged), and an ``outcome.recorded`` a few days later:
``converted`` with probability :func:`conversion` of the lead and the action, else ``lost``.  Every
case also carries a back-filled label column ``final_status`` on every event (what a careless export
adds), which the manifest lists under ``labels``.

Because :func:`conversion` is known, the true value of any policy is exact
(:func:`true_value`: the mean over cases of ``sum_a pi(a | x) * conversion(x, a)``), so an
off-policy estimate can be checked against the truth.  Everything is a pure function of ``seed``.
"""

from __future__ import annotations

import numpy as np

ACTIONS = ("wait", "send_reminder", "call")
DAY_US = 86_400_000_000
T0_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z


def conversion(score: np.ndarray, segment_b: np.ndarray, interactions: np.ndarray) -> np.ndarray:
    """P(converted | lead, action), shape (n, 3) over :data:`ACTIONS`: a reminder helps warm leads, a call
    helps segment ``b`` and leads with few interactions, waiting is the baseline."""
    score = np.asarray(score, np.float64)
    base = 0.05 + 0.25 * score
    reminder = base + 0.10 * score
    call = base + 0.12 * np.asarray(segment_b, np.float64) + 0.04 * (np.asarray(interactions) < 2) - 0.03
    return np.clip(np.stack([base, reminder, call], axis=1), 0.0, 1.0)


def logging_policy(score: np.ndarray) -> np.ndarray:
    """The logging policy's probabilities over :data:`ACTIONS`, shape (n, 3): a softmax that favours
    reminders for high scores; every action keeps at least 10% probability (full support)."""
    score = np.asarray(score, np.float64)
    logits = np.stack([np.zeros_like(score), 1.5 * score - 0.5, 0.3 * np.ones_like(score)], axis=1)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return 0.1 + 0.7 * p


def manifest() -> dict:
    """The manifest of :func:`leads` logs."""
    return {
        "name": "synthetic_leads", "version": "1",
        "labels": ["final_status"],
        "decision_points": [{"name": "follow_up", "trigger": "decision.requested"}],
        "allowed_actions": list(ACTIONS),
        "constraints": [{"name": "no_call_cold_lead", "rule": "action == 'call' and score < 0.2",
                         "severity": "violation", "message": "do not call cold leads"}],
        "outcomes": {"positive": ["converted"], "negative": ["lost"], "horizon": "30d"},
    }


_KINDS = ("entity.created", "interaction.occurred", "decision.requested", "decision.executed", "outcome.recorded")


def _strings(vocabulary, codes: np.ndarray):
    """A pyarrow string array of ``vocabulary[codes]`` (null where a code is -1)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    codes = np.asarray(codes, np.int64)
    return pc.take(pa.array(list(vocabulary), pa.string()), pa.array(codes, mask=codes < 0))


def _ids(prefix: str, numbers: np.ndarray, width: int):
    """The strings ``f"{prefix}{x:0{width}d}"`` of non-negative integers, as a pyarrow string array."""
    import pyarrow as pa
    import pyarrow.compute as pc

    digits = pc.utf8_lpad(pa.array(np.asarray(numbers, np.int64)).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def leads(n_cases: int, seed: int = 0, *, interactions: tuple[int, int] = (0, 4)):
    """A log of ``n_cases`` leads: ``(pyarrow.Table, manifest dict, truth dict)``.

    Each lead has ``k`` interaction events, ``lo <= k < hi`` drawn uniformly (``interactions=(lo, hi)``),
    so ``4 + k`` events in all: ``interactions=(16, 17)`` gives exactly 20 events per case (the log of
    ``benchmarks/bench_replay.py``).  ``truth`` holds, per case in case order, ``score``, ``segment_b``,
    ``interactions`` (before the decision), ``logged`` (action index), ``propensity`` and ``p`` (the
    (n, 3) conversion probabilities), so that :func:`true_value` can be computed.
    """
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    n = int(n_cases)
    score = rng.random(n)
    seg_b = rng.random(n) < 0.4
    lo, hi = (int(x) for x in interactions)
    if not 0 <= lo < hi:
        raise ValueError(f"interactions={interactions!r}: expected (lo, hi) with 0 <= lo < hi")
    n_int = rng.integers(lo, hi, n)
    created = T0_US + rng.integers(0, 30 * DAY_US, n)
    probs = logging_policy(score)
    u = rng.random(n)
    logged = (u[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    prop = probs[np.arange(n), logged]
    p = conversion(score, seg_b, n_int)
    converted = rng.random(n) < p[np.arange(n), logged]

    # events per case: created, n_int interactions, requested, executed, outcome
    per = 4 + n_int
    case = np.repeat(np.arange(n), per)
    k = np.arange(per.sum()) - np.repeat(np.cumsum(per) - per, per)  # index within case
    last = np.repeat(per, per) - 1
    # event types as codes into _KINDS (strings are built by pyarrow at the end, not per row in Python)
    kind = np.full(len(case), 1, np.int8)  # interaction.occurred
    kind[k == 0] = 0
    kind[k == last - 2] = 2
    kind[k == last - 1] = 3
    kind[k == last] = 4
    gap = rng.integers(DAY_US // 4, 2 * DAY_US, len(case))
    gap[k == 0] = 0
    gap[k == last - 1] = 60_000_000  # executed one minute after the request
    gap[k == last] = rng.integers(1, 7, n) * DAY_US
    cs = np.cumsum(gap)
    t = created[case] + cs - np.repeat(cs[np.cumsum(per) - per], per)  # gap 0 at each case's first event
    propensity = np.full(len(case), np.nan)
    ex = k == last - 1
    propensity[ex] = prop
    action = np.full(len(case), -1, np.int64)
    action[ex] = logged
    outcome = np.full(len(case), -1, np.int64)
    outcome[k == last] = np.where(converted, 0, 1)
    score_col = np.where(k == 0, score[case], np.nan)
    segment = np.where(k == 0, seg_b[case].astype(np.int64), -1)
    channel = np.where(kind == 1, (rng.random(len(case)) >= 0.5).astype(np.int64), -1)
    table = pa.table({
        "case_id": _ids("lead-", case, 6),
        "event_id": _ids("e", np.arange(len(case)), 8),
        "timestamp": pa.array(t, pa.timestamp("us", tz="UTC")),
        "event_type": _strings(_KINDS, kind),
        "channel": _strings(("email", "phone"), channel),
        "action": _strings(ACTIONS, action),
        "propensity": pa.array(propensity, pa.float64(), mask=np.isnan(propensity)),
        "outcome": _strings(("converted", "lost"), outcome),
        "score": pa.array(score_col, pa.float64(), mask=np.isnan(score_col)),
        "segment": _strings(("a", "b"), segment),
        "final_status": _strings(("converted", "lost"), np.where(converted[case], 0, 1)),
    })
    truth = {"score": score, "segment_b": seg_b, "interactions": n_int, "logged": logged, "propensity": prop,
             "p": p, "converted": converted}
    return table, manifest(), truth


def true_value(action_dist: np.ndarray, truth: dict) -> float:
    """The exact expected conversion rate of a policy with probabilities ``action_dist`` (n_cases, 3), case order."""
    return float(np.mean(np.sum(np.asarray(action_dist) * truth["p"], axis=1)))
