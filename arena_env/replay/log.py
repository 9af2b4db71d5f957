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
  (naive timestamps are read in ``case.timezone`` when the manifest gives one, else they are an error;
  a local time that a daylight-saving change skips or repeats is an error too).  CSV and JSONL
  timestamps are read as text and Parquet string columns alike, by :func:`iso_timestamps`, the one
  rule of every format; Parquet timestamp columns keep their type (a naive one needs ``case.timezone``);
* the same event id twice;
* a propensity that is not a number (text in a Parquet or JSONL file, such as ``"0.5"``, is refused:
  those formats have number types; CSV has none, so there a propensity is text that reads as a
  number), a propensity outside (0, 1], or an action that is not one of the manifest's allowed actions;
* malformed ``object_refs``.

A file whose contents are of another format than its name says (a Parquet file named ``.csv``, a CSV
named ``.parquet``) is refused saying so; ``format=`` reads a file whatever its name.

Rows are then sorted stably by case (in order of first appearance), timestamp and ``seq`` (when
given; else the input order breaks ties).  If that moved any row the log's :attr:`EventLog.report`
says how many, so that unsorted input is visible, never silently "fixed".  Nothing is dropped: every
input column survives, and ``row`` keeps each event's place in its source file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .manifest import Manifest, as_manifest
from .schema import CANONICAL, EVENT_TYPES, REQUIRED, STRING_FIELDS, TYPE_CODE, object_ref_type

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
           ".csv": "csv"}
PARQUET_MAGIC = b"PAR1"  # the first (and last) four bytes of every Parquet file


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


def _printable(text: str, limit: int = 300) -> str:
    """``text`` fit for a terminal: control characters and undecodable bytes (a reader's message quoting
    a binary file) as ``?``, whitespace as spaces, at most ``limit`` characters."""
    out = "".join(c if c.isprintable() else " " if c.isspace() else "?" for c in text)
    return out if len(out) <= limit else out[:limit] + "..."


def _sniff(path: Path, fmt: str) -> None:
    """Refuse a file whose first bytes say it is of another format than ``fmt`` (a Parquet file named
    ``.csv``, a text file named ``.parquet``), before a reader fails on it with a confusing message."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if fmt != "parquet" and head.startswith(PARQUET_MAGIC):
        raise LogError(f"{path}: the file looks like Parquet (it starts with the Parquet magic bytes PAR1), not "
                       f"{fmt}; rename it to end in .parquet, or pass format='parquet'")
    if fmt == "parquet" and head and not head.startswith(PARQUET_MAGIC):
        text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        looks = ""
        if b"\0" not in head:
            looks = ("; it looks like JSONL: rename it to end in .jsonl, or pass format='jsonl'" if text[:1] == b"{"
                     else "; it looks like text (CSV?): rename it to end in .csv, or pass format='csv'")
        raise LogError(f"{path}: not a Parquet file (a Parquet file starts with the magic bytes PAR1){looks}")


def _read(path: Path, fmt: str, manifest: Manifest):
    import pyarrow as pa

    ids = [manifest.case.id_field, manifest.case.event_id_field, manifest.case.timestamp_field,
           manifest.case.event_type_field, *[manifest.columns.get(c, c) for c in STRING_FIELDS]]
    try:
        _sniff(path, fmt)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(str(path))
        if fmt == "csv":
            import pyarrow.csv as pcsv

            # read the text fields as strings (a case id "007" must stay "007"; timestamps are parsed below)
            opts = pcsv.ConvertOptions(column_types={c: pa.string() for c in ids},
                                       strings_can_be_null=True)
            return pcsv.read_csv(str(path), convert_options=opts)
        return _read_jsonl(path, manifest.case.timestamp_field)
    except (pa.ArrowInvalid, OSError) as exc:
        raise LogError(f"{path}: cannot read it as {fmt}: {_printable(str(exc))}") from None


def _read_jsonl(path: Path, ts: str):
    """A JSONL file with its timestamp field read as text, for the one rule of every format
    (:func:`iso_timestamps`): the JSON reader would otherwise parse the times itself and drop their UTC
    offsets (``09:00+02:00`` became a naive 07:00, ``09:00Z`` a naive 09:00), so that aware times were
    then read as naive ones in ``case.timezone``, or refused."""
    import pyarrow as pa
    import pyarrow.json as pjson

    opts = pjson.ParseOptions(explicit_schema=pa.schema([(ts, pa.string())]), unexpected_field_behavior="infer")
    try:
        table = pjson.read_json(str(path), parse_options=opts)
    except pa.ArrowInvalid as exc:
        _json_type_change(path, str(exc), ts)
        raise
    if table.column(ts).null_count == table.num_rows:
        # the explicit field is there even if no line has it: drop it then, so that it is reported missing
        if ts not in pjson.read_json(str(path)).column_names:
            table = table.drop_columns([ts])
    return table


def _json_kind(v: Any) -> str:
    return ("boolean" if isinstance(v, bool) else "number" if isinstance(v, (int, float)) else
            "string" if isinstance(v, str) else "object" if isinstance(v, dict) else "list")


def _json_type_change(path: Path, msg: str, ts: str) -> None:
    """When the JSON reader failed because a field changed its type from one line to another (its
    message names the field but not the line), raise a :class:`LogError` naming the first such line;
    else return.  Error path only: the file is read again line by line."""
    m = re.search(r"Column\(/([^)/]*)[^)]*\) changed from (\w+) to (\w+)", msg)
    if m is None:
        return
    key = m.group(1).replace("~1", "/").replace("~0", "~")
    first = None  # (row, line, kind) of the first value of the field
    row = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line, text in enumerate(fh, 1):
            if not text.strip():
                continue
            row += 1
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                return
            v = obj.get(key) if isinstance(obj, dict) else None
            if v is None:
                continue
            kind, shown = _json_kind(v), _printable(repr(v), 60)
            if key == ts and kind != "string":
                raise LogError(f"{path}: row {row} (line {line}): the timestamp {shown} is a JSON {kind}; write "
                               'ISO-8601 times as strings ("2024-05-01T09:30:00Z")')
            if first is None:
                first = (row, line, kind)
            elif kind != first[2]:
                hint = ' (write numbers as 0.25, not "0.25")' if "number" in (kind, first[2]) else ""
                raise LogError(f"{path}: row {row} (line {line}): field {key!r} holds a {kind} ({shown}) where row "
                               f"{first[0]} (line {first[1]}) holds a {first[2]}; give each field values of one JSON "
                               f"type{hint}")


def load_log(source: str | os.PathLike | Any, manifest: Manifest | Mapping | str | os.PathLike, *,
             name: str | None = None, format: str | None = None) -> EventLog:
    """Load and validate an event log.

    Args:
        source: a ``.parquet``, ``.jsonl`` (``.ndjson``) or ``.csv`` file, or a pyarrow Table.
        manifest: a :class:`~.manifest.Manifest`, its mapping or the path of its YAML file.
        name: what messages call a table (default ``<table>``).
        format: ``"parquet"``, ``"jsonl"`` or ``"csv"``: read the file as that, whatever its name says
            (default: from the name's suffix, :data:`FORMATS`).
    """
    import pyarrow as pa

    manifest = as_manifest(manifest)
    if isinstance(source, pa.Table):
        table, name, fmt = source, name or "<table>", "table"
    else:
        path = Path(source)
        known = sorted(set(FORMATS.values()))
        if format is not None and format not in known:
            raise LogError(f"{path}: unknown format {format!r}; pass one of {', '.join(known)}")
        fmt = format or FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise LogError(f"{path}: unknown log format {path.suffix!r}; use one of {', '.join(sorted(FORMATS))} "
                           f"(or pass format= one of {', '.join(known)})")
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
        p = _propensities(table.column("propensity"), name, fmt)
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


def _propensities(col, name: str, fmt: str):
    """The propensity column as float64, one rule for every format: a propensity is a number or missing.
    A number column is taken as it is; text is read as numbers only in CSV (which has no number type:
    every value is text there); in a Parquet or JSONL file (or a table) text such as ``"0.5"`` is refused,
    as are booleans and other types.  An error names the first row that is not a number, and its value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_null(col.type):
        return pa.nulls(len(col), pa.float64())
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        return pc.cast(col, pa.float64())
    text = pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
    col = col.combine_chunks() if hasattr(col, "combine_chunks") else col
    if text and fmt == "csv":
        try:
            return pc.cast(col, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            i = _first_failure(col, lambda part: pc.cast(part, pa.float64()))
    else:
        valid = np.asarray(pc.is_valid(col))
        if not valid.any():  # no value at all (a column of nulls of some type)
            return pa.nulls(len(col), pa.float64())
        i = _first(valid)
    if fmt == "csv":  # text that is not a number, or that the reader took for another type (true, a date)
        v = pc.cast(col.slice(i, 1), pa.string())[0].as_py()
        raise LogError(f"{name}: {_line(fmt, i + 1)}: cannot read the propensity {_printable(repr(v), 60)} as a "
                       "number; write a probability in (0, 1] such as 0.25, or leave it empty") from None
    v = col[i].as_py()
    if fmt == "jsonl":
        what = f"is a JSON {_json_kind(v)}"
    else:
        what = (f"is text ({col.type} column)" if text else "is a boolean" if pa.types.is_boolean(col.type)
                else f"is not a number ({col.type} column)")
    store = ("a JSON number such as 0.25, not the string \"0.25\"" if fmt == "jsonl"
             else "a float column, such as float64")
    raise LogError(f"{name}: {_line(fmt, i + 1)}: the propensity {_printable(repr(v), 60)} {what}; a propensity "
                   f"is a number: store it as {store}")


def _first_failure(col, convert) -> int:
    """The index of the first value of ``col`` that ``convert`` (a vectorised conversion, known to fail
    on the whole of ``col``) fails on: bisection, about two passes over the column."""
    import pyarrow as pa

    lo, hi = 0, len(col)  # col[:lo] converts, col[lo:hi] holds a failure
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            convert(col.slice(lo, mid - lo))
            lo = mid
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            hi = mid
    return lo


def _timestamps(col, manifest: Manifest, name: str, fmt: str):
    """The timestamp column as timestamp[us, UTC]: timestamp columns converted (naive ones read in the
    manifest's zone), text read by :func:`iso_timestamps` (CSV and JSONL timestamps are always text)."""
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
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or pa.types.is_date(col.type)
            or pa.types.is_null(col.type)):
        raise LogError(f"{name}: column 'timestamp' has type {col.type}; write ISO-8601 times "
                       "(2024-05-01T09:30:00Z)")
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
        if e.kind == "local":
            raise LogError(f"{name}: {_line(fmt, e.rows[0] + 1)}: timestamp {e.values[0]!r} does not exist or is "
                           f"ambiguous in {zone} (a daylight-saving change skips or repeats it); write it with a UTC "
                           "offset (such as 2024-10-27T02:30:00+01:00) to say which time is meant") from None
        shown = _printable(repr(e.values[0]), 80)
        raise LogError(f"{name}: {_line(fmt, e.rows[0] + 1)}: cannot read timestamp {shown}; write ISO-8601 "
                       "(2024-05-01T09:30:00Z)") from None


# an ISO-8601 time that ends with its UTC offset: the offset follows the time of day (a date alone,
# 2024-05-01, has none: its "-01" is the day)
_AWARE = r"[T ]\d\d[^ ]*(Z|[+-]\d\d(:?\d\d)?)$"


class TimestampError(ValueError):
    """What :func:`iso_timestamps` found wrong, for the caller to word: ``kind`` is ``"unreadable"``
    (``rows`` = the first row that is not a time), ``"mixed"`` (``rows`` = an aware row and a naive
    one), ``"naive"`` (naive times and no zone to read them in; ``rows`` = the first) or ``"local"``
    (``rows`` = the first naive time that does not exist or is ambiguous in the zone, as at a
    daylight-saving change); ``values`` are those rows' strings.  Rows are 0-based."""

    def __init__(self, kind: str, rows: tuple[int, ...], values: tuple):
        super().__init__(f"{kind} timestamps at rows {rows}: {values}")
        self.kind, self.rows, self.values = kind, rows, values


def iso_timestamps(col, zone: str | None):
    """A string column of ISO-8601 times (no nulls) as timestamp[us, UTC], the one rule of every log
    reader: either every time carries its UTC offset (``Z``, ``+02:00``, ``-0500``), or none does and
    they are read in the IANA ``zone`` (``None``: naive times are an error; ambiguous or nonexistent
    local times are an error).  The first problem is reported: a mix of aware and naive times before
    the first value that is not a time, else that value (a value without an offset that is not a time
    is unreadable, not naive); then naive times without a zone, then local times the zone does not
    have.  Raises :class:`TimestampError`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    target, local = pa.timestamp("us", tz="UTC"), pa.timestamp("us")
    col = col.combine_chunks() if hasattr(col, "combine_chunks") else col
    aware = np.asarray(pc.match_substring_regex(col, _AWARE), dtype=bool)
    unreadable = []  # the first unreadable row among the aware ones, and among the naive ones
    times = {}
    for mask, typ in ((aware, target), (~aware, local)):
        if not mask.any():
            continue
        part = col if mask.all() else col.filter(pa.array(mask))
        try:
            times[typ] = pc.cast(part, typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            unreadable.append(int(np.flatnonzero(mask)[_first_failure(part, lambda x, t=typ: pc.cast(x, t))]))
    u = min(unreadable, default=len(col))  # the rows before u are all times
    if aware[:u].any() and not aware[:u].all():
        i, j = _first(aware), _first(~aware)
        raise TimestampError("mixed", (i, j), (col[i].as_py(), col[j].as_py()))
    if unreadable:
        raise TimestampError("unreadable", (u,), (col[u].as_py(),))
    if aware.all():  # (also an empty column)
        return times.get(target, pa.array([], target))
    if zone is None:
        raise TimestampError("naive", (0,), (col[0].as_py(),))
    naive = times[local]

    def assume(x):
        return pc.assume_timezone(x, zone, ambiguous="raise", nonexistent="raise")

    try:
        return pc.cast(assume(naive), target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        i = _first_failure(naive, assume)
        raise TimestampError("local", (i,), (col[i].as_py(),)) from None


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
