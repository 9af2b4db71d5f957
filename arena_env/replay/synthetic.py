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


def leads(n_cases: int, seed: int = 0):
    """A log of ``n_cases`` leads: ``(pyarrow.Table, manifest dict, truth dict)``.

    ``truth`` holds, per case in case order, ``score``, ``segment_b``, ``interactions`` (before the
    decision), ``logged`` (action index), ``propensity`` and ``p`` (the (n, 3) conversion
    probabilities), so that :func:`true_value` can be computed.
    """
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    n = int(n_cases)
    score = rng.random(n)
    seg_b = rng.random(n) < 0.4
    n_int = rng.integers(0, 4, n)
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
    kind = np.full(len(case), "interaction.occurred", dtype=object)
    last = np.repeat(per, per) - 1
    kind[k == 0] = "entity.created"
    kind[k == last - 2] = "decision.requested"
    kind[k == last - 1] = "decision.executed"
    kind[k == last] = "outcome.recorded"
    gap = rng.integers(DAY_US // 4, 2 * DAY_US, len(case))
    gap[k == 0] = 0
    gap[k == last - 1] = 60_000_000  # executed one minute after the request
    gap[k == last] = rng.integers(1, 7, n) * DAY_US
    cs = np.cumsum(gap)
    t = created[case] + cs - np.repeat(cs[np.cumsum(per) - per], per)  # gap 0 at each case's first event
    action = np.full(len(case), None, dtype=object)
    propensity = np.full(len(case), np.nan)
    ex = k == last - 1
    action[ex] = np.asarray(ACTIONS, dtype=object)[logged]
    propensity[ex] = prop
    outcome = np.full(len(case), None, dtype=object)
    outcome[k == last] = np.where(converted, "converted", "lost")
    score_col = np.where(k == 0, score[case], np.nan)
    segment = np.where(k == 0, np.where(seg_b[case], "b", "a"), None)
    channel = np.where(kind == "interaction.occurred", np.where(rng.random(len(case)) < 0.5, "email", "phone"), None)
    table = pa.table({
        "case_id": pa.array([f"lead-{c:06d}" for c in case]),
        "event_id": pa.array([f"e{i:08d}" for i in range(len(case))]),
        "timestamp": pa.array(t, pa.timestamp("us", tz="UTC")),
        "event_type": pa.array(kind.tolist(), pa.string()),
        "channel": pa.array(channel.tolist(), pa.string()),
        "action": pa.array(action.tolist(), pa.string()),
        "propensity": pa.array(propensity, pa.float64(), mask=np.isnan(propensity)),
        "outcome": pa.array(outcome.tolist(), pa.string()),
        "score": pa.array(score_col, pa.float64(), mask=np.isnan(score_col)),
        "segment": pa.array(segment.tolist(), pa.string()),
        "final_status": pa.array(np.where(converted[case], "converted", "lost").tolist(), pa.string()),
    })
    truth = {"score": score, "segment_b": seg_b, "interactions": n_int, "logged": logged, "propensity": prop,
             "p": p, "converted": converted}
    return table, manifest(), truth


def true_value(action_dist: np.ndarray, truth: dict) -> float:
    """The exact expected conversion rate of a policy with probabilities ``action_dist`` (n_cases, 3), case order."""
    return float(np.mean(np.sum(np.asarray(action_dist) * truth["p"], axis=1)))
