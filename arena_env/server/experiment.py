"""One experiment of the economy simulator, driven over the TendedLoop Arena protocol.

An :class:`Experiment` owns an :class:`~arena_env.economy.env.EconomyEnv` (one variant per protocol
variant: variant 0 is the control, 1.. the treatments), its tokens, its clock and its durable
:class:`~arena_env.server.store.Store`.  Proposals go through the env's own guardrails
(:meth:`EconomyEnv.propose <arena_env.economy.env.EconomyEnv.propose>`), never a copy of them.

**Clock.**  Simulated time is a minute count on the guardrails' clock (1440 minutes per simulated
day).  With ``seconds_per_day`` it follows wall time (``minute = (now - start) / seconds_per_day *
1440``, caught up on every request); with ``manual_clock`` it moves only by :meth:`advance` (the
admin endpoint).  Crossing a day boundary simulates that day with the configs in force.

**Durability.**  Every change is journaled before it is acknowledged (:mod:`.store`); the simulation
is deterministic given the seed, so :meth:`open` rebuilds the experiment exactly by replaying the
journal, and checks that the replayed decisions are the ones on record.

**Tokens.**  One random bearer token per variant (the control's included) and an admin token, from
:mod:`secrets`; only their SHA-256 hashes are stored, and they are shown once, when the experiment is
created.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from arena_env.economy.env import MINUTES_PER_DAY, EconomyEnv
from arena_env.economy.guardrails import TRANSITIONS
from arena_env.economy.params import PARAM_NAMES, to_dict

from .store import Store

STATUS_ACTIVE = ("RECRUITING", "RUNNING")
LIFECYCLE_ACTIONS = ("pause", "resume", "complete")  # the researcher lifecycle actions the server offers


class AuthError(Exception):
    """A missing, unknown or revoked token (HTTP 401)."""


class Forbidden(Exception):
    """The token may not do this now: the experiment is paused or completed, or it is not the admin (HTTP 403)."""


@dataclass(frozen=True)
class Caller:
    variant: int  # -1: the admin


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Experiment:
    """See the module docstring.  Build with :meth:`create` or :meth:`open`; all methods are thread-safe."""

    def __init__(self, store: Store, meta: dict[str, Any], clock=time.time):
        self.store, self.meta, self.clock = store, meta, clock
        self.lock = threading.RLock()
        self.env = EconomyEnv(meta["scenario"], info_level="full", **meta.get("overrides", {}))
        self.env.reset(seed=int(meta["seed"]))
        self.minute = 0.0
        self.names = ["control", *[f"treatment-{k}" for k in range(1, self.env.scenario.n_variants)]]
        self.ids = [f"var_{meta['experiment_id'][:8]}_{v}" for v in range(self.env.scenario.n_variants)]
        self.last_update: dict[int, float | None] = {v: None for v in range(len(self.ids))}
        self.heartbeats: dict[int, dict] = {}
        self.timeout_reported: set[int] = set()  # variants whose current silence was reported (heartbeat_timeout)
        self.listeners: list = []  # callables(event, variant, data): webhooks, the live page

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(cls, db: str | Path, scenario: str = "default", seed: int = 0, *, seconds_per_day: float | None = 60.0,
               manual_clock: bool = False, clock=time.time, **overrides) -> tuple[Experiment, dict[int, str]]:
        """A new experiment stored in ``db``; returns it and its tokens (variant -> token, -1 the admin)."""
        if not manual_clock and not (seconds_per_day and seconds_per_day > 0):
            raise ValueError(f"seconds_per_day must be > 0 (or use the manual clock), got {seconds_per_day!r}")
        store = Store(db)
        probe = EconomyEnv(scenario, info_level="light", **overrides)
        V = probe.scenario.n_variants
        tokens = {v: "tl_" + secrets.token_urlsafe(24) for v in range(V)}
        tokens[-1] = "adm_" + secrets.token_urlsafe(24)
        meta = {"experiment_id": uuid.UUID(int=secrets.randbits(128)).hex, "scenario": scenario, "seed": int(seed),
                "overrides": overrides, "manual_clock": bool(manual_clock),
                "seconds_per_day": None if manual_clock else float(seconds_per_day), "start": float(clock()),
                "name": probe.scenario.name}
        store.init(meta, tokens)
        return cls(store, meta, clock), tokens

    @classmethod
    def open(cls, db: str | Path, clock=time.time) -> Experiment:
        """The experiment stored in ``db``, rebuilt by replaying its journal."""
        if not Path(db).is_file():
            raise FileNotFoundError(f"{db}: no such experiment database")
        store = Store(db)
        meta = store.get_meta()
        if not meta:
            raise FileNotFoundError(f"{db}: the database holds no experiment")
        exp = cls(store, meta, clock)
        exp._replay(store.journal())
        return exp

    def _replay(self, journal) -> None:
        for kind, p in journal:
            if kind == "advance":
                self._advance_to(p["minute"])
            elif kind == "propose":
                rec = self.env.propose(p["variant"], p["overrides"], p["minute"])
                if rec["decisionLogId"] != p["decisionLogId"] or rec["accepted"] != p["accepted"]:
                    raise RuntimeError(f"{self.store.path}: replaying decision {p['decisionLogId']} gave "
                                       f"{rec['decisionLogId']} (accepted={rec['accepted']}): the database does not "
                                       "match this version of the simulator")
                if rec["accepted"]:
                    self.last_update[p["variant"]] = p["at"]
                self.minute = max(self.minute, float(p["minute"]))  # minutes within a day are not journaled
            elif kind == "lifecycle":
                getattr(self.env.guardrails, p["action"])()
            elif kind == "reset_breaker":
                self.env.guardrails.reset_breaker(p["variant"])
            elif kind == "heartbeat":
                self.heartbeats[p["variant"]] = p
                self.timeout_reported.discard(p["variant"])
            elif kind == "heartbeat_timeout":
                self.timeout_reported.add(p["variant"])

    # ------------------------------------------------------------------ auth
    def authenticate(self, authorization: str | None) -> Caller:
        if not authorization or not authorization.startswith("Bearer "):
            raise AuthError("missing bearer token: send 'Authorization: Bearer <strategy token>'")
        variant, revoked = self.store.variant_of(authorization[len("Bearer "):].strip())
        if variant is None:
            raise AuthError("unknown token")
        if revoked:
            raise AuthError("this token was revoked")
        return Caller(variant)

    # ------------------------------------------------------------------ clock
    @property
    def status(self) -> str:
        """The guardrails' status.  Reaching ``maxDays`` does not change it (the episode is truncated, not
        completed: ``finished`` says it, and clients tell a horizon from a researcher's ``complete``)."""
        return self.env.guardrails.status

    @property
    def finished(self) -> bool:
        return not self.env.agents

    def _over(self) -> str:
        if self.env.day >= self.env.scenario.max_days:
            return f"the experiment is over (it ran its {self.env.scenario.max_days} days)"
        return f"the experiment is over (completed on day {self.env.day})"

    def _refuse_if_closed(self, what: str) -> None:
        """403 (``Forbidden``) while the experiment is paused, completed or archived, or over."""
        if self.status in ("PAUSED", "COMPLETED", "ARCHIVED"):
            raise Forbidden(f"the experiment is {self.status}: no {what}")
        if self.finished:
            raise Forbidden(f"{self._over()}: no {what}")

    def sync(self) -> None:
        """Catch the simulation up with wall time (the manual clock: only the heartbeat check)."""
        self.check_heartbeats()
        if self.meta["manual_clock"]:
            return
        with self.lock:
            target = (self.clock() - self.meta["start"]) / self.meta["seconds_per_day"] * MINUTES_PER_DAY
            if target > self.minute + 1e-9 and not self.finished:
                if target < (self.env.day + 1) * MINUTES_PER_DAY:
                    # within the current day nothing is simulated, so nothing is journaled (a proposal journals
                    # its own minute); after a restart the wall clock puts the minute back.  Journaling every
                    # request's minute cost a synced commit per request, under the lock.
                    self.minute = target
                else:
                    self._advance_journaled(target)

    def advance(self, minutes: float) -> dict:
        """Move the simulated clock forward by ``minutes`` (the manual clock; the admin endpoint); past the
        experiment's end (``inf`` included) it stops at the end."""
        if not (isinstance(minutes, (int, float)) and not isinstance(minutes, bool) and minutes > 0):
            raise ValueError(f"minutes must be a positive number, got {minutes!r}")
        with self.lock:
            if self.finished:
                raise Forbidden(f"{self._over()}: nothing left to simulate")
            self._advance_journaled(self.minute + float(minutes))
            return self.clock_state()

    def _advance_journaled(self, target: float) -> None:
        end = self.env.scenario.max_days * MINUTES_PER_DAY
        target = min(target, end)
        self.store.append("advance", {"minute": target})
        before = self.env.day
        self._advance_to(target)
        for day in range(before, self.env.day):
            self._emit("day_simulated", None, {"day": day + 1})

    def _advance_to(self, target: float) -> None:
        while not self.finished and target >= (self.env.day + 1) * MINUTES_PER_DAY:
            breakers = self.env.guardrails.breaker_open.copy()
            self.env.step({a: np.zeros(10, np.float32) for a in self.env.agents})
            tripped = np.flatnonzero(self.env.guardrails.breaker_open & ~breakers)
            for v in tripped:
                self._emit("circuit_breaker_triggered", int(v), {"variantId": self.ids[int(v)],
                                                                   "reason": "retention cliff"})
        self.minute = max(self.minute, min(target, self.env.scenario.max_days * MINUTES_PER_DAY))

    def warm_up(self) -> None:
        """Compile the simulator before the first request (on a fresh checkout Numba compiles its kernels on
        first use, over 10 s, which a client's first ``advance`` would wait for): one day of a copy of the
        env; the experiment itself is untouched."""
        import copy

        with self.lock:
            if self.finished:
                return
            twin = copy.deepcopy(self.env)
        twin.step({a: np.zeros(10, np.float32) for a in twin.agents})

    def clock_state(self) -> dict:
        with self.lock:  # not halfway through an advance (the day moved, the minute not yet)
            return {"minute": self.minute, "day": int(self.env.day), "status": self.status,
                    "maxDays": int(self.env.scenario.max_days), "finished": self.finished}

    # ------------------------------------------------------------------ the protocol
    def variant(self, v: int) -> dict:
        g = self.env.guardrails.config
        return {"variantId": self.ids[v], "variantName": self.names[v], "experimentId": self.meta["experiment_id"],
                "experimentName": self.meta["name"], "experimentStatus": self.status, "mode": "AGENT",
                "isControl": v == 0, "currentConfig": to_dict(self.env.config[v]),
                "lastConfigUpdate": None if self.last_update[v] is None else iso(self.last_update[v]),
                "updateIntervalMin": int(g.update_interval_min), "deltaLimitPct": float(g.delta_limit_pct)}

    def signals(self, v: int) -> dict:
        return self.env.signals(v)

    def propose(self, v: int, overrides: Mapping[str, float], reasoning: str = "") -> dict:
        """A config update of variant ``v`` through the guardrails, journaled; the protocol's response."""
        with self.lock:
            self._refuse_if_closed("config changes")
            bad = [k for k in overrides if k not in PARAM_NAMES]
            if bad:
                raise ValueError(f"economyOverrides: unknown parameter {bad[0]!r}; the parameters are "
                                 f"{', '.join(PARAM_NAMES)}")
            now = self.clock()
            rec = self.env.propose(v, dict(overrides), self.minute)
            if rec is None:  # a hold (every value rounds to the current one): no decision, no rate limit
                return {"accepted": True, "decisionLogId": None, "appliedConfig": {}, "nextAllowedUpdate": None}
            self.store.append("propose", {"variant": v, "overrides": dict(overrides), "minute": self.minute,
                                          "decisionLogId": rec["decisionLogId"], "accepted": rec["accepted"],
                                          "at": now}, decision=rec, reasoning=reasoning)
            if rec["accepted"]:
                self.last_update[v] = now
                self._emit("config_updated", v, {"variantId": self.ids[v], "appliedConfig": rec["appliedConfig"],
                                                 "decisionLogId": rec["decisionLogId"]})
                if rec.get("anomaly"):
                    self._emit("anomaly_detected", v, {"variantId": self.ids[v], "decisionLogId": rec["decisionLogId"]})
            return self._response(rec)

    def _response(self, rec: dict) -> dict:
        nxt = rec.get("nextAllowedUpdate")
        out = {"accepted": bool(rec["accepted"]), "decisionLogId": rec["decisionLogId"],
               "nextAllowedUpdate": None if nxt is None else self._minute_iso(nxt)}
        if rec["accepted"]:
            out["appliedConfig"] = rec["appliedConfig"]
            if rec["clampedDeltas"]:
                out["clampedDeltas"] = {k: {**d, "baseline": int(self.env.tenant_vector[PARAM_NAMES.index(k)]),
                                            "maxDelta": float(self.env.guardrails.config.delta_limit_pct)}
                                        for k, d in rec["clampedDeltas"].items()}
        else:
            out["rejectionReason"] = rec["rejectionReason"]
        return out

    def _minute_iso(self, minute: float) -> str:
        """A guardrail-clock minute as the wall time it corresponds to (the manual clock: minute 0 = start)."""
        spd = self.meta["seconds_per_day"] or 86_400.0
        return iso(self.meta["start"] + minute / MINUTES_PER_DAY * spd)

    def heartbeat(self, v: int, poll: float | None, metadata: Mapping | None) -> dict:
        with self.lock:
            self._refuse_if_closed("heartbeats")
            beat = {"variant": v, "at": self.clock(), "poll": poll, "metadata": dict(metadata or {})}
            self.store.append("heartbeat", beat)
            self.heartbeats[v] = beat
            self.timeout_reported.discard(v)
            return {}

    def timed_out(self, v: int) -> bool:
        """True when the variant's agent has not sent a heartbeat for 3 poll intervals (after a first one that
        gave ``requestedPollInterval``); wall time, whichever clock the simulation runs on."""
        b = self.heartbeats.get(v)
        return bool(b and b["poll"] and self.clock() - b["at"] > 3 * float(b["poll"]))

    def check_heartbeats(self) -> list[int]:
        """Emit ``heartbeat_timeout`` once per silence: for each variant that :meth:`timed_out` and was not yet
        reported since its last heartbeat.  Journaled, so a restart neither repeats nor loses a notice.  Called
        on every request and by the server's ticker (once a second); returns the variants reported now."""
        # list(dict) is one atomic step: request threads may add a heartbeat meanwhile
        due = [v for v in list(self.heartbeats) if self.timed_out(v) and v not in self.timeout_reported]
        if not due:
            return []
        with self.lock:
            due = [v for v in list(self.heartbeats) if self.timed_out(v) and v not in self.timeout_reported]
            for v in due:
                b = self.heartbeats[v]
                self.store.append("heartbeat_timeout", {"variant": v, "at": self.clock()})
                self.timeout_reported.add(v)
                self._emit("heartbeat_timeout", v, {"variantId": self.ids[v], "lastHeartbeat": iso(b["at"]),
                                                    "pollInterval": b["poll"], "timeoutSeconds": 3 * float(b["poll"])})
            return due

    def scoreboard(self) -> dict:
        out = []
        for v in range(len(self.ids)):
            s = self.env.signals(v)
            b = self.heartbeats.get(v)
            out.append({"variantId": self.ids[v], "variantName": self.names[v], "isControl": v == 0,
                        "currentConfig": to_dict(self.env.config[v]),
                        "lastConfigUpdate": None if self.last_update[v] is None else iso(self.last_update[v]),
                        "lastHeartbeat": None if b is None else iso(b["at"]), "metrics": s["metrics"],
                        "enrolledCount": s["enrolled"], "activeCount": s["activeToday"],
                        "totalDecisions": self.store.decision_count(v)})
        return {"variants": out}

    def decisions(self, v: int, page: int, page_size: int) -> dict:
        rows, total = self.store.decisions(v, (page - 1) * page_size, page_size)
        items = []
        for r in rows:
            item = {"id": r["decisionLogId"], "timestamp": iso(r["at"]), "accepted": bool(r["accepted"]),
                    "economyOverrides": r["economyOverrides"], "reasoning": r["reasoning"]}
            if r["accepted"]:
                item.update(appliedConfig=r["appliedConfig"], clampedDeltas=r["clampedDeltas"])
            else:
                item.update(rejectionReason=REJECTION_TEXT.get(r["rejectionReason"], r["rejectionReason"]),
                            rejectionCode=r["rejectionReason"])
            items.append(item)
        return {"decisions": items, "total": total, "page": page, "pageSize": page_size}

    # ------------------------------------------------------------------ researcher actions
    def lifecycle(self, action: str) -> dict:
        with self.lock:
            g = self.env.guardrails
            if action not in LIFECYCLE_ACTIONS:
                raise ValueError(f"unknown action {action!r}; the actions are {', '.join(LIFECYCLE_ACTIONS)}")
            if action not in TRANSITIONS[g.status]:  # the guardrails' own lifecycle table
                raise Forbidden(f"cannot {action} an experiment that is {g.status}")
            if self.finished and action != "complete":
                raise Forbidden(f"cannot {action}: {self._over()}; only complete is left")
            self.store.append("lifecycle", {"action": action})
            getattr(g, action)()
            return self.clock_state()

    def reset_breaker(self, v: int) -> dict:
        with self.lock:
            self.store.append("reset_breaker", {"variant": v})
            self.env.guardrails.reset_breaker(v)
            return {"variantId": self.ids[v], "breakerOpen": bool(self.env.guardrails.breaker_open[v])}

    def revoke(self, v: int) -> dict:
        with self.lock:
            self.store.append("revoke", {"variant": v})
            return {"variantId": self.ids[v], "revoked": True}

    def variant_index(self, variant_id: str) -> int:
        if variant_id not in self.ids:
            raise KeyError(f"unknown variant {variant_id!r}; the variants are {', '.join(self.ids)}")
        return self.ids.index(variant_id)

    # ------------------------------------------------------------------ events
    def _emit(self, event: str, variant: int | None, data: dict) -> None:
        for fn in list(self.listeners):
            try:
                fn(event, variant, data)
            except Exception:  # a listener never breaks the simulation
                pass


REJECTION_TEXT = {
    "CONTROL_VARIANT_IMMUTABLE": "the control variant's config cannot be changed",
    "EXPERIMENT_NOT_RUNNING": "the experiment is not running",
    "CIRCUIT_BREAKER_ACTIVE": "the circuit breaker of this variant is open",
    "RATE_LIMITED": "too soon after the last accepted update",
}
