"""evaluate.py and the tournament: smoke run, worker-count invariance, faults, resume after kill -9,
re-ranking, config errors, leaderboard arithmetic (0 = hold, 1 = the static oracle), ties.

A solo tournament adds the reference rows (``oracle-static``, and ``hold`` when no agent is the
registered hold), so with TINY's agents (hold among them) every scenario and seed has one more row
than it has agents."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import agents
from tests import contestants
from arena_env.evaluation import leaderboard, report, tournament
from arena_env.evaluation.tournament import AgentSpec, TournamentConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = """
scenarios: [tiny]
seeds: {seeds}
track: {track}
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
    cfg.write_text(TINY.format(seeds=3, track="solo"))
    res = evaluate("--config", cfg, "--out", tmp_path / "run", "--workers", "1", "--n-boot", "200")
    assert res.returncode == 0, res.stderr[-3000:]
    for f in ("leaderboard.md", "leaderboard.csv", "results.parquet", "manifest.json", "cells.jsonl"):
        assert (tmp_path / "run" / f).exists(), f
    assert "| rank | agent |" in res.stdout and "ucb1" in res.stdout and "3/... cells" not in res.stdout
    assert "oracle-static (reference)" in res.stdout and "P(>oracle-static)" in res.stdout
    rows, meta = tournament.read_results(tmp_path / "run" / "results.parquet")
    assert len(rows) == (3 + 1) * 3 and meta["seeds"] == [1_000_000, 1_000_001, 1_000_002] and meta["config_hash"]
    assert {"numpy", "numba", "pyarrow"} <= set(meta["packages"])
    ref = [r for r in rows if r["agent"] == "oracle-static"]
    assert len(ref) == 3 and all(r["reference"] and r["kind"] == "fixed" and not r["failed"] for r in ref)
    assert not any(r["reference"] for r in rows if r["agent"] != "oracle-static")  # hold is an agent here
    assert meta["oracles"]["tiny"]["config"] and meta["oracles"]["tiny"]["scenario"] == "tiny"


def test_results_do_not_depend_on_the_number_of_workers(tmp_path):
    cfg = TournamentConfig((AgentSpec("hold", "hold", baseline=True), AgentSpec("rnd", "random", {"every": 2}),
                            AgentSpec("ucb1", "ucb1", {"period": 2})), ("tiny",), 3,
                           tracks=("solo", "head-to-head"), overrides={"max_days": 10})
    a = tournament.run(cfg, tmp_path / "w1", workers=1)
    b = tournament.run(cfg, tmp_path / "w2", workers=2)
    assert strip(a) == strip(b) and len(a) == (3 + 1) * 3 + 9 * 2  # solo with oracle-static + 3 pairs x 3 seeds
    assert [r["seed"] for r in a[:6]] == [1_000_000, 1_000_001, 1_000_002] * 2
    assert [r["agent"] for r in a[9:12]] == ["oracle-static"] * 3  # after the agents' solo cells
    assert strip(tournament.read_results(tmp_path / "w1" / "results.parquet")[0]) == \
        strip(tournament.read_results(tmp_path / "w2" / "results.parquet")[0])


Crasher = agents.register("test_crasher")(contestants.Crasher)


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
    table = leaderboard.build(rows, n_boot=100).table
    assert {r["agent"]: r["failure_rate"] for r in table} == {"hold": 0.0, "crash": 1.0, "slow": 1.0,
                                                              "oracle-static": 0.0}
    assert [r["agent"] for r in table][-2:] in (["crash", "slow"], ["slow", "crash"])  # no scores: ranked last
    assert [(r["rank"], r["tie"]) for r in table][-2:] == [(3, False), (3, False)]  # sharing it, without intervals
    import warnings

    lb = leaderboard.build(rows, n_boot=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no "Mean of empty slice" for the forfeited agents
        report.write(lb, rows, {}, tmp_path)
    md = leaderboard.markdown(lb)
    assert "| =3 | " not in md and "(agents that forfeited every cell share the last rank)" in md


def test_resume_after_kill_9_finishes_without_duplicates(tmp_path):
    cfg = tmp_path / "t.yaml"
    cfg.write_text(TINY.format(seeds=4, track="[solo, head-to-head]").replace("max_days: 12", "max_days: 40"))
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
    assert 3 <= n_before < 4 * 4 + 3 * 4, "the kill should land mid-run"  # (3 agents + oracle) x 4 seeds + h2h
    with open(log, "a") as fh:
        fh.write('{"key": ["solo", "ucb1", "ti')  # a line cut short by the kill
    res = evaluate("--config", cfg, "--out", out, "--resume", "--workers", "1", "--n-boot", "100")
    assert res.returncode == 0, res.stderr[-2000:]
    a, _ = tournament.read_results(tmp_path / "full" / "results.parquet")
    b, _ = tournament.read_results(out / "results.parquet")
    assert strip(a) == strip(b) and len(b) == 4 * 4 + 3 * 4 * 2  # solo cells (with oracle-static) + head-to-head rows
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
    ("agents: [hold, random]\ntrack: head-to-head\nagents_per_match: 5\n", "agents_per_match: an integer from 2 to 4"),
    ("agents: [hold, random]\ntrack: head-to-head\nagents_per_match: 3\n", "agents_per_match: 3 agents per match but"),
    ("agents: [hold, random]\ntrack: [solo, solo]\n", "track: ['solo', 'solo'] is not available"),
    ("agents: [hold, random]\nmatches_per_seed: 0\n", "matches_per_seed: a positive integer"),
    ("agents: [{checkpoint: nowhere.zip}]\n", "agents[0].checkpoint: no such file"),
    ("agents: [hold, random]\ntrack: head-to-head\nscenarios: [tiny, bandit]\n",
     "scenarios[1]: the head-to-head track needs interference"),
    ("agents: [hold]\noverrides: {economy: {rank_strenght: 1}}\n", "overrides: on scenario default"),
    ("agents: [hold, random, rule]\ntrack: head-to-head\nmatches_per_seed: 4\n",
     "matches_per_seed: a positive integer up to 3"),
    ("agents: [hold]\nscenarios: [tiny, tiny]\n", "scenarios[1]: 'tiny' is listed twice"),
    ("agents: [hold]\noverrides: {action_mode: continuous}\n", "overrides.action_mode: is set by the tournament"),
    ("agents: [hold]\noverrides: {backend: bogus}\n", "overrides.backend: one of numba, numpy, got 'bogus'"),
    ("agents: [{agent: random, label: null}]\n", "agents[0].label: a string, got None"),
    ("agents: [{agent: random, label: [1, 2]}]\n", "agents[0].label: a string, got [1, 2]"),
    ("agents: [hold]\ndecision_timeout_s: .inf\n", "decision_timeout_s: a number of seconds above 0 and at most"),
    ("agents: [{agent: hold, label: a vs b}]\n", "agents[0].label: 'a vs b'"),
    ("agents: [{agent: hold, baseline: 'no'}]\n", "agents[0].baseline: true or false"),
    ("agents: [{checkpoint: x.zip, agent: hold}]\n", "agents[0]: expected a mapping with the key 'agent'"),
    ("agents: [hold]\nbogus: 1\n", "bogus: unknown key"),
    ("agents: [{agent: random, params: {evry: 1}}]\n", "agents[0].params"),
    ("agents: [hold]\noracle: \"yes\"\n", "oracle: true (add the hold and static-oracle reference rows"),
    ("agents: [{agent: fixed, label: oracle-static, params: {config: {scanXp: 12}}}]\n",
     "agents[0].label: 'oracle-static' is the label of a reference row"),
    ("agents: [{agent: random, label: hold}]\n", "agents[0].label: 'hold' is the label of a reference row"),
    ("agents: [{agent: fixed, params: {config: {scanXpp: 12}}}]\n", "fixed: unknown parameter(s) scanXpp"),
])
def test_bad_tournament_files_name_file_and_key(tmp_path, text, match):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    res = evaluate("--config", cfg, "--out", tmp_path / "run")
    assert res.returncode == 2 and str(cfg) in res.stderr and match in res.stderr, res.stderr


def solo_row(agent, scenario, seed, score, kind=None, baseline=False, reference=False, failed=False):
    return {"agent": agent, "kind": kind or agent, "scenario": scenario, "seed": seed, "score": score,
            "failed": failed, "baseline": baseline, "reference": reference, "rejected": 0, "clamped": 0,
            "latency_mean_ms": 1.0, "latency_p99_ms": 2.0}


def test_leaderboard_arithmetic_on_hand_made_rows():
    # hold varies by seed (0, 1, 2): the oracle is hold + 2, x is hold + 3, y is hold + 0.5 on every seed
    rows = []
    for seed, h in enumerate((0.0, 1.0, 2.0)):
        rows += [solo_row("hold", "s", seed, h, baseline=True),
                 solo_row("oracle-static", "s", seed, h + 2.0, kind="fixed", reference=True),
                 solo_row("random", "s", seed, -1.0, baseline=True),
                 solo_row("x", "s", seed, h + 3.0, kind="ucb1"), solo_row("y", "s", seed, h + 0.5, kind="ucb1")]
    lb = leaderboard.build(rows, n_boot=200)
    table, facts = lb.table, lb.facts
    by = {r["agent"]: r for r in table}
    assert facts["normalised"] and (facts["zero"], facts["one"]) == ("hold", "oracle-static") and not facts["notes"]
    assert facts["compare"] == ["hold", "oracle-static", "random"]
    assert facts["units"]["s"] == pytest.approx({"zero": 1.0, "one": 3.0, "gap": 2.0, "gap_lo": 2.0, "gap_hi": 2.0})
    assert [r["agent"] for r in table] == ["x", "oracle-static", "y", "hold", "random"]
    # (score - 1) / (3 - 1): hold -> 0, the oracle -> 1, the random agent is just another row
    means = {a: by[a]["mean"] for a in by}
    assert means == pytest.approx({"x": 1.5, "oracle-static": 1.0, "y": 0.25, "hold": 0.0, "random": -1.0})
    assert by["x"]["raw_mean"] == pytest.approx(4.0) and by["random"]["raw_mean"] == pytest.approx(-1.0)
    assert by["x"]["raw_mean_lo"] <= 4.0 <= by["x"]["raw_mean_hi"]
    # P(>X) is rliable's unpaired probability of improvement (all run pairs, ties 1/2), not the
    # per-seed win share: y beats hold on every seed but only 6 of the 9 (y, hold) run pairs
    assert by["y"]["p_improve_hold"] == pytest.approx(6 / 9) and by["y"]["seed_wins_hold"] == 1.0
    assert by["x"]["p_improve_oracle-static"] == pytest.approx(7 / 9)  # 3 v 3 and 4 v 4 are ties
    assert by["x"]["p_improve_hold"] == 1.0 and by["x"]["p_improve_random"] == 1.0
    assert by["y"]["p_improve_oracle-static"] == pytest.approx(1 / 9)
    assert by["y"]["p_improve_hold_lo"] <= 6 / 9 <= by["y"]["p_improve_hold_hi"]
    assert "seed_wins_oracle-static" not in by["x"] and "p_improve_hold" not in by["hold"]
    assert by["oracle-static"]["reference"] and not by["hold"]["reference"] and by["hold"]["baseline"]
    assert by["x"]["win_rate_vs_control"] == 1.0 and by["random"]["win_rate_vs_control"] == 0.0
    md = leaderboard.markdown(lb)
    assert "| 1 | x |" in md and "| =1 | oracle-static (reference) |" in md and "| =3 | hold (baseline) |" in md
    head = md.splitlines()[[i for i, line in enumerate(md.splitlines()) if line.startswith("| rank |")][0]]
    assert "| P(>hold) | P(>oracle-static) | P(>random) | seed wins vs hold |" in head
    assert "0 = `hold`" in md and "1 = `oracle-static`" in md and leaderboard.TIE_RULE in md
    assert "hold 1.000, oracle 3.000, oracle - hold 2.000" in md  # the unit per scenario, in raw returns


def test_ties_compare_with_the_group_leader_and_rows_without_interval_stand_alone():
    # a staircase: a beats c clearly, b overlaps both; chained ties would put a, b and c in one group
    rows = []
    for seed in range(6):
        w = 0.3 * (seed % 2)
        rows += [solo_row("hold", "s", seed, 0.0 + w, baseline=True),
                 solo_row("oracle-static", "s", seed, 1.0 + w, kind="fixed", reference=True),
                 solo_row("a", "s", seed, 3.0 + 2 * w, kind="ucb1"), solo_row("b", "s", seed, 2.6 + 2 * w, kind="ucb1"),
                 solo_row("c", "s", seed, 2.2 + 2 * w, kind="ucb1")]
    rows.append(solo_row("solo_seed", "s", 0, 10.0, kind="ucb1"))  # one result: no interval
    table = leaderboard.build(rows, n_boot=500).table
    by = {r["agent"]: r for r in table}
    assert [r["agent"] for r in table] == ["solo_seed", "a", "b", "c", "oracle-static", "hold"]
    assert by["b"]["iqm_lo"] <= by["a"]["iqm_hi"] and by["c"]["iqm_hi"] < by["a"]["iqm_lo"]
    assert by["c"]["iqm_lo"] <= by["b"]["iqm_hi"]  # c overlaps b, the row above, but not its leader a
    assert not by["solo_seed"]["tie"] and not by["a"]["tie"]  # a is not tied with a row that has no interval
    assert (by["a"]["rank"], by["b"]["rank"], by["b"]["tie"]) == (2, 2, True)
    assert (by["c"]["rank"], by["c"]["tie"]) == (4, False)
    assert np.isnan(by["solo_seed"]["iqm_lo"])


def test_head_to_head_schedule_covers_every_pairing_and_rotates_seats():
    specs = tuple(AgentSpec(x, "hold") for x in "abcd")
    pairs = [("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")]
    full = TournamentConfig(specs, ("tiny",), 2, tracks=("head-to-head",))
    assert sorted(tuple(sorted(m)) for m in full.matches(0)) == pairs  # one pass: every pair once
    assert set(full.matches(1)) == {m[::-1] for m in full.matches(0)}  # the next pass: seats swapped
    for i in range(2):  # a round robin: rounds of disjoint pairs, so every prefix of 2 matches is a round
        for r in range(3):
            assert sorted(a for m in full.matches(i)[2 * r:2 * r + 2] for a in m) == ["a", "b", "c", "d"]
    part = TournamentConfig(specs, ("tiny",), 3, tracks=("head-to-head",), matches_per_seed=2)
    assert [m for i in range(3) for m in part.matches(i)] == full.matches(0)  # the seeds split one pass
    assert len(part.cells()) == 6  # head-to-head only: no reference rows
    three = TournamentConfig(specs, ("tiny",), 3, tracks=("head-to-head",), agents_per_match=3)
    assert len(three.cells()) == 3 * 4
    for i in range(3):  # every seed plays the four triples, and every agent sits in every seat once
        assert sorted(tuple(sorted(m)) for m in three.matches(i)) == sorted(itertools.combinations("abcd", 3))
        assert all(sorted(m[s] for m in three.matches(i)) == ["a", "b", "c", "d"] for s in range(3))


def test_head_to_head_rows_and_a_faulty_agent_forfeits_alone(tmp_path):
    cfg = TournamentConfig((AgentSpec("hold", "hold", baseline=True), AgentSpec("hold2", "hold"),
                            AgentSpec("crash", "test_crasher")), ("tiny",), 1, tracks=("head-to-head",),
                           overrides={"max_days": 8})
    rows = tournament.run(cfg, tmp_path, workers=1)
    # the order of the round robin (circle method: with three agents one sits out each round); crash,
    # seated second in the first round, is seated first in the second
    assert [(r["match"], r["seat"], r["agent"]) for r in rows] == [
        ("hold2 vs crash", 0, "hold2"), ("hold2 vs crash", 1, "crash"), ("crash vs hold", 0, "crash"),
        ("crash vs hold", 1, "hold"), ("hold vs hold2", 0, "hold"), ("hold vs hold2", 1, "hold2")]
    by = {(r["match"], r["agent"]): r for r in rows}
    crash = by[("crash vs hold", "crash")]
    assert crash["failed"] and "RuntimeError: boom" in crash["error"] and np.isnan(crash["score"])
    other = by[("crash vs hold", "hold")]
    assert not other["failed"] and other["days"] == 8 and len(other["step_rewards"]) == 8
    # the crasher held until it failed and its variant holds after: the match is hold vs hold, and the
    # seat-1 hold scores what the seat-1 agent of the hold vs hold2 match scores
    assert other["score"] == by[("hold vs hold2", "hold2")]["score"]
    assert other["traj_RETENTION_RATE"] == by[("hold vs hold2", "hold2")]["traj_RETENTION_RATE"]
    lb = leaderboard.build(rows, n_boot=50)
    assert not lb.solo and {r["agent"]: r["failure_rate"] for r in lb.ratings}["crash"] == 1.0
    assert lb.ratings[-1]["agent"] == "crash" and lb.ratings[-1]["first_places"] == 0.0


def test_head_to_head_leaderboard_on_hand_made_matches():
    rows = []
    strength = {"a": 3.0, "b": 2.0, "c": 1.0}
    for scenario in ("s1", "s2"):
        for seed in range(6):
            for x, y in (("a", "b"), ("a", "c"), ("b", "c")):
                for seat, agent in enumerate((x, y)):  # a beats b beats c, except c beats b on seed 0
                    score = strength[agent] + (5.0 if (agent == "c" and y == "c" and x == "b" and seed == 0) else 0)
                    rows.append({"agent": agent, "scenario": scenario, "seed": seed, "track": "head-to-head",
                                 "match": f"{x} vs {y}", "seat": seat, "score": score, "failed": False,
                                 "baseline": agent == "c", "rejected": 1, "clamped": 0, "latency_mean_ms": 1.0,
                                 "latency_p99_ms": 2.0})
    lb = leaderboard.build(rows, n_boot=200)
    assert set(lb.h2h) == {"all", "s1", "s2"} and [r["agent"] for r in lb.h2h["s2"]] == ["a", "b", "c"]
    assert [r["agent"] for r in lb.ratings] == ["a", "b", "c"]
    by = {r["agent"]: r for r in lb.ratings}
    assert by["a"]["rating"] > by["b"]["rating"] > by["c"]["rating"]
    assert by["a"]["rating_lo"] <= by["a"]["rating"] <= by["a"]["rating_hi"]
    assert by["a"]["first_places"] == 1.0 and by["a"]["mean_place"] == 1.0 and by["a"]["matches"] == 24
    assert by["a"]["mu"] > by["b"]["mu"] > by["c"]["mu"]
    m = lb.win_matrix
    i = {a: k for k, a in enumerate(m["agents"])}
    assert m["share"][i["a"]][i["b"]] == 1.0 and m["meetings"][i["a"]][i["b"]] == 12
    assert m["share"][i["b"]][i["c"]] == pytest.approx(10 / 12) and m["share"][i["c"]][i["b"]] == pytest.approx(2 / 12)
    md = leaderboard.markdown(lb)
    assert "## Head-to-head" in md
    assert "| b | 0.00 (12) | - | 0.83 (12) |" in md


def test_solo_statistics_per_scenario(tmp_path):
    rows = []
    for scenario, bonus, oracle in (("s1", 1.0, 0.5), ("s2", -2.0, 2.0)):  # each scenario has its own unit
        for seed in range(4):
            rows += [solo_row("hold", scenario, seed, 0.0, baseline=True),
                     solo_row("oracle-static", scenario, seed, oracle, kind="fixed", reference=True),
                     solo_row("random", scenario, seed, -1.0, baseline=True),
                     solo_row("x", scenario, seed, bonus + seed * 0.01, kind="ucb1")]
    lb = leaderboard.build(rows, n_boot=100)
    assert set(lb.solo) == {"all", "s1", "s2"}
    assert lb.solo["s1"][0]["agent"] == "x" and lb.solo["s2"][-1]["agent"] == "x"  # best on s1, worst on s2
    assert {r["agent"]: r["mean"] for r in lb.solo["s1"]}["x"] == pytest.approx(1.015 / 0.5)
    assert {r["agent"]: r["mean"] for r in lb.solo["s2"]}["x"] == pytest.approx(-1.985 / 2.0)
    everywhere = {r["agent"]: r for r in lb.solo["all"]}  # the mean over both scenarios of the per-scenario units
    assert everywhere["x"]["mean"] == pytest.approx((1.015 / 0.5 - 1.985 / 2.0) / 2)
    assert everywhere["random"]["mean"] == pytest.approx((-1 / 0.5 - 1 / 2.0) / 2)
    assert everywhere["oracle-static"]["mean"] == pytest.approx(1.0) and everywhere["hold"]["mean"] == 0.0
    assert lb.facts["units"]["s2"]["gap"] == pytest.approx(2.0)
    leaderboard.write(lb, tmp_path)
    import csv
    with open(tmp_path / "leaderboard.csv") as fh:
        recs = list(csv.DictReader(fh))
    assert sorted({(r["track"], r["scenario"]) for r in recs}) == [("solo", "all"), ("solo", "s1"), ("solo", "s2")]
    assert "## Scenario s2" in (tmp_path / "leaderboard.md").read_text()


def test_checkpoints_enter_a_tournament_as_sb3_agents(tmp_path):
    from stable_baselines3 import PPO

    from arena_env.wrappers.single import EconomySingleEnv

    model = PPO("MlpPolicy", EconomySingleEnv(scenario="tiny", max_days=8), n_steps=16, batch_size=16, n_epochs=1,
                seed=0, device="cpu")
    model.learn(total_timesteps=16)
    (tmp_path / "ckpt").mkdir()
    model.save(tmp_path / "ckpt" / "ppo_tiny.zip")
    path = tmp_path / "t.yaml"
    path.write_text("scenarios: [tiny]\nseeds: 2\noverrides: {max_days: 6}\n"
                    "agents: [{agent: hold, baseline: true}, {checkpoint: ckpt/ppo_tiny.zip}]\n")
    cfg = tournament.load_config(path)
    spec = cfg.agents[1]
    assert (spec.label, spec.agent, spec.params["path"]) == ("ppo_tiny", "sb3", str(tmp_path / "ckpt" / "ppo_tiny.zip"))
    rows = tournament.run(cfg, tmp_path / "run", workers=1)
    assert all(not r["failed"] for r in rows) and {r["agent"] for r in rows} == {"hold", "ppo_tiny", "oracle-static"}

    # the store knows a checkpoint by its content: touched, its cells are reused; retrained, they play again
    log = tmp_path / "run" / "cells.jsonl"
    n = len(log.read_text().splitlines())
    os.utime(tmp_path / "ckpt" / "ppo_tiny.zip")
    tournament.run(tournament.load_config(path), tmp_path / "run", workers=1, resume=True)
    assert len(log.read_text().splitlines()) == n
    model.learn(total_timesteps=16)  # other weights, the same path
    model.save(tmp_path / "ckpt" / "ppo_tiny.zip")
    again = tournament.run(tournament.load_config(path), tmp_path / "run", workers=1, resume=True)
    assert len(log.read_text().splitlines()) == n + 2  # its two cells (2 seeds), not hold's or the oracle's
    assert {r["agent"] for r in again} == {"hold", "ppo_tiny", "oracle-static"}


def test_a_reused_label_is_an_error_and_leaderboard_only_can_select_one_tournament(tmp_path):
    base = "scenarios: [tiny]\nseeds: 2\noverrides: {{max_days: 6}}\nagents: [{{agent: hold, baseline: true}}, " \
           "{{agent: random, baseline: true}}, {{agent: random, label: rnd, params: {{every: {every}}}}}]\n"
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(base.format(every=2))
    b.write_text(base.format(every=3))
    out = tmp_path / "run"
    tournament.run(tournament.load_config(a), out, workers=1)
    rows_b = tournament.run(tournament.load_config(b), out, workers=1, resume=True)  # hold, random reused
    stored, _ = tournament.read_results(out / "results.parquet")
    assert len(stored) == 10 and len(rows_b) == 8  # (3 agents + oracle-static) x 2 seeds, rnd's 2 rows new
    res = evaluate("--leaderboard-only", "--out", out, "--n-boot", "50")
    assert res.returncode == 2 and "'rnd'" in res.stderr and "label was reused" in res.stderr, res.stderr
    res = evaluate("--leaderboard-only", "--out", out, "--config", b, "--n-boot", "50")
    assert res.returncode == 0, res.stderr
    cfg_b = tournament.with_oracles(tournament.load_config(b), workers=1)  # from the session's oracle cache
    def key(r):
        return r["agent"], r["seed"]

    # rows_of keeps the store's order (sorted by match), run returns the cells' order (agents, then references)
    assert sorted(strip(tournament.rows_of(cfg_b, stored)), key=key) == sorted(strip(rows_b), key=key)
    assert evaluate("--seeds", "0").returncode == 2


@agents.register("test_greedy")
class Greedy(Crasher):
    def act(self, context):
        return agents.Update({"scanXp": context.config["scanXp"] * 3})  # every day, far beyond the delta limit


def test_guardrail_rejections_and_clamps_reach_the_rows_and_the_table(tmp_path):
    cfg = TournamentConfig((AgentSpec("hold", "hold", baseline=True), AgentSpec("greedy", "test_greedy")),
                           ("tiny",), 2, overrides={"max_days": 10, "guardrails": {"update_interval_min": 2880}})
    rows = tournament.run(cfg, tmp_path, workers=1)
    greedy = [r for r in rows if r["agent"] == "greedy"]
    assert all(r["clamped"] >= 1 and r["rejected"] >= 1 and r["accepted"] + r["rejected"] == r["decisions"]
               for r in greedy)
    assert all(r["clamped"] == r["rejected"] == 0 for r in rows if r["agent"] == "hold")
    by = {r["agent"]: r for r in leaderboard.build(rows, n_boot=50).table}
    assert by["greedy"]["clamps"] == np.mean([r["clamped"] for r in greedy]) > 0
    assert by["greedy"]["rejections"] == np.mean([r["rejected"] for r in greedy]) > 0


def test_three_agents_per_match_get_three_treatments_on_a_two_treatment_scenario(tmp_path):
    cfg = TournamentConfig((AgentSpec("hold", "hold"), AgentSpec("rnd", "random", {"every": 1}),
                            AgentSpec("ucb1", "ucb1", {"period": 2})), ("tiny",), 1, tracks=("head-to-head",),
                           agents_per_match=3, overrides={"max_days": 5})
    cell = cfg.cells()[0]
    assert tournament.n_treatments(cfg, cell) == 3  # tiny has two
    rows = tournament.play_cell(cfg, cell)
    assert [(r["agent"], r["seat"]) for r in rows] == [("hold", 0), ("rnd", 1), ("ucb1", 2)]
    assert all(not r["failed"] and len(r["traj_RETENTION_RATE"]) == 5 for r in rows)
    assert rows[0]["control_RETENTION_RATE"] == rows[2]["control_RETENTION_RATE"]  # one experiment, one control
    assert len({r["score"] for r in rows}) == 3


def test_a_failed_first_row_does_not_drop_columns_from_the_parquet(tmp_path):
    cfg = TournamentConfig((AgentSpec("aaa", "test_crasher"), AgentSpec("hold", "hold", baseline=True)),
                           ("tiny",), 1, overrides={"max_days": 5})
    tournament.run(cfg, tmp_path, workers=1)
    rows, _ = tournament.read_results(tmp_path / "results.parquet")
    assert rows[0]["agent"] == "aaa" and rows[0]["failed"] and rows[0]["lift_RETENTION_RATE"] is None
    hold = rows[1]
    assert hold["lift_RETENTION_RATE"] is not None and len(hold["traj_SCAN_FREQUENCY"]) == 5 and hold["kind"] == "hold"


def test_an_edited_scenario_file_is_played_again_on_resume(tmp_path):
    scen = tmp_path / "mine.yaml"
    scen.write_text((ROOT / "configs" / "scenarios" / "tiny.yaml").read_text())
    cfg = TournamentConfig((AgentSpec("hold", "hold"),), (str(scen),), 1, overrides={"max_days": 4})
    first = tournament.run(cfg, tmp_path / "run", workers=1)
    assert tournament.run(cfg, tmp_path / "run", workers=1, resume=True) == first  # unchanged: reused
    scen.write_text(scen.read_text().replace("n_users: 600", "n_users: 900"))
    again = tournament.run(cfg, tmp_path / "run", workers=1, resume=True)
    assert again[0]["score"] != first[0]["score"] and again[0]["config"] != first[0]["config"]


def test_seats_rotate_with_a_partial_schedule():
    specs = tuple(AgentSpec(x, "hold") for x in "abcd")
    cfg = TournamentConfig(specs, ("tiny",), 12, tracks=("head-to-head",), matches_per_seed=3)
    seats = [m.index("a") for c in cfg.cells() for m in [c.agents] if "a" in m]
    assert set(seats) == {0, 1} and abs(seats.count(0) - seats.count(1)) <= 1


def normalisation_rows(oracle=2.0, hold_label="hold", oracle_noise=0.0, seeds=4):
    rows = []
    for seed in range(seeds):
        d = 0.01 * seed
        rows += [solo_row(hold_label, "s", seed, 0.0 + d, kind="hold", baseline=True),
                 solo_row("oracle-static", "s", seed, oracle + d + oracle_noise * (-1) ** seed, kind="fixed",
                          reference=True),
                 solo_row("rnd", "s", seed, 1.0 + d, kind="random"), solo_row("good", "s", seed, 5.0 + d, kind="ucb1"),
                 solo_row("bad", "s", seed, -5.0 + d, kind="ucb1")]
    return rows


def test_normalisation_zero_is_hold_one_is_the_static_oracle_and_no_silent_fallback():
    lb = leaderboard.build(normalisation_rows(), n_boot=50)
    assert lb.facts["normalised"] and (lb.facts["zero"], lb.facts["one"]) == ("hold", "oracle-static")
    assert not lb.facts["notes"]
    assert [r["agent"] for r in lb.table] == ["good", "oracle-static", "rnd", "hold", "bad"]
    means = {r["agent"]: r["mean"] for r in lb.table}  # (score - 0.015) / 2: the random agent is not the zero
    assert means == pytest.approx({"good": 2.5, "oracle-static": 1.0, "rnd": 0.5, "hold": 0.0, "bad": -2.5})

    # the zero is the agent registered as hold, whatever its label
    lb = leaderboard.build(normalisation_rows(hold_label="keep"), n_boot=50)
    assert lb.facts["normalised"] and lb.facts["zero"] == "keep" and "seed_wins_keep" in lb.table[0]

    # oracle <= hold on a scenario: no unit, raw scores and a note saying why (no made-up divisor)
    for oracle in (0.0, -1.0):
        lb = leaderboard.build(normalisation_rows(oracle=oracle), n_boot=50)
        md = leaderboard.markdown(lb)
        assert not lb.facts["normalised"] and "the static oracle does not beat hold there" in md
        assert "raw scores: the unit (0 = hold, 1 = the static oracle) is undefined on s" in md
        assert "Scores: raw score" in md
        assert {r["agent"]: r["mean"] for r in lb.table}["good"] == pytest.approx(5.015)
        assert [r["agent"] for r in lb.table][:3] == ["good", "rnd", "hold"]

    # no oracle-static row (a tournament with `oracle: false`): raw scores and a note
    rows = [r for r in normalisation_rows() if r["agent"] != "oracle-static"]
    lb = leaderboard.build(rows, n_boot=50)
    assert not lb.facts["normalised"] and lb.facts["one"] is None
    assert "raw scores: no oracle-static row to fix the unit" in leaderboard.markdown(lb)
    assert [r["agent"] for r in lb.table] == ["good", "rnd", "hold", "bad"]
    # two copies of hold under other labels: the first label is the zero (they play the same policy)
    rows = [r for r in normalisation_rows() if r["agent"] != "hold"]
    rows += [dict(r, agent="h2") for r in normalisation_rows(hold_label="h1") if r["agent"] == "h1"]
    rows += [r for r in normalisation_rows(hold_label="h1") if r["agent"] == "h1"]
    lb = leaderboard.build(rows, n_boot=50)
    assert lb.facts["normalised"] and lb.facts["zero"] == "h1"
    # no hold row at all: raw scores and a note
    rows = [r for r in normalisation_rows() if r["agent"] != "hold"]
    lb = leaderboard.build(rows, n_boot=50)
    assert not lb.facts["normalised"] and lb.facts["zero"] is None
    assert "raw scores: no hold row" in leaderboard.markdown(lb)

    # the hold reference failed everywhere: no unit, raw scores, and the table says so
    rows = [dict(r, failed=True, score=float("nan")) if r["agent"] == "hold" else r for r in normalisation_rows()]
    lb = leaderboard.build(rows, n_boot=50)
    assert not lb.facts["normalised"] and "undefined on s (oracle - hold = n/a)" in leaderboard.markdown(lb)
    assert [r["agent"] for r in lb.table][:3] == ["good", "oracle-static", "rnd"]

    # the oracle's gain over hold is not significant: still normalised, with a "noisy" note
    lb = leaderboard.build(normalisation_rows(oracle=0.2, oracle_noise=1.0), n_boot=200)
    u = lb.facts["units"]["s"]
    assert lb.facts["normalised"] and u["gap"] == pytest.approx(0.2) and u["gap_lo"] <= 0 < u["gap_hi"]
    md = leaderboard.markdown(lb)
    assert "the unit is noisy on s" in md and "gain over hold is not significant" in md
    assert {r["agent"]: r["mean"] for r in lb.table}["good"] == pytest.approx(5.0 / 0.2)


def test_agents_that_never_met_are_rated_in_separate_groups():
    rows = []
    for seed in range(3):
        for x, y in (("a", "b"), ("c", "d")):
            for seat, agent in enumerate((x, y)):
                rows.append({"agent": agent, "scenario": "s", "seed": seed, "track": "head-to-head",
                             "match": f"{x} vs {y}", "seat": seat, "score": float(seat == 0), "failed": False,
                             "rejected": 0, "clamped": 0, "latency_mean_ms": 1.0, "latency_p99_ms": 1.0})
    lb = leaderboard.build(rows, n_boot=50)
    assert {r["agent"]: r["group"] for r in lb.ratings} == {"a": 1, "b": 1, "c": 2, "d": 2}
    md = leaderboard.markdown(lb)
    assert "some agents never met" in md and "a [group 1]" in md


def test_progress_eta_counts_only_cells_played_now_and_the_manifest_keeps_history(tmp_path):
    cfg = TournamentConfig((AgentSpec("hold", "hold"),), ("tiny",), 2, overrides={"max_days": 3})
    tournament.run(cfg, tmp_path, workers=1)
    more = TournamentConfig(cfg.agents, ("tiny",), 3, overrides={"max_days": 3})
    calls = []
    tournament.run(more, tmp_path, workers=1, resume=True, progress=lambda *a: calls.append(a))
    # hold and oracle-static on 3 seeds: 4 cells reused, 2 (the new seed) played
    assert [(c[0], c[1], c[3]) for c in calls] == [(5, 6, 4), (6, 6, 4)]
    meta = __import__("json").loads((tmp_path / "manifest.json").read_text())
    assert len(meta["seeds"]) == 3 and [len(h["seeds"]) for h in meta["history"]] == [2]
    assert evaluate("--resume").returncode == 2


def test_an_agent_that_cannot_be_built_forfeits_without_stopping_the_match():
    cfg = TournamentConfig((AgentSpec("ghost", "no_such_agent"), AgentSpec("hold", "hold")), ("tiny",), 1,
                           tracks=("solo", "head-to-head"), overrides={"max_days": 3}, oracle=False)
    assert [c.agents for c in cfg.cells() if c.track == "solo"] == [("ghost",), ("hold",)]  # no reference rows
    rows = {(c.track, r["agent"]): r for c in cfg.cells() for r in tournament.play_cell(cfg, c)}
    assert rows[("solo", "ghost")]["failed"] and "could not be built" in rows[("solo", "ghost")]["error"]
    assert rows[("solo", "ghost")]["days"] == 0
    h2h = rows[("head-to-head", "hold")]
    assert not h2h["failed"] and h2h["days"] == 3 and rows[("head-to-head", "ghost")]["failed"]


def test_resume_of_a_missing_run_directory_is_an_error_naming_it(tmp_path):
    cfg = tmp_path / "t.yaml"
    cfg.write_text(TINY.format(seeds=2, track="solo"))
    missing = tmp_path / "no" / "such-run"
    res = evaluate("--config", cfg, "--out", missing, "--resume", "--workers", "1")
    assert res.returncode == 2 and res.stderr.startswith("error: ") and str(missing) in res.stderr, res.stderr
    assert "does not exist" in res.stderr and not missing.exists()  # nothing created, nothing played
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tournament.run(tournament.load_config(cfg), missing, workers=1, resume=True)


def test_the_latency_column_says_its_p99_is_the_worst_cells():
    rows = []
    for seed, p99 in enumerate((1.0, 5.0, 2.0)):
        for agent, score in (("hold", 0.0), ("oracle-static", 1.0), ("x", 0.5)):
            r = solo_row(agent, "s", seed, score + 0.1 * seed, kind="fixed" if agent == "oracle-static" else None,
                         baseline=agent == "hold", reference=agent == "oracle-static")
            rows.append({**r, "latency_p99_ms": p99 if agent == "x" else 2.0})
    lb = leaderboard.build(rows, n_boot=50)
    assert {r["agent"]: r["latency_p99_ms"] for r in lb.table}["x"] == 5.0  # the largest cell's, not a pooled p99
    text = leaderboard.markdown(lb)
    assert "latency ms (mean / worst p99)" in text and "latency ms (mean / p99)" not in text
    assert "| 1.000 / 5.000 |" in text
