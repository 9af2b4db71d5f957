"""Webhooks of the sandbox server: subscriptions, signed HTTP delivery, retries with backoff, a delivery log.

An agent registers a URL for its variant (``POST /api/arena/webhooks``); when the experiment emits one of
the events below for that variant (or an experiment-wide event, ``variant=None``), every active
subscriber receives it by HTTP POST from a background worker; :meth:`WebhookDispatcher.emit` never blocks
on the network.

Events (:data:`EVENTS`; all four are the default subscription):

=============================  ==================================================================
``config_updated``             an update of the variant's economy was accepted
``heartbeat_timeout``          no heartbeat for 3x the agent's poll interval
``circuit_breaker_triggered``  the variant's circuit breaker opened (researcher or retention cliff)
``anomaly_detected``           4 or more consecutive max-delta changes
=============================  ==================================================================

Delivery: ``POST <url>`` with ``Content-Type: application/json`` and the body (compact JSON, sorted keys,
UTF-8; the same bytes on every attempt)::

    {"data":{...},"deliveryId":"dl_...","event":"config_updated","timestamp":"2025-01-01T12:00:00Z",
     "webhookId":"wh_..."}

``timestamp`` is when the event was emitted (UTC). Headers:

==========================  ==========================================================================
``X-Arena-Event``           the event name
``X-Arena-Delivery``        the ``deliveryId`` (stable across retries: receivers deduplicate on it)
``X-Arena-Timestamp``       unix seconds (an integer) of this attempt
``X-Arena-Signature``       ``sha256=<hex HMAC-SHA256(secret, f"{X-Arena-Timestamp}.{body}")>``
==========================  ==========================================================================

A receiver checks the signature with :func:`verify_signature` (constant-time comparison), over the raw
body bytes as received, and may reject old timestamps (``max_age_s``) to refuse replays.

Any 2xx answer is a delivery. Anything else (another status, a redirect: they are not followed, a
timeout after ``timeout_s``, a refused connection) is a failed attempt, retried after each delay of
``retries`` in turn (default 0.5, 1, 2, 4 s: 5 attempts); after the last retry the delivery is failed.
Requests go straight to the URL (environment proxies are ignored). Retries are scheduled, not slept: a
queue ordered by due time feeds ``workers`` threads, so a failing receiver delays no one else for longer
than one ``timeout_s``. Deliveries of one webhook may arrive out of order.

Storage (SQLite, WAL; may share the server's database file, it uses only these two tables):

* ``webhooks(id, variant, url, events, created, active)``: ``events`` a JSON list; unregistering sets
  ``active = 0`` and cancels the webhook's pending deliveries;
* ``webhook_deliveries(id, webhook_id, event, payload, attempt, status, error, at, delivered)``: one row
  per attempt; ``payload`` the exact body; ``status`` the HTTP status (NULL if none was received);
  ``error`` why an attempt failed; ``at`` when it was made (its due time while pending); ``delivered``
  NULL = pending, 1 = delivered, 0 = failed and retried (the next attempt is a newer row),
  -1 = failed for good (retries exhausted, or the webhook was unregistered).

Durability: every attempt is committed before the next is scheduled; pending rows (including one
interrupted mid-attempt by a crash) are resumed, at their due time, by the next dispatcher opened on the
same database. Delivery is therefore at least once. Open one dispatcher per database at a time.

The secret is never stored, logged or returned. The worker never raises: errors go into the log.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
import logging
import secrets
import sqlite3
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable

EVENTS = ("config_updated", "heartbeat_timeout", "circuit_breaker_triggered", "anomaly_detected")
DEFAULT_EVENTS = EVENTS

SCHEMA = """
CREATE TABLE IF NOT EXISTS webhooks (id TEXT PRIMARY KEY, variant INTEGER NOT NULL, url TEXT NOT NULL,
                                     events TEXT NOT NULL, created REAL NOT NULL,
                                     active INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS webhook_deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT, webhook_id TEXT NOT NULL,
                                               event TEXT NOT NULL, payload TEXT NOT NULL,
                                               attempt INTEGER NOT NULL, status INTEGER, error TEXT,
                                               at REAL NOT NULL, delivered INTEGER);
CREATE INDEX IF NOT EXISTS webhooks_variant ON webhooks (variant, active);
CREATE INDEX IF NOT EXISTS webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);
CREATE INDEX IF NOT EXISTS webhook_deliveries_pending ON webhook_deliveries (delivered, at);
"""

STATES = {None: "pending", 1: "delivered", 0: "retried", -1: "failed"}
MAX_ERROR_CHARS = 500
MAX_RESPONSE_BYTES = 65536
_POLL_S = 0.5  # the longest a worker sleeps before re-reading the clock (an injected clock may jump)

log = logging.getLogger(__name__)


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def sign(secret: bytes, timestamp: int | str, body: bytes | str) -> str:
    """The ``X-Arena-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``f"{timestamp}.{body}"``."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    mac = hmac.new(secret, f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: bytes, timestamp: int | str, body: bytes | str, signature: str, *,
                     max_age_s: float | None = None, now: float | None = None) -> bool:
    """Whether ``signature`` (the ``X-Arena-Signature`` header) signs ``timestamp`` (``X-Arena-Timestamp``)
    and the raw ``body``; with ``max_age_s``, also refuse timestamps further than that from ``now``
    (default ``time.time()``). Never raises on malformed input: it is then False."""
    try:
        ts = int(str(timestamp).strip())
        expected = sign(secret, ts, body)
    except (TypeError, ValueError):
        return False
    if not isinstance(signature, str):
        return False
    if max_age_s is not None and abs((time.time() if now is None else now) - ts) > max_age_s:
        return False
    return hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("utf-8", "replace"))


def validate_url(url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise ValueError("url: must be a non-empty string such as 'https://example.com/hook'")
    url = url.strip()
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError("url: must not contain whitespace or control characters")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"url: the scheme must be http or https, not {parts.scheme or 'missing'!r}")
    try:
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError:
        raise ValueError(f"url: invalid port in {url!r}") from None
    if not parts.hostname:
        raise ValueError(f"url: {url!r} has no host")
    return url


def validate_events(events: Any) -> list[str]:
    if events is None:
        return list(DEFAULT_EVENTS)
    if isinstance(events, str) or not isinstance(events, (list, tuple)):
        raise ValueError(f"events: must be a list of event names from {', '.join(EVENTS)} (or omitted)")
    if not events:
        raise ValueError("events: name at least one event, or omit the field for the defaults")
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise ValueError(f"events: unknown {', '.join(map(repr, unknown))}; the events are {', '.join(EVENTS)}")
    return list(dict.fromkeys(events))  # de-duplicated, in the given order


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError with the 3xx status: a failed attempt


class WebhookDispatcher:
    """See the module docstring. All public methods are thread-safe and return quickly."""

    def __init__(self, db_path: str | Path, secret: bytes, *, timeout_s: float = 2.0,
                 retries: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0), clock: Callable[[], float] = time.time,
                 workers: int = 2, start: bool = True):
        if not isinstance(secret, (bytes, bytearray)) or not secret:
            raise ValueError("secret: must be non-empty bytes")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s: must be positive, got {timeout_s}")
        retries = tuple(float(r) for r in retries)
        if any(r < 0 for r in retries):
            raise ValueError(f"retries: delays must be >= 0 seconds, got {retries}")
        if workers < 1:
            raise ValueError(f"workers: must be at least 1, got {workers}")
        self.path = str(db_path)
        self._secret = bytes(secret)
        self.timeout_s, self.retries, self.clock, self.n_workers = float(timeout_s), retries, clock, int(workers)
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)
        self._db_lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int]] = []  # (due time, delivery row id), a heap
        self._in_flight = 0
        self._stopping = False
        self._closed = False
        self._threads: list[threading.Thread] = []
        with self._db_lock:
            pending = self._db.execute("SELECT at, id FROM webhook_deliveries WHERE delivered IS NULL").fetchall()
        self._queue = [(float(at), int(i)) for at, i in pending]
        heapq.heapify(self._queue)
        if start:
            self.start()

    def __repr__(self) -> str:
        return f"WebhookDispatcher({self.path!r}, workers={self.n_workers}, retries={self.retries})"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the worker threads (done by the constructor unless ``start=False``)."""
        with self._cond:
            self._check_open()
            if self._threads:
                return
            self._threads = [threading.Thread(target=self._work, name=f"arena-webhooks-{k}", daemon=True)
                             for k in range(self.n_workers)]
        for t in self._threads:
            t.start()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until no delivery is pending or in flight (retries included); False on timeout or if the
        workers are not running while deliveries are pending."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queue or self._in_flight:
                if not self._threads or self._stopping:
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(_POLL_S if left is None else min(left, _POLL_S))
            return True

    def close(self) -> None:
        """Stop the workers (an attempt in flight finishes and is logged, at most ``timeout_s``) and close
        the database. Pending deliveries stay stored for the next dispatcher. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._stopping = True
            self._cond.notify_all()
            threads, self._threads = self._threads, []
        for t in threads:
            t.join()
        with self._db_lock:
            self._closed = True
            self._db.close()

    def __enter__(self) -> WebhookDispatcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed or self._stopping:
            raise RuntimeError("this WebhookDispatcher is closed; open a new one on the same database")

    # ------------------------------------------------------------------ subscriptions
    def register(self, variant: int, url: str, events: list[str] | None = None) -> dict:
        """Subscribe ``url`` to ``events`` (default: all of :data:`EVENTS`) of ``variant``."""
        url, events = validate_url(url), validate_events(events)
        webhook_id = "wh_" + secrets.token_urlsafe(16)
        with self._db_lock:
            self._check_open()
            self._db.execute("INSERT INTO webhooks (id, variant, url, events, created, active) VALUES (?, ?, ?, ?, ?, 1)",
                             (webhook_id, int(variant), url, json.dumps(events), float(self.clock())))
        return {"webhookId": webhook_id, "url": url, "events": events}

    def unregister(self, variant: int, webhook_id: str) -> bool:
        """Deactivate a webhook of ``variant`` and cancel its pending deliveries; False if there is no such
        active webhook for this variant (another variant's webhooks are invisible)."""
        with self._db_lock:
            self._check_open()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                n = self._db.execute("UPDATE webhooks SET active = 0 WHERE id = ? AND variant = ? AND active = 1",
                                     (str(webhook_id), int(variant))).rowcount
                if n:
                    self._db.execute("UPDATE webhook_deliveries SET delivered = -1, error = ?, at = ? "
                                     "WHERE webhook_id = ? AND delivered IS NULL",
                                     ("cancelled: webhook unregistered", float(self.clock()), str(webhook_id)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return bool(n)

    def list(self, variant: int) -> list[dict]:
        """The active webhooks of ``variant``, oldest first."""
        with self._db_lock:
            self._check_open()
            rows = self._db.execute("SELECT id, url, events, created FROM webhooks WHERE variant = ? AND active = 1 "
                                    "ORDER BY created, id", (int(variant),)).fetchall()
        return [{"webhookId": i, "url": u, "events": json.loads(e), "createdAt": iso(c)} for i, u, e, c in rows]

    # ------------------------------------------------------------------ events
    def emit(self, variant: int | None, event: str, data: dict) -> int:
        """Queue ``event`` with ``data`` (JSON-serialisable) for every active webhook of ``variant``
        subscribed to it (``variant=None``: every variant's subscribers); returns how many were queued."""
        if event not in EVENTS:
            raise ValueError(f"event: unknown {event!r}; the events are {', '.join(EVENTS)}")
        now = float(self.clock())
        data_json = json.dumps(data, separators=(",", ":"), sort_keys=True, allow_nan=False)  # fail in the caller
        with self._db_lock:
            self._check_open()
            if variant is None:
                hooks = self._db.execute("SELECT id, events FROM webhooks WHERE active = 1").fetchall()
            else:
                hooks = self._db.execute("SELECT id, events FROM webhooks WHERE active = 1 AND variant = ?",
                                         (int(variant),)).fetchall()
            hooks = [h for h, ev in hooks if event in json.loads(ev)]
            if not hooks:
                return 0
            queued = []
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for hook in hooks:
                    body = json.dumps({"event": event, "webhookId": hook, "deliveryId": "dl_" + secrets.token_urlsafe(12),
                                       "timestamp": iso(now), "data": json.loads(data_json)},
                                      separators=(",", ":"), sort_keys=True)
                    cur = self._db.execute("INSERT INTO webhook_deliveries (webhook_id, event, payload, attempt, at) "
                                           "VALUES (?, ?, ?, 1, ?)", (hook, event, body, now))
                    queued.append((now, int(cur.lastrowid)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        self._push(queued)
        return len(queued)

    def listener(self, event: str, variant: int | None, data: dict) -> None:
        """An :attr:`Experiment.listeners <arena_env.server.experiment.Experiment.listeners>` callable:
        forwards the webhook events to :meth:`emit` and ignores the others (``day_simulated``, ...)."""
        if event in EVENTS:
            self.emit(variant, event, data)

    # ------------------------------------------------------------------ the delivery log
    def deliveries(self, webhook_id: str | None = None, limit: int = 100, *, variant: int | None = None) -> list[dict]:
        """The delivery log, newest attempt first: one item per attempt, filtered by webhook or variant."""
        sql = ("SELECT d.id, d.webhook_id, d.event, d.payload, d.attempt, d.status, d.error, d.at, d.delivered "
               "FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE 1 = 1")
        args: list[Any] = []
        if webhook_id is not None:
            sql += " AND d.webhook_id = ?"
            args.append(str(webhook_id))
        if variant is not None:
            sql += " AND w.variant = ?"
            args.append(int(variant))
        sql += " ORDER BY d.id DESC LIMIT ?"
        args.append(max(0, int(limit)))
        with self._db_lock:
            self._check_open()
            rows = self._db.execute(sql, args).fetchall()
        out = []
        for i, hook, event, payload, attempt, status, error, at, delivered in rows:
            out.append({"id": i, "deliveryId": json.loads(payload)["deliveryId"], "webhookId": hook, "event": event,
                        "attempt": attempt, "status": status, "error": error, "at": iso(at),
                        "state": STATES[delivered]})
        return out

    # ------------------------------------------------------------------ the workers
    def _push(self, items: list[tuple[float, int]]) -> None:
        with self._cond:
            for item in items:
                heapq.heappush(self._queue, item)
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    now = self.clock()
                    if self._queue and self._queue[0][0] <= now:
                        _, row_id = heapq.heappop(self._queue)
                        self._in_flight += 1
                        break
                    wait = _POLL_S if not self._queue else min(_POLL_S, max(self._queue[0][0] - now, 0.001))
                    self._cond.wait(wait)
            try:
                self._attempt(row_id)
            except Exception as exc:  # never raise from a worker: record the error on the attempt
                log.debug("webhook delivery %s: %s", row_id, type(exc).__name__)
                try:
                    with self._db_lock:
                        if not self._closed:
                            self._db.execute("UPDATE webhook_deliveries SET delivered = -1, error = ? "
                                             "WHERE id = ? AND delivered IS NULL",
                                             (_short(f"internal error: {type(exc).__name__}: {exc}"), row_id))
                except Exception:
                    pass
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

    def _attempt(self, row_id: int) -> None:
        with self._db_lock:
            row = self._db.execute("SELECT d.webhook_id, d.event, d.payload, d.attempt, d.delivered, w.url, w.active "
                                   "FROM webhook_deliveries d LEFT JOIN webhooks w ON w.id = d.webhook_id "
                                   "WHERE d.id = ?", (row_id,)).fetchone()
        if row is None or row[4] is not None:
            return  # cancelled meanwhile
        hook, event, payload, attempt, _, url, active = row
        if not active:
            with self._db_lock:
                self._db.execute("UPDATE webhook_deliveries SET delivered = -1, error = ?, at = ? WHERE id = ?",
                                 ("cancelled: webhook unregistered", float(self.clock()), row_id))
            return
        status, error = self._post(url, event, payload)
        done = status is not None and 200 <= status < 300
        now = float(self.clock())
        retry = not done and attempt <= len(self.retries)
        with self._db_lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("UPDATE webhook_deliveries SET status = ?, error = ?, at = ?, delivered = ? WHERE id = ?",
                                 (status, None if done else error, now, 1 if done else (0 if retry else -1), row_id))
                if retry:
                    due = now + self.retries[attempt - 1]
                    cur = self._db.execute("INSERT INTO webhook_deliveries (webhook_id, event, payload, attempt, at) "
                                           "VALUES (?, ?, ?, ?, ?)", (hook, event, payload, attempt + 1, due))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if retry:
            self._push([(due, int(cur.lastrowid))])

    def _post(self, url: str, event: str, payload: str) -> tuple[int | None, str | None]:
        """One HTTP attempt: (status or None, error or None)."""
        body = payload.encode("utf-8")
        ts = int(self.clock())
        delivery_id = json.loads(payload)["deliveryId"]
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "arena-webhooks/1",
            "X-Arena-Event": event, "X-Arena-Delivery": delivery_id, "X-Arena-Timestamp": str(ts),
            "X-Arena-Signature": sign(self._secret, ts, body)})
        try:
            with self._opener.open(req, timeout=self.timeout_s) as resp:
                resp.read(MAX_RESPONSE_BYTES)
                status = int(resp.status)
                return status, None if 200 <= status < 300 else f"HTTP {status}"
        except urllib.error.HTTPError as exc:
            exc.close()
            return int(exc.code), f"HTTP {exc.code}"
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                return None, f"timed out after {self.timeout_s:g} s"
            return None, _short(f"{type(exc.reason).__name__}: {exc.reason}")
        except TimeoutError:
            return None, f"timed out after {self.timeout_s:g} s"
        except OSError as exc:  # reset connections, bad status lines, ...
            return None, _short(f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # http.client.HTTPException and kin
            return None, _short(f"{type(exc).__name__}: {exc}")


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS - 3] + "..."
