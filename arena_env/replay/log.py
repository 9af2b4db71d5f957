"""Event logs: loading Parquet, JSONL and CSV files into the canonical schema, validated, sorted, and
filtered by object.

:func:`load_log` reads a file (or takes a pyarrow table), renames the manifest's columns to the
canonical ones (:mod:`.schema`), and checks every row.  A problem raises :class:`LogError` naming the
file, the 1-based data row (and, for text files, the line), the field and the fix; nothing is
coerced silently:

* a required column that is absent, or a required field (case id, event id, timestamp, event type)
  that is empty in some row;
* an event type that is neither canonical nor mapped by the manifest's ``event_types.map``;
* a timestamp that cannot be read, or timestamps some of which carry a UTC offset and some not
  (naive timestamps are read in ``case.timezone`` when the manifest gives one, else they are an error);
* the same event id twice;
* a propensity outside (0, 1], or an action that is not one of the manifest's allowed actions;
* malformed ``object_refs``.

Rows are then sorted stably by case (in order of first appearance), timestamp and ``seq`` (when
given; else the input order breaks ties).  If that moved any row the log's :attr:`EventLog.report`
says how many, so that unsorted input is visible, never silently "fixed".  Nothing is dropped: every
input column survives, and ``row`` keeps each event's place in its source file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .manifest import Manifest, as_manifest
from .schema import CANONICAL, EVENT_TYPES, REQUIRED, STRING_FIELDS, TYPE_CODE, object_ref_type

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
           ".csv": "csv"}


class LogError(ValueError):
    """An event log that cannot be used as it is; the message names the file, row, field and fix."""


@dataclass(frozen=True)
class LoadReport:
    """What loading found: sizes, and what was done to the rows (sorted, how many moved)."""

    source: str
    n_events: int
    n_cases: int
    moved: int = 0  # events that came after a later event of their case in the input
    attributes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        s = f"{self.source}: {self.n_events} events in {self.n_cases} cases"
        if self.moved:
            s += (f"; {self.moved} events came after a later event of their case and were sorted into time order "
                  "(stable)")
        return s + "".join(f"; {n}" for n in self.notes)


@dataclass(frozen=True)
class EventLog:
    """A loaded log: the canonical pyarrow table (sorted by case and time) and NumPy views of it.

    Attributes:
        table: canonical columns, then attributes, then ``row`` (1-based row in the source).
        manifest: the manifest it was loaded with.
        report: what loading found and did.
        case: per event, the case's index (0..n_cases-1, cases in order of first appearance).
        case_ids: per case index, the case id.
        starts: per case, the index of its first event (``starts[c]:starts[c+1]`` are its events;
            length n_cases + 1).
        time_us: per event, the timestamp in microseconds since the epoch (UTC).
        type_code: per event, the index of its type in :data:`~.schema.EVENT_TYPES`.
    """

    table: Any
    manifest: Manifest
    report: LoadReport
    case: np.ndarray = field(repr=False)
    case_ids: np.ndarray = field(repr=False)
    starts: np.ndarray = field(repr=False)
    time_us: np.ndarray = field(repr=False)
    type_code: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def n_cases(self) -> int:
        return len(self.case_ids)

    @property
    def attributes(self) -> tuple[str, ...]:
        return self.report.attributes

    def column(self, name: str) -> np.ndarray:
        """One column as a NumPy array (strings as objects with None for missing, numbers as float64 with NaN)."""
        return _numpy(self.table.column(name))

    def filter_by_object(self, object_type: str, object_id: str) -> EventLog:
        """The events that reference the object ``(object_type, object_id)`` in ``object_refs`` (object-centric logs)."""
        import pyarrow.compute as pc

        refs = self.table.column("object_refs")
        flat = pc.list_flatten(refs)
        parent = pc.list_parent_indices(refs).to_numpy()
        hit = np.asarray(pc.and_(pc.equal(pc.struct_field(flat, "object_type"), object_type),
                                 pc.equal(pc.struct_field(flat, "object_id"), object_id)).fill_null(False))
        keep = np.zeros(len(self), dtype=bool)
        keep[parent[hit]] = True
        return _from_sorted(self.table.filter(keep), self.manifest,
                            self.report.source + f" [object {object_type}={object_id}]", self.report.attributes)

    def filter_cases(self, mask: np.ndarray) -> EventLog:
        """The events of the cases where ``mask`` (per case index) is true."""
        keep = np.asarray(mask, dtype=bool)[self.case]
        return _from_sorted(self.table.filter(keep), self.manifest, self.report.source, self.report.attributes)

    def to_parquet(self, path: str | os.PathLike) -> None:
        """Write the canonical table (with attributes) as Parquet; :func:`load_log` reads it back unchanged."""
        import pyarrow.parquet as pq

        pq.write_table(self.table.drop_columns(["row"]), str(path))


# ------------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------------

def _numpy(col) -> np.ndarray:
    import pyarrow as pa

    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return np.asarray(col.to_pylist(), dtype=object)
    if pa.types.is_boolean(col.type):
        return np.asarray(col.cast(pa.float64()).fill_null(np.nan).to_numpy(), dtype=np.float64)
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        return np.asarray(col.cast(pa.float64()).fill_null(np.nan).to_numpy(), dtype=np.float64)
    return np.asarray(col.to_pylist(), dtype=object)


def _line(fmt: str, row: int) -> str:
    """``row N`` (1-based data row), with the file's line for text formats."""
    if fmt == "csv":
        return f"row {row} (line {row + 1})"
    if fmt == "jsonl":
        return f"row {row} (line {row})"
    return f"row {row}"


def _read(path: Path, fmt: str, manifest: Manifest):
    import pyarrow as pa

    ids = [manifest.case.id_field, manifest.case.event_id_field, manifest.case.timestamp_field,
           manifest.case.event_type_field, *[manifest.columns.get(c, c) for c in STRING_FIELDS]]
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(str(path))
        if fmt == "csv":
            import pyarrow.csv as pcsv

            # read the text fields as strings (a case id "007" must stay "007"; timestamps are parsed below)
            opts = pcsv.ConvertOptions(column_types={c: pa.string() for c in ids},
                                       strings_can_be_null=True)
            return pcsv.read_csv(str(path), convert_options=opts)
        import pyarrow.json as pjson

        return pjson.read_json(str(path))
    except (pa.ArrowInvalid, OSError) as exc:
        raise LogError(f"{path}: cannot read it as {fmt}: {exc}") from None


def load_log(source: str | os.PathLike | Any, manifest: Manifest | Mapping | str | os.PathLike, *,
             name: str | None = None) -> EventLog:
    """Load and validate an event log.

    Args:
        source: a ``.parquet``, ``.jsonl`` (``.ndjson``) or ``.csv`` file, or a pyarrow Table.
        manifest: a :class:`~.manifest.Manifest`, its mapping or the path of its YAML file.
        name: what messages call a table (default ``<table>``).
    """
    import pyarrow as pa

    manifest = as_manifest(manifest)
    if isinstance(source, pa.Table):
        table, name, fmt = source, name or "<table>", "table"
    else:
        path = Path(source)
        fmt = FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise LogError(f"{path}: unknown log format {path.suffix!r}; use one of {', '.join(sorted(FORMATS))}")
        if not path.is_file():
            raise LogError(f"{path}: no such file")
        table, name = _read(path, fmt, manifest), name or str(path)
    return _canonical(table, manifest, name, fmt)


def _rename(table, manifest: Manifest, name: str):
    ren = {manifest.case.id_field: "case_id", manifest.case.event_id_field: "event_id",
           manifest.case.timestamp_field: "timestamp", manifest.case.event_type_field: "event_type"}
    ren.update({src: canon for canon, src in manifest.columns.items()})
    ren = {src: dst for src, dst in ren.items() if src != dst}
    names = list(table.column_names)
    for src, dst in ren.items():
        if dst in names and src in names:
            raise LogError(f"{name}: the manifest maps column {src!r} to {dst!r}, but the file also has a column "
                           f"{dst!r}; rename one of them")
    missing = [src for src, dst in ren.items() if src not in names and dst in REQUIRED]
    if missing:
        raise LogError(f"{name}: missing column {missing[0]!r} (the manifest's name for "
                       f"{ren[missing[0]]}); the columns are {', '.join(names)}")
    if "row" in names:
        raise LogError(f"{name}: a column is named 'row', which the loader uses for source row numbers; rename it")
    return table.rename_columns([ren.get(c, c) for c in names])


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _canonical(table, manifest: Manifest, name: str, fmt: str) -> EventLog:
    import pyarrow as pa
    import pyarrow.compute as pc

    table = _rename(table, manifest, name)
    cols = table.column_names
    for req in REQUIRED:
        if req not in cols:
            raise LogError(f"{name}: missing column {req!r}; the columns are {', '.join(cols)} "
                           f"(map another column to it in the manifest's case or columns section)")
    n = table.num_rows
    rows = np.arange(1, n + 1, dtype=np.int64)

    out: dict[str, Any] = {}
    for f in ("case_id", "event_id", "event_type"):
        col = table.column(f)
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            if f != "event_type" and (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
                col = pc.cast(col, pa.string())
            else:
                raise LogError(f"{name}: column {f!r} has type {col.type}, expected strings")
        col = pc.cast(col, pa.string())
        empty = _blank(col)
        if empty.any():
            i = _first(empty)
            raise LogError(f"{name}: {_line(fmt, i + 1)}: the required field {f!r} is empty; fill it or drop the row")
        out[f] = col

    # event types: canonical or mapped, never coerced
    et = out["event_type"]
    if manifest.event_type_map:
        keys = pa.array(list(manifest.event_type_map), pa.string())
        vals = pa.array(list(manifest.event_type_map.values()), pa.string())
        idx = pc.index_in(et, keys)
        et = pc.if_else(pc.is_null(idx), et, pc.take(vals, pc.fill_null(idx, 0)))
    codes = pc.index_in(et, pa.array(EVENT_TYPES, pa.string()))
    bad = np.asarray(pc.is_null(codes))
    if bad.any():
        i = _first(bad)
        unknown = sorted(set(pc.filter(et, pa.array(bad)).to_pylist()))
        raise LogError(f"{name}: {_line(fmt, i + 1)}: unknown event type {et[i].as_py()!r}"
                       + (f" (also {', '.join(map(repr, unknown[1:6]))})" if len(unknown) > 1 else "")
                       + f"; the canonical types are {', '.join(EVENT_TYPES)}; map source types to them in the "
                       "manifest's event_types.map")
    out["event_type"] = et
    type_code = np.asarray(codes.to_numpy(zero_copy_only=False), dtype=np.int8)

    out["timestamp"] = _timestamps(table.column("timestamp"), manifest, name, fmt)

    ev = out["event_id"]
    if _has_duplicates(ev):
        counts = pc.value_counts(ev)
        dups = pc.filter(counts, pc.greater(pc.struct_field(counts, "counts"), 1))
        dup = dups[0]["values"].as_py()
        where = np.flatnonzero(np.asarray(pc.equal(ev, dup)))[:2] + 1
        raise LogError(f"{name}: {_line(fmt, int(where[1]))}: duplicate event id {dup!r} (first at "
                       f"{_line(fmt, int(where[0]))}); event ids must be unique")

    if "seq" in cols:
        seq = table.column("seq")
        if not pa.types.is_integer(seq.type):
            try:
                seq = pc.cast(seq, pa.int64())
            except pa.ArrowInvalid:
                raise LogError(f"{name}: column 'seq' must hold integers, found {seq.type}") from None
        out["seq"] = pc.cast(seq, pa.int64())
    else:
        out["seq"] = pa.nulls(n, pa.int64())

    for f in STRING_FIELDS:
        if f in cols:
            col = table.column(f)
            if pa.types.is_null(col.type):
                col = pa.nulls(n, pa.string())
            elif not pa.types.is_string(col.type):
                if f in ("payload", "metadata") and (pa.types.is_struct(col.type) or pa.types.is_map(col.type)
                                                      or pa.types.is_list(col.type)):
                    col = pa.array([None if v is None else json.dumps(v, sort_keys=True, default=str)
                                    for v in col.to_pylist()], pa.string())
                else:
                    col = pc.cast(col, pa.string())
            out[f] = col
        else:
            out[f] = pa.nulls(n, pa.string())

    if "propensity" in cols:
        p = table.column("propensity")
        try:
            p = pc.cast(p, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise LogError(f"{name}: column 'propensity' must hold numbers, found {p.type}") from None
        pv = np.asarray(p.fill_null(0.5).to_numpy(), dtype=np.float64)
        bad = ~((pv > 0) & (pv <= 1))
        if bad.any():
            i = _first(bad)
            raise LogError(f"{name}: {_line(fmt, i + 1)}: propensity {float(pv[i])!r} is outside (0, 1]; a propensity is "
                           "the logging policy's probability of the logged action")
        out["propensity"] = p
    else:
        out["propensity"] = pa.nulls(n, pa.float64())

    act = out["action"]
    if manifest.allowed_actions:
        known = pc.is_in(act, pa.array(manifest.allowed_actions, pa.string()))
        bad = np.asarray(pc.and_(pc.invert(known), pc.is_valid(act)).fill_null(False))
        if bad.any():
            i = _first(bad)
            raise LogError(f"{name}: {_line(fmt, i + 1)}: the logged action {act[i].as_py()!r} is not one of the "
                           f"manifest's allowed_actions ({', '.join(manifest.allowed_actions[:10])}"
                           f"{', ...' if len(manifest.allowed_actions) > 10 else ''}); add it there")

    out["object_refs"] = _object_refs(table.column("object_refs") if "object_refs" in cols else None, n, name, fmt)

    attributes = [c for c in cols if c not in CANONICAL]
    for a in attributes:
        out[a] = table.column(a)
    out["row"] = pa.array(rows)

    canon = pa.table({c: out[c] for c in (*CANONICAL, *attributes, "row")})

    # stable sort: case in order of first appearance, then time, then seq (input order breaks ties)
    case_rank, n_cases = _first_appearance(canon.column("case_id"))
    t = canon.column("timestamp").cast(pa.int64()).to_numpy()
    seq = np.asarray(canon.column("seq").fill_null(np.iinfo(np.int64).min).to_numpy(), dtype=np.int64)
    if _ordered(case_rank, t, seq):  # already in order (the stable sort would not move a row)
        moved, case = 0, case_rank
    else:
        order = np.lexsort((seq, t, case_rank))  # lexsort is stable: input order breaks the remaining ties
        # unsorted input: places where an event comes before an earlier one of its case (logs interleaving
        # cases in time order are not unsorted)
        by_case = np.argsort(case_rank, kind="stable")
        tc, sc, cr = t[by_case], seq[by_case], case_rank[by_case]
        same = cr[1:] == cr[:-1]
        moved = int(np.count_nonzero(same & ((tc[1:] < tc[:-1]) | ((tc[1:] == tc[:-1]) & (sc[1:] < sc[:-1])))))
        canon = canon.take(pa.array(order))
        type_code = type_code[order]
        case = case_rank[order]
    report = LoadReport(name, n, n_cases, moved, tuple(attributes))
    return _from_sorted(canon, manifest, name, tuple(attributes), report=report, type_code=type_code, case=case)


def _blank(col) -> np.ndarray:
    """Per row, whether a string is missing, empty or only whitespace (what trimming whitespace leaves empty)."""
    import pyarrow.compute as pc

    return np.asarray(pc.or_kleene(pc.is_null(col), pc.or_(pc.equal(pc.binary_length(col), 0), pc.utf8_is_space(col)))
                      .fill_null(True))


def _has_duplicates(ids) -> bool:
    """Whether a string column holds some value twice: ids in strictly increasing order (as generated ids
    often are) have none; otherwise the sorted ids are compared with their neighbours."""
    import pyarrow.compute as pc

    ids = ids.combine_chunks() if hasattr(ids, "combine_chunks") else ids
    if len(ids) < 2:
        return False
    if pc.all(pc.less(ids.slice(0, len(ids) - 1), ids.slice(1))).as_py():
        return False
    srt = pc.take(ids, pc.sort_indices(ids))
    return bool(pc.any(pc.equal(srt.slice(0, len(srt) - 1), srt.slice(1))).as_py())


def _first_appearance(col) -> tuple[np.ndarray, int]:
    """Per row, the rank of its value in order of first appearance (0, 1, ...), and the number of values."""
    import pyarrow.compute as pc

    codes = np.asarray(pc.dictionary_encode(col).combine_chunks().indices, dtype=np.int64)
    n = len(codes)
    if not n:
        return codes, 0
    # dictionary codes are usually numbered in order of first appearance already: then the running maximum
    # starts at 0 and grows by at most 1 per row
    top = np.maximum.accumulate(codes)
    if top[0] == 0 and not (np.diff(top) > 1).any():
        return codes, int(top[-1]) + 1
    first_seen = np.full(codes.max() + 1, n, dtype=np.int64)
    np.minimum.at(first_seen, codes, np.arange(n))
    return np.argsort(np.argsort(first_seen, kind="stable"), kind="stable")[codes], len(first_seen)


def _ordered(case_rank: np.ndarray, t: np.ndarray, seq: np.ndarray) -> bool:
    """Whether the rows are already sorted by (case rank, time, seq)."""
    if len(case_rank) < 2:
        return True
    dc, dt = np.diff(case_rank), np.diff(t)
    return not ((dc < 0) | ((dc == 0) & ((dt < 0) | ((dt == 0) & (seq[1:] < seq[:-1]))))).any()


def _from_sorted(table, manifest: Manifest, name: str, attributes: tuple[str, ...], *,
                 report: LoadReport | None = None, type_code: np.ndarray | None = None,
                 case: np.ndarray | None = None) -> EventLog:
    """The EventLog of a table sorted by case; ``case`` (per row, any numbering of the cases that changes
    exactly where the case does) saves encoding the case ids again."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = table.combine_chunks()
    n = table.num_rows
    raw = np.asarray(pc.dictionary_encode(table.column("case_id")).combine_chunks().indices, dtype=np.int64) \
        if case is None else case
    # cases are contiguous after sorting: number them in order
    change = np.ones(n, dtype=bool)
    if n:
        change[1:] = raw[1:] != raw[:-1]
    case = np.cumsum(change) - 1
    starts = np.append(np.flatnonzero(change), n).astype(np.int64)
    case_ids = np.asarray(pc.take(table.column("case_id"), pa.array(starts[:-1])).to_pylist(), dtype=object)
    if type_code is None:
        type_code = np.asarray(pc.index_in(table.column("event_type"), pa.array(EVENT_TYPES)).to_numpy(), np.int8)
    time_us = np.asarray(table.column("timestamp").cast(pa.int64()).to_numpy(), dtype=np.int64)
    if report is None:
        report = LoadReport(name, n, len(case_ids), 0, attributes)
    return EventLog(table, manifest, report, case.astype(np.int64), case_ids, starts, time_us, type_code)


def _timestamps(col, manifest: Manifest, name: str, fmt: str):
    """The timestamp column as timestamp[us, UTC]: aware strings converted, naive ones read in the manifest's zone."""
    import pyarrow as pa
    import pyarrow.compute as pc

    target = pa.timestamp("us", tz="UTC")
    zone = manifest.case.timezone
    if pa.types.is_timestamp(col.type):
        if col.type.tz is None:
            if zone is None:
                raise LogError(f"{name}: the timestamps have no time zone; set case.timezone in the manifest "
                               "(for example UTC) to say how to read them")
            col = pc.assume_timezone(col, zone, ambiguous="raise", nonexistent="raise")
        return pc.cast(col, target)
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        raise LogError(f"{name}: column 'timestamp' holds numbers; write ISO-8601 times (2024-05-01T09:30:00Z)")
    col = pc.cast(col, pa.string())
    null = np.asarray(pc.is_null(col))
    if null.any():
        i = _first(null)
        raise LogError(f"{name}: {_line(fmt, i + 1)}: the required field 'timestamp' is empty")
    try:
        return iso_timestamps(col, zone)
    except TimestampError as e:
        if e.kind == "mixed":
            (i, j), (a, b) = e.rows, e.values
            raise LogError(f"{name}: {_line(fmt, j + 1)}: timestamp {b!r} has no UTC offset while "
                           f"{_line(fmt, i + 1)} has one ({a!r}); mixed naive and aware timestamps are "
                           "ambiguous: give every timestamp an offset") from None
        if e.kind == "naive":
            raise LogError(f"{name}: {_line(fmt, 1)}: timestamp {e.values[0]!r} has no UTC offset; add offsets "
                           "(2024-05-01T09:30:00Z) or set case.timezone in the manifest") from None
        raise LogError(f"{name}: {_line(fmt, e.rows[0] + 1)}: cannot read timestamp {e.values[0]!r}; write ISO-8601 "
                       "(2024-05-01T09:30:00Z)") from None


_AWARE = r"(Z|[+-]\d\d(:?\d\d)?)$"  # an ISO-8601 time that ends with its UTC offset


class TimestampError(ValueError):
    """What :func:`iso_timestamps` found wrong, for the caller to word: ``kind`` is ``"mixed"``
    (``rows`` = an aware row and a naive one), ``"naive"`` (naive times and no zone to read them in;
    ``rows`` = the first) or ``"unreadable"`` (``rows`` = the first row that is not a time); ``values``
    are those rows' strings.  Rows are 0-based."""

    def __init__(self, kind: str, rows: tuple[int, ...], values: tuple):
        super().__init__(f"{kind} timestamps at rows {rows}: {values}")
        self.kind, self.rows, self.values = kind, rows, values


def iso_timestamps(col, zone: str | None):
    """A string column of ISO-8601 times (no nulls) as timestamp[us, UTC], the one rule of every log
    reader: either every time carries its UTC offset (``Z``, ``+02:00``, ``-0500``), or none does and
    they are read in the IANA ``zone`` (``None``: naive times are an error; ambiguous or nonexistent
    local times are an error).  Raises :class:`TimestampError`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    target = pa.timestamp("us", tz="UTC")
    aware = np.asarray(pc.match_substring_regex(col, _AWARE))
    if aware.any() and not aware.all():
        i, j = _first(aware), _first(~aware)
        raise TimestampError("mixed", (i, j), (col[i].as_py(), col[j].as_py()))
    if len(col) and not aware.any() and zone is None:
        raise TimestampError("naive", (0,), (col[0].as_py(),))
    try:
        if aware.all():
            return pc.cast(col, target)
        naive = pc.cast(col, pa.timestamp("us"))
        return pc.cast(pc.assume_timezone(naive, zone, ambiguous="raise", nonexistent="raise"), target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # find the first unreadable row to name it (error path only)
        for i, v in enumerate(col.to_pylist()):
            try:
                pc.cast(pa.array([v]), target if aware.all() else pa.timestamp("us"))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise TimestampError("unreadable", (i,), (v,)) from None
        raise


def _object_refs(col, n: int, name: str, fmt: str):
    import pyarrow as pa

    typ = object_ref_type()
    if col is None:
        return pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, dtype=np.int32)), pa.array([], typ.value_type))
    if col.type == typ:
        return col
    values = col.to_pylist()
    out = []
    for i, v in enumerate(values):
        if isinstance(v, str):
            try:
                v = json.loads(v) if v.strip() else []
            except json.JSONDecodeError as exc:
                raise LogError(f"{name}: {_line(fmt, i + 1)}: object_refs is not valid JSON ({exc.msg}); write a "
                               'list such as [{"object_type": "clinic", "object_id": "c1", "role": "target"}]') from None
        if v is None:
            v = []
        if not isinstance(v, list):
            raise LogError(f"{name}: {_line(fmt, i + 1)}: object_refs must be a list of references, found {v!r}")
        refs = []
        for r in v:
            if not isinstance(r, Mapping) or not r.get("object_type") or not r.get("object_id") or \
                    set(r) - {"object_type", "object_id", "role"}:
                raise LogError(f"{name}: {_line(fmt, i + 1)}: object reference {r!r} needs object_type and "
                               "object_id (and optionally role), nothing else")
            refs.append({"object_type": str(r["object_type"]), "object_id": str(r["object_id"]),
                         "role": None if r.get("role") is None else str(r["role"])})
        out.append(refs)
    return pa.array(out, typ)


__all__ = ["EventLog", "LoadReport", "LogError", "load_log", "FORMATS", "TYPE_CODE"]
