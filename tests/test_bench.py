"""Smoke run of the benchmark script (its figures are not asserted: speed is checked by benchmarks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_quick_run_writes_complete_json(tmp_path):
    out = tmp_path / "bench.json"
    res = subprocess.run([sys.executable, "benchmarks/bench_env.py", "--quick", "--repeat", "1", "--max-wait", "0",
                          "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads(out.read_text())
    assert set(data["targets"]) == {"kernel_vs_numpy", "e2e_per_core", "state_bytes", "thread_scaling"}
    assert data["state"]["total_bytes_per_user"] <= 64
    assert data["machine"]["cpu_count"] >= 1
    rows = [r for r in data["kernel"] if "backend" in r]
    assert {r["backend"] for r in rows} == {"numba", "numpy"} and all(r["user_days_per_s"] > 0 for r in rows)
    assert all(r["backends_consistent"] for r in rows)  # both backends did the same work
    assert all(r["steps_per_s"] > 0 for r in data["env"])


def test_training_benchmark_quick_run_writes_complete_json(tmp_path):
    out = tmp_path / "bench_train.json"
    res = subprocess.run([sys.executable, "benchmarks/bench_train.py", "--quick", "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["n_envs"] == 8 and data["torch_threads"] == 1 and data["algo"] == "PPO"
    workers = data["vec_workers"]
    assert workers == 2  # configs/ppo.yaml's vec.workers: timed as well, beside the one-process comparison
    assert set(data["train_steps_per_s"]) == {"cartpole", "arena", "spaces_only", f"arena_{workers}_workers"}
    assert all(v > 0 for v in data["train_steps_per_s"].values())
    assert data["arena_workers_speedup"] == data["train_steps_per_s"]["arena_2_workers"] / data["train_steps_per_s"]["arena"]
    t = data["targets"]["train_vs_cartpole"]
    assert t["target"] == 0.7 and t["value"] == data["train_steps_per_s"]["arena"] / data["train_steps_per_s"]["cartpole"]
    # the share clocked inside learn() (a share: below 1, the split's env part); the env-alone estimate beside it
    share = data["arena_env_share_of_training_time"]
    assert 0 < share < 1 and share == data["median"]["arena_in_env_s"] / data["median"]["arena_train_s"]
    assert data["arena_env_alone_over_training_time"] > 0
    # the split of a training step, clocked inside learn(): the kernel is a part of the env, the env of the step
    sp, med, n = data["split"], data["median"], data["timesteps_per_sample"]
    assert sp["arena_kernel_s_per_step"] == med["arena_in_kernel_s"] / n  # one repeat: the median is the sample
    assert 0 < sp["arena_kernel_s_per_step"] and 0 < sp["arena_env_python_s_per_step"] and 0 < sp["arena_sb3_s_per_step"]
    assert 0 < sp["cartpole_env_s_per_step"] < sp["cartpole_sb3_s_per_step"]
    assert sum(v for k, v in sp.items() if k.startswith("arena")) == pytest.approx(med["arena_train_s"] / n)
    # the ceiling: an env costing only its kernel trains faster than the arena does
    c, cart = data["ceiling"], data["train_steps_per_s"]["cartpole"]
    assert c["n_users"] == data["env"]["n_users"] == 3000
    assert c["one_process"] == pytest.approx(1 / (sp["arena_sb3_s_per_step"] + sp["arena_kernel_s_per_step"]) / cart)
    assert c["one_process"] > t["value"] and c["kernel_on_all_cores"] >= c["one_process"]
    assert c["spaces_only"] == data["train_steps_per_s"]["spaces_only"] / cart > t["value"]  # an env costing nothing
    assert c["users_at_target"] == pytest.approx(max(0.0, c["env_budget_s_per_step"]) / sp["arena_kernel_s_per_step"] * 3000)


def test_replay_benchmark_quick_run_writes_complete_json(tmp_path):
    out = tmp_path / "bench_replay.json"
    res = subprocess.run([sys.executable, "benchmarks/bench_replay.py", "--quick", "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["log"]["cases"] == 1000 and data["log"]["events_per_case"] == 20 and data["n_bootstrap"] == 200
    assert set(data["variants"]) == {"main", "timer"}
    for v in data["variants"].values():
        assert v["events"] == 20_000 and v["cases"] == 1000
        assert all(v["seconds"][s] > 0 and v["events_per_s"][s] > 0 for s in ("load", "extract", "evaluate", "total"))
        assert v["results_identical_over_samples"]
        for est in ("ipw", "dr"):
            assert set(v["results"][est]["policies"]) == {"random", "constant:send_reminder",
                                                          "threshold:score>=0.5", "rule", "logged"}
    main, timer = data["variants"]["main"], data["variants"]["timer"]
    assert main["decision_rows"] == 1000 < timer["decision_rows"]  # one decision per lead; timers add rows
    t = data["targets"]["total_under_5s"]
    assert t["indicative_only"] and t["value_s"] == main["seconds"]["total"]
    assert data["machine"]["cpu_count"] >= 1 and "pyarrow" in data["versions"]


def test_server_benchmark_quick_run_writes_complete_json(tmp_path):
    out = tmp_path / "bench_server.json"
    res = subprocess.run([sys.executable, "benchmarks/bench_server.py", "--quick", "--agents", "10", "--seconds", "3",
                          "--extra-seconds", "0", "--rate", "150", "--warmup", "1", "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    data = json.loads(out.read_text())
    (run,) = data["runs"]
    assert run["agents"] == 10 and run["tokens"] == 5 and run["server_exit_code"] == 0  # a clean Ctrl+C shutdown
    assert run["errors"] == 0, run["error_messages"]  # a light load: every request answered with success
    assert run["requests"] == sum(e["requests"] for e in run["endpoints"].values()) > 0
    assert set(run["endpoints"]) == {"signals", "variant", "scoreboard", "decisions", "heartbeat", "config"}
    assert run["requests_per_s"] == run["requests"] / run["seconds"]
    assert 0 < run["p50_ms"] <= run["p90_ms"] <= run["p99_ms"] <= run["max_ms"]
    p = run["proposals"]
    assert p["accepted"] > 0 and p["rejected"] > 0 and sum(p.values()) == run["endpoints"]["config"]["requests"]
    assert run["simulated_days"] >= 1  # 2 s per simulated day on the wall clock
    t = data["targets"]
    assert set(t) == {"errors", "p99_ms", "requests_per_s"} and all(v["indicative_only"] for v in t.values())
    assert t["requests_per_s"]["value"] == run["requests_per_s"] and t["requests_per_s"]["threshold"] == 845


def test_server_benchmark_percentile_is_numpys_nearest_rank():
    import importlib.util

    import numpy as np

    spec = importlib.util.spec_from_file_location("bench_server", ROOT / "benchmarks" / "bench_server.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 100, 1000, 1001):
        xs = list(rng.lognormal(size=n))
        for q in (0.5, 0.9, 0.99):
            assert bench.percentile(xs, q) == np.percentile(xs, q * 100, method="inverted_cdf")


def test_a_quick_run_without_out_leaves_the_shipped_results_alone(tmp_path):
    shipped = ROOT / "benchmarks" / "results" / "bench_replay.json"
    before = shipped.read_bytes()
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_replay.py"), "--quick", "--cases", "50",
                          "--no-timer", "--n-bootstrap", "20"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    after = shipped.read_bytes()
    if after != before:  # put the shipped file back before failing
        shipped.write_bytes(before)
    assert res.returncode == 0, res.stderr[-2000:]
    assert after == before, "a --quick smoke run replaced benchmarks/results/bench_replay.json"
    quick = tmp_path / "runs" / "benchmarks" / "bench_replay-quick.json"
    assert json.loads(quick.read_text())["log"]["cases"] == 50


@pytest.mark.parametrize("script, quick", [("bench_env", True), ("bench_replay", True), ("bench_server", True),
                                           ("bench_train", True), ("bench_tournament", False),
                                           ("bench_seat_effect", False)])
def test_every_benchmark_names_where_it_writes(script, quick):
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    text = "".join(res.stdout.split())  # argparse wraps lines at spaces and hyphens
    assert f"benchmarks/results/{script}.json" in text and f"runs/benchmarks/{script}-custom.json" in text
    assert (f"runs/benchmarks/{script}-quick.json" in text) == quick


def test_only_the_default_settings_write_the_shipped_results(tmp_path, monkeypatch):
    """A full run with other settings (bench_train.py --repeat 1, bench_tournament.py --backends local,ray)
    replaced benchmarks/results/: now only the documented command does; report-only flags do not count."""
    import argparse

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from bench_env import resolve_out

    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "ppo.yaml")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path, default=None)
    monkeypatch.chdir(tmp_path)

    def out(*argv):
        return resolve_out("b", p, p.parse_args(argv), report_only=("profile",))

    shipped = ROOT / "benchmarks" / "results" / "b.json"
    assert out() == shipped and out("--repeat", "3", "--profile") == shipped
    assert out("--config", str(Path("..") / tmp_path.name / ".." / ".." / ROOT / "configs" / "ppo.yaml")) == shipped
    assert out("--repeat", "1") == Path("runs/benchmarks/b-custom.json")
    assert out("--config", "other.yaml") == Path("runs/benchmarks/b-custom.json")
    assert out("--quick", "--repeat", "1") == Path("runs/benchmarks/b-quick.json")
    assert out("--repeat", "1", "--out", "x.json") == Path("x.json")


@pytest.mark.parametrize("args, message", [
    (["bench_seat_effect.py", "--seeds", "1", "--out", "{out}"], "pass --seeds 2 or more"),
    (["bench_seat_effect.py", "--scenarios", "bogus", "--out", "{out}"], "--scenarios: unknown scenario 'bogus'"),
    (["bench_tournament.py", "--seeds", "0", "--out", "{out}"], "pass --seeds 1 or more"),
    (["bench_tournament.py", "--repeat", "0", "--out", "{out}"], "pass --repeat 1 or more"),
    (["bench_threads.py", "--sizes", "0", "--warm", "0"], "pass --sizes 10 or more"),  # bench_threads only prints
    (["bench_threads.py", "--threads", "0", "--warm", "0"], "pass --threads 1 or more"),
])
def test_benchmarks_refuse_bad_arguments_with_a_usage_error(args, message, tmp_path):
    script, *rest = [a.format(out=tmp_path / "x.json") for a in args]
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *rest],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert not (tmp_path / "x.json").exists()


def test_thread_benchmark_runs_without_the_one_thread_column():
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_threads.py"), "--sizes", "300", "--threads",
                          "2", "--repeats", "1", "--warm", "0"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "2 thr best/median" in res.stdout and "1 thr" not in res.stdout and res.stdout.splitlines()[-1].split()[0] == "300"
