"""One training run: build the economies, train, checkpoint, resume, evaluate.

``train(cfg, out)`` reads top to bottom: check the run directory, set the threads, build the
:class:`~arena_env.wrappers.vec.EconomyVecEnv` under :class:`EpisodeStats` (and ``VecNormalize`` on
the reward), build the model (or, with ``resume=True``, load the newest checkpoint; a training that
finished is kept), claim a new run's directory by writing ``config.yaml``, learn with the callbacks
(per-agent TensorBoard scalars and ``episodes.csv``, checkpoints, progress), save the final model,
select the best checkpoint (``checkpoint.select: best``), evaluate the policy on held-out seeds with
evaluate.py's machinery and draw the learning curve.  The VecEnv is closed whatever happens.

The run directory (docs/training.md):

==========================  ===============================================================
``config.yaml``             the resolved config (``--resume`` reads it back)
``tb/``                     TensorBoard logs (SB3's scalars and ``arena/...`` per agent)
``episodes.csv``            one line per finished (economy, agent) episode
``checkpoints/``            ``model_<steps>.zip`` (+ ``vecnormalize_<steps>.pkl``, replay buffer)
``model.zip``               the final model (``vecnormalize.pkl`` beside it); with ``checkpoint.select:
                            best`` the best checkpoint, the final model being ``last_model.zip``
``summary.json``            paths, timesteps, steps per second, the selection and the evaluation's table
                            (written after each stage)
``curve.png``               the learning curve (:mod:`arena_env.training.curve`)
``leaderboard.md`` ...      the final evaluation (``report.html``, ``results.parquet``, ...)
==========================  ===============================================================
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import yaml
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnvWrapper, VecNormalize

from agents.learners import write_meta
from arena_env import progress as progress_bar
from arena_env.paths import check_out_dir

from .config import TrainConfig, TrainConfigError, algorithm, build_kwargs, eval_tournament, from_dict, meta
from .curve import EPISODE_FIELDS

_CKPT = re.compile(r"model_(\d+)\.zip$")


# --- per-episode statistics -------------------------------------------------------------------------


class EpisodeStats(VecEnvWrapper):
    """Accumulates each row's episode: the raw return (before any reward normalisation), the XP cost
    (EUR per enrolled user, the ``xp`` term of the value objective), guardrail rejections and clamped
    parameters, and the final day's metric lifts.  At a row's episode end its info gets
    ``"arena_episode"`` (these figures, with the row's scenario and agent) and ``"episode"`` (``r``,
    ``l``, ``t``: what SB3's ``rollout/ep_rew_mean`` reads, as ``VecMonitor`` writes it)."""

    def __init__(self, venv):
        super().__init__(venv)
        self.labels = [(venv.envs[c].scenario.name, a) for c, a in venv.rows]
        self._start = time.monotonic()
        n = self.num_envs
        self.ret, self.xp = np.zeros(n), np.zeros(n)
        self.rej, self.clamps, self.length = np.zeros(n, int), np.zeros(n, int), np.zeros(n, int)

    def _zero(self, i=slice(None)) -> None:
        """Start row ``i``'s episode (default: every row's)."""
        for acc in (self.ret, self.xp, self.rej, self.clamps, self.length):
            acc[i] = 0

    def reset(self):
        self._zero()
        return self.venv.reset()

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        for i, info in enumerate(infos):
            self.ret[i] += float(rewards[i])
            self.length[i] += 1
            self.xp[i] -= float(info.get("value", {}).get("xp", 0.0))
            dec = info.get("decision")
            if dec is not None:
                self.rej[i] += dec.get("rejectionReason") is not None
                self.clamps[i] += len(dec.get("clampedDeltas") or {})
            if dones[i]:
                scenario, agent = self.labels[i]
                info["arena_episode"] = {"scenario": scenario, "agent": agent, "return": self.ret[i],
                                         "xp_cost": self.xp[i], "rejections": int(self.rej[i]),
                                         "clamps": int(self.clamps[i]), "length": int(self.length[i]),
                                         "lift": dict(info.get("lift") or {})}
                info["episode"] = {"r": float(self.ret[i]), "l": int(self.length[i]),
                                   "t": round(time.monotonic() - self._start, 6)}
                self._zero(i)
        return obs, rewards, dones, infos


class ArenaLog(BaseCallback):
    """Per-agent TensorBoard scalars and ``episodes.csv``.  For every finished episode of a row it
    records ``arena/<agent>/return``, ``xp_cost``, ``rejections``, ``clamps`` and ``lift/<METRIC>``,
    and ``arena/return`` over all rows, as means over the episodes since the last dump (so figures
    are per agent and per episode, never summed over agents or copies); with several scenarios also
    ``arena/<scenario>/return``.  ``episodes.csv`` gets a line per episode, flushed at once."""

    def __init__(self, csv_path: Path, multi_scenario: bool):
        super().__init__()
        self.csv_path = Path(csv_path)
        self.multi = multi_scenario
        self._fh = None
        self._writer = None

    def _on_training_start(self) -> None:
        new = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        self._fh = open(self.csv_path, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._fh, EPISODE_FIELDS, extrasaction="ignore")
        if new:
            self._writer.writeheader()

    def _on_step(self) -> bool:
        wrote = False
        for info in self.locals.get("infos", ()):
            ep = info.get("arena_episode")
            if ep is None:
                continue
            a = ep["agent"]
            for key in ("return", "xp_cost", "rejections", "clamps"):
                self.logger.record_mean(f"arena/{a}/{key}", ep[key])
            for m, v in ep["lift"].items():
                self.logger.record_mean(f"arena/{a}/lift/{m}", v)
            self.logger.record_mean("arena/return", ep["return"])
            if self.multi:
                self.logger.record_mean(f"arena/{ep['scenario']}/return", ep["return"])
            self._writer.writerow({**ep, "timesteps": self.num_timesteps})
            wrote = True
        if wrote:
            self._fh.flush()
        return True

    def _on_training_end(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class Checkpoints(BaseCallback):
    """Every ``every`` timesteps: ``checkpoints/model_<steps>.zip`` (and the reward normaliser's
    statistics, and an off-policy algorithm's replay buffer), each written to a temporary file and
    renamed, the model last, so a checkpoint that exists is complete even after ``kill -9``.  Keeps
    the newest ``keep``."""

    def __init__(self, directory: Path, every: int, keep: int, cfg_meta: dict):
        super().__init__()
        self.meta = cfg_meta
        self.dir = Path(directory)
        self.every = every
        self.keep = keep
        self._next = None

    def _on_training_start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._next = (self.num_timesteps // self.every + 1) * self.every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            save_checkpoint(self.model, self.dir, self.num_timesteps, self.meta)
            self._next = (self.num_timesteps // self.every + 1) * self.every
            for old in sorted(checkpoints(self.dir))[:-self.keep]:
                for f in checkpoint_files(self.dir, old):
                    f.unlink(missing_ok=True)
        return True


class Progress(BaseCallback):
    """A progress bar on stderr (:mod:`arena_env.progress`): timesteps, steps per second, elapsed time
    and the time left."""

    def __init__(self, total: int):
        super().__init__()
        self.total = total
        self._t0 = 0.0
        self._n0 = 0
        self._last = 0

    def _on_training_start(self) -> None:
        self._t0 = time.monotonic()
        self._n0 = self._last = self.num_timesteps

    def _on_step(self) -> bool:
        done = min(self.num_timesteps, self.total)
        tty = sys.stderr.isatty()
        if self._last >= self.total or (tty and self.n_calls % 25 and done < self.total) or (
                not tty and not progress_bar.due(done, self._last, self.total)):
            return True
        self._last = done
        el = time.monotonic() - self._t0
        rate = (self.num_timesteps - self._n0) / el if el > 0 else float("nan")
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        progress_bar.show(progress_bar.bar(done, self.total, "steps", el, eta, f"{rate:6.0f} steps/s"),
                          done >= self.total)
        return True


# --- checkpoints ------------------------------------------------------------------------------------


def checkpoints(directory: Path) -> list[int]:
    """The timesteps of the complete checkpoints in ``directory``, ascending."""
    d = Path(directory)
    if not d.is_dir():
        return []
    return sorted(int(m.group(1)) for f in d.iterdir() if (m := _CKPT.match(f.name)))


def checkpoint_files(directory: Path, steps: int) -> list[Path]:
    d = Path(directory)
    return [d / f"model_{steps}.zip", d / f"vecnormalize_{steps}.pkl", d / f"replay_buffer_{steps}.pkl"]


def _atomic(path: Path, write) -> None:
    """``write(tmp)`` then rename ``tmp`` to ``path`` (``tmp`` keeps the suffix: SB3 appends a missing one)."""
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
    write(tmp)
    os.replace(tmp, path)


def save_model(model, path: Path, cfg_meta: dict) -> None:
    """``model.save`` with the run's ``arena.json`` inside, written to a temporary file and renamed."""
    def write(p):
        model.save(str(p))
        write_meta(str(p), cfg_meta)

    _atomic(path, write)


def save_checkpoint(model, directory: Path, steps: int, cfg_meta: dict) -> None:
    model_f, norm_f, buf_f = checkpoint_files(directory, steps)
    norm = model.get_vec_normalize_env()
    if norm is not None:
        _atomic(norm_f, lambda p: norm.save(str(p)))
    if getattr(model, "replay_buffer", None) is not None:
        _atomic(buf_f, lambda p: model.save_replay_buffer(str(p)))
    save_model(model, model_f, cfg_meta)  # last: its presence marks a complete checkpoint


# --- the run ----------------------------------------------------------------------------------------


def make_vec(cfg: TrainConfig, seed: int):
    """The training VecEnv: EconomyVecEnv (``cfg.env_copies()``, learners, opponents, workers) under
    EpisodeStats, under VecNormalize (reward only) when ``vec.normalize_reward``; seeded with ``seed``."""
    from arena_env.wrappers.vec import EconomyVecEnv

    copies = cfg.env_copies()
    venv = EpisodeStats(EconomyVecEnv(copies, learners=cfg.vec["learners"], opponents=cfg.vec["opponents"],
                                      workers=min(cfg.vec["workers"], len(copies))))
    if cfg.vec["normalize_reward"]:
        venv = VecNormalize(venv, norm_obs=False, norm_reward=True, gamma=float(cfg.algo_kwargs.get("gamma", 0.99)))
    venv.seed(seed)
    return venv


def set_threads(cfg: TrainConfig) -> None:
    """torch's intra-op threads (``threads.torch``; Numba's are set per economy by ``threads.numba``)."""
    import torch

    torch.set_num_threads(cfg.threads["torch"])


def check_run_dir(out: Path, resume: bool) -> None:
    """Checked before any work: ``out`` is not a file; a new run refuses it when it holds a run
    (``config.yaml``), resuming needs that run."""
    check_out_dir(out)
    if resume:
        _saved_config(out)
    elif (Path(out) / "config.yaml").exists():
        raise FileExistsError(f"{out} holds a run already (config.yaml): pass --resume to continue it, or "
                              "choose another --out / run_name")


def write_config(out: Path, resolved: dict) -> None:
    """Write the resolved config to ``out/config.yaml`` (creating ``out``): a new run claims its directory
    with it, and a resumed one records what it runs with (a new ``total_timesteps``)."""
    saved = Path(out) / "config.yaml"
    Path(out).mkdir(parents=True, exist_ok=True)
    _atomic(saved, lambda p: p.write_text(yaml.safe_dump(resolved, sort_keys=False)))


def _saved_config(out: Path) -> Path:
    saved = Path(out) / "config.yaml"
    if not saved.exists():
        raise FileNotFoundError(f"--resume: {saved} does not exist; check --out, or drop --resume to start there")
    return saved


def saved_config(out: str | os.PathLike, total_timesteps: int | None = None) -> tuple[dict, str]:
    """The saved config mapping of the run in ``out`` (``total_timesteps`` may extend it) and its path."""
    from arena_env.economy.scenario import read_yaml

    saved = _saved_config(Path(out))
    data = read_yaml(saved, TrainConfigError)
    if total_timesteps is not None:
        data["total_timesteps"] = total_timesteps
    return data, str(saved)


def resume_config(out: str | os.PathLike, total_timesteps: int | None = None) -> TrainConfig:
    """The saved config of the run in ``out`` (``total_timesteps`` may extend it), for ``train(..., resume=True)``."""
    return from_dict(*saved_config(out, total_timesteps))


def final_model(cfg: TrainConfig, out: Path) -> Path:
    """Where training saves its final model: ``model.zip``; with ``checkpoint.select: best``
    ``last_model.zip`` (the selection then makes ``model.zip``)."""
    return Path(out) / ("last_model.zip" if cfg.checkpoint["select"] == "best" else "model.zip")


def model_steps(path: Path) -> int | None:
    """The timesteps an SB3 model file was trained for (``num_timesteps`` in its ``data``), read without
    loading it; None when there is no such file."""
    try:
        with zipfile.ZipFile(path) as z:
            return int(json.loads(z.read("data"))["num_timesteps"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def trained(cfg: TrainConfig, out: Path) -> int | None:
    """The timesteps of the run's final model when its training is finished (the model is saved, last,
    once ``total_timesteps`` is reached: :func:`final_model`), else None.  The model file is written
    under a temporary name and renamed, so this holds after ``kill -9`` at any point."""
    steps = model_steps(final_model(cfg, out))
    return steps if steps is not None and steps >= cfg.total_timesteps else None


def write_summary(out: Path, summary: dict) -> None:
    """``summary.json``, written after each stage (training, selection, evaluation) under a temporary name."""
    _atomic(Path(out) / "summary.json",
            lambda p: p.write_text(json.dumps(summary, indent=2, default=str) + "\n"))


def kept_summary(out: Path, steps: int, keys: tuple[str, ...]) -> dict:
    """The fields ``keys`` of the run's ``summary.json`` when it describes the training that reached
    ``steps`` timesteps (a resume that only finishes the selection or evaluation keeps them); else
    ``{"timesteps": steps}``."""
    try:
        previous = json.loads((Path(out) / "summary.json").read_text())
    except (OSError, ValueError):
        previous = {}
    if not isinstance(previous, dict) or previous.get("timesteps") != steps:
        return {"timesteps": steps}
    return {k: previous[k] for k in keys if k in previous}


def train(cfg: TrainConfig, out: str | os.PathLike, resume: bool = False, progress: bool = True,
          evaluate: bool | None = None) -> dict:
    """Train (or resume) the run of ``cfg`` in ``out``; returns a summary (paths, timesteps, the
    evaluation's leaderboard rows).  ``evaluate`` overrides ``eval.enabled``.

    A new run builds its economies and its model (SB3's own argument checks) before it claims ``out``
    with ``config.yaml``, so a config that SB3 refuses is a :class:`TrainConfigError` and leaves no run
    behind.  Resuming, a finished training (:func:`trained`) is kept and the run goes on with what is
    left (the checkpoint selection, the evaluation); an unfinished one continues from its newest
    checkpoint.  Ctrl-C at any stage says what is saved and how to go on."""
    out = Path(out)
    check_run_dir(out, resume)
    if resume:
        write_config(out, cfg.to_dict())
    set_threads(cfg)
    steps = trained(cfg, out) if resume else None
    summary = {"run_dir": str(out)}
    if steps is None:
        summary.update(_learn(cfg, out, resume, progress))
    else:
        summary.update({"resumed_from": None, **kept_summary(out, steps, ("resumed_from", "steps_per_s", "timesteps",
                                                                           "selection"))})
    write_summary(out, summary)
    stage = "checkpoint selection"
    try:
        if cfg.checkpoint["select"] == "best" and not ("selection" in summary and (out / "model.zip").exists()):
            summary["selection"] = select_best(cfg, out, progress=progress)
            write_summary(out, summary)
        summary["model"] = str(out / "model.zip")
        if cfg.eval["enabled"] if evaluate is None else evaluate:
            stage = "evaluation"
            summary["leaderboard"] = evaluate_policy(cfg, out, progress=progress)
    except KeyboardInterrupt:
        kept = f" and the evaluation's finished cells ({out / 'cells.jsonl'})" if stage == "evaluation" else ""
        print(f"\ninterrupted during the {stage}; the trained model is saved ({final_model(cfg, out)}){kept}; "
              f"finish with: python train.py --resume --out {out}", file=sys.stderr)
        raise
    try:
        from .curve import plot

        summary["curve"] = str(plot(out))
    except ValueError as exc:  # no finished episode yet (a very short run)
        print(f"learning curve: {exc}", file=sys.stderr)
    write_summary(out, summary)
    return summary


def new_model(cfg: TrainConfig, venv, out: Path):
    """A new model of ``cfg`` on ``venv``.  Its constructor runs SB3's own argument checks; a refusal is a
    :class:`TrainConfigError` naming the key behind it (:func:`_culprit`)."""
    cls = algorithm(cfg.algo)
    fixed = {"env": venv, "seed": cfg.seed, "verbose": 0, "device": "cpu", "tensorboard_log": str(Path(out) / "tb")}
    kwargs = build_kwargs(cfg.algo_kwargs)
    try:
        return cls(**fixed, **kwargs)
    except Exception as exc:  # noqa: BLE001 - whatever SB3 raises about its arguments
        key = _culprit(cls, fixed, kwargs, cfg)
        what = (f"stable_baselines3.{cls.__name__} does not take this env's actions "
                f"(action_mode {cfg.env.get('action_mode', 'continuous')}: {venv.action_space})"
                if key == "env.action_mode" else f"refused by stable_baselines3.{cls.__name__}")
        raise TrainConfigError(f"{cfg.source}: {key}: {what}: {str(exc).strip()}") from None


def _culprit(cls, fixed: dict, kwargs: dict, cfg: TrainConfig) -> str:
    """The config key behind a refusal of ``cls(**fixed, **kwargs)``: ``env.action_mode`` when the algorithm
    refuses the env itself (its defaults fail too), else the first key of the algorithm's section whose
    default makes the constructor pass, else the section."""
    import warnings

    def builds(kw: dict) -> bool:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cls(**fixed, **{"policy": "MlpPolicy", **kw})
        except Exception:  # noqa: BLE001
            return False
        return True

    if not builds({}):
        return "env.action_mode"
    for k in kwargs:
        if builds({x: v for x, v in kwargs.items() if x != k}):
            return f"{cfg.section}.{k}"
    return cfg.section


def _learn(cfg: TrainConfig, out: Path, resume: bool, progress: bool) -> dict:
    """Build the economies and the model (new, or resumed from the newest checkpoint), claim a new run's
    directory, learn up to ``total_timesteps`` and save the final model; returns the summary's training
    fields.  The VecEnv is closed whatever happens."""
    ckdir = out / "checkpoints"
    done = checkpoints(ckdir) if resume else []
    start = done[-1] if done else None
    venv = make_vec(cfg, cfg.seed if start is None else cfg.seed + start)
    try:
        model = new_model(cfg, venv, out) if start is None else _load(algorithm(cfg.algo), ckdir, start, venv, out)
        if resume:
            _truncate_csv(out / "episodes.csv", start or 0)
        else:
            write_config(out, cfg.to_dict())  # the run is claimed once SB3 has taken the config
        keep = 10 ** 9 if cfg.checkpoint["select"] == "best" else cfg.checkpoint["keep"]  # selection needs all
        callbacks = [ArenaLog(out / "episodes.csv", len(cfg.scenarios) > 1),
                     Checkpoints(ckdir, cfg.checkpoint["every"], keep, meta(cfg))]
        if progress:
            callbacks.append(Progress(cfg.total_timesteps))
        t0 = time.monotonic()
        n0 = model.num_timesteps
        try:
            model.learn(max(0, cfg.total_timesteps - model.num_timesteps), callback=callbacks,
                        reset_num_timesteps=start is None, tb_log_name=cfg.algo)
        except KeyboardInterrupt:  # Ctrl-C: keep what was learnt, so that --resume loses nothing
            save_checkpoint(model, ckdir, model.num_timesteps, meta(cfg))
            print(f"\ninterrupted at {model.num_timesteps} steps; checkpoint saved; continue with: "
                  f"python train.py --resume --out {out}", file=sys.stderr)
            raise
        rate = (model.num_timesteps - n0) / max(time.monotonic() - t0, 1e-9)
        norm = model.get_vec_normalize_env()
        if norm is not None:
            _atomic(out / "vecnormalize.pkl", lambda p: norm.save(str(p)))
        save_model(model, final_model(cfg, out), meta(cfg))  # last: a saved final model marks a finished training
        return {"resumed_from": start, "steps_per_s": rate, "timesteps": int(model.num_timesteps)}
    finally:
        venv.close()


def validation_score(cfg: TrainConfig, model_path: Path) -> float:
    """The mean return of the policy at ``model_path`` (``variant_0``, the other treatments holding, as in
    the tournament's solo track) over ``checkpoint.validation_seeds`` episodes of each training scenario."""
    import agents as agent_registry
    from arena_env.economy.env import EconomyEnv
    from arena_env.wrappers.agents import run_episode

    from .config import VALIDATION_SEED_BASE

    policy = agent_registry.make("sb3", path=str(model_path))
    total, n = 0.0, 0
    for scenario in cfg.scenarios:
        env = EconomyEnv(scenario, info_level="light", num_threads=1, action_mode="absolute",
                         **dict(cfg.eval["overrides"]))
        for i in range(cfg.checkpoint["validation_seeds"]):
            total += float(run_episode(env, {"variant_0": policy}, seed=VALIDATION_SEED_BASE + i)["rewards"]["variant_0"])
            n += 1
        env.close()
    return total / n


def select_best(cfg: TrainConfig, out: Path, progress: bool = True) -> dict:
    """``checkpoint.select: best``: score every checkpoint and the final model (``last_model.zip``, where
    training saves it: :func:`final_model`) on the validation seeds and make the best ``model.zip``;
    returns the scores by step."""
    from .config import VALIDATION_SEED_BASE

    ckdir = out / "checkpoints"
    candidates = {f"model_{s}": checkpoint_files(ckdir, s)[0] for s in checkpoints(ckdir)}
    candidates["last"] = final_model(cfg, out)
    scores = {}
    for i, (name, path) in enumerate(candidates.items()):
        scores[name] = validation_score(cfg, path)
        if progress:
            print(f"\rcheckpoint selection: {i + 1}/{len(candidates)} scored", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    best = max(scores, key=lambda k: (scores[k], k == "last"))  # a tie keeps the final model
    _atomic(out / "model.zip", lambda p: shutil.copy2(candidates[best], p))
    if best != "last":
        norm = checkpoint_files(ckdir, int(best.split("_")[1]))[1]
        if norm.exists():
            _atomic(out / "vecnormalize.pkl", lambda p: shutil.copy2(norm, p))
    return {"selected": best, "validation_seeds": cfg.checkpoint["validation_seeds"],
            "validation_seed_base": VALIDATION_SEED_BASE, "scores": scores}


def _load(cls, ckdir: Path, steps: int, venv, out: Path):
    """The model, reward normaliser and replay buffer of checkpoint ``steps`` (lin_ schedules unpickle as they are)."""
    model_f, norm_f, buf_f = checkpoint_files(ckdir, steps)
    if isinstance(venv, VecNormalize) and norm_f.exists():
        venv.ret_rms = VecNormalize.load(str(norm_f), venv.venv).ret_rms  # the reward's running statistics
    model = cls.load(str(model_f), env=venv, device="cpu", tensorboard_log=str(out / "tb"))
    if buf_f.exists() and hasattr(model, "load_replay_buffer"):
        model.load_replay_buffer(str(buf_f))
    return model


def _truncate_csv(path: Path, steps: int) -> None:
    """Drop the episodes logged after checkpoint ``steps`` (the resumed run plays those steps again)."""
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("timesteps", "").isdigit() and int(r["timesteps"]) <= steps]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, EPISODE_FIELDS)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def evaluate_policy(cfg: TrainConfig, out: Path, progress: bool = True, model: Path | None = None) -> list[dict]:
    """The final evaluation: the trained policy and ``eval.agents`` on ``eval.scenarios`` over
    ``eval.seeds`` held-out seeds, solo track, through evaluate.py's machinery; ``leaderboard.md``,
    ``report.html`` and the results store are written to ``out``.  ``model``: the policy (default
    ``out/model.zip``; an RLlib run's ``out/policy``).  Returns the leaderboard rows."""
    from arena_env.evaluation import leaderboard, report, tournament

    tcfg = tournament.from_dict(eval_tournament(cfg, model or out / "model.zip"), f"{out / 'config.yaml'}: eval")
    rows = tournament.run(tcfg, out, workers=cfg.eval["workers"], resume=True, progress=progress_bar.cells if progress else None)
    lb = leaderboard.build(rows)
    leaderboard.write(lb, out)
    report.write(lb, rows, json.loads((out / "manifest.json").read_text()), out)
    print(leaderboard.markdown(lb))
    for line in verdict(lb, cfg.run_name):
        print(line)
    return [dict(r) for r in lb.table]


def verdict(lb, label: str) -> list[str]:
    """One line per scenario: the policy's normalised mean with its interval, and the best other agent's
    (reference rows aside), in the leaderboard's unit."""
    from arena_env.evaluation.leaderboard import ALL

    tables = {k: v for k, v in lb.solo.items() if k != ALL} or {lb.facts["scenarios"][0]: lb.table}
    lines = []

    def fmt(r):
        return f"{r['mean']:.2f} [{r['mean_lo']:.2f}, {r['mean_hi']:.2f}]"

    for scenario, rows in tables.items():
        mine = [r for r in rows if r["agent"] == label]
        others = sorted((r for r in rows if r["agent"] != label and not r.get("reference")),
                        key=lambda r: -r["mean"])
        if not mine:
            continue
        text = f"{label} on {scenario}: {fmt(mine[0])} (0 = hold, 1 = static oracle)"
        if others:
            text += f"; best other agent {others[0]['agent']} {fmt(others[0])}"
        lines.append(text)
    return lines
