"""The economy's own event log, in the replay schema: what happened in an episode, for replay and
off-policy evaluation of the arena's own runs.

Attach an :class:`EventRecorder` to an env (``EconomyEnv(..., recorder=EventRecorder())`` or
``env.recorder = ...``) and every episode is recorded; :meth:`EventRecorder.table` returns the
events as a pyarrow table in :mod:`arena_env.replay.schema`'s canonical columns (plus attributes),
:meth:`EventRecorder.write` writes them as Parquet, and :func:`manifest` is the manifest that reads
them (``arena_env.replay.log.load_log(path, manifest(env.scenario))``).

Cases: one per (episode, variant), ``case_id = "<prefix><episode seed>/<variant name>"`` (``control``,
``variant_0``, ...).  Events, all timestamped on the experiment's clock (day ``d`` starts at
``START + d days``; events of a day are stamped at its end):

* ``entity.created`` at reset, with the variant's config (``payload``, JSON).
* ``decision.executed`` at every step for every agent: ``action`` is the discrete action's name
  (``hold`` or the preset's name) with ``action_mode="discrete"``, else ``hold`` or ``update``;
  ``propensity`` is the probability with which the agent chose it when the caller says so
  (:meth:`EventRecorder.propose`, before ``env.step``), else missing; attributes ``accepted`` (the
  guardrails' verdict: 1, 0, or missing for a hold) and ``step``; ``payload`` holds the decision record
  (applied config, clamped deltas, rejection reason).
* ``interaction.occurred`` per variant per day (``actor_type: system``, ``channel: day``), attributes
  ``day``, ``enrolled``, ``active``, ``scans``, ``feedback``, ``xp``, ``missions_done``,
  ``missions_failed``, ``churned_today`` and ``reward`` (the day's reward of the variant's agent: its
  money lift over the control per enrolled user; 0 for the control).
* with ``detail="users"`` also, per user and day: ``interaction.occurred`` for an active user
  (``actor_type: user``, ``actor_id`` and an object reference ``(user, <id>, actor)``, the id
  ``<prefix><episode seed>/u<index>`` unique over episodes), attributes
  ``xp`` (claimed that day), ``streak`` and ``cum_xp``; and ``state.changed`` to ``churned`` when
  the user churns.  (This is large: about one event per active user-day.)
* ``outcome.recorded`` at the episode's end, label ``episode_end``, attribute ``value``: the agent's
  episode return (the sum of its rewards; 0 for the control).

Nothing here changes the simulation: an env with a recorder gives bit-identical rollouts (tested).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import layout as L

START_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z: day 0 of every recorded experiment
DAY_US = 86_400_000_000
DAILY = ("day", "enrolled", "active", "scans", "feedback", "xp", "missions_done", "missions_failed",
         "churned_today", "reward")


class EventRecorder:
    """Collects the events of the episodes of the env it is attached to (see the module docstring).

    Args:
        detail: ``"variants"`` (per variant and day) or ``"users"`` (also per user and day).
        prefix: starts every case id, e.g. to tell apart episodes that share a seed.
    """

    def __init__(self, detail: str = "variants", prefix: str = ""):
        if detail not in ("variants", "users"):
            raise ValueError(f"detail={detail!r}: expected 'variants' or 'users'")
        self.detail = detail
        self.prefix = prefix  # starts every case id (set it between episodes that share a seed)
        self._rows: list[dict[str, Any]] = []  # column chunks
        self._proposed: dict[str, float] = {}
        self._prev: np.ndarray | None = None
        self._returns: np.ndarray | None = None
        self._cases: list[str] = []
        self._seed = 0
        self._n_events = 0

    # ------------------------------------------------------------------ hooks the env calls
    def propose(self, propensities: Mapping[str, float]) -> None:
        """The logging policy's probability of the action each agent is about to take (call before ``step``)."""
        for a, p in propensities.items():
            p = float(p)
            if not 0.0 < p <= 1.0:
                raise ValueError(f"propose(): the propensity of agent {a!r} is {p!r}, outside (0, 1]")
            self._proposed[a] = p

    def on_reset(self, env) -> None:
        sc = env.scenario
        self._seed = int(env.episode_seed)
        names = ["control", *env.possible_agents]
        self._cases = [f"{self.prefix}{self._seed}/{n}" for n in names]
        self._returns = np.zeros(sc.n_variants)
        self._prev = env.users.copy()
        from agents.protocol import PARAM_NAMES

        cfg = [json.dumps({k: int(x) for k, x in zip(PARAM_NAMES, env.config[v])}) for v in range(sc.n_variants)]
        self._add(case=self._cases, t=np.full(sc.n_variants, START_US), type="entity.created",
                  actor_type="system", payload=cfg)

    def on_decisions(self, env, actions: Mapping[str, Any], records: list[dict]) -> None:
        by_variant = {r["variant"]: r for r in records}
        agents = list(env.agents)
        t = START_US + env.day * DAY_US
        names, props, accepted, payload, cases = [], [], [], [], []
        for a in agents:
            v = env._agent_variant[a]
            rec = by_variant.get(v)
            names.append(self._action_name(env, actions.get(a), rec))
            props.append(self._proposed.pop(a, np.nan))
            accepted.append(np.nan if rec is None else float(bool(rec["accepted"])))
            payload.append(None if rec is None else json.dumps(rec, default=str, sort_keys=True))
            cases.append(self._cases[v])
        self._proposed.clear()
        n = len(agents)
        self._add(case=cases, t=np.full(n, t), type="decision.executed", actor_type="agent", actor_id=agents,
                  action=names, propensity=np.asarray(props, dtype=np.float64), payload=payload,
                  accepted=np.asarray(accepted), step=np.full(n, float(env.day)))

    def on_day(self, env, day: int, reward: np.ndarray) -> None:
        from .metrics import xp_total

        sc = env.scenario
        V = sc.n_variants
        today = env._today_i
        self._returns += reward
        end = START_US + (day + 1) * DAY_US  # the day's events are stamped just before its end, in this order
        if self.detail == "users":
            u, prev = env.users, self._prev
            idx = np.flatnonzero((u["act7"] & 1) != 0)  # bit 0 of the activity mask: active today
            who = self._users(idx)
            self._add(case=np.asarray(self._cases, dtype=object)[u["variant"][idx]], t=np.full(len(idx), end - 3),
                      type="interaction.occurred", actor_type="user", actor_id=who, channel="app",
                      xp=u["xp_today"][idx].astype(float), streak=u["streak"][idx].astype(float),
                      cum_xp=u["cum_xp"][idx].astype(float), refs=who)
            churned = ((u["flags"] & L.FLAG_CHURNED) != 0) & ((prev["flags"] & L.FLAG_CHURNED) == 0)
            idx = np.flatnonzero(churned)
            who = self._users(idx)
            self._add(case=np.asarray(self._cases, dtype=object)[u["variant"][idx]], t=np.full(len(idx), end - 2),
                      type="state.changed", actor_type="user", actor_id=who, state_after="churned", refs=who)
            self._prev = u.copy()
        self._add(case=self._cases, t=np.full(V, end - 1), type="interaction.occurred", actor_type="system",
                  channel="day", day=np.full(V, float(day)), enrolled=today[:, L.A_ENROLLED].astype(float),
                  active=today[:, L.A_ACTIVE].astype(float), scans=today[:, L.A_SCANS].astype(float),
                  feedback=today[:, L.A_FEEDBACK].astype(float), xp=np.asarray(xp_total(today), dtype=float),
                  missions_done=today[:, L.A_M_DONE].astype(float),
                  missions_failed=today[:, L.A_M_FAILED].astype(float),
                  churned_today=today[:, L.A_CHURNED_TODAY].astype(float), reward=np.asarray(reward, dtype=float))

    def _users(self, idx: np.ndarray) -> np.ndarray:
        """Object ids of users ``idx`` of this episode: ``<prefix><episode seed>/u<index>``."""
        return np.asarray([f"{self.prefix}{self._seed}/u{i}" for i in idx], dtype=object)

    def on_end(self, env) -> None:
        V = env.scenario.n_variants
        t = np.full(V, START_US + env.day * DAY_US)
        self._add(case=self._cases, t=t, type="outcome.recorded", actor_type="system", outcome="episode_end",
                  value=self._returns.copy())

    # ------------------------------------------------------------------ output
    @staticmethod
    def _action_name(env, action, rec) -> str:
        if env.action_mode == "discrete":
            k = 0 if action is None else int(np.asarray(action).reshape(-1)[0])
            return "hold" if k == 0 else env.scenario.presets[k - 1].name
        return "hold" if rec is None else "update"

    def _add(self, *, case, t, type, refs=None, **cols) -> None:
        n = len(t)
        if n == 0:
            return
        chunk = {"case_id": np.asarray(case, dtype=object), "timestamp": np.asarray(t, dtype=np.int64),
                 "event_type": type, "refs": refs, "n": n, **cols}
        self._rows.append(chunk)
        self._n_events += n

    def __len__(self) -> int:
        return self._n_events

    def clear(self) -> None:
        """Forget the events recorded so far."""
        self._rows.clear()
        self._n_events = 0

    def table(self):
        """The recorded events as a pyarrow table (canonical columns, then the attributes)."""
        import pyarrow as pa

        from arena_env.replay.schema import CANONICAL, object_ref_type

        n = self._n_events
        strings = ("actor_type", "actor_id", "channel", "state_after", "outcome", "action", "payload")
        numbers = ("propensity", "accepted", "step", *DAILY, "streak", "cum_xp", "value")
        cols: dict[str, Any] = {}

        def gather(name, fill, dtype):
            parts = []
            for ch in self._rows:
                v = ch.get(name)
                if v is None:
                    parts.append(np.full(ch["n"], fill, dtype=dtype))
                elif np.ndim(v) == 0:
                    parts.append(np.full(ch["n"], v, dtype=dtype))
                else:
                    parts.append(np.asarray(v, dtype=dtype))
            return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

        cols["case_id"] = pa.array(gather("case_id", None, object).tolist(), pa.string())
        cols["event_id"] = pa.array([f"e{i}" for i in range(n)], pa.string())
        cols["timestamp"] = pa.array(gather("timestamp", 0, np.int64), pa.timestamp("us", tz="UTC"))
        cols["seq"] = pa.array(np.arange(n, dtype=np.int64))
        cols["event_type"] = pa.array(gather("event_type", None, object).tolist(), pa.string())
        for s in strings:
            cols[s] = pa.array(gather(s, None, object).tolist(), pa.string())
        for f in numbers:
            v = gather(f, np.nan, np.float64)
            cols[f] = pa.array(v, pa.float64(), mask=np.isnan(v))
        # object references: one (user, <user id>, actor) per user event, none otherwise
        has = np.concatenate([np.full(ch["n"], ch["refs"] is not None) for ch in self._rows]) if self._rows \
            else np.zeros(0, bool)
        offsets = np.concatenate([[0], np.cumsum(has)]).astype(np.int32)
        ids = [x for ch in self._rows if ch["refs"] is not None for x in ch["refs"]]
        structs = pa.StructArray.from_arrays(
            [pa.array(["user"] * len(ids), pa.string()), pa.array(ids, pa.string()),
             pa.array(["actor"] * len(ids), pa.string())], ["object_type", "object_id", "role"])
        cols["object_refs"] = pa.ListArray.from_arrays(pa.array(offsets), structs).cast(object_ref_type())
        for c in CANONICAL:
            if c not in cols:
                cols[c] = pa.nulls(n, pa.string())
        order = [*CANONICAL, *[c for c in numbers if c != "propensity"]]
        return pa.table({c: cols[c] for c in order})

    def write(self, path) -> None:
        """Write the recorded events as Parquet."""
        import pyarrow.parquet as pq

        pq.write_table(self.table(), str(path))


def manifest(scenario, action_mode: str = "discrete") -> dict:
    """The replay manifest of a recorded log of ``scenario``: one decision point per agent decision, the
    actions (``hold`` and the presets, or ``hold``/``update``), the episode return as the outcome value."""
    actions = ["hold", *[p.name for p in scenario.presets]] if action_mode == "discrete" else ["hold", "update"]
    return {
        "name": f"economy_{scenario.name}", "version": "1",
        "features": list(DAILY) + ["accepted", "step"],
        "labels": ["streak", "cum_xp", "value"],
        "decision_points": [{"name": "config", "trigger": "decision.executed"}],
        "allowed_actions": actions,
        "outcomes": {"neutral": ["episode_end"], "value_field": "value"},
    }
