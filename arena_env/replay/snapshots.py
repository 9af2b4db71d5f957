"""Point-in-time snapshots and decision points, built incrementally and without future leakage.

:func:`prepare` turns an :class:`~.log.EventLog` and its manifest into a :class:`Replay`: the table of
decision points (one row per moment a policy could act), with the snapshot features a policy sees
there, the allowed actions, the logged action and its propensity, and the outcome that followed.

**Snapshot features** (:data:`BASE_FEATURES`, then the log's attributes, then the manifest's
``define``), computed for a case at time ``t`` from its events up to ``t`` only:

=================================  ======  ===================================================
feature                            type    value at ``t``
=================================  ======  ===================================================
``events``                         number  events of the case so far
``interactions``                   number  ``interaction.occurred`` events so far
``decisions``                      number  ``decision.executed`` events so far
``escalations``                    number  ``escalation.triggered`` events so far
``assignments``                    number  ``assignment.changed`` events so far
``reopens``                        number  ``entity.reopened`` events so far
``closed``                         number  1 if the last close/reopen event so far is a close, else 0
``state``                          string  the last ``state_after`` so far (None: none yet)
``channel``                        string  the last ``channel`` so far
``age_days``                       number  days since the case's first event
``days_in_state``                  number  days since the last ``state_after`` (or the first event)
``days_since_last_interaction``    number  days since the last interaction (NaN: none yet)
``days_since_last_event``          number  days since the case's last event
``hour``                           number  hour of ``t`` (UTC), 0-23
``weekday``                        number  day of the week of ``t`` (UTC), 0 = Monday
<attribute>                        either  the attribute's last non-missing value so far (NaN/None: none)
<define>                           either  the manifest's expression over the features above
=================================  ======  ===================================================

Outcome labels (the ``outcome`` column), the manifest's ``labels`` columns, ``payload`` and
``metadata`` are never features.  "Events up to ``t``": for a decision triggered by an event, the
events of the case up to and including the trigger in the log's order (events that share its
timestamp but come later in the case are not seen); for a timer at ``t``, every event of the case
with timestamp <= ``t``.  Every aggregate is a running count, a last index or a forward fill over
the case's sorted events, so building all snapshots is linear in the events (one pass of NumPy
cumulative operations, no per-case Python loop), and no value at ``t`` can depend on a later event
(tested by mutating every later event).

**Decision points.**  A decision point with an event ``trigger`` fires at each event of those types
whose snapshot satisfies its ``condition``.  ``trigger: timer.elapsed`` synthesises timers: every
``every`` from the case's first event until its last event (``until: last_event``) or the log's
last timestamp (``until: log_end``); timer rows already in the log are ordinary events and fire
nothing, so a rule "every day, if days_since_last_interaction > 3" works on logs that have no
timer rows.

**What history did** at a decision: the action of the first event with a logged ``action`` from the
trigger on (for a timer: after it), before the case's next decision point, if the decision point
allows that action; its ``propensity`` when logged.  None found: the manifest's ``default_action`` (propensity unknown, NaN), or no logged
action (-1).

**Outcome** of a decision: the first ``outcome.recorded`` event of the case after the decision whose
label is one of the manifest's outcomes (with ``outcomes.value_field``: that has a value in that
column), no later than ``outcomes.horizon`` after it; its reward is the label's value (or the
column's).  None: reward 0, and with a horizon the decision is *censored* (excluded by the
estimators, counted in the report) when the log ends before the horizon has passed.  Several
decisions of one case share the case's later outcome: per-decision estimates then assume the
actions do not change what follows (``first_only`` restricts to each case's first decision).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import expr
from .log import EventLog, LogError
from .manifest import Manifest, ManifestError
from .schema import TYPE_CODE

DAY_US = 86_400_000_000
COUNTS = {"events": None, "interactions": "interaction.occurred", "decisions": "decision.executed",
          "escalations": "escalation.triggered", "assignments": "assignment.changed", "reopens": "entity.reopened"}
TIME_FEATURES = ("age_days", "days_in_state", "days_since_last_interaction", "days_since_last_event", "hour",
                 "weekday")
BASE_FEATURES: dict[str, str] = {**{k: expr.NUMBER for k in COUNTS}, "closed": expr.NUMBER,
                                 "state": expr.STRING, "channel": expr.STRING,
                                 **{k: expr.NUMBER for k in TIME_FEATURES}}
"""The features every snapshot has, name -> type."""
RESERVED = ("action",)
"""Names constraints use for the decision itself (``action``: the action's name)."""


@dataclass(frozen=True)
class Replay:
    """A log prepared for replay: decision points with their snapshots, logged actions and outcomes.

    Per decision row ``k`` (rows in time order; ties by case, then the order in the case):

    Attributes:
        log: the event log.
        manifest: its manifest.
        actions: the manifest's allowed actions (the action indices below index this tuple).
        feature_types: feature name -> type, in order (base, attributes, defines).
        features: feature name -> array over decision rows (float64 with NaN, or objects with None).
        point: which decision point fired (index into ``manifest.decision_points``).
        case: the case index (into ``log.case_ids``).
        time_us: the decision's time.
        event: the index of the last event the snapshot includes.
        allowed: bool (n, n_actions), the actions allowed at the decision.
        logged: the logged action index, -1 when none.
        pscore: its propensity, NaN when unknown.
        reward: the outcome's value (0 when none).
        label: the outcome's label (None when none).
        outcome_time_us: when the outcome was recorded (-1: none).
        censored: True when the horizon reaches past the end of the log without an outcome.
        position: the decision's position (slot), 0 without a ``position_field``.
        first: True for each case's first decision.
        constraints: the manifest's constraints, compiled.
    """

    log: EventLog
    manifest: Manifest
    actions: tuple[str, ...]
    feature_types: Mapping[str, str]
    features: Mapping[str, np.ndarray] = field(repr=False)
    point: np.ndarray = field(repr=False)
    case: np.ndarray = field(repr=False)
    time_us: np.ndarray = field(repr=False)
    event: np.ndarray = field(repr=False)
    allowed: np.ndarray = field(repr=False)
    logged: np.ndarray = field(repr=False)
    pscore: np.ndarray = field(repr=False)
    reward: np.ndarray = field(repr=False)
    label: np.ndarray = field(repr=False)
    outcome_time_us: np.ndarray = field(repr=False)
    censored: np.ndarray = field(repr=False)
    position: np.ndarray = field(repr=False)
    first: np.ndarray = field(repr=False)
    constraints: tuple[tuple[Any, expr.Expr], ...] = ()

    def __len__(self) -> int:
        return len(self.point)

    @property
    def n_actions(self) -> int:
        return len(self.actions)

    def numeric_features(self) -> tuple[str, ...]:
        return tuple(k for k, t in self.feature_types.items() if t != expr.STRING)

    def snapshot(self, k: int) -> dict[str, Any]:
        """Decision row ``k``'s snapshot as a plain dict (NaN and None for missing values)."""
        return {name: (col[k] if self.feature_types[name] == expr.STRING else
                       bool(col[k]) if self.feature_types[name] == expr.BOOL else float(col[k]))
                for name, col in self.features.items()}

    def select(self, rows: np.ndarray) -> Replay:
        """The decision rows ``rows`` (an index or a boolean mask) as a Replay of their own."""
        rows = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows, dtype=np.int64)
        take = {f: getattr(self, f)[rows] for f in ("point", "case", "time_us", "event", "allowed", "logged", "pscore",
                                                     "reward", "label", "outcome_time_us", "censored", "position", "first")}
        return Replay(self.log, self.manifest, self.actions, self.feature_types,
                      {k: v[rows] for k, v in self.features.items()}, constraints=self.constraints, **take)

    def violations(self, action: np.ndarray) -> dict[str, np.ndarray]:
        """Constraint name -> bool array: whether taking ``action`` (indices, per row) violates it."""
        act = np.asarray(self.actions, dtype=object)[np.asarray(action, dtype=np.int64)]
        cols = {**self.features, "action": act}
        return {c.name: e.evaluate(cols, len(self)) for c, e in self.constraints}


# ------------------------------------------------------------------------------------------------
# running aggregates over the sorted events (one case after another)
# ------------------------------------------------------------------------------------------------

def _case_start(log: EventLog) -> np.ndarray:
    """Per event, the index of its case's first event."""
    return log.starts[:-1][log.case]


def last_index(valid: np.ndarray, case_start: np.ndarray) -> np.ndarray:
    """Per event, the index of the last event up to it (inclusive) of the same case where ``valid``; -1 if none."""
    n = len(valid)
    idx = np.where(valid, np.arange(n, dtype=np.int64), -1)
    np.maximum.accumulate(idx, out=idx)
    idx[idx < case_start] = -1
    return idx


def next_index(valid: np.ndarray, case_end: np.ndarray) -> np.ndarray:
    """Per event, the index of the first event from it on (inclusive) of the same case where ``valid``; -1 if none."""
    n = len(valid)
    idx = np.where(valid, np.arange(n, dtype=np.int64), n)
    idx = np.minimum.accumulate(idx[::-1])[::-1].copy()
    idx[idx >= case_end] = -1
    return idx


def running_count(indicator: np.ndarray, case_start: np.ndarray) -> np.ndarray:
    """Per event, how many events of its case up to it (inclusive) have ``indicator``."""
    c = np.zeros(len(indicator) + 1, dtype=np.int64)
    np.cumsum(indicator, dtype=np.int64, out=c[1:])
    return c[1:] - c[case_start]  # c[i] counts the events before i


def _codes(col) -> tuple[np.ndarray, np.ndarray]:
    """A string column as (int codes with -1 for missing, vocabulary)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    enc = pc.dictionary_encode(pc.cast(col, pa.string())).combine_chunks()
    codes = np.asarray(enc.indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    return codes, np.asarray(enc.dictionary.to_pylist() + [None], dtype=object)  # vocab[-1] is None


def _attribute_kinds(log: EventLog, manifest: Manifest) -> dict[str, str]:
    import pyarrow as pa

    where = manifest.source
    attrs = log.attributes
    wanted = manifest.features if manifest.features is not None else tuple(a for a in attrs if a not in manifest.labels)
    for name in (*(manifest.features or ()), *manifest.labels):
        if name not in attrs:
            raise ManifestError(f"{where}: {name!r} is listed as a feature or label but is not a column of "
                                f"{log.report.source} (its attribute columns are {', '.join(attrs) or 'none'})")
    kinds = {}
    for name in wanted:
        if name in BASE_FEATURES or name in RESERVED:
            raise ManifestError(f"{where}: the log's column {name!r} has the name of a built-in feature; rename it "
                                "in the file or list it under labels")
        t = log.table.column(name).type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_null(t):
            kinds[name] = expr.NUMBER
        elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
            kinds[name] = expr.STRING
        elif manifest.features is not None:
            raise ManifestError(f"{where}: feature {name!r} has type {t}; features are numbers, booleans or "
                                "strings (list it under labels to keep it out)")
    return kinds


@dataclass
class _Events:
    """Per-event running state shared by all decision rows."""

    log: EventLog
    case_start: np.ndarray
    case_end: np.ndarray
    counts: dict[str, np.ndarray]
    closed: np.ndarray
    last_state: np.ndarray
    last_interaction: np.ndarray
    strings: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # name -> (last index, codes, vocabulary)
    numbers: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (last index, values)


def _events(log: EventLog, kinds: Mapping[str, str]) -> _Events:
    import pyarrow as pa

    cs = _case_start(log)
    ce = log.starts[1:][log.case]
    tc = log.type_code
    counts = {k: np.arange(1, len(log) + 1, dtype=np.int64) - cs if t is None else running_count(tc == TYPE_CODE[t], cs)
              for k, t in COUNTS.items()}
    closing = (tc == TYPE_CODE["entity.closed"]) | (tc == TYPE_CODE["entity.reopened"])
    last_close = last_index(closing, cs)
    closed = np.where(last_close >= 0, tc[np.maximum(last_close, 0)] == TYPE_CODE["entity.closed"], False)
    strings, numbers = {}, {}
    for name in ("state_after", "channel", *[k for k, t in kinds.items() if t == expr.STRING]):
        codes, vocab = _codes(log.table.column(name))
        strings[name] = (last_index(codes >= 0, cs), codes, vocab)
    for name in (k for k, t in kinds.items() if t == expr.NUMBER):
        col = log.table.column(name)
        v = np.asarray(col.cast(pa.float64()).fill_null(np.nan).to_numpy(), dtype=np.float64) \
            if not pa.types.is_null(col.type) else np.full(len(log), np.nan)
        numbers[name] = (last_index(~np.isnan(v), cs), v)
    return _Events(log, cs, ce, counts, closed, strings["state_after"][0],
                   last_index(tc == TYPE_CODE["interaction.occurred"], cs), strings, numbers)


def _gather(ev: _Events, event: np.ndarray, t_us: np.ndarray, kinds: Mapping[str, str],
            only: frozenset[str] | None = None) -> dict[str, np.ndarray]:
    """The snapshot features at (last included event ``event``, time ``t_us``), per row (``only``: just these)."""
    log = ev.log
    want = (lambda name: True) if only is None else only.__contains__
    out: dict[str, np.ndarray] = {k: ev.counts[k][event].astype(np.float64) for k in COUNTS if want(k)}
    if want("closed"):
        out["closed"] = ev.closed[event].astype(np.float64)
    for feat, src in (("state", "state_after"), ("channel", "channel")):
        if want(feat):
            li, codes, vocab = ev.strings[src]
            j = li[event]
            out[feat] = vocab[np.where(j >= 0, codes[np.maximum(j, 0)], -1)]
    if want("age_days") or want("days_in_state"):
        t0 = log.time_us[ev.case_start[event]]
    if want("age_days"):
        out["age_days"] = (t_us - t0) / DAY_US
    if want("days_in_state"):
        ls = ev.last_state[event]
        out["days_in_state"] = (t_us - np.where(ls >= 0, log.time_us[np.maximum(ls, 0)], t0)) / DAY_US
    if want("days_since_last_interaction"):
        li = ev.last_interaction[event]
        out["days_since_last_interaction"] = np.where(li >= 0, (t_us - log.time_us[np.maximum(li, 0)]) / DAY_US,
                                                      np.nan)
    if want("days_since_last_event"):
        out["days_since_last_event"] = (t_us - log.time_us[event]) / DAY_US
    secs = t_us // 1_000_000
    if want("hour"):
        out["hour"] = ((secs // 3600) % 24).astype(np.float64)
    if want("weekday"):
        out["weekday"] = (((secs // 86400) + 3) % 7).astype(np.float64)  # 1970-01-01 was a Thursday
    for name in kinds:
        if not want(name):
            continue
        if kinds[name] == expr.STRING:
            li, codes, vocab = ev.strings[name]
            j = li[event]
            out[name] = vocab[np.where(j >= 0, codes[np.maximum(j, 0)], -1)]
        else:
            li, v = ev.numbers[name]
            j = li[event]
            out[name] = np.where(j >= 0, v[np.maximum(j, 0)], np.nan)
    return out


def _defines(manifest: Manifest, types: dict[str, str], cols: dict[str, np.ndarray] | None, n: int) -> None:
    for i, (name, text) in enumerate(manifest.define.items()):
        where = f"{manifest.source}: define.{name}"
        if name in types or name in RESERVED:
            raise ManifestError(f"{where}: {name!r} is already a feature; pick another name")
        e = expr.parse(text, types, where=where, want=None)
        types[name] = e.type
        if cols is not None:
            cols[name] = e.evaluate(cols, n)


def feature_types(log: EventLog) -> dict[str, str]:
    """The snapshot features of ``log`` under its manifest, name -> type (base, attributes, defines)."""
    types = {**BASE_FEATURES, **_attribute_kinds(log, log.manifest)}
    _defines(log.manifest, types, None, 0)
    return types


def snapshot_at(log: EventLog, case_id: str, t_us: int) -> dict[str, Any]:
    """The snapshot of case ``case_id`` at time ``t_us`` (microseconds, UTC): its events with timestamp <= t only."""
    hits = np.flatnonzero(log.case_ids == case_id)
    if not len(hits):
        raise KeyError(f"no case {case_id!r} in {log.report.source}")
    c = int(hits[0])
    lo, hi = int(log.starts[c]), int(log.starts[c + 1])
    k = lo + int(np.searchsorted(log.time_us[lo:hi], t_us, side="right")) - 1
    if k < lo:
        raise ValueError(f"case {case_id!r} has no event at or before t={t_us}; its first event is at "
                         f"{int(log.time_us[lo])}")
    kinds = _attribute_kinds(log, log.manifest)
    ev = _events(log, kinds)
    cols = _gather(ev, np.array([k]), np.array([t_us], dtype=np.int64), kinds)
    types = {**BASE_FEATURES, **kinds}
    _defines(log.manifest, types, cols, 1)
    return {name: (col[0] if types[name] == expr.STRING else bool(col[0]) if types[name] == expr.BOOL
                   else float(col[0])) for name, col in cols.items()}


# ------------------------------------------------------------------------------------------------
# decision points
# ------------------------------------------------------------------------------------------------

def _last_time(log: EventLog) -> int:
    """The log's last timestamp (microseconds); an empty log has none (the smallest int64 then)."""
    return int(log.time_us.max(initial=np.iinfo(np.int64).min))


def _timers(log: EventLog, every_us: int, until: str) -> tuple[np.ndarray, np.ndarray]:
    """Synthesised timer ticks: (time, last included event index), in case order then time."""
    n_cases = log.n_cases
    first = log.time_us[log.starts[:-1]]
    end = log.time_us[log.starts[1:] - 1] if until == "last_event" else np.full(n_cases, _last_time(log))
    n_ticks = np.maximum((end - first) // every_us, 0)
    total = int(n_ticks.sum())
    case = np.repeat(np.arange(n_cases), n_ticks)
    k = np.arange(total) - np.repeat(np.cumsum(n_ticks) - n_ticks, n_ticks) + 1
    t = first[case] + k * every_us
    # the last event of the case with time <= t.  Tick k of case c includes the case's events with
    # time - first <= k * every, i.e. from tick k_e = max(1, ceil((time - first) / every)) on.  Give case c
    # the slots offset_c + 0 .. offset_c + n_ticks_c (one more than it has ticks), tick k the slot
    # offset_c + k - 1 and each event the slot of its k_e (capped at the extra slot): event slots then grow
    # along the sorted log, and a tick's last event is the last event whose slot is <= the tick's.
    offset = np.cumsum(n_ticks + 1) - (n_ticks + 1)
    rel = log.time_us - first[log.case]
    k_e = np.clip(-(-rel // every_us), 1, n_ticks[log.case] + 1)
    slot_e = offset[log.case] + k_e - 1
    last = np.searchsorted(slot_e, offset[case] + k - 1, side="right").astype(np.int64) - 1
    return t.astype(np.int64), last


def prepare(log: EventLog, *, first_only: bool = False) -> Replay:
    """The decision points of ``log`` (see the module docstring); conditions and constraints are
    parsed and type-checked against the log's features here, so a wrong name fails now."""
    manifest = log.manifest
    kinds = _attribute_kinds(log, manifest)
    types = {**BASE_FEATURES, **kinds}
    _defines(manifest, dict(types), None, 0)  # check the definitions before the work
    ev = _events(log, kinds)
    actions = manifest.allowed_actions
    a_index = {a: i for i, a in enumerate(actions)}

    rows_event, rows_time, rows_point, rows_key = [], [], [], []
    all_types = dict(types)
    _defines(manifest, all_types, None, 0)
    conds = [None if d.condition is None else
             expr.parse(d.condition, all_types, where=f"{manifest.source}: decision_points[{i}].condition")
             for i, d in enumerate(manifest.decision_points)]
    for i, d in enumerate(manifest.decision_points):
        if d.timer:
            t, e = _timers(log, d.every_us, d.until)
            key = e.astype(np.float64) + 0.5  # a tick sits after its last included event
        else:
            e = np.flatnonzero(np.isin(log.type_code, [TYPE_CODE[x] for x in d.trigger]))
            t, key = log.time_us[e], e.astype(np.float64)
        if d.position_field is not None and d.position_field not in log.attributes:
            raise ManifestError(f"{manifest.source}: decision_points[{i}].position_field: {d.position_field!r} is "
                                f"not a column of {log.report.source} (its attribute columns are "
                                f"{', '.join(log.attributes) or 'none'})")
        if conds[i] is not None and len(e):
            # the features the condition reads (all of them when it reads a definition, which may read any)
            only = None if conds[i].names & set(manifest.define) else conds[i].names
            cols = _gather(ev, e, t, kinds, only)
            if only is None:
                _defines(manifest, dict(types), cols, len(e))
            keep = conds[i].evaluate(cols, len(e))
            e, t, key = e[keep], t[keep], key[keep]
        rows_event.append(e)
        rows_time.append(t)
        rows_point.append(np.full(len(e), i, np.int64))
        rows_key.append(key)
    event = np.concatenate(rows_event).astype(np.int64)
    time_us = np.concatenate(rows_time).astype(np.int64)
    point = np.concatenate(rows_point)
    key = np.concatenate(rows_key)
    case = log.case[event]

    # per case in order (for matching actions and first decisions), then the global time order
    by_case = np.lexsort((point, key, case))
    event, time_us, point, key, case = event[by_case], time_us[by_case], point[by_case], key[by_case], case[by_case]
    n = len(event)
    same_next = np.zeros(n, bool)
    same_next[:-1] = case[1:] == case[:-1]
    next_key = np.where(same_next, np.append(key[1:], np.inf), np.inf)
    first = np.ones(n, bool)
    first[1:] = case[1:] != case[:-1]

    # what history did: the first logged action from the trigger on (after a tick), before the next decision
    act_codes = np.full(len(log), -1, np.int64)
    act_col = log.table.column("action")
    codes, vocab = _codes(act_col)
    has = codes >= 0
    if has.any():
        lut = np.array([a_index.get(v, -1) for v in vocab[:-1]], dtype=np.int64)
        act_codes[has] = lut[codes[has]]
    nxt = next_index(has, ev.case_end)
    start = np.ceil(key).astype(np.int64)  # the trigger itself, or the event after a tick
    in_case = (start < len(log))
    in_case[in_case] &= log.case[start[in_case]] == case[in_case]
    j = np.where(in_case, nxt[np.minimum(start, len(log) - 1)], -1)
    ok = (j >= 0) & (j < next_key)
    logged = np.where(ok, act_codes[np.maximum(j, 0)], -1)
    prop_all = np.asarray(log.table.column("propensity").fill_null(np.nan).to_numpy(), dtype=np.float64)
    pscore = np.where(ok, prop_all[np.maximum(j, 0)], np.nan)
    if manifest.default_action is not None:
        logged = np.where(ok, logged, a_index[manifest.default_action])

    # the outcome: the first outcome event of a known label after the decision, within the horizon
    o = manifest.outcomes
    out_codes, out_vocab = _codes(log.table.column("outcome"))
    value_of = np.array([o.value(v) if v in o.labels else np.nan for v in out_vocab[:-1]] + [np.nan])
    if o.value_field is not None:  # the reward is a numeric column of the outcome events
        import pyarrow as pa

        if o.value_field not in log.attributes:
            raise ManifestError(f"{manifest.source}: outcomes.value_field: {o.value_field!r} is not a column of "
                                f"{log.report.source} (its attribute columns are {', '.join(log.attributes) or 'none'})")
        vcol = log.table.column(o.value_field)
        if not (pa.types.is_integer(vcol.type) or pa.types.is_floating(vcol.type)):
            raise ManifestError(f"{manifest.source}: outcomes.value_field: column {o.value_field!r} has type "
                                f"{vcol.type}, expected numbers")
        event_value = np.asarray(vcol.cast(pa.float64()).fill_null(np.nan).to_numpy(), dtype=np.float64)
        is_outcome = (log.type_code == TYPE_CODE["outcome.recorded"]) & ~np.isnan(event_value)
    else:
        is_outcome = (log.type_code == TYPE_CODE["outcome.recorded"]) & (out_codes >= 0)
        is_outcome &= ~np.isnan(value_of[out_codes])
        event_value = value_of[out_codes]
    onext = next_index(is_outcome, ev.case_end)
    after = event + 1
    in_case = after < len(log)
    in_case[in_case] &= log.case[after[in_case]] == case[in_case]
    oj = np.where(in_case, onext[np.minimum(after, len(log) - 1)], -1)
    o_time = np.where(oj >= 0, log.time_us[np.maximum(oj, 0)], -1)
    if o.horizon_us is not None:
        late = (oj >= 0) & (o_time > time_us + o.horizon_us)
        oj = np.where(late, -1, oj)
        o_time = np.where(late, -1, o_time)
        censored = (oj < 0) & (time_us + o.horizon_us > _last_time(log))
    else:
        censored = np.zeros(n, bool)
    reward = np.where(oj >= 0, event_value[np.maximum(oj, 0)], 0.0)
    label = out_vocab[np.where(oj >= 0, out_codes[np.maximum(oj, 0)], -1)]

    # global order: time, then case, then order within the case
    order = np.lexsort((np.arange(n), case, time_us))
    event, time_us, point, case = event[order], time_us[order], point[order], case[order]
    logged, pscore, reward, label, o_time, censored, first = (
        logged[order], pscore[order], reward[order], label[order], o_time[order], censored[order], first[order])
    cols = _gather(ev, event, time_us, kinds)
    types_out = dict(types)
    _defines(manifest, types_out, cols, n)
    allowed = np.zeros((n, len(actions)), bool)
    for i, d in enumerate(manifest.decision_points):
        allowed[np.ix_(point == i, [a_index[a] for a in d.allowed_actions])] = True
    # a logged action this decision point does not allow answered another decision (e.g. a request
    # executed after a timer fired in between): not what history did here
    foreign = (logged >= 0) & ~allowed[np.arange(n), np.maximum(logged, 0)]
    if foreign.any():
        logged = np.where(foreign, -1 if manifest.default_action is None else a_index[manifest.default_action],
                          logged)
        pscore = np.where(foreign, np.nan, pscore)
        if manifest.default_action is not None:
            foreign &= ~allowed[np.arange(n), a_index[manifest.default_action]]
            logged = np.where(foreign, -1, logged)
    position = np.zeros(n, np.int64)
    for i, d in enumerate(manifest.decision_points):
        if d.position_field is not None:  # a feature or not: the last value known at the decision
            import pyarrow as pa

            col = log.table.column(d.position_field)
            if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
                raise ManifestError(f"{manifest.source}: decision_points[{i}].position_field: column "
                                    f"{d.position_field!r} has type {col.type}, expected whole numbers")
            v = np.asarray(col.cast(pa.float64()).fill_null(np.nan).to_numpy(), dtype=np.float64)
            li = last_index(~np.isnan(v), ev.case_start)[event[point == i]]
            pos = np.where(li >= 0, v[np.maximum(li, 0)], np.nan)
            if np.isnan(pos).any() or (pos != np.round(pos)).any() or (pos < 0).any():
                k = int(np.flatnonzero(point == i)[np.flatnonzero(np.isnan(pos) | (pos != np.round(pos))
                                                                  | (pos < 0))[0]])
                raise LogError(f"{log.report.source}: row {int(log.table.column('row')[int(event[k])].as_py())}: "
                               f"position {pos[np.flatnonzero(point == i).tolist().index(k)]!r} of decision point "
                               f"{d.name!r} must be a whole number >= 0")
            position[point == i] = pos.astype(np.int64)
    cons = []
    ctypes = {**types_out, "action": expr.STRING}
    for i, c in enumerate(manifest.constraints):
        cons.append((c, expr.parse(c.rule, ctypes, where=f"{manifest.source}: constraints[{i}].rule")))
    rep = Replay(log, manifest, actions, types_out, cols, point, case, time_us, event, allowed, logged, pscore,
                 reward, label, o_time, censored, position, first, tuple(cons))
    return rep.select(first) if first_only else rep


__all__ = ["BASE_FEATURES", "Replay", "prepare", "snapshot_at", "feature_types", "last_index", "next_index",
           "running_count"]
