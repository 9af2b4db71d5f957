"""train.py on Ray RLlib (``framework: rllib``): a tiny training, the same weights for the same seed in
processes with different hash seeds, the saved policy reloads and gives the same actions, shared and
independent policies, resume, the checkpoint in a tournament, config errors; the MultiAgentEnv adapter
keeps the env's agent order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")
torch = pytest.importorskip("torch")

from arena_env.training import rllib  # noqa: E402
from arena_env.training.config import TrainConfigError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = {"framework": "rllib", "algo": "PPO", "run_name": "t", "seed": 5, "total_timesteps": 800,
        "env": {"scenario": "tiny", "n_users": 300, "max_days": 10, "action_mode": "continuous"},
        "ray": {"num_cpus": 1},
        "rllib": {"env_runners": {"num_env_runners": 0, "rollout_fragment_length": 10},
                  "training": {"train_batch_size_per_learner": 200, "minibatch_size": 100, "num_epochs": 2},
                  "rl_module": {"model_config": {"fcnet_hiddens": [16, 16]}}},
        "checkpoint": {"every": 1, "keep": 2},
        "eval": {"enabled": False, "seeds": 2, "agents": ["hold"]}}


def weights(policy_dir: Path, module: str = "shared") -> dict:
    from ray.rllib.core.rl_module.rl_module import RLModule

    m = RLModule.from_checkpoint(str(policy_dir / "learner_group" / "learner" / "rl_module" / module))
    return {k: v.detach().numpy().copy() for k, v in m.state_dict().items()} if hasattr(m, "state_dict") else \
        {k: np.asarray(v) for k, v in m.get_state().items()}


def train_in_subprocess(cfg_path: Path, out: Path, hash_seed: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_") and k != "PYTHONHASHSEED"}
    env.update(HOME=str(out.parent / "home"), **({"PYTHONHASHSEED": hash_seed} if hash_seed else {}))
    return subprocess.run([sys.executable, "train.py", "--config", str(cfg_path), "--out", str(out), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)


def test_training_is_deterministic_across_processes_and_the_policy_reloads(tmp_path):
    import yaml

    cfg_path = tmp_path / "t.yaml"
    cfg_path.write_text(yaml.safe_dump(TINY))
    (tmp_path / "home").mkdir()
    # hash seeds 1 and 5 gave different weights before train.py fixed the hash seed of RLlib runs (RLlib
    # iterates sets of agent ids); unset is random
    a = train_in_subprocess(cfg_path, tmp_path / "a", "1")
    assert a.returncode == 0, a.stderr[-3000:]
    b = train_in_subprocess(cfg_path, tmp_path / "b", "5")
    assert b.returncode == 0, b.stderr[-3000:]
    c = train_in_subprocess(cfg_path, tmp_path / "c", None)
    assert c.returncode == 0, c.stderr[-3000:]
    assert "run in" in a.stdout and "policy/" in a.stdout
    wa, wb, wc = (weights(tmp_path / x / "policy") for x in "abc")
    assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) and np.array_equal(wa[k], wc[k]) for k in wa)
    assert (tmp_path / "a" / "progress.csv").read_text().split("\n")[1].split(",")[:4] == \
        (tmp_path / "b" / "progress.csv").read_text().split("\n")[1].split(",")[:4]
    first = weights(tmp_path / "a" / "checkpoints" / "iter_1")
    assert any(not np.array_equal(first[k], wa[k]) for k in wa)  # the second iteration learnt something
    meta = json.loads((tmp_path / "a" / "policy" / "arena.json").read_text())
    assert meta["framework"] == "rllib" and meta["modules"] == ["shared"] and meta["timesteps"] == 800
    rows = (tmp_path / "a" / "progress.csv").read_text().splitlines()
    assert rows[0] == ",".join(rllib.CSV_FIELDS) and len(rows) - 1 == meta["iteration"] == 2  # 2 x 200 days x 2 agents
    assert not (tmp_path / "home" / ".ray").exists() and not (tmp_path / "home" / "ray_results").exists()
    assert list((tmp_path / "a" / "rllib").iterdir())  # RLlib's result logs are in the run
    assert rllib.checkpoints(tmp_path / "a" / "checkpoints") == [1, 2]  # every iteration, keep 2

    # the saved policy as an agent: the same actions as the trained module's mode, every time
    import agents
    from arena_env.economy.env import EconomyEnv
    from arena_env.wrappers.agents import action_for, context_for

    agent = agents.make("rllib", path=str(tmp_path / "a" / "policy"))
    again = agents.make("rllib", path=str(tmp_path / "b" / "policy"))
    env = EconomyEnv("tiny", n_users=300, max_days=10, action_mode="continuous")
    obs, _ = env.reset(seed=1)
    for _ in range(5):
        ctx = context_for(env, "variant_0", obs["variant_0"])
        u1, u2 = agent.act(ctx), again.act(ctx)
        assert u1 == u2
        x = torch.as_tensor(np.asarray(obs["variant_0"], np.float32)[None])
        out = agent.module.forward_inference({"obs": x})["action_dist_inputs"][0].detach().numpy()
        mean = np.clip(out[: env.action_space("variant_0").shape[0]], -1, 1)  # the Gaussian's mode
        from agents.learners import fractions_to_update

        assert u1 == fractions_to_update(ctx, mean, "policy action")
        obs, *_ = env.step({a: action_for(env, a, u1 if a == "variant_0" else None) for a in env.agents})


def test_independent_policies_resume_and_enter_a_tournament(tmp_path):
    cfg = rllib.from_dict({**TINY, "policies": "independent"}, "t.yaml")
    s1 = rllib.train(cfg, tmp_path / "run", progress=False)
    meta = json.loads((tmp_path / "run" / "policy" / "arena.json").read_text())
    assert meta["modules"] == ["variant_0", "variant_1"] and s1["iterations"] == 2
    w0, w1 = weights(tmp_path / "run" / "policy", "variant_0"), weights(tmp_path / "run" / "policy", "variant_1")
    assert any(not np.array_equal(w0[k], w1[k]) for k in w0)  # two policies, not one
    with pytest.raises(FileExistsError, match="pass --resume"):
        rllib.train(cfg, tmp_path / "run", progress=False)
    s2 = rllib.train(rllib.resume_config(tmp_path / "run", 1600), tmp_path / "run", resume=True, progress=False)
    assert s2["resumed_from_iteration"] == 2 and s2["iterations"] == 4 and s2["timesteps"] == 1600
    rows = (tmp_path / "run" / "progress.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1, 2, 3, 4]

    from arena_env.evaluation import tournament

    t = tournament.from_dict({"scenarios": ["tiny"], "seeds": 2, "overrides": {"max_days": 10, "n_users": 300},
                              "agents": [{"agent": "hold", "baseline": True},
                                         {"checkpoint": str(tmp_path / "run" / "policy"), "label": "mine",
                                          "params": {"module": "variant_1"}}]}, str(tmp_path / "t.yaml"))
    assert t.spec("mine").agent == "rllib"
    got = tournament.run(t, tmp_path / "ev", workers=1)
    mine = [r for r in got if r["agent"] == "mine"]
    assert len(mine) == 2 and not any(r["failed"] for r in mine), [r["error"] for r in mine]


def test_extending_a_finished_run_trains_on_from_its_final_policy(tmp_path):
    """No checkpoint at the end of the training (every 5 iterations, 2 trained): --resume with a larger
    total_timesteps goes on from policy/, it does not train again from the start."""
    cfg = rllib.from_dict({**TINY, "checkpoint": {"every": 5, "keep": 2}}, "t.yaml")
    rllib.train(cfg, tmp_path / "run", progress=False)
    assert rllib.checkpoints(tmp_path / "run" / "checkpoints") == []
    before = (tmp_path / "run" / "progress.csv").read_text().splitlines()
    final = weights(tmp_path / "run" / "policy")
    s = rllib.train(rllib.resume_config(tmp_path / "run", 1200), tmp_path / "run", resume=True, progress=False)
    assert s["resumed_from_iteration"] == 2 and s["iterations"] == 3 and s["timesteps"] == 1200
    rows = (tmp_path / "run" / "progress.csv").read_text().splitlines()
    assert rows[:3] == before and [int(r.split(",")[0]) for r in rows[1:]] == [1, 2, 3]
    assert json.loads((tmp_path / "run" / "policy" / "arena.json").read_text())["iteration"] == 3
    assert any(not np.array_equal(final[k], v) for k, v in weights(tmp_path / "run" / "policy").items())


@pytest.mark.parametrize("patch, match", [
    ({"framework": "rllib", "algo": "NOPE"}, "algo: unknown RLlib algorithm 'NOPE'"),
    ({"policies": "some"}, "policies: one of shared, independent"),
    ({"rllib": {"training": {"lrr": 1}}}, "rllib.training.lrr: not an argument of PPOConfig.training"),
    ({"rllib": {"environment": {"env": "x"}}}, "rllib.environment: is set by train.py"),
    ({"rllib": {"debugging": {"seed": 3}}}, "rllib.debugging.seed: is set by train.py"),
    ({"rllib": {"fly": {}}}, "rllib.fly: not a method of PPOConfig"),
    ({"env": {"scenario": "tiny", "seed": 3}}, "env.seed: is set by train.py"),
    ({"env": {"scenario": "nowhere"}}, "env: unknown scenario 'nowhere'"),
    ({"ray": {"cpus": 2}}, "ray.cpus: unknown key"),
    ({"extra": 1}, "extra: unknown key"),
])
def test_config_errors_name_the_file_and_the_key(patch, match):
    with pytest.raises(TrainConfigError, match=f"^t.yaml: {match}"):
        rllib.from_dict({**TINY, **patch}, "t.yaml")


def test_the_adapter_keeps_the_env_agent_order_and_seeds_each_copy():
    from arena_env.wrappers.rllib_env import EconomyMultiAgentEnv

    class Ctx(dict):
        worker_index, vector_index = 2, 1

    e = EconomyMultiAgentEnv(Ctx(scenario="interference", n_users=200, max_days=3, seed=7))
    assert e.possible_agents == e.env.possible_agents == [f"variant_{k}" for k in range(4)]
    e.reset()
    assert e.env.episode_seed == 7 + 1000 * 2 + 1  # the copy's own seed when RLlib gives none
    acts = {a: e.action_spaces[a].sample() * 0 for a in e.agents}
    for day in range(3):
        obs, rew, term, trunc, _ = e.step(acts)
        assert list(obs) == e.possible_agents and set(rew) == set(e.possible_agents)
    assert trunc["__all__"] or term["__all__"]


def test_every_env_copy_of_every_runner_gets_its_own_economy():
    """RLlib seeds the first reset of copy v of runner w with seed + w + v, which repeats across runners
    (runner 1 copy 1 and runner 2 copy 0 both got seed + 2: one economy twice).  The adapter gives each
    copy its own seed, the same as RLlib's for the local runner and for one remote runner."""
    from arena_env.wrappers.rllib_env import EconomyMultiAgentEnv

    seeds = {}
    for w in range(4):
        for v in range(3):
            ctx = type("Ctx", (dict,), {"worker_index": w, "vector_index": 0})(scenario="tiny", n_users=50,
                                                                                max_days=2, seed=5)  # RLlib 2.60: 0
            e = EconomyMultiAgentEnv(ctx)
            e.reset(seed=5 + w + v)  # what RLlib's MultiAgentEnvRunner passes copy v on its first reset
            seeds[w, v] = e.env.episode_seed
            if w <= 1:
                assert seeds[w, v] == 5 + w + v  # RLlib's own: one runner trains as it did
            e.reset(seed=123_456)  # another seed is used as given
            assert e.env.episode_seed == 123_456
            e.close()
    remote = [s for (w, v), s in seeds.items() if w >= 1]
    assert len(set(remote)) == len(remote)


def test_ctrl_c_during_training_names_the_checkpoint_a_resume_goes_on_from(tmp_path, monkeypatch, capsys):
    """Ctrl-C inside an iteration: the run stops with the newest checkpoint named and the command to go on;
    --resume then trains on from that checkpoint."""
    from ray.rllib.algorithms.algorithm import Algorithm

    cfg = rllib.from_dict({**TINY, "total_timesteps": 1200}, "t.yaml")
    calls = {"n": 0}
    real = Algorithm.train

    def interrupt_third(self):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(Algorithm, "train", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        rllib.train(cfg, tmp_path / "run", progress=False)
    err = capsys.readouterr().err
    assert "interrupted during iteration 3; the newest checkpoint is iteration 2" in err
    assert f"python train.py --resume --out {tmp_path / 'run'}" in err
    monkeypatch.setattr(Algorithm, "train", real)
    s = rllib.train(rllib.resume_config(tmp_path / "run"), tmp_path / "run", resume=True, progress=False)
    assert s["resumed_from_iteration"] == 2 and s["timesteps"] >= 1200
