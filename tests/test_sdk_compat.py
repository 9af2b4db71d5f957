"""The published TendedLoop Arena SDK (``tendedloop-arena`` 0.1.0, import name ``tendedloop_agent``), unchanged,
drives our real server: its ``Agent`` (an observe/decide/act loop, every endpoint) and its ``ArenaEnv``
(reset/step).  The server runs in a thread on a free port (``tests.test_client.experiment``), scenario ``tiny``,
manual clock, moved by our ``AdminClient``."""

from __future__ import annotations

import threading

import pytest

tl = pytest.importorskip("tendedloop_agent")
httpx = pytest.importorskip("httpx")

from arena_env.economy.params import to_dict  # noqa: E402
from arena_env.server.client import AdminClient  # noqa: E402
from tests.test_client import experiment  # noqa: E402


@pytest.fixture()
def served(tmp_path):
    with experiment(tmp_path, webhooks=True) as out:
        yield out


class ScanBooster(tl.Agent):
    """An SDK agent as a user writes one: ``decide`` for ``run``; ``act`` keeps every result.  The test's clock
    moves inside ``decide`` (the manual clock stands in for the wall clock between polls)."""

    def __init__(self, *args, admin: AdminClient, **kwargs):
        super().__init__(*args, **kwargs)
        self.admin, self.results, self.seen, self.calls = admin, [], [], 0

    def decide(self, signals, config):
        self.calls += 1
        self.seen.append((signals, dict(config)))
        if self.calls == 1:
            self.admin.advance(days=8)
            return tl.ConfigUpdate({"scanXp": config["scanXp"] * 10}, "much more for scans")  # clamped
        if self.calls == 2:
            return tl.ConfigUpdate({"scanXp": config["scanXp"] + 1}, "again at once")  # rate limited
        if self.calls == 3:
            self.admin.advance(days=1)
            return tl.ConfigUpdate({"feedbackXp": 16}, "a little more for feedback")
        return None  # hold

    def act(self, update):
        result = super().act(update)
        self.results.append(result)
        return result


def test_an_sdk_agent_runs_its_loop_against_our_server(served):
    exp, tok, url = served
    agent = ScanBooster(url, tok[1], admin=AdminClient(url, tok[-1]), heartbeat_interval=1, max_retries=0)
    try:
        agent.heartbeat({"strategy": "scan booster"})  # requestedPollInterval: the heartbeat interval (1 s)
        assert exp.heartbeats[1]["poll"] == 1 and exp.heartbeats[1]["metadata"] == {"strategy": "scan booster"}
        agent.run(agent.decide, poll_interval=0.01, max_iterations=4)
        assert agent._heartbeat_thread is None  # run() started and joined its heartbeat thread
        assert agent.calls == 4 and not agent.is_running
        first, limited, third = agent.results
        assert first.accepted is True and first.applied_config == {"scanXp": 15}
        assert first.clamped_deltas["scanXp"]["requested"] == 100 and first.clamped_deltas["scanXp"]["applied"] == 15
        assert first.decision_log_id.startswith("dec_") and first.next_allowed_update
        assert limited.accepted is False and limited.rejection_reason == "RATE_LIMITED" and limited.next_allowed_update
        assert third.accepted is True and third.applied_config == {"feedbackXp": 16} and not third.clamped_deltas
        # the SDK's loop kept its config from our answers: the third and fourth decide() saw scanXp 15
        assert [c["scanXp"] for _, c in agent.seen] == [10, 15, 15, 15] and agent.seen[3][1]["feedbackXp"] == 16
        assert agent.seen[1][0].experiment_days == 8 and agent.seen[1][0].metrics["RETENTION_RATE"].sample_size > 0
        assert to_dict(exp.env.config[1])["scanXp"] == 15 and to_dict(exp.env.config[1])["feedbackXp"] == 16
        log = agent.decisions(page=1, page_size=10)
        assert log["total"] == 3 and [d["accepted"] for d in log["decisions"]] == [True, False, True]
        assert log["decisions"][1]["rejectionCode"] == "RATE_LIMITED" and log["decisions"][2]["reasoning"] == \
            "much more for scans"
    finally:
        agent.close()
    assert not [t for t in threading.enumerate() if "_heartbeat_loop" in t.name]  # the SDK's heartbeat thread ended


def test_the_sdk_parses_every_response(served):
    exp, tok, url = served
    AdminClient(url, tok[-1]).advance(days=8)
    with tl.Agent(url, tok[2], max_retries=0) as agent:
        info = agent.info()
        assert (info.variant_id, info.variant_name, info.experiment_id) == (exp.ids[2], "treatment-2",
                                                                           exp.meta["experiment_id"])
        assert info.is_control is False and info.mode == "AGENT" and info.experiment_status == "RUNNING"
        assert info.update_interval_min == 60 and info.delta_limit_pct == 50.0 and info.last_config_update is None
        assert info.current_config == to_dict(exp.env.config[2])
        s = agent.observe()
        assert isinstance(s, tl.Signals) and s.experiment_days == 8 and s.enrolled == exp.env.signals(2)["enrolled"]
        assert set(s.metrics) == {"SCAN_FREQUENCY", "XP_VELOCITY", "RETENTION_RATE", "MISSION_COMPLETION",
                                  "STREAK_LENGTH", "FEEDBACK_QUALITY"}
        rr = s.metrics["RETENTION_RATE"]
        assert isinstance(rr, tl.MetricSignal) and rr.confidence == "high" and 0 < rr.value <= 1 and rr.std_dev > 0
        r = agent.act(tl.ConfigUpdate({"streakBonusPerDay": 50, "photoXp": 10}, "streaks", signals={"seen": 1}))
        assert r.accepted is True and r.applied_config == {"streakBonusPerDay": 8, "photoXp": 10}
        assert r.clamped_deltas["streakBonusPerDay"]["clamped"] is True and "photoXp" not in r.clamped_deltas
        assert agent._info.current_config["streakBonusPerDay"] == 8  # the SDK merged our appliedConfig
        board = agent.scoreboard()
        assert [type(e) for e in board] == [tl.ScoreboardEntry] * 3 and [e.is_control for e in board] == [
            True, False, False]
        assert board[2].total_decisions == 1 and board[2].current_config["streakBonusPerDay"] == 8
        assert board[0].enrolled_count == exp.env.signals(0)["enrolled"] and "RETENTION_RATE" in board[0].metrics
        page = agent.decisions(page=1, page_size=1)
        assert page["total"] == 1 and page["decisions"][0]["id"] == r.decision_log_id
        hook = agent.register_webhook("http://127.0.0.1:9/hook")
        assert isinstance(hook, tl.WebhookInfo) and hook.webhook_id.startswith("wh_") and len(hook.events) == 4
        assert agent.delete_webhook(hook.webhook_id) is None
        with pytest.raises(httpx.HTTPStatusError) as e:
            agent.delete_webhook(hook.webhook_id)
        assert e.value.response.status_code == 404
        hold = agent.act(tl.ConfigUpdate({"photoXp": 10}))  # the current value: no decision, no error
        assert hold.accepted is True and not hold.applied_config and exp.store.decision_count(2) == 1
    with tl.Agent(url, tok[0], max_retries=0) as control:
        r = control.act(tl.ConfigUpdate({"scanXp": 12}, "the control"))
        assert r.accepted is False and r.rejection_reason == "CONTROL_VARIANT_IMMUTABLE" and r.decision_log_id
    with tl.Agent(url, "tl_" + "q" * 30, max_retries=0) as stranger, pytest.raises(httpx.HTTPStatusError) as e:
        stranger.info()
    assert e.value.response.status_code == 401 and e.value.response.json() == {"success": False,
                                                                               "error": "unknown token"}


def test_the_sdk_loop_stops_on_403(served):
    exp, tok, url = served
    adm = AdminClient(url, tok[-1])
    adm.advance(days=8)
    adm.pause()
    calls = []

    def decide(signals, config):
        calls.append(signals.experiment_days)
        return tl.ConfigUpdate({"scanXp": 12})

    with tl.Agent(url, tok[1], max_retries=0) as agent:
        agent.run(decide, poll_interval=0.01, max_iterations=5)  # returns, does not raise
        assert calls == [8] and exp.store.decision_count(1) == 0
        with pytest.raises(httpx.HTTPStatusError) as e:
            agent.act(tl.ConfigUpdate({"scanXp": 12}))
        assert e.value.response.status_code == 403 and "PAUSED" in e.value.response.json()["error"]


def test_the_sdk_arena_env(served):
    exp, tok, url = served
    adm = AdminClient(url, tok[-1])
    adm.advance(days=8)
    env = tl.ArenaEnv(url, tok[1], primary_metric="RETENTION_RATE", max_retries=0)
    try:
        obs = env.reset()
        assert obs["experiment_days"] == 8 and obs["config"] == to_dict(exp.env.config[1])
        assert obs["metric_retention_rate"] == exp.env.signals(1)["metrics"]["RETENTION_RATE"]["value"]
        before = obs["metric_retention_rate"]
        adm.advance(days=1)
        obs, reward, terminated, truncated, info = env.step({"scanXp": 12}, reasoning="a step")
        assert info["accepted"] is True and info["decision_log_id"].startswith("dec_") and not info["clamped_deltas"]
        assert (terminated, truncated) == (False, False) and obs["config"]["scanXp"] == 12
        assert reward == pytest.approx(obs["metric_retention_rate"] - before) and obs["experiment_days"] == 9
        obs, reward, terminated, truncated, info = env.step({"scanXp": 13})  # at once: rate limited
        assert (reward, terminated, truncated) == (0.0, False, True) and info["rejection_reason"] == "RATE_LIMITED"
        obs, reward, terminated, truncated, info = env.step({"scanXp": 12})  # the current value: a hold
        assert (terminated, truncated) == (False, False) and info["accepted"] is True
        adm.advance(days=1)
        obs, reward, terminated, truncated, info = env.step({"scanXp": 100})
        assert info["accepted"] is True and info["clamped_deltas"]["scanXp"]["applied"] == 18
        assert "Enrolled" in env.render() and to_dict(exp.env.config[1])["scanXp"] == 18
        adm.complete()
        obs, reward, terminated, truncated, info = env.step({"scanXp": 20})
        assert terminated is True and "403" in info["error"]
        assert exp.store.decision_count(1) == 3
    finally:
        env.close()


def sdk_boost(signals: tl.Signals, current_config: dict) -> tl.ConfigUpdate | None:
    """The SDK README's quick-start decide(), as written for ``tl.Agent.run`` (its threshold 2.0 raised to 3.0:
    scans on ``tiny`` run above 2 a day)."""
    scan_freq = signals.metrics.get("SCAN_FREQUENCY")
    if not scan_freq or scan_freq.confidence == "low":
        return None
    if scan_freq.value < 3.0:
        return tl.ConfigUpdate(economy_overrides={"scanXp": round(current_config.get("scanXp", 10) * 1.15)},
                               reasoning=f"Scan frequency low ({scan_freq.value:.1f}/day), boosting +15%")
    return None


def test_an_sdk_decide_function_plays_in_our_episodes_through_from_decide():
    """``agents.from_decide`` detects the SDK's shape (the Signals annotation): the function gets the SDK's
    Signals and its ConfigUpdate becomes our update."""
    import agents
    from arena_env.economy.env import EconomyEnv
    from arena_env.wrappers.agents import run_episode

    agent = agents.make(agents.from_decide(sdk_boost, name="test_sdk_boost").agent_name)
    res = run_episode(EconomyEnv("tiny", max_days=6), {"variant_0": agent}, seed=0)
    decisions = res["decisions"]["variant_0"]
    assert decisions and decisions[0]["appliedConfig"] == {"scanXp": 12}
