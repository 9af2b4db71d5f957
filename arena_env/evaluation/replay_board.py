"""Replay leaderboards: ``python evaluate.py --config configs/replay_obd.yaml``.

A replay config (a YAML file whose top level has a ``replay`` section) names a logged dataset, the
policies to score on it and the off-policy estimators; :func:`run` scores every policy with every
estimator on the same rows (:func:`arena_env.replay.metrics.evaluate_policies`), and :func:`write`
puts the same outputs as a tournament in the run directory: ``leaderboard.md``, ``leaderboard.csv``,
``report.html``, ``results.parquet`` (one row per estimator and policy, the run manifest in its
metadata), ``traces.parquet`` (every policy's per-decision trace) and ``manifest.json``.

Config keys (relative paths are read from the config file's folder)::

    replay:
      log: ../tests/data/obd/random/all/all.csv   # the log
      format: obd            # obd (an Open Bandit Dataset CSV) or events (our schema; then `manifest:`)
      manifest: null         # the manifest of an events log
      first_only: false      # only each case's first decision point
      behavior_policy: null  # obd: random or bts, when the path does not say (<policy>/<campaign>/<file>.csv)
      campaign: null         # obd: all, men or women, likewise
    estimators: [dr, ipw]    # the first ranks the leaderboard; the others get their own table
    baseline: random         # every policy is compared with it, paired on the same rows
    policies:                # baselines of arena_env.replay.policies, and {bts: {campaign: all}} for OBD
      - random
      - logged
    references:              # policies whose true value is known: another log of that policy
      bts: ../tests/data/obd/bts/all/all.csv
    n_bootstrap: 2000
    alpha: 0.05
    seed: 0
    ks: [10, 100]            # precision@K

The leaderboard ranks the main estimator's point estimates; rows whose intervals overlap their group
leader's are tied (the tournament's rule, :func:`arena_env.evaluation.stats.rank_with_ties`).  A
reference row is the on-policy value of a policy measured on its own log (the mean reward, with an
exact binomial interval for 0/1 rewards): the ground truth an estimate of that policy from the
evaluated log should match, and each estimator's relative error against it is reported.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TOP_KEYS = ("replay", "estimators", "baseline", "policies", "references", "n_bootstrap", "alpha", "seed", "ks")
REPLAY_KEYS = ("log", "format", "manifest", "first_only", "behavior_policy", "campaign")


class ReplayConfigError(ValueError):
    """A replay config that is malformed; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class ReplayConfig:
    source: str
    log: Path
    format: str
    manifest: Path | None
    first_only: bool
    estimators: tuple[str, ...]
    baseline: str
    policies: tuple[Any, ...]
    references: Mapping[str, Path] = field(default_factory=dict)
    n_bootstrap: int = 2000
    alpha: float = 0.05
    seed: int = 0
    ks: tuple[int, ...] = (10, 100)
    raw: Mapping = field(default_factory=dict, repr=False)
    obd: Mapping[str, str] = field(default_factory=dict)  # behavior_policy and campaign of an obd log, if given


def is_replay_config(path: str | os.PathLike) -> bool:
    """True when the YAML file at ``path`` is a replay config (its top level has ``replay``)."""
    from arena_env.economy.scenario import ScenarioError, read_yaml

    try:
        return "replay" in read_yaml(path)
    except ScenarioError:
        return False


def load_config(path: str | os.PathLike) -> ReplayConfig:
    """Read and validate a replay config; errors name the file, the key and the fix."""
    from arena_env.economy.scenario import read_yaml
    from arena_env.replay import ope

    src = str(path)
    data = read_yaml(path, error=ReplayConfigError)
    base = Path(path).resolve().parent
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise ReplayConfigError(f"{src}: unknown key {unknown[0]!r}; the keys are {', '.join(TOP_KEYS)}")
    rep = data.get("replay")
    if not isinstance(rep, Mapping):
        raise ReplayConfigError(f"{src}: replay: expected a mapping with keys {', '.join(REPLAY_KEYS)}")
    bad = [k for k in rep if k not in REPLAY_KEYS]
    if bad:
        raise ReplayConfigError(f"{src}: replay: unknown key {bad[0]!r}; the keys are {', '.join(REPLAY_KEYS)}")
    if "log" not in rep:
        raise ReplayConfigError(f"{src}: replay.log is required (the log file to evaluate on)")

    def file(v, key):
        if not isinstance(v, str) or not v:
            raise ReplayConfigError(f"{src}: {key}: expected a file path, found {v!r}")
        p = (base / v).resolve()
        if not p.exists():
            raise ReplayConfigError(f"{src}: {key}: no such file {p}")
        return p

    fmt = rep.get("format", "events")
    if fmt not in ("events", "obd"):
        raise ReplayConfigError(f"{src}: replay.format: expected events or obd, found {fmt!r}")
    manifest = None if rep.get("manifest") is None else file(rep["manifest"], "replay.manifest")
    if fmt == "events" and manifest is None:
        raise ReplayConfigError(f"{src}: replay.manifest is required for format events (the log's manifest.yaml)")
    if fmt == "obd" and manifest is not None:
        raise ReplayConfigError(f"{src}: replay.manifest: an obd log brings its own manifest; remove the key")
    ests = data.get("estimators", ["dr"])
    ests = [ests] if isinstance(ests, str) else ests
    if not isinstance(ests, list) or not ests or any(e not in ope.ESTIMATORS for e in ests):
        raise ReplayConfigError(f"{src}: estimators: expected a non-empty list of {', '.join(ope.ESTIMATORS)}, "
                                f"found {data.get('estimators')!r}")
    pols = data.get("policies")
    if not isinstance(pols, list) or not pols:
        raise ReplayConfigError(f"{src}: policies: expected a non-empty list of policies (random, logged, "
                                "{constant: {action: ...}}, ...)")
    refs = data.get("references", {}) or {}
    if not isinstance(refs, Mapping):
        raise ReplayConfigError(f"{src}: references: expected a mapping policy name -> log file")

    def number(key, default, kind, lo):
        v = data.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and int(v) != v) or v < lo:
            raise ReplayConfigError(f"{src}: {key}: expected {'an integer' if kind is int else 'a number'} >= {lo}, "
                                    f"found {v!r}")
        return kind(v)

    alpha = number("alpha", 0.05, float, 0.0)
    if not 0 < alpha < 1:
        raise ReplayConfigError(f"{src}: alpha: expected a number in (0, 1), found {alpha!r}")
    ks = data.get("ks", [10, 100])
    if not isinstance(ks, list) or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in ks):
        raise ReplayConfigError(f"{src}: ks: expected a list of integers >= 1, found {ks!r}")
    first_only = rep.get("first_only", False)
    if not isinstance(first_only, bool):
        raise ReplayConfigError(f"{src}: replay.first_only: expected true or false, found {first_only!r}")
    obd_keys = {k: rep[k] for k in ("behavior_policy", "campaign") if rep.get(k) is not None}
    for k, v in obd_keys.items():
        if fmt != "obd":
            raise ReplayConfigError(f"{src}: replay.{k}: only an obd log has one; remove the key")
        if not isinstance(v, str):
            raise ReplayConfigError(f"{src}: replay.{k}: expected a string, found {v!r}")
    cfg = ReplayConfig(source=src, log=file(rep["log"], "replay.log"), format=fmt, manifest=manifest,
                       first_only=first_only, estimators=tuple(ests), baseline=str(data.get("baseline", "random")),
                       policies=tuple(pols), references={str(k): file(v, f"references.{k}") for k, v in refs.items()},
                       n_bootstrap=number("n_bootstrap", 2000, int, 1), alpha=alpha, seed=number("seed", 0, int, 0),
                       ks=tuple(ks), raw=data, obd=obd_keys)
    names = [p.name for p in build_policies(cfg)]
    if cfg.baseline not in names:
        raise ReplayConfigError(f"{src}: baseline: {cfg.baseline!r} is not one of the policies ({', '.join(names)})")
    missing = [r for r in cfg.references if r not in names]
    if missing:
        raise ReplayConfigError(f"{src}: references.{missing[0]}: no policy is named {missing[0]!r} "
                                f"(the policies are {', '.join(names)})")
    return cfg


def build_policies(cfg: ReplayConfig) -> list:
    """The config's policies (``{bts: {...}}`` is the Open Bandit Dataset's Thompson sampler)."""
    from arena_env.replay import obd, policies

    out = []
    for i, spec in enumerate(cfg.policies):
        try:
            if isinstance(spec, Mapping) and len(spec) == 1 and "bts" in spec:
                out.append(obd.BTSPolicy(**dict(spec["bts"] or {})))
            else:
                out.append(policies.make(spec))
        except (ValueError, TypeError) as exc:
            raise ReplayConfigError(f"{cfg.source}: policies[{i}]: {exc}") from None
    names = [p.name for p in out]
    dup = [n for i, n in enumerate(names) if n in names[:i]]
    if dup:
        raise ReplayConfigError(f"{cfg.source}: policies: two policies are named {dup[0]!r}; give one a name:")
    return out


def load_replay(path: Path, fmt: str, manifest: Path | None, first_only: bool = False,
                obd_keys: Mapping[str, str] | None = None):
    """A prepared :class:`~arena_env.replay.snapshots.Replay` of a log file (``obd_keys``: the
    ``behavior_policy`` and ``campaign`` of an obd log whose path does not say them)."""
    from arena_env.replay import obd
    from arena_env.replay.log import load_log
    from arena_env.replay.snapshots import prepare

    if fmt == "obd":
        table, man = obd.read_obd(path, **dict(obd_keys or {}))
        log = load_log(table, man, name=str(path))
    else:
        log = load_log(path, manifest)
    return prepare(log, first_only=first_only)


def check_out(out: str | os.PathLike) -> None:
    """Refuse, before any work, an ``out`` that is a file or holds a run already (a replay run is one
    pass: there is nothing to resume, and another run's files must not be overwritten)."""
    from arena_env.paths import check_out_dir, run_in

    marker = run_in(check_out_dir(out))
    if marker:
        raise FileExistsError(f"{out} holds a run already ({marker}): choose another --out (a replay run scores "
                              "every policy in one pass; there is nothing to resume)")


def replay_run_config(out: str | os.PathLike) -> str | None:
    """The config of the replay run in the directory ``out`` (its ``manifest.json``), or None when ``out``
    holds no replay run."""
    try:
        meta = json.loads((Path(out) / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return str(meta.get("config_source")) if isinstance(meta, dict) and meta.get("kind") == "replay" else None


def _clean(x) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def run(cfg: ReplayConfig, out: str | os.PathLike, progress: bool = False) -> tuple[list[dict], dict, dict]:
    """Score every policy with every estimator; returns ``(rows, facts, traces)`` (traces: policy -> pyarrow Table)."""
    from arena_env.replay import metrics, ope

    t0 = time.perf_counter()
    full = load_replay(cfg.log, cfg.format, cfg.manifest, cfg.first_only, cfg.obd)
    pols = build_policies(cfg)
    if len(full):  # a policy that cannot act on this log (an unknown action, a missing attribute): name it
        first = full.select(np.arange(len(full)) == 0)
        for i, pol in enumerate(pols):
            try:
                pol.action_dist(first)
            except (ValueError, KeyError) as exc:
                raise ReplayConfigError(f"{cfg.source}: policies[{i}]: {exc}") from None
    facts: dict[str, Any] = {"log": str(cfg.log), "format": cfg.format, "n_decisions": len(full),
                             "n_cases": full.log.n_cases, "n_events": len(full.log),
                             "estimators": list(cfg.estimators), "baseline": cfg.baseline,
                             "n_bootstrap": cfg.n_bootstrap, "alpha": cfg.alpha, "seed": cfg.seed, "ks": list(cfg.ks),
                             "actions": len(full.actions), "dropped": {}, "references": {}}
    rows: list[dict] = []
    traces: dict[str, Any] = {}
    for e_i, est in enumerate(cfg.estimators):
        rep, dropped = metrics.usable(full, est)
        facts["dropped"][est] = dropped
        facts.setdefault("n_rows", {})[est] = len(rep)
        if progress:
            print(f"{est}: {len(pols)} policies on {len(rep)} decision points ...", file=sys.stderr, flush=True)
        evs = metrics.evaluate_policies(rep, pols, estimator=est, baseline=cfg.baseline, ks=cfg.ks,
                                        n_bootstrap=cfg.n_bootstrap, alpha=cfg.alpha, seed=cfg.seed)
        for ev in evs:
            v = ev.value
            r = {"estimator": est, "policy": ev.policy, "main": e_i == 0, "value": _clean(v.value),
                 "low": _clean(v.low), "high": _clean(v.high), "interval": v.interval, "n_rows": v.n_rounds,
                 "n_cases": v.n_cases, "ess": _clean(v.diagnostics.ess), "max_weight": _clean(v.diagnostics.max_weight),
                 "mean_weight": _clean(v.diagnostics.mean_weight), "match_rate": _clean(v.diagnostics.match_rate),
                 "unsupported_share": _clean(v.diagnostics.unsupported_share), "warnings": " | ".join(v.warnings),
                 "baseline": ev.policy == cfg.baseline}
            if ev.positive_rate is not None:
                r.update(positive_rate=_clean(ev.positive_rate.value), positive_low=_clean(ev.positive_rate.low),
                         positive_high=_clean(ev.positive_rate.high))
            for k, p in ev.precision_at_k.items():
                r[f"precision_at_{k}"] = _clean(p)
            r["violation_rate"] = float(sum(x["rate"] for x in ev.violations.values())) if ev.violations else 0.0
            if ev.versus is not None:
                r.update(diff=_clean(ev.versus.difference), diff_low=_clean(ev.versus.low),
                         diff_high=_clean(ev.versus.high), p_value=_clean(ev.versus.p_value))
            rows.append(r)
            if e_i == 0:
                traces[ev.policy] = ev.trace
    for name, path in cfg.references.items():
        ref = load_replay(path, cfg.format, cfg.manifest, cfg.first_only)
        r = ref.reward[~ref.censored]
        binary = bool(np.isin(r, (0.0, 1.0)).all())
        if binary:
            lo, hi = ope.binomial_interval(int(r.sum()), len(r), cfg.alpha)
        else:
            boot = np.random.default_rng(cfg.seed).choice(r, (cfg.n_bootstrap, len(r))).mean(axis=1)
            lo, hi = np.quantile(boot, [cfg.alpha / 2, 1 - cfg.alpha / 2])
        truth = float(r.mean())
        facts["references"][name] = {"log": str(path), "value": truth, "low": float(lo), "high": float(hi),
                                     "n_rows": int(len(r)), "interval": "clopper-pearson" if binary else "bootstrap"}
        for row in rows:
            if row["policy"] == name and row["value"] is not None and truth > 0:
                row["relative_error"] = abs(row["value"] - truth) / truth
    _rank(rows)
    facts["seconds"] = time.perf_counter() - t0
    return rows, facts, traces


def _rank(rows: list[dict]) -> None:
    from .stats import rank_with_ties

    for est in dict.fromkeys(r["estimator"] for r in rows):
        part = [r for r in rows if r["estimator"] == est]
        nan = float("nan")
        order, groups = rank_with_ties([r["value"] if r["value"] is not None else nan for r in part],
                                       [r["low"] if r["low"] is not None else nan for r in part],
                                       [r["high"] if r["high"] is not None else nan for r in part])
        for g in groups:
            for j, i in enumerate(g):
                part[i]["rank"] = int(np.flatnonzero(order == g[0])[0]) + 1
                part[i]["tie"] = j > 0


def _f(x, d=4) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{d}f}"


def _level(facts: dict) -> str:
    """The intervals' confidence level as a percentage, ``95`` for ``alpha`` 0.05."""
    return f"{100 * (1 - facts['alpha']):.10g}"


def _head(facts: dict) -> list[str]:
    lv = _level(facts)
    return ["rank", "policy", f"value [{lv}% CI]", "interval", f"vs baseline [{lv}% CI]", "p", "positive rate", "ESS",
            "match rate", "violations", "warnings", *(f"precision@{k}" for k in facts["ks"])]


def _ranked(rows: Sequence[dict], estimator: str) -> list[dict]:
    """The rows of ``estimator`` in leaderboard order: by rank, each group's leader first, then its tied
    rows by value (rows without a value last)."""
    return sorted((r for r in rows if r["estimator"] == estimator),
                  key=lambda r: (r["rank"], r.get("tie", False), -r["value"] if r["value"] is not None else math.inf))


def _cells(r: dict, ks: Sequence[int]) -> list[str]:
    mark = " (baseline)" if r.get("baseline") else ""
    vs = "-" if r.get("diff") is None else f"{_f(r['diff'])} [{_f(r.get('diff_low'))}, {_f(r.get('diff_high'))}]"
    return [("=" if r.get("tie") else "") + str(r.get("rank", "")), r["policy"] + mark,
            f"{_f(r['value'])} [{_f(r['low'])}, {_f(r['high'])}]", r["interval"], vs,
            "-" if r.get("p_value") is None else _f(r["p_value"], 3), _f(r.get("positive_rate")),
            _f(r.get("ess"), 0), _f(r.get("match_rate"), 3), _f(r.get("violation_rate"), 3),
            str(len(r["warnings"].split(" | "))) if r["warnings"] else "0",
            *[_f(r.get(f"precision_at_{k}"), 3) for k in ks]]


def _intro(facts: dict) -> list[str]:
    main = facts["estimators"][0]
    n = facts["n_rows"][main]
    out = [f"Replay leaderboard on `{Path(facts['log']).name}` ({facts['format']}): {facts['n_events']} events, "
           f"{facts['n_cases']} cases, {n} decision points used by `{main}` "
           f"(dropped: {', '.join(f'{k} {v}' for k, v in facts['dropped'][main].items() if v) or 'none'}), "
           f"{facts['actions']} actions.  Value: the `{main}` estimate of the mean reward per decision had the "
           f"policy decided, with its {_level(facts)}% interval; `vs baseline`: the paired difference against "
           f"`{facts['baseline']}` on the same rows and resamples ({facts['n_bootstrap']} case-clustered bootstrap "
           "resamples), with its two-sided bootstrap p-value.  `=` marks a row tied with the first row of its group "
           "(their intervals overlap).  Other estimators follow in their own table."]
    for name, ref in facts["references"].items():
        out.append(f"Reference: `{name}` measured on its own log `{Path(ref['log']).name}` (on-policy, "
                   f"{ref['n_rows']} decisions): {_f(ref['value'])} [{_f(ref['low'])}, {_f(ref['high'])}] "
                   f"({ref['interval']}); each estimator's estimate of `{name}` from the evaluated log should "
                   "match it (column `rel. error` in the estimator table).")
    return out


def markdown(rows: Sequence[dict], facts: dict) -> str:
    from .leaderboard import _md_table

    ks = facts["ks"]
    main = facts["estimators"][0]
    lines = ["# Replay leaderboard", ""] + [x for p in _intro(facts) for x in (p, "")]
    lines += _md_table(_head(facts), [_cells(r, ks) for r in _ranked(rows, main)]) + [""]
    lines += ["## Every estimator", ""] + _md_table(*_estimator_table(rows, facts)) + [""]
    warn = [(r["estimator"], r["policy"], w) for r in rows if r["warnings"] for w in r["warnings"].split(" | ")]
    if warn:
        lines += ["## Warnings", ""] + [f"- `{e}` / `{p}`: {w}" for e, p, w in warn] + [""]
    return "\n".join(lines)


def _estimator_table(rows: Sequence[dict], facts: dict) -> tuple[list[str], list[list[str]]]:
    ests = facts["estimators"]
    pols = list(dict.fromkeys(r["policy"] for r in rows))
    by = {(r["estimator"], r["policy"]): r for r in rows}
    refs = facts["references"]
    head = ["policy", *ests, *(["rel. error"] if refs else [])]
    out = []
    for p in pols:
        cells = [p]
        for e in ests:
            r = by.get((e, p))
            cells.append("-" if r is None else f"{_f(r['value'])} [{_f(r['low'])}, {_f(r['high'])}]")
        if refs:
            cells.append(", ".join(f"{e} {_f(by[(e, p)].get('relative_error'), 2)}" for e in ests
                                   if (e, p) in by and by[(e, p)].get("relative_error") is not None) or "-")
        out.append(cells)
    return head, out


def write(rows: Sequence[dict], facts: dict, traces: Mapping[str, Any], out: str | os.PathLike,
          meta: dict) -> None:
    """Every output file of a replay run (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "leaderboard.md").write_text(markdown(rows, facts), encoding="utf-8")
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "leaderboard.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, columns)
        w.writeheader()
        w.writerows(rows)
    table = pa.Table.from_pylist([{k: r.get(k) for k in columns} for r in rows])
    table = table.replace_schema_metadata({b"arena_manifest": json.dumps(meta).encode()})
    pq.write_table(table, out / "results.parquet")
    if traces:
        pq.write_table(pa.concat_tables([t.append_column("policy", pa.array([p] * t.num_rows, pa.string()))
                                         for p, t in traces.items()]), out / "traces.parquet")
    (out / "manifest.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    _report(rows, facts, meta, out)


def _report(rows: Sequence[dict], facts: dict, meta: dict, out: Path) -> Path:
    import html

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .report import _figures, _html_table, _inline, _interval_plot, _png

    ks = facts["ks"]
    main = facts["estimators"][0]
    parts = [f"<p>{_inline(p)}</p>" for p in _intro(facts)]
    parts.append(_html_table(_head(facts), [_cells(r, ks) for r in _ranked(rows, main)], "leaderboard"))
    parts.append("<h2>Every estimator</h2>" + _html_table(*_estimator_table(rows, facts), "estimators"))
    plots = []
    for est in facts["estimators"]:
        part = sorted((r for r in rows if r["estimator"] == est and r["value"] is not None),
                      key=lambda r: -r["value"])
        if not part:
            continue
        refs = tuple(ref["value"] for ref in facts["references"].values())
        fig = _interval_plot(plt, [r["policy"] for r in part], [r["value"] for r in part],
                             [r["low"] if r["low"] is not None else r["value"] for r in part],
                             [r["high"] if r["high"] is not None else r["value"] for r in part],
                             f"{est} estimate of the mean reward ({_level(facts)}% interval)", ref=refs or None)
        plots.append((f"{est}: estimated value per policy", _png(fig)))
        plt.close(fig)
    parts.append(_figures(plots))
    warn = [(r["estimator"], r["policy"], w) for r in rows if r["warnings"] for w in r["warnings"].split(" | ")]
    if warn:
        parts.append("<h2>Warnings</h2><ul>" + "".join(
            f"<li><code>{html.escape(e)}</code> / <code>{html.escape(p)}</code>: {html.escape(w)}</li>"
            for e, p, w in warn) + "</ul>")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>arena replay leaderboard</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px;
text-align: right; }} td:nth-child(2), th:nth-child(2) {{ text-align: left; }} th {{ background: #eef2f7; }}
#estimators td:first-child {{ text-align: left; }}
figure {{ margin: 1.5em 0; }} img {{ max-width: 100%; }} .meta {{ color: #666; font-size: 0.9em; }}
</style></head><body>
<h1>Replay leaderboard</h1>
{"".join(parts)}
<p class="meta">git commit {html.escape(str(meta.get("git_commit")))}, config
{html.escape(str(meta.get("config_source")))}, Python {html.escape(str(meta.get("python")))}.</p>
</body></html>
"""
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def manifest(cfg: ReplayConfig) -> dict:
    """Git commit, config, data digest and package versions of a replay run."""
    import hashlib

    from .tournament import provenance

    prov = provenance(("numpy", "pyarrow", "scikit-learn", "scipy"))
    digest = hashlib.sha256(Path(cfg.log).read_bytes()).hexdigest()
    return {"kind": "replay", "git_commit": prov["git_commit"], "config_source": cfg.source, "config": dict(cfg.raw),
            "log_sha256": digest, "python": prov["python"], "packages": prov["packages"]}
