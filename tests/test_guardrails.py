"""Tests of the delta-clamp kernel, its NumPy twin, and the guardrail pipeline."""

from __future__ import annotations

import copy
import itertools
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena_env.economy import guardrails as gr
from arena_env.economy import guardrail_kernels as kernels
from arena_env.economy import guardrail_ref as reference
from arena_env.economy.params import DEFAULT_VECTOR, N_PARAMS, PARAM_INDEX

BACKENDS = pytest.mark.parametrize("clamp", [kernels.clamp_updates, reference.clamp_updates],
                                   ids=["numba", "numpy"])


def run(clamp, current, requested, has, pct, lo, hi):
    current = np.asarray(current, dtype=np.int64)
    out = (np.empty_like(current), np.empty(current.shape, bool), np.empty(current.shape, bool))
    clamp(current, np.asarray(requested, dtype=np.float64), np.asarray(has, dtype=bool), float(pct),
          np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64), *out)
    return out


def clamp1(clamp, current, requested, pct=50.0, lo=0, hi=10_000):
    """Clamp one parameter; returns (applied, clamped, at_max) as Python scalars."""
    a, c, m = run(clamp, [[current]], [[requested]], [[True]], pct, [lo], [hi])
    return int(a[0, 0]), bool(c[0, 0]), bool(m[0, 0])


def assert_twins_equal(current, requested, has, pct, lo, hi):
    k = run(kernels.clamp_updates, current, requested, has, pct, lo, hi)
    r = run(reference.clamp_updates, current, requested, has, pct, lo, hi)
    for name, a, b in zip(("applied", "clamped", "at_max"), k, r):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b, err_msg=name)
    return k


# ------------------------------------------------------------------ kernel


@BACKENDS
def test_protocol_examples(clamp):
    assert clamp1(clamp, 10, 100) == (15, True, True)
    assert clamp1(clamp, 10, 2) == (5, True, True)
    assert clamp1(clamp, 10, 12) == (12, False, False)


@BACKENDS
def test_rounding_half_away_and_at_max_rule(clamp):
    # 15 at 50%: window [7.5, 22.5] -> integer edges 8 and 23 (half away from zero).
    assert clamp1(clamp, 15, 100) == (23, True, True)
    assert clamp1(clamp, 15, 0) == (8, True, True)
    assert clamp1(clamp, 15, 22) == (22, False, False)
    assert clamp1(clamp, 15, 8) == (8, False, True)  # at the edge: full move, not clamped
    assert clamp1(clamp, 10, 15) == (15, False, True)
    assert clamp1(clamp, 10, 14.5) == (15, False, True)  # 14.5 rounds to 15
    assert clamp1(clamp, 10, 14.49) == (14, False, False)
    assert clamp1(clamp, 10, 12.5) == (13, False, False)
    # max_delta is computed as current * pct / 100 (50 * 55 / 100 = 27.5 exactly; 50 * 0.55 is not).
    assert clamp1(clamp, 50, 0, pct=55) == (23, True, True)


@BACKENDS
def test_at_least_one_unit(clamp):
    assert clamp1(clamp, 1, 10, pct=5) == (2, True, True)  # 5% of 1 would freeze it at 1
    assert clamp1(clamp, 0, 10, pct=100) == (1, True, True)  # a switched-off rule can come back
    assert clamp1(clamp, 2, 0, pct=20) == (1, True, True)
    assert clamp1(clamp, 40, 100, pct=5) == (42, True, True)  # 5% of 40 is 2 > 1: no floor


@BACKENDS
def test_hard_bounds(clamp):
    assert clamp1(clamp, 190, 1000, hi=200) == (200, True, False)  # cut short by the bound
    assert clamp1(clamp, 1, 0, lo=1) == (1, True, False)
    assert clamp1(clamp, 2, 0, lo=1) == (1, True, True)  # the edge (1) is within bounds
    assert clamp1(clamp, 300, 300, hi=200) == (200, True, False)  # current outside narrowed bounds


@BACKENDS
def test_compounding(clamp):
    values = [10]
    for _ in range(3):
        values.append(clamp1(clamp, values[-1], 1000)[0])
    assert values == [10, 15, 23, 35]  # 22.5 rounds half away from zero to 23; 34.5 to 35


@BACKENDS
def test_untouched_entries_keep_current_and_ignore_nan(clamp):
    a, c, m = run(clamp, [[10, 20], [30, 40]], [[np.nan, 25], [1e300, np.inf]],
                  [[False, True], [False, False]], 50, [0, 0], [100, 100])
    np.testing.assert_array_equal(a, [[10, 25], [30, 40]])
    assert not c.any() and not m.any()


def test_twins_edge_cases():
    currents = [0, 1, 2, 3, 7, 10, 15, 50, 90, 99, 100, 199, 200, 1000]
    offsets = [-1e300, -1e6, -50.5, -7.5, -2.5, -1.5, -0.5, -0.49999999999999994, 0.0, 0.5, 1.5,
               2.5, 7.5, 7.4999, 22.5, 1e6, 1e300]
    cur = np.array([[c] * len(offsets) for c in currents], dtype=np.int64)
    req = cur + np.array(offsets)
    has = np.ones_like(cur, dtype=bool)
    has[::3, ::2] = False
    lo = np.zeros(len(offsets), np.int64)
    hi = np.full(len(offsets), 1000, np.int64)
    hi[1::4] = 150
    lo[2::5] = 5
    for pct in (5.0, 15.0, 33.3, 50.0, 55.0, 80.0, 99.99, 100.0):
        assert_twins_equal(cur, req, has, pct, lo, hi)
    assert_twins_equal(np.zeros((0, 3), np.int64), np.zeros((0, 3)), np.zeros((0, 3), bool), 50, [0] * 3, [9] * 3)


@st.composite
def clamp_inputs(draw):
    v = draw(st.integers(0, 5))
    p = draw(st.integers(1, 10))
    ints = st.integers(-5, 1100)
    cur = np.array(draw(st.lists(st.lists(ints, min_size=p, max_size=p), min_size=v, max_size=v)),
                   dtype=np.int64).reshape(v, p)
    value = st.one_of(st.floats(-1e6, 1e6, allow_nan=False),
                      st.integers(-2000, 2000).map(lambda k: k / 2),  # exact halves
                      st.sampled_from([-1e300, 1e300]))
    req = np.array(draw(st.lists(st.lists(value, min_size=p, max_size=p), min_size=v, max_size=v)),
                   dtype=np.float64).reshape(v, p)
    has = np.array(draw(st.lists(st.lists(st.booleans(), min_size=p, max_size=p), min_size=v, max_size=v)),
                   dtype=bool).reshape(v, p)
    pct = draw(st.one_of(st.floats(5, 100), st.sampled_from([5.0, 15.0, 50.0, 80.0, 100.0])))
    a = np.array(draw(st.lists(ints, min_size=p, max_size=p)), dtype=np.int64)
    b = np.array(draw(st.lists(ints, min_size=p, max_size=p)), dtype=np.int64)
    return cur, req, has, pct, np.minimum(a, b), np.maximum(a, b)


@settings(max_examples=300, deadline=None)
@given(clamp_inputs())
def test_twins_agree_on_generated_inputs(inputs):
    cur, req, has, pct, lo, hi = inputs
    applied, clamped, at_max = assert_twins_equal(cur, req, has, pct, lo, hi)
    # Invariants of the rules.
    np.testing.assert_array_equal(applied[~has], cur[~has])
    assert np.all((applied >= lo) | ~has) and np.all((applied <= hi) | ~has)
    max_delta = np.maximum(np.abs(cur) * pct / 100.0, 1.0)
    inside = (applied >= lo) & (applied <= hi) & (cur >= lo) & (cur <= hi)
    assert np.all(np.abs(applied - cur)[has & inside] <= max_delta[has & inside] + 0.5)
    assert not (at_max & (applied == cur)).any()


# -------------------------------------------------------------- config


def test_config_defaults_presets_and_validation():
    cfg = gr.GuardrailConfig()
    assert (cfg.update_interval_min, cfg.delta_limit_pct, cfg.retention_cliff) == (60, 50.0, 0.30)
    assert (cfg.cliff_min_sample, cfg.anomaly_run) == (30, 4)
    assert cfg.lo[PARAM_INDEX["scanDailyCap"]] == 1 and cfg.hi[PARAM_INDEX["streakBonusCap"]] == 1000
    assert not cfg.lo.flags.writeable
    assert gr.GuardrailConfig.preset("conservative").delta_limit_pct == 15.0
    assert gr.GuardrailConfig.preset("aggressive").update_interval_min == 5
    assert gr.GuardrailConfig.preset("standard") == cfg
    assert gr.GuardrailConfig.preset("standard", anomaly_run=2).anomaly_run == 2
    with pytest.raises(ValueError, match="preset"):
        gr.GuardrailConfig.preset("reckless")
    with pytest.raises(AttributeError):
        cfg.delta_limit_pct = 10  # frozen
    bad = {
        "update_interval_min": [4, gr.MAX_UPDATE_INTERVAL_MIN + 1, 60.5, True, "60"],
        "delta_limit_pct": [4.9, 100.1, float("nan")],
        "retention_cliff": [-0.1, 1.1],
        "cliff_min_sample": [-1, 2.5],
        "anomaly_run": [0],
    }
    for field, values in bad.items():
        for value in values:
            with pytest.raises(ValueError, match=field):
                gr.GuardrailConfig(**{field: value})
    hi = DEFAULT_VECTOR * 100
    with pytest.raises(ValueError, match=r"hi\[scanXp\].*absolute bounds \[0, 200\]"):
        gr.GuardrailConfig(hi=hi)
    with pytest.raises(ValueError, match="lo = 20 > hi = 10"):
        gr.GuardrailConfig(lo=DEFAULT_VECTOR * 2, hi=DEFAULT_VECTOR)
    with pytest.raises(ValueError, match="lo must be 10 integers"):
        gr.GuardrailConfig(lo=[0, 1])


# -------------------------------------------------------------- pipeline


def make(n=3, status=gr.RUNNING, **cfg):
    return gr.Guardrails(n, gr.GuardrailConfig(**cfg), status=status)


def proposal(n=3, **changes):
    """(current, requested, has) with default configs; ``changes`` maps 'v<k>_<key>' -> value."""
    cur = np.tile(DEFAULT_VECTOR, (n, 1))
    req = np.full(cur.shape, np.nan)
    has = np.zeros(cur.shape, dtype=bool)
    for name, value in changes.items():
        v, key = name[1:].split("_", 1)
        req[int(v), PARAM_INDEX[key]] = value
        has[int(v), PARAM_INDEX[key]] = True
    return cur, req, has


def one(g, minute, v, value, key="scanXp", cur=None):
    """Submit one proposal of variant v; returns (new_config, the record or None)."""
    c, req, has = proposal(g.n_variants, **{f"v{v}_{key}": value})
    if cur is not None:
        c = cur
    new, recs = g.submit(minute, c, req, has)
    assert len(recs) <= 1
    return new, (recs[0] if recs else None)


def states_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_a_huge_request_is_recorded_exactly_and_clamped():
    """A request far beyond int64 is a finite number: the record keeps its exact rounded value (a
    Python int), and the delta clamp applies as for any other request."""
    g = make()
    new, rec = one(g, 30, 1, 1e20)
    assert rec["accepted"] and rec["economyOverrides"] == {"scanXp": 10 ** 20}
    assert type(rec["economyOverrides"]["scanXp"]) is int
    assert rec["clampedDeltas"]["scanXp"]["requested"] == 10 ** 20 and rec["appliedConfig"] == {"scanXp": 15}
    assert new[1, PARAM_INDEX["scanXp"]] == 15


def test_accepted_record_shape_and_new_config():
    g = make()
    cur, req, has = proposal(v1_scanXp=100, v1_feedbackXp=16.4, v2_photoXp=12)
    new, recs = g.submit(30, cur, req, has)
    assert [r["variant"] for r in recs] == [1, 2]
    r1 = recs[0]
    assert r1 == {
        "decisionLogId": "dec_000001", "variant": 1, "minute": 30, "accepted": True,
        "economyOverrides": {"scanXp": 100, "feedbackXp": 16},
        "appliedConfig": {"scanXp": 15, "feedbackXp": 16},
        "clampedDeltas": {"scanXp": {"previous": 10, "requested": 100, "applied": 15, "clamped": True,
                                     "deltaPercent": 50.0}},
        "nextAllowedUpdate": 90, "anomaly": False,
    }
    assert recs[1]["decisionLogId"] == "dec_000002" and recs[1]["clampedDeltas"] == {}
    expected = np.tile(DEFAULT_VECTOR, (3, 1))
    expected[1, PARAM_INDEX["scanXp"]] = 15
    expected[1, PARAM_INDEX["feedbackXp"]] = 16
    expected[2, PARAM_INDEX["photoXp"]] = 12
    np.testing.assert_array_equal(new, expected)
    np.testing.assert_array_equal(cur, np.tile(DEFAULT_VECTOR, (3, 1)))  # input not modified
    assert new.dtype == np.int64


def test_compounding_through_the_pipeline():
    g = make(update_interval_min=60)
    cur = None
    seen = []
    for minute in (0, 60, 120):
        cur, rec = one(g, minute, 1, 1000, cur=cur)
        assert rec["accepted"]
        seen.append(rec["appliedConfig"]["scanXp"])
    assert seen == [15, 23, 35]


def test_control_lock_wins_over_everything():
    for status in gr.STATUSES:
        g = make(status=status)
        g.trip_breaker(0)
        _, rec = one(g, 0, 0, 100)
        assert rec["rejectionReason"] == gr.CONTROL_VARIANT_IMMUTABLE
        assert rec["accepted"] is False and rec["nextAllowedUpdate"] is None
        assert "appliedConfig" not in rec


def test_status_gate_before_breaker():
    for status in set(gr.STATUSES) - {gr.RUNNING}:
        g = make(status=status)
        g.trip_breaker(1)
        new, rec = one(g, 0, 1, 100)
        assert rec["rejectionReason"] == gr.EXPERIMENT_NOT_RUNNING
        assert new[1, 0] == 10
    g = make(status=gr.RUNNING)
    assert one(g, 0, 1, 100)[1]["accepted"]


def test_breaker_before_rate_limit_and_reset_only_by_researcher():
    g = make()
    assert one(g, 0, 1, 12)[1]["accepted"]
    assert g.trip_breaker(1) is True and g.trip_breaker(1) is False
    rec = one(g, 10, 1, 13)[1]
    assert rec["rejectionReason"] == gr.CIRCUIT_BREAKER_ACTIVE and rec["nextAllowedUpdate"] is None
    assert one(g, 500, 1, 13)[1]["rejectionReason"] == gr.CIRCUIT_BREAKER_ACTIVE
    assert g.check_health([1.0, 1.0, 1.0], [100, 100, 100]) == []  # healthy again: still open
    assert g.breaker_open[1]
    assert g.reset_breaker(1) is True and g.reset_breaker(1) is False
    assert one(g, 500, 1, 13)[1]["accepted"]


def test_rate_limit_next_allowed_and_rejections_do_not_consume():
    g = make(update_interval_min=60)
    assert g.next_allowed_update(1) == -np.inf
    assert one(g, 7, 1, 12)[1]["accepted"]
    assert g.next_allowed_update(1) == 67
    for minute in (8, 30, 66):
        rec = one(g, minute, 1, 13)[1]
        assert rec["rejectionReason"] == gr.RATE_LIMITED and rec["nextAllowedUpdate"] == 67
    assert g.next_allowed_update(1) == 67  # rejected attempts did not move it
    rec = one(g, 67, 1, 13)[1]
    assert rec["accepted"] and rec["nextAllowedUpdate"] == 127
    # The limit is per variant.
    assert one(g, 67, 2, 13)[1]["accepted"]


def test_holds_yield_no_record_and_do_not_consume():
    g = make()
    before = g.state_dict()
    for value in (10, 10.4, 9.5):  # all round (half away from zero) to the current 10
        new, rec = one(g, 0, 1, value)
        assert rec is None
        np.testing.assert_array_equal(new, np.tile(DEFAULT_VECTOR, (3, 1)))
    assert one(g, 0, 0, 10)[1] is None  # a control hold is not an attempt either
    states_equal(g.state_dict(), before)
    rec = one(g, 0, 1, 11)[1]
    assert rec["accepted"] and rec["decisionLogId"] == "dec_000001"
    # A proposal touching a held key and a changed key is an update of both keys.
    cur, req, has = proposal(v2_scanXp=10, v2_photoXp=11)
    _, recs = g.submit(0, cur, req, has)
    assert recs[0]["appliedConfig"] == {"scanXp": 10, "photoXp": 11}


def test_check_health_retention_cliff():
    g = make(n=4, retention_cliff=0.3, cliff_min_sample=30)
    tripped = g.check_health([0.0, 0.29, 0.31, 0.1], [100, 30, 100, 29])
    assert tripped == [1]  # control never; v2 above the cliff; v3 below the minimum sample
    assert g.breaker_open.tolist() == [False, True, False, False]
    assert g.check_health([0.0, 0.0, np.nan, 0.0], [100, 100, 100, 29]) == []  # NaN never trips
    assert g.check_health([0.0, 0.0, 0.0, 0.0], [100, 100, 100, 30]) == [2, 3]
    assert one(g, 0, 1, 12)[1]["rejectionReason"] == gr.CIRCUIT_BREAKER_ACTIVE
    with pytest.raises(ValueError, match="retention"):
        g.check_health([0.1, 0.1], [100, 100])


def test_lifecycle_legal_path():
    g = make(status=gr.DRAFT)
    assert g.status == gr.DRAFT
    assert [g.launch(), g.start(), g.pause(), g.resume(), g.pause(), g.complete(), g.archive()] == [
        gr.RECRUITING, gr.RUNNING, gr.PAUSED, gr.RUNNING, gr.PAUSED, gr.COMPLETED, gr.ARCHIVED]
    g = make(status=gr.DRAFT)
    assert g.archive() == gr.ARCHIVED
    g = make(status=gr.RUNNING)
    assert g.complete() == gr.COMPLETED
    with pytest.raises(ValueError, match="status"):
        gr.Guardrails(2, status="LIVE")


@pytest.mark.parametrize("status,action", [
    (s, a) for s, a in itertools.product(gr.STATUSES, ["launch", "start", "pause", "resume", "complete", "archive"])
    if a not in gr.TRANSITIONS[s]])
def test_lifecycle_illegal_transitions(status, action):
    g = make(status=status)
    with pytest.raises(ValueError) as err:
        getattr(g, action)()
    msg = str(err.value)
    assert status in msg and action in msg
    assert all(legal in msg for legal in gr.TRANSITIONS[status])
    assert g.status == status


def test_anomaly_after_exactly_anomaly_run_full_delta_updates():
    g = make(update_interval_min=5, anomaly_run=3)
    cur = None
    flags = []
    for k in range(4):
        cur, rec = one(g, 5 * k, 1, 10_000, cur=cur)
        flags.append(rec["anomaly"])
        # A rejected attempt in between neither resets nor extends the run.
        assert one(g, 5 * k + 1, 1, 10_000, cur=cur)[1]["rejectionReason"] == gr.RATE_LIMITED
    assert flags == [False, False, True, True]
    assert g.anomaly[1] and g.consecutive_max[1] == 4 and not g.anomaly[2]
    cur, rec = one(g, 20, 1, cur[1, 0] + 1, cur=cur)  # a small move ends the run
    assert rec["anomaly"] is False and not g.anomaly[1] and g.consecutive_max[1] == 0
    cur, rec = one(g, 25, 1, 0, cur=cur)  # a full move downwards starts a new run
    assert g.consecutive_max[1] == 1 and rec["anomaly"] is False


def test_full_delta_means_the_edge_of_the_window_not_clamped():
    hi = DEFAULT_VECTOR * 3
    hi[PARAM_INDEX["photoXp"]] = 12
    g = make(update_interval_min=5, anomaly_run=2, hi=hi)
    _, rec = one(g, 0, 1, 15)  # exactly +50%: not clamped, but a full-delta move
    assert rec["clampedDeltas"] == {} and g.consecutive_max[1] == 1
    _, rec = one(g, 0, 2, 15)
    _, rec = one(g, 5, 2, 100, key="photoXp")  # clamped by the hard bound at 12: not a full move
    assert rec["clampedDeltas"]["photoXp"]["applied"] == 12 and g.consecutive_max[2] == 0


def test_decision_ids_are_sequential_across_calls_and_rejections():
    g = make()
    cur, req, has = proposal(v0_scanXp=11, v1_scanXp=11, v2_scanXp=11)
    _, r1 = g.submit(0, cur, req, has)
    _, r2 = g.submit(1, cur, req, has)
    ids = [r["decisionLogId"] for r in r1 + r2]
    assert ids == [f"dec_{k:06d}" for k in range(1, 7)]
    assert [r["accepted"] for r in r1 + r2] == [False, True, True, False, False, False]
    assert g.n_decisions == 6


def test_variants_argument_selects_rows():
    g = make()
    cur, req, has = proposal(v1_scanXp=12, v2_scanXp=12)
    req[0, 0] = np.nan  # an ignored row may hold anything
    has[0, 0] = True
    new, recs = g.submit(0, cur, req, has, variants=[2])
    assert [r["variant"] for r in recs] == [2]
    assert new[1, 0] == 10 and new[2, 0] == 12
    with pytest.raises(ValueError, match="variant"):
        g.submit(0, cur, req, has, variants=[3])


def test_one_clamp_call_for_all_passing_variants():
    calls = []

    def spy(current, *args):
        calls.append(current.shape)
        reference.clamp_updates(current, *args)

    g = gr.Guardrails(4, status=gr.RUNNING, clamp=spy)
    cur, req, has = proposal(4, v0_scanXp=12, v1_scanXp=12, v2_photoXp=99, v3_scanXp=12)
    g.trip_breaker(3)
    _, recs = g.submit(0, cur, req, has)
    assert calls == [(2, N_PARAMS)]
    assert [r["accepted"] for r in recs] == [False, True, True, False]
    g.submit(1, cur, req, has)  # nothing passes: no call
    assert calls == [(2, N_PARAMS)]


def test_backends_give_identical_decisions():
    rng = np.random.default_rng(7)
    gs = [gr.Guardrails(3, gr.GuardrailConfig.preset("aggressive"), status=gr.RUNNING, clamp=c)
          for c in (kernels.clamp_updates, reference.clamp_updates)]
    curs = [np.tile(DEFAULT_VECTOR, (3, 1))] * 2
    for minute in range(0, 200, 3):
        req = rng.uniform(-20, 400, size=(3, N_PARAMS))
        has = rng.random((3, N_PARAMS)) < 0.3
        out = [g.submit(minute, c, req, has) for g, c in zip(gs, curs)]
        assert out[0][1] == out[1][1]
        np.testing.assert_array_equal(out[0][0], out[1][0])
        curs = [o[0] for o in out]
    assert gs[0].n_decisions > 20


def test_bad_input_raises_and_leaves_state_untouched():
    g = make()
    one(g, 0, 1, 12)
    g.trip_breaker(2)
    before = g.state_dict()
    cur, req, has = proposal(v1_scanXp=200, v2_photoXp=np.nan)
    with pytest.raises(ValueError, match="variant 2, parameter photoXp"):
        g.submit(100, cur, req, has)
    req[2, PARAM_INDEX["photoXp"]] = np.inf
    with pytest.raises(ValueError, match="variant 2, parameter photoXp.*not finite"):
        g.submit(100, cur, req, has)
    req[2, PARAM_INDEX["photoXp"]] = 11
    bad_calls = [
        (100, cur[:2], req, has),
        (100, cur, req[:, :3], has),
        (100, cur, req, has.astype(int)),
        (np.nan, cur, req, has),
        (100, cur + 0.5, req, has),
    ]
    for args in bad_calls:
        with pytest.raises(ValueError):
            g.submit(*args)
    with pytest.raises(ValueError, match="variant"):
        g.trip_breaker(5)
    states_equal(g.state_dict(), before)
    _, recs = g.submit(100, cur, req, has)  # the same state still works
    assert [r["decisionLogId"] for r in recs] == ["dec_000002", "dec_000003"]


def test_pickle_copy_and_state_dict_round_trip():
    for clamp in (kernels.clamp_updates, reference.clamp_updates):
        g = gr.Guardrails(3, gr.GuardrailConfig(anomaly_run=2), status=gr.RUNNING, clamp=clamp)
        one(g, 0, 1, 100)
        g.trip_breaker(2)
        g.pause()
        for h in (pickle.loads(pickle.dumps(g)), copy.deepcopy(g), copy.copy(g), g.copy()):
            states_equal(h.state_dict(), g.state_dict())
            assert h.config == g.config and h.clamp is clamp
            h.resume()
            h.reset_breaker(2)
            assert one(h, 60, 1, 100)[1]["accepted"]
            assert g.status == gr.PAUSED and g.breaker_open[2] and g.n_decisions == 1  # independent
    saved = g.state_dict()
    fresh = gr.Guardrails(3, status=gr.DRAFT)
    fresh.load_state_dict(saved)
    states_equal(fresh.state_dict(), saved)
    assert fresh.next_allowed_update(1) == 60
    broken = dict(saved, breaker_open=[True])
    before = fresh.state_dict()
    with pytest.raises(ValueError, match="breaker_open"):
        fresh.load_state_dict(broken)
    states_equal(fresh.state_dict(), before)
