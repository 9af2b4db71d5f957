"""The sandbox server: the protocol's endpoints, envelopes and status codes, tokens, the env's own
guardrails, bad input, the clock, and durability across a ``kill -9`` of a real server process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from arena_env.economy.env import EconomyEnv  # noqa: E402
from arena_env.server.app import create_app  # noqa: E402
from arena_env.server.experiment import Experiment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def server(tmp_path):
    exp, tokens = Experiment.create(tmp_path / "exp.db", "tiny", seed=3, manual_clock=True)
    client = TestClient(create_app(exp))
    yield exp, tokens, client
    client.close()
    exp.store.close()


def h(token):
    return {"Authorization": f"Bearer {token}"}


def test_endpoints_envelopes_and_fields(server):
    exp, tok, c = server
    r = c.get("/api/arena/variant", headers=h(tok[1]))
    assert r.status_code == 200 and r.json()["success"] is True
    d = r.json()["data"]
    assert set(d) == {"variantId", "variantName", "experimentId", "experimentName", "experimentStatus", "mode",
                      "isControl", "currentConfig", "lastConfigUpdate", "updateIntervalMin", "deltaLimitPct"}
    assert d["isControl"] is False and d["mode"] == "AGENT" and d["currentConfig"]["scanXp"] == 10
    s = c.get("/api/arena/signals", headers=h(tok[1])).json()["data"]
    assert set(s) == {"enrolled", "activeToday", "active7d", "totalScans", "experimentDays", "metrics"}
    c.post("/api/admin/advance", json={"days": 8}, headers=h(tok[-1]))
    s = c.get("/api/arena/signals", headers=h(tok[1])).json()["data"]
    assert s["experimentDays"] == 8 and s["enrolled"] > 0
    assert set(s["metrics"]["RETENTION_RATE"]) == {"value", "stdDev", "sampleSize", "confidence"}
    assert s == exp.env.signals(1)  # the simulation's own numbers
    sb = c.get("/api/arena/scoreboard", headers=h(tok[2])).json()["data"]["variants"]
    assert [v["isControl"] for v in sb] == [True, False, False]
    assert set(sb[0]) >= {"variantId", "variantName", "currentConfig", "lastHeartbeat", "metrics", "enrolledCount",
                          "activeCount", "totalDecisions"}
    assert c.post("/api/arena/heartbeat", json={"requestedPollInterval": 30}, headers=h(tok[1])).json() == \
        {"success": True, "data": {}}
    assert c.get("/api/arena/scoreboard", headers=h(tok[1])).json()["data"]["variants"][1]["lastHeartbeat"]


def test_proposals_use_the_envs_guardrails(server, tmp_path):
    exp, tok, c = server
    c.post("/api/admin/advance", json={"days": 8}, headers=h(tok[-1]))
    r = c.put("/api/arena/variant/config", json={"economyOverrides": {"scanXp": 100, "feedbackXp": 16},
                                                 "reasoning": "raise scans"}, headers=h(tok[1])).json()["data"]
    assert r["accepted"] is True and r["appliedConfig"] == {"scanXp": 15, "feedbackXp": 16}
    cd = r["clampedDeltas"]["scanXp"]
    assert cd == {"previous": 10, "requested": 100, "applied": 15, "clamped": True, "deltaPercent": 50.0,
                  "baseline": 10, "maxDelta": 50.0}
    again = c.put("/api/arena/variant/config", json={"economyOverrides": {"scanXp": 20}},
                  headers=h(tok[1])).json()["data"]
    assert again["accepted"] is False and again["rejectionReason"] == "RATE_LIMITED" and again["nextAllowedUpdate"]
    ctl = c.put("/api/arena/variant/config", json={"economyOverrides": {"scanXp": 11}},
                headers=h(tok[0])).json()["data"]
    assert ctl["accepted"] is False and ctl["rejectionReason"] == "CONTROL_VARIANT_IMMUTABLE"
    # the same proposals on a plain env give the same records: one implementation of the guardrails
    env = EconomyEnv("tiny", info_level="light")
    env.reset(seed=3)
    for _ in range(8):
        env.step({a: np.zeros(10, np.float32) for a in env.agents})
    r1 = env.propose(1, {"scanXp": 100, "feedbackXp": 16}, 8 * 1440)
    r2 = env.propose(1, {"scanXp": 20}, 8 * 1440)
    assert r1["appliedConfig"] == r["appliedConfig"] and r2["rejectionReason"] == "RATE_LIMITED"
    assert exp.env.config[1].tolist() == env.config[1].tolist()
    page = c.get("/api/arena/decisions?page=1&pageSize=1", headers=h(tok[1])).json()["data"]
    assert page["total"] == 2 and page["page"] == 1 and page["pageSize"] == 1
    assert page["decisions"][0]["id"] == again["decisionLogId"]  # newest first
    assert page["decisions"][0]["rejectionCode"] == "RATE_LIMITED" and page["decisions"][0]["rejectionReason"]
    p2 = c.get("/api/arena/decisions?page=2&pageSize=1", headers=h(tok[1])).json()["data"]
    assert p2["decisions"][0]["accepted"] is True and p2["decisions"][0]["reasoning"] == "raise scans"
    # a token sees only its own variant's decisions
    assert c.get("/api/arena/decisions", headers=h(tok[2])).json()["data"]["total"] == 0


def test_tokens_and_researcher_endpoints(server):
    exp, tok, c = server
    assert c.get("/api/arena/variant").status_code == 401
    r = c.get("/api/arena/variant", headers=h("tl_guess"))
    assert r.status_code == 401 and r.json() == {"success": False, "error": "unknown token"}
    assert c.post("/api/admin/pause", headers=h(tok[1])).status_code == 403
    assert c.get("/api/arena/variant", headers=h(tok[-1])).status_code == 403  # admin is not a variant
    vid = exp.ids[2]
    assert c.post(f"/api/admin/variants/{vid}/revoke", headers=h(tok[-1])).status_code == 200
    assert c.get("/api/arena/variant", headers=h(tok[2])).json()["error"] == "this token was revoked"
    assert c.get("/api/arena/variant", headers=h(tok[2])).status_code == 401
    assert c.post("/api/admin/variants/var_nope/revoke", headers=h(tok[-1])).status_code == 404
    c.post("/api/admin/advance", json={"days": 8}, headers=h(tok[-1]))
    assert c.post("/api/admin/pause", headers=h(tok[-1])).json()["data"]["status"] == "PAUSED"
    r = c.put("/api/arena/variant/config", json={"economyOverrides": {"scanXp": 12}}, headers=h(tok[1]))
    assert r.status_code == 403 and "PAUSED" in r.json()["error"]
    assert c.post("/api/admin/pause", headers=h(tok[-1])).status_code == 403  # not legal twice
    c.post("/api/admin/resume", headers=h(tok[-1]))
    assert c.put("/api/arena/variant/config", json={"economyOverrides": {"scanXp": 12}},
                 headers=h(tok[1])).status_code == 200
    c.post("/api/admin/complete", headers=h(tok[-1]))
    assert c.put("/api/arena/variant/config", json={"economyOverrides": {"scanXp": 13}},
                 headers=h(tok[1])).status_code == 403
    assert c.post("/api/arena/heartbeat", json={}, headers=h(tok[1])).status_code == 403
    assert c.get("/api/arena/scoreboard", headers=h(tok[1])).status_code == 200  # results stay readable


@pytest.mark.parametrize("body, needle", [
    (b'{"economyOverrides": ', "malformed JSON"),
    (b'{"economyOverrides": {"scanXp": "ten"}}', "economyOverrides.scanXp"),
    (b'{"economyOverrides": {"scanXp": false}}', "economyOverrides.scanXp"),
    (b'{"economyOverrides": {"scanXp": -3}}', "economyOverrides.scanXp: Input should be greater than or equal to 0"),
    (b'{"economyOverrides": {"scanXP": 3}}', "unknown parameter 'scanXP'"),
    (b'{"economyOverrides": {}}', "economyOverrides"),
    (b'{"economyOverrides": {"scanXp": 3}, "colour": 1}', "colour: Extra inputs are not permitted"),
    (b'[1, 2]', "body"),
    (b'{"economyOverrides": {"scanXp": 1e999}}', "scanXp"),
    (b'{"economyOverrides": {"scanXp": 1' + b'0' * 400 + b'}}',
     "economyOverrides.scanXp: Input should be less than or equal to 1000000000000"),
])
def test_bad_payloads_get_400_with_a_message(server, body, needle):
    exp, tok, c = server
    r = c.put("/api/arena/variant/config", content=body, headers={**h(tok[1]), "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["success"] is False and needle in r.json()["error"], r.json()
    assert exp.store.decision_count(1) == 0  # nothing was recorded


def test_other_bad_requests(server):
    exp, tok, c = server
    big = json.dumps({"economyOverrides": {"scanXp": 1}, "reasoning": "x" * 70_000}).encode()
    assert c.put("/api/arena/variant/config", content=big, headers={**h(tok[1]), "Content-Type": "application/json"}
                 ).status_code == 413
    for q in ("page=0", "pageSize=0", "pageSize=101", "page=x"):
        r = c.get(f"/api/arena/decisions?{q}", headers=h(tok[1]))
        assert r.status_code == 400 and r.json()["success"] is False, q
    assert c.get("/api/arena/nowhere", headers=h(tok[1])).status_code == 404
    assert c.delete("/api/arena/variant/config", headers=h(tok[1])).status_code == 405
    assert c.post("/api/admin/advance", json={"days": -1}, headers=h(tok[-1])).status_code == 400
    assert c.post("/api/admin/advance", json={"days": 1, "minutes": 5}, headers=h(tok[-1])).status_code == 400
    assert c.post("/api/arena/heartbeat", json={"requestedPollInterval": True}, headers=h(tok[1])).status_code == 400


def test_what_fastapi_would_ignore_or_misname_is_refused_by_name(server):
    exp, tok, c = server
    adm = h(tok[-1])
    r = c.get("/api/arena/decisions?foo=1", headers=h(tok[1]))
    assert r.status_code == 400 and r.json()["error"] == "unknown query parameter 'foo'; this endpoint takes page, pageSize"
    assert c.get("/api/arena/decisions?page=1&pageSize=5", headers=h(tok[1])).status_code == 200
    r = c.post("/api/admin/pause", json={"x": 1}, headers=adm)
    assert r.status_code == 400 and "takes no body" in r.json()["error"] and exp.status == "RUNNING"  # not paused
    r = c.post("/api/admin/advance", json={"minutes": int("1" + "0" * 400)}, headers=adm)
    assert r.status_code == 400 and r.json()["error"].startswith("minutes: Input should be less than or equal to")
    assert c.post("/api/admin/advance", json={"days": 8}, headers=adm).status_code == 200
    assert c.post("/api/admin/pause", json={}, headers=adm).json()["data"]["status"] == "PAUSED"  # {} is no body
    assert c.post("/api/admin/resume", headers=adm).json()["data"]["status"] == "RUNNING"
    r = c.get("/api/admin/nope", headers=adm)
    assert r.status_code == 404 and r.json()["error"].startswith("unknown path /api/admin/nope")
    assert c.post("/api/admin/nope", headers=adm).status_code == 404
    assert c.post("/api/admin/clock", headers=adm).status_code == 405  # the path is there, for GET
    r = c.put("/api/arena/variant/config", content=b'{"economyOverrides": {"scanXp": 12}}',
              headers={**h(tok[1]), "Content-Type": "text/plain"})
    assert r.status_code == 400 and "Content-Type: application/json (got text/plain)" in r.json()["error"]
    assert exp.store.decision_count(1) == 0


def test_the_horizon_ends_the_experiment_for_agents_but_leaves_complete(server):
    exp, tok, c = server
    adm = h(tok[-1])
    assert c.post("/api/admin/advance", json={"days": 10**6}, headers=adm).json()["data"]["finished"] is True
    days = exp.env.scenario.max_days
    for r in (c.put("/api/arena/variant/config", json={"economyOverrides": {"scanXp": 12}}, headers=h(tok[1])),
              c.post("/api/arena/heartbeat", json={}, headers=h(tok[1]))):
        assert r.status_code == 403 and r.json()["error"].startswith(f"the experiment is over (it ran its {days} days)")
    r = c.post("/api/admin/pause", headers=adm)
    assert r.status_code == 403 and "only complete is left" in r.json()["error"]
    clock = c.get("/api/admin/clock", headers=adm).json()["data"]
    assert clock["status"] == "RUNNING" and clock["finished"] is True  # truncated, not completed
    assert c.post("/api/admin/complete", headers=adm).json()["data"]["status"] == "COMPLETED"


def test_after_complete_the_messages_say_completed_not_the_horizon(server):
    exp, tok, c = server
    adm = h(tok[-1])
    c.post("/api/admin/advance", json={"days": 4}, headers=adm)
    assert c.post("/api/admin/complete", headers=adm).json()["data"]["status"] == "COMPLETED"
    assert c.post("/api/admin/advance", json={"days": 1}, headers=adm).json()["data"]["finished"] is True  # terminated
    r = c.post("/api/admin/pause", headers=adm)
    assert r.status_code == 403 and r.json()["error"] == "cannot pause an experiment that is COMPLETED"
    r = c.put("/api/arena/variant/config", json={"economyOverrides": {"scanXp": 12}}, headers=h(tok[1]))
    assert r.status_code == 403 and r.json()["error"] == "the experiment is COMPLETED: no config changes"
    r = c.post("/api/admin/advance", json={"days": 1}, headers=adm)
    assert r.status_code == 403 and r.json()["error"].startswith("the experiment is over (completed on day 5)")


def test_warm_up_compiles_on_a_copy_and_leaves_the_experiment_alone(server):
    exp, tok, c = server
    before = (exp.env.day, exp.env.config.tolist(), exp.env.users.copy())
    exp.warm_up()
    assert (exp.env.day, exp.env.config.tolist()) == before[:2] and (exp.env.users == before[2]).all()
    assert c.post("/api/admin/advance", json={"days": 1}, headers=h(tok[-1])).json()["data"]["day"] == 1


def test_openapi_documents_the_error_codes(server):
    _, _, c = server
    spec = c.get("/openapi.json").json()
    op = spec["paths"]["/api/arena/variant/config"]["put"]
    assert {"200", "400", "401", "403", "404", "413"} <= set(op["responses"])


def test_open_replays_the_journal_exactly(tmp_path):
    db = tmp_path / "e.db"
    exp, tok = Experiment.create(db, "tiny", seed=5, manual_clock=True)
    exp.advance(8 * 1440)
    exp.propose(1, {"scanXp": 14}, "a")
    exp.advance(90)
    exp.propose(1, {"feedbackXp": 10})
    exp.propose(2, {"streakBonusCap": 30})
    exp.advance(3 * 1440 + 17)
    before = (exp.env.signals(1), exp.env.config.tolist(), exp.minute, exp.scoreboard())
    exp.store.close()
    again = Experiment.open(db)
    assert (again.env.signals(1), again.env.config.tolist(), again.minute, again.scoreboard()) == before
    assert again.authenticate(f"Bearer {tok[1]}").variant == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(url, method, path, token, body=None):
    req = urllib.request.Request(url + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _start(args, tmp_path):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "arena_env", "serve", "--port", str(port), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/openapi.json", timeout=1)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read())
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


def test_kill_9_loses_no_accepted_decision(tmp_path):
    db, man = tmp_path / "e.db", tmp_path / "manifest.json"
    proc, url = _start(["--scenario", "tiny", "--db", str(db), "--manual-clock", "--manifest-out", str(man)], tmp_path)
    try:
        m = json.loads(man.read_text())
        assert m["apiUrl"] == url and len(m["variants"]) == 3 and m["variants"][0]["isControl"] is True
        assert oct(man.stat().st_mode & 0o777) == "0o600"  # the manifest holds the tokens
        t1, adm = m["variants"][1]["strategyToken"], m["adminToken"]
        assert _call(url, "POST", "/api/admin/advance", adm, {"days": 9})[0] == 200
        st, r = _call(url, "PUT", "/api/arena/variant/config", t1, {"economyOverrides": {"scanXp": 14}})
        assert st == 200 and r["data"]["accepted"] is True
        _call(url, "POST", "/api/admin/advance", adm, {"minutes": 2000})
        signals = _call(url, "GET", "/api/arena/signals", t1)[1]["data"]
        decisions = _call(url, "GET", "/api/arena/decisions", t1)[1]["data"]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    proc, url = _start(["--db", str(db)], tmp_path)
    try:
        assert _call(url, "GET", "/api/arena/signals", t1)[1]["data"] == signals
        assert _call(url, "GET", "/api/arena/decisions", t1)[1]["data"] == decisions
        assert _call(url, "GET", "/api/arena/variant", t1)[1]["data"]["currentConfig"]["scanXp"] == 14
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_manifest_appears_when_the_server_accepts_and_names_the_port_it_chose(tmp_path):
    """--manifest-out was written before the port listened (a client reading it at once was refused, and
    --port 0 wrote ":0"); a busy port or a bad --manifest-out was found after the experiment was created."""
    man, db = tmp_path / "m.json", tmp_path / "e.db"
    proc = subprocess.Popen([sys.executable, "-m", "arena_env", "serve", "--scenario", "tiny", "--port", "0",
                             "--db", str(db), "--manual-clock", "--manifest-out", str(man)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):
            if man.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        m = json.loads(man.read_text())  # renamed into place: complete once it exists
        port = int(m["apiUrl"].rsplit(":", 1)[1])
        assert port > 0 and oct(man.stat().st_mode & 0o777) == "0o600"
        t1 = m["variants"][1]["strategyToken"]
        assert _call(m["apiUrl"], "GET", "/api/arena/signals", t1)[0] == 200  # at once, no retry
        busy = subprocess.run([sys.executable, "-m", "arena_env", "serve", "--scenario", "tiny", "--port", str(port),
                               "--db", str(tmp_path / "busy.db")], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert busy.returncode == 2 and f"--port {port}: cannot listen there" in busy.stderr
        assert not (tmp_path / "busy.db").exists()
    finally:
        proc.terminate()
        proc.wait(10)
    (tmp_path / "afile").write_text("x")
    for bad, why in ((tmp_path, "is a directory"), (tmp_path / "afile" / "m.json", "cannot create its directory")):
        r = subprocess.run([sys.executable, "-m", "arena_env", "serve", "--scenario", "tiny", "--port", "0",
                            "--db", str(tmp_path / "bad.db"), "--manifest-out", str(bad)], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and "--manifest-out" in r.stderr and why in r.stderr, r.stderr
        assert not (tmp_path / "bad.db").exists()


def test_the_wall_clock_moves_the_simulation(tmp_path):
    proc, url = _start(["--scenario", "tiny", "--db", str(tmp_path / "w.db"), "--seconds-per-day", "0.2",
                        "--manifest-out", str(tmp_path / "m.json")], tmp_path)
    try:
        t = json.loads((tmp_path / "m.json").read_text())["variants"][1]["strategyToken"]
        d0 = _call(url, "GET", "/api/arena/signals", t)[1]["data"]["experimentDays"]
        time.sleep(1.5)
        d1 = _call(url, "GET", "/api/arena/signals", t)[1]["data"]["experimentDays"]
        assert d1 >= d0 + 4
    finally:
        proc.terminate()
        proc.wait(10)


def test_heartbeat_timeout_is_reported_once_per_silence_and_survives_restart(tmp_path):
    now = [1_000_000.0]
    db = tmp_path / "hb.db"
    exp, tok = Experiment.create(db, "tiny", seed=3, manual_clock=True, clock=lambda: now[0])
    seen = []
    exp.listeners.append(lambda event, v, data: seen.append((event, v, data)))
    c = TestClient(create_app(exp))
    assert c.post("/api/arena/heartbeat", json={"requestedPollInterval": 10}, headers=h(tok[1])).status_code == 200
    assert c.post("/api/arena/heartbeat", json={}, headers=h(tok[2])).status_code == 200  # no interval: never times out
    now[0] += 30.0  # exactly 3 intervals: not yet
    assert exp.check_heartbeats() == [] and not exp.timed_out(1)
    now[0] += 0.5
    c.get("/api/arena/variant", headers=h(tok[2]))  # any request runs the check
    assert [(e, v) for e, v, _ in seen] == [("heartbeat_timeout", 1)]
    assert seen[0][2]["variantId"] == exp.ids[1] and seen[0][2]["timeoutSeconds"] == 30.0
    now[0] += 100.0
    assert exp.check_heartbeats() == [] and len(seen) == 1  # one notice per silence
    exp.store.close()
    exp = Experiment.open(db, clock=lambda: now[0])  # the notice is journaled: not repeated after a restart
    assert exp.timed_out(1) and exp.check_heartbeats() == []
    exp.listeners.append(lambda event, v, data: seen.append((event, v, data)))
    c = TestClient(create_app(exp))
    c.post("/api/arena/heartbeat", json={"requestedPollInterval": 10}, headers=h(tok[1]))  # back, then silent again
    assert not exp.timed_out(1)
    now[0] += 31.0
    assert exp.check_heartbeats() == [1] and [e for e, _, _ in seen] == ["heartbeat_timeout"] * 2
    exp.store.close()
