"""Tournament throughput: episodes (cells) per second with 1 and 2 worker processes.

Run: .venv/bin/python benchmarks/bench_tournament.py [--seeds 20] [--repeat 3] [--backends local,ray] [--out ...json]
Target: 2 workers >= 1.7x one.  Each cell is a 90-day episode of the default scenario as shipped
(10,000 users; the quick tournament's cells: its seven agents and the oracle-static reference solo,
every pair of the agents head-to-head); worker start-up
is included, as a user sees it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arena_env.cli import int_at_least  # noqa: E402
from bench_env import out_help, resolve_out  # noqa: E402
from arena_env.evaluation import tournament  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int_at_least(1, "--seeds"), default=20, help="evaluation seeds (default 20)")
    p.add_argument("--repeat", type=int_at_least(1, "--repeat"), default=3,
                   help="timed runs per backend and worker count (default 3)")
    p.add_argument("--backends", default="local",
                   help="comma-separated: local (worker processes) and/or ray (Ray tasks on a local Ray, start-up "
                        "included); default local")
    p.add_argument("--out", type=Path, default=None, help=out_help("bench_tournament", quick=False))
    args = p.parse_args(argv)
    args.out = resolve_out("bench_tournament", p, args)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or any(b not in tournament.BACKENDS for b in backends):
        p.error(f"--backends: a comma-separated list of {', '.join(tournament.BACKENDS)}")
    cfg = tournament.with_oracles(tournament.default_config(args.seeds))  # looked up once, not timed
    cells = len(cfg.cells())
    res = {"benchmark": "tournament", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": sys.version.split()[0]},
           "cells": cells, "tracks": list(cfg.tracks), "agents": [a.label for a in cfg.agents], "rows": []}
    results = set()
    for _ in range(args.repeat):
        for backend in backends:
            for workers in (1, 2):
                with tempfile.TemporaryDirectory() as d:
                    t = time.perf_counter()
                    tournament.run(cfg, d, workers=workers, backend=backend)
                    dt = time.perf_counter() - t
                    rows, _ = tournament.read_results(Path(d) / "results.parquet")
                results.add(json.dumps([{k: v for k, v in r.items() if "latency" not in k} for r in rows],
                                       sort_keys=True))
                res["rows"].append({"backend": backend, "workers": workers, "seconds": dt, "episodes_per_s": cells / dt})
                print(f"{backend} workers={workers}: {cells} episodes in {dt:.2f} s = {cells / dt:.1f} episodes/s",
                      flush=True)
    res["results_identical"] = len(results) == 1  # every backend and worker count stored the same rows
    res["by_backend"] = {}
    for backend in backends:
        rows = [r for r in res["rows"] if r["backend"] == backend]
        best = {w: max(r["episodes_per_s"] for r in rows if r["workers"] == w) for w in (1, 2)}
        med = {w: statistics.median(r["episodes_per_s"] for r in rows if r["workers"] == w) for w in (1, 2)}
        res["by_backend"][backend] = {"episodes_per_s_median": med, "speedup_median": med[2] / med[1],
                                      "speedup_best": best[2] / best[1]}
        print(f"{backend}: 2 workers vs 1: {med[2] / med[1]:.2f}x median, {best[2] / best[1]:.2f}x best")
    main_backend = res["by_backend"][backends[0]]
    res["speedup_median"], res["speedup_best"] = main_backend["speedup_median"], main_backend["speedup_best"]
    res["target"] = {"backend": backends[0], "threshold": 1.7, "passed_median": res["speedup_median"] >= 1.7,
                     "passed_best": res["speedup_best"] >= 1.7}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"target ({backends[0]}): 2 workers >= 1.7x one: {res['speedup_median']:.2f}x median; results identical "
          f"across runs: {res['results_identical']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
