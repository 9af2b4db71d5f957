"""The server's durable state: one SQLite database (WAL mode) per experiment.

Tables:

* ``meta(key, value)``: the experiment's identity and settings (id, scenario, seed, clock settings,
  the wall time of minute 0), JSON values;
* ``tokens(variant, token_hash, revoked)``: one bearer token per variant and the admin token (variant
  -1), stored as SHA-256 hashes only (a token is shown once, at creation);
* ``journal(seq, kind, payload, at)``: every state change in order (``propose``, ``advance``,
  ``lifecycle``, ``reset_breaker``, ``revoke``, ``heartbeat``); the simulation is deterministic, so
  replaying the journal from the seed rebuilds it exactly (:meth:`Experiment.open
  <arena_env.server.experiment.Experiment.open>`);
* ``decisions(id, variant, minute, at, accepted, record, reasoning)``: the decision audit log.

Each change is one transaction, committed before the HTTP response is sent: after a crash (even
``kill -9``) no accepted decision is lost and the simulation resumes where it was.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (variant INTEGER PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE,
                                   revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
                                    payload TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (id TEXT PRIMARY KEY, variant INTEGER NOT NULL, minute REAL NOT NULL,
                                      at REAL NOT NULL, accepted INTEGER NOT NULL, record TEXT NOT NULL,
                                      reasoning TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS decisions_variant ON decisions (variant, at);
CREATE INDEX IF NOT EXISTS decisions_by_variant ON decisions (variant);
"""
# decisions_by_variant: an index's entries end with the rowid, so (variant) walks a variant's decisions in rowid
# order -- a page of ``decisions`` newest first is read off the index instead of sorting all of them.


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Store:
    """The experiment's SQLite database; every method is one transaction and thread-safe."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a committed decision survives a power cut, not only kill -9
        self._db.executescript(SCHEMA)
        self._counts: dict[int, int] | None = None  # decisions per variant, counted once, then kept up to date

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ meta and tokens
    def get_meta(self) -> dict[str, Any]:
        with self._lock:
            return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    def init(self, meta: dict[str, Any], tokens: dict[int, str]) -> None:
        """Store a new experiment's settings and token hashes (fails if the database has one)."""
        with self._lock:
            if self._db.execute("SELECT COUNT(*) FROM meta").fetchone()[0]:
                raise FileExistsError(f"{self.path} already holds an experiment; open it or use another file")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
                self._db.executemany("INSERT INTO tokens (variant, token_hash) VALUES (?, ?)",
                                     [(v, token_hash(t)) for v, t in tokens.items()])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def variant_of(self, token: str) -> tuple[int | None, bool]:
        """``(variant, revoked)`` of a token (-1: the admin token); ``(None, False)`` for an unknown one.
        The lookup is by hash, so timing does not depend on how much of a guess is right."""
        with self._lock:
            row = self._db.execute("SELECT variant, revoked FROM tokens WHERE token_hash = ?",
                                   (token_hash(token),)).fetchone()
        return (None, False) if row is None else (int(row[0]), bool(row[1]))

    # ------------------------------------------------------------------ journal and decisions
    def append(self, kind: str, payload: dict, decision: dict | None = None, reasoning: str = "") -> int:
        """Append a journal entry (and its decision record) in one transaction; returns its sequence number."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute("INSERT INTO journal (kind, payload, at) VALUES (?, ?, ?)",
                                       (kind, json.dumps(payload, sort_keys=True), now))
                if kind == "revoke":
                    self._db.execute("UPDATE tokens SET revoked = 1 WHERE variant = ?", (payload["variant"],))
                if decision is not None:
                    self._db.execute("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?)",
                                     (decision["decisionLogId"], decision["variant"], decision["minute"], now,
                                      int(bool(decision["accepted"])), json.dumps(decision, sort_keys=True),
                                      reasoning))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if decision is not None and self._counts is not None:
                v = int(decision["variant"])
                self._counts[v] = self._counts.get(v, 0) + 1
        return int(cur.lastrowid)

    def journal(self) -> list[tuple[str, dict]]:
        with self._lock:
            return [(k, json.loads(p)) for k, p in self._db.execute("SELECT kind, payload FROM journal ORDER BY seq")]

    def decisions(self, variant: int, offset: int, limit: int) -> tuple[list[dict], int]:
        """A page of ``variant``'s decisions, newest first, and their total."""
        with self._lock:
            total = self.decision_count(variant)
            rows = self._db.execute(
                "SELECT record, reasoning, at FROM decisions WHERE variant = ? ORDER BY rowid DESC "
                "LIMIT ? OFFSET ?", (variant, limit, offset)).fetchall()
        return [{**json.loads(r), "reasoning": reason, "at": at} for r, reason, at in rows], int(total)

    def decision_count(self, variant: int) -> int:
        with self._lock:  # this process is the database's only writer: the counts stay exact
            if self._counts is None:
                self._counts = {int(v): int(n) for v, n in
                                self._db.execute("SELECT variant, COUNT(*) FROM decisions GROUP BY variant")}
            return self._counts.get(int(variant), 0)
