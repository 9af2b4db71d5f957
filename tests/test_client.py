"""The protocol client (``arena_env.server.client``) and ``RemoteArenaEnv`` against a real server: uvicorn
running ``create_app`` in a thread on a free port (scenario ``tiny``, manual clock), a stub HTTP server for the
retry policy, and a dead port for an unreachable server."""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

import agents  # noqa: E402
from agents.protocol import Outcome  # noqa: E402
from arena_env.economy.env import EconomyEnv  # noqa: E402
from arena_env.economy.params import to_dict  # noqa: E402
from arena_env.server.app import create_app  # noqa: E402
from arena_env.server.client import (AdminClient, ArenaAuthError, ArenaBadRequest, ArenaClient,  # noqa: E402
                                     ArenaConnectionError, ArenaForbidden, ArenaNotFound, ArenaServerError,
                                     ArenaThrottled)
from arena_env.server.experiment import Experiment  # noqa: E402
from arena_env.server.remote_env import RemoteArenaEnv, run_agent  # noqa: E402
from arena_env.server.webhooks import WebhookDispatcher  # noqa: E402
from arena_env.wrappers.agents import decide  # noqa: E402

SEED = 3
EXACT = np.r_[1, 3, 4, 5:63, 63, 64, 65, 67, 68, 69]  # the observation entries that match the local env's
# (0 and 2 are approximations, 66, the anomaly flag, is not reported by the protocol: remote_env's docstring)


@contextlib.contextmanager
def running_server(exp, webhooks=None, tick_seconds: float = 1.0):
    """``create_app(exp)`` served by uvicorn in a thread on a free port of 127.0.0.1; yields the base URL and shuts
    the server (and its thread) down on exit."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(exp, webhooks=webhooks, tick_seconds=tick_seconds),
                                           log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="test-uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        assert not thread.is_alive(), "the test server did not stop"


@contextlib.contextmanager
def experiment(tmp_path, *, webhooks: bool = False, **kw):
    """A new ``tiny`` experiment (manual clock unless ``seconds_per_day`` is given), served; yields (exp, tokens,
    url)."""
    kw.setdefault("manual_clock", "seconds_per_day" not in kw)
    exp, tokens = Experiment.create(tmp_path / "exp.db", "tiny", seed=SEED, **kw)
    hooks = WebhookDispatcher(tmp_path / "exp.db", b"k" * 32) if webhooks else None
    try:
        with running_server(exp, hooks, tick_seconds=0.05) as url:
            yield exp, tokens, url
    finally:
        if hooks is not None:
            hooks.close()
        exp.store.close()


def dead_url() -> str:
    with socket.socket() as s:  # a port nobody listens on (bound, then released)
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture()
def served(tmp_path):
    with experiment(tmp_path, webhooks=True) as out:
        yield out


# ---------------------------------------------------------------------------------------------- the client
def test_every_agent_method(served):
    exp, tok, url = served
    c, adm = ArenaClient(url, tok[1], retries=0), AdminClient(url, tok[-1], retries=0)
    v = c.variant()
    assert v["variantId"] == exp.ids[1] and v["isControl"] is False and v["experimentStatus"] == "RUNNING"
    assert v["currentConfig"] == to_dict(exp.env.config[1]) and v["lastConfigUpdate"] is None
    assert adm.advance(days=8)["day"] == 8
    s = c.signals()
    assert s == exp.env.signals(1) and s["experimentDays"] == 8 and s["enrolled"] > 0
    assert c.heartbeat(30, {"who": "test"}) == {}
    assert exp.heartbeats[1]["poll"] == 30 and exp.heartbeats[1]["metadata"] == {"who": "test"}
    board = c.scoreboard()
    assert [e["isControl"] for e in board] == [True, False, False]
    assert board[1]["lastHeartbeat"] and board[2]["lastHeartbeat"] is None

    r1 = c.update_config({"scanXp": 100, "feedbackXp": 16}, "raise scans", signals=s)
    assert r1["accepted"] is True and r1["appliedConfig"] == {"scanXp": 15, "feedbackXp": 16}
    assert r1["clampedDeltas"]["scanXp"]["requested"] == 100 and r1["clampedDeltas"]["scanXp"]["applied"] == 15
    assert "feedbackXp" not in r1["clampedDeltas"]
    r2 = c.propose({"scanXp": 20})
    assert r2["accepted"] is False and r2["rejectionReason"] == "RATE_LIMITED" and r2["nextAllowedUpdate"]
    adm.advance(minutes=60)
    r3 = c.update_config({"photoXp": 11.0}, "photos")
    assert r3["accepted"] is True and r3["appliedConfig"] == {"photoXp": 11} and "clampedDeltas" not in r3
    assert c.variant()["currentConfig"] == to_dict(exp.env.config[1])
    assert to_dict(exp.env.config[1])["scanXp"] == 15 and to_dict(exp.env.config[1])["photoXp"] == 11
    page = c.decisions(page=2, page_size=1)
    assert page["total"] == 3 and page["page"] == 2 and [d["id"] for d in page["decisions"]] == [r2["decisionLogId"]]
    assert page["decisions"][0]["rejectionCode"] == "RATE_LIMITED"
    every = list(c.iter_decisions(page_size=2))  # two pages
    assert [d["id"] for d in every] == [r3["decisionLogId"], r2["decisionLogId"], r1["decisionLogId"]]
    assert every[2]["reasoning"] == "raise scans" and every[0]["appliedConfig"] == {"photoXp": 11}
    assert c.scoreboard()[1]["totalDecisions"] == 3

    hook = c.register_webhook("http://127.0.0.1:9/hook", ["config_updated"])
    assert hook["webhookId"].startswith("wh_") and hook["events"] == ["config_updated"]
    assert c.register_webhook("http://127.0.0.1:9/other")["events"] == [
        "config_updated", "heartbeat_timeout", "circuit_breaker_triggered", "anomaly_detected"]
    assert c.delete_webhook(hook["webhookId"]) is None
    with pytest.raises(ArenaNotFound) as e:
        c.delete_webhook(hook["webhookId"])
    assert e.value.status == 404 and hook["webhookId"] in e.value.server_message


def test_admin_methods(served):
    exp, tok, url = served
    adm, c = AdminClient(url, tok[-1], retries=0), ArenaClient(url, tok[1], retries=0)
    assert adm.clock() == {"minute": 0.0, "day": 0, "status": "RUNNING", "maxDays": 30, "finished": False}
    assert adm.advance(minutes=90)["minute"] == 90.0 and adm.advance(days=2)["day"] == 2
    assert adm.pause()["status"] == "PAUSED" and exp.status == "PAUSED"
    with pytest.raises(ArenaForbidden) as e:
        c.update_config({"scanXp": 12})
    assert e.value.status == 403 and "PAUSED" in str(e.value) and exp.store.decision_count(1) == 0
    with pytest.raises(ArenaForbidden):
        adm.pause()  # not legal twice
    assert adm.resume()["status"] == "RUNNING"
    exp.env.guardrails.trip_breaker(1)
    assert c.update_config({"scanXp": 12})["rejectionReason"] == "CIRCUIT_BREAKER_ACTIVE"
    assert adm.reset_breaker(exp.ids[1]) == {"variantId": exp.ids[1], "breakerOpen": False}
    assert c.update_config({"scanXp": 12})["accepted"] is True
    assert adm.revoke(exp.ids[2]) == {"variantId": exp.ids[2], "revoked": True}
    with pytest.raises(ArenaAuthError) as e:
        ArenaClient(url, tok[2], retries=0).variant()
    assert e.value.status == 401 and "revoked" in str(e.value)
    with pytest.raises(ArenaNotFound):
        adm.revoke("var_nope")
    with pytest.raises(ArenaForbidden) as e:
        AdminClient(url, tok[1], retries=0).pause()  # a strategy token is not the admin's
    assert "admin token" in str(e.value) and "paused or over" not in str(e.value)  # the server's reason, no guess
    assert adm.complete()["status"] == "COMPLETED"
    with pytest.raises(ArenaForbidden):
        c.update_config({"scanXp": 13})
    assert len(c.scoreboard()) == 3  # results stay readable
    for bad in ({}, {"minutes": 1, "days": 1}, {"days": -1}, {"minutes": float("nan")}, {"days": True}):
        with pytest.raises(ValueError):
            adm.advance(**bad)


def test_errors_map_to_classes_and_say_the_fix(served):
    exp, tok, url = served
    bad = "tl_" + "x" * 30
    with pytest.raises(ArenaAuthError) as e:
        ArenaClient(url, bad, retries=0).variant()
    msg = str(e.value)
    assert e.value.status == 401 and e.value.server_message == "unknown token" and e.value.attempts == 1
    assert "tl_xxx..." in msg and bad not in msg and "manifest" in msg and url + "/api/arena/variant" in msg
    with pytest.raises(ArenaForbidden) as e:
        ArenaClient(url, tok[-1], retries=0).variant()  # the admin token is not a variant's
    assert e.value.status == 403
    AdminClient(url, tok[-1]).advance(days=8)
    c0 = ArenaClient(url, tok[0], retries=0)
    r = c0.update_config({"scanXp": 12})  # a guardrail rejection is an answer, not an exception
    assert r["accepted"] is False and r["rejectionReason"] == "CONTROL_VARIANT_IMMUTABLE"
    assert exp.env.config[0].tolist() == exp.env.tenant_vector.tolist()
    c = ArenaClient(url, tok[1], retries=0)
    with pytest.raises(ArenaBadRequest) as e:
        c.update_config({"scanXP": 12})
    assert e.value.status == 400 and "unknown parameter 'scanXP'" in e.value.server_message
    for overrides in ({}, {"scanXp": -1}, {"scanXp": float("nan")}, {"scanXp": True}, {"scanXp": "12"}, [1]):
        with pytest.raises(ValueError):
            c.update_config(overrides)
    with pytest.raises(ValueError):
        c.decisions(page=0)
    with pytest.raises(ValueError, match="poll_interval: expected seconds from 1 to 86400"):
        c.heartbeat(0.5)  # the server's range, checked here
    with pytest.raises(ValueError, match="the request is not JSON"):
        c.heartbeat(5, {"x": object()})
    with pytest.raises(ValueError, match="the request is not JSON"):
        c.update_config({"photoXp": 11}, signals={"a": object()})
    assert exp.store.decision_count(1) == 0  # nothing invalid was sent
    with pytest.raises(ValueError, match="plain http"):
        ArenaClient("http://example.com", tok[1])
    assert ArenaClient("http://example.com", tok[1], allow_http=True).api_url == "http://example.com"
    for bad_url in ("ftp://127.0.0.1", "127.0.0.1:80", "http://", "http://127.0.0.1:x"):
        with pytest.raises(ValueError):
            ArenaClient(bad_url, tok[1])
    with pytest.raises(ValueError):
        ArenaClient(url, "two words")
    assert tok[1] not in repr(c)


def test_a_dead_port_fails_fast_with_a_clear_message():
    url = dead_url()
    c = ArenaClient(url, "tl_" + "y" * 30, retries=2, backoff=0.01)
    waits = []
    c._sleep = lambda s: waits.append(s)
    start = time.monotonic()
    with pytest.raises(ArenaConnectionError) as e:
        c.signals()
    assert time.monotonic() - start < 2.0
    assert e.value.attempts == 3 and e.value.status is None and waits == [0.01, 0.02]
    assert f"cannot reach the arena server at {url}" in str(e.value) and "python -m arena_env serve" in str(e.value)
    with pytest.raises(ArenaConnectionError) as e:  # nothing was sent, so even a PUT may be repeated
        ArenaClient(url, "tl_" + "y" * 30, retries=1, backoff=0.0).update_config({"scanXp": 12})
    assert e.value.attempts == 2 and "may have been applied" not in str(e.value)
    env = RemoteArenaEnv(url, "tl_" + "y" * 30, retries=0)
    with pytest.raises(ArenaConnectionError, match=url):
        env.reset()


class _Stub(http.server.BaseHTTPRequestHandler):
    """Answers each request with the next scripted (status, body, headers) of its method; ``None`` drops the
    connection after reading the request."""

    script: dict[str, list] = {}
    hits: list[str] = []

    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        type(self).hits.append(self.command)
        step = type(self).script[self.command].pop(0)
        if step is None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, body, headers = step
        raw = json.dumps(body).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_PUT = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture()
def stub():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    _Stub.hits = []
    yield f"http://127.0.0.1:{srv.server_address[1]}", _Stub
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def _stub_client(url):
    c = ArenaClient(url, "tl_" + "z" * 30, retries=2, backoff=0.5, timeout=2)
    c.waits = []
    c._sleep = c.waits.append
    return c


def test_retry_policy(stub):
    url, s = stub
    ok = (200, {"success": True, "data": {"enrolled": 1}}, {})
    err = {"success": False, "error": "boom"}
    s.script = {"GET": [(503, err, {}), ok]}
    c = _stub_client(url)
    assert c.signals() == {"enrolled": 1} and s.hits == ["GET", "GET"] and c.waits == [0.5]
    s.hits[:], s.script = [], {"GET": [(502, err, {})] * 3}
    with pytest.raises(ArenaServerError) as e:
        c.signals()
    assert e.value.attempts == 3 and len(s.hits) == 3 and c.waits[1:] == [0.5, 1.0] and "boom" in str(e.value)
    s.hits[:], s.script = [], {"PUT": [(500, err, {}), ok]}  # may have been applied: not repeated
    with pytest.raises(ArenaServerError, match="may have been applied"):
        c.update_config({"scanXp": 12})
    assert s.hits == ["PUT"]
    s.hits[:], s.script = [], {"PUT": [(429, err, {"Retry-After": "3"}), ok]}  # throttled: not processed
    c.waits.clear()
    assert c.update_config({"scanXp": 12}) == {"enrolled": 1} and s.hits == ["PUT", "PUT"] and c.waits == [3.0]
    s.hits[:], s.script = [], {"GET": [(429, err, {})] * 3}
    with pytest.raises(ArenaThrottled):
        c.variant()
    s.hits[:], s.script = [], {"GET": [(400, err, {}), ok]}  # a 4xx is final
    with pytest.raises(ArenaBadRequest):
        c.variant()
    assert s.hits == ["GET"]
    s.hits[:], s.script = [], {"PUT": [None, ok]}  # the connection broke after sending: maybe applied
    with pytest.raises(ArenaConnectionError, match="may have been applied"):
        c.update_config({"scanXp": 12})
    assert s.hits == ["PUT"]
    s.hits[:], s.script = [], {"GET": [None, (200, {"variants": [{"variantId": "a"}]}, {})]}  # idempotent: again
    assert c.scoreboard() == [{"variantId": "a"}] and s.hits == ["GET", "GET"]  # a bare object is accepted too


# ---------------------------------------------------------------------------------------------- RemoteArenaEnv
def test_remote_env_passes_the_gymnasium_checker(served):
    from gymnasium.utils.env_checker import check_env

    exp, tok, url = served
    env = RemoteArenaEnv(url, tok[1], admin_token=tok[-1], scenario="tiny", render_mode="ansi")
    check_env(env)  # the spec is nondeterministic: a remote experiment cannot be rewound
    assert 0 < exp.env.day < 30
    obs, info = env.reset(seed=1)
    assert obs in env.observation_space and info["day"] == exp.env.day and info["variantId"] == exp.ids[1]
    assert "treatment-1" in env.render() and "SCAN_FREQUENCY" in env.render()
    env.close()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.action_space.sample())


@pytest.mark.parametrize("mode", ["continuous", "target", "discrete", "absolute"])
def test_actions_do_what_they_do_in_the_local_env(tmp_path, mode):
    """The same actions through RemoteArenaEnv and in a local EconomyEnv of the same seed: the same decisions,
    configs and (where the protocol tells) observations."""
    local = EconomyEnv("tiny", action_mode=mode, info_level="light")
    lobs, _ = local.reset(seed=SEED)
    with experiment(tmp_path) as (exp, tok, url):
        env = RemoteArenaEnv(url, tok[1], admin_token=tok[-1], scenario="tiny", action_mode=mode)
        env.action_space.seed(7)
        obs, _ = env.reset(seed=7)
        assert np.allclose(obs[EXACT], lobs["variant_0"][EXACT], atol=1e-6)
        seen = 0
        for day in range(6):
            action = env.action_space.sample()
            if mode == "continuous" and day == 1:
                action = np.zeros(10, np.float32)  # a hold sends nothing
            obs, reward, term, trunc, info = env.step(action)
            lobs, _, _, _, linfo = local.step({"variant_0": action})
            ld = linfo["variant_0"]["decision"]
            assert (info["decision"] is None) == (ld is None), (day, info["decision"], ld)
            if ld is not None:
                seen += 1
                d = info["decision"]
                assert d["accepted"] == ld["accepted"] and d["decisionLogId"] == ld["decisionLogId"]
                assert info["overrides"] == ld["economyOverrides"]
                if ld["accepted"]:
                    assert d["appliedConfig"] == ld["appliedConfig"]
                    assert {k: {f: x[f] for f in ld["clampedDeltas"][k]} for k, x in info["clampedDeltas"].items()} \
                        == ld["clampedDeltas"]
                else:
                    assert d["rejectionReason"] == ld["rejectionReason"]
            assert exp.env.config.tolist() == local.config.tolist() and info["config"] == to_dict(local.config[1])
            assert np.allclose(obs[EXACT], lobs["variant_0"][EXACT], atol=1e-6), np.flatnonzero(
                ~np.isclose(obs, lobs["variant_0"], atol=1e-6))
            assert np.isfinite(reward) and not term and not trunc
        assert seen >= 3 and exp.env.day == local.day == 6
        assert exp.store.decision_count(1) == seen


def test_an_agent_runs_through_the_remote_env_as_it_does_locally(tmp_path):
    steps = 10
    local = EconomyEnv("tiny", info_level="light")
    lobs, _ = local.reset(seed=SEED)
    mine = agents.make("multi_metric")
    mine.reset(5)
    ldecisions = []
    for _ in range(steps):
        lobs, rew, _, _, linfo = local.step({"variant_0": decide(local, "variant_0", mine, lobs["variant_0"])})
        if linfo["variant_0"]["decision"] is not None:
            ldecisions.append(linfo["variant_0"]["decision"])
        mine.update(Outcome(rew["variant_0"], linfo["variant_0"]["decision"], local.day))
    with experiment(tmp_path) as (exp, tok, url):
        env = RemoteArenaEnv(url, tok[1], admin_token=tok[-1], scenario="tiny")
        out = run_agent(env, agents.make("multi_metric"), steps=steps, seed=5)
        assert out["steps"] == steps and out["days"] == steps
        assert len(out["decisions"]) == len(ldecisions) >= 4
        for d, ld in zip(out["decisions"], ldecisions):
            assert (d["accepted"], d.get("appliedConfig"), d["decisionLogId"]) == \
                (ld["accepted"], ld.get("appliedConfig"), ld["decisionLogId"])
        log = list(ArenaClient(url, tok[1]).iter_decisions())
        assert [x["id"] for x in log] == [d["decisionLogId"] for d in reversed(out["decisions"])]
        assert all(x["reasoning"] and x["reasoning"] != env.reasoning for x in log)  # the agent's own words
        assert ArenaClient(url, tok[1]).variant()["currentConfig"] == to_dict(exp.env.config[1]) \
            == to_dict(local.config[1]) != to_dict(local.tenant_vector)
        ctx = env.context()
        assert ctx.day == steps and ctx.config == to_dict(local.config[1]) and set(ctx.presets) == {
            "defaults", "lean", "rich"}
        assert ctx.signals.control["RETENTION_RATE"].value == exp.env.signals(0)["metrics"]["RETENTION_RATE"]["value"]
        assert exp.heartbeats[1]["poll"] == 60 == env.poll_interval


def test_rewards_are_the_documented_composite(served):
    exp, tok, url = served
    env = RemoteArenaEnv(url, tok[1], admin_token=tok[-1], reward_mode="delta", xp_cost=0.01)
    env.reset()
    w = {"SCAN_FREQUENCY": 0.4, "RETENTION_RATE": 3.5, "FEEDBACK_QUALITY": 2.5}

    def score():
        m, c = exp.env.signals(1)["metrics"], exp.env.signals(0)["metrics"]
        lift = {k: m[k]["value"] - c[k]["value"] for k in m}
        return sum(w[k] * lift[k] for k in w) - 0.01 * lift["XP_VELOCITY"]

    prev = score()
    for _ in range(3):
        _, r, _, _, info = env.step(np.zeros(10, np.float32))
        assert r == pytest.approx(score() - prev, abs=1e-12) and info["score"] == pytest.approx(score(), abs=1e-12)
        prev = score()
    assert info["accepted"] is None and info["decision"] is None and exp.env.day == 3


def test_remote_env_lifecycle_and_errors(served):
    exp, tok, url = served
    with pytest.raises(ArenaAuthError, match="tl_bad"):
        RemoteArenaEnv(url, "tl_bad_token_0000000", admin_token=tok[-1]).reset()
    with pytest.raises(ValueError, match="control"):
        RemoteArenaEnv(url, tok[0], admin_token=tok[-1]).reset()
    with pytest.raises(ValueError, match="presets"):
        RemoteArenaEnv(url, tok[1], action_mode="discrete")
    with pytest.raises(ValueError, match="admin_token"):
        RemoteArenaEnv(url, tok[1], clock="manual")
    adm = AdminClient(url, tok[-1])
    env = RemoteArenaEnv(url, tok[1], admin_token=tok[-1], max_days=30)
    env.reset()
    up = np.zeros(10, np.float32)
    up[0] = 1.0
    adm.pause()
    obs, r, term, trunc, info = env.step(up)  # paused: reported, not raised; time goes on
    assert "PAUSED" in info["error"] and info["decision"] is None and not term and not trunc
    assert info["status"] == "PAUSED" and obs[67] == 0.0 and exp.env.day == 1
    adm.resume()
    obs, r, term, trunc, info = env.step(up)
    assert info["accepted"] is True and info["decision"]["appliedConfig"] == {"scanXp": 15} == {
        k: info["config"][k] for k in ["scanXp"]}
    assert obs[63] == 0.0 and obs[67] == 1.0  # the 60-minute limit is over by the next day
    exp.env.guardrails.trip_breaker(1)
    obs, _, _, _, info = env.step(up)
    assert info["rejectionReason"] == "CIRCUIT_BREAKER_ACTIVE" and obs[64] == 1.0 and obs[67] == 0.0
    adm.complete()
    obs, r, term, trunc, info = env.step(up)
    assert term is True and trunc is False and info["status"] == "COMPLETED" and "COMPLETED" in info["error"]
    with pytest.raises(RuntimeError):
        env.step(up)


def test_remote_env_reaches_the_horizon(tmp_path):
    with experiment(tmp_path) as (exp, tok, url):
        AdminClient(url, tok[-1]).advance(days=28)
        other = RemoteArenaEnv(url, tok[2], clock="none")  # someone else moves the clock
        other.reset()
        assert other.step(np.zeros(10, np.float32))[4]["day"] == 28 == exp.env.day
        env = RemoteArenaEnv(url, tok[1], admin_token=tok[-1], days_per_step=1)
        assert env.reset()[1]["day"] == 28
        assert env.step(np.zeros(10, np.float32))[3] is False
        _, _, term, trunc, info = env.step(np.zeros(10, np.float32))
        assert (term, trunc, info["day"]) == (False, True, 30)


def test_remote_env_on_the_wall_clock(tmp_path):
    with experiment(tmp_path, seconds_per_day=0.15) as (exp, tok, url):
        env = RemoteArenaEnv(url, tok[1], poll_interval=0.2)
        assert env.clock == "wall"
        _, info = env.reset()
        day0 = info["day"]
        start = time.monotonic()
        up = np.zeros(10, np.float32)
        up[1] = 1.0
        _, _, _, _, info = env.step(up)  # accepted: waits for nextAllowedUpdate too (here a few ms of wall time)
        assert info["accepted"] is True and info["decision"]["appliedConfig"] == {"feedbackXp": 23}
        _, _, _, _, info = env.step(np.zeros(10, np.float32))
        assert 0.4 <= time.monotonic() - start < 5 and info["day"] >= day0 + 2
        assert exp.heartbeats[1]["poll"] == 1 and exp.heartbeats[1]["metadata"]["step"] == 2
