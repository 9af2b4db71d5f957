"""Economy arena: a simulated gamification economy as a PettingZoo parallel environment.

Description
-----------
A population of ``n_users`` users is recruited over time and randomised (in matched blocks) to a
control variant and ``n_agents`` treatment variants.  Each treatment's economy (the ten XP parameters of the TendedLoop
Arena protocol) is controlled by one agent; the control keeps the tenant config.  At every step each
agent may propose an update, the proposal goes through the five guardrails
(control lock, status gate, circuit breaker, rate limiter, delta clamp, then integer rounding and
hard bounds), the applied configs drive the days of user behaviour (activity choice with a reference
point, inflation, habituation and onboarding, capped scans with duplicates, first-scan bonuses and
streak premiums, feedback/photos with substitution, reports, missions, churn, novelty, weekdays,
rank among site peers shared by the treatments, an optional XP budget shared by the treatments),
the six engagement metrics are updated with tests against the control, and each agent earns the
money its variant makes per user over the control's.  A step is one simulated day, or ``days_per_step`` days (e.g. 7 for weekly decisions):
agents decide once at the start of a step.  The model is written out in ``docs/model.md``; the
scenarios in ``docs/scenarios.md``.

Agents
------
``variant_0`` ... ``variant_{n_agents-1}``; agent ``variant_k`` controls treatment ``k + 1`` (variant 0
of the experiment is the control and is not an agent).  Agents are fixed at construction.

Action space
------------
``action_mode="continuous"`` (default): ``Box(-1, 1, (10,), float32)``.  Component ``i`` is a
log-symmetric relative change of parameter ``i`` in units of the delta limit ``p = delta_limit_pct /
100``: the request is ``current_i * (1 + p) ** a_i`` when ``current_i * p >= 1``, and the unit step
``current_i + a_i`` below that (so that 0 and 1 can move); ``agents.rules.continuous_target``.
``a_i = 1`` requests exactly the upper edge of the delta window, ``a_i = -1`` the reciprocal factor
(``current_i / (1 + p)``), so ``a`` and ``-a`` cancel and uniformly random actions leave the median
config where it was.  The request is then rounded half away from zero and clamped by the guardrails.
Components equal to 0 leave the parameter untouched; an all-zero action is a *hold*, which does not
consume the rate limit.

==== ====================  ====  ==== ====================
 i    parameter           def.  i    parameter
==== ====================  ====  ==== ====================
 0    scanXp               10    5    firstScanOfDayXp (15)
 1    feedbackXp           15    6    streakBonusPerDay (5)
 2    issueReportXp        25    7    streakBonusCap (50)
 3    statusReportXp       20    8    scanDailyCap (20)
 4    photoXp              10    9    feedbackDailyCap (10)
==== ====================  ====  ==== ====================

``action_mode="target"``: ``Box(-1, 1, (10,), float32)`` of target values on the observation's config
scale (entries 53-62 below): component ``u_i`` requests ``(t_i + 1) * exp(u_i * L_i) - 1`` within the
hard bounds (``agents.rules.unit_target``; 0 the tenant value, +-1 the farther bound), so a policy says
where a parameter should be rather than how it should move, and a constant action is a fixed config
(the delta clamp takes it there).  Only parameters whose rounded request differs from the current value
are touched; ``env.target_action(config)`` is the action that requests ``config``.

``action_mode="discrete"``: ``Discrete(1 + len(presets))``; 0 holds, ``k`` requests the scenario's
preset ``k - 1`` (resolved over the tenant config).  ``action_mode="absolute"``: ``Box(lo, hi, (10,))``
of target values (the hard bounds).  Every proposal goes through the guardrails, so a request may be
clamped or rejected; ``infos[agent]["decision"]`` says what happened.

Invalid actions: a wrong shape or dtype, an unknown agent, or a discrete index out of range raise
``ValueError`` naming the agent before any state changes.  Non-finite components are *sanitised*:
the agent holds for that step and ``infos[agent]["action_error"]`` says so; continuous components
outside [-1, 1] are clipped and ``infos[agent]["action_clipped"]`` is True.  A missing agent holds.

Observation space
-----------------
``Box(OBS_LOW, OBS_HIGH, (70,), float32)`` per agent: every entry lies in the range given below,
[0, 1] or [-1, 1], and the Box bounds are exactly those ranges.  Metrics pass through ``x / (x + s)``
(half-way at the scale ``s``), counts are shares, configs log ratios.  All variants' observations are
computed at once after the step (``day`` = days simulated so far); "enrolled" has a minimum of 1 in
denominators and counts churned users.

=======  ===========  ==========================================================================
index    range        content
=======  ===========  ==========================================================================
0        [0, 1]       enrolled / users assigned to the variant (recruitment progress)
1        [0, 1]       active today / enrolled
2        [0, 1]       churned so far / enrolled
3        [0, 1)       ``x / (x + 2)``, x = scans since day 0 / (enrolled x max(day, 1))
4        [0, 1]       day / max_days
5-28     [0, 1]       the variant's metric block: 4 values per metric in ``METRIC_NAMES`` order,
                      +0 value: the rates (RETENTION_RATE, MISSION_COMPLETION, FEEDBACK_QUALITY) as
                      they are, else ``v / (v + s)`` with s = 2 (SCAN_FREQUENCY), 50 (XP_VELOCITY),
                      5 (STREAK_LENGTH); +1 stdDev ``sd / (sd + s)``, s as above and 0.5 for the
                      rates; +2 evidence ``1 - 1 / sqrt(1 + sampleSize)``; +3 confidence (0 low,
                      0.5 medium, 1 high)
29-52    [0, 1]       the same for the control
53-62    [-1, 1]      the variant's nominal config as ``log((x + 1) / (t + 1)) / L``, t the tenant
                      config, L the larger of ``log((hi + 1) / (t + 1))`` and ``log((t + 1) /
                      (lo + 1))`` for the hard bounds lo, hi (``guardrails.bounds``, else the
                      absolute bounds; parameter order above): 0 at the tenant config, +-1 at the
                      farther bound (L = 1 if lo = hi)
63       [0, 1]       ``min(k, 7) / 7``, k the whole steps until the rate limiter allows an update
                      (0: at the next step); always 0 when ``update_interval_min <= 1440 x
                      days_per_step`` (the guardrail clock runs 1440 minutes per simulated day),
                      but in the last observation after a final step cut short by ``max_days``
64       {0, 1}       circuit breaker open
65       [0, 1]       share of the last accepted update's touched parameters that were clamped
66       {0, 1}       anomaly flag
67       {0, 1}       update gate open: the experiment is RUNNING, the breaker closed and the rate
                      limiter free (before the next step's scheduled researcher actions)
68, 69   [-1, 1]      sin, cos of 2 pi weekday / 7 of the next simulated day (constant with
                      ``days_per_step`` 7, but for a final step cut short by ``max_days``)
=======  ===========  ==========================================================================

Reward
------
Per agent per day, the scenario's objective (``objective`` in the scenario).  The default,
``kind: value``, is money (``objective.currency``, EUR) per enrolled user per day, the agent's
variant minus the control::

    r = money(variant) - money(control)
    money = (active_day * active users + scan * useful scans + feedback * genuine useful feedback
             + photo * genuine photos + issue * genuine issue reports + status * genuine status reports
             - xp_cost * XP credited - churn_cost * users expected to be lost today) / enrolled users

(``metrics.daily_value``; genuine share ``junk / (junk + price)``; docs/model.md section 9).  Every
term is per enrolled user, churned users included, so no agent can shrink a denominator; the
control is isolated from the treatments, so no agent gains by hurting it.  ``kind: tendedloop`` is
the TendedLoop composite ``sum_m w_m (o_m(variant) - o_m(control)) - xp_cost (xp(variant) -
xp(control))``, kept as a named alternative and documented as gameable.  A policy that matches the
control earns 0 in expectation.

Episode end
-----------
Truncation after ``max_days`` simulated days (``ceil(max_days / days_per_step)`` steps).  The reward
of a multi-day step is the sum of its days' rewards.  Termination when the experiment is COMPLETED
(a scheduled or researcher ``complete``).  Then ``agents`` is empty.

Infos
-----
``infos[agent]``: ``day``, ``variant``, ``decision`` (the day's decision record in the protocol's
shape: ``economyOverrides``, ``appliedConfig``, ``clampedDeltas``, ``rejectionReason``,
``nextAllowedUpdate``, ``anomaly``; None without a proposal), ``config`` (current config),
``guardrails`` (status, breakerOpen, anomaly, nextAllowedUpdate), after a step also ``lift`` (the
day's metric lifts over the control), ``value`` (the day's terms of the value objective for the
variant, per enrolled user), ``xp_per_user``, ``scheduled`` (researcher actions carried
out) and ``breaker_tripped``; with ``info_level="full"`` also ``signals`` (the protocol's signals
payload: enrolled, activeToday, active7d, totalScans, experimentDays, metrics with value, stdDev,
sampleSize, confidence) and ``tests`` (each metric vs the control: Welch t or Fisher exact with
difference, 95% CI, p, odds ratio, Cohen's d).  ``action_error`` / ``action_clipped`` report
sanitised actions.  Formats in ``docs/formats.md``.

Arguments
---------
``scenario`` (name in ``configs/scenarios/`` or a path, default ``"default"``), ``n_users``,
``n_agents`` (1-4), ``max_days``, ``backend`` (``"numba"`` | ``"numpy"``), ``render_mode``
(``"ansi"``), ``action_mode`` (``"continuous"`` | ``"target"`` | ``"discrete"`` | ``"absolute"``), ``num_threads``
(Numba threads; default None picks by population size: one thread per 50,000 users, at least 1, at
most ``numba.config.NUMBA_NUM_THREADS``, so 1 below 100k users: on a 2-vCPU machine a second thread
only pays from ~100k users, and slows smaller populations down several times when another process
is busy; ``arena_env._numba.threads_for``), ``info_level`` (``"full"`` | ``"light"``: light omits
the metric dictionaries and tests from infos), ``recorder`` (an
:class:`arena_env.economy.events.EventRecorder`: every episode's events in the replay schema, for
replay and off-policy evaluation of the env's own runs; it changes nothing in the simulation), and
any other top-level scenario key by keyword
(mappings merge key by key into the scenario's).  Integer keywords (``n_users``, ``n_agents``,
``max_days``, ``num_threads``, ``days_per_step``, ...) take Python or NumPy integers; strings,
floats and bools raise ``ScenarioError`` (``ValueError`` for ``num_threads``) naming the keyword, as
does a ``scenario`` that is neither a name, a path nor a :class:`Scenario`.

Seeding
-------
``reset(seed=s)`` (an integer from 0 to 2**63 - 1; others raise ``ValueError``) fixes everything:
population, traits, every daily draw (counter-based, keyed by seed, day, user and purpose).  The same
seed gives bit-identical trajectories for any thread count; the two backends agree exactly on integers and to 1e-9 on floats.  ``reset()`` without a seed
continues deterministically from the last seed (episode counter); the very first reset without a
seed draws one from the operating system.

Version history
---------------
* v1: the economy as a benchmark (docs/model.md).  The reward is money per enrolled user (value of
  active days, useful scans, genuine feedback, photos and reports, minus XP cost and the worth of
  users lost) instead of the TendedLoop composite, whose FEEDBACK_QUALITY ratio a search gamed by
  cutting scans (that objective stays as ``kind: tendedloop``).  The control has its own site
  leaderboard and its own budget pot: its trajectory no longer depends on the treatments (agents
  gained 10-36% by hurting it).  The streak bonus left the reference point (raising it lowered
  retention); its premium is a separate pull.  Heavy users make the caps bind; duplicate scans and
  junk actions carry no value.  Habituation and onboarding make the best config drift with tenure,
  so adapting pays.  The budget is paid pro rata on the day, so it holds exactly (v0 overshot on 44%
  of days and oscillated).  Users are randomised in matched blocks.  Continuous actions are
  log-symmetric; observations are bounded.
* v0: initial release (removed).
"""

from __future__ import annotations

import math

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from agents import rules
from arena_env._numba import check_threads, jit, set_threads, threads_for

from . import backends
from . import layout as L
from . import metrics as M
from . import model
from . import stats_kernels as S
from .guardrails import COMPLETED, RUNNING, TRANSITIONS, GuardrailConfig, Guardrails
from .params import ABSOLUTE_BOUNDS, N_PARAMS, PARAM_NAMES, resolve, to_dict, to_vector
from .scenario import METRIC_NAMES, Scenario, ScenarioError, load

OBS_DIM = 70
MINUTES_PER_DAY = 1440  # the guardrail clock: a decision on day d happens at minute d * 1440
VALUE_SCALE = np.array([2.0, 50.0, 0.0, 0.0, 5.0, 0.0])  # metric value v -> v / (v + scale); 0: a share as is
STD_SCALE = np.array([2.0, 50.0, 0.5, 0.5, 5.0, 0.5])  # metric stdDev s -> s / (s + scale)
SCANS_SCALE = 2.0  # observation 3: scans per enrolled user-day since day 0, x -> x / (x + 2)
WAIT_STEPS_MAX = 7  # observation 63: min(steps until an update is allowed, 7) / 7
OBS_LOW = np.zeros(OBS_DIM, np.float32)  # the documented range of every entry (the observation Box)
OBS_LOW[53:63] = OBS_LOW[68:70] = -1.0  # configs (log ratios) and the weekday's sin/cos
OBS_HIGH = np.ones(OBS_DIM, np.float32)
ACTION_MODES = ("continuous", "target", "discrete", "absolute")
BACKENDS = backends.NAMES
_LOG1P_LEN = 1024
DEFAULT_WEIGHTS = {"SCAN_FREQUENCY": 0.4, "RETENTION_RATE": 3.5, "FEEDBACK_QUALITY": 2.5}  # TendedLoop composite
_SHORT = ("scans/d", "XP/d", "retain", "missions", "streak", "feedback")  # render headers, METRIC_NAMES order
_PARAM_SHORT = ("scan", "fb", "issue", "status", "photo", "first", "strk/d", "strkcap", "scancap", "fbcap")


class EconomyEnv(ParallelEnv):
    """The economy arena (see the module docstring for the full specification)."""

    metadata = {"name": "economy_v1", "render_modes": ["ansi"], "is_parallelizable": True, "render_fps": 1}

    def __init__(self, scenario: str | Scenario = "default", *, n_users: int | None = None,
                 n_agents: int | None = None, max_days: int | None = None, backend: str = "numba",
                 render_mode: str | None = None, action_mode: str = "continuous",
                 num_threads: int | None = None, info_level: str = "full", recorder=None, **overrides):
        for key, val in (("n_users", n_users), ("n_agents", n_agents), ("max_days", max_days)):
            if val is not None:
                overrides[key] = val
        if isinstance(scenario, Scenario):
            if overrides:
                raise ValueError("keyword overrides need a scenario name or path, not a Scenario object")
            sc = scenario
        else:
            sc = load(scenario, **overrides)
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r}: expected one of {', '.join(BACKENDS)}")
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode={action_mode!r}: expected one of {', '.join(ACTION_MODES)}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r}: expected None or one of {self.metadata['render_modes']}")
        if info_level not in ("full", "light"):
            raise ValueError(f"info_level={info_level!r}: expected 'full' or 'light'")
        if action_mode == "discrete" and not sc.presets:
            raise ScenarioError(f"{sc.source}: presets: action_mode='discrete' needs presets in the scenario")
        self.scenario = sc
        self.backend = backend
        self.render_mode = render_mode
        self.action_mode = action_mode
        self.num_threads = threads_for(sc.n_users) if num_threads is None else check_threads(num_threads)
        self.info_level = info_level
        self.recorder = recorder  # an arena_env.economy.events.EventRecorder, or None
        set_threads(self.num_threads)

        self.possible_agents = [f"variant_{k}" for k in range(sc.n_agents)]
        self.agents: list[str] = []
        self._agent_variant = {a: k + 1 for k, a in enumerate(self.possible_agents)}

        # derived constants
        g = sc.guardrails
        lo = np.array([ABSOLUTE_BOUNDS[k][0] for k in PARAM_NAMES], dtype=np.int64)
        hi = np.array([ABSOLUTE_BOUNDS[k][1] for k in PARAM_NAMES], dtype=np.int64)
        for k, (a, b) in (g.bounds or {}).items():
            lo[PARAM_NAMES.index(k)], hi[PARAM_NAMES.index(k)] = a, b
        self.guardrail_config = GuardrailConfig(
            update_interval_min=g.update_interval_min, delta_limit_pct=g.delta_limit_pct,
            retention_cliff=g.retention_cliff, cliff_min_sample=g.cliff_min_sample,
            anomaly_run=g.anomaly_run, lo=lo, hi=hi)
        self.tenant_vector = to_vector(sc.tenant_config)
        self.preset_vectors = np.array([to_vector(resolve(sc.tenant, p.overrides)) for p in sc.presets],
                                       dtype=np.int64).reshape(len(sc.presets), N_PARAMS)
        w = DEFAULT_WEIGHTS if sc.objective.weights is None else sc.objective.weights  # {} means all zero
        self.objective_weights = np.array([float(w.get(m, 0.0)) for m in METRIC_NAMES])
        self._value_coef = M.value_coefficients(sc.objective)
        self.n_sites = -(-sc.n_users // sc.site_size)
        self.sites_per_chunk = model.sites_per_chunk(sc.site_size)
        self.n_chunks = model.chunk_count(sc.n_users, sc.site_size)
        self._sg_tab = model.segment_table(sc)
        self._incentives = model.segment_incentives(sc)
        self._tenure = model.tenure_table(sc)
        self._log1p = model.log1p_table(_LOG1P_LEN)

        # observation 53-62: log((x + 1) / (tenant + 1)) over the larger of the two log distances to the
        # hard bounds, so the bounds map to at most +-1 (a parameter pinned by its bounds: scale 1, always 0)
        # (agents.rules.config_span; the target action mode requests values on the same scale)
        self._obs_cfg_log_tenant = np.log1p(self.tenant_vector.astype(np.float64))
        self._obs_cfg_span = np.array([rules.config_span(float(t), float(a), float(b))
                                       for t, a, b in zip(self.tenant_vector, lo, hi)])
        obs_space = gymnasium.spaces.Box(OBS_LOW, OBS_HIGH, (OBS_DIM,), np.float32)
        if action_mode in ("continuous", "target"):
            act_space = gymnasium.spaces.Box(-1.0, 1.0, (N_PARAMS,), np.float32)
        elif action_mode == "discrete":
            act_space = gymnasium.spaces.Discrete(1 + len(sc.presets))
        else:
            act_space = gymnasium.spaces.Box(lo.astype(np.float32), hi.astype(np.float32), (N_PARAMS,), np.float32)
        self.observation_spaces = {a: obs_space for a in self.possible_agents}
        self.action_spaces = {a: act_space for a in self.possible_agents}
        self._seed: int | None = None
        self._episode = 0
        self.day = 0

    # ---------------------------------------------------------------- spaces
    def observation_space(self, agent):
        return self.observation_spaces[agent]

    def action_space(self, agent):
        return self.action_spaces[agent]

    @property
    def kernels(self) -> backends.Backend:
        """The functions of the backend (:func:`arena_env.economy.backends.get`)."""
        return backends.get(self.backend)

    # ----------------------------------------------------------------- reset
    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 1 << 63:
                raise ValueError(f"seed must be an integer from 0 to 2**63 - 1, got {seed!r}")
            self._seed = int(seed)
            self._episode = 0
        elif self._seed is None:
            self._seed = int(np.random.SeedSequence().entropy) % (1 << 63)
            self._episode = 0
        else:
            self._episode += 1
        sc = self.scenario
        # the episode's own seed: the given seed for episode 0, then a hash of (seed, episode)
        self.episode_seed = self._seed if self._episode == 0 else int(
            np.random.SeedSequence([self._seed, self._episode]).generate_state(1, np.uint64)[0] >> np.uint64(1))
        V = sc.n_variants
        self.users = model.init_population(sc, self.episode_seed)
        self._variant_size = np.maximum(np.bincount(self.users["variant"], minlength=V)[:V], 1)  # observation 0
        self._site_prev = np.zeros((self.n_sites, L.N_SITE))
        self._site_next = np.zeros((self.n_sites, L.N_SITE))
        self._agg_i = np.zeros((self.n_chunks, V, L.N_AI), dtype=np.int64)
        self._agg_f = np.zeros((self.n_chunks, V, L.N_AF))
        self.history_i = np.zeros((sc.max_days, V, L.N_AI), dtype=np.int64)
        self.history_f = np.zeros((sc.max_days, V, L.N_AF))
        self.config = np.tile(self.tenant_vector, (V, 1))
        self.effective_config = self.config.astype(np.float64)
        self._vs_tab = model.variant_segment_table(sc, self.effective_config, self._incentives)
        self._vs_key = self.effective_config.tobytes()
        self._cfg_block_key = None  # the config whose observation block _config_block holds
        self.guardrails = Guardrails(V, self.guardrail_config,
                                     clamp=self.kernels.clamp_updates)
        self.guardrails.launch()
        if sc.recruiting_days == 0:
            self.guardrails.start()
        self.budget_scale = 1.0
        self.payout_scale = np.ones(V)  # today's payout ratio per variant (1 without a budget)
        self.expected_payout = np.ones(V)  # what users expect: a moving average of the payout ratio
        self.budget_history = np.full((sc.max_days, 2), np.nan)
        self.value_history = np.zeros((sc.max_days, V, len(M.VALUE_TERMS)))
        self.day = 0
        self.decisions: list[dict] = []
        self._last_clamp_share = np.zeros(V)
        self._tests_buf = np.full((V, M.N_METRICS, S.N_TEST_FIELDS), np.nan)
        self._counts = None  # the latest day's (successes, trials) per metric, until _tests compares them
        self._mean = np.zeros((V, M.N_METRICS))
        self._var = np.full((V, M.N_METRICS), np.nan)
        self._n = np.zeros((V, M.N_METRICS), dtype=np.int64)
        self._today_i = np.zeros((V, L.N_AI), dtype=np.int64)
        self._total_scans = np.zeros(V, dtype=np.int64)
        self.agents = list(self.possible_agents)
        if self.recorder is not None:
            self.recorder.on_reset(self)
        obs = self._observations()
        infos = {a: self._info(a, None, {}) for a in self.agents}
        return obs, infos

    # ------------------------------------------------------------ researcher
    def _variant_of(self, agent) -> int:
        if agent in self._agent_variant:
            return self._agent_variant[agent]
        raise ValueError(f"unknown agent {agent!r}; agents are {', '.join(self.possible_agents)}")

    def _experiment(self, what: str) -> Guardrails:
        """The guardrails of the experiment that ``what`` (a researcher action, ``render``, ``state``, ...)
        works on; a ``RuntimeError`` naming it before the first ``reset()``, when there is none."""
        g = getattr(self, "guardrails", None)
        if g is None:
            raise RuntimeError(f"{what}(): reset() was never called, so there is no experiment yet; "
                               "call reset() first")
        return g

    def reset_circuit_breaker(self, agent: str) -> bool:
        """Researcher action: close the circuit breaker of ``agent``'s variant (the only way)."""
        return self._experiment("reset_circuit_breaker").reset_breaker(self._variant_of(agent))

    def trip_circuit_breaker(self, agent: str) -> bool:
        """Researcher action: open the circuit breaker of ``agent``'s variant."""
        return self._experiment("trip_circuit_breaker").trip_breaker(self._variant_of(agent))

    def pause(self) -> None:
        """Researcher action: pause the experiment (updates are rejected, users keep going)."""
        self._experiment("pause").pause()

    def resume(self) -> None:
        """Researcher action: resume a paused experiment."""
        self._experiment("resume").resume()

    def complete(self) -> None:
        """Researcher action: complete the experiment; the next step terminates every agent."""
        self._experiment("complete").complete()

    def _run_schedule(self, day: int) -> list[dict]:
        """Carry out the scenario's researcher actions of ``day``; a lifecycle action that is not legal
        in the current status (e.g. ``resume`` while running) is skipped and reported with
        ``"applied": False``."""
        done = []
        g = self.guardrails
        for a in self.scenario.schedule:
            if a.day != day:
                continue
            targets = range(1, self.scenario.n_variants) if a.variant is None else [a.variant]
            applied = True
            if a.action == "reset_breaker":
                for v in targets:
                    g.reset_breaker(v)
            elif a.action == "trip_breaker":
                for v in targets:
                    g.trip_breaker(v)
            else:
                applied = a.action in TRANSITIONS[g.status]
                if applied:
                    getattr(g, a.action)()
            done.append({"day": day, "action": a.action, "variant": a.variant, "applied": applied})
        return done

    # ------------------------------------------------------------------ step
    def _parse_actions(self, actions) -> tuple[np.ndarray, np.ndarray, dict]:
        """Validate every action first (nothing changes on error); return the proposals."""
        if not isinstance(actions, dict):
            raise ValueError(f"actions must be a dict agent -> action, got {type(actions).__name__}")
        for a in actions:
            if a not in self._agent_variant:
                raise ValueError(f"actions: unknown agent {a!r}; agents are {', '.join(self.possible_agents)}")
            if a not in self.agents:
                raise ValueError(f"actions: agent {a!r} is done; act only for env.agents")
        V = self.scenario.n_variants
        req = np.zeros((V, N_PARAMS))
        has = np.zeros((V, N_PARAMS), dtype=bool)
        notes: dict[str, dict] = {}
        pct = self.guardrail_config.delta_limit_pct
        for agent, act in actions.items():
            v = self._agent_variant[agent]
            cur = self.config[v].astype(np.float64)
            if self.action_mode == "discrete":
                if isinstance(act, np.ndarray) and act.shape == ():
                    act = act.item()
                if isinstance(act, (bool, np.bool_)) or not isinstance(act, (int, np.integer)):
                    raise ValueError(f"action of {agent}: expected an integer preset index, got {act!r}")
                n = 1 + len(self.scenario.presets)
                if not 0 <= act < n:
                    raise ValueError(f"action of {agent}: {act} is out of range; expected 0 (hold) .. {n - 1}")
                if act > 0:
                    req[v] = self.preset_vectors[act - 1]
                    has[v] = req[v] != cur
                continue
            try:
                arr = np.asarray(act)
                if arr.dtype.kind not in "iufO":  # bools, complex numbers, strings, dates: not an action
                    raise TypeError
                arr = arr.astype(np.float64, copy=False)
            except (TypeError, ValueError):
                raise ValueError(f"action of {agent}: expected {N_PARAMS} real numbers (ints or floats), got "
                                 f"{act!r}") from None
            if arr.shape != (N_PARAMS,):
                raise ValueError(f"action of {agent}: expected shape ({N_PARAMS},) in the order "
                                 f"{', '.join(PARAM_NAMES)}, got shape {arr.shape}")
            state = _action_state(arr)
            if state == 2:
                bad = [PARAM_NAMES[i] for i in np.flatnonzero(~np.isfinite(arr))]
                notes[agent] = {"action_error": f"non-finite values for {', '.join(bad)}: treated as a hold"}
                continue
            if self.action_mode in ("continuous", "target") and state == 1:
                notes[agent] = {"action_clipped": True}
                arr = np.clip(arr, -1.0, 1.0)
            if self.action_mode == "continuous":
                self.kernels.continuous_targets(cur, arr, float(pct), req[v])
                has[v] = arr != 0.0
            else:  # absolute or target values: only the parameters whose rounded request differs are touched
                req[v] = arr if self.action_mode == "absolute" else self._unit_targets(arr)
                rounded = np.empty(N_PARAMS)
                self.kernels.round_half_away_array(req[v], rounded)
                has[v] = rounded != cur
        return req, has, notes

    def _unit_targets(self, u: np.ndarray) -> np.ndarray:
        """The values a ``target``-mode action requests (:func:`agents.rules.unit_target`, within the
        hard bounds)."""
        g = self.guardrail_config
        return np.clip([rules.unit_target(a, float(t), s) for a, t, s in
                        zip(u.tolist(), self.tenant_vector.tolist(), self._obs_cfg_span.tolist())], g.lo, g.hi)

    def target_action(self, config) -> np.ndarray:
        """The ``target``-mode action that requests ``config`` (a full config vector, parameter order):
        its observation-scale values (:func:`agents.rules.unit_of`), as float32."""
        return np.array([rules.unit_of(float(x), float(t), s) for x, t, s in
                         zip(np.asarray(config, np.float64).tolist(), self.tenant_vector.tolist(),
                             self._obs_cfg_span.tolist())], np.float32)

    def _checked_actions(self, actions) -> tuple[np.ndarray, np.ndarray, dict]:
        """What :meth:`step` checks before anything changes: the episode is live and every action is valid
        (:meth:`_parse_actions`, whose proposals it returns).  The wrappers call it for their learners'
        actions before their opponents act."""
        if not self.agents:
            raise RuntimeError("the episode is over (or reset() was never called): call reset() before step()")
        return self._parse_actions(actions)

    def step(self, actions):
        req, has, notes = self._checked_actions(actions)
        sc = self.scenario
        scheduled = self._start_day(self.day)
        records = self._submit(self.day * MINUTES_PER_DAY, req, has)
        decision_of = {rec["variant"]: rec for rec in records}
        if self.recorder is not None:
            self.recorder.on_decisions(self, actions, records)

        # one or more simulated days; the reward adds up the days' rewards
        V = sc.n_variants
        rew = np.zeros(V)
        lift = np.zeros((V, M.N_METRICS))
        tripped: list[int] = []
        for k in range(sc.days_per_step):
            if k > 0:
                if self._terminated() or self.day >= sc.max_days:
                    break
                scheduled += self._start_day(self.day)
            r, lift, xp_pu, t = self._simulate_day()
            rew += r
            tripped += t
            if self.recorder is not None:
                self.recorder.on_day(self, self.day - 1, r)

        truncated = self.day >= sc.max_days
        terminated = self._terminated()
        agents = list(self.agents)
        rewards = {a: float(rew[self._agent_variant[a]]) for a in agents}
        terms = {a: bool(terminated) for a in agents}
        truncs = {a: bool(truncated and not terminated) for a in agents}
        obs = self._observations()
        extra = {"scheduled": scheduled, "breaker_tripped": tripped}
        infos = {a: self._info(a, decision_of.get(self._agent_variant[a]), notes.get(a, {}), extra,
                               lift[self._agent_variant[a]], xp_pu) for a in agents}
        if terminated or truncated:
            if self.recorder is not None:
                self.recorder.on_end(self)
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def _submit(self, minute: float, req: np.ndarray, has: np.ndarray, variants=None) -> list[dict]:
        """Run proposals through the guardrails at ``minute``, apply them and keep the records.  A step
        in which every agent holds (no parameter touched) proposes nothing: no records, no change."""
        if not has.any():
            return []
        self.config, records = self.guardrails.submit(minute, self.config, req, has, variants)
        for rec in records:
            if rec["accepted"]:
                touched = len(rec["economyOverrides"]) or 1
                self._last_clamp_share[rec["variant"]] = len(rec["clampedDeltas"]) / touched
        self.decisions.extend(records)
        return records

    def propose(self, variant: int, overrides, minute: float | None = None) -> dict:
        """One proposal between steps, as the TendedLoop protocol's ``PUT /variant/config`` makes it: the
        ``overrides`` (parameter name -> number) of ``variant`` (0 = the control, which the control lock
        rejects) through the guardrails at ``minute`` (default: the start of the current day; the guardrail
        clock runs 1440 minutes per day), applied to the config the next simulated day uses.  Returns the
        decision record (the same as ``infos[agent]["decision"]`` of a step), or None for a hold: when every
        value rounds to the current one, nothing is proposed (no decision, the rate limit untouched), as
        in a step.  Raises ``ValueError`` for an unknown variant or parameter, or a value that is not a
        finite number, before anything changes."""
        if not self.agents:
            raise RuntimeError("the episode is over (or reset() was never called): call reset() first")
        V = self.scenario.n_variants
        if isinstance(variant, bool) or not isinstance(variant, (int, np.integer)) or not 0 <= variant < V:
            raise ValueError(f"variant must be an integer in 0..{V - 1}, got {variant!r}")
        if not overrides:
            raise ValueError("overrides: give at least one parameter")
        req = np.zeros((V, N_PARAMS))
        has = np.zeros((V, N_PARAMS), dtype=bool)
        for key, value in overrides.items():
            if key not in PARAM_NAMES:
                raise ValueError(f"overrides: unknown parameter {key!r}; the parameters are {', '.join(PARAM_NAMES)}")
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(float(value)):
                raise ValueError(f"overrides.{key}: expected a finite number, got {value!r}")
            i = PARAM_NAMES.index(key)
            req[variant, i], has[variant, i] = float(value), True
        now = self.day * MINUTES_PER_DAY if minute is None else float(minute)
        if not math.isfinite(now) or now < self.day * MINUTES_PER_DAY:
            raise ValueError(f"minute must be finite and not before the current day's start "
                             f"({self.day * MINUTES_PER_DAY}), got {minute!r}")
        records = self._submit(now, req, has, [int(variant)])
        return records[0] if records else None

    @property
    def _tests(self) -> np.ndarray:
        """Every variant against the control on every metric after the latest day, (V, N_METRICS,
        N_TEST_FIELDS) (``stats_kernels.compare_to_control``; row 0 NaN).  Computed when first read
        after a day: the observations and the light infos do not need it, and at 100k users its exact
        Fisher tests cost about 0.1 ms a day."""
        if self._counts is not None:
            self.kernels.compare_to_control(self._mean, np.where(np.isnan(self._var), 0.0, self._var), self._n,
                                            *self._counts, M.IS_BINARY, self._tests_buf)
            self._counts = None
        return self._tests_buf

    def _terminated(self) -> bool:
        return self.guardrails.status in (COMPLETED, "ARCHIVED")

    def _start_day(self, day: int) -> list[dict]:
        """Researcher actions scheduled for ``day``, and the end of recruiting."""
        scheduled = self._run_schedule(day)
        if self.guardrails.status == "RECRUITING" and day >= self.scenario.recruiting_days:
            self.guardrails.start()
        return scheduled

    def _simulate_day(self):
        """One day of user behaviour under the current configs; returns the day's rewards (V,), the
        lift of the day's outcomes over the control (V, 6), XP per enrolled user (V,) and the
        variants whose breaker the health monitor tripped."""
        sc = self.scenario
        day = self.day
        # users respond to the payout they expect: the configs times a moving average of the payout ratio
        cfg = self.config.astype(np.float64)  # prices the XP claimed today
        eff = cfg
        if self.expected_payout.min() < 1.0:
            eff = cfg * self.expected_payout[:, None]
            eff[:, L.P_SCAN_CAP] = self.config[:, L.P_SCAN_CAP]
            eff[:, L.P_FB_CAP] = self.config[:, L.P_FB_CAP]
        key = eff.tobytes()
        if key != self._vs_key:
            self._vs_tab = model.variant_segment_table(sc, eff, self._incentives)
            self._vs_key = key
        self.effective_config = eff

        glob = model.global_vector(sc, day)
        set_threads(self.num_threads)
        u = self.users
        self.kernels.step_population(
            day, self.episode_seed, sc.site_size, self.sites_per_chunk, u, cfg, self.expected_payout,
            self._vs_tab, self._sg_tab, glob, self._tenure, self._log1p, self._site_prev, self._site_next,
            self._agg_i, self._agg_f,
        )
        # the budget: the control has a pot of its own; the treatments share one, each paid its claims
        # up to its fair share, the slack that frugal treatments leave going to the others (water-filling)
        if sc.budget.daily_xp_per_user is not None:
            enrolled = self._agg_i[:, :, L.A_ENROLLED].sum(axis=0).astype(np.float64)
            claimed = M.xp_total(self._agg_i).sum(axis=0)
            per_user = sc.budget.daily_xp_per_user
            self.payout_scale = np.concatenate([
                M.budget_payout(claimed[:1], enrolled[:1], per_user * enrolled[0]),
                M.budget_payout(claimed[1:], enrolled[1:], per_user * enrolled[1:].sum())])
            self.budget_scale = float(self.payout_scale[1:].min())
            if self.payout_scale.min() < 1.0:
                self.kernels.pay_out(day, sc.site_size, self.sites_per_chunk, u, self.payout_scale, glob,
                                     self._site_next, self._agg_i, self._agg_f)
            # adaptive expectations (rate 2 / (metric_window + 1)): users believe a payout ratio once they
            # have seen it for a while, which damps the cobweb of full-pay and cut days
            self.expected_payout += glob[L.GL_ALPHA] * (self.payout_scale - self.expected_payout)
        self._site_prev, self._site_next = self._site_next, self._site_prev
        today_i = self._agg_i.sum(axis=0)
        today_f = self._agg_f.sum(axis=0)
        self.history_i[day] = today_i
        self.history_f[day] = today_f
        self._today_i = today_i
        self._total_scans += today_i[:, L.A_SCANS]
        window_i = self.history_i[max(0, day - sc.metric_window + 1):day + 1].sum(axis=0)
        mean, var, n, succ, trials = M.summarize(today_i, today_f, window_i)
        self._mean, self._var, self._n = mean, var, n
        self._counts = succ, trials  # the comparison with the control runs when _tests is read
        xp_today = M.xp_total(today_i)  # after the payout: the XP credited

        enrolled = today_i[:, L.A_ENROLLED]
        if sc.budget.daily_xp_per_user is not None:
            self.budget_history[day] = sc.budget.daily_xp_per_user * float(enrolled.sum()), xp_today.sum()
        tripped = self.guardrails.check_health(mean[:, M.RR], enrolled)

        out = M.daily_outcomes(today_i, mean)
        xp_pu = xp_today / np.maximum(enrolled, 1)
        lift = out - out[0]
        value = M.daily_value(today_i, today_f, eff, self._value_coef)
        self.value_history[day] = value
        if sc.objective.kind == "value":
            money = value.sum(axis=1)
            rew = money - money[0]
        else:
            rew = lift @ self.objective_weights - sc.objective.xp_cost * (xp_pu - xp_pu[0])
        if enrolled[0] == 0:
            rew[:] = 0.0
        self.day = day + 1
        return rew, lift, xp_pu, tripped

    # ---------------------------------------------------------- observations
    def _metric_blocks(self) -> np.ndarray:
        """The 24-value metric block of every variant, (V, 24), each value in [0, 1]: per metric the
        value (a share as is, else v / (v + VALUE_SCALE)), the stdDev s / (s + STD_SCALE), the evidence
        1 - 1 / sqrt(1 + sampleSize) and the confidence band (0, 0.5, 1)."""
        block = np.empty((self.scenario.n_variants, M.N_METRICS * 4))
        _metric_block_rows(self._mean, self._var, self._n, block)
        return block

    def _wait_steps(self) -> np.ndarray:
        """Whole steps until each variant's rate limiter allows an update, (V,); 0 = at the next step."""
        g = self.guardrails
        wait = g.last_update_minute + g.config.update_interval_min - self.day * MINUTES_PER_DAY
        wait = np.where(np.isfinite(wait), np.maximum(wait, 0.0), 0.0)
        return np.ceil(wait / (MINUTES_PER_DAY * self.scenario.days_per_step))

    def _config_block(self) -> np.ndarray:
        """Observation entries 53-62 of every variant, (V, 10): the configs on their log scale (module
        docstring), recomputed only when a config or the scale changed."""
        key = self.config.tobytes() + self._obs_cfg_log_tenant.tobytes() + self._obs_cfg_span.tobytes()
        if key != self._cfg_block_key:
            self._cfg_block = (np.log1p(self.config.astype(np.float64)) - self._obs_cfg_log_tenant) / self._obs_cfg_span
            self._cfg_block_key = key
        return self._cfg_block

    def _observations(self) -> dict:
        """Every live agent's observation, built for all variants at once (layout and ranges in the
        module docstring; every entry lies in [OBS_LOW, OBS_HIGH] by construction)."""
        if not self.agents:
            return {}
        sc = self.scenario
        ti = self._today_i
        g = self.guardrails
        V = sc.n_variants
        o = np.empty((V, OBS_DIM), np.float32)  # each entry computed in float64, rounded once as it is stored
        enr = np.maximum(ti[:, L.A_ENROLLED], 1).astype(np.float64)
        o[:, 0] = ti[:, L.A_ENROLLED] / self._variant_size
        o[:, 1] = ti[:, L.A_ACTIVE] / enr
        o[:, 2] = ti[:, L.A_CHURNED] / enr
        scans = self._total_scans / (enr * max(self.day, 1))
        o[:, 3] = scans / (scans + SCANS_SCALE)
        o[:, 4] = self.day / sc.max_days
        blocks = self._metric_blocks()
        o[:, 5:29] = blocks
        o[:, 29:53] = blocks[0]
        o[:, 53:63] = self._config_block()
        wait = self._wait_steps()
        o[:, 63] = np.minimum(wait, WAIT_STEPS_MAX) / WAIT_STEPS_MAX
        o[:, 64] = g.breaker_open
        o[:, 65] = self._last_clamp_share
        o[:, 66] = g.anomaly
        o[:, 67] = (g.status == RUNNING) & ~g.breaker_open & (wait == 0)
        wd = 2.0 * math.pi * (self.day % 7) / 7.0
        o[:, 68] = math.sin(wd)
        o[:, 69] = math.cos(wd)
        np.clip(o, OBS_LOW, OBS_HIGH, out=o)  # a guard only: the entries are in range already
        return {a: o[self._agent_variant[a]] for a in self.agents}

    def signals(self, v: int) -> dict:
        """The protocol's ``GET /signals`` payload for variant ``v`` (0 = control)."""
        self._experiment("signals")
        ti = self._today_i
        metrics = M.metric_dicts(self._mean[v:v + 1], self._var[v:v + 1], self._n[v:v + 1])[0]
        return {"enrolled": int(ti[v, L.A_ENROLLED]), "activeToday": int(ti[v, L.A_ACTIVE]),
                "active7d": int(ti[v, L.A_ACTIVE7]), "totalScans": int(self._total_scans[v]),
                "experimentDays": int(self.day), "metrics": metrics}

    def _info(self, agent, decision, notes, extra=None, lift=None, xp_pu=None) -> dict:
        v = self._agent_variant[agent]
        g = self.guardrails
        nxt = g.next_allowed_update(v)
        info = {
            "day": self.day,
            "variant": v,
            "decision": decision,
            "config": to_dict(self.config[v]),
            "guardrails": {"status": g.status, "breakerOpen": bool(g.breaker_open[v]),
                           "anomaly": bool(g.anomaly[v]),
                           "nextAllowedUpdate": None if not math.isfinite(nxt) else
                           (int(nxt) if float(nxt).is_integer() else nxt)},
            **notes,
        }
        if extra:
            info.update(extra)
        if lift is not None:
            info["xp_per_user"] = float(xp_pu[v])
            info["lift"] = dict(zip(METRIC_NAMES, np.asarray(lift, dtype=np.float64).tolist()))
            info["value"] = dict(zip(M.VALUE_TERMS, self.value_history[self.day - 1, v].tolist()))
        if self.info_level == "full":
            info["signals"] = self.signals(v)
            info["tests"] = M.test_dicts(self._tests[[0, v]])[1] if self.day > 0 else {}
        return info

    # ------------------------------------------------------------------ misc
    def ledger(self) -> dict[str, np.ndarray]:
        """XP issued so far per rule, each an int64 array over variants (0 = control)."""
        self._experiment("ledger")
        h = self.history_i[:self.day].sum(axis=0)
        return {rule: h[:, L.A_XP_SCAN + i].copy() for i, rule in enumerate(L.XP_RULES)}

    def render(self):
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without render_mode; pass render_mode='ansi'")
            return None
        self._experiment("render")
        return self._render_text()

    def _render_text(self) -> str:
        sc = self.scenario
        lines = [f"day {self.day}/{sc.max_days}  scenario {sc.name}  status {self.guardrails.status}"
                 f"  budget scale {self.budget_scale:.2f}"]
        head = f"{'variant':<11}{'enrolled':>9}{'active':>8}{'churned':>8}" + "".join(
            f"{m:>10}" for m in _SHORT) + f"{'XP/user':>9}  config ({' '.join(_PARAM_SHORT)})"
        lines.append(head)
        ti = self._today_i
        xp = M.xp_total(ti) / np.maximum(ti[:, L.A_ENROLLED], 1)
        for v in range(sc.n_variants):
            name = "control" if v == 0 else self.possible_agents[v - 1]
            flags = (" [breaker]" if self.guardrails.breaker_open[v] else "") + (
                " [anomaly]" if self.guardrails.anomaly[v] else "")
            cfg = " ".join(f"{c}" for c in self.config[v])
            lines.append(f"{name:<11}{ti[v, L.A_ENROLLED]:>9}{ti[v, L.A_ACTIVE]:>8}{ti[v, L.A_CHURNED]:>8}"
                         + "".join(f"{self._mean[v, m]:>10.3f}" for m in range(M.N_METRICS))
                         + f"{xp[v]:>9.1f}  {cfg}{flags}")
        for v in range(1, sc.n_variants):
            t = self._tests[v]
            sig = [METRIC_NAMES[m] for m in range(M.N_METRICS)
                   if np.isfinite(p := (t[m, S.T_P_FISHER] if M.IS_BINARY[m] else t[m, S.T_P_WELCH])) and p < 0.05]
            lines.append(f"  {self.possible_agents[v - 1]} vs control, significant (p<0.05): {', '.join(sig) or 'none'}")
        return "\n".join(lines)

    def close(self):
        pass

    def state(self):
        """A compact global state: the 24-value metric block of every variant, control first
        (value, stdDev, evidence and confidence of the six metrics, transformed as in the observation,
        each in [0, 1])."""
        self._experiment("state")
        return self._metric_blocks().ravel().astype(np.float32)



@jit
def _action_state(arr):
    """2 if some entry of the action ``arr`` is not finite, else 1 if some entry lies outside
    [-1, 1], else 0 (one pass instead of four array operations)."""
    state = 0
    for x in arr:
        if not math.isfinite(x):
            return 2
        if x > 1.0 or x < -1.0:
            state = 1
    return state


@jit
def _metric_block_rows(mean, var, n, out):
    """Fill ``out`` (V, 24) with the metric blocks of :meth:`EconomyEnv._metric_blocks` (compiled: it runs
    every step)."""
    for v in range(mean.shape[0]):
        for m in range(mean.shape[1]):
            x = mean[v, m]
            if x <= 0.0:  # as np.maximum(x, 0.0): -0.0 becomes 0.0
                x = 0.0
            scale = VALUE_SCALE[m]
            out[v, 4 * m] = min(x, 1.0) if scale == 0.0 else x / (x + scale)
            s2 = var[v, m]
            sd = 0.0 if math.isnan(s2) or s2 <= 0.0 else math.sqrt(s2)
            out[v, 4 * m + 1] = sd / (sd + STD_SCALE[m])
            k = n[v, m]
            out[v, 4 * m + 2] = 1.0 - 1.0 / math.sqrt(1.0 + k)
            out[v, 4 * m + 3] = (0.5 if k >= 30 else 0.0) + (0.5 if k >= 10 else 0.0)


def parallel_env(**kwargs) -> EconomyEnv:
    """The economy arena as a PettingZoo ParallelEnv (keyword arguments as :class:`EconomyEnv`)."""
    return EconomyEnv(**kwargs)


def aec_env(**kwargs):
    """The economy arena in PettingZoo's AEC form (through ``parallel_to_aec``)."""
    from pettingzoo.utils.conversions import parallel_to_aec

    return parallel_to_aec(EconomyEnv(**kwargs))
