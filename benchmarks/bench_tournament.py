"""Tournament throughput: episodes (cells) per second with 1 and 2 worker processes.

Run: .venv/bin/python benchmarks/bench_tournament.py [--seeds 30] [--out benchmarks/results/bench_tournament.json]
Target: 2 workers >= 1.7x one.  Each cell is a 90-day episode of the default scenario at 5,000 users
(the quick tournament's cells: its agents solo and every pair of them head-to-head; seven agents since the shipped PPO policy joined, 2026-12-02); worker start-up
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

from arena_env.evaluation import tournament  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=30)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_tournament.json")
    args = p.parse_args(argv)
    cfg = tournament.default_config(args.seeds)
    cells = len(cfg.cells())
    res = {"benchmark": "tournament", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": sys.version.split()[0]},
           "cells": cells, "tracks": list(cfg.tracks), "agents": [a.label for a in cfg.agents], "rows": []}
    for workers in (1, 2) * args.repeat:
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            tournament.run(cfg, d, workers=workers)
            dt = time.perf_counter() - t
        res["rows"].append({"workers": workers, "seconds": dt, "episodes_per_s": cells / dt})
        print(f"workers={workers}: {cells} episodes in {dt:.2f} s = {cells / dt:.1f} episodes/s", flush=True)
    best = {w: max(r["episodes_per_s"] for r in res["rows"] if r["workers"] == w) for w in (1, 2)}
    med = {w: statistics.median(r["episodes_per_s"] for r in res["rows"] if r["workers"] == w) for w in (1, 2)}
    res["speedup_median"] = med[2] / med[1]
    res["speedup_best"] = best[2] / best[1]
    res["target"] = {"threshold": 1.7, "passed_median": res["speedup_median"] >= 1.7,
                     "passed_best": res["speedup_best"] >= 1.7}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"2 workers vs 1: {res['speedup_median']:.2f}x median, {res['speedup_best']:.2f}x best (target >= 1.7x); "
          f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
