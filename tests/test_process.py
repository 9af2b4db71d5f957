"""Process mining: the PM4Py-style export, variants and the positive/negative comparison, and the performance
summary, each against a brute-force Python computation on a small random log with ties, state changes and
several outcomes per case; discovery with pm4py (the optional ``process`` extra: skipped where it is missing,
a failure in CI); and that importing arena never imports pm4py or pandas."""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from arena_env.replay import process as P
from arena_env.replay import synthetic
from arena_env.replay.log import load_log

ROOT = Path(__file__).resolve().parents[1]
DAY = 86_400_000_000
T0 = synthetic.T0_US
TYPES = ("entity.created", "interaction.occurred", "state.changed", "decision.executed", "outcome.recorded")
MANIFEST = {"name": "t", "decision_points": [{"name": "d", "trigger": "decision.executed"}],
            "allowed_actions": ["wait", "call"],
            "outcomes": {"positive": ["converted", "won"], "negative": ["lost"], "neutral": ["paused"]}}
GROUP = {"converted": "positive", "won": "positive", "lost": "negative", "paused": "neutral"}
CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _rows(n_cases: int, seed: int) -> list[dict]:
    """Random events, shuffled: ties in time (ordered by seq), states set on some events, resources on some,
    outcomes listed and unlisted (``note``), several per case."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_cases):
        t = T0 + int(rng.integers(0, 10 * DAY))
        for j in range(int(rng.integers(1, 9))):
            if j:
                t += 0 if rng.random() < 0.2 else int(rng.integers(1, 3 * DAY))
            kind = str(rng.choice(TYPES)) if j else "entity.created"
            rows.append({
                "case_id": f"c{c:03d}", "event_id": f"c{c:03d}-{j}", "timestamp": t, "seq": j, "event_type": kind,
                "actor_id": [None, "ann", "bob"][int(rng.integers(0, 3))],
                "state_after": [None, None, "open", "working", "closed"][int(rng.integers(0, 5))],
                "action": str(rng.choice(["wait", "call"])) if kind == "decision.executed" else None,
                "outcome": str(rng.choice(["converted", "won", "lost", "paused", "note"]))
                if kind == "outcome.recorded" else None})
    return [rows[i] for i in rng.permutation(len(rows))]


def _table(rows: list[dict]) -> pa.Table:
    cols = {k: [r[k] for r in rows] for k in rows[0]}
    cols["timestamp"] = pa.array(cols["timestamp"], pa.timestamp("us", tz="UTC"))
    return pa.table(cols)


def _cases(rows: list[dict]) -> dict[str, list[dict]]:
    """Brute force: events per case (cases in order of first appearance), sorted by time then seq."""
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["case_id"], []).append(r)
    return {c: sorted(ev, key=lambda r: (r["timestamp"], r["seq"])) for c, ev in out.items()}


def _outcome(events: list[dict]) -> str:
    listed = [r["outcome"] for r in events if r["outcome"] in GROUP]
    return GROUP[listed[-1]] if listed else "none"


def _act(r: dict) -> str:
    return r["event_type"] + (f":{r['action']}" if r["action"] else "")


@pytest.fixture(scope="module")
def world():
    rows = _rows(60, seed=5)
    return load_log(_table(rows), MANIFEST), _cases(rows)


# ------------------------------------------------------------------------------------------------
# the export
# ------------------------------------------------------------------------------------------------

def test_export_columns_and_values(world):
    log, cases = world
    out = P.to_pm4py(log)
    assert out.column_names == [P.CASE_ID, P.ACTIVITY, P.TIMESTAMP, P.RESOURCE, P.OUTCOME]
    assert out.schema.field(P.TIMESTAMP).type == pa.timestamp("us", tz="UTC")
    flat = [r for ev in cases.values() for r in ev]
    assert out.column(P.CASE_ID).to_pylist() == [r["case_id"] for r in flat]
    assert out.column(P.ACTIVITY).to_pylist() == [r["event_type"] for r in flat]
    ts = out.column(P.TIMESTAMP).to_pylist()
    assert all(t.utcoffset() == dt.timedelta(0) for t in ts)
    assert [int(t.timestamp()) * 1_000_000 + t.microsecond for t in ts] == [r["timestamp"] for r in flat]
    assert out.column(P.RESOURCE).to_pylist() == [r["actor_id"] for r in flat]
    assert out.column(P.OUTCOME).to_pylist() == [_outcome(cases[r["case_id"]]) for r in flat]
    assert list(P.case_outcome(log)) == [_outcome(ev) for ev in cases.values()]
    assert set(P.case_outcome(log)) == set(P.OUTCOME_GROUPS)  # the random log has every group


def test_export_options(world):
    log, cases = world
    flat = [r for ev in cases.values() for r in ev]
    out = P.to_pm4py(log, activity=("event_type", "action"), resource=None, lifecycle=True,
                     columns=("event_id", "state_after"))
    assert out.column_names == [P.CASE_ID, P.ACTIVITY, P.TIMESTAMP, P.LIFECYCLE, P.OUTCOME, "event_id", "state_after"]
    assert out.column(P.ACTIVITY).to_pylist() == [_act(r) for r in flat]
    assert set(out.column(P.LIFECYCLE).to_pylist()) == {"complete"}
    assert out.column("event_id").to_pylist() == [r["event_id"] for r in flat]
    by_fn = P.to_pm4py(log, activity=lambda lg: np.char.upper(lg.column("event_type").astype(str)))
    assert by_fn.column(P.ACTIVITY).to_pylist() == [r["event_type"].upper() for r in flat]
    # the other kind of resource column
    assert P.to_pm4py(log, resource="state_after").column(P.RESOURCE).to_pylist() == [r["state_after"] for r in flat]


def test_export_errors(world):
    log, _ = world
    with pytest.raises(ValueError, match=r"activity='action': \d+ of \d+ events have no activity .*case 'c\d+'"):
        P.to_pm4py(log, activity="action")
    # every part missing on some events (pyarrow 26's null_handling="skip" would drop those rows silently)
    with pytest.raises(ValueError, match="have no activity"):
        P.to_pm4py(log, activity=("action", "outcome"))
    with pytest.raises(ValueError, match="activity='nope': the log has no such column; the columns are case_id"):
        P.to_pm4py(log, activity="nope")
    with pytest.raises(ValueError, match="resource='who': the log has no such column"):
        P.to_pm4py(log, resource="who")
    with pytest.raises(ValueError, match="returned 3 labels"):
        P.to_pm4py(log, activity=lambda lg: ["a", "b", "c"])
    with pytest.raises(ValueError, match="one of the export's own columns"):
        P.to_pm4py(log, columns=(P.ACTIVITY,))
    with pytest.raises(TypeError, match="expected a column name"):
        P.to_pm4py(log, activity=3)


def test_export_to_pandas(world):
    pd = pytest.importorskip("pandas", reason="pandas comes with the process extra (pm4py); not a dependency")
    log, _ = world
    df = P.to_pm4py(log, to_pandas=True)
    table = P.to_pm4py(log)
    assert list(df.columns) == table.column_names
    assert str(df[P.TIMESTAMP].dtype) == "datetime64[us, UTC]"
    assert df[P.CASE_ID].tolist() == table.column(P.CASE_ID).to_pylist()
    assert df[P.TIMESTAMP].iloc[0] == pd.Timestamp(table.column(P.TIMESTAMP)[0].as_py())


def test_leads_outcomes_match_the_truth():
    table, man, truth = synthetic.leads(200, seed=2)
    log = load_log(table, man)
    np.testing.assert_array_equal(P.case_outcome(log), np.where(truth["converted"], "positive", "negative"))


# ------------------------------------------------------------------------------------------------
# variants
# ------------------------------------------------------------------------------------------------

def _brute_variants(cases, act=lambda r: r["event_type"]):
    var = {c: tuple(act(r) for r in ev) for c, ev in cases.items()}
    out = {c: _outcome(ev) for c, ev in cases.items()}
    first = {}
    for i, v in enumerate(var.values()):
        first.setdefault(v, i)
    return var, out, first


@pytest.mark.parametrize("act", ["event_type", ("event_type", "action")])
def test_variants_against_brute_force(world, act):
    log, cases = world
    var, out, first = _brute_variants(cases, (lambda r: r["event_type"]) if act == "event_type" else _act)
    count = Counter(var.values())
    pos = Counter(v for c, v in var.items() if out[c] == "positive")
    expect = [(v, count[v], pos[v] / count[v]) for v in sorted(count, key=lambda v: (-count[v], first[v]))]
    got = P.variants(log, activity=act)
    assert [(g.activities, g.count) for g in got] == [(e[0], e[1]) for e in expect]
    assert [g.positive_share for g in got] == pytest.approx([e[2] for e in expect], rel=1e-12)
    assert sum(g.count for g in got) == log.n_cases


def test_compare_variants_against_brute_force(world):
    log, cases = world
    var, out, first = _brute_variants(cases)
    group = {g: [c for c in cases if out[c] == g] for g in ("positive", "negative")}
    n = {g: len(cs) for g, cs in group.items()}
    res = P.compare_variants(log, top=4)
    assert (res.n_positive, res.n_negative, res.n_other) == (n["positive"], n["negative"],
                                                            len(cases) - n["positive"] - n["negative"])
    for g, other, got in (("positive", "negative", res.positive), ("negative", "positive", res.negative)):
        cnt = Counter(var[c] for c in group[g])
        oth = Counter(var[c] for c in group[other])
        top = sorted(cnt, key=lambda v: (-cnt[v], first[v]))[:4]
        assert [(v.activities, v.count) for v in got] == [(v, cnt[v]) for v in top]
        assert [v.share for v in got] == pytest.approx([cnt[v] / n[g] for v in top])
        assert [v.other_share for v in got] == pytest.approx([oth[v] / n[other] for v in top])
    acts = {r["event_type"] for ev in cases.values() for r in ev}
    assert {a.activity for a in res.activities} == acts
    for a in res.activities:
        k = {g: sum(a.activity in var[c] for c in group[g]) for g in group}
        assert (a.positive, a.negative) == (k["positive"], k["negative"])
        assert a.positive_share == pytest.approx(k["positive"] / n["positive"])
        assert a.negative_share == pytest.approx(k["negative"] / n["negative"])
        assert a.difference == pytest.approx(a.positive_share - a.negative_share)
    diffs = [a.difference for a in res.activities]
    assert diffs == sorted(diffs, reverse=True)
    assert all(a.difference > 0 for a in res.over_positive) and all(a.difference < 0 for a in res.over_negative)
    assert [a.difference for a in res.over_negative] == sorted(a.difference for a in res.over_negative)
    with pytest.raises(ValueError, match="top must be an integer >= 1"):
        P.compare_variants(log, top=0)


def test_compare_variants_finds_the_planted_difference():
    # leads: a reminder raises conversion for warm leads, so send_reminder is over-represented in positive cases
    table, man, _ = synthetic.leads(3000, seed=4)
    res = P.compare_variants(load_log(table, man), activity=("event_type", "action"))
    assert res.over_positive[0].activity == "decision.executed:send_reminder"
    assert res.n_positive + res.n_negative == 3000 and res.n_other == 0


# ------------------------------------------------------------------------------------------------
# performance
# ------------------------------------------------------------------------------------------------

def _percentile(xs, q):
    xs = sorted(xs)
    pos = q / 100 * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def test_performance_against_brute_force(world):
    log, cases = world
    perf = P.performance(log, activity=("event_type", "action"), top=None)

    d = [(ev[-1]["timestamp"] - ev[0]["timestamp"]) / DAY for ev in cases.values()]
    cd = perf.case_durations
    assert cd.count == len(cases)
    assert cd.mean == pytest.approx(statistics.fmean(d), rel=1e-12)
    assert cd.median == pytest.approx(statistics.median(d), rel=1e-12)
    assert cd.p90 == pytest.approx(_percentile(d, 90), rel=1e-12)
    assert cd.max == pytest.approx(max(d))
    np.testing.assert_allclose(cd.days, d, rtol=1e-12)

    visits, total, seen = Counter(), defaultdict(int), defaultdict(set)
    for c, ev in cases.items():
        cur, since = None, None
        for r in ev:
            if r["state_after"] is not None and r["state_after"] != cur:
                if cur is not None:
                    total[cur] += r["timestamp"] - since
                cur, since = r["state_after"], r["timestamp"]
                visits[cur] += 1
                seen[cur].add(c)
        if cur is not None:
            total[cur] += ev[-1]["timestamp"] - since
    got = {s.state: s for s in perf.time_in_state}
    assert set(got) == set(visits)
    for s, st in got.items():
        assert (st.visits, st.cases) == (visits[s], len(seen[s]))
        assert st.total_days == pytest.approx(total[s] / DAY, rel=1e-12)
        assert st.mean_days == pytest.approx(total[s] / DAY / visits[s], rel=1e-12)
    assert [s.total_days for s in perf.time_in_state] == sorted((s.total_days for s in perf.time_in_state),
                                                                reverse=True)

    waits = defaultdict(list)
    for ev in cases.values():
        for a, b in zip(ev, ev[1:]):
            waits[_act(a), _act(b)].append((b["timestamp"] - a["timestamp"]) / DAY)
    got = {(t.source, t.target): t for t in perf.bottlenecks}
    assert set(got) == set(waits)
    for k, t in got.items():
        assert t.count == len(waits[k])
        assert t.mean_days == pytest.approx(statistics.fmean(waits[k]), rel=1e-12)
        assert t.median_days == pytest.approx(statistics.median(waits[k]), rel=1e-12)
        assert t.total_days == pytest.approx(sum(waits[k]), rel=1e-12)
    means = [t.mean_days for t in perf.bottlenecks]
    assert means == sorted(means, reverse=True)
    top = P.performance(log, activity=("event_type", "action"), top=3, min_count=2).bottlenecks
    assert list(top) == [t for t in perf.bottlenecks if t.count >= 2][:3]


def test_performance_edge_cases(world):
    log, _ = world
    table, man, _ = synthetic.leads(50, seed=1)
    leads = load_log(table, man)
    assert P.performance(leads).time_in_state == ()  # no state_after in the leads log
    one = load_log(pa.table({"case_id": ["a"], "event_id": ["e"], "event_type": ["entity.created"],
                             "timestamp": pa.array([T0], pa.timestamp("us", tz="UTC")),
                             "state_after": ["open"]}), MANIFEST)
    perf = P.performance(one)
    assert perf.case_durations.count == 1 and perf.case_durations.p90 == 0.0
    assert perf.time_in_state == (P.StateTime("open", 1, 1, 0.0, 0.0),) and perf.bottlenecks == ()
    empty = leads.filter_cases(np.zeros(leads.n_cases, bool))
    assert P.to_pm4py(empty).num_rows == 0 and P.variants(empty) == [] and P.compare_variants(empty).activities == ()
    perf = P.performance(empty)
    assert perf.case_durations.count == 0 and np.isnan(perf.case_durations.mean) and perf.bottlenecks == ()
    with pytest.raises(ValueError, match="the log has no events"):
        P.discover(empty)
    with pytest.raises(ValueError, match="state='phase': the log has no such column"):
        P.performance(log, state="phase")
    with pytest.raises(ValueError, match="min_count must be an integer >= 1"):
        P.performance(log, min_count=0)


# ------------------------------------------------------------------------------------------------
# discovery (pm4py, the optional process extra)
# ------------------------------------------------------------------------------------------------

def _pm4py():
    try:
        import pm4py
    except ModuleNotFoundError:
        if CI:
            pytest.fail("CI is set but pm4py is not installed: `make install` installs the process extra "
                        "(pip install -e \".[process]\"); discovery must be tested in CI")
        pytest.skip("pm4py is not installed (the optional process extra: pip install -e \".[process]\")")
    return pm4py


def test_pm4py_is_installed_in_ci():
    if not CI:
        pytest.skip("only checked with CI set")
    _pm4py()


def test_discover_inductive_fits_the_log():
    pm4py = _pm4py()
    table, man, _ = synthetic.leads(300, seed=6)
    log = load_log(table, man)
    act = ("event_type", "action")
    tree = P.discover(log, activity=act)
    assert type(tree).__name__ == "ProcessTree"
    labels = {n.label for n in pm4py.objects.process_tree.utils.generic.get_leaves(tree) if n.label}
    assert labels == set(P.to_pm4py(log, activity=act).column(P.ACTIVITY).to_pylist())
    net, im, fm = P.discover(log, activity=act, petri_net=True)
    df = P.to_pm4py(log, activity=act, to_pandas=True)
    fit = pm4py.fitness_token_based_replay(df, net, im, fm, activity_key=P.ACTIVITY, case_id_key=P.CASE_ID,
                                           timestamp_key=P.TIMESTAMP)
    assert fit["log_fitness"] == pytest.approx(1.0)  # the inductive miner (noise 0) fits every trace


@pytest.mark.parametrize("algorithm", ["alpha", "heuristics"])
def test_discover_petri_nets(world, algorithm):
    _pm4py()
    log, cases = world
    net, im, fm = P.discover(log, algorithm)
    assert {t.label for t in net.transitions if t.label} <= set(TYPES) and len(im) == 1 and len(fm) == 1
    with pytest.raises(ValueError, match="gives a Petri net only"):
        P.discover(log, algorithm, petri_net=False)


def test_pm4py_variants_agree_with_ours(world):
    pm4py = _pm4py()
    log, _ = world
    df = P.to_pm4py(log, to_pandas=True)
    theirs = pm4py.get_variants(df, activity_key=P.ACTIVITY, case_id_key=P.CASE_ID, timestamp_key=P.TIMESTAMP)
    assert {v.activities: v.count for v in P.variants(log)} == dict(theirs)


def test_discover_errors(world, monkeypatch):
    log, _ = world
    with pytest.raises(ValueError, match="algorithm='ilp': expected one of inductive, alpha, heuristics"):
        P.discover(log, "ilp")
    monkeypatch.setitem(sys.modules, "pm4py", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"needs pm4py \(AGPL-3.0\), an optional extra: pip install -e"):
        P.discover(log)


def test_importing_arena_does_not_import_pm4py():
    code = ("import sys, arena_env, arena_env.replay, arena_env.replay.process\n"
            "print(sorted(m for m in ('pm4py', 'pandas', 'pyarrow') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
    assert res.stderr == ""


def test_discover_prints_no_banner():
    _pm4py()
    code = ("from arena_env.replay import process, synthetic\nfrom arena_env.replay.log import load_log\n"
            "t, m, _ = synthetic.leads(20)\nprint(type(process.discover(load_log(t, m))).__name__)")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ProcessTree"
    assert "AGPL" not in res.stderr and "Welcome" not in res.stderr, res.stderr
