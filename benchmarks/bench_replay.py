#!/usr/bin/env python
"""Replay throughput: load, decision-point extraction and evaluation of a 1,000,000-event log.

Run from the checkout::

    .venv/bin/python benchmarks/bench_replay.py              # 50,000 cases x 20 events, 3 repeats, ~1 minute
    .venv/bin/python benchmarks/bench_replay.py --quick      # 1,000 cases (20,000 events), 1 repeat: smoke run
    .venv/bin/python benchmarks/bench_replay.py --profile    # also a cProfile of one run, top functions printed

The log is :func:`arena_env.replay.synthetic.leads` with ``interactions=(16, 17)``: every case (lead) has
exactly 20 events (created, 16 interactions, decision requested and executed, outcome), seed 0.  It is
written to Parquet in a temporary directory (not timed).  One sample times, in this order and each
stage on its own (``time.perf_counter``, the garbage collector left on):

1. **load**: ``load_log(parquet_file, manifest)`` -- read, validate every row, sort;
2. **extract**: ``prepare(log)`` -- running aggregates, decision points, snapshots, logged actions,
   outcomes;
3. **evaluate**: for ``ipw`` and for ``dr``: ``metrics.usable``, then ``metrics.evaluate_policies`` of
   the five baselines (Random, Constant ``send_reminder``, Threshold ``score >= 0.5``, Rule
   ``segment == 'b' -> call, score >= 0.3 -> send_reminder, else wait``, Logged; the first is the
   baseline of the paired comparisons) with ``n_bootstrap=200``, precision@10/100 and the positive
   and negative rates; for ``dr`` the cross-fitted reward models (value and both rates, 3 folds of
   scikit-learn's LogisticRegression each) are fitted inside the timed stage (``fit`` below).

``total`` = load + extract + evaluate of the same sample.  One untimed warm-up run (imports, first
touch) comes first; every figure is the median over ``--repeat`` samples, and events/s is the log's
events divided by the stage's seconds.  The **timer** variant adds a decision point ``nudge``
(``trigger: timer.elapsed``, ``every: 1d``, condition ``days_since_last_interaction > 1``) to the same
manifest: timers multiply the rows the snapshots are built for (about 1.2 M daily ticks here, of which
the condition keeps a share), so its extraction is timed separately, followed by the same evaluation.
Target: load + extract + evaluate of the 1M-event log under 5 s (``targets.total_under_5s``).

Writes one JSON file (default ``benchmarks/results/bench_replay.json``; ``--quick``: ``runs/benchmarks/bench_replay-quick.json``): the command, the machine and
library versions, the sizes, every sample per stage, the medians, events/s, the CPUs other processes
kept busy during each sample (``foreign_cpus``), and a fingerprint of the results (each policy's
estimates), so that two runs can be checked to compute the same thing.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from bench_env import Load, machine, out_help, resolve_out  # noqa: E402

from arena_env.replay import synthetic  # noqa: E402
from arena_env.replay import policies as P  # noqa: E402
from arena_env.replay.log import load_log  # noqa: E402
from arena_env.replay.metrics import evaluate_policies, models, usable  # noqa: E402
from arena_env.replay.snapshots import prepare  # noqa: E402

TARGET_S = 5.0
EVENTS_PER_CASE = 20
N_BOOTSTRAP = 200
ESTIMATORS = ("ipw", "dr")
STAGES = ("load", "extract", "evaluate", "total")


def baselines() -> list:
    return [P.Random(), P.Constant("send_reminder"), P.Threshold("score", 0.5, "send_reminder", "wait"),
            P.Rule([("segment == 'b'", "call"), ("score >= 0.3", "send_reminder")], default="wait"), P.Logged()]


def timer_manifest(man: dict) -> dict:
    """The leads manifest with a daily timer decision point added (every action allowed: a tick can fall
    between a decision's request and its execution, and then takes the logged action)."""
    nudge = {"name": "nudge", "trigger": "timer.elapsed", "every": "1d", "condition": "days_since_last_interaction > 1"}
    return {**man, "decision_points": [*man["decision_points"], nudge]}


def evaluate(rep, n_bootstrap: int, seed: int = 0) -> tuple[dict, dict]:
    """The evaluation stage: (seconds per part, fingerprint of the results)."""
    parts, results = {}, {}
    for est in ESTIMATORS:
        t0 = time.perf_counter()
        rows, dropped = usable(rep, est)
        t1 = time.perf_counter()
        fitted = models(rows, est, seed)
        t2 = time.perf_counter()
        evs = evaluate_policies(rows, baselines(), estimator=est, n_bootstrap=n_bootstrap, seed=seed, fitted=fitted)
        t3 = time.perf_counter()
        parts[f"{est}_usable"], parts[f"{est}_fit"], parts[f"{est}_policies"] = t1 - t0, t2 - t1, t3 - t2
        results[est] = {"rows": len(rows), "dropped": dropped,
                        "policies": {e.policy: {k: (None if v != v else v) for k, v in e.row().items()
                                                if k not in ("policy", "interval")} for e in evs}}
    return parts, results


def sample(path: Path, man: dict, n_bootstrap: int, load: Load) -> dict:
    """One timed run of the three stages."""
    a = load.read()
    t0 = time.perf_counter()
    log = load_log(path, man)
    t1 = time.perf_counter()
    rep = prepare(log)
    t2 = time.perf_counter()
    parts, results = evaluate(rep, n_bootstrap)
    t3 = time.perf_counter()
    return {"load": t1 - t0, "extract": t2 - t1, "evaluate": t3 - t2, "total": t3 - t0, "parts": parts,
            "foreign_cpus": load.foreign(a, load.read()), "events": len(log), "cases": log.n_cases,
            "decision_rows": len(rep), "results": results}


def summarise(samples: list[dict]) -> dict:
    med = {s: float(statistics.median(x[s] for x in samples)) for s in STAGES}
    parts = {k: float(statistics.median(x["parts"][k] for x in samples)) for k in samples[0]["parts"]}
    events = samples[0]["events"]
    return {"events": events, "cases": samples[0]["cases"], "decision_rows": samples[0]["decision_rows"],
            "seconds_samples": {s: [x[s] for x in samples] for s in STAGES},
            "seconds": med, "events_per_s": {s: events / med[s] for s in STAGES},
            "evaluate_parts_seconds": parts,
            "foreign_cpus_samples": [x["foreign_cpus"] for x in samples],
            "results": samples[0]["results"],
            "results_identical_over_samples": all(x["results"] == samples[0]["results"] for x in samples)}


def profile(path: Path, man: dict, n_bootstrap: int, top: int = 25) -> str:
    prof = cProfile.Profile()
    prof.enable()
    evaluate(prepare(load_log(path, man)), n_bootstrap)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=None, help="cases of 20 events (default 50,000; 1,000 with --quick)")
    p.add_argument("--repeat", type=int, default=None, help="timed samples per variant (default 3; 1 with --quick)")
    p.add_argument("--n-bootstrap", type=int, default=N_BOOTSTRAP)
    p.add_argument("--quick", action="store_true", help="1,000 cases, 1 repeat: a smoke run of a few seconds")
    p.add_argument("--no-timer", action="store_true", help="skip the timer-triggered variant")
    p.add_argument("--profile", action="store_true", help="print a cProfile of one run (main variant)")
    p.add_argument("--out", type=Path, default=None, help=out_help("bench_replay"))
    args = p.parse_args(argv)
    args.out = resolve_out("bench_replay", p, args, report_only=("profile",))
    n_cases = args.cases or (1_000 if args.quick else 50_000)
    repeat = args.repeat or (1 if args.quick else 3)
    if min(n_cases, repeat, args.n_bootstrap) < 1:
        p.error("--cases, --repeat and --n-bootstrap must be >= 1")
    load = Load(0.0)

    table, man, _ = synthetic.leads(n_cases, seed=0, interactions=(EVENTS_PER_CASE - 4, EVENTS_PER_CASE - 3))
    variants = {"main": man}
    if not args.no_timer:
        variants["timer"] = timer_manifest(man)
    exe = Path(sys.executable)
    exe = os.path.relpath(exe, ROOT) if exe.is_relative_to(ROOT) else str(exe)
    result = {"benchmark": "replay", "command": " ".join([exe, *sys.argv]),
              "machine": machine(), "versions": _versions(),
              "log": {"generator": "synthetic.leads(seed=0, interactions=(16, 17))", "cases": n_cases,
                      "events_per_case": EVENTS_PER_CASE},
              "n_bootstrap": args.n_bootstrap, "repeat": repeat, "variants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        import pyarrow.parquet as pq

        path = Path(tmp) / "leads.parquet"
        pq.write_table(table, str(path))
        result["log"]["parquet_bytes"] = path.stat().st_size
        del table
        for name, m in variants.items():
            sample(path, m, args.n_bootstrap, load)  # warm-up
            samples = []
            for r in range(repeat):
                samples.append(sample(path, m, args.n_bootstrap, load))
                s = samples[-1]
                print(f"{name} {r + 1}/{repeat}: " + ", ".join(f"{k} {s[k]:.3f} s" for k in STAGES), file=sys.stderr)
            result["variants"][name] = {"manifest": m, **summarise(samples)}
        if args.profile:
            print(profile(path, man, args.n_bootstrap))
    main_v = result["variants"]["main"]
    total = main_v["seconds"]["total"]
    result["targets"] = {"total_under_5s": {"target_s": TARGET_S, "value_s": total, "events": main_v["events"],
                                            "pass": total < TARGET_S,
                                            "indicative_only": main_v["events"] < 1_000_000}}
    result["machine"]["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    for name, v in result["variants"].items():
        print(f"{name}: {v['events']:,} events, {v['cases']:,} cases, {v['decision_rows']:,} decision rows "
              f"(medians of {repeat})")
        for s in STAGES:
            print(f"  {s:<9} {v['seconds'][s]:8.3f} s  {v['events_per_s'][s]:>12,.0f} events/s")
        print("  evaluate: " + ", ".join(f"{k} {x:.3f}" for k, x in v["evaluate_parts_seconds"].items()))
    t = result["targets"]["total_under_5s"]
    print(f"target: load + extract + evaluate < {TARGET_S:g} s: {t['value_s']:.2f} s "
          f"({'pass' if t['pass'] else 'FAIL'}{', indicative only' if t['indicative_only'] else ''})")
    print(f"wrote {args.out}")
    return 0


def _versions() -> dict:
    import numpy
    import pyarrow
    import scipy
    import sklearn

    return {"python": sys.version.split()[0], "numpy": numpy.__version__, "pyarrow": pyarrow.__version__,
            "scikit-learn": sklearn.__version__, "scipy": scipy.__version__}


if __name__ == "__main__":
    sys.exit(main())
