"""Agents in the economy environments: contexts, actions in every mode, episodes, faults."""

from __future__ import annotations

import time

import numpy as np
import pytest

import agents
from agents import Outcome, Update
from arena_env.economy.env import EconomyEnv
from arena_env.wrappers.agents import AgentError, action_for, context_for, run_episode
from arena_env.wrappers.single import EconomySingleEnv


def test_context_mirrors_the_env():
    env = EconomyEnv("tiny", guardrails={"update_interval_min": 2880})
    env.reset(seed=1)
    env.step({"variant_0": np.eye(10, dtype=np.float32)[0]})
    ctx = context_for(env, "variant_0")
    assert ctx.day == 1 and ctx.config["scanXp"] == 15
    assert ctx.signals.enrolled == env.signals(1)["enrolled"] and set(ctx.signals.control) == set(agents.METRIC_NAMES)
    assert ctx.next_allowed_update == 2880 and ctx.minute == 1440 and not ctx.can_update
    assert set(ctx.presets) == {p.name for p in env.scenario.presets}


@pytest.mark.parametrize("mode", ["continuous", "absolute", "discrete"])
def test_an_update_reaches_the_same_config_in_every_action_mode(mode):
    env = EconomyEnv("tiny", action_mode=mode)
    env.reset(seed=0)
    rich = context_for(env, "variant_0").presets["rich"]
    update = Update(dict(rich))
    for _ in range(3):  # the delta clamp may need more than one step
        env.step({"variant_0": action_for(env, "variant_0", update)})
    assert context_for(env, "variant_0").config == rich
    hold = action_for(env, "variant_1", None)
    _, _, _, _, infos = env.step({"variant_1": hold})
    assert infos["variant_1"]["decision"] is None


def test_hold_agent_is_the_empty_action():
    pol = {a: agents.make("hold") for a in ("variant_0", "variant_1")}
    res = run_episode(EconomyEnv("tiny", max_days=12), pol, seed=4)
    env = EconomyEnv("tiny", max_days=12)
    env.reset(seed=4)
    totals = {a: 0.0 for a in env.possible_agents}
    while env.agents:
        for a, r in env.step({})[1].items():
            totals[a] += r
    assert res["rewards"] == totals and res["days"] == 12
    assert res["decisions"] == {"variant_0": [], "variant_1": []}


def test_random_agents_never_spam_rejections_and_each_gets_its_own_seed():
    env = EconomyEnv("tiny", max_days=20, guardrails={"update_interval_min": 4320})
    a = run_episode(env, {v: agents.make("random", every=1) for v in env.possible_agents}, seed=7)
    recs = [d for ds in a["decisions"].values() for d in ds]
    assert recs and all(d["accepted"] for d in recs)  # proposals only when the rate limit allows
    gaps = [b["minute"] - x["minute"] for ds in a["decisions"].values() for x, b in zip(ds, ds[1:])]
    assert min(gaps) == 4320  # as soon as it allows (a move that rounds to no change is no request)
    moves = [[d["appliedConfig"] for d in ds] for ds in a["decisions"].values()]
    assert moves[0] != moves[1]  # seeds s + 1 + k: two random agents of one episode do not move alike


def test_run_episode_and_run_single_episode_replay_an_episode_exactly():
    """The wrappers' one determinism test: same seed, same rewards, decisions and per-step records."""
    from arena_env.wrappers.agents import run_single_episode

    def parallel():
        env = EconomyEnv("default", n_users=3000, max_days=15, guardrails={"update_interval_min": 2880})
        return run_episode(env, {"variant_0": agents.make("random", every=1),
                                 "variant_1": agents.make("ucb1", period=2)}, seed=21)

    def single():
        env = EconomySingleEnv(scenario="tiny", max_days=12, learner="variant_1",
                               opponents={"variant_0": agents.make("random", every=2)})
        return run_single_episode(env, agents.make("random", every=3), seed=2)

    for play in (parallel, single):
        a = play()
        assert a == play(), play.__name__
        assert a["decisions"], play.__name__


class Recorder:
    """An agent that proposes once and records its outcomes."""

    def __init__(self):
        self.outcomes = []

    def reset(self, seed=None):
        self.seed = seed

    def act(self, context):
        return Update({"feedbackXp": 20}) if context.day == 0 else None

    def update(self, outcome):
        self.outcomes.append(outcome)


def test_update_is_called_with_reward_and_decision():
    rec = Recorder()
    res = run_episode(EconomyEnv("tiny", max_days=5), {"variant_1": rec}, seed=2)
    assert rec.seed == 4 and len(rec.outcomes) == 5
    assert rec.outcomes[0].accepted and rec.outcomes[0].decision["appliedConfig"] == {"feedbackXp": 20}
    assert all(o.decision is None for o in rec.outcomes[1:])
    assert sum(o.reward for o in rec.outcomes) == pytest.approx(res["rewards"]["variant_1"])


class Crasher(Recorder):
    def act(self, context):
        raise ZeroDivisionError("oops")


class Garbage(Recorder):
    def __init__(self, out):
        super().__init__()
        self.out = out

    def act(self, context):
        return self.out


@pytest.mark.parametrize("pol, match", [
    (Crasher(), r"variant_0 \(Crasher\) raised on day 0: ZeroDivisionError: oops"),
    (Garbage({"scanXp": 12}), r"variant_0 \(Garbage\) on day 0: act\(\) must return agents.Update or None, got dict"),
    (Garbage(Update({"scanXP": 12})), r"variant_0 \(Garbage\) on day 0: unknown parameter 'scanXP'"),
    (Garbage(Update({"scanXp": float("nan")})), r"variant_0 \(Garbage\) on day 0: parameter 'scanXp' must be a finite"),
])
def test_faulty_agents_are_reported_by_name(pol, match):
    with pytest.raises(AgentError, match=match):
        run_episode(EconomyEnv("tiny", max_days=3), {"variant_0": pol}, seed=0)


class BadUpdate(Recorder):
    def update(self, outcome):
        if outcome.day == 2:
            raise KeyError("lost")


class BadReset(Recorder):
    def reset(self, seed=None):
        raise ValueError("no seed for me")


@pytest.mark.parametrize("pol, match", [
    (BadUpdate(), r"variant_0 \(BadUpdate\) raised in update\(\) on day 2: KeyError: 'lost'"),
    (BadReset(), r"variant_0 \(BadReset\) raised in reset\(\) on day 0: ValueError: no seed for me"),
])
def test_update_and_reset_faults_are_agent_errors_too(pol, match):
    with pytest.raises(AgentError, match=match):
        run_episode(EconomyEnv("tiny", max_days=4), {"variant_0": pol}, seed=0)


def test_with_forfeit_a_faulty_agent_holds_and_the_others_play_on():
    def play(first):
        env = EconomyEnv("tiny", max_days=6)
        return run_episode(env, {"variant_0": first, "variant_1": agents.make("random", every=1)}, seed=3,
                           forfeit=True)

    faulty = play(BadUpdate())
    assert list(faulty["failed"]) == ["variant_0"] and "raised in update() on day 2" in faulty["failed"]["variant_0"]
    assert faulty["days"] == 6 and len(faulty["step_rewards"]["variant_1"]) == 6
    steady = play(Recorder())  # BadUpdate acts as Recorder until it fails, then holds, as Recorder does
    assert steady["failed"] == {} and steady["rewards"] == faulty["rewards"]
    alone = run_episode(EconomyEnv("tiny", max_days=6), {"variant_0": BadUpdate()}, seed=3, forfeit=True)
    assert alone["days"] == 2  # nobody left to play: the episode stops


def test_discrete_mode_accepts_only_presets():
    env = EconomyEnv("tiny", action_mode="discrete")
    env.reset(seed=0)
    with pytest.raises(AgentError, match="must equal one of the scenario's presets"):
        action_for(env, "variant_0", Update({"scanXp": 11}))


def test_agents_as_opponents_in_the_single_agent_env():
    opp = agents.make("random", every=1)
    env = EconomySingleEnv(opponents={"variant_1": opp}, scenario="tiny", max_days=6)
    env.reset(seed=3)
    for _ in range(6):
        env.step(np.zeros(10, np.float32))
    assert env.par.config[2].tolist() != env.par.config[1].tolist()
    assert isinstance(opp, agents.Agent)


def test_outcome_type_round_trip():
    assert Outcome(1.0, None, 3).day == 3


def test_an_agent_in_the_learner_seat_of_the_single_agent_env():
    from arena_env.wrappers.agents import run_single_episode

    opp = agents.make("random", every=2)
    env = EconomySingleEnv(scenario="tiny", max_days=12, learner="variant_1", opponents={"variant_0": opp})
    a = run_single_episode(env, agents.make("random", every=3), seed=2)
    assert a["days"] == 12 and len(a["decisions"]) == 4  # days 0, 3, 6, 9
    assert all(d["variant"] == 2 and d["accepted"] for d in a["decisions"])  # the learner's seat is variant_1
    assert env.par.config[1].tolist() != env.par.config[0].tolist()  # the opponent moved its own variant


class Sleeper(Recorder):
    def act(self, context):
        import time
        time.sleep(5)


def test_a_hanging_agent_is_stopped_by_the_decision_timeout():
    import time

    from arena_env.wrappers.agents import DecisionTimeout
    t = time.perf_counter()
    with pytest.raises(DecisionTimeout, match="variant_0 \\(Sleeper\\) on day 0 exceeded the decision timeout of 0.2 s"):
        run_episode(EconomyEnv("tiny", max_days=3), {"variant_0": Sleeper()}, seed=0, timeout=0.2)
    assert time.perf_counter() - t < 3
    lat = {"variant_0": [], "variant_1": []}
    run_episode(EconomyEnv("tiny", max_days=3), {"variant_0": agents.make("random")}, seed=0, timeout=5, latencies=lat)
    assert len(lat["variant_0"]) == 3 and lat["variant_1"] == [] and all(x < 5 for x in lat["variant_0"])


class RetriesForever(Recorder):
    """A network agent gone wrong: a bare ``except:`` around a retry loop catches everything, the timer's
    exception included."""

    def act(self, context):
        import time
        while True:
            try:
                try:
                    time.sleep(5)
                    raise ConnectionError("no network")
                except:  # noqa: E722
                    pass
                finally:
                    time.sleep(0.01)
            except:  # noqa: E722
                continue


def test_an_agent_that_catches_everything_still_forfeits_on_time():
    import time

    from arena_env.wrappers.agents import DecisionTimeout, call_with_timeout
    t = time.perf_counter()
    with pytest.raises(DecisionTimeout, match="variant_0 \\(RetriesForever\\) on day 0 exceeded the decision timeout"):
        run_episode(EconomyEnv("tiny", max_days=3), {"variant_0": RetriesForever()}, seed=0, timeout=0.3)
    assert time.perf_counter() - t < 2
    res = run_episode(EconomyEnv("tiny", max_days=3), {"variant_0": RetriesForever()}, seed=0, timeout=0.3,
                      forfeit=True)
    assert "exceeded the decision timeout of 0.3 s" in res["failed"]["variant_0"]
    # later calls on the same thread are not disturbed by the abandoned one, and get their results
    assert [call_with_timeout(lambda k=k: k * k, 1.0, "fast") for k in range(50)] == [k * k for k in range(50)]
    with pytest.raises(ValueError, match="its own"):
        call_with_timeout(lambda: (_ for _ in ()).throw(ValueError("its own")), 1.0, "raiser")
    time.sleep(0.2)  # no stray exception arrives after calls that finished in time


class Swallower(Recorder):
    """Catches every Exception around a slow computation: the timer must still stop it."""

    def act(self, context):
        try:
            time.sleep(2)
        except Exception:
            pass
        return None


class SlowUpdate(Recorder):
    def update(self, outcome):
        time.sleep(2)


@pytest.mark.parametrize("pol, match", [
    (Swallower(), r"variant_0 \(Swallower\) on day 0 exceeded the decision timeout of 0.2 s"),
    (SlowUpdate(), r"variant_0 \(SlowUpdate\) in update\(\) on day 1 exceeded the decision timeout of 0.2 s"),
])
def test_the_timeout_cannot_be_swallowed_and_bounds_update_too(pol, match):
    t = time.perf_counter()
    with pytest.raises(AgentError, match=match):
        run_episode(EconomyEnv("tiny", max_days=3), {"variant_0": pol}, seed=0, timeout=0.2)
    assert time.perf_counter() - t < 1.5


@pytest.mark.parametrize("update, match", [
    (Update(None), "Update.overrides must be a mapping"),
    (Update({"scanXp": 1e40}), "'scanXp' must be a finite number"),
])
def test_malformed_updates_are_agent_errors(update, match):
    with pytest.raises(AgentError, match=match):
        run_episode(EconomyEnv("tiny", max_days=3, action_mode="absolute"), {"variant_0": Garbage(update)}, seed=0)
