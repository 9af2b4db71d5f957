"""The economy arena as a Stable-Baselines3 ``VecEnv``: many economies in one process, one row per
(economy, learning agent).

``EconomyVecEnv(copies, learners="all", opponents=None)``:

* ``copies``: a list of :class:`~arena_env.economy.env.EconomyEnv` keyword dicts, one per economy
  (e.g. ``[{"scenario": "default"}] * 4``, or different scenarios: one policy trained across them);
  every row must have the same observation and action spaces.
* ``learners``: ``"all"`` (every treatment agent of every economy is a row: parameter sharing,
  self-play in shared experiments) or a list of agent names, each once (e.g. ``["variant_0"]``: one
  learner per economy); the other treatments are driven by ``opponents`` (the forms of
  :class:`~arena_env.wrappers.single.EconomySingleEnv`: a registered agent's name such as
  ``"random"``, a ``{"agent", "params"}`` spec, an agent object, a callable, or None to hold),
  validated at construction; an agent object plays one seat of one economy only.

Rows are ordered economy by economy, agents in ``possible_agents`` order.  ``num_envs`` is the number
of rows.  The SB3 contract, exactly:

* ``step_wait`` returns ``(obs, rewards, dones, infos)`` with ``dones = terminated or truncated``;
  at the end of an economy's episode every row of it gets ``infos[i]["terminal_observation"]`` (the
  last observation) and ``infos[i]["TimeLimit.truncated"]`` (True when the episode ended by
  ``max_days`` rather than by the experiment completing), and the economy is reset at once
  (autoreset): the returned observation is the first of the next episode.
* ``seed(s)`` sets the seeds used at the next ``reset()``: row ``i`` gets ``s + i`` (SB3's rule) and
  economy ``c`` is reset with the seed of its first row; its later episodes follow from that seed
  (:meth:`EconomyEnv.reset` derives episode ``k``'s seed from it), so ``PPO(seed=...)`` fixes every
  episode.  Opponents in economy ``c`` are reset at every episode with the rule of
  :func:`arena_env.wrappers.agents.agent_seed` applied to the episode's seed.
* ``reset()`` returns the observations of every row (``reset_infos`` holds the infos);
  ``close()`` closes every economy and may be called twice.

``workers`` (default 1) steps the economies on several cores: the copies are split into ``workers``
contiguous shards of (nearly) equal size; the first is stepped in this process, each other one in a
worker process of its own (started with ``spawn``), all at the same time, and the rows are put back
in order.  Economies do not share state, so the results are the same, bit for bit, whatever the
number of workers.  With workers, opponents must be given by name or ``{"agent", "params"}`` spec
(each worker builds its own), ``envs[c]`` of a copy in a worker is a proxy that fetches attributes
and calls methods there, and an exception in a worker is raised here with its traceback.

Rewards are the agents' rewards in the parallel env (money per enrolled user, lift over the
control); infos are the agents' infos.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import traceback
from collections.abc import Mapping, Sequence

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from arena_env.economy.env import EconomyEnv
from arena_env.wrappers.single import _is_spec, _opponent, check_one_seat_each, reset_opponents, step_with_opponents


def _reset_one(env: EconomyEnv, opponents: dict, seed, options) -> tuple[dict, dict]:
    """Reset one economy and its opponents; returns its observations and infos."""
    obs, infos = env.reset(seed=seed, options=options)
    reset_opponents(env, opponents, env.episode_seed)
    return obs, infos



def _shard(conn, copies: list, opponents: list) -> None:
    """A worker process: the economies ``copies`` (keyword dicts) with their opponent specs, stepped on
    request.  Every reply is ``("ok", payload)`` or ``("error", traceback)``.  Ctrl-C is left to the main
    process (it saves a checkpoint, then closes the workers); a worker whose main process is gone
    (even killed with ``kill -9``) sees its pipe close or break and exits quietly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _serve(conn, copies, opponents)
    except (EOFError, OSError):  # the main process is gone: a broken pipe is the end, not an error
        pass
    finally:
        with contextlib.suppress(OSError):
            conn.close()


def _serve(conn, copies: list, opponents: list) -> None:
    """The loop of :func:`_shard`; returns on ``close`` or when the pipe closes (an ``OSError`` from a
    broken pipe passes to the caller)."""
    envs: list[EconomyEnv] = []
    try:
        envs = [EconomyEnv(**dict(kw)) for kw in copies]
        opp = [{a: _opponent(a, spec) for a, spec in o.items()} for o in opponents]
        obs: list[dict] = [{} for _ in envs]
        infos: list[dict] = [{} for _ in envs]
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ok", None))
    while True:
        try:
            cmd, arg = conn.recv()
        except (EOFError, KeyboardInterrupt):
            break
        try:
            if cmd == "step":
                out = {}
                for c, act in arg.items():
                    out[c] = step_with_opponents(envs[c], opp[c], act, obs[c], infos[c])
                    obs[c], infos[c] = out[c][0], out[c][4]
            elif cmd == "reset":
                out = {}
                for c, (seed, options) in arg.items():
                    obs[c], infos[c] = out[c] = _reset_one(envs[c], opp[c], seed, options)
            elif cmd == "getattr":
                try:
                    value = getattr(envs[arg[0]], arg[1])
                    out = ("method", None) if callable(value) else ("value", value)
                except AttributeError as e:
                    out = ("missing", str(e))
            elif cmd == "setattr":
                out = setattr(envs[arg[0]], arg[1], arg[2])
            elif cmd == "call":
                c, name, args, kwargs = arg
                out = getattr(envs[c], name)(*args, **kwargs)
            elif cmd == "close":
                for env in envs:
                    env.close()
                conn.send(("ok", None))
                break
            else:
                raise ValueError(f"unknown command {cmd!r}")
            reply = ("ok", out)
        except Exception:
            reply = ("error", traceback.format_exc())
        try:
            conn.send(reply)
        except OSError:
            raise
        except Exception:  # a result that cannot be pickled
            conn.send(("error", traceback.format_exc()))


class _Worker:
    """The main process's end of one worker: its process, its pipe and its copies (global indices)."""

    def __init__(self, ctx, copies: list[int], kwargs: list, opponents: list):
        self.copies = copies
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_shard, args=(child, kwargs, opponents), daemon=True,
                                   name=f"arena-vec-copies-{copies[0]}-{copies[-1]}")
        self.process.start()
        child.close()

    def send(self, cmd: str, arg=None) -> None:
        self.conn.send((cmd, arg))

    def recv(self):
        try:
            status, payload = self.conn.recv()
        except (EOFError, OSError):
            raise RuntimeError(f"the worker of copies {self.copies} exited (exit code "
                               f"{self.process.exitcode}); its economies are lost") from None
        if status != "ok":
            raise RuntimeError(f"the worker of copies {self.copies} failed:\n{payload}")
        return payload

    def call(self, cmd: str, arg=None):
        self.send(cmd, arg)
        return self.recv()


class _RemoteEnv:
    """``envs[c]`` of a copy stepped in a worker: attributes are fetched from there, methods called
    there (arguments and results are pickled)."""

    def __init__(self, worker: _Worker, index: int):
        object.__setattr__(self, "_worker", worker)
        object.__setattr__(self, "_index", index)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        kind, value = self._worker.call("getattr", (self._index, name))
        if kind == "missing":
            raise AttributeError(value)
        if kind == "value":
            return value
        return lambda *args, **kwargs: self._worker.call("call", (self._index, name, args, kwargs))

    def __setattr__(self, name: str, value) -> None:
        self._worker.call("setattr", (self._index, name, value))


class EconomyVecEnv(VecEnv):
    """Many economies, one row per (economy, learning agent); see the module docstring."""

    def __init__(self, copies: Sequence[Mapping], learners="all", opponents=None, workers: int = 1):
        if isinstance(copies, Mapping) or not isinstance(copies, Sequence) or not copies:
            raise ValueError(f"copies: a non-empty list of EconomyEnv keyword dicts, got {copies!r}")
        if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or not 1 <= workers <= len(copies):
            raise ValueError(f"workers: an integer from 1 to the number of copies ({len(copies)}), got {workers!r}")
        self.envs: list = []
        self._workers: list[_Worker] = []
        specs: list[dict] = []
        try:
            for i, kw in enumerate(copies):
                if not isinstance(kw, Mapping):
                    raise ValueError(f"copies[{i}]: a dict of EconomyEnv keywords, got {kw!r}")
                self.envs.append(EconomyEnv(**dict(kw)))
            self.rows: list[tuple[int, str]] = []
            self.opponents: list[dict] = []
            for c, env in enumerate(self.envs):
                mine = list(env.possible_agents) if learners == "all" else list(learners)
                bad = [a for a in mine if a not in env.possible_agents]
                if isinstance(learners, str) and learners != "all" or bad or not mine:
                    raise ValueError(f"learners: 'all' or a list of agents of copies[{c}] "
                                     f"({', '.join(env.possible_agents)}), got {learners!r}")
                twice = sorted({a for a in mine if mine.count(a) > 1})
                if twice:
                    raise ValueError(f"learners: {', '.join(twice)} listed twice; list each agent once (two rows "
                                     "would act for one seat, and one of their actions would be lost)")
                self.rows += [(c, a) for a in mine]
                others = [a for a in env.possible_agents if a not in mine]
                spec = opponents
                if spec is None or not isinstance(spec, Mapping) or _is_spec(spec):
                    spec = {a: spec for a in others}
                unknown = [a for a in spec if a not in others]
                if unknown:
                    raise ValueError(f"opponents: {sorted(map(str, unknown))} are not opponents in copies[{c}] "
                                     f"(opponents: {', '.join(others) or 'none'})")
                self.opponents.append({a: _opponent(a, spec.get(a)) for a in others})
                specs.append({a: spec.get(a) for a in others})
            check_one_seat_each([(f"copies[{c}] {a}", pol) for c, o in enumerate(self.opponents)
                                 for a, pol in o.items()])
            c0, a0 = self.rows[0]
            obs_space = self.envs[c0].observation_space(a0)
            act_space = self.envs[c0].action_space(a0)
            for c, a in self.rows[1:]:
                if self.envs[c].observation_space(a) != obs_space or self.envs[c].action_space(a) != act_space:
                    raise ValueError(f"copies[{c}] {a}: its observation or action space differs from copies[{c0}] "
                                     f"{a0}'s; every row needs the same spaces (same action_mode and number of "
                                     "presets)")
            if workers > 1:
                self._start_workers(copies, specs, int(workers))
        except BaseException:
            self._close_all()
            raise
        super().__init__(len(self.rows), obs_space, act_space)
        self._obs = [dict() for _ in self.envs]
        self._infos = [dict() for _ in self.envs]
        self._actions = None
        self._closed = False

    def _start_workers(self, copies: Sequence[Mapping], specs: list[dict], workers: int) -> None:
        """Hand the copies of shards 1.. to worker processes (their envs here become proxies)."""
        bad = [(c, a) for c, o in enumerate(specs) for a, sp in o.items()
               if not (sp is None or isinstance(sp, str) or _is_spec(sp))]
        if bad:
            c, a = bad[0]
            raise ValueError(f"opponents of copies[{c}] {a}: with workers > 1 give a registered agent name or an "
                             "{agent, params} spec (each worker builds its own); objects and callables cannot be "
                             "sent to a worker process")
        shards = [list(map(int, x)) for x in np.array_split(np.arange(len(copies)), workers)]
        ctx = multiprocessing.get_context("spawn")
        for shard in shards[1:]:
            self._workers.append(_Worker(ctx, shard, [dict(copies[c]) for c in shard], [specs[c] for c in shard]))
        for w in self._workers:
            w.recv()  # built (or the worker's error)
            for k, c in enumerate(w.copies):
                self.envs[c].close()
                self.envs[c] = _RemoteEnv(w, k)
                self.opponents[c] = {}

    # --- the SB3 contract ---------------------------------------------------------------------------

    def _reset_copies(self, todo: dict[int, tuple]) -> None:
        """Reset the copies ``{c: (seed, options)}``: the workers' at the same time as the local ones."""
        asked = []
        for w in self._workers:
            mine = {k: todo[c] for k, c in enumerate(w.copies) if c in todo}
            if mine:
                w.send("reset", mine)
                asked.append(w)
        for c, (seed, options) in todo.items():
            if not isinstance(self.envs[c], _RemoteEnv):
                self._obs[c], self._infos[c] = _reset_one(self.envs[c], self.opponents[c], seed, options)
        for w in asked:
            for k, (o, inf) in w.recv().items():
                self._obs[w.copies[k]], self._infos[w.copies[k]] = o, inf

    def reset(self):
        first = {}
        for i, (c, _) in enumerate(self.rows):
            first.setdefault(c, i)
        self._reset_copies({c: (self._seeds[i], self._options[i] or None) for c, i in first.items()})
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [self._infos[c][a] for c, a in self.rows]
        return np.stack([self._obs[c][a] for c, a in self.rows])

    def step_async(self, actions) -> None:
        self._actions = actions

    def step_wait(self):
        actions = self._actions
        if actions is None:
            raise RuntimeError("step_wait() without step_async(actions)")
        self._actions = None
        per_copy: list[dict] = [{} for _ in self.envs]
        for i, (c, a) in enumerate(self.rows):
            per_copy[c][a] = actions[i]
        obs = [None] * self.num_envs
        rewards = np.zeros(self.num_envs, dtype=np.float32)
        dones = np.zeros(self.num_envs, dtype=bool)
        infos: list[dict] = [{} for _ in range(self.num_envs)]
        results = {}
        for w in self._workers:  # the workers step their economies while this process steps its own
            w.send("step", {k: per_copy[c] for k, c in enumerate(w.copies)})
        for c, env in enumerate(self.envs):
            if not isinstance(env, _RemoteEnv):
                results[c] = step_with_opponents(env, self.opponents[c], per_copy[c], self._obs[c], self._infos[c])
        for w in self._workers:
            for k, out in w.recv().items():
                results[w.copies[k]] = out
        for c, (o, _, _, _, inf) in results.items():
            self._obs[c], self._infos[c] = o, inf
        ended = set()
        for i, (c, a) in enumerate(self.rows):
            o, r, term, trunc, inf = results[c]
            rewards[i] = r[a]
            dones[i] = term[a] or trunc[a]
            infos[i] = dict(inf[a])
            obs[i] = o[a]
            if dones[i]:
                infos[i]["terminal_observation"] = o[a]
                infos[i]["TimeLimit.truncated"] = bool(trunc[a] and not term[a])
                ended.add(c)
        if ended:  # autoreset: the next episode follows from the copy's seed
            self._reset_copies({c: (None, None) for c in sorted(ended)})
        for i, (c, a) in enumerate(self.rows):
            if c in ended:
                obs[i] = self._obs[c][a]
        return np.stack(obs), rewards, dones, infos

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._close_all()

    def _close_all(self) -> None:
        """Close the local economies and stop the workers (each is asked, then terminated if it hangs)."""
        for env in self.envs:
            if not isinstance(env, _RemoteEnv):
                env.close()
        for w in self._workers:
            try:
                if w.process.is_alive():
                    w.call("close")
            except (RuntimeError, OSError, BrokenPipeError):
                pass
            w.process.join(timeout=10)
            if w.process.is_alive():
                w.process.terminate()
                w.process.join(timeout=5)
            w.conn.close()
        self._workers = []

    # --- attribute access (per row: the row's economy) ------------------------------------------------

    def _indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def get_attr(self, attr_name: str, indices=None) -> list:
        return [getattr(self.envs[self.rows[i][0]], attr_name) for i in self._indices(indices)]

    def set_attr(self, attr_name: str, value, indices=None) -> None:
        for i in self._indices(indices):
            setattr(self.envs[self.rows[i][0]], attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list:
        return [getattr(self.envs[self.rows[i][0]], method_name)(*method_args, **method_kwargs)
                for i in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._indices(indices)]
