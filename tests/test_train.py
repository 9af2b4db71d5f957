"""train.py: configs and their errors, a smoke run with its outputs, reload, seeded determinism, resume
after kill -9, several scenarios, the shipped configs, and the VecEnv closed after an exception."""

from __future__ import annotations

import csv
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import train as train_cli
from arena_env.training import config as C
from arena_env.training import run as R

ROOT = Path(__file__).resolve().parents[1]
SMALL = {  # a few seconds: 2 economies of 300 users over 12 days, 4 rows
    "algo": "PPO", "seed": 3, "total_timesteps": 768,
    "env": {"scenario": "tiny", "n_users": 300, "max_days": 12},
    "vec": {"copies": 2},
    "ppo": {"n_steps": 48, "batch_size": 64, "n_epochs": 2, "policy_kwargs": {"net_arch": [16, 16]}},
    "checkpoint": {"every": 192, "keep": 2},
    "eval": {"enabled": False, "seeds": 2, "agents": ["hold"]},
}


def write(tmp_path: Path, data: dict, name: str = "cfg.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


def params(path: Path) -> dict:
    from stable_baselines3 import PPO

    return {k: v.detach().numpy().copy() for k, v in PPO.load(str(path), device="cpu").policy.state_dict().items()}


def test_smoke_run_writes_every_output(tmp_path):
    cfg = write(tmp_path, SMALL)
    out = tmp_path / "run"
    assert train_cli.main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    for f in ("config.yaml", "model.zip", "vecnormalize.pkl", "episodes.csv", "curve.png", "summary.json"):
        assert (out / f).is_file(), f
    assert R.checkpoints(out / "checkpoints") == [576, 768]  # every 192 steps, the newest 2 kept
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["run_name"] == "cfg" and saved["ppo"]["n_steps"] == 48 and saved["threads"] == {"torch": 1, "numba": 1}
    with open(out / "episodes.csv", newline="") as fh:
        eps = list(csv.DictReader(fh))
    assert len(eps) == 768 // 12 and {e["agent"] for e in eps} == {"variant_0", "variant_1"}  # 12-day episodes
    assert all(int(e["length"]) == 12 for e in eps)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(next((out / "tb").glob("PPO_*"))))
    ea.Reload()
    tags = set(ea.Tags()["scalars"])
    assert {"arena/return", "arena/variant_0/return", "arena/variant_1/xp_cost", "arena/variant_0/rejections",
            "arena/variant_0/clamps", "arena/variant_0/lift/RETENTION_RATE", "rollout/ep_rew_mean"} <= tags
    # per agent, per episode: the logged return is the mean of that agent's episodes, not a sum over rows
    logged = [e.value for e in ea.Scalars("arena/variant_0/return")]
    mine = [float(e["return"]) for e in eps if e["agent"] == "variant_0"]
    assert min(mine) - 1e-9 <= min(logged) and max(logged) <= max(mine) + 1e-9


def test_the_saved_policy_reloads_and_acts_the_same(tmp_path):
    from stable_baselines3 import PPO

    from agents.learners import SB3Policy, read_meta

    cfg = C.from_dict({**SMALL, "env": {**SMALL["env"], "action_mode": "target"}}, "test")
    venv = R.make_vec(cfg, 0)
    try:
        model = PPO(env=venv, seed=0, device="cpu", **C.build_kwargs(cfg.algo_kwargs))
        model.learn(192)
        obs = venv.reset()
        R.save_model(model, tmp_path / "m.zip", C.meta(cfg))
        want = model.predict(obs, deterministic=True)[0]
    finally:
        venv.close()
    assert read_meta(str(tmp_path / "m.zip"))["action_mode"] == "target"
    agent = SB3Policy(str(tmp_path / "m.zip"))
    assert agent.action_mode == "target"
    np.testing.assert_array_equal(agent.model.predict(obs, deterministic=True)[0], want)
    with pytest.raises(ValueError, match="trained with action_mode 'target'"):
        SB3Policy(str(tmp_path / "m.zip"), action_mode="continuous")
    assert PPO.load(str(tmp_path / "m.zip")).num_timesteps == model.num_timesteps


def test_same_seed_same_parameters_other_seed_other_parameters(tmp_path):
    cfg = write(tmp_path, {**SMALL, "total_timesteps": 384, "checkpoint": {"every": 1000}})
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        assert train_cli.main(["--config", str(cfg), "--out", str(tmp_path / name), "--seed", str(seed),
                               "--quiet"]) == 0
    a, b, c = (params(tmp_path / n / "model.zip") for n in "abc")
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


def test_resume_after_kill_minus_nine_continues_from_the_last_checkpoint(tmp_path):
    total = 4800
    cfg = write(tmp_path, {**SMALL, "total_timesteps": total, "checkpoint": {"every": 480, "keep": 3}})
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), "--config", str(cfg), "--out", str(out),
                             "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not R.checkpoints(out / "checkpoints") and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    first = R.checkpoints(out / "checkpoints")
    assert first and first[-1] < total and not (out / "model.zip").exists()
    assert train_cli.main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 2  # no silent restart
    assert train_cli.main(["--resume", "--out", str(out), "--quiet"]) == 0
    summary = yaml.safe_load((out / "summary.json").read_text())
    assert first[-1] <= summary["resumed_from"] < total and summary["timesteps"] >= total
    from stable_baselines3 import PPO

    assert PPO.load(str(out / "model.zip")).num_timesteps == summary["timesteps"]
    with open(out / "episodes.csv", newline="") as fh:
        steps = [int(r["timesteps"]) for r in csv.DictReader(fh)]
    assert steps == sorted(steps) and steps[-1] <= summary["timesteps"]  # nothing logged twice across the kill
    assert len(steps) == summary["timesteps"] // 12  # one line per finished 12-day episode of each row
    # resuming a finished run trains nothing more (its model is kept, not retrained from the last checkpoint)
    model = (out / "model.zip").read_bytes()
    assert train_cli.main(["--resume", "--out", str(out), "--quiet"]) == 0
    assert (out / "model.zip").read_bytes() == model and len((out / "episodes.csv").read_text().splitlines()) == \
        len(steps) + 1
    # and may extend it
    assert train_cli.main(["--resume", "--out", str(out), "--quiet", "--total-timesteps", str(total + 480)]) == 0
    assert PPO.load(str(out / "model.zip")).num_timesteps >= total + 480


def test_one_policy_across_scenarios_logs_each(tmp_path):
    cfg = write(tmp_path, {**SMALL, "env": {"scenario": ["tiny", "nonstationary"], "n_users": 300, "max_days": 12},
                           "vec": {"copies": 1}, "total_timesteps": 384})
    out = tmp_path / "run"
    assert train_cli.main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    with open(out / "episodes.csv", newline="") as fh:
        assert {r["scenario"] for r in csv.DictReader(fh)} == {"tiny", "nonstationary"}
    resolved = C.from_dict(yaml.safe_load((out / "config.yaml").read_text()))
    assert [kw["scenario"] for kw in resolved.env_copies()] == ["tiny", "nonstationary"]
    assert resolved.eval["scenarios"] == ["tiny", "nonstationary"]


def test_final_evaluation_ranks_the_policy_with_evaluate_machinery(tmp_path, capsys):
    cfg = write(tmp_path, {**SMALL, "total_timesteps": 192, "eval": {"seeds": 2, "agents": ["random"],
                                                                     "workers": 1}})
    out = tmp_path / "run"
    assert train_cli.main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "cfg on tiny: " in printed and "(0 = hold, 1 = static oracle); best other agent random" in printed
    md = (out / "leaderboard.md").read_text()
    for label in ("cfg", "random", "hold", "oracle-static"):
        assert f"| {label}" in md, label
    assert (out / "report.html").stat().st_size > 1000
    from arena_env.evaluation import tournament

    rows, _ = tournament.read_results(out / "results.parquet")
    mine = [r for r in rows if r["agent"] == "cfg"]
    assert len(mine) == 2 and {r["seed"] for r in mine} == {1_000_000, 1_000_001} and not any(r["failed"] for r in mine)


@pytest.mark.parametrize("name", ["ppo", "a2c", "dqn"])
def test_shipped_configs_are_valid_and_train(tmp_path, name):
    cfg = C.resolve(ROOT / "configs" / f"{name}.yaml")
    assert cfg.algo == name.upper() and cfg.eval["seeds"] >= 20
    small = ["env.scenario=tiny", "env.n_users=300", "env.max_days=12", "vec.copies=1", "eval.enabled=false",
             "checkpoint.every=1000"]
    if name != "dqn":
        small += [f"{name}.n_steps=24"] + (["ppo.batch_size=24"] if name == "ppo" else [])
    else:
        small += ["dqn.learning_starts=24", "dqn.buffer_size=1000"]
    args = ["--config", str(ROOT / "configs" / f"{name}.yaml"), "--out", str(tmp_path / name), "--quiet",
            "--total-timesteps", "96"] + [x for s in small for x in ("--set", s)]
    assert train_cli.main(args) == 0
    assert (tmp_path / name / "model.zip").is_file()


@pytest.mark.parametrize("change, words", [
    ({"colour": "red"}, ["cfg.yaml: colour: unknown key", "allowed keys"]),
    ({"algo": "PPQ"}, ["algo: unknown Stable-Baselines3 algorithm 'PPQ'", "PPO"]),
    ({"a2c": {"n_steps": 5}}, ["a2c: unknown key", "algo PPO is 'ppo'"]),
    ({"ppo": {"n_step": 5}}, ["ppo.n_step: not an argument of stable_baselines3.PPO", "n_steps"]),
    ({"ppo": {"seed": 5}}, ["ppo.seed: is set by train.py"]),
    ({"ppo": {"device": "cuda"}}, ["ppo.device: is set by train.py", "device cpu"]),
    ({"ppo": {"policy_kwargs": {"activation_fn": "swoosh"}}}, ["activation_fn", "'swoosh'"]),
    ({"ppo": {"learning_rate": "cos_3"}}, ["learning_rate", "lin_<x>"]),
    ({"seed": 1_000_000}, ["seed: an integer from 0 to 999,999"]),
    ({"total_timesteps": 0}, ["total_timesteps: a positive integer"]),
    ({"env": {"scenario": "nowhere"}}, ["env: on scenario nowhere"]),
    ({"env": {"scenario": "tiny", "n_users": "many"}}, ["cfg.yaml: env.n_users: expected an integer, got str 'many'"]),
    ({"env": {"scenario": "tiny", "n_users": -3}}, ["cfg.yaml: env.n_users: -3 is out of range"]),
    ({"env": {"scenario": "tiny", "tenant": {"nope": 1}}}, ["cfg.yaml: env.tenant.nope: unknown economy parameter"]),
    ({"ppo": {"n_epochs": 0}}, ["cfg.yaml: ppo.n_epochs: an integer >= 1, got 0"]),  # SB3 fails only inside learn()
    ({"ppo": {"n_steps": "abc"}}, ["ppo.n_steps: an integer (the signature of stable_baselines3.PPO), got 'abc'"]),
    ({"ppo": {"gamma": "abc"}}, ["ppo.gamma: a number", "got 'abc'"]),
    ({"ppo": {"normalize_advantage": "yes"}}, ["ppo.normalize_advantage: true or false"]),
    ({"ppo": {"target_kl": "x"}}, ["ppo.target_kl: a number or null"]),
    ({"vec": {"learners": ["variant_0", "variant_0"]}}, ["vec.learners: on scenario tiny", "variant_0 listed twice"]),
    ({"vec": {"opponents": "ucb1"}}, ["vec.opponents: 'ucb1' would play no seat: with vec.learners all",
                                      "e.g. vec.learners: [variant_0]", "or remove vec.opponents"]),
    ({"vec": {"learners": ["variant_0", "variant_1"], "opponents": "ucb1"}}, ["vec.opponents", "would play no seat"]),
    ({"vec": {"learners": ["variant_0"], "opponents": "nosuchagent"}},
     ["vec.opponents: on scenario tiny", "unknown agent 'nosuchagent'"]),
    ({"vec": {"learners": ["variant_0"], "opponents": {"variant_1": {"agent": "fixed", "params": {"bogus": 1}}}}},
     ["vec.opponents", "unknown hyperparameter 'bogus'"]),
    ({"vec": {"learners": ["variant_0"], "opponents": {"variant_7": "ucb1"}}},
     ["vec.opponents", "['variant_7'] are not opponents"]),
    ({"env": {"scenario": "tiny", "num_threads": 2}}, ["env.num_threads: is set by train.py", "threads.numba"]),
    ({"vec": {"copies": 0}}, ["vec.copies: a positive integer"]),
    ({"vec": {"learners": ["variant_7"]}}, ["vec.learners", "variant_7"]),
    ({"vec": {"copy": 2}}, ["vec.copy: unknown key"]),
    ({"vec": {"workers": 0}}, ["vec.workers: a positive integer"]),
    ({"threads": {"torch": 0}}, ["threads.torch: a positive integer"]),
    ({"eval": {"enabled": True, "agents": ["nobody"]}}, ["eval", "unknown agent 'nobody'"]),
    ({"run_name": "a/b"}, ["run_name: a non-empty name without '/'"]),
    ({"checkpoint": {"select": "median"}}, ["checkpoint.select: last (the final model) or best"]),
    ({"checkpoint": {"validation_seeds": 0}}, ["checkpoint.validation_seeds: a positive number"]),
])
def test_config_errors_name_the_file_and_the_key(tmp_path, change, words):
    data = {**SMALL, **change}
    path = write(tmp_path, data)
    with pytest.raises(C.TrainConfigError) as exc:
        C.resolve(path)
    for w in words:
        assert w in str(exc.value), (w, str(exc.value))
    assert "scenarios/" not in str(exc.value)  # a value of the training config is not blamed on a scenario file


def test_command_line_overrides_and_their_errors(tmp_path, capsys):
    path = write(tmp_path, SMALL)
    cfg = C.resolve(path, ["ppo.n_steps=24", "env.n_users=200", "vec.copies=3", "eval.agents=[hold, ucb1]",
                           "ppo.learning_rate=5e-4"])
    assert cfg.algo_kwargs["n_steps"] == 24 and cfg.env["n_users"] == 200 and cfg.vec["copies"] == 3
    assert cfg.algo_kwargs["learning_rate"] == 5e-4  # read as the files are: 5e-4 is a number, not a string
    assert cfg.eval["agents"] == ["hold", "ucb1"] and len(cfg.env_copies()) == 3
    with pytest.raises(C.TrainConfigError, match="expected section.key=value"):
        C.resolve(path, ["ppo.n_steps"])
    with pytest.raises(C.TrainConfigError, match="ppo.n_stepz: not an argument"):
        C.resolve(path, ["ppo.n_stepz=3"])
    assert train_cli.main(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: cannot read the file" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("algo: PPO\nppo: [1, 2\n")
    assert train_cli.main(["--config", str(bad)]) == 2
    assert "bad.yaml: malformed YAML at line" in capsys.readouterr().err
    assert train_cli.main(["--resume", "--out", str(tmp_path / "nowhere")]) == 2
    assert "config.yaml does not exist" in capsys.readouterr().err


def test_the_vecenv_is_closed_after_an_exception(tmp_path, monkeypatch):
    from arena_env.wrappers.vec import EconomyVecEnv

    closed = []
    original = EconomyVecEnv.close
    monkeypatch.setattr(EconomyVecEnv, "close", lambda self: (closed.append(True), original(self)))

    def boom(self):
        raise RuntimeError("boom in a callback")

    monkeypatch.setattr(R.Checkpoints, "_on_step", boom)
    with pytest.raises(RuntimeError, match="boom"):
        R.train(C.from_dict(SMALL, "test"), tmp_path / "run", progress=False)
    assert closed  # the VecEnv was closed on the way out
    assert not (tmp_path / "run" / "model.zip").exists()


def test_threads_are_set_as_configured(tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        R.set_threads(C.from_dict({**SMALL, "threads": {"torch": 1, "numba": 1}}, "test"))
        assert torch.get_num_threads() == 1
        cfg = C.from_dict({**SMALL, "threads": {"torch": 1, "numba": 1}}, "test")
        assert all(kw["num_threads"] == 1 for kw in cfg.env_copies())
    finally:
        torch.set_num_threads(before)


def test_the_shipped_policy_loads_and_beats_hold_on_default():
    """configs/policies/ppo-default.zip: PPO, continuous (its arena.json), and on two evaluation seeds
    of the shipped default it earns more than hold (ranked against the economy's own returns)."""
    from agents.learners import SB3Policy, read_meta
    from arena_env.evaluation import tournament

    path = tournament.SHIPPED_POLICY
    assert read_meta(str(path))["algo"] == "PPO" and read_meta(str(path))["action_mode"] == "continuous"
    assert SB3Policy(str(path)).action_mode == "continuous"
    cfg = tournament.from_dict({"agents": [{"checkpoint": str(path), "label": "ppo"}, "hold"], "seeds": 2,
                                "oracle": False, "track": "solo"}, "test")
    rows = {}
    for cell in cfg.cells():
        for r in tournament.play_cell(cfg, cell):
            rows[(r["agent"], r["seed"])] = r["score"]
    for seed in (1_000_000, 1_000_001):
        assert rows[("ppo", seed)] > rows[("hold", seed)] + 0.3, rows  # the oracle's margin is ~0.5 EUR/user


def test_ctrl_c_saves_a_checkpoint_that_resume_continues(tmp_path, monkeypatch):
    cfg = C.from_dict({**SMALL, "checkpoint": {"every": 10_000},  # a linear learning-rate schedule survives too
                       "ppo": {**SMALL["ppo"], "learning_rate": "lin_3e-4"}}, "test")
    original = R.ArenaLog._on_step

    def interrupt(self):
        if self.num_timesteps >= 200:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(R.ArenaLog, "_on_step", interrupt)
    with pytest.raises(KeyboardInterrupt):
        R.train(cfg, tmp_path / "run", progress=False)
    saved = R.checkpoints(tmp_path / "run" / "checkpoints")
    assert saved == [200]  # saved at the interruption, not only at the (never reached) checkpoint period
    monkeypatch.setattr(R.ArenaLog, "_on_step", original)
    summary = R.train(cfg, tmp_path / "run", resume=True, progress=False)
    assert summary["resumed_from"] == 200 and summary["timesteps"] >= cfg.total_timesteps
    from stable_baselines3 import PPO

    model = PPO.load(str(tmp_path / "run" / "model.zip"))
    assert model.lr_schedule(1.0) == pytest.approx(3e-4) and model.lr_schedule(0.5) == pytest.approx(1.5e-4)


def test_best_checkpoint_selection_scores_every_checkpoint_on_validation_seeds(tmp_path):
    data = {**SMALL, "checkpoint": {"every": 192, "keep": 1, "select": "best", "validation_seeds": 2},
            "eval": {**SMALL["eval"], "overrides": {"n_users": 300, "max_days": 12}}}
    out = tmp_path / "run"
    assert train_cli.main(["--config", str(write(tmp_path, data)), "--out", str(out), "--quiet"]) == 0
    import json

    sel = json.loads((out / "summary.json").read_text())["selection"]
    assert R.checkpoints(out / "checkpoints") == [192, 384, 576, 768]  # all kept for the selection, not 1
    assert set(sel["scores"]) == {"model_192", "model_384", "model_576", "model_768", "last"}
    assert sel["selected"] == max(sel["scores"], key=lambda k: (sel["scores"][k], k == "last"))
    chosen = out / "last_model.zip" if sel["selected"] == "last" else out / "checkpoints" / f"{sel['selected']}.zip"
    assert (out / "model.zip").read_bytes() == chosen.read_bytes() and (out / "last_model.zip").is_file()
    # a score is the mean return of the policy over the validation episodes, recomputed independently
    cfg = C.from_dict({**data, "run_name": "run"}, "x")
    import agents
    from arena_env.economy.env import EconomyEnv
    from arena_env.wrappers.agents import run_episode

    policy = agents.make("sb3", path=str(out / "checkpoints" / "model_384.zip"))
    env = EconomyEnv("tiny", info_level="light", num_threads=1, action_mode="absolute", n_users=300, max_days=12)
    want = np.mean([run_episode(env, {"variant_0": policy}, seed=C.VALIDATION_SEED_BASE + i)["rewards"]["variant_0"]
                    for i in range(2)])
    assert sel["scores"]["model_384"] == pytest.approx(want, rel=1e-12) == R.validation_score(cfg, out / "checkpoints" /
                                                                                             "model_384.zip")


# --- starts that fail, finished runs resumed, outputs (a new-user pass) --------------------------------------


@pytest.mark.parametrize("sets, words", [
    (["ppo.batch_size=1"], ["cfg.yaml: ppo.batch_size: refused by stable_baselines3.PPO", "greater than 1"]),
    (["ppo.policy=CnnPolicyX"], ["cfg.yaml: ppo.policy: refused by stable_baselines3.PPO", "CnnPolicyX unknown"]),
    (["ppo.policy_kwargs={net_arch: abc}"], ["cfg.yaml: ppo.policy_kwargs: refused by stable_baselines3.PPO"]),
    (["ppo.n_epochs=0"], ["cfg.yaml: ppo.n_epochs: an integer >= 1"]),
    (["vec.learners=[variant_0]", "vec.opponents=nosuchagent"], ["cfg.yaml: vec.opponents:", "'nosuchagent'"]),
])
def test_a_start_that_fails_is_an_error_and_claims_no_run(tmp_path, capsys, sets, words):
    cfg = write(tmp_path, SMALL)
    out = tmp_path / "run"
    argv = ["--config", str(cfg), "--out", str(out), "--quiet"]
    assert train_cli.main(argv + [x for s in sets for x in ("--set", s)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    for w in words:
        assert w in err, (w, err)
    assert not (out / "config.yaml").exists()  # not claimed: the same --out takes the corrected command
    assert train_cli.main(argv + ["--total-timesteps", "192"]) == 0


def test_an_algorithm_that_refuses_the_action_mode_names_env_action_mode(tmp_path, capsys):
    out = tmp_path / "dqn"
    sets = ["env.action_mode=continuous", "env.scenario=tiny", "env.n_users=300", "vec.copies=1",
            "dqn.buffer_size=1000"]
    assert train_cli.main(["--config", str(ROOT / "configs" / "dqn.yaml"), "--out", str(out), "--quiet",
                           "--no-eval"] + [x for s in sets for x in ("--set", s)]) == 2
    err = capsys.readouterr().err
    assert "dqn.yaml: env.action_mode: stable_baselines3.DQN does not take this env's actions (action_mode continuous" \
        in err and "Discrete" in err
    assert not out.exists()


def test_extending_a_best_selection_run_scores_and_keeps_its_new_final_model(tmp_path):
    import json

    from stable_baselines3 import PPO

    data = {**SMALL, "total_timesteps": 384, "checkpoint": {"every": 192, "select": "best", "validation_seeds": 1},
            "eval": {**SMALL["eval"], "overrides": {"n_users": 300, "max_days": 12}}}
    out = tmp_path / "run"
    assert train_cli.main(["--config", str(write(tmp_path, data)), "--out", str(out), "--quiet"]) == 0
    assert train_cli.main(["--resume", "--out", str(out), "--quiet", "--total-timesteps", "768"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["timesteps"] == 768 and set(summary["selection"]["scores"]) == {
        "model_192", "model_384", "model_576", "model_768", "last"}
    assert PPO.load(str(out / "last_model.zip")).num_timesteps == 768  # the new final model, not the first run's
    sel = summary["selection"]["selected"]
    chosen = out / "last_model.zip" if sel == "last" else out / "checkpoints" / f"{sel}.zip"
    assert (out / "model.zip").read_bytes() == chosen.read_bytes()
    assert yaml.safe_load((out / "config.yaml").read_text())["total_timesteps"] == 768  # the value used


def test_resuming_a_finished_run_keeps_its_model_and_summary(tmp_path, monkeypatch, capsys):
    import json

    cfg = write(tmp_path, {**SMALL, "total_timesteps": 192, "checkpoint": {"every": 10_000},  # no checkpoint
                           "eval": {**SMALL["eval"], "enabled": True}})
    out = tmp_path / "run"
    evaluated = []
    monkeypatch.setattr(R, "evaluate_policy", lambda *a, **k: evaluated.append(1) or [{"agent": "cfg"}])
    assert train_cli.main(["--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    model, episodes = (out / "model.zip").read_bytes(), (out / "episodes.csv").read_text()
    first = json.loads((out / "summary.json").read_text())
    assert R.checkpoints(out / "checkpoints") == [] and R.trained(C.from_dict(SMALL, "x"), out) is None  # 768 > 192
    assert train_cli.main(["--resume", "--out", str(out), "--quiet"]) == 0
    assert (out / "model.zip").read_bytes() == model and (out / "episodes.csv").read_text() == episodes
    again = json.loads((out / "summary.json").read_text())
    assert {k: again[k] for k in ("timesteps", "steps_per_s", "resumed_from")} == {
        k: first[k] for k in ("timesteps", "steps_per_s", "resumed_from")}
    # as after kill -9 between the final save and the summary: the saved model's timesteps tell the training is done
    (out / "summary.json").unlink()
    assert train_cli.main(["--resume", "--out", str(out), "--quiet"]) == 0
    assert (out / "model.zip").read_bytes() == model
    assert json.loads((out / "summary.json").read_text())["timesteps"] == 192

    # Ctrl-C in the evaluation: the model is kept, the message says so, and --resume goes straight to the evaluation
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(R, "evaluate_policy", interrupted)
    capsys.readouterr()
    assert train_cli.main(["--resume", "--out", str(out), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert f"interrupted during the evaluation; the trained model is saved ({out / 'model.zip'})" in err
    assert f"cells.jsonl); finish with: python train.py --resume --out {out}" in err
    evaluated.clear()
    monkeypatch.setattr(R, "evaluate_policy", lambda *a, **k: evaluated.append(1) or [{"agent": "cfg"}])
    assert train_cli.main(["--resume", "--out", str(out), "--quiet"]) == 0
    assert evaluated == [1] and (out / "model.zip").read_bytes() == model
    summary = json.loads((out / "summary.json").read_text())
    assert summary["timesteps"] == 192 and summary["leaderboard"] == [{"agent": "cfg"}]


def test_a_finished_run_is_told_from_a_killed_one_by_its_saved_model(tmp_path):
    cfg = C.from_dict({**SMALL, "total_timesteps": 192}, "x")
    assert R.trained(cfg, tmp_path) is None  # nothing saved
    (tmp_path / "model.tmp.zip").write_bytes(b"cut short")  # a save killed half-way is under its temporary name
    assert R.trained(cfg, tmp_path) is None
    (tmp_path / "model.zip").write_bytes(b"not a zip")
    assert R.trained(cfg, tmp_path) is None


def test_command_line_checks(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        train_cli.main(["--config", str(ROOT / "configs" / "ppo.yaml"), "--total-timesteps", "0"])
    assert exc.value.code == 2 and "--total-timesteps: expected a positive integer, got 0" in capsys.readouterr().err
    (tmp_path / "f").write_text("")
    for argv in (["--config", str(write(tmp_path, SMALL))], ["--resume"]):
        assert train_cli.main(argv + ["--out", str(tmp_path / "f")]) == 2
        assert f"--out {tmp_path / 'f'}: a file is there" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_cli.main(["--help"])
    assert "(Ray RLlib, multi-agent; arena_env/training/rllib.py)." in " ".join(capsys.readouterr().out.split())
    (tmp_path / "r" / "policy").mkdir(parents=True)
    assert train_cli.outputs({"framework": "rllib", "run_dir": str(tmp_path / "r")}) == ["policy/"]  # no checkpoints/


def _drawn(run_dir: Path, monkeypatch):
    """The axes of the learning curve of ``run_dir`` (as drawn to curve.png)."""
    from matplotlib.figure import Figure

    from arena_env.training import curve

    figs = []
    original = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (figs.append(self), original(self, *a, **k))[1])
    curve.plot(run_dir)
    return figs[0].axes[0]


def _curve_run(tmp_path: Path, returns: list[float], scenarios: list[str], table: str) -> Path:
    """A run directory with 12-step episodes of the given returns and a one-table leaderboard.csv."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"algo": "PPO", "run_name": "cfg",
                                                          "eval": {"scenarios": scenarios}}))
    with open(tmp_path / "episodes.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, R.EPISODE_FIELDS)
        w.writeheader()
        for i, r in enumerate(returns):
            w.writerow({"timesteps": 12 * (i + 1), "scenario": "tiny", "agent": "variant_0", "return": r, "length": 12})
    with open(tmp_path / "leaderboard.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, ["track", "scenario", "agent", "raw_mean"])
        w.writeheader()
        for agent, y in (("hold", 0.0), ("oracle-static", 0.1), ("cfg", 0.05)):
            w.writerow({"track": "solo", "scenario": table, "agent": agent, "raw_mean": y})
    return tmp_path


def test_the_curve_draws_the_reference_lines_of_a_one_scenario_evaluation(tmp_path, monkeypatch):
    # one evaluation scenario: leaderboard.csv has only the "all" table (its rows are that scenario's)
    ax = _drawn(_curve_run(tmp_path, [0.01 * i for i in range(60)], ["tiny"], "all"), monkeypatch)
    ys = sorted(line.get_ydata()[0] for line in ax.lines[1:])
    assert ys == [0.0, 0.05, 0.1]  # hold, the policy, the static oracle
    labels = ax.get_legend_handles_labels()[1]
    assert any(t.startswith("hold (0)") for t in labels) and any(t.startswith("static oracle (1)") for t in labels)


def test_the_curve_keeps_the_latest_bins_in_view(tmp_path, monkeypatch):
    # a short run far below hold - 2 gaps (0 - 0.2), improving: the last bins stay in view, the note counts the rest
    returns = [-3.0 + 0.02 * i for i in range(60)]
    ax = _drawn(_curve_run(tmp_path, returns, ["tiny"], "all"), monkeypatch)
    bottom, top = ax.get_ylim()
    means = list(ax.lines[0].get_ydata())
    assert all(bottom <= m <= top for m in means[-len(means) // 4:])  # the latest quarter of the bins is drawn
    below = sum(m < bottom for m in means)
    assert 0 < below < len(means)
    assert [t.get_text() for t in ax.texts] == [f"{below} earlier bins below the axis"]
    # a curve within the range: no note, nothing cut
    ax = _drawn(_curve_run(tmp_path, [0.001 * i for i in range(60)], ["tiny"], "all"), monkeypatch)
    assert not ax.texts and ax.get_ylim()[0] <= min(ax.lines[0].get_ydata())


@pytest.mark.parametrize("edit, match", [
    (lambda text: text + "120,tiny,variant_0,notanumber,0,0,0,12\n",
     r"line 62: return: expected a number, got 'notanumber'"),
    (lambda text: text + "120,tiny,vari", r"line 62: return: expected a number, got None"),  # cut short by a kill
    (lambda text: text + "12.5,tiny,variant_0,0.1,0,0,0,12\n", r"line 62: timesteps: expected an integer, got '12.5'"),
    (lambda text: text.replace("return", "ret", 1), r"the header has no column 'return'"),
])
def test_the_curve_names_the_line_and_column_of_a_malformed_episodes_csv(tmp_path, edit, match):
    """A bad line of episodes.csv was a bare ValueError without the file (or an uncaught TypeError for a line
    cut short); python -m arena_env.training.curve now says which line and column, and exits with 2."""
    from arena_env.training import curve

    run = _curve_run(tmp_path, [0.01 * i for i in range(60)], ["tiny"], "all")
    path = run / "episodes.csv"
    path.write_text(edit(path.read_text()))
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": " + match):
        curve.plot(run)
    assert curve.main([str(run)]) == 2


def test_rllib_arguments_are_checked_against_their_types():
    pytest.importorskip("ray")
    from arena_env.training import rllib

    path = ROOT / "configs" / "rllib_ppo.yaml"
    with pytest.raises(C.TrainConfigError, match=r"rllib_ppo.yaml: rllib.training.minibatch_size: an integer or null "
                                                 r"\(the signature of PPOConfig.training\), got 'abc'"):
        rllib.resolve(path, ["rllib.training.minibatch_size=abc"])
    with pytest.raises(C.TrainConfigError, match=r"rllib_ppo.yaml: env.n_users: -3 is out of range"):
        rllib.resolve(path, ["env.n_users=-3"])
