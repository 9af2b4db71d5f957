"""Training on Ray RLlib (new API stack): ``python train.py --config configs/rllib_ppo.yaml``.

A config with ``framework: rllib`` (docs/training.md, docs/scaling.md).  Top-level keys (any other is
an error naming the file and the key):

* ``framework: rllib``; ``algo``: an RLlib algorithm (``PPO``, ``APPO``, ``IMPALA``, ``SAC``, ``DQN``...).
* ``run_name``, ``seed`` (0 .. 999,999), ``total_timesteps`` (agent steps: rows x steps, as for SB3).
* ``env``: :class:`~arena_env.economy.env.EconomyEnv` keywords (one scenario).
* ``policies``: ``shared`` (one policy for every treatment variant: parameter sharing, self-play) or
  ``independent`` (one policy per variant, ``variant_0``, ``variant_1``, ...).
* ``ray``: ``address`` (null: a local Ray of ``num_cpus`` CPUs; ``auto`` or ``host:6379``: a running
  cluster, :mod:`arena_env.distributed`) and ``num_cpus``.
* ``threads``: ``torch`` and ``numba`` thread counts (default 1 and 1).
* ``rllib``: ``AlgorithmConfig`` methods and their keyword arguments, passed verbatim (``training:
  {lr: ...}``, ``env_runners: {num_env_runners: 1}``, ``rl_module: {model_config: {...}}``), each
  checked against the method's signature.  Set by train.py, so refused: ``environment``,
  ``multi_agent``, ``framework``, ``debugging.seed`` and ``rl_module.rl_module_spec``.
* ``checkpoint``: ``every`` (training iterations between checkpoints) and ``keep``.
* ``eval``: as for SB3 (:mod:`arena_env.training.config`): the final tournament on held-out seeds.

Outputs in ``runs/<run_name>/``: ``config.yaml``, ``policy/`` (the final RLlib checkpoint, with
``arena.json``; it enters tournaments as ``{checkpoint: runs/<run_name>/policy}``), ``checkpoints/iter_<n>/``,
``progress.csv`` (one row per iteration), ``rllib/`` (RLlib's own result logs), ``ray/`` (Ray's session
logs), ``summary.json`` and the evaluation (``leaderboard.md``, ``report.html``).  ``--resume`` restores
the last checkpoint (or the final ``policy/``, when a finished run is extended and it is newer) and trains on
to ``total_timesteps``.

Determinism: the same config and seed give the same weights (one torch thread, any ``num_env_runners``:
each env copy is seeded from the seed and its runner's index, and the agents keep the env's order, see
:mod:`arena_env.wrappers.rllib_env`), provided the process runs with ``PYTHONHASHSEED=0``: RLlib
iterates sets of agent ids internally, so its batches follow the string hash seed.  ``train.py``
re-executes an RLlib run with it (cluster jobs get it through :func:`arena_env.distributed.job_runtime_env`);
a program of your own calling :func:`train` should start with it.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import inspect
import json
import logging
import os
import shutil
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.learners import META_NAME  # arena.json: how a policy was trained, read by its agent

from .config import _EVAL, TrainConfigError, _int, _section, check_argument, default_eval_agents, env_error, run_keys

ENV_NAME = "arena_economy"
SHARED = "shared"
POLICIES = ("shared", "independent")
_TOP = {"framework", "algo", "run_name", "seed", "total_timesteps", "env", "policies", "ray", "threads", "rllib",
        "checkpoint", "eval"}
_RAY = {"address": None, "num_cpus": 2}
_THREADS = {"torch": 1, "numba": 1}
_CHECKPOINT = {"every": 10, "keep": 3}
_RESERVED = {"environment": None, "multi_agent": None, "framework": None, "api_stack": None,
             "debugging": {"seed"}, "rl_module": {"rl_module_spec"}}
CSV_FIELDS = ("iteration", "timesteps", "episodes", "episode_return_mean", "seconds")


def is_rllib_config(path: str | os.PathLike) -> bool:
    """Whether the training YAML at ``path`` asks for RLlib (``framework: rllib``)."""
    from arena_env.economy.scenario import read_yaml

    data = read_yaml(path, TrainConfigError)
    return isinstance(data, Mapping) and data.get("framework") == "rllib"


@dataclass(frozen=True)
class RLlibConfig:
    """A validated RLlib training config (see the module docstring)."""

    algo: str
    run_name: str
    seed: int
    total_timesteps: int
    env: Mapping[str, Any]
    policies: str
    ray: Mapping[str, Any]
    threads: Mapping[str, int]
    rllib: Mapping[str, Mapping[str, Any]]
    checkpoint: Mapping[str, int]
    eval: Mapping[str, Any]
    source: str = "<dict>"
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def scenarios(self) -> tuple[str, ...]:
        return (str(self.env.get("scenario", "default")),)

    def env_kwargs(self) -> dict:
        """The :class:`EconomyEnv` keywords of every economy."""
        kw = copy.deepcopy(dict(self.env))
        kw.setdefault("info_level", "light")
        return {**kw, "num_threads": self.threads["numba"]}

    def env_config(self) -> dict:
        """RLlib's ``env_config``: the env keywords and the seed (:mod:`arena_env.wrappers.rllib_env`)."""
        return {**self.env_kwargs(), "seed": self.seed}

    def to_dict(self) -> dict:
        return {"framework": "rllib", "algo": self.algo, "run_name": self.run_name, "seed": self.seed,
                "total_timesteps": self.total_timesteps, "env": dict(self.env), "policies": self.policies,
                "ray": dict(self.ray), "threads": dict(self.threads), "rllib": copy.deepcopy(dict(self.rllib)),
                "checkpoint": dict(self.checkpoint), "eval": copy.deepcopy(dict(self.eval))}


def algorithm_config(name: str):
    """A fresh ``AlgorithmConfig`` of the RLlib algorithm ``name`` (``PPO``, ``APPO``, ...)."""
    from ray.rllib.algorithms.registry import ALGORITHMS

    if str(name) not in ALGORITHMS:
        raise ValueError(f"unknown RLlib algorithm {name!r}; e.g. {', '.join(sorted(ALGORITHMS)[:12])}")
    cls, config = ALGORITHMS[str(name)]()
    return config


def resolve(path: str | os.PathLike, sets=()) -> RLlibConfig:
    """Read an RLlib training config, apply ``--set`` overrides, validate."""
    from arena_env.economy.scenario import read_yaml

    from .config import apply_sets

    data = read_yaml(path, TrainConfigError)
    data.setdefault("run_name", Path(path).stem)
    return from_dict(apply_sets(data, sets), str(path))


def from_dict(data: Mapping[str, Any], src: str = "<dict>") -> RLlibConfig:
    """Validate an RLlib training config given as a mapping; ``src`` names it in errors."""

    def err(key, msg):
        return TrainConfigError(f"{src}: {key}: {msg}")

    for k in data:
        if k not in _TOP:
            raise err(k, f"unknown key; allowed keys: {', '.join(sorted(_TOP))}")
    if data.get("framework") != "rllib":
        raise err("framework", f"'rllib' for this format, got {data.get('framework')!r}")
    from arena_env.distributed import RayUnavailable, import_ray

    try:
        import_ray()
    except RayUnavailable as exc:
        raise err("framework", f"rllib: {exc}") from None
    try:
        config = algorithm_config(data.get("algo", "PPO"))
    except ValueError as exc:
        raise err("algo", str(exc)) from None
    run_name, seed, total = run_keys(data, err)
    env = data.get("env") or {}
    if not isinstance(env, Mapping):
        raise err("env", f"a mapping of EconomyEnv keywords, got {env!r}")
    env = copy.deepcopy(dict(env))
    for k in ("num_threads", "render_mode", "seed"):
        if k in env:
            raise err(f"env.{k}", "is set by train.py (threads.numba, seed); remove it")
    if not isinstance(env.get("scenario", "default"), str):
        raise err("env.scenario", f"one scenario name or path, got {env.get('scenario')!r}")
    policies = data.get("policies", SHARED)
    if policies not in POLICIES:
        raise err("policies", f"one of {', '.join(POLICIES)}, got {policies!r}")
    ray_cfg = _section(data, "ray", _RAY, err)
    if ray_cfg["address"] is not None and not isinstance(ray_cfg["address"], str):
        raise err("ray.address", f"null (a local Ray), 'auto' or host:port, got {ray_cfg['address']!r}")
    if not _int(ray_cfg["num_cpus"], 1):
        raise err("ray.num_cpus", f"a positive integer, got {ray_cfg['num_cpus']!r}")
    threads = _section(data, "threads", _THREADS, err)
    for k, v in threads.items():
        if not _int(v, 1):
            raise err(f"threads.{k}", f"a positive integer, got {v!r}")
    rllib = data.get("rllib") or {}
    if not isinstance(rllib, Mapping):
        raise err("rllib", f"a mapping of AlgorithmConfig methods to keyword arguments, got {rllib!r}")
    for method, kwargs in rllib.items():
        where = f"rllib.{method}"
        fn = getattr(config, str(method), None)
        if str(method).startswith("_") or not callable(fn):
            raise err(where, f"not a method of {type(config).__name__} (e.g. training, env_runners, rl_module, "
                             "learners, evaluation)")
        if not isinstance(kwargs, Mapping):
            raise err(where, f"a mapping of keyword arguments, got {kwargs!r}")
        reserved = _RESERVED.get(str(method), ())
        if str(method) in _RESERVED and reserved is None:
            raise err(where, "is set by train.py (env, policies, framework); remove it")
        params = _arguments(type(config), str(method))
        for k, v in kwargs.items():
            if k in (reserved or ()):
                raise err(f"{where}.{k}", "is set by train.py (seed, policies); remove it")
            if k not in params:
                raise err(f"{where}.{k}", f"not an argument of {type(config).__name__}.{method}; arguments: "
                                          f"{', '.join(params)}")
            check_argument(v, params[k], f"{type(config).__name__}.{method}",
                           lambda msg, key=f"{where}.{k}": err(key, msg))
    ckpt = _section(data, "checkpoint", _CHECKPOINT, err)
    for k in ("every", "keep"):
        if not _int(ckpt[k], 1):
            raise err(f"checkpoint.{k}", f"a positive integer, got {ckpt[k]!r}")
    ev = _section(data, "eval", _EVAL, err)
    if ev["scenarios"] is None:
        ev["scenarios"] = [str(env.get("scenario", "default"))]
    if isinstance(ev["scenarios"], str):
        ev["scenarios"] = [ev["scenarios"]]
    if ev["agents"] is None:
        ev["agents"] = default_eval_agents()
    cfg = RLlibConfig(str(data.get("algo", "PPO")), run_name, seed, total, env, policies, ray_cfg, threads,
                      copy.deepcopy(dict(rllib)), ckpt, ev, src, copy.deepcopy(dict(data)))
    _check_env(cfg, err)
    return cfg


def _arguments(cls, method: str) -> dict[str, Any]:
    """The keyword arguments ``cls.method`` accepts, with their type hints, following ``**kwargs`` up the
    class hierarchy (``PPOConfig.training(**kwargs)`` passes on to ``AlgorithmConfig.training``)."""
    names: dict[str, Any] = {}
    for klass in cls.__mro__:
        fn = klass.__dict__.get(method)
        if fn is None:
            continue
        params = inspect.signature(fn).parameters
        for n, p in params.items():
            if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and n not in names:
                names[n] = p.annotation
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            break
    return names


def _check_env(cfg: RLlibConfig, err) -> None:
    from arena_env.economy.env import EconomyEnv
    from arena_env.economy.scenario import ScenarioError

    try:
        EconomyEnv(**cfg.env_kwargs()).close()
    except (ScenarioError, ValueError, TypeError) as exc:
        raise env_error(err, exc, cfg.env, cfg.scenarios[0], name_scenario=False) from None


# ------------------------------------------------------------------------------------------------ training
def module_ids(cfg: RLlibConfig, agents: list[str]) -> list[str]:
    return [SHARED] if cfg.policies == SHARED else list(agents)


def build_config(cfg: RLlibConfig):
    """The ``AlgorithmConfig``: the config's ``rllib`` methods, then what train.py sets (env, policies, seed)."""
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.tune.registry import register_env

    from arena_env.economy.env import EconomyEnv
    from arena_env.wrappers.rllib_env import EconomyMultiAgentEnv

    register_env(ENV_NAME, EconomyMultiAgentEnv)
    probe = EconomyEnv(**cfg.env_kwargs())
    agents = list(probe.possible_agents)
    probe.close()
    config = algorithm_config(cfg.algo)
    for method, kwargs in cfg.rllib.items():
        config = getattr(config, method)(**copy.deepcopy(dict(kwargs)))
    ids = module_ids(cfg, agents)
    shared = cfg.policies == SHARED
    config = (config.environment(ENV_NAME, env_config=cfg.env_config())
              .framework("torch")
              .multi_agent(policies=set(ids), policy_mapping_fn=_shared_mapping if shared else _own_mapping)
              .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={i: RLModuleSpec() for i in ids}))
              .debugging(seed=cfg.seed))
    return config, agents


def _shared_mapping(agent_id, episode, **kwargs):
    return SHARED


def _own_mapping(agent_id, episode, **kwargs):
    return agent_id


@contextlib.contextmanager
def _results_dir(path: Path):
    """RLlib's result logs in ``path`` instead of ``~/ray_results`` (Ray reads the default at import)."""
    import ray.tune.trainable.trainable as trainable

    path.mkdir(parents=True, exist_ok=True)
    saved = trainable.DEFAULT_STORAGE_PATH
    trainable.DEFAULT_STORAGE_PATH = str(path)
    try:
        yield
    finally:
        trainable.DEFAULT_STORAGE_PATH = saved


def checkpoints(directory: Path) -> list[int]:
    """Iterations of the complete checkpoints in ``directory`` (``iter_<n>``), ascending."""
    if not directory.is_dir():
        return []
    return sorted(int(p.name[5:]) for p in directory.iterdir()
                  if p.name.startswith("iter_") and p.name[5:].isdigit() and (p / META_NAME).exists())


def _save(algo, path: Path, meta: dict) -> None:
    """An RLlib checkpoint with ``arena.json``, written to a temporary directory and renamed: complete or absent."""
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    algo.save_to_path(str(tmp.resolve()))
    (tmp / META_NAME).write_text(json.dumps(meta, sort_keys=True))
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)


def agent_steps(result: Mapping) -> int:
    """Agent steps sampled so far (rows x steps), from an ``Algorithm.train()`` result."""
    runners = result.get("env_runners", {})
    per = runners.get("num_agent_steps_sampled_lifetime")
    if isinstance(per, Mapping):
        return int(sum(per.values()))
    return int(runners.get("num_env_steps_sampled_lifetime", 0))


def train(cfg: RLlibConfig, out: str | os.PathLike, resume: bool = False, progress: bool = True,
          evaluate: bool | None = None) -> dict:
    """Train (or resume) the RLlib run of ``cfg`` in ``out``; returns a summary.  A new run builds its
    algorithm before it claims ``out`` with ``config.yaml``, so a config that RLlib refuses is a
    :class:`TrainConfigError` and leaves no run behind.  Resuming, a finished training (``policy/`` saved
    with ``total_timesteps`` reached) is kept and only the evaluation runs."""
    from .run import check_run_dir, kept_summary, write_config, write_summary

    out = Path(out)
    check_run_dir(out, resume)
    if resume:
        write_config(out, cfg.to_dict())
    summary: dict[str, Any] = {"run_dir": str(out), "framework": "rllib", "algo": cfg.algo}
    steps = _policy_steps(out) if resume else None
    if steps is None or steps < cfg.total_timesteps:
        summary.update(_learn(cfg, out, resume, progress))
    else:
        summary.update({"resumed_from_iteration": None, **kept_summary(out, steps, (
            "resumed_from_iteration", "steps_per_s", "timesteps", "iterations"))})
    summary["model"] = str(out / "policy")
    write_summary(out, summary)
    if cfg.eval["enabled"] if evaluate is None else evaluate:
        from .run import evaluate_policy

        try:
            summary["leaderboard"] = evaluate_policy(cfg, out, progress=progress, model=out / "policy")
        except KeyboardInterrupt:
            print(f"\ninterrupted during the evaluation; the trained policy is saved ({out / 'policy'}) and the "
                  f"evaluation's finished cells ({out / 'cells.jsonl'}); finish with: python train.py --resume "
                  f"--out {out}", file=sys.stderr)
            raise
        write_summary(out, summary)
    return summary


def _learn(cfg: RLlibConfig, out: Path, resume: bool, progress: bool) -> dict:
    """Build the algorithm (restored from the newest checkpoint when resuming), claim a new run's
    directory, train up to ``total_timesteps`` and save ``policy/``; returns the summary's training fields."""
    import torch

    from .run import write_config

    torch.set_num_threads(cfg.threads["torch"])
    ckdir = out / "checkpoints"
    done = checkpoints(ckdir) if resume else []
    start, source = (done[-1], ckdir / f"iter_{done[-1]}") if done else (0, None)
    final = _policy_meta(out) if resume else {}
    if int(final.get("iteration", 0)) > start:  # a finished training extended: on from its final policy
        start, source = int(final["iteration"]), out / "policy"
    summary: dict[str, Any] = {"resumed_from_iteration": start if source is not None else None}
    from arena_env.distributed import ray_session

    for name in ("ray._common.deprecation", "ray.rllib.algorithms.algorithm_config", "ray.tune.utils.util"):
        logging.getLogger(name).setLevel(logging.ERROR)  # RLlib's notes about its own internals, not about the run
    with ray_session(cfg.ray["address"], num_cpus=None if cfg.ray["address"] else cfg.ray["num_cpus"],
                     run_dir=out), _results_dir(out / "rllib"):
        config, agents = build_config(cfg)
        meta = {"framework": "rllib", "algo": cfg.algo, "action_mode": cfg.env.get("action_mode", "continuous"),
                "policies": cfg.policies, "modules": module_ids(cfg, agents), "scenarios": list(cfg.scenarios),
                "seed": cfg.seed, "run_name": cfg.run_name}
        try:
            with warnings.catch_warnings():  # RLlib registers its env with Gymnasium again for every algorithm built
                warnings.filterwarnings("ignore", r".*Overriding environment rllib-multi-agent-env-v0", UserWarning)
                algo = config.build_algo()
        except (ValueError, TypeError, KeyError, AssertionError) as exc:
            if resume:
                raise
            raise TrainConfigError(f"{cfg.source}: rllib: refused by RLlib {cfg.algo}: {exc}") from None
        try:
            if not resume:
                write_config(out, cfg.to_dict())  # the run is claimed once RLlib has built the algorithm
            if source is not None:
                algo.restore_from_path(str(source.resolve()))
            steps = int(json.loads((source / META_NAME).read_text()).get("timesteps", 0)) if source is not None else 0
            t0, n0 = time.monotonic(), steps
            log = out / "progress.csv"
            if resume and log.exists():  # the iterations after the checkpoint are trained again
                keep_to = start
                with open(log, newline="", encoding="utf-8") as fh:
                    rows = [r for r in csv.reader(fh)][1:]
                with open(log, "w", newline="", encoding="utf-8") as fh:
                    w = csv.writer(fh)
                    w.writerow(CSV_FIELDS)
                    w.writerows(r for r in rows if r and r[0].isdigit() and int(r[0]) <= keep_to)
            else:
                with open(log, "w", newline="", encoding="utf-8") as fh:
                    csv.writer(fh).writerow(CSV_FIELDS)
            it = start
            while steps < cfg.total_timesteps:
                try:
                    result = algo.train()
                except KeyboardInterrupt:  # RLlib's runners are interrupted too: no safe state to save now
                    print(f"\n{_interrupted(ckdir, it)}; continue with: python train.py --resume --out {out}",
                          file=sys.stderr)
                    raise
                it += 1
                steps = agent_steps(result)
                runners = result.get("env_runners", {})
                row = [it, steps, int(runners.get("num_episodes_lifetime", 0)),
                       runners.get("episode_return_mean", float("nan")), round(time.monotonic() - t0, 3)]
                with open(log, "a", newline="", encoding="utf-8") as fh:
                    csv.writer(fh).writerow(row)
                if progress:
                    print(f"\riteration {it}: {steps:,}/{cfg.total_timesteps:,} agent steps, episode return "
                          f"{row[3]:.3f}", end="", file=sys.stderr, flush=True)
                if it % cfg.checkpoint["every"] == 0:
                    _save(algo, ckdir / f"iter_{it}", {**meta, "iteration": it, "timesteps": steps})
                    for old in checkpoints(ckdir)[:-cfg.checkpoint["keep"]]:
                        shutil.rmtree(ckdir / f"iter_{old}", ignore_errors=True)
            if progress:
                print(file=sys.stderr)
            summary["steps_per_s"] = (steps - n0) / max(time.monotonic() - t0, 1e-9)
            summary["timesteps"] = steps
            summary["iterations"] = it
            _save(algo, out / "policy", {**meta, "iteration": it, "timesteps": steps})  # last: training is done
        finally:
            algo.stop()
    return summary


def _interrupted(ckdir: Path, it: int) -> str:
    """What a Ctrl-C during iteration ``it + 1`` leaves: the newest checkpoint, from which ``--resume`` goes on."""
    done = checkpoints(ckdir)
    kept = (f"the newest checkpoint is iteration {done[-1]} ({ckdir / f'iter_{done[-1]}'})" if done else
            "no checkpoint yet (one is saved every checkpoint.every iterations), so a resume starts over")
    return f"interrupted during iteration {it + 1}; {kept}"


def _policy_meta(out: Path) -> dict:
    """``arena.json`` of the run's final ``policy/`` (empty: not saved yet)."""
    try:
        meta = json.loads((out / "policy" / META_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _policy_steps(out: Path) -> int | None:
    """Agent steps of the run's final ``policy/`` (None: not saved yet)."""
    try:
        return int(_policy_meta(out)["timesteps"])
    except (KeyError, ValueError, TypeError):
        return None


def resume_config(out: str | os.PathLike, total_timesteps: int | None = None) -> RLlibConfig:
    """The saved config of the RLlib run in ``out`` (``total_timesteps`` may extend it)."""
    from .run import saved_config

    return from_dict(*saved_config(out, total_timesteps))
