"""Snapshots and decision points: features against a brute-force computation from the raw events, no
future leakage (every later event mutated), synthesised timers, logged actions, outcomes and censoring."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arena_env.replay import expr, synthetic
from arena_env.replay.log import load_log
from arena_env.replay.manifest import ManifestError
from arena_env.replay.snapshots import BASE_FEATURES, prepare, snapshot_at

DAY = 86_400_000_000
T0 = 1_704_067_200_000_000
TYPES = ["entity.created", "interaction.occurred", "state.changed", "decision.requested", "decision.executed",
         "outcome.recorded", "entity.closed", "entity.reopened", "escalation.triggered", "timer.elapsed"]
MANIFEST = {
    "name": "t", "labels": ["secret"],
    "decision_points": [{"name": "ask", "trigger": "decision.requested"},
                        {"name": "tick", "trigger": "timer.elapsed", "every": "1d",
                         "condition": "is_null(days_since_last_interaction) or days_since_last_interaction > 1"}],
    "allowed_actions": ["wait", "nudge", "call"], "default_action": "wait",
    "outcomes": {"positive": ["won"], "negative": ["lost"], "horizon": "5d"},
}


def _table(events):
    """events: list of dicts with case, t (us), type, and optional state, channel, action, propensity, outcome,
    score, tier, secret."""
    def col(k, typ=pa.string()):
        return pa.array([e.get(k) for e in events], typ)
    return pa.table({
        "case_id": col("case"), "event_id": pa.array([f"e{i}" for i in range(len(events))]),
        "timestamp": pa.array([e["t"] for e in events], pa.timestamp("us", tz="UTC")),
        "event_type": col("type"), "state_after": col("state"), "channel": col("channel"), "action": col("action"),
        "propensity": col("propensity", pa.float64()), "outcome": col("outcome"),
        "score": col("score", pa.float64()), "tier": col("tier"), "secret": col("secret"),
    })


@st.composite
def logs(draw):
    events = []
    for c in range(draw(st.integers(1, 4))):
        t = T0 + draw(st.integers(0, 3 * DAY))
        events.append({"case": f"c{c}", "t": t, "type": "entity.created", "state": "new"})
        for _ in range(draw(st.integers(0, 9))):
            t += draw(st.sampled_from([0, 1, DAY // 3, DAY, 2 * DAY + 7]))
            e = {"case": f"c{c}", "t": t, "type": draw(st.sampled_from(TYPES))}
            if draw(st.booleans()):
                e["state"] = draw(st.sampled_from(["new", "open", "won", "lost"]))
            if draw(st.booleans()):
                e["channel"] = draw(st.sampled_from(["email", "phone"]))
            if e["type"] == "decision.executed":
                e["action"] = draw(st.sampled_from(["wait", "nudge", "call"]))
                e["propensity"] = draw(st.sampled_from([0.2, 0.5, 1.0]))
            if e["type"] == "outcome.recorded":
                e["outcome"] = draw(st.sampled_from(["won", "lost", "other"]))
            if draw(st.booleans()):
                e["score"] = draw(st.floats(0, 1))
            if draw(st.booleans()):
                e["tier"] = draw(st.sampled_from(["gold", "silver"]))
            e["secret"] = draw(st.sampled_from(["won", "lost"]))
            events.append(e)
    # shuffle whole cases' order but keep each case's events in time order
    return events


def _brute(events, case, t, upto=None):
    """The snapshot of ``case`` at ``t`` from the raw event dicts (log order within the case: time, then input)."""
    evs = sorted([(e["t"], i, e) for i, e in enumerate(events) if e["case"] == case], key=lambda x: (x[0], x[1]))
    seen = [e for tt, i, e in evs if tt <= t] if upto is None else [e for tt, i, e in evs[:upto + 1]]
    first = evs[0][0]

    def last(key):
        vals = [e.get(key) for e in seen if e.get(key) is not None]
        return vals[-1] if vals else None

    def last_t(pred):
        ts = [e["t"] for e in seen if pred(e)]
        return ts[-1] if ts else None

    out = {"events": len(seen),
           "interactions": sum(e["type"] == "interaction.occurred" for e in seen),
           "decisions": sum(e["type"] == "decision.executed" for e in seen),
           "escalations": sum(e["type"] == "escalation.triggered" for e in seen),
           "assignments": sum(e["type"] == "assignment.changed" for e in seen),
           "reopens": sum(e["type"] == "entity.reopened" for e in seen)}
    closes = [e["type"] for e in seen if e["type"] in ("entity.closed", "entity.reopened")]
    out["closed"] = float(bool(closes) and closes[-1] == "entity.closed")
    out["state"] = last("state")
    out["channel"] = last("channel")
    out["age_days"] = (t - first) / DAY
    ts = last_t(lambda e: e.get("state") is not None)
    out["days_in_state"] = (t - (ts if ts is not None else first)) / DAY
    ti = last_t(lambda e: e["type"] == "interaction.occurred")
    out["days_since_last_interaction"] = math.nan if ti is None else (t - ti) / DAY
    out["days_since_last_event"] = (t - seen[-1]["t"]) / DAY
    import datetime as dt

    d = dt.datetime.fromtimestamp(t // 1_000_000, dt.timezone.utc)
    out["hour"], out["weekday"] = float(d.hour), float(d.weekday())
    sc = last("score")
    out["score"] = math.nan if sc is None else sc
    out["tier"] = last("tier")
    return out


def _same(a, b):
    assert a.keys() == b.keys(), (a.keys(), b.keys())
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x):
            assert math.isnan(y), k
        elif isinstance(x, float):
            assert x == pytest.approx(y, abs=1e-9), (k, x, y)
        else:
            assert x == y, (k, x, y)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logs())
def test_decision_snapshots_match_brute_force(events):
    log = load_log(_table(events), MANIFEST)
    rep = prepare(log)
    assert set(rep.feature_types) == {*BASE_FEATURES, "score", "tier"}  # the label 'secret' is not a feature
    order = {}
    for k in range(len(rep)):
        case = log.case_ids[rep.case[k]]
        t = int(rep.time_us[k])
        point = MANIFEST["decision_points"][rep.point[k]]
        if point["trigger"] == "timer.elapsed":
            want = _brute(events, case, t)
        else:  # an event trigger sees its case's events up to and including the trigger (log order)
            upto = int(rep.event[k] - log.starts[rep.case[k]])
            want = _brute(events, case, t, upto=upto)
        _same(rep.snapshot(k), want)
        order.setdefault(case, []).append(t)
    assert np.all(np.diff(rep.time_us) >= 0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logs(), st.integers(0, 10**6), st.data())
def test_no_future_leakage(events, pick, data):
    """Mutating, deleting or adding events after t never changes the snapshot at t."""
    case = events[pick % len(events)]["case"]
    case_events = [e for e in events if e["case"] == case]
    t = case_events[pick % len(case_events)]["t"] + data.draw(st.sampled_from([0, DAY // 2]))
    before = snapshot_at(load_log(_table(events), MANIFEST), case, t)
    mutated = []
    for e in events:
        if e["t"] > t:
            if data.draw(st.booleans()):
                continue  # deleted
            e = {**e, "type": data.draw(st.sampled_from(TYPES)), "state": "won", "channel": "fax",
                 "score": 99.0, "tier": "platinum", "outcome": "won" if e["type"] == "outcome.recorded" else None,
                 "secret": "changed"}
            if e["type"] != "decision.executed":
                e.pop("action", None)
                e.pop("propensity", None)
        mutated.append(e)
    mutated.append({"case": case, "t": t + 1, "type": "interaction.occurred", "state": "won", "score": -1.0})
    mutated.append({"case": case, "t": t + DAY, "type": "outcome.recorded", "outcome": "won"})
    after = snapshot_at(load_log(_table(mutated), MANIFEST), case, t)
    _same(before, after)
    _same(before, _brute(events, case, t))


def test_backfilled_column_as_feature_shows_only_the_past():
    """A back-filled column made a feature shows the value logged up to t, not the later one."""
    events = [{"case": "c", "t": T0, "type": "entity.created", "secret": "lost"},
              {"case": "c", "t": T0 + DAY, "type": "outcome.recorded", "outcome": "won", "secret": "won"}]
    leaky = {**MANIFEST, "labels": [], "features": ["secret"]}
    a = snapshot_at(load_log(_table(events), leaky), "c", T0)
    events[1]["secret"] = "changed"
    b = snapshot_at(load_log(_table(events), leaky), "c", T0)
    _same(a, b)
    assert a["secret"] == "lost"


def test_the_leakage_check_catches_a_leak(monkeypatch):
    """With a forward fill that looks at the whole case, the mutation check of test_no_future_leakage fails."""
    from arena_env.replay import snapshots

    def whole_case(valid, case_start):
        out = np.full(len(valid), -1)
        for s in np.unique(case_start):
            members = np.flatnonzero(case_start == s)
            hits = members[valid[members]]
            out[members] = hits[-1] if len(hits) else -1
        return out

    events = [{"case": "c", "t": T0, "type": "entity.created", "score": 0.1},
              {"case": "c", "t": T0 + DAY, "type": "interaction.occurred", "score": 0.9}]
    monkeypatch.setattr(snapshots, "last_index", whole_case)
    a = snapshot_at(load_log(_table(events), MANIFEST), "c", T0)
    events[1]["score"] = 0.5
    b = snapshot_at(load_log(_table(events), MANIFEST), "c", T0)
    assert a["score"] != b["score"]


def test_timers_fire_without_timer_rows():
    events = [{"case": "c", "t": T0, "type": "entity.created"},
              {"case": "c", "t": T0 + 2 * DAY, "type": "interaction.occurred"},
              {"case": "c", "t": T0 + 7 * DAY + 5, "type": "state.changed", "state": "open"}]
    man = {**MANIFEST, "decision_points": [{"name": "followup", "trigger": "timer.elapsed",
                                            "condition": "days_since_last_interaction > 3"}]}
    rep = prepare(load_log(_table(events), man))
    # ticks at days 1..7; days since the interaction (day 2) > 3 on days 6 and 7
    assert ((rep.time_us - T0) // DAY).tolist() == [6, 7]
    assert rep.snapshot(0)["days_since_last_interaction"] == 4.0
    everyday = {**man, "decision_points": [{"name": "f", "trigger": "timer.elapsed", "every": "12h"}]}
    assert len(prepare(load_log(_table(events), everyday))) == 14
    to_end = {**man, "decision_points": [{"name": "f", "trigger": "timer.elapsed", "until": "log_end"}]}
    two = events + [{"case": "d", "t": T0 + 20 * DAY, "type": "entity.created"}]
    rep2 = prepare(load_log(_table(two), to_end))
    assert int(np.sum(rep2.case == 0)) == 20 and int(np.sum(rep2.case == 1)) == 0


def test_logged_action_outcome_and_censoring():
    events = [
        {"case": "a", "t": T0, "type": "entity.created"},
        {"case": "a", "t": T0 + 10, "type": "decision.requested"},
        {"case": "a", "t": T0 + 20, "type": "decision.executed", "action": "call", "propensity": 0.25},
        {"case": "a", "t": T0 + 2 * DAY, "type": "outcome.recorded", "outcome": "other"},  # not an outcome label
        {"case": "a", "t": T0 + 3 * DAY, "type": "outcome.recorded", "outcome": "won"},
        {"case": "a", "t": T0 + 4 * DAY, "type": "decision.requested"},  # no execution: the default action
        {"case": "a", "t": T0 + 20 * DAY, "type": "outcome.recorded", "outcome": "lost"},  # beyond the horizon
        {"case": "b", "t": T0 + 19 * DAY, "type": "entity.created"},
        {"case": "b", "t": T0 + 19 * DAY + 1, "type": "decision.requested"},  # horizon runs past the log's end
        {"case": "b", "t": T0 + 19 * DAY + 2, "type": "decision.executed", "action": "nudge", "propensity": 0.5},
    ]
    man = {**MANIFEST, "decision_points": [MANIFEST["decision_points"][0]]}
    rep = prepare(load_log(_table(events), man))
    assert len(rep) == 3
    acts = [rep.actions[i] for i in rep.logged]
    assert acts == ["call", "wait", "nudge"]
    np.testing.assert_allclose(rep.pscore, [0.25, np.nan, 0.5])
    assert rep.reward.tolist() == [1.0, 0.0, 0.0]
    assert rep.censored.tolist() == [False, False, True]
    assert rep.first.tolist() == [True, False, True]
    assert len(prepare(load_log(_table(events), man), first_only=True)) == 2
    no_default = {**man, "default_action": None}
    assert prepare(load_log(_table(events), no_default)).logged.tolist()[1] == -1


def test_synthetic_log_agrees_with_its_truth():
    table, man, truth = synthetic.leads(500, seed=11)
    rep = prepare(load_log(table, man))
    c = rep.case
    assert len(rep) == 500
    np.testing.assert_array_equal(rep.logged, truth["logged"][c])
    np.testing.assert_allclose(rep.pscore, truth["propensity"][c])
    np.testing.assert_array_equal(rep.reward, truth["converted"][c].astype(float))
    np.testing.assert_allclose(rep.features["score"], truth["score"][c])
    np.testing.assert_array_equal(rep.features["interactions"], truth["interactions"][c])
    assert "final_status" not in rep.features
    v = rep.violations(np.full(len(rep), rep.actions.index("call")))
    np.testing.assert_array_equal(v["no_call_cold_lead"], truth["score"][c] < 0.2)
    assert not rep.violations(np.zeros(len(rep), int))["no_call_cold_lead"].any()


def test_expressions_are_checked_against_the_log_at_prepare():
    table, man, _ = synthetic.leads(20, seed=1)
    bad = {**man, "decision_points": [{"name": "d", "trigger": "decision.requested", "condition": "scroe > 1"}]}
    with pytest.raises(expr.ExpressionError, match=r"decision_points\[0\].condition: unknown name 'scroe'; "
                                                   r"the features are: .*score"):
        prepare(load_log(table, bad))
    bad_rule = {**man, "constraints": [{"name": "c", "rule": "action == 1"}]}
    with pytest.raises(expr.ExpressionError, match=r"constraints\[0\].rule: cannot compare a string"):
        prepare(load_log(table, bad_rule))
    label_used = {**man, "decision_points": [{"name": "d", "trigger": "decision.requested",
                                              "condition": "final_status == 'converted'"}]}
    with pytest.raises(expr.ExpressionError, match="unknown name 'final_status'"):
        prepare(load_log(table, label_used))
    with pytest.raises(ManifestError, match="'nope' is listed as a feature or label but is not a column"):
        prepare(load_log(table, {**man, "features": ["nope"]}))
    defined = {**man, "define": {"warm": "score > 0.5", "warm_b": "warm and segment == 'b'"},
               "decision_points": [{"name": "d", "trigger": "decision.requested", "condition": "warm_b"}]}
    rep = prepare(load_log(table, defined))
    assert len(rep) > 0 and all(rep.snapshot(k)["warm_b"] for k in range(len(rep)))
    assert rep.feature_types["warm"] == "bool"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logs(), st.sampled_from(["6h", "1d", "36h"]), st.sampled_from(["last_event", "log_end"]))
def test_timer_ticks_match_brute_force(events, every, until):
    man = {**MANIFEST, "decision_points": [{"name": "t", "trigger": "timer.elapsed", "every": every,
                                            "until": until}]}
    log = load_log(_table(events), man)
    rep = prepare(log)
    step = {"6h": DAY // 4, "1d": DAY, "36h": 3 * DAY // 2}[every]
    log_end = max(e["t"] for e in events)
    want = []
    for c, case in enumerate(log.case_ids):
        ts = sorted(e["t"] for e in events if e["case"] == case)
        end = ts[-1] if until == "last_event" else log_end
        k = 1
        while ts[0] + k * step <= end:
            want.append((case, ts[0] + k * step))
            k += 1
    got = sorted(zip(log.case_ids[rep.case].tolist(), rep.time_us.tolist()))
    assert got == sorted(want)
    for k in range(len(rep)):  # each tick sees exactly the case's events up to its time
        _same(rep.snapshot(k), _brute(events, log.case_ids[rep.case[k]], int(rep.time_us[k])))


def test_an_action_the_point_does_not_allow_is_not_its_logged_action():
    """A timer between a request and its execution must not take the execution's action when the timer
    point does not allow it (it answered the request)."""
    events = [{"case": "a", "t": T0, "type": "entity.created"},
              {"case": "a", "t": T0 + DAY // 2, "type": "decision.requested"},
              {"case": "a", "t": T0 + 2 * DAY, "type": "decision.executed", "action": "call", "propensity": 0.5}]
    man = {**MANIFEST, "decision_points": [
        {"name": "tick", "trigger": "timer.elapsed", "allowed_actions": ["wait", "nudge"]}]}
    rep = prepare(load_log(_table(events), man))
    assert len(rep) == 2  # ticks at day 1 and day 2
    assert [rep.actions[i] for i in rep.logged] == ["wait", "wait"]  # the default, not 'call'
    assert np.isnan(rep.pscore).all()
    allowed_call = {**MANIFEST, "decision_points": [{"name": "tick", "trigger": "timer.elapsed"}]}
    rep2 = prepare(load_log(_table(events), allowed_call))
    assert rep2.actions[rep2.logged[0]] == "call" and rep2.pscore[0] == 0.5


def test_numeric_outcome_values():
    events = [{"case": "a", "t": T0, "type": "entity.created"},
              {"case": "a", "t": T0 + 10, "type": "decision.requested"},
              {"case": "a", "t": T0 + 20, "type": "decision.executed", "action": "call", "propensity": 0.5},
              {"case": "a", "t": T0 + DAY, "type": "outcome.recorded", "score": 12.5},
              {"case": "b", "t": T0, "type": "decision.requested"},
              {"case": "b", "t": T0 + DAY, "type": "outcome.recorded", "outcome": "won"}]  # no value: no outcome
    man = {**MANIFEST, "decision_points": [MANIFEST["decision_points"][0]],
           "outcomes": {"value_field": "score"}}
    rep = prepare(load_log(_table(events), man))
    assert sorted(rep.reward.tolist()) == [0.0, 12.5]
    with pytest.raises(ManifestError, match="outcomes.value_field: 'revenue' is not a column"):
        prepare(load_log(_table(events), {**man, "outcomes": {"value_field": "revenue"}}))
    with pytest.raises(ManifestError, match="column 'tier' has type string, expected numbers"):
        prepare(load_log(_table(events), {**man, "outcomes": {"value_field": "tier"}}))
