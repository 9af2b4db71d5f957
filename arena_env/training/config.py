"""Training configs: ``python train.py --config configs/ppo.yaml`` (the format is in docs/training.md).

A config is a YAML mapping with these top-level keys (every other key is an error naming the file
and the key):

* ``algo``: a Stable-Baselines3 algorithm class (``PPO``, ``A2C``, ``SAC``, ``TD3``, ``DDPG``, ``DQN``).
* a section named after it in lower case (``ppo:``, ``a2c:``, ``dqn:``, ...): its keys pass to the
  algorithm's constructor verbatim (``policy`` defaults to ``MlpPolicy``), checked against the
  constructor's signature: the names, the plain types of its hints (:func:`check_argument`) and a few
  counts (``n_steps``, ``batch_size``, ``n_epochs`` ...: SB3 finds ``n_epochs: 0`` only inside
  ``learn()``); the constructor's own checks run when train.py builds the model, before it claims the
  run directory.  Two conveniences of the RL zoo: ``policy_kwargs.activation_fn`` may name a
  ``torch.nn`` class (``tanh``, ``relu``, ...) and ``learning_rate`` may be ``lin_<x>`` (linear decay
  from ``x`` to 0).  ``env``, ``seed``, ``verbose``, ``tensorboard_log`` and ``device`` are set by train.py.
* ``run_name`` (default: the config file's stem), ``seed`` (0 .. 999,999: evaluation seeds start at
  1,000,000), ``total_timesteps`` (rows x steps).
* ``env``: :class:`~arena_env.economy.env.EconomyEnv` keywords for every economy; ``scenario`` may be a
  list (one policy trained across scenarios, ``vec.copies`` economies of each).
* ``vec``: ``copies`` (economies per scenario), ``learners`` (``all``: every treatment agent is a row,
  parameter sharing; or a list such as ``[variant_0]``, each agent once), ``opponents`` (the other
  seats: a registered agent name, ``{agent, params}``, or a mapping seat -> either; default: they
  hold; given with no seat left to play, as with ``learners: all``, an error), both checked by
  building them as :class:`~arena_env.wrappers.vec.EconomyVecEnv` does,
  ``normalize_reward`` (SB3's ``VecNormalize`` on the reward only; observations are bounded already),
  ``workers`` (processes that step the economies at the same time, this one included; at most one per
  economy is used; the results do not depend on it, see :class:`~arena_env.wrappers.vec.EconomyVecEnv`).
* ``threads``: ``torch`` and ``numba`` thread counts (default 1 and 1: measured fastest here).
* ``checkpoint``: ``every`` (timesteps between checkpoints), ``keep`` (how many to keep), ``select``
  (``last``: the final model is the run's model; ``best``: every checkpoint and the final model play
  ``validation_seeds`` episodes of each training scenario, as shipped plus ``eval.overrides``, on seeds
  900,000 + i, disjoint from the evaluation seeds, and the best mean return becomes ``model.zip``;
  every checkpoint is kept for it) and ``validation_seeds`` (default 10).
* ``eval``: the final evaluation on held-out seeds: ``seeds``, ``scenarios`` (default: the training
  scenarios), ``agents`` (the tournament entries the policy is ranked with), ``overrides``
  (environment keywords; default none: the scenarios as shipped, whose static oracles are in the
  shipped report cards), ``workers``, ``enabled``.

``resolve(path, sets)`` reads a file, applies ``--set`` style overrides (``ppo.n_steps=256``) and
returns a validated :class:`TrainConfig`; ``TrainConfig.to_dict()`` is the resolved config written
to the run directory, which :func:`from_dict` reads back on ``--resume``.
"""

from __future__ import annotations

import copy
import inspect
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EVAL_SEED_BASE = 1_000_000  # arena_env.evaluation.tournament.EVAL_SEED_BASE: training seeds stay below
RESERVED = ("env", "seed", "verbose", "tensorboard_log", "device", "_init_setup_model")
_TOP = {"algo", "run_name", "seed", "total_timesteps", "env", "vec", "threads", "checkpoint", "eval"}
_VEC = {"copies": 4, "learners": "all", "opponents": None, "normalize_reward": True, "workers": 1}
_THREADS = {"torch": 1, "numba": 1}
_CHECKPOINT = {"every": None, "keep": 3, "select": "last", "validation_seeds": 10}
VALIDATION_SEED_BASE = 900_000  # checkpoint selection's episodes: disjoint from evaluation seeds (1,000,000 + i)
_EVAL = {"enabled": True, "seeds": 20, "scenarios": None, "agents": None, "overrides": {},
         "workers": None}
_ENV_SET_HERE = {"num_threads": "threads.numba", "render_mode": None}
# integer arguments of the algorithms with their smallest sensible value, checked up front because SB3 finds some
# only inside learn() (n_epochs: 0 fails after the first rollout); the constructor's own checks do the rest
_AT_LEAST = {"n_steps": 1, "batch_size": 1, "n_epochs": 1, "buffer_size": 1, "learning_starts": 0, "train_freq": 1,
             "target_update_interval": 1, "policy_delay": 1, "stats_window_size": 1}
_PLAIN = {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null"}


class TrainConfigError(ValueError):
    """A training config or option is invalid; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class TrainConfig:
    """A validated training config (see the module docstring)."""

    algo: str
    algo_kwargs: Mapping[str, Any]
    run_name: str
    seed: int
    total_timesteps: int
    env: Mapping[str, Any]
    scenarios: tuple[str, ...]
    vec: Mapping[str, Any]
    threads: Mapping[str, int]
    checkpoint: Mapping[str, Any]
    eval: Mapping[str, Any]
    source: str = "<dict>"
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def section(self) -> str:
        return self.algo.lower()

    def env_copies(self) -> list[dict]:
        """The EconomyEnv keywords of every economy: ``vec.copies`` of each scenario, scenario by scenario."""
        base = {k: v for k, v in self.env.items() if k != "scenario"}
        base["num_threads"] = self.threads["numba"]
        base.setdefault("info_level", "light")
        return [{**copy.deepcopy(base), "scenario": s} for s in self.scenarios for _ in range(self.vec["copies"])]

    def to_dict(self) -> dict:
        """The resolved config (defaults filled in), as written to ``runs/<run_name>/config.yaml``."""
        env = dict(self.env)
        env["scenario"] = list(self.scenarios) if len(self.scenarios) > 1 else self.scenarios[0]
        return {"algo": self.algo, "run_name": self.run_name, "seed": self.seed,
                "total_timesteps": self.total_timesteps, "env": env, "vec": dict(self.vec),
                "threads": dict(self.threads), self.section: copy.deepcopy(dict(self.algo_kwargs)),
                "checkpoint": dict(self.checkpoint), "eval": copy.deepcopy(dict(self.eval))}


def algorithm(name: str):
    """The Stable-Baselines3 class called ``name`` (``PPO``, ``A2C``, ``DQN``, ...)."""
    import stable_baselines3
    from stable_baselines3.common.base_class import BaseAlgorithm

    cls = getattr(stable_baselines3, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, BaseAlgorithm)):
        names = sorted(n for n in dir(stable_baselines3) if isinstance(getattr(stable_baselines3, n), type)
                       and issubclass(getattr(stable_baselines3, n), BaseAlgorithm))
        raise ValueError(f"unknown Stable-Baselines3 algorithm {name!r}; available: {', '.join(names)}")
    return cls


def parse_set(item: str) -> tuple[list[str], Any]:
    """``"ppo.n_steps=256"`` -> ``(["ppo", "n_steps"], 256)``; the value is read as YAML."""
    key, sep, text = str(item).partition("=")
    if not sep or not key.strip() or any(not p for p in key.strip().split(".")):
        raise TrainConfigError(f"--set {item!r}: expected section.key=value, e.g. --set ppo.n_steps=256")
    from arena_env.economy.scenario import yaml_value

    try:
        value = yaml_value(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise TrainConfigError(f"--set {item!r}: the value is not valid YAML: {exc}") from None
    return key.strip().split("."), value


def apply_sets(data: Mapping[str, Any], sets: Sequence[str]) -> dict:
    """A copy of ``data`` with every ``--set`` override applied (intermediate mappings are created)."""
    out = copy.deepcopy(dict(data))
    for item in sets:
        path, value = parse_set(item)
        node = out
        for i, part in enumerate(path[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise TrainConfigError(f"--set {item!r}: {'.'.join(path[:i + 1])} is {nxt!r}, not a section")
            node = nxt
        node[path[-1]] = value
    return out


def resolve(path: str | os.PathLike, sets: Sequence[str] = ()) -> TrainConfig:
    """Read the training config at ``path``, apply ``sets`` (``key.sub=value``) and validate it."""
    from arena_env.economy.scenario import read_yaml

    data = read_yaml(path, TrainConfigError)
    data.setdefault("run_name", Path(path).stem)
    return from_dict(apply_sets(data, sets), str(path))


def _int(value, lo: int, hi: int | None = None) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= lo and (hi is None or value <= hi)


def _section(data, key, defaults, err) -> dict:
    raw = data.get(key)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise err(key, f"a mapping of {', '.join(defaults)}, got {raw!r}")
    for k in raw:
        if k not in defaults:
            raise err(f"{key}.{k}", f"unknown key; allowed keys: {', '.join(defaults)}")
    return {**copy.deepcopy(defaults), **dict(raw)}


def from_dict(data: Mapping[str, Any], src: str = "<dict>") -> TrainConfig:
    """Validate a training config given as a mapping; ``src`` names it in errors."""

    def err(key, msg):
        return TrainConfigError(f"{src}: {key}: {msg}")

    if not isinstance(data, Mapping):
        raise TrainConfigError(f"{src}: the top level must be a mapping of keys")
    name = data.get("algo")
    if name is None:
        raise err("algo", "missing: name a Stable-Baselines3 algorithm, e.g. algo: PPO")
    try:
        cls = algorithm(name)
    except ValueError as exc:
        raise err("algo", str(exc)) from None
    section = cls.__name__.lower()
    for k in data:
        if k not in _TOP and k != section:
            hint = f" (the algorithm's section for algo {cls.__name__} is {section!r})" if k in {
                "ppo", "a2c", "dqn", "sac", "td3", "ddpg"} else ""
            raise err(k, f"unknown key{hint}; allowed keys: {', '.join(sorted(_TOP | {section}))}")
    kwargs = data.get(section) or {}
    if not isinstance(kwargs, Mapping):
        raise err(section, f"a mapping of {cls.__name__} constructor arguments, got {kwargs!r}")
    kwargs = {"policy": "MlpPolicy", **copy.deepcopy(dict(kwargs))}
    params = inspect.signature(cls.__init__).parameters
    for k, v in kwargs.items():
        if k in RESERVED:
            raise err(f"{section}.{k}", "is set by train.py (env from env/vec, seed from seed, logs in the run "
                                        "directory, device cpu); remove it")
        if k not in params:
            allowed = ", ".join(p for p in params if p not in ("self", *RESERVED))
            raise err(f"{section}.{k}", f"not an argument of stable_baselines3.{cls.__name__}; arguments: {allowed}")
        check_argument(v, params[k].annotation, f"stable_baselines3.{cls.__name__}", lambda msg, k=k: err(
            f"{section}.{k}", msg))
        if k in _AT_LEAST and isinstance(v, int) and not _int(v, _AT_LEAST[k]):
            raise err(f"{section}.{k}", f"an integer >= {_AT_LEAST[k]}, got {v!r}")
    try:
        build_kwargs(kwargs)
    except ValueError as exc:
        raise err(section, str(exc)) from None

    run_name, seed, total = run_keys(data, err)

    env = data.get("env") or {}
    if not isinstance(env, Mapping):
        raise err("env", f"a mapping of EconomyEnv keywords (scenario, n_users, action_mode, ...), got {env!r}")
    env = copy.deepcopy(dict(env))
    for k, where in _ENV_SET_HERE.items():
        if k in env:
            raise err(f"env.{k}", f"is set by train.py{f' (use {where})' if where else ''}; remove it")
    scen = env.get("scenario", "default")
    scenarios = [scen] if isinstance(scen, (str, os.PathLike)) else scen
    if not isinstance(scenarios, list) or not scenarios or not all(isinstance(s, str) for s in scenarios):
        raise err("env.scenario", f"a scenario name or path, or a non-empty list of them, got {scen!r}")
    if len(set(scenarios)) != len(scenarios):
        raise err("env.scenario", f"a scenario is listed twice: {scenarios}")
    env.pop("scenario", None)

    vec = _section(data, "vec", _VEC, err)
    if not _int(vec["copies"], 1):
        raise err("vec.copies", f"a positive integer (economies per scenario), got {vec['copies']!r}")
    learners = vec["learners"]
    if not (learners == "all" or (isinstance(learners, list) and learners and all(isinstance(a, str) for a in learners))):
        raise err("vec.learners", f"'all' or a list of agents such as [variant_0], got {learners!r}")
    if not isinstance(vec["normalize_reward"], bool):
        raise err("vec.normalize_reward", f"true or false, got {vec['normalize_reward']!r}")
    if not _int(vec["workers"], 1):
        raise err("vec.workers", f"a positive integer (processes stepping the economies), got {vec['workers']!r}")
    threads = _section(data, "threads", _THREADS, err)
    for k, v in threads.items():
        if not _int(v, 1):
            raise err(f"threads.{k}", f"a positive integer, got {v!r}")
    ckpt = _section(data, "checkpoint", _CHECKPOINT, err)
    if ckpt["every"] is None:
        ckpt["every"] = max(1, total // 10)
    if not _int(ckpt["every"], 1):
        raise err("checkpoint.every", f"a positive number of timesteps, got {ckpt['every']!r}")
    if not _int(ckpt["keep"], 1):
        raise err("checkpoint.keep", f"a positive number of checkpoints to keep, got {ckpt['keep']!r}")
    if ckpt["select"] not in ("last", "best"):
        raise err("checkpoint.select", f"last (the final model) or best (the checkpoint that scores best on the "
                                       f"validation seeds), got {ckpt['select']!r}")
    if not _int(ckpt["validation_seeds"], 1, 100_000):
        raise err("checkpoint.validation_seeds", f"a positive number of validation episodes per scenario, got "
                                                 f"{ckpt['validation_seeds']!r}")
    ev = _section(data, "eval", _EVAL, err)
    if not isinstance(ev["enabled"], bool):
        raise err("eval.enabled", f"true or false, got {ev['enabled']!r}")
    if not _int(ev["seeds"], 1):
        raise err("eval.seeds", f"a positive number of evaluation seeds, got {ev['seeds']!r}")
    if ev["scenarios"] is None:
        ev["scenarios"] = list(scenarios)
    if isinstance(ev["scenarios"], str):
        ev["scenarios"] = [ev["scenarios"]]
    if ev["agents"] is None:
        ev["agents"] = default_eval_agents()
    if not isinstance(ev["agents"], list):
        raise err("eval.agents", f"a list of tournament entries (e.g. [hold, ucb1]), got {ev['agents']!r}")
    if not isinstance(ev["overrides"], Mapping):
        raise err("eval.overrides", f"a mapping of environment keywords, got {ev['overrides']!r}")
    if ev["workers"] is not None and not _int(ev["workers"], 1):
        raise err("eval.workers", f"a positive integer or null (all cores), got {ev['workers']!r}")

    cfg = TrainConfig(cls.__name__, kwargs, run_name, seed, total, env, tuple(scenarios), vec, threads, ckpt,
                      ev, src, copy.deepcopy(dict(data)))
    _check_env(cfg, err)
    if ev["enabled"]:
        from arena_env.evaluation import tournament

        try:
            tournament.from_dict(eval_tournament(cfg, None), f"{src}: eval")
        except tournament.TournamentConfigError as exc:
            raise TrainConfigError(str(exc)) from None
    return cfg


def run_keys(data: Mapping[str, Any], err) -> tuple[str, int, int]:
    """``run_name``, ``seed`` and ``total_timesteps`` of a training config (SB3's and RLlib's), validated."""
    run_name = data.get("run_name", "run")
    if not isinstance(run_name, str) or not run_name.strip() or "/" in run_name or run_name in (".", ".."):
        raise err("run_name", f"a non-empty name without '/', got {run_name!r}")
    seed = data.get("seed", 0)
    if not _int(seed, 0, EVAL_SEED_BASE - 1):
        raise err("seed", f"an integer from 0 to {EVAL_SEED_BASE - 1:,} (evaluation seeds start at "
                          f"{EVAL_SEED_BASE:,}), got {seed!r}")
    total = data.get("total_timesteps")
    if not _int(total, 1):
        raise err("total_timesteps", f"a positive integer number of steps (rows x steps), got {total!r}")
    return run_name.strip(), seed, total


def check_argument(value, annotation, owner: str, err) -> None:
    """``err(message)`` when ``value`` does not fit a constructor's or method's type hint made of plain
    types only (``int``, ``float``, ``bool``, ``str``, ``None``: ``n_steps: int``, ``minibatch_size:
    Optional[int]``), since the libraries take such a value as it is and fail only later (inside
    ``learn()`` or a training step).  Other hints (schedules, classes, lists, ...) are left to the
    library's own checks.  ``owner`` names the signature in the message."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    members = typing.get_args(annotation) if union else (annotation,)
    if not all(m in _PLAIN for m in members):
        return
    if any(type(value) is m or (m is float and type(value) is int) for m in members):
        return
    want = " or ".join(_PLAIN[m] for m in sorted(members, key=lambda m: m is type(None)))
    raise err(f"{want} (the signature of {owner}), got {value!r}")


def env_error(err, exc: Exception, env: Mapping, scenario: str, name_scenario: bool = True):
    """An ``EconomyEnv`` error of scenario ``scenario`` built with the config's ``env`` keywords, as a
    config error: one about a key that ``env`` sets (``n_users: -3 is out of range``) names
    ``env.<key>``, since the value came from the config, not from the scenario file; any other names
    ``env`` (and, with ``name_scenario``, the scenario: a config may train on several)."""
    from arena_env.economy.scenario import ScenarioError, find

    text = str(exc)
    try:
        source = f"{find(scenario)}: "
    except ScenarioError:
        source = None
    if source and text.startswith(source):
        key, _, msg = text[len(source):].partition(": ")
        if msg and re.split(r"[.\[]", key, maxsplit=1)[0] in env:
            return err(f"env.{key}", msg)
    return err("env", f"on scenario {scenario}: {text}" if name_scenario else text)


def _check_env(cfg: TrainConfig, err) -> None:
    """Build (and close) one economy per scenario so that a bad keyword fails before training starts, and
    the learners and opponents on it as :class:`~arena_env.wrappers.vec.EconomyVecEnv` takes them."""
    from arena_env.economy.env import EconomyEnv
    from arena_env.economy.scenario import ScenarioError

    spaces = None
    learners, opponents = cfg.vec["learners"], cfg.vec["opponents"]
    seats = False  # a seat left for the opponents in some scenario
    for kw in cfg.env_copies()[:: cfg.vec["copies"]]:
        try:
            env = EconomyEnv(**kw)
        except (ScenarioError, ValueError, TypeError) as exc:
            raise env_error(err, exc, cfg.env, kw["scenario"]) from None
        try:
            agents = env.possible_agents
            if learners != "all":
                bad = [a for a in learners if a not in agents]
                if bad:
                    raise err("vec.learners", f"{bad} are not agents of scenario {kw['scenario']} "
                                              f"({', '.join(agents)})")
                left = not set(agents) <= set(learners)
                seats |= left
                _check_seats(kw, learners, opponents if left else None, err)
            sp = (env.observation_space(agents[0]), env.action_space(agents[0]))
            if spaces is not None and sp != spaces:
                raise err("env.scenario", f"scenario {kw['scenario']} has other observation or action spaces than "
                                          f"{cfg.scenarios[0]} (e.g. another number of presets with action_mode "
                                          "discrete); one policy needs the same spaces everywhere")
            spaces = sp
        finally:
            env.close()
    if opponents is not None and not seats:
        raise err("vec.opponents", f"{opponents!r} would play no seat: with vec.learners {learners} every treatment "
                                   "is a learner; list fewer learners (e.g. vec.learners: [variant_0]) to leave the "
                                   "other seats to the opponents, or remove vec.opponents")


def _check_seats(kw: dict, learners: list, opponents, err) -> None:
    """The learner list (then the opponents) on the economy ``kw``, by the rules of ``EconomyVecEnv`` itself
    (an agent listed twice, an unknown agent or seat, an agent's bad params): its refusal names
    ``vec.learners`` (or ``vec.opponents``)."""
    from arena_env.wrappers.vec import EconomyVecEnv

    for key, opp in (("vec.learners", None), ("vec.opponents", opponents)):
        if key == "vec.opponents" and opponents is None:
            return
        try:
            EconomyVecEnv([kw], learners=learners, opponents=opp).close()
        except (ValueError, TypeError) as exc:
            raise err(key, f"on scenario {kw['scenario']}: {exc}") from None


def default_eval_agents() -> list[dict]:
    """``eval.agents`` by default: the field of ``python evaluate.py`` (the quick tournament), without
    its shipped policy."""
    from arena_env.evaluation.tournament import DEFAULT_AGENTS

    return [{"agent": a.agent, "label": a.label, "baseline": a.baseline, **({"params": dict(a.params)} if a.params
            else {})} for a in DEFAULT_AGENTS if a.agent != "sb3"]


def eval_tournament(cfg: TrainConfig, model_path: str | None) -> dict:
    """The final evaluation as a tournament mapping (:func:`arena_env.evaluation.tournament.from_dict`):
    the trained policy (``model_path``; None: a placeholder check of the other entries) and
    ``eval.agents`` on ``eval.scenarios``, solo track, with the reference rows."""
    agents = copy.deepcopy(list(cfg.eval["agents"]))
    if model_path is not None:
        agents.insert(0, {"checkpoint": str(Path(model_path).resolve()), "label": cfg.run_name})
    if not agents:
        agents = ["hold"]
    return {"scenarios": list(cfg.eval["scenarios"]), "seeds": cfg.eval["seeds"], "track": ["solo"],
            "overrides": dict(cfg.eval["overrides"]), "oracle": True, "agents": agents}


def build_kwargs(kwargs: Mapping[str, Any]) -> dict:
    """The algorithm's constructor arguments from the config section: ``activation_fn`` names become
    ``torch.nn`` classes and ``lin_<x>`` learning rates linear schedules; the rest is passed as is."""
    import torch

    out = copy.deepcopy(dict(kwargs))
    pk = out.get("policy_kwargs")
    if pk is not None:
        if not isinstance(pk, Mapping):
            raise ValueError(f"policy_kwargs: a mapping, got {pk!r}")
        pk = dict(pk)
        act = pk.get("activation_fn")
        if isinstance(act, str):
            names = {n.lower(): n for n in dir(torch.nn) if isinstance(getattr(torch.nn, n), type)
                     and issubclass(getattr(torch.nn, n), torch.nn.Module)}
            if act.lower() not in names:
                raise ValueError(f"policy_kwargs.activation_fn: {act!r} is not a torch.nn module; e.g. tanh, relu, elu")
            pk["activation_fn"] = getattr(torch.nn, names[act.lower()])
        out["policy_kwargs"] = pk
    for key in ("learning_rate", "clip_range"):
        v = out.get(key)
        if isinstance(v, str):
            if not v.startswith("lin_"):
                raise ValueError(f"{key}: a number or lin_<x> (linear decay from x to 0), got {v!r}")
            try:
                x = float(v[4:])
            except ValueError:
                raise ValueError(f"{key}: lin_<x> needs a number x, got {v!r}") from None
            out[key] = _Linear(x)
    return out


class _Linear:
    """A linear schedule from ``x`` (start) to 0 (end); picklable, so checkpoints load anywhere."""

    def __init__(self, x: float):
        self.x = x

    def __call__(self, progress_remaining: float) -> float:
        return progress_remaining * self.x


def meta(cfg: TrainConfig) -> dict:
    """What a checkpoint records about its training (``arena.json`` inside the .zip, read by the ``sb3``
    agent): the algorithm, the action mode, the scenarios, the seed."""
    return {"algo": cfg.algo, "action_mode": cfg.env.get("action_mode", "continuous"),
            "scenarios": list(cfg.scenarios), "seed": cfg.seed, "run_name": cfg.run_name}
