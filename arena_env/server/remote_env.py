"""The economy arena over HTTP: a single-agent Gymnasium environment that plays one variant of an experiment on
any server speaking the TendedLoop Arena protocol (our sandbox, ``python -m arena_env serve``, or another), through
:class:`~arena_env.server.client.ArenaClient`.

``RemoteArenaEnv(api_url, token, admin_token=None, action_mode="continuous", scenario=None, ...)`` speaks for the
variant of ``token`` (a treatment: the control is immutable, so its token is refused at ``reset``).  Its
observation and action spaces are those of the local environment (:mod:`arena_env.economy.env`, same
documentation), so a policy trained there acts here unchanged, and the agents of :mod:`agents` act through
:meth:`RemoteArenaEnv.context` / :meth:`RemoteArenaEnv.action_for` or :func:`run_agent`, as they act locally
through :mod:`arena_env.wrappers.agents`.

One implementation of each rule
-------------------------------
The remote variant's state is laid out in the local environment's own attributes (:class:`_EnvView`: row 0 the
control, row 1 the variant) and the environment's own code runs on it: ``EconomyEnv._observations`` encodes the
observation, ``EconomyEnv._parse_actions`` turns an action into requests (validation, clipping, the continuous,
target, discrete and absolute mappings), and :func:`arena_env.wrappers.agents.context_for` /
:func:`~arena_env.wrappers.agents.action_for` build agents' contexts and actions.  The guardrails themselves run
on the server only.

Observation
-----------
``Box(OBS_LOW, OBS_HIGH, (70,), float32)``, the local layout.  What the protocol tells is encoded exactly as
locally; what it does not tell is replaced as follows (the only differences from the local observation):

=======  ==================================================================================================
index    remote value
=======  ==================================================================================================
0        enrolled / ``users_per_variant`` (default with ``scenario``: n_users / n_variants, an approximation of
         the variant's randomised share; without it: 1 once anyone is enrolled, else 0)
2        ``(enrolled - active7d) / enrolled``: users inactive for a week, a proxy for the churned share (the
         signals carry no churn count)
4        day / max_days, max_days from the admin clock (``maxDays``), else ``max_days`` or the scenario's; 0 when
         the horizon is unknown
63, 67   from this environment's own accepted updates (the guardrail clock minute of each, the day's start):
         updates made by others with the same token are not seen
64       1 after a ``CIRCUIT_BREAKER_ACTIVE`` rejection until the next accepted update (the protocol does not
         report the breaker otherwise)
65       the clamped share of this environment's last accepted update
66       always 0: the protocol reports anomalies only by webhook
=======  ==================================================================================================

Exact: 1, 3, 5-28 (the variant's metrics from ``/signals``), 29-52 (the control's metrics from the scoreboard),
53-62 (the configs; the tenant config is the control's current config, which the control lock keeps; the hard
bounds are the scenario's ``guardrails.bounds``, else ``bounds``, else ``params.ABSOLUTE_BOUNDS``), 68-69.

Action
------
As locally for ``action_mode`` (``continuous`` default, ``target``, ``discrete``, ``absolute``), with the local
env's parser (an invalid action raises ``ValueError`` before anything is sent; non-finite components hold and
``info["action_error"]`` says so; out-of-range components are clipped, ``info["action_clipped"]``).  The
touched parameters become ``economyOverrides``: each request rounded half away from zero (the guardrails round
the same way before clamping, so the outcome is the local one) and floored at 0 (the protocol refuses negative
values; locally a request below 0 from a parameter at 0 makes an accepted no-op update, here a hold).  A hold
(nothing touched, or every rounded request equal to the current value) sends nothing.  ``discrete`` needs
presets (``scenario`` or ``presets``: name -> overrides over the tenant config, resolved over the control's).

Step
----
``step(action)``: the proposal (``PUT /variant/config``; a 403 because the experiment is paused or over is
reported in ``info["error"]``, not raised), then the next decision point, by ``clock``:

* ``"manual"`` (the default with ``admin_token``): ``POST /api/admin/advance`` by ``days_per_step`` days of
  simulated time (our sandbox with ``--manual-clock``; with several agents on one such server give the admin
  token to one of them and ``clock="none"`` to the others);
* ``"wall"`` (the default without it): sleep ``poll_interval`` seconds, and longer until the
  ``nextAllowedUpdate`` of the answer (accepted or ``RATE_LIMITED``; ``wait_for_rate_limit``, at most one
  ``updateIntervalMin``), sending a heartbeat every ``poll_interval`` meanwhile;
* ``"none"``: no wait (someone else moves the clock: use it for a manual-clock server without the admin
  token, whose time only the admin moves);

then a heartbeat (``requestedPollInterval``: ``poll_interval`` rounded up to whole seconds, at least 1, as the
SDK sends it) and the new observation (``GET /variant``,
``/signals``, ``/scoreboard`` and, with the admin token, ``/api/admin/clock``).  ``reset`` does not restart
the remote experiment (no client can): it reads it and sends a heartbeat; an episode is the rest of the
experiment.  The spec is marked nondeterministic.

Reward
------
The TendedLoop composite lift over the control, on the signals' metric values (rolling means, ``value`` of
each metric)::

    score = sum_m weights[m] * (value_m(variant) - value_m(control))
            - xp_cost * (XP_VELOCITY(variant) - XP_VELOCITY(control))

with ``weights`` default ``env.DEFAULT_WEIGHTS`` (SCAN_FREQUENCY 0.4, RETENTION_RATE 3.5, FEEDBACK_QUALITY
2.5) and ``xp_cost`` default 0; a metric missing on either side counts 0.  ``reward_mode="lift"`` (default):
the reward of a step is ``score`` after it (a per-step advantage over the control, as the local reward is a
day's advantage over the control); ``"delta"``: the change of ``score`` since the previous observation (the
SDK's ArenaEnv rewards the change of one metric).  The local env's default reward, money per user over the
control, needs simulator state the protocol does not expose (its ``objective.kind: tendedloop`` is this
composite on the day's outcomes).

Episode end
-----------
``terminated`` when the experiment is COMPLETED or ARCHIVED; ``truncated`` when it reached its horizon
(``day >= max_days`` when known, the admin clock's ``finished``, or an advance refused because nothing is left
to simulate).  ``step`` after the end raises ``RuntimeError``; call ``reset``.

Info
----
``day``, ``minute`` (the admin clock's, else day x 1440), ``variantId``, ``status``, ``config``, ``signals``
(the payload), ``score``, ``decision`` (the server's answer to the proposal, None for a hold) and from it
``accepted``, ``rejectionReason``, ``clampedDeltas``, ``decisionLogId``, ``nextAllowedUpdate`` (None without
a proposal), ``overrides`` (what was sent), and ``error`` / ``action_error`` / ``action_clipped`` when they
apply.

Errors: a bad token raises :class:`~arena_env.server.client.ArenaAuthError`, an unreachable server
:class:`~arena_env.server.client.ArenaConnectionError`, both naming the URL and the fix (at ``reset``; the
constructor sends nothing).
"""

from __future__ import annotations

import calendar
import math
import time
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import gymnasium
import numpy as np
from gymnasium.envs.registration import EnvSpec

from agents.protocol import Agent, Context, Outcome, Update
from agents.rules import config_span, round_half_away
from arena_env.economy import backends
from arena_env.economy import layout as L
from arena_env.economy.env import (ACTION_MODES, DEFAULT_WEIGHTS, MINUTES_PER_DAY, OBS_DIM, OBS_HIGH, OBS_LOW,
                                   EconomyEnv)
from arena_env.economy.guardrails import ARCHIVED, COMPLETED, RUNNING, GuardrailConfig, Guardrails
from arena_env.economy.params import ABSOLUTE_BOUNDS, DEFAULTS, N_PARAMS, PARAM_NAMES, resolve, to_dict, to_vector
from arena_env.economy.scenario import METRIC_NAMES, load
from arena_env.wrappers.agents import action_for, context_for, decide

from .client import AdminClient, ArenaClient, ArenaForbidden

__all__ = ["RemoteArenaEnv", "run_agent"]

AGENT = "remote"
CLOCKS = ("auto", "manual", "wall", "none")
REWARD_MODES = ("lift", "delta")


class _EnvView:
    """The remote variant's state in :class:`EconomyEnv`'s attributes, two rows (0 the control, 1 the variant), so
    that the env's own encoders (bound below) run on it unchanged; see the module docstring for what is exact."""

    _observations = EconomyEnv._observations
    _metric_blocks = EconomyEnv._metric_blocks
    _config_block = EconomyEnv._config_block
    _wait_steps = EconomyEnv._wait_steps
    _parse_actions = EconomyEnv._parse_actions
    _unit_targets = EconomyEnv._unit_targets
    _variant_of = EconomyEnv._variant_of
    target_action = EconomyEnv.target_action

    def __init__(self, action_mode: str, backend: str, lo: np.ndarray, hi: np.ndarray, preset_names: list[str],
                 days_per_step: int, max_days: float):
        V = 2
        self.action_mode = action_mode
        self.kernels = backends.get(backend)
        self.scenario = SimpleNamespace(n_variants=V, max_days=max_days, days_per_step=days_per_step,
                                        presets=[SimpleNamespace(name=n) for n in preset_names])
        self.possible_agents = [AGENT]
        self.agents = [AGENT]
        self._agent_variant = {AGENT: 1}
        self.lo, self.hi = lo, hi
        self.guardrail_config = GuardrailConfig(lo=lo, hi=hi)
        self.guardrails = Guardrails(V, self.guardrail_config, status=RUNNING)
        self.preset_vectors = np.zeros((len(preset_names), N_PARAMS), np.int64)
        self.set_tenant(to_vector(DEFAULTS))
        self.config = np.tile(self.tenant_vector, (V, 1))
        self.day = 0
        self._today_i = np.zeros((V, L.N_AI), np.int64)
        self._variant_size = np.ones(V)
        self._total_scans = np.zeros(V, np.int64)
        self._mean = np.zeros((V, len(METRIC_NAMES)))
        self._var = np.full((V, len(METRIC_NAMES)), np.nan)
        self._n = np.zeros((V, len(METRIC_NAMES)), np.int64)
        self._last_clamp_share = np.zeros(V)
        self._signals: dict[int, dict] = {0: {"metrics": {}}, 1: {}}
        self._cfg_block_key = None

    def set_tenant(self, tenant: np.ndarray) -> None:
        """The tenant config and the observation's config scale over it (as ``EconomyEnv.__init__`` sets them)."""
        self.tenant_vector = np.asarray(tenant, np.int64)
        self._obs_cfg_log_tenant = np.log1p(self.tenant_vector.astype(np.float64))
        self._obs_cfg_span = np.array([config_span(float(t), float(a), float(b))
                                       for t, a, b in zip(self.tenant_vector, self.lo, self.hi)])

    def set_guardrails(self, update_interval_min: int, delta_limit_pct: float) -> None:
        g = self.guardrail_config
        if (g.update_interval_min, g.delta_limit_pct) != (update_interval_min, delta_limit_pct):
            self.guardrail_config = GuardrailConfig(update_interval_min=update_interval_min,
                                                    delta_limit_pct=delta_limit_pct, lo=self.lo, hi=self.hi)
            self.guardrails.config = self.guardrail_config

    def set_metrics(self, row: int, metrics: Mapping[str, Any]) -> None:
        for m, name in enumerate(METRIC_NAMES):
            d = metrics.get(name) or {}
            sd = d.get("stdDev")
            self._mean[row, m] = float(d.get("value") or 0.0)
            self._var[row, m] = float(sd) ** 2 if isinstance(sd, (int, float)) and math.isfinite(sd) else np.nan
            self._n[row, m] = int(d.get("sampleSize") or 0)

    def signals(self, v: int) -> dict:
        """The signals payload of row ``v`` (the control's holds only its ``metrics``), as ``EconomyEnv.signals``."""
        return self._signals[v]


def _vector(config: Mapping[str, Any] | None) -> np.ndarray:
    """A protocol ``currentConfig`` as a config vector: its known parameters over the global defaults (a server's
    extra keys are ignored; values are rounded half away from zero, as the guardrails round)."""
    cfg = config or {}
    return to_vector(resolve({k: int(round_half_away(float(cfg[k]))) for k in PARAM_NAMES if k in cfg}))


def _epoch(iso: str | None) -> float | None:
    """A protocol timestamp (``YYYY-MM-DDTHH:MM:SSZ``) as unix seconds, or None."""
    if not iso:
        return None
    try:
        return float(calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")))
    except (TypeError, ValueError):
        return None


class RemoteArenaEnv(gymnasium.Env):
    """One variant of a remote experiment as a Gymnasium environment (see the module docstring).

    Arguments: ``api_url``, ``token`` (the variant's strategy token), ``admin_token`` (optional: drives the manual
    clock and reads the horizon), ``action_mode``, ``scenario`` (a scenario name or path of the server's
    experiment, optional: presets, hard bounds, ``max_days``, ``days_per_step``, population), ``presets`` (name ->
    overrides), ``bounds`` (name -> (lo, hi)), ``max_days``, ``days_per_step`` (days per step, default the
    scenario's or 1), ``users_per_variant``, ``clock`` (``"auto"``, ``"manual"``, ``"wall"``, ``"none"``),
    ``poll_interval`` (seconds, default 60), ``wait_for_rate_limit`` (default True), ``reward_mode``
    (``"lift"`` | ``"delta"``), ``weights``, ``xp_cost``, ``reasoning`` (the decision log's text),
    ``backend`` (of the action parser), ``render_mode`` (``"ansi"``), ``timeout``, ``retries``, ``backoff``
    (the clients'), ``allow_http``.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(self, api_url: str, token: str, *, admin_token: str | None = None, action_mode: str = "continuous",
                 scenario: str | None = None, presets: Mapping[str, Mapping[str, int]] | None = None,
                 bounds: Mapping[str, tuple[int, int]] | None = None, max_days: int | None = None,
                 days_per_step: int | None = None, users_per_variant: float | None = None, clock: str = "auto",
                 poll_interval: float = 60.0, wait_for_rate_limit: bool = True, reward_mode: str = "lift",
                 weights: Mapping[str, float] | None = None, xp_cost: float = 0.0,
                 reasoning: str = "RemoteArenaEnv step", backend: str = "numba", render_mode: str | None = None,
                 timeout: float = 10.0, retries: int = 2, backoff: float = 1.0, allow_http: bool = False):
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode={action_mode!r}: expected one of {', '.join(ACTION_MODES)}")
        if clock not in CLOCKS:
            raise ValueError(f"clock={clock!r}: expected one of {', '.join(CLOCKS)}")
        if clock == "manual" and admin_token is None:
            raise ValueError("clock='manual' moves time through the admin endpoint: pass admin_token (the manifest's "
                             "adminToken), or use clock='wall'")
        if reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode={reward_mode!r}: expected one of {', '.join(REWARD_MODES)}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r}: expected None or one of {self.metadata['render_modes']}")
        if not (isinstance(poll_interval, (int, float)) and poll_interval > 0):
            raise ValueError(f"poll_interval: expected seconds > 0, got {poll_interval!r}")
        sc = load(scenario) if scenario is not None else None
        kw = dict(timeout=timeout, retries=retries, backoff=backoff, allow_http=allow_http)
        self.client = ArenaClient(api_url, token, **kw)
        self.admin = AdminClient(api_url, admin_token, **kw) if admin_token is not None else None
        self.clock = ("manual" if self.admin is not None else "wall") if clock == "auto" else clock

        lo = np.array([ABSOLUTE_BOUNDS[k][0] for k in PARAM_NAMES], np.int64)
        hi = np.array([ABSOLUTE_BOUNDS[k][1] for k in PARAM_NAMES], np.int64)
        for k, (a, b) in {**((sc.guardrails.bounds or {}) if sc else {}), **(bounds or {})}.items():
            if k not in PARAM_NAMES:
                raise ValueError(f"bounds: unknown parameter {k!r}; the parameters are {', '.join(PARAM_NAMES)}")
            lo[PARAM_NAMES.index(k)], hi[PARAM_NAMES.index(k)] = int(a), int(b)
        if presets is not None:
            self._presets = {str(n): dict(o) for n, o in presets.items()}
            self._preset_base = None  # resolved over the control's config at reset
        elif sc is not None:
            self._presets = {p.name: dict(p.overrides or {}) for p in sc.presets}
            self._preset_base = dict(sc.tenant or {})
        else:
            self._presets, self._preset_base = {}, None
        if action_mode == "discrete" and not self._presets:
            raise ValueError("action_mode='discrete' needs presets: pass scenario= (the server's scenario) or "
                             "presets={name: overrides}")
        dps = days_per_step if days_per_step is not None else (sc.days_per_step if sc else 1)
        if isinstance(dps, bool) or not isinstance(dps, (int, np.integer)) or dps < 1:
            raise ValueError(f"days_per_step: expected an integer >= 1, got {dps!r}")
        self.days_per_step = int(dps)
        self.max_days = max_days if max_days is not None else (sc.max_days if sc else None)
        if users_per_variant is None and sc is not None:
            users_per_variant = sc.n_users / sc.n_variants
        self.users_per_variant = users_per_variant
        self.poll_interval, self.wait_for_rate_limit = float(poll_interval), bool(wait_for_rate_limit)
        self.reward_mode = reward_mode
        w = DEFAULT_WEIGHTS if weights is None else weights
        unknown = sorted(set(w) - set(METRIC_NAMES))
        if unknown:
            raise ValueError(f"weights: unknown metric {unknown[0]!r}; the metrics are {', '.join(METRIC_NAMES)}")
        self.weights = {m: float(x) for m, x in w.items()}
        self.xp_cost = float(xp_cost)
        self.reasoning = str(reasoning)
        self.render_mode = render_mode
        self.view = _EnvView(action_mode, backend, lo, hi, list(self._presets), self.days_per_step,
                             math.inf if self.max_days is None else float(self.max_days))
        self.action_mode = action_mode
        self.observation_space = gymnasium.spaces.Box(OBS_LOW, OBS_HIGH, (OBS_DIM,), np.float32)
        if action_mode in ("continuous", "target"):
            self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (N_PARAMS,), np.float32)
        elif action_mode == "discrete":
            self.action_space = gymnasium.spaces.Discrete(1 + len(self._presets))
        else:
            self.action_space = gymnasium.spaces.Box(lo.astype(np.float32), hi.astype(np.float32), (N_PARAMS,),
                                                     np.float32)
        self.spec = EnvSpec("arena/Remote-v0", entry_point="arena_env.server.remote_env:RemoteArenaEnv",
                            nondeterministic=True,
                            kwargs=dict(api_url=api_url, token=token, admin_token=admin_token, action_mode=action_mode,
                                        scenario=scenario, presets=presets, bounds=bounds, max_days=max_days,
                                        days_per_step=days_per_step, users_per_variant=users_per_variant, clock=clock,
                                        poll_interval=poll_interval, wait_for_rate_limit=wait_for_rate_limit,
                                        reward_mode=reward_mode, weights=weights, xp_cost=xp_cost, reasoning=reasoning,
                                        backend=backend, timeout=timeout, retries=retries, backoff=backoff,
                                        allow_http=allow_http))
        self._sleep = time.sleep
        self.variant: dict = {}
        self.minute = 0.0
        self.status = ""
        self.score = 0.0
        self._next_allowed: str | None = None
        self._over = False  # the server refused to advance: nothing left to simulate
        self._clock_finished = False
        self._done = True
        self._steps = 0

    # ------------------------------------------------------------------ reading the server
    def _observe(self) -> np.ndarray:
        """Read the variant, its signals, the scoreboard (and the admin clock) into the view; the observation."""
        var = self.client.variant()
        if var.get("isControl"):
            raise ValueError(f"{self.client.api_url}: the token is the control variant's ({var.get('variantId')}); the "
                             "control's economy is immutable, so pass a treatment's strategy token")
        sig = self.client.signals()
        board = self.client.scoreboard()
        clock = self.admin.clock() if self.admin is not None else None
        control = next((e for e in board if e.get("isControl")), None)
        v = self.view
        self.variant = var
        self.status = str(var.get("experimentStatus", ""))
        v.guardrails.status = self.status
        v.set_guardrails(int(var.get("updateIntervalMin", 60)), float(var.get("deltaLimitPct", 50.0)))
        v.day = int(sig.get("experimentDays", 0))
        self.minute = float(clock["minute"]) if clock else float(v.day * MINUTES_PER_DAY)
        if clock and clock.get("maxDays"):
            v.scenario.max_days = float(clock["maxDays"])
        self._clock_finished = bool(clock and clock.get("finished"))
        if control is not None and control.get("currentConfig"):
            v.set_tenant(_vector(control["currentConfig"]))
        v.config[0] = v.tenant_vector
        v.config[1] = _vector(var.get("currentConfig"))
        base = self._preset_base if self._preset_base is not None else to_dict(v.tenant_vector)
        for k, over in enumerate(self._presets.values()):
            v.preset_vectors[k] = to_vector(resolve(base, over))
        enrolled = int(sig.get("enrolled", 0))
        v._today_i[1, L.A_ENROLLED] = enrolled
        v._today_i[1, L.A_ACTIVE] = int(sig.get("activeToday", 0))
        v._today_i[1, L.A_CHURNED] = max(enrolled - int(sig.get("active7d", 0)), 0)
        v._variant_size[1] = self.users_per_variant if self.users_per_variant else max(enrolled, 1)
        v._total_scans[1] = int(sig.get("totalScans", 0))
        v.set_metrics(1, sig.get("metrics") or {})
        v.set_metrics(0, (control or {}).get("metrics") or {})
        v._signals = {0: {"metrics": dict((control or {}).get("metrics") or {})}, 1: sig}
        return v._observations()[AGENT]

    def _score(self) -> float:
        """The composite lift of the variant over the control (module docstring, Reward)."""
        m = self.view._signals[1].get("metrics") or {}
        c = self.view._signals[0].get("metrics") or {}

        def lift(name):
            a, b = m.get(name), c.get(name)
            return float(a["value"]) - float(b["value"]) if a and b else 0.0

        return sum(w * lift(k) for k, w in self.weights.items()) - self.xp_cost * lift("XP_VELOCITY")

    def _heartbeat(self) -> None:
        try:
            self.client.heartbeat(max(1, math.ceil(self.poll_interval)),  # whole seconds, as the SDK sends
                                  {"client": "arena RemoteArenaEnv", "step": self._steps})
        except ArenaForbidden:  # paused or over: the observation says so
            pass

    def _info(self, decision: dict | None, overrides: dict | None, notes: dict) -> dict:
        d = decision or {}
        return {"day": self.view.day, "minute": self.minute, "variantId": self.variant.get("variantId"),
                "status": self.status, "config": to_dict(self.view.config[1]), "signals": self.view._signals[1],
                "score": self.score, "decision": decision, "accepted": d.get("accepted") if decision else None,
                "rejectionReason": d.get("rejectionReason"), "clampedDeltas": d.get("clampedDeltas") or {},
                "decisionLogId": d.get("decisionLogId"), "nextAllowedUpdate": d.get("nextAllowedUpdate"),
                "overrides": overrides, **notes}

    # ------------------------------------------------------------------ the Gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Read the remote experiment (it is not restarted) and send a heartbeat; ``seed`` seeds ``np_random``."""
        super().reset(seed=seed)
        self._steps = 0
        self._over = False
        obs = self._observe()
        self._heartbeat()
        self.score = self._score()
        self._done = False
        return obs, self._info(None, None, {})

    def step(self, action, reasoning: str | None = None):
        """One decision and the move to the next decision point (module docstring); ``reasoning`` is the decision
        log's text for this proposal (default: the env's ``reasoning``)."""
        if self._done:
            raise RuntimeError("the episode is over (or reset() was never called): call reset() before step()")
        v = self.view
        req, has, notes = v._parse_actions({AGENT: action})
        notes = dict(notes.get(AGENT, {}))
        cur = v.config[1]
        sent = {PARAM_NAMES[i]: int(max(round_half_away(float(req[1, i])), 0.0)) for i in np.flatnonzero(has[1])}
        moves = any(x != cur[PARAM_NAMES.index(k)] for k, x in sent.items())
        decision, overrides = None, (sent if moves else None)
        self._steps += 1
        if moves:
            try:
                decision = self.client.update_config(sent, reasoning or self.reasoning, signals=v._signals[1] or None)
            except ArenaForbidden as exc:
                notes["error"] = str(exc)
        if decision is not None:
            self._record(decision, len(sent))
        self._advance()
        self._heartbeat()
        before = self.score
        obs = self._observe()
        self.score = self._score()
        reward = self.score if self.reward_mode == "lift" else self.score - before
        terminated = self.status in (COMPLETED, ARCHIVED)
        truncated = not terminated and (self._over or self._clock_finished or
                                        (math.isfinite(v.scenario.max_days) and v.day >= v.scenario.max_days))
        self._done = terminated or truncated
        return obs, float(reward), terminated, truncated, self._info(decision, overrides, notes)

    def _record(self, decision: Mapping[str, Any], touched: int) -> None:
        """What the guardrails' answer tells about the variant's state (observation entries 63-65)."""
        g, v = self.view.guardrails, self.view
        self._next_allowed = decision.get("nextAllowedUpdate")  # accepted or RATE_LIMITED: when to come back
        if decision.get("accepted") and decision.get("decisionLogId") is not None:
            g.last_update_minute[1] = float(v.day * MINUTES_PER_DAY)
            g.breaker_open[1] = False
            v._last_clamp_share[1] = len(decision.get("clampedDeltas") or {}) / max(touched, 1)
        elif decision.get("rejectionReason") == "CIRCUIT_BREAKER_ACTIVE":
            g.breaker_open[1] = True

    def _advance(self) -> None:
        """Move to the next decision point (module docstring, Step)."""
        if self.clock == "manual":
            try:
                self.admin.advance(minutes=float(self.days_per_step * MINUTES_PER_DAY))
            except ArenaForbidden:
                self._over = True
        elif self.clock == "wall":
            deadline = time.monotonic() + self.poll_interval
            nxt = _epoch(self._next_allowed) if self.wait_for_rate_limit else None
            if nxt is not None:  # at most one update interval: the limiter frees the variant by then
                cap = 60.0 * self.view.guardrail_config.update_interval_min
                deadline = max(deadline, time.monotonic() + min(nxt - time.time(), cap))
            self._next_allowed = None
            while (left := deadline - time.monotonic()) > 0:
                self._sleep(min(left, self.poll_interval))
                if deadline - time.monotonic() > 0:
                    self._heartbeat()

    # ------------------------------------------------------------------ agents
    def context(self, observation=None) -> Context:
        """The :class:`agents.Context` of the variant now (after ``reset`` or a ``step``), as an agent sees it in
        the local env (:func:`arena_env.wrappers.agents.context_for`); ``observation`` becomes ``context.vector``."""
        return context_for(self.view, AGENT, observation)

    def action_for(self, update: Update | None):
        """The action that carries an agent's ``update`` (None: a hold), as locally
        (:func:`arena_env.wrappers.agents.action_for`)."""
        return action_for(self.view, AGENT, update)

    def render(self):
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without render_mode; pass render_mode='ansi'")
            return None
        v = self.view
        lines = [f"{self.variant.get('variantName', '?')} ({self.variant.get('variantId', '?')}) of "
                 f"{self.variant.get('experimentName', '?')} at {self.client.api_url}: day {v.day}, {self.status}, "
                 f"score {self.score:+.4f}",
                 "config " + " ".join(f"{k}={x}" for k, x in to_dict(v.config[1]).items())]
        for name in METRIC_NAMES:
            m = (v._signals[1].get("metrics") or {}).get(name)
            c = v._signals[0]["metrics"].get(name)
            if m:
                lines.append(f"  {name:<19}{m['value']:>10.4f}  control {c['value'] if c else float('nan'):>10.4f}  "
                             f"n={m['sampleSize']} {m['confidence']}")
        return "\n".join(lines)

    def close(self):
        self._done = True
        self.client.close()


def run_agent(env: RemoteArenaEnv, policy: Agent, *, steps: int | None = None, seed: int | None = None,
              timeout: float | None = None) -> dict:
    """Play ``policy`` (an :class:`agents.Agent`) through ``env`` for ``steps`` steps (None: to the end), as
    :func:`arena_env.wrappers.agents.run_single_episode` plays it locally: each step asks
    :func:`~arena_env.wrappers.agents.decide` (``timeout`` bounds one decision) for the action and tells the
    agent the outcome; the update's ``reasoning`` goes into the server's decision log.  ``seed`` seeds the env
    and the agent (pass the local rule's ``s + 1 + k`` yourself to reproduce a local seat).  Returns
    ``{"reward": total, "steps": n, "days": day, "decisions": [answers]}``."""
    last: list = [None]

    class Seat:  # the agent, keeping its last update for the reasoning
        def act(self, context):
            last[0] = policy.act(context)
            return last[0]

    Seat.__name__ = Seat.__qualname__ = type(policy).__name__  # decide() names the agent in its errors
    obs, _ = env.reset(seed=seed)
    policy.reset(seed)
    total, decisions, n, done = 0.0, [], 0, False
    while not done and (steps is None or n < steps):
        action = decide(env.view, AGENT, Seat(), obs, timeout)
        reason = last[0].reasoning if isinstance(last[0], Update) and last[0].reasoning else None
        obs, reward, terminated, truncated, info = env.step(action, reasoning=reason)
        total += reward
        n += 1
        if info["decision"] is not None:
            decisions.append(info["decision"])
        policy.update(Outcome(float(reward), info["decision"], info["day"]))
        done = terminated or truncated
    return {"reward": total, "steps": n, "days": env.view.day, "decisions": decisions}
