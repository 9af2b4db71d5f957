"""The static oracle: the best fixed config of a scenario, the leaderboards' unit.

The solo leaderboard scores every agent per scenario as ``(score - hold) / (oracle - hold)``: 0 is
keeping the defaults, 1 is the *static oracle*, the best fixed config that the economy's documented
search (:func:`arena_env.economy.card.static_search`: coordinate ascent over log2 multipliers of the
tenant config) finds on the *training* seeds ``0 .. train_seeds - 1``.  Evaluation seeds
(``1_000_000 + i``) never enter the search, so the oracle's evaluation score is an honest,
out-of-sample figure; an agent above 1 adapts better than any fixed config the search could find.

The oracle depends only on the scenario's content after the tournament's overrides and on the model
version, both in :func:`arena_env.economy.card.scenario_digest`.  :func:`static_oracle` looks it up,
in this order:

1. the shipped report cards ``docs/cards/<name>/card.json`` whose scenario digest matches (the card's
   static optimum is the same search on the same training seeds);
2. the cache directory (``$ARENA_CACHE_DIR/oracles``, default ``~/.cache/arena/oracles``), one JSON
   file per digest;
3. otherwise it runs the search (a progress bar on stderr; about a minute per 10,000 users and 90
   days on 2 cores) and writes the result to the cache atomically.

A record (``dict``): ``scenario``, ``digest``, ``model``, ``config`` (parameter -> value, the fixed
config), ``log2_multipliers``, ``train_seeds``, ``train_gain`` (mean return over hold on the
training seeds), ``search`` (method, grid, rounds, configs evaluated), ``source`` (where it came
from: ``card:<path>``, ``cache:<path>`` or ``computed``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from arena_env.paths import PROJECT_ROOT, shown

ORACLE_LABEL = "oracle-static"
"""The label of the oracle's reference row."""
HOLD_LABEL = "hold"
"""The label of the hold reference row added when a tournament has no ``hold`` agent."""
DEFAULT_TRAIN_SEEDS = 3
CARDS_DIR = PROJECT_ROOT / "docs" / "cards"


def cache_dir() -> Path:
    """``$ARENA_CACHE_DIR/oracles``, or ``~/.cache/arena/oracles``."""
    root = os.environ.get("ARENA_CACHE_DIR")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "arena") / "oracles"


def _from_card(path: Path, digest: str) -> dict | None:
    try:
        card = json.loads(path.read_text())
        if card["scenario"]["digest"] != digest or card["settings"]["mode"] != "full":
            return None
        so = card["static_optimum"]
        return {"scenario": card["scenario"]["name"], "digest": digest, "model": None, "config": dict(so["config"]),
                "log2_multipliers": dict(so["log2_multipliers"]), "train_seeds": list(card["settings"]["train_seeds"]),
                "train_gain": so["search"]["train_gain"],
                "search": {k: so["search"][k] for k in ("method", "grid", "max_rounds", "rounds", "configs_evaluated")},
                "source": f"card:{shown(path)}"}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _valid(rec, digest: str, names) -> bool:
    """A cache record of ``digest`` whose config gives every parameter a non-negative integer."""
    if not isinstance(rec, dict) or rec.get("digest") != digest:
        return False
    cfg = rec.get("config")
    return (isinstance(cfg, dict) and set(cfg) == set(names)
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in cfg.values()))


def static_oracle(scenario: str, overrides: Mapping[str, Any] | None = None, *, train_seeds: int = DEFAULT_TRAIN_SEEDS,
                  workers: int = 1, cache: str | os.PathLike | None = None, cards: str | os.PathLike | None = CARDS_DIR,
                  progress: bool = False) -> dict:
    """The static oracle record of ``scenario`` after ``overrides`` (scenario keys; env-only keywords
    are ignored), looked up or computed as the module docstring says.  ``cache`` overrides the cache
    directory, ``cards=None`` skips the shipped cards.  Raises
    :class:`arena_env.economy.scenario.ScenarioError` for a bad scenario or override."""
    import numpy as np

    from arena_env.economy import card as C
    from arena_env.economy.env import EconomyEnv
    from arena_env.economy.params import PARAM_NAMES
    from arena_env.economy.scenario import load

    from .tournament import ENV_ONLY

    over = {k: v for k, v in dict(overrides or {}).items() if k not in ENV_ONLY}
    sc = load(scenario, **over)
    digest = C.scenario_digest(sc)
    model = EconomyEnv.metadata["name"]
    if cards is not None and train_seeds == DEFAULT_TRAIN_SEEDS:
        for path in sorted(Path(cards).glob("*/card.json")):
            rec = _from_card(path, digest)
            if rec is not None:
                return {**rec, "model": model}
    folder = Path(cache) if cache is not None else cache_dir()
    path = folder / f"{digest}-t{train_seeds}.json"
    if path.is_file():
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            rec = None
        if _valid(rec, digest, PARAM_NAMES):
            return {**rec, "source": f"cache:{path}"}
        # otherwise a damaged or foreign cache file: recompute and overwrite it
    _, train = C.seed_lists(2, train_seeds)
    env = C.make_env(sc)
    lo, hi = np.asarray(env.guardrail_config.lo), np.asarray(env.guardrail_config.hi)
    tenant = tuple(int(v) for v in env.tenant_vector)
    settings = C.FULL
    total = C.plan(2, train_seeds, settings)["static search"]
    prog = C.Progress(total, enabled=progress)
    prog.stage = f"static oracle of {sc.name}"
    with C.Evaluator(sc, workers, prog) as ev:
        ca, cfg = C.static_search(ev, tenant, lo, hi, train, settings, sc.max_days)
    prog.set(total)
    rec = {"scenario": sc.name, "digest": digest, "model": model, "config": dict(zip(PARAM_NAMES, map(int, cfg))),
           "log2_multipliers": dict(zip(PARAM_NAMES, map(float, ca["point"]))), "train_seeds": list(train),
           "train_gain": float(ca["value"]),
           "search": {"method": "coordinate ascent over log2 multipliers of the tenant config",
                      "grid": list(settings.grid), "max_rounds": settings.rounds, "rounds": ca["rounds"],
                      "configs_evaluated": ca["evaluated"]},
           "source": "computed"}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(rec, indent=1) + "\n")
        os.replace(tmp, path)
    except OSError as exc:  # a read-only home: the oracle still works, it is just not cached
        print(f"warning: cannot cache the static oracle in {folder} ({exc}); set ARENA_CACHE_DIR", file=sys.stderr)
    return rec
