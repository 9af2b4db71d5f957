"""Scenarios: YAML files loaded into validated, frozen dataclasses.

A scenario is data: every constant of the economy model lives in it, none in code.  ``load(name)``
finds ``configs/scenarios/<name>.yaml`` (or takes a path), merges keyword overrides into it, and
validates the result.  Unknown keys and out-of-range values raise :class:`ScenarioError` naming the
file and the dotted key, with the allowed range or keys.  Nothing is ``eval``'d.

The fields, their meaning, units and ranges are documented in ``docs/scenarios.md``; each dataclass
field carries its range in ``metadata``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import numbers
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from agents.registry import UniqueKeyLoader
from arena_env.paths import PROJECT_ROOT

from .params import ABSOLUTE_BOUNDS, PARAM_NAMES, resolve

METRIC_NAMES: tuple[str, ...] = (
    "SCAN_FREQUENCY",
    "XP_VELOCITY",
    "RETENTION_RATE",
    "MISSION_COMPLETION",
    "STREAK_LENGTH",
    "FEEDBACK_QUALITY",
)

SCENARIO_DIRS = [PROJECT_ROOT / "configs" / "scenarios"]
"""Where scenario names are looked up (``ARENA_SCENARIO_PATH`` entries come first)."""


class ScenarioError(ValueError):
    """A scenario file or override is invalid; the message names the file, the key and the fix."""


def _r(lo=None, hi=None, doc=""):
    return {"range": (lo, hi), "doc": doc}


def _f(default, lo=None, hi=None, doc=""):
    return field(default=default, metadata=_r(lo, hi, doc))


@dataclass(frozen=True)
class Segment:
    """A user segment: its share of the population and its behavioural constants."""

    name: str = _f("users")
    weight: float = _f(1.0, 0.0, None, "relative share of the population")
    recruit_from: int = _f(0, 0, 32000, "first day users of this segment arrive")
    recruit_until: int | None = _f(None, 0, 32000, "last arrival day (default: max(recruit_from, recruitment.days))")
    base_logit: float = _f(-0.8, -10.0, 10.0, "activity logit of an average user")
    trait_sd: float = _f(1.0, 0.0, 5.0, "spread of personal engagement (logit)")
    beta_xp: float = _f(1.0, 0.0, 10.0, "weight of the perceived value of today's XP")
    beta_ref: float = _f(0.8, 0.0, 10.0, "weight of the gain or loss against the reference point")
    loss_aversion: float = _f(2.25, 1.0, 10.0, "a cut weighs this many times more than a raise")
    ref_rate: float = _f(0.1, 0.0, 1.0, "daily adaptation of the reference point")
    beta_streak: float = _f(0.35, 0.0, 5.0, "extra effort to keep a live streak, per log(1+streak)")
    beta_sat: float = _f(1.0, 0.0, 10.0, "weight of satisfaction in the activity logit")
    beta_streak_bonus: float = _f(2.0, 0.0, 10.0, "weight of the anticipated streak premium x / (1 + x), "
                                                   "x = premium / unit")
    xp_habituation_days: float | None = _f(21.0, 0.1, 1e6, "time constant of the fading response to XP with tenure "
                                                            "(null: no habituation)")
    xp_habit_floor: float = _f(0.3, 0.0, 1.0, "share of the response to XP that remains after habituation")
    beta_onboard: float = _f(3.0, 0.0, 20.0, "weight of the first-scan bonus x / (1 + x) for a new user...")
    onboard_days: float = _f(7.0, 0.1, 1e6, "...fading with tenure on this time constant, days")
    useful_scans: int = _f(6, 1, 250, "scans of a user's day that carry value; the rest are duplicates")
    useful_feedback: int = _f(3, 1, 250, "feedbacks of a user's day that carry value")
    scans_per_day: float = _f(3.0, 1.0, 60.0, "mean scans of an active day at scanXp 10")
    scan_elasticity: float = _f(0.35, 0.0, 3.0, "d log(scans) / d log(scanXp + 1)")
    feedback_logit: float = _f(-1.6, -10.0, 10.0, "per-scan feedback logit at the defaults")
    feedback_sd: float = _f(0.8, 0.0, 5.0, "spread of personal feedback propensity (logit)")
    feedback_elasticity: float = _f(0.6, 0.0, 5.0, "response of feedback to log(feedbackXp + 1)")
    substitution: float = _f(0.5, 0.0, 5.0, "feedback lost as scanning pays more than feedback (log ratio)")
    photo_prob: float = _f(0.3, 0.001, 0.999, "P(photo | feedback) at photoXp 10")
    photo_elasticity: float = _f(0.5, 0.0, 5.0, "response of photos to log(photoXp + 1)")
    issue_rate: float = _f(0.05, 0.0, 5.0, "issue reports per active day at issueReportXp 25")
    status_rate: float = _f(0.08, 0.0, 5.0, "status reports per active day at statusReportXp 20")
    report_elasticity: float = _f(0.7, 0.0, 5.0, "d log(reports) / d log(XP + 1)")
    novelty: float = _f(0.6, 0.0, 5.0, "activity logit boost on the day of enrolment")
    novelty_days: float = _f(10.0, 0.1, 1000.0, "time constant of the novelty decay, days")
    churn_logit: float = _f(-6.5, -20.0, 5.0, "daily churn logit of an engaged user")
    churn_idle: float = _f(0.9, 0.0, 10.0, "churn per log(1 + idle days)")
    churn_streak: float = _f(0.3, 0.0, 10.0, "churn protection per log(1 + streak)")
    churn_sat: float = _f(2.0, 0.0, 20.0, "churn protection per unit of satisfaction")
    sat_base: float = _f(0.0, -10.0, 10.0, "satisfaction logit at neutral rewards")
    sat_ref: float = _f(1.0, 0.0, 10.0, "satisfaction response to gains/losses vs the reference")
    sat_rank: float = _f(0.5, 0.0, 10.0, "satisfaction response to rank among site peers")
    sat_xp: float = _f(0.5, 0.0, 10.0, "satisfaction response to perceived XP value")


@dataclass(frozen=True)
class Recruitment:
    initial_fraction: float = _f(0.5, 0.0, 1.0, "share of users enrolled on day 0")
    days: int = _f(14, 0, 32000, "the others arrive uniformly over days 1..days")


@dataclass(frozen=True)
class Economy:
    xp_unit: float = _f(50.0, 1.0, 1e6, "XP scale of the perceived-value curve log(1 + XP/unit)")
    inflation_xp: float = _f(4000.0, 1.0, 1e9, "cumulative XP at which a reward counts half in log(1 + XP/unit)")
    rank_strength: float = _f(0.5, 0.0, 10.0, "weight of rank among site peers (0 turns interference off)")
    satisfaction_rate: float = _f(0.1, 0.0, 1.0, "daily adaptation of satisfaction")
    mission_period: int = _f(7, 1, 365, "days per mission")
    mission_stretch: float = _f(1.0, 0.0, 10.0, "mission target = stretch x recent scans/day x period")
    mission_min_rate: float = _f(0.5, 0.0, 100.0, "floor of the recent scan rate used for targets")
    mission_xp: int = _f(100, 0, 100000, "XP for a completed mission (not an agent parameter)")
    gain_clip: float = _f(3.0, 0.1, 100.0, "bound of the relative gain or loss against the reference point")
    weekday: tuple[float, ...] = _f((0.05, 0.05, 0.05, 0.0, -0.05, -0.35, -0.45), -5.0, 5.0,
                                     "activity logit shift per weekday, day 0 is a Monday")


@dataclass(frozen=True)
class Values:
    """What a unit of user activity is worth to the tenant, in ``objective.currency``."""

    active_day: float = _f(0.08, 0.0, 1e6, "an active user-day (engagement)")
    scan: float = _f(0.02, 0.0, 1e6, "a useful scan (at most useful_scans per user-day)")
    feedback: float = _f(0.05, 0.0, 1e6, "a genuine useful feedback (at most useful_feedback per user-day)")
    photo: float = _f(0.05, 0.0, 1e6, "a genuine photo")
    issue: float = _f(0.35, 0.0, 1e6, "a genuine issue report")
    status: float = _f(0.08, 0.0, 1e6, "a genuine status report")


@dataclass(frozen=True)
class Junk:
    """Low-effort actions: the share of feedback, photos and reports that is genuine is
    ``junk_xp / (junk_xp + price)`` at the price paid per action (gaming grows with the reward)."""

    feedback: float = _f(60.0, 0.01, 1e9, "feedback price at which half of the feedback is junk")
    photo: float = _f(40.0, 0.01, 1e9, "photo price at which half of the photos are junk")
    issue: float = _f(60.0, 0.01, 1e9, "issue-report price at which half of the reports are junk")
    status: float = _f(50.0, 0.01, 1e9, "status-report price at which half of the reports are junk")


@dataclass(frozen=True)
class Objective:
    kind: str = _f("value", None, None, "value (money per enrolled user per day) or tendedloop (the composite)")
    currency: str = _f("EUR", None, None, "unit of the value objective")
    values: Values = field(default_factory=Values)
    junk: Junk = field(default_factory=Junk)
    churn_cost: float = _f(5.0, 0.0, 1e6, "what a lost user is worth, charged by the day's churn hazards")
    weights: dict[str, float] = _f(None, -100.0, 100.0, "tendedloop: reward weight per metric (lift over control)")
    xp_cost: float = _f(0.0005, 0.0, 100.0, "value: money per XP credited; tendedloop: reward units per XP per user")


@dataclass(frozen=True)
class GuardrailSettings:
    update_interval_min: int = _f(60, 5, 43200, "minimum simulated minutes between accepted updates")
    delta_limit_pct: float = _f(50.0, 5.0, 100.0, "max change per update, percent of the current value")
    retention_cliff: float = _f(0.30, 0.0, 1.0, "retention below this trips the circuit breaker")
    cliff_min_sample: int = _f(30, 0, 10**9, "enrolled users needed before the breaker can trip")
    anomaly_run: int = _f(4, 1, 1000, "consecutive max-delta updates that raise the anomaly flag")
    bounds: dict[str, tuple[int, int]] = _f(None, None, None, "hard bounds per parameter [lo, hi]")


@dataclass(frozen=True)
class Budget:
    daily_xp_per_user: float | None = _f(None, 0.0, 1e9, "XP per enrolled user per day: one pot shared by the "
                                                             "treatments, one for the control (null: none)")


@dataclass(frozen=True)
class ScheduledAction:
    day: int = _f(0, 0, 32000, "day at whose start the action happens")
    action: str = _f("reset_breaker", None, None, "one of " + ", ".join(
        ("reset_breaker", "trip_breaker", "pause", "resume", "complete")))
    variant: int | None = _f(None, 1, 4, "treatment index (1..n_agents) for breaker actions; null = all")


@dataclass(frozen=True)
class Preset:
    name: str = _f("preset")
    overrides: dict[str, int] = _f(None, None, None, "parameter overrides over the tenant config")


CARD_PROPERTIES: tuple[str, ...] = ("levers", "corners", "engagement", "adaptive", "control", "budget")
"""The benchmark properties the scenario report card checks (``arena_env/economy/card.py``)."""


@dataclass(frozen=True)
class CardSettings:
    exempt: dict[str, str] = _f(None, None, None, "report-card properties that do not apply, each with the reason")


@dataclass(frozen=True)
class Scenario:
    """A validated scenario.  See docs/scenarios.md for every field."""

    name: str = _f("scenario")
    description: str = _f("")
    n_users: int = _f(10000, 10, 10_000_000, "users recruited over the experiment")
    n_agents: int = _f(2, 1, 4, "treatment variants, each controlled by one agent")
    max_days: int = _f(90, 1, 32000, "episode length in simulated days")
    days_per_step: int = _f(1, 1, 365, "simulated days per env step (agents decide once per step)")
    allocation: tuple[float, ...] | None = _f(None, 0.0, None, "weights of control and treatments (null: equal)")
    site_size: int = _f(50, 1, 100000, "users per site (shared leaderboard)")
    metric_window: int = _f(7, 1, 365, "trailing window of the metrics, days")
    recruiting_days: int = _f(0, 0, 32000, "days in RECRUITING before RUNNING (updates rejected)")
    tenant: dict[str, int] = _f(None, None, None, "tenant config over the global defaults")
    recruitment: Recruitment = field(default_factory=Recruitment)
    economy: Economy = field(default_factory=Economy)
    objective: Objective = field(default_factory=Objective)
    guardrails: GuardrailSettings = field(default_factory=GuardrailSettings)
    budget: Budget = field(default_factory=Budget)
    schedule: tuple[ScheduledAction, ...] = _f((), None, None, "researcher actions by day")
    presets: tuple[Preset, ...] = _f((), None, None, "named configurations (the discrete action set)")
    segments: tuple[Segment, ...] = _f((), None, None, "user segments")
    card: CardSettings = field(default_factory=CardSettings)
    source: str = _f("<keywords>", None, None, "where the scenario came from")

    @property
    def n_variants(self) -> int:
        return self.n_agents + 1

    @property
    def tenant_config(self) -> dict[str, int]:
        return resolve(self.tenant)


# --- loading ----------------------------------------------------------------------------------------

def scenario_names() -> list[str]:
    """Names of the scenarios shipped in ``configs/scenarios/`` (and on ``ARENA_SCENARIO_PATH``)."""
    names = set()
    for d in _search_dirs():
        names.update(p.stem for p in d.iterdir() if p.suffix in (".yaml", ".yml"))
    return sorted(names)


def _search_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("ARENA_SCENARIO_PATH", "").split(os.pathsep) if p]
    return [d for d in extra + SCENARIO_DIRS if d.is_dir()]


def find(name: str | os.PathLike) -> Path:
    """The file of a scenario given by name or path."""
    if not isinstance(name, (str, os.PathLike)):
        raise ScenarioError(f"scenario: expected a scenario name (one of {', '.join(scenario_names())}), a path "
                            f"to a .yaml file or a Scenario object, got {type(name).__name__} {name!r}")
    p = Path(name)
    if p.suffix in (".yaml", ".yml") or p.is_file():
        if p.is_dir():
            raise ScenarioError(f"scenario file {str(p)!r} is a directory, not a file")
        if not p.is_file():
            raise ScenarioError(f"scenario file {str(p)!r} does not exist")
        return p
    for d in _search_dirs():
        for ext in (".yaml", ".yml"):
            cand = d / f"{name}{ext}"
            if cand.is_file():
                return cand
    raise ScenarioError(
        f"unknown scenario {str(name)!r}; known: {', '.join(scenario_names()) or '(none found)'} "
        "(or pass a path to a .yaml file)"
    )


class _Loader(UniqueKeyLoader):  # libyaml's when PyYAML has it: ~10x faster
    """The agents' safe loader (a key given twice in one mapping is an error), plus the exponent literals
    that YAML 1.1 reads as strings: ``1e5`` or ``2E+6`` (integer mantissa, exponent >= 0) are integers,
    ``1e-3`` or ``1.5e3`` floats."""


_EXP_INT = re.compile(r"^[-+]?[0-9][0-9_]*[eE]\+?[0-9]+$")
_EXP_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$")
_INT_TAG, _FLOAT_TAG = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"


def _construct_int(loader, node):
    text = loader.construct_scalar(node).replace("_", "")
    if _EXP_INT.match(text):
        mantissa, exponent = re.split("[eE]", text)
        return int(mantissa) * 10 ** int(exponent)
    return yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)


_Loader.add_implicit_resolver(_INT_TAG, _EXP_INT, list("-+0123456789"))
_Loader.add_implicit_resolver(_FLOAT_TAG, _EXP_FLOAT, list("-+0123456789."))
_Loader.add_constructor(_INT_TAG, _construct_int)
_SAFE_LOADER = _Loader
_PARSED: dict[tuple, dict] = {}  # scenario files by (path, mtime, size): an env is built per tournament cell


def read_yaml(path: str | os.PathLike, error: type[ValueError] = ScenarioError) -> dict:
    """A YAML file whose top level is a mapping (empty file: ``{}``); an unreadable file, bytes that are
    not UTF-8, malformed YAML or another top level raises ``error`` naming the file (and the line and
    column)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise error(f"{path}: cannot read the file: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise error(f"{path}: not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line}, column {column} is not "
                    "valid UTF-8; save the file as UTF-8 (YAML files are read as UTF-8)") from None
    try:
        data = yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"{path}: malformed YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def yaml_value(text: str):
    """One YAML value read as the files are (``1e-3`` is a float, ``2e5`` an integer), e.g. a ``--set``
    override on a command line; ``yaml.YAMLError`` when it is not valid YAML."""
    return yaml.load(text, Loader=_SAFE_LOADER)


def deep_merge(base: Mapping, over: Mapping) -> dict:
    """Recursive merge of mappings (``over`` wins; lists and scalars are replaced whole)."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def load(name: str | os.PathLike = "default", **overrides: Any) -> Scenario:
    """Load, merge keyword overrides (nested mappings merge key by key) and validate a scenario."""
    path = find(name)
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _PARSED:
        if len(_PARSED) > 64:
            _PARSED.clear()
        _PARSED[key] = read_yaml(path)
    data = copy.deepcopy(_PARSED[key])
    if overrides:
        data = deep_merge(data, overrides)
    return from_mapping(data, source=str(path))


def from_mapping(data: Mapping, source: str = "<mapping>") -> Scenario:
    """Validate a plain mapping into a :class:`Scenario`."""
    data = dict(data)
    data.pop("source", None)
    sc = _build(Scenario, data, "", source)
    sc = dataclasses.replace(sc, source=source)
    _check_scenario(sc, source)
    return sc


def _err(source: str, key: str, msg: str) -> ScenarioError:
    return ScenarioError(f"{source}: {key or '(top level)'}: {msg}")


def _build(cls, data: Any, prefix: str, source: str):
    if not isinstance(data, Mapping):
        raise _err(source, prefix, f"expected a mapping, got {type(data).__name__} {data!r}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else str(unknown[0])
        raise _err(source, key, f"unknown key; allowed keys here: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _coerce(hints[name], value, fields[name].metadata.get("range", (None, None)), key, source)
    return cls(**kwargs)


def _int_hint(value) -> str:
    """How to write ``value`` as an integer, if it is one in disguise (``"100"``, ``100.0``)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return ""
    if isinstance(value, (bool, numbers.Integral)) or not math.isfinite(x) or not x.is_integer():
        return ""
    return f" (write {int(x)}{' without quotes' if isinstance(value, str) else ''})"


def _coerce(tp, value, rng, key, source):
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is Union or (origin is not None and type(None) in args and len(args) == 2):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, rng, key, source)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key, source)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _err(source, key, f"expected a list, got {type(value).__name__} {value!r}")
        item = args[0]
        return tuple(_coerce(item, v, rng, f"{key}[{i}]", source) for i, v in enumerate(value))
    if origin is dict:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise _err(source, key, f"expected a mapping, got {type(value).__name__} {value!r}")
        vt = args[1]
        return {str(k): _coerce(vt, v, rng, f"{key}.{k}", source) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise _err(source, key, f"expected true or false, got {value!r}")
        return value
    if tp in (int, float):
        # Python or NumPy numbers; booleans and strings are not numbers (YAML's 1e5 is read as a
        # number by the loader), and an integer field takes integers only, not 100.0
        if tp is int:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise _err(source, key, f"expected an integer, got {type(value).__name__} {value!r}{_int_hint(value)}")
            value = int(value)
        else:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise _err(source, key, f"expected a number, got {type(value).__name__} {value!r}")
            value = float(value)
            if not math.isfinite(value):
                raise _err(source, key, f"must be finite, got {value!r}")
        lo, hi = rng
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise _err(source, key, f"{value!r} is out of range; allowed {lo if lo is not None else '-inf'}"
                                    f"..{hi if hi is not None else 'inf'}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise _err(source, key, f"expected a string, got {type(value).__name__} {value!r}")
        return value
    raise _err(source, key, f"unsupported type {tp}")  # pragma: no cover - a bug in the schema


_ACTIONS = ("reset_breaker", "trip_breaker", "pause", "resume", "complete")


def _check_hard_bounds(sc: Scenario, source: str) -> None:
    """The tenant config (global defaults included) and every preset value lie within the scenario's
    hard bounds (``guardrails.bounds``, else ``params.ABSOLUTE_BOUNDS``).  A value outside them would
    make the first guardrail update jump into the bounds whatever the delta limit (tenant scanXp 30
    with bounds [0, 20]: a +5% request applies 20, -33%)."""
    bounds = sc.guardrails.bounds or {}

    def check(key: str, name: str, value: int, what: str) -> None:
        alo, ahi = ABSOLUTE_BOUNDS[name]
        lo, hi = bounds.get(name, (alo, ahi))
        if lo <= value <= hi:
            return
        if name in bounds:
            origin = f"guardrails.bounds.{name}"
            widen = f" or widen guardrails.bounds.{name} (at most to the absolute bounds [{alo}, {ahi}])" \
                if alo <= value <= ahi else ""
        else:
            origin, widen = "the absolute bounds, params.ABSOLUTE_BOUNDS", ""
        raise _err(source, key, f"{what}{value} is out of range: the hard bounds of {name} are [{lo}, {hi}] "
                                f"({origin}); fix: set {key} to a value in [{lo}, {hi}]{widen}")

    tenant = sc.tenant or {}
    for name, value in resolve(tenant).items():
        check(f"tenant.{name}", name, value, "" if name in tenant else "not set, so the global default ")
    for i, p in enumerate(sc.presets):
        for name, value in (p.overrides or {}).items():
            check(f"presets[{i}].overrides.{name}", name, value, "")


def _check_scenario(sc: Scenario, source: str) -> None:
    """Cross-field checks that a single field's range cannot express."""
    for k, reason in (sc.card.exempt or {}).items():
        if k not in CARD_PROPERTIES:
            raise _err(source, f"card.exempt.{k}", f"unknown property; expected one of {', '.join(CARD_PROPERTIES)}")
        if not reason.strip():
            raise _err(source, f"card.exempt.{k}", "needs the reason why the property does not apply")
    if not sc.segments:
        raise _err(source, "segments", "at least one segment is required")
    if sum(s.weight for s in sc.segments) <= 0:
        raise _err(source, "segments", "segment weights must not all be 0")
    for i, s in enumerate(sc.segments):
        until = s.recruit_until if s.recruit_until is not None else max(s.recruit_from, sc.recruitment.days)
        if until < s.recruit_from:
            raise _err(source, f"segments[{i}].recruit_until", f"{until} is before recruit_from {s.recruit_from}")
    if len(sc.segments) > 127:
        raise _err(source, "segments", "at most 127 segments")
    for section, items in (("segments", sc.segments), ("presets", sc.presets)):
        first: dict[str, int] = {}
        for i, item in enumerate(items):
            j = first.setdefault(item.name, i)
            if j != i:  # agents see the presets by name (agents.Context.presets): one of the two would be lost
                raise _err(source, f"{section}[{i}].name", f"{item.name!r} is also the name of {section}[{j}]; "
                                                           f"give every entry of {section} a name of its own")
    if sc.allocation is not None:
        if len(sc.allocation) != sc.n_variants:
            raise _err(source, "allocation", f"needs {sc.n_variants} weights (control first, then "
                                             f"{sc.n_agents} treatments), got {len(sc.allocation)}")
        if any(a <= 0 for a in sc.allocation):
            raise _err(source, "allocation", "every variant, the control included, needs a positive weight")
    for k in sc.tenant or {}:
        if k not in PARAM_NAMES:
            raise _err(source, f"tenant.{k}", f"unknown economy parameter; expected one of {', '.join(PARAM_NAMES)}")
    if sc.objective.kind not in ("value", "tendedloop"):
        raise _err(source, "objective.kind", f"unknown objective {sc.objective.kind!r}; expected value or tendedloop")
    if sc.objective.weights is not None and sc.objective.kind != "tendedloop":
        raise _err(source, "objective.weights", "metric weights belong to kind: tendedloop; the value objective "
                                                "prices activity in objective.values")
    for k in (sc.objective.weights or {}):
        if k not in METRIC_NAMES:
            raise _err(source, f"objective.weights.{k}", f"unknown metric; expected one of {', '.join(METRIC_NAMES)}")
    for k, b in (sc.guardrails.bounds or {}).items():
        if k not in PARAM_NAMES:
            raise _err(source, f"guardrails.bounds.{k}", f"unknown economy parameter; expected one of {', '.join(PARAM_NAMES)}")
        lo, hi = ABSOLUTE_BOUNDS[k]
        if len(b) != 2 or not lo <= b[0] <= b[1] <= hi:
            raise _err(source, f"guardrails.bounds.{k}", f"needs [lo, hi] with {lo} <= lo <= hi <= {hi}, got {list(b)}")
    if len(sc.economy.weekday) != 7:
        raise _err(source, "economy.weekday", f"needs 7 values (Monday first), got {len(sc.economy.weekday)}")
    for i, a in enumerate(sc.schedule):
        if a.action not in _ACTIONS:
            raise _err(source, f"schedule[{i}].action", f"unknown action {a.action!r}; expected one of {', '.join(_ACTIONS)}")
        if a.variant is not None and a.variant > sc.n_agents:
            raise _err(source, f"schedule[{i}].variant", f"{a.variant} but the scenario has {sc.n_agents} treatments")
    for i, p in enumerate(sc.presets):
        for k, v in (p.overrides or {}).items():
            if k not in PARAM_NAMES:
                raise _err(source, f"presets[{i}].overrides.{k}", f"unknown economy parameter; expected one of {', '.join(PARAM_NAMES)}")
    _check_hard_bounds(sc, source)
    if sc.n_users > 2**31 - 1:
        raise _err(source, "n_users", "too large")
