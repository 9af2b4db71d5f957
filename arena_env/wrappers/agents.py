"""Run :mod:`agents` (the protocol's agents) in the economy environments.

* :func:`context_for` turns an agent's observation and info into the protocol's
  :class:`agents.Context`;
* :func:`action_for` turns an :class:`agents.Update` (or None, a hold) into the environment's action
  for its ``action_mode`` (a continuous action, the inverse of the env's log-symmetric mapping in
  :mod:`agents.rules`; absolute targets; or a preset index);
* :func:`run_episode` plays one episode of the parallel environment with one agent per treatment;
  :func:`run_single_episode` one of the single-agent environment with an agent in the learner's seat
  (agents can also be the single-agent environment's opponents).

Agents are seeded by one rule everywhere: with episode seed ``s``, the ``k``-th agent (``variant_k``)
gets ``s + 1 + k``.  An agent that raises (in ``reset``, ``act`` or ``update``), or returns something
that is not an update of known parameters with finite values, stops the episode with
:class:`AgentError` naming the agent, the day and the problem; with ``run_episode(...,
forfeit=True)`` (tournaments) the episode goes on with the faulty agent holding, and the error is
reported.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Mapping

import numpy as np

from agents import rules
from agents.protocol import Agent, Context, Outcome, Signals, Update
from arena_env.economy.env import MINUTES_PER_DAY, EconomyEnv
from arena_env.economy.guardrails import RUNNING
from arena_env.economy.params import N_PARAMS, PARAM_INDEX, PARAM_NAMES, to_dict




class AgentError(RuntimeError):
    """An agent raised or returned an invalid decision; the message names the agent and the day."""


def agent_seed(seed: int | None, k: int) -> int | None:
    """The seed of the ``k``-th agent in an episode seeded ``seed`` (None stays None)."""
    return None if seed is None else int(seed) + 1 + k


def context_for(env: EconomyEnv, agent: str, observation=None) -> Context:
    """The protocol context of ``agent`` in ``env`` now (after ``reset`` or a ``step``)."""
    v = env._variant_of(agent)
    g = env.guardrails
    nxt = g.next_allowed_update(v)
    signals = Signals.from_payload(env.signals(v), env.signals(0)["metrics"])
    presets = {p.name: to_dict(vec) for p, vec in zip(env.scenario.presets, env.preset_vectors)}
    return Context(
        signals=signals, config=to_dict(env.config[v]), day=env.day,
        delta_limit_pct=g.config.delta_limit_pct, update_interval_min=g.config.update_interval_min,
        minute=float(env.day * MINUTES_PER_DAY), next_allowed_update=nxt if math.isfinite(nxt) else None,
        breaker_open=bool(g.breaker_open[v]), anomaly=bool(g.anomaly[v]), running=g.status == RUNNING,
        presets=presets, vector=observation, tenant=to_dict(env.tenant_vector),
        bounds={k: (int(a), int(b)) for k, a, b in zip(PARAM_NAMES, g.config.lo, g.config.hi)})


def action_for(env: EconomyEnv, agent: str, update: Update | None, who: str | None = None):
    """The environment action that carries ``update`` (None: a hold) for ``agent``; errors name ``who``
    (default ``agent``; :func:`decide` gives ``"variant_0 (UCB1)"``)."""
    v = env._variant_of(agent)
    current = env.config[v].astype(np.float64)
    if update is None:
        if env.action_mode == "discrete":
            return 0
        if env.action_mode == "target":
            return env.target_action(current)
        return np.zeros(N_PARAMS, np.float32) if env.action_mode == "continuous" else current.astype(np.float32)
    if not isinstance(update, Update):
        raise AgentError(f"{who or agent} on day {env.day}: act() must return agents.Update or None, "
                         f"got {type(update).__name__}")
    if not isinstance(update.overrides, Mapping):
        raise AgentError(f"{who or agent} on day {env.day}: Update.overrides must be a mapping of parameter names to "
                         f"numbers, got {type(update.overrides).__name__}")
    target = current.copy()
    touched = np.zeros(N_PARAMS, dtype=bool)
    for key, value in update.overrides.items():
        if key not in PARAM_INDEX:
            raise AgentError(f"{who or agent} on day {env.day}: unknown parameter {key!r} in the update; "
                             f"expected one of {', '.join(PARAM_INDEX)}")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not rules.requestable(value):
            raise AgentError(f"{who or agent} on day {env.day}: parameter {key!r} must be a finite number (within "
                             f"float32 range), got {value!r}")
        target[PARAM_INDEX[key]] = float(value)
        touched[PARAM_INDEX[key]] = True
    if env.action_mode == "absolute":
        return target.astype(np.float32)
    if env.action_mode == "target":
        return env.target_action(np.where(touched, [rules.round_half_away(t) for t in target.tolist()], current))
    if env.action_mode == "continuous":
        pct = env.guardrail_config.delta_limit_pct  # the inverse of the env's mapping, on integer targets
        return np.array([rules.continuous_action(c, rules.round_half_away(t), pct) if k else 0.0
                         for c, t, k in zip(current.tolist(), target.tolist(), touched.tolist())], np.float32)
    for k, vec in enumerate(env.preset_vectors):  # discrete: the update must name a whole preset
        if np.array_equal(vec, target):
            return k + 1
    raise AgentError(f"{who or agent} on day {env.day}: in action_mode='discrete' an update must equal one of the "
                     f"scenario's presets ({', '.join(p.name for p in env.scenario.presets)})")


class DecisionTimeout(AgentError):
    """An agent took longer than the allowed time for one decision."""


class _Alarm(BaseException):
    """Raised inside an agent's call that ran out of time: a BaseException, so that an agent's own
    ``except Exception`` does not swallow it (only an agent that goes on after it is abandoned)."""


def _async_raise(ident: int, exc) -> None:
    """Have ``exc`` raised in thread ``ident`` at its next Python instruction (None: cancel a pending one)."""
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None if exc is None else ctypes.py_object(exc))


class _Caller:
    """The thread that runs the bounded calls of one calling thread: the caller waits up to the timeout,
    so that no agent can hold it longer, whatever the agent does (a bare ``except:`` around a retry loop,
    a long C call)."""

    def __init__(self):
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.current = None  # the job being run
        self.raised = False  # an abandon was issued for it
        self.thread = threading.Thread(target=self._serve, name="arena-agent-call", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                self._run(self.jobs.get())
            except _Alarm:  # an abandon that landed after its call had returned: nothing left to stop
                pass

    def _run(self, job) -> None:
        fn, box, done = job
        with self.lock:
            self.current = job
        try:
            box.append((True, fn()))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
            box.append((False, exc))
        finally:
            with self.lock:
                self.current = None
                if self.raised:  # an abandon not yet delivered is void now
                    self.raised = False
                    _async_raise(self.thread.ident, None)
            done.release()

    def abandon(self, job) -> None:
        """Give up on ``job`` if it is still running: it gets :class:`_Alarm` at its next Python
        instruction (if it goes on regardless, its thread is left to finish alone)."""
        with self.lock:
            if self.current is job:
                self.raised = True
                _async_raise(self.thread.ident, _Alarm)


RETRY_S = 0.05  # how long a timed-out call has to let go of its thread before the thread is abandoned
_callers = threading.local()  # each calling thread (a worker, a Ray actor's thread) has its own _Caller


def call_with_timeout(fn, timeout: float | None, what: str):
    """``fn()``, bounded by ``timeout`` seconds: a slower call raises :class:`DecisionTimeout` with ``what``
    (e.g. "variant_0 (UCB1) on day 3") in the message, at the deadline, also when the agent catches
    everything (a bare ``except:``) or sleeps; a call that returns late counts too.  ``timeout=None``:
    unbounded, ``fn()`` itself.

    The call runs on a thread of its own (one per calling thread, reused) while the caller waits, so it
    works on any thread (a Ray actor with ``max_concurrency > 1``, a thread pool).  At the deadline the
    call gets an exception at its next Python instruction; one that goes on regardless is abandoned: its
    thread finishes alone, and later calls get a new one.  Its result or exception is the call's."""
    if timeout is None:
        return fn()
    caller = getattr(_callers, "caller", None)
    if caller is None or not caller.thread.is_alive():
        caller = _callers.caller = _Caller()
    box: list = []
    done = threading.Lock()  # held until the call is over (the cheapest wait with a timeout)
    done.acquire()
    job = (fn, box, done)
    start = time.perf_counter()
    caller.jobs.put(job)
    if not done.acquire(timeout=timeout):
        caller.abandon(job)
        if not done.acquire(timeout=RETRY_S):  # it did not let go: never use that thread again
            _callers.caller = None
        raise DecisionTimeout(f"{what} exceeded the decision timeout of {timeout:g} s")
    ok, value = box[0]
    if time.perf_counter() - start > timeout:
        raise DecisionTimeout(f"{what} exceeded the decision timeout of {timeout:g} s")
    if not ok:
        raise value
    return value


def decide(env: EconomyEnv, agent: str, policy: Agent, observation=None, timeout: float | None = None,
           latencies: list | None = None):
    """Ask ``policy`` for ``agent``'s decision now and return the environment action.

    ``timeout`` (seconds; any thread, see :func:`call_with_timeout`) bounds one ``act`` call: a slower agent raises
    :class:`DecisionTimeout`.  The call's duration is appended to ``latencies`` when given.
    """
    ctx = context_for(env, agent, observation)
    start = time.perf_counter()
    try:
        update = call_with_timeout(lambda: policy.act(ctx), timeout, f"{agent} ({type(policy).__name__}) on day "
                                                                      f"{env.day}")
    except AgentError:
        raise
    except (Exception, SystemExit) as exc:  # an agent's bug is reported with its name and day, never swallowed
        raise AgentError(f"{agent} ({type(policy).__name__}) raised on day {env.day}: "
                         f"{type(exc).__name__}: {exc}") from exc
    finally:
        if latencies is not None:
            latencies.append(time.perf_counter() - start)
    return action_for(env, agent, update, f"{agent} ({type(policy).__name__})")


def run_episode(env: EconomyEnv, policies: Mapping[str, Agent], seed: int | None = None,
                timeout: float | None = None, latencies: Mapping[str, list] | None = None,
                forfeit: bool = False, observe: Callable[[EconomyEnv], None] | None = None) -> dict:
    """Play one episode with ``policies[agent]`` for every agent (missing agents hold).

    ``timeout`` bounds every decision (see :func:`decide`) and every ``reset`` and ``update`` call;
    ``latencies[agent]`` lists, when given,
    receive the duration of each of that agent's decisions; ``observe(env)`` is called after the reset
    and after every step.

    Faults: an agent whose ``reset``, ``act`` or ``update`` raises, that returns an invalid decision or
    that exceeds ``timeout`` raises :class:`AgentError` (or :class:`DecisionTimeout`).  With
    ``forfeit=True`` the episode goes on instead: the faulty agent holds from then on (its variant
    keeps its last applied config) and its error is reported in ``"failed"``; the episode stops early
    once every agent has failed.

    Returns ``{"rewards": {agent: total}, "days": n, "decisions": {agent: records},
    "step_rewards": {agent: [reward of each step]}, "failed": {agent: error message}}``.
    """
    unknown = sorted(set(policies) - set(env.possible_agents))
    if unknown:
        raise ValueError(f"policies for unknown agents {unknown}; the env's agents are {env.possible_agents}")
    active = dict(policies)
    failed: dict[str, str] = {}

    def guard(agent, call):
        try:
            return call()
        except AgentError as exc:
            if not forfeit:
                raise
            failed[agent] = str(exc)
            active.pop(agent, None)
        return None

    def wrapped(agent, method, fn):
        def call():
            try:
                return call_with_timeout(fn, timeout, f"{agent} ({type(active[agent]).__name__}) in {method}() on "
                                                      f"day {env.day}")
            except AgentError:
                raise
            except (Exception, SystemExit) as exc:
                raise AgentError(f"{agent} ({type(active[agent]).__name__}) raised in {method}() on day {env.day}: "
                                 f"{type(exc).__name__}: {exc}") from exc
        return call

    obs, _ = env.reset(seed=seed)
    for k, a in enumerate(env.possible_agents):
        if a in active:
            guard(a, wrapped(a, "reset", lambda a=a, k=k: active[a].reset(agent_seed(seed, k))))
    if observe is not None:
        observe(env)
    totals = {a: 0.0 for a in env.possible_agents}
    steps: dict[str, list] = {a: [] for a in env.possible_agents}
    decisions: dict[str, list] = {a: [] for a in env.possible_agents}
    while env.agents and (active or not failed):
        actions = {}
        for a in env.agents:
            if a in active:
                act = guard(a, lambda a=a, o=obs[a]: decide(env, a, active[a], o, timeout,
                                                             None if latencies is None else latencies[a]))
                if a in active:
                    actions[a] = act
        obs, rewards, _, _, infos = env.step(actions)
        if observe is not None:
            observe(env)
        for a, r in rewards.items():
            totals[a] += r
            steps[a].append(r)
            decision = infos[a]["decision"]
            if decision is not None:
                decisions[a].append(decision)
            if a in active:
                outcome = Outcome(float(r), decision, env.day)
                guard(a, wrapped(a, "update", lambda a=a, o=outcome: active[a].update(o)))
    return {"rewards": totals, "days": env.day, "decisions": decisions, "step_rewards": steps, "failed": failed}


def run_single_episode(env, policy: Agent, seed: int | None = None) -> dict:
    """Play one episode of the single-agent env (:class:`~arena_env.wrappers.single.EconomySingleEnv`)
    with ``policy`` in the learner's seat; the opponents are the env's own.

    The policy is reset with the learner's seed by the same rule as in :func:`run_episode`.
    Returns ``{"reward": total, "days": n, "decisions": records}``.
    """
    obs, _ = env.reset(seed=seed)
    policy.reset(agent_seed(seed, env.par.possible_agents.index(env.learner)))
    total, decisions, done = 0.0, [], False
    while not done:
        obs, reward, terminated, truncated, info = env.step(decide(env.par, env.learner, policy, obs))
        total += reward
        if info["decision"] is not None:
            decisions.append(info["decision"])
        policy.update(Outcome(float(reward), info["decision"], env.par.day))
        done = terminated or truncated
    return {"reward": total, "days": env.par.day, "decisions": decisions}
