"""Webhooks: signed delivery to a real local HTTP receiver, filtering, retries, the log, durability."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from arena_env.server.webhooks import EVENTS, WebhookDispatcher, sign, verify_signature

SECRET = b"test-secret-\x00\xff-bytes"
FAST = {"timeout_s": 0.3, "retries": (0.05, 0.05, 0.05)}


class Receiver:
    """A local HTTP server recording every POST; ``plan`` holds the answers to give, in order: an HTTP
    status, or ``"hang"`` (answer after the dispatcher's timeout); then 200 for good."""

    def __init__(self, port: int = 0, plan=()):
        self.requests: list[dict] = []
        self.plan = list(plan)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                              "t": time.time()})
                    action = receiver.plan.pop(0) if receiver.plan else 200
                if action == "hang":
                    time.sleep(0.8)
                    action = 200
                self.send_response(action)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def make(tmp_path):
    opened = []

    def _make(**kwargs):
        d = WebhookDispatcher(tmp_path / "arena.db", SECRET, **{**FAST, **kwargs})
        opened.append(d)
        return d

    yield _make
    for d in opened:
        d.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def test_delivery_format_headers_and_signature(make, receiver):
    d = make(clock=lambda: 1_735_732_800.25)  # 2025-01-01T12:00:00Z
    hook = d.register(2, receiver.url, ["config_updated"])
    assert hook["webhookId"].startswith("wh_") and hook["url"] == receiver.url and hook["events"] == ["config_updated"]
    assert d.emit(2, "config_updated", {"variantId": "v2", "appliedConfig": {"scanXp": 12}}) == 1
    assert d.flush(5)
    (req,) = receiver.requests
    h, body = req["headers"], req["body"]
    assert req["path"] == "/hook" and h["Content-Type"] == "application/json"
    msg = json.loads(body)
    assert msg == {"event": "config_updated", "webhookId": hook["webhookId"], "deliveryId": msg["deliveryId"],
                   "timestamp": "2025-01-01T12:00:00Z", "data": {"variantId": "v2", "appliedConfig": {"scanXp": 12}}}
    assert body == json.dumps(msg, separators=(",", ":"), sort_keys=True).encode()  # compact, sorted keys
    assert msg["deliveryId"].startswith("dl_")
    assert h["X-Arena-Event"] == "config_updated" and h["X-Arena-Delivery"] == msg["deliveryId"]
    assert h["X-Arena-Timestamp"] == "1735732800"
    assert h["X-Arena-Signature"] == sign(SECRET, 1735732800, body)
    assert verify_signature(SECRET, h["X-Arena-Timestamp"], body, h["X-Arena-Signature"])
    (row,) = d.deliveries()
    assert row["state"] == "delivered" and row["status"] == 200 and row["attempt"] == 1 and row["error"] is None
    assert row["deliveryId"] == msg["deliveryId"] and row["webhookId"] == hook["webhookId"]


def test_verify_signature_rejects_tampering():
    body, ts = b'{"data":{},"event":"config_updated"}', 1_700_000_000
    sig = sign(SECRET, ts, body)
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert verify_signature(SECRET, ts, body, sig) and verify_signature(SECRET, str(ts), body.decode(), sig)
    assert not verify_signature(SECRET, ts, body.replace(b"{}", b'{"x":1}'), sig)  # body
    assert not verify_signature(SECRET, ts + 1, body, sig)  # timestamp
    assert not verify_signature(b"another secret", ts, body, sig)  # key
    assert not verify_signature(SECRET, ts, body, sig[:-1] + ("0" if sig[-1] != "0" else "1"))
    for junk in ("", "sha256=", "garbage", None):
        assert not verify_signature(SECRET, ts, body, junk)
    assert not verify_signature(SECRET, "not-a-number", body, sig)
    assert verify_signature(SECRET, ts, body, sig, max_age_s=300, now=ts + 299)
    assert not verify_signature(SECRET, ts, body, sig, max_age_s=300, now=ts + 301)  # a replay


def test_event_filtering_and_variant_scope(make, receiver):
    d = make()
    only_updates = d.register(1, receiver.url + "?a", ["config_updated"])
    everything = d.register(1, receiver.url + "?b", None)
    other = d.register(2, receiver.url + "?c", None)
    assert everything["events"] == list(EVENTS)
    assert d.emit(1, "anomaly_detected", {"n": 1}) == 1
    assert d.emit(1, "config_updated", {"n": 2}) == 2
    assert d.emit(3, "config_updated", {"n": 3}) == 0  # no subscriber in variant 3
    assert d.emit(None, "circuit_breaker_triggered", {"n": 4}) == 2  # experiment-wide: every variant's subscribers
    assert d.flush(5)
    got = sorted((r["path"].split("?")[1], json.loads(r["body"])["data"]["n"]) for r in receiver.requests)
    assert got == [("a", 2), ("b", 1), ("b", 2), ("b", 4), ("c", 4)]
    assert {r["webhookId"] for r in d.deliveries(variant=2)} == {other["webhookId"]}
    assert len(d.deliveries(only_updates["webhookId"])) == 1 and len(d.deliveries(limit=2)) == 2


def test_listener_forwards_only_webhook_events(make, receiver):
    d = make()
    d.register(0, receiver.url, None)
    d.listener("day_simulated", None, {"day": 3})  # the experiment's other events are ignored
    d.listener("heartbeat_timeout", 0, {"variantId": "v0"})
    assert d.flush(5)
    assert [json.loads(r["body"])["event"] for r in receiver.requests] == ["heartbeat_timeout"]


def test_retries_with_a_failing_then_hanging_receiver_deliver_on_the_third_attempt(make):
    r = Receiver(plan=[500, "hang"])
    try:
        d = make(timeout_s=0.3, retries=(0.05, 0.1, 0.2))
        hook = d.register(0, r.url, None)
        t0 = time.time()
        assert d.emit(0, "config_updated", {"k": 1}) == 1
        assert d.flush(10)
        log = d.deliveries(hook["webhookId"])
        assert [(x["attempt"], x["state"], x["status"]) for x in log] == [
            (3, "delivered", 200), (2, "retried", None), (1, "retried", 500)]
        assert log[1]["error"].startswith("timed out") and log[2]["error"] == "HTTP 500"
        assert len({x["deliveryId"] for x in log}) == 1
        assert wait_until(lambda: len(r.requests) == 3)  # the hung request was recorded too
        assert len({q["body"] for q in r.requests}) == 1  # the same body on every attempt
        assert len({q["headers"]["X-Arena-Delivery"] for q in r.requests}) == 1
        for q in r.requests:  # each attempt signs its own timestamp
            assert verify_signature(SECRET, q["headers"]["X-Arena-Timestamp"], q["body"], q["headers"]["X-Arena-Signature"])
        assert time.time() - t0 >= 0.05 + 0.3 + 0.1  # backoff delays and the timeout were waited
    finally:
        r.close()


def test_exhausted_retries_mark_the_delivery_failed(make):
    d = make(retries=(0.05, 0.05))
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: connection refused
    hook = d.register(0, url, ["anomaly_detected"])
    d.emit(0, "anomaly_detected", {})
    assert d.flush(10)
    log = d.deliveries(hook["webhookId"])
    assert [(x["attempt"], x["state"]) for x in log] == [(3, "failed"), (2, "retried"), (1, "retried")]
    assert all(x["status"] is None and "refused" in x["error"].lower() for x in log)


def test_a_failing_receiver_does_not_hold_up_others(make, receiver):
    d = make(timeout_s=0.3, retries=(1.0, 1.0, 1.0), workers=1)
    d.register(0, f"http://127.0.0.1:{free_port()}/down", None)
    d.register(0, receiver.url, None)
    d.emit(0, "config_updated", {})
    assert wait_until(lambda: len(receiver.requests) == 1, timeout=0.9)  # before the first retry is due


def test_unregister_stops_deliveries_and_is_scoped_to_the_variant(make, receiver):
    d = make(start=False)
    hook = d.register(1, receiver.url, None)
    d.emit(1, "config_updated", {})  # queued, not sent: the workers are not started
    assert d.list(2) == [] and not d.unregister(2, hook["webhookId"])  # another variant's token sees nothing
    assert [w["webhookId"] for w in d.list(1)] == [hook["webhookId"]]
    assert not d.unregister(1, "wh_unknown")
    assert d.unregister(1, hook["webhookId"])
    assert not d.unregister(1, hook["webhookId"])  # already gone
    assert d.list(1) == [] and d.emit(1, "config_updated", {}) == 0
    assert not d.flush(0.05)  # a pending row and no workers yet
    d.start()
    assert d.flush(5)
    assert receiver.requests == []
    (row,) = d.deliveries()
    assert row["state"] == "failed" and "unregistered" in row["error"]


def test_validation_errors_name_the_field(make, tmp_path):
    d = make(start=False)
    for url, words in [("ftp://example.com/x", "scheme"), ("http://", "no host"), ("", "non-empty"),
                       (None, "non-empty"), ("https://exa mple.com", "whitespace"), ("example.com/hook", "scheme"),
                       ("http://example.com:99999/", "port")]:
        with pytest.raises(ValueError, match="url: .*" + words):
            d.register(0, url, None)
    with pytest.raises(ValueError, match="events: unknown 'config_changed'.*config_updated, heartbeat_timeout"):
        d.register(0, "https://example.com/h", ["config_changed"])
    for bad in ([], "config_updated"):
        with pytest.raises(ValueError, match="events: "):
            d.register(0, "https://example.com/h", bad)
    assert d.register(0, "https://example.com/h", ["config_updated", "config_updated"])["events"] == ["config_updated"]
    with pytest.raises(ValueError, match="event: unknown 'nope'"):
        d.emit(0, "nope", {})
    with pytest.raises(ValueError):
        d.emit(0, "config_updated", {"x": float("nan")})  # not JSON
    with pytest.raises(ValueError, match="secret"):
        WebhookDispatcher(tmp_path / "other.db", b"")
    with pytest.raises(ValueError, match="retries"):
        WebhookDispatcher(tmp_path / "other.db", SECRET, retries=(-1.0,))


def test_pending_deliveries_survive_a_restart(make, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    first = make(retries=(0.6,))
    hook = first.register(0, url, None)
    first.emit(0, "config_updated", {"n": 1})
    assert wait_until(lambda: [x["state"] for x in first.deliveries()] == ["pending", "retried"])
    first.close()  # receiver still down: attempt 2 is pending
    with sqlite3.connect(tmp_path / "arena.db") as con:
        (due,), = con.execute("SELECT at FROM webhook_deliveries WHERE delivered IS NULL").fetchall()
    con.close()
    r = Receiver(port=port)
    try:
        second = make(retries=(0.6,))
        assert second.flush(5)
        (req,) = r.requests
        assert json.loads(req["body"])["data"] == {"n": 1} and json.loads(req["body"])["webhookId"] == hook["webhookId"]
        assert req["t"] >= due - 0.01  # its due time was kept, not skipped
        assert [(x["attempt"], x["state"]) for x in second.deliveries()] == [(2, "delivered"), (1, "retried")]
        second.close()
        never_started = make(start=False)  # a delivery emitted but never attempted also survives
        never_started.emit(0, "heartbeat_timeout", {"n": 2})
        never_started.close()
        third = make()
        assert third.flush(5) and [json.loads(q["body"])["data"]["n"] for q in r.requests] == [1, 2]
    finally:
        r.close()


def test_close_stops_every_thread_and_is_idempotent(make, receiver):
    def ours():
        return [t for t in threading.enumerate() if t.name.startswith("arena-webhooks")]

    d = make(workers=2)
    d.register(0, receiver.url, None)
    d.emit(0, "config_updated", {})
    assert d.flush(5) and len(ours()) == 2
    d.close()
    d.close()
    assert ours() == []
    with pytest.raises(RuntimeError, match="closed"):
        d.emit(0, "config_updated", {})
    with pytest.raises(RuntimeError, match="closed"):
        d.register(0, receiver.url, None)


def test_shares_a_database_and_never_stores_the_secret(make, tmp_path):
    db = tmp_path / "arena.db"
    with sqlite3.connect(db) as con:  # the server's own tables are left alone
        con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        con.execute("INSERT INTO meta VALUES ('experiment_id', '\"x\"')")
    con.close()
    d = make(start=False)
    d.register(0, "https://example.com/h", None)
    d.emit(0, "config_updated", {})
    assert SECRET.hex() not in repr(d) and "secret" not in repr(d)
    d.close()
    with sqlite3.connect(db) as con:
        tables = {n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert con.execute("SELECT value FROM meta").fetchall() == [('"x"',)]
    con.close()
    assert tables - {"sqlite_sequence"} == {"meta", "webhooks", "webhook_deliveries"}
    for f in tmp_path.glob("arena.db*"):
        assert SECRET not in f.read_bytes()
