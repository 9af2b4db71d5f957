"""The economy parallel env: API conformance, spaces, actions, guardrails in the loop, infos."""

from __future__ import annotations

import copy
import pickle

import gymnasium
import numpy as np
import pettingzoo
import pytest
from pettingzoo.test import parallel_api_test

import arena_env  # noqa: F401  (registers the envs)
from arena_env import economy_v1
from arena_env.economy import layout as L
from arena_env.economy.env import OBS_DIM, EconomyEnv
from arena_env.economy.scenario import ScenarioError, scenario_names

ALL_SCENARIOS = scenario_names()


def test_shipped_scenarios_are_the_documented_set():
    for name in ("default", "tiny", "large", "churn-crisis", "gaming-prone", "nonstationary", "interference",
                 "budget"):
        assert name in ALL_SCENARIOS


@pytest.mark.parametrize("name", ALL_SCENARIOS)
def test_parallel_api(name):
    kwargs = {"n_users": 30000} if name == "large" else {}  # the API does not depend on the size
    env = economy_v1.parallel_env(scenario=name, max_days=12, **kwargs)
    parallel_api_test(env, num_cycles=15)
    assert env.scenario.max_days == 12  # the test's max_cycles does not leak into the episode length


def test_large_scenario_runs_at_full_size():
    env = EconomyEnv("large", max_days=2, info_level="light")
    obs, _ = env.reset(seed=0)
    assert env.scenario.n_users == 1_000_000
    obs, rew, term, trunc, infos = env.step({a: np.zeros(10, np.float32) for a in env.agents})
    assert env.history_i[0, :, L.A_ENROLLED].sum() > 400_000
    assert all(trunc.values()) is False


def test_registry_and_aec_form():
    env = pettingzoo.make("parallel", "arena/Economy-v1", scenario="tiny", max_days=3)
    assert isinstance(env.unwrapped, EconomyEnv)
    aec = pettingzoo.make("aec", "arena/Economy-v1", scenario="tiny", max_days=3)
    aec.reset(seed=1)
    steps = 0
    for _agent in aec.agent_iter():
        obs, rew, term, trunc, info = aec.last()
        aec.step(None if term or trunc else np.zeros(10, np.float32))
        steps += 1
    assert steps == 3 * 2 + 2  # 3 days x 2 agents, then one final pass per agent


def test_spaces_and_agents_fixed_at_construction():
    env = EconomyEnv("tiny", n_agents=3)
    assert env.possible_agents == ["variant_0", "variant_1", "variant_2"]
    assert env.observation_space("variant_0") is env.observation_space("variant_0")
    assert env.action_space("variant_1").shape == (10,)
    obs, infos = env.reset(seed=0)
    for a in env.agents:
        assert obs[a].shape == (OBS_DIM,) and obs[a].dtype == np.float32
        assert env.observation_space(a).contains(obs[a])
    with pytest.raises(ValueError, match="n_agents"):
        EconomyEnv("tiny", n_agents=5)


def test_episode_truncates_at_max_days():
    env = EconomyEnv("tiny", max_days=4)
    env.reset(seed=0)
    for _ in range(4):
        obs, rew, term, trunc, infos = env.step({})
    assert all(trunc.values()) and not any(term.values())
    assert env.agents == []
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})


def test_scheduled_completion_terminates():
    env = EconomyEnv("tiny", max_days=10, schedule=[{"day": 3, "action": "complete"}])
    env.reset(seed=0)
    for _ in range(3):
        _, _, term, trunc, _ = env.step({})
        assert not any(term.values())
    _, _, term, trunc, infos = env.step({})
    assert all(term.values()) and not any(trunc.values())
    assert infos["variant_0"]["guardrails"]["status"] == "COMPLETED"
    assert env.agents == []


def test_hold_does_not_consume_rate_limit_and_updates_go_through_guardrails():
    env = EconomyEnv("tiny", guardrails={"update_interval_min": 2880})  # one update per 2 days
    env.reset(seed=0)
    hold = np.zeros(10, np.float32)
    up = hold.copy()
    up[0] = 1.0  # +100% of the delta limit on scanXp
    _, _, _, _, infos = env.step({"variant_0": hold, "variant_1": hold})
    assert infos["variant_0"]["decision"] is None
    _, _, _, _, infos = env.step({"variant_0": up})
    d = infos["variant_0"]["decision"]
    assert d["accepted"] and d["appliedConfig"] == {"scanXp": 15}
    assert infos["variant_0"]["config"]["scanXp"] == 15
    _, _, _, _, infos = env.step({"variant_0": up})  # a day later: rate limited
    d = infos["variant_0"]["decision"]
    assert not d["accepted"] and d["rejectionReason"] == "RATE_LIMITED"
    assert d["nextAllowedUpdate"] == 1 * 1440 + 2880
    assert infos["variant_0"]["config"]["scanXp"] == 15
    _, _, _, _, infos = env.step({"variant_0": up})
    assert infos["variant_0"]["decision"]["appliedConfig"] == {"scanXp": 23}  # compounding clamp


def test_discrete_and_absolute_modes():
    env = EconomyEnv("tiny", action_mode="discrete")
    assert env.action_space("variant_0").n == 1 + len(env.scenario.presets)
    env.reset(seed=0)
    rich = [p.name for p in env.scenario.presets].index("rich") + 1
    _, _, _, _, infos = env.step({"variant_0": rich, "variant_1": 0})
    assert infos["variant_0"]["decision"]["accepted"]
    assert infos["variant_0"]["config"]["scanXp"] == 15
    assert infos["variant_1"]["decision"] is None
    with pytest.raises(ValueError, match="out of range"):
        env.step({"variant_0": 99})
    env = EconomyEnv("tiny", action_mode="absolute")
    env.reset(seed=0)
    target = np.array([12, 15, 25, 20, 10, 15, 5, 50, 20, 10], np.float32)
    _, _, _, _, infos = env.step({"variant_0": target})
    assert infos["variant_0"]["decision"]["appliedConfig"] == {"scanXp": 12}


@pytest.mark.parametrize("bad, match", [
    (np.zeros(9, np.float32), "shape"),
    (np.zeros((2, 10), np.float32), "shape"),
    ("up", "expected"),
    (np.full(10, "0.5"), "real numbers"),  # numeric strings are not numbers
    (np.ones(10, bool), "real numbers"),  # bools would be taken as all-ones: +50% everywhere
    (np.array([1 + 5j] + [0] * 9), "real numbers"),  # the imaginary part would be dropped
])
def test_malformed_actions_raise_before_any_change(bad, match):
    env = EconomyEnv("tiny")
    env.reset(seed=0)
    before = copy.deepcopy(env.users)
    with pytest.raises(ValueError, match=match) as exc:
        env.step({"variant_0": np.zeros(10, np.float32), "variant_1": bad})
    assert "variant_1" in str(exc.value)
    assert env.day == 0
    np.testing.assert_array_equal(before, env.users)
    with pytest.raises(ValueError, match="unknown agent"):
        env.step({"variant_9": np.zeros(10)})


def test_seeds_outside_the_63_bit_range_are_refused_not_folded():
    env = EconomyEnv("tiny", max_days=3)
    for bad in (-1, 1 << 63, True, 1.0, "3"):
        with pytest.raises(ValueError, match=r"seed must be an integer from 0 to 2\*\*63 - 1"):
            env.reset(seed=bad)
    env.reset(seed=(1 << 63) - 1)
    assert env.episode_seed == (1 << 63) - 1


def test_researcher_actions_before_reset_say_to_reset():
    """render(), state(), signals() and ledger() before reset() were AttributeErrors ('guardrails', '_mean')."""
    env = EconomyEnv("tiny", max_days=3, render_mode="ansi")
    for call in (env.pause, env.resume, env.complete, lambda: env.trip_circuit_breaker("variant_0"),
                 lambda: env.reset_circuit_breaker("variant_0"), env.render, env.state, lambda: env.signals(1),
                 env.ledger):
        with pytest.raises(RuntimeError, match=r"reset\(\) was never called"):
            call()
    env.reset(seed=0)
    env.pause()
    assert env.guardrails.status == "PAUSED"


def test_a_proposal_that_changes_nothing_is_a_hold():
    env = EconomyEnv("tiny", max_days=10)
    env.reset(seed=0)
    assert env.propose(1, {"scanXp": 10.4}) is None  # rounds to the current 10: no decision
    assert env.decisions == [] and not np.isfinite(env.guardrails.last_update_minute[1])
    rec = env.propose(1, {"scanXp": 12})
    assert rec["accepted"] and rec["appliedConfig"] == {"scanXp": 12} and env.decisions == [rec]


def test_non_finite_and_out_of_range_actions_are_sanitised_and_recorded():
    env = EconomyEnv("tiny")
    env.reset(seed=0)
    nan = np.zeros(10, np.float32)
    nan[2] = np.nan
    big = np.zeros(10, np.float32)
    big[0] = 7.0
    _, _, _, _, infos = env.step({"variant_0": nan, "variant_1": big})
    assert "issueReportXp" in infos["variant_0"]["action_error"]
    assert infos["variant_0"]["decision"] is None
    assert infos["variant_0"]["config"]["issueReportXp"] == 25
    assert infos["variant_1"]["action_clipped"] is True
    assert infos["variant_1"]["config"]["scanXp"] == 15  # clipped to +1 x the delta limit
    assert np.all(np.isfinite(env.users["ref_xp"]))


def test_infos_carry_decision_signals_and_tests():
    env = EconomyEnv("tiny")
    env.reset(seed=0)
    for _ in range(8):
        _, _, _, _, infos = env.step({})
    info = infos["variant_1"]
    sig = info["signals"]
    assert set(sig) == {"enrolled", "activeToday", "active7d", "totalScans", "experimentDays", "metrics"}
    m = sig["metrics"]["RETENTION_RATE"]
    assert 0.0 <= m["value"] <= 1.0 and m["confidence"] == "high" and m["sampleSize"] == sig["enrolled"]
    t = info["tests"]["SCAN_FREQUENCY"]
    assert t["test"] == "welch" and t["ciLow"] <= t["difference"] <= t["ciHigh"]
    f = info["tests"]["FEEDBACK_QUALITY"]
    assert f["test"] == "fisher" and f["oddsRatio"] > 0
    light = EconomyEnv("tiny", info_level="light")
    light.reset(seed=0)
    _, _, _, _, li = light.step({})
    assert "signals" not in li["variant_0"] and "decision" in li["variant_0"]


def test_reward_is_zero_for_identical_arms_on_average_and_follows_the_objective():
    env = EconomyEnv("default", n_users=6000, max_days=30, info_level="light")
    env.reset(seed=3)
    total = {a: 0.0 for a in env.agents}
    while env.agents:
        _, rew, _, _, infos = env.step({})
        for a, r in rew.items():
            total[a] += r
        # the value objective by hand from the day's counts: money per enrolled user, treatment - control
        h = env.history_i[env.day - 1].astype(float)
        hf = env.history_f[env.day - 1]
        o = env.scenario.objective
        vals, junk = o.values, o.junk
        def money(v):
            c = env.effective_config[v]
            g = lambda price, j: j / (j + price)  # noqa: E731 - the genuine share at a price
            m = (vals.active_day * h[v, L.A_ACTIVE] + vals.scan * h[v, L.A_USEFUL_SCANS]
                 + vals.feedback * h[v, L.A_USEFUL_FB] * g(c[1], junk.feedback)
                 + vals.photo * h[v, L.A_PHOTOS] * g(c[4], junk.photo)
                 + vals.issue * h[v, L.A_ISSUES] * g(c[2], junk.issue)
                 + vals.status * h[v, L.A_STATUS] * g(c[3], junk.status)
                 - o.xp_cost * h[v, L.A_XP_SCAN:L.A_XP_BUDGET + 1].sum() - o.churn_cost * hf[v, L.F_CHURN_RISK])
            return m / h[v, L.A_ENROLLED]
        assert rew["variant_0"] == pytest.approx(money(1) - money(0), abs=1e-12)
    # holding arms differ from the control only by sampling noise (EUR per user over 30 days)
    assert abs(total["variant_0"]) < 0.3 and abs(total["variant_1"]) < 0.3


def test_daily_value_and_outcomes_match_the_array_formulas_bit_for_bit():
    """The compiled day summaries give exactly the floats of the formulas written over arrays (NumPy,
    in the order docs/model.md gives), for random counts, zero enrolment and scans, negative prices."""
    from arena_env.economy import metrics as M
    from arena_env.economy.scenario import load

    rng = np.random.default_rng(7)
    o = load("default").objective
    V = 5
    ti = rng.integers(0, 5000, (V, L.N_AI)).astype(np.int64)
    ti[1, L.A_ENROLLED] = 0
    ti[2, L.A_SCANS] = 0
    tf = rng.uniform(0.0, 50.0, (V, L.N_AF))
    eff = rng.uniform(-5.0, 80.0, (V, 10))
    mean = rng.uniform(0.0, 1.0, (V, M.N_METRICS))
    enrolled = np.maximum(ti[:, L.A_ENROLLED], 1).astype(np.float64)
    xp = ti[:, L.A_XP_SCAN:L.A_XP_BUDGET + 1].sum(axis=1)
    v, j = o.values, o.junk
    want = np.empty((V, 8))
    want[:, :6] = np.array([v.active_day, v.scan, v.feedback, v.photo, v.issue, v.status]) * ti[
        :, [L.A_ACTIVE, L.A_USEFUL_SCANS, L.A_USEFUL_FB, L.A_PHOTOS, L.A_ISSUES, L.A_STATUS]]
    price = eff[:, [1, 4, 2, 3]]  # feedbackXp, photoXp, issueReportXp, statusReportXp
    junk = np.array([j.feedback, j.photo, j.issue, j.status])
    want[:, 2:6] *= junk / (junk + np.maximum(price, 0.0))
    want[:, 6] = -o.xp_cost * xp
    want[:, 7] = -o.churn_cost * tf[:, L.F_CHURN_RISK]
    want /= enrolled[:, None]
    for coef in (o, M.value_coefficients(o)):
        assert np.array_equal(M.daily_value(ti, tf, eff, coef), want)
    scans = ti[:, L.A_SCANS].astype(np.float64)
    out = np.column_stack([scans / enrolled, xp / enrolled, ti[:, L.A_ACTIVE7] / enrolled, mean[:, M.MC],
                           ti[:, L.A_STREAK_SUM] / enrolled,
                           np.where(scans > 0, ti[:, L.A_FEEDBACK] / np.maximum(scans, 1.0), 0.0)])
    assert np.array_equal(M.daily_outcomes(ti, mean), out)


def test_action_state_flags_non_finite_and_out_of_range_entries():
    from arena_env.economy.env import _action_state

    assert _action_state(np.array([-1.0, 0.0, 1.0])) == 0
    assert _action_state(np.array([0.0, 1.0000001])) == 1
    assert _action_state(np.array([-1.5, 0.0])) == 1
    assert _action_state(np.array([2.0, np.nan])) == 2
    assert _action_state(np.array([np.inf, 0.0])) == 2
    assert _action_state(np.array([0.0, -np.inf, 3.0])) == 2


def test_breaker_trips_on_retention_cliff_and_only_researcher_resets_it():
    env = EconomyEnv("tiny", guardrails={"retention_cliff": 0.99})
    env.reset(seed=0)
    _, _, _, _, infos = env.step({})
    assert infos["variant_0"]["guardrails"]["breakerOpen"]
    up = np.zeros(10, np.float32)
    up[0] = 0.5
    _, _, _, _, infos = env.step({"variant_0": up})
    assert infos["variant_0"]["decision"]["rejectionReason"] == "CIRCUIT_BREAKER_ACTIVE"
    for _ in range(3):
        env.step({})
    assert env.guardrails.breaker_open[1]
    env.reset_circuit_breaker("variant_0")
    assert not env.guardrails.breaker_open[1]


def test_status_gate_while_recruiting_and_paused():
    env = EconomyEnv("tiny", recruiting_days=2)
    env.reset(seed=0)
    up = np.zeros(10, np.float32)
    up[1] = 0.5
    _, _, _, _, infos = env.step({"variant_0": up})
    assert infos["variant_0"]["decision"]["rejectionReason"] == "EXPERIMENT_NOT_RUNNING"
    env.step({})
    _, _, _, _, infos = env.step({"variant_0": up})
    assert infos["variant_0"]["decision"]["accepted"]
    env.pause()
    _, _, _, _, infos = env.step({"variant_1": up})
    assert infos["variant_1"]["decision"]["rejectionReason"] == "EXPERIMENT_NOT_RUNNING"


def test_anomaly_flag_after_four_max_delta_updates():
    env = EconomyEnv("tiny")
    env.reset(seed=0)
    up = np.zeros(10, np.float32)
    up[6] = 1.0
    flags = []
    for _ in range(5):
        _, _, _, _, infos = env.step({"variant_0": up})
        flags.append(infos["variant_0"]["decision"]["anomaly"])
    assert flags == [False, False, False, True, True]
    assert env.guardrails.anomaly[1] and not env.guardrails.anomaly[2]


def test_ledger_conservation():
    env = EconomyEnv("default", n_users=5000, max_days=40, info_level="light")
    env.reset(seed=2)
    rng = np.random.default_rng(0)
    while env.agents:
        env.step({a: rng.uniform(-1, 1, 10).astype(np.float32) * (env.day % 5 == 0) for a in env.agents})
    ledger = env.ledger()
    per_variant = sum(ledger.values())
    by_user = np.bincount(env.users["variant"], weights=env.users["cum_xp"].astype(np.float64),
                          minlength=env.scenario.n_variants)
    np.testing.assert_array_equal(per_variant, by_user.astype(np.int64))
    assert all(v.sum() > 0 for k, v in ledger.items() if k not in ("issueReport", "statusReport", "budget"))
    assert np.all(ledger["budget"] == 0)  # nothing withheld without a budget
    assert ledger["mission"].sum() % env.scenario.economy.mission_xp == 0
    reached = env.history_i[:, :, L.A_M_REACHED].sum(axis=0)
    np.testing.assert_array_equal(ledger["mission"], reached * env.scenario.economy.mission_xp)
    resolved = env.history_i[:, :, [L.A_M_DONE, L.A_M_FAILED]].sum(axis=(0, 2))
    assert np.all(env.history_i[:, :, L.A_M_DONE].sum(axis=0) <= reached) and np.all(resolved > reached)


def test_pickle_and_deepcopy_continue_identically():
    env = EconomyEnv("tiny")
    env.reset(seed=4)
    for _ in range(5):
        env.step({"variant_0": np.full(10, 0.3, np.float32)})
    clones = [pickle.loads(pickle.dumps(env)), copy.deepcopy(env)]
    runs = []
    for e in [env] + clones:
        out = []
        for _ in range(5):
            obs, rew, *_ = e.step({"variant_1": np.full(10, -0.2, np.float32)})
            out.append((obs["variant_1"].copy(), rew["variant_1"]))
        runs.append(out)
    for other in runs[1:]:
        for (o1, r1), (o2, r2) in zip(runs[0], other):
            np.testing.assert_array_equal(o1, o2)
            assert r1 == r2


def test_render_ansi_shows_every_variant():
    env = EconomyEnv("tiny", render_mode="ansi")
    env.reset(seed=0)
    env.step({})
    text = env.render()
    for name in ("control", "variant_0", "variant_1", "retain", "day 1/30"):
        assert name in text


def test_unknown_keyword_is_a_clear_error():
    with pytest.raises(ValueError, match="bogus"):
        EconomyEnv("tiny", bogus=1)
    with pytest.raises(ValueError, match="backend"):
        EconomyEnv("tiny", backend="cuda")


def test_empty_objective_weights_mean_zero_reward():
    env = EconomyEnv("tiny", objective={"kind": "tendedloop", "weights": {}, "xp_cost": 0.0})
    env.reset(seed=0)
    _, rew, _, _, _ = env.step({"variant_0": np.ones(10, np.float32)})
    assert rew == {"variant_0": 0.0, "variant_1": 0.0}
    composite = EconomyEnv("tiny", objective={"kind": "tendedloop"})
    assert composite.objective_weights.tolist() == [0.4, 0.0, 3.5, 0.0, 0.0, 2.5]


def test_tendedloop_composite_follows_its_formula():
    env = EconomyEnv("tiny", objective={"kind": "tendedloop"}, info_level="light")
    env.reset(seed=2)
    for _ in range(5):
        _, rew, _, _, infos = env.step({})
        lift = infos["variant_0"]["lift"]
        h = env.history_i[env.day - 1]
        xp0 = h[0, L.A_XP_SCAN:L.A_XP_BUDGET + 1].sum() / h[0, L.A_ENROLLED]
        expected = (0.4 * lift["SCAN_FREQUENCY"] + 3.5 * lift["RETENTION_RATE"] + 2.5 * lift["FEEDBACK_QUALITY"]
                    - env.scenario.objective.xp_cost * (infos["variant_0"]["xp_per_user"] - xp0))
        assert rew["variant_0"] == pytest.approx(expected, abs=1e-12)


def test_value_objective_refuses_metric_weights():
    with pytest.raises(ScenarioError, match="objective.weights"):
        EconomyEnv("tiny", objective={"weights": {"RETENTION_RATE": 1.0}})


def test_illegal_scheduled_lifecycle_actions_are_reported_not_applied():
    env = EconomyEnv("tiny", schedule=[{"day": 1, "action": "resume"}, {"day": 2, "action": "pause"},
                                       {"day": 4, "action": "resume"}])
    env.reset(seed=0)
    seen = []
    for _ in range(5):
        _, _, _, _, infos = env.step({})
        seen += infos["variant_0"]["scheduled"]
    assert [(s["action"], s["applied"]) for s in seen] == [("resume", False), ("pause", True), ("resume", True)]
    assert env.guardrails.status == "RUNNING"


def test_multi_day_steps_are_the_same_days_decided_less_often():
    """Weekly decisions: with holds, 7-day steps run exactly the daily trajectory, and a step's reward is
    the sum of its days' rewards; an update takes effect for the whole week."""
    daily = EconomyEnv("tiny", max_days=21)
    weekly = EconomyEnv("tiny", max_days=21, days_per_step=7)
    daily.reset(seed=3)
    weekly.reset(seed=3)
    rd = [daily.step({})[1]["variant_0"] for _ in range(21)]
    rw = []
    while weekly.agents:
        _, rew, _, trunc, _ = weekly.step({})
        rw.append(rew["variant_0"])
    assert len(rw) == 3 and all(trunc.values())
    np.testing.assert_array_equal(daily.history_i, weekly.history_i)
    assert rw == pytest.approx([sum(rd[0:7]), sum(rd[7:14]), sum(rd[14:21])], rel=1e-12)
    weekly.reset(seed=3)
    up = np.zeros(10, np.float32)
    up[0] = 1.0
    _, _, _, _, infos = weekly.step({"variant_0": up})
    assert infos["variant_0"]["day"] == 7 and infos["variant_0"]["config"]["scanXp"] == 15
    _, _, _, _, infos = weekly.step({"variant_0": up})  # one week later: not rate limited
    assert infos["variant_0"]["decision"]["minute"] == 7 * 1440 and infos["variant_0"]["config"]["scanXp"] == 23


def test_target_mode_requests_values_on_the_observation_scale():
    """action_mode='target': component i requests (t + 1) exp(u span) - 1, the value whose observation
    entry 53 + i is u; the config moves there within the delta window and stays (no drift)."""
    env = EconomyEnv("tiny", action_mode="target", n_users=200)
    assert env.action_space("variant_0") == gymnasium.spaces.Box(-1.0, 1.0, (10,), np.float32)
    env.reset(seed=0)
    goal = np.array([14, 21, 71, 40, 0, 11, 14, 35, 14, 1])
    u = env.target_action(goal)
    for _ in range(8):
        obs, _, _, _, infos = env.step({"variant_0": u})
    assert list(infos["variant_0"]["config"].values()) == goal.tolist()
    np.testing.assert_allclose(obs["variant_0"][53:63], u, atol=1e-6)  # the observation reads the target back
    assert infos["variant_0"]["decision"] is None  # at the target: nothing is requested any more
    _, _, _, _, infos = env.step({"variant_0": np.full(10, -1.0, np.float32)})  # -1: the lower side's far end
    assert infos["variant_0"]["decision"]["accepted"]
    _, _, _, _, infos = env.step({"variant_0": np.full(10, 3.0, np.float32)})
    assert infos["variant_0"]["action_clipped"] is True


@pytest.mark.parametrize("name", ["default", "budget"])
def test_signals_match_the_user_records(name):
    """The per-user metrics of ``signals`` against the users themselves: mean and sample variance
    (NumPy, ddof=1) of the stored moving averages and streaks over every enrolled user (churned ones
    included), retention as the share with activity in the last 7 days; the window metrics against the
    day's history."""
    env = EconomyEnv(name, n_users=4000, info_level="light")
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(25):
        env.step({a: rng.uniform(-1, 1, 10).astype(np.float32) for a in env.agents})
    u = env.users
    window = env.history_i[max(0, env.day - env.scenario.metric_window):env.day].sum(axis=0)
    for v in range(env.scenario.n_variants):
        m = env.signals(v)["metrics"]
        mine = (u["variant"] == v) & (u["enroll_day"] < env.day)
        for metric, values in (("SCAN_FREQUENCY", u["scan_ema"]), ("XP_VELOCITY", u["xp_ema"]),
                               ("STREAK_LENGTH", u["streak"])):
            x = values[mine].astype(np.float64)
            assert m[metric]["sampleSize"] == mine.sum()
            assert m[metric]["value"] == pytest.approx(x.mean(), rel=1e-9, abs=1e-12)
            assert m[metric]["stdDev"] == pytest.approx(x.std(ddof=1), rel=1e-6, abs=1e-9)
        active7 = (u["act7"][mine] != 0).astype(np.float64)
        assert m["RETENTION_RATE"]["value"] == pytest.approx(active7.mean(), rel=1e-12)
        assert m["RETENTION_RATE"]["stdDev"] == pytest.approx(active7.std(ddof=1), rel=1e-9)
        done, failed = window[v, L.A_M_DONE], window[v, L.A_M_FAILED]
        assert m["MISSION_COMPLETION"]["sampleSize"] == done + failed
        assert m["MISSION_COMPLETION"]["value"] == pytest.approx(done / (done + failed), rel=1e-12)
        assert m["FEEDBACK_QUALITY"]["value"] == pytest.approx(window[v, L.A_FEEDBACK] / window[v, L.A_SCANS],
                                                               rel=1e-12)


def test_the_tests_are_computed_when_read_with_the_same_values():
    """The comparison with the control is computed only when read (``_tests``); an env whose infos read
    it every step and one that reads it once at the end agree on every day's values, and they are the
    values of ``compare_to_control`` on that day's summaries."""
    from arena_env.economy import metrics as M
    from arena_env.economy import stats_kernels as S

    full = EconomyEnv("default", n_users=3000, info_level="full")
    light = EconomyEnv("default", n_users=3000, info_level="light")
    full.reset(seed=5)
    light.reset(seed=5)
    rng = np.random.default_rng(2)
    for day in range(20):
        acts = {a: rng.uniform(-1, 1, 10).astype(np.float32) for a in full.agents}
        _, _, _, _, infos = full.step(acts)
        light.step(acts)
        if day % 7 == 6:
            np.testing.assert_array_equal(light._tests, full._tests)
            agent = full.possible_agents[0]
            assert infos[agent]["tests"] == M.test_dicts(light._tests[[0, 1]])[1]
    ti = light.history_i[light.day - 1]
    window = light.history_i[max(0, light.day - light.scenario.metric_window):light.day].sum(axis=0)
    mean, var, n, succ, trials = M.summarize(ti, light.history_f[light.day - 1], window)
    want = np.full_like(light._tests, np.nan)
    S.compare_to_control(mean, np.where(np.isnan(var), 0.0, var), n, succ, trials, M.IS_BINARY, want)
    np.testing.assert_array_equal(light._tests, want)
    assert np.isfinite(want[1:, :, S.T_P_WELCH]).any()
