"""EconomyVecEnv: rows, the SB3 VecEnv contract (terminal_observation, TimeLimit.truncated, autoreset,
seeding on the next reset), opponents, errors, and a PPO smoke run."""

from __future__ import annotations

import numpy as np
import pytest

import agents
from arena_env.economy.env import EconomyEnv
from arena_env.wrappers.vec import EconomyVecEnv

TINY = {"scenario": "tiny", "max_days": 6, "n_users": 300}


def test_rows_are_economy_by_economy_and_match_the_parallel_env():
    vec = EconomyVecEnv([TINY, {**TINY, "scenario": "default", "n_users": 400}], learners="all")
    try:
        assert vec.rows == [(0, a) for a in vec.envs[0].possible_agents] + [(1, a) for a in vec.envs[1].possible_agents]
        assert vec.num_envs == len(vec.rows) and vec.observation_space == vec.envs[0].observation_space("variant_0")
        vec.seed(11)
        obs = vec.reset()
        ref = EconomyEnv(**TINY)
        o_ref, _ = ref.reset(seed=11)  # economy 0 is seeded with the seed of its first row (11 + 0)
        n0 = len(vec.envs[0].possible_agents)
        np.testing.assert_array_equal(obs[:n0], np.stack([o_ref[a] for a in ref.possible_agents]))
        ref1 = EconomyEnv(**{**TINY, "scenario": "default", "n_users": 400})
        o1, _ = ref1.reset(seed=11 + n0)  # economy 1: its first row's seed
        np.testing.assert_array_equal(obs[n0:], np.stack([o1[a] for a in ref1.possible_agents]))
        assert len(vec.reset_infos) == vec.num_envs
    finally:
        vec.close()
        vec.close()  # twice is fine


def test_episode_end_gives_terminal_observation_truncation_and_autoreset():
    vec = EconomyVecEnv([TINY] * 2, learners=["variant_0"])
    ref = EconomyEnv(**TINY)
    vec.seed(5)
    obs = vec.reset()
    o, _ = ref.reset(seed=5)
    np.testing.assert_array_equal(obs[0], o["variant_0"])
    zero = np.zeros((vec.num_envs, *vec.action_space.shape), dtype=np.float32)
    for day in range(TINY["max_days"]):
        obs, rew, done, infos = vec.step(zero)
        o, r, term, trunc, _ = ref.step({"variant_0": zero[0]})
        assert rew[0] == np.float32(r["variant_0"])
        if day < TINY["max_days"] - 1:
            assert not done.any() and "terminal_observation" not in infos[0]
            np.testing.assert_array_equal(obs[0], o["variant_0"])
    assert done.all()
    for info in infos:
        assert info["TimeLimit.truncated"] is True  # ended by max_days
    np.testing.assert_array_equal(infos[0]["terminal_observation"], o["variant_0"])
    o_next, _ = ref.reset()  # the next episode follows from the seed
    np.testing.assert_array_equal(obs[0], o_next["variant_0"])  # autoreset: the first obs of episode 2
    assert vec.envs[0].day == 0 and vec.envs[0].agents


def test_same_seed_same_run_and_another_seed_another_run():
    def run(seed):
        vec = EconomyVecEnv([TINY] * 2, learners="all", opponents=None)
        vec.seed(seed)
        vec.reset()
        rng = np.random.default_rng(0)
        out = []
        for _ in range(2 * TINY["max_days"] + 2):  # across an autoreset
            a = rng.uniform(-1, 1, (vec.num_envs, *vec.action_space.shape)).astype(np.float32)
            out.append(vec.step(a)[1])
        vec.close()
        return np.stack(out)

    a, b, c = run(3), run(3), run(4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_opponents_by_name_drive_the_other_treatments():
    vec = EconomyVecEnv([{**TINY, "scenario": "default", "n_users": 400, "max_days": 20}], learners=["variant_0"],
                        opponents="random")
    assert vec.num_envs == 1 and type(vec.opponents[0]["variant_1"]).__name__ == "Random"
    vec.seed(2)
    vec.reset()
    for _ in range(15):
        vec.step(np.zeros((1, *vec.action_space.shape), dtype=np.float32))
    cfg = vec.envs[0].config
    assert vec.envs[0].day == 15
    assert (cfg[1] == cfg[0]).all()  # the learner asked for nothing (zero moves): variant_0 = the control
    assert (cfg[2] != cfg[0]).any()  # the random opponent moved variant_1


_ONE_AGENT = agents.make("hold")


@pytest.mark.parametrize("kw, words", [
    ({"copies": []}, ["copies", "non-empty"]),
    ({"copies": {"scenario": "tiny"}}, ["copies"]),
    ({"copies": [TINY], "learners": ["variant_9"]}, ["learners", "variant_0"]),
    ({"copies": [TINY], "learners": "variant_0"}, ["learners"]),
    ({"copies": [TINY], "learners": ["variant_0", "variant_0"]}, ["learners: variant_0 listed twice"]),
    ({"copies": [TINY, {**TINY, "action_mode": "discrete"}]}, ["copies[1]", "spaces"]),
    ({"copies": [TINY], "learners": ["variant_0"], "opponents": "nope"}, ["unknown agent 'nope'"]),
    ({"copies": [TINY, TINY], "learners": ["variant_0"], "opponents": _ONE_AGENT},  # one object in two economies
     ["one Hold object would play copies[0] variant_1, copies[1] variant_1", "instance of its own"]),
])
def test_bad_arguments_are_errors_that_say_what_to_fix(kw, words):
    with pytest.raises((ValueError, TypeError)) as exc:
        EconomyVecEnv(**kw)
    for w in words:
        assert w in str(exc.value)


def test_attribute_access_goes_to_the_rows_economy():
    vec = EconomyVecEnv([TINY, {**TINY, "max_days": 4}], learners="all")
    n0 = len(vec.envs[0].possible_agents)
    assert vec.get_attr("scenario")[0].max_days == 6 and vec.get_attr("scenario", n0)[0].max_days == 4
    assert vec.env_is_wrapped(object) == [False] * vec.num_envs
    vec.close()


def test_ppo_trains_on_it_deterministically():
    from stable_baselines3 import PPO

    def train(seed):
        vec = EconomyVecEnv([TINY] * 2, learners="all")
        model = PPO("MlpPolicy", vec, n_steps=16, batch_size=16, n_epochs=1, seed=seed, device="cpu",
                    policy_kwargs={"net_arch": [16]})
        model.learn(total_timesteps=64)
        vec.close()
        return np.concatenate([p.detach().numpy().ravel() for p in model.policy.parameters()])

    a, b = train(1), train(1)
    assert np.array_equal(a, b)
    assert np.isfinite(a).all()


def test_sb3s_own_wrappers_and_evaluation_accept_it():
    """SB3's VecEnv expectations, from SB3's side: VecCheckNan, VecMonitor and VecNormalize wrap it, and
    stable_baselines3's evaluate_policy counts its episodes and returns exactly the parallel env's
    episode returns (same seeds, same actions)."""
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecCheckNan, VecMonitor, VecNormalize

    class Zero:  # a policy with SB3's predict signature: always the zero action (hold)
        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            return np.zeros((len(obs), 10), np.float32), None

    vec = VecNormalize(VecMonitor(VecCheckNan(EconomyVecEnv([TINY] * 2, learners=["variant_0"]), raise_exception=True)),
                       norm_obs=False, norm_reward=True)
    try:
        vec.seed(21)
        rewards, lengths = evaluate_policy(Zero(), vec, n_eval_episodes=4, deterministic=True, return_episode_rewards=True)
    finally:
        vec.close()
    assert lengths == [TINY["max_days"]] * 4
    want = []
    for c in range(2):  # economy c: seed 21 + c, then its next episode
        ref = EconomyEnv(**TINY)
        for k in range(2):
            ref.reset(seed=21 + c if k == 0 else None)
            total = 0.0
            while ref.agents:
                total += float(np.float32(ref.step({})[1]["variant_0"]))
            want.append(total)
    assert sorted(rewards) == pytest.approx(sorted(want), abs=1e-5)  # VecMonitor sums the raw float32 rewards


# --- workers: economies stepped in several processes -------------------------------------------------


def _trajectory(vec: EconomyVecEnv, steps: int, seed: int = 3) -> list:
    """Every observation, reward, done and info of ``steps`` steps with random actions (autoresets included)."""
    rng = np.random.default_rng(seed)
    vec.seed(seed)
    out = [vec.reset()]
    for _ in range(steps):
        obs, rew, done, infos = vec.step(rng.uniform(-1, 1, (vec.num_envs, *vec.action_space.shape)).astype(np.float32))
        out += [obs, rew, done, [{k: v for k, v in i.items() if k != "terminal_observation"} for i in infos],
                [i.get("terminal_observation") for i in infos]]
    return out


def _assert_same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes()
        elif isinstance(x, list) and x and isinstance(x[0], (np.ndarray, type(None))):
            for p, q in zip(x, y):
                assert (p is None and q is None) or p.tobytes() == q.tobytes()
        else:
            assert x == y


@pytest.mark.parametrize("learners, opponents, workers", [("all", None, (2, 3)), (["variant_0"], "random", (2,))])
def test_workers_give_the_same_rows_bit_for_bit(learners, opponents, workers):
    copies = [TINY, {**TINY, "scenario": "default", "n_users": 400}, TINY]
    steps = 2 * TINY["max_days"] + 2  # two autoresets
    ref = EconomyVecEnv(copies, learners=learners, opponents=opponents)
    try:
        expected = _trajectory(ref, steps)
    finally:
        ref.close()
    for n in workers:
        vec = EconomyVecEnv(copies, learners=learners, opponents=opponents, workers=n)
        try:
            assert vec.rows == ref.rows and vec.num_envs == ref.num_envs
            _assert_same(_trajectory(vec, steps), expected)
            assert vec.get_attr("day") == ref.get_attr("day")  # attributes come from the workers
            assert vec.envs[2].scenario.name == "tiny" and vec.env_method("state", indices=[0])[0].shape == (72,)
        finally:
            vec.close()


def test_workers_report_errors_and_stop_on_close():
    vec = EconomyVecEnv([TINY] * 2, workers=2)
    procs = [w.process for w in vec._workers]
    try:
        assert len(procs) == 1 and procs[0].is_alive()
        with pytest.raises(AttributeError, match="no_such_attribute"):
            vec.envs[1].no_such_attribute
        with pytest.raises(RuntimeError, match=r"(?s)copies \[1\] failed.*Traceback.*call reset\(\) before step"):
            vec.envs[1].step({})  # the worker's env was never reset: its error comes back with the traceback
        vec.seed(0)
        assert vec.reset().shape == (vec.num_envs, 70)  # the worker is still usable after an error
    finally:
        vec.close()
        vec.close()
    assert not procs[0].is_alive()


def test_workers_are_validated():
    with pytest.raises(ValueError, match="workers: an integer from 1 to the number of copies \\(2\\)"):
        EconomyVecEnv([TINY] * 2, workers=3)
    with pytest.raises(ValueError, match="workers"):
        EconomyVecEnv([TINY] * 2, workers=True)
    with pytest.raises(ValueError, match="registered agent name"):
        EconomyVecEnv([TINY] * 2, learners=["variant_0"], opponents=lambda obs, info: None, workers=2)


def test_a_worker_whose_main_process_is_killed_exits_quietly(tmp_path):
    """kill -9 of the main process while a worker's reply waits unread in its pipe: the worker's next read
    fails with ECONNRESET, and it exits without a traceback."""
    import subprocess
    import sys

    script = tmp_path / "main.py"
    script.write_text(
        "import os, signal, time\n"
        "from arena_env.wrappers.vec import EconomyVecEnv\n"
        "if __name__ == '__main__':\n"
        f"    vec = EconomyVecEnv([{TINY!r}] * 2, workers=2)\n"
        "    vec._workers[0].send('getattr', (0, 'day'))\n"
        "    time.sleep(0.5)  # the reply waits unread\n"
        "    print(vec._workers[0].process.pid, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n")
    from pathlib import Path

    proc = subprocess.run([sys.executable, str(script)], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                          text=True, timeout=120)  # returns once the worker, which holds stderr too, has exited
    assert proc.returncode == -9 and proc.stdout.strip().isdigit()
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr, proc.stderr
