"""The manifest: what a log's columns mean, where decisions happen, what a policy may do and what counts as success.

A manifest is a YAML file (or the same mapping in Python), validated into frozen dataclasses; every
unknown key is an error naming the file and the key.  A complete example::

    name: leads
    version: "1.0"
    case:
      id_field: lead_id              # input column holding the case id         (default case_id)
      timestamp_field: event_time    # ... the event's time                     (default timestamp)
      event_id_field: event_id       # ... a unique event id                    (default event_id)
      event_type_field: event_type   # ... the event type                       (default event_type)
      timezone: Europe/Berlin        # how to read timestamps without an offset (default: they are an error)
    columns: {action: chosen_action} # other canonical columns under another name in the input
    event_types:
      map: {email_sent: interaction.occurred}   # source types that are not canonical, and what they are
    features: [score, segment]       # attribute columns shown to policies (default: every attribute not a label)
    labels: [final_status]           # attribute columns never shown (outcome labels, back-filled state)
    define:                          # derived features, evaluated in order, each may use the ones before
      days_since_last_contact: days_since_last_interaction
    decision_points:
      - name: followup_due
        trigger: timer.elapsed       # an event type, a list of them, or timer.elapsed (synthesised timers)
        every: 1d                    # timers: the period from the case's first event (default 1d)
        until: last_event            # timers: stop at the case's last event (default) or at log_end
        condition: "days_since_last_contact > 3"
        allowed_actions: [wait, send_reminder]   # default: all
        position_field: position     # optional attribute holding the slot of a ranked decision
    allowed_actions:
      - wait
      - {action: send_reminder, description: "an email"}
      - escalate
    default_action: wait             # what history did at a decision point with no logged action
    constraints:
      - name: no_early_escalation
        rule: "action == 'escalate' and interactions < 2"    # true = violated
        severity: violation          # warning | violation | critical
        message: escalate only after two contacts
    outcomes:
      positive: [converted, meeting_booked]
      negative: [went_cold, lost]
      neutral: []
      values: {meeting_booked: 0.5}  # reward of each label (default positive 1, negative 0, neutral 0)
      value_field: null              # or: a numeric column of the outcome events holding the reward
                                     # (revenue, a return); every outcome event with a value counts
      horizon: 14d                   # count outcomes up to this long after the decision (default: any later)

Conditions, constraint rules and definitions are expressions of :mod:`.expr`, type-checked against the
log's features when the log is prepared (:func:`arena_env.replay.snapshots.prepare`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .schema import CANONICAL, EVENT_TYPES

SEVERITIES = ("warning", "violation", "critical")
TIMER = "timer.elapsed"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|h|d|w)\s*$")
_UNIT_US = {"us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000,
            "w": 7 * 86_400_000_000}


class ManifestError(ValueError):
    """A manifest that is malformed; the message names the file, the key and the fix."""


def parse_duration(text: Any, where: str) -> int:
    """A duration such as ``1d``, ``12h``, ``30m``, ``45s``, ``2w`` (or a number of seconds) in microseconds."""
    if isinstance(text, bool):
        raise ManifestError(f"{where}: expected a duration such as 1d, 12h or 30m, found {text!r}")
    if isinstance(text, (int, float)):
        us = int(round(float(text) * 1_000_000))
    else:
        m = _DURATION.match(str(text))
        if m is None:
            raise ManifestError(f"{where}: expected a duration such as 1d, 12h, 30m or 45s, found {text!r}")
        us = int(round(float(m.group(1)) * _UNIT_US[m.group(2)]))
    if us <= 0:
        raise ManifestError(f"{where}: a duration must be positive, found {text!r}")
    return us


@dataclass(frozen=True)
class CaseSpec:
    id_field: str = "case_id"
    timestamp_field: str = "timestamp"
    event_id_field: str = "event_id"
    event_type_field: str = "event_type"
    timezone: str | None = None


@dataclass(frozen=True)
class DecisionPoint:
    name: str
    trigger: tuple[str, ...]
    condition: str | None = None
    allowed_actions: tuple[str, ...] = ()
    every_us: int = 86_400_000_000
    until: str = "last_event"
    position_field: str | None = None

    @property
    def timer(self) -> bool:
        return self.trigger == (TIMER,)


@dataclass(frozen=True)
class Constraint:
    name: str
    rule: str
    severity: str = "violation"
    message: str = ""


@dataclass(frozen=True)
class Outcomes:
    positive: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()
    neutral: tuple[str, ...] = ()
    values: Mapping[str, float] = field(default_factory=dict)
    horizon_us: int | None = None
    value_field: str | None = None

    def value(self, label: str) -> float:
        if label in self.values:
            return float(self.values[label])
        return 1.0 if label in self.positive else 0.0

    @property
    def labels(self) -> tuple[str, ...]:
        return (*self.positive, *self.negative, *self.neutral)


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str = "1"
    case: CaseSpec = field(default_factory=CaseSpec)
    columns: Mapping[str, str] = field(default_factory=dict)
    event_type_map: Mapping[str, str] = field(default_factory=dict)
    features: tuple[str, ...] | None = None
    labels: tuple[str, ...] = ()
    define: Mapping[str, str] = field(default_factory=dict)
    decision_points: tuple[DecisionPoint, ...] = ()
    allowed_actions: tuple[str, ...] = ()
    action_descriptions: Mapping[str, str] = field(default_factory=dict)
    default_action: str | None = None
    constraints: tuple[Constraint, ...] = ()
    outcomes: Outcomes = field(default_factory=Outcomes)
    source: str = "<manifest>"

    def to_dict(self) -> dict:
        """The manifest as the mapping :func:`from_dict` reads (round trip)."""
        def dur(us: int) -> str:
            unit = next(u for u in ("w", "d", "h", "m", "s", "ms", "us") if us % _UNIT_US[u] == 0)
            return f"{us // _UNIT_US[unit]}{unit}"
        out: dict[str, Any] = {"name": self.name, "version": self.version,
                               "case": {k: v for k, v in vars(self.case).items() if v is not None}}
        if self.columns:
            out["columns"] = dict(self.columns)
        if self.event_type_map:
            out["event_types"] = {"map": dict(self.event_type_map)}
        if self.features is not None:
            out["features"] = list(self.features)
        if self.labels:
            out["labels"] = list(self.labels)
        if self.define:
            out["define"] = dict(self.define)
        out["decision_points"] = [
            {"name": d.name, "trigger": list(d.trigger) if len(d.trigger) > 1 else d.trigger[0],
             **({"condition": d.condition} if d.condition else {}),
             **({"allowed_actions": list(d.allowed_actions)} if d.allowed_actions != self.allowed_actions else {}),
             **({"every": dur(d.every_us), "until": d.until} if d.timer else {}),
             **({"position_field": d.position_field} if d.position_field else {})}
            for d in self.decision_points]
        out["allowed_actions"] = [{"action": a, "description": self.action_descriptions[a]}
                                  if a in self.action_descriptions else a for a in self.allowed_actions]
        if self.default_action is not None:
            out["default_action"] = self.default_action
        if self.constraints:
            out["constraints"] = [{"name": c.name, "rule": c.rule, "severity": c.severity,
                                   **({"message": c.message} if c.message else {})} for c in self.constraints]
        o = self.outcomes
        out["outcomes"] = {"positive": list(o.positive), "negative": list(o.negative), "neutral": list(o.neutral),
                           **({"values": dict(o.values)} if o.values else {}),
                           **({"value_field": o.value_field} if o.value_field else {}),
                           **({"horizon": dur(o.horizon_us)} if o.horizon_us else {})}
        return out


# ------------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------------

def _keys(d: Any, allowed: Sequence[str], where: str, required: Sequence[str] = ()) -> Mapping:
    if not isinstance(d, Mapping):
        raise ManifestError(f"{where}: expected a mapping with keys {', '.join(allowed)}, "
                            f"found {type(d).__name__} {d!r}")
    unknown = [k for k in d if k not in allowed]
    if unknown:
        raise ManifestError(f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(allowed)}")
    for k in required:
        if k not in d:
            raise ManifestError(f"{where}: the key {k!r} is required")
    return d


def _quote_hint(v: Any) -> str:
    """For a value YAML read as a boolean or a number where a string was meant (``yes``, ``no``, ``on``,
    ``off``, ``007``, ``1.0``), the hint to quote it; else ``""``."""
    if isinstance(v, bool):
        return ('; YAML reads an unquoted yes, no, on, off, true or false as a boolean: quote it as written, '
                f'e.g. "{"yes" if v else "no"}"')
    if isinstance(v, (int, float)):
        return f'; YAML reads an unquoted number as a number: quote it as written, e.g. "{v}"'
    return ""


def _str(v: Any, where: str) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ManifestError(f"{where}: expected a non-empty string, found {v!r}{_quote_hint(v)}")
    return v


def _strs(v: Any, where: str) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, (list, tuple)):
        raise ManifestError(f"{where}: expected a list of strings, found {v!r}{_quote_hint(v)}")
    out = tuple(_str(x, f"{where}[{i}]") for i, x in enumerate(v))
    dup = [x for i, x in enumerate(out) if x in out[:i]]
    if dup:
        raise ManifestError(f"{where}: {dup[0]!r} is listed twice")
    return out


def _event_type(v: str, where: str) -> str:
    if v not in EVENT_TYPES:
        raise ManifestError(f"{where}: {v!r} is not an event type; the types are {', '.join(EVENT_TYPES)}")
    return v


def from_dict(data: Mapping, source: str = "<manifest>") -> Manifest:
    """A validated :class:`Manifest` from a mapping; ``source`` (a file name) starts every error message."""
    top = ("name", "version", "case", "columns", "event_types", "features", "labels", "define",
           "decision_points", "allowed_actions", "default_action", "constraints", "outcomes")
    _keys(data, top, source, required=("name", "decision_points", "allowed_actions"))
    name = _str(data["name"], f"{source}: name")
    version = str(data.get("version", "1"))

    case_d = _keys(data.get("case", {}) or {}, ("id_field", "timestamp_field", "event_id_field",
                                                  "event_type_field", "timezone"), f"{source}: case")
    case = CaseSpec(**{k: _str(v, f"{source}: case.{k}") for k, v in case_d.items()})
    if case.timezone is not None:
        try:
            import zoneinfo
            zoneinfo.ZoneInfo(case.timezone)
        except Exception:
            raise ManifestError(f"{source}: case.timezone: unknown time zone {case.timezone!r} "
                                "(use an IANA name such as UTC or Europe/Berlin)") from None

    columns = dict(_keys(data.get("columns", {}) or {}, [c for c in CANONICAL if c not in
                                                          ("case_id", "timestamp", "event_id", "event_type")],
                         f"{source}: columns"))
    for k, v in columns.items():
        _str(v, f"{source}: columns.{k}")

    et = _keys(data.get("event_types", {}) or {}, ("map",), f"{source}: event_types")
    et_map = dict(_keys(et.get("map", {}) or {}, list((et.get("map") or {}).keys()), f"{source}: event_types.map"))
    for k, v in et_map.items():
        _str(k, f"{source}: event_types.map key")
        _event_type(v, f"{source}: event_types.map.{k}")

    features = None if data.get("features") is None else _strs(data["features"], f"{source}: features")
    labels = _strs(data.get("labels", []) or [], f"{source}: labels")
    both = set(features or ()) & set(labels)
    if both:
        raise ManifestError(f"{source}: {sorted(both)[0]!r} is both a feature and a label; a label is never "
                            "shown to a policy, remove it from one of the lists")
    define_d = data.get("define", {}) or {}
    _keys(define_d, list(define_d), f"{source}: define")
    define = {_str(k, f"{source}: define key"): _str(v, f"{source}: define.{k}") for k, v in define_d.items()}

    actions, descriptions = [], {}
    raw_actions = data["allowed_actions"]
    if not isinstance(raw_actions, list) or not raw_actions:
        raise ManifestError(f"{source}: allowed_actions: expected a non-empty list of actions")
    for i, a in enumerate(raw_actions):
        w = f"{source}: allowed_actions[{i}]"
        if isinstance(a, Mapping):
            _keys(a, ("action", "description"), w, required=("action",))
            act = _str(a["action"], f"{w}.action")
            if "description" in a:
                descriptions[act] = str(a["description"])
        else:
            act = _str(a, w)
        if act in actions:
            raise ManifestError(f"{w}: the action {act!r} is listed twice")
        actions.append(act)
    default_action = data.get("default_action")
    if default_action is not None and default_action not in actions:
        raise ManifestError(f"{source}: default_action {default_action!r} is not one of allowed_actions "
                            f"({', '.join(actions)})")

    dps = data["decision_points"]
    if not isinstance(dps, list) or not dps:
        raise ManifestError(f"{source}: decision_points: expected a non-empty list")
    points = []
    for i, d in enumerate(dps):
        w = f"{source}: decision_points[{i}]"
        _keys(d, ("name", "trigger", "condition", "allowed_actions", "every", "until", "position_field"), w,
              required=("name", "trigger"))
        trig = tuple(_event_type(t, f"{w}.trigger") for t in _strs(d["trigger"], f"{w}.trigger"))
        if TIMER in trig and len(trig) > 1:
            raise ManifestError(f"{w}.trigger: {TIMER} (synthesised timers) cannot be combined with event types; "
                                "make it a decision point of its own")
        if TIMER not in trig and ("every" in d or "until" in d):
            raise ManifestError(f"{w}: 'every' and 'until' apply to trigger {TIMER} only")
        until = d.get("until", "last_event")
        if until not in ("last_event", "log_end"):
            raise ManifestError(f"{w}.until: expected last_event or log_end, found {until!r}")
        allowed = _strs(d["allowed_actions"], f"{w}.allowed_actions") if "allowed_actions" in d else tuple(actions)
        bad = [a for a in allowed if a not in actions]
        if bad:
            raise ManifestError(f"{w}.allowed_actions: {bad[0]!r} is not one of allowed_actions ({', '.join(actions)})")
        cond = None if d.get("condition") is None else _str(d["condition"], f"{w}.condition")
        points.append(DecisionPoint(
            name=_str(d["name"], f"{w}.name"), trigger=trig, condition=cond, allowed_actions=allowed,
            every_us=parse_duration(d.get("every", "1d"), f"{w}.every"), until=until,
            position_field=None if d.get("position_field") is None else _str(d["position_field"],
                                                                             f"{w}.position_field")))
    names = [p.name for p in points]
    if len(set(names)) != len(names):
        raise ManifestError(f"{source}: decision_points: two decision points are named "
                            f"{next(n for n in names if names.count(n) > 1)!r}")

    constraints = []
    for i, c in enumerate(data.get("constraints", []) or []):
        w = f"{source}: constraints[{i}]"
        _keys(c, ("name", "rule", "severity", "message"), w, required=("name", "rule"))
        sev = c.get("severity", "violation")
        if sev not in SEVERITIES:
            raise ManifestError(f"{w}.severity: expected one of {', '.join(SEVERITIES)}, found {sev!r}")
        constraints.append(Constraint(_str(c["name"], f"{w}.name"), _str(c["rule"], f"{w}.rule"), sev,
                                      str(c.get("message", ""))))

    o = _keys(data.get("outcomes", {}) or {}, ("positive", "negative", "neutral", "values", "horizon", "value_field"),
              f"{source}: outcomes")
    # (an unquoted `negative: no` is False, not an empty list: refused with the hint to quote it)
    groups = {g: _strs([] if o.get(g) is None else o[g], f"{source}: outcomes.{g}")
              for g in ("positive", "negative", "neutral")}
    seen: dict[str, str] = {}
    for g, labs in groups.items():
        for lab in labs:
            if lab in seen:
                raise ManifestError(f"{source}: outcomes: {lab!r} is both {seen[lab]} and {g}")
            seen[lab] = g
    values = dict(_keys(o.get("values", {}) or {}, list(seen), f"{source}: outcomes.values"))
    for k, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ManifestError(f"{source}: outcomes.values.{k}: expected a number, found {v!r}")
    horizon = None if o.get("horizon") is None else parse_duration(o["horizon"], f"{source}: outcomes.horizon")
    value_field = None if o.get("value_field") is None else _str(o["value_field"], f"{source}: outcomes.value_field")
    if value_field is not None and values:
        raise ManifestError(f"{source}: outcomes: give the rewards either by label (values) or by a numeric column "
                            "(value_field), not both")
    outcomes = Outcomes(groups["positive"], groups["negative"], groups["neutral"],
                        {k: float(v) for k, v in values.items()}, horizon, value_field)

    return Manifest(name=name, version=version, case=case, columns=columns, event_type_map=et_map,
                    features=features, labels=labels, define=define, decision_points=tuple(points),
                    allowed_actions=tuple(actions), action_descriptions=descriptions,
                    default_action=default_action, constraints=tuple(constraints), outcomes=outcomes, source=source)


def load_manifest(path: str | os.PathLike) -> Manifest:
    """Read and validate a manifest YAML file; errors name the file, the key and the fix."""
    from arena_env.economy.scenario import read_yaml

    return from_dict(read_yaml(path, error=ManifestError), source=str(path))


def as_manifest(manifest: Manifest | Mapping | str | os.PathLike) -> Manifest:
    """A :class:`Manifest` from a manifest, a mapping or a path."""
    if isinstance(manifest, Manifest):
        return manifest
    if isinstance(manifest, Mapping):
        return from_dict(manifest)
    return load_manifest(manifest)
