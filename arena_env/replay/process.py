"""Process mining over loaded event logs: a PM4Py-style export, variants of positive vs negative cases,
a performance summary, and process discovery with pm4py (an optional extra).

Everything but :func:`discover` is our own NumPy/pyarrow code and needs neither pm4py nor pandas.

Licence and imports
-------------------
pm4py is **AGPL-3.0** (commercial licences are sold separately by its authors). It is not a dependency of
this project: it comes only with the optional extra ``process`` (``pip install -e ".[process]"``; ``make
install`` includes it so that CI tests discovery), and it is imported only inside :func:`discover`, never
when ``arena_env`` or this module is imported. pm4py 2.7.23 prints a licence banner to stderr on import,
but only when the importing frame is the ``__main__`` module (a script or ``python -c``
``import pm4py``); imported from a library function, as :func:`discover` does, it prints nothing, so we
neither redirect stderr nor touch pm4py's flags. pm4py brings pandas, lxml, graphviz (the Python
bindings), cvxopt, pytz and tqdm (about 200 MB); it does not bring torch.

The export (:func:`to_pm4py`)
-----------------------------
One row per event, in the log's order (by case in order of first appearance, then time, then ``seq``),
with pm4py's standard column names:

==========================  =======================  ================================================
column                      type                     value
==========================  =======================  ================================================
``case:concept:name``       string                   the case id
``concept:name``            string                   the activity (see *Activities* below)
``time:timestamp``          timestamp[us, tz=UTC]    the event's time (aware, UTC)
``org:resource``            string (nullable)        ``actor_id`` (``resource=`` another column, or None
                                                     for no column)
``lifecycle:transition``    string                   ``complete``, only with ``lifecycle=True``
``case:outcome``            string                   the case's outcome group, repeated on its events
==========================  =======================  ================================================

then any ``columns=`` copied verbatim. Our events are atomic (one timestamp, no start/complete pairs),
which is what XES calls ``complete`` and what pm4py assumes when ``lifecycle:transition`` is absent, so the
column is left out unless asked for (ProM and some XES tools expect it). ``to_pandas=True`` returns a
pandas DataFrame (``time:timestamp`` as ``datetime64[us, UTC]``); pandas is not a dependency of ours
(pm4py brings it).

Case outcome (:func:`case_outcome`)
-----------------------------------
The group of the case's *last* ``outcome`` that the manifest lists: ``positive``, ``negative`` or
``neutral`` (its ``outcomes`` section); ``none`` when the case has no listed outcome. Outcome labels the
manifest does not list are ignored.

Activities
----------
``activity=`` names what an event is: a column (default ``event_type``); a tuple of columns joined with
``:`` skipping missing parts (``("event_type", "action")`` gives ``decision.executed:call`` and
``entity.created``); or a function ``f(log)`` returning one label per event. An event without an activity
is an error that names it.

Variants (:func:`variants`, :func:`compare_variants`)
-----------------------------------------------------
A case's variant is the tuple of its activities in log order. :func:`variants` lists each variant with its
number of cases and the share of them whose outcome is positive, most frequent first (ties: the variant
seen first). :func:`compare_variants` splits the cases into positive and negative (neutral and none are
counted apart), lists the top variants of each group with their share of the group and of the other group,
and, per activity, how many cases of each group contain it at least once, the shares and the difference
(positive share minus negative share: positive means over-represented in positive cases).

Performance (:func:`performance`)
---------------------------------
Times in days. *Case duration*: last event minus first event (open cases count as far as the log goes).
*Time in state* (``state="state_after"``, or another column): a case enters a state at an event whose
state differs from the case's last known one and stays until the next event with a different state or the
case's last event; per state, the visits, the cases that visited it, and the total and mean dwell per
visit. Events without a state keep the current one. *Bottlenecks*: per transition (activity A directly
followed by B in a case), the count and the mean, median and total waiting time between the two events;
the ``top`` transitions by mean time among those seen at least ``min_count`` times.

Discovery (:func:`discover`)
----------------------------
``algorithm="inductive"`` (pm4py's inductive miner, IMf when ``noise_threshold > 0``) returns a process
tree, or the Petri net ``(net, initial_marking, final_marking)`` with ``petri_net=True``; ``"alpha"`` and
``"heuristics"`` return Petri nets. Further keyword arguments go to the pm4py function verbatim
(``noise_threshold``, ``dependency_threshold``...). The inductive miner runs without multiprocessing unless
``multi_processing=True`` is passed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Union

import numpy as np

from .log import EventLog
from .snapshots import last_index

DAY_US = 86_400_000_000
CASE_ID = "case:concept:name"
ACTIVITY = "concept:name"
TIMESTAMP = "time:timestamp"
RESOURCE = "org:resource"
LIFECYCLE = "lifecycle:transition"
OUTCOME = "case:outcome"
OUTCOME_GROUPS: tuple[str, ...] = ("positive", "negative", "neutral", "none")
"""The values of ``case:outcome``, in the order of their codes."""
ALGORITHMS: tuple[str, ...] = ("inductive", "alpha", "heuristics")
INSTALL_HINT = ("process discovery needs pm4py (AGPL-3.0), an optional extra: pip install -e \".[process]\" "
                "(make install includes it)")

ActivitySpec = Union[str, Sequence[str], Callable[[EventLog], Any]]


# ------------------------------------------------------------------------------------------------
# activities and outcomes
# ------------------------------------------------------------------------------------------------

def _column(log: EventLog, name: str, what: str):
    if name not in log.table.column_names:
        raise ValueError(f"{what}={name!r}: the log has no such column; the columns are "
                         f"{', '.join(c for c in log.table.column_names if c != 'row')}")
    return log.table.column(name)


def _activities(log: EventLog, activity: ActivitySpec):
    """The activity of every event as a pyarrow string array without nulls."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if callable(activity):
        what = f"activity={getattr(activity, '__name__', 'function')}"
        vals = activity(log)
        arr = vals if isinstance(vals, (pa.Array, pa.ChunkedArray)) else pa.array(np.asarray(vals, dtype=object))
        if len(arr) != len(log):
            raise ValueError(f"{what}: returned {len(arr)} labels for {len(log)} events; return one per event")
        arr = pc.cast(arr, pa.string())
    elif isinstance(activity, str):
        what = f"activity={activity!r}"
        arr = pc.cast(_column(log, activity, "activity"), pa.string())
    elif isinstance(activity, Sequence) and activity and all(isinstance(a, str) for a in activity):
        what = f"activity={tuple(activity)!r}"
        arr = None
        for name in activity:
            col = pc.cast(_column(log, name, "activity"), pa.string())
            # coalesce rather than null_handling="skip": pyarrow 26 drops rows whose parts are all null there
            arr = col if arr is None else pc.coalesce(pc.binary_join_element_wise(arr, col, ":"), arr, col)
    else:
        raise TypeError(f"activity={activity!r}: expected a column name, a tuple of column names or a function "
                        "f(log) returning one label per event")
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    missing = np.asarray(pc.is_null(arr)) if len(arr) else np.zeros(0, bool)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise ValueError(f"{what}: {int(missing.sum())} of {len(arr)} events have no activity (the first: case "
                         f"{log.case_ids[log.case[i]]!r}, event {log.table.column('event_id')[i].as_py()!r}); "
                         "choose a column without gaps, combine columns (activity=('event_type', 'action')) or "
                         "pass a function")
    return arr


def _codes(arr) -> tuple[np.ndarray, np.ndarray]:
    """A string array as (int64 codes with -1 for null, vocabulary as an object array)."""
    import pyarrow.compute as pc

    enc = pc.dictionary_encode(arr)
    if hasattr(enc, "combine_chunks"):
        enc = enc.combine_chunks()
    codes = np.asarray(enc.indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    return codes, np.asarray(enc.dictionary.to_pylist(), dtype=object)


def _outcome_codes(log: EventLog) -> np.ndarray:
    """Per case, the index in :data:`OUTCOME_GROUPS` of its outcome group."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out = np.full(log.n_cases, OUTCOME_GROUPS.index("none"), dtype=np.int8)
    o = log.manifest.outcomes
    if len(log) == 0 or not o.labels:
        return out
    label = log.table.column("outcome")
    group = np.asarray(pc.index_in(label, pa.array(o.labels, pa.string())).fill_null(-1).to_numpy(
        zero_copy_only=False), dtype=np.int64)  # index into the labels: positive, then negative, then neutral
    listed = group >= 0
    last = last_index(listed, log.starts[:-1][log.case])[log.starts[1:] - 1]
    has = last >= 0
    g = group[np.where(has, last, 0)]
    bounds = np.cumsum([len(o.positive), len(o.negative), len(o.neutral)])
    out[has] = np.searchsorted(bounds, g[has], side="right")
    return out


def case_outcome(log: EventLog) -> np.ndarray:
    """Per case (case index order), its outcome group: ``positive``, ``negative``, ``neutral`` or ``none``."""
    return np.asarray(OUTCOME_GROUPS, dtype=object)[_outcome_codes(log)]


# ------------------------------------------------------------------------------------------------
# the export
# ------------------------------------------------------------------------------------------------

def to_pm4py(log: EventLog, *, activity: ActivitySpec = "event_type", resource: str | None = "actor_id",
             columns: Sequence[str] = (), lifecycle: bool = False, to_pandas: bool = False):
    """The log as a PM4Py-style event table (see the module docstring): a pyarrow Table, or with
    ``to_pandas`` a pandas DataFrame."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = log.table
    out: dict[str, Any] = {CASE_ID: t.column("case_id"), ACTIVITY: _activities(log, activity),
                           TIMESTAMP: t.column("timestamp")}
    if resource is not None:
        out[RESOURCE] = pc.cast(_column(log, resource, "resource"), pa.string())
    if lifecycle:
        out[LIFECYCLE] = pa.nulls(len(log), pa.string()).fill_null("complete")
    out[OUTCOME] = pa.array(OUTCOME_GROUPS, pa.string()).take(pa.array(_outcome_codes(log)[log.case]))
    for c in columns:
        if c in out:
            raise ValueError(f"columns: {c!r} is one of the export's own columns; leave it out")
        out[c] = _column(log, c, "columns")
    table = pa.table(out)
    if not to_pandas:
        return table
    try:
        import pandas  # noqa: F401
    except ModuleNotFoundError:
        raise ImportError("to_pm4py(to_pandas=True) needs pandas, which is not a dependency of arena; install "
                          "it (pip install pandas) or the process extra (pip install -e \".[process]\")") from None
    return table.to_pandas()


# ------------------------------------------------------------------------------------------------
# variants
# ------------------------------------------------------------------------------------------------

class Variant(NamedTuple):
    """A variant: its activities, its number of cases and the share of them whose outcome is positive."""

    activities: tuple[str, ...]
    count: int
    positive_share: float


class GroupVariant(NamedTuple):
    """A variant within one outcome group: its cases in the group, their share of the group, and the share of
    the other group's cases that follow it."""

    activities: tuple[str, ...]
    count: int
    share: float
    other_share: float


class ActivityShare(NamedTuple):
    """How many positive and negative cases contain an activity at least once, their shares of each group,
    and ``difference = positive_share - negative_share``."""

    activity: str
    positive: int
    negative: int
    positive_share: float
    negative_share: float
    difference: float


@dataclass(frozen=True)
class VariantComparison:
    """Positive vs negative cases (see the module docstring)."""

    n_positive: int
    n_negative: int
    n_other: int  # cases whose outcome is neutral or none
    positive: tuple[GroupVariant, ...]  # the top variants of the positive cases
    negative: tuple[GroupVariant, ...]  # ... of the negative cases
    activities: tuple[ActivityShare, ...]  # every activity, by difference, most over-represented in positive first

    @property
    def over_positive(self) -> tuple[ActivityShare, ...]:
        """Activities more common in positive cases, largest difference first."""
        return tuple(a for a in self.activities if a.difference > 0)

    @property
    def over_negative(self) -> tuple[ActivityShare, ...]:
        """Activities more common in negative cases, largest difference first."""
        return tuple(a for a in reversed(self.activities) if a.difference < 0)


def _variant_ids(codes: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per case, the index of its variant (variants numbered in order of first appearance)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n_cases = len(starts) - 1
    # each case's codes as one fixed-width binary string: equal strings are equal sequences, exactly
    keys = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), n_cases,
        [None, pa.py_buffer(np.ascontiguousarray(starts * 4, dtype=np.int64)),
         pa.py_buffer(np.ascontiguousarray(codes, dtype=">i4").tobytes())])
    return np.asarray(pc.dictionary_encode(keys).indices.to_numpy(zero_copy_only=False), dtype=np.int64)


def _variants(log: EventLog, activity: ActivitySpec):
    codes, vocab = _codes(_activities(log, activity))
    vid = _variant_ids(codes, log.starts)
    nv = int(vid.max()) + 1 if len(vid) else 0
    first = np.full(nv, len(vid), dtype=np.int64)
    np.minimum.at(first, vid, np.arange(len(vid)))

    def acts(v: int) -> tuple[str, ...]:
        c = first[v]
        return tuple(vocab[codes[log.starts[c]:log.starts[c + 1]]].tolist())

    return codes, vocab, vid, nv, acts


def _ranked(count: np.ndarray) -> np.ndarray:
    """Indices by count (descending), ties by index (first appearance)."""
    return np.lexsort((np.arange(len(count)), -count))


def variants(log: EventLog, *, activity: ActivitySpec = "event_type") -> list[Variant]:
    """Every variant of the log with its number of cases and positive share, most frequent first."""
    _, _, vid, nv, acts = _variants(log, activity)
    count = np.bincount(vid, minlength=nv)
    pos = np.bincount(vid, weights=_outcome_codes(log) == 0, minlength=nv)
    return [Variant(acts(v), int(count[v]), float(pos[v] / count[v])) for v in _ranked(count)]


def _share(k: np.ndarray, n: int) -> np.ndarray:
    return k / n if n else np.full(len(k), np.nan)


def compare_variants(log: EventLog, *, activity: ActivitySpec = "event_type", top: int = 10) -> VariantComparison:
    """Positive vs negative cases: the ``top`` variants of each group and the activities over-represented in
    either (see the module docstring)."""
    if int(top) != top or top < 1:
        raise ValueError(f"top must be an integer >= 1, got {top!r}")
    codes, vocab, vid, nv, acts = _variants(log, activity)
    group = _outcome_codes(log)
    pos, neg = group == 0, group == 1
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    cp, cn = np.bincount(vid[pos], minlength=nv), np.bincount(vid[neg], minlength=nv)
    sp, sn = _share(cp, n_pos), _share(cn, n_neg)

    def top_of(c: np.ndarray, s: np.ndarray, other: np.ndarray) -> tuple[GroupVariant, ...]:
        order = [v for v in _ranked(c) if c[v] > 0][:int(top)]
        return tuple(GroupVariant(acts(v), int(c[v]), float(s[v]), float(other[v])) for v in order)

    # which activities each case contains at least once
    na = len(vocab)
    pairs = np.unique(log.case * max(na, 1) + codes)
    pc_, pa_ = pairs // max(na, 1), pairs % max(na, 1)
    ap = np.bincount(pa_[pos[pc_]], minlength=na)
    an = np.bincount(pa_[neg[pc_]], minlength=na)
    shp, shn = _share(ap, n_pos), _share(an, n_neg)
    diff = shp - shn
    order = np.lexsort((np.argsort(np.argsort(vocab.astype(str))), -np.nan_to_num(diff, nan=-np.inf)))
    activities = tuple(ActivityShare(str(vocab[a]), int(ap[a]), int(an[a]), float(shp[a]), float(shn[a]),
                                     float(diff[a])) for a in order)
    return VariantComparison(n_pos, n_neg, log.n_cases - n_pos - n_neg, top_of(cp, sp, sn), top_of(cn, sn, sp),
                             activities)


# ------------------------------------------------------------------------------------------------
# performance
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Durations:
    """Case durations in days (last event minus first event)."""

    count: int
    mean: float
    median: float
    p90: float
    max: float
    days: np.ndarray = field(repr=False)  # per case, case index order


class StateTime(NamedTuple):
    """Time spent in one state: visits, cases that visited it, total and mean dwell per visit (days)."""

    state: str
    visits: int
    cases: int
    total_days: float
    mean_days: float


class Transition(NamedTuple):
    """Activity ``source`` directly followed by ``target``: how often, and the waiting time between them (days)."""

    source: str
    target: str
    count: int
    mean_days: float
    median_days: float
    total_days: float


@dataclass(frozen=True)
class Performance:
    """Case durations, time in state (by total time, largest first) and bottlenecks (by mean wait, longest first)."""

    case_durations: Durations
    time_in_state: tuple[StateTime, ...]
    bottlenecks: tuple[Transition, ...]


def _durations(log: EventLog) -> Durations:
    t = log.time_us
    d = (t[log.starts[1:] - 1] - t[log.starts[:-1]]) / DAY_US
    if len(d) == 0:
        return Durations(0, np.nan, np.nan, np.nan, np.nan, d)
    return Durations(len(d), float(d.mean()), float(np.median(d)), float(np.percentile(d, 90)), float(d.max()), d)


def _time_in_state(log: EventLog, state: str) -> tuple[StateTime, ...]:
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(log)
    if n == 0:
        return ()
    codes, vocab = _codes(pc.cast(_column(log, state, "state"), pa.string()))
    case_start = log.starts[:-1][log.case]
    known = last_index(codes >= 0, case_start)
    cur = np.where(known >= 0, codes[np.maximum(known, 0)], -1)  # the case's state at each event
    prev = np.concatenate([[-1], cur[:-1]])
    prev[case_start == np.arange(n)] = -1
    enter = np.flatnonzero((cur >= 0) & (cur != prev))
    if len(enter) == 0:
        return ()
    vcase = log.case[enter]
    nxt_same = np.append(vcase[1:] == vcase[:-1], False)  # the next visit is in the same case
    end = np.where(nxt_same, log.time_us[np.append(enter[1:], 0)], log.time_us[log.starts[1:][vcase] - 1])
    dwell = end - log.time_us[enter]
    s = cur[enter]
    ns = len(vocab)
    visits = np.bincount(s, minlength=ns)
    total = np.bincount(s, weights=dwell, minlength=ns) / DAY_US
    cases = np.bincount(np.unique(vcase * ns + s) % ns, minlength=ns)
    order = np.lexsort((np.argsort(np.argsort(vocab.astype(str))), -total))
    return tuple(StateTime(str(vocab[k]), int(visits[k]), int(cases[k]), float(total[k]),
                           float(total[k] / visits[k])) for k in order if visits[k])


def _transitions(log: EventLog, activity: ActivitySpec, top: int | None, min_count: int) -> tuple[Transition, ...]:
    codes, vocab = _codes(_activities(log, activity))
    same = log.case[1:] == log.case[:-1]
    if not same.any():
        return ()
    na = len(vocab)
    key = codes[:-1][same] * na + codes[1:][same]
    wait = np.diff(log.time_us)[same]
    uk, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    total = np.bincount(inv, weights=wait) / DAY_US
    mean = total / cnt
    w = wait[np.lexsort((wait, inv))]
    lo = np.cumsum(cnt) - cnt
    median = (w[lo + (cnt - 1) // 2] + w[lo + cnt // 2]) / 2 / DAY_US
    keep = np.flatnonzero(cnt >= min_count)
    keep = keep[np.lexsort((keep, -cnt[keep], -mean[keep]))]  # mean desc, then count desc, then key
    if top is not None:
        keep = keep[:int(top)]
    return tuple(Transition(str(vocab[uk[k] // na]), str(vocab[uk[k] % na]), int(cnt[k]), float(mean[k]),
                            float(median[k]), float(total[k])) for k in keep)


def performance(log: EventLog, *, activity: ActivitySpec = "event_type", state: str = "state_after",
                top: int | None = 10, min_count: int = 1) -> Performance:
    """Case durations, time in state and the ``top`` bottleneck transitions (``None``: all) seen at least
    ``min_count`` times (see the module docstring)."""
    if top is not None and (int(top) != top or top < 1):
        raise ValueError(f"top must be an integer >= 1 or None, got {top!r}")
    if int(min_count) != min_count or min_count < 1:
        raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}")
    return Performance(_durations(log), _time_in_state(log, state), _transitions(log, activity, top, min_count))


# ------------------------------------------------------------------------------------------------
# discovery (pm4py)
# ------------------------------------------------------------------------------------------------

def discover(log: EventLog, algorithm: str = "inductive", *, activity: ActivitySpec = "event_type",
             petri_net: bool | None = None, **options: Any):
    """A process model discovered by pm4py: a ProcessTree (``inductive``), or a Petri net ``(net, initial
    marking, final marking)`` (``alpha``, ``heuristics``, or ``inductive`` with ``petri_net=True``).

    ``options`` go to pm4py's ``discover_process_tree_inductive``, ``discover_petri_net_alpha`` or
    ``discover_petri_net_heuristics`` verbatim. Needs the ``process`` extra (pm4py, AGPL-3.0), imported here
    only.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm={algorithm!r}: expected one of {', '.join(ALGORITHMS)}")
    if petri_net is False and algorithm != "inductive":
        raise ValueError(f"algorithm={algorithm!r} gives a Petri net only; drop petri_net=False or use inductive")
    if len(log) == 0:
        raise ValueError("discover: the log has no events")
    try:
        import pm4py
    except ModuleNotFoundError as exc:
        if exc.name != "pm4py":
            raise
        raise ImportError(INSTALL_HINT) from None
    df = to_pm4py(log, activity=activity, resource=None, to_pandas=True)
    keys = {"activity_key": ACTIVITY, "case_id_key": CASE_ID, "timestamp_key": TIMESTAMP}
    if algorithm == "inductive":
        options.setdefault("multi_processing", False)
        tree = pm4py.discover_process_tree_inductive(df, **options, **keys)
        return pm4py.convert_to_petri_net(tree) if petri_net else tree
    if algorithm == "alpha":
        return pm4py.discover_petri_net_alpha(df, **options, **keys)
    return pm4py.discover_petri_net_heuristics(df, **options, **keys)


__all__ = ["ALGORITHMS", "OUTCOME_GROUPS", "ActivityShare", "Durations", "GroupVariant", "Performance", "StateTime",
           "Transition", "Variant", "VariantComparison", "case_outcome", "compare_variants", "discover",
           "performance", "to_pm4py", "variants"]
