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
    rows, meta = tournament.read_results(tmp_path / "run" / "results.parquet")
    assert len(rows) == 9 and meta["seeds"] == [1_000_000, 1_000_001, 1_000_002] and meta["config_hash"]
    assert {"numpy", "numba", "pyarrow"} <= set(meta["packages"])


def test_results_do_not_depend_on_the_number_of_workers(tmp_path):
    cfg = TournamentConfig((AgentSpec("hold", "hold", baseline=True), AgentSpec("rnd", "random", {"every": 2}),
                            AgentSpec("ucb1", "ucb1", {"period": 2})), ("tiny",), 3,
                           tracks=("solo", "head-to-head"), overrides={"max_days": 10})
    a = tournament.run(cfg, tmp_path / "w1", workers=1)
    b = tournament.run(cfg, tmp_path / "w2", workers=2)
    assert strip(a) == strip(b) and len(a) == 9 + 9 * 2
    assert [r["seed"] for r in a[:6]] == [1_000_000, 1_000_001, 1_000_002] * 2
    assert strip(tournament.read_results(tmp_path / "w1" / "results.parquet")[0]) == \
        strip(tournament.read_results(tmp_path / "w2" / "results.parquet")[0])


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
    table = leaderboard.build(rows, n_boot=100).table
    assert {r["agent"]: r["failure_rate"] for r in table} == {"hold": 0.0, "crash": 1.0, "slow": 1.0}


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
    assert 3 <= n_before < 24, "the kill should land mid-run"
    with open(log, "a") as fh:
        fh.write('{"key": ["solo", "ucb1", "ti')  # a line cut short by the kill
    res = evaluate("--config", cfg, "--out", out, "--resume", "--workers", "1", "--n-boot", "100")
    assert res.returncode == 0, res.stderr[-2000:]
    a, _ = tournament.read_results(tmp_path / "full" / "results.parquet")
    b, _ = tournament.read_results(out / "results.parquet")
    assert strip(a) == strip(b) and len(b) == 12 + 3 * 4 * 2  # solo cells + head-to-head rows
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
    ("agents: [hold]\ndecision_timeout_s: .inf\n", "decision_timeout_s: a number of seconds above 0 and at most"),
    ("agents: [{agent: hold, label: a vs b}]\n", "agents[0].label: 'a vs b'"),
    ("agents: [{agent: hold, baseline: 'no'}]\n", "agents[0].baseline: true or false"),
    ("agents: [{checkpoint: x.zip, agent: hold}]\n", "agents[0]: expected a mapping with the key 'agent'"),
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
    lb = leaderboard.build(rows, n_boot=200)
    table, facts = lb.table, lb.facts
    by = {r["agent"]: r for r in table}
    assert facts["normalised"] and [r["agent"] for r in table][0] == "x"
    assert by["random"]["mean"] == pytest.approx(0.0) and by["hold"]["mean"] == pytest.approx(1.0)
    assert by["x"]["mean"] == pytest.approx(2.0)  # (2 - (-2)) / (0 - (-2)) on average
    assert by["x"]["p_improve_hold"] == 1.0 and by["x"]["win_rate_vs_control"] == 1.0
    assert by["random"]["win_rate_vs_control"] == 0.0
    md = leaderboard.markdown(lb)
    assert "| 1 | x |" in md and "P(>hold)" in md


def test_head_to_head_schedule_covers_every_pairing_and_rotates_seats():
    specs = tuple(AgentSpec(x, "hold") for x in "abcd")
    full = TournamentConfig(specs, ("tiny",), 2, tracks=("head-to-head",))
    assert full.matches(0) == [("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")]
    assert full.matches(1) == [("b", "a"), ("c", "a"), ("d", "a"), ("c", "b"), ("d", "b"), ("d", "c")]
    part = TournamentConfig(specs, ("tiny",), 3, tracks=("head-to-head",), matches_per_seed=2)
    seen = [tuple(sorted(m)) for i in range(3) for m in part.matches(i)]
    assert sorted(seen) == sorted(full.matches(0)) and len(part.cells()) == 6
    three = TournamentConfig(specs, ("tiny",), 3, tracks=("head-to-head",), agents_per_match=3)
    assert three.matches(2)[0] == ("c", "a", "b") and len(three.cells()) == 3 * 4


def test_head_to_head_rows_and_a_faulty_agent_forfeits_alone(tmp_path):
    cfg = TournamentConfig((AgentSpec("hold", "hold", baseline=True), AgentSpec("hold2", "hold"),
                            AgentSpec("crash", "test_crasher")), ("tiny",), 1, tracks=("head-to-head",),
                           overrides={"max_days": 8})
    rows = tournament.run(cfg, tmp_path, workers=1)
    assert [(r["match"], r["seat"], r["agent"]) for r in rows] == [
        ("hold vs hold2", 0, "hold"), ("hold vs hold2", 1, "hold2"), ("hold vs crash", 0, "hold"),
        ("hold vs crash", 1, "crash"), ("hold2 vs crash", 0, "hold2"), ("hold2 vs crash", 1, "crash")]
    by = {(r["match"], r["agent"]): r for r in rows}
    crash = by[("hold vs crash", "crash")]
    assert crash["failed"] and "RuntimeError: boom" in crash["error"] and np.isnan(crash["score"])
    other = by[("hold vs crash", "hold")]
    assert not other["failed"] and other["days"] == 8 and len(other["step_rewards"]) == 8
    # the crasher held until it failed and its variant holds after: the match is hold vs hold
    assert other["score"] == by[("hold vs hold2", "hold")]["score"]
    assert other["traj_RETENTION_RATE"] == by[("hold vs hold2", "hold")]["traj_RETENTION_RATE"]
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
    for scenario, bonus in (("s1", 1.0), ("s2", -2.0)):
        for seed in range(4):
            for agent, score, base in (("hold", 0.0, True), ("random", -1.0, True), ("x", bonus + seed * 0.01, False)):
                rows.append({"agent": agent, "scenario": scenario, "seed": seed, "score": score, "failed": False,
                             "baseline": base, "rejected": 0, "clamped": 0, "latency_mean_ms": 1.0,
                             "latency_p99_ms": 2.0})
    lb = leaderboard.build(rows, n_boot=100)
    assert set(lb.solo) == {"all", "s1", "s2"}
    assert lb.solo["s1"][0]["agent"] == "x" and lb.solo["s2"][-1]["agent"] == "x"  # best on s1, worst on s2
    assert {r["agent"]: r["mean"] for r in lb.solo["s1"]}["x"] == pytest.approx(2.015)
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
    assert all(not r["failed"] for r in rows) and {r["agent"] for r in rows} == {"hold", "ppo_tiny"}


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
    assert len(stored) == 8 and len(rows_b) == 6
    res = evaluate("--leaderboard-only", "--out", out, "--n-boot", "50")
    assert res.returncode == 2 and "'rnd'" in res.stderr and "label was reused" in res.stderr, res.stderr
    res = evaluate("--leaderboard-only", "--out", out, "--config", b, "--n-boot", "50")
    assert res.returncode == 0, res.stderr
    assert strip(tournament.rows_of(tournament.load_config(b), stored)) == strip(rows_b)
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


def test_normalisation_zero_is_the_random_agent_and_one_never_falls_below_it():
    rows = []
    for seed in range(4):
        for agent, kind, score, base in (("hold", "hold", 0.0, True), ("rnd", "random", 1.0, False),
                                         ("good", "ucb1", 5.0, False), ("bad", "ucb1", -5.0, False)):
            rows.append({"agent": agent, "kind": kind, "scenario": "s", "seed": seed, "score": score + 0.01 * seed,
                         "failed": False, "baseline": base, "rejected": 0, "clamped": 0, "latency_mean_ms": 1.0,
                         "latency_p99_ms": 1.0})
    lb = leaderboard.build(rows, n_boot=50)
    assert lb.facts["normalised"] and lb.facts["reference"] == "rnd"
    assert [r["agent"] for r in lb.table] == ["good", "rnd", "hold", "bad"]
    rows = [r for r in rows if not (r["agent"] == "rnd")] + [dict(r, failed=True) for r in rows if r["agent"] == "rnd"]
    lb = leaderboard.build(rows, n_boot=50)  # the reference failed everywhere: raw scores, and the table says so
    assert not lb.facts["normalised"] and "cannot be normalised" in leaderboard.markdown(lb)
    assert [r["agent"] for r in lb.table][:3] == ["good", "hold", "bad"]


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
    assert [(c[0], c[1], c[3]) for c in calls] == [(3, 3, 2)]  # 2 reused, 1 played
    meta = __import__("json").loads((tmp_path / "manifest.json").read_text())
    assert len(meta["seeds"]) == 3 and [len(h["seeds"]) for h in meta["history"]] == [2]
    assert evaluate("--resume").returncode == 2


def test_an_agent_that_cannot_be_built_forfeits_without_stopping_the_match():
    cfg = TournamentConfig((AgentSpec("ghost", "no_such_agent"), AgentSpec("hold", "hold")), ("tiny",), 1,
                           tracks=("solo", "head-to-head"), overrides={"max_days": 3})
    rows = {(c.track, r["agent"]): r for c in cfg.cells() for r in tournament.play_cell(cfg, c)}
    assert rows[("solo", "ghost")]["failed"] and "could not be built" in rows[("solo", "ghost")]["error"]
    assert rows[("solo", "ghost")]["days"] == 0
    h2h = rows[("head-to-head", "hold")]
    assert not h2h["failed"] and h2h["days"] == 3 and rows[("head-to-head", "ghost")]["failed"]
