"""Agents driven by a learned or external model: ``sb3`` (a Stable-Baselines3 checkpoint), ``rllib`` (a
policy trained on RLlib) and ``llm`` (a language model answering in JSON)."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable

import numpy as np

from . import hparams, rules
from .protocol import METRIC_NAMES, PARAM_NAMES, Context, Outcome, Update
from .registry import AgentConfigError, register


def fractions_to_update(context: Context, fractions, reasoning: str = "") -> Update | None:
    """An update from per-parameter moves in units of the delta limit, read as the economy env's
    continuous action (:func:`agents.rules.continuous_target`, log-symmetric, then rounded half away
    from zero); zeros are left untouched."""
    a = np.clip(np.asarray(fractions, dtype=np.float64).reshape(-1), -1.0, 1.0)
    if a.shape != (len(PARAM_NAMES),):
        raise ValueError(f"expected {len(PARAM_NAMES)} fractions (one per parameter), got shape {a.shape}")
    out = {}
    for name, f in zip(PARAM_NAMES, a):
        if f == 0.0 or not math.isfinite(f):
            continue
        cur = context.config[name]
        target = int(rules.round_half_away(rules.continuous_target(cur, float(f), context.delta_limit_pct)))
        if target != cur:
            out[name] = target
    return Update(out, reasoning) if out else None


META_NAME = "arena.json"  # inside a checkpoint .zip: how the policy was trained (train.py writes it)
ACTION_MODES = ("continuous", "target", "discrete")


def read_meta(path: str) -> dict:
    """The ``arena.json`` that train.py puts inside a checkpoint (``algo``, ``action_mode``, ...), or {}."""
    import zipfile

    if not os.path.exists(path):
        return {}  # the loader says what is missing
    try:
        with zipfile.ZipFile(path) as zf:
            if META_NAME not in zf.namelist():
                return {}
            text = zf.read(META_NAME)
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise AgentConfigError(f"sb3: {path}: not a readable Stable-Baselines3 checkpoint ({exc})") from None
    where = f"sb3: {path}: {META_NAME}"
    try:
        meta = json.loads(text.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError and json.JSONDecodeError are ValueErrors
        raise AgentConfigError(f"{where}: not valid JSON ({exc}); rewrite it with agents.learners.write_meta "
                               "or remove it") from None
    if not isinstance(meta, dict):
        raise AgentConfigError(f"{where}: expected a JSON object such as {{\"algo\": \"PPO\", \"action_mode\": "
                               f"\"continuous\"}}, got {type(meta).__name__}")
    for key in ("algo", "action_mode"):
        if key in meta and not isinstance(meta[key], str):
            raise AgentConfigError(f"{where}: {key}: expected a string, got {meta[key]!r}")
    return meta


def checkpoint_path(path) -> str:
    """The file a Stable-Baselines3 checkpoint ``path`` names, resolved as SB3's ``load`` does: ``path``
    itself when it exists, else ``path + ".zip"`` (``model.save("tgt")`` writes ``tgt.zip``).  A missing
    file raises :class:`~agents.registry.AgentConfigError` naming both."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise hparams.fail("sb3", "path", "the path of a Stable-Baselines3 checkpoint (.zip)", path)
    path = os.fspath(path)
    for candidate in (path, path + ".zip"):
        if os.path.isfile(candidate):
            return candidate
    raise AgentConfigError(f"sb3: path: no such file {path} (nor {path}.zip)")


def write_meta(path: str, meta: dict) -> None:
    """Add ``arena.json`` to the checkpoint ``path`` (Stable-Baselines3 ignores the extra member)."""
    import zipfile

    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(META_NAME, json.dumps(meta, sort_keys=True))


@register("sb3")
class SB3Policy:
    """A Stable-Baselines3 policy checkpoint (``model.save(path)``) as an agent.

    Hyperparameters: ``path`` (the ``.zip`` checkpoint; without the suffix it is found as SB3 finds
    it, :func:`checkpoint_path`), ``algo`` (``"PPO"``, ``"A2C"``, ``"SAC"``,
    ... any class of ``stable_baselines3``), ``action_mode`` (how the policy's actions are read: the
    economy env's ``"continuous"`` moves in units of the delta limit, ``"target"`` values on the
    observation's config scale, or ``"discrete"`` "0 holds, k pulls preset k-1"), ``deterministic``
    (default True).  ``algo`` and ``action_mode`` default to what train.py recorded in the checkpoint
    (``arena.json``), else PPO and continuous (discrete for a Discrete action space); given values
    that contradict the record are an error.  The policy reads ``context.vector`` (the economy env's
    observation).  Use it to put a trained learner in a tournament next to the baselines.
    """

    def __init__(self, path: str, algo: str | None = None, action_mode: str | None = None,
                 deterministic: bool = True):
        import stable_baselines3

        path = checkpoint_path(path)
        hparams.text("sb3", "algo", algo, optional=True)
        hparams.choice("sb3", "action_mode", action_mode, ACTION_MODES, optional=True)
        self.deterministic = hparams.boolean("sb3", "deterministic", deterministic)
        meta = read_meta(path)
        for key, given in (("algo", algo), ("action_mode", action_mode)):
            if given is not None and key in meta and meta[key] != given:
                raise AgentConfigError(f"sb3: {path} was trained with {key} {meta[key]!r}, not {given!r}; drop {key} "
                                       "or load another checkpoint")
        source = "" if algo is not None or "algo" not in meta else f" (recorded in {path}: {META_NAME})"
        algo = algo or meta.get("algo", "PPO")
        cls = getattr(stable_baselines3, algo, None)
        if cls is None:
            raise AgentConfigError(f"sb3: unknown algorithm {algo!r}{source}; e.g. PPO, A2C, SAC, TD3, DQN")
        self.path = path
        try:
            self.model = cls.load(path, device="cpu")
        except Exception as exc:  # SB3 fails deep inside (AttributeError, KeyError ...) on a mismatched file
            raise AgentConfigError(f"sb3: {path} cannot be loaded as {algo}{source} ({type(exc).__name__}: {exc}); "
                                   "give the algorithm that trained it (algo: PPO, A2C, SAC, TD3, DQN ...) or "
                                   "check that the file is a Stable-Baselines3 model.save() checkpoint") from exc
        discrete = hasattr(self.model.action_space, "n")
        mode = action_mode or meta.get("action_mode") or ("discrete" if discrete else "continuous")
        if mode not in ACTION_MODES or (mode == "discrete") != discrete:
            raise AgentConfigError(f"sb3: action_mode {mode!r} does not fit the policy's action space "
                                   f"{self.model.action_space}; expected one of {', '.join(ACTION_MODES)} "
                                   "(discrete for a Discrete space)")
        self.action_mode = mode

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.model.set_random_seed(seed)

    def act(self, context: Context) -> Update | None:
        if context.vector is None:
            raise ValueError("sb3: the context carries no observation vector (context.vector)")
        if not context.can_update:
            return None
        action, _ = self.model.predict(np.asarray(context.vector, np.float32), deterministic=self.deterministic)
        return action_to_update(context, action, self.action_mode)

    def update(self, outcome: Outcome) -> None:
        pass


def action_to_update(context: Context, action, action_mode: str) -> Update | None:
    """A policy's action read as the economy env's ``action_mode`` reads it: ``discrete`` (0 holds, k pulls
    preset k-1), ``target`` (values on the observation's config scale) or ``continuous`` (moves in units of
    the delta limit)."""
    if action_mode == "discrete":
        k = int(np.asarray(action).reshape(-1)[0])
        if k == 0:
            return None
        name = list(context.presets)[k - 1]
        return Update(dict(context.presets[name]), f"policy chose preset {name}")
    if action_mode == "target":
        return targets_to_update(context, action, "policy action")
    return fractions_to_update(context, action, "policy action")


@register("rllib")
class RLlibPolicy:
    """A policy trained by ``train.py`` on RLlib (``framework: rllib``) as an agent.

    Hyperparameters: ``path`` (the run's ``policy/`` directory, or any of its ``checkpoints/iter_<n>/``),
    ``module`` (which of its policies: default ``shared``, or ``variant_0`` for independent policies).
    It plays the mode of its action distribution (deterministic, as the ``sb3`` agent by default), in the
    action mode it was trained with (``arena.json``).  Loading needs torch and RLlib, not a running Ray.
    """

    def __init__(self, path: str, module: str | None = None):
        root = os.path.abspath(str(path))
        meta_file = os.path.join(root, META_NAME)
        if not os.path.isfile(meta_file):
            raise AgentConfigError(f"rllib: {root} is not the policy/ directory of an RLlib run (no {META_NAME}); "
                                   "train one with python train.py --config configs/rllib_ppo.yaml")
        try:
            with open(meta_file, encoding="utf-8") as fh:
                meta = json.load(fh)
        except ValueError as exc:
            raise AgentConfigError(f"rllib: {meta_file}: not valid JSON ({exc})") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("modules") or [], list):
            raise AgentConfigError(f"rllib: {meta_file}: expected a JSON object with a list \"modules\" "
                                   "(train.py writes it)")
        modules = list(meta.get("modules") or [])
        module = module or ("shared" if "shared" in modules else (modules[0] if modules else "shared"))
        if module not in modules:
            raise AgentConfigError(f"rllib: {root} has no policy {module!r}; its policies: {', '.join(modules)}")
        from ray.rllib.core.rl_module.rl_module import RLModule

        where = os.path.join(root, "learner_group", "learner", "rl_module", module)
        self.module = RLModule.from_checkpoint(where)
        self.module.eval()
        self.action_mode = meta.get("action_mode", "continuous")
        self.space = getattr(self.module, "action_space", None)

    def reset(self, seed: int | None = None) -> None:
        pass

    def act(self, context: Context) -> Update | None:
        import torch

        if context.vector is None:
            raise ValueError("rllib: the context carries no observation vector (context.vector)")
        if not context.can_update:
            return None
        obs = torch.as_tensor(np.asarray(context.vector, np.float32)[None])
        with torch.no_grad():
            out = self.module.forward_inference({"obs": obs})
            dist = self.module.get_inference_action_dist_cls().from_logits(out["action_dist_inputs"])
            action = dist.to_deterministic().sample()[0].numpy()
        if self.space is not None and hasattr(self.space, "low"):
            action = np.clip(action, self.space.low, self.space.high)
        return action_to_update(context, action, self.action_mode)

    def update(self, outcome: Outcome) -> None:
        pass


def targets_to_update(context: Context, units, reasoning: str = "") -> Update | None:
    """An update from per-parameter targets on the observation's config scale, read as the economy
    env's ``target`` action (:func:`agents.rules.unit_target`, clipped to [-1, 1], rounded half away
    from zero, within the hard bounds); parameters already at their target are left out."""
    if not context.tenant or not context.bounds:
        raise ValueError("target actions need context.tenant and context.bounds (the economy env's contexts carry them)")
    u = np.clip(np.asarray(units, dtype=np.float64).reshape(-1), -1.0, 1.0)
    if u.shape != (len(PARAM_NAMES),):
        raise ValueError(f"expected {len(PARAM_NAMES)} targets (one per parameter), got shape {u.shape}")
    out = {}
    for name, x in zip(PARAM_NAMES, u):
        if not math.isfinite(x):
            continue
        t = context.tenant[name]
        lo, hi = context.bounds[name]
        target = int(rules.round_half_away(rules.unit_target(float(x), t, rules.config_span(t, lo, hi))))
        target = min(max(target, lo), hi)
        if target != context.config[name]:
            out[name] = target
    return Update(out, reasoning) if out else None


_JSON_OBJECT = re.compile(r"\{.*\}", re.S)


def build_prompt(context: Context) -> str:
    """The prompt an LLM agent sends: signals, the control's metrics, the config and the limits."""
    lines = [
        "You tune the gamification economy of one treatment variant of an A/B experiment.",
        f"Day {context.day}. Enrolled {context.signals.enrolled}, active today {context.signals.active_today}, "
        f"active in 7 days {context.signals.active_7d}.",
        "Metrics (variant vs control): " + "; ".join(
            f"{m} {context.signals.metrics[m].value:.4g} (n={context.signals.metrics[m].sample_size}, "
            f"{context.signals.metrics[m].confidence})"
            + (f" vs {context.signals.control[m].value:.4g}" if m in context.signals.control else "")
            for m in METRIC_NAMES if m in context.signals.metrics),
        "Current config: " + json.dumps(dict(context.config)),
        f"Guardrails: each parameter may move at most {context.delta_limit_pct:g}% of its current value per "
        f"update; at most one accepted update every {context.update_interval_min} minutes; values are integers.",
        'Answer with one JSON object only: {"overrides": {"<parameter>": <integer>, ...}, "reasoning": "<why>"}, '
        'or {"overrides": {}, "reasoning": "<why>"} to keep the config. Parameters: ' + ", ".join(PARAM_NAMES) + ".",
    ]
    return "\n".join(lines)


def parse_answer(text: str) -> Update | None:
    """Strictly parse an LLM answer into an update; ``ValueError`` for anything not in the schema, and for a
    value no update may request (:func:`agents.rules.requestable`: beyond float32 range)."""
    m = _JSON_OBJECT.search(text or "")
    if not m:
        raise ValueError("no JSON object in the answer")
    data = json.loads(m.group(0))
    if not isinstance(data, dict) or set(data) - {"overrides", "reasoning"} or "overrides" not in data:
        raise ValueError('expected {"overrides": {...}, "reasoning": "..."}')
    ov = data["overrides"]
    if not isinstance(ov, dict):
        raise ValueError("overrides must be an object")
    out = {}
    for k, v in ov.items():
        if k not in PARAM_NAMES:
            raise ValueError(f"unknown parameter {k!r}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not rules.requestable(v) or v < 0 \
                or v != int(v):
            raise ValueError(f"{k} must be a non-negative integer (at most {rules.FLOAT32_MAX:.4g}), got {v!r}")
        out[k] = int(v)
    return Update(out, str(data.get("reasoning", ""))) if out else None


class LLMUnavailable(RuntimeError):
    """The ``llm`` agent's calls keep failing (no API key, no network, ...): raised from ``act`` after
    ``max_failures`` consecutive failed calls, so the episode stops (a tournament forfeits the agent)
    with the last error, instead of the agent silently holding."""


CLIENTS = ("anthropic",)


@register("llm")
class LLMAgent:
    """A language model proposes updates from a prompt of signals, config and guardrail limits.

    Hyperparameters: ``complete`` (a function ``prompt -> answer text``; injectable, so tests and
    offline runs use recorded answers) or ``client="anthropic"`` with ``model`` (needs the optional
    ``anthropic`` package, ``pip install -e ".[llm]"``, and an API key; no network is used otherwise),
    ``every`` (days between questions, default 7), ``max_failures`` (default 3).  The answer must be
    one JSON object ``{"overrides": {...}, "reasoning": "..."}``; a malformed answer (values no update
    may request included) or a failed call changes nothing (the agent holds) and is counted in
    ``self.errors``.  After ``max_failures`` consecutive failed calls (``complete`` raised; malformed
    answers do not count) ``act`` raises :class:`LLMUnavailable` with the last error: in a tournament
    the agent forfeits with that message rather than playing as ``hold``.  Use it to compare LLM
    reasoning with the classical strategies.
    """

    def __init__(self, complete: Callable[[str], str] | None = None, client: str | None = None,
                 model: str = "claude-sonnet-4-5", every: int = 7, max_failures: int = 3):
        if complete is None and client is None:
            raise AgentConfigError("llm: pass complete=<prompt -> text function> or client='anthropic'")
        if complete is not None and not callable(complete):
            raise hparams.fail("llm", "complete", "a function prompt -> answer text", complete)
        hparams.choice("llm", "client", client, CLIENTS, optional=True)
        hparams.text("llm", "model", model)
        self.every = hparams.integer("llm", "every", every, 1)
        self.max_failures = hparams.integer("llm", "max_failures", max_failures, 1)
        self.complete = complete if complete is not None else _anthropic_completion(model)
        self.errors: list[str] = []
        self.prompts: list[str] = []
        self.failures = 0  # consecutive failed calls

    def reset(self, seed: int | None = None) -> None:
        self.errors, self.prompts, self.failures = [], [], 0

    def act(self, context: Context) -> Update | None:
        if context.day % self.every or not context.can_update:
            return None
        prompt = build_prompt(context)
        self.prompts.append(prompt)
        try:
            text = self.complete(prompt)
        except Exception as exc:  # a failed call is no change, recorded; persistent failure is an error
            self.errors.append(f"day {context.day}: {type(exc).__name__}: {exc}")
            self.failures += 1
            if self.failures >= self.max_failures:
                raise LLMUnavailable(f"llm: {self.failures} consecutive calls failed; last: "
                                     f"{type(exc).__name__}: {exc}") from exc
            return None
        self.failures = 0
        try:
            return parse_answer(text)
        except Exception as exc:  # a bad answer is no change, recorded
            self.errors.append(f"day {context.day}: {type(exc).__name__}: {exc}")
            return None

    def update(self, outcome: Outcome) -> None:
        pass


def _anthropic_completion(model: str) -> Callable[[str], str]:
    try:
        import anthropic
    except ImportError:
        raise AgentConfigError('llm: client: \'anthropic\' needs the anthropic package: pip install -e ".[llm]" '
                               "(or pip install anthropic)") from None

    client = anthropic.Anthropic()

    def complete(prompt: str) -> str:  # pragma: no cover - needs the network
        msg = client.messages.create(model=model, max_tokens=400, messages=[{"role": "user", "content": prompt}])
        return "".join(getattr(b, "text", "") for b in msg.content)

    return complete
