"""evaluate.py and the tournament: smoke run, worker-count invariance, faults, resume after kill -9,
re-ranking, config errors, leaderboard arithmetic."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import agents
from arena_env.evaluation import leaderboard, tournament
from arena_env.evaluation.tournament import AgentSpec, TournamentConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = """
scenarios: [tiny]
seeds: {seeds}
overrides: {{max_days: 12}}
decision_timeout_s: 5
agents:
  - {{agent: hold, baseline: true}}
  - {{agent: random, baseline: true, params: {{every: 2}}}}
  - {{agent: ucb1, params: {{period: 2}}}}
"""


def evaluate(*args, timeout=300):
    return subprocess.run([sys.executable, "evaluate.py", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def strip(rows):
    return [{k: v for k, v in r.items() if "latency" not in k} for r in rows]  # timings are measurements


def test_script_smoke_run(tmp_path):
    cfg = tmp_path / "t.yaml"
    cfg.write_text(TINY.format(seeds=3))
    res = evaluate("--config", cfg, "--out", tmp_path / "run", "--workers", "1", "--n-boot", "200")
    assert res.returncode == 0, res.stderr[-3000:]
    for f in ("leaderboard.md", "leaderboard.csv", "results.parquet", "manifest.json", "cells.jsonl"):
        assert (tmp_path / "run" / f).exists(), f
    assert "| rank | agent |" in res.stdout and "ucb1" in res.stdout and "3/... cells" not in res.stdout
    rows, meta = tournament.read_results(tmp_path / "run" / "results.parquet")
    assert len(rows) == 9 and meta["seeds"] == [1_000_000, 1_000_001, 1_000_002] and meta["config_hash"]
    assert {"numpy", "numba", "pyarrow"} <= set(meta["packages"])


def test_results_do_not_depend_on_the_number_of_workers(tmp_path):
    cfg = TournamentConfig((AgentSpec("hold", "hold", baseline=True), AgentSpec("rnd", "random", {"every": 2})),
                           ("tiny",), 3, overrides={"max_days": 10})
    a = tournament.run(cfg, tmp_path / "w1", workers=1)
    b = tournament.run(cfg, tmp_path / "w2", workers=2)
    assert strip(a) == strip(b) and len(a) == 6
    assert [r["seed"] for r in a] == [1_000_000, 1_000_001, 1_000_002] * 2


@agents.register("test_crasher")
class Crasher:
    def reset(self, seed=None):
        pass

    def act(self, context):
        if context.day == 3:
            raise RuntimeError("boom")
        return None

    def update(self, outcome):
        pass


@agents.register("test_sleeper")
class Sleeper(Crasher):
    def act(self, context):
        time.sleep(3)


def test_faulty_agents_forfeit_their_cells_and_the_tournament_goes_on(tmp_path):
    cfg = TournamentConfig((AgentSpec("hold", "hold", baseline=True), AgentSpec("crash", "test_crasher"),
                            AgentSpec("slow", "test_sleeper")), ("tiny",), 2, overrides={"max_days": 6},
                           decision_timeout_s=0.2)
    rows = tournament.run(cfg, tmp_path, workers=1)
    by = {r["agent"]: r for r in rows if r["seed"] == 1_000_000}
    assert not by["hold"]["failed"]
    assert by["crash"]["failed"] and "RuntimeError: boom" in by["crash"]["error"] and np.isnan(by["crash"]["score"])
    assert by["slow"]["failed"] and "decision timeout of 0.2 s" in by["slow"]["error"]
    table, _ = leaderboard.build(rows, n_boot=100)
    assert {r["agent"]: r["failure_rate"] for r in table} == {"hold": 0.0, "crash": 1.0, "slow": 1.0}


def test_resume_after_kill_9_finishes_without_duplicates(tmp_path):
    cfg = tmp_path / "t.yaml"
    cfg.write_text(TINY.format(seeds=4).replace("max_days: 12", "max_days: 40"))
    full = evaluate("--config", cfg, "--out", tmp_path / "full", "--workers", "1", "--n-boot", "100")
    assert full.returncode == 0, full.stderr[-2000:]
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "evaluate.py", "--config", str(cfg), "--out", str(out), "--workers", "1"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out / "cells.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = len(log.read_text().splitlines())
    assert 3 <= n_before < 12, "the kill should land mid-run"
    with open(log, "a") as fh:
        fh.write('{"agent": "ucb1", "scenario": "ti')  # a line cut short by the kill
    res = evaluate("--config", cfg, "--out", out, "--resume", "--workers", "1", "--n-boot", "100")
    assert res.returncode == 0, res.stderr[-2000:]
    a, _ = tournament.read_results(tmp_path / "full" / "results.parquet")
    b, _ = tournament.read_results(out / "results.parquet")
    assert strip(a) == strip(b) and len(b) == 12
    assert evaluate("--config", cfg, "--out", out).returncode == 2  # no silent overwrite without --resume


def test_leaderboard_only_reranks_the_stored_results(tmp_path):
    cfg = TournamentConfig((AgentSpec("hold", "hold", baseline=True), AgentSpec("random", "random", baseline=True),
                            AgentSpec("ucb1", "ucb1", {"period": 2})), ("tiny",), 3, overrides={"max_days": 10})
    tournament.run(cfg, tmp_path, workers=1)
    res = evaluate("--leaderboard-only", "--out", tmp_path, "--n-boot", "100")
    assert res.returncode == 0, res.stderr
    first = (tmp_path / "leaderboard.md").read_text()
    assert evaluate("--leaderboard-only", "--out", tmp_path, "--n-boot", "100").returncode == 0
    assert (tmp_path / "leaderboard.md").read_text() == first and "ucb1" in first


@pytest.mark.parametrize("text, match", [
    ("agents: [{agent: nobody}]\n", "agents[0].agent: unknown agent 'nobody'"),
    ("agents: [hold]\nseeds: 0\n", "seeds: a positive integer"),
    ("agents: [hold]\nscenarios: [nowhere]\n", "scenarios[0]: unknown scenario"),
    ("agents: [hold]\ntrack: h2h\n", "track: 'h2h' is not available"),
    ("agents: [hold]\nbogus: 1\n", "bogus: unknown key"),
    ("agents: [{agent: random, params: {evry: 1}}]\n", "agents[0].params"),
])
def test_bad_tournament_files_name_file_and_key(tmp_path, text, match):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    res = evaluate("--config", cfg, "--out", tmp_path / "run")
    assert res.returncode == 2 and str(cfg) in res.stderr and match in res.stderr, res.stderr


def test_leaderboard_arithmetic_on_hand_made_rows():
    rows = []
    for seed, (h, r, x) in enumerate([(0.0, -2.0, 2.0), (0.0, -2.0, 1.0), (0.0, -2.0, 3.0)]):
        for agent, score, base in (("hold", h, True), ("random", r, True), ("x", x, False)):
            rows.append({"agent": agent, "scenario": "s", "seed": seed, "score": score, "failed": False,
                         "baseline": base, "rejected": 0, "clamped": 0, "latency_mean_ms": 1.0,
                         "latency_p99_ms": 2.0})
    table, facts = leaderboard.build(rows, n_boot=200)
    by = {r["agent"]: r for r in table}
    assert facts["normalised"] and [r["agent"] for r in table][0] == "x"
    assert by["random"]["mean"] == pytest.approx(0.0) and by["hold"]["mean"] == pytest.approx(1.0)
    assert by["x"]["mean"] == pytest.approx(2.0)  # (2 - (-2)) / (0 - (-2)) on average
    assert by["x"]["p_improve_hold"] == 1.0 and by["x"]["win_rate_vs_control"] == 1.0
    assert by["random"]["win_rate_vs_control"] == 0.0
    md = leaderboard.markdown(table, facts)
    assert "| 1 | x |" in md and "P(>hold)" in md
